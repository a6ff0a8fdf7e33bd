//! The user module's public routes (`/api/v1/users/...`, admin user routes)
//! and the internal routes that serve [`Users`] remotely.

use std::sync::Arc;

use actix_multipart::Multipart;
use actix_web::{get, patch, post, put, web, HttpResponse};
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::http::{read_multipart_files, InternalCaller, Page, PageQuery};
use hometrip_kernel::{Id, Problem};
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use crate::api::{ProfilePatch, UserProfile, Users};
use crate::service::{AdminUser, IdentityDecision, Me, PublicProfile, UserService};

#[derive(Debug, Deserialize, ToSchema)]
pub struct IdentityReview {
    pub decision: IdentityDecision,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SearchQuery {
    #[serde(default)]
    pub q: String,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", responses((status = 200, body = Me), (status = 401, body = Problem)),
    security(("bearer" = [])))]
#[get("/users/me")]
async fn me(svc: web::Data<UserService>, user: AuthUser) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.me(user.id).await?))
}

#[utoipa::path(patch, path = "/api/v1/users/me", tag = "users", request_body = ProfilePatch,
    responses((status = 200, body = Me), (status = 422, body = Problem)), security(("bearer" = [])))]
#[patch("/users/me")]
async fn update_me(
    svc: web::Data<UserService>,
    user: AuthUser,
    body: web::Json<ProfilePatch>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.update_me(user.id, body.into_inner()).await?))
}

#[utoipa::path(put, path = "/api/v1/users/me/avatar", tag = "users", request_body(content_type = "multipart/form-data", content = String),
    responses((status = 200, body = Me), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[put("/users/me/avatar")]
async fn put_avatar(svc: web::Data<UserService>, user: AuthUser, payload: Multipart) -> Result<HttpResponse, Problem> {
    let mut files = read_multipart_files(payload, "file", svc.settings.avatar_max_bytes, 1).await?;
    let bytes = files.pop().unwrap_or_default();
    Ok(HttpResponse::Ok().json(svc.set_avatar(user.id, bytes).await?))
}

#[utoipa::path(put, path = "/api/v1/users/me/identity", tag = "users", request_body(content_type = "multipart/form-data", content = String),
    responses((status = 200, body = Me), (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
#[put("/users/me/identity")]
async fn put_identity(
    svc: web::Data<UserService>,
    user: AuthUser,
    payload: Multipart,
) -> Result<HttpResponse, Problem> {
    let mut files = read_multipart_files(payload, "document", svc.settings.document_max_bytes, 1).await?;
    let bytes = files.pop().unwrap_or_default();
    Ok(HttpResponse::Ok().json(svc.submit_identity(user.id, bytes).await?))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = Id, Path)),
    responses((status = 200, body = PublicProfile), (status = 404, body = Problem)))]
#[get("/users/{id}")]
async fn public_profile(svc: web::Data<UserService>, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.public_profile(*id).await?))
}

#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", params(SearchQuery),
    responses((status = 200, body = Page<AdminUser>), (status = 403, body = Problem)), security(("bearer" = [])))]
#[get("/admin/users")]
async fn admin_search(
    svc: web::Data<UserService>,
    user: AuthUser,
    q: web::Query<SearchQuery>,
) -> Result<HttpResponse, Problem> {
    user.require_admin()?;
    let page = PageQuery { limit: q.limit, cursor: q.cursor.clone() };
    Ok(HttpResponse::Ok().json(svc.admin_search(&q.q, page.cursor_id()?, page.limit()?).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/users/{id}/identity", tag = "admin", params(("id" = Id, Path)), request_body = IdentityReview,
    responses((status = 200, body = UserProfile), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
#[post("/admin/users/{id}/identity")]
async fn admin_review_identity(
    svc: web::Data<UserService>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Json<IdentityReview>,
) -> Result<HttpResponse, Problem> {
    user.require_admin()?;
    let body = body.into_inner();
    Ok(HttpResponse::Ok().json(svc.review_identity(*id, body.decision, body.note).await?))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    // `/users/me` before `/users/{id}` so "me" is never parsed as an id.
    cfg.service(me)
        .service(update_me)
        .service(put_avatar)
        .service(put_identity)
        .service(public_profile)
        .service(admin_search)
        .service(admin_review_identity);
}

async fn internal_profile(
    _: InternalCaller,
    svc: web::Data<dyn Users>,
    id: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.profile(*id).await?))
}

#[derive(Deserialize)]
struct IdsBody {
    ids: Vec<Id>,
}

async fn internal_profiles_of(
    _: InternalCaller,
    svc: web::Data<dyn Users>,
    body: web::Json<IdsBody>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.profiles(&body.ids).await?))
}

/// Mounts `/internal/user`; needs `web::Data<dyn Users>`.
pub fn internal_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/internal/user")
            .route("/profiles/of", web::post().to(internal_profiles_of))
            .route("/profiles/{id}", web::get().to(internal_profile)),
    );
}

pub fn data(service: &Arc<UserService>) -> web::Data<UserService> {
    web::Data::from(Arc::clone(service))
}

#[derive(OpenApi)]
#[openapi(
    paths(me, update_me, put_avatar, put_identity, public_profile, admin_search, admin_review_identity),
    components(schemas(Me, PublicProfile, ProfilePatch, AdminUser, UserProfile, IdentityReview))
)]
pub struct UserApi;
