//! Persistence of analytics: raw client events, the day's salts and
//! visitors, the rollups (platform and listing days), and the projections
//! the rollups are kept from (listings, blocked nights, bookings). A domain
//! event's changes commit with its id in `analytics_applied`, so a
//! redelivered event is rolled up once.

use chrono::NaiveDate;
use hometrip_kernel::db::prelude::*;
use hometrip_kernel::db::{Db, DbError, MigrationSet};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{run, transaction, Id};

use crate::writes::{BatchRows, BatchWrite, RollupWrite};

pub mod schema {
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        analytics_events (id) {
            id -> DbUuid,
            name -> Text,
            at -> DbInstant,
            received_on -> Date,
            session_id -> Nullable<Text>,
            visitor -> Text,
            user_id -> Nullable<DbUuid>,
            listing_id -> Nullable<DbUuid>,
            props -> Text,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        analytics_salts (day) {
            day -> Date,
            salt -> Text,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        analytics_visitors (day, visitor) {
            day -> Date,
            visitor -> Text,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        platform_daily (day, metric, currency) {
            day -> Date,
            metric -> Text,
            currency -> Text,
            value -> BigInt,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        platform_monthly (month, metric, currency) {
            month -> Date,
            metric -> Text,
            currency -> Text,
            value -> BigInt,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        listing_daily (listing_id, day) {
            listing_id -> DbUuid,
            day -> Date,
            host_id -> DbUuid,
            views -> BigInt,
            nights_booked -> BigInt,
            accommodation -> BigInt,
            revenue -> BigInt,
            bookings -> BigInt,
            cancellations -> BigInt,
            lead_time_days -> BigInt,
            stay_nights -> BigInt,
            blocked -> BigInt,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        host_daily (host_id, day) {
            host_id -> DbUuid,
            day -> Date,
            views -> BigInt,
            nights_booked -> BigInt,
            accommodation -> BigInt,
            revenue -> BigInt,
            bookings -> BigInt,
            cancellations -> BigInt,
            lead_time_days -> BigInt,
            stay_nights -> BigInt,
            blocked -> BigInt,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        analytics_listings (listing_id) {
            listing_id -> DbUuid,
            host_id -> DbUuid,
            title -> Text,
            currency -> Text,
            created_on -> Date,
            deleted_on -> Nullable<Date>,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        analytics_blocked (listing_id, night) {
            listing_id -> DbUuid,
            night -> Date,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        analytics_bookings (booking_id) {
            booking_id -> DbUuid,
            listing_id -> DbUuid,
            host_id -> DbUuid,
            check_in -> Date,
            check_out -> Date,
            currency -> Text,
            accommodation -> BigInt,
            created_at -> DbInstant,
            confirmed_at -> Nullable<DbInstant>,
            cancelled_at -> Nullable<DbInstant>,
            completed_at -> Nullable<DbInstant>,
            reviewed_at -> Nullable<DbInstant>,
            host_earnings -> BigInt,
            platform_revenue -> BigInt,
            gmv -> BigInt,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        analytics_session_steps (session_id, step) {
            session_id -> Text,
            step -> Text,
            at -> DbInstant,
        }
    }
    diesel::table! {
        use hometrip_kernel::db::sql::*;
        analytics_applied (event_id) {
            event_id -> DbUuid,
            applied_at -> DbInstant,
        }
    }
}
use schema::*;

pub const MIGRATIONS: MigrationSet = MigrationSet { module: "analytics", postgres: || PG, sqlite: || SQLITE };
const PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/analytics/postgres");
const SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/analytics/sqlite");

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = analytics_events)]
pub struct EventRow {
    pub id: Id,
    pub name: String,
    pub at: Instant,
    pub received_on: NaiveDate,
    pub session_id: Option<String>,
    pub visitor: String,
    pub user_id: Option<Id>,
    pub listing_id: Option<Id>,
    pub props: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = analytics_listings)]
pub struct ListingRow {
    pub listing_id: Id,
    pub host_id: Id,
    pub title: String,
    pub currency: String,
    pub created_on: NaiveDate,
    pub deleted_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = analytics_bookings, primary_key(booking_id), treat_none_as_null = true)]
pub struct BookingRow {
    pub booking_id: Id,
    pub listing_id: Id,
    pub host_id: Id,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub currency: String,
    pub accommodation: i64,
    pub created_at: Instant,
    pub confirmed_at: Option<Instant>,
    pub cancelled_at: Option<Instant>,
    pub completed_at: Option<Instant>,
    pub reviewed_at: Option<Instant>,
    pub host_earnings: i64,
    pub platform_revenue: i64,
    pub gmv: i64,
}

/// What a listing's day gains (or loses).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = listing_daily)]
pub struct ListingDay {
    pub listing_id: Id,
    pub day: NaiveDate,
    pub host_id: Id,
    pub views: i64,
    pub nights_booked: i64,
    pub accommodation: i64,
    pub revenue: i64,
    pub bookings: i64,
    pub cancellations: i64,
    pub lead_time_days: i64,
    pub stay_nights: i64,
    /// Nights the host blocked.
    pub blocked: i64,
}

/// A host's day: their listings' days summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = host_daily)]
pub struct HostDay {
    pub host_id: Id,
    pub day: NaiveDate,
    pub views: i64,
    pub nights_booked: i64,
    pub accommodation: i64,
    pub revenue: i64,
    pub bookings: i64,
    pub cancellations: i64,
    pub lead_time_days: i64,
    pub stay_nights: i64,
    pub blocked: i64,
}

/// `add`: another change of the same day (and listing, or host) added to
/// this one; listing days and host days keep the same counters.
macro_rules! impl_add_counters {
    ($($day:ty),*) => {$(
        impl $day {
            pub fn add(&mut self, o: &$day) {
                self.views += o.views;
                self.nights_booked += o.nights_booked;
                self.accommodation += o.accommodation;
                self.revenue += o.revenue;
                self.bookings += o.bookings;
                self.cancellations += o.cancellations;
                self.lead_time_days += o.lead_time_days;
                self.stay_nights += o.stay_nights;
                self.blocked += o.blocked;
            }
        }
    )*};
}
impl_add_counters!(ListingDay, HostDay);

impl From<&ListingDay> for HostDay {
    fn from(d: &ListingDay) -> Self {
        HostDay {
            host_id: d.host_id,
            day: d.day,
            views: d.views,
            nights_booked: d.nights_booked,
            accommodation: d.accommodation,
            revenue: d.revenue,
            bookings: d.bookings,
            cancellations: d.cancellations,
            lead_time_days: d.lead_time_days,
            stay_nights: d.stay_nights,
            blocked: d.blocked,
        }
    }
}

/// A platform counter's change on a day.
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = platform_daily)]
pub struct PlatformDelta {
    pub day: NaiveDate,
    pub metric: String,
    pub currency: String,
    pub value: i64,
}

impl PlatformDelta {
    pub fn count(day: NaiveDate, metric: &str, value: i64) -> Self {
        PlatformDelta { day, metric: metric.to_owned(), currency: String::new(), value }
    }

    pub fn money(day: NaiveDate, metric: &str, currency: &str, value: i64) -> Self {
        PlatformDelta { day, metric: metric.to_owned(), currency: currency.to_owned(), value }
    }
}

/// What one domain event changes, applied together.
#[derive(Debug, Default)]
pub struct Change {
    pub listing: Option<ListingRow>,
    pub booking: Option<BookingRow>,
    pub days: Vec<ListingDay>,
    pub platform: Vec<PlatformDelta>,
}

/// Applies a domain event's change once. `false` when it was applied before.
pub async fn apply(db: &Db, event_id: Id, change: &Change) -> Result<bool, DbError> {
    transaction!(db, |conn| {
        let fresh = diesel::insert_into(analytics_applied::table)
            .values((analytics_applied::event_id.eq(event_id), analytics_applied::applied_at.eq(Instant::now())))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        if fresh == 0 {
            return Ok::<_, DbError>(false);
        }
        if let Some(l) = &change.listing {
            diesel::insert_into(analytics_listings::table)
                .values(l)
                .on_conflict(analytics_listings::listing_id)
                .do_update()
                .set((
                    analytics_listings::title.eq(&l.title),
                    analytics_listings::currency.eq(&l.currency),
                    analytics_listings::deleted_on.eq(l.deleted_on),
                ))
                .execute(conn)
                .await?;
        }
        if let Some(b) = &change.booking {
            diesel::insert_into(analytics_bookings::table)
                .values(b)
                .on_conflict(analytics_bookings::booking_id)
                .do_update()
                .set(b)
                .execute(conn)
                .await?;
        }
        conn.add_days(&change.days).await?;
        conn.add_platform(&change.platform).await?;
        Ok(true)
    })
}

/// A client batch: the raw events, the sessions' first steps, the day's
/// visitor, and the counters, in one transaction.
pub async fn ingest(db: &Db, rows: &BatchRows<'_>) -> Result<(), DbError> {
    transaction!(db, |conn| {
        conn.write_batch(rows).await?;
        Ok::<_, DbError>(())
    })
}

/// The day's salt, made on first use.
pub async fn salt(db: &Db, day: NaiveDate, fresh: &str) -> Result<String, DbError> {
    let fresh = fresh.to_owned();
    run!(db, |conn| {
        diesel::insert_into(analytics_salts::table)
            .values((analytics_salts::day.eq(day), analytics_salts::salt.eq(&fresh)))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        Ok::<_, DbError>(analytics_salts::table.find(day).select(analytics_salts::salt).first(conn).await?)
    })
}

/// Retention: raw events received before `keep_from`, salts of past days.
pub async fn prune(db: &Db, keep_from: NaiveDate, today: NaiveDate) -> Result<(usize, usize), DbError> {
    transaction!(db, |conn| {
        let events = diesel::delete(analytics_events::table.filter(analytics_events::received_on.lt(keep_from)))
            .execute(conn)
            .await?;
        let before = Instant::from(keep_from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
        diesel::delete(analytics_session_steps::table.filter(analytics_session_steps::at.lt(before)))
            .execute(conn)
            .await?;
        let salts = diesel::delete(analytics_salts::table.filter(analytics_salts::day.lt(today))).execute(conn).await?;
        Ok::<_, DbError>((events, salts))
    })
}

pub async fn booking(db: &Db, id: Id) -> Result<Option<BookingRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            analytics_bookings::table.find(id).select(BookingRow::as_select()).first(conn).await.optional()?,
        )
    })
}

