//! The auth module's published language: the [`Accounts`] trait other modules
//! call, its types, the events auth publishes, and its typed settings.

use std::collections::BTreeMap;

use async_trait::async_trait;
use hometrip_kernel::auth_context::{AuthUser, JwkSet};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{Id, Problem};
use serde::{Deserialize, Serialize};

pub const MODULE: &str = "auth";

/// What other modules may know of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountSummary {
    pub id: Id,
    pub email: String,
    pub display_name: String,
    /// Language chosen at sign-up (`fr` or `en`).
    pub locale: String,
    pub email_verified: bool,
    pub roles: Vec<String>,
    pub totp_enabled: bool,
    /// Suspended by an admin: cannot sign in.
    #[serde(default)]
    pub suspended: bool,
    pub created_at: Instant,
}

/// Auth as other modules see it, in process or over HTTP.
#[async_trait]
pub trait Accounts: Send + Sync {
    async fn account(&self, id: Id) -> Result<Option<AccountSummary>, Problem>;
    /// The accounts of `ids` that exist, in one read (at most 1,000 ids).
    async fn accounts(&self, ids: &[Id]) -> Result<Vec<AccountSummary>, Problem>;
    async fn account_by_email(&self, email: &str) -> Result<Option<AccountSummary>, Problem>;
    /// Public keys that verify access tokens.
    async fn jwks(&self) -> Result<JwkSet, Problem>;
    /// Grants or withdraws a role (e.g. `admin`).
    async fn set_role(&self, id: Id, role: &str, granted: bool) -> Result<AccountSummary, Problem>;
}

/// The tokens of a signed-in session: a short-lived access token and the
/// refresh token that rotates it (the browser keeps them in HttpOnly cookies).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTokens {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds the access token lives.
    pub expires_in: i64,
}

/// Never the tokens themselves in a log line.
impl std::fmt::Debug for SessionTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTokens").field("expires_in", &self.expires_in).finish_non_exhaustive()
    }
}

/// Where a sign-in comes from: its limits count per address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInFrom {
    pub ip: String,
    pub user_agent: Option<String>,
}

/// Sign-up, sign-in and the emailed links, for the web pages: the same use
/// cases as the API's `/auth` routes, in process or over HTTP.
#[async_trait]
pub trait Sessions: Send + Sync {
    async fn register(
        &self,
        email: &str,
        password: &str,
        display_name: &str,
        locale: &str,
    ) -> Result<AccountSummary, Problem>;
    /// 401 `invalid_credentials`; `totp_required` when a second factor is due.
    async fn sign_in(
        &self,
        email: &str,
        password: &str,
        totp_code: Option<&str>,
        from: &SignInFrom,
    ) -> Result<SessionTokens, Problem>;
    /// Rotates the refresh token (a reused one ends its session).
    async fn refresh(&self, refresh_token: &str, user_agent: Option<&str>) -> Result<SessionTokens, Problem>;
    async fn sign_out(&self, refresh_token: &str) -> Result<(), Problem>;
    async fn verify_email(&self, token: &str) -> Result<(), Problem>;
    async fn forgot_password(&self, email: &str) -> Result<(), Problem>;
    /// Every session ends; with `revoke_api_keys`, every API key too (an
    /// account taken over may have made some).
    async fn reset_password(&self, token: &str, new_password: &str, revoke_api_keys: bool) -> Result<(), Problem>;
    /// The providers one signs in with here (`google`, `facebook`): the configured ones.
    async fn providers(&self) -> Result<Vec<String>, Problem>;
    /// Starts a sign-in with `provider` that comes back to the web app's
    /// `/sign-in/oauth/{provider}/callback` under `public_url`; 404 when
    /// the provider is not configured.
    async fn provider_start(&self, provider: &str, public_url: &str) -> Result<ProviderStart, Problem>;
    /// Finishes it with the provider's `code` and `state` and the browser's
    /// `binding` cookie; the state is spent whatever the outcome.
    async fn provider_finish(
        &self,
        provider: &str,
        code: &str,
        state: &str,
        binding: &str,
        public_url: &str,
    ) -> Result<ProviderSignIn, Problem>;
    /// The code of a sign-in that stopped at the second factor.
    async fn second_factor(&self, ticket: &str, code: &str) -> Result<SessionTokens, Problem>;
}

/// Where to send the browser to sign in with a provider, and the value of
/// the cookie that binds the sign-in to that browser.
// No `Debug`: the binding is a secret.
#[derive(Clone, Serialize, Deserialize)]
pub struct ProviderStart {
    pub url: String,
    pub binding: String,
}

/// How a sign-in with a provider ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ProviderSignIn {
    Signed {
        tokens: SessionTokens,
    },
    /// Two-step sign-in is on: the code finishes it (`Sessions::second_factor`).
    SecondFactor {
        ticket: String,
    },
}

