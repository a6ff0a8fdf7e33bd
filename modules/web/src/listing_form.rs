//! The host's listing form: every field of a listing as the browser sends
//! it (text), read into the listing module's `TermsPatch`, and filled back
//! from a listing. Amounts are typed in major units (`89.50`), discounts in
//! percent; the listing module checks everything else.

use hometrip_kernel::money::{Money, CURRENCIES};
use hometrip_kernel::FieldError;
use hometrip_listing::api::{Address, Listing, Location, TermsPatch};

use crate::locale::Locale;

/// What the form holds, as typed.
#[derive(Debug, Clone, Default)]
pub struct ListingForm {
    pub title: String,
    pub description: String,
    pub property_type: String,
    pub line1: String,
    pub city: String,
    pub neighbourhood: String,
    pub postal_code: String,
    pub country: String,
    pub lat: String,
    pub lon: String,
    pub max_guests: String,
    pub bedrooms: String,
    pub beds: String,
    pub bathrooms: String,
    pub amenities: Vec<String>,
    pub currency: String,
    pub nightly_price: String,
    pub weekend_price: String,
    pub cleaning_fee: String,
    pub extra_guest_fee: String,
    pub guests_included: String,
    pub weekly_discount: String,
    pub monthly_discount: String,
    pub early_bird_days: String,
    pub early_bird_discount: String,
    pub last_minute_days: String,
    pub last_minute_discount: String,
    pub instant_book: bool,
    pub cancellation_policy: String,
    pub min_nights: String,
    pub max_nights: String,
    pub advance_notice_days: String,
    pub preparation_days: String,
    pub booking_window_days: String,
    pub time_zone: String,
    pub check_in_time: String,
    pub check_out_time: String,
}

fn exponent(currency: &str) -> u32 {
    CURRENCIES.iter().find(|(c, _)| *c == currency).map_or(2, |(_, e)| *e)
}

/// `89.50` or `89,50` in minor units of a currency of `exponent` decimals.
pub fn parse_amount(text: &str, exponent: u32) -> Option<i64> {
    let text = text.trim().replace([' ', '\u{a0}', '\u{202f}'], "");
    let (whole, fraction) = match text.split_once(['.', ',']) {
        Some((w, f)) => (w, f),
        None => (text.as_str(), ""),
    };
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > exponent as usize {
        return None;
    }
    let unit = 10_i64.pow(exponent);
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 =
        if fraction.is_empty() { 0 } else { format!("{fraction:0<width$}", width = exponent as usize).parse().ok()? };
    whole.checked_mul(unit)?.checked_add(fraction)
}

/// Minor units written back as the form takes them (`89.50`, `120`).
pub fn amount_text(amount: i64, currency: &str) -> String {
    let e = exponent(currency);
    let unit = 10_i64.pow(e);
    match amount % unit {
        0 => (amount / unit).to_string(),
        f => format!("{}.{:0width$}", amount / unit, f, width = e as usize),
    }
}

/// Where a problem's field lands in the form (`address.city` is `city`).
pub fn form_field(api_field: &str) -> &str {
    match api_field {
        "location.lat" | "location" => "lat",
        "location.lon" => "lon",
        "weekly_discount_bps" => "weekly_discount",
        "monthly_discount_bps" => "monthly_discount",
        "early_bird_discount_bps" => "early_bird_discount",
        "last_minute_discount_bps" => "last_minute_discount",
        f => f.strip_prefix("address.").unwrap_or(f).split('.').next().unwrap_or(f),
    }
}

impl ListingForm {
    /// A new listing's form: the module's defaults, in the host's currency.
    pub fn new_listing(currency: &str) -> ListingForm {
        ListingForm {
            property_type: "apartment".to_owned(),
            currency: currency.to_owned(),
            max_guests: "2".to_owned(),
            bedrooms: "1".to_owned(),
            beds: "1".to_owned(),
            bathrooms: "1".to_owned(),
            cancellation_policy: "moderate".to_owned(),
            min_nights: "1".to_owned(),
            ..ListingForm::default()
        }
    }

