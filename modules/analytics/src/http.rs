//! The analytics module's routes: client events in, the host's figures
//! (JSON and CSV) and the operators' overview out.

use std::sync::Arc;

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use hometrip_kernel::auth_context::{verify_request, AuthUser};
use hometrip_kernel::http::{client_ip, TrustedProxies};
use hometrip_kernel::Problem;
use serde::Deserialize;
use utoipa::OpenApi;

use crate::domain::{ClientEvent, Figures};
use crate::reports::{Funnel, HostSummary, MonthFigures, Overview, PeriodQuery};
use crate::service::{Accepted, AnalyticsService, Batch, Sender};

pub struct AnalyticsWeb {
    pub service: Arc<AnalyticsService>,
    pub trusted_proxies: TrustedProxies,
}

#[utoipa::path(post, path = "/api/v1/analytics/events", tag = "analytics", request_body = Batch,
    responses((status = 202, body = Accepted), (status = 413, body = Problem), (status = 422, body = Problem),
        (status = 429, body = Problem)))]
#[post("/analytics/events")]
async fn events(
    web: web::Data<AnalyticsWeb>,
    req: HttpRequest,
    body: web::Json<Batch>,
) -> Result<HttpResponse, Problem> {
    // Anonymous calls are welcome; a signed-in caller is recorded as such.
    let user = verify_request(&req).await.map(|u| u.id);
    let ip = client_ip(&req, &web.trusted_proxies);
    let user_agent = req.headers().get(actix_web::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let accepted = web.service.ingest(Sender { user, ip: &ip, user_agent }, body.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(accepted))
}

#[utoipa::path(get, path = "/api/v1/analytics/host/summary", tag = "analytics", params(PeriodQuery),
    responses((status = 200, body = HostSummary), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[get("/analytics/host/summary")]
async fn host_summary(
    web: web::Data<AnalyticsWeb>,
    user: AuthUser,
    q: web::Query<PeriodQuery>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(web.service.host_summary(user.id, user.is_admin(), &q).await?))
}

#[utoipa::path(get, path = "/api/v1/analytics/host/summary.csv", tag = "analytics", params(PeriodQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[get("/analytics/host/summary.csv")]
async fn host_csv(
    web: web::Data<AnalyticsWeb>,
    user: AuthUser,
    q: web::Query<PeriodQuery>,
) -> Result<HttpResponse, Problem> {
    let csv = web.service.host_csv(user.id, user.is_admin(), &q).await?;
    let name = format!("hometrip-{}-{}.csv", q.from, q.to);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("content-disposition", format!("attachment; filename=\"{name}\"")))
        .body(csv))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct OverviewQuery {
    pub from: NaiveDate,
    /// The last day (included).
    pub to: NaiveDate,
}

#[utoipa::path(get, path = "/api/v1/admin/analytics/overview", tag = "admin", params(OverviewQuery),
    responses((status = 200, body = Overview), (status = 403, body = Problem)), security(("bearer" = [])))]
#[get("/admin/analytics/overview")]
async fn overview(
    web: web::Data<AnalyticsWeb>,
    user: AuthUser,
    q: web::Query<OverviewQuery>,
) -> Result<HttpResponse, Problem> {
    user.require_admin()?;
    Ok(HttpResponse::Ok().json(web.service.overview(q.from, q.to).await?))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    // `summary.csv` before anything that could take it for a parameter.
    cfg.service(host_csv).service(host_summary).service(events).service(overview);
}

#[derive(OpenApi)]
#[openapi(
    paths(events, host_summary, host_csv, overview),
    components(schemas(Batch, ClientEvent, Accepted, HostSummary, MonthFigures, Figures, Overview, Funnel))
)]
pub struct AnalyticsApi;
