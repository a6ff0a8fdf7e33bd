//! Location privacy: what a visitor sees of where a listing is.
//!
//! The street address and the exact point go only to the listing's host,
//! admins and guests with a confirmed booking. Everyone else gets the city,
//! neighbourhood and country and an approximate point: the exact one moved by
//! an offset of [`MIN_OFFSET_M`] to [`MAX_OFFSET_M`]. The offset comes from a
//! keyed hash of the listing's id with the listing's own secret salt, so it is
//! the same on every view (averaging many views reveals nothing) and cannot be
//! recomputed from the public id. It depends on the id only, not on the point:
//! a host moving the pin moves the approximate point by as much, and repeated
//! edits do not give fresh samples around the same place.

use hmac::{Hmac, Mac};
use hometrip_kernel::Id;
use sha2::Sha256;

use crate::api::{Address, Listing, Location};

/// The approximate point is never closer than this to the exact one.
pub const MIN_OFFSET_M: f64 = 150.0;
/// Nor farther than this.
pub const MAX_OFFSET_M: f64 = 450.0;

/// Metres per degree of latitude (mean Earth radius, as haversine uses).
const METRES_PER_DEGREE: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

/// A fraction in `[0, 1)` from eight bytes of the hash.
fn fraction(bytes: &[u8]) -> f64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    // The top 53 bits: every value is exact in an f64.
    (u64::from_be_bytes(word) >> 11) as f64 / (1u64 << 53) as f64
}

/// The point visitors see for a listing at `exact`: moved by a stable,
/// keyed offset of 150 to 450 m (uniform over that ring's area, in any
/// direction).
pub fn approximate_location(salt: &str, id: Id, exact: Location) -> Location {
    // HMAC accepts a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(salt.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(b"hometrip listing location v1");
    mac.update(id.0.as_bytes());
    let hash = mac.finalize().into_bytes();
    let bearing = fraction(&hash[0..8]) * std::f64::consts::TAU;
    let (min2, max2) = (MIN_OFFSET_M * MIN_OFFSET_M, MAX_OFFSET_M * MAX_OFFSET_M);
    let distance = (min2 + fraction(&hash[8..16]) * (max2 - min2)).sqrt();
    let dlat = distance * bearing.cos() / METRES_PER_DEGREE;
    // Longitude degrees shrink towards the poles (kept finite at them).
    let dlon = distance * bearing.sin() / (METRES_PER_DEGREE * exact.lat.to_radians().cos().max(0.01));
    let lat = (exact.lat + dlat).clamp(-90.0, 90.0);
    let mut lon = exact.lon + dlon;
    if lon > 180.0 {
        lon -= 360.0;
    } else if lon < -180.0 {
        lon += 360.0;
    }
    Location { lat, lon }
}

