//! What an administrator did: every call under `/api/v1/admin/` is recorded
//! by the edge that took it from outside (the gateway) as an
//! [`AdminAction`] event; the admin module chains them into the audit log.
//! Auth records an owner's changes to their API keys the same way.

use serde::{Deserialize, Serialize};

use crate::time::Instant;
use crate::Id;

/// An administrator's call, as the edge saw it.
pub const ADMIN_ACTION: &str = "audit.admin_action";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminAction {
    /// Unique per call: a redelivered event is chained once.
    pub id: Id,
    pub at: Instant,
    pub actor_id: Id,
    /// The method and the path with its ids as `{id}`:
    /// `POST /api/v1/admin/users/{id}/suspend`.
    pub action: String,
    /// What was acted on: the path's resources and ids (`users/0190…`);
    /// empty for calls on collections.
    pub target: String,
    /// The reason given (the body's or the query's `reason`).
    pub reason: String,
    /// The answer's status: a refused call is recorded too.
    pub status: u16,
    pub request_id: String,
}

/// `action` and `target` of a call: ids (UUIDs) in the path become `{id}`
/// in the action and, with the segment naming their kind, the target.
pub fn describe(method: &str, path: &str) -> (String, String) {
    let mut shape = Vec::new();
    let mut target = Vec::new();
    let mut previous = "";
    for segment in path.split('/') {
        if segment.parse::<uuid::Uuid>().is_ok() {
            shape.push("{id}");
            target.push(format!("{previous}/{segment}"));
        } else {
            shape.push(segment);
        }
        previous = segment;
    }
    (format!("{method} {}", shape.join("/")), target.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_placeholders_and_targets() {
        let (action, target) = describe("POST", "/api/v1/admin/users/0190c0a4-0000-7000-8000-000000000001/suspend");
        assert_eq!(action, "POST /api/v1/admin/users/{id}/suspend");
        assert_eq!(target, "users/0190c0a4-0000-7000-8000-000000000001");
        assert_eq!(describe("GET", "/api/v1/admin/audit"), ("GET /api/v1/admin/audit".to_owned(), String::new()));
    }
}
