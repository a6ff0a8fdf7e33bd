//! [`Messages`] over HTTP, for a process that does not run the message module.

use async_trait::async_trait;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::{Id, Problem};

use crate::api::{Message, Messages, Participants};

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
