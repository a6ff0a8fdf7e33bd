DROP TABLE presence_last_seen;