pub async fn listing(db: &Db, id: Id) -> Result<Option<ListingRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            analytics_listings::table.find(id).select(ListingRow::as_select()).first(conn).await.optional()?,
        )
    })
}

pub async fn listings_of_host(db: &Db, host: Id) -> Result<Vec<ListingRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            analytics_listings::table
                .filter(analytics_listings::host_id.eq(host))
                .order(analytics_listings::listing_id.asc())
                .select(ListingRow::as_select())
                .load(conn)
                .await?,
        )
    })
}

/// Replaces a listing's blocked nights in `[from, to)` with `nights`, and
/// moves the `blocked` counters of its days (and its host's) by the change.
pub async fn set_blocked(
    db: &Db,
    listing: &ListingRow,
    from: NaiveDate,
    to: NaiveDate,
    nights: &[NaiveDate],
) -> Result<(), DbError> {
    let listing_id = listing.listing_id;
    let host_id = listing.host_id;
    transaction!(db, |conn| {
        let before: Vec<NaiveDate> = analytics_blocked::table
            .filter(analytics_blocked::listing_id.eq(listing_id))
            .filter(analytics_blocked::night.ge(from))
            .filter(analytics_blocked::night.lt(to))
            .select(analytics_blocked::night)
            .load(conn)
            .await?;
        let day = |night: NaiveDate, blocked: i64| ListingDay {
            listing_id,
            day: night,
            host_id,
            blocked,
            ..ListingDay::default()
        };
        let changes: Vec<ListingDay> = before
            .iter()
            .filter(|n| !nights.contains(n))
            .map(|n| day(*n, -1))
            .chain(nights.iter().filter(|n| !before.contains(n)).map(|n| day(*n, 1)))
            .collect();
        conn.add_days(&changes).await?;
        diesel::delete(
            analytics_blocked::table
                .filter(analytics_blocked::listing_id.eq(listing_id))
                .filter(analytics_blocked::night.ge(from))
                .filter(analytics_blocked::night.lt(to)),
        )
        .execute(conn)
        .await?;
        for n in nights {
            diesel::insert_into(analytics_blocked::table)
                .values((analytics_blocked::listing_id.eq(listing_id), analytics_blocked::night.eq(n)))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
        }
        Ok::<_, DbError>(())
    })
}

