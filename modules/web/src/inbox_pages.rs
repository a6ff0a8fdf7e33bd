//! The inbox: the user's conversations, one conversation with its messages
//! (read receipts, masked contact details), replying, and a guest's first
//! question from a listing's page. Over the message module's `Inbox`, as a
//! participant; names over `Users`, titles over `Listings`.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::{Id, Problem};
use hometrip_message::api::{Conversation, Message};
use serde::Deserialize;

use crate::account_pages::redirect;
use crate::pages::{failed, respond, Chrome, Context};
use crate::trip_pages::{posted, titles, user_or_sign_in, StayForm};
use crate::{format, Web};

/// A conversation as the inbox lists it.
struct ConversationLine {
    id: String,
    with: String,
    about: String,
    preview: String,
    unread: i64,
    when: String,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    page: Chrome,
    conversations: Vec<ConversationLine>,
}

/// A message as a conversation shows it.
struct MessageLine {
    seq: i64,
    mine: bool,
    sender: String,
    paragraphs: Vec<String>,
    when: String,
    masked: bool,
    attachments: Vec<String>,
    /// The other participant has read it (shown on the user's own messages).
    seen: bool,
}

#[derive(Template)]
#[template(path = "conversation.html")]
struct ConversationPage {
    page: Chrome,
    id: String,
    /// The user, for the script telling their messages from the other's.
    me: String,
    with: String,
    listing_id: String,
    about: String,
    messages: Vec<MessageLine>,
    error: Option<String>,
    draft: String,
    /// Makes a double submit send once.
    client_message_id: String,
}

/// Display names of `ids`, each asked once, at the same time.
async fn names(app: &Web, ids: &[Id], ctx: &Context) -> HashMap<Id, String> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    let mut found: HashMap<Id, String> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        match app.users.profiles(chunk).await {
            Ok(profiles) => found.extend(profiles.into_iter().map(|p| (p.id, p.display_name))),
            Err(p) => tracing::warn!(detail = %p.detail, "web: reading the conversations' people failed"),
        }
    }
    let someone = ctx.locale.messages().i.someone;
    ids.into_iter().map(|id| (id, found.remove(&id).unwrap_or_else(|| someone.to_owned()))).collect()
}

fn other(c: &Conversation, me: Id) -> Id {
    c.participants.iter().copied().find(|p| *p != me).unwrap_or(me)
}

/// `GET /inbox`: the user's conversations, the latest first.
pub async fn inbox(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let user = match user_or_sign_in(&ctx, "/inbox") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let found = match app.inbox.conversations(user, None, 50).await {
        Ok(page) => page.items,
        Err(p) => return failed(&req, &app, &ctx, &p),
    };
    let others: Vec<Id> = found.iter().map(|c| other(c, user.id)).collect();
    let listings: Vec<Id> = found.iter().map(|c| c.listing_id).collect();
    let (names, titles) = futures_util::join!(names(&app, &others, &ctx), titles(&app, &listings));
    let conversations = found
        .iter()
        .map(|c| ConversationLine {
            id: c.id.to_string(),
            with: names.get(&other(c, user.id)).cloned().unwrap_or_default(),
            about: titles.get(&c.listing_id).cloned().unwrap_or_default(),
            preview: c.last_message.as_ref().map(|m| m.body.chars().take(120).collect()).unwrap_or_default(),
            unread: c.unread_count,
            when: format::instant(c.last_activity_at, "UTC", ctx.locale),
        })
        .collect();
    let page = InboxPage { page: ctx.chrome(&req, &app, "page_view"), conversations };
    respond(StatusCode::OK, page.render(), &ctx)
}

/// Every message of a conversation, a page at a time (at most 1,000).
async fn all_messages(app: &Web, user: &AuthUser, id: Id) -> Result<(Vec<Message>, i64), Problem> {
    let mut messages = Vec::new();
    let mut their_read = 0;
    let mut after = 0;
    for _ in 0..10 {
        let page = app.inbox.messages(user, id, after, 100).await?;
        their_read =
            page.read_up_to.iter().filter(|(who, _)| **who != user.id.to_string()).map(|(_, s)| *s).max().unwrap_or(0);
        let done = page.next_cursor.is_none();
        after = page.items.last().map_or(after, |m| m.seq);
        messages.extend(page.items);
        if done {
            break;
        }
    }
    Ok((messages, their_read))
}

