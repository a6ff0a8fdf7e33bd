//! The listing module's public routes (`/api/v1/listings/...`, `/api/v1/amenities`)
//! and the internal routes that serve [`Listings`] remotely.

use std::sync::Arc;

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{delete, get, patch, post, put, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::http::{read_multipart_files, InternalCaller, PublicUrl};
use hometrip_kernel::{Id, Problem};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::api::{CalendarDay, CalendarImport, Listing, Listings, Photo, Quote, Rate, TermsPatch};
use crate::service::{Amenity, CalendarRangeInput, ExportLink, ListingService, Removal, SyncResult, Viewer};

fn viewer(user: &AuthUser) -> Viewer {
    Viewer { id: user.id, admin: user.is_admin() }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PhotoList {
    pub photos: Vec<Photo>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarDays {
    pub days: Vec<CalendarDay>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarEdit {
    pub ranges: Vec<CalendarRangeInput>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CalendarQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct QuoteQuery {
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub guests: Option<u32>,
    /// `standard` (default) or `non_refundable`.
    pub rate: Option<Rate>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AmenityList {
    pub items: Vec<Amenity>,
}

#[utoipa::path(post, path = "/api/v1/listings", operation_id = "create_listing", tag = "listings", request_body = TermsPatch,
    responses((status = 201, body = Listing), (status = 422, body = Problem)), security(("bearer" = [])))]
#[post("/listings")]
async fn create(
    svc: web::Data<ListingService>,
    user: AuthUser,
    body: web::Json<TermsPatch>,
) -> Result<HttpResponse, Problem> {
    let listing = svc.create(user.id, &body).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/listings/{}", listing.id)))
        .json(listing))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListingList {
    pub items: Vec<Listing>,
}

/// The caller's own listings in every status (drafts, unlisted...), newest first.
#[utoipa::path(get, path = "/api/v1/listings", tag = "listings",
    responses((status = 200, body = ListingList), (status = 401, body = Problem)), security(("bearer" = [])))]
#[get("/listings")]
async fn mine(svc: web::Data<ListingService>, user: AuthUser) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(ListingList { items: svc.of_host(user.id).await? }))
}

/// A listing. Its host, admins and guests with a confirmed booking get the
/// street address and exact `location`; everyone else gets the city,
/// neighbourhood and country, and `location` is the approximate point (the
/// exact one moved by a stable 150–450 m offset, as `approximate_location`).
#[utoipa::path(get, path = "/api/v1/listings/{id}", tag = "listings", params(("id" = Id, Path)),
    responses((status = 200, body = Listing), (status = 404, body = Problem)))]
#[get("/listings/{id}")]
async fn show(
    svc: web::Data<ListingService>,
    user: Option<AuthUser>,
    id: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    // The body depends on who asks: no cache may hand one caller's to another.
    Ok(HttpResponse::Ok()
        .insert_header((header::VARY, "Authorization"))
        .json(svc.get(*id, user.as_ref().map(viewer)).await?))
}

#[utoipa::path(patch, path = "/api/v1/listings/{id}", tag = "listings", params(("id" = Id, Path)), request_body = TermsPatch,
    responses((status = 200, body = Listing), (status = 403, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
#[patch("/listings/{id}")]
async fn update(
    svc: web::Data<ListingService>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Json<TermsPatch>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.update(*id, viewer(&user), &body).await?))
}

#[utoipa::path(delete, path = "/api/v1/listings/{id}", tag = "listings", params(("id" = Id, Path)),
    responses((status = 204, description = "deleted"), (status = 200, description = "deactivated: future stays are booked"), (status = 403, body = Problem)),
    security(("bearer" = [])))]
#[delete("/listings/{id}")]
async fn remove(svc: web::Data<ListingService>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    Ok(match svc.delete(*id, viewer(&user)).await? {
        Removal::Deleted => HttpResponse::NoContent().finish(),
        Removal::Deactivated => HttpResponse::Ok().json(serde_json::json!({"id": *id, "status": "deactivated"})),
    })
}

