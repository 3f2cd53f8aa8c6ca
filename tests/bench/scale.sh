#!/usr/bin/env bash
# tests/bench/scale.sh - mailrosterd at ISP scale: N_MAILBOXES mailboxes
# over N_DOMAINS domains, N_ALIASES aliases (every 10th with 3
# destinations, every 50th to a remote address), a realistic 120-character
# {SHA512-CRYPT}$6$... hash per mailbox, generated in SQL (INSERT ...
# SELECT generate_series, as the superuser; the triggers run).
#
# Measures:
#   - start -> "loaded directory" (wall, and the time the daemon logs)
#   - VmRSS / VmHWM after the load, and after the first snapshot was written
#   - the snapshot file: size, write time (load logged -> file renamed in)
#   - change latency at this scale: INSERT COMMIT -> first 200 from a
#     persistent tcp_table connection polled every 1 ms (TRIALS trials)
#   - SIGTERM -> exit with a change pending (the shutdown writes the snapshot)
#   - restarts with PostgreSQL up and the snapshot present, a change made
#     while down, a client asking every 10 ms from the start: the snapshot's
#     read (logged), first answer, temporary failures (4xx), caught up or
#     replaced, VmHWM; the usual one (the log bridges the snapshot), one
#     with a short startup_timeout, one with the change log pruned past the
#     snapshot (a full load follows), one whose database connection is held
#     DB_HOLD_S seconds (tests/integration/gate_proxy.py: a slow database);
#     with MRD_BEFORE=path, those also with that binary (the baseline, same
#     run)
#   - start from the snapshot file with PostgreSQL stopped -> "starting from
#     snapshot file", and the memory after it
# Goals from the issue: load <= 15 s, RSS <= 400 MB. Baseline in the same
# run: the size PostgreSQL itself needs for the same tables and indexes.
# mailrosterd runs with its defaults (snapshot_interval 60 s,
# startup_timeout 10 s), pinned to CPU 1.
#
#   tests/bench/scale.sh                           (as root; ~2.5 min)
#   N_MAILBOXES=200000 N_ALIASES=40000 tests/bench/scale.sh
#   MRD_BEFORE=/path/to/old/mailrosterd tests/bench/scale.sh
#   (PRUNED=0: no pruned restart; DB_HOLD_S=0: no held connection)
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TOP/tests/bench/benchlib.sh"
bench_init scale
N_DOMAINS=${N_DOMAINS:-1000}
N_MAILBOXES=${N_MAILBOXES:-1000000}
N_ALIASES=${N_ALIASES:-200000}
TRIALS=${TRIALS:-20}
GAP_MS=${GAP_MS:-100}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-300}

bench_db
t0=$(now_us)
sql <<EOF || exit 1
INSERT INTO mailroster.domains (name)
  SELECT 'dom' || g || '.example' FROM generate_series(1, $N_DOMAINS) g;
CREATE TEMP TABLE dmap AS
  SELECT row_number() OVER (ORDER BY id) - 1 AS di, id, name FROM mailroster.domains;
-- mailbox userK lives in domain (K - 1) % N_DOMAINS
INSERT INTO mailroster.mailboxes (domain_id, local_part, password)
  SELECT dm.id, 'user' || g, $BENCH_SHA512
    FROM generate_series(1, $N_MAILBOXES) g JOIN dmap dm ON dm.di = (g - 1) % $N_DOMAINS;
INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
  SELECT dm.id, 'alias' || g,
         CASE WHEN g % 10 = 0 THEN ARRAY['user' || (dm.di + 1) || '@' || dm.name,
                                         'user' || (dm.di + 1 + $N_DOMAINS) || '@' || dm.name,
                                         'user' || (dm.di + 1 + 2 * $N_DOMAINS) || '@' || dm.name]
              WHEN g % 50 = 1 THEN ARRAY['someone' || g || '@remote.example']
              ELSE ARRAY['user' || ((g * 7919) % ($N_MAILBOXES / $N_DOMAINS) * $N_DOMAINS + dm.di + 1)
                         || '@' || dm.name] END
    FROM generate_series(1, $N_ALIASES) g JOIN dmap dm ON dm.di = (g - 1) % $N_DOMAINS;
