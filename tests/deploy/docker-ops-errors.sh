#!/usr/bin/env bash
# Drives docker-ops.sh through its error paths with a fake `docker` and a fake `docker-compose`
# first on PATH: Docker missing, daemon down, no .env.local, an empty OPENAI_API_KEY, an
# unhealthy container, a failed build; and, for the scaled stacks (VB_STACK=scale, sentinel),
# scale-up, scale-down, rolling-restart and deploy with instances that fail to come back; and
# checks messages, exit codes and what it ran (and in which order).  Needs no Docker.
#
#   tests/deploy/docker-ops-errors.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=tests/deploy/lib.sh
source "$HERE/lib.sh"

T="$(mktemp -d /tmp/vb-ops-errors.XXXXXX)"
STUB_PID=''
cleanup() {
  local code=$?
  if [[ -n "$STUB_PID" ]] && kill -0 "$STUB_PID" 2>/dev/null; then
    kill -TERM "$STUB_PID" 2>/dev/null || true
    wait "$STUB_PID" 2>/dev/null || true
  fi
  rm -rf "$T"
  exit "$code"
}
trap cleanup EXIT

# --- a PATH with only what docker-ops.sh needs, plus the fakes --------------------------------
SYSBIN="$T/sysbin"
mkdir -p "$SYSBIN"
for tool in bash env dirname timeout cp tail cat sleep grep git curl date touch; do
  if path="$(command -v "$tool")"; then ln -s "$path" "$SYSBIN/$tool"; fi
done
FAKEBIN="$T/fakebin"
mkdir -p "$FAKEBIN"
CALLS="$T/calls.log"
STATE_DIR="$T/fake-state"

# The fake docker: its answers are steered by FAKE_* variables, every call is recorded.
cat >"$FAKEBIN/docker" <<'EOF'
#!/usr/bin/env bash
printf 'docker %s\n' "$*" >>"$FAKE_CALLS"
# The stacks' containers are "cid-<service>"; FAKE_* lists of services steer them.
listed() { [[ " ${2:-} " == *" $1 "* ]]; }
exists() { ! listed "$1" "${FAKE_NO_CONTAINER:-}" || [[ -e "$FAKE_STATE_DIR/created-$1" ]]; }
state_of() {
  if [[ "$1" == cid-* ]]; then
    listed "${1#cid-}" "${FAKE_STOPPED:-}" && [[ ! -e "$FAKE_STATE_DIR/created-${1#cid-}" ]] && { echo exited; return; }
    echo running
  else
    echo "${FAKE_STATE:-running}"
  fi
}
health_of() {
  if [[ "$1" == cid-* ]]; then
    listed "${1#cid-}" "${FAKE_UNHEALTHY:-}" && { echo unhealthy; return; }
    echo healthy
  else
    echo "${FAKE_HEALTH:-healthy}"
  fi
}
case "$1" in
  info)
    case "${FAKE_DAEMON:-up}" in
      up) echo "Server Version: 24.0.0" ;;
      denied)
        echo "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock" >&2
        exit 1
        ;;
      *)
        echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
        exit 1
        ;;
    esac
    ;;
  compose)
    if [[ "${FAKE_COMPOSE_V2:-0}" == 1 ]]; then
      [[ "$2" == version ]] && { echo "Docker Compose version v2.29.0"; exit 0; }
      [[ "${FAKE_COMPOSE_FAIL:-0}" == 1 ]] && exit 1
      exit 0
    fi
    echo "docker: 'compose' is not a docker command." >&2
    exit 1
    ;;
  ps)
    service=''
    for arg in "$@"; do [[ "$arg" == label=com.docker.compose.service=* ]] && service="${arg#label=com.docker.compose.service=}"; done
    [[ -n "$service" ]] && exists "$service" && echo "cid-$service"
    exit 0
    ;;
  inspect)
    target="${*: -1}"
    [[ "$target" != cid-* && "${FAKE_STATE:-running}" == missing ]] && { echo "Error: No such object: $*" >&2; exit 1; }
    if [[ "$2" == -f ]]; then
      case "$3" in
        *Health.Log*) echo "healthcheck: GET http://127.0.0.1:3000/api/health failed: connection refused" ;;
        *Health*) health_of "$target" ;;
        *State.Status*) state_of "$target" ;;
        *StartedAt*) echo "2026-01-01T00:00:00Z" ;;
        *RestartCount*) echo 0 ;;
        *Config.Image*) echo "voice-broker:latest" ;;
        *.Size*) echo 91000000 ;;
        *) echo "?" ;;
      esac
    else
      echo '[{}]'
    fi
    ;;
  image) echo 91000000 ;;
  logs) printf '%s\n' "${FAKE_LOGS:-fake log line}" ;;
  exec)
    target="$2"
    [[ "$target" == -i || "$target" == -it ]] && target="$3"
    service="${target#cid-}"
    if [[ "$*" == *"voice-broker --healthcheck"* ]]; then
      if listed "$service" "${FAKE_DEGRADED:-}" ||
        { listed "$service" "${FAKE_DEGRADED_AFTER_RECREATE:-}" && [[ -e "$FAKE_STATE_DIR/recreated-$service" ]]; }; then
        echo "healthy: http://127.0.0.1:3001/api/health: 200 {\"instance\":\"vb-$service\",\"status\":\"degraded\",\"store\":\"unreachable\",\"uptimeSeconds\":5,\"version\":\"9.9.9\"}"
      else
        echo "healthy: http://127.0.0.1:3001/api/health: 200 {\"instance\":\"vb-$service\",\"status\":\"ok\",\"store\":\"up\",\"uptimeSeconds\":5,\"version\":\"9.9.9\"}"
      fi
    elif [[ "$*" == *"voice-broker-nginx reload"* ]]; then
      [[ "${FAKE_NGINX_RELOAD_FAIL:-0}" == 1 ]] && { echo 'nginx: [emerg] unexpected "}" in /tmp/voice-broker-nginx/voice-broker.conf:12' >&2; exit 1; }
      exit 0
    else
      echo "fake exec"
    fi
    ;;
  *) exit 0 ;;
