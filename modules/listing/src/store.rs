//! Persistence of the listing module's tables: listings, photos, the nights
//! calendar and per-night prices.

use chrono::NaiveDate;
use hometrip_kernel::db::prelude::*;
use hometrip_kernel::db::{Db, DbError, MigrationSet};
use hometrip_kernel::events::{Envelope, OutboxWrite};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{run, transaction, Id};

pub mod schema {
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        listings (id) {
            id -> DbUuid,
            host_id -> DbUuid,
            status -> Text,
            title -> Text,
            description -> Text,
            property_type -> Text,
            address -> Text,
            lat -> Nullable<Double>,
            lon -> Nullable<Double>,
            details -> Text,
            pricing -> Text,
            rules -> Text,
            ical_token -> Text,
            created_at -> DbInstant,
            updated_at -> DbInstant,
            /// The secret the approximate location's offset is derived from.
            location_salt -> Text,
            rating -> Nullable<Double>,
            rating_score -> Nullable<Double>,
            review_count -> BigInt,
            host_suspended -> Bool,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        listing_photos (id) {
            id -> DbUuid,
            listing_id -> DbUuid,
            position -> Integer,
            storage_key -> Text,
            caption -> Text,
            created_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        calendar_nights (listing_id, night) {
            listing_id -> DbUuid,
            night -> Date,
            status -> Text,
            source -> Nullable<Text>,
            created_at -> DbInstant,
            /// The host had blocked the night before a booking took it.
            host_blocked -> Bool,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        night_prices (listing_id, night) {
            listing_id -> DbUuid,
            night -> Date,
            amount -> BigInt,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        calendar_imports (id) {
            id -> DbUuid,
            listing_id -> DbUuid,
            name -> Text,
            url -> Text,
            etag -> Nullable<Text>,
            last_synced_at -> Nullable<DbInstant>,
            last_error -> Nullable<Text>,
            created_at -> DbInstant,
            last_attempt_at -> Nullable<DbInstant>,
        }
    }
}
use schema::*;

/// Which of `ids` are listings still stored, as a set: projections of other
/// modules' events skip listings deleted since (inside their transaction).
macro_rules! existing_listings {
    ($conn:expr, $ids:expr) => {
        $crate::store::schema::listings::table
            .filter($crate::store::schema::listings::id.eq_any($ids))
            .select($crate::store::schema::listings::id)
            .load::<Id>($conn)
            .await?
            .into_iter()
            .collect::<std::collections::HashSet<Id>>()
    };
}
pub(crate) use existing_listings;

// Feeds are picked by their listing's status and host (subqueries, same module).
diesel::allow_tables_to_appear_in_same_query!(calendar_imports, listings);

pub const MIGRATIONS: MigrationSet = MigrationSet { module: "listing", postgres: || PG, sqlite: || SQLITE };
const PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/listing/postgres");
const SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/listing/sqlite");

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = listings, treat_none_as_null = true)]
pub struct ListingRow {
    pub id: Id,
    pub host_id: Id,
    pub status: String,
    pub title: String,
    pub description: String,
    pub property_type: String,
    pub address: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub details: String,
    pub pricing: String,
    pub rules: String,
    pub ical_token: String,
    pub created_at: Instant,
    pub updated_at: Instant,
    pub location_salt: String,
    /// The review module's figures (`review.listing_rating_changed`), written
    /// only by [`set_rating`]: a host's edit saving the whole row never
    /// writes back a rating it read before.
    #[diesel(skip_update)]
    pub rating: Option<f64>,
    #[diesel(skip_update)]
    pub rating_score: Option<f64>,
    #[diesel(skip_update)]
    pub review_count: i64,
    /// The host's account is suspended (written only by [`set_host_suspended`]).
    #[diesel(skip_update)]
    pub host_suspended: bool,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = listing_photos)]
pub struct PhotoRow {
    pub id: Id,
    pub listing_id: Id,
    pub position: i32,
    pub storage_key: String,
    pub caption: String,
    pub created_at: Instant,
}

/// A host's calendar edit over `[from, to)`.
#[derive(Debug, Clone)]
pub struct RangeEdit {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// `Some(false)` blocks, `Some(true)` unblocks (host and external blocks).
    pub available: Option<bool>,
    /// A price override for each night of the range.
    pub price: Option<i64>,
}

