//! API keys at the edge: a partner's or a host's script presents
//! `Authorization: Bearer htk_...` and acts as the key's owner, limited to
//! the key's scopes. The auth module issues and stores keys (hashed); every
//! process that takes calls from outside checks them through
//! [`ApiKeyVerifier`], which asks auth (a [`KeyAuthority`], in process or
//! over HTTP) once per key and short period, reads the key's revocation
//! state from the shared cache on every use (so a revocation stops the key
//! in every process at once) and gathers when keys were used, written back
//! in batches rather than once per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant as StdInstant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth_context::AuthUser;
use crate::cache::Cache;
use crate::error::{ErrorCode, Problem};
use crate::ids::Id;
use crate::time::{Clock, Instant};

/// What every key starts with: tells a key from an access token at a glance
/// (and to secret scanners).
pub const KEY_PREFIX: &str = "htk_";

/// What a key may do. Each public endpoint a key may call names one scope
/// (the gateway's table); keys, passwords, two-factor, sessions and admin
/// are granted by none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Scope {
    #[serde(rename = "listings:read")]
    ListingsRead,
    #[serde(rename = "listings:write")]
    ListingsWrite,
    #[serde(rename = "calendar:read")]
    CalendarRead,
    #[serde(rename = "calendar:write")]
    CalendarWrite,
    #[serde(rename = "bookings:read")]
    BookingsRead,
    #[serde(rename = "bookings:write")]
    BookingsWrite,
    #[serde(rename = "messages:read")]
    MessagesRead,
    #[serde(rename = "messages:write")]
    MessagesWrite,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Scope::ListingsRead,
        Scope::ListingsWrite,
        Scope::CalendarRead,
        Scope::CalendarWrite,
        Scope::BookingsRead,
        Scope::BookingsWrite,
        Scope::MessagesRead,
        Scope::MessagesWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ListingsRead => "listings:read",
            Scope::ListingsWrite => "listings:write",
            Scope::CalendarRead => "calendar:read",
            Scope::CalendarWrite => "calendar:write",
            Scope::BookingsRead => "bookings:read",
            Scope::BookingsWrite => "bookings:write",
            Scope::MessagesRead => "messages:read",
            Scope::MessagesWrite => "messages:write",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }

    /// What the scope grants, for the OpenAPI document and the key pages.
    pub fn describe(self) -> &'static str {
        match self {
            Scope::ListingsRead => "read the owner's listings, quotes and search",
            Scope::ListingsWrite => "create, edit, publish and unlist listings and their photos",
            Scope::CalendarRead => "read calendars, their iCalendar export and imports",
            Scope::CalendarWrite => "block, free and price nights; manage calendar imports",
            Scope::BookingsRead => "read the owner's bookings, as guest or host",
            Scope::BookingsWrite => "accept, decline and cancel bookings",
            Scope::MessagesRead => "read conversations, messages and quick replies",
            Scope::MessagesWrite => "send messages, mark them read, manage quick replies",
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a valid key lets its bearer do, as auth answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGrant {
    pub key_id: Id,
    pub owner: Id,
    /// The owner's roles, never `admin`: a key reaches no admin power, not
    /// even the wider reads an admin has on ordinary routes.
    pub roles: Vec<String>,
    pub scopes: Vec<Scope>,
    /// After this the key stops (set, or brought forward by a rotation).
    pub expires_at: Option<Instant>,
}

impl KeyGrant {
    /// The caller the request proceeds as: the owner, with the key as its
    /// session (the revoked-session mechanism works on it as on sessions).
    pub fn caller(&self) -> AuthUser {
        AuthUser { id: self.owner, session_id: self.key_id, roles: self.roles.clone(), acting_admin: None }
    }
}

/// When a key was last used, gathered by an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUse {
    pub key_id: Id,
    pub at: Instant,
}

