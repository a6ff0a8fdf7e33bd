-- A host's responsiveness, as the message module last computed it.
ALTER TABLE profiles ADD COLUMN response_rate INTEGER;
ALTER TABLE profiles ADD COLUMN response_minutes BIGINT;
