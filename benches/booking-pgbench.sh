#!/usr/bin/env bash
# The ceiling for benches/booking-load.sh: HomeTrip's reservation transaction
# (`booking::store::reserve`: lock the listing's row, look for a taken night in
# the stay, insert the booking, its nights under their unique key, its
# hold-expiry timer and its outbox event) run by pgbench directly in
# PostgreSQL: no HTTP, no auth, no listing quote, no relay behind it.
#   SCENARIO=spread (1,000 listings, default) or hot (one listing).
#   SCHEMA=hometrip (default): HomeTrip's own tables, migrated and seeded by
#     the binary as for the load (same demo listings, indexes, foreign keys,
#     UUIDv7-ordered keys, rows as wide as HomeTrip writes them: the booking's
#     price breakdown, the 1.9 kB `booking.created` payload); extended protocol
#     with prepared statements, as HomeTrip uses.
#   SCHEMA=minimal: the same steps on six-column stand-in tables (integer keys,
#     no secondary index, a 30-byte payload) — the cheapest form of the
#     transaction, for comparison. MODE=simple|prepared (pgbench -M).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hometrip-target}"
PG_ADMIN="${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}"
DB="${PG_ADMIN%/*}/ht_bench_pgbench"
CLIENTS="${CLIENTS:-16}"
DURATION="${DURATION:-15}"
SCENARIO="${SCENARIO:-spread}"
SCHEMA="${SCHEMA:-hometrip}"
MODE="${MODE:-prepared}"
LISTINGS=1000; [ "$SCENARIO" = hot ] && LISTINGS=1
SQL_FILE="$(mktemp)"
trap 'rm -f "$SQL_FILE"' EXIT
psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS ht_bench_pgbench" -qc "CREATE DATABASE ht_bench_pgbench"

