//! Reports, read from the rollups only: the host's figures over a period
//! (and per month, and as CSV per listing and month) and the operators'
//! overview with the funnel.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use hometrip_kernel::money::Money;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{Id, Problem};
use serde::Deserialize;

use crate::domain::{self, Totals};
use crate::service::{db_err, AnalyticsService};
use crate::store::{self, HostDay, ListingRow};

/// The longest period a report covers.
const MAX_DAYS: i64 = 800;
/// The funnel's median times are taken over the latest bookings of the
/// period, at most this many.
const MEDIAN_SAMPLE: i64 = 2_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PeriodQuery {
    /// The first day of the period.
    pub from: NaiveDate,
    /// The last day of the period (included).
    pub to: NaiveDate,
    /// One of the host's listings (default: all of them).
    pub listing_id: Option<Id>,
}

pub use crate::api::{HostSummary, MonthFigures};

pub use crate::api::{Funnel, Overview};

fn check_period(from: NaiveDate, to: NaiveDate) -> Result<(), Problem> {
    if to < from {
        return Err(Problem::field("to", "must not be before from"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(Problem::field("to", &format!("a period is at most {MAX_DAYS} days")));
    }
    Ok(())
}

/// Sums of the listings' days over `[from, to]`, and their available
/// nights: their days on the market less the nights blocked.
fn totals(listings: &[ListingRow], days: &[HostDay], from: NaiveDate, to: NaiveDate) -> Totals {
    let mut t = Totals::default();
    for l in listings {
        t.nights_available += domain::available_nights(from, to, l.created_on, l.deleted_on, 0);
    }
    for d in days.iter().filter(|d| d.day >= from && d.day <= to) {
        t.nights_available -= d.blocked;
        t += Totals {
            nights_available: 0,
            nights_booked: d.nights_booked,
            accommodation: d.accommodation,
            revenue: d.revenue,
            bookings: d.bookings,
            cancellations: d.cancellations,
            lead_time_days: d.lead_time_days,
            stay_nights: d.stay_nights,
        };
    }
    t.nights_available = t.nights_available.max(0);
    t
}

impl AnalyticsService {
    /// The listings a report covers: `listing_id` (the host's, or any for an
    /// admin) or all the host's; and their one currency.
    async fn reported(
        &self,
        host: Id,
        admin: bool,
        listing_id: Option<Id>,
    ) -> Result<(Vec<ListingRow>, String), Problem> {
        let listings = match listing_id {
            Some(id) => match store::listing(&self.db, id).await.map_err(db_err)? {
                Some(l) if admin || l.host_id == host => vec![l],
                _ => return Err(Problem::not_found("listing")),
            },
            None => store::listings_of_host(&self.db, host).await.map_err(db_err)?,
        };
        let mut currencies: Vec<&str> = listings.iter().map(|l| l.currency.as_str()).collect();
        currencies.sort_unstable();
        currencies.dedup();
        let currency = match currencies.as_slice() {
            [] => self.settings.currency.clone(),
            [one] => (*one).to_owned(),
            _ => {
                return Err(Problem::field(
                    "listing_id",
                    "your listings are priced in several currencies: ask for one listing at a time",
                ))
            }
        };
        Ok((listings, currency))
    }

    pub async fn host_summary(&self, host: Id, admin: bool, q: &PeriodQuery) -> Result<HostSummary, Problem> {
        check_period(q.from, q.to)?;
        let (listings, currency) = self.reported(host, admin, q.listing_id).await?;
        // A day per row: the host's days (all listings summed), or the one listing's.
        let days: Vec<HostDay> = match q.listing_id {
            None => store::host_days(&self.db, host, q.from, q.to).await.map_err(db_err)?,
            Some(id) => store::listing_days(&self.db, &[id], q.from, q.to)
                .await
                .map_err(db_err)?
                .iter()
                .map(HostDay::from)
                .collect(),
        };
        let by_month = domain::months(q.from, q.to)
            .into_iter()
            .map(|(month, start, end)| MonthFigures {
                month,
                figures: domain::figures(&totals(&listings, &days, start, end), &currency),
            })
            .collect();
        Ok(HostSummary {
            from: q.from,
            to: q.to,
            listings: listings.len(),
            figures: domain::figures(&totals(&listings, &days, q.from, q.to), &currency),
            by_month,
        })
    }

    /// The same per listing and month, as CSV.
    pub async fn host_csv(&self, host: Id, admin: bool, q: &PeriodQuery) -> Result<String, Problem> {
        check_period(q.from, q.to)?;
        let (listings, currency) = self.reported(host, admin, q.listing_id).await?;
        let ids: Vec<Id> = listings.iter().map(|l| l.listing_id).collect();
        let days = store::listing_days(&self.db, &ids, q.from, q.to).await.map_err(db_err)?;
        let mut out = csv::Writer::from_writer(Vec::new());
        let header = [
            "listing_id",
            "title",
            "month",
            "nights_available",
            "nights_booked",
            "occupancy_rate",
            "adr",
            "revpar",
            "revenue",
            "currency",
            "bookings",
            "cancellations",
            "average_lead_time_days",
            "average_length_of_stay",
        ];
        out.write_record(header).map_err(Problem::internal)?;
        // Money as decimal amounts in the currency's major unit (two decimals).
        let major = |m: &Money| {
            let a = m.amount.abs();
            format!("{}{}.{:02}", if m.amount < 0 { "-" } else { "" }, a / 100, a % 100)
        };
        for l in &listings {
            let own: Vec<HostDay> = days.iter().filter(|d| d.listing_id == l.listing_id).map(HostDay::from).collect();
            for (month, start, end) in domain::months(q.from, q.to) {
                let f = domain::figures(&totals(std::slice::from_ref(l), &own, start, end), &currency);
                out.write_record([
                    l.listing_id.to_string(),
                    l.title.clone(),
                    month,
                    f.nights_available.to_string(),
                    f.nights_booked.to_string(),
                    f.occupancy_rate.to_string(),
                    major(&f.adr),
                    major(&f.revpar),
                    major(&f.revenue),
                    currency.clone(),
                    f.bookings.to_string(),
                    f.cancellations.to_string(),
                    f.average_lead_time_days.to_string(),
                    f.average_length_of_stay.to_string(),
                ])
                .map_err(Problem::internal)?;
            }
        }
        let bytes = out.into_inner().map_err(|e| Problem::internal(e.to_string()))?;
        String::from_utf8(bytes).map_err(Problem::internal)
    }

    /// `GET /admin/analytics/overview`.
    pub async fn overview(&self, from: NaiveDate, to: NaiveDate) -> Result<Overview, Problem> {
        check_period(from, to)?;
        let start = Instant::from(from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
        let end = Instant::from((to + Duration::days(1)).and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
        let [first, second, third] = domain::FUNNEL_STEPS;
        // Four independent reads, on connections of their own at once.
        let (totals, bookings, to_view, to_start) = futures_util::future::try_join4(
            store::platform_totals(&self.db, from, to),
            store::milestones(&self.db, start, end, MEDIAN_SAMPLE),
            store::step_gaps(&self.db, first, second, start, end, MEDIAN_SAMPLE),
            store::step_gaps(&self.db, second, third, start, end, MEDIAN_SAMPLE),
        )
        .await
        .map_err(db_err)?;
        let count =
            |metric: &str| totals.iter().filter(|(m, c, _)| m == metric && c.is_empty()).map(|(_, _, v)| v).sum();
        let money = |metric: &str, currency: &str| {
            totals.iter().filter(|(m, c, _)| m == metric && c == currency).map(|(_, _, v)| *v).sum::<i64>()
        };
        let main = self.settings.currency.clone();
        let mut other_currencies: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for (m, c, v) in &totals {
            if !c.is_empty() && *c != main {
                *other_currencies.entry(c.clone()).or_default().entry(m.clone()).or_default() += v;
            }
        }
        let funnel = Funnel {
            search: count("search"),
            listing_view: count("listing_view"),
            booking_started: count("bookings_started"),
            booking_confirmed: count("bookings_confirmed"),
            booking_completed: count("bookings_completed"),
            reviewed: count("reviews"),
        };
        let conversion = BTreeMap::from([
            ("search_to_listing_view".to_owned(), domain::conversion(funnel.search, funnel.listing_view)),
            (
                "listing_view_to_booking_started".to_owned(),
                domain::conversion(funnel.listing_view, funnel.booking_started),
            ),
            (
                "booking_started_to_confirmed".to_owned(),
                domain::conversion(funnel.booking_started, funnel.booking_confirmed),
            ),
            (
                "confirmed_to_completed".to_owned(),
                domain::conversion(funnel.booking_confirmed, funnel.booking_completed),
            ),
            ("completed_to_reviewed".to_owned(), domain::conversion(funnel.booking_completed, funnel.reviewed)),
        ]);
        let between = |a: fn(&store::Milestones) -> Option<Instant>, b: fn(&store::Milestones) -> Option<Instant>| {
            domain::median_minutes(
                bookings.iter().filter_map(|r| Some((b(r)?.0 - a(r)?.0).num_minutes())).collect::<Vec<i64>>(),
            )
        };
        let mut median_minutes = BTreeMap::from([
            ("booking_started_to_confirmed".to_owned(), between(|r| Some(r.0), |r| r.1)),
            ("confirmed_to_completed".to_owned(), between(|r| r.1, |r| r.2)),
            ("completed_to_reviewed".to_owned(), between(|r| r.2, |r| r.3)),
        ]);
        // The client-side steps, per session (the server's booking is
        // not tied to a client session).
        for ((a, b), gaps) in [((first, second), to_view), ((second, third), to_start)] {
            let minutes = gaps.iter().map(|(x, y)| (y.0 - x.0).num_minutes()).collect();
            median_minutes.insert(format!("{a}_to_{b}"), domain::median_minutes(minutes));
        }
        Ok(Overview {
            from,
            to,
            gmv: Money::new(money("gmv", &main), &main),
            net_revenue: Money::new(money("net_revenue", &main), &main),
            bookings: funnel.booking_confirmed,
            cancellations: count("cancellations"),
            new_users: count("new_users"),
            visitors: count("visitors"),
            booking_started_events: count("booking_started"),
            funnel,
            conversion,
            median_minutes,
            other_currencies,
        })
    }
}

#[async_trait::async_trait]
impl crate::api::HostFigures for AnalyticsService {
    async fn summary(
        &self,
        user: &hometrip_kernel::auth_context::AuthUser,
        from: NaiveDate,
        to: NaiveDate,
        listing_id: Option<Id>,
    ) -> Result<HostSummary, Problem> {
        self.host_summary(user.id, user.is_admin(), &PeriodQuery { from, to, listing_id }).await
    }

    async fn csv(
        &self,
        user: &hometrip_kernel::auth_context::AuthUser,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<String, Problem> {
        self.host_csv(user.id, user.is_admin(), &PeriodQuery { from, to, listing_id: None }).await
    }
}

#[async_trait::async_trait]
impl crate::api::OperatorFigures for AnalyticsService {
    async fn overview(
        &self,
        admin: &hometrip_kernel::auth_context::AuthUser,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Overview, Problem> {
        admin.require_admin()?;
        AnalyticsService::overview(self, from, to).await
    }
}
