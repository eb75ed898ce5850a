#!/usr/bin/env bash
# Operates the voice-broker container: build, start, stop, status, logs, ...
# Run `./docker-ops.sh help` for the commands; DOCKER_GUIDE.md explains each one.
#
# Two kinds of deployment (VB_STACK, from the environment or .env.local):
#   single    (default) one container, docker-compose.yml
#   scale     several instances sharing one Redis behind nginx, docker/compose.scale.yml
#   sentinel  the same with Redis Sentinel (a master, a replica, three sentinels),
#             docker/compose.sentinel.yml
#
# Exit codes: 0 ok, 1 a docker/compose command failed, 2 usage, 3 Docker missing,
# 4 Docker daemon unreachable, 5 .env.local missing, 6 OPENAI_API_KEY empty,
# 7 container not running or not healthy.
set -euo pipefail

readonly EXIT_FAILED=1 EXIT_USAGE=2 EXIT_NO_DOCKER=3 EXIT_NO_DAEMON=4 EXIT_NO_ENV=5 \
  EXIT_NO_KEY=6 EXIT_UNHEALTHY=7

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

DOCKER_BIN="${DOCKER_BIN:-docker}"
CONTAINER="${VB_CONTAINER_NAME:-voice-broker}"
IMAGE="${VB_IMAGE:-voice-broker:latest}"
HOST_PORT="${VB_HOST_PORT:-3000}"
ENV_FILE=".env.local"
START_TIMEOUT="${VB_START_TIMEOUT:-90}"
LOG_LINES="${VB_LOG_LINES:-200}"
STACK='single'

# Colour only for a person at a terminal, and never when NO_COLOR is set (no-color.org).
if [[ -t 1 && -z "${NO_COLOR:-}" && "${TERM:-dumb}" != dumb ]]; then
  C_RED=$'\e[31m' C_GREEN=$'\e[32m' C_YELLOW=$'\e[33m' C_BOLD=$'\e[1m' C_RESET=$'\e[0m'
else
  C_RED='' C_GREEN='' C_YELLOW='' C_BOLD='' C_RESET=''
fi

info() { printf '%s\n' "$*"; }
ok() { printf '%s✔ %s%s\n' "$C_GREEN" "$*" "$C_RESET"; }
warn() { printf '%s! %s%s\n' "$C_YELLOW" "$*" "$C_RESET" >&2; }
err() { printf '%s✘ %s%s\n' "$C_RED" "$*" "$C_RESET" >&2; }
die() {
  local code="$1"
  shift
  err "$@"
  exit "$code"
}
interactive() { [[ -t 0 && -t 1 ]]; }

usage() {
  cat <<EOF
${C_BOLD}Usage:${C_RESET} ./docker-ops.sh <command>   (or npm run docker:<command>)

  build         Build the image ${IMAGE} from the Dockerfile
  start         Start the container (builds the image if missing) and wait until healthy
  stop          Stop the container (graceful: active sessions are told and ended; in the
                scaled stacks nothing ends: places stay in Redis)
  restart       Recreate the container (picks up .env.local changes) and wait until healthy
  reload        Apply config/session-limits.json without a restart (SIGHUP; sessions go on)
  status        Container state, health, /api/health and a session summary
  logs          Last ${LOG_LINES} log lines (VB_LOG_LINES=n for more)
  logs:follow   Follow the logs (Ctrl-C to stop)
  shell         Open a shell inside the running container
  health        Exit 0 only if the container is running and healthy
  clean         Remove the container and the image (asks first; --yes to skip)
  update        git pull (if the branch tracks a remote), rebuild, recreate, wait healthy
  help          This text

Several instances (VB_STACK=scale or sentinel; DOCKER_GUIDE.md, "Scaling out"):
  scale-up [N]      Start Redis, then instances app1..appN one at a time (each healthy before
                    the next), then nginx; without N, every instance the compose file defines
  scale-down N      Stop the instances above appN, one at a time (their visitors reconnect)
  rolling-restart   Recreate the instances one at a time, each healthy before the next stops:
                    nobody loses a place or a call (restart does the same in these stacks)
  deploy            Build, then rolling-restart, then reload nginx (update: git pull first)
  The other commands act on the whole stack: status and health list every instance; logs and
  shell take a service name (logs app2, shell app1).

Settings (environment): VB_STACK (${STACK}), DOCKER_BIN, VB_COMPOSE, COMPOSE_FILE,
COMPOSE_PROJECT_NAME, VB_CONTAINER_NAME, VB_HOST_PORT (${HOST_PORT}),
VB_START_TIMEOUT (${START_TIMEOUT}s), ALLOW_NO_OPENAI_KEY=1, VB_SKIP_GIT_PULL=1, NO_COLOR=1.
EOF
}

