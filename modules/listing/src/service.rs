//! The in-process implementation of listings.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{Datelike, Duration, NaiveDate, Utc};
use hometrip_kernel::db::{Db, DbError};
use hometrip_kernel::events::{Envelope, EventBus};
use hometrip_kernel::files::FileStore;
use hometrip_kernel::money::Money;
use hometrip_kernel::outbound::Outbound;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{ErrorCode, FieldError, Id, Problem};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::api::*;
use crate::domain::{self, PlatformFees, StayError, Taken, Terms, TermsPatch};
use crate::store::{self, CalendarError, ListingRow, PhotoRow, RangeEdit};

pub use crate::api::{CalendarRangeInput, ExportLink, SyncResult};

/// Photo sizes (longest side): thumbnail, card, full.
pub const PHOTO_SIZES: [u32; 3] = [320, 720, 1600];

pub struct ListingService {
    pub(crate) db: Db,
    pub(crate) bus: Arc<EventBus>,
    files: FileStore,
    pub(crate) settings: ListingSettings,
    /// Calendar feeds are fetched through it (URLs hosts choose).
    pub(crate) feeds: Outbound,
}

/// Who is asking: the listing's owner and admins see drafts and may edit.
#[derive(Debug, Clone, Copy)]
pub struct Viewer {
    pub id: Id,
    pub admin: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Amenity {
    pub key: String,
    pub label: String,
}

/// What deleting a listing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Deleted,
    /// Future stays are booked: hidden and closed instead.
    Deactivated,
}

pub(crate) fn db_err(e: DbError) -> Problem {
    Problem::from(e)
}

fn json<T: Serialize>(v: &T) -> Result<String, Problem> {
    serde_json::to_string(v).map_err(Problem::internal)
}

fn parse<T: for<'de> Deserialize<'de> + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

impl ListingService {
    /// `feeds` fetches calendar imports ([`crate::feeds::feed_purpose`]).
    pub fn new(db: Db, bus: Arc<EventBus>, files: FileStore, settings: ListingSettings, feeds: Outbound) -> Arc<Self> {
        Arc::new(ListingService { db, bus, files, settings, feeds })
    }

    fn fees(&self, rate: Rate) -> PlatformFees {
        PlatformFees {
            service_fee_bps: self.settings.service_fee_bps,
            occupancy_tax_bps: self.settings.occupancy_tax_bps,
            rate_discount_bps: match rate {
                Rate::Standard => 0,
                Rate::NonRefundable => self.settings.non_refundable_discount_bps,
            },
        }
    }

    fn terms(row: &ListingRow) -> Terms {
        Terms {
            title: row.title.clone(),
            description: row.description.clone(),
            property_type: row.property_type.clone(),
            address: parse(&row.address),
            location: row.lat.zip(row.lon).map(|(lat, lon)| Location { lat, lon }),
            details: parse(&row.details),
            pricing: parse(&row.pricing),
            rules: parse(&row.rules),
        }
    }

    fn write_terms(row: &mut ListingRow, t: &Terms) -> Result<(), Problem> {
        row.title = t.title.clone();
        row.description = t.description.clone();
        row.property_type = t.property_type.clone();
        row.address = json(&t.address)?;
        row.lat = t.location.map(|l| l.lat);
        row.lon = t.location.map(|l| l.lon);
        row.details = json(&t.details)?;
        row.pricing = json(&t.pricing)?;
        row.rules = json(&t.rules)?;
        Ok(())
    }

