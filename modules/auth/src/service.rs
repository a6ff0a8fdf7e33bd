//! The in-process implementation of auth: use cases behind the HTTP routes and
//! the [`Accounts`] trait.

use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use async_trait::async_trait;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::Duration;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use hometrip_kernel::auth_context::{revoked_session_key, AccessClaims, Jwk, JwkSet, AUDIENCE, ISSUER};
use hometrip_kernel::cache::{Cache, Limit, RateLimiter};
use hometrip_kernel::db::{Db, DbError};
use hometrip_kernel::events::{Envelope, EventBus};
use hometrip_kernel::sealed::Sealer;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{ErrorCode, Id, Problem};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::api::*;
use crate::domain::{self, RefreshDecision, RefreshState};
use crate::store::{self, AccountRow, NewEmailToken, NewRefreshToken};

mod account_security;
mod api_keys;
mod credentials;
mod sessions;
mod two_factor;

/// What the service needs from the process that hosts it.
pub struct AuthDeps {
    pub db: Db,
    pub bus: Arc<EventBus>,
    pub cache: Arc<dyn Cache>,
    pub settings: AuthSettings,
    pub data_dir: std::path::PathBuf,
    /// Seals the single-use tokens events carry, for the notification module
    /// (keyed by the deployment's service credential).
    pub event_sealer: Sealer,
    /// The rules' clock (API keys' expiry and rotation; tests move it).
    pub clock: hometrip_kernel::time::Clock,
}

pub struct AuthService {
    db: Db,
    bus: Arc<EventBus>,
    cache: Arc<dyn Cache>,
    limiter: RateLimiter,
    pub(crate) settings: AuthSettings,
    signer: Signer,
    sealer: Aes256Gcm,
    event_sealer: Sealer,
    clock: hometrip_kernel::time::Clock,
    /// Owned permits travel into the blocking hash: a client that hangs up
    /// cannot free a slot while its hash still runs.
    hashing: Arc<Semaphore>,
    /// Hash verified for unknown emails, so a login costs the same either way.
    dummy_hash: String,
    pub(crate) http: reqwest::Client,
}

struct Signer {
    key: jsonwebtoken::EncodingKey,
    kid: String,
    jwk: Jwk,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

/// How long an admin may view as a user.
pub const IMPERSONATION_SECS: i64 = 30 * 60;

/// An admin's read-only view as a user: an access token without a refresh
/// token, carrying the admin as `act`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Impersonation {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub expires_at: Instant,
    pub user_id: Id,
    pub read_only: bool,
}

/// Where a login attempt comes from, for throttling and the session record.
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: Option<String>,
}

pub(crate) fn random_ticket() -> String {
    random_token(24)
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

fn db_err(e: DbError) -> Problem {
    Problem::from(e)
}

fn argon2_hasher() -> argon2::Argon2<'static> {
    // OWASP: argon2id, m = 19 MiB, t = 2, p = 1.
    let params = argon2::Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// argon2id at the service's cost, on the calling thread (benchmarks use it directly).
pub fn hash_password_blocking(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2_hasher().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

pub fn verify_password_blocking(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| argon2_hasher().verify_password(password.as_bytes(), &parsed).is_ok())
}

impl Signer {
    fn load(settings: &AuthSettings, data_dir: &Path) -> Result<Signer, String> {
        let pem = if settings.jwt_private_key_pem.trim().is_empty() {
            hometrip_kernel::files::read_or_create_secret(&data_dir.join("keys/jwt-ed25519.pem"), || {
                let mut seed = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut seed);
                ed25519_dalek::SigningKey::from_bytes(&seed)
                    .to_pkcs8_pem(Default::default())
                    .map(|p| p.to_string())
                    .map_err(|e| e.to_string())
            })?
        } else {
            settings.jwt_private_key_pem.clone()
        };
        let signing = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem)
            .map_err(|e| format!("auth.jwt_private_key_pem: not an Ed25519 PKCS#8 key: {e}"))?;
        let public = signing.verifying_key().to_bytes();
        let kid = hex::encode(&Sha256::digest(public)[..8]);
        let der = signing.to_pkcs8_der().map_err(|e| e.to_string())?;
        Ok(Signer {
            key: jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
            jwk: Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: URL_SAFE_NO_PAD.encode(public),
                kid: kid.clone(),
                alg: "EdDSA".into(),
                use_: "sig".into(),
            },
            kid,
        })
    }
}

