//! Notification: email (SMTP, or `.eml` files in the embedded profile) from
//! templates in French and English, fed by other modules' events.

pub mod api;
#[cfg(feature = "local")]
pub mod domain;
#[cfg(feature = "local")]
pub mod service;
