//! Money and dates as each language writes them.

use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use hometrip_kernel::money::{Money, CURRENCIES};
use hometrip_kernel::time::Instant;

use crate::locale::Locale;

fn symbol(currency: &str) -> Option<&'static str> {
    match currency {
        "EUR" => Some("€"),
        "USD" => Some("$"),
        "GBP" => Some("£"),
        "JPY" => Some("¥"),
        _ => None,
    }
}

/// `€1,234.50` in English, `1 234,50 €` in French (narrow no-break spaces);
/// whole amounts without decimals (`€120`, `120 €`).
pub fn money(m: &Money, locale: Locale) -> String {
    let exponent = CURRENCIES.iter().find(|(c, _)| *c == m.currency).map_or(2, |(_, e)| *e);
    let unit = 10_i64.pow(exponent);
    let unit = unit.unsigned_abs();
    let (whole, fraction) = (m.amount.unsigned_abs() / unit, m.amount.unsigned_abs() % unit);
    let (group, decimal) = match locale {
        Locale::En => (',', '.'),
        Locale::Fr => ('\u{202f}', ','),
    };
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(group);
        }
        grouped.push(d);
    }
    if fraction != 0 {
        grouped.push(decimal);
        grouped.push_str(&format!("{fraction:0width$}", width = exponent as usize));
    }
    let sign = if m.amount < 0 { "-" } else { "" };
    match (locale, symbol(&m.currency)) {
        (Locale::En, Some(s)) => format!("{sign}{s}{grouped}"),
        (Locale::En, None) => format!("{sign}{} {grouped}", m.currency),
        (Locale::Fr, s) => format!("{sign}{grouped}\u{a0}{}", s.unwrap_or(&m.currency)),
    }
}

const MONTHS_EN: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const MONTHS_FR: [&str; 12] =
    ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."];

/// `Dec 6, 2026` in English, `6 déc. 2026` in French.
pub fn date(d: NaiveDate, locale: Locale) -> String {
    let month = d.month0() as usize;
    match locale {
        Locale::En => format!("{} {}, {}", MONTHS_EN[month], d.day(), d.year()),
        Locale::Fr => format!("{} {} {}", d.day(), MONTHS_FR[month], d.year()),
    }
}

const MONTH_NAMES_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTH_NAMES_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// `December 2026`, `décembre 2026`: a calendar's heading.
pub fn month(first: NaiveDate, locale: Locale) -> String {
    let names = match locale {
        Locale::En => MONTH_NAMES_EN,
        Locale::Fr => MONTH_NAMES_FR,
    };
    format!("{} {}", names[first.month0() as usize], first.year())
}

/// An instant on the wall clock of `time_zone` (UTC when unknown), with its
/// abbreviation: `Dec 6, 2026, 15:00 CET`.
pub fn instant(at: Instant, time_zone: &str, locale: Locale) -> String {
    let tz = time_zone.parse::<Tz>().unwrap_or(Tz::UTC);
    let local = at.0.with_timezone(&tz);
    format!("{}, {}", date(local.date_naive(), locale), local.format("%H:%M %Z"))
}

/// A rating out of 5 with one decimal, as the language writes it.
pub fn rating(r: f64, locale: Locale) -> String {
    let shown = format!("{r:.1}");
    match locale {
        Locale::En => shown,
        Locale::Fr => shown.replace('.', ","),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_dates_per_language() {
        let m = Money::new(123_450, "EUR");
        assert_eq!(money(&m, Locale::En), "€1,234.50");
        assert_eq!(money(&m, Locale::Fr), "1\u{202f}234,50\u{a0}€");
        assert_eq!(money(&Money::new(12_000, "EUR"), Locale::En), "€120");
        assert_eq!(money(&Money::new(5_000, "JPY"), Locale::Fr), "5\u{202f}000\u{a0}¥");
        assert_eq!(money(&Money::new(1_005, "CHF"), Locale::En), "CHF 10.05");
        let d = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        assert_eq!(date(d, Locale::En), "Dec 6, 2026");
        assert_eq!(date(d, Locale::Fr), "6 déc. 2026");
        assert_eq!(rating(4.86, Locale::Fr), "4,9");
        assert_eq!(month(d, Locale::Fr), "décembre 2026");
        let at = Instant(d.and_hms_opt(14, 0, 0).unwrap().and_utc());
        assert_eq!(instant(at, "Europe/Paris", Locale::En), "Dec 6, 2026, 15:00 CET");
        assert_eq!(instant(at, "Nowhere/Else", Locale::Fr), "6 déc. 2026, 14:00 UTC");
    }
}
