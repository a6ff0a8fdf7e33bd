//! Booking in the browser: the stay box of a listing page (price for the
//! chosen dates, refund timeline, the calendar), booking, checkout with the
//! 3-D Secure step, and the guest's trips with cancellation (the refund is
//! shown before the button). Every call goes through the booking module's
//! [`hometrip_booking::api::Reservations`], as the signed-in user.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::NaiveDate;
use hometrip_booking::api::{Booking, BookingStatus, CreateBooking, Party, PaymentOutcome};
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::{Id, Problem};
use hometrip_listing::api::{Listing, Rate};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::account_pages::redirect;
use crate::booking_views::{self, BookingLine, Month, PriceView};
use crate::pages::{failed, respond, say, Chrome, Context};
use crate::{format, Web};

/// The stay a visitor asks about, as typed (the listing page's query, the book form).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StayForm {
    pub check_in: String,
    pub check_out: String,
    pub guests: String,
    pub rate: String,
    csrf: String,
    /// The book form's idempotency key: a double submit books once.
    key: String,
}

impl StayForm {
    pub fn asked(&self) -> bool {
        !self.check_in.is_empty() || !self.check_out.is_empty()
    }

    fn rate(&self) -> Rate {
        if self.rate == "non_refundable" {
            Rate::NonRefundable
        } else {
            Rate::Standard
        }
    }

    /// The dates and guests, or `None` when they do not make a stay.
    fn stay(&self) -> Option<(NaiveDate, NaiveDate, u32)> {
        let check_in = NaiveDate::parse_from_str(self.check_in.trim(), "%Y-%m-%d").ok()?;
        let check_out = NaiveDate::parse_from_str(self.check_out.trim(), "%Y-%m-%d").ok()?;
        let guests = match self.guests.trim() {
            "" => 1,
            g => g.parse().ok().filter(|g| *g >= 1)?,
        };
        (check_out > check_in).then_some((check_in, check_out, guests))
    }

    fn query(&self) -> String {
        serde_urlencoded::to_string([
            ("check_in", &self.check_in),
            ("check_out", &self.check_out),
            ("guests", &self.guests),
            ("rate", &self.rate),
        ])
        .unwrap_or_default()
    }
}

/// The listing page's booking box.
pub struct StayBox {
    pub form: StayForm,
    pub price: Option<PriceView>,
    pub refunds: Vec<String>,
    pub error: Option<String>,
    pub instant_book: bool,
    pub signed_in: bool,
    pub key: String,
    pub months: Vec<Month>,
}

/// What a booking call's problem tells the visitor about the stay.
fn stay_problem(p: &Problem, ctx: &Context) -> Option<String> {
    let t = ctx.locale.messages().t;
    match p.status {
        409 => Some(t.nights_taken.to_owned()),
        400 | 422 => {
            if p.errors.iter().any(|e| e.field == "listing_id") {
                return Some(t.own_listing.to_owned());
            }
            let fields: Vec<String> = p.errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
            Some(if fields.is_empty() { p.detail.clone() } else { fields.join("; ") })
        }
        _ => None,
    }
}

/// The booking box of listing `l`: the price of the asked stay, and two
/// months of its calendar from the asked check-in (or this month).
pub async fn stay_box(app: &Web, ctx: &Context, l: &Listing, form: StayForm) -> StayBox {
    let locale = ctx.locale;
    let today = chrono::Utc::now().date_naive();
    let mut stay = StayBox {
        price: None,
        refunds: Vec::new(),
        error: None,
        instant_book: l.instant_book,
        signed_in: ctx.visitor.user.is_some(),
        key: Id::new().to_string(),
        months: Vec::new(),
        form,
    };
    let asked = stay.form.stay();
    let start = booking_views::first_of_month(asked.map_or(today, |(from, _, _)| from.max(today)), 0);
    let end = booking_views::first_of_month(start, 2);
    let quote = async {
        match asked {
            Some((from, to, guests)) => Some(app.reservations.quote(l.id, from, to, guests, stay.form.rate()).await),
            None => None,
        }
    };
    let (quote, taken) = futures_util::join!(quote, app.listings.taken_nights(l.id, start, end));
    stay.months = booking_views::months(start, 2, &taken.unwrap_or_default(), today, locale);
    match quote {
        Some(Ok(q)) => {
            stay.price = Some(booking_views::price(&q.quote, locale));
            stay.refunds = booking_views::refunds(&q.refund_timeline, &q.quote.stay.time_zone, locale);
        }
        Some(Err(p)) => {
            stay.error = Some(stay_problem(&p, ctx).unwrap_or_else(|| locale.messages().unavailable_text.to_owned()));
        }
        None if stay.form.asked() => stay.error = Some(locale.messages().t.dates_invalid.to_owned()),
        None => {}
    }
    stay
}

