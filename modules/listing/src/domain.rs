//! Pure rules of listings: what a valid listing is, what publishing needs, the
//! amenity and property-type catalogues, availability of a stay, and the price
//! of a stay. No I/O.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;
use hometrip_kernel::money::{apply_bps, is_currency};
use hometrip_kernel::FieldError;
use serde::{Deserialize, Serialize};

use crate::api::{Address, Location};

pub use crate::api::{is_amenity, TermsPatch, AMENITIES, CANCELLATION_POLICIES, PROPERTY_TYPES};

/// Upper bound of any price, in minor units: rules out overflow in every sum.
pub const MAX_PRICE: i64 = 100_000_000;
pub const MAX_STAY_NIGHTS: u32 = 365;
/// Nights kept free before and after each stay, at most.
pub const MAX_PREPARATION_DAYS: u32 = 7;
/// The widest calendar range one request reads or writes.
pub const MAX_CALENDAR_DAYS: i64 = 731;

/// Guests, rooms, amenities and booking style.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Details {
    pub max_guests: u32,
    pub bedrooms: u32,
    pub beds: u32,
    pub bathrooms: f64,
    pub amenities: Vec<String>,
    pub instant_book: bool,
    pub cancellation_policy: String,
}

impl Default for Details {
    fn default() -> Self {
        Details {
            max_guests: 2,
            bedrooms: 1,
            beds: 1,
            bathrooms: 1.0,
            amenities: Vec::new(),
            instant_book: false,
            cancellation_policy: "moderate".to_owned(),
        }
    }
}

/// Prices in minor units of `currency`, and discount rules in basis points.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    pub currency: Option<String>,
    pub nightly: Option<i64>,
    pub cleaning_fee: i64,
    pub weekend: Option<i64>,
    pub extra_guest_fee: i64,
    pub guests_included: u32,
    pub weekly_discount_bps: i64,
    pub monthly_discount_bps: i64,
    pub early_bird_days: u32,
    pub early_bird_discount_bps: i64,
    pub last_minute_days: u32,
    pub last_minute_discount_bps: i64,
}

/// Stay rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    pub min_nights: u32,
    pub max_nights: u32,
    pub advance_notice_days: u32,
    pub preparation_days: u32,
    pub booking_window_days: u32,
    /// The listing's IANA time zone: stay dates, check-in and cancellation
    /// cutoffs are in its local time. Rows stored before it existed read as UTC.
    #[serde(default = "utc")]
    pub time_zone: Tz,
    #[serde(default = "default_check_in_time")]
    pub check_in_time: NaiveTime,
    #[serde(default = "default_check_out_time")]
    pub check_out_time: NaiveTime,
}

fn utc() -> Tz {
    Tz::UTC
}

fn default_check_in_time() -> NaiveTime {
    NaiveTime::from_hms_opt(15, 0, 0).unwrap_or(NaiveTime::MIN)
}

fn default_check_out_time() -> NaiveTime {
    NaiveTime::from_hms_opt(11, 0, 0).unwrap_or(NaiveTime::MIN)
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            min_nights: 1,
            max_nights: 30,
            advance_notice_days: 0,
            preparation_days: 0,
            booking_window_days: 365,
            time_zone: utc(),
            check_in_time: default_check_in_time(),
            check_out_time: default_check_out_time(),
        }
    }
}

/// The time zone of a country with one (or one dominant) zone, for listings
/// whose host did not choose one; others fall back to UTC until the host sets it.
pub fn country_time_zone(country: &str) -> Option<Tz> {
    let name = match country {
        "FR" | "MC" => "Europe/Paris",
        "DE" => "Europe/Berlin",
        "ES" => "Europe/Madrid",
        "IT" | "SM" | "VA" => "Europe/Rome",
        "PT" => "Europe/Lisbon",
        "GB" => "Europe/London",
        "IE" => "Europe/Dublin",
        "NL" => "Europe/Amsterdam",
        "BE" => "Europe/Brussels",
        "LU" => "Europe/Luxembourg",
        "CH" => "Europe/Zurich",
        "AT" => "Europe/Vienna",
        "CZ" => "Europe/Prague",
        "PL" => "Europe/Warsaw",
        "HU" => "Europe/Budapest",
        "HR" => "Europe/Zagreb",
        "GR" => "Europe/Athens",
        "DK" => "Europe/Copenhagen",
        "SE" => "Europe/Stockholm",
        "NO" => "Europe/Oslo",
        "FI" => "Europe/Helsinki",
        "IS" => "Atlantic/Reykjavik",
        "MA" => "Africa/Casablanca",
        "JP" => "Asia/Tokyo",
        "TH" => "Asia/Bangkok",
        _ => return None,
    };
    name.parse().ok()
}

