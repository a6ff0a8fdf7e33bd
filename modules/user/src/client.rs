//! [`Users`] over HTTP, for a process that does not run the user module.

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::{Id, Problem};

use crate::api::{AdminUser, IdentityDecision, ProfilePatch, Profiles, UserAdmin, UserProfile, Users};

pub struct UsersClient {
    remote: RemoteClient,
}

impl UsersClient {
    pub fn new(remote: RemoteClient) -> Self {
        UsersClient { remote }
    }
}

#[async_trait]
impl Users for UsersClient {
    async fn profile(&self, id: Id) -> Result<Option<UserProfile>, Problem> {
        self.remote.get(&format!("/internal/user/profiles/{id}"), None).await
    }

    async fn profiles(&self, ids: &[Id]) -> Result<Vec<UserProfile>, Problem> {
        // A read in a POST's clothes: retried on another replica like one.
        self.remote.post_idempotent("/internal/user/profiles/of", &serde_json::json!({ "ids": ids }), None).await
    }
}

#[async_trait]
impl Profiles for UsersClient {
    async fn update_profile(&self, user: &AuthUser, patch: &ProfilePatch) -> Result<UserProfile, Problem> {
        let _: serde::de::IgnoredAny = self.remote.patch_as("/api/v1/users/me", patch, user).await?;
        self.profile(user.id).await?.ok_or_else(|| Problem::not_found("user"))
    }

    async fn set_avatar(&self, user: &AuthUser, image: Vec<u8>) -> Result<UserProfile, Problem> {
        let _: serde::de::IgnoredAny =
            self.remote.put_files_as("/api/v1/users/me/avatar", "file", vec![image], user).await?;
        self.profile(user.id).await?.ok_or_else(|| Problem::not_found("user"))
    }
}

#[derive(serde::Deserialize)]
struct Found {
    items: Vec<AdminUser>,
}

/// The admins' search and identity reviews over the admin routes, as the admin.
#[async_trait]
impl UserAdmin for UsersClient {
    async fn search(&self, admin: &AuthUser, q: &str) -> Result<Vec<AdminUser>, Problem> {
        let query = serde_urlencoded::to_string([("q", q), ("limit", "50")]).map_err(Problem::internal)?;
        Ok(self.remote.get_as::<Found>(&format!("/api/v1/admin/users?{query}"), admin).await?.items)
    }

    async fn review_identity(
        &self,
        admin: &AuthUser,
        id: Id,
        decision: IdentityDecision,
        note: Option<&str>,
    ) -> Result<UserProfile, Problem> {
        let body = serde_json::json!({ "decision": decision, "note": note });
        self.remote.post_as(&format!("/api/v1/admin/users/{id}/identity"), &body, admin, None).await
    }
}
