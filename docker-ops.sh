#!/usr/bin/env bash
# Operates the voice-broker container: build, start, stop, status, logs, ...
# Run `./docker-ops.sh help` for the commands; DOCKER_GUIDE.md explains each one.
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
  stop          Stop the container (graceful: active sessions are told and ended)
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

Settings (environment): DOCKER_BIN, VB_COMPOSE, COMPOSE_FILE, VB_CONTAINER_NAME,
VB_HOST_PORT (${HOST_PORT}), VB_START_TIMEOUT (${START_TIMEOUT}s), ALLOW_NO_OPENAI_KEY=1,
VB_SKIP_GIT_PULL=1, NO_COLOR=1.
EOF
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

container_field() {
  "$DOCKER_BIN" inspect -f "$1" "$CONTAINER" 2>/dev/null
}

container_exists() { "$DOCKER_BIN" inspect "$CONTAINER" >/dev/null 2>&1; }

health_of() {
  container_field '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}'
}

last_health_output() {
  container_field '{{if .State.Health}}{{range .State.Health.Log}}{{.Output}}{{end}}{{end}}' | tail -n 5
}

# Polls the container's own HEALTHCHECK until it reports healthy, with a deadline.
wait_healthy() {
  local deadline=$((SECONDS + START_TIMEOUT)) state health
  info "Waiting up to ${START_TIMEOUT}s for ${CONTAINER} to become healthy..."
  while ((SECONDS < deadline)); do
    state="$(container_field '{{.State.Status}}' || echo missing)"
    health="$(health_of || echo none)"
    case "$state/$health" in
      running/healthy)
        ok "${CONTAINER} is running and healthy."
        return 0
        ;;
      running/none)
        warn "${CONTAINER} is running but has no health check to wait for."
        return 0
        ;;
      running/unhealthy)
        err "${CONTAINER} is unhealthy. Last health check output:"
        last_health_output >&2 || true
        show_log_tail
        return "$EXIT_UNHEALTHY"
        ;;
      exited/* | dead/* | missing/*)
        err "${CONTAINER} is not running (state: ${state})."
        show_log_tail
        return "$EXIT_UNHEALTHY"
        ;;
    esac
    sleep 1
  done
  err "${CONTAINER} did not become healthy within ${START_TIMEOUT}s (state: ${state}, health: ${health})."
  show_log_tail
  return "$EXIT_UNHEALTHY"
}

show_log_tail() {
  container_exists || return 0
  err "Last log lines:"
  "$DOCKER_BIN" logs --tail 20 "$CONTAINER" >&2 2>&1 || true
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

# --- commands ---------------------------------------------------------------------------

cmd_build() {
  preflight
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
  preflight
  require_openai_key
  info "Starting ${CONTAINER}..."
  compose up -d voice-broker || die "$EXIT_FAILED" "docker compose up failed (see the output above)."
  wait_healthy || exit $?
  info "Open http://127.0.0.1:${HOST_PORT}/ (put nginx with HTTPS in front for the microphone)."
}

cmd_stop() {
  preflight
  info "Stopping ${CONTAINER} (active sessions are told and ended)..."
  compose stop || die "$EXIT_FAILED" "docker compose stop failed."
  ok "Stopped."
}

cmd_restart() {
  preflight
  require_openai_key
  info "Recreating ${CONTAINER} with the current ${ENV_FILE}..."
  compose up -d --force-recreate voice-broker || die "$EXIT_FAILED" "docker compose up failed."
  wait_healthy || exit $?
}

# SIGHUP makes the server re-read config/session-limits.json (mounted from the host) and its
# certificates; its log says whether the new settings were taken.
cmd_reload() {
  require_docker
  [[ "$(container_field '{{.State.Status}}' || true)" == running ]] ||
    die "$EXIT_UNHEALTHY" "Container ${CONTAINER} is not running. Start it: ./docker-ops.sh start"
  local since deadline log
  since="$(date +%s)"
  "$DOCKER_BIN" kill -s HUP "$CONTAINER" >/dev/null || die "$EXIT_FAILED" "Could not send SIGHUP to ${CONTAINER}."
  deadline=$((SECONDS + 10))
  while ((SECONDS < deadline)); do
    log="$("$DOCKER_BIN" logs --since "$since" "$CONTAINER" 2>&1 || true)"
    if [[ "$log" == *"keeping the running settings"* ]]; then
      err "The new settings were refused; the server keeps the old ones:"
      grep -F "keeping the running settings" <<<"$log" >&2 || true
      exit "$EXIT_FAILED"
    fi
    if [[ "$log" == *reloaded* ]]; then
      ok "Reloaded."
      grep -F "limits reloaded" <<<"$log" || true
      return 0
    fi
    sleep 1
  done
  die "$EXIT_FAILED" "No confirmation in the log within 10 s; see ./docker-ops.sh logs."
}

cmd_status() {
  require_docker
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
  case "$health" in
    healthy) info "  health    ${C_GREEN}${health}${C_RESET}" ;;
    starting) info "  health    ${C_YELLOW}${health}${C_RESET}" ;;
    *) info "  health    ${C_RED}${health}${C_RESET}" ;;
  esac
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
    info "${C_BOLD}Sessions${C_RESET}   activeSessions $(json_number activeSessions "$stats")/$(json_number maxConcurrentUsers "$stats"), queueLength $(json_number queueLength "$stats")/$(json_number maxQueueLength "$stats"), $(json_number sessionDurationMinutes "$stats") min per session"
    info "  today     started $(json_number sessionsStarted "$stats"), completed $(json_number sessionsCompleted "$stats"), $(json_number minutesUsed "$stats") min, ~\$$(json_number estimatedCostUsd "$stats")"
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
  container_exists || die "$EXIT_UNHEALTHY" "Container ${CONTAINER} does not exist. Start it: ./docker-ops.sh start"
  "$DOCKER_BIN" logs --tail "$LOG_LINES" "$@" "$CONTAINER"
}

cmd_shell() {
  require_docker
  [[ "$(container_field '{{.State.Status}}' || true)" == running ]] ||
    die "$EXIT_UNHEALTHY" "Container ${CONTAINER} is not running. Start it: ./docker-ops.sh start"
  if interactive; then
    exec "$DOCKER_BIN" exec -it "$CONTAINER" /bin/bash
  fi
  exec "$DOCKER_BIN" exec -i "$CONTAINER" /bin/bash
}

cmd_clean() {
  local assume_yes=0
  [[ "${1:-}" == --yes || "${1:-}" == -y ]] && assume_yes=1
  preflight
  if ((!assume_yes)); then
    if ! interactive; then
      die "$EXIT_USAGE" "clean removes the container and the image; rerun as: ./docker-ops.sh clean --yes"
    fi
    local answer=''
    read -r -p "Remove the ${CONTAINER} container and the ${IMAGE} image? [y/N] " answer || true
    [[ "$answer" =~ ^[Yy] ]] || die "$EXIT_FAILED" "Nothing removed."
  fi
  compose down --rmi all --volumes --remove-orphans || die "$EXIT_FAILED" "docker compose down failed."
  ok "Removed the container and the image."
}

cmd_update() {
  preflight
  require_openai_key
  if [[ "${VB_SKIP_GIT_PULL:-0}" == 1 ]]; then
    info "Skipping git pull (VB_SKIP_GIT_PULL=1)."
  elif git rev-parse --abbrev-ref --symbolic-full-name '@{u}' >/dev/null 2>&1; then
    info "Pulling the latest code..."
    git pull --ff-only || die "$EXIT_FAILED" "git pull failed: resolve it by hand, then run ./docker-ops.sh update again."
  else
    info "No upstream branch to pull from: rebuilding the current tree."
  fi
  compose build voice-broker || die "$EXIT_FAILED" "The image build failed; the running container was left as it was."
  compose up -d voice-broker || die "$EXIT_FAILED" "docker compose up failed."
  wait_healthy || exit $?
}

main() {
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
    logs:follow | follow) cmd_logs --follow ;;
    shell | sh) cmd_shell ;;
    health) cmd_health ;;
    clean) cmd_clean "$@" ;;
    update) cmd_update ;;
    help | -h | --help) usage ;;
    *)
      usage >&2
      die "$EXIT_USAGE" "Unknown command: ${command}"
      ;;
  esac
}

main "$@"