pub const BOOKED: &str = "booked";
pub const BLOCKED: &str = "blocked";
pub const EXTERNAL: &str = "external";

pub async fn insert(db: &Db, row: &ListingRow, event: &Envelope) -> Result<(), DbError> {
    transaction!(db, |conn| {
        diesel::insert_into(listings::table).values(row).execute(conn).await?;
        conn.append_event(event).await?;
        Ok::<_, DbError>(())
    })
}

pub async fn get(db: &Db, id: Id) -> Result<Option<ListingRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(listings::table.find(id).select(ListingRow::as_select()).first(conn).await.optional()?)
    })
}

/// Saves the whole row (terms and status) with its event.
pub async fn save(db: &Db, row: &ListingRow, event: &Envelope) -> Result<(), DbError> {
    transaction!(db, |conn| {
        diesel::update(listings::table.find(row.id)).set(row).execute(conn).await?;
        conn.append_event(event).await?;
        Ok::<_, DbError>(())
    })
}

/// The review module's figures for a listing, with the `listing.changed`
/// that carries them to search. `false` when the listing is gone.
pub async fn set_rating(
    db: &Db,
    listing_id: Id,
    rating: Option<f64>,
    score: Option<f64>,
    count: i64,
    event: &Envelope,
) -> Result<bool, DbError> {
    transaction!(db, |conn| {
        let n = diesel::update(listings::table.find(listing_id))
            .set((listings::rating.eq(rating), listings::rating_score.eq(score), listings::review_count.eq(count)))
            .execute(conn)
            .await?;
        if n == 1 {
            conn.append_event(event).await?;
        }
        Ok::<_, DbError>(n == 1)
    })
}

/// The listings of `host_id`.
pub async fn rows_of_host(db: &Db, host_id: Id) -> Result<Vec<ListingRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            listings::table.filter(listings::host_id.eq(host_id)).select(ListingRow::as_select()).load(conn).await?,
        )
    })
}

/// Marks every listing of `host_id` as its host's suspension says, with
/// their `listing.changed` events.
pub async fn set_host_suspended(db: &Db, host_id: Id, suspended: bool, events: &[Envelope]) -> Result<(), DbError> {
    transaction!(db, |conn| {
        diesel::update(listings::table.filter(listings::host_id.eq(host_id)))
            .set(listings::host_suspended.eq(suspended))
            .execute(conn)
            .await?;
        for e in events {
            conn.append_event(e).await?;
        }
        Ok::<_, DbError>(())
    })
}

pub async fn photos(db: &Db, listing_id: Id) -> Result<Vec<PhotoRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            listing_photos::table
                .filter(listing_photos::listing_id.eq(listing_id))
                .order((listing_photos::position.asc(), listing_photos::id.asc()))
                .select(PhotoRow::as_select())
                .load(conn)
                .await?,
        )
    })
}

pub async fn add_photos(db: &Db, rows: &[PhotoRow], event: &Envelope) -> Result<(), DbError> {
    transaction!(db, |conn| {
        // Row by row: diesel-async's SQLite wrapper has no multi-row insert.
        for row in rows {
            diesel::insert_into(listing_photos::table).values(row).execute(conn).await?;
        }
        conn.append_event(event).await?;
        Ok::<_, DbError>(())
    })
}

/// Nights booked on or after `from`.
pub async fn booked_from(db: &Db, listing_id: Id, from: NaiveDate) -> Result<i64, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            calendar_nights::table
                .filter(calendar_nights::listing_id.eq(listing_id))
                .filter(calendar_nights::status.eq(BOOKED))
                .filter(calendar_nights::night.ge(from))
                .count()
                .get_result::<i64>(conn)
                .await?,
        )
    })
}

pub async fn delete(db: &Db, id: Id, event: &Envelope) -> Result<(), DbError> {
    transaction!(db, |conn| {
        diesel::delete(night_prices::table.filter(night_prices::listing_id.eq(id))).execute(conn).await?;
        diesel::delete(calendar_nights::table.filter(calendar_nights::listing_id.eq(id))).execute(conn).await?;
        diesel::delete(listing_photos::table.filter(listing_photos::listing_id.eq(id))).execute(conn).await?;
        diesel::delete(listings::table.find(id)).execute(conn).await?;
        conn.append_event(event).await?;
        Ok::<_, DbError>(())
    })
}

