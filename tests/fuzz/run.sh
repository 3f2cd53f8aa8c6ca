#!/bin/bash
# run.sh [-P JOBS] [SECONDS_PER_TARGET] [BUILD_DIR] - build the fuzz targets
# and run each for the given time on a scratch copy of its seed corpus (the
# committed corpus is never written), JOBS targets at a time (default 1).
# Crash inputs are kept in BUILD_DIR/artifacts/TARGET/, logs in
# BUILD_DIR/logs/TARGET.log; the result lines come in target order.
set -u

here=$(cd "$(dirname "$0")" && pwd)
usage() { echo "usage: $0 [-P JOBS] [SECONDS_PER_TARGET] [BUILD_DIR]" >&2; exit 2; }
jobs=1
while getopts P: opt; do
    case $opt in
    P) jobs=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
secs=${1:-20}
out=${2:-$here/out}
targets="tcpt smap snap cfg addr codec admproto auth polproto policy roster_proto srv verify admin"

max_len() {
    case $1 in
    tcpt|smap|auth|roster_proto|srv) echo 20000 ;;
    polproto|policy) echo 40000 ;;
    snap) echo 65536 ;;
    admin) echo 70000 ;;   # ADM_MAX_LINE (65536) and past it
    cfg) echo 8192 ;;
    addr) echo 2048 ;;
    *) echo 4096 ;;
    esac
}

case $secs in ''|*[!0-9]*) usage ;; esac
case $jobs in ''|*[!0-9]*|0) usage ;; esac

"$here/build.sh" "$out" > /dev/null || { echo "Bail out! build.sh failed" >&2; exit 1; }
out=$(cd "$out" && pwd)

scratch=$(mktemp -d "${TMPDIR:-/tmp}/mr-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$out/logs" "$scratch/tmp"

# fuzz_one TARGET: run it; its result line goes to $scratch/TARGET.result
# (a file, so that targets run in the background can report)
fuzz_one() {
    local t=$1 corpus=$scratch/$1 arts=$out/artifacts/$1 log=$out/logs/$1.log rc runs art kind
    mkdir -p "$corpus" "$arts"
    cp -R "$here/corpus/$t/." "$corpus/"
    local dict=()
    [ -f "$here/$t.dict" ] && dict=("-dict=$here/$t.dict")
    # TMPDIR: what a target makes there (fuzz_srv's sockets) goes with
    # the scratch directory, also after a crash
    TMPDIR=$scratch/tmp "$out/fuzz_$t" -max_total_time="$secs" -max_len="$(max_len "$t")" -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$arts/" "${dict[@]}" "$corpus" > "$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        echo "ok - fuzz $t: ${runs:-?} runs"
    else
        art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        kind=crash
        case $(basename "${art:-x}") in timeout-*) kind=timeout ;; oom-*|slow-unit-*) kind=${art##*/}; kind=${kind%%-*} ;; esac
        echo "not ok - fuzz $t: $kind (artifact ${art:-none, see $log})"
    fi > "$scratch/$t.result"
}

running=0
for t in $targets; do
    if [ "$jobs" -eq 1 ]; then
        fuzz_one "$t"
        cat "$scratch/$t.result"
        continue
    fi
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    fuzz_one "$t" &
    running=$((running + 1))
done
wait

passed=0
failed=0
for t in $targets; do
    [ "$jobs" -eq 1 ] || cat "$scratch/$t.result" 2>/dev/null || echo "not ok - fuzz $t: no result"
    case $(cat "$scratch/$t.result" 2>/dev/null) in
    "ok - "*) passed=$((passed + 1)) ;;
    *) failed=$((failed + 1)) ;;
    esac
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
