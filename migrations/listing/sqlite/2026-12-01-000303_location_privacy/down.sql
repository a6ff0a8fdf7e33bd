DROP TABLE listing_guest_access;
ALTER TABLE listings DROP COLUMN location_salt;
