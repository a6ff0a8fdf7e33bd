//! The in-process implementation of the message module: conversations,
//! sends (masked until a confirmed booking, idempotent by client id), read
//! positions, attachments, and the booking events that tie conversations to
//! stays and lift masking.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use hometrip_booking::api::{BookingEvent, Bookings, BOOKING_AWAITING_HOST, BOOKING_CONFIRMED, BOOKING_CREATED};
use hometrip_kernel::cache::{Limit, RateLimiter};
use hometrip_kernel::db::{Db, DbError};
use hometrip_kernel::events::{Envelope, EventBus, EventHandler};
use hometrip_kernel::files::FileStore;
use hometrip_kernel::jobs::{JobHandler, Scheduler};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{ErrorCode, Id, Problem};
use hometrip_listing::api::Listings;
use hometrip_user::api::Users;
use serde::Deserialize;

use crate::api::*;
use crate::domain::{self, AttachmentKind};
use crate::store::{self, AttachmentRow, ConversationRow, MessageRow, NewMessage};

/// Longest message body, in characters.
pub const BODY_MAX_CHARS: usize = 5_000;
/// Longest side of an image attachment once re-encoded.
const IMAGE_SIZES: &[u32] = &[2048];

pub struct MessageService {
    pub(crate) db: Db,
    bus: Arc<EventBus>,
    files: FileStore,
    pub(crate) listings: Arc<dyn Listings>,
    pub(crate) bookings: Arc<dyn Bookings>,
    pub(crate) users: Arc<dyn Users>,
    pub(crate) jobs: Arc<Scheduler>,
    limiter: RateLimiter,
    pub settings: MessageSettings,
}

/// What the message module is built from.
pub struct MessageDeps {
    pub db: Db,
    pub bus: Arc<EventBus>,
    pub files: FileStore,
    pub listings: Arc<dyn Listings>,
    pub bookings: Arc<dyn Bookings>,
    pub users: Arc<dyn Users>,
    pub jobs: Arc<Scheduler>,
    pub limiter: RateLimiter,
    pub settings: MessageSettings,
}

/// Who is asking: a participant, or an admin reading for a dispute.
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    pub id: Id,
    pub admin: bool,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartConversation {
    pub listing_id: Id,
    pub booking_id: Option<Id>,
    pub body: String,
}

/// An upload of a send, before it is checked.
pub struct Upload {
    pub bytes: Vec<u8>,
}

pub struct Draft {
    pub body: String,
    pub client_message_id: Option<String>,
    /// The host's saved reply, filled for the conversation (instead of `body`).
    pub quick_reply_id: Option<Id>,
    pub files: Vec<Upload>,
}

pub(crate) fn db_err(e: DbError) -> Problem {
    Problem::from(e)
}

fn check_body(body: &str, has_files: bool) -> Result<(), Problem> {
    let chars = body.chars().count();
    if chars > BODY_MAX_CHARS {
        return Err(Problem::field("body", &format!("must be at most {BODY_MAX_CHARS} characters")));
    }
    if body.trim().is_empty() && !has_files {
        return Err(Problem::field("body", "must not be empty"));
    }
    Ok(())
}

impl MessageService {
    pub fn new(d: MessageDeps) -> Arc<Self> {
        Arc::new(MessageService {
            db: d.db,
            bus: d.bus,
            files: d.files,
            listings: d.listings,
            bookings: d.bookings,
            users: d.users,
            jobs: d.jobs,
            limiter: d.limiter,
            settings: d.settings,
        })
    }

    /// Bookings open their conversation; a confirmed one lifts masking.
    pub async fn subscribe(self: &Arc<Self>) {
        let handler: Arc<dyn EventHandler> = Arc::clone(self) as Arc<dyn EventHandler>;
        self.bus
            .subscribe("message.bookings", &[BOOKING_CREATED, BOOKING_AWAITING_HOST, BOOKING_CONFIRMED], handler)
            .await;
        self.jobs.register(crate::host_tools::SCHEDULED_JOB, Arc::clone(self) as Arc<dyn JobHandler>).await;
        self.jobs.register(crate::host_tools::RESPONSIVENESS_JOB, Arc::clone(self) as Arc<dyn JobHandler>).await;
    }

