//! Issue 17, accounts: OAuth takeovers and login CSRF, turning 2FA off, role
//! removal, recovery codes, the login lockout and single-use email tokens.

use actix_web::web;
use serde_json::{json, Value};

use crate::oauth::{callback, code_query, provider_env, sign_in, start, start_provider, ProviderState};
use crate::support::*;

fn totp(secret: &str) -> totp_rs::TOTP {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes, None, "t".into()).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

async fn oauth_server() -> (Server, web::Data<ProviderState>) {
    let state = web::Data::new(ProviderState::default());
    let base = start_provider(state.clone());
    let env = provider_env(&base);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    (Server::start_with(&env_refs).await, state)
}

// ---- OAuth -------------------------------------------------------------------------

#[tokio::test]
async fn oauth_never_creates_an_account_from_an_email_the_provider_did_not_verify() {
    let (server, state) = oauth_server().await;
    let api = server.client();
    let email = unique_email("victim");
    // Google says unverified; Facebook says nothing, which is not "verified".
    let google = sign_in(&server, &state, "google", &format!("g-evil~{email}~false")).await;
    assert_eq!(google.problem(409), "conflict");
    let facebook = sign_in(&server, &state, "facebook", &format!("fb-evil~{email}~x")).await;
    assert_eq!(facebook.problem(409), "conflict");
    // No account was made: the owner signs up with the address.
    assert_eq!(api.register(&email, "Victim").await.status, 201);
    // Nor is one linked to the unverified identities later.
    let google = sign_in(&server, &state, "google", &format!("g-evil~{email}~false")).await;
    assert_eq!(google.problem(409), "conflict");
}

