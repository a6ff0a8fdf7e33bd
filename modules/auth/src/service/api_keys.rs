//! API keys in process: issued, listed, rotated and revoked by their owner
//! (each recorded in the audit log), checked for the edges
//! ([`KeyAuthority`]), and an admin's view and revocation of anyone's.

use async_trait::async_trait;
use hometrip_kernel::api_keys::{held_owner, key_end, revoked_key, KeyAuthority, KeyGrant, KeyUse, STATE_TTL};
use hometrip_kernel::audit::{AdminAction, ADMIN_ACTION};
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::db::DbError;
use hometrip_kernel::events::Envelope;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{ErrorCode, Id, Problem};
use rand::RngCore;

use super::{db_err, AuthService};
use crate::api::{ApiKey, ApiKeys, IssuedApiKey, NewApiKey, MODULE};
use crate::domain::api_keys as rules;
use crate::domain::token_digest;
use crate::store::{self, ApiKeyRow, Rotation};

fn view(row: ApiKeyRow) -> ApiKey {
    ApiKey {
        id: row.id,
        owner_id: row.owner_id,
        name: row.name,
        scopes: rules::scopes_from_text(&row.scopes),
        prefix: rules::shown_prefix(&row.public_part),
        created_at: row.created_at,
        expires_at: row.expires_at,
        last_used_at: row.last_used_at,
        revoked_at: row.revoked_at,
        replaced_by: row.replaced_by,
    }
}

fn refused(e: hometrip_kernel::FieldError) -> Problem {
    Problem::validation(vec![e])
}

fn key_audit_record(
    at: Instant,
    owner: Id,
    action: &str,
    key: Id,
    status: u16,
    reason: String,
) -> Result<Envelope, DbError> {
    let record = AdminAction {
        id: Id::new(),
        at,
        actor_id: owner,
        action: action.to_owned(),
        target: format!("api-keys/{key}"),
        reason,
        status,
        request_id: hometrip_kernel::telemetry::current_request_id().unwrap_or_default(),
    };
    Envelope::new(MODULE, ADMIN_ACTION, &record)
}

fn not_found() -> Problem {
    Problem::new(ErrorCode::NotFound, "no such API key")
}

impl AuthService {
    /// A new key's row and its text (shown once).
    fn mint(&self, owner: Id, name: String, scopes: &str, expires_at: Option<Instant>) -> (ApiKeyRow, String) {
        let mut public = [0u8; rules::PUBLIC_CHARS];
        let mut secret = [0u8; rules::SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut public);
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let (public_part, key) = rules::key_text(&public, &secret);
        let row = ApiKeyRow {
            id: Id::new(),
            owner_id: owner,
            name,
            public_part,
            key_hash: token_digest(&key),
            scopes: scopes.to_owned(),
            created_at: self.clock.now(),
            expires_at,
            last_used_at: None,
            revoked_at: None,
            replaced_by: None,
        };
        (row, key)
    }

    /// The audit record of an owner's change to a key (admins' calls are
    /// recorded by the edge).
    fn key_audit(&self, owner: Id, action: &str, key: Id, status: u16, reason: String) -> Result<Envelope, Problem> {
        key_audit_record(self.clock.now(), owner, action, key, status, reason).map_err(db_err)
    }

    /// The audit record of each key a new password revokes (`action` is the
    /// call's), made in the password's transaction.
    pub(super) fn keys_revoked_audit(
        &self,
        action: &'static str,
    ) -> impl Fn(Id, Id) -> Result<Envelope, DbError> + Send + Sync {
        let at = self.clock.now();
        move |owner, key| key_audit_record(at, owner, action, key, 204, "revoked with a new password".to_owned())
    }

    /// Stops `keys` in every edge at once (they are revoked in the database):
    /// every edge reads this on each use, not only when its remembered grants
    /// run out.
    pub(super) async fn forget_keys(&self, keys: &[Id]) -> Result<(), Problem> {
        for key in keys {
            self.cache.set(&revoked_key(key), "1", STATE_TTL).await?;
        }
        Ok(())
    }

    async fn owned_key(&self, owner: Id, id: Id) -> Result<ApiKeyRow, Problem> {
        match store::key(&self.db, id).await.map_err(db_err)? {
            Some(row) if row.owner_id == owner => Ok(row),
            _ => Err(not_found()),
        }
    }

    /// Stops (`true`) or frees the keys of a suspended or reinstated owner in
    /// every edge at once; past the entry's life auth refuses them itself,
    /// by the suspension.
    pub(super) async fn hold_api_keys(&self, owner: Id, held: bool) -> Result<(), Problem> {
        if held {
            self.cache.set(&held_owner(&owner), "1", STATE_TTL).await?;
        } else {
            self.cache.delete(&held_owner(&owner)).await?;
        }
        Ok(())
    }

    fn issued(row: &ApiKeyRow, key: String) -> IssuedApiKey {
        IssuedApiKey {
            id: row.id,
            name: row.name.clone(),
            scopes: rules::scopes_from_text(&row.scopes),
            prefix: rules::shown_prefix(&row.public_part),
            key,
            created_at: row.created_at,
            expires_at: row.expires_at,
        }
    }

    async fn revoke_key(&self, id: Id, audit: Option<&Envelope>) -> Result<(), Problem> {
        if !store::revoke(&self.db, id, self.clock.now(), audit).await.map_err(db_err)? {
            return Err(not_found());
        }
        self.forget_keys(&[id]).await?;
        self.bus.poke();
        Ok(())
    }
}

