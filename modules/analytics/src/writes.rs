//! How the rollups and a client batch are written, per backend.
//!
//! On PostgreSQL each table gets one multi-row statement, and a client
//! batch's statements go out together (pipelined on a shared connection
//! reference): a batch costs four round trips (`BEGIN`, the statements'
//! preparation, their execution, `COMMIT`) whatever its size. On SQLite,
//! in-process, there is no round trip to save and diesel-async's wrapper has
//! no multi-row insert, so rows go one by one inside the immediate
//! transaction (which holds the write lock anyway) — a marked backend
//! exception, like the booking module's.
//!
//! Rows that add to counters are merged per key and written in key order,
//! listing days before host days before platform days before platform
//! months, in every transaction: two transactions adding to the same rows
//! wait for each other instead of deadlocking.

use std::collections::BTreeMap;
use std::future::Future;

use chrono::NaiveDate;
use diesel::upsert::excluded;
use diesel::QueryResult;
use diesel_async::RunQueryDsl;
use hometrip_kernel::db::prelude::*;
use hometrip_kernel::db::{PgConn, SqliteConn};
use hometrip_kernel::time::Instant;
use hometrip_kernel::Id;

use crate::store::schema::*;
use crate::store::{EventRow, HostDay, ListingDay, PlatformDelta};

/// The first time a session reached a client-side step of the funnel.
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = analytics_session_steps)]
pub struct SessionStep {
    pub session_id: String,
    pub step: String,
    pub at: Instant,
}

/// What a client batch writes, in one transaction.
pub struct BatchRows<'a> {
    pub events: &'a [EventRow],
    pub steps: &'a [SessionStep],
    /// The day's visitor: counted once a day.
    pub visitor: (NaiveDate, &'a str),
    pub days: &'a [ListingDay],
    pub platform: &'a [PlatformDelta],
}

/// Listing days merged per (listing, day) in key order, and their hosts'
/// days merged per (host, day) in key order.
pub fn merged_days(days: &[ListingDay]) -> (Vec<ListingDay>, Vec<HostDay>) {
    let mut listings: BTreeMap<(Id, NaiveDate), ListingDay> = BTreeMap::new();
    let mut hosts: BTreeMap<(Id, NaiveDate), HostDay> = BTreeMap::new();
    for d in days {
        listings.entry((d.listing_id, d.day)).and_modify(|m| m.add(d)).or_insert(*d);
        let h = HostDay::from(d);
        hosts.entry((d.host_id, d.day)).and_modify(|m| m.add(&h)).or_insert(h);
    }
    (listings.into_values().collect(), hosts.into_values().collect())
}

/// Platform deltas merged per (day, metric, currency) in key order.
pub fn merged_platform(deltas: &[PlatformDelta]) -> Vec<PlatformDelta> {
    let mut merged: BTreeMap<(NaiveDate, &str, &str), i64> = BTreeMap::new();
    for d in deltas {
        *merged.entry((d.day, &d.metric, &d.currency)).or_default() += d.value;
    }
    merged
        .into_iter()
        .map(|((day, metric, currency), value)| PlatformDelta::money(day, metric, currency, value))
        .collect()
}

/// The same deltas per month (`platform_monthly`), merged, in key order.
pub fn monthly(deltas: &[PlatformDelta]) -> Vec<PlatformDelta> {
    let by_month: Vec<PlatformDelta> =
        deltas.iter().map(|d| PlatformDelta { day: crate::domain::month_of(d.day), ..d.clone() }).collect();
    merged_platform(&by_month)
}

/// Session steps in key order, the earliest of each (session, step) kept.
pub fn merged_steps(steps: &[SessionStep]) -> Vec<SessionStep> {
    let mut merged: BTreeMap<(&str, &str), Instant> = BTreeMap::new();
    for s in steps {
        merged.entry((&s.session_id, &s.step)).and_modify(|at| *at = (*at).min(s.at)).or_insert(s.at);
    }
    merged
        .into_iter()
        .map(|((session_id, step), at)| SessionStep { session_id: session_id.to_owned(), step: step.to_owned(), at })
        .collect()
}

