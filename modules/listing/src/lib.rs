//! Listing: properties, photos, the nights calendar, pricing rules and quotes.

pub mod api;
#[cfg(feature = "local")]
mod booked_nights;
pub mod client;
#[cfg(feature = "local")]
pub mod demo;
#[cfg(feature = "local")]
pub mod domain;
#[cfg(feature = "local")]
pub mod feeds;
#[cfg(feature = "local")]
pub mod guest_access;
#[cfg(feature = "local")]
pub mod host_desk;
#[cfg(feature = "local")]
pub mod hosts;
#[cfg(feature = "local")]
pub mod http;
#[cfg(feature = "local")]
pub mod ical;
#[cfg(feature = "local")]
pub mod moderation;
pub mod privacy;
#[cfg(feature = "local")]
pub mod ratings;
#[cfg(feature = "local")]
pub mod service;
#[cfg(feature = "local")]
pub mod store;
