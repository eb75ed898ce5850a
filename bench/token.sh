#!/usr/bin/env bash
# Figure 5: what minting a key through voice-broker adds to the upstream's own latency.
# voice-broker (plain HTTP, one I/O thread, MAX_CONCURRENT_USERS=60) mints through the fake
# OpenAI; the same Node client then calls the fake directly with the body voice-broker sends.
# Alone (1 caller) and with 50 concurrent callers, interleaved, TOKEN_MINTS keys per run.
# voice-broker has the server core to itself; the fake OpenAI shares the other core with the
# client in both setups, as a remote upstream would not take CPU from the broker.  Called by run.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
: "${OUT:?}" "${ROOT:?}" "${BIN:?}" "${RUNS:?}" "${TOKEN_MINTS:?}"
trap stop_all_started EXIT
cd "$OUT"

start_fake_openai

VB_PORT="$(free_port)"
start_bg vb-token env DATA_DIR="$(fresh_data_dir)" STATIC_DIR="$ROOT/static" HOST=127.0.0.1 PORT="$VB_PORT" THREADS=1 LOG_LEVEL=warn \
  MAX_CONCURRENT_USERS=60 MAX_QUEUE_LENGTH=1000 MAX_TICKETS_PER_ADDRESS=0 JOIN_RATE_PER_ADDRESS=0 OPENAI_API_KEY="$FAKE_KEY" OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT" "$BIN"
VB_PID=$BG_PID
wait_http "http://127.0.0.1:$VB_PORT/api/health"

mint_run() { # SIDE CALLERS RUN
  local side="$1" callers="$2" run="$3" json target=vb url="http://127.0.0.1:$VB_PORT" pid="$VB_PID"
  if [[ "$side" == fake-direct ]]; then target=fake url="http://127.0.0.1:$FAKE_PORT" pid="$FAKE_PID"; fi
  quiet_check "fig 5 $side $callers caller(s) run $run"
  json="$(taskset -c "$CLIENT_CPU" node "$HERE/token-load.mjs" --target "$target" --url "$url" --callers "$callers" \
    --mints "$TOKEN_MINTS" --pid "$pid" --key "$FAKE_KEY" --hz "$CLK_TCK")" || die "fig 5 $side: $json"
  log "fig 5 $side, $callers caller(s), run $run: $json"
  # Flatten the client's JSON into record's KEY=VALUE pairs.
  # shellcheck disable=SC2046
  record fig=5 side="$side" callers="$callers" run="$run" $(node -e 'const o=JSON.parse(process.argv[1]);for(const[k,v] of Object.entries(o))if(typeof v==="number")console.log(k+"="+v)' "$json")
}

for ((run = 1; run <= RUNS; run++)); do
  for callers in 1 50; do
    if ((run % 2)); then
      mint_run voice-broker "$callers" "$run"
      mint_run fake-direct "$callers" "$run"
    else
      mint_run fake-direct "$callers" "$run"
      mint_run voice-broker "$callers" "$run"
    fi
  done
done
