//! API key rows. A change by the owner appends its audit record to the
//! outbox in the same transaction.

use hometrip_kernel::api_keys::KeyUse;
use hometrip_kernel::db::prelude::*;
use hometrip_kernel::db::{Db, DbError};
use hometrip_kernel::events::{Envelope, OutboxWrite};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{run, transaction, Id};

use super::schema::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: Id,
    pub owner_id: Id,
    pub name: String,
    pub public_part: String,
    pub key_hash: String,
    pub scopes: String,
    pub created_at: Instant,
    pub expires_at: Option<Instant>,
    pub last_used_at: Option<Instant>,
    pub revoked_at: Option<Instant>,
    pub replaced_by: Option<Id>,
}

/// Inserts a key unless the owner holds `max` live keys already (`false`).
pub async fn insert_key(db: &Db, row: &ApiKeyRow, max: i64, now: Instant, audit: &Envelope) -> Result<bool, DbError> {
    transaction!(db, |conn| {
        // The owner's row, locked (PostgreSQL): two creations count one after the other.
        diesel::update(accounts::table.find(row.owner_id))
            .set(accounts::updated_at.eq(accounts::updated_at))
            .execute(conn)
            .await?;
        let live: i64 = api_keys::table
            .filter(api_keys::owner_id.eq(row.owner_id))
            .filter(api_keys::revoked_at.is_null())
            .filter(api_keys::expires_at.is_null().or(api_keys::expires_at.gt(now)))
            .count()
            .get_result(conn)
            .await?;
        if live >= max {
            return Ok(false);
        }
        diesel::insert_into(api_keys::table).values(row).execute(conn).await?;
        conn.append_event(audit).await?;
        Ok::<_, DbError>(true)
    })
}

/// The owner's keys, newest first; revoked ones only when asked.
pub async fn keys_of(db: &Db, owner: Id, with_revoked: bool) -> Result<Vec<ApiKeyRow>, DbError> {
    run!(db, |conn| {
        let mut query = api_keys::table.filter(api_keys::owner_id.eq(owner)).into_boxed();
        if !with_revoked {
            query = query.filter(api_keys::revoked_at.is_null());
        }
        Ok::<_, DbError>(
            query
                .order((api_keys::created_at.desc(), api_keys::id.desc()))
                .select(ApiKeyRow::as_select())
                .load(conn)
                .await?,
        )
    })
}

pub async fn key(db: &Db, id: Id) -> Result<Option<ApiKeyRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(api_keys::table.find(id).select(ApiKeyRow::as_select()).first(conn).await.optional()?)
    })
}

/// A presented key's row by its public part, with its owner's roles and
/// whether the owner is suspended.
pub async fn key_by_public_part(db: &Db, public: &str) -> Result<Option<(ApiKeyRow, String, bool)>, DbError> {
    run!(db, |conn| {
        let found: Option<(ApiKeyRow, String, Option<Instant>)> = api_keys::table
            .inner_join(accounts::table)
            .filter(api_keys::public_part.eq(public))
            .select((ApiKeyRow::as_select(), accounts::roles, accounts::suspended_at))
            .first(conn)
            .await
            .optional()?;
        Ok::<_, DbError>(found.map(|(row, roles, suspended)| (row, roles, suspended.is_some())))
    })
}

/// How a rotation went.
pub enum Rotation {
    Done,
    /// The key was rotated, revoked or had expired meanwhile.
    Gone,
}

/// Inserts `new` and, if `old` is still live and not rotated, ends it at
/// `old_until` pointing at `new`, in one transaction.
pub async fn rotate(
    db: &Db,
    old: Id,
    old_until: Instant,
    new: &ApiKeyRow,
    now: Instant,
    audit: &Envelope,
) -> Result<Rotation, DbError> {
    transaction!(db, |conn| {
        let changed = diesel::update(
            api_keys::table
                .find(old)
                .filter(api_keys::revoked_at.is_null())
                .filter(api_keys::replaced_by.is_null())
                .filter(api_keys::expires_at.is_null().or(api_keys::expires_at.gt(now))),
        )
        .set((api_keys::expires_at.eq(Some(old_until)), api_keys::replaced_by.eq(Some(new.id))))
        .execute(conn)
        .await?;
        if changed == 0 {
            return Ok(Rotation::Gone);
        }
        diesel::insert_into(api_keys::table).values(new).execute(conn).await?;
        conn.append_event(audit).await?;
        Ok::<_, DbError>(Rotation::Done)
    })
}

/// Revokes a key (a revoked key stays revoked: its first time is kept);
/// `false` when there is no such key.
pub async fn revoke(db: &Db, id: Id, now: Instant, audit: Option<&Envelope>) -> Result<bool, DbError> {
    transaction!(db, |conn| {
        let exists = diesel::update(api_keys::table.find(id).filter(api_keys::revoked_at.is_null()))
            .set(api_keys::revoked_at.eq(Some(now)))
            .execute(conn)
            .await?
            > 0;
        if !exists {
            let found: i64 = api_keys::table.find(id).count().get_result(conn).await?;
            return Ok(found > 0);
        }
        if let Some(audit) = audit {
            conn.append_event(audit).await?;
        }
        Ok::<_, DbError>(true)
    })
}

/// Moves `last_used_at` on (never back: edges flush at their own pace).
pub async fn record_use(db: &Db, used: &[KeyUse]) -> Result<(), DbError> {
    transaction!(db, |conn| {
        for u in used {
            diesel::update(
                api_keys::table
                    .find(u.key_id)
                    .filter(api_keys::last_used_at.is_null().or(api_keys::last_used_at.lt(u.at))),
            )
            .set(api_keys::last_used_at.eq(Some(u.at)))
            .execute(conn)
            .await?;
        }
        Ok::<_, DbError>(())
    })
}
