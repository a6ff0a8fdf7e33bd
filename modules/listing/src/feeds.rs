//! iCal export and import: the listing's own feed for other platforms, and
//! the feeds of other platforms that block its nights.
//!
//! Feeds are URLs hosts choose, so they are fetched only through the kernel's
//! outbound client (no private addresses, every redirect hop checked) and
//! never named in errors or logs beyond their origin: Airbnb's export URLs
//! carry a secret token. A scheduled sync is shared fairly: only published
//! listings' feeds, at most [`FEEDS_PER_HOST_PER_RUN`] of a host, hosts taken in
//! turn from a random start, [`SYNC_CONCURRENCY`] at a time, and no new fetch
//! once the run's budget is spent — one account's slow servers cannot hold
//! back everyone else's blocks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::Duration;
use futures_util::StreamExt;
use hometrip_kernel::events::Envelope;
use hometrip_kernel::jobs::{Job, JobHandler, Scheduler};
use hometrip_kernel::outbound::{self, OutboundError, Purpose};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{ErrorCode, FieldError, Id, Problem};
use rand::{Rng, RngCore};

use crate::api::*;
use crate::domain;
use crate::service::{db_err, today, ListingService, Viewer};
use crate::store::{self, ImportRow};

/// Largest feed accepted.
const FEED_MAX_BYTES: usize = 2 * 1024 * 1024;
/// Feeds per listing.
const MAX_IMPORTS: usize = 10;
/// Feeds of one host across all their listings.
pub const MAX_IMPORTS_PER_HOST: i64 = 50;
/// Feeds of one host fetched by one scheduled run (the least recently tried).
pub const FEEDS_PER_HOST_PER_RUN: usize = 20;
/// Fetches in flight at once during a scheduled run.
pub const SYNC_CONCURRENCY: usize = 8;
/// The recurring job that syncs every feed.
pub const SYNC_FEEDS: &str = "listing.sync_feeds";

/// How calendar feeds are fetched (the binary builds the client with it).
pub fn feed_purpose(settings: &ListingSettings) -> Purpose {
    Purpose {
        user_agent: "HomeTrip calendar sync",
        timeout: StdDuration::from_secs(settings.ical_fetch_timeout_secs.max(1)),
        connect_timeout: StdDuration::from_secs(settings.ical_fetch_timeout_secs.clamp(1, 5)),
        max_redirects: 3,
        allow_private: settings.ical_allow_private_hosts,
    }
}

/// What one scheduled run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncRun {
    pub synced: usize,
    pub failed: usize,
    /// Over a host's share of this run, or not started within the budget.
    pub deferred: usize,
}

fn import_view(row: &ImportRow) -> CalendarImport {
    CalendarImport {
        id: row.id,
        name: row.name.clone(),
        url: row.url.clone(),
        last_synced_at: row.last_synced_at,
        last_error: row.last_error.clone(),
    }
}

fn feed_error(detail: String) -> Problem {
    Problem::new(ErrorCode::BadGateway, detail)
}

/// The order of a scheduled run: each host's least recently tried feeds
/// (at most `per_host`), then hosts in turn — every host's first feed, then
/// every host's second — starting at host `start` (the caller picks it at
/// random, so no host is always last). Returns the run and what was left out.
fn fair_order(feeds: Vec<(ImportRow, Id)>, per_host: usize, start: usize) -> (Vec<ImportRow>, usize) {
    let mut by_host: BTreeMap<Id, Vec<ImportRow>> = BTreeMap::new();
    for (feed, host) in feeds {
        by_host.entry(host).or_default().push(feed);
    }
    let mut left_out = 0;
    let mut queues: Vec<std::vec::IntoIter<ImportRow>> = Vec::with_capacity(by_host.len());
    for mut feeds in by_host.into_values() {
        // Never tried first, then the oldest try: failing feeds take turns too.
        feeds.sort_by_key(|f| (f.last_attempt_at.is_some(), f.last_attempt_at, f.id));
        left_out += feeds.len().saturating_sub(per_host);
        feeds.truncate(per_host);
        queues.push(feeds.into_iter());
    }
    if !queues.is_empty() {
        let start = start % queues.len();
        queues.rotate_left(start);
    }
    let mut order = Vec::new();
    loop {
        let before = order.len();
        order.extend(queues.iter_mut().filter_map(Iterator::next));
        if order.len() == before {
            return (order, left_out);
        }
    }
}

