//! Review: reviews of completed stays by guests and hosts, double-blind until
//! both are in or the window ends, listing ratings ranked by a Bayesian
//! average, spam checks in layers, flags, moderation and appeals.

pub mod api;
pub mod client;
#[cfg(feature = "local")]
mod desk;
#[cfg(feature = "local")]
pub mod domain;
#[cfg(feature = "local")]
pub mod http;
#[cfg(feature = "local")]
pub mod moderation;
#[cfg(feature = "local")]
pub mod service;
#[cfg(feature = "local")]
pub mod spam;
#[cfg(feature = "local")]
pub mod store;
