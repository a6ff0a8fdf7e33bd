//! What the search benches share: the generated listings (deterministic for a
//! seed, ids included), the index built from them, and query strings parsed
//! as the HTTP route parses them.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{Duration, NaiveDate};
use hometrip_kernel::{Id, Problem};
use hometrip_listing::api::{Listing, Listings, Quote, Rate};
use hometrip_listing::demo::{DemoListing, Generator};
use hometrip_search::domain::{self, Criteria, SearchParams};
use hometrip_search::service::REINDEX_CHUNK;
use hometrip_search::store::{IndexedListing, SearchIndex};

/// Search never calls back into listings while querying.
pub struct NoListings;

#[async_trait]
impl Listings for NoListings {
    async fn listing(&self, _: Id) -> Result<Option<Listing>, Problem> {
        Ok(None)
    }
    async fn quote(&self, _: Id, _: NaiveDate, _: NaiveDate, _: u32, _: Rate) -> Result<Quote, Problem> {
        Err(Problem::not_found("listing"))
    }
    async fn taken_nights(&self, _: Id, _: NaiveDate, _: NaiveDate) -> Result<Vec<NaiveDate>, Problem> {
        Ok(Vec::new())
    }
    async fn blocked_nights(&self, _: Id, _: NaiveDate, _: NaiveDate) -> Result<Vec<NaiveDate>, Problem> {
        Ok(Vec::new())
    }
    async fn taken_nights_of(&self, _: &[Id], _: NaiveDate, _: NaiveDate) -> Result<Vec<(Id, NaiveDate)>, Problem> {
        Ok(Vec::new())
    }
    async fn published(&self, _: Option<Id>, _: u32) -> Result<Vec<Listing>, Problem> {
        Ok(Vec::new())
    }
    async fn listings_of(&self, _: &[Id]) -> Result<Vec<Listing>, Problem> {
        Ok(Vec::new())
    }
}

/// `HOMETRIP_BENCH_LISTINGS` (default 100,000).
pub fn listing_count() -> usize {
    std::env::var("HOMETRIP_BENCH_LISTINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

/// The `i`-th generated listing's id: the same in every run and every store.
pub fn listing_id(i: usize) -> uuid::Uuid {
    uuid::Uuid::from_u128((0x0190_0000_0000_7000_8000_u128 << 48) | i as u128)
}

/// Generated listings as the index holds them, with their demo source.
pub fn listings(n: usize, today: NaiveDate) -> impl Iterator<Item = (IndexedListing, DemoListing)> {
    let mut generator = Generator::new(42);
    (0..n).map(move |i| {
        let l = generator.listing(i, today);
        let t = &l.terms;
        let loc = t.location.unwrap_or(hometrip_listing::api::Location { lat: 0.0, lon: 0.0 });
        let booked = l
            .booked
            .iter()
            .flat_map(|(start, nights)| (0..*nights).map(move |d| domain::day_number(*start + Duration::days(d))))
            .collect();
        let indexed = IndexedListing {
            id: listing_id(i).to_string(),
            title: t.title.clone(),
            description: t.description.clone(),
            city: t.address.city.clone(),
            lat: loc.lat,
            lon: loc.lon,
            price: t.pricing.nightly.unwrap_or(0) as u64,
            currency: t.pricing.currency.clone().unwrap_or_default(),
            guests: u64::from(t.details.max_guests),
            bedrooms: u64::from(t.details.bedrooms),
            property_type: t.property_type.clone(),
            amenities: t.details.amenities.clone(),
            instant_book: t.details.instant_book,
            rating: None,
            shown_rating: None,
            min_nights: u64::from(t.rules.min_nights),
            max_nights: u64::from(t.rules.max_nights),
            booked,
            nights_from: domain::day_number(today),
        };
        (indexed, l)
    })
}

/// `n` generated listings, in memory — or on disk under `HOMETRIP_BENCH_INDEX`,
/// built once and reused by later runs of the same size and schema.
pub fn index(n: usize, today: NaiveDate) -> Arc<SearchIndex> {
    let index = match std::env::var_os("HOMETRIP_BENCH_INDEX") {
        Some(dir) => {
            let index = SearchIndex::open(std::path::Path::new(&dir), 500_000_000).expect("index dir");
            if index.num_docs() == n as u64 {
                eprintln!("reusing the index of {n} listings in {}", dir.to_string_lossy());
                return Arc::new(index);
            }
            index.clear().expect("clear");
            index
        }
        None => SearchIndex::in_ram(500_000_000).expect("index"),
    };
    let started = Instant::now();
    let mut chunk = Vec::with_capacity(REINDEX_CHUNK);
    for (i, (indexed, _)) in listings(n, today).enumerate() {
        chunk.push(indexed);
        // As `hometrip reindex` does: chunks in geographic order.
        if chunk.len() == REINDEX_CHUNK || i + 1 == n {
            index.upsert_many(&mut chunk).expect("upsert");
            chunk.clear();
        }
    }
    index.commit().expect("commit");
    eprintln!("indexed {n} listings in {:.1} s", started.elapsed().as_secs_f64());
    Arc::new(index)
}

/// `a=1&b=2` into the HTTP layer's parameter struct, as the route would.
pub fn params(query: &str) -> SearchParams {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let value = serde_json::Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| {
                let numeric = k != "q" && k != "amenities" && k != "bbox";
                let json = match v.parse::<f64>() {
                    Ok(n) if numeric && n.fract() == 0.0 && !v.contains('.') => serde_json::json!(n as i64),
                    Ok(n) if numeric => serde_json::json!(n),
                    _ => serde_json::Value::String(v),
                };
                (k, json)
            })
            .collect(),
    );
    serde_json::from_value(value).expect("parameters")
}

/// A query string validated as the route validates it.
pub fn criteria(query: &str) -> Criteria {
    domain::criteria(&params(query), hometrip_listing::api::is_amenity, |t| {
        hometrip_listing::api::PROPERTY_TYPES.contains(&t)
    })
    .expect("valid query")
}