    async fn limit_sends(&self, user: Id) -> Result<(), Problem> {
        let limit = Limit { max: u64::from(self.settings.sends_per_minute), window_secs: 60 };
        if let Err(retry) = self.limiter.hit(&format!("message:send:{user}"), limit).await? {
            return Err(Problem::new(ErrorCode::RateLimited, "too many messages; wait a moment").retry_after(retry));
        }
        Ok(())
    }

    /// `POST /conversations`: a guest writes to a listing's host. The guest and
    /// the listing have one conversation; writing again adds to it.
    pub async fn start(&self, guest: Id, input: StartConversation) -> Result<(Conversation, bool), Problem> {
        check_body(&input.body, false)?;
        let listing = self.listings.listing(input.listing_id).await?.ok_or_else(|| Problem::not_found("listing"))?;
        if listing.host_id == guest {
            return Err(Problem::field("listing_id", "this is your own listing"));
        }
        let now = Instant::now();
        let row = ConversationRow {
            id: Id::new(),
            listing_id: listing.id,
            guest_id: guest,
            host_id: listing.host_id,
            booking_id: input.booking_id,
            last_seq: 0,
            guest_read_seq: 0,
            host_read_seq: 0,
            last_activity_at: now,
            created_at: now,
        };
        // The first message decides whether the conversation is new to the caller.
        let (conv, _) = store::open_conversation(&self.db, &row).await.map_err(db_err)?;
        let created = conv.last_seq == 0;
        let send = Draft { body: input.body, client_message_id: None, quick_reply_id: None, files: Vec::new() };
        self.send_in(&conv, guest, send).await?;
        if created {
            // Whether the host answered within a day counts from now.
            let due = self.jobs.clock().now().plus(chrono::Duration::hours(24)).plus(chrono::Duration::minutes(1));
            self.responsiveness_due(conv.host_id, due).await?;
        }
        let conv = store::conversation(&self.db, conv.id)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Problem::not_found("conversation"))?;
        Ok((self.view(&conv, guest).await?, created))
    }

    /// The conversation if `actor` may see it: its participants, and admins
    /// (whose reads of others' conversations are recorded).
    async fn visible(&self, actor: Actor, id: Id) -> Result<ConversationRow, Problem> {
        let conv = store::conversation(&self.db, id)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Problem::not_found("conversation"))?;
        if conv.guest_id == actor.id || conv.host_id == actor.id || actor.admin {
            Ok(conv)
        } else {
            Err(Problem::not_found("conversation"))
        }
    }

    fn participant_of(&self, conv: &ConversationRow, user: Id) -> Result<(), Problem> {
        if conv.guest_id == user || conv.host_id == user {
            Ok(())
        } else {
            Err(Problem::not_found("conversation"))
        }
    }

    pub async fn list(
        &self,
        user: Id,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<Conversation>, Option<String>), Problem> {
        let after = cursor.map(parse_cursor).transpose()?;
        let rows = store::conversations_of(&self.db, user, after, limit).await.map_err(db_err)?;
        let next = (rows.len() as i64 == limit)
            .then(|| rows.last().map(|c| format!("{}_{}", c.last_activity_at.0.timestamp_micros(), c.id)))
            .flatten();
        let last: Vec<(Id, i64)> = rows.iter().filter(|c| c.last_seq > 0).map(|c| (c.id, c.last_seq)).collect();
        let messages = self.with_attachments(store::messages_at(&self.db, &last).await.map_err(db_err)?).await?;
        let items = rows
            .iter()
            .map(|c| {
                let last_message = messages.iter().find(|m| m.conversation_id == c.id).cloned();
                conversation_view(c, user, last_message)
            })
            .collect();
        Ok((items, next))
    }

    async fn view(&self, conv: &ConversationRow, user: Id) -> Result<Conversation, Problem> {
        let last = if conv.last_seq > 0 {
            let rows = store::messages_at(&self.db, &[(conv.id, conv.last_seq)]).await.map_err(db_err)?;
            self.with_attachments(rows).await?.into_iter().next()
        } else {
            None
        };
        Ok(conversation_view(conv, user, last))
    }

    pub async fn messages(
        &self,
        actor: Actor,
        id: Id,
        after_seq: i64,
        limit: i64,
        reason: Option<&str>,
    ) -> Result<MessagePage, Problem> {
        let conv = self.visible(actor, id).await?;
        if conv.guest_id != actor.id && conv.host_id != actor.id {
            let reason = reason.map(str::trim).filter(|r| !r.is_empty()).unwrap_or("not given");
            store::record_admin_read(&self.db, id, actor.id, reason).await.map_err(db_err)?;
            tracing::info!(conversation = %id, admin = %actor.id, reason, "an admin read a conversation");
        }
        let rows = store::messages_after(&self.db, id, after_seq, limit).await.map_err(db_err)?;
        let next = (rows.len() as i64 == limit).then(|| rows.last().map(|m| m.seq.to_string())).flatten();
        let items = self.with_attachments(rows).await?;
        let read_up_to = BTreeMap::from([
            (conv.guest_id.to_string(), conv.guest_read_seq),
            (conv.host_id.to_string(), conv.host_read_seq),
        ]);
        Ok(MessagePage { items, read_up_to, next_cursor: next })
    }

    /// `POST /conversations/{id}/messages`: `(message, replayed)`.
    pub async fn send(&self, sender: Id, id: Id, mut send: Draft) -> Result<(Message, bool), Problem> {
        // The route stops larger uploads while reading them; every caller
        // (the pages in process too) is held to the same bounds here.
        if send.files.len() > self.settings.attachments_per_message {
            let most = self.settings.attachments_per_message;
            return Err(Problem::new(ErrorCode::PayloadTooLarge, format!("at most {most} attachments per message")));
        }
        if send.files.iter().any(|f| f.bytes.len() > self.settings.attachment_max_bytes) {
            let mib = self.settings.attachment_max_bytes >> 20;
            return Err(Problem::new(ErrorCode::PayloadTooLarge, format!("each attachment must be at most {mib} MiB")));
        }
        let conv = store::conversation(&self.db, id)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Problem::not_found("conversation"))?;
        self.participant_of(&conv, sender)?;
        if let Some(quick) = send.quick_reply_id.take() {
            send.body = self.quick_reply_body(&conv, sender, quick).await?;
        }
        self.send_in(&conv, sender, send).await
    }

    pub(crate) async fn send_in(
        &self,
        conv: &ConversationRow,
        sender: Id,
        send: Draft,
    ) -> Result<(Message, bool), Problem> {
        check_body(&send.body, !send.files.is_empty())?;
        if let Some(client_id) = &send.client_message_id {
            if client_id.is_empty() || client_id.len() > 100 {
                return Err(Problem::field("client_message_id", "must be 1 to 100 characters"));
            }
            if let Some(row) = store::by_client_id(&self.db, conv.id, sender, client_id).await.map_err(db_err)? {
                return Ok((self.one(row).await?, true));
            }
        }
        if send.files.len() > self.settings.attachments_per_message {
            return Err(Problem::new(
                ErrorCode::PayloadTooLarge,
                format!("at most {} attachments per message", self.settings.attachments_per_message),
            ));
        }
        self.limit_sends(sender).await?;
        let message_id = Id::new();
        let attachments = self.store_files(conv.id, message_id, send.files).await?;
        let unlocked = store::contacts_unlocked(&self.db, conv.guest_id, conv.host_id).await.map_err(db_err)?;
        let (body, masked) = if unlocked {
            (send.body, false)
        } else {
            let m = domain::mask_contacts(&send.body);
            (m.text, m.masked)
        };
        let new = NewMessage {
            id: message_id,
            sender_id: sender,
            body,
            masked,
            client_message_id: send.client_message_id.clone(),
            attachments: attachments.clone(),
            created_at: Instant::now(),
        };
        let participants = participants_of(conv);
        let listing_id = conv.listing_id;
        let files = self.files.clone();
        let views: Vec<Attachment> = attachments.iter().map(attachment_view).collect();
        let inserted = store::append_message(&self.db, conv.id, &new, |row| {
            let message = message_view(row, views.clone());
            Envelope::new(MODULE, MESSAGE_CREATED, &MessageCreated { participants, listing_id, message })
        })
        .await;
        let row = match inserted {
            Ok(row) => row,
            Err(e) => {
                for a in &attachments {
                    let _ = files.delete(&a.file_key).await;
                }
                // Two sends of one client id at once: the other one won.
                if let Some(client_id) = &send.client_message_id {
                    if let Some(row) =
                        store::by_client_id(&self.db, conv.id, sender, client_id).await.map_err(db_err)?
                    {
                        return Ok((self.one(row).await?, true));
                    }
                }
                return Err(db_err(e));
            }
        };
        self.bus.poke();
        if sender == conv.host_id {
            self.responsiveness_due(sender, self.jobs.clock().now()).await?;
        }
        Ok((message_view(&row, views), false))
    }

    /// Checks each upload by its content and stores it: images re-encoded
    /// (which drops their metadata), PDFs as they are.
    async fn store_files(
        &self,
        conversation_id: Id,
        message_id: Id,
        files: Vec<Upload>,
    ) -> Result<Vec<AttachmentRow>, Problem> {
        let mut rows = Vec::with_capacity(files.len());
        for (position, upload) in files.into_iter().enumerate() {
            if upload.bytes.len() > self.settings.attachment_max_bytes {
                return Err(Problem::new(
                    ErrorCode::PayloadTooLarge,
                    format!("each attachment must be at most {} MiB", self.settings.attachment_max_bytes >> 20),
                ));
            }
            let (bytes, content_type, ext) = match domain::attachment_kind(&upload.bytes) {
                Some(AttachmentKind::Image) => {
                    let mut sizes =
                        hometrip_kernel::images::reencode_bounded(upload.bytes, IMAGE_SIZES, "file").await?;
                    let (_, jpeg) = sizes.pop().ok_or_else(|| Problem::internal("no image size"))?;
                    (jpeg, "image/jpeg", "jpg")
                }
                Some(AttachmentKind::Pdf) => (upload.bytes, "application/pdf", "pdf"),
                None => {
                    return Err(Problem::new(
                        ErrorCode::UnsupportedMediaType,
                        "attachments are JPEG, PNG or WebP images, or PDF documents",
                    ))
                }
            };
            let id = Id::new();
            let key = format!("messages/{conversation_id}/{id}.{ext}");
            let size = bytes.len() as i64;
            self.files.put(&key, bytes).await?;
            rows.push(AttachmentRow {
                id,
                message_id,
                conversation_id,
                position: position as i32,
                file_key: key,
                content_type: content_type.to_owned(),
                size,
            });
        }
        Ok(rows)
    }

    pub async fn read(&self, reader: Id, id: Id, up_to_seq: i64) -> Result<(), Problem> {
        if up_to_seq < 0 {
            return Err(Problem::field("up_to_seq", "must not be negative"));
        }
        let conv = store::conversation(&self.db, id)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Problem::not_found("conversation"))?;
        self.participant_of(&conv, reader)?;
        let participants = participants_of(&conv);
        let moved = store::mark_read(&self.db, &conv, reader, up_to_seq, |seq| {
            Envelope::new(
                MODULE,
                CONVERSATION_READ,
                &ConversationRead { participants, reader_id: reader, up_to_seq: seq },
            )
        })
        .await
        .map_err(db_err)?;
        if moved.is_some() {
            self.bus.poke();
        }
        Ok(())
    }

    /// An attachment's bytes, for the conversation's participants and admins.
    pub async fn attachment(&self, actor: Actor, id: Id, attachment_id: Id) -> Result<(String, Vec<u8>), Problem> {
        self.visible(actor, id).await?;
        let row = store::attachment(&self.db, id, attachment_id)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Problem::not_found("attachment"))?;
        let bytes = self.files.get(&row.file_key).await?.ok_or_else(|| Problem::not_found("attachment"))?;
        Ok((row.content_type, bytes))
    }

    async fn one(&self, row: MessageRow) -> Result<Message, Problem> {
        self.with_attachments(vec![row]).await?.pop().ok_or_else(|| Problem::internal("message vanished"))
    }

    async fn with_attachments(&self, rows: Vec<MessageRow>) -> Result<Vec<Message>, Problem> {
        let ids: Vec<Id> = rows.iter().map(|m| m.id).collect();
        let attachments = store::attachments_of(&self.db, &ids).await.map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|m| {
                let mine = attachments.iter().filter(|a| a.message_id == m.id).map(attachment_view).collect();
                message_view(m, mine)
            })
            .collect())
    }
}

