-- The relay looks deliveries up by event id (a batch's ids, every subscriber):
-- with the subscriber first in the key that lookup scanned the whole inbox.
ALTER TABLE inbox DROP CONSTRAINT inbox_pkey, ADD PRIMARY KEY (event_id, subscriber);
