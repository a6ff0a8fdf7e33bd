//! API.md's Listings section through the binary: drafts, owner checks, photos,
//! publishing, the calendar and quotes.

use serde_json::{json, Value};

use crate::support::*;

fn full_listing() -> Value {
    json!({
        "title": "Loft au bord du canal",
        "description": "Un loft lumineux près du canal Saint-Martin.",
        "property_type": "loft",
        "address": {"line1": "12 quai de Valmy", "city": "Paris", "postal_code": "75010", "country": "FR"},
        "location": {"lat": 48.8707, "lon": 2.3635},
        "max_guests": 4, "bedrooms": 2, "beds": 2, "bathrooms": 1.5,
        "amenities": ["wifi", "kitchen", "washer"],
        "nightly_price": {"amount": 12000, "currency": "EUR"},
        "cleaning_fee": {"amount": 3000, "currency": "EUR"},
        "instant_book": true, "cancellation_policy": "moderate",
        "min_nights": 2, "max_nights": 30
    })
}

fn date(days_from_today: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(days_from_today)).to_string()
}

async fn published(server: &Server, host: &Api) -> String {
    let created = host.post("/api/v1/listings", full_listing()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let up = host.send(upload(host, server, &id, vec![png(800, 600)])).await;
    assert_eq!(up.status, 201, "{}", up.text);
    let p = host.post(&format!("/api/v1/listings/{id}/publish"), json!({})).await;
    assert_eq!(p.status, 200, "{}", p.text);
    id
}

fn upload(api: &Api, server: &Server, id: &str, files: Vec<Vec<u8>>) -> reqwest::RequestBuilder {
    let mut form = reqwest::multipart::Form::new();
    for (i, f) in files.into_iter().enumerate() {
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(f).file_name(format!("p{i}.png")).mime_str("image/png").unwrap(),
        );
    }
    api.http.post(server.url(&format!("/api/v1/listings/{id}/photos"))).multipart(form)
}

#[tokio::test]
async fn drafts_photos_publishing_and_owner_checks() {
    let server = Server::start().await;
    let api = server.client();
    let (host, _) = api.signed_up(&unique_email("host")).await;
    let (guest, _) = api.signed_up(&unique_email("guest")).await;

    let draft = host.post("/api/v1/listings", json!({"title": "Chalet"})).await;
    assert_eq!(draft.status, 201, "{}", draft.text);
    assert_eq!(draft.body["status"], json!("draft"));
    let id = draft.body["id"].as_str().unwrap().to_owned();
    // Drafts are invisible to others.
    assert_eq!(guest.get(&format!("/api/v1/listings/{id}")).await.problem(404), "not_found");
    assert_eq!(api.get(&format!("/api/v1/listings/{id}")).await.problem(404), "not_found");
    assert_eq!(host.get(&format!("/api/v1/listings/{id}")).await.status, 200);

    // Publishing lists what is missing.
    let missing = host.post(&format!("/api/v1/listings/{id}/publish"), json!({})).await;
    assert_eq!(missing.problem(422), "validation_failed");
    let fields: Vec<&str> =
        missing.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(
        fields.contains(&"photos") && fields.contains(&"nightly_price") && fields.contains(&"location"),
        "{fields:?}"
    );

    let mut patch = full_listing();
    patch.as_object_mut().unwrap().remove("title");
    let updated = host.patch(&format!("/api/v1/listings/{id}"), patch).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["title"], json!("Chalet"));
    assert_eq!(updated.body["bathrooms"], json!(1.5));

    // Photos: several at once; bad files are refused and nothing is stored.
    let bad = host.send(upload(&host, &server, &id, vec![png(400, 300), b"not an image".to_vec()])).await;
    assert_eq!(bad.problem(415), "unsupported_media_type");
    let huge = host.send(upload(&host, &server, &id, vec![vec![0u8; 11 * 1024 * 1024]])).await;
    assert_eq!(huge.problem(413), "payload_too_large");
    let up = host.send(upload(&host, &server, &id, vec![png(1200, 900), png(640, 480)])).await;
    assert_eq!(up.status, 201, "{}", up.text);
    let photos = up.body["photos"].as_array().unwrap();
    assert_eq!(photos.len(), 2);
    assert_eq!(photos[0]["position"], json!(0));
    assert_eq!(photos[1]["position"], json!(1));
    let served = reqwest::get(server.url(photos[0]["url"].as_str().unwrap())).await.unwrap();
    assert_eq!(served.status(), 200);
    let img = image::load_from_memory(&served.bytes().await.unwrap()).unwrap();
    assert_eq!(img.width(), 1200, "no upscaling past the original");
    let thumb =
        reqwest::get(server.url(photos[0]["thumbnail_url"].as_str().unwrap())).await.unwrap().bytes().await.unwrap();
    assert_eq!(image::load_from_memory(&thumb).unwrap().width(), 320);
    assert_eq!(guest.send(upload(&guest, &server, &id, vec![png(64, 64)])).await.status, 404);

    let published = host.post(&format!("/api/v1/listings/{id}/publish"), json!({})).await;
    assert_eq!(published.status, 200, "{}", published.text);
    assert_eq!(published.body["status"], json!("published"));
    let public = api.get(&format!("/api/v1/listings/{id}")).await;
    assert_eq!(public.status, 200);
    assert_eq!(public.body["host_id"], host.get("/api/v1/users/me").await.body["id"]);
    assert_eq!(public.body["photos"].as_array().unwrap().len(), 2);
    assert!(public.body.get("rating").is_some());

    // Only the owner changes it.
    assert_eq!(
        guest.patch(&format!("/api/v1/listings/{id}"), json!({"title": "Mine now"})).await.problem(403),
        "forbidden"
    );
    assert_eq!(
        guest.send(guest.http.delete(server.url(&format!("/api/v1/listings/{id}")))).await.problem(403),
        "forbidden"
    );
    // A published listing stays complete.
    let emptied = host.patch(&format!("/api/v1/listings/{id}"), json!({"title": ""})).await;
    assert_eq!(emptied.problem(422), "validation_failed");

    // Unlisted: hidden again.
    assert_eq!(host.post(&format!("/api/v1/listings/{id}/unlist"), json!({})).await.body["status"], json!("unlisted"));
    assert_eq!(api.get(&format!("/api/v1/listings/{id}")).await.status, 404);

    // Deleted: gone, photos too.
    let del = host.send(host.http.delete(server.url(&format!("/api/v1/listings/{id}")))).await;
    assert_eq!(del.status, 204, "{}", del.text);
    assert_eq!(host.get(&format!("/api/v1/listings/{id}")).await.status, 404);
    assert_eq!(reqwest::get(server.url(photos[0]["url"].as_str().unwrap())).await.unwrap().status(), 404);
}

