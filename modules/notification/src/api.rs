//! The notification module's published language: its settings. It is fed by
//! events only, so it offers no trait to call yet.

use serde::{Deserialize, Serialize};

pub const MODULE: &str = "notification";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// Sender of every email.
    pub from: String,
    pub smtp: SmtpSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// `smtp://host:port` or `smtps://user:pass@host`; empty: write `.eml` files.
    pub url: String,
}
