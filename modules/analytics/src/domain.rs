//! The analytics module's pure rules: the catalogue of client events and
//! their schemas, the visitor hash, how a stay's money spreads over its
//! nights, and the host figures' definitions.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use hometrip_kernel::error::FieldError;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Most events in one batch.
pub const MAX_BATCH: usize = 100;

/// The kinds of property a client event may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prop {
    /// Text of at most this many characters.
    Text(usize),
    /// A non-negative integer.
    Count,
    /// `YYYY-MM-DD`.
    Date,
}

/// An event name, whether it needs a listing, and the properties it may carry.
struct Schema {
    name: &'static str,
    needs_listing: bool,
    required: &'static [&'static str],
    props: &'static [(&'static str, Prop)],
}

const CATALOGUE: &[Schema] = &[
    Schema {
        name: "page_view",
        needs_listing: false,
        required: &["path"],
        props: &[("path", Prop::Text(500)), ("referrer", Prop::Text(500))],
    },
    Schema {
        name: "search",
        needs_listing: false,
        required: &[],
        props: &[("q", Prop::Text(200)), ("city", Prop::Text(100)), ("results", Prop::Count), ("page", Prop::Count)],
    },
    Schema { name: "listing_view", needs_listing: true, required: &[], props: &[("source", Prop::Text(50))] },
    Schema { name: "search_result_click", needs_listing: true, required: &[], props: &[("position", Prop::Count)] },
    Schema {
        name: "booking_started",
        needs_listing: true,
        required: &[],
        props: &[("check_in", Prop::Date), ("check_out", Prop::Date), ("guests", Prop::Count)],
    },
];

/// The names of the catalogue.
pub fn event_names() -> Vec<&'static str> {
    CATALOGUE.iter().map(|s| s.name).collect()
}

/// A client event as sent.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientEvent {
    pub name: String,
    /// When it happened on the client (default: when received); at most a
    /// day old and five minutes ahead.
    pub at: Option<DateTime<Utc>>,
    pub session_id: Option<String>,
    pub listing_id: Option<hometrip_kernel::Id>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub props: Option<serde_json::Map<String, Value>>,
}

/// Checks event `i` of a batch against its schema; field names say which.
pub fn check_event(i: usize, e: &ClientEvent, now: DateTime<Utc>) -> Vec<FieldError> {
    let at = |f: &str| format!("events[{i}].{f}");
    let mut errors = Vec::new();
    let Some(schema) = CATALOGUE.iter().find(|s| s.name == e.name) else {
        errors.push(FieldError::new(at("name"), format!("not in the catalogue ({})", event_names().join(", "))));
        return errors;
    };
    if schema.needs_listing && e.listing_id.is_none() {
        errors.push(FieldError::new(at("listing_id"), format!("is required for {}", schema.name)));
    }
    if let Some(t) = e.at {
        if t < now - Duration::days(1) || t > now + Duration::minutes(5) {
            errors.push(FieldError::new(at("at"), "must be within the last day"));
        }
    }
    if let Some(s) = &e.session_id {
        if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            errors.push(FieldError::new(at("session_id"), "1 to 64 letters, digits, - or _"));
        }
    }
    let empty = serde_json::Map::new();
    let props = e.props.as_ref().unwrap_or(&empty);
    for required in schema.required {
        if !props.contains_key(*required) {
            errors.push(FieldError::new(at(&format!("props.{required}")), "is required"));
        }
    }
    for (key, value) in props {
        let Some((_, kind)) = schema.props.iter().find(|(k, _)| k == key) else {
            let known: Vec<&str> = schema.props.iter().map(|(k, _)| *k).collect();
            errors.push(FieldError::new(
                at(&format!("props.{key}")),
                format!("is not a property of {} ({})", schema.name, known.join(", ")),
            ));
            continue;
        };
        let ok = match kind {
            Prop::Text(max) => value.as_str().is_some_and(|s| s.chars().count() <= *max),
            Prop::Count => value.as_u64().is_some(),
            Prop::Date => value.as_str().is_some_and(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()),
        };
        if !ok {
            let expected = match kind {
                Prop::Text(max) => format!("text of at most {max} characters"),
                Prop::Count => "a non-negative integer".to_owned(),
                Prop::Date => "a YYYY-MM-DD date".to_owned(),
            };
            errors.push(FieldError::new(at(&format!("props.{key}")), format!("must be {expected}")));
        }
    }
    errors
}

