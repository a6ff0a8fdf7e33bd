//! Which guests see a listing's street address and exact location (besides
//! its host and admins): those with a confirmed booking. The listing module
//! cannot ask the booking module (booking depends on listing), so it keeps a
//! projection of booking's events: a row per confirmed booking, from
//! `booking.confirmed` until the booking is cancelled. A completed stay keeps
//! its row: the guest has been there, and the trip's history still shows
//! where it was.

use std::sync::Arc;

use async_trait::async_trait;
use hometrip_kernel::db::prelude::*;
use hometrip_kernel::db::{Db, DbError};
use hometrip_kernel::events::{Envelope, EventBus, EventHandler};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{run, transaction, Id};
use serde::Deserialize;

use crate::api::booking_events;
use crate::store::existing_listings;

pub mod schema {
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        listing_guest_access (booking_id) {
            booking_id -> DbUuid,
            listing_id -> DbUuid,
            guest_id -> DbUuid,
            created_at -> DbInstant,
        }
    }
}
use schema::listing_guest_access;

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = listing_guest_access)]
struct AccessRow {
    booking_id: Id,
    listing_id: Id,
    guest_id: Id,
    created_at: Instant,
}

/// What a booking event does to the guest's access.
#[derive(Debug, Clone)]
enum AccessChange {
    Grant(AccessRow),
    Revoke(Id),
}

/// Whether `guest` holds a confirmed (or completed) booking of `listing`.
pub async fn has_access(db: &Db, listing: Id, guest: Id) -> Result<bool, DbError> {
    let found = run!(db, |conn| {
        Ok::<_, DbError>(
            listing_guest_access::table
                .filter(listing_guest_access::listing_id.eq(listing))
                .filter(listing_guest_access::guest_id.eq(guest))
                .count()
                .get_result::<i64>(conn)
                .await?,
        )
    })?;
    Ok(found > 0)
}

/// Applies changes in order, in one transaction; idempotent (a grant seen
/// twice is one row, a revoke of nothing does nothing). Grants for listings
/// that no longer exist are skipped.
async fn apply(db: &Db, changes: &[AccessChange]) -> Result<(), DbError> {
    let mut ids: Vec<Id> = changes
        .iter()
        .filter_map(|c| match c {
            AccessChange::Grant(row) => Some(row.listing_id),
            AccessChange::Revoke(_) => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    transaction!(db, |conn| {
        let existing = existing_listings!(conn, &ids);
        for change in changes {
            match change {
                AccessChange::Grant(row) if existing.contains(&row.listing_id) => {
                    diesel::insert_into(listing_guest_access::table)
                        .values(row)
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                AccessChange::Grant(_) => {}
                AccessChange::Revoke(booking) => {
                    diesel::delete(listing_guest_access::table.find(*booking)).execute(conn).await?;
                }
            }
        }
        Ok::<_, DbError>(())
    })
}

/// The part of a booking event the projection needs.
#[derive(Debug, Deserialize)]
struct BookingEventData {
    booking: BookingParties,
}

#[derive(Debug, Deserialize)]
struct BookingParties {
    id: Id,
    listing_id: Id,
    guest_id: Id,
}

/// The projection's event subscriber (`listing.guest_access`).
pub struct GuestAccess {
    db: Db,
}

impl GuestAccess {
    pub fn new(db: Db) -> Arc<Self> {
        Arc::new(GuestAccess { db })
    }

    pub async fn subscribe(self: &Arc<Self>, bus: &EventBus) {
        let handler: Arc<dyn EventHandler> = Arc::clone(self) as Arc<dyn EventHandler>;
        let mut types = vec![booking_events::CONFIRMED];
        types.extend_from_slice(booking_events::ACCESS_ENDED);
        bus.subscribe("listing.guest_access", &types, handler).await;
    }

    fn change(event: &Envelope) -> Result<Option<AccessChange>, String> {
        let grant = match event.event_type.as_str() {
            booking_events::CONFIRMED => true,
            t if booking_events::ACCESS_ENDED.contains(&t) => false,
            _ => return Ok(None),
        };
        let b = event.decode::<BookingEventData>()?.booking;
        Ok(Some(if grant {
            AccessChange::Grant(AccessRow {
                booking_id: b.id,
                listing_id: b.listing_id,
                guest_id: b.guest_id,
                created_at: Instant::now(),
            })
        } else {
            AccessChange::Revoke(b.id)
        }))
    }
}

#[async_trait]
impl EventHandler for GuestAccess {
    async fn handle(&self, event: &Envelope) -> Result<(), String> {
        self.handle_batch(&[event]).await
    }

    fn batches(&self) -> bool {
        true
    }

    /// A run of booking events in one transaction.
    async fn handle_batch(&self, events: &[&Envelope]) -> Result<(), String> {
        let mut changes = Vec::with_capacity(events.len());
        for event in events {
            changes.extend(Self::change(event)?);
        }
        if changes.is_empty() {
            return Ok(());
        }
        apply(&self.db, &changes).await.map_err(|e| e.to_string())
    }
}

impl crate::service::ListingService {
    /// Whether `viewer` sees `row`'s street address and exact location: its
    /// host, admins, and guests with a confirmed booking of it.
    pub(crate) async fn sees_exact_location(
        &self,
        row: &crate::store::ListingRow,
        viewer: Option<crate::service::Viewer>,
    ) -> Result<bool, hometrip_kernel::Problem> {
        let Some(v) = viewer else { return Ok(false) };
        if v.admin || v.id == row.host_id {
            return Ok(true);
        }
        has_access(&self.db, row.id, v.id).await.map_err(hometrip_kernel::Problem::from)
    }
}
