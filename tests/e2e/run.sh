#!/usr/bin/env bash
# The end-to-end browser suite: Debian's Chromium against the real voice-broker binary and the
# fake OpenAI, inside a network namespace that has only loopback (no test traffic can leave the
# machine). Installs what is missing, builds the Debug + ASan/UBSan binary unless VOICE_BROKER_BIN
# names one, and exits non-zero when a test fails.
#
#   tests/e2e/run.sh                              # the whole suite
#   tests/e2e/run.sh --test-name-pattern=relay    # extra arguments go to node --test
#
# Environment: VOICE_BROKER_BIN (skip the build), CHROMIUM (default /usr/bin/chromium),
# E2E_TIMEOUT_SECONDS (whole-suite bound, default 600), E2E_NETNS=0 (run without the namespace,
# for machines that cannot create one).
set -euo pipefail

e2e_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$e2e_dir/../.." && pwd)"
cd "$repo"
start=$(date +%s)

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# Debian's Chromium (the browser under test) and iproute2 (to bring loopback up in the namespace).
missing=()
[[ -x "${CHROMIUM:-/usr/bin/chromium}" ]] || missing+=(chromium)
command -v ip >/dev/null || missing+=(iproute2)
command -v unshare >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
  echo "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v node >/dev/null || { echo "node (>= 20) is required: scripts/install-deps.sh test installs it" >&2; exit 1; }

npm ci --prefix tests/fakes/fake-openai --no-audit --no-fund --loglevel=error
npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error

scratch="$(mktemp -d "${TMPDIR:-/tmp}/vb-e2e.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
if [[ -n "${VOICE_BROKER_BIN:-}" ]]; then
  [[ -x "$VOICE_BROKER_BIN" ]] || { echo "VOICE_BROKER_BIN=$VOICE_BROKER_BIN is not an executable" >&2; exit 1; }
  VOICE_BROKER_BIN="$(realpath "$VOICE_BROKER_BIN")"  # the tests run from another folder
else
  export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
  cmake --preset debug >/dev/null
  cmake --build build/debug -j2 --target voice-broker
  # A private copy: a rebuild of build/debug while the suite runs must not swap the binary under it.
  cp build/debug/voice-broker "$scratch/voice-broker"
  VOICE_BROKER_BIN="$scratch/voice-broker"
fi
export VOICE_BROKER_BIN

rm -rf test-output/e2e
mkdir -p test-output/e2e

# Inside the namespace: loopback up, then the tests, one file at a time (each starts its own
# browsers and broker; two at once would only compete for the CPU and make timings noisy).
# The spec report goes to the terminal, a TAP copy to test-output/e2e/results.tap.
# shellcheck disable=SC2016 # expanded by the inner bash, inside the namespace
run_tests=(
  bash -c '{ [ "$E2E_NETNS" = 0 ] || ip link set lo up; } && cd "$1" && shift && exec node --test --test-concurrency=1 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$0" "$@" ./*.test.mjs'
  "$repo/test-output/e2e/results.tap" "$e2e_dir" "$@"
)
export E2E_NETNS="${E2E_NETNS:-1}"
if [[ "$E2E_NETNS" == 0 ]]; then
  echo "E2E_NETNS=0: running without the loopback-only network namespace"
  namespace=()
elif [[ $(id -u) -eq 0 ]]; then
  namespace=(unshare --net)
else
  namespace=(unshare --net --map-root-user)
fi
if ((${#namespace[@]})) && ! "${namespace[@]}" true 2>/dev/null; then
  echo "cannot create a network namespace here (${namespace[*]}); E2E_NETNS=0 runs without one" >&2
  exit 1
fi

status=0
timeout --kill-after=10 "${E2E_TIMEOUT_SECONDS:-600}" "${namespace[@]}" "${run_tests[@]}" || status=$?
if ((status == 124)); then echo "the e2e suite did not finish within ${E2E_TIMEOUT_SECONDS:-600} s" >&2; fi
tap=test-output/e2e/results.tap
[[ -f "$tap" ]] || : >"$tap"
passed=$(grep -E '^ok ' "$tap" | grep -cvE '# (TODO|SKIP)' || true)
failed=$(grep -E '^not ok ' "$tap" | grep -cv '# TODO' || true)
todo=$(grep -cE '^(not )?ok .*# TODO' "$tap" || true)
skipped=$(grep -cE '^ok .*# SKIP' "$tap" || true)
echo "e2e: $passed passed, $failed failed, $todo todo (known server bugs), $skipped skipped" \
  "in $(( $(date +%s) - start )) s; screenshots and axe reports in test-output/e2e/"
exit "$status"
