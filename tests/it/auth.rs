//! Every call of API.md's Auth section, through the binary.

use serde_json::json;

use crate::support::*;

fn totp(secret: &str) -> totp_rs::TOTP {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes, None, "t".into()).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn register_verify_login_and_me() {
    let server = Server::start().await;
    let api = server.client();
    let email = unique_email("ann");
    let r = api.register(&email.to_uppercase(), "  Ann Martin ").await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["user"]["email"], json!(email));
    assert_eq!(r.body["user"]["display_name"], json!("Ann Martin"));
    assert_eq!(r.body["user"]["email_verified"], json!(false));
    assert!(r.body["user"]["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());

    // The same email again (any case) is taken.
    assert_eq!(api.register(&email, "Ann").await.problem(409), "email_taken");

    let mail = server.wait_email(&email, "Confirm").await;
    assert!(mail.body.contains(&format!("{}/verify-email?token=", server.base)), "{}", mail.body);
    let token = mail.token();
    let v = api.post("/api/v1/auth/verify-email", json!({"token": token})).await;
    assert_eq!(v.status, 200, "{}", v.text);
    // Single use.
    assert_eq!(api.post("/api/v1/auth/verify-email", json!({"token": token})).await.problem(400), "bad_request");
    assert_eq!(api.post("/api/v1/auth/verify-email", json!({"token": "nope"})).await.problem(400), "bad_request");

    let l = api.login(&email, PASSWORD).await;
    assert_eq!(l.status, 200, "{}", l.text);
    // Verified already: a resend sends nothing more.
    let authed = api.with_token(l.body["access_token"].as_str().unwrap());
    let to_me = || server.emails().iter().filter(|e| e.to == email).count();
    let before = to_me();
    assert_eq!(authed.post("/api/v1/auth/verify-email/resend", json!({})).await.status, 202);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(to_me(), before);
    assert_eq!(l.body["token_type"], json!("Bearer"));
    assert_eq!(l.body["expires_in"], json!(900));
    let me = api.with_token(l.body["access_token"].as_str().unwrap()).get("/api/v1/users/me").await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["email"], json!(email));
    assert_eq!(me.body["email_verified"], json!(true));
    for field in ["id", "display_name", "bio", "locale", "currency", "avatar_url", "identity_verified", "created_at"] {
        assert!(me.body.get(field).is_some(), "missing {field}: {}", me.text);
    }
}

#[tokio::test]
async fn weak_passwords_and_bad_emails_are_refused_and_nothing_is_stored() {
    let server = Server::start().await;
    let api = server.client();
    for (email, password, field) in [
        ("weak@example.com", "password123", "password"),
        ("short@example.com", "aB3$", "password"),
        ("long@example.com", &"x9!Kq".repeat(30) as &str, "password"),
        ("not-an-email", PASSWORD, "email"),
        ("", PASSWORD, "email"),
    ] {
        let r =
            api.post("/api/v1/auth/register", json!({"email": email, "password": password, "display_name": "X"})).await;
        assert_eq!(r.problem(422), "validation_failed");
        let fields: Vec<&str> =
            r.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert!(fields.contains(&field), "{email}: {}", r.text);
        // Not stored: the same email registers fine afterwards with good input.
        if email.contains('@') {
            assert_eq!(api.register(email, "X").await.status, 201);
        }
    }
    // The password may not be the user's own email.
    let r = api
        .post(
            "/api/v1/auth/register",
            json!({"email": "jean.dupont1984@example.com", "password": "jean.dupont1984", "display_name": "Jean"}),
        )
        .await;
    assert_eq!(r.problem(422), "validation_failed");
}