impl ListingService {
    /// The listing's calendar as iCalendar: for its host (or an admin), or for
    /// anyone holding the export token.
    pub async fn export_ics(
        &self,
        id: Id,
        viewer: Option<Viewer>,
        token: Option<&str>,
    ) -> Result<(String, String), Problem> {
        let row = self.row(id).await?;
        let by_token =
            token.is_some_and(|t| hometrip_kernel::http::constant_time_eq(t.as_bytes(), row.ical_token.as_bytes()));
        let by_owner = viewer.is_some_and(|v| v.admin || v.id == row.host_id);
        if !by_token && !by_owner {
            return Err(Problem::not_found("listing"));
        }
        let from = today();
        let to = from + Duration::days(domain::MAX_CALENDAR_DAYS);
        // Booked and host-blocked nights; nights imported from other calendars are
        // left out so two platforms syncing each other do not echo blocks forever.
        let nights: Vec<(chrono::NaiveDate, String)> = store::taken_nights(&self.db, id, from, to)
            .await
            .map_err(db_err)?
            .into_iter()
            .filter(|(_, s)| s != store::EXTERNAL)
            .collect();
        Ok((crate::ical::export(id, &row.title, &nights), row.title))
    }

    fn export_url(public_base: &str, id: Id, token: &str) -> String {
        format!("{}/api/v1/listings/{id}/calendar.ics?token={token}", public_base.trim_end_matches('/'))
    }

    pub async fn export_link(&self, id: Id, viewer: Viewer, public_base: &str) -> Result<ExportLink, Problem> {
        let row = self.owned_row(id, viewer).await?;
        Ok(ExportLink { url: Self::export_url(public_base, id, &row.ical_token) })
    }

