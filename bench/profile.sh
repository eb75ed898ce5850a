#!/usr/bin/env bash
# bench/profile.sh page|page-tls|stats-tls|page-tls-close|broadcast: where voice-broker's CPU goes under one benchmark's
# load (perf record on the server core while the load runs on the other).  Prints the CPU split
# by kind of work, the hottest functions, and system calls per request.  Not part of run.sh:
# run it when a target is missed.  Output in bench/results/profile-<what>-<date>/.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
what="${1:-page}"
BIN="${VOICE_BROKER_BIN:-$ROOT/build/release/voice-broker}"
OUT="$HERE/results/profile-$what-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT/logs"
TLS_DIR="$(mktemp -d /tmp/vb-profile-tls.XXXXXX)"
trap 'stop_all_started; rm -rf "$TLS_DIR"' EXIT
ulimit -n "$(ulimit -Hn)"
cp "$BIN" "$OUT/voice-broker" # others may rebuild build/release meanwhile
BIN="$OUT/voice-broker"
cd "$OUT"
command -v perf >/dev/null || die "perf is missing: apt-get install linux-perf"

port="$(free_port)"
envs=(STATIC_DIR="$ROOT/static" HOST=127.0.0.1 PORT="$port" THREADS=1 LOG_LEVEL=warn MAX_QUEUE_LENGTH=100000
  MAX_TICKETS_PER_ADDRESS=0 JOIN_RATE_PER_ADDRESS=0 MAX_CONNECTIONS_PER_ADDRESS=0
  MAX_CONNECTIONS=30000 HEARTBEAT_TIMEOUT_SECONDS=600 ADMISSION_GRACE_SECONDS=600)
scheme=http
if [[ "$what" == *-tls* ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
    -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" 2>/dev/null
  envs+=(TLS_CERT_FILE="$TLS_DIR/cert.pem" TLS_KEY_FILE="$TLS_DIR/key.pem")
  scheme=https
fi
start_bg voice-broker env DATA_DIR="$(fresh_data_dir)" "${envs[@]}" "$BIN"
pid=$BG_PID
wait_http "$scheme://127.0.0.1:$port/api/health"
events=syscalls:sys_enter_sendmsg,syscalls:sys_enter_recvmsg,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_timerfd_settime,syscalls:sys_enter_getpid,syscalls:sys_enter_accept,syscalls:sys_enter_accept4

case "$what" in
page | page-tls | stats-tls | page-tls-close)
  load=(-H 'Accept-Encoding: gzip' "$scheme://127.0.0.1:$port/")
  [[ "$what" == stats-tls ]] && load=("$scheme://127.0.0.1:$port/api/session?action=stats")
  [[ "$what" == page-tls-close ]] && load=(-H 'Connection: close' "${load[@]}")
  taskset -c "$CLIENT_CPU" wrk -t1 -c50 -d2s "${load[@]}" >/dev/null
  perf record -F 2999 -g -p "$pid" -o perf.data -- sleep 6 >/dev/null 2>&1 &
  recorder=$!
  perf stat -e "$events" -p "$pid" -o syscalls.txt -- sleep 6 >/dev/null 2>&1 &
  counter=$!
  sleep 0.3
  taskset -c "$CLIENT_CPU" wrk -t1 -c50 -d5s "${load[@]}" | tee wrk.txt
  wait "$recorder" "$counter"
  requests="$(awk '/requests in/ {print $1}' wrk.txt)"
  echo "system calls per request ($requests requests):"
  awk -v n="$requests" '/syscalls:/ {gsub(",", "", $1); printf "  %-40s %.2f\n", $2, $1 / n}' syscalls.txt
  ;;
broadcast)
  n="${BENCH_PROFILE_CLIENTS:-10000}"
  taskset -c "$CLIENT_CPU" node "$HERE/queue-clients.mjs" --url "http://127.0.0.1:$port" --clients "$n" --broadcasts 12 \
    --pid "$pid" >queue.json &
  client=$!
  # Record only the broadcasts: wait until every WebSocket is open.
  until (($(find "/proc/$pid/fd" -mindepth 1 | wc -l) > n)); do sleep 0.2; done
  sleep 1
  perf record -F 2999 -g -p "$pid" -o perf.data -- sleep 3 >/dev/null 2>&1
  wait "$client"
  cat queue.json
  ;;
*) die "usage: bench/profile.sh page|page-tls|stats-tls|page-tls-close|broadcast" ;;
esac

echo "CPU by kind of work (self time):"
perf report -i perf.data --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep '%' | awk '
  { pct = $1; sub("%", "", pct); dso = $2; sym = ""; for (i = 4; i <= NF; i++) sym = sym " " $i
    if (dso ~ /kernel/) c = "kernel: TCP, loopback, system calls"
    else if (sym ~ /malloc|free|_int_|operator new|operator delete/) c = "malloc/free"
    else if (sym ~ /_Sp_counted|shared_count|sp_counted/) c = "shared_ptr reference counts"
    else if (sym ~ /nlohmann/) c = "nlohmann::json build and dump"
    else if (sym ~ /_Hashtable|_Rb_tree|memcmp/) c = "map/hash lookups"
    else if (sym ~ /mutex|any_executor|strand|scheduler|executor_op|executor_function|work_finished|thread_info/) c = "asio executors, strands, scheduler"
    else if (sym ~ /buffers_cat|buffers_prefix|buffers_suffix|mp_with_index|serializer|message_generator|write_buffers|std::distance|prepared_buffers/) c = "beast buffer sequences and serializer"
    else if (sym ~ /basic_fields|new_element|set_header|http_response/) c = "header fields"
    else if (dso ~ /libcrypto|libssl/ || sym ~ /random_hex|getpid/) c = "OpenSSL (TLS records; RAND_bytes for request ids)"
    else if (sym ~ /voice_broker::/) c = "voice_broker code"
    else c = "other user space"
    t[c] += pct }
  END { for (c in t) printf "  %6.2f%%  %s\n", t[c], c }' | sort -rn
echo "hottest functions (self):"
perf report -i perf.data --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep '%' | head -25 | cut -c1-160
echo "perf data: $OUT/perf.data (perf report -i ...)"
