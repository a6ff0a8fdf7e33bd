//! API.md's Bookings and Payments sections through the binary: instant book and
//! request to book to completion and payout, every cancellation policy at each
//! side of its cutoffs, the grace period, host cancellation, declined cards,
//! 3-D Secure, expiry of unpaid holds and unanswered requests (with the test
//! clock), idempotent creation, bad input, and concurrent bookings that race
//! for the same nights (in one process and in two sharing PostgreSQL).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::support::*;

fn date(days_from_today: i64) -> String {
    date_from_today(days_from_today)
}

fn listing_body(policy: &str, instant_book: bool) -> Value {
    json!({
        "title": format!("Maison {policy}"),
        "description": "Une maison calme avec jardin.",
        "property_type": "house",
        "address": {"line1": "3 rue des Lilas", "city": "Lyon", "postal_code": "69001", "country": "FR"},
        "location": {"lat": 45.764, "lon": 4.8357},
        "max_guests": 4, "bedrooms": 2, "beds": 2, "bathrooms": 1.0,
        "amenities": ["wifi"],
        "nightly_price": {"amount": 10000, "currency": "EUR"},
        "cleaning_fee": {"amount": 3000, "currency": "EUR"},
        "instant_book": instant_book, "cancellation_policy": policy,
        "min_nights": 1, "max_nights": 14
    })
}

/// A published listing of `host` with this policy and booking style.
async fn listing(server: &Server, host: &Api, policy: &str, instant_book: bool) -> String {
    publish_listing(server, host, listing_body(policy, instant_book)).await
}

async fn book(guest: &Api, listing: &str, check_in: &str, check_out: &str) -> Reply {
    guest
        .post(
            "/api/v1/bookings",
            json!({"listing_id": listing, "check_in": check_in, "check_out": check_out, "guests": 2}),
        )
        .await
}

async fn booked(guest: &Api, listing: &str, check_in: &str, check_out: &str) -> Value {
    let r = book(guest, listing, check_in, check_out).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], "pending_payment");
    r.body
}

async fn pay(guest: &Api, booking: &Value, method: &str) -> Reply {
    guest
        .post(
            &format!("/api/v1/bookings/{}/payment", booking["id"].as_str().unwrap()),
            json!({"payment_method": method}),
        )
        .await
}

