//! [`Accounts`] over HTTP, for a process that does not run auth itself.

use async_trait::async_trait;
use hometrip_kernel::auth_context::JwkSet;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::{Id, Problem};

use crate::api::{AccountSummary, Accounts};

pub struct AccountsClient {
    remote: RemoteClient,
}

impl AccountsClient {
    pub fn new(remote: RemoteClient) -> Self {
        AccountsClient { remote }
    }
}

#[async_trait]
impl Accounts for AccountsClient {
    async fn account(&self, id: Id) -> Result<Option<AccountSummary>, Problem> {
        self.remote.get(&format!("/internal/auth/accounts/{id}"), None).await
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<AccountSummary>, Problem> {
        let q: String = url::form_urlencoded::byte_serialize(email.as_bytes()).collect();
        self.remote.get(&format!("/internal/auth/accounts/by-email?email={q}"), None).await
    }

    async fn jwks(&self) -> Result<JwkSet, Problem> {
        self.remote.get("/internal/auth/jwks", None).await
    }

    async fn set_role(&self, id: Id, role: &str, granted: bool) -> Result<AccountSummary, Problem> {
        self.remote
            .post(
                &format!("/internal/auth/accounts/{id}/roles"),
                &serde_json::json!({"role": role, "granted": granted}),
                None,
            )
            .await
    }
}
