//! Operational routes: liveness, readiness, Prometheus metrics, the OpenAPI
//! document and its docs page, public files, and dead-letter administration.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use hometrip_kernel::cache::Cache;
use hometrip_kernel::db::Db;
use hometrip_kernel::events::EventBus;
use hometrip_kernel::files::FileStore;
use hometrip_kernel::http::constant_time_eq;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::{ErrorCode, Problem};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// What the operational routes read.
pub struct Ops {
    pub db: Db,
    pub cache: Arc<dyn Cache>,
    pub bus: Arc<EventBus>,
    pub files: FileStore,
    pub metrics: PrometheusHandle,
    /// The document of this process's modules, merged with those of the
    /// modules it fronts once they answer (`merge_openapi`).
    pub openapi: std::sync::RwLock<String>,
    /// This process's own document (the base of every merge).
    pub local_openapi: String,
    /// Whether every module behind the gateway gave its document.
    pub openapi_complete: std::sync::atomic::AtomicBool,
    /// The client of the services behind the gateway.
    pub http: reqwest::Client,
    /// Sent with the calls to those services (`services`): a module limits
    /// its public callers per address, and the gateway is not one of them.
    pub service_token: String,
    /// The modules this process calls but does not run (readiness lists them).
    pub upstreams: Vec<Arc<hometrip_kernel::upstream::Upstream>>,
    /// File prefixes anyone may read (avatars, listing photos); the rest stay private.
    pub public_file_prefixes: Vec<String>,
    /// The verifier the gateway (or a process serving the console) checks
    /// tokens with: not ready without keys.
    pub token_keys: Option<Arc<hometrip_kernel::auth_context::AccessVerifier>>,
    /// The message broker, when events travel over one (readiness names it).
    pub broker: Option<Arc<hometrip_kernel::broker::Broker>>,
    /// `/metrics` for anyone (`server.metrics_public`).
    pub metrics_public: bool,
    /// Otherwise the scraper's bearer token (`server.metrics_token`); empty: none.
    pub metrics_token: String,
}

/// Installs the global Prometheus recorder (once per process).
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("http_request_duration_seconds".to_owned()),
            &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
        )
        .map_err(|e| e.to_string())?
        .set_buckets_for_metric(
            Matcher::Full("db_transaction_duration_seconds".to_owned()),
            &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0],
        )
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "live"}))
}

async fn ready(ops: web::Data<Ops>) -> HttpResponse {
    let mut failing = Vec::new();
    if let Err(e) = ops.db.ping().await {
        tracing::warn!(error = %e, "readiness: database");
        failing.push("database");
    }
    if let Err(e) = ops.cache.ping().await {
        tracing::warn!(error = %e, "readiness: cache");
        failing.push(if ops.cache.name() == "redis" { "redis" } else { "cache" });
    }
    if let Some(verifier) = &ops.token_keys {
        if !verifier.has_keys().await {
            failing.push("auth_keys");
        }
    }
    // Without the broker a process still serves (its events wait in the
    // outbox): named, but not a reason to take it out of rotation.
    let mut degraded = Vec::new();
    if let Some(broker) = &ops.broker {
        if !broker.connected() {
            degraded.push("rabbitmq");
        }
    }
    // An upstream that is down makes its paths answer 503, not this process
    // unready: the other modules' paths keep working.
    let upstreams: Vec<serde_json::Value> = ops.upstreams.iter().map(|u| u.status()).collect();
    if failing.is_empty() {
        for u in &upstreams {
            if u["available"] == false {
                degraded.push(u["module"].as_str().unwrap_or("upstream"));
            }
        }
        HttpResponse::Ok().json(serde_json::json!({
            "status": if degraded.is_empty() { "ready" } else { "degraded" },
            "degraded": degraded,
            "upstreams": upstreams,
        }))
    } else {
        let problem =
            Problem::new(hometrip_kernel::ErrorCode::ServiceUnavailable, format!("not ready: {}", failing.join(", ")))
                .with("failing", failing)
                .with("degraded", degraded)
                .with("upstreams", upstreams);
        actix_web::ResponseError::error_response(&problem)
    }
}

