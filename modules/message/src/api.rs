//! The message module's published language: the [`Messages`] trait (what the
//! realtime module asks of conversations), the message types, the events a
//! send or a read publishes, and settings.

use std::collections::BTreeMap;

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::http::Page;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{Id, Problem};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const MODULE: &str = "message";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Attachment {
    pub id: Id,
    /// Served to the conversation's participants and admins only.
    pub url: String,
    pub content_type: String,
    pub size: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub id: Id,
    pub conversation_id: Id,
    /// Counts the conversation's messages from 1.
    pub seq: i64,
    pub sender_id: Id,
    pub body: String,
    /// Whether contact details were hidden from the body.
    pub masked: bool,
    pub attachments: Vec<Attachment>,
    pub created_at: Instant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Conversation {
    pub id: Id,
    pub listing_id: Id,
    pub booking_id: Option<Id>,
    /// The guest, then the host.
    pub participants: Vec<Id>,
    pub last_message: Option<Message>,
    /// Messages of the other participant the caller has not read.
    pub unread_count: i64,
    pub last_activity_at: Instant,
}

/// Who takes part in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participants {
    pub conversation_id: Id,
    pub guest_id: Id,
    pub host_id: Id,
}

impl Participants {
    pub fn includes(&self, user: Id) -> bool {
        self.guest_id == user || self.host_id == user
    }

    /// The participant who is not `user`.
    pub fn other(&self, user: Id) -> Id {
        if self.guest_id == user {
            self.host_id
        } else {
            self.guest_id
        }
    }
}

/// Conversations as the realtime module sees them, in process or over HTTP.
#[async_trait]
pub trait Messages: Send + Sync {
    async fn participants(&self, conversation_id: Id) -> Result<Option<Participants>, Problem>;
    /// Messages with `seq` above `after_seq`, in order, at most `limit`.
    async fn messages_after(&self, conversation_id: Id, after_seq: i64, limit: u32) -> Result<Vec<Message>, Problem>;
    /// The users `user` has a conversation with (whom their presence is shown to).
    async fn counterparts(&self, user: Id) -> Result<Vec<Id>, Problem>;
}

/// A page of a conversation's messages, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessagePage {
    pub items: Vec<Message>,
    /// Each participant's read position.
    pub read_up_to: BTreeMap<String, i64>,
    pub next_cursor: Option<String>,
}

/// A signed-in user's own conversations, for the inbox pages: the API's
/// `/conversations` use cases as a participant (never an admin's audited
/// read), in process or over those routes as the user.
#[async_trait]
pub trait Inbox: Send + Sync {
    /// A guest's conversation about a listing (the existing one, if any), with a first message.
    async fn start(&self, user: &AuthUser, listing_id: Id, body: &str) -> Result<Conversation, Problem>;
    /// The user's conversations, the latest activity first.
    async fn conversations(
        &self,
        user: &AuthUser,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Conversation>, Problem>;
    /// Messages after `after_seq`, oldest first; 404 unless the user takes part.
    async fn messages(&self, user: &AuthUser, id: Id, after_seq: i64, limit: u32) -> Result<MessagePage, Problem>;
    /// The same `client_message_id` sends once; `files` are attachments
    /// (JPEG, PNG, WebP or PDF, checked by content).
    async fn send(
        &self,
        user: &AuthUser,
        id: Id,
        body: &str,
        client_message_id: &str,
        files: Vec<Vec<u8>>,
    ) -> Result<Message, Problem>;
    async fn mark_read(&self, user: &AuthUser, id: Id, up_to_seq: i64) -> Result<(), Problem>;
    /// An attachment's content type and bytes; 404 unless the user takes part.
    async fn attachment(&self, user: &AuthUser, id: Id, attachment_id: Id) -> Result<(String, Vec<u8>), Problem>;
}

// ---- Events -------------------------------------------------------------------

pub const MESSAGE_CREATED: &str = "message.created";
pub const CONVERSATION_READ: &str = "conversation.read";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageCreated {
    pub participants: Participants,
    pub listing_id: Id,
    pub message: Message,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConversationRead {
    pub participants: Participants,
    pub reader_id: Id,
    pub up_to_seq: i64,
}

// ---- Settings -----------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSettings {
    /// Largest attachment, in bytes.
    pub attachment_max_bytes: usize,
    /// Most attachments on one message.
    pub attachments_per_message: usize,
    /// Messages one user may send per minute, across conversations.
    pub sends_per_minute: u32,
}
