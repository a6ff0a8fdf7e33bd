-- Client events as received (no address: `visitor` is a hash under the
-- day's salt), kept `analytics.raw_retention_days`.
CREATE TABLE analytics_events (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    at TEXT NOT NULL,
    received_on TEXT NOT NULL,
    session_id TEXT,
    visitor TEXT NOT NULL,
    user_id TEXT,
    listing_id TEXT,
    props TEXT NOT NULL
);
CREATE INDEX analytics_events_received ON analytics_events (received_on);

-- One random salt per day, deleted once the day is over: a visitor's hash
-- can then no longer be matched to an address.
CREATE TABLE analytics_salts (
    day TEXT PRIMARY KEY NOT NULL,
    salt TEXT NOT NULL
);

-- Distinct visitors per day.
CREATE TABLE analytics_visitors (
    day TEXT NOT NULL,
    visitor TEXT NOT NULL,
    PRIMARY KEY (day, visitor)
);

-- Platform counters per day (`currency` is empty for counts).
CREATE TABLE platform_daily (
    day TEXT NOT NULL,
    metric TEXT NOT NULL,
    currency TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (day, metric, currency)
);

-- A listing's day: nights are counted on their own date, bookings and
-- cancellations on the day they happened.
CREATE TABLE listing_daily (
    listing_id TEXT NOT NULL,
    day TEXT NOT NULL,
    host_id TEXT NOT NULL,
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
    host_id TEXT NOT NULL,
    day TEXT NOT NULL,
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
    listing_id TEXT PRIMARY KEY NOT NULL,
    host_id TEXT NOT NULL,
    title TEXT NOT NULL,
    currency TEXT NOT NULL,
    created_on TEXT NOT NULL,
    deleted_on TEXT
);
CREATE INDEX analytics_listings_host ON analytics_listings (host_id);

-- Nights the host took off the market (from listing.calendar_changed).
CREATE TABLE analytics_blocked (
    listing_id TEXT NOT NULL,
    night TEXT NOT NULL,
    PRIMARY KEY (listing_id, night)
);

-- Bookings' milestones and what of their money was counted already.
CREATE TABLE analytics_bookings (
    booking_id TEXT PRIMARY KEY NOT NULL,
    listing_id TEXT NOT NULL,
    host_id TEXT NOT NULL,
    check_in TEXT NOT NULL,
    check_out TEXT NOT NULL,
    currency TEXT NOT NULL,
    accommodation BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    confirmed_at TEXT,
    cancelled_at TEXT,
    completed_at TEXT,
    reviewed_at TEXT,
    host_earnings BIGINT NOT NULL,
    platform_revenue BIGINT NOT NULL,
    gmv BIGINT NOT NULL
);
CREATE INDEX analytics_bookings_created ON analytics_bookings (created_at);

-- Domain events already rolled up (a redelivery changes nothing).
CREATE TABLE analytics_applied (
    event_id TEXT PRIMARY KEY NOT NULL,
    applied_at TEXT NOT NULL
);
