-- The audit log: append-only, each entry's `hash` covering its fields and
-- the `prev_hash` of the entry before (SHA-256, hex). `id` is the edge's
-- record id: a redelivered record is chained once.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    id UUID NOT NULL UNIQUE,
    at TIMESTAMPTZ NOT NULL,
    actor_id UUID NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    status INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_at ON audit_log (at, seq);

-- The last entry's seq and hash, written with it: removing the newest
-- entries leaves a chain that holds, but not one that reaches the head.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);

-- Each verification's verdict (the nightly job's and on demand).
CREATE TABLE audit_verifications (
    id UUID PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    ok BOOLEAN NOT NULL,
    entries BIGINT NOT NULL,
    first_bad_seq BIGINT
);
