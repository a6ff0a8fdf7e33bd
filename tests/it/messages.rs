//! Messages between guests and hosts: conversations, seq, read positions,
//! idempotent sends, masking until a confirmed booking, attachments.

use serde_json::{json, Value};

use crate::support::*;

/// A host with a published listing and a guest: (host, guest, listing id).
pub async fn host_and_guest(server: &Server) -> (Api, Api, String) {
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let (guest, _) = server.client().signed_up(&unique_email("guest")).await;
    let listing = publish_listing(server, &host, house("Maison des messages")).await;
    (host, guest, listing)
}

pub fn user_id(api: &Api) -> String {
    let token = api.token.as_deref().unwrap();
    let claims = token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

pub async fn start_conversation(guest: &Api, listing: &str, body: &str) -> String {
    let r = guest.post("/api/v1/conversations", json!({"listing_id": listing, "body": body})).await;
    assert!(r.status == 201 || r.status == 200, "{}", r.text);
    r.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn guest_and_host_converse_with_seq_read_state_and_idempotent_sends() {
    let server = Server::start().await;
    let (host, guest, listing) = host_and_guest(&server).await;
    let (host_id, guest_id) = (user_id(&host), user_id(&guest));

    let first = guest
        .post("/api/v1/conversations", json!({"listing_id": listing, "body": "Bonjour, is the garden shaded?"}))
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let conv = first.body["id"].as_str().unwrap().to_owned();
    assert_eq!(first.body["participants"], json!([guest_id, host_id]));
    assert_eq!(first.body["last_message"]["seq"], 1);
    assert_eq!(first.body["unread_count"], 0);
    // Writing again reuses the conversation.
    let again =
        guest.post("/api/v1/conversations", json!({"listing_id": listing, "body": "And is there parking?"})).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["id"], json!(conv));
    assert_eq!(again.body["last_message"]["seq"], 2);

    // The host sees two unread messages; replying reads them.
    let list = host.get("/api/v1/conversations").await;
    assert_eq!(list.status, 200, "{}", list.text);
    let mine = list.body["items"].as_array().unwrap().iter().find(|c| c["id"] == json!(conv)).unwrap().clone();
    assert_eq!(mine["unread_count"], 2, "{mine}");
    let path = format!("/api/v1/conversations/{conv}/messages");
    let reply = host.post(&path, json!({"body": "Yes to both!", "client_message_id": "c-1"})).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["seq"], 3);
    // The same client id again: the same message, once.
    let replay = host.post(&path, json!({"body": "Yes to both!", "client_message_id": "c-1"})).await;
    assert_eq!(replay.status, 201, "{}", replay.text);
    assert_eq!(replay.body["id"], reply.body["id"]);
    assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");

    let page = guest.get(&format!("{path}?limit=2")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let seqs: Vec<i64> = page.body["items"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![1, 2]);
    assert_eq!(page.body["next_cursor"], "2");
    let rest = guest.get(&format!("{path}?after_seq=2")).await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 1, "{}", rest.text);
    assert_eq!(rest.body["items"][0]["sender_id"], json!(host_id));
    assert_eq!(rest.body["read_up_to"][&host_id], 3);
    assert_eq!(rest.body["read_up_to"][&guest_id], 2);

    let read = guest.post(&format!("/api/v1/conversations/{conv}/read"), json!({"up_to_seq": 3})).await;
    assert_eq!(read.status, 204, "{}", read.text);
    let after = host.get(&path).await;
    assert_eq!(after.body["read_up_to"][&guest_id], 3);
    let listed = guest.get("/api/v1/conversations").await;
    assert_eq!(listed.body["items"][0]["unread_count"], 0, "{}", listed.text);

    // Strangers see nothing; admins read (recorded).
    let (stranger, _) = server.client().signed_up(&unique_email("stranger")).await;
    stranger.get(&path).await.problem(404);
    stranger.post(&path, json!({"body": "hi"})).await.problem(404);
    let admin = admin(&server).await;
    let read_by_admin = admin.get(&format!("{path}?reason=dispute%2042")).await;
    assert_eq!(read_by_admin.status, 200, "{}", read_by_admin.text);
    assert_eq!(read_by_admin.body["items"].as_array().unwrap().len(), 3);

    // Bad input.
    guest.post(&path, json!({"body": ""})).await.problem(422);
    guest.post(&path, json!({"body": "x".repeat(5001)})).await.problem(422);
    guest.post(&path, json!({"bodi": "typo"})).await.problem(400);
    guest.post(&format!("/api/v1/conversations/{conv}/read"), json!({"up_to_seq": -1})).await.problem(422);
    guest.get(&format!("{path}?limit=0")).await.problem(422);
    guest.post("/api/v1/conversations", json!({"listing_id": uuid::Uuid::now_v7(), "body": "hi"})).await.problem(404);
    host.post("/api/v1/conversations", json!({"listing_id": listing, "body": "my own"})).await.problem(422);
    server.client().get("/api/v1/conversations").await.problem(401);
}

