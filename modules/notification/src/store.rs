//! Persistence of in-app notifications, preferences, phone numbers, push
//! subscriptions, pending message digests and SMS statuses.

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
        notifications (id) {
            id -> DbUuid,
            user_id -> DbUuid,
            kind -> Text,
            title -> Text,
            body -> Text,
            link -> Text,
            source_key -> Text,
            created_at -> DbInstant,
            read_at -> Nullable<DbInstant>,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        notification_preferences (user_id) {
            user_id -> DbUuid,
            channels -> Text,
            quiet_from -> Nullable<Text>,
            quiet_to -> Nullable<Text>,
            time_zone -> Text,
            updated_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        phone_numbers (user_id) {
            user_id -> DbUuid,
            phone -> Text,
            verified -> Bool,
            code_hash -> Nullable<Text>,
            code_expires_at -> Nullable<DbInstant>,
            attempts -> Integer,
            updated_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        push_subscriptions (id) {
            id -> DbUuid,
            user_id -> DbUuid,
            endpoint -> Text,
            p256dh -> Text,
            auth -> Text,
            created_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        message_digests (recipient_id, conversation_id) {
            recipient_id -> DbUuid,
            conversation_id -> DbUuid,
            sender_id -> DbUuid,
            listing_id -> DbUuid,
            first_seq -> BigInt,
            last_seq -> BigInt,
            due_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        sms_messages (sid) {
            sid -> Text,
            user_id -> DbUuid,
            status -> Text,
            updated_at -> DbInstant,
        }
    }
}
use schema::{
    message_digests, notification_preferences, notifications, phone_numbers, push_subscriptions, sms_messages,
};

pub const MIGRATIONS: MigrationSet = MigrationSet { module: "notification", postgres: || PG, sqlite: || SQLITE };
const PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/notification/postgres");
const SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/notification/sqlite");

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = notifications)]
pub struct NotificationRow {
    pub id: Id,
    pub user_id: Id,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub link: String,
    pub source_key: String,
    pub created_at: Instant,
    pub read_at: Option<Instant>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = notification_preferences)]
pub struct PreferencesRow {
    pub user_id: Id,
    pub channels: String,
    pub quiet_from: Option<String>,
    pub quiet_to: Option<String>,
    pub time_zone: String,
    pub updated_at: Instant,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = phone_numbers)]
pub struct PhoneRow {
    pub user_id: Id,
    pub phone: String,
    pub verified: bool,
    pub code_hash: Option<String>,
    pub code_expires_at: Option<Instant>,
    pub attempts: i32,
    pub updated_at: Instant,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = push_subscriptions)]
pub struct SubscriptionRow {
    pub id: Id,
    pub user_id: Id,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub created_at: Instant,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = message_digests)]
pub struct DigestRow {
    pub recipient_id: Id,
    pub conversation_id: Id,
    pub sender_id: Id,
    pub listing_id: Id,
    pub first_seq: i64,
    pub last_seq: i64,
    pub due_at: Instant,
}

/// Stores the notification and its `notification.created` event, and
/// schedules `jobs` (its other channels), unless its source key is there
/// already (a redelivered event): then nothing.
pub async fn insert_notification(
    db: &Db,
    row: Option<&NotificationRow>,
    event: Option<&Envelope>,
    jobs: &[NewJob],
) -> Result<bool, DbError> {
    transaction!(db, |conn| {
        if let Some(row) = row {
            let n =
                diesel::insert_into(notifications::table).values(row).on_conflict_do_nothing().execute(conn).await?;
            if n == 0 {
                return Ok::<_, DbError>(false);
            }
            if let Some(event) = event {
                conn.append_event(event).await?;
            }
        }
        for job in jobs {
            conn.schedule_job(job).await?;
        }
        Ok(true)
    })
}

/// A user's notifications, newest first, before the cursor id.
pub async fn list(
    db: &Db,
    user: Id,
    unread: bool,
    before: Option<Id>,
    limit: i64,
) -> Result<Vec<NotificationRow>, DbError> {
    run!(db, |conn| {
        let mut q = notifications::table
            .filter(notifications::user_id.eq(user))
            .order(notifications::id.desc())
            .limit(limit)
            .select(NotificationRow::as_select())
            .into_boxed();
        if unread {
            q = q.filter(notifications::read_at.is_null());
        }
        if let Some(before) = before {
            q = q.filter(notifications::id.lt(before));
        }
        Ok::<_, DbError>(q.load(conn).await?)
    })
}

