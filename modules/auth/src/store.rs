//! Persistence of auth's own tables. Each function is one transaction; the
//! events a change causes are appended to the outbox inside it.

use hometrip_kernel::db::prelude::*;
use hometrip_kernel::db::{Db, DbError, MigrationSet};
use hometrip_kernel::events::{Envelope, OutboxWrite};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{run, transaction, Id};

pub mod schema {
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        accounts (id) {
            id -> DbUuid,
            email -> Text,
            password_hash -> Nullable<Text>,
            display_name -> Text,
            email_verified -> Bool,
            roles -> Text,
            locale -> Text,
            totp_secret -> Nullable<Text>,
            totp_pending_secret -> Nullable<Text>,
            totp_last_step -> Nullable<BigInt>,
            created_at -> DbInstant,
            updated_at -> DbInstant,
            suspended_at -> Nullable<DbInstant>,
            suspension_reason -> Nullable<Text>,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        refresh_tokens (id) {
            id -> DbUuid,
            account_id -> DbUuid,
            session_id -> DbUuid,
            token_hash -> Text,
            session_started_at -> DbInstant,
            issued_at -> DbInstant,
            expires_at -> DbInstant,
            session_expires_at -> DbInstant,
            used_at -> Nullable<DbInstant>,
            revoked_at -> Nullable<DbInstant>,
            user_agent -> Nullable<Text>,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        email_tokens (id) {
            id -> DbUuid,
            account_id -> DbUuid,
            purpose -> Text,
            token_hash -> Text,
            created_at -> DbInstant,
            expires_at -> DbInstant,
            used_at -> Nullable<DbInstant>,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        recovery_codes (id) {
            id -> DbUuid,
            account_id -> DbUuid,
            code_hash -> Text,
            used_at -> Nullable<DbInstant>,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        oauth_identities (provider, subject) {
            provider -> Text,
            subject -> Text,
            account_id -> DbUuid,
            email -> Nullable<Text>,
            created_at -> DbInstant,
            email_verified -> Bool,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use hometrip_kernel::db::sql::*;
        api_keys (id) {
            id -> DbUuid,
            owner_id -> DbUuid,
            name -> Text,
            public_part -> Text,
            key_hash -> Text,
            scopes -> Text,
            created_at -> DbInstant,
            expires_at -> Nullable<DbInstant>,
            last_used_at -> Nullable<DbInstant>,
            revoked_at -> Nullable<DbInstant>,
            replaced_by -> Nullable<DbUuid>,
        }
    }
    diesel::joinable!(api_keys -> accounts (owner_id));
    diesel::allow_tables_to_appear_in_same_query!(api_keys, accounts);
}
use schema::*;

pub const MIGRATIONS: MigrationSet = MigrationSet { module: "auth", postgres: || PG, sqlite: || SQLITE };
const PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/auth/postgres");
const SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/auth/sqlite");

pub const PURPOSE_VERIFY_EMAIL: &str = "verify_email";
pub const PURPOSE_RESET_PASSWORD: &str = "reset_password";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = accounts)]
pub struct AccountRow {
    pub id: Id,
    pub email: String,
    pub password_hash: Option<String>,
    pub display_name: String,
    pub email_verified: bool,
    pub roles: String,
    pub locale: String,
    pub totp_secret: Option<String>,
    pub totp_pending_secret: Option<String>,
    pub totp_last_step: Option<i64>,
    pub created_at: Instant,
    pub updated_at: Instant,
    /// Set while an admin's suspension lasts.
    pub suspended_at: Option<Instant>,
    pub suspension_reason: Option<String>,
}

impl AccountRow {
    /// A new account with no second factor yet.
    pub fn new(
        email: String,
        display_name: String,
        password_hash: Option<String>,
        email_verified: bool,
        roles: &str,
        locale: &str,
    ) -> AccountRow {
        let now = Instant::now();
        AccountRow {
            id: Id::new(),
            email,
            password_hash,
            display_name,
            email_verified,
            roles: roles.to_owned(),
            locale: locale.to_owned(),
            totp_secret: None,
            totp_pending_secret: None,
            totp_last_step: None,
            created_at: now,
            updated_at: now,
            suspended_at: None,
            suspension_reason: None,
        }
    }

    pub fn role_list(&self) -> Vec<String> {
        self.roles.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect()
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshToken {
    pub id: Id,
    pub account_id: Id,
    pub session_id: Id,
    pub token_hash: String,
    pub session_started_at: Instant,
    pub issued_at: Instant,
    pub expires_at: Instant,
    pub session_expires_at: Instant,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshRow {
    pub id: Id,
    pub account_id: Id,
    pub session_id: Id,
    pub session_started_at: Instant,
    pub issued_at: Instant,
    pub expires_at: Instant,
    pub session_expires_at: Instant,
    pub used_at: Option<Instant>,
    pub revoked_at: Option<Instant>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = email_tokens)]
pub struct NewEmailToken {
    pub id: Id,
    pub account_id: Id,
    pub purpose: String,
    pub token_hash: String,
    pub created_at: Instant,
    pub expires_at: Instant,
}

/// Revokes the account's live sessions but `$keep` (an `Id`, nil for none)
/// inside the caller's transaction; evaluates to the revoked session ids.
macro_rules! end_sessions {
    ($conn:expr, $account:expr, $keep:expr, $now:expr) => {{
        let others = refresh_tokens::table
            .filter(refresh_tokens::account_id.eq($account))
            .filter(refresh_tokens::revoked_at.is_null())
            .filter(refresh_tokens::session_id.ne($keep));
        let sessions: Vec<Id> = others.select(refresh_tokens::session_id).distinct().load($conn).await?;
        diesel::update(others).set(refresh_tokens::revoked_at.eq(Some($now))).execute($conn).await?;
        sessions
    }};
}

/// With `revoke` (the audit record of each key), revokes every live API key
/// of the account and appends each record; the revoked keys.
macro_rules! revoke_keys {
    ($conn:expr, $account:expr, $now:expr, $revoke:expr) => {{
        let mut revoked: Vec<Id> = Vec::new();
        if let Some(audit) = $revoke {
            use schema::api_keys as keys;
            let live = keys::table.filter(keys::owner_id.eq($account)).filter(keys::revoked_at.is_null());
            revoked = diesel::update(live)
                .set(keys::revoked_at.eq(Some($now)))
                .returning(keys::id)
                .get_results($conn)
                .await?;
            for key in &revoked {
                $conn.append_event(&audit($account, *key)?).await?;
            }
        }
        revoked
    }};
}

/// The audit record of an API key a new password revokes: `(owner, key)`.
pub type KeyRevoked<'a> = &'a (dyn Fn(Id, Id) -> Result<Envelope, DbError> + Send + Sync);

/// Spends every live reset token of the account: a new password makes the
/// other reset links worthless.
macro_rules! spend_reset_tokens {
    ($conn:expr, $account:expr, $now:expr) => {
        diesel::update(
            email_tokens::table
                .filter(email_tokens::account_id.eq($account))
                .filter(email_tokens::purpose.eq(PURPOSE_RESET_PASSWORD))
                .filter(email_tokens::used_at.is_null()),
        )
        .set(email_tokens::used_at.eq(Some($now)))
        .execute($conn)
        .await?
    };
}

/// Unlinks the account's OAuth identities whose email the provider did not
/// verify: proving the mailbox (a reset, a verification) takes the account
/// back from whoever linked one before the owner (pre-account takeover).
macro_rules! unlink_unverified_identities {
    ($conn:expr, $account:expr) => {
        diesel::delete(
            oauth_identities::table
                .filter(oauth_identities::account_id.eq($account))
                .filter(oauth_identities::email_verified.eq(false)),
        )
        .execute($conn)
        .await?
    };
}

mod api_keys;
mod two_factor;
pub use api_keys::*;
pub use two_factor::*;

/// Creates an account, optionally its first email token and OAuth identity
/// (one whose email the provider verified), and its events, in one
/// transaction. `Conflict` when the email is taken.
pub async fn create_account(
    db: &Db,
    account: &AccountRow,
    email_token: Option<&NewEmailToken>,
    identity: Option<(&str, &str)>,
    events: &[Envelope],
) -> Result<(), DbError> {
    transaction!(db, |conn| {
        diesel::insert_into(accounts::table).values(account).execute(conn).await?;
        if let Some(token) = email_token {
            diesel::insert_into(email_tokens::table).values(token).execute(conn).await?;
        }
        if let Some((provider, subject)) = identity {
            diesel::insert_into(oauth_identities::table)
                .values((
                    oauth_identities::provider.eq(provider),
                    oauth_identities::subject.eq(subject),
                    oauth_identities::account_id.eq(account.id),
                    oauth_identities::email.eq(Some(&account.email)),
                    oauth_identities::created_at.eq(account.created_at),
                    oauth_identities::email_verified.eq(true),
                ))
                .execute(conn)
                .await?;
        }
        for e in events {
            conn.append_event(e).await?;
        }
        Ok::<_, DbError>(())
    })
}

pub async fn account_by_email(db: &Db, email: &str) -> Result<Option<AccountRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            accounts::table
                .filter(accounts::email.eq(email))
                .select(AccountRow::as_select())
                .first(conn)
                .await
                .optional()?,
        )
    })
}

