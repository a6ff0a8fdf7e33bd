//! OAuth2 sign-in (authorization code with PKCE) with Google and Facebook.
//! State lives server-side in the cache for ten minutes and is single-use; it
//! is bound to the browser that started the sign-in by a cookie (login CSRF:
//! a callback URL carrying someone else's state signs no one in).

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

use hometrip_kernel::{ErrorCode, Id, Problem};

use crate::api::*;
use crate::domain;
use crate::service::{AuthService, TokenPair};
use crate::store::{self, AccountRow};

type ConfiguredClient = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

struct Provider {
    name: &'static str,
    settings: OAuthProviderSettings,
    scopes: &'static [&'static str],
}

/// The cookie binding a pending sign-in to its browser.
pub const BINDING_COOKIE: &str = "hometrip_oauth";

/// A provider's email counts as verified only when the provider says so
/// (`email_verified`); Facebook does not say, so its emails never create or link
/// an account (an identity already linked still signs in).
fn defaults(name: &str) -> Option<(&'static str, [&'static str; 3], &'static [&'static str])> {
    match name {
        "google" => Some((
            "google",
            [
                "https://accounts.google.com/o/oauth2/v2/auth",
                "https://oauth2.googleapis.com/token",
                "https://openidconnect.googleapis.com/v1/userinfo",
            ],
            &["openid", "email", "profile"],
        )),
        "facebook" => Some((
            "facebook",
            [
                "https://www.facebook.com/v19.0/dialog/oauth",
                "https://graph.facebook.com/v19.0/oauth/access_token",
                "https://graph.facebook.com/me?fields=id,name,email",
            ],
            &["email", "public_profile"],
        )),
        _ => None,
    }
}

#[derive(Serialize, Deserialize)]
struct PendingState {
    provider: String,
    verifier: String,
    /// SHA-256 of the browser binding (the cookie holds the value).
    binding: String,
    /// Where the provider sends the browser back (the code exchange names it again).
    #[serde(default)]
    back: OAuthReturn,
}

/// Where a provider sends the browser back: the API's callback, or the web
/// app's sign-in page (which keeps the session in cookies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthReturn {
    #[default]
    Api,
    Web,
}

impl OAuthReturn {
    fn path(self, provider: &str) -> String {
        match self {
            OAuthReturn::Api => format!("/api/v1/auth/oauth/{provider}/callback"),
            OAuthReturn::Web => format!("/sign-in/oauth/{provider}/callback"),
        }
    }
}

/// Where to send the browser, and the value of its binding cookie.
pub struct OAuthStart {
    pub url: String,
    pub binding: String,
}

/// The identity a provider vouches for (Google's and Facebook's userinfo shapes).
#[derive(Debug, Deserialize)]
struct UserInfo {
    sub: Option<String>,
    id: Option<String>,
    email: Option<String>,
    email_verified: Option<serde_json::Value>,
    name: Option<String>,
}

/// What a completed OAuth callback yields.
pub enum OAuthOutcome {
    Tokens(TokenPair),
    /// The account has two-factor on: finish with `/auth/2fa/verify`.
    SecondFactor {
        mfa_ticket: String,
    },
}

impl AuthService {
    fn provider(&self, name: &str) -> Result<Provider, Problem> {
        let (static_name, urls, scopes) = defaults(name).ok_or_else(|| Problem::not_found("OAuth provider"))?;
        let mut settings = self
            .settings
            .oauth
            .get(name)
            .filter(|s| !s.client_id.is_empty())
            .cloned()
            .ok_or_else(|| Problem::new(ErrorCode::NotFound, format!("sign-in with {name} is not configured")))?;
        for (field, default) in [
            (&mut settings.auth_url, urls[0]),
            (&mut settings.token_url, urls[1]),
            (&mut settings.userinfo_url, urls[2]),
        ] {
            if field.is_empty() {
                *field = default.to_owned();
            }
        }
        Ok(Provider { name: static_name, settings, scopes })
    }

