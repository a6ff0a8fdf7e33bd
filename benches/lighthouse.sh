#!/usr/bin/env bash
# Lighthouse (npm, pinned by benches/lighthouse/package-lock.json) driving
# Debian's Chromium against a release binary on loopback: the performance
# and accessibility scores of the home, search, listing and checkout pages
# (target: 95 or more each). The checkout page is a signed-in guest's, for a
# booking made here; Lighthouse sends that browser's cookies. Desktop
# preset unless PRESET=mobile (Lighthouse's default emulation, throttled).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/hometrip-target}"
LISTINGS="${LISTINGS:-500}"
PRESET="${PRESET:-desktop}"
CHROME_PATH="${CHROME_PATH:-/usr/bin/chromium}"
export CHROME_PATH
command -v "$CHROME_PATH" >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
[ -d benches/lighthouse/node_modules/lighthouse ] || npm ci --prefix benches/lighthouse --no-audit --no-fund
# shellcheck source=benches/demo-server.sh
source benches/demo-server.sh
demo_server 3994 "$LISTINGS"
in30=$(date -d '+30 days' +%F); out32=$(date -d '+32 days' +%F)
listing=$(curl -sf "$base/api/v1/search/listings?limit=1&sort=rating&check_in=$in30&check_out=$out32" |
  sed -E 's/.*"items":\[\{"id":"([^"]+)".*/\1/')

# A guest signed in through the pages (the cookie jar), and a booking awaiting payment.
jar="$DATA/cookies.txt"
email="lighthouse-$(date +%s)@example.com"
password="a long passphrase for lighthouse"
curl -sf -o /dev/null -H 'content-type: application/json' \
  -d "{\"email\":\"$email\",\"password\":\"$password\",\"display_name\":\"Lighthouse\"}" "$base/api/v1/auth/register"
csrf=$(curl -sf -c "$jar" -b "$jar" "$base/sign-in" | sed -nE 's/.*name="csrf" value="([0-9a-f]+)".*/\1/p' | head -n1)
curl -sf -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf=$csrf" --data-urlencode "email=$email" \
  --data-urlencode "password=$password" "$base/sign-in"
token=$(awk '$6 == "ht_access" { print $7 }' "$jar")
booking=$(curl -sf -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d "{\"listing_id\":\"$listing\",\"check_in\":\"$in30\",\"check_out\":\"$out32\",\"guests\":2}" \
  "$base/api/v1/bookings" | sed -E 's/^\{"id":"([^"]+)".*/\1/')
# curl marks HttpOnly cookies with a `#HttpOnly_` prefix on the domain.
cookies=$(awk '{ sub(/^#HttpOnly_/, "") } !/^#/ && NF >= 7 { printf "%s%s=%s", (n++ ? "; " : ""), $6, $7 }' "$jar")
headers="{\"Cookie\": \"$cookies\"}"

printf '%-10s %12s %14s\n' page performance accessibility
for pair in "home|/" "search|/search?q=apartment&check_in=$in30&check_out=$out32&guests=2" \
  "listing|/listings/$listing?check_in=$in30&check_out=$out32&guests=2" "checkout|/checkout/$booking"; do
  IFS='|' read -r name path <<<"$pair"
  preset=()
  [ "$PRESET" = desktop ] && preset=(--preset=desktop)
  node benches/lighthouse/node_modules/lighthouse/cli/index.js "$base$path" "${preset[@]}" --quiet \
    --only-categories=performance,accessibility --output=json --output-path="$DATA/$name.json" \
    --extra-headers="$headers" --chrome-flags="--headless=new --no-sandbox" >/dev/null 2>&1
  node -e '
    const r = require(process.argv[1]);
    if (r.finalDisplayedUrl.includes("/sign-in")) { console.error("signed out"); process.exit(1); }
    const s = (c) => Math.round(r.categories[c].score * 100);
    console.log(process.argv[2].padEnd(10) + String(s("performance")).padStart(12) + String(s("accessibility")).padStart(14));
  ' "$DATA/$name.json" "$name"
done
