//! Location privacy through the binary: a listing's street address and exact
//! point go to its host, admins and guests with a confirmed booking; everyone
//! else — and every search result — gets the city, neighbourhood and a stable
//! approximate point 150–450 m away.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::support::*;

const EXACT: (f64, f64) = (48.8707, 2.3635);

fn body(title: &str, (lat, lon): (f64, f64)) -> Value {
    json!({
        "title": title,
        "description": "Un loft lumineux près du canal Saint-Martin.",
        "property_type": "loft",
        "address": {"line1": "12 quai de Valmy", "city": "Paris", "neighbourhood": "Canal Saint-Martin",
                    "postal_code": "75010", "country": "FR"},
        "location": {"lat": lat, "lon": lon},
        "max_guests": 4, "bedrooms": 2, "beds": 2, "bathrooms": 1.0,
        "amenities": ["wifi"],
        "nightly_price": {"amount": 12000, "currency": "EUR"},
        "cleaning_fee": {"amount": 3000, "currency": "EUR"},
        "instant_book": true, "cancellation_policy": "flexible",
        "min_nights": 1, "max_nights": 14
    })
}

fn point(v: &Value) -> (f64, f64) {
    (v["lat"].as_f64().unwrap_or(f64::NAN), v["lon"].as_f64().unwrap_or(f64::NAN))
}

/// Great-circle distance in metres.
fn metres((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    let (a, b) = (lat1.to_radians(), lat2.to_radians());
    let (dlat, dlon) = ((lat2 - lat1).to_radians(), (lon2 - lon1).to_radians());
    let h = (dlat / 2.0).sin().powi(2) + a.cos() * b.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().asin()
}

/// Asserts the exact view: street, postcode and the host's own point.
fn assert_exact(listing: &Value, who: &str) {
    assert_eq!(listing["address"]["line1"], "12 quai de Valmy", "{who}: {listing}");
    assert_eq!(listing["address"]["postal_code"], "75010", "{who}: {listing}");
    assert_eq!(point(&listing["location"]), EXACT, "{who}: {listing}");
}

/// Asserts the public view: city, neighbourhood and country, no street or
/// postcode, and `location` the approximate point.
fn assert_public(listing: &Value, approx: (f64, f64), who: &str) {
    let address = &listing["address"];
    assert_eq!(
        (&address["city"], &address["neighbourhood"], &address["country"]),
        (&json!("Paris"), &json!("Canal Saint-Martin"), &json!("FR")),
        "{who}: {listing}"
    );
    assert!(address.get("line1").is_none() && address.get("postal_code").is_none(), "{who}: {listing}");
    assert_eq!(point(&listing["location"]), approx, "{who}: {listing}");
    assert!(!listing.to_string().contains("quai de Valmy") && !listing.to_string().contains("75010"), "{who}");
}

fn instant(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default()).map(|d| d.with_timezone(&Utc)).expect("an instant")
}

/// A paid instant booking of `listing` by `guest`; its body.
async fn confirmed_booking(guest: &Api, listing: &str, from: i64, to: i64) -> Value {
    let (check_in, check_out) = (date_from_today(from), date_from_today(to));
    let b = guest
        .post(
            "/api/v1/bookings",
            json!({"listing_id": listing, "check_in": check_in, "check_out": check_out, "guests": 2}),
        )
        .await;
    assert_eq!(b.status, 201, "{}", b.text);
    let paid = guest
        .post(
            &format!("/api/v1/bookings/{}/payment", b.body["id"].as_str().unwrap()),
            json!({"payment_method": "pm_card_visa"}),
        )
        .await;
    assert_eq!(paid.body["booking_status"], "confirmed", "{}", paid.text);
    b.body
}