/// A form's fields once its CSRF token is checked (403 without it).
pub(crate) fn posted<T: DeserializeOwned>(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    body: &[u8],
) -> Result<T, Box<HttpResponse>> {
    #[derive(Deserialize)]
    struct Token {
        #[serde(default)]
        csrf: String,
    }
    let m = ctx.locale.messages();
    let unreadable =
        || Box::new(say(req, app, ctx, StatusCode::BAD_REQUEST, m.form_unreadable_title, m.form_expired_text));
    let token: Token = serde_urlencoded::from_bytes(body).map_err(|_| unreadable())?;
    if !app.csrf_ok(req, &token.csrf) {
        return Err(Box::new(say(req, app, ctx, StatusCode::FORBIDDEN, m.form_expired_title, m.form_expired_text)));
    }
    serde_urlencoded::from_bytes(body).map_err(|_| unreadable())
}

/// The signed-in user, or the way to the sign-in page and back to `back`.
pub fn user_or_sign_in<'a>(ctx: &'a Context, back: &str) -> Result<&'a AuthUser, Box<HttpResponse>> {
    match &ctx.visitor.user {
        Some(signed_in) => Ok(&signed_in.user),
        None => {
            let next = serde_urlencoded::to_string([("next", back)]).unwrap_or_default();
            Err(Box::new(redirect(ctx, &format!("/sign-in?{next}"), Vec::new())))
        }
    }
}

fn booking_id(raw: &str) -> Option<Id> {
    raw.parse().ok()
}