/// Everything a host can set, as one value the service loads, patches and stores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Terms {
    pub title: String,
    pub description: String,
    pub property_type: String,
    pub address: Address,
    pub location: Option<Location>,
    pub details: Details,
    pub pricing: Pricing,
    pub rules: Rules,
}

fn text(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = value.trim();
    if v.chars().count() > max {
        errors.push(FieldError::new(field, format!("must be at most {max} characters")));
        return None;
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        errors.push(FieldError::new(field, "must not contain control characters"));
        return None;
    }
    Some(v.to_owned())
}

fn bounded(field: &str, value: u32, min: u32, max: u32, errors: &mut Vec<FieldError>) -> Option<u32> {
    if value < min || value > max {
        errors.push(FieldError::new(field, format!("must be between {min} and {max}")));
        None
    } else {
        Some(value)
    }
}

fn bps(field: &str, value: i64, errors: &mut Vec<FieldError>) -> Option<i64> {
    if !(0..=9_000).contains(&value) {
        errors.push(FieldError::new(field, "must be between 0 and 9000 basis points (90 %)"));
        None
    } else {
        Some(value)
    }
}

/// Checks a price's currency against the listing's, which the first price fixes.
fn price(
    field: &str,
    money: &hometrip_kernel::money::Money,
    currency: &mut Option<String>,
    allow_zero: bool,
    errors: &mut Vec<FieldError>,
) -> Option<i64> {
    if !is_currency(&money.currency) {
        errors.push(FieldError::new(field, "currency must be a supported ISO 4217 code"));
        return None;
    }
    match currency {
        Some(c) if *c != money.currency => {
            errors.push(FieldError::new(field, format!("must be in the listing's currency ({c})")));
            return None;
        }
        _ => {}
    }
    let min = if allow_zero { 0 } else { 1 };
    if money.amount < min || money.amount > MAX_PRICE {
        errors.push(FieldError::new(field, format!("amount must be between {min} and {MAX_PRICE} minor units")));
        return None;
    }
    *currency = Some(money.currency.clone());
    Some(money.amount)
}

