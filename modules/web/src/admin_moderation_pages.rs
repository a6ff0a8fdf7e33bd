//! The console's listings (found by title or number, suspended and
//! reinstated through listing's `ListingModeration`) and the appeals of
//! removed reviews (decided through review's `Moderation` by an admin other
//! than the one who removed the review).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::{Id, Problem};
use hometrip_listing::api::{Listing, ListingStatus};
use hometrip_review::api::AppealDecision;
use serde::Deserialize;

use crate::admin_pages::{admin_form, Console, Said};
use crate::host_listing_pages::status_label;
use crate::pages::{failed, respond, Chrome, Context};
use crate::trip_pages::titles;
use crate::Web;

struct ListingLine {
    id: Id,
    title: String,
    city: String,
    status: &'static str,
    suspended: bool,
    /// Hidden with its host: reinstating the listing itself would do nothing.
    host_suspended: bool,
}

#[derive(Template)]
#[template(path = "admin_listings.html")]
struct ListingsPage {
    page: Chrome,
    q: String,
    suspended_only: bool,
    listings: Vec<ListingLine>,
    notice: Option<&'static str>,
    error: Option<&'static str>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListingQuery {
    q: String,
    status: String,
}

/// The listings `q` names: the one of that number, or those whose title holds it.
async fn found(app: &Web, admin: &AuthUser, q: &str, suspended_only: bool) -> Result<Vec<Listing>, Problem> {
    if let Ok(id) = q.trim().parse::<Id>() {
        return match app.listing_moderation.listing(admin, id).await {
            Ok(l) => Ok(vec![l]),
            Err(p) if p.status == 404 => Ok(Vec::new()),
            Err(p) => Err(p),
        };
    }
    app.listing_moderation.find(admin, q.trim(), suspended_only).await
}

async fn listings_page(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    admin: &AuthUser,
    q: &ListingQuery,
    said: Said,
) -> HttpResponse {
    let suspended_only = q.status == "suspended";
    let listings = match found(app, admin, &q.q, suspended_only).await {
        Ok(found) => found,
        Err(p) if p.status == 422 => Vec::new(),
        Err(p) => return failed(req, app, ctx, &p),
    };
    let listings = listings
        .iter()
        .map(|l| ListingLine {
            id: l.id,
            title: l.title.clone(),
            city: l.address.city.clone(),
            status: status_label(l.status, ctx.locale),
            suspended: l.status == ListingStatus::Suspended,
            host_suspended: l.host_suspended,
        })
        .collect();
    let (notice, error) = (said.notice(), said.error());
    let page = ListingsPage {
        page: ctx.chrome(req, app, "page_view"),
        q: q.q.clone(),
        suspended_only,
        listings,
        notice,
        error,
    };
    respond(said.status(), page.render(), ctx)
}

