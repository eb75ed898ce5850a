#!/usr/bin/env bash
# bench/soak.sh [--smoke]: a bounded soak of the real server, with nginx as the anchor.
#
# voice-broker (release build, one I/O thread, minting keys from the fake OpenAI on the client
# core) and Debian's nginx (bench/soak-nginx.conf, one process, the same header limit and
# timeouts) run side by side on the server core, each on 127.0.0.1 only, each under its own
# bench/soak-load.mjs on the client core for SOAK_SECONDS:
#   voice-broker: visitors (join, live WebSocket, status polls, heartbeats, a key when admitted,
#     leave, or vanish with a reset), minters (join, 1-3 keys when admitted, leave), abandoned
#     visitors (join, then nothing: the server must expire them), the page and /api/health, and
#     the hostile clients;
#   nginx: the page and the same hostile clients (slowloris heads, 32 KiB headers, garbage after a
#     WebSocket upgrade, connections reset at once, half-way or before the answer, smuggling).
# Phases: start, a 3-second warm-up of the same load (so what a server opens once, lazily, is in
# the baseline), the baseline (idle), the load, then a drain of up to SOAK_DRAIN_SECONDS.  Every
# SOAK_SAMPLE_SECONDS both servers' VmRSS, open descriptors (/proc/PID/fd), threads, and
# connections (voice-broker: /metrics voice_broker_open_connections and websocket_clients, and the
# entries its store keeps, voice_broker_store_entries; nginx: stub_status) go to samples.tsv.
#
# Verdict on voice-broker (exit 1 if any fails): RSS, descriptors and store entries grow less
# than 5 % over the last two thirds of the load (the last 20 of 30 minutes; growth = the least-
# squares line's rise over that window / its value at the window's start); descriptors and open
# connections back to the baseline after the drain; no WebSocket client left; RSS slope over the
# last half of the load at most SOAK_RSS_SLOPE_KIB_PER_MIN; the process alive; the load met no
# unexpected answer (surprises) and no error.  nginx's figures are the anchor: the table gives
# each of voice-broker's figures beside nginx's and their ratio.  Results go to
# bench/results/<date>-soak[-smoke]/ (git-ignored): samples.tsv, load-*.json, runs.jsonl,
# table.md, logs/.
#
#   --smoke   60 seconds, samples every 2 s: proves the script works and judges descriptors
#             (growth over the last 40 s, and back after the drain) and connections (CI).  RSS and
#             entries are shown, not judged: ended tickets are remembered for 10 minutes (up to
#             10,000), so both grow by design for the first minutes.
#
# Environment (optional): SOAK_SECONDS (1800; smoke 60), SOAK_SAMPLE_SECONDS (10; smoke 2),
#   SOAK_DRAIN_SECONDS (20), SOAK_RSS_SLOPE_KIB_PER_MIN (256; smoke: none, the slope is shown but
#   not judged: memory still grows by design for the first minutes, see bench/README.md),
#   SOAK_LOAD (extra soak-load.mjs flags, e.g. "--visitors 40"),
#   SOAK_STORE (memory; redis: voice-broker keeps its state in a redis-server of its own on
#     loopback, AOF on, whose RSS and key count are sampled too and judged like the store entries),
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
*) die "usage: bench/soak.sh [--smoke]" ;;
esac

missing=()
STORE="${SOAK_STORE:-memory}"
[[ "$STORE" == memory || "$STORE" == redis ]] || die "SOAK_STORE is memory or redis, not $STORE"
pairs=(nginx:nginx curl:curl taskset:util-linux node:nodejs npm:npm)
[[ "$STORE" == redis ]] && pairs+=(redis-server:redis-server redis-cli:redis-tools)
for pair in "${pairs[@]}"; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[[ -d "$HERE/node_modules/ws" ]] || (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

if ((SMOKE)); then
  SECONDS_LOAD="${SOAK_SECONDS:-60}" SAMPLE="${SOAK_SAMPLE_SECONDS:-2}" SLOPE_LIMIT="${SOAK_RSS_SLOPE_KIB_PER_MIN:-none}"
else
  SECONDS_LOAD="${SOAK_SECONDS:-1800}" SAMPLE="${SOAK_SAMPLE_SECONDS:-10}" SLOPE_LIMIT="${SOAK_RSS_SLOPE_KIB_PER_MIN:-256}"
fi
DRAIN="${SOAK_DRAIN_SECONDS:-20}"
# What the growth verdict judges: the smoke only descriptors (see --smoke above).
JUDGE_GROWTH=rss,fds,entries
[[ "$STORE" == redis ]] && JUDGE_GROWTH+=,redis_keys,redis_rss
((SMOKE)) && JUDGE_GROWTH=fds
MODE=soak
[[ "$STORE" == redis ]] && MODE=soak-redis
((SMOKE)) && MODE+=-smoke
OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)-$MODE"
mkdir -p "$OUT/logs"
BIN="${VOICE_BROKER_BIN:-$ROOT/build/release/voice-broker}"
if [[ -z "${VOICE_BROKER_BIN:-}" ]]; then
  log "building the release preset"
  (cd "$ROOT" && cmake --preset release >/dev/null && cmake --build build/release -j2 >/dev/null)
