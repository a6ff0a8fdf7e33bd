//! Storage on SQLite or PostgreSQL, chosen by the URL scheme.
//!
//! Query code is written once: [`run!`](crate::run) and [`transaction!`](crate::transaction)
//! expand the same diesel body for each concrete connection type, because
//! diesel-async has no async `MultiConnection`. Only this file knows which
//! backend a connection is.

use std::sync::Arc;
use std::time::Duration;

use crate::per_thread::{on_own_runtime, PerThread};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, PoolError, RecyclingMethod};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use futures_util::FutureExt;

pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;
pub type PgConn = AsyncPgConnection;

/// SQL types both backends carry.
pub mod sql {
    /// `uuid` on PostgreSQL, text on SQLite.
    #[derive(diesel::sql_types::SqlType, diesel::query_builder::QueryId, Clone, Copy, Debug, Default)]
    #[diesel(postgres_type(oid = 2950, array_oid = 2951))]
    #[diesel(sqlite_type(name = "Text"))]
    pub struct DbUuid;

    /// `timestamptz` on PostgreSQL, RFC 3339 text on SQLite.
    #[derive(diesel::sql_types::SqlType, diesel::query_builder::QueryId, Clone, Copy, Debug, Default)]
    #[diesel(postgres_type(oid = 1184, array_oid = 1185))]
    #[diesel(sqlite_type(name = "Text"))]
    pub struct DbInstant;
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Query(DieselError),
    #[error("encoding: {0}")]
    Encoding(String),
    #[error("migration failed: {0}")]
    Migration(String),
}

impl From<DieselError> for DbError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => DbError::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                DbError::Conflict(info.constraint_name().unwrap_or("unique key").to_owned())
            }
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                DbError::Unavailable(info.message().to_owned())
            }
            other => DbError::Query(other),
        }
    }
}

/// A connection that sat idle this long is checked with a round trip before
/// it is handed out (a server restart or a proxy's idle timeout may have
/// dropped it); a busy pool hands its connections out unchecked.
const VERIFY_AFTER_IDLE: Duration = Duration::from_secs(15);

/// diesel-async's pool manager, checking connections only after they idled.
/// Its default runs `SELECT 1` on every checkout, which doubled the round trips
/// of every short statement on PostgreSQL (and added a blocking-thread hop per
/// checkout on SQLite).
pub struct Manager<C: 'static> {
    fast: AsyncDieselConnectionManager<C>,
    verified: AsyncDieselConnectionManager<C>,
}

impl<C: diesel_async::AsyncConnection + 'static> Manager<C> {
    fn new(url: &str, config: impl Fn(RecyclingMethod<C>) -> ManagerConfig<C>) -> Self {
        Manager {
            fast: AsyncDieselConnectionManager::new_with_config(url, config(RecyclingMethod::Fast)),
            verified: AsyncDieselConnectionManager::new_with_config(url, config(RecyclingMethod::Verified)),
        }
    }
}

impl<C> deadpool::managed::Manager for Manager<C>
where
    AsyncDieselConnectionManager<C>: deadpool::managed::Manager<Type = C, Error = PoolError>,
    C: Send + 'static,
{
    type Type = C;
    type Error = PoolError;

    async fn create(&self) -> Result<C, PoolError> {
        self.fast.create().await
    }

    async fn recycle(
        &self,
        conn: &mut C,
        metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<PoolError> {
        // Both refuse a broken connection or one left inside a transaction.
        if metrics.last_used() >= VERIFY_AFTER_IDLE {
            self.verified.recycle(conn, metrics).await
        } else {
            self.fast.recycle(conn, metrics).await
        }
    }
}

type Pool<C> = deadpool::managed::Pool<Manager<C>>;
type Object<C> = deadpool::managed::Object<Manager<C>>;

/// A transaction begun by hand on a PostgreSQL connection, so that `BEGIN`
/// travels in the same write as the statements after it (diesel's
/// `transaction` awaits it on its own round trip). Call this before sending
/// `BEGIN`, then [`end_by_hand`] once `COMMIT` or `ROLLBACK` is answered.
/// Until then diesel's bookkeeping counts the connection as inside a
/// transaction: if the caller stops on the way (an error, a cancelled
/// request), the pool finds it so and closes it instead of handing it out,
/// and PostgreSQL rolls the transaction back.
pub fn begin_by_hand(conn: &mut PgConn) -> diesel::QueryResult<()> {
    use diesel_async::TransactionManager;
    diesel_async::AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_state()?
        .change_transaction_depth(diesel::connection::TransactionDepthChange::IncreaseDepth)
}

/// The transaction of [`begin_by_hand`] was committed or rolled back.
pub fn end_by_hand(conn: &mut PgConn) -> diesel::QueryResult<()> {
    use diesel_async::TransactionManager;
    diesel_async::AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_state()?
        .change_transaction_depth(diesel::connection::TransactionDepthChange::DecreaseDepth)
}

/// Connections of a process's pools: open, idle among them, the most there
/// may be, and requests waiting for one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolUse {
    pub open: usize,
    pub idle: usize,
    pub max: usize,
    pub waiting: usize,
}

