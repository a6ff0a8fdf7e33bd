//! The review module's published language: the [`Reviews`] trait, review
//! types, the events it publishes (requests to review, publications, a
//! listing's new rating) and settings.

use std::collections::BTreeMap;

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{Id, Problem};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const MODULE: &str = "review";

/// The sub-ratings a guest gives a stay.
pub const GUEST_CATEGORIES: &[&str] = &["cleanliness", "accuracy", "check_in", "communication", "location", "value"];
/// The sub-ratings a host gives a guest.
pub const HOST_CATEGORIES: &[&str] = &["cleanliness", "house_rules", "communication"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Author {
    pub id: Id,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Response {
    pub comment: String,
    pub created_at: Instant,
}

/// A review as readers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Review {
    pub id: Id,
    pub booking_id: Id,
    pub listing_id: Id,
    pub author: Author,
    /// Who the review is about: the host (a guest's review) or the guest.
    pub subject_id: Id,
    /// `guest` (a review of the stay) or `host` (a review of the guest).
    pub author_role: String,
    pub rating: i32,
    pub ratings: BTreeMap<String, i32>,
    pub comment: String,
    pub response: Option<Response>,
    /// `hidden` (double-blind), `held` (waits for a moderator), `published`,
    /// `rejected` (held, then refused) or `removed` (published, then taken down).
    pub status: String,
    pub created_at: Instant,
    pub published_at: Option<Instant>,
}

/// Count and means of a listing's published guest reviews.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReviewSummary {
    pub count: i64,
    /// The mean overall rating; null below the threshold (3 reviews).
    pub average: Option<f64>,
    /// Mean per sub-rating; empty below the threshold.
    pub ratings: BTreeMap<String, f64>,
    /// The ranking score (a Bayesian average toward the market's mean).
    pub score: Option<f64>,
}

/// A review as written: guest `ratings` are the stay's six, host ones the guest's three.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReview {
    pub rating: i64,
    pub ratings: BTreeMap<String, i64>,
    pub comment: String,
}

/// A completed stay the caller may still review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PendingReview {
    pub booking_id: Id,
    pub listing_id: Id,
    /// `guest` (review the stay) or `host` (review the guest).
    pub role: String,
    /// The other party: the host for a guest, the guest for a host.
    pub subject_id: Id,
    pub checked_out_at: Instant,
    pub window_ends_at: Instant,
}

/// A listing's published guest reviews, newest first, with its summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListingReviews {
    pub items: Vec<Review>,
    pub summary: ReviewSummary,
    pub next_cursor: Option<String>,
}

/// A review just written: its id and what became of it (`hidden` until the
/// other side's is in or the window ends, `held` for a moderator).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubmittedReview {
    pub id: Id,
    pub status: String,
}

/// Reviews as a signed-in user writes and reads them (the web app), in
/// process or over the module's public routes as that user.
#[async_trait]
pub trait ReviewDesk: Send + Sync {
    /// Completed stays whose window is open and that the user has not reviewed.
    async fn to_write(&self, user: &AuthUser) -> Result<Vec<PendingReview>, Problem>;
    /// 409 when already reviewed, 422 outside the window or for a bad review.
    async fn submit(&self, user: &AuthUser, booking_id: Id, review: &NewReview) -> Result<SubmittedReview, Problem>;
    /// A listing's published guest reviews (anyone may read them).
    async fn of_listing(&self, listing_id: Id, limit: u32) -> Result<ListingReviews, Problem>;
    /// The host's one public answer to a published guest review.
    async fn respond(&self, user: &AuthUser, review_id: Id, comment: &str) -> Result<Review, Problem>;
}

/// A review as moderators see it: why it waits.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ModeratedReview {
    #[serde(flatten)]
    pub review: Review,
    /// What the spam check found: `contact_details`, `near_duplicate`, `spam_classifier`.
    pub hold_reasons: Vec<String>,
    /// Readers' reasons, when flagged.
    pub flags: Vec<String>,
    pub decision: Option<Decision>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    pub by: Id,
    pub reason: String,
    pub at: Instant,
}

