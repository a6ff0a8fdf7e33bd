# syntax=docker/dockerfile:1
# One image for every shape: `serve` runs the whole platform (port 3001);
# `serve --modules booking` or HOMETRIP_MODULES=booking runs one module on its
# seed port (docker-compose.split.yml, deploy/k8s).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# BuildKit caches keep the crates and the build between image builds; the
# binary leaves the cached target dir stripped.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin hometrip \
 && install -D --strip target/release/hometrip /out/hometrip

# Debian slim: glibc and CA roots for Stripe, SMTP and OAuth over TLS
# (openssl comes with ca-certificates; the health check uses it under mTLS).
FROM debian:bookworm-slim
# Unpinned on purpose: CA roots should be the current ones.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 hometrip \
 && useradd --system --uid 10001 --gid hometrip --home-dir /var/lib/hometrip \
      --create-home --shell /usr/sbin/nologin hometrip
COPY --from=build /out/hometrip /usr/local/bin/hometrip
COPY --chmod=0755 deploy/docker/healthcheck.sh /usr/local/bin/hometrip-healthcheck
# config/<HOMETRIP_PROFILE>.toml is read relative to the working directory.
COPY config /etc/hometrip/config
WORKDIR /etc/hometrip
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
ENV HOMETRIP_DATA_DIR=/var/lib/hometrip
VOLUME ["/var/lib/hometrip"]
# The gateway (or the whole platform) and each module's seed port.
EXPOSE 3001 3002 3003 4001 4002 4003 4004 4005 4006 4007 4008 4009 4010
# GET /health/live on the port of the module(s) this container runs.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/hometrip-healthcheck"]
ENTRYPOINT ["/usr/local/bin/hometrip"]
CMD ["serve"]