#[utoipa::path(post, path = "/api/v1/listings/{id}/photos", tag = "listings", params(("id" = Id, Path)),
    request_body(content_type = "multipart/form-data", content = String),
    responses((status = 201, body = PhotoList), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[post("/listings/{id}/photos")]
async fn photos(
    svc: web::Data<ListingService>,
    user: AuthUser,
    id: web::Path<Id>,
    payload: Multipart,
) -> Result<HttpResponse, Problem> {
    // Who may upload and how many files fit are known before a byte is read.
    let room = svc.photo_room(*id, viewer(&user)).await?;
    let files = read_multipart_files(payload, "file", svc.settings.photo_max_bytes, room).await?;
    Ok(HttpResponse::Created().json(PhotoList { photos: svc.add_photos(*id, viewer(&user), files).await? }))
}

#[utoipa::path(post, path = "/api/v1/listings/{id}/publish", tag = "listings", params(("id" = Id, Path)),
    responses((status = 200, body = Listing), (status = 422, body = Problem)), security(("bearer" = [])))]
#[post("/listings/{id}/publish")]
async fn publish(svc: web::Data<ListingService>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.publish(*id, viewer(&user)).await?))
}

#[utoipa::path(post, path = "/api/v1/listings/{id}/unlist", tag = "listings", params(("id" = Id, Path)),
    responses((status = 200, body = Listing), (status = 409, body = Problem)), security(("bearer" = [])))]
#[post("/listings/{id}/unlist")]
async fn unlist(svc: web::Data<ListingService>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.unlist(*id, viewer(&user)).await?))
}

#[utoipa::path(get, path = "/api/v1/listings/{id}/calendar", tag = "listings", params(("id" = Id, Path), CalendarQuery),
    responses((status = 200, body = CalendarDays), (status = 422, body = Problem)))]
#[get("/listings/{id}/calendar")]
async fn calendar(
    svc: web::Data<ListingService>,
    user: Option<AuthUser>,
    id: web::Path<Id>,
    q: web::Query<CalendarQuery>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok()
        .json(CalendarDays { days: svc.calendar(*id, user.as_ref().map(viewer), q.from, q.to).await? }))
}

#[utoipa::path(put, path = "/api/v1/listings/{id}/calendar", tag = "listings", params(("id" = Id, Path)), request_body = CalendarEdit,
    responses((status = 200, body = CalendarDays), (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
#[put("/listings/{id}/calendar")]
async fn edit_calendar(
    svc: web::Data<ListingService>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Json<CalendarEdit>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(CalendarDays { days: svc.edit_calendar(*id, viewer(&user), &body.ranges).await? }))
}

#[utoipa::path(get, path = "/api/v1/listings/{id}/quote", operation_id = "quote_listing", tag = "listings", params(("id" = Id, Path), QuoteQuery),
    responses((status = 200, body = Quote), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[get("/listings/{id}/quote")]
async fn quote(
    svc: web::Data<ListingService>,
    user: Option<AuthUser>,
    id: web::Path<Id>,
    q: web::Query<QuoteQuery>,
) -> Result<HttpResponse, Problem> {
    let guests = q.guests.unwrap_or(1);
    Ok(HttpResponse::Ok().json(
        svc.quote_for(*id, user.as_ref().map(viewer), q.check_in, q.check_out, guests, q.rate.unwrap_or_default())
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TokenQuery {
    pub token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewImport {
    pub url: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportList {
    pub items: Vec<CalendarImport>,
}

#[utoipa::path(get, path = "/api/v1/listings/{id}/calendar.ics", tag = "listings", params(("id" = Id, Path), TokenQuery),
    responses((status = 200, content_type = "text/calendar", body = String), (status = 404, body = Problem)))]
#[get("/listings/{id}/calendar.ics")]
async fn export_ics(
    svc: web::Data<ListingService>,
    user: Option<AuthUser>,
    id: web::Path<Id>,
    q: web::Query<TokenQuery>,
) -> Result<HttpResponse, Problem> {
    let (ics, _) = svc.export_ics(*id, user.as_ref().map(viewer), q.token.as_deref()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/calendar; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "private, max-age=300"))
        .body(ics))
}

#[utoipa::path(get, path = "/api/v1/listings/{id}/calendar/export", tag = "listings", params(("id" = Id, Path)),
    responses((status = 200, body = ExportLink)), security(("bearer" = [])))]
#[get("/listings/{id}/calendar/export")]
async fn export_link(
    svc: web::Data<ListingService>,
    base: web::Data<PublicUrl>,
    user: AuthUser,
    id: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.export_link(*id, viewer(&user), &base.0).await?))
}

