//! Persistence of conversations, messages, attachments, contact unlocks and
//! admins' reads. A message takes the next `seq` of its conversation in the
//! transaction that inserts it (the conversation's row is the counter), with
//! its `message.created` event.

use hometrip_kernel::db::prelude::*;
use hometrip_kernel::db::{Db, DbError, MigrationSet};
use hometrip_kernel::events::{Envelope, OutboxWrite};
use hometrip_kernel::jobs::{JobWrite, NewJob};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{run, transaction, Id};

pub mod schema {
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        conversations (id) {
            id -> DbUuid,
            listing_id -> DbUuid,
            guest_id -> DbUuid,
            host_id -> DbUuid,
            booking_id -> Nullable<DbUuid>,
            last_seq -> BigInt,
            guest_read_seq -> BigInt,
            host_read_seq -> BigInt,
            last_activity_at -> DbInstant,
            created_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        messages (id) {
            id -> DbUuid,
            conversation_id -> DbUuid,
            seq -> BigInt,
            sender_id -> DbUuid,
            body -> Text,
            masked -> Bool,
            client_message_id -> Nullable<Text>,
            created_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        message_attachments (id) {
            id -> DbUuid,
            message_id -> DbUuid,
            conversation_id -> DbUuid,
            position -> Integer,
            file_key -> Text,
            content_type -> Text,
            size -> BigInt,
        }
    }
    diesel::table! {
        use hometrip_kernel::db::sql::*;
        contact_unlocks (guest_id, host_id) {
            guest_id -> DbUuid,
            host_id -> DbUuid,
            booking_id -> DbUuid,
            unlocked_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        quick_replies (id) {
            id -> DbUuid,
            host_id -> DbUuid,
            title -> Text,
            body -> Text,
            created_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        scheduled_messages (id) {
            id -> DbUuid,
            conversation_id -> DbUuid,
            booking_id -> DbUuid,
            host_id -> DbUuid,
            body -> Text,
            send_at -> DbInstant,
            status -> Text,
            message_id -> Nullable<DbUuid>,
            created_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        conversation_admin_reads (id) {
            id -> DbUuid,
            conversation_id -> DbUuid,
            admin_id -> DbUuid,
            reason -> Text,
            read_at -> DbInstant,
        }
    }
}
use schema::{
    contact_unlocks, conversation_admin_reads, conversations, message_attachments, messages, quick_replies,
    scheduled_messages,
};

pub const MIGRATIONS: MigrationSet = MigrationSet { module: "message", postgres: || PG, sqlite: || SQLITE };
const PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/message/postgres");
const SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/message/sqlite");

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = conversations)]
pub struct ConversationRow {
    pub id: Id,
    pub listing_id: Id,
    pub guest_id: Id,
    pub host_id: Id,
    pub booking_id: Option<Id>,
    pub last_seq: i64,
    pub guest_read_seq: i64,
    pub host_read_seq: i64,
    pub last_activity_at: Instant,
    pub created_at: Instant,
}

impl ConversationRow {
    pub fn read_seq_of(&self, user: Id) -> i64 {
        if user == self.guest_id {
            self.guest_read_seq
        } else {
            self.host_read_seq
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = messages)]
pub struct MessageRow {
    pub id: Id,
    pub conversation_id: Id,
    pub seq: i64,
    pub sender_id: Id,
    pub body: String,
    pub masked: bool,
    pub client_message_id: Option<String>,
    pub created_at: Instant,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = message_attachments)]
pub struct AttachmentRow {
    pub id: Id,
    pub message_id: Id,
    pub conversation_id: Id,
    pub position: i32,
    pub file_key: String,
    pub content_type: String,
    pub size: i64,
}

/// A message to insert; its `seq` is given by the store.
pub struct NewMessage {
    pub id: Id,
    pub sender_id: Id,
    pub body: String,
    pub masked: bool,
    pub client_message_id: Option<String>,
    pub attachments: Vec<AttachmentRow>,
    pub created_at: Instant,
}

pub async fn conversation(db: &Db, id: Id) -> Result<Option<ConversationRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            conversations::table.find(id).select(ConversationRow::as_select()).first(conn).await.optional()?,
        )
    })
}

