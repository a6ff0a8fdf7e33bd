//! The in-process implementation of the admin module: the edge's records of
//! admin calls (`audit.admin_action`) chained into the audit log in the
//! order they arrive, the log's search, and its verification (on demand and
//! by a nightly job, whose verdict is also the `audit_chain_valid` gauge).

use std::sync::Arc;

use async_trait::async_trait;
use hometrip_kernel::audit::{AdminAction, ADMIN_ACTION};
use hometrip_kernel::db::{Db, DbError};
use hometrip_kernel::events::{Envelope, EventBus, EventHandler};
use hometrip_kernel::jobs::{Job, JobHandler, Scheduler};
use hometrip_kernel::Problem;

use crate::api::AdminSettings;
use crate::domain::{self, Chained, Stored, Verdict, GENESIS};
use crate::store::{self, AuditFilter, EntryRow, NewEntry};

pub const VERIFY_JOB: &str = "admin.audit_verify";

pub struct AdminService {
    db: Db,
    bus: Arc<EventBus>,
    jobs: Arc<Scheduler>,
    settings: AdminSettings,
}

pub use crate::api::AuditEntry;

fn db_err(e: DbError) -> Problem {
    Problem::from(e)
}

fn view(r: EntryRow) -> AuditEntry {
    AuditEntry {
        id: r.id,
        seq: r.seq,
        at: r.at,
        actor_id: r.actor_id,
        action: r.action,
        target: r.target,
        reason: r.reason,
        status: r.status,
        request_id: r.request_id,
        prev_hash: r.prev_hash,
        hash: r.hash,
    }
}

/// Rows read per step of a verification.
const VERIFY_BATCH: i64 = 1_000;

impl AdminService {
    pub fn new(db: Db, bus: Arc<EventBus>, jobs: Arc<Scheduler>, settings: AdminSettings) -> Arc<Self> {
        Arc::new(AdminService { db, bus, jobs, settings })
    }

    pub async fn subscribe(self: &Arc<Self>) -> Result<(), String> {
        self.bus.subscribe("admin.audit", &[ADMIN_ACTION], Arc::clone(self) as Arc<dyn EventHandler>).await;
        let every = chrono::Duration::seconds(i64::try_from(self.settings.verify_every_secs.max(60)).unwrap_or(86_400));
        self.jobs.every(VERIFY_JOB, every, Arc::clone(self) as Arc<dyn JobHandler>).await.map_err(|e| e.to_string())
    }

    /// Chains one record (once per record id).
    pub async fn append(&self, a: &AdminAction) -> Result<(), Problem> {
        let entry = NewEntry {
            id: a.id,
            at: a.at,
            actor_id: a.actor_id,
            action: a.action.clone(),
            target: a.target.clone(),
            reason: a.reason.clone(),
            status: i32::from(a.status),
            request_id: a.request_id.clone(),
        };
        for _ in 0..20 {
            match store::try_append(&self.db, &entry).await {
                Ok(Some(_)) => return Ok(()),
                // Another append moved the head (or took the seq): again.
                Ok(None) => continue,
                Err(DbError::Conflict(_)) => continue,
                Err(e) => return Err(db_err(e)),
            }
        }
        Err(Problem::new(hometrip_kernel::ErrorCode::ServiceUnavailable, "the audit log is busy").retry_after(1))
    }

    pub async fn search(&self, filter: &AuditFilter, limit: i64) -> Result<(Vec<AuditEntry>, Option<String>), Problem> {
        let rows = store::search(&self.db, filter, limit).await.map_err(db_err)?;
        let next = if rows.len() as i64 == limit { rows.last().map(|r| r.seq.to_string()) } else { None };
        Ok((rows.into_iter().map(view).collect(), next))
    }