#[tokio::test]
async fn bad_listing_input_is_refused_field_by_field() {
    let server = Server::start().await;
    let (host, _) = server.client().signed_up(&unique_email("h")).await;
    let r = host
        .post(
            "/api/v1/listings",
            json!({"location": {"lat": 200, "lon": 0}, "amenities": ["wifi", "moat"], "property_type": "spaceship",
                   "nightly_price": {"amount": -5, "currency": "EUR"}, "max_guests": 0}),
        )
        .await;
    assert_eq!(r.problem(422), "validation_failed");
    let fields: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for f in ["location.lat", "amenities", "property_type", "nightly_price", "max_guests"] {
        assert!(fields.contains(&f), "{f}: {}", r.text);
    }
    let thousand: Vec<String> = (0..1000).map(|i| format!("a{i}")).collect();
    assert_eq!(host.post("/api/v1/listings", json!({"amenities": thousand})).await.status, 422);
    assert_eq!(
        host.post("/api/v1/listings", json!({"nightly_price": {"amount": 100, "currency": "BTC"}})).await.status,
        422
    );
    assert_eq!(host.post("/api/v1/listings", json!({"colour": "blue"})).await.status, 422);
    assert_eq!(server.client().post("/api/v1/listings", json!({})).await.problem(401), "unauthenticated");
    assert_eq!(host.get("/api/v1/listings/not-an-id").await.problem(400), "invalid_path");
}

