//! The host's calendar of one listing: two months of nights with their
//! price and state, a form that blocks, opens or prices a range of nights,
//! the secret iCal export address, and imported calendars with their sync
//! state. Through `HostListings`, as the signed-in host.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{Datelike, Duration, NaiveDate};
use hometrip_kernel::money::Money;
use hometrip_kernel::{Id, Problem};
use hometrip_listing::api::{CalendarDay, CalendarRangeInput, Listing};
use serde::Deserialize;

use crate::account_pages::redirect;
use crate::booking_views::first_of_month;
use crate::format;
use crate::host_listing_pages::{host_form, own_listing};
use crate::listing_form::parse_amount;
use crate::locale::Locale;
use crate::pages::{failed, respond, Chrome, Context};
use crate::trip_pages::{user_or_sign_in, NoFields};
use crate::Web;

/// One night of the host's calendar.
struct Night {
    n: u32,
    /// `open`, `booked`, `blocked` or `external`.
    state: &'static str,
    state_label: &'static str,
    price: String,
    past: bool,
    label: String,
}

struct HostMonth {
    title: String,
    weeks: Vec<[Option<Night>; 7]>,
}

struct ImportLine {
    id: Id,
    name: String,
    url: String,
    synced: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "host_calendar.html")]
struct CalendarPage {
    page: Chrome,
    listing_id: Id,
    title: String,
    months: Vec<HostMonth>,
    earlier: String,
    later: String,
    export_url: Option<String>,
    imports: Vec<ImportLine>,
    notice: Option<String>,
    error: Option<String>,
    form: RangeForm,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
struct RangeForm {
    from: String,
    to: String,
    /// `block`, `open` or `price`.
    action: String,
    price: String,
}

fn month_param(req: &HttpRequest) -> Option<NaiveDate> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let month = pairs.iter().find(|(k, _)| k == "month").map(|(_, v)| v.as_str())?;
    NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()
}