fi
[[ -x "$BIN" ]] || die "no voice-broker binary at $BIN"
cp "$BIN" "$OUT/voice-broker" # a private copy: others may rebuild build/ while this runs
BIN="$OUT/voice-broker"
"$BIN" --version >/dev/null || die "$BIN does not run"
# An ASan build (scripts/test.sh runs the smoke with the debug one) holds up to 256 MiB of freed
# memory in its quarantine, which would read as growth: 1 MiB is enough for a soak.
ASAN_BUILD=0
if [[ "$(ldd "$BIN")" == *libasan* ]]; then
  ASAN_BUILD=1
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1:thread_local_quarantine_size_kb=64:detect_leaks=0"
fi
trap stop_all_started EXIT
cd "$OUT"

# ---- the two servers (and voice-broker's upstream, the fake OpenAI) ------------------------------
start_fake_openai
STORE_ENV=()
REDIS_PID=0
if [[ "$STORE" == redis ]]; then
  mkdir -p "$OUT/redis"
  start_redis "$OUT/redis"
  STORE_ENV=(STATE_STORE=redis REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" REDIS_KEY_PREFIX=soak)
fi
VB_PORT="$(free_port)"
start_bg voice-broker env "${STORE_ENV[@]}" DATA_DIR="$(fresh_data_dir)" STATIC_DIR="$ROOT/static" HOST=127.0.0.1 PORT="$VB_PORT" THREADS=1 \
  LOG_LEVEL=warn MAX_CONCURRENT_USERS=4 MAX_QUEUE_LENGTH=1000 HEARTBEAT_TIMEOUT_SECONDS=10 \
  MAX_TICKETS_PER_ADDRESS=0 JOIN_RATE_PER_ADDRESS=0 MAX_CONNECTIONS_PER_ADDRESS=0 \
  OPENAI_API_KEY="$FAKE_KEY" OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT" "$BIN"
VB_PID=$BG_PID
NGX_PORT="$(free_port)"
NGX_STATUS_PORT="$(free_port)"
mkdir -p "$OUT/nginx"
sed -e "s|@PREFIX@|$OUT/nginx|g" -e "s|@PORT@|$NGX_PORT|g" -e "s|@STATUS_PORT@|$NGX_STATUS_PORT|g" -e "s|@STATIC@|$ROOT/static|g" \
  "$HERE/soak-nginx.conf" >"$OUT/nginx/nginx.conf"
start_bg nginx nginx -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf"
NGX_PID=$BG_PID
wait_http "http://127.0.0.1:$VB_PORT/api/health"
wait_http "http://127.0.0.1:$NGX_PORT/"
log "voice-broker pid $VB_PID on :$VB_PORT, nginx pid $NGX_PID on :$NGX_PORT ($(nginx -v 2>&1 | sed 's/.*: //'))"

# ---- sampling -----------------------------------------------------------------------------------
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
vb_gauge() { # vb_gauge NAME...: the values of /metrics gauges, space-separated (-1: no answer)
  local text name
  text="$(curl -s --max-time 2 "http://127.0.0.1:$VB_PORT/metrics")" || true
  for name in "$@"; do
    awk -v n="$name" '$1 == n {v = $2} END {print (v == "" ? -1 : v)}' <<<"$text"
  done | xargs
}
# redis_figures: Redis's RSS (KiB) and key count, or -1 -1 without Redis.
redis_figures() {
  if ((REDIS_PID == 0)); then echo "-1 -1"; return; fi
  echo "$(rss_kb "$REDIS_PID" 2>/dev/null || echo 0) $(redis-cli -p "$REDIS_PORT" dbsize 2>/dev/null || echo -1)"
}
ngx_conns() { { curl -s --max-time 2 "http://127.0.0.1:$NGX_STATUS_PORT/status" || true; } | awk '/^Active connections:/ {print $3; f=1} END {if (!f) print -1}'; }
T0=$(date +%s.%N)
sample() { # sample PHASE: one line of samples.tsv
  local vb_conns vb_ws vb_queue vb_entries n_conns r_rss r_keys
  read -r r_rss r_keys <<<"$(redis_figures)"
  read -r vb_conns vb_ws vb_queue vb_entries <<<"$(vb_gauge voice_broker_open_connections voice_broker_websocket_clients \
    voice_broker_queue_length voice_broker_store_entries)"
  n_conns="$(ngx_conns)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(awk -v now="$(date +%s.%N)" -v t0="$T0" 'BEGIN {printf "%.1f", now - t0}')" "$1" \
    "$(rss_kb "$VB_PID" 2>/dev/null || echo 0)" "$(fd_count "$VB_PID")" "$(threads "$VB_PID")" "$vb_conns" "$vb_ws" "$vb_queue" "$vb_entries" \
    "$(rss_kb "$NGX_PID" 2>/dev/null || echo 0)" "$(fd_count "$NGX_PID")" "$(threads "$NGX_PID")" "$n_conns" "$r_rss" "$r_keys" >>"$OUT/samples.tsv"
}
printf 't\tphase\tvb_rss_kb\tvb_fds\tvb_threads\tvb_conns\tvb_ws\tvb_queue\tvb_entries\tngx_rss_kb\tngx_fds\tngx_threads\tngx_conns\tredis_rss_kb\tredis_keys\n' >"$OUT/samples.tsv"

# load SECONDS TAG: both loads at once on the client core; their JSON in load-TAG-{vb,nginx}.json.
load() {
  local seconds="$1" tag="$2" vb_load ngx_load
  # shellcheck disable=SC2086 # SOAK_LOAD is a list of flags
  taskset -c "$CLIENT_CPU" node "$HERE/soak-load.mjs" --url "http://127.0.0.1:$VB_PORT" --seconds "$seconds" --mode vb ${SOAK_LOAD:-} \
    >"$OUT/load-$tag-vb.json" 2>"$OUT/logs/load-$tag-vb.log" &
  vb_load=$!
  STARTED_PIDS+=("$vb_load")
  # shellcheck disable=SC2086
  taskset -c "$CLIENT_CPU" node "$HERE/soak-load.mjs" --url "http://127.0.0.1:$NGX_PORT" --seconds "$seconds" --mode nginx ${SOAK_LOAD:-} \
    >"$OUT/load-$tag-nginx.json" 2>"$OUT/logs/load-$tag-nginx.log" &
  ngx_load=$!
  STARTED_PIDS+=("$ngx_load")
  LOAD_PIDS=("$vb_load" "$ngx_load")
}
loads_running() { kill -0 "${LOAD_PIDS[0]}" 2>/dev/null || kill -0 "${LOAD_PIDS[1]}" 2>/dev/null; }
wait_loads() { wait "${LOAD_PIDS[0]}" || die "the voice-broker load failed: $(tail -3 "$OUT/logs/load-$1-vb.log")"
  wait "${LOAD_PIDS[1]}" || die "the nginx load failed: $(tail -3 "$OUT/logs/load-$1-nginx.log")"; }

# settle PHASE: samples until both servers hold no client connection (up to DRAIN seconds).
settle() {
  local waited=0 vb_conns ngx
  while :; do
    read -r vb_conns _ <<<"$(vb_gauge voice_broker_open_connections)"
    ngx="$(ngx_conns)"
    # Our own sampling request is the one connection each server sees then.
    if [[ "$vb_conns" == 1 && "$ngx" == 1 && $(fd_count "$VB_PID") -le ${VB_FDS_BASE:-100000} &&
      $(fd_count "$NGX_PID") -le ${NGX_FDS_BASE:-100000} ]] || ((waited >= DRAIN)); then break; fi
    sleep 1
    waited=$((waited + 1))
  done
  sample "$1"
  SETTLED_AFTER=$waited
}

log "warm-up: 3 s of the same load"
load 3 warmup
wait_loads warmup
settle baseline
sleep 1
sample baseline
VB_FDS_BASE="$(fd_count "$VB_PID")" NGX_FDS_BASE="$(fd_count "$NGX_PID")"
quiet_check "soak ($MODE)"
log "load: ${SECONDS_LOAD}s, samples every ${SAMPLE}s"
load "$SECONDS_LOAD" soak
while loads_running; do
  sample load
  sleep "$SAMPLE"
done
wait_loads soak
log "load done; draining (up to ${DRAIN}s)"
settle drain
DRAINED_AFTER=$SETTLED_AFTER
sleep 1
sample after
VB_ALIVE=1
kill -0 "$VB_PID" 2>/dev/null || VB_ALIVE=0
stop_pid "$VB_PID"
stop_pid "$NGX_PID"
stop_pid "$FAKE_PID"
((REDIS_PID == 0)) || stop_pid "$REDIS_PID"

# ---- figures and verdict --------------------------------------------------------------------------
node "$HERE/soak-report.mjs" "$OUT" --slope-limit "$SLOPE_LIMIT" --alive "$VB_ALIVE" --drained-after "$DRAINED_AFTER" \
  --seconds "$SECONDS_LOAD" --mode "$MODE" --asan "$ASAN_BUILD" --judge-growth "$JUDGE_GROWTH" | tee "$OUT/table.md"
verdict=${PIPESTATUS[0]}
log "results: $OUT"
exit "$verdict"