/// Taken nights in `[from, to)` with how they are taken.
pub async fn taken_nights(
    db: &Db,
    listing_id: Id,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, String)>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            calendar_nights::table
                .filter(calendar_nights::listing_id.eq(listing_id))
                .filter(calendar_nights::night.ge(from))
                .filter(calendar_nights::night.lt(to))
                .order(calendar_nights::night.asc())
                .select((calendar_nights::night, calendar_nights::status))
                .load(conn)
                .await?,
        )
    })
}

/// What a quote reads: the listing's row, the taken nights of
/// `[around_from, around_to)` (the stay widened by the preparation margin)
/// and the price overrides of the stay `[from, to)`.
pub struct QuoteInputs {
    pub row: ListingRow,
    pub taken: Vec<(NaiveDate, String)>,
    pub overrides: Vec<(NaiveDate, i64)>,
}

macro_rules! listing_row {
    ($id:expr) => {
        listings::table.find($id).select(ListingRow::as_select())
    };
}
macro_rules! calendar_in {
    ($id:expr, $from:expr, $to:expr) => {
        calendar_nights::table
            .filter(calendar_nights::listing_id.eq($id))
            .filter(calendar_nights::night.ge($from))
            .filter(calendar_nights::night.lt($to))
            .order(calendar_nights::night.asc())
            .select((calendar_nights::night, calendar_nights::status))
    };
}
macro_rules! prices_in {
    ($id:expr, $from:expr, $to:expr) => {
        night_prices::table
            .filter(night_prices::listing_id.eq($id))
            .filter(night_prices::night.ge($from))
            .filter(night_prices::night.lt($to))
            .select((night_prices::night, night_prices::amount))
    };
}

type QuoteReads = (Option<ListingRow>, Vec<(NaiveDate, String)>, Vec<(NaiveDate, i64)>);

/// The quote's three reads on one backend: sent together on PostgreSQL (one
/// round trip; pipelining on a shared connection reference), one after the
/// other on SQLite (in-process: nothing to save).
trait QuoteRead {
    fn read_quote(
        &mut self,
        id: Id,
        around: (NaiveDate, NaiveDate),
        stay: (NaiveDate, NaiveDate),
    ) -> impl std::future::Future<Output = diesel::QueryResult<QuoteReads>> + Send;
}

impl QuoteRead for hometrip_kernel::db::PgConn {
    async fn read_quote(
        &mut self,
        id: Id,
        around: (NaiveDate, NaiveDate),
        stay: (NaiveDate, NaiveDate),
    ) -> diesel::QueryResult<QuoteReads> {
        let (mut a, mut b, mut c) = (&*self, &*self, &*self);
        // All three awaited (none dropped in flight); the first error in order wins.
        let (row, taken, overrides) = futures_util::future::join3(
            listing_row!(id).first::<ListingRow>(&mut a),
            calendar_in!(id, around.0, around.1).load::<(NaiveDate, String)>(&mut b),
            prices_in!(id, stay.0, stay.1).load::<(NaiveDate, i64)>(&mut c),
        )
        .await;
        Ok((row.optional()?, taken?, overrides?))
    }
}

impl QuoteRead for hometrip_kernel::db::SqliteConn {
    async fn read_quote(
        &mut self,
        id: Id,
        around: (NaiveDate, NaiveDate),
        stay: (NaiveDate, NaiveDate),
    ) -> diesel::QueryResult<QuoteReads> {
        let Some(row) = listing_row!(id).first::<ListingRow>(self).await.optional()? else {
            return Ok((None, Vec::new(), Vec::new()));
        };
        let taken = calendar_in!(id, around.0, around.1).load(self).await?;
        let overrides = prices_in!(id, stay.0, stay.1).load(self).await?;
        Ok((Some(row), taken, overrides))
    }
}

/// The quote's inputs, `None` for an unknown listing. `around` must cover the
/// stay and the listing's preparation margin, which is not known before the
/// row is read: callers pass the widest margin allowed.
pub async fn quote_inputs(
    db: &Db,
    id: Id,
    around: (NaiveDate, NaiveDate),
    stay: (NaiveDate, NaiveDate),
) -> Result<Option<QuoteInputs>, DbError> {
    let (row, taken, overrides) = run!(db, |conn| { conn.read_quote(id, around, stay).await.map_err(DbError::from) })?;
    Ok(row.map(|row| QuoteInputs { row, taken, overrides }))
}

