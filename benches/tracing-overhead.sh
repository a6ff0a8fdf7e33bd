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
python3 - "$SINK_PORT" <<'PY' &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
sink=$!
trap 'kill $sink 2>/dev/null || true' EXIT
export BACKEND=postgres
for round in $(seq 1 "$ROUNDS"); do
  for mode in off 0.1 1; do
    if [ "$mode" = off ]; then
      unset HOMETRIP_TELEMETRY__OTLP_ENDPOINT HOMETRIP_TELEMETRY__SAMPLE_RATIO
    else
      export HOMETRIP_TELEMETRY__OTLP_ENDPOINT="http://127.0.0.1:$SINK_PORT" HOMETRIP_TELEMETRY__SAMPLE_RATIO="$mode"
    fi
    rate=$(bash benches/booking-load.sh 2>/dev/null | grep -m1 "sustained" | sed -E 's/.*sustained: ([0-9]+).*/\1/')
    echo "round $round, traces $mode: ${rate:-?} bookings/s sustained (spread)"
  done
done
