//! iCal sync through the binary: feeds shaped like Airbnb's, Vrbo's and
//! Booking.com's, served by a local HTTP server; broken feeds; the export feed
//! parsed back with the icalendar crate.

use std::sync::Mutex;

use actix_web::{web, HttpRequest, HttpResponse};
use icalendar::{Calendar, CalendarComponent, Component};
use serde_json::json;

use crate::support::*;

#[derive(Default)]
struct Feeds {
    airbnb: Mutex<String>,
    hits: Mutex<u32>,
}

fn day(n: i64) -> chrono::NaiveDate {
    chrono::Utc::now().date_naive() + chrono::Duration::days(n)
}

fn compact(n: i64) -> String {
    day(n).format("%Y%m%d").to_string()
}

fn airbnb(stays: &[(i64, i64)]) -> String {
    let mut s = String::from("BEGIN:VCALENDAR\r\nPRODID;X-RICAL-TZSOURCE=TZINFO:-//Airbnb Inc//Hosting Calendar 0.8.8//EN\r\nCALSCALE:GREGORIAN\r\nVERSION:2.0\r\n");
    for (i, (a, b)) in stays.iter().enumerate() {
        s.push_str(&format!("BEGIN:VEVENT\r\nDTEND;VALUE=DATE:{}\r\nDTSTART;VALUE=DATE:{}\r\nUID:{i}-abc@airbnb.com\r\nSUMMARY:Reserved\r\nEND:VEVENT\r\n", compact(*b), compact(*a)));
    }
    s.push_str("END:VCALENDAR\r\n");
    s
}

fn vrbo() -> String {
    format!("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//HomeAway.com, Inc.//EN\nBEGIN:VEVENT\nUID:vrbo-1\nDTSTAMP:20260101T000000Z\nDTSTART;VALUE=DATE:{}\nDTEND;VALUE=DATE:{}\nSUMMARY:Blocked\nEND:VEVENT\nEND:VCALENDAR\n", compact(40), compact(42))
}

fn booking() -> String {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Booking.com//NONSGML Booking.com Calendar//EN\r\nBEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:{}\r\nDTEND;VALUE=DATE:{}\r\nUID:booking-77\r\nSUMMARY:CLOSED - Not available\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", compact(50), compact(51))
}

async fn airbnb_feed(feeds: web::Data<Feeds>, req: HttpRequest) -> HttpResponse {
    *feeds.hits.lock().unwrap() += 1;
    let body = feeds.airbnb.lock().unwrap().clone();
    let etag = format!("\"{}\"", body.len());
    if req.headers().get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return HttpResponse::NotModified().finish();
    }
    HttpResponse::Ok().content_type("text/calendar").insert_header(("ETag", etag)).body(body)
}

fn start_feeds(feeds: web::Data<Feeds>) -> String {
    local_server(move |cfg| {
        cfg.app_data(feeds.clone())
            .route("/airbnb.ics", web::get().to(airbnb_feed))
            .route(
                "/vrbo.ics",
                web::get().to(|| async { HttpResponse::Ok().content_type("text/calendar").body(vrbo()) }),
            )
            .route("/booking.ics", web::get().to(|| async { HttpResponse::Ok().body(booking()) }))
            .route("/down.ics", web::get().to(|| async { HttpResponse::InternalServerError().body("oops") }))
            .route(
                "/html.ics",
                web::get().to(|| async { HttpResponse::Ok().content_type("text/html").body("<html>login</html>") }),
            );
    })
}

async fn published_listing(server: &Server, host: &Api) -> String {
    let body = json!({
        "title": "Maison de pêcheur", "description": "Près du port.", "property_type": "house",
        "address": {"line1": "3 rue du Port", "city": "Concarneau", "postal_code": "29900", "country": "FR"},
        "location": {"lat": 47.87, "lon": -3.92}, "max_guests": 5,
        "nightly_price": {"amount": 9000, "currency": "EUR"}
    });
    let id = host.post("/api/v1/listings", body).await.body["id"].as_str().unwrap().to_owned();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(png(64, 64)).file_name("p.png").mime_str("image/png").unwrap());
    host.send(host.http.post(server.url(&format!("/api/v1/listings/{id}/photos"))).multipart(form)).await;
    assert_eq!(host.post(&format!("/api/v1/listings/{id}/publish"), json!({})).await.status, 200);
    id
}