/// Price overrides in `[from, to)`.
pub async fn overrides(
    db: &Db,
    listing_id: Id,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, i64)>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            night_prices::table
                .filter(night_prices::listing_id.eq(listing_id))
                .filter(night_prices::night.ge(from))
                .filter(night_prices::night.lt(to))
                .select((night_prices::night, night_prices::amount))
                .load(conn)
                .await?,
        )
    })
}

/// Why a calendar edit was refused.
#[derive(Debug)]
pub enum CalendarError {
    /// The edit would unblock or reprice this booked night.
    Booked(NaiveDate),
    Db(DbError),
}

impl From<DbError> for CalendarError {
    fn from(e: DbError) -> Self {
        CalendarError::Db(e)
    }
}

impl From<diesel::result::Error> for CalendarError {
    fn from(e: diesel::result::Error) -> Self {
        CalendarError::Db(e.into())
    }
}

/// Applies a host's edits in one transaction: all or nothing.
pub async fn edit_calendar(
    db: &Db,
    listing_id: Id,
    edits: &[RangeEdit],
    event: &Envelope,
) -> Result<(), CalendarError> {
    let now = Instant::now();
    transaction!(db, |conn| {
        for edit in edits {
            let nights: Vec<NaiveDate> = edit.from.iter_days().take_while(|n| *n < edit.to).collect();
            if edit.available == Some(true) || edit.price.is_some() {
                let booked: Option<NaiveDate> = calendar_nights::table
                    .filter(calendar_nights::listing_id.eq(listing_id))
                    .filter(calendar_nights::status.eq(BOOKED))
                    .filter(calendar_nights::night.ge(edit.from))
                    .filter(calendar_nights::night.lt(edit.to))
                    .select(calendar_nights::night)
                    .order(calendar_nights::night.asc())
                    .first(conn)
                    .await
                    .optional()?;
                if let Some(night) = booked {
                    return Err(CalendarError::Booked(night));
                }
            }
            match edit.available {
                Some(false) => {
                    // Row by row (no multi-row insert on SQLite here), in night order so
                    // concurrent writers take the unique-key locks in the same order.
                    // A night a booking or an import holds stays theirs, remembered
                    // as blocked by the host for when they let it go.
                    for night in &nights {
                        diesel::insert_into(calendar_nights::table)
                            .values((
                                calendar_nights::listing_id.eq(listing_id),
                                calendar_nights::night.eq(*night),
                                calendar_nights::status.eq(BLOCKED),
                                calendar_nights::source.eq(None::<String>),
                                calendar_nights::created_at.eq(now),
                            ))
                            .on_conflict((calendar_nights::listing_id, calendar_nights::night))
                            .do_update()
                            .set(
                                calendar_nights::host_blocked
                                    .eq(calendar_nights::host_blocked.or(calendar_nights::source.is_not_null())),
                            )
                            .execute(conn)
                            .await?;
                    }
                }
                Some(true) => {
                    diesel::delete(
                        calendar_nights::table
                            .filter(calendar_nights::listing_id.eq(listing_id))
                            .filter(calendar_nights::status.ne(BOOKED))
                            .filter(calendar_nights::night.ge(edit.from))
                            .filter(calendar_nights::night.lt(edit.to)),
                    )
                    .execute(conn)
                    .await?;
                }
                None => {}
            }
            if let Some(amount) = edit.price {
                for night in &nights {
                    diesel::insert_into(night_prices::table)
                        .values((
                            night_prices::listing_id.eq(listing_id),
                            night_prices::night.eq(*night),
                            night_prices::amount.eq(amount),
                        ))
                        .on_conflict((night_prices::listing_id, night_prices::night))
                        .do_update()
                        .set(night_prices::amount.eq(amount))
                        .execute(conn)
                        .await?;
                }
            }
        }
        conn.append_event(event).await?;
        Ok::<_, CalendarError>(())
    })
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = calendar_imports)]
pub struct ImportRow {
    pub id: Id,
    pub listing_id: Id,
    pub name: String,
    pub url: String,
    pub etag: Option<String>,
    pub last_synced_at: Option<Instant>,
    pub last_error: Option<String>,
    pub created_at: Instant,
    /// The last fetch, successful or not.
    pub last_attempt_at: Option<Instant>,
}