#[tokio::test]
async fn contact_details_are_hidden_until_a_booking_is_confirmed() {
    let server = Server::start().await;
    let (host, guest, listing) = host_and_guest(&server).await;
    let conv = start_conversation(&guest, &listing, "Hello!").await;
    let path = format!("/api/v1/conversations/{conv}/messages");
    let sent = guest
        .post(
            &path,
            json!({"body": "We are 2 adults, arriving at 18:00. Mail jean.dupont@gmail.com or call +33 6 12 34 56 78"}),
        )
        .await;
    assert_eq!(sent.status, 201, "{}", sent.text);
    let body = sent.body["body"].as_str().unwrap();
    assert_eq!(sent.body["masked"], true);
    assert!(!body.contains("gmail") && !body.contains("56 78"), "{body}");
    assert!(body.contains("2 adults") && body.contains("18:00") && body.contains("[hidden]"), "{body}");
    let plain = host.post(&path, json!({"body": "See you on the 12th, it is 95 EUR a night."})).await;
    assert_eq!(plain.body["masked"], false, "{}", plain.text);
    assert_eq!(plain.body["body"], "See you on the 12th, it is 95 EUR a night.");

    // Once the stay is confirmed, contact details go through.
    book_and_pay(&guest, &listing, 30).await;
    let mut unmasked = Value::Null;
    for _ in 0..patience(60) {
        let r = host.post(&path, json!({"body": "My number is +33 6 98 76 54 32"})).await;
        assert_eq!(r.status, 201, "{}", r.text);
        if r.body["masked"] == false {
            unmasked = r.body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(unmasked["body"], "My number is +33 6 98 76 54 32", "masking never lifted");
    // What was masked stays masked.
    let history = guest.get(&path).await;
    assert_eq!(history.body["items"][1]["masked"], true);
    // The booking is tied to the conversation.
    let listed = guest.get("/api/v1/conversations").await;
    assert!(listed.body["items"][0]["booking_id"].is_string(), "{}", listed.text);
}

async fn send_files(api: &Api, server: &Server, path: &str, files: Vec<(Vec<u8>, &str, &str)>) -> Reply {
    let mut form = reqwest::multipart::Form::new().text("body", "Here you go");
    for (bytes, name, mime) in files {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()).mime_str(mime).unwrap();
        form = form.part("file", part);
    }
    api.send(api.http.post(server.url(path)).multipart(form)).await
}

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

#[tokio::test]
async fn attachments_are_checked_by_content_and_served_only_to_participants() {
    let server = Server::start().await;
    let (host, guest, listing) = host_and_guest(&server).await;
    let conv = start_conversation(&guest, &listing, "Photos of the broken lamp").await;
    let path = format!("/api/v1/conversations/{conv}/messages");

    let sent = send_files(
        &guest,
        &server,
        &path,
        vec![(png(64, 48), "lamp.png", "image/png"), (PDF.to_vec(), "invoice.pdf", "application/pdf")],
    )
    .await;
    assert_eq!(sent.status, 201, "{}", sent.text);
    let attachments = sent.body["attachments"].as_array().unwrap().clone();
    assert_eq!(attachments.len(), 2);
    // Images are re-encoded (no metadata survives), PDFs kept.
    assert_eq!(attachments[0]["content_type"], "image/jpeg");
    assert_eq!(attachments[1]["content_type"], "application/pdf");
    assert_eq!(attachments[1]["size"], PDF.len());
    let url = attachments[0]["url"].as_str().unwrap();
    let got = host.send(host.http.get(server.url(url))).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.content_type(), "image/jpeg");
    let (stranger, _) = server.client().signed_up(&unique_email("stranger")).await;
    stranger.send(stranger.http.get(server.url(url))).await.problem(404);
    server.client().send(server.client().http.get(server.url(url))).await.problem(401);

    // A PNG named .pdf is what its bytes say; text named .pdf is refused.
    let renamed = send_files(&guest, &server, &path, vec![(png(32, 32), "scan.pdf", "application/pdf")]).await;
    assert_eq!(renamed.status, 201, "{}", renamed.text);
    assert_eq!(renamed.body["attachments"][0]["content_type"], "image/jpeg");
    send_files(&guest, &server, &path, vec![(b"not a pdf at all".to_vec(), "fake.pdf", "application/pdf")])
        .await
        .problem(415);
    // Too large, too many.
    let big = vec![0u8; 10 * 1024 * 1024 + 1];
    send_files(&guest, &server, &path, vec![(big, "big.pdf", "application/pdf")]).await.problem(413);
    let eleven = (0..11).map(|_| (PDF.to_vec(), "a.pdf", "application/pdf")).collect();
    send_files(&guest, &server, &path, eleven).await.problem(413);
    // Nothing was stored for the refused sends.
    let history = guest.get(&path).await;
    assert_eq!(history.body["items"].as_array().unwrap().len(), 3, "{}", history.text);
}

