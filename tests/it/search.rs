//! Search through the binary: text with stemming, filters, dates, geo, sorts,
//! cursors, facets, autocomplete, similar listings, and bad parameters.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

fn day(n: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(n)).to_string()
}

async fn publish(server: &Server, host: &Api, body: Value) -> String {
    let created = host.post("/api/v1/listings", body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(png(64, 64)).file_name("p.png").mime_str("image/png").unwrap());
    host.send(host.http.post(server.url(&format!("/api/v1/listings/{id}/photos"))).multipart(form)).await;
    let p = host.post(&format!("/api/v1/listings/{id}/publish"), json!({})).await;
    assert_eq!(p.status, 200, "{}", p.text);
    id
}

fn listing(
    title: &str,
    city: &str,
    (lat, lon): (f64, f64),
    kind: &str,
    guests: u32,
    price: i64,
    amenities: &[&str],
) -> Value {
    json!({
        "title": title, "description": format!("{title}, {city}"), "property_type": kind,
        "address": {"line1": "1 rue", "city": city, "postal_code": "00000", "country": "FR"},
        "location": {"lat": lat, "lon": lon}, "max_guests": guests, "bedrooms": guests / 2,
        "amenities": amenities, "nightly_price": {"amount": price, "currency": "EUR"}
    })
}

