#!/usr/bin/env bash
# Builds the fuzz preset (clang-16, libFuzzer + ASan + UBSan) and runs every target of
# tests/fuzz for SECONDS each (default 30), one after another, each on a copy of its committed
# seed corpus (tests/fuzz/corpus/<target>; the copy grows, the committed corpus never does).
# Prints per target the executions, exec/s and libFuzzer's final coverage (cov = edges, ft =
# features), and fails on any crash, leak, timeout or out-of-memory, keeping the reproducer in
# build/fuzz/findings/.  Re-run one with: build/fuzz/fuzzers/<target> <reproducer>
#
# Usage: scripts/fuzz.sh [SECONDS]        FUZZ_TARGETS="fuzz_a fuzz_b" picks targets;
#        FUZZ_JOBS=2 runs two targets at a time (each still single-threaded).
#
# Findings (tests/fuzz/findings/<target>/<name>): every reproducer is replayed first and must run
# clean, except those of the open findings named in tests/fuzz/findings/OPEN: the targets step
# over those (VB_FUZZ_KNOWN) until their fix lands, and the replay says whether each still
# reproduces.  Delete a name from OPEN when its fix lands: its reproducers are then enforced.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || { echo "usage: scripts/fuzz.sh [seconds]" >&2; exit 2; }
jobs="${FUZZ_JOBS:-1}"

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}" CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

bin=build/fuzz/fuzzers
work=build/fuzz/work        # this run's corpora and logs (inspect or merge them by hand)
findings=build/fuzz/findings
rm -rf "$work"
mkdir -p "$work" "$findings"
if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cd tests/fuzz && for f in fuzz_*.cpp; do echo "${f%.cpp}"; done)
fi

# The open findings (see above), joined to whatever VB_FUZZ_KNOWN already names.
open_findings=$(sed 's/#.*//' tests/fuzz/findings/OPEN 2>/dev/null | xargs | tr ' ' ',')
export VB_FUZZ_KNOWN="${VB_FUZZ_KNOWN:+$VB_FUZZ_KNOWN,}$open_findings"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
if command -v llvm-symbolizer-16 >/dev/null; then
    ASAN_SYMBOLIZER_PATH="$(command -v llvm-symbolizer-16)"
    export ASAN_SYMBOLIZER_PATH
fi

run_target() {
    local t=$1 dir="$work/$1"
    mkdir -p "$dir/corpus" "$dir/tmp"
    cp tests/fuzz/corpus/"$t"/* "$dir/corpus/"
    local extra=()  # tests/fuzz/<target>.options: that target's own libFuzzer flags
    [[ -f tests/fuzz/$t.options ]] && read -ra extra <<<"$(sed 's/#.*//' "tests/fuzz/$t.options" | tr '\n' ' ')"
    # TMPDIR: the targets' scratch folders land here and go with the work folder.
    # -timeout: one input running over 10 s is a hang; -rss_limit_mb: a leak or blow-up is an OOM.
    TMPDIR="$PWD/$dir/tmp" "$bin/$t" "$dir/corpus" -max_total_time="$seconds" -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$findings/$t-" -close_fd_mask=1 "${extra[@]}" >"$dir/log" 2>&1
}

summary() {
    local t=$1 rc=$2 log="$work/$1/log"
    local runs speed cov ft
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2 || true)
    ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2 || true)
    if [[ $rc -eq 0 ]]; then
        printf '%-24s ok      runs %10s  exec/s %7s  cov %5s  ft %6s\n' "$t" "${runs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}"
    else
        printf '%-24s FAILED  (exit %s) runs %s  cov %s  ft %s\n' "$t" "$rc" "${runs:-?}" "${cov:-?}" "${ft:-?}"
        grep -E -A2 'ERROR: |SUMMARY: |fuzz property violated|runtime error|Test unit written to' "$log" | head -30 | sed 's/^/    /' || true
        echo "    full log: $log"
    fi
}

failed=0
# Findings first: each reproducer in tests/fuzz/findings/<target>/ must run clean, but those of an
# open finding (OPEN, or VB_FUZZ_KNOWN), which are only reported.  (name-2: the same finding.)
for f in tests/fuzz/findings/fuzz_*/*; do
    [[ -f "$f" ]] || continue
    t=$(basename "$(dirname "$f")") name=$(basename "$f")
    if TMPDIR="$PWD/$work" VB_FUZZ_KNOWN="" "$bin/$t" "$f" >"$work/finding-$name.log" 2>&1; then
        [[ ",$VB_FUZZ_KNOWN," == *",${name%-[0-9]},"* ]] && echo "$t: $name no longer reproduces: delete ${name%-[0-9]} from tests/fuzz/findings/OPEN"
    elif [[ ",$VB_FUZZ_KNOWN," == *",${name%-[0-9]},"* ]]; then
        echo "$t: $name still reproduces (open finding, stepped over; tests/fuzz/findings/README.md)"
    else
        echo "$t: finding $name reproduces (tests/fuzz/findings/README.md; log $work/finding-$name.log)"
        failed=1
    fi
done
pids=() names=()
for t in "${targets[@]}"; do
    [[ -x "$bin/$t" ]] || { echo "$t: not built" >&2; failed=1; continue; }
    run_target "$t" & pids+=($!) names+=("$t")
    if [[ ${#pids[@]} -ge $jobs ]]; then
        rc=0; wait "${pids[0]}" || rc=$?
        summary "${names[0]}" "$rc"; [[ $rc -eq 0 ]] || failed=1
        pids=("${pids[@]:1}") names=("${names[@]:1}")
    fi
done
for i in "${!pids[@]}"; do
    rc=0; wait "${pids[$i]}" || rc=$?
    summary "${names[$i]}" "$rc"; [[ $rc -eq 0 ]] || failed=1
done

total=$(cat "$work"/*/log | sed -n 's/^stat::number_of_executed_units: *//p' | awk '{s+=$1} END {print s+0}')
if [[ $failed -ne 0 ]]; then
    echo "fuzz: FAILED (reproducers in $findings/)"
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${total:-0} executions in total, 0 crashes (${seconds} s each)"
