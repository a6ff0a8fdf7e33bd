ALTER TABLE listings DROP COLUMN review_count;
ALTER TABLE listings DROP COLUMN rating_score;
ALTER TABLE listings DROP COLUMN rating;
