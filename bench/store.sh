#!/usr/bin/env bash
# bench/store.sh [--smoke]: what the Redis store (STATE_STORE=redis) costs a join, a status and a
# leave, against the memory store (the anchor), with the same binary.
#
# One Debian redis-server on a random loopback port (AOF on, appendfsync everysec, as
# docker/redis/redis.conf), started and stopped by this script, and for each run a fresh
# voice-broker (THREADS=1, a fresh DATA_DIR, its own REDIS_KEY_PREFIX) of each kind, all pinned to
# the server core; bench/store-clients.mjs on the client core runs
#   latency:    1 visitor alone, join -> status -> leave, LAT_ROUNDS times (every join an admission)
#   throughput: rounds of 500 joins, 500 statuses, 500 leaves, 32 requests in flight (most joins
#               queue behind the one slot)
# An answer other than 200 (e.g. 503 store_unavailable when Redis misses the 1 s command deadline)
# is counted and listed under the table, not hidden.
# Runs are interleaved (memory redis, redis memory, ...), each figure the median of RUNS.  Redis's
# own CPU per request (schedstat of every redis-server thread, read around each phase) gives the
# ceiling of one Redis: 1 s / (Redis CPU per join).  Prints a table (ratio redis / memory); raw
# results in bench/results/<date>-store/ (runs.jsonl, table.md, logs/).
#
# Environment: BENCH_RUNS (5), BENCH_STORE_LAT_ROUNDS (2000), BENCH_STORE_ROUNDS (20),
#   BENCH_QUIET_WAIT (10), VOICE_BROKER_BIN (default build/release/voice-broker).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

RUNS="${BENCH_RUNS:-5}" LAT_ROUNDS="${BENCH_STORE_LAT_ROUNDS:-2000}" ROUNDS="${BENCH_STORE_ROUNDS:-20}" BATCH=500 WIDTH=32
export BENCH_QUIET_WAIT="${BENCH_QUIET_WAIT:-10}"
MODE=full
case "${1:-}" in
--smoke) RUNS=1 LAT_ROUNDS=50 ROUNDS=2 BATCH=100 BENCH_QUIET_WAIT=0 MODE=smoke ;;
"") ;;
*) die "usage: bench/store.sh [--smoke]" ;;
esac
for tool in redis-server redis-cli taskset node; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh test)"
done
[[ -d "$HERE/node_modules/ws" ]] || (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)-store-$MODE"
mkdir -p "$OUT/logs"
BIN="${VOICE_BROKER_BIN:-$ROOT/build/release/voice-broker}"
[[ -x "$BIN" ]] || die "no voice-broker binary at $BIN (cmake --preset release && cmake --build --preset release)"
cp "$BIN" "$OUT/voice-broker" # others may rebuild build/release while this runs
BIN="$OUT/voice-broker"
WORK="$(mktemp -d /tmp/vb-store-bench.XXXXXX)"
trap 'stop_all_started; rm -rf "$WORK"' EXIT
cd "$OUT"

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
  echo "mode: $MODE, $RUNS interleaved runs; latency $LAT_ROUNDS x (join, status, leave) alone; throughput $ROUNDS rounds x $BATCH visitors, $WIDTH in flight"
  echo "voice-broker: $("$BIN" --version), THREADS=1; $(redis-server --version | cut -d' ' -f1-3), AOF everysec, TCP loopback"
} | tee "$OUT/machine.txt"

start_redis "$WORK" # sets REDIS_PORT and REDIS_PID

