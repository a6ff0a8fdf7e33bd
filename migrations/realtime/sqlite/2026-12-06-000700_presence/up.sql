-- When each user was last seen online (their last socket closed, or the
-- process holding it stopped renewing it).
CREATE TABLE presence_last_seen (
    user_id TEXT PRIMARY KEY NOT NULL,
    last_seen_at TEXT NOT NULL
);
