//! Criterion benches of the search query mix on generated demo listings, in
//! process (no HTTP): `HOMETRIP_BENCH_LISTINGS` listings (default 100,000; the
//! issue's full size is 1,000,000), with booked nights from the demo generator.
//!
//! `cargo bench --bench search`; `HOMETRIP_BENCH_LISTINGS=1000000 cargo bench --bench search`;
//! `HOMETRIP_BENCH_INDEX=<dir>` keeps the index on disk between runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{Duration, NaiveDate, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use hometrip_kernel::{Id, Problem};
use hometrip_listing::api::{Listing, Listings, Quote};
use hometrip_listing::demo::Generator;
use hometrip_search::domain::{self, SearchParams};
use hometrip_search::service::{SearchService, REINDEX_CHUNK};
use hometrip_search::store::{IndexedListing, SearchIndex};

/// Search never calls back into listings while querying.
struct NoListings;

#[async_trait]
impl Listings for NoListings {
    async fn listing(&self, _: Id) -> Result<Option<Listing>, Problem> {
        Ok(None)
    }
    async fn quote(&self, _: Id, _: NaiveDate, _: NaiveDate, _: u32) -> Result<Quote, Problem> {
        Err(Problem::not_found("listing"))
    }
    async fn taken_nights(&self, _: Id, _: NaiveDate, _: NaiveDate) -> Result<Vec<NaiveDate>, Problem> {
        Ok(Vec::new())
    }
    async fn taken_nights_of(&self, _: &[Id], _: NaiveDate, _: NaiveDate) -> Result<Vec<(Id, NaiveDate)>, Problem> {
        Ok(Vec::new())
    }
    async fn published(&self, _: Option<Id>, _: u32) -> Result<Vec<Listing>, Problem> {
        Ok(Vec::new())
    }
}

/// `n` generated listings, in memory — or on disk under `HOMETRIP_BENCH_INDEX`,
/// built once and reused by later runs of the same size and schema.
fn build(n: usize) -> Arc<SearchIndex> {
    let index = match std::env::var_os("HOMETRIP_BENCH_INDEX") {
        Some(dir) => {
            let index = SearchIndex::open(std::path::Path::new(&dir), 500_000_000).unwrap();
            if index.num_docs() == n as u64 {
                eprintln!("reusing the index of {n} listings in {}", dir.to_string_lossy());
                return Arc::new(index);
            }
            index.clear().unwrap();
            index
        }
        None => SearchIndex::in_ram(500_000_000).unwrap(),
    };
    let today = Utc::now().date_naive();
    let mut generator = Generator::new(42);
    let started = Instant::now();
    let mut chunk = Vec::new();
    for i in 0..n {
        let l = generator.listing(i, today);
        let t = &l.terms;
        let loc = t.location.unwrap();
        let booked = l
            .booked
            .iter()
            .flat_map(|(start, nights)| (0..*nights).map(move |d| domain::day_number(*start + Duration::days(d))));
        chunk.push(IndexedListing {
            id: Id::new().to_string(),
            title: t.title.clone(),
            description: t.description.clone(),
            city: t.address.city.clone(),
            lat: loc.lat,
            lon: loc.lon,
            price: t.pricing.nightly.unwrap() as u64,
            currency: t.pricing.currency.clone().unwrap(),
            guests: u64::from(t.details.max_guests),
            bedrooms: u64::from(t.details.bedrooms),
            property_type: t.property_type.clone(),
            amenities: t.details.amenities.clone(),
            instant_book: t.details.instant_book,
            rating: None,
            min_nights: u64::from(t.rules.min_nights),
            max_nights: u64::from(t.rules.max_nights),
            booked: booked.collect(),
            nights_from: domain::day_number(today),
        });
        // As `hometrip reindex` does: chunks in geographic order.
        if chunk.len() == REINDEX_CHUNK || i + 1 == n {
            index.upsert_many(&mut chunk).unwrap();
            chunk.clear();
        }
    }
    index.commit().unwrap();
    eprintln!("indexed {n} listings in {:.1} s", started.elapsed().as_secs_f64());
    Arc::new(index)
}

fn params(query: &str) -> SearchParams {
    serde_urlencoded_params(query)
}

/// `a=1&b=2` into the HTTP layer's parameter struct, as the route would.
fn serde_urlencoded_params(query: &str) -> SearchParams {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let value = serde_json::Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| {
                let json = v.parse::<f64>().ok().filter(|_| k != "q" && k != "amenities" && k != "bbox").map_or(
                    serde_json::Value::String(v.clone()),
                    |n| {
                        if n.fract() == 0.0 && !v.contains('.') {
                            serde_json::json!(n as i64)
                        } else {
                            serde_json::json!(n)
                        }
                    },
                );
                (k, json)
            })
            .collect(),
    );
    serde_json::from_value(value).unwrap()
}

fn search_mix(c: &mut Criterion) {
    let n: usize = std::env::var("HOMETRIP_BENCH_LISTINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let index = build(n);
    let service = SearchService::new(index, Arc::new(NoListings));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let today = Utc::now().date_naive();
    let (ci, co) = (today + Duration::days(12), today + Duration::days(15));
    let queries = [
        ("text_bbox_dates_guests_price", format!("q=bright%20apartment&bbox=2.25,48.80,2.45,48.92&check_in={ci}&check_out={co}&guests=2&min_price=5000&max_price=30000")),
        ("radius_sort_distance", "lat=41.3851&lon=2.1734&radius_km=3&sort=distance".to_owned()),
        ("city_facets_price_sort", "bbox=12.35,41.80,12.65,42.00&sort=price_asc".to_owned()),
    ];
    let mut group = c.benchmark_group(format!("search_{n}"));
    for (name, q) in &queries {
        let criteria = domain::criteria(&params(q), hometrip_listing::api::is_amenity, |t| {
            hometrip_listing::api::PROPERTY_TYPES.contains(&t)
        })
        .unwrap();
        group.bench_function(*name, |b| b.iter(|| rt.block_on(service.search(&criteria)).unwrap()));
    }
    group.bench_function("autocomplete", |b| b.iter(|| rt.block_on(service.autocomplete("barc")).unwrap()));
    group.finish();
}

criterion_group!(benches, search_mix);
criterion_main!(benches);
