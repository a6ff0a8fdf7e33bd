DROP TABLE oauth_identities;
DROP TABLE recovery_codes;
DROP TABLE email_tokens;
DROP TABLE refresh_tokens;
DROP TABLE accounts;
