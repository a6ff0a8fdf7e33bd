#!/usr/bin/env bash
# Issue 15's analytics benchmarks, against the release binary.
#
# 1. Ingestion: batches of 10 client events POSTed by wrk to
#    /api/v1/analytics/events (anonymous, one visitor), on SQLite and on
#    PostgreSQL; side by side, pgbench doing the same writes directly in
#    PostgreSQL (the batch's 10 raw rows, the visitor, the day's counters, in
#    one transaction). Events/s = batches/s × 10.
# 2. Reports over 1,000 listings × 2 years of rollups (PostgreSQL): the
#    host's summary for the two years and the operators' overview, latency
#    by wrk (--latency); side by side, the same host summary computed by
#    PostgreSQL from raw per-night rows (1,000 × 731) with pgbench.
#
#   SKIP_BUILD=1 reuses the last release build; DURATION (default 15 s).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hometrip-target}"
PG_ADMIN="${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}"
PORT="${PORT:-3996}"
DURATION="${DURATION:-15}"
CLIENTS="${CLIENTS:-16}"
command -v bc >/dev/null || { apt-get update -qq && apt-get install -y -qq bc; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin hometrip
BIN="$CARGO_TARGET_DIR/release/hometrip"
WORK="$(mktemp -d)"
pid=""
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=""; fi; }
trap 'stop; rm -rf "$WORK"' EXIT
base="http://127.0.0.1:$PORT"

# Starts the binary on database $1 (empty: SQLite under a fresh data dir).
serve() {
  stop
  rm -rf "$WORK/data" && mkdir -p "$WORK/data"
  HOMETRIP_DATA_DIR="$WORK/data" HOMETRIP_DATABASE__URL="${1:-}" HOMETRIP_SERVER__HOST=127.0.0.1 \
    HOMETRIP_SERVER__PORT="$PORT" HOMETRIP_SERVER__PUBLIC_URL="$base" HOMETRIP_LOG__FILTER=error \
    HOMETRIP_SERVER__RATE_LIMIT__MAX=1000000000 HOMETRIP_AUTH__RATE_LIMIT_PER_ACCOUNT__MAX=1000000000 \
    HOMETRIP_ANALYTICS__BATCHES_PER_MINUTE=1000000000 "$BIN" serve &
  pid=$!
  for _ in $(seq 1 150); do curl -sf "$base/health/ready" >/dev/null && return; sleep 0.2; done
  echo "the binary did not start" >&2; exit 1
}

fresh_db() {
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $1" -qc "CREATE DATABASE $1"
  echo "${PG_ADMIN%/*}/$1"
}

# ---- 1. Ingestion ---------------------------------------------------------------
cat > "$WORK/batch.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
local events = {}
for i = 1, 10 do
  if i % 2 == 0 then
    events[i] = '{"name":"search","session_id":"bench-1","props":{"q":"lyon","results":' .. i .. '}}'
  else
    events[i] = '{"name":"page_view","session_id":"bench-1","props":{"path":"/search?page=' .. i .. '"}}'
  end
end
wrk.body = '{"events":[' .. table.concat(events, ",") .. ']}'
LUA
ingest() {
  local label=$1 out
  out=$(wrk -t2 -c"$CLIENTS" -d"${DURATION}s" -s "$WORK/batch.lua" "$base/api/v1/analytics/events")
  local rps non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $4}' <<<"$out")
  printf '%-28s %10.0f events/s  (%s batches/s; non-2xx: %s)\n' "$label" "$(echo "$rps * 10" | bc)" "$rps" "${non2xx:-0}"
  echo "$rps * 10" | bc > "$WORK/$2"
}
echo "== ingestion (batches of 10 events, $CLIENTS connections, ${DURATION}s)"
serve ""
ingest "HomeTrip, SQLite" sqlite.eps
PG_INGEST=$(fresh_db ht_bench_analytics)
serve "$PG_INGEST"
ingest "HomeTrip, PostgreSQL" pg.eps
stop
# The same writes, straight into HomeTrip's tables (migrated by the binary).
PG_DIRECT=$(fresh_db ht_bench_analytics_direct)
HOMETRIP_DATA_DIR="$WORK/data" HOMETRIP_DATABASE__URL="$PG_DIRECT" HOMETRIP_LOG__FILTER=error "$BIN" migrate >/dev/null
uuid7="(lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') || '7' || substr(md5(random()::text), 1, 19))::uuid"
{
  echo "BEGIN;"
  echo "INSERT INTO analytics_events (id, name, at, received_on, session_id, visitor, user_id, listing_id, props) VALUES"
  for i in $(seq 1 10); do
    sep=","; [ "$i" = 10 ] && sep=";"
    echo "($uuid7, 'search', now(), current_date, 'bench-1', 'f3a9c1d2e4b5a6978877665544332211', NULL, NULL, '{\"q\":\"lyon\",\"results\":$i}')$sep"
  done
  echo "INSERT INTO analytics_visitors (day, visitor) VALUES (current_date, 'f3a9c1d2e4b5a6978877665544332211') ON CONFLICT DO NOTHING;"
  echo "INSERT INTO platform_daily (day, metric, currency, value) VALUES (current_date, 'search', '', 5) ON CONFLICT (day, metric, currency) DO UPDATE SET value = platform_daily.value + excluded.value;"
  echo "INSERT INTO platform_daily (day, metric, currency, value) VALUES (current_date, 'page_view', '', 5) ON CONFLICT (day, metric, currency) DO UPDATE SET value = platform_daily.value + excluded.value;"
  echo "END;"
} > "$WORK/direct.sql"
tps=$(pgbench -n -M prepared -c "$CLIENTS" -j 2 -T "$DURATION" -f "$WORK/direct.sql" "$PG_DIRECT" | awk '/^tps/ {print $3; exit}')
printf '%-28s %10.0f events/s  (%s transactions/s)\n' "pgbench, same writes" "$(echo "$tps * 10" | bc)" "$tps"
echo "ratio PostgreSQL/pgbench: $(echo "scale=2; $(cat "$WORK/pg.eps") / ($tps * 10)" | bc)"
echo "ratio SQLite/pgbench:     $(echo "scale=2; $(cat "$WORK/sqlite.eps") / ($tps * 10)" | bc)"

