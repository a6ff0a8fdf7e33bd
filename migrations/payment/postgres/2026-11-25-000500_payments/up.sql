CREATE TABLE payments (
    id UUID PRIMARY KEY,
    booking_id UUID NOT NULL,
    guest_id UUID NOT NULL,
    host_id UUID NOT NULL,
    currency TEXT NOT NULL,
    amount BIGINT NOT NULL,
    -- accommodation / cleaning / service fee / taxes, as JSON.
    breakdown TEXT NOT NULL,
    status TEXT NOT NULL,
    -- Money taken or held: at most one such payment per booking.
    live BOOLEAN NOT NULL,
    capture_method TEXT NOT NULL,
    payment_method TEXT NOT NULL,
    refunded BIGINT NOT NULL,
    -- The refunded parts so far, as JSON (the host fee given back depends on them).
    refunded_breakdown TEXT NOT NULL,
    provider TEXT NOT NULL,
    provider_ref TEXT,
    idempotency_key TEXT NOT NULL UNIQUE,
    next_action_url TEXT,
    failure_code TEXT,
    failure_message TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX payments_live_per_booking ON payments (booking_id) WHERE live;
CREATE INDEX payments_booking ON payments (booking_id, created_at);
CREATE INDEX payments_provider_ref ON payments (provider_ref);
CREATE INDEX payments_status ON payments (status, updated_at);

CREATE TABLE payouts (
    id UUID PRIMARY KEY,
    booking_id UUID NOT NULL UNIQUE,
    host_id UUID NOT NULL,
    currency TEXT NOT NULL,
    amount BIGINT NOT NULL,
    status TEXT NOT NULL,
    release_at TIMESTAMPTZ NOT NULL,
    paid_at TIMESTAMPTZ,
    provider_ref TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX payouts_host ON payouts (host_id, id);

-- The double-entry ledger: each transaction's entries sum to zero per currency.
CREATE TABLE ledger_transactions (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    -- Makes every money movement recorded once (charge:<payment>, refund:<provider refund>, ...).
    idempotency_key TEXT NOT NULL UNIQUE,
    booking_id UUID,
    payment_id UUID,
    guest_id UUID,
    host_id UUID,
    currency TEXT NOT NULL,
    description TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX ledger_transactions_guest ON ledger_transactions (guest_id, id);
CREATE INDEX ledger_transactions_host ON ledger_transactions (host_id, id);
CREATE INDEX ledger_transactions_booking ON ledger_transactions (booking_id);

CREATE TABLE ledger_entries (
    id UUID PRIMARY KEY,
    transaction_id UUID NOT NULL REFERENCES ledger_transactions (id),
    account TEXT NOT NULL,
    currency TEXT NOT NULL,
    -- Debit positive, credit negative, minor units.
    amount BIGINT NOT NULL
);
CREATE INDEX ledger_entries_transaction ON ledger_entries (transaction_id);
CREATE INDEX ledger_entries_account ON ledger_entries (account);

-- Provider events handled, by provider event id: a replay is acknowledged and ignored.
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);

-- The simulated provider's own state (it stands in for Stripe's servers).
CREATE TABLE sim_intents (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    payment_id UUID NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    capture_method TEXT NOT NULL,
    payment_method TEXT NOT NULL,
    status TEXT NOT NULL,
    failure_code TEXT,
    amount_refunded BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE sim_refunds (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    intent_id TEXT NOT NULL,
    amount BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