/// A second factor being set up: the secret, and the `otpauth://` URL an
/// authenticator app reads (as a QR code).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TotpSetup {
    pub secret: String,
    pub otpauth_url: String,
}

/// One signed-in session (a refresh-token family) of a user.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionInfo {
    pub id: Id,
    pub current: bool,
    pub started_at: Instant,
    pub last_refreshed_at: Instant,
    pub expires_at: Instant,
    pub user_agent: Option<String>,
}

/// An admin's hold on accounts from the console: suspension (sessions end at
/// once, sign-in refused, listings leave search) and reinstatement, in
/// process or over the admin routes as that admin (403 for anyone else).
#[async_trait]
pub trait AccountAdmin: Send + Sync {
    async fn suspend(&self, admin: &AuthUser, id: Id, reason: &str) -> Result<AccountSummary, Problem>;
    async fn reinstate(&self, admin: &AuthUser, id: Id) -> Result<AccountSummary, Problem>;
}

/// A signed-in user's own security settings, for the account pages: the
/// API's `/auth/password/change`, `/auth/2fa/*` and `/auth/sessions*` use
/// cases, in process or over those public routes as that user.
#[async_trait]
pub trait AccountSecurity: Send + Sync {
    /// The user's other sessions end, and with `revoke_api_keys` their API
    /// keys; 401 when `current` is wrong, 422 for a weak `new`.
    async fn change_password(
        &self,
        user: &AuthUser,
        current: &str,
        new: &str,
        revoke_api_keys: bool,
    ) -> Result<(), Problem>;
    /// A new secret to confirm with [`AccountSecurity::totp_enable`].
    async fn totp_setup(&self, user: &AuthUser) -> Result<TotpSetup, Problem>;
    /// Turns the second factor on with a current code; the recovery codes, shown once.
    async fn totp_enable(&self, user: &AuthUser, code: &str) -> Result<Vec<String>, Problem>;
    /// 401 when the password or the code is wrong.
    async fn totp_disable(&self, user: &AuthUser, password: &str, code: &str) -> Result<(), Problem>;
    async fn sessions(&self, user: &AuthUser) -> Result<Vec<SessionInfo>, Problem>;
    /// Ends every session but the caller's; how many ended.
    async fn revoke_other_sessions(&self, user: &AuthUser) -> Result<usize, Problem>;
}

// ---- API keys ------------------------------------------------------------------

pub use hometrip_kernel::api_keys::Scope;

/// An API key as its owner (or an admin) sees it: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: Id,
    pub owner_id: Id,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The key's first characters (`htk_` and its public part), to tell keys apart.
    pub prefix: String,
    pub created_at: Instant,
    pub expires_at: Option<Instant>,
    /// Updated in batches: within a minute or so of a use.
    pub last_used_at: Option<Instant>,
    pub revoked_at: Option<Instant>,
    /// The key that replaced this one by rotation (this one stops at `expires_at`).
    pub replaced_by: Option<Id>,
}

/// A key just issued: `key` is shown this once and stored only hashed.
// No `Debug`: it holds the key.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedApiKey {
    pub id: Id,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub prefix: String,
    pub key: String,
    pub created_at: Instant,
    pub expires_at: Option<Instant>,
}

/// What a new key is asked for; scopes by name (`calendar:read`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub expires_at: Option<Instant>,
}

/// A signed-in user's API keys (never through a key: the edge refuses
/// keys on these routes), and an admin's view of anyone's; in process or
/// over the public routes as that user.
#[async_trait]
pub trait ApiKeys: Send + Sync {
    /// 422 for an empty name, an unknown scope or a past expiry; 409 at the
    /// limit of live keys per account.
    async fn create(&self, owner: &AuthUser, new: &NewApiKey) -> Result<IssuedApiKey, Problem>;
    /// The owner's keys not revoked, newest first.
    async fn list(&self, owner: &AuthUser) -> Result<Vec<ApiKey>, Problem>;
    /// A new key with the same name, scopes and expiry; the old one keeps
    /// working `grace_minutes` (default 60, 0 for none), then stops. 409
    /// for a key already rotated, revoked or expired; 404 for another's.
    async fn rotate(&self, owner: &AuthUser, id: Id, grace_minutes: Option<i64>) -> Result<IssuedApiKey, Problem>;
    /// Stops the key at once in every process; 404 for another's.
    async fn revoke(&self, owner: &AuthUser, id: Id) -> Result<(), Problem>;
    /// Every key of `user`, revoked ones too (admins only).
    async fn keys_of(&self, admin: &AuthUser, user: Id) -> Result<Vec<ApiKey>, Problem>;
    /// Revokes anyone's key (admins only).
    async fn revoke_any(&self, admin: &AuthUser, id: Id, reason: &str) -> Result<(), Problem>;
}