/// A visitor, counted without keeping who: SHA-256 of the day's random salt
/// (deleted once the day is over), the address and the user agent.
pub fn visitor_hash(salt: &str, ip: &str, user_agent: &str) -> String {
    let mut h = Sha256::new();
    for part in [salt, ip, user_agent] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// `total` spread over `nights` nights: equal shares, the remainder a minor
/// unit each on the first nights (so the shares add up to `total`, negative
/// totals alike).
pub fn per_night(total: i64, nights: usize) -> Vec<i64> {
    if nights == 0 {
        return Vec::new();
    }
    let n = nights as i64;
    let (share, rest) = (total.div_euclid(n), total.rem_euclid(n));
    (0..n).map(|i| share + i64::from(i < rest)).collect()
}

/// The nights of a stay.
pub fn nights(check_in: NaiveDate, check_out: NaiveDate) -> Vec<NaiveDate> {
    check_in.iter_days().take_while(|d| *d < check_out).collect()
}

/// What a host's figures are made of over a period (sums of the rollups).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub nights_available: i64,
    pub nights_booked: i64,
    /// Accommodation of the booked nights (after discounts).
    pub accommodation: i64,
    /// What the ledger owes the host for the nights.
    pub revenue: i64,
    pub bookings: i64,
    pub cancellations: i64,
    pub lead_time_days: i64,
    pub stay_nights: i64,
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, o: Totals) {
        self.nights_available += o.nights_available;
        self.nights_booked += o.nights_booked;
        self.accommodation += o.accommodation;
        self.revenue += o.revenue;
        self.bookings += o.bookings;
        self.cancellations += o.cancellations;
        self.lead_time_days += o.lead_time_days;
        self.stay_nights += o.stay_nights;
    }
}

/// `a / b` rounded half away from zero, 0 when `b` is 0 (minor units).
pub fn ratio_minor(a: i64, b: i64) -> i64 {
    if b == 0 {
        return 0;
    }
    let (a, b) = (i128::from(a), i128::from(b));
    let q = (2 * a + b.signum() * a.signum() * b.abs()) / (2 * b);
    i64::try_from(q).unwrap_or(0)
}

fn rounded(x: f64, places: i32) -> f64 {
    let p = 10f64.powi(places);
    (x * p).round() / p
}

pub use crate::api::Figures;

pub fn figures(t: &Totals, currency: &str) -> Figures {
    use hometrip_kernel::money::Money;
    let per_booking = |x: i64| if t.bookings == 0 { 0.0 } else { rounded(x as f64 / t.bookings as f64, 2) };
    Figures {
        nights_available: t.nights_available,
        nights_booked: t.nights_booked,
        occupancy_rate: if t.nights_available == 0 {
            0.0
        } else {
            rounded(t.nights_booked as f64 / t.nights_available as f64, 4)
        },
        adr: Money::new(ratio_minor(t.accommodation, t.nights_booked), currency),
        revpar: Money::new(ratio_minor(t.accommodation, t.nights_available), currency),
        revenue: Money::new(t.revenue, currency),
        bookings: t.bookings,
        cancellations: t.cancellations,
        average_lead_time_days: per_booking(t.lead_time_days),
        average_length_of_stay: per_booking(t.stay_nights),
    }
}

