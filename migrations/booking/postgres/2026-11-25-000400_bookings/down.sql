DROP TABLE booking_idempotency;
DROP TABLE booking_listing_locks;
DROP TABLE booking_nights;
DROP TABLE bookings;
