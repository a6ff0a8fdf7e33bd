//! Durable jobs: timers stored in the database (hold expiry, auto-complete,
//! payout release, reconciliation) and run once their time has come.
//!
//! A module schedules a job inside the transaction of the state change that
//! needs it ([`JobWrite::schedule_job`]), so the timer exists exactly when the
//! state does. Any number of processes may run the [`Scheduler`]: a job is
//! claimed with a conditional update (a lease), so one process runs it; if that
//! process dies the lease runs out and another picks the job up. Handlers are
//! idempotent anyway (they check state before acting), which makes the rare
//! rerun after a crash harmless.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use diesel::QueryResult;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, RwLock};
use tracing::Instrument as _;

use crate::db::prelude::*;
use crate::db::{Db, DbError, PgConn, SqliteConn};
use crate::ids::Id;
use crate::time::{Clock, Instant};

pub mod schema {
    diesel::table! {
        use diesel::sql_types::*;
        use crate::db::sql::*;
        jobs (id) {
            id -> DbUuid,
            kind -> Text,
            dedupe_key -> Text,
            payload -> Text,
            run_at -> DbInstant,
            attempts -> Integer,
            locked_by -> Nullable<DbUuid>,
            locked_until -> Nullable<DbInstant>,
            last_error -> Nullable<Text>,
            done_at -> Nullable<DbInstant>,
            failed -> Bool,
            created_at -> DbInstant,
        }
    }
}
use schema::jobs;

/// A job to schedule: `kind` picks the handler, `key` makes scheduling
/// idempotent (one job per key, ever).
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub key: String,
    pub run_at: Instant,
    pub payload: serde_json::Value,
}

impl NewJob {
    pub fn new(kind: &str, key: impl Into<String>, run_at: Instant, payload: &impl Serialize) -> Self {
        NewJob {
            kind: kind.to_owned(),
            key: key.into(),
            run_at,
            payload: serde_json::to_value(payload).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = jobs)]
struct JobInsert {
    id: Id,
    kind: String,
    dedupe_key: String,
    payload: String,
    run_at: Instant,
    attempts: i32,
    failed: bool,
    created_at: Instant,
}

/// A claimed job, as its handler sees it.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = jobs)]
pub struct Job {
    pub id: Id,
    pub kind: String,
    pub dedupe_key: String,
    pub payload: String,
    pub run_at: Instant,
    pub attempts: i32,
}

impl Job {
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_str(&self.payload).map_err(|e| format!("{} payload: {e}", self.kind))
    }
}

/// Schedules a job on the connection of the caller's transaction.
pub trait JobWrite {
    fn schedule_job(&mut self, job: &NewJob) -> impl Future<Output = QueryResult<()>> + Send;
}

macro_rules! impl_job_write {
    ($($conn:ty),*) => {$(
        impl JobWrite for $conn {
            async fn schedule_job(&mut self, job: &NewJob) -> QueryResult<()> {
                diesel::insert_into(jobs::table)
                    .values(JobInsert {
                        id: Id::new(),
                        kind: job.kind.clone(),
                        dedupe_key: job.key.clone(),
                        payload: job.payload.to_string(),
                        run_at: job.run_at,
                        attempts: 0,
                        failed: false,
                        created_at: Instant::now(),
                    })
                    .on_conflict(jobs::dedupe_key)
                    .do_nothing()
                    .cached()
                    .execute(self)
                    .await
                    .map(|_| ())
            }
        }
    )*};
}
// On a shared PostgreSQL connection reference too, so a caller can pipeline
// the insert with its other statements.
impl_job_write!(PgConn, &PgConn, SqliteConn);

/// What a job of one kind does. Return `Err` to retry later with backoff.
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync {
    async fn run(&self, job: &Job) -> Result<(), String>;
}

/// A job as admins and tests see it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: Id,
    pub kind: String,
    pub key: String,
    pub run_at: Instant,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub done_at: Option<Instant>,
    pub failed: bool,
}

type JobRow = (Id, String, String, Instant, i32, Option<String>, Option<Instant>, bool);

#[derive(Debug, Clone, Copy)]
pub struct SchedulerSettings {
    /// How often due jobs are looked for when nothing pokes the scheduler.
    pub poll: Duration,
    /// How long a claim holds before another process may take the job over.
    pub lease: Duration,
    /// Attempts before a job is parked as failed.
    pub max_attempts: i32,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings { poll: Duration::from_secs(1), lease: Duration::from_secs(120), max_attempts: 10 }
    }
}

/// Runs due jobs of the kinds registered in this process.
pub struct Scheduler {
    db: Db,
    clock: Clock,
    settings: SchedulerSettings,
    /// This process, as the holder of its claims.
    owner: Id,
    handlers: RwLock<HashMap<String, Arc<dyn JobHandler>>>,
    /// Kinds that run every so often: each run schedules the next.
    recurring: RwLock<HashMap<String, chrono::Duration>>,
    wake: Notify,
}