# VB_STACK from the environment, else from .env.local, else single.  The scaled stacks are
# compose files under docker/, each with its own project name (so they never mix with each
# other or with docker/compose.observability.yml); COMPOSE_FILE and COMPOSE_PROJECT_NAME, when
# set, still win, and no -f is ever passed.
select_stack() {
  local stack="${VB_STACK:-}"
  if [[ -z "$stack" && -f "$ENV_FILE" ]]; then
    stack="$(env_file_value VB_STACK)"
  fi
  STACK="${stack:-single}"
  case "$STACK" in
    single) ;;
    scale | sentinel)
      export COMPOSE_FILE="${COMPOSE_FILE:-docker/compose.${STACK}.yml}"
      export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-voice-broker-${STACK}}"
      # As Compose writes it into its labels: lower case, [-_a-z0-9] only.
      PROJECT="${COMPOSE_PROJECT_NAME,,}"
      PROJECT="${PROJECT//[^-_a-z0-9]/}"
      ;;
    *) die "$EXIT_USAGE" "Unknown VB_STACK=${STACK}: use single, scale or sentinel." ;;
  esac
}

multi() { [[ "$STACK" != single ]]; }

require_multi() {
  multi && return 0
  die "$EXIT_USAGE" "$1 needs several instances: run it with VB_STACK=scale (docker/compose.scale.yml) or VB_STACK=sentinel." \
    "See DOCKER_GUIDE.md, \"Scaling out\"; the single container restarts with ./docker-ops.sh restart."
}

# --- preflight --------------------------------------------------------------------------

require_docker() {
  if ! command -v "$DOCKER_BIN" >/dev/null 2>&1; then
    die "$EXIT_NO_DOCKER" "Docker is not installed ('${DOCKER_BIN}' is not on PATH)." \
      "Install it (Debian/Ubuntu: sudo apt-get install docker.io docker-compose) and retry."
  fi
  local output
  if ! output="$(run_bounded 20 "$DOCKER_BIN" info 2>&1 >/dev/null)"; then
    if [[ "$output" == *"permission denied"* ]]; then
      die "$EXIT_NO_DAEMON" "Cannot talk to the Docker daemon: permission denied." \
        "Run as root or add your user to the docker group: sudo usermod -aG docker \"\$USER\" (then log in again)."
    fi
    die "$EXIT_NO_DAEMON" "The Docker daemon is not running or not reachable${DOCKER_HOST:+ at $DOCKER_HOST}." \
      "Start it (sudo systemctl start docker) and retry."
  fi
}

# `timeout` keeps a hung daemon socket from hanging the script; it is absent on some systems.
run_bounded() {
  local seconds="$1"
  shift
  if command -v timeout >/dev/null 2>&1; then
    timeout "$seconds" "$@"
  else
    "$@"
  fi
}

COMPOSE=()
detect_compose() {
  if [[ -n "${VB_COMPOSE:-}" ]]; then
    read -r -a COMPOSE <<<"$VB_COMPOSE"
  elif "$DOCKER_BIN" compose version >/dev/null 2>&1; then
    COMPOSE=("$DOCKER_BIN" compose)
  elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
  else
    die "$EXIT_NO_DOCKER" "Docker Compose is missing (neither 'docker compose' nor 'docker-compose' works)." \
      "Install it (Debian/Ubuntu: sudo apt-get install docker-compose) and retry."
  fi
}

compose() { "${COMPOSE[@]}" "$@"; }

require_env_file() {
  [[ -f "$ENV_FILE" ]] && return 0
  err "${ENV_FILE} is missing: the container reads its settings (OPENAI_API_KEY, ADMIN_TOKEN, limits) from it."
  if [[ ! -f .env.example ]]; then
    die "$EXIT_NO_ENV" "Create ${ROOT}/${ENV_FILE} with at least OPENAI_API_KEY=... and retry."
  fi
  if interactive; then
    local answer=''
    read -r -p "Create ${ENV_FILE} from .env.example now? [y/N] " answer || true
    if [[ "$answer" =~ ^[Yy] ]]; then
      (umask 077 && cp .env.example "$ENV_FILE")
      ok "Created ${ENV_FILE}. Set OPENAI_API_KEY (and ADMIN_TOKEN) in it."
      return 0
    fi
  fi
  die "$EXIT_NO_ENV" "Create it from the template, then set OPENAI_API_KEY:" \
    "  cp .env.example .env.local && chmod 600 .env.local"
}

