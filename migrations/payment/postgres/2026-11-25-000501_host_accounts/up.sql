-- Hosts' payout accounts at the provider (Stripe Connect Express).
CREATE TABLE host_accounts (
    host_id UUID PRIMARY KEY,
    provider TEXT NOT NULL,
    account_id TEXT NOT NULL UNIQUE,
    payouts_enabled BOOLEAN NOT NULL,
    details_submitted BOOLEAN NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
