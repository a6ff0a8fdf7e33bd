//! From the other modules' events to notifications on each channel the
//! recipient keeps on: the in-app copy is stored (with its
//! `notification.created` event) in the same transaction that schedules a
//! durable job per outside delivery (email, SMS, each push subscription), so
//! a provider failing never loses the in-app copy, each delivery is retried
//! with backoff and parked when it keeps failing, and one (event, channel,
//! recipient) is delivered once: the job's key. Quiet hours hold SMS and push
//! until they end, in the recipient's time zone.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{TimeZone as _, Timelike as _};
use hometrip_booking::api::{self as booking, BookingEvent};
use hometrip_kernel::events::Envelope;
use hometrip_kernel::jobs::{Job, JobHandler, NewJob};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{Id, Problem};
use hometrip_message::api::{ConversationRead, MessageCreated, CONVERSATION_READ, MESSAGE_CREATED};
use hometrip_payment::api::{PayoutEvent, PAYOUT_PAID};
use hometrip_review::api::{ReviewPublished, ReviewRequested, REVIEW_PUBLISHED, REVIEW_REQUESTED};
use serde::{Deserialize, Serialize};

use crate::api::{Notification, NotificationCreated, Notifications, MODULE, NOTIFICATION_CREATED};
use crate::catalogue::{self, Channels, Text, Vars};
use crate::channels::PushOutcome;
use crate::service::NotificationService;
use crate::store::{self, DigestRow, NotificationRow};

pub const DELIVER_JOB: &str = "notification.deliver";
pub const DIGEST_JOB: &str = "notification.message_digest";
pub const REMINDER_JOB: &str = "notification.booking_reminder";
/// A delivery that failed for good, parked for admins to replay.
pub const DELIVERY_FAILED: &str = "notification.delivery_failed";
/// The dead letters' subscriber: a replay delivers again.
pub const DELIVERIES: &str = "notification.deliveries";

pub const ACTIVITY_EVENTS: &[&str] = &[
    booking::BOOKING_AWAITING_HOST,
    booking::BOOKING_CONFIRMED,
    booking::BOOKING_DECLINED,
    booking::BOOKING_EXPIRED,
    booking::BOOKING_CANCELLED_BY_GUEST,
    booking::BOOKING_CANCELLED_BY_HOST,
    MESSAGE_CREATED,
    CONVERSATION_READ,
    PAYOUT_PAID,
    REVIEW_REQUESTED,
    REVIEW_PUBLISHED,
];

