//! The in-process implementation of the analytics module: client events
//! in, domain events rolled up (`projections.rs`), raw events pruned after
//! `analytics.raw_retention_days` and each day's salt once the day is over.

use std::sync::Arc;

use async_trait::async_trait;
use hometrip_kernel::cache::{Limit, RateLimiter};
use hometrip_kernel::db::{Db, DbError};
use hometrip_kernel::events::{Envelope, EventBus, EventHandler};
use hometrip_kernel::jobs::{Job, JobHandler, Scheduler};
use hometrip_kernel::{ErrorCode, Id, Problem};
use hometrip_listing::api::Listings;
use serde::{Deserialize, Serialize};

use crate::api::AnalyticsSettings;
use crate::domain::{self, ClientEvent};
use crate::store::{self, EventRow, ListingDay, PlatformDelta};
use crate::writes::{BatchRows, SessionStep};

pub const RETENTION_JOB: &str = "analytics.retention";

pub struct AnalyticsService {
    pub(crate) db: Db,
    bus: Arc<EventBus>,
    pub(crate) jobs: Arc<Scheduler>,
    pub(crate) listings: Arc<dyn Listings>,
    limiter: RateLimiter,
    bots: isbot::Bots,
    /// The day's salt, once read (every batch of the day needs it).
    salt: std::sync::Mutex<Option<(chrono::NaiveDate, String)>>,
    pub settings: AnalyticsSettings,
}

pub struct AnalyticsDeps {
    pub db: Db,
    pub bus: Arc<EventBus>,
    pub jobs: Arc<Scheduler>,
    pub listings: Arc<dyn Listings>,
    pub limiter: RateLimiter,
    pub settings: AnalyticsSettings,
}

/// `POST /analytics/events`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub events: Vec<ClientEvent>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub accepted: usize,
    /// Events from a known bot's user agent, not counted.
    pub dropped: usize,
}

/// Who sent a batch.
pub struct Sender<'a> {
    pub user: Option<Id>,
    pub ip: &'a str,
    pub user_agent: &'a str,
}

pub(crate) fn db_err(e: DbError) -> Problem {
    Problem::from(e)
}

impl AnalyticsService {
    pub fn new(d: AnalyticsDeps) -> Arc<Self> {
        Arc::new(AnalyticsService {
            db: d.db,
            bus: d.bus,
            jobs: d.jobs,
            listings: d.listings,
            limiter: d.limiter,
            bots: isbot::Bots::default(),
            salt: std::sync::Mutex::new(None),
            settings: d.settings,
        })
    }

    pub async fn subscribe(self: &Arc<Self>) -> Result<(), String> {
        let handler = Arc::clone(self) as Arc<dyn EventHandler>;
        self.bus.subscribe("analytics.domain", crate::projections::SUBSCRIBED, handler).await;
        let every = chrono::Duration::hours(1);
        self.jobs.every(RETENTION_JOB, every, Arc::clone(self) as Arc<dyn JobHandler>).await.map_err(|e| e.to_string())
    }

