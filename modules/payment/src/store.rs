//! Persistence of payments, payouts, the ledger, handled webhook events and
//! the simulated provider's state.

use hometrip_kernel::db::prelude::*;
use hometrip_kernel::db::{Db, DbError, MigrationSet};
use hometrip_kernel::events::{Envelope, OutboxWrite};
use hometrip_kernel::jobs::{JobWrite, NewJob};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{run, transaction, Id};

use crate::domain::Posting;

pub mod schema {
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        payments (id) {
            id -> DbUuid,
            booking_id -> DbUuid,
            guest_id -> DbUuid,
            host_id -> DbUuid,
            currency -> Text,
            amount -> BigInt,
            breakdown -> Text,
            status -> Text,
            live -> Bool,
            capture_method -> Text,
            payment_method -> Text,
            refunded -> BigInt,
            refunded_breakdown -> Text,
            provider -> Text,
            provider_ref -> Nullable<Text>,
            idempotency_key -> Text,
            next_action_url -> Nullable<Text>,
            failure_code -> Nullable<Text>,
            failure_message -> Nullable<Text>,
            created_at -> DbInstant,
            updated_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        payouts (id) {
            id -> DbUuid,
            booking_id -> DbUuid,
            host_id -> DbUuid,
            currency -> Text,
            amount -> BigInt,
            status -> Text,
            release_at -> DbInstant,
            paid_at -> Nullable<DbInstant>,
            provider_ref -> Nullable<Text>,
            created_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        ledger_transactions (id) {
            id -> DbUuid,
            kind -> Text,
            idempotency_key -> Text,
            booking_id -> Nullable<DbUuid>,
            payment_id -> Nullable<DbUuid>,
            guest_id -> Nullable<DbUuid>,
            host_id -> Nullable<DbUuid>,
            currency -> Text,
            description -> Text,
            occurred_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        ledger_entries (id) {
            id -> DbUuid,
            transaction_id -> DbUuid,
            account -> Text,
            currency -> Text,
            amount -> BigInt,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        webhook_events (id) {
            id -> Text,
            event_type -> Text,
            received_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        sim_intents (id) {
            id -> Text,
            idempotency_key -> Text,
            payment_id -> DbUuid,
            amount -> BigInt,
            currency -> Text,
            capture_method -> Text,
            payment_method -> Text,
            status -> Text,
            failure_code -> Nullable<Text>,
            amount_refunded -> BigInt,
            created_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        sim_refunds (id) {
            id -> Text,
            idempotency_key -> Text,
            intent_id -> Text,
            amount -> BigInt,
            created_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        host_accounts (host_id) {
            host_id -> DbUuid,
            provider -> Text,
            account_id -> Text,
            payouts_enabled -> Bool,
            details_submitted -> Bool,
            updated_at -> DbInstant,
        }
    }
    diesel::joinable!(ledger_entries -> ledger_transactions (transaction_id));
    diesel::allow_tables_to_appear_in_same_query!(ledger_entries, ledger_transactions);
}
use schema::*;

pub const MIGRATIONS: MigrationSet = MigrationSet { module: "payment", postgres: || PG, sqlite: || SQLITE };
const PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/payment/postgres");
const SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/payment/sqlite");

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = payments)]
pub struct PaymentRow {
    pub id: Id,
    pub booking_id: Id,
    pub guest_id: Id,
    pub host_id: Id,
    pub currency: String,
    pub amount: i64,
    pub breakdown: String,
    pub status: String,
    pub live: bool,
    pub capture_method: String,
    pub payment_method: String,
    pub refunded: i64,
    pub refunded_breakdown: String,
    pub provider: String,
    pub provider_ref: Option<String>,
    pub idempotency_key: String,
    pub next_action_url: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: Instant,
    pub updated_at: Instant,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = payouts)]
pub struct PayoutRow {
    pub id: Id,
    pub booking_id: Id,
    pub host_id: Id,
    pub currency: String,
    pub amount: i64,
    pub status: String,
    pub release_at: Instant,
    pub paid_at: Option<Instant>,
    pub provider_ref: Option<String>,
    pub created_at: Instant,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ledger_transactions)]
pub struct LedgerTxRow {
    pub id: Id,
    pub kind: String,
    pub idempotency_key: String,
    pub booking_id: Option<Id>,
    pub payment_id: Option<Id>,
    pub guest_id: Option<Id>,
    pub host_id: Option<Id>,
    pub currency: String,
    pub description: String,
    pub occurred_at: Instant,
}

/// A journal transaction to write: its header and balanced postings.
pub struct Journal {
    pub tx: LedgerTxRow,
    pub postings: Vec<Posting>,
}

/// Writes a journal transaction unless its idempotency key was recorded
/// already; true when written. Callers build balanced postings (checked here).
async fn write_journal<C>(conn: &mut C, j: &Journal) -> Result<bool, DbError>
where
    C: JournalConn,
{
    if crate::domain::imbalance(&j.postings) != 0 {
        return Err(DbError::Encoding(format!("unbalanced journal {}", j.tx.idempotency_key)));
    }
    conn.write_journal(j).await
}

/// The connection types a journal can be written on (both backends).
pub trait JournalConn {
    fn write_journal(&mut self, j: &Journal) -> impl std::future::Future<Output = Result<bool, DbError>> + Send;
}

macro_rules! impl_journal_conn {
    ($($conn:ty),*) => {$(
        impl JournalConn for $conn {
            async fn write_journal(&mut self, j: &Journal) -> Result<bool, DbError> {
                let inserted = diesel::insert_into(ledger_transactions::table)
                    .values(&j.tx)
                    .on_conflict(ledger_transactions::idempotency_key)
                    .do_nothing()
                    .execute(self)
                    .await?;
                if inserted == 0 {
                    return Ok(false);
                }
                for p in &j.postings {
                    diesel::insert_into(ledger_entries::table)
                        .values((
                            ledger_entries::id.eq(Id::new()),
                            ledger_entries::transaction_id.eq(j.tx.id),
                            ledger_entries::account.eq(&p.account),
                            ledger_entries::currency.eq(&j.tx.currency),
                            ledger_entries::amount.eq(p.amount),
                        ))
                        .execute(self)
                        .await?;
                }
                Ok(true)
            }
        }
    )*};
}
impl_journal_conn!(hometrip_kernel::db::PgConn, hometrip_kernel::db::SqliteConn);

/// Inserts a payment; `Conflict` when the booking has a live payment already
/// or the idempotency key was used.
pub async fn insert_payment(db: &Db, row: &PaymentRow) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::insert_into(payments::table).values(row).execute(conn).await.map(|_| ()).map_err(DbError::from)
    })
}