/// Applies a patch to `terms`, collecting every problem; on any error `terms`
/// is left unchanged.
pub fn apply_patch(terms: &Terms, patch: &TermsPatch) -> Result<Terms, Vec<FieldError>> {
    let mut t = terms.clone();
    let mut e = Vec::new();
    if let Some(v) = &patch.title {
        if let Some(v) = text("title", v, 120, &mut e) {
            t.title = v;
        }
    }
    if let Some(v) = &patch.description {
        if let Some(v) = text("description", v, 5000, &mut e) {
            t.description = v;
        }
    }
    if let Some(v) = &patch.property_type {
        if PROPERTY_TYPES.contains(&v.as_str()) {
            t.property_type = v.clone();
        } else {
            e.push(FieldError::new("property_type", format!("must be one of {}", PROPERTY_TYPES.join(", "))));
        }
    }
    if let Some(a) = &patch.address {
        let line1 = text("address.line1", &a.line1, 200, &mut e);
        let city = text("address.city", &a.city, 100, &mut e);
        let postal = text("address.postal_code", &a.postal_code, 20, &mut e);
        let neighbourhood = text("address.neighbourhood", &a.neighbourhood, 100, &mut e);
        let country = a.country.trim().to_ascii_uppercase();
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            e.push(FieldError::new("address.country", "must be an ISO 3166-1 alpha-2 code"));
        }
        if let (Some(line1), Some(city), Some(postal_code), Some(neighbourhood)) = (line1, city, postal, neighbourhood)
        {
            t.address = Address { line1, city, neighbourhood, postal_code, country };
        }
    }
    if let Some(l) = patch.location {
        if !(-90.0..=90.0).contains(&l.lat) || !l.lat.is_finite() {
            e.push(FieldError::new("location.lat", "must be between -90 and 90"));
        } else if !(-180.0..=180.0).contains(&l.lon) || !l.lon.is_finite() {
            e.push(FieldError::new("location.lon", "must be between -180 and 180"));
        } else {
            t.location = Some(l);
        }
    }
    let d = &mut t.details;
    if let Some(v) = patch.max_guests.and_then(|v| bounded("max_guests", v, 1, 50, &mut e)) {
        d.max_guests = v;
    }
    if let Some(v) = patch.bedrooms.and_then(|v| bounded("bedrooms", v, 0, 50, &mut e)) {
        d.bedrooms = v;
    }
    if let Some(v) = patch.beds.and_then(|v| bounded("beds", v, 0, 100, &mut e)) {
        d.beds = v;
    }
    if let Some(v) = patch.bathrooms {
        if !(0.0..=50.0).contains(&v) || (v * 2.0).fract() != 0.0 {
            e.push(FieldError::new("bathrooms", "must be between 0 and 50, in steps of 0.5"));
        } else {
            d.bathrooms = v;
        }
    }
    if let Some(list) = &patch.amenities {
        if list.len() > AMENITIES.len() {
            e.push(FieldError::new("amenities", format!("at most {} amenities", AMENITIES.len())));
        } else if let Some(bad) = list.iter().find(|a| !is_amenity(a)) {
            e.push(FieldError::new("amenities", format!("unknown amenity {bad:?}; see GET /api/v1/amenities")));
        } else {
            let mut list = list.clone();
            list.sort();
            list.dedup();
            d.amenities = list;
        }
    }
    if let Some(v) = patch.instant_book {
        d.instant_book = v;
    }
    if let Some(v) = &patch.cancellation_policy {
        if CANCELLATION_POLICIES.contains(&v.as_str()) {
            d.cancellation_policy = v.clone();
        } else {
            e.push(FieldError::new(
                "cancellation_policy",
                format!("must be one of {}", CANCELLATION_POLICIES.join(", ")),
            ));
        }
    }
    let p = &mut t.pricing;
    let mut currency = p.currency.clone();
    if let Some(m) = &patch.nightly_price {
        if let Some(v) = price("nightly_price", m, &mut currency, false, &mut e) {
            p.nightly = Some(v);
        }
    }
    if let Some(m) = &patch.cleaning_fee {
        if let Some(v) = price("cleaning_fee", m, &mut currency, true, &mut e) {
            p.cleaning_fee = v;
        }
    }
    if let Some(m) = &patch.weekend_price {
        if let Some(v) = price("weekend_price", m, &mut currency, false, &mut e) {
            p.weekend = Some(v);
        }
    }
    if let Some(m) = &patch.extra_guest_fee {
        if let Some(v) = price("extra_guest_fee", m, &mut currency, true, &mut e) {
            p.extra_guest_fee = v;
        }
    }
    p.currency = currency;
    if let Some(v) = patch.guests_included.and_then(|v| bounded("guests_included", v, 1, 50, &mut e)) {
        p.guests_included = v;
    }
    for (field, value, slot) in [
        ("weekly_discount_bps", patch.weekly_discount_bps, &mut p.weekly_discount_bps),
        ("monthly_discount_bps", patch.monthly_discount_bps, &mut p.monthly_discount_bps),
        ("early_bird_discount_bps", patch.early_bird_discount_bps, &mut p.early_bird_discount_bps),
        ("last_minute_discount_bps", patch.last_minute_discount_bps, &mut p.last_minute_discount_bps),
    ] {
        if let Some(v) = value.and_then(|v| bps(field, v, &mut e)) {
            *slot = v;
        }
    }
    if let Some(v) = patch.early_bird_days.and_then(|v| bounded("early_bird_days", v, 0, 365, &mut e)) {
        p.early_bird_days = v;
    }
    if let Some(v) = patch.last_minute_days.and_then(|v| bounded("last_minute_days", v, 0, 60, &mut e)) {
        p.last_minute_days = v;
    }
    let r = &mut t.rules;
    if let Some(v) = patch.min_nights.and_then(|v| bounded("min_nights", v, 1, MAX_STAY_NIGHTS, &mut e)) {
        r.min_nights = v;
    }
    if let Some(v) = patch.max_nights.and_then(|v| bounded("max_nights", v, 1, MAX_STAY_NIGHTS, &mut e)) {
        r.max_nights = v;
    }
    if let Some(v) = patch.advance_notice_days.and_then(|v| bounded("advance_notice_days", v, 0, 30, &mut e)) {
        r.advance_notice_days = v;
    }
    if let Some(v) =
        patch.preparation_days.and_then(|v| bounded("preparation_days", v, 0, MAX_PREPARATION_DAYS, &mut e))
    {
        r.preparation_days = v;
    }
    if let Some(v) = patch.booking_window_days.and_then(|v| bounded("booking_window_days", v, 1, 730, &mut e)) {
        r.booking_window_days = v;
    }
    if let Some(v) = &patch.time_zone {
        match v.trim().parse::<Tz>() {
            Ok(tz) => r.time_zone = tz,
            Err(_) => e.push(FieldError::new("time_zone", "must be an IANA time zone such as Europe/Paris")),
        }
    } else if patch.address.is_some() && r.time_zone == Tz::UTC {
        // A new address in a one-zone country sets the zone unless the host chose one.
        if let Some(tz) = country_time_zone(&t.address.country) {
            t.rules.time_zone = tz;
        }
    }
    let r = &mut t.rules;
    for (field, value, slot) in [
        ("check_in_time", &patch.check_in_time, &mut r.check_in_time),
        ("check_out_time", &patch.check_out_time, &mut r.check_out_time),
    ] {
        if let Some(v) = value {
            match NaiveTime::parse_from_str(v.trim(), "%H:%M") {
                Ok(time) => *slot = time,
                Err(_) => e.push(FieldError::new(field, "must be a time of day as HH:MM")),
            }
        }
    }
    if e.is_empty() && t.rules.min_nights > t.rules.max_nights {
        e.push(FieldError::new("min_nights", "must not exceed max_nights"));
    }
    if e.is_empty() && t.pricing.guests_included > t.details.max_guests {
        e.push(FieldError::new("guests_included", "must not exceed max_guests"));
    }
    if e.is_empty() {
        Ok(t)
    } else {
        Err(e)
    }
}

