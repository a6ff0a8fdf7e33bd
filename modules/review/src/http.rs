//! The review module's public routes (reviews of bookings, listings and
//! guests; responses, flags, appeals; the moderation queue) and the internal
//! route serving [`Reviews`] remotely.

use std::sync::Arc;

use actix_web::{get, post, web, HttpResponse};
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::http::{InternalCaller, Page, PageQuery};
use hometrip_kernel::{ErrorCode, Id, Problem};
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use crate::api::{Author, ListingReviews, PendingReview, Response, Review, ReviewSummary, Reviews, SubmittedReview};
use crate::moderation::{Appeal, AppealDecision, Decision, ModeratedReview};
use crate::service::{NewReview, ReviewService};

#[utoipa::path(post, path = "/api/v1/bookings/{id}/reviews", tag = "reviews", params(("id" = Id, Path)),
    request_body = NewReview,
    responses((status = 201, body = SubmittedReview), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[post("/bookings/{id}/reviews")]
async fn submit(
    svc: web::Data<ReviewService>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Json<NewReview>,
) -> Result<HttpResponse, Problem> {
    let review = svc.submit(user.id, *id, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(SubmittedReview { id: review.id, status: review.status }))
}

#[utoipa::path(get, path = "/api/v1/bookings/{id}/reviews", tag = "reviews", params(("id" = Id, Path)),
    responses((status = 200, body = Page<Review>), (status = 403, body = Problem)), security(("bearer" = [])))]
#[get("/bookings/{id}/reviews")]
async fn of_booking(svc: web::Data<ReviewService>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    let items = svc.of_booking(user.id, user.is_admin(), *id).await?;
    Ok(HttpResponse::Ok().json(Page { items, next_cursor: None }))
}

/// Completed stays the caller may still review (as their guest or host),
/// the window closing soonest first.
#[utoipa::path(get, path = "/api/v1/reviews/pending", tag = "reviews",
    responses((status = 200, body = Page<PendingReview>)), security(("bearer" = [])))]
#[get("/reviews/pending")]
async fn pending(svc: web::Data<ReviewService>, user: AuthUser) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(Page { items: svc.to_write(user.id).await?, next_cursor: None }))
}

#[utoipa::path(get, path = "/api/v1/listings/{id}/reviews", tag = "reviews", params(("id" = Id, Path), PageQuery),
    responses((status = 200, body = ListingReviews)))]
#[get("/listings/{id}/reviews")]
async fn of_listing(
    svc: web::Data<ReviewService>,
    id: web::Path<Id>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, Problem> {
    let (items, summary, next_cursor) = svc.of_listing(*id, q.cursor.as_deref(), q.limit()?).await?;
    Ok(HttpResponse::Ok().json(ListingReviews { items, summary, next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/users/{id}/reviews", tag = "reviews", params(("id" = Id, Path), PageQuery),
    responses((status = 200, body = Page<Review>)))]
#[get("/users/{id}/reviews")]
async fn about_guest(
    svc: web::Data<ReviewService>,
    id: web::Path<Id>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, Problem> {
    let (items, next_cursor) = svc.about_guest(*id, q.cursor.as_deref(), q.limit()?).await?;
    Ok(HttpResponse::Ok().json(Page { items, next_cursor }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    pub comment: String,
}

#[utoipa::path(post, path = "/api/v1/reviews/{id}/response", tag = "reviews", params(("id" = Id, Path)),
    request_body = CommentBody,
    responses((status = 201, body = Review), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[post("/reviews/{id}/response")]
async fn respond(
    svc: web::Data<ReviewService>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Json<CommentBody>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Created().json(svc.respond(user.id, *id, &body.comment).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/reviews/{id}/flag", tag = "reviews", params(("id" = Id, Path)),
    request_body = ReasonBody, responses((status = 202), (status = 404, body = Problem)), security(("bearer" = [])))]
#[post("/reviews/{id}/flag")]
async fn flag(
    svc: web::Data<ReviewService>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Json<ReasonBody>,
) -> Result<HttpResponse, Problem> {
    svc.flag(user.id, *id, &body.reason).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"status": "flagged"})))
}

#[utoipa::path(post, path = "/api/v1/reviews/{id}/appeal", tag = "reviews", params(("id" = Id, Path)),
    request_body = ReasonBody,
    responses((status = 201, body = Appeal), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
#[post("/reviews/{id}/appeal")]
async fn appeal(
    svc: web::Data<ReviewService>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Json<ReasonBody>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Created().json(svc.appeal(user.id, *id, &body.reason).await?))
}

#[utoipa::path(get, path = "/api/v1/reviews/{id}/appeal", tag = "reviews", params(("id" = Id, Path)),
    responses((status = 200, body = Appeal), (status = 404, body = Problem)), security(("bearer" = [])))]
#[get("/reviews/{id}/appeal")]
async fn appeal_of(svc: web::Data<ReviewService>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.appeal_of(user.id, user.is_admin(), *id).await?))
}