pub async fn set_ical_token(db: &Db, id: Id, token: &str) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::update(listings::table.find(id)).set(listings::ical_token.eq(token)).execute(conn).await?;
        Ok::<_, DbError>(())
    })
}

pub async fn insert_import(db: &Db, row: &ImportRow) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::insert_into(calendar_imports::table).values(row).execute(conn).await?;
        Ok::<_, DbError>(())
    })
}

pub async fn imports(db: &Db, listing_id: Id) -> Result<Vec<ImportRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            calendar_imports::table
                .filter(calendar_imports::listing_id.eq(listing_id))
                .order(calendar_imports::created_at.asc())
                .select(ImportRow::as_select())
                .load(conn)
                .await?,
        )
    })
}

/// The feeds a scheduled sync fetches, with their listing's host: only those
/// of published listings (drafts and unlisted listings take no one's turn).
pub async fn feeds_to_sync(db: &Db) -> Result<Vec<(ImportRow, Id)>, DbError> {
    let imports: Vec<ImportRow> = run!(db, |conn| {
        Ok::<_, DbError>(
            calendar_imports::table
                .filter(
                    calendar_imports::listing_id
                        .eq_any(listings::table.filter(listings::status.eq("published")).select(listings::id)),
                )
                .select(ImportRow::as_select())
                .load(conn)
                .await?,
        )
    })?;
    let mut listing_ids: Vec<Id> = imports.iter().map(|i| i.listing_id).collect();
    listing_ids.sort();
    listing_ids.dedup();
    let mut hosts = std::collections::HashMap::new();
    for chunk in listing_ids.chunks(500) {
        let rows: Vec<(Id, Id)> = run!(db, |conn| {
            Ok::<_, DbError>(
                listings::table
                    .filter(listings::id.eq_any(chunk))
                    .select((listings::id, listings::host_id))
                    .load(conn)
                    .await?,
            )
        })?;
        hosts.extend(rows);
    }
    Ok(imports.into_iter().filter_map(|i| hosts.get(&i.listing_id).copied().map(|host| (i, host))).collect())
}

/// Feeds registered on all of a host's listings.
pub async fn host_import_count(db: &Db, host_id: Id) -> Result<i64, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            calendar_imports::table
                .filter(
                    calendar_imports::listing_id
                        .eq_any(listings::table.filter(listings::host_id.eq(host_id)).select(listings::id)),
                )
                .count()
                .get_result(conn)
                .await?,
        )
    })
}

pub async fn import(db: &Db, id: Id) -> Result<Option<ImportRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(calendar_imports::table.find(id).select(ImportRow::as_select()).first(conn).await.optional()?)
    })
}

pub async fn record_import_error(db: &Db, id: Id, error: &str) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::update(calendar_imports::table.find(id))
            .set((
                calendar_imports::last_error.eq(Some(error)),
                calendar_imports::last_attempt_at.eq(Some(Instant::now())),
            ))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(())
    })
}

/// Nights currently blocked by an import.
pub async fn import_nights(db: &Db, import_id: Id) -> Result<i64, DbError> {
    let source = import_id.to_string();
    run!(db, |conn| {
        Ok::<_, DbError>(
            calendar_nights::table
                .filter(calendar_nights::source.eq(&source))
                .filter(calendar_nights::status.eq(EXTERNAL))
                .count()
                .get_result::<i64>(conn)
                .await?,
        )
    })
}

/// Frees the nights `$rows` selects, held by a booking or an import; those the
/// host had blocked as well go back to host blocks.
macro_rules! let_go {
    ($conn:expr, $rows:expr) => {{
        diesel::update($rows.clone().filter(calendar_nights::host_blocked.eq(true)))
            .set((
                calendar_nights::status.eq(BLOCKED),
                calendar_nights::source.eq(None::<String>),
                calendar_nights::host_blocked.eq(false),
            ))
            .execute($conn)
            .await?;
        diesel::delete($rows).execute($conn).await?
    }};
}

