#!/usr/bin/env bash
# Static checks of the deployment files: shellcheck on every shell script in the repository
# and an offline Dockerfile linter (dockerfile-utils from npm, installed into
# tests/deploy/node_modules, which git ignores) on the Dockerfile and docker/*/Dockerfile.
#
#   tests/deploy/lint.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=tests/deploy/lib.sh
source "$HERE/lib.sh"

if ! command -v shellcheck >/dev/null 2>&1; then
  apt_ensure shellcheck:shellcheck
fi
if [[ ! -x "$HERE/node_modules/.bin/dockerfile-utils" ]]; then
  echo "Installing the Dockerfile linter into tests/deploy/node_modules..."
  (cd "$HERE" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi

mapfile -t scripts < <(cd "$ROOT" && find . \( -name node_modules -o -name .git -o -name 'build' -o -name 'build-*' \
  -o -name 'cmake-build-*' \) -prune -o -type f -name '*.sh' -print | sort)
if ((${#scripts[@]} == 0)); then
  fail "found shell scripts to check"
fi
# From the top so the `# shellcheck source=tests/deploy/...` directives resolve.
shellcheck_from_root() { (cd "$ROOT" && shellcheck -x "$1"); }
for script in "${scripts[@]}"; do
  check "shellcheck ${script#./}" shellcheck_from_root "$script"
done

for dockerfile in "$ROOT"/Dockerfile "$ROOT"/*.Dockerfile "$ROOT"/docker/*/Dockerfile; do
  [[ -f "$dockerfile" ]] || continue
  check "dockerfile-utils lint ${dockerfile#"$ROOT"/}" "$HERE/node_modules/.bin/dockerfile-utils" lint "$dockerfile"
done

summary
