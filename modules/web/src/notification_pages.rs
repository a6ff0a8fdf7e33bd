//! The user's notifications: the newest first, unread ones marked, each
//! leading where it is about; reading one or all of them. Over the
//! notification module's `NotificationCenter`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use hometrip_kernel::{Id, Problem};

use crate::account_pages::redirect;
use crate::pages::{failed, respond, Chrome, Context};
use crate::session::local_path;
use crate::trip_pages::{posted, user_or_sign_in, NoFields};
use crate::{format, Web};

struct NotificationLine {
    id: String,
    title: String,
    body: String,
    /// This site's path it is about (anything else is dropped).
    link: Option<String>,
    when: String,
    unread: bool,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    page: Chrome,
    items: Vec<NotificationLine>,
    unread_count: i64,
}

/// `GET /notifications`.
pub async fn notifications(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let user = match user_or_sign_in(&ctx, "/notifications") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let list = match app.notifications.list(user, false, None, 50).await {
        Ok(list) => list,
        Err(p) => return failed(&req, &app, &ctx, &p),
    };
    let items = list
        .items
        .into_iter()
        .map(|n| NotificationLine {
            id: n.id.to_string(),
            link: Some(local_path(&n.link)).filter(|l| l != "/" || n.link == "/"),
            title: n.title,
            body: n.body,
            when: format::instant(n.created_at, "UTC", ctx.locale),
            unread: n.read_at.is_none(),
        })
        .collect();
    let page = NotificationsPage { page: ctx.chrome(&req, &app, "page_view"), items, unread_count: list.unread_count };
    respond(StatusCode::OK, page.render(), &ctx)
}

/// `POST /notifications/{id}/read` and `POST /notifications/read-all`: then back to the list.
pub async fn mark_read(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    if let Err(refused) = posted::<NoFields>(&req, &app, &ctx, &body) {
        return *refused;
    }
    let user = match user_or_sign_in(&ctx, "/notifications") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let id = match req.match_info().get("id") {
        None => None,
        Some(raw) => match raw.parse::<Id>() {
            Ok(id) => Some(id),
            Err(_) => return failed(&req, &app, &ctx, &Problem::not_found("notification")),
        },
    };
    match app.notifications.mark_read(user, id).await {
        Ok(()) => redirect(&ctx, "/notifications", Vec::new()),
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

/// `GET /notifications/unread`: the header's count, for its script (the
/// session's cookies as any page sets them; nothing cached).
pub async fn unread(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let (status, unread) = match &ctx.visitor.user {
        None => (StatusCode::UNAUTHORIZED, 0),
        Some(u) => match app.notifications.list(&u.user, true, None, 1).await {
            Ok(list) => (StatusCode::OK, list.unread_count),
            Err(p) => (StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_GATEWAY), 0),
        },
    };
    let mut response = HttpResponse::build(status);
    response.insert_header(("Cache-Control", "no-store")).insert_header(("X-Content-Type-Options", "nosniff"));
    ctx.set_cookies(&mut response, &[]);
    response.content_type("application/json").body(format!("{{\"unread\":{unread}}}"))
}