/// Makes the import's external nights from `from` on exactly `nights`: adds the
/// new ones (a night already taken otherwise stays as it is) and frees those
/// that left the feed. One transaction, with the import's sync record.
pub async fn replace_import_nights(
    db: &Db,
    import: &ImportRow,
    nights: &std::collections::BTreeSet<NaiveDate>,
    from: NaiveDate,
    etag: Option<&str>,
    event: &Envelope,
) -> Result<(), DbError> {
    let source = import.id.to_string();
    let now = Instant::now();
    transaction!(db, |conn| {
        let held: Vec<NaiveDate> = calendar_nights::table
            .filter(calendar_nights::source.eq(&source))
            .filter(calendar_nights::status.eq(EXTERNAL))
            .filter(calendar_nights::night.ge(from))
            .select(calendar_nights::night)
            .load(conn)
            .await?;
        let gone: Vec<NaiveDate> = held.iter().filter(|n| !nights.contains(n)).copied().collect();
        for chunk in gone.chunks(500) {
            let_go!(
                conn,
                calendar_nights::table
                    .filter(calendar_nights::listing_id.eq(import.listing_id))
                    .filter(calendar_nights::source.eq(&source))
                    .filter(calendar_nights::night.eq_any(chunk.to_vec()))
            );
        }
        for night in nights.iter().filter(|n| !held.contains(n)) {
            diesel::insert_into(calendar_nights::table)
                .values((
                    calendar_nights::listing_id.eq(import.listing_id),
                    calendar_nights::night.eq(*night),
                    calendar_nights::status.eq(EXTERNAL),
                    calendar_nights::source.eq(Some(&source)),
                    calendar_nights::created_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
        }
        diesel::update(calendar_imports::table.find(import.id))
            .set((
                calendar_imports::etag.eq(etag),
                calendar_imports::last_synced_at.eq(Some(now)),
                calendar_imports::last_attempt_at.eq(Some(now)),
                calendar_imports::last_error.eq(None::<String>),
            ))
            .execute(conn)
            .await?;
        conn.append_event(event).await?;
        Ok::<_, DbError>(())
    })
}

/// A feed that did not change (HTTP 304): only the sync time moves.
pub async fn touch_import(db: &Db, id: Id) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::update(calendar_imports::table.find(id))
            .set((
                calendar_imports::last_synced_at.eq(Some(Instant::now())),
                calendar_imports::last_attempt_at.eq(Some(Instant::now())),
                calendar_imports::last_error.eq(None::<String>),
            ))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(())
    })
}

/// Removes an import and frees the nights it blocked.
pub async fn delete_import(db: &Db, import: &ImportRow, event: &Envelope) -> Result<(), DbError> {
    let source = import.id.to_string();
    transaction!(db, |conn| {
        let_go!(
            conn,
            calendar_nights::table
                .filter(calendar_nights::listing_id.eq(import.listing_id))
                .filter(calendar_nights::source.eq(&source))
        );
        diesel::delete(calendar_imports::table.find(import.id)).execute(conn).await?;
        conn.append_event(event).await?;
        Ok::<_, DbError>(())
    })
}

/// Renumbers the listing's photos in the given order (every photo, once).
pub async fn order_photos(db: &Db, listing_id: Id, ids: &[Id], event: &Envelope) -> Result<(), DbError> {
    transaction!(db, |conn| {
        for (position, id) in (0i32..).zip(ids) {
            diesel::update(listing_photos::table.find(*id).filter(listing_photos::listing_id.eq(listing_id)))
                .set(listing_photos::position.eq(position))
                .execute(conn)
                .await?;
        }
        conn.append_event(event).await?;
        Ok::<_, DbError>(())
    })
}

pub async fn caption_photo(db: &Db, photo_id: Id, caption: &str, event: &Envelope) -> Result<(), DbError> {
    transaction!(db, |conn| {
        diesel::update(listing_photos::table.find(photo_id))
            .set(listing_photos::caption.eq(caption))
            .execute(conn)
            .await?;
        conn.append_event(event).await?;
        Ok::<_, DbError>(())
    })
}

pub async fn delete_photo(db: &Db, photo_id: Id, event: &Envelope) -> Result<(), DbError> {
    transaction!(db, |conn| {
        diesel::delete(listing_photos::table.find(photo_id)).execute(conn).await?;
        conn.append_event(event).await?;
        Ok::<_, DbError>(())
    })
}

