#!/usr/bin/env bash
# README's test command (and CI's): installs what is missing, builds the Debug + ASan/UBSan
# preset, and runs every test suite.  Prints one closing summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
# Disk: a cold run peaks near 8 GB (the build trees, ccache, the Docker data root).  Say so up
# front instead of failing half an hour in with "No space left on device".
avail_gb=$(( $(df -Pk . | awk 'NR==2 {print $4}') / 1048576 ))
echo "disk: ${avail_gb} GB free here"
(( avail_gb >= 10 )) || echo "warning: the full test run needs about 8 GB of free disk (10 GB to be safe)"
scripts/install-deps.sh test

# The fake OpenAI (a Node server with a real WebRTC peer) that the integration tests start.
npm ci --prefix tests/fakes/fake-openai --no-audit --no-fund --loglevel=error
(cd tests/fakes/fake-openai && node --test fake-openai.test.mjs) > /tmp/vb-fake-openai-tests.log 2>&1 || {
  cat /tmp/vb-fake-openai-tests.log; echo "fake OpenAI self-tests failed"; exit 1; }
grep -E "^# (pass|fail)" /tmp/vb-fake-openai-tests.log | tr '\n' ' '; echo "(fake OpenAI self-tests)"

# Paths relative to the checkout, so a fresh clone elsewhere (CI) still hits the cache.
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}" CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
# Every preset's objects fit in well under 2 GB compressed; the cap keeps an old cache from growing.
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-3G}"
cmake --preset debug >/dev/null
cmake --build --preset debug

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
ctest --preset debug -j2 --timeout 300

# Fuzz smoke: every libFuzzer target (tests/fuzz) 30 s, two at a time, after replaying the
# findings (clang-16, ASan + UBSan, the fuzz preset).
FUZZ_JOBS=2 scripts/fuzz.sh 30
# Passed: nothing later needs the fuzz tree (1 GB); ccache rebuilds it in about a minute.
rm -rf build/fuzz

# ThreadSanitizer: the library, the binary and the integration tests only (g++, the tsan preset;
# ccache keeps the rebuild to what changed).
cmake --preset tsan >/dev/null
cmake --build --preset tsan
ctest --preset tsan -j2
rm -rf build/tsan   # 1 GB, as the fuzz tree above

# The page in a real Chromium against the real server and the fake OpenAI's WebRTC peer, inside
# a network namespace that has only loopback.
VOICE_BROKER_BIN="$PWD/build/debug/voice-broker" tests/e2e/run.sh

# Lighthouse 12.2.3 on the pages (>= 95 in all four categories), Debian's Chromium, loopback only.
VOICE_BROKER_BIN="$PWD/build/debug/voice-broker" tests/lighthouse/run.sh

# Benchmarks, smoke size: proves the scripts still run end to end; judges no speed.
VOICE_BROKER_BIN="$PWD/build/debug/voice-broker" bash bench/run.sh --smoke > /tmp/vb-bench-smoke.log 2>&1 || { tail -40 /tmp/vb-bench-smoke.log; echo "bench smoke failed"; exit 1; }
echo "bench smoke: ok ($(grep -c '^|' /tmp/vb-bench-smoke.log) table rows)"
# What one sideband costs (issue 14), smoke size, with the debug build's bench program (the full
# run builds the release one).
SIDEBAND_BENCH_BIN="$PWD/build/debug/sideband_bench" bash bench/sideband.sh --smoke > /tmp/vb-sideband-smoke.log 2>&1 || {
  tail -40 /tmp/vb-sideband-smoke.log; echo "sideband bench smoke failed"; exit 1; }
echo "sideband bench smoke: ok ($(grep -c '^|' /tmp/vb-sideband-smoke.log) table rows)"
# The Redis store's benches, smoke size (a real redis-server on a random loopback port): about 10 s and 30 s.
VOICE_BROKER_BIN="$PWD/build/debug/voice-broker" bash bench/store.sh --smoke > /tmp/vb-bench-store-smoke.log 2>&1 || { tail -40 /tmp/vb-bench-store-smoke.log; echo "bench store smoke failed"; exit 1; }
VOICE_BROKER_BIN="$PWD/build/debug/voice-broker" bash bench/queue-cluster.sh --smoke > /tmp/vb-bench-queue-cluster-smoke.log 2>&1 || { tail -40 /tmp/vb-bench-queue-cluster-smoke.log; echo "bench queue-cluster smoke failed"; exit 1; }
echo "bench store + queue-cluster smoke: ok"
# Soak, smoke size: 60 s of visitors, key mints against the fake OpenAI, abandoned places and
# hostile clients beside nginx; fails if descriptors or connections do not return to the baseline,
# if descriptors grow over the last 40 s, or if the load meets an unexpected answer.
VOICE_BROKER_BIN="$PWD/build/debug/voice-broker" bash bench/soak.sh --smoke > /tmp/vb-soak-smoke.log 2>&1 || { tail -40 /tmp/vb-soak-smoke.log; echo "soak smoke failed"; exit 1; }
echo "soak smoke: ok"

# Attack tools on loopback: testssl.sh against voice-broker's TLS and nginx (same certificate),
# slowhttptest's three modes with 1000 connections against voice-broker and nginx.
VOICE_BROKER_BIN="$PWD/build/debug/voice-broker" tests/attack/testssl.sh
VOICE_BROKER_BIN="$PWD/build/debug/voice-broker" tests/attack/slowhttp.sh

# Deployment: shellcheck + Dockerfile lint, docker-ops.sh error paths, nginx.example.conf live in
# front of the server, and a real Docker engine building and running the image (host network).
tests/deploy/lint.sh
tests/deploy/docker-ops-errors.sh
VOICE_BROKER_BIN="$PWD/build/debug/voice-broker" tests/deploy/nginx.sh
# Prometheus rules (promtool check + test) and the dashboard's metric names against a live /metrics.
VOICE_BROKER_BIN="$PWD/build/debug/voice-broker" tests/deploy/observability.sh
if [[ "${SKIP_DOCKER:-0}" == 1 ]]; then
  echo "docker checks skipped (SKIP_DOCKER=1)"
else
  tests/deploy/docker.sh
  # docker/compose.scale.yml and compose.sentinel.yml through docker-ops.sh: one queue across
  # instances, a rolling restart under live WebSockets, Redis down and killed, a Sentinel failover.
  # Same data root as docker.sh, so the voice-broker image build is all cache hits.
  tests/deploy/docker-scale.sh
fi

echo "all suites passed in $(( $(date +%s) - start )) s"