/// Prometheus text. Route names and traffic are the operators' business:
/// unless `server.metrics_public`, the scraper presents `server.metrics_token`
/// as a bearer token (a credential of its own: a scrape config never holds the
/// service credential, which opens the internal routes).
async fn metrics(req: actix_web::HttpRequest, ops: web::Data<Ops>) -> Result<HttpResponse, Problem> {
    if !ops.metrics_public {
        let given = hometrip_kernel::auth_context::bearer(&req).unwrap_or_default();
        if ops.metrics_token.is_empty() || !constant_time_eq(given.as_bytes(), ops.metrics_token.as_bytes()) {
            return Err(Problem::new(
                ErrorCode::Unauthenticated,
                "metrics need server.metrics_token as a bearer token (or server.metrics_public = true)",
            ));
        }
    }
    // Gauges read from the stores at scrape time; a store that does not
    // answer leaves its gauges at their last value (readiness reports it).
    if let Err(e) = ops.bus.observe().await {
        tracing::debug!(error = %e, "metrics: event bus gauges not read");
    }
    let pool = ops.db.pool_use();
    for (state, n) in [("open", pool.open), ("idle", pool.idle), ("max", pool.max), ("waiting", pool.waiting)] {
        metrics::gauge!("db_pool_connections", "state" => state).set(n as f64);
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(ops.metrics.render()))
}

async fn openapi(ops: web::Data<Ops>) -> HttpResponse {
    if !ops.openapi_complete.load(std::sync::atomic::Ordering::Relaxed) {
        ops.refresh_openapi().await;
    }
    HttpResponse::Ok().content_type("application/json").body(ops.openapi_json())
}

impl Ops {
    /// Fetches the document of each module behind the gateway and merges
    /// them into this process's own; whether all answered.
    pub async fn refresh_openapi(&self) -> bool {
        let mut docs = Vec::new();
        let mut complete = true;
        for (_, client) in self.services() {
            let fetched = client.with_deadline(std::time::Duration::from_secs(3));
            match fetched.get::<serde_json::Value>("/api/openapi.json", None).await {
                Ok(doc) => docs.push(doc),
                Err(_) => complete = false,
            }
        }
        *self.openapi.write().unwrap_or_else(std::sync::PoisonError::into_inner) = self.local_openapi.clone();
        self.merge_openapi(&docs);
        self.openapi_complete.store(complete, std::sync::atomic::Ordering::Relaxed);
        complete
    }

