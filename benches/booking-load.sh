#!/usr/bin/env bash
# Booking load against the running binary (release build), on loopback:
#   spread — concurrent guests booking random stays across 1,000 demo listings;
#   hot    — every guest wants the same listing.
# Each scenario ends with a zero-overlap check made on the database itself: no
# night held twice, no two live bookings of a listing overlapping, and every
# held night belonging to a live booking. BACKEND=sqlite (default), postgres
# (all in one) or split (scripts/split.sh: a process per module behind the
# gateway, each on its own PostgreSQL database, events over RabbitMQ):
#   BACKEND=postgres benches/booking-load.sh; BACKEND=split benches/booking-load.sh
# The ceiling, the same reservation transaction run by pgbench directly in
# PostgreSQL, is benches/booking-pgbench.sh. Needs wrk (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hometrip-target}"
BACKEND="${BACKEND:-sqlite}"
DURATION="${DURATION:-15s}"
CONNS="${CONNS:-16}"
GUESTS="${GUESTS:-32}"
LISTINGS="${LISTINGS:-1000}"
PORT="${PORT:-3997}"
PG_ADMIN="${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3; }
command -v bc >/dev/null || { apt-get update -qq && apt-get install -y -qq bc; }

cargo build --release --bin hometrip
BIN="$CARGO_TARGET_DIR/release/hometrip"
DATA="$(mktemp -d)"
pid=""
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; fi; rm -rf "$DATA"; }
trap cleanup EXIT
[ "$BACKEND" = split ] && PORT=3001 # the gateway's, in scripts/split.sh

export HOMETRIP_DATA_DIR="$DATA" HOMETRIP_SERVER__HOST=127.0.0.1 HOMETRIP_SERVER__PORT="$PORT" \
  HOMETRIP_SERVER__RATE_LIMIT__MAX=1000000000 HOMETRIP_AUTH__RATE_LIMIT_PER_ACCOUNT__MAX=1000000000 \
  HOMETRIP_LOG__FILTER=error HOMETRIP_SERVER__PUBLIC_URL="http://127.0.0.1:$PORT"
SPLIT_MODULES=(gateway auth user listing booking payment notification search message realtime)
if [ "$BACKEND" = postgres ]; then
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS ht_bench_booking" -qc "CREATE DATABASE ht_bench_booking"
  export HOMETRIP_DATABASE__URL="${PG_ADMIN%/*}/ht_bench_booking"
  sql() { psql "$HOMETRIP_DATABASE__URL" -Atqc "$1"; }
  listing_sql() { sql "$1"; }
  outbox() { sql "SELECT count(*) FROM outbox_events"; }
elif [ "$BACKEND" = split ]; then
  for m in "${SPLIT_MODULES[@]}"; do psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS ht_bench_split_$m"; done
  db_of() { echo "${PG_ADMIN%/*}/ht_bench_split_$1"; }
  sql() { psql "$(db_of booking)" -Atqc "$1"; }
  listing_sql() { psql "$(db_of listing)" -Atqc "$1"; }
  # Every process has its own outbox; the rest of the platform owes the sum.
  outbox() {
    local n=0 m
    for m in "${SPLIT_MODULES[@]}"; do
      n=$((n + $(psql "$(db_of "$m")" -Atqc "SELECT count(*) FROM outbox_events")))
    done
    echo "$n"
  }
else
  sql() { sqlite3 "$DATA/hometrip.db" "$1"; }
  listing_sql() { sql "$1"; }
  outbox() { sql "SELECT count(*) FROM outbox_events"; }
fi

if [ "$BACKEND" = split ]; then
  # The demo listings go into the listing service's database before it starts.
  psql "$PG_ADMIN" -qc "CREATE DATABASE ht_bench_split_listing"
  HOMETRIP_DATA_DIR="$DATA/listing" HOMETRIP_MODULES=listing HOMETRIP_DATABASE__URL="$(db_of listing)" \
    "$BIN" seed-demo --listings "$LISTINGS" --seed 7
  BIN="$BIN" DATA="$DATA" PG_URL="${PG_ADMIN%/*}" DB_PREFIX=ht_bench_split_ PUBLIC_URL="http://127.0.0.1:$PORT" \
    scripts/split.sh > "$DATA/split.log" 2>&1 & pid=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && break; sleep 0.2; done
else
  "$BIN" seed-demo --listings "$LISTINGS" --seed 7
  "$BIN" serve & pid=$!
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$PORT/health/live" >/dev/null && break; sleep 0.2; done
fi

