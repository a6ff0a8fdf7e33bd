-- In-app notifications; `source_key` makes each (event, kind, recipient) one row.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT NOT NULL,
    source_key TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    read_at TEXT
);
CREATE INDEX notifications_user ON notifications (user_id, id);

CREATE TABLE notification_preferences (
    user_id TEXT PRIMARY KEY NOT NULL,
    -- JSON: {kind: {email, sms, push, in_app}} for the kinds a user changed.
    channels TEXT NOT NULL,
    quiet_from TEXT,
    quiet_to TEXT,
    time_zone TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE phone_numbers (
    user_id TEXT PRIMARY KEY NOT NULL,
    phone TEXT NOT NULL,
    verified BOOLEAN NOT NULL,
    code_hash TEXT,
    code_expires_at TEXT,
    attempts INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE push_subscriptions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    endpoint TEXT NOT NULL UNIQUE,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);

-- Messages a recipient has not read yet, gathered into one notification.
CREATE TABLE message_digests (
    recipient_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    listing_id TEXT NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    due_at TEXT NOT NULL,
    PRIMARY KEY (recipient_id, conversation_id)
);

-- SMS sent through Twilio, with the status its callbacks report.
CREATE TABLE sms_messages (
    sid TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
