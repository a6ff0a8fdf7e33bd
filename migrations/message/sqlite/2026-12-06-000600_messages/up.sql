CREATE TABLE conversations (
    id TEXT PRIMARY KEY NOT NULL,
    listing_id TEXT NOT NULL,
    guest_id TEXT NOT NULL,
    host_id TEXT NOT NULL,
    booking_id TEXT,
    last_seq BIGINT NOT NULL DEFAULT 0,
    guest_read_seq BIGINT NOT NULL DEFAULT 0,
    host_read_seq BIGINT NOT NULL DEFAULT 0,
    last_activity_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (guest_id, listing_id)
);
CREATE INDEX conversations_guest ON conversations (guest_id, last_activity_at DESC, id DESC);
CREATE INDEX conversations_host ON conversations (host_id, last_activity_at DESC, id DESC);

CREATE TABLE messages (
    id TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    seq BIGINT NOT NULL,
    sender_id TEXT NOT NULL,
    body TEXT NOT NULL,
    masked BOOLEAN NOT NULL,
    client_message_id TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (conversation_id, seq)
);
-- NULLs are distinct: only sends that carry a client id are deduplicated.
CREATE UNIQUE INDEX messages_client_message ON messages (conversation_id, sender_id, client_message_id);

CREATE TABLE message_attachments (
    id TEXT PRIMARY KEY NOT NULL,
    message_id TEXT NOT NULL REFERENCES messages (id),
    conversation_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    file_key TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL
);
CREATE INDEX message_attachments_message ON message_attachments (message_id, position);

-- A confirmed booking between a guest and a host lifts contact masking
-- between them.
CREATE TABLE contact_unlocks (
    guest_id TEXT NOT NULL,
    host_id TEXT NOT NULL,
    booking_id TEXT NOT NULL,
    unlocked_at TEXT NOT NULL,
    PRIMARY KEY (guest_id, host_id)
);

-- Reads of a conversation by an admin who is not part of it (disputes).
CREATE TABLE conversation_admin_reads (
    id TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL,
    admin_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    read_at TEXT NOT NULL
);
CREATE INDEX conversation_admin_reads_conversation ON conversation_admin_reads (conversation_id, read_at);
