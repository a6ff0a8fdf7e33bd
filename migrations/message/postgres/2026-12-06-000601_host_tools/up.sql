-- A host's saved replies, with placeholders filled in when sent.
CREATE TABLE quick_replies (
    id UUID PRIMARY KEY,
    host_id UUID NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX quick_replies_host ON quick_replies (host_id, id);

-- Messages a host scheduled relative to a booking's check-in, in the
-- listing's time zone; sent by a job at `send_at` unless the booking was
-- cancelled by then.
CREATE TABLE scheduled_messages (
    id UUID PRIMARY KEY,
    conversation_id UUID NOT NULL REFERENCES conversations (id),
    booking_id UUID NOT NULL,
    host_id UUID NOT NULL,
    body TEXT NOT NULL,
    send_at TIMESTAMPTZ NOT NULL,
    -- pending, sent, skipped (booking no longer on), cancelled (by the host)
    status TEXT NOT NULL,
    message_id UUID,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX scheduled_messages_conversation ON scheduled_messages (conversation_id, send_at);
