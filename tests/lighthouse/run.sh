#!/usr/bin/env bash
# Lighthouse 12.2.3 (pinned: later ones need Node 22) on the pages of pages.mjs, served by the real
# voice-broker binary, in Debian's Chromium, inside a network namespace that has only loopback.
# Fails unless every page scores at least LIGHTHOUSE_MIN_SCORE (default 95) in performance,
# accessibility, best practices and SEO. Installs what is missing and builds the Debug + ASan/UBSan
# binary unless VOICE_BROKER_BIN names one.
#
#   tests/lighthouse/run.sh
#
# Environment: VOICE_BROKER_BIN (skip the build), CHROME_PATH (default /usr/bin/chromium),
# LIGHTHOUSE_MIN_SCORE (default 95), LIGHTHOUSE_TIMEOUT_SECONDS (whole run, default 600),
# LIGHTHOUSE_NETNS=0 (run without the namespace, for machines that cannot create one).
set -euo pipefail

lh_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$lh_dir/../.." && pwd)"
cd "$repo"

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

export CHROME_PATH="${CHROME_PATH:-/usr/bin/chromium}"
missing=()
[[ -x "$CHROME_PATH" ]] || missing+=(chromium)
command -v ip >/dev/null || missing+=(iproute2)
command -v unshare >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
  echo "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v node >/dev/null || { echo "node (>= 20) is required: scripts/install-deps.sh test installs it" >&2; exit 1; }

npm ci --prefix tests/lighthouse --no-audit --no-fund --loglevel=error

scratch="$(mktemp -d "${TMPDIR:-/tmp}/vb-lighthouse.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
if [[ -n "${VOICE_BROKER_BIN:-}" ]]; then
  [[ -x "$VOICE_BROKER_BIN" ]] || { echo "VOICE_BROKER_BIN=$VOICE_BROKER_BIN is not an executable" >&2; exit 1; }
  VOICE_BROKER_BIN="$(realpath "$VOICE_BROKER_BIN")"  # the tests run from another folder
else
  export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
  cmake --preset debug >/dev/null
  cmake --build build/debug -j2 --target voice-broker
  # A private copy: a rebuild of build/debug during the run must not swap the binary under it.
  cp build/debug/voice-broker "$scratch/voice-broker"
  VOICE_BROKER_BIN="$scratch/voice-broker"
fi
export VOICE_BROKER_BIN

export LIGHTHOUSE_NETNS="${LIGHTHOUSE_NETNS:-1}"
if [[ "$LIGHTHOUSE_NETNS" == 0 ]]; then
  echo "LIGHTHOUSE_NETNS=0: running without the loopback-only network namespace"
  namespace=()
elif [[ $(id -u) -eq 0 ]]; then
  namespace=(unshare --net)
else
  namespace=(unshare --net --map-root-user)
fi
if ((${#namespace[@]})) && ! "${namespace[@]}" true 2>/dev/null; then
  echo "cannot create a network namespace here (${namespace[*]}); LIGHTHOUSE_NETNS=0 runs without one" >&2
  exit 1
fi

# shellcheck disable=SC2016 # expanded by the inner bash, inside the namespace
run=(bash -c '{ [ "$LIGHTHOUSE_NETNS" = 0 ] || ip link set lo up; } && exec node "$0"' "$lh_dir/lighthouse.mjs")
status=0
timeout --kill-after=10 "${LIGHTHOUSE_TIMEOUT_SECONDS:-600}" "${namespace[@]}" "${run[@]}" || status=$?
if ((status == 124)); then echo "lighthouse did not finish within ${LIGHTHOUSE_TIMEOUT_SECONDS:-600} s" >&2; fi
exit "$status"
