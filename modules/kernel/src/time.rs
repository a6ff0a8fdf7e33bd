//! Instants: UTC, microsecond precision (what PostgreSQL keeps), stored as
//! `timestamptz` on PostgreSQL and as RFC 3339 text on SQLite.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{Timestamptz, TimestamptzSqlite};
use diesel::sqlite::Sqlite;
use serde::{Deserialize, Serialize};

use crate::db::sql::DbInstant;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, AsExpression, FromSqlRow,
)]
#[diesel(sql_type = DbInstant)]
#[serde(transparent)]
pub struct Instant(pub DateTime<Utc>);

impl Instant {
    pub fn now() -> Self {
        Instant(Utc::now().trunc_subsecs(6))
    }
    pub fn plus(self, d: chrono::Duration) -> Self {
        Instant(self.0 + d)
    }
    pub fn minus(self, d: chrono::Duration) -> Self {
        Instant(self.0 - d)
    }
    pub fn unix(self) -> i64 {
        self.0.timestamp()
    }
}

impl From<DateTime<Utc>> for Instant {
    fn from(d: DateTime<Utc>) -> Self {
        Instant(d.trunc_subsecs(6))
    }
}

impl utoipa::PartialSchema for Instant {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime)))
            .into()
    }
}
impl utoipa::ToSchema for Instant {}

impl ToSql<DbInstant, Pg> for Instant {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <DateTime<Utc> as ToSql<Timestamptz, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<DbInstant, Pg> for Instant {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <DateTime<Utc> as FromSql<Timestamptz, Pg>>::from_sql(value).map(Instant)
    }
}

impl ToSql<DbInstant, Sqlite> for Instant {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        <DateTime<Utc> as ToSql<TimestamptzSqlite, Sqlite>>::to_sql(&self.0, out)
    }
}

impl FromSql<DbInstant, Sqlite> for Instant {
    fn from_sql(value: <Sqlite as diesel::backend::Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        <DateTime<Utc> as FromSql<TimestamptzSqlite, Sqlite>>::from_sql(value).map(Instant)
    }
}

/// The time the booking and payment rules run on: the system clock, moved
/// forward by an offset that only tests set (`testing.clock_control`), so
/// expiries, check-outs and payout releases can be reached without waiting.
/// Tokens and logs keep the system clock.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_secs: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    pub fn system() -> Self {
        Clock::default()
    }

    pub fn now(&self) -> Instant {
        let offset = self.offset_secs.load(std::sync::atomic::Ordering::Relaxed);
        Instant::now().plus(chrono::Duration::seconds(offset))
    }

    /// Moves this clock (and every copy of it) forward; returns the new offset.
    pub fn advance(&self, secs: i64) -> i64 {
        self.offset_secs.fetch_add(secs.max(0), std::sync::atomic::Ordering::Relaxed) + secs.max(0)
    }

    pub fn offset_secs(&self) -> i64 {
        self.offset_secs.load(std::sync::atomic::Ordering::Relaxed)
    }
}
