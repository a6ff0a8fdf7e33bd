//! The in-process implementation of the review module: stays become
//! reviewable from the booking module's `booking.completed`, reviews are
//! checked (rules, then the spam layers) and kept hidden until both sides
//! are in or the window closes, when a durable job publishes them together.
//! Ratings are summed per listing by a job whenever a review publishes or
//! goes, and published as `review.listing_rating_changed`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use hometrip_booking::api::{BookingEvent, Bookings, BOOKING_COMPLETED};
use hometrip_kernel::cache::{Limit, RateLimiter};
use hometrip_kernel::db::{Db, DbError};
use hometrip_kernel::events::{Envelope, EventBus, EventHandler};
use hometrip_kernel::jobs::{Job, JobHandler, NewJob, Scheduler};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{ErrorCode, Id, Problem};
use hometrip_user::api::Users;
use serde::{Deserialize, Serialize};

use crate::api::*;
use crate::domain::{self, Role};
use crate::spam::Classifier;
use crate::store::{self, RatingRow, ReviewRow, StayRow};

pub const REVEAL_JOB: &str = "review.reveal";
pub const REMIND_JOB: &str = "review.remind";
pub const RESUM_JOB: &str = "review.listing_rating";
pub const MARKET_JOB: &str = "review.market_mean";

/// Why the spam check held a review (shown to moderators).
pub const HELD_CONTACT: &str = "contact_details";
pub const HELD_DUPLICATE: &str = "near_duplicate";
pub const HELD_CLASSIFIER: &str = "spam_classifier";

pub struct ReviewService {
    pub(crate) db: Db,
    bus: Arc<EventBus>,
    pub(crate) jobs: Arc<Scheduler>,
    bookings: Arc<dyn Bookings>,
    users: Arc<dyn Users>,
    limiter: RateLimiter,
    classifier: Classifier,
    pub settings: ReviewSettings,
}

pub struct ReviewDeps {
    pub db: Db,
    pub bus: Arc<EventBus>,
    pub jobs: Arc<Scheduler>,
    pub bookings: Arc<dyn Bookings>,
    pub users: Arc<dyn Users>,
    pub limiter: RateLimiter,
    pub settings: ReviewSettings,
}

