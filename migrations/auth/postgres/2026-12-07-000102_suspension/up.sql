-- An admin's suspension: the account cannot sign in, its sessions ended
-- when it began (auth.account_suspended tells the other modules).
ALTER TABLE accounts ADD COLUMN suspended_at TIMESTAMPTZ;
ALTER TABLE accounts ADD COLUMN suspension_reason TEXT;
