//! What the booking pages show of a stay: its price line by line, what a
//! cancellation brings back when, a listing's months with the nights taken,
//! and a booking as a line of a list.

use chrono::{Datelike, Duration, NaiveDate};
use hometrip_booking::api::{Booking, BookingStatus, RefundStep};
use hometrip_kernel::money::Money;
use hometrip_listing::api::Quote;

use crate::format;
use crate::locale::Locale;

/// A price, line by line.
pub struct PriceView {
    pub lines: Vec<(String, String)>,
    pub total: String,
}

pub fn price(q: &Quote, locale: Locale) -> PriceView {
    let t = locale.messages().t;
    let mut lines = vec![(format!("{} {}", q.nights, t.nights), format::money(&q.nightly_subtotal, locale))];
    let mut add = |label: &str, m: &Money, negative: bool| {
        if m.amount != 0 {
            let shown = format::money(m, locale);
            lines.push((label.to_owned(), if negative && m.amount > 0 { format!("−{shown}") } else { shown }));
        }
    };
    add(t.extra_guests, &q.extra_guest_fee, false);
    add(t.discounts, &q.discounts, true);
    add(locale.messages().cleaning_fee, &q.cleaning_fee, false);
    add(t.service_fee, &q.service_fee, false);
    add(t.taxes, &q.taxes, false);
    PriceView { lines, total: format::money(&q.total, locale) }
}

/// Each step of a refund timeline as a sentence, in the listing's time zone.
pub fn refunds(steps: &[RefundStep], time_zone: &str, locale: Locale) -> Vec<String> {
    let t = locale.messages().t;
    let when = |at| format::instant(at, time_zone, locale);
    steps
        .iter()
        .map(|s| {
            let amount = format::money(&s.refund, locale);
            match s.until {
                _ if s.refund.amount == 0 => format!("{} {}", t.refund_none_from, when(s.from)),
                Some(until) if s.kind == "full" => format!("{} {} ({amount})", t.refund_full_until, when(until)),
                Some(until) => format!("{amount} {} {}", t.refund_partial_until, when(until)),
                None => format!("{amount} {} {}", t.refund_partial_from, when(s.from)),
            }
        })
        .collect()
}

/// One day of a calendar month.
pub struct Day {
    pub n: u32,
    pub taken: bool,
    pub past: bool,
    /// The date as the language writes it (for screen readers).
    pub label: String,
}

pub struct Month {
    pub title: String,
    /// Weeks from Monday; `None` before the 1st and after the last day.
    pub weeks: Vec<[Option<Day>; 7]>,
}

/// The first day of the month of `d`, and of the month `n` months later.
pub fn first_of_month(d: NaiveDate, n: u32) -> NaiveDate {
    let months = d.year() * 12 + d.month0() as i32 + n as i32;
    NaiveDate::from_ymd_opt(months.div_euclid(12), months.rem_euclid(12) as u32 + 1, 1).unwrap_or(d)
}

/// `count` months from the month of `start`, the `taken` nights marked.
pub fn months(start: NaiveDate, count: u32, taken: &[NaiveDate], today: NaiveDate, locale: Locale) -> Vec<Month> {
    (0..count)
        .map(|i| {
            let first = first_of_month(start, i);
            let next = first_of_month(start, i + 1);
            let mut weeks = Vec::new();
            let mut week: [Option<Day>; 7] = Default::default();
            let mut day = first;
            while day < next {
                let column = day.weekday().num_days_from_monday() as usize;
                week[column] = Some(Day {
                    n: day.day(),
                    taken: taken.contains(&day),
                    past: day < today,
                    label: format::date(day, locale),
                });
                if column == 6 {
                    weeks.push(std::mem::take(&mut week));
                }
                day += Duration::days(1);
            }
            if week.iter().any(Option::is_some) {
                weeks.push(week);
            }
            Month { title: format::month(first, locale), weeks }
        })
        .collect()
}

/// A booking as a list shows it.
pub struct BookingLine {
    pub id: String,
    pub listing_id: String,
    pub title: String,
    pub dates: String,
    pub guests: u32,
    pub status: &'static str,
    pub total: String,
    pub pending_host: bool,
    pub confirmed: bool,
    pub respond_by: Option<String>,
}

pub fn status_label(status: BookingStatus, locale: Locale) -> &'static str {
    let t = locale.messages().t;
    t.statuses.iter().find(|(code, _)| *code == status.as_str()).map_or(status.as_str(), |(_, label)| label)
}

pub fn stay_dates(b: &Booking, locale: Locale) -> String {
    format!("{} – {}", format::date(b.check_in, locale), format::date(b.check_out, locale))
}

pub fn line(b: &Booking, title: String, locale: Locale) -> BookingLine {
    BookingLine {
        id: b.id.to_string(),
        listing_id: b.listing_id.to_string(),
        title,
        dates: stay_dates(b, locale),
        guests: b.guests,
        status: status_label(b.status, locale),
        total: format::money(&b.price.total, locale),
        pending_host: b.status == BookingStatus::PendingHost,
        confirmed: b.status == BookingStatus::Confirmed,
        respond_by: b.respond_by.map(|at| format::instant(at, &b.time_zone, locale)),
    }
}

/// Whether a booking is still ahead (or under way) rather than over.
pub fn upcoming(status: BookingStatus) -> bool {
    matches!(status, BookingStatus::PendingPayment | BookingStatus::PendingHost | BookingStatus::Confirmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn months_start_on_monday_and_mark_taken_nights() {
        // December 2026 starts on a Tuesday and has 31 days.
        let shown = months(day(2026, 12, 20), 2, &[day(2026, 12, 24)], day(2026, 12, 6), Locale::En);
        assert_eq!(shown[0].title, "December 2026");
        assert_eq!(shown[1].title, "January 2027");
        let december = &shown[0].weeks;
        assert!(december[0][0].is_none());
        assert_eq!(december[0][1].as_ref().map(|d| d.n), Some(1));
        assert_eq!(december.len(), 5);
        let cells: Vec<&Day> = december.iter().flatten().flatten().collect();
        assert_eq!(cells.len(), 31);
        assert!(cells.iter().find(|d| d.n == 24).is_some_and(|d| d.taken));
        assert_eq!(cells.iter().filter(|d| d.taken).count(), 1);
        assert!(cells.iter().find(|d| d.n == 5).is_some_and(|d| d.past));
        assert!(!cells.iter().find(|d| d.n == 6).is_some_and(|d| d.past));
    }

    #[test]
    fn month_arithmetic_crosses_years() {
        assert_eq!(first_of_month(day(2026, 11, 30), 2), day(2027, 1, 1));
        assert_eq!(first_of_month(day(2026, 1, 31), 0), day(2026, 1, 1));
    }
}
