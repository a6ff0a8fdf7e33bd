//! Reviews in pages: the stays waiting for the user's review (as guest or
//! host), the form that writes one (the overall rating, the role's
//! sub-ratings, the comment), the listing page's published reviews and the
//! host's public response. Through the review module's `ReviewDesk`.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use hometrip_kernel::{FieldError, Id, Problem};
use hometrip_review::api::{ListingReviews, NewReview, PendingReview, GUEST_CATEGORIES, HOST_CATEGORIES};

use crate::account_pages::redirect;
use crate::format;
use crate::locale::Locale;
use crate::pages::{failed, respond, Chrome, Context};
use crate::trip_pages::{posted, titles, user_or_sign_in};
use crate::Web;

/// A stay waiting for the user's review.
struct PendingLine {
    booking_id: Id,
    title: String,
    as_guest: bool,
    checked_out: String,
    until: String,
}

#[derive(Template)]
#[template(path = "reviews_to_write.html")]
struct ToWritePage {
    page: Chrome,
    lines: Vec<PendingLine>,
    notice: Option<&'static str>,
}

async fn pending(app: &Web, ctx: &Context) -> Result<Vec<PendingReview>, Problem> {
    let user = &ctx.visitor.user.as_ref().ok_or_else(|| Problem::not_found("page"))?.user;
    app.review_desk.to_write(user).await
}

fn date_of(at: hometrip_kernel::time::Instant, locale: Locale) -> String {
    format::date(at.0.date_naive(), locale)
}

/// `GET /reviews`: the stays the user may still review.
pub async fn to_write(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    if let Err(to_sign_in) = user_or_sign_in(&ctx, "/reviews") {
        return *to_sign_in;
    }
    let found = match pending(&app, &ctx).await {
        Ok(found) => found,
        Err(p) => return failed(&req, &app, &ctx, &p),
    };
    let ids: Vec<Id> = found.iter().map(|p| p.listing_id).collect();
    let titles = titles(&app, &ids).await;
    let lines = found
        .iter()
        .map(|p| PendingLine {
            booking_id: p.booking_id,
            title: titles.get(&p.listing_id).cloned().unwrap_or_default(),
            as_guest: p.role == "guest",
            checked_out: date_of(p.checked_out_at, ctx.locale),
            until: date_of(p.window_ends_at, ctx.locale),
        })
        .collect();
    let notice = req.query_string().contains("done=sent").then_some(ctx.locale.messages().r.sent);
    let page = ToWritePage { page: ctx.chrome(&req, &app, "page_view"), lines, notice };
    respond(StatusCode::OK, page.render(), &ctx)
}

/// A sub-rating's line of the form.
struct Category {
    key: &'static str,
    label: &'static str,
    chosen: Option<i64>,
}

#[derive(Template)]
#[template(path = "review_form.html")]
struct WritePage {
    page: Chrome,
    booking_id: Id,
    title: String,
    as_guest: bool,
    overall: Option<i64>,
    categories: Vec<Category>,
    comment: String,
    error: Option<String>,
    errors: Vec<FieldError>,
}

impl WritePage {
    fn checked(&self, chosen: &Option<i64>, n: &i64) -> bool {
        *chosen == Some(*n)
    }

    fn field_error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == field || e.field.ends_with(&format!(".{field}")))
            .map(|e| e.message.as_str())
    }
}

fn write_page(
    ctx: &Context,
    chrome: Chrome,
    stay: &PendingReview,
    title: String,
    form: &[(String, String)],
) -> WritePage {
    let r = ctx.locale.messages().r;
    let as_guest = stay.role == "guest";
    let chosen = |key: &str| form.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.parse::<i64>().ok());
    let keys = if as_guest { GUEST_CATEGORIES } else { HOST_CATEGORIES };
    WritePage {
        page: chrome,
        booking_id: stay.booking_id,
        title,
        as_guest,
        overall: chosen("rating"),
        categories: keys.iter().map(|k| Category { key: k, label: r.category(k), chosen: chosen(k) }).collect(),
        comment: form.iter().find(|(k, _)| k == "comment").map(|(_, v)| v.clone()).unwrap_or_default(),
        error: None,
        errors: Vec::new(),
    }
}

/// The stay `raw` names if the user may still review it.
async fn pending_stay(app: &Web, ctx: &Context, raw: &str) -> Result<PendingReview, Problem> {
    let id: Id = raw.parse().map_err(|_| Problem::not_found("booking"))?;
    pending(app, ctx).await?.into_iter().find(|p| p.booking_id == id).ok_or_else(|| Problem::not_found("booking"))
}

/// `GET /reviews/{booking}`: the form.
pub async fn write_form(req: HttpRequest, app: web::Data<Web>, booking: web::Path<String>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    if let Err(to_sign_in) = user_or_sign_in(&ctx, req.path()) {
        return *to_sign_in;
    }
    let stay = match pending_stay(&app, &ctx, &booking).await {
        Ok(s) => s,
        Err(p) => return failed(&req, &app, &ctx, &p),
    };
    let title = titles(&app, &[stay.listing_id]).await.remove(&stay.listing_id).unwrap_or_default();
    let page = write_page(&ctx, ctx.chrome(&req, &app, "page_view"), &stay, title, &[]);
    respond(StatusCode::OK, page.render(), &ctx)
}

