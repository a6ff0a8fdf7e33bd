//! The payment module's published language: the [`Payments`] trait the booking
//! module calls, payment, refund and payout types, ledger views, events and
//! settings.

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::money::Money;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{Id, Problem};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const MODULE: &str = "payment";

/// Whether the charge is taken at once (instant book) or only authorised and
/// captured when the host accepts (request to book).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMethod {
    Automatic,
    Manual,
}

impl CaptureMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureMethod::Automatic => "automatic",
            CaptureMethod::Manual => "manual",
        }
    }
}

/// A payment's state, named after Stripe's PaymentIntent states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Sent to the provider; the answer is not recorded yet (a crash here is
    /// settled by asking the provider again with the same idempotency key).
    Processing,
    /// The card needs an extra step (3-D Secure) at `next_action_url`.
    RequiresAction,
    /// Authorised, not captured (request to book, waiting for the host).
    RequiresCapture,
    Succeeded,
    /// Declined or failed; another card may be tried.
    Failed,
    /// An authorisation released without charging.
    Canceled,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Processing => "processing",
            PaymentStatus::RequiresAction => "requires_action",
            PaymentStatus::RequiresCapture => "requires_capture",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> PaymentStatus {
        match s {
            "requires_action" => PaymentStatus::RequiresAction,
            "requires_capture" => PaymentStatus::RequiresCapture,
            "succeeded" => PaymentStatus::Succeeded,
            "failed" => PaymentStatus::Failed,
            "canceled" => PaymentStatus::Canceled,
            _ => PaymentStatus::Processing,
        }
    }

    /// Money is taken or held: no other payment may start for the booking.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            PaymentStatus::Processing
                | PaymentStatus::RequiresAction
                | PaymentStatus::RequiresCapture
                | PaymentStatus::Succeeded
        )
    }
}

/// The parts of a booking's price, in minor units of one currency: what the
/// ledger splits a charge or a refund into.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Breakdown {
    /// Nights after discounts, with extra-guest fees: the host's, minus the host fee.
    pub accommodation: i64,
    /// The host's.
    pub cleaning_fee: i64,
    /// The platform's guest service fee.
    pub service_fee: i64,
    /// Collected for the tax authority.
    pub taxes: i64,
}

impl Breakdown {
    pub fn total(&self) -> i64 {
        self.accommodation + self.cleaning_fee + self.service_fee + self.taxes
    }
}

/// A guest's payment for a booking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Payment {
    pub id: Id,
    pub booking_id: Id,
    pub guest_id: Id,
    pub host_id: Id,
    pub amount: Money,
    pub breakdown: Breakdown,
    pub status: PaymentStatus,
    pub capture_method: CaptureMethod,
    /// What has come back to the guest so far.
    pub refunded: Money,
    /// The same, per part of the charge.
    #[serde(default)]
    pub refunded_breakdown: Breakdown,
    /// What the ledger owes the host for it now: accommodation and cleaning
    /// not refunded, less the host fee on them (zero until captured).
    #[serde(default)]
    pub host_earnings: Money,
    /// What the platform keeps: the service fee not refunded and the host fee.
    #[serde(default)]
    pub platform_revenue: Money,
    /// The provider's reference (`pi_...`).
    pub provider_ref: Option<String>,
    /// Where the guest completes 3-D Secure, when `status` is `requires_action`.
    pub next_action_url: Option<String>,
    /// Why the card was declined (`card_declined`, `insufficient_funds`, ...).
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: Instant,
    pub updated_at: Instant,
}

/// A booking's charge, as the booking module asks for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChargeRequest {
    pub booking_id: Id,
    pub guest_id: Id,
    pub host_id: Id,
    pub currency: String,
    pub breakdown: Breakdown,
    pub capture: CaptureMethod,
    /// A provider payment method id (`pm_card_visa` in test mode).
    pub payment_method: String,
    /// The same key always yields the same payment (retries, double clicks).
    pub idempotency_key: String,
}

/// Money back to the guest, split like the charge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundRequest {
    pub booking_id: Id,
    pub parts: Breakdown,
    pub reason: String,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    /// Waiting for its release time (24 hours after check-in).
    Scheduled,
    Paid,
    /// Nothing left to pay (the stay was refunded in full).
    Skipped,
}

