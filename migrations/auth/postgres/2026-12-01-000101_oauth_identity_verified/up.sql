-- Whether the provider vouched for the identity's email when it was linked.
-- Rows from before are taken as unverified: a password reset or an email
-- verification unlinks them, and a verified one links again at its next sign-in.
ALTER TABLE oauth_identities ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
