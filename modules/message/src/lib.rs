//! Message: conversations between a guest and a listing's host, messages with
//! a per-conversation `seq`, read state, attachments and contact masking.

pub mod api;
pub mod client;
#[cfg(feature = "local")]
pub mod domain;
#[cfg(feature = "local")]
pub mod host_tools;
#[cfg(feature = "local")]
pub mod http;
#[cfg(feature = "local")]
mod inbox;
#[cfg(feature = "local")]
pub mod service;
#[cfg(feature = "local")]
pub mod store;
