//! The search module's public routes: `/api/v1/search/...`, similar listings,
//! and the admin rebuild.

use actix_web::{get, post, web, HttpResponse};
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::{Id, Problem};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::api::{Facets, GeoPoint, PriceBucket, Search, SearchHit, SearchParams, SearchResults, Suggestion};
use crate::service::SearchService;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AutocompleteQuery {
    pub q: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestionList {
    pub suggestions: Vec<Suggestion>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SimilarList {
    pub items: Vec<SearchHit>,
}

#[utoipa::path(get, path = "/api/v1/search/listings", tag = "search", params(SearchParams),
    responses((status = 200, body = SearchResults), (status = 422, body = Problem)))]
#[get("/search/listings")]
async fn search(svc: web::Data<SearchService>, params: web::Query<SearchParams>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(Search::search(&**svc, &params).await?))
}

#[utoipa::path(get, path = "/api/v1/search/autocomplete", tag = "search", params(AutocompleteQuery),
    responses((status = 200, body = SuggestionList), (status = 422, body = Problem)))]
#[get("/search/autocomplete")]
async fn autocomplete(
    svc: web::Data<SearchService>,
    q: web::Query<AutocompleteQuery>,
) -> Result<HttpResponse, Problem> {
    let suggestions = svc.autocomplete(q.q.as_deref().unwrap_or_default()).await?;
    Ok(HttpResponse::Ok().json(SuggestionList { suggestions }))
}

#[utoipa::path(get, path = "/api/v1/listings/{id}/similar", tag = "search", params(("id" = Id, Path)),
    responses((status = 200, body = SimilarList), (status = 404, body = Problem)))]
#[get("/listings/{id}/similar")]
async fn similar(svc: web::Data<SearchService>, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(SimilarList { items: svc.similar(*id).await? }))
}

#[utoipa::path(post, path = "/api/v1/admin/search/reindex", tag = "admin",
    responses((status = 200), (status = 403, body = Problem)), security(("bearer" = [])))]
#[post("/admin/search/reindex")]
async fn reindex(svc: web::Data<SearchService>, user: AuthUser) -> Result<HttpResponse, Problem> {
    user.require_admin()?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "indexed": svc.reindex().await? })))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(search).service(autocomplete).service(similar).service(reindex);
}

#[derive(OpenApi)]
#[openapi(
    paths(search, autocomplete, similar, reindex),
    components(schemas(
        SearchResults,
        SearchHit,
        GeoPoint,
        Facets,
        PriceBucket,
        Suggestion,
        SuggestionList,
        SimilarList
    ))
)]
pub struct SearchApi;
