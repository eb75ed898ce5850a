#!/usr/bin/env bash
# Installs, with apt, whatever the build and the tests need and this machine lacks.
# Usage: scripts/install-deps.sh [build|test]   (test adds what the test suites need)
set -euo pipefail

mode="${1:-build}"
# tzdata: BUDGET_TIMEZONE other than UTC reads the system's zoneinfo files (and the tests of it).
packages=(g++ cmake ninja-build ccache pkg-config libboost1.81-dev libssl-dev nlohmann-json3-dev libspdlog-dev
          libcurl4-openssl-dev zlib1g-dev libhiredis-dev ca-certificates openssl tzdata)
if [[ "$mode" == test ]]; then
  packages+=(libgtest-dev libgmock-dev redis-server redis-sentinel)
  # The attack tools (tests/attack/): testssl.sh and slowhttptest, nginx as the reference server.
  packages+=(testssl.sh slowhttptest nginx jq curl iproute2 perl)
  # prometheus: its promtool checks docker/prometheus/ (tests/deploy/observability.sh).
  packages+=(prometheus)
  # The fuzz preset (scripts/fuzz.sh): Debian's clang 16 with its sanitizer runtimes and
  # libFuzzer; llvm-16 for llvm-symbolizer (readable stacks), llvm-cov and llvm-profdata
  # (scripts/fuzz-coverage.sh).  The tsan preset uses g++, whose libtsan2 comes with it.
  packages+=(clang-16 libclang-rt-16-dev libfuzzer-16-dev llvm-16)
  command -v node >/dev/null 2>&1 || packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node may come from outside apt (the machine's own install counts).
if command -v node >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: everything needed is installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