/// `POST /listings/{id}/book`: holds the nights, then checkout.
pub async fn book(req: HttpRequest, app: web::Data<Web>, id: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let form: StayForm = match posted(&req, &app, &ctx, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let Some(listing_id) = booking_id(&id) else {
        return failed(&req, &app, &ctx, &Problem::not_found("listing"));
    };
    let user = match user_or_sign_in(&ctx, &format!("/listings/{listing_id}?{}", form.query())) {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let Some((check_in, check_out, guests)) = form.stay() else {
        let error = ctx.locale.messages().t.dates_invalid.to_owned();
        return crate::pages::listing_page(
            &req,
            &app,
            &ctx,
            listing_id,
            form,
            Some((StatusCode::UNPROCESSABLE_ENTITY, error)),
        )
        .await;
    };
    let create = CreateBooking { listing_id, check_in, check_out, guests, rate: Some(form.rate()) };
    let key = Some(form.key.trim()).filter(|k| !k.is_empty() && k.len() <= 64);
    match app.reservations.create(user, &create, key).await {
        Ok(booking) => redirect(&ctx, &format!("/checkout/{}", booking.id), Vec::new()),
        Err(p) => match stay_problem(&p, &ctx) {
            Some(error) => {
                let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
                crate::pages::listing_page(&req, &app, &ctx, listing_id, form, Some((status, error))).await
            }
            None => failed(&req, &app, &ctx, &p),
        },
    }
}

#[derive(Template)]
#[template(path = "checkout.html")]
struct CheckoutPage {
    page: Chrome,
    booking_id: String,
    title: String,
    dates: String,
    guests: u32,
    price: PriceView,
    refunds: Vec<String>,
    hold_until: Option<String>,
    instant_book: bool,
    error: Option<String>,
    key: String,
    /// Stripe's publishable key: the card field is Stripe Elements where
    /// JavaScript runs (the test cards stay for when it does not).
    stripe_key: String,
}

impl CheckoutPage {
    /// The page, with the checkout's own Content-Security-Policy (Stripe
    /// Elements' script, frames and API when Stripe is configured).
    fn answer(&self, status: StatusCode, app: &Web, ctx: &Context) -> HttpResponse {
        let mut response = respond(status, self.render(), ctx);
        if let Ok(csp) = actix_web::http::header::HeaderValue::from_str(&app.checkout_csp) {
            response.headers_mut().insert(actix_web::http::header::CONTENT_SECURITY_POLICY, csp);
        }
        response
    }
}

#[derive(Template)]
#[template(path = "bank.html")]
struct BankPage {
    page: Chrome,
    action: String,
}

/// The listing's title, or nothing when the listing cannot be read (the
/// booking still shows).
async fn title_of(app: &Web, listing_id: Id) -> String {
    match app.listings.listing(listing_id).await {
        Ok(Some(l)) => l.title,
        Ok(None) => String::new(),
        Err(p) => {
            tracing::warn!(detail = %p.detail, "web: reading a booking's listing failed");
            String::new()
        }
    }
}

/// A booking of the signed-in user, or the page to answer instead.
async fn own_booking(req: &HttpRequest, app: &Web, ctx: &Context, raw_id: &str) -> Result<Booking, Box<HttpResponse>> {
    let user = user_or_sign_in(ctx, req.path())?;
    let not_found = || Box::new(failed(req, app, ctx, &Problem::not_found("booking")));
    let id = booking_id(raw_id).ok_or_else(not_found)?;
    match app.reservations.get(user, id).await {
        Ok(b) => Ok(b),
        // Someone else's booking is as good as none.
        Err(p) if p.status == 403 || p.status == 404 => Err(not_found()),
        Err(p) => Err(Box::new(failed(req, app, ctx, &p))),
    }
}

async fn checkout_page(
    app: &Web,
    ctx: &Context,
    req: &HttpRequest,
    b: &Booking,
    error: Option<String>,
) -> CheckoutPage {
    let locale = ctx.locale;
    CheckoutPage {
        page: ctx.chrome(req, app, "booking_started"),
        booking_id: b.id.to_string(),
        title: title_of(app, b.listing_id).await,
        dates: booking_views::stay_dates(b, locale),
        guests: b.guests,
        price: booking_views::price(&b.price, locale),
        refunds: booking_views::refunds(&b.refund_timeline, &b.time_zone, locale),
        hold_until: b.hold_expires_at.map(|at| format::instant(at, &b.time_zone, locale)),
        instant_book: b.instant_book,
        error,
        key: Id::new().to_string(),
        stripe_key: app.stripe_key.clone(),
    }
}

/// `GET /checkout/{booking}`: what is paid for, and the card.
pub async fn checkout(req: HttpRequest, app: web::Data<Web>, id: web::Path<String>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let b = match own_booking(&req, &app, &ctx, &id).await {
        Ok(b) => b,
        Err(page) => return *page,
    };
    let guest = ctx.visitor.user.as_ref().is_some_and(|u| u.id == b.guest_id);
    // Paid (or being paid), or not the guest's to pay: the trip says where it stands.
    if b.status != BookingStatus::PendingPayment || b.payment_id.is_some() || !guest {
        return redirect(&ctx, &format!("/trips/{}", b.id), Vec::new());
    }
    let page = checkout_page(&app, &ctx, &req, &b, None).await;
    page.answer(StatusCode::OK, &app, &ctx)
}

#[derive(Deserialize)]
struct PayForm {
    #[serde(default)]
    payment_method: String,
    #[serde(default)]
    key: String,
}

/// `POST /checkout/{booking}`: pays; the bank's step when the card asks for it.
pub async fn pay(req: HttpRequest, app: web::Data<Web>, id: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let form: PayForm = match posted(&req, &app, &ctx, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let b = match own_booking(&req, &app, &ctx, &id).await {
        Ok(b) => b,
        Err(page) => return *page,
    };
    let Some(user) = ctx.visitor.user.as_ref().map(|u| &u.user) else {
        return redirect(&ctx, "/sign-in", Vec::new());
    };
    let t = ctx.locale.messages().t;
    let key = Some(form.key.trim()).filter(|k| !k.is_empty() && k.len() <= 64);
    let trip = format!("/trips/{}", b.id);
    let error = match app.reservations.pay(user, b.id, &form.payment_method, key).await {
        Ok(PaymentOutcome { status, next_action_url: Some(url), .. }) if status == "requires_action" => {
            return bank_step(&req, &app, &ctx, &url, &trip);
        }
        Ok(outcome) if outcome.status == "declined" => t.declined.to_owned(),
        Ok(_) => return redirect(&ctx, &trip, Vec::new()),
        // Paid already, or the hold is over: the trip page tells which.
        Err(p) if p.status == 409 => return redirect(&ctx, &trip, Vec::new()),
        Err(p) if p.status == 422 => stay_problem(&p, &ctx).unwrap_or_else(|| p.detail.clone()),
        Err(p) => return failed(&req, &app, &ctx, &p),
    };
    let status = if error == t.declined { StatusCode::PAYMENT_REQUIRED } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = checkout_page(&app, &ctx, &req, &b, Some(error)).await;
    page.answer(status, &app, &ctx)
}

/// The card's 3-D Secure step. The simulated provider's step is a form on
/// this site that returns to the trip; a real provider's is its own page,
/// which returns there too.
fn bank_step(req: &HttpRequest, app: &Web, ctx: &Context, next_action_url: &str, trip: &str) -> HttpResponse {
    const SIMULATED: &str = "/api/v1/payments/simulated/";
    match next_action_url.find(SIMULATED) {
        Some(at) => {
            let back = serde_urlencoded::to_string([("return_url", trip)]).unwrap_or_default();
            let action = format!("{}?{back}", &next_action_url[at..]);
            respond(StatusCode::OK, BankPage { page: ctx.chrome(req, app, "page_view"), action }.render(), ctx)
        }
        None => {
            let mut r = HttpResponse::SeeOther();
            r.insert_header((actix_web::http::header::LOCATION, next_action_url.to_owned()));
            ctx.set_cookies(&mut r, &[]);
            r.finish()
        }
    }
}

#[derive(Template)]
#[template(path = "trips.html")]
struct TripsPage {
    page: Chrome,
    upcoming: Vec<BookingLine>,
    past: Vec<BookingLine>,
}

/// The titles of `ids`' listings, in one read of them all (an unreadable
/// one is missing: the page still shows).
pub(crate) async fn titles(app: &Web, ids: &[Id]) -> HashMap<Id, String> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    let mut titles = HashMap::with_capacity(ids.len());
    // `listings_of` takes at most 1,000 ids a call.
    for chunk in ids.chunks(1000) {
        match app.listings.listings_of(chunk).await {
            Ok(found) => titles.extend(found.into_iter().map(|l| (l.id, l.title))),
            Err(p) => tracing::warn!(detail = %p.detail, "web: reading the bookings' listings failed"),
        }
    }
    titles
}

/// The bookings as lines of a list, with their listings' titles.
pub(crate) async fn lines(app: &Web, bookings: &[Booking], ctx: &Context) -> Vec<BookingLine> {
    let ids: Vec<Id> = bookings.iter().map(|b| b.listing_id).collect();
    let titles = titles(app, &ids).await;
    bookings
        .iter()
        .map(|b| booking_views::line(b, titles.get(&b.listing_id).cloned().unwrap_or_default(), ctx.locale))
        .collect()
}

/// `GET /trips`: the guest's bookings, upcoming then past.
pub async fn trips(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let user = match user_or_sign_in(&ctx, "/trips") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let found = match app.reservations.list(user, Party::Guest, None, None, 100).await {
        Ok(found) => found.items,
        Err(p) => return failed(&req, &app, &ctx, &p),
    };
    let (upcoming, past): (Vec<Booking>, Vec<Booking>) =
        found.into_iter().partition(|b| booking_views::upcoming(b.status));
    let page = TripsPage {
        page: ctx.chrome(&req, &app, "page_view"),
        upcoming: lines(&app, &upcoming, &ctx).await,
        past: lines(&app, &past, &ctx).await,
    };
    respond(StatusCode::OK, page.render(), &ctx)
}

#[derive(Template)]
#[template(path = "trip.html")]
struct TripPage {
    page: Chrome,
    b: BookingLine,
    price: PriceView,
    refunds: Vec<String>,
    pending_payment: bool,
    /// Paid and waiting for the provider's word (after 3-D Secure): the
    /// page reloads itself.
    processing: bool,
    /// What cancelling now brings back, when the guest may cancel.
    cancel_refund: Option<String>,
    can_cancel: bool,
    /// Just cancelled: what comes back.
    cancelled: Option<String>,
    refund: Option<String>,
}

async fn trip_page(app: &Web, ctx: &Context, req: &HttpRequest, b: &Booking, cancelled: Option<String>) -> TripPage {
    let locale = ctx.locale;
    let title = title_of(app, b.listing_id).await;
    let guest = ctx.visitor.user.as_ref().is_some_and(|u| u.id == b.guest_id);
    let can_cancel = guest && booking_views::upcoming(b.status);
    TripPage {
        page: ctx.chrome(req, app, "page_view"),
        b: booking_views::line(b, title, locale),
        price: booking_views::price(&b.price, locale),
        refunds: if can_cancel { booking_views::refunds(&b.refund_timeline, &b.time_zone, locale) } else { Vec::new() },
        pending_payment: b.status == BookingStatus::PendingPayment && b.payment_id.is_none(),
        processing: b.status == BookingStatus::PendingPayment && b.payment_id.is_some(),
        // Only a confirmed stay was charged; before that nothing comes back.
        cancel_refund: (can_cancel && b.status == BookingStatus::Confirmed)
            .then(|| b.refund_timeline.first().map(|s| format::money(&s.refund, locale)))
            .flatten(),
        can_cancel,
        cancelled,
        refund: b.refund.as_ref().filter(|r| r.amount > 0).map(|r| format::money(r, locale)),
    }
}

/// `GET /trips/{booking}`: one trip (also where the payment provider returns).
pub async fn trip(req: HttpRequest, app: web::Data<Web>, id: web::Path<String>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let b = match own_booking(&req, &app, &ctx, &id).await {
        Ok(b) => b,
        Err(page) => return *page,
    };
    let page = trip_page(&app, &ctx, &req, &b, None).await;
    respond(StatusCode::OK, page.render(), &ctx)
}

/// A form of nothing but its CSRF token.
#[derive(Deserialize)]
pub(crate) struct NoFields {}

/// `POST /trips/{booking}/cancel`: cancels and shows what comes back.
pub async fn cancel(req: HttpRequest, app: web::Data<Web>, id: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    if let Err(refused) = posted::<NoFields>(&req, &app, &ctx, &body) {
        return *refused;
    }
    let b = match own_booking(&req, &app, &ctx, &id).await {
        Ok(b) => b,
        Err(page) => return *page,
    };
    let Some(user) = ctx.visitor.user.as_ref().map(|u| &u.user) else {
        return redirect(&ctx, "/sign-in", Vec::new());
    };
    match app.reservations.cancel(user, b.id).await {
        Ok(c) => {
            let refund = format::money(&c.refund, ctx.locale);
            let page = trip_page(&app, &ctx, &req, &c.booking, Some(refund)).await;
            respond(StatusCode::OK, page.render(), &ctx)
        }
        Err(p) if p.status == 409 => {
            let t = ctx.locale.messages().t;
            say(&req, &app, &ctx, StatusCode::CONFLICT, t.cancel_title, t.cannot_cancel)
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}