pub use crate::api::NewReview;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StayDue {
    booking_id: Id,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ListingDue {
    listing_id: Id,
}

pub(crate) fn db_err(e: DbError) -> Problem {
    Problem::from(e)
}

fn event(event_type: &str, data: &impl Serialize) -> Result<Envelope, DbError> {
    Envelope::new(MODULE, event_type, data)
}

impl ReviewService {
    pub fn new(d: ReviewDeps) -> Arc<Self> {
        Arc::new(ReviewService {
            db: d.db,
            bus: d.bus,
            jobs: d.jobs,
            bookings: d.bookings,
            users: d.users,
            limiter: d.limiter,
            classifier: Classifier::shipped(),
            settings: d.settings,
        })
    }

    pub async fn subscribe(self: &Arc<Self>) -> Result<(), String> {
        let handler = Arc::clone(self) as Arc<dyn EventHandler>;
        self.bus.subscribe("review.stays", &[BOOKING_COMPLETED], handler).await;
        let jobs = Arc::clone(self) as Arc<dyn JobHandler>;
        for kind in [REVEAL_JOB, REMIND_JOB, RESUM_JOB] {
            self.jobs.register(kind, Arc::clone(&jobs)).await;
        }
        let every = chrono::Duration::seconds(i64::try_from(self.settings.market_every_secs.max(60)).unwrap_or(3600));
        self.jobs.every(MARKET_JOB, every, jobs).await.map_err(|e| e.to_string())
    }

    pub(crate) fn now(&self) -> Instant {
        self.jobs.clock().now()
    }

    /// A completed stay opens its window: reminders now and 3 days before
    /// it closes, and the reveal when it closes.
    async fn stay_completed(&self, b: hometrip_booking::api::Booking) -> Result<(), Problem> {
        let window_ends_at = b.check_out_at.plus(chrono::Duration::days(self.settings.window_days));
        let stay = StayRow {
            booking_id: b.id,
            listing_id: b.listing_id,
            guest_id: b.guest_id,
            host_id: b.host_id,
            checked_out_at: b.check_out_at,
            window_ends_at,
            revealed_at: None,
        };
        let due = StayDue { booking_id: b.id };
        let now = self.now();
        let last_call = window_ends_at.minus(chrono::Duration::days(3));
        let mut jobs = vec![
            NewJob::new(REVEAL_JOB, format!("review:reveal:{}:window", b.id), window_ends_at, &due),
            NewJob::new(REMIND_JOB, format!("review:remind:{}:checkout", b.id), now, &due),
        ];
        if last_call > now {
            jobs.push(NewJob::new(REMIND_JOB, format!("review:remind:{}:last", b.id), last_call, &due));
        }
        if store::open_stay(&self.db, &stay, &jobs).await.map_err(db_err)? {
            self.jobs.scheduled(&jobs);
        }
        Ok(())
    }

    /// The stay `user` may review, and as which side. No stay yet: the
    /// booking says whether the caller is a stranger (403) or early (422).
    async fn reviewable(&self, user: Id, booking_id: Id) -> Result<(StayRow, Role), Problem> {
        let Some(stay) = store::stay(&self.db, booking_id).await.map_err(db_err)? else {
            let booking = self.bookings.booking(booking_id).await?.ok_or_else(|| Problem::not_found("booking"))?;
            if booking.guest_id != user && booking.host_id != user {
                return Err(Problem::forbidden("only the guest and the host of a stay review it"));
            }
            return Err(Problem::field("booking_id", "only a completed stay can be reviewed"));
        };
        let role = if stay.guest_id == user {
            Role::Guest
        } else if stay.host_id == user {
            Role::Host
        } else {
            return Err(Problem::forbidden("only the guest and the host of a stay review it"));
        };
        Ok((stay, role))
    }

    /// `GET /reviews/pending`: what `user` may still review.
    pub async fn to_write(&self, user: Id) -> Result<Vec<crate::api::PendingReview>, Problem> {
        let (stays, reviewed) = store::open_stays_of(&self.db, user, self.now()).await.map_err(db_err)?;
        Ok(stays
            .into_iter()
            .filter(|s| !reviewed.contains(&s.booking_id))
            .map(|s| {
                let as_guest = s.guest_id == user;
                crate::api::PendingReview {
                    booking_id: s.booking_id,
                    listing_id: s.listing_id,
                    role: if as_guest { Role::Guest } else { Role::Host }.as_str().to_owned(),
                    subject_id: if as_guest { s.host_id } else { s.guest_id },
                    checked_out_at: s.checked_out_at,
                    window_ends_at: s.window_ends_at,
                }
            })
            .collect())
    }

    /// `POST /bookings/{id}/reviews`.
    pub async fn submit(&self, user: Id, booking_id: Id, input: NewReview) -> Result<Review, Problem> {
        let (stay, role) = self.reviewable(user, booking_id).await?;
        let now = self.now();
        if now > stay.window_ends_at {
            return Err(Problem::field(
                "booking_id",
                &format!("reviews of this stay closed on {}", stay.window_ends_at.0.format("%Y-%m-%d")),
            ));
        }
        let errors = domain::check_review(role, input.rating, &input.ratings, &input.comment);
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
        let existing = store::reviews_of_booking(&self.db, booking_id).await.map_err(db_err)?;
        if existing.iter().any(|r| r.author_role == role.as_str()) {
            return Err(Problem::new(ErrorCode::Conflict, "you already reviewed this stay"));
        }
        let limit = Limit { max: u64::from(self.settings.per_hour), window_secs: 3600 };
        if let Err(retry) = self.limiter.hit(&format!("review:write:{user}"), limit).await? {
            return Err(Problem::new(ErrorCode::RateLimited, "too many reviews; try again later").retry_after(retry));
        }
        let comment = input.comment.trim().to_owned();
        let fingerprint = domain::simhash(&comment);
        let reasons = self.hold_reasons(user, stay.listing_id, &comment, fingerprint).await?;
        let author_name = self.users.profile(user).await?.map(|p| p.display_name).unwrap_or_default();
        let (subject_id, ratings) = match role {
            Role::Guest => (stay.host_id, input.ratings),
            Role::Host => (stay.guest_id, input.ratings),
        };
        let row = ReviewRow {
            id: Id::new(),
            booking_id,
            listing_id: stay.listing_id,
            author_id: user,
            author_name,
            subject_id,
            author_role: role.as_str().to_owned(),
            rating: i32::try_from(input.rating).unwrap_or(0),
            ratings: serde_json::to_string(&ratings).unwrap_or_default(),
            comment,
            fingerprint: fingerprint.map(domain::to_stored),
            status: if reasons.is_empty() { "hidden" } else { "held" }.to_owned(),
            hold_reasons: serde_json::to_string(&reasons).unwrap_or_default(),
            flagged: false,
            created_at: now,
            published_at: None,
            response: None,
            response_at: None,
            decided_by: None,
            decision_reason: None,
            decided_at: None,
        };
        // Both sides in: the double-blind lifts now (the held one publishes
        // when a moderator approves it).
        let mut jobs = Vec::new();
        if !existing.is_empty() {
            jobs.push(NewJob::new(
                REVEAL_JOB,
                format!("review:reveal:{booking_id}:both"),
                now,
                &StayDue { booking_id },
            ));
        }
        store::insert_review(&self.db, &row, &jobs).await.map_err(db_err)?;
        self.jobs.scheduled(&jobs);
        if !reasons.is_empty() {
            tracing::info!(review = %row.id, reasons = ?reasons, "review held for moderation");
        }
        Ok(view(&row))
    }

    /// The spam layers: contact details and links, near-duplicates of the
    /// author's or the listing's reviews, and the trained classifier.
    async fn hold_reasons(
        &self,
        author: Id,
        listing: Id,
        comment: &str,
        fingerprint: Option<u64>,
    ) -> Result<Vec<String>, Problem> {
        let mut reasons = Vec::new();
        if !hometrip_kernel::contacts::contact_spans(comment).is_empty() {
            reasons.push(HELD_CONTACT.to_owned());
        }
        if let Some(fp) = fingerprint {
            let others = store::fingerprints_near(&self.db, author, listing).await.map_err(db_err)?;
            if others.iter().any(|o| domain::near(fp, domain::from_stored(*o), self.settings.near_duplicate_bits)) {
                reasons.push(HELD_DUPLICATE.to_owned());
            }
        }
        if self.classifier.spam_probability(comment) > self.settings.spam_threshold {
            reasons.push(HELD_CLASSIFIER.to_owned());
        }
        Ok(reasons)
    }

    /// A booking's reviews as `user` may see them: their own whatever its
    /// state, the other side's once published; admins see both.
    pub async fn of_booking(&self, user: Id, admin: bool, booking_id: Id) -> Result<Vec<Review>, Problem> {
        let rows = store::reviews_of_booking(&self.db, booking_id).await.map_err(db_err)?;
        if !admin {
            match store::stay(&self.db, booking_id).await.map_err(db_err)? {
                Some(s) if s.guest_id == user || s.host_id == user => {}
                Some(_) => return Err(Problem::forbidden("not your stay")),
                None => {
                    let b = self.bookings.booking(booking_id).await?.ok_or_else(|| Problem::not_found("booking"))?;
                    if b.guest_id != user && b.host_id != user {
                        return Err(Problem::forbidden("not your stay"));
                    }
                }
            }
        }
        Ok(rows.iter().filter(|r| admin || r.author_id == user || r.status == "published").map(view).collect())
    }

    /// `POST /reviews/{id}/response`: the host of the reviewed listing,
    /// once, within `response_days` of publication.
    pub async fn respond(&self, user: Id, id: Id, comment: &str) -> Result<Review, Problem> {
        let row = self.published_review(id).await?;
        if row.author_role != Role::Guest.as_str() || row.subject_id != user {
            return Err(Problem::forbidden("only the host of the reviewed stay responds"));
        }
        if let Some(e) = domain::check_comment("comment", comment) {
            return Err(Problem::validation(vec![e]));
        }
        let now = self.now();
        let published = row.published_at.unwrap_or(row.created_at);
        if now > published.plus(chrono::Duration::days(self.settings.response_days)) {
            return Err(Problem::field(
                "comment",
                &format!("responses are accepted for {} days after publication", self.settings.response_days),
            ));
        }
        // A public response is no back channel: contact details are hidden.
        let masked = hometrip_kernel::contacts::mask_contacts(comment.trim());
        if !store::respond(&self.db, id, &masked.text, now).await.map_err(db_err)? {
            return Err(Problem::new(ErrorCode::Conflict, "this review already has a response"));
        }
        let row = store::review(&self.db, id).await.map_err(db_err)?.ok_or_else(|| Problem::not_found("review"))?;
        Ok(view(&row))
    }

    /// `POST /reviews/{id}/flag`: the review enters the moderation queue.
    pub async fn flag(&self, user: Id, id: Id, reason: &str) -> Result<(), Problem> {
        self.published_review(id).await?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(Problem::field("reason", "must be 1 to 500 characters"));
        }
        store::flag(&self.db, id, user, reason, self.now()).await.map_err(db_err)
    }

    async fn published_review(&self, id: Id) -> Result<ReviewRow, Problem> {
        match store::review(&self.db, id).await.map_err(db_err)? {
            Some(r) if r.status == "published" => Ok(r),
            _ => Err(Problem::not_found("review")),
        }
    }

    /// Published guest reviews of a listing, with its summary.
    pub async fn of_listing(
        &self,
        listing: Id,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<Review>, ReviewSummary, Option<String>), Problem> {
        let after = cursor.map(parse_cursor).transpose()?;
        let rows = store::published(&self.db, Some(listing), None, "guest", after, limit).await.map_err(db_err)?;
        let next = next_cursor(&rows, limit);
        let summary = self.summary(listing).await?;
        Ok((rows.iter().map(view).collect(), summary, next))
    }

    /// Published reviews about `user` as a guest (written by hosts).
    pub async fn about_guest(
        &self,
        user: Id,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<Review>, Option<String>), Problem> {
        let after = cursor.map(parse_cursor).transpose()?;
        let rows = store::published(&self.db, None, Some(user), "host", after, limit).await.map_err(db_err)?;
        let next = next_cursor(&rows, limit);
        Ok((rows.iter().map(view).collect(), next))
    }

    /// The market's mean overall rating, live (the prior of every score).
    async fn prior(&self) -> Result<Option<f64>, Problem> {
        Ok(mean(store::market_sums(&self.db).await.map_err(db_err)?))
    }

    pub async fn summary(&self, listing: Id) -> Result<ReviewSummary, Problem> {
        let row = store::listing_rating(&self.db, listing).await.map_err(db_err)?;
        let prior = self.prior().await?;
        Ok(summary_of(row.as_ref(), prior, &self.settings))
    }

    fn rating_event(&self, row: &RatingRow, prior: Option<f64>) -> Result<Envelope, DbError> {
        let s = summary_of(Some(row), prior, &self.settings);
        let shown = row.count >= self.settings.shown_from;
        event(
            LISTING_RATING_CHANGED,
            &ListingRatingChanged {
                listing_id: row.listing_id,
                count: row.count,
                rating: if shown { s.score } else { None },
                score: s.score,
            },
        )
    }

    /// Sums a listing's published guest reviews again (a job, after a review
    /// published or went) and tells the listing and search.
    async fn resum(&self, listing_id: Id) -> Result<(), Problem> {
        store::resum_listing(&self.db, listing_id, self.now(), |row, market| self.rating_event(row, mean(market)))
            .await
            .map_err(db_err)?;
        self.bus.poke();
        Ok(())
    }

    /// The market's mean moved: every listing's score moves with it. Sent
    /// when it moved by a hundredth of a star or more since last sent.
    async fn market_moved(&self) -> Result<(), Problem> {
        let Some(prior) = self.prior().await? else { return Ok(()) };
        let milli = (prior * 1000.0).round() as i64;
        let last = store::published_prior(&self.db).await.map_err(db_err)?;
        if last.is_some_and(|l| (l - milli).abs() < 10) {
            return Ok(());
        }
        let rows = store::all_ratings(&self.db).await.map_err(db_err)?;
        let events: Vec<Envelope> =
            rows.iter().map(|r| self.rating_event(r, Some(prior))).collect::<Result<_, _>>().map_err(db_err)?;
        store::publish_prior(&self.db, milli, self.now(), &events).await.map_err(db_err)?;
        self.bus.poke();
        Ok(())
    }

    /// The job that sums `listing` again, soon.
    pub(crate) fn resum_job(&self, listing_id: Id, now: Instant) -> NewJob {
        NewJob::new(RESUM_JOB, format!("review:rating:{listing_id}:{}", Id::new()), now, &ListingDue { listing_id })
    }

    /// Lifts a stay's double-blind: its hidden reviews publish at once.
    async fn reveal(&self, booking_id: Id) -> Result<(), Problem> {
        let Some(stay) = store::stay(&self.db, booking_id).await.map_err(db_err)? else { return Ok(()) };
        let now = self.now();
        let resum = self.resum_job(stay.listing_id, now);
        let published = store::reveal(&self.db, booking_id, now, published_event, &resum).await.map_err(db_err)?;
        if !published.is_empty() {
            self.jobs.scheduled(&[resum]);
            self.bus.poke();
        }
        Ok(())
    }

    /// Asks each side that has not reviewed yet, while the window is open.
    async fn remind(&self, booking_id: Id) -> Result<(), Problem> {
        let Some(stay) = store::stay(&self.db, booking_id).await.map_err(db_err)? else { return Ok(()) };
        if self.now() >= stay.window_ends_at {
            return Ok(());
        }
        let written = store::reviews_of_booking(&self.db, booking_id).await.map_err(db_err)?;
        let mut events = Vec::new();
        for (role, recipient) in [(Role::Guest, stay.guest_id), (Role::Host, stay.host_id)] {
            if written.iter().any(|r| r.author_role == role.as_str()) {
                continue;
            }
            let requested = ReviewRequested {
                booking_id,
                listing_id: stay.listing_id,
                recipient_id: recipient,
                role: role.as_str().to_owned(),
                window_ends_at: stay.window_ends_at,
            };
            events.push(event(REVIEW_REQUESTED, &requested).map_err(db_err)?);
        }
        store::append_events(&self.db, &events).await.map_err(db_err)?;
        self.bus.poke();
        Ok(())
    }
}

