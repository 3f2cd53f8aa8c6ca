#!/usr/bin/env bash
# tests/bench/handler_cpu.sh - CPU per request of the request handlers
# alone (no sockets, no kernel): tcp_table and socketmap mailbox lookups
# and Postfix's RCPT policy request, built from this tree's build/ and, with
# BEFORE=DIR, from another built tree's, run alternately on one CPU.
#
#   tests/bench/handler_cpu.sh                     # this tree, 100,000 cold mailboxes
#   BEFORE=/path/to/old/tree ROUNDS=3 tests/bench/handler_cpu.sh
#   ARGS='-m 10000 -k 4096' tests/bench/handler_cpu.sh   # a warm cache
#
# Each tree needs `make` done in its build/ (libmrcore.a, libmrcommon.a).
# Figures are ns of CPU per request (CLOCK_THREAD_CPUTIME_ID); the median
# of ROUNDS is printed. Nothing is asserted.
#
# With BEFORE, SIDE=1 (the default) runs the two programs at once on the
# CPU, each round, instead of one after the other: the VM's speed moves by
# a third within seconds, which one after the other is the size of the
# change being measured; at once, both meet the same moments (each counts
# its own thread's CPU, so sharing the core costs neither a figure). Two
# copies of one program then agree within 1 %. Each round's ratio
# this/before is printed too.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
ROUNDS=${ROUNDS:-3}
ARGS=${ARGS:--n 1000000 -m 100000 -k 100000}
CPU=${SERVER_CPU:-1}
TMP=$(mktemp -d /tmp/mr-handler-cpu.XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT

# build NAME TREE: $TMP/NAME from handler_cpu.c against TREE's build
build() {
    local t=$2
    [ -f "$t/build/.libs/libmrcore.a" ] || { echo "handler_cpu: no $t/build/.libs/libmrcore.a (run make there)" >&2; exit 1; }
    gcc -O2 -I"$t/build" -I"$t/postfix-policyd" -I"$t/lib" -o "$TMP/$1" "$TOP/tests/bench/handler_cpu.c" \
        "$t/build/.libs/libmrcore.a" "$t/build/.libs/libmrcommon.a" -lidn2 -lunistring -lcrypt -lpthread \
        || { echo "handler_cpu: cannot build against $t" >&2; exit 1; }
}
trees=(this)
build this "$TOP"
if [ -n "${BEFORE:-}" ]; then
    build before "$BEFORE"
    trees=(before this)
fi
SIDE=${SIDE:-1}
declare -A R
for _ in $(seq "$ROUNDS"); do
    if [ -n "${BEFORE:-}" ] && [ "$SIDE" = 1 ]; then
        # shellcheck disable=SC2086  # ARGS: options, one word each
        taskset -c "$CPU" "$TMP/before" $ARGS >"$TMP/before.out" &
        b=$!
        # shellcheck disable=SC2086
        taskset -c "$CPU" "$TMP/this" $ARGS >"$TMP/this.out" || exit 1
        wait "$b" || exit 1
        for t in "${trees[@]}"; do R[$t]+="$(cat "$TMP/$t.out")"$'\n'; done
        continue
    fi
    for t in "${trees[@]}"; do
        # shellcheck disable=SC2086
        line=$(taskset -c "$CPU" "$TMP/$t" $ARGS) || exit 1
        R[$t]+="$line"$'\n'
    done
done
med() { sed -n "s/.*\b$2=\([0-9]*\).*/\1/p" <<<"${R[$1]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
printf '%-8s %12s %12s %12s\n' tree tcp_table socketmap policy
for t in "${trees[@]}"; do
    printf '%-8s %9s ns %9s ns %9s ns\n' "$t" "$(med "$t" tcpt_ns)" "$(med "$t" smap_ns)" "$(med "$t" policy_ns)"
done
if [ -n "${BEFORE:-}" ]; then
    # each round's this/before, per handler
    for k in tcpt smap policy; do
        paste -d' ' <(sed -n "s/.*\b${k}_ns=\([0-9]*\).*/\1/p" <<<"${R[this]}") \
            <(sed -n "s/.*\b${k}_ns=\([0-9]*\).*/\1/p" <<<"${R[before]}") |
            awk -v k="$k" '{ s = s sprintf(" %.3f", $1 / $2) } END { print k ": this/before each round:" s }'
    done
fi
echo "(median of $ROUNDS rounds, handler_cpu $ARGS, CPU $CPU;" \
    "$([ -n "${BEFORE:-}" ] && { [ "$SIDE" = 1 ] && echo "the two at once" || echo "in turns"; }) load $(cut -d' ' -f1-3 /proc/loadavg))"
