//! State survives a restart on the same data dir (and database).

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn accounts_tokens_and_outbox_survive_a_restart() {
    // Restarted: a platform of its own.
    let mut server = Server::start_with(&[]).await;
    let api = server.client();
    let email = unique_email("durable");
    let (authed, pair) = api.signed_up(&email).await;
    server.wait_email(&email, "Confirm").await;
    let emails_before = server.emails().len();
    let me_before = authed.get("/api/v1/users/me").await.body;

    server.restart().await;
    let api = server.client();
    // The signing key persisted: the access token issued before still verifies.
    let authed = api.with_token(pair["access_token"].as_str().unwrap());
    let me_after = authed.get("/api/v1/users/me").await;
    assert_eq!(me_after.status, 200, "{}", me_after.text);
    assert_eq!(me_after.body, me_before);
    // The refresh token rotates as before.
    assert_eq!(api.post("/api/v1/auth/refresh", json!({"refresh_token": pair["refresh_token"]})).await.status, 200);
    assert_eq!(api.login(&email, PASSWORD).await.status, 200);
    // Delivered events are not delivered again: no duplicate email.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(server.emails().len(), emails_before);
    // And the verification link from before the restart still works.
    let token = server.wait_email(&email, "Confirm").await.token();
    assert_eq!(api.post("/api/v1/auth/verify-email", json!({"token": token})).await.status, 200);
}
