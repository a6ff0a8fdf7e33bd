//! Identifiers: UUIDv7 (time-ordered), stored as native `uuid` on PostgreSQL and
//! as text on SQLite through one diesel SQL type.

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sqlite::Sqlite;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::str::FromStr;

use crate::db::sql::DbUuid;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, AsExpression, FromSqlRow,
)]
#[diesel(sql_type = DbUuid)]
#[serde(transparent)]
pub struct Id(pub uuid::Uuid);

impl Id {
    /// A new time-ordered id.
    pub fn new() -> Self {
        Id(uuid::Uuid::now_v7())
    }
    pub fn nil() -> Self {
        Id(uuid::Uuid::nil())
    }
    /// The smallest id made at `at` (to the millisecond): every id made
    /// earlier sorts below it, every id made then or later at or above it, in
    /// memory and in both databases (bytes on PostgreSQL, hyphenated
    /// lowercase text on SQLite). Finds rows by age through a key on the id.
    pub fn first_at(at: crate::time::Instant) -> Self {
        let millis = u64::try_from(at.0.timestamp_millis()).unwrap_or(0);
        Id(uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid())
    }
}

impl Default for Id {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Id {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Id)
    }
}

impl From<uuid::Uuid> for Id {
    fn from(u: uuid::Uuid) -> Self {
        Id(u)
    }
}

impl utoipa::PartialSchema for Id {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid)))
            .into()
    }
}
impl utoipa::ToSchema for Id {}

impl ToSql<DbUuid, Pg> for Id {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(self.0.as_bytes())?;
        Ok(IsNull::No)
    }
}

impl FromSql<DbUuid, Pg> for Id {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        Ok(Id(uuid::Uuid::from_slice(value.as_bytes())?))
    }
}

impl ToSql<DbUuid, Sqlite> for Id {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<DbUuid, Sqlite> for Id {
    fn from_sql(value: <Sqlite as diesel::backend::Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<diesel::sql_types::Text, Sqlite>>::from_sql(value)?;
        Ok(Id(uuid::Uuid::parse_str(&text)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Instant;

    #[test]
    fn first_at_splits_ids_by_when_they_were_made() {
        let before = Id::new();
        std::thread::sleep(std::time::Duration::from_millis(3));
        let cut = Instant::now();
        let after = Id::new();
        let floor = Id::first_at(cut);
        assert!(before < floor && floor <= after, "{before} {floor} {after}");
        // The same order as text (SQLite keeps ids as hyphenated lowercase).
        assert!(before.to_string() < floor.to_string() && floor.to_string() <= after.to_string());
        assert_eq!(Id::first_at(Instant(chrono::DateTime::UNIX_EPOCH)).0.get_version_num(), 7);
    }
}
