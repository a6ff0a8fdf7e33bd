//! Criterion benches of the search query mix on generated demo listings, in
//! process (no HTTP): `HOMETRIP_BENCH_LISTINGS` listings (default 100,000; the
//! issue's full size is 1,000,000), with booked nights from the demo generator.
//!
//! `cargo bench --bench search`; `HOMETRIP_BENCH_LISTINGS=1000000 cargo bench --bench search`;
//! `HOMETRIP_BENCH_INDEX=<dir>` keeps the index on disk between runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;

use chrono::{Duration, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use hometrip_search::service::SearchService;

fn search_mix(c: &mut Criterion) {
    let n = common::listing_count();
    let index = common::index(n, Utc::now().date_naive());
    let service = SearchService::new(index, Arc::new(common::NoListings));
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
        let criteria = common::criteria(q);
        group.bench_function(*name, |b| b.iter(|| rt.block_on(service.search(&criteria)).unwrap()));
    }
    group.bench_function("autocomplete", |b| b.iter(|| rt.block_on(service.autocomplete("barc")).unwrap()));
    group.finish();
}

criterion_group!(benches, search_mix);
criterion_main!(benches);
