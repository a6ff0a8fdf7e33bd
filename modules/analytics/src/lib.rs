//! Analytics: client events (batched, schema-checked, bots dropped, visitors
//! counted by a daily-salted hash, no address kept) and the domain events of
//! the bus, rolled up per listing and per day as they arrive; the host's
//! figures (occupancy, ADR, RevPAR, revenue) and the operators' overview read
//! the rollups only.

pub mod api;
pub mod client;
#[cfg(feature = "local")]
pub mod domain;
#[cfg(feature = "local")]
pub mod http;
#[cfg(feature = "local")]
pub mod projections;
#[cfg(feature = "local")]
pub mod reports;
#[cfg(feature = "local")]
pub mod service;
#[cfg(feature = "local")]
pub mod store;
#[cfg(feature = "local")]
pub mod writes;
