//! HomeTrip's search and PostgreSQL side by side, on the same generated
//! listings and the same queries (cities drawn in proportion to their
//! listings, as real traffic is):
//!
//! - PostgreSQL gets its full-text search (a stored French + English
//!   `tsvector` with a GIN index), a GiST index on the location point for boxes
//!   and radii, booked nights as a `datemultirange`, and B-tree indexes on the
//!   filtered columns; each query returns what HomeTrip's does — the page, the
//!   total and the facet counts — in one round trip.
//! - Latency: the query mix one at a time on each side (p50, p99).
//! - Throughput: 8 concurrent clients on each side for a fixed time.
//! - Totals of the queries without text are checked to agree (the text
//!   queries differ in stemming: Snowball in HomeTrip, PostgreSQL's
//!   dictionaries).
//!
//! `HOMETRIP_BENCH_LISTINGS` (default 100,000), `HOMETRIP_BENCH_INDEX` (keep
//! the index on disk), `HOMETRIP_BENCH_PG` (a server URL; the bench creates
//! and fills database `hometrip_bench`, reused by later runs of the same size),
//! `HOMETRIP_BENCH_QUERIES` (default 3,000), `HOMETRIP_BENCH_SECONDS` (default
//! 10), `HOMETRIP_BENCH_PATHS=<file>` writes the mix as HTTP paths for
//! `benches/search-load.sh`.
//!
//! `cargo bench --bench search_compare`

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use hometrip_listing::demo::weighted_city;
use hometrip_search::domain::{self, Criteria, Sort};
use hometrip_search::service::SearchService;
use hometrip_search::store::IndexedListing;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};

const CLIENTS: usize = 8;
const TEXTS: &[&str] = &[
    "bright apartment",
    "quiet house",
    "charming studio",
    "modern loft",
    "cosy apartment",
    "spacious villa",
    "historic house",
    "sunny cottage",
];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The mix: text + box + dates + guests + price; radius sorted by distance;
/// a whole city sorted by price. Every query also asks for facets.
fn query_mix(count: usize, today: NaiveDate) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..count)
        .map(|i| {
            let city = weighted_city(&mut rng);
            let (lat, lon, base) = (city.2, city.3, city.5);
            let widen = 1.0 / lat.to_radians().cos();
            match i % 3 {
                0 => {
                    let (dlat, dlon) = (rng.gen_range(-0.03..0.03), rng.gen_range(-0.03..0.03) * widen);
                    let (h, w) = (0.04, 0.06 * widen);
                    let check_in = today + chrono::Duration::days(rng.gen_range(1..90));
                    let check_out = check_in + chrono::Duration::days(rng.gen_range(2..8));
                    format!(
                        "q={}&bbox={:.4},{:.4},{:.4},{:.4}&check_in={check_in}&check_out={check_out}&guests={}&min_price={}&max_price={}",
                        TEXTS[rng.gen_range(0..TEXTS.len())].replace(' ', "%20"),
                        lon + dlon - w,
                        lat + dlat - h,
                        lon + dlon + w,
                        lat + dlat + h,
                        rng.gen_range(1..5),
                        base / 2,
                        base * 2,
                    )
                }
                1 => format!(
                    "lat={:.4}&lon={:.4}&radius_km={}&sort=distance",
                    lat + rng.gen_range(-0.02..0.02),
                    lon + rng.gen_range(-0.02..0.02) * widen,
                    rng.gen_range(1..6),
                ),
                _ => format!(
                    "bbox={:.4},{:.4},{:.4},{:.4}&sort=price_asc",
                    lon - 0.06 * widen,
                    lat - 0.06,
                    lon + 0.06 * widen,
                    lat + 0.06
                ),
            }
        })
        .collect()
}