/// The storage of one process: a pool on one backend.
#[derive(Clone)]
pub enum Db {
    Pg(Arc<PgPools>),
    Sqlite(Pool<SqliteConn>),
}

/// PostgreSQL pools kept per thread. A connection is driven by a task on the
/// runtime that opened it; handed to a task on another thread, every query
/// crosses threads twice (a wake-up each way) and a pipelined batch leaves as
/// one write per statement. So each single-threaded runtime (each HTTP worker,
/// the background runtime) opens and uses its own connections; work on a
/// multi-threaded runtime (commands, tools) shares one pool.
pub struct PgPools {
    url: String,
    per_thread: usize,
    shared: Pool<PgConn>,
    by_thread: PerThread<Pool<PgConn>>,
}

impl PgPools {
    fn build(url: &str, max_size: usize) -> Result<Pool<PgConn>, DbError> {
        let manager = Manager::<PgConn>::new(url, |recycling_method| {
            let mut config = ManagerConfig::default();
            config.recycling_method = recycling_method;
            config
        });
        Pool::builder(manager)
            .max_size(max_size)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(10)))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| DbError::Unavailable(e.to_string()))
    }

    /// The pool for the calling task's thread.
    fn pool(&self) -> Result<Pool<PgConn>, DbError> {
        if !on_own_runtime() {
            return Ok(self.shared.clone());
        }
        self.by_thread.get_or_try_make(|| Self::build(&self.url, self.per_thread))
    }
}