const PRUNE_AFTER_DAYS: i64 = 30;

impl Scheduler {
    pub fn new(db: Db, clock: Clock, settings: SchedulerSettings) -> Arc<Self> {
        Arc::new(Scheduler {
            db,
            clock,
            settings,
            owner: Id::new(),
            handlers: RwLock::new(HashMap::new()),
            recurring: RwLock::new(HashMap::new()),
            wake: Notify::new(),
        })
    }

    /// Runs `kind` every `every` (at the end of each period of the clock),
    /// in one process per period whatever the number of processes: the
    /// period is the job's key.
    pub async fn every(
        &self,
        kind: &str,
        every: chrono::Duration,
        handler: Arc<dyn JobHandler>,
    ) -> Result<(), DbError> {
        self.register(kind, handler).await;
        self.recurring.write().await.insert(kind.to_owned(), every);
        self.schedule_next(kind, every).await
    }

    async fn schedule_next(&self, kind: &str, every: chrono::Duration) -> Result<(), DbError> {
        let period = every.num_seconds().max(1);
        let bucket = self.clock.now().unix().div_euclid(period) + 1;
        let run_at =
            chrono::DateTime::from_timestamp(bucket * period, 0).map(Instant::from).unwrap_or(self.clock.now());
        let job = NewJob::new(kind, format!("{kind}:{bucket}"), run_at, &serde_json::Value::Null);
        crate::transaction!(self.db, |conn| { conn.schedule_job(&job).await.map_err(DbError::from) })
    }