/// A month's delta as `platform_monthly` column values (`day` is the month's first).
type MonthlyRow<'a> = (
    diesel::dsl::Eq<platform_monthly::month, NaiveDate>,
    diesel::dsl::Eq<platform_monthly::metric, &'a String>,
    diesel::dsl::Eq<platform_monthly::currency, &'a String>,
    diesel::dsl::Eq<platform_monthly::value, i64>,
);

fn monthly_row(d: &PlatformDelta) -> MonthlyRow<'_> {
    (
        platform_monthly::month.eq(d.day),
        platform_monthly::metric.eq(&d.metric),
        platform_monthly::currency.eq(&d.currency),
        platform_monthly::value.eq(d.value),
    )
}

/// The listing day's counters plus the incoming row's.
macro_rules! sum_listing_day {
    () => {
        (
            listing_daily::views.eq(listing_daily::views + excluded(listing_daily::views)),
            listing_daily::nights_booked.eq(listing_daily::nights_booked + excluded(listing_daily::nights_booked)),
            listing_daily::accommodation.eq(listing_daily::accommodation + excluded(listing_daily::accommodation)),
            listing_daily::revenue.eq(listing_daily::revenue + excluded(listing_daily::revenue)),
            listing_daily::bookings.eq(listing_daily::bookings + excluded(listing_daily::bookings)),
            listing_daily::cancellations.eq(listing_daily::cancellations + excluded(listing_daily::cancellations)),
            listing_daily::lead_time_days.eq(listing_daily::lead_time_days + excluded(listing_daily::lead_time_days)),
            listing_daily::stay_nights.eq(listing_daily::stay_nights + excluded(listing_daily::stay_nights)),
            listing_daily::blocked.eq(listing_daily::blocked + excluded(listing_daily::blocked)),
        )
    };
}

/// The host day's counters plus the incoming row's.
macro_rules! sum_host_day {
    () => {
        (
            host_daily::views.eq(host_daily::views + excluded(host_daily::views)),
            host_daily::nights_booked.eq(host_daily::nights_booked + excluded(host_daily::nights_booked)),
            host_daily::accommodation.eq(host_daily::accommodation + excluded(host_daily::accommodation)),
            host_daily::revenue.eq(host_daily::revenue + excluded(host_daily::revenue)),
            host_daily::bookings.eq(host_daily::bookings + excluded(host_daily::bookings)),
            host_daily::cancellations.eq(host_daily::cancellations + excluded(host_daily::cancellations)),
            host_daily::lead_time_days.eq(host_daily::lead_time_days + excluded(host_daily::lead_time_days)),
            host_daily::stay_nights.eq(host_daily::stay_nights + excluded(host_daily::stay_nights)),
            host_daily::blocked.eq(host_daily::blocked + excluded(host_daily::blocked)),
        )
    };
}

/// Rollup writes on the connection of the caller's transaction.
pub trait RollupWrite {
    /// Adds each listing day's counters to its row and to its host's.
    fn add_days(&mut self, days: &[ListingDay]) -> impl Future<Output = QueryResult<()>> + Send
    where
        Self: Send,
    {
        async move {
            let (listings, hosts) = merged_days(days);
            self.add_listing_days(&listings).await?;
            self.add_host_days(&hosts).await
        }
    }
    /// Merged rows (see [`merged_days`]).
    fn add_listing_days(&mut self, days: &[ListingDay]) -> impl Future<Output = QueryResult<()>> + Send;
    fn add_host_days(&mut self, days: &[HostDay]) -> impl Future<Output = QueryResult<()>> + Send;
    /// Adds to the platform's days and months.
    fn add_platform(&mut self, deltas: &[PlatformDelta]) -> impl Future<Output = QueryResult<()>> + Send
    where
        Self: Send,
    {
        async move {
            self.add_platform_days(&merged_platform(deltas)).await?;
            self.add_platform_months(&monthly(deltas)).await
        }
    }
    /// Merged rows (see [`merged_platform`] and [`monthly`]).
    fn add_platform_days(&mut self, days: &[PlatformDelta]) -> impl Future<Output = QueryResult<()>> + Send;
    fn add_platform_months(&mut self, months: &[PlatformDelta]) -> impl Future<Output = QueryResult<()>> + Send;
    fn insert_events(&mut self, events: &[EventRow]) -> impl Future<Output = QueryResult<()>> + Send;
    /// Keeps the first time of each (session, step): a later one is ignored.
    fn record_steps(&mut self, steps: &[SessionStep]) -> impl Future<Output = QueryResult<()>> + Send;
}