#[tokio::test]
async fn an_oauth_callback_signs_in_only_the_browser_that_started_it() {
    let (server, state) = oauth_server().await;
    let attacker = server.client();
    let email = unique_email("csrf");
    // The attacker starts a sign-in with their own identity and gets a callback URL...
    let started = start(&attacker, &state, "google").await;
    let query = code_query(&format!("g-att~{email}~true"), &started.query["state"]);
    // ... which a victim's browser (no cookie, or its own) follows: nobody is signed in.
    let victim = server.client();
    assert_eq!(callback(&victim, "google", &query, None).await.problem(400), "bad_request");
    let other = start(&victim, &state, "google").await;
    assert_eq!(callback(&victim, "google", &query, Some(&other.cookie)).await.problem(400), "bad_request");
    // The browser that started it signs in, and the cookie is cleared.
    let started = start(&attacker, &state, "google").await;
    let query = code_query(&format!("g-att~{email}~true"), &started.query["state"]);
    let ok = callback(&attacker, "google", &query, Some(&started.cookie)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(ok.headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
}

/// An identity linked before the fix, from an email the provider did not verify.
async fn legacy_unverified_identity(server: &Server, subject: &str, account: &str, email: &str) {
    sql(
        server,
        "auth",
        &format!(
            "INSERT INTO oauth_identities (provider, subject, account_id, email, created_at, email_verified) \
             VALUES ('google', '{subject}', '{account}', '{email}', '2026-11-30T00:00:00Z', FALSE)"
        ),
    )
    .await;
}

#[tokio::test]
async fn a_reset_or_a_verification_unlinks_identities_the_provider_did_not_verify() {
    let (server, state) = oauth_server().await;
    let api = server.client();

    // The reset: the owner takes the account back, the attacker's identity goes.
    let email = unique_email("pre");
    let id = api.register(&email, "Owner").await.body["user"]["id"].as_str().unwrap().to_owned();
    legacy_unverified_identity(&server, "g-pre", &id, &email).await;
    let attacker = sign_in(&server, &state, "google", &format!("g-pre~{email}~false")).await;
    assert_eq!(attacker.status, 200, "the legacy link signs in: {}", attacker.text);
    api.post("/api/v1/auth/password/forgot", json!({"email": email})).await;
    let token = server.wait_email(&email, "Reset").await.token();
    let reset =
        api.post("/api/v1/auth/password/reset", json!({"token": token, "new_password": "a new passphrase of mine"}));
    assert_eq!(reset.await.status, 204);
    let attacker = sign_in(&server, &state, "google", &format!("g-pre~{email}~false")).await;
    assert_eq!(attacker.problem(409), "conflict");

    // The verification: the same.
    let email = unique_email("pre2");
    let id = api.register(&email, "Owner").await.body["user"]["id"].as_str().unwrap().to_owned();
    legacy_unverified_identity(&server, "g-pre2", &id, &email).await;
    let signed_in = sign_in(&server, &state, "google", &format!("g-pre2~{email}~false")).await;
    assert_eq!(signed_in.status, 200, "the legacy link signs in: {}", signed_in.text);
    let refresh = signed_in.body["refresh_token"].as_str().unwrap().to_owned();
    let token = server.wait_email(&email, "Confirm").await.token();
    assert_eq!(api.post("/api/v1/auth/verify-email", json!({"token": token})).await.status, 200);
    let attacker = sign_in(&server, &state, "google", &format!("g-pre2~{email}~false")).await;
    assert_eq!(attacker.problem(409), "conflict");
    // The session opened through the unlinked identity ended with it.
    let kept = api.post("/api/v1/auth/refresh", json!({"refresh_token": refresh})).await;
    assert_eq!(kept.problem(401), "invalid_token");
    // A verified identity is linked again by its verified email.
    let owner = sign_in(&server, &state, "google", &format!("g-own~{email}~true")).await;
    assert_eq!(owner.status, 200, "{}", owner.text);
}

// ---- two-factor and roles ------------------------------------------------------------

async fn with_two_factor(api: &Api) -> (Api, String, totp_rs::TOTP, Vec<String>) {
    let email = unique_email("tfa");
    let (authed, _) = api.signed_up(&email).await;
    let setup = authed.post("/api/v1/auth/2fa/setup", json!({})).await;
    let gen = totp(setup.body["secret"].as_str().unwrap());
    let enabled = authed.post("/api/v1/auth/2fa/enable", json!({"code": gen.generate(now())})).await;
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    let codes = enabled.body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned());
    (authed, email, gen, codes.collect())
}

#[tokio::test]
async fn turning_two_factor_off_takes_the_password_and_a_code_ends_other_sessions_and_tells_the_owner() {
    let server = Server::start().await;
    let api = server.client();
    let (here, email, gen, recovery) = with_two_factor(&api).await;
    let path = "/api/v1/auth/2fa/disable";
    let elsewhere =
        api.post("/api/v1/auth/login", json!({"email": email, "password": PASSWORD, "totp_code": recovery[0]})).await;
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.text);

    // A stolen access token alone is not enough: the code alone, or the password alone, fail.
    assert_eq!(here.post(path, json!({"code": recovery[1]})).await.problem(422), "validation_failed");
    assert_eq!(
        here.post(path, json!({"password": "wrong", "code": recovery[1]})).await.problem(401),
        "invalid_credentials"
    );
    assert_eq!(here.post(path, json!({"password": PASSWORD, "code": "123456"})).await.problem(401), "totp_required");
    // Rate-limited: five attempts in all, then 429 even with the right ones.
    for _ in 0..3 {
        assert_eq!(here.post(path, json!({"password": "wrong", "code": "123456"})).await.status, 401);
    }
    let limited = here.post(path, json!({"password": PASSWORD, "code": gen.generate(now() + 30)})).await;
    assert_eq!(limited.problem(429), "rate_limited");
    assert!(limited.headers.get("retry-after").is_some());
    // 2FA is still on.
    assert_eq!(api.login(&email, PASSWORD).await.problem(401), "totp_required");

    // On another account, the right password and code: 204, other sessions end, the owner is told.
    let (here, email, gen, recovery) = with_two_factor(&api).await;
    let elsewhere =
        api.post("/api/v1/auth/login", json!({"email": email, "password": PASSWORD, "totp_code": recovery[0]})).await;
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.text);
    // The next step's code: the one that turned 2FA on was spent.
    assert_eq!(here.post(path, json!({"password": PASSWORD, "code": gen.generate(now() + 30)})).await.status, 204);
    assert_eq!(here.get("/api/v1/users/me").await.status, 200);
    let other = api.with_token(elsewhere.body["access_token"].as_str().unwrap());
    assert_eq!(other.get("/api/v1/users/me").await.problem(401), "invalid_token");
    let refresh = api.post("/api/v1/auth/refresh", json!({"refresh_token": elsewhere.body["refresh_token"]})).await;
    assert_eq!(refresh.problem(401), "invalid_token");
    assert_eq!(api.login(&email, PASSWORD).await.status, 200);
    let notice = server.wait_email(&email, "Two-factor").await;
    assert!(notice.body.contains("/forgot-password"), "{}", notice.body);
}

