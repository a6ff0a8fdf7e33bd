//! The edge: bad input of every kind answers a 4xx problem+json with nothing
//! stored; forged tokens are refused; health, metrics, OpenAPI, request ids.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn malformed_bodies_are_problems_and_store_nothing() {
    let server = Server::start().await;
    let api = server.client();
    let path = "/api/v1/auth/register";
    assert_eq!(api.post_raw(path, "application/json", "{\"email\": ").await.problem(400), "malformed_json");
    assert_eq!(api.post_raw(path, "application/json", "").await.problem(400), "malformed_json");
    assert_eq!(api.post_raw(path, "text/plain", "hello").await.problem(415), "unsupported_media_type");
    assert_eq!(api.post_raw(path, "application/json", "[1,2,3]").await.problem(422), "validation_failed");
    let missing = api.post(path, json!({"email": "a@b.co"})).await;
    assert_eq!(missing.problem(422), "validation_failed");
    assert!(missing.body["errors"][0]["field"].as_str().is_some(), "{}", missing.text);
    assert_eq!(
        api.post(path, json!({"email": 5, "password": true, "display_name": []})).await.problem(422),
        "validation_failed"
    );
    let huge = format!("{{\"email\": \"{}\"}}", "a".repeat(200_000));
    assert_eq!(api.post_raw(path, "application/json", huge).await.problem(413), "payload_too_large");
    // Unicode and SQL-looking input is data, not code.
    let name = "Zoë 日本 '; DROP TABLE accounts; --";
    let r = api.post(path, json!({"email": "unicode@example.com", "password": PASSWORD, "display_name": name})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["user"]["display_name"], json!(name));
    // None of the failures above stored an account: the email is free only once.
    assert_eq!(api.register("a@b.co", "A").await.status, 201);
    assert_eq!(api.login("unicode@example.com", PASSWORD).await.status, 200);
}

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn forged_expired_and_alg_none_tokens_are_refused() {
    let server = Server::start().await;
    let api = server.client();
    let (_, pair) = api.signed_up(&unique_email("forge")).await;
    let good = pair["access_token"].as_str().unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();

    let mut admin_claims = claims.clone();
    admin_claims["roles"] = json!(["admin"]);
    let tampered = format!("{}.{}.{}", parts[0], b64(&admin_claims), parts[2]);
    let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&admin_claims));
    let mut hs = header.clone();
    hs["alg"] = json!("HS256");
    let hmac = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: header["kid"].as_str().map(str::to_owned),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &admin_claims,
        &jsonwebtoken::EncodingKey::from_secret(b"guess"),
    )
    .unwrap();
    // A token signed by another Ed25519 key under the same kid.
    let other_key = {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        jsonwebtoken::EncodingKey::from_ed_der(sk.to_pkcs8_der().unwrap().as_bytes())
    };
    let ed_header = jsonwebtoken::Header {
        kid: header["kid"].as_str().map(str::to_owned),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA)
    };
    let foreign = jsonwebtoken::encode(&ed_header, &admin_claims, &other_key).unwrap();

    for (what, token) in [
        ("tampered", tampered),
        ("alg none", none),
        ("hmac", hmac),
        ("foreign key", foreign),
        ("junk", "abc.def.ghi".into()),
    ] {
        let r = api.with_token(&token).get("/api/v1/users/me").await;
        assert_eq!(r.problem(401), "invalid_token", "{what}");
        assert_eq!(challenge(&r), "Bearer realm=\"HomeTrip\", error=\"invalid_token\"", "{what}");
    }
    let r = api.send(api.http.get(server.url("/api/v1/users/me")).header("authorization", "Basic abc")).await;
    assert_eq!(r.problem(401), "unauthenticated");
    // Every 401 names the scheme it wants (RFC 9110 §11.6.1).
    assert_eq!(challenge(&r), "Bearer realm=\"HomeTrip\"");
    assert_eq!(api.get("/api/v1/users/me").await.problem(401), "unauthenticated");
    // The real one still works.
    assert_eq!(api.with_token(good).get("/api/v1/users/me").await.status, 200);
}