/// Nights a listing is on the market in `[from, to]` (inclusive): the days
/// between its creation and its deletion, less the nights its host blocked.
pub fn available_nights(
    from: NaiveDate,
    to: NaiveDate,
    created: NaiveDate,
    deleted: Option<NaiveDate>,
    blocked_in_period: i64,
) -> i64 {
    let start = from.max(created);
    let end = match deleted {
        Some(d) => to.min(d - Duration::days(1)),
        None => to,
    };
    if end < start {
        return 0;
    }
    ((end - start).num_days() + 1 - blocked_in_period).max(0)
}

/// The first day of each month touching `[from, to]`, with the month's part of it.
pub fn months(from: NaiveDate, to: NaiveDate) -> Vec<(String, NaiveDate, NaiveDate)> {
    use chrono::Datelike as _;
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let next = if start.month() == 12 {
            NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)
        }
        .unwrap_or(to + Duration::days(1));
        let end = to.min(next - Duration::days(1));
        out.push((format!("{:04}-{:02}", start.year(), start.month()), start, end));
        start = next;
    }
    out
}

/// A period cut where months begin: the whole months it covers (their
/// first days, first and last) and the days at its ends outside them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthSplit {
    pub months: Option<(NaiveDate, NaiveDate)>,
    pub days: Vec<(NaiveDate, NaiveDate)>,
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

fn next_month(d: NaiveDate) -> NaiveDate {
    d.checked_add_months(chrono::Months::new(1)).map_or(d, first_of_month)
}

/// `[from, to]` (both included) as whole months and the days around them.
pub fn whole_months(from: NaiveDate, to: NaiveDate) -> MonthSplit {
    if from > to {
        return MonthSplit { months: None, days: Vec::new() };
    }
    // Whole months are `[start, end)`.
    let start = if from.day() == 1 { from } else { next_month(first_of_month(from)) };
    let after_to = to + Duration::days(1);
    let end = if after_to.day() == 1 { after_to } else { first_of_month(to) };
    if start >= end {
        return MonthSplit { months: None, days: vec![(from, to)] };
    }
    let mut days = Vec::new();
    if from < start {
        days.push((from, start - Duration::days(1)));
    }
    if end <= to {
        days.push((end, to));
    }
    MonthSplit { months: Some((start, first_of_month(end - Duration::days(1)))), days }
}

/// The first day of `day`'s month (the key of `platform_monthly`).
pub fn month_of(day: NaiveDate) -> NaiveDate {
    first_of_month(day)
}

/// The client-side steps of the funnel, in order: the first time each
/// session reaches each is kept, for the median times between them.
pub const FUNNEL_STEPS: [&str; 3] = ["search", "listing_view", "booking_started"];

/// The median of durations, in minutes (none without any).
pub fn median_minutes(mut minutes: Vec<i64>) -> Option<f64> {
    if minutes.is_empty() {
        return None;
    }
    minutes.sort_unstable();
    let n = minutes.len();
    Some(if n % 2 == 1 { minutes[n / 2] as f64 } else { (minutes[n / 2 - 1] + minutes[n / 2]) as f64 / 2.0 })
}

/// A rate between two counts of the funnel, 4 decimals (none when nothing came in).
pub fn conversion(from: i64, to: i64) -> Option<f64> {
    (from > 0).then(|| rounded(to as f64 / from as f64, 4))
}

