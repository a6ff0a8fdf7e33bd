//! The guests' pages: home, search results, a listing. Each asks the
//! modules' traits and renders a template; a module that cannot answer
//! gives a page saying so (503), never a stack trace or JSON.

use actix_web::http::header::SET_COOKIE;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use cookie::Cookie;
use hometrip_kernel::http::HtmlPage;
use hometrip_kernel::{Id, Problem};
use hometrip_listing::api::{Listing, ListingStatus};
use hometrip_search::api::SearchParams;

use crate::format;
use crate::locale::{negotiate, Locale, Messages};
use crate::search_page::{amenity_label, cards, Card, FormValues};
use crate::session::Visitor;
use crate::trip_pages::{stay_box, StayBox, StayForm};
use crate::{assets, Web};

/// What every page shows around its content.
pub struct Chrome {
    pub lang: &'static str,
    pub m: &'static Messages,
    pub css: String,
    pub js: String,
    /// This page in the other language.
    pub switch_href: String,
    /// The analytics event the page reports (`assets/app.js`).
    pub event: &'static str,
    pub event_listing: Option<String>,
    /// The signed-in visitor's name.
    pub user: Option<String>,
    /// The CSRF token of this browser's forms.
    pub csrf: String,
    /// The visitor is an admin: the console's link.
    pub admin: bool,
    /// This page's path and query, to come back to after signing in.
    pub here: String,
}

/// What every page knows of its request: the language, and the visitor.
pub struct Context {
    pub locale: Locale,
    /// The Content-Security-Policy every page answers with.
    csp: std::sync::Arc<str>,
    /// `?lang=` chose the language: remember it.
    pub remember: bool,
    pub visitor: Visitor,
}

impl Context {
    pub async fn of(req: &HttpRequest, app: &Web) -> Context {
        let (locale, remember) = negotiate(req);
        Context { locale, remember, csp: std::sync::Arc::clone(&app.csp), visitor: app.visitor(req).await }
    }

    /// Sets the cookies this answer owes the browser: the language chosen
    /// by `?lang=`, the visitor's (a CSRF secret, a rotated session), then
    /// `extra`.
    pub fn set_cookies(&self, response: &mut actix_web::HttpResponseBuilder, extra: &[Cookie<'static>]) {
        if self.remember {
            let lang = Cookie::build(("lang", self.locale.code()))
                .path("/")
                .max_age(cookie::time::Duration::days(365))
                .same_site(cookie::SameSite::Lax)
                .build();
            response.append_header((SET_COOKIE, lang.to_string()));
        }
        for c in self.visitor.cookies.iter().chain(extra) {
            response.append_header((SET_COOKIE, c.to_string()));
        }
        // A page, even at an error status: the edge leaves it as it is.
        response.extensions_mut().insert(HtmlPage);
    }

    pub fn chrome(&self, req: &HttpRequest, app: &Web, event: &'static str) -> Chrome {
        let mut chrome = Chrome::new(req, self.locale, event);
        chrome.user = self.visitor.user.as_ref().map(|u| u.display_name.clone());
        chrome.admin = self.visitor.user.as_ref().is_some_and(|u| u.user.is_admin());
        chrome.csrf = app.csrf_token(&self.visitor);
        chrome
    }
}

impl Chrome {
    fn new(req: &HttpRequest, locale: Locale, event: &'static str) -> Chrome {
        let m = locale.messages();
        let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
        pairs.retain(|(k, _)| k != "lang");
        pairs.push(("lang".to_owned(), m.other_language.to_owned()));
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        Chrome {
            lang: locale.code(),
            m,
            css: assets::stylesheet(),
            js: assets::script(),
            switch_href: format!("{}?{query}", req.path()),
            event,
            event_listing: None,
            user: None,
            csrf: String::new(),
            admin: false,
            // Without the emailed links' tokens: they stay on their page.
            here: match pairs.iter().any(|(k, _)| k == "token") {
                true => req.path().to_owned(),
                false => match req.query_string() {
                    "" => req.path().to_owned(),
                    q => format!("{}?{q}", req.path()),
                },
            },
        }
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    page: Chrome,
    form: FormValues,
    hits: Vec<Card>,
    /// The stay the cards' links carry (none on the home page).
    stay: String,
}

/// A listing as its page shows it.
struct ListingView {
    title: String,
    place: String,
    rating: Option<String>,
    review_count: i64,
    photos: Vec<PhotoView>,
    property_type: String,
    max_guests: u32,
    bedrooms: u32,
    beds: u32,
    bathrooms: f64,
    description: Vec<String>,
    amenities: Vec<String>,
    nightly_price: Option<String>,
    cleaning_fee: Option<String>,
    cancellation_policy: String,
    check_in_time: String,
    check_out_time: String,
    instant_book: bool,
}

struct PhotoView {
    src: String,
    alt: String,
}

#[derive(Template)]
#[template(path = "listing.html")]
struct ListingPage {
    page: Chrome,
    id: String,
    l: ListingView,
    stay: StayBox,
    reviews: crate::review_pages::ReviewsBox,
    /// The host's response was just published.
    responded: bool,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    page: Chrome,
    title: &'static str,
    text: &'static str,
}

/// A rendered page with the headers every page carries: no inline script
/// or style may run (CSP), no framing, no sniffing; the language chosen by
/// `?lang=` remembered for a year.
pub fn respond(status: StatusCode, rendered: Result<String, askama::Error>, ctx: &Context) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    let body = match rendered {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "page template failed");
            return HttpResponse::InternalServerError().content_type("text/plain; charset=utf-8").body("page failed");
        }
    };
    response
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", &*ctx.csp))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Referrer-Policy", "strict-origin-when-cross-origin"))
        .insert_header(("Cache-Control", "no-store"));
    ctx.set_cookies(&mut response, &[]);
    response.body(body)
}

