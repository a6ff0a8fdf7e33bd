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
use hometrip_kernel::{ErrorCode, FieldError, Id, Problem};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::api::*;
use crate::domain::{self, RefreshDecision, RefreshState};
use crate::store::{self, AccountRow, NewEmailToken, NewRefreshToken};

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
    hashing: Semaphore,
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

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TotpSetup {
    pub secret: String,
    pub otpauth_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionInfo {
    pub id: Id,
    pub current: bool,
    pub started_at: Instant,
    pub last_refreshed_at: Instant,
    pub expires_at: Instant,
    pub user_agent: Option<String>,
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
            hashing: Semaphore::new(permits),
            dummy_hash,
            http,
        }))
    }

    pub fn jwk_set(&self) -> JwkSet {
        JwkSet { keys: vec![self.signer.jwk.clone()] }
    }

    // ---- password hashing, bounded so a flood queues instead of starving the server

    async fn hash_password(&self, password: &str) -> Result<String, Problem> {
        let _permit = self.hashing.acquire().await.map_err(Problem::internal)?;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_password_blocking(&password))
            .await
            .map_err(Problem::internal)?
            .map_err(Problem::internal)
    }

    async fn verify_password(&self, password: &str, hash: Option<&str>) -> Result<bool, Problem> {
        let _permit = self.hashing.acquire().await.map_err(Problem::internal)?;
        let password = password.to_owned();
        let (hash, real) = match hash {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash.clone(), false),
        };
        let ok = tokio::task::spawn_blocking(move || verify_password_blocking(&password, &hash))
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
            Some(_) => {
                self.bus.poke();
                Ok(())
            }
            None => Err(Problem::new(ErrorCode::BadRequest, "unknown, used or expired verification token")),
        }
    }

    pub async fn login(
        &self,
        email: &str,
        password: &str,
        totp_code: Option<&str>,
        client: &ClientInfo,
    ) -> Result<TokenPair, Problem> {
        let limits = self.settings.login_limits;
        // A malformed email matches no account; it is still throttled and hashed like any other.
        let normalized = domain::normalize_email(email).ok();
        let ip_key = format!("login-ip:{}", client.ip);
        // Hashed: the key stays short whatever the client sends.
        let raw = email.trim().to_lowercase();
        let account = domain::token_digest(normalized.as_deref().unwrap_or(&raw));
        let account_ip_key = format!("login-account-ip:{account}:{}", client.ip);
        let account_key = format!("login-account:{account}");
        let ip_limit = Limit { max: limits.ip_failures, window_secs: limits.ip_window_secs };
        let account_ip_limit = Limit { max: limits.account_ip_failures, window_secs: limits.account_ip_window_secs };
        let account_limit = Limit { max: limits.account_failures, window_secs: limits.account_window_secs };
        // Every attempt is counted before the password is checked, so parallel guesses
        // cannot all pass a check made before any of them failed; a success gives its
        // attempt back, so only failures add up. The lockout a guesser meets is per
        // (account, address): guesses from elsewhere do not lock the owner out of their
        // own network; the per-account ceiling is much higher. Checked in this order, an
        // attempt refused at the (account, address) limit never reaches the ceiling.
        for (key, limit) in [(&ip_key, ip_limit), (&account_ip_key, account_ip_limit), (&account_key, account_limit)] {
            if let Err(retry) = self.limiter.hit(key, limit).await? {
                return Err(
                    Problem::new(ErrorCode::RateLimited, "too many failed logins; try again later").retry_after(retry)
                );
            }
        }
        let account = match &normalized {
            Some(e) => store::account_by_email(&self.db, e).await.map_err(db_err)?,
            None => None,
        };
        // No stored password is longer than the policy allows: a huge one is refused without hashing it.
        let password_ok = password.len() <= 4 * domain::PASSWORD_MAX_CHARS
            && self.verify_password(password, account.as_ref().and_then(|a| a.password_hash.as_deref())).await?;
        let Some(account) = account.filter(|_| password_ok) else {
            return Err(Problem::new(ErrorCode::InvalidCredentials, "email or password is incorrect"));
        };
        if account.totp_secret.is_some() {
            let Some(code) = totp_code.map(str::trim).filter(|c| !c.is_empty()) else {
                // The password was right: asking for the second factor is not a failure.
                self.limiter.release(&ip_key).await?;
                self.limiter.release(&account_ip_key).await?;
                self.limiter.release(&account_key).await?;
                return Err(
                    Problem::new(ErrorCode::TotpRequired, "a two-factor code is required").with("totp_required", true)
                );
            };
            if !self.second_factor_ok(&account, code).await? {
                return Err(
                    Problem::new(ErrorCode::TotpRequired, "the two-factor code is invalid").with("totp_required", true)
                );
            }
        }
        self.limiter.release(&ip_key).await?;
        self.limiter.reset(&account_ip_key).await?;
        // Only given back, not reset: the owner signing in must not hand a distributed
        // guesser a fresh ceiling.
        self.limiter.release(&account_key).await?;
        self.open_session(&account, client.user_agent.clone()).await
    }

    pub(crate) async fn check_second_factor(&self, account: &AccountRow, code: &str) -> Result<bool, Problem> {
        self.second_factor_ok(account, code).await
    }

    /// A current TOTP code (once) or an unused recovery code.
    async fn second_factor_ok(&self, account: &AccountRow, code: &str) -> Result<bool, Problem> {
        let Some(sealed) = account.totp_secret.as_deref() else {
            return Ok(false);
        };
        let totp = self.totp(account, &self.unseal(sealed)?)?;
        let now = unix_now();
        let last = account.totp_last_step.and_then(|s| u64::try_from(s).ok());
        if let Some(step) = domain::accept_totp(code, now, last, |s| totp.generate(s * domain::TOTP_STEP_SECS)) {
            let step = i64::try_from(step).map_err(Problem::internal)?;
            return store::accept_totp_step(&self.db, account.id, step).await.map_err(db_err);
        }
        if domain::looks_like_recovery_code(code) {
            return self.spend_recovery_code(account.id, &domain::normalize_recovery_code(code)).await;
        }
        Ok(false)
    }

    /// Finds the matching unused code among the account's (argon2, salted: no
    /// lookup by hash) and spends it.
    async fn spend_recovery_code(&self, account_id: Id, normalized: &str) -> Result<bool, Problem> {
        let codes = store::unused_recovery_codes(&self.db, account_id).await.map_err(db_err)?;
        if codes.is_empty() {
            return Ok(false);
        }
        let found = {
            let _permit = self.hashing.acquire().await.map_err(Problem::internal)?;
            let normalized = normalized.to_owned();
            tokio::task::spawn_blocking(move || {
                codes
                    .into_iter()
                    .find(|(_, hash)| domain::recovery_code_matches(&normalized, hash, verify_password_blocking))
                    .map(|(id, _)| id)
            })
            .await
            .map_err(Problem::internal)?
        };
        match found {
            Some(id) => store::spend_recovery_code(&self.db, id).await.map_err(db_err),
            None => Ok(false),
        }
    }

    fn totp(&self, account: &AccountRow, secret_b32: &str) -> Result<totp_rs::TOTP, Problem> {
        let secret = totp_rs::Secret::Encoded(secret_b32.to_owned())
            .to_bytes()
            .map_err(|e| Problem::internal(format!("{e:?}")))?;
        totp_rs::TOTP::new(
            totp_rs::Algorithm::SHA1,
            6,
            1,
            domain::TOTP_STEP_SECS,
            secret,
            Some(self.settings.totp_issuer.clone()),
            account.email.clone(),
        )
        .map_err(Problem::internal)
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

    /// A signed-in user changes their password, proving the current one; every
    /// other session ends and the owner is emailed.
    pub async fn change_password(
        &self,
        user: Id,
        session: Id,
        current: &str,
        new_password: &str,
    ) -> Result<(), Problem> {
        let account = self.account_row(user).await?;
        let Some(hash) = account.password_hash.as_deref() else {
            return Err(Problem::new(ErrorCode::Conflict, "this account has no password yet; use the password reset"));
        };
        let limit = Limit { max: 5, window_secs: 900 };
        if let Err(retry) = self.limiter.hit(&format!("password-change:{user}"), limit).await? {
            return Err(Problem::new(ErrorCode::RateLimited, "too many attempts; try again later").retry_after(retry));
        }
        if !self.verify_password(current, Some(hash)).await? {
            return Err(Problem::field("current_password", "is incorrect"));
        }
        let words = domain::personal_words(&account.email, &account.display_name);
        let mut words: Vec<&str> = words.iter().map(String::as_str).collect();
        words.push(current);
        domain::check_password(new_password, &words)
            .map_err(|e| Problem::validation(vec![FieldError::new("new_password", e.message)]))?;
        let new_hash = self.hash_password(new_password).await?;
        let event = self.event(PASSWORD_CHANGED, &AccountEvent { user_id: user })?;
        let ended =
            store::change_password(&self.db, user, &new_hash, session, Instant::now(), &event).await.map_err(db_err)?;
        self.forget_sessions(&ended).await?;
        self.limiter.reset(&format!("password-change:{user}")).await?;
        self.bus.poke();
        Ok(())
    }

    /// Always succeeds from the caller's view: whether the account exists is not revealed.
    pub async fn forgot_password(&self, email: &str) -> Result<(), Problem> {
        let Ok(email) = domain::normalize_email(email) else {
            return Ok(());
        };
        let limit = Limit { max: 5, window_secs: 3600 };
        if self.limiter.hit(&format!("forgot:{email}"), limit).await?.is_err() {
            return Ok(());
        }
        let Some(account) = store::account_by_email(&self.db, &email).await.map_err(db_err)? else {
            return Ok(());
        };
        let ttl = Duration::minutes(self.settings.reset_ttl_minutes);
        self.send_email_token(&account, store::PURPOSE_RESET_PASSWORD, ttl, PASSWORD_RESET_REQUESTED).await
    }

    /// Sets a new password from a reset token and ends every session. Two-factor
    /// stays on: a reset never bypasses it.
    pub async fn reset_password(&self, token: &str, new_password: &str) -> Result<(), Problem> {
        let unknown = || Problem::new(ErrorCode::BadRequest, "unknown, used or expired reset token");
        let digest = domain::token_digest(token.trim());
        // The token is checked before any hashing, so random tokens cost no argon2 work;
        // the transaction below checks it again as it spends it.
        let account_id = store::live_email_token(&self.db, &digest, store::PURPOSE_RESET_PASSWORD, Instant::now())
            .await
            .map_err(db_err)?
            .ok_or_else(unknown)?;
        let account = self.account_row(account_id).await?;
        let words = domain::personal_words(&account.email, &account.display_name);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        domain::check_password(new_password, &words)
            .map_err(|e| Problem::validation(vec![FieldError::new("new_password", e.message)]))?;
        let hash = self.hash_password(new_password).await?;
        let outcome = store::reset_password(&self.db, &digest, &hash, Instant::now(), |user_id| {
            Envelope::new(MODULE, PASSWORD_CHANGED, &AccountEvent { user_id })
        })
        .await
        .map_err(db_err)?;
        let Some((_, sessions)) = outcome else { return Err(unknown()) };
        self.forget_sessions(&sessions).await?;
        self.bus.poke();
        Ok(())
    }

    pub async fn totp_setup(&self, user_id: Id) -> Result<TotpSetup, Problem> {
        let account = self.account_row(user_id).await?;
        if account.totp_secret.is_some() {
            return Err(Problem::new(ErrorCode::Conflict, "two-factor authentication is already on"));
        }
        let secret = totp_rs::Secret::generate_secret().to_encoded().to_string();
        let totp = self.totp(&account, &secret)?;
        store::set_pending_totp(&self.db, user_id, &self.seal(&secret)?).await.map_err(db_err)?;
        Ok(TotpSetup { secret, otpauth_url: totp.get_url() })
    }

    pub async fn totp_enable(&self, user_id: Id, code: &str) -> Result<Vec<String>, Problem> {
        let account = self.account_row(user_id).await?;
        if account.totp_secret.is_some() {
            return Err(Problem::new(ErrorCode::Conflict, "two-factor authentication is already on"));
        }
        let sealed = account
            .totp_pending_secret
            .clone()
            .ok_or_else(|| Problem::new(ErrorCode::Conflict, "call /auth/2fa/setup first"))?;
        let totp = self.totp(&account, &self.unseal(&sealed)?)?;
        let step = domain::accept_totp(code, unix_now(), None, |s| totp.generate(s * domain::TOTP_STEP_SECS))
            .ok_or_else(|| Problem::field("code", "the code does not match"))?;
        let codes: Vec<String> = (0..domain::RECOVERY_CODE_COUNT).map(|_| domain::new_recovery_code()).collect();
        let hashes = {
            let _permit = self.hashing.acquire().await.map_err(Problem::internal)?;
            let normalized: Vec<String> = codes.iter().map(|c| domain::normalize_recovery_code(c)).collect();
            tokio::task::spawn_blocking(move || {
                normalized.iter().map(|c| hash_password_blocking(c)).collect::<Result<Vec<String>, String>>()
            })
            .await
            .map_err(Problem::internal)?
            .map_err(Problem::internal)?
        };
        let step = i64::try_from(step).map_err(Problem::internal)?;
        store::enable_totp(&self.db, user_id, &sealed, step, &hashes).await.map_err(db_err)?;
        Ok(codes)
    }

    /// Turning two-factor off takes the password and a current code (a stolen
    /// access token alone is not enough), is rate-limited, ends every other
    /// session and emails the owner.
    pub async fn totp_disable(&self, user_id: Id, session: Id, password: &str, code: &str) -> Result<(), Problem> {
        let account = self.account_row(user_id).await?;
        if account.totp_secret.is_none() {
            return Err(Problem::new(ErrorCode::Conflict, "two-factor authentication is off"));
        }
        let Some(hash) = account.password_hash.as_deref() else {
            return Err(Problem::new(ErrorCode::Conflict, "this account has no password yet; use the password reset"));
        };
        let key = format!("2fa-disable:{user_id}");
        // Counted before the checks, like a login.
        if let Err(retry) = self.limiter.hit(&key, Limit { max: 5, window_secs: 900 }).await? {
            return Err(Problem::new(ErrorCode::RateLimited, "too many attempts; try again later").retry_after(retry));
        }
        if password.len() > 4 * domain::PASSWORD_MAX_CHARS || !self.verify_password(password, Some(hash)).await? {
            return Err(Problem::new(ErrorCode::InvalidCredentials, "the password is incorrect"));
        }
        if !self.second_factor_ok(&account, code).await? {
            return Err(
                Problem::new(ErrorCode::TotpRequired, "the two-factor code is invalid").with("totp_required", true)
            );
        }
        let event = self.event(TWO_FACTOR_DISABLED, &AccountEvent { user_id })?;
        let ended = store::disable_totp(&self.db, user_id, session, &event).await.map_err(db_err)?;
        self.forget_sessions(&ended).await?;
        self.limiter.reset(&key).await?;
        self.bus.poke();
        Ok(())
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
        created_at: a.created_at,
    }
}

#[async_trait]
impl Accounts for AuthService {
    async fn account(&self, id: Id) -> Result<Option<AccountSummary>, Problem> {
        Ok(store::account_by_id(&self.db, id).await.map_err(db_err)?.as_ref().map(summary))
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
