//! The in-process implementation of the user module.

use std::sync::Arc;

use async_trait::async_trait;
use hometrip_auth::api::{AccountRegistered, Accounts, ACCOUNT_REGISTERED};
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::db::Db;
use hometrip_kernel::events::{Envelope, EventBus, EventHandler};
use hometrip_kernel::files::FileStore;
use hometrip_kernel::http::Page;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{ErrorCode, FieldError, Id, Problem};
use serde::{Deserialize, Serialize};

use crate::api::*;
use crate::domain;
use crate::store::{self, ProfileChanges, ProfileRow};

pub struct UserService {
    db: Db,
    bus: Arc<EventBus>,
    files: FileStore,
    accounts: Arc<dyn Accounts>,
    pub(crate) settings: UserSettings,
}

/// `GET /users/me`: the profile with what auth knows of the account.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    pub id: Id,
    pub email: String,
    pub display_name: String,
    pub bio: String,
    pub locale: String,
    pub currency: String,
    pub notification_channels: NotificationChannels,
    pub avatar_url: Option<String>,
    pub email_verified: bool,
    pub identity_verified: bool,
    pub identity_status: IdentityStatus,
    pub roles: Vec<String>,
    pub totp_enabled: bool,
    pub created_at: Instant,
}

/// What anyone may see of a user.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublicProfile {
    pub id: Id,
    pub display_name: String,
    pub bio: String,
    pub avatar_url: Option<String>,
    pub identity_verified: bool,
    pub created_at: Instant,
    /// A host's share of new conversations answered within 24 hours over the
    /// last 30 days, in percent; none without any.
    pub response_rate: Option<u8>,
    /// A host's median time to a first answer, in minutes.
    pub response_time_minutes: Option<i64>,
}

pub use crate::api::{AdminUser, IdentityDecision};

fn db_err(e: hometrip_kernel::db::DbError) -> Problem {
    Problem::from(e)
}

impl UserService {
    pub fn new(
        db: Db,
        bus: Arc<EventBus>,
        files: FileStore,
        accounts: Arc<dyn Accounts>,
        settings: UserSettings,
    ) -> Arc<Self> {
        Arc::new(UserService { db, bus, files, accounts, settings })
    }

    /// Subscribes to the auth events that create profiles.
    pub async fn subscribe(self: &Arc<Self>) {
        let handler: Arc<dyn EventHandler> = Arc::clone(self) as Arc<dyn EventHandler>;
        self.bus.subscribe("user.profiles", &[ACCOUNT_REGISTERED, HOST_RESPONSIVENESS], handler).await;
    }

    fn new_row(id: Id, email: &str, display_name: &str, locale: &str) -> ProfileRow {
        let now = Instant::now();
        ProfileRow {
            id,
            email: email.to_owned(),
            display_name: display_name.to_owned(),
            bio: String::new(),
            locale: if domain::check_locale(locale).is_ok() { locale.to_owned() } else { "en".to_owned() },
            currency: "EUR".to_owned(),
            notification_channels: domain::channels_text(NotificationChannels { email: true, sms: false, push: true }),
            avatar_key: None,
            identity_status: IdentityStatus::None.as_str().to_owned(),
            identity_document_key: None,
            identity_note: None,
            identity_updated_at: None,
            search_text: domain::search_text(email, display_name),
            created_at: now,
            updated_at: now,
            response_rate: None,
            response_minutes: None,
        }
    }

    /// The profile, created from the account when the registration event has
    /// not been handled yet. Both paths build it from the same account data, so
    /// whichever inserts first, the result is the same.
    async fn profile_row(&self, id: Id) -> Result<ProfileRow, Problem> {
        if let Some(row) = store::get(&self.db, id).await.map_err(db_err)? {
            return Ok(row);
        }
        let account = self.accounts.account(id).await?.ok_or_else(|| Problem::not_found("user"))?;
        store::insert_if_absent(&self.db, &Self::new_row(id, &account.email, &account.display_name, &account.locale))
            .await
            .map_err(db_err)?;
        store::get(&self.db, id).await.map_err(db_err)?.ok_or_else(|| Problem::not_found("user"))
    }

