CREATE TABLE profiles (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    display_name TEXT NOT NULL,
    bio TEXT NOT NULL DEFAULT '',
    locale TEXT NOT NULL DEFAULT 'en',
    currency TEXT NOT NULL DEFAULT 'EUR',
    notification_channels TEXT NOT NULL DEFAULT 'email,push',
    avatar_key TEXT,
    identity_status TEXT NOT NULL DEFAULT 'none',
    identity_document_key TEXT,
    identity_note TEXT,
    identity_updated_at TEXT,
    search_text TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX profiles_identity_status ON profiles (identity_status);
