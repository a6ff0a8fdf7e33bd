//! Dead-letter administration. A delivery is parked in the database of the
//! process whose handler failed, so in the split shape the gateway's list
//! gathers every module's parked deliveries (through their internal routes)
//! and a replay goes to the process that holds the dead letter.

use actix_web::{web, HttpResponse};
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::events::DeadLetter;
use hometrip_kernel::http::InternalCaller;
use hometrip_kernel::{ErrorCode, Id, Problem};
use serde::{Deserialize, Serialize};

use crate::ops::Ops;

/// The newest parked deliveries listed.
const LIMIT: i64 = 100;

#[derive(Serialize, Deserialize)]
struct Page {
    items: Vec<DeadLetter>,
    /// Modules whose dead letters could not be read just now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    unavailable: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Replayed {
    delivered: bool,
}

/// Replays a dead letter parked in this process; `None` when it is not here.
async fn replay_here(ops: &Ops, id: Id) -> Result<Option<Replayed>, Problem> {
    match ops.bus.replay(id).await {
        Ok(delivered) => Ok(Some(Replayed { delivered })),
        Err(hometrip_kernel::db::DbError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn list(ops: web::Data<Ops>, user: AuthUser) -> Result<HttpResponse, Problem> {
    user.require_admin()?;
    let mut page = Page { items: ops.bus.dead_letters(LIMIT).await?, unavailable: Vec::new() };
    for (module, client) in ops.services() {
        match client.get::<Page>("/internal/events/dead-letters", Some(user.id)).await {
            Ok(theirs) => page.items.extend(theirs.items),
            Err(problem) => {
                tracing::warn!(%module, error = %problem.detail, "dead letters not read");
                page.unavailable.push(module.to_owned());
            }
        }
    }
    page.items.sort_by_key(|letter| std::cmp::Reverse(letter.failed_at));
    page.items.truncate(LIMIT as usize);
    Ok(HttpResponse::Ok().json(page))
}

async fn replay(ops: web::Data<Ops>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    user.require_admin()?;
    let id = id.into_inner();
    if let Some(replayed) = replay_here(&ops, id).await? {
        return Ok(HttpResponse::Ok().json(replayed));
    }
    // Not parked here: the process that holds it replays it.
    let path = format!("/internal/events/dead-letters/{id}/replay");
    let mut unreachable = None;
    for (module, client) in ops.services() {
        match client.post::<_, Replayed>(&path, &serde_json::json!({}), Some(user.id)).await {
            Ok(replayed) => return Ok(HttpResponse::Ok().json(replayed)),
            Err(problem) if problem.code == ErrorCode::NotFound => {}
            Err(problem) => {
                tracing::warn!(%module, error = %problem.detail, "dead letter replay not reached");
                unreachable = Some(problem);
            }
        }
    }
    // Nowhere found; but a module that did not answer may hold it.
    Err(unreachable.unwrap_or_else(|| Problem::not_found("dead letter")))
}

async fn internal_list(_: InternalCaller, ops: web::Data<Ops>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(Page { items: ops.bus.dead_letters(LIMIT).await?, unavailable: Vec::new() }))
}

async fn internal_replay(_: InternalCaller, ops: web::Data<Ops>, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    let replayed = replay_here(&ops, id.into_inner()).await?.ok_or_else(|| Problem::not_found("dead letter"))?;
    Ok(HttpResponse::Ok().json(replayed))
}

/// The admin routes, and the internal ones a gateway reads them through.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/admin/events/dead-letters", web::get().to(list))
        .route("/api/v1/admin/events/dead-letters/{id}/replay", web::post().to(replay))
        .route("/internal/events/dead-letters", web::get().to(internal_list))
        .route("/internal/events/dead-letters/{id}/replay", web::post().to(internal_replay));
}