    /// A new export token: the old link stops working.
    pub async fn rotate_export_link(&self, id: Id, viewer: Viewer, public_base: &str) -> Result<ExportLink, Problem> {
        self.owned_row(id, viewer).await?;
        let mut token = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut token);
        let token = hex::encode(token);
        store::set_ical_token(&self.db, id, &token).await.map_err(db_err)?;
        Ok(ExportLink { url: Self::export_url(public_base, id, &token) })
    }

    pub async fn add_import(&self, id: Id, viewer: Viewer, url: &str, name: &str) -> Result<CalendarImport, Problem> {
        let listing = self.owned_row(id, viewer).await?;
        let mut errors = Vec::new();
        let parsed =
            url::Url::parse(url.trim()).ok().filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if parsed.is_none() || url.len() > 2048 {
            errors.push(FieldError::new("url", "must be an http(s) URL of at most 2048 characters"));
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            errors.push(FieldError::new("name", "must be 1 to 100 characters"));
        }
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
        if store::imports(&self.db, id).await.map_err(db_err)?.len() >= MAX_IMPORTS {
            return Err(Problem::field("url", &format!("a listing has at most {MAX_IMPORTS} calendar imports")));
        }
        if store::host_import_count(&self.db, listing.host_id).await.map_err(db_err)? >= MAX_IMPORTS_PER_HOST {
            return Err(Problem::field(
                "url",
                &format!("a host has at most {MAX_IMPORTS_PER_HOST} calendar imports across their listings"),
            ));
        }
        let row = ImportRow {
            id: Id::new(),
            listing_id: id,
            name: name.to_owned(),
            url: parsed.map(|u| u.to_string()).unwrap_or_default(),
            etag: None,
            last_synced_at: None,
            last_error: None,
            created_at: Instant::now(),
            last_attempt_at: None,
        };
        store::insert_import(&self.db, &row).await.map_err(db_err)?;
        Ok(import_view(&row))
    }

    pub async fn imports(&self, id: Id, viewer: Viewer) -> Result<Vec<CalendarImport>, Problem> {
        self.owned_row(id, viewer).await?;
        Ok(store::imports(&self.db, id).await.map_err(db_err)?.iter().map(import_view).collect())
    }

    async fn owned_import(&self, id: Id, viewer: Viewer, import_id: Id) -> Result<ImportRow, Problem> {
        self.owned_row(id, viewer).await?;
        store::import(&self.db, import_id)
            .await
            .map_err(db_err)?
            .filter(|i| i.listing_id == id)
            .ok_or_else(|| Problem::not_found("calendar import"))
    }

    pub async fn delete_import(&self, id: Id, viewer: Viewer, import_id: Id) -> Result<(), Problem> {
        let import = self.owned_import(id, viewer, import_id).await?;
        let from = today();
        let event = Envelope::new(
            MODULE,
            CALENDAR_CHANGED,
            &CalendarChanged { listing_id: id, from, to: from + Duration::days(domain::MAX_CALENDAR_DAYS) },
        )
        .map_err(db_err)?;
        store::delete_import(&self.db, &import, &event).await.map_err(db_err)?;
        self.bus.poke();
        Ok(())
    }

    pub async fn sync_import_now(&self, id: Id, viewer: Viewer, import_id: Id) -> Result<SyncResult, Problem> {
        let import = self.owned_import(id, viewer, import_id).await?;
        self.sync(&import).await
    }

    /// Fetches a feed and makes its nights the import's external blocks. A feed
    /// that fails (network, HTTP status, size, format) changes nothing stored
    /// but the error note: existing blocks are kept.
    async fn sync(&self, import: &ImportRow) -> Result<SyncResult, Problem> {
        let body = match self.fetch(import).await {
            Ok(b) => b,
            Err(e) => {
                let detail = format!("fetching the feed failed: {e}");
                store::record_import_error(&self.db, import.id, &detail).await.map_err(db_err)?;
                return Err(feed_error(detail));
            }
        };
        let Some((text, etag)) = body else {
            store::touch_import(&self.db, import.id).await.map_err(db_err)?;
            let count = store::import_nights(&self.db, import.id).await.map_err(db_err)?;
            return Ok(SyncResult { imported_nights: count, last_synced_at: Instant::now() });
        };
        let from = today();
        let to = from + Duration::days(domain::MAX_CALENDAR_DAYS);
        let nights = match crate::ical::import(&text, from, to) {
            Ok(n) => n,
            Err(detail) => {
                store::record_import_error(&self.db, import.id, &detail).await.map_err(db_err)?;
                return Err(feed_error(detail));
            }
        };
        let event =
            Envelope::new(MODULE, CALENDAR_CHANGED, &CalendarChanged { listing_id: import.listing_id, from, to })
                .map_err(db_err)?;
        store::replace_import_nights(&self.db, import, &nights, from, etag.as_deref(), &event).await.map_err(db_err)?;
        self.bus.poke();
        Ok(SyncResult { imported_nights: nights.len() as i64, last_synced_at: Instant::now() })
    }

    /// `Ok(None)` when the feed is unchanged (304).
    async fn fetch(&self, import: &ImportRow) -> Result<Option<(String, Option<String>)>, OutboundError> {
        let url = url::Url::parse(&import.url).map_err(|_| OutboundError::BadUrl)?;
        let mut request = self.feeds.get(&url)?;
        if let Some(etag) = &import.etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let response = self.feeds.send(request).await?;
        if response.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(OutboundError::Status(response.status().as_u16()));
        }
        let etag = response.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = outbound::body_capped(response, FEED_MAX_BYTES).await?;
        // Text that is not UTF-8 fails as the format error it is.
        Ok(Some((String::from_utf8_lossy(&body).into_owned(), etag)))
    }

    /// One scheduled run over every published listing's feeds (see the module
    /// docs for how it is shared out).
    pub async fn sync_all(&self) -> SyncRun {
        let feeds = match store::feeds_to_sync(&self.db).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "calendar sync: listing the feeds failed");
                return SyncRun::default();
            }
        };
        let start = rand::thread_rng().gen_range(0..feeds.len().max(1));
        let (order, left_out) = fair_order(feeds, FEEDS_PER_HOST_PER_RUN, start);
        let deadline = tokio::time::Instant::now() + StdDuration::from_secs(self.settings.ical_sync_budget_secs.max(1));
        let outcomes: Vec<Option<bool>> = futures_util::stream::iter(order)
            .map(|import| async move {
                // A fetch under way is not cut (each has its own timeout); none starts late.
                if tokio::time::Instant::now() >= deadline {
                    return None;
                }
                match self.sync(&import).await {
                    Ok(_) => Some(true),
                    Err(p) => {
                        tracing::warn!(import = %import.id, error = %p.detail, "calendar sync failed; blocks kept");
                        Some(false)
                    }
                }
            })
            .buffer_unordered(SYNC_CONCURRENCY)
            .collect()
            .await;
        let mut run = SyncRun { deferred: left_out, ..SyncRun::default() };
        for outcome in outcomes {
            match outcome {
                Some(true) => run.synced += 1,
                Some(false) => run.failed += 1,
                None => run.deferred += 1,
            }
        }
        run
    }

    /// Syncs the feeds every `ical_sync_interval_secs`, as a recurring job: one
    /// process per period however many run.
    pub async fn register_jobs(self: &Arc<Self>, jobs: &Scheduler) -> Result<(), Problem> {
        let every = Duration::seconds(self.settings.ical_sync_interval_secs.max(60) as i64);
        let handler = FeedSync { service: Arc::clone(self), running: Arc::new(AtomicBool::new(false)) };
        jobs.every(SYNC_FEEDS, every, Arc::new(handler)).await.map_err(db_err)
    }
}