/// A host's days in `[from, to]` (all their listings summed).
pub async fn host_days(db: &Db, host: Id, from: NaiveDate, to: NaiveDate) -> Result<Vec<HostDay>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            host_daily::table
                .filter(host_daily::host_id.eq(host))
                .filter(host_daily::day.ge(from))
                .filter(host_daily::day.le(to))
                .select((
                    host_daily::host_id,
                    host_daily::day,
                    host_daily::views,
                    host_daily::nights_booked,
                    host_daily::accommodation,
                    host_daily::revenue,
                    host_daily::bookings,
                    host_daily::cancellations,
                    host_daily::lead_time_days,
                    host_daily::stay_nights,
                    host_daily::blocked,
                ))
                .load(conn)
                .await?,
        )
    })
}

/// The days of `listings` in `[from, to]`.
pub async fn listing_days(
    db: &Db,
    listings: &[Id],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<ListingDay>, DbError> {
    let listings = listings.to_vec();
    run!(db, |conn| {
        Ok::<_, DbError>(
            listing_daily::table
                .filter(listing_daily::listing_id.eq_any(&listings))
                .filter(listing_daily::day.ge(from))
                .filter(listing_daily::day.le(to))
                .select((
                    listing_daily::listing_id,
                    listing_daily::day,
                    listing_daily::host_id,
                    listing_daily::views,
                    listing_daily::nights_booked,
                    listing_daily::accommodation,
                    listing_daily::revenue,
                    listing_daily::bookings,
                    listing_daily::cancellations,
                    listing_daily::lead_time_days,
                    listing_daily::stay_nights,
                    listing_daily::blocked,
                ))
                .load(conn)
                .await?,
        )
    })
}

/// Platform counters in `[from, to]`, summed per (metric, currency): the
/// period's whole months from `platform_monthly`, the days at its ends from
/// `platform_daily`, each summed by the database.
pub async fn platform_totals(db: &Db, from: NaiveDate, to: NaiveDate) -> Result<Vec<(String, String, i64)>, DbError> {
    let split = crate::domain::whole_months(from, to);
    run!(db, |conn| {
        // A plain bigint on both backends (PostgreSQL's SUM of bigint is numeric).
        let sum = || diesel::dsl::sql::<diesel::sql_types::BigInt>("CAST(SUM(value) AS BIGINT)");
        let mut rows: Vec<(String, String, i64)> = Vec::new();
        for (first, last) in &split.days {
            rows.extend(
                platform_daily::table
                    .filter(platform_daily::day.ge(first))
                    .filter(platform_daily::day.le(last))
                    .group_by((platform_daily::metric, platform_daily::currency))
                    .select((platform_daily::metric, platform_daily::currency, sum()))
                    .load::<(String, String, i64)>(conn)
                    .await?,
            );
        }
        if let Some((first, last)) = split.months {
            rows.extend(
                platform_monthly::table
                    .filter(platform_monthly::month.ge(first))
                    .filter(platform_monthly::month.le(last))
                    .group_by((platform_monthly::metric, platform_monthly::currency))
                    .select((platform_monthly::metric, platform_monthly::currency, sum()))
                    .load::<(String, String, i64)>(conn)
                    .await?,
            );
        }
        let mut totals: std::collections::BTreeMap<(String, String), i64> = std::collections::BTreeMap::new();
        for (metric, currency, value) in rows {
            *totals.entry((metric, currency)).or_default() += value;
        }
        Ok::<_, DbError>(totals.into_iter().map(|((m, c), v)| (m, c, v)).collect())
    })
}

/// A booking's milestones: created, confirmed, completed, reviewed.
pub type Milestones = (Instant, Option<Instant>, Option<Instant>, Option<Instant>);

/// The milestones of the latest `limit` bookings created in `[from, to)`
/// (the funnel's median times are taken over them).
pub async fn milestones(db: &Db, from: Instant, to: Instant, limit: i64) -> Result<Vec<Milestones>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            analytics_bookings::table
                .filter(analytics_bookings::created_at.ge(from))
                .filter(analytics_bookings::created_at.lt(to))
                .order(analytics_bookings::created_at.desc())
                .limit(limit)
                .select((
                    analytics_bookings::created_at,
                    analytics_bookings::confirmed_at,
                    analytics_bookings::completed_at,
                    analytics_bookings::reviewed_at,
                ))
                .load(conn)
                .await?,
        )
    })
}

