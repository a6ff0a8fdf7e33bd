-- Delivered events now leave the outbox in the transaction that records their
-- deliveries in the inbox: marking them published rewrote each whole row (the
-- payload with it) and a day of them was kept for nothing.
DELETE FROM outbox_events WHERE published_at IS NOT NULL;
DROP INDEX outbox_events_unpublished;
ALTER TABLE outbox_events DROP COLUMN published_at;
