-- When a feed was last fetched, successfully or not: a scheduled sync takes
-- each host's feeds least recently tried first, so failing feeds take turns.
ALTER TABLE calendar_imports ADD COLUMN last_attempt_at TEXT;
UPDATE calendar_imports SET last_attempt_at = last_synced_at;