EOF
sql -c "VACUUM ANALYZE" -c "CHECKPOINT"
FIXTURE_S=$(awk -v a="$t0" -v b="$(now_us)" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
PG_MB=$(sql -c "SELECT round(sum(pg_total_relation_size(c.oid)) / 1048576.0) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'mailroster' AND c.relkind = 'r'
    AND c.relname IN ('domains', 'mailboxes', 'aliases', 'sender_addresses', 'master_users')")
RAW_MB=$(sql -c "SELECT round((SELECT sum(octet_length(local_part) + octet_length(coalesce(password, ''))
    + octet_length(maildir)) FROM mailroster.mailboxes) / 1048576.0
    + (SELECT sum(octet_length(local_part) + octet_length(array_to_string(destinations, ',')))
    FROM mailroster.aliases) / 1048576.0)")
bench_note "fixture: $N_DOMAINS domains, $N_MAILBOXES mailboxes, $N_ALIASES aliases in $FIXTURE_S s;" \
    "PostgreSQL tables+indexes $PG_MB MB; the strings alone $RAW_MB MB;" \
    "password length $(sql -c "SELECT length(password) FROM mailroster.mailboxes LIMIT 1")"

CONF=$STACK_DIR/mailroster.conf
mr_write_conf "$CONF"
# the same daemon with its database connection through a proxy that holds
# every connection DB_HOLD_S seconds after it is made (restart_watch with
# DB_HOLD=1: a slow database)
DB_HOLD_S=${DB_HOLD_S:-5}
GATE=$STACK_DIR/gate
touch "$GATE"
GATE_PORT=$(stack_free_port)
GCONF=$STACK_DIR/held.conf
sed "s|^database = .*|database = host=127.0.0.1 port=$GATE_PORT dbname=$MR_DB user=mrd connect_timeout=120|" \
    "$CONF" >"$GCONF"
if [ "$DB_HOLD_S" != 0 ]; then
    python3 "$TOP/tests/integration/gate_proxy.py" "$GATE_PORT" "$PGHOST/.s.PGSQL.$PGPORT" "$GATE" "$DB_HOLD_S" &
    STACK_PIDS+=("$!")
fi

# --- start: full load from PostgreSQL, no snapshot file yet ------------------------
: >"$LOG"
log_ts_start
t0=$(now_us)
taskset -c "$SERVER_CPU" "$MRD" -f -c "$CONF" >>"$LOG" 2>&1 &
MR_PID=$!
STACK_PIDS+=("$MR_PID")
wait_log_from 0 'loaded directory' "$LOAD_TIMEOUT" || { echo "no 'loaded directory' in $LOAD_TIMEOUT s" >&2; tail "$LOG" >&2; exit 1; }
RSS_LOAD=$(rss_kb "$MR_PID" VmRSS) HWM_LOAD=$(rss_kb "$MR_PID" VmHWM)
sleep 0.05
t1=$(log_time 'loaded directory' "$t0")
LOAD_WALL=$(secs_between "$t0" "$t1")
LOAD_LOGGED=$(sed -n 's/.*loaded directory.* in \([0-9.]*\) s$/\1/p' "$LOG" | head -n 1)
bench_note "$(grep 'loaded directory' "$LOG" | head -n 1)"
t_tf=$(log_time 'answering temporary failures' "$t0")
STARTUP_TF=""
[ -n "$t_tf" ] && STARTUP_TF="after $(secs_between "$t0" "$t_tf") s (startup_timeout) the daemon logged an error and answered temporary failures until the load was done"

