//! [`AccountSecurity`] in process: the account pages call the same use
//! cases as the API's routes, for the signed-in user and their session.

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::Problem;

use super::AuthService;
use crate::api::{AccountSecurity, SessionInfo, TotpSetup};

#[async_trait]
impl AccountSecurity for AuthService {
    async fn change_password(
        &self,
        user: &AuthUser,
        current: &str,
        new: &str,
        revoke_api_keys: bool,
    ) -> Result<(), Problem> {
        AuthService::change_password(self, user.id, user.session_id, current, new, revoke_api_keys).await
    }

    async fn totp_setup(&self, user: &AuthUser) -> Result<TotpSetup, Problem> {
        AuthService::totp_setup(self, user.id).await
    }

    async fn totp_enable(&self, user: &AuthUser, code: &str) -> Result<Vec<String>, Problem> {
        AuthService::totp_enable(self, user.id, code).await
    }

    async fn totp_disable(&self, user: &AuthUser, password: &str, code: &str) -> Result<(), Problem> {
        AuthService::totp_disable(self, user.id, user.session_id, password, code).await
    }

    async fn sessions(&self, user: &AuthUser) -> Result<Vec<SessionInfo>, Problem> {
        AuthService::sessions(self, user.id, user.session_id).await
    }

    async fn revoke_other_sessions(&self, user: &AuthUser) -> Result<usize, Problem> {
        AuthService::revoke_other_sessions(self, user.id, user.session_id).await
    }
}

#[async_trait]
impl crate::api::AccountAdmin for AuthService {
    async fn suspend(
        &self,
        admin: &AuthUser,
        id: hometrip_kernel::Id,
        reason: &str,
    ) -> Result<crate::api::AccountSummary, Problem> {
        admin.require_admin()?;
        self.set_suspension(admin.id, id, Some(reason)).await
    }

    async fn reinstate(
        &self,
        admin: &AuthUser,
        id: hometrip_kernel::Id,
    ) -> Result<crate::api::AccountSummary, Problem> {
        admin.require_admin()?;
        self.set_suspension(admin.id, id, None).await
    }
}