pub async fn account_by_id(db: &Db, id: Id) -> Result<Option<AccountRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(accounts::table.find(id).select(AccountRow::as_select()).first(conn).await.optional()?)
    })
}

pub async fn accounts_by_ids(db: &Db, ids: &[Id]) -> Result<Vec<AccountRow>, DbError> {
    let ids = ids.to_vec();
    run!(db, |conn| {
        Ok::<_, DbError>(
            accounts::table.filter(accounts::id.eq_any(ids.clone())).select(AccountRow::as_select()).load(conn).await?,
        )
    })
}

pub async fn account_count(db: &Db) -> Result<i64, DbError> {
    run!(db, |conn| { Ok::<_, DbError>(accounts::table.count().get_result::<i64>(conn).await?) })
}

/// Sets the account's roles; with `end_sessions` (a role was withdrawn) every
/// session of the account ends in the same transaction, like a password
/// change. Returns the ended session ids.
pub async fn set_roles(db: &Db, id: Id, roles: &str, end_sessions: bool) -> Result<Vec<Id>, DbError> {
    transaction!(db, |conn| {
        let now = Instant::now();
        let n = diesel::update(accounts::table.find(id))
            .set((accounts::roles.eq(roles), accounts::updated_at.eq(now)))
            .execute(conn)
            .await?;
        if n != 1 {
            return Err(DbError::NotFound);
        }
        if !end_sessions {
            return Ok(Vec::new());
        }
        Ok::<_, DbError>(end_sessions!(conn, id, Id::nil(), now))
    })
}