# The value of KEY in the env file (last assignment wins), without quotes or a trailing
# comment; never printed.
env_file_value() {
  local key="$1" line value=''
  while IFS= read -r line || [[ -n "$line" ]]; do
    if [[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?${key}[[:space:]]*=(.*)$ ]]; then
      value="${BASH_REMATCH[2]}"
    fi
  done <"$ENV_FILE"
  value="${value#"${value%%[![:space:]]*}"}"
  if [[ "$value" =~ ^\"(.*)\"[[:space:]]*(#.*)?$ || "$value" =~ ^\'(.*)\'[[:space:]]*(#.*)?$ ]]; then
    value="${BASH_REMATCH[1]}"
  else
    value="${value%%[[:space:]]#*}"
    [[ "$value" == \#* ]] && value=''
  fi
  value="${value%"${value##*[![:space:]]}"}"
  printf '%s' "$value"
}

# Without a key the server still serves the page but cannot mint Realtime keys, so every
# visitor would reach a dead end: refuse unless the operator says this is intended.
require_openai_key() {
  [[ -n "$(env_file_value OPENAI_API_KEY)" ]] && return 0
  if [[ "${ALLOW_NO_OPENAI_KEY:-0}" == 1 ]]; then
    warn "OPENAI_API_KEY is empty in ${ENV_FILE}: starting anyway (ALLOW_NO_OPENAI_KEY=1); visitors cannot talk until it is set."
    return 0
  fi
  die "$EXIT_NO_KEY" "OPENAI_API_KEY is empty in ${ENV_FILE}: the server would serve the page but could not start any voice session." \
    "Set OPENAI_API_KEY=sk-... in ${ENV_FILE} (or run with ALLOW_NO_OPENAI_KEY=1 to start without it)."
}

preflight() {
  require_docker
  detect_compose
  require_env_file
}

# --- container state --------------------------------------------------------------------

# Every function below acts on the single container, or on the container id given as $2
# (the stacks' services).
container_field() {
  "$DOCKER_BIN" inspect -f "$1" "${2:-$CONTAINER}" 2>/dev/null
}

container_exists() { "$DOCKER_BIN" inspect "${1:-$CONTAINER}" >/dev/null 2>&1; }

health_of() {
  container_field '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "${1:-}"
}

last_health_output() {
  container_field '{{if .State.Health}}{{range .State.Health.Log}}{{.Output}}{{end}}{{end}}' "${1:-}" | tail -n 5
}

# Polls the container's own HEALTHCHECK until it reports healthy, with a deadline.
# wait_healthy [CONTAINER-ID NAME]
wait_healthy() {
  local target="${1:-$CONTAINER}" name="${2:-$CONTAINER}"
  local deadline=$((SECONDS + START_TIMEOUT)) state health
  info "Waiting up to ${START_TIMEOUT}s for ${name} to become healthy..."
  while ((SECONDS < deadline)); do
    state="$(container_field '{{.State.Status}}' "$target" || echo missing)"
    health="$(health_of "$target" || echo none)"
    case "$state/$health" in
      running/healthy)
        ok "${name} is running and healthy."
        return 0
        ;;
      running/none)
        warn "${name} is running but has no health check to wait for."
        return 0
        ;;
      running/unhealthy)
        err "${name} is unhealthy. Last health check output:"
        last_health_output "$target" >&2 || true
        show_log_tail "$target"
        return "$EXIT_UNHEALTHY"
        ;;
      exited/* | dead/* | missing/*)
        err "${name} is not running (state: ${state})."
        show_log_tail "$target"
        return "$EXIT_UNHEALTHY"
        ;;
    esac
    sleep 1
  done
  err "${name} did not become healthy within ${START_TIMEOUT}s (state: ${state}, health: ${health})."
  show_log_tail "$target"
  return "$EXIT_UNHEALTHY"
}

show_log_tail() {
  local target="${1:-$CONTAINER}"
  container_exists "$target" || return 0
  err "Last log lines:"
  "$DOCKER_BIN" logs --tail 20 "$target" >&2 2>&1 || true
}

# GET a local API path through the published port; empty on failure.
api_get() {
  command -v curl >/dev/null 2>&1 || return 1
  curl -fsS --max-time 5 "http://127.0.0.1:${HOST_PORT}$1" 2>/dev/null
}

# A number field from the server's compact JSON, without needing jq.
json_number() {
  local key="$1" json="$2"
  if [[ "$json" =~ \"${key}\"[[:space:]]*:[[:space:]]*(-?[0-9.]+) ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
  else
    printf '?'
  fi
}

json_string() {
  local key="$1" json="$2"
  if [[ "$json" =~ \"${key}\"[[:space:]]*:[[:space:]]*\"([^\"]*)\" ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
  else
    printf '?'
  fi
}

# --- the scaled stacks: services and their containers -----------------------------------

APPS=() INFRA=() FRONT=()
PROJECT=''

# Sorts the stack's services: appN are the instances (in number order), nginx is the front, and
# everything else (Redis, the sentinels) is the store they need first.
read_services() {
  local output service
  local -a services=() by_number=()
  output="$(compose config --services 2>&1)" ||
    die "$EXIT_FAILED" "docker compose config failed for ${COMPOSE_FILE}:" "$output"
  mapfile -t services <<<"$output"
  APPS=() INFRA=() FRONT=()
  for service in "${services[@]}"; do
    [[ -n "$service" ]] || continue
    if [[ "$service" =~ ^app([0-9]+)$ ]]; then
      by_number[10#${BASH_REMATCH[1]}]="$service"
    elif [[ "$service" == nginx ]]; then
      FRONT+=("$service")
    else
      INFRA+=("$service")
    fi
  done
  APPS=("${by_number[@]}")
  ((${#APPS[@]} > 0)) || die "$EXIT_FAILED" "${COMPOSE_FILE} defines no instance (services app1, app2, ...)."
}

is_app() { [[ "$1" =~ ^app[0-9]+$ ]]; }

# The container of a service of this stack (empty when it was never created), by Compose's labels.
service_container() {
  local ids
  ids="$("$DOCKER_BIN" ps -a -q --filter "label=com.docker.compose.project=${PROJECT}" \
    --filter "label=com.docker.compose.service=$1" --filter "label=com.docker.compose.oneoff=False" 2>/dev/null)" || true
  printf '%s' "${ids%%$'\n'*}"
}

# The same, for a service that must have one (just after `compose up`).
existing_container() {
  local id
  id="$(service_container "$1")"
  [[ -n "$id" ]] || die "$EXIT_UNHEALTHY" "${1} has no container after docker compose up; see ./docker-ops.sh logs ${1}."
  printf '%s' "$id"
}

# An instance's own /api/health, through the image's --healthcheck (works whatever the network).
instance_health() {
  run_bounded 10 "$DOCKER_BIN" exec "$1" voice-broker --healthcheck 2>&1
}

# Ready means serving with its store: /api/health says "ok" (not "degraded") with "store":"up".
health_says_ready() { [[ "$1" == *'"status":"ok"'* && "$1" == *'"store":"up"'* ]]; }

instance_ready() {
  local id="$1" output
  [[ "$(container_field '{{.State.Status}}' "$id" || true)" == running ]] || return 1
  output="$(instance_health "$id")" || return 1
  health_says_ready "$output"
}

# Waits until the service's (new) container is ready, with a deadline.
wait_instance_ready() {
  local service="$1" deadline=$((SECONDS + START_TIMEOUT)) id='' state=missing health=none output=''
  info "Waiting up to ${START_TIMEOUT}s for ${service}: /api/health \"ok\" with the store up..."
  while ((SECONDS < deadline)); do
    id="$(service_container "$service")"
    if [[ -n "$id" ]]; then
      state="$(container_field '{{.State.Status}}' "$id" || echo missing)"
      health="$(health_of "$id" || echo none)"
      if [[ "$state" == exited || "$state" == dead ]]; then
        err "${service} is not running (state: ${state})."
        show_log_tail "$id"
        return "$EXIT_UNHEALTHY"
      fi
      if [[ "$health" == unhealthy ]]; then
        err "${service} is unhealthy. Last health check output:"
        last_health_output "$id" >&2 || true
        show_log_tail "$id"
        return "$EXIT_UNHEALTHY"
      fi
      if [[ "$state" == running ]]; then
        output="$(instance_health "$id" || true)"
        if health_says_ready "$output"; then
          ok "${service} is ready (instance $(json_string instance "$output"), store up)."
          return 0
        fi
      fi
    fi
    sleep 1
  done
  err "${service} did not become ready within ${START_TIMEOUT}s (state: ${state}, health: ${health})."
  [[ -n "$output" ]] && err "Its last /api/health: ${output}"
  [[ -n "$id" ]] && show_log_tail "$id"
  return "$EXIT_UNHEALTHY"
}

# The images of the stack: the instances share one (built once, through the first of them).
build_stack() {
  compose build "$@" "${APPS[0]}" "${INFRA[@]}" "${FRONT[@]}"
}

start_infra() {
  ((${#INFRA[@]} > 0)) || return 0
  local service id
  info "Starting ${INFRA[*]}..."
  compose up -d --no-deps "${INFRA[@]}" || die "$EXIT_FAILED" "docker compose up failed (see the output above)."
  for service in "${INFRA[@]}"; do
    id="$(existing_container "$service")"
    wait_healthy "$id" "$service" || exit $?
  done
}

# nginx: (re)created only when its image or settings changed, then the mounted site rendered
# again and reloaded gracefully (open live channels stay with the old workers for a while).
refresh_front() {
  local service id output
  for service in "${FRONT[@]}"; do
    compose up -d --no-deps "$service" || die "$EXIT_FAILED" "docker compose up failed for ${service}."
    id="$(existing_container "$service")"
    wait_healthy "$id" "$service" || exit $?
    output="$("$DOCKER_BIN" exec "$id" voice-broker-nginx reload 2>&1)" ||
      die "$EXIT_FAILED" "${service} refused the site (docker/nginx/voice-broker-upstream.conf) and keeps the previous one:" "$output"
    ok "${service} reloaded its site."
  done
}

running_apps() {
  local service id
  for service in "${APPS[@]}"; do
    id="$(service_container "$service")"
    [[ -n "$id" && "$(container_field '{{.State.Status}}' "$id" || true)" == running ]] && printf '%s\n' "$service"
  done
  return 0
}

# The first instance, other than $1, that is ready to take visitors; empty if none.
ready_other_than() {
  local skip="$1" service id
  shift
  for service in "$@"; do
    [[ "$service" == "$skip" ]] && continue
    id="$(service_container "$service")"
    if [[ -n "$id" ]] && instance_ready "$id"; then
      printf '%s' "$service"
      return 0
    fi
  done
  return 0
}

# One instance at a time: recreate it (SIGTERM: in redis mode it ends nothing and closes its
# live channels with 1012, so the pages reconnect through nginx to the others), wait until the
# new one is ready, and only then go on.  Someone else must be ready before each one stops.
rolling_restart() {
  local -a running=()
  mapfile -t running < <(running_apps)
  if ((${#running[@]} < 2)); then
    die "$EXIT_UNHEALTHY" "A rolling restart needs at least two running instances (running: ${running[*]:-none}): while the only one restarts, the pages would have nowhere to reconnect." \
      "Start more first: ./docker-ops.sh scale-up"
  fi
  local service ready n=0
  for service in "${running[@]}"; do
    n=$((n + 1))
    ready="$(ready_other_than "$service" "${running[@]}")"
    [[ -n "$ready" ]] || die "$EXIT_UNHEALTHY" "No other instance is ready to take ${service}'s visitors: stopped before ${service}." \
      "./docker-ops.sh status shows why."
    info "${C_BOLD}[${n}/${#running[@]}]${C_RESET} Recreating ${service}; ${ready} and the others take its visitors..."
    compose up -d --no-deps --force-recreate "$service" ||
      die "$EXIT_FAILED" "docker compose up failed for ${service}; the instances after it were left as they were."
    wait_instance_ready "$service" ||
      die "$EXIT_UNHEALTHY" "${service} did not come back ready; the instances after it were left as they were. Fix it, then run rolling-restart again."
  done
  ok "Rolling restart done: ${#running[@]} instance(s) recreated one at a time."
}

health_colour() {
  case "$1" in
    healthy | none) printf '%s%s%s' "$C_GREEN" "$1" "$C_RESET" ;;
    starting) printf '%s%s%s' "$C_YELLOW" "$1" "$C_RESET" ;;
    *) printf '%s%s%s' "$C_RED" "$1" "$C_RESET" ;;
  esac
}

# Every service of the stack, one line each; returns the number of problems (0: all is well).
# A problem: Redis, a sentinel or nginx not running or unhealthy; an instance running but
# unhealthy or without its store; no instance ready at all.  An instance never created or
# stopped (scale-down) is only listed.
STACK_PROBLEMS=0
check_stack() {
  local verbose="$1" service id state health started restarts line output ready=0 created=0
  STACK_PROBLEMS=0
  for service in "${INFRA[@]}" "${APPS[@]}" "${FRONT[@]}"; do
    id="$(service_container "$service")"
    if [[ -z "$id" ]]; then
      line="$(printf '%-10s' "$service") not created"
      if is_app "$service"; then
        [[ "$verbose" == 1 ]] && info "  ${line} (scale-up starts it)"
      else
        STACK_PROBLEMS=$((STACK_PROBLEMS + 1))
        err "${line}"
      fi
      continue
    fi
    created=$((created + 1))
    state="$(container_field '{{.State.Status}}' "$id" || echo missing)"
    health="$(health_of "$id" || echo none)"
    started="$(container_field '{{.State.StartedAt}}' "$id" || echo '?')"
    restarts="$(container_field '{{.RestartCount}}' "$id" || echo '?')"
    line="$(printf '%-10s' "$service") ${state}, $(health_colour "$health"), started ${started}, restarts ${restarts}"
    local bad=0
    if [[ "$state" != running ]]; then
      if is_app "$service"; then
        line+=" (stopped: scale-up starts it)"
      else
        bad=1
      fi
    elif [[ "$health" == unhealthy ]]; then
      bad=1
    elif is_app "$service"; then
      output="$(instance_health "$id" || true)"
      line+="; /api/health $(json_string status "$output"), store $(json_string store "$output"), instance $(json_string instance "$output"), up $(json_number uptimeSeconds "$output") s"
      if health_says_ready "$output"; then ready=$((ready + 1)); else bad=1; fi
    fi
    if ((bad)); then
      STACK_PROBLEMS=$((STACK_PROBLEMS + 1))
      err "${line}"
    elif [[ "$verbose" == 1 ]]; then
      info "  ${line}"
    fi
  done
  if ((created == 0)); then
    die "$EXIT_UNHEALTHY" "The ${STACK} stack is not running (no container in project ${PROJECT}). Start it: VB_STACK=${STACK} ./docker-ops.sh start"
  fi
  if ((ready == 0)); then
    STACK_PROBLEMS=$((STACK_PROBLEMS + 1))
    err "No instance is ready: visitors get 502 from nginx, or 503 store_unavailable."
  fi
  READY_APPS="$ready"
}
READY_APPS=0

print_session_summary() {
  local stats="$1"
  info "${C_BOLD}Sessions${C_RESET}   activeSessions $(json_number activeSessions "$stats")/$(json_number maxConcurrentUsers "$stats"), queueLength $(json_number queueLength "$stats")/$(json_number maxQueueLength "$stats"), $(json_number sessionDurationMinutes "$stats") min per session"
  info "  today     started $(json_number sessionsStarted "$stats"), completed $(json_number sessionsCompleted "$stats"), $(json_number minutesUsed "$stats") min, ~\$$(json_number estimatedCostUsd "$stats")"
}

stack_status() {
  read_services
  info "${C_BOLD}Stack${C_RESET}      ${STACK}: ${COMPOSE_FILE} (project ${PROJECT})"
  check_stack 1
  local stats
  if stats="$(api_get '/api/session?action=stats')"; then
    info "  (through nginx on 127.0.0.1:${HOST_PORT}; every instance answers the same)"
    print_session_summary "$stats"
  elif ! command -v curl >/dev/null 2>&1; then
    warn "curl is not installed: no session summary (apt-get install curl)."
  else
    warn "nginx did not answer on 127.0.0.1:${HOST_PORT} (VB_HOST_PORT)."
  fi
  ((STACK_PROBLEMS == 0)) ||
    die "$EXIT_UNHEALTHY" "${STACK_PROBLEMS} problem(s) above; ./docker-ops.sh logs <service> shows why."
}

# --- commands ---------------------------------------------------------------------------

cmd_build() {
  preflight
  if multi; then
    read_services
    info "Building the ${STACK} stack's images (${IMAGE}, Redis, nginx)..."
    build_stack "$@" || die "$EXIT_FAILED" "The image build failed (see the output above)."
    ok "Built ${IMAGE} ($(image_size)) and the stack's other images."
    return 0
  fi
  info "Building ${IMAGE}..."
  compose build "$@" voice-broker || die "$EXIT_FAILED" "The image build failed (see the output above)."
  ok "Built ${IMAGE} ($(image_size))."
}

image_size() {
  local bytes
  bytes="$("$DOCKER_BIN" image inspect -f '{{.Size}}' "$IMAGE" 2>/dev/null)" || {
    printf 'size unknown'
    return 0
  }
  printf '%s MB' "$((bytes / 1000000))"
}

cmd_start() {
  if multi; then
    cmd_scale_up
    return 0
  fi
  preflight
  require_openai_key
  info "Starting ${CONTAINER}..."
  compose up -d voice-broker || die "$EXIT_FAILED" "docker compose up failed (see the output above)."
  wait_healthy || exit $?
  info "Open http://127.0.0.1:${HOST_PORT}/ (put nginx with HTTPS in front for the microphone)."
}

# scale-up [N]: the store first, then the instances one at a time, then nginx.
cmd_scale_up() {
  require_multi scale-up
  preflight
  require_openai_key
  read_services
  local want="${1:-${#APPS[@]}}"
  if ! [[ "$want" =~ ^[0-9]+$ ]] || ((want < 1 || want > ${#APPS[@]})); then
    die "$EXIT_USAGE" "scale-up N: N must be 1 to ${#APPS[@]}, the instances ${COMPOSE_FILE} defines (${APPS[*]})." \
      "For more, copy an app service in that file (its own PORT and INSTANCE_ID) and add it to nginx's VB_INSTANCES."
  fi
  start_infra
  local i service id
  for ((i = 0; i < want; i++)); do
    service="${APPS[i]}"
    id="$(service_container "$service")"
    if [[ -n "$id" ]] && instance_ready "$id"; then
      info "${service} is already running and ready."
      continue
    fi
    info "Starting ${service}..."
    compose up -d --no-deps "$service" || die "$EXIT_FAILED" "docker compose up failed for ${service}."
    wait_instance_ready "$service" || exit $?
  done
  if ((${#FRONT[@]} > 0)); then
    compose up -d --no-deps "${FRONT[@]}" || die "$EXIT_FAILED" "docker compose up failed for ${FRONT[*]}."
    for service in "${FRONT[@]}"; do
      id="$(existing_container "$service")"
      wait_healthy "$id" "$service" || exit $?
    done
  fi
  ok "${want} instance(s) behind nginx on http://127.0.0.1:${HOST_PORT}/ (the host's nginx with HTTPS proxies there)."
}

# scale-down N: the instances above appN stop, the last first; their visitors reconnect to the
# ones that stay (SIGTERM in redis mode ends nothing).
cmd_scale_down() {
  require_multi scale-down
  preflight
  read_services
  local want="${1:-}"
  if ! [[ "$want" =~ ^[0-9]+$ ]] || ((want < 1 || want > ${#APPS[@]})); then
    die "$EXIT_USAGE" "scale-down N: N (the instances to keep) must be 1 to ${#APPS[@]}, e.g. ./docker-ops.sh scale-down 2"
  fi
  local ready
  ready="$(ready_other_than '' "${APPS[@]:0:want}")"
  [[ -n "$ready" ]] || die "$EXIT_UNHEALTHY" "None of ${APPS[*]:0:want} is ready to take the visitors: nothing stopped." \
    "./docker-ops.sh status shows why; scale-up ${want} first."
  local i service id stopped=0
  for ((i = ${#APPS[@]} - 1; i >= want; i--)); do
    service="${APPS[i]}"
    id="$(service_container "$service")"
    [[ -n "$id" && "$(container_field '{{.State.Status}}' "$id" || true)" == running ]] || continue
    info "Stopping ${service} (its visitors reconnect to the others)..."
    compose stop "$service" || die "$EXIT_FAILED" "docker compose stop failed for ${service}."
    stopped=$((stopped + 1))
  done
  ok "Stopped ${stopped} instance(s); ${APPS[*]:0:want} carry on."
}

cmd_stop() {
  preflight
  if multi; then
    info "Stopping the ${STACK} stack: the instances end nothing (places stay in Redis, which writes them to disk)."
    warn "A visitor talking now keeps their OpenAI call until the stack is back (it then ends on time); forceEndAll first ends every session."
  else
    info "Stopping ${CONTAINER} (active sessions are told and ended)..."
  fi
  compose stop || die "$EXIT_FAILED" "docker compose stop failed."
  ok "Stopped."
}

cmd_restart() {
  if multi; then
    info "In the ${STACK} stack, restart is a rolling restart (one instance at a time)."
    cmd_rolling_restart
    return 0
  fi
  preflight
  require_openai_key
  info "Recreating ${CONTAINER} with the current ${ENV_FILE}..."
  compose up -d --force-recreate voice-broker || die "$EXIT_FAILED" "docker compose up failed."
  wait_healthy || exit $?
}

cmd_rolling_restart() {
  require_multi rolling-restart
  preflight
  require_openai_key
  read_services
  rolling_restart
}

# deploy: new images, then one instance at a time, then nginx; Redis is left alone.
cmd_deploy() {
  require_multi deploy
  preflight
  require_openai_key
  read_services
  build_stack || die "$EXIT_FAILED" "The image build failed; the running instances were left as they were."
  rolling_restart
  refresh_front
}

# SIGHUP makes the server re-read config/session-limits.json (mounted from the host) and its
# certificates; its log says whether the new settings were taken.
reload_container() {
  local target="$1" name="$2" since deadline log
  since="$(date +%s)"
  "$DOCKER_BIN" kill -s HUP "$target" >/dev/null || die "$EXIT_FAILED" "Could not send SIGHUP to ${name}."
  deadline=$((SECONDS + 10))
  while ((SECONDS < deadline)); do
    log="$("$DOCKER_BIN" logs --since "$since" "$target" 2>&1 || true)"
    if [[ "$log" == *"keeping the running settings"* ]]; then
      err "The new settings were refused by ${name}; it keeps the old ones:"
      grep -F "keeping the running settings" <<<"$log" >&2 || true
      exit "$EXIT_FAILED"
    fi
    if [[ "$log" == *reloaded* ]]; then
      ok "Reloaded ${name}."
      grep -F "limits reloaded" <<<"$log" || true
      return 0
    fi
    sleep 1
  done
  die "$EXIT_FAILED" "No confirmation in ${name}'s log within 10 s; see ./docker-ops.sh logs."
}

cmd_reload() {
  require_docker
  if multi; then
    detect_compose
    read_services
    local service id reloaded=0
    for service in "${APPS[@]}"; do
      id="$(service_container "$service")"
      [[ -n "$id" && "$(container_field '{{.State.Status}}' "$id" || true)" == running ]] || continue
      reload_container "$id" "$service"
      reloaded=$((reloaded + 1))
    done
    ((reloaded > 0)) || die "$EXIT_UNHEALTHY" "No instance of the ${STACK} stack is running. Start it: VB_STACK=${STACK} ./docker-ops.sh start"
    return 0
  fi
  [[ "$(container_field '{{.State.Status}}' || true)" == running ]] ||
    die "$EXIT_UNHEALTHY" "Container ${CONTAINER} is not running. Start it: ./docker-ops.sh start"
  reload_container "$CONTAINER" "$CONTAINER"
}

cmd_status() {
  require_docker
  if multi; then
    detect_compose
    stack_status
    return 0
  fi
  if ! container_exists; then
    die "$EXIT_UNHEALTHY" "Container ${CONTAINER} does not exist. Start it: ./docker-ops.sh start"
  fi
  local state health started restarts image
  state="$(container_field '{{.State.Status}}')"
  health="$(health_of)"
  started="$(container_field '{{.State.StartedAt}}')"
  restarts="$(container_field '{{.RestartCount}}')"
  image="$(container_field '{{.Config.Image}}')"
  info "${C_BOLD}Container${C_RESET}  ${CONTAINER} (${image})"
  info "  state     ${state}, started ${started}, restarts ${restarts}"
  info "  health    $(health_colour "$health")"
  if [[ "$state" != running ]]; then
    die "$EXIT_UNHEALTHY" "${CONTAINER} is ${state}. Start it: ./docker-ops.sh start"
  fi

  local health_json stats
  if health_json="$(api_get /api/health)"; then
    info "${C_BOLD}API${C_RESET}        /api/health: $(json_string status "$health_json"), version $(json_string version "$health_json"), up $(json_number uptimeSeconds "$health_json") s"
  elif ! command -v curl >/dev/null 2>&1; then
    warn "curl is not installed: no /api/health or session summary (apt-get install curl)."
  else
    warn "/api/health did not answer on 127.0.0.1:${HOST_PORT} (VB_HOST_PORT)."
  fi
  if stats="$(api_get '/api/session?action=stats')"; then
    print_session_summary "$stats"
  fi

  case "$health" in
    healthy | none) return 0 ;;
    starting)
      warn "${CONTAINER} is still starting; run status again in a few seconds."
      return 0
      ;;
    *)
      err "${CONTAINER} is ${health}. Last health check output:"
      last_health_output >&2 || true
      die "$EXIT_UNHEALTHY" "See ./docker-ops.sh logs; ./docker-ops.sh restart usually clears a stuck server."
      ;;
  esac
}

cmd_health() {
  require_docker
  if multi; then
    detect_compose
    read_services
    check_stack 0
    ((STACK_PROBLEMS == 0)) || exit "$EXIT_UNHEALTHY"
    ok "${STACK} stack: ${READY_APPS} instance(s) ready, the store and nginx healthy."
    return 0
  fi
  container_exists || die "$EXIT_UNHEALTHY" "Container ${CONTAINER} does not exist. Start it: ./docker-ops.sh start"
  local state health
  state="$(container_field '{{.State.Status}}')"
  health="$(health_of)"
  if [[ "$state" == running && "$health" == healthy ]]; then
    ok "${CONTAINER}: running, healthy."
    return 0
  fi
  err "${CONTAINER}: ${state}, health ${health}."
  last_health_output >&2 || true
  exit "$EXIT_UNHEALTHY"
}

cmd_logs() {
  require_docker
  if multi; then
    detect_compose
    compose logs --tail="$LOG_LINES" "$@"
    return 0
  fi
  container_exists || die "$EXIT_UNHEALTHY" "Container ${CONTAINER} does not exist. Start it: ./docker-ops.sh start"
  "$DOCKER_BIN" logs --tail "$LOG_LINES" "$@" "$CONTAINER"
}

cmd_shell() {
  require_docker
  local target="$CONTAINER"
  if multi; then
    detect_compose
    read_services
    local service="${1:-${APPS[0]}}"
    target="$(service_container "$service")"
    [[ -n "$target" ]] || die "$EXIT_UNHEALTHY" "${service} has no container. Start it: VB_STACK=${STACK} ./docker-ops.sh start"
  fi
  [[ "$(container_field '{{.State.Status}}' "$target" || true)" == running ]] ||
    die "$EXIT_UNHEALTHY" "Container ${target} is not running. Start it: ./docker-ops.sh start"
  if interactive; then
    exec "$DOCKER_BIN" exec -it "$target" /bin/bash
  fi
  exec "$DOCKER_BIN" exec -i "$target" /bin/bash
}

cmd_clean() {
  local assume_yes=0 what="the ${CONTAINER} container and the ${IMAGE} image"
  [[ "${1:-}" == --yes || "${1:-}" == -y ]] && assume_yes=1
  preflight
  multi && what="every container, image and volume of the ${STACK} stack, Redis's data (every place in the queue) included"
  if ((!assume_yes)); then
    if ! interactive; then
      die "$EXIT_USAGE" "clean removes ${what}; rerun as: ./docker-ops.sh clean --yes"
    fi
    local answer=''
    read -r -p "Remove ${what}? [y/N] " answer || true
    [[ "$answer" =~ ^[Yy] ]] || die "$EXIT_FAILED" "Nothing removed."
  fi
  compose down --rmi all --volumes --remove-orphans || die "$EXIT_FAILED" "docker compose down failed."
  if multi; then
    ok "Removed the ${STACK} stack."
  else
    ok "Removed the container and the image."
  fi
}

pull_latest() {
  if [[ "${VB_SKIP_GIT_PULL:-0}" == 1 ]]; then
    info "Skipping git pull (VB_SKIP_GIT_PULL=1)."
  elif git rev-parse --abbrev-ref --symbolic-full-name '@{u}' >/dev/null 2>&1; then
    info "Pulling the latest code..."
    git pull --ff-only || die "$EXIT_FAILED" "git pull failed: resolve it by hand, then run ./docker-ops.sh update again."
  else
    info "No upstream branch to pull from: rebuilding the current tree."
  fi
}

cmd_update() {
  preflight
  require_openai_key
  pull_latest
  if multi; then
    read_services
    build_stack || die "$EXIT_FAILED" "The image build failed; the running instances were left as they were."
    rolling_restart
    refresh_front
    return 0
  fi
  compose build voice-broker || die "$EXIT_FAILED" "The image build failed; the running container was left as it was."
  compose up -d voice-broker || die "$EXIT_FAILED" "docker compose up failed."
  wait_healthy || exit $?
}

main() {
  select_stack
  local command="${1:-help}"
  (($# > 0)) && shift
  case "$command" in
    build) cmd_build "$@" ;;
    start | up) cmd_start ;;
    stop | down) cmd_stop ;;
    restart) cmd_restart ;;
    reload) cmd_reload ;;
    status) cmd_status ;;
    logs) cmd_logs "$@" ;;
    logs:follow | follow) cmd_logs --follow "$@" ;;
    shell | sh) cmd_shell "$@" ;;
    health) cmd_health ;;
    clean) cmd_clean "$@" ;;
    update) cmd_update ;;
    scale-up) cmd_scale_up "$@" ;;
    scale-down) cmd_scale_down "$@" ;;
    rolling-restart) cmd_rolling_restart ;;
    deploy) cmd_deploy ;;
    help | -h | --help) usage ;;
    *)
      usage >&2
      die "$EXIT_USAGE" "Unknown command: ${command}"
      ;;
  esac
}

main "$@"
