//! The search module's published language: result types and settings. Search
//! is called over public HTTP only, so it offers no trait to other modules.

use std::collections::BTreeMap;

use hometrip_kernel::money::Money;
use hometrip_kernel::Id;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const MODULE: &str = "search";

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    pub id: Id,
    pub title: String,
    pub city: String,
    /// The approximate location (within a few hundred metres), never the exact one.
    pub location: GeoPoint,
    pub nightly_price: Money,
    pub rating: Option<f64>,
    pub property_type: String,
    pub max_guests: u32,
    /// From the search's centre to the approximate location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PriceBucket {
    /// Lower bound, in minor units.
    pub from: u64,
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Facets {
    pub property_types: BTreeMap<String, u64>,
    pub amenities: BTreeMap<String, u64>,
    pub price_histogram: Vec<PriceBucket>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchResults {
    pub items: Vec<SearchHit>,
    pub total: u64,
    pub next_cursor: Option<String>,
    pub facets: Facets,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Suggestion {
    pub text: String,
    /// `city` or `listing`.
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSettings {
    /// Writer memory budget.
    pub writer_heap_bytes: usize,
}
