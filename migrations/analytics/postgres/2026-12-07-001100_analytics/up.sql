-- Client events as received (no address: `visitor` is a hash under the
-- day's salt), kept `analytics.raw_retention_days`.
CREATE TABLE analytics_events (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    received_on DATE NOT NULL,
    session_id TEXT,
    visitor TEXT NOT NULL,
    user_id UUID,
    listing_id UUID,
    props TEXT NOT NULL
);
CREATE INDEX analytics_events_received ON analytics_events (received_on);

-- One random salt per day, deleted once the day is over: a visitor's hash
-- can then no longer be matched to an address.
CREATE TABLE analytics_salts (
    day DATE PRIMARY KEY,
    salt TEXT NOT NULL
);

-- Distinct visitors per day.
CREATE TABLE analytics_visitors (
    day DATE NOT NULL,
    visitor TEXT NOT NULL,
    PRIMARY KEY (day, visitor)
);

-- Platform counters per day (`currency` is empty for counts).
CREATE TABLE platform_daily (
    day DATE NOT NULL,
    metric TEXT NOT NULL,
    currency TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (day, metric, currency)
);

-- A listing's day: nights are counted on their own date, bookings and
-- cancellations on the day they happened.
CREATE TABLE listing_daily (
    listing_id UUID NOT NULL,
    day DATE NOT NULL,
    host_id UUID NOT NULL,
    views BIGINT NOT NULL,
    nights_booked BIGINT NOT NULL,
    accommodation BIGINT NOT NULL,
    revenue BIGINT NOT NULL,
    bookings BIGINT NOT NULL,
    cancellations BIGINT NOT NULL,
    lead_time_days BIGINT NOT NULL,
    stay_nights BIGINT NOT NULL,
    blocked BIGINT NOT NULL,
    PRIMARY KEY (listing_id, day)
);
CREATE INDEX listing_daily_host ON listing_daily (host_id, day);

-- The same, summed over each host's listings (a host's report over two
-- years reads at most 731 rows, however many listings).
CREATE TABLE host_daily (
    host_id UUID NOT NULL,
    day DATE NOT NULL,
    views BIGINT NOT NULL,
    nights_booked BIGINT NOT NULL,
    accommodation BIGINT NOT NULL,
    revenue BIGINT NOT NULL,
    bookings BIGINT NOT NULL,
    cancellations BIGINT NOT NULL,
    lead_time_days BIGINT NOT NULL,
    stay_nights BIGINT NOT NULL,
    blocked BIGINT NOT NULL,
    PRIMARY KEY (host_id, day)
);

-- The listings as analytics knows them (from listing.changed).
CREATE TABLE analytics_listings (
    listing_id UUID PRIMARY KEY,
    host_id UUID NOT NULL,
    title TEXT NOT NULL,
    currency TEXT NOT NULL,
    created_on DATE NOT NULL,
    deleted_on DATE
);
CREATE INDEX analytics_listings_host ON analytics_listings (host_id);

-- Nights the host took off the market (from listing.calendar_changed).
CREATE TABLE analytics_blocked (
    listing_id UUID NOT NULL,
    night DATE NOT NULL,
    PRIMARY KEY (listing_id, night)
);

-- Bookings' milestones and what of their money was counted already.
CREATE TABLE analytics_bookings (
    booking_id UUID PRIMARY KEY,
    listing_id UUID NOT NULL,
    host_id UUID NOT NULL,
    check_in DATE NOT NULL,
    check_out DATE NOT NULL,
    currency TEXT NOT NULL,
    accommodation BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    confirmed_at TIMESTAMPTZ,
    cancelled_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    reviewed_at TIMESTAMPTZ,
    host_earnings BIGINT NOT NULL,
    platform_revenue BIGINT NOT NULL,
    gmv BIGINT NOT NULL
);
CREATE INDEX analytics_bookings_created ON analytics_bookings (created_at);

-- Domain events already rolled up (a redelivery changes nothing).
CREATE TABLE analytics_applied (
    event_id UUID PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL
);