async fn pg_connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("PostgreSQL");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Creates and fills `hometrip_bench` unless it already holds `n` listings.
async fn pg_prepare(server: &str, n: usize, today: NaiveDate) -> String {
    let admin = pg_connect(server).await;
    let exists = admin.query_opt("SELECT 1 FROM pg_database WHERE datname = 'hometrip_bench'", &[]).await.unwrap();
    if exists.is_none() {
        admin.batch_execute("CREATE DATABASE hometrip_bench").await.unwrap();
    }
    let url = match server.rsplit_once('/') {
        Some((base, _)) => format!("{base}/hometrip_bench"),
        None => format!("{server}/hometrip_bench"),
    };
    let db = pg_connect(&url).await;
    // The table is marked ready once loaded and indexed.
    let ready = format!("{n} listings");
    let held: Option<String> = match db.query_one("SELECT obj_description('bench_listings'::regclass)", &[]).await {
        Ok(row) => row.get(0),
        Err(_) => None,
    };
    if held.as_deref() == Some(ready.as_str()) {
        eprintln!("reusing PostgreSQL's {n} listings");
        return url;
    }
    let started = Instant::now();
    db.batch_execute(
        "DROP TABLE IF EXISTS bench_listings;
         CREATE TABLE bench_listings (
           id uuid PRIMARY KEY, title text NOT NULL, description text NOT NULL, city text NOT NULL,
           lat float8 NOT NULL, lon float8 NOT NULL, price bigint NOT NULL, currency text NOT NULL,
           max_guests int NOT NULL, bedrooms int NOT NULL, property_type text NOT NULL,
           amenities text[] NOT NULL, instant_book bool NOT NULL, min_nights int NOT NULL,
           max_nights int NOT NULL, booked datemultirange NOT NULL,
           doc tsvector GENERATED ALWAYS AS (
             setweight(to_tsvector('french', title), 'A') || setweight(to_tsvector('english', title), 'A')
             || to_tsvector('french', description) || to_tsvector('english', description)
             || setweight(to_tsvector('simple', city), 'A')) STORED)",
    )
    .await
    .unwrap();
    let mut batch: Vec<(IndexedListing, String, String)> = Vec::new();
    for (i, (l, demo)) in common::listings(n, today).enumerate() {
        let booked = demo
            .booked
            .iter()
            .map(|(start, nights)| format!("[{start},{})", *start + chrono::Duration::days(*nights)))
            .collect::<Vec<_>>()
            .join(",");
        batch.push((l, format!("{{{booked}}}"), demo.terms.details.amenities.join(",")));
        if batch.len() == 10_000 || i + 1 == n {
            insert(&db, &batch).await;
            batch.clear();
        }
    }
    db.batch_execute(
        "CREATE INDEX ON bench_listings USING gin (doc);
         CREATE INDEX ON bench_listings USING gist (point(lon, lat));
         CREATE INDEX ON bench_listings USING gist (booked);
         CREATE INDEX ON bench_listings (price);
         CREATE INDEX ON bench_listings (max_guests);
         CREATE INDEX ON bench_listings (property_type);",
    )
    .await
    .unwrap();
    db.batch_execute("VACUUM ANALYZE bench_listings").await.unwrap();
    db.batch_execute(&format!("COMMENT ON TABLE bench_listings IS '{ready}'")).await.unwrap();
    eprintln!("loaded {n} listings into PostgreSQL in {:.1} s", started.elapsed().as_secs_f64());
    url
}

async fn insert(db: &Client, batch: &[(IndexedListing, String, String)]) {
    let col = |f: &dyn Fn(&IndexedListing) -> String| batch.iter().map(|b| f(&b.0)).collect::<Vec<String>>();
    let ids = col(&|l| l.id.clone());
    let titles = col(&|l| l.title.clone());
    let descriptions = col(&|l| l.description.clone());
    let cities = col(&|l| l.city.clone());
    let currencies = col(&|l| l.currency.clone());
    let types = col(&|l| l.property_type.clone());
    let lats: Vec<f64> = batch.iter().map(|b| b.0.lat).collect();
    let lons: Vec<f64> = batch.iter().map(|b| b.0.lon).collect();
    let prices: Vec<i64> = batch.iter().map(|b| b.0.price as i64).collect();
    let guests: Vec<i32> = batch.iter().map(|b| b.0.guests as i32).collect();
    let bedrooms: Vec<i32> = batch.iter().map(|b| b.0.bedrooms as i32).collect();
    let instant: Vec<bool> = batch.iter().map(|b| b.0.instant_book).collect();
    let min_nights: Vec<i32> = batch.iter().map(|b| b.0.min_nights as i32).collect();
    let max_nights: Vec<i32> = batch.iter().map(|b| b.0.max_nights as i32).collect();
    let booked: Vec<String> = batch.iter().map(|b| b.1.clone()).collect();
    let amenities: Vec<String> = batch.iter().map(|b| b.2.clone()).collect();
    db.execute(
        "INSERT INTO bench_listings (id, title, description, city, lat, lon, price, currency, max_guests, bedrooms,
           property_type, amenities, instant_book, min_nights, max_nights, booked)
         SELECT id::uuid, title, description, city, lat, lon, price, currency, max_guests, bedrooms, property_type,
           string_to_array(amenities, ','), instant_book, min_nights, max_nights, booked::datemultirange
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::int8[],
           $8::text[], $9::int4[], $10::int4[], $11::text[], $12::text[], $13::bool[], $14::int4[], $15::int4[],
           $16::text[])
           AS t(id, title, description, city, lat, lon, price, currency, max_guests, bedrooms, property_type,
             amenities, instant_book, min_nights, max_nights, booked)",
        &[
            &ids,
            &titles,
            &descriptions,
            &cities,
            &lats,
            &lons,
            &prices,
            &currencies,
            &guests,
            &bedrooms,
            &types,
            &amenities,
            &instant,
            &min_nights,
            &max_nights,
            &booked,
        ],
    )
    .await
    .unwrap();
}

