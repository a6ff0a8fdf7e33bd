//! Persistence of the user module's `profiles` table.

use hometrip_kernel::db::prelude::*;
use hometrip_kernel::db::{Db, DbError, MigrationSet};
use hometrip_kernel::events::{Envelope, OutboxWrite};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{run, transaction, Id};

pub mod schema {
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        profiles (id) {
            id -> DbUuid,
            email -> Text,
            display_name -> Text,
            bio -> Text,
            locale -> Text,
            currency -> Text,
            notification_channels -> Text,
            avatar_key -> Nullable<Text>,
            identity_status -> Text,
            identity_document_key -> Nullable<Text>,
            identity_note -> Nullable<Text>,
            identity_updated_at -> Nullable<DbInstant>,
            search_text -> Text,
            created_at -> DbInstant,
            updated_at -> DbInstant,
            response_rate -> Nullable<Integer>,
            response_minutes -> Nullable<BigInt>,
        }
    }
}
use schema::profiles;

pub const MIGRATIONS: MigrationSet = MigrationSet { module: "user", postgres: || PG, sqlite: || SQLITE };
const PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/user/postgres");
const SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/user/sqlite");

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = profiles)]
pub struct ProfileRow {
    pub id: Id,
    pub email: String,
    pub display_name: String,
    pub bio: String,
    pub locale: String,
    pub currency: String,
    /// Comma-separated channel names (`email,sms,push`).
    pub notification_channels: String,
    pub avatar_key: Option<String>,
    pub identity_status: String,
    pub identity_document_key: Option<String>,
    pub identity_note: Option<String>,
    pub identity_updated_at: Option<Instant>,
    pub search_text: String,
    pub created_at: Instant,
    pub updated_at: Instant,
    pub response_rate: Option<i32>,
    pub response_minutes: Option<i64>,
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = profiles)]
pub struct ProfileChanges {
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub locale: Option<String>,
    pub currency: Option<String>,
    pub notification_channels: Option<String>,
    pub search_text: Option<String>,
    pub avatar_key: Option<Option<String>>,
    pub identity_status: Option<String>,
    pub identity_document_key: Option<Option<String>>,
    pub identity_note: Option<Option<String>>,
    pub identity_updated_at: Option<Option<Instant>>,
    pub updated_at: Option<Instant>,
    pub response_rate: Option<Option<i32>>,
    pub response_minutes: Option<Option<i64>>,
}

/// Inserts the profile unless it exists (events are delivered at least once).
pub async fn insert_if_absent(db: &Db, row: &ProfileRow) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::insert_into(profiles::table).values(row).on_conflict_do_nothing().execute(conn).await?;
        Ok::<_, DbError>(())
    })
}

pub async fn get(db: &Db, id: Id) -> Result<Option<ProfileRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(profiles::table.find(id).select(ProfileRow::as_select()).first(conn).await.optional()?)
    })
}

pub async fn get_many(db: &Db, ids: &[Id]) -> Result<Vec<ProfileRow>, DbError> {
    let ids = ids.to_vec();
    run!(db, |conn| {
        Ok::<_, DbError>(
            profiles::table.filter(profiles::id.eq_any(ids.clone())).select(ProfileRow::as_select()).load(conn).await?,
        )
    })
}

/// Applies `changes` and appends `events`, in one transaction; `None` if absent.
pub async fn update(
    db: &Db,
    id: Id,
    changes: &ProfileChanges,
    events: &[Envelope],
) -> Result<Option<ProfileRow>, DbError> {
    transaction!(db, |conn| {
        let n = diesel::update(profiles::table.find(id)).set(changes).execute(conn).await?;
        if n == 0 {
            return Ok(None);
        }
        for e in events {
            conn.append_event(e).await?;
        }
        Ok::<_, DbError>(Some(profiles::table.find(id).select(ProfileRow::as_select()).first(conn).await?))
    })
}

/// Profiles whose email or name contains `pattern` (a LIKE pattern), by id, after `after`.
pub async fn search(db: &Db, pattern: &str, after: Option<Id>, limit: i64) -> Result<Vec<ProfileRow>, DbError> {
    run!(db, |conn| {
        let mut q = profiles::table
            .filter(profiles::search_text.like(pattern).escape('\\'))
            .order(profiles::id.asc())
            .limit(limit)
            .select(ProfileRow::as_select())
            .into_boxed();
        if let Some(after) = after {
            q = q.filter(profiles::id.gt(after));
        }
        Ok::<_, DbError>(q.load(conn).await?)
    })
}
