ALTER TABLE profiles DROP COLUMN response_minutes;
ALTER TABLE profiles DROP COLUMN response_rate;
