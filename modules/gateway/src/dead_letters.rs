//! Dead-letter administration. A delivery is parked in the database of the
//! process whose handler failed, so in the split shape the list gathers
//! every module's parked deliveries (through their internal routes) and a
//! replay goes to the process that holds the dead letter. [`ParkedEvents`]
//! does it for the admin routes and for the console's pages.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::events::{DeadLetterDesk, DeadLetterList, EventBus};
use hometrip_kernel::http::InternalCaller;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::upstream::Upstream;
use hometrip_kernel::{ErrorCode, Id, Problem};
use serde::{Deserialize, Serialize};

use crate::ops::Ops;

/// The newest parked deliveries listed.
const LIMIT: i64 = 100;

#[derive(Serialize, Deserialize)]
struct Replayed {
    delivered: bool,
}

/// This process's dead letters and those of the services it calls.
pub struct ParkedEvents {
    bus: Arc<EventBus>,
    http: reqwest::Client,
    service_token: String,
    upstreams: Vec<Arc<Upstream>>,
}

impl ParkedEvents {
    pub fn new(
        bus: Arc<EventBus>,
        http: reqwest::Client,
        service_token: String,
        upstreams: Vec<Arc<Upstream>>,
    ) -> Arc<Self> {
        Arc::new(ParkedEvents { bus, http, service_token, upstreams })
    }

    fn of(ops: &Ops) -> Self {
        ParkedEvents {
            bus: Arc::clone(&ops.bus),
            http: ops.http.clone(),
            service_token: ops.service_token.clone(),
            upstreams: ops.upstreams.clone(),
        }
    }

    fn services(&self) -> impl Iterator<Item = (&str, RemoteClient)> + '_ {
        self.upstreams.iter().map(|upstream| {
            let client = RemoteClient::over(Arc::clone(upstream), self.http.clone(), &self.service_token);
            (upstream.module.as_str(), client)
        })
    }

    /// Replays a dead letter parked in this process; `None` when it is not here.
    async fn replay_here(&self, id: Id) -> Result<Option<bool>, Problem> {
        match self.bus.replay(id).await {
            Ok(delivered) => Ok(Some(delivered)),
            Err(hometrip_kernel::db::DbError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl DeadLetterDesk for ParkedEvents {
    async fn dead_letters(&self, admin: &AuthUser) -> Result<DeadLetterList, Problem> {
        admin.require_admin()?;
        let mut list = DeadLetterList { items: self.bus.dead_letters(LIMIT).await?, unavailable: Vec::new() };
        for (module, client) in self.services() {
            match client.get::<DeadLetterList>("/internal/events/dead-letters", Some(admin.id)).await {
                Ok(theirs) => list.items.extend(theirs.items),
                Err(problem) => {
                    tracing::warn!(%module, error = %problem.detail, "dead letters not read");
                    list.unavailable.push(module.to_owned());
                }
            }
        }
        list.items.sort_by_key(|letter| std::cmp::Reverse(letter.failed_at));
        list.items.truncate(LIMIT as usize);
        Ok(list)
    }

    async fn replay(&self, admin: &AuthUser, id: Id) -> Result<bool, Problem> {
        admin.require_admin()?;
        if let Some(delivered) = self.replay_here(id).await? {
            return Ok(delivered);
        }
        // Not parked here: the process that holds it replays it.
        let path = format!("/internal/events/dead-letters/{id}/replay");
        let mut unreachable = None;
        for (module, client) in self.services() {
            match client.post::<_, Replayed>(&path, &serde_json::json!({}), Some(admin.id)).await {
                Ok(replayed) => return Ok(replayed.delivered),
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
}

async fn list(ops: web::Data<Ops>, user: AuthUser) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(ParkedEvents::of(&ops).dead_letters(&user).await?))
}

async fn replay(ops: web::Data<Ops>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    let delivered = ParkedEvents::of(&ops).replay(&user, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(Replayed { delivered }))
}

async fn internal_list(_: InternalCaller, ops: web::Data<Ops>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(DeadLetterList { items: ops.bus.dead_letters(LIMIT).await?, unavailable: Vec::new() }))
}

async fn internal_replay(_: InternalCaller, ops: web::Data<Ops>, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    let delivered =
        ParkedEvents::of(&ops).replay_here(id.into_inner()).await?.ok_or_else(|| Problem::not_found("dead letter"))?;
    Ok(HttpResponse::Ok().json(Replayed { delivered }))
}

/// The admin routes, and the internal ones a gateway reads them through.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/admin/events/dead-letters", web::get().to(list))
        .route("/api/v1/admin/events/dead-letters/{id}/replay", web::post().to(replay))
        .route("/internal/events/dead-letters", web::get().to(internal_list))
        .route("/internal/events/dead-letters/{id}/replay", web::post().to(internal_replay));
}