fn months(days: &[CalendarDay], start: NaiveDate, today: NaiveDate, locale: Locale) -> Vec<HostMonth> {
    let h = locale.messages().h;
    (0..2)
        .map(|i| {
            let first = first_of_month(start, i);
            let next = first_of_month(start, i + 1);
            let mut weeks = Vec::new();
            let mut week: [Option<Night>; 7] = Default::default();
            for day in days.iter().filter(|d| d.date >= first && d.date < next) {
                let column = day.date.weekday().num_days_from_monday() as usize;
                let (state, state_label) = match (day.available, day.reason.as_deref()) {
                    (true, _) => ("open", h.night_open),
                    (false, Some("booked")) => ("booked", h.night_booked),
                    (false, Some("external")) => ("external", h.night_external),
                    (false, _) => ("blocked", h.night_blocked),
                };
                week[column] = Some(Night {
                    n: day.date.day(),
                    state,
                    state_label,
                    price: format::money(&day.price, locale),
                    past: day.date < today,
                    label: format::date(day.date, locale),
                });
                if column == 6 {
                    weeks.push(std::mem::take(&mut week));
                }
            }
            if week.iter().any(Option::is_some) {
                weeks.push(week);
            }
            HostMonth { title: format::month(first, locale), weeks }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)] // one page's parts
async fn calendar_page(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    listing: &Listing,
    start: NaiveDate,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    form: RangeForm,
) -> HttpResponse {
    let Some(user) = ctx.visitor.user.as_ref().map(|s| &s.user) else {
        return failed(req, app, ctx, &Problem::not_found("listing"));
    };
    let today = chrono::Utc::now().date_naive();
    let end = first_of_month(start, 2);
    let hl = &app.host_listings;
    let (days, export, imports) = futures_util::join!(
        hl.calendar(user, listing.id, start, end),
        hl.export_link(user, listing.id),
        hl.imports(user, listing.id)
    );
    let (days, imports) = match (days, imports) {
        (Ok(d), Ok(i)) => (d, i),
        (Err(p), _) | (_, Err(p)) => return failed(req, app, ctx, &p),
    };
    let month = |d: NaiveDate| format!("{:04}-{:02}", d.year(), d.month());
    let page = CalendarPage {
        page: ctx.chrome(req, app, "page_view"),
        listing_id: listing.id,
        title: listing.title.clone(),
        months: months(&days, start, today, ctx.locale),
        earlier: month(first_of_month(start - Duration::days(1), 0)),
        later: month(first_of_month(start, 1)),
        export_url: export.ok().map(|e| e.url),
        imports: imports
            .into_iter()
            .map(|i| ImportLine {
                id: i.id,
                name: i.name,
                url: i.url,
                synced: i.last_synced_at.map(|at| format::instant(at, &listing.time_zone, ctx.locale)),
                error: i.last_error,
            })
            .collect(),
        notice,
        error,
        form,
    };
    respond(status, page.render(), ctx)
}

/// `GET /host/listings/{id}/calendar?month=YYYY-MM`.
pub async fn calendar(req: HttpRequest, app: web::Data<Web>, id: web::Path<String>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    if let Err(to_sign_in) = user_or_sign_in(&ctx, req.path()) {
        return *to_sign_in;
    }
    let listing = match own_listing(&app, &ctx, &id).await {
        Ok(l) => l,
        Err(p) => return failed(&req, &app, &ctx, &p),
    };
    let start = first_of_month(month_param(&req).unwrap_or_else(|| chrono::Utc::now().date_naive()), 0);
    let h = ctx.locale.messages().h;
    let notice = match req.query_string().contains("done=") {
        true => Some(
            match req.query_string() {
                q if q.contains("done=rotated") => h.rotated,
                q if q.contains("done=imported") => h.import_added,
                q if q.contains("done=removed") => h.removed,
                q if q.contains("done=synced") => h.synced,
                _ => h.calendar_saved,
            }
            .to_owned(),
        ),
        false => None,
    };
    calendar_page(&req, &app, &ctx, &listing, start, StatusCode::OK, notice, None, RangeForm::default()).await
}

impl RangeForm {
    fn range(&self, listing: &Listing, locale: Locale) -> Result<CalendarRangeInput, String> {
        let h = locale.messages().h;
        let m = locale.messages();
        let date = |s: &str| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| m.t.dates_invalid.to_owned());
        let (from, to) = (date(&self.from)?, date(&self.to)?);
        let currency = listing.nightly_price.as_ref().map_or("EUR", |p| p.currency.as_str());
        let exponent = hometrip_kernel::money::CURRENCIES.iter().find(|(c, _)| *c == currency).map_or(2, |(_, e)| *e);
        let (available, price) = match self.action.as_str() {
            "block" => (Some(false), None),
            "open" => (Some(true), None),
            "price" => match parse_amount(&self.price, exponent) {
                Some(amount) => (None, Some(Money::new(amount, currency))),
                None => return Err(h.price_needed.to_owned()),
            },
            _ => return Err(h.fix_fields.to_owned()),
        };
        Ok(CalendarRangeInput { from, to, available, price })
    }
}