esac
EOF
cat >"$FAKEBIN/docker-compose" <<'EOF'
#!/usr/bin/env bash
printf 'docker-compose %s | COMPOSE_FILE=%s | PROJECT=%s\n' "$*" "${COMPOSE_FILE:-}" "${COMPOSE_PROJECT_NAME:-}" >>"$FAKE_CALLS"
if [[ "$1" == config && "${2:-}" == --services ]]; then
  case "${COMPOSE_FILE:-}" in
    *sentinel*) printf '%s\n' redis1 redis2 sentinel1 sentinel2 sentinel3 app1 app2 nginx ;;
    # Out of order on purpose: docker-ops.sh sorts the instances by number.
    *scale*) printf '%s\n' redis app3 app1 app2 nginx ;;
    *) echo voice-broker ;;
  esac
  exit 0
fi
[[ "${FAKE_COMPOSE_FAIL:-0}" == 1 ]] && { echo "ERROR: Service 'voice-broker' failed to build" >&2; exit 1; }
[[ "$1" == build && "${FAKE_BUILD_FAIL:-0}" == 1 ]] && { echo "ERROR: Service 'app1' failed to build" >&2; exit 1; }
if [[ "$1" == up ]]; then
  service="${*: -1}"
  [[ " ${FAKE_UP_FAIL:-} " == *" $service "* ]] && { echo "ERROR: for $service  Cannot start service $service" >&2; exit 1; }
  for arg in "${@:2}"; do [[ "$arg" != -* ]] && touch "$FAKE_STATE_DIR/created-$arg"; done
  [[ "$*" == *--force-recreate* ]] && touch "$FAKE_STATE_DIR/recreated-$service"
fi
exit 0
EOF
chmod +x "$FAKEBIN/docker" "$FAKEBIN/docker-compose"
NO_DOCKER_BIN="$T/nodocker"
mkdir -p "$NO_DOCKER_BIN"

# A stand-in for the published port so `status` has JSON to summarise.
STUB_PORT="$(free_port)"
node -e '
  const http = require("http");
  http.createServer((req, res) => {
    res.setHeader("Content-Type", "application/json");
    if (req.url === "/api/health") res.end(JSON.stringify({status: "ok", version: "9.9.9", uptimeSeconds: 42}));
    else res.end(JSON.stringify({activeSessions: 1, maxConcurrentUsers: 1, queueLength: 3, maxQueueLength: 50,
      sessionDurationMinutes: 5, sessions: [], today: {sessionsStarted: 7, sessionsCompleted: 6, minutesUsed: 31,
      estimatedCostUsd: 1.86}, uptimeSeconds: 42}));
  }).listen(Number(process.argv[1]), "127.0.0.1");' "$STUB_PORT" &
STUB_PID=$!
wait_until 10 curl -fsS --max-time 1 "http://127.0.0.1:$STUB_PORT/api/health" || {
  echo "the JSON stand-in did not start" >&2
  exit 1
}

# A fresh project folder per case: docker-ops.sh with the files it reads.
new_project() {
  local dir
  dir="$(mktemp -d "$T/project.XXXXXX")"
  cp "$ROOT/docker-ops.sh" "$ROOT/.env.example" "$ROOT/docker-compose.yml" "$dir/"
  printf '%s\n' "$dir"
}
SECRET="sk-test-$RANDOM$RANDOM-do-not-print"

