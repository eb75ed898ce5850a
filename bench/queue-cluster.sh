#!/usr/bin/env bash
# bench/queue-cluster.sh [--smoke]: N queued visitors spread over 3 voice-broker instances sharing
# one Redis (STATE_STORE=redis) against the anchor, 1 instance in memory mode, and (to tell the
# Redis hop from the spreading) 1 instance with the Redis store.
#
# One Debian redis-server on a random loopback port (AOF on, appendfsync everysec, as
# docker/redis/redis.conf), started and stopped by this script.  For each run, interleaved, fresh
# servers of each side (THREADS=1, a fresh DATA_DIR each, a REDIS_KEY_PREFIX of their own per run),
# every server and Redis pinned to the server core, so both sides have the same CPU;
# bench/queue-clients.mjs on the client core: N joins and N WebSockets, visitor i through
# instance i mod 3, then 3 slot releases (the slot holder leaves through its own instance).  The
# figure is the time from sending the leave until the last visitor has received its new place,
# the median of the 3 releases, then of RUNS runs.  Redis's CPU (schedstat) is read around the
# joins, around each release, and over IDLE seconds with the N visitors waiting and nothing
# happening: from these, the ceiling of one Redis in joins/s and in queued visitors.  Target: 3 instances <= 1.5x 1 instance in
# memory mode.  Prints a table; raw results in bench/results/<date>-queue-cluster/.
#
# Environment: BENCH_QUEUE_CLUSTER_SIZE (10000), BENCH_QUEUE_RUNS (3), BENCH_QUIET_WAIT (10),
#   VOICE_BROKER_BIN (default build/release/voice-broker).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

N="${BENCH_QUEUE_CLUSTER_SIZE:-10000}" RUNS="${BENCH_QUEUE_RUNS:-3}" INSTANCES=3 BROADCASTS=3 IDLE=10
export BENCH_QUIET_WAIT="${BENCH_QUIET_WAIT:-10}"
MODE=full
case "${1:-}" in
--smoke) N=200 RUNS=1 IDLE=1 BENCH_QUIET_WAIT=0 MODE=smoke ;;
"") ;;
*) die "usage: bench/queue-cluster.sh [--smoke]" ;;
esac
for tool in redis-server redis-cli taskset node; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh test)"
done
[[ -d "$HERE/node_modules/ws" ]] || (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
ulimit -n "$(ulimit -Hn)" # N client sockets and as many server sockets
(($(ulimit -n) >= N + 2000)) || die "ulimit -n is $(ulimit -n); $N visitors need $((N + 2000))"

OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)-queue-cluster-$MODE"
mkdir -p "$OUT/logs"
BIN="${VOICE_BROKER_BIN:-$ROOT/build/release/voice-broker}"
[[ -x "$BIN" ]] || die "no voice-broker binary at $BIN (cmake --preset release && cmake --build --preset release)"
cp "$BIN" "$OUT/voice-broker" # others may rebuild build/release while this runs
BIN="$OUT/voice-broker"
WORK="$(mktemp -d /tmp/vb-queue-cluster.XXXXXX)"
trap 'stop_all_started; rm -rf "$WORK"' EXIT
cd "$OUT"

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
  echo "mode: $MODE, $N queued visitors, $RUNS interleaved runs, $BROADCASTS slot releases each"
  echo "voice-broker: $("$BIN" --version), THREADS=1; $(redis-server --version | cut -d' ' -f1-3), AOF everysec, TCP loopback"
} | tee "$OUT/machine.txt"

start_redis "$WORK" # sets REDIS_PORT and REDIS_PID

