//! User: profiles, preferences, avatars, identity verification and admin user search.

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
