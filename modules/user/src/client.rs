//! [`Users`] over HTTP, for a process that does not run the user module.

use async_trait::async_trait;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::{Id, Problem};

use crate::api::{UserProfile, Users};

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