    fn avatar_url(&self, row: &ProfileRow) -> Option<String> {
        row.avatar_key.as_deref().map(|k| self.files.url(&format!("{k}-512.jpg")))
    }

    fn to_profile(&self, row: &ProfileRow) -> UserProfile {
        UserProfile {
            id: row.id,
            email: row.email.clone(),
            display_name: row.display_name.clone(),
            bio: row.bio.clone(),
            locale: row.locale.clone(),
            currency: row.currency.clone(),
            notification_channels: domain::parse_channels(&row.notification_channels),
            avatar_url: self.avatar_url(row),
            identity_status: IdentityStatus::parse(&row.identity_status),
            created_at: row.created_at,
        }
    }

    pub async fn me(&self, id: Id) -> Result<Me, Problem> {
        let row = self.profile_row(id).await?;
        let account = self.accounts.account(id).await?.ok_or_else(|| Problem::not_found("user"))?;
        let p = self.to_profile(&row);
        Ok(Me {
            id,
            email: account.email,
            display_name: p.display_name,
            bio: p.bio,
            locale: p.locale,
            currency: p.currency,
            notification_channels: p.notification_channels,
            avatar_url: p.avatar_url,
            email_verified: account.email_verified,
            identity_verified: p.identity_status == IdentityStatus::Verified,
            identity_status: p.identity_status,
            roles: account.roles,
            totp_enabled: account.totp_enabled,
            created_at: p.created_at,
        })
    }

    pub async fn public_profile(&self, id: Id) -> Result<PublicProfile, Problem> {
        let row = store::get(&self.db, id).await.map_err(db_err)?.ok_or_else(|| Problem::not_found("user"))?;
        Ok(PublicProfile {
            id: row.id,
            display_name: row.display_name.clone(),
            bio: row.bio.clone(),
            avatar_url: self.avatar_url(&row),
            identity_verified: row.identity_status == IdentityStatus::Verified.as_str(),
            created_at: row.created_at,
            response_rate: row.response_rate.and_then(|r| u8::try_from(r).ok()),
            response_time_minutes: row.response_minutes,
        })
    }

    pub async fn update_me(&self, id: Id, patch: ProfilePatch) -> Result<Me, Problem> {
        let current = self.profile_row(id).await?;
        let mut errors: Vec<FieldError> = Vec::new();
        let mut changes = ProfileChanges { updated_at: Some(Instant::now()), ..Default::default() };
        if let Some(name) = &patch.display_name {
            match domain::check_display_name(name) {
                Ok(n) => {
                    changes.search_text = Some(domain::search_text(&current.email, &n));
                    changes.display_name = Some(n);
                }
                Err(e) => errors.push(e),
            }
        }
        if let Some(bio) = &patch.bio {
            domain::check_bio(bio).map(|b| changes.bio = Some(b)).unwrap_or_else(|e| errors.push(e));
        }
        if let Some(locale) = &patch.locale {
            domain::check_locale(locale)
                .map(|_| changes.locale = Some(locale.clone()))
                .unwrap_or_else(|e| errors.push(e));
        }
        if let Some(currency) = &patch.currency {
            domain::check_currency(currency)
                .map(|_| changes.currency = Some(currency.clone()))
                .unwrap_or_else(|e| errors.push(e));
        }
        if let Some(ch) = &patch.notification_channels {
            let now = domain::parse_channels(&current.notification_channels);
            changes.notification_channels = Some(domain::channels_text(NotificationChannels {
                email: ch.email.unwrap_or(now.email),
                sms: ch.sms.unwrap_or(now.sms),
                push: ch.push.unwrap_or(now.push),
            }));
        }
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
        let event = Envelope::new(MODULE, PROFILE_UPDATED, &serde_json::json!({ "user_id": id })).map_err(db_err)?;
        store::update(&self.db, id, &changes, &[event]).await.map_err(db_err)?;
        self.bus.poke();
        self.me(id).await
    }

