#!/usr/bin/env bash
# Real-Docker check of the deployment: builds the image from the real Dockerfile and source,
# runs it with docker-ops.sh, docker-compose and the npm aliases, and checks what an operator
# relies on (health, non-root, read-only root, graceful SIGTERM, complete runtime libraries).
#
# It starts its own dockerd (no iptables, no bridge) on a private socket and uses host
# networking only; every server binds 127.0.0.1.  Needs root and Debian's apt.
#
#   sudo tests/deploy/docker.sh
#
# Environment: VB_DOCKER_CACHE (default /var/tmp/voice-broker-docker; "none" = a throwaway
# data root), VB_KEEP_WORK=1 keeps the temporary folder for inspection.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=tests/deploy/lib.sh
source "$HERE/lib.sh"

STARTED_AT=$SECONDS
[[ "$(id -u)" == 0 ]] || {
  echo "docker.sh needs root (it starts its own dockerd)." >&2
  exit 2
}

# shellcheck source=tests/deploy/docker-engine.sh
source "$HERE/docker-engine.sh"

WS_PID=''
cleanup() {
  local code=$?
  set +e
  [[ -n "$WS_PID" ]] && kill -TERM "$WS_PID" 2>/dev/null
  engine_stop
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

engine_start docker
if [[ ! -d "$HERE/node_modules/ws" ]]; then
  (cd "$HERE" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
engine_base_images

# --- a private copy of the tree, with a test .env.local ---------------------------------
WORK="$TMP/work"
engine_copy_tree "$WORK"

PORT="$(free_port)"
ADMIN_TOKEN="test-admin-token-$RANDOM$RANDOM"
cat >"$WORK/.env.local" <<EOF
OPENAI_API_KEY=sk-test-not-a-real-key
ADMIN_TOKEN=$ADMIN_TOKEN
LOG_LEVEL=info
SHUTDOWN_GRACE_SECONDS=10
EOF
export VB_HOST_PORT="$PORT"
export VB_CONTAINER_NAME=voice-broker-test
# docker-compose 1.29 refuses host networking next to published ports, and an override cannot
# take a list entry away (Compose v2 has `!reset`), so the base file and the host override are
# merged by compose itself and the ports dropped from the merged file.
merged="$(cd "$WORK" && docker-compose -f docker-compose.yml -f tests/deploy/compose.host.yml config)"
awk '/^    ports:$/ { skip = 1; next } skip && /^    - / { next } { skip = 0; print }' \
  <<<"$merged" >"$WORK/compose.host-merged.yml"
export COMPOSE_FILE=compose.host-merged.yml
export COMPOSE_PROJECT_NAME=vbtest
export VB_START_TIMEOUT=60
export NO_COLOR=1
CONTAINER="$VB_CONTAINER_NAME"
BASE_URL="http://127.0.0.1:$PORT"
ops() { (cd "$WORK" && ./docker-ops.sh "$@"); }
in_container() { docker exec "$CONTAINER" "$@"; }
health_status() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$CONTAINER" 2>/dev/null; }
is_healthy() { [[ "$(health_status)" == healthy ]]; }
networks_before="$(docker network ls -q | sort)"

# --- build ------------------------------------------------------------------------------
echo "== build (docker-ops.sh build)"
t0=$SECONDS
if output="$(ops build 2>&1)"; then
  pass "docker-ops.sh build builds the image ($((SECONDS - t0)) s)"
else
  fail "docker-ops.sh build builds the image" "$(tail -n 40 <<<"$output")"
  summary
  exit 1
fi
BUILD_SECONDS=$((SECONDS - t0))

IMAGE_BYTES="$(docker image inspect -f '{{.Size}}' voice-broker:latest)"
IMAGE_MB=$((IMAGE_BYTES / 1000000))
echo "   image size: ${IMAGE_MB} MB ($IMAGE_BYTES bytes), build ${BUILD_SECONDS} s"
check "image is smaller than 200 MB (${IMAGE_MB} MB)" test "$IMAGE_BYTES" -lt 200000000
check "image runs as user 10001" test "$(docker image inspect -f '{{.Config.User}}' voice-broker:latest)" = 10001:10001
expect_output "image HEALTHCHECK runs voice-broker --healthcheck" "voice-broker --healthcheck" \
  "$(docker image inspect -f '{{join .Config.Healthcheck.Test " "}}' voice-broker:latest)"
expect_output "image exposes 3000/tcp" "3000/tcp" "$(docker image inspect -f '{{json .Config.ExposedPorts}}' voice-broker:latest)"
check "image stop signal is SIGTERM" test "$(docker image inspect -f '{{.Config.StopSignal}}' voice-broker:latest)" = SIGTERM
expect_output "tini is the entrypoint" "/usr/bin/tini" "$(docker image inspect -f '{{json .Config.Entrypoint}}' voice-broker:latest)"
expect_output "image sets HOST=0.0.0.0" "HOST=0.0.0.0" "$(docker image inspect -f '{{json .Config.Env}}' voice-broker:latest)"

run_image() { docker run --rm --network none --entrypoint "$1" voice-broker:latest "${@:2}"; }
ldd_output="$(run_image ldd /usr/local/bin/voice-broker 2>&1 || true)"
if [[ -n "$ldd_output" && "$ldd_output" != *"not found"* && "$ldd_output" == *libc.so* ]]; then
  pass "every library the binary links is in the image (ldd)"
else
  fail "every library the binary links is in the image (ldd)" "$ldd_output"
fi
indent "   ldd: " "$ldd_output"
version_output="$(run_image voice-broker --version 2>&1 || true)"
if [[ "$version_output" =~ voice-broker\ [0-9]+\.[0-9]+\.[0-9]+ ]]; then
  pass "voice-broker --version runs in the image (${BASH_REMATCH[0]})"
else
  fail "voice-broker --version runs in the image" "$version_output"
fi
check "voice-broker --check-config accepts .env.example" \
  docker run --rm --network none --env-file "$WORK/.env.example" -e HOST=0.0.0.0 -e PORT=3000 -e STATIC_DIR=/app/static \
  voice-broker:latest voice-broker --check-config
check "the image holds static/ and config/" run_image sh -c 'test -d /app/static && test -d /app/config'
leaked="$(run_image sh -c 'find / -xdev \( -name ".env*" -o -name "*.pem" -o -name "*.key" -o -name node_modules -o -name .git \) -not -path "/etc/ssl/*" -not -path "/usr/lib/ssl/*" -not -path "/usr/share/ca-certificates/*" 2>/dev/null' || true)"
if [[ -z "$leaked" ]]; then
  pass "no .env, keys, node_modules or .git in the image"
else
  fail "no .env, keys, node_modules or .git in the image" "$leaked"
fi

# --- docker-ops.sh start / status / logs / restart / stop -------------------------------
echo "== docker-ops.sh start on 127.0.0.1:$PORT"
output="$(ops start 2>&1)" && code=0 || code=$?
expect_code "docker-ops.sh start exits 0" 0 "$code" "$(tail -n 30 <<<"$output")"
check "the container is healthy through its own HEALTHCHECK" is_healthy
health_json="$(curl -fsS --max-time 5 "$BASE_URL/api/health" 2>&1 || true)"
expect_output "/api/health answers status ok" '"status":"ok"' "$health_json"
listens_on_loopback_only() {
  local addresses
  addresses="$(ss -Htln "sport = :$1" | awk '{print $4}')"
  [[ "$addresses" == "127.0.0.1:$1" ]]
}
check "the server listens on 127.0.0.1:$PORT only" listens_on_loopback_only "$PORT"
uid="$(in_container id -u 2>&1 || true)"
if [[ "$uid" =~ ^[0-9]+$ && "$uid" != 0 ]]; then pass "the container runs as non-root (uid $uid)"; else fail "the container runs as non-root" "$uid"; fi
pid1="$(in_container cat /proc/1/comm 2>&1 || true)"
if [[ "$pid1" == docker-init || "$pid1" == tini ]]; then pass "an init ($pid1) is PID 1"; else fail "an init is PID 1" "$pid1"; fi
expect_output "the root filesystem is read-only" "Read-only file system" \
  "$(in_container sh -c 'touch /app/probe' 2>&1 || true)"
check "/tmp is a writable tmpfs" in_container sh -c 'touch /tmp/probe && rm /tmp/probe'
ldd_live="$(in_container ldd /usr/local/bin/voice-broker 2>&1 || true)"
if [[ "$ldd_live" != *"not found"* && "$ldd_live" == *libc.so* ]]; then pass "ldd inside the running container finds every library"; else fail "ldd inside the running container finds every library" "$ldd_live"; fi

output="$(ops status 2>&1)" && code=0 || code=$?
expect_code "docker-ops.sh status exits 0" 0 "$code" "$output"
expect_output "status shows the health" "healthy" "$output"
expect_output "status shows /api/health" "/api/health: ok" "$output"
expect_output "status shows the session summary" "activeSessions 0/1" "$output"
indent "   status: " "$output"

check "docker-ops.sh health exits 0" ops health

stats="$(curl -fsS --max-time 5 "$BASE_URL/api/session?action=stats" 2>&1 || true)"
expect_output "stats answer with maxConcurrentUsers" '"maxConcurrentUsers":1' "$stats"
force="$(curl -sS --max-time 5 -H "x-admin-token: $ADMIN_TOKEN" "$BASE_URL/api/session?action=forceEndAll" 2>&1 || true)"
expect_output "forceEndAll works with ADMIN_TOKEN from .env.local" '"success":true' "$force"

# The limits file is mounted from the host; reload applies it through SIGHUP, without a restart.
started_before="$(docker inspect -f '{{.State.StartedAt}}' "$CONTAINER")"
sed -i 's/"MAX_CONCURRENT_USERS": 1/"MAX_CONCURRENT_USERS": 2/' "$WORK/config/session-limits.json"
output="$(ops reload 2>&1)" && code=0 || code=$?
expect_code "docker-ops.sh reload exits 0" 0 "$code" "$output"
stats="$(curl -fsS --max-time 5 "$BASE_URL/api/session?action=stats" 2>&1 || true)"
expect_output "reload applied config/session-limits.json from the host" '"maxConcurrentUsers":2' "$stats"
check "reload did not restart the container" test "$(docker inspect -f '{{.State.StartedAt}}' "$CONTAINER")" = "$started_before"

output="$(ops logs 2>&1)" && code=0 || code=$?
expect_code "docker-ops.sh logs exits 0" 0 "$code" "$output"
if [[ -n "$output" ]]; then pass "docker-ops.sh logs shows the server's log"; else fail "docker-ops.sh logs shows the server's log"; fi
if grep -q "sk-test-not-a-real-key\|$ADMIN_TOKEN" <<<"$output"; then
  fail "the log does not contain the API key or the admin token"
else
  pass "the log does not contain the API key or the admin token"
fi
log_opts="$(docker inspect -f '{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config "max-size"}} {{index .HostConfig.LogConfig.Config "max-file"}}' "$CONTAINER")"
expect_output "json-file logs are rotated (max-size, max-file)" "json-file 10m 5" "$log_opts"
check "the restart policy is unless-stopped" test "$(docker inspect -f '{{.HostConfig.RestartPolicy.Name}}' "$CONTAINER")" = unless-stopped

started_before="$(docker inspect -f '{{.State.StartedAt}}' "$CONTAINER")"
output="$(ops restart 2>&1)" && code=0 || code=$?
expect_code "docker-ops.sh restart exits 0" 0 "$code" "$output"
check "the container is healthy after restart" is_healthy
check "restart gave a new container start" test "$(docker inspect -f '{{.State.StartedAt}}' "$CONTAINER")" != "$started_before"

shell_output="$(printf 'id -u\npwd\n' | ops shell 2>&1 || true)"
expect_output "docker-ops.sh shell opens a shell in /app as the unprivileged user" $'10001\n/app' "$shell_output"

page_headers="$(curl -sS --max-time 5 -D - -o /dev/null -H 'Accept-Encoding: gzip' "$BASE_URL/" 2>&1 || true)"
expect_output "the page is served gzip-compressed" "content-encoding: gzip" "${page_headers,,}"
expect_output "the page carries a Content-Security-Policy" "content-security-policy:" "${page_headers,,}"

# restart: unless-stopped brings the server back when it dies.
restarts_before="$(docker inspect -f '{{.RestartCount}}' "$CONTAINER")"
# shellcheck disable=SC2016 # expanded by the shell inside the container
in_container sh -c 'for p in /proc/[0-9]*; do [ "$(cat "$p/comm" 2>/dev/null)" = voice-broker ] && kill -KILL "${p#/proc/}"; done' || true
restarted() { (("$(docker inspect -f '{{.RestartCount}}' "$CONTAINER")" > restarts_before)) && is_healthy; }
if wait_until 60 restarted; then
  pass "a killed server is restarted by Docker and healthy again"
else
  fail "a killed server is restarted by Docker and healthy again" "$(docker inspect -f '{{.State.Status}} {{.RestartCount}}' "$CONTAINER")"
fi

echo "== npm aliases"
for alias in docker:status docker:logs docker:health; do
  output="$(cd "$WORK" && npm run --silent "$alias" 2>&1)" && code=0 || code=$?
  expect_code "npm run $alias exits 0" 0 "$code" "$(tail -n 20 <<<"$output")"
done
# logs:follow keeps following until interrupted: still running after 3 s, having printed the log.
output="$(cd "$WORK" && timeout 3 npm run --silent docker:logs:follow 2>&1)" && code=0 || code=$?
expect_code "npm run docker:logs:follow follows until stopped" 124 "$code" "$(tail -n 5 <<<"$output")"
expect_output "docker:logs:follow prints the server's log" "listening on" "$output"
output="$(cd "$WORK" && docker-compose logs --tail 5 voice-broker 2>&1)" && code=0 || code=$?
expect_code "docker-compose logs (as in the old guide) works" 0 "$code" "$output"

echo "== SIGTERM: docker-ops.sh stop, with a visitor connected"
# A visitor holds the slot and the live channel; the stop must tell them and still be quick.
join="$(curl -fsS --max-time 5 -X POST "$BASE_URL/api/session?action=join" 2>&1 || true)"
ticket=''
[[ "$join" =~ \"ticket\"[[:space:]]*:[[:space:]]*\"([A-Za-z0-9_-]+)\" ]] && ticket="${BASH_REMATCH[1]}"
node "$HERE/ws-client.js" "ws://127.0.0.1:$PORT/api/session/ws?ticket=$ticket" --hold-ms 30000 \
  >"$TMP/ws.log" 2>&1 &
WS_PID=$!
if wait_until 10 grep -q '"type":"status"' "$TMP/ws.log"; then
  pass "a visitor is connected to the live channel before the stop"
else
  fail "a visitor is connected to the live channel before the stop" "$join" "$(cat "$TMP/ws.log")"
fi
t0=$(date +%s%N)
output="$(ops stop 2>&1)" && code=0 || code=$?
stop_ms=$((($(date +%s%N) - t0) / 1000000))
expect_code "docker-ops.sh stop exits 0" 0 "$code" "$output"
exit_code="$(docker inspect -f '{{.State.ExitCode}}' "$CONTAINER")"
state="$(docker inspect -f '{{.State.Status}}' "$CONTAINER")"
check "the container is stopped" test "$state" = exited
if ((stop_ms < 10000)) && [[ "$exit_code" != 137 ]]; then
  pass "SIGTERM stops it within SHUTDOWN_GRACE_SECONDS=10 (${stop_ms} ms, exit code $exit_code)"
else
  fail "SIGTERM stops it within SHUTDOWN_GRACE_SECONDS=10" "took ${stop_ms} ms, exit code $exit_code"
fi
check "the server exits 0 on SIGTERM" test "$exit_code" = 0
ws_done() { ! kill -0 "$WS_PID" 2>/dev/null; }
wait_until 10 ws_done || true
ws_code=0
wait "$WS_PID" 2>/dev/null || ws_code=$?
WS_PID=''
ws_log="$(cat "$TMP/ws.log")"
expect_code "the visitor's channel is closed by the server, not left hanging" 0 "$ws_code" "$ws_log"
expect_output "the visitor is told the session ended for a shutdown" '"shutdown"' "$ws_log"
expect_output "the channel closes with 1001 (going away)" "close 1001" "$ws_log"

output="$(ops health 2>&1)" && code=0 || code=$?
expect_code "docker-ops.sh health exits 7 when stopped" 7 "$code" "$output"

echo "== npm run docker:start / docker:restart / docker:stop"
for alias in docker:start docker:restart docker:stop; do
  output="$(cd "$WORK" && npm run --silent "$alias" 2>&1)" && code=0 || code=$?
  expect_code "npm run $alias exits 0" 0 "$code" "$(tail -n 20 <<<"$output")"
done

# A plain `docker run` with the image's own settings: tini as PID 1, SIGTERM through docker stop.
echo "== docker run with the image's defaults (host network, 127.0.0.1)"
docker run -d --name vb-plain --network host --read-only --tmpfs /tmp \
  -e HOST=127.0.0.1 -e PORT="$PORT" --health-interval 1s --health-start-period 1s \
  voice-broker:latest >/dev/null
if wait_until 60 sh -c "[ \"\$($DOCKER_BIN inspect -f '{{.State.Health.Status}}' vb-plain)\" = healthy ]"; then
  pass "docker run: the image becomes healthy on its own HEALTHCHECK"
else
  fail "docker run: the image becomes healthy on its own HEALTHCHECK" "$(docker logs --tail 20 vb-plain 2>&1)"
fi
check "docker run: tini is PID 1" test "$(docker exec vb-plain cat /proc/1/comm 2>&1)" = tini
t0=$(date +%s%N)
docker stop -t 30 vb-plain >/dev/null
stop_ms=$((($(date +%s%N) - t0) / 1000000))
exit_code="$(docker inspect -f '{{.State.ExitCode}}' vb-plain)"
if ((stop_ms < 10000)) && [[ "$exit_code" == 0 ]]; then
  pass "docker stop: graceful within the grace (${stop_ms} ms, exit 0)"
else
  fail "docker stop: graceful within the grace" "took ${stop_ms} ms, exit code $exit_code" "$(docker logs --tail 10 vb-plain 2>&1)"
fi
docker rm vb-plain >/dev/null

# --- docker-compose by hand, with the host-network override ------------------------------
echo "== docker-compose config / up -d / down"
config="$(cd "$WORK" && COMPOSE_FILE=docker-compose.yml:tests/deploy/compose.host.yml docker-compose config 2>&1)" && code=0 || code=$?
expect_code "docker-compose config (base + host override) exits 0" 0 "$code" "$config"
check "the merged test file has no published ports" sh -c "! grep -q 'ports:' '$WORK/compose.host-merged.yml'"
expect_output "the override puts the service on the host network" "network_mode: host" "$config"
expect_output "stop_grace_period is longer than the server's 10 s" "stop_grace_period: 20s" "$config"
expect_output "compose sets init: true" "init: true" "$config"
expect_output "compose sets read_only: true" "read_only: true" "$config"
expect_output "the data folder (DATA_DIR) is a volume" "/app/data" "$config"

output="$(cd "$WORK" && docker-compose up -d 2>&1)" && code=0 || code=$?
expect_code "docker-compose up -d exits 0" 0 "$code" "$output"
if wait_until 60 is_healthy; then pass "docker-compose up: healthy"; else fail "docker-compose up: healthy" "$(docker logs --tail 20 "$CONTAINER" 2>&1)"; fi
output="$(cd "$WORK" && docker-compose down 2>&1)" && code=0 || code=$?
expect_code "docker-compose down exits 0" 0 "$code" "$output"
if docker inspect "$CONTAINER" >/dev/null 2>&1; then fail "docker-compose down removes the container"; else pass "docker-compose down removes the container"; fi
check "no Docker network was created (host networking only)" test "$(docker network ls -q | sort)" = "$networks_before"

# --- update and clean -------------------------------------------------------------------
echo "== docker-ops.sh update / clean"
output="$(cd "$WORK" && VB_SKIP_GIT_PULL=1 ./docker-ops.sh update 2>&1)" && code=0 || code=$?
expect_code "docker-ops.sh update (no pull) rebuilds and comes up healthy" 0 "$code" "$(tail -n 20 <<<"$output")"
# Keep the image's layers for docker-scale.sh (the next check, on the same data root): with a
# second tag, clean only takes the name voice-broker:latest away, and the next build of the
# same tree is all cache hits.
docker tag voice-broker:latest voice-broker:build-cache
output="$(ops clean 2>&1 </dev/null)" && code=0 || code=$?
expect_code "docker-ops.sh clean refuses without --yes when not interactive" 2 "$code" "$output"
output="$(ops clean --yes 2>&1)" && code=0 || code=$?
expect_code "docker-ops.sh clean --yes exits 0" 0 "$code" "$output"
if docker image inspect voice-broker:latest >/dev/null 2>&1; then fail "clean removes the image"; else pass "clean removes the image"; fi

echo
echo "image voice-broker:latest: ${IMAGE_MB} MB; build ${BUILD_SECONDS} s; wall time $((SECONDS - STARTED_AT)) s"
summary