/// The mean of `(count, sum)`.
fn mean((count, sum): (i64, i64)) -> Option<f64> {
    (count > 0).then(|| sum as f64 / count as f64)
}

pub(crate) fn published_event(r: &ReviewRow) -> Result<Envelope, DbError> {
    event(REVIEW_PUBLISHED, &ReviewPublished { review: view(r) })
}

pub(crate) fn summary_of(row: Option<&RatingRow>, prior: Option<f64>, s: &ReviewSettings) -> ReviewSummary {
    let Some(row) = row.filter(|r| r.count > 0) else {
        return ReviewSummary { count: 0, average: None, ratings: BTreeMap::new(), score: None };
    };
    let shown = row.count >= s.shown_from;
    let n = row.count as f64;
    let sums: BTreeMap<String, i64> = serde_json::from_str(&row.sums).unwrap_or_default();
    let mean = row.overall_sum as f64 / n;
    let score = domain::bayesian_score(row.count, row.overall_sum, prior.unwrap_or(mean), s.prior_weight);
    ReviewSummary {
        count: row.count,
        average: shown.then(|| domain::rounded(mean)),
        ratings: if shown {
            sums.iter().map(|(k, v)| (k.clone(), domain::rounded(*v as f64 / n))).collect()
        } else {
            BTreeMap::new()
        },
        score: score.map(domain::rounded),
    }
}

