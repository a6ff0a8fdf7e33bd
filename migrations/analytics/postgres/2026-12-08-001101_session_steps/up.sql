-- The first time each session reached each client-side step of the funnel
-- (search, listing_view, booking_started): the overview's median times
-- between those steps are read from here, not from raw events. Kept as
-- long as raw events (`analytics.raw_retention_days`).
CREATE TABLE analytics_session_steps (
    session_id TEXT NOT NULL,
    step TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, step)
);
CREATE INDEX analytics_session_steps_at ON analytics_session_steps (step, at);
