-- In-app notifications; `source_key` makes each (event, kind, recipient) one row.
CREATE TABLE notifications (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT NOT NULL,
    source_key TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    read_at TIMESTAMPTZ
);
CREATE INDEX notifications_user ON notifications (user_id, id);

CREATE TABLE notification_preferences (
    user_id UUID PRIMARY KEY,
    -- JSON: {kind: {email, sms, push, in_app}} for the kinds a user changed.
    channels TEXT NOT NULL,
    quiet_from TEXT,
    quiet_to TEXT,
    time_zone TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE phone_numbers (
    user_id UUID PRIMARY KEY,
    phone TEXT NOT NULL,
    verified BOOLEAN NOT NULL,
    code_hash TEXT,
    code_expires_at TIMESTAMPTZ,
    attempts INTEGER NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE push_subscriptions (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL,
    endpoint TEXT NOT NULL UNIQUE,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);

-- Messages a recipient has not read yet, gathered into one notification.
CREATE TABLE message_digests (
    recipient_id UUID NOT NULL,
    conversation_id UUID NOT NULL,
    sender_id UUID NOT NULL,
    listing_id UUID NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    due_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (recipient_id, conversation_id)
);

-- SMS sent through Twilio, with the status its callbacks report.
CREATE TABLE sms_messages (
    sid TEXT PRIMARY KEY,
    user_id UUID NOT NULL,
    status TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