/// A host's payout account with the provider (Stripe Connect Express).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PayoutAccount {
    pub account_id: String,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    /// Where the host fills in their details (while they are missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onboarding_url: Option<String>,
}

/// A host's payouts and payout account as the web app shows them, in
/// process or over the module's public routes as that host.
#[async_trait]
pub trait HostPayouts: Send + Sync {
    /// The host's payouts, the newest first (at most 100).
    async fn payouts(&self, user: &AuthUser) -> Result<Vec<Payout>, Problem>;
    /// The account as the provider sees it now; `None` before one is opened.
    async fn payout_account(&self, user: &AuthUser) -> Result<Option<PayoutAccount>, Problem>;
    /// Opens the account (or finds it), with a fresh onboarding link while
    /// details are missing; 502 when the provider does not answer.
    async fn open_payout_account(&self, user: &AuthUser) -> Result<PayoutAccount, Problem>;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Payout {
    pub id: Id,
    pub booking_id: Id,
    pub host_id: Id,
    pub amount: Money,
    pub status: PayoutStatus,
    pub release_at: Instant,
    pub paid_at: Option<Instant>,
    pub provider_ref: Option<String>,
}

/// A ledger transaction as one party sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TransactionView {
    pub id: Id,
    /// `charge`, `refund`, `payout` or `host_penalty`.
    pub kind: String,
    pub booking_id: Option<Id>,
    /// Signed from the caller's side: a guest's charge is negative, a refund
    /// positive; a host's earning is positive, a refund or penalty negative,
    /// a payout positive (money sent to the host's bank).
    pub amount: Money,
    pub occurred_at: Instant,
    pub description: String,
}

/// The payment side of a booking, for the booking module.
#[async_trait]
pub trait Payments: Send + Sync {
    /// Charges (or authorises) the guest's card. A declined card is a payment
    /// with status `failed`, not an error. One live payment per booking: a
    /// second request while one is live returns it.
    async fn charge(&self, req: ChargeRequest) -> Result<Payment, Problem>;
    /// Captures the authorised payment of a booking (the host accepted).
    async fn capture(&self, booking_id: Id) -> Result<Payment, Problem>;
    /// Releases an authorisation without charging (declined or expired request).
    async fn cancel_authorization(&self, booking_id: Id) -> Result<Option<Payment>, Problem>;
    /// Refunds part or all of a booking's captured payment.
    async fn refund(&self, req: RefundRequest) -> Result<Payment, Problem>;
    /// Schedules the host's payout for a booking at `release_at`.
    async fn schedule_payout(&self, booking_id: Id, host_id: Id, release_at: Instant) -> Result<(), Problem>;
    /// Records what a host owes for cancelling a confirmed stay.
    async fn record_host_penalty(&self, booking_id: Id, host_id: Id, amount: Money) -> Result<(), Problem>;
    /// The booking's live payment (else its latest), brought up to date with
    /// the provider when its last known state was in flight.
    async fn payment_for(&self, booking_id: Id) -> Result<Option<Payment>, Problem>;
}

// ---- Events -------------------------------------------------------------------

/// Captured: the guest has paid.
pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";
/// Authorised, to be captured when the host accepts.
pub const PAYMENT_AUTHORIZED: &str = "payment.authorized";
pub const PAYMENT_FAILED: &str = "payment.failed";
pub const PAYMENT_REFUNDED: &str = "payment.refunded";
pub const PAYOUT_PAID: &str = "payment.payout_paid";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentEvent {
    pub payment: Payment,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayoutEvent {
    pub payout: Payout,
}

// ---- Settings -----------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentSettings {
    /// `simulated` (offline, Stripe's test cards) or `stripe`.
    pub provider: String,
    /// Lets the production profile run the simulated provider (staging).
    pub simulated_in_production: bool,
    /// The platform's fee on the host's earnings (accommodation and cleaning), in basis points.
    pub host_fee_bps: i64,
    pub stripe: StripeSettings,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeSettings {
    pub secret_key: String,
    /// The browser's key for Stripe Elements (`pk_...`); empty: no Elements.
    #[serde(default)]
    pub publishable_key: String,
    pub webhook_secret: String,
    /// Stripe's API, or a proxy / local server that speaks its wire format.
    pub api_base: String,
    /// How old a signed webhook may be, in seconds.
    pub webhook_tolerance_secs: i64,
}
