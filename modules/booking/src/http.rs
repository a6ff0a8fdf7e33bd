//! The booking module's public routes (`/api/v1/bookings/...`) and the internal
//! routes that serve [`Bookings`] remotely.

use std::sync::Arc;

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::http::{InternalCaller, Page, PageQuery};
use hometrip_kernel::{Id, Problem};
use hometrip_listing::api::Rate;
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use crate::api::{
    Booking, BookingQuote, BookingStatus, Bookings, Cancellation, CreateBooking, Party, PaymentOutcome, RefundStep,
};
use crate::refunds::{AdminRefund, Refunded};
use crate::service::{Actor, BookingService, ReconcileReport};

fn actor(user: &AuthUser) -> Actor {
    Actor { id: user.id, admin: user.is_admin() }
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, Problem> {
    match req.headers().get("idempotency-key") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim().to_owned()))
            .map_err(|_| Problem::new(hometrip_kernel::ErrorCode::BadRequest, "Idempotency-Key must be visible ASCII")),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct QuoteQuery {
    pub listing_id: Id,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub guests: Option<u32>,
    /// `standard` (default) or `non_refundable`.
    pub rate: Option<Rate>,
}

#[utoipa::path(get, path = "/api/v1/bookings/quote", operation_id = "quote_booking", tag = "bookings", params(QuoteQuery),
    responses((status = 200, body = BookingQuote), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[get("/bookings/quote")]
async fn quote(svc: web::Data<BookingService>, q: web::Query<QuoteQuery>) -> Result<HttpResponse, Problem> {
    let quote =
        svc.quote(q.listing_id, q.check_in, q.check_out, q.guests.unwrap_or(1), q.rate.unwrap_or_default()).await?;
    Ok(HttpResponse::Ok().json(quote))
}

#[utoipa::path(post, path = "/api/v1/bookings", operation_id = "create_booking", tag = "bookings", request_body = CreateBooking,
    params(("Idempotency-Key" = Option<String>, Header, description = "The same key and body return the same booking")),
    responses((status = 201, body = Booking), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[post("/bookings")]
async fn create(
    svc: web::Data<BookingService>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<CreateBooking>,
) -> Result<HttpResponse, Problem> {
    let key = idempotency_key(&req)?;
    let (booking, replayed) = svc.create(user.id, &body, key.as_deref()).await?;
    let mut res = HttpResponse::Created();
    res.insert_header((actix_web::http::header::LOCATION, format!("/api/v1/bookings/{}", booking.id)));
    if replayed {
        res.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(res.json(booking))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// `guest` (default): my trips; `host`: bookings of my listings.
    pub role: Option<String>,
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/bookings", operation_id = "list_bookings", tag = "bookings", params(ListQuery),
    responses((status = 200, body = Page<Booking>), (status = 422, body = Problem)), security(("bearer" = [])))]
#[get("/bookings")]
async fn list(
    svc: web::Data<BookingService>,
    user: AuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    let party = match q.role.as_deref() {
        None | Some("guest") => Party::Guest,
        Some("host") => Party::Host,
        Some(_) => return Err(Problem::field("role", "must be guest or host")),
    };
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(BookingStatus::parse(s).ok_or_else(|| Problem::field("status", "unknown booking status"))?),
    };
    let page = PageQuery { limit: q.limit, cursor: q.cursor.clone() };
    let (items, next) = svc.list(user.id, party, status, page.cursor_id()?, page.limit()?).await?;
    Ok(HttpResponse::Ok().json(Page { items, next_cursor: next.map(|id| id.to_string()) }))
}

#[utoipa::path(get, path = "/api/v1/bookings/{id}", tag = "bookings", params(("id" = Id, Path)),
    responses((status = 200, body = Booking), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
#[get("/bookings/{id}")]
async fn get_one(svc: web::Data<BookingService>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.get(*id, actor(&user)).await?))
}

#[utoipa::path(post, path = "/api/v1/bookings/{id}/accept", tag = "bookings", params(("id" = Id, Path)),
    responses((status = 200, body = Booking), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
#[post("/bookings/{id}/accept")]
async fn accept(svc: web::Data<BookingService>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.accept(actor(&user), *id).await?))
}

