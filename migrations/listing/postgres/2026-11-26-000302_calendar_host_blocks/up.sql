-- A booking's nights take over any host block in the calendar; this remembers
-- the block so it comes back when the booking lets the nights go.
ALTER TABLE calendar_nights ADD COLUMN host_blocked BOOLEAN NOT NULL DEFAULT false;