if [ "$SCHEMA" = hometrip ]; then
  [ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin hometrip
  BIN="$CARGO_TARGET_DIR/release/hometrip"
  DATA="$(mktemp -d)"
  HOMETRIP_DATA_DIR="$DATA" HOMETRIP_DATABASE__URL="$DB" HOMETRIP_LOG__FILTER=error "$BIN" migrate >/dev/null
  HOMETRIP_DATA_DIR="$DATA" HOMETRIP_DATABASE__URL="$DB" HOMETRIP_LOG__FILTER=error "$BIN" seed-demo --listings 1000 --seed 7 >/dev/null
  rm -rf "$DATA"
  # Listing n -> (id, host), and the two JSON texts a booking carries (kept
  # in a table: their colons would read as pgbench variables in the script).
  psql "$DB" -q <<'SQL'
CREATE TABLE bench_listing AS
  SELECT (row_number() OVER (ORDER BY id))::int AS n, id, host_id FROM listings WHERE status = 'published' ORDER BY id LIMIT 1000;
ALTER TABLE bench_listing ADD PRIMARY KEY (n);
CREATE TABLE bench_json (price TEXT NOT NULL, payload TEXT NOT NULL);
SQL
  price='{"listing_id":"LISTING_ID","check_in":"2027-03-05","check_out":"2027-03-08","guests":1,"rate":"standard","nights":3,"nightly_subtotal":{"amount":29370,"currency":"EUR"},"extra_guest_fee":{"amount":0,"currency":"EUR"},"discounts":{"amount":0,"currency":"EUR"},"cleaning_fee":{"amount":2200,"currency":"EUR"},"service_fee":{"amount":4420,"currency":"EUR"},"taxes":{"amount":1469,"currency":"EUR"},"total":{"amount":37459,"currency":"EUR"},"stay":{"host_id":"HOST_ID","instant_book":false,"cancellation_policy":"moderate","time_zone":"UTC","check_in_time":"15:00","check_out_time":"11:00","preparation_days":0,"max_guests":2}}'
  payload='{"booking":{"id":"BOOKING_ID","status":"pending_payment","listing_id":"LISTING_ID","guest_id":"01a211f4-6a2f-73c9-8c10-587c3b5e1564","host_id":"HOST_ID","check_in":"2027-03-05","check_out":"2027-03-08","guests":1,"nights":3,"rate":"standard","instant_book":false,"cancellation_policy":"moderate","time_zone":"UTC","check_in_at":"2027-03-05T15:00:00Z","check_out_at":"2027-03-08T11:00:00Z","price":PRICE,"refund_timeline":[{"from":"2026-11-25T09:06:01.953529Z","until":"2027-02-28T15:00:00Z","refund":{"amount":37459,"currency":"EUR"},"kind":"full"},{"from":"2027-02-28T15:00:00Z","until":"2027-03-05T15:00:00Z","refund":{"amount":13953,"currency":"EUR"},"kind":"partial"},{"from":"2027-03-05T15:00:00Z","until":"2027-03-06T15:00:00Z","refund":{"amount":5877,"currency":"EUR"},"kind":"partial"},{"from":"2027-03-06T15:00:00Z","until":null,"refund":{"amount":0,"currency":"EUR"},"kind":"none"}],"hold_expires_at":"2026-11-25T09:21:01.953498Z","respond_by":null,"confirmed_at":null,"grace_period_until":null,"cancelled_at":null,"refund":null,"payment_id":null,"created_at":"2026-11-25T09:06:01.953498Z","updated_at":"2026-11-25T09:06:01.953498Z"}}'
  psql "$DB" -q -v price="$price" -v payload="$payload" <<<"INSERT INTO bench_json VALUES (:'price', replace(:'payload', 'PRICE', :'price'))"
  # A time-ordered id like HomeTrip's UUIDv7 (inline: a SQL function would be
  # parsed again at every call).
  uuid7="(lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') || '7' || substr(md5(random()::text), 1, 19))::uuid"
  cat > "$SQL_FILE" <<SQL
\set n random(1, $LISTINGS)
\set start random(10, 320)
\set nights random(3, 5)
BEGIN;
WITH l AS (SELECT id, host_id FROM bench_listing WHERE n = :n),
locked AS (
  INSERT INTO booking_listing_locks (listing_id, reservations) SELECT id, 1 FROM l
  ON CONFLICT (listing_id) DO UPDATE SET reservations = booking_listing_locks.reservations + 1
)
SELECT id AS lid, host_id AS hid FROM l \gset
WITH v AS (
  SELECT $uuid7 AS bid, current_date + (:start)::int AS cin, current_date + (:start)::int + (:nights)::int AS cout
), free AS (
  SELECT NOT EXISTS (SELECT 1 FROM booking_nights, v WHERE listing_id = (:lid)::uuid
    AND night >= v.cin AND night < v.cout) AS ok
), booking AS (
  INSERT INTO bookings (id, listing_id, guest_id, host_id, status, check_in, check_out, guests, rate, instant_book,
    cancellation_policy, time_zone, check_in_at, check_out_at, price, currency, total, hold_expires_at, respond_by,
    confirmed_at, cancelled_at, refund, payment_id, created_at, updated_at)
  SELECT v.bid, (:lid)::uuid, '01a211f4-6a2f-73c9-8c10-587c3b5e1564', (:hid)::uuid, 'pending_payment', v.cin, v.cout, 1,
    'standard', false, 'moderate', 'UTC', v.cin + time '15:00', v.cout + time '11:00',
    replace(replace(j.price, 'LISTING_ID', (:lid)::text), 'HOST_ID', (:hid)::text), 'EUR', 37459,
    now() + interval '15 minutes', NULL, NULL, NULL, NULL, NULL, now(), now()
  FROM v, free, bench_json j WHERE free.ok
  RETURNING id, check_in
), nights AS (
  INSERT INTO booking_nights (listing_id, night, booking_id)
  SELECT (:lid)::uuid, b.check_in + g, b.id FROM booking b, generate_series(0, (:nights)::int - 1) g
), job AS (
  INSERT INTO jobs (id, kind, dedupe_key, payload, run_at, attempts, failed, created_at)
  SELECT $uuid7, 'booking.expire_hold', 'hold:' || b.id, '{"booking_id":"' || b.id || '"}',
    now() + interval '15 minutes', 0, false, now() FROM booking b
)
INSERT INTO outbox_events (id, event_type, source, occurred_at, trace_context, data)
SELECT $uuid7, 'booking.created', 'booking', now(), NULL,
  replace(replace(replace(j.payload, 'BOOKING_ID', b.id::text), 'LISTING_ID', (:lid)::text), 'HOST_ID', (:hid)::text)
FROM booking b, bench_json j;
COMMIT;
SQL
  count_bookings="SELECT count(*) FROM bookings WHERE guest_id = '01a211f4-6a2f-73c9-8c10-587c3b5e1564'"
  overlaps_sql="SELECT count(*) FROM bookings a JOIN bookings b ON a.listing_id = b.listing_id AND a.id < b.id
    AND a.check_in < b.check_out AND b.check_in < a.check_out"
else
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
  cat > "$SQL_FILE" <<SQL
\set listing random(1, $LISTINGS)
\set start random(10, 320)
\set nights random(3, 5)
BEGIN;
INSERT INTO bench_locks VALUES ((:listing)::int, 1) ON CONFLICT (listing_id) DO UPDATE SET reservations = bench_locks.reservations + 1;
WITH free AS (
  SELECT NOT EXISTS (SELECT 1 FROM bench_nights WHERE listing_id = (:listing)::int
    AND night >= current_date + (:start)::int AND night < current_date + (:start)::int + (:nights)::int) AS ok
), booking AS (
  INSERT INTO bench_bookings (listing_id, check_in, check_out, status)
  SELECT (:listing)::int, current_date + (:start)::int, current_date + (:start)::int + (:nights)::int, 'pending_payment'
  FROM free WHERE ok
  RETURNING id
), nights AS (
  INSERT INTO bench_nights SELECT (:listing)::int, current_date + (:start)::int + g, booking.id
  FROM booking, generate_series(0, (:nights)::int - 1) g
), job AS (
  INSERT INTO bench_jobs (dedupe_key, payload, run_at)
  SELECT 'hold:' || id, '{"booking_id":' || id || '}', now() + interval '15 minutes' FROM booking
)
INSERT INTO bench_outbox (event_type, data) SELECT 'booking.created', '{"booking":{"id":' || id || '}}' FROM booking;
COMMIT;
SQL
  count_bookings="SELECT count(*) FROM bench_bookings"
  overlaps_sql="SELECT count(*) FROM bench_bookings a JOIN bench_bookings b ON a.listing_id = b.listing_id AND a.id < b.id
    AND a.check_in < b.check_out AND b.check_in < a.check_out"
fi

# pgbench's sessions keep one generic plan per prepared statement. With
# PostgreSQL's default (plan_cache_mode = auto) the big CTE kept being planned
# afresh at every execution, which cost the ceiling a third of its rate.
export PGOPTIONS="${PGOPTIONS:--c plan_cache_mode=force_generic_plan}"
echo "== pgbench: $SCENARIO, $SCHEMA tables, $MODE protocol, $CLIENTS clients, ${DURATION}s"
before=$(psql "$DB" -Atqc "$count_bookings")
out=$(pgbench -n -M "$MODE" -c "$CLIENTS" -j 2 -T "$DURATION" -f "$SQL_FILE" "$DB")
echo "$out" | grep -E "tps|latency average|number of transactions actually|aborted" || true
made=$(( $(psql "$DB" -Atqc "$count_bookings") - before ))
echo "bookings made: $made ($(( made / DURATION ))/s)"
echo "overlapping bookings: $(psql "$DB" -Atqc "$overlaps_sql")"
