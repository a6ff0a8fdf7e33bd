//! [`Messages`] over HTTP, for a process that does not run the message
//! module (the internal routes), and [`Inbox`] over the public routes as the
//! signed-in user (the gateway's inbox pages in the split shape).

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::http::Page;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::{Id, Problem};
use serde::de::IgnoredAny;
use serde_json::json;

use crate::api::{Conversation, Inbox, Message, MessagePage, Messages, Participants};

pub struct MessagesClient {
    remote: RemoteClient,
}

impl MessagesClient {
    pub fn new(remote: RemoteClient) -> Self {
        MessagesClient { remote }
    }
}

#[async_trait]
impl Messages for MessagesClient {
    async fn participants(&self, conversation_id: Id) -> Result<Option<Participants>, Problem> {
        self.remote.get(&format!("/internal/message/conversations/{conversation_id}"), None).await
    }

    async fn messages_after(&self, conversation_id: Id, after_seq: i64, limit: u32) -> Result<Vec<Message>, Problem> {
        self.remote
            .get(
                &format!(
                    "/internal/message/conversations/{conversation_id}/messages?after_seq={after_seq}&limit={limit}"
                ),
                None,
            )
            .await
    }

    async fn counterparts(&self, user: Id) -> Result<Vec<Id>, Problem> {
        self.remote.get(&format!("/internal/message/counterparts/{user}"), None).await
    }
}

/// The user as a participant: without an admin's role, a page never reads
/// someone else's conversation (which the API would allow, audited).
fn participant(user: &AuthUser) -> AuthUser {
    AuthUser { roles: Vec::new(), ..user.clone() }
}

#[async_trait]
impl Inbox for MessagesClient {
    async fn start(&self, user: &AuthUser, listing_id: Id, body: &str) -> Result<Conversation, Problem> {
        let start = json!({"listing_id": listing_id, "body": body});
        self.remote.post_as("/api/v1/conversations", &start, &participant(user), None).await
    }

    async fn conversations(
        &self,
        user: &AuthUser,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Conversation>, Problem> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(cursor.map(|c| ("cursor", c.to_owned())));
        let query = serde_urlencoded::to_string(query).map_err(Problem::internal)?;
        self.remote.get_as(&format!("/api/v1/conversations?{query}"), &participant(user)).await
    }

    async fn messages(&self, user: &AuthUser, id: Id, after_seq: i64, limit: u32) -> Result<MessagePage, Problem> {
        let path = format!("/api/v1/conversations/{id}/messages?after_seq={after_seq}&limit={}", limit.clamp(1, 100));
        self.remote.get_as(&path, &participant(user)).await
    }

    async fn send(
        &self,
        user: &AuthUser,
        id: Id,
        body: &str,
        client_message_id: &str,
        files: Vec<Vec<u8>>,
    ) -> Result<Message, Problem> {
        let path = format!("/api/v1/conversations/{id}/messages");
        // The client message id makes a repeat harmless: retried like a read.
        let key = Some(client_message_id).filter(|c| !c.is_empty());
        if files.is_empty() {
            let draft = match key {
                Some(id) => json!({"body": body, "client_message_id": id}),
                None => json!({"body": body}),
            };
            return self.remote.post_as(&path, &draft, &participant(user), key).await;
        }
        let mut texts = vec![("body", body.to_owned())];
        texts.extend(key.map(|id| ("client_message_id", id.to_owned())));
        self.remote.post_form_as(&path, texts, "file", files, &participant(user), key).await
    }

    async fn mark_read(&self, user: &AuthUser, id: Id, up_to_seq: i64) -> Result<(), Problem> {
        let read = json!({"up_to_seq": up_to_seq});
        let path = format!("/api/v1/conversations/{id}/read");
        self.remote.post_as::<_, Option<IgnoredAny>>(&path, &read, &participant(user), None).await.map(drop)
    }

    async fn attachment(&self, user: &AuthUser, id: Id, attachment_id: Id) -> Result<(String, Vec<u8>), Problem> {
        let path = format!("/api/v1/conversations/{id}/attachments/{attachment_id}");
        self.remote.get_file_as(&path, &participant(user)).await
    }
}