/// Auth's side of key checks, in process or over auth's internal routes.
#[async_trait]
pub trait KeyAuthority: Send + Sync {
    /// The grant of a presented key; 401 `invalid_token` for an unknown,
    /// revoked or expired key, or one whose owner is suspended.
    async fn authenticate(&self, key: &str) -> Result<KeyGrant, Problem>;
    /// Records when keys were used (later uses only move `last_used_at` on).
    async fn record_use(&self, used: &[KeyUse]) -> Result<(), Problem>;
}

/// The shared cache's entry for a key whose state changed under the edges'
/// remembered grants: `revoked`, or `expires:<unix seconds>` after a rotation.
pub fn key_state_key(key_id: &Id) -> String {
    format!("api-key:{key_id}")
}

pub const STATE_REVOKED: &str = "revoked";

pub fn state_expires(at: Instant) -> String {
    format!("expires:{}", at.unix())
}

/// How long an edge trusts auth's answer for a key before asking again.
pub const GRANT_TTL: Duration = Duration::from_secs(20);
/// How long a state entry stays in the shared cache: longer than any
/// remembered grant, after which auth's own answer carries the state.
pub const STATE_TTL: Duration = Duration::from_secs(120);
/// Grants remembered per process, at most.
const GRANTS: usize = 10_000;

/// The edge's key checks (one per process).
pub struct ApiKeyVerifier {
    authority: Arc<dyn KeyAuthority>,
    cache: Arc<dyn Cache>,
    clock: Clock,
    /// By the key's SHA-256: the key itself is never kept.
    grants: Mutex<lru::LruCache<[u8; 32], (KeyGrant, StdInstant)>>,
    used: Mutex<HashMap<Id, Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn invalid(detail: &str) -> Problem {
    Problem::new(ErrorCode::InvalidToken, detail.to_owned())
}

/// Whether a bearer credential is an API key rather than an access token.
pub fn is_api_key(token: &str) -> bool {
    token.starts_with(KEY_PREFIX)
}

impl ApiKeyVerifier {
    pub fn new(authority: Arc<dyn KeyAuthority>, cache: Arc<dyn Cache>, clock: Clock) -> Arc<Self> {
        let capacity = std::num::NonZeroUsize::new(GRANTS).unwrap_or(std::num::NonZeroUsize::MIN);
        Arc::new(ApiKeyVerifier {
            authority,
            cache,
            clock,
            grants: Mutex::new(lru::LruCache::new(capacity)),
            used: Mutex::new(HashMap::new()),
        })
    }

    /// The key's grant, if the key may be used now.
    pub async fn verify(&self, key: &str) -> Result<KeyGrant, Problem> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let remembered = lock(&self.grants).get(&digest).filter(|(_, at)| at.elapsed() < GRANT_TTL).cloned();
        let grant = match remembered {
            Some((grant, _)) => grant,
            None => {
                let grant = self.authority.authenticate(key).await?;
                lock(&self.grants).put(digest, (grant.clone(), StdInstant::now()));
                grant
            }
        };
        let mut expires_at = grant.expires_at;
        match self.cache.get(&key_state_key(&grant.key_id)).await? {
            Some(state) if state == STATE_REVOKED => {
                lock(&self.grants).pop(&digest);
                return Err(invalid("API key revoked"));
            }
            Some(state) => {
                let moved = state.strip_prefix("expires:").and_then(|s| s.parse::<i64>().ok());
                if let Some(at) = moved.and_then(|s| chrono::DateTime::from_timestamp(s, 0)) {
                    expires_at = Some(expires_at.map_or(Instant::from(at), |e| e.min(Instant::from(at))));
                }
            }
            None => {}
        }
        let now = self.clock.now();
        if expires_at.is_some_and(|e| e <= now) {
            return Err(invalid("API key expired"));
        }
        let mut used = lock(&self.used);
        let last = used.entry(grant.key_id).or_insert(now);
        *last = (*last).max(now);
        Ok(grant)
    }