#[async_trait]
impl ApiKeys for AuthService {
    async fn create(&self, owner: &AuthUser, new: &NewApiKey) -> Result<IssuedApiKey, Problem> {
        let now = self.clock.now();
        let name = rules::check_name(&new.name).map_err(refused)?;
        let scopes = rules::check_scopes(&new.scopes).map_err(refused)?;
        let expires_at = rules::check_expiry(new.expires_at, now).map_err(refused)?;
        let account = self.account_row(owner.id).await?;
        if account.suspended_at.is_some() {
            return Err(Problem::forbidden("the account is suspended"));
        }
        let (row, key) = self.mint(owner.id, name, &rules::scopes_text(&scopes), expires_at);
        let audit = self.key_audit(owner.id, "POST /api/v1/api-keys", row.id, 201, row.name.clone())?;
        let max = i64::from(self.settings.api_keys.max_per_account);
        if !store::insert_key(&self.db, &row, max, now, &audit).await.map_err(db_err)? {
            return Err(Problem::new(
                ErrorCode::Conflict,
                format!("an account holds at most {max} live API keys: revoke one first"),
            ));
        }
        self.bus.poke();
        Ok(Self::issued(&row, key))
    }

    async fn list(&self, owner: &AuthUser) -> Result<Vec<ApiKey>, Problem> {
        Ok(store::keys_of(&self.db, owner.id, false).await.map_err(db_err)?.into_iter().map(view).collect())
    }

    async fn rotate(&self, owner: &AuthUser, id: Id, grace_minutes: Option<i64>) -> Result<IssuedApiKey, Problem> {
        let grace = rules::check_grace(grace_minutes).map_err(refused)?;
        let old = self.owned_key(owner.id, id).await?;
        let now = self.clock.now();
        let gone =
            || Problem::new(ErrorCode::Conflict, "this key was rotated, revoked or has expired: rotate its successor");
        if old.replaced_by.is_some() || rules::refusal(old.revoked_at, old.expires_at, now).is_some() {
            return Err(gone());
        }
        let until = rules::rotated_expiry(old.expires_at, now, grace);
        let (row, key) = self.mint(owner.id, old.name.clone(), &old.scopes, old.expires_at);
        let reason = format!("rotated to {}; the old key stops at {}", row.id, until.0.to_rfc3339());
        let audit = self.key_audit(owner.id, "POST /api/v1/api-keys/{id}/rotate", id, 201, reason)?;
        match store::rotate(&self.db, id, until, &row, now, &audit).await.map_err(db_err)? {
            Rotation::Gone => return Err(gone()),
            Rotation::Done => {}
        }
        // Edges remembering the old key learn its new end on their next use.
        self.cache.set(&key_end(&id), &until.unix().to_string(), STATE_TTL).await?;
        self.bus.poke();
        Ok(Self::issued(&row, key))
    }

    async fn revoke(&self, owner: &AuthUser, id: Id) -> Result<(), Problem> {
        self.owned_key(owner.id, id).await?;
        let audit = self.key_audit(owner.id, "DELETE /api/v1/api-keys/{id}", id, 204, String::new())?;
        self.revoke_key(id, Some(&audit)).await
    }

    async fn keys_of(&self, admin: &AuthUser, user: Id) -> Result<Vec<ApiKey>, Problem> {
        admin.require_admin()?;
        self.account_row(user).await?;
        Ok(store::keys_of(&self.db, user, true).await.map_err(db_err)?.into_iter().map(view).collect())
    }

    async fn revoke_any(&self, admin: &AuthUser, id: Id, reason: &str) -> Result<(), Problem> {
        admin.require_admin()?;
        if reason.trim().is_empty() || reason.chars().count() > 2_000 {
            return Err(Problem::field("reason", "must be 1 to 2000 characters"));
        }
        self.revoke_key(id, None).await
    }
}

#[async_trait]
impl KeyAuthority for AuthService {
    async fn authenticate(&self, key: &str) -> Result<KeyGrant, Problem> {
        let invalid = |detail: &str| Problem::new(ErrorCode::InvalidToken, detail.to_owned());
        let public = rules::public_part(key).ok_or_else(|| invalid("malformed API key"))?;
        let (row, roles, suspended) = store::key_by_public_part(&self.db, public)
            .await
            .map_err(db_err)?
            .ok_or_else(|| invalid("unknown API key"))?;
        // Digests compared, not keys: timing tells a guesser nothing of the secret.
        if token_digest(key) != row.key_hash {
            return Err(invalid("unknown API key"));
        }
        if let Some(why) = rules::refusal(row.revoked_at, row.expires_at, self.clock.now()) {
            return Err(invalid(why));
        }
        if suspended {
            return Err(invalid(hometrip_kernel::api_keys::OWNER_SUSPENDED));
        }
        Ok(KeyGrant {
            key_id: row.id,
            owner: row.owner_id,
            roles: roles.split(',').filter(|r| !r.is_empty() && *r != "admin").map(str::to_owned).collect(),
            scopes: rules::scopes_from_text(&row.scopes),
            expires_at: row.expires_at,
        })
    }

    async fn record_use(&self, used: &[KeyUse]) -> Result<(), Problem> {
        if used.len() > 10_000 {
            return Err(Problem::field("used", "at most 10000 keys per call"));
        }
        store::record_use(&self.db, used).await.map_err(db_err)
    }
}