/// The times of two client-side steps of the same sessions, for the latest
/// `limit` sessions that reached `first` in `[from, to)` and `then` no
/// earlier and within a day (a tab's session does not last longer). Two
/// range scans of the `(step, at)` index, matched here: a join, or a list
/// of the sessions, lets the planner read the whole table.
pub async fn step_gaps(
    db: &Db,
    first: &str,
    then: &str,
    from: Instant,
    to: Instant,
    limit: i64,
) -> Result<Vec<(Instant, Instant)>, DbError> {
    let (first, then) = (first.to_owned(), then.to_owned());
    run!(db, |conn| {
        let firsts: Vec<(String, Instant)> = analytics_session_steps::table
            .filter(analytics_session_steps::step.eq(&first))
            .filter(analytics_session_steps::at.ge(from))
            .filter(analytics_session_steps::at.lt(to))
            .order(analytics_session_steps::at.desc())
            .limit(limit)
            .select((analytics_session_steps::session_id, analytics_session_steps::at))
            .load(conn)
            .await?;
        let (Some((_, latest)), Some((_, earliest))) = (firsts.as_slice().first(), firsts.as_slice().last()) else {
            return Ok(Vec::new());
        };
        let until = Instant(latest.0 + chrono::Duration::days(1));
        let thens: std::collections::HashMap<String, Instant> = analytics_session_steps::table
            .filter(analytics_session_steps::step.eq(&then))
            .filter(analytics_session_steps::at.ge(*earliest))
            .filter(analytics_session_steps::at.lt(until))
            .select((analytics_session_steps::session_id, analytics_session_steps::at))
            .load::<(String, Instant)>(conn)
            .await?
            .into_iter()
            .collect();
        Ok::<_, DbError>(
            firsts
                .into_iter()
                .filter_map(|(session, at)| {
                    thens
                        .get(&session)
                        .filter(|t| **t >= at && t.0 - at.0 < chrono::Duration::days(1))
                        .map(|t| (at, *t))
                })
                .collect(),
        )
    })
}
