//! The search module's published language: the [`Search`] trait (the web
//! pages call it; a process without the module, through [`crate::client`]),
//! its query and result types, and settings.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::NaiveDate;
use hometrip_kernel::Problem;

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

/// The raw query string of `GET /search/listings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(default)]
pub struct SearchParams {
    pub q: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub radius_km: Option<f64>,
    /// `minLon,minLat,maxLon,maxLat`
    pub bbox: Option<String>,
    pub check_in: Option<NaiveDate>,
    pub check_out: Option<NaiveDate>,
    pub guests: Option<u32>,
    /// Bedrooms at least.
    pub bedrooms: Option<u32>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    /// Comma-separated amenity keys; all must be present.
    pub amenities: Option<String>,
    pub property_type: Option<String>,
    pub instant_book: Option<bool>,
    /// `relevance` (default), `price_asc`, `price_desc`, `rating`, `distance`.
    pub sort: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[async_trait]
pub trait Search: Send + Sync {
    /// Published listings matching `params` (422 names a bad parameter).
    async fn search(&self, params: &SearchParams) -> Result<SearchResults, Problem>;
    /// Cities and listing titles starting with `q`.
    async fn autocomplete(&self, q: &str) -> Result<Vec<Suggestion>, Problem>;
}