    pub async fn set_avatar(&self, id: Id, bytes: Vec<u8>) -> Result<Me, Problem> {
        // The route stops a larger body before reading it; a caller in
        // process is held to the same bound.
        if bytes.len() > self.settings.avatar_max_bytes {
            return Err(Problem::new(
                hometrip_kernel::ErrorCode::PayloadTooLarge,
                format!("the file is larger than {} KiB", self.settings.avatar_max_bytes / 1024),
            ));
        }
        let current = self.profile_row(id).await?;
        let variants = hometrip_kernel::images::reencode_bounded(bytes, domain::AVATAR_SIZES, "file").await?;
        let key = format!("avatars/{id}/{}", Id::new());
        for (size, data) in variants {
            self.files.put(&format!("{key}-{size}.jpg"), data).await?;
        }
        let changes =
            ProfileChanges { avatar_key: Some(Some(key)), updated_at: Some(Instant::now()), ..Default::default() };
        store::update(&self.db, id, &changes, &[]).await.map_err(db_err)?;
        if let Some(old) = current.avatar_key {
            for size in domain::AVATAR_SIZES {
                self.files.delete(&format!("{old}-{size}.jpg")).await?;
            }
        }
        self.me(id).await
    }

    /// Stores an identity document (private, never served) and marks the
    /// verification pending until an admin reviews it.
    pub async fn submit_identity(&self, id: Id, bytes: Vec<u8>) -> Result<Me, Problem> {
        let current = self.profile_row(id).await?;
        // While a review is pending the document under review must not change.
        match IdentityStatus::parse(&current.identity_status) {
            IdentityStatus::Verified => return Err(Problem::new(ErrorCode::Conflict, "identity already verified")),
            IdentityStatus::Pending => {
                return Err(Problem::new(ErrorCode::Conflict, "a verification is already pending review"))
            }
            IdentityStatus::None | IdentityStatus::Rejected => {}
        }
        // Documents are images (photo or scan) or PDFs; anything else is refused.
        let is_pdf = bytes.starts_with(b"%PDF-");
        if !is_pdf && image::guess_format(&bytes).is_err() {
            return Err(Problem::new(ErrorCode::UnsupportedMediaType, "upload an image or a PDF of the document"));
        }
        let key = format!("identity/{id}/{}", Id::new());
        self.files.put(&key, bytes).await?;
        let changes = ProfileChanges {
            identity_status: Some(IdentityStatus::Pending.as_str().to_owned()),
            identity_document_key: Some(Some(key)),
            identity_note: Some(None),
            identity_updated_at: Some(Some(Instant::now())),
            updated_at: Some(Instant::now()),
            ..Default::default()
        };
        store::update(&self.db, id, &changes, &[]).await.map_err(db_err)?;
        // The rejected document is not kept once a new one replaces it.
        if let Some(old) = current.identity_document_key {
            self.files.delete(&old).await?;
        }
        self.me(id).await
    }

    pub async fn review_identity(
        &self,
        id: Id,
        decision: IdentityDecision,
        note: Option<String>,
    ) -> Result<UserProfile, Problem> {
        let current = store::get(&self.db, id).await.map_err(db_err)?.ok_or_else(|| Problem::not_found("user"))?;
        if current.identity_status != IdentityStatus::Pending.as_str() {
            return Err(Problem::new(ErrorCode::Conflict, "no identity verification is pending for this user"));
        }
        let status = match decision {
            IdentityDecision::Approve => IdentityStatus::Verified,
            IdentityDecision::Reject => IdentityStatus::Rejected,
        };
        let now = Instant::now();
        let changes = ProfileChanges {
            identity_status: Some(status.as_str().to_owned()),
            identity_note: Some(note.map(|n| n.chars().take(1000).collect())),
            identity_updated_at: Some(Some(now)),
            updated_at: Some(now),
            ..Default::default()
        };
        let event =
            Envelope::new(MODULE, IDENTITY_REVIEWED, &IdentityReviewed { user_id: id, status }).map_err(db_err)?;
        let row = store::update(&self.db, id, &changes, &[event])
            .await
            .map_err(db_err)?
            .ok_or_else(|| Problem::not_found("user"))?;
        self.bus.poke();
        Ok(self.to_profile(&row))
    }

