//! Persistence of reviewable stays, reviews, flags, appeals and listing
//! rating sums. A status change and its events (and the jobs it schedules)
//! commit in one transaction.

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
        review_stays (booking_id) {
            booking_id -> DbUuid,
            listing_id -> DbUuid,
            guest_id -> DbUuid,
            host_id -> DbUuid,
            checked_out_at -> DbInstant,
            window_ends_at -> DbInstant,
            revealed_at -> Nullable<DbInstant>,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        reviews (id) {
            id -> DbUuid,
            booking_id -> DbUuid,
            listing_id -> DbUuid,
            author_id -> DbUuid,
            author_name -> Text,
            subject_id -> DbUuid,
            author_role -> Text,
            rating -> Integer,
            ratings -> Text,
            comment -> Text,
            fingerprint -> Nullable<BigInt>,
            status -> Text,
            hold_reasons -> Text,
            flagged -> Bool,
            created_at -> DbInstant,
            published_at -> Nullable<DbInstant>,
            response -> Nullable<Text>,
            response_at -> Nullable<DbInstant>,
            decided_by -> Nullable<DbUuid>,
            decision_reason -> Nullable<Text>,
            decided_at -> Nullable<DbInstant>,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        review_flags (review_id, user_id) {
            review_id -> DbUuid,
            user_id -> DbUuid,
            reason -> Text,
            created_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        review_appeals (review_id) {
            review_id -> DbUuid,
            author_id -> DbUuid,
            reason -> Text,
            created_at -> DbInstant,
            removed_by -> DbUuid,
            decision -> Nullable<Text>,
            decided_by -> Nullable<DbUuid>,
            decision_reason -> Nullable<Text>,
            decided_at -> Nullable<DbInstant>,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        listing_ratings (listing_id) {
            listing_id -> DbUuid,
            count -> BigInt,
            overall_sum -> BigInt,
            sums -> Text,
            updated_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        review_market (id) {
            id -> Integer,
            prior_milli -> BigInt,
            updated_at -> DbInstant,
        }
    }
    diesel::allow_tables_to_appear_in_same_query!(reviews, review_stays, review_flags, review_appeals);
}
use schema::{listing_ratings, review_appeals, review_flags, review_market, review_stays, reviews};

pub const MIGRATIONS: MigrationSet = MigrationSet { module: "review", postgres: || PG, sqlite: || SQLITE };
const PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/review/postgres");
const SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/review/sqlite");

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = review_stays)]
pub struct StayRow {
    pub booking_id: Id,
    pub listing_id: Id,
    pub guest_id: Id,
    pub host_id: Id,
    pub checked_out_at: Instant,
    pub window_ends_at: Instant,
    pub revealed_at: Option<Instant>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = reviews)]
pub struct ReviewRow {
    pub id: Id,
    pub booking_id: Id,
    pub listing_id: Id,
    pub author_id: Id,
    pub author_name: String,
    pub subject_id: Id,
    pub author_role: String,
    pub rating: i32,
    pub ratings: String,
    pub comment: String,
    pub fingerprint: Option<i64>,
    pub status: String,
    pub hold_reasons: String,
    pub flagged: bool,
    pub created_at: Instant,
    pub published_at: Option<Instant>,
    pub response: Option<String>,
    pub response_at: Option<Instant>,
    pub decided_by: Option<Id>,
    pub decision_reason: Option<String>,
    pub decided_at: Option<Instant>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = review_appeals)]
pub struct AppealRow {
    pub review_id: Id,
    pub author_id: Id,
    pub reason: String,
    pub created_at: Instant,
    pub removed_by: Id,
    pub decision: Option<String>,
    pub decided_by: Option<Id>,
    pub decision_reason: Option<String>,
    pub decided_at: Option<Instant>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = listing_ratings)]
pub struct RatingRow {
    pub listing_id: Id,
    pub count: i64,
    pub overall_sum: i64,
    pub sums: String,
    pub updated_at: Instant,
}

/// A completed stay becomes reviewable, with its jobs (reminders, the
/// window's end). Once: a redelivered event changes nothing.
pub async fn open_stay(db: &Db, stay: &StayRow, jobs: &[NewJob]) -> Result<bool, DbError> {
    transaction!(db, |conn| {
        let inserted =
            diesel::insert_into(review_stays::table).values(stay).on_conflict_do_nothing().execute(conn).await?;
        if inserted == 1 {
            for job in jobs {
                conn.schedule_job(job).await?;
            }
        }
        Ok::<_, DbError>(inserted == 1)
    })
}

