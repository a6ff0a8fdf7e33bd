//! [`Inbox`] in process: the inbox pages call the service's use cases as a
//! participant (an admin's role does not turn a page view into an audited
//! read of someone else's conversation).

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::http::{Page, PageQuery};
use hometrip_kernel::{Id, Problem};

use crate::api::{Conversation, Inbox, Message, MessagePage};
use crate::service::{Actor, Draft, MessageService, StartConversation, Upload};

fn participant(user: &AuthUser) -> Actor {
    Actor { id: user.id, admin: false }
}

#[async_trait]
impl Inbox for MessageService {
    async fn start(&self, user: &AuthUser, listing_id: Id, body: &str) -> Result<Conversation, Problem> {
        let input = StartConversation { listing_id, booking_id: None, body: body.to_owned() };
        Ok(MessageService::start(self, user.id, input).await?.0)
    }

    async fn conversations(
        &self,
        user: &AuthUser,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Conversation>, Problem> {
        let limit = PageQuery { limit: Some(limit), cursor: None }.limit()?;
        let (items, next_cursor) = MessageService::list(self, user.id, cursor, limit).await?;
        Ok(Page { items, next_cursor })
    }

    async fn messages(&self, user: &AuthUser, id: Id, after_seq: i64, limit: u32) -> Result<MessagePage, Problem> {
        if after_seq < 0 {
            return Err(Problem::field("after_seq", "must not be negative"));
        }
        let limit = i64::from(limit.clamp(1, 100));
        MessageService::messages(self, participant(user), id, after_seq, limit, None).await
    }

    async fn send(
        &self,
        user: &AuthUser,
        id: Id,
        body: &str,
        client_message_id: &str,
        files: Vec<Vec<u8>>,
    ) -> Result<Message, Problem> {
        let draft = Draft {
            body: body.to_owned(),
            client_message_id: Some(client_message_id.to_owned()).filter(|c| !c.is_empty()),
            quick_reply_id: None,
            files: files.into_iter().map(|bytes| Upload { bytes }).collect(),
        };
        Ok(MessageService::send(self, user.id, id, draft).await?.0)
    }

    async fn mark_read(&self, user: &AuthUser, id: Id, up_to_seq: i64) -> Result<(), Problem> {
        MessageService::read(self, user.id, id, up_to_seq).await
    }

    async fn attachment(&self, user: &AuthUser, id: Id, attachment_id: Id) -> Result<(String, Vec<u8>), Problem> {
        MessageService::attachment(self, participant(user), id, attachment_id).await
    }
}