#[utoipa::path(post, path = "/api/v1/listings/{id}/calendar/export/rotate", tag = "listings", params(("id" = Id, Path)),
    responses((status = 200, body = ExportLink)), security(("bearer" = [])))]
#[post("/listings/{id}/calendar/export/rotate")]
async fn rotate_export(
    svc: web::Data<ListingService>,
    base: web::Data<PublicUrl>,
    user: AuthUser,
    id: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.rotate_export_link(*id, viewer(&user), &base.0).await?))
}

#[utoipa::path(post, path = "/api/v1/listings/{id}/calendar/imports", tag = "listings", params(("id" = Id, Path)), request_body = NewImport,
    responses((status = 201, body = CalendarImport), (status = 422, body = Problem)), security(("bearer" = [])))]
#[post("/listings/{id}/calendar/imports")]
async fn add_import(
    svc: web::Data<ListingService>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Json<NewImport>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Created().json(svc.add_import(*id, viewer(&user), &body.url, &body.name).await?))
}

#[utoipa::path(get, path = "/api/v1/listings/{id}/calendar/imports", tag = "listings", params(("id" = Id, Path)),
    responses((status = 200, body = ImportList)), security(("bearer" = [])))]
#[get("/listings/{id}/calendar/imports")]
async fn list_imports(
    svc: web::Data<ListingService>,
    user: AuthUser,
    id: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(ImportList { items: svc.imports(*id, viewer(&user)).await? }))
}

#[utoipa::path(delete, path = "/api/v1/listings/{id}/calendar/imports/{import_id}", tag = "listings",
    params(("id" = Id, Path), ("import_id" = Id, Path)), responses((status = 204)), security(("bearer" = [])))]
#[delete("/listings/{id}/calendar/imports/{import_id}")]
async fn delete_import(
    svc: web::Data<ListingService>,
    user: AuthUser,
    path: web::Path<(Id, Id)>,
) -> Result<HttpResponse, Problem> {
    let (id, import_id) = path.into_inner();
    svc.delete_import(id, viewer(&user), import_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/listings/{id}/calendar/imports/{import_id}/sync", tag = "listings",
    params(("id" = Id, Path), ("import_id" = Id, Path)),
    responses((status = 200, body = SyncResult), (status = 502, body = Problem)), security(("bearer" = [])))]
#[post("/listings/{id}/calendar/imports/{import_id}/sync")]
async fn sync_import(
    svc: web::Data<ListingService>,
    user: AuthUser,
    path: web::Path<(Id, Id)>,
) -> Result<HttpResponse, Problem> {
    let (id, import_id) = path.into_inner();
    Ok(HttpResponse::Ok().json(svc.sync_import_now(id, viewer(&user), import_id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhotoOrder {
    pub photo_ids: Vec<Id>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhotoCaption {
    pub caption: String,
}

#[utoipa::path(put, path = "/api/v1/listings/{id}/photos/order", tag = "listings", params(("id" = Id, Path)), request_body = PhotoOrder,
    responses((status = 200, body = Listing), (status = 422, body = Problem)), security(("bearer" = [])))]
#[put("/listings/{id}/photos/order")]
async fn order_photos(
    svc: web::Data<ListingService>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Json<PhotoOrder>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.order_photos(*id, viewer(&user), &body.photo_ids).await?))
}

#[utoipa::path(patch, path = "/api/v1/listings/{id}/photos/{photo_id}", tag = "listings",
    params(("id" = Id, Path), ("photo_id" = Id, Path)), request_body = PhotoCaption,
    responses((status = 200, body = Photo), (status = 404, body = Problem)), security(("bearer" = [])))]
