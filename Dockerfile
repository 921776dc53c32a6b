# syntax=docker/dockerfile:1.7
# The stagehand controller image: a release build in the official Rust image, run from
# distroless `cc` (glibc, libgcc, CA certificates, no shell, no package manager) as the
# distroless `nonroot` user (65532). The binary writes no files, so the chart's
# readOnlyRootFilesystem works unchanged.
#
#   docker build -t ghcr.io/stagehand-dev/stagehand:0.1.0 .
#
# The same build without a container engine (what `cargo` runs below):
#   CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --locked -p stagehand

ARG RUST_VERSION=1.89

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# Symbols are stripped: the image carries the binary only; backtraces keep function names
# through the panic handler's own frames but not line numbers.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_TERM_COLOR=never
COPY . .
# Cache mounts keep the registry and the target dir between builds (BuildKit); the binary is
# copied out of the cached target dir because cache mounts are not part of the image layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p stagehand \
 && install -D -m 0755 target/release/stagehand /out/stagehand

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="stagehand" \
      org.opencontainers.image.description="Keeps Lambda stages, spot fleets and static sites on AWS exactly as declared" \
      org.opencontainers.image.source="https://github.com/stagehand-dev/stagehand" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/stagehand /usr/local/bin/stagehand
USER 65532:65532
# /metrics, /healthz, /readyz (STAGEHAND_METRICS_ADDR; the chart sets 0.0.0.0:8080).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/stagehand"]
CMD ["run"]
