//! The message module's public routes (`/api/v1/conversations/...`) and the
//! internal routes that serve [`Messages`] remotely.

use std::sync::Arc;

use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use futures_util::{StreamExt, TryStreamExt};
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::http::{InternalCaller, Page, PageQuery};
use hometrip_kernel::{ErrorCode, Id, Problem};
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use crate::api::{Attachment, Conversation, Message, MessagePage, Messages};
use crate::host_tools::{NewQuickReply, NewScheduledMessage, QuickReply, ScheduledMessage};
use crate::service::{Actor, Draft, MessageService, StartConversation, Upload, BODY_MAX_CHARS};

fn actor(user: &AuthUser) -> Actor {
    Actor { id: user.id, admin: user.is_admin() }
}

#[utoipa::path(post, path = "/api/v1/conversations", operation_id = "start_conversation", tag = "messages", request_body = StartConversation,
    responses((status = 201, body = Conversation), (status = 200, body = Conversation), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[post("/conversations")]
async fn start(
    svc: web::Data<MessageService>,
    user: AuthUser,
    body: web::Json<StartConversation>,
) -> Result<HttpResponse, Problem> {
    let (conversation, created) = svc.start(user.id, body.into_inner()).await?;
    let mut res = if created { HttpResponse::Created() } else { HttpResponse::Ok() };
    Ok(res.json(conversation))
}

#[utoipa::path(get, path = "/api/v1/conversations", operation_id = "list_conversations", tag = "messages", params(PageQuery),
    responses((status = 200, body = Page<Conversation>)), security(("bearer" = [])))]
#[get("/conversations")]
async fn list(
    svc: web::Data<MessageService>,
    user: AuthUser,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, Problem> {
    let (items, next_cursor) = svc.list(user.id, q.cursor.as_deref(), q.limit()?).await?;
    Ok(HttpResponse::Ok().json(Page { items, next_cursor }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct MessagesQuery {
    /// Messages after this `seq` (0: from the first).
    pub after_seq: Option<i64>,
    pub limit: Option<u32>,
    /// Why an admin reads a conversation they are not part of (recorded).
    pub reason: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "messages",
    params(("id" = Id, Path), MessagesQuery),
    responses((status = 200, body = MessagePage), (status = 404, body = Problem)), security(("bearer" = [])))]
#[get("/conversations/{id}/messages")]
async fn messages_route(
    svc: web::Data<MessageService>,
    user: AuthUser,
    id: web::Path<Id>,
    q: web::Query<MessagesQuery>,
) -> Result<HttpResponse, Problem> {
    messages(svc, user, id, q).await
}

async fn messages(
    svc: web::Data<MessageService>,
    user: AuthUser,
    id: web::Path<Id>,
    q: web::Query<MessagesQuery>,
) -> Result<HttpResponse, Problem> {
    let after = q.after_seq.unwrap_or(0);
    if after < 0 {
        return Err(Problem::field("after_seq", "must not be negative"));
    }
    let limit = match q.limit {
        None => 50,
        Some(n @ 1..=100) => i64::from(n),
        Some(_) => return Err(Problem::field("limit", "must be between 1 and 100")),
    };
    Ok(HttpResponse::Ok().json(svc.messages(actor(&user), *id, after, limit, q.reason.as_deref()).await?))
}

#[utoipa::path(get, path = "/api/v1/admin/conversations/{id}/messages", tag = "admin",
    params(("id" = Id, Path), MessagesQuery),
    responses((status = 200, body = MessagePage), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
#[get("/admin/conversations/{id}/messages")]
async fn admin_messages(
    svc: web::Data<MessageService>,
    user: AuthUser,
    id: web::Path<Id>,
    q: web::Query<MessagesQuery>,
) -> Result<HttpResponse, Problem> {
    // A dispute's read: admins only, with a reason (recorded here and in the audit log).
    user.require_admin()?;
    if q.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(Problem::field("reason", "say why you read this conversation"));
    }
    messages(svc, user, id, q).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendJson {
    #[serde(default)]
    pub body: String,
    pub client_message_id: Option<String>,
    /// Send the host's saved reply, filled for this conversation.
    pub quick_reply_id: Option<Id>,
}

/// JSON `{body, client_message_id?}`, or multipart with `body`,
/// `client_message_id` and `file` parts.
async fn read_send(req: &HttpRequest, payload: web::Payload, svc: &MessageService) -> Result<Draft, Problem> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        return read_multipart(actix_multipart::Multipart::new(req.headers(), payload), svc).await;
    }
    if !content_type.starts_with("application/json") {
        return Err(Problem::new(ErrorCode::UnsupportedMediaType, "send JSON or multipart/form-data"));
    }
    let bytes = payload
        .to_bytes_limited(hometrip_kernel::http::JSON_LIMIT)
        .await
        .map_err(|_| Problem::new(ErrorCode::PayloadTooLarge, "the body is too large"))?
        .map_err(|e| Problem::new(ErrorCode::BadRequest, e.to_string()))?;
    let body: SendJson =
        serde_json::from_slice(&bytes).map_err(|e| Problem::new(ErrorCode::MalformedJson, e.to_string()))?;
    Ok(Draft {
        body: body.body,
        client_message_id: body.client_message_id,
        quick_reply_id: body.quick_reply_id,
        files: Vec::new(),
    })
}

async fn read_multipart(mut parts: actix_multipart::Multipart, svc: &MessageService) -> Result<Draft, Problem> {
    let malformed = |e: actix_multipart::MultipartError| match e {
        actix_multipart::MultipartError::Payload(actix_web::error::PayloadError::Overflow) => {
            Problem::new(ErrorCode::PayloadTooLarge, "the upload is too large")
        }
        other => Problem::new(ErrorCode::BadRequest, format!("malformed multipart body: {other}")),
    };
    let max_file = svc.settings.attachment_max_bytes;
    let max_files = svc.settings.attachments_per_message;
    let mut draft = Draft { body: String::new(), client_message_id: None, quick_reply_id: None, files: Vec::new() };
    while let Some(mut part) = parts.try_next().await.map_err(malformed)? {
        let name = part.name().unwrap_or("").to_owned();
        let cap = match name.as_str() {
            "file" if draft.files.len() == max_files => {
                return Err(Problem::new(
                    ErrorCode::PayloadTooLarge,
                    format!("at most {max_files} attachments per message"),
                ))
            }
            "file" => max_file,
            "body" => BODY_MAX_CHARS * 4,
            "client_message_id" => 400,
            _ => 64 * 1024,
        };
        let mut buf = Vec::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(malformed)?;
            if buf.len() + chunk.len() > cap {
                return Err(if name == "file" {
                    Problem::new(
                        ErrorCode::PayloadTooLarge,
                        format!("each attachment must be at most {} MiB", max_file >> 20),
                    )
                } else {
                    Problem::field(&name, "is too long")
                });
            }
            buf.extend_from_slice(&chunk);
        }
        let text = |buf: Vec<u8>| String::from_utf8(buf).map_err(|_| Problem::field(&name, "must be UTF-8 text"));
        match name.as_str() {
            "file" if !buf.is_empty() => draft.files.push(Upload { bytes: buf }),
            "body" => draft.body = text(buf)?,
            "client_message_id" => draft.client_message_id = Some(text(buf)?),
            _ => {}
        }
    }
    Ok(draft)
}

#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "messages", params(("id" = Id, Path)),
    request_body(content = SendJson, description = "JSON, or multipart with `body` and `file` parts"),
    responses((status = 201, body = Message), (status = 404, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)),
    security(("bearer" = [])))]