macro_rules! impl_rollup_write_multi_row {
    ($($conn:ty),*) => {$(
        impl RollupWrite for $conn {
            async fn add_listing_days(&mut self, days: &[ListingDay]) -> QueryResult<()> {
                if days.is_empty() {
                    return Ok(());
                }
                diesel::insert_into(listing_daily::table)
                    .values(days)
                    .on_conflict((listing_daily::listing_id, listing_daily::day))
                    .do_update()
                    .set(sum_listing_day!())
                    .execute(self)
                    .await
                    .map(|_| ())
            }

            async fn add_host_days(&mut self, days: &[HostDay]) -> QueryResult<()> {
                if days.is_empty() {
                    return Ok(());
                }
                diesel::insert_into(host_daily::table)
                    .values(days)
                    .on_conflict((host_daily::host_id, host_daily::day))
                    .do_update()
                    .set(sum_host_day!())
                    .execute(self)
                    .await
                    .map(|_| ())
            }

            async fn add_platform_days(&mut self, days: &[PlatformDelta]) -> QueryResult<()> {
                if days.is_empty() {
                    return Ok(());
                }
                diesel::insert_into(platform_daily::table)
                    .values(days)
                    .on_conflict((platform_daily::day, platform_daily::metric, platform_daily::currency))
                    .do_update()
                    .set(platform_daily::value.eq(platform_daily::value + excluded(platform_daily::value)))
                    .execute(self)
                    .await
                    .map(|_| ())
            }

            async fn add_platform_months(&mut self, months: &[PlatformDelta]) -> QueryResult<()> {
                if months.is_empty() {
                    return Ok(());
                }
                diesel::insert_into(platform_monthly::table)
                    .values(months.iter().map(monthly_row).collect::<Vec<_>>())
                    .on_conflict((platform_monthly::month, platform_monthly::metric, platform_monthly::currency))
                    .do_update()
                    .set(platform_monthly::value.eq(platform_monthly::value + excluded(platform_monthly::value)))
                    .execute(self)
                    .await
                    .map(|_| ())
            }

            async fn insert_events(&mut self, events: &[EventRow]) -> QueryResult<()> {
                if events.is_empty() {
                    return Ok(());
                }
                diesel::insert_into(analytics_events::table).values(events).execute(self).await.map(|_| ())
            }

            async fn record_steps(&mut self, steps: &[SessionStep]) -> QueryResult<()> {
                let steps = merged_steps(steps);
                if steps.is_empty() {
                    return Ok(());
                }
                diesel::insert_into(analytics_session_steps::table)
                    .values(&steps)
                    .on_conflict_do_nothing()
                    .execute(self)
                    .await
                    .map(|_| ())
            }
        }
    )*};
}
// On a shared connection reference too, so a batch's statements can be
// pipelined.
impl_rollup_write_multi_row!(PgConn, &PgConn);

impl RollupWrite for SqliteConn {
    async fn add_listing_days(&mut self, days: &[ListingDay]) -> QueryResult<()> {
        for d in days {
            diesel::insert_into(listing_daily::table)
                .values(d)
                .on_conflict((listing_daily::listing_id, listing_daily::day))
                .do_update()
                .set(sum_listing_day!())
                .execute(self)
                .await?;
        }
        Ok(())
    }

    async fn add_host_days(&mut self, days: &[HostDay]) -> QueryResult<()> {
        for h in days {
            diesel::insert_into(host_daily::table)
                .values(h)
                .on_conflict((host_daily::host_id, host_daily::day))
                .do_update()
                .set(sum_host_day!())
                .execute(self)
                .await?;
        }
        Ok(())
    }

    async fn add_platform_days(&mut self, days: &[PlatformDelta]) -> QueryResult<()> {
        for d in days {
            diesel::insert_into(platform_daily::table)
                .values(d)
                .on_conflict((platform_daily::day, platform_daily::metric, platform_daily::currency))
                .do_update()
                .set(platform_daily::value.eq(platform_daily::value + excluded(platform_daily::value)))
                .execute(self)
                .await?;
        }
        Ok(())
    }

