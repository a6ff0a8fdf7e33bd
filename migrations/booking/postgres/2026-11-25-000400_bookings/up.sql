CREATE TABLE bookings (
    id UUID PRIMARY KEY,
    listing_id UUID NOT NULL,
    guest_id UUID NOT NULL,
    host_id UUID NOT NULL,
    status TEXT NOT NULL,
    check_in DATE NOT NULL,
    check_out DATE NOT NULL,
    guests INTEGER NOT NULL,
    rate TEXT NOT NULL,
    instant_book BOOLEAN NOT NULL,
    cancellation_policy TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    check_in_at TIMESTAMPTZ NOT NULL,
    check_out_at TIMESTAMPTZ NOT NULL,
    -- The accepted quote (the listing module's shape), as JSON.
    price TEXT NOT NULL,
    currency TEXT NOT NULL,
    total BIGINT NOT NULL,
    hold_expires_at TIMESTAMPTZ,
    respond_by TIMESTAMPTZ,
    confirmed_at TIMESTAMPTZ,
    cancelled_at TIMESTAMPTZ,
    refund BIGINT,
    payment_id UUID,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX bookings_guest ON bookings (guest_id, id);
CREATE INDEX bookings_host ON bookings (host_id, id);
CREATE INDEX bookings_listing ON bookings (listing_id, check_in);
CREATE INDEX bookings_status ON bookings (status, updated_at);

-- The availability guarantee: a night of a listing is held by one booking at
-- most, whatever the backend and however many processes race.
CREATE TABLE booking_nights (
    listing_id UUID NOT NULL,
    night DATE NOT NULL,
    booking_id UUID NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    PRIMARY KEY (listing_id, night)
);
CREATE INDEX booking_nights_booking ON booking_nights (booking_id);

-- One row per listing, locked by every reservation of that listing: bookings
-- of one listing queue (preparation time is a read), others never wait.
CREATE TABLE booking_listing_locks (
    listing_id UUID PRIMARY KEY,
    reservations BIGINT NOT NULL
);

-- Idempotency-Key of POST /bookings, per guest.
CREATE TABLE booking_idempotency (
    guest_id UUID NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    booking_id UUID NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (guest_id, key)
);
