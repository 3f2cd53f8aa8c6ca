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
declare -A R
for r in $(seq "$ROUNDS"); do
    for t in "${trees[@]}"; do
        line=$(taskset -c "$CPU" "$TMP/$t" $ARGS) || exit 1
        R[$t]+="$line"$'\n'
    done
done
med() { sed -n "s/.*\b$2=\([0-9]*\).*/\1/p" <<<"${R[$1]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
printf '%-8s %12s %12s %12s\n' tree tcp_table socketmap policy
for t in "${trees[@]}"; do
    printf '%-8s %9s ns %9s ns %9s ns\n' "$t" "$(med "$t" tcpt_ns)" "$(med "$t" smap_ns)" "$(med "$t" policy_ns)"
done
echo "(median of $ROUNDS rounds, handler_cpu $ARGS, CPU $CPU; load $(cut -d' ' -f1-3 /proc/loadavg))"
