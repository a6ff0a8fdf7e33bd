-- The review module's figures for the listing (review.listing_rating_changed):
-- the rating shown (from 3 reviews), the ranking score and the count.
ALTER TABLE listings ADD COLUMN rating REAL;
ALTER TABLE listings ADD COLUMN rating_score REAL;
ALTER TABLE listings ADD COLUMN review_count BIGINT NOT NULL DEFAULT 0;
