# zapin container image: `docker build -t zapin .` then `docker run -p 8080:8080 -v zapin-data:/var/lib/zapin zapin`.
# Two stages: the dist-profile build on the Rust image, then the binary alone on Debian slim.

FROM rust:1-bookworm AS build
WORKDIR /src
# The whole workspace: every member must be present for cargo to resolve it.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile dist -p zapin-gateway --locked \
    && install -D -m 0755 target/dist/zapin /out/zapin

FROM debian:bookworm-slim
# curl for the HEALTHCHECK only; TLS roots are built into the binary.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/zapin --create-home zapin
COPY --from=build /out/zapin /usr/local/bin/zapin
# The data directory holds the SQLite databases (when no DATABASE_CONNECTION_URI is given) and
# master.key (when no ZAPIN_MASTER_KEY is given): keep the volume, or the paired devices are lost.
ENV ZAPIN_DATA_DIR=/var/lib/zapin \
    ZAPIN_LISTEN_HOST=0.0.0.0 \
    SERVER_PORT=8080
VOLUME ["/var/lib/zapin"]
USER zapin
WORKDIR /var/lib/zapin
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${SERVER_PORT}/health/live" >/dev/null || exit 1
ENTRYPOINT ["zapin"]
CMD ["serve"]