# run_ops DIR PATHDIRS ARGS...: runs docker-ops.sh without a terminal; sets OUT and CODE.
run_ops() {
  local dir="$1" path="$2"
  shift 2
  local extra=()
  [[ -n "${EXTRA_ENV:-}" ]] && extra=("$EXTRA_ENV")
  : >"$CALLS"
  rm -rf "$STATE_DIR" && mkdir -p "$STATE_DIR"
  OUT="$(cd "$dir" && env -i PATH="$path" HOME="$T" FAKE_CALLS="$CALLS" FAKE_STATE_DIR="$STATE_DIR" \
    FAKE_DAEMON="${FAKE_DAEMON:-up}" FAKE_STATE="${FAKE_STATE:-running}" FAKE_HEALTH="${FAKE_HEALTH:-healthy}" \
    FAKE_COMPOSE_V2="${FAKE_COMPOSE_V2:-0}" FAKE_COMPOSE_FAIL="${FAKE_COMPOSE_FAIL:-0}" FAKE_LOGS="${FAKE_LOGS:-}" \
    FAKE_NO_CONTAINER="${FAKE_NO_CONTAINER:-}" FAKE_STOPPED="${FAKE_STOPPED:-}" FAKE_UNHEALTHY="${FAKE_UNHEALTHY:-}" \
    FAKE_DEGRADED="${FAKE_DEGRADED:-}" FAKE_DEGRADED_AFTER_RECREATE="${FAKE_DEGRADED_AFTER_RECREATE:-}" \
    FAKE_UP_FAIL="${FAKE_UP_FAIL:-}" FAKE_BUILD_FAIL="${FAKE_BUILD_FAIL:-0}" FAKE_NGINX_RELOAD_FAIL="${FAKE_NGINX_RELOAD_FAIL:-0}" \
    VB_START_TIMEOUT="${VB_START_TIMEOUT:-5}" VB_HOST_PORT="$STUB_PORT" "${extra[@]}" \
    ./docker-ops.sh "$@" </dev/null 2>&1)" && CODE=0 || CODE=$?
}
WITH_FAKES="$FAKEBIN:$SYSBIN"
WITHOUT_DOCKER="$NO_DOCKER_BIN:$SYSBIN"
calls() { cat "$CALLS"; }

# --- help and usage ---------------------------------------------------------------------------
P="$(new_project)"
run_ops "$P" "$WITH_FAKES" help
expect_code "help exits 0" 0 "$CODE" "$OUT"
for command in build start stop restart reload status logs logs:follow shell health clean update \
  scale-up scale-down rolling-restart deploy; do
  expect_output "help lists '$command'" "  $command " "$OUT"
done
run_ops "$P" "$WITH_FAKES" frobnicate
expect_code "an unknown command exits 2" 2 "$CODE" "$OUT"
expect_output "an unknown command is named" "Unknown command: frobnicate" "$OUT"
if [[ "$OUT" == *$'\e['* ]]; then fail "no colour codes without a terminal"; else pass "no colour codes without a terminal"; fi

# --- Docker missing -----------------------------------------------------------------------------
printf 'OPENAI_API_KEY=%s\n' "$SECRET" >"$P/.env.local"
for command in start build status; do
  run_ops "$P" "$WITHOUT_DOCKER" "$command"
  expect_code "docker missing: $command exits 3" 3 "$CODE" "$OUT"
  expect_output "docker missing: $command says so" "Docker is not installed" "$OUT"
done
expect_output "docker missing: the message says how to install it" "apt-get install docker.io" "$OUT"

# --- daemon down ----------------------------------------------------------------------------------
FAKE_DAEMON=down run_ops "$P" "$WITH_FAKES" start
expect_code "daemon down: start exits 4" 4 "$CODE" "$OUT"
expect_output "daemon down: start says the daemon is not running" "daemon is not running" "$OUT"
expect_output "daemon down: start says how to start it" "systemctl start docker" "$OUT"
FAKE_DAEMON=down run_ops "$P" "$WITH_FAKES" status
expect_code "daemon down: status exits 4" 4 "$CODE" "$OUT"
FAKE_DAEMON=denied run_ops "$P" "$WITH_FAKES" start
expect_code "socket permission denied: exits 4" 4 "$CODE" "$OUT"
expect_output "socket permission denied: suggests the docker group" "docker group" "$OUT"

# --- compose detection ------------------------------------------------------------------------------
FAKE_COMPOSE_V2=1 run_ops "$P" "$WITH_FAKES" build
expect_code "compose v2: build exits 0" 0 "$CODE" "$OUT"
expect_output "compose v2: build runs 'docker compose build'" "docker compose build voice-broker" "$(calls)"
run_ops "$P" "$WITH_FAKES" build
expect_code "compose v1: build exits 0" 0 "$CODE" "$OUT"
expect_output "compose v1: build runs 'docker-compose build'" "docker-compose build voice-broker" "$(calls)"
rm "$FAKEBIN/docker-compose.off" 2>/dev/null || true
mv "$FAKEBIN/docker-compose" "$FAKEBIN/docker-compose.off"
run_ops "$P" "$WITH_FAKES" build
mv "$FAKEBIN/docker-compose.off" "$FAKEBIN/docker-compose"
expect_code "no compose at all: build exits 3" 3 "$CODE" "$OUT"
expect_output "no compose at all: says so" "Docker Compose is missing" "$OUT"
EXTRA_ENV="COMPOSE_FILE=docker-compose.yml:tests/deploy/compose.host.yml" run_ops "$P" "$WITH_FAKES" build
expect_output "COMPOSE_FILE from the environment reaches compose" \
  "COMPOSE_FILE=docker-compose.yml:tests/deploy/compose.host.yml" "$(calls)"
if grep -q -- 'docker-compose .*-f ' "$CALLS"; then
  fail "docker-ops.sh passes no -f (that would override COMPOSE_FILE)" "$(calls)"
else
  pass "docker-ops.sh passes no -f (that would override COMPOSE_FILE)"
fi
FAKE_COMPOSE_FAIL=1 run_ops "$P" "$WITH_FAKES" build
expect_code "a failed build exits 1" 1 "$CODE" "$OUT"
expect_output "a failed build says so" "image build failed" "$OUT"

