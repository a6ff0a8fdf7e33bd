//! Cache, counters and rate limiting behind one trait: in-process by default,
//! Redis when `redis.url` is set, so several processes share limits and state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

use crate::per_thread::PerThread;

#[derive(Debug, thiserror::Error)]
#[error("cache unavailable: {0}")]
pub struct CacheError(pub String);

impl From<CacheError> for crate::Problem {
    fn from(e: CacheError) -> Self {
        tracing::error!(error = %e, "cache unavailable");
        crate::Problem::new(crate::ErrorCode::ServiceUnavailable, "the cache is unavailable").retry_after(1)
    }
}

#[async_trait]
pub trait Cache: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<String>, CacheError>;
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError>;
    async fn delete(&self, key: &str) -> Result<(), CacheError>;
    /// Gets and deletes in one step (single-use values such as OAuth state).
    async fn take(&self, key: &str) -> Result<Option<String>, CacheError>;
    /// Increments a counter whose window starts at its first increment;
    /// returns the new count and the seconds left in the window.
    async fn incr(&self, key: &str, window: Duration) -> Result<(u64, u64), CacheError>;
    /// Takes one back from a live counter (no-op once its window ended).
    async fn decr(&self, key: &str) -> Result<(), CacheError>;
    /// Reads a counter without changing it: count and seconds left.
    async fn peek(&self, key: &str) -> Result<Option<(u64, u64)>, CacheError>;
    async fn ping(&self) -> Result<(), CacheError>;
    fn name(&self) -> &'static str;
}

/// In-process cache for the single-process profile.
pub struct MemoryCache {
    entries: Mutex<Entries>,
}

struct Entries {
    map: HashMap<String, (String, StdInstant)>,
    last_sweep: StdInstant,
}

/// Past this many entries, expired ones are swept — at most once a second, so
/// a large cache does not pay a full scan on every write.
const SWEEP_ABOVE: usize = 10_000;

impl Entries {
    fn sweep(&mut self, now: StdInstant) {
        if self.map.len() > SWEEP_ABOVE && now.duration_since(self.last_sweep) >= Duration::from_secs(1) {
            self.map.retain(|_, (_, exp)| *exp > now);
            self.last_sweep = now;
        }
    }
}

impl MemoryCache {
    pub fn new() -> Arc<Self> {
        Arc::new(MemoryCache { entries: Mutex::new(Entries { map: HashMap::new(), last_sweep: StdInstant::now() }) })
    }

    fn live(entry: Option<&(String, StdInstant)>, now: StdInstant) -> Option<&(String, StdInstant)> {
        entry.filter(|(_, exp)| *exp > now)
    }
}