/// Moves the server's booking clock forward; returns its new "now".
async fn advance(server: &Server, seconds: i64) -> DateTime<Utc> {
    let r = server
        .internal(reqwest::Method::POST, "/internal/testing/clock", Some(json!({"advance_seconds": seconds})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    run_jobs(server).await;
    instant(&r.body["now"])
}

async fn run_jobs(server: &Server) {
    let r = server.internal(reqwest::Method::POST, "/internal/testing/jobs/run", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

fn instant(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default()).map(|d| d.with_timezone(&Utc)).expect("an instant")
}

fn amounts(items: &Value, kind: &str, booking: &str) -> Vec<i64> {
    items["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == kind && t["booking_id"] == booking)
        .map(|t| t["amount"]["amount"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn instant_book_goes_from_payment_to_completion_and_payout() {
    let server = Server::start_with(CLOCK).await;
    let (host, host_tokens) = server.client().signed_up(&unique_email("host")).await;
    let (guest, _) = server.client().signed_up(&unique_email("guest")).await;
    let host_id = host.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    assert!(host_tokens["access_token"].is_string());
    let id = listing(&server, &host, "flexible", true).await;
    let (check_in, check_out) = (date(20), date(23));

    // The quote shows the refund timeline before anything is paid.
    let q = guest
        .get(&format!("/api/v1/bookings/quote?listing_id={id}&check_in={check_in}&check_out={check_out}&guests=2"))
        .await;
    assert_eq!(q.status, 200, "{}", q.text);
    let total = q.body["total"]["amount"].as_i64().unwrap();
    let timeline = q.body["refund_timeline"].as_array().unwrap();
    assert_eq!(timeline[0]["refund"]["amount"], total, "full refund first: {}", q.text);
    assert_eq!(timeline[0]["kind"], "full");
    assert_eq!(timeline.last().unwrap()["refund"]["amount"], 0);
    assert_eq!(q.body["cancellation_policy"], "flexible");

    let b = booked(&guest, &id, &check_in, &check_out).await;
    let bid = b["id"].as_str().unwrap().to_owned();
    assert_eq!(b["price"]["total"]["amount"], total);
    assert_eq!(b["host_id"], host_id);
    assert_eq!(b["time_zone"], "Europe/Paris");
    assert!(b["hold_expires_at"].is_string());

    // The nights are taken at once for everyone else.
    let (other, _) = server.client().signed_up(&unique_email("other")).await;
    let clash = book(&other, &id, &date(21), &date(25)).await;
    assert_eq!(clash.problem(409), "conflict");
    assert_eq!(clash.body["conflicting_nights"], json!([date(21), date(22)]));
    // The listing's calendar shows them booked (from the booking's event).
    eventually(&guest, &format!("/api/v1/listings/{id}/calendar?from={check_in}&to={check_out}"), |c| {
        c["days"].as_array().unwrap().iter().all(|d| d["available"] == false && d["reason"] == "booked")
    })
    .await;

    let paid = pay(&guest, &b, "pm_card_visa").await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    assert_eq!(paid.body["status"], "succeeded");
    assert_eq!(paid.body["booking_status"], "confirmed");
    let payment_id = paid.body["payment_id"].as_str().unwrap().to_owned();
    // Paying again answers with the same payment, never a second charge.
    let again = pay(&guest, &b, "pm_card_visa").await;
    assert_eq!(again.body["payment_id"], payment_id.as_str());
    let view = guest.get(&format!("/api/v1/bookings/{bid}")).await;
    assert_eq!(view.body["status"], "confirmed");
    assert_eq!(view.body["payment_id"], payment_id.as_str());
    // Strangers may not look; the host may.
    assert_eq!(other.get(&format!("/api/v1/bookings/{bid}")).await.problem(403), "forbidden");
    assert_eq!(host.get(&format!("/api/v1/bookings/{bid}")).await.status, 200);
    let mine = guest.get("/api/v1/bookings?role=guest").await;
    assert_eq!(mine.body["items"][0]["id"], bid.as_str());
    let theirs = host.get("/api/v1/bookings?role=host&status=confirmed").await;
    assert_eq!(theirs.body["items"][0]["id"], bid.as_str());

    // The ledger: the guest paid the total, the host earns the stay minus 3 %.
    let g = eventually(&guest, "/api/v1/payments/transactions", |t| !amounts(t, "charge", &bid).is_empty()).await;
    assert_eq!(amounts(&g, "charge", &bid), vec![-total]);
    let stay = 3 * 10_000 + 3_000;
    let fee = (stay * 300 + 5_000) / 10_000;
    let h = host.get("/api/v1/payments/transactions").await;
    assert_eq!(amounts(&h.body, "charge", &bid), vec![stay - fee]);

    // 24 hours after check-in the payout is released; after check-out the stay is complete.
    let check_in_at = instant(&view.body["check_in_at"]);
    let now = advance(&server, 0).await;
    let payouts = host.get("/api/v1/payouts").await;
    assert_eq!(payouts.body["items"][0]["status"], "scheduled", "{}", payouts.text);
    advance(&server, (check_in_at - now).num_seconds() + 24 * 3600 + 60).await;
    let payouts = eventually(&host, "/api/v1/payouts", |p| p["items"][0]["status"] == "paid").await;
    assert_eq!(payouts["items"][0]["amount"]["amount"], stay - fee);
    let h = host.get("/api/v1/payments/transactions").await;
    assert_eq!(amounts(&h.body, "payout", &bid), vec![stay - fee]);
    advance(&server, 3 * 24 * 3600).await;
    eventually(&guest, &format!("/api/v1/bookings/{bid}"), |b| b["status"] == "completed").await;
    // A finished stay cannot be cancelled.
    assert_eq!(guest.post(&format!("/api/v1/bookings/{bid}/cancel"), json!({})).await.problem(409), "conflict");
}

#[tokio::test]
async fn requests_to_book_are_accepted_declined_or_expire_without_a_charge() {
    let server = Server::start_with(CLOCK).await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let (guest, _) = server.client().signed_up(&unique_email("guest")).await;
    let id = listing(&server, &host, "moderate", false).await;

    let accepted = booked(&guest, &id, &date(10), &date(12)).await;
    let declined = booked(&guest, &id, &date(14), &date(16)).await;
    let ignored = booked(&guest, &id, &date(20), &date(22)).await;
    for b in [&accepted, &declined, &ignored] {
        let p = pay(&guest, b, "pm_card_visa").await;
        assert_eq!(p.status, 200, "{}", p.text);
        assert_eq!(p.body["status"], "requires_capture");
        assert_eq!(p.body["booking_status"], "pending_host");
    }
    let aid = accepted["id"].as_str().unwrap();
    let did = declined["id"].as_str().unwrap();
    let iid = ignored["id"].as_str().unwrap();
    // Only the host answers.
    assert_eq!(guest.post(&format!("/api/v1/bookings/{aid}/accept"), json!({})).await.problem(403), "forbidden");
    let a = host.post(&format!("/api/v1/bookings/{aid}/accept"), json!({})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], "confirmed");
    let d = host.post(&format!("/api/v1/bookings/{did}/decline"), json!({})).await;
    assert_eq!(d.status, 200, "{}", d.text);
    assert_eq!(d.body["status"], "declined");
    assert_eq!(host.post(&format!("/api/v1/bookings/{did}/accept"), json!({})).await.problem(409), "conflict");

    // 24 hours without an answer: expired.
    advance(&server, 24 * 3600 + 60).await;
    eventually(&guest, &format!("/api/v1/bookings/{iid}"), |b| b["status"] == "expired").await;

    // Only the accepted stay was charged; the others' nights are free again.
    let t = guest.get("/api/v1/payments/transactions").await;
    assert_eq!(amounts(&t.body, "charge", aid).len(), 1, "{}", t.text);
    assert!(amounts(&t.body, "charge", did).is_empty() && amounts(&t.body, "charge", iid).is_empty(), "{}", t.text);
    let held =
        server.internal(reqwest::Method::GET, &format!("/internal/booking/listings/{id}/held-nights"), None).await;
    let nights: BTreeSet<String> =
        held.body.as_array().unwrap().iter().map(|p| p[0].as_str().unwrap().to_owned()).collect();
    assert_eq!(nights, BTreeSet::from([date(10), date(11)]));
    eventually(&guest, &format!("/api/v1/listings/{id}/calendar?from={}&to={}", date(14), date(16)), |c| {
        c["days"].as_array().unwrap().iter().all(|d| d["available"] == true)
    })
    .await;
    let again = book(&guest, &id, &date(14), &date(16)).await;
    assert_eq!(again.status, 201, "declined nights are free: {}", again.text);
}

#[tokio::test]
async fn declined_cards_3ds_and_unpaid_holds() {
    let server = Server::start_with(CLOCK).await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let (guest, _) = server.client().signed_up(&unique_email("guest")).await;
    let id = listing(&server, &host, "strict", true).await;

    // A declined card leaves the booking waiting; another card pays it.
    let b = booked(&guest, &id, &date(10), &date(12)).await;
    let declined = pay(&guest, &b, "pm_card_chargeDeclined").await;
    assert_eq!(declined.status, 200, "{}", declined.text);
    assert_eq!(declined.body["status"], "declined");
    assert_eq!(declined.body["decline_code"], "card_declined");
    assert_eq!(declined.body["booking_status"], "pending_payment");
    let unknown = pay(&guest, &b, "pm_not_a_card").await;
    assert_eq!(unknown.problem(422), "validation_failed");
    let ok = pay(&guest, &b, "pm_card_visa").await;
    assert_eq!(ok.body["booking_status"], "confirmed", "{}", ok.text);
    assert_ne!(ok.body["payment_id"], declined.body["payment_id"]);

    // 3-D Secure: the guest completes the step, the booking follows by event.
    let s = booked(&guest, &id, &date(20), &date(22)).await;
    let sid = s["id"].as_str().unwrap();
    let step = pay(&guest, &s, "pm_card_authenticationRequired").await;
    assert_eq!(step.body["status"], "requires_action", "{}", step.text);
    let url = step.body["next_action_url"].as_str().unwrap().to_owned();
    let done = guest.send(guest.http.post(&url)).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["status"], "succeeded");
    eventually(&guest, &format!("/api/v1/bookings/{sid}"), |b| b["status"] == "confirmed").await;

    // An unpaid hold expires after 15 minutes and frees its nights.
    let u = booked(&guest, &id, &date(30), &date(33)).await;
    let uid = u["id"].as_str().unwrap();
    advance(&server, 14 * 60).await;
    assert_eq!(guest.get(&format!("/api/v1/bookings/{uid}")).await.body["status"], "pending_payment");
    advance(&server, 2 * 60).await;
    eventually(&guest, &format!("/api/v1/bookings/{uid}"), |b| b["status"] == "expired").await;
    assert_eq!(pay(&guest, &u, "pm_card_visa").await.problem(409), "conflict");
    // The calendar frees the nights when it sees the booking's event.
    eventually(&guest, &format!("/api/v1/listings/{id}/calendar?from={}&to={}", date(30), date(33)), |c| {
        c["days"].as_array().unwrap().iter().all(|d| d["available"] == true)
    })
    .await;
    let rebook = book(&guest, &id, &date(30), &date(33)).await;
    assert_eq!(rebook.status, 201, "{}", rebook.text);
}

#[tokio::test]
async fn creation_is_idempotent_and_bad_input_reserves_nothing() {
    let server = Server::start().await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let (guest, _) = server.client().signed_up(&unique_email("guest")).await;
    let id = listing(&server, &host, "firm", true).await;
    let body = json!({"listing_id": id, "check_in": date(5), "check_out": date(8), "guests": 2});

    let keyed = |b: Value| guest.http.post(server.url("/api/v1/bookings")).header("Idempotency-Key", "trip-1").json(&b);
    let first = guest.send(keyed(body.clone())).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let replay = guest.send(keyed(body.clone())).await;
    assert_eq!(replay.status, 201, "{}", replay.text);
    assert_eq!(replay.body["id"], first.body["id"]);
    assert_eq!(replay.headers.get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    let mut other = body.clone();
    other["guests"] = json!(3);
    assert_eq!(guest.send(keyed(other)).await.problem(422), "validation_failed");

    let cases = [
        (json!({"listing_id": uuid::Uuid::now_v7(), "check_in": date(40), "check_out": date(42), "guests": 2}), 404),
        (json!({"listing_id": id, "check_in": date(-2), "check_out": date(1), "guests": 2}), 422),
        (json!({"listing_id": id, "check_in": date(42), "check_out": date(42), "guests": 2}), 422),
        (json!({"listing_id": id, "check_in": date(44), "check_out": date(42), "guests": 2}), 422),
        (json!({"listing_id": id, "check_in": date(40), "check_out": date(42), "guests": 0}), 422),
        (json!({"listing_id": id, "check_in": date(40), "check_out": date(42), "guests": 9}), 422),
        (json!({"listing_id": id, "check_in": date(40), "check_out": date(60), "guests": 2}), 422),
        (json!({"listing_id": id, "check_in": "soon", "check_out": date(60), "guests": 2}), 422),
        (json!({"listing_id": id, "check_in": "+262142-12-29", "check_out": "+262142-12-31", "guests": 2}), 422),
        (json!({"listing_id": id, "check_in": "-262143-01-01", "check_out": "-262143-01-03", "guests": 2}), 422),
        (json!({"listing_id": id, "check_in": date(40), "check_out": date(42), "guests": 2, "extra": 1}), 422),
        (json!({"listing_id": id, "check_in": date(40), "check_out": date(42), "guests": 2, "rate": "cheap"}), 422),
    ];
    for (bad, status) in cases {
        let r = guest.post("/api/v1/bookings", bad.clone()).await;
        r.problem(status);
        assert!(r.status != 500, "{bad}");
    }
    // Years at the edge of the calendar are refused, not overflowed.
    let far =
        guest.get(&format!("/api/v1/listings/{id}/quote?check_in=%2B262142-12-29&check_out=%2B262142-12-31")).await;
    far.problem(422);
    let far = guest
        .get(&format!("/api/v1/bookings/quote?listing_id={id}&check_in=%2B262142-12-29&check_out=%2B262142-12-31"))
        .await;
    far.problem(422);
    // A host cannot book their own listing; nobody books without signing in.
    host.post("/api/v1/bookings", json!({"listing_id": id, "check_in": date(40), "check_out": date(42), "guests": 2}))
        .await
        .problem(422);
    server.client().post("/api/v1/bookings", body.clone()).await.problem(401);
    // Only the first booking holds nights.
    let held =
        server.internal(reqwest::Method::GET, &format!("/internal/booking/listings/{id}/held-nights"), None).await;
    assert_eq!(held.body.as_array().unwrap().len(), 3, "{}", held.text);
    // The non-refundable rate is 10 % cheaper on the nights.
    let standard = guest
        .get(&format!("/api/v1/bookings/quote?listing_id={id}&check_in={}&check_out={}", date(40), date(42)))
        .await;
    let cheap = guest
        .get(&format!(
            "/api/v1/bookings/quote?listing_id={id}&check_in={}&check_out={}&rate=non_refundable",
            date(40),
            date(42)
        ))
        .await;
    assert_eq!(cheap.body["rate"], "non_refundable");
    assert_eq!(
        cheap.body["discounts"]["amount"].as_i64().unwrap() - standard.body["discounts"]["amount"].as_i64().unwrap(),
        2_000
    );
}

/// One row of the cancellation table: a policy (and rate), when the guest
/// cancels relative to check-in, and the accommodation refunded.
struct Row {
    policy: &'static str,
    non_refundable: bool,
    /// Seconds from check-in (negative: before).
    at: i64,
    /// Accommodation refunded, of 40,000.
    nights_back: i64,
    /// Whether the cleaning fee comes back (before check-in).
    cleaning_back: bool,
}

const H: i64 = 3600;
const D: i64 = 24 * H;

/// The refund a guest gets for `nights_back` of accommodation, with the fee
/// and taxes in proportion (14 % service fee on stay + cleaning, 5 % tax).
fn expected_refund(nights_back: i64, cleaning_back: bool) -> i64 {
    let (acc, cleaning, service, taxes) = (40_000i64, 3_000i64, 6_020i64, 2_000i64);
    if nights_back == acc && cleaning_back {
        return acc + cleaning + service + taxes;
    }
    let share = |part: i64| (part * nights_back * 2 + acc) / (2 * acc);
    nights_back + if cleaning_back { cleaning } else { 0 } + share(service) + share(taxes)
}

#[tokio::test]
async fn every_policy_refunds_by_its_cutoffs_as_its_timeline_said() {
    let server = Server::start_with(CLOCK).await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let (guest, _) = server.client().signed_up(&unique_email("guest")).await;
    let r =
        |policy, at, nights_back, cleaning_back| Row { policy, non_refundable: false, at, nights_back, cleaning_back };
    let mut rows = vec![
        r("flexible", -D - H, 40_000, true),
        r("flexible", -D + H, 30_000, true),
        r("flexible", H, 20_000, false),
        r("moderate", -5 * D - H, 40_000, true),
        r("moderate", -5 * D + H, 15_000, true),
        r("moderate", 2 * D - H, 5_000, false),
        r("limited", -14 * D - H, 40_000, true),
        r("limited", -14 * D + H, 20_000, true),
        r("limited", -7 * D + H, 0, true),
        r("firm", -30 * D - H, 40_000, true),
        r("firm", -30 * D + H, 20_000, true),
        r("firm", -7 * D - H, 20_000, true),
        r("firm", -7 * D + H, 0, true),
        r("strict", -14 * D - H, 20_000, true),
        r("strict", -7 * D + H, 0, true),
        r("strict", H, 0, false),
        Row { policy: "flexible", non_refundable: true, at: -30 * D, nights_back: 0, cleaning_back: true },
    ];
    rows.sort_by_key(|row| row.at);
    let (check_in, check_out) = (date(45), date(49));
    let mut bookings = Vec::new();
    for row in &rows {
        let id = listing(&server, &host, row.policy, true).await;
        let rate = if row.non_refundable { "non_refundable" } else { "standard" };
        let b = guest
            .post(
                "/api/v1/bookings",
                json!({"listing_id": id, "check_in": check_in, "check_out": check_out, "guests": 2, "rate": rate}),
            )
            .await;
        assert_eq!(b.status, 201, "{}", b.text);
        assert_eq!(pay(&guest, &b.body, "pm_card_visa").await.body["booking_status"], "confirmed");
        bookings.push(guest.get(&format!("/api/v1/bookings/{}", b.body["id"].as_str().unwrap())).await.body);
    }

    // Within 24 hours of a confirmation made 7+ days ahead, everything comes back.
    let grace_listing = listing(&server, &host, "strict", true).await;
    let g = booked(&guest, &grace_listing, &check_in, &check_out).await;
    pay(&guest, &g, "pm_card_visa").await;
    let cancelled = guest.post(&format!("/api/v1/bookings/{}/cancel", g["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.body["refund"]["amount"], g["price"]["total"]["amount"]);
    assert_eq!(cancelled.body["booking"]["status"], "cancelled_by_guest");

    let check_in_at = instant(&bookings[0]["check_in_at"]);
    let mut now = advance(&server, 0).await;
    for (row, booking) in rows.iter().zip(&bookings) {
        let at = check_in_at + chrono::Duration::seconds(row.at);
        // A row due at the same instant as the one before is already due (the
        // calls in between took some seconds): it is never a step back.
        now = advance(&server, (at - now).num_seconds().max(0)).await;
        let id = booking["id"].as_str().unwrap();
        let c = guest.post(&format!("/api/v1/bookings/{id}/cancel"), json!({})).await;
        assert_eq!(c.status, 200, "{}: {}", row.policy, c.text);
        let mut expected = expected_refund(row.nights_back, row.cleaning_back);
        if row.non_refundable {
            // The non-refundable rate's nights cost 10 % less; nothing of them comes back.
            expected = 3_000;
        }
        let got = c.body["refund"]["amount"].as_i64().unwrap();
        assert_eq!(got, expected, "{} at {}h from check-in", row.policy, row.at / H);
        // What the timeline promised before payment for this instant.
        let step = booking["refund_timeline"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| instant(&s["from"]) <= now && s["until"].as_str().is_none_or(|_| now < instant(&s["until"])))
            .unwrap_or_else(|| panic!("no step for {now} in {}", booking["refund_timeline"]));
        assert_eq!(step["refund"]["amount"], got, "{} timeline at {}h", row.policy, row.at / H);
        // The money comes back through the ledger.
        let t = eventually(&guest, "/api/v1/payments/transactions?limit=100", |t| {
            got == 0 || amounts(t, "refund", id).iter().sum::<i64>() == got
        })
        .await;
        assert!(amounts(&t, "refund", id).len() <= 1, "{t}");
    }
}

#[tokio::test]
async fn a_host_cancellation_refunds_in_full_records_a_penalty_and_blocks_the_nights() {
    let server = Server::start_with(CLOCK).await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let (guest, _) = server.client().signed_up(&unique_email("guest")).await;
    let id = listing(&server, &host, "strict", true).await;
    let b = booked(&guest, &id, &date(30), &date(34)).await;
    let bid = b["id"].as_str().unwrap();
    pay(&guest, &b, "pm_card_visa").await;
    advance(&server, 3 * D).await;
    let c = host.post(&format!("/api/v1/bookings/{bid}/cancel"), json!({})).await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(c.body["booking"]["status"], "cancelled_by_host");
    let total = b["price"]["total"]["amount"].as_i64().unwrap();
    assert_eq!(c.body["refund"]["amount"], total);
    assert_eq!(c.body["host_penalty"]["amount"], 4_000);
    let t = eventually(&guest, "/api/v1/payments/transactions", |t| amounts(t, "refund", bid) == vec![total]).await;
    assert_eq!(amounts(&t, "charge", bid), vec![-total]);
    let h = eventually(&host, "/api/v1/payments/transactions", |t| !amounts(t, "host_penalty", bid).is_empty()).await;
    assert_eq!(amounts(&h, "host_penalty", bid), vec![-4_000]);
    // The nights stay closed on the calendar, as a host block.
    eventually(&host, &format!("/api/v1/listings/{id}/calendar?from={}&to={}", date(30), date(34)), |c| {
        c["days"].as_array().unwrap().iter().all(|d| d["available"] == false && d["reason"] == "blocked")
    })
    .await;
}

/// A host block that lands after a booking took the nights, but before the
/// calendar heard of the booking, gives way to it and comes back when the
/// booking lets the nights go (it used to be deleted with them).
#[tokio::test]
async fn a_host_block_overtaken_by_a_booking_comes_back_when_the_booking_ends() {
    let mut server = Server::start_with(CLOCK).await;
    let (host, host_pair) = server.client().signed_up(&unique_email("host")).await;
    let (guest, guest_pair) = server.client().signed_up(&unique_email("guest")).await;
    let id = listing(&server, &host, "flexible", true).await;
    drop((host, guest));
    // Events wait in the outbox: the calendar learns of the booking only later.
    server.set_env("HOMETRIP_EVENTS__RELAY", "false");
    server.restart().await;
    let host = server.client().with_token(host_pair["access_token"].as_str().unwrap());
    let guest = server.client().with_token(guest_pair["access_token"].as_str().unwrap());
    let b = booked(&guest, &id, &date(20), &date(23)).await;
    let block = json!({"ranges": [{"from": date(21), "to": date(22), "available": false}]});
    let r = host.send(host.http.put(server.url(&format!("/api/v1/listings/{id}/calendar"))).json(&block)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The unpaid hold expires: the booking lets its nights go.
    advance(&server, 16 * 60).await;
    eventually(&guest, &format!("/api/v1/bookings/{}", b["id"].as_str().unwrap()), |b| b["status"] == "expired").await;

    server.set_env("HOMETRIP_EVENTS__RELAY", "true");
    server.restart().await;
    let host = server.client().with_token(host_pair["access_token"].as_str().unwrap());
    let guest = server.client().with_token(guest_pair["access_token"].as_str().unwrap());
    // A later booking's nights on the calendar mean the earlier events were applied.
    booked(&guest, &id, &date(40), &date(41)).await;
    eventually(&host, &format!("/api/v1/listings/{id}/calendar?from={}&to={}", date(40), date(41)), |c| {
        c["days"][0]["reason"] == "booked"
    })
    .await;
    let c = host.get(&format!("/api/v1/listings/{id}/calendar?from={}&to={}", date(20), date(23))).await;
    let days = c.body["days"].as_array().unwrap();
    assert_eq!(days.len(), 3, "{}", c.text);
    assert_eq!(days[0]["available"], true, "{}", c.text);
    assert_eq!((&days[1]["available"], &days[1]["reason"]), (&json!(false), &json!("blocked")), "{}", c.text);
    assert_eq!(days[2]["available"], true, "{}", c.text);
}

#[tokio::test]
async fn a_host_block_on_a_booked_night_comes_back_when_the_booking_ends() {
    let server = Server::start_with(CLOCK).await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let (guest, _) = server.client().signed_up(&unique_email("guest")).await;
    let id = listing(&server, &host, "flexible", true).await;
    let b = booked(&guest, &id, &date(20), &date(23)).await;
    let calendar = format!("/api/v1/listings/{id}/calendar?from={}&to={}", date(20), date(23));
    eventually(&host, &calendar, |c| c["days"][1]["reason"] == "booked").await;
    // The host blocks a night the booking holds: it stays booked for now.
    let block = json!({"ranges": [{"from": date(21), "to": date(22), "available": false}]});
    let r = host.send(host.http.put(server.url(&format!("/api/v1/listings/{id}/calendar"))).json(&block)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let c = host.get(&calendar).await;
    assert_eq!(c.body["days"][1]["reason"], "booked", "{}", c.text);
    // The unpaid hold expires: the other nights are free, the host's stays blocked.
    advance(&server, 16 * 60).await;
    eventually(&guest, &format!("/api/v1/bookings/{}", b["id"].as_str().unwrap()), |b| b["status"] == "expired").await;
    eventually(&host, &calendar, |c| c["days"][0]["available"] == true).await;
    let c = host.get(&calendar).await;
    let days = c.body["days"].as_array().unwrap();
    assert_eq!(days.len(), 3, "{}", c.text);
    assert_eq!(days[0]["available"], true, "{}", c.text);
    assert_eq!((&days[1]["available"], &days[1]["reason"]), (&json!(false), &json!("blocked")), "{}", c.text);
    assert_eq!(days[2]["available"], true, "{}", c.text);
}

/// Stays of 1–3 nights over 20 days, deterministic.
fn racing_stays(n: usize) -> Vec<(i64, i64)> {
    let mut seed = 0x2545F4914F6CDD1Du64;
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let start = 10 + (seed % 20) as i64;
            (start, start + 1 + ((seed >> 32) % 3) as i64)
        })
        .collect()
}

/// Fires every stay at once (spread over the given processes) and checks that
/// the winners never overlap, every loser overlaps a winner and got a 409, and
/// the nights held are exactly the winners'.
async fn race(servers: &[&Server], guests: &[Api], listing: &str) {
    let stays = racing_stays(50);
    let mut tasks = Vec::new();
    for (i, (a, b)) in stays.iter().enumerate() {
        let guest = guests[i % guests.len()].clone();
        let (listing, a, b) = (listing.to_owned(), *a, *b);
        tasks.push(tokio::spawn(async move { (a, b, book(&guest, &listing, &date(a), &date(b)).await) }));
    }
    let mut won: Vec<(i64, i64)> = Vec::new();
    let mut lost = Vec::new();
    for t in tasks {
        let (a, b, r) = t.await.unwrap();
        match r.status {
            201 => won.push((a, b)),
            409 => lost.push((a, b)),
            other => panic!("a racing booking got {other}: {}", r.text),
        }
    }
    let overlaps = |x: &(i64, i64), y: &(i64, i64)| x.0 < y.1 && y.0 < x.1;
    for (i, x) in won.iter().enumerate() {
        assert!(won[i + 1..].iter().all(|y| !overlaps(x, y)), "double-booked: {x:?} in {won:?}");
    }
    for l in &lost {
        assert!(won.iter().any(|w| overlaps(l, w)), "{l:?} was refused but overlaps no winner {won:?}");
    }
    let expected: BTreeSet<String> = won.iter().flat_map(|(a, b)| (*a..*b).map(date)).collect();
    let held = servers[0]
        .internal(reqwest::Method::GET, &format!("/internal/booking/listings/{listing}/held-nights"), None)
        .await;
    let nights: Vec<String> = held.body.as_array().unwrap().iter().map(|p| p[0].as_str().unwrap().to_owned()).collect();
    assert_eq!(nights.len(), expected.len(), "a night held twice? {nights:?}");
    assert_eq!(nights.into_iter().collect::<BTreeSet<_>>(), expected);
}

#[tokio::test]
async fn fifty_racing_bookings_never_double_book() {
    let server = Server::start().await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let mut guests = Vec::new();
    for i in 0..5 {
        guests.push(server.client().signed_up(&unique_email(&format!("racer{i}"))).await.0);
    }
    let id = listing(&server, &host, "flexible", true).await;
    race(&[&server], &guests, &id).await;
}

#[tokio::test]
async fn two_processes_on_one_postgres_never_double_book() {
    let first = Server::start().await;
    if first.database_url.is_none() {
        return; // Two processes share a database only on PostgreSQL.
    }
    let second = Server::start_sharing(&first, &[]).await;
    let (host, _) = first.client().signed_up(&unique_email("host")).await;
    let id = listing(&first, &host, "flexible", true).await;
    let mut guests = Vec::new();
    for i in 0..4 {
        let email = unique_email(&format!("racer{i}"));
        let server = if i % 2 == 0 { &first } else { &second };
        // Each process signs its own tokens: register once, log in where the guest books.
        let r = first.client().register(&email, "Racer").await;
        assert_eq!(r.status, 201, "{}", r.text);
        let l = server.client().login(&email, PASSWORD).await;
        assert_eq!(l.status, 200, "{}", l.text);
        guests.push(server.client().with_token(l.body["access_token"].as_str().unwrap()));
    }
    race(&[&first, &second], &guests, &id).await;
}

#[test]
fn the_racing_stays_overlap_enough_to_matter() {
    let stays = racing_stays(50);
    let starts: BTreeSet<i64> = stays.iter().map(|s| s.0).collect();
    assert!(starts.len() > 10);
    let _ = NaiveDate::MIN;
}

/// Every money and nights invariant of one listing's bookings, as the API
/// shows them; `Err` with what is off.
async fn consistent(server: &Server, host: &Api, guests: &[Api], listings: &[String]) -> Result<(), String> {
    let all = host.get("/api/v1/bookings?role=host&limit=100").await;
    let bookings = all.body["items"].as_array().cloned().unwrap_or_default();
    let mut ledger = Vec::new();
    for g in guests {
        let t = g.get("/api/v1/payments/transactions?limit=100").await;
        ledger.extend(t.body["items"].as_array().cloned().unwrap_or_default());
    }
    let sum = |kind: &str, id: &str| -> i64 {
        ledger
            .iter()
            .filter(|t| t["kind"] == kind && t["booking_id"] == id)
            .map(|t| t["amount"]["amount"].as_i64().unwrap_or(0))
            .sum()
    };
    for b in &bookings {
        let id = b["id"].as_str().unwrap_or_default();
        let total = b["price"]["total"]["amount"].as_i64().unwrap_or(0);
        let (charged, refunded) = (-sum("charge", id), sum("refund", id));
        match b["status"].as_str().unwrap_or_default() {
            "confirmed" | "completed" => {
                if charged != total || refunded != 0 {
                    return Err(format!("confirmed {id}: charged {charged}, refunded {refunded}, total {total}"));
                }
            }
            "pending_payment" => return Err(format!("{id} still holds nights unpaid after expiry")),
            status => {
                if charged != refunded {
                    return Err(format!("orphan charge on {status} {id}: charged {charged}, refunded {refunded}"));
                }
            }
        }
    }
    for listing in listings {
        let held = server
            .internal(reqwest::Method::GET, &format!("/internal/booking/listings/{listing}/held-nights"), None)
            .await;
        let held: BTreeSet<(String, String)> = held
            .body
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|p| (p[0].as_str().unwrap_or_default().to_owned(), p[1].as_str().unwrap_or_default().to_owned()))
            .collect();
        let mut expected = BTreeSet::new();
        for b in bookings.iter().filter(|b| b["listing_id"] == listing.as_str()) {
            if matches!(b["status"].as_str(), Some("confirmed" | "completed")) {
                let (a, z) = (b["check_in"].as_str().unwrap_or_default(), b["check_out"].as_str().unwrap_or_default());
                let (a, z) = (
                    a.parse::<NaiveDate>().map_err(|e| e.to_string())?,
                    z.parse::<NaiveDate>().map_err(|e| e.to_string())?,
                );
                for night in a.iter_days().take_while(|d| *d < z) {
                    expected.insert((night.to_string(), b["id"].as_str().unwrap_or_default().to_owned()));
                }
            }
        }
        if held != expected {
            return Err(format!("held nights {held:?} are not the confirmed stays' {expected:?}"));
        }
        // The calendar (fed by events) shows exactly those nights booked.
        let cal = host.get(&format!("/api/v1/listings/{listing}/calendar?from={}&to={}", date(0), date(60))).await;
        let booked: BTreeSet<String> = cal.body["days"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|d| d["reason"] == "booked")
            .map(|d| d["date"].as_str().unwrap_or_default().to_owned())
            .collect();
        let nights: BTreeSet<String> = expected.iter().map(|(n, _)| n.clone()).collect();
        if booked != nights {
            return Err(format!("calendar shows {booked:?} booked, bookings hold {nights:?}: an event was lost"));
        }
    }
    let balance = server.internal(reqwest::Method::GET, "/internal/payment/trial-balance", None).await;
    if balance.body.as_object().is_some_and(|m| m.values().any(|v| v != 0)) {
        return Err(format!("the ledger does not balance: {}", balance.text));
    }
    Ok(())
}

#[tokio::test]
async fn a_crash_mid_flow_loses_no_event_no_charge_and_no_night() {
    let mut server = Server::start_with(CLOCK).await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let mut guests = Vec::new();
    for i in 0..6 {
        guests.push(server.client().signed_up(&unique_email(&format!("crash{i}"))).await.0);
    }
    let mut listings = Vec::new();
    for _ in 0..3 {
        listings.push(listing(&server, &host, "flexible", true).await);
    }
    let stays = racing_stays(60);
    let created = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, (a, b)) in stays.into_iter().enumerate() {
        let guest = guests[i % guests.len()].clone();
        let listing = listings[i % listings.len()].clone();
        let created = Arc::clone(&created);
        tasks.push(tokio::spawn(async move {
            let body = json!({"listing_id": listing, "check_in": date(a), "check_out": date(b), "guests": 2});
            let sent = guest
                .http
                .post(format!("{}/api/v1/bookings", guest.base))
                .bearer_auth(guest.token.clone().unwrap_or_default())
                .json(&body)
                .send()
                .await;
            let Ok(res) = sent else { return };
            let Ok(booked) = res.json::<Value>().await else { return };
            let Some(id) = booked["id"].as_str() else { return };
            created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let card = if i % 5 == 0 { "pm_card_chargeDeclined" } else { "pm_card_visa" };
            let _ = guest
                .http
                .post(format!("{}/api/v1/bookings/{id}/payment", guest.base))
                .bearer_auth(guest.token.clone().unwrap_or_default())
                .json(&json!({"payment_method": card}))
                .send()
                .await;
        }));
    }
    // SIGKILL in the middle of it, once a few bookings exist (however slow
    // the shape): no shutdown, in-flight requests and payments cut.
    for _ in 0..200 {
        if created.load(std::sync::atomic::Ordering::Relaxed) >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill();
    for t in tasks {
        let _ = t.await;
    }
    server.restart().await;
    let guests: Vec<Api> =
        guests.iter().map(|g| server.client().with_token(g.token.as_deref().unwrap_or_default())).collect();
    let host = server.client().with_token(host.token.as_deref().unwrap_or_default());
    // Unpaid holds run out; the jobs and reconciliation settle the rest.
    advance(&server, 16 * 60).await;
    let report = server.internal(reqwest::Method::POST, "/internal/booking/reconcile", None).await;
    assert_eq!(report.status, 200, "{}", report.text);
    assert_eq!(report.body["anomalies"], json!([]), "{}", report.text);
    run_jobs(&server).await;
    let mut last = String::new();
    for _ in 0..100 {
        match consistent(&server, &host, &guests, &listings).await {
            Ok(()) => {
                let all = host.get("/api/v1/bookings?role=host&limit=100").await;
                let statuses: Vec<&str> =
                    all.body["items"].as_array().unwrap().iter().map(|b| b["status"].as_str().unwrap()).collect();
                eprintln!("after the crash: {statuses:?}");
                assert!(!statuses.is_empty(), "the crash came before any booking");
                return;
            }
            Err(e) => last = e,
        }
        run_jobs(&server).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("after the crash and recovery: {last}");
}
