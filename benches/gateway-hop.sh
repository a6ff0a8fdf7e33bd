#!/usr/bin/env bash
# The gateway hop, side by side in one run: the same read
# (GET /api/v1/listings/{id}) straight to the listing service, through
# HomeTrip's gateway, and through nginx (proxy_pass, keep-alive upstream) in
# front of the same service; and through a second gateway talking mutual TLS
# to a second listing process (same data, certificates from `hometrip certs`):
# the cost of mTLS on the hop. Prints requests/s and latency percentiles (wrk).
#
#   benches/gateway-hop.sh                # 20 s per target, 32 connections
#   DURATION=30s CONNECTIONS=64 benches/gateway-hop.sh
#
# Needs wrk and nginx (Debian: apt-get install wrk nginx). Builds the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-20s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet
BIN="$TARGET_DIR/release/hometrip"
WORK="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

common=(HOMETRIP_LOG__FILTER=warn HOMETRIP_SERVICES__TOKEN=bench-token
  HOMETRIP_SERVER__RATE_LIMIT__MAX=1000000000 HOMETRIP_SERVER__HOST=127.0.0.1)
# The listing service alone, on SQLite, with demo listings.
env "${common[@]}" HOMETRIP_DATA_DIR="$WORK/listing" HOMETRIP_MODULES=listing \
  "$BIN" seed-demo --listings 200 --seed 1 > "$WORK/seed.txt"
ID="$(sed -n 's/.*first: \([0-9a-f-]*\).*/\1/p' "$WORK/seed.txt")"
env "${common[@]}" HOMETRIP_DATA_DIR="$WORK/listing" HOMETRIP_MODULES=listing HOMETRIP_SERVER__PORT=14003 \
  HOMETRIP_SERVER__WORKERS=1 "$BIN" serve > "$WORK/listing.log" 2>&1 &
pids+=($!)
# HomeTrip's gateway in front of it (the other modules are named but absent).
gw_env=("${common[@]}" HOMETRIP_DATA_DIR="$WORK/gateway" HOMETRIP_MODULES=gateway HOMETRIP_SERVER__PORT=13001
  HOMETRIP_SERVER__WORKERS=1 HOMETRIP_SERVICES__LISTING__URLS=http://127.0.0.1:14003)
for m in auth user booking payment search notification message realtime; do
  gw_env+=("HOMETRIP_SERVICES__${m^^}__URLS=http://127.0.0.1:1")
done
env "${gw_env[@]}" "$BIN" serve > "$WORK/gateway.log" 2>&1 &
pids+=($!)
# The same hop over mutual TLS: a listing process serving HTTPS that requires
# the gateway's client certificate, on a copy of the same data.
"$BIN" certs --out "$WORK/certs" --modules gateway,listing --hosts 127.0.0.1 > /dev/null
cp -r "$WORK/listing" "$WORK/listing-tls"
tls_env=(HOMETRIP_SERVICES__TLS__CA_FILE="$WORK/certs/ca.pem")
env "${common[@]}" "${tls_env[@]}" HOMETRIP_SERVICES__TLS__CERT_FILE="$WORK/certs/listing.pem" \
  HOMETRIP_SERVICES__TLS__KEY_FILE="$WORK/certs/listing.key" HOMETRIP_DATA_DIR="$WORK/listing-tls" \
  HOMETRIP_MODULES=listing HOMETRIP_SERVER__PORT=14013 HOMETRIP_SERVER__WORKERS=1 "$BIN" serve > "$WORK/listing-tls.log" 2>&1 &
pids+=($!)
gw_tls_env=()
for e in "${gw_env[@]}"; do
  case "$e" in
    HOMETRIP_DATA_DIR=*) gw_tls_env+=(HOMETRIP_DATA_DIR="$WORK/gateway-tls") ;;
    HOMETRIP_SERVER__PORT=*) gw_tls_env+=(HOMETRIP_SERVER__PORT=13011) ;;
    HOMETRIP_SERVICES__LISTING__URLS=*) gw_tls_env+=(HOMETRIP_SERVICES__LISTING__URLS=https://127.0.0.1:14013) ;;
    *) gw_tls_env+=("$e") ;;
  esac
done
env "${gw_tls_env[@]}" "${tls_env[@]}" HOMETRIP_SERVICES__TLS__CERT_FILE="$WORK/certs/gateway.pem" \
  HOMETRIP_SERVICES__TLS__KEY_FILE="$WORK/certs/gateway.key" "$BIN" serve > "$WORK/gateway-tls.log" 2>&1 &
pids+=($!)
# nginx in front of the same service: one worker, keep-alive upstream.
cat > "$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  upstream listing { server 127.0.0.1:14003; keepalive 64; }
  server {
    listen 127.0.0.1:13002;
    location / {
      proxy_pass http://listing;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
    }
  }
}
EOF
nginx -c "$WORK/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:13001/api/v1/listings/$ID" >/dev/null 2>&1 &&
    curl -fs "http://127.0.0.1:13002/api/v1/listings/$ID" >/dev/null 2>&1 &&
    curl -fs "http://127.0.0.1:13011/api/v1/listings/$ID" >/dev/null 2>&1 && break
  sleep 0.2
done
PATH_="/api/v1/listings/$ID"
echo "machine: $(nproc) cores, $(uname -m); wrk -t$THREADS -c$CONNECTIONS -d$DURATION; one worker per server"
for target in "direct 14003" "gateway 13001" "nginx 13002" "gw-mtls 13011"; do
  set -- $target
  wrk -t"$THREADS" -c"$CONNECTIONS" -d5s "http://127.0.0.1:$2$PATH_" > /dev/null # warm-up
  out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$2$PATH_")"
  rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
  p50="$(echo "$out" | awk '$1 == "50%" {print $2}')"
  p99="$(echo "$out" | awk '$1 == "99%" {print $2}')"
  non2xx="$(echo "$out" | awk '/Non-2xx/ {print $5}')"
  printf '%-8s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$1" "$rps" "$p50" "$p99" "${non2xx:-0}"
done
