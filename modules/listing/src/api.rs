//! The listing module's published language: the [`Listings`] trait, listing,
//! calendar and quote types, the events it publishes, and its settings.

use async_trait::async_trait;
use chrono::NaiveDate;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::money::Money;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{Id, Problem};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const MODULE: &str = "listing";

// ---- Catalogues (stable keys other modules filter on) --------------------------------

pub const PROPERTY_TYPES: &[&str] = &[
    "apartment",
    "house",
    "villa",
    "cabin",
    "chalet",
    "cottage",
    "loft",
    "studio",
    "guesthouse",
    "bed_and_breakfast",
    "boat",
    "tiny_house",
    "farm_stay",
    "castle",
    "other",
];

/// Cancellation policies a host can choose (Airbnb's published rules; the
/// booking module computes refunds). The non-refundable rate is a guest's
/// choice at booking time on any listing, not a policy.
pub const CANCELLATION_POLICIES: &[&str] = &["flexible", "moderate", "limited", "firm", "strict"];

/// The amenity catalogue: stable keys with English and French labels.
pub const AMENITIES: &[(&str, &str, &str)] = &[
    ("wifi", "Wi-Fi", "Wi-Fi"),
    ("kitchen", "Kitchen", "Cuisine"),
    ("washer", "Washing machine", "Lave-linge"),
    ("dryer", "Dryer", "Sèche-linge"),
    ("dishwasher", "Dishwasher", "Lave-vaisselle"),
    ("air_conditioning", "Air conditioning", "Climatisation"),
    ("heating", "Heating", "Chauffage"),
    ("dedicated_workspace", "Dedicated workspace", "Espace de travail"),
    ("tv", "TV", "Télévision"),
    ("hair_dryer", "Hair dryer", "Sèche-cheveux"),
    ("iron", "Iron", "Fer à repasser"),
    ("coffee_maker", "Coffee maker", "Cafetière"),
    ("oven", "Oven", "Four"),
    ("microwave", "Microwave", "Micro-ondes"),
    ("pool", "Pool", "Piscine"),
    ("hot_tub", "Hot tub", "Jacuzzi"),
    ("sauna", "Sauna", "Sauna"),
    ("gym", "Gym", "Salle de sport"),
    ("free_parking", "Free parking", "Parking gratuit"),
    ("ev_charger", "EV charger", "Borne de recharge"),
    ("crib", "Crib", "Lit pour bébé"),
    ("high_chair", "High chair", "Chaise haute"),
    ("bbq_grill", "Barbecue", "Barbecue"),
    ("garden", "Garden", "Jardin"),
    ("balcony", "Balcony", "Balcon"),
    ("terrace", "Terrace", "Terrasse"),
    ("fireplace", "Fireplace", "Cheminée"),
    ("sea_view", "Sea view", "Vue sur la mer"),
    ("mountain_view", "Mountain view", "Vue sur la montagne"),
    ("beachfront", "Beachfront", "Bord de mer"),
    ("ski_in_out", "Ski-in/ski-out", "Accès aux pistes"),
    ("elevator", "Elevator", "Ascenseur"),
    ("wheelchair_accessible", "Wheelchair accessible", "Accessible en fauteuil roulant"),
    ("pets_allowed", "Pets allowed", "Animaux acceptés"),
    ("smoking_allowed", "Smoking allowed", "Fumeurs acceptés"),
    ("breakfast", "Breakfast", "Petit-déjeuner"),
    ("smoke_alarm", "Smoke alarm", "Détecteur de fumée"),
    ("carbon_monoxide_alarm", "Carbon monoxide alarm", "Détecteur de monoxyde de carbone"),
    ("first_aid_kit", "First aid kit", "Trousse de secours"),
    ("fire_extinguisher", "Fire extinguisher", "Extincteur"),
];

