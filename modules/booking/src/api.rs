//! The booking module's published language: the [`Bookings`] trait, booking
//! and refund-timeline types, the events every transition publishes, and settings.

use async_trait::async_trait;
use chrono::NaiveDate;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::http::Page;
use hometrip_kernel::money::Money;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{Id, Problem};
use hometrip_listing::api::{Quote, Rate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const MODULE: &str = "booking";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    /// Nights held, waiting for the guest's payment (or card authorisation).
    PendingPayment,
    /// Request to book: the card is authorised, the host has 24 hours to answer.
    PendingHost,
    Confirmed,
    Declined,
    Expired,
    CancelledByGuest,
    CancelledByHost,
    Completed,
}

impl BookingStatus {
    pub const ALL: [BookingStatus; 8] = [
        BookingStatus::PendingPayment,
        BookingStatus::PendingHost,
        BookingStatus::Confirmed,
        BookingStatus::Declined,
        BookingStatus::Expired,
        BookingStatus::CancelledByGuest,
        BookingStatus::CancelledByHost,
        BookingStatus::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::PendingPayment => "pending_payment",
            BookingStatus::PendingHost => "pending_host",
            BookingStatus::Confirmed => "confirmed",
            BookingStatus::Declined => "declined",
            BookingStatus::Expired => "expired",
            BookingStatus::CancelledByGuest => "cancelled_by_guest",
            BookingStatus::CancelledByHost => "cancelled_by_host",
            BookingStatus::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Option<BookingStatus> {
        BookingStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the booking still holds its nights.
    pub fn holds_nights(self) -> bool {
        matches!(
            self,
            BookingStatus::PendingPayment
                | BookingStatus::PendingHost
                | BookingStatus::Confirmed
                | BookingStatus::Completed
        )
    }
}

/// One step of a refund timeline: cancelling from `from` until `until` (open
/// when absent) brings back exactly `refund`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RefundStep {
    pub from: Instant,
    pub until: Option<Instant>,
    pub refund: Money,
    /// `full`, `partial` or `none`.
    pub kind: String,
}

/// A quote as the booking module prices it: the listing's quote plus the
/// cancellation terms and what would come back when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BookingQuote {
    #[serde(flatten)]
    pub quote: Quote,
    pub cancellation_policy: String,
    /// Check-in, in UTC, from the listing's local check-in time.
    pub check_in_at: Instant,
    pub refund_timeline: Vec<RefundStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Booking {
    pub id: Id,
    pub status: BookingStatus,
    pub listing_id: Id,
    pub guest_id: Id,
    pub host_id: Id,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub guests: u32,
    pub nights: u32,
    pub rate: Rate,
    pub instant_book: bool,
    pub cancellation_policy: String,
    pub time_zone: String,
    pub check_in_at: Instant,
    pub check_out_at: Instant,
    /// The quote the guest accepted.
    pub price: Quote,
    /// What a cancellation by the guest would bring back, from now on.
    pub refund_timeline: Vec<RefundStep>,
    /// An unpaid hold is released at this time.
    pub hold_expires_at: Option<Instant>,
    /// A request to book expires unanswered at this time.
    pub respond_by: Option<Instant>,
    pub confirmed_at: Option<Instant>,
    /// Until then a guest's cancellation is refunded in full (the grace period),
    /// when the booking was confirmed at least 7 days before check-in.
    pub grace_period_until: Option<Instant>,
    pub cancelled_at: Option<Instant>,
    /// What the guest got back on cancellation.
    pub refund: Option<Money>,
    pub payment_id: Option<Id>,
    pub created_at: Instant,
    pub updated_at: Instant,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBooking {
    pub listing_id: Id,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub guests: u32,
    /// `standard` (default) or `non_refundable`.
    #[serde(default)]
    pub rate: Option<Rate>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PaymentOutcome {
    /// The payment's status: `succeeded`, `requires_capture` (request sent to
    /// the host), `requires_action` (3-D Secure at `next_action_url`),
    /// `declined` or `processing`.
    pub status: String,
    pub payment_id: Id,
    pub booking_status: BookingStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_action_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Cancellation {
    pub booking: Booking,
    /// What comes back to the guest (zero when nothing was charged).
    pub refund: Money,
    /// What the host owes for cancelling, when the host cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_penalty: Option<Money>,
}

/// Whose bookings a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The caller's trips.
    Guest,
    /// The bookings of the caller's listings.
    Host,
}

impl Party {
    pub fn as_str(self) -> &'static str {
        match self {
            Party::Guest => "guest",
            Party::Host => "host",
        }
    }
}

/// Bookings as other modules see them (reviews, messages), in process or over HTTP.
#[async_trait]
pub trait Bookings: Send + Sync {
    async fn booking(&self, id: Id) -> Result<Option<Booking>, Problem>;
}

/// The booking use cases of a signed-in guest or host (the web app's pages),
/// in process or over the module's public routes as that user: the same
/// rules and answers as the API.
#[async_trait]
pub trait Reservations: Send + Sync {
    /// The price of a stay with its refund timeline (no one need be signed in).
    async fn quote(
        &self,
        listing_id: Id,
        check_in: NaiveDate,
        check_out: NaiveDate,
        guests: u32,
        rate: Rate,
    ) -> Result<BookingQuote, Problem>;
    /// Holds the nights; the same key and request give the same booking.
    async fn create(&self, user: &AuthUser, req: &CreateBooking, key: Option<&str>) -> Result<Booking, Problem>;
    async fn pay(
        &self,
        user: &AuthUser,
        id: Id,
        payment_method: &str,
        key: Option<&str>,
    ) -> Result<PaymentOutcome, Problem>;
    /// The user's trips or their listings' bookings, newest first.
    async fn list(
        &self,
        user: &AuthUser,
        party: Party,
        status: Option<BookingStatus>,
        cursor: Option<Id>,
        limit: u32,
    ) -> Result<Page<Booking>, Problem>;
    /// A booking its guest or host may see (403 otherwise).
    async fn get(&self, user: &AuthUser, id: Id) -> Result<Booking, Problem>;
    async fn cancel(&self, user: &AuthUser, id: Id) -> Result<Cancellation, Problem>;
    async fn accept(&self, user: &AuthUser, id: Id) -> Result<Booking, Problem>;
    async fn decline(&self, user: &AuthUser, id: Id) -> Result<Booking, Problem>;
}

/// An admin's refund of part or all of a booking, with why.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminRefund {
    pub amount: Money,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Refunded {
    pub booking_id: Id,
    /// What this refund gave back.
    pub amount: Money,
    /// What has come back to the guest in all.
    pub refunded: Money,
    /// What could still be refunded.
    pub refundable: Money,
    pub payment: hometrip_payment::api::Payment,
}

/// Refunds as an admin gives them from the console, in process or over the
/// module's admin route as that admin (403 for anyone else).
#[async_trait]
pub trait BookingAdmin: Send + Sync {
    /// Never more than the guest paid (422); the same `key` refunds once.
    async fn refund(&self, admin: &AuthUser, id: Id, refund: &AdminRefund, key: &str) -> Result<Refunded, Problem>;
}

// ---- Events -------------------------------------------------------------------

pub const BOOKING_CREATED: &str = "booking.created";
pub const BOOKING_AWAITING_HOST: &str = "booking.awaiting_host";
pub const BOOKING_CONFIRMED: &str = "booking.confirmed";
pub const BOOKING_DECLINED: &str = "booking.declined";
pub const BOOKING_EXPIRED: &str = "booking.expired";
pub const BOOKING_CANCELLED_BY_GUEST: &str = "booking.cancelled_by_guest";
pub const BOOKING_CANCELLED_BY_HOST: &str = "booking.cancelled_by_host";
pub const BOOKING_COMPLETED: &str = "booking.completed";

/// The payload of every booking event: the booking after the transition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BookingEvent {
    pub booking: Booking,
}

// ---- Settings -----------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingSettings {
    /// How long nights are held for an unpaid booking.
    pub hold_minutes: i64,
    /// How long a host has to answer a request to book.
    pub host_response_hours: i64,
    /// When the host's payout is released, after check-in.
    pub payout_delay_hours: i64,
    /// What a host owes for cancelling a confirmed stay, on the accommodation, in basis points.
    pub host_penalty_bps: i64,
    /// How often the reconciliation job looks for half-finished money flows.
    pub reconcile_interval_secs: i64,
}
