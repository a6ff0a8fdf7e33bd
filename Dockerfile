# Multi-stage build: compile with the Rust toolchain, run on a small Debian
# image as a non-root user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin hometrip \
 && strip target/release/hometrip

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/hometrip --create-home hometrip
COPY --from=build /src/target/release/hometrip /usr/local/bin/hometrip
COPY config /etc/hometrip/config
WORKDIR /etc/hometrip
USER hometrip
ENV HOMETRIP_DATA_DIR=/var/lib/hometrip
VOLUME ["/var/lib/hometrip"]
EXPOSE 3001
ENTRYPOINT ["/usr/local/bin/hometrip"]
CMD ["serve"]
