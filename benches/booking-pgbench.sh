#!/usr/bin/env bash
# The ceiling for benches/booking-load.sh: the same reservation transaction as
# HomeTrip's `booking::store::reserve` (lock the listing's row, look for a
# taken night in the stay, insert the booking, its nights under their unique
# key, its hold-expiry timer and its outbox event), run by pgbench directly in
# PostgreSQL: no HTTP, no auth, no listing quote, no relay behind it.
#   SCENARIO=spread (1,000 listings, default) or hot (one listing).
set -euo pipefail
cd "$(dirname "$0")/.."
PG_ADMIN="${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}"
DB="${PG_ADMIN%/*}/ht_bench_pgbench"
CLIENTS="${CLIENTS:-16}"
DURATION="${DURATION:-15}"
SCENARIO="${SCENARIO:-spread}"
LISTINGS=1000; [ "$SCENARIO" = hot ] && LISTINGS=1
psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS ht_bench_pgbench" -qc "CREATE DATABASE ht_bench_pgbench"
psql "$DB" -q <<SQL
CREATE TABLE bench_bookings (id BIGSERIAL PRIMARY KEY, listing_id INT NOT NULL, check_in DATE NOT NULL,
  check_out DATE NOT NULL, status TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE bench_nights (listing_id INT NOT NULL, night DATE NOT NULL, booking_id BIGINT NOT NULL,
  PRIMARY KEY (listing_id, night));
CREATE TABLE bench_locks (listing_id INT PRIMARY KEY, reservations BIGINT NOT NULL);
CREATE TABLE bench_jobs (id BIGSERIAL PRIMARY KEY, dedupe_key TEXT NOT NULL UNIQUE, payload TEXT NOT NULL,
  run_at TIMESTAMPTZ NOT NULL);
CREATE TABLE bench_outbox (seq BIGSERIAL PRIMARY KEY, event_type TEXT NOT NULL, data TEXT NOT NULL,
  occurred_at TIMESTAMPTZ NOT NULL DEFAULT now());
SQL
cat > /tmp/ht-booking.sql <<SQL
\set listing random(1, $LISTINGS)
\set start random(10, 320)
\set nights random(3, 5)
BEGIN;
INSERT INTO bench_locks VALUES (:listing, 1) ON CONFLICT (listing_id) DO UPDATE SET reservations = bench_locks.reservations + 1;
WITH free AS (
  SELECT NOT EXISTS (SELECT 1 FROM bench_nights WHERE listing_id = :listing
    AND night >= current_date + :start AND night < current_date + :start + :nights) AS ok
), booking AS (
  INSERT INTO bench_bookings (listing_id, check_in, check_out, status)
  SELECT :listing, current_date + :start, current_date + :start + :nights, 'pending_payment' FROM free WHERE ok
  RETURNING id
), nights AS (
  INSERT INTO bench_nights SELECT :listing, current_date + :start + g, booking.id FROM booking, generate_series(0, :nights - 1) g
), job AS (
  INSERT INTO bench_jobs (dedupe_key, payload, run_at) SELECT 'hold:' || id, '{"booking_id":' || id || '}', now() + interval '15 minutes' FROM booking
)
INSERT INTO bench_outbox (event_type, data) SELECT 'booking.created', '{"booking":{"id":' || id || '}}' FROM booking;
COMMIT;
SQL
echo "== pgbench: $SCENARIO, $CLIENTS clients, ${DURATION}s"
pgbench -n -c "$CLIENTS" -j 2 -T "$DURATION" -f /tmp/ht-booking.sql "$DB" | grep -E "tps|latency average|number of transactions actually"
echo "bookings made: $(psql "$DB" -Atqc "SELECT count(*) FROM bench_bookings")"
overlaps=$(psql "$DB" -Atqc "SELECT count(*) FROM bench_bookings a JOIN bench_bookings b ON a.listing_id = b.listing_id AND a.id < b.id AND a.check_in < b.check_out AND b.check_in < a.check_out")
echo "overlapping bookings: $overlaps"