#[post("/conversations/{id}/messages")]
async fn send(
    svc: web::Data<MessageService>,
    user: AuthUser,
    id: web::Path<Id>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let input = read_send(&req, payload, &svc).await?;
    let (message, replayed) = svc.send(user.id, *id, input).await?;
    let mut res = HttpResponse::Created();
    if replayed {
        res.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(res.json(message))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadUpTo {
    pub up_to_seq: i64,
}

#[utoipa::path(post, path = "/api/v1/conversations/{id}/read", tag = "messages", params(("id" = Id, Path)),
    request_body = ReadUpTo, responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
#[post("/conversations/{id}/read")]
async fn read(
    svc: web::Data<MessageService>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Json<ReadUpTo>,
) -> Result<HttpResponse, Problem> {
    svc.read(user.id, *id, body.up_to_seq).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/conversations/{id}/attachments/{attachment_id}", tag = "messages",
    params(("id" = Id, Path), ("attachment_id" = Id, Path)),
    responses((status = 200, description = "The file"), (status = 404, body = Problem)), security(("bearer" = [])))]
#[get("/conversations/{id}/attachments/{attachment_id}")]
async fn attachment(
    svc: web::Data<MessageService>,
    user: AuthUser,
    path: web::Path<(Id, Id)>,
) -> Result<HttpResponse, Problem> {
    let (id, attachment_id) = path.into_inner();
    let (content_type, bytes) = svc.attachment(actor(&user), id, attachment_id).await?;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        // Private to the conversation: no shared cache keeps it, and a
        // browser never guesses another type for it.
        .insert_header(("Cache-Control", "private, max-age=3600"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Disposition", "attachment"))
        .body(bytes))
}

#[utoipa::path(get, path = "/api/v1/quick-replies", tag = "messages",
    responses((status = 200, body = Vec<QuickReply>)), security(("bearer" = [])))]