#[patch("/listings/{id}/photos/{photo_id}")]
async fn caption_photo(
    svc: web::Data<ListingService>,
    user: AuthUser,
    path: web::Path<(Id, Id)>,
    body: web::Json<PhotoCaption>,
) -> Result<HttpResponse, Problem> {
    let (id, photo_id) = path.into_inner();
    Ok(HttpResponse::Ok().json(svc.caption_photo(id, viewer(&user), photo_id, &body.caption).await?))
}

#[utoipa::path(delete, path = "/api/v1/listings/{id}/photos/{photo_id}", tag = "listings",
    params(("id" = Id, Path), ("photo_id" = Id, Path)), responses((status = 204), (status = 409, body = Problem)),
    security(("bearer" = [])))]
#[delete("/listings/{id}/photos/{photo_id}")]
async fn delete_photo(
    svc: web::Data<ListingService>,
    user: AuthUser,
    path: web::Path<(Id, Id)>,
) -> Result<HttpResponse, Problem> {
    let (id, photo_id) = path.into_inner();
    svc.delete_photo(id, viewer(&user), photo_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AdminFindQuery {
    /// Part of the title, in any case (every listing when absent).
    #[serde(default)]
    pub q: String,
    /// `suspended` for the listings taken down only.
    pub status: Option<String>,
}

/// Admins: listings in any status, newest first (at most 50).
#[utoipa::path(get, path = "/api/v1/admin/listings", tag = "admin", params(AdminFindQuery),
    responses((status = 200, body = ListingList), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[get("/admin/listings")]
async fn admin_find(
    svc: web::Data<ListingService>,
    user: AuthUser,
    q: web::Query<AdminFindQuery>,
) -> Result<HttpResponse, Problem> {
    let suspended_only = match q.status.as_deref() {
        None | Some("") => false,
        Some("suspended") => true,
        Some(_) => return Err(Problem::field("status", "suspended, or absent")),
    };
    Ok(HttpResponse::Ok().json(ListingList { items: svc.find_for_admin(viewer(&user), &q.q, suspended_only).await? }))
}

#[utoipa::path(post, path = "/api/v1/admin/listings/{id}/suspend", tag = "admin", params(("id" = Id, Path)),
    responses((status = 200, body = Listing), (status = 403, body = Problem)), security(("bearer" = [])))]
#[post("/admin/listings/{id}/suspend")]
async fn suspend(svc: web::Data<ListingService>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.moderate(*id, viewer(&user), true).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/listings/{id}/reinstate", tag = "admin", params(("id" = Id, Path)),
    responses((status = 200, body = Listing), (status = 403, body = Problem), (status = 409, body = Problem)), security(("bearer" = [])))]
#[post("/admin/listings/{id}/reinstate")]
async fn reinstate(svc: web::Data<ListingService>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.moderate(*id, viewer(&user), false).await?))
}

#[utoipa::path(get, path = "/api/v1/amenities", tag = "listings", responses((status = 200, body = AmenityList)))]
#[get("/amenities")]
async fn amenities(req: HttpRequest) -> HttpResponse {
    let lang = req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("en");
    let locale = if lang.trim_start().to_ascii_lowercase().starts_with("fr") { "fr" } else { "en" };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_LANGUAGE, locale))
        .insert_header((header::VARY, "Accept-Language"))
        .json(AmenityList { items: ListingService::amenities(locale) })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(create)
        .service(mine)
        .service(show)
        .service(update)
        .service(remove)
        .service(photos)
        .service(order_photos)
        .service(caption_photo)
        .service(delete_photo)
        .service(admin_find)
        .service(suspend)
        .service(reinstate)
        .service(publish)
        .service(unlist)
        .service(export_ics)
        .service(export_link)
        .service(rotate_export)
        .service(add_import)
        .service(list_imports)
        .service(delete_import)
        .service(sync_import)
        .service(calendar)
        .service(edit_calendar)
        .service(quote)
        .service(amenities);
}

