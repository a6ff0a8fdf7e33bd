//! Notifications on every channel: in-app (listed and pushed live), message
//! digests cancelled by reading, preferences and quiet hours, SMS through a
//! local server speaking Twilio's wire format (and its signed callbacks),
//! Web Push decrypted by an independent push service (Python's http_ece).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::messages::{host_and_guest, start_conversation};
use crate::support::*;

async fn notifications_of(api: &Api, kind: &str) -> Vec<Value> {
    let r = api.get("/api/v1/notifications").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"].as_array().unwrap().iter().filter(|n| n["kind"] == kind).cloned().collect()
}

async fn eventually_notified(api: &Api, kind: &str) -> Value {
    for _ in 0..patience(100) {
        if let Some(n) = notifications_of(api, kind).await.into_iter().next() {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {kind} notification");
}

#[tokio::test]
async fn bookings_notify_in_app_and_reading_clears_them() {
    let server = Server::start().await;
    let (host, guest, listing) = host_and_guest(&server).await;
    book_and_pay(&guest, &listing, 25).await;
    let confirmed = eventually_notified(&guest, "booking_confirmed").await;
    assert_eq!(confirmed["title"], "Booking confirmed");
    assert!(confirmed["body"].as_str().unwrap().contains("Maison des messages"), "{confirmed}");
    assert!(confirmed["read_at"].is_null());
    eventually_notified(&host, "booking_confirmed").await;

    let unread = guest.get("/api/v1/notifications?unread=true").await;
    assert!(unread.body["unread_count"].as_i64().unwrap() >= 1, "{}", unread.text);
    let id = confirmed["id"].as_str().unwrap();
    assert_eq!(guest.post(&format!("/api/v1/notifications/{id}/read"), json!({})).await.status, 204);
    host.post(&format!("/api/v1/notifications/{id}/read"), json!({})).await.problem(404);
    assert_eq!(guest.post("/api/v1/notifications/read-all", json!({})).await.status, 204);
    let after = guest.get("/api/v1/notifications?unread=true").await;
    assert_eq!(after.body["unread_count"], 0, "{}", after.text);
    assert_eq!(after.body["items"], json!([]));
    // The confirmation also went by email (the default), in the guest's language.
    let email = guest.get("/api/v1/users/me").await.body["email"].as_str().unwrap().to_owned();
    server.wait_email(&email, "Booking confirmed").await;
    server.client().get("/api/v1/notifications").await.problem(401);
}

#[tokio::test]
async fn unread_messages_become_one_notification_and_reading_cancels_it() {
    let server = Server::start_with(&[("HOMETRIP_TESTING__CLOCK_CONTROL", "true")]).await;
    let (host, guest, listing) = host_and_guest(&server).await;
    let conv = start_conversation(&guest, &listing, "First question").await;
    let path = format!("/api/v1/conversations/{conv}/messages");
    assert_eq!(guest.post(&path, json!({"body": "Second question"})).await.status, 201);
    // Not before the delay.
    advance_clock(&server, 60).await;
    assert!(notifications_of(&host, "message_received").await.is_empty());
    advance_clock(&server, 5 * 60).await;
    let n = eventually_notified(&host, "message_received").await;
    assert!(n["title"].as_str().unwrap().starts_with("2 new messages"), "{n}");
    assert_eq!(n["link"], json!(format!("/inbox/{conv}")));

    // Read within the delay: no notification.
    let reply = host.post(&path, json!({"body": "Answer"})).await;
    let seq = reply.body["seq"].as_i64().unwrap();
    assert_eq!(host.post(&path, json!({"body": "And more"})).await.status, 201);
    let read = guest.post(&format!("/api/v1/conversations/{conv}/read"), json!({"up_to_seq": seq + 1})).await;
    assert_eq!(read.status, 204);
    // The read event is delivered before the clock moves on.
    tokio::time::sleep(Duration::from_millis(if crate::shape::is_split() { 3000 } else { 500 })).await;
    advance_clock(&server, 6 * 60).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(notifications_of(&guest, "message_received").await.is_empty(), "read in time, yet notified");
}

#[tokio::test]
async fn preferences_keep_security_emails_and_check_what_they_are_given() {
    let server = Server::start().await;
    let (user, _) = server.client().signed_up(&unique_email("prefs")).await;
    let defaults = user.get("/api/v1/notifications/preferences").await;
    assert_eq!(defaults.status, 200, "{}", defaults.text);
    assert_eq!(
        defaults.body["channels"]["booking_confirmed"],
        json!({"email": true, "sms": false, "push": true, "in_app": true})
    );
    assert!(defaults.body["quiet_hours"].is_null());

    let put = |body: Value| {
        let user = user.clone();
        async move { user.send(user.http.put(format!("{}/api/v1/notifications/preferences", user.base)).json(&body)).await }
    };
    let off = json!({"email": false, "sms": false, "push": false, "in_app": false});
    put(json!({"channels": {"password_reset": off}})).await.problem(422);
    put(json!({"channels": {"no_such_kind": off}})).await.problem(422);
    put(json!({"channels": {}, "quiet_hours": {"from": "25:00", "to": "08:00"}})).await.problem(422);
    put(json!({"channels": {}, "time_zone": "Mars/Olympus"})).await.problem(422);
    let saved = put(json!({
        "channels": {"message_received": {"email": false, "sms": false, "push": true, "in_app": true}},
        "quiet_hours": {"from": "22:00", "to": "08:00"}, "time_zone": "Europe/Paris"
    }))
    .await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    assert_eq!(saved.body["channels"]["message_received"]["email"], false);
    assert_eq!(saved.body["channels"]["booking_confirmed"]["email"], true);
    assert_eq!(saved.body["quiet_hours"], json!({"from": "22:00", "to": "08:00"}));
    let again = user.get("/api/v1/notifications/preferences").await;
    assert_eq!(again.body, saved.body);

    // The admins' preview renders every kind in both languages.
    let admin = admin(&server).await;
    let preview = admin.get("/api/v1/admin/notifications/preview?kind=booking_requested&locale=fr").await;
    assert_eq!(preview.status, 200, "{}", preview.text);
    assert_eq!(preview.body["text"]["title"], "Nouvelle demande de Camille");
    assert!(preview.body["email_html"].as_str().unwrap().contains("<a href="));
    user.get("/api/v1/admin/notifications/preview?kind=booking_requested").await.problem(403);
    admin.get("/api/v1/admin/notifications/preview?kind=nope").await.problem(422);
}

/// Requests a local stand-in for Twilio's Messages API received.
type Sent = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

fn twilio_server(sent: Sent) -> String {
    local_server(move |cfg| {
        let sent = Arc::clone(&sent);
        cfg.route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            actix_web::web::post().to(move |req: actix_web::HttpRequest, body: actix_web::web::Bytes| {
                let sent = Arc::clone(&sent);
                async move {
                    use base64::Engine as _;
                    let expected =
                        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("ACtest:twilio-token"));
                    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                    let form = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
                    if auth != expected || !form.starts_with("application/x-www-form-urlencoded") {
                        return actix_web::HttpResponse::Unauthorized().json(json!({"code": 20003, "status": 401}));
                    }
                    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
                    let n = {
                        let mut sent = sent.lock().unwrap();
                        sent.push((req.match_info().get("sid").unwrap_or("").to_owned(), params));
                        sent.len()
                    };
                    actix_web::HttpResponse::Created()
                        .json(json!({"sid": format!("SM{n:032}"), "status": "queued", "account_sid": "ACtest"}))
                }
            }),
        );
    })
}

