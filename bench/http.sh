#!/usr/bin/env bash
# Figures 1-4, all driven by wrk on the client core against servers pinned to the server core:
#   1. the page (index.html, gzip) over HTTPS keep-alive: voice-broker vs nginx (gzip_static)
#   2. the same over plain HTTP
#   3. GET /api/session?action=stats over HTTPS: voice-broker vs bare Node https vs Express
#   4. one new TLS connection per request (Connection: close): voice-broker vs nginx
# Both sides serve the same bytes (nginx's index.html.gz is voice-broker's own gzip copy) with
# the same certificate, TLS versions and cipher list, one worker each.  Runs are interleaved
# (A B A B ...); every run appends one line to $OUT/runs.jsonl.  Called by run.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
: "${OUT:?}" "${ROOT:?}" "${BIN:?}" "${CERT:?}" "${KEY:?}" "${RUNS:?}" "${DURATION:?}" "${CONNS:?}"
trap stop_all_started EXIT
cd "$OUT" # no .env or config/ here: voice-broker runs on built-in defaults plus what we set

TLS_CIPHERS='ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305'
WEB="$OUT/www"
mkdir -p "$WEB"
cp "$ROOT/static/index.html" "$WEB/"

vb() { # vb NAME PORT [VAR=VALUE...]: voice-broker ($VB_BINARY, default $BIN), one I/O thread, no access log
  local name="$1" port="$2"
  shift 2
  start_bg "$name" env STATIC_DIR="$WEB" HOST=127.0.0.1 PORT="$port" THREADS=1 LOG_LEVEL=warn \
    MAX_CONNECTIONS_PER_ADDRESS=0 JOIN_RATE_PER_ADDRESS=0 MAX_TICKETS_PER_ADDRESS=0 DATA_DIR="$(fresh_data_dir)" "$@" "${VB_BINARY:-$BIN}"
}

P_VB_PLAIN="$(free_port)"
vb vb-plain "$P_VB_PLAIN"
VB_PLAIN_PID=$BG_PID
wait_http "http://127.0.0.1:$P_VB_PLAIN/api/health"
curl -fsS -H 'Accept-Encoding: gzip' -o "$WEB/index.html.gz" "http://127.0.0.1:$P_VB_PLAIN/"
touch -r "$WEB/index.html" "$WEB/index.html.gz"

P_VB_TLS="$(free_port)"
vb vb-tls "$P_VB_TLS" TLS_CERT_FILE="$CERT" TLS_KEY_FILE="$KEY"
VB_TLS_PID=$BG_PID

# The same with the access log on (LOG_LEVEL=info: one line per request, into its log file):
# figure 1's third side, what the access log costs.
P_VB_LOG="$(free_port)"
vb vb-tls-log "$P_VB_LOG" TLS_CERT_FILE="$CERT" TLS_KEY_FILE="$KEY" LOG_LEVEL=info
VB_LOG_PID=$BG_PID

# BEFORE_BIN (run.sh's BENCH_BEFORE_BIN): an older build with the access log off and on, as two
# more sides of figure 1, interleaved with the others: a change's effect on the log's cost.
if [[ -n "${BEFORE_BIN:-}" ]]; then
  P_VB_BEFORE="$(free_port)"
  VB_BINARY="$BEFORE_BIN" vb vb-tls-before "$P_VB_BEFORE" TLS_CERT_FILE="$CERT" TLS_KEY_FILE="$KEY"
  VB_BEFORE_PID=$BG_PID
  P_VB_BEFORE_LOG="$(free_port)"
  VB_BINARY="$BEFORE_BIN" vb vb-tls-before-log "$P_VB_BEFORE_LOG" TLS_CERT_FILE="$CERT" TLS_KEY_FILE="$KEY" LOG_LEVEL=info
  VB_BEFORE_LOG_PID=$BG_PID
fi

