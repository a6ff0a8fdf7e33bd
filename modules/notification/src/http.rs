//! The notification module's routes: the in-app list, preferences, phone
//! verification, push subscriptions, Twilio's callbacks, the admins'
//! preview; and the internal route that serves [`Notifications`] remotely.

use std::sync::Arc;

use actix_web::{delete, get, post, put, web, HttpRequest, HttpResponse};
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::http::{InternalCaller, PageQuery};
use hometrip_kernel::{Id, Problem};
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use crate::api::{Notification, NotificationList, Notifications};
use crate::catalogue::{self, Channels, Text, Vars};
use crate::inbox::{PhoneStatus, PreferencesBody, PushSubscriptionBody, QuietHours, Subscription, SubscriptionKeys};
use crate::service::NotificationService;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only unread ones.
    pub unread: Option<bool>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/notifications", operation_id = "list_notifications", tag = "notifications", params(ListQuery),
    responses((status = 200, body = NotificationList)), security(("bearer" = [])))]
#[get("/notifications")]
async fn list(
    svc: web::Data<NotificationService>,
    user: AuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    let page = PageQuery { limit: q.limit, cursor: q.cursor.clone() };
    Ok(HttpResponse::Ok().json(svc.list(user.id, q.unread.unwrap_or(false), page.cursor_id()?, page.limit()?).await?))
}

#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", tag = "notifications", params(("id" = Id, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
#[post("/notifications/{id}/read")]
async fn read_one(
    svc: web::Data<NotificationService>,
    user: AuthUser,
    id: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    svc.read(user.id, Some(*id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/notifications/read-all", tag = "notifications",
    responses((status = 204)), security(("bearer" = [])))]
#[post("/notifications/read-all")]
async fn read_all(svc: web::Data<NotificationService>, user: AuthUser) -> Result<HttpResponse, Problem> {
    svc.read(user.id, None).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/notifications/preferences", tag = "notifications",
    responses((status = 200, body = PreferencesBody)), security(("bearer" = [])))]
#[get("/notifications/preferences")]
async fn get_preferences(svc: web::Data<NotificationService>, user: AuthUser) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.preferences(user.id).await?))
}

#[utoipa::path(put, path = "/api/v1/notifications/preferences", tag = "notifications", request_body = PreferencesBody,
    responses((status = 200, body = PreferencesBody), (status = 422, body = Problem)), security(("bearer" = [])))]
#[put("/notifications/preferences")]
async fn put_preferences(
    svc: web::Data<NotificationService>,
    user: AuthUser,
    body: web::Json<PreferencesBody>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.set_preferences(user.id, body.into_inner()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneBody {
    /// E.164, e.g. `+33612345678`.
    pub phone: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    pub code: String,
}

/// The caller's number for SMS (null when none is set).
#[utoipa::path(get, path = "/api/v1/users/me/phone", tag = "notifications",
    responses((status = 200, body = Option<PhoneStatus>)), security(("bearer" = [])))]
#[get("/users/me/phone")]
async fn get_phone(svc: web::Data<NotificationService>, user: AuthUser) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.phone_of(user.id).await?))
}

#[utoipa::path(put, path = "/api/v1/users/me/phone", tag = "notifications", request_body = PhoneBody,
    responses((status = 202, body = PhoneStatus), (status = 422, body = Problem), (status = 429, body = Problem)),
    security(("bearer" = [])))]
#[put("/users/me/phone")]
async fn put_phone(
    svc: web::Data<NotificationService>,
    user: AuthUser,
    body: web::Json<PhoneBody>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Accepted().json(svc.set_phone(user.id, &body.phone).await?))
}

#[utoipa::path(post, path = "/api/v1/users/me/phone/verify", tag = "notifications", request_body = CodeBody,
    responses((status = 200, body = PhoneStatus), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[post("/users/me/phone/verify")]
async fn verify_phone(
    svc: web::Data<NotificationService>,
    user: AuthUser,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.verify_phone(user.id, &body.code).await?))
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct PushKey {
    /// Base64url of the uncompressed P-256 public key (`applicationServerKey`).
    pub vapid_public_key: String,
}

#[utoipa::path(get, path = "/api/v1/notifications/push/key", tag = "notifications", responses((status = 200, body = PushKey)))]
#[get("/notifications/push/key")]
async fn push_key(svc: web::Data<NotificationService>) -> HttpResponse {
    HttpResponse::Ok().json(PushKey { vapid_public_key: svc.push_key() })
}