    /// A batch of client events: checked whole (422 names each bad field),
    /// dropped whole when a bot sent it, else stored and counted.
    pub async fn ingest(&self, from: Sender<'_>, batch: Batch) -> Result<Accepted, Problem> {
        let subject = hometrip_kernel::http::limit_subject(from.ip);
        let limit = Limit { max: u64::from(self.settings.batches_per_minute), window_secs: 60 };
        if let Err(retry) = self.limiter.hit(&format!("analytics:{subject}"), limit).await? {
            return Err(Problem::new(ErrorCode::RateLimited, "too many analytics batches").retry_after(retry));
        }
        if batch.events.is_empty() || batch.events.len() > domain::MAX_BATCH {
            return Err(Problem::field("events", &format!("1 to {} events", domain::MAX_BATCH)));
        }
        let now = self.jobs.clock().now();
        let errors: Vec<_> =
            batch.events.iter().enumerate().flat_map(|(i, e)| domain::check_event(i, e, now.0)).collect();
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
        if self.bots.is_bot(from.user_agent) {
            return Ok(Accepted { accepted: 0, dropped: batch.events.len() });
        }
        let today = now.0.date_naive();
        let salt = self.salt_of(today).await?;
        let visitor = domain::visitor_hash(&salt, from.ip, from.user_agent);
        let mut rows = Vec::with_capacity(batch.events.len());
        let mut days: Vec<ListingDay> = Vec::new();
        let mut platform: Vec<PlatformDelta> = Vec::new();
        let mut steps: Vec<SessionStep> = Vec::new();
        let mut hosts: std::collections::HashMap<Id, Option<Id>> = std::collections::HashMap::new();
        for e in &batch.events {
            let at = e.at.map(hometrip_kernel::time::Instant).unwrap_or(now);
            let day = at.0.date_naive();
            if let Some(session_id) = e.session_id.as_ref().filter(|_| domain::FUNNEL_STEPS.contains(&e.name.as_str()))
            {
                steps.push(SessionStep { session_id: session_id.clone(), step: e.name.clone(), at });
            }
            rows.push(EventRow {
                id: Id::new(),
                name: e.name.clone(),
                at,
                received_on: today,
                session_id: e.session_id.clone(),
                visitor: visitor.clone(),
                user_id: from.user,
                listing_id: e.listing_id,
                props: serde_json::Value::Object(e.props.clone().unwrap_or_default()).to_string(),
            });
            match platform.iter_mut().find(|p| p.day == day && p.metric == e.name) {
                Some(p) => p.value += 1,
                None => platform.push(PlatformDelta::count(day, &e.name, 1)),
            }
            if let (Some(listing), "listing_view") = (e.listing_id, e.name.as_str()) {
                // Each listing looked up once a batch; one it does not know
                // (yet) is counted on the platform only.
                let host = match hosts.get(&listing) {
                    Some(h) => *h,
                    None => {
                        let h = store::listing(&self.db, listing).await.map_err(db_err)?.map(|l| l.host_id);
                        hosts.insert(listing, h);
                        h
                    }
                };
                if let Some(host_id) = host {
                    match days.iter_mut().find(|d| d.listing_id == listing && d.day == day) {
                        Some(d) => d.views += 1,
                        None => days.push(ListingDay {
                            listing_id: listing,
                            day,
                            host_id,
                            views: 1,
                            ..ListingDay::default()
                        }),
                    }
                }
            }
        }
        let batch =
            BatchRows { events: &rows, steps: &steps, visitor: (today, &visitor), days: &days, platform: &platform };
        store::ingest(&self.db, &batch).await.map_err(db_err)?;
        Ok(Accepted { accepted: rows.len(), dropped: 0 })
    }

    /// The day's salt: made by the first batch of the day (in any process:
    /// the database keeps one), then kept in memory.
    async fn salt_of(&self, day: chrono::NaiveDate) -> Result<String, Problem> {
        if let Some((d, s)) = self.salt.lock().ok().and_then(|g| g.clone()) {
            if d == day {
                return Ok(s);
            }
        }
        let salt = store::salt(&self.db, day, &hex::encode(rand::random::<[u8; 32]>())).await.map_err(db_err)?;
        if let Ok(mut g) = self.salt.lock() {
            *g = Some((day, salt.clone()));
        }
        Ok(salt)
    }

    async fn retention(&self) -> Result<(), Problem> {
        let today = self.jobs.clock().now().0.date_naive();
        let keep_from = today - chrono::Duration::days(self.settings.raw_retention_days.max(1));
        let (events, salts) = store::prune(&self.db, keep_from, today).await.map_err(db_err)?;
        if events > 0 || salts > 0 {
            tracing::info!(events, salts, "analytics retention");
        }
        Ok(())
    }
}

#[async_trait]
impl EventHandler for AnalyticsService {
    async fn handle(&self, event: &Envelope) -> Result<(), String> {
        self.project(event).await.map_err(|p| p.to_string())
    }
}

#[async_trait]
impl JobHandler for AnalyticsService {
    async fn run(&self, job: &Job) -> Result<(), String> {
        match job.kind.as_str() {
            RETENTION_JOB => self.retention().await.map_err(|p| p.to_string()),
            other => Err(format!("no handler for {other}")),
        }
    }
}