pub async fn stay(db: &Db, booking_id: Id) -> Result<Option<StayRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            review_stays::table.find(booking_id).select(StayRow::as_select()).first(conn).await.optional()?,
        )
    })
}

/// Stays of `user` (as guest or host) whose window ends after `now`, the
/// soonest first, and which of them `user` already reviewed.
pub async fn open_stays_of(db: &Db, user: Id, now: Instant) -> Result<(Vec<StayRow>, Vec<Id>), DbError> {
    run!(db, |conn| {
        let stays: Vec<StayRow> = review_stays::table
            .filter(review_stays::guest_id.eq(user).or(review_stays::host_id.eq(user)))
            .filter(review_stays::window_ends_at.gt(now))
            .order(review_stays::window_ends_at.asc())
            .limit(200)
            .select(StayRow::as_select())
            .load(conn)
            .await?;
        let ids: Vec<Id> = stays.iter().map(|s| s.booking_id).collect();
        let reviewed: Vec<Id> = reviews::table
            .filter(reviews::author_id.eq(user))
            .filter(reviews::booking_id.eq_any(&ids))
            .select(reviews::booking_id)
            .load(conn)
            .await?;
        Ok::<_, DbError>((stays, reviewed))
    })
}

pub async fn review(db: &Db, id: Id) -> Result<Option<ReviewRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(reviews::table.find(id).select(ReviewRow::as_select()).first(conn).await.optional()?)
    })
}

pub async fn reviews_of_booking(db: &Db, booking_id: Id) -> Result<Vec<ReviewRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            reviews::table
                .filter(reviews::booking_id.eq(booking_id))
                .order(reviews::created_at.asc())
                .select(ReviewRow::as_select())
                .load(conn)
                .await?,
        )
    })
}

/// Fingerprints of the author's and the listing's latest reviews (what a
/// new review is compared with for near-duplicates).
pub async fn fingerprints_near(db: &Db, author_id: Id, listing_id: Id) -> Result<Vec<i64>, DbError> {
    run!(db, |conn| {
        let mut found: Vec<Option<i64>> = reviews::table
            .filter(reviews::author_id.eq(author_id))
            .order(reviews::created_at.desc())
            .limit(200)
            .select(reviews::fingerprint)
            .load(conn)
            .await?;
        let of_listing: Vec<Option<i64>> = reviews::table
            .filter(reviews::listing_id.eq(listing_id))
            .filter(reviews::author_id.ne(author_id))
            .order(reviews::created_at.desc())
            .limit(500)
            .select(reviews::fingerprint)
            .load(conn)
            .await?;
        found.extend(of_listing);
        Ok::<_, DbError>(found.into_iter().flatten().collect())
    })
}

/// Inserts a review (409 on a second one by the same side), with the jobs
/// and events its arrival causes.
pub async fn insert_review(db: &Db, row: &ReviewRow, jobs: &[NewJob]) -> Result<(), DbError> {
    transaction!(db, |conn| {
        diesel::insert_into(reviews::table).values(row).execute(conn).await?;
        for job in jobs {
            conn.schedule_job(job).await?;
        }
        Ok::<_, DbError>(())
    })
}

/// Lifts the double-blind of a stay: its hidden reviews publish together,
/// now, with their events and the job that sums the listing's ratings
/// again. Returns the reviews published.
pub async fn reveal(
    db: &Db,
    booking_id: Id,
    now: Instant,
    published_event: impl Fn(&ReviewRow) -> Result<Envelope, DbError> + Send + Sync,
    resum: &NewJob,
) -> Result<Vec<ReviewRow>, DbError> {
    transaction!(db, |conn| {
        diesel::update(review_stays::table.find(booking_id).filter(review_stays::revealed_at.is_null()))
            .set(review_stays::revealed_at.eq(Some(now)))
            .execute(conn)
            .await?;
        let hidden: Vec<ReviewRow> = reviews::table
            .filter(reviews::booking_id.eq(booking_id))
            .filter(reviews::status.eq("hidden"))
            .select(ReviewRow::as_select())
            .load(conn)
            .await?;
        let mut published = Vec::new();
        for mut r in hidden {
            diesel::update(reviews::table.find(r.id))
                .set((reviews::status.eq("published"), reviews::published_at.eq(Some(now))))
                .execute(conn)
                .await?;
            r.status = "published".to_owned();
            r.published_at = Some(now);
            conn.append_event(&published_event(&r)?).await?;
            published.push(r);
        }
        if !published.is_empty() {
            conn.schedule_job(resum).await?;
        }
        Ok::<_, DbError>(published)
    })
}