/// A pooled connection on either backend, for the macros. Short-lived on the
/// stack, so boxing the larger variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Pooled {
    Pg(Object<PgConn>),
    Sqlite(Object<SqliteConn>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Db {
    /// Opens a pool for `url` (`sqlite://path`, `sqlite::memory:` is refused,
    /// `postgres://...`). Creates the SQLite file's folder when missing.
    /// On PostgreSQL, `max_connections` is shared by the `threads`
    /// single-threaded runtimes expected to use the database (at least two
    /// connections each; see [`PgPools`]).
    pub async fn connect(url: &str, max_connections: usize, threads: usize) -> Result<Db, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let db = Db::Pg(Arc::new(PgPools {
                url: url.to_owned(),
                per_thread: max_connections.div_ceil(threads.max(1)).max(2),
                shared: PgPools::build(url, max_connections.max(1))?,
                by_thread: PerThread::default(),
            }));
            db.ping().await?;
            Ok(db)
        } else if let Some(path) = sqlite_path(url) {
            if let Some(dir) = std::path::Path::new(&path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| DbError::Unavailable(format!("{}: {e}", dir.display())))?;
                }
            }
            let manager = Manager::<SqliteConn>::new(&path, |recycling_method| {
                let mut config = ManagerConfig::<SqliteConn>::default();
                config.recycling_method = recycling_method;
                config.custom_setup = Box::new(|url| {
                    let url = url.to_owned();
                    async move {
                        tokio::task::spawn_blocking(move || {
                            let mut conn = SqliteConnection::establish(&url)?;
                            sqlite_pragmas(&mut conn).map_err(diesel::ConnectionError::BadConnection)?;
                            Ok(SyncConnectionWrapper::new(conn))
                        })
                        .await
                        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?
                    }
                    .boxed()
                });
                config
            });
            // SQLite has one writer; a handful of connections serve concurrent readers (WAL).
            let pool = Pool::builder(manager)
                .max_size(max_connections.clamp(1, 8))
                .wait_timeout(Some(Duration::from_secs(10)))
                .runtime(deadpool::Runtime::Tokio1)
                .build()
                .map_err(|e| DbError::Unavailable(e.to_string()))?;
            let db = Db::Sqlite(pool);
            db.ping().await?;
            Ok(db)
        } else {
            Err(DbError::Unavailable(format!(
                "unsupported database URL scheme in {:?}: use sqlite://<path> or postgres://",
                redact_url(url)
            )))
        }
    }

    /// How the process's connections are used, summed over its pools (for
    /// `/metrics`: `db_pool_connections`).
    pub fn pool_use(&self) -> PoolUse {
        let mut used = PoolUse::default();
        let mut add = |s: deadpool::Status| {
            used.open += s.size;
            used.idle += s.available;
            used.max += s.max_size;
            used.waiting += s.waiting;
        };
        match self {
            Db::Pg(pools) => {
                add(pools.shared.status());
                pools.by_thread.for_each(|pool| add(pool.status()));
            }
            Db::Sqlite(pool) => add(pool.status()),
        }
        used
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Pg(_) => Backend::Postgres,
            Db::Sqlite(_) => Backend::Sqlite,
        }
    }

    pub async fn get(&self) -> Result<Pooled, DbError> {
        match self {
            Db::Pg(pools) => pools.pool()?.get().await.map(Pooled::Pg).map_err(|e| DbError::Unavailable(e.to_string())),
            Db::Sqlite(p) => p.get().await.map(Pooled::Sqlite).map_err(|e| DbError::Unavailable(e.to_string())),
        }
    }

    /// Round trip to the store, for readiness.
    pub async fn ping(&self) -> Result<(), DbError> {
        crate::run!(self, |conn| {
            diesel::sql_query("SELECT 1").execute(conn).await?;
            Ok::<_, DbError>(())
        })
    }

    /// Applies each module's pending migrations, in the order given, on a
    /// blocking thread (diesel's harness is synchronous).
    pub async fn migrate(&self, url: &str, sets: Vec<MigrationSet>) -> Result<usize, DbError> {
        let backend = self.backend();
        let url = url.to_owned();
        tokio::task::spawn_blocking(move || -> Result<usize, DbError> {
            let mut applied = 0;
            match backend {
                Backend::Sqlite => {
                    let path = sqlite_path(&url).unwrap_or_default();
                    let mut conn =
                        SqliteConnection::establish(&path).map_err(|e| DbError::Unavailable(e.to_string()))?;
                    sqlite_pragmas(&mut conn).map_err(|e| DbError::Migration(e.to_string()))?;
                    for set in &sets {
                        applied += conn
                            .run_pending_migrations((set.sqlite)())
                            .map_err(|e| DbError::Migration(format!("{}: {e}", set.module)))?
                            .len();
                    }
                }
                Backend::Postgres => {
                    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
                    let mut conn = AsyncConnectionWrapper::<PgConn>::establish(&url)
                        .map_err(|e| DbError::Unavailable(e.to_string()))?;
                    // Replicas of one service start together on one database:
                    // one migrates while the others wait, then find nothing to do.
                    diesel::RunQueryDsl::execute(
                        diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")),
                        &mut conn,
                    )
                    .map_err(|e| DbError::Migration(format!("migration lock: {e}")))?;
                    let result = (|| {
                        for set in &sets {
                            applied += conn
                                .run_pending_migrations((set.postgres)())
                                .map_err(|e| DbError::Migration(format!("{}: {e}", set.module)))?
                                .len();
                        }
                        Ok::<_, DbError>(())
                    })();
                    let _ = diesel::RunQueryDsl::execute(
                        diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")),
                        &mut conn,
                    );
                    result?;
                }
            }
            Ok(applied)
        })
        .await
        .map_err(|e| DbError::Migration(e.to_string()))?
    }
}

/// The advisory lock migrations hold on PostgreSQL ("htmigrat" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6874_6d69_6772_6174;

/// One module's embedded migrations for both backends.
#[derive(Clone, Copy)]
pub struct MigrationSet {
    pub module: &'static str,
    pub postgres: fn() -> EmbeddedMigrations,
    pub sqlite: fn() -> EmbeddedMigrations,
}

/// A statement kept prepared on its connection, keyed by its SQL text and
/// bind types. Diesel refuses to cache every INSERT, UPDATE, upsert and raw
/// query (their text can vary with the values, and its cache would key them
/// by Rust type); uncached, each one is prepared, described and closed around
/// its execution: two round trips instead of one, a parse and plan every time,
/// and on PostgreSQL the statements of a pipelined transaction wait for each
/// other's preparation. Keyed by text, a statement whose text varies is
/// simply another entry: use this for statements of few shapes (a batch
/// insert of any length is one shape per length).
#[derive(Debug, Clone, Copy)]
pub struct Cached<Q>(Q);