    pub fn of(l: &Listing) -> ListingForm {
        let currency =
            l.nightly_price.as_ref().or(l.cleaning_fee.as_ref()).map_or("EUR".to_owned(), |m| m.currency.clone());
        let money = |m: &Option<Money>| m.as_ref().map(|m| amount_text(m.amount, &m.currency)).unwrap_or_default();
        let percent = |bps: i64| if bps == 0 { String::new() } else { amount_text(bps, "EUR") };
        let count = |n: u32| if n == 0 { String::new() } else { n.to_string() };
        ListingForm {
            title: l.title.clone(),
            description: l.description.clone(),
            property_type: l.property_type.clone(),
            line1: l.address.line1.clone(),
            city: l.address.city.clone(),
            neighbourhood: l.address.neighbourhood.clone(),
            postal_code: l.address.postal_code.clone(),
            country: l.address.country.clone(),
            lat: l.location.map(|p| p.lat.to_string()).unwrap_or_default(),
            lon: l.location.map(|p| p.lon.to_string()).unwrap_or_default(),
            max_guests: l.max_guests.to_string(),
            bedrooms: l.bedrooms.to_string(),
            beds: l.beds.to_string(),
            bathrooms: l.bathrooms.to_string(),
            amenities: l.amenities.clone(),
            currency,
            nightly_price: money(&l.nightly_price),
            weekend_price: money(&l.weekend_price),
            cleaning_fee: money(&l.cleaning_fee),
            extra_guest_fee: money(&l.extra_guest_fee),
            guests_included: l.guests_included.to_string(),
            weekly_discount: percent(l.weekly_discount_bps),
            monthly_discount: percent(l.monthly_discount_bps),
            early_bird_days: count(l.early_bird_days),
            early_bird_discount: percent(l.early_bird_discount_bps),
            last_minute_days: count(l.last_minute_days),
            last_minute_discount: percent(l.last_minute_discount_bps),
            instant_book: l.instant_book,
            cancellation_policy: l.cancellation_policy.clone(),
            min_nights: l.min_nights.to_string(),
            max_nights: l.max_nights.to_string(),
            advance_notice_days: l.advance_notice_days.to_string(),
            preparation_days: l.preparation_days.to_string(),
            booking_window_days: l.booking_window_days.to_string(),
            time_zone: l.time_zone.clone(),
            check_in_time: l.check_in_time.clone(),
            check_out_time: l.check_out_time.clone(),
        }
    }

    /// The form of a POST body (`amenity` repeats).
    pub fn from_pairs(pairs: &[(String, String)]) -> ListingForm {
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default();
        ListingForm {
            title: get("title"),
            description: get("description"),
            property_type: get("property_type"),
            line1: get("line1"),
            city: get("city"),
            neighbourhood: get("neighbourhood"),
            postal_code: get("postal_code"),
            country: get("country"),
            lat: get("lat"),
            lon: get("lon"),
            max_guests: get("max_guests"),
            bedrooms: get("bedrooms"),
            beds: get("beds"),
            bathrooms: get("bathrooms"),
            amenities: pairs.iter().filter(|(k, _)| k == "amenity").map(|(_, v)| v.clone()).collect(),
            currency: get("currency"),
            nightly_price: get("nightly_price"),
            weekend_price: get("weekend_price"),
            cleaning_fee: get("cleaning_fee"),
            extra_guest_fee: get("extra_guest_fee"),
            guests_included: get("guests_included"),
            weekly_discount: get("weekly_discount"),
            monthly_discount: get("monthly_discount"),
            early_bird_days: get("early_bird_days"),
            early_bird_discount: get("early_bird_discount"),
            last_minute_days: get("last_minute_days"),
            last_minute_discount: get("last_minute_discount"),
            instant_book: !get("instant_book").is_empty(),
            cancellation_policy: get("cancellation_policy"),
            min_nights: get("min_nights"),
            max_nights: get("max_nights"),
            advance_notice_days: get("advance_notice_days"),
            preparation_days: get("preparation_days"),
            booking_window_days: get("booking_window_days"),
            time_zone: get("time_zone"),
            check_in_time: get("check_in_time"),
            check_out_time: get("check_out_time"),
        }
    }