/// Counters by metric name, as the overview shows them.
pub type Counts = BTreeMap<String, i64>;

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: Value) -> ClientEvent {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn events_are_checked_against_their_schema() {
        let now = Utc::now();
        let ok = event(serde_json::json!({"name": "search", "props": {"q": "lyon", "results": 12}}));
        assert!(check_event(0, &ok, now).is_empty());
        let unknown = event(serde_json::json!({"name": "purchase"}));
        assert_eq!(check_event(3, &unknown, now)[0].field, "events[3].name");
        let no_listing = event(serde_json::json!({"name": "listing_view"}));
        assert_eq!(check_event(0, &no_listing, now)[0].field, "events[0].listing_id");
        let bad = event(serde_json::json!({"name": "search", "props": {"results": -1, "colour": "red"}}));
        let fields: Vec<String> = check_event(1, &bad, now).into_iter().map(|e| e.field).collect();
        assert_eq!(fields, vec!["events[1].props.colour", "events[1].props.results"]);
        let page = event(serde_json::json!({"name": "page_view"}));
        assert_eq!(check_event(0, &page, now)[0].field, "events[0].props.path");
        let old = event(serde_json::json!({"name": "search", "at": "2020-01-01T00:00:00Z"}));
        assert_eq!(check_event(0, &old, now)[0].field, "events[0].at");
    }

    #[test]
    fn money_spreads_over_nights_to_the_minor_unit() {
        assert_eq!(per_night(10_001, 3), vec![3_334, 3_334, 3_333]);
        assert_eq!(per_night(-10_001, 3).iter().sum::<i64>(), -10_001);
        assert_eq!(per_night(5, 0), Vec::<i64>::new());
    }

    #[test]
    fn the_hosts_figures_follow_their_definitions() {
        // 38 nights on the market, 5 booked at 100.00: occupancy 5/38, ADR 100, RevPAR 13.16.
        let t = Totals {
            nights_available: 38,
            nights_booked: 5,
            accommodation: 50_000,
            revenue: 54_320,
            bookings: 2,
            cancellations: 1,
            lead_time_days: 66,
            stay_nights: 5,
        };
        let f = figures(&t, "EUR");
        assert_eq!(f.occupancy_rate, 0.1316);
        assert_eq!((f.adr.amount, f.revpar.amount, f.revenue.amount), (10_000, 1_316, 54_320));
        assert_eq!((f.average_lead_time_days, f.average_length_of_stay), (33.0, 2.5));
        assert_eq!(figures(&Totals::default(), "EUR").occupancy_rate, 0.0);
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(available_nights(d("2027-01-01"), d("2027-01-31"), d("2027-01-11"), None, 3), 18);
        assert_eq!(available_nights(d("2027-01-01"), d("2027-01-31"), d("2026-01-01"), Some(d("2027-01-06")), 0), 5);
        let m = months(d("2027-01-20"), d("2027-03-02"));
        assert_eq!(m.iter().map(|(k, _, _)| k.as_str()).collect::<Vec<_>>(), vec!["2027-01", "2027-02", "2027-03"]);
        assert_eq!((m[1].1, m[1].2), (d("2027-02-01"), d("2027-02-28")));
        assert_eq!(median_minutes(vec![5, 1, 3, 10]), Some(4.0));
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            whole_months(d("2026-01-15"), d("2026-04-10")),
            MonthSplit {
                months: Some((d("2026-02-01"), d("2026-03-01"))),
                days: vec![(d("2026-01-15"), d("2026-01-31")), (d("2026-04-01"), d("2026-04-10"))]
            }
        );
        assert_eq!(
            whole_months(d("2026-02-01"), d("2026-02-28")),
            MonthSplit { months: Some((d("2026-02-01"), d("2026-02-01"))), days: vec![] }
        );
        assert_eq!(
            whole_months(d("2026-02-03"), d("2026-02-20")),
            MonthSplit { months: None, days: vec![(d("2026-02-03"), d("2026-02-20"))] }
        );
        assert_eq!(
            whole_months(d("2025-12-31"), d("2026-01-31")),
            MonthSplit {
                months: Some((d("2026-01-01"), d("2026-01-01"))),
                days: vec![(d("2025-12-31"), d("2025-12-31"))]
            }
        );
        assert_eq!(ratio_minor(7, 2), 4);
        assert_eq!(ratio_minor(-7, 2), -4);
    }

    #[test]
    fn the_visitor_hash_changes_with_the_salt() {
        let a = visitor_hash("s1", "203.0.113.9", "Firefox");
        assert_eq!(a.len(), 32);
        assert_ne!(a, visitor_hash("s2", "203.0.113.9", "Firefox"));
        assert_eq!(a, visitor_hash("s1", "203.0.113.9", "Firefox"));
    }
}