async fn taken(api: &Api, id: &str) -> Vec<(String, String)> {
    let cal = api.get(&format!("/api/v1/listings/{id}/calendar?from={}&to={}", day(0), day(60))).await;
    cal.body["days"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["available"] == json!(false))
        .map(|d| (d["date"].as_str().unwrap().to_owned(), d["reason"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn imported_feeds_block_nights_and_broken_feeds_keep_them() {
    let feeds = web::Data::new(Feeds::default());
    *feeds.airbnb.lock().unwrap() = airbnb(&[(10, 13), (20, 21)]);
    let base = start_feeds(feeds.clone());
    let server = Server::start_with(&[("HOMETRIP_LISTING__ICAL_ALLOW_PRIVATE_HOSTS", "true")]).await;
    let api = server.client();
    let (host, _) = api.signed_up(&unique_email("ical")).await;
    let (other, _) = api.signed_up(&unique_email("other")).await;
    let id = published_listing(&server, &host).await;
    let imports = format!("/api/v1/listings/{id}/calendar/imports");

    assert_eq!(
        host.post(&imports, json!({"url": "ftp://x/y.ics", "name": "Airbnb"})).await.problem(422),
        "validation_failed"
    );
    assert_eq!(
        other.post(&imports, json!({"url": format!("{base}/airbnb.ics"), "name": "Airbnb"})).await.problem(403),
        "forbidden"
    );
    let created = host.post(&imports, json!({"url": format!("{base}/airbnb.ics"), "name": "Airbnb"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["last_synced_at"], json!(null));
    let import_id = created.body["id"].as_str().unwrap().to_owned();
    let sync = format!("{imports}/{import_id}/sync");

    let synced = host.post(&sync, json!({})).await;
    assert_eq!(synced.status, 200, "{}", synced.text);
    assert_eq!(synced.body["imported_nights"], json!(4));
    let nights = taken(&api, &id).await;
    assert_eq!(nights.len(), 4, "{nights:?}");
    assert!(nights.iter().all(|(_, reason)| reason == "external"));
    let quote =
        api.get(&format!("/api/v1/listings/{id}/quote?check_in={}&check_out={}&guests=2", day(11), day(14))).await;
    assert_eq!(quote.problem(409), "conflict");

    // Unchanged feed: a conditional request (ETag) and nothing moves.
    let unchanged = host.post(&sync, json!({})).await;
    assert_eq!(unchanged.body["imported_nights"], json!(4));

    // A broken feed changes nothing stored; the error is recorded.
    *feeds.airbnb.lock().unwrap() = "<html>maintenance</html>".to_owned();
    assert_eq!(host.post(&sync, json!({})).await.problem(502), "bad_gateway");
    assert_eq!(taken(&api, &id).await.len(), 4);
    let listed = host.get(&imports).await;
    assert!(listed.body["items"][0]["last_error"].as_str().unwrap().contains("iCalendar"), "{}", listed.text);
    let down = host.post(&imports, json!({"url": format!("{base}/down.ics"), "name": "Down"})).await;
    let down_sync = format!("{imports}/{}/sync", down.body["id"].as_str().unwrap());
    assert_eq!(host.post(&down_sync, json!({})).await.problem(502), "bad_gateway");
    assert_eq!(taken(&api, &id).await.len(), 4);

    // A stay that left the feed frees its nights.
    *feeds.airbnb.lock().unwrap() = airbnb(&[(20, 21)]);
    assert_eq!(host.post(&sync, json!({})).await.body["imported_nights"], json!(1));
    assert_eq!(taken(&api, &id).await, vec![(day(20).to_string(), "external".to_owned())]);

    // Vrbo and Booking.com shapes.
    for (name, path, expected) in [("Vrbo", "vrbo.ics", 2), ("Booking.com", "booking.ics", 1)] {
        let created = host.post(&imports, json!({"url": format!("{base}/{path}"), "name": name})).await;
        let r = host.post(&format!("{imports}/{}/sync", created.body["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(r.body["imported_nights"], json!(expected), "{name}: {}", r.text);
    }
    assert_eq!(taken(&api, &id).await.len(), 4);

    // Removing an import frees what it blocked.
    let del = host.send(host.http.delete(server.url(&format!("{imports}/{import_id}")))).await;
    assert_eq!(del.status, 204);
    assert_eq!(taken(&api, &id).await.len(), 3);
}

#[tokio::test]
async fn the_export_feed_is_secret_revocable_and_parses_back() {
    let server = Server::start().await;
    let api = server.client();
    let (host, _) = api.signed_up(&unique_email("export")).await;
    let id = published_listing(&server, &host).await;
    let edit = json!({"ranges": [{"from": day(5), "to": day(8), "available": false}, {"from": day(12), "to": day(13), "available": false}]});
    assert_eq!(
        host.send(host.http.put(server.url(&format!("/api/v1/listings/{id}/calendar"))).json(&edit)).await.status,
        200
    );

    let ics = host.send(host.http.get(server.url(&format!("/api/v1/listings/{id}/calendar.ics")))).await;
    assert_eq!(ics.status, 200);
    assert!(ics.content_type().starts_with("text/calendar"));
    let calendar: Calendar = ics.text.parse().unwrap();
    let mut spans: Vec<(chrono::NaiveDate, chrono::NaiveDate)> = calendar
        .components
        .iter()
        .filter_map(|c| match c {
            CalendarComponent::Event(e) => Some((e.get_start()?.date_naive(), e.get_end()?.date_naive())),
            _ => None,
        })
        .collect();
    spans.sort();
    assert_eq!(spans, vec![(day(5), day(8)), (day(12), day(13))]);
    assert!(calendar.components.iter().all(|c| matches!(c, CalendarComponent::Event(e) if e.get_uid().is_some())));

    // Anyone with the secret link reads it; nobody else does.
    assert_eq!(api.get(&format!("/api/v1/listings/{id}/calendar.ics")).await.problem(404), "not_found");
    let link =
        host.get(&format!("/api/v1/listings/{id}/calendar/export")).await.body["url"].as_str().unwrap().to_owned();
    let path = link.trim_start_matches(&server.base).to_owned();
    assert_eq!(api.send(api.http.get(server.url(&path))).await.status, 200);
    let rotated = host.post(&format!("/api/v1/listings/{id}/calendar/export/rotate"), json!({})).await;
    assert_ne!(rotated.body["url"], json!(link));
    assert_eq!(api.send(api.http.get(server.url(&path))).await.status, 404);
    let new_path = rotated.body["url"].as_str().unwrap().trim_start_matches(&server.base).to_owned();
    assert_eq!(api.send(api.http.get(server.url(&new_path))).await.status, 200);
}

#[tokio::test]
async fn feeds_on_private_addresses_are_refused_by_default() {
    let feeds = web::Data::new(Feeds::default());
    *feeds.airbnb.lock().unwrap() = airbnb(&[(10, 12)]);
    let base = start_feeds(feeds.clone());
    let server = Server::start().await;
    let (host, _) = server.client().signed_up(&unique_email("ssrf")).await;
    let id = published_listing(&server, &host).await;
    let created = host
        .post(
            &format!("/api/v1/listings/{id}/calendar/imports"),
            json!({"url": format!("{base}/airbnb.ics"), "name": "x"}),
        )
        .await;
    let r = host
        .post(
            &format!("/api/v1/listings/{id}/calendar/imports/{}/sync", created.body["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(r.problem(502), "bad_gateway");
    assert!(r.body["detail"].as_str().unwrap().contains("not a public address"), "{}", r.text);
    assert_eq!(*feeds.hits.lock().unwrap(), 0, "the private feed was never fetched");
}