/// No inline script or style, nothing from elsewhere but a configured
/// tile server's images, and on the checkout page Stripe Elements when
/// Stripe is configured (its script, frames and API, as Stripe documents).
pub fn content_security_policy(tiles_origin: Option<&str>, stripe: bool) -> String {
    let tiles = tiles_origin.map(|o| format!(" {o}")).unwrap_or_default();
    let (script, connect, frame) = match stripe {
        true => (
            " https://js.stripe.com",
            " https://api.stripe.com",
            "; frame-src https://js.stripe.com https://hooks.stripe.com",
        ),
        false => ("", "", ""),
    };
    format!(
        "default-src 'self'; script-src 'self'{script}; style-src 'self'; img-src 'self' data:{tiles}; \
         connect-src 'self'{connect}; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
         frame-ancestors 'none'{frame}"
    )
}

/// A page that only says something: a title, a sentence, a way home.
pub fn say(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    status: StatusCode,
    title: &'static str,
    text: &'static str,
) -> HttpResponse {
    let page = ctx.chrome(req, app, "page_view");
    respond(status, MessagePage { page, title, text }.render(), ctx)
}

fn message(req: &HttpRequest, app: &Web, ctx: &Context, status: StatusCode) -> HttpResponse {
    let m = ctx.locale.messages();
    let (title, text) = if status == StatusCode::NOT_FOUND {
        (m.not_found_title, m.not_found_text)
    } else {
        (m.unavailable_title, m.unavailable_text)
    };
    say(req, app, ctx, status, title, text)
}

/// A module's failure as a page: its own 404 as not found, anything else as unavailable.
pub fn failed(req: &HttpRequest, app: &Web, ctx: &Context, p: &Problem) -> HttpResponse {
    if p.status == 404 {
        return message(req, app, ctx, StatusCode::NOT_FOUND);
    }
    tracing::warn!(status = p.status, detail = %p.detail, "page: a module failed");
    message(req, app, ctx, StatusCode::SERVICE_UNAVAILABLE)
}