pub async fn conversation_of(db: &Db, guest_id: Id, listing_id: Id) -> Result<Option<ConversationRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            conversations::table
                .filter(conversations::guest_id.eq(guest_id))
                .filter(conversations::listing_id.eq(listing_id))
                .select(ConversationRow::as_select())
                .first(conn)
                .await
                .optional()?,
        )
    })
}

/// The conversation of a guest and a listing: `row` when there was none
/// (then `true`), else the one there is. A booking given ties it to the
/// conversation, the latest booking winning.
pub async fn open_conversation(db: &Db, row: &ConversationRow) -> Result<(ConversationRow, bool), DbError> {
    transaction!(db, |conn| {
        let inserted =
            diesel::insert_into(conversations::table).values(row).on_conflict_do_nothing().execute(conn).await?;
        if inserted == 0 {
            if let Some(booking_id) = row.booking_id {
                diesel::update(
                    conversations::table
                        .filter(conversations::guest_id.eq(row.guest_id))
                        .filter(conversations::listing_id.eq(row.listing_id)),
                )
                .set(conversations::booking_id.eq(booking_id))
                .execute(conn)
                .await?;
            }
        }
        let found = conversations::table
            .filter(conversations::guest_id.eq(row.guest_id))
            .filter(conversations::listing_id.eq(row.listing_id))
            .select(ConversationRow::as_select())
            .first(conn)
            .await?;
        Ok::<_, DbError>((found, inserted == 1))
    })
}

/// A user's conversations, latest activity first, after the cursor
/// (`last_activity_at`, `id`) of the previous page.
pub async fn conversations_of(
    db: &Db,
    user: Id,
    after: Option<(Instant, Id)>,
    limit: i64,
) -> Result<Vec<ConversationRow>, DbError> {
    run!(db, |conn| {
        let mut q = conversations::table
            .filter(conversations::guest_id.eq(user).or(conversations::host_id.eq(user)))
            .order((conversations::last_activity_at.desc(), conversations::id.desc()))
            .limit(limit)
            .select(ConversationRow::as_select())
            .into_boxed();
        if let Some((at, id)) = after {
            q = q.filter(
                conversations::last_activity_at
                    .lt(at)
                    .or(conversations::last_activity_at.eq(at).and(conversations::id.lt(id))),
            );
        }
        Ok::<_, DbError>(q.load(conn).await?)
    })
}

/// Everyone `user` has a conversation with.
pub async fn counterparts(db: &Db, user: Id) -> Result<Vec<Id>, DbError> {
    run!(db, |conn| {
        let as_guest: Vec<Id> = conversations::table
            .filter(conversations::guest_id.eq(user))
            .select(conversations::host_id)
            .distinct()
            .load(conn)
            .await?;
        let as_host: Vec<Id> = conversations::table
            .filter(conversations::host_id.eq(user))
            .select(conversations::guest_id)
            .distinct()
            .load(conn)
            .await?;
        let mut all: Vec<Id> = as_guest.into_iter().chain(as_host).collect();
        all.sort();
        all.dedup();
        Ok::<_, DbError>(all)
    })
}

/// The message a sender already sent with this client id, if any.
pub async fn by_client_id(
    db: &Db,
    conversation_id: Id,
    sender_id: Id,
    client_message_id: &str,
) -> Result<Option<MessageRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            messages::table
                .filter(messages::conversation_id.eq(conversation_id))
                .filter(messages::sender_id.eq(sender_id))
                .filter(messages::client_message_id.eq(client_message_id))
                .select(MessageRow::as_select())
                .first(conn)
                .await
                .optional()?,
        )
    })
}