# --- .env.local missing ---------------------------------------------------------------------------
P="$(new_project)"
for command in start build restart; do
  run_ops "$P" "$WITH_FAKES" "$command"
  expect_code "no .env.local: $command exits 5" 5 "$CODE" "$OUT"
  expect_output "no .env.local: $command names the file" ".env.local is missing" "$OUT"
  expect_output "no .env.local: $command prints the command to create it" "cp .env.example .env.local" "$OUT"
done
check "no .env.local: nothing is created without a terminal" test ! -e "$P/.env.local"
if [[ "$(calls)" == *docker-compose* ]]; then fail "no .env.local: compose is not run" "$(calls)"; else pass "no .env.local: compose is not run"; fi

# On a terminal it offers to create the file from the template.
if SCRIPT="$(command -v script)"; then
  : >"$CALLS"
  tty_out="$(cd "$P" && printf 'y\n' | env -i PATH="$WITH_FAKES" HOME="$T" TERM=xterm FAKE_CALLS="$CALLS" \
    timeout 20 "$SCRIPT" -qec "./docker-ops.sh build" /dev/null 2>&1)" && CODE=0 || CODE=$?
  expect_code "terminal: answering y creates .env.local and goes on" 0 "$CODE" "$tty_out"
  expect_output "terminal: the prompt is shown" "Create .env.local from .env.example now? [y/N]" "$tty_out"
  check "terminal: .env.local is a copy of .env.example" cmp -s "$P/.env.example" "$P/.env.local"
  check "terminal: .env.local is readable by its owner only" test "$(stat -c %a "$P/.env.local" 2>/dev/null)" = 600
  if [[ "$tty_out" == *$'\e['* ]]; then pass "terminal: output is coloured"; else fail "terminal: output is coloured" "$tty_out"; fi
  tty_out="$(cd "$P" && env -i PATH="$WITH_FAKES" HOME="$T" TERM=xterm NO_COLOR=1 FAKE_CALLS="$CALLS" \
    timeout 20 "$SCRIPT" -qec "./docker-ops.sh frobnicate" /dev/null 2>&1 </dev/null)" || true
  if [[ "$tty_out" == *$'\e['* ]]; then fail "terminal: NO_COLOR turns colour off" "$tty_out"; else pass "terminal: NO_COLOR turns colour off"; fi
  rm -f "$P/.env.local"
  tty_out="$(cd "$P" && printf 'n\n' | env -i PATH="$WITH_FAKES" HOME="$T" TERM=xterm FAKE_CALLS="$CALLS" \
    timeout 20 "$SCRIPT" -qec "./docker-ops.sh start" /dev/null 2>&1)" || true
  check "terminal: answering n creates nothing" test ! -e "$P/.env.local"
  expect_output "terminal: answering n still says what to do" "cp .env.example .env.local" "$tty_out"
else
  fail "terminal checks need 'script' (util-linux)"
fi

# --- an empty OPENAI_API_KEY --------------------------------------------------------------------------
P="$(new_project)"
empty_forms=('OPENAI_API_KEY=' 'OPENAI_API_KEY=""' "OPENAI_API_KEY=''" 'OPENAI_API_KEY=   # paste the key here'
  'export OPENAI_API_KEY=' "OPENAI_API_KEY=$SECRET"$'\nOPENAI_API_KEY=')
for form in "${empty_forms[@]}"; do
  printf 'ADMIN_TOKEN=abc\n%s\nLOG_LEVEL=info\n' "$form" >"$P/.env.local"
  run_ops "$P" "$WITH_FAKES" start
  expect_code "empty key [${form//$'\n'/ then }]: start exits 6" 6 "$CODE" "$OUT"
done
expect_output "empty key: the message names the setting and the file" "OPENAI_API_KEY is empty in .env.local" "$OUT"
expect_output "empty key: the message offers the override" "ALLOW_NO_OPENAI_KEY=1" "$OUT"
if [[ "$(calls)" == *"docker-compose up"* ]]; then fail "empty key: the container is not started" "$(calls)"; else pass "empty key: the container is not started"; fi
run_ops "$P" "$WITH_FAKES" restart
expect_code "empty key: restart exits 6 too" 6 "$CODE" "$OUT"
run_ops "$P" "$WITH_FAKES" build
expect_code "empty key: build still works (the key is a run-time setting)" 0 "$CODE" "$OUT"
EXTRA_ENV="ALLOW_NO_OPENAI_KEY=1" run_ops "$P" "$WITH_FAKES" start
expect_code "empty key with ALLOW_NO_OPENAI_KEY=1: start goes on" 0 "$CODE" "$OUT"
expect_output "empty key with ALLOW_NO_OPENAI_KEY=1: it warns" "OPENAI_API_KEY is empty" "$OUT"
for form in "OPENAI_API_KEY=$SECRET" "OPENAI_API_KEY=\"$SECRET\"" "export OPENAI_API_KEY=$SECRET # prod" \
  $'OPENAI_API_KEY=\nOPENAI_API_KEY='"$SECRET"; do
  printf '%s\n' "$form" >"$P/.env.local"
  run_ops "$P" "$WITH_FAKES" start
  expect_code "key set [${form//$'\n'/ then }]: start exits 0" 0 "$CODE" "$OUT"
