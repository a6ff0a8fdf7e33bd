//! [`Users`] over HTTP, for a process that does not run the user module.

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::{Id, Problem};

use crate::api::{ProfilePatch, Profiles, UserProfile, Users};

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
}

#[async_trait]
impl Profiles for UsersClient {
    async fn update_profile(&self, user: &AuthUser, patch: &ProfilePatch) -> Result<UserProfile, Problem> {
        let _: serde::de::IgnoredAny = self.remote.patch_as("/api/v1/users/me", patch, user).await?;
        self.profile(user.id).await?.ok_or_else(|| Problem::not_found("user"))
    }
}