/// Suspends (`Some(reason)`) or reinstates the account, with its event;
/// a suspension ends every session in the same transaction. Returns the
/// ended session ids, or `None` when the account was already so.
pub async fn set_suspension(
    db: &Db,
    id: Id,
    reason: Option<&str>,
    now: Instant,
    event: &Envelope,
) -> Result<Option<Vec<Id>>, DbError> {
    let reason = reason.map(str::to_owned);
    transaction!(db, |conn| {
        let target = accounts::table.find(id);
        let n = match &reason {
            Some(r) => {
                diesel::update(target.filter(accounts::suspended_at.is_null()))
                    .set((
                        accounts::suspended_at.eq(Some(now)),
                        accounts::suspension_reason.eq(Some(r)),
                        accounts::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await?
            }
            None => {
                diesel::update(target.filter(accounts::suspended_at.is_not_null()))
                    .set((
                        accounts::suspended_at.eq(None::<Instant>),
                        accounts::suspension_reason.eq(None::<String>),
                        accounts::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await?
            }
        };
        if n == 0 {
            return Ok::<_, DbError>(None);
        }
        conn.append_event(event).await?;
        let ended = if reason.is_some() { end_sessions!(conn, id, Id::nil(), now) } else { Vec::new() };
        Ok(Some(ended))
    })
}

pub async fn insert_email_token(db: &Db, token: &NewEmailToken, events: &[Envelope]) -> Result<(), DbError> {
    transaction!(db, |conn| {
        diesel::insert_into(email_tokens::table).values(token).execute(conn).await?;
        for e in events {
            conn.append_event(e).await?;
        }
        Ok::<_, DbError>(())
    })
}

/// The account of a live (unused, unexpired) email token of `purpose`.
pub async fn live_email_token(db: &Db, digest: &str, purpose: &str, now: Instant) -> Result<Option<Id>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            email_tokens::table
                .filter(email_tokens::token_hash.eq(digest))
                .filter(email_tokens::purpose.eq(purpose))
                .filter(email_tokens::used_at.is_null())
                .filter(email_tokens::expires_at.gt(now))
                .select(email_tokens::account_id)
                .first(conn)
                .await
                .optional()?,
        )
    })
}