    /// A client of each module behind this process (through the shared
    /// client stack: service credential, balancing, breakers). Replicas
    /// share their module's database, so one answers for all.
    pub fn services(&self) -> impl Iterator<Item = (&str, RemoteClient)> + '_ {
        self.upstreams.iter().map(|upstream| {
            let client = RemoteClient::over(Arc::clone(upstream), self.http.clone(), &self.service_token);
            (upstream.module.as_str(), client)
        })
    }

    pub fn openapi_json(&self) -> String {
        self.openapi.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Merges the documents of the modules behind this gateway into its own:
    /// paths and component schemas (a module's own entries win).
    pub fn merge_openapi(&self, others: &[serde_json::Value]) {
        let mut doc: serde_json::Value = serde_json::from_str(&self.openapi_json()).unwrap_or_default();
        for other in others {
            for section in [&["paths"][..], &["components", "schemas"][..]] {
                let Some(from) = section.iter().try_fold(other, |v, k| v.get(*k)).and_then(|v| v.as_object()) else {
                    continue;
                };
                let mut into = &mut doc;
                for k in section {
                    into = &mut into[*k];
                }
                if !into.is_object() {
                    *into = serde_json::json!({});
                }
                if let Some(into) = into.as_object_mut() {
                    for (k, v) in from {
                        into.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
        }
        if let Ok(text) = serde_json::to_string(&doc) {
            *self.openapi.write().unwrap_or_else(std::sync::PoisonError::into_inner) = text;
        }
    }
}

/// The API's endpoints as a plain page, rendered here from the OpenAPI
/// document: no script, nothing loaded from another origin (a third-party
/// script on this origin could read what the API's pages hold).
async fn docs(ops: web::Data<Ops>) -> HttpResponse {
    if !ops.openapi_complete.load(std::sync::atomic::Ordering::Relaxed) {
        ops.refresh_openapi().await;
    }
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(docs_page(&ops.openapi_json()))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Every operation of the document, grouped by tag, in path order.
pub fn docs_page(openapi: &str) -> String {
    let doc: serde_json::Value = serde_json::from_str(openapi).unwrap_or_default();
    let mut by_tag: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in ["get", "post", "put", "patch", "delete"] {
                let Some(op) = item.get(method) else { continue };
                let tag = op["tags"][0].as_str().unwrap_or("other").to_owned();
                let summary = op["summary"].as_str().or(op["description"].as_str()).unwrap_or_default();
                let summary = summary.lines().next().unwrap_or_default();
                let scope = op["x-api-key-scope"]
                    .as_str()
                    .map(|s| format!(" <small>(API key scope <code>{}</code>)</small>", escape(s)))
                    .unwrap_or_default();
                by_tag.entry(tag).or_default().push(format!(
                    "<li><code>{} {}</code> {}{scope}</li>",
                    method.to_uppercase(),
                    escape(path),
                    escape(summary)
                ));
            }
        }
    }
    let title = escape(doc["info"]["title"].as_str().unwrap_or("API"));
    let mut page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}\
         code{{font-size:14px}}li{{margin:.2rem 0}}</style></head><body><h1>{title}</h1>\
         <p>{}</p><p>The full description, for clients and code generators: \
         <a href=\"/api/openapi.json\">/api/openapi.json</a> (OpenAPI 3).</p>",
        escape(doc["info"]["description"].as_str().unwrap_or_default())
    );
    for (tag, operations) in by_tag {
        page.push_str(&format!("<h2>{}</h2><ul>{}</ul>", escape(&tag), operations.concat()));
    }
    page.push_str("</body></html>");
    page
}

async fn file(ops: web::Data<Ops>, path: web::Path<String>) -> Result<HttpResponse, Problem> {
    let key = path.into_inner();
    let public = ops.public_file_prefixes.iter().any(|p| key.starts_with(p.as_str()));
    if !public || key.contains("..") {
        return Err(Problem::not_found("file"));
    }
    let bytes = ops.files.get(&key).await?.ok_or_else(|| Problem::not_found("file"))?;
    let mime = if key.ends_with(".jpg") { "image/jpeg" } else { "application/octet-stream" };
    Ok(HttpResponse::Ok()
        .content_type(mime)
        .insert_header(("Cache-Control", "public, max-age=31536000, immutable"))
        .body(bytes))
}

/// Public files, in a process running a module that serves some
/// (`Ops::public_file_prefixes`); needs `web::Data<Ops>`.
pub fn file_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/files/{path:.*}", web::get().to(file));
}

/// Mounts the operational routes; needs `web::Data<Ops>`.
pub fn ops_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics))
        .route("/api/openapi.json", web::get().to(openapi))
        .route("/api/docs", web::get().to(docs))
        .configure(crate::dead_letters::routes)
        .configure(crate::performance::routes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_page_lists_operations_and_loads_nothing() {
        let doc = r#"{"info":{"title":"T <x>","description":"d"},"paths":{"/a/{id}":{"get":{"tags":["a"],"summary":"Reads <one>"}}}}"#;
        let page = docs_page(doc);
        assert!(page.contains("<code>GET /a/{id}</code> Reads &lt;one&gt;"), "{page}");
        assert!(page.contains("T &lt;x&gt;"));
        assert!(!page.contains("<script") && !page.contains("https://"));
    }
}