/// What a listing lacks before it can be published (empty: ready).
pub fn missing_for_publish(terms: &Terms, photos: usize) -> Vec<FieldError> {
    let mut missing = Vec::new();
    let mut need = |field: &str, ok: bool, message: &str| {
        if !ok {
            missing.push(FieldError::new(field, message));
        }
    };
    need("title", !terms.title.is_empty(), "a title is required");
    need("description", !terms.description.is_empty(), "a description is required");
    need("property_type", !terms.property_type.is_empty(), "a property type is required");
    need("address", !terms.address.city.is_empty() && !terms.address.country.is_empty(), "an address is required");
    need("location", terms.location.is_some(), "a map location is required");
    need("nightly_price", terms.pricing.nightly.is_some(), "a nightly price is required");
    need("photos", photos > 0, "at least one photo is required");
    missing
}

/// How a night of the calendar is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Booked,
    Blocked,
    External,
}

impl Taken {
    pub fn as_str(self) -> &'static str {
        match self {
            Taken::Booked => "booked",
            Taken::Blocked => "blocked",
            Taken::External => "external",
        }
    }

    pub fn parse(s: &str) -> Taken {
        match s {
            "booked" => Taken::Booked,
            "external" => Taken::External,
            _ => Taken::Blocked,
        }
    }
}

/// Why a stay cannot be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StayError {
    /// A rule of the listing or of the request (answered 422).
    Invalid(FieldError),
    /// A night is taken (answered 409).
    Unavailable(NaiveDate),
}

pub fn nights_between(check_in: NaiveDate, check_out: NaiveDate) -> i64 {
    (check_out - check_in).num_days()
}

