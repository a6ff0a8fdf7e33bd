ALTER TABLE calendar_nights DROP COLUMN host_blocked;
