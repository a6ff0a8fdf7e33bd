//! `/api/v1/api-keys` (a signed-in user's keys; the edge refuses keys
//! here), the admin's `/api/v1/admin/.../api-keys`, and the internal routes
//! the edges of other processes check keys through.

use actix_web::{delete, get, post, web, HttpResponse};
use hometrip_kernel::api_keys::{KeyAuthority, KeyGrant, KeyUse};
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::http::InternalCaller;
use hometrip_kernel::{Id, Problem};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AuthWeb;
use crate::api::{ApiKey, ApiKeys, IssuedApiKey, NewApiKey};

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKey>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// Minutes the old key keeps working (default 60, 0 to stop it now).
    #[serde(default)]
    pub grace_minutes: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeReason {
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/api-keys", operation_id = "create_api_key", tag = "api-keys", request_body = NewApiKey,
    responses((status = 201, body = IssuedApiKey), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[post("/api-keys")]
async fn create(web: web::Data<AuthWeb>, user: AuthUser, body: web::Json<NewApiKey>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Created().json(ApiKeys::create(&*web.service, &user, &body).await?))
}

#[utoipa::path(get, path = "/api/v1/api-keys", operation_id = "list_api_keys", tag = "api-keys",
    responses((status = 200, body = ApiKeyList), (status = 401, body = Problem)), security(("bearer" = [])))]
#[get("/api-keys")]
async fn list(web: web::Data<AuthWeb>, user: AuthUser) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(ApiKeyList { items: ApiKeys::list(&*web.service, &user).await? }))
}

#[utoipa::path(post, path = "/api/v1/api-keys/{id}/rotate", tag = "api-keys", params(("id" = Id, Path)),
    request_body(content = RotateRequest, description = "optional"),
    responses((status = 201, body = IssuedApiKey), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[post("/api-keys/{id}/rotate")]
async fn rotate(
    web: web::Data<AuthWeb>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    // The body is optional: none (or `{}`) takes the default grace period.
    let request: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Problem::new(hometrip_kernel::ErrorCode::MalformedJson, format!("body: {e}")))?
    };
    let grace = request.grace_minutes;
    Ok(HttpResponse::Created().json(ApiKeys::rotate(&*web.service, &user, *id, grace).await?))
}

#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", params(("id" = Id, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
#[delete("/api-keys/{id}")]
async fn revoke(web: web::Data<AuthWeb>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    ApiKeys::revoke(&*web.service, &user, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/admin/users/{id}/api-keys", tag = "admin", params(("id" = Id, Path)),
    responses((status = 200, body = ApiKeyList), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
#[get("/admin/users/{id}/api-keys")]
async fn admin_list(web: web::Data<AuthWeb>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(ApiKeyList { items: ApiKeys::keys_of(&*web.service, &user, *id).await? }))
}

#[utoipa::path(post, path = "/api/v1/admin/api-keys/{id}/revoke", tag = "admin", params(("id" = Id, Path)),
    request_body = RevokeReason,
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[post("/admin/api-keys/{id}/revoke")]
async fn admin_revoke(
    web: web::Data<AuthWeb>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Json<RevokeReason>,
) -> Result<HttpResponse, Problem> {
    ApiKeys::revoke_any(&*web.service, &user, *id, &body.reason).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(create).service(list).service(rotate).service(revoke).service(admin_list).service(admin_revoke);
}

// ---- internal: the edges of other processes

/// The presented key (never in a log line).
#[derive(Deserialize, Serialize)]
pub struct PresentedKey {
    pub key: String,
}

#[derive(Deserialize, Serialize)]
pub struct KeyUses {
    pub used: Vec<KeyUse>,
}

async fn internal_authenticate(
    _: InternalCaller,
    web: web::Data<AuthWeb>,
    body: web::Json<PresentedKey>,
) -> Result<web::Json<KeyGrant>, Problem> {
    Ok(web::Json(web.service.authenticate(&body.key).await?))
}

async fn internal_used(
    _: InternalCaller,
    web: web::Data<AuthWeb>,
    body: web::Json<KeyUses>,
) -> Result<HttpResponse, Problem> {
    web.service.record_use(&body.used).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn internal_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api-keys/authenticate", web::post().to(internal_authenticate))
        .route("/api-keys/used", web::post().to(internal_used));
}