fn parse_cursor(cursor: &str) -> Result<(Instant, Id), Problem> {
    let bad = || Problem::field("cursor", "not a valid cursor");
    let (at, id) = cursor.split_once('_').ok_or_else(bad)?;
    let at: i64 = at.parse().map_err(|_| bad())?;
    let at = chrono::DateTime::from_timestamp_micros(at).map(Instant::from).ok_or_else(bad)?;
    Ok((at, id.parse().map_err(|_| bad())?))
}

fn next_cursor(rows: &[ReviewRow], limit: i64) -> Option<String> {
    if (rows.len() as i64) < limit {
        return None;
    }
    let last = rows.last()?;
    Some(format!("{}_{}", last.published_at?.0.timestamp_micros(), last.id))
}

pub(crate) fn view(r: &ReviewRow) -> Review {
    Review {
        id: r.id,
        booking_id: r.booking_id,
        listing_id: r.listing_id,
        author: Author { id: r.author_id, display_name: r.author_name.clone() },
        subject_id: r.subject_id,
        author_role: r.author_role.clone(),
        rating: r.rating,
        ratings: serde_json::from_str(&r.ratings).unwrap_or_default(),
        comment: r.comment.clone(),
        response: r
            .response
            .clone()
            .map(|comment| Response { comment, created_at: r.response_at.unwrap_or(r.created_at) }),
        status: r.status.clone(),
        created_at: r.created_at,
        published_at: r.published_at,
    }
}

#[async_trait]
impl EventHandler for ReviewService {
    async fn handle(&self, event: &Envelope) -> Result<(), String> {
        match event.event_type.as_str() {
            BOOKING_COMPLETED => {
                let e: BookingEvent = event.decode()?;
                self.stay_completed(e.booking).await.map_err(|p| p.to_string())
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl JobHandler for ReviewService {
    async fn run(&self, job: &Job) -> Result<(), String> {
        let outcome = match job.kind.as_str() {
            REVEAL_JOB => self.reveal(job.decode::<StayDue>()?.booking_id).await,
            REMIND_JOB => self.remind(job.decode::<StayDue>()?.booking_id).await,
            RESUM_JOB => self.resum(job.decode::<ListingDue>()?.listing_id).await,
            MARKET_JOB => self.market_moved().await,
            other => return Err(format!("no handler for {other}")),
        };
        outcome.map_err(|p| p.to_string())
    }
}

#[async_trait]
impl Reviews for ReviewService {
    async fn listing_summary(&self, listing_id: Id) -> Result<ReviewSummary, Problem> {
        self.summary(listing_id).await
    }
}