/// The recurring job only starts a run, on a task of its own: a run takes up
/// to its budget, and the scheduler runs jobs one after another (expiries,
/// payouts) under a lease shorter than that. The settings keep a run (budget
/// plus one fetch) shorter than the period, so the next period's run, in
/// whichever process, starts after this one ended; `running` skips a run
/// while one is still going here.
struct FeedSync {
    service: Arc<ListingService>,
    running: Arc<AtomicBool>,
}

#[async_trait]
impl JobHandler for FeedSync {
    async fn run(&self, _: &Job) -> Result<(), String> {
        if self.running.swap(true, Ordering::AcqRel) {
            tracing::warn!("calendar sync: the previous run is still going; this period is skipped");
            return Ok(());
        }
        let service = Arc::clone(&self.service);
        let running = Arc::clone(&self.running);
        tokio::spawn(async move {
            let run = service.sync_all().await;
            running.store(false, Ordering::Release);
            tracing::info!(synced = run.synced, failed = run.failed, deferred = run.deferred, "calendar feeds synced");
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(n: u128, tried: Option<i64>) -> ImportRow {
        ImportRow {
            id: Id(uuid::Uuid::from_u128(n)),
            listing_id: Id(uuid::Uuid::from_u128(1000 + n)),
            name: String::new(),
            url: String::new(),
            etag: None,
            last_synced_at: None,
            last_error: None,
            created_at: Instant::now(),
            last_attempt_at: tried.map(|s| Instant::from(chrono::DateTime::from_timestamp(s, 0).unwrap_or_default())),
        }
    }

    #[test]
    fn hosts_take_turns_and_each_gets_a_bounded_share() {
        let greedy = Id(uuid::Uuid::from_u128(1));
        let honest = Id(uuid::Uuid::from_u128(2));
        let mut feeds: Vec<(ImportRow, Id)> = (0..30).map(|n| (feed(n, Some(100 + n as i64)), greedy)).collect();
        feeds.push((feed(99, None), honest));
        let (order, left_out) = fair_order(feeds.clone(), 20, 0);
        assert_eq!(order.len(), 21);
        assert_eq!(left_out, 10);
        // The honest host's one feed is among the first two, whatever the start.
        assert!(order[..2].iter().any(|f| f.id == feed(99, None).id));
        let (order, _) = fair_order(feeds, 20, 1);
        assert_eq!(order[0].id, feed(99, None).id);
        // The greedy host's least recently tried feeds go first.
        assert_eq!(order[1].id, feed(0, None).id);
    }

    #[test]
    fn feeds_never_tried_go_first_then_the_longest_untried() {
        let host = Id(uuid::Uuid::from_u128(1));
        let (order, _) = fair_order(vec![(feed(1, Some(50)), host), (feed(2, None), host)], 5, 0);
        assert_eq!(order.iter().map(|f| f.id).collect::<Vec<_>>(), vec![feed(2, None).id, feed(1, None).id]);
        let (none, left_out) = fair_order(Vec::new(), 5, 3);
        assert!(none.is_empty() && left_out == 0);
    }
}
