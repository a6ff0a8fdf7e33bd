//! Operational routes: liveness, readiness, Prometheus metrics, the OpenAPI
//! document and its docs page, public files, and dead-letter administration.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::cache::Cache;
use hometrip_kernel::db::Db;
use hometrip_kernel::events::EventBus;
use hometrip_kernel::files::FileStore;
use hometrip_kernel::http::constant_time_eq;
use hometrip_kernel::{ErrorCode, Id, Problem};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// What the operational routes read.
pub struct Ops {
    pub db: Db,
    pub cache: Arc<dyn Cache>,
    pub bus: Arc<EventBus>,
    pub files: FileStore,
    pub metrics: PrometheusHandle,
    pub openapi: String,
    /// File prefixes anyone may read (avatars, listing photos); the rest stay private.
    pub public_file_prefixes: Vec<String>,
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
    if failing.is_empty() {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        let problem =
            Problem::new(hometrip_kernel::ErrorCode::ServiceUnavailable, format!("not ready: {}", failing.join(", ")))
                .with("failing", failing);
        actix_web::ResponseError::error_response(&problem)
    }
}

/// Prometheus text. Route names and traffic are the operators' business:
/// unless `server.metrics_public`, the scraper presents `server.metrics_token`
/// as a bearer token (a credential of its own: a scrape config never holds the
/// service credential, which opens the internal routes).
async fn metrics(req: actix_web::HttpRequest, ops: web::Data<Ops>) -> Result<HttpResponse, Problem> {
    if !ops.metrics_public {
        let given = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        if ops.metrics_token.is_empty() || !constant_time_eq(given.as_bytes(), ops.metrics_token.as_bytes()) {
            return Err(Problem::new(
                ErrorCode::Unauthenticated,
                "metrics need server.metrics_token as a bearer token (or server.metrics_public = true)",
            ));
        }
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(ops.metrics.render()))
}

async fn openapi(ops: web::Data<Ops>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(ops.openapi.clone())
}

async fn docs() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>HomeTrip API</title></head>
<body><redoc spec-url="/api/openapi.json"></redoc>
<script src="https://cdn.redoc.ly/redoc/latest/bundles/redoc.standalone.js"></script>
<noscript>The API description is at <a href="/api/openapi.json">/api/openapi.json</a>.</noscript></body></html>"#,
    )
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
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(bytes))
}

async fn dead_letters(ops: web::Data<Ops>, user: AuthUser) -> Result<HttpResponse, Problem> {
    user.require_admin()?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": ops.bus.dead_letters(100).await? })))
}

async fn replay(ops: web::Data<Ops>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    user.require_admin()?;
    let delivered = ops.bus.replay(*id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "delivered": delivered })))
}

/// Mounts the operational routes; needs `web::Data<Ops>`.
pub fn ops_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics))
        .route("/api/openapi.json", web::get().to(openapi))
        .route("/api/docs", web::get().to(docs))
        .route("/files/{path:.*}", web::get().to(file))
        .route("/api/v1/admin/events/dead-letters", web::get().to(dead_letters))
        .route("/api/v1/admin/events/dead-letters/{id}/replay", web::post().to(replay));
}
