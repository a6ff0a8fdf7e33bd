CREATE TABLE inbox_by_subscriber (
    subscriber TEXT NOT NULL,
    event_id TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (subscriber, event_id)
);
INSERT INTO inbox_by_subscriber (subscriber, event_id, processed_at) SELECT subscriber, event_id, processed_at FROM inbox;
DROP TABLE inbox;
ALTER TABLE inbox_by_subscriber RENAME TO inbox;
