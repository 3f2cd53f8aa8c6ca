#!/usr/bin/env bash
# tests/bench/dir_replace.sh - lookups while a full load replaces a large
# directory on a running mailrosterd.
#
# N_MAILBOXES mailboxes (realistic hashes) in one domain; mailrosterd loads
# them, writes its snapshot, then a paced client (lookup_load -r RATE over
# tcp_table, latency counted from when each lookup was due) asks for
# DURATION seconds while the database forces a full load on the running
# daemon: the daemon's connections are cut and refused (ALTER ROLE mrd
# NOLOGIN, pg_terminate_backend), two changes are made and the change log is
# pruned past the daemon's change, and logins are allowed again. At its
# reconnection the change log no longer reaches back: the database thread
# loads the whole directory again and the event loop replaces the old one.
# Besides, one connection asks every 2 ms, each request waiting for its
# reply, and every round trip is kept with its time; the log is followed
# with the time each line appeared. The longest round trip of a request
# sent from 1 s before the line "replacing the directory" to 3 s after it
# is what the replacement cost the loop; the longest outside that window
# is the machine's own noise (other work on the cores), for comparison.
# lookup_load's figures cover the whole run; errors are temporary failures.
#
#   tests/bench/dir_replace.sh                       (as root; ~1.5 min)
#   N_MAILBOXES=1000000 tests/bench/dir_replace.sh
#   MRD=/path/to/other/mailrosterd tests/bench/dir_replace.sh
#   (the database gets this tree's schema: an older binary is run with
#   TOP=its tree)
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TOP/tests/bench/benchlib.sh"
bench_init dir_replace
N_MAILBOXES=${N_MAILBOXES:-300000}
RATE=${RATE:-1000}
DURATION=${DURATION:-60}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-300}

bench_db
bench_note "fixture: $N_MAILBOXES mailboxes"
fixture_one_domain big.example "$N_MAILBOXES" 0 >/dev/null || exit 1
keys_file "$STACK_DIR/keys" 20000 80 big.example
gcc -O2 -Wall -o "$STACK_DIR/lookup_load" "$(dirname "$0")/lookup_load.c" ||
    gcc -O2 -Wall -o "$STACK_DIR/lookup_load" "$TOP/tests/bench/lookup_load.c" || exit 1
CONF=$STACK_DIR/mailroster.conf
mr_write_conf "$CONF"

# the first load: start, then wait for the snapshot file
MRD_WRAP="taskset -c $SERVER_CPU" mr_start "$CONF" "$LOG" || exit 1
wait_log_from 0 'loaded directory at change' "$LOAD_TIMEOUT" || { bench_note "no first load"; exit 1; }
for _ in $(seq 1 600); do [ -s "$MR_SNAPSHOT" ] && break; sleep 0.1; done
sleep 2
rss0=$(rss_kb "$MR_PID" VmRSS)

# the round-trip trace: "SENT_US RTT_US" per request, until the stop file
python3 - "$MR_TCP_MAILBOXES" "$STACK_DIR/trace" "$STACK_DIR/trace.stop" "$(head -n 1 "$STACK_DIR/keys")" <<'PY' &
import os, socket, sys, time
port, out, stop, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4].encode()
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
with open(out, "w") as o:
    while not os.path.exists(stop):
        t0 = time.time()
        s.sendall(b"get " + key + b"\n")
        if not f.readline():
            break
        o.write("%d %d\n" % (t0 * 1e6, (time.time() - t0) * 1e6))
        time.sleep(0.002)
PY
TRACE_PID=$!
log_ts_start
taskset -c "$CLIENT_CPU" "$STACK_DIR/lookup_load" -t tcp -a "127.0.0.1:$MR_TCP_MAILBOXES" \
    -k "$STACK_DIR/keys" -c 4 -p 4 -r "$RATE" -w 1 -d "$DURATION" >"$STACK_DIR/load.out" 2>&1 &
LOAD_PID=$!
sleep 4
FROM=$(wc -l <"$LOG")
load_avg=$(cut -d' ' -f1-3 /proc/loadavg)
sql -c "ALTER ROLE mrd NOLOGIN" >/dev/null
sql -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'mrd'" >/dev/null
sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'late1' FROM mailroster.domains" \
    -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'late2' FROM mailroster.domains" >/dev/null
sql -c "DELETE FROM mailroster.change_log WHERE seq < (SELECT max(seq) FROM mailroster.change_log)" >/dev/null
sql -c "ALTER ROLE mrd LOGIN" >/dev/null
if wait_log_from "$FROM" 'replacing the directory .* with a full load' "$LOAD_TIMEOUT"; then
    replaced=yes
else
    replaced=no
fi
wait "$LOAD_PID"
touch "$STACK_DIR/trace.stop"
wait "$TRACE_PID"
T_REPL=$(log_time 'replacing the directory .* with a full load')
# max round trip (ms) in [T-1 s, T+3 s], and outside it; requests in the window
win=$(awk -v t="${T_REPL:-0}" '{ if ($1 >= t - 1e6 && $1 <= t + 3e6) { if ($2 > a) a = $2; n++ } else if ($2 > b) b = $2 }
      END { printf "%.1f %.1f %d", a / 1000, b / 1000, n }' "$STACK_DIR/trace")
read -r win_max out_max win_n <<<"$win"
bench_note "trace: $(wc -l <"$STACK_DIR/trace") round trips, $win_n in the window around the replacement"
rss1=$(rss_kb "$MR_PID" VmRSS)
mr_stop
L=$(tail -n +"$((FROM + 1))" "$LOG")
loaded=$(grep -o 'loaded directory at change [0-9]*: .* in [0-9.]* s' <<<"$L" | sed 's/.* in \([0-9.]*\) s/\1/')
out=$(cat "$STACK_DIR/load.out")
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$out"; }
bench_note "lookup_load: $out"
bench_note "log of the replacement:"
grep -E 'reloading|loaded directory|replacing|database unavailable|connected' <<<"$L" | sed 's/^/#   /' >&2
bench_row "$N_MAILBOXES" "$replaced" "${loaded:-?}" "$win_max" "$out_max" "$(field p50_us)" "$(field p99_us)" \
    "$(field max_us)" "$(field errors)" "$(kb_to_mb "$rss0")" "$(kb_to_mb "$rss1")" "$load_avg"
bench_table mailboxes replaced load_s rtt_max_at_replace_ms rtt_max_elsewhere_ms paced_p50_us paced_p99_us \
    paced_max_us errors rss_before_mb rss_after_mb loadavg
bench_footer