fn parse_cursor(cursor: &str) -> Result<(Instant, Id), Problem> {
    let bad = || Problem::field("cursor", "not a valid cursor");
    let (micros, id) = cursor.split_once('_').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let at = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    Ok((Instant(at), id.parse().map_err(|_| bad())?))
}

fn participants_of(conv: &ConversationRow) -> Participants {
    Participants { conversation_id: conv.id, guest_id: conv.guest_id, host_id: conv.host_id }
}

fn attachment_view(a: &AttachmentRow) -> Attachment {
    Attachment {
        id: a.id,
        url: format!("/api/v1/conversations/{}/attachments/{}", a.conversation_id, a.id),
        content_type: a.content_type.clone(),
        size: a.size,
    }
}

fn message_view(m: &MessageRow, attachments: Vec<Attachment>) -> Message {
    Message {
        id: m.id,
        conversation_id: m.conversation_id,
        seq: m.seq,
        sender_id: m.sender_id,
        body: m.body.clone(),
        masked: m.masked,
        attachments,
        created_at: m.created_at,
    }
}

fn conversation_view(c: &ConversationRow, user: Id, last_message: Option<Message>) -> Conversation {
    Conversation {
        id: c.id,
        listing_id: c.listing_id,
        booking_id: c.booking_id,
        participants: vec![c.guest_id, c.host_id],
        last_message,
        unread_count: (c.last_seq - c.read_seq_of(user)).max(0),
        last_activity_at: c.last_activity_at,
    }
}