/// An author's appeal of a rejected or removed review.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Appeal {
    pub review_id: Id,
    pub author_id: Id,
    pub reason: String,
    pub created_at: Instant,
    /// The admin who rejected or removed the review (who may not decide).
    pub removed_by: Id,
    /// `open`, `reinstated` or `upheld`.
    pub status: String,
    pub decision: Option<Decision>,
    /// The review contested, as it stands.
    pub review: Review,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppealDecision {
    /// `reinstate` (the review comes back) or `uphold` (it stays down).
    pub decision: String,
    pub reason: String,
}

/// The moderation queue as an admin works it in the console, in process or
/// over the module's admin routes as that admin (403 for anyone else).
#[async_trait]
pub trait Moderation: Send + Sync {
    /// Held and flagged reviews, oldest first.
    async fn queue(&self, admin: &AuthUser) -> Result<Vec<ModeratedReview>, Problem>;
    /// Publishes a held review (or clears a published one's flags).
    async fn approve(&self, admin: &AuthUser, id: Id) -> Result<ModeratedReview, Problem>;
    /// Refuses a held review, or takes a published one down, with a stated reason.
    async fn reject(&self, admin: &AuthUser, id: Id, reason: &str) -> Result<ModeratedReview, Problem>;
    /// Appeals not yet decided, the oldest review first (at most 100).
    async fn appeals(&self, admin: &AuthUser) -> Result<Vec<Appeal>, Problem>;
    /// Reinstates the review or upholds its removal; 403 for the admin who
    /// removed it, 409 once decided.
    async fn decide_appeal(&self, admin: &AuthUser, id: Id, decision: &AppealDecision) -> Result<Appeal, Problem>;
}

/// Reviews as other modules see them, in process or over HTTP.
#[async_trait]
pub trait Reviews: Send + Sync {
    async fn listing_summary(&self, listing_id: Id) -> Result<ReviewSummary, Problem>;
}

// ---- Events -------------------------------------------------------------------

/// A party of a completed stay has not reviewed yet (at check-out, and 3 days
/// before the window ends).
pub const REVIEW_REQUESTED: &str = "review.requested";
/// A review became public (double-blind lifted, or approved by a moderator).
pub const REVIEW_PUBLISHED: &str = "review.published";
/// A listing's rating moved: the listing shows it and search ranks by it
/// (defined by its consumer, the listing module).
pub use hometrip_listing::api::{ListingRatingChanged, LISTING_RATING_CHANGED};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReviewRequested {
    pub booking_id: Id,
    pub listing_id: Id,
    pub recipient_id: Id,
    /// `guest` or `host`: which review is asked for.
    pub role: String,
    pub window_ends_at: Instant,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReviewPublished {
    pub review: Review,
}

// ---- Settings -----------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewSettings {
    /// Days after check-out during which both parties may review.
    pub window_days: i64,
    /// Days after publication during which the host may respond, once.
    pub response_days: i64,
    /// Reviews a listing needs before its rating is shown.
    pub shown_from: i64,
    /// The weight of the market's mean in the Bayesian average, in reviews.
    pub prior_weight: i64,
    /// Reviews one author may write per hour.
    pub per_hour: u32,
    /// The classifier's spam probability above which a review is held.
    pub spam_threshold: f64,
    /// SimHash bits within which two texts are near-duplicates.
    pub near_duplicate_bits: u32,
    /// How often the market's mean is recomputed, in seconds.
    pub market_every_secs: u64,
}

impl Default for ReviewSettings {
    fn default() -> Self {
        ReviewSettings {
            window_days: 14,
            response_days: 30,
            shown_from: 3,
            prior_weight: 5,
            per_hour: 10,
            spam_threshold: 0.9,
            near_duplicate_bits: 3,
            market_every_secs: 3600,
        }
    }
}
