DROP TABLE night_prices;
DROP TABLE calendar_nights;
DROP TABLE listing_photos;
DROP TABLE listings;