# the first snapshot: written by a thread right after the load
for _ in $(seq $((LOAD_TIMEOUT * 100))); do [ -e "$MR_SNAPSHOT" ] && break; sleep 0.01; done
t2=$(now_us)
SNAP_WRITE=$(secs_between "$t1" "$t2")
SNAP_MB=$(awk -v s="$(stat -c %s "$MR_SNAPSHOT")" 'BEGIN { printf "%.0f", s / 1048576 }')
sleep 1
RSS_SNAP=$(rss_kb "$MR_PID" VmRSS) HWM_SNAP=$(rss_kb "$MR_PID" VmHWM)
bench_note "snapshot $SNAP_MB MB written $SNAP_WRITE s after the load was logged;" \
    "RSS $(kb_to_mb "$RSS_SNAP") MB, HWM $(kb_to_mb "$HWM_SNAP") MB"

# answers right?
bench_note "check: user1@dom1.example -> $(postmap -q user1@dom1.example "tcp:127.0.0.1:$MR_TCP_MAILBOXES" 2>&1);" \
    "alias10@dom10.example -> $(postmap -q alias10@dom10.example "tcp:127.0.0.1:$MR_TCP_ALIASES" 2>&1)"

# --- change latency at this scale ------------------------------------------------
pin_pg "$SERVER_CPU"
out=$(taskset -c "$CLIENT_CPU" python3 "$TOP/tests/bench/change_probe.py" --tcp "127.0.0.1:$MR_TCP_MAILBOXES" \
    --domain dom1.example --prefix lat --trials "$TRIALS" --gap-ms "$GAP_MS" --baseline-pg --verbose \
    2>"$STACK_DIR/probe.trials") || { cat "$STACK_DIR/probe.trials" >&2; exit 1; }
v() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$out"; }
bench_note "change latency: $out"
bench_note "trials (ms): $(awk '{print $3}' "$STACK_DIR/probe.trials" | paste -sd' ')"
RSS_CHG=$(rss_kb "$MR_PID" VmRSS)

# --- SIGTERM with a change pending: the shutdown writes the snapshot ----------------
admin_sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'before-stop' FROM mailroster.domains WHERE name = 'dom1.example'"
BS_WANT="dom1.example/before-stop.$(sql -c "SELECT id FROM mailroster.mailboxes WHERE local_part = 'before-stop'")/"
wait_for "q_tcp mailboxes before-stop@dom1.example" "$BS_WANT" 30 \
    || bench_note "WARNING: the change before the stop was not answered within 30 s"
m0=$(stat -c %.3Y "$MR_SNAPSHOT")
t0=$(now_us)
kill -TERM "$MR_PID"
wait "$MR_PID" 2>/dev/null
t1=$(now_us)
STOP_S=$(secs_between "$t0" "$t1")
m1=$(stat -c %.3Y "$MR_SNAPSHOT")
STOP_WROTE=$(awk -v a="$m0" -v b="$m1" 'BEGIN { print (b > a) ? "snapshot rewritten" : "snapshot NOT rewritten" }')
bench_note "SIGTERM -> exit $STOP_S s ($STOP_WROTE)"

