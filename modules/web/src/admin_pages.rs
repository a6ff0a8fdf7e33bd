//! The admin console: the operators' overview, the review moderation
//! queue, a booking found by its number with a partial or full refund, and
//! the audit log with its verification. Each calls the modules' admin
//! traits as the signed-in admin (the same rules as `/api/v1/admin/...`);
//! anyone else finds no such page (404). The edge records every console
//! request in the audit log as the admin the page found (`extensions`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{Duration, NaiveDate};
use hometrip_analytics::api::Overview;
use hometrip_booking::api::{AdminRefund, Booking};
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::money::{Money, CURRENCIES};
use hometrip_kernel::{Id, Problem};
use serde::Deserialize;

use crate::booking_views::{self, BookingLine};
use crate::format;
use crate::listing_form::parse_amount;
use crate::pages::{failed, respond, Chrome, Context};
use crate::trip_pages::{posted, titles, user_or_sign_in};
use crate::Web;

/// The signed-in admin, left in the request for the audit record; others
/// are sent to sign in, or find nothing here.
fn admin_or_not_found(req: &HttpRequest, app: &Web, ctx: &Context) -> Result<AuthUser, Box<HttpResponse>> {
    let user = user_or_sign_in(ctx, req.path())?;
    if !user.is_admin() {
        return Err(Box::new(failed(req, app, ctx, &Problem::not_found("page"))));
    }
    req.extensions_mut().insert(user.clone());
    Ok(user.clone())
}

/// What a console page starts with: the request's context and its admin.
/// Anyone else gets, instead of the handler, the sign-in redirect or a 404
/// page; the admin is left in the request for the audit record.
pub(crate) struct Console {
    pub ctx: Context,
    pub admin: AuthUser,
}

impl actix_web::FromRequest for Console {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let app = req
                .app_data::<web::Data<Web>>()
                .cloned()
                .ok_or_else(|| actix_web::error::ErrorInternalServerError("the web app is not mounted"))?;
            let ctx = Context::of(&req, &app).await;
            match admin_or_not_found(&req, &app, &ctx) {
                Ok(admin) => Ok(Console { ctx, admin }),
                Err(page) => Err(actix_web::error::InternalError::from_response("not the console's", *page).into()),
            }
        })
    }
}