/// No static id on purpose: the cache then keys the statement by its SQL.
impl<Q> diesel::query_builder::QueryId for Cached<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for Cached<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for Cached<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, pass: diesel::query_builder::AstPass<'_, 'b, DB>) -> diesel::QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> diesel::QueryResult<bool> {
        Ok(true)
    }
}

/// `.cached()` on any statement: see [`Cached`].
pub trait CacheStatement: Sized {
    fn cached(self) -> Cached<Self> {
        Cached(self)
    }
}

impl<Q: diesel::query_builder::QueryId> CacheStatement for Q {}

/// Diesel's query traits with diesel-async's `RunQueryDsl` (not diesel's sync one).
pub mod prelude {
    pub use super::CacheStatement;
    pub use diesel::result::OptionalExtension;
    pub use diesel::{
        AsChangeset, BoolExpressionMethods, EscapeExpressionMethods, ExpressionMethods, Insertable,
        NullableExpressionMethods, QueryDsl, Queryable, Selectable, SelectableHelper, TextExpressionMethods,
    };
    pub use diesel_async::RunQueryDsl;
}

fn sqlite_path(url: &str) -> Option<String> {
    url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).map(str::to_owned)
}

fn sqlite_pragmas(conn: &mut SqliteConnection) -> Result<(), String> {
    use diesel::RunQueryDsl;
    for pragma in [
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA busy_timeout = 10000",
        "PRAGMA foreign_keys = ON",
    ] {
        diesel::sql_query(pragma).execute(conn).map_err(|e| format!("{pragma}: {e}"))?;
    }
    Ok(())
}

/// Hides the password of a connection URL for logs and `hometrip config`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend
/// `$db` is, expanding the body once per backend. The body must evaluate to a
/// `Result<_, E>` with `E: From<DbError> + From<diesel::result::Error>`.
/// The body is inlined, not a closure: a `?` in it returns from the enclosing
/// function (wrap it in an `async` block where that is not wanted).
#[macro_export]
macro_rules! run {
    ($db:expr, |$conn:ident| $body:block) => {{
        #[allow(unused_imports)]
        use $crate::diesel_async::RunQueryDsl as _;
        match $db.get().await {
            Err(e) => Err(e.into()),
            Ok($crate::db::Pooled::Pg(mut pooled)) => {
                let $conn: &mut $crate::db::PgConn = &mut pooled;
                $body
            }
            Ok($crate::db::Pooled::Sqlite(mut pooled)) => {
                let $conn: &mut $crate::db::SqliteConn = &mut pooled;
                $body
            }
        }
    }};
}

/// The span of a transaction, named after the function that runs it; at
/// debug level under its own target, so it is exported with traces and
/// otherwise disabled where it stands.
#[doc(hidden)]
#[macro_export]
macro_rules! db_span {
    ($system:literal) => {
        $crate::tracing::debug_span!(
            target: "hometrip::db",
            "db",
            otel.name = concat!("db ", module_path!()),
            otel.kind = "client",
            db.system = $system,
        )
    };
}

/// Like [`run!`], inside a transaction: `BEGIN IMMEDIATE` on SQLite (the write
/// lock is taken up front, so concurrent writers queue on the busy timeout
/// instead of failing on upgrade), a plain transaction on PostgreSQL.
#[macro_export]
macro_rules! transaction {
    ($db:expr, |$conn:ident| $body:block) => {{
        #[allow(unused_imports)]
        use $crate::diesel_async::{AsyncConnection as _, RunQueryDsl as _};
        // Timed from the connection's checkout: waiting for the pool is part of it.
        let started = std::time::Instant::now();
        let outcome = match $db.get().await {
            Err(e) => Err(e.into()),
            Ok($crate::db::Pooled::Pg(mut pooled)) => {
                let c: &mut $crate::db::PgConn = &mut pooled;
                $crate::tracing::Instrument::instrument(
                    c.transaction(async |$conn| $body),
                    $crate::db_span!("postgresql"),
                )
                .await
            }
            Ok($crate::db::Pooled::Sqlite(mut pooled)) => {
                let c: &mut $crate::db::SqliteConn = &mut pooled;
                $crate::tracing::Instrument::instrument(
                    c.immediate_transaction(async |$conn| $body),
                    $crate::db_span!("sqlite"),
                )
                .await
            }
        };
        $crate::metrics::histogram!("db_transaction_duration_seconds", "store" => module_path!())
            .record(started.elapsed().as_secs_f64());
        outcome
    }};
}
