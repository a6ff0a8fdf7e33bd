#!/usr/bin/env bash
# Load scenario against the running binary (release build), on loopback only.
#   1. /health/live through the full middleware stack vs a bare actix-web
#      handler (examples/bare_actix.rs), same machine, one server core each.
#   2. GET /api/v1/users/me with a valid token.
#   3. /health/live latency while a flood of logins keeps argon2 busy.
# Needs wrk (apt-get install wrk). Every run is bounded in time and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hometrip-target}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-32}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

cargo build --release --bin hometrip --example bare_actix
BIN="$CARGO_TARGET_DIR/release/hometrip"
BARE="$CARGO_TARGET_DIR/release/examples/bare_actix"
DATA="$(mktemp -d)"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DATA"; }
trap cleanup EXIT

taskset -c "$SERVER_CPU" "$BARE" 3999 1 & pids+=($!)
HOMETRIP_DATA_DIR="$DATA" HOMETRIP_SERVER__HOST=127.0.0.1 HOMETRIP_SERVER__PORT=3998 HOMETRIP_SERVER__WORKERS=1 \
HOMETRIP_SERVER__RATE_LIMIT__MAX=1000000000 HOMETRIP_AUTH__RATE_LIMIT_PER_ACCOUNT__MAX=1000000000 \
HOMETRIP_AUTH__LOGIN_LIMITS__IP_FAILURES=1000000000 HOMETRIP_AUTH__LOGIN_LIMITS__ACCOUNT_FAILURES=1000000000 HOMETRIP_LOG__FILTER=error \
  taskset -c "$SERVER_CPU" "$BIN" serve & pids+=($!)
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:3998/health/live >/dev/null && curl -sf http://127.0.0.1:3999/health/live >/dev/null && break; sleep 0.2; done

rps() { awk '/Requests\/sec/ {print $2}'; }
run() { taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" --latency "$@"; }

echo "== bare actix-web /health/live"; bare_out=$(run http://127.0.0.1:3999/health/live); echo "$bare_out"
echo "== hometrip /health/live"; ht_out=$(run http://127.0.0.1:3998/health/live); echo "$ht_out"
bare=$(echo "$bare_out" | rps); ht=$(echo "$ht_out" | rps)
echo "ratio hometrip/bare: $(awk -v a="$ht" -v b="$bare" 'BEGIN {printf "%.2f", a/b}')"

curl -sf -X POST http://127.0.0.1:3998/api/v1/auth/register -H 'content-type: application/json' \
  -d '{"email":"load@example.com","password":"correct horse battery staple","display_name":"Load"}' >/dev/null
TOKEN=$(curl -sf -X POST http://127.0.0.1:3998/api/v1/auth/login -H 'content-type: application/json' \
  -d '{"email":"load@example.com","password":"correct horse battery staple"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
echo "== hometrip GET /api/v1/users/me"; run -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3998/api/v1/users/me

cat > "$DATA/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"load@example.com","password":"correct horse battery staple"}'
LUA
echo "== /health/live during a login flood"
taskset -c "$CLIENT_CPU" wrk -t1 -c64 -d"$DURATION" -s "$DATA/login.lua" http://127.0.0.1:3998/api/v1/auth/login > "$DATA/flood.txt" & flood=$!
sleep 1
taskset -c "$CLIENT_CPU" wrk -t1 -c4 -d5s --latency http://127.0.0.1:3998/health/live
wait "$flood"; echo "-- the flood itself"; cat "$DATA/flood.txt"
