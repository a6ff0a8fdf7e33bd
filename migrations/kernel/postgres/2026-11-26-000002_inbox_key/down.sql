ALTER TABLE inbox DROP CONSTRAINT inbox_pkey, ADD PRIMARY KEY (subscriber, event_id);
