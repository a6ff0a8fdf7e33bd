//! HomeTrip shared kernel: what every module needs and no module owns.
//!
//! Ids, time, errors (RFC 9457), typed settings, storage on SQLite or PostgreSQL,
//! the outbox event bus, cache and rate limiting, the caller's identity, HTTP
//! plumbing and the base of remote clients. The kernel knows no module.

pub mod api_keys;
pub mod audit;
pub mod auth_context;
pub mod broker;
pub mod cache;
#[cfg(feature = "contacts")]
pub mod contacts;
pub mod db;
pub mod error;
pub mod events;
pub mod files;
pub mod http;
pub mod ids;
#[cfg(feature = "images")]
pub mod images;
pub mod jobs;
pub mod money;
pub mod outbound;
pub mod per_thread;
pub mod remote;
pub mod sealed;
pub mod settings;
pub mod telemetry;
pub mod time;
pub mod tls;
pub mod upstream;

pub use error::{ErrorCode, FieldError, Problem};
pub use ids::Id;

// Re-exported so that module crates expand the storage macros without naming
// these crates themselves.
pub use diesel;
pub use diesel_async;
pub use metrics;
pub use tracing;
