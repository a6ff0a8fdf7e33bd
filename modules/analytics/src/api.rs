//! The analytics module's published language: its settings. (It publishes
//! no events and no other module calls it.)

use serde::{Deserialize, Serialize};

pub const MODULE: &str = "analytics";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsSettings {
    /// Days raw client events are kept (rollups are kept).
    pub raw_retention_days: i64,
    /// Batches one address may send per minute.
    pub batches_per_minute: u32,
    /// The currency the operators' overview reports money in.
    pub currency: String,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        AnalyticsSettings { raw_retention_days: 90, batches_per_minute: 60, currency: "EUR".to_owned() }
    }
}
