#!/usr/bin/env bash
# Broadcast fan-out, side by side in one run (hashrocket's websocket-shootout
# manner): HomeTrip's realtime module (every socket a device of one host, a
# guest's message the broadcast, through the message store, the outbox and
# the realtime module), a bare actix-ws broadcast server, and a Node `ws`
# broadcast server. Clients connect in steps; at each step 20 broadcasts go
# to all; a step passes while the p95 of send-to-last-receipt is under 500 ms
# with no frame missed or duplicated. Then chat delivery between two HomeTrip
# processes sharing PostgreSQL and Redis (post on one, frame on the other's
# socket) at a sustained rate: p50 and p99.
#
#   benches/ws-fanout.sh
#   STEPS=1000,2000,4000 RATE=200 benches/ws-fanout.sh
#   SKIP_BUILD=1 benches/ws-fanout.sh     # the binaries built last time
#
# Needs node and npm (the `ws` package is installed from the npm registry into
# benches/node/node_modules), and PostgreSQL and Redis for the chat figure
# (PG_ADMIN, REDIS_URL). Builds the release binary and the bench binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${STEPS:-250,500,1000,2000,4000,8000,12000}"
RATE="${RATE:-100}"
SECONDS_RUN="${SECONDS_RUN:-20}"
PG_ADMIN="${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release --quiet
  cargo build --release --quiet --bench ws_fanout --bench ws_bare_actix
fi
BIN="$TARGET_DIR/release/hometrip"
bench_bin() { find "$TARGET_DIR/release/deps" -maxdepth 1 -type f -executable -name "$1-*" -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2; }
CLIENT="$(bench_bin ws_fanout)"
BARE="$(bench_bin ws_bare_actix)"
(cd benches/node && npm ci --no-audit --no-fund --silent)
WORK="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

common=(HOMETRIP_LOG__FILTER=error HOMETRIP_SERVER__HOST=127.0.0.1 HOMETRIP_SERVER__WORKERS=2
  HOMETRIP_SERVER__RATE_LIMIT__MAX=1000000000 HOMETRIP_AUTH__RATE_LIMIT_PER_ACCOUNT__MAX=1000000000
  HOMETRIP_MESSAGE__SENDS_PER_MINUTE=1000000)

echo "== broadcast fan-out (steps: $STEPS)"
env "${common[@]}" HOMETRIP_DATA_DIR="$WORK/one" HOMETRIP_SERVER__PORT=13101 \
  HOMETRIP_SERVER__PUBLIC_URL=http://127.0.0.1:13101 "$BIN" serve > "$WORK/one.log" 2>&1 &
pids+=($!)
"$BARE" 13102 > /dev/null 2>&1 &
pids+=($!)
node benches/node/ws-broadcast.js 13103 &
pids+=($!)
wait_port 13101 && wait_port 13102 && wait_port 13103
sleep 1
"$CLIENT" hometrip http://127.0.0.1:13101 "$STEPS" | tee "$WORK/hometrip.tsv"
"$CLIENT" echo ws://127.0.0.1:13102/ "$STEPS" | sed 's/^echo/actix-ws/' | tail -n +2
"$CLIENT" echo ws://127.0.0.1:13103/ "$STEPS" | sed 's/^echo/node-ws/' | tail -n +2
kill "${pids[@]}" 2>/dev/null || true
wait 2>/dev/null || true
pids=()

echo "== chat delivery between two processes over Redis ($RATE messages/s for ${SECONDS_RUN}s)"
psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS ht_bench_chat" -qc "CREATE DATABASE ht_bench_chat"
chat=("${common[@]}" HOMETRIP_DATABASE__URL="${PG_ADMIN%/*}/ht_bench_chat" HOMETRIP_REDIS__URL="$REDIS_URL"
  HOMETRIP_REDIS__KEY_PREFIX="bench-chat-$$:")
env "${chat[@]}" HOMETRIP_DATA_DIR="$WORK/a" HOMETRIP_SERVER__PORT=13111 \
  HOMETRIP_SERVER__PUBLIC_URL=http://127.0.0.1:13111 "$BIN" serve > "$WORK/a.log" 2>&1 &
pids+=($!)
wait_port 13111
env "${chat[@]}" HOMETRIP_DATA_DIR="$WORK/b" HOMETRIP_SERVER__PORT=13112 \
  HOMETRIP_SERVER__PUBLIC_URL=http://127.0.0.1:13112 "$BIN" serve > "$WORK/b.log" 2>&1 &
pids+=($!)
wait_port 13112
sleep 1
"$CLIENT" chat http://127.0.0.1:13111 http://127.0.0.1:13112 "$RATE" "$SECONDS_RUN"
