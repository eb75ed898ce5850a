#!/usr/bin/env bash
# bench/redis-client.sh [--smoke]: the Redis client layer's cost per command, against an anchor.
#
# One redis-server (Debian's, on a unix socket and on a loopback port, pinned to the server core);
# the same commands (PING, SET, GET) through one connection, first one at a time (the round trip),
# then 16 in flight, by
#   - voice-broker's client (bench/redis_rtt.cpp: redis_connection, hiredis async driven by Asio),
#   - the anchor: redis-benchmark (C, hiredis, blocking loop) with -c 1 -P 1 / -P 16.
# Each figure is the median of RUNS interleaved runs.  Prints a table with the ratio
# (voice-broker rps / redis-benchmark rps); results in bench/results/<date>/redis-client.md.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SERVER_CPU="${BENCH_SERVER_CPU:-0}"
CLIENT_CPU="${BENCH_CLIENT_CPU:-1}"
REQUESTS="${BENCH_REDIS_REQUESTS:-100000}"
RUNS="${BENCH_RUNS:-5}"
if [[ "${1:-}" == --smoke ]]; then REQUESTS=2000; RUNS=1; fi

for tool in redis-server redis-benchmark taskset g++ pkg-config; do
  command -v "$tool" >/dev/null || { echo "redis-client.sh: $tool is missing (scripts/install-deps.sh test)"; exit 1; }
done

OUT="$ROOT/bench/results/$(date +%Y%m%d-%H%M%S)-redis"
mkdir -p "$OUT"
WORK="$(mktemp -d /tmp/vb-redis-bench.XXXXXX)"
REDIS_PID=""
cleanup() {
  if [[ -n "$REDIS_PID" ]]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# The client under test, optimised, from the library's own sources (no build tree needed).
BIN="$WORK/redis_rtt"
echo "building bench/redis_rtt.cpp (-O2) ..." >&2
# shellcheck disable=SC2046 # pkg-config's words are meant to split
g++ -std=c++20 -O2 -DNDEBUG -I"$ROOT/include" -o "$BIN" "$HERE/redis_rtt.cpp" \
  "$ROOT"/src/redis_{endpoint,url,reply,error,asio_adapter,link,connection,master_locator,subscriber}.cpp \
  "$ROOT/src/reconnect_backoff.cpp" $(pkg-config --cflags --libs hiredis spdlog) -pthread

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SOCKET="$WORK/redis.sock"
cat >"$WORK/redis.conf" <<CONF
bind 127.0.0.1
port $PORT
unixsocket $SOCKET
save ""
appendonly no
dir $WORK
logfile $WORK/redis.log
CONF
taskset -c "$SERVER_CPU" redis-server "$WORK/redis.conf" &
REDIS_PID=$!
for _ in $(seq 100); do [[ -S "$SOCKET" ]] && redis-cli -s "$SOCKET" ping >/dev/null 2>&1 && break; sleep 0.05; done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

ours() { # transport command window -> rps
  local target="$SOCKET"
  [[ "$1" == tcp ]] && target="127.0.0.1:$PORT"
  taskset -c "$CLIENT_CPU" "$BIN" "$target" "$REQUESTS" "$3" "$2" | sed -E 's/.*"rps":([0-9]+).*/\1/'
}
anchor() { # transport command window -> rps
  local where=(-s "$SOCKET")
  [[ "$1" == tcp ]] && where=(-h 127.0.0.1 -p "$PORT")
  local test="${2,,}"
  [[ "$test" == ping ]] && test=ping_mbulk
  taskset -c "$CLIENT_CPU" redis-benchmark "${where[@]}" -c 1 -P "$3" -n "$REQUESTS" -t "$test" --csv -q |
    tail -1 | cut -d, -f2 | tr -d '"'
}

{
  echo "| transport | command | in flight | voice-broker rps | redis-benchmark rps | ratio | voice-broker µs/command |"
  echo "|---|---|---:|---:|---:|---:|---:|"
} >"$OUT/redis-client.md"
for transport in unix tcp; do
  for window in 1 16; do
    for command in PING SET GET; do
      ours_runs=() anchor_runs=()
      for ((run = 0; run < RUNS; run++)); do # interleaved, so both see the same machine
        ours_runs+=("$(ours "$transport" "$command" "$window")")
        anchor_runs+=("$(anchor "$transport" "$command" "$window")")
      done
      o=$(printf '%s\n' "${ours_runs[@]}" | median)
      a=$(printf '%s\n' "${anchor_runs[@]}" | median)
      awk -v t="$transport" -v c="$command" -v w="$window" -v o="$o" -v a="$a" 'BEGIN {
        printf "| %s | %s | %d | %.0f | %.0f | %.2f | %.1f |\n", t, c, w, o, a, o / a, 1e6 / o }' >>"$OUT/redis-client.md"
    done
  done
done
echo "requests per figure: $REQUESTS, median of $RUNS runs; server on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU" >>"$OUT/redis-client.md"
cat "$OUT/redis-client.md"