fn secs_left(exp: StdInstant, now: StdInstant) -> u64 {
    exp.saturating_duration_since(now).as_secs_f64().ceil() as u64
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        let e = self.entries.lock().await;
        Ok(Self::live(e.map.get(key), StdInstant::now()).map(|(v, _)| v.clone()))
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError> {
        let mut e = self.entries.lock().await;
        let now = StdInstant::now();
        e.sweep(now);
        e.map.insert(key.to_owned(), (value.to_owned(), now + ttl));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.entries.lock().await.map.remove(key);
        Ok(())
    }

    async fn take(&self, key: &str) -> Result<Option<String>, CacheError> {
        let mut e = self.entries.lock().await;
        let now = StdInstant::now();
        Ok(e.map.remove(key).filter(|(_, exp)| *exp > now).map(|(v, _)| v))
    }

    async fn incr(&self, key: &str, window: Duration) -> Result<(u64, u64), CacheError> {
        let mut e = self.entries.lock().await;
        let now = StdInstant::now();
        e.sweep(now);
        let (count, exp) = match Self::live(e.map.get(key), now) {
            Some((v, exp)) => (v.parse::<u64>().unwrap_or(0) + 1, *exp),
            None => (1, now + window),
        };
        e.map.insert(key.to_owned(), (count.to_string(), exp));
        Ok((count, secs_left(exp, now)))
    }

    async fn decr(&self, key: &str) -> Result<(), CacheError> {
        let mut e = self.entries.lock().await;
        let now = StdInstant::now();
        if let Some((v, _)) = e.map.get_mut(key).filter(|(_, exp)| *exp > now) {
            *v = v.parse::<u64>().unwrap_or(0).saturating_sub(1).to_string();
        }
        Ok(())
    }

    async fn peek(&self, key: &str) -> Result<Option<(u64, u64)>, CacheError> {
        let e = self.entries.lock().await;
        let now = StdInstant::now();
        Ok(Self::live(e.map.get(key), now).map(|(v, exp)| (v.parse().unwrap_or(0), secs_left(*exp, now))))
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

/// Redis-backed cache shared by every process of a deployment.
///
/// One multiplexed connection per runtime thread (see `per_thread`), like the
/// PostgreSQL pools; a pool also cost a PING round trip per checkout. Commands
/// pipeline on the one connection, which reconnects by itself after an outage.
pub struct RedisCache {
    client: redis::Client,
    by_thread: PerThread<ConnectionManager>,
    prefix: String,
}

/// How long connecting to Redis may take (a Redis that is down is said at
/// once), and a command's answer: redis' own default, 500 ms, is what made a
/// loaded machine's split platforms answer "the cache is unavailable".
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

impl RedisCache {
    pub async fn connect(url: &str, prefix: &str) -> Result<Arc<Self>, CacheError> {
        let client = redis::Client::open(url).map_err(redis_err)?;
        // No connection yet: a process starts while Redis is down and reports it on /health/ready.
        Ok(Arc::new(RedisCache { client, by_thread: PerThread::default(), prefix: prefix.to_owned() }))
    }

    /// The calling thread's connection, opened by its first command.
    fn conn(&self) -> Result<ConnectionManager, CacheError> {
        self.by_thread.get_or_try_make(|| {
            // One attempt per reconnection: while Redis is down a command fails
            // at once (503) instead of waiting out retries; the next one tries again.
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(REDIS_CONNECT_TIMEOUT))
                .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT))
                .set_number_of_retries(0);
            ConnectionManager::new_lazy_with_config(self.client.clone(), config).map_err(redis_err)
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }
}

fn redis_err(e: redis::RedisError) -> CacheError {
    CacheError(e.to_string())
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        let mut c = self.conn()?;
        redis::cmd("GET").arg(self.key(key)).query_async(&mut c).await.map_err(redis_err)
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError> {
        let mut c = self.conn()?;
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async::<()>(&mut c)
            .await
            .map_err(redis_err)
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        let mut c = self.conn()?;
        redis::cmd("DEL").arg(self.key(key)).query_async::<()>(&mut c).await.map_err(redis_err)
    }

    async fn take(&self, key: &str) -> Result<Option<String>, CacheError> {
        let mut c = self.conn()?;
        redis::cmd("GETDEL").arg(self.key(key)).query_async(&mut c).await.map_err(redis_err)
    }

    async fn incr(&self, key: &str, window: Duration) -> Result<(u64, u64), CacheError> {
        let mut c = self.conn()?;
        let k = self.key(key);
        // INCR, then start the window only on the first hit (EXPIRE NX), atomically.
        let (count, _, ttl): (u64, i64, i64) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(&k)
            .cmd("EXPIRE")
            .arg(&k)
            .arg(window.as_secs().max(1))
            .arg("NX")
            .cmd("TTL")
            .arg(&k)
            .query_async(&mut c)
            .await
            .map_err(redis_err)?;
        Ok((count, ttl.max(0) as u64))
    }

    async fn decr(&self, key: &str) -> Result<(), CacheError> {
        let mut c = self.conn()?;
        let k = self.key(key);
        // Only a counter whose window is still open; one that expired in between
        // comes back as -1 without a TTL and is repaired by the next INCR (EXPIRE NX).
        let ttl: i64 = redis::cmd("TTL").arg(&k).query_async(&mut c).await.map_err(redis_err)?;
        if ttl > 0 {
            redis::cmd("DECR").arg(&k).query_async::<i64>(&mut c).await.map_err(redis_err)?;
        }
        Ok(())
    }

    async fn peek(&self, key: &str) -> Result<Option<(u64, u64)>, CacheError> {
        let mut c = self.conn()?;
        let k = self.key(key);
        let (value, ttl): (Option<u64>, i64) =
            redis::pipe().cmd("GET").arg(&k).cmd("TTL").arg(&k).query_async(&mut c).await.map_err(redis_err)?;
        Ok(value.map(|v| (v, ttl.max(0) as u64)))
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let mut c = self.conn()?;
        redis::cmd("PING").query_async::<String>(&mut c).await.map_err(redis_err)?;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

/// Fixed-window rate limits over the [`Cache`] counters.
#[derive(Clone)]
pub struct RateLimiter {
    cache: Arc<dyn Cache>,
}

/// A limit: at most `max` hits per `window`.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Limit {
    pub max: u64,
    pub window_secs: u64,
}

impl RateLimiter {
    pub fn new(cache: Arc<dyn Cache>) -> Self {
        RateLimiter { cache }
    }

    /// Counts a hit; `Err(retry_after_secs)` once over the limit.
    pub async fn hit(&self, key: &str, limit: Limit) -> Result<Result<u64, u64>, CacheError> {
        let (count, ttl) = self.cache.incr(&format!("rl:{key}"), Duration::from_secs(limit.window_secs)).await?;
        Ok(if count > limit.max { Err(ttl.max(1)) } else { Ok(limit.max - count) })
    }

    /// `Err(retry_after_secs)` if `key` is already over `limit`, without counting.
    pub async fn check(&self, key: &str, limit: Limit) -> Result<Result<(), u64>, CacheError> {
        Ok(match self.cache.peek(&format!("rl:{key}")).await? {
            Some((count, ttl)) if count >= limit.max => Err(ttl.max(1)),
            _ => Ok(()),
        })
    }

    /// Gives back one hit (e.g. a login attempt that turned out to succeed).
    pub async fn release(&self, key: &str) -> Result<(), CacheError> {
        self.cache.decr(&format!("rl:{key}")).await
    }

    pub async fn reset(&self, key: &str) -> Result<(), CacheError> {
        self.cache.delete(&format!("rl:{key}")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_counter_windows_and_limits() {
        let limiter = RateLimiter::new(MemoryCache::new());
        let limit = Limit { max: 2, window_secs: 60 };
        assert_eq!(limiter.hit("k", limit).await.ok(), Some(Ok(1)));
        assert_eq!(limiter.hit("k", limit).await.ok(), Some(Ok(0)));
        assert!(matches!(limiter.hit("k", limit).await, Ok(Err(s)) if s > 0 && s <= 60));
        assert!(matches!(limiter.check("k", limit).await, Ok(Err(_))));
        // Three hits counted; giving two back brings it under the limit.
        assert!(limiter.release("k").await.is_ok());
        assert!(matches!(limiter.check("k", limit).await, Ok(Err(_))));
        assert!(limiter.release("k").await.is_ok());
        assert!(matches!(limiter.check("k", limit).await, Ok(Ok(()))));
        assert!(limiter.reset("k").await.is_ok());
        assert!(matches!(limiter.check("k", limit).await, Ok(Ok(()))));
    }

    #[tokio::test]
    async fn memory_take_is_single_use() {
        let cache = MemoryCache::new();
        assert!(cache.set("s", "v", Duration::from_secs(5)).await.is_ok());
        assert_eq!(cache.take("s").await.ok().flatten().as_deref(), Some("v"));
        assert_eq!(cache.take("s").await.ok().flatten(), None);
    }

    /// Runs against the local Redis when `TEST_REDIS_URL` is set (CI sets it).
    #[tokio::test]
    async fn redis_counter_windows_and_take() {
        let Ok(url) = std::env::var("TEST_REDIS_URL") else {
            return;
        };
        let prefix = format!("test:{}:", uuid::Uuid::now_v7());
        let cache = match RedisCache::connect(&url, &prefix).await {
            Ok(c) => c,
            Err(e) => panic!("redis at {url}: {e}"),
        };
        let limiter = RateLimiter::new(cache.clone());
        let limit = Limit { max: 1, window_secs: 30 };
        assert_eq!(limiter.hit("a", limit).await.ok(), Some(Ok(0)));
        assert!(matches!(limiter.hit("a", limit).await, Ok(Err(s)) if s > 0 && s <= 30));
        assert!(limiter.release("a").await.is_ok());
        assert!(limiter.release("a").await.is_ok());
        assert!(matches!(limiter.check("a", limit).await, Ok(Ok(()))));
        assert!(limiter.release("never-set").await.is_ok());
        assert_eq!(cache.peek("rl:never-set").await.ok().flatten(), None);
        assert!(cache.set("x", "1", Duration::from_secs(5)).await.is_ok());
        assert_eq!(cache.take("x").await.ok().flatten().as_deref(), Some("1"));
        assert_eq!(cache.get("x").await.ok().flatten(), None);
    }

    /// Passes connections to `target` on, each answer `delay` late.
    fn slow_proxy(listener: tokio::net::TcpListener, target: String, delay: Duration) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&target).await else { return };
                let ((mut from_client, mut to_client), (mut from_server, mut to_server)) =
                    (client.into_split(), server.into_split());
                tokio::spawn(async move { tokio::io::copy(&mut from_client, &mut to_server).await });
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n @ 1..) = from_server.read(&mut buf).await {
                        tokio::time::sleep(delay).await;
                        if to_client.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
    }

    fn redis_target(url: &str) -> String {
        let parsed = url::Url::parse(url).expect("TEST_REDIS_URL");
        format!("{}:{}", parsed.host_str().unwrap_or("127.0.0.1"), parsed.port().unwrap_or(6379))
    }

    /// A loaded machine's Redis answers later than redis' own 500 ms default:
    /// slow is not unavailable.
    #[tokio::test]
    async fn a_slow_answer_is_waited_for() {
        let Ok(url) = std::env::var("TEST_REDIS_URL") else {
            return;
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        slow_proxy(listener, redis_target(&url), Duration::from_millis(700));
        let prefix = format!("test:{}:", uuid::Uuid::now_v7());
        let cache = RedisCache::connect(&format!("redis://127.0.0.1:{port}"), &prefix).await.expect("cache");
        let set = cache.set("slow", "1", Duration::from_secs(30)).await;
        assert!(set.is_ok(), "{set:?}");
        assert_eq!(cache.get("slow").await.ok().flatten().as_deref(), Some("1"));
    }

    /// While Redis is down each call fails (the edge answers 503) instead of
    /// waiting for it; once it is back the next call goes through.
    #[tokio::test]
    async fn calls_fail_while_redis_is_down_and_work_once_it_is_back() {
        let Ok(url) = std::env::var("TEST_REDIS_URL") else {
            return;
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let prefix = format!("test:{}:", uuid::Uuid::now_v7());
        let cache = RedisCache::connect(&format!("redis://{address}"), &prefix).await.expect("cache");
        // Retrying the connection would take redis' backoff (over 6 s) each.
        for _ in 0..2 {
            let down = tokio::time::timeout(Duration::from_secs(4), cache.ping()).await;
            assert!(matches!(down, Ok(Err(_))), "{down:?}");
        }
        let listener = tokio::net::TcpListener::bind(address).await.expect("bind again");
        slow_proxy(listener, redis_target(&url), Duration::ZERO);
        let mut back = cache.ping().await;
        for _ in 0..50 {
            if back.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            back = cache.ping().await;
        }
        assert!(back.is_ok(), "{back:?}");
    }
}