    /// The providers configured here, by name.
    pub fn oauth_providers(&self) -> Vec<String> {
        ["google", "facebook"].into_iter().filter(|name| self.provider(name).is_ok()).map(str::to_owned).collect()
    }

    fn oauth_client(&self, p: &Provider, public_url: &str, back: OAuthReturn) -> Result<ConfiguredClient, Problem> {
        let bad = |what: &str| Problem::internal(format!("auth.oauth.{}.{what} is not a valid URL", p.name));
        Ok(BasicClient::new(ClientId::new(p.settings.client_id.clone()))
            .set_client_secret(ClientSecret::new(p.settings.client_secret.clone()))
            .set_auth_type(AuthType::RequestBody)
            .set_auth_uri(AuthUrl::new(p.settings.auth_url.clone()).map_err(|_| bad("auth_url"))?)
            .set_token_uri(TokenUrl::new(p.settings.token_url.clone()).map_err(|_| bad("token_url"))?)
            .set_redirect_uri(
                RedirectUrl::new(format!("{}{}", public_url.trim_end_matches('/'), back.path(p.name)))
                    .map_err(|_| bad("public_url"))?,
            ))
    }

    /// The provider's authorization URL, with `state` and a PKCE challenge, and
    /// the binding the caller sets as a cookie.
    pub async fn oauth_start(
        &self,
        provider: &str,
        public_url: &str,
        back: OAuthReturn,
    ) -> Result<OAuthStart, Problem> {
        let p = self.provider(provider)?;
        let client = self.oauth_client(&p, public_url, back)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(CsrfToken::new_random);
        for scope in p.scopes {
            request = request.add_scope(Scope::new((*scope).to_owned()));
        }
        let (url, state) = request.set_pkce_challenge(challenge).url();
        let binding = crate::service::random_ticket();
        let pending = PendingState {
            provider: p.name.to_owned(),
            verifier: verifier.secret().clone(),
            binding: domain::token_digest(&binding),
            back,
        };
        let value = serde_json::to_string(&pending).map_err(Problem::internal)?;
        self.cache()
            .set(&format!("oauth-state:{}", state.secret()), &value, std::time::Duration::from_secs(600))
            .await?;
        Ok(OAuthStart { url: url.to_string(), binding })
    }

