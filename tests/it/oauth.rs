//! OAuth sign-in against a local server that answers the token and userinfo
//! calls in Google's and Facebook's documented formats, checking PKCE.

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::*;

#[derive(Default)]
pub(crate) struct ProviderState {
    /// code_challenge by state, registered by the test from the start redirect.
    challenges: Mutex<HashMap<String, String>>,
    exchanges: Mutex<u32>,
}

/// The authorization code the test "receives" encodes the identity:
/// `<subject>~<email>~<verified>~<state>`; the access token is the same string.
async fn token(state: web::Data<ProviderState>, form: web::Form<HashMap<String, String>>) -> HttpResponse {
    let f = form.into_inner();
    let code = f.get("code").cloned().unwrap_or_default();
    if f.get("grant_type").map(String::as_str) != Some("authorization_code")
        || f.get("client_id").map(String::as_str) != Some("local-client")
        || f.get("client_secret").map(String::as_str) != Some("local-secret")
        || !f.get("redirect_uri").is_some_and(|u| u.contains("/api/v1/auth/oauth/") || u.contains("/sign-in/oauth/"))
    {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_client"}));
    }
    let parts: Vec<&str> = code.split('~').collect();
    let verifier = f.get("code_verifier").cloned().unwrap_or_default();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let expected = parts.get(3).and_then(|s| state.challenges.lock().unwrap().get(*s).cloned());
    if parts.len() != 4 || expected.as_deref() != Some(challenge.as_str()) {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_grant"}));
    }
    *state.exchanges.lock().unwrap() += 1;
    HttpResponse::Ok().json(
        json!({"access_token": code, "token_type": "Bearer", "expires_in": 3599, "scope": "openid email profile"}),
    )
}

fn identity(req: &HttpRequest) -> Option<Vec<String>> {
    let auth = req.headers().get("authorization")?.to_str().ok()?;
    let token = auth.strip_prefix("Bearer ")?;
    Some(token.split('~').map(str::to_owned).collect())
}

async fn google_userinfo(req: HttpRequest) -> HttpResponse {
    match identity(&req) {
        Some(p) => HttpResponse::Ok().json(json!({"sub": p[0], "email": p[1], "email_verified": p[2] == "true", "name": "Gina Google", "picture": "x"})),
        None => HttpResponse::Unauthorized().finish(),
    }
}

async fn facebook_me(req: HttpRequest) -> HttpResponse {
    match identity(&req) {
        Some(p) => HttpResponse::Ok().json(json!({"id": p[0], "email": p[1], "name": "Fabien Facebook"})),
        None => HttpResponse::Unauthorized().finish(),
    }
}

pub(crate) fn start_provider(state: web::Data<ProviderState>) -> String {
    local_server(move |cfg| {
        cfg.app_data(state.clone())
            .route("/google/token", web::post().to(token))
            .route("/google/userinfo", web::get().to(google_userinfo))
            .route("/facebook/token", web::post().to(token))
            .route("/facebook/me", web::get().to(facebook_me));
    })
}

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

/// A browser's start of a sign-in: the provider's query and the binding cookie.
pub(crate) struct Started {
    pub query: HashMap<String, String>,
    pub cookie: String,
}

pub(crate) async fn start(api: &Api, state: &web::Data<ProviderState>, provider: &str) -> Started {
    let start = api.get(&format!("/api/v1/auth/oauth/{provider}/start")).await;
    assert_eq!(start.status, 302, "{}", start.text);
    let set_cookie = start.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let query = query(start.headers["location"].to_str().unwrap());
    state.challenges.lock().unwrap().insert(query["state"].clone(), query["code_challenge"].clone());
    Started { query, cookie }
}

/// The provider's redirect back, from a browser holding `cookie` (or none).
pub(crate) async fn callback(api: &Api, provider: &str, query: &str, cookie: Option<&str>) -> Reply {
    let mut rb = api.http.get(format!("{}/api/v1/auth/oauth/{provider}/callback?{query}", api.base));
    if let Some(cookie) = cookie {
        rb = rb.header("cookie", cookie);
    }
    api.send(rb).await
}

pub(crate) fn code_query(who: &str, state: &str) -> String {
    format!("code={}&state={state}", urlencode(&format!("{who}~{state}")))
}