/// Bulk load of generated demo listings, their photos and booked nights, in one
/// transaction per batch. No events: search is rebuilt with `hometrip reindex`.
pub async fn insert_demo_batch(
    db: &Db,
    listings_rows: &[ListingRow],
    photo_rows: &[PhotoRow],
    booked: &[(Id, NaiveDate)],
) -> Result<(), DbError> {
    let now = Instant::now();
    transaction!(db, |conn| {
        for row in listings_rows {
            diesel::insert_into(listings::table).values(row).execute(conn).await?;
        }
        for row in photo_rows {
            diesel::insert_into(listing_photos::table).values(row).execute(conn).await?;
        }
        for (listing_id, night) in booked {
            diesel::insert_into(calendar_nights::table)
                .values((
                    calendar_nights::listing_id.eq(*listing_id),
                    calendar_nights::night.eq(*night),
                    calendar_nights::status.eq(BOOKED),
                    calendar_nights::source.eq(Some("demo")),
                    calendar_nights::created_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
        }
        Ok::<_, DbError>(())
    })
}

/// Published listings ordered by id, after `after`.
pub async fn published_page(db: &Db, after: Option<Id>, limit: i64) -> Result<Vec<ListingRow>, DbError> {
    run!(db, |conn| {
        let mut q = listings::table
            .filter(listings::status.eq("published"))
            .filter(listings::host_suspended.eq(false))
            .order(listings::id.asc())
            .limit(limit)
            .select(ListingRow::as_select())
            .into_boxed();
        if let Some(after) = after {
            q = q.filter(listings::id.gt(after));
        }
        Ok::<_, DbError>(q.load(conn).await?)
    })
}

/// The rows of `ids` that exist, by id.
pub async fn rows_of(db: &Db, ids: &[Id]) -> Result<Vec<ListingRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            listings::table
                .filter(listings::id.eq_any(ids))
                .order(listings::id.asc())
                .select(ListingRow::as_select())
                .load(conn)
                .await?,
        )
    })
}

/// Photos of several listings, in order.
pub async fn photos_of(db: &Db, ids: &[Id]) -> Result<Vec<PhotoRow>, DbError> {
    let ids = ids.to_vec();
    run!(db, |conn| {
        Ok::<_, DbError>(
            listing_photos::table
                .filter(listing_photos::listing_id.eq_any(&ids))
                .order((listing_photos::listing_id.asc(), listing_photos::position.asc(), listing_photos::id.asc()))
                .select(PhotoRow::as_select())
                .load(conn)
                .await?,
        )
    })
}

/// Taken nights of several listings in `[from, to)`.
pub async fn taken_nights_of(
    db: &Db,
    ids: &[Id],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(Id, NaiveDate)>, DbError> {
    let ids = ids.to_vec();
    run!(db, |conn| {
        Ok::<_, DbError>(
            calendar_nights::table
                .filter(calendar_nights::listing_id.eq_any(&ids))
                .filter(calendar_nights::night.ge(from))
                .filter(calendar_nights::night.lt(to))
                .select((calendar_nights::listing_id, calendar_nights::night))
                .load(conn)
                .await?,
        )
    })
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = calendar_nights)]
struct BookedRow {
    listing_id: Id,
    night: NaiveDate,
    status: &'static str,
    source: Option<String>,
    created_at: Instant,
}

/// On a booking taking a night: remembers whether the host had blocked it
/// (the night goes back to blocked when the booking lets it go).
macro_rules! keeps_host_block {
    () => {
        calendar_nights::host_blocked.eq(calendar_nights::host_blocked
            .or(calendar_nights::status.eq(BLOCKED).and(calendar_nights::source.is_null())))
    };
}

/// Writes a booking's nights as `booked`, over any block: one statement on
/// PostgreSQL, row by row on SQLite (no multi-row insert in diesel-async's
/// SQLite wrapper) — a marked backend exception, like the booking module's.
trait BookedWrite {
    fn upsert_booked(
        &mut self,
        rows: &[BookedRow],
    ) -> impl std::future::Future<Output = diesel::QueryResult<()>> + Send;
}