/// `GET /`: the search form and a few homes.
pub async fn home(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let locale = ctx.locale;
    let featured = SearchParams { sort: Some("rating".to_owned()), limit: Some(8), ..SearchParams::default() };
    // The home page shows without its homes when search cannot answer.
    let hits = match app.search.search(&featured).await {
        Ok(found) => cards(&found.items, locale),
        Err(e) => {
            tracing::warn!(detail = %e.detail, "home: search failed");
            Vec::new()
        }
    };
    let page =
        HomePage { page: ctx.chrome(&req, &app, "page_view"), form: FormValues::default(), hits, stay: String::new() };
    respond(StatusCode::OK, page.render(), &ctx)
}

fn listing_view(l: &Listing, locale: Locale) -> ListingView {
    let place = if l.address.neighbourhood.is_empty() {
        l.address.city.clone()
    } else {
        format!("{}, {}", l.address.neighbourhood, l.address.city)
    };
    ListingView {
        title: l.title.clone(),
        place,
        rating: l.rating.map(|r| format::rating(r, locale)),
        review_count: l.review_count,
        photos: l
            .photos
            .iter()
            .map(|p| PhotoView {
                src: p.card_url.clone(),
                alt: if p.caption.is_empty() { l.title.clone() } else { p.caption.clone() },
            })
            .collect(),
        property_type: l.property_type.clone(),
        max_guests: l.max_guests,
        bedrooms: l.bedrooms,
        beds: l.beds,
        bathrooms: l.bathrooms,
        description: l.description.split("\n\n").map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect(),
        amenities: l.amenities.iter().map(|a| amenity_label(a, locale)).collect(),
        nightly_price: l.nightly_price.as_ref().map(|p| format::money(p, locale)),
        cleaning_fee: l.cleaning_fee.as_ref().filter(|p| p.amount > 0).map(|p| format::money(p, locale)),
        cancellation_policy: l.cancellation_policy.clone(),
        check_in_time: l.check_in_time.clone(),
        check_out_time: l.check_out_time.clone(),
        instant_book: l.instant_book,
    }
}

/// `GET /listings/{id}?check_in&check_out&guests&rate`: a published
/// listing (anything else is not found), with the price of the asked stay.
pub async fn listing(req: HttpRequest, app: web::Data<Web>, id: web::Path<String>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let Ok(id) = id.parse::<Id>() else {
        return message(&req, &app, &ctx, StatusCode::NOT_FOUND);
    };
    let form: StayForm = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    listing_page(&req, &app, &ctx, id, form, None).await
}

/// The listing page, with `error` (and its status) about the stay asked for.
pub async fn listing_page(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    id: Id,
    form: StayForm,
    error: Option<(StatusCode, String)>,
) -> HttpResponse {
    let found = match app.listings.listing(id).await {
        Ok(found) => found,
        Err(p) => return failed(req, app, ctx, &p),
    };
    let Some(l) = found.filter(|l| l.status == ListingStatus::Published) else {
        return message(req, app, ctx, StatusCode::NOT_FOUND);
    };
    let (mut stay, reviews) = futures_util::join!(stay_box(app, ctx, &l, form), app.review_desk.of_listing(l.id, 6));
    let reviews = match reviews {
        Ok(r) => Some(r),
        Err(p) => {
            // The page is still worth showing without its reviews.
            tracing::warn!(status = p.status, detail = %p.detail, "listing page: reviews unavailable");
            None
        }
    };
    let host_views = ctx.visitor.user.as_ref().is_some_and(|u| u.id == l.host_id);
    let reviews = crate::review_pages::reviews_box(reviews, ctx.locale, host_views);
    let status = match error {
        Some((status, error)) => {
            stay.error = Some(error);
            status
        }
        None => StatusCode::OK,
    };
    let mut page = ctx.chrome(req, app, "listing_view");
    page.event_listing = Some(l.id.to_string());
    let id = l.id.to_string();
    let responded = req.query_string().contains("responded=1");
    respond(status, ListingPage { page, id, l: listing_view(&l, ctx.locale), stay, reviews, responded }.render(), ctx)
}
