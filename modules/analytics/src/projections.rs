//! The domain events of the bus, rolled up as they arrive: sign-ups,
//! listings and their blocked nights, bookings and their outcomes, payments
//! and refunds (what the ledger owes the host, spread over the stay's
//! nights), reviews. Each event's change commits once (`store::apply`).

use chrono::NaiveDate;
use hometrip_auth::api::ACCOUNT_REGISTERED;
use hometrip_booking::api::{
    Booking, BookingEvent, BOOKING_CANCELLED_BY_GUEST, BOOKING_CANCELLED_BY_HOST, BOOKING_COMPLETED, BOOKING_CONFIRMED,
    BOOKING_CREATED,
};
use hometrip_kernel::events::Envelope;
use hometrip_kernel::time::Instant;
use hometrip_kernel::Problem;
use hometrip_listing::api::{CalendarChanged, ListingChanged, CALENDAR_CHANGED, LISTING_CHANGED};
use hometrip_payment::api::{PaymentEvent, PaymentStatus, PAYMENT_REFUNDED, PAYMENT_SUCCEEDED};
use hometrip_review::api::{ReviewPublished, REVIEW_PUBLISHED};

use crate::domain;
use crate::service::{db_err, AnalyticsService};
use crate::store::{self, BookingRow, Change, ListingDay, ListingRow, PlatformDelta};

/// The events analytics rolls up.
pub const SUBSCRIBED: &[&str] = &[
    ACCOUNT_REGISTERED,
    LISTING_CHANGED,
    CALENDAR_CHANGED,
    BOOKING_CREATED,
    BOOKING_CONFIRMED,
    BOOKING_CANCELLED_BY_GUEST,
    BOOKING_CANCELLED_BY_HOST,
    BOOKING_COMPLETED,
    PAYMENT_SUCCEEDED,
    PAYMENT_REFUNDED,
    REVIEW_PUBLISHED,
];

fn day_of(at: Instant) -> NaiveDate {
    at.0.date_naive()
}

/// A listing day with only its keys set.
fn listing_day(b: &BookingRow, day: NaiveDate) -> ListingDay {
    ListingDay { listing_id: b.listing_id, day, host_id: b.host_id, ..ListingDay::default() }
}

/// The accommodation of a stay: its nights after discounts, with extra-guest fees.
fn accommodation(b: &Booking) -> i64 {
    b.price.nightly_subtotal.amount + b.price.extra_guest_fee.amount - b.price.discounts.amount
}

fn booking_row(b: &Booking) -> BookingRow {
    BookingRow {
        booking_id: b.id,
        listing_id: b.listing_id,
        host_id: b.host_id,
        check_in: b.check_in,
        check_out: b.check_out,
        currency: b.price.total.currency.clone(),
        accommodation: accommodation(b),
        created_at: b.created_at,
        confirmed_at: None,
        cancelled_at: None,
        completed_at: None,
        reviewed_at: None,
        host_earnings: 0,
        platform_revenue: 0,
        gmv: 0,
    }
}

/// Each night of the stay gains `sign` nights and `sign ×` its share of the
/// accommodation.
fn stay_nights(b: &BookingRow, sign: i64) -> Vec<ListingDay> {
    let nights = domain::nights(b.check_in, b.check_out);
    let shares = domain::per_night(b.accommodation, nights.len());
    nights
        .into_iter()
        .zip(shares)
        .map(|(night, share)| ListingDay { nights_booked: sign, accommodation: sign * share, ..listing_day(b, night) })
        .collect()
}