    /// `binding` is the cookie of the browser calling back; the state is spent
    /// whatever the outcome.
    pub async fn oauth_callback(
        &self,
        provider: &str,
        code: &str,
        state: &str,
        binding: Option<&str>,
        public_url: &str,
        back: OAuthReturn,
    ) -> Result<OAuthOutcome, Problem> {
        let p = self.provider(provider)?;
        let bad_state = || Problem::new(ErrorCode::BadRequest, "unknown or expired OAuth state");
        let pending = self.cache().take(&format!("oauth-state:{state}")).await?.ok_or_else(bad_state)?;
        let pending: PendingState = serde_json::from_str(&pending).map_err(|_| bad_state())?;
        // A sign-in comes back where it was started for.
        if pending.provider != p.name || pending.back != back {
            return Err(bad_state());
        }
        let bound = binding.is_some_and(|b| {
            hometrip_kernel::http::constant_time_eq(domain::token_digest(b).as_bytes(), pending.binding.as_bytes())
        });
        if !bound {
            return Err(Problem::new(ErrorCode::BadRequest, "this sign-in was not started in this browser"));
        }
        let client = self.oauth_client(&p, public_url, back)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                tracing::warn!(provider = p.name, error = %e, "OAuth code exchange failed");
                Problem::new(ErrorCode::BadGateway, format!("{} refused the sign-in", p.name))
            })?;
        let info: UserInfo = self
            .http
            .get(&p.settings.userinfo_url)
            .bearer_auth(token.access_token().secret())
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| {
                tracing::warn!(provider = p.name, error = %e, "OAuth userinfo failed");
                Problem::new(ErrorCode::BadGateway, format!("{} did not return the profile", p.name))
            })?
            .json()
            .await
            .map_err(|_| Problem::new(ErrorCode::BadGateway, format!("{} returned an unreadable profile", p.name)))?;
        let subject = info
            .sub
            .or(info.id)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Problem::new(ErrorCode::BadGateway, "the provider returned no subject"))?;
        let verified = match &info.email_verified {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s == "true",
            _ => false,
        };
        let email = info.email.as_deref().and_then(|e| domain::normalize_email(e).ok());
        let account = self.oauth_account(p.name, &subject, email, verified, info.name).await?;
        if account.totp_secret.is_some() {
            let ticket = crate::service::random_ticket();
            self.cache()
                .set(&format!("mfa-ticket:{ticket}"), &account.id.to_string(), std::time::Duration::from_secs(300))
                .await?;
            return Ok(OAuthOutcome::SecondFactor { mfa_ticket: ticket });
        }
        Ok(OAuthOutcome::Tokens(self.open_session(&account, None).await?))
    }

    /// The account of an identity: already linked, else linked by a verified
    /// email, else a new account. An email the provider did not verify never
    /// links nor creates one (pre-account takeover).
    async fn oauth_account(
        &self,
        provider: &str,
        subject: &str,
        email: Option<String>,
        verified: bool,
        name: Option<String>,
    ) -> Result<AccountRow, Problem> {
        let db = self.db();
        if let Some(id) = store::identity_account(db, provider, subject).await.map_err(Problem::from)? {
            return self.account_row(id).await;
        }
        let email =
            email.ok_or_else(|| Problem::new(ErrorCode::Conflict, "the provider did not share an email address"))?;
        if !verified {
            return Err(Problem::new(
                ErrorCode::Conflict,
                "the provider has not verified this email address; sign up with a password instead",
            ));
        }
        if let Some(existing) = store::account_by_email(db, &email).await.map_err(Problem::from)? {
            if !existing.email_verified {
                return Err(Problem::new(
                    ErrorCode::Conflict,
                    "an account with this email exists; sign in with your password to link it",
                ));
            }
            store::link_identity(db, provider, subject, existing.id, &email).await.map_err(Problem::from)?;
            return Ok(existing);
        }
        let display_name = name
            .and_then(|n| domain::normalize_display_name(&n).ok())
            .unwrap_or_else(|| email.split('@').next().unwrap_or("guest").to_owned());
        let account = AccountRow::new(email, display_name, None, true, "", "en");
        let event = self.registered_event(&account)?;
        store::create_account(db, &account, None, Some((provider, subject)), &[event]).await.map_err(Problem::from)?;
        self.bus().poke();
        Ok(account)
    }

    /// Completes a sign-in that stopped at the second factor.
    pub async fn verify_mfa_ticket(&self, ticket: &str, code: &str) -> Result<TokenPair, Problem> {
        let invalid = || Problem::new(ErrorCode::InvalidToken, "unknown or expired sign-in ticket");
        if ticket.is_empty() || ticket.len() > 64 {
            return Err(invalid());
        }
        let key = format!("mfa-ticket:{ticket}");
        let id: Id = self.cache().get(&key).await?.and_then(|v| v.parse().ok()).ok_or_else(invalid)?;
        let account = match self.account_row(id).await {
            Ok(a) => a,
            Err(p) if p.code == ErrorCode::NotFound => return Err(invalid()),
            Err(p) => return Err(p),
        };
        // A ticket allows a few guesses only; then the sign-in starts over.
        let attempts = hometrip_kernel::cache::Limit { max: 5, window_secs: 300 };
        if self.limiter().hit(&format!("mfa-attempts:{ticket}"), attempts).await?.is_err() {
            self.cache().delete(&key).await?;
            return Err(invalid());
        }
        if !self.check_second_factor(&account, code).await? {
            return Err(
                Problem::new(ErrorCode::TotpRequired, "the two-factor code is invalid").with("totp_required", true)
            );
        }
        self.cache().delete(&key).await?;
        self.open_session(&account, None).await
    }
}
