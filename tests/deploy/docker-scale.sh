#!/usr/bin/env bash
# Real-Docker check of the scaled deployments under docker/: builds every image (voice-broker,
# Redis and nginx from Debian's packages), runs docker/compose.scale.yml (one Redis, three
# instances, nginx) through docker-ops.sh with VB_STACK=scale, and proves what an operator relies
# on:
#   - every port on 127.0.0.1 (or ::1), no Docker network;
#   - the instances share one queue (join on one, the same position on the others and through
#     nginx); Redis runs with AOF and noeviction;
#   - `rolling-restart` during live WebSockets: every visitor's channel is closed with 1012 and
#     reconnects through nginx, the talker stays active with the same end, the waiting keep their
#     places, and no request through nginx fails;
#   - scale-down / scale-up; Redis stopped (degraded, 503 store_unavailable, health 7) and
#     started again, Redis killed (-9) and restarted by Docker: the places survive (AOF);
#   - no ticket, key or token in any log;
# then docker/compose.sentinel.yml (a master, a replica, three sentinels, two instances, nginx):
# a failover (the master stopped) is followed by the instances without a restart, and the places
# survive it.  Everything is torn down, also on failure.
#
# Uses its own dockerd on the data root docker.sh uses (tests/deploy/docker-engine.sh), so after
# docker.sh the voice-broker image build is all cache hits.  Needs root.
#
#   sudo tests/deploy/docker-scale.sh
#
# Environment: VB_DOCKER_CACHE, VB_KEEP_WORK=1 (see docker-engine.sh); VB_SKIP_SENTINEL=1 skips
# the Sentinel part.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=tests/deploy/lib.sh
source "$HERE/lib.sh"

STARTED_AT=$SECONDS
[[ "$(id -u)" == 0 ]] || {
  echo "docker-scale.sh needs root (it starts its own dockerd)." >&2
  exit 2
}

# shellcheck source=tests/deploy/docker-engine.sh
source "$HERE/docker-engine.sh"

