//! Issue 17 through the binary: outbound calls that cannot reach the
//! deployment's own network, fair feed sync, uploads checked before they are
//! read, decompression bombs, security headers, metrics behind the service
//! credential, and a production profile that refuses play money.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

const SECRET: &str = "s3cr3t-feed-token";

fn feed() -> String {
    let night = (chrono::Utc::now().date_naive() + chrono::Duration::days(20)).format("%Y%m%d").to_string();
    let next = (chrono::Utc::now().date_naive() + chrono::Duration::days(21)).format("%Y%m%d").to_string();
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:1@t\r\nDTSTART;VALUE=DATE:{night}\r\nDTEND;VALUE=DATE:{next}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
}

fn listing_body() -> serde_json::Value {
    json!({
        "title": "Maison de pêcheur", "description": "Près du port.", "property_type": "house",
        "address": {"line1": "3 rue du Port", "city": "Concarneau", "postal_code": "29900", "country": "FR"},
        "location": {"lat": 47.87, "lon": -3.92}, "max_guests": 5,
        "nightly_price": {"amount": 9000, "currency": "EUR"}
    })
}

async fn draft(host: &Api) -> String {
    let created = host.post("/api/v1/listings", listing_body()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.body["id"].as_str().unwrap().to_owned()
}

async fn add_feed(host: &Api, listing: &str, url: &str) -> String {
    let r =
        host.post(&format!("/api/v1/listings/{listing}/calendar/imports"), json!({"url": url, "name": "Feed"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn feeds_never_reach_private_addresses_by_name_literal_or_redirect() {
    // The target: a feed on 127.0.0.1, which no hop may reach.
    let target_hits = Arc::new(AtomicUsize::new(0));
    let hits = web::Data::from(Arc::clone(&target_hits));
    let target = local_server(move |cfg| {
        cfg.app_data(hits.clone()).default_service(web::to(|hits: web::Data<AtomicUsize>| async move {
            hits.fetch_add(1, Ordering::SeqCst);
            HttpResponse::Ok().content_type("text/calendar").body(feed())
        }));
    });
    let target_port = target.rsplit(':').next().unwrap().to_owned();
    // The "public" feed host: 127.0.0.2, the one network the server allows.
    let port = target_port.clone();
    let public = local_server_on("127.0.0.2", move |cfg| {
        let port = port.clone();
        let mapped = port.clone();
        cfg.route("/ok.ics", web::get().to(|| async { HttpResponse::Ok().content_type("text/calendar").body(feed()) }))
            .route(
                "/to-localhost",
                web::get().to(move || {
                    let to = format!("http://localhost:{port}/feed.ics");
                    async move { HttpResponse::Found().insert_header(("location", to)).finish() }
                }),
            )
            .route(
                "/to-mapped",
                web::get().to(move || {
                    let to = format!("http://[::ffff:127.0.0.1]:{mapped}/feed.ics");
                    async move { HttpResponse::Found().insert_header(("location", to)).finish() }
                }),
            );
    });
    let server = Server::start_with(&[("HOMETRIP_OUTBOUND__ALLOW_NETWORKS", "127.0.0.2/32")]).await;
    let (host, _) = server.client().signed_up(&unique_email("feedhost")).await;
    let listing = draft(&host).await;

    let ok = add_feed(&host, &listing, &format!("{public}/ok.ics?token={SECRET}")).await;
    let synced = host.post(&format!("/api/v1/listings/{listing}/calendar/imports/{ok}/sync"), json!({})).await;
    assert_eq!(synced.status, 200, "the allowed network is reachable: {}", synced.text);
    assert_eq!(synced.body["imported_nights"], json!(1));

    for url in [
        format!("{public}/to-localhost?token={SECRET}"),
        format!("{public}/to-mapped?token={SECRET}"),
        format!("http://localhost:{target_port}/feed.ics?token={SECRET}"),
        format!("http://[::ffff:127.0.0.1]:{target_port}/feed.ics?token={SECRET}"),
        format!("http://0.0.0.0:{target_port}/feed.ics?token={SECRET}"),
        format!("http://[64:ff9b::7f00:1]:{target_port}/feed.ics?token={SECRET}"),
        format!("http://169.254.169.254/latest/meta-data?token={SECRET}"),
    ] {
        let import = add_feed(&host, &listing, &url).await;
        let r = host.post(&format!("/api/v1/listings/{listing}/calendar/imports/{import}/sync"), json!({})).await;
        assert_eq!(r.problem(502), "bad_gateway", "{url}");
        let detail = r.body["detail"].as_str().unwrap();
        assert!(detail.contains("not a public address"), "{url}: {detail}");
        assert!(!detail.contains(SECRET), "{url}: {detail}");
        let imports = host.get(&format!("/api/v1/listings/{listing}/calendar/imports")).await;
        let me = imports.body["items"].as_array().unwrap().iter().find(|i| i["id"] == json!(import)).cloned().unwrap();
        assert!(!me["last_error"].as_str().unwrap().contains(SECRET), "{me}");
        host.send(host.http.delete(server.url(&format!("/api/v1/listings/{listing}/calendar/imports/{import}")))).await;
    }
    assert_eq!(target_hits.load(Ordering::SeqCst), 0, "a private address was reached");
    assert!(!server.logs().contains(SECRET), "a feed's token reached the logs");
}

#[tokio::test]
async fn scheduled_feed_sync_skips_drafts_bounds_slow_feeds_and_hosts() {
    let draft_hits = Arc::new(AtomicUsize::new(0));
    let hits = web::Data::from(Arc::clone(&draft_hits));
    let feeds = local_server(move |cfg| {
        cfg.app_data(hits.clone())
            .route("/ok.ics", web::get().to(|| async { HttpResponse::Ok().content_type("text/calendar").body(feed()) }))
            .route(
                "/slow.ics",
                web::get().to(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    HttpResponse::Ok().body(feed())
                }),
            )
            .route(
                "/draft.ics",
                web::get().to(|hits: web::Data<AtomicUsize>| async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    HttpResponse::Ok().body(feed())
                }),
            );
    });
    let server = Server::start_with(&[
        ("HOMETRIP_TESTING__CLOCK_CONTROL", "true"),
        ("HOMETRIP_LISTING__ICAL_ALLOW_PRIVATE_HOSTS", "true"),
        ("HOMETRIP_LISTING__ICAL_FETCH_TIMEOUT_SECS", "1"),
    ])
    .await;
    let (greedy, _) = server.client().signed_up(&unique_email("greedy")).await;
    let (honest, _) = server.client().signed_up(&unique_email("honest")).await;
    let slow_listing = publish_listing(&server, &greedy, listing_body()).await;
    for _ in 0..10 {
        add_feed(&greedy, &slow_listing, &format!("{feeds}/slow.ics")).await;
    }
    let hidden = draft(&greedy).await;
    add_feed(&greedy, &hidden, &format!("{feeds}/draft.ics")).await;
    let honest_listing = publish_listing(&server, &honest, listing_body()).await;
    let honest_feed = add_feed(&honest, &honest_listing, &format!("{feeds}/ok.ics")).await;

    // One scheduled run (the period of `listing.ical_sync_interval_secs`).
    let moved =
        server.internal(reqwest::Method::POST, "/internal/testing/clock", Some(json!({"advance_seconds": 1801}))).await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let ran = server.internal(reqwest::Method::POST, "/internal/testing/jobs/run", None).await;
    assert_eq!(ran.status, 200, "{}", ran.text);

    // The run may be in the background poller's hands when the call returns.
    let mine = eventually(&honest, &format!("/api/v1/listings/{honest_listing}/calendar/imports"), |b| {
        b["items"][0]["last_synced_at"].is_string()
    })
    .await;
    assert_eq!(mine["items"][0]["id"], json!(honest_feed));
    // Every slow feed was cut at its own timeout (1 s), not the run's.
    eventually(&greedy, &format!("/api/v1/listings/{slow_listing}/calendar/imports"), |b| {
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["last_error"].as_str().unwrap_or_default().contains("timed out"))
    })
    .await;
    assert_eq!(draft_hits.load(Ordering::SeqCst), 0, "a draft's feed was fetched by the schedule");

    // A host has at most 50 feeds across their listings.
    let mut added = 11;
    'fill: loop {
        let listing = draft(&greedy).await;
        for _ in 0..10 {
            if added == 50 {
                break 'fill;
            }
            add_feed(&greedy, &listing, &format!("{feeds}/ok.ics")).await;
            added += 1;
        }
    }
    let listing = draft(&greedy).await;
    let over = greedy
        .post(
            &format!("/api/v1/listings/{listing}/calendar/imports"),
            json!({"url": format!("{feeds}/ok.ics"), "name": "F"}),
        )
        .await;
    assert_eq!(over.problem(422), "validation_failed");
}

/// An upload whose body never arrives: the answer must come from the headers alone.
async fn upload_without_body(server: &Server, token: &str, listing: &str) -> u16 {
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let head = format!(
        "POST /api/v1/listings/{listing}/photos HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=XYZ\r\nContent-Length: 314572800\r\n\r\n\
         --XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while !reply.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no answer before the body: the server waited for 300 MiB");
    let status = String::from_utf8_lossy(&reply).split(' ').nth(1).unwrap_or_default().to_owned();
    status.parse().unwrap()
}

#[tokio::test]
async fn uploads_are_checked_before_their_body_and_pixel_bombs_are_refused() {
    let server = Server::start().await;
    let (host, _) = server.client().signed_up(&unique_email("photohost")).await;
    let (other, _) = server.client().signed_up(&unique_email("stranger")).await;
    let listing = publish_listing(&server, &host, listing_body()).await;
    assert_eq!(upload_without_body(&server, other.token.as_deref().unwrap(), &listing).await, 403);
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(upload_without_body(&server, host.token.as_deref().unwrap(), &unknown).await, 404);

    // 7,000 × 6,000 pixels of one grey: a ~40 KB file that decodes to 42 Mpx.
    let bomb = {
        let img = image::GrayImage::new(7000, 6000);
        let mut buf = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageLuma8(img).write_to(&mut buf, image::ImageFormat::Png).unwrap();
        buf.into_inner()
    };
    assert!(bomb.len() < 1024 * 1024, "{} bytes", bomb.len());
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(bomb).file_name("b.png").mime_str("image/png").unwrap());
    let r = host.send(host.http.post(server.url(&format!("/api/v1/listings/{listing}/photos"))).multipart(form)).await;
    assert_eq!(r.problem(422), "validation_failed");
    assert!(r.text.contains("megapixels"), "{}", r.text);
    // An ordinary photo still goes in.
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(png(640, 480)).file_name("p.png").mime_str("image/png").unwrap());
    let r = host.send(host.http.post(server.url(&format!("/api/v1/listings/{listing}/photos"))).multipart(form)).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn every_response_carries_security_headers_and_metrics_need_their_token() {
    let server = Server::start_with(&[("HOMETRIP_SERVER__METRICS_TOKEN", "scrape-me-0123456789")]).await;
    let api = server.client();
    for path in ["/health/live", "/api/v1/users/me", "/no/such/route"] {
        let r = api.get(path).await;
        assert_eq!(r.headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(r.headers["referrer-policy"], "strict-origin-when-cross-origin", "{path}");
        assert_eq!(r.headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(r.headers["content-security-policy"], "frame-ancestors 'none'", "{path}");
        assert!(r.headers.get("strict-transport-security").is_none(), "no HSTS over plain http");
    }
    assert_eq!(api.get("/metrics").await.problem(401), "unauthenticated");
    // Not the service credential: that one opens the internal routes.
    let (_, service) = server.service("auth");
    let with_service = api.send(api.http.get(server.url("/metrics")).bearer_auth(service.trim())).await;
    assert_eq!(with_service.problem(401), "unauthenticated");
    let wrong = api.send(api.http.get(server.url("/metrics")).bearer_auth("scrape-me-0123456788")).await;
    assert_eq!(wrong.problem(401), "unauthenticated");
    let scraped = api.send(api.http.get(server.url("/metrics")).bearer_auth("scrape-me-0123456789")).await;
    assert_eq!(scraped.status, 200);
    assert!(scraped.text.contains("http_request_duration_seconds"));

    let open = Server::start_with(&[
        ("HOMETRIP_SERVER__METRICS_PUBLIC", "true"),
        ("HOMETRIP_SERVER__PUBLIC_URL", "https://stay.example"),
    ])
    .await;
    let api = open.client();
    assert_eq!(api.get("/metrics").await.status, 200);
    let r = api.get("/health/live").await;
    assert_eq!(r.headers["strict-transport-security"], "max-age=31536000; includeSubDomains");
}

#[tokio::test]
async fn the_production_profile_refuses_the_simulated_provider_unless_told() {
    let server = Server::start().await;
    let refused = server
        .command()
        .env("HOMETRIP_PROFILE", "production")
        .env_remove("HOMETRIP_MODULES")
        .env_remove("HOMETRIP_DATABASE__URL")
        .arg("config")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("payment.provider") && said.contains("simulated_in_production"), "{said}");
    // Only where payment runs: a production gateway or booking process
    // needs no payment settings.
    for (modules, ok) in [("gateway", true), ("booking,listing", true), ("payment", false), ("booking,payment", false)]
    {
        let out = server
            .command()
            .env("HOMETRIP_PROFILE", "production")
            .env("HOMETRIP_MODULES", modules)
            .env_remove("HOMETRIP_DATABASE__URL")
            .arg("config")
            .output()
            .unwrap();
        assert_eq!(out.status.success(), ok, "{modules}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let staging = server
        .command()
        .env("HOMETRIP_PROFILE", "production")
        .env("HOMETRIP_PAYMENT__SIMULATED_IN_PRODUCTION", "true")
        .arg("config")
        .output()
        .unwrap();
    assert!(staging.status.success(), "{}", String::from_utf8_lossy(&staging.stderr));
    let stripe = server
        .command()
        .env("HOMETRIP_PROFILE", "production")
        .env("HOMETRIP_PAYMENT__PROVIDER", "stripe")
        .env("HOMETRIP_PAYMENT__STRIPE__SECRET_KEY", "sk_test_x")
        .arg("config")
        .output()
        .unwrap();
    assert!(stripe.status.success(), "{}", String::from_utf8_lossy(&stripe.stderr));
}