done
expect_output "start runs compose up" "docker-compose up -d voice-broker" "$(calls)"
expect_output "start waits for health" "is running and healthy" "$OUT"
if [[ "$OUT" == *"$SECRET"* ]]; then fail "the key is never printed" "$OUT"; else pass "the key is never printed"; fi

# --- unhealthy, stopped, missing container --------------------------------------------------------
FAKE_HEALTH=unhealthy run_ops "$P" "$WITH_FAKES" start
expect_code "unhealthy: start exits 7" 7 "$CODE" "$OUT"
expect_output "unhealthy: start says so" "is unhealthy" "$OUT"
expect_output "unhealthy: start shows the health check output" "connection refused" "$OUT"
expect_output "unhealthy: start shows the log tail" "fake log line" "$OUT"
FAKE_HEALTH=unhealthy run_ops "$P" "$WITH_FAKES" status
expect_code "unhealthy: status exits 7" 7 "$CODE" "$OUT"
expect_output "unhealthy: status shows the health" "health    unhealthy" "$OUT"
expect_output "unhealthy: status suggests a restart" "./docker-ops.sh restart" "$OUT"
FAKE_HEALTH=unhealthy run_ops "$P" "$WITH_FAKES" health
expect_code "unhealthy: health exits 7" 7 "$CODE" "$OUT"
FAKE_HEALTH=starting VB_START_TIMEOUT=2 run_ops "$P" "$WITH_FAKES" start
expect_code "never healthy: start gives up after VB_START_TIMEOUT with 7" 7 "$CODE" "$OUT"
expect_output "never healthy: says how long it waited" "did not become healthy within 2s" "$OUT"
FAKE_STATE=exited run_ops "$P" "$WITH_FAKES" start
expect_code "exits at once: start exits 7" 7 "$CODE" "$OUT"
expect_output "exits at once: start says it is not running" "is not running (state: exited)" "$OUT"
FAKE_STATE=exited run_ops "$P" "$WITH_FAKES" status
expect_code "stopped: status exits 7" 7 "$CODE" "$OUT"
expect_output "stopped: status says how to start it" "./docker-ops.sh start" "$OUT"
FAKE_STATE=missing run_ops "$P" "$WITH_FAKES" status
expect_code "no container: status exits 7" 7 "$CODE" "$OUT"
expect_output "no container: status says it does not exist" "does not exist" "$OUT"
FAKE_STATE=missing run_ops "$P" "$WITH_FAKES" logs
expect_code "no container: logs exits 7" 7 "$CODE" "$OUT"

# --- the healthy path of status, health, logs, clean -------------------------------------------------
run_ops "$P" "$WITH_FAKES" status
expect_code "healthy: status exits 0" 0 "$CODE" "$OUT"
expect_output "healthy: status reads /api/health" "/api/health: ok, version 9.9.9, up 42 s" "$OUT"
expect_output "healthy: status summarises the sessions" "activeSessions 1/1, queueLength 3/50, 5 min per session" "$OUT"
expect_output "healthy: status shows today's usage" "started 7, completed 6, 31 min, ~\$1.86" "$OUT"
run_ops "$P" "$WITH_FAKES" health
expect_code "healthy: health exits 0" 0 "$CODE" "$OUT"
run_ops "$P" "$WITH_FAKES" logs
expect_code "logs exits 0" 0 "$CODE" "$OUT"
expect_output "logs reads the container's log" "docker logs --tail 200 voice-broker" "$(calls)"
run_ops "$P" "$WITH_FAKES" logs:follow
expect_output "logs:follow follows" "docker logs --tail 200 --follow voice-broker" "$(calls)"
run_ops "$P" "$WITH_FAKES" clean
expect_code "clean without a terminal and without --yes exits 2" 2 "$CODE" "$OUT"
if [[ "$(calls)" == *"docker-compose down"* ]]; then fail "clean without --yes removes nothing" "$(calls)"; else pass "clean without --yes removes nothing"; fi
run_ops "$P" "$WITH_FAKES" clean --yes
expect_code "clean --yes exits 0" 0 "$CODE" "$OUT"
expect_output "clean --yes removes the container and the image" "docker-compose down --rmi all" "$(calls)"
FAKE_LOGS="2026-01-01T00:00:00Z info session limits reloaded: 2 slot(s), 300 s sessions, queue of 50" \
  run_ops "$P" "$WITH_FAKES" reload
expect_code "reload exits 0 when the server confirms" 0 "$CODE" "$OUT"
expect_output "reload sends SIGHUP to the container" "docker kill -s HUP voice-broker" "$(calls)"
expect_output "reload shows the new limits" "2 slot(s)" "$OUT"
FAKE_LOGS="2026-01-01T00:00:00Z error reload: invalid MAX_CONCURRENT_USERS=x (from config file): bad; keeping the running settings" \
  run_ops "$P" "$WITH_FAKES" reload