/// Sets a review's status, when it still has the one expected (a race with
/// another moderator or the reveal loses), with its events.
#[allow(clippy::too_many_arguments)]
pub async fn set_status(
    db: &Db,
    id: Id,
    from: &[&str],
    to: &str,
    published_at: Option<Instant>,
    decision: Option<(Id, &str, Instant)>,
    events: &[Envelope],
    jobs: &[NewJob],
) -> Result<bool, DbError> {
    let from: Vec<String> = from.iter().map(|s| (*s).to_owned()).collect();
    let (to, decision) = (to.to_owned(), decision.map(|(by, why, at)| (by, why.to_owned(), at)));
    transaction!(db, |conn| {
        let target = reviews::table.find(id).filter(reviews::status.eq_any(&from));
        let changed = match &decision {
            Some((by, why, at)) => {
                diesel::update(target)
                    .set((
                        reviews::status.eq(&to),
                        reviews::published_at.eq(published_at),
                        reviews::flagged.eq(false),
                        reviews::decided_by.eq(Some(*by)),
                        reviews::decision_reason.eq(Some(why)),
                        reviews::decided_at.eq(Some(*at)),
                    ))
                    .execute(conn)
                    .await?
            }
            None => {
                diesel::update(target)
                    .set((reviews::status.eq(&to), reviews::published_at.eq(published_at)))
                    .execute(conn)
                    .await?
            }
        };
        if changed == 1 {
            for e in events {
                conn.append_event(e).await?;
            }
            for job in jobs {
                conn.schedule_job(job).await?;
            }
        }
        Ok::<_, DbError>(changed == 1)
    })
}

/// A moderator keeps a flagged review up: the flags are settled.
pub async fn clear_flags(db: &Db, id: Id, by: Id, reason: &str, at: Instant) -> Result<bool, DbError> {
    let reason = reason.to_owned();
    run!(db, |conn| {
        let n = diesel::update(reviews::table.find(id).filter(reviews::flagged.eq(true)))
            .set((
                reviews::flagged.eq(false),
                reviews::decided_by.eq(Some(by)),
                reviews::decision_reason.eq(Some(&reason)),
                reviews::decided_at.eq(Some(at)),
            ))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(n == 1)
    })
}

/// The host's one response. `false` when there already is one.
pub async fn respond(db: &Db, id: Id, comment: &str, at: Instant) -> Result<bool, DbError> {
    let comment = comment.to_owned();
    run!(db, |conn| {
        let n = diesel::update(reviews::table.find(id).filter(reviews::response.is_null()))
            .set((reviews::response.eq(Some(&comment)), reviews::response_at.eq(Some(at))))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(n == 1)
    })
}

/// A reader's flag (once per reader); the review enters the moderation queue.
pub async fn flag(db: &Db, id: Id, user: Id, reason: &str, at: Instant) -> Result<(), DbError> {
    let reason = reason.to_owned();
    transaction!(db, |conn| {
        diesel::insert_into(review_flags::table)
            .values((
                review_flags::review_id.eq(id),
                review_flags::user_id.eq(user),
                review_flags::reason.eq(&reason),
                review_flags::created_at.eq(at),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        diesel::update(reviews::table.find(id)).set(reviews::flagged.eq(true)).execute(conn).await?;
        Ok::<_, DbError>(())
    })
}

pub async fn flag_reasons(db: &Db, id: Id) -> Result<Vec<String>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            review_flags::table
                .filter(review_flags::review_id.eq(id))
                .order(review_flags::created_at.asc())
                .select(review_flags::reason)
                .load(conn)
                .await?,
        )
    })
}