P_NGX_TLS="$(free_port)"
P_NGX_PLAIN="$(free_port)"
mkdir -p "$OUT/nginx/logs"
# The same security headers voice-broker sends, so both answers are about the same size.
cat >"$OUT/nginx/nginx.conf" <<EOF
user root;
daemon off;
worker_processes 1;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/logs/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  server_tokens off;
  sendfile on;
  tcp_nodelay on;
  keepalive_timeout 60s;
  keepalive_requests 10000000;
  types { text/html html; }
  charset utf-8;
  gzip_static on;
  gzip_vary on;
  ssl_certificate $CERT;
  ssl_certificate_key $KEY;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_ciphers $TLS_CIPHERS;
  ssl_prefer_server_ciphers on;
  server {
    listen 127.0.0.1:$P_NGX_TLS ssl;
    listen 127.0.0.1:$P_NGX_PLAIN;
    root $WEB;
    add_header Cache-Control "no-cache";
    add_header Content-Security-Policy "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; media-src 'self' blob: mediastream:; connect-src 'self' https://api.openai.com; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";
    add_header X-Content-Type-Options nosniff;
    add_header Referrer-Policy no-referrer;
    add_header Permissions-Policy "microphone=(self), camera=(), geolocation=(), payment=(), usb=()";
    add_header X-Frame-Options DENY;
    add_header Cross-Origin-Opener-Policy same-origin;
  }
}
EOF
start_bg nginx nginx -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf"
NGX_PID=$BG_PID

P_NODE="$(free_port)"
start_bg node-bare node "$HERE/node-stats-server.mjs" --mode bare --port "$P_NODE" --cert "$CERT" --key "$KEY"
NODE_PID=$BG_PID
P_EXPRESS="$(free_port)"
start_bg node-express node "$HERE/node-stats-server.mjs" --mode express --port "$P_EXPRESS" --cert "$CERT" --key "$KEY"
EXPRESS_PID=$BG_PID

for url in "https://127.0.0.1:$P_VB_TLS/api/health" "https://127.0.0.1:$P_VB_LOG/api/health" "https://127.0.0.1:$P_NGX_TLS/" "http://127.0.0.1:$P_NGX_PLAIN/" \
  "https://127.0.0.1:$P_NODE/api/session?action=stats" "https://127.0.0.1:$P_EXPRESS/api/session?action=stats" \
  ${BEFORE_BIN:+"https://127.0.0.1:$P_VB_BEFORE/api/health" "https://127.0.0.1:$P_VB_BEFORE_LOG/api/health"}; do
  wait_http "$url"
done
NGX_PIDS="$NGX_PID $(pgrep -P "$NGX_PID" | tr '\n' ' ')"

# What each side answers: must be 200, gzip for the page; the sizes go into the results.
check_answer() { # NAME URL [curl args]
  local name="$1" url="$2" got
  shift 2
  got="$(curl -ksS -o /dev/null -w '%{http_code} %{size_header} %{size_download} %{content_type}' "$@" "$url")"
  log "answer of $name: status, header bytes, body bytes, type: $got"
  [[ "$got" == 200* ]] || die "$name answered $got"
  record fig=answer side="$name" status="${got%% *}" headerBytes="$(cut -d' ' -f2 <<<"$got")" bodyBytes="$(cut -d' ' -f3 <<<"$got")"
}
for pair in "vb-tls https://127.0.0.1:$P_VB_TLS/" "vb-plain http://127.0.0.1:$P_VB_PLAIN/" \
  "nginx-tls https://127.0.0.1:$P_NGX_TLS/" "nginx-plain http://127.0.0.1:$P_NGX_PLAIN/"; do
  check_answer "${pair%% *}" "${pair#* }" -H 'Accept-Encoding: gzip'
  curl -ksS -D - -o /dev/null -H 'Accept-Encoding: gzip' "${pair#* }" | grep -qi '^content-encoding: gzip' ||
    die "${pair%% *} did not answer with gzip"
done
for pair in "vb-stats https://127.0.0.1:$P_VB_TLS/api/session?action=stats" \
  "node-stats https://127.0.0.1:$P_NODE/api/session?action=stats" \
  "express-stats https://127.0.0.1:$P_EXPRESS/api/session?action=stats"; do
  check_answer "${pair%% *}" "${pair#* }"
done

to_ms() { # wrk's "491.00us" / "1.23ms" / "1.02s" -> milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; print n }'
}

