ALTER TABLE accounts DROP COLUMN suspension_reason;
ALTER TABLE accounts DROP COLUMN suspended_at;
