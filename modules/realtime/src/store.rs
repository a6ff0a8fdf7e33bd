//! The realtime module's one table: when users were last seen.

use hometrip_kernel::db::prelude::*;
use hometrip_kernel::db::{Db, DbError, MigrationSet};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{run, Id};

pub mod schema {
    diesel::table! {
        use hometrip_kernel::db::sql::*;
        presence_last_seen (user_id) {
            user_id -> DbUuid,
            last_seen_at -> DbInstant,
        }
    }
}
use schema::presence_last_seen;

pub const MIGRATIONS: MigrationSet = MigrationSet { module: "realtime", postgres: || PG, sqlite: || SQLITE };
const PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/realtime/postgres");
const SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/realtime/sqlite");

pub async fn seen(db: &Db, user: Id, at: Instant) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::insert_into(presence_last_seen::table)
            .values((presence_last_seen::user_id.eq(user), presence_last_seen::last_seen_at.eq(at)))
            .on_conflict(presence_last_seen::user_id)
            .do_update()
            .set(presence_last_seen::last_seen_at.eq(at))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(())
    })
}

pub async fn last_seen(db: &Db, users: &[Id]) -> Result<Vec<(Id, Instant)>, DbError> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    run!(db, |conn| {
        Ok::<_, DbError>(
            presence_last_seen::table
                .filter(presence_last_seen::user_id.eq_any(users))
                .select((presence_last_seen::user_id, presence_last_seen::last_seen_at))
                .load(conn)
                .await?,
        )
    })
}