/// The same search as one PostgreSQL statement: page, total and facets.
fn pg_query(c: &Criteria) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut p = |v: Box<dyn ToSql + Sync + Send>| {
        params.push(v);
        format!("${}", params.len())
    };
    let mut conds: Vec<String> = Vec::new();
    let mut tsquery = None;
    if let Some(text) = &c.text {
        let t = p(Box::new(text.clone()));
        let q = format!("(websearch_to_tsquery('french', {t}) || websearch_to_tsquery('english', {t}))");
        conds.push(format!("doc @@ {q}"));
        tsquery = Some(q);
    }
    let mut boxes: Vec<domain::BBox> = c.bbox.into_iter().collect();
    if let (Some(center), Some(r)) = (c.center, c.radius_km) {
        boxes.push(domain::bbox_around(center, r));
    }
    for b in boxes {
        conds.push(format!(
            "point(lon, lat) <@ box(point({}, {}), point({}, {}))",
            p(Box::new(b.min_lon)),
            p(Box::new(b.min_lat)),
            p(Box::new(b.max_lon)),
            p(Box::new(b.max_lat))
        ));
    }
    let distance = c.center.map(|(lat, lon)| {
        let (la, lo) = (p(Box::new(lat)), p(Box::new(lon)));
        format!(
            "2 * 6371.0088 * asin(sqrt(power(sin(radians(lat - {la}) / 2), 2) \
             + cos(radians({la})) * cos(radians(lat)) * power(sin(radians(lon - {lo}) / 2), 2)))"
        )
    });
    if let (Some(d), Some(r)) = (&distance, c.radius_km) {
        conds.push(format!("{d} <= {}", p(Box::new(r))));
    }
    if let Some(g) = c.guests {
        conds.push(format!("max_guests >= {}", p(Box::new(g as i32))));
    }
    if let Some(b) = c.bedrooms {
        conds.push(format!("bedrooms >= {}", p(Box::new(b as i32))));
    }
    if let Some(v) = c.min_price {
        conds.push(format!("price >= {}", p(Box::new(v as i64))));
    }
    if let Some(v) = c.max_price {
        conds.push(format!("price <= {}", p(Box::new(v as i64))));
    }
    if let Some((check_in, check_out)) = c.stay {
        let nights = (check_out - check_in).num_days() as i32;
        let n = p(Box::new(nights));
        conds.push(format!("min_nights <= {n} AND max_nights >= {n}"));
        conds.push(format!(
            "NOT booked && datemultirange(daterange({}::text::date, {}::text::date))",
            p(Box::new(check_in.to_string())),
            p(Box::new(check_out.to_string()))
        ));
    }
    let key = match (c.sort, &tsquery, &distance) {
        (Sort::Relevance, Some(q), _) => format!("-ts_rank(doc, {q})"),
        (Sort::Relevance, None, _) => "0".to_owned(),
        (Sort::PriceAsc, _, _) => "price".to_owned(),
        (Sort::PriceDesc, _, _) => "-price".to_owned(),
        (Sort::Rating, _, _) => "0".to_owned(),
        (Sort::Distance, _, Some(d)) => d.clone(),
        (Sort::Distance, _, None) => "0".to_owned(),
    };
    let filter = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
    let sql = format!(
        "WITH m AS MATERIALIZED (
           SELECT id, title, city, lat, lon, price, currency, max_guests, property_type, amenities, {key} AS key
           FROM bench_listings {filter})
         SELECT
           (SELECT coalesce(json_agg(p), '[]') FROM (SELECT id, title, city, lat, lon, price, currency, max_guests,
              property_type, key FROM m ORDER BY key, id LIMIT {limit}) p)::text,
           (SELECT count(*) FROM m),
           (SELECT coalesce(json_object_agg(property_type, n), '{{}}')
              FROM (SELECT property_type, count(*) n FROM m GROUP BY 1) t)::text,
           (SELECT coalesce(json_object_agg(a, n), '{{}}')
              FROM (SELECT unnest(amenities) a, count(*) n FROM m GROUP BY 1) t)::text,
           (SELECT coalesce(json_object_agg(b, n), '{{}}')
              FROM (SELECT least(price / 5000, 20) b, count(*) n FROM m GROUP BY 1) t)::text",
        limit = c.limit + 1
    );
    (sql, params)
}