# --- restarts with PostgreSQL up and the snapshot file present ----------------------
# restart_watch PREFIX [BINARY]: make changes while the daemon is down (two
# new mailboxes; with PRUNE=1 the change log is then pruned to its last row,
# past the snapshot's change, as a retention job would), then start BINARY
# (default $MRD) while a client asks for a key every 10 ms on one connection
# (with DB_HOLD=1, its database connection is held DB_HOLD_S seconds)
# (tests/bench/answer_probe.py), until the daemon is in step with
# PostgreSQL: caught up from the snapshot's change, or a full load in place
# and the snapshot after it written. Sets PREFIX_* (seconds from the start;
# READ: the snapshot read as the daemon logs it, when it does).
restart_watch() {
    local p=$1 bin=${2:-$MRD} m0 t0 apid h hwm=0 ap la rd conf=$CONF
    admin_sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'down-${p,,}-' || g FROM mailroster.domains, generate_series(1, 2) g WHERE name = 'dom1.example'"
    [ "${PRUNE:-0}" = 1 ] && sql -c "DELETE FROM mailroster.change_log WHERE seq < (SELECT max(seq) FROM mailroster.change_log)"
    rm -f "$STACK_DIR/stop" "$STACK_DIR/probe.ready"
    m0=$(stat -c %.6Y "$MR_SNAPSHOT")
    taskset -c "$CLIENT_CPU" python3 "$TOP/tests/bench/answer_probe.py" --tcp "127.0.0.1:$MR_TCP_MAILBOXES" \
        --key user1@dom1.example --stopfile "$STACK_DIR/stop" --readyfile "$STACK_DIR/probe.ready" \
        --max-seconds "$LOAD_TIMEOUT" >"$STACK_DIR/answer.out" &
    apid=$!
    for _ in $(seq 1000); do [ -e "$STACK_DIR/probe.ready" ] && break; sleep 0.01; done
    la=$(cut -d' ' -f1-3 /proc/loadavg)
    printf -v "${p}_LOADAVG" %s "$la"
    [ -n "${DB_HOLD:-}" ] && conf=$GCONF
    t0=$(now_us)
    taskset -c "$SERVER_CPU" "$bin" -f -c "$conf" >>"$LOG" 2>&1 &
    MR_PID=$!
    STACK_PIDS+=("$MR_PID")
    for _ in $(seq $((LOAD_TIMEOUT * 10))); do
        if [ -n "$(log_time 'loaded directory' "$t0")" ]; then
            [ "$(stat -c %.6Y "$MR_SNAPSHOT")" != "$m0" ] && break
        elif [ -n "$(log_time 'caught up to change|the change log brings it up to date' "$t0")" ]; then
            break
        fi
        sleep 0.1
    done
    sleep 1
    h=$(rss_kb "$MR_PID" VmHWM); [ -n "$h" ] && hwm=$h
    printf -v "${p}_HWM" %s "$hwm"
    printf -v "${p}_RSS" %s "$(rss_kb "$MR_PID" VmRSS)"
    touch "$STACK_DIR/stop"
    wait "$apid"
    ap=$(cat "$STACK_DIR/answer.out")
    pv() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$ap" | tr -d -; }
    rd=$(awk -v t0="$t0" '$1 > t0 && /read in [0-9.]+ s\)/ { sub(/.*read in /, ""); sub(/ s\).*/, ""); print; exit }' "$LOG.ts")
    printf -v "${p}_READ" %s "${rd:--}"
    printf -v "${p}_STARTED" %s "$(secs_between "$t0" "$(log_time 'starting \\(configuration' "$t0")")"
    printf -v "${p}_SNAPSTART" %s "$(secs_between "$t0" "$(log_time 'starting from snapshot' "$t0")")"
    printf -v "${p}_TF" %s "$(secs_between "$t0" "$(log_time 'answering temporary failures' "$t0")")"
    printf -v "${p}_LOADED" %s "$(secs_between "$t0" "$(log_time 'loaded directory' "$t0")")"
    printf -v "${p}_REPLACED" %s "$(secs_between "$t0" "$(log_time 'replacing the directory|replaced by a full load' "$t0")")"
    printf -v "${p}_CAUGHT" %s "$(secs_between "$t0" "$(log_time 'caught up to change|the change log brings it up to date' "$t0")")"
    printf -v "${p}_200" %s "$(secs_between "$t0" "$(pv first_200_us)")"
    printf -v "${p}_RTT" %s "$(pv max_rtt_ms)"
    printf -v "${p}_RTT_AT" %s "$(secs_between "$t0" "$(pv max_rtt_at_us)")"
    printf -v "${p}_STALL" %s "$(pv stall_s)"
    printf -v "${p}_4XX" %s "$(pv replies_4xx)"
    printf -v "${p}_LATE4XX" %s "$(pv late_4xx)"
    bench_note "restart ($p, $bin, load average $la): probe: $ap; HWM $(kb_to_mb "$hwm") MB"
    awk -v t0="$t0" '$1 > t0 && !/listening on/ { l = $0; sub(/^[0-9]+ /, "", l); printf "#   +%.2f s %s\n", ($1 - t0) / 1e6, substr(l, 1, 160) }' "$LOG.ts" >&2
}
stop_mr() { kill -TERM "$MR_PID"; wait "$MR_PID" 2>/dev/null; }

