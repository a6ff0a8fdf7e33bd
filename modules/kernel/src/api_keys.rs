//! API keys at the edge: a partner's or a host's script presents
//! `Authorization: Bearer htk_...` and acts as the key's owner, limited to
//! the key's scopes. The auth module issues and stores keys (hashed); every
//! process that takes calls from outside checks them through
//! [`ApiKeyVerifier`], which asks auth (a [`KeyAuthority`], in process or
//! over HTTP) once per key and short period, reads the key's state from the
//! shared cache on every use (so a revocation, a rotation's end or the
//! owner's suspension stops the key in every process at once) and gathers
//! when keys were used, written back in batches rather than once per request.

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
/// Characters of a key's public part, which finds it (base-32).
pub const PUBLIC_CHARS: usize = 10;
/// Characters of its secret part: 32 random bytes in base64url.
pub const SECRET_CHARS: usize = 43;
/// The public part's alphabet.
pub const PUBLIC_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The public part of a well-formed key (`htk_<public>_<secret>`); `None`
/// for anything else, refused without asking auth.
pub fn public_part(key: &str) -> Option<&str> {
    let (public, secret) = key.strip_prefix(KEY_PREFIX)?.split_once('_')?;
    let well_formed = public.len() == PUBLIC_CHARS
        && public.bytes().all(|b| PUBLIC_ALPHABET.contains(&b))
        && secret.len() == SECRET_CHARS
        && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then_some(public)
}

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
    /// Scopes this process does not know (a newer auth's, during a rolling
    /// upgrade) are left out: they grant nothing here.
    #[serde(deserialize_with = "known_scopes")]
    pub scopes: Vec<Scope>,
    /// After this the key stops (set, or brought forward by a rotation).
    pub expires_at: Option<Instant>,
}

fn known_scopes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Scope>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    Ok(names.iter().filter_map(|n| Scope::parse(n)).collect())
}

