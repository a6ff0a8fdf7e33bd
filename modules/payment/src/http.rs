//! The payment module's public routes (transactions, payouts, the simulated
//! provider's 3-D Secure page) and the internal routes that serve [`Payments`]
//! remotely.

use std::sync::Arc;

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::http::{InternalCaller, Page, PageQuery, PublicUrl};
use hometrip_kernel::money::Money;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{Id, Problem};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::api::{ChargeRequest, Payments, Payout, RefundRequest, TransactionView};
use crate::gateway::SimulatedGateway;
use crate::service::{PaymentService, PayoutAccount, WebhookReceipt};

#[utoipa::path(get, path = "/api/v1/payments/transactions", tag = "payments", params(PageQuery),
    responses((status = 200, body = Page<TransactionView>), (status = 401, body = Problem)), security(("bearer" = [])))]
#[get("/payments/transactions")]
async fn transactions(
    svc: web::Data<PaymentService>,
    user: AuthUser,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, Problem> {
    let (items, next) = svc.transactions(user.id, page.cursor_id()?, page.limit()?).await?;
    Ok(HttpResponse::Ok().json(Page { items, next_cursor: next.map(|id| id.to_string()) }))
}

#[utoipa::path(get, path = "/api/v1/payouts", tag = "payments", params(PageQuery),
    responses((status = 200, body = Page<Payout>), (status = 401, body = Problem)), security(("bearer" = [])))]
#[get("/payouts")]
async fn payouts(
    svc: web::Data<PaymentService>,
    user: AuthUser,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, Problem> {
    let (items, next) = svc.payouts(user.id, page.cursor_id()?, page.limit()?).await?;
    Ok(HttpResponse::Ok().json(Page { items, next_cursor: next.map(|id| id.to_string()) }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Authenticated {
    pub status: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuthenticateQuery {
    /// A path of this site to send the browser back to (303), as a bank's
    /// 3-D Secure page returns to the merchant's `return_url`.
    pub return_url: Option<String>,
}

/// Whether `url` is a path of this site: one `/`, then no `/` or `\`
/// (`//host` and `/\host` lead elsewhere), printable ASCII only.
fn own_path(url: &str) -> bool {
    let rest = url.strip_prefix('/');
    rest.is_some_and(|r| !r.starts_with(['/', '\\'])) && url.bytes().all(|b| b.is_ascii_graphic())
}

/// The simulated provider's 3-D Secure step: what the bank's page would do.
#[utoipa::path(post, path = "/api/v1/payments/simulated/{intent}/authenticate", tag = "payments",
    params(("intent" = String, Path), AuthenticateQuery),
    responses((status = 200, body = Authenticated), (status = 303, description = "Back to `return_url`"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "Not waiting for 3-D Secure"),
        (status = 422, body = Problem)))]
#[post("/payments/simulated/{intent}/authenticate")]
async fn simulated_authenticate(
    sim: Option<web::Data<SimulatedGateway>>,
    intent: web::Path<String>,
    q: web::Query<AuthenticateQuery>,
) -> Result<HttpResponse, Problem> {
    let Some(sim) = sim else { return Err(Problem::not_found("payment intent")) };
    if q.return_url.as_deref().is_some_and(|u| !own_path(u)) {
        return Err(Problem::field("return_url", "must be a path of this site"));
    }
    let intent = sim.authenticate(&intent).await.map_err(|e| match e {
        crate::gateway::GatewayError::Invalid(m) => Problem::new(hometrip_kernel::ErrorCode::Conflict, m),
        other => Problem::internal(other),
    })?;
    let Some(intent) = intent else { return Err(Problem::not_found("payment intent")) };
    Ok(match &q.return_url {
        Some(back) => {
            HttpResponse::SeeOther().insert_header((actix_web::http::header::LOCATION, back.clone())).finish()
        }
        None => HttpResponse::Ok().json(Authenticated { status: intent.status.as_str().to_owned() }),
    })
}

/// Stripe's webhook endpoint: 400 when the `Stripe-Signature` check fails; a
/// repeated event id is acknowledged and ignored.
#[utoipa::path(post, path = "/api/v1/payments/webhooks/stripe", tag = "payments",
    request_body(content = String, content_type = "application/json", description = "A Stripe event, as signed by Stripe"),
    responses((status = 200, body = WebhookReceipt), (status = 400, body = Problem)))]
#[post("/payments/webhooks/stripe")]
async fn stripe_webhook(
    svc: web::Data<PaymentService>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let signature = req.headers().get("stripe-signature").and_then(|v| v.to_str().ok());
    Ok(HttpResponse::Ok().json(svc.stripe_webhook(&body, signature).await?))
}

/// Opens the host's payout account (Stripe Connect Express) and returns the
/// onboarding link while details are missing.
#[utoipa::path(post, path = "/api/v1/payouts/account", tag = "payments",
    responses((status = 200, body = PayoutAccount), (status = 502, body = Problem)), security(("bearer" = [])))]