/// Inserts the message under the conversation's next `seq`, moves the
/// sender's read position to it, and appends the event `event(seq)` makes.
pub async fn append_message(
    db: &Db,
    conversation_id: Id,
    new: &NewMessage,
    event: impl Fn(&MessageRow) -> Result<Envelope, DbError> + Send + Sync,
) -> Result<MessageRow, DbError> {
    transaction!(db, |conn| {
        // The update takes the conversation's row lock: sends to one
        // conversation get their seq one after the other.
        diesel::update(conversations::table.find(conversation_id))
            .set((
                conversations::last_seq.eq(conversations::last_seq + 1),
                conversations::last_activity_at.eq(new.created_at),
            ))
            .execute(conn)
            .await?;
        let conv: ConversationRow =
            conversations::table.find(conversation_id).select(ConversationRow::as_select()).first(conn).await?;
        let seq = conv.last_seq;
        if new.sender_id == conv.guest_id {
            diesel::update(conversations::table.find(conversation_id))
                .set(conversations::guest_read_seq.eq(seq))
                .execute(conn)
                .await?;
        } else {
            diesel::update(conversations::table.find(conversation_id))
                .set(conversations::host_read_seq.eq(seq))
                .execute(conn)
                .await?;
        }
        let row = MessageRow {
            id: new.id,
            conversation_id,
            seq,
            sender_id: new.sender_id,
            body: new.body.clone(),
            masked: new.masked,
            client_message_id: new.client_message_id.clone(),
            created_at: new.created_at,
        };
        diesel::insert_into(messages::table).values(&row).execute(conn).await?;
        for a in &new.attachments {
            diesel::insert_into(message_attachments::table).values(a).execute(conn).await?;
        }
        conn.append_event(&event(&row)?).await?;
        Ok::<_, DbError>(row)
    })
}

/// Messages of a conversation with `seq` above `after_seq`, in order.
pub async fn messages_after(
    db: &Db,
    conversation_id: Id,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<MessageRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            messages::table
                .filter(messages::conversation_id.eq(conversation_id))
                .filter(messages::seq.gt(after_seq))
                .order(messages::seq.asc())
                .limit(limit)
                .select(MessageRow::as_select())
                .load(conn)
                .await?,
        )
    })
}

/// The messages at these (conversation, seq) pairs: the last message of
/// each conversation of a page.
pub async fn messages_at(db: &Db, at: &[(Id, i64)]) -> Result<Vec<MessageRow>, DbError> {
    if at.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Id> = at.iter().map(|(c, _)| *c).collect();
    let seqs: Vec<i64> = at.iter().map(|(_, s)| *s).collect();
    let rows: Vec<MessageRow> = run!(db, |conn| {
        Ok::<_, DbError>(
            messages::table
                .filter(messages::conversation_id.eq_any(&ids))
                .filter(messages::seq.eq_any(&seqs))
                .select(MessageRow::as_select())
                .load(conn)
                .await?,
        )
    })?;
    Ok(rows.into_iter().filter(|m| at.contains(&(m.conversation_id, m.seq))).collect())
}

pub async fn attachments_of(db: &Db, message_ids: &[Id]) -> Result<Vec<AttachmentRow>, DbError> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    run!(db, |conn| {
        Ok::<_, DbError>(
            message_attachments::table
                .filter(message_attachments::message_id.eq_any(message_ids))
                .order((message_attachments::message_id.asc(), message_attachments::position.asc()))
                .select(AttachmentRow::as_select())
                .load(conn)
                .await?,
        )
    })
}

pub async fn attachment(db: &Db, conversation_id: Id, id: Id) -> Result<Option<AttachmentRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            message_attachments::table
                .find(id)
                .filter(message_attachments::conversation_id.eq(conversation_id))
                .select(AttachmentRow::as_select())
                .first(conn)
                .await
                .optional()?,
        )
    })
}

