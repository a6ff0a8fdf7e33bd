//! The notification module's published language: the in-app notification,
//! the [`Notifications`] trait the realtime module reads to resume, the
//! event it publishes for live delivery, the catalogue's kind names, and
//! settings.

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{Id, Problem};
use serde::{Deserialize, Serialize};

pub const MODULE: &str = "notification";

/// An in-app notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: Id,
    pub kind: String,
    pub title: String,
    pub body: String,
    /// Where it leads in the web app (a path).
    pub link: String,
    pub created_at: Instant,
    pub read_at: Option<Instant>,
}

/// In-app notifications as the realtime module reads them (a resume).
#[async_trait]
pub trait Notifications: Send + Sync {
    /// `user`'s notifications created after the one with id `after` (ids are
    /// time-ordered), oldest first, at most `limit`.
    async fn after(&self, user: Id, after: Option<Id>, limit: u32) -> Result<Vec<Notification>, Problem>;
}

/// A page of a user's notifications, the newest first.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationList {
    pub items: Vec<Notification>,
    pub unread_count: i64,
    pub next_cursor: Option<String>,
}

/// A signed-in user's own notifications, for the notifications page: the
/// API's `/notifications` use cases, in process or over those routes as the user.
#[async_trait]
pub trait NotificationCenter: Send + Sync {
    /// The newest first, after `cursor` (a notification id); the unread count with them.
    async fn list(
        &self,
        user: &AuthUser,
        unread_only: bool,
        cursor: Option<Id>,
        limit: u32,
    ) -> Result<NotificationList, Problem>;
    /// One notification, or all of them with `None`; 404 for someone else's.
    async fn mark_read(&self, user: &AuthUser, id: Option<Id>) -> Result<(), Problem>;
}

/// A notification was stored for its recipient (pushed live over `/ws`).
pub const NOTIFICATION_CREATED: &str = "notification.created";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotificationCreated {
    pub user_id: Id,
    pub notification: Notification,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// Sender of every email.
    pub from: String,
    pub smtp: SmtpSettings,
    /// A message not read within this delay is notified (several as one).
    pub message_delay_minutes: i64,
    pub twilio: TwilioSettings,
    pub push: PushSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// `smtp://host:port` or `smtps://user:pass@host`; empty: write `.eml` files.
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TwilioSettings {
    /// Empty: SMS are written under `<data_dir>/outbox/sms/`.
    pub account_sid: String,
    pub auth_token: String,
    /// The sending number (E.164) or messaging service.
    pub from: String,
    /// Twilio's API, or a local server that speaks its wire format.
    pub api_base: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PushSettings {
    /// PKCS#8 PEM of the P-256 VAPID key; empty: generated into `<data_dir>/keys/vapid.pem`.
    pub vapid_private_key_pem: String,
    /// The contact push services may write to (`mailto:` or `https:`).
    pub subject: String,
    /// Accept subscriptions whose endpoint is a private or loopback address.
    pub allow_private_endpoints: bool,
}

/// The kinds of the contract, then the account-security emails.
pub const KINDS: &[&str] = &[
    "booking_requested",
    "booking_confirmed",
    "booking_declined",
    "booking_cancelled",
    "booking_reminder",
    "message_received",
    "review_requested",
    "review_published",
    "payout_paid",
    "email_verification",
    "password_reset",
    "password_changed",
];

/// Kinds whose email cannot be turned off (and that go only by email).
pub const SECURITY_KINDS: &[&str] = &["email_verification", "password_reset", "password_changed"];

/// A kind's channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Channels {
    pub email: bool,
    pub sms: bool,
    pub push: bool,
    pub in_app: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// `HH:MM`, local time.
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesBody {
    pub channels: std::collections::BTreeMap<String, Channels>,
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
    /// IANA time zone the quiet hours are in (default `UTC`).
    #[serde(default)]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PhoneStatus {
    pub phone: String,
    pub verified: bool,
}

/// A user's own notification settings, for the account pages: the API's
/// preferences, phone number and its verification, in process or over
/// those public routes as that user.
#[async_trait]
pub trait NotificationPreferences: Send + Sync {
    /// Every kind's channels (the defaults where the user chose nothing) and the quiet hours.
    async fn preferences(&self, user: &AuthUser) -> Result<PreferencesBody, Problem>;
    /// 422 for a security email turned off, an unknown kind or bad hours.
    async fn set_preferences(&self, user: &AuthUser, prefs: &PreferencesBody) -> Result<PreferencesBody, Problem>;
    /// The number SMS go to, if any.
    async fn phone(&self, user: &AuthUser) -> Result<Option<PhoneStatus>, Problem>;
    /// Sends a 6-digit code to the number (E.164); it takes SMS once verified.
    async fn set_phone(&self, user: &AuthUser, phone: &str) -> Result<PhoneStatus, Problem>;
    async fn verify_phone(&self, user: &AuthUser, code: &str) -> Result<PhoneStatus, Problem>;
}
