#!/usr/bin/env bash
# tests/bench/hostile.sh - lookups/s of a well-behaved client while hostile
# clients hold 2,000 idle connections on the same tcp_table listener (from
# 127.0.0.2-5, 500 each: max_connections_per_peer; max_connections is
# raised to 2100 so they all fit), and while one more
# floods requests without reading its answers, as a ratio to the same client
# on a quiet daemon in the same run.
#
#   tests/bench/hostile.sh                 (as root; ~1 min)
#   DURATION=10 REPEAT=3 tests/bench/hostile.sh
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TOP/tests/bench/benchlib.sh"
bench_init hostile
N_MAILBOXES=${N_MAILBOXES:-20000}
N_KEYS=${N_KEYS:-20000}
DURATION=${DURATION:-5}
REPEAT=${REPEAT:-2}
DOM=example.com
HC="python3 $TOP/tests/integration/hostile_client.py"

gcc -O2 -Wall -o "$STACK_DIR/lookup_load" "$TOP/tests/bench/lookup_load.c" || exit 1
bench_db
fixture_one_domain "$DOM" "$N_MAILBOXES" 0 || exit 1
KEYS=$STACK_DIR/keys
keys_file "$KEYS" "$N_KEYS" 80 "$DOM"
CONF=$STACK_DIR/mailroster.conf
mr_write_conf "$CONF" "max_connections = 2100"
bench_mr_start "$CONF"
ADDR=127.0.0.1:$MR_TCP_MAILBOXES

# run LABEL: one closed-loop run of 50 x 1 from 127.0.0.1; sets RATE CPU_US P99
run() {
    local s0 s1 L
    s0=$(proc_ticks "$MR_PID")
    L=$(taskset -c "$CLIENT_CPU" "$STACK_DIR/lookup_load" -s -t tcp -a "$ADDR" -m mailboxes -k "$KEYS" \
        -c 50 -p 1 -d "$DURATION" -w 1) || { echo "lookup_load failed" >&2; exit 1; }
    s1=$(proc_ticks "$MR_PID")
    RATE=$(sed -n 's/.*\blookups_per_s=\([^ ]*\).*/\1/p' <<<"$L")
    P99=$(sed -n 's/.*\bp99_us=\([^ ]*\).*/\1/p' <<<"$L")
    CPU_US=$(ticks_to_us_per $((s1 - s0)) "$(sed -n 's/.*\breplies_total=\([^ ]*\).*/\1/p' <<<"$L")")
    bench_note "$1: $L server_cpu_us=$CPU_US"
}

quiet=() loud=()
for _ in $(seq "$REPEAT"); do
    run quiet; quiet+=("$RATE|$P99|$CPU_US")
    hpids=()
    for src in 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5; do
        $HC hold "$ADDR" 500 $((DURATION + 8)) "$src" >"$STACK_DIR/hold.$src" & hpids+=($!)
    done
    FLOOD_HOLD=$((DURATION + 6)) $HC flood "$ADDR" 3 300000000 >"$STACK_DIR/flood.out" & hpids+=($!)
    for src in 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5; do
        for _ in $(seq 100); do [ -s "$STACK_DIR/hold.$src" ] && break; sleep 0.1; done
    done
    held=$(cat "$STACK_DIR"/hold.* | awk '{ s += $1 } END { print s }')
    bench_note "hostile: $held idle connections held, one client flooding without reading"
    run "with hostile clients"; loud+=("$RATE|$P99|$CPU_US|$held")
    kill "${hpids[@]}" 2>/dev/null; wait "${hpids[@]}" 2>/dev/null
    rm -f "$STACK_DIR"/hold.*
done
best() { printf '%s\n' "$@" | sort -t'|' -k1,1nr | head -1; }
q=$(best "${quiet[@]}") l=$(best "${loud[@]}")
IFS='|' read -r qr qp qc <<<"$q"
IFS='|' read -r lr lp lc lh <<<"$l"
bench_row "quiet daemon" "$qr" "1.00" "$qp" "$qc"
bench_row "$lh idle + 1 flooding" "$lr" "$(ratio "$lr" "$qr")" "$lp" "$lc"
echo
echo "hostile: tcp_table 50x1 from 127.0.0.1, $DURATION s per run, best of $REPEAT; $N_MAILBOXES mailboxes"
bench_table "run" "lookups/s" "vs quiet" "p99 us" "server CPU us/lookup"