pub fn is_amenity(key: &str) -> bool {
    AMENITIES.iter().any(|(k, _, _)| *k == key)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListingStatus {
    Draft,
    Published,
    Unlisted,
    /// Deleted while future stays were booked: kept, hidden, not bookable.
    Deactivated,
    /// Taken down by an admin: hidden, and the host cannot publish it.
    Suspended,
}

impl ListingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ListingStatus::Draft => "draft",
            ListingStatus::Published => "published",
            ListingStatus::Unlisted => "unlisted",
            ListingStatus::Deactivated => "deactivated",
            ListingStatus::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> ListingStatus {
        match s {
            "published" => ListingStatus::Published,
            "unlisted" => ListingStatus::Unlisted,
            "deactivated" => ListingStatus::Deactivated,
            "suspended" => ListingStatus::Suspended,
            _ => ListingStatus::Draft,
        }
    }
}

/// A listing's address. Visitors (anyone but its host, admins and guests with a
/// confirmed booking) get only `city`, `neighbourhood` and `country`: the
/// street and postal code are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// The street address; left out for visitors.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub line1: String,
    pub city: String,
    /// The district or area shown to visitors, e.g. `Canal Saint-Martin` (optional).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub neighbourhood: String,
    /// Left out for visitors (a postcode can narrow a place to a few houses).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, e.g. `FR`.
    pub country: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Photo {
    pub id: Id,
    /// The full-size image; `thumbnail_url` and `card_url` are the smaller sizes.
    pub url: String,
    pub thumbnail_url: String,
    pub card_url: String,
    pub position: i32,
    pub caption: String,
}

/// A listing as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Listing {
    pub id: Id,
    pub host_id: Id,
    pub status: ListingStatus,
    /// Hidden because its host's account is suspended (`status` then says
    /// `suspended`); reinstating the host brings it back as it was.
    #[serde(default)]
    pub host_suspended: bool,
    pub title: String,
    pub description: String,
    pub property_type: String,
    pub address: Address,
    /// The exact point for the host, admins and guests with a confirmed
    /// booking; for everyone else the same as `approximate_location`.
    pub location: Option<Location>,
    /// The point visitors and search results show: the exact one moved by a
    /// stable offset of 150 to 450 m, the same for every view.
    #[serde(default)]
    pub approximate_location: Option<Location>,
    pub max_guests: u32,
    pub bedrooms: u32,
    pub beds: u32,
    pub bathrooms: f64,
    pub amenities: Vec<String>,
    pub nightly_price: Option<Money>,
    pub cleaning_fee: Option<Money>,
    /// Friday and Saturday nights, when set.
    pub weekend_price: Option<Money>,
    /// Per night for each guest above `guests_included`.
    pub extra_guest_fee: Option<Money>,
    pub guests_included: u32,
    /// Discount for 7 nights or more, in basis points (1000 = 10 %).
    pub weekly_discount_bps: i64,
    /// Discount for 28 nights or more, in basis points; replaces the weekly one.
    pub monthly_discount_bps: i64,
    pub early_bird_days: u32,
    pub early_bird_discount_bps: i64,
    pub last_minute_days: u32,
    pub last_minute_discount_bps: i64,
    pub instant_book: bool,
    pub cancellation_policy: String,
    pub min_nights: u32,
    pub max_nights: u32,
    /// Days between booking and check-in at the least.
    pub advance_notice_days: u32,
    /// Free nights kept before and after each booked stay.
    pub preparation_days: u32,
    /// How far ahead the calendar is open, in days.
    pub booking_window_days: u32,
    /// IANA time zone of the listing: stay dates and cancellation cutoffs are local.
    pub time_zone: String,
    /// Local check-in time, `HH:MM`.
    pub check_in_time: String,
    /// Local check-out time, `HH:MM`.
    pub check_out_time: String,
    pub photos: Vec<Photo>,
    /// The guests' rating: a Bayesian average over the market's ratings
    /// (see the review module), shown from 3 reviews.
    pub rating: Option<f64>,
    /// What search ranks by (the same average, from the first review).
    pub rating_score: Option<f64>,
    /// Published guest reviews.
    pub review_count: i64,
    pub created_at: Instant,
    pub updated_at: Instant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CalendarDay {
    pub date: NaiveDate,
    pub available: bool,
    pub price: Money,
    /// Why a night is not available: `booked`, `blocked` or `external`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The price plan of a stay: the standard rate follows the listing's
/// cancellation policy; the non-refundable rate is cheaper and refunds nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rate {
    #[default]
    Standard,
    NonRefundable,
}