#[tokio::test]
async fn bad_credentials_answer_the_same_whether_or_not_the_account_exists() {
    let server = Server::start().await;
    let api = server.client();
    let email = unique_email("bob");
    api.register(&email, "Bob").await;
    let wrong = api.login(&email, "wrong password entirely").await;
    let unknown = api.login(&unique_email("nobody"), "wrong password entirely").await;
    assert_eq!(wrong.problem(401), "invalid_credentials");
    assert_eq!(unknown.problem(401), "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let server = Server::start().await;
    let api = server.client();
    let (_, pair) = api.signed_up(&unique_email("rot")).await;
    let first = pair["refresh_token"].as_str().unwrap().to_owned();

    let r1 = api.post("/api/v1/auth/refresh", json!({"refresh_token": first})).await;
    assert_eq!(r1.status, 200, "{}", r1.text);
    let second = r1.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    let access2 = r1.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(api.with_token(&access2).get("/api/v1/users/me").await.status, 200);

    // The spent token comes back: refused, and the whole family is revoked.
    assert_eq!(api.post("/api/v1/auth/refresh", json!({"refresh_token": first})).await.problem(401), "invalid_token");
    assert_eq!(api.post("/api/v1/auth/refresh", json!({"refresh_token": second})).await.problem(401), "invalid_token");
    // Its access tokens stop working at once too.
    assert_eq!(api.with_token(&access2).get("/api/v1/users/me").await.problem(401), "invalid_token");

    assert_eq!(
        api.post("/api/v1/auth/refresh", json!({"refresh_token": "garbage"})).await.problem(401),
        "invalid_token"
    );
}

#[tokio::test]
async fn logout_ends_the_session() {
    let server = Server::start().await;
    let api = server.client();
    let (authed, pair) = api.signed_up(&unique_email("out")).await;
    let refresh = pair["refresh_token"].as_str().unwrap();
    assert_eq!(api.post("/api/v1/auth/logout", json!({"refresh_token": refresh})).await.status, 204);
    assert_eq!(api.post("/api/v1/auth/refresh", json!({"refresh_token": refresh})).await.problem(401), "invalid_token");
    assert_eq!(authed.get("/api/v1/users/me").await.problem(401), "invalid_token");
    // Logging out again is harmless.
    assert_eq!(api.post("/api/v1/auth/logout", json!({"refresh_token": refresh})).await.status, 204);
}

#[tokio::test]
async fn sessions_can_be_listed_and_others_ended() {
    let server = Server::start().await;
    let api = server.client();
    let email = unique_email("multi");
    let (phone, _) = api.signed_up(&email).await;
    let laptop = api.login(&email, PASSWORD).await;
    let laptop_api = api.with_token(laptop.body["access_token"].as_str().unwrap());
    let list = phone.get("/api/v1/auth/sessions").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2, "{}", list.text);
    let r = phone.post("/api/v1/auth/sessions/revoke-others", json!({})).await;
    assert_eq!(r.body["revoked"], json!(1), "{}", r.text);
    assert_eq!(laptop_api.get("/api/v1/users/me").await.status, 401);
    let refresh = laptop.body["refresh_token"].as_str().unwrap();
    assert_eq!(api.post("/api/v1/auth/refresh", json!({"refresh_token": refresh})).await.status, 401);
    assert_eq!(phone.get("/api/v1/users/me").await.status, 200);
}

#[tokio::test]
async fn password_reset_through_the_email_revokes_sessions() {
    let server = Server::start().await;
    let api = server.client();
    let email = unique_email("reset");
    let (authed, pair) = api.signed_up(&email).await;

    // Unknown accounts get the same 202 and no email.
    let ghost = unique_email("ghost");
    assert_eq!(api.post("/api/v1/auth/password/forgot", json!({"email": ghost})).await.status, 202);
    assert_eq!(api.post("/api/v1/auth/password/forgot", json!({"email": "not an email"})).await.status, 202);
    assert_eq!(api.post("/api/v1/auth/password/forgot", json!({"email": email})).await.status, 202);
    let mail = server.wait_email(&email, "Reset").await;
    // Counted by address: other tests may share this server's mail outbox.
    let sent_to = |to: &str| server.emails().iter().filter(|m| m.to.contains(to)).count();
    assert_eq!(server.emails().iter().filter(|m| m.to.contains(&email) && m.subject.contains("Reset")).count(), 1);
    assert_eq!(sent_to(&ghost) + sent_to("not an email"), 0);
    let token = mail.token();

    let weak = api.post("/api/v1/auth/password/reset", json!({"token": token, "new_password": "123"})).await;
    assert_eq!(weak.problem(422), "validation_failed");
    let new_password = "a whole new passphrase for spring";
    let ok = api.post("/api/v1/auth/password/reset", json!({"token": token, "new_password": new_password})).await;
    assert_eq!(ok.status, 204, "{}", ok.text);
    // Single use.
    let again = api.post("/api/v1/auth/password/reset", json!({"token": token, "new_password": new_password})).await;
    assert_eq!(again.problem(400), "bad_request");

    assert_eq!(api.post("/api/v1/auth/refresh", json!({"refresh_token": pair["refresh_token"]})).await.status, 401);
    assert_eq!(authed.get("/api/v1/users/me").await.status, 401);
    assert_eq!(api.login(&email, PASSWORD).await.status, 401);
    assert_eq!(api.login(&email, new_password).await.status, 200);
    // The owner is told, in case it was not them.
    let notice = server.wait_email(&email, "password was changed").await;
    assert!(notice.body.contains("/forgot-password"), "{}", notice.body);
}