pub(crate) async fn sign_in(server: &Server, state: &web::Data<ProviderState>, provider: &str, who: &str) -> Reply {
    let api = server.client();
    let start = api.get(&format!("/api/v1/auth/oauth/{provider}/start")).await;
    assert_eq!(start.status, 302, "{}", start.text);
    let location = start.headers["location"].to_str().unwrap().to_owned();
    let q = query(&location);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["client_id"], "local-client");
    assert_eq!(q["response_type"], "code");
    assert!(q["redirect_uri"].ends_with(&format!("/api/v1/auth/oauth/{provider}/callback")));
    let st = q["state"].clone();
    state.challenges.lock().unwrap().insert(st.clone(), q["code_challenge"].clone());
    // The same browser comes back: it carries the binding cookie set at the start.
    let cookie = start.headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    callback(&api, provider, &code_query(who, &st), Some(&cookie)).await
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(crate) fn provider_env(base: &str) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for (p, userinfo) in [("GOOGLE", "google/userinfo"), ("FACEBOOK", "facebook/me")] {
        let lower = p.to_lowercase();
        env.push((format!("HOMETRIP_AUTH__OAUTH__{p}__CLIENT_ID"), "local-client".to_owned()));
        env.push((format!("HOMETRIP_AUTH__OAUTH__{p}__CLIENT_SECRET"), "local-secret".to_owned()));
        env.push((format!("HOMETRIP_AUTH__OAUTH__{p}__AUTH_URL"), format!("{base}/{lower}/authorize")));
        env.push((format!("HOMETRIP_AUTH__OAUTH__{p}__TOKEN_URL"), format!("{base}/{lower}/token")));
        env.push((format!("HOMETRIP_AUTH__OAUTH__{p}__USERINFO_URL"), format!("{base}/{userinfo}")));
    }
    env
}