    /// A new listing row holding `terms`.
    fn new_row(host: Id, status: ListingStatus, terms: &Terms) -> Result<ListingRow, Problem> {
        let now = Instant::now();
        let mut token = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut token);
        let mut row = ListingRow {
            id: Id::new(),
            host_id: host,
            status: status.as_str().to_owned(),
            title: String::new(),
            description: String::new(),
            property_type: String::new(),
            address: String::new(),
            lat: None,
            lon: None,
            details: String::new(),
            pricing: String::new(),
            rules: String::new(),
            ical_token: hex::encode(token),
            created_at: now,
            updated_at: now,
            location_salt: hex::encode(rand::random::<[u8; 16]>()),
            rating: None,
            rating_score: None,
            review_count: 0,
            host_suspended: false,
        };
        Self::write_terms(&mut row, terms)?;
        Ok(row)
    }

    fn photo_view(&self, p: &PhotoRow) -> Photo {
        let [thumb, card, full] = PHOTO_SIZES;
        Photo {
            id: p.id,
            url: self.files.url(&format!("{}-{full}.jpg", p.storage_key)),
            thumbnail_url: self.files.url(&format!("{}-{thumb}.jpg", p.storage_key)),
            card_url: self.files.url(&format!("{}-{card}.jpg", p.storage_key)),
            position: p.position,
            caption: p.caption.clone(),
        }
    }

    pub(crate) fn view(&self, row: &ListingRow, photos: &[PhotoRow]) -> Listing {
        let t = Self::terms(row);
        let currency = t.pricing.currency.clone().unwrap_or_else(|| "EUR".to_owned());
        let money = |amount: i64| Money::new(amount, &currency);
        Listing {
            id: row.id,
            host_id: row.host_id,
            status: Self::status_of(row),
            host_suspended: row.host_suspended,
            title: t.title,
            description: t.description,
            property_type: t.property_type,
            address: t.address,
            location: t.location,
            approximate_location: t
                .location
                .map(|exact| crate::privacy::approximate_location(&row.location_salt, row.id, exact)),
            max_guests: t.details.max_guests,
            bedrooms: t.details.bedrooms,
            beds: t.details.beds,
            bathrooms: t.details.bathrooms,
            amenities: t.details.amenities,
            nightly_price: t.pricing.nightly.map(money),
            cleaning_fee: t.pricing.currency.as_ref().map(|_| money(t.pricing.cleaning_fee)),
            weekend_price: t.pricing.weekend.map(money),
            extra_guest_fee: t.pricing.currency.as_ref().map(|_| money(t.pricing.extra_guest_fee)),
            guests_included: t.pricing.guests_included.max(1),
            weekly_discount_bps: t.pricing.weekly_discount_bps,
            monthly_discount_bps: t.pricing.monthly_discount_bps,
            early_bird_days: t.pricing.early_bird_days,
            early_bird_discount_bps: t.pricing.early_bird_discount_bps,
            last_minute_days: t.pricing.last_minute_days,
            last_minute_discount_bps: t.pricing.last_minute_discount_bps,
            instant_book: t.details.instant_book,
            cancellation_policy: t.details.cancellation_policy,
            min_nights: t.rules.min_nights,
            max_nights: t.rules.max_nights,
            advance_notice_days: t.rules.advance_notice_days,
            preparation_days: t.rules.preparation_days,
            booking_window_days: t.rules.booking_window_days,
            time_zone: t.rules.time_zone.name().to_owned(),
            check_in_time: t.rules.check_in_time.format("%H:%M").to_string(),
            check_out_time: t.rules.check_out_time.format("%H:%M").to_string(),
            photos: photos.iter().map(|p| self.photo_view(p)).collect(),
            rating: row.rating,
            rating_score: row.rating_score,
            review_count: row.review_count,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }

    fn changed(&self, listing: &Listing, deleted: bool) -> Result<Envelope, Problem> {
        Envelope::new(MODULE, LISTING_CHANGED, &ListingChanged { listing: listing.clone(), deleted }).map_err(db_err)
    }

    pub(crate) async fn row(&self, id: Id) -> Result<ListingRow, Problem> {
        store::get(&self.db, id).await.map_err(db_err)?.ok_or_else(|| Problem::not_found("listing"))
    }

    /// The row, if `viewer` may see it: published listings are public; others
    /// exist only for their host and admins (404 for anyone else).
    async fn visible_row(&self, id: Id, viewer: Option<Viewer>) -> Result<ListingRow, Problem> {
        Self::visible(self.row(id).await?, viewer)
    }

    /// The status the world sees: a suspended host's listings are suspended
    /// whatever their own status.
    pub(crate) fn status_of(row: &ListingRow) -> ListingStatus {
        if row.host_suspended {
            ListingStatus::Suspended
        } else {
            ListingStatus::parse(&row.status)
        }
    }

    fn visible(row: ListingRow, viewer: Option<Viewer>) -> Result<ListingRow, Problem> {
        let public = Self::status_of(&row) == ListingStatus::Published;
        let privileged = viewer.is_some_and(|v| v.admin || v.id == row.host_id);
        if public || privileged {
            Ok(row)
        } else {
            Err(Problem::not_found("listing"))
        }
    }

    /// The row, if `viewer` is its host (403 otherwise; 404 if it is not theirs to see).
    pub(crate) async fn owned_row(&self, id: Id, viewer: Viewer) -> Result<ListingRow, Problem> {
        let row = self.visible_row(id, Some(viewer)).await?;
        if row.host_id != viewer.id {
            return Err(Problem::forbidden("only the listing's host may change it"));
        }
        match ListingStatus::parse(&row.status) {
            ListingStatus::Deactivated => return Err(Problem::new(ErrorCode::Conflict, "the listing is deactivated")),
            ListingStatus::Suspended => {
                return Err(Problem::new(ErrorCode::Conflict, "the listing is suspended by moderation"))
            }
            _ => {}
        }
        Ok(row)
    }

    async fn save(&self, mut row: ListingRow) -> Result<Listing, Problem> {
        row.updated_at = Instant::now();
        let photos = store::photos(&self.db, row.id).await.map_err(db_err)?;
        let listing = self.view(&row, &photos);
        store::save(&self.db, &row, &self.changed(&listing, false)?).await.map_err(db_err)?;
        self.bus.poke();
        Ok(listing)
    }

    pub async fn create(&self, host: Id, patch: &TermsPatch) -> Result<Listing, Problem> {
        let terms = domain::apply_patch(&Terms::default(), patch).map_err(Problem::validation)?;
        let row = Self::new_row(host, ListingStatus::Draft, &terms)?;
        let listing = self.view(&row, &[]);
        store::insert(&self.db, &row, &self.changed(&listing, false)?).await.map_err(db_err)?;
        self.bus.poke();
        Ok(listing)
    }

    /// The listing as `viewer` may see it: the street address and exact point
    /// only for its host, admins and guests with a confirmed booking (who also
    /// see it when it is no longer published); the public view for others.
    pub async fn get(&self, id: Id, viewer: Option<Viewer>) -> Result<Listing, Problem> {
        let row = self.row(id).await?;
        let exact = self.sees_exact_location(&row, viewer).await?;
        let row = if exact { row } else { Self::visible(row, viewer)? };
        let photos = store::photos(&self.db, id).await.map_err(db_err)?;
        let listing = self.view(&row, &photos);
        Ok(if exact { listing } else { crate::privacy::public_view(listing) })
    }

    pub async fn update(&self, id: Id, viewer: Viewer, patch: &TermsPatch) -> Result<Listing, Problem> {
        let mut row = self.owned_row(id, viewer).await?;
        let terms = domain::apply_patch(&Self::terms(&row), patch).map_err(Problem::validation)?;
        if ListingStatus::parse(&row.status) == ListingStatus::Published {
            let photos = store::photos(&self.db, id).await.map_err(db_err)?.len();
            let missing = domain::missing_for_publish(&terms, photos);
            if !missing.is_empty() {
                // A published listing must stay complete.
                return Err(Problem::validation(missing));
            }
        }
        Self::write_terms(&mut row, &terms)?;
        self.save(row).await
    }

    pub async fn publish(&self, id: Id, viewer: Viewer) -> Result<Listing, Problem> {
        let mut row = self.owned_row(id, viewer).await?;
        let photos = store::photos(&self.db, id).await.map_err(db_err)?.len();
        let missing = domain::missing_for_publish(&Self::terms(&row), photos);
        if !missing.is_empty() {
            return Err(Problem::validation(missing));
        }
        row.status = ListingStatus::Published.as_str().to_owned();
        self.save(row).await
    }

    pub async fn unlist(&self, id: Id, viewer: Viewer) -> Result<Listing, Problem> {
        let mut row = self.owned_row(id, viewer).await?;
        if ListingStatus::parse(&row.status) != ListingStatus::Published {
            return Err(Problem::new(ErrorCode::Conflict, "only a published listing can be unlisted"));
        }
        row.status = ListingStatus::Unlisted.as_str().to_owned();
        self.save(row).await
    }

    /// Deletes the listing, or deactivates it when future stays are booked.
    pub async fn delete(&self, id: Id, viewer: Viewer) -> Result<Removal, Problem> {
        let mut row = self.owned_row(id, viewer).await?;
        if store::booked_from(&self.db, id, today()).await.map_err(db_err)? > 0 {
            row.status = ListingStatus::Deactivated.as_str().to_owned();
            self.save(row).await?;
            return Ok(Removal::Deactivated);
        }
        let photos = store::photos(&self.db, id).await.map_err(db_err)?;
        let listing = self.view(&row, &photos);
        store::delete(&self.db, id, &self.changed(&listing, true)?).await.map_err(db_err)?;
        for p in photos.iter().filter(|p| !is_demo_photo(&p.storage_key)) {
            for size in PHOTO_SIZES {
                self.files.delete(&format!("{}-{size}.jpg", p.storage_key)).await?;
            }
        }
        self.bus.poke();
        Ok(Removal::Deleted)
    }

    /// How many more photos the caller may add to the listing: checked before
    /// an upload's body is read (403/404 for others, 422 when it is full).
    pub async fn photo_room(&self, id: Id, viewer: Viewer) -> Result<usize, Problem> {
        self.owned_row(id, viewer).await?;
        let existing = store::photos(&self.db, id).await.map_err(db_err)?.len();
        match self.settings.max_photos.saturating_sub(existing) {
            0 => Err(Problem::field("file", &format!("a listing has at most {} photos", self.settings.max_photos))),
            room => Ok(room),
        }
    }

    pub async fn add_photos(&self, id: Id, viewer: Viewer, uploads: Vec<Vec<u8>>) -> Result<Vec<Photo>, Problem> {
        // The route stops a larger body before reading it; a caller in
        // process is held to the same bound.
        if let Some(big) = uploads.iter().find(|f| f.len() > self.settings.photo_max_bytes) {
            let kib = self.settings.photo_max_bytes / 1024;
            return Err(Problem::field(
                "file",
                &format!("each file must be at most {kib} KiB ({} given)", big.len() / 1024),
            ));
        }
        let row = self.owned_row(id, viewer).await?;
        let existing = store::photos(&self.db, id).await.map_err(db_err)?;
        if existing.len() + uploads.len() > self.settings.max_photos {
            return Err(Problem::field("file", &format!("a listing has at most {} photos", self.settings.max_photos)));
        }
        // Decode everything first: one bad file rejects the whole request, storing nothing.
        let mut encoded = Vec::new();
        for (i, bytes) in uploads.into_iter().enumerate() {
            let sizes = hometrip_kernel::images::reencode_bounded(bytes, &PHOTO_SIZES, &format!("file[{i}]")).await?;
            encoded.push(sizes);
        }
        let first = existing.iter().map(|p| p.position + 1).max().unwrap_or(0);
        let mut rows = Vec::new();
        for (position, sizes) in (first..).zip(encoded) {
            let photo_id = Id::new();
            let key = format!("photos/{id}/{photo_id}");
            for (size, data) in sizes {
                self.files.put(&format!("{key}-{size}.jpg"), data).await?;
            }
            rows.push(PhotoRow {
                id: photo_id,
                listing_id: id,
                position,
                storage_key: key,
                caption: String::new(),
                created_at: Instant::now(),
            });
        }
        let all: Vec<PhotoRow> = existing.iter().chain(rows.iter()).cloned().collect();
        let listing = self.view(&row, &all);
        store::add_photos(&self.db, &rows, &self.changed(&listing, false)?).await.map_err(db_err)?;
        self.bus.poke();
        Ok(rows.iter().map(|p| self.photo_view(p)).collect())
    }

    /// Puts the photos in the given order; `ids` lists every photo once.
    pub async fn order_photos(&self, id: Id, viewer: Viewer, ids: &[Id]) -> Result<Listing, Problem> {
        let row = self.owned_row(id, viewer).await?;
        let photos = store::photos(&self.db, id).await.map_err(db_err)?;
        let mut given: Vec<Id> = ids.to_vec();
        given.sort();
        given.dedup();
        let mut have: Vec<Id> = photos.iter().map(|p| p.id).collect();
        have.sort();
        if given.len() != ids.len() || given != have {
            return Err(Problem::field("photo_ids", "list each of the listing's photos exactly once"));
        }
        let mut ordered = photos.clone();
        ordered.sort_by_key(|p| ids.iter().position(|i| *i == p.id));
        for (position, p) in (0i32..).zip(ordered.iter_mut()) {
            p.position = position;
        }
        let listing = self.view(&row, &ordered);
        store::order_photos(&self.db, id, ids, &self.changed(&listing, false)?).await.map_err(db_err)?;
        self.bus.poke();
        Ok(listing)
    }

    async fn owned_photo(
        &self,
        id: Id,
        viewer: Viewer,
        photo_id: Id,
    ) -> Result<(ListingRow, Vec<PhotoRow>, PhotoRow), Problem> {
        let row = self.owned_row(id, viewer).await?;
        let photos = store::photos(&self.db, id).await.map_err(db_err)?;
        let photo = photos.iter().find(|p| p.id == photo_id).cloned().ok_or_else(|| Problem::not_found("photo"))?;
        Ok((row, photos, photo))
    }

    pub async fn caption_photo(&self, id: Id, viewer: Viewer, photo_id: Id, caption: &str) -> Result<Photo, Problem> {
        let (row, mut photos, mut photo) = self.owned_photo(id, viewer, photo_id).await?;
        let caption = caption.trim();
        if caption.chars().count() > 200 || caption.chars().any(char::is_control) {
            return Err(Problem::field("caption", "must be at most 200 characters, without control characters"));
        }
        photo.caption = caption.to_owned();
        if let Some(p) = photos.iter_mut().find(|p| p.id == photo_id) {
            p.caption = photo.caption.clone();
        }
        let listing = self.view(&row, &photos);
        store::caption_photo(&self.db, photo_id, caption, &self.changed(&listing, false)?).await.map_err(db_err)?;
        self.bus.poke();
        Ok(self.photo_view(&photo))
    }

    pub async fn delete_photo(&self, id: Id, viewer: Viewer, photo_id: Id) -> Result<(), Problem> {
        let (row, photos, photo) = self.owned_photo(id, viewer, photo_id).await?;
        if photos.len() == 1 && ListingStatus::parse(&row.status) == ListingStatus::Published {
            return Err(Problem::new(ErrorCode::Conflict, "a published listing keeps at least one photo"));
        }
        let rest: Vec<PhotoRow> = photos.into_iter().filter(|p| p.id != photo_id).collect();
        let listing = self.view(&row, &rest);
        store::delete_photo(&self.db, photo_id, &self.changed(&listing, false)?).await.map_err(db_err)?;
        if !is_demo_photo(&photo.storage_key) {
            for size in PHOTO_SIZES {
                self.files.delete(&format!("{}-{size}.jpg", photo.storage_key)).await?;
            }
        }
        self.bus.poke();
        Ok(())
    }

    /// Moderation: an admin takes a listing down, or puts it back (as unlisted,
    /// for the host to publish again).
    pub async fn moderate(&self, id: Id, viewer: Viewer, suspend: bool) -> Result<Listing, Problem> {
        if !viewer.admin {
            return Err(Problem::forbidden("admin role required"));
        }
        let mut row = self.row(id).await?;
        let next = match (suspend, ListingStatus::parse(&row.status)) {
            (true, ListingStatus::Suspended) | (false, ListingStatus::Unlisted) => {
                return self.get(id, Some(viewer)).await
            }
            (true, _) => ListingStatus::Suspended,
            (false, ListingStatus::Suspended) => ListingStatus::Unlisted,
            (false, _) => return Err(Problem::new(ErrorCode::Conflict, "the listing is not suspended")),
        };
        row.status = next.as_str().to_owned();
        self.save(row).await
    }

    pub async fn calendar(
        &self,
        id: Id,
        viewer: Option<Viewer>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CalendarDay>, Problem> {
        domain::check_range(0, from, to).map_err(|e| Problem::field("to", &e.message))?;
        let row = self.visible_row(id, viewer).await?;
        self.days(&row, from, to).await
    }

    async fn days(&self, row: &ListingRow, from: NaiveDate, to: NaiveDate) -> Result<Vec<CalendarDay>, Problem> {
        let terms = Self::terms(row);
        let taken: BTreeMap<NaiveDate, String> =
            store::taken_nights(&self.db, row.id, from, to).await.map_err(db_err)?.into_iter().collect();
        let overrides: BTreeMap<NaiveDate, i64> =
            store::overrides(&self.db, row.id, from, to).await.map_err(db_err)?.into_iter().collect();
        let currency = terms.pricing.currency.clone().unwrap_or_else(|| "EUR".to_owned());
        Ok(from
            .iter_days()
            .take_while(|d| *d < to)
            .map(|date| CalendarDay {
                date,
                available: !taken.contains_key(&date),
                price: Money::new(domain::night_price(&terms.pricing, date, &overrides), &currency),
                reason: taken.get(&date).cloned(),
            })
            .collect())
    }

    pub async fn edit_calendar(
        &self,
        id: Id,
        viewer: Viewer,
        ranges: &[CalendarRangeInput],
    ) -> Result<Vec<CalendarDay>, Problem> {
        if ranges.is_empty() || ranges.len() > 100 {
            return Err(Problem::field("ranges", "give between 1 and 100 ranges"));
        }
        let row = self.owned_row(id, viewer).await?;
        let currency = Self::terms(&row).pricing.currency;
        let mut errors = Vec::new();
        let mut edits = Vec::new();
        for (i, r) in ranges.iter().enumerate() {
            if let Err(e) = domain::check_range(i, r.from, r.to) {
                errors.push(e);
                continue;
            }
            let price = match &r.price {
                None => None,
                Some(m) if currency.as_deref() != Some(m.currency.as_str()) => {
                    errors.push(FieldError::new(
                        format!("ranges[{i}].price"),
                        "must be in the listing's currency (set its nightly price first)",
                    ));
                    continue;
                }
                Some(m) if m.amount < 1 || m.amount > domain::MAX_PRICE => {
                    errors.push(FieldError::new(format!("ranges[{i}].price"), "amount out of range"));
                    continue;
                }
                Some(m) => Some(m.amount),
            };
            if r.available.is_none() && price.is_none() {
                errors.push(FieldError::new(format!("ranges[{i}]"), "set available, price, or both"));
                continue;
            }
            edits.push(RangeEdit { from: r.from, to: r.to, available: r.available, price });
        }
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
        let from = edits.iter().map(|e| e.from).min().unwrap_or_else(today);
        let to = edits.iter().map(|e| e.to).max().unwrap_or_else(today);
        let event =
            Envelope::new(MODULE, CALENDAR_CHANGED, &CalendarChanged { listing_id: id, from, to }).map_err(db_err)?;
        match store::edit_calendar(&self.db, id, &edits, &event).await {
            Ok(()) => {}
            Err(CalendarError::Booked(night)) => {
                return Err(Problem::new(
                    ErrorCode::Conflict,
                    format!("{night} is booked: it cannot be unblocked or repriced"),
                )
                .with("night", night.to_string()))
            }
            Err(CalendarError::Db(e)) => return Err(db_err(e)),
        }
        self.bus.poke();
        // The days the edit touched (bounded: at most the widest range a read allows).
        let to = to.min(from + Duration::days(domain::MAX_CALENDAR_DAYS));
        self.days(&row, from, to).await
    }

    pub async fn quote_for(
        &self,
        id: Id,
        viewer: Option<Viewer>,
        check_in: NaiveDate,
        check_out: NaiveDate,
        guests: u32,
        rate: Rate,
    ) -> Result<Quote, Problem> {
        // Far-off years would overflow the date arithmetic below.
        for (field, date) in [("check_in", check_in), ("check_out", check_out)] {
            if !(2000..=2999).contains(&date.year()) {
                return Err(Problem::field(field, "must be a date between the years 2000 and 2999"));
            }
        }
        if domain::nights_between(check_in, check_out) > i64::from(domain::MAX_STAY_NIGHTS) {
            return Err(Problem::field("check_out", &format!("a stay is at most {} nights", domain::MAX_STAY_NIGHTS)));
        }
        // The row and the calendar in one read, the calendar widened by the
        // longest preparation time (the listing's own is in the row).
        let widest = Duration::days(i64::from(domain::MAX_PREPARATION_DAYS));
        let inputs = store::quote_inputs(&self.db, id, (check_in - widest, check_out + widest), (check_in, check_out))
            .await
            .map_err(db_err)?
            .ok_or_else(|| Problem::not_found("listing"))?;
        let row = Self::visible(inputs.row, viewer)?;
        if Self::status_of(&row) != ListingStatus::Published {
            return Err(Problem::new(ErrorCode::Conflict, "the listing is not open for booking"));
        }
        let terms = Self::terms(&row);
        let prep = Duration::days(i64::from(terms.rules.preparation_days));
        let (around_from, around_to) = (check_in - prep, check_out + prep);
        let taken = inputs.taken.into_iter().filter(|(night, _)| *night >= around_from && *night < around_to);
        let overrides = inputs.overrides;
        let taken: BTreeMap<NaiveDate, Taken> = taken.map(|(d, s)| (d, Taken::parse(&s))).collect();
        // "Today" where the listing is: a stay may start on its local date.
        let today = Utc::now().with_timezone(&terms.rules.time_zone).date_naive();
        match domain::check_stay(&terms.rules, terms.details.max_guests, check_in, check_out, guests, today, &taken) {
            Ok(_) => {}
            Err(StayError::Invalid(e)) => return Err(Problem::validation(vec![e])),
            Err(StayError::Unavailable(night)) => {
                return Err(Problem::new(ErrorCode::Conflict, format!("the night of {night} is not available"))
                    .with("night", night.to_string()))
            }
        }
        let overrides: BTreeMap<NaiveDate, i64> = overrides.into_iter().collect();
        let b = domain::price_stay(&terms.pricing, self.fees(rate), check_in, check_out, guests, today, &overrides);
        let currency = terms.pricing.currency.unwrap_or_else(|| "EUR".to_owned());
        let m = |amount| Money::new(amount, &currency);
        Ok(Quote {
            listing_id: id,
            check_in,
            check_out,
            guests,
            rate,
            nights: b.nights,
            nightly_subtotal: m(b.nightly_subtotal),
            extra_guest_fee: m(b.extra_guest_fee),
            discounts: m(b.discounts),
            cleaning_fee: m(b.cleaning_fee),
            service_fee: m(b.service_fee),
            taxes: m(b.taxes),
            total: m(b.total),
            stay: StayTerms {
                host_id: row.host_id,
                instant_book: terms.details.instant_book,
                cancellation_policy: terms.details.cancellation_policy.clone(),
                time_zone: terms.rules.time_zone.name().to_owned(),
                check_in_time: terms.rules.check_in_time.format("%H:%M").to_string(),
                check_out_time: terms.rules.check_out_time.format("%H:%M").to_string(),
                preparation_days: terms.rules.preparation_days,
                max_guests: terms.details.max_guests,
            },
        })
    }

    pub fn amenities(locale: &str) -> Vec<Amenity> {
        domain::AMENITIES
            .iter()
            .map(|(key, en, fr)| Amenity {
                key: (*key).to_owned(),
                label: if locale == "fr" { *fr } else { *en }.to_owned(),
            })
            .collect()
    }
}

impl ListingService {
    /// Rows as listings, with their photos read in one query.
    async fn views(&self, rows: &[ListingRow]) -> Result<Vec<Listing>, Problem> {
        let ids: Vec<Id> = rows.iter().map(|r| r.id).collect();
        let mut photos: std::collections::HashMap<Id, Vec<PhotoRow>> = std::collections::HashMap::new();
        for p in store::photos_of(&self.db, &ids).await.map_err(db_err)? {
            photos.entry(p.listing_id).or_default().push(p);
        }
        Ok(rows.iter().map(|row| self.view(row, photos.get(&row.id).map(Vec::as_slice).unwrap_or(&[]))).collect())
    }
}

#[async_trait]
impl Listings for ListingService {
    async fn listing(&self, id: Id) -> Result<Option<Listing>, Problem> {
        let Some(row) = store::get(&self.db, id).await.map_err(db_err)? else { return Ok(None) };
        let photos = store::photos(&self.db, id).await.map_err(db_err)?;
        Ok(Some(self.view(&row, &photos)))
    }

    async fn quote(
        &self,
        id: Id,
        check_in: NaiveDate,
        check_out: NaiveDate,
        guests: u32,
        rate: Rate,
    ) -> Result<Quote, Problem> {
        self.quote_for(id, None, check_in, check_out, guests, rate).await
    }

    async fn taken_nights(&self, id: Id, from: NaiveDate, to: NaiveDate) -> Result<Vec<NaiveDate>, Problem> {
        if domain::nights_between(from, to) > domain::MAX_CALENDAR_DAYS {
            return Err(Problem::field("to", &format!("at most {} days", domain::MAX_CALENDAR_DAYS)));
        }
        Ok(store::taken_nights(&self.db, id, from, to).await.map_err(db_err)?.into_iter().map(|(d, _)| d).collect())
    }

    async fn blocked_nights(&self, id: Id, from: NaiveDate, to: NaiveDate) -> Result<Vec<NaiveDate>, Problem> {
        if domain::nights_between(from, to) > domain::MAX_CALENDAR_DAYS {
            return Err(Problem::field("to", &format!("at most {} days", domain::MAX_CALENDAR_DAYS)));
        }
        let taken = store::taken_nights(&self.db, id, from, to).await.map_err(db_err)?;
        Ok(taken.into_iter().filter(|(_, status)| Taken::parse(status) != Taken::Booked).map(|(d, _)| d).collect())
    }

    async fn published(&self, after: Option<Id>, limit: u32) -> Result<Vec<Listing>, Problem> {
        let rows = store::published_page(&self.db, after, i64::from(limit.clamp(1, 1000))).await.map_err(db_err)?;
        self.views(&rows).await
    }

    async fn listings_of(&self, ids: &[Id]) -> Result<Vec<Listing>, Problem> {
        if ids.len() > 1000 {
            return Err(Problem::field("ids", "at most 1000 ids"));
        }
        let rows = store::rows_of(&self.db, ids).await.map_err(db_err)?;
        self.views(&rows).await
    }

    async fn taken_nights_of(
        &self,
        ids: &[Id],
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(Id, NaiveDate)>, Problem> {
        if ids.len() > 1000 || domain::nights_between(from, to) > domain::MAX_CALENDAR_DAYS {
            return Err(Problem::field("ids", "at most 1000 listings and 731 days"));
        }
        store::taken_nights_of(&self.db, ids, from, to).await.map_err(db_err)
    }
}

// ---- demo data ----------------------------------------------------------------

/// Photos shared by demo listings live under this prefix and are never deleted
/// with a listing.
const DEMO_PHOTOS: &str = "photos/demo/";

fn is_demo_photo(key: &str) -> bool {
    key.starts_with(DEMO_PHOTOS)
}

impl ListingService {
    /// Fills the store with `count` published demo listings (see `demo`); returns
    /// the first listing's id.
    pub async fn seed_demo(&self, count: usize, seed: u64) -> Result<Option<Id>, Problem> {
        const PALETTE: usize = 12;
        // A handful of generated photos, shared by every demo listing.
        for k in 0..PALETTE {
            let key = format!("{DEMO_PHOTOS}{k}");
            let bytes = tokio::task::spawn_blocking(move || {
                let hue = (k * 255 / PALETTE) as u8;
                let img = image::RgbImage::from_fn(1200, 800, |x, y| {
                    image::Rgb([hue.wrapping_add((x / 5) as u8), (y / 4) as u8, 255u8.wrapping_sub(hue)])
                });
                let mut buf = std::io::Cursor::new(Vec::new());
                image::DynamicImage::ImageRgb8(img)
                    .write_to(&mut buf, image::ImageFormat::Png)
                    .map(|_| buf.into_inner())
            })
            .await
            .map_err(Problem::internal)?
            .map_err(Problem::internal)?;
            let sizes = hometrip_kernel::images::reencode(&bytes, &PHOTO_SIZES).map_err(|e| e.into_problem("photo"))?;
            for (size, data) in sizes {
                self.files.put(&format!("{key}-{size}.jpg"), data).await?;
            }
        }
        let hosts: Vec<Id> = (0..(count / 20).clamp(1, 5_000)).map(|_| Id::new()).collect();
        let mut generator = crate::demo::Generator::new(seed);
        let today = today();
        let mut first = None;
        let mut batch = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..count {
            let demo = generator.listing(i, today);
            let row = Self::new_row(hosts[i % hosts.len()], ListingStatus::Published, &demo.terms)?;
            let now = row.created_at;
            first.get_or_insert(row.id);
            for p in 0..demo.photos {
                batch.1.push(PhotoRow {
                    id: Id::new(),
                    listing_id: row.id,
                    position: p as i32,
                    storage_key: format!("{DEMO_PHOTOS}{}", (i + p * 5) % PALETTE),
                    caption: String::new(),
                    created_at: now,
                });
            }
            for (start, nights) in &demo.booked {
                batch.2.extend((0..*nights).map(|d| (row.id, *start + Duration::days(d))));
            }
            batch.0.push(row);
            if batch.0.len() == 500 || i + 1 == count {
                store::insert_demo_batch(&self.db, &batch.0, &batch.1, &batch.2).await.map_err(db_err)?;
                batch = (Vec::new(), Vec::new(), Vec::new());
            }
        }
        Ok(first)
    }
}
