#!/usr/bin/env bash
# Debian's slowhttptest against voice-broker and, under the very same attack, against nginx
# serving the same page (with /api/ proxied to a voice-broker behind it): slowloris (-H), slow
# body (-B) and slow read (-X), 1000 connections each, on 127.0.0.1 only.  While each attack
# holds its connections, a visitor loads the page 20 times and joins the queue 3 times.
#
# Passes when, under every attack, voice-broker's page loads have a p99 under 1 s and every join
# is answered (HTTP 200).  nginx's numbers are printed beside them as the reference, not judged.
# Each attack runs ATTACK_SECONDS (default 20); the whole script takes about 3 minutes.
#
#   VOICE_BROKER_BIN=build/debug/voice-broker tests/attack/slowhttp.sh
set -euo pipefail

# shellcheck source=tests/attack/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

ATTACK_SECONDS="${ATTACK_SECONDS:-20}"
CONNECTIONS="${CONNECTIONS:-1000}"
PAGE_LOADS=20
JOINS=3

find_binary
apt_ensure slowhttptest:slowhttptest nginx:nginx curl:curl ss:iproute2

# 1000 attack sockets in slowhttptest, as many in the server, plus the visitor: every process
# started below inherits this limit.
wanted_files=$((CONNECTIONS * 4 + 1024))
if (($(ulimit -Hn) < wanted_files)); then
  echo "The hard limit on open files ($(ulimit -Hn)) is below the $wanted_files this test needs." >&2
  exit 2
fi
ulimit -n "$wanted_files"

established_to() { ss -Htn state established "dport = :$1" | wc -l; }
attack_holds_connections() { (($(established_to "$1") >= CONNECTIONS * 9 / 10)); }

# visit PORT LABEL: the visitor's page loads and joins; appends one result row to $WORK/results.
visit() {
  local port="$1" label="$2" i code seconds times=() failures=0 joins_ok=0 join_codes=()
  for ((i = 0; i < PAGE_LOADS; i++)); do
    read -r code seconds < <(curl -s -o /dev/null --max-time 5 -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$port/" || true) || true
    [[ "${code:-}" == 200 ]] || { failures=$((failures + 1)); seconds=5; }  # a failed load counts as the timeout
    times+=("$seconds")
    if ((i % 7 == 3 && ${#join_codes[@]} < JOINS)); then
      code="$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' -X POST "http://127.0.0.1:$port/api/session?action=join" || true)"
      join_codes+=("${code:-000}")
      [[ "$code" == 200 ]] && joins_ok=$((joins_ok + 1))
    fi
    sleep 0.3  # a person between two page loads; spreads the visits over the attack
  done
  # p50 and p99 by nearest rank; with 20 loads the p99 is the slowest one.
  local sorted p50 p99
  sorted="$(printf '%s\n' "${times[@]}" | sort -g)"
  p50="$(sed -n "$(((PAGE_LOADS * 50 + 99) / 100))p" <<<"$sorted")"
  p99="$(sed -n "$(((PAGE_LOADS * 99 + 99) / 100))p" <<<"$sorted")"
  printf '%s %s %s %s %s/%s %s\n' "$label" "$p50" "$p99" "$failures" "$joins_ok" "$JOINS" "$(
    IFS=,
    echo "${join_codes[*]}"
  )" >>"$WORK/results"
}

# attack MODE PORT LABEL: one slowhttptest run against PORT with the visitor alongside.
attack() {
  local mode="$1" port="$2" label="$3" args=() out="$WORK/$3"
  case "$mode" in
    H) args=(-H -i 5 -x 24 -u "http://127.0.0.1:$port/") ;;
    # A body the API would take (MAX_BODY_BYTES is 64 KiB), trickled 4-24 bytes every 5 s.
    B) args=(-B -i 5 -x 24 -s 8192 -t POST -u "http://127.0.0.1:$port/api/session?action=join") ;;
    # The page three times per connection, read 32 bytes every 5 s through a 512-1024 byte window.
    X) args=(-X -k 3 -n 5 -w 512 -y 1024 -z 32 -u "http://127.0.0.1:$port/") ;;
  esac
  slowhttptest "${args[@]}" -c "$CONNECTIONS" -r 500 -l "$ATTACK_SECONDS" -p 3 -g -o "$out" >"$out.log" 2>&1 &
  local attack_pid=$!
  STARTED_PIDS+=("$attack_pid")
  # The visitor comes once the attack holds (nearly) all its connections, or after 10 s at most.
  wait_until 10 attack_holds_connections "$port" || true
  local held
  held="$(established_to "$port")"
  visit "$port" "$label"
  wait "$attack_pid" 2>/dev/null || true
  # slowhttptest's own per-second record: the most connections it held at once, and how many it
  # opened in all (closed + pending + connected).
  local peak opened
  peak="$(awk -F, 'NR > 1 && $4 > m { m = $4 } END { print m + 0 }' "$out.csv" 2>/dev/null || echo 0)"
  opened="$(awk -F, 'NR > 1 && $2 + $3 + $4 > m { m = $2 + $3 + $4 } END { print m + 0 }' "$out.csv" 2>/dev/null || echo 0)"
  printf '%s %s %s %s\n' "$label" "$held" "$peak" "$opened" >>"$WORK/attack-stats"
}