impl BookedWrite for hometrip_kernel::db::PgConn {
    async fn upsert_booked(&mut self, rows: &[BookedRow]) -> diesel::QueryResult<()> {
        use diesel::upsert::excluded;
        diesel::insert_into(calendar_nights::table)
            .values(rows)
            .on_conflict((calendar_nights::listing_id, calendar_nights::night))
            .do_update()
            .set((
                calendar_nights::status.eq(excluded(calendar_nights::status)),
                calendar_nights::source.eq(excluded(calendar_nights::source)),
                keeps_host_block!(),
            ))
            .execute(self)
            .await
            .map(|_| ())
    }
}

impl BookedWrite for hometrip_kernel::db::SqliteConn {
    async fn upsert_booked(&mut self, rows: &[BookedRow]) -> diesel::QueryResult<()> {
        for row in rows {
            diesel::insert_into(calendar_nights::table)
                .values(row)
                .on_conflict((calendar_nights::listing_id, calendar_nights::night))
                .do_update()
                .set((
                    calendar_nights::status.eq(row.status),
                    calendar_nights::source.eq(&row.source),
                    keeps_host_block!(),
                ))
                .execute(self)
                .await?;
        }
        Ok(())
    }
}

/// What a booking event does to the calendar's copy of its nights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookedNights {
    /// The booking holds them: `booked`, tagged with the booking's id. A host
    /// block or an imported night that slipped in since the booking checked
    /// the calendar yields to it (the booking module is the authority); a
    /// host block is remembered and comes back on release, an imported night
    /// at the feed's next sync.
    Hold,
    /// The booking ended without the stay: its nights are free again.
    Release,
    /// The host cancelled: the nights stay closed, as a host block.
    Block,
}

/// One booking event's effect on its listing's calendar.
#[derive(Debug, Clone)]
pub struct BookedChange {
    pub listing_id: Id,
    pub booking_id: Id,
    pub nights: Vec<NaiveDate>,
    pub action: BookedNights,
}

/// Applies booking events to the calendar, in order, with one
/// `listing.calendar_changed` event per listing (`changed`), all in one
/// transaction; listings that no longer exist are skipped. Consecutive holds
/// go in one upsert. Idempotent.
pub async fn project_bookings(db: &Db, changes: &[BookedChange], changed: &[(Id, Envelope)]) -> Result<(), DbError> {
    let mut ids: Vec<Id> = changes.iter().map(|c| c.listing_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let now = Instant::now();
    transaction!(db, |conn| {
        let existing = existing_listings!(conn, &ids);
        // Holds waiting to be written, by night (a night once, the last hold
        // winning), written in key order so concurrent writers lock rows in one order.
        let mut holds: std::collections::BTreeMap<(Id, NaiveDate), BookedRow> = std::collections::BTreeMap::new();
        for change in changes.iter().filter(|c| existing.contains(&c.listing_id)) {
            let source = change.booking_id.to_string();
            if change.action == BookedNights::Hold {
                for night in &change.nights {
                    let row = BookedRow {
                        listing_id: change.listing_id,
                        night: *night,
                        status: BOOKED,
                        source: Some(source.clone()),
                        created_at: now,
                    };
                    holds.insert((change.listing_id, *night), row);
                }
                continue;
            }
            // A release or block comes after the holds before it.
            if !holds.is_empty() {
                conn.upsert_booked(&std::mem::take(&mut holds).into_values().collect::<Vec<_>>()).await?;
            }
            let of_booking = calendar_nights::table
                .filter(calendar_nights::listing_id.eq(change.listing_id))
                .filter(calendar_nights::source.eq(source));
            match change.action {
                BookedNights::Release => let_go!(conn, of_booking),
                _ => {
                    diesel::update(of_booking)
                        .set((
                            calendar_nights::status.eq(BLOCKED),
                            calendar_nights::source.eq(None::<String>),
                            calendar_nights::host_blocked.eq(false),
                        ))
                        .execute(conn)
                        .await?
                }
            };
        }
        if !holds.is_empty() {
            conn.upsert_booked(&std::mem::take(&mut holds).into_values().collect::<Vec<_>>()).await?;
        }
        let events: Vec<Envelope> =
            changed.iter().filter(|(id, _)| existing.contains(id)).map(|(_, event)| event.clone()).collect();
        conn.append_events(&events).await?;
        Ok::<_, DbError>(())
    })
}