#[async_trait]
impl EventHandler for MessageService {
    async fn handle(&self, event: &Envelope) -> Result<(), String> {
        let BookingEvent { booking } = event.decode::<BookingEvent>()?;
        let now = Instant::now();
        let row = ConversationRow {
            id: Id::new(),
            listing_id: booking.listing_id,
            guest_id: booking.guest_id,
            host_id: booking.host_id,
            booking_id: Some(booking.id),
            last_seq: 0,
            guest_read_seq: 0,
            host_read_seq: 0,
            last_activity_at: now,
            created_at: now,
        };
        store::open_conversation(&self.db, &row).await.map_err(|e| e.to_string())?;
        if event.event_type == BOOKING_CONFIRMED {
            store::unlock_contacts(&self.db, booking.guest_id, booking.host_id, booking.id)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

#[async_trait]
impl Messages for MessageService {
    async fn participants(&self, conversation_id: Id) -> Result<Option<Participants>, Problem> {
        Ok(store::conversation(&self.db, conversation_id).await.map_err(db_err)?.as_ref().map(participants_of))
    }

    async fn messages_after(&self, conversation_id: Id, after_seq: i64, limit: u32) -> Result<Vec<Message>, Problem> {
        let rows = store::messages_after(&self.db, conversation_id, after_seq, i64::from(limit.min(500)))
            .await
            .map_err(db_err)?;
        self.with_attachments(rows).await
    }

    async fn counterparts(&self, user: Id) -> Result<Vec<Id>, Problem> {
        store::counterparts(&self.db, user).await.map_err(db_err)
    }
}