#[tokio::test]
async fn the_address_and_exact_location_go_to_the_host_admins_and_confirmed_guests_only() {
    let server = Server::start_with(CLOCK).await;
    let anonymous = server.client();
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let (stranger, _) = server.client().signed_up(&unique_email("stranger")).await;
    let (guest, _) = server.client().signed_up(&unique_email("guest")).await;
    let (canceller, _) = server.client().signed_up(&unique_email("canceller")).await;
    let (dropped_guest, _) = server.client().signed_up(&unique_email("dropped")).await;
    let admin = admin(&server).await;
    let id = publish_listing(&server, &host, body("Loft au bord du canal", EXACT)).await;
    let path = format!("/api/v1/listings/{id}");

    // The host sees everything, and the point visitors are shown.
    let own = host.get(&path).await;
    assert_eq!(own.status, 200, "{}", own.text);
    assert_exact(&own.body, "host");
    let approx = point(&own.body["approximate_location"]);
    let offset = metres(EXACT, approx);
    assert!((150.0..=450.0).contains(&offset), "the approximate point is {offset} m away");
    assert_exact(&admin.get(&path).await.body, "admin");

    // Visitors get the same approximate point on every view, whoever they are.
    for _ in 0..3 {
        assert_public(&anonymous.get(&path).await.body, approx, "anonymous");
        assert_public(&stranger.get(&path).await.body, approx, "another user");
    }
    assert_eq!(anonymous.get(&path).await.headers.get("vary").and_then(|v| v.to_str().ok()), Some("Authorization"));

    // A booking not yet paid gives nothing away; a confirmed one does.
    let unpaid = guest
        .post(
            "/api/v1/bookings",
            json!({"listing_id": id, "check_in": date_from_today(40), "check_out": date_from_today(42), "guests": 2}),
        )
        .await;
    assert_eq!(unpaid.status, 201, "{}", unpaid.text);
    assert_public(&guest.get(&path).await.body, approx, "guest with an unpaid booking");
    let stay = confirmed_booking(&guest, &id, 5, 7).await;
    let exact = eventually(&guest, &path, |l| l["address"]["line1"] == "12 quai de Valmy").await;
    assert_exact(&exact, "confirmed guest");
    assert_public(&stranger.get(&path).await.body, approx, "another user, after the booking");

    // A cancelled booking ends the access.
    let cancelled = confirmed_booking(&canceller, &id, 10, 12).await;
    eventually(&canceller, &path, |l| l["address"]["line1"] == "12 quai de Valmy").await;
    let c = canceller.post(&format!("/api/v1/bookings/{}/cancel", cancelled["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(c.status, 200, "{}", c.text);
    let back = eventually(&canceller, &path, |l| l["address"].get("line1").is_none()).await;
    assert_public(&back, approx, "guest after cancelling");
    // So does the host's cancellation.
    let dropped = confirmed_booking(&dropped_guest, &id, 15, 17).await;
    eventually(&dropped_guest, &path, |l| l["address"]["line1"] == "12 quai de Valmy").await;
    let c = host.post(&format!("/api/v1/bookings/{}/cancel", dropped["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(c.body["booking"]["status"], "cancelled_by_host", "{}", c.text);
    let back = eventually(&dropped_guest, &path, |l| l["address"].get("line1").is_none()).await;
    assert_public(&back, approx, "guest after the host cancelled");

    // A confirmed guest still finds the place once the host unlists it; others get 404.
    assert_eq!(host.post(&format!("/api/v1/listings/{id}/unlist"), json!({})).await.status, 200);
    assert_exact(&guest.get(&path).await.body, "confirmed guest of an unlisted listing");
    assert_eq!(stranger.get(&path).await.problem(404), "not_found");
    assert_eq!(canceller.get(&path).await.problem(404), "not_found");
    assert_eq!(anonymous.get(&path).await.problem(404), "not_found");

    // After the stay the guest keeps the address (it is their trip's history).
    let check_out_at = instant(&stay["check_out_at"]);
    let clock =
        server.internal(reqwest::Method::POST, "/internal/testing/clock", Some(json!({"advance_seconds": 0}))).await;
    let now = instant(&clock.body["now"]);
    let r = server
        .internal(
            reqwest::Method::POST,
            "/internal/testing/clock",
            Some(json!({"advance_seconds": (check_out_at - now).num_seconds() + 3600})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(server.internal(reqwest::Method::POST, "/internal/testing/jobs/run", None).await.status, 200);
    let bid = stay["id"].as_str().unwrap();
    eventually(&guest, &format!("/api/v1/bookings/{bid}"), |b| b["status"] == "completed").await;
    assert_exact(&guest.get(&path).await.body, "guest after the stay");
}

#[tokio::test]
async fn the_approximate_point_moves_with_the_pin_and_differs_per_listing() {
    let server = Server::start().await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let a = publish_listing(&server, &host, body("Loft A", EXACT)).await;
    let b = publish_listing(&server, &host, body("Loft B", EXACT)).await;
    let public = |id: &str| format!("/api/v1/listings/{id}");
    let anonymous = server.client();
    let pa = point(&anonymous.get(&public(&a)).await.body["location"]);
    let pb = point(&anonymous.get(&public(&b)).await.body["location"]);
    assert_ne!(pa, pb, "two listings at one address get different offsets");
    for p in [pa, pb] {
        assert!((150.0..=450.0).contains(&metres(EXACT, p)), "{p:?}");
    }
    // The offset belongs to the listing: moving the pin moves the point by as
    // much (an edit is no fresh sample around the same place; the same metres
    // east are a hair more degrees of longitude further north).
    let moved = (EXACT.0 + 0.01, EXACT.1);
    let r = host.patch(&public(&a), json!({"location": {"lat": moved.0, "lon": moved.1}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let after = point(&anonymous.get(&public(&a)).await.body["location"]);
    assert!((after.0 - pa.0 - 0.01).abs() < 1e-9 && (after.1 - pa.1).abs() < 1e-5, "{pa:?} → {after:?}");
}

#[tokio::test]
async fn search_results_and_similar_listings_carry_the_approximate_location() {
    let server = Server::start().await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let near = (EXACT.0 + 0.004, EXACT.1 + 0.004);
    // Boats: no other test lists one, so a shared server's other listings
    // near the canal are not "similar" to these.
    let boat = |title: &str, at| {
        let mut listing = body(title, at);
        listing["property_type"] = json!("boat");
        listing
    };
    let a = publish_listing(&server, &host, boat("Péniche sur le canal", EXACT)).await;
    let b = publish_listing(&server, &host, boat("Péniche voisine", near)).await;
    let anonymous = server.client();
    let approx_of = |v: &Value| point(&v["approximate_location"]);
    let pa = approx_of(&host.get(&format!("/api/v1/listings/{a}")).await.body);
    let pb = approx_of(&host.get(&format!("/api/v1/listings/{b}")).await.body);

    // A search centred on the exact point: the result shows the approximate
    // point, and its distance is measured to that point, not the exact one.
    let path = format!("/api/v1/search/listings?lat={}&lon={}&radius_km=5&sort=distance", EXACT.0, EXACT.1);
    // Other tests may list near the same point on a shared server: only this
    // test's two listings are looked at.
    let ours = |r: &Value| -> Vec<Value> {
        let items = r["items"].as_array().cloned().unwrap_or_default();
        items.into_iter().filter(|i| i["id"] == a.as_str() || i["id"] == b.as_str()).collect()
    };
    let found = eventually(&anonymous, &path, |r| ours(r).len() == 2).await;
    let items = &ours(&found);
    for item in items {
        let (id, shown) = (item["id"].as_str().unwrap(), point(&item["location"]));
        let (approx, exact) = if id == a { (pa, EXACT) } else { (pb, near) };
        assert_eq!(shown, approx, "{item}");
        assert_ne!(shown, exact, "{item}");
        let km = item["distance_km"].as_f64().unwrap();
        assert!((km - metres(EXACT, approx) / 1000.0).abs() <= 0.006, "{km} km for {item}");
    }
    let a_item = items.iter().find(|i| i["id"] == a.as_str()).unwrap();
    assert!(a_item["distance_km"].as_f64().unwrap() >= 0.14, "not the 0 km of the exact point: {a_item}");
    assert!(!found.to_string().contains("quai de Valmy"));

    // Similar listings: the same.
    let similar = anonymous.get(&format!("/api/v1/listings/{a}/similar")).await;
    assert_eq!(similar.status, 200, "{}", similar.text);
    let items = ours(&similar.body);
    assert_eq!(items.len(), 1, "{}", similar.text);
    assert_eq!(items[0]["id"], b.as_str(), "not the listing itself: {}", similar.text);
    assert_eq!(point(&items[0]["location"]), pb, "{}", similar.text);
}