start_broker() { # SIDE RUN -> BROKER_PID, BROKER_URL
  local side="$1" run="$2" port store=()
  port="$(free_port)"
  [[ "$side" == redis ]] && store=(STATE_STORE=redis REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" REDIS_KEY_PREFIX="bench$run" INSTANCE_ID="bench$run")
  start_bg "broker-$side-$run" env DATA_DIR="$(fresh_data_dir)" STATIC_DIR="$ROOT/static" HOST=127.0.0.1 PORT="$port" THREADS=1 \
    LOG_LEVEL=warn MAX_QUEUE_LENGTH=100000 HEARTBEAT_TIMEOUT_SECONDS=600 ADMISSION_GRACE_SECONDS=600 \
    MAX_TICKETS_PER_ADDRESS=0 JOIN_RATE_PER_ADDRESS=0 MAX_CONNECTIONS_PER_ADDRESS=0 "${store[@]}" "$BIN"
  BROKER_PID=$BG_PID
  BROKER_URL="http://127.0.0.1:$port"
  wait_http "$BROKER_URL/api/health"
}

measure() { # SIDE RUN LOAD ROUNDS BATCH WIDTH
  local side="$1" run="$2" load="$3" json
  quiet_check "store $side $load run $run"
  json="$(taskset -c "$CLIENT_CPU" node "$HERE/store-clients.mjs" --url "$BROKER_URL" --rounds "$4" --batch "$5" --width "$6" \
    --pid "$BROKER_PID" --redis-pid "$REDIS_PID")" || die "store $side $load run $run: $json"
  log "store $side $load run $run: $json"
  # shellcheck disable=SC2046 # the numeric fields become KEY=VALUE words
  record fig=store side="$side" load="$load" run="$run" $(node -e 'const o=JSON.parse(process.argv[1]);for(const[k,v] of Object.entries(o))if(typeof v==="number")console.log(k+"="+v)' "$json")
}

for ((run = 1; run <= RUNS; run++)); do
  order=(memory redis)
  ((run % 2 == 0)) && order=(redis memory)
  for side in "${order[@]}"; do
    start_broker "$side" "$run"
    measure "$side" "$run" latency "$LAT_ROUNDS" 1 1
    measure "$side" "$run" throughput "$ROUNDS" "$BATCH" "$WIDTH"
    keys="$(redis-cli -p "$REDIS_PORT" --scan --pattern "*bench$run*")"
    [[ "$side" == memory && -z "$keys" ]] || [[ "$side" == redis && -n "$keys" ]] || die "store $side run $run: Redis keys: ${keys:0:80}"
    redis-cli -p "$REDIS_PORT" flushall >/dev/null # the next side starts from an empty Redis (AOF stays small)
    stop_pid "$BROKER_PID"
  done
done

node - "$OUT" <<'JS' | tee "$OUT/table.md"
const fs = require('fs');
const out = process.argv[2];
const runs = fs.readFileSync(`${out}/runs.jsonl`, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const f = (x) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(3).replace(/0+$/, '').replace(/\.$/, ''));
const pick = (side, load, key) => runs.filter((r) => r.side === side && r.load === load).map((r) => r[key]);
const spread = (xs) => `${f(med(xs))} [${f(Math.min(...xs))}-${f(Math.max(...xs))}]`;
console.log('| load | figure | redis: median [min-max] | memory (anchor) | ratio redis/memory | added | target |');
console.log('|---|---|---:|---:|---:|---:|---|');
for (const load of ['latency', 'throughput']) {
  for (const op of ['join', 'status', 'leave']) {
    for (const [key, label] of [['P50Ms', 'p50 ms'], ['P99Ms', 'p99 ms'], ['PerSec', 'requests/s'], ['BrokerCpuUs', 'voice-broker CPU us/request']]) {
      const r = pick('redis', load, op + key), m = pick('memory', load, op + key);
      const added = key.endsWith('Ms') ? `${med(r) - med(m) >= 0 ? '+' : ''}${f(med(r) - med(m))} ms` : '-';
      let target = '-';
      if (op === 'join' && load === 'latency' && key === 'P50Ms') target = `added <= 1 ms: ${med(r) - med(m) <= 1 ? 'met' : '**not met**'}`;
      if (op === 'join' && load === 'latency' && key === 'P99Ms') target = `added <= 2 ms: ${med(r) - med(m) <= 2 ? 'met' : '**not met**'}`;
      console.log(`| ${load} | ${op} ${label} | ${spread(r)} | ${spread(m)} | ${(med(r) / med(m)).toFixed(2)}x | ${added} | ${target} |`);
    }
  }
}
console.log('');
console.log('Redis CPU per request (us, median [min-max]; redis-server pinned to the server core with the broker):');
for (const load of ['latency', 'throughput']) {
  const parts = ['join', 'status', 'leave'].map((op) => `${op} ${spread(pick('redis', load, op + 'RedisCpuUs'))}`);
  const join = med(pick('redis', load, 'joinRedisCpuUs'));
  const cycle = ['join', 'status', 'leave'].reduce((s, op) => s + med(pick('redis', load, op + 'RedisCpuUs')), 0);
  console.log(`- ${load}: ${parts.join(', ')}; ceiling of one Redis core: ${Math.round(1e6 / join).toLocaleString('en-US')} joins/s, ${Math.round(1e6 / cycle).toLocaleString('en-US')} join+status+leave visitors/s`);
}
for (const side of ['redis', 'memory']) {
  const bad = runs.filter((r) => r.side === side && r.joinErrors + r.statusErrors + r.leaveErrors > 0);
  console.log(`Answers other than 200, ${side}: ${bad.length ? bad.map((r) => `run ${r.run} ${r.load}: join ${r.joinErrors}, status ${r.statusErrors}, leave ${r.leaveErrors}`).join('; ') + ' (logs/*.log, the run\'s line in the output)' : 'none'}`);
}
const busy = runs.map((r) => r.busyPct);
console.log(`Machine busy before the runs (other work, over 0.5 s): median ${med(busy)}%, max ${Math.max(...busy)}% (${busy.length} runs)`);
JS
log "results: $OUT"