# start_side SIDE RUN: fresh servers of that side; sets SIDE_PIDS (comma-separated) and SIDE_URLS.
start_side() {
  local side="$1" run="$2" count=1 k port store=() pids=() urls=()
  [[ "$side" == cluster ]] && count=$INSTANCES
  for ((k = 1; k <= count; k++)); do
    port="$(free_port)"
    [[ "$side" != memory ]] && store=(STATE_STORE=redis REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" REDIS_KEY_PREFIX="$side$run" INSTANCE_ID="$side$run-$k")
    start_bg "$side-$run-$k" env DATA_DIR="$(fresh_data_dir)" STATIC_DIR="$ROOT/static" HOST=127.0.0.1 PORT="$port" THREADS=1 LOG_LEVEL=warn \
      MAX_QUEUE_LENGTH=100000 MAX_CONNECTIONS=30000 HEARTBEAT_TIMEOUT_SECONDS=600 ADMISSION_GRACE_SECONDS=600 \
      MAX_TICKETS_PER_ADDRESS=0 JOIN_RATE_PER_ADDRESS=0 MAX_CONNECTIONS_PER_ADDRESS=0 "${store[@]}" "$BIN"
    pids+=("$BG_PID")
    urls+=("http://127.0.0.1:$port")
    wait_http "http://127.0.0.1:$port/api/health"
  done
  SIDE_PIDS="$(IFS=,; echo "${pids[*]}")"
  SIDE_URLS="$(IFS=,; echo "${urls[*]}")"
}

# What an instance costs Redis with nobody there (its touch every 5 s, its tick, the pub/sub
# subscription): Redis's CPU over IDLE seconds alone, then with the 3 instances started and idle.
redis_ns() { cat /proc/"$REDIS_PID"/task/*/schedstat | awk '{n += $1} END {printf "%d", n}'; } # every thread, ns
redis_pct() { # SECONDS -> Redis's CPU over that many seconds, % of one core
  local before
  before="$(redis_ns)"
  sleep "$1"
  awk -v t=$(($(redis_ns) - before)) -v s="$1" 'BEGIN {printf "%.3f", t / 1e9 / s * 100}'
}
IDLE_SECONDS=$((IDLE * 3))
quiet_check "queue-cluster: Redis alone"
alone="$(redis_pct "$IDLE_SECONDS")"
start_side cluster 0
sleep 1
with="$(redis_pct "$IDLE_SECONDS")"
IFS=, read -r -a pids <<<"$SIDE_PIDS"
for pid in "${pids[@]}"; do stop_pid "$pid"; done
redis-cli -p "$REDIS_PORT" flushall >/dev/null
log "Redis CPU over ${IDLE_SECONDS}s: alone ${alone}%, with $INSTANCES idle instances ${with}%"
record fig=queue-cluster-idle side=instances run=0 instances="$INSTANCES" seconds="$IDLE_SECONDS" redisAlonePct="$alone" redisWithInstancesPct="$with"

SIDES=(memory cluster redis1)
for ((run = 1; run <= RUNS; run++)); do
  order=("${SIDES[@]:$(((run - 1) % ${#SIDES[@]}))}" "${SIDES[@]:0:$(((run - 1) % ${#SIDES[@]}))}")
  for side in "${order[@]}"; do
    start_side "$side" "$run"
    quiet_check "queue-cluster $side $N visitors run $run"
    redis_before="$(cpu_ticks "$REDIS_PID")"
    mem_before="$(redis-cli -p "$REDIS_PORT" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')"
    json="$(taskset -c "$CLIENT_CPU" node "$HERE/queue-clients.mjs" --url "$SIDE_URLS" --clients "$N" \
      --broadcasts "$BROADCASTS" --pid "$SIDE_PIDS" --mode queue --redis-pid "$REDIS_PID" --idle-seconds "$IDLE")" || die "queue-cluster $side $N run $run: $json"
    redis_ms=$(((($(cpu_ticks "$REDIS_PID") - redis_before) * 1000) / CLK_TCK))
    # Redis memory per visitor: the entries outlive the client (HEARTBEAT_TIMEOUT_SECONDS=600).
    mem_after="$(redis-cli -p "$REDIS_PORT" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')"
    redis_kb="$(awk -v a="$mem_after" -v b="$mem_before" -v n="$N" 'BEGIN {printf "%.3f", (a - b) / 1024 / n}')"
    if [[ "$side" != memory ]]; then
      [[ -n "$(redis-cli -p "$REDIS_PORT" --scan --pattern "*$side$run*")" ]] || die "$side run $run: nothing in Redis"
    fi
    IFS=, read -r -a pids <<<"$SIDE_PIDS"
    for pid in "${pids[@]}"; do stop_pid "$pid"; done
    log "queue-cluster $side, $N visitors, run $run: $json, Redis CPU over the whole run ${redis_ms} ms"
    # shellcheck disable=SC2046 # the numeric fields become KEY=VALUE words
    record fig=queue-cluster side="$side" clients="$N" run="$run" redisCpuMs="$redis_ms" redisKbPerVisitor="$redis_kb" \
      $(node -e 'const o=JSON.parse(process.argv[1]);for(const[k,v] of Object.entries(o))if(typeof v==="number")console.log(k+"="+v)' "$json")
    redis-cli -p "$REDIS_PORT" flushall >/dev/null
    sleep 1 # let the closed sockets' state settle before the next servers start
  done
done

node - "$OUT" "$N" "$INSTANCES" <<'JS' | tee "$OUT/table.md"
const fs = require('fs');
const [out, n, instances] = process.argv.slice(2);
const all = fs.readFileSync(`${out}/runs.jsonl`, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const runs = all.filter((r) => r.fig === 'queue-cluster');
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); const k = s.length; return k % 2 ? s[(k - 1) / 2] : (s[k / 2 - 1] + s[k / 2]) / 2; };
const f = (x) => (Math.abs(x) >= 100 ? Math.round(x).toLocaleString('en-US') : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));
const pick = (side, key) => runs.filter((r) => r.side === side).map((r) => r[key]);
const spread = (xs) => `${f(med(xs))} [${f(Math.min(...xs))}-${f(Math.max(...xs))}]`;
const names = { cluster: `${instances} instances, Redis store`, redis1: '1 instance, Redis store', memory: '1 instance, memory (anchor)' };
console.log(`| ${n} queued visitors | ${names.cluster} | ${names.redis1} | ${names.memory} | ratio ${instances} instances / anchor | target |`);
console.log('|---|---:|---:|---:|---:|---|');
for (const [key, label, target] of [
  ['broadcastMsMedian', 'slot frees -> last visitor told, ms', 1.5],
  ['cpuMsPerBroadcast', 'voice-broker CPU per release (all instances), ms'],
  ['joinsPerSec', 'joins/s'],
  ['connectSeconds', 'WebSockets opened in, s'],
  ['kbPerClient', 'voice-broker RSS per visitor (all instances), KB'],
  ['redisCpuUsPerJoin', 'Redis CPU per join (50 in flight), us'],
  ['redisCpuMsPerBroadcast', 'Redis CPU per release, ms'],
  ['redisIdleCpuPct', 'Redis CPU while the visitors wait, % of a core'],
  ['redisIdleUsPerVisitorSec', 'Redis CPU per waiting visitor, us/s'],
  ['redisCpuMs', 'Redis CPU over the whole run, ms'],
  ['redisKbPerVisitor', 'Redis memory per visitor (used_memory), KB'],
]) {
  const c = pick('cluster', key), one = pick('redis1', key), m = pick('memory', key);
  const ratio = med(c) / med(m);
  const verdict = target ? `<= ${target}x: ${ratio <= target ? 'met' : '**not met**'}` : '-';
  console.log(`| ${label} | ${spread(c)} | ${spread(one)} | ${spread(m)} | ${med(m) > 0 ? ratio.toFixed(2) + 'x' : '-'} | ${verdict} |`);
}
// Per waiting visitor: the cluster's idle Redis CPU less Redis's own idle CPU (the memory side's runs, where no instance uses it).
const join = med(pick('cluster', 'redisCpuUsPerJoin'));
const idle = Math.max(1e-9, ((med(pick('cluster', 'redisIdleCpuPct')) - med(pick('memory', 'redisIdleCpuPct'))) / 100) * 1e6 / Number(n));
console.log(`\nCeiling of one Redis core from the ${instances}-instance runs: ${Math.round(1e6 / join).toLocaleString('en-US')} joins/s (Redis CPU per join); ` +
  `${Math.round(1e6 / idle).toLocaleString('en-US')} waiting visitors would use the whole core just to be kept alive (${idle.toFixed(3)} us of Redis CPU per waiting visitor per second, above Redis's own idle CPU).`);
const idleRun = all.find((r) => r.fig === 'queue-cluster-idle');
if (idleRun) {
  const per = Math.max(0, idleRun.redisWithInstancesPct - idleRun.redisAlonePct) / instances;
  console.log(`Idle instances: Redis CPU over ${idleRun.seconds} s alone ${idleRun.redisAlonePct}% of a core, with ${instances} idle instances ${idleRun.redisWithInstancesPct}%: ` +
    `${per.toFixed(3)}% per instance${per > 0 ? `, so ${Math.round(100 / per).toLocaleString('en-US')} idle instances would fill the core` : ''}.`);
}
const busy = runs.filter((r) => r.fig === 'queue-cluster').map((r) => r.busyPct);
console.log(`\nMachine busy before the runs (other work, over 0.5 s): median ${med(busy)}%, max ${Math.max(...busy)}% (${busy.length} runs). Every server and Redis on the server core, the client on the other.`);
JS
log "results: $OUT"