async fn ids(api: &Api, query: &str) -> Vec<String> {
    let r = api.get(&format!("/api/v1/search/listings?{query}")).await;
    assert_eq!(r.status, 200, "{query}: {}", r.text);
    r.body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

/// Waits until the search for `query` returns `expected` ids (in any order).
async fn eventually(api: &Api, query: &str, expected: &[&String]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut got = ids(api, query).await;
        got.sort();
        let mut want: Vec<String> = expected.iter().map(|s| (*s).clone()).collect();
        want.sort();
        if got == want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn search_filters_sorts_pages_and_suggests() {
    // Counts what the whole index holds: a store of its own.
    let server = Server::start_with(&[]).await;
    let api = server.client();
    let (host, _) = api.signed_up(&unique_email("search")).await;
    let loft = publish(
        &server,
        &host,
        listing("Appartement lumineux près du Louvre", "Paris", (48.8606, 2.3376), "loft", 2, 10_000, &["wifi"]),
    )
    .await;
    let loft2 = publish(
        &server,
        &host,
        listing("Loft calme au Marais", "Paris", (48.8590, 2.3620), "loft", 3, 12_000, &["wifi", "kitchen"]),
    )
    .await;
    let house = publish(
        &server,
        &host,
        listing("Family house with pool", "Paris", (48.8400, 2.2200), "house", 6, 25_000, &["wifi", "pool"]),
    )
    .await;
    let lyon =
        publish(&server, &host, listing("Studio in the old town", "Lyon", (45.7640, 4.8357), "studio", 2, 6_000, &[]))
            .await;
    let all = [&loft, &loft2, &house, &lyon];
    let got = eventually(&api, "limit=50", &all).await;
    assert_eq!(got.len(), 4, "all four indexed: {got:?}");

    // Full text with French stemming and accents folded.
    assert_eq!(ids(&api, "q=appartements").await, vec![loft.clone()]);
    assert_eq!(ids(&api, "q=LOUVRE").await, vec![loft.clone()]);
    assert!(ids(&api, "q=pools").await.contains(&house));
    // Filters.
    assert_eq!(ids(&api, "guests=5").await, vec![house.clone()]);
    assert_eq!(ids(&api, "bedrooms=3").await, vec![house.clone()]);
    assert_eq!(ids(&api, "amenities=wifi,pool").await, vec![house.clone()]);
    let mut lofts = ids(&api, "property_type=loft").await;
    lofts.sort();
    let mut want = vec![loft.clone(), loft2.clone()];
    want.sort();
    assert_eq!(lofts, want);
    assert_eq!(ids(&api, "min_price=5000&max_price=7000").await, vec![lyon.clone()]);
    assert_eq!(ids(&api, "bbox=4.0,45.0,5.5,46.5").await, vec![lyon.clone()]);
    // Radius with distance, nearest first.
    let near = api.get("/api/v1/search/listings?lat=48.8606&lon=2.3376&radius_km=3&sort=distance").await;
    let near_ids: Vec<&str> =
        near.body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(near_ids, vec![loft.as_str(), loft2.as_str()], "{}", near.text);
    // Measured to the approximate location (150-450 m from the exact point at the centre).
    let nearest = near.body["items"][0]["distance_km"].as_f64().unwrap();
    assert!((0.14..=0.46).contains(&nearest), "{nearest}");
    assert_eq!(near.body["total"], json!(2));
    // Sorts.
    let by_price = ids(&api, "sort=price_asc").await;
    assert_eq!(by_price, vec![lyon.clone(), loft.clone(), loft2.clone(), house.clone()]);
    assert_eq!(ids(&api, "sort=price_desc").await.first(), Some(&house));

    // Cursor pages: every listing once, in order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/search/listings?sort=price_asc&limit=1&cursor={c}"),
            None => "/api/v1/search/listings?sort=price_asc&limit=1".to_owned(),
        };
        let page = api.get(&path).await;
        assert_eq!(page.body["total"], json!(4));
        seen.extend(page.body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, by_price);

    // Facets for the filter panel.
    let facets = api.get("/api/v1/search/listings").await.body["facets"].clone();
    assert_eq!(facets["property_types"]["loft"], json!(2));
    assert_eq!(facets["amenities"]["wifi"], json!(3));
    assert_eq!(facets["amenities"]["pool"], json!(1));
    assert!(!facets["price_histogram"].as_array().unwrap().is_empty());

    // Dates: a stay over a blocked night excludes the listing; min nights apply.
    let edit = json!({"ranges": [{"from": day(10), "to": day(11), "available": false}]});
    assert_eq!(
        host.send(host.http.put(server.url(&format!("/api/v1/listings/{loft}/calendar"))).json(&edit)).await.status,
        200
    );
    let stay = format!("check_in={}&check_out={}&property_type=loft", day(9), day(12));
    assert_eq!(eventually(&api, &stay, &[&loft2]).await, vec![loft2.clone()]);
    let after = format!("check_in={}&check_out={}&property_type=loft", day(11), day(13));
    assert_eq!(eventually(&api, &after, &[&loft, &loft2]).await.len(), 2);

    // An edit is searchable within a second.
    host.patch(&format!("/api/v1/listings/{lyon}"), json!({"title": "Traboule hideaway"})).await;
    let started = Instant::now();
    assert_eq!(eventually(&api, "q=traboule", &[&lyon]).await, vec![lyon.clone()]);
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    // Unlisted listings leave the index.
    host.post(&format!("/api/v1/listings/{house}/unlist"), json!({})).await;
    assert!(eventually(&api, "guests=5", &[]).await.is_empty());

    // Autocomplete: cities by popularity, typo-tolerant from four letters.
    let s = api.get("/api/v1/search/autocomplete?q=par").await;
    assert_eq!(s.body["suggestions"][0], json!({"text": "Paris", "kind": "city"}), "{}", s.text);
    let typo = api.get("/api/v1/search/autocomplete?q=lyom").await;
    assert!(typo.body["suggestions"].as_array().unwrap().iter().any(|x| x["text"] == "Lyon"), "{}", typo.text);
    let titles = api.get("/api/v1/search/autocomplete?q=marai").await;
    assert!(titles.body["suggestions"].as_array().unwrap().iter().any(|x| x["kind"] == "listing"), "{}", titles.text);

    // Similar: nearby lofts at a similar price.
    let similar = api.get(&format!("/api/v1/listings/{loft}/similar")).await;
    assert_eq!(similar.status, 200, "{}", similar.text);
    let sim: Vec<&str> = similar.body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(sim, vec![loft2.as_str()]);
}

#[tokio::test]
async fn bad_search_parameters_are_422() {
    let server = Server::start().await;
    let api = server.client();
    let many: Vec<String> = (0..1000).map(|i| format!("a{i}")).collect();
    for query in [
        "lat=200&lon=2".to_owned(),
        format!("check_in={}&check_out={}", day(5), day(3)),
        "min_price=-10".to_owned(),
        format!("amenities={}", many.join(",")),
        format!("q={}", "x".repeat(10_000)),
        "sort=distance".to_owned(),
        "limit=0".to_owned(),
        "cursor=bogus".to_owned(),
        "bbox=1,2,3".to_owned(),
    ] {
        let r = api.get(&format!("/api/v1/search/listings?{query}")).await;
        assert_eq!(r.problem(422), "validation_failed", "{query}");
    }
    assert_eq!(api.get("/api/v1/search/listings?lat=abc&lon=1").await.problem(400), "invalid_query");
    assert_eq!(api.get("/api/v1/search/autocomplete?q=").await.problem(422), "validation_failed");
    assert_eq!(api.get(&format!("/api/v1/listings/{}/similar", uuid::Uuid::now_v7())).await.problem(404), "not_found");
    // Query syntax in user text never fails.
    assert_eq!(api.get("/api/v1/search/listings?q=%22unbalanced%20AND%20(%5B").await.status, 200);
}

#[tokio::test]
async fn seeded_listings_are_searchable_after_a_rebuild() {
    // Counts every listing of the store: a store of its own.
    let server = Server::start_with(&[]).await;
    let api = server.client();
    let out = server.cli(&["seed-demo", "--listings", "60", "--seed", "3"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli = server
        .cli(&["admin", "create", "--email", "ops@example.com", "--password-stdin"], "operations passphrase long\n");
    assert!(cli.status.success());
    let admin = api.with_token(
        api.login("ops@example.com", "operations passphrase long").await.body["access_token"].as_str().unwrap(),
    );
    assert_eq!(api.post("/api/v1/admin/search/reindex", json!({})).await.problem(401), "unauthenticated");
    let rebuilt = admin.post("/api/v1/admin/search/reindex", json!({})).await;
    assert_eq!(rebuilt.body["indexed"], json!(60), "{}", rebuilt.text);
    let all = api.get("/api/v1/search/listings?limit=50").await;
    assert_eq!(all.body["total"], json!(60), "{}", all.text);
    // Demo stays are booked: some listing is excluded for some near date.
    let paris = api.get("/api/v1/search/listings?q=paris&limit=50").await;
    assert!(paris.body["total"].as_u64().unwrap() > 0);
}