#[post("/payouts/account")]
async fn open_payout_account(
    svc: web::Data<PaymentService>,
    user: AuthUser,
    public_url: web::Data<PublicUrl>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.payout_account(user.id, None, &public_url.0).await?))
}

#[utoipa::path(get, path = "/api/v1/payouts/account", tag = "payments",
    responses((status = 200, body = PayoutAccount), (status = 404, body = Problem)), security(("bearer" = [])))]
#[get("/payouts/account")]
async fn payout_account(svc: web::Data<PaymentService>, user: AuthUser) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.payout_account_status(user.id).await?))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    // `/payouts/account` before any `/payouts/{id}`.
    cfg.service(transactions)
        .service(open_payout_account)
        .service(payout_account)
        .service(payouts)
        .service(simulated_authenticate)
        .service(stripe_webhook);
}

// ---- Internal routes: the Payments trait over HTTP -------------------------------

#[derive(Debug, Serialize, Deserialize)]
pub struct PayoutSchedule {
    pub host_id: Id,
    pub release_at: Instant,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Penalty {
    pub host_id: Id,
    pub amount: Money,
}

async fn internal_charge(
    _: InternalCaller,
    svc: web::Data<dyn Payments>,
    body: web::Json<ChargeRequest>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.charge(body.into_inner()).await?))
}

async fn internal_capture(
    _: InternalCaller,
    svc: web::Data<dyn Payments>,
    id: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.capture(*id).await?))
}

async fn internal_cancel(
    _: InternalCaller,
    svc: web::Data<dyn Payments>,
    id: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.cancel_authorization(*id).await?))
}

async fn internal_refund(
    _: InternalCaller,
    svc: web::Data<dyn Payments>,
    body: web::Json<RefundRequest>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.refund(body.into_inner()).await?))
}

async fn internal_payout(
    _: InternalCaller,
    svc: web::Data<dyn Payments>,
    id: web::Path<Id>,
    body: web::Json<PayoutSchedule>,
) -> Result<HttpResponse, Problem> {
    svc.schedule_payout(*id, body.host_id, body.release_at).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn internal_penalty(
    _: InternalCaller,
    svc: web::Data<dyn Payments>,
    id: web::Path<Id>,
    body: web::Json<Penalty>,
) -> Result<HttpResponse, Problem> {
    svc.record_host_penalty(*id, body.host_id, body.amount.clone()).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn internal_payment(
    _: InternalCaller,
    svc: web::Data<dyn Payments>,
    id: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.payment_for(*id).await?))
}

/// The ledger's sum per currency: every one is zero when it balances.
async fn internal_trial_balance(_: InternalCaller, svc: web::Data<PaymentService>) -> Result<HttpResponse, Problem> {
    let sums: std::collections::BTreeMap<String, i64> = svc.trial_balance().await?.into_iter().collect();
    Ok(HttpResponse::Ok().json(sums))
}

pub fn internal_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/internal/payment")
            .route("/trial-balance", web::get().to(internal_trial_balance))
            .route("/charges", web::post().to(internal_charge))
            .route("/refunds", web::post().to(internal_refund))
            .route("/bookings/{id}/capture", web::post().to(internal_capture))
            .route("/bookings/{id}/cancel", web::post().to(internal_cancel))
            .route("/bookings/{id}/payout", web::post().to(internal_payout))
            .route("/bookings/{id}/penalty", web::post().to(internal_penalty))
            .route("/bookings/{id}/payment", web::get().to(internal_payment)),
    );
}

pub fn data(service: &Arc<PaymentService>) -> web::Data<PaymentService> {
    web::Data::from(Arc::clone(service))
}

#[derive(OpenApi)]
#[openapi(
    paths(transactions, payouts, simulated_authenticate, stripe_webhook, open_payout_account, payout_account),
    components(schemas(
        TransactionView,
        Payout,
        Authenticated,
        PayoutAccount,
        WebhookReceipt,
        crate::api::Payment,
        crate::api::Breakdown
    ))
)]
pub struct PaymentApi;

#[cfg(test)]
mod tests {
    use super::own_path;

    #[test]
    fn a_return_url_must_stay_on_this_site() {
        assert!(own_path("/trips/0190"));
        assert!(own_path("/trips/0190?paid=1"));
        for elsewhere in ["https://evil.example/", "//evil.example", "/\\evil.example", "trips", "", "/\t/evil.example"]
        {
            assert!(!own_path(elsewhere), "{elsewhere:?}");
        }
    }
}
