//! Passwords: sign-in with its throttling, a signed-in change, the
//! forgotten-password email and the reset.

use chrono::Duration;
use hometrip_kernel::cache::Limit;
use hometrip_kernel::events::Envelope;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{ErrorCode, FieldError, Id, Problem};

use super::{db_err, AuthService, ClientInfo, TokenPair};
use crate::api::*;
use crate::domain;
use crate::store;

impl AuthService {
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
        let address = hometrip_kernel::http::limit_subject(&client.ip);
        let ip_key = format!("login-ip:{address}");
        // Hashed: the key stays short whatever the client sends.
        let raw = email.trim().to_lowercase();
        let account = domain::token_digest(normalized.as_deref().unwrap_or(&raw));
        let account_ip_key = format!("login-account-ip:{account}:{address}");
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

    /// A signed-in user changes their password, proving the current one; every
    /// other session ends and the owner is emailed.
    pub async fn change_password(
        &self,
        user: Id,
        session: Id,
        current: &str,
        new_password: &str,
        revoke_api_keys: bool,
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
        let audit = self.keys_revoked_audit("POST /api/v1/auth/password/change");
        let revoke = revoke_api_keys.then_some(&audit as store::KeyRevoked<'_>);
        let (ended, keys) = store::change_password(&self.db, user, &new_hash, session, Instant::now(), &event, revoke)
            .await
            .map_err(db_err)?;
        self.forget_sessions(&ended).await?;
        self.forget_keys(&keys).await?;
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
    pub async fn reset_password(&self, token: &str, new_password: &str, revoke_api_keys: bool) -> Result<(), Problem> {
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
        let audit = self.keys_revoked_audit("POST /api/v1/auth/password/reset");
        let revoke = revoke_api_keys.then_some(&audit as store::KeyRevoked<'_>);
        let event = |user_id| Envelope::new(MODULE, PASSWORD_CHANGED, &AccountEvent { user_id });
        let outcome =
            store::reset_password(&self.db, &digest, &hash, Instant::now(), event, revoke).await.map_err(db_err)?;
        let Some((_, sessions, keys)) = outcome else { return Err(unknown()) };
        self.forget_sessions(&sessions).await?;
        self.forget_keys(&keys).await?;
        self.bus.poke();
        Ok(())
    }
}
