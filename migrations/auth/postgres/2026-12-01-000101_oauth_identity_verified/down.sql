ALTER TABLE oauth_identities DROP COLUMN email_verified;
