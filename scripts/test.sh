#!/usr/bin/env bash
# README's test command (and CI's): installs what is missing, builds the Debug + ASan/UBSan
# preset, and runs every test suite.  Prints one closing summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/install-deps.sh test

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
cmake --preset debug >/dev/null
cmake --build --preset debug

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
ctest --preset debug -j2 --timeout 300

echo "all suites passed in $(( $(date +%s) - start )) s"
