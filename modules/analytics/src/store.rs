//! Persistence of analytics: raw client events, the day's salts and
//! visitors, the rollups (platform and listing days), and the projections
//! the rollups are kept from (listings, blocked nights, bookings). A domain
//! event's changes commit with its id in `analytics_applied`, so a
//! redelivered event is rolled up once.

use chrono::NaiveDate;
use diesel::upsert::excluded;
use hometrip_kernel::db::prelude::*;
use hometrip_kernel::db::{Db, DbError, MigrationSet};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{run, transaction, Id};

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

/// Adds each listing day's counters to its row and to its host's.
macro_rules! add_listing_days {
    ($conn:expr, $days:expr) => {
        for d in $days {
            diesel::insert_into(listing_daily::table)
                .values(d)
                .on_conflict((listing_daily::listing_id, listing_daily::day))
                .do_update()
                .set((
                    listing_daily::views.eq(listing_daily::views + excluded(listing_daily::views)),
                    listing_daily::nights_booked
                        .eq(listing_daily::nights_booked + excluded(listing_daily::nights_booked)),
                    listing_daily::accommodation
                        .eq(listing_daily::accommodation + excluded(listing_daily::accommodation)),
                    listing_daily::revenue.eq(listing_daily::revenue + excluded(listing_daily::revenue)),
                    listing_daily::bookings.eq(listing_daily::bookings + excluded(listing_daily::bookings)),
                    listing_daily::cancellations
                        .eq(listing_daily::cancellations + excluded(listing_daily::cancellations)),
                    listing_daily::lead_time_days
                        .eq(listing_daily::lead_time_days + excluded(listing_daily::lead_time_days)),
                    listing_daily::stay_nights.eq(listing_daily::stay_nights + excluded(listing_daily::stay_nights)),
                    listing_daily::blocked.eq(listing_daily::blocked + excluded(listing_daily::blocked)),
                ))
                .execute($conn)
                .await?;
            diesel::insert_into(host_daily::table)
                .values(HostDay::from(d))
                .on_conflict((host_daily::host_id, host_daily::day))
                .do_update()
                .set((
                    host_daily::views.eq(host_daily::views + excluded(host_daily::views)),
                    host_daily::nights_booked.eq(host_daily::nights_booked + excluded(host_daily::nights_booked)),
                    host_daily::accommodation.eq(host_daily::accommodation + excluded(host_daily::accommodation)),
                    host_daily::revenue.eq(host_daily::revenue + excluded(host_daily::revenue)),
                    host_daily::bookings.eq(host_daily::bookings + excluded(host_daily::bookings)),
                    host_daily::cancellations.eq(host_daily::cancellations + excluded(host_daily::cancellations)),
                    host_daily::lead_time_days.eq(host_daily::lead_time_days + excluded(host_daily::lead_time_days)),
                    host_daily::stay_nights.eq(host_daily::stay_nights + excluded(host_daily::stay_nights)),
                    host_daily::blocked.eq(host_daily::blocked + excluded(host_daily::blocked)),
                ))
                .execute($conn)
                .await?;
        }
    };
}

macro_rules! add_platform {
    ($conn:expr, $deltas:expr) => {
        for d in $deltas {
            diesel::insert_into(platform_daily::table)
                .values(d)
                .on_conflict((platform_daily::day, platform_daily::metric, platform_daily::currency))
                .do_update()
                .set(platform_daily::value.eq(platform_daily::value + excluded(platform_daily::value)))
                .execute($conn)
                .await?;
        }
    };
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
        add_listing_days!(conn, &change.days);
        add_platform!(conn, &change.platform);
        Ok(true)
    })
}

/// A client batch: the raw events, the day's visitors, and the counters.
pub async fn ingest(
    db: &Db,
    events: &[EventRow],
    visitors: &[(NaiveDate, String)],
    days: &[ListingDay],
    platform: &[PlatformDelta],
) -> Result<(), DbError> {
    transaction!(db, |conn| {
        for e in events {
            diesel::insert_into(analytics_events::table).values(e).execute(conn).await?;
        }
        for (day, visitor) in visitors {
            let fresh = diesel::insert_into(analytics_visitors::table)
                .values((analytics_visitors::day.eq(day), analytics_visitors::visitor.eq(visitor)))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            if fresh == 1 {
                add_platform!(conn, [&PlatformDelta::count(*day, "visitors", 1)]);
            }
        }
        add_listing_days!(conn, days);
        add_platform!(conn, platform);
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
        add_listing_days!(conn, &changes);
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

/// Platform counters in `[from, to]`, summed per (metric, currency) by the database.
pub async fn platform_totals(db: &Db, from: NaiveDate, to: NaiveDate) -> Result<Vec<(String, String, i64)>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            platform_daily::table
                .filter(platform_daily::day.ge(from))
                .filter(platform_daily::day.le(to))
                .group_by((platform_daily::metric, platform_daily::currency))
                .select((
                    platform_daily::metric,
                    platform_daily::currency,
                    // A plain bigint on both backends (PostgreSQL's SUM of bigint is numeric).
                    diesel::dsl::sql::<diesel::sql_types::BigInt>("CAST(SUM(value) AS BIGINT)"),
                ))
                .load(conn)
                .await?,
        )
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