    /// The change the form asks for: what it leaves empty stays as it is.
    /// Numbers and amounts that cannot be read are the form's own errors.
    pub fn patch(&self, locale: Locale) -> Result<TermsPatch, Vec<FieldError>> {
        let h = locale.messages().h;
        let mut errors = Vec::new();
        let text = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_owned());
        let mut count = |field: &str, v: &str| -> Option<u32> {
            let v = v.trim();
            if v.is_empty() {
                return None;
            }
            v.parse().map_err(|_| errors.push(FieldError::new(field, h.not_a_number))).ok()
        };
        let max_guests = count("max_guests", &self.max_guests);
        let bedrooms = count("bedrooms", &self.bedrooms);
        let beds = count("beds", &self.beds);
        let guests_included = count("guests_included", &self.guests_included);
        let early_bird_days = count("early_bird_days", &self.early_bird_days);
        let last_minute_days = count("last_minute_days", &self.last_minute_days);
        let min_nights = count("min_nights", &self.min_nights);
        let max_nights = count("max_nights", &self.max_nights);
        let advance_notice_days = count("advance_notice_days", &self.advance_notice_days);
        let preparation_days = count("preparation_days", &self.preparation_days);
        let booking_window_days = count("booking_window_days", &self.booking_window_days);
        let currency = self.currency.trim().to_owned();
        let e = exponent(&currency);
        let mut money = |field: &str, v: &str| -> Option<Money> {
            let v = v.trim();
            if v.is_empty() {
                return None;
            }
            match parse_amount(v, e) {
                Some(amount) => Some(Money::new(amount, &currency)),
                None => {
                    errors.push(FieldError::new(field, h.not_an_amount));
                    None
                }
            }
        };
        let nightly_price = money("nightly_price", &self.nightly_price);
        let weekend_price = money("weekend_price", &self.weekend_price);
        let cleaning_fee = money("cleaning_fee", &self.cleaning_fee);
        let extra_guest_fee = money("extra_guest_fee", &self.extra_guest_fee);
        // Percent with up to two decimals: basis points. Empty is no discount.
        let mut percent = |field: &str, v: &str| -> Option<i64> {
            let v = v.trim();
            if v.is_empty() {
                return Some(0);
            }
            parse_amount(v, 2).or_else(|| {
                errors.push(FieldError::new(field, h.not_a_number));
                None
            })
        };
        let weekly_discount_bps = percent("weekly_discount", &self.weekly_discount);
        let monthly_discount_bps = percent("monthly_discount", &self.monthly_discount);
        let early_bird_discount_bps = percent("early_bird_discount", &self.early_bird_discount);
        let last_minute_discount_bps = percent("last_minute_discount", &self.last_minute_discount);
        let bathrooms = match self.bathrooms.trim().replace(',', ".") {
            b if b.is_empty() => None,
            b => b.parse::<f64>().map_err(|_| errors.push(FieldError::new("bathrooms", h.not_a_number))).ok(),
        };
        let location = match (self.lat.trim(), self.lon.trim()) {
            ("", "") => None,
            (lat, lon) => match (lat.replace(',', ".").parse::<f64>(), lon.replace(',', ".").parse::<f64>()) {
                (Ok(lat), Ok(lon)) => Some(Location { lat, lon }),
                (lat, _) => {
                    errors.push(FieldError::new(if lat.is_err() { "lat" } else { "lon" }, h.not_a_number));
                    None
                }
            },
        };
        let address = [&self.line1, &self.city, &self.neighbourhood, &self.postal_code, &self.country]
            .iter()
            .any(|v| !v.trim().is_empty())
            .then(|| Address {
                line1: self.line1.trim().to_owned(),
                city: self.city.trim().to_owned(),
                neighbourhood: self.neighbourhood.trim().to_owned(),
                postal_code: self.postal_code.trim().to_owned(),
                country: self.country.trim().to_uppercase(),
            });
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(TermsPatch {
            title: text(&self.title),
            // An emptied description is a choice, not "no change".
            description: Some(self.description.trim().to_owned()),
            property_type: text(&self.property_type),
            address,
            location,
            max_guests,
            bedrooms,
            beds,
            bathrooms,
            amenities: Some(self.amenities.clone()),
            instant_book: Some(self.instant_book),
            cancellation_policy: text(&self.cancellation_policy),
            nightly_price,
            cleaning_fee,
            weekend_price,
            extra_guest_fee,
            guests_included,
            weekly_discount_bps,
            monthly_discount_bps,
            early_bird_days,
            early_bird_discount_bps,
            last_minute_days,
            last_minute_discount_bps,
            min_nights,
            max_nights,
            advance_notice_days,
            preparation_days,
            booking_window_days,
            time_zone: text(&self.time_zone),
            check_in_time: text(&self.check_in_time),
            check_out_time: text(&self.check_out_time),
        })
    }

    pub fn has_amenity(&self, key: &str) -> bool {
        self.amenities.iter().any(|a| a == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_in_major_units_and_write_back() {
        assert_eq!(parse_amount("89.50", 2), Some(8950));
        assert_eq!(parse_amount("89,5", 2), Some(8950));
        assert_eq!(parse_amount("1 200", 2), Some(120_000));
        assert_eq!(parse_amount("120", 0), Some(120));
        assert_eq!(parse_amount("1.234", 2), None);
        assert_eq!(parse_amount("-5", 2), None);
        assert_eq!(parse_amount("ten", 2), None);
        assert_eq!(parse_amount("99999999999999999999", 2), None);
        assert_eq!(amount_text(8950, "EUR"), "89.50");
        assert_eq!(amount_text(12000, "EUR"), "120");
        assert_eq!(amount_text(500, "JPY"), "500");
    }

    #[test]
    fn the_form_becomes_a_patch_and_says_which_field_is_unreadable() {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(
            "title=Loft&currency=EUR&nightly_price=89.50&weekly_discount=12.5&amenity=wifi&amenity=pool&city=Lyon&country=fr&instant_book=on&max_guests=4",
        )
        .unwrap();
        let form = ListingForm::from_pairs(&pairs);
        let patch = form.patch(Locale::En).unwrap();
        assert_eq!(patch.nightly_price, Some(Money::new(8950, "EUR")));
        assert_eq!(patch.weekly_discount_bps, Some(1250));
        assert_eq!(patch.amenities.as_deref(), Some(&["wifi".to_owned(), "pool".to_owned()][..]));
        assert_eq!(patch.address.unwrap().country, "FR");
        assert_eq!(patch.instant_book, Some(true));
        assert_eq!(patch.max_guests, Some(4));
        let bad = ListingForm { nightly_price: "cheap".into(), max_guests: "many".into(), ..form };
        let fields: Vec<String> = bad.patch(Locale::En).unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["max_guests", "nightly_price"]);
        assert_eq!(form_field("address.city"), "city");
        assert_eq!(form_field("location.lat"), "lat");
    }
}