/// Published reviews of a listing (by guests) or about a guest (by hosts),
/// newest first, after the cursor (`published_at`, `id`).
pub async fn published(
    db: &Db,
    listing: Option<Id>,
    subject: Option<Id>,
    role: &str,
    after: Option<(Instant, Id)>,
    limit: i64,
) -> Result<Vec<ReviewRow>, DbError> {
    let role = role.to_owned();
    run!(db, |conn| {
        let mut q = reviews::table
            .filter(reviews::status.eq("published"))
            .filter(reviews::author_role.eq(&role))
            .order((reviews::published_at.desc(), reviews::id.desc()))
            .limit(limit)
            .select(ReviewRow::as_select())
            .into_boxed();
        if let Some(l) = listing {
            q = q.filter(reviews::listing_id.eq(l));
        }
        if let Some(s) = subject {
            q = q.filter(reviews::subject_id.eq(s));
        }
        if let Some((at, id)) = after {
            q = q.filter(
                reviews::published_at.lt(Some(at)).or(reviews::published_at.eq(Some(at)).and(reviews::id.lt(id))),
            );
        }
        Ok::<_, DbError>(q.load(conn).await?)
    })
}

/// The moderation queue: held reviews and flagged published ones, oldest first.
pub async fn queue(db: &Db, after: Option<Id>, limit: i64) -> Result<Vec<ReviewRow>, DbError> {
    run!(db, |conn| {
        let mut q = reviews::table
            .filter(reviews::status.eq("held").or(reviews::status.eq("published").and(reviews::flagged.eq(true))))
            .order(reviews::id.asc())
            .limit(limit)
            .select(ReviewRow::as_select())
            .into_boxed();
        if let Some(a) = after {
            q = q.filter(reviews::id.gt(a));
        }
        Ok::<_, DbError>(q.load(conn).await?)
    })
}

/// Reviews by status (`rejected`, `removed`, ...), oldest first.
pub async fn by_status(db: &Db, status: &str, after: Option<Id>, limit: i64) -> Result<Vec<ReviewRow>, DbError> {
    let status = status.to_owned();
    run!(db, |conn| {
        let mut q = reviews::table
            .filter(reviews::status.eq(&status))
            .order(reviews::id.asc())
            .limit(limit)
            .select(ReviewRow::as_select())
            .into_boxed();
        if let Some(a) = after {
            q = q.filter(reviews::id.gt(a));
        }
        Ok::<_, DbError>(q.load(conn).await?)
    })
}

pub async fn insert_appeal(db: &Db, row: &AppealRow) -> Result<bool, DbError> {
    run!(db, |conn| {
        let n = diesel::insert_into(review_appeals::table).values(row).on_conflict_do_nothing().execute(conn).await?;
        Ok::<_, DbError>(n == 1)
    })
}

pub async fn appeal(db: &Db, review_id: Id) -> Result<Option<AppealRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            review_appeals::table.find(review_id).select(AppealRow::as_select()).first(conn).await.optional()?,
        )
    })
}

/// Undecided appeals with the reviews they contest.
pub async fn open_appeals(db: &Db, after: Option<Id>, limit: i64) -> Result<Vec<(AppealRow, ReviewRow)>, DbError> {
    run!(db, |conn| {
        let mut q = review_appeals::table
            .inner_join(diesel::JoinOnDsl::on(reviews::table, reviews::id.eq(review_appeals::review_id)))
            .filter(review_appeals::decision.is_null())
            .order(review_appeals::review_id.asc())
            .limit(limit)
            .select((AppealRow::as_select(), ReviewRow::as_select()))
            .into_boxed();
        if let Some(a) = after {
            q = q.filter(review_appeals::review_id.gt(a));
        }
        Ok::<_, DbError>(q.load(conn).await?)
    })
}

/// Records an appeal's decision, once.
pub async fn decide_appeal(
    db: &Db,
    review_id: Id,
    decision: &str,
    by: Id,
    reason: &str,
    at: Instant,
) -> Result<bool, DbError> {
    let (decision, reason) = (decision.to_owned(), reason.to_owned());
    run!(db, |conn| {
        let n = diesel::update(review_appeals::table.find(review_id).filter(review_appeals::decision.is_null()))
            .set((
                review_appeals::decision.eq(Some(&decision)),
                review_appeals::decided_by.eq(Some(by)),
                review_appeals::decision_reason.eq(Some(&reason)),
                review_appeals::decided_at.eq(Some(at)),
            ))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(n == 1)
    })
}

