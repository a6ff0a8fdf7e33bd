-- API keys: found by their public part, checked against the SHA-256 of the
-- whole key (a 256-bit random secret needs no slow hash); never stored in clear.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    owner_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    public_part TEXT NOT NULL UNIQUE,
    key_hash TEXT NOT NULL,
    -- scope names, space-separated
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    last_used_at TEXT,
    revoked_at TEXT,
    replaced_by TEXT
);
CREATE INDEX api_keys_owner ON api_keys (owner_id, created_at);