/// Moves `reader`'s read position forward to `up_to_seq` (never back, never
/// past the last message); `Some(position)` when it moved, with the event.
pub async fn mark_read(
    db: &Db,
    conv: &ConversationRow,
    reader: Id,
    up_to_seq: i64,
    event: impl Fn(i64) -> Result<Envelope, DbError> + Send + Sync,
) -> Result<Option<i64>, DbError> {
    let id = conv.id;
    let as_guest = reader == conv.guest_id;
    transaction!(db, |conn| {
        let current: ConversationRow =
            conversations::table.find(id).select(ConversationRow::as_select()).first(conn).await?;
        let target = up_to_seq.min(current.last_seq);
        let position = if as_guest { current.guest_read_seq } else { current.host_read_seq };
        if target <= position {
            return Ok::<_, DbError>(None);
        }
        if as_guest {
            diesel::update(conversations::table.find(id))
                .set(conversations::guest_read_seq.eq(target))
                .execute(conn)
                .await?;
        } else {
            diesel::update(conversations::table.find(id))
                .set(conversations::host_read_seq.eq(target))
                .execute(conn)
                .await?;
        }
        conn.append_event(&event(target)?).await?;
        Ok(Some(target))
    })
}

pub async fn unlock_contacts(db: &Db, guest_id: Id, host_id: Id, booking_id: Id) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::insert_into(contact_unlocks::table)
            .values((
                contact_unlocks::guest_id.eq(guest_id),
                contact_unlocks::host_id.eq(host_id),
                contact_unlocks::booking_id.eq(booking_id),
                contact_unlocks::unlocked_at.eq(Instant::now()),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        Ok::<_, DbError>(())
    })
}

pub async fn contacts_unlocked(db: &Db, guest_id: Id, host_id: Id) -> Result<bool, DbError> {
    run!(db, |conn| {
        let found: Option<Id> = contact_unlocks::table
            .find((guest_id, host_id))
            .select(contact_unlocks::booking_id)
            .first(conn)
            .await
            .optional()?;
        Ok::<_, DbError>(found.is_some())
    })
}

pub async fn record_admin_read(db: &Db, conversation_id: Id, admin_id: Id, reason: &str) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::insert_into(conversation_admin_reads::table)
            .values((
                conversation_admin_reads::id.eq(Id::new()),
                conversation_admin_reads::conversation_id.eq(conversation_id),
                conversation_admin_reads::admin_id.eq(admin_id),
                conversation_admin_reads::reason.eq(reason),
                conversation_admin_reads::read_at.eq(Instant::now()),
            ))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(())
    })
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = quick_replies)]
pub struct QuickReplyRow {
    pub id: Id,
    pub host_id: Id,
    pub title: String,
    pub body: String,
    pub created_at: Instant,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = scheduled_messages)]
pub struct ScheduledRow {
    pub id: Id,
    pub conversation_id: Id,
    pub booking_id: Id,
    pub host_id: Id,
    pub body: String,
    pub send_at: Instant,
    pub status: String,
    pub message_id: Option<Id>,
    pub created_at: Instant,
}

pub async fn add_quick_reply(db: &Db, row: &QuickReplyRow) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::insert_into(quick_replies::table).values(row).execute(conn).await?;
        Ok::<_, DbError>(())
    })
}

pub async fn quick_replies_of(db: &Db, host: Id) -> Result<Vec<QuickReplyRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            quick_replies::table
                .filter(quick_replies::host_id.eq(host))
                .order(quick_replies::id.asc())
                .select(QuickReplyRow::as_select())
                .load(conn)
                .await?,
        )
    })
}

pub async fn quick_reply(db: &Db, host: Id, id: Id) -> Result<Option<QuickReplyRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            quick_replies::table
                .find(id)
                .filter(quick_replies::host_id.eq(host))
                .select(QuickReplyRow::as_select())
                .first(conn)
                .await
                .optional()?,
        )
    })
}