# the same restart with another binary first (MRD_BEFORE=path: the
# baseline in the same run, on the same snapshot and database)
if [ -n "${MRD_BEFORE:-}" ]; then
    cp "$MRD_BEFORE" "$STACK_DIR/mailrosterd.before" || exit 1
    restart_watch RB "$STACK_DIR/mailrosterd.before"
    stop_mr
fi
# the database slow to answer (connection held DB_HOLD_S seconds)
if [ "$DB_HOLD_S" != 0 ]; then
    if [ -n "${MRD_BEFORE:-}" ]; then
        DB_HOLD=1 restart_watch RBH "$STACK_DIR/mailrosterd.before"
        stop_mr
    fi
    DB_HOLD=1 restart_watch RSH
    stop_mr
fi
# the usual restart, default configuration
restart_watch RS
bench_note "restart: from snapshot at $RS_SNAPSTART s, caught up at $RS_CAUGHT s, loaded at $RS_LOADED s, replaced at $RS_REPLACED s"

# --- a change made while a snapshot is being written -----------------------------------
# The writer thread reads a view of the directory (dir_view_new: the
# by-id indexes copied), so the loop goes on applying changes; before, it
# held them back for the whole write. Make a write happen
# (snapshot_interval = 1 s at run time, by SIGHUP), then change something
# 1.5 s into it.
echo "snapshot_interval = 1s" >>"$CONF"
kill -HUP "$MR_PID"
sleep 0.5
admin_sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'starts-a-write' FROM mailroster.domains WHERE name = 'dom1.example'"
wait_for "q_tcp mailboxes starts-a-write@dom1.example" \
    "dom1.example/starts-a-write.$(sql -c "SELECT id FROM mailroster.mailboxes WHERE local_part = 'starts-a-write'")/" 30
sleep 1.5
outw=$(taskset -c "$CLIENT_CPU" python3 "$TOP/tests/bench/change_probe.py" --tcp "127.0.0.1:$MR_TCP_MAILBOXES" \
    --domain dom1.example --prefix during-write --trials 1 --gap-ms 0) || exit 1
DURING_WRITE=$(sed -n 's/.*\bmax_ms=\([^ ]*\).*/\1/p' <<<"$outw")
bench_note "change during a snapshot write: $outw"
sed -i '/^snapshot_interval = 1s$/d' "$CONF"
kill -TERM "$MR_PID"
wait "$MR_PID" 2>/dev/null

# --- a restart whose load takes longer than startup_timeout --------------------------
# (at this scale the load is close to the default startup_timeout of 10 s;
# on a busy machine it takes longer: then the daemon starts from the
# snapshot file and replaces it when the load is done). Forced here with
# startup_timeout = SLOW_STARTUP_TIMEOUT.
if [ "${SLOW_STARTUP_TIMEOUT:-3}" != 0 ]; then
    echo "startup_timeout = ${SLOW_STARTUP_TIMEOUT:-3}s" >>"$CONF"
    restart_watch RT
    bench_note "restart with startup_timeout = ${SLOW_STARTUP_TIMEOUT:-3}s: from snapshot at $RT_SNAPSTART s," \
        "loaded at $RT_LOADED s, replaced at $RT_REPLACED s"
    sed -i '/^startup_timeout = /d' "$CONF"
    kill -TERM "$MR_PID"
    wait "$MR_PID" 2>/dev/null
