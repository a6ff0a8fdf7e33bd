//! [`AuditLog`] over the admin module's routes, as the admin, for a
//! process that does not run it (the gateway's console in the split shape).

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::Problem;
use serde::Deserialize;

use crate::api::{AuditEntry, AuditLog, Verdict};

pub struct AuditClient {
    remote: RemoteClient,
}

impl AuditClient {
    pub fn new(remote: RemoteClient) -> Self {
        AuditClient { remote }
    }
}

#[derive(Deserialize)]
struct Items {
    items: Vec<AuditEntry>,
}

#[async_trait]
impl AuditLog for AuditClient {
    async fn entries(&self, admin: &AuthUser, cursor: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>, Problem> {
        let cursor = cursor.map(|c| format!("&cursor={c}")).unwrap_or_default();
        let path = format!("/api/v1/admin/audit?limit={}{cursor}", limit.clamp(1, 200));
        Ok(self.remote.get_as::<Items>(&path, admin).await?.items)
    }

    async fn verify(&self, admin: &AuthUser) -> Result<Verdict, Problem> {
        self.remote.get_as("/api/v1/admin/audit/verify", admin).await
    }
}
