-- Stays that may be reviewed: written when the booking module says a stay
-- is completed (a booking cancelled before check-in never is). The window
-- closes `window_ends_at`; `revealed_at` is when the double-blind lifted.
CREATE TABLE review_stays (
    booking_id TEXT PRIMARY KEY NOT NULL,
    listing_id TEXT NOT NULL,
    guest_id TEXT NOT NULL,
    host_id TEXT NOT NULL,
    checked_out_at TEXT NOT NULL,
    window_ends_at TEXT NOT NULL,
    revealed_at TEXT
);

-- One review per booking and side. `status`: hidden (double-blind), held
-- (a moderator decides, `hold_reasons` says why), published, rejected
-- (held, then refused), removed (published, then taken down).
CREATE TABLE reviews (
    id TEXT PRIMARY KEY NOT NULL,
    booking_id TEXT NOT NULL REFERENCES review_stays (booking_id),
    listing_id TEXT NOT NULL,
    author_id TEXT NOT NULL,
    author_name TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    author_role TEXT NOT NULL,
    rating INTEGER NOT NULL,
    ratings TEXT NOT NULL,
    comment TEXT NOT NULL,
    fingerprint BIGINT,
    status TEXT NOT NULL,
    hold_reasons TEXT NOT NULL,
    flagged BOOLEAN NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    published_at TEXT,
    response TEXT,
    response_at TEXT,
    decided_by TEXT,
    decision_reason TEXT,
    decided_at TEXT,
    UNIQUE (booking_id, author_role)
);
CREATE INDEX reviews_listing ON reviews (listing_id, status, published_at DESC, id DESC);
CREATE INDEX reviews_subject ON reviews (subject_id, status, published_at DESC, id DESC);
CREATE INDEX reviews_author ON reviews (author_id, created_at DESC);
CREATE INDEX reviews_queue ON reviews (status, flagged, created_at);

-- Readers' flags: one per reader and review.
CREATE TABLE review_flags (
    review_id TEXT NOT NULL REFERENCES reviews (id),
    user_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (review_id, user_id)
);

-- The author's appeal of a rejection or removal: one per review, decided by
-- an admin other than the one who removed it.
CREATE TABLE review_appeals (
    review_id TEXT PRIMARY KEY NOT NULL REFERENCES reviews (id),
    author_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL,
    removed_by TEXT NOT NULL,
    decision TEXT,
    decided_by TEXT,
    decision_reason TEXT,
    decided_at TEXT
);
CREATE INDEX review_appeals_open ON review_appeals (decision, created_at);

-- A listing's published guest reviews, summed: counts and sums per rating
-- (`sums`: JSON of sub-rating sums), kept up to date as reviews publish or go.
CREATE TABLE listing_ratings (
    listing_id TEXT PRIMARY KEY NOT NULL,
    count BIGINT NOT NULL,
    overall_sum BIGINT NOT NULL,
    sums TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- The market's mean the scores were last published with (thousandths of a star).
CREATE TABLE review_market (
    id INTEGER PRIMARY KEY NOT NULL,
    prior_milli BIGINT NOT NULL,
    updated_at TEXT NOT NULL
);