#[tokio::test]
async fn totp_two_factor_with_replay_protection_and_recovery_codes() {
    let server = Server::start().await;
    let api = server.client();
    let email = unique_email("tfa");
    let (authed, _) = api.signed_up(&email).await;

    let setup = authed.post("/api/v1/auth/2fa/setup", json!({})).await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    assert!(setup.body["otpauth_url"].as_str().unwrap().starts_with("otpauth://totp/"));
    let gen = totp(&secret);

    assert_eq!(
        authed.post("/api/v1/auth/2fa/enable", json!({"code": "000000"})).await.problem(422),
        "validation_failed"
    );
    let code = gen.generate(now());
    let enabled = authed.post("/api/v1/auth/2fa/enable", json!({"code": code})).await;
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    let recovery: Vec<String> =
        enabled.body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(recovery.len(), 10);

    // No code: 401 with totp_required.
    let no_code = api.login(&email, PASSWORD).await;
    assert_eq!(no_code.problem(401), "totp_required");
    assert_eq!(no_code.body["totp_required"], json!(true));
    // The code that enabled 2FA was spent: its replay fails.
    let replay = api.post("/api/v1/auth/login", json!({"email": email, "password": PASSWORD, "totp_code": code})).await;
    assert_eq!(replay.problem(401), "totp_required");
    // The next step's code works once.
    let next = gen.generate(now() + 30);
    let ok = api.post("/api/v1/auth/login", json!({"email": email, "password": PASSWORD, "totp_code": next})).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let replay = api.post("/api/v1/auth/login", json!({"email": email, "password": PASSWORD, "totp_code": next})).await;
    assert_eq!(replay.body["totp_required"], json!(true));

    // A recovery code works once, typed in any case.
    let rc = recovery[0].to_uppercase();
    let ok = api.post("/api/v1/auth/login", json!({"email": email, "password": PASSWORD, "totp_code": rc})).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let again = api.post("/api/v1/auth/login", json!({"email": email, "password": PASSWORD, "totp_code": rc})).await;
    assert_eq!(again.status, 401);

    // A password reset does not turn 2FA off.
    api.post("/api/v1/auth/password/forgot", json!({"email": email})).await;
    let token = server.wait_email(&email, "Reset").await.token();
    let np = "another long passphrase for autumn";
    assert_eq!(api.post("/api/v1/auth/password/reset", json!({"token": token, "new_password": np})).await.status, 204);
    assert_eq!(api.login(&email, np).await.body["totp_required"], json!(true));

    // Disable with a recovery code.
    let fresh = api.post("/api/v1/auth/login", json!({"email": email, "password": np, "totp_code": recovery[1]})).await;
    let authed = api.with_token(fresh.body["access_token"].as_str().unwrap());
    let path = "/api/v1/auth/2fa/disable";
    assert_eq!(authed.post(path, json!({"password": np, "code": "999999"})).await.problem(401), "totp_required");
    assert_eq!(
        authed.post(path, json!({"password": "not the password", "code": recovery[2]})).await.problem(401),
        "invalid_credentials"
    );
    assert_eq!(authed.post(path, json!({"password": np, "code": recovery[2]})).await.status, 204);
    assert_eq!(api.login(&email, np).await.status, 200);
}

#[tokio::test]
async fn a_login_flood_is_throttled_with_retry_after() {
    let server = Server::start().await;
    let api = server.client();
    let email = unique_email("flood");
    api.register(&email, "F").await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(api.login(&email, "wrong wrong wrong").await);
    }
    let throttled = statuses.iter().find(|r| r.status == 429).expect("a 429 after repeated failures");
    assert_eq!(throttled.problem(429), "rate_limited");
    let retry: u64 = throttled.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 300, "retry-after {retry}");
    // Even the right password waits while the account is throttled.
    assert_eq!(api.login(&email, PASSWORD).await.status, 429);
    // Another account from the same client is not locked yet.
    let other = unique_email("other");
    api.register(&other, "O").await;
    assert_eq!(api.login(&other, PASSWORD).await.status, 200);
}