# nginx as the reference: the same static folder, /api/ proxied to a voice-broker of its own,
# nginx's default timeouts, two workers as voice-broker has two threads.
nginx_static_site() {
  local out="$1" port="$2" upstream_port="$3"
  cat >"$out" <<EOF
upstream voice_broker {
    server 127.0.0.1:$upstream_port;
    keepalive 16;
}
server {
    listen 127.0.0.1:$port;
    server_name localhost;
    root $ROOT/static;
    index index.html;
    location /api/ {
        proxy_pass http://voice_broker;
        proxy_http_version 1.1;
        proxy_set_header Host \$host;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header Connection "";
        proxy_buffering off;
    }
}
EOF
}

: >"$WORK/results"
: >"$WORK/attack-stats"
for mode in H B X; do
  # Fresh servers for every attack: what one attack leaves behind cannot help or hurt the next.
  start_voice_broker "vb-$mode" THREADS=2
  attack "$mode" "$VB_PORT" "voice-broker-$mode"
  stop_pid "$VB_PID"

  start_voice_broker "upstream-$mode" THREADS=2 TRUSTED_PROXIES=127.0.0.1
  nginx_port="$(free_port)"
  nginx_static_site "$WORK/site-$mode.conf" "$nginx_port" "$VB_PORT"
  NGINX_PORTS=("$nginx_port")
  NGINX_WORKERS=2 start_nginx "nginx-$mode" "$WORK/site-$mode.conf" 4096
  attack "$mode" "$nginx_port" "nginx-$mode"
  stop_pid "$NGINX_PID"
  stop_pid "$VB_PID"
done

# ---- report -------------------------------------------------------------------------------------
declare -A mode_name=([H]="slowloris (-H)" [B]="slow body (-B)" [X]="slow read (-X)")
printf '\n%-16s | %-12s | %13s | %13s | %14s | %9s | %8s | %6s | %s\n' "attack" "server" "conns at visit" "peak held" "opened in all" "page p50" "page p99" "failed" "joins (codes)"
printf -- '-----------------+--------------+----------------+---------------+----------------+-----------+----------+--------+--------------\n'
for mode in H B X; do
  for server in voice-broker nginx; do
    label="$server-$mode"
    read -r _ held peak opened < <(grep "^$label " "$WORK/attack-stats") || true
    read -r _ p50 p99 failures joins codes < <(grep "^$label " "$WORK/results") || true
    printf '%-16s | %-12s | %14s | %13s | %14s | %8.3fs | %7.3fs | %6s | %s (%s)\n' "${mode_name[$mode]}" "$server" "$held" "$peak" "$opened" "$p50" "$p99" "$failures" "$joins" "$codes"
  done
done
echo

for mode in H B X; do
  label="voice-broker-$mode"
  read -r _ held peak opened < <(grep "^$label " "$WORK/attack-stats") || true
  read -r _ p50 p99 failures joins codes < <(grep "^$label " "$WORK/results") || true
  if ((opened >= CONNECTIONS)); then
    pass "${mode_name[$mode]}: slowhttptest opened $opened connections to voice-broker"
  else
    fail "${mode_name[$mode]}: slowhttptest opened $CONNECTIONS connections to voice-broker" "only $opened" "$(tail -n 5 "$WORK/$label.log")"
  fi
  if awk -v p="$p99" 'BEGIN { exit !(p < 1.0) }' && ((failures == 0)); then
    pass "${mode_name[$mode]}: 20 page loads during the attack, p99 ${p99}s < 1 s"
  else
    fail "${mode_name[$mode]}: 20 page loads during the attack, p99 < 1 s" "p99 ${p99}s, $failures failed"
  fi
  if [[ "$joins" == "$JOINS/$JOINS" ]]; then
    pass "${mode_name[$mode]}: POST /api/session?action=join answered 200 during the attack ($joins)"
  else
    fail "${mode_name[$mode]}: POST /api/session?action=join answered 200 during the attack" "$joins (HTTP codes $codes)"
  fi
done
if grep -qE 'AddressSanitizer|runtime error:' "$WORK"/vb-*.log "$WORK"/upstream-*.log 2>/dev/null; then
  fail "voice-broker ran clean under the attacks (sanitizers)" "$(grep -hE -A5 'AddressSanitizer|runtime error:' "$WORK"/vb-*.log "$WORK"/upstream-*.log | head -20)"
else
  pass "voice-broker ran clean under the attacks (no sanitizer report)"
fi
echo "(the three attacks on both servers took $SECONDS s)"
summary
