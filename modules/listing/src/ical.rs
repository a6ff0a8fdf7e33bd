//! iCalendar (RFC 5545) export and import of taken nights, with the
//! `icalendar` crate. Pure: no I/O.

use std::collections::BTreeSet;

use chrono::{Duration, NaiveDate, Utc};
use icalendar::{Calendar, CalendarComponent, Component, DatePerhapsTime, EventLike};

use hometrip_kernel::Id;

/// Longest stay a feed event may block (longer ones are cut).
const MAX_EVENT_NIGHTS: i64 = 366;

/// One all-day event per run of consecutive nights with the same status.
pub fn export(listing_id: Id, title: &str, nights: &[(NaiveDate, String)]) -> String {
    let mut calendar = Calendar::new();
    calendar.name(&format!("HomeTrip – {title}"));
    let mut runs: Vec<(NaiveDate, NaiveDate, &str)> = Vec::new();
    for (night, status) in nights {
        match runs.last_mut() {
            Some((_, end, s)) if *end == *night && *s == status.as_str() => *end = *night + Duration::days(1),
            _ => runs.push((*night, *night + Duration::days(1), status.as_str())),
        }
    }
    let stamp = Utc::now();
    for (start, end, status) in runs {
        let summary = if status == "booked" { "Reserved" } else { "Not available" };
        calendar.push(
            icalendar::Event::new()
                .uid(&format!("{listing_id}-{start}-{status}@hometrip"))
                .summary(summary)
                .starts(start)
                .ends(end)
                .timestamp(stamp)
                .done(),
        );
    }
    calendar.done().to_string()
}

/// The date of a DATE or DATE-TIME (local times taken as they are written).
fn date_of(d: DatePerhapsTime) -> NaiveDate {
    d.date_naive()
}

/// The nights an external feed blocks within `[from, to)`. All-day events block
/// from DTSTART up to DTEND (exclusive), as Airbnb, Vrbo and Booking.com publish
/// them; timed events block the nights they span; cancelled events none.
pub fn import(text: &str, from: NaiveDate, to: NaiveDate) -> Result<BTreeSet<NaiveDate>, String> {
    if !text.contains("BEGIN:VCALENDAR") {
        return Err("not an iCalendar feed (no VCALENDAR)".to_owned());
    }
    let calendar: Calendar = text.parse().map_err(|e: String| format!("unreadable iCalendar: {e}"))?;
    let mut nights = BTreeSet::new();
    for component in &calendar.components {
        let CalendarComponent::Event(event) = component else { continue };
        if event.property_value("STATUS").is_some_and(|s| s.eq_ignore_ascii_case("CANCELLED")) {
            continue;
        }
        let Some(start) = event.get_start().map(date_of) else { continue };
        let end = event.get_end().map(date_of).filter(|e| *e > start).unwrap_or(start + Duration::days(1));
        let end = end.min(start + Duration::days(MAX_EVENT_NIGHTS));
        let mut night = start.max(from);
        while night < end && night < to {
            nights.insert(night);
            night += Duration::days(1);
        }
    }
    Ok(nights)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    const AIRBNB: &str = "BEGIN:VCALENDAR\r\nPRODID;X-RICAL-TZSOURCE=TZINFO:-//Airbnb Inc//Hosting Calendar 0.8.8//EN\r\nCALSCALE:GREGORIAN\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nDTEND;VALUE=DATE:20270115\r\nDTSTART;VALUE=DATE:20270112\r\nUID:1418fb94e984-8a1b9b2c5e6d@airbnb.com\r\nSUMMARY:Reserved\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nDTEND;VALUE=DATE:20270201\r\nDTSTART;VALUE=DATE:20270131\r\nUID:7f1e-airbnb@airbnb.com\r\nSUMMARY:Airbnb (Not available)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn airbnb_style_all_day_events_block_their_nights() {
        let nights = import(AIRBNB, d("2027-01-01"), d("2028-01-01")).unwrap();
        let expected: BTreeSet<_> = [d("2027-01-12"), d("2027-01-13"), d("2027-01-14"), d("2027-01-31")].into();
        assert_eq!(nights, expected);
    }

    #[test]
    fn timed_cancelled_and_out_of_range_events() {
        let feed = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VEVENT\nUID:a\nDTSTART:20270305T150000Z\nDTEND:20270307T100000Z\nEND:VEVENT\nBEGIN:VEVENT\nUID:b\nSTATUS:CANCELLED\nDTSTART;VALUE=DATE:20270310\nDTEND;VALUE=DATE:20270312\nEND:VEVENT\nBEGIN:VEVENT\nUID:c\nDTSTART;VALUE=DATE:20261220\nDTEND;VALUE=DATE:20270102\nEND:VEVENT\nEND:VCALENDAR\n";
        let nights = import(feed, d("2027-01-01"), d("2027-12-31")).unwrap();
        let expected: BTreeSet<_> = [d("2027-01-01"), d("2027-03-05"), d("2027-03-06")].into();
        assert_eq!(nights, expected);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(import("<html>Service unavailable</html>", d("2027-01-01"), d("2028-01-01")).is_err());
        assert!(import("", d("2027-01-01"), d("2028-01-01")).is_err());
    }

    #[test]
    fn export_groups_runs_and_parses_back() {
        let id = Id::new();
        let nights = vec![
            (d("2027-02-01"), "booked".to_owned()),
            (d("2027-02-02"), "booked".to_owned()),
            (d("2027-02-03"), "blocked".to_owned()),
            (d("2027-02-10"), "blocked".to_owned()),
        ];
        let text = export(id, "Loft", &nights);
        assert_eq!(text.matches("BEGIN:VEVENT").count(), 3);
        let back = import(&text, d("2027-01-01"), d("2028-01-01")).unwrap();
        let expected: BTreeSet<_> = nights.iter().map(|(n, _)| *n).collect();
        assert_eq!(back, expected);
    }
}
