#!/bin/bash
# hometrip-healthcheck [PATH]: GET PATH (default /health/live) from the HomeTrip
# process of this container; exit 0 on a 200. The image's HEALTHCHECK, and the
# Kubernetes probes under mutual TLS (deploy/k8s/components/mtls).
#
# No curl in the image: plain HTTP goes through bash's /dev/tcp, HTTPS through
# `openssl s_client` (openssl comes with ca-certificates). The port is the
# process's: HOMETRIP_SERVER__PORT, or the seed port of the first module it
# runs (`serve --modules a,b` or HOMETRIP_MODULES), as the binary picks it.
set -uo pipefail
path="${1:-/health/live}"

modules="${HOMETRIP_MODULES:-}"
# `--modules` on the command line wins over the environment, as in the binary.
if [ -r /proc/1/cmdline ]; then
  mapfile -d '' -t argv </proc/1/cmdline
  for i in "${!argv[@]}"; do
    case "${argv[$i]}" in
      --modules=*) modules="${argv[$i]#--modules=}" ;;
      --modules) modules="${argv[$((i + 1))]:-}" ;;
    esac
  done
fi

# src/modules.rs: the modules table, in its order, with the seed ports.
first="" port=3001
for entry in gateway:3001 realtime:3002 admin:3003 auth:4001 user:4002 notification:4009 \
  listing:4003 search:4010 payment:4005 booking:4004 message:4006 review:4007 analytics:4008; do
  if [[ ",${modules// /}," == *",${entry%%:*},"* ]]; then
    first="${entry%%:*}" port="${entry#*:}"
    break
  fi
done
if [ -n "${HOMETRIP_SERVER__PORT:-}" ] && [ "${HOMETRIP_SERVER__PORT}" != 0 ]; then
  port="$HOMETRIP_SERVER__PORT"
fi

request=$'GET '"$path"$' HTTP/1.0\r\nHost: localhost\r\n\r\n'
# With mutual TLS every process but the gateway serves HTTPS to clients of
# the deployment's CA: this one presents its own certificate.
if [ -n "${HOMETRIP_SERVICES__TLS__CERT_FILE:-}" ] && [[ ",${modules// /}," != *",gateway,"* ]] && [ -n "$first" ]; then
  status="$(printf '%s' "$request" | timeout 5 openssl s_client -quiet -connect "127.0.0.1:$port" \
    -servername "$first" -CAfile "$HOMETRIP_SERVICES__TLS__CA_FILE" \
    -cert "$HOMETRIP_SERVICES__TLS__CERT_FILE" -key "$HOMETRIP_SERVICES__TLS__KEY_FILE" 2>/dev/null | head -n 1)"
else
  # A child bash, so that `timeout` bounds the connection; it expands $1, $2.
  # shellcheck disable=SC2016
  status="$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "%s" "$2" >&3 && head -n 1 <&3' _ "$port" "$request" 2>/dev/null)"
fi
[[ "$status" == "HTTP/"*" 200"* ]] || { echo "127.0.0.1:$port$path: ${status:-no answer}" >&2; exit 1; }
