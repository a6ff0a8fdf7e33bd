//! Persistence of the audit chain: an entry is appended with the head in
//! one transaction, after the head it read (a concurrent append makes it
//! retry), and never changed afterwards.

use hometrip_kernel::db::prelude::*;
use hometrip_kernel::db::{Db, DbError, MigrationSet};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{run, transaction, Id};

use crate::domain::{self, Chained, GENESIS};

pub mod schema {
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        audit_log (seq) {
            seq -> BigInt,
            id -> DbUuid,
            at -> DbInstant,
            actor_id -> DbUuid,
            action -> Text,
            target -> Text,
            reason -> Text,
            status -> Integer,
            request_id -> Text,
            prev_hash -> Text,
            hash -> Text,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        audit_head (id) {
            id -> Integer,
            seq -> BigInt,
            hash -> Text,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        audit_verifications (id) {
            id -> DbUuid,
            at -> DbInstant,
            ok -> Bool,
            entries -> BigInt,
            first_bad_seq -> Nullable<BigInt>,
        }
    }
}
use schema::{audit_head, audit_log, audit_verifications};

pub const MIGRATIONS: MigrationSet = MigrationSet { module: "admin", postgres: || PG, sqlite: || SQLITE };
const PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/admin/postgres");
const SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/admin/sqlite");

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct EntryRow {
    pub seq: i64,
    pub id: Id,
    pub at: Instant,
    pub actor_id: Id,
    pub action: String,
    pub target: String,
    pub reason: String,
    pub status: i32,
    pub request_id: String,
    pub prev_hash: String,
    pub hash: String,
}

/// An entry before the chain gives it its place.
pub struct NewEntry {
    pub id: Id,
    pub at: Instant,
    pub actor_id: Id,
    pub action: String,
    pub target: String,
    pub reason: String,
    pub status: i32,
    pub request_id: String,
}

/// The instant as hashed: RFC 3339, microseconds, UTC (what both backends keep).
pub fn hashed_instant(at: Instant) -> String {
    at.0.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Appends `entry` after the current head, once per id. `Ok(false)` when
/// another append took the place first (the caller tries again).
pub async fn try_append(db: &Db, entry: &NewEntry) -> Result<Option<bool>, DbError> {
    let id_text = entry.id.to_string();
    let at_text = hashed_instant(entry.at);
    let actor_text = entry.actor_id.to_string();
    transaction!(db, |conn| {
        let known: i64 = audit_log::table.filter(audit_log::id.eq(entry.id)).count().get_result(conn).await?;
        if known > 0 {
            return Ok::<_, DbError>(Some(false));
        }
        let head: Option<(i64, String)> =
            audit_head::table.find(1).select((audit_head::seq, audit_head::hash)).first(conn).await.optional()?;
        let (last_seq, prev_hash) = head.clone().unwrap_or((0, GENESIS.to_owned()));
        let seq = last_seq + 1;
        let fields = Chained {
            seq,
            id: &id_text,
            at: &at_text,
            actor_id: &actor_text,
            action: &entry.action,
            target: &entry.target,
            reason: &entry.reason,
            status: entry.status,
            request_id: &entry.request_id,
        };
        let hash = domain::entry_hash(&prev_hash, &fields);
        // The head moves only from what was read: a concurrent append
        // changed it, and this one goes again.
        let moved = match head {
            Some((old, _)) => {
                diesel::update(audit_head::table.find(1).filter(audit_head::seq.eq(old)))
                    .set((audit_head::seq.eq(seq), audit_head::hash.eq(&hash)))
                    .execute(conn)
                    .await?
            }
            None => {
                diesel::insert_into(audit_head::table)
                    .values((audit_head::id.eq(1), audit_head::seq.eq(seq), audit_head::hash.eq(&hash)))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?
            }
        };
        if moved == 0 {
            return Ok(None);
        }
        diesel::insert_into(audit_log::table)
            .values(EntryRow {
                seq,
                id: entry.id,
                at: entry.at,
                actor_id: entry.actor_id,
                action: entry.action.clone(),
                target: entry.target.clone(),
                reason: entry.reason.clone(),
                status: entry.status,
                request_id: entry.request_id.clone(),
                prev_hash,
                hash,
            })
            .execute(conn)
            .await?;
        Ok(Some(true))
    })
}

pub async fn head(db: &Db) -> Result<Option<(i64, String)>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            audit_head::table.find(1).select((audit_head::seq, audit_head::hash)).first(conn).await.optional()?,
        )
    })
}

/// Entries after `after_seq`, in chain order, at most `limit`.
pub async fn run_after(db: &Db, after_seq: i64, limit: i64) -> Result<Vec<EntryRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            audit_log::table
                .filter(audit_log::seq.gt(after_seq))
                .order(audit_log::seq.asc())
                .limit(limit)
                .select(EntryRow::as_select())
                .load(conn)
                .await?,
        )
    })
}

/// What the audit page filters by.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<Id>,
    pub action: Option<String>,
    pub from: Option<Instant>,
    pub to: Option<Instant>,
    /// Entries before this seq (the previous page's last).
    pub before_seq: Option<i64>,
}

/// Entries matching `f`, newest first.
pub async fn search(db: &Db, f: &AuditFilter, limit: i64) -> Result<Vec<EntryRow>, DbError> {
    run!(db, |conn| {
        let mut q =
            audit_log::table.order(audit_log::seq.desc()).limit(limit).select(EntryRow::as_select()).into_boxed();
        if let Some(a) = f.actor {
            q = q.filter(audit_log::actor_id.eq(a));
        }
        if let Some(action) = &f.action {
            q = q.filter(audit_log::action.eq(action.clone()));
        }
        if let Some(from) = f.from {
            q = q.filter(audit_log::at.ge(from));
        }
        if let Some(to) = f.to {
            q = q.filter(audit_log::at.lt(to));
        }
        if let Some(before) = f.before_seq {
            q = q.filter(audit_log::seq.lt(before));
        }
        Ok::<_, DbError>(q.load(conn).await?)
    })
}

pub async fn record_verification(
    db: &Db,
    at: Instant,
    ok: bool,
    entries: i64,
    first_bad_seq: Option<i64>,
) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::insert_into(audit_verifications::table)
            .values((
                audit_verifications::id.eq(Id::new()),
                audit_verifications::at.eq(at),
                audit_verifications::ok.eq(ok),
                audit_verifications::entries.eq(entries),
                audit_verifications::first_bad_seq.eq(first_bad_seq),
            ))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(())
    })
}
