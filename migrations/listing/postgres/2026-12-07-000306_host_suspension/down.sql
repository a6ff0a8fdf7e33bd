ALTER TABLE listings DROP COLUMN host_suspended;
