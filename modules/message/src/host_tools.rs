//! Host tools: saved quick replies with placeholders, and messages scheduled
//! relative to a booking's check-in in the listing's time zone (a durable
//! job sends them, unless the booking is no longer confirmed by then).

use async_trait::async_trait;
use hometrip_booking::api::BookingStatus;
use hometrip_kernel::jobs::{Job, JobHandler, NewJob};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{ErrorCode, Id, Problem};
use serde::{Deserialize, Serialize};

use crate::domain::{self, Filling};
use crate::service::{db_err, Draft, MessageService, BODY_MAX_CHARS};
use crate::store::{self, ConversationRow, QuickReplyRow, ScheduledRow};

pub const SCHEDULED_JOB: &str = "message.scheduled_send";
/// Recomputes a host's response rate and time.
pub const RESPONSIVENESS_JOB: &str = "message.responsiveness";

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuickReply {
    pub id: Id,
    pub title: String,
    /// May hold `{guest_name}`, `{listing_title}`, `{check_in}`, `{check_out}`
    /// and `{listing_address}` (the address only for a confirmed guest).
    pub body: String,
    pub created_at: Instant,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQuickReply {
    pub title: String,
    pub body: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduledMessage {
    pub id: Id,
    pub conversation_id: Id,
    pub booking_id: Id,
    /// The template; placeholders are filled when it is sent.
    pub body: String,
    pub send_at: Instant,
    /// `pending`, `sent`, `skipped` (the booking was no longer confirmed) or `cancelled`.
    pub status: String,
    pub message_id: Option<Id>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScheduledMessage {
    /// The text, or a quick reply's.
    pub body: Option<String>,
    pub quick_reply_id: Option<Id>,
    /// Days before check-in (0: the day of check-in).
    pub days_before_check_in: u32,
    /// Local time at the listing, `HH:MM`.
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ScheduledDue {
    id: Id,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ResponsivenessDue {
    host_id: Id,
}

/// Response rate (percent) and median minutes to a first answer, from each
/// inquiry's start and first answer, at `now`: an inquiry counts once it was
/// answered or its 24 hours are over.
pub fn responsiveness(inquiries: &[(Instant, Option<Instant>)], now: Instant) -> (u32, u32, Option<u8>, Option<i64>) {
    let day = chrono::Duration::hours(24);
    let counted: Vec<&(Instant, Option<Instant>)> =
        inquiries.iter().filter(|(start, answer)| answer.is_some() || now.0 - start.0 >= day).collect();
    let responded =
        counted.iter().filter(|(start, answer)| answer.is_some_and(|a| a.0 - start.0 <= day)).count() as u32;
    let total = counted.len() as u32;
    let rate = (total > 0).then(|| ((responded * 100 + total / 2) / total) as u8);
    let mut minutes: Vec<i64> =
        counted.iter().filter_map(|(start, answer)| answer.map(|a| (a.0 - start.0).num_minutes().max(0))).collect();
    minutes.sort_unstable();
    let median = (!minutes.is_empty()).then(|| minutes[minutes.len() / 2]);
    (total, responded, rate, median)
}

fn quick_view(r: QuickReplyRow) -> QuickReply {
    QuickReply { id: r.id, title: r.title, body: r.body, created_at: r.created_at }
}

fn scheduled_view(r: ScheduledRow) -> ScheduledMessage {
    ScheduledMessage {
        id: r.id,
        conversation_id: r.conversation_id,
        booking_id: r.booking_id,
        body: r.body,
        send_at: r.send_at,
        status: r.status,
        message_id: r.message_id,
    }
}

fn check_template(body: &str) -> Result<(), Problem> {
    let chars = body.chars().count();
    if body.trim().is_empty() || chars > BODY_MAX_CHARS {
        return Err(Problem::field("body", &format!("must be 1 to {BODY_MAX_CHARS} characters")));
    }
    let unknown = domain::unknown_placeholders(body);
    if !unknown.is_empty() {
        return Err(Problem::field(
            "body",
            &format!("unknown placeholders: {} (known: {})", unknown.join(", "), domain::PLACEHOLDERS.join(", ")),
        ));
    }
    Ok(())
}

impl MessageService {
    pub async fn quick_replies(&self, host: Id) -> Result<Vec<QuickReply>, Problem> {
        Ok(store::quick_replies_of(&self.db, host).await.map_err(db_err)?.into_iter().map(quick_view).collect())
    }

    pub async fn add_quick_reply(&self, host: Id, new: NewQuickReply) -> Result<QuickReply, Problem> {
        let title = new.title.trim();
        if title.is_empty() || title.chars().count() > 100 {
            return Err(Problem::field("title", "must be 1 to 100 characters"));
        }
        check_template(&new.body)?;
        if store::quick_replies_of(&self.db, host).await.map_err(db_err)?.len() >= 100 {
            return Err(Problem::new(ErrorCode::Conflict, "at most 100 quick replies"));
        }
        let row = QuickReplyRow {
            id: Id::new(),
            host_id: host,
            title: title.to_owned(),
            body: new.body,
            created_at: Instant::now(),
        };
        store::add_quick_reply(&self.db, &row).await.map_err(db_err)?;
        Ok(quick_view(row))
    }

    pub async fn delete_quick_reply(&self, host: Id, id: Id) -> Result<(), Problem> {
        if store::delete_quick_reply(&self.db, host, id).await.map_err(db_err)? {
            Ok(())
        } else {
            Err(Problem::not_found("quick reply"))
        }
    }

    /// The placeholders' values in a conversation, as the host sends now.
    async fn filling(&self, conv: &ConversationRow) -> Result<Filling, Problem> {
        let guest_name = self.users.profile(conv.guest_id).await?.map(|p| p.display_name).unwrap_or_default();
        let listing = self.listings.listing(conv.listing_id).await?;
        let booking = match conv.booking_id {
            Some(id) => self.bookings.booking(id).await?,
            None => None,
        };
        let confirmed =
            booking.as_ref().is_some_and(|b| matches!(b.status, BookingStatus::Confirmed | BookingStatus::Completed));
        let address = listing.as_ref().filter(|_| confirmed).map(|l| {
            let a = &l.address;
            [a.line1.as_str(), a.postal_code.as_str(), a.city.as_str()]
                .iter()
                .filter(|p| !p.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        });
        Ok(Filling {
            guest_name,
            listing_title: listing.map(|l| l.title).unwrap_or_default(),
            check_in: booking.as_ref().map(|b| b.check_in.to_string()),
            check_out: booking.as_ref().map(|b| b.check_out.to_string()),
            listing_address: address,
        })
    }

    /// The body of a send with a quick reply, filled for this conversation.
    pub(crate) async fn quick_reply_body(&self, conv: &ConversationRow, sender: Id, id: Id) -> Result<String, Problem> {
        if sender != conv.host_id {
            return Err(Problem::field("quick_reply_id", "quick replies are the host's"));
        }
        let reply = store::quick_reply(&self.db, sender, id)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Problem::not_found("quick reply"))?;
        Ok(domain::fill(&reply.body, &self.filling(conv).await?))
    }

    async fn host_conversation(&self, host: Id, id: Id) -> Result<ConversationRow, Problem> {
        let conv = store::conversation(&self.db, id)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Problem::not_found("conversation"))?;
        if conv.host_id != host {
            return Err(Problem::not_found("conversation"));
        }
        Ok(conv)
    }

    pub async fn schedule(&self, host: Id, id: Id, new: NewScheduledMessage) -> Result<ScheduledMessage, Problem> {
        let conv = self.host_conversation(host, id).await?;
        let body = match (new.body, new.quick_reply_id) {
            (Some(body), None) => body,
            (None, Some(q)) => {
                store::quick_reply(&self.db, host, q)
                    .await
                    .map_err(db_err)?
                    .ok_or_else(|| Problem::not_found("quick reply"))?
                    .body
            }
            _ => return Err(Problem::field("body", "give a body or a quick_reply_id")),
        };
        check_template(&body)?;
        if new.days_before_check_in > 60 {
            return Err(Problem::field("days_before_check_in", "at most 60"));
        }
        let at = chrono::NaiveTime::parse_from_str(&new.at, "%H:%M")
            .map_err(|_| Problem::field("at", "a local time, HH:MM"))?;
        let booking_id =
            conv.booking_id.ok_or_else(|| Problem::field("conversation", "no booking in this conversation"))?;
        let booking = self.bookings.booking(booking_id).await?.ok_or_else(|| Problem::not_found("booking"))?;
        let tz: chrono_tz::Tz = booking.time_zone.parse().map_err(|_| Problem::internal("listing time zone"))?;
        let send_at = domain::local_send_at(booking.check_in, new.days_before_check_in, at, tz)
            .ok_or_else(|| Problem::field("at", "no such local time"))?;
        if Instant(send_at) <= self.jobs.clock().now() {
            return Err(Problem::field("at", "that time has passed"));
        }
        let row = ScheduledRow {
            id: Id::new(),
            conversation_id: conv.id,
            booking_id,
            host_id: host,
            body,
            send_at: Instant(send_at),
            status: "pending".to_owned(),
            message_id: None,
            created_at: Instant::now(),
        };
        let job =
            NewJob::new(SCHEDULED_JOB, format!("scheduled:{}", row.id), row.send_at, &ScheduledDue { id: row.id });
        store::schedule(&self.db, &row, &job).await.map_err(db_err)?;
        self.jobs.scheduled(&[job]);
        Ok(scheduled_view(row))
    }

    pub async fn scheduled_messages(&self, host: Id, id: Id) -> Result<Vec<ScheduledMessage>, Problem> {
        self.host_conversation(host, id).await?;
        Ok(store::scheduled_of(&self.db, id).await.map_err(db_err)?.into_iter().map(scheduled_view).collect())
    }

    pub async fn cancel_scheduled(&self, host: Id, id: Id, scheduled: Id) -> Result<(), Problem> {
        self.host_conversation(host, id).await?;
        let row = store::scheduled(&self.db, scheduled).await.map_err(db_err)?.filter(|r| r.conversation_id == id);
        let row = row.ok_or_else(|| Problem::not_found("scheduled message"))?;
        if !store::settle_scheduled(&self.db, row.id, "cancelled", None).await.map_err(db_err)? {
            return Err(Problem::new(ErrorCode::Conflict, format!("the message is {} already", row.status)));
        }
        Ok(())
    }

    async fn send_scheduled(&self, id: Id) -> Result<(), Problem> {
        let Some(row) = store::scheduled(&self.db, id).await.map_err(db_err)? else { return Ok(()) };
        if row.status != "pending" {
            return Ok(());
        }
        let booking = self.bookings.booking(row.booking_id).await?;
        if !booking.is_some_and(|b| b.status == BookingStatus::Confirmed) {
            store::settle_scheduled(&self.db, id, "skipped", None).await.map_err(db_err)?;
            return Ok(());
        }
        let conv = store::conversation(&self.db, row.conversation_id)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Problem::not_found("conversation"))?;
        let body = domain::fill(&row.body, &self.filling(&conv).await?);
        // Keyed by the schedule: a rerun after a crash finds the message sent.
        let draft =
            Draft { body, client_message_id: Some(format!("scheduled:{id}")), quick_reply_id: None, files: Vec::new() };
        let (message, _) = self.send_in(&conv, row.host_id, draft).await?;
        store::settle_scheduled(&self.db, id, "sent", Some(message.id)).await.map_err(db_err)?;
        Ok(())
    }
}

impl MessageService {
    /// Recomputes a host's responsiveness soon (after an answer, or when an
    /// inquiry's 24 hours are over), at most once a minute per host.
    pub(crate) async fn responsiveness_due(&self, host: Id, at: Instant) -> Result<(), Problem> {
        let minute = at.unix() / 60;
        let job = NewJob::new(
            RESPONSIVENESS_JOB,
            format!("responsiveness:{host}:{minute}"),
            at,
            &ResponsivenessDue { host_id: host },
        );
        store::schedule_job(&self.db, &job).await.map_err(db_err)?;
        self.jobs.scheduled(&[job]);
        Ok(())
    }

    async fn publish_responsiveness(&self, host: Id) -> Result<(), Problem> {
        let now = self.jobs.clock().now();
        let inquiries =
            store::first_answers(&self.db, host, now.minus(chrono::Duration::days(30))).await.map_err(db_err)?;
        let (inquiries, responded, response_rate, response_minutes) = responsiveness(&inquiries, now);
        let figures = hometrip_user::api::HostResponsiveness {
            host_id: host,
            inquiries,
            responded,
            response_rate,
            response_minutes,
        };
        let event = hometrip_kernel::events::Envelope::new(
            crate::api::MODULE,
            hometrip_user::api::HOST_RESPONSIVENESS,
            &figures,
        )
        .map_err(db_err)?;
        store::publish(&self.db, &event).await.map_err(db_err)
    }
}

#[async_trait]
impl JobHandler for MessageService {
    async fn run(&self, job: &Job) -> Result<(), String> {
        if job.kind == RESPONSIVENESS_JOB {
            let due: ResponsivenessDue = job.decode()?;
            return self.publish_responsiveness(due.host_id).await.map_err(|p| p.to_string());
        }
        let due: ScheduledDue = job.decode()?;
        self.send_scheduled(due.id).await.map_err(|p| p.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responsiveness_counts_inquiries_once_answered_or_a_day_old() {
        let t = |h: i64| Instant(chrono::DateTime::from_timestamp(1_800_000_000 + h * 3600, 0).unwrap());
        let now = t(100);
        let inquiries = [
            (t(0), Some(t(1))),   // answered in an hour
            (t(10), Some(t(40))), // answered, late
            (t(50), None),        // never: counts, unanswered
            (t(90), None),        // 10 hours old: not counted yet
        ];
        let (total, responded, rate, median) = responsiveness(&inquiries, now);
        assert_eq!((total, responded), (3, 1));
        assert_eq!(rate, Some(33));
        assert_eq!(median, Some(30 * 60));
        assert_eq!(responsiveness(&[], now), (0, 0, None, None));
    }
}
