//! Search: a tantivy index of published listings, kept up to date from listing
//! events; full text (French/English stemming), filters, dates, geo, sorts,
//! facets, autocomplete and similar listings.

pub mod api;
pub mod client;
#[cfg(feature = "local")]
pub mod collector;
#[cfg(feature = "local")]
pub mod domain;
#[cfg(feature = "local")]
pub mod http;
#[cfg(test)]
#[cfg(feature = "local")]
mod rebuild_tests;
#[cfg(feature = "local")]
pub mod service;
#[cfg(feature = "local")]
pub mod store;