/// Checks a stay against the listing's rules and calendar. `taken` holds the
/// taken nights around the stay (at least the preparation margin either side).
pub fn check_stay(
    rules: &Rules,
    max_guests: u32,
    check_in: NaiveDate,
    check_out: NaiveDate,
    guests: u32,
    today: NaiveDate,
    taken: &BTreeMap<NaiveDate, Taken>,
) -> Result<u32, StayError> {
    let invalid = |f: &str, m: String| Err(StayError::Invalid(FieldError::new(f, m)));
    let nights = nights_between(check_in, check_out);
    if nights <= 0 {
        return invalid("check_out", "must be after check_in".into());
    }
    let nights = u32::try_from(nights).unwrap_or(u32::MAX);
    if nights < rules.min_nights {
        return invalid("check_out", format!("the stay must be at least {} nights", rules.min_nights));
    }
    if nights > rules.max_nights {
        return invalid("check_out", format!("the stay must be at most {} nights", rules.max_nights));
    }
    if guests == 0 || guests > max_guests {
        return invalid("guests", format!("must be between 1 and {max_guests}"));
    }
    if check_in < today + Duration::days(i64::from(rules.advance_notice_days)) {
        return invalid("check_in", format!("must be at least {} days from today", rules.advance_notice_days));
    }
    if check_out > today + Duration::days(i64::from(rules.booking_window_days)) {
        return invalid("check_out", format!("the calendar is open {} days ahead", rules.booking_window_days));
    }
    let mut night = check_in;
    while night < check_out {
        if taken.contains_key(&night) {
            return Err(StayError::Unavailable(night));
        }
        night += Duration::days(1);
    }
    // Preparation time: booked stays keep free nights around them.
    let prep = i64::from(rules.preparation_days);
    if prep > 0 {
        let margin_before = (1..=prep).map(|d| check_in - Duration::days(d));
        let margin_after = (0..prep).map(|d| check_out + Duration::days(d));
        if let Some(n) = margin_before.chain(margin_after).find(|n| taken.get(n) == Some(&Taken::Booked)) {
            return Err(StayError::Unavailable(n));
        }
    }
    Ok(nights)
}

/// The price of one night before discounts.
pub fn night_price(p: &Pricing, night: NaiveDate, overrides: &BTreeMap<NaiveDate, i64>) -> i64 {
    if let Some(v) = overrides.get(&night) {
        return *v;
    }
    let weekend = matches!(night.weekday(), Weekday::Fri | Weekday::Sat);
    match (weekend, p.weekend) {
        (true, Some(w)) => w,
        _ => p.nightly.unwrap_or(0),
    }
}

/// Fees set by the platform.
#[derive(Debug, Clone, Copy)]
pub struct PlatformFees {
    pub service_fee_bps: i64,
    pub occupancy_tax_bps: i64,
    /// The discount of the chosen rate (the non-refundable rate's), on the nights.
    pub rate_discount_bps: i64,
}

/// The parts of a stay's price, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breakdown {
    pub nights: u32,
    pub nightly_subtotal: i64,
    pub extra_guest_fee: i64,
    pub discounts: i64,
    pub cleaning_fee: i64,
    pub service_fee: i64,
    pub taxes: i64,
    pub total: i64,
}

/// Prices a stay: nightly prices (overrides, weekend), extra guests, the best
/// length discount (monthly from 28 nights, else weekly from 7) plus an
/// early-bird or last-minute discount, cleaning, the guest service fee on the
/// whole, and occupancy tax on the accommodation. Discounts never exceed the
/// nightly subtotal; the parts add up to `total`.
pub fn price_stay(
    p: &Pricing,
    fees: PlatformFees,
    check_in: NaiveDate,
    check_out: NaiveDate,
    guests: u32,
    today: NaiveDate,
    overrides: &BTreeMap<NaiveDate, i64>,
) -> Breakdown {
    let nights = u32::try_from(nights_between(check_in, check_out).max(0)).unwrap_or(0);
    let nightly_subtotal: i64 =
        (0..i64::from(nights)).map(|d| night_price(p, check_in + Duration::days(d), overrides)).sum();
    let extra_guests = i64::from(guests.saturating_sub(p.guests_included.max(1)));
    let extra_guest_fee = p.extra_guest_fee * extra_guests * i64::from(nights);
    let length_bps = if nights >= 28 && p.monthly_discount_bps > 0 {
        p.monthly_discount_bps
    } else if nights >= 7 {
        p.weekly_discount_bps
    } else {
        0
    };
    let days_ahead = (check_in - today).num_days();
    let timing_bps = if p.last_minute_days > 0 && days_ahead <= i64::from(p.last_minute_days) {
        p.last_minute_discount_bps
    } else if p.early_bird_days > 0 && days_ahead >= i64::from(p.early_bird_days) {
        p.early_bird_discount_bps
    } else {
        0
    };
    let discounts = (apply_bps(nightly_subtotal, length_bps)
        + apply_bps(nightly_subtotal, timing_bps)
        + apply_bps(nightly_subtotal, fees.rate_discount_bps))
    .min(nightly_subtotal);
    let accommodation = nightly_subtotal + extra_guest_fee - discounts;
    let cleaning_fee = p.cleaning_fee;
    let service_fee = apply_bps(accommodation + cleaning_fee, fees.service_fee_bps);
    let taxes = apply_bps(accommodation, fees.occupancy_tax_bps);
    let total = accommodation + cleaning_fee + service_fee + taxes;
    Breakdown { nights, nightly_subtotal, extra_guest_fee, discounts, cleaning_fee, service_fee, taxes, total }
}

