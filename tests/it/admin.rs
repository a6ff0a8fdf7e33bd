//! Administration: suspending a user ends their sessions at once, keeps
//! them from signing in and takes their listings out of search, until they
//! are reinstated; each step is on the audit record.

use serde_json::{json, Value};

use crate::support::*;

fn found(page: &Value, listing: &str) -> bool {
    page["items"].as_array().unwrap().iter().any(|h| h["id"] == listing)
}

#[tokio::test]
async fn a_suspended_user_is_signed_out_everywhere_and_their_listings_leave_search() {
    let server = Server::start().await;
    let admin = admin(&server).await;
    let email = unique_email("host");
    let (host, pair) = server.client().signed_up(&email).await;
    let host_id = host.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    let listing = publish_listing(&server, &host, house("Maison suspendue")).await;
    let search = "/api/v1/search/listings?q=suspendue";
    eventually(&server.client(), search, |p| found(p, &listing)).await;

    let path = format!("/api/v1/admin/users/{host_id}/suspend");
    assert_eq!(host.post(&path, json!({"reason": "x"})).await.problem(403), "forbidden");
    assert_eq!(admin.post(&path, json!({"reason": "  "})).await.problem(422), "validation_failed");
    let admin_id = admin.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    let own = admin.post(&format!("/api/v1/admin/users/{admin_id}/suspend"), json!({"reason": "oops"})).await;
    assert_eq!(own.problem(409), "conflict");
    let suspended = admin.post(&path, json!({"reason": "Fraudulent listings"})).await;
    assert_eq!(suspended.status, 200, "{}", suspended.text);
    assert_eq!(suspended.body["suspended"], true);

    // Sessions end at once: the access token, the refresh token, a new sign-in.
    assert_eq!(host.get("/api/v1/users/me").await.status, 401);
    let refreshed = server.client().post("/api/v1/auth/refresh", json!({"refresh_token": pair["refresh_token"]})).await;
    assert_eq!(refreshed.status, 401, "{}", refreshed.text);
    assert_eq!(server.client().login(&email, PASSWORD).await.problem(403), "forbidden");
    // The listings leave search and the public pages.
    eventually(&server.client(), search, |p| !found(p, &listing)).await;
    assert_eq!(server.client().get(&format!("/api/v1/listings/{listing}")).await.problem(404), "not_found");

    // Reinstated: the host signs in again and the listing is back as it was.
    let back = admin.post(&format!("/api/v1/admin/users/{host_id}/reinstate"), json!({})).await;
    assert_eq!(back.status, 200, "{}", back.text);
    assert_eq!(back.body["suspended"], false);
    assert_eq!(server.client().login(&email, PASSWORD).await.status, 200);
    eventually(&server.client(), search, |p| found(p, &listing)).await;
    let shown = server.client().get(&format!("/api/v1/listings/{listing}")).await;
    assert_eq!(shown.body["status"], "published");

    // Both steps are on the audit record, with the reason.
    let audit = eventually(&admin, &format!("/api/v1/admin/audit?actor={admin_id}"), |p| {
        let items = p["items"].as_array().unwrap();
        items
            .iter()
            .any(|e| e["action"] == "POST /api/v1/admin/users/{id}/suspend" && e["reason"] == "Fraudulent listings")
            && items.iter().any(|e| e["action"] == "POST /api/v1/admin/users/{id}/reinstate")
    })
    .await;
    let target = format!("users/{host_id}");
    assert!(audit["items"].as_array().unwrap().iter().any(|e| e["target"] == target.as_str()));
}