# Guests with tokens, and the listing ids, written into the wrk script.
tokens=()
for i in $(seq 1 "$GUESTS"); do
  email="guest$i-$RANDOM@bench.example"
  curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"correct horse battery staple\",\"display_name\":\"Guest $i\"}" >/dev/null
  tokens+=("$(curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"correct horse battery staple\"}" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')")
done
mapfile -t listing_ids < <(listing_sql "SELECT id FROM listings WHERE status = 'published' ORDER BY id LIMIT $LISTINGS")

write_script() { # $1 = number of listings to draw from
  {
    echo "local tokens = {"; printf '"%s",\n' "${tokens[@]}"; echo "}"
    echo "local listings = {"; printf '"%s",\n' "${listing_ids[@]:0:$1}"; echo "}"
    cat <<'LUA'
local today = os.time()
local threads = {}
-- Each thread gets its own seed: with one seed, wrk's threads sent the same
-- requests in the same order, colliding on the same listing all the time.
function setup(thread) table.insert(threads, thread); thread:set("seed", #threads * 7919) end
function init(args) counts = {} ; math.randomseed(os.time() + seed) end
function request()
  local start = math.random(10, 320)
  local nights = math.random(3, 5)
  local body = string.format('{"listing_id":"%s","check_in":"%s","check_out":"%s","guests":1}',
    listings[math.random(#listings)], os.date("!%Y-%m-%d", today + start * 86400),
    os.date("!%Y-%m-%d", today + (start + nights) * 86400))
  return wrk.format("POST", "/api/v1/bookings",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]}, body)
end
function response(status) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("counts")) do all[status] = (all[status] or 0) + n end
  end
  local secs = summary.duration / 1e6
  for status, n in pairs(all) do io.write(string.format("status %d: %d (%.0f/s)\n", status, n, n / secs)) end
  io.write(string.format("p50 %.1f ms, p99 %.1f ms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
  } > "$DATA/book.lua"
}

check() {
  local live="('pending_payment','pending_host','confirmed','completed')"
  local twice overlaps stray
  twice=$(sql "SELECT count(*) FROM (SELECT listing_id, night FROM booking_nights GROUP BY listing_id, night HAVING count(*) > 1) t")
  overlaps=$(sql "SELECT count(*) FROM bookings a JOIN bookings b ON a.listing_id = b.listing_id AND a.id < b.id
    AND a.check_in < b.check_out AND b.check_in < a.check_out WHERE a.status IN $live AND b.status IN $live")
  stray=$(sql "SELECT count(*) FROM booking_nights n JOIN bookings b ON b.id = n.booking_id WHERE b.status NOT IN $live")
  echo "check: nights held twice $twice, overlapping live bookings $overlaps, nights of ended bookings $stray, live bookings $(sql "SELECT count(*) FROM bookings WHERE status IN $live")"
  [ "$twice" = 0 ] && [ "$overlaps" = 0 ] && [ "$stray" = 0 ] || { echo "ZERO-OVERLAP CHECK FAILED"; exit 1; }
}

# CPU seconds used so far by a service (or PostgreSQL, RabbitMQ, Redis): where a booking's cost goes.
cpu_of() { # $1 = module, or a backing service: postgres, rabbitmq, redis
  local ticks=0 p pids
  case "$1" in
    postgres) pids=$(pgrep -x postgres || true) ;;
    rabbitmq) pids=$(pgrep -x beam.smp || true) ;;
    redis) pids=$(pgrep -x redis-server || true) ;;
    all-in-one) pids=$pid ;;
    *) pids=$(pgrep -f -- "serve --modules $1\$" || true) ;;
  esac
  for p in $pids; do
    ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$ticks"
}

load() { # wrk with the script; a 5xx is a failure (conflicts must be 409s)
  local out m
  local -A cpu_before=()
  local counted=()
  [ "$BACKEND" = split ] && counted=("${SPLIT_MODULES[@]}" rabbitmq)
  [ "$BACKEND" != split ] && counted=(all-in-one)
  [ "$BACKEND" != sqlite ] && counted+=(postgres redis)
  for m in "${counted[@]}"; do cpu_before[$m]=$(cpu_of "$m"); done
  out=$(wrk -t2 -c"$CONNS" -d"$DURATION" -s "$DATA/book.lua" "http://127.0.0.1:$PORT")
  echo "$out" | grep -E "^status|p50|Requests/sec|Socket errors" || true
  if [ "${#counted[@]}" -gt 0 ]; then
    local hz line="CPU seconds during the load:"
    hz=$(getconf CLK_TCK)
    for m in "${counted[@]}"; do
      line="$line $m $(echo "scale=1; ($(cpu_of "$m") - ${cpu_before[$m]}) / $hz" | bc)"
    done
    echo "$line"
  fi
  if echo "$out" | grep -qE "^status 5"; then echo "SERVER ERRORS UNDER LOAD"; exit 1; fi
  # What the background (calendar projection, search index) still owes when
  # the load stops: a sustained rate must not leave a growing backlog. The
  # sustained rate counts the time the background takes to catch up.
  local owed started drained booked secs
  owed=$(outbox)
  echo "events not yet delivered at the end: $owed"
  started=$(date +%s.%N)
  while [ "$(outbox)" != 0 ]; do sleep 0.1; done
  drained=$(echo "$(date +%s.%N) - $started" | bc)
  booked=$(echo "$out" | sed -nE 's/^status 201: ([0-9]+).*/\1/p')
  secs=${DURATION%s}
  printf 'background caught up %.1f s after the load; sustained: %.0f bookings/s (bookings over load + catch-up time)\n' \
    "$drained" "$(echo "${booked:-0} / ($secs + $drained)" | bc -l)"
}

echo "== spread: $CONNS connections, $GUESTS guests, ${#listing_ids[@]} listings, $BACKEND"
write_script "${#listing_ids[@]}"
load
check

echo "== hot listing: every guest wants ${listing_ids[0]}"
write_script 1
load
check
