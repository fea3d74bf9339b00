# syntax=docker/dockerfile:1
# One image with every Hookline binary: hookline (all-in-one, demo receiver), hookline-ingest,
# hookline-fanout, hookline-sender, hookline-ledger. Pick one with the container command.
#   docker build -t hookline .

FROM rust:1-bookworm AS build
# librdkafka is built from source by rdkafka-sys.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
      -p hookline -p hookline-ingest -p hookline-fanout -p hookline-sender -p hookline-ledger \
 && mkdir /out \
 && cp target/release/hookline target/release/hookline-ingest target/release/hookline-fanout \
       target/release/hookline-sender target/release/hookline-ledger /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 hookline \
 && useradd --uid 10001 --gid hookline --no-create-home --shell /usr/sbin/nologin hookline
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
# ingest 8080, fanout 8081, sender 8082, ledger 8083 (each binary's default HOOKLINE_LISTEN).
EXPOSE 8080 8081 8082 8083
ENV HOOKLINE_LOG_FORMAT=json
CMD ["hookline", "serve"]