    /// Writes the uses gathered since the last flush; on failure they are
    /// kept for the next one.
    pub async fn flush(&self) {
        let batch: Vec<KeyUse> =
            std::mem::take(&mut *lock(&self.used)).into_iter().map(|(key_id, at)| KeyUse { key_id, at }).collect();
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.authority.record_use(&batch).await {
            tracing::warn!(error = %e.detail, keys = batch.len(), "API key uses not recorded; kept for the next flush");
            let mut used = lock(&self.used);
            for u in batch {
                let last = used.entry(u.key_id).or_insert(u.at);
                *last = (*last).max(u.at);
            }
        }
    }

    /// Flushes the gathered uses every `every`.
    pub fn spawn_flush(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                this.flush().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::MemoryCache;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Authority {
        asked: AtomicUsize,
        recorded: Mutex<Vec<Vec<KeyUse>>>,
        expires_at: Mutex<Option<Instant>>,
    }

    #[async_trait]
    impl KeyAuthority for Authority {
        async fn authenticate(&self, key: &str) -> Result<KeyGrant, Problem> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            if key != "htk_good" {
                return Err(invalid("unknown API key"));
            }
            Ok(KeyGrant {
                key_id: Id::nil(),
                owner: Id::nil(),
                roles: Vec::new(),
                scopes: vec![Scope::CalendarRead],
                expires_at: *lock(&self.expires_at),
            })
        }
        async fn record_use(&self, used: &[KeyUse]) -> Result<(), Problem> {
            lock(&self.recorded).push(used.to_vec());
            Ok(())
        }
    }

    fn verifier() -> (Arc<Authority>, Arc<dyn Cache>, Clock, Arc<ApiKeyVerifier>) {
        let authority = Arc::new(Authority::default());
        let cache: Arc<dyn Cache> = MemoryCache::new();
        let clock = Clock::system();
        let v = ApiKeyVerifier::new(Arc::clone(&authority) as _, Arc::clone(&cache), clock.clone());
        (authority, cache, clock, v)
    }

    #[tokio::test]
    async fn auth_is_asked_once_and_uses_are_written_in_one_batch() {
        let (authority, _, _, v) = verifier();
        for _ in 0..100 {
            v.verify("htk_good").await.unwrap();
        }
        assert_eq!(authority.asked.load(Ordering::SeqCst), 1);
        assert!(lock(&authority.recorded).is_empty(), "no write per request");
        v.flush().await;
        v.flush().await;
        let recorded = lock(&authority.recorded).clone();
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].len(), 1);
        assert_eq!(v.verify("htk_bad").await.unwrap_err().code, ErrorCode::InvalidToken);
    }

    #[tokio::test]
    async fn a_revocation_in_the_shared_cache_stops_a_remembered_key() {
        let (_, cache, _, v) = verifier();
        v.verify("htk_good").await.unwrap();
        cache.set(&key_state_key(&Id::nil()), STATE_REVOKED, STATE_TTL).await.unwrap();
        assert_eq!(v.verify("htk_good").await.unwrap_err().detail, "API key revoked");
    }

    #[tokio::test]
    async fn a_rotation_brings_the_expiry_forward_and_the_clock_reaches_it() {
        let (_, cache, clock, v) = verifier();
        v.verify("htk_good").await.unwrap();
        let end = clock.now().plus(chrono::Duration::minutes(60));
        cache.set(&key_state_key(&Id::nil()), &state_expires(end), STATE_TTL).await.unwrap();
        v.verify("htk_good").await.unwrap();
        clock.advance(61 * 60);
        assert_eq!(v.verify("htk_good").await.unwrap_err().detail, "API key expired");
    }

    #[test]
    fn scopes_read_and_write_their_names() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
            assert_eq!(serde_json::to_value(scope).unwrap(), scope.as_str());
        }
        assert_eq!(Scope::parse("admin"), None);
    }
}