pub async fn payment(db: &Db, id: Id) -> Result<Option<PaymentRow>, DbError> {
    run!(db, |conn| {
        payments::table.find(id).select(PaymentRow::as_select()).first(conn).await.optional().map_err(DbError::from)
    })
}

pub async fn payment_by_key(db: &Db, key: &str) -> Result<Option<PaymentRow>, DbError> {
    run!(db, |conn| {
        payments::table
            .filter(payments::idempotency_key.eq(key))
            .select(PaymentRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })
}

pub async fn payment_by_ref(db: &Db, provider_ref: &str) -> Result<Option<PaymentRow>, DbError> {
    run!(db, |conn| {
        payments::table
            .filter(payments::provider_ref.eq(provider_ref))
            .select(PaymentRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })
}

/// The booking's live payment, else its latest attempt.
pub async fn payment_of_booking(db: &Db, booking_id: Id) -> Result<Option<PaymentRow>, DbError> {
    run!(db, |conn| {
        payments::table
            .filter(payments::booking_id.eq(booking_id))
            .order((payments::live.desc(), payments::created_at.desc()))
            .select(PaymentRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })
}

/// A payment's move to a new state, written only if it is still in `from`,
/// with its ledger transaction and event.
pub struct PaymentUpdate<'a> {
    pub from: &'a str,
    pub row: &'a PaymentRow,
    pub journal: Option<Journal>,
    pub event: Option<Envelope>,
}

pub async fn update_payment(db: &Db, u: PaymentUpdate<'_>) -> Result<bool, DbError> {
    let row = u.row;
    transaction!(db, |conn| {
        let changed = diesel::update(payments::table.find(row.id).filter(payments::status.eq(u.from)))
            .set((
                payments::status.eq(&row.status),
                payments::live.eq(row.live),
                payments::provider_ref.eq(&row.provider_ref),
                payments::next_action_url.eq(&row.next_action_url),
                payments::failure_code.eq(&row.failure_code),
                payments::failure_message.eq(&row.failure_message),
                payments::updated_at.eq(row.updated_at),
            ))
            .execute(conn)
            .await?;
        if changed == 0 {
            return Ok(false);
        }
        if let Some(j) = &u.journal {
            write_journal(conn, j).await?;
        }
        if let Some(e) = &u.event {
            conn.append_event(e).await?;
        }
        Ok::<_, DbError>(true)
    })
}

/// What recording a refund writes, worked out from the payment as it stands.
pub struct RefundWrite {
    pub refunded_total: i64,
    pub refunded_breakdown: String,
    pub journal: Journal,
    pub event: Envelope,
}

/// Records a refund once (by its ledger key): `work_out` gets the payment as
/// it stands once its row is locked, so concurrent refunds of one payment are
/// worked out one after the other, each from what the previous recorded (read
/// before the lock, the second would overwrite the first's total). False when
/// it was recorded already or `work_out` declined.
pub async fn record_refund(
    db: &Db,
    payment_id: Id,
    work_out: impl Fn(&PaymentRow) -> Option<RefundWrite> + Send + Sync,
) -> Result<bool, DbError> {
    transaction!(db, |conn| {
        // A write takes the row lock on both backends (SQLite's immediate
        // transaction holds the whole database; FOR UPDATE is PostgreSQL's only).
        diesel::update(payments::table.find(payment_id))
            .set(payments::updated_at.eq(payments::updated_at))
            .execute(conn)
            .await?;
        let current = payments::table.find(payment_id).select(PaymentRow::as_select()).first(conn).await?;
        let Some(w) = work_out(&current) else {
            return Ok(false);
        };
        if !write_journal(conn, &w.journal).await? {
            return Ok(false);
        }
        diesel::update(payments::table.find(payment_id))
            .set((
                payments::refunded.eq(w.refunded_total),
                payments::refunded_breakdown.eq(&w.refunded_breakdown),
                payments::updated_at.eq(w.journal.tx.occurred_at),
            ))
            .execute(conn)
            .await?;
        conn.append_event(&w.event).await?;
        Ok::<_, DbError>(true)
    })
}

/// Writes a journal transaction on its own (penalties).
pub async fn journal(db: &Db, j: &Journal) -> Result<bool, DbError> {
    transaction!(db, |conn| { write_journal(conn, j).await })
}

/// Schedules a payout with its release job (once per booking).
pub async fn schedule_payout(db: &Db, row: &PayoutRow, job: &NewJob) -> Result<(), DbError> {
    transaction!(db, |conn| {
        diesel::insert_into(payouts::table)
            .values(row)
            .on_conflict(payouts::booking_id)
            .do_nothing()
            .execute(conn)
            .await?;
        conn.schedule_job(job).await?;
        Ok::<_, DbError>(())
    })
}

pub async fn payout_of_booking(db: &Db, booking_id: Id) -> Result<Option<PayoutRow>, DbError> {
    run!(db, |conn| {
        payouts::table
            .filter(payouts::booking_id.eq(booking_id))
            .select(PayoutRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })
}

/// Settles a scheduled payout: paid (with its journal and event) or skipped.
pub async fn settle_payout(
    db: &Db,
    row: &PayoutRow,
    journal: Option<&Journal>,
    event: Option<&Envelope>,
) -> Result<bool, DbError> {
    transaction!(db, |conn| {
        let changed = diesel::update(payouts::table.find(row.id).filter(payouts::status.eq("scheduled")))
            .set((
                payouts::status.eq(&row.status),
                payouts::amount.eq(row.amount),
                payouts::paid_at.eq(row.paid_at),
                payouts::provider_ref.eq(&row.provider_ref),
            ))
            .execute(conn)
            .await?;
        if changed == 0 {
            return Ok(false);
        }
        if let Some(j) = journal {
            write_journal(conn, j).await?;
        }
        if let Some(e) = event {
            conn.append_event(e).await?;
        }
        Ok::<_, DbError>(true)
    })
}

pub async fn payouts_of_host(db: &Db, host: Id, before: Option<Id>, limit: i64) -> Result<Vec<PayoutRow>, DbError> {
    run!(db, |conn| {
        let mut q = payouts::table.filter(payouts::host_id.eq(host)).select(PayoutRow::as_select()).into_boxed();
        if let Some(b) = before {
            q = q.filter(payouts::id.lt(b));
        }
        q.order(payouts::id.desc()).limit(limit).load(conn).await.map_err(DbError::from)
    })
}

/// The balance of an account in one currency, optionally only over one
/// booking's transactions.
pub async fn balance(db: &Db, account: &str, currency: &str, booking_id: Option<Id>) -> Result<i64, DbError> {
    let amounts: Vec<i64> = run!(db, |conn| {
        let mut q = ledger_entries::table
            .inner_join(ledger_transactions::table)
            .filter(ledger_entries::account.eq(account))
            .filter(ledger_entries::currency.eq(currency))
            .select(ledger_entries::amount)
            .into_boxed();
        if let Some(b) = booking_id {
            q = q.filter(ledger_transactions::booking_id.eq(Some(b)));
        }
        q.load(conn).await.map_err(DbError::from)
    })?;
    Ok(amounts.iter().sum())
}

/// Ledger transactions where `user` is the guest or the host, newest first,
/// with each one's entries.
pub async fn transactions_of(
    db: &Db,
    user: Id,
    before: Option<Id>,
    limit: i64,
) -> Result<Vec<(LedgerTxRow, Vec<(String, i64)>)>, DbError> {
    let txs: Vec<LedgerTxRow> = run!(db, |conn| {
        let mut q = ledger_transactions::table
            .filter(ledger_transactions::guest_id.eq(Some(user)).or(ledger_transactions::host_id.eq(Some(user))))
            .select(LedgerTxRow::as_select())
            .into_boxed();
        if let Some(b) = before {
            q = q.filter(ledger_transactions::id.lt(b));
        }
        q.order(ledger_transactions::id.desc()).limit(limit).load(conn).await.map_err(DbError::from)
    })?;
    let ids: Vec<Id> = txs.iter().map(|t| t.id).collect();
    let entries: Vec<(Id, String, i64)> = run!(db, |conn| {
        ledger_entries::table
            .filter(ledger_entries::transaction_id.eq_any(&ids))
            .select((ledger_entries::transaction_id, ledger_entries::account, ledger_entries::amount))
            .load(conn)
            .await
            .map_err(DbError::from)
    })?;
    Ok(txs
        .into_iter()
        .map(|t| {
            let mine = entries.iter().filter(|(id, _, _)| *id == t.id).map(|(_, a, m)| (a.clone(), *m)).collect();
            (t, mine)
        })
        .collect())
}

/// Sum of all entries per currency: zero for every currency when the ledger balances.
pub async fn trial_balance(db: &Db) -> Result<Vec<(String, i64)>, DbError> {
    let rows: Vec<(String, i64)> = run!(db, |conn| {
        ledger_entries::table
            .select((ledger_entries::currency, ledger_entries::amount))
            .load(conn)
            .await
            .map_err(DbError::from)
    })?;
    let mut sums: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for (c, a) in rows {
        *sums.entry(c).or_default() += a;
    }
    Ok(sums.into_iter().collect())
}

/// Records a provider event id; false when it was seen before (a replay).
pub async fn first_sight_of_event(db: &Db, id: &str, event_type: &str) -> Result<bool, DbError> {
    run!(db, |conn| {
        diesel::insert_into(webhook_events::table)
            .values((
                webhook_events::id.eq(id),
                webhook_events::event_type.eq(event_type),
                webhook_events::received_at.eq(Instant::now()),
            ))
            .on_conflict(webhook_events::id)
            .do_nothing()
            .execute(conn)
            .await
            .map(|n| n == 1)
            .map_err(DbError::from)
    })
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = host_accounts)]
pub struct HostAccountRow {
    pub host_id: Id,
    pub provider: String,
    pub account_id: String,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    pub updated_at: Instant,
}

pub async fn host_account(db: &Db, host: Id) -> Result<Option<HostAccountRow>, DbError> {
    run!(db, |conn| {
        host_accounts::table
            .find(host)
            .select(HostAccountRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })
}

/// Records a host's account, or its new status (keyed by host).
pub async fn save_host_account(db: &Db, row: &HostAccountRow) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::insert_into(host_accounts::table)
            .values(row)
            .on_conflict(host_accounts::host_id)
            .do_update()
            .set((
                host_accounts::payouts_enabled.eq(row.payouts_enabled),
                host_accounts::details_submitted.eq(row.details_submitted),
                host_accounts::updated_at.eq(row.updated_at),
            ))
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(DbError::from)
    })
}

/// Updates the status of an account known by its provider id (webhooks).
pub async fn update_account_status(
    db: &Db,
    account_id: &str,
    payouts_enabled: bool,
    details_submitted: bool,
) -> Result<usize, DbError> {
    run!(db, |conn| {
        diesel::update(host_accounts::table.filter(host_accounts::account_id.eq(account_id)))
            .set((
                host_accounts::payouts_enabled.eq(payouts_enabled),
                host_accounts::details_submitted.eq(details_submitted),
                host_accounts::updated_at.eq(Instant::now()),
            ))
            .execute(conn)
            .await
            .map_err(DbError::from)
    })
}

/// Whether a provider event id was handled already.
pub async fn seen_event(db: &Db, id: &str) -> Result<bool, DbError> {
    run!(db, |conn| {
        diesel::select(diesel::dsl::exists(webhook_events::table.find(id)))
            .get_result::<bool>(conn)
            .await
            .map_err(DbError::from)
    })
}