/// A user's notifications after `after`, oldest first.
pub async fn after(db: &Db, user: Id, after: Option<Id>, limit: i64) -> Result<Vec<NotificationRow>, DbError> {
    run!(db, |conn| {
        let mut q = notifications::table
            .filter(notifications::user_id.eq(user))
            .order(notifications::id.asc())
            .limit(limit)
            .select(NotificationRow::as_select())
            .into_boxed();
        if let Some(after) = after {
            q = q.filter(notifications::id.gt(after));
        }
        Ok::<_, DbError>(q.load(conn).await?)
    })
}

pub async fn unread_count(db: &Db, user: Id) -> Result<i64, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            notifications::table
                .filter(notifications::user_id.eq(user))
                .filter(notifications::read_at.is_null())
                .count()
                .get_result(conn)
                .await?,
        )
    })
}

/// Marks one (or, with `None`, every) notification of `user` read; how many.
pub async fn mark_read(db: &Db, user: Id, id: Option<Id>, at: Instant) -> Result<usize, DbError> {
    run!(db, |conn| {
        let target = notifications::table
            .filter(notifications::user_id.eq(user))
            .filter(notifications::read_at.is_null())
            .into_boxed();
        let target = match id {
            Some(id) => target.filter(notifications::id.eq(id)),
            None => target,
        };
        let ids: Vec<Id> = target.select(notifications::id).load(conn).await?;
        if ids.is_empty() {
            return Ok::<_, DbError>(0);
        }
        Ok(diesel::update(notifications::table.filter(notifications::id.eq_any(&ids)))
            .set(notifications::read_at.eq(at))
            .execute(conn)
            .await?)
    })
}

pub async fn exists(db: &Db, user: Id, id: Id) -> Result<bool, DbError> {
    run!(db, |conn| {
        let found: Option<Id> = notifications::table
            .find(id)
            .filter(notifications::user_id.eq(user))
            .select(notifications::id)
            .first(conn)
            .await
            .optional()?;
        Ok::<_, DbError>(found.is_some())
    })
}

pub async fn preferences(db: &Db, user: Id) -> Result<Option<PreferencesRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            notification_preferences::table
                .find(user)
                .select(PreferencesRow::as_select())
                .first(conn)
                .await
                .optional()?,
        )
    })
}

pub async fn save_preferences(db: &Db, row: &PreferencesRow) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::insert_into(notification_preferences::table)
            .values(row)
            .on_conflict(notification_preferences::user_id)
            .do_update()
            .set((
                notification_preferences::channels.eq(&row.channels),
                notification_preferences::quiet_from.eq(&row.quiet_from),
                notification_preferences::quiet_to.eq(&row.quiet_to),
                notification_preferences::time_zone.eq(&row.time_zone),
                notification_preferences::updated_at.eq(row.updated_at),
            ))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(())
    })
}

pub async fn phone(db: &Db, user: Id) -> Result<Option<PhoneRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(phone_numbers::table.find(user).select(PhoneRow::as_select()).first(conn).await.optional()?)
    })
}

pub async fn save_phone(db: &Db, row: &PhoneRow) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::insert_into(phone_numbers::table)
            .values(row)
            .on_conflict(phone_numbers::user_id)
            .do_update()
            .set((
                phone_numbers::phone.eq(&row.phone),
                phone_numbers::verified.eq(row.verified),
                phone_numbers::code_hash.eq(&row.code_hash),
                phone_numbers::code_expires_at.eq(row.code_expires_at),
                phone_numbers::attempts.eq(row.attempts),
                phone_numbers::updated_at.eq(row.updated_at),
            ))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(())
    })
}

pub async fn add_subscription(db: &Db, row: &SubscriptionRow) -> Result<SubscriptionRow, DbError> {
    run!(db, |conn| {
        // The same endpoint again (a browser re-subscribing) takes the new keys and owner.
        diesel::insert_into(push_subscriptions::table)
            .values(row)
            .on_conflict(push_subscriptions::endpoint)
            .do_update()
            .set((
                push_subscriptions::user_id.eq(row.user_id),
                push_subscriptions::p256dh.eq(&row.p256dh),
                push_subscriptions::auth.eq(&row.auth),
            ))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(
            push_subscriptions::table
                .filter(push_subscriptions::endpoint.eq(&row.endpoint))
                .select(SubscriptionRow::as_select())
                .first(conn)
                .await?,
        )
    })
}

