ALTER TABLE calendar_imports DROP COLUMN last_attempt_at;
