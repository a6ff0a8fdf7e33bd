//! [`ReviewDesk`] and [`Moderation`] in process: the same service calls as
//! the public and admin routes, as the signed-in user.

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::{Id, Problem};

use crate::api::{
    Appeal, AppealDecision, ListingReviews, ModeratedReview, Moderation, NewReview, PendingReview, Review, ReviewDesk,
    SubmittedReview,
};
use crate::service::ReviewService;

#[async_trait]
impl ReviewDesk for ReviewService {
    async fn to_write(&self, user: &AuthUser) -> Result<Vec<PendingReview>, Problem> {
        ReviewService::to_write(self, user.id).await
    }

    async fn submit(&self, user: &AuthUser, booking_id: Id, review: &NewReview) -> Result<SubmittedReview, Problem> {
        let review = ReviewService::submit(self, user.id, booking_id, review.clone()).await?;
        Ok(SubmittedReview { id: review.id, status: review.status })
    }

    async fn of_listing(&self, listing_id: Id, limit: u32) -> Result<ListingReviews, Problem> {
        let limit = i64::from(limit.clamp(1, 100));
        let (items, summary, next_cursor) = ReviewService::of_listing(self, listing_id, None, limit).await?;
        Ok(ListingReviews { items, summary, next_cursor })
    }

    async fn respond(&self, user: &AuthUser, review_id: Id, comment: &str) -> Result<Review, Problem> {
        ReviewService::respond(self, user.id, review_id, comment).await
    }
}

/// The console's queue: what the admin routes do, as the admin.
#[async_trait]
impl Moderation for ReviewService {
    async fn queue(&self, admin: &AuthUser) -> Result<Vec<ModeratedReview>, Problem> {
        ReviewService::queue(self, admin.is_admin(), "pending", None, 100).await
    }

    async fn approve(&self, admin: &AuthUser, id: Id) -> Result<ModeratedReview, Problem> {
        ReviewService::approve(self, admin.id, admin.is_admin(), id, None).await
    }

    async fn reject(&self, admin: &AuthUser, id: Id, reason: &str) -> Result<ModeratedReview, Problem> {
        ReviewService::reject(self, admin.id, admin.is_admin(), id, reason).await
    }

    async fn appeals(&self, admin: &AuthUser) -> Result<Vec<Appeal>, Problem> {
        ReviewService::open_appeals(self, admin.is_admin(), None, 100).await
    }

    async fn decide_appeal(&self, admin: &AuthUser, id: Id, decision: &AppealDecision) -> Result<Appeal, Problem> {
        ReviewService::decide_appeal(self, admin.id, admin.is_admin(), id, decision.clone()).await
    }
}
