//! Auth: credentials, access and refresh tokens, email verification, password
//! reset, TOTP two-factor and OAuth2 sign-in.

pub mod api;
pub mod client;
#[cfg(feature = "local")]
pub mod domain;
#[cfg(feature = "local")]
pub mod http;
#[cfg(feature = "local")]
mod oauth;
#[cfg(feature = "local")]
pub mod service;
#[cfg(feature = "local")]
pub mod store;
