//! Demo data: realistic listings across Europe for people trying HomeTrip and
//! for benchmarks. Deterministic for a given seed.

use chrono::{Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::api::{Address, Location};
use crate::domain::{Details, Pricing, Rules, Terms, AMENITIES, PROPERTY_TYPES};

/// City, country, centre, weight (share of listings), typical nightly price in
/// minor units of the currency, currency.
pub type City = (&'static str, &'static str, f64, f64, u32, i64, &'static str);

pub const CITIES: &[City] = &[
    ("Paris", "FR", 48.8566, 2.3522, 10, 14_000, "EUR"),
    ("London", "GB", 51.5074, -0.1278, 9, 15_000, "GBP"),
    ("Barcelona", "ES", 41.3851, 2.1734, 7, 12_000, "EUR"),
    ("Rome", "IT", 41.9028, 12.4964, 7, 11_000, "EUR"),
    ("Amsterdam", "NL", 52.3676, 4.9041, 5, 16_000, "EUR"),
    ("Lisbon", "PT", 38.7223, -9.1393, 5, 9_500, "EUR"),
    ("Berlin", "DE", 52.52, 13.405, 5, 9_000, "EUR"),
    ("Madrid", "ES", 40.4168, -3.7038, 4, 9_500, "EUR"),
    ("Prague", "CZ", 50.0755, 14.4378, 4, 220_000, "CZK"),
    ("Vienna", "AT", 48.2082, 16.3738, 3, 10_500, "EUR"),
    ("Florence", "IT", 43.7696, 11.2558, 3, 13_000, "EUR"),
    ("Venice", "IT", 45.4408, 12.3155, 3, 17_000, "EUR"),
    ("Nice", "FR", 43.7102, 7.262, 3, 13_000, "EUR"),
    ("Lyon", "FR", 45.764, 4.8357, 3, 8_500, "EUR"),
    ("Marseille", "FR", 43.2965, 5.3698, 3, 8_500, "EUR"),
    ("Bordeaux", "FR", 44.8378, -0.5792, 2, 9_000, "EUR"),
    ("Munich", "DE", 48.1351, 11.582, 2, 12_000, "EUR"),
    ("Copenhagen", "DK", 55.6761, 12.5683, 2, 110_000, "DKK"),
    ("Stockholm", "SE", 59.3293, 18.0686, 2, 130_000, "SEK"),
    ("Dublin", "IE", 53.3498, -6.2603, 2, 15_000, "EUR"),
    ("Edinburgh", "GB", 55.9533, -3.1883, 2, 12_000, "GBP"),
    ("Porto", "PT", 41.1579, -8.6291, 2, 8_500, "EUR"),
    ("Seville", "ES", 37.3891, -5.9845, 2, 9_000, "EUR"),
    ("Athens", "GR", 37.9838, 23.7275, 2, 8_000, "EUR"),
    ("Budapest", "HU", 47.4979, 19.0402, 2, 7_000, "EUR"),
    ("Krakow", "PL", 50.0647, 19.945, 2, 32_000, "PLN"),
    ("Zurich", "CH", 47.3769, 8.5417, 1, 19_000, "CHF"),
    ("Geneva", "CH", 46.2044, 6.1432, 1, 18_000, "CHF"),
    ("Annecy", "FR", 45.8992, 6.1294, 1, 12_000, "EUR"),
    ("Chamonix", "FR", 45.9237, 6.8694, 1, 16_000, "EUR"),
    ("Biarritz", "FR", 43.4832, -1.5586, 1, 13_000, "EUR"),
    ("Naples", "IT", 40.8518, 14.2681, 1, 8_000, "EUR"),
    ("Split", "HR", 43.5081, 16.4402, 1, 10_000, "EUR"),
    ("Dubrovnik", "HR", 42.6507, 18.0944, 1, 14_000, "EUR"),
    ("Oslo", "NO", 59.9139, 10.7522, 1, 140_000, "NOK"),
    ("Valencia", "ES", 39.4699, -0.3763, 1, 9_000, "EUR"),
];

const ADJECTIVES: &[(&str, &str)] = &[
    ("Bright", "Lumineux"),
    ("Cosy", "Cosy"),
    ("Charming", "Charmant"),
    ("Quiet", "Calme"),
    ("Spacious", "Spacieux"),
    ("Modern", "Moderne"),
    ("Historic", "Historique"),
    ("Sunny", "Ensoleillé"),
];

/// A generated listing: who hosts it, its terms, and stays already booked
/// (nights from today, as `(first night, nights)`).
pub struct DemoListing {
    pub city: &'static str,
    pub terms: Terms,
    pub booked: Vec<(NaiveDate, i64)>,
    pub photos: usize,
}

/// A city drawn in proportion to its weight (its share of listings).
pub fn weighted_city(rng: &mut impl Rng) -> &'static City {
    let mut pick = rng.gen_range(0..CITIES.iter().map(|c| c.4).sum::<u32>());
    for c in CITIES {
        if pick < c.4 {
            return c;
        }
        pick -= c.4;
    }
    &CITIES[0]
}

pub struct Generator {
    rng: StdRng,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Generator { rng: StdRng::seed_from_u64(seed) }
    }

    fn city(&mut self) -> &'static City {
        weighted_city(&mut self.rng)
    }

    pub fn listing(&mut self, index: usize, today: NaiveDate) -> DemoListing {
        let &(city, country, lat, lon, _, base, currency) = self.city();
        let kind = PROPERTY_TYPES[self.rng.gen_range(0..PROPERTY_TYPES.len() - 1)];
        let (adj_en, _) = ADJECTIVES[self.rng.gen_range(0..ADJECTIVES.len())];
        let bedrooms = self.rng.gen_range(0..=4u32);
        let max_guests = (bedrooms * 2).clamp(1, 10) + self.rng.gen_range(0..=1);
        // Within about 6 km of the centre; longitude degrees shrink with latitude.
        let dlat = self.rng.gen_range(-0.055..0.055);
        let dlon = self.rng.gen_range(-0.055..0.055) / lat.to_radians().cos();
        let size_factor = 60 + i64::from(bedrooms) * 25 + self.rng.gen_range(0..60);
        let nightly = (base * size_factor / 100).max(100) / 100 * 100;
        let mut amenities: Vec<String> =
            AMENITIES.iter().filter(|_| self.rng.gen_bool(0.3)).map(|(k, _, _)| (*k).to_owned()).collect();
        if !amenities.iter().any(|a| a == "wifi") && self.rng.gen_bool(0.9) {
            amenities.push("wifi".to_owned());
        }
        amenities.sort();
        let terms = Terms {
            title: format!("{adj_en} {} in {city} #{index}", kind.replace('_', " ")),
            description: format!(
                "A {} {} for up to {max_guests} guests in {city}, close to shops, cafés and public transport.",
                adj_en.to_lowercase(),
                kind.replace('_', " ")
            ),
            property_type: kind.to_owned(),
            address: Address {
                line1: format!("{} rue de la Démo", self.rng.gen_range(1..200)),
                city: city.to_owned(),
                neighbourhood: String::new(),
                postal_code: format!("{:05}", self.rng.gen_range(1000..99999)),
                country: country.to_owned(),
            },
            location: Some(Location { lat: lat + dlat, lon: lon + dlon }),
            details: Details {
                max_guests,
                bedrooms,
                beds: bedrooms.max(1) + self.rng.gen_range(0..=1),
                bathrooms: f64::from(1 + bedrooms / 2),
                amenities,
                instant_book: self.rng.gen_bool(0.5),
                cancellation_policy: ["flexible", "moderate", "strict"][self.rng.gen_range(0..3)].to_owned(),
            },
            pricing: Pricing {
                currency: Some(currency.to_owned()),
                nightly: Some(nightly),
                cleaning_fee: nightly / 4 / 100 * 100,
                weekend: self.rng.gen_bool(0.4).then_some(nightly * 115 / 100),
                extra_guest_fee: 0,
                guests_included: max_guests,
                weekly_discount_bps: [0, 500, 1000][self.rng.gen_range(0..3)],
                monthly_discount_bps: [0, 1500, 2500][self.rng.gen_range(0..3)],
                ..Pricing::default()
            },
            rules: Rules { min_nights: self.rng.gen_range(1..=3), max_nights: 30, ..Rules::default() },
        };
        let mut booked = Vec::new();
        if self.rng.gen_bool(0.6) {
            let mut start = self.rng.gen_range(1..20);
            for _ in 0..self.rng.gen_range(1..=4) {
                let nights = self.rng.gen_range(2..=7);
                booked.push((today + Duration::days(start), nights));
                start += nights + self.rng.gen_range(1..15);
            }
        }
        DemoListing { city, terms, booked, photos: self.rng.gen_range(1..=3) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_listings_are_valid_and_deterministic() {
        let today = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        let a: Vec<String> = (0..20).map(|i| Generator::new(7).listing(i, today).terms.title).collect();
        let b: Vec<String> = (0..20).map(|i| Generator::new(7).listing(i, today).terms.title).collect();
        assert_eq!(a, b);
        let mut g = Generator::new(1);
        for i in 0..500 {
            let l = g.listing(i, today);
            assert!(crate::domain::missing_for_publish(&l.terms, 1).is_empty(), "{i}");
            let loc = l.terms.location.unwrap();
            assert!((-90.0..=90.0).contains(&loc.lat) && (-180.0..=180.0).contains(&loc.lon));
            assert!(l.terms.pricing.nightly.unwrap() > 0);
            assert!(l.terms.pricing.guests_included <= l.terms.details.max_guests);
            assert!(l.booked.windows(2).all(|w| w[0].0 + Duration::days(w[0].1) < w[1].0), "stays never overlap");
        }
    }
}