#[tokio::test]
async fn jwks_publishes_the_verification_key() {
    let server = Server::start().await;
    let api = server.client();
    let jwks = api.get("/api/v1/auth/jwks.json").await;
    assert_eq!(jwks.status, 200);
    let key = &jwks.body["keys"][0];
    assert_eq!(key["kty"], json!("OKP"));
    assert_eq!(key["crv"], json!("Ed25519"));
    assert_eq!(key["alg"], json!("EdDSA"));
    // A token verifies with the published key alone.
    let (_, pair) = api.signed_up(&unique_email("jwk")).await;
    let token = pair["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    let decoding = jsonwebtoken::DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["hometrip-api"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &decoding, &validation).unwrap().claims;
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
}

#[tokio::test]
async fn admin_create_from_the_cli_grants_the_role() {
    let server = Server::start().await;
    let api = server.client();
    let out = server.cli(
        &["admin", "create", "--email", "root@example.com", "--password-stdin"],
        "an admin passphrase to remember\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let l = api.login("root@example.com", "an admin passphrase to remember").await;
    assert_eq!(l.status, 200, "{}", l.text);
    let admin = api.with_token(l.body["access_token"].as_str().unwrap());
    let me = admin.get("/api/v1/users/me").await;
    assert_eq!(me.body["roles"], json!(["admin"]), "{}", me.text);

    // An admin grants the role to another account.
    let (user, _) = api.signed_up(&unique_email("promoted")).await;
    let id = user.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        user.post(&format!("/api/v1/admin/users/{id}/roles"), json!({"role": "admin", "granted": true}))
            .await
            .problem(403),
        "forbidden"
    );
    let granted =
        admin.post(&format!("/api/v1/admin/users/{id}/roles"), json!({"role": "admin", "granted": true})).await;
    assert_eq!(granted.body["roles"], json!(["admin"]), "{}", granted.text);
    assert_eq!(
        admin
            .post(&format!("/api/v1/admin/users/{id}/roles"), json!({"role": "god", "granted": true}))
            .await
            .problem(422),
        "validation_failed"
    );

    // A weak admin password is refused by the CLI.
    let out = server.cli(&["admin", "create", "--email", "weak@example.com", "--password-stdin"], "password\n");
    assert!(!out.status.success());
}

#[tokio::test]
async fn verification_can_be_resent_within_a_limit() {
    let server = Server::start().await;
    let api = server.client();
    let email = unique_email("resend");
    let (authed, _) = api.signed_up(&email).await;
    let first = server.wait_email(&email, "Confirm").await;
    for _ in 0..3 {
        assert_eq!(authed.post("/api/v1/auth/verify-email/resend", json!({})).await.status, 202);
    }
    let limited = authed.post("/api/v1/auth/verify-email/resend", json!({})).await;
    assert_eq!(limited.problem(429), "rate_limited");
    assert!(limited.headers.get("retry-after").is_some());
    // Four emails in all; the newest link verifies.
    for _ in 0..100 {
        if server.emails().iter().filter(|e| e.to == email).count() == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(server.emails().iter().filter(|e| e.to == email).count(), 4);
    let newest = server.wait_email(&email, "Confirm").await;
    assert_ne!(first.token(), newest.token());
    assert_eq!(api.post("/api/v1/auth/verify-email", json!({"token": newest.token()})).await.status, 200);
    assert_eq!(authed.get("/api/v1/users/me").await.body["email_verified"], json!(true));
}

#[tokio::test]
async fn signed_in_users_change_their_password_and_other_sessions_end() {
    let server = Server::start().await;
    let api = server.client();
    let email = unique_email("change");
    let (here, _) = api.signed_up(&email).await;
    let elsewhere = api.login(&email, PASSWORD).await;
    let path = "/api/v1/auth/password/change";
    let wrong =
        here.post(path, json!({"current_password": "not it at all", "new_password": "a fresh long passphrase"})).await;
    assert_eq!(wrong.problem(422), "validation_failed");
    assert_eq!(wrong.body["errors"][0]["field"], json!("current_password"));
    let weak = here.post(path, json!({"current_password": PASSWORD, "new_password": "password1"})).await;
    assert_eq!(weak.problem(422), "validation_failed");
    assert_eq!(
        api.post(path, json!({"current_password": PASSWORD, "new_password": "x"})).await.problem(401),
        "unauthenticated"
    );
    let ok = here.post(path, json!({"current_password": PASSWORD, "new_password": "a fresh long passphrase"})).await;
    assert_eq!(ok.status, 204, "{}", ok.text);
    // This session goes on; the other one ended.
    assert_eq!(here.get("/api/v1/users/me").await.status, 200);
    let other = api.with_token(elsewhere.body["access_token"].as_str().unwrap());
    assert_eq!(other.get("/api/v1/users/me").await.status, 401);
    assert_eq!(
        api.post("/api/v1/auth/refresh", json!({"refresh_token": elsewhere.body["refresh_token"]})).await.status,
        401
    );
    assert_eq!(api.login(&email, PASSWORD).await.status, 401);
    assert_eq!(api.login(&email, "a fresh long passphrase").await.status, 200);
    server.wait_email(&email, "password was changed").await;
}