fn param(params: &[(String, String)], name: &str) -> String {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
}

fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let mut sorted = params.to_vec();
    sorted.sort();
    let data = sorted.iter().fold(url.to_owned(), |acc, (k, v)| format!("{acc}{k}{v}"));
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A platform sending SMS to a local Twilio stand-in, and what it received.
async fn with_twilio() -> (Server, Sent) {
    let sent: Sent = Arc::default();
    let twilio = twilio_server(Arc::clone(&sent));
    let server = Server::start_with(&[
        ("HOMETRIP_NOTIFICATION__TWILIO__ACCOUNT_SID", "ACtest"),
        ("HOMETRIP_NOTIFICATION__TWILIO__AUTH_TOKEN", "twilio-token"),
        ("HOMETRIP_NOTIFICATION__TWILIO__FROM", "+15005550006"),
        ("HOMETRIP_NOTIFICATION__TWILIO__API_BASE", &twilio),
        ("HOMETRIP_TESTING__CLOCK_CONTROL", "true"),
    ])
    .await;
    (server, sent)
}

#[tokio::test]
async fn sms_go_through_twilio_to_verified_numbers_with_signed_callbacks() {
    let (server, sent) = with_twilio().await;
    let (host, guest, listing) = host_and_guest(&server).await;
    let phone = |api: &Api, body: Value| {
        let api = api.clone();
        async move { api.send(api.http.put(format!("{}/api/v1/users/me/phone", api.base)).json(&body)).await }
    };
    phone(&guest, json!({"phone": "06 12 34 56 78"})).await.problem(422);
    let started = phone(&guest, json!({"phone": "+33 6 12 34 56 78"})).await;
    assert_eq!(started.status, 202, "{}", started.text);
    assert_eq!(started.body, json!({"phone": "+33612345678", "verified": false}));
    let (account, params) = sent.lock().unwrap().last().cloned().expect("the code went to Twilio");
    assert_eq!(account, "ACtest");
    assert_eq!(param(&params, "To"), "+33612345678");
    assert_eq!(param(&params, "From"), "+15005550006");
    assert!(param(&params, "StatusCallback").ends_with("/api/v1/notifications/webhooks/twilio"));
    let body = param(&params, "Body");
    let code: String = body.chars().filter(char::is_ascii_digit).take(6).collect();
    guest.post("/api/v1/users/me/phone/verify", json!({"code": "000000"})).await.problem(422);
    let verified = guest.post("/api/v1/users/me/phone/verify", json!({"code": code})).await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    assert_eq!(verified.body["verified"], true);

    // SMS on for confirmations; the booking's confirmation goes by SMS.
    let sms_on =
        json!({"channels": {"booking_confirmed": {"email": true, "sms": true, "push": false, "in_app": true}}});
    let r = guest.send(guest.http.put(server.url("/api/v1/notifications/preferences")).json(&sms_on)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    book_and_pay(&guest, &listing, 35).await;
    let mut confirmation = None;
    for _ in 0..patience(100) {
        confirmation = sent.lock().unwrap().iter().find(|(_, p)| param(p, "Body").contains("confirmed")).cloned();
        if confirmation.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, params) = confirmation.expect("the confirmation went by SMS");
    assert_eq!(param(&params, "To"), "+33612345678");
    // The host has no verified number: no SMS for them, whatever their settings.
    assert!(sent.lock().unwrap().iter().all(|(_, p)| param(p, "To") == "+33612345678"));
    let _ = host;

    // Twilio's status callbacks: signed ones are taken, others refused.
    let url = server.url("/api/v1/notifications/webhooks/twilio");
    let public = url.clone();
    let fields = [("MessageSid", "SM00000000000000000000000000000002"), ("MessageStatus", "delivered")];
    let form = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
    let signed = twilio_signature("twilio-token", &public, &fields);
    let http = reqwest::Client::new();
    let post = |signature: &str| {
        http.post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature.to_owned())
            .body(form.clone())
            .send()
    };
    assert_eq!(post(&signed).await.unwrap().status(), 204);
    assert_eq!(post("bm90IHNpZ25lZA==").await.unwrap().status(), 403);
}