pub(crate) fn challenge(reply: &Reply) -> &str {
    reply.headers.get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default()
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    // The shortest allowed lifetime is 60 s; a token minted with the server's
    // own key but already expired must fail. The key is read from the data dir.
    let server = Server::start().await;
    let api = server.client();
    let (_, pair) = api.signed_up(&unique_email("exp")).await;
    let pem = std::fs::read_to_string(server.data_dir_of("auth").join("keys/jwt-ed25519.pem")).unwrap();
    let key = jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()).unwrap();
    let parts: Vec<&str> = pair["access_token"].as_str().unwrap().split('.').collect();
    let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    claims["iat"] = json!(now - 3600);
    claims["nbf"] = json!(now - 3600);
    claims["exp"] = json!(now - 1800);
    let h = jsonwebtoken::Header {
        kid: header["kid"].as_str().map(str::to_owned),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA)
    };
    let expired = jsonwebtoken::encode(&h, &claims, &key).unwrap();
    let r = api.with_token(&expired).get("/api/v1/users/me").await;
    assert_eq!(r.problem(401), "invalid_token");
    assert!(r.body["detail"].as_str().unwrap().contains("expired"), "{}", r.text);
    claims["nbf"] = json!(now + 3600);
    claims["exp"] = json!(now + 7200);
    let future = jsonwebtoken::encode(&h, &claims, &key).unwrap();
    assert_eq!(api.with_token(&future).get("/api/v1/users/me").await.problem(401), "invalid_token");
}

#[tokio::test]
async fn health_metrics_openapi_and_request_ids() {
    let server = Server::start_with(&[("HOMETRIP_SERVER__METRICS_TOKEN", "edge-scraper")]).await;
    let api = server.client();
    assert_eq!(api.get("/health/live").await.status, 200);
    assert_eq!(api.get("/health/ready").await.status, 200);

    let r = api.send(api.http.get(server.url("/health/live")).header("x-request-id", "trace-me-123")).await;
    assert_eq!(r.headers["x-request-id"], "trace-me-123");
    let r = api.get("/health/live").await;
    assert!(r.headers.get("x-request-id").is_some());

    let id = uuid::Uuid::now_v7();
    api.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(api.get("/no/such/route").await.problem(404), "not_found");
    let metrics = api.http.get(server.url("/metrics")).bearer_auth("edge-scraper").send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("http_request_duration_seconds"), "{metrics}");
    // The route label is the pattern, never the raw path.
    assert!(metrics.contains("route=\"/api/v1/users/{id}\""), "{metrics}");
    assert!(!metrics.contains(&id.to_string()));
    assert!(metrics.contains("status_code=\"404\""));

    let doc = api.get("/api/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/2fa/setup",
        "/api/v1/users/me",
        "/api/v1/users/{id}",
        "/api/v1/users/me/avatar",
    ] {
        assert!(doc.body["paths"].get(path).is_some(), "openapi lacks {path}");
    }
    // Client generators name methods by operation id; error answers are problems.
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(ids.insert(id.to_owned()), "{method} {path}: operation id {id} is taken");
            let answers = operation["responses"].as_object().unwrap();
            assert!(answers.contains_key("429"), "{method} {path} does not name the limits' 429");
            for (status, answer) in answers.iter().filter(|(s, _)| s.as_str() >= "400") {
                let content = answer["content"].as_object().map(|c| c.keys().cloned().collect::<Vec<_>>());
                assert!(
                    content.as_ref().is_none_or(|c| c == &["application/problem+json"]),
                    "{method} {path} {status}: {content:?}"
                );
            }
        }
    }
    let docs = reqwest::get(server.url("/api/docs")).await.unwrap();
    assert_eq!(docs.status(), 200);
    let page = docs.text().await.unwrap();
    // Rendered here: every operation, no script from anywhere.
    assert!(page.contains("<code>POST /api/v1/bookings</code>"), "{page}");
    assert!(!page.contains("<script"), "{page}");
}

/// The metrics of the process running `module` (every module's, all in one).
async fn scrape(server: &Server, module: &str, token: &str) -> String {
    let (base, http) = match &server.split {
        Some(split) => (split.bases_of(module).remove(0), split.http()),
        None => (server.base.clone(), reqwest::Client::new()),
    };
    let res = http.get(format!("{base}/metrics")).bearer_auth(token).send().await.expect("scrape");
    assert_eq!(res.status(), 200);
    res.text().await.expect("metrics text")
}

fn has_line(metrics: &str, name: &str, labels: &[&str]) -> bool {
    metrics.lines().any(|line| {
        let Some(rest) = line.strip_prefix(name) else { return false };
        (rest.starts_with('{') || rest.starts_with(' ')) && labels.iter().all(|label| rest.contains(label))
    })
}

