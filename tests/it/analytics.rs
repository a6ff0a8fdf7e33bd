//! Analytics: client events checked, counted without addresses and without
//! bots, kept 90 days; a host's figures for known bookings and blocks equal
//! the hand-computed ones; the CSV parses; the operators' overview counts the
//! funnel.

use chrono::Datelike;
use serde_json::{json, Value};

use crate::support::*;

/// `guest` books `[from, to)` days ahead and pays.
async fn stay(guest: &Api, listing: &str, from: i64, to: i64) -> String {
    let body = json!({"listing_id": listing, "check_in": date_from_today(from), "check_out": date_from_today(to), "guests": 2});
    let booking = guest.post("/api/v1/bookings", body).await;
    assert_eq!(booking.status, 201, "{}", booking.text);
    let id = booking.body["id"].as_str().unwrap().to_owned();
    let paid = guest.post(&format!("/api/v1/bookings/{id}/payment"), json!({"payment_method": "pm_card_visa"})).await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    eventually(guest, &format!("/api/v1/bookings/{id}"), |b| b["status"] == "confirmed").await;
    id
}

fn ledger_for(items: &Value, bookings: &[&str]) -> i64 {
    items["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| bookings.iter().any(|b| t["booking_id"] == *b) && (t["kind"] == "charge" || t["kind"] == "refund"))
        .map(|t| t["amount"]["amount"].as_i64().unwrap())
        .sum()
}

#[tokio::test]
async fn a_hosts_figures_equal_the_hand_computed_occupancy_adr_and_revpar() {
    let server = Server::start().await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let (other_host, _) = server.client().signed_up(&unique_email("other")).await;
    let listing = publish_listing(&server, &host, house("Maison des chiffres")).await;
    // Two nights blocked by the host: days 38 and 39.
    let block = json!({"ranges": [{"from": date_from_today(38), "to": date_from_today(40), "available": false}]});
    let blocked =
        host.send(host.http.put(server.url(&format!("/api/v1/listings/{listing}/calendar"))).json(&block)).await;
    assert_eq!(blocked.status, 200, "{}", blocked.text);
    // Three stays of two nights at 100.00; the third is cancelled.
    let (a_guest, _) = server.client().signed_up(&unique_email("a")).await;
    let (b_guest, _) = server.client().signed_up(&unique_email("b")).await;
    let (c_guest, _) = server.client().signed_up(&unique_email("c")).await;
    let a = stay(&a_guest, &listing, 31, 33).await;
    let b = stay(&b_guest, &listing, 35, 37).await;
    let c = stay(&c_guest, &listing, 33, 35).await;
    let cancelled = c_guest.post(&format!("/api/v1/bookings/{c}/cancel"), json!({})).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);

    // Over 40 days from today: 38 nights on the market, 4 booked.
    let (from, to) = (date_from_today(0), date_from_today(39));
    let path = format!("/api/v1/analytics/host/summary?from={from}&to={to}");
    let s =
        eventually(&host, &path, |s| s["cancellations"] == 1 && s["nights_booked"] == 4 && s["bookings"] == 3).await;
    assert_eq!(s["nights_available"], 38, "{s}");
    assert_eq!(s["occupancy_rate"], 0.1053, "4 / 38: {s}");
    assert_eq!(s["adr"], json!({"amount": 10_000, "currency": "EUR"}));
    assert_eq!(s["revpar"]["amount"], 1_053, "40,000 / 38: {s}");
    assert_eq!(s["average_lead_time_days"], 33.0, "(31 + 35 + 33) / 3: {s}");
    assert_eq!(s["average_length_of_stay"], 2.0);
    // Revenue is what the ledger owes the host for these stays.
    // (Once the cancelled stay's refund is in the ledger: a full one, 33 days ahead.)
    let ledger = eventually(&host, "/api/v1/payments/transactions", |t| {
        t["items"].as_array().unwrap().iter().any(|x| x["kind"] == "refund" && x["booking_id"] == c.as_str())
    })
    .await;
    let owed = ledger_for(&ledger, &[&a, &b, &c]);
    let s = eventually(&host, &path, |s| s["revenue"]["amount"] == owed).await;
    assert!(owed > 0, "{ledger}");
    let months = s["by_month"].as_array().unwrap();
    assert!(!months.is_empty());
    assert_eq!(months.iter().map(|m| m["nights_booked"].as_i64().unwrap()).sum::<i64>(), 4);
    assert_eq!(months.iter().map(|m| m["nights_available"].as_i64().unwrap()).sum::<i64>(), 38);
    // One listing, by id; not another host's.
    let one = host.get(&format!("{path}&listing_id={listing}")).await;
    assert_eq!(one.body["nights_booked"], 4);
    assert_eq!(other_host.get(&format!("{path}&listing_id={listing}")).await.problem(404), "not_found");
    assert_eq!(other_host.get(&path).await.body["nights_booked"], 0);
    let backwards = host.get(&format!("/api/v1/analytics/host/summary?from={to}&to={from}")).await;
    assert_eq!(backwards.problem(422), "validation_failed");

    // The CSV: a row per listing and month, the same figures.
    let csv = host.get(&format!("/api/v1/analytics/host/summary.csv?from={from}&to={to}")).await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let lines: Vec<Vec<&str>> = csv.text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(lines[0][0], "listing_id");
    let booked_column = lines[0].iter().position(|c| *c == "nights_booked").unwrap();
    assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{}", csv.text);
    assert_eq!(lines[1..].iter().map(|l| l[booked_column].parse::<i64>().unwrap()).sum::<i64>(), 4);
    assert!(lines[1..].iter().all(|l| l[0] == listing && l[1] == "Maison des chiffres"));

    // The operators' overview: the funnel's server-side steps (at least
    // these: the split shape's platform is shared by the tests).
    let admin = admin(&server).await;
    assert_eq!(
        host.get(&format!("/api/v1/admin/analytics/overview?from={from}&to={to}")).await.problem(403),
        "forbidden"
    );
    let o = eventually(&admin, &format!("/api/v1/admin/analytics/overview?from={from}&to={to}"), |o| {
        o["funnel"]["booking_confirmed"].as_i64() >= Some(3)
    })
    .await;
    assert!(o["funnel"]["booking_started"].as_i64() >= Some(3), "{o}");
    assert!(o["cancellations"].as_i64() >= Some(1), "{o}");
    assert!(o["new_users"].as_i64().unwrap() >= 5, "{o}");
    assert!(o["gmv"]["amount"].as_i64().unwrap() > 0, "{o}");
    assert!(o["median_minutes"]["booking_started_to_confirmed"].as_f64().is_some(), "{o}");
}