CLIENT_PIDS=()
POLL_PID=''
WORK=''
stop_clients() {
  local pid
  for pid in "${CLIENT_PIDS[@]}" "$POLL_PID"; do
    [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${CLIENT_PIDS[@]}" "$POLL_PID"; do
    [[ -n "$pid" ]] && wait "$pid" 2>/dev/null
  done
  CLIENT_PIDS=()
  POLL_PID=''
  return 0
}
stack_down() {
  [[ -n "$WORK" && -n "${COMPOSE_FILE:-}" ]] || return 0
  (cd "$WORK" && timeout 120 docker-compose down --volumes --remove-orphans >/dev/null 2>&1)
}
cleanup() {
  local code=$?
  set +e
  stop_clients
  stack_down
  engine_stop
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

engine_start docker-scale
if [[ ! -d "$HERE/node_modules/ws" ]]; then
  (cd "$HERE" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
engine_base_images

WORK="$TMP/work"
engine_copy_tree "$WORK"
export NO_COLOR=1 VB_START_TIMEOUT=120
ADMIN_TOKEN="test-admin-token-$RANDOM$RANDOM"
API_KEY="sk-test.not.a.real.key.$RANDOM"
ops() { (cd "$WORK" && ./docker-ops.sh "$@"); }
networks_before="$(docker network ls -q | sort)"

# --- small helpers ---------------------------------------------------------------------------
ticket_of() { [[ "$1" =~ \"ticket\":\"([A-Za-z0-9_-]+)\" ]] && printf '%s' "${BASH_REMATCH[1]}"; }
field_of() {
  if [[ "$2" =~ \"$1\":(\"[^\"]*\"|-?[0-9.]+|true|false|null) ]]; then
    local v="${BASH_REMATCH[1]}"
    v="${v#\"}"
    printf '%s' "${v%\"}"
  fi
}
join_at() { curl -sS --max-time 5 -X POST "http://127.0.0.1:$1/api/session?action=join" 2>&1 || true; }
status_at() { curl -sS --max-time 5 -H "X-Session-Ticket: $2" "http://127.0.0.1:$1/api/session?action=status" 2>&1 || true; }
stats_at() { curl -sS --max-time 5 "http://127.0.0.1:$1/api/session?action=stats" 2>&1 || true; }
health_at() { curl -sS --max-time 5 "http://127.0.0.1:$1/api/health" 2>&1 || true; }
container_of() {
  docker ps -a -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
    --filter "label=com.docker.compose.service=$1" | head -n 1
}
ready_at() { [[ "$(health_at "$1")" == *'"status":"ok"'*'"store":"up"'* ]]; }
degraded_at() { [[ "$(health_at "$1")" == *'"status":"degraded"'* ]]; }
# Every listening socket on these ports is on 127.0.0.1 or ::1.
loopback_only() {
  local port addresses address
  for port in "$@"; do
    addresses="$(ss -Htln "sport = :$port" | awk '{print $4}')"
    [[ -n "$addresses" ]] || {
      echo "nothing listens on $port"
      return 1
    }
    while IFS= read -r address; do
      [[ "$address" == "127.0.0.1:$port" || "$address" == "[::1]:$port" ]] || {
        echo "$address"
        return 1
      }
    done <<<"$addresses"
  done
}
# A visitor's page: the live channel through nginx, reconnecting like static/js/live-channel.js.
start_visitor() {
  local name="$1" ticket="$2" port="$3"
  node "$HERE/ws-visitor.js" "ws://127.0.0.1:$port/api/session/ws" "$ticket" --max-ms 600000 \
    >"$TMP/ws-$name.log" 2>&1 &
  CLIENT_PIDS+=($!)
}
has_status() { grep -q '"type":"status"' "$TMP/ws-$1.log"; }
# Polls a visitor's status through nginx every 0.2 s, one HTTP code per line, until stopped.
start_poll() {
  local port="$1" ticket="$2" out="$3"
  (
    trap 'exit 0' TERM
    while true; do
      curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 -H "X-Session-Ticket: $ticket" \
        "http://127.0.0.1:$port/api/session?action=status" || echo "curl-failed"
      sleep 0.2
    done
  ) >"$out" 2>&1 &
  POLL_PID=$!
}
# .env.local as README's "Scaling out" makes it: .env.example, then the operator's lines (the last
# assignment wins, for compose and for docker-ops.sh alike).
write_env() {
  cp "$WORK/.env.example" "$WORK/.env.local"
  cat >>"$WORK/.env.local" <<EOF
OPENAI_API_KEY=$API_KEY
ADMIN_TOKEN=$ADMIN_TOKEN
LOG_LEVEL=info
MAX_CONCURRENT_USERS=1
MAX_SESSION_DURATION_MINUTES=10
SHUTDOWN_GRACE_SECONDS=10
$1
EOF
}

# =============================================================================================
echo "== docker/compose.scale.yml: one Redis, three instances, nginx (VB_STACK=scale in .env.local)"
APP1="$(free_port)"
APP2="$(free_port)"
APP3="$(free_port)"
NGINX="$(free_port)"
REDIS="$(free_port)"
export VB_APP1_PORT="$APP1" VB_APP2_PORT="$APP2" VB_APP3_PORT="$APP3" VB_HOST_PORT="$NGINX" VB_REDIS_PORT="$REDIS"
write_env "VB_STACK=scale
REDIS_URL=redis://127.0.0.1:$REDIS/0"
# What docker-ops.sh sets for VB_STACK=scale; exported here too for the direct compose calls.
export COMPOSE_FILE=docker/compose.scale.yml COMPOSE_PROJECT_NAME=voice-broker-scale

config="$(cd "$WORK" && docker-compose config 2>&1)" && code=0 || code=$?
expect_code "docker-compose config docker/compose.scale.yml exits 0" 0 "$code" "$config"
check "compose.scale.yml publishes no ports (host networking)" sh -c "! grep -q '^ *ports:' '$WORK/docker/compose.scale.yml'"
expect_output "the instances run in redis mode" "STATE_STORE: redis" "$config"
expect_output "nginx is told the three instances" "VB_INSTANCES: 127.0.0.1:$APP1 127.0.0.1:$APP2 127.0.0.1:$APP3" "$config"
sentinel_config="$(cd "$WORK" && COMPOSE_FILE=docker/compose.sentinel.yml docker-compose config 2>&1)" && code=0 || code=$?
expect_code "docker-compose config docker/compose.sentinel.yml exits 0" 0 "$code" "$sentinel_config"

t0=$SECONDS
output="$(ops build 2>&1)" && code=0 || code=$?
expect_code "docker-ops.sh build (scale) builds voice-broker, Redis and nginx ($((SECONDS - t0)) s)" 0 "$code" "$(tail -n 40 <<<"$output")"
((code == 0)) || {
  summary
  exit 1
}
BUILD_SECONDS=$((SECONDS - t0))
for image in voice-broker voice-broker-redis voice-broker-nginx; do
  size="$(docker image inspect -f '{{.Size}}' "$image:latest" 2>/dev/null || echo 0)"
  echo "   $image:latest $((size / 1000000)) MB"
done
check "the Redis image runs as the redis user" test "$(docker image inspect -f '{{.Config.User}}' voice-broker-redis:latest)" = redis
check "the nginx image runs as www-data" test "$(docker image inspect -f '{{.Config.User}}' voice-broker-nginx:latest)" = www-data

t0=$SECONDS
output="$(ops start 2>&1)" && code=0 || code=$?
expect_code "docker-ops.sh start (scale) exits 0 ($((SECONDS - t0)) s)" 0 "$code" "$(tail -n 40 <<<"$output")"
indent "   start: " "$(grep -E 'ready|healthy|behind' <<<"$output")"
for port in "$APP1" "$APP2" "$APP3"; do
  check "the instance on 127.0.0.1:$port is ready (status ok, store up)" ready_at "$port"
done
check "every port (nginx, three instances, Redis) listens on loopback only" loopback_only "$NGINX" "$APP1" "$APP2" "$APP3" "$REDIS"
check "no Docker network was created (host networking only)" test "$(docker network ls -q | sort)" = "$networks_before"
expect_output "/api/health names the instance" '"instance":"voice-broker-app2"' "$(health_at "$APP2")"

output="$(ops status 2>&1)" && code=0 || code=$?
expect_code "docker-ops.sh status (scale) exits 0" 0 "$code" "$output"
for app in app1 app2 app3; do
  expect_output "status shows $app with its store up" "instance voice-broker-$app" "$output"
done
expect_output "status shows the shared session summary" "activeSessions 0/1" "$output"
indent "   status: " "$output"
check "docker-ops.sh health (scale) exits 0" ops health

REDIS_ID="$(container_of redis)"
expect_output "Redis runs with AOF on" $'appendonly\nyes' "$(docker exec "$REDIS_ID" redis-cli -p "$REDIS" config get appendonly 2>&1)"
expect_output "Redis never evicts (noeviction)" $'maxmemory-policy\nnoeviction' "$(docker exec "$REDIS_ID" redis-cli -p "$REDIS" config get maxmemory-policy 2>&1)"
check "Redis runs as an unprivileged user" test "$(docker exec "$REDIS_ID" id -u)" != 0
check "the instances and nginx have a read-only root filesystem" sh -c \
  "for s in app1 nginx; do [ \"\$($DOCKER_BIN inspect -f '{{.HostConfig.ReadonlyRootfs}}' \$($DOCKER_BIN ps -q --filter label=com.docker.compose.service=\$s))\" = true ] || exit 1; done"

echo "== one queue for every instance"
join_a="$(join_at "$APP1")"
join_b="$(join_at "$APP2")"
join_c="$(join_at "$NGINX")"
TICKET_A="$(ticket_of "$join_a")"
TICKET_B="$(ticket_of "$join_b")"
TICKET_C="$(ticket_of "$join_c")"
expect_output "A joins on app1 and talks" '"state":"active"' "$join_a"
expect_output "B joins on app2 and waits first" '"position":1' "$join_b"
expect_output "C joins through nginx and waits second" '"position":2' "$join_c"
for port in "$APP1" "$APP3" "$NGINX"; do
  expect_output "B's place (1) is the same on 127.0.0.1:$port" '"position":1' "$(status_at "$port" "$TICKET_B")"
done
expect_output "C's place (2) is the same on app1" '"position":2' "$(status_at "$APP1" "$TICKET_C")"
for port in "$APP1" "$APP2" "$APP3"; do
  stats="$(stats_at "$port")"
  if [[ "$(field_of activeSessions "$stats")" == 1 && "$(field_of queueLength "$stats")" == 2 ]]; then
    pass "stats on 127.0.0.1:$port: 1 active, 2 waiting"
  else
    fail "stats on 127.0.0.1:$port: 1 active, 2 waiting" "$stats"
  fi
done
EXPIRES_A="$(field_of expiresAt "$join_a")"

echo "== rolling restart during live WebSockets"
start_visitor A "$TICKET_A" "$NGINX"
start_visitor B "$TICKET_B" "$NGINX"
start_visitor C "$TICKET_C" "$NGINX"
for v in A B C; do
  if wait_until 15 has_status "$v"; then pass "visitor $v's live channel through nginx is open"; else fail "visitor $v's live channel through nginx is open" "$(cat "$TMP/ws-$v.log")"; fi
done
before=()
for app in app1 app2 app3; do before+=("$(container_of "$app")"); done
start_poll "$NGINX" "$TICKET_B" "$TMP/poll.log"
t0=$SECONDS
output="$(ops rolling-restart 2>&1)" && code=0 || code=$?
ROLLING_SECONDS=$((SECONDS - t0))
first_join_ms=''

expect_code "docker-ops.sh rolling-restart exits 0 (${ROLLING_SECONDS} s)" 0 "$code" "$output"
indent "   rolling-restart: " "$output"
expect_output "it goes one instance at a time" "[3/3] Recreating app3" "$output"
i=0
for app in app1 app2 app3; do
  after="$(container_of "$app")"
  check "$app is a new container" test "$after" != "${before[i]}"
  i=$((i + 1))
done
# The visitors keep their places; give the last reconnect its status first.
reconnected() { [[ "$(grep -c '^open ' "$TMP/ws-$1.log")" -ge 2 && "$(tail -n 1 "$TMP/ws-$1.log")" == '{'* ]]; }
for v in A B C; do
  wait_until 15 reconnected "$v" || true
done
kill -TERM "$POLL_PID" 2>/dev/null
wait "$POLL_PID" 2>/dev/null || true
POLL_PID=''
polls="$(grep -c . "$TMP/poll.log")"
failed="$(grep -vc '^200$' "$TMP/poll.log" || true)"
if ((polls >= 5 && failed == 0)); then
  pass "no status request through nginx failed during the rolling restart ($polls polls)"
else
  fail "no status request through nginx failed during the rolling restart" "$polls polls, $failed not 200:" "$(sort "$TMP/poll.log" | uniq -c)"
fi
for v in A B C; do
  log="$(cat "$TMP/ws-$v.log")"
  if grep -q '^gave-up' <<<"$log"; then fail "visitor $v never lost the place" "$(grep '^gave-up' <<<"$log")"; else pass "visitor $v never lost the place (no ended, no unknown_ticket)"; fi
  restarts="$(grep -c '^close 1012' <<<"$log" || true)"
  opens="$(grep -c '^open ' <<<"$log" || true)"
  if ((restarts >= 1 && opens == restarts + 1)); then
    pass "visitor $v: closed with 1012 ${restarts} time(s), reconnected each time through nginx"
  else
    fail "visitor $v: closed with 1012 and reconnected" "$(grep -E '^(open|close)' <<<"$log")"
  fi
done
status_a="$(status_at "$NGINX" "$TICKET_A")"
expect_output "A still talks after the rolling restart" '"state":"active"' "$status_a"
# The same end, as each instance renders Redis's deadline with its own clock offset (a few ms).
same_end() {
  local a b
  a="$(date -u -d "$1" +%s%3N)" && b="$(date -u -d "$2" +%s%3N)" || return 1
  ((a - b <= 1000 && b - a <= 1000)) || {
    echo "$1 vs $2"
    return 1
  }
}
check "A's session keeps the end it was given ($EXPIRES_A, within 1 s)" same_end "$(field_of expiresAt "$status_a")" "$EXPIRES_A"
expect_output "B still waits first after the rolling restart" '"position":1' "$(status_at "$NGINX" "$TICKET_B")"
expect_output "C still waits second after the rolling restart" '"position":2' "$(status_at "$NGINX" "$TICKET_C")"
expect_output "B's live channel says position 1 after the restart" '"position":1' "$(grep '"type":"status"' "$TMP/ws-B.log" | tail -n 1)"

echo "== scale-down / scale-up"
output="$(ops scale-down 2 2>&1)" && code=0 || code=$?
expect_code "docker-ops.sh scale-down 2 exits 0" 0 "$code" "$output"
check "app3 is stopped" test "$(docker inspect -f '{{.State.Status}}' "$(container_of app3)")" = exited
output="$(ops status 2>&1)" && code=0 || code=$?
expect_code "status exits 0 with app3 scaled down" 0 "$code" "$output"
expect_output "status says app3 is stopped" "app3       exited" "$output"
nginx_b=()
for _ in 1 2 3 4 5 6; do nginx_b+=("$(status_at "$NGINX" "$TICKET_B")"); done
if [[ "${nginx_b[*]}" != *'"error"'* && "$(grep -o '"position":1' <<<"${nginx_b[*]}" | wc -l)" == 6 ]]; then
  pass "nginx passes over the stopped instance (6 of 6 answers)"
else
  fail "nginx passes over the stopped instance" "${nginx_b[@]}"
fi
output="$(ops scale-up 2>&1)" && code=0 || code=$?
expect_code "docker-ops.sh scale-up exits 0" 0 "$code" "$(tail -n 20 <<<"$output")"
check "app3 is ready again" ready_at "$APP3"

echo "== Redis stopped, started; killed and restarted by Docker"
closes_of() { grep -c '^close' "$TMP/ws-$1.log" || true; }
declare -A closes_before=()
for v in A B C; do closes_before[$v]="$(closes_of "$v")"; done
docker stop -t 10 "$REDIS_ID" >/dev/null
if wait_until 20 degraded_at "$APP1"; then pass "without Redis /api/health says degraded"; else fail "without Redis /api/health says degraded" "$(health_at "$APP1")"; fi
check "... and still answers 200 (nginx keeps the instance)" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$APP1/api/health")" = 200
output="$(ops health 2>&1)" && code=0 || code=$?
expect_code "docker-ops.sh health exits 7 while Redis is down" 7 "$code" "$output"
join_d="$(curl -sS --max-time 5 -D - -X POST "http://127.0.0.1:$NGINX/api/session?action=join" 2>&1 || true)"
expect_output "a join through nginx answers 503 store_unavailable" '"code":"store_unavailable"' "$join_d"
expect_output "... with Retry-After" "retry-after:" "${join_d,,}"
docker start "$REDIS_ID" >/dev/null
for port in "$APP1" "$APP2" "$APP3"; do
  if wait_until 30 ready_at "$port"; then pass "127.0.0.1:$port has its store back without a restart"; else fail "127.0.0.1:$port has its store back" "$(health_at "$port")"; fi
done
expect_output "B's place survived Redis's restart" '"position":1' "$(status_at "$NGINX" "$TICKET_B")"
# D joins after that restart: its place is in the AOF only (the last RDB snapshot was written at
# the stop above), so it survives the crash below only if AOF works.
join_d="$(join_at "$NGINX")"
TICKET_D="$(ticket_of "$join_d")"
expect_output "D joins once Redis is back (position 3)" '"position":3' "$join_d"
restarts_before="$(docker inspect -f '{{.RestartCount}}' "$REDIS_ID")"
# A crash, not `docker kill` (which Docker counts as a stop by hand and does not restart).
kill -KILL "$(docker inspect -f '{{.State.Pid}}' "$REDIS_ID")"
redis_restarted() { (("$(docker inspect -f '{{.RestartCount}}' "$REDIS_ID")" > restarts_before)) && [[ "$(docker inspect -f '{{.State.Status}}' "$REDIS_ID")" == running ]]; }
if wait_until 30 redis_restarted; then pass "Redis killed with -9 is restarted by Docker (restart: unless-stopped)"; else fail "Redis killed with -9 is restarted by Docker" "$(docker inspect -f '{{.State.Status}} {{.RestartCount}}' "$REDIS_ID")"; fi
for port in "$APP1" "$APP2" "$APP3"; do
  wait_until 30 ready_at "$port" || true
done
expect_output "A still talks after Redis was killed (AOF)" '"state":"active"' "$(status_at "$NGINX" "$TICKET_A")"
expect_output "B still waits first after Redis was killed (AOF)" '"position":1' "$(status_at "$NGINX" "$TICKET_B")"
expect_output "C still waits second after Redis was killed (AOF)" '"position":2' "$(status_at "$NGINX" "$TICKET_C")"
expect_output "D, written only to the AOF, still waits third after Redis was killed" '"position":3' "$(status_at "$NGINX" "$TICKET_D")"
check "docker-ops.sh health exits 0 again" ops health
for v in A B C; do
  if grep -q '^gave-up' "$TMP/ws-$v.log"; then fail "visitor $v kept the place through Redis's outages" "$(grep '^gave-up' "$TMP/ws-$v.log")"; else pass "visitor $v kept the place through Redis's outages"; fi
  check "visitor $v's live channel stayed open through Redis's outages" test "$(closes_of "$v")" = "${closes_before[$v]}"
done
stop_clients

logs="$(cd "$WORK" && docker-compose logs --no-color 2>&1)"
leaks=()
for secret in "$TICKET_A" "$TICKET_B" "$TICKET_C" "$TICKET_D" "$ADMIN_TOKEN" "$API_KEY"; do
  [[ -n "$secret" && "$logs" == *"$secret"* ]] && leaks+=("${secret:0:6}...")
done
if ((${#leaks[@]} == 0)); then
  pass "no ticket, API key or admin token in any container's log ($(wc -l <<<"$logs") lines)"
else
  fail "no ticket, API key or admin token in any container's log" "${leaks[@]}"
fi

output="$(cd "$WORK" && docker-compose down --volumes 2>&1)" && code=0 || code=$?
expect_code "docker-compose down --volumes (scale) exits 0" 0 "$code" "$output"
check "no container of the scale stack is left" test -z "$(docker ps -aq --filter label=com.docker.compose.project=voice-broker-scale)"

# =============================================================================================
if [[ "${VB_SKIP_SENTINEL:-0}" == 1 ]]; then
  echo "== Sentinel part skipped (VB_SKIP_SENTINEL=1)"
else
  echo "== docker/compose.sentinel.yml: a master, a replica, three sentinels, two instances, nginx"
  APP1="$(free_port)"
  APP2="$(free_port)"
  NGINX="$(free_port)"
  REDIS="$(free_port)"
  REPLICA="$(free_port)"
  S1="$(free_port)"
  S2="$(free_port)"
  S3="$(free_port)"
  export VB_APP1_PORT="$APP1" VB_APP2_PORT="$APP2" VB_HOST_PORT="$NGINX" VB_REDIS_PORT="$REDIS" \
    VB_REDIS_REPLICA_PORT="$REPLICA" VB_SENTINEL1_PORT="$S1" VB_SENTINEL2_PORT="$S2" VB_SENTINEL3_PORT="$S3" \
    VB_SENTINEL_DOWN_AFTER_MS=2000 VB_SENTINEL_FAILOVER_TIMEOUT_MS=10000
  write_env "VB_STACK=sentinel"
  export COMPOSE_FILE=docker/compose.sentinel.yml COMPOSE_PROJECT_NAME=voice-broker-sentinel
  t0=$SECONDS
  output="$(ops start 2>&1)" && code=0 || code=$?
  expect_code "docker-ops.sh start (sentinel) exits 0 ($((SECONDS - t0)) s)" 0 "$code" "$(tail -n 40 <<<"$output")"
  check "every port (nginx, two instances, master, replica, three sentinels) listens on loopback only" \
    loopback_only "$NGINX" "$APP1" "$APP2" "$REDIS" "$REPLICA" "$S1" "$S2" "$S3"
  master_port() { docker exec "$(container_of sentinel1)" redis-cli -p "$S1" sentinel get-master-addr-by-name mymaster 2>/dev/null | tail -n 1; }
  expect_output "the sentinels know redis1 as the master" "$REDIS" "$(master_port)"
  replicas_seen() { [[ "$(docker exec "$(container_of redis1)" redis-cli -p "$REDIS" info replication)" == *connected_slaves:1* ]]; }
  check "redis2 replicates the master" wait_until 30 replicas_seen
  join_a="$(join_at "$APP1")"
  join_b="$(join_at "$NGINX")"
  TICKET_A="$(ticket_of "$join_a")"
  TICKET_B="$(ticket_of "$join_b")"
  expect_output "A joins on app1 and talks" '"state":"active"' "$join_a"
  expect_output "B's place (1) is the same on app2" '"position":1' "$(status_at "$APP2" "$TICKET_B")"
  start_visitor SA "$TICKET_A" "$NGINX"
  start_visitor SB "$TICKET_B" "$NGINX"
  wait_until 15 has_status SA || true
  wait_until 15 has_status SB || true
  # The replica must hold the places before the master goes (replication is asynchronous).
  seq_on() { docker exec "$(container_of "$1")" redis-cli -p "$2" get '{vb}:seq' 2>/dev/null; }
  replicated() { [[ -n "$(seq_on redis1 "$REDIS")" && "$(seq_on redis2 "$REPLICA")" == "$(seq_on redis1 "$REDIS")" ]]; }
  check "the replica has every join (the same {vb}:seq as the master)" wait_until 10 replicated

  echo "== failover: the master stopped"
  for v in SA SB; do closes_before[$v]="$(closes_of "$v")"; done
  docker stop -t 5 "$(container_of redis1)" >/dev/null
  t0=$(date +%s%N)
  # Joins through nginx every 0.2 s from the master's death until one succeeds: the failover
  # window as a visitor meets it.
  refused=()
  first_join_ms=''
  join_c=''
  while (((($(date +%s%N) - t0) / 1000000) < 30000)); do
    answer="$(curl -sS --max-time 5 -w '\n%{http_code}' -X POST "http://127.0.0.1:$NGINX/api/session?action=join" 2>&1 || true)"
    if [[ "${answer##*$'\n'}" == 200 ]]; then
      first_join_ms=$((($(date +%s%N) - t0) / 1000000))
      join_c="${answer%$'\n'*}"
      break
    fi
    refused+=("${answer##*$'\n'}:$(field_of code "$answer")")
    sleep 0.2
  done
  # Issue 13's target: down-after-milliseconds (2000) + 3 s.
  if [[ -n "$first_join_ms" ]] && ((first_join_ms <= 5000)); then
    pass "a join succeeds ${first_join_ms} ms after the master's stop (down-after-milliseconds 2000; ${#refused[@]} refused before)"
  else
    fail "a join succeeds within 5 s of the master's stop (down-after-milliseconds 2000 + 3 s)" "${first_join_ms:-none within 30 s}" "${refused[@]}"
  fi
  unexpected="$(printf '%s\n' "${refused[@]}" | grep -v -x '503:store_unavailable' || true)"
  if [[ -z "$unexpected" ]]; then
    pass "every join refused during the failover window answered 503 store_unavailable (${#refused[@]})"
  else
    fail "every join refused during the failover window answered 503 store_unavailable" "$unexpected"
  fi
  # A join answered 503 whose script ran on the new master (its WAIT found no replica yet) left a
  # place nobody was told of: it is taken back, so this visitor's place is 2 at the latest moments
  # after (the join may answer 3 while an instance has yet to take one back).
  TICKET_C="$(ticket_of "$join_c")"
  behind_b() { [[ "$(status_at "$NGINX" "$TICKET_C")" == *'"position":2'* ]]; }
  if wait_until 5 behind_b; then pass "that visitor is queued behind B (position 2)"; else fail "that visitor is queued behind B (position 2)" "$(status_at "$NGINX" "$TICKET_C")"; fi
  switched() { [[ "$(master_port)" == "$REPLICA" ]]; }
  check "the sentinels promoted redis2" wait_until 10 switched
  for port in "$APP1" "$APP2"; do
    if wait_until 30 ready_at "$port"; then pass "127.0.0.1:$port follows the new master without a restart"; else fail "127.0.0.1:$port follows the new master" "$(health_at "$port")"; fi
  done
  expect_output "A still talks after the failover" '"state":"active"' "$(status_at "$NGINX" "$TICKET_A")"
  expect_output "B still waits first after the failover" '"position":1' "$(status_at "$NGINX" "$TICKET_B")"
  for v in SA SB; do
    check "visitor $v's live channel stayed open through the failover" test "$(closes_of "$v")" = "${closes_before[$v]}"
  done
  docker start "$(container_of redis1)" >/dev/null
  rejoined() { [[ "$(docker exec "$(container_of redis1)" redis-cli -p "$REDIS" info replication 2>/dev/null)" == *role:slave* ]]; }
  if wait_until 40 rejoined; then pass "the old master comes back as a replica of the new one"; else fail "the old master comes back as a replica" "$(docker exec "$(container_of redis1)" redis-cli -p "$REDIS" info replication 2>&1 | head -n 5)"; fi
  output="$(ops rolling-restart 2>&1)" && code=0 || code=$?
  expect_code "docker-ops.sh rolling-restart (sentinel) exits 0" 0 "$code" "$(tail -n 20 <<<"$output")"
  expect_output "B still waits first after the rolling restart" '"position":1' "$(status_at "$NGINX" "$TICKET_B")"
  for v in SA SB; do
    if grep -q '^gave-up' "$TMP/ws-$v.log"; then fail "visitor $v kept the place through the failover" "$(grep '^gave-up' "$TMP/ws-$v.log")"; else pass "visitor $v kept the place through the failover and the rolling restart"; fi
  done
  output="$(ops health 2>&1)" && code=0 || code=$?
  expect_code "docker-ops.sh health (sentinel) exits 0" 0 "$code" "$output"
  stop_clients
  output="$(cd "$WORK" && docker-compose down --volumes 2>&1)" && code=0 || code=$?
  expect_code "docker-compose down --volumes (sentinel) exits 0" 0 "$code" "$output"
fi

echo
echo "build ${BUILD_SECONDS} s; rolling restart of 3 instances ${ROLLING_SECONDS} s; first join after the master's stop ${first_join_ms:-?} ms; wall time $((SECONDS - STARTED_AT)) s"
summary