/// Sums a listing's published guest reviews again and stores them, with the
/// event that tells the listing and search, built from the new sums and the
/// market's (count, sum) including them.
pub async fn resum_listing(
    db: &Db,
    listing_id: Id,
    now: Instant,
    event: impl Fn(&RatingRow, (i64, i64)) -> Result<Envelope, DbError> + Send + Sync,
) -> Result<RatingRow, DbError> {
    transaction!(db, |conn| {
        let rows: Vec<(i32, String)> = reviews::table
            .filter(reviews::listing_id.eq(listing_id))
            .filter(reviews::author_role.eq("guest"))
            .filter(reviews::status.eq("published"))
            .select((reviews::rating, reviews::ratings))
            .load(conn)
            .await?;
        let mut sums = std::collections::BTreeMap::<String, i64>::new();
        for (_, ratings) in &rows {
            let parsed: std::collections::BTreeMap<String, i64> = serde_json::from_str(ratings).unwrap_or_default();
            for (k, v) in parsed {
                *sums.entry(k).or_default() += v;
            }
        }
        let row = RatingRow {
            listing_id,
            count: rows.len() as i64,
            overall_sum: rows.iter().map(|(r, _)| i64::from(*r)).sum(),
            sums: serde_json::to_string(&sums).unwrap_or_default(),
            updated_at: now,
        };
        diesel::insert_into(listing_ratings::table)
            .values(&row)
            .on_conflict(listing_ratings::listing_id)
            .do_update()
            .set((
                listing_ratings::count.eq(row.count),
                listing_ratings::overall_sum.eq(row.overall_sum),
                listing_ratings::sums.eq(&row.sums),
                listing_ratings::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        let all: Vec<(i64, i64)> =
            listing_ratings::table.select((listing_ratings::count, listing_ratings::overall_sum)).load(conn).await?;
        let market = all.iter().fold((0, 0), |(c, s), (rc, rs)| (c + rc, s + rs));
        conn.append_event(&event(&row, market)?).await?;
        Ok::<_, DbError>(row)
    })
}

pub async fn listing_rating(db: &Db, listing_id: Id) -> Result<Option<RatingRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            listing_ratings::table.find(listing_id).select(RatingRow::as_select()).first(conn).await.optional()?,
        )
    })
}

/// The market's mean overall rating over every listing's published guest
/// reviews (one row per listing is summed, not the reviews).
pub async fn market_sums(db: &Db) -> Result<(i64, i64), DbError> {
    run!(db, |conn| {
        let rows: Vec<(i64, i64)> =
            listing_ratings::table.select((listing_ratings::count, listing_ratings::overall_sum)).load(conn).await?;
        Ok::<_, DbError>(rows.iter().fold((0, 0), |(c, s), (rc, rs)| (c + rc, s + rs)))
    })
}

pub async fn published_prior(db: &Db) -> Result<Option<i64>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(review_market::table.find(1).select(review_market::prior_milli).first(conn).await.optional()?)
    })
}

/// Records the market mean the scores now use, with one event per listing
/// whose score moved with it.
pub async fn publish_prior(db: &Db, prior_milli: i64, now: Instant, events: &[Envelope]) -> Result<(), DbError> {
    transaction!(db, |conn| {
        diesel::insert_into(review_market::table)
            .values((
                review_market::id.eq(1),
                review_market::prior_milli.eq(prior_milli),
                review_market::updated_at.eq(now),
            ))
            .on_conflict(review_market::id)
            .do_update()
            .set((review_market::prior_milli.eq(prior_milli), review_market::updated_at.eq(now)))
            .execute(conn)
            .await?;
        for e in events {
            conn.append_event(e).await?;
        }
        Ok::<_, DbError>(())
    })
}

pub async fn all_ratings(db: &Db) -> Result<Vec<RatingRow>, DbError> {
    run!(db, |conn| { Ok::<_, DbError>(listing_ratings::table.select(RatingRow::as_select()).load(conn).await?) })
}

/// Appends events on their own (a review request).
pub async fn append_events(db: &Db, events: &[Envelope]) -> Result<(), DbError> {
    transaction!(db, |conn| {
        for e in events {
            conn.append_event(e).await?;
        }
        Ok::<_, DbError>(())
    })
}