impl KeyGrant {
    /// The caller the request proceeds as: the owner, with the key's id in
    /// the place of a session's (the key's own entries in the shared cache,
    /// not the sessions', stop it).
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

/// The shared cache's entry of a revoked key (never removed before it expires).
pub fn revoked_key(key_id: &Id) -> String {
    format!("api-key-revoked:{key_id}")
}

/// The shared cache's entry of a rotated key's end, as Unix seconds.
pub fn key_end(key_id: &Id) -> String {
    format!("api-key-end:{key_id}")
}

/// The shared cache's entry of an owner whose keys are held (suspended).
pub fn held_owner(owner: &Id) -> String {
    format!("api-key-held:{owner}")
}

/// How long an edge trusts auth's answer for a key before asking again.
pub const GRANT_TTL: Duration = Duration::from_secs(20);
/// How long a state entry stays in the shared cache: longer than any
/// remembered grant, after which auth's own answer carries the state.
pub const STATE_TTL: Duration = Duration::from_secs(120);
/// Grants remembered per process, at most.
const GRANTS: usize = 10_000;
/// Uses sent to auth per call (a request body stays small).
const USES_PER_CALL: usize = 500;
/// Keys whose last use waits for a flush, at most (auth unreachable for long).
const PENDING_USES: usize = 100_000;

/// The edge's key checks (one per process).
pub struct ApiKeyVerifier {
    authority: Arc<dyn KeyAuthority>,
    cache: Arc<dyn Cache>,
    clock: Clock,
    /// By the key's SHA-256: the key itself is never kept.
    grants: Mutex<lru::LruCache<[u8; 32], (KeyGrant, StdInstant)>>,
    /// Keys auth refused for good (unknown, revoked, expired), by SHA-256:
    /// a script that goes on with a dead key costs auth one lookup per period.
    refused: Mutex<lru::LruCache<[u8; 32], (Problem, StdInstant)>>,
    used: Mutex<HashMap<Id, Instant>>,
}

/// Why auth refuses the key of a suspended owner (not remembered: a
/// reinstatement frees the key at once).
pub const OWNER_SUSPENDED: &str = "the key's owner is suspended";

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
            refused: Mutex::new(lru::LruCache::new(capacity)),
            used: Mutex::new(HashMap::new()),
        })
    }

    /// The key's grant, if the key may be used now.
    pub async fn verify(&self, key: &str) -> Result<KeyGrant, Problem> {
        if public_part(key).is_none() {
            return Err(invalid("malformed API key"));
        }
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let remembered = lock(&self.grants).get(&digest).filter(|(_, at)| at.elapsed() < GRANT_TTL).cloned();
        let grant = match remembered {
            Some((grant, _)) => grant,
            None => {
                let refused = lock(&self.refused).get(&digest).filter(|(_, at)| at.elapsed() < GRANT_TTL).cloned();
                if let Some((problem, _)) = refused {
                    return Err(problem);
                }
                match self.authority.authenticate(key).await {
                    Ok(grant) => {
                        lock(&self.grants).put(digest, (grant.clone(), StdInstant::now()));
                        grant
                    }
                    Err(p) => {
                        if p.code == ErrorCode::InvalidToken && p.detail != OWNER_SUSPENDED {
                            lock(&self.refused).put(digest, (p.clone(), StdInstant::now()));
                        }
                        return Err(p);
                    }
                }
            }
        };
        // One round trip: the three entries are asked together.
        let (revoked_at, end_at, held_at) =
            (revoked_key(&grant.key_id), key_end(&grant.key_id), held_owner(&grant.owner));
        let (revoked, end, held) =
            tokio::join!(self.cache.get(&revoked_at), self.cache.get(&end_at), self.cache.get(&held_at));
        if revoked?.is_some() {
            lock(&self.grants).pop(&digest);
            return Err(invalid("API key revoked"));
        }
        if held?.is_some() {
            return Err(invalid(OWNER_SUSPENDED));
        }
        let mut expires_at = grant.expires_at;
        let moved = end?.and_then(|s| s.parse::<i64>().ok()).and_then(|s| chrono::DateTime::from_timestamp(s, 0));
        if let Some(at) = moved.map(Instant::from) {
            expires_at = Some(expires_at.map_or(at, |e| e.min(at)));
        }
        if expires_at.is_some_and(|e| e <= self.clock.now()) {
            return Err(invalid("API key expired"));
        }
        Ok(grant)
    }

    /// Notes that the key served a call (written at the next flush).
    pub fn used(&self, key_id: Id) {
        let now = self.clock.now();
        let mut used = lock(&self.used);
        if used.len() >= PENDING_USES && !used.contains_key(&key_id) {
            return;
        }
        let last = used.entry(key_id).or_insert(now);
        *last = (*last).max(now);
    }

    /// Writes the uses gathered since the last flush, a few hundred per
    /// call; uses auth could not take for now are kept for the next flush,
    /// those it refuses are dropped.
    pub async fn flush(&self) {
        let batch: Vec<KeyUse> =
            std::mem::take(&mut *lock(&self.used)).into_iter().map(|(key_id, at)| KeyUse { key_id, at }).collect();
        for chunk in batch.chunks(USES_PER_CALL) {
            match self.authority.record_use(chunk).await {
                Ok(()) => {}
                Err(e) if e.status < 500 => {
                    tracing::warn!(error = %e.detail, keys = chunk.len(), "API key uses refused; dropped");
                }
                Err(e) => {
                    tracing::warn!(error = %e.detail, keys = chunk.len(), "API key uses not recorded; kept for the next flush");
                    let mut used = lock(&self.used);
                    for u in chunk {
                        if used.len() < PENDING_USES || used.contains_key(&u.key_id) {
                            let last = used.entry(u.key_id).or_insert(u.at);
                            *last = (*last).max(u.at);
                        }
                    }
                }
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
            if key != good() {
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

    fn good() -> String {
        format!("htk_abcdefgh23_{}", "g".repeat(SECRET_CHARS))
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
            let grant = v.verify(&good()).await.unwrap();
            v.used(grant.key_id);
        }
        assert_eq!(authority.asked.load(Ordering::SeqCst), 1);
        assert_eq!(v.verify("htk_nonsense").await.unwrap_err().detail, "malformed API key");
        assert_eq!(authority.asked.load(Ordering::SeqCst), 1, "a malformed key never reaches auth");
        assert!(lock(&authority.recorded).is_empty(), "no write per request");
        v.flush().await;
        v.flush().await;
        let recorded = lock(&authority.recorded).clone();
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].len(), 1);
        let unknown = format!("htk_abcdefgh23_{}", "u".repeat(SECRET_CHARS));
        assert_eq!(v.verify(&unknown).await.unwrap_err().code, ErrorCode::InvalidToken);
        assert_eq!(authority.asked.load(Ordering::SeqCst), 2);
        // A dead key presented again is refused without asking auth.
        for _ in 0..10 {
            assert_eq!(v.verify(&unknown).await.unwrap_err().detail, "unknown API key");
        }
        assert_eq!(authority.asked.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_revocation_in_the_shared_cache_stops_a_remembered_key() {
        let (_, cache, _, v) = verifier();
        v.verify(&good()).await.unwrap();
        cache.set(&held_owner(&Id::nil()), "1", STATE_TTL).await.unwrap();
        assert_eq!(v.verify(&good()).await.unwrap_err().detail, "the key's owner is suspended");
        cache.delete(&held_owner(&Id::nil())).await.unwrap();
        v.verify(&good()).await.unwrap();
        cache.set(&revoked_key(&Id::nil()), "1", STATE_TTL).await.unwrap();
        // A rotation's end written later does not undo the revocation.
        cache.set(&key_end(&Id::nil()), "4102444800", STATE_TTL).await.unwrap();
        assert_eq!(v.verify(&good()).await.unwrap_err().detail, "API key revoked");
    }

    #[tokio::test]
    async fn a_rotation_brings_the_expiry_forward_and_the_clock_reaches_it() {
        let (_, cache, clock, v) = verifier();
        v.verify(&good()).await.unwrap();
        let end = clock.now().plus(chrono::Duration::minutes(60));
        cache.set(&key_end(&Id::nil()), &end.unix().to_string(), STATE_TTL).await.unwrap();
        v.verify(&good()).await.unwrap();
        clock.advance(61 * 60);
        assert_eq!(v.verify(&good()).await.unwrap_err().detail, "API key expired");
    }

    #[test]
    fn only_well_formed_keys_reach_auth() {
        let key = format!("htk_abcdefgh23_{}", "A".repeat(SECRET_CHARS));
        assert_eq!(public_part(&key), Some("abcdefgh23"));
        assert_eq!(public_part("htk_short_abc"), None);
        assert_eq!(public_part(&key.replace("htk_", "htx_")), None);
        assert_eq!(public_part(&format!("{key}!")), None);
        assert_eq!(public_part(&key.replace("abcdefgh23", "ABCDEFGH23")), None);
    }

    #[test]
    fn a_grant_from_a_newer_auth_keeps_the_scopes_known_here() {
        let json = serde_json::json!({
            "key_id": Id::nil(), "owner": Id::nil(), "roles": [], "expires_at": null,
            "scopes": ["calendar:read", "payouts:read"]
        });
        let grant: KeyGrant = serde_json::from_value(json).unwrap();
        assert_eq!(grant.scopes, vec![Scope::CalendarRead]);
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
