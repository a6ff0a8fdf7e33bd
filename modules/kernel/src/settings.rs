//! Typed settings shared by the binary and the kernel. Module-specific settings
//! live in each module's `api`; only the binary reads configuration sources.

use serde::{Deserialize, Serialize};

use crate::cache::Limit;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Worker threads (0: one per core).
    pub workers: usize,
    /// Origins allowed by CORS; empty means same-origin only.
    pub cors_origins: Vec<String>,
    /// Proxies (IPs or CIDR ranges) whose `X-Forwarded-For` gives the client address.
    pub trusted_proxies: Vec<String>,
    /// Public base URL, used in links sent by email.
    pub public_url: String,
    /// Requests per IP per window across the API.
    pub rate_limit: Limit,
    /// `/metrics` answers anyone; otherwise only `metrics_token`.
    pub metrics_public: bool,
    /// The bearer token a Prometheus scraper presents; empty: `/metrics` is
    /// closed unless `metrics_public`.
    pub metrics_token: String,
}

impl ServerSettings {
    /// HTTP worker threads to start.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            n => n,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://<path>` or `postgres://...`; empty means SQLite under the data dir.
    pub url: String,
    /// Connections of the process; on PostgreSQL shared out among the HTTP
    /// workers and the background runtime, each keeping its own.
    pub max_connections: usize,
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// Empty: in-process cache, rate limits and pub/sub.
    pub url: String,
    pub key_prefix: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub filter: String,
    /// JSON logs; unset: JSON unless stderr is a terminal.
    pub json: Option<bool>,
}