fi

# --- a restart whose snapshot the change log cannot bridge (pruned) -----------------
# a full load follows; the snapshot is answered from meanwhile (or, with
# MRD_BEFORE, not: the baseline's temporary failures until the load)
if [ "${PRUNED:-1}" = 1 ]; then
    PRUNE=1 restart_watch RP
    stop_mr
    if [ -n "${MRD_BEFORE:-}" ]; then
        PRUNE=1 restart_watch RBP "$STACK_DIR/mailrosterd.before"
        stop_mr
    fi
fi

# --- start from the snapshot file, PostgreSQL stopped -------------------------------
stack_pg_stop
lines=$(wc -l <"$LOG")
UNEXPECTED=$(head -n "$lines" "$LOG" | grep -E 'error|warning' | sed 's/\[[0-9]*\]//' | sort | uniq -c | head -20)
t0=$(now_us)
taskset -c "$SERVER_CPU" "$MRD" -f -c "$CONF" >>"$LOG" 2>&1 &
MR_PID=$!
STACK_PIDS+=("$MR_PID")
wait_log_from "$lines" 'starting from snapshot file' "$LOAD_TIMEOUT" || { echo "no start from the snapshot" >&2; tail "$LOG" >&2; exit 1; }
sleep 0.05
SNAP_START=$(secs_between "$t0" "$(log_time 'starting from snapshot' "$t0")")
sleep 0.5
RSS_SS=$(rss_kb "$MR_PID" VmRSS) HWM_SS=$(rss_kb "$MR_PID" VmHWM)
bench_note "$(tail -n +"$((lines + 1))" "$LOG" | grep 'starting from snapshot')"
bench_note "from the snapshot: before-stop@dom1.example -> $(postmap -q before-stop@dom1.example "tcp:127.0.0.1:$MR_TCP_MAILBOXES" 2>&1)"

mb() { kb_to_mb "$1"; }
echo
echo "scale: $N_DOMAINS domains, $N_MAILBOXES mailboxes, $N_ALIASES aliases (fixture $FIXTURE_S s);" \
    "mailrosterd on CPU $SERVER_CPU; PostgreSQL needs $PG_MB MB for these tables+indexes"
