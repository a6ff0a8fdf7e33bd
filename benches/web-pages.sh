#!/usr/bin/env bash
# The web app's pages against the JSON API calls they wrap, in one run on one
# release binary on loopback: the search results page (/search) against
# GET /api/v1/search/listings with the same query, and the listing page
# (/listings/{id}, with its calendar) against GET /api/v1/listings/{id}.
# wrk, CONNS connections (default 8) for DURATION each (default 10s), the two
# sides of a pair run back to back, twice (page, API, page, API). Prints p50
# and p99 per side and the page/API ratio (target: at most 1.5).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hometrip-target}"
LISTINGS="${LISTINGS:-2000}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-8}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
# shellcheck source=benches/demo-server.sh
source benches/demo-server.sh
demo_server 3995 "$LISTINGS"
listing=$(curl -sf "$base/api/v1/search/listings?limit=1&sort=rating" | sed -E 's/.*"items":\[\{"id":"([^"]+)".*/\1/')
in12=$(date -d '+12 days' +%F); out15=$(date -d '+15 days' +%F)
query="q=apartment&check_in=$in12&check_out=$out15&guests=2"
# One page and one call answered before measuring (templates, caches, connections).
curl -sf -o /dev/null "$base/search?$query" && curl -sf -o /dev/null "$base/listings/$listing"

measure() { # name path -> "p50_ms p99_ms rps"
  local out
  out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency "$base$2")
  local p50 p99 rps
  p50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
  p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
  rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
  if echo "$out" | grep -q "Non-2xx"; then echo "$1: non-2xx answers" >&2; echo "$out" >&2; exit 1; fi
  echo "$(to_ms "$p50") $(to_ms "$p99") $rps"
}
to_ms() { # wrk's 1.23ms / 456.00us / 1.2s -> milliseconds
  case "$1" in
    *us) echo "$1" | sed 's/us//' | awk '{ printf "%.3f", $1 / 1000 }' ;;
    *ms) echo "$1" | sed 's/ms//' ;;
    *s) echo "$1" | sed 's/s//' | awk '{ printf "%.3f", $1 * 1000 }' ;;
  esac
}

printf '%-28s %10s %10s %10s\n' "" "p50 ms" "p99 ms" "req/s"
for round in 1 2; do
  for pair in "search|/search?$query|/api/v1/search/listings?$query" \
    "listing|/listings/$listing|/api/v1/listings/$listing"; do
    IFS='|' read -r name page api <<<"$pair"
    read -r pp50 pp99 prps < <(measure "$name page" "$page")
    read -r ap50 ap99 arps < <(measure "$name API" "$api")
    printf '%-28s %10s %10s %10s\n' "$name page (round $round)" "$pp50" "$pp99" "$prps"
    printf '%-28s %10s %10s %10s\n' "$name API (round $round)" "$ap50" "$ap99" "$arps"
    awk -v a="$pp50" -v b="$ap50" -v c="$pp99" -v d="$ap99" -v n="$name" \
      'BEGIN { printf "%-28s %10.2f %10.2f\n", n " page/API", a / b, c / d }'
  done
done
