//! Issue 18, API keys: scoped, hashed, rotatable, revocable at once in every
//! process, limited per key, audited; checked at the edge.

use std::time::Duration;

use serde_json::{json, Value};

use crate::shape::is_split;
use crate::support::*;

/// A host with a listing of their own; the host's client and the listing's id.
async fn host_with_listing(server: &Server) -> (Api, Value, String) {
    let (host, _) = server.client().signed_up(&unique_email("keys-host")).await;
    let me = host.get("/api/v1/users/me").await.body;
    let listing = host.post("/api/v1/listings", house("Le Mas des clés")).await;
    assert_eq!(listing.status, 201, "{}", listing.text);
    (host, me, listing.body["id"].as_str().unwrap().to_owned())
}

/// Creates a key with `scopes`; the answer (with `key`).
async fn new_key(owner: &Api, name: &str, scopes: &[&str]) -> Value {
    let r = owner.post("/api/v1/api-keys", json!({"name": name, "scopes": scopes})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

fn key_of(created: &Value) -> String {
    created["key"].as_str().unwrap().to_owned()
}

fn calendar(listing: &str) -> String {
    format!("/api/v1/listings/{listing}/calendar?from={}&to={}", date_from_today(30), date_from_today(33))
}

fn block(listing: &str, available: bool) -> (String, Value) {
    let body = json!({"ranges": [{"from": date_from_today(30), "to": date_from_today(32), "available": available}]});
    (format!("/api/v1/listings/{listing}/calendar"), body)
}

async fn put(api: &Api, path: &str, body: Value) -> Reply {
    api.send(api.http.put(format!("{}{path}", api.base)).json(&body)).await
}

#[tokio::test]
async fn a_key_acts_within_its_scopes_only() {
    let server = Server::start().await;
    let (host, me, listing) = host_with_listing(&server).await;
    let reader = new_key(&host, "Channel manager (read)", &["calendar:read"]).await;
    let key = key_of(&reader);
    assert!(key.starts_with("htk_") && key.len() >= 4 + 43, "{key}");
    assert!(key.starts_with(reader["prefix"].as_str().unwrap()), "{reader}");
    assert_eq!(reader["scopes"], json!(["calendar:read"]));
    assert!(reader["created_at"].is_string() && reader["expires_at"].is_null(), "{reader}");
    let with_reader = server.client().with_token(&key);

    // calendar:read reads the calendar, and is refused a write with 403 insufficient_scope.
    let read = with_reader.get(&calendar(&listing)).await;
    assert_eq!(read.status, 200, "{}", read.text);
    let (path, body) = block(&listing, false);
    let refused = put(&with_reader, &path, body.clone()).await;
    assert_eq!(refused.problem(403), "insufficient_scope");
    assert_eq!(refused.body["required_scope"], "calendar:write", "{}", refused.text);
    assert_eq!(
        crate::edge::challenge(&refused),
        "Bearer realm=\"HomeTrip\", error=\"insufficient_scope\", scope=\"calendar:write\""
    );

    // calendar:write blocks nights.
    let writer = key_of(&new_key(&host, "Channel manager (write)", &["calendar:write", "calendar:read"]).await);
    let with_writer = server.client().with_token(&writer);
    let blocked = put(&with_writer, &path, body).await;
    assert_eq!(blocked.status, 200, "{}", blocked.text);
    let days = with_reader.get(&calendar(&listing)).await.body;
    assert_eq!(days["days"][0]["available"], json!(false), "{days}");
    assert_eq!(days["days"][2]["available"], json!(true), "{days}");

    // What no scope grants refuses every key: keys, password, 2FA, sessions, admin, the profile.
    for (method, path) in [
        ("POST", "/api/v1/api-keys"),
        ("GET", "/api/v1/api-keys"),
        ("POST", "/api/v1/auth/password/change"),
        ("POST", "/api/v1/auth/2fa/setup"),
        ("GET", "/api/v1/auth/sessions"),
        ("GET", "/api/v1/admin/audit"),
        ("GET", "/api/v1/users/me"),
    ] {
        let rb = with_writer.http.request(method.parse().unwrap(), server.url(path)).json(&json!({}));
        assert_eq!(with_writer.send(rb).await.problem(403), "insufficient_scope", "{method} {path}");
    }
    let made = with_writer.post("/api/v1/api-keys", json!({"name": "more", "scopes": ["calendar:write"]})).await;
    assert_eq!(made.problem(403), "insufficient_scope");
    assert_eq!(host.get("/api/v1/api-keys").await.body["items"].as_array().unwrap().len(), 2);

    // Other scopes reach their endpoints: bookings and messages, listings read but not write.
    let other = key_of(&new_key(&host, "PMS", &["bookings:read", "messages:read", "listings:read"]).await);
    let with_other = server.client().with_token(&other);
    assert_eq!(with_other.get("/api/v1/bookings?role=host").await.status, 200);
    assert_eq!(with_other.get("/api/v1/conversations").await.status, 200);
    assert_eq!(with_other.get(&format!("/api/v1/listings/{listing}")).await.status, 200);
    let patch = with_other.patch(&format!("/api/v1/listings/{listing}"), json!({"title": "Renamed"})).await;
    assert_eq!(patch.problem(403), "insufficient_scope");

    // Unknown and malformed keys are 401.
    let unknown = server.client().with_token(&format!("htk_{}_{}", "abcdefghij", "A".repeat(43)));
    assert_eq!(unknown.get(&calendar(&listing)).await.problem(401), "invalid_token");
    let forged = server.client().with_token(&format!("{}x", &key[..key.len() - 1]));
    assert_eq!(forged.get(&calendar(&listing)).await.problem(401), "invalid_token");
    assert_eq!(server.client().with_token("htk_").get(&calendar(&listing)).await.problem(401), "invalid_token");

    // The owner's list: no key, the prefix, and when each was last used (written in batches).
    let listed = host.get("/api/v1/api-keys").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(!listed.text.contains(&key) && !listed.text.contains("\"key\""), "{}", listed.text);
    let mut used = Value::Null;
    for _ in 0..patience(300) {
        used = host.get("/api/v1/api-keys").await.body;
        let reader_row = used["items"].as_array().unwrap().iter().find(|k| k["id"] == reader["id"]).cloned();
        if reader_row.is_some_and(|k| k["last_used_at"].is_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reader_row = used["items"].as_array().unwrap().iter().find(|k| k["id"] == reader["id"]).unwrap();
    assert!(reader_row["last_used_at"].is_string(), "last_used_at never written: {used}");
    assert_eq!(reader_row["prefix"], reader["prefix"]);
    assert_eq!(reader_row["owner_id"], me["id"]);

    // The database holds no key in plain text: not the key, not its secret part.
    let secret = key.rsplit('_').next().unwrap().to_owned();
    let rows = sql(
        &server,
        "auth",
        "SELECT id || ' ' || name || ' ' || public_part || ' ' || key_hash || ' ' || scopes AS v FROM api_keys",
    )
    .await;
    assert!(rows.len() >= 3, "{rows:?}");
    assert!(rows.iter().all(|r| !r.contains(&secret) && !r.contains(&key)), "{rows:?}");

    // Each creation is in the audit log, as the owner's.
    let admin = admin(&server).await;
    let path = format!("/api/v1/admin/audit?actor={}", me["id"].as_str().unwrap());
    let audit = eventually(&admin, &path, |b| b["items"].as_array().is_some_and(|i| i.len() >= 3)).await;
    assert!(audit["items"].as_array().unwrap().iter().all(|e| e["action"] == "POST /api/v1/api-keys"), "{audit}");
    assert!(audit.to_string().contains(reader["id"].as_str().unwrap()), "{audit}");
    assert!(!audit.to_string().contains(&secret), "{audit}");

    // Bad requests are clear 422s.
    for bad in [
        json!({"name": "", "scopes": ["calendar:read"]}),
        json!({"name": "x", "scopes": []}),
        json!({"name": "x", "scopes": ["admin"]}),
        json!({"name": "x", "scopes": ["calendar:read"], "expires_at": "2001-01-01T00:00:00Z"}),
    ] {
        assert_eq!(host.post("/api/v1/api-keys", bad.clone()).await.problem(422), "validation_failed", "{bad}");
    }
    let no_session = server.client().post("/api/v1/api-keys", json!({"name": "x", "scopes": ["calendar:read"]})).await;
    assert_eq!(no_session.status, 401);
}

/// The bases of every process that takes `module`'s public calls from
/// outside: the gateway, and in the split shape that module's own
/// processes too (each checks keys at its edge).
fn edges(server: &Server, module: &str) -> Vec<(String, reqwest::Client)> {
    let mut all = vec![(server.base.clone(), reqwest::Client::new())];
    if let Some(split) = &server.split {
        all.extend(split.bases_of(module).into_iter().map(|b| (b, split.http())));
    }
    all
}

async fn status_at(base: &str, http: &reqwest::Client, key: &str, path: &str) -> u16 {
    http.get(format!("{base}{path}")).bearer_auth(key).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_revoked_key_is_refused_by_every_process_at_once() {
    let server = Server::start().await;
    // A second process on the same database and cache (PostgreSQL and Redis).
    let second = match (redis_url(), is_split()) {
        (Some(_), false) => Some(Server::start_sharing(&server, &[]).await),
        _ => None,
    };
    let (host, me, listing) = host_with_listing(&server).await;
    let path = calendar(&listing);
    let mut processes = edges(&server, "listing");
    if let Some(second) = &second {
        processes.push((second.base.clone(), reqwest::Client::new()));
    }
    let created = new_key(&host, "Script", &["calendar:read"]).await;
    let key = key_of(&created);
    // Every process knows the key (and remembers it)...
    for (base, http) in &processes {
        assert_eq!(status_at(base, http, &key, &path).await, 200, "{base}");
    }
    // ... and refuses it the moment it is revoked.
    let id = created["id"].as_str().unwrap();
    let revoked = host.send(host.http.delete(server.url(&format!("/api/v1/api-keys/{id}")))).await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    for (base, http) in &processes {
        assert_eq!(status_at(base, http, &key, &path).await, 401, "{base}");
    }
    assert!(host.get("/api/v1/api-keys").await.body["items"].as_array().unwrap().is_empty());
    let again = host.send(host.http.delete(server.url(&format!("/api/v1/api-keys/{id}")))).await;
    assert_eq!(again.status, 204);

    // Someone else's key is not theirs to see or revoke.
    let (stranger, _) = server.client().signed_up(&unique_email("keys-stranger")).await;
    let other = new_key(&host, "Other", &["calendar:read"]).await;
    let other_id = other["id"].as_str().unwrap();
    let theirs = stranger.send(stranger.http.delete(server.url(&format!("/api/v1/api-keys/{other_id}")))).await;
    assert_eq!(theirs.problem(404), "not_found");
    let rotate = stranger.post(&format!("/api/v1/api-keys/{other_id}/rotate"), json!({})).await;
    assert_eq!(rotate.problem(404), "not_found");

    // An admin lists any user's keys (revoked ones too) and revokes them; the call is audited.
    let admin = admin(&server).await;
    let user_id = me["id"].as_str().unwrap();
    assert_eq!(stranger.get(&format!("/api/v1/admin/users/{user_id}/api-keys")).await.problem(403), "forbidden");
    let theirs = admin.get(&format!("/api/v1/admin/users/{user_id}/api-keys")).await;
    assert_eq!(theirs.status, 200, "{}", theirs.text);
    let items = theirs.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", theirs.text);
    assert!(items.iter().any(|k| k["id"] == created["id"] && k["revoked_at"].is_string()), "{}", theirs.text);
    let other_key = key_of(&other);
    assert_eq!(status_at(&server.base, &reqwest::Client::new(), &other_key, &path).await, 200);
    let no_reason = admin.post(&format!("/api/v1/admin/api-keys/{other_id}/revoke"), json!({"reason": " "})).await;
    assert_eq!(no_reason.problem(422), "validation_failed");
    let by_admin = admin.post(&format!("/api/v1/admin/api-keys/{other_id}/revoke"), json!({"reason": "leaked"})).await;
    assert_eq!(by_admin.status, 204, "{}", by_admin.text);
    for (base, http) in &processes {
        assert_eq!(status_at(base, http, &other_key, &path).await, 401, "{base}");
    }
    let admin_id = admin.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    // The revocation is in the audit log with its reason (the refused try too).
    eventually(&admin, &format!("/api/v1/admin/audit?actor={admin_id}"), |b| {
        b["items"].as_array().is_some_and(|items| {
            items.iter().any(|e| {
                e["target"].as_str().unwrap_or("").contains(other_id) && e["status"] == 204 && e["reason"] == "leaked"
            })
        })
    })
    .await;

    // A suspended user's keys stop at once, and work again on reinstatement.
    let third = key_of(&new_key(&host, "Third", &["calendar:read"]).await);
    for (base, http) in &processes {
        assert_eq!(status_at(base, http, &third, &path).await, 200, "{base}");
    }
    let suspended = admin.post(&format!("/api/v1/admin/users/{user_id}/suspend"), json!({"reason": "fraud"})).await;
    assert_eq!(suspended.status, 200, "{}", suspended.text);
    for (base, http) in &processes {
        assert_eq!(status_at(base, http, &third, &path).await, 401, "{base}");
    }
    let reinstated = admin.post(&format!("/api/v1/admin/users/{user_id}/reinstate"), json!({})).await;
    assert_eq!(reinstated.status, 200, "{}", reinstated.text);
    for (base, http) in &processes {
        assert_eq!(status_at(base, http, &third, &path).await, 200, "{base}");
    }
}

#[tokio::test]
async fn rotated_keys_overlap_for_the_grace_period_only_and_each_key_has_its_limit() {
    let env: Vec<(&str, &str)> =
        CLOCK.iter().copied().chain([("HOMETRIP_AUTH__API_KEYS__RATE_LIMIT__MAX", "5")]).collect();
    let server = Server::start_with(&env).await;
    let (host, _, listing) = host_with_listing(&server).await;
    let path = calendar(&listing);
    let gateway = reqwest::Client::new();
    let works = |key: String| {
        let (base, gateway, path) = (server.base.clone(), gateway.clone(), path.clone());
        async move { status_at(&base, &gateway, &key, &path).await }
    };

    let first = new_key(&host, "Rotating", &["calendar:read"]).await;
    let first_key = key_of(&first);
    assert_eq!(works(first_key.clone()).await, 200);
    let id = first["id"].as_str().unwrap();
    let rotated = host.post(&format!("/api/v1/api-keys/{id}/rotate"), json!({})).await;
    assert_eq!(rotated.status, 201, "{}", rotated.text);
    let second_key = key_of(&rotated.body);
    assert_ne!(second_key, first_key);
    assert_eq!(rotated.body["name"], "Rotating");
    assert_eq!(rotated.body["scopes"], json!(["calendar:read"]));
    // Both work during the grace period; the old one says when it stops and what replaced it.
    assert_eq!(works(first_key.clone()).await, 200);
    assert_eq!(works(second_key.clone()).await, 200);
    let list = host.get("/api/v1/api-keys").await.body;
    let old = list["items"].as_array().unwrap().iter().find(|k| k["id"] == first["id"]).unwrap().clone();
    assert_eq!(old["replaced_by"], rotated.body["id"], "{list}");
    assert!(old["expires_at"].is_string(), "{list}");
    // A rotated key is not rotated twice.
    assert_eq!(host.post(&format!("/api/v1/api-keys/{id}/rotate"), json!({})).await.problem(409), "conflict");

    advance_clock(&server, 59 * 60).await;
    assert_eq!(works(first_key.clone()).await, 200, "within the grace period");
    advance_clock(&server, 2 * 60).await;
    assert_eq!(works(first_key.clone()).await, 401, "after the grace period");
    assert_eq!(works(second_key.clone()).await, 200);

    // No grace: the old key stops at once.
    let second_id = rotated.body["id"].as_str().unwrap();
    let bad = host.post(&format!("/api/v1/api-keys/{second_id}/rotate"), json!({"grace_minutes": -5})).await;
    assert_eq!(bad.problem(422), "validation_failed");
    let malformed = host.post_raw(&format!("/api/v1/api-keys/{second_id}/rotate"), "application/json", "{").await;
    assert_eq!(malformed.problem(400), "malformed_json");
    let now = host.post(&format!("/api/v1/api-keys/{second_id}/rotate"), json!({"grace_minutes": 0})).await;
    assert_eq!(now.status, 201, "{}", now.text);
    assert_eq!(works(second_key).await, 401);
    assert_eq!(works(key_of(&now.body)).await, 200);

    // A key with an end date stops at it (the platform's clock is 61 minutes ahead).
    let ends = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let dated =
        host.post("/api/v1/api-keys", json!({"name": "Dated", "scopes": ["calendar:read"], "expires_at": ends})).await;
    assert_eq!(dated.status, 201, "{}", dated.text);
    let dated_key = key_of(&dated.body);
    assert_eq!(works(dated_key.clone()).await, 200);
    advance_clock(&server, 2 * 24 * 3600).await;
    assert_eq!(works(dated_key).await, 401);

    // Each key has its own limit (5 a minute here): the sixth call is 429,
    // while another key of the same owner, and the owner, go on.
    let limited = key_of(&new_key(&host, "Busy", &["calendar:read"]).await);
    for _ in 0..5 {
        assert_eq!(works(limited.clone()).await, 200);
    }
    let over = server.client().with_token(&limited).get(&path).await;
    assert_eq!(over.problem(429), "rate_limited");
    assert!(over.headers.get("retry-after").is_some());
    let fresh = key_of(&new_key(&host, "Quiet", &["calendar:read"]).await);
    assert_eq!(works(fresh).await, 200);
    assert_eq!(host.get(&path).await.status, 200);
}

#[tokio::test]
async fn the_openapi_document_names_each_operations_scope() {
    let server = Server::start().await;
    let api = server.client();
    let mut doc = Value::Null;
    for _ in 0..patience(100) {
        doc = api.get("/api/openapi.json").await.body;
        let complete = hometrip_gateway::scopes::SCOPED_ENDPOINTS
            .iter()
            .all(|(method, path, _)| doc["paths"][path][method.to_lowercase()].is_object());
        if complete {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let scheme = &doc["components"]["securitySchemes"]["api_key"];
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");
    assert!(scheme["description"].as_str().unwrap().contains("calendar:write"), "{scheme}");
    for (method, path, scope) in hometrip_gateway::scopes::SCOPED_ENDPOINTS {
        let operation = &doc["paths"][path][method.to_lowercase()];
        assert!(operation.is_object(), "{method} {path} is not in the document");
        let security = operation["security"].as_array().unwrap_or_else(|| panic!("{method} {path}: no security"));
        assert!(security.contains(&json!({"api_key": [scope.as_str()]})), "{method} {path}: {security:?}");
    }
    // Open to anyone, and to keys with the scope.
    let public = &doc["paths"]["/api/v1/search/listings"]["get"]["security"];
    assert!(public.as_array().unwrap().contains(&json!({})), "{public}");
    let keys = &doc["paths"]["/api/v1/api-keys"]["post"]["security"];
    assert!(!keys.to_string().contains("api_key"), "{keys}");
    let page = reqwest::get(server.url("/api/docs")).await.unwrap().text().await.unwrap();
    assert!(page.contains("<code>PUT /api/v1/listings/{id}/calendar</code>"), "{page}");
    assert!(page.contains("(API key scope <code>calendar:write</code>)"), "{page}");
}

/// The key shown once on a page's answer.
fn shown_key(page: &Reply) -> String {
    let marker = "id=\"new-key\" readonly value=\"";
    let at = page.text.find(marker).unwrap_or_else(|| panic!("no new key in {}", page.text)) + marker.len();
    page.text[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_host_manages_keys_from_the_account_pages() {
    use crate::web::{api_as, csrf, html, signed_in_browser};
    let server = Server::start().await;
    let email = unique_email("keys-page");
    let mut browser = signed_in_browser(&server, &email).await;
    let host = api_as(&server, &email).await;
    let listing = host.post("/api/v1/listings", house("La Bastide des clés")).await;
    let listing = listing.body["id"].as_str().unwrap().to_owned();
    let page = browser.get("/account/api-keys").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(html(&page).contains("id=\"no-keys\""), "{}", page.text);
    assert!(page.text.contains("aria-current=\"page\">API keys"), "{}", page.text);
    let token = csrf(&page);

    // Without the token nothing is made; a past date or no scope is said on the page.
    let form = |name: &'static str| vec![("name", name), ("scope", "calendar:read"), ("scope", "calendar:write")];
    assert_eq!(browser.post("/account/api-keys", &form("Sync")).await.status, 403);
    let mut past = form("Sync");
    past.extend([("csrf", token.as_str()), ("expires_on", "2001-01-01")]);
    let refused = browser.post("/account/api-keys", &past).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(html(&refused).contains("id=\"form-error\""), "{}", refused.text);
    assert!(refused.text.contains("value=\"calendar:write\" checked"), "the ticks are kept: {}", refused.text);
    let none = browser.post("/account/api-keys", &[("csrf", token.as_str()), ("name", "Sync")]).await;
    assert_eq!(none.status, 422, "{}", none.text);
    assert!(host.get("/api/v1/api-keys").await.body["items"].as_array().unwrap().is_empty());

    // Made: the key is shown on this answer only, and works with its scopes.
    let mut ok = form("Sync");
    ok.push(("csrf", token.as_str()));
    let made = browser.post("/account/api-keys", &ok).await;
    assert_eq!(made.status, 201, "{}", made.text);
    assert_eq!(made.headers["cache-control"], "no-store");
    let key = shown_key(&made);
    assert!(key.starts_with("htk_"), "{key}");
    let with_key = server.client().with_token(&key);
    let (path, body) = block(&listing, false);
    assert_eq!(put(&with_key, &path, body).await.status, 200);
    let again = browser.get("/account/api-keys").await;
    assert!(!again.text.contains(&key), "shown twice");
    assert!(again.text.contains("Sync") && again.text.contains("<code>calendar:write</code>"), "{}", again.text);

    // Rotated from the page: a new key shown, the old one in its grace period.
    let id = host.get("/api/v1/api-keys").await.body["items"][0]["id"].as_str().unwrap().to_owned();
    let rotated = browser.post(&format!("/account/api-keys/{id}/rotate"), &[("csrf", token.as_str())]).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let second = shown_key(&rotated);
    assert_ne!(second, key);
    assert!(html(&rotated).contains("Replaced by a newer key"), "{}", rotated.text);
    assert_eq!(with_key.get(&calendar(&listing)).await.status, 200);

    // Revoked from the page: it stops at once; another's key or a bad id is not found.
    let items = host.get("/api/v1/api-keys").await.body["items"].clone();
    let newest = items.as_array().unwrap().iter().find(|k| k["replaced_by"].is_null()).unwrap()["id"].clone();
    let path = format!("/account/api-keys/{}/revoke", newest.as_str().unwrap());
    let revoked = browser.post(&path, &[("csrf", token.as_str())]).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert!(html(&revoked).contains("id=\"notice\""), "{}", revoked.text);
    assert_eq!(server.client().with_token(&second).get(&calendar(&listing)).await.status, 401);
    let mut stranger = signed_in_browser(&server, &unique_email("keys-stranger")).await;
    let theirs = stranger.get("/account/api-keys").await;
    let other = stranger.post(&format!("/account/api-keys/{id}/revoke"), &[("csrf", &csrf(&theirs))]).await;
    assert_eq!(other.status, 404, "{}", other.text);
    assert_eq!(with_key.get(&calendar(&listing)).await.status, 200, "a stranger revoked nothing");
    let bad = stranger.post("/account/api-keys/not-an-id/revoke", &[("csrf", &csrf(&theirs))]).await;
    assert_eq!(bad.status, 404);
}

#[tokio::test]
async fn an_admin_revokes_a_users_key_from_the_console() {
    use crate::web::{csrf, html};
    let server = Server::start().await;
    let (host, me, listing) = host_with_listing(&server).await;
    let created = new_key(&host, "Leaky script", &["calendar:read"]).await;
    let key = key_of(&created);
    let user = me["id"].as_str().unwrap();
    let with_key = server.client().with_token(&key);
    assert_eq!(with_key.get(&calendar(&listing)).await.status, 200);

    // Not for anyone but admins.
    let mut visitor = crate::web::signed_in_browser(&server, &unique_email("keys-visitor")).await;
    assert_eq!(visitor.get(&format!("/admin/users/{user}/api-keys")).await.status, 404);

    let mut console = crate::web_admin::admin_browser(&server).await;
    let users = console.get(&format!("/admin/users?q={}", me["email"].as_str().unwrap())).await;
    assert!(users.text.contains(&format!("href=\"/admin/users/{user}/api-keys\"")), "{}", users.text);
    let page = console.get(&format!("/admin/users/{user}/api-keys")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(html(&page).contains("Leaky script") && page.text.contains(created["prefix"].as_str().unwrap()));
    assert!(!page.text.contains(&key), "the console never sees a key");
    let token = csrf(&page);
    // A key is revoked from its owner's page only (the audit names the user in the path).
    let (other, _) = server.client().signed_up(&unique_email("keys-other")).await;
    let other_id = other.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    let wrong = format!("/admin/users/{other_id}/api-keys/{}/revoke", created["id"].as_str().unwrap());
    assert_eq!(console.post(&wrong, &[("csrf", token.as_str()), ("reason", "mixed up")]).await.status, 404);
    let action = format!("/admin/users/{user}/api-keys/{}/revoke", created["id"].as_str().unwrap());
    let no_reason = console.post(&action, &[("csrf", token.as_str()), ("reason", " ")]).await;
    assert_eq!(no_reason.status, 422, "{}", no_reason.text);
    assert_eq!(with_key.get(&calendar(&listing)).await.status, 200);
    let done = console.post(&action, &[("csrf", token.as_str()), ("reason", "posted on a forum")]).await;
    assert_eq!(done.status, 303, "{}", done.text);
    assert_eq!(with_key.get(&calendar(&listing)).await.status, 401);
    let after = console.get(done.headers["location"].to_str().unwrap()).await;
    assert!(html(&after).contains("id=\"notice\"") && after.text.contains("data-revoked"), "{}", after.text);
}

#[tokio::test]
async fn a_new_password_revokes_the_keys_when_the_owner_asks() {
    use crate::web::{api_as, csrf, html};
    let server = Server::start().await;
    let email = unique_email("keys-password");
    server.client().signed_up(&email).await;
    let owner = api_as(&server, &email).await;
    let me = owner.get("/api/v1/users/me").await.body;
    let works = |key: String| {
        let api = server.client().with_token(&key);
        async move { api.get("/api/v1/listings").await.status }
    };

    // A change without the box keeps the keys (scripts go on); with it, they stop at once.
    let kept = key_of(&new_key(&owner, "Kept", &["listings:read"]).await);
    let change = |current: &str, new: &str, revoke: bool| json!({"current_password": current, "new_password": new, "revoke_api_keys": revoke});
    let first = "a first new passphrase, long enough";
    let changed = owner.post("/api/v1/auth/password/change", change(PASSWORD, first, false)).await;
    assert_eq!(changed.status, 204, "{}", changed.text);
    assert_eq!(works(kept.clone()).await, 200);
    let second = key_of(&new_key(&owner, "Second", &["listings:read"]).await);
    let changed = owner.post("/api/v1/auth/password/change", change(first, PASSWORD, true)).await;
    assert_eq!(changed.status, 204, "{}", changed.text);
    for key in [&kept, &second] {
        assert_eq!(works(key.clone()).await, 401);
    }
    let listed = owner.get("/api/v1/api-keys").await.body;
    assert!(listed["items"].as_array().unwrap().iter().all(|k| k["revoked_at"].is_string()), "{listed}");

    // The reset page's box does the same for an owner who lost the password.
    let third = key_of(&new_key(&owner, "Third", &["listings:read"]).await);
    // The browser's session ended with the change: it is a visitor's now.
    let mut browser = crate::web::Browser::new(&server);
    let form = browser.get("/forgot-password").await;
    assert_eq!(browser.post("/forgot-password", &[("csrf", &csrf(&form)), ("email", &email)]).await.status, 200);
    let link = server.wait_email(&email, "Reset").await.token();
    let landing = browser.get(&format!("/reset-password?token={link}")).await;
    assert!(html(&landing).contains("name=\"revoke_api_keys\""), "{}", landing.text);
    let token = csrf(&landing);
    let reset_with =
        |password| [("csrf", token.as_str()), ("token", &link), ("password", password), ("revoke_api_keys", "on")];
    let refused = browser.post("/reset-password", &reset_with("abc")).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("value=\"on\" checked"), "the tick is kept: {}", refused.text);
    assert_eq!(works(third.clone()).await, 200, "a refused reset revokes nothing");
    let reset = browser.post("/reset-password", &reset_with("the passphrase after the reset")).await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    assert_eq!(works(third).await, 401);

    // Each revocation is in the audit log, as the owner's, under the call that made it.
    let admin = admin(&server).await;
    let path = format!("/api/v1/admin/audit?actor={}", me["id"].as_str().unwrap());
    let audit = eventually(&admin, &path, |b| {
        let actions: Vec<_> = b["items"].as_array().unwrap().iter().map(|e| e["action"].clone()).collect();
        actions.iter().filter(|a| *a == "POST /api/v1/auth/password/change").count() == 2
            && actions.iter().any(|a| a == "POST /api/v1/auth/password/reset")
    })
    .await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["target"].as_str().unwrap().starts_with("api-keys/") || e["action"] == "POST /api/v1/api-keys"),
        "{audit}"
    );

    // And the security page's box, for a signed-in owner.
    let email = unique_email("keys-security");
    let mut browser = crate::web::signed_in_browser(&server, &email).await;
    let key = key_of(&new_key(&api_as(&server, &email).await, "Page", &["listings:read"]).await);
    let page = browser.get("/account/security").await;
    assert!(html(&page).contains("name=\"revoke_api_keys\""), "{}", page.text);
    let token = csrf(&page);
    let fields = [
        ("csrf", token.as_str()),
        ("current_password", PASSWORD),
        ("new_password", "the passphrase of the page"),
        ("revoke_api_keys", "on"),
    ];
    let changed = browser.post("/account/password", &fields).await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(works(key).await, 401);
}
