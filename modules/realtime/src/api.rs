//! The realtime module's settings. Other modules do not call it: it learns
//! what to push from their events.

use serde::{Deserialize, Serialize};

pub const MODULE: &str = "realtime";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealtimeSettings {
    /// Bytes that may wait for one socket before it is closed (4008).
    pub max_queued_bytes: usize,
    /// Largest frame a client may send (1009 past it).
    pub max_frame_bytes: usize,
    /// How often the server pings; a socket silent for three periods is closed.
    pub heartbeat_secs: u64,
    /// How long a process's presence lasts without being renewed: a process
    /// that dies takes its users offline within this time.
    pub presence_ttl_secs: u64,
}