impl Rate {
    pub fn as_str(self) -> &'static str {
        match self {
            Rate::Standard => "standard",
            Rate::NonRefundable => "non_refundable",
        }
    }
    pub fn parse(s: &str) -> Option<Rate> {
        match s {
            "standard" => Some(Rate::Standard),
            "non_refundable" => Some(Rate::NonRefundable),
            _ => None,
        }
    }
}

/// The listing's terms a stay is booked under, as of the quote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StayTerms {
    pub host_id: Id,
    pub instant_book: bool,
    pub cancellation_policy: String,
    /// IANA time zone: the stay's dates and cutoffs are local to it.
    pub time_zone: String,
    /// Local `HH:MM`.
    pub check_in_time: String,
    /// Local `HH:MM`.
    pub check_out_time: String,
    pub preparation_days: u32,
    pub max_guests: u32,
}

/// A priced stay. Every part is in the listing's currency and the parts add up
/// to `total` exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Quote {
    pub listing_id: Id,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub guests: u32,
    /// `discounts` includes the non-refundable rate's discount when chosen.
    #[serde(default)]
    pub rate: Rate,
    pub nights: u32,
    pub nightly_subtotal: Money,
    pub extra_guest_fee: Money,
    pub discounts: Money,
    pub cleaning_fee: Money,
    pub service_fee: Money,
    pub taxes: Money,
    pub total: Money,
    /// The terms the stay would be booked under.
    pub stay: StayTerms,
}

/// Listings as other modules see them (booking, search), in process or over HTTP.
/// They are exact (street address, exact `location`): a module showing one to
/// a visitor shows `crate::privacy::public_view` of it, or only its
/// `approximate_location` (see ARCHITECTURE.md, "Location privacy").
#[async_trait]
pub trait Listings: Send + Sync {
    async fn listing(&self, id: Id) -> Result<Option<Listing>, Problem>;
    /// Prices a stay; 409 when a night is taken, 422 when the stay breaks a rule.
    async fn quote(
        &self,
        id: Id,
        check_in: NaiveDate,
        check_out: NaiveDate,
        guests: u32,
        rate: Rate,
    ) -> Result<Quote, Problem>;
    /// Taken nights (booked, blocked or external) in `[from, to)`.
    async fn taken_nights(&self, id: Id, from: NaiveDate, to: NaiveDate) -> Result<Vec<NaiveDate>, Problem>;
    /// Nights in `[from, to)` the host took off the market: blocked here or
    /// taken by an imported calendar (not booked through HomeTrip).
    async fn blocked_nights(&self, id: Id, from: NaiveDate, to: NaiveDate) -> Result<Vec<NaiveDate>, Problem>;
    /// Taken nights of several listings in `[from, to)`, as `(listing, night)`.
    async fn taken_nights_of(
        &self,
        ids: &[Id],
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(Id, NaiveDate)>, Problem>;
    /// Published listings by id, after `after`, at most `limit` (for index rebuilds).
    async fn published(&self, after: Option<Id>, limit: u32) -> Result<Vec<Listing>, Problem>;
    /// The listings of `ids` that exist, in any status, in id order (at most
    /// 1,000 ids; for index updates).
    async fn listings_of(&self, ids: &[Id]) -> Result<Vec<Listing>, Problem>;
}

/// A host's change: every field optional (a new listing starts from defaults).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TermsPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_guests: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bedrooms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bathrooms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amenities: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instant_book: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nightly_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleaning_fee: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekend_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_guest_fee: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guests_included: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly_discount_bps: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_discount_bps: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_bird_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_bird_discount_bps: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_minute_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_minute_discount_bps: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_nights: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_nights: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advance_notice_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preparation_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_window_days: Option<u32>,
    /// IANA name, e.g. `Europe/Paris`; by default the country's zone, else UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Local `HH:MM`; 15:00 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_in_time: Option<String>,
    /// Local `HH:MM`; 11:00 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_out_time: Option<String>,
}