#[tokio::test]
async fn google_and_facebook_sign_in_link_only_by_verified_email() {
    let state = web::Data::new(ProviderState::default());
    let base = start_provider(state.clone());
    let env = provider_env(&base);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start_with(&env_refs).await;
    let api = server.client();

    // A new Google identity creates a verified account.
    let g_email = unique_email("gina");
    let r = sign_in(&server, &state, "google", &format!("g-1~{g_email}~true")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let me = api.with_token(r.body["access_token"].as_str().unwrap()).get("/api/v1/users/me").await;
    assert_eq!(me.body["email"], json!(g_email));
    assert_eq!(me.body["email_verified"], json!(true));
    let gina_id = me.body["id"].clone();
    // The same identity signs in to the same account.
    let again = sign_in(&server, &state, "google", &format!("g-1~{g_email}~true")).await;
    let me2 = api.with_token(again.body["access_token"].as_str().unwrap()).get("/api/v1/users/me").await;
    assert_eq!(me2.body["id"], gina_id);

    // A password account with a verified email is linked by a verified provider email.
    let email = unique_email("paul");
    api.register(&email, "Paul").await;
    let token = server.wait_email(&email, "Confirm").await.token();
    api.post("/api/v1/auth/verify-email", json!({"token": token})).await;
    let paul_id = api.login(&email, PASSWORD).await;
    let paul_me = api.with_token(paul_id.body["access_token"].as_str().unwrap()).get("/api/v1/users/me").await;
    // ... but never by an unverified one, and Facebook does not say its emails are verified.
    let unverified = sign_in(&server, &state, "google", &format!("g-2~{email}~false")).await;
    assert_eq!(unverified.problem(409), "conflict");
    let facebook = sign_in(&server, &state, "facebook", &format!("fb-7~{email}~x")).await;
    assert_eq!(facebook.problem(409), "conflict");
    let linked = sign_in(&server, &state, "google", &format!("g-3~{email}~true")).await;
    assert_eq!(linked.status, 200, "{}", linked.text);
    let linked_me = api.with_token(linked.body["access_token"].as_str().unwrap()).get("/api/v1/users/me").await;
    assert_eq!(linked_me.body["id"], paul_me.body["id"]);

    // State is single-use and must exist.
    let started = start(&api, &state, "google").await;
    let (st, cookie) = (started.query["state"].clone(), Some(started.cookie.as_str()));
    assert_eq!(callback(&api, "google", "code=x&state=forged", cookie).await.problem(400), "bad_request");
    // A code the provider refuses (bad PKCE) is a 502 and spends the state.
    state.challenges.lock().unwrap().insert(st.clone(), "not the challenge".to_owned());
    assert_eq!(
        callback(&api, "google", &format!("code=a~b~true~{st}&state={st}"), cookie).await.problem(502),
        "bad_gateway"
    );
    assert_eq!(callback(&api, "google", &format!("code=a&state={st}"), cookie).await.problem(400), "bad_request");
    assert_eq!(api.get("/api/v1/auth/oauth/google/callback").await.problem(400), "invalid_query");
    assert_eq!(api.get("/api/v1/auth/oauth/myspace/start").await.problem(404), "not_found");
    assert!(*state.exchanges.lock().unwrap() >= 3);
}

#[tokio::test]
async fn unconfigured_providers_are_not_found() {
    let server = Server::start().await;
    assert_eq!(server.client().get("/api/v1/auth/oauth/google/start").await.problem(404), "not_found");
}

#[tokio::test]
async fn the_sign_in_page_signs_in_with_google_into_cookies_with_the_second_factor_when_on() {
    use crate::web::{csrf, html, Browser};
    let state = web::Data::new(ProviderState::default());
    let base = start_provider(state.clone());
    let env = provider_env(&base);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start_with(&env_refs).await;

    // The configured providers' buttons, keeping where to return.
    let mut browser = Browser::new(&server);
    let page = browser.get("/sign-in?next=%2Ftrips").await;
    assert!(html(&page).contains("id=\"provider-google\" href=\"/sign-in/oauth/google?next=/trips\""), "{}", page.text);
    assert!(page.text.contains("Continue with Facebook"), "{}", page.text);

    // To Google, which sends the browser back to the page's own callback.
    let email = unique_email("gwen");
    let who = format!("g-web-1~{email}~true");
    let st = web_start(&mut browser, &state, "google").await;
    let back = browser.get(&format!("/sign-in/oauth/google/callback?{}", code_query(&who, &st))).await;
    assert_eq!(back.status, 303, "{}", back.text);
    assert_eq!(back.headers["location"], "/trips");
    let trips = browser.get("/trips").await;
    assert_eq!(trips.status, 200, "signed in by cookie: {}", trips.text);
    assert!(trips.text.contains("Gina Google"), "{}", trips.text);

    // A state from another browser, a cancelled sign-in, an unverified email: said on the sign-in page.
    let st = web_start(&mut browser, &state, "google").await;
    let mut stranger = Browser::new(&server);
    let stolen = stranger.get(&format!("/sign-in/oauth/google/callback?{}", code_query(&who, &st))).await;
    assert_eq!(stolen.status, 400, "{}", stolen.text);
    assert!(html(&stolen).contains("started in another browser"), "{}", stolen.text);
    assert_eq!(stranger.get("/trips").await.status, 303, "not signed in");
    let cancelled = stranger.get("/sign-in/oauth/google/callback?error=access_denied").await;
    assert!(cancelled.status == 400 && cancelled.text.contains("cancelled"), "{}", cancelled.text);
    let st = web_start(&mut stranger, &state, "google").await;
    let unverified = format!("g-web-2~{}~false", unique_email("unverified"));
    let refused = stranger.get(&format!("/sign-in/oauth/google/callback?{}", code_query(&unverified, &st))).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.text.contains("did not let this sign-in through"), "{}", refused.text);
    assert_eq!(stranger.get("/sign-in/oauth/myspace").await.status, 404);

    // With two-step sign-in on, the code comes first.
    let api_sign_in = sign_in(&server, &state, "google", &who).await;
    let authed = server.client().with_token(api_sign_in.body["access_token"].as_str().unwrap());
    let setup = authed.post("/api/v1/auth/2fa/setup", json!({})).await;
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let bytes = totp_rs::Secret::Encoded(secret).to_bytes().unwrap();
    let totp = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes, None, "t".into()).unwrap();
    let enabled = authed.post("/api/v1/auth/2fa/enable", json!({"code": totp.generate_current().unwrap()})).await;
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    let recovery = enabled.body["recovery_codes"][0].as_str().unwrap().to_owned();
    let mut second = Browser::new(&server);
    let st = web_start(&mut second, &state, "google").await;
    let asked = second.get(&format!("/sign-in/oauth/google/callback?{}", code_query(&who, &st))).await;
    assert_eq!(asked.status, 200, "{}", asked.text);
    assert!(html(&asked).contains("name=\"totp_code\""), "{}", asked.text);
    let ticket = crate::web::field(&asked, "ticket");
    let token = csrf(&asked);
    let wrong = second
        .post(
            "/sign-in/second-factor",
            &[("csrf", &token), ("ticket", &ticket), ("totp_code", "000000"), ("next", "/trips")],
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.text);
    let done = second
        .post(
            "/sign-in/second-factor",
            &[("csrf", &token), ("ticket", &ticket), ("totp_code", &recovery), ("next", "/trips")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.text);
    let trips = second.get("/trips").await;
    assert_eq!(trips.status, 200, "{}", trips.text);
    let token = csrf(&trips);
    let reused = second
        .post(
            "/sign-in/second-factor",
            &[("csrf", &token), ("ticket", &ticket), ("totp_code", &recovery), ("next", "/")],
        )
        .await;
    assert_eq!(reused.status, 401, "a ticket is spent once: {}", reused.text);
}

/// The sign-in button followed in `browser`: the provider's `state`, its
/// challenge registered with the provider.
async fn web_start(browser: &mut crate::web::Browser, state: &web::Data<ProviderState>, provider: &str) -> String {
    let start = browser.get(&format!("/sign-in/oauth/{provider}?next=%2Ftrips")).await;
    assert_eq!(start.status, 303, "{}", start.text);
    let q = query(start.headers["location"].to_str().unwrap());
    assert!(q["redirect_uri"].ends_with(&format!("/sign-in/oauth/{provider}/callback")), "{q:?}");
    state.challenges.lock().unwrap().insert(q["state"].clone(), q["code_challenge"].clone());
    q["state"].clone()
}
