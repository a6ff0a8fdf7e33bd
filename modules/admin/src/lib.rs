//! Admin: the append-only audit log of every administrator's call, each
//! entry chained to the one before by a SHA-256 hash, its verification (on
//! demand and nightly), and the console's own routes.

pub mod api;
pub mod client;
#[cfg(feature = "local")]
pub mod domain;
#[cfg(feature = "local")]
pub mod http;
#[cfg(feature = "local")]
pub mod service;
#[cfg(feature = "local")]
pub mod store;
