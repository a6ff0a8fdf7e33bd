CREATE TABLE bookings (
    id TEXT PRIMARY KEY NOT NULL,
    listing_id TEXT NOT NULL,
    guest_id TEXT NOT NULL,
    host_id TEXT NOT NULL,
    status TEXT NOT NULL,
    check_in TEXT NOT NULL,
    check_out TEXT NOT NULL,
    guests INTEGER NOT NULL,
    rate TEXT NOT NULL,
    instant_book BOOLEAN NOT NULL,
    cancellation_policy TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    check_in_at TEXT NOT NULL,
    check_out_at TEXT NOT NULL,
    -- The accepted quote (the listing module's shape), as JSON.
    price TEXT NOT NULL,
    currency TEXT NOT NULL,
    total BIGINT NOT NULL,
    hold_expires_at TEXT,
    respond_by TEXT,
    confirmed_at TEXT,
    cancelled_at TEXT,
    refund BIGINT,
    payment_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX bookings_guest ON bookings (guest_id, id);
CREATE INDEX bookings_host ON bookings (host_id, id);
CREATE INDEX bookings_listing ON bookings (listing_id, check_in);
CREATE INDEX bookings_status ON bookings (status, updated_at);

-- The availability guarantee: a night of a listing is held by one booking at
-- most, whatever the backend and however many processes race.
CREATE TABLE booking_nights (
    listing_id TEXT NOT NULL,
    night TEXT NOT NULL,
    booking_id TEXT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    PRIMARY KEY (listing_id, night)
);
CREATE INDEX booking_nights_booking ON booking_nights (booking_id);

-- One row per listing, locked by every reservation of that listing: bookings
-- of one listing queue (preparation time is a read), others never wait.
CREATE TABLE booking_listing_locks (
    listing_id TEXT PRIMARY KEY NOT NULL,
    reservations BIGINT NOT NULL
);

-- Idempotency-Key of POST /bookings, per guest.
CREATE TABLE booking_idempotency (
    guest_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    booking_id TEXT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (guest_id, key)
);
