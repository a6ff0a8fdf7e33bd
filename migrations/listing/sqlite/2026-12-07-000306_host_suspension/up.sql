-- The host's account is suspended (auth.account_suspended): the listing
-- shows as suspended and leaves search, whatever its own status, until the
-- host is reinstated.
ALTER TABLE listings ADD COLUMN host_suspended BOOLEAN NOT NULL DEFAULT 0;
