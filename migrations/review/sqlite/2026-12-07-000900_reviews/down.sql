DROP TABLE review_market;
DROP TABLE listing_ratings;
DROP TABLE review_appeals;
DROP TABLE review_flags;
DROP TABLE reviews;
DROP TABLE review_stays;
