#!/usr/bin/env bash
# The observability files under docker/: Prometheus' configuration, alert rules and their unit
# tests (promtool from Debian's `prometheus` package), every Grafana dashboard query parsed by
# promtool, every metric name they use checked against the /metrics of the real server, and a
# real Prometheus scraping that server with the shipped configuration and rules. Everything on
# 127.0.0.1; every process started here is stopped by pid.
#
#   VOICE_BROKER_BIN=build/debug/voice-broker tests/deploy/observability.sh
#
# Names the server does not export yet (cost guard, multi-instance, the console's backend) are
# listed in tests/deploy/observability-pending-metrics.txt; the check fails on any other missing
# name, and on a listed name the server exports already.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=tests/deploy/lib.sh
source "$HERE/lib.sh"

PROM_DIR="$ROOT/docker/prometheus"
DASHBOARD="$ROOT/docker/grafana/voice-broker.json"
ALLOWLIST="$HERE/observability-pending-metrics.txt"
BIN="${VOICE_BROKER_BIN:-$ROOT/build/debug/voice-broker}"

apt_ensure promtool:prometheus curl:curl ss:iproute2
command -v node >/dev/null || { echo "node (>= 20) is required: scripts/install-deps.sh test installs it" >&2; exit 1; }
[[ -x "$BIN" ]] || { echo "no voice-broker binary at $BIN: build it, or set VOICE_BROKER_BIN" >&2; exit 1; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/vb-observability.XXXXXX")"
BROKER_PID=''
PROM_PID=''
cleanup() {
  local code=$?
  for pid in "$PROM_PID" "$BROKER_PID"; do
    [[ -n "$pid" ]] || continue
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
  exit "$code"
}
trap cleanup EXIT

# ---- the files on their own ----------------------------------------------------------------
check "promtool check config docker/prometheus/prometheus.yml" promtool check config "$PROM_DIR/prometheus.yml"
check "promtool check rules docker/prometheus/alerts.yml" promtool check rules "$PROM_DIR/alerts.yml"
check "promtool test rules docker/prometheus/alerts.test.yml" bash -c "cd '$PROM_DIR' && promtool test rules alerts.test.yml"
check "the dashboard is JSON with panels" node -e '
  const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  if (!d.uid || !d.title || !(d.panels?.length > 10)) throw new Error("missing uid, title or panels");' "$DASHBOARD"
check "every dashboard query parses (promtool check rules)" bash -c \
  "node '$HERE/observability-metrics.mjs' queries '$DASHBOARD' '$TMP/dashboard-queries.yml' && promtool check rules '$TMP/dashboard-queries.yml'"
if command -v docker-compose >/dev/null 2>&1; then
  check "docker-compose config docker/compose.observability.yml (with the grafana profile)" \
    docker-compose -f "$ROOT/docker/compose.observability.yml" --profile grafana config -q
fi

# ---- against the real server ------------------------------------------------------------------
mkdir -p "$TMP/broker"
port="$(free_port)"
(cd "$TMP/broker" && exec env -i PATH="$PATH" HOME="$TMP/broker" HOST=127.0.0.1 PORT="$port" \
  STATIC_DIR="$ROOT/static" LOG_LEVEL=warn ASAN_OPTIONS=detect_leaks=0 "$BIN") >"$TMP/broker.log" 2>&1 &
BROKER_PID=$!
if wait_until 20 curl -fsS "http://127.0.0.1:$port/api/health"; then
  pass "voice-broker answers on 127.0.0.1:$port"
  curl -fsS "http://127.0.0.1:$port/metrics" >"$TMP/metrics.txt"
  check "every metric name in alerts.yml and the dashboard is exported, or allowlisted as pending" \
    node "$HERE/observability-metrics.mjs" compare "$TMP/metrics.txt" "$ALLOWLIST" "$PROM_DIR/alerts.yml" "$DASHBOARD"
  node "$HERE/observability-metrics.mjs" compare "$TMP/metrics.txt" "$ALLOWLIST" "$PROM_DIR/alerts.yml" "$DASHBOARD" | head -1 | sed 's/^/     | /' || true
else
  fail "voice-broker answers on 127.0.0.1:$port" "$(tail -n 20 "$TMP/broker.log")"
fi

# A real Prometheus with the shipped configuration and rules (the targets file pointed at this
# server, and a 1 s scrape so the test waits seconds): the target is up, every rule loads healthy.
mkdir -p "$TMP/prom/targets" "$TMP/prom-data"
cp "$PROM_DIR/alerts.yml" "$TMP/prom/"
sed -e 's/scrape_interval: 15s/scrape_interval: 1s/' -e 's/scrape_timeout: 5s/scrape_timeout: 1s/' \
  -e 's/evaluation_interval: 15s/evaluation_interval: 1s/' -e 's/refresh_interval: 30s/refresh_interval: 1s/' \
  "$PROM_DIR/prometheus.yml" >"$TMP/prom/prometheus.yml"
printf -- '- targets:\n    - 127.0.0.1:%s\n' "$port" >"$TMP/prom/targets/voice-broker.yml"
prom_port="$(free_port)"
prometheus --config.file="$TMP/prom/prometheus.yml" --storage.tsdb.path="$TMP/prom-data" \
  --web.listen-address="127.0.0.1:$prom_port" >"$TMP/prometheus.log" 2>&1 &
PROM_PID=$!
target_up() {
  curl -fsS "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode 'query=up{job="voice-broker"} == 1' | grep -q '"value"'
}
rules_healthy() {
  local rules
  rules="$(curl -fsS "http://127.0.0.1:$prom_port/api/v1/rules")" || return 1
  [[ "$(grep -o '"health":"ok"' <<<"$rules" | wc -l)" -eq "$(grep -c '^      - alert:' "$PROM_DIR/alerts.yml")" ]]
}
if wait_until 30 target_up; then
  pass "Prometheus (docker/prometheus/prometheus.yml) scrapes the server: up == 1"
else
  fail "Prometheus (docker/prometheus/prometheus.yml) scrapes the server: up == 1" "$(tail -n 15 "$TMP/prometheus.log")"
fi
if wait_until 20 rules_healthy; then
  pass "Prometheus evaluates every alert rule of alerts.yml without error"
else
  fail "Prometheus evaluates every alert rule of alerts.yml without error" \
    "$(curl -fsS "http://127.0.0.1:$prom_port/api/v1/rules" 2>&1 | head -c 2000)"
fi

summary