/// Checks one calendar range of a host's edit: `from` before `to`, bounded.
pub fn check_range(index: usize, from: NaiveDate, to: NaiveDate) -> Result<(), FieldError> {
    let days = nights_between(from, to);
    if days <= 0 {
        return Err(FieldError::new(format!("ranges[{index}].to"), "must be after from"));
    }
    if days > MAX_CALENDAR_DAYS {
        return Err(FieldError::new(
            format!("ranges[{index}]"),
            format!("at most {MAX_CALENDAR_DAYS} nights per range"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hometrip_kernel::money::Money;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn eur(amount: i64) -> Money {
        Money::new(amount, "EUR")
    }

    fn ready() -> Terms {
        let patch = TermsPatch {
            title: Some("Loft by the canal".into()),
            description: Some("Bright loft".into()),
            property_type: Some("loft".into()),
            address: Some(Address {
                line1: "1 quai de Valmy".into(),
                city: "Paris".into(),
                neighbourhood: "Canal Saint-Martin".into(),
                postal_code: "75010".into(),
                country: "fr".into(),
            }),
            location: Some(Location { lat: 48.87, lon: 2.36 }),
            nightly_price: Some(eur(12_000)),
            cleaning_fee: Some(eur(3_000)),
            ..Default::default()
        };
        apply_patch(&Terms::default(), &patch).unwrap()
    }

    #[test]
    fn patches_validate_every_field_and_change_nothing_on_error() {
        let t = ready();
        assert_eq!(t.address.country, "FR");
        assert_eq!(t.address.neighbourhood, "Canal Saint-Martin");
        assert_eq!(t.pricing.currency.as_deref(), Some("EUR"));
        let bad = TermsPatch {
            title: Some("x".repeat(121)),
            property_type: Some("spaceship".into()),
            location: Some(Location { lat: 200.0, lon: 0.0 }),
            amenities: Some(vec!["wifi".into(), "moat".into()]),
            nightly_price: Some(Money::new(10_000, "USD")),
            bathrooms: Some(1.25),
            weekly_discount_bps: Some(-5),
            max_guests: Some(0),
            ..Default::default()
        };
        let errors = apply_patch(&t, &bad).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "title",
            "property_type",
            "location.lat",
            "amenities",
            "nightly_price",
            "bathrooms",
            "weekly_discount_bps",
            "max_guests",
        ] {
            assert!(fields.contains(&f), "{f} in {fields:?}");
        }
        let too_many = TermsPatch { amenities: Some(vec!["wifi".into(); 1000]), ..Default::default() };
        assert!(apply_patch(&t, &too_many).is_err());
        let inverted = TermsPatch { min_nights: Some(10), max_nights: Some(5), ..Default::default() };
        assert_eq!(apply_patch(&t, &inverted).unwrap_err()[0].field, "min_nights");
        let nan = TermsPatch { location: Some(Location { lat: f64::NAN, lon: 0.0 }), ..Default::default() };
        assert!(apply_patch(&t, &nan).is_err());
        let long = TermsPatch {
            address: Some(Address { neighbourhood: "x".repeat(101), ..t.address.clone() }),
            ..Default::default()
        };
        assert_eq!(apply_patch(&t, &long).unwrap_err()[0].field, "address.neighbourhood");
    }

    #[test]
    fn amenities_are_sorted_and_deduplicated() {
        let t = apply_patch(
            &Terms::default(),
            &TermsPatch { amenities: Some(vec!["wifi".into(), "kitchen".into(), "wifi".into()]), ..Default::default() },
        )
        .unwrap();
        assert_eq!(t.details.amenities, vec!["kitchen", "wifi"]);
    }

    #[test]
    fn publishing_needs_the_essentials_and_a_photo() {
        let missing = missing_for_publish(&Terms::default(), 0);
        let fields: Vec<&str> = missing.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["title", "description", "property_type", "address", "location", "nightly_price", "photos"]
        );
        assert_eq!(missing_for_publish(&ready(), 0).len(), 1);
        assert!(missing_for_publish(&ready(), 1).is_empty());
    }

    #[test]
    fn stays_follow_the_rules_and_the_calendar() {
        let rules = Rules {
            min_nights: 2,
            max_nights: 10,
            advance_notice_days: 1,
            preparation_days: 1,
            booking_window_days: 90,
            ..Rules::default()
        };
        let today = d("2027-01-01");
        let mut taken = BTreeMap::new();
        let ok = |ci: &str, co: &str, taken: &BTreeMap<NaiveDate, Taken>| {
            check_stay(&rules, 4, d(ci), d(co), 2, today, taken)
        };
        assert_eq!(ok("2027-01-10", "2027-01-13", &taken), Ok(3));
        assert!(matches!(ok("2027-01-10", "2027-01-10", &taken), Err(StayError::Invalid(_))));
        assert!(matches!(ok("2027-01-10", "2027-01-11", &taken), Err(StayError::Invalid(_))), "min nights");
        assert!(matches!(ok("2027-01-10", "2027-01-25", &taken), Err(StayError::Invalid(_))), "max nights");
        assert!(matches!(ok("2027-01-01", "2027-01-03", &taken), Err(StayError::Invalid(_))), "advance notice");
        assert!(matches!(ok("2027-03-30", "2027-04-03", &taken), Err(StayError::Invalid(_))), "window");
        assert!(matches!(
            check_stay(&rules, 4, d("2027-01-10"), d("2027-01-12"), 5, today, &taken),
            Err(StayError::Invalid(_))
        ));
        taken.insert(d("2027-01-11"), Taken::Blocked);
        assert_eq!(ok("2027-01-10", "2027-01-13", &taken), Err(StayError::Unavailable(d("2027-01-11"))));
        // Check-out on a blocked night is fine: that night is not stayed.
        assert_eq!(ok("2027-01-09", "2027-01-11", &taken), Ok(2));
        // A booked stay keeps a preparation night on each side; a blocked night does not.
        taken.clear();
        taken.insert(d("2027-01-20"), Taken::Booked);
        assert_eq!(ok("2027-01-17", "2027-01-20", &taken), Err(StayError::Unavailable(d("2027-01-20"))));
        assert_eq!(ok("2027-01-21", "2027-01-23", &taken), Err(StayError::Unavailable(d("2027-01-20"))));
        assert_eq!(ok("2027-01-22", "2027-01-24", &taken), Ok(2));
        assert_eq!(ok("2027-01-16", "2027-01-19", &taken), Ok(3));
    }

    fn pricing() -> Pricing {
        Pricing {
            currency: Some("EUR".into()),
            nightly: Some(10_000),
            cleaning_fee: 2_500,
            weekend: Some(13_000),
            extra_guest_fee: 1_000,
            guests_included: 2,
            weekly_discount_bps: 1_000,
            monthly_discount_bps: 2_500,
            early_bird_days: 60,
            early_bird_discount_bps: 500,
            last_minute_days: 3,
            last_minute_discount_bps: 1_500,
        }
    }

    const FEES: PlatformFees = PlatformFees { service_fee_bps: 1_400, occupancy_tax_bps: 500, rate_discount_bps: 0 };

    #[test]
    fn a_weekend_stay_is_priced_line_by_line() {
        // Thu 2027-01-07 to Sun 2027-01-10: Thu 100, Fri 130, Sat 130 (+ an override on Sat).
        let mut overrides = BTreeMap::new();
        let today = d("2026-12-20");
        let b = price_stay(&pricing(), FEES, d("2027-01-07"), d("2027-01-10"), 3, today, &overrides);
        assert_eq!(b.nights, 3);
        assert_eq!(b.nightly_subtotal, 36_000);
        assert_eq!(b.extra_guest_fee, 3_000);
        assert_eq!(b.discounts, 0);
        assert_eq!(b.service_fee, apply_bps(36_000 + 3_000 + 2_500, 1_400));
        assert_eq!(b.taxes, apply_bps(39_000, 500));
        overrides.insert(d("2027-01-09"), 20_000);
        let b = price_stay(&pricing(), FEES, d("2027-01-07"), d("2027-01-10"), 2, today, &overrides);
        assert_eq!(b.nightly_subtotal, 43_000);
        assert_eq!(b.extra_guest_fee, 0);
    }

    #[test]
    fn length_and_timing_discounts() {
        let none = BTreeMap::new();
        let today = d("2027-01-01");
        let week = price_stay(&pricing(), FEES, d("2027-01-20"), d("2027-01-27"), 2, today, &none);
        assert_eq!(week.discounts, apply_bps(week.nightly_subtotal, 1_000));
        let month = price_stay(&pricing(), FEES, d("2027-01-20"), d("2027-02-17"), 2, today, &none);
        assert_eq!(month.discounts, apply_bps(month.nightly_subtotal, 2_500));
        let early = price_stay(&pricing(), FEES, d("2027-04-01"), d("2027-04-03"), 2, today, &none);
        assert_eq!(early.discounts, apply_bps(early.nightly_subtotal, 500));
        let late = price_stay(&pricing(), FEES, d("2027-01-02"), d("2027-01-04"), 2, today, &none);
        assert_eq!(late.discounts, apply_bps(late.nightly_subtotal, 1_500));
    }

    proptest! {
        #[test]
        fn parts_add_up_and_never_go_negative(
            nightly in 1i64..=MAX_PRICE,
            weekend in proptest::option::of(1i64..=MAX_PRICE),
            cleaning in 0i64..=MAX_PRICE,
            extra in 0i64..=MAX_PRICE,
            included in 1u32..=10,
            guests in 1u32..=50,
            weekly in 0i64..=9_000,
            monthly in 0i64..=9_000,
            early in 0i64..=9_000,
            last in 0i64..=9_000,
            offset in 0i64..=400,
            nights in 1i64..=365,
            service in 0i64..=3_000,
            tax in 0i64..=3_000,
        ) {
            let p = Pricing {
                currency: Some("EUR".into()), nightly: Some(nightly), cleaning_fee: cleaning, weekend,
                extra_guest_fee: extra, guests_included: included, weekly_discount_bps: weekly,
                monthly_discount_bps: monthly, early_bird_days: 30, early_bird_discount_bps: early,
                last_minute_days: 2, last_minute_discount_bps: last,
            };
            let today = d("2027-01-01");
            let check_in = today + Duration::days(offset);
            let b = price_stay(&p, PlatformFees { service_fee_bps: service, occupancy_tax_bps: tax, rate_discount_bps: 0 }, check_in, check_in + Duration::days(nights), guests, today, &BTreeMap::new());
            prop_assert_eq!(i64::from(b.nights), nights);
            prop_assert_eq!(b.total, b.nightly_subtotal + b.extra_guest_fee - b.discounts + b.cleaning_fee + b.service_fee + b.taxes);
            prop_assert!(b.discounts >= 0 && b.discounts <= b.nightly_subtotal);
            prop_assert!(b.service_fee >= 0 && b.taxes >= 0 && b.total >= b.cleaning_fee);
            prop_assert!(b.nightly_subtotal >= nightly.min(weekend.unwrap_or(nightly)) * nights);
        }
    }

    #[test]
    fn calendar_ranges_are_bounded() {
        assert!(check_range(0, d("2027-01-01"), d("2027-01-02")).is_ok());
        assert!(check_range(0, d("2027-01-02"), d("2027-01-02")).is_err());
        assert_eq!(check_range(3, d("2027-01-01"), d("2030-01-01")).unwrap_err().field, "ranges[3]");
    }
}