bench_row "full load from PostgreSQL (logged)" "$LOAD_LOGGED s" "15 s" "$(ratio "$LOAD_LOGGED" 15)"
bench_row "start -> 'loaded directory' (wall)" "$LOAD_WALL s" "15 s" "$(ratio "$LOAD_WALL" 15)"
bench_row "VmRSS / VmHWM after the load" "$(mb "$RSS_LOAD") / $(mb "$HWM_LOAD") MB" "400 MB" "$(ratio "$(mb "$HWM_LOAD")" 400)"
bench_row "snapshot file size" "$SNAP_MB MB" "-" "-"
bench_row "snapshot write (load logged -> file in place)" "$SNAP_WRITE s" "-" "-"
bench_row "VmRSS / VmHWM after the snapshot write" "$(mb "$RSS_SNAP") / $(mb "$HWM_SNAP") MB" "400 MB" "$(ratio "$(mb "$HWM_SNAP")" 400)"
bench_row "change latency p50 / max ($(v trials) trials, $(v timeouts) timeouts)" "$(v p50_ms) / $(v max_ms) ms" "100 ms" "$(ratio "$(v max_ms)" 100)"
bench_row "  same, pgsql map query (status quo)" "$(v pg_p50_ms) / $(v pg_max_ms) ms" "-" "-"
bench_row "  a change made during a snapshot write" "$DURING_WRITE ms" "100 ms" "$(ratio "$DURING_WRITE" 100)"
bench_row "VmRSS after the changes" "$(mb "$RSS_CHG") MB" "400 MB" "$(ratio "$(mb "$RSS_CHG")" 400)"
bench_row "SIGTERM -> exit, change pending ($STOP_WROTE)" "$STOP_S s" "-" "-"
# restart_rows PREFIX TITLE: the rows of one restart_watch; goal: the
# first answer within the snapshot's read + 0.5 s
restart_rows() {
    local p=$1 r
    local -n r200=${p}_200 rread=${p}_READ rsnap=${p}_SNAPSTART rcaught=${p}_CAUGHT rloaded=${p}_LOADED \
        rrepl=${p}_REPLACED rrtt=${p}_RTT rrttat=${p}_RTT_AT rstall=${p}_STALL r4xx=${p}_4XX rhwm=${p}_HWM \
        rload=${p}_LOADAVG rlate=${p}_LATE4XX rstart=${p}_STARTED
    r="-"
    [ "$rread" != "-" ] && r=$(awk -v a="$rread" 'BEGIN { printf "%.2f", a + 0.5 }')
    bench_row "$2: first answer (200)" "$r200 s" "${r} s" "$(ratio "$r200" "$r")"
    bench_row "  'starting' logged / snapshot read (logged) / served / caught up" "$rstart / $rread / $rsnap / $rcaught s" "-" "-"
    bench_row "  'loaded directory' / replaced" "$rloaded / $rrepl s" "-" "-"
    bench_row "  4xx (TEMP) replies before / after the first 200" "$(( ${r4xx:-0} - ${rlate:-0} )) / $rlate" "- / 0" "-"
    bench_row "  longest gap between 200s" "$rstall s" "-" "-"
    bench_row "  longest lookup round trip (sent at) / VmHWM" "$rrtt ms ($rrttat s) / $(mb "$rhwm") MB" "400 MB" "$(ratio "$(mb "$rhwm")" 400)"
    bench_row "  load average at its start" "$rload" "-" "-"
}
[ -n "${MRD_BEFORE:-}" ] && restart_rows RB "restart, PostgreSQL up, MRD_BEFORE"
restart_rows RS "restart, PostgreSQL up"
if [ "$DB_HOLD_S" != 0 ]; then
    [ -n "${MRD_BEFORE:-}" ] && restart_rows RBH "restart, connection held $DB_HOLD_S s, MRD_BEFORE"
    restart_rows RSH "restart, connection held $DB_HOLD_S s"
fi
if [ "${SLOW_STARTUP_TIMEOUT:-3}" != 0 ]; then
    restart_rows RT "restart, startup_timeout ${SLOW_STARTUP_TIMEOUT:-3} s"
fi
if [ "${PRUNED:-1}" = 1 ]; then
    restart_rows RP "restart, change log pruned"
    [ -n "${MRD_BEFORE:-}" ] && restart_rows RBP "restart, change log pruned, MRD_BEFORE"
fi
bench_row "start from snapshot, PostgreSQL stopped" "$SNAP_START s" "15 s" "$(ratio "$SNAP_START" 15)"
bench_row "VmRSS / VmHWM after the start from snapshot" "$(mb "$RSS_SS") / $(mb "$HWM_SS") MB" "400 MB" "$(ratio "$(mb "$HWM_SS")" 400)"
bench_table "what" "measured" "goal" "ratio to goal"
[ -n "$STARTUP_TF" ] && echo "first start: $STARTUP_TF"
for p in RB RBH RSH RS RT RP RBP; do
    v=${p}_TF
    [ "${!v:--}" != "-" ] && echo "restart ($p): 'answering temporary failures' at ${!v} s"
done
if [ -n "$UNEXPECTED" ]; then
    echo "mailrosterd log warnings/errors while PostgreSQL was up:"
    echo "$UNEXPECTED"
fi
echo "(with PostgreSQL stopped the daemon logged, as expected:" \
    "$(tail -n +"$((lines + 1))" "$LOG" | grep -cE 'error|warning') warning/error lines, e.g. 'database unavailable')"

bench_footer
