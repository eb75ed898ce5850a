#!/usr/bin/env bash
# Figure 7: cold start, from spawning voice-broker to its first 200 on /api/health, COLD_STARTS
# times (the table shows the median).  Plain HTTP, the real static folder.  Called by run.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
: "${OUT:?}" "${ROOT:?}" "${BIN:?}" "${COLD_STARTS:?}"
cd "$OUT"

for ((run = 1; run <= COLD_STARTS; run++)); do
  quiet_check "fig 7 cold start $run"
  json="$(taskset -c "$CLIENT_CPU" node "$HERE/coldstart.mjs" --bin "$BIN" --static "$ROOT/static" --port "$(free_port)" \
    --cpu "$SERVER_CPU")" || die "fig 7: $json"
  log "fig 7 run $run: $json"
  record fig=7 side=voice-broker run="$run" coldStartMs="$(grep -o '[0-9.]*' <<<"$json")"
done