    /// Attempts before a job is parked as failed.
    pub fn max_attempts(&self) -> i32 {
        self.settings.max_attempts
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub async fn register(&self, kind: &str, handler: Arc<dyn JobHandler>) {
        // Every outcome's series exists from the start, at 0: an alert on
        // `increase(...)` sees the first failure, and a dashboard a flat line.
        for outcome in ["ok", "retry", "failed"] {
            metrics::counter!("job_runs_total", "kind" => kind.to_owned(), "outcome" => outcome).increment(0);
        }
        self.handlers.write().await.insert(kind.to_owned(), handler);
    }

    /// Tells the loop that a job may be due now (it also polls).
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    /// Tells the loop that `jobs` were just committed. It is woken only for
    /// one due before its next poll: a poll per booking for a timer 15
    /// minutes away was a query per request under load.
    pub fn scheduled(&self, jobs: &[NewJob]) {
        let next_poll = self.clock.now().plus(chrono::Duration::from_std(self.settings.poll).unwrap_or_default());
        if jobs.iter().any(|job| job.run_at <= next_poll) {
            self.poke();
        }
    }

    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut last_prune = std::time::Instant::now();
            loop {
                if last_prune.elapsed() >= Duration::from_secs(600) {
                    last_prune = std::time::Instant::now();
                    if let Err(e) = this.prune().await {
                        tracing::warn!(error = %e, "job pruning failed");
                    }
                }
                match this.run_due(50).await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "job scheduler failed; retrying"),
                }
                let _ = tokio::time::timeout(this.settings.poll, this.wake.notified()).await;
            }
        })
    }

    /// Claims and runs up to `limit` due jobs; returns how many ran.
    pub async fn run_due(&self, limit: i64) -> Result<usize, DbError> {
        let kinds: Vec<String> = self.handlers.read().await.keys().cloned().collect();
        if kinds.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now();
        let due: Vec<Id> = crate::run!(self.db, |conn| {
            jobs::table
                .filter(jobs::done_at.is_null())
                .filter(jobs::run_at.le(now))
                .filter(jobs::kind.eq_any(&kinds))
                .filter(jobs::locked_until.is_null().or(jobs::locked_until.lt(now)))
                .order(jobs::run_at.asc())
                .limit(limit)
                .select(jobs::id)
                .load::<Id>(conn)
                .await
                .map_err(DbError::from)
        })?;
        let mut ran = 0;
        for id in due {
            if let Some(job) = self.claim(id).await? {
                self.execute(job).await?;
                ran += 1;
            }
        }
        Ok(ran)
    }

    /// Due jobs of this scheduler's kinds that a run holds right now (this
    /// process's loop, or another process): a test that asked for a run
    /// waits for them.
    pub async fn running(&self) -> Result<i64, DbError> {
        let kinds: Vec<String> = self.handlers.read().await.keys().cloned().collect();
        let now = self.clock.now();
        crate::run!(self.db, |conn| {
            jobs::table
                .filter(jobs::done_at.is_null())
                .filter(jobs::run_at.le(now))
                .filter(jobs::kind.eq_any(&kinds))
                .filter(jobs::locked_until.ge(now))
                .count()
                .get_result::<i64>(conn)
                .await
                .map_err(DbError::from)
        })
    }

    /// Takes the lease on a job unless another process holds it or it is done.
    async fn claim(&self, id: Id) -> Result<Option<Job>, DbError> {
        let now = self.clock.now();
        let until = now.plus(chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::minutes(2)));
        let owner = self.owner;
        crate::run!(self.db, |conn| {
            let claimed = diesel::update(
                jobs::table
                    .filter(jobs::id.eq(id))
                    .filter(jobs::done_at.is_null())
                    // Still due: a run that failed since this scheduler listed the job
                    // released it with a later retry time, which must be waited for.
                    .filter(jobs::run_at.le(now))
                    .filter(jobs::locked_until.is_null().or(jobs::locked_until.lt(now))),
            )
            .set((
                jobs::locked_by.eq(Some(owner)),
                jobs::locked_until.eq(Some(until)),
                jobs::attempts.eq(jobs::attempts + 1),
            ))
            .cached()
            .execute(conn)
            .await?;
            if claimed == 0 {
                return Ok(None);
            }
            jobs::table.find(id).select(Job::as_select()).first::<Job>(conn).await.optional().map_err(DbError::from)
        })
    }

    async fn execute(&self, job: Job) -> Result<(), DbError> {
        let handler = self.handlers.read().await.get(&job.kind).cloned();
        // A trace of its own, named after the job.
        let span = tracing::info_span!("job", otel.name = %job.kind, otel.status_code = tracing::field::Empty, job_id = %job.id);
        let outcome = match handler {
            Some(h) => h.run(&job).instrument(span.clone()).await,
            None => Err(format!("no handler for {}", job.kind)),
        };
        if outcome.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        let now = self.clock.now();
        let owner = self.owner;
        let id = job.id;
        // A recurring job's next period is scheduled whatever this run did:
        // a failing run retries on its own and must not stop the series.
        if let Some(every) = self.recurring.read().await.get(&job.kind).copied() {
            self.schedule_next(&job.kind, every).await?;
        }
        let counted = match &outcome {
            Ok(()) => "ok",
            Err(_) if job.attempts >= self.settings.max_attempts => "failed",
            Err(_) => "retry",
        };
        metrics::counter!("job_runs_total", "kind" => job.kind.clone(), "outcome" => counted).increment(1);
        match outcome {
            Ok(()) => {
                crate::run!(self.db, |conn| {
                    diesel::update(jobs::table.filter(jobs::id.eq(id)).filter(jobs::locked_by.eq(Some(owner))))
                        .set((jobs::done_at.eq(Some(now)), jobs::locked_until.eq(None::<Instant>)))
                        .cached()
                        .execute(conn)
                        .await
                        .map(|_| ())
                        .map_err(DbError::from)
                })
            }
            Err(error) => {
                let give_up = job.attempts >= self.settings.max_attempts;
                if give_up {
                    tracing::error!(job = %job.id, kind = %job.kind, %error, "job failed for good");
                } else {
                    tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, %error, "job failed; will retry");
                }
                // 2 s, 4 s, 8 s ... capped at an hour.
                let backoff = chrono::Duration::seconds((1i64 << job.attempts.clamp(1, 12)).min(3600));
                crate::run!(self.db, |conn| {
                    diesel::update(jobs::table.filter(jobs::id.eq(id)).filter(jobs::locked_by.eq(Some(owner))))
                        .set((
                            jobs::last_error.eq(Some(error.clone())),
                            jobs::locked_until.eq(None::<Instant>),
                            jobs::run_at.eq(now.plus(backoff)),
                            jobs::done_at.eq(give_up.then_some(now)),
                            jobs::failed.eq(give_up),
                        ))
                        .execute(conn)
                        .await
                        .map(|_| ())
                        .map_err(DbError::from)
                })
            }
        }
    }

    /// Jobs by key prefix (admin and tests): newest first.
    pub async fn jobs_with_key_prefix(&self, prefix: &str, limit: i64) -> Result<Vec<JobView>, DbError> {
        let pattern = format!("{}%", prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let rows: Vec<JobRow> = crate::run!(self.db, |conn| {
            jobs::table
                .filter(jobs::dedupe_key.like(&pattern).escape('\\'))
                .order(jobs::created_at.desc())
                .limit(limit)
                .select((
                    jobs::id,
                    jobs::kind,
                    jobs::dedupe_key,
                    jobs::run_at,
                    jobs::attempts,
                    jobs::last_error,
                    jobs::done_at,
                    jobs::failed,
                ))
                .load::<JobRow>(conn)
                .await
                .map_err(DbError::from)
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, kind, key, run_at, attempts, last_error, done_at, failed)| JobView {
                id,
                kind,
                key,
                run_at,
                attempts,
                last_error,
                done_at,
                failed,
            })
            .collect())
    }

    /// Forgets jobs finished long ago (failed ones are kept for inspection).
    pub async fn prune(&self) -> Result<usize, DbError> {
        let before = self.clock.now().minus(chrono::Duration::days(PRUNE_AFTER_DAYS));
        crate::run!(self.db, |conn| {
            diesel::delete(jobs::table.filter(jobs::done_at.lt(before)).filter(jobs::failed.eq(false)))
                .execute(conn)
                .await
                .map_err(DbError::from)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    async fn db() -> Result<Db, String> {
        let dir = std::env::temp_dir().join(format!("ht-jobs-{}", Id::new()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let url = format!("sqlite://{}/t.db", dir.display());
        let db = Db::connect(&url, 4, 1).await.map_err(|e| e.to_string())?;
        db.migrate(&url, vec![crate::events::MIGRATIONS]).await.map_err(|e| e.to_string())?;
        Ok(db)
    }

    struct Count(AtomicU32, u32);

    #[async_trait::async_trait]
    impl JobHandler for Count {
        async fn run(&self, _: &Job) -> Result<(), String> {
            let n = AtomicU32::fetch_add(&self.0, 1, Ordering::SeqCst) + 1;
            if n <= self.1 {
                Err(format!("failure {n}"))
            } else {
                Ok(())
            }
        }
    }

    async fn schedule(db: &Db, job: NewJob) -> Result<(), String> {
        crate::transaction!(db, |conn| { conn.schedule_job(&job).await.map_err(DbError::from) })
            .map_err(|e: DbError| e.to_string())
    }

    #[tokio::test]
    async fn a_failing_recurring_job_still_schedules_its_next_period() -> Result<(), String> {
        let db = db().await?;
        let clock = Clock::system();
        let s = Scheduler::new(db, clock.clone(), SchedulerSettings::default());
        let always_failing = Arc::new(Count(AtomicU32::new(0), u32::MAX));
        s.every("tick", chrono::Duration::seconds(60), always_failing.clone()).await.map_err(|e| e.to_string())?;
        assert_eq!(s.jobs_with_key_prefix("tick:", 10).await.map_err(|e| e.to_string())?.len(), 1);
        clock.advance(61);
        assert_eq!(s.run_due(10).await.map_err(|e| e.to_string())?, 1);
        assert_eq!(AtomicU32::load(&always_failing.0, Ordering::SeqCst), 1);
        let views = s.jobs_with_key_prefix("tick:", 10).await.map_err(|e| e.to_string())?;
        assert_eq!(views.len(), 2, "the next period is scheduled although this run failed: {views:?}");
        Ok(())
    }

    #[tokio::test]
    async fn a_job_runs_once_when_due_across_schedulers_and_retries_failures() -> Result<(), String> {
        let db = db().await?;
        let clock = Clock::system();
        let a = Scheduler::new(db.clone(), clock.clone(), SchedulerSettings::default());
        let b = Scheduler::new(db.clone(), clock.clone(), SchedulerSettings::default());
        let count = Arc::new(Count(AtomicU32::new(0), 1));
        a.register("t", count.clone()).await;
        b.register("t", count.clone()).await;
        let at = clock.now().plus(chrono::Duration::minutes(10));
        schedule(&db, NewJob::new("t", "k1", at, &1)).await?;
        // The same key again is a no-op.
        schedule(&db, NewJob::new("t", "k1", at, &2)).await?;
        assert_eq!(a.run_due(10).await.map_err(|e| e.to_string())?, 0, "not due yet");
        clock.advance(601);
        let (ra, rb) = tokio::join!(a.run_due(10), b.run_due(10));
        assert_eq!(ra.map_err(|e| e.to_string())? + rb.map_err(|e| e.to_string())?, 1, "one claim wins");
        assert_eq!(AtomicU32::load(&count.0, Ordering::SeqCst), 1);
        // The failure is retried after its backoff, then done.
        clock.advance(5);
        assert_eq!(b.run_due(10).await.map_err(|e| e.to_string())?, 1);
        assert_eq!(AtomicU32::load(&count.0, Ordering::SeqCst), 2);
        clock.advance(3600);
        assert_eq!(a.run_due(10).await.map_err(|e| e.to_string())?, 0, "done jobs never run again");
        let views = a.jobs_with_key_prefix("k", 10).await.map_err(|e| e.to_string())?;
        assert_eq!(views.len(), 1);
        assert!(views[0].done_at.is_some() && !views[0].failed);
        assert_eq!(views[0].attempts, 2);
        Ok(())
    }
}