async fn pg_search(db: &Client, c: &Criteria) -> u64 {
    let (sql, params) = pg_query(c);
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect();
    let row = db.query_one(sql.as_str(), &refs).await.expect("PostgreSQL query");
    row.get::<_, i64>(1) as u64
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn summary(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    (percentile(&samples, 0.50), percentile(&samples, 0.99))
}

fn main() {
    let n = common::listing_count();
    let today = Utc::now().date_naive();
    let queries = query_mix(env_or("HOMETRIP_BENCH_QUERIES", 3000), today);
    let seconds: u64 = env_or("HOMETRIP_BENCH_SECONDS", 10);
    if let Some(file) = std::env::var_os("HOMETRIP_BENCH_PATHS") {
        let paths: String = queries.iter().fold(String::new(), |mut out, q| {
            let _ = writeln!(out, "/api/v1/search/listings?{q}");
            out
        });
        std::fs::write(file, paths).unwrap();
    }
    let criteria: Arc<Vec<Criteria>> = Arc::new(queries.iter().map(|q| common::criteria(q)).collect());
    let service = SearchService::new(common::index(n, today), Arc::new(common::NoListings));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server =
        std::env::var("HOMETRIP_BENCH_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let url = rt.block_on(pg_prepare(&server, n, today));
    let db = rt.block_on(pg_connect(&url));

    // One at a time: latency of each side, and the totals compared.
    let warm = criteria.len().min(300);
    for c in criteria.iter().take(warm) {
        rt.block_on(service.search(c)).unwrap();
        rt.block_on(pg_search(&db, c));
    }
    let (mut ours, mut theirs, mut checked, mut differ) = (Vec::new(), Vec::new(), 0, 0);
    for c in criteria.iter() {
        let started = Instant::now();
        let results = rt.block_on(service.search(c)).unwrap();
        ours.push(started.elapsed());
        let started = Instant::now();
        let total = rt.block_on(pg_search(&db, c));
        theirs.push(started.elapsed());
        if c.text.is_none() {
            checked += 1;
            if total != results.total {
                differ += 1;
            }
        }
    }
    let (our_p50, our_p99) = summary(ours);
    let (pg_p50, pg_p99) = summary(theirs);

    // Eight clients each side for a fixed time.
    let run = Duration::from_secs(seconds);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (service, criteria, done, stop) =
                (Arc::clone(&service), Arc::clone(&criteria), Arc::clone(&done), Arc::clone(&stop));
            std::thread::spawn(move || {
                let local = tokio::runtime::Builder::new_current_thread().build().unwrap();
                let mut i = t * 97;
                while !stop.load(Ordering::Relaxed) {
                    local.block_on(service.search(&criteria[i % criteria.len()])).unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    let our_qps = done.load(Ordering::Relaxed) as f64 / run.as_secs_f64();

    let pg_done = Arc::new(AtomicU64::new(0));
    let pg_stop = Arc::new(AtomicBool::new(false));
    rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..CLIENTS {
            let (url, criteria, done, stop) =
                (url.clone(), Arc::clone(&criteria), Arc::clone(&pg_done), Arc::clone(&pg_stop));
            tasks.push(tokio::spawn(async move {
                let db = pg_connect(&url).await;
                let mut i = t * 97;
                while !stop.load(Ordering::Relaxed) {
                    pg_search(&db, &criteria[i % criteria.len()]).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            }));
        }
        tokio::time::sleep(run).await;
        pg_stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
    });
    let pg_qps = pg_done.load(Ordering::Relaxed) as f64 / run.as_secs_f64();

    println!("\n{n} listings, {} queries (a third each: text + box + dates + guests + price; radius by distance; a whole city by price; facets always)", criteria.len());
    println!("| | p50 | p99 | queries/s, {CLIENTS} clients |");
    println!("|---|---|---|---|");
    println!("| HomeTrip (in process) | {our_p50:.2} ms | {our_p99:.2} ms | {our_qps:.0} |");
    println!("| PostgreSQL | {pg_p50:.2} ms | {pg_p99:.2} ms | {pg_qps:.0} |");
    println!(
        "| ratio | {:.1}× | {:.1}× | {:.1}× |",
        pg_p50 / our_p50,
        pg_p99 / our_p99,
        our_qps / pg_qps.max(f64::MIN_POSITIVE)
    );
    println!("totals of the {checked} queries without text: {differ} differ between the two");
}