/// One delivery outside the platform.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub(crate) enum Delivery {
    Email { recipient: Id, text: Text },
    Sms { recipient: Id, text: Text },
    Push { recipient: Id, subscription: Id, kind: String, text: Text },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DigestDue {
    recipient: Id,
    conversation: Id,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReminderDue {
    booking_id: Id,
}

/// A user's preferences with the defaults filled in.
pub struct Preferences {
    pub channels: BTreeMap<String, Channels>,
    pub quiet: Option<(u32, u32)>,
    pub time_zone: chrono_tz::Tz,
}

pub(crate) fn db_err(e: hometrip_kernel::db::DbError) -> Problem {
    Problem::from(e)
}

impl NotificationService {
    pub(crate) async fn preferences_of(&self, user: Id) -> Result<Preferences, Problem> {
        let mut channels = catalogue::default_preferences();
        let Some(row) = store::preferences(&self.db, user).await.map_err(db_err)? else {
            return Ok(Preferences { channels, quiet: None, time_zone: chrono_tz::UTC });
        };
        let chosen: BTreeMap<String, Channels> = serde_json::from_str(&row.channels).unwrap_or_default();
        channels.extend(chosen.into_iter().filter(|(k, _)| catalogue::is_kind(k)));
        let quiet = match (row.quiet_from.as_deref(), row.quiet_to.as_deref()) {
            (Some(f), Some(t)) => catalogue::parse_hhmm(f).zip(catalogue::parse_hhmm(t)),
            _ => None,
        };
        Ok(Preferences { channels, quiet, time_zone: row.time_zone.parse().unwrap_or(chrono_tz::UTC) })
    }

    /// When a held channel may go: now, or the end of the quiet hours.
    fn after_quiet_hours(&self, prefs: &Preferences, now: Instant) -> Instant {
        let Some((from, to)) = prefs.quiet else { return now };
        let local = now.0.with_timezone(&prefs.time_zone);
        let minutes = local.hour() * 60 + local.minute();
        if !catalogue::in_quiet_hours(minutes, from, to) {
            return now;
        }
        // The next local `to`: today's if still ahead, else tomorrow's (a
        // time skipped by a DST change is taken at the next valid instant).
        let mut day = local.date_naive();
        if minutes >= to {
            day = day.succ_opt().unwrap_or(day);
        }
        let end = day.and_hms_opt(to / 60, to % 60, 0).unwrap_or_default();
        let resolved = (0..4)
            .find_map(|h| prefs.time_zone.from_local_datetime(&(end + chrono::Duration::hours(h))).earliest())
            .map(|t| Instant(t.with_timezone(&chrono::Utc)));
        resolved.unwrap_or(now)
    }

    /// Notifies `recipient` of `kind` on their channels; `source` names the
    /// cause (an event), making the whole dispatch idempotent.
    pub(crate) async fn dispatch(&self, kind: &str, recipient: Id, vars: &Vars, source: &str) -> Result<(), Problem> {
        let profile = self.users.profile(recipient).await?.ok_or_else(|| Problem::not_found("user"))?;
        let prefs = self.preferences_of(recipient).await?;
        let chosen = prefs.channels.get(kind).copied().unwrap_or_else(|| catalogue::default_channels(kind));
        let text = catalogue::render(kind, &profile.locale, vars);
        let now = self.jobs.clock().now();
        let held = self.after_quiet_hours(&prefs, now);
        let key = |channel: &str| format!("notify:{source}:{kind}:{recipient}:{channel}");
        let mut jobs = Vec::new();
        if chosen.email && profile.notification_channels.email {
            let d = Delivery::Email { recipient, text: text.clone() };
            jobs.push(NewJob::new(DELIVER_JOB, key("email"), now, &d));
        }
        // The profile's channel switches (the user module's) turn email and
        // push off everywhere; SMS is opted into per kind, to a verified number.
        if chosen.sms {
            let d = Delivery::Sms { recipient, text: text.clone() };
            jobs.push(NewJob::new(DELIVER_JOB, key("sms"), held, &d));
        }
        if chosen.push && profile.notification_channels.push {
            for sub in store::subscriptions(&self.db, recipient).await.map_err(db_err)? {
                let d = Delivery::Push { recipient, subscription: sub.id, kind: kind.to_owned(), text: text.clone() };
                jobs.push(NewJob::new(DELIVER_JOB, key(&format!("push:{}", sub.id)), held, &d));
            }
        }
        let (row, event) = if chosen.in_app {
            let row = NotificationRow {
                id: Id::new(),
                user_id: recipient,
                kind: kind.to_owned(),
                title: text.title.clone(),
                body: text.body.clone(),
                link: text.link.clone(),
                source_key: key("in_app"),
                created_at: Instant::now(),
                read_at: None,
            };
            let created = NotificationCreated { user_id: recipient, notification: view(&row) };
            let event = Envelope::new(MODULE, NOTIFICATION_CREATED, &created).map_err(db_err)?;
            (Some(row), Some(event))
        } else {
            (None, None)
        };
        store::insert_notification(&self.db, row.as_ref(), event.as_ref(), &jobs).await.map_err(db_err)?;
        self.bus.poke();
        self.jobs.scheduled(&jobs);
        Ok(())
    }

    async fn who(&self, user: Id) -> String {
        match self.users.profile(user).await {
            Ok(Some(p)) => p.display_name,
            _ => String::new(),
        }
    }

    async fn listing_title(&self, listing: Id) -> Result<String, Problem> {
        Ok(self.listings.listing(listing).await?.map(|l| l.title).unwrap_or_default())
    }

    async fn booking_vars(&self, b: &booking::Booking, who: Id) -> Result<Vars, Problem> {
        Ok(Vars {
            who: self.who(who).await,
            listing: self.listing_title(b.listing_id).await?,
            dates: format!("{} → {}", b.check_in, b.check_out),
            link: format!("/trips/{}", b.id),
            ..Vars::default()
        })
    }

    /// The catalogue's notifications from other modules' events.
    pub(crate) async fn activity(&self, event: &Envelope) -> Result<(), String> {
        let source = event.id.to_string();
        let result = match event.event_type.as_str() {
            MESSAGE_CREATED => self.message_created(event.decode()?).await,
            CONVERSATION_READ => {
                let e: ConversationRead = event.decode()?;
                store::read_digest(&self.db, e.reader_id, e.participants.conversation_id, e.up_to_seq)
                    .await
                    .map_err(db_err)
            }
            PAYOUT_PAID => {
                let PayoutEvent { payout } = event.decode()?;
                let minor = payout.amount.amount;
                let amount = format!("{}.{:02} {}", minor / 100, (minor % 100).abs(), payout.amount.currency);
                let vars = Vars { amount, link: "/host/earnings".to_owned(), ..Vars::default() };
                self.dispatch("payout_paid", payout.host_id, &vars, &source).await
            }
            REVIEW_REQUESTED => self.review_requested(event.decode()?, &source).await,
            REVIEW_PUBLISHED => self.review_published(event.decode()?, &source).await,
            kind => self.booking_event(kind, event.decode::<BookingEvent>()?.booking, &source).await,
        };
        result.map_err(|p| p.to_string())
    }

    async fn review_requested(&self, e: ReviewRequested, source: &str) -> Result<(), Problem> {
        let vars = Vars {
            listing: self.listing_title(e.listing_id).await?,
            dates: e.window_ends_at.0.format("%Y-%m-%d").to_string(),
            link: format!("/trips/{}/review", e.booking_id),
            ..Vars::default()
        };
        self.dispatch("review_requested", e.recipient_id, &vars, source).await
    }

    /// The person a review is about learns it is public.
    async fn review_published(&self, e: ReviewPublished, source: &str) -> Result<(), Problem> {
        let r = e.review;
        let link = if r.author_role == "guest" {
            format!("/listings/{}#reviews", r.listing_id)
        } else {
            format!("/users/{}#reviews", r.subject_id)
        };
        let vars = Vars {
            who: r.author.display_name.clone(),
            listing: self.listing_title(r.listing_id).await?,
            link,
            ..Vars::default()
        };
        self.dispatch("review_published", r.subject_id, &vars, source).await
    }

    async fn booking_event(&self, event_type: &str, b: booking::Booking, source: &str) -> Result<(), Problem> {
        let for_host = self.booking_vars(&b, b.guest_id).await?;
        let for_guest = Vars { who: self.who(b.host_id).await, ..for_host.clone() };
        match event_type {
            booking::BOOKING_AWAITING_HOST => self.dispatch("booking_requested", b.host_id, &for_host, source).await,
            booking::BOOKING_CONFIRMED => {
                // The day before check-in, unless cancelled by then.
                let at = b.check_in_at.minus(chrono::Duration::days(1));
                if at > self.jobs.clock().now() {
                    let job =
                        NewJob::new(REMINDER_JOB, format!("reminder:{}", b.id), at, &ReminderDue { booking_id: b.id });
                    store::insert_notification(&self.db, None, None, std::slice::from_ref(&job))
                        .await
                        .map_err(db_err)?;
                    self.jobs.scheduled(&[job]);
                }
                self.dispatch("booking_confirmed", b.guest_id, &for_guest, source).await?;
                self.dispatch("booking_confirmed", b.host_id, &for_host, source).await
            }
            booking::BOOKING_DECLINED | booking::BOOKING_EXPIRED => {
                self.dispatch("booking_declined", b.guest_id, &for_guest, source).await
            }
            _ => {
                self.dispatch("booking_cancelled", b.guest_id, &for_guest, source).await?;
                self.dispatch("booking_cancelled", b.host_id, &for_host, source).await
            }
        }
    }

    /// A message starts (or joins) its recipient's digest, due after the
    /// delay; writing a message reads the conversation for its sender.
    async fn message_created(&self, e: MessageCreated) -> Result<(), Problem> {
        let p = e.participants;
        let m = &e.message;
        store::read_digest(&self.db, m.sender_id, p.conversation_id, m.seq).await.map_err(db_err)?;
        let recipient = p.other(m.sender_id);
        // From the process's clock (tests move it), not the message's own time.
        let due = self.jobs.clock().now().plus(chrono::Duration::minutes(self.settings.message_delay_minutes));
        let row = DigestRow {
            recipient_id: recipient,
            conversation_id: p.conversation_id,
            sender_id: m.sender_id,
            listing_id: e.listing_id,
            first_seq: m.seq,
            last_seq: m.seq,
            due_at: due,
        };
        let payload = DigestDue { recipient, conversation: p.conversation_id };
        let job = NewJob::new(
            DIGEST_JOB,
            format!("digest:{recipient}:{}:{}", row.conversation_id, row.first_seq),
            row.due_at,
            &payload,
        );
        let added = store::add_to_digest(&self.db, &row, &job).await.map_err(db_err)?;
        if added {
            self.jobs.poke();
        }
        Ok(())
    }

    async fn digest_due(&self, due: DigestDue) -> Result<(), Problem> {
        let Some(d) = store::take_digest(&self.db, due.recipient, due.conversation).await.map_err(db_err)? else {
            return Ok(()); // read in time
        };
        let vars = Vars {
            who: self.who(d.sender_id).await,
            listing: self.listing_title(d.listing_id).await?,
            count: d.last_seq - d.first_seq + 1,
            link: format!("/inbox/{}", d.conversation_id),
            ..Vars::default()
        };
        let source = format!("digest:{}:{}", d.conversation_id, d.first_seq);
        self.dispatch("message_received", d.recipient_id, &vars, &source).await
    }

    async fn reminder_due(&self, due: ReminderDue) -> Result<(), Problem> {
        let Some(b) = self.bookings.booking(due.booking_id).await? else { return Ok(()) };
        if b.status != booking::BookingStatus::Confirmed {
            return Ok(());
        }
        let for_host = self.booking_vars(&b, b.guest_id).await?;
        let for_guest = Vars { who: self.who(b.host_id).await, ..for_host.clone() };
        let source = format!("reminder:{}", b.id);
        self.dispatch("booking_reminder", b.guest_id, &for_guest, &source).await?;
        self.dispatch("booking_reminder", b.host_id, &for_host, &source).await
    }

    /// Delivers again a delivery parked in the dead letters.
    pub(crate) async fn redeliver(&self, event: &Envelope) -> Result<(), String> {
        self.deliver(&event.id.to_string(), event.decode()?).await
    }

    async fn deliver(&self, id: &str, d: Delivery) -> Result<(), String> {
        let id = id.to_owned();
        match d {
            Delivery::Email { recipient, text } => {
                let Some(p) = self.users.profile(recipient).await.map_err(|p| p.to_string())? else { return Ok(()) };
                let url = format!("{}{}", self.public_url.trim_end_matches('/'), text.link);
                let rendered = crate::domain::render_notice(&text.title, &text.body, &url, &p.locale);
                self.send(&id, &p.email, rendered).await
            }
            Delivery::Sms { recipient, text } => {
                // Only to a verified number; none (any more): nothing to send.
                let Some(phone) = store::phone(&self.db, recipient).await.map_err(|e| e.to_string())? else {
                    return Ok(());
                };
                if !phone.verified {
                    return Ok(());
                }
                let body = catalogue::sms_text(&text, &self.public_url);
                if let Some((sid, status)) = self.sms.send(&id, &phone.phone, &body).await? {
                    store::record_sms(&self.db, &sid, recipient, &status).await.map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Delivery::Push { subscription, kind, text, .. } => {
                let Some(sub) = store::subscription(&self.db, subscription).await.map_err(|e| e.to_string())? else {
                    return Ok(()); // unsubscribed since
                };
                let payload =
                    serde_json::json!({"kind": kind, "title": text.title, "body": text.body, "link": text.link});
                match self.push.send(&sub.endpoint, &sub.p256dh, &sub.auth, payload.to_string().as_bytes()).await? {
                    PushOutcome::Delivered => Ok(()),
                    PushOutcome::Gone => {
                        store::delete_subscription(&self.db, sub.id, None).await.map_err(|e| e.to_string())?;
                        Ok(())
                    }
                }
            }
        }
    }
}

pub(crate) fn view(row: &NotificationRow) -> Notification {
    Notification {
        id: row.id,
        kind: row.kind.clone(),
        title: row.title.clone(),
        body: row.body.clone(),
        link: row.link.clone(),
        created_at: row.created_at,
        read_at: row.read_at,
    }
}

#[async_trait]
impl JobHandler for NotificationService {
    async fn run(&self, job: &Job) -> Result<(), String> {
        match job.kind.as_str() {
            DELIVER_JOB => {
                let delivery: Delivery = job.decode()?;
                match self.deliver(&job.id.to_string(), delivery.clone()).await {
                    // The last attempt: parked where admins list dead letters.
                    Err(error) if job.attempts >= self.jobs.max_attempts() => {
                        let parked = Envelope::new(MODULE, DELIVERY_FAILED, &delivery).map_err(|e| e.to_string())?;
                        self.bus.park_for_replay(DELIVERIES, &parked, &error).await.map_err(|e| e.to_string())
                    }
                    outcome => outcome,
                }
            }
            DIGEST_JOB => self.digest_due(job.decode()?).await.map_err(|p| p.to_string()),
            REMINDER_JOB => self.reminder_due(job.decode()?).await.map_err(|p| p.to_string()),
            other => Err(format!("no handler for {other}")),
        }
    }
}

#[async_trait]
impl Notifications for NotificationService {
    async fn after(&self, user: Id, after: Option<Id>, limit: u32) -> Result<Vec<Notification>, Problem> {
        let rows = store::after(&self.db, user, after, i64::from(limit.clamp(1, 500))).await.map_err(db_err)?;
        Ok(rows.iter().map(view).collect())
    }
}
