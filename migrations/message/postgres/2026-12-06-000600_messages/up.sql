CREATE TABLE conversations (
    id UUID PRIMARY KEY,
    listing_id UUID NOT NULL,
    guest_id UUID NOT NULL,
    host_id UUID NOT NULL,
    booking_id UUID,
    last_seq BIGINT NOT NULL DEFAULT 0,
    guest_read_seq BIGINT NOT NULL DEFAULT 0,
    host_read_seq BIGINT NOT NULL DEFAULT 0,
    last_activity_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (guest_id, listing_id)
);
CREATE INDEX conversations_guest ON conversations (guest_id, last_activity_at DESC, id DESC);
CREATE INDEX conversations_host ON conversations (host_id, last_activity_at DESC, id DESC);

CREATE TABLE messages (
    id UUID PRIMARY KEY,
    conversation_id UUID NOT NULL REFERENCES conversations (id),
    seq BIGINT NOT NULL,
    sender_id UUID NOT NULL,
    body TEXT NOT NULL,
    masked BOOLEAN NOT NULL,
    client_message_id TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (conversation_id, seq)
);
-- NULLs are distinct: only sends that carry a client id are deduplicated.
CREATE UNIQUE INDEX messages_client_message ON messages (conversation_id, sender_id, client_message_id);

CREATE TABLE message_attachments (
    id UUID PRIMARY KEY,
    message_id UUID NOT NULL REFERENCES messages (id),
    conversation_id UUID NOT NULL,
    position INTEGER NOT NULL,
    file_key TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL
);
CREATE INDEX message_attachments_message ON message_attachments (message_id, position);

-- A confirmed booking between a guest and a host lifts contact masking
-- between them.
CREATE TABLE contact_unlocks (
    guest_id UUID NOT NULL,
    host_id UUID NOT NULL,
    booking_id UUID NOT NULL,
    unlocked_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (guest_id, host_id)
);

-- Reads of a conversation by an admin who is not part of it (disputes).
CREATE TABLE conversation_admin_reads (
    id UUID PRIMARY KEY,
    conversation_id UUID NOT NULL,
    admin_id UUID NOT NULL,
    reason TEXT NOT NULL,
    read_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX conversation_admin_reads_conversation ON conversation_admin_reads (conversation_id, read_at);