fn ledger(items: &Value, kind: &str, booking: &str) -> i64 {
    items["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == kind && t["booking_id"] == booking)
        .map(|t| t["amount"]["amount"].as_i64().unwrap())
        .sum()
}

#[tokio::test]
async fn an_admin_refunds_part_of_a_booking_and_never_more_than_was_paid() {
    let server = Server::start().await;
    let admin = admin(&server).await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let (guest, _) = server.client().signed_up(&unique_email("guest")).await;
    let listing = publish_listing(&server, &host, house("Maison remboursée")).await;
    let id = book_and_pay(&guest, &listing, 20).await;
    let total = guest.get(&format!("/api/v1/bookings/{id}")).await.body["price"]["total"]["amount"].as_i64().unwrap();
    let path = format!("/api/v1/admin/bookings/{id}/refund");
    let eur = |amount: i64| json!({"amount": amount, "currency": "EUR"});

    let refused = guest.post(&path, json!({"amount": eur(100), "reason": "I want it"})).await;
    assert_eq!(refused.problem(403), "forbidden");
    assert_eq!(admin.post(&path, json!({"amount": eur(100), "reason": ""})).await.problem(422), "validation_failed");
    let usd = admin.post(&path, json!({"amount": {"amount": 100, "currency": "USD"}, "reason": "Heating"})).await;
    assert_eq!(usd.problem(422), "validation_failed");
    let too_much = admin.post(&path, json!({"amount": eur(total + 1), "reason": "Heating"})).await;
    assert_eq!(too_much.problem(422), "validation_failed");

    // Part of it, once per Idempotency-Key.
    let part = admin
        .send(
            admin
                .http
                .post(server.url(&path))
                .header("idempotency-key", "dispute-1")
                .json(&json!({"amount": eur(5_000), "reason": "The heating was broken for a night"})),
        )
        .await;
    assert_eq!(part.status, 200, "{}", part.text);
    assert_eq!(part.body["amount"]["amount"], 5_000);
    assert_eq!(part.body["refundable"]["amount"], total - 5_000);
    let again = admin
        .send(
            admin
                .http
                .post(server.url(&path))
                .header("idempotency-key", "dispute-1")
                .json(&json!({"amount": eur(5_000), "reason": "The heating was broken for a night"})),
        )
        .await;
    assert_eq!(again.body["refunded"]["amount"], 5_000, "{}", again.text);

    // The rest, and then nothing more.
    let rest = admin.post(&path, json!({"amount": eur(total - 5_000), "reason": "Goodwill"})).await;
    assert_eq!(rest.status, 200, "{}", rest.text);
    assert_eq!(rest.body["refunded"]["amount"], total);
    assert_eq!(rest.body["refundable"]["amount"], 0);
    let beyond = admin.post(&path, json!({"amount": eur(1), "reason": "More"})).await;
    assert_eq!(beyond.problem(422), "validation_failed");
    // The guest's ledger shows it all back.
    let g = eventually(&guest, "/api/v1/payments/transactions", |t| ledger(t, "refund", &id).abs() == total).await;
    assert_eq!(ledger(&g, "refund", &id).abs(), total);
}

#[tokio::test]
async fn an_admin_reads_a_conversation_for_a_dispute_with_a_reason_on_record() {
    let server = Server::start().await;
    let admin = admin(&server).await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let (guest, _) = server.client().signed_up(&unique_email("guest")).await;
    let listing = publish_listing(&server, &host, house("Maison du litige")).await;
    let started =
        guest.post("/api/v1/conversations", json!({"listing_id": listing, "body": "Is the garden fenced?"})).await;
    assert_eq!(started.status, 201, "{}", started.text);
    let conversation = started.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/admin/conversations/{conversation}/messages");

    assert_eq!(guest.get(&format!("{path}?reason=curious")).await.problem(403), "forbidden");
    assert_eq!(admin.get(&path).await.problem(422), "validation_failed");
    let read = admin.get(&format!("{path}?reason=dispute%20D-17")).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.body["items"][0]["body"], "Is the garden fenced?");
    let admin_id = admin.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    let audit = eventually(&admin, &format!("/api/v1/admin/audit?actor={admin_id}"), |p| {
        p["items"].as_array().unwrap().iter().any(|e| e["reason"] == "dispute D-17" && e["status"] == 200)
    })
    .await;
    let entry = audit["items"].as_array().unwrap().iter().find(|e| e["reason"] == "dispute D-17").cloned().unwrap();
    assert_eq!(entry["action"], "GET /api/v1/admin/conversations/{id}/messages");
    assert_eq!(entry["target"], format!("conversations/{conversation}"));
}

