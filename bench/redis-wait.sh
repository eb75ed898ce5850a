#!/usr/bin/env bash
# bench/redis-wait.sh [--smoke]: what durable admissions (REDIS_WAIT_REPLICAS) cost per admission.
#
# One Debian redis-server master and one replica on loopback ports (AOF off, like a tmpfs-backed
# cache: the figure is replication, not disk), the master and replica pinned to core 0; the real
# Redis store (the release preset's library, bench/redis_wait.cpp -O2) on core 1 runs
# join -> leave cycles (each one admission and one end) with 1 visitor at a time (latency) and
# 8 at once (throughput), with WAIT 1 and without WAIT (the anchor), interleaved, median of RUNS.
# Prints a table with the ratio (WAIT / no WAIT); results in bench/results/<date>-redis-wait/.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SERVER_CPU="${BENCH_SERVER_CPU:-0}"
CLIENT_CPU="${BENCH_CLIENT_CPU:-1}"
CYCLES="${BENCH_WAIT_CYCLES:-5000}"
RUNS="${BENCH_RUNS:-5}"
if [[ "${1:-}" == --smoke ]]; then CYCLES=200; RUNS=1; fi

for tool in redis-server redis-cli taskset g++ pkg-config python3; do
  command -v "$tool" >/dev/null || { echo "redis-wait.sh: $tool is missing (scripts/install-deps.sh test)"; exit 1; }
done

OUT="$ROOT/bench/results/$(date +%Y%m%d-%H%M%S)-redis-wait"
mkdir -p "$OUT"
WORK="$(mktemp -d /tmp/vb-redis-wait.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# The store under test, optimised, from the sources (no build tree needed); the Lua script is
# embedded the way CMake's configure_file does it.
BIN="$WORK/redis_wait"
# The real Redis store from the release preset's library (the same code the server runs).
echo "building the release preset's library and bench/redis_wait.cpp (-O2) ..." >&2
(cd "$ROOT" && cmake --preset release >/dev/null && cmake --build --preset release --target voice_broker_core >/dev/null)
# shellcheck disable=SC2046 # pkg-config's words are meant to split
g++ -std=c++20 -O2 -DNDEBUG -DBOOST_ASIO_NO_DEPRECATED -I"$ROOT/include" -I"$ROOT/src" \
  -o "$BIN" "$HERE/redis_wait.cpp" "$ROOT/build/release/libvoice_broker_core.a" \
  $(pkg-config --cflags --libs hiredis spdlog fmt openssl libcurl zlib) -pthread

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MASTER_PORT=$(free_port)
REPLICA_PORT=$(free_port)
start_redis() { # name port [replicaof-port]
  mkdir -p "$WORK/$1"
  {
    echo "bind 127.0.0.1"; echo "port $2"; echo "dir $WORK/$1"; echo "logfile $WORK/$1/redis.log"
    echo 'save ""'; echo "appendonly no"; echo "repl-diskless-sync yes"; echo "repl-diskless-sync-delay 0"
    [[ -n "${3:-}" ]] && echo "replicaof 127.0.0.1 $3"
  } >"$WORK/$1/redis.conf"
  taskset -c "$SERVER_CPU" redis-server "$WORK/$1/redis.conf" &
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$2" ping >/dev/null 2>&1 && return; sleep 0.05; done
  echo "redis-wait.sh: $1 did not start" >&2; exit 1
}
start_redis master "$MASTER_PORT"
start_redis replica "$REPLICA_PORT" "$MASTER_PORT"
for _ in $(seq 100); do
  redis-cli -p "$MASTER_PORT" info replication | grep -q 'slave0:.*state=online' && break
  sleep 0.05
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
field() { sed -E "s/.*\"$1\":([0-9.]+).*/\1/"; }
measure() { # visitors wait -> JSON line
  taskset -c "$CLIENT_CPU" "$BIN" "127.0.0.1:$MASTER_PORT" "$CYCLES" "$1" "$2" 50 | tee -a "$OUT/runs.jsonl"
}

{
  echo "| visitors at once | figure | WAIT 1 | no WAIT | ratio (WAIT / no WAIT) |"
  echo "|---:|---|---:|---:|---:|"
} >"$OUT/redis-wait.md"
for visitors in 1 8; do
  waits=() nowaits=()
  for ((run = 0; run < RUNS; run++)); do # interleaved, so both see the same machine
    waits+=("$(measure "$visitors" 1)")
    nowaits+=("$(measure "$visitors" 0)")
  done
  for figure in admissions_per_s join_p50_us join_p99_us leave_p50_us; do
    w=$(printf '%s\n' "${waits[@]}" | field "$figure" | median)
    n=$(printf '%s\n' "${nowaits[@]}" | field "$figure" | median)
    awk -v v="$visitors" -v f="$figure" -v w="$w" -v n="$n" 'BEGIN {
      printf "| %d | %s | %.0f | %.0f | %.2f |\n", v, f, w, n, (n > 0 ? w / n : 0) }' >>"$OUT/redis-wait.md"
  done
done
echo "cycles (one admission + one end each) per run: $CYCLES, median of $RUNS interleaved runs; master and replica on CPU $SERVER_CPU, the store on CPU $CLIENT_CPU; REDIS_WAIT_TIMEOUT_MS 50" >>"$OUT/redis-wait.md"
cat "$OUT/redis-wait.md"