/// `GET /admin/listings?q=&status=suspended`: listings in any status.
pub async fn listings(req: HttpRequest, app: web::Data<Web>, Console { ctx, admin }: Console) -> HttpResponse {
    let q: ListingQuery = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let ad = ctx.locale.messages().ad;
    let said = Said::done(&req, &[("suspended", ad.listing_suspended), ("reinstated", ad.listing_reinstated)]);
    listings_page(&req, &app, &ctx, &admin, &q, said).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ReasonForm {
    /// Kept in the audit log (the edge records the form's `reason`).
    reason: String,
    /// The search to come back to.
    q: String,
}

/// `POST /admin/listings/{id}/{suspend|reinstate}`, with a reason for the audit log.
pub async fn listing_action(
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
    let back = ListingQuery { q: form.q.clone(), ..ListingQuery::default() };
    if form.reason.trim().is_empty() {
        let said = Said::Refused(StatusCode::UNPROCESSABLE_ENTITY, ad.reason_needed);
        return listings_page(&req, &app, &ctx, &admin, &back, said).await;
    }
    let done = match action.as_str() {
        "suspend" => app.listing_moderation.suspend(&admin, id).await.map(|_| "suspended"),
        "reinstate" => app.listing_moderation.reinstate(&admin, id).await.map(|_| "reinstated"),
        _ => Err(Problem::not_found("action")),
    };
    match done {
        Ok(done) => {
            let to = serde_urlencoded::to_string([("q", form.q.as_str()), ("done", done)]).unwrap_or_default();
            crate::account_pages::redirect(&ctx, &format!("/admin/listings?{to}"), Vec::new())
        }
        Err(p) if p.status == 409 => {
            listings_page(&req, &app, &ctx, &admin, &back, Said::Refused(StatusCode::CONFLICT, ad.not_suspended)).await
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

struct AppealLine {
    review_id: Id,
    listing_id: Id,
    listing: String,
    author: String,
    rating: i32,
    status: String,
    paragraphs: Vec<String>,
    reason: Vec<String>,
    removed_by_me: bool,
}

#[derive(Template)]
#[template(path = "admin_appeals.html")]
struct AppealsPage {
    page: Chrome,
    appeals: Vec<AppealLine>,
    notice: Option<&'static str>,
    error: Option<&'static str>,
}

fn paragraphs(text: &str) -> Vec<String> {
    text.split("\n\n").map(str::to_owned).collect()
}

async fn appeals_page(req: &HttpRequest, app: &Web, ctx: &Context, admin: &AuthUser, said: Said) -> HttpResponse {
    let appeals = match app.moderation.appeals(admin).await {
        Ok(a) => a,
        Err(p) => return failed(req, app, ctx, &p),
    };
    let ids: Vec<Id> = appeals.iter().map(|a| a.review.listing_id).collect();
    let titles = titles(app, &ids).await;
    let appeals = appeals
        .into_iter()
        .map(|a| AppealLine {
            review_id: a.review_id,
            listing_id: a.review.listing_id,
            listing: titles.get(&a.review.listing_id).cloned().unwrap_or_default(),
            author: a.review.author.display_name.clone(),
            rating: a.review.rating,
            status: a.review.status.clone(),
            paragraphs: paragraphs(&a.review.comment),
            reason: paragraphs(&a.reason),
            removed_by_me: a.removed_by == admin.id,
        })
        .collect();
    let (notice, error) = (said.notice(), said.error());
    let page = AppealsPage { page: ctx.chrome(req, app, "page_view"), appeals, notice, error };
    respond(said.status(), page.render(), ctx)
}

/// `GET /admin/appeals`: the appeals waiting for a decision.
pub async fn appeals(req: HttpRequest, app: web::Data<Web>, Console { ctx, admin }: Console) -> HttpResponse {
    let ad = ctx.locale.messages().ad;
    let said = Said::done(&req, &[("reinstated", ad.appeal_reinstated), ("upheld", ad.appeal_upheld)]);
    appeals_page(&req, &app, &ctx, &admin, said).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AppealForm {
    decision: String,
    reason: String,
}

/// `POST /admin/appeals/{review}`: reinstate the review, or uphold its removal.
pub async fn decide_appeal(
    req: HttpRequest,
    app: web::Data<Web>,
    raw_id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let (admin, form, id) = match admin_form::<AppealForm>(&req, &app, &ctx, &raw_id, &body) {
        Ok(checked) => checked,
        Err(refused) => return *refused,
    };
    let ad = ctx.locale.messages().ad;
    if form.reason.trim().is_empty() {
        let said = Said::Refused(StatusCode::UNPROCESSABLE_ENTITY, ad.reason_needed);
        return appeals_page(&req, &app, &ctx, &admin, said).await;
    }
    let decision = AppealDecision { decision: form.decision.clone(), reason: form.reason.trim().to_owned() };
    match app.moderation.decide_appeal(&admin, id, &decision).await {
        Ok(appeal) => {
            crate::account_pages::redirect(&ctx, &format!("/admin/appeals?done={}", appeal.status), Vec::new())
        }
        Err(p) if p.status == 409 => {
            appeals_page(&req, &app, &ctx, &admin, Said::Refused(StatusCode::CONFLICT, ad.appeal_decided)).await
        }
        Err(p) if p.status == 403 => {
            appeals_page(&req, &app, &ctx, &admin, Said::Refused(StatusCode::FORBIDDEN, ad.not_yours_to_decide)).await
        }
        Err(p) if p.status == 422 => {
            let said = Said::Refused(StatusCode::UNPROCESSABLE_ENTITY, ad.reason_needed);
            appeals_page(&req, &app, &ctx, &admin, said).await
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}
