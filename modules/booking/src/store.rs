//! Persistence of bookings, their nights (the availability guarantee), the
//! per-listing reservation lock and idempotency keys.

use chrono::NaiveDate;
use diesel::JoinOnDsl;
use hometrip_kernel::db::prelude::*;
use hometrip_kernel::db::{Db, DbError, MigrationSet};
use hometrip_kernel::events::{Envelope, OutboxWrite};
use hometrip_kernel::jobs::{JobWrite, NewJob};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{run, transaction, Id};

pub mod schema {
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        bookings (id) {
            id -> DbUuid,
            listing_id -> DbUuid,
            guest_id -> DbUuid,
            host_id -> DbUuid,
            status -> Text,
            check_in -> Date,
            check_out -> Date,
            guests -> Integer,
            rate -> Text,
            instant_book -> Bool,
            cancellation_policy -> Text,
            time_zone -> Text,
            check_in_at -> DbInstant,
            check_out_at -> DbInstant,
            price -> Text,
            currency -> Text,
            total -> BigInt,
            hold_expires_at -> Nullable<DbInstant>,
            respond_by -> Nullable<DbInstant>,
            confirmed_at -> Nullable<DbInstant>,
            cancelled_at -> Nullable<DbInstant>,
            refund -> Nullable<BigInt>,
            payment_id -> Nullable<DbUuid>,
            created_at -> DbInstant,
            updated_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        booking_nights (listing_id, night) {
            listing_id -> DbUuid,
            night -> Date,
            booking_id -> DbUuid,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        booking_listing_locks (listing_id) {
            listing_id -> DbUuid,
            reservations -> BigInt,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        booking_idempotency (guest_id, key) {
            guest_id -> DbUuid,
            key -> Text,
            request_hash -> Text,
            booking_id -> DbUuid,
            created_at -> DbInstant,
        }
    }
    diesel::allow_tables_to_appear_in_same_query!(bookings, booking_nights, booking_idempotency);
}
use schema::*;

pub const MIGRATIONS: MigrationSet = MigrationSet { module: "booking", postgres: || PG, sqlite: || SQLITE };
const PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/booking/postgres");
const SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/booking/sqlite");

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = bookings)]
pub struct BookingRow {
    pub id: Id,
    pub listing_id: Id,
    pub guest_id: Id,
    pub host_id: Id,
    pub status: String,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub guests: i32,
    pub rate: String,
    pub instant_book: bool,
    pub cancellation_policy: String,
    pub time_zone: String,
    pub check_in_at: Instant,
    pub check_out_at: Instant,
    pub price: String,
    pub currency: String,
    pub total: i64,
    pub hold_expires_at: Option<Instant>,
    pub respond_by: Option<Instant>,
    pub confirmed_at: Option<Instant>,
    pub cancelled_at: Option<Instant>,
    pub refund: Option<i64>,
    pub payment_id: Option<Id>,
    pub created_at: Instant,
    pub updated_at: Instant,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = booking_nights)]
pub struct NightRow {
    pub listing_id: Id,
    pub night: NaiveDate,
    pub booking_id: Id,
}

/// What a reservation writes once its nights are known to be free.
struct ReservationRows<'a> {
    booking: &'a BookingRow,
    /// In ascending order, so racing reservations take row locks in one order.
    nights: Vec<NightRow>,
    idempotency: Option<&'a IdempotencyKey>,
    jobs: &'a [NewJob],
    event: &'a Envelope,
}

/// Takes the listing's lock row (reservations of one listing queue on it and
/// never deadlock) and then reads the nights of `[from, to)` already held.
macro_rules! lock_listing {
    ($listing_id:expr) => {
        diesel::insert_into(booking_listing_locks::table)
            .values((booking_listing_locks::listing_id.eq($listing_id), booking_listing_locks::reservations.eq(1i64)))
            .on_conflict(booking_listing_locks::listing_id)
            .do_update()
            .set(booking_listing_locks::reservations.eq(booking_listing_locks::reservations + 1i64))
            .cached()
    };
}
macro_rules! taken_nights {
    ($listing_id:expr, $from:expr, $to:expr) => {
        booking_nights::table
            .filter(booking_nights::listing_id.eq($listing_id))
            .filter(booking_nights::night.ge($from))
            .filter(booking_nights::night.lt($to))
            .order(booking_nights::night.asc())
            .select(booking_nights::night)
    };
}
macro_rules! insert_idempotency_key {
    ($row:expr, $k:expr) => {
        diesel::insert_into(booking_idempotency::table)
            .values((
                booking_idempotency::guest_id.eq($row.guest_id),
                booking_idempotency::key.eq(&$k.key),
                booking_idempotency::request_hash.eq(&$k.request_hash),
                booking_idempotency::booking_id.eq($row.id),
                booking_idempotency::created_at.eq($row.created_at),
            ))
            .cached()
    };
}