    async fn add_platform_months(&mut self, months: &[PlatformDelta]) -> QueryResult<()> {
        for m in months {
            diesel::insert_into(platform_monthly::table)
                .values(monthly_row(m))
                .on_conflict((platform_monthly::month, platform_monthly::metric, platform_monthly::currency))
                .do_update()
                .set(platform_monthly::value.eq(platform_monthly::value + excluded(platform_monthly::value)))
                .execute(self)
                .await?;
        }
        Ok(())
    }

    async fn insert_events(&mut self, events: &[EventRow]) -> QueryResult<()> {
        for e in events {
            diesel::insert_into(analytics_events::table).values(e).execute(self).await?;
        }
        Ok(())
    }

    async fn record_steps(&mut self, steps: &[SessionStep]) -> QueryResult<()> {
        for s in &merged_steps(steps) {
            diesel::insert_into(analytics_session_steps::table)
                .values(s)
                .on_conflict_do_nothing()
                .execute(self)
                .await?;
        }
        Ok(())
    }
}

/// A client batch's writes on the connection of the caller's transaction.
pub trait BatchWrite {
    fn write_batch(&mut self, rows: &BatchRows<'_>) -> impl Future<Output = QueryResult<()>> + Send;
}

impl BatchWrite for PgConn {
    async fn write_batch(&mut self, rows: &BatchRows<'_>) -> QueryResult<()> {
        use futures_util::future::BoxFuture;
        let conn: &PgConn = self;
        let (listings, hosts) = merged_days(rows.days);
        let (platform_days, platform_months) = (merged_platform(rows.platform), monthly(rows.platform));
        let (day, visitor) = rows.visitor;
        let mut c = [conn; 7];
        let [events, steps, listing_days, host_days, days, visitors, months] = &mut c;
        let writes: [BoxFuture<'_, QueryResult<()>>; 7] = [
            Box::pin(events.insert_events(rows.events)),
            Box::pin(steps.record_steps(rows.steps)),
            Box::pin(listing_days.add_listing_days(&listings)),
            Box::pin(host_days.add_host_days(&hosts)),
            Box::pin(days.add_platform_days(&platform_days)),
            // The visitor's first batch of the day counts them, in one
            // statement (no other statement adds to `visitors`).
            Box::pin(async move {
                diesel::sql_query(
                    "WITH fresh AS (INSERT INTO analytics_visitors (day, visitor) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING RETURNING day), \
                     daily AS (INSERT INTO platform_daily (day, metric, currency, value) \
                     SELECT day, 'visitors', '', 1 FROM fresh \
                     ON CONFLICT (day, metric, currency) DO UPDATE SET value = platform_daily.value + 1) \
                     INSERT INTO platform_monthly (month, metric, currency, value) \
                     SELECT $3, 'visitors', '', 1 FROM fresh \
                     ON CONFLICT (month, metric, currency) DO UPDATE SET value = platform_monthly.value + 1",
                )
                .bind::<diesel::sql_types::Date, _>(day)
                .bind::<diesel::sql_types::Text, _>(visitor)
                .bind::<diesel::sql_types::Date, _>(crate::domain::month_of(day))
                .execute(visitors)
                .await
                .map(|_| ())
            }),
            Box::pin(months.add_platform_months(&platform_months)),
        ];
        // All awaited (nothing dropped in flight); the first error in order wins.
        futures_util::future::join_all(writes).await.into_iter().collect()
    }
}

impl BatchWrite for SqliteConn {
    async fn write_batch(&mut self, rows: &BatchRows<'_>) -> QueryResult<()> {
        self.insert_events(rows.events).await?;
        self.record_steps(rows.steps).await?;
        self.add_days(rows.days).await?;
        self.add_platform(rows.platform).await?;
        let (day, visitor) = rows.visitor;
        let fresh = diesel::insert_into(analytics_visitors::table)
            .values((analytics_visitors::day.eq(day), analytics_visitors::visitor.eq(visitor)))
            .on_conflict_do_nothing()
            .execute(self)
            .await?;
        if fresh == 1 {
            self.add_platform(&[PlatformDelta::count(day, "visitors", 1)]).await?;
        }
        Ok(())
    }
}
