#!/usr/bin/env bash
# Runs HomeTrip in the split shape on this machine: one process per module
# plus the gateway, each with its own PostgreSQL database and data dir, events
# over RabbitMQ, cache and rate limits in Redis. The public API is on the
# gateway's port (3001). Ctrl-C stops everything.
#
#   scripts/split.sh            # build, then start every service
#   BOOKING_REPLICAS=2 REALTIME_REPLICAS=2 scripts/split.sh
#   TLS=1 scripts/split.sh      # mutual TLS between the services (hometrip certs)
#
# Needs PostgreSQL (trust or a password in PG_URL), Redis and RabbitMQ; the
# defaults are the local ones. docker-compose.split.yml does the same in containers.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
DATA="${DATA:-./data/split}"
BOOKING_REPLICAS="${BOOKING_REPLICAS:-1}"
# /ws: the replicas share fan-out and presence through Redis.
REALTIME_REPLICAS="${REALTIME_REPLICAS:-1}"
DB_PREFIX="${DB_PREFIX:-hometrip_}" # databases are <prefix><module>
BIN="${BIN:-}"

if [ -z "$BIN" ]; then
  cargo build --release
  BIN="${CARGO_TARGET_DIR:-target}/release/hometrip"
fi
mkdir -p "$DATA"
TOKEN_FILE="$DATA/service.token"
[ -s "$TOKEN_FILE" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TOKEN_FILE"
TOKEN="$(cat "$TOKEN_FILE")"

declare -A PORT=([admin]=3003 [auth]=4001 [user]=4002 [listing]=4003 [booking]=4004 [payment]=4005 [message]=4006 [review]=4007 [analytics]=4008
  [notification]=4009 [search]=4010 [realtime]=3002)
# Scalable modules: how many processes, and replica n's port (n >= 1) is
# REPLICA_BASE + n.
declare -A REPLICAS=([booking]="$BOOKING_REPLICAS" [realtime]="$REALTIME_REPLICAS")
declare -A REPLICA_BASE=([booking]=14004 [realtime]=13002)
SCHEME=http
if [ "${TLS:-0}" = 1 ]; then
  SCHEME=https
  # Made anew (a new CA) when a module has none yet, e.g. one added since.
  for m in gateway "${!PORT[@]}"; do
    if [ ! -s "$DATA/certs/ca.pem" ] || [ ! -s "$DATA/certs/$m.pem" ]; then
      "$BIN" certs --out "$DATA/certs" --hosts 127.0.0.1,localhost >/dev/null
      break
    fi
  done
fi
urls_of() {
  local m="$1" n=1 list="$SCHEME://127.0.0.1:${PORT[$m]}"
  while [ "$n" -lt "${REPLICAS[$m]:-1}" ]; do
    list="$list,$SCHEME://127.0.0.1:$((${REPLICA_BASE[$m]} + n))"
    n=$((n + 1))
  done
  echo "$list"
}

common_env=(
  HOMETRIP_SERVICES__TOKEN="$TOKEN"
  HOMETRIP_REDIS__URL="$REDIS_URL"
  HOMETRIP_AMQP__URL="$AMQP_URL"
  HOMETRIP_SERVER__PUBLIC_URL="${PUBLIC_URL:-http://localhost:3001}"
)
for m in "${!PORT[@]}"; do
  common_env+=("HOMETRIP_SERVICES__${m^^}__URLS=$(urls_of "$m")")
done

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

start() { # start <name> <modules> <port> [database]
  local name="$1" modules="$2" port="$3" db="${4:-}"
  local env=("${common_env[@]}" HOMETRIP_DATA_DIR="$DATA/$name" HOMETRIP_SERVER__PORT="$port")
  if [ "$SCHEME" = https ]; then
    env+=(HOMETRIP_SERVICES__TLS__CA_FILE="$DATA/certs/ca.pem"
      HOMETRIP_SERVICES__TLS__CERT_FILE="$DATA/certs/$modules.pem" HOMETRIP_SERVICES__TLS__KEY_FILE="$DATA/certs/$modules.key")
  fi
  if [ -n "$db" ]; then
    psql "$PG_URL/postgres" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
      psql "$PG_URL/postgres" -qc "CREATE DATABASE $db"
    env+=(HOMETRIP_DATABASE__URL="$PG_URL/$db")
  fi
  mkdir -p "$DATA/$name"
  env "${env[@]}" "$BIN" serve --modules "$modules" >"$DATA/$name.log" 2>&1 &
  pids+=($!)
  echo "$name ($modules) on :$port, log $DATA/$name.log"
}

for m in admin auth user listing analytics payment message notification search booking review realtime; do
  start "$m" "$m" "${PORT[$m]}" "$DB_PREFIX$m"
  n=1
  while [ "$n" -lt "${REPLICAS[$m]:-1}" ]; do
    start "$m-$n" "$m" $((${REPLICA_BASE[$m]} + n)) "$DB_PREFIX$m"
    n=$((n + 1))
  done
done
start gateway gateway 3001 "${DB_PREFIX}gateway"

echo "HomeTrip (split) on http://localhost:3001 — Ctrl-C stops it"
wait -n "${pids[@]}"
