//! [`Reviews`] over HTTP, for processes that do not run the review module.

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::{Id, Problem};
use serde::Deserialize;

use crate::api::{
    Appeal, AppealDecision, ListingReviews, ModeratedReview, Moderation, NewReview, PendingReview, Review, ReviewDesk,
    ReviewSummary, Reviews, SubmittedReview,
};

pub struct ReviewsClient {
    remote: RemoteClient,
}

impl ReviewsClient {
    pub fn new(remote: RemoteClient) -> Self {
        ReviewsClient { remote }
    }
}

#[async_trait]
impl Reviews for ReviewsClient {
    async fn listing_summary(&self, listing_id: Id) -> Result<ReviewSummary, Problem> {
        self.remote.get(&format!("/internal/review/listings/{listing_id}/summary"), None).await
    }
}

#[derive(Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

/// The user's side over the public routes, as the signed-in user.
#[async_trait]
impl ReviewDesk for ReviewsClient {
    async fn to_write(&self, user: &AuthUser) -> Result<Vec<PendingReview>, Problem> {
        Ok(self.remote.get_as::<Items<PendingReview>>("/api/v1/reviews/pending", user).await?.items)
    }

    async fn submit(&self, user: &AuthUser, booking_id: Id, review: &NewReview) -> Result<SubmittedReview, Problem> {
        self.remote.post_as(&format!("/api/v1/bookings/{booking_id}/reviews"), review, user, None).await
    }

    async fn of_listing(&self, listing_id: Id, limit: u32) -> Result<ListingReviews, Problem> {
        self.remote.get(&format!("/api/v1/listings/{listing_id}/reviews?limit={}", limit.clamp(1, 100)), None).await
    }

    async fn respond(&self, user: &AuthUser, review_id: Id, comment: &str) -> Result<Review, Problem> {
        let body = serde_json::json!({ "comment": comment });
        self.remote.post_as(&format!("/api/v1/reviews/{review_id}/response"), &body, user, None).await
    }
}

/// The moderation queue over the admin routes, as the admin.
#[async_trait]
impl Moderation for ReviewsClient {
    async fn queue(&self, admin: &AuthUser) -> Result<Vec<ModeratedReview>, Problem> {
        let page: Items<ModeratedReview> =
            self.remote.get_as("/api/v1/admin/reviews?status=pending&limit=100", admin).await?;
        Ok(page.items)
    }

    async fn approve(&self, admin: &AuthUser, id: Id) -> Result<ModeratedReview, Problem> {
        self.remote.post_as(&format!("/api/v1/admin/reviews/{id}/approve"), &serde_json::json!({}), admin, None).await
    }

    async fn reject(&self, admin: &AuthUser, id: Id, reason: &str) -> Result<ModeratedReview, Problem> {
        let body = serde_json::json!({ "reason": reason });
        self.remote.post_as(&format!("/api/v1/admin/reviews/{id}/reject"), &body, admin, None).await
    }

    async fn appeals(&self, admin: &AuthUser) -> Result<Vec<Appeal>, Problem> {
        let page: Items<Appeal> = self.remote.get_as("/api/v1/admin/reviews/appeals?limit=100", admin).await?;
        Ok(page.items)
    }

    async fn decide_appeal(&self, admin: &AuthUser, id: Id, decision: &AppealDecision) -> Result<Appeal, Problem> {
        self.remote.post_as(&format!("/api/v1/admin/reviews/{id}/appeal"), decision, admin, None).await
    }
}
