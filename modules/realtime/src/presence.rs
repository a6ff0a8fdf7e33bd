//! Who is online, across devices and processes. A user is online while one
//! of their sockets is open somewhere. With Redis each process renews, per
//! user it holds, a score (an expiry time) in two sorted sets: the user's own
//! (members: process ids) and a global one (members: `user|process`) that
//! every process sweeps for expired entries, so the users of a process that
//! died go offline within the time-to-live. Without Redis, the hub is the
//! whole truth.

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::redis;
use hometrip_kernel::cache::REDIS_RESPONSE_TIMEOUT;
use hometrip_kernel::Id;

use crate::hub::Hub;

pub enum Presence {
    Local(Arc<Hub>),
    Redis { pool: deadpool_redis::Pool, prefix: String, process: String, ttl: Duration },
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Presence {
    pub fn redis(pool: deadpool_redis::Pool, prefix: &str, ttl: Duration) -> Presence {
        let process = uuid::Uuid::now_v7().simple().to_string();
        Presence::Redis { pool, prefix: prefix.to_owned(), process, ttl }
    }

    /// A checkout opens a connection or PINGs an idle one, so it waits as
    /// long as a command may.
    async fn conn(pool: &deadpool_redis::Pool) -> Result<deadpool_redis::Connection, String> {
        tokio::time::timeout(REDIS_RESPONSE_TIMEOUT, pool.get())
            .await
            .map_err(|_| "timed out connecting to redis".to_owned())?
            .map_err(|e| e.to_string())
    }

    fn user_key(prefix: &str, user: Id) -> String {
        format!("{prefix}realtime:presence:{user}")
    }

    fn all_key(prefix: &str) -> String {
        format!("{prefix}realtime:presence")
    }

    /// This process holds a first socket of `user`: whether the user was
    /// offline everywhere until now.
    pub async fn arrived(&self, user: Id) -> Result<bool, String> {
        match self {
            Presence::Local(_) => Ok(true),
            Presence::Redis { pool, prefix, process, ttl } => {
                let mut c = Self::conn(pool).await?;
                let now = now_ms();
                let until = now + ttl.as_millis() as i64;
                let (elsewhere, _, _): (i64, i64, i64) = redis::pipe()
                    .cmd("ZCOUNT")
                    .arg(Self::user_key(prefix, user))
                    .arg(now)
                    .arg("+inf")
                    .cmd("ZADD")
                    .arg(Self::user_key(prefix, user))
                    .arg(until)
                    .arg(process)
                    .cmd("ZADD")
                    .arg(Self::all_key(prefix))
                    .arg(until)
                    .arg(format!("{user}|{process}"))
                    .query_async(&mut c)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(elsewhere == 0)
            }
        }
    }

    /// The last socket of `user` here closed: whether they are now offline everywhere.
    pub async fn left(&self, user: Id) -> Result<bool, String> {
        match self {
            Presence::Local(hub) => Ok(!hub.is_here(user)),
            Presence::Redis { pool, prefix, process, .. } => {
                let mut c = Self::conn(pool).await?;
                let (_, _, remaining): (i64, i64, i64) = redis::pipe()
                    .cmd("ZREM")
                    .arg(Self::user_key(prefix, user))
                    .arg(process)
                    .cmd("ZREM")
                    .arg(Self::all_key(prefix))
                    .arg(format!("{user}|{process}"))
                    .cmd("ZCOUNT")
                    .arg(Self::user_key(prefix, user))
                    .arg(now_ms())
                    .arg("+inf")
                    .query_async(&mut c)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(remaining == 0)
            }
        }
    }

    /// Renews this process's presence for the users it holds.
    pub async fn renew(&self, users: &[Id]) -> Result<(), String> {
        let Presence::Redis { pool, prefix, process, ttl } = self else { return Ok(()) };
        if users.is_empty() {
            return Ok(());
        }
        let until = now_ms() + ttl.as_millis() as i64;
        let mut pipe = redis::pipe();
        for user in users {
            pipe.cmd("ZADD").arg(Self::user_key(prefix, *user)).arg(until).arg(process).ignore();
            pipe.cmd("EXPIRE").arg(Self::user_key(prefix, *user)).arg(ttl.as_secs() * 4).ignore();
            pipe.cmd("ZADD").arg(Self::all_key(prefix)).arg(until).arg(format!("{user}|{process}")).ignore();
        }
        let mut c = Self::conn(pool).await?;
        pipe.query_async::<()>(&mut c).await.map_err(|e| e.to_string())
    }

    /// Takes expired entries out (each taken by one process only) and
    /// returns the users who are now offline everywhere.
    pub async fn sweep(&self) -> Result<Vec<Id>, String> {
        let Presence::Redis { pool, prefix, .. } = self else { return Ok(Vec::new()) };
        let mut c = Self::conn(pool).await?;
        let now = now_ms();
        let expired: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(Self::all_key(prefix))
            .arg("-inf")
            .arg(now)
            .arg("LIMIT")
            .arg(0)
            .arg(500)
            .query_async(&mut c)
            .await
            .map_err(|e| e.to_string())?;
        let mut offline = Vec::new();
        for member in expired {
            let removed: i64 = redis::cmd("ZREM")
                .arg(Self::all_key(prefix))
                .arg(&member)
                .query_async(&mut c)
                .await
                .map_err(|e| e.to_string())?;
            let Some((user, process)) = member.split_once('|') else { continue };
            let Ok(user) = user.parse::<Id>() else { continue };
            if removed == 0 {
                continue;
            }
            let (_, remaining): (i64, i64) = redis::pipe()
                .cmd("ZREM")
                .arg(Self::user_key(prefix, user))
                .arg(process)
                .cmd("ZCOUNT")
                .arg(Self::user_key(prefix, user))
                .arg(now)
                .arg("+inf")
                .query_async(&mut c)
                .await
                .map_err(|e| e.to_string())?;
            if remaining == 0 {
                offline.push(user);
            }
        }
        Ok(offline)
    }

    /// Which of `users` are online.
    pub async fn online(&self, users: &[Id]) -> Result<Vec<bool>, String> {
        match self {
            Presence::Local(hub) => Ok(users.iter().map(|u| hub.is_here(*u)).collect()),
            Presence::Redis { pool, prefix, .. } => {
                if users.is_empty() {
                    return Ok(Vec::new());
                }
                let now = now_ms();
                let mut pipe = redis::pipe();
                for user in users {
                    pipe.cmd("ZCOUNT").arg(Self::user_key(prefix, *user)).arg(now).arg("+inf");
                }
                let mut c = Self::conn(pool).await?;
                let counts: Vec<i64> = pipe.query_async(&mut c).await.map_err(|e| e.to_string())?;
                Ok(counts.into_iter().map(|n| n > 0).collect())
            }
        }
    }
}
