-- The relay looks deliveries up by event id (a batch's ids, every subscriber):
-- with the subscriber first in the key that lookup scanned the whole inbox.
CREATE TABLE inbox_by_event (
    event_id TEXT NOT NULL,
    subscriber TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (event_id, subscriber)
);
INSERT INTO inbox_by_event (event_id, subscriber, processed_at) SELECT event_id, subscriber, processed_at FROM inbox;
DROP TABLE inbox;
ALTER TABLE inbox_by_event RENAME TO inbox;