impl AnalyticsService {
    /// Rolls up one domain event.
    pub(crate) async fn project(&self, event: &Envelope) -> Result<(), Problem> {
        let at = event.occurred_at;
        let day = day_of(at);
        let mut change = Change::default();
        match event.event_type.as_str() {
            ACCOUNT_REGISTERED => change.platform.push(PlatformDelta::count(day, "new_users", 1)),
            LISTING_CHANGED => {
                let e: ListingChanged = event.decode().map_err(Problem::internal)?;
                let l = e.listing;
                change.listing = Some(ListingRow {
                    listing_id: l.id,
                    host_id: l.host_id,
                    title: l.title.clone(),
                    currency: l.nightly_price.map(|p| p.currency).unwrap_or_else(|| "EUR".to_owned()),
                    created_on: day_of(l.created_at),
                    deleted_on: e.deleted.then_some(day),
                });
            }
            CALENDAR_CHANGED => {
                let e: CalendarChanged = event.decode().map_err(Problem::internal)?;
                return self.calendar_changed(e).await;
            }
            BOOKING_CREATED => {
                let b = event.decode::<BookingEvent>().map_err(Problem::internal)?.booking;
                if store::booking(&self.db, b.id).await.map_err(db_err)?.is_none() {
                    change.booking = Some(booking_row(&b));
                }
                change.platform.push(PlatformDelta::count(day, "bookings_started", 1));
            }
            BOOKING_CONFIRMED => {
                let b = event.decode::<BookingEvent>().map_err(Problem::internal)?.booking;
                let mut row = self.row_of(&b).await?;
                if row.confirmed_at.is_some() {
                    return Ok(());
                }
                row.confirmed_at = Some(at);
                change.days = stay_nights(&row, 1);
                change.days.push(ListingDay {
                    bookings: 1,
                    lead_time_days: (row.check_in - day).num_days().max(0),
                    stay_nights: (row.check_out - row.check_in).num_days(),
                    ..listing_day(&row, day)
                });
                change.platform.push(PlatformDelta::count(day, "bookings_confirmed", 1));
                change.booking = Some(row);
            }
            BOOKING_CANCELLED_BY_GUEST | BOOKING_CANCELLED_BY_HOST => {
                let b = event.decode::<BookingEvent>().map_err(Problem::internal)?.booking;
                let mut row = self.row_of(&b).await?;
                if row.cancelled_at.is_some() {
                    return Ok(());
                }
                row.cancelled_at = Some(at);
                // Only a confirmed stay held nights; the money moves with the refund.
                if row.confirmed_at.is_some() {
                    change.days = stay_nights(&row, -1);
                    change.days.push(ListingDay { cancellations: 1, ..listing_day(&row, day) });
                    change.platform.push(PlatformDelta::count(day, "cancellations", 1));
                }
                change.booking = Some(row);
            }
            BOOKING_COMPLETED => {
                let b = event.decode::<BookingEvent>().map_err(Problem::internal)?.booking;
                let mut row = self.row_of(&b).await?;
                if row.completed_at.is_some() {
                    return Ok(());
                }
                row.completed_at = Some(at);
                change.platform.push(PlatformDelta::count(day, "bookings_completed", 1));
                change.booking = Some(row);
            }
            PAYMENT_SUCCEEDED | PAYMENT_REFUNDED => {
                let p = event.decode::<PaymentEvent>().map_err(Problem::internal)?.payment;
                // The booking's own events come from another process: until
                // its row is here, the bus retries this one.
                let Some(mut row) = store::booking(&self.db, p.booking_id).await.map_err(db_err)? else {
                    return Err(Problem::new(hometrip_kernel::ErrorCode::Conflict, "booking not rolled up yet"));
                };
                let captured = p.status == PaymentStatus::Succeeded;
                let gmv = if captured { p.amount.amount - p.refunded.amount } else { 0 };
                let (host, platform) = (p.host_earnings.amount, p.platform_revenue.amount);
                let (d_host, d_platform, d_gmv) =
                    (host - row.host_earnings, platform - row.platform_revenue, gmv - row.gmv);
                if (d_host, d_platform, d_gmv) == (0, 0, 0) {
                    return Ok(());
                }
                let nights = domain::nights(row.check_in, row.check_out);
                let shares = domain::per_night(d_host, nights.len());
                change.days = nights
                    .into_iter()
                    .zip(shares)
                    .map(|(night, revenue)| ListingDay { revenue, ..listing_day(&row, night) })
                    .collect();
                change.platform.push(PlatformDelta::money(day, "gmv", &row.currency, d_gmv));
                change.platform.push(PlatformDelta::money(day, "net_revenue", &row.currency, d_platform));
                (row.host_earnings, row.platform_revenue, row.gmv) = (host, platform, gmv);
                change.booking = Some(row);
            }
            REVIEW_PUBLISHED => {
                let r = event.decode::<ReviewPublished>().map_err(Problem::internal)?.review;
                if r.author_role != "guest" {
                    return Ok(());
                }
                change.platform.push(PlatformDelta::count(day, "reviews", 1));
                if let Some(mut row) = store::booking(&self.db, r.booking_id).await.map_err(db_err)? {
                    if row.reviewed_at.is_none() {
                        row.reviewed_at = Some(at);
                        change.booking = Some(row);
                    }
                }
            }
            _ => return Ok(()),
        }
        store::apply(&self.db, event.id, &change).await.map_err(db_err)?;
        Ok(())
    }

    /// The row of a booking, made from its event when its creation has not
    /// been rolled up (events of one booking may arrive out of order).
    async fn row_of(&self, b: &Booking) -> Result<BookingRow, Problem> {
        Ok(store::booking(&self.db, b.id).await.map_err(db_err)?.unwrap_or_else(|| booking_row(b)))
    }

    /// The host's blocked nights in the changed range, as the listing
    /// module has them now (a replay reads the present, which is what counts).
    async fn calendar_changed(&self, e: CalendarChanged) -> Result<(), Problem> {
        // Its days are its host's: until the listing itself is rolled up, the bus retries.
        let Some(listing) = store::listing(&self.db, e.listing_id).await.map_err(db_err)? else {
            return Err(Problem::new(hometrip_kernel::ErrorCode::Conflict, "listing not rolled up yet"));
        };
        let blocked = self.listings.blocked_nights(e.listing_id, e.from, e.to).await?;
        store::set_blocked(&self.db, &listing, e.from, e.to, &blocked).await.map_err(db_err)
    }
}