#[tokio::test]
async fn removing_a_role_ends_the_users_sessions_at_once() {
    let server = Server::start().await;
    let api = server.client();
    let out = server
        .cli(&["admin", "create", "--email", "boss@example.com", "--password-stdin"], "the boss passphrase here\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let boss = api.login("boss@example.com", "the boss passphrase here").await;
    let boss = api.with_token(boss.body["access_token"].as_str().unwrap());
    let email = unique_email("demoted");
    let (user, _) = api.signed_up(&email).await;
    let id = user.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    let roles = format!("/api/v1/admin/users/{id}/roles");
    assert_eq!(boss.post(&roles, json!({"role": "admin", "granted": true})).await.status, 200);
    // A session opened as admin: its token carries the role.
    let admin = api.login(&email, PASSWORD).await;
    let as_admin = api.with_token(admin.body["access_token"].as_str().unwrap());
    assert_eq!(as_admin.post(&roles, json!({"role": "admin", "granted": true})).await.status, 200);

    let removed = boss.post(&roles, json!({"role": "admin", "granted": false})).await;
    assert_eq!(removed.body["roles"], json!([]), "{}", removed.text);
    // Its access tokens stop at once and its sessions cannot be refreshed.
    assert_eq!(as_admin.post(&roles, json!({"role": "admin", "granted": true})).await.problem(401), "invalid_token");
    assert_eq!(user.get("/api/v1/users/me").await.problem(401), "invalid_token");
    let refresh = api.post("/api/v1/auth/refresh", json!({"refresh_token": admin.body["refresh_token"]})).await;
    assert_eq!(refresh.problem(401), "invalid_token");
    // Signing in again gives a session without the role.
    let again = api.login(&email, PASSWORD).await;
    let again = api.with_token(again.body["access_token"].as_str().unwrap());
    assert_eq!(again.post(&roles, json!({"role": "admin", "granted": true})).await.problem(403), "forbidden");
}

#[tokio::test]
async fn recovery_codes_are_long_and_stored_with_a_salted_slow_hash() {
    let server = Server::start().await;
    let api = server.client();
    let (_, email, _, recovery) = with_two_factor(&api).await;
    assert_eq!(recovery.len(), 10);
    for code in &recovery {
        let symbols = code.chars().filter(char::is_ascii_alphanumeric).count();
        assert!(symbols >= 20, "a recovery code of {symbols} symbols: {code}");
    }
    let hashes = sql(&server, "auth", "SELECT code_hash AS v FROM recovery_codes").await;
    assert_eq!(hashes.len(), 10);
    assert!(hashes.iter().all(|h| h.starts_with("$argon2id$")), "{hashes:?}");
    // Salted: no two hashes alike, and the hash of a code is not found by hashing it again.
    let mut unique = hashes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10);
    // Each works once, typed loosely.
    let loose = recovery[3].to_uppercase().replace('-', " ");
    let login =
        |code: String| api.post("/api/v1/auth/login", json!({"email": email, "password": PASSWORD, "totp_code": code}));
    assert_eq!(login(loose.clone()).await.status, 200);
    assert_eq!(login(loose).await.problem(401), "totp_required");
}

// ---- login lockout -------------------------------------------------------------------

async fn login_from(api: &Api, ip: &str, email: &str, password: &str) -> Reply {
    let rb = api
        .http
        .post(format!("{}/api/v1/auth/login", api.base))
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}));
    api.send(rb).await
}

#[tokio::test]
async fn guesses_from_elsewhere_do_not_lock_the_owner_out_but_a_per_account_ceiling_holds() {
    let server = Server::start_with(&[
        ("HOMETRIP_SERVER__TRUSTED_PROXIES", "127.0.0.1/32"),
        ("HOMETRIP_AUTH__LOGIN_LIMITS__ACCOUNT_FAILURES", "12"),
    ])
    .await;
    let api = server.client();
    let email = unique_email("owner");
    api.register(&email, "Owner").await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(login_from(&api, "203.0.113.7", &email, "a wrong guess here").await.status);
    }
    assert!(statuses.contains(&401) && statuses.ends_with(&[429]), "{statuses:?}");
    // The guesser's address stays locked out of this account, even with the password ...
    assert_eq!(login_from(&api, "203.0.113.7", &email, PASSWORD).await.problem(429), "rate_limited");
    // ... but the owner, from their own network, signs in.
    let owner = login_from(&api, "198.51.100.20", &email, PASSWORD).await;
    assert_eq!(owner.status, 200, "{}", owner.text);

    // Guesses spread over many addresses meet the per-account ceiling (12 here).
    let mut statuses = Vec::new();
    for i in 0..4 {
        for _ in 0..4 {
            statuses.push(login_from(&api, &format!("192.0.2.{i}"), &email, "a wrong guess here").await.status);
        }
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(login_from(&api, "198.51.100.20", &email, PASSWORD).await.problem(429), "rate_limited");
}

// ---- single-use email tokens ---------------------------------------------------------

