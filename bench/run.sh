#!/usr/bin/env bash
# bench/run.sh [--smoke]: voice-broker's benchmarks, with their anchors, in one command.
#
# Starts every server on 127.0.0.1 (voice-broker, nginx, Node references, the fake OpenAI),
# pins servers to core 0 and load generators to core 1, runs bounded loads (each figure the
# median of BENCH_RUNS interleaved runs), and prints one table: absolute figures, ratios to the
# anchors measured in the same run, and whether each target is met.  Raw results go to
# bench/results/<date>/ (git-ignored): runs.jsonl, table.md, logs/.
#
#   --smoke   tiny sizes and 1-second loads, to prove the scripts work (CI); judges no speed.
#
# Environment (optional): BENCH_RUNS (5), BENCH_SECONDS (10), BENCH_CONNS (50),
#   BENCH_QUEUE_SIZES ("1000 5000 10000"), BENCH_QUEUE_RUNS (3), BENCH_TOKEN_MINTS (3000),
#   BENCH_FIGS ("1 2 3 4 5 6 7": a subset),
#   BENCH_QUIET_WAIT (seconds to wait for a quiet machine before each run, 10),
#   BENCH_BEFORE_BIN (an older build: figure 1 gets two more sides, its access log off and on),
#   VOICE_BROKER_BIN (default: build/release/voice-broker, built with the release preset).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

SMOKE=0
case "${1:-}" in
--smoke) SMOKE=1 ;;
"") ;;
*) die "usage: bench/run.sh [--smoke]" ;;
esac

# ---- tools --------------------------------------------------------------------------------------
missing=()
for pair in wrk:wrk nginx:nginx curl:curl openssl:openssl taskset:util-linux node:nodejs npm:npm cc:gcc \
  cmake:cmake ninja:ninja-build; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
[[ -f /usr/include/openssl/sha.h ]] || missing+=(libssl-dev)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
ulimit -n "$(ulimit -Hn)" # 10k WebSocket clients and as many server sockets
(($(ulimit -n) >= 12000)) || die "ulimit -n is $(ulimit -n); the queue figure needs 12000"

[[ -d "$HERE/node_modules/ws" && -d "$HERE/node_modules/express" ]] ||
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
[[ -d "$ROOT/tests/fakes/fake-openai/node_modules/werift" ]] ||
  npm ci --prefix "$ROOT/tests/fakes/fake-openai" --no-audit --no-fund --loglevel=error >/dev/null

# ---- sizes --------------------------------------------------------------------------------------
if ((SMOKE)); then
  export RUNS=1 QUEUE_RUNS=1 DURATION=1 CONNS=8 QUEUE_SIZES="100" TOKEN_MINTS=30 COLD_STARTS=2 BENCH_QUIET_WAIT=0
else
  export RUNS="${BENCH_RUNS:-5}" DURATION="${BENCH_SECONDS:-10}" CONNS="${BENCH_CONNS:-50}"
  export QUEUE_SIZES="${BENCH_QUEUE_SIZES:-1000 5000 10000}" QUEUE_RUNS="${BENCH_QUEUE_RUNS:-3}"
  export TOKEN_MINTS="${BENCH_TOKEN_MINTS:-3000}" COLD_STARTS=7 BENCH_QUIET_WAIT="${BENCH_QUIET_WAIT:-10}"
fi
export SMOKE ROOT BENCH_FIGS="${BENCH_FIGS:-1 2 3 4 5 6 7}"

MODE=full
((SMOKE)) && MODE=smoke
OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)-$MODE"
export OUT BIN
mkdir -p "$OUT/logs"
ln -sfn "$(basename "$OUT")" "$HERE/results/latest"
BIN="${VOICE_BROKER_BIN:-$ROOT/build/release/voice-broker}"
if [[ -z "${VOICE_BROKER_BIN:-}" ]]; then
  log "building the release preset"
  (cd "$ROOT" && cmake --preset release >/dev/null && cmake --build build/release -j2 >/dev/null)
fi
[[ -x "$BIN" ]] || die "no voice-broker binary at $BIN"
# Measure a private copy: others may rebuild build/release while this runs.
cp "$BIN" "$OUT/voice-broker"
BIN="$OUT/voice-broker"
"$BIN" --version >/dev/null || die "$BIN does not run (was it being linked?)"
BEFORE_BIN=""
if [[ -n "${BENCH_BEFORE_BIN:-}" ]]; then
  cp "$BENCH_BEFORE_BIN" "$OUT/voice-broker-before"
  BEFORE_BIN="$OUT/voice-broker-before"
  "$BEFORE_BIN" --version >/dev/null || die "$BENCH_BEFORE_BIN does not run"
fi
export BEFORE_BIN
TLS_DIR="$(mktemp -d /tmp/vb-bench-tls.XXXXXX)"
trap 'stop_all_started; rm -rf "$TLS_DIR"' EXIT
export CERT="$TLS_DIR/cert.pem" KEY="$TLS_DIR/key.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout "$KEY" -out "$CERT" 2>/dev/null

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- src include CMakeLists.txt 2>/dev/null || echo ' (src/include differ from it)')"
  echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ {print $2}') GiB"
  echo "mode: $MODE, runs $RUNS x ${DURATION}s, $CONNS connections; queue sizes $QUEUE_SIZES, $QUEUE_RUNS runs each"
  echo "voice-broker: $("$BIN" --version), LOG_LEVEL=warn (no access log lines in the measurement)"
  echo "anchors: $(nginx -v 2>&1), node $(node --version), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(openssl version)"
} | tee "$OUT/machine.txt"

figure() { [[ " $BENCH_FIGS " == *" $1 "* ]]; }
if figure 1 || figure 2 || figure 3 || figure 4; then bash "$HERE/http.sh"; fi
if figure 5; then bash "$HERE/token.sh"; fi
if figure 6; then bash "$HERE/queue.sh"; fi
if figure 7; then bash "$HERE/coldstart.sh"; fi

node "$HERE/report.mjs" "$OUT" | tee "$OUT/table.md"
log "results: $OUT"