/// The reservation's transaction on one backend. On PostgreSQL it is
/// pipelined: `BEGIN`, the lock and the check go out in one write, then all
/// the inserts in one write, then `COMMIT`: three round trips (diesel's
/// `transaction` sends `BEGIN` on a round trip of its own). `COMMIT` does not
/// ride with the inserts: an insert not yet prepared on the connection waits
/// for its preparation, and a `COMMIT` sent with them would overtake it. On SQLite, in-process,
/// there is no round trip to save and its wrapper has no multi-row insert, so
/// the statements run one by one in an immediate transaction.
trait ReservationWrite {
    fn reserve_rows(
        &mut self,
        rows: &ReservationRows<'_>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl std::future::Future<Output = Result<(), ReserveError>> + Send;
}

impl ReservationWrite for hometrip_kernel::db::PgConn {
    async fn reserve_rows(
        &mut self,
        r: &ReservationRows<'_>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(), ReserveError> {
        use diesel_async::SimpleAsyncConnection;
        let listing_id = r.booking.listing_id;
        hometrip_kernel::db::begin_by_hand(self)?;
        let checked = {
            let conn: &hometrip_kernel::db::PgConn = self;
            let (mut a, mut b, mut c) = (conn, conn, conn);
            // PostgreSQL runs the check after the lock is granted, with a
            // snapshot taken then (read committed), so it sees every
            // reservation that held the lock before. All three answers are
            // awaited (no request is dropped in flight); the first error wins.
            let (begun, locked, taken) = futures_util::future::join3(
                a.batch_execute("BEGIN"),
                lock_listing!(listing_id).execute(&mut b),
                taken_nights!(listing_id, from, to).load::<NaiveDate>(&mut c),
            )
            .await;
            begun.and(locked).and(taken)
        };
        let refused = match checked {
            Ok(taken) if taken.is_empty() => None,
            Ok(taken) => Some(ReserveError::Taken(taken)),
            Err(e) => Some(e.into()),
        };
        if let Some(refused) = refused {
            self.batch_execute("ROLLBACK").await?;
            hometrip_kernel::db::end_by_hand(self)?;
            return Err(refused);
        }
        let written = write_pipelined(self, r).await;
        self.batch_execute(if written.is_ok() { "COMMIT" } else { "ROLLBACK" }).await?;
        hometrip_kernel::db::end_by_hand(self)?;
        written.map_err(ReserveError::from)
    }
}

/// The reservation's inserts, sent together on PostgreSQL.
async fn write_pipelined(conn: &hometrip_kernel::db::PgConn, r: &ReservationRows<'_>) -> diesel::QueryResult<()> {
    let mut writes: Vec<futures_util::future::BoxFuture<'_, diesel::QueryResult<()>>> = Vec::new();
    let (mut c1, mut c2) = (conn, conn);
    writes.push(Box::pin(async move {
        diesel::insert_into(bookings::table).values(r.booking).cached().execute(&mut c1).await.map(|_| ())
    }));
    writes.push(Box::pin(async move {
        diesel::insert_into(booking_nights::table).values(&r.nights).cached().execute(&mut c2).await.map(|_| ())
    }));
    if let Some(k) = r.idempotency {
        let mut c = conn;
        writes.push(Box::pin(async move { insert_idempotency_key!(r.booking, k).execute(&mut c).await.map(|_| ()) }));
    }
    for job in r.jobs {
        let mut c = conn;
        writes.push(Box::pin(async move { c.schedule_job(job).await }));
    }
    let mut c = conn;
    writes.push(Box::pin(async move { c.append_event(r.event).await }));
    // All awaited (nothing dropped in flight); the first error in order wins.
    futures_util::future::join_all(writes).await.into_iter().collect()
}

impl ReservationWrite for hometrip_kernel::db::SqliteConn {
    async fn reserve_rows(
        &mut self,
        r: &ReservationRows<'_>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(), ReserveError> {
        let listing_id = r.booking.listing_id;
        self.immediate_transaction(async |conn| {
            lock_listing!(listing_id).execute(conn).await?;
            let taken = taken_nights!(listing_id, from, to).load(conn).await?;
            if !taken.is_empty() {
                return Err(ReserveError::Taken(taken));
            }
            diesel::insert_into(bookings::table).values(r.booking).cached().execute(conn).await?;
            for night in &r.nights {
                diesel::insert_into(booking_nights::table).values(night).cached().execute(conn).await?;
            }
            if let Some(k) = r.idempotency {
                insert_idempotency_key!(r.booking, k).execute(conn).await?;
            }
            for job in r.jobs {
                conn.schedule_job(job).await?;
            }
            conn.append_event(r.event).await?;
            Ok(())
        })
        .await
    }
}

/// An `Idempotency-Key` with the hash of the request it was first used for.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
}

