//! The admin module's published language: its settings. (Other modules
//! call nothing of it: the edge records admin calls as
//! `kernel::audit::AdminAction` events, which it consumes.)

use serde::{Deserialize, Serialize};

pub const MODULE: &str = "admin";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// How often the whole audit chain is verified, in seconds (nightly).
    pub verify_every_secs: u64,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings { verify_every_secs: 86_400 }
    }
}