async fn conversation_page(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    user: &AuthUser,
    raw_id: &str,
    error: Option<(StatusCode, String, String)>,
) -> HttpResponse {
    let not_found = || failed(req, app, ctx, &Problem::not_found("conversation"));
    let Ok(id) = raw_id.parse::<Id>() else { return not_found() };
    let (messages, their_read) = match all_messages(app, user, id).await {
        Ok(found) => found,
        Err(p) if p.status == 404 || p.status == 403 => return not_found(),
        Err(p) => return failed(req, app, ctx, &p),
    };
    // The conversation itself (who, about what) from the user's list.
    let conversation = match app.inbox.conversations(user, None, 100).await {
        Ok(page) => page.items.into_iter().find(|c| c.id == id),
        Err(p) => return failed(req, app, ctx, &p),
    };
    let (with_id, listing_id) =
        conversation.as_ref().map_or((user.id, None), |c| (other(c, user.id), Some(c.listing_id)));
    let people = [with_id, user.id];
    let listings: Vec<Id> = listing_id.into_iter().collect();
    let (names, titles) = futures_util::join!(names(app, &people, ctx), titles(app, &listings));
    // What the user now has seen.
    if let Some(last) = messages.iter().rev().find(|m| m.sender_id != user.id) {
        if conversation.as_ref().is_some_and(|c| c.unread_count > 0) {
            if let Err(p) = app.inbox.mark_read(user, id, last.seq).await {
                tracing::warn!(detail = %p.detail, "web: marking a conversation read failed");
            }
        }
    }
    let i = ctx.locale.messages().i;
    let lines = messages
        .iter()
        .map(|m| MessageLine {
            seq: m.seq,
            mine: m.sender_id == user.id,
            sender: if m.sender_id == user.id {
                i.you.to_owned()
            } else {
                names.get(&m.sender_id).cloned().unwrap_or_else(|| i.someone.to_owned())
            },
            paragraphs: m.body.split('\n').map(str::to_owned).collect(),
            when: format::instant(m.created_at, "UTC", ctx.locale),
            masked: m.masked,
            // This site's own address: the API's wants a bearer token.
            attachments: m
                .attachments
                .iter()
                .map(|a| format!("/inbox/{}/attachments/{}", m.conversation_id, a.id))
                .collect(),
            seen: m.sender_id == user.id && m.seq <= their_read,
        })
        .collect();
    let (status, error, draft) = match error {
        Some((status, error, draft)) => (status, Some(error), draft),
        None => (StatusCode::OK, None, String::new()),
    };
    let page = ConversationPage {
        page: ctx.chrome(req, app, "page_view"),
        id: id.to_string(),
        me: user.id.to_string(),
        with: names.get(&with_id).cloned().unwrap_or_default(),
        listing_id: listing_id.map(|l| l.to_string()).unwrap_or_default(),
        about: listing_id.and_then(|l| titles.get(&l).cloned()).unwrap_or_default(),
        messages: lines,
        error,
        draft,
        client_message_id: Id::new().to_string(),
    };
    respond(status, page.render(), ctx)
}

