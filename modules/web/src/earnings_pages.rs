//! The host's earnings and dashboard: occupancy, average daily rate,
//! RevPAR and revenue over a period, revenue and occupancy by month as
//! charts (SVG drawn here, no script) with the same figures as a table, and
//! the CSV per listing and month. Through analytics' `HostFigures`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{Datelike, NaiveDate};
use hometrip_analytics::api::{HostSummary, MonthFigures};
use hometrip_kernel::money::Money;
use hometrip_kernel::Id;
use serde::Deserialize;

use crate::format;
use crate::locale::Locale;
use crate::pages::{failed, respond, Chrome, Context};
use crate::trip_pages::user_or_sign_in;
use crate::Web;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PeriodForm {
    from: String,
    to: String,
    listing: String,
}

/// A bar of a chart: its place, its height, what it says.
struct Bar {
    x: u32,
    y: u32,
    height: u32,
    label: String,
    /// Under the bar: the month's first letters.
    short: String,
    value: String,
}

struct Chart {
    bars: Vec<Bar>,
    width: u32,
}

struct MonthLine {
    month: String,
    revenue: String,
    occupancy: String,
    nights_booked: i64,
    adr: String,
}

#[derive(Template)]
#[template(path = "earnings.html")]
struct EarningsPage {
    page: Chrome,
    from: String,
    to: String,
    listing: Option<Id>,
    listings: Vec<(Id, String)>,
    error: Option<&'static str>,
    figures: Option<Figures>,
    revenue_chart: Chart,
    occupancy_chart: Chart,
    months: Vec<MonthLine>,
    csv_href: String,
}

impl EarningsPage {
    fn selected(&self, id: &Id) -> bool {
        self.listing.as_ref() == Some(id)
    }
}

/// The period's figures as the page writes them.
struct Figures {
    occupancy: String,
    adr: String,
    revpar: String,
    revenue: String,
    bookings: i64,
    cancellations: i64,
    nights_booked: i64,
    nights_available: i64,
    lead_time: String,
    length_of_stay: String,
}

const CHART_HEIGHT: u32 = 160;
const BAR_STEP: u32 = 48;

fn percent(rate: f64, locale: Locale) -> String {
    let tenths = (rate * 1000.0).round() as i64;
    let text = format!("{}.{}", tenths / 10, tenths % 10);
    match locale {
        Locale::En => format!("{text}%"),
        Locale::Fr => format!("{}\u{a0}%", text.replace('.', ",")),
    }
}

fn decimal(x: f64, locale: Locale) -> String {
    let text = format!("{x:.1}");
    if locale == Locale::Fr {
        text.replace('.', ",")
    } else {
        text
    }
}

fn month_label(month: &str, locale: Locale) -> String {
    NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .map(|d| format::month(d, locale))
        .unwrap_or_else(|_| month.to_owned())
}

/// Bars scaled to the largest value (an empty chart when all are zero).
fn chart(months: &[MonthFigures], value: impl Fn(&MonthFigures) -> (f64, String), locale: Locale) -> Chart {
    let values: Vec<(f64, String)> = months.iter().map(&value).collect();
    let max = values.iter().map(|(v, _)| *v).fold(0.0_f64, f64::max);
    let bars = months
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (m, (v, text)))| {
            let height = if max > 0.0 { ((v / max) * f64::from(CHART_HEIGHT)).round() as u32 } else { 0 };
            let label = month_label(&m.month, locale);
            Bar {
                x: i as u32 * BAR_STEP + 8,
                y: CHART_HEIGHT - height + 4,
                height,
                short: label.chars().take(3).collect(),
                label,
                value: text,
            }
        })
        .collect();
    Chart { bars, width: (months.len() as u32).max(1) * BAR_STEP + 16 }
}

fn money(m: &Money, locale: Locale) -> String {
    format::money(m, locale)
}

fn page_of(summary: &HostSummary, locale: Locale) -> (Figures, Chart, Chart, Vec<MonthLine>) {
    let f = &summary.figures;
    let figures = Figures {
        occupancy: percent(f.occupancy_rate, locale),
        adr: money(&f.adr, locale),
        revpar: money(&f.revpar, locale),
        revenue: money(&f.revenue, locale),
        bookings: f.bookings,
        cancellations: f.cancellations,
        nights_booked: f.nights_booked,
        nights_available: f.nights_available,
        lead_time: decimal(f.average_lead_time_days, locale),
        length_of_stay: decimal(f.average_length_of_stay, locale),
    };
    let revenue =
        chart(&summary.by_month, |m| (m.figures.revenue.amount as f64, money(&m.figures.revenue, locale)), locale);
    let occupancy =
        chart(&summary.by_month, |m| (m.figures.occupancy_rate, percent(m.figures.occupancy_rate, locale)), locale);
    let months = summary
        .by_month
        .iter()
        .map(|m| MonthLine {
            month: month_label(&m.month, locale),
            revenue: money(&m.figures.revenue, locale),
            occupancy: percent(m.figures.occupancy_rate, locale),
            nights_booked: m.figures.nights_booked,
            adr: money(&m.figures.adr, locale),
        })
        .collect();
    (figures, revenue, occupancy, months)
}

