# shellcheck shell=bash
# Shared helpers for the deployment checks: pass/fail bookkeeping, bounded waits, free ports.
# Sourced, never run.

TESTS_PASSED=0
TESTS_FAILED=0
FAILED_NAMES=()

pass() {
  TESTS_PASSED=$((TESTS_PASSED + 1))
  printf 'ok   %s\n' "$1"
}

fail() {
  TESTS_FAILED=$((TESTS_FAILED + 1))
  FAILED_NAMES+=("$1")
  printf 'FAIL %s\n' "$1"
  if (($# > 1)); then
    printf '%s\n' "${@:2}" | sed 's/^/     | /'
  fi
}

# check NAME COMMAND...: passes when the command exits 0.
check() {
  local name="$1"
  shift
  local output
  if output="$("$@" 2>&1)"; then
    pass "$name"
  else
    fail "$name" "$(printf '%s' "$output" | tail -n 15)"
  fi
}

# expect_output NAME NEEDLE TEXT: passes when TEXT contains NEEDLE.
expect_output() {
  local name="$1" needle="$2" text="$3"
  if [[ "$text" == *"$needle"* ]]; then
    pass "$name"
  else
    fail "$name" "expected to find: $needle" "in: $(printf '%s' "$text" | tail -n 15)"
  fi
}

# expect_code NAME WANT GOT [OUTPUT]
expect_code() {
  local name="$1" want="$2" got="$3"
  if [[ "$want" == "$got" ]]; then
    pass "$name"
  else
    fail "$name" "exit code $got, expected $want" "${4:-}"
  fi
}

# wait_until SECONDS COMMAND...: polls the command every 0.2 s until it succeeds or time runs out.
wait_until() {
  local timeout="$1"
  shift
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# A TCP port nobody listens on right now, on 127.0.0.1; below Linux's ephemeral range
# (32768 and up), so an outgoing connection cannot be holding it.
free_port() {
  local port used
  used="$(ss -Htan 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)"
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 12000))
    if ! grep -qx "$port" <<<"$used"; then
      printf '%s\n' "$port"
      return 0
    fi
  done
  return 1
}

# indent PREFIX TEXT: prints TEXT with PREFIX before each line.
indent() {
  local line
  while IFS= read -r line; do printf '%s%s\n' "$1" "$line"; done <<<"$2"
}

# Prints the closing line every runner of this project reads and returns the verdict.
summary() {
  if ((TESTS_FAILED > 0)); then
    printf '\nFailed:\n'
    printf '  - %s\n' "${FAILED_NAMES[@]}"
  fi
  printf '\n%d passed, %d failed\n' "$TESTS_PASSED" "$TESTS_FAILED"
  ((TESTS_FAILED == 0))
}

# Installs Debian packages only when a command they provide is missing.
apt_ensure() {
  local missing=() pair cmd pkg
  for pair in "$@"; do
    cmd="${pair%%:*}"
    pkg="${pair#*:}"
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  echo "Installing ${missing[*]} with apt-get..."
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
