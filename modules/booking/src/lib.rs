//! Booking: quotes with refund timelines, reservations that cannot double-book,
//! the booking state machine, cancellation policies and the timers behind them.

pub mod api;
pub mod client;
#[cfg(feature = "local")]
pub mod domain;
#[cfg(feature = "local")]
pub mod http;
#[cfg(feature = "local")]
pub mod refunds;
#[cfg(feature = "local")]
mod reservations;
#[cfg(feature = "local")]
pub mod service;
#[cfg(feature = "local")]
pub mod store;