/// `GET /inbox/{conversation}`: the messages; what arrived is marked read.
pub async fn conversation(req: HttpRequest, app: web::Data<Web>, id: web::Path<String>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let user = match user_or_sign_in(&ctx, req.path()) {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    conversation_page(&req, &app, &ctx, user, &id, None).await
}

#[derive(Deserialize)]
struct MessageForm {
    #[serde(default)]
    body: String,
    #[serde(default)]
    client_message_id: String,
}

/// What a send's problem tells the writer.
fn send_problem(p: &Problem) -> Option<String> {
    match p.status {
        400 | 413 | 415 | 422 | 429 => {
            let fields: Vec<String> = p.errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
            Some(if fields.is_empty() { p.detail.clone() } else { fields.join("; ") })
        }
        _ => None,
    }
}

/// `POST /inbox/{conversation}` as a plain form: sends, then back to the
/// conversation at the message.
pub async fn send(req: HttpRequest, app: web::Data<Web>, id: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let form: MessageForm = match posted(&req, &app, &ctx, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    deliver(&req, &app, &ctx, &id, form, Vec::new()).await
}

/// `POST /inbox/{conversation}` as multipart (the page's form): the reply
/// with its attachments, checked again by the message module.
pub async fn send_with_files(
    req: HttpRequest,
    app: web::Data<Web>,
    id: web::Path<String>,
    payload: actix_multipart::Multipart,
) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let upload = match crate::uploads::read_upload(payload, "file").await {
        Ok(u) => u,
        Err(p) => {
            // Too large or unreadable: said on the conversation, to its participants.
            return match user_or_sign_in(&ctx, req.path()) {
                Ok(user) => {
                    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
                    conversation_page(&req, &app, &ctx, user, &id, Some((status, p.detail, String::new()))).await
                }
                Err(to_sign_in) => *to_sign_in,
            };
        }
    };
    if !app.csrf_ok(&req, &upload.csrf) {
        let m = ctx.locale.messages();
        return crate::pages::say(&req, &app, &ctx, StatusCode::FORBIDDEN, m.form_expired_title, m.form_expired_text);
    }
    let form = MessageForm { body: upload.text("body"), client_message_id: upload.text("client_message_id") };
    deliver(&req, &app, &ctx, &id, form, upload.files).await
}

async fn deliver(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    id: &str,
    form: MessageForm,
    files: Vec<Vec<u8>>,
) -> HttpResponse {
    let user = match user_or_sign_in(ctx, req.path()) {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let Ok(conversation) = id.parse::<Id>() else {
        return failed(req, app, ctx, &Problem::not_found("conversation"));
    };
    let client_message_id: String = form.client_message_id.chars().take(64).collect();
    match app.inbox.send(user, conversation, form.body.trim(), &client_message_id, files).await {
        Ok(m) => redirect(ctx, &format!("/inbox/{conversation}#m{}", m.seq), Vec::new()),
        Err(p) if p.status == 404 || p.status == 403 => failed(req, app, ctx, &Problem::not_found("conversation")),
        Err(p) => match send_problem(&p) {
            Some(error) => {
                let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
                conversation_page(req, app, ctx, user, id, Some((status, error, form.body))).await
            }
            None => failed(req, app, ctx, &p),
        },
    }
}

/// `POST /listings/{id}/contact`: a guest's first question to the host.
pub async fn contact(req: HttpRequest, app: web::Data<Web>, id: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let form: MessageForm = match posted(&req, &app, &ctx, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let Ok(listing_id) = id.parse::<Id>() else {
        return failed(&req, &app, &ctx, &Problem::not_found("listing"));
    };
    let user = match user_or_sign_in(&ctx, &format!("/listings/{listing_id}")) {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    match app.inbox.start(user, listing_id, form.body.trim()).await {
        Ok(c) => redirect(&ctx, &format!("/inbox/{}", c.id), Vec::new()),
        Err(p) if p.status == 404 => failed(&req, &app, &ctx, &p),
        Err(p) => match send_problem(&p) {
            Some(error) => {
                let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
                crate::pages::listing_page(&req, &app, &ctx, listing_id, StayForm::default(), Some((status, error)))
                    .await
            }
            None => failed(&req, &app, &ctx, &p),
        },
    }
}

#[derive(Deserialize)]
struct ReadForm {
    up_to_seq: i64,
}

/// `POST /inbox/{conversation}/read` (the page's script, as messages arrive
/// while it is open): 204.
pub async fn read(req: HttpRequest, app: web::Data<Web>, id: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let form: ReadForm = match posted(&req, &app, &ctx, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let (Some(signed_in), Ok(conversation)) = (ctx.visitor.user.as_ref(), id.parse::<Id>()) else {
        return failed(&req, &app, &ctx, &Problem::not_found("conversation"));
    };
    match app.inbox.mark_read(&signed_in.user, conversation, form.up_to_seq).await {
        Ok(()) => {
            let mut r = HttpResponse::NoContent();
            ctx.set_cookies(&mut r, &[]);
            r.finish()
        }
        Err(p) if p.status == 404 || p.status == 403 => failed(&req, &app, &ctx, &Problem::not_found("conversation")),
        // A position the conversation does not have: said by the status alone (the script ignores it).
        Err(p) if p.status < 500 => {
            let mut r = HttpResponse::build(StatusCode::from_u16(p.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY));
            ctx.set_cookies(&mut r, &[]);
            r.finish()
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

/// `GET /inbox/{conversation}/attachments/{attachment}`: the file, to the
/// conversation's participants (the session's cookie, as any page).
pub async fn attachment(req: HttpRequest, app: web::Data<Web>, path: web::Path<(String, String)>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let user = match user_or_sign_in(&ctx, req.path()) {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let (Ok(conversation), Ok(attachment)) = (path.0.parse::<Id>(), path.1.parse::<Id>()) else {
        return failed(&req, &app, &ctx, &Problem::not_found("attachment"));
    };
    match app.inbox.attachment(user, conversation, attachment).await {
        Ok((content_type, bytes)) => {
            let mut response = HttpResponse::Ok();
            response
                .content_type(content_type)
                // Private to the conversation: no shared cache keeps it, and a
                // browser never guesses another type for it.
                .insert_header(("Cache-Control", "private, max-age=3600"))
                .insert_header(("X-Content-Type-Options", "nosniff"))
                .insert_header(("Content-Disposition", "attachment"));
            ctx.set_cookies(&mut response, &[]);
            response.body(bytes)
        }
        Err(p) if p.status == 404 || p.status == 403 => failed(&req, &app, &ctx, &Problem::not_found("attachment")),
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}
