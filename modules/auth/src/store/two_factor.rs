//! Two-factor rows: the TOTP secret and its last accepted step on the account,
//! and the recovery codes.

use hometrip_kernel::db::prelude::*;
use hometrip_kernel::db::{Db, DbError};
use hometrip_kernel::events::{Envelope, OutboxWrite};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{run, transaction, Id};

use super::schema::*;

pub async fn set_pending_totp(db: &Db, id: Id, sealed_secret: &str) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::update(accounts::table.find(id))
            .set((accounts::totp_pending_secret.eq(Some(sealed_secret)), accounts::updated_at.eq(Instant::now())))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(())
    })
}

/// Turns the pending secret on, records the step of the code that proved it,
/// and replaces the recovery codes.
pub async fn enable_totp(
    db: &Db,
    id: Id,
    sealed_secret: &str,
    step: i64,
    code_hashes: &[String],
) -> Result<(), DbError> {
    transaction!(db, |conn| {
        diesel::update(accounts::table.find(id))
            .set((
                accounts::totp_secret.eq(Some(sealed_secret)),
                accounts::totp_pending_secret.eq(None::<String>),
                accounts::totp_last_step.eq(Some(step)),
                accounts::updated_at.eq(Instant::now()),
            ))
            .execute(conn)
            .await?;
        diesel::delete(recovery_codes::table.filter(recovery_codes::account_id.eq(id))).execute(conn).await?;
        for hash in code_hashes {
            diesel::insert_into(recovery_codes::table)
                .values((
                    recovery_codes::id.eq(Id::new()),
                    recovery_codes::account_id.eq(id),
                    recovery_codes::code_hash.eq(hash),
                ))
                .execute(conn)
                .await?;
        }
        Ok::<_, DbError>(())
    })
}

/// Turns two-factor off, deletes the recovery codes and ends every session
/// but `keep_session`; returns the ended session ids.
pub async fn disable_totp(db: &Db, id: Id, keep_session: Id, event: &Envelope) -> Result<Vec<Id>, DbError> {
    transaction!(db, |conn| {
        let now = Instant::now();
        diesel::update(accounts::table.find(id))
            .set((
                accounts::totp_secret.eq(None::<String>),
                accounts::totp_pending_secret.eq(None::<String>),
                accounts::totp_last_step.eq(None::<i64>),
                accounts::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        diesel::delete(recovery_codes::table.filter(recovery_codes::account_id.eq(id))).execute(conn).await?;
        let sessions = end_sessions!(conn, id, keep_session, now);
        conn.append_event(event).await?;
        Ok::<_, DbError>(sessions)
    })
}

/// Records `step` as the last accepted TOTP step, only if it is later than the
/// one stored: the conditional update makes a code single-use under races.
pub async fn accept_totp_step(db: &Db, id: Id, step: i64) -> Result<bool, DbError> {
    run!(db, |conn| {
        let n = diesel::update(
            accounts::table.find(id).filter(accounts::totp_last_step.is_null().or(accounts::totp_last_step.lt(step))),
        )
        .set(accounts::totp_last_step.eq(Some(step)))
        .execute(conn)
        .await?;
        Ok::<_, DbError>(n == 1)
    })
}

/// The account's unused recovery codes: `(id, hash)`.
pub async fn unused_recovery_codes(db: &Db, account_id: Id) -> Result<Vec<(Id, String)>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            recovery_codes::table
                .filter(recovery_codes::account_id.eq(account_id))
                .filter(recovery_codes::used_at.is_null())
                .select((recovery_codes::id, recovery_codes::code_hash))
                .load(conn)
                .await?,
        )
    })
}

/// Spends a recovery code; conditional, so two concurrent uses cannot both succeed.
pub async fn spend_recovery_code(db: &Db, code_id: Id) -> Result<bool, DbError> {
    run!(db, |conn| {
        let n = diesel::update(recovery_codes::table.find(code_id).filter(recovery_codes::used_at.is_null()))
            .set(recovery_codes::used_at.eq(Some(Instant::now())))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(n == 1)
    })
}