#[derive(Debug)]
pub enum ReserveError {
    /// Nights of the stay (or of its preparation margin) held by other
    /// bookings, in order.
    Taken(Vec<NaiveDate>),
    Db(DbError),
}

impl From<DbError> for ReserveError {
    fn from(e: DbError) -> Self {
        ReserveError::Db(e)
    }
}

impl From<diesel::result::Error> for ReserveError {
    fn from(e: diesel::result::Error) -> Self {
        ReserveError::Db(e.into())
    }
}

/// Creates a booking and holds its nights in one transaction: the listing's
/// lock row first (so reservations of one listing queue and never deadlock),
/// then the preparation-time and overlap check, then the nights in ascending
/// order under their unique key, the idempotency key, the timers and the event.
pub async fn reserve(
    db: &Db,
    row: &BookingRow,
    preparation_days: u32,
    idempotency: Option<&IdempotencyKey>,
    jobs: &[NewJob],
    event: &Envelope,
) -> Result<(), ReserveError> {
    let margin = chrono::Duration::days(i64::from(preparation_days));
    let (around_from, around_to) = (row.check_in - margin, row.check_out + margin);
    let rows = ReservationRows {
        booking: row,
        nights: row
            .check_in
            .iter_days()
            .take_while(|d| *d < row.check_out)
            .map(|night| NightRow { listing_id: row.listing_id, night, booking_id: row.id })
            .collect(),
        idempotency,
        jobs,
        event,
    };
    run!(db, |conn| { conn.reserve_rows(&rows, around_from, around_to).await })
}

/// The booking an idempotency key was first used for, with the request's hash.
pub async fn idempotent(db: &Db, guest_id: Id, key: &str) -> Result<Option<(String, Id)>, DbError> {
    run!(db, |conn| {
        booking_idempotency::table
            .filter(booking_idempotency::guest_id.eq(guest_id))
            .filter(booking_idempotency::key.eq(key))
            .select((booking_idempotency::request_hash, booking_idempotency::booking_id))
            .first::<(String, Id)>(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })
}

pub async fn get(db: &Db, id: Id) -> Result<Option<BookingRow>, DbError> {
    run!(db, |conn| {
        bookings::table.find(id).select(BookingRow::as_select()).first(conn).await.optional().map_err(DbError::from)
    })
}

pub use crate::api::Party;

/// The caller's bookings, newest first, after the cursor id.
pub async fn list(
    db: &Db,
    party: Party,
    user: Id,
    status: Option<&str>,
    before: Option<Id>,
    limit: i64,
) -> Result<Vec<BookingRow>, DbError> {
    run!(db, |conn| {
        let mut q = bookings::table.select(BookingRow::as_select()).into_boxed();
        q = match party {
            Party::Guest => q.filter(bookings::guest_id.eq(user)),
            Party::Host => q.filter(bookings::host_id.eq(user)),
        };
        if let Some(s) = status {
            q = q.filter(bookings::status.eq(s.to_owned()));
        }
        if let Some(b) = before {
            q = q.filter(bookings::id.lt(b));
        }
        q.order(bookings::id.desc()).limit(limit).load(conn).await.map_err(DbError::from)
    })
}

/// Bookings in `status` last changed within `[from, to)`, by id after
/// `after` (reconciliation pages through them).
pub async fn in_status(
    db: &Db,
    status: &str,
    (from, to): (Instant, Instant),
    after: Option<Id>,
    limit: i64,
) -> Result<Vec<BookingRow>, DbError> {
    run!(db, |conn| {
        let mut q = bookings::table
            .filter(bookings::status.eq(status))
            .filter(bookings::updated_at.ge(from))
            .filter(bookings::updated_at.lt(to))
            .select(BookingRow::as_select())
            .into_boxed();
        if let Some(a) = after {
            q = q.filter(bookings::id.gt(a));
        }
        q.order(bookings::id.asc()).limit(limit).load(conn).await.map_err(DbError::from)
    })
}

/// A transition, written only if the booking is still in `from`.
pub struct Transition<'a> {
    pub from: &'a str,
    pub row: &'a BookingRow,
    /// The booking stops holding its nights.
    pub release_nights: bool,
    pub jobs: &'a [NewJob],
    pub event: &'a Envelope,
}

