-- External calendars (Airbnb, Vrbo, Booking.com iCal feeds) whose nights block this listing.
CREATE TABLE calendar_imports (
    id TEXT PRIMARY KEY NOT NULL,
    listing_id TEXT NOT NULL REFERENCES listings (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    etag TEXT,
    last_synced_at TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX calendar_imports_listing ON calendar_imports (listing_id);
CREATE INDEX calendar_nights_source ON calendar_nights (source) WHERE source IS NOT NULL;