fn load_sealer(settings: &AuthSettings, data_dir: &Path) -> Result<Aes256Gcm, String> {
    let b64 = if settings.encryption_key.trim().is_empty() {
        hometrip_kernel::files::read_or_create_secret(&data_dir.join("keys/secrets.key"), || {
            let mut key = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut key);
            Ok(STANDARD.encode(key))
        })?
    } else {
        settings.encryption_key.clone()
    };
    let key = STANDARD.decode(b64.trim()).map_err(|_| "auth.encryption_key: not base64".to_owned())?;
    Aes256Gcm::new_from_slice(&key).map_err(|_| "auth.encryption_key: must be 32 bytes".to_owned())
}

impl AuthService {
    pub fn new(deps: AuthDeps) -> Result<Arc<Self>, String> {
        let signer = Signer::load(&deps.settings, &deps.data_dir)?;
        let sealer = load_sealer(&deps.settings, &deps.data_dir)?;
        let permits = match deps.settings.hashing_concurrency {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            n => n,
        };
        let dummy_hash = hash_password_blocking("not a real password, only for timing")?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(AuthService {
            limiter: RateLimiter::new(Arc::clone(&deps.cache)),
            db: deps.db,
            bus: deps.bus,
            cache: deps.cache,
            settings: deps.settings,
            signer,
            sealer,
            event_sealer: deps.event_sealer,
            clock: deps.clock,
            hashing: Arc::new(Semaphore::new(permits)),
            dummy_hash,
            http,
        }))
    }

    pub fn jwk_set(&self) -> JwkSet {
        JwkSet { keys: vec![self.signer.jwk.clone()] }
    }

    // ---- password hashing, bounded so a flood queues instead of starving the server

    async fn hash_password(&self, password: &str) -> Result<String, Problem> {
        let permit = Arc::clone(&self.hashing).acquire_owned().await.map_err(Problem::internal)?;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash_password_blocking(&password)
        })
        .await
        .map_err(Problem::internal)?
        .map_err(Problem::internal)
    }

    async fn verify_password(&self, password: &str, hash: Option<&str>) -> Result<bool, Problem> {
        let permit = Arc::clone(&self.hashing).acquire_owned().await.map_err(Problem::internal)?;
        let password = password.to_owned();
        let (hash, real) = match hash {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash.clone(), false),
        };
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verify_password_blocking(&password, &hash)
        })
        .await
        .map_err(Problem::internal)?;
        Ok(ok && real)
    }

    // ---- secrets at rest

    fn seal(&self, plain: &str) -> Result<String, Problem> {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self.sealer.encrypt(Nonce::from_slice(&nonce), plain.as_bytes()).map_err(Problem::internal)?;
        Ok(STANDARD.encode([nonce.as_slice(), &sealed].concat()))
    }

    fn unseal(&self, sealed: &str) -> Result<String, Problem> {
        let raw = STANDARD.decode(sealed).map_err(Problem::internal)?;
        if raw.len() < 13 {
            return Err(Problem::internal("sealed secret too short"));
        }
        let (nonce, data) = raw.split_at(12);
        let plain = self.sealer.decrypt(Nonce::from_slice(nonce), data).map_err(Problem::internal)?;
        String::from_utf8(plain).map_err(Problem::internal)
    }

    // ---- tokens

    fn access_token(&self, account: &AccountRow, session_id: Id) -> Result<String, Problem> {
        let now = Instant::now().unix();
        let claims = AccessClaims {
            sub: account.id,
            sid: session_id,
            roles: account.role_list(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            nbf: now,
            exp: now + self.settings.access_ttl_secs,
            jti: Id::new(),
            act: None,
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.signer.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.signer.key).map_err(Problem::internal)
    }

    fn pair(&self, account: &AccountRow, session_id: Id, refresh_token: String) -> Result<TokenPair, Problem> {
        Ok(TokenPair {
            access_token: self.access_token(account, session_id)?,
            refresh_token,
            token_type: "Bearer".to_owned(),
            expires_in: self.settings.access_ttl_secs,
        })
    }

    /// Opens a new session (refresh-token family) for `account`.
    pub(crate) async fn open_session(
        &self,
        account: &AccountRow,
        user_agent: Option<String>,
    ) -> Result<TokenPair, Problem> {
        // Every way in (password, second factor, OAuth) comes through here.
        if account.suspended_at.is_some() {
            return Err(Problem::forbidden("this account is suspended"));
        }
        let now = Instant::now();
        let token = random_token(32);
        let session_id = Id::new();
        let session_end = now.plus(Duration::days(self.settings.session_ttl_days));
        store::insert_refresh(
            &self.db,
            &NewRefreshToken {
                id: Id::new(),
                account_id: account.id,
                session_id,
                token_hash: domain::token_digest(&token),
                session_started_at: now,
                issued_at: now,
                expires_at: domain::refresh_expiry(now, self.idle(), session_end),
                session_expires_at: session_end,
                user_agent: user_agent.map(|ua| ua.chars().take(200).collect()),
            },
        )
        .await
        .map_err(db_err)?;
        self.pair(account, session_id, token)
    }

    /// An admin suspends (`Some(reason)`) or reinstates an account. A
    /// suspension ends every session at once (their access tokens are
    /// remembered as revoked in every process); an admin cannot suspend
    /// their own account.
    pub async fn set_suspension(&self, admin: Id, id: Id, reason: Option<&str>) -> Result<AccountSummary, Problem> {
        if let Some(r) = reason {
            if r.trim().is_empty() || r.chars().count() > 2_000 {
                return Err(Problem::field("reason", "must be 1 to 2000 characters"));
            }
            if admin == id {
                return Err(Problem::new(ErrorCode::Conflict, "an admin cannot suspend their own account"));
            }
        }
        self.account_row(id).await?;
        let (event_type, why) = match reason {
            Some(r) => (ACCOUNT_SUSPENDED, r.trim().to_owned()),
            None => (ACCOUNT_REINSTATED, String::new()),
        };
        let event = self.event(event_type, &AccountSuspension { user_id: id, reason: why })?;
        if let Some(ended) =
            store::set_suspension(&self.db, id, reason.map(str::trim), Instant::now(), &event).await.map_err(db_err)?
        {
            self.forget_sessions(&ended).await?;
            self.bus.poke();
        }
        // Also when nothing changed: a retry after a failed cache write mends it.
        self.hold_api_keys(id, reason.is_some()).await?;
        Ok(summary(&self.account_row(id).await?))
    }

    /// An admin views as `id` for [`IMPERSONATION_SECS`], read-only (the
    /// edge refuses anything but reads for such a token). Never as another
    /// admin or a suspended account; the owner is told
    /// (`auth.impersonation_started`).
    pub async fn impersonate(&self, admin: Id, id: Id, reason: &str) -> Result<Impersonation, Problem> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 2_000 {
            return Err(Problem::field("reason", "must be 1 to 2000 characters"));
        }
        let account = self.account_row(id).await?;
        if account.role_list().iter().any(|r| r == "admin") {
            return Err(Problem::forbidden("admins cannot be impersonated"));
        }
        if account.suspended_at.is_some() {
            return Err(Problem::new(ErrorCode::Conflict, "the account is suspended"));
        }
        let now = Instant::now();
        let expires_at = now.plus(Duration::seconds(IMPERSONATION_SECS));
        let claims = AccessClaims {
            sub: account.id,
            // A session of its own, in no refresh-token family: it cannot be renewed.
            sid: Id::new(),
            roles: account.role_list(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now.unix(),
            nbf: now.unix(),
            exp: expires_at.unix(),
            jti: Id::new(),
            act: Some(hometrip_kernel::auth_context::ActingParty { sub: admin }),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.signer.kid.clone());
        let access_token = jsonwebtoken::encode(&header, &claims, &self.signer.key).map_err(Problem::internal)?;
        let started = ImpersonationStarted { user_id: id, admin_id: admin, reason: reason.to_owned(), expires_at };
        self.bus.publish(&self.event(IMPERSONATION_STARTED, &started)?).await.map_err(db_err)?;
        Ok(Impersonation {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_in: IMPERSONATION_SECS,
            expires_at,
            user_id: id,
            read_only: true,
        })
    }

    fn idle(&self) -> Duration {
        Duration::days(self.settings.session_idle_days)
    }

    /// Remembers revoked sessions until their access tokens have expired, so
    /// those stop working at once, not at expiry.
    async fn forget_sessions(&self, sessions: &[Id]) -> Result<(), Problem> {
        let ttl = std::time::Duration::from_secs(u64::try_from(self.settings.access_ttl_secs).unwrap_or(900) + 60);
        for sid in sessions {
            self.cache.set(&revoked_session_key(sid), "1", ttl).await?;
        }
        Ok(())
    }

    fn event(&self, event_type: &str, data: &impl Serialize) -> Result<Envelope, Problem> {
        Envelope::new(MODULE, event_type, data).map_err(db_err)
    }

    pub(crate) fn registered_event(&self, account: &AccountRow) -> Result<Envelope, Problem> {
        self.event(
            ACCOUNT_REGISTERED,
            &AccountRegistered {
                user_id: account.id,
                email: account.email.clone(),
                display_name: account.display_name.clone(),
                locale: account.locale.clone(),
            },
        )
    }

    /// Issues a single-use email token and the event that gets it emailed.
    async fn send_email_token(
        &self,
        account: &AccountRow,
        purpose: &str,
        ttl: Duration,
        event_type: &str,
    ) -> Result<(), Problem> {
        let (token, row) = self.email_token(account, purpose, ttl);
        let event = self.event(event_type, &self.token_event(account, event_type, &token, &row)?)?;
        store::insert_email_token(&self.db, &row, &[event]).await.map_err(db_err)?;
        self.bus.poke();
        Ok(())
    }

    fn email_token(&self, account: &AccountRow, purpose: &str, ttl: Duration) -> (String, NewEmailToken) {
        let token = random_token(32);
        let now = Instant::now();
        let row = NewEmailToken {
            id: Id::new(),
            account_id: account.id,
            purpose: purpose.to_owned(),
            token_hash: domain::token_digest(&token),
            created_at: now,
            expires_at: now.plus(ttl),
        };
        (token, row)
    }

    /// The event's token is sealed: outbox rows and dead letters never hold it in clear.
    fn token_event(
        &self,
        account: &AccountRow,
        event_type: &str,
        token: &str,
        row: &NewEmailToken,
    ) -> Result<EmailTokenIssued, Problem> {
        let context = EmailTokenIssued::seal_context(event_type, account.id);
        Ok(EmailTokenIssued {
            user_id: account.id,
            email: account.email.clone(),
            display_name: account.display_name.clone(),
            sealed_token: self.event_sealer.seal(&context, token).map_err(Problem::internal)?,
            expires_at: row.expires_at,
            locale: account.locale.clone(),
        })
    }

    // ---- use cases

    pub async fn register(
        &self,
        email: &str,
        password: &str,
        display_name: &str,
        locale: &str,
    ) -> Result<AccountSummary, Problem> {
        let mut errors = Vec::new();
        let email = domain::normalize_email(email).map_err(|e| errors.push(e)).ok();
        let name = domain::normalize_display_name(display_name).map_err(|e| errors.push(e)).ok();
        let inputs = domain::personal_words(email.as_deref().unwrap_or(""), name.as_deref().unwrap_or(""));
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        if let Err(e) = domain::check_password(password, &inputs) {
            errors.push(e);
        }
        let (Some(email), Some(name), true) = (email, name, errors.is_empty()) else {
            return Err(Problem::validation(errors));
        };
        let hash = self.hash_password(password).await?;
        let account = AccountRow::new(email, name, Some(hash), false, "", locale);
        let (token, token_row) = self.email_token(
            &account,
            store::PURPOSE_VERIFY_EMAIL,
            Duration::hours(self.settings.verification_ttl_hours),
        );
        let events = [
            self.registered_event(&account)?,
            self.event(
                EMAIL_VERIFICATION_REQUESTED,
                &self.token_event(&account, EMAIL_VERIFICATION_REQUESTED, &token, &token_row)?,
            )?,
        ];
        match store::create_account(&self.db, &account, Some(&token_row), None, &events).await {
            Ok(()) => {}
            Err(DbError::Conflict(_)) => {
                return Err(Problem::new(ErrorCode::EmailTaken, "an account with this email already exists"))
            }
            Err(e) => return Err(db_err(e)),
        }
        self.bus.poke();
        Ok(summary(&account))
    }

    pub async fn resend_verification(&self, user_id: Id) -> Result<(), Problem> {
        let account = self.account_row(user_id).await?;
        if account.email_verified {
            return Ok(());
        }
        let limit = Limit { max: 3, window_secs: 3600 };
        if let Err(retry) = self.limiter.hit(&format!("verify-resend:{user_id}"), limit).await? {
            return Err(Problem::new(ErrorCode::RateLimited, "verification email sent recently").retry_after(retry));
        }
        let ttl = Duration::hours(self.settings.verification_ttl_hours);
        self.send_email_token(&account, store::PURPOSE_VERIFY_EMAIL, ttl, EMAIL_VERIFICATION_REQUESTED).await
    }

    pub async fn verify_email(&self, token: &str) -> Result<(), Problem> {
        let digest = domain::token_digest(token.trim());
        let found = store::verify_email(&self.db, &digest, Instant::now(), |user_id| {
            Envelope::new(MODULE, EMAIL_VERIFIED, &AccountEvent { user_id })
        })
        .await
        .map_err(db_err)?;
        match found {
            Some((_, ended)) => {
                self.forget_sessions(&ended).await?;
                self.bus.poke();
                Ok(())
            }
            None => Err(Problem::new(ErrorCode::BadRequest, "unknown, used or expired verification token")),
        }
    }

    pub async fn refresh(&self, refresh_token: &str, user_agent: Option<String>) -> Result<TokenPair, Problem> {
        let invalid = || Problem::new(ErrorCode::InvalidToken, "refresh token is invalid, expired or revoked");
        let digest = domain::token_digest(refresh_token.trim());
        let row = store::refresh_by_digest(&self.db, &digest).await.map_err(db_err)?.ok_or_else(invalid)?;
        let now = Instant::now();
        let state = RefreshState {
            used: row.used_at.is_some(),
            revoked: row.revoked_at.is_some(),
            expires_at: row.expires_at,
            session_expires_at: row.session_expires_at,
        };
        let reuse = async {
            tracing::warn!(session = %row.session_id, account = %row.account_id, "refresh token reuse: session revoked");
            store::revoke_session(&self.db, row.session_id, now).await.map_err(db_err)?;
            self.forget_sessions(&[row.session_id]).await
        };
        match domain::refresh_decision(state, now) {
            RefreshDecision::Refuse => return Err(invalid()),
            RefreshDecision::Reuse => {
                reuse.await?;
                return Err(invalid());
            }
            RefreshDecision::Rotate => {}
        }
        let account = match self.account_row(row.account_id).await {
            Ok(a) => a,
            Err(p) if p.code == ErrorCode::NotFound => return Err(invalid()),
            Err(p) => return Err(p),
        };
        let token = random_token(32);
        let next = NewRefreshToken {
            id: Id::new(),
            account_id: row.account_id,
            session_id: row.session_id,
            token_hash: domain::token_digest(&token),
            session_started_at: row.session_started_at,
            issued_at: now,
            expires_at: domain::refresh_expiry(now, self.idle(), row.session_expires_at),
            session_expires_at: row.session_expires_at,
            user_agent: user_agent.or(row.user_agent.clone()),
        };
        if !store::rotate_refresh(&self.db, row.id, &next, now).await.map_err(db_err)? {
            reuse.await?;
            return Err(invalid());
        }
        self.pair(&account, row.session_id, token)
    }

    pub async fn logout(&self, refresh_token: &str) -> Result<(), Problem> {
        let digest = domain::token_digest(refresh_token.trim());
        if let Some(row) = store::refresh_by_digest(&self.db, &digest).await.map_err(db_err)? {
            store::revoke_session(&self.db, row.session_id, Instant::now()).await.map_err(db_err)?;
            self.forget_sessions(&[row.session_id]).await?;
        }
        Ok(())
    }

    pub async fn sessions(&self, user_id: Id, current: Id) -> Result<Vec<SessionInfo>, Problem> {
        let rows = store::live_sessions(&self.db, user_id, Instant::now()).await.map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|r| SessionInfo {
                id: r.session_id,
                current: r.session_id == current,
                started_at: r.session_started_at,
                last_refreshed_at: r.issued_at,
                expires_at: r.session_expires_at,
                user_agent: r.user_agent,
            })
            .collect())
    }

    /// Ends every session of the user but the one making the call.
    pub async fn revoke_other_sessions(&self, user_id: Id, current: Id) -> Result<usize, Problem> {
        let revoked =
            store::revoke_sessions_except(&self.db, user_id, Some(current), Instant::now()).await.map_err(db_err)?;
        self.forget_sessions(&revoked).await?;
        Ok(revoked.len())
    }

    /// First admin account (CLI): creates a verified admin, or grants the role
    /// to an existing account whose password matches.
    pub async fn create_admin(&self, email: &str, password: &str) -> Result<AccountSummary, Problem> {
        let email = domain::normalize_email(email).map_err(|e| Problem::validation(vec![e]))?;
        if let Some(existing) = store::account_by_email(&self.db, &email).await.map_err(db_err)? {
            if !self.verify_password(password, existing.password_hash.as_deref()).await? {
                return Err(Problem::new(ErrorCode::InvalidCredentials, "the account exists with another password"));
            }
            return self.set_role(existing.id, "admin", true).await;
        }
        let words = domain::personal_words(&email, "");
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        domain::check_password(password, &words).map_err(|e| Problem::validation(vec![e]))?;
        let name = email.split('@').next().unwrap_or("admin").to_owned();
        let hash = self.hash_password(password).await?;
        let account = AccountRow::new(email, name, Some(hash), true, "admin", "en");
        let event = self.registered_event(&account)?;
        store::create_account(&self.db, &account, None, None, &[event]).await.map_err(db_err)?;
        self.bus.poke();
        Ok(summary(&account))
    }

    pub(crate) async fn account_row(&self, id: Id) -> Result<AccountRow, Problem> {
        store::account_by_id(&self.db, id).await.map_err(db_err)?.ok_or_else(|| Problem::not_found("account"))
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    pub(crate) fn cache(&self) -> &Arc<dyn Cache> {
        &self.cache
    }

    pub(crate) fn bus(&self) -> &Arc<EventBus> {
        &self.bus
    }
}

