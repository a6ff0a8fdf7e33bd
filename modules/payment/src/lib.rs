//! Payment: the payment gateway (simulated or Stripe), webhooks, refunds,
//! payouts to hosts and the double-entry ledger every money movement is written to.

pub mod api;
pub mod client;
#[cfg(feature = "local")]
pub mod domain;
#[cfg(feature = "local")]
pub mod gateway;
#[cfg(feature = "local")]
pub mod http;
#[cfg(feature = "local")]
pub mod payout_desk;
#[cfg(feature = "local")]
pub mod service;
#[cfg(feature = "local")]
pub mod store;
#[cfg(feature = "local")]
pub mod stripe;