/// The asked period, or this calendar year.
fn period(form: &PeriodForm) -> Option<(NaiveDate, NaiveDate)> {
    let year = chrono::Utc::now().date_naive().year();
    let date = |s: &str, default: NaiveDate| match s.trim() {
        "" => Some(default),
        s => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(),
    };
    let from = date(&form.from, NaiveDate::from_ymd_opt(year, 1, 1)?)?;
    let to = date(&form.to, NaiveDate::from_ymd_opt(year, 12, 31)?)?;
    (from <= to).then_some((from, to))
}

/// `GET /host/earnings?from&to&listing`.
pub async fn earnings(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let user = match user_or_sign_in(&ctx, "/host/earnings") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let form: PeriodForm = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let listing: Option<Id> = form.listing.trim().parse().ok();
    let mine = match app.host_listings.mine(user).await {
        Ok(mine) => mine,
        Err(p) => return failed(&req, &app, &ctx, &p),
    };
    let h = ctx.locale.messages().h;
    let mut page = EarningsPage {
        page: ctx.chrome(&req, &app, "page_view"),
        from: form.from.clone(),
        to: form.to.clone(),
        listing,
        listings: mine.iter().map(|l| (l.id, l.title.clone())).collect(),
        error: None,
        figures: None,
        revenue_chart: Chart { bars: Vec::new(), width: 16 },
        occupancy_chart: Chart { bars: Vec::new(), width: 16 },
        months: Vec::new(),
        csv_href: String::new(),
    };
    let Some((from, to)) = period(&form) else {
        page.error = Some(h.bad_period);
        return respond(StatusCode::UNPROCESSABLE_ENTITY, page.render(), &ctx);
    };
    page.from = from.to_string();
    page.to = to.to_string();
    page.csv_href = format!("/host/earnings.csv?from={from}&to={to}");
    if mine.is_empty() {
        return respond(StatusCode::OK, page.render(), &ctx);
    }
    match app.figures.summary(user, from, to, listing).await {
        Ok(summary) => {
            let (figures, revenue, occupancy, months) = page_of(&summary, ctx.locale);
            page.figures = Some(figures);
            page.revenue_chart = revenue;
            page.occupancy_chart = occupancy;
            page.months = months;
            respond(StatusCode::OK, page.render(), &ctx)
        }
        Err(p) if p.status == 422 => {
            page.error = Some(h.bad_period);
            respond(StatusCode::UNPROCESSABLE_ENTITY, page.render(), &ctx)
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

/// `GET /host/earnings.csv?from&to`: the download, per listing and month.
pub async fn csv(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let user = match user_or_sign_in(&ctx, "/host/earnings") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let form: PeriodForm = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let Some((from, to)) = period(&form) else {
        let h = ctx.locale.messages().h;
        return crate::pages::say(&req, &app, &ctx, StatusCode::UNPROCESSABLE_ENTITY, h.earnings, h.bad_period);
    };
    match app.figures.csv(user, from, to).await {
        Ok(csv) => {
            let mut r = HttpResponse::Ok();
            r.content_type("text/csv; charset=utf-8")
                .insert_header(("Content-Disposition", format!("attachment; filename=\"hometrip-{from}-{to}.csv\"")))
                .insert_header(("Cache-Control", "no-store"));
            ctx.set_cookies(&mut r, &[]);
            r.body(csv)
        }
        Err(p) if p.status == 422 => {
            let h = ctx.locale.messages().h;
            crate::pages::say(&req, &app, &ctx, StatusCode::UNPROCESSABLE_ENTITY, h.earnings, h.bad_period)
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_are_written_per_language() {
        assert_eq!(percent(0.4567, Locale::En), "45.7%");
        assert_eq!(percent(0.4567, Locale::Fr), "45,7\u{a0}%");
        assert_eq!(percent(0.0, Locale::En), "0.0%");
    }
}
