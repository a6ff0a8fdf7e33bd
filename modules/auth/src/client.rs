//! [`Accounts`] over HTTP, for a process that does not run auth itself.

use async_trait::async_trait;
use hometrip_kernel::api_keys::{KeyAuthority, KeyGrant, KeyUse};
use hometrip_kernel::auth_context::{AuthUser, JwkSet};
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::{Id, Problem};

use crate::api::{
    AccountSecurity, AccountSummary, Accounts, ProviderSignIn, ProviderStart, SessionInfo, SessionTokens, Sessions,
    SignInFrom, TotpSetup,
};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

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

    async fn accounts(&self, ids: &[Id]) -> Result<Vec<AccountSummary>, Problem> {
        // A read in a POST's clothes: retried on another replica like one.
        self.remote.post_idempotent("/internal/auth/accounts/of", &serde_json::json!({ "ids": ids }), None).await
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

/// `POST /internal/auth/sessions/{use_case}`: one body for every use case.
// No `Debug`: it holds passwords and tokens.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionCall {
    pub email: String,
    pub password: String,
    pub display_name: String,
    pub locale: String,
    pub totp_code: Option<String>,
    pub from: Option<crate::api::SignInFrom>,
    /// A token, an emailed link's, a refresh token, a provider's code or a sign-in ticket.
    pub token: String,
    pub user_agent: Option<String>,
    pub revoke_api_keys: bool,
    pub provider: String,
    pub state: String,
    pub binding: String,
    pub public_url: String,
}

/// [`Sessions`] over HTTP: the auth process's internal routes (the caller's
/// address travels in the body: the sign-in limits count per address).
#[async_trait]
impl Sessions for AccountsClient {
    async fn register(
        &self,
        email: &str,
        password: &str,
        display_name: &str,
        locale: &str,
    ) -> Result<AccountSummary, Problem> {
        let call = SessionCall {
            email: email.to_owned(),
            password: password.to_owned(),
            display_name: display_name.to_owned(),
            locale: locale.to_owned(),
            ..SessionCall::default()
        };
        self.remote.post("/internal/auth/sessions/register", &call, None).await
    }

    async fn sign_in(
        &self,
        email: &str,
        password: &str,
        totp_code: Option<&str>,
        from: &SignInFrom,
    ) -> Result<SessionTokens, Problem> {
        let call = SessionCall {
            email: email.to_owned(),
            password: password.to_owned(),
            totp_code: totp_code.map(str::to_owned),
            from: Some(from.clone()),
            ..SessionCall::default()
        };
        self.remote.post("/internal/auth/sessions/sign-in", &call, None).await
    }

    async fn refresh(&self, refresh_token: &str, user_agent: Option<&str>) -> Result<SessionTokens, Problem> {
        let call = SessionCall {
            token: refresh_token.to_owned(),
            user_agent: user_agent.map(str::to_owned),
            ..SessionCall::default()
        };
        self.remote.post("/internal/auth/sessions/refresh", &call, None).await
    }

    async fn sign_out(&self, refresh_token: &str) -> Result<(), Problem> {
        let call = SessionCall { token: refresh_token.to_owned(), ..SessionCall::default() };
        self.remote.post::<_, serde_json::Value>("/internal/auth/sessions/sign-out", &call, None).await.map(|_| ())
    }

    async fn verify_email(&self, token: &str) -> Result<(), Problem> {
        let call = SessionCall { token: token.to_owned(), ..SessionCall::default() };
        self.remote.post::<_, serde_json::Value>("/internal/auth/sessions/verify-email", &call, None).await.map(|_| ())
    }

    async fn forgot_password(&self, email: &str) -> Result<(), Problem> {
        let call = SessionCall { email: email.to_owned(), ..SessionCall::default() };
        self.remote
            .post::<_, serde_json::Value>("/internal/auth/sessions/forgot-password", &call, None)
            .await
            .map(|_| ())
    }

