# shellcheck shell=bash
# Shared helpers for the benchmarks: logging, processes we start (and only those), CPU time read
# from /proc, the "is the machine quiet?" check before each run, and one JSON line per run.
# Sourced by run.sh and the figure scripts, never run.

# shellcheck disable=SC2034 # used by the scripts that source this file
CLK_TCK="$(getconf CLK_TCK)"
SERVER_CPU="${BENCH_SERVER_CPU:-0}" # every server under test is pinned here
CLIENT_CPU="${BENCH_CLIENT_CPU:-1}" # every load generator here
STARTED_PIDS=()

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# start_bg NAME CMD...: runs CMD on the server core, output to $OUT/logs/NAME.log; sets BG_PID.
start_bg() {
  local name="$1"
  shift
  taskset -c "$SERVER_CPU" "$@" >"$OUT/logs/$name.log" 2>&1 &
  BG_PID=$!
  STARTED_PIDS+=("$BG_PID")
}

# stop_pid PID: TERM, then KILL after 5 s.  Only for processes this run started.
stop_pid() {
  local pid="$1" i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_all_started() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do stop_pid "$pid"; done
  STARTED_PIDS=()
}

# wait_http URL [SECONDS]: until URL answers (any status), insecure TLS allowed.
wait_http() {
  local url="$1" limit="${2:-10}" i
  for ((i = 0; i < limit * 20; i++)); do
    curl -ks -o /dev/null --max-time 1 "$url" && return 0
    sleep 0.05
  done
  die "nothing answers at $url after ${limit}s"
}

# free_port: a port nobody listens on (the kernel picks it).
# fresh_data_dir: an empty DATA_DIR for one voice-broker start.  A server stopped with SIGTERM
# writes its waiting visitors there and the next start in the same folder would restore them
# (a queue left over from the previous figure: its first visitor would hold the slot).
fresh_data_dir() { mktemp -d "${OUT:-/tmp}/data.XXXXXX"; }

# start_redis DIR: Debian's redis-server on a free loopback port, its files in DIR, AOF on with
# appendfsync everysec (as docker/redis/redis.conf), stopped with the other started servers;
# sets REDIS_PORT and REDIS_PID once it answers PING.
start_redis() {
  local dir="$1" i
  REDIS_PORT="$(free_port)"
  cat >"$dir/redis.conf" <<CONF
bind 127.0.0.1
port $REDIS_PORT
dir $dir
save ""
appendonly yes
appendfsync everysec
client-output-buffer-limit pubsub 32mb 8mb 60
CONF
  start_bg redis redis-server "$dir/redis.conf"
  REDIS_PID=$BG_PID
  for ((i = 0; i < 100; i++)); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  die "redis-server did not start (logs/redis.log)"
}

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# cpu_ticks PID...: utime+stime of the processes (all their threads), in clock ticks.
cpu_ticks() {
  local total=0 pid stat rest
  local -a f
  for pid in "$@"; do
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || continue
    rest="${stat##*) }"
    read -r -a f <<<"$rest"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

# rss_kb PID: resident memory (VmRSS) in KB.
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# machine_busy: percent of all cores busy over half a second (before our load starts), and
# the three busiest processes then.  Sets BUSY_PCT and BUSY_TOP.
machine_busy() {
  local a b top
  read -r -a a < <(head -1 /proc/stat)
  sleep 0.5
  read -r -a b < <(head -1 /proc/stat)
  local idle=$(((b[4] + b[5]) - (a[4] + a[5]))) total=0 i
  for ((i = 1; i < ${#a[@]}; i++)); do total=$((total + b[i] - a[i])); done
  BUSY_PCT=$((total > 0 ? 100 * (total - idle) / total : 0))
  top="$(top -bn2 -d0.3 -o %CPU -w 200 | awk '/^top -/ {frame++} frame == 2 && $1 ~ /^[0-9]+$/ && $9 + 0 > 5 {printf "%s %s%%, ", $12, $9}' | head -c 160)"
  BUSY_TOP="${top%, }"
}

# quiet_check LABEL: waits (up to BENCH_QUIET_WAIT s) for the machine to be under 15% busy,
# then prints what it saw.  Never refuses to run: the busy figure goes into the results.
quiet_check() {
  local label="$1" waited=0
  machine_busy
  while ((BUSY_PCT > 15 && waited < ${BENCH_QUIET_WAIT:-0})); do
    sleep 2
    waited=$((waited + 2))
    machine_busy
  done
  log "before $label: load $(cut -d' ' -f1-3 /proc/loadavg), machine ${BUSY_PCT}% busy${BUSY_TOP:+ (top: $BUSY_TOP)}$( ((waited > 0)) && echo ", waited ${waited}s")"
}

# record KEY=VALUE...: appends one JSON object to $OUT/runs.jsonl (values that look numeric stay numbers).
record() {
  local kv key value json="{\"busyPct\":${BUSY_PCT:-0}"
  for kv in "$@"; do
    key="${kv%%=*}"
    value="${kv#*=}"
    if [[ "$value" =~ ^-?[0-9]+(\.[0-9]+)?([eE]-?[0-9]+)?$ ]]; then
      json+=",\"$key\":$value"
    else
      json+=",\"$key\":\"${value//\"/\\\"}\""
    fi
  done
  printf '%s}\n' "$json" >>"$OUT/runs.jsonl"
}

# median of the numbers given as arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# start_fake_openai: the fake OpenAI (tests/fakes/fake-openai) on a free loopback port, on the
# client core (a remote upstream takes no CPU from the broker); sets FAKE_KEY, FAKE_PID, FAKE_PORT.
start_fake_openai() {
  local i
  [[ -d "$ROOT/tests/fakes/fake-openai/node_modules/werift" ]] ||
    npm ci --prefix "$ROOT/tests/fakes/fake-openai" --no-audit --no-fund --loglevel=error >/dev/null
  FAKE_KEY="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
  SERVER_CPU="$CLIENT_CPU" start_bg fake-openai env FAKE_OPENAI_KEY="$FAKE_KEY" node "$ROOT/tests/fakes/fake-openai/server.mjs" --port 0
  FAKE_PID=$BG_PID
  for ((i = 0; i < 100; i++)); do
    grep -q listening "$OUT/logs/fake-openai.log" 2>/dev/null && break
    sleep 0.1
  done
  FAKE_PORT="$(sed -n 's/.*"listening":\([0-9]*\).*/\1/p' "$OUT/logs/fake-openai.log" | head -1)"
  [[ -n "$FAKE_PORT" ]] || die "the fake OpenAI did not start: $(cat "$OUT/logs/fake-openai.log")"
}
