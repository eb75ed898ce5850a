#!/usr/bin/env bash
# Figure 6: the queue at scale.  For each size in QUEUE_SIZES, QUEUE_RUNS times, interleaved, a fresh
# server of each kind on the server core:
#   voice-broker (ws and wss), the floor (floor.c: raw send() of one frame to every socket), and
#   the Node `ws` server doing the same broadcast (ws and wss),
# and queue-clients.mjs on the client core: N joins (made by wrk, bench/join.lua, so that join
# throughput is the server's and not the client's), N WebSockets, 3 slot releases.  Records the
# server's VmRSS growth per client, join throughput and CPU per join, and the time from the
# release until the last client holds its new place.  Called by run.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
: "${OUT:?}" "${ROOT:?}" "${BIN:?}" "${CERT:?}" "${KEY:?}" "${QUEUE_RUNS:?}" "${QUEUE_SIZES:?}"
trap stop_all_started EXIT
cd "$OUT"
ulimit -n "$(ulimit -Hn)"

FLOOR="$OUT/floor"
cc -O2 -Wall -o "$FLOOR" "$HERE/floor.c" -lcrypto
BROADCASTS=3

# start_side SIDE: starts a fresh server of that kind; sets SIDE_PID and SIDE_URL.
start_side() {
  local side="$1" port
  port="$(free_port)"
  case "$side" in
  voice-broker | voice-broker-tls)
    local tls=()
    [[ "$side" == *-tls ]] && tls=(TLS_CERT_FILE="$CERT" TLS_KEY_FILE="$KEY")
    start_bg "$side" env DATA_DIR="$(fresh_data_dir)" STATIC_DIR="$ROOT/static" HOST=127.0.0.1 PORT="$port" THREADS=1 LOG_LEVEL=warn \
      MAX_QUEUE_LENGTH=100000 MAX_CONNECTIONS=30000 HEARTBEAT_TIMEOUT_SECONDS=600 ADMISSION_GRACE_SECONDS=600 \
      MAX_TICKETS_PER_ADDRESS=0 JOIN_RATE_PER_ADDRESS=0 MAX_CONNECTIONS_PER_ADDRESS=0 \
      "${tls[@]}" "$BIN"
    ;;
  floor) start_bg floor "$FLOOR" "$port" ;;
  node-ws) start_bg node-ws node "$HERE/node-ws-server.mjs" --port "$port" ;;
  node-ws-tls) start_bg node-ws-tls node "$HERE/node-ws-server.mjs" --port "$port" --cert "$CERT" --key "$KEY" ;;
  esac
  SIDE_PID=$BG_PID
  SIDE_URL="http://127.0.0.1:$port"
  [[ "$side" == *-tls ]] && SIDE_URL="https://127.0.0.1:$port"
  if [[ "$side" == voice-broker* ]]; then
    wait_http "$SIDE_URL/api/health"
  else
    for ((i = 0; i < 100; i++)); do
      grep -q listening "$OUT/logs/$side.log" 2>/dev/null && return 0
      sleep 0.1
    done
    die "$side did not start"
  fi
}

SIDES=(voice-broker floor node-ws voice-broker-tls node-ws-tls)
for n in $QUEUE_SIZES; do
  for ((run = 1; run <= QUEUE_RUNS; run++)); do
    # Rotate the order so no side always runs first (or right after the heaviest one).
    order=("${SIDES[@]:$(((run - 1) % ${#SIDES[@]}))}" "${SIDES[@]:0:$(((run - 1) % ${#SIDES[@]}))}")
    for side in "${order[@]}"; do
      start_side "$side"
      quiet_check "fig 6 $side $n clients run $run"
      mode=queue
      [[ "$side" == floor ]] && mode=floor
      # The joins by wrk (bench/join.lua), as figures 1-4 load: the server is then the limit.
      json="$(taskset -c "$CLIENT_CPU" node "$HERE/queue-clients.mjs" --url "$SIDE_URL" --clients "$n" \
        --broadcasts "$BROADCASTS" --pid "$SIDE_PID" --mode "$mode" --joiner wrk)" || die "fig 6 $side $n: $json"
      stop_pid "$SIDE_PID"
      log "fig 6 $side, $n clients, run $run: $json"
      # shellcheck disable=SC2046 # the numeric fields become KEY=VALUE words
      record fig=6 side="$side" clients="$n" run="$run" $(node -e 'const o=JSON.parse(process.argv[1]);for(const[k,v] of Object.entries(o))if(typeof v==="number")console.log(k+"="+v)' "$json")
      sleep 1 # let the closed sockets' state settle before the next server starts
    done
  done
done
