//! Frames to users, whichever process holds their sockets: published on one
//! Redis channel that every realtime process listens to, or handed straight
//! to this process's hub without Redis. Redis pub/sub is at most once; the
//! socket writer fills any gap in a conversation from the message store.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hometrip_kernel::cache::{REDIS_CONNECT_TIMEOUT, REDIS_RESPONSE_TIMEOUT};
use hometrip_kernel::Id;
use serde::{Deserialize, Serialize};

use crate::hub::{Hub, Outgoing};

/// What crosses the channel.
#[derive(Debug, Serialize, Deserialize)]
struct Published {
    users: Vec<Id>,
    frame: Box<serde_json::value::RawValue>,
    order: Option<(Id, i64)>,
}

pub enum Fanout {
    Local(Arc<Hub>),
    Redis { hub: Arc<Hub>, pool: deadpool_redis::Pool, url: String, channel: String },
}

impl Fanout {
    pub fn local(hub: Arc<Hub>) -> Arc<Fanout> {
        Arc::new(Fanout::Local(hub))
    }

    /// The Redis pool fan-out and presence share, with the cache's timeouts
    /// (redis' own default gives a command 500 ms, too little under load).
    pub fn redis_pool(url: &str) -> Result<deadpool_redis::Pool, String> {
        let config = deadpool_redis::redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_CONNECT_TIMEOUT))
            .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT));
        let manager = deadpool_redis::Manager::new_with_config(url, config).map_err(|e| format!("redis.url: {e}"))?;
        deadpool_redis::Pool::builder(manager)
            .runtime(deadpool_redis::Runtime::Tokio1)
            .build()
            .map_err(|e| format!("redis.url: {e}"))
    }

    /// Over Redis: `pool` publishes, a connection of its own (from `url`) listens.
    pub fn redis(hub: Arc<Hub>, pool: deadpool_redis::Pool, url: &str, prefix: &str) -> Arc<Fanout> {
        Arc::new(Fanout::Redis { hub, pool, url: url.to_owned(), channel: format!("{prefix}realtime:frames") })
    }

    pub fn hub(&self) -> &Arc<Hub> {
        match self {
            Fanout::Local(hub) | Fanout::Redis { hub, .. } => hub,
        }
    }

    /// Sends `frame` (a JSON object with a `type`) to every socket of `users`.
    pub async fn publish(
        &self,
        users: &[Id],
        frame: &serde_json::Value,
        order: Option<(Id, i64)>,
    ) -> Result<(), String> {
        if users.is_empty() {
            return Ok(());
        }
        match self {
            Fanout::Local(hub) => {
                hub.deliver(users, &Outgoing::Frame { text: Arc::from(frame.to_string()), order });
                Ok(())
            }
            Fanout::Redis { pool, channel, .. } => {
                let raw = serde_json::value::to_raw_value(frame).map_err(|e| e.to_string())?;
                let payload = serde_json::to_string(&Published { users: users.to_vec(), frame: raw, order })
                    .map_err(|e| e.to_string())?;
                let mut conn = tokio::time::timeout(REDIS_RESPONSE_TIMEOUT, pool.get())
                    .await
                    .map_err(|_| "timed out connecting to redis".to_owned())?
                    .map_err(|e| e.to_string())?;
                let _: i64 = deadpool_redis::redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(payload)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(())
            }
        }
    }

    /// Listens to the channel and hands frames to this process's sockets,
    /// reconnecting after a failure (Redis' pub/sub keeps no backlog: a
    /// socket's writer back-fills what a gap in `seq` shows was missed).
    pub fn spawn_listener(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let Fanout::Redis { hub, url, channel, .. } = self.as_ref() else { return None };
        let (hub, url, channel) = (Arc::clone(hub), url.clone(), channel.clone());
        Some(tokio::spawn(async move {
            let mut wait = Duration::from_millis(200);
            loop {
                match listen(&hub, &url, &channel).await {
                    Ok(()) => tracing::warn!("realtime channel closed; subscribing again"),
                    Err(e) => tracing::warn!(error = %e, "realtime channel failed; subscribing again"),
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }))
    }
}

async fn listen(hub: &Hub, url: &str, channel: &str) -> Result<(), String> {
    let client = deadpool_redis::redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
    pubsub.subscribe(channel).await.map_err(|e| e.to_string())?;
    let mut messages = pubsub.into_on_message();
    while let Some(msg) = messages.next().await {
        let Ok(payload) = msg.get_payload::<String>() else { continue };
        match serde_json::from_str::<Published>(&payload) {
            Ok(p) => hub.deliver(&p.users, &Outgoing::Frame { text: Arc::from(p.frame.get()), order: p.order }),
            Err(e) => tracing::warn!(error = %e, "unreadable realtime frame"),
        }
    }
    Ok(())
}