/// Spends a live email token of `purpose`; returns its account. Conditional
/// on `used_at IS NULL`, so two concurrent uses cannot both succeed.
async fn spend_email_token<C>(conn: &mut C, digest: &str, purpose: &str, now: Instant) -> Result<Option<Id>, DbError>
where
    C: SpendToken,
{
    conn.spend(digest, purpose, now).await
}

/// Spending a token inside a caller's transaction, on either backend.
pub trait SpendToken {
    fn spend(
        &mut self,
        digest: &str,
        purpose: &str,
        now: Instant,
    ) -> impl std::future::Future<Output = Result<Option<Id>, DbError>> + Send;
}

macro_rules! impl_spend_token {
    ($($conn:ty),*) => {$(
        impl SpendToken for $conn {
            async fn spend(&mut self, digest: &str, purpose: &str, now: Instant) -> Result<Option<Id>, DbError> {
                let found: Option<(Id, Id)> = email_tokens::table
                    .filter(email_tokens::token_hash.eq(digest))
                    .filter(email_tokens::purpose.eq(purpose))
                    .filter(email_tokens::used_at.is_null())
                    .filter(email_tokens::expires_at.gt(now))
                    .select((email_tokens::id, email_tokens::account_id))
                    .first(self)
                    .await
                    .optional()?;
                let Some((token_id, account_id)) = found else { return Ok(None) };
                let n = diesel::update(email_tokens::table.find(token_id).filter(email_tokens::used_at.is_null()))
                    .set(email_tokens::used_at.eq(Some(now)))
                    .execute(self)
                    .await?;
                Ok((n == 1).then_some(account_id))
            }
        }
    )*};
}
impl_spend_token!(hometrip_kernel::db::PgConn, hometrip_kernel::db::SqliteConn);

/// Marks the account of a verification token verified. When that unlinks an
/// unverified identity, every session ends too (whoever signed in through it
/// keeps nothing); returns the account and the ended session ids.
pub async fn verify_email(
    db: &Db,
    digest: &str,
    now: Instant,
    event: impl Fn(Id) -> Result<Envelope, DbError> + Send + Sync,
) -> Result<Option<(Id, Vec<Id>)>, DbError> {
    transaction!(db, |conn| {
        let Some(account_id) = spend_email_token(conn, digest, PURPOSE_VERIFY_EMAIL, now).await? else {
            return Ok(None);
        };
        diesel::update(accounts::table.find(account_id))
            .set((accounts::email_verified.eq(true), accounts::updated_at.eq(now)))
            .execute(conn)
            .await?;
        let unlinked = unlink_unverified_identities!(conn, account_id);
        let sessions = if unlinked > 0 { end_sessions!(conn, account_id, Id::nil(), now) } else { Vec::new() };
        conn.append_event(&event(account_id)?).await?;
        Ok::<_, DbError>(Some((account_id, sessions)))
    })
}

/// Sets a new password from a reset token, revokes every session of the
/// account, spends its other reset tokens and unlinks unverified identities;
/// returns the account and the revoked session ids.
pub async fn reset_password(
    db: &Db,
    digest: &str,
    password_hash: &str,
    now: Instant,
    event: impl Fn(Id) -> Result<Envelope, DbError> + Send + Sync,
    revoke_keys: Option<KeyRevoked<'_>>,
) -> Result<Option<(Id, Vec<Id>, Vec<Id>)>, DbError> {
    transaction!(db, |conn| {
        let Some(account_id) = spend_email_token(conn, digest, PURPOSE_RESET_PASSWORD, now).await? else {
            return Ok(None);
        };
        diesel::update(accounts::table.find(account_id))
            .set((accounts::password_hash.eq(Some(password_hash)), accounts::updated_at.eq(now)))
            .execute(conn)
            .await?;
        let sessions = end_sessions!(conn, account_id, Id::nil(), now);
        let keys = revoke_keys!(conn, account_id, now, revoke_keys);
        spend_reset_tokens!(conn, account_id, now);
        unlink_unverified_identities!(conn, account_id);
        conn.append_event(&event(account_id)?).await?;
        Ok::<_, DbError>(Some((account_id, sessions, keys)))
    })
}