# ---- 2. Reports over 1,000 listings × 2 years ------------------------------------
echo "== reports (1,000 listings × 731 days of rollups, PostgreSQL)"
PG_REPORTS=$(fresh_db ht_bench_analytics_reports)
serve "$PG_REPORTS"
host_email="bench-host@example.com"
curl -sf -X POST "$base/api/v1/auth/register" -H 'content-type: application/json' \
  -d "{\"email\":\"$host_email\",\"password\":\"correct horse battery staple\",\"display_name\":\"Bench Host\"}" >/dev/null
host_token=$(curl -sf -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"$host_email\",\"password\":\"correct horse battery staple\"}" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
host_id=$(curl -sf "$base/api/v1/users/me" -H "authorization: Bearer $host_token" | sed -E 's/.*"id":"([^"]+)".*/\1/')
HOMETRIP_DATA_DIR="$WORK/data" HOMETRIP_DATABASE__URL="$PG_REPORTS" HOMETRIP_LOG__FILTER=error \
  "$BIN" admin create --email bench-admin@example.com --password-stdin <<<"the admin passphrase is long" >/dev/null
admin_token=$(curl -sf -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench-admin@example.com","password":"the admin passphrase is long"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
psql "$PG_REPORTS" -q -v host="$host_id" <<'SQL'
-- 1,000 listings on the market for two years; each night booked with
-- probability 0.6 at 80-180 EUR, a few blocked; a booking every 2.5 nights.
INSERT INTO analytics_listings (listing_id, host_id, title, currency, created_on)
  SELECT md5('listing' || g)::uuid, :'host', 'Listing ' || g, 'EUR', current_date - 800 FROM generate_series(1, 1000) g;
INSERT INTO listing_daily (listing_id, day, host_id, views, nights_booked, accommodation, revenue, bookings,
    cancellations, lead_time_days, stay_nights, blocked)
  SELECT l.listing_id, d::date, l.host_id, (random() * 20)::int, b, b * (8000 + (random() * 10000)::int),
    b * (7000 + (random() * 9000)::int), (random() < 0.4)::int, (random() < 0.03)::int, (random() * 60)::int,
    (random() * 5)::int, ((1 - b) * (random() < 0.05)::int)
  FROM analytics_listings l, generate_series(current_date - 730, current_date, interval '1 day') d,
    LATERAL (SELECT (random() < 0.6)::int AS b) r;
INSERT INTO host_daily (host_id, day, views, nights_booked, accommodation, revenue, bookings, cancellations,
    lead_time_days, stay_nights, blocked)
  SELECT host_id, day, sum(views), sum(nights_booked), sum(accommodation), sum(revenue), sum(bookings),
    sum(cancellations), sum(lead_time_days), sum(stay_nights), sum(blocked)
  FROM listing_daily GROUP BY host_id, day;
INSERT INTO platform_daily (day, metric, currency, value)
  SELECT d::date, m, CASE WHEN m IN ('gmv', 'net_revenue') THEN 'EUR' ELSE '' END, (random() * 100000)::int
  FROM generate_series(current_date - 730, current_date, interval '1 day') d,
    unnest(ARRAY['search', 'listing_view', 'page_view', 'booking_started', 'visitors', 'new_users', 'bookings_started',
      'bookings_confirmed', 'bookings_completed', 'cancellations', 'reviews', 'gmv', 'net_revenue']) m
  ON CONFLICT (day, metric, currency) DO NOTHING;
-- Their months, as the binary keeps them beside the days.
INSERT INTO platform_monthly (month, metric, currency, value)
  SELECT date_trunc('month', day)::date, metric, currency, SUM(value) FROM platform_daily GROUP BY 1, 2, 3
  ON CONFLICT (month, metric, currency) DO UPDATE SET value = excluded.value;
INSERT INTO analytics_bookings (booking_id, listing_id, host_id, check_in, check_out, currency, accommodation,
    created_at, confirmed_at, completed_at, reviewed_at, host_earnings, platform_revenue, gmv)
  SELECT md5('booking' || g)::uuid, md5('listing' || (g % 1000 + 1))::uuid, :'host', current_date, current_date + 3,
    'EUR', 30000, now() - (g || ' minutes')::interval, now() - (g || ' minutes')::interval + interval '7 minutes',
    now(), NULL, 0, 0, 0
  FROM generate_series(1, 200000) g;
-- A client session a minute for the 90 days raw events are kept: each
-- searched, two in three viewed a listing 3 minutes later, one in ten
-- started a booking 10 minutes later (the steps' medians read these).
INSERT INTO analytics_session_steps (session_id, step, at)
  SELECT 'bench-' || g, 'search', now() - (g || ' minutes')::interval FROM generate_series(1, 129600) g;
INSERT INTO analytics_session_steps (session_id, step, at)
  SELECT 'bench-' || g, 'listing_view', now() - (g || ' minutes')::interval + interval '3 minutes'
  FROM generate_series(1, 129600) g WHERE g % 3 <> 0;
INSERT INTO analytics_session_steps (session_id, step, at)
  SELECT 'bench-' || g, 'booking_started', now() - (g || ' minutes')::interval + interval '13 minutes'
  FROM generate_series(1, 129600) g WHERE g % 10 = 1;
-- The raw form for PostgreSQL's side: one row per listing and night.
CREATE TABLE bench_raw_nights AS
  SELECT listing_id, day AS night, nights_booked AS booked, accommodation, revenue, blocked, bookings,
    cancellations, lead_time_days, stay_nights FROM listing_daily;
CREATE INDEX ON bench_raw_nights (listing_id, night);
ANALYZE;
SQL
from=$(date -d '-730 days' +%F); to=$(date +%F)
latency() {
  local label=$1 url=$2 token=$3 out
  out=$(wrk -t1 -c4 -d"${DURATION}s" --latency -H "authorization: Bearer $token" "$url")
  printf '%-34s p50 %8s  p99 %8s  %s req/s\n' "$label" "$(awk '$1=="50%" {print $2}' <<<"$out")" \
    "$(awk '$1=="99%" {print $2}' <<<"$out")" "$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
}
curl -sf "$base/api/v1/analytics/host/summary?from=$from&to=$to" -H "authorization: Bearer $host_token" >/dev/null
latency "HomeTrip host summary (2 years)" "$base/api/v1/analytics/host/summary?from=$from&to=$to" "$host_token"
latency "HomeTrip admin overview (2 years)" "$base/api/v1/admin/analytics/overview?from=$from&to=$to" "$admin_token"
stop
cat > "$WORK/raw.sql" <<SQL
SELECT to_char(night, 'YYYY-MM') AS month, sum(booked), sum(accommodation), sum(revenue), sum(blocked),
  sum(bookings), sum(cancellations), sum(lead_time_days), sum(stay_nights)
FROM bench_raw_nights r JOIN analytics_listings l USING (listing_id)
WHERE l.host_id = '$host_id' AND night BETWEEN '$from' AND '$to'
GROUP BY 1 ORDER BY 1;
SQL
pgbench -n -M prepared -c 4 -j 1 -T "$DURATION" -f "$WORK/raw.sql" -l --log-prefix="$WORK/rawlog" "$PG_REPORTS" > "$WORK/raw.out"
# Per-transaction log: the third field is the latency in microseconds.
cat "$WORK"/rawlog.* 2>/dev/null | awk '{print $3}' | sort -n > "$WORK/raw.lat" || true
n=$(wc -l < "$WORK/raw.lat")
p50=$(awk -v n="$n" 'NR == int(n * 0.50) + 1 {printf "%.2fms", $1 / 1000}' "$WORK/raw.lat")
p99=$(awk -v n="$n" 'NR == int(n * 0.99) + 1 {printf "%.2fms", $1 / 1000}' "$WORK/raw.lat")
printf '%-34s p50 %8s  p99 %8s  %s tps\n' "PostgreSQL from raw nights" "$p50" "$p99" "$(awk '/^tps/ {print $3; exit}' "$WORK/raw.out")"
