//! Two-factor: TOTP setup, enabling and turning off, and the second factor at
//! sign-in (a current code once, or an unused recovery code).

use std::sync::Arc;

use hometrip_kernel::cache::Limit;
use hometrip_kernel::{ErrorCode, Id, Problem};

use super::{db_err, hash_password_blocking, unix_now, verify_password_blocking, AuthService};
use crate::api::TotpSetup;
use crate::api::*;
use crate::domain;
use crate::store::{self, AccountRow};

impl AuthService {
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
            let permit = Arc::clone(&self.hashing).acquire_owned().await.map_err(Problem::internal)?;
            let normalized: Vec<String> = codes.iter().map(|c| domain::normalize_recovery_code(c)).collect();
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
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

    pub(crate) async fn check_second_factor(&self, account: &AccountRow, code: &str) -> Result<bool, Problem> {
        self.second_factor_ok(account, code).await
    }

    /// A current TOTP code (once) or an unused recovery code.
    pub(super) async fn second_factor_ok(&self, account: &AccountRow, code: &str) -> Result<bool, Problem> {
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
            let permit = Arc::clone(&self.hashing).acquire_owned().await.map_err(Problem::internal)?;
            let normalized = normalized.to_owned();
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
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
}