#[utoipa::path(post, path = "/api/v1/notifications/push/subscriptions", tag = "notifications",
    request_body = PushSubscriptionBody, responses((status = 201, body = Subscription), (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[post("/notifications/push/subscriptions")]
async fn subscribe(
    svc: web::Data<NotificationService>,
    user: AuthUser,
    body: web::Json<PushSubscriptionBody>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Created().json(svc.subscribe_push(user.id, body.into_inner()).await?))
}

#[utoipa::path(get, path = "/api/v1/notifications/push/subscriptions", tag = "notifications",
    responses((status = 200, body = Vec<Subscription>)), security(("bearer" = [])))]
#[get("/notifications/push/subscriptions")]
async fn subscriptions(svc: web::Data<NotificationService>, user: AuthUser) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.push_subscriptions(user.id).await?))
}

#[utoipa::path(delete, path = "/api/v1/notifications/push/subscriptions/{id}", tag = "notifications",
    params(("id" = Id, Path)), responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
#[delete("/notifications/push/subscriptions/{id}")]
async fn unsubscribe(
    svc: web::Data<NotificationService>,
    user: AuthUser,
    id: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    svc.unsubscribe_push(user.id, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/notifications/webhooks/twilio", tag = "notifications",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 204), (status = 403, body = Problem)))]
#[post("/notifications/webhooks/twilio")]
async fn twilio(
    svc: web::Data<NotificationService>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|_| Problem::new(hometrip_kernel::ErrorCode::BadRequest, "expected a form-encoded body"))?;
    let signature = req.headers().get("x-twilio-signature").and_then(|v| v.to_str().ok());
    svc.twilio_status(signature, params).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PreviewQuery {
    pub kind: String,
    /// `fr` or `en` (default).
    pub locale: Option<String>,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Preview {
    pub kind: String,
    pub locale: String,
    pub text: Text,
    pub sms: String,
    pub email_html: String,
}

#[utoipa::path(get, path = "/api/v1/admin/notifications/preview", tag = "notifications", params(PreviewQuery),
    responses((status = 200, body = Preview), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[get("/admin/notifications/preview")]
async fn preview(
    svc: web::Data<NotificationService>,
    user: AuthUser,
    q: web::Query<PreviewQuery>,
) -> Result<HttpResponse, Problem> {
    user.require_admin()?;
    if !catalogue::is_kind(&q.kind) || catalogue::is_security(&q.kind) {
        return Err(Problem::field("kind", "not a kind of the catalogue"));
    }
    let locale = if q.locale.as_deref() == Some("fr") { "fr" } else { "en" };
    let vars = Vars {
        who: "Camille".into(),
        listing: "Maison des Lilas".into(),
        dates: "2027-03-12 → 2027-03-15".into(),
        count: 2,
        amount: "412.50 EUR".into(),
        link: "/trips".into(),
    };
    let text = catalogue::render(&q.kind, locale, &vars);
    let url = format!("{}{}", svc.public_url.trim_end_matches('/'), text.link);
    let email = crate::domain::render_notice(&text.title, &text.body, &url, locale);
    Ok(HttpResponse::Ok().json(Preview {
        kind: q.kind.clone(),
        locale: locale.to_owned(),
        sms: catalogue::sms_text(&text, &svc.public_url),
        email_html: email.html,
        text,
    }))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    // Fixed paths before `/notifications/{id}/...`.
    cfg.service(read_all)
        .service(get_preferences)
        .service(get_phone)
        .service(put_preferences)
        .service(push_key)
        .service(subscribe)
        .service(subscriptions)
        .service(unsubscribe)
        .service(twilio)
        .service(list)
        .service(read_one)
        .service(put_phone)
        .service(verify_phone)
        .service(preview);
}

#[derive(Debug, Deserialize)]
struct AfterQuery {
    after: Option<Id>,
    limit: u32,
}

async fn internal_after(
    _: InternalCaller,
    svc: web::Data<dyn Notifications>,
    user: web::Path<Id>,
    q: web::Query<AfterQuery>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.after(*user, q.after, q.limit).await?))
}

/// Mounts `/internal/notification`; needs `web::Data<dyn Notifications>`.
pub fn internal_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/internal/notification").route("/users/{id}/notifications", web::get().to(internal_after)));
}

pub fn data(service: &Arc<NotificationService>) -> web::Data<NotificationService> {
    web::Data::from(Arc::clone(service))
}

#[derive(OpenApi)]
#[openapi(
    paths(
        list,
        read_one,
        read_all,
        get_preferences,
        put_preferences,
        get_phone,
        put_phone,
        verify_phone,
        push_key,
        subscribe,
        unsubscribe,
        twilio,
        preview
    ),
    components(schemas(
        Notification,
        NotificationList,
        PreferencesBody,
        QuietHours,
        Channels,
        PhoneBody,
        CodeBody,
        PhoneStatus,
        PushKey,
        PushSubscriptionBody,
        SubscriptionKeys,
        Subscription,
        Preview,
        Text
    ))
)]
pub struct NotificationApi;