#[tokio::test]
async fn quiet_hours_hold_sms_until_they_end() {
    let (server, sent) = with_twilio().await;
    let (_host, guest, listing) = host_and_guest(&server).await;
    let r =
        guest.send(guest.http.put(server.url("/api/v1/users/me/phone")).json(&json!({"phone": "+33612345678"}))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let body = param(&sent.lock().unwrap().last().unwrap().1, "Body");
    let code: String = body.chars().filter(char::is_ascii_digit).take(6).collect();
    assert_eq!(guest.post("/api/v1/users/me/phone/verify", json!({"code": code})).await.status, 200);
    // Quiet for the next two hours, whatever time it is (UTC).
    let now = chrono::Utc::now();
    let hhmm = |t: chrono::DateTime<chrono::Utc>| t.format("%H:%M").to_string();
    let prefs = json!({
        "channels": {"booking_confirmed": {"email": false, "sms": true, "push": false, "in_app": true}},
        "quiet_hours": {"from": hhmm(now - chrono::Duration::minutes(5)), "to": hhmm(now + chrono::Duration::hours(2))},
        "time_zone": "UTC"
    });
    let r = guest.send(guest.http.put(server.url("/api/v1/notifications/preferences")).json(&prefs)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    book_and_pay(&guest, &listing, 40).await;
    eventually_notified(&guest, "booking_confirmed").await;
    let confirmations = || sent.lock().unwrap().iter().filter(|(_, p)| param(p, "Body").contains("confirmed")).count();
    advance_clock(&server, 60).await;
    assert_eq!(confirmations(), 0, "an SMS went out in quiet hours");
    // Once they end, it goes.
    advance_clock(&server, 2 * 3600).await;
    for _ in 0..patience(50) {
        if confirmations() == 1 {
            break;
        }
        advance_clock(&server, 1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(confirmations(), 1);
}

/// The independent push service (`tests/tools/push_service.py`): its port
/// and the subscription keys it made.
fn push_service() -> (std::process::Child, Value) {
    use std::io::BufRead as _;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/push_service.py");
    // Its two libraries come from PyPI (`.ci/run` installs them up front).
    let ready = std::process::Command::new("python3").args(["-c", "import http_ece, cryptography"]).status();
    if !ready.is_ok_and(|s| s.success()) {
        let installed = std::process::Command::new("python3")
            .args(["-m", "pip", "install", "-q", "http-ece", "cryptography"])
            .status()
            .expect("python3 runs pip");
        assert!(installed.success(), "pip install http-ece cryptography failed");
    }
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the push service");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (child, serde_json::from_str(&line).expect("the push service's keys"))
}

#[tokio::test]
async fn web_push_is_encrypted_for_the_browser_and_signed_with_vapid() {
    let (mut pusher, keys) = push_service();
    let server = Server::start_with(&[("HOMETRIP_NOTIFICATION__PUSH__ALLOW_PRIVATE_ENDPOINTS", "true")]).await;
    let (_host, guest, listing) = host_and_guest(&server).await;
    let key = server.client().get("/api/v1/notifications/push/key").await;
    let vapid = key.body["vapid_public_key"].as_str().unwrap().to_owned();
    assert_eq!(vapid.len(), 87, "base64url of a 65-byte uncompressed point");

    let port = keys["port"].as_u64().unwrap();
    let subscription = |path: &str| {
        json!({"endpoint": format!("http://127.0.0.1:{port}{path}"), "expirationTime": null,
               "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}})
    };
    guest
        .post(
            "/api/v1/notifications/push/subscriptions",
            json!({"endpoint": "ftp://x", "keys": {"p256dh": "a", "auth": "b"}}),
        )
        .await
        .problem(422);
    let live = guest.post("/api/v1/notifications/push/subscriptions", subscription("/push/browser")).await;
    assert_eq!(live.status, 201, "{}", live.text);
    let gone = guest.post("/api/v1/notifications/push/subscriptions", subscription("/push/gone")).await;
    assert_eq!(gone.status, 201, "{}", gone.text);

    book_and_pay(&guest, &listing, 45).await;
    let http = reqwest::Client::new();
    let mut received = Value::Null;
    for _ in 0..patience(100) {
        received = http.get(format!("http://127.0.0.1:{port}/received")).send().await.unwrap().json().await.unwrap();
        if received.as_array().is_some_and(|r| r.iter().any(|p| p["payload"]["kind"] == "booking_confirmed")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let push = received.as_array().unwrap().iter().find(|p| p["payload"]["kind"] == "booking_confirmed").cloned();
    let push = push.unwrap_or_else(|| panic!("no push decrypted: {received}"));
    assert_eq!(push["path"], "/push/browser");
    assert_eq!(push["payload"]["title"], "Booking confirmed");
    // The push service answered 410 for the other: that subscription is gone.
    let gone_id = gone.body["id"].clone();
    let mut removed = false;
    for _ in 0..patience(50) {
        let list = guest.get("/api/v1/notifications/push/subscriptions").await;
        assert_eq!(list.status, 200, "{}", list.text);
        let ids: Vec<Value> = list.body.as_array().unwrap().iter().map(|s| s["id"].clone()).collect();
        assert!(ids.contains(&live.body["id"]));
        if !ids.contains(&gone_id) {
            removed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = pusher.kill();
    assert!(removed, "a 410 from the push service removes the subscription");
}

#[tokio::test]
async fn in_app_notifications_arrive_live_and_on_resume() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message as Frame;
    let server = Server::start().await;
    let (_host, guest, listing) = host_and_guest(&server).await;
    let connect = || async {
        let mut req = server.url("/ws").replacen("http", "ws", 1).into_client_request().unwrap();
        req.headers_mut().insert("authorization", format!("Bearer {}", guest.token.clone().unwrap()).parse().unwrap());
        tokio_tungstenite::connect_async(req).await.expect("websocket").0
    };
    let mut ws = connect().await;
    ws.send(Frame::text(json!({"type": "ping"}).to_string())).await.unwrap();
    book_and_pay(&guest, &listing, 50).await;
    let wait = Duration::from_secs(if crate::shape::is_split() { 30 } else { 10 });
    let live = tokio::time::timeout(wait, async {
        while let Some(Ok(frame)) = ws.next().await {
            if let Frame::Text(text) = frame {
                let v: Value = serde_json::from_str(&text).unwrap();
                if v["type"] == "notification.created" && v["data"]["kind"] == "booking_confirmed" {
                    return v;
                }
            }
        }
        panic!("socket closed");
    })
    .await
    .expect("a live notification.created frame");
    assert_eq!(live["data"]["title"], "Booking confirmed");
    drop(ws);

    // A new socket resuming from nothing gets every notification.
    let mut ws = connect().await;
    ws.send(Frame::text(json!({"type": "resume", "conversations": {}, "notifications_after": null}).to_string()))
        .await
        .unwrap();
    let resumed = tokio::time::timeout(wait, async {
        while let Some(Ok(frame)) = ws.next().await {
            if let Frame::Text(text) = frame {
                let v: Value = serde_json::from_str(&text).unwrap();
                if v["type"] == "notification.created" {
                    return v;
                }
            }
        }
        panic!("socket closed");
    })
    .await
    .expect("notifications on resume");
    assert_eq!(resumed["data"]["id"], live["data"]["id"]);
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_is_parked_with_the_dead_letters() {
    let (mut pusher, keys) = push_service();
    let server = Server::start_with(&[
        ("HOMETRIP_NOTIFICATION__PUSH__ALLOW_PRIVATE_ENDPOINTS", "true"),
        ("HOMETRIP_TESTING__CLOCK_CONTROL", "true"),
    ])
    .await;
    let (_host, guest, listing) = host_and_guest(&server).await;
    let endpoint = format!("http://127.0.0.1:{}/push/broken", keys["port"]);
    let sub = guest
        .post(
            "/api/v1/notifications/push/subscriptions",
            json!({"endpoint": endpoint, "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}}),
        )
        .await;
    assert_eq!(sub.status, 201, "{}", sub.text);
    book_and_pay(&guest, &listing, 55).await;
    // The in-app copy is there whatever the push service does.
    eventually_notified(&guest, "booking_confirmed").await;
    let admin = admin(&server).await;
    let mut parked = None;
    for _ in 0..patience(30) {
        advance_clock(&server, 3700).await;
        let list = admin.get("/api/v1/admin/events/dead-letters").await;
        assert_eq!(list.status, 200, "{}", list.text);
        parked = list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["event_type"] == "notification.delivery_failed")
            .cloned();
        if parked.is_some() {
            break;
        }
    }
    let parked = parked.expect("the failing push was parked after its last attempt");
    assert!(parked["error"].as_str().unwrap().contains("500"), "{parked}");
    // A replay delivers again (and the push service still refuses).
    let id = parked["id"].as_str().unwrap();
    let replay = admin.post(&format!("/api/v1/admin/events/dead-letters/{id}/replay"), json!({})).await;
    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!(replay.body["delivered"], false);
    let _ = pusher.kill();
}