#[tokio::test]
async fn calendar_blocks_and_prices_shape_quotes() {
    let server = Server::start().await;
    let api = server.client();
    let (host, _) = api.signed_up(&unique_email("cal")).await;
    let id = published(&server, &host).await;
    let (guest, _) = api.signed_up(&unique_email("g")).await;

    let quote = |ci: i64, co: i64, guests: u32| {
        let api = api.clone();
        let path = format!("/api/v1/listings/{id}/quote?check_in={}&check_out={}&guests={guests}", date(ci), date(co));
        async move { api.get(&path).await }
    };
    let q = quote(10, 13, 2).await;
    assert_eq!(q.status, 200, "{}", q.text);
    assert_eq!(q.body["nights"], json!(3));
    assert_eq!(q.body["nightly_subtotal"], json!({"amount": 36000, "currency": "EUR"}));
    assert_eq!(q.body["cleaning_fee"]["amount"], json!(3000));
    let sum: i64 = ["nightly_subtotal", "extra_guest_fee", "cleaning_fee", "service_fee", "taxes"]
        .iter()
        .map(|k| q.body[k]["amount"].as_i64().unwrap())
        .sum::<i64>()
        - q.body["discounts"]["amount"].as_i64().unwrap();
    assert_eq!(q.body["total"]["amount"].as_i64().unwrap(), sum);

    // The host blocks a night and reprices others.
    let edit = json!({"ranges": [
        {"from": date(11), "to": date(12), "available": false},
        {"from": date(20), "to": date(22), "price": {"amount": 20000, "currency": "EUR"}}
    ]});
    assert_eq!(
        guest
            .send(guest.http.put(server.url(&format!("/api/v1/listings/{id}/calendar"))).json(&edit))
            .await
            .problem(403),
        "forbidden"
    );
    let cal = host.send(host.http.put(server.url(&format!("/api/v1/listings/{id}/calendar"))).json(&edit)).await;
    assert_eq!(cal.status, 200, "{}", cal.text);
    let days = api.get(&format!("/api/v1/listings/{id}/calendar?from={}&to={}", date(10), date(23))).await;
    let days = days.body["days"].as_array().unwrap().clone();
    assert_eq!(days.len(), 13);
    assert_eq!(days[1]["available"], json!(false));
    assert_eq!(days[1]["reason"], json!("blocked"));
    assert_eq!(days[0]["available"], json!(true));
    assert_eq!(days[10]["price"]["amount"], json!(20000));

    // A stay over the blocked night is refused; one ending on it is fine.
    assert_eq!(quote(10, 13, 2).await.problem(409), "conflict");
    assert_eq!(quote(9, 11, 2).await.status, 200);
    let repriced = quote(20, 22, 2).await;
    assert_eq!(repriced.body["nightly_subtotal"]["amount"], json!(40000), "{}", repriced.text);
    // Rules: too short, too many guests, reversed dates.
    assert_eq!(quote(30, 31, 2).await.problem(422), "validation_failed");
    assert_eq!(quote(30, 33, 9).await.problem(422), "validation_failed");
    assert_eq!(quote(33, 30, 2).await.problem(422), "validation_failed");
    assert_eq!(
        api.get(&format!("/api/v1/listings/{id}/quote?check_in=2027-02-30&check_out=2027-03-02")).await.problem(400),
        "invalid_query"
    );

    // Unblocking frees it again; bad ranges are refused whole.
    let unblock = json!({"ranges": [{"from": date(11), "to": date(12), "available": true}]});
    assert_eq!(
        host.send(host.http.put(server.url(&format!("/api/v1/listings/{id}/calendar"))).json(&unblock)).await.status,
        200
    );
    assert_eq!(quote(10, 13, 2).await.status, 200);
    let bad =
        json!({"ranges": [{"from": date(5), "to": date(4), "available": false}, {"from": date(1), "to": date(3)}]});
    let r = host.send(host.http.put(server.url(&format!("/api/v1/listings/{id}/calendar"))).json(&bad)).await;
    assert_eq!(r.problem(422), "validation_failed");
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 2);
    let wrong_currency =
        json!({"ranges": [{"from": date(5), "to": date(6), "price": {"amount": 100, "currency": "USD"}}]});
    assert_eq!(
        host.send(host.http.put(server.url(&format!("/api/v1/listings/{id}/calendar"))).json(&wrong_currency))
            .await
            .status,
        422
    );
    let too_wide = api.get(&format!("/api/v1/listings/{id}/calendar?from={}&to={}", date(0), date(2000))).await;
    assert_eq!(too_wide.problem(422), "validation_failed");
}

#[tokio::test]
async fn amenities_have_french_and_english_labels() {
    let server = Server::start().await;
    let api = server.client();
    let en = api.get("/api/v1/amenities").await;
    let fr = api.send(api.http.get(server.url("/api/v1/amenities")).header("accept-language", "fr-FR")).await;
    let label = |r: &Reply, key: &str| {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| a["label"].as_str().unwrap().to_owned())
    };
    assert_eq!(label(&en, "washer").as_deref(), Some("Washing machine"));
    assert_eq!(label(&fr, "washer").as_deref(), Some("Lave-linge"));
}

