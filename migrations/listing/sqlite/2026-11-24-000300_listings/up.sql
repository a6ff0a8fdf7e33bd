CREATE TABLE listings (
    id TEXT PRIMARY KEY NOT NULL,
    host_id TEXT NOT NULL,
    status TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    property_type TEXT NOT NULL,
    -- Value objects kept whole: address, details (guests, rooms, amenities),
    -- pricing (minor units, basis points) and stay rules.
    address TEXT NOT NULL,
    lat DOUBLE,
    lon DOUBLE,
    details TEXT NOT NULL,
    pricing TEXT NOT NULL,
    rules TEXT NOT NULL,
    ical_token TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX listings_host ON listings (host_id);

CREATE TABLE listing_photos (
    id TEXT PRIMARY KEY NOT NULL,
    listing_id TEXT NOT NULL REFERENCES listings (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    storage_key TEXT NOT NULL,
    caption TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX listing_photos_listing ON listing_photos (listing_id, position);

-- One row per taken night: the unique key is what makes double-booking impossible.
CREATE TABLE calendar_nights (
    listing_id TEXT NOT NULL REFERENCES listings (id) ON DELETE CASCADE,
    night TEXT NOT NULL,
    status TEXT NOT NULL,
    source TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (listing_id, night)
);

CREATE TABLE night_prices (
    listing_id TEXT NOT NULL REFERENCES listings (id) ON DELETE CASCADE,
    night TEXT NOT NULL,
    amount BIGINT NOT NULL,
    PRIMARY KEY (listing_id, night)
);