    /// Walks the whole chain from the first entry and checks it reaches
    /// the head as it was when the walk began (entries appended meanwhile
    /// are the next walk's).
    pub async fn verify(&self) -> Result<Verdict, Problem> {
        let head = store::head(&self.db).await.map_err(db_err)?;
        let head_seq = head.as_ref().map(|(s, _)| *s).unwrap_or(0);
        let (mut expected, mut prev) = (1i64, GENESIS.to_owned());
        let broken = |seq: i64, problem: String, entries: i64| Verdict {
            ok: false,
            entries,
            first_bad_seq: Some(seq),
            problem: Some(problem),
        };
        loop {
            let mut rows = store::run_after(&self.db, expected - 1, VERIFY_BATCH).await.map_err(db_err)?;
            let read = rows.len() as i64;
            rows.retain(|r| r.seq <= head_seq);
            // A row removed right where a batch starts shows as a gap here.
            if let Some(first) = rows.first() {
                if first.seq != expected {
                    let found = first.seq;
                    return Ok(broken(
                        expected,
                        format!("entry {expected} is missing (found {found} next)"),
                        expected - 1,
                    ));
                }
            }
            let texts: Vec<(String, String, String)> =
                rows.iter().map(|r| (r.id.to_string(), store::hashed_instant(r.at), r.actor_id.to_string())).collect();
            let stored: Vec<Stored<'_>> = rows
                .iter()
                .zip(&texts)
                .map(|(r, (id, at, actor))| Stored {
                    fields: Chained {
                        seq: r.seq,
                        id,
                        at,
                        actor_id: actor,
                        action: &r.action,
                        target: &r.target,
                        reason: &r.reason,
                        status: r.status,
                        request_id: &r.request_id,
                    },
                    prev_hash: &r.prev_hash,
                    hash: &r.hash,
                })
                .collect();
            if let Err((seq, problem)) = domain::check_run(&stored, &mut expected, &mut prev) {
                return Ok(broken(seq, problem, expected - 1));
            }
            if read < VERIFY_BATCH || (rows.len() as i64) < read {
                break;
            }
        }
        let entries = expected - 1;
        let reaches = match &head {
            None => entries == 0,
            Some((seq, hash)) => *seq == entries && *hash == prev,
        };
        if !reaches {
            return Ok(broken(
                entries + 1,
                format!("the chain ends at {entries} but its head is at {head_seq}"),
                entries,
            ));
        }
        Ok(Verdict { ok: true, entries, first_bad_seq: None, problem: None })
    }

    /// The nightly check: its verdict is recorded, a gauge and, when broken, an error.
    async fn verify_and_record(&self) -> Result<Verdict, Problem> {
        let verdict = self.verify().await?;
        metrics::gauge!("audit_chain_valid").set(if verdict.ok { 1.0 } else { 0.0 });
        if !verdict.ok {
            tracing::error!(first_bad_seq = ?verdict.first_bad_seq, problem = ?verdict.problem, "the audit chain is broken");
        }
        store::record_verification(
            &self.db,
            self.jobs.clock().now(),
            verdict.ok,
            verdict.entries,
            verdict.first_bad_seq,
        )
        .await
        .map_err(db_err)?;
        Ok(verdict)
    }
}

#[async_trait]
impl EventHandler for AdminService {
    async fn handle(&self, event: &Envelope) -> Result<(), String> {
        if event.event_type != ADMIN_ACTION {
            return Ok(());
        }
        self.append(&event.decode::<AdminAction>()?).await.map_err(|p| p.to_string())
    }
}

#[async_trait]
impl JobHandler for AdminService {
    async fn run(&self, job: &Job) -> Result<(), String> {
        match job.kind.as_str() {
            VERIFY_JOB => self.verify_and_record().await.map(|_| ()).map_err(|p| p.to_string()),
            other => Err(format!("no handler for {other}")),
        }
    }
}

#[async_trait::async_trait]
impl crate::api::AuditLog for AdminService {
    async fn entries(
        &self,
        admin: &hometrip_kernel::auth_context::AuthUser,
        cursor: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, Problem> {
        admin.require_admin()?;
        let filter = crate::store::AuditFilter { before_seq: cursor, ..crate::store::AuditFilter::default() };
        Ok(self.search(&filter, i64::from(limit.clamp(1, 200))).await?.0)
    }

    async fn verify(&self, admin: &hometrip_kernel::auth_context::AuthUser) -> Result<crate::api::Verdict, Problem> {
        admin.require_admin()?;
        AdminService::verify(self).await
    }
}