fn unix_now() -> u64 {
    u64::try_from(Instant::now().unix()).unwrap_or(0)
}

pub(crate) fn summary(a: &AccountRow) -> AccountSummary {
    AccountSummary {
        id: a.id,
        email: a.email.clone(),
        display_name: a.display_name.clone(),
        locale: a.locale.clone(),
        email_verified: a.email_verified,
        roles: a.role_list(),
        totp_enabled: a.totp_secret.is_some(),
        suspended: a.suspended_at.is_some(),
        created_at: a.created_at,
    }
}

#[async_trait]
impl Accounts for AuthService {
    async fn account(&self, id: Id) -> Result<Option<AccountSummary>, Problem> {
        Ok(store::account_by_id(&self.db, id).await.map_err(db_err)?.as_ref().map(summary))
    }

    async fn accounts(&self, ids: &[Id]) -> Result<Vec<AccountSummary>, Problem> {
        if ids.len() > 1000 {
            return Err(Problem::field("ids", "at most 1000 ids"));
        }
        Ok(store::accounts_by_ids(&self.db, ids).await.map_err(db_err)?.iter().map(summary).collect())
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<AccountSummary>, Problem> {
        let Ok(email) = domain::normalize_email(email) else {
            return Ok(None);
        };
        Ok(store::account_by_email(&self.db, &email).await.map_err(db_err)?.as_ref().map(summary))
    }

    async fn jwks(&self) -> Result<JwkSet, Problem> {
        Ok(self.jwk_set())
    }

    async fn set_role(&self, id: Id, role: &str, granted: bool) -> Result<AccountSummary, Problem> {
        if !domain::valid_role(role) {
            return Err(Problem::field("role", "unknown role"));
        }
        let account = self.account_row(id).await?;
        let mut roles = account.role_list();
        roles.retain(|r| r != role);
        if granted {
            roles.push(role.to_owned());
        }
        roles.sort();
        // A withdrawn role must stop at once: the access tokens carry the roles, so
        // every session ends (and is remembered as revoked), like a password change.
        let withdrawn = roles.len() < account.role_list().len();
        let ended = store::set_roles(&self.db, id, &roles.join(","), withdrawn).await.map_err(db_err)?;
        self.forget_sessions(&ended).await?;
        Ok(summary(&self.account_row(id).await?))
    }
}
