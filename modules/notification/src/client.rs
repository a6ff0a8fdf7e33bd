//! [`Notifications`] over HTTP, for a process that does not run the
//! notification module (the internal routes), and [`NotificationCenter`] over
//! the public routes as the signed-in user (the gateway's pages in the split shape).

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::{Id, Problem};
use serde::de::IgnoredAny;

use crate::api::{
    Notification, NotificationCenter, NotificationList, NotificationPreferences, Notifications, PhoneStatus,
    PreferencesBody,
};

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

#[async_trait]
impl NotificationCenter for NotificationsClient {
    async fn list(
        &self,
        user: &AuthUser,
        unread_only: bool,
        cursor: Option<Id>,
        limit: u32,
    ) -> Result<NotificationList, Problem> {
        let mut query = vec![("limit", limit.to_string()), ("unread", unread_only.to_string())];
        query.extend(cursor.map(|c| ("cursor", c.to_string())));
        let query = serde_urlencoded::to_string(query).map_err(Problem::internal)?;
        self.remote.get_as(&format!("/api/v1/notifications?{query}"), user).await
    }

    async fn mark_read(&self, user: &AuthUser, id: Option<Id>) -> Result<(), Problem> {
        let path = match id {
            Some(id) => format!("/api/v1/notifications/{id}/read"),
            None => "/api/v1/notifications/read-all".to_owned(),
        };
        let body = serde_json::json!({});
        self.remote.post_as::<_, Option<IgnoredAny>>(&path, &body, user, None).await.map(drop)
    }
}

#[async_trait]
impl NotificationPreferences for NotificationsClient {
    async fn preferences(&self, user: &AuthUser) -> Result<PreferencesBody, Problem> {
        self.remote.get_as("/api/v1/notifications/preferences", user).await
    }

    async fn set_preferences(&self, user: &AuthUser, prefs: &PreferencesBody) -> Result<PreferencesBody, Problem> {
        self.remote.put_as("/api/v1/notifications/preferences", prefs, user).await
    }

    async fn phone(&self, user: &AuthUser) -> Result<Option<PhoneStatus>, Problem> {
        self.remote.get_as("/api/v1/users/me/phone", user).await
    }

    async fn set_phone(&self, user: &AuthUser, phone: &str) -> Result<PhoneStatus, Problem> {
        // A PUT, but each one sends a new code: not retried once it may have arrived.
        self.remote.put_once_as("/api/v1/users/me/phone", &serde_json::json!({ "phone": phone }), user).await
    }

    async fn verify_phone(&self, user: &AuthUser, code: &str) -> Result<PhoneStatus, Problem> {
        let body = serde_json::json!({ "code": code });
        self.remote.post_as("/api/v1/users/me/phone/verify", &body, user, None).await
    }
}
