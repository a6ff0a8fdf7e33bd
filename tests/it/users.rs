//! Every call of API.md's Users section, plus identity verification and
//! admin search.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn profile_updates_are_validated() {
    let server = Server::start().await;
    let (me, _) = server.client().signed_up(&unique_email("pat")).await;
    let r = me
        .patch(
            "/api/v1/users/me",
            json!({"display_name": "Patricia", "bio": "J'adore la Bretagne 🌊", "locale": "fr", "currency": "CHF",
                   "notification_channels": {"sms": true}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["display_name"], json!("Patricia"));
    assert_eq!(r.body["bio"], json!("J'adore la Bretagne 🌊"));
    assert_eq!(r.body["locale"], json!("fr"));
    assert_eq!(r.body["currency"], json!("CHF"));
    assert_eq!(r.body["notification_channels"], json!({"email": true, "sms": true, "push": true}));

    let bad =
        me.patch("/api/v1/users/me", json!({"locale": "klingon", "currency": "BTC", "bio": "x".repeat(3000)})).await;
    assert_eq!(bad.problem(422), "validation_failed");
    let fields: Vec<&str> =
        bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"locale") && fields.contains(&"currency") && fields.contains(&"bio"), "{}", bad.text);
    // Nothing of the bad patch was stored.
    let now = me.get("/api/v1/users/me").await;
    assert_eq!(now.body["locale"], json!("fr"));
    assert_eq!(now.body["currency"], json!("CHF"));
    // Unknown fields and wrong types are refused too.
    assert_eq!(me.patch("/api/v1/users/me", json!({"email": "x@y.z"})).await.status, 422);
    assert_eq!(me.patch("/api/v1/users/me", json!({"bio": 42})).await.status, 422);
    // SQL-looking text is just text.
    let sql = "Robert'); DROP TABLE profiles;--";
    assert_eq!(me.patch("/api/v1/users/me", json!({"display_name": sql})).await.body["display_name"], json!(sql));
    assert_eq!(me.get("/api/v1/users/me").await.status, 200);
}

#[tokio::test]
async fn avatars_are_checked_resized_and_served() {
    let server = Server::start().await;
    let (me, _) = server.client().signed_up(&unique_email("avatar")).await;
    let r = me.put_file("/api/v1/users/me/avatar", "file", png(900, 700), "image/png").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let url = r.body["avatar_url"].as_str().unwrap().to_owned();
    let served = reqwest::get(server.url(&url)).await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/jpeg");
    let img = image::load_from_memory(&served.bytes().await.unwrap()).unwrap();
    assert_eq!(img.width().max(img.height()), 512);

    assert_eq!(
        me.put_file("/api/v1/users/me/avatar", "file", b"%PDF-1.4 hello".to_vec(), "application/pdf")
            .await
            .problem(415),
        "unsupported_media_type"
    );
    let mut broken = png(200, 200);
    broken.truncate(100);
    assert_eq!(
        me.put_file("/api/v1/users/me/avatar", "file", broken, "image/png").await.problem(422),
        "validation_failed"
    );
    let huge = vec![0u8; 6 * 1024 * 1024];
    assert_eq!(
        me.put_file("/api/v1/users/me/avatar", "file", huge, "image/png").await.problem(413),
        "payload_too_large"
    );
    assert_eq!(
        me.put_file("/api/v1/users/me/avatar", "wrong_field", png(64, 64), "image/png").await.problem(422),
        "validation_failed"
    );
    let not_multipart = me.send(me.http.put(server.url("/api/v1/users/me/avatar")).json(&json!({}))).await;
    assert_eq!(not_multipart.problem(415), "unsupported_media_type");
    // The first avatar is still the one shown.
    assert_eq!(me.get("/api/v1/users/me").await.body["avatar_url"], json!(url));
}

#[tokio::test]
async fn public_profiles_hide_the_email() {
    let server = Server::start().await;
    let api = server.client();
    let (me, _) = api.signed_up(&unique_email("pub")).await;
    let id = me.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    let p = api.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert!(p.body.get("email").is_none(), "{}", p.text);
    assert_eq!(p.body["display_name"], json!("Test User"));
    assert_eq!(api.get(&format!("/api/v1/users/{}", uuid::Uuid::now_v7())).await.problem(404), "not_found");
    assert_eq!(api.get("/api/v1/users/not-a-uuid").await.problem(400), "invalid_path");
}

#[tokio::test]
async fn identity_verification_is_reviewed_by_an_admin() {
    let server = Server::start().await;
    let admin = admin(&server).await;
    let (me, _) = server.client().signed_up(&unique_email("ident")).await;
    let id = me.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/admin/users/{id}/identity");

    assert_eq!(admin.post(&path, json!({"decision": "approve"})).await.problem(409), "conflict");
    let sent = me.put_file("/api/v1/users/me/identity", "document", png(800, 500), "image/png").await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    assert_eq!(sent.body["identity_status"], json!("pending"));
    assert_eq!(sent.body["identity_verified"], json!(false));
    // Documents are never served, and the one under review cannot be swapped.
    assert!(std::fs::read_dir(server.data_dir_of("user").join("files/identity")).is_ok());
    assert_eq!(server.client().get(&format!("/files/identity/{id}")).await.problem(404), "not_found");
    let swap = me.put_file("/api/v1/users/me/identity", "document", png(300, 300), "image/png").await;
    assert_eq!(swap.problem(409), "conflict");
    assert_eq!(me.put_file("/api/v1/users/me/identity", "document", b"hello".to_vec(), "text/plain").await.status, 409);

    assert_eq!(me.post(&path, json!({"decision": "approve"})).await.problem(403), "forbidden");
    assert_eq!(admin.post(&path, json!({"decision": "maybe"})).await.status, 422);
    let rejected = admin.post(&path, json!({"decision": "reject", "note": "blurry"})).await;
    assert_eq!(rejected.body["identity_status"], json!("rejected"), "{}", rejected.text);
    let text = me.put_file("/api/v1/users/me/identity", "document", b"hello".to_vec(), "text/plain").await;
    assert_eq!(text.problem(415), "unsupported_media_type");
    let resent =
        me.put_file("/api/v1/users/me/identity", "document", b"%PDF-1.7 scan".to_vec(), "application/pdf").await;
    assert_eq!(resent.body["identity_status"], json!("pending"), "{}", resent.text);
    let ok = admin.post(&path, json!({"decision": "approve", "note": "passport checked"})).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(me.get("/api/v1/users/me").await.body["identity_verified"], json!(true));
    assert_eq!(server.client().get(&format!("/api/v1/users/{id}")).await.body["identity_verified"], json!(true));
}

