ALTER TABLE outbox_events ADD COLUMN published_at TEXT;
CREATE INDEX outbox_events_unpublished ON outbox_events (seq) WHERE published_at IS NULL;