#[tokio::test]
async fn photos_are_ordered_captioned_and_deleted() {
    let server = Server::start().await;
    let api = server.client();
    let (host, _) = api.signed_up(&unique_email("ph")).await;
    let id = published(&server, &host).await;
    let more = host.send(upload(&host, &server, &id, vec![png(300, 200), png(200, 300)])).await;
    assert_eq!(more.status, 201, "{}", more.text);
    let listing = api.get(&format!("/api/v1/listings/{id}")).await;
    let ids: Vec<String> =
        listing.body["photos"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 3);
    let reversed: Vec<&String> = ids.iter().rev().collect();
    let ordered = host
        .send(
            host.http
                .put(server.url(&format!("/api/v1/listings/{id}/photos/order")))
                .json(&json!({"photo_ids": reversed})),
        )
        .await;
    assert_eq!(ordered.status, 200, "{}", ordered.text);
    let now: Vec<&str> = ordered.body["photos"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(now, reversed.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    let partial = host
        .send(
            host.http
                .put(server.url(&format!("/api/v1/listings/{id}/photos/order")))
                .json(&json!({"photo_ids": [ids[0]]})),
        )
        .await;
    assert_eq!(partial.problem(422), "validation_failed");

    let captioned =
        host.patch(&format!("/api/v1/listings/{id}/photos/{}", ids[1]), json!({"caption": "Vue sur le port"})).await;
    assert_eq!(captioned.body["caption"], json!("Vue sur le port"), "{}", captioned.text);
    assert_eq!(
        host.patch(&format!("/api/v1/listings/{id}/photos/{}", uuid::Uuid::now_v7()), json!({"caption": "x"}))
            .await
            .status,
        404
    );

    let url = captioned.body["url"].as_str().unwrap().to_owned();
    for pid in &ids[1..] {
        let d = host.send(host.http.delete(server.url(&format!("/api/v1/listings/{id}/photos/{pid}")))).await;
        assert_eq!(d.status, 204, "{}", d.text);
    }
    assert_eq!(reqwest::get(server.url(&url)).await.unwrap().status(), 404);
    // A published listing keeps its last photo.
    let last = host.send(host.http.delete(server.url(&format!("/api/v1/listings/{id}/photos/{}", ids[0])))).await;
    assert_eq!(last.problem(409), "conflict");
}

#[tokio::test]
async fn admins_suspend_and_reinstate_listings() {
    let server = Server::start().await;
    let api = server.client();
    let out = server
        .cli(&["admin", "create", "--email", "mod@example.com", "--password-stdin"], "moderation passphrase long\n");
    assert!(out.status.success());
    let admin = api.with_token(
        api.login("mod@example.com", "moderation passphrase long").await.body["access_token"].as_str().unwrap(),
    );
    let (host, _) = api.signed_up(&unique_email("susp")).await;
    let id = published(&server, &host).await;
    assert_eq!(host.post(&format!("/api/v1/admin/listings/{id}/suspend"), json!({})).await.problem(403), "forbidden");
    let s = admin.post(&format!("/api/v1/admin/listings/{id}/suspend"), json!({})).await;
    assert_eq!(s.body["status"], json!("suspended"), "{}", s.text);
    assert_eq!(api.get(&format!("/api/v1/listings/{id}")).await.status, 404);
    assert_eq!(host.post(&format!("/api/v1/listings/{id}/publish"), json!({})).await.problem(409), "conflict");
    assert_eq!(host.get(&format!("/api/v1/listings/{id}")).await.body["status"], json!("suspended"));
    let r = admin.post(&format!("/api/v1/admin/listings/{id}/reinstate"), json!({})).await;
    assert_eq!(r.body["status"], json!("unlisted"));
    assert_eq!(host.post(&format!("/api/v1/listings/{id}/publish"), json!({})).await.status, 200);
}

#[tokio::test]
async fn seed_demo_fills_the_store_with_bookable_listings() {
    let server = Server::start().await;
    let out = server.cli(&["seed-demo", "--listings", "40", "--seed", "7"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.starts_with("seeded 40 listings"), "{printed}");
    let first = printed.trim().rsplit("first: ").next().unwrap().trim_end_matches(')').to_owned();
    let api = server.client();
    let listing = api.get(&format!("/api/v1/listings/{first}")).await;
    assert_eq!(listing.status, 200, "{}", listing.text);
    assert_eq!(listing.body["status"], json!("published"));
    let photo = listing.body["photos"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(reqwest::get(server.url(&photo)).await.unwrap().status(), 200);
    let days = api.get(&format!("/api/v1/listings/{first}/calendar?from={}&to={}", date(0), date(90))).await;
    assert_eq!(days.body["days"].as_array().unwrap().len(), 90);
}