#[derive(serde::Deserialize)]
struct AnyFields {}

/// `POST /reviews/{booking}`: the review, then the list.
pub async fn submit(
    req: HttpRequest,
    app: web::Data<Web>,
    booking: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    if let Err(refused) = posted::<AnyFields>(&req, &app, &ctx, &body) {
        return *refused;
    }
    let user = match user_or_sign_in(&ctx, "/reviews") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let stay = match pending_stay(&app, &ctx, &booking).await {
        Ok(s) => s,
        Err(p) => return failed(&req, &app, &ctx, &p),
    };
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let title = titles(&app, &[stay.listing_id]).await.remove(&stay.listing_id).unwrap_or_default();
    let mut page = write_page(&ctx, ctx.chrome(&req, &app, "page_view"), &stay, title, &form);
    let r = ctx.locale.messages().r;
    let (Some(rating), true) = (page.overall, page.categories.iter().all(|c| c.chosen.is_some())) else {
        page.error = Some(r.choose_rating.to_owned());
        return respond(StatusCode::UNPROCESSABLE_ENTITY, page.render(), &ctx);
    };
    let ratings: BTreeMap<String, i64> =
        page.categories.iter().filter_map(|c| c.chosen.map(|v| (c.key.to_owned(), v))).collect();
    let review = NewReview { rating, ratings, comment: page.comment.clone() };
    match app.review_desk.submit(user, stay.booking_id, &review).await {
        Ok(_) => redirect(&ctx, "/reviews?done=sent", Vec::new()),
        Err(p) if p.status == 409 => {
            page.error = Some(r.already.to_owned());
            respond(StatusCode::CONFLICT, page.render(), &ctx)
        }
        Err(p) if p.status == 422 => {
            page.error = Some(match p.errors.iter().any(|e| e.field == "booking_id") {
                true => r.closed.to_owned(),
                false => r.choose_rating.to_owned(),
            });
            page.errors = p.errors;
            respond(StatusCode::UNPROCESSABLE_ENTITY, page.render(), &ctx)
        }
        Err(p) if p.status == 429 => {
            page.error = Some(p.detail.clone());
            respond(StatusCode::TOO_MANY_REQUESTS, page.render(), &ctx)
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

/// A published review as the listing page shows it.
pub struct ReviewView {
    pub id: Id,
    pub author: String,
    pub rating: i32,
    pub date: String,
    pub paragraphs: Vec<String>,
    pub response: Option<String>,
}

/// What the listing page shows of its reviews.
pub struct ReviewsBox {
    pub items: Vec<ReviewView>,
    pub average: Option<String>,
    pub count: i64,
    /// Categories' means (shown from the threshold on).
    pub means: Vec<(&'static str, String)>,
    /// The viewer is the listing's host: a response form under each review without one.
    pub can_respond: bool,
}

pub fn reviews_box(found: Option<ListingReviews>, locale: Locale, can_respond: bool) -> ReviewsBox {
    let r = locale.messages().r;
    let Some(found) = found else {
        return ReviewsBox { items: Vec::new(), average: None, count: 0, means: Vec::new(), can_respond: false };
    };
    ReviewsBox {
        items: found
            .items
            .iter()
            .map(|v| ReviewView {
                id: v.id,
                author: v.author.display_name.clone(),
                rating: v.rating,
                date: date_of(v.published_at.unwrap_or(v.created_at), locale),
                paragraphs: v.comment.split("\n\n").map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect(),
                response: v.response.as_ref().map(|x| x.comment.clone()),
            })
            .collect(),
        average: found.summary.average.map(|a| format::rating(a, locale)),
        count: found.summary.count,
        means: found.summary.ratings.iter().map(|(k, v)| (r.category(k), format::rating(*v, locale))).collect(),
        can_respond,
    }
}

#[derive(serde::Deserialize)]
struct ResponseForm {
    #[serde(default)]
    comment: String,
    #[serde(default)]
    listing: String,
}

/// `POST /reviews/{review}/response`: the host's public answer, then the listing page.
pub async fn respond_to(
    req: HttpRequest,
    app: web::Data<Web>,
    review: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let form: ResponseForm = match posted(&req, &app, &ctx, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let user = match user_or_sign_in(&ctx, "/host/listings") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let (Ok(review), Ok(listing)) = (review.parse::<Id>(), form.listing.parse::<Id>()) else {
        return failed(&req, &app, &ctx, &Problem::not_found("review"));
    };
    match app.review_desk.respond(user, review, &form.comment).await {
        Ok(_) => redirect(&ctx, &format!("/listings/{listing}?responded=1#reviews"), Vec::new()),
        Err(p) if p.status == 403 => failed(&req, &app, &ctx, &Problem::not_found("review")),
        Err(p) if p.status == 409 || p.status == 422 => {
            let m = ctx.locale.messages();
            let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::CONFLICT);
            crate::pages::say(&req, &app, &ctx, status, m.r.reviews, m.r.cannot_respond)
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}