expect_code "reload of a bad file exits 1" 1 "$CODE" "$OUT"
expect_output "reload of a bad file shows why" "invalid MAX_CONCURRENT_USERS=x" "$OUT"
FAKE_STATE=missing run_ops "$P" "$WITH_FAKES" reload
expect_code "no container: reload exits 7" 7 "$CODE" "$OUT"
EXTRA_ENV="VB_SKIP_GIT_PULL=1" run_ops "$P" "$WITH_FAKES" update
expect_code "update (no pull) exits 0" 0 "$CODE" "$OUT"
expect_output "update rebuilds, then recreates" "docker-compose build voice-broker" "$(calls)"


# --- the scaled stacks: VB_STACK=scale / sentinel ---------------------------------------------------
P="$(new_project)"
printf 'OPENAI_API_KEY=%s\n' "$SECRET" >"$P/.env.local"
for command in rolling-restart deploy "scale-up" "scale-down 1"; do
  # shellcheck disable=SC2086 # "scale-down 1" is a command and its argument
  run_ops "$P" "$WITH_FAKES" $command
  expect_code "single stack: $command exits 2" 2 "$CODE" "$OUT"
  expect_output "single stack: $command says it needs several instances" "needs several instances: run it with VB_STACK=scale" "$OUT"
done
if [[ "$(calls)" == *"docker-compose up"* ]]; then fail "single stack: nothing is started by a scale command" "$(calls)"; else pass "single stack: nothing is started by a scale command"; fi
EXTRA_ENV="VB_STACK=huge" run_ops "$P" "$WITH_FAKES" status
expect_code "an unknown VB_STACK exits 2" 2 "$CODE" "$OUT"
expect_output "an unknown VB_STACK is named" "Unknown VB_STACK=huge: use single, scale or sentinel" "$OUT"

# VB_STACK in .env.local chooses the stack; the environment wins over it; COMPOSE_FILE over both.
printf 'OPENAI_API_KEY=%s\nVB_STACK=scale\n' "$SECRET" >"$P/.env.local"
run_ops "$P" "$WITH_FAKES" build
expect_code "VB_STACK=scale in .env.local: build exits 0" 0 "$CODE" "$OUT"
expect_output "scale: build builds one instance's image, Redis and nginx" \
  "docker-compose build app1 redis nginx | COMPOSE_FILE=docker/compose.scale.yml | PROJECT=voice-broker-scale" "$(calls)"
EXTRA_ENV="VB_STACK=sentinel" run_ops "$P" "$WITH_FAKES" build
expect_output "VB_STACK from the environment wins over .env.local" \
  "docker-compose build app1 redis1 redis2 sentinel1 sentinel2 sentinel3 nginx | COMPOSE_FILE=docker/compose.sentinel.yml | PROJECT=voice-broker-sentinel" "$(calls)"
EXTRA_ENV="COMPOSE_FILE=my/scale.yml" run_ops "$P" "$WITH_FAKES" build
expect_output "COMPOSE_FILE from the environment wins over the stack's file" "COMPOSE_FILE=my/scale.yml | PROJECT=voice-broker-scale" "$(calls)"
if grep -q -- 'docker-compose .*-f ' "$CALLS"; then fail "scale: no -f is passed" "$(calls)"; else pass "scale: no -f is passed"; fi

# start = scale-up: the store first, then app1, app2, app3 one at a time, then nginx.
FAKE_NO_CONTAINER="redis app1 app2 app3 nginx" run_ops "$P" "$WITH_FAKES" start
expect_code "scale: start from nothing exits 0" 0 "$CODE" "$OUT"
order="$(grep -o 'docker-compose up -d --no-deps [a-z0-9]*' "$CALLS" | sed 's/.* //' | tr '\n' ',')"
check "scale: start runs redis, app1, app2, app3, nginx in that order (${order})" test "$order" = "redis,app1,app2,app3,nginx,"
expect_output "scale: start waits for each instance's store" "app2 is ready (instance vb-app2, store up)" "$OUT"
expect_output "scale: start says where nginx listens" "3 instance(s) behind nginx on http://127.0.0.1:$STUB_PORT/" "$OUT"
FAKE_NO_CONTAINER="app3" run_ops "$P" "$WITH_FAKES" scale-up 2
expect_code "scale-up 2 exits 0" 0 "$CODE" "$OUT"
if [[ "$(calls)" == *"up -d --no-deps app3"* ]]; then fail "scale-up 2 leaves app3 alone" "$(calls)"; else pass "scale-up 2 leaves app3 alone"; fi
expect_output "scale-up 2 skips instances already ready" "app1 is already running and ready" "$OUT"
for bad in 0 4 two -1; do
  run_ops "$P" "$WITH_FAKES" scale-up "$bad"
  expect_code "scale-up $bad exits 2" 2 "$CODE" "$OUT"
