-- A host's saved replies, with placeholders filled in when sent.
CREATE TABLE quick_replies (
    id TEXT PRIMARY KEY NOT NULL,
    host_id TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX quick_replies_host ON quick_replies (host_id, id);

-- Messages a host scheduled relative to a booking's check-in, in the
-- listing's time zone; sent by a job at `send_at` unless the booking was
-- cancelled by then.
CREATE TABLE scheduled_messages (
    id TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    booking_id TEXT NOT NULL,
    host_id TEXT NOT NULL,
    body TEXT NOT NULL,
    send_at TEXT NOT NULL,
    -- pending, sent, skipped (booking no longer on), cancelled (by the host)
    status TEXT NOT NULL,
    message_id TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX scheduled_messages_conversation ON scheduled_messages (conversation_id, send_at);
