#!/usr/bin/env bash
# What one sideband connection costs: memory (RSS per idle wss connection, N connections) and CPU
# per server event, voice-broker's sideband_client (alone, and with its call monitor deciding on
# every event) beside the anchor, Node's `ws` client, against the same fake OpenAI over TLS on
# loopback.  Runs interleaved, medians and ratios to the anchor printed at the end.
#   bench/sideband.sh            # N=200 connections, 5 rounds of events, 3 runs of each
#   bench/sideband.sh --smoke    # N=10, 1 round, 1 run: proves the script works
# Environment: BENCH_SIDEBANDS (200), BENCH_SIDEBAND_ROUNDS (5), BENCH_SIDEBAND_RUNS (3),
# SIDEBAND_BENCH_BIN (skip the build), BENCH_SERVER_CPU / BENCH_CLIENT_CPU (0 / 1).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

N="${BENCH_SIDEBANDS:-200}"
ROUNDS="${BENCH_SIDEBAND_ROUNDS:-5}"
RUNS="${BENCH_SIDEBAND_RUNS:-3}"
if [[ "${1:-}" == "--smoke" ]]; then
  N=10 ROUNDS=1 RUNS=1
fi
OUT="$(mktemp -d "${TMPDIR:-/tmp}/vb-sideband-bench.XXXXXX")"
mkdir -p "$OUT/logs"
cleanup() {
  stop_all_started
  rm -rf "$OUT"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

# Tools: the fake's and the anchor's node modules, and the bench program (release build).
[[ -d "$ROOT/tests/fakes/fake-openai/node_modules" ]] || npm ci --prefix "$ROOT/tests/fakes/fake-openai" --no-audit --no-fund >&2
[[ -d "$HERE/node_modules/ws" ]] || npm ci --prefix "$HERE" --no-audit --no-fund >&2
BIN="${SIDEBAND_BENCH_BIN:-}"
if [[ -z "$BIN" ]]; then
  log "building sideband_bench (release preset)"
  (cd "$ROOT" && cmake --preset release >/dev/null && cmake --build --preset release --target sideband_bench >&2)
  BIN="$ROOT/build/release/sideband_bench"
fi
[[ -x "$BIN" ]] || die "no sideband_bench at $BIN"

KEY="bench-openai-key-0123456789"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null
printf 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n' >"$OUT/offer.sdp"

# start_fake: a fresh fake on the server core (TLS, silent script, no pings); sets FAKE_URL.
start_fake() {
  local i port
  start_bg fake env FAKE_OPENAI_KEY="$KEY" node "$ROOT/tests/fakes/fake-openai/server.mjs" --port 0 \
    --tls-cert "$OUT/cert.pem" --tls-key "$OUT/key.pem" --script '{"mode":"silent"}' --sideband-ping-ms 0
  FAKE_PID=$BG_PID
  for ((i = 0; i < 200; i++)); do
    port="$(sed -n 's/^{"listening":\([0-9]*\)}$/\1/p' "$OUT/logs/fake.log" 2>/dev/null | head -1)"
    [[ -n "$port" ]] && break
    sleep 0.05
  done
  [[ -n "$port" ]] || die "the fake did not start: $(cat "$OUT/logs/fake.log")"
  FAKE_URL="https://127.0.0.1:$port"
}

# make_calls N: N calls at the fake (dummy offers, no WebRTC), their ids in $OUT/ids.txt.
make_calls() {
  local i location
  : >"$OUT/ids.txt"
  for ((i = 0; i < $1; i++)); do
    location="$(curl -s --cacert "$OUT/cert.pem" -D - -o /dev/null -X POST -H "Authorization: Bearer $KEY" \
      -H 'Content-Type: application/sdp' --data-binary @"$OUT/offer.sdp" "$FAKE_URL/v1/realtime/calls" |
      tr -d '\r' | sed -n 's/^[Ll]ocation: .*\/\(rtc_[A-Za-z0-9_-]*\).*/\1/p')"
    [[ -n "$location" ]] || die "the fake opened no call"
    echo "$location" >>"$OUT/ids.txt"
  done
}

run_side() {
  local side="$1" line
  case "$side" in
  voice-broker) line="$(taskset -c "$CLIENT_CPU" "$BIN" --base "$FAKE_URL" --ca "$OUT/cert.pem" --key "$KEY" --ids "$OUT/ids.txt" --rounds "$ROUNDS")" ;;
  voice-broker+monitor) line="$(taskset -c "$CLIENT_CPU" "$BIN" --base "$FAKE_URL" --ca "$OUT/cert.pem" --key "$KEY" --ids "$OUT/ids.txt" --rounds "$ROUNDS" --monitor)" ;;
  node-ws) line="$(taskset -c "$CLIENT_CPU" node --expose-gc "$HERE/sideband-anchor.mjs" --base "$FAKE_URL" --ca "$OUT/cert.pem" --key "$KEY" --ids "$OUT/ids.txt" --rounds "$ROUNDS")" ;;
  esac
  echo "$line" >>"$OUT/results.jsonl"
  log "$side: $line"
}

SIDES=(voice-broker node-ws voice-broker+monitor)
for ((run = 1; run <= RUNS; run++)); do
  start_fake
  make_calls "$N"
  order=("${SIDES[@]:$(((run - 1) % ${#SIDES[@]}))}" "${SIDES[@]:0:$(((run - 1) % ${#SIDES[@]}))}")
  for side in "${order[@]}"; do
    quiet_check "sideband $side run $run" || true
    run_side "$side"
  done
  stop_pid "$FAKE_PID"
done

# shellcheck disable=SC2016 # JavaScript, not shell: its ${...} are template literals
node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const by = {};
for (const l of lines) (by[l.impl] ??= []).push(l);
const anchor = by["node-ws"];
const a = { kb: median(anchor.map((l) => l.kb_per_connection)), us: median(anchor.map((l) => l.us_per_event)) };
console.log(`\nsideband cost, N=${lines[0].connections} wss connections, ${lines.length / Object.keys(by).length} run(s), medians [min-max]`);
console.log("| client | KB per idle connection | ratio to node ws | CPU us per event | ratio to node ws | events/run |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const [impl, ls] of Object.entries(by)) {
  const kb = ls.map((l) => l.kb_per_connection), us = ls.map((l) => l.us_per_event);
  const range = (xs, d) => `[${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)}]`;
  console.log(`| ${impl} | ${median(kb).toFixed(1)} ${range(kb, 1)} | ${(median(kb) / a.kb).toFixed(2)} | ${median(us).toFixed(2)} ${range(us, 2)} | ${(median(us) / a.us).toFixed(2)} | ${median(ls.map((l) => l.events))} |`);
}
' "$OUT/results.jsonl"
