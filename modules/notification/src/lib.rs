//! Notification: every channel. Account-security emails from auth's events;
//! the catalogue's notifications (bookings, messages, payouts, reviews) in
//! the app, by email, SMS (Twilio) and Web Push, per the user's preferences
//! and quiet hours, in French and English.

pub mod api;
#[cfg(feature = "local")]
pub mod catalogue;
#[cfg(feature = "local")]
pub mod channels;
pub mod client;
#[cfg(feature = "local")]
pub mod deliver;
#[cfg(feature = "local")]
pub mod domain;
#[cfg(feature = "local")]
pub mod http;
#[cfg(feature = "local")]
pub mod inbox;
#[cfg(feature = "local")]
pub mod service;
#[cfg(feature = "local")]
pub mod store;