    pub async fn admin_search(&self, q: &str, after: Option<Id>, limit: i64) -> Result<Page<AdminUser>, Problem> {
        if q.chars().count() > 200 {
            return Err(Problem::field("q", "must be at most 200 characters"));
        }
        if q.chars().any(char::is_control) {
            return Err(Problem::field("q", "must not contain control characters"));
        }
        let rows = store::search(&self.db, &domain::like_pattern(q), after, limit).await.map_err(db_err)?;
        let next_cursor = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.id.to_string())).flatten();
        Ok(Page {
            items: rows
                .into_iter()
                .map(|r| AdminUser {
                    id: r.id,
                    email: r.email,
                    display_name: r.display_name,
                    identity_status: IdentityStatus::parse(&r.identity_status),
                    created_at: r.created_at,
                })
                .collect(),
            next_cursor,
        })
    }
}

#[async_trait]
impl EventHandler for UserService {
    async fn handle(&self, event: &Envelope) -> Result<(), String> {
        if event.event_type == ACCOUNT_REGISTERED {
            let e: AccountRegistered = event.decode()?;
            let row = UserService::new_row(e.user_id, &e.email, &e.display_name, &e.locale);
            store::insert_if_absent(&self.db, &row).await.map_err(|e| e.to_string())?;
        } else if event.event_type == HOST_RESPONSIVENESS {
            let e: HostResponsiveness = event.decode()?;
            // Figures arrive in order for one host (one subscriber, in order).
            let changes = ProfileChanges {
                response_rate: Some(e.response_rate.map(i32::from)),
                response_minutes: Some(e.response_minutes),
                ..ProfileChanges::default()
            };
            if store::update(&self.db, e.host_id, &changes, &[]).await.map_err(|e| e.to_string())?.is_none() {
                return Err("profile not created yet".to_owned());
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Profiles for UserService {
    async fn update_profile(&self, user: &AuthUser, patch: &ProfilePatch) -> Result<UserProfile, Problem> {
        self.update_me(user.id, patch.clone()).await?;
        self.profile(user.id).await?.ok_or_else(|| Problem::not_found("user"))
    }

    async fn set_avatar(&self, user: &AuthUser, image: Vec<u8>) -> Result<UserProfile, Problem> {
        UserService::set_avatar(self, user.id, image).await?;
        self.profile(user.id).await?.ok_or_else(|| Problem::not_found("user"))
    }
}

#[async_trait]
impl crate::api::UserAdmin for UserService {
    async fn search(&self, admin: &AuthUser, q: &str) -> Result<Vec<AdminUser>, Problem> {
        admin.require_admin()?;
        Ok(self.admin_search(q, None, 50).await?.items)
    }

    async fn review_identity(
        &self,
        admin: &AuthUser,
        id: Id,
        decision: IdentityDecision,
        note: Option<&str>,
    ) -> Result<UserProfile, Problem> {
        admin.require_admin()?;
        UserService::review_identity(self, id, decision, note.map(str::to_owned)).await
    }
}

#[async_trait]
impl Users for UserService {
    async fn profile(&self, id: Id) -> Result<Option<UserProfile>, Problem> {
        Ok(store::get(&self.db, id).await.map_err(db_err)?.as_ref().map(|r| self.to_profile(r)))
    }

    async fn profiles(&self, ids: &[Id]) -> Result<Vec<UserProfile>, Problem> {
        if ids.len() > 1000 {
            return Err(Problem::field("ids", "at most 1000 ids"));
        }
        Ok(store::get_many(&self.db, ids).await.map_err(db_err)?.iter().map(|r| self.to_profile(r)).collect())
    }
}
