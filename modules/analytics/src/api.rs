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