done
expect_output "scale-up with a bad N names the instances" "N must be 1 to 3, the instances docker/compose.scale.yml defines (app1 app2 app3)" "$OUT"
FAKE_NO_CONTAINER="app1 app2 app3 nginx" FAKE_DEGRADED="app1" VB_START_TIMEOUT=2 run_ops "$P" "$WITH_FAKES" scale-up
expect_code "scale-up: an instance without its store stops the start with 7" 7 "$CODE" "$OUT"
expect_output "scale-up: says which instance and why" "app1 did not become ready within 2s" "$OUT"
expect_output "scale-up: shows its /api/health" '"store":"unreachable"' "$OUT"
if [[ "$(calls)" == *"--no-deps app2"* ]]; then fail "scale-up: nothing after the failed instance is started" "$(calls)"; else pass "scale-up: nothing after the failed instance is started"; fi
FAKE_UNHEALTHY="redis" FAKE_NO_CONTAINER="app1 app2 app3 nginx" run_ops "$P" "$WITH_FAKES" scale-up
expect_code "scale-up: an unhealthy Redis stops the start with 7" 7 "$CODE" "$OUT"
expect_output "scale-up: says Redis is unhealthy" "redis is unhealthy" "$OUT"

run_ops "$P" "$WITH_FAKES" scale-down
expect_code "scale-down without N exits 2" 2 "$CODE" "$OUT"
run_ops "$P" "$WITH_FAKES" scale-down 2
expect_code "scale-down 2 exits 0" 0 "$CODE" "$OUT"
expect_output "scale-down 2 stops app3" "docker-compose stop app3" "$(calls)"
if [[ "$(calls)" == *"stop app2"* || "$(calls)" == *"stop app1"* ]]; then fail "scale-down 2 keeps app1 and app2" "$(calls)"; else pass "scale-down 2 keeps app1 and app2"; fi
FAKE_DEGRADED="app1" run_ops "$P" "$WITH_FAKES" scale-down 1
expect_code "scale-down 1 with app1 not ready exits 7" 7 "$CODE" "$OUT"
if [[ "$(calls)" == *"docker-compose stop"* ]]; then fail "scale-down stops nothing when the kept ones are not ready" "$(calls)"; else pass "scale-down stops nothing when the kept ones are not ready"; fi

# rolling-restart: one at a time, each ready before the next; stops at the first that fails.
run_ops "$P" "$WITH_FAKES" rolling-restart
expect_code "rolling-restart exits 0" 0 "$CODE" "$OUT"
order="$(grep -o 'up -d --no-deps --force-recreate app[0-9]' "$CALLS" | sed 's/.* //' | tr '\n' ',')"
check "rolling-restart recreates app1, app2, app3 in order (${order})" test "$order" = "app1,app2,app3,"
expect_output "rolling-restart waits for each one" "app3 is ready (instance vb-app3, store up)" "$OUT"
expect_output "rolling-restart reports the end" "Rolling restart done: 3 instance(s) recreated one at a time" "$OUT"
if [[ "$(calls)" == *"up -d --no-deps --force-recreate redis"* || "$(calls)" == *"--force-recreate nginx"* ]]; then
  fail "rolling-restart leaves Redis and nginx alone" "$(calls)"
else
  pass "rolling-restart leaves Redis and nginx alone"
fi
FAKE_DEGRADED_AFTER_RECREATE="app2" VB_START_TIMEOUT=2 run_ops "$P" "$WITH_FAKES" rolling-restart
expect_code "rolling-restart: an instance that comes back without its store exits 7" 7 "$CODE" "$OUT"
expect_output "rolling-restart: names it" "app2 did not come back ready; the instances after it were left as they were" "$OUT"
if [[ "$(calls)" == *"--force-recreate app3"* ]]; then fail "rolling-restart: app3 is not touched after app2 failed" "$(calls)"; else pass "rolling-restart: app3 is not touched after app2 failed"; fi
FAKE_UP_FAIL="app1" run_ops "$P" "$WITH_FAKES" rolling-restart
expect_code "rolling-restart: a failed compose up exits 1" 1 "$CODE" "$OUT"
if [[ "$(calls)" == *"--force-recreate app2"* ]]; then fail "rolling-restart: nothing after a failed compose up" "$(calls)"; else pass "rolling-restart: nothing after a failed compose up"; fi
FAKE_STOPPED="app2 app3" run_ops "$P" "$WITH_FAKES" rolling-restart
expect_code "rolling-restart with one instance running exits 7" 7 "$CODE" "$OUT"
expect_output "rolling-restart with one instance says why" "needs at least two running instances (running: app1)" "$OUT"
FAKE_DEGRADED="app2 app3" run_ops "$P" "$WITH_FAKES" rolling-restart
expect_code "rolling-restart with no other instance ready exits 7" 7 "$CODE" "$OUT"
expect_output "rolling-restart with no other ready says so" "No other instance is ready to take app1's visitors" "$OUT"
if [[ "$(calls)" == *"--force-recreate"* ]]; then fail "rolling-restart stops nobody when nobody could take over" "$(calls)"; else pass "rolling-restart stops nobody when nobody could take over"; fi
run_ops "$P" "$WITH_FAKES" restart
expect_code "scale: restart is a rolling restart" 0 "$CODE" "$OUT"
expect_output "scale: restart recreates one at a time" "[3/3] Recreating app3" "$OUT"

