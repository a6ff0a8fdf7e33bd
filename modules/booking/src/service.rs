//! The in-process booking service: quotes with refund timelines, reservations,
//! payment, the host's answer, cancellations, and the durable jobs that move
//! bookings on (hold expiry, unanswered requests, check-out, refunds,
//! reconciliation).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use hometrip_kernel::db::{Db, DbError};
use hometrip_kernel::events::{Envelope, EventBus, EventHandler};
use hometrip_kernel::jobs::{Job, JobHandler, NewJob, Scheduler};
use hometrip_kernel::money::Money;
use hometrip_kernel::time::{Clock, Instant};
use hometrip_kernel::{ErrorCode, FieldError, Id, Problem};
use hometrip_listing::api::{Listings, Quote, Rate, StayTerms};
use hometrip_payment::api::{
    Breakdown, CaptureMethod, ChargeRequest, Payment, PaymentEvent, PaymentStatus, Payments, RefundRequest,
    PAYMENT_AUTHORIZED, PAYMENT_SUCCEEDED,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::*;
use crate::domain::{self, Action, Policy, StayTimes};
use crate::store::{self, BookingRow, IdempotencyKey, ReserveError, Transition};

pub const EXPIRE_HOLD: &str = "booking.expire_hold";
pub const RESPOND_BY: &str = "booking.respond_by";
pub const COMPLETE: &str = "booking.complete";
pub const SETTLE: &str = "booking.settle";
pub const RECONCILE: &str = "booking.reconcile";

/// Who acts on a booking.
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    pub id: Id,
    pub admin: bool,
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ReconcileReport {
    /// Bookings moved on from what their payment showed (a crash mid-flow).
    pub repaired: Vec<String>,
    /// Inconsistencies left for a human.
    pub anomalies: Vec<String>,
    /// Nights freed that a finished booking still held.
    pub stray_nights_freed: usize,
}

/// A job's payload: the booking it is about.
#[derive(Debug, Serialize, Deserialize)]
struct BookingJob {
    booking_id: Id,
}

/// Money owed back after a cancellation, settled by a durable job.
#[derive(Debug, Serialize, Deserialize)]
struct Settlement {
    booking_id: Id,
    refund: Breakdown,
    penalty: Option<Money>,
}

pub struct BookingService {
    db: Db,
    bus: Arc<EventBus>,
    jobs: Arc<Scheduler>,
    clock: Clock,
    listings: Arc<dyn Listings>,
    pub(crate) payments: Arc<dyn Payments>,
    settings: BookingSettings,
}

fn db_err(e: DbError) -> Problem {
    Problem::from(e)
}

fn instant(t: DateTime<Utc>) -> Instant {
    Instant::from(t)
}

fn conflict(detail: impl Into<String>) -> Problem {
    Problem::new(ErrorCode::Conflict, detail)
}

/// 409 naming the nights other bookings hold.
fn taken(nights: Vec<String>) -> Problem {
    let first = nights.first().cloned().unwrap_or_default();
    conflict(format!("the stay is not available: the night of {first} is taken")).with("conflicting_nights", nights)
}

impl BookingService {
    pub fn new(
        db: Db,
        bus: Arc<EventBus>,
        jobs: Arc<Scheduler>,
        listings: Arc<dyn Listings>,
        payments: Arc<dyn Payments>,
        settings: BookingSettings,
    ) -> Arc<Self> {
        let clock = jobs.clock().clone();
        Arc::new(BookingService { db, bus, jobs, clock, listings, payments, settings })
    }

    /// Registers the booking jobs and the payment events it follows.
    pub async fn subscribe(self: &Arc<Self>) -> Result<(), Problem> {
        let handler = Arc::clone(self) as Arc<dyn JobHandler>;
        for kind in [EXPIRE_HOLD, RESPOND_BY, COMPLETE, SETTLE] {
            self.jobs.register(kind, Arc::clone(&handler)).await;
        }
        self.jobs
            .every(RECONCILE, Duration::seconds(self.settings.reconcile_interval_secs.max(10)), handler)
            .await
            .map_err(db_err)?;
        let events = Arc::clone(self) as Arc<dyn EventHandler>;
        self.bus.subscribe("booking.payments", &[PAYMENT_SUCCEEDED, PAYMENT_AUTHORIZED], events).await;
        Ok(())
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now().0
    }

    // ---- Views ------------------------------------------------------------------

    fn charge_of(quote: &Quote) -> Breakdown {
        Breakdown {
            accommodation: quote.nightly_subtotal.amount + quote.extra_guest_fee.amount - quote.discounts.amount,
            cleaning_fee: quote.cleaning_fee.amount,
            service_fee: quote.service_fee.amount,
            taxes: quote.taxes.amount,
        }
    }

    fn times(row: &BookingRow, quote: &Quote) -> StayTimes {
        StayTimes {
            booked_at: row.created_at.0,
            confirmed_at: row.confirmed_at.map(|c| c.0),
            check_in_at: row.check_in_at.0,
            nights: quote.nights,
        }
    }

    fn timeline(&self, policy: &str, rate: Rate, quote: &Quote, t: &StayTimes) -> Vec<RefundStep> {
        let charge = Self::charge_of(quote);
        domain::refund_timeline(Policy::parse(policy), rate, &charge, t, self.now())
            .into_iter()
            .map(|s| RefundStep {
                from: instant(s.from),
                until: s.until.map(instant),
                refund: Money::new(s.refund, &quote.total.currency),
                kind: if s.refund == charge.total() {
                    "full"
                } else if s.refund == 0 {
                    "none"
                } else {
                    "partial"
                }
                .to_owned(),
            })
            .collect()
    }

    fn quote_of(row: &BookingRow) -> Result<Quote, Problem> {
        serde_json::from_str(&row.price).map_err(Problem::internal)
    }

    pub fn view(&self, row: &BookingRow) -> Result<Booking, Problem> {
        let quote = Self::quote_of(row)?;
        let status = BookingStatus::parse(&row.status).ok_or_else(|| Problem::internal("unknown booking status"))?;
        let rate = Rate::parse(&row.rate).unwrap_or_default();
        let t = Self::times(row, &quote);
        let open =
            matches!(status, BookingStatus::PendingPayment | BookingStatus::PendingHost | BookingStatus::Confirmed);
        Ok(Booking {
            id: row.id,
            status,
            listing_id: row.listing_id,
            guest_id: row.guest_id,
            host_id: row.host_id,
            check_in: row.check_in,
            check_out: row.check_out,
            guests: u32::try_from(row.guests).unwrap_or(0),
            nights: quote.nights,
            rate,
            instant_book: row.instant_book,
            cancellation_policy: row.cancellation_policy.clone(),
            time_zone: row.time_zone.clone(),
            check_in_at: row.check_in_at,
            check_out_at: row.check_out_at,
            refund_timeline: if open { self.timeline(&row.cancellation_policy, rate, &quote, &t) } else { Vec::new() },
            price: quote,
            hold_expires_at: row.hold_expires_at,
            respond_by: row.respond_by,
            confirmed_at: row.confirmed_at,
            grace_period_until: domain::grace_period_until(&t).map(instant),
            cancelled_at: row.cancelled_at,
            refund: row.refund.map(|r| Money::new(r, &row.currency)),
            payment_id: row.payment_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    pub(crate) async fn row(&self, id: Id) -> Result<BookingRow, Problem> {
        store::get(&self.db, id).await.map_err(db_err)?.ok_or_else(|| Problem::not_found("booking"))
    }

    /// A booking its guest, its host or an admin may see.
    pub async fn get(&self, id: Id, actor: Actor) -> Result<Booking, Problem> {
        let row = self.row(id).await?;
        if !(actor.admin || actor.id == row.guest_id || actor.id == row.host_id) {
            return Err(Problem::forbidden("only the guest, the host or an admin may see a booking"));
        }
        self.view(&row)
    }

    pub async fn list(
        &self,
        user: Id,
        party: Party,
        status: Option<BookingStatus>,
        cursor: Option<Id>,
        limit: i64,
    ) -> Result<(Vec<Booking>, Option<Id>), Problem> {
        let rows =
            store::list(&self.db, party, user, status.map(|s| s.as_str()), cursor, limit).await.map_err(db_err)?;
        let next = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.id)).flatten();
        Ok((rows.iter().map(|r| self.view(r)).collect::<Result<_, _>>()?, next))
    }

    // ---- Quote and create ----------------------------------------------------------

    fn local_rules(stay: &StayTerms) -> (Tz, NaiveTime, NaiveTime) {
        let tz = stay.time_zone.parse::<Tz>().unwrap_or(Tz::UTC);
        let time = |s: &str, default: u32| {
            NaiveTime::parse_from_str(s, "%H:%M")
                .unwrap_or(NaiveTime::from_hms_opt(default, 0, 0).unwrap_or(NaiveTime::MIN))
        };
        (tz, time(&stay.check_in_time, 15), time(&stay.check_out_time, 11))
    }

    /// What the listing's quote cannot know: our own clock's "today" where the
    /// listing is, and the shape of the request before anything is asked.
    fn check_shape(check_in: NaiveDate, check_out: NaiveDate, guests: u32) -> Result<(), Problem> {
        let mut errors = Vec::new();
        for (field, date) in [("check_in", check_in), ("check_out", check_out)] {
            if !(2000..=2999).contains(&date.year()) {
                errors.push(FieldError::new(field, "must be a date between the years 2000 and 2999"));
            }
        }
        if check_out <= check_in {
            errors.push(FieldError::new("check_out", "must be after check_in"));
        }
        if guests == 0 {
            errors.push(FieldError::new("guests", "must be at least 1"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Problem::validation(errors))
        }
    }

    fn check_not_past(&self, stay: &StayTerms, check_in: NaiveDate) -> Result<(), Problem> {
        let (tz, _, _) = Self::local_rules(stay);
        if check_in < domain::local_today(tz, self.now()) {
            return Err(Problem::field("check_in", "must not be in the past"));
        }
        Ok(())
    }

    /// The listing's quote (it checks the calendar and the stay rules), with
    /// the listing's 409 naming the nights.
    async fn listing_quote(
        &self,
        listing_id: Id,
        check_in: NaiveDate,
        check_out: NaiveDate,
        guests: u32,
        rate: Rate,
    ) -> Result<Quote, Problem> {
        Self::check_shape(check_in, check_out, guests)?;
        let quote = match self.listings.quote(listing_id, check_in, check_out, guests, rate).await {
            Ok(q) => q,
            Err(p) if p.code == ErrorCode::Conflict => {
                return Err(self.unavailable(listing_id, check_in, check_out, p).await)
            }
            Err(p) => return Err(p),
        };
        self.check_not_past(&quote.stay, check_in)?;
        Ok(quote)
    }

    /// The price of a stay with its cancellation terms and refund timeline.
    pub async fn quote(
        &self,
        listing_id: Id,
        check_in: NaiveDate,
        check_out: NaiveDate,
        guests: u32,
        rate: Rate,
    ) -> Result<BookingQuote, Problem> {
        let quote = self.listing_quote(listing_id, check_in, check_out, guests, rate).await?;
        let (tz, check_in_time, _) = Self::local_rules(&quote.stay);
        let check_in_at = domain::local_instant(tz, check_in, check_in_time);
        let t = StayTimes { booked_at: self.now(), confirmed_at: None, check_in_at, nights: quote.nights };
        Ok(BookingQuote {
            refund_timeline: self.timeline(&quote.stay.cancellation_policy, rate, &quote, &t),
            cancellation_policy: quote.stay.cancellation_policy.clone(),
            check_in_at: instant(check_in_at),
            quote,
        })
    }

    fn request_hash(req: &CreateBooking) -> String {
        let canonical = serde_json::json!({
            "listing_id": req.listing_id,
            "check_in": req.check_in,
            "check_out": req.check_out,
            "guests": req.guests,
            "rate": req.rate.unwrap_or_default(),
        });
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }

    /// The booking an idempotency key already made, or 422 when the key came
    /// with another request.
    async fn replay(&self, guest: Id, key: &str, hash: &str) -> Result<Option<Booking>, Problem> {
        match store::idempotent(&self.db, guest, key).await.map_err(db_err)? {
            Some((first_hash, booking_id)) if first_hash == hash => Ok(Some(self.view(&self.row(booking_id).await?)?)),
            Some(_) => {
                Err(Problem::new(ErrorCode::ValidationFailed, "this Idempotency-Key was used with a different request")
                    .with("idempotency_key", key))
            }
            None => Ok(None),
        }
    }

    /// Creates a booking and holds its nights; `(booking, replayed)`.
    pub async fn create(&self, guest: Id, req: &CreateBooking, key: Option<&str>) -> Result<(Booking, bool), Problem> {
        if let Some(k) = key {
            if k.is_empty() || k.len() > 255 {
                return Err(Problem::new(ErrorCode::BadRequest, "Idempotency-Key must be 1 to 255 characters"));
            }
        }
        let hash = Self::request_hash(req);
        if let Some(k) = key {
            if let Some(existing) = self.replay(guest, k, &hash).await? {
                return Ok((existing, true));
            }
        }
        let rate = req.rate.unwrap_or_default();
        let quote = self.listing_quote(req.listing_id, req.check_in, req.check_out, req.guests, rate).await?;
        let stay = quote.stay.clone();
        if stay.host_id == guest {
            return Err(Problem::field("listing_id", "you cannot book your own listing"));
        }
        let (tz, check_in_time, check_out_time) = Self::local_rules(&stay);
        let now = self.clock.now();
        let hold_expires_at = now.plus(Duration::minutes(self.settings.hold_minutes.max(1)));
        let row = BookingRow {
            id: Id::new(),
            listing_id: req.listing_id,
            guest_id: guest,
            host_id: stay.host_id,
            status: BookingStatus::PendingPayment.as_str().to_owned(),
            check_in: req.check_in,
            check_out: req.check_out,
            guests: i32::try_from(req.guests).unwrap_or(i32::MAX),
            rate: rate.as_str().to_owned(),
            instant_book: stay.instant_book,
            cancellation_policy: stay.cancellation_policy.clone(),
            time_zone: tz.name().to_owned(),
            check_in_at: instant(domain::local_instant(tz, req.check_in, check_in_time)),
            check_out_at: instant(domain::local_instant(tz, req.check_out, check_out_time)),
            price: serde_json::to_string(&quote).map_err(Problem::internal)?,
            currency: quote.total.currency.clone(),
            total: quote.total.amount,
            hold_expires_at: Some(hold_expires_at),
            respond_by: None,
            confirmed_at: None,
            cancelled_at: None,
            refund: None,
            payment_id: None,
            created_at: now,
            updated_at: now,
        };
        let booking = self.view(&row)?;
        let event =
            Envelope::new(MODULE, BOOKING_CREATED, &BookingEvent { booking: booking.clone() }).map_err(db_err)?;
        let jobs =
            [NewJob::new(EXPIRE_HOLD, format!("hold:{}", row.id), hold_expires_at, &BookingJob { booking_id: row.id })];
        let idempotency = key.map(|k| IdempotencyKey { key: k.to_owned(), request_hash: hash.clone() });
        match store::reserve(&self.db, &row, stay.preparation_days, idempotency.as_ref(), &jobs, &event).await {
            Ok(()) => {
                self.bus.poke();
                self.jobs.scheduled(&jobs);
                Ok((booking, false))
            }
            Err(failure @ (ReserveError::Taken(_) | ReserveError::Db(DbError::Conflict(_)))) => {
                // A concurrent request with the same key won the race: replay it.
                if let Some(k) = key {
                    if let Some(existing) = self.replay(guest, k, &hash).await? {
                        return Ok((existing, true));
                    }
                }
                Err(match failure {
                    // The reservation's own read named the nights.
                    ReserveError::Taken(nights) => taken(nights.iter().map(NaiveDate::to_string).collect()),
                    _ => self.taken_problem(&row, stay.preparation_days).await,
                })
            }
            Err(ReserveError::Db(e)) => Err(db_err(e)),
        }
    }

    /// 409 naming the nights other bookings hold in the stay (and its preparation margin).
    async fn taken_problem(&self, row: &BookingRow, preparation_days: u32) -> Problem {
        taken(self.held_in(row.listing_id, row.check_in, row.check_out, preparation_days).await)
    }

    async fn held_in(
        &self,
        listing: Id,
        check_in: NaiveDate,
        check_out: NaiveDate,
        preparation_days: u32,
    ) -> Vec<String> {
        let margin = Duration::days(i64::from(preparation_days));
        let held =
            store::held_nights_in(&self.db, listing, check_in - margin, check_out + margin).await.unwrap_or_default();
        held.iter().map(|(night, _)| night.to_string()).collect()
    }

    /// The listing's calendar refused the stay: name the nights, whether other
    /// bookings hold them or the host blocked them.
    async fn unavailable(&self, listing: Id, check_in: NaiveDate, check_out: NaiveDate, refused: Problem) -> Problem {
        let held = self.held_in(listing, check_in, check_out, 0).await;
        if held.is_empty() {
            let night = refused.extensions.get("night").cloned().unwrap_or(serde_json::Value::Null);
            let nights = if night.is_null() { Vec::new() } else { vec![night] };
            return refused.with("conflicting_nights", nights);
        }
        taken(held)
    }

    // ---- Transitions ----------------------------------------------------------------

    /// Applies `action` to the booking if the table allows it from its current
    /// state; `Ok(None)` when it is in another state by now.
    async fn apply(
        &self,
        mut row: BookingRow,
        action: Action,
        edit: impl FnOnce(&mut BookingRow),
        jobs: Vec<NewJob>,
    ) -> Result<Option<BookingRow>, Problem> {
        let from = BookingStatus::parse(&row.status).ok_or_else(|| Problem::internal("unknown booking status"))?;
        let Some(to) = domain::next(from, action) else {
            return Err(conflict(format!("a booking that is {} cannot be {}", from.as_str(), action_name(action))));
        };
        let from_text = row.status.clone();
        row.status = to.as_str().to_owned();
        row.updated_at = self.clock.now();
        edit(&mut row);
        let booking = self.view(&row)?;
        let event = Envelope::new(MODULE, domain::event_type(to), &BookingEvent { booking }).map_err(db_err)?;
        let written = store::transition(
            &self.db,
            Transition { from: &from_text, row: &row, release_nights: !to.holds_nights(), jobs: &jobs, event: &event },
        )
        .await
        .map_err(db_err)?;
        if !written {
            return Ok(None);
        }
        self.bus.poke();
        self.jobs.scheduled(&jobs);
        Ok(Some(row))
    }

    /// Confirms a booking whose payment was captured: check-out and payout timers.
    async fn confirm(&self, row: BookingRow, action: Action, payment_id: Id) -> Result<Option<BookingRow>, Problem> {
        let now = self.clock.now();
        let complete =
            NewJob::new(COMPLETE, format!("complete:{}", row.id), row.check_out_at, &BookingJob { booking_id: row.id });
        let confirmed = self
            .apply(
                row,
                action,
                |r| {
                    r.confirmed_at = Some(now);
                    r.hold_expires_at = None;
                    r.respond_by = None;
                    r.payment_id = Some(payment_id);
                },
                vec![complete],
            )
            .await?;
        if let Some(r) = &confirmed {
            self.schedule_payout(r).await?;
        }
        Ok(confirmed)
    }

    async fn schedule_payout(&self, row: &BookingRow) -> Result<(), Problem> {
        let release_at = row.check_in_at.plus(Duration::hours(self.settings.payout_delay_hours));
        self.payments.schedule_payout(row.id, row.host_id, release_at).await
    }

    /// Moves a booking on from what its payment shows (the API's answer, a
    /// webhook's event, or reconciliation after a crash).
    async fn on_payment(&self, row: BookingRow, payment: &Payment) -> Result<BookingRow, Problem> {
        let status = BookingStatus::parse(&row.status);
        let moved = match (status, payment.status) {
            (Some(BookingStatus::PendingPayment), PaymentStatus::Succeeded) => {
                self.confirm(row.clone(), Action::PaymentCaptured, payment.id).await?
            }
            (Some(BookingStatus::PendingPayment), PaymentStatus::RequiresCapture) => {
                let respond_by = self.clock.now().plus(Duration::hours(self.settings.host_response_hours));
                let job = NewJob::new(
                    RESPOND_BY,
                    format!("respond:{}", row.id),
                    respond_by,
                    &BookingJob { booking_id: row.id },
                );
                self.apply(
                    row.clone(),
                    Action::PaymentAuthorized,
                    |r| {
                        r.hold_expires_at = None;
                        r.respond_by = Some(respond_by);
                        r.payment_id = Some(payment.id);
                    },
                    vec![job],
                )
                .await?
            }
            (Some(s), PaymentStatus::Succeeded | PaymentStatus::RequiresCapture) if !s.holds_nights() => {
                // Money taken or held for a booking that ended without the
                // stay (the hold expired first): give it back.
                self.settle_orphan(&row, payment).await?;
                None
            }
            _ => None,
        };
        match moved {
            Some(r) => Ok(r),
            None => self.row(row.id).await,
        }
    }

    /// Money back to the guest, once per booking and purpose (`what` names
    /// the idempotency key: a retry never refunds twice).
    async fn refund(&self, booking_id: Id, parts: Breakdown, reason: String, what: &str) -> Result<Payment, Problem> {
        let idempotency_key = format!("booking-{booking_id}-{what}");
        self.payments.refund(RefundRequest { booking_id, parts, reason, idempotency_key }).await
    }

    /// A charge or an authorisation whose booking ended before it was ever
    /// confirmed (expired, declined, cancelled while the payment was in
    /// flight): all of it goes back. A confirmed booking's money is settled
    /// by its cancellation's own job instead.
    async fn settle_orphan(&self, row: &BookingRow, payment: &Payment) -> Result<(), Problem> {
        if row.confirmed_at.is_some() {
            return Ok(());
        }
        match payment.status {
            PaymentStatus::RequiresCapture | PaymentStatus::RequiresAction => {
                self.payments.cancel_authorization(row.id).await?;
            }
            PaymentStatus::Succeeded if payment.refunded.amount < payment.amount.amount => {
                let reason = format!("booking {} before it was confirmed", row.status);
                self.refund(row.id, payment.breakdown, reason, "orphan").await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Pays for a booking awaiting payment (the guest).
    pub async fn pay(
        &self,
        guest: Id,
        id: Id,
        payment_method: &str,
        key: Option<&str>,
    ) -> Result<PaymentOutcome, Problem> {
        let row = self.row(id).await?;
        if row.guest_id != guest {
            return Err(Problem::forbidden("only the guest pays for a booking"));
        }
        let status = BookingStatus::parse(&row.status);
        if status != Some(BookingStatus::PendingPayment) {
            // Paid already: answer with the payment, as a replay would.
            if let (Some(BookingStatus::PendingHost | BookingStatus::Confirmed), Some(p)) =
                (status, self.payments.payment_for(id).await?)
            {
                return Ok(outcome(&p, status.unwrap_or(BookingStatus::Confirmed)));
            }
            return Err(conflict(format!("the booking is {}, not awaiting payment", row.status)));
        }
        if row.hold_expires_at.is_some_and(|t| t <= self.clock.now()) {
            return Err(conflict("the hold on these nights has expired; book again"));
        }
        if payment_method.trim().is_empty() {
            return Err(Problem::field("payment_method", "is required"));
        }
        let quote = Self::quote_of(&row)?;
        let payment = self
            .payments
            .charge(ChargeRequest {
                booking_id: row.id,
                guest_id: row.guest_id,
                host_id: row.host_id,
                currency: row.currency.clone(),
                breakdown: Self::charge_of(&quote),
                capture: if row.instant_book { CaptureMethod::Automatic } else { CaptureMethod::Manual },
                payment_method: payment_method.trim().to_owned(),
                idempotency_key: match key {
                    Some(k) => format!("{}:{k}", row.id),
                    None => format!("{}:{}", row.id, Id::new()),
                },
            })
            .await?;
        if row.payment_id != Some(payment.id) && payment.status.is_live() {
            store::set_payment(&self.db, row.id, payment.id).await.map_err(db_err)?;
        }
        let row = self.on_payment(row, &payment).await?;
        let status = BookingStatus::parse(&row.status).unwrap_or(BookingStatus::PendingPayment);
        Ok(outcome(&payment, status))
    }

    /// The host accepts a request to book: the authorisation is captured.
    pub async fn accept(&self, actor: Actor, id: Id) -> Result<Booking, Problem> {
        let row = self.row(id).await?;
        self.host_only(&row, actor)?;
        if row.status != BookingStatus::PendingHost.as_str() {
            return Err(conflict(format!("a booking that is {} cannot be accepted", row.status)));
        }
        let payment = self.payments.capture(id).await?;
        if payment.status != PaymentStatus::Succeeded {
            return Err(Problem::new(ErrorCode::BadGateway, "the guest's payment could not be captured"));
        }
        match self.confirm(row, Action::HostAccepts, payment.id).await? {
            Some(r) => self.view(&r),
            None => self.view(&self.row(id).await?),
        }
    }

    /// The host declines a request to book: the card is never charged.
    pub async fn decline(&self, actor: Actor, id: Id) -> Result<Booking, Problem> {
        let row = self.row(id).await?;
        self.host_only(&row, actor)?;
        let settle = self.settle_job(id, Breakdown::default(), None);
        let declined = self.apply(row, Action::HostDeclines, |_| {}, vec![settle]).await?;
        self.view(&match declined {
            Some(r) => r,
            None => self.row(id).await?,
        })
    }

    fn host_only(&self, row: &BookingRow, actor: Actor) -> Result<(), Problem> {
        if actor.id == row.host_id || actor.admin {
            Ok(())
        } else if actor.id == row.guest_id {
            Err(Problem::forbidden("only the host answers a request to book"))
        } else {
            Err(Problem::forbidden("only the guest, the host or an admin may see a booking"))
        }
    }

    fn settle_job(&self, id: Id, refund: Breakdown, penalty: Option<Money>) -> NewJob {
        NewJob::new(SETTLE, format!("settle:{id}"), self.clock.now(), &Settlement { booking_id: id, refund, penalty })
    }

    /// A cancellation by the guest (per the policy) or the host (full refund,
    /// a penalty, the nights stay blocked).
    pub async fn cancel(&self, actor: Actor, id: Id) -> Result<Cancellation, Problem> {
        let row = self.row(id).await?;
        let by_host = actor.id == row.host_id || (actor.admin && actor.id != row.guest_id);
        if !(by_host || actor.id == row.guest_id) {
            return Err(Problem::forbidden("only the guest, the host or an admin may cancel a booking"));
        }
        let status = BookingStatus::parse(&row.status).ok_or_else(|| Problem::internal("unknown booking status"))?;
        let quote = Self::quote_of(&row)?;
        let charge = Self::charge_of(&quote);
        let paid = status == BookingStatus::Confirmed;
        let (action, refund, penalty) = if by_host {
            if status == BookingStatus::PendingHost {
                return Err(conflict("decline the request instead of cancelling it"));
            }
            let penalty = Money::new(domain::host_penalty(&charge, self.settings.host_penalty_bps), &row.currency);
            (Action::HostCancels, charge, Some(penalty))
        } else {
            let refund = if paid {
                let rate = Rate::parse(&row.rate).unwrap_or_default();
                domain::guest_refund(
                    Policy::parse(&row.cancellation_policy),
                    rate,
                    &charge,
                    &Self::times(&row, &quote),
                    self.now(),
                )
            } else {
                // Nothing was charged: an authorisation is released instead.
                Breakdown::default()
            };
            (Action::GuestCancels, refund, None)
        };
        let now = self.clock.now();
        let settle = self.settle_job(id, refund, penalty.clone());
        let refund_total = refund.total();
        let cancelled = self
            .apply(
                row,
                action,
                |r| {
                    r.cancelled_at = Some(now);
                    r.refund = Some(refund_total);
                    r.hold_expires_at = None;
                    r.respond_by = None;
                },
                vec![settle],
            )
            .await?;
        let Some(cancelled) = cancelled else {
            return Err(conflict("the booking changed meanwhile; look at it again"));
        };
        Ok(Cancellation {
            refund: Money::new(refund_total, &cancelled.currency),
            booking: self.view(&cancelled)?,
            host_penalty: penalty,
        })
    }

    // ---- Jobs -------------------------------------------------------------------

    async fn expire_hold(&self, id: Id) -> Result<(), Problem> {
        let row = self.row(id).await?;
        if row.status != BookingStatus::PendingPayment.as_str() {
            return Ok(());
        }
        if let Some(payment) = self.payments.payment_for(id).await? {
            match payment.status {
                // Paid, but the answer was lost (a crash): the booking goes on.
                PaymentStatus::Succeeded | PaymentStatus::RequiresCapture => {
                    self.on_payment(row, &payment).await?;
                    return Ok(());
                }
                PaymentStatus::Processing => {
                    return Err(Problem::new(ErrorCode::ServiceUnavailable, "payment in flight").retry_after(5))
                }
                PaymentStatus::RequiresAction => {
                    self.payments.cancel_authorization(id).await?;
                }
                _ => {}
            }
        }
        self.apply(row, Action::HoldExpired, |r| r.hold_expires_at = None, Vec::new()).await?;
        Ok(())
    }

    async fn request_unanswered(&self, id: Id) -> Result<(), Problem> {
        let row = self.row(id).await?;
        if row.status != BookingStatus::PendingHost.as_str() {
            return Ok(());
        }
        if let Some(payment) = self.payments.payment_for(id).await? {
            if payment.status == PaymentStatus::Succeeded {
                // The host accepted and the capture went through before a crash.
                self.confirm(row, Action::HostAccepts, payment.id).await?;
                return Ok(());
            }
        }
        let settle = self.settle_job(id, Breakdown::default(), None);
        self.apply(row, Action::RequestExpired, |r| r.respond_by = None, vec![settle]).await?;
        Ok(())
    }

    async fn complete(&self, id: Id) -> Result<(), Problem> {
        let row = self.row(id).await?;
        if row.status != BookingStatus::Confirmed.as_str() {
            return Ok(());
        }
        if self.clock.now() < row.check_out_at {
            return Err(Problem::new(ErrorCode::Conflict, "check-out has not come yet"));
        }
        self.apply(row, Action::StayEnded, |_| {}, Vec::new()).await?;
        Ok(())
    }

    /// Gives back what a cancelled, declined or expired booking owes: the
    /// refund (idempotent per booking), the released authorisation, the penalty.
    async fn settle(&self, s: Settlement) -> Result<(), Problem> {
        let row = self.row(s.booking_id).await?;
        if let Some(payment) = self.payments.payment_for(s.booking_id).await? {
            match payment.status {
                PaymentStatus::RequiresCapture | PaymentStatus::RequiresAction => {
                    self.payments.cancel_authorization(s.booking_id).await?;
                }
                PaymentStatus::Processing => {
                    return Err(Problem::new(ErrorCode::ServiceUnavailable, "payment in flight").retry_after(5))
                }
                PaymentStatus::Succeeded if row.confirmed_at.is_none() => {
                    // Never confirmed (cancelled or ended while the payment was
                    // in flight): everything goes back.
                    self.settle_orphan(&row, &payment).await?;
                }
                PaymentStatus::Succeeded if s.refund.total() > 0 => {
                    self.refund(s.booking_id, s.refund, format!("booking {}", row.status), "settle").await?;
                }
                _ => {}
            }
        }
        if let Some(penalty) = s.penalty {
            self.payments.record_host_penalty(s.booking_id, row.host_id, penalty).await?;
        }
        Ok(())
    }

    /// Bookings in `status` that changed in the reconciliation window: from
    /// two days ago (half-finished flows come from crashes, found within a
    /// run or two) to a minute ago (flows still running are left alone).
    async fn recently_in(&self, status: BookingStatus) -> Result<Vec<BookingRow>, Problem> {
        const PAGE: i64 = 500;
        const MAX_ROWS: usize = 20_000;
        let now = self.clock.now();
        let window = (now.minus(Duration::days(2)), now.minus(Duration::minutes(1)));
        let mut rows = Vec::new();
        let mut after = None;
        loop {
            let page = store::in_status(&self.db, status.as_str(), window, after, PAGE).await.map_err(db_err)?;
            after = page.last().map(|r| r.id);
            let full = page.len() as i64 == PAGE;
            rows.extend(page);
            if !full || rows.len() >= MAX_ROWS {
                break;
            }
        }
        if rows.len() >= MAX_ROWS {
            tracing::warn!(status = status.as_str(), "reconciliation window holds more bookings than one run checks");
        }
        Ok(rows)
    }

    /// Finds half-finished flows (a crash between the provider's answer and
    /// our write) and repairs them; reports what it cannot. One booking's
    /// failure is reported and the run goes on to the others.
    pub async fn reconcile(&self) -> Result<ReconcileReport, Problem> {
        let mut report = ReconcileReport::default();
        // Unpaid holds whose payment may have gone through.
        for row in self.recently_in(BookingStatus::PendingPayment).await? {
            match self.repair_unpaid(&row).await {
                Ok(Some(line)) => report.repaired.push(line),
                Ok(None) => {}
                Err(p) => report.anomalies.push(format!("booking {}: {}", row.id, p.detail)),
            }
        }
        // Bookings over without a stay whose money is still taken or held.
        for status in [BookingStatus::Expired, BookingStatus::Declined] {
            for row in self.recently_in(status).await? {
                match self.release_orphan(&row).await {
                    Ok(Some(line)) => report.repaired.push(line),
                    Ok(None) => {}
                    Err(p) => report.anomalies.push(format!("booking {}: {}", row.id, p.detail)),
                }
            }
        }
        // Confirmed stays must have a captured payment and a payout.
        for row in self.recently_in(BookingStatus::Confirmed).await? {
            let checked = match self.payments.payment_for(row.id).await {
                Ok(Some(p)) if p.status == PaymentStatus::Succeeded => self.schedule_payout(&row).await,
                Ok(other) => Err(Problem::new(
                    ErrorCode::Conflict,
                    format!("confirmed but its payment is {}", other.map(|p| p.status.as_str()).unwrap_or("missing")),
                )),
                Err(p) => Err(p),
            };
            if let Err(p) = checked {
                report.anomalies.push(format!("booking {}: {}", row.id, p.detail));
            }
        }
        report.stray_nights_freed = store::release_stray_nights(&self.db).await.map_err(db_err)?;
        for line in report.repaired.iter().chain(&report.anomalies) {
            tracing::warn!(%line, "reconciliation");
        }
        Ok(report)
    }

    async fn repair_unpaid(&self, row: &BookingRow) -> Result<Option<String>, Problem> {
        let Some(payment) = self.payments.payment_for(row.id).await? else { return Ok(None) };
        if !matches!(payment.status, PaymentStatus::Succeeded | PaymentStatus::RequiresCapture) {
            return Ok(None);
        }
        let after = self.on_payment(row.clone(), &payment).await?;
        Ok(Some(format!("booking {} was paid: now {}", row.id, after.status)))
    }

    async fn release_orphan(&self, row: &BookingRow) -> Result<Option<String>, Problem> {
        let Some(payment) = self.payments.payment_for(row.id).await? else { return Ok(None) };
        let held = matches!(payment.status, PaymentStatus::RequiresCapture | PaymentStatus::RequiresAction);
        let charged = payment.status == PaymentStatus::Succeeded && payment.refunded.amount < payment.amount.amount;
        if !(held || charged) {
            return Ok(None);
        }
        self.settle_orphan(row, &payment).await?;
        Ok(Some(format!("booking {} is {}: its payment was released", row.id, row.status)))
    }

    /// Nights held per listing (tests and admin checks of the guarantee).
    pub async fn held_nights(&self, listing_id: Id) -> Result<Vec<(NaiveDate, Id)>, Problem> {
        store::held_nights(&self.db, listing_id).await.map_err(db_err)
    }
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::PaymentCaptured | Action::PaymentAuthorized => "paid",
        Action::HoldExpired | Action::RequestExpired => "expired",
        Action::HostAccepts => "accepted",
        Action::HostDeclines => "declined",
        Action::GuestCancels | Action::HostCancels => "cancelled",
        Action::StayEnded => "completed",
    }
}

fn outcome(p: &Payment, booking_status: BookingStatus) -> PaymentOutcome {
    PaymentOutcome {
        status: match p.status {
            PaymentStatus::Failed => "declined".to_owned(),
            other => other.as_str().to_owned(),
        },
        payment_id: p.id,
        booking_status,
        next_action_url: p.next_action_url.clone(),
        decline_code: p.failure_code.clone(),
        decline_message: p.failure_message.clone(),
    }
}

#[async_trait]
impl JobHandler for BookingService {
    async fn run(&self, job: &Job) -> Result<(), String> {
        let result = match job.kind.as_str() {
            SETTLE => self.settle(job.decode()?).await,
            RECONCILE => self.reconcile().await.map(|_| ()),
            kind => {
                let BookingJob { booking_id } = job.decode()?;
                match kind {
                    EXPIRE_HOLD => self.expire_hold(booking_id).await,
                    RESPOND_BY => self.request_unanswered(booking_id).await,
                    COMPLETE => self.complete(booking_id).await,
                    _ => Ok(()),
                }
            }
        };
        result.map_err(|p| p.detail)
    }
}

#[async_trait]
impl EventHandler for BookingService {
    async fn handle(&self, event: &Envelope) -> Result<(), String> {
        let PaymentEvent { payment } = event.decode()?;
        let Some(row) = store::get(&self.db, payment.booking_id).await.map_err(|e| e.to_string())? else {
            return Ok(());
        };
        self.on_payment(row, &payment).await.map(|_| ()).map_err(|p| p.detail)
    }
}

#[async_trait]
impl Bookings for BookingService {
    async fn booking(&self, id: Id) -> Result<Option<Booking>, Problem> {
        match store::get(&self.db, id).await.map_err(db_err)? {
            Some(row) => Ok(Some(self.view(&row)?)),
            None => Ok(None),
        }
    }
}