pub async fn subscriptions(db: &Db, user: Id) -> Result<Vec<SubscriptionRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            push_subscriptions::table
                .filter(push_subscriptions::user_id.eq(user))
                .select(SubscriptionRow::as_select())
                .load(conn)
                .await?,
        )
    })
}

pub async fn subscription(db: &Db, id: Id) -> Result<Option<SubscriptionRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            push_subscriptions::table.find(id).select(SubscriptionRow::as_select()).first(conn).await.optional()?,
        )
    })
}

/// Deletes a subscription (of `user`, when given); whether it existed.
pub async fn delete_subscription(db: &Db, id: Id, user: Option<Id>) -> Result<bool, DbError> {
    run!(db, |conn| {
        let n = match user {
            Some(user) => {
                diesel::delete(push_subscriptions::table.find(id).filter(push_subscriptions::user_id.eq(user)))
                    .execute(conn)
                    .await?
            }
            None => diesel::delete(push_subscriptions::table.find(id)).execute(conn).await?,
        };
        Ok::<_, DbError>(n > 0)
    })
}

/// Adds a message to the recipient's pending digest for the conversation;
/// the new digest (then a job is due at its `due_at`) or `None` when one was
/// pending already.
pub async fn add_to_digest(db: &Db, row: &DigestRow, job: &NewJob) -> Result<bool, DbError> {
    transaction!(db, |conn| {
        let existing: Option<DigestRow> = message_digests::table
            .find((row.recipient_id, row.conversation_id))
            .select(DigestRow::as_select())
            .first(conn)
            .await
            .optional()?;
        match existing {
            Some(d) => {
                if row.last_seq > d.last_seq {
                    diesel::update(message_digests::table.find((row.recipient_id, row.conversation_id)))
                        .set((message_digests::last_seq.eq(row.last_seq), message_digests::sender_id.eq(row.sender_id)))
                        .execute(conn)
                        .await?;
                }
                Ok::<_, DbError>(false)
            }
            None => {
                diesel::insert_into(message_digests::table).values(row).execute(conn).await?;
                conn.schedule_job(job).await?;
                Ok(true)
            }
        }
    })
}

/// The recipient read up to `seq`: messages up to it leave the digest, and
/// the digest goes when none is left.
pub async fn read_digest(db: &Db, recipient: Id, conversation: Id, seq: i64) -> Result<(), DbError> {
    transaction!(db, |conn| {
        let key = (recipient, conversation);
        diesel::delete(message_digests::table.find(key).filter(message_digests::last_seq.le(seq)))
            .execute(conn)
            .await?;
        diesel::update(message_digests::table.find(key).filter(message_digests::first_seq.le(seq)))
            .set(message_digests::first_seq.eq(seq + 1))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(())
    })
}

/// Takes the digest out, if still pending.
pub async fn take_digest(db: &Db, recipient: Id, conversation: Id) -> Result<Option<DigestRow>, DbError> {
    transaction!(db, |conn| {
        let key = (recipient, conversation);
        let found: Option<DigestRow> =
            message_digests::table.find(key).select(DigestRow::as_select()).first(conn).await.optional()?;
        if found.is_some() {
            diesel::delete(message_digests::table.find(key)).execute(conn).await?;
        }
        Ok::<_, DbError>(found)
    })
}

pub async fn record_sms(db: &Db, sid: &str, user: Id, status: &str) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::insert_into(sms_messages::table)
            .values((
                sms_messages::sid.eq(sid),
                sms_messages::user_id.eq(user),
                sms_messages::status.eq(status),
                sms_messages::updated_at.eq(Instant::now()),
            ))
            .on_conflict(sms_messages::sid)
            .do_update()
            .set((sms_messages::status.eq(status), sms_messages::updated_at.eq(Instant::now())))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(())
    })
}

pub async fn update_sms_status(db: &Db, sid: &str, status: &str) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::update(sms_messages::table.find(sid))
            .set((sms_messages::status.eq(status), sms_messages::updated_at.eq(Instant::now())))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(())
    })
}

pub async fn sms_status(db: &Db, sid: &str) -> Result<Option<String>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(sms_messages::table.find(sid).select(sms_messages::status).first(conn).await.optional()?)
    })
}