#[tokio::test]
async fn client_events_are_checked_counted_without_addresses_or_bots_and_kept_ninety_days() {
    let server = Server::start_with(CLOCK).await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let listing = publish_listing(&server, &host, house("Maison visitée")).await;
    // Analytics has learnt the listing (its views go to its host's days).
    let today = date_from_today(0);
    eventually(&host, &format!("/api/v1/analytics/host/summary?from={today}&to={today}"), |s| s["listings"] == 1).await;
    let anonymous = server.client();
    let batch = json!({"events": [
        {"name": "page_view", "session_id": "s-1", "props": {"path": "/"}},
        {"name": "search", "props": {"q": "lyon", "results": 3}},
        {"name": "listing_view", "listing_id": listing},
        {"name": "booking_started", "listing_id": listing, "props": {"check_in": date_from_today(3), "guests": 2}}
    ]});
    let sent = anonymous.post("/api/v1/analytics/events", batch.clone()).await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    assert_eq!(sent.body["accepted"], 4);
    assert_eq!(anonymous.post("/api/v1/analytics/events", batch.clone()).await.status, 202);

    let unknown = anonymous.post("/api/v1/analytics/events", json!({"events": [{"name": "purchase"}]})).await;
    assert_eq!(unknown.problem(422), "validation_failed");
    assert_eq!(unknown.body["errors"][0]["field"], "events[0].name");
    let wrong = anonymous
        .post("/api/v1/analytics/events", json!({"events": [{"name": "search", "props": {"results": "many"}}]}))
        .await;
    assert_eq!(wrong.body["errors"][0]["field"], "events[0].props.results", "{}", wrong.text);
    let many: Vec<Value> = (0..101).map(|_| json!({"name": "search"})).collect();
    assert_eq!(
        anonymous.post("/api/v1/analytics/events", json!({"events": many})).await.problem(422),
        "validation_failed"
    );
    let huge = json!({"events": [{"name": "page_view", "props": {"path": "x".repeat(70_000)}}]});
    assert_eq!(anonymous.post("/api/v1/analytics/events", huge).await.status, 413);
    let bot = anonymous
        .send(
            anonymous
                .http
                .post(server.url("/api/v1/analytics/events"))
                .header("user-agent", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
                .json(&batch),
        )
        .await;
    assert_eq!((bot.status, bot.body["accepted"].clone(), bot.body["dropped"].clone()), (202, json!(0), json!(4)));

    // Counted: two batches of one visitor; the bot's not at all.
    let admin = admin(&server).await;
    let overview = format!("/api/v1/admin/analytics/overview?from={today}&to={today}");
    let o = eventually(&admin, &overview, |o| o["funnel"]["listing_view"] == 2).await;
    assert_eq!(o["funnel"]["search"], 2, "{o}");
    assert_eq!(o["booking_started_events"], 2);
    assert_eq!(o["visitors"], 1);
    // The client-side steps' median times, per session: the first search,
    // listing view and booking start of each session (4 and 6 minutes, and
    // 2 and 10 minutes: medians 3 and 8; a session that viewed before it
    // searched, and a later repeat of a step, change nothing).
    let minutes_ago = |m: i64| (chrono::Utc::now() - chrono::Duration::minutes(m)).to_rfc3339();
    let started = |session: &str, name: &str, ago: i64| {
        let mut e = json!({"name": name, "session_id": session, "at": minutes_ago(ago), "listing_id": listing});
        if name == "booking_started" {
            e["props"] = json!({"check_in": date_from_today(3), "guests": 2});
        }
        e
    };
    let steps = json!({"events": [
        started("steps-1", "search", 30), started("steps-1", "listing_view", 26),
        started("steps-1", "booking_started", 20), started("steps-1", "search", 5),
        started("steps-2", "search", 40), started("steps-2", "listing_view", 38),
        started("steps-3", "listing_view", 50), started("steps-3", "search", 45)
    ]});
    let sent = anonymous.post("/api/v1/analytics/events", steps).await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    let later = anonymous
        .post("/api/v1/analytics/events", json!({"events": [started("steps-2", "booking_started", 28)]}))
        .await;
    assert_eq!(later.status, 202, "{}", later.text);
    let yesterday = date_from_today(-1);
    let o = admin.get(&format!("/api/v1/admin/analytics/overview?from={yesterday}&to={today}")).await;
    assert_eq!(o.body["median_minutes"]["search_to_listing_view"], 3.0, "{}", o.text);
    assert_eq!(o.body["median_minutes"]["listing_view_to_booking_started"], 8.0, "{}", o.text);
    // Whole months are read from the monthly counters: last month and this
    // one count what the last two days do (this test's events are minutes old).
    let days = admin.get(&format!("/api/v1/admin/analytics/overview?from={yesterday}&to={today}")).await.body;
    let this_month = chrono::Utc::now().date_naive().with_day(1).unwrap();
    let last_month = (this_month - chrono::Duration::days(1)).with_day(1).unwrap();
    let month_end = (this_month + chrono::Duration::days(32)).with_day(1).unwrap() - chrono::Duration::days(1);
    let months = admin.get(&format!("/api/v1/admin/analytics/overview?from={last_month}&to={month_end}")).await.body;
    for step in ["search", "listing_view"] {
        assert_eq!(months["funnel"][step], days["funnel"][step], "{step}: {months} {days}");
    }
    assert_eq!(months["booking_started_events"], days["booking_started_events"]);
    let funnel = admin.get(&overview).await.body["funnel"].clone();
    assert!(funnel["listing_view"].as_i64() >= Some(2), "{funnel}");
    // The listing's views reach its host's days.
    let views = sql(
        &server,
        "analytics",
        &format!("SELECT CAST(SUM(views) AS TEXT) AS v FROM listing_daily WHERE listing_id = '{listing}'"),
    )
    .await;
    assert_eq!(views, vec!["5".to_owned()]);
    // No address is kept.
    let stored = sql(&server, "analytics", "SELECT visitor || ' ' || props AS v FROM analytics_events").await;
    assert_eq!(stored.len(), 17);
    assert!(stored.iter().all(|r| !r.contains("127.0.0.1")), "{stored:?}");

    // After 90 days the raw events go; the counts stay.
    let r = server
        .internal(reqwest::Method::POST, "/internal/testing/clock", Some(json!({"advance_seconds": 91 * 86_400})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(server.internal(reqwest::Method::POST, "/internal/testing/jobs/run", None).await.status, 200);
    let left = sql(&server, "analytics", "SELECT CAST(COUNT(*) AS TEXT) AS v FROM analytics_events").await;
    assert_eq!(left, vec!["0".to_owned()]);
    let salts = sql(&server, "analytics", "SELECT CAST(COUNT(*) AS TEXT) AS v FROM analytics_salts").await;
    assert_eq!(salts, vec!["0".to_owned()]);
    let steps = sql(&server, "analytics", "SELECT CAST(COUNT(*) AS TEXT) AS v FROM analytics_session_steps").await;
    assert_eq!(steps, vec!["0".to_owned()]);
    assert_eq!(admin.get(&overview).await.body["funnel"], funnel);
}