/// What a console page says above its content, and its status.
pub(crate) enum Said {
    Nothing,
    Notice(&'static str),
    Refused(StatusCode, &'static str),
}

impl Said {
    /// The notice of the `done=<key>` a form's redirect left in the query.
    pub(crate) fn done(req: &HttpRequest, notices: &[(&str, &'static str)]) -> Said {
        let done: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
        let done = done.iter().find(|(k, _)| k == "done").map(|(_, v)| v.as_str()).unwrap_or_default();
        notices.iter().find(|(key, _)| *key == done).map_or(Said::Nothing, |(_, notice)| Said::Notice(notice))
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Said::Refused(status, _) => *status,
            _ => StatusCode::OK,
        }
    }

    pub(crate) fn notice(&self) -> Option<&'static str> {
        if let Said::Notice(n) = self {
            Some(n)
        } else {
            None
        }
    }

    pub(crate) fn error(&self) -> Option<&'static str> {
        if let Said::Refused(_, e) = self {
            Some(e)
        } else {
            None
        }
    }
}

/// What a console form about one thing starts with: a signed-in admin,
/// this browser's token, and the thing's id (a 404 page otherwise).
pub(crate) fn admin_form<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    raw_id: &str,
    body: &[u8],
) -> Result<(AuthUser, T, Id), Box<HttpResponse>> {
    let admin = admin_or_not_found(req, app, ctx)?;
    let form: T = posted(req, app, ctx, body)?;
    let id = raw_id.parse::<Id>().map_err(|_| Box::new(failed(req, app, ctx, &Problem::not_found("page"))))?;
    Ok((admin, form, id))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PeriodQuery {
    from: String,
    to: String,
}

struct FunnelStep {
    name: &'static str,
    count: i64,
    conversion: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_overview.html")]
struct OverviewPage {
    page: Chrome,
    from: String,
    to: String,
    error: Option<String>,
    figures: Option<Overview>,
    gmv: String,
    net_revenue: String,
    steps: Vec<FunnelStep>,
}

/// `GET /admin`: the period's figures (the last 30 days by default).
pub async fn overview(req: HttpRequest, app: web::Data<Web>, Console { ctx, admin }: Console) -> HttpResponse {
    let q: PeriodQuery = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let today = chrono::Utc::now().date_naive();
    let date = |s: &str, default: NaiveDate| match s.trim() {
        "" => Some(default),
        s => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(),
    };
    let mut page = OverviewPage {
        page: ctx.chrome(&req, &app, "page_view"),
        from: q.from.clone(),
        to: q.to.clone(),
        error: None,
        figures: None,
        gmv: String::new(),
        net_revenue: String::new(),
        steps: Vec::new(),
    };
    let (Some(from), Some(to)) = (date(&q.from, today - Duration::days(29)), date(&q.to, today)) else {
        page.error = Some(ctx.locale.messages().h.bad_period.to_owned());
        return respond(StatusCode::UNPROCESSABLE_ENTITY, page.render(), &ctx);
    };
    page.from = from.to_string();
    page.to = to.to_string();
    match app.operator_figures.overview(&admin, from, to).await {
        Ok(o) => {
            page.gmv = format::money(&o.gmv, ctx.locale);
            page.net_revenue = format::money(&o.net_revenue, ctx.locale);
            let f = &o.funnel;
            let conversion =
                |key: &str| o.conversion.get(key).copied().flatten().map(|c| format!("{:.1} %", c * 100.0));
            page.steps = vec![
                FunnelStep { name: "search", count: f.search, conversion: None },
                FunnelStep {
                    name: "listing_view",
                    count: f.listing_view,
                    conversion: conversion("search_to_listing_view"),
                },
                FunnelStep {
                    name: "booking_started",
                    count: f.booking_started,
                    conversion: conversion("listing_view_to_booking_started"),
                },
                FunnelStep {
                    name: "booking_confirmed",
                    count: f.booking_confirmed,
                    conversion: conversion("booking_started_to_confirmed"),
                },
                FunnelStep {
                    name: "booking_completed",
                    count: f.booking_completed,
                    conversion: conversion("confirmed_to_completed"),
                },
                FunnelStep { name: "reviewed", count: f.reviewed, conversion: conversion("completed_to_reviewed") },
            ];
            page.figures = Some(o);
            respond(StatusCode::OK, page.render(), &ctx)
        }
        Err(p) if p.status == 422 => {
            page.error = Some(ctx.locale.messages().h.bad_period.to_owned());
            respond(StatusCode::UNPROCESSABLE_ENTITY, page.render(), &ctx)
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

/// A review in the queue.
struct QueuedReview {
    id: Id,
    listing: String,
    listing_id: Id,
    author: String,
    rating: i32,
    status: String,
    paragraphs: Vec<String>,
    hold_reasons: Vec<String>,
    flags: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin_reviews.html")]
struct ReviewsPage {
    page: Chrome,
    queue: Vec<QueuedReview>,
    notice: Option<&'static str>,
    error: Option<&'static str>,
}

async fn reviews_page(req: &HttpRequest, app: &Web, ctx: &Context, admin: &AuthUser, said: Said) -> HttpResponse {
    let queue = match app.moderation.queue(admin).await {
        Ok(q) => q,
        Err(p) => return failed(req, app, ctx, &p),
    };
    let ids: Vec<Id> = queue.iter().map(|r| r.review.listing_id).collect();
    let titles = titles(app, &ids).await;
    let queue = queue
        .into_iter()
        .map(|m| QueuedReview {
            id: m.review.id,
            listing: titles.get(&m.review.listing_id).cloned().unwrap_or_default(),
            listing_id: m.review.listing_id,
            author: m.review.author.display_name.clone(),
            rating: m.review.rating,
            status: m.review.status.clone(),
            paragraphs: m.review.comment.split("\n\n").map(str::to_owned).collect(),
            hold_reasons: m.hold_reasons,
            flags: m.flags,
        })
        .collect();
    let page =
        ReviewsPage { page: ctx.chrome(req, app, "page_view"), queue, notice: said.notice(), error: said.error() };
    respond(said.status(), page.render(), ctx)
}

/// `GET /admin/reviews`: held and flagged reviews.
pub async fn reviews(req: HttpRequest, app: web::Data<Web>, Console { ctx, admin }: Console) -> HttpResponse {
    let ad = ctx.locale.messages().ad;
    let said = Said::done(&req, &[("approved", ad.approved), ("rejected", ad.rejected)]);
    reviews_page(&req, &app, &ctx, &admin, said).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ReasonForm {
    reason: String,
}

/// `POST /admin/reviews/{id}/{approve|reject}`.
pub async fn decide(
    req: HttpRequest,
    app: web::Data<Web>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let (raw_id, action) = path.into_inner();
    let (admin, form, id) = match admin_form::<ReasonForm>(&req, &app, &ctx, &raw_id, &body) {
        Ok(checked) => checked,
        Err(refused) => return *refused,
    };
    let ad = ctx.locale.messages().ad;
    let done = match action.as_str() {
        "approve" => app.moderation.approve(&admin, id).await.map(|_| "approved"),
        "reject" if form.reason.trim().is_empty() => {
            let said = Said::Refused(StatusCode::UNPROCESSABLE_ENTITY, ad.reason_needed);
            return reviews_page(&req, &app, &ctx, &admin, said).await;
        }
        "reject" => app.moderation.reject(&admin, id, form.reason.trim()).await.map(|_| "rejected"),
        _ => Err(Problem::not_found("action")),
    };
    match done {
        Ok(done) => crate::account_pages::redirect(&ctx, &format!("/admin/reviews?done={done}"), Vec::new()),
        Err(p) if p.status == 409 => {
            reviews_page(&req, &app, &ctx, &admin, Said::Refused(StatusCode::CONFLICT, ad.decided_already)).await
        }
        Err(p) if p.status == 422 => {
            let said = Said::Refused(StatusCode::UNPROCESSABLE_ENTITY, ad.reason_needed);
            reviews_page(&req, &app, &ctx, &admin, said).await
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

/// What a refund gave back, as the page shows it.
struct RefundResult {
    amount: String,
    refunded: String,
    refundable: String,
}

#[derive(Template)]
#[template(path = "admin_bookings.html")]
struct BookingsPage {
    page: Chrome,
    query: String,
    booking: Option<BookingLine>,
    guest: String,
    host: String,
    currency: String,
    key: String,
    amount: String,
    reason: String,
    result: Option<RefundResult>,
    error: Option<String>,
}

#[allow(clippy::too_many_arguments)] // one page's parts
async fn bookings_page(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    admin: &AuthUser,
    query: &str,
    status: StatusCode,
    result: Option<RefundResult>,
    error: Option<String>,
    form: RefundForm,
) -> HttpResponse {
    let mut page = BookingsPage {
        page: ctx.chrome(req, app, "page_view"),
        query: query.to_owned(),
        booking: None,
        guest: String::new(),
        host: String::new(),
        currency: String::new(),
        key: Id::new().to_string(),
        amount: form.amount,
        reason: form.reason,
        result,
        error,
    };
    let status = match query.trim() {
        "" => status,
        raw => match found_booking(app, admin, raw).await {
            Ok(Some(b)) => {
                let title = titles(app, &[b.listing_id]).await.remove(&b.listing_id).unwrap_or_default();
                let (guest, host) = futures_util::join!(app.users.profile(b.guest_id), app.users.profile(b.host_id));
                page.guest = guest.ok().flatten().map(|p| p.display_name).unwrap_or_else(|| b.guest_id.to_string());
                page.host = host.ok().flatten().map(|p| p.display_name).unwrap_or_else(|| b.host_id.to_string());
                page.currency = b.price.total.currency.clone();
                page.booking = Some(booking_views::line(&b, title, ctx.locale));
                status
            }
            Ok(None) => {
                page.error = Some(ctx.locale.messages().ad.no_booking.to_owned());
                StatusCode::NOT_FOUND
            }
            Err(p) => return failed(req, app, ctx, &p),
        },
    };
    respond(status, page.render(), ctx)
}

async fn found_booking(app: &Web, admin: &AuthUser, raw: &str) -> Result<Option<Booking>, Problem> {
    let Ok(id) = raw.trim().parse::<Id>() else { return Ok(None) };
    match app.reservations.get(admin, id).await {
        Ok(b) => Ok(Some(b)),
        Err(p) if p.status == 404 => Ok(None),
        Err(p) => Err(p),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FindQuery {
    id: String,
}

/// `GET /admin/bookings?id=`: a booking by its number, with the refund form.
pub async fn bookings(req: HttpRequest, app: web::Data<Web>, Console { ctx, admin }: Console) -> HttpResponse {
    let q: FindQuery = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    bookings_page(&req, &app, &ctx, &admin, &q.id, StatusCode::OK, None, None, RefundForm::default()).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RefundForm {
    amount: String,
    reason: String,
    key: String,
}

/// `POST /admin/bookings/{id}/refund`: part or all of what the guest paid,
/// with a reason; the form's key makes a double submit refund once.
pub async fn refund(
    req: HttpRequest,
    app: web::Data<Web>,
    id: web::Path<String>,
    body: web::Bytes,
    Console { ctx, admin }: Console,
) -> HttpResponse {
    let form: RefundForm = match posted(&req, &app, &ctx, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let booking = match found_booking(&app, &admin, &id).await {
        Ok(Some(b)) => b,
        Ok(None) => return failed(&req, &app, &ctx, &Problem::not_found("booking")),
        Err(p) => return failed(&req, &app, &ctx, &p),
    };
    let m = ctx.locale.messages();
    let currency = booking.price.total.currency.clone();
    let exponent = CURRENCIES.iter().find(|(c, _)| *c == currency).map_or(2, |(_, e)| *e);
    let refused = |message: String, form: RefundForm| {
        let (req, app, ctx, admin, id) = (&req, &app, &ctx, &admin, booking.id.to_string());
        async move {
            bookings_page(req, app, ctx, admin, &id, StatusCode::UNPROCESSABLE_ENTITY, None, Some(message), form).await
        }
    };
    let Some(amount) = parse_amount(&form.amount, exponent).filter(|a| *a > 0) else {
        return refused(m.h.not_an_amount.to_owned(), form).await;
    };
    if form.reason.trim().is_empty() {
        return refused(m.ad.reason_needed.to_owned(), form).await;
    }
    let key = if form.key.is_empty() { Id::new().to_string() } else { form.key.clone() };
    let request = AdminRefund { amount: Money::new(amount, &currency), reason: form.reason.trim().to_owned() };
    match app.booking_admin.refund(&admin, booking.id, &request, &key).await {
        Ok(done) => {
            let result = RefundResult {
                amount: format::money(&done.amount, ctx.locale),
                refunded: format::money(&done.refunded, ctx.locale),
                refundable: format::money(&done.refundable, ctx.locale),
            };
            let id = booking.id.to_string();
            bookings_page(&req, &app, &ctx, &admin, &id, StatusCode::OK, Some(result), None, RefundForm::default())
                .await
        }
        Err(p) if p.status == 422 || p.status == 409 => {
            let detail = p.errors.first().map_or(p.detail.clone(), |e| e.message.clone());
            refused(format!("{}: {detail}", m.ad.refund_refused), form).await
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

struct EntryLine {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    target: String,
    reason: String,
    status: i32,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    page: Chrome,
    entries: Vec<EntryLine>,
    older: Option<i64>,
    verdict: Option<(bool, i64, Option<i64>)>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AuditQuery {
    before: Option<i64>,
    verify: Option<String>,
}

/// `GET /admin/audit?before=&verify=1`: the newest entries, and the chain checked on demand.
pub async fn audit(req: HttpRequest, app: web::Data<Web>, Console { ctx, admin }: Console) -> HttpResponse {
    let q: AuditQuery = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    const PAGE: u32 = 50;
    let entries = match app.audit_log.entries(&admin, q.before, PAGE).await {
        Ok(e) => e,
        Err(p) => return failed(&req, &app, &ctx, &p),
    };
    let verdict = match q.verify.is_some() {
        true => match app.audit_log.verify(&admin).await {
            Ok(v) => Some((v.ok, v.entries, v.first_bad_seq)),
            Err(p) => return failed(&req, &app, &ctx, &p),
        },
        false => None,
    };
    let older = (entries.len() as u32 == PAGE).then(|| entries.last().map(|e| e.seq)).flatten();
    let page = AuditPage {
        page: ctx.chrome(&req, &app, "page_view"),
        entries: entries
            .into_iter()
            .map(|e| EntryLine {
                seq: e.seq,
                at: format::instant(e.at, "UTC", ctx.locale),
                actor: e.actor_id.to_string(),
                action: e.action,
                target: e.target,
                reason: e.reason,
                status: e.status,
            })
            .collect(),
        older,
        verdict,
    };
    respond(StatusCode::OK, page.render(), &ctx)
}