#[tokio::test]
async fn hosts_keep_quick_replies_whose_placeholders_fill_in() {
    let server = Server::start().await;
    let (host, guest, listing) = host_and_guest(&server).await;
    let conv = start_conversation(&guest, &listing, "Hello, how do I get in?").await;
    guest.post("/api/v1/quick-replies", json!({"title": "x", "body": "{wifi_code}"})).await.problem(422);
    let saved = host
        .post(
            "/api/v1/quick-replies",
            json!({"title": "Arrival", "body": "Hi {guest_name}! {listing_title} is at {listing_address}."}),
        )
        .await;
    assert_eq!(saved.status, 201, "{}", saved.text);
    host.post("/api/v1/quick-replies", json!({"title": "Bad", "body": "Code: {wifi_code}"})).await.problem(422);
    let list = host.get("/api/v1/quick-replies").await;
    assert_eq!(list.body.as_array().unwrap().len(), 1, "{}", list.text);
    let id = saved.body["id"].as_str().unwrap();
    let path = format!("/api/v1/conversations/{conv}/messages");
    // Before a confirmed booking the address stays out.
    let sent = host.post(&path, json!({"quick_reply_id": id})).await;
    assert_eq!(sent.status, 201, "{}", sent.text);
    let body = sent.body["body"].as_str().unwrap();
    assert!(body.starts_with("Hi Test User! Maison des messages is at"), "{body}");
    assert!(!body.contains("rue des Lilas"), "{body}");
    // The guest cannot use the host's replies.
    guest.post(&path, json!({"quick_reply_id": id})).await.problem(422);

    book_and_pay(&guest, &listing, 30).await;
    let mut filled = String::new();
    for _ in 0..patience(50) {
        let r = host.post(&path, json!({"quick_reply_id": id})).await;
        filled = r.body["body"].as_str().unwrap_or_default().to_owned();
        if filled.contains("rue des Lilas") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(filled.contains("3 rue des Lilas, 69001, Lyon"), "{filled}");
    assert_eq!(host.send(host.http.delete(server.url(&format!("/api/v1/quick-replies/{id}")))).await.status, 204);
    host.send(host.http.delete(server.url(&format!("/api/v1/quick-replies/{id}")))).await.problem(404);
}

#[tokio::test]
async fn scheduled_messages_go_the_day_before_check_in_unless_the_stay_is_cancelled() {
    let server = Server::start_with(&[("HOMETRIP_TESTING__CLOCK_CONTROL", "true")]).await;
    let (host, guest, listing) = host_and_guest(&server).await;
    let booking = book_and_pay(&guest, &listing, 10).await;
    let conv = start_conversation(&guest, &listing, "Looking forward to it").await;
    let path = format!("/api/v1/conversations/{conv}/scheduled-messages");
    let new = json!({"body": "Tomorrow, {guest_name}! The address: {listing_address}", "days_before_check_in": 1, "at": "10:00"});
    guest.post(&path, new.clone()).await.problem(404);
    host.post(&path, json!({"body": "x", "days_before_check_in": 1, "at": "25:00"})).await.problem(422);
    host.post(&path, json!({"body": "x", "days_before_check_in": 20, "at": "10:00"})).await.problem(422);
    let scheduled = host.post(&path, new).await;
    assert_eq!(scheduled.status, 201, "{}", scheduled.text);
    assert_eq!(scheduled.body["status"], "pending");
    // 10:00 in the listing's zone (Europe/Paris) the day before check-in.
    let send_at = chrono::DateTime::parse_from_rfc3339(scheduled.body["send_at"].as_str().unwrap()).unwrap();
    let local = send_at.with_timezone(&chrono_tz::Europe::Paris);
    assert_eq!(local.format("%H:%M").to_string(), "10:00");
    assert_eq!(local.date_naive().to_string(), date_from_today(9));
    // A second one, cancelled by the host.
    let other = host.post(&path, json!({"body": "Never sent", "days_before_check_in": 2, "at": "09:00"})).await;
    let other_id = other.body["id"].as_str().unwrap();
    let cancel = host.send(host.http.delete(server.url(&format!("{path}/{other_id}")))).await;
    assert_eq!(cancel.status, 204, "{}", cancel.text);

    advance_clock(&server, 10 * 86_400).await;
    let sent =
        eventually(&host, &path, |v| v.as_array().is_some_and(|a| a.iter().any(|m| m["status"] == "sent"))).await;
    let statuses: Vec<&str> = sent.as_array().unwrap().iter().map(|m| m["status"].as_str().unwrap()).collect();
    assert!(statuses.contains(&"cancelled"), "{sent}");
    let messages = guest.get(&format!("/api/v1/conversations/{conv}/messages")).await;
    let bodies: Vec<&str> =
        messages.body["items"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert!(bodies.iter().any(|b| b.starts_with("Tomorrow, Test User! The address: 3 rue des Lilas")), "{bodies:?}");
    assert!(!bodies.contains(&"Never sent"));

    // Cancelled stays skip what was scheduled for them.
    let later = book_and_pay(&guest, &listing, 40).await;
    let _ = booking;
    // The conversation follows the latest booking.
    eventually(&guest, "/api/v1/conversations", |v| v["items"][0]["booking_id"] == json!(later)).await;
    let skipped = host.post(&path, json!({"body": "See you!", "days_before_check_in": 1, "at": "10:00"})).await;
    assert_eq!(skipped.status, 201, "{}", skipped.text);
    let cancelled = guest.post(&format!("/api/v1/bookings/{later}/cancel"), json!({})).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    advance_clock(&server, 40 * 86_400).await;
    let id = skipped.body["id"].clone();
    eventually(&host, &path, |v| {
        v.as_array().is_some_and(|a| a.iter().any(|m| m["id"] == id && m["status"] == "skipped"))
    })
    .await;
}

#[tokio::test]
async fn a_hosts_response_rate_and_time_show_on_their_public_profile() {
    let server = Server::start_with(&[("HOMETRIP_TESTING__CLOCK_CONTROL", "true")]).await;
    let (host, guest, listing) = host_and_guest(&server).await;
    let host_id = user_id(&host);
    let profile = format!("/api/v1/users/{host_id}");
    let fresh = server.client().get(&profile).await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);
    assert!(fresh.body["response_rate"].is_null(), "{}", fresh.text);

    // One inquiry answered at once: 100 %.
    let conv = start_conversation(&guest, &listing, "Is it quiet at night?").await;
    let r = host.post(&format!("/api/v1/conversations/{conv}/messages"), json!({"body": "Very quiet."})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let shown = eventually(&server.client(), &profile, |p| p["response_rate"] == 100).await;
    assert_eq!(shown["response_time_minutes"], 0);

    // A second guest's inquiry left unanswered for a day: 50 %.
    let (other, _) = server.client().signed_up(&unique_email("guest2")).await;
    start_conversation(&other, &listing, "Is there a crib?").await;
    let r = server
        .internal(reqwest::Method::POST, "/internal/testing/clock", Some(json!({"advance_seconds": 25 * 3600})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for _ in 0..patience(20) {
        let r = server.internal(reqwest::Method::POST, "/internal/testing/jobs/run", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if server.client().get(&profile).await.body["response_rate"] == 50 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(server.client().get(&profile).await.body["response_rate"], 50);
}