#[tokio::test]
async fn email_tokens_are_sealed_in_the_outbox_and_dead_letters() {
    // No relay: the event stays in the outbox, as it sits there until delivered.
    let mut server = Server::start_with(&[("HOMETRIP_EVENTS__RELAY", "false")]).await;
    let api = server.client();
    let email = unique_email("sealed");
    assert_eq!(api.register(&email, "Sealed").await.status, 201);
    let rows = sql(
        &server,
        "auth",
        "SELECT data AS v FROM outbox_events WHERE event_type = 'auth.email_verification_requested'",
    )
    .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let data: Value = serde_json::from_str(&rows[0]).unwrap();
    assert!(data.get("token").is_none(), "{data}");
    assert!(data["sealed_token"].as_str().is_some_and(|s| s.len() > 40), "{data}");

    // Delivered, the email holds the token the outbox row did not.
    server.set_env("HOMETRIP_EVENTS__RELAY", "true");
    server.restart().await;
    let token = server.wait_email(&email, "Confirm").await.token();
    assert!(token.len() >= 32);
    assert!(!rows[0].contains(&token));
    assert_eq!(server.client().post("/api/v1/auth/verify-email", json!({"token": token})).await.status, 200);

    // A delivery that keeps failing parks the event: the dead letter holds ciphertext only.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("smtp://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let server = Server::start_with(&[("HOMETRIP_NOTIFICATION__SMTP__URL", &url)]).await;
    let api = server.client();
    api.register(&unique_email("parked"), "Parked").await;
    let mut parked = Vec::new();
    for _ in 0..200 {
        parked = sql(
            &server,
            "notification",
            "SELECT envelope AS v FROM dead_letters WHERE event_type = 'auth.email_verification_requested'",
        )
        .await;
        if !parked.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(parked.len(), 1, "the failing email is parked");
    let envelope: Value = serde_json::from_str(&parked[0]).unwrap();
    let data = if envelope["data"].is_string() {
        serde_json::from_str(envelope["data"].as_str().unwrap()).unwrap()
    } else {
        envelope["data"].clone()
    };
    assert!(data.get("token").is_none() && data["sealed_token"].is_string(), "{envelope}");
}

#[tokio::test]
async fn emails_on_disk_are_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start().await;
    let email = unique_email("mode");
    server.client().register(&email, "Mode").await;
    server.wait_email(&email, "Confirm").await;
    let dir = server.data_dir.join("outbox/mail");
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", entry.path().display());
    }
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o077, 0);
}

/// The reset tokens emailed to `email`, oldest first, once there are `n`.
async fn reset_tokens(server: &Server, email: &str, n: usize) -> Vec<String> {
    for _ in 0..100 {
        let tokens: Vec<String> = server
            .emails()
            .iter()
            .filter(|e| e.to == email && e.subject.contains("Reset"))
            .map(|e| e.token())
            .collect();
        if tokens.len() >= n {
            return tokens;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} reset emails to {email}");
}

#[tokio::test]
async fn a_password_reset_or_change_spends_every_other_reset_token() {
    let server = Server::start().await;
    let api = server.client();
    let email = unique_email("spent");
    let (authed, _) = api.signed_up(&email).await;
    for _ in 0..2 {
        assert_eq!(api.post("/api/v1/auth/password/forgot", json!({"email": email})).await.status, 202);
    }
    let tokens = reset_tokens(&server, &email, 2).await;
    let reset = |token: &str, password: &str| {
        api.post("/api/v1/auth/password/reset", json!({"token": token, "new_password": password}))
    };
    assert_eq!(reset(&tokens[1], "the first new passphrase").await.status, 204);
    assert_eq!(reset(&tokens[0], "the second new passphrase").await.problem(400), "bad_request");
    assert_eq!(api.login(&email, "the first new passphrase").await.status, 200);

    // A change from a signed-in session spends them too.
    assert_eq!(authed.get("/api/v1/users/me").await.status, 401, "the reset ended the sessions");
    let pair = api.login(&email, "the first new passphrase").await;
    let authed = api.with_token(pair.body["access_token"].as_str().unwrap());
    api.post("/api/v1/auth/password/forgot", json!({"email": email})).await;
    let tokens = reset_tokens(&server, &email, 3).await;
    let change = authed
        .post(
            "/api/v1/auth/password/change",
            json!({"current_password": "the first new passphrase", "new_password": "a changed passphrase now"}),
        )
        .await;
    assert_eq!(change.status, 204, "{}", change.text);
    assert_eq!(reset(&tokens[2], "the third new passphrase").await.problem(400), "bad_request");
    assert_eq!(api.login(&email, "a changed passphrase now").await.status, 200);
}