pub async fn delete_quick_reply(db: &Db, host: Id, id: Id) -> Result<bool, DbError> {
    run!(db, |conn| {
        let n =
            diesel::delete(quick_replies::table.find(id).filter(quick_replies::host_id.eq(host))).execute(conn).await?;
        Ok::<_, DbError>(n > 0)
    })
}

/// Stores a scheduled message with the job that sends it.
pub async fn schedule(db: &Db, row: &ScheduledRow, job: &NewJob) -> Result<(), DbError> {
    transaction!(db, |conn| {
        diesel::insert_into(scheduled_messages::table).values(row).execute(conn).await?;
        conn.schedule_job(job).await?;
        Ok::<_, DbError>(())
    })
}

pub async fn scheduled_of(db: &Db, conversation: Id) -> Result<Vec<ScheduledRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            scheduled_messages::table
                .filter(scheduled_messages::conversation_id.eq(conversation))
                .order(scheduled_messages::send_at.asc())
                .select(ScheduledRow::as_select())
                .load(conn)
                .await?,
        )
    })
}

pub async fn scheduled(db: &Db, id: Id) -> Result<Option<ScheduledRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            scheduled_messages::table.find(id).select(ScheduledRow::as_select()).first(conn).await.optional()?,
        )
    })
}

/// Moves a pending scheduled message to `status`; whether it was pending.
pub async fn settle_scheduled(db: &Db, id: Id, status: &str, message_id: Option<Id>) -> Result<bool, DbError> {
    run!(db, |conn| {
        let n = diesel::update(scheduled_messages::table.find(id).filter(scheduled_messages::status.eq("pending")))
            .set((scheduled_messages::status.eq(status), scheduled_messages::message_id.eq(message_id)))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(n > 0)
    })
}

/// For a host's conversations started since `since`: when each started and
/// when the host first answered in it (if they did).
pub async fn first_answers(db: &Db, host: Id, since: Instant) -> Result<Vec<(Instant, Option<Instant>)>, DbError> {
    let convs: Vec<(Id, Id)> = run!(db, |conn| {
        Ok::<_, DbError>(
            conversations::table
                .filter(conversations::host_id.eq(host))
                .filter(conversations::created_at.ge(since))
                .select((conversations::id, conversations::guest_id))
                .load(conn)
                .await?,
        )
    })?;
    if convs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Id> = convs.iter().map(|(c, _)| *c).collect();
    // Each conversation's messages in order, sender and time only.
    let rows: Vec<(Id, i64, Id, Instant)> = run!(db, |conn| {
        Ok::<_, DbError>(
            messages::table
                .filter(messages::conversation_id.eq_any(&ids))
                .order((messages::conversation_id.asc(), messages::seq.asc()))
                .select((messages::conversation_id, messages::seq, messages::sender_id, messages::created_at))
                .load(conn)
                .await?,
        )
    })?;
    let mut out = Vec::new();
    for (conv, guest) in convs {
        let mut of_conv = rows.iter().filter(|r| r.0 == conv);
        // An inquiry: the guest wrote first.
        let Some(first) = of_conv.next().filter(|r| r.2 == guest) else { continue };
        let answer = rows.iter().filter(|r| r.0 == conv).find(|r| r.2 == host).map(|r| r.3);
        out.push((first.3, answer));
    }
    Ok(out)
}

/// Appends an event on its own (a figure computed from the store).
pub async fn publish(db: &Db, event: &Envelope) -> Result<(), DbError> {
    transaction!(db, |conn| {
        conn.append_event(event).await?;
        Ok::<_, DbError>(())
    })
}

pub async fn schedule_job(db: &Db, job: &NewJob) -> Result<(), DbError> {
    transaction!(db, |conn| {
        conn.schedule_job(job).await?;
        Ok::<_, DbError>(())
    })
}