/// Nights from `from` up to, not including, `to`: opened or closed, and/or
/// priced (`price` null leaves the price as it is).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarRangeInput {
    pub from: NaiveDate,
    pub to: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Money>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SyncResult {
    pub imported_nights: i64,
    pub last_synced_at: Instant,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportLink {
    /// Works without signing in; revoke it by rotating.
    pub url: String,
}

/// Listings as an admin moderates them in the console, in process or over
/// the module's admin routes as that admin (403 for anyone else).
#[async_trait]
pub trait ListingModeration: Send + Sync {
    /// Listings in any status whose title contains `q` (any case; all when
    /// empty), only the suspended ones when asked; newest first, at most 50.
    async fn find(&self, admin: &AuthUser, q: &str, suspended_only: bool) -> Result<Vec<Listing>, Problem>;
    /// One listing, whatever its status.
    async fn listing(&self, admin: &AuthUser, id: Id) -> Result<Listing, Problem>;
    /// Takes the listing out of search and bookings.
    async fn suspend(&self, admin: &AuthUser, id: Id) -> Result<Listing, Problem>;
    /// Puts a suspended listing back, unlisted, for its host to publish again.
    async fn reinstate(&self, admin: &AuthUser, id: Id) -> Result<Listing, Problem>;
}

/// A host's own listings as that host (or an admin) manages them, in
/// process or over the module's public routes as that user: the same rules
/// and answers as the API (403 for someone else's listing).
#[async_trait]
pub trait HostListings: Send + Sync {
    /// The user's listings in every status, newest first.
    async fn mine(&self, user: &AuthUser) -> Result<Vec<Listing>, Problem>;
    /// The listing with its street address, for its host.
    async fn own(&self, user: &AuthUser, id: Id) -> Result<Listing, Problem>;
    /// A new draft.
    async fn create(&self, user: &AuthUser, terms: &TermsPatch) -> Result<Listing, Problem>;
    async fn update(&self, user: &AuthUser, id: Id, terms: &TermsPatch) -> Result<Listing, Problem>;
    /// 422 listing what is missing (a photo, a price...).
    async fn publish(&self, user: &AuthUser, id: Id) -> Result<Listing, Problem>;
    async fn unlist(&self, user: &AuthUser, id: Id) -> Result<Listing, Problem>;
    async fn add_photos(&self, user: &AuthUser, id: Id, files: Vec<Vec<u8>>) -> Result<Vec<Photo>, Problem>;
    async fn order_photos(&self, user: &AuthUser, id: Id, photo_ids: &[Id]) -> Result<Listing, Problem>;
    async fn caption_photo(&self, user: &AuthUser, id: Id, photo_id: Id, caption: &str) -> Result<Photo, Problem>;
    async fn delete_photo(&self, user: &AuthUser, id: Id, photo_id: Id) -> Result<(), Problem>;
    /// Nights from `from` up to, not including, `to`, with why each is taken.
    async fn calendar(
        &self,
        user: &AuthUser,
        id: Id,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CalendarDay>, Problem>;
    /// 409 when a range would open or reprice a booked night.
    async fn edit_calendar(
        &self,
        user: &AuthUser,
        id: Id,
        ranges: &[CalendarRangeInput],
    ) -> Result<Vec<CalendarDay>, Problem>;
    async fn export_link(&self, user: &AuthUser, id: Id) -> Result<ExportLink, Problem>;
    /// A new secret export URL; the old one stops working.
    async fn rotate_export_link(&self, user: &AuthUser, id: Id) -> Result<ExportLink, Problem>;
    async fn imports(&self, user: &AuthUser, id: Id) -> Result<Vec<CalendarImport>, Problem>;
    async fn add_import(&self, user: &AuthUser, id: Id, url: &str, name: &str) -> Result<CalendarImport, Problem>;
    /// 502 when the feed cannot be read (its blocks are kept).
    async fn sync_import(&self, user: &AuthUser, id: Id, import_id: Id) -> Result<SyncResult, Problem>;
    async fn delete_import(&self, user: &AuthUser, id: Id, import_id: Id) -> Result<(), Problem>;
}

// ---- Events -------------------------------------------------------------------

/// Any change of a listing (created, edited, published, unlisted, photos, deleted).
pub const LISTING_CHANGED: &str = "listing.changed";
/// Nights blocked, unblocked or repriced.
pub const CALENDAR_CHANGED: &str = "listing.calendar_changed";

/// A listing's rating moved (a review published or removed, or the market's
/// mean moved), published by the review module. Defined here, the
/// consumer's side: the review module depends on this api, not the reverse.
pub const LISTING_RATING_CHANGED: &str = "review.listing_rating_changed";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListingRatingChanged {
    pub listing_id: Id,
    /// Published guest reviews.
    pub count: i64,
    /// What the listing shows: the Bayesian score, from 3 reviews.
    pub rating: Option<f64>,
    /// What search ranks by: the Bayesian score (none without reviews).
    pub score: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListingChanged {
    pub listing: Listing,
    /// True when the listing was removed for good.
    pub deleted: bool,
}

/// What the listing module reads of the booking module's events to keep
/// booked nights in its calendar (a tolerant reader: the booking module's
/// crate depends on this one, so the types cannot be shared the other way).
pub mod booking_events {
    pub const CREATED: &str = "booking.created";
    /// Events after which a booking holds no nights any more.
    pub const RELEASED: &[&str] = &["booking.expired", "booking.declined", "booking.cancelled_by_guest"];
    /// A host's cancellation frees the guest but keeps the nights blocked.
    pub const CANCELLED_BY_HOST: &str = "booking.cancelled_by_host";
    /// From here on the guest sees the street address and exact location.
    pub const CONFIRMED: &str = "booking.confirmed";
    /// A confirmed booking cancelled: its guest goes back to the public view.
    /// (A completed stay keeps its access: the guest has been there.)
    pub const ACCESS_ENDED: &[&str] = &["booking.cancelled_by_guest", "booking.cancelled_by_host"];
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CalendarChanged {
    pub listing_id: Id,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

// ---- Settings -----------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListingSettings {
    /// Guest service fee on the stay's price, in basis points.
    pub service_fee_bps: i64,
    /// Occupancy tax on the accommodation price, in basis points.
    pub occupancy_tax_bps: i64,
    /// Discount of the non-refundable rate on the nights, in basis points.
    pub non_refundable_discount_bps: i64,
    pub photo_max_bytes: usize,
    pub max_photos: usize,
    /// How often imported iCal feeds are fetched again.
    pub ical_sync_interval_secs: u64,
    /// Allow feeds on private and loopback addresses (tests, intranets); off in
    /// production, so a host cannot make the server fetch internal URLs.
    pub ical_allow_private_hosts: bool,
    /// How long one feed may take to answer, body included.
    pub ical_fetch_timeout_secs: u64,
    /// A scheduled sync starts no new fetch after this long (the rest go
    /// first next time).
    pub ical_sync_budget_secs: u64,
}

/// An external calendar feed that blocks the listing's nights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CalendarImport {
    pub id: Id,
    pub name: String,
    pub url: String,
    pub last_synced_at: Option<Instant>,
    pub last_error: Option<String>,
}
