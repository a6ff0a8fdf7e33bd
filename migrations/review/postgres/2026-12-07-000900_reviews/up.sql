-- Stays that may be reviewed: written when the booking module says a stay
-- is completed (a booking cancelled before check-in never is). The window
-- closes `window_ends_at`; `revealed_at` is when the double-blind lifted.
CREATE TABLE review_stays (
    booking_id UUID PRIMARY KEY,
    listing_id UUID NOT NULL,
    guest_id UUID NOT NULL,
    host_id UUID NOT NULL,
    checked_out_at TIMESTAMPTZ NOT NULL,
    window_ends_at TIMESTAMPTZ NOT NULL,
    revealed_at TIMESTAMPTZ
);

-- One review per booking and side. `status`: hidden (double-blind), held
-- (a moderator decides, `hold_reasons` says why), published, rejected
-- (held, then refused), removed (published, then taken down).
CREATE TABLE reviews (
    id UUID PRIMARY KEY,
    booking_id UUID NOT NULL REFERENCES review_stays (booking_id),
    listing_id UUID NOT NULL,
    author_id UUID NOT NULL,
    author_name TEXT NOT NULL,
    subject_id UUID NOT NULL,
    author_role TEXT NOT NULL,
    rating INTEGER NOT NULL,
    ratings TEXT NOT NULL,
    comment TEXT NOT NULL,
    fingerprint BIGINT,
    status TEXT NOT NULL,
    hold_reasons TEXT NOT NULL,
    flagged BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ,
    response TEXT,
    response_at TIMESTAMPTZ,
    decided_by UUID,
    decision_reason TEXT,
    decided_at TIMESTAMPTZ,
    UNIQUE (booking_id, author_role)
);
CREATE INDEX reviews_listing ON reviews (listing_id, status, published_at DESC, id DESC);
CREATE INDEX reviews_subject ON reviews (subject_id, status, published_at DESC, id DESC);
CREATE INDEX reviews_author ON reviews (author_id, created_at DESC);
CREATE INDEX reviews_queue ON reviews (status, flagged, created_at);

-- Readers' flags: one per reader and review.
CREATE TABLE review_flags (
    review_id UUID NOT NULL REFERENCES reviews (id),
    user_id UUID NOT NULL,
    reason TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (review_id, user_id)
);

-- The author's appeal of a rejection or removal: one per review, decided by
-- an admin other than the one who removed it.
CREATE TABLE review_appeals (
    review_id UUID PRIMARY KEY REFERENCES reviews (id),
    author_id UUID NOT NULL,
    reason TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    removed_by UUID NOT NULL,
    decision TEXT,
    decided_by UUID,
    decision_reason TEXT,
    decided_at TIMESTAMPTZ
);
CREATE INDEX review_appeals_open ON review_appeals (decision, created_at);

-- A listing's published guest reviews, summed: counts and sums per rating
-- (`sums`: JSON of sub-rating sums), kept up to date as reviews publish or go.
CREATE TABLE listing_ratings (
    listing_id UUID PRIMARY KEY,
    count BIGINT NOT NULL,
    overall_sum BIGINT NOT NULL,
    sums TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- The market's mean the scores were last published with (thousandths of a star).
CREATE TABLE review_market (
    id INTEGER PRIMARY KEY,
    prior_milli BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
