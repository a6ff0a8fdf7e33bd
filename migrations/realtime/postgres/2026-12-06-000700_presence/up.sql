-- When each user was last seen online (their last socket closed, or the
-- process holding it stopped renewing it).
CREATE TABLE presence_last_seen (
    user_id UUID PRIMARY KEY,
    last_seen_at TIMESTAMPTZ NOT NULL
);
