//! [`Sessions`]: the web pages' way to the same use cases as the `/auth`
//! routes.

use async_trait::async_trait;
use hometrip_kernel::Problem;

use super::{AuthService, ClientInfo, TokenPair};
use crate::api::{AccountSummary, ProviderSignIn, ProviderStart, SessionTokens, Sessions, SignInFrom};
use crate::oauth::{OAuthOutcome, OAuthReturn};

fn tokens(pair: TokenPair) -> SessionTokens {
    SessionTokens { access_token: pair.access_token, refresh_token: pair.refresh_token, expires_in: pair.expires_in }
}

#[async_trait]
impl Sessions for AuthService {
    async fn register(
        &self,
        email: &str,
        password: &str,
        display_name: &str,
        locale: &str,
    ) -> Result<AccountSummary, Problem> {
        AuthService::register(self, email, password, display_name, locale).await
    }

    async fn sign_in(
        &self,
        email: &str,
        password: &str,
        totp_code: Option<&str>,
        from: &SignInFrom,
    ) -> Result<SessionTokens, Problem> {
        let client = ClientInfo { ip: from.ip.clone(), user_agent: from.user_agent.clone() };
        self.login(email, password, totp_code, &client).await.map(tokens)
    }

    async fn refresh(&self, refresh_token: &str, user_agent: Option<&str>) -> Result<SessionTokens, Problem> {
        AuthService::refresh(self, refresh_token, user_agent.map(str::to_owned)).await.map(tokens)
    }

    async fn sign_out(&self, refresh_token: &str) -> Result<(), Problem> {
        self.logout(refresh_token).await
    }

    async fn verify_email(&self, token: &str) -> Result<(), Problem> {
        AuthService::verify_email(self, token).await
    }

    async fn forgot_password(&self, email: &str) -> Result<(), Problem> {
        AuthService::forgot_password(self, email).await
    }

    async fn reset_password(&self, token: &str, new_password: &str, revoke_api_keys: bool) -> Result<(), Problem> {
        AuthService::reset_password(self, token, new_password, revoke_api_keys).await
    }

    async fn providers(&self) -> Result<Vec<String>, Problem> {
        Ok(self.oauth_providers())
    }

    async fn provider_start(&self, provider: &str, public_url: &str) -> Result<ProviderStart, Problem> {
        let start = self.oauth_start(provider, public_url, OAuthReturn::Web).await?;
        Ok(ProviderStart { url: start.url, binding: start.binding })
    }

    async fn provider_finish(
        &self,
        provider: &str,
        code: &str,
        state: &str,
        binding: &str,
        public_url: &str,
    ) -> Result<ProviderSignIn, Problem> {
        Ok(match self.oauth_callback(provider, code, state, Some(binding), public_url, OAuthReturn::Web).await? {
            OAuthOutcome::Tokens(pair) => ProviderSignIn::Signed { tokens: tokens(pair) },
            OAuthOutcome::SecondFactor { mfa_ticket } => ProviderSignIn::SecondFactor { ticket: mfa_ticket },
        })
    }

    async fn second_factor(&self, ticket: &str, code: &str) -> Result<SessionTokens, Problem> {
        self.verify_mfa_ticket(ticket, code).await.map(tokens)
    }
}