    async fn reset_password(&self, token: &str, new_password: &str, revoke_api_keys: bool) -> Result<(), Problem> {
        let call = SessionCall {
            token: token.to_owned(),
            password: new_password.to_owned(),
            revoke_api_keys,
            ..SessionCall::default()
        };
        self.remote
            .post::<_, serde_json::Value>("/internal/auth/sessions/reset-password", &call, None)
            .await
            .map(|_| ())
    }

    async fn providers(&self) -> Result<Vec<String>, Problem> {
        self.remote.post_idempotent("/internal/auth/sessions/providers", &SessionCall::default(), None).await
    }

    async fn provider_start(&self, provider: &str, public_url: &str) -> Result<ProviderStart, Problem> {
        let call =
            SessionCall { provider: provider.to_owned(), public_url: public_url.to_owned(), ..SessionCall::default() };
        self.remote.post("/internal/auth/sessions/provider-start", &call, None).await
    }

    async fn provider_finish(
        &self,
        provider: &str,
        code: &str,
        state: &str,
        binding: &str,
        public_url: &str,
    ) -> Result<ProviderSignIn, Problem> {
        let call = SessionCall {
            provider: provider.to_owned(),
            token: code.to_owned(),
            state: state.to_owned(),
            binding: binding.to_owned(),
            public_url: public_url.to_owned(),
            ..SessionCall::default()
        };
        self.remote.post("/internal/auth/sessions/provider-finish", &call, None).await
    }

    async fn second_factor(&self, ticket: &str, code: &str) -> Result<SessionTokens, Problem> {
        let call = SessionCall { token: ticket.to_owned(), totp_code: Some(code.to_owned()), ..SessionCall::default() };
        self.remote.post("/internal/auth/sessions/second-factor", &call, None).await
    }
}

/// [`AccountSecurity`] over the module's public routes, as the signed-in
/// user (the gateway's account pages in the split shape).
pub struct AccountSecurityClient {
    remote: RemoteClient,
}

impl AccountSecurityClient {
    pub fn new(remote: RemoteClient) -> Self {
        AccountSecurityClient { remote }
    }
}

#[derive(Deserialize)]
struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

#[derive(Deserialize)]
struct SessionList {
    items: Vec<SessionInfo>,
}

#[derive(Deserialize)]
struct Revoked {
    revoked: usize,
}

#[async_trait]
impl AccountSecurity for AccountSecurityClient {
    async fn change_password(
        &self,
        user: &AuthUser,
        current: &str,
        new: &str,
        revoke_api_keys: bool,
    ) -> Result<(), Problem> {
        let body =
            serde_json::json!({"current_password": current, "new_password": new, "revoke_api_keys": revoke_api_keys});
        self.remote.post_as::<_, Option<IgnoredAny>>("/api/v1/auth/password/change", &body, user, None).await.map(drop)
    }

    async fn totp_setup(&self, user: &AuthUser) -> Result<TotpSetup, Problem> {
        self.remote.post_as("/api/v1/auth/2fa/setup", &serde_json::json!({}), user, None).await
    }

    async fn totp_enable(&self, user: &AuthUser, code: &str) -> Result<Vec<String>, Problem> {
        let body = serde_json::json!({"code": code});
        let codes: RecoveryCodes = self.remote.post_as("/api/v1/auth/2fa/enable", &body, user, None).await?;
        Ok(codes.recovery_codes)
    }

    async fn totp_disable(&self, user: &AuthUser, password: &str, code: &str) -> Result<(), Problem> {
        let body = serde_json::json!({"password": password, "code": code});
        self.remote.post_as::<_, Option<IgnoredAny>>("/api/v1/auth/2fa/disable", &body, user, None).await.map(drop)
    }

    async fn sessions(&self, user: &AuthUser) -> Result<Vec<SessionInfo>, Problem> {
        let list: SessionList = self.remote.get_as("/api/v1/auth/sessions", user).await?;
        Ok(list.items)
    }

