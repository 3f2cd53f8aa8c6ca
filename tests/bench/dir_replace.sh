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
# The longest wait of any lookup in that window is what the loop spent on
# the replacement (and anything else); errors are temporary failures.
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
DURATION=${DURATION:-40}
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
rss1=$(rss_kb "$MR_PID" VmRSS)
mr_stop
L=$(tail -n +"$((FROM + 1))" "$LOG")
loaded=$(grep -o 'loaded directory at change [0-9]*: .* in [0-9.]* s' <<<"$L" | sed 's/.* in \([0-9.]*\) s/\1/')
out=$(cat "$STACK_DIR/load.out")
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$out"; }
bench_note "lookup_load: $out"
bench_note "log of the replacement:"
grep -E 'reloading|loaded directory|replacing|database unavailable|connected' <<<"$L" | sed 's/^/#   /' >&2
bench_row "$N_MAILBOXES" "$replaced" "${loaded:-?}" "$(field lookups_per_s)" "$(field p50_us)" "$(field p99_us)" \
    "$(field max_us)" "$(field errors)" "$(kb_to_mb "$rss0")" "$(kb_to_mb "$rss1")" "$load_avg"
bench_table mailboxes replaced load_s lookups/s p50_us p99_us max_us errors rss_before_mb rss_after_mb loadavg
bench_footer