#[tokio::test]
async fn metrics_cover_the_bus_jobs_the_pool_and_upstream_calls() {
    let token = "bus-scraper-0123456789";
    let server =
        Server::start_with(&[("HOMETRIP_SERVER__METRICS_TOKEN", token), ("HOMETRIP_TESTING__CLOCK_CONTROL", "true")])
            .await;
    server.client().signed_up(&unique_email("metrics")).await;
    let registered = "type=\"auth.account_registered\"";
    // The relay publishes after the commit, the subscriber (user's profile
    // projection) takes it after that: both are counted by the process doing it.
    let (mut published, mut delivered) = (String::new(), String::new());
    for _ in 0..100 {
        published = scrape(&server, "auth", token).await;
        delivered = scrape(&server, "user", token).await;
        if has_line(&published, "events_published_total", &[registered])
            && has_line(&delivered, "events_delivered_total", &[registered, "subscriber=\"user.profiles\""])
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(has_line(&published, "events_published_total", &[registered]), "{published}");
    assert!(
        has_line(&delivered, "events_delivered_total", &[registered, "subscriber=\"user.profiles\""]),
        "{delivered}"
    );
    for gauge in ["events_outbox_pending", "events_outbox_oldest_age_seconds", "events_dead_letters_pending"] {
        assert!(has_line(&published, gauge, &[]), "{gauge}: {published}");
    }
    assert!(has_line(&published, "db_pool_connections", &["state=\"max\""]), "{published}");
    // A day later the recurring jobs (booking's reconciliation among them) are due.
    let r = server.internal(reqwest::Method::POST, "/internal/testing/clock", Some(json!({"advance_seconds": 86_400})));
    assert_eq!(r.await.status, 200);
    let r = server.internal(reqwest::Method::POST, "/internal/testing/jobs/run", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let booking = scrape(&server, "booking", token).await;
    assert!(has_line(&booking, "job_runs_total", &["outcome=\"ok\""]), "{booking}");
    if server.split.is_some() {
        // The gateway counts its calls to each module's replicas.
        let gateway = scrape(&server, "gateway", token).await;
        assert!(has_line(&gateway, "upstream_requests_total", &["module=\"auth\"", "outcome=\"ok\""]), "{gateway}");
    }
}

/// The expressions of a Prometheus rule file (`expr:`, on one line or a block).
fn rule_exprs(rules: &str) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut lines = rules.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else { continue };
        if rest.trim() != "|" {
            exprs.push(rest.to_owned());
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        while let Some(next) = lines.next_if(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent) {
            exprs.push(next.to_owned());
        }
    }
    exprs
}

/// The queries (`targets[].expr`) of a Grafana dashboard.
fn dashboard_exprs(dashboard: &serde_json::Value) -> Vec<String> {
    let panels = dashboard["panels"].as_array().cloned().unwrap_or_default();
    panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect()
}

/// The metric names PromQL expressions use (label matchers, strings and
/// PromQL's own words left out).
fn metric_names(exprs: &[String]) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for expr in exprs {
        let (mut depth, mut quoted, mut word) = (0, false, String::new());
        for c in expr.chars().chain([' ']) {
            match c {
                '"' => quoted = !quoted,
                '{' if !quoted => depth += 1,
                '}' if !quoted => depth -= 1,
                c if !quoted && depth == 0 && (c.is_ascii_alphanumeric() || c == '_' || c == ':') => {
                    word.push(c);
                    continue;
                }
                _ => {}
            }
            let is_function = word == "histogram_quantile" || word.ends_with("_over_time");
            if word.contains('_') && !is_function && !word.starts_with(|c: char| c.is_ascii_digit()) {
                names.insert(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    names
}

#[tokio::test]
async fn alerts_and_dashboards_query_only_metrics_the_processes_export() {
    let token = "rules-scraper-0123456789";
    let server = Server::start_with(&[("HOMETRIP_SERVER__METRICS_TOKEN", token)]).await;
    // A request and an event, so that the lazily made series exist too.
    server.client().signed_up(&unique_email("rules")).await;
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut exprs = rule_exprs(&std::fs::read_to_string(deploy.join("prometheus/alerts.yml")).unwrap());
    let rules = exprs.len();
    for entry in std::fs::read_dir(deploy.join("grafana/dashboards")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        exprs.extend(dashboard_exprs(&serde_json::from_str(&text).expect("a dashboard is JSON")));
    }
    assert!(rules >= 9 && exprs.len() > rules + 20, "{exprs:?}");
    let names = metric_names(&exprs);
    assert!(names.contains("events_outbox_oldest_age_seconds") && names.contains("db_pool_connections"), "{names:?}");
    let modules: &[&str] = if server.split.is_some() {
        &["gateway", "auth", "user", "booking", "payment", "listing"]
    } else {
        &["gateway"]
    };
    let mut exported = String::new();
    for _ in 0..50 {
        exported.clear();
        for module in modules {
            exported.push_str(&scrape(&server, module, token).await);
        }
        if exported.contains("# TYPE events_published_total ") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for name in names {
        // Calls to other processes exist only where there are other processes.
        if name.starts_with("upstream_") && server.split.is_none() {
            continue;
        }
        let base = ["_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
        let typed = |n: &str| exported.lines().any(|l| l.starts_with(&format!("# TYPE {n} ")));
        assert!(typed(&name) || typed(base), "an alert or a dashboard queries {name}, which no process exports");
    }
}

#[tokio::test]
async fn ready_names_the_failing_store() {
    // A Redis that does not answer: the process starts, is live, and is not ready.
    let server = Server::start_with(&[("HOMETRIP_REDIS__URL", "redis://127.0.0.1:1")]).await;
    let api = server.client();
    assert_eq!(api.get("/health/live").await.status, 200);
    let ready = api.get("/health/ready").await;
    assert_eq!(ready.problem(503), "service_unavailable");
    assert!(ready.body["detail"].as_str().unwrap().contains("redis"), "{}", ready.text);
    // API calls fail cleanly while the cache is down: 503, not 500.
    assert_eq!(api.login("a@b.co", PASSWORD).await.problem(503), "service_unavailable");
}

#[tokio::test]
async fn a_bad_configuration_stops_start_up_naming_the_key() {
    let server = Server::start().await;
    let out = server.command().env("HOMETRIP_SERVER__PORT", "not-a-port").arg("config").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.port"), "{err}");
    let out = server.command().env("HOMETRIP_DATABASE__URL", "mysql://x").arg("config").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("database.url"));
    let out = server.command().env("HOMETRIP_SERVER__PROT", "1").arg("config").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("prot"), "{}", String::from_utf8_lossy(&out.stderr));
    // `config` prints the effective settings with secrets redacted.
    let out = server
        .command()
        .env("HOMETRIP_AUTH__OAUTH__GOOGLE__CLIENT_SECRET", "s3cr3t")
        .env("HOMETRIP_SERVICES__TOKEN", "tok3n")
        .env("HOMETRIP_SERVER__PORT", "4321")
        .arg("config")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(!printed.contains("s3cr3t") && !printed.contains("tok3n"), "{printed}");
    let value: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(value["server"]["port"], json!(4321));
}

#[tokio::test]
async fn per_ip_and_per_account_limits_answer_429() {
    let server = Server::start_with(&[
        ("HOMETRIP_SERVER__RATE_LIMIT__MAX", "12"),
        ("HOMETRIP_AUTH__RATE_LIMIT_PER_ACCOUNT__MAX", "3"),
    ])
    .await;
    let api = server.client();
    let (me, _) = api.signed_up(&unique_email("limited")).await;
    // Two requests spent by sign-up; the account allows three.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(me.get("/api/v1/users/me").await.status);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429], "per account");
    // The IP budget (12) runs out next, for anonymous calls too.
    let mut last = api.get("/api/v1/auth/jwks.json").await;
    for _ in 0..10 {
        if last.status == 429 {
            break;
        }
        last = api.get("/api/v1/auth/jwks.json").await;
    }
    assert_eq!(last.problem(429), "rate_limited");
    let retry: u64 = last.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 60);
    // Health is never limited; metrics are (their token must not be guessed at speed).
    assert_eq!(api.get("/health/live").await.status, 200);
    assert_eq!(api.get("/health/ready").await.status, 200);
    assert_eq!(api.get("/metrics").await.problem(429), "rate_limited");
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let server = Server::start_with(&[("HOMETRIP_SERVER__CORS_ORIGINS", "https://app.example")]).await;
    let api = server.client();
    let preflight = |origin: &'static str| {
        api.http
            .request(reqwest::Method::OPTIONS, server.url("/api/v1/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
    };
    let ok = api.send(preflight("https://app.example")).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.headers["access-control-allow-origin"], "https://app.example");
    let denied = api.send(preflight("https://evil.example")).await;
    assert!(denied.headers.get("access-control-allow-origin").is_none());
    assert!(denied.status >= 400);
}

#[tokio::test]
async fn migrate_applies_each_migration_once() {
    let server = Server::start().await;
    // The server migrated at start; the command finds nothing left to do.
    let out = server.cli(&["migrate"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0 migrations applied");
    // A fresh data dir gets every module's tables.
    let fresh = std::env::temp_dir().join(format!("hometrip-migrate-{}", uuid::Uuid::now_v7()));
    let mut cmd = server.command();
    cmd.env("HOMETRIP_DATA_DIR", &fresh)
        .env_remove("HOMETRIP_DATABASE__URL")
        .env_remove("HOMETRIP_MODULES")
        .arg("migrate");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "29 migrations applied");
    let _ = std::fs::remove_dir_all(fresh);
}