/// Applies a transition with its timers and event in one transaction; false
/// when the booking had left `from` in the meantime (nothing written).
pub async fn transition(db: &Db, t: Transition<'_>) -> Result<bool, DbError> {
    let row = t.row;
    transaction!(db, |conn| {
        let changed = diesel::update(bookings::table.find(row.id).filter(bookings::status.eq(t.from)))
            .set((
                bookings::status.eq(&row.status),
                bookings::hold_expires_at.eq(row.hold_expires_at),
                bookings::respond_by.eq(row.respond_by),
                bookings::confirmed_at.eq(row.confirmed_at),
                bookings::cancelled_at.eq(row.cancelled_at),
                bookings::refund.eq(row.refund),
                bookings::payment_id.eq(row.payment_id),
                bookings::updated_at.eq(row.updated_at),
            ))
            .cached()
            .execute(conn)
            .await?;
        if changed == 0 {
            return Ok(false);
        }
        if t.release_nights {
            diesel::delete(booking_nights::table.filter(booking_nights::booking_id.eq(row.id))).execute(conn).await?;
        }
        for job in t.jobs {
            conn.schedule_job(job).await?;
        }
        conn.append_event(t.event).await?;
        Ok::<_, DbError>(true)
    })
}

/// Records the payment attempt a booking waits on (no state change).
pub async fn set_payment(db: &Db, id: Id, payment_id: Id) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::update(bookings::table.find(id))
            .set(bookings::payment_id.eq(Some(payment_id)))
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(DbError::from)
    })
}

/// Nights held per booking, for the consistency checks of tests and reconciliation.
pub async fn held_nights(db: &Db, listing_id: Id) -> Result<Vec<(NaiveDate, Id)>, DbError> {
    run!(db, |conn| {
        booking_nights::table
            .filter(booking_nights::listing_id.eq(listing_id))
            .order(booking_nights::night.asc())
            .select((booking_nights::night, booking_nights::booking_id))
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// Nights held in `[from, to)` of a listing, with their bookings.
pub async fn held_nights_in(
    db: &Db,
    listing_id: Id,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, Id)>, DbError> {
    run!(db, |conn| {
        booking_nights::table
            .filter(booking_nights::listing_id.eq(listing_id))
            .filter(booking_nights::night.ge(from))
            .filter(booking_nights::night.lt(to))
            .order(booking_nights::night.asc())
            .select((booking_nights::night, booking_nights::booking_id))
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// Bookings whose status no longer holds nights but which still have some
/// (none, unless a bug or a manual edit): reconciliation frees them.
pub async fn release_stray_nights(db: &Db) -> Result<usize, DbError> {
    transaction!(db, |conn| {
        let holding: Vec<String> =
            ["pending_payment", "pending_host", "confirmed", "completed"].iter().map(|s| (*s).to_owned()).collect();
        let stray: Vec<Id> = booking_nights::table
            .inner_join(bookings::table.on(bookings::id.eq(booking_nights::booking_id)))
            .filter(bookings::status.ne_all(&holding))
            .select(booking_nights::booking_id)
            .distinct()
            .load(conn)
            .await?;
        let mut freed = 0;
        for id in &stray {
            freed +=
                diesel::delete(booking_nights::table.filter(booking_nights::booking_id.eq(*id))).execute(conn).await?;
        }
        Ok::<_, DbError>(freed)
    })
}
