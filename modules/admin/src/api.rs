//! The admin module's published language: the audit log as the console
//! reads it ([`AuditLog`]) and its settings. (The edge records admin calls
//! as `kernel::audit::AdminAction` events, which it consumes.)

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::{Id, Problem};
use serde::{Deserialize, Serialize};

pub const MODULE: &str = "admin";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// How often the whole audit chain is verified, in seconds (nightly).
    pub verify_every_secs: u64,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings { verify_every_secs: 86_400 }
    }
}

/// An audit entry as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: Id,
    pub seq: i64,
    pub at: hometrip_kernel::time::Instant,
    pub actor_id: Id,
    pub action: String,
    pub target: String,
    pub reason: String,
    pub status: i32,
    pub request_id: String,
    pub prev_hash: String,
    pub hash: String,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Verdict {
    pub ok: bool,
    pub entries: i64,
    /// The first entry that does not hold (absent when `ok`).
    pub first_bad_seq: Option<i64>,
    pub problem: Option<String>,
}

/// The audit log as an admin reads it in the console, in process or over
/// the module's admin routes as that admin (403 for anyone else).
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// The newest entries first, `limit` of them, before the `cursor` (a seq).
    async fn entries(&self, admin: &AuthUser, cursor: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>, Problem>;
    /// The whole chain checked.
    async fn verify(&self, admin: &AuthUser) -> Result<Verdict, Problem>;
}