// ---- Moderation ----------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct QueueQuery {
    /// `pending` (held and flagged; the default) or a status.
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/admin/reviews", tag = "admin", params(QueueQuery),
    responses((status = 200, body = Page<ModeratedReview>), (status = 403, body = Problem)), security(("bearer" = [])))]
#[get("/admin/reviews")]
async fn queue(
    svc: web::Data<ReviewService>,
    user: AuthUser,
    q: web::Query<QueueQuery>,
) -> Result<HttpResponse, Problem> {
    let page = PageQuery { limit: q.limit, cursor: q.cursor.clone() };
    let limit = page.limit()?;
    let items = svc.queue(user.is_admin(), q.status.as_deref().unwrap_or("pending"), page.cursor_id()?, limit).await?;
    let next_cursor = (items.len() as i64 == limit).then(|| items.last().map(|r| r.review.id.to_string())).flatten();
    Ok(HttpResponse::Ok().json(Page { items, next_cursor }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionalReason {
    pub reason: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/admin/reviews/{id}/approve", tag = "admin", params(("id" = Id, Path)),
    request_body(content = OptionalReason, description = "optional"),
    responses((status = 200, body = ModeratedReview), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
#[post("/admin/reviews/{id}/approve")]
async fn approve(
    svc: web::Data<ReviewService>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    // The body is optional: an approval needs no reason.
    let body: OptionalReason = if body.iter().all(u8::is_ascii_whitespace) {
        OptionalReason::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Problem::new(ErrorCode::MalformedJson, e.to_string()))?
    };
    Ok(HttpResponse::Ok().json(svc.approve(user.id, user.is_admin(), *id, body.reason.as_deref()).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/reviews/{id}/reject", tag = "admin", params(("id" = Id, Path)),
    request_body = ReasonBody,
    responses((status = 200, body = ModeratedReview), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[post("/admin/reviews/{id}/reject")]
async fn reject(
    svc: web::Data<ReviewService>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Json<ReasonBody>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.reject(user.id, user.is_admin(), *id, &body.reason).await?))
}

#[utoipa::path(get, path = "/api/v1/admin/reviews/appeals", tag = "admin", params(PageQuery),
    responses((status = 200, body = Page<Appeal>), (status = 403, body = Problem)), security(("bearer" = [])))]
#[get("/admin/reviews/appeals")]
async fn appeals(
    svc: web::Data<ReviewService>,
    user: AuthUser,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, Problem> {
    let limit = q.limit()?;
    let items = svc.open_appeals(user.is_admin(), q.cursor_id()?, limit).await?;
    let next_cursor = (items.len() as i64 == limit).then(|| items.last().map(|a| a.review_id.to_string())).flatten();
    Ok(HttpResponse::Ok().json(Page { items, next_cursor }))
}

#[utoipa::path(post, path = "/api/v1/admin/reviews/{id}/appeal", tag = "admin", params(("id" = Id, Path)),
    request_body = AppealDecision,
    responses((status = 200, body = Appeal), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
#[post("/admin/reviews/{id}/appeal")]
async fn decide_appeal(
    svc: web::Data<ReviewService>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Json<AppealDecision>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.decide_appeal(user.id, user.is_admin(), *id, body.into_inner()).await?))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(submit)
        .service(pending)
        .service(of_booking)
        .service(of_listing)
        .service(about_guest)
        .service(respond)
        .service(flag)
        .service(appeal)
        .service(appeal_of)
        .service(queue)
        .service(appeals)
        .service(approve)
        .service(reject)
        .service(decide_appeal);
}

async fn internal_summary(
    _: InternalCaller,
    svc: web::Data<dyn Reviews>,
    id: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.listing_summary(*id).await?))
}

/// Mounts `/internal/review`; needs `web::Data<dyn Reviews>`.
pub fn internal_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/internal/review").route("/listings/{id}/summary", web::get().to(internal_summary)));
}

pub fn data(service: &Arc<ReviewService>) -> web::Data<ReviewService> {
    web::Data::from(Arc::clone(service))
}

#[derive(OpenApi)]
#[openapi(
    paths(
        submit,
        pending,
        of_booking,
        of_listing,
        about_guest,
        respond,
        flag,
        appeal,
        appeal_of,
        queue,
        approve,
        reject,
        appeals,
        decide_appeal
    ),
    components(schemas(
        Review,
        PendingReview,
        Author,
        Response,
        ReviewSummary,
        NewReview,
        SubmittedReview,
        ListingReviews,
        CommentBody,
        ReasonBody,
        OptionalReason,
        ModeratedReview,
        Decision,
        Appeal,
        AppealDecision
    ))
)]
pub struct ReviewApi;
