//! Booked nights in the calendar, from the booking module's events: a
//! projection (the listing module cannot read booking's tables), applied a run
//! of events at a time with one `listing.calendar_changed` per listing.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{Duration, NaiveDate};
use hometrip_kernel::events::Envelope;
use hometrip_kernel::Id;
use serde::Deserialize;

use crate::api::*;
use crate::service::ListingService;
use crate::store;

/// The part of a booking event the calendar needs.
#[derive(Debug, Deserialize)]
struct BookingEventData {
    booking: BookedStay,
}

#[derive(Debug, Deserialize)]
struct BookedStay {
    id: Id,
    listing_id: Id,
    check_in: NaiveDate,
    check_out: NaiveDate,
}

impl ListingService {
    /// Keeps booked nights in the calendar (availability, iCal export, search)
    /// from the booking module's events.
    pub async fn subscribe(self: &Arc<Self>) {
        let handler: Arc<dyn hometrip_kernel::events::EventHandler> =
            Arc::clone(self) as Arc<dyn hometrip_kernel::events::EventHandler>;
        let mut types = vec![booking_events::CREATED, booking_events::CANCELLED_BY_HOST];
        types.extend_from_slice(booking_events::RELEASED);
        self.bus.subscribe("listing.booked_nights", &types, handler).await;
        crate::guest_access::GuestAccess::new(self.db.clone()).subscribe(&self.bus).await;
        crate::ratings::RatingProjection::new(Arc::clone(self)).subscribe(&self.bus).await;
        crate::hosts::HostProjection::new(Arc::clone(self)).subscribe(&self.bus).await;
    }
}

impl ListingService {
    /// What a booking event does to the calendar (`None` for other events).
    fn booked_change(event: &Envelope) -> Result<Option<store::BookedChange>, String> {
        let action = match event.event_type.as_str() {
            booking_events::CREATED => store::BookedNights::Hold,
            booking_events::CANCELLED_BY_HOST => store::BookedNights::Block,
            t if booking_events::RELEASED.contains(&t) => store::BookedNights::Release,
            _ => return Ok(None),
        };
        let stay = event.decode::<BookingEventData>()?.booking;
        Ok(Some(store::BookedChange {
            listing_id: stay.listing_id,
            booking_id: stay.id,
            nights: stay.check_in.iter_days().take_while(|d| *d < stay.check_out).collect(),
            action,
        }))
    }
}

#[async_trait]
impl hometrip_kernel::events::EventHandler for ListingService {
    async fn handle(&self, event: &Envelope) -> Result<(), String> {
        self.handle_batch(&[event]).await
    }

    fn batches(&self) -> bool {
        true
    }

    /// A run of booking events in one transaction, with one
    /// `listing.calendar_changed` per listing covering all its changed nights.
    async fn handle_batch(&self, events: &[&Envelope]) -> Result<(), String> {
        let mut changes = Vec::with_capacity(events.len());
        let mut spans: BTreeMap<Id, (NaiveDate, NaiveDate)> = BTreeMap::new();
        for event in events {
            let Some(change) = Self::booked_change(event)? else { continue };
            if let (Some(first), Some(last)) = (change.nights.first(), change.nights.last()) {
                let (from, to) = (*first, *last + Duration::days(1));
                let span = spans.entry(change.listing_id).or_insert((from, to));
                *span = (span.0.min(from), span.1.max(to));
            }
            changes.push(change);
        }
        if changes.is_empty() {
            return Ok(());
        }
        let mut changed = Vec::with_capacity(spans.len());
        for (listing_id, (from, to)) in spans {
            let event = Envelope::new(MODULE, CALENDAR_CHANGED, &CalendarChanged { listing_id, from, to })
                .map_err(|e| e.to_string())?;
            changed.push((listing_id, event));
        }
        store::project_bookings(&self.db, &changes, &changed).await.map_err(|e| e.to_string())?;
        self.bus.poke();
        Ok(())
    }
}
