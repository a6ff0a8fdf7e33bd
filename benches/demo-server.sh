# Sourced by the page benches: `demo_server PORT LISTINGS` builds the release
# binary, seeds LISTINGS demo listings into a throwaway data directory, serves
# them on 127.0.0.1:PORT and returns once the index holds them all. Sets BIN,
# DATA and base; the server stops and DATA goes when the script exits.
demo_server() {
  local port=$1 listings=$2 total=""
  cargo build --release --bin hometrip
  BIN="$CARGO_TARGET_DIR/release/hometrip"
  DATA="$(mktemp -d)"
  demo_pid=""
  trap '[ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null; rm -rf "$DATA"' EXIT
  export HOMETRIP_DATA_DIR="$DATA" HOMETRIP_SERVER__HOST=127.0.0.1 HOMETRIP_SERVER__PORT="$port" \
    HOMETRIP_LOG__FILTER=error HOMETRIP_SERVER__RATE_LIMIT__MAX=1000000000
  "$BIN" seed-demo --listings "$listings" >/dev/null
  "$BIN" serve & demo_pid=$!
  base="http://127.0.0.1:$port"
  for _ in $(seq 1 600); do
    total=$(curl -sf "$base/api/v1/search/listings?limit=1" | sed -E 's/.*"total":([0-9]+).*/\1/' || true)
    [ "$total" = "$listings" ] && break
    sleep 0.5
  done
  echo "index holds $total listings"
}