/// The listing as a visitor sees it: no street or postal code, and the
/// approximate point in place of the exact one.
pub fn public_view(mut listing: Listing) -> Listing {
    listing.address = Address { line1: String::new(), postal_code: String::new(), ..listing.address };
    listing.location = listing.approximate_location;
    listing
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Great-circle distance in metres.
    fn haversine(a: Location, b: Location) -> f64 {
        let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
        let (dla, dlo) = ((b.lat - a.lat).to_radians(), (b.lon - a.lon).to_radians());
        let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
        2.0 * 6_371_008.8 * h.sqrt().asin()
    }

    fn id(n: u128) -> Id {
        Id(uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n))
    }

    const PARIS: Location = Location { lat: 48.8707, lon: 2.3635 };

    #[test]
    fn the_offset_is_stable_and_keyed() {
        let a = approximate_location("salt-a", id(1), PARIS);
        assert_eq!(a, approximate_location("salt-a", id(1), PARIS), "the same on every call");
        assert_ne!(a, approximate_location("salt-b", id(1), PARIS), "another secret, another point");
        assert_ne!(a, approximate_location("salt-a", id(2), PARIS), "another listing, another offset");
    }

    #[test]
    fn the_offset_follows_the_pin_it_does_not_resample() {
        let moved = Location { lat: PARIS.lat + 0.001, lon: PARIS.lon };
        let (a, b) = (approximate_location("s", id(7), PARIS), approximate_location("s", id(7), moved));
        assert!((b.lat - a.lat - 0.001).abs() < 1e-9, "{a:?} {b:?}");
        assert!((b.lon - a.lon).abs() < 1e-6, "{a:?} {b:?}");
    }

    #[test]
    fn the_offset_is_150_to_450_metres_in_every_direction() {
        let places = [
            PARIS,
            Location { lat: -33.86, lon: 151.21 },
            Location { lat: 64.14, lon: -21.94 },
            Location { lat: 0.0, lon: 179.999 },
            Location { lat: 0.0, lon: -179.999 },
        ];
        for place in places {
            let (mut north, mut east, mut south, mut west) = (0, 0, 0, 0);
            for n in 0..2000 {
                let p = approximate_location(&format!("salt{n}"), id(n), place);
                assert!((-90.0..=90.0).contains(&p.lat) && (-180.0..=180.0).contains(&p.lon), "{p:?}");
                let d = haversine(place, p);
                assert!((MIN_OFFSET_M * 0.99..=MAX_OFFSET_M * 1.01).contains(&d), "{d} m at {place:?}");
                let dlon = (p.lon - place.lon + 540.0) % 360.0 - 180.0;
                north += usize::from(p.lat > place.lat);
                south += usize::from(p.lat < place.lat);
                east += usize::from(dlon > 0.0);
                west += usize::from(dlon < 0.0);
            }
            for side in [north, east, south, west] {
                assert!((800..1200).contains(&side), "directions spread evenly: {north} {east} {south} {west}");
            }
        }
    }

    #[test]
    fn visitors_get_no_street_postcode_or_exact_point() {
        let approx = approximate_location("s", id(3), PARIS);
        let listing = Listing {
            id: id(3),
            host_id: id(4),
            status: crate::api::ListingStatus::Published,
            host_suspended: false,
            title: "Loft".into(),
            description: String::new(),
            property_type: "loft".into(),
            address: Address {
                line1: "12 quai de Valmy".into(),
                city: "Paris".into(),
                neighbourhood: "Canal Saint-Martin".into(),
                postal_code: "75010".into(),
                country: "FR".into(),
            },
            location: Some(PARIS),
            approximate_location: Some(approx),
            max_guests: 2,
            bedrooms: 1,
            beds: 1,
            bathrooms: 1.0,
            amenities: vec![],
            nightly_price: None,
            cleaning_fee: None,
            weekend_price: None,
            extra_guest_fee: None,
            guests_included: 1,
            weekly_discount_bps: 0,
            monthly_discount_bps: 0,
            early_bird_days: 0,
            early_bird_discount_bps: 0,
            last_minute_days: 0,
            last_minute_discount_bps: 0,
            instant_book: false,
            cancellation_policy: "flexible".into(),
            min_nights: 1,
            max_nights: 30,
            advance_notice_days: 0,
            preparation_days: 0,
            booking_window_days: 365,
            time_zone: "Europe/Paris".into(),
            check_in_time: "15:00".into(),
            check_out_time: "11:00".into(),
            photos: vec![],
            rating: None,
            rating_score: None,
            review_count: 0,
            created_at: hometrip_kernel::time::Instant::now(),
            updated_at: hometrip_kernel::time::Instant::now(),
        };
        let public = public_view(listing);
        assert_eq!(public.location, Some(approx));
        assert_eq!(
            (public.address.city.as_str(), public.address.neighbourhood.as_str(), public.address.country.as_str()),
            ("Paris", "Canal Saint-Martin", "FR")
        );
        let json = serde_json::to_value(&public).unwrap();
        assert!(json["address"].get("line1").is_none() && json["address"].get("postal_code").is_none(), "{json}");
    }
}
