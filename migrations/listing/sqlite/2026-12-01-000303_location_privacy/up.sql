-- Visitors see a listing's approximate location: the exact point moved by an
-- offset derived from this per-listing secret (so it cannot be recomputed from
-- the public id). Existing listings get a random one.
ALTER TABLE listings ADD COLUMN location_salt TEXT NOT NULL DEFAULT '';
UPDATE listings SET location_salt = lower(hex(randomblob(16)));

-- Guests with a confirmed booking see the street address and exact location
-- (a projection of the booking module's events: one row per confirmed booking).
CREATE TABLE listing_guest_access (
    booking_id TEXT PRIMARY KEY NOT NULL,
    listing_id TEXT NOT NULL REFERENCES listings (id) ON DELETE CASCADE,
    guest_id TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX listing_guest_access_guest ON listing_guest_access (listing_id, guest_id);