    async fn revoke_other_sessions(&self, user: &AuthUser) -> Result<usize, Problem> {
        let body = serde_json::json!({});
        let revoked: Revoked = self.remote.post_as("/api/v1/auth/sessions/revoke-others", &body, user, None).await?;
        Ok(revoked.revoked)
    }
}

/// Suspensions over the admin routes, as the admin.
#[async_trait]
impl crate::api::AccountAdmin for AccountSecurityClient {
    async fn suspend(&self, admin: &AuthUser, id: Id, reason: &str) -> Result<AccountSummary, Problem> {
        let body = serde_json::json!({ "reason": reason });
        self.remote.post_as(&format!("/api/v1/admin/users/{id}/suspend"), &body, admin, None).await
    }

    async fn reinstate(&self, admin: &AuthUser, id: Id) -> Result<AccountSummary, Problem> {
        self.remote.post_as(&format!("/api/v1/admin/users/{id}/reinstate"), &serde_json::json!({}), admin, None).await
    }
}

/// [`crate::api::ApiKeys`] over the public routes as the user, and the
/// edge's [`KeyAuthority`] over auth's internal routes.
pub struct ApiKeysClient {
    remote: RemoteClient,
}

impl ApiKeysClient {
    pub fn new(remote: RemoteClient) -> Self {
        ApiKeysClient { remote }
    }
}

#[derive(Deserialize)]
struct ApiKeyList {
    items: Vec<crate::api::ApiKey>,
}

#[async_trait]
impl crate::api::ApiKeys for ApiKeysClient {
    async fn create(&self, owner: &AuthUser, new: &crate::api::NewApiKey) -> Result<crate::api::IssuedApiKey, Problem> {
        self.remote.post_as("/api/v1/api-keys", new, owner, None).await
    }

    async fn list(&self, owner: &AuthUser) -> Result<Vec<crate::api::ApiKey>, Problem> {
        let list: ApiKeyList = self.remote.get_as("/api/v1/api-keys", owner).await?;
        Ok(list.items)
    }

    async fn rotate(
        &self,
        owner: &AuthUser,
        id: Id,
        grace_minutes: Option<i64>,
    ) -> Result<crate::api::IssuedApiKey, Problem> {
        let body = serde_json::json!({ "grace_minutes": grace_minutes });
        self.remote.post_as(&format!("/api/v1/api-keys/{id}/rotate"), &body, owner, None).await
    }

    async fn revoke(&self, owner: &AuthUser, id: Id) -> Result<(), Problem> {
        self.remote.delete_as(&format!("/api/v1/api-keys/{id}"), owner).await
    }

    async fn keys_of(&self, admin: &AuthUser, user: Id) -> Result<Vec<crate::api::ApiKey>, Problem> {
        let list: ApiKeyList = self.remote.get_as(&format!("/api/v1/admin/users/{user}/api-keys"), admin).await?;
        Ok(list.items)
    }

    async fn revoke_any(&self, admin: &AuthUser, id: Id, reason: &str) -> Result<(), Problem> {
        let body = serde_json::json!({ "reason": reason });
        let path = format!("/api/v1/admin/api-keys/{id}/revoke");
        self.remote.post_as::<_, Option<IgnoredAny>>(&path, &body, admin, None).await.map(drop)
    }
}

#[async_trait]
impl KeyAuthority for ApiKeysClient {
    async fn authenticate(&self, key: &str) -> Result<KeyGrant, Problem> {
        // A read in a POST's clothes (the key stays out of URLs and logs).
        self.remote
            .post_idempotent("/internal/auth/api-keys/authenticate", &serde_json::json!({ "key": key }), None)
            .await
    }

    async fn record_use(&self, used: &[KeyUse]) -> Result<(), Problem> {
        let body = serde_json::json!({ "used": used });
        self.remote
            .post_idempotent::<_, Option<IgnoredAny>>("/internal/auth/api-keys/used", &body, None)
            .await
            .map(drop)
    }
}
