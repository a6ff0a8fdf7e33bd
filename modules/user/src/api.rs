//! The user module's published language: the [`Users`] trait, its types and settings.

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{Id, Problem};
use serde::{Deserialize, Serialize};

pub const MODULE: &str = "user";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationChannels {
    pub email: bool,
    pub sms: bool,
    pub push: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentityStatus {
    None,
    Pending,
    Verified,
    Rejected,
}

impl IdentityStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityStatus::None => "none",
            IdentityStatus::Pending => "pending",
            IdentityStatus::Verified => "verified",
            IdentityStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> IdentityStatus {
        match s {
            "pending" => IdentityStatus::Pending,
            "verified" => IdentityStatus::Verified,
            "rejected" => IdentityStatus::Rejected,
            _ => IdentityStatus::None,
        }
    }
}

/// A user's profile and preferences, as other modules see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserProfile {
    pub id: Id,
    pub email: String,
    pub display_name: String,
    pub bio: String,
    pub locale: String,
    pub currency: String,
    pub notification_channels: NotificationChannels,
    pub avatar_url: Option<String>,
    pub identity_status: IdentityStatus,
    pub created_at: Instant,
}

#[async_trait]
pub trait Users: Send + Sync {
    async fn profile(&self, id: Id) -> Result<Option<UserProfile>, Problem>;
    /// The profiles of `ids` that exist, in one read (at most 1,000 ids).
    async fn profiles(&self, ids: &[Id]) -> Result<Vec<UserProfile>, Problem>;
}

/// A partial update of one's profile (`PATCH /users/me`): absent fields stay.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_channels: Option<ChannelsPatch>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelsPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<bool>,
}

/// A signed-in user's own profile, for the account pages: the API's
/// `PATCH /users/me`, in process or over that route as the user.
#[async_trait]
pub trait Profiles: Send + Sync {
    /// The profile after the change; 422 names a bad field.
    async fn update_profile(&self, user: &AuthUser, patch: &ProfilePatch) -> Result<UserProfile, Problem>;
    /// A new avatar from an uploaded image (JPEG, PNG or WebP, checked by
    /// content); 413 above the size limit, 422 for anything else.
    async fn set_avatar(&self, user: &AuthUser, image: Vec<u8>) -> Result<UserProfile, Problem>;
}

pub const PROFILE_UPDATED: &str = "user.profile_updated";

/// A host's responsiveness, published by the message module (which owns the
/// messages it is computed from) for the public profile. Defined here, the
/// consumer's side, because the message module already depends on this api.
pub const HOST_RESPONSIVENESS: &str = "message.host_responsiveness";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostResponsiveness {
    pub host_id: Id,
    /// New conversations with the host in the last 30 days whose 24 hours
    /// have passed or that were answered.
    pub inquiries: u32,
    /// Of those, answered within 24 hours.
    pub responded: u32,
    /// Percent; none without inquiries.
    pub response_rate: Option<u8>,
    /// Median minutes to the host's first answer.
    pub response_minutes: Option<i64>,
}
pub const IDENTITY_REVIEWED: &str = "user.identity_reviewed";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdentityReviewed {
    pub user_id: Id,
    pub status: IdentityStatus,
}

/// A user as the admins' search lists them.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdminUser {
    pub id: Id,
    pub email: String,
    pub display_name: String,
    pub identity_status: IdentityStatus,
    pub created_at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentityDecision {
    Approve,
    Reject,
}

/// Users as an admin finds and vets them from the console, in process or
/// over the admin routes as that admin (403 for anyone else).
#[async_trait]
pub trait UserAdmin: Send + Sync {
    /// By name or email (empty: the newest), at most 50.
    async fn search(&self, admin: &AuthUser, q: &str) -> Result<Vec<AdminUser>, Problem>;
    /// Approves or rejects a pending identity document.
    async fn review_identity(
        &self,
        admin: &AuthUser,
        id: Id,
        decision: IdentityDecision,
        note: Option<&str>,
    ) -> Result<UserProfile, Problem>;
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    pub avatar_max_bytes: usize,
    pub document_max_bytes: usize,
}