/// Sets a new password for a signed-in user, ends their other sessions (and
/// with `revoke_keys` their API keys) and spends their reset tokens; returns
/// the ended session ids and the revoked keys.
pub async fn change_password(
    db: &Db,
    account_id: Id,
    password_hash: &str,
    keep_session: Id,
    now: Instant,
    event: &Envelope,
    revoke_keys: Option<KeyRevoked<'_>>,
) -> Result<(Vec<Id>, Vec<Id>), DbError> {
    transaction!(db, |conn| {
        diesel::update(accounts::table.find(account_id))
            .set((accounts::password_hash.eq(Some(password_hash)), accounts::updated_at.eq(now)))
            .execute(conn)
            .await?;
        let sessions = end_sessions!(conn, account_id, keep_session, now);
        let keys = revoke_keys!(conn, account_id, now, revoke_keys);
        spend_reset_tokens!(conn, account_id, now);
        conn.append_event(event).await?;
        Ok::<_, DbError>((sessions, keys))
    })
}

pub async fn insert_refresh(db: &Db, token: &NewRefreshToken) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::insert_into(refresh_tokens::table).values(token).execute(conn).await?;
        Ok::<_, DbError>(())
    })
}

pub async fn refresh_by_digest(db: &Db, digest: &str) -> Result<Option<RefreshRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(digest))
                .select(RefreshRow::as_select())
                .first(conn)
                .await
                .optional()?,
        )
    })
}

/// Spends `old` and stores `next` in one transaction. `false` when `old` was
/// spent concurrently (the caller then treats it as reuse).
pub async fn rotate_refresh(db: &Db, old: Id, next: &NewRefreshToken, now: Instant) -> Result<bool, DbError> {
    transaction!(db, |conn| {
        let n = diesel::update(
            refresh_tokens::table
                .find(old)
                .filter(refresh_tokens::used_at.is_null())
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set(refresh_tokens::used_at.eq(Some(now)))
        .execute(conn)
        .await?;
        if n != 1 {
            return Ok(false);
        }
        diesel::insert_into(refresh_tokens::table).values(next).execute(conn).await?;
        Ok::<_, DbError>(true)
    })
}

pub async fn revoke_session(db: &Db, session_id: Id, now: Instant) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::update(refresh_tokens::table.filter(refresh_tokens::session_id.eq(session_id)))
            .filter(refresh_tokens::revoked_at.is_null())
            .set(refresh_tokens::revoked_at.eq(Some(now)))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(())
    })
}

/// Revokes every session of the account but `keep`; returns the revoked ids.
pub async fn revoke_sessions_except(
    db: &Db,
    account_id: Id,
    keep: Option<Id>,
    now: Instant,
) -> Result<Vec<Id>, DbError> {
    transaction!(db, |conn| {
        let keep = keep.unwrap_or_else(Id::nil);
        Ok::<_, DbError>(end_sessions!(conn, account_id, keep, now))
    })
}

/// Live sessions: the unspent, unrevoked head of each family.
pub async fn live_sessions(db: &Db, account_id: Id, now: Instant) -> Result<Vec<RefreshRow>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            refresh_tokens::table
                .filter(refresh_tokens::account_id.eq(account_id))
                .filter(refresh_tokens::revoked_at.is_null())
                .filter(refresh_tokens::used_at.is_null())
                .filter(refresh_tokens::session_expires_at.gt(now))
                .order(refresh_tokens::issued_at.desc())
                .select(RefreshRow::as_select())
                .load(conn)
                .await?,
        )
    })
}

pub async fn identity_account(db: &Db, provider: &str, subject: &str) -> Result<Option<Id>, DbError> {
    run!(db, |conn| {
        Ok::<_, DbError>(
            oauth_identities::table
                .find((provider, subject))
                .select(oauth_identities::account_id)
                .first(conn)
                .await
                .optional()?,
        )
    })
}

/// Links an identity whose email the provider verified.
pub async fn link_identity(db: &Db, provider: &str, subject: &str, account_id: Id, email: &str) -> Result<(), DbError> {
    run!(db, |conn| {
        diesel::insert_into(oauth_identities::table)
            .values((
                oauth_identities::provider.eq(provider),
                oauth_identities::subject.eq(subject),
                oauth_identities::account_id.eq(account_id),
                oauth_identities::email.eq(Some(email)),
                oauth_identities::created_at.eq(Instant::now()),
                oauth_identities::email_verified.eq(true),
            ))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(())
    })
}
