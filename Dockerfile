# voice-broker production image.
#
# Two stages: a Debian 12 builder with the -dev packages compiles a stripped Release binary,
# and a bookworm-slim runtime carries only the shared libraries that binary links, the static
# page and the session limits.  The server runs as an unprivileged user under tini.
#
#   docker build -t voice-broker:latest .            (or ./docker-ops.sh build)
#
# DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR point apt at the mirror your hosts already use (a
# local cache or an internal mirror); the defaults are Debian's own.

ARG DEBIAN_MIRROR=http://deb.debian.org/debian
ARG DEBIAN_SECURITY_MIRROR=http://deb.debian.org/debian-security

FROM debian:bookworm AS builder
ARG DEBIAN_MIRROR
ARG DEBIAN_SECURITY_MIRROR
ARG BUILD_JOBS=0

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# One sources file for every base (Debian's own image and a debootstrap-made one alike), so
# the build also gets bookworm-updates and the security fixes.
RUN rm -f /etc/apt/sources.list \
 && printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "${DEBIAN_MIRROR}" "${DEBIAN_SECURITY_MIRROR}" > /etc/apt/sources.list.d/debian.sources \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkgconf binutils \
      libboost1.81-dev nlohmann-json3-dev libspdlog-dev libcurl4-openssl-dev libssl-dev zlib1g-dev libhiredis-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only what the build reads: tests, docs and deployment files stay out of this layer's key,
# so editing them does not recompile the server.
COPY CMakeLists.txt ./
COPY include/ include/
COPY src/ src/

RUN jobs="${BUILD_JOBS}"; if [ "${jobs}" = 0 ]; then jobs="$(nproc)"; fi \
 && cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DVOICE_BROKER_BUILD_TESTS=OFF \
 && cmake --build build --parallel "${jobs}" \
 && strip --strip-unneeded build/voice-broker \
 && build/voice-broker --version


FROM debian:bookworm-slim AS runtime
ARG DEBIAN_MIRROR
ARG DEBIAN_SECURITY_MIRROR

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Runtime libraries only: Asio and Beast are header-only, so no libboost; spdlog is shared
# and brings libfmt9.  ca-certificates lets libcurl verify api.openai.com; tzdata gives
# BUDGET_TIMEZONE its zones (without it only UTC works).
RUN rm -f /etc/apt/sources.list \
 && printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "${DEBIAN_MIRROR}" "${DEBIAN_SECURITY_MIRROR}" > /etc/apt/sources.list.d/debian.sources \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libssl3 libcurl4 libspdlog1.10 libfmt9 zlib1g libhiredis0.14 ca-certificates tzdata tini \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log \
           /usr/share/doc/* /usr/share/man/* /usr/share/locale/* \
 && groupadd --system --gid 10001 voicebroker \
 && useradd --system --uid 10001 --gid voicebroker --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin voicebroker

COPY --from=builder /src/build/voice-broker /usr/local/bin/voice-broker

WORKDIR /app
# DATA_DIR's default (data, in the working directory): the one folder the server writes; a
# volume mounted here starts with this owner.
RUN mkdir -p /app/data && chown 10001:10001 /app/data && chmod 700 /app/data
# The server reads config/session-limits.json relative to its working directory.
COPY --chown=root:root static/ static/
COPY --chown=root:root config/ config/

# HOST=0.0.0.0 so the published port reaches the server; --healthcheck then probes 127.0.0.1.
ENV HOST=0.0.0.0 \
    PORT=3000 \
    STATIC_DIR=/app/static \
    SHUTDOWN_GRACE_SECONDS=10

LABEL org.opencontainers.image.title="voice-broker" \
      org.opencontainers.image.description="Voice chat page and OpenAI Realtime gatekeeper" \
      org.opencontainers.image.licenses="proprietary"

USER 10001:10001
EXPOSE 3000
STOPSIGNAL SIGTERM

HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["voice-broker", "--healthcheck"]

# tini is PID 1 when the image runs on its own (docker run); under compose's `init: true`
# docker-init is PID 1 and -s keeps tini reaping as a subreaper without a warning.
ENTRYPOINT ["/usr/bin/tini", "-s", "--"]
CMD ["voice-broker"]