/// The claims of a JWT, read without checking it (the server checks).
fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn an_admin_views_as_a_user_read_only_for_thirty_minutes_and_the_user_is_told() {
    let server = Server::start().await;
    let admin = admin(&server).await;
    let other_admin = crate::support::admin(&server).await;
    let email = unique_email("viewed");
    let (user, _) = server.client().signed_up(&email).await;
    let user_id = user.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/admin/users/{user_id}/impersonate");

    assert_eq!(user.post(&path, json!({"reason": "x"})).await.problem(403), "forbidden");
    assert_eq!(admin.post(&path, json!({"reason": ""})).await.problem(422), "validation_failed");
    let other_id = other_admin.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    let peer = admin.post(&format!("/api/v1/admin/users/{other_id}/impersonate"), json!({"reason": "curious"})).await;
    assert_eq!(peer.problem(403), "forbidden");

    let started = admin.post(&path, json!({"reason": "Ticket 881: payment page error"})).await;
    assert_eq!(started.status, 201, "{}", started.text);
    assert_eq!(started.body["read_only"], true);
    assert_eq!(started.body["expires_in"], 1800);
    let token = started.body["access_token"].as_str().unwrap();
    let claims = claims_of(token);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 1800);
    let admin_id = admin.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    assert_eq!(claims["act"]["sub"], admin_id.as_str());

    // Reads as the user; changes nothing.
    let viewer = server.client().with_token(token);
    let me = viewer.get("/api/v1/users/me").await;
    assert_eq!(me.body["id"], user_id.as_str(), "{}", me.text);
    assert_eq!(viewer.get("/api/v1/notifications").await.status, 200);
    assert_eq!(viewer.patch("/api/v1/users/me", json!({"display_name": "Hacked"})).await.problem(403), "forbidden");
    let change = viewer.post("/api/v1/auth/2fa/setup", json!({})).await;
    assert_eq!(change.problem(403), "forbidden");
    assert_eq!(viewer.get("/api/v1/admin/audit").await.problem(403), "forbidden");
    assert_eq!(user.get("/api/v1/users/me").await.body["display_name"], me.body["display_name"]);

    // The user is told by email; the start is on the audit record.
    let told = server.wait_email(&email, "administrator").await;
    assert!(told.body.contains("Ticket 881"), "{}", told.body);
    let audit = eventually(&admin, &format!("/api/v1/admin/audit?actor={admin_id}"), |p| {
        p["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "POST /api/v1/admin/users/{id}/impersonate" && e["status"] == 201)
    })
    .await;
    assert!(audit.to_string().contains("Ticket 881"));
}

#[tokio::test]
async fn the_performance_view_reads_routes_database_and_outbox_from_the_metrics() {
    let server = Server::start().await;
    let admin = admin(&server).await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let listing = publish_listing(&server, &host, house("Maison mesurée")).await;
    for _ in 0..5 {
        assert_eq!(server.client().get(&format!("/api/v1/listings/{listing}")).await.status, 200);
    }
    assert_eq!(server.client().get(&format!("/api/v1/listings/{}", uuid::Uuid::now_v7())).await.status, 404);
    assert_eq!(host.get("/api/v1/admin/performance").await.problem(403), "forbidden");
    let p = admin.get("/api/v1/admin/performance").await;
    assert_eq!(p.status, 200, "{}", p.text);
    let route = p.body["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["method"] == "GET" && r["route"] == "/api/v1/listings/{id}")
        .cloned()
        .unwrap_or_else(|| panic!("{}", p.text));
    assert!(route["requests"].as_u64().unwrap() >= 6, "{route}");
    assert!(route["client_error_rate"].as_f64().unwrap() > 0.0, "{route}");
    assert_eq!(route["error_rate"], 0.0);
    assert!(route["p99_ms"].as_f64().unwrap() >= route["p50_ms"].as_f64().unwrap());
    // The gateway's process: in the split its database figures are its own.
    if !crate::shape::is_split() {
        let stores = p.body["database"].as_array().unwrap();
        assert!(
            stores.iter().any(|s| s["store"] == "hometrip_listing::store" && s["transactions"].as_u64() > Some(0)),
            "{}",
            p.text
        );
    }
    assert!(p.body["outbox_pending"].as_f64().is_some() && p.body["outbox_lag_seconds"].as_f64().is_some());
}
