//! The analytics module's published language: the host's figures
//! ([`HostFigures`]) and its settings. (It publishes no events.)

use async_trait::async_trait;
use chrono::NaiveDate;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::{Id, Problem};
use serde::{Deserialize, Serialize};

pub const MODULE: &str = "analytics";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsSettings {
    /// Days raw client events are kept (rollups are kept).
    pub raw_retention_days: i64,
    /// Batches one address may send per minute.
    pub batches_per_minute: u32,
    /// The currency the operators' overview reports money in.
    pub currency: String,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        AnalyticsSettings { raw_retention_days: 90, batches_per_minute: 60, currency: "EUR".to_owned() }
    }
}

/// The figures of the contract, from the totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Figures {
    pub nights_available: i64,
    pub nights_booked: i64,
    /// Booked nights / available nights (0 when none is available).
    pub occupancy_rate: f64,
    /// Average daily rate: accommodation revenue / booked nights.
    pub adr: hometrip_kernel::money::Money,
    /// Accommodation revenue / available nights.
    pub revpar: hometrip_kernel::money::Money,
    /// What the ledger owes the host for the period's nights.
    pub revenue: hometrip_kernel::money::Money,
    /// Bookings confirmed in the period.
    pub bookings: i64,
    /// Confirmed bookings cancelled in the period.
    pub cancellations: i64,
    /// Days from confirmation to check-in, on average over the period's bookings.
    pub average_lead_time_days: f64,
    /// Nights per booking, on average over the period's bookings.
    pub average_length_of_stay: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MonthFigures {
    /// `YYYY-MM`.
    pub month: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The host's figures over a period. A night is available unless the host
/// blocked it (here or in an imported calendar), from the listing's
/// creation; nights count on their own date, bookings and cancellations on
/// the day they happened; revenue is what the ledger owes the host.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HostSummary {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub listings: usize,
    #[serde(flatten)]
    pub figures: Figures,
    pub by_month: Vec<MonthFigures>,
}

/// The host's figures as that host sees them (the dashboard, earnings), in
/// process or over the module's public routes as that user.
#[async_trait]
pub trait HostFigures: Send + Sync {
    /// Over `from..=to`, of all the user's listings or of one (404 for
    /// someone else's listing).
    async fn summary(
        &self,
        user: &AuthUser,
        from: NaiveDate,
        to: NaiveDate,
        listing_id: Option<Id>,
    ) -> Result<HostSummary, Problem>;
    /// The same per listing and month, as CSV.
    async fn csv(&self, user: &AuthUser, from: NaiveDate, to: NaiveDate) -> Result<String, Problem>;
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Funnel {
    pub search: i64,
    pub listing_view: i64,
    /// Bookings created (the server's count; clients' `booking_started`
    /// events are `booking_started_events`).
    pub booking_started: i64,
    pub booking_confirmed: i64,
    pub booking_completed: i64,
    /// Stays reviewed by their guest.
    pub reviewed: i64,
}

/// The operators' overview of a period.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Overview {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// What guests paid, less refunds (in `analytics.currency`).
    pub gmv: hometrip_kernel::money::Money,
    /// What the platform keeps: service fees and host fees, less refunds.
    pub net_revenue: hometrip_kernel::money::Money,
    pub bookings: i64,
    pub cancellations: i64,
    pub new_users: i64,
    /// Distinct visitors, day by day, summed.
    pub visitors: i64,
    pub booking_started_events: i64,
    pub funnel: Funnel,
    /// Each step over the one before (4 decimals; null when the step before is 0).
    pub conversion: std::collections::BTreeMap<String, Option<f64>>,
    /// Median minutes between steps: `search_to_listing_view` and
    /// `listing_view_to_booking_started` over the client sessions that took
    /// the first step in the period (the latest 2,000 of each pair, while
    /// raw events are kept); the server-side steps over the bookings created
    /// in the period (the latest 2,000).
    pub median_minutes: std::collections::BTreeMap<String, Option<f64>>,
    /// Money in other currencies, per currency.
    pub other_currencies: std::collections::BTreeMap<String, std::collections::BTreeMap<String, i64>>,
}

/// The operators' overview as the console shows it, in process or over the
/// module's admin route as that admin (403 for anyone else).
#[async_trait]
pub trait OperatorFigures: Send + Sync {
    async fn overview(&self, admin: &AuthUser, from: NaiveDate, to: NaiveDate) -> Result<Overview, Problem>;
}
