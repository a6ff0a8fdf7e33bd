//! The console's failed deliveries: the events a subscriber kept refusing,
//! parked in whichever process ran it, and their replay (through the
//! kernel's `DeadLetterDesk`, which the gateway implements for every shape).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use hometrip_kernel::auth_context::AuthUser;

use crate::admin_pages::{admin_form, Console, Said};
use crate::format;
use crate::pages::{failed, respond, Chrome, Context};
use crate::trip_pages::NoFields;
use crate::Web;

struct LetterLine {
    id: hometrip_kernel::Id,
    failed_at: String,
    event_type: String,
    subscriber: String,
    attempts: i32,
    error: String,
    replayed_at: String,
}

#[derive(Template)]
#[template(path = "admin_events.html")]
struct EventsPage {
    page: Chrome,
    letters: Vec<LetterLine>,
    unavailable: Vec<String>,
    notice: Option<&'static str>,
    error: Option<&'static str>,
}

async fn events_page(req: &HttpRequest, app: &Web, ctx: &Context, admin: &AuthUser, said: Said) -> HttpResponse {
    let list = match app.dead_letters.dead_letters(admin).await {
        Ok(list) => list,
        Err(p) => return failed(req, app, ctx, &p),
    };
    let at = |i: hometrip_kernel::time::Instant| format::instant(i, "UTC", ctx.locale);
    let letters = list
        .items
        .into_iter()
        .map(|d| LetterLine {
            id: d.id,
            failed_at: at(d.failed_at),
            event_type: d.event_type,
            subscriber: d.subscriber,
            attempts: d.attempts,
            error: d.error,
            replayed_at: d.replayed_at.map(&at).unwrap_or_default(),
        })
        .collect();
    let (notice, error) = (said.notice(), said.error());
    let page =
        EventsPage { page: ctx.chrome(req, app, "page_view"), letters, unavailable: list.unavailable, notice, error };
    respond(said.status(), page.render(), ctx)
}

/// `GET /admin/events`: the newest parked deliveries of every process.
pub async fn dead_letters(req: HttpRequest, app: web::Data<Web>, Console { ctx, admin }: Console) -> HttpResponse {
    let ad = ctx.locale.messages().ad;
    let said = match req.query_string() {
        q if q.contains("done=delivered") => Said::Notice(ad.replay_delivered),
        q if q.contains("done=failed") => Said::Refused(StatusCode::OK, ad.replay_failed),
        _ => Said::Nothing,
    };
    events_page(&req, &app, &ctx, &admin, said).await
}

/// `POST /admin/events/{id}/replay`: hands the event to its subscriber again.
pub async fn replay(
    req: HttpRequest,
    app: web::Data<Web>,
    raw_id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let (admin, _, id) = match admin_form::<NoFields>(&req, &app, &ctx, &raw_id, &body) {
        Ok(checked) => checked,
        Err(refused) => return *refused,
    };
    match app.dead_letters.replay(&admin, id).await {
        Ok(delivered) => {
            let done = if delivered { "delivered" } else { "failed" };
            crate::account_pages::redirect(&ctx, &format!("/admin/events?done={done}"), Vec::new())
        }
        Err(p) if p.status == 404 => {
            let said = Said::Refused(StatusCode::NOT_FOUND, ctx.locale.messages().ad.no_dead_letter);
            events_page(&req, &app, &ctx, &admin, said).await
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}