#[tokio::test]
async fn admins_search_users_by_email_and_name_with_pagination() {
    let server = Server::start().await;
    let admin = admin(&server).await;
    let api = server.client();
    for i in 0..5 {
        let r = api.register(&format!("searchable{i}@example.com"), &format!("Zélie Number{i}")).await;
        assert_eq!(r.status, 201);
    }
    api.register("other@example.com", "Someone Else").await;
    let page1 = admin.get("/api/v1/admin/users?q=SEARCHABLE&limit=3").await;
    assert_eq!(page1.status, 200, "{}", page1.text);
    assert_eq!(page1.body["items"].as_array().unwrap().len(), 3);
    let cursor = page1.body["next_cursor"].as_str().unwrap();
    let page2 = admin.get(&format!("/api/v1/admin/users?q=searchable&limit=3&cursor={cursor}")).await;
    assert_eq!(page2.body["items"].as_array().unwrap().len(), 2, "{}", page2.text);
    let by_name = admin.get("/api/v1/admin/users?q=z%C3%A9lie%20number3").await;
    assert_eq!(by_name.body["items"].as_array().unwrap().len(), 1, "{}", by_name.text);
    // LIKE wildcards are literal.
    assert_eq!(admin.get("/api/v1/admin/users?q=%25").await.body["items"].as_array().unwrap().len(), 0);
    assert_eq!(admin.get("/api/v1/admin/users?limit=0").await.problem(422), "validation_failed");
    assert_eq!(admin.get("/api/v1/admin/users?limit=abc").await.problem(400), "invalid_query");
    let (user, _) = api.signed_up(&unique_email("nosy")).await;
    assert_eq!(user.get("/api/v1/admin/users?q=a").await.problem(403), "forbidden");
    assert_eq!(api.get("/api/v1/admin/users?q=a").await.problem(401), "unauthenticated");
}

#[tokio::test]
async fn dead_letters_are_for_admins() {
    let server = Server::start().await;
    let admin = admin(&server).await;
    let listed = admin.get("/api/v1/admin/events/dead-letters").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(listed.body["items"].is_array(), "{}", listed.text);
    let (user, _) = server.client().signed_up(&unique_email("dl")).await;
    assert_eq!(user.get("/api/v1/admin/events/dead-letters").await.problem(403), "forbidden");
    let missing =
        admin.post(&format!("/api/v1/admin/events/dead-letters/{}/replay", uuid::Uuid::now_v7()), json!({})).await;
    assert_eq!(missing.problem(404), "not_found");
}

#[tokio::test]
async fn a_parked_delivery_is_listed_and_replayed_by_an_admin() {
    // Mail that cannot be sent: the verification email's delivery is parked
    // (in the split shape, in the notification service's database).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let smtp = format!("smtp://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    // The admin polls the list while retries run: no per-address limit in the way.
    let mut server = Server::start_with(&[
        ("HOMETRIP_NOTIFICATION__SMTP__URL", &smtp),
        ("HOMETRIP_SERVER__RATE_LIMIT__MAX", "1000000"),
    ])
    .await;
    let email = unique_email("parked");
    assert_eq!(server.client().register(&email, "Parked").await.status, 201);
    let admin = admin(&server).await;
    let parked = |page: &serde_json::Value| -> Option<serde_json::Value> {
        let items = page["items"].as_array()?;
        items.iter().find(|i| i["event_type"] == "auth.email_verification_requested").cloned()
    };
    let page = eventually(&admin, "/api/v1/admin/events/dead-letters", |p| parked(p).is_some()).await;
    let letter = parked(&page).unwrap();
    assert_eq!(letter["subscriber"], "notification.email", "{letter}");
    assert!(letter["replayed_at"].is_null(), "{letter}");
    assert!(letter["attempts"].as_i64().unwrap() >= 1, "{letter}");
    let id = letter["id"].as_str().unwrap().to_owned();

    // Replayed while mail still fails: not delivered, still parked.
    let replay = format!("/api/v1/admin/events/dead-letters/{id}/replay");
    let again = admin.post(&replay, json!({})).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["delivered"], false, "{}", again.text);

    // Mail works again: the replay delivers the email, once.
    server.set_env("HOMETRIP_NOTIFICATION__SMTP__URL", "");
    server.restart().await;
    let admin = server.client().with_token(admin.token.as_deref().unwrap());
    let done = admin.post(&replay, json!({})).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["delivered"], true, "{}", done.text);
    assert_eq!(server.wait_email(&email, "Confirm").await.to, email);
    let page = admin.get("/api/v1/admin/events/dead-letters").await;
    let letter = parked(&page.body).unwrap();
    assert!(letter["replayed_at"].is_string(), "{letter}");
    let mails = server.emails().into_iter().filter(|m| m.to.contains(&email)).count();
    assert_eq!(mails, 1, "one email for the replayed delivery");
}
