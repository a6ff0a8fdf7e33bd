//! The record of every administrator's call: a call under `/api/v1/admin/`
//! taken from outside (not forwarded by another process of the deployment,
//! which recorded it already) is appended, once answered, as an
//! `audit.admin_action` event to this process's outbox; the admin module
//! chains the records into the audit log. Refused calls are recorded too.
//! The console's pages (`/admin/...`) are recorded the same way, as the
//! admin the page found signed in (it leaves them in the request's
//! extensions); a visitor who is no admin gets a 404 page and no record.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage};
use futures_util::StreamExt as _;
use hometrip_kernel::audit::{describe, AdminAction, ADMIN_ACTION};
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::events::{Envelope, EventBus};
use hometrip_kernel::time::Clock;
use hometrip_kernel::Id;

/// Where the edge writes its records.
pub struct AuditSink {
    pub bus: Arc<EventBus>,
    pub clock: Clock,
}

const ADMIN_PREFIX: &str = "/api/v1/admin/";
/// The console's pages.
const CONSOLE_PREFIX: &str = "/admin/";

fn is_console(path: &str) -> bool {
    path == "/admin" || path.starts_with(CONSOLE_PREFIX)
}

/// The reason an admin gave: the body's `reason` (JSON, or a console
/// form's), else the query's.
fn reason_of(body: &[u8], query: &str) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_owned));
    let from_form = || {
        std::str::from_utf8(body)
            .ok()
            .and_then(|b| web::Query::<std::collections::HashMap<String, String>>::from_query(b).ok())
            .and_then(|f| f.get("reason").cloned())
            .filter(|r| !r.is_empty())
    };
    from_json
        .or_else(from_form)
        .or_else(|| {
            web::Query::<std::collections::HashMap<String, String>>::from_query(query)
                .ok()
                .and_then(|q| q.get("reason").cloned())
        })
        .unwrap_or_default()
        .chars()
        .take(2_000)
        .collect()
}

pub async fn record(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let sink = req.app_data::<web::Data<AuditSink>>().cloned();
    let outside = !hometrip_kernel::http::from_service(req.request());
    let console = is_console(req.path());
    // A console page is recorded as the admin it found signed in, only.
    let actor = if console { None } else { req.extensions().get::<AuthUser>().map(|u| u.id) };
    let api = req.path().starts_with(ADMIN_PREFIX) && actor.is_some();
    let (Some(sink), true) = (sink, outside && (api || console)) else {
        return next.call(req).await;
    };
    // The body is read here (admin bodies are small JSON) and handed on.
    let mut body = web::BytesMut::new();
    let mut payload = req.take_payload();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > hometrip_kernel::http::JSON_LIMIT {
            return Err(actix_web::error::ErrorPayloadTooLarge("the body is too large"));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let reason = reason_of(&body, req.query_string());
    req.set_payload(actix_web::dev::Payload::from(body));
    let (action, target) = describe(req.method().as_str(), req.path());
    let request_id = hometrip_kernel::telemetry::current_request_id().unwrap_or_default();
    let res = next.call(req).await?;
    // A console page tells who it found signed in as an admin.
    let Some(actor) = actor.or_else(|| res.request().extensions().get::<AuthUser>().map(|u| u.id)) else {
        return Ok(res);
    };
    let entry = AdminAction {
        id: Id::new(),
        at: sink.clock.now(),
        actor_id: actor,
        action,
        target,
        reason,
        status: res.status().as_u16(),
        request_id,
    };
    let written = match Envelope::new("gateway", ADMIN_ACTION, &entry) {
        Ok(event) => sink.bus.publish(&event).await,
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        // The call is answered; losing its record is an operator's alarm.
        tracing::error!(error = %e, action = %entry.action, actor = %entry.actor_id, "admin call not recorded");
        metrics::counter!("audit_records_failed_total").increment(1);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_comes_from_the_body_then_the_query() {
        assert_eq!(reason_of(br#"{"reason": "fraud"}"#, "reason=other"), "fraud");
        assert_eq!(reason_of(b"", "reason=dispute%20123"), "dispute 123");
        assert_eq!(reason_of(b"csrf=x&reason=goodwill+gesture", ""), "goodwill gesture");
        assert_eq!(reason_of(b"not json", ""), "");
    }
}
