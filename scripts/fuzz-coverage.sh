#!/usr/bin/env bash
# Line coverage of what the fuzzers reached: builds the fuzz-coverage preset (the same targets
# with clang source coverage, no sanitizers), replays each target's corpus once (by default the
# working corpus of the last scripts/fuzz.sh run, build/fuzz/work/<target>/corpus, else the seed
# corpus), and prints llvm-cov-16's line coverage of the src/ files that target reaches.
# Usage: scripts/fuzz-coverage.sh [target...]     FUZZ_CORPUS_ROOT=dir replays dir/<target>/corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}" CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake --preset fuzz-coverage >/dev/null
cmake --build --preset fuzz-coverage

out=build/fuzz-coverage/report
rm -rf "$out"
mkdir -p "$out"
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || mapfile -t targets < <(cd tests/fuzz && for f in fuzz_*.cpp; do echo "${f%.cpp}"; done)
for t in "${targets[@]}"; do
    corpus=${FUZZ_CORPUS_ROOT:-build/fuzz/work}/$t/corpus
    [[ -d "$corpus" ]] || corpus=tests/fuzz/corpus/$t
    mkdir -p "$out/$t/tmp"
    # -runs=0: run each corpus file once, no fuzzing.  VB_FUZZ_KNOWN: the open findings
    # (tests/fuzz/findings/OPEN) are stepped over rather than crash the replay.
    VB_FUZZ_KNOWN=$(sed 's/#.*//' tests/fuzz/findings/OPEN 2>/dev/null | xargs | tr ' ' ',') \
    TMPDIR="$PWD/$out/$t/tmp" LLVM_PROFILE_FILE="$PWD/$out/$t/%p.profraw" \
        build/fuzz-coverage/fuzzers/"$t" -runs=0 -close_fd_mask=3 "$corpus" >/dev/null 2>&1 || true
    llvm-profdata-16 merge -sparse "$out/$t"/*.profraw -o "$out/$t.profdata"
    llvm-cov-16 report build/fuzz-coverage/fuzzers/"$t" -instr-profile="$out/$t.profdata" \
        -ignore-filename-regex='/usr/|tests/' >"$out/$t.txt"
    # llvm-cov drops the folder all listed files share: names are src/... or bare.
    echo "== $t ($(find "$corpus" -maxdepth 1 -type f | wc -l) inputs from $corpus): our files reached, line coverage"
    awk 'NR > 2 && $1 !~ /^-/ && $1 != "TOTAL" && $10 != "0.00%" {printf "   %-28s lines %6s of %5s  (%s)\n", $1, $8 - $9, $8, $10}' "$out/$t.txt"
    awk '$1 == "TOTAL" {printf "   TOTAL (every file of ours linked) lines %s of %s  (%s)\n", $8 - $9, $8, $10}' "$out/$t.txt"
done
