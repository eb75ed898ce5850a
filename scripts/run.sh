#!/usr/bin/env bash
# README's run command: installs what is missing, builds a Release voice-broker, and runs it on
# http://127.0.0.1:3000/ with the settings from .env.local / .env / config/session-limits.json.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true  # cache hits from any checkout folder
cmake --preset release >/dev/null
cmake --build --preset release
exec ./build/release/voice-broker "$@"
