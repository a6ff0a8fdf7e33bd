#!/usr/bin/env bash
# The cost of traces on the booking load (benches/booking-load.sh, all in one
# on PostgreSQL): traces off, on at the default sampling (0.1) and on at
# 100 %, exported over OTLP/HTTP to a sink on this machine that accepts and
# drops what it gets (a stand-in for Jaeger or a collector; its CPU is on the
# same two cores). Runs the three in turn, ROUNDS times, and prints each
# run's sustained bookings/s.
#
#   benches/tracing-overhead.sh            # ROUNDS=2, DURATION=15s
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-2}"
SINK_PORT="${SINK_PORT:-14318}"
RECEIVED="$(mktemp)"
python3 - "$SINK_PORT" "$RECEIVED" <<'PY' &
import sys, threading
lock = threading.Lock()
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        n = len(self.rfile.read(int(self.headers.get("content-length", 0))))
        with lock, open(sys.argv[2], "a") as f:
            f.write(f"{n}\n")
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
sink=$!
trap 'kill $sink 2>/dev/null || true; rm -f "$RECEIVED"' EXIT
export BACKEND=postgres
for round in $(seq 1 "$ROUNDS"); do
  for mode in off 0.1 1; do
    if [ "$mode" = off ]; then
      unset HOMETRIP_TELEMETRY__OTLP_ENDPOINT HOMETRIP_TELEMETRY__SAMPLE_RATIO
    else
      export HOMETRIP_TELEMETRY__OTLP_ENDPOINT="http://127.0.0.1:$SINK_PORT" HOMETRIP_TELEMETRY__SAMPLE_RATIO="$mode"
    fi
: > "$RECEIVED"
    out=$(bash benches/booking-load.sh 2>/dev/null) || { echo "booking-load failed (traces $mode)"; exit 1; }
    rate=$(echo "$out" | sed -nE 's/.*sustained: ([0-9]+).*/\1/p' | head -n1)
    p99=$(echo "$out" | sed -nE 's/^p50 .*, p99 ([0-9.]+) ms/\1/p' | head -n1)
    exported=$(awk '{n++; b += $1} END {printf "%d exports, %.1f MB", n, b / 1e6}' "$RECEIVED")
    echo "round $round, traces $mode: ${rate:-?} bookings/s sustained, p99 ${p99:-?} ms (spread); the sink got $exported"
  done
done
