//! The admin module's routes: the audit log and its verification.

use std::sync::Arc;

use actix_web::{get, web, HttpResponse};
use chrono::{NaiveDate, TimeZone as _};
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::http::Page;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{Id, Problem};
use serde::Deserialize;
use utoipa::OpenApi;

use crate::domain::Verdict;
use crate::service::{AdminService, AuditEntry};
use crate::store::AuditFilter;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// The admin who acted.
    pub actor: Option<Id>,
    /// An action as recorded: `POST /api/v1/admin/users/{id}/suspend`.
    pub action: Option<String>,
    /// From this instant or date (inclusive).
    pub from: Option<String>,
    /// Until this instant or date (exclusive).
    pub to: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// An RFC 3339 instant, or a date (its midnight, UTC).
fn instant_param(field: &str, value: &str) -> Result<Instant, Problem> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(Instant(t.with_timezone(&chrono::Utc)));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Instant(chrono::Utc.from_utc_datetime(&t)))
        .ok_or_else(|| Problem::field(field, "an RFC 3339 instant or a YYYY-MM-DD date"))
}

#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", params(AuditQuery),
    responses((status = 200, body = Page<AuditEntry>), (status = 403, body = Problem)), security(("bearer" = [])))]
#[get("/admin/audit")]
async fn audit(
    svc: web::Data<AdminService>,
    user: AuthUser,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, Problem> {
    user.require_admin()?;
    let limit = match q.limit {
        None => 50,
        Some(n @ 1..=200) => i64::from(n),
        Some(_) => return Err(Problem::field("limit", "must be between 1 and 200")),
    };
    let filter = AuditFilter {
        actor: q.actor,
        action: q.action.clone().filter(|a| !a.is_empty()),
        from: q.from.as_deref().map(|v| instant_param("from", v)).transpose()?,
        to: q.to.as_deref().map(|v| instant_param("to", v)).transpose()?,
        before_seq: q
            .cursor
            .as_deref()
            .map(|c| c.parse::<i64>().map_err(|_| Problem::field("cursor", "not a valid cursor")))
            .transpose()?,
    };
    let (items, next_cursor) = svc.search(&filter, limit).await?;
    Ok(HttpResponse::Ok().json(Page { items, next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/admin/audit/verify", tag = "admin",
    responses((status = 200, body = Verdict), (status = 403, body = Problem)), security(("bearer" = [])))]
#[get("/admin/audit/verify")]
async fn verify(svc: web::Data<AdminService>, user: AuthUser) -> Result<HttpResponse, Problem> {
    user.require_admin()?;
    Ok(HttpResponse::Ok().json(svc.verify().await?))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(audit).service(verify);
}

pub fn data(service: &Arc<AdminService>) -> web::Data<AdminService> {
    web::Data::from(Arc::clone(service))
}

#[derive(OpenApi)]
#[openapi(paths(audit, verify), components(schemas(AuditEntry, Verdict)))]
pub struct AdminApi;