#[get("/quick-replies")]
async fn quick_replies(svc: web::Data<MessageService>, user: AuthUser) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.quick_replies(user.id).await?))
}

#[utoipa::path(post, path = "/api/v1/quick-replies", tag = "messages", request_body = NewQuickReply,
    responses((status = 201, body = QuickReply), (status = 422, body = Problem)), security(("bearer" = [])))]
#[post("/quick-replies")]
async fn add_quick_reply(
    svc: web::Data<MessageService>,
    user: AuthUser,
    body: web::Json<NewQuickReply>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Created().json(svc.add_quick_reply(user.id, body.into_inner()).await?))
}

#[utoipa::path(delete, path = "/api/v1/quick-replies/{id}", tag = "messages", params(("id" = Id, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
#[delete("/quick-replies/{id}")]
async fn delete_quick_reply(
    svc: web::Data<MessageService>,
    user: AuthUser,
    id: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    svc.delete_quick_reply(user.id, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/conversations/{id}/scheduled-messages", tag = "messages", params(("id" = Id, Path)),
    request_body = NewScheduledMessage,
    responses((status = 201, body = ScheduledMessage), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
#[post("/conversations/{id}/scheduled-messages")]
async fn schedule(
    svc: web::Data<MessageService>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Json<NewScheduledMessage>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Created().json(svc.schedule(user.id, *id, body.into_inner()).await?))
}

#[utoipa::path(get, path = "/api/v1/conversations/{id}/scheduled-messages", tag = "messages", params(("id" = Id, Path)),
    responses((status = 200, body = Vec<ScheduledMessage>), (status = 404, body = Problem)), security(("bearer" = [])))]
#[get("/conversations/{id}/scheduled-messages")]
async fn scheduled(svc: web::Data<MessageService>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.scheduled_messages(user.id, *id).await?))
}

#[utoipa::path(delete, path = "/api/v1/conversations/{id}/scheduled-messages/{scheduled_id}", tag = "messages",
    params(("id" = Id, Path), ("scheduled_id" = Id, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)), security(("bearer" = [])))]
#[delete("/conversations/{id}/scheduled-messages/{scheduled_id}")]
async fn cancel_scheduled(
    svc: web::Data<MessageService>,
    user: AuthUser,
    path: web::Path<(Id, Id)>,
) -> Result<HttpResponse, Problem> {
    let (id, scheduled_id) = path.into_inner();
    svc.cancel_scheduled(user.id, id, scheduled_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(start)
        .service(list)
        .service(messages_route)
        .service(admin_messages)
        .service(send)
        .service(read)
        .service(attachment)
        .service(quick_replies)
        .service(add_quick_reply)
        .service(delete_quick_reply)
        .service(schedule)
        .service(scheduled)
        .service(cancel_scheduled);
}

async fn internal_participants(
    _: InternalCaller,
    svc: web::Data<dyn Messages>,
    id: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.participants(*id).await?))
}

#[derive(Debug, Deserialize)]
struct AfterQuery {
    after_seq: i64,
    limit: u32,
}

async fn internal_messages_after(
    _: InternalCaller,
    svc: web::Data<dyn Messages>,
    id: web::Path<Id>,
    q: web::Query<AfterQuery>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.messages_after(*id, q.after_seq, q.limit).await?))
}

async fn internal_counterparts(
    _: InternalCaller,
    svc: web::Data<dyn Messages>,
    user: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.counterparts(*user).await?))
}

/// Mounts `/internal/message`; needs `web::Data<dyn Messages>`.
pub fn internal_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/internal/message")
            .route("/conversations/{id}", web::get().to(internal_participants))
            .route("/conversations/{id}/messages", web::get().to(internal_messages_after))
            .route("/counterparts/{user}", web::get().to(internal_counterparts)),
    );
}

pub fn data(service: &Arc<MessageService>) -> web::Data<MessageService> {
    web::Data::from(Arc::clone(service))
}

#[derive(OpenApi)]
#[openapi(
    paths(
        start,
        list,
        messages_route,
        admin_messages,
        send,
        read,
        attachment,
        quick_replies,
        add_quick_reply,
        delete_quick_reply,
        schedule,
        scheduled,
        cancel_scheduled
    ),
    components(schemas(
        Conversation,
        Message,
        Attachment,
        MessagePage,
        StartConversation,
        SendJson,
        ReadUpTo,
        QuickReply,
        NewQuickReply,
        ScheduledMessage,
        NewScheduledMessage
    ))
)]
pub struct MessageApi;
