//! [`Notifications`] over HTTP, for a process that does not run the notification module.

use async_trait::async_trait;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::{Id, Problem};

use crate::api::{Notification, Notifications};

pub struct NotificationsClient {
    remote: RemoteClient,
}

impl NotificationsClient {
    pub fn new(remote: RemoteClient) -> Self {
        NotificationsClient { remote }
    }
}

#[async_trait]
impl Notifications for NotificationsClient {
    async fn after(&self, user: Id, after: Option<Id>, limit: u32) -> Result<Vec<Notification>, Problem> {
        let after = after.map(|a| format!("&after={a}")).unwrap_or_default();
        self.remote.get(&format!("/internal/notification/users/{user}/notifications?limit={limit}{after}"), None).await
    }
}
