#!/usr/bin/env bash
# Load scenario for GET /api/v1/search/listings against a release build on
# loopback, wrk with 8 connections. Bounded in time; stops by itself.
#
# Either seeds LISTINGS demo listings through `hometrip seed-demo` (default
# 20,000) and waits for the index, or, with INDEX=<dir>, serves an index the
# search benches built (`HOMETRIP_BENCH_INDEX=<dir>`, e.g. 1,000,000 listings;
# search reads only its index, so the database stays empty). PATHS=<file>
# replays the query mix `search_compare` wrote (`HOMETRIP_BENCH_PATHS`);
# otherwise four fixed queries rotate.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hometrip-target}"
LISTINGS="${LISTINGS:-20000}"
DURATION="${DURATION:-10s}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --bin hometrip
BIN="$CARGO_TARGET_DIR/release/hometrip"
DATA="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
export HOMETRIP_DATA_DIR="$DATA" HOMETRIP_SERVER__HOST=127.0.0.1 HOMETRIP_SERVER__PORT=3996 HOMETRIP_LOG__FILTER=error \
  HOMETRIP_SERVER__RATE_LIMIT__MAX=1000000000
if [ -n "${INDEX:-}" ]; then
  mkdir -p "$DATA/search"
  cp -r "$INDEX" "$DATA/search/index"
  LISTINGS=any
else
  "$BIN" seed-demo --listings "$LISTINGS"
fi
taskset -c "${SERVER_CPU:-0-1}" "$BIN" serve & pid=$!
for _ in $(seq 1 600); do
  total=$(curl -sf "http://127.0.0.1:3996/api/v1/search/listings?limit=1" | sed -E 's/.*"total":([0-9]+).*/\1/' || true)
  if [ "$LISTINGS" = any ]; then [ -n "$total" ] && [ "$total" != 0 ] && break; else [ "$total" = "$LISTINGS" ] && break; fi
  sleep 0.5
done
echo "index holds $total listings"
in12=$(date -d '+12 days' +%F); out15=$(date -d '+15 days' +%F)
if [ -n "${PATHS:-}" ]; then
  cp "$PATHS" "$DATA/paths.txt"
else
  cat > "$DATA/paths.txt" <<PATHS
/api/v1/search/listings?q=bright%20apartment&bbox=2.25,48.80,2.45,48.92&check_in=$in12&check_out=$out15&guests=2&min_price=5000&max_price=30000
/api/v1/search/listings?lat=41.3851&lon=2.1734&radius_km=3&sort=distance
/api/v1/search/listings?bbox=12.35,41.80,12.65,42.00&sort=price_asc
/api/v1/search/autocomplete?q=barc
PATHS
fi
cat > "$DATA/mix.lua" <<LUA
local paths = {}
for line in io.lines("$DATA/paths.txt") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
LUA
taskset -c "${CLIENT_CPU:-0-1}" wrk -t"${THREADS:-1}" -c"${CONNS:-8}" -d"$DURATION" --latency -s "$DATA/mix.lua" http://127.0.0.1:3996
