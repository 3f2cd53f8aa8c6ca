#!/bin/bash
# run.sh [SECONDS_PER_TARGET] [BUILD_DIR] - build the fuzz targets and run
# each for the given time on a scratch copy of its seed corpus (the
# committed corpus is never written). Crash inputs are kept in
# BUILD_DIR/artifacts/TARGET/, logs in BUILD_DIR/logs/TARGET.log.
set -u

here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-20}
out=${2:-$here/out}
targets="tcpt smap snap cfg addr codec admproto auth polproto policy roster_proto srv verify"

max_len() {
    case $1 in
    tcpt|smap|auth|roster_proto|srv) echo 20000 ;;
    polproto|policy) echo 40000 ;;
    snap) echo 65536 ;;
    cfg) echo 8192 ;;
    addr) echo 2048 ;;
    *) echo 4096 ;;
    esac
}

case $secs in
''|*[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [BUILD_DIR]" >&2; exit 2 ;;
esac

"$here/build.sh" "$out" > /dev/null || { echo "Bail out! build.sh failed" >&2; exit 1; }
out=$(cd "$out" && pwd)

scratch=$(mktemp -d "${TMPDIR:-/tmp}/mr-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$out/logs"

passed=0
failed=0
for t in $targets; do
    corpus=$scratch/$t
    arts=$out/artifacts/$t
    log=$out/logs/$t.log
    mkdir -p "$corpus" "$arts"
    cp -R "$here/corpus/$t/." "$corpus/"
    dict=()
    [ -f "$here/$t.dict" ] && dict=("-dict=$here/$t.dict")
    "$out/fuzz_$t" -max_total_time="$secs" -max_len="$(max_len "$t")" -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$arts/" "${dict[@]}" "$corpus" > "$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        echo "ok - fuzz $t: ${runs:-?} runs"
        passed=$((passed + 1))
    else
        art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        kind=crash
        case $(basename "${art:-x}") in timeout-*) kind=timeout ;; oom-*|slow-unit-*) kind=${art##*/}; kind=${kind%%-*} ;; esac
        echo "not ok - fuzz $t: $kind (artifact ${art:-none, see $log})"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