# wrk_once FIG SIDE RUN URL "SERVER PIDS" [wrk args...]: one measured run, one JSON line.
wrk_once() {
  local fig="$1" side="$2" run="$3" url="$4" pids="$5" before after out reqs rps p50 p99 errors client
  shift 5
  quiet_check "fig $fig $side run $run"
  # shellcheck disable=SC2086 # pids is a list
  before="$(cpu_ticks $pids)"
  out="$(
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$@" "$url"
    awk '{print "client_ticks", $16 + $17}' "/proc/$BASHPID/stat"
  )"
  # shellcheck disable=SC2086
  after="$(cpu_ticks $pids)"
  printf '%s\n' "$out" >>"$OUT/logs/wrk-fig$fig-$side.log"
  reqs="$(awk '/requests in/ {print $1}' <<<"$out")"
  rps="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
  p50="$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")"
  p99="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
  errors="$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")"
  client="$(awk '$1 == "client_ticks" {print $2}' <<<"$out")"
  ((reqs > 0)) || die "fig $fig $side: no request completed: $out"
  local cpu_us
  cpu_us="$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')"
  log "fig $fig $side run $run: $rps req/s, server CPU ${cpu_us} us/req, p50 ${p50} ms, p99 ${p99} ms, errors $errors"
  record fig="$fig" side="$side" run="$run" rps="$rps" requests="$reqs" cpuUsPerReq="$cpu_us" p50Ms="$p50" p99Ms="$p99" \
    errors="$errors" clientCpuS="$(awk -v t="$client" -v hz="$CLK_TCK" 'BEGIN {print t / hz}')" seconds="$DURATION"
}

# fig|side|url|server pids|options (gzip: Accept-Encoding: gzip; close: Connection: close)
plan=(
  "1|voice-broker|https://127.0.0.1:$P_VB_TLS/|$VB_TLS_PID|gzip"
  "1|nginx|https://127.0.0.1:$P_NGX_TLS/|$NGX_PIDS|gzip"
  "1|voice-broker+access-log|https://127.0.0.1:$P_VB_LOG/|$VB_LOG_PID|gzip"
  "2|voice-broker|http://127.0.0.1:$P_VB_PLAIN/|$VB_PLAIN_PID|gzip"
  "2|nginx|http://127.0.0.1:$P_NGX_PLAIN/|$NGX_PIDS|gzip"
  "3|voice-broker|https://127.0.0.1:$P_VB_TLS/api/session?action=stats|$VB_TLS_PID|"
  "3|node-https|https://127.0.0.1:$P_NODE/api/session?action=stats|$NODE_PID|"
  "3|express|https://127.0.0.1:$P_EXPRESS/api/session?action=stats|$EXPRESS_PID|"
  "4|voice-broker|https://127.0.0.1:$P_VB_TLS/|$VB_TLS_PID|gzip close"
  "4|nginx|https://127.0.0.1:$P_NGX_TLS/|$NGX_PIDS|gzip close"
)
if [[ -n "${BEFORE_BIN:-}" ]]; then
  plan+=("1|before|https://127.0.0.1:$P_VB_BEFORE/|$VB_BEFORE_PID|gzip"
    "1|before+access-log|https://127.0.0.1:$P_VB_BEFORE_LOG/|$VB_BEFORE_LOG_PID|gzip")
fi

wrk_args() { # OPTIONS -> WRK_ARGS
  WRK_ARGS=()
  if [[ "$1" == *gzip* ]]; then WRK_ARGS+=(-H 'Accept-Encoding: gzip'); fi
  if [[ "$1" == *close* ]]; then WRK_ARGS+=(-H 'Connection: close'); fi
}

for fig in 1 2 3 4; do
  if [[ -n "${BENCH_FIGS:-}" && " $BENCH_FIGS " != *" $fig "* ]]; then continue; fi
  entries=()
  for entry in "${plan[@]}"; do [[ "$entry" == "$fig|"* ]] && entries+=("$entry"); done
  # Warm-up, not recorded: caches, allocator pools, the Node servers' JIT.
  for entry in "${entries[@]}"; do
    IFS='|' read -r _ _ url _ opts <<<"$entry"
    wrk_args "$opts"
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d1s "${WRK_ARGS[@]}" "$url" >/dev/null
  done
  # A B, B A, A B, ...: both sides see the same drift in what else the machine is doing.
  for ((run = 1; run <= RUNS; run++)); do
    order=("${entries[@]}")
    if ((run % 2 == 0)); then
      order=()
      for ((i = ${#entries[@]} - 1; i >= 0; i--)); do order+=("${entries[i]}"); done
    fi
    for entry in "${order[@]}"; do
      IFS='|' read -r fig_ side url pids opts <<<"$entry"
      wrk_args "$opts"
      wrk_once "$fig_" "$side" "$run" "$url" "$pids" "${WRK_ARGS[@]}"
    done
  done
done

# The access-log side wrote one line per request: keep the first 1000 (to look at), not gigabytes.
for name in vb-tls-log vb-tls-before-log; do
  if [[ -f "$OUT/logs/$name.log" ]]; then
    head -n 1000 "$OUT/logs/$name.log" >"$OUT/logs/$name.head.log"
    : >"$OUT/logs/$name.log"
  fi
done