#[derive(Deserialize)]
struct InternalQuote {
    check_in: NaiveDate,
    check_out: NaiveDate,
    guests: u32,
    rate: Option<Rate>,
}

async fn internal_listing(
    _: InternalCaller,
    svc: web::Data<dyn Listings>,
    id: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.listing(*id).await?))
}

async fn internal_quote(
    _: InternalCaller,
    svc: web::Data<dyn Listings>,
    id: web::Path<Id>,
    q: web::Query<InternalQuote>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.quote(*id, q.check_in, q.check_out, q.guests, q.rate.unwrap_or_default()).await?))
}

#[derive(Deserialize)]
struct InternalRange {
    from: NaiveDate,
    to: NaiveDate,
}

#[derive(Deserialize)]
struct InternalPage {
    after: Option<Id>,
    limit: u32,
}

async fn internal_taken(
    _: InternalCaller,
    svc: web::Data<dyn Listings>,
    id: web::Path<Id>,
    q: web::Query<InternalRange>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.taken_nights(*id, q.from, q.to).await?))
}

async fn internal_blocked(
    _: InternalCaller,
    svc: web::Data<dyn Listings>,
    id: web::Path<Id>,
    q: web::Query<InternalRange>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.blocked_nights(*id, q.from, q.to).await?))
}

#[derive(Deserialize)]
struct InternalTakenMany {
    ids: Vec<Id>,
    from: NaiveDate,
    to: NaiveDate,
}

async fn internal_taken_many(
    _: InternalCaller,
    svc: web::Data<dyn Listings>,
    body: web::Json<InternalTakenMany>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.taken_nights_of(&body.ids, body.from, body.to).await?))
}

async fn internal_published(
    _: InternalCaller,
    svc: web::Data<dyn Listings>,
    q: web::Query<InternalPage>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.published(q.after, q.limit).await?))
}

#[derive(Deserialize)]
struct InternalIds {
    ids: Vec<Id>,
}

async fn internal_listings_of(
    _: InternalCaller,
    svc: web::Data<dyn Listings>,
    body: web::Json<InternalIds>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.listings_of(&body.ids).await?))
}

/// Mounts `/internal/listing`; needs `web::Data<dyn Listings>`.
pub fn internal_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/internal/listing")
            .route("/listings/{id}", web::get().to(internal_listing))
            .route("/listings/{id}/quote", web::get().to(internal_quote))
            .route("/listings/{id}/taken", web::get().to(internal_taken))
            .route("/listings/{id}/blocked", web::get().to(internal_blocked))
            .route("/published", web::get().to(internal_published))
            .route("/taken", web::post().to(internal_taken_many))
            .route("/of", web::post().to(internal_listings_of)),
    );
}

pub fn data(service: &Arc<ListingService>) -> web::Data<ListingService> {
    web::Data::from(Arc::clone(service))
}

#[derive(OpenApi)]
#[openapi(
    paths(
        create,
        mine,
        show,
        update,
        remove,
        photos,
        order_photos,
        caption_photo,
        delete_photo,
        publish,
        unlist,
        calendar,
        edit_calendar,
        quote,
        amenities,
        export_ics,
        export_link,
        rotate_export,
        add_import,
        list_imports,
        delete_import,
        sync_import,
        admin_find,
        suspend,
        reinstate
    ),
    components(schemas(
        Listing,
        ListingList,
        Photo,
        CalendarDay,
        Quote,
        TermsPatch,
        CalendarEdit,
        CalendarRangeInput,
        Amenity,
        CalendarImport,
        NewImport,
        ExportLink,
        SyncResult,
        PhotoOrder,
        PhotoCaption
    ))
)]
pub struct ListingApi;