#[utoipa::path(post, path = "/api/v1/bookings/{id}/decline", tag = "bookings", params(("id" = Id, Path)),
    responses((status = 200, body = Booking), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
#[post("/bookings/{id}/decline")]
async fn decline(svc: web::Data<BookingService>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.decline(actor(&user), *id).await?))
}

#[utoipa::path(post, path = "/api/v1/bookings/{id}/cancel", tag = "bookings", params(("id" = Id, Path)),
    responses((status = 200, body = Cancellation), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
#[post("/bookings/{id}/cancel")]
async fn cancel(svc: web::Data<BookingService>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.cancel(actor(&user), *id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayBody {
    /// A payment method id; with the simulated provider, Stripe's test cards
    /// (`pm_card_visa`, `pm_card_chargeDeclined`, `pm_card_authenticationRequired`).
    pub payment_method: String,
}

#[utoipa::path(post, path = "/api/v1/bookings/{id}/payment", tag = "payments", params(("id" = Id, Path)),
    request_body = PayBody, responses((status = 200, body = PaymentOutcome), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[post("/bookings/{id}/payment")]
async fn pay(
    svc: web::Data<BookingService>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<Id>,
    body: web::Json<PayBody>,
) -> Result<HttpResponse, Problem> {
    let key = idempotency_key(&req)?;
    Ok(HttpResponse::Ok().json(svc.pay(user.id, *id, &body.payment_method, key.as_deref()).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/bookings/reconcile", tag = "admin",
    responses((status = 200, body = ReconcileReport), (status = 403, body = Problem)), security(("bearer" = [])))]
#[post("/admin/bookings/reconcile")]
async fn reconcile(svc: web::Data<BookingService>, user: AuthUser) -> Result<HttpResponse, Problem> {
    user.require_admin()?;
    Ok(HttpResponse::Ok().json(svc.reconcile().await?))
}

#[utoipa::path(post, path = "/api/v1/admin/bookings/{id}/refund", tag = "admin", params(("id" = Id, Path)),
    request_body = AdminRefund,
    responses((status = 200, body = Refunded), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[post("/admin/bookings/{id}/refund")]
async fn admin_refund(
    svc: web::Data<BookingService>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<Id>,
    body: web::Json<AdminRefund>,
) -> Result<HttpResponse, Problem> {
    let key = idempotency_key(&req)?;
    Ok(HttpResponse::Ok().json(svc.admin_refund(user.is_admin(), *id, body.into_inner(), key.as_deref()).await?))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    // `/bookings/quote` before `/bookings/{id}` so "quote" is never parsed as an id.
    cfg.service(quote)
        .service(create)
        .service(list)
        .service(get_one)
        .service(accept)
        .service(decline)
        .service(cancel)
        .service(pay)
        .service(reconcile)
        .service(admin_refund);
}

async fn internal_booking(
    _: InternalCaller,
    svc: web::Data<dyn Bookings>,
    id: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.booking(*id).await?))
}

/// Nights a listing's bookings hold, as `[night, booking]` pairs (checks of the guarantee).
async fn internal_held_nights(
    _: InternalCaller,
    svc: web::Data<BookingService>,
    id: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.held_nights(*id).await?))
}

/// Runs reconciliation now (operations, crash tests).
async fn internal_reconcile(_: InternalCaller, svc: web::Data<BookingService>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.reconcile().await?))
}

pub fn internal_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/internal/booking")
            .route("/bookings/{id}", web::get().to(internal_booking))
            .route("/reconcile", web::post().to(internal_reconcile))
            .route("/listings/{id}/held-nights", web::get().to(internal_held_nights)),
    );
}

pub fn data(service: &Arc<BookingService>) -> web::Data<BookingService> {
    web::Data::from(Arc::clone(service))
}

#[derive(OpenApi)]
#[openapi(
    paths(quote, create, list, get_one, accept, decline, cancel, pay, reconcile, admin_refund),
    components(schemas(
        AdminRefund,
        Refunded,
        Booking,
        BookingQuote,
        RefundStep,
        BookingStatus,
        CreateBooking,
        Cancellation,
        PaymentOutcome,
        PayBody,
        ReconcileReport
    ))
)]
pub struct BookingApi;