/// `POST /host/listings/{id}/calendar`: blocks, opens or prices the nights
/// from `from` up to, not including, `to`.
pub async fn edit(req: HttpRequest, app: web::Data<Web>, id: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let (form, user, listing) = match host_form::<RangeForm>(&req, &app, &ctx, &id, &body).await {
        Ok(checked) => checked,
        Err(refused) => return *refused,
    };
    let today = chrono::Utc::now().date_naive();
    let shown_from = |r: &RangeForm| {
        NaiveDate::parse_from_str(r.from.trim(), "%Y-%m-%d")
            .ok()
            .map_or(first_of_month(today, 0), |d| first_of_month(d, 0))
    };
    let refused = |status: StatusCode, message: String, form: RangeForm| {
        let start = shown_from(&form);
        let (req, app, ctx, listing) = (&req, &app, &ctx, &listing);
        async move { calendar_page(req, app, ctx, listing, start, status, None, Some(message), form).await }
    };
    let range = match form.range(&listing, ctx.locale) {
        Ok(r) => r,
        Err(message) => return refused(StatusCode::UNPROCESSABLE_ENTITY, message, form).await,
    };
    let month = format!("{:04}-{:02}", range.from.year(), range.from.month());
    match app.host_listings.edit_calendar(user, listing.id, &[range]).await {
        Ok(_) => {
            redirect(&ctx, &format!("/host/listings/{}/calendar?month={month}&done=calendar", listing.id), Vec::new())
        }
        Err(p) if p.status == 409 => {
            refused(StatusCode::CONFLICT, ctx.locale.messages().h.booked_conflict.to_owned(), form).await
        }
        Err(p) if p.status == 422 => {
            let message = p.errors.first().map_or(p.detail.clone(), |e| e.message.clone());
            refused(StatusCode::UNPROCESSABLE_ENTITY, message, form).await
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ImportForm {
    name: String,
    url: String,
}

/// `POST /host/listings/{id}/calendar/imports`: a feed to import.
pub async fn add_import(
    req: HttpRequest,
    app: web::Data<Web>,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let (form, user, listing) = match host_form::<ImportForm>(&req, &app, &ctx, &id, &body).await {
        Ok(checked) => checked,
        Err(refused) => return *refused,
    };
    match app.host_listings.add_import(user, listing.id, form.url.trim(), form.name.trim()).await {
        Ok(_) => redirect(&ctx, &format!("/host/listings/{}/calendar?done=imported", listing.id), Vec::new()),
        Err(p) if (400..500).contains(&p.status) && p.status != 404 => {
            let message = p.errors.first().map_or(p.detail.clone(), |e| format!("{}: {}", e.field, e.message));
            let start = first_of_month(chrono::Utc::now().date_naive(), 0);
            let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            calendar_page(&req, &app, &ctx, &listing, start, status, None, Some(message), RangeForm::default()).await
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

/// `POST /host/listings/{id}/calendar/{imports/{import}/sync | imports/{import}/remove | export/rotate}`.
pub async fn feed_action(
    req: HttpRequest,
    app: web::Data<Web>,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let (raw_id, target, action) = path.into_inner();
    let (_, user, listing) = match host_form::<NoFields>(&req, &app, &ctx, &raw_id, &body).await {
        Ok(checked) => checked,
        Err(refused) => return *refused,
    };
    let hl = &app.host_listings;
    let done = match (target.as_str(), action.as_str()) {
        ("export", "rotate") => hl.rotate_export_link(user, listing.id).await.map(|_| "rotated"),
        (import, "sync") => match import.parse::<Id>() {
            Ok(import) => hl.sync_import(user, listing.id, import).await.map(|_| "synced"),
            Err(_) => Err(Problem::not_found("import")),
        },
        (import, "remove") => match import.parse::<Id>() {
            Ok(import) => hl.delete_import(user, listing.id, import).await.map(|_| "removed"),
            Err(_) => Err(Problem::not_found("import")),
        },
        _ => Err(Problem::not_found("action")),
    };
    match done {
        Ok(done) => redirect(&ctx, &format!("/host/listings/{}/calendar?done={done}", listing.id), Vec::new()),
        // A feed that cannot be read keeps its blocks: say so on the page.
        Err(p) if p.status == 502 || p.status == 422 => {
            let start = first_of_month(chrono::Utc::now().date_naive(), 0);
            let message = ctx.locale.messages().h.feed_unreachable.to_owned();
            calendar_page(
                &req,
                &app,
                &ctx,
                &listing,
                start,
                StatusCode::BAD_GATEWAY,
                None,
                Some(message),
                RangeForm::default(),
            )
            .await
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}