// ---- Events -------------------------------------------------------------------

pub const ACCOUNT_REGISTERED: &str = "auth.account_registered";
pub const EMAIL_VERIFICATION_REQUESTED: &str = "auth.email_verification_requested";
pub const EMAIL_VERIFIED: &str = "auth.email_verified";
pub const PASSWORD_RESET_REQUESTED: &str = "auth.password_reset_requested";
pub const PASSWORD_CHANGED: &str = "auth.password_changed";
/// Two-factor was turned off: the owner is told, in case it was not them.
pub const TWO_FACTOR_DISABLED: &str = "auth.two_factor_disabled";
/// An admin suspended the account: its sessions ended, its listings leave search.
pub const ACCOUNT_SUSPENDED: &str = "auth.account_suspended";
/// The suspension was lifted.
pub const ACCOUNT_REINSTATED: &str = "auth.account_reinstated";
/// An admin began viewing the account as its owner sees it (read-only,
/// time-boxed): the owner is told.
pub const IMPERSONATION_STARTED: &str = "auth.impersonation_started";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpersonationStarted {
    pub user_id: Id,
    pub admin_id: Id,
    pub reason: String,
    pub expires_at: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSuspension {
    pub user_id: Id,
    /// The admin's stated reason (empty for a reinstatement without one).
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRegistered {
    pub user_id: Id,
    pub email: String,
    pub display_name: String,
    /// Preferred language at sign-up (`fr` or `en`).
    pub locale: String,
}

/// Carries a single-use link token for the notification module to email. The
/// token is sealed (`kernel::sealed`, context [`EmailTokenIssued::seal_context`]):
/// the outbox and dead letters never hold it in clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailTokenIssued {
    pub user_id: Id,
    pub email: String,
    pub display_name: String,
    pub sealed_token: String,
    pub expires_at: Instant,
    pub locale: String,
}

impl EmailTokenIssued {
    /// What the sealed token is bound to: its event type and account, so it
    /// opens in no other event.
    pub fn seal_context(event_type: &str, user_id: Id) -> String {
        format!("{event_type}:{user_id}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEvent {
    pub user_id: Id,
}

// ---- Settings -----------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Access token lifetime.
    pub access_ttl_secs: i64,
    /// A session unused this long ends (its refresh token expires).
    pub session_idle_days: i64,
    /// Absolute lifetime of a refresh-token family (a session), whatever its rotations.
    pub session_ttl_days: i64,
    pub verification_ttl_hours: i64,
    pub reset_ttl_minutes: i64,
    /// PKCS#8 PEM of the Ed25519 signing key; empty: generated into the data dir.
    pub jwt_private_key_pem: String,
    /// Base64 of 32 bytes encrypting TOTP secrets at rest; empty: generated into the data dir.
    pub encryption_key: String,
    pub totp_issuer: String,
    /// Concurrent password hashes (argon2id); 0: one per core.
    pub hashing_concurrency: usize,
    pub login_limits: LoginLimits,
    /// Where OAuth sign-in sends the browser back with tokens; empty: answer JSON.
    pub oauth_success_redirect: String,
    /// Requests per authenticated account per window across the API.
    pub rate_limit_per_account: hometrip_kernel::cache::Limit,
    pub api_keys: ApiKeySettings,
    pub oauth: BTreeMap<String, OAuthProviderSettings>,
}

/// API keys: how many an account may hold, how fast each may call, and
/// how often the edges write when keys were used.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySettings {
    /// Live (not revoked, not expired) keys per account.
    pub max_per_account: u32,
    /// Requests per key per window, whatever else the owner does.
    pub rate_limit: hometrip_kernel::cache::Limit,
    /// Seconds between an edge's writes of `last_used_at`.
    pub last_used_flush_secs: u64,
}

/// Login attempts are counted before the password is checked, per key below;
/// a success gives its attempt back.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginLimits {
    /// Failed logins allowed per client IP per window, whatever the account.
    pub ip_failures: u64,
    pub ip_window_secs: u64,
    /// Failed logins allowed per account from one client IP per window: the
    /// lockout a guesser meets, which does not lock the owner out elsewhere.
    pub account_ip_failures: u64,
    pub account_ip_window_secs: u64,
    /// Failed logins allowed per account from all addresses per window: a much
    /// higher ceiling against guesses spread over many addresses.
    pub account_failures: u64,
    pub account_window_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthProviderSettings {
    pub client_id: String,
    pub client_secret: String,
    pub auth_url: String,
    pub token_url: String,
    pub userinfo_url: String,
}