FAKE_BUILD_FAIL=1 run_ops "$P" "$WITH_FAKES" deploy
expect_code "deploy: a failed build exits 1" 1 "$CODE" "$OUT"
if [[ "$(calls)" == *"docker-compose up"* ]]; then fail "deploy: a failed build restarts nothing" "$(calls)"; else pass "deploy: a failed build restarts nothing"; fi
run_ops "$P" "$WITH_FAKES" deploy
expect_code "deploy exits 0" 0 "$CODE" "$OUT"
expect_output "deploy builds, restarts one at a time, then reloads nginx" "nginx reloaded its site" "$OUT"
expect_output "deploy reloads nginx gracefully" "docker exec cid-nginx voice-broker-nginx reload" "$(calls)"
FAKE_NGINX_RELOAD_FAIL=1 run_ops "$P" "$WITH_FAKES" deploy
expect_code "deploy: nginx refusing the site exits 1" 1 "$CODE" "$OUT"
expect_output "deploy: shows nginx's reason" "unexpected" "$OUT"
EXTRA_ENV="VB_SKIP_GIT_PULL=1" run_ops "$P" "$WITH_FAKES" update
expect_code "scale: update (no pull) exits 0" 0 "$CODE" "$OUT"
expect_output "scale: update is a rolling deploy" "Rolling restart done" "$OUT"

run_ops "$P" "$WITH_FAKES" status
expect_code "scale: status exits 0" 0 "$CODE" "$OUT"
expect_output "scale: status names the stack" "scale: docker/compose.scale.yml (project voice-broker-scale)" "$OUT"
expect_output "scale: status shows each instance's /api/health" "/api/health ok, store up, instance vb-app2" "$OUT"
expect_output "scale: status shows the shared summary through nginx" "activeSessions 1/1, queueLength 3/50" "$OUT"
FAKE_DEGRADED="app2" run_ops "$P" "$WITH_FAKES" status
expect_code "scale: status with an instance without its store exits 7" 7 "$CODE" "$OUT"
expect_output "scale: status shows the degraded instance" "/api/health degraded, store unreachable" "$OUT"
FAKE_STOPPED="app3" run_ops "$P" "$WITH_FAKES" status
expect_code "scale: status with a scaled-down instance exits 0" 0 "$CODE" "$OUT"
expect_output "scale: status says how to start it again" "(stopped: scale-up starts it)" "$OUT"
FAKE_STOPPED="redis" run_ops "$P" "$WITH_FAKES" status
expect_code "scale: status with Redis stopped exits 7" 7 "$CODE" "$OUT"
FAKE_NO_CONTAINER="redis app1 app2 app3 nginx" run_ops "$P" "$WITH_FAKES" status
expect_code "scale: status of a stack never started exits 7" 7 "$CODE" "$OUT"
expect_output "scale: says how to start it" "Start it: VB_STACK=scale ./docker-ops.sh start" "$OUT"
run_ops "$P" "$WITH_FAKES" health
expect_code "scale: health exits 0" 0 "$CODE" "$OUT"
FAKE_DEGRADED="app1 app2 app3" run_ops "$P" "$WITH_FAKES" health
expect_code "scale: health exits 7 when no instance has its store" 7 "$CODE" "$OUT"
FAKE_UNHEALTHY="nginx" run_ops "$P" "$WITH_FAKES" health
expect_code "scale: health exits 7 when nginx is unhealthy" 7 "$CODE" "$OUT"

FAKE_LOGS="2026-01-01T00:00:00Z info session limits reloaded: 2 slot(s), 300 s sessions, queue of 50" \
  run_ops "$P" "$WITH_FAKES" reload
expect_code "scale: reload exits 0" 0 "$CODE" "$OUT"
for app in app1 app2 app3; do
  expect_output "scale: reload sends SIGHUP to $app" "docker kill -s HUP cid-$app" "$(calls)"
done
run_ops "$P" "$WITH_FAKES" logs app2
expect_output "scale: logs app2 asks compose for app2's log" "docker-compose logs --tail=200 app2" "$(calls)"
run_ops "$P" "$WITH_FAKES" clean
expect_code "scale: clean without --yes exits 2" 2 "$CODE" "$OUT"
expect_output "scale: clean warns about Redis's data" "Redis's data (every place in the queue) included" "$OUT"

EXTRA_ENV="VB_STACK=sentinel" run_ops "$P" "$WITH_FAKES" rolling-restart
expect_code "sentinel: rolling-restart exits 0" 0 "$CODE" "$OUT"
order="$(grep -o 'up -d --no-deps --force-recreate [a-z0-9]*' "$CALLS" | sed 's/.* //' | tr '\n' ',')"
check "sentinel: rolling-restart recreates app1 then app2 only (${order})" test "$order" = "app1,app2,"
EXTRA_ENV="VB_STACK=sentinel" FAKE_STOPPED="sentinel2" run_ops "$P" "$WITH_FAKES" status
expect_code "sentinel: status with a sentinel down exits 7" 7 "$CODE" "$OUT"
expect_output "sentinel: status names the stopped sentinel" "sentinel2  exited" "$OUT"

P="$(new_project)"
EXTRA_ENV="VB_STACK=scale" run_ops "$P" "$WITH_FAKES" start
expect_code "scale: no .env.local: start exits 5" 5 "$CODE" "$OUT"
printf 'OPENAI_API_KEY=\nVB_STACK=scale\n' >"$P/.env.local"
for command in start scale-up rolling-restart deploy; do
  run_ops "$P" "$WITH_FAKES" "$command"
  expect_code "scale: empty key: $command exits 6" 6 "$CODE" "$OUT"
done

summary
