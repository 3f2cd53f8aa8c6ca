#!/usr/bin/env bash
# tests/bench/lookup_postmap.sh - Postfix lookups with Postfix's own client:
# `postmap -q - MAP < KEYS` wall time, the same key file for every map:
#
#   pgsql: map, query on the unique index (domain_id, local_part)   (baseline)
#   pgsql: map, the ISP-mail tutorial's query over a view that
#          concatenates local_part || '@' || domain (a sequential scan per
#          lookup; run on a SLOW_KEYS subset and extrapolated)
#   mailrosterd: tcp:127.0.0.1:PORT, socketmap:unix:PATH:mailboxes,
#          socketmap:inet:127.0.0.1:PORT:mailboxes
#   mini_server (tests/bench/mini_server.c): a minimal in-memory server,
#          the ceiling with postmap as the client
#
# Fixture: 1 domain, N_MAILBOXES mailboxes, N_ALIASES aliases (INSERT ...
# SELECT generate_series as the superuser; the triggers log the changes).
# Keys: N_KEYS, HIT_PCT % existing mailboxes, the rest misses, shuffled.
# Servers (mailrosterd, mini_server, every PostgreSQL process) are pinned to
# CPU 1, postmap to CPU 0. CPU per lookup: utime+stime from /proc before and
# after (all PostgreSQL processes, plus what the postmaster reaped, for the
# pgsql maps). For mailrosterd and mini_server also the time the server was
# runnable but waited for its CPU (schedstat), per lookup: what other work
# on the server's core costs a run.
#
# Each fast map runs REPEAT times, in rounds; in each round every
# mailrosterd transport runs next to the mini_server run it is compared
# with, the pair's order alternating from round to round. The table shows
# the fastest (least disturbed) run, stderr every run; the ratios
# mailrosterd / mini_server of each round follow the table.
#
# RT=1: mailrosterd (every thread), mini_server and their postmap runs are
# SCHED_FIFO (priority 1): other work on a shared machine then cannot
# delay them (the servers' run-queue wait drops to ~1-2 us), and the
# ratios compare the servers, not the moments other work ran. The pgsql
# maps stay as they are.
#
# CONTROL=1: a second mini_server, the same program with the same data,
# runs in every round against the first, transport by transport, in the
# same turning order as the mailrosterd pairs: how far two identical
# servers' rounds differ on this machine at that time (the resolution of a
# round-by-round ratio). About half again the run time.
#
# SIDE=1 (the default; SIDE=0 leaves it out): after the rounds, side by
# side. Run one after the other, two identical servers differ by up to
# +-15 % a round here (CONTROL=1 shows it): the machine has phases, and a
# run gets the phase it gets. So for each transport, REPEAT times, two
# `postmap -q -` run at once, one against mailrosterd, one against
# mini_server, both on postmap's CPU, both reading the keys repeated (so
# that neither runs out); after SIDE_WARM (1) s the two outputs are read,
# and again SIDE_SECONDS (8) s later. Every hit is one output line and
# both servers answer alike, so the ratio of the bytes the two wrote in
# that window is the ratio of their lookups/s. Both servers share every
# moment of the window: the machine's phases fall on both, and the ratio
# compares the servers. But they share their core too, so it is a
# contest: CPU one server spends, even after it has answered, is time the
# other waits for the core (a mini_server made slower by CPU spent on each
# reply came out at 0.89-0.93 against the plain one with 3 us before its
# reply, 0.76-0.89 with 10 us before it, and 1.08-1.12 with 10 us after
# it); read the ratio with the CPU per lookup beside it. With CONTROL=1 also the second
# mini_server against the first (the A/A pair), the same way; the two
# then often run in lockstep (byte for byte the same output), so its 1.00
# says the method adds no noise of its own, not how small a gap shows
# (the 10 us above do). Server CPU
# per lookup: utime + stime in the window over the window's lookups (its
# output lines over the key file's hit fraction). 3 * REPEAT windows of
# ~10 s (twice with CONTROL=1).
#
#   tests/bench/lookup_postmap.sh                 (as root; ~3.5 min)
#   N_KEYS=20000 SLOW_KEYS=300 tests/bench/lookup_postmap.sh
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TOP/tests/bench/benchlib.sh"
bench_init lookup_postmap
N_MAILBOXES=${N_MAILBOXES:-100000}
N_ALIASES=${N_ALIASES:-20000}
N_KEYS=${N_KEYS:-100000}
HIT_PCT=${HIT_PCT:-80}
SLOW_KEYS=${SLOW_KEYS:-2000}
REPEAT=${REPEAT:-3}
RT=${RT:-0}
CONTROL=${CONTROL:-0}
SIDE=${SIDE:-1}
SIDE_WARM=${SIDE_WARM:-1}
SIDE_SECONDS=${SIDE_SECONDS:-8}
DOM=example.com

bench_db
t0=$(now_us)
fixture_one_domain "$DOM" "$N_MAILBOXES" "$N_ALIASES" || exit 1
bench_note "fixture: 1 domain, $N_MAILBOXES mailboxes, $N_ALIASES aliases in $(( ($(now_us) - t0) / 1000 )) ms"
KEYS=$STACK_DIR/keys
keys_file "$KEYS" "$N_KEYS" "$HIT_PCT" "$DOM"
head -n "$SLOW_KEYS" "$KEYS" >"$STACK_DIR/keys.slow"
bench_note "keys: $(wc -l <"$KEYS") ($HIT_PCT % hits), slow subset $(wc -l <"$STACK_DIR/keys.slow")"

# --- the pgsql maps ---------------------------------------------------------
pg_write_maps "$STACK_DIR" mrd
# the tutorial's shape: a view with the full address, queried by it
sql <<'EOF'
CREATE SCHEMA bench;
CREATE VIEW bench.users_fqda AS
  SELECT m.local_part || '@' || d.name AS email, m.maildir, m.enabled, m.may_receive, d.enabled AS domain_enabled
    FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id;
GRANT USAGE ON SCHEMA bench TO mrd;
GRANT SELECT ON bench.users_fqda TO mrd;
EOF
printf 'hosts = 127.0.0.1:%s\nuser = mrd\ndbname = %s\nquery = %s\n' "$STACK_PG_PORT" "$MR_DB" \
    "SELECT maildir FROM bench.users_fqda WHERE email = '%s' AND enabled AND may_receive AND domain_enabled" \
    >"$STACK_DIR/pg-slow.cf"

# the plans, as the daemon's role sees them
sample=$(head -n 1 "$KEYS")
idx_q=$(sed -n 's/^query = //p' "$STACK_DIR/pg-mailboxes.cf" | sed "s/%u/${sample%@*}/; s/%d/${sample#*@}/")
slow_q=$(sed -n 's/^query = //p' "$STACK_DIR/pg-slow.cf" | sed "s/%s/$sample/")
idx_plan=$(psql -X -At -U mrd -d "$MR_DB" -c "EXPLAIN (COSTS OFF) $idx_q")
slow_plan=$(psql -X -At -U mrd -d "$MR_DB" -c "EXPLAIN (COSTS OFF) $slow_q")
# (sed: a prefix on every line of the plans)
bench_note "plan of the indexed query:"
# shellcheck disable=SC2001
sed 's/^/#   /' <<<"$idx_plan" >&2
bench_note "plan of the tutorial query:"
# shellcheck disable=SC2001
sed 's/^/#   /' <<<"$slow_plan" >&2
if grep -q 'mailboxes_domain_id_local_part_key' <<<"$idx_plan"; then
    IDX_NOTE="EXPLAIN: Index Scan using mailboxes_domain_id_local_part_key (+ domains_name_key)"
else
    IDX_NOTE="WARNING: the indexed query does NOT use mailboxes_domain_id_local_part_key"
fi
if grep -q 'Seq Scan on mailboxes' <<<"$slow_plan"; then
    SLOW_NOTE="EXPLAIN: Seq Scan on mailboxes"
else
    SLOW_NOTE="EXPLAIN: no sequential scan?"
fi

# --- the servers, pinned ------------------------------------------------------
CONF=$STACK_DIR/mailroster.conf
mr_write_conf "$CONF"
bench_mr_start "$CONF"
gcc -O2 -o "$STACK_DIR/mini_server" "$TOP/tests/bench/mini_server.c" || exit 1
sql -c "COPY (SELECT m.local_part || '@' || d.name, m.maildir FROM mailroster.mailboxes m
        JOIN mailroster.domains d ON d.id = m.domain_id WHERE m.enabled AND m.may_receive AND d.enabled)
        TO STDOUT" >"$STACK_DIR/mini.kv"
MINI_TCP=$(stack_free_port)
MINI_UNIX=$STACK_DIR/mini.sock
MINI_SMAP=$(stack_free_port)
bench_mini_start mini -f "$STACK_DIR/mini.kv" -t "127.0.0.1:$MINI_TCP" -s "unix:$MINI_UNIX" -s "127.0.0.1:$MINI_SMAP"
MINI_PID=$MINI_STARTED
MINI2_PID=
if [ "$CONTROL" = 1 ]; then
    MINI2_TCP=$(stack_free_port)
    MINI2_UNIX=$STACK_DIR/mini2.sock
    MINI2_SMAP=$(stack_free_port)
    bench_mini_start mini2 -f "$STACK_DIR/mini.kv" -t "127.0.0.1:$MINI2_TCP" -s "unix:$MINI2_UNIX" \
        -s "127.0.0.1:$MINI2_SMAP"
    MINI2_PID=$MINI_STARTED
fi
pin_pg "$SERVER_CPU"
RT_WRAP=
if [ "$RT" = 1 ]; then
    chrt -a -f -p 1 "$MR_PID" && chrt -a -f -p 1 "$MINI_PID" || exit 1
    [ -z "$MINI2_PID" ] || chrt -a -f -p 1 "$MINI2_PID" || exit 1
    RT_WRAP="chrt -f 1"
fi
sql -c "CHECKPOINT"
bench_note "mailrosterd pid $MR_PID, mini_server pid $MINI_PID, PostgreSQL: CPU $SERVER_CPU; postmap: CPU $CLIENT_CPU${RT_WRAP:+; servers and their postmap runs SCHED_FIFO}"

# children's CPU (postmap) in ticks, from bash's `times`
# (sets CT; not in $(...), whose subshell would have its own children)
child_ticks() {
    times >"$STACK_DIR/times" # a builtin with a redirection: runs in this shell
    CT=$(awk -v hz="$CLK_TCK" 'function sec(x, m) { m = x; sub(/m.*/, "", m); sub(/^[0-9]+m/, "", x); sub(/s$/, "", x); return m * 60 + x }
        NR == 2 { printf "%d", (sec($1) + sec($2)) * hz }' "$STACK_DIR/times")
}

# run LABEL MAP KEYFILE SERVER(pg|mrd|mini): one postmap run; sets R_*
run() {
    local label=$1 map=$2 keys=$3 kind=$4 n s0 s1 c0 c1 t0 t1 pid='' w0 w1
    n=$(wc -l <"$keys")
    case $kind in
        pg) s0=$(pg_ticks) ;; mrd) pid=$MR_PID ;; mini) pid=$MINI_PID ;; mini2) pid=$MINI2_PID ;;
    esac
    [ -n "$pid" ] && { s0=$(proc_ticks "$pid"); read -r _ w0 < <(sched_ns "$pid"); }
    child_ticks; c0=$CT
    t0=${EPOCHREALTIME/./}
    ${pid:+$RT_WRAP} taskset -c "$CLIENT_CPU" postmap -q - "$map" <"$keys" >"$STACK_DIR/out" 2>"$STACK_DIR/err"
    t1=${EPOCHREALTIME/./}
    child_ticks; c1=$CT
    if [ -n "$pid" ]; then
        s1=$(proc_ticks "$pid")
        read -r _ w1 < <(sched_ns "$pid")
        R_WAIT=$(awk -v w=$((w1 - w0)) -v n="$n" 'BEGIN { printf "%.1f", w / 1e3 / n }')
    else
        s1=$(pg_ticks)
        R_WAIT=-
    fi
    R_N=$n
    R_FOUND=$(wc -l <"$STACK_DIR/out")
    R_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e6 }')
    R_RATE=$(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN { printf "%.0f", n / ((b - a) / 1e6) }')
    R_SRV=$(ticks_to_us_per $((s1 - s0)) "$n")
    R_CLI=$(ticks_to_us_per $((c1 - c0)) "$n")
    if [ -s "$STACK_DIR/err" ]; then
        bench_note "$label: postmap said: $(sort "$STACK_DIR/err" | uniq -c | head -3 | tr '\n' ' ')"
    fi
    bench_note "$label: $n keys, $R_FOUND found, $R_SECS s, $R_RATE lookups/s, server $R_SRV us/lookup, postmap $R_CLI us/lookup, server waited for its CPU $R_WAIT us/lookup"
}

declare -A RATE SRV CLI FOUND SECS RUNS WAIT
# row LABEL MAP KEYS KIND: one more run of LABEL; keeps every run's figures
row() {
    run "$@"
    RUNS[$1]+="$R_RATE $R_SECS $R_SRV $R_CLI $R_FOUND/$R_N $R_WAIT"$'\n'
    LAST_RATE=$R_RATE
}
# pair I ROUND [mini2]: mailrosterd's map I (or the second mini_server's,
# the control) next to mini_server's, the order alternating by round
# (neither always runs first); adds the round's ratio to PAIR_RATIOS (or
# CTRL_RATIOS)
declare -A PAIR_RATIOS CTRL_RATIOS
pair() {
    local i=$1 r=$2 side=${3:-mrd} a b
    local -n rows=${side^^}_ROWS maps=${side^^}_MAPS
    local rv=PAIR_RATIOS
    [ "$side" = mrd ] || rv=CTRL_RATIOS
    local -n ratios=$rv
    if [ $((r % 2)) = 1 ]; then
        row "${rows[$i]}" "${maps[$i]}" "$KEYS" "$side"; a=$LAST_RATE
        row "${MINI_ROWS[$i]}" "${MINI_MAPS[$i]}" "$KEYS" mini; b=$LAST_RATE
    else
        row "${MINI_ROWS[$i]}" "${MINI_MAPS[$i]}" "$KEYS" mini; b=$LAST_RATE
        row "${rows[$i]}" "${maps[$i]}" "$KEYS" "$side"; a=$LAST_RATE
    fi
    # shellcheck disable=SC2004  # an associative array: [i] would be the key "i"
    ratios[$i]+=" $(ratio "$a" "$b")"
}
# pick_best LABEL: the figures of the fastest run (other work on the
# machine only ever slows a run down: the fastest is the least disturbed)
pick_best() {
    local l
    l=$(printf '%s' "${RUNS[$1]}" | sed '/^$/d' | sort -n | tail -n 1)
    read -r "RATE[$1]" "SECS[$1]" "SRV[$1]" "CLI[$1]" "FOUND[$1]" "WAIT[$1]" <<<"$l"
    bench_note "$1: lookups/s of each run: $(printf '%s' "${RUNS[$1]}" | awk '{print $1}' | paste -sd' ')"
}

# warm every path once (connections, caches), then measure
for m in "pgsql:$STACK_DIR/pg-mailboxes.cf" "tcp:127.0.0.1:$MR_TCP_MAILBOXES" \
        "socketmap:unix:$MR_SMAP_UNIX:mailboxes" "socketmap:inet:127.0.0.1:$MR_SMAP_PORT:mailboxes" \
        "tcp:127.0.0.1:$MINI_TCP" "socketmap:unix:$MINI_UNIX:mailboxes" \
        "socketmap:inet:127.0.0.1:$MINI_SMAP:mailboxes"; do
    head -n 2000 "$KEYS" | postmap -q - "$m" >/dev/null 2>&1
done

# REPEAT rounds over the maps (so a burst of other work on the machine
# hits one run of a map, not all of them); the fastest run of each counts
TRANSPORTS=("tcp_table" "socketmap unix" "socketmap inet")
MRD_ROWS=("mailrosterd tcp_table" "mailrosterd socketmap unix" "mailrosterd socketmap inet")
# shellcheck disable=SC2034  # used through local -n (pair, side_pair)
MRD_MAPS=("tcp:127.0.0.1:$MR_TCP_MAILBOXES" "socketmap:unix:$MR_SMAP_UNIX:mailboxes"
          "socketmap:inet:127.0.0.1:$MR_SMAP_PORT:mailboxes")
MINI_ROWS=("mini_server tcp_table (ceiling)" "mini_server socketmap unix (ceiling)" "mini_server socketmap inet (ceiling)")
MINI_MAPS=("tcp:127.0.0.1:$MINI_TCP" "socketmap:unix:$MINI_UNIX:mailboxes" "socketmap:inet:127.0.0.1:$MINI_SMAP:mailboxes")
MINI2_ROWS=("control: second mini_server tcp_table" "control: second mini_server socketmap unix"
            "control: second mini_server socketmap inet")
if [ "$CONTROL" = 1 ]; then
    MINI2_MAPS=("tcp:127.0.0.1:$MINI2_TCP" "socketmap:unix:$MINI2_UNIX:mailboxes"
                "socketmap:inet:127.0.0.1:$MINI2_SMAP:mailboxes")
    for m in "${MINI2_MAPS[@]}"; do head -n 2000 "$KEYS" | postmap -q - "$m" >/dev/null 2>&1; done
fi
FAST=("pgsql, unique index (baseline)" "${MRD_ROWS[@]}" "${MINI_ROWS[@]}")
for round in $(seq "$REPEAT"); do
    bench_note "round $round of $REPEAT"
    row "${FAST[0]}" "pgsql:$STACK_DIR/pg-mailboxes.cf" "$KEYS" pg
    for i in 0 1 2; do
        pair "$i" "$round"
        [ "$CONTROL" = 1 ] && pair "$i" "$round" mini2
    done
done
[ "$CONTROL" = 1 ] && FAST+=("${MINI2_ROWS[@]}")
for l in "${FAST[@]}"; do pick_best "$l"; done
row "pgsql, tutorial view (extrapolated)" "pgsql:$STACK_DIR/pg-slow.cf" "$STACK_DIR/keys.slow" pg
pick_best "pgsql, tutorial view (extrapolated)"
SLOW_LABEL="pgsql, tutorial view (extrapolated)"
SLOW_100K=$(awk -v r="${RATE[$SLOW_LABEL]}" -v n="$N_KEYS" 'BEGIN { printf "%.0f", n / r }')

# --- side by side (SIDE=1) ------------------------------------------------------
# What a reading is worth: postmap does not flush per line. postmap_queries()
# (postfix/src/postmap/postmap.c) prints each hit with
#   vstream_printf("%s	%s\n", STR(keybuf), value);
# and flushes VSTREAM_OUT once, after the last key; VSTREAM_OUT's buffer is
# VSTREAM_BUFSIZE, 4096 bytes (util/vstream.h), written when full. So the
# output file grows in 4096-byte blocks (stdbuf does nothing here: vstream
# is not stdio), a reading is short by less than 4096 bytes, and a window's
# bytes are off by less than 4096. An 8 s window held 1.2-4.8 MB here
# (4,000-14,000 lookups/s each, 80 % hits, ~50 bytes a line; load 2-3):
# < 0.35 %. The run prints the bound it had (a warning above 0.5 %).
SIDE_BLOCK=4096
# side_start MAP OUT: one postmap on the client CPU reading SIDE_KEYS into
# OUT (OUT.err); its pid in SIDE_PID and STACK_PIDS (cleanup on an abort)
side_start() {
    ${RT_WRAP} taskset -c "$CLIENT_CPU" postmap -q - "$1" <"$SIDE_KEYS" >"$2" 2>"$2.err" &
    SIDE_PID=$!
    STACK_PIDS+=("$SIDE_PID")
}
# side_running PID: still there and not a zombie (one that ran out of keys
# or failed has exited)
side_running() { local s; s=$(ps -o stat= -p "$1") && [ "${s:0:1}" != Z ]; }
# side_lookups FILE FROM TO: the lookups behind the output bytes FROM..TO
# (the lines in them over the keys' hit fraction)
side_lookups() {
    tail -c +$(($2 + 1)) "$1" | head -c $(($3 - $2)) | wc -l | awk -v f="$SIDE_HIT" '{ printf "%.0f", $1 / f }'
}
# side_pair I ROUND [mini2]: mailrosterd's map I (or the second
# mini_server's, the control) and mini_server's at once: the window's
# output bytes A / B into SIDE_RATIOS (or SIDE_CTRL), each server's CPU
# us/lookup into SIDE_CPU_<server>
declare -A SIDE_RATIOS SIDE_CTRL SIDE_CPU_MRD SIDE_CPU_MINI SIDE_CPU_MINI2
SIDE_ERR=0 SIDE_MIN_BYTES=
side_pair() {
    local i=$1 r=$2 a=${3:-mrd} sa=$MR_PID sb=$MINI_PID n=${#STACK_PIDS[@]}
    local fa fb pa pb a0 b0 a1 b1 ca0 cb0 ca1 cb1 t0 t1 da db la lb q ok=1 e
    local -n maps=${a^^}_MAPS cpu_a=SIDE_CPU_${a^^}
    [ "$a" = mrd ] || sa=$MINI2_PID
    fa=$STACK_DIR/side.$a.out fb=$STACK_DIR/side.mini.out
    # started a few ms apart (the warm-up covers it), in the round's order
    if [ $((r % 2)) = 1 ]; then
        side_start "${maps[$i]}" "$fa"; pa=$SIDE_PID
        side_start "${MINI_MAPS[$i]}" "$fb"; pb=$SIDE_PID
    else
        side_start "${MINI_MAPS[$i]}" "$fb"; pb=$SIDE_PID
        side_start "${maps[$i]}" "$fa"; pa=$SIDE_PID
    fi
    sleep "$SIDE_WARM"
    # both sizes from one stat: the same moment for both
    t0=${EPOCHREALTIME/./}
    { read -r a0; read -r b0; } < <(stat -c %s "$fa" "$fb")
    ca0=$(proc_ticks "$sa"); cb0=$(proc_ticks "$sb")
    sleep "$SIDE_SECONDS"
    t1=${EPOCHREALTIME/./}
    { read -r a1; read -r b1; } < <(stat -c %s "$fa" "$fb")
    ca1=$(proc_ticks "$sa"); cb1=$(proc_ticks "$sb")
    side_running "$pa" && side_running "$pb" || ok=0
    kill "$pa" "$pb" 2>/dev/null
    wait "$pa" "$pb" 2>/dev/null
    STACK_PIDS=("${STACK_PIDS[@]:0:n}")
    da=$((a1 - a0)) db=$((b1 - b0))
    for e in "$fa.err" "$fb.err"; do
        [ -s "$e" ] && bench_note "side by side: postmap said: $(sort "$e" | uniq -c | head -3 | tr '\n' ' ')"
    done
    if [ "$ok" = 0 ] || [ "$da" -le 0 ] || [ "$db" -le 0 ]; then
        bench_note "side by side ${TRANSPORTS[$i]} $a/mini round $r: no valid window (a postmap ended early or wrote nothing)"
        q=- la=- lb=-
    else
        q=$(ratio "$da" "$db")
        la=$(side_lookups "$fa" "$a0" "$a1") lb=$(side_lookups "$fb" "$b0" "$b1")
        SIDE_ERR=$(awk -v e="$SIDE_ERR" -v b="$SIDE_BLOCK" -v x="$da" -v y="$db" \
            'BEGIN { m = (x < y ? x : y); printf "%.3f", (b / m * 100 > e ? b / m * 100 : e) }')
        for e in "$da" "$db"; do
            if [ -z "$SIDE_MIN_BYTES" ] || [ "$e" -lt "$SIDE_MIN_BYTES" ]; then SIDE_MIN_BYTES=$e; fi
        done
    fi
    if [ "$a" = mrd ]; then
        SIDE_RATIOS[$i]+=" $q"
        SIDE_CPU_MINI[$i]+=" $(ticks_to_us_per $((cb1 - cb0)) "${lb/-/0}")"
    else
        SIDE_CTRL[$i]+=" $q"
    fi
    # shellcheck disable=SC2004  # an associative array: [i] would be the key "i"
    cpu_a[$i]+=" $(ticks_to_us_per $((ca1 - ca0)) "${la/-/0}")"
    bench_note "side by side ${TRANSPORTS[$i]} round $r, $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e6 }') s:" \
        "$a output $a0..$a1 ($da bytes, $la lookups), mini $b0..$b1 ($db bytes, $lb lookups); $a/mini $q"
}
# side_median RATIO...: the median of those that are numbers, "-" if none
side_median() {
    local v=() x
    for x in "$@"; do [ "$x" = - ] || v+=("$x"); done
    if [ ${#v[@]} = 0 ]; then echo -; return; fi
    median_of "${v[@]}" | awk '{ s = sprintf("%.3f", $1); sub(/0$/, "", s); print s }'
}

if [ "$SIDE" = 1 ]; then
    # the keys' hit fraction, from the sequential mini_server runs
    SIDE_HIT=$(awk -v f="${FOUND[${MINI_ROWS[0]}]}" 'BEGIN { split(f, x, "/"); printf "%.4g", (x[2] > 0 ? x[1] / x[2] : 0) }')
    # enough keys that neither postmap runs out: 60,000 lookups/s (twice
    # what one postmap alone does here) for the whole run of a pair
    SIDE_REPS=$(awk -v n="$N_KEYS" -v s=$((SIDE_WARM + SIDE_SECONDS + 5)) 'BEGIN { r = 60000 * s / n; r = (r == int(r) ? r : int(r) + 1); print (r < 2 ? 2 : r) }')
    SIDE_KEYS=$STACK_DIR/keys.side
    for _ in $(seq "$SIDE_REPS"); do cat "$KEYS"; done >"$SIDE_KEYS"
    bench_note "side by side: keys $SIDE_REPS times ($(wc -l <"$SIDE_KEYS") lines), hit fraction $SIDE_HIT;" \
        "${SIDE_WARM} s warm-up, ${SIDE_SECONDS} s windows, $REPEAT rounds"
    for round in $(seq "$REPEAT"); do
        for i in 0 1 2; do
            # with the control: which pair comes first turns by round
            if [ "$CONTROL" = 1 ] && [ $((round % 2)) = 0 ]; then
                side_pair "$i" "$round" mini2
                side_pair "$i" "$round"
            else
                side_pair "$i" "$round"
                [ "$CONTROL" = 1 ] && side_pair "$i" "$round" mini2
            fi
        done
    done
    rm -f "$SIDE_KEYS" "$STACK_DIR"/side.*
fi

base=${RATE["pgsql, unique index (baseline)"]}
for l in "${FAST[@]}" "$SLOW_LABEL"; do
    bench_row "$l" "${FOUND[$l]}" "${SECS[$l]}" "${RATE[$l]}" "$(ratio "${RATE[$l]}" "$base")" \
        "$(ratio "${RATE[$l]}" "${RATE[$SLOW_LABEL]}")" "${SRV[$l]}" "${WAIT[$l]}" "${CLI[$l]}"
done
echo
echo "postmap -q - MAP < $N_KEYS keys ($HIT_PCT % hits); $N_MAILBOXES mailboxes, $N_ALIASES aliases;" \
    "servers on CPU $SERVER_CPU, postmap on CPU $CLIENT_CPU${RT_WRAP:+ (SCHED_FIFO: RT=1)}; fastest of $REPEAT runs (lookups/s of every run on stderr)"
bench_table "map" "found/keys" "wall s" "lookups/s" "vs indexed pgsql" "vs tutorial" "server CPU us/lookup" \
    "server waited for CPU us/lookup" "postmap CPU us/lookup"
echo "mailrosterd / mini_server lookups/s, round by round (each pair run back to back):"
for i in 0 1 2; do
    printf '  %-15s%s\n' "${TRANSPORTS[$i]}" "${PAIR_RATIOS[$i]}"
done
if [ "$CONTROL" = 1 ]; then
    echo "control: a second mini_server / mini_server lookups/s, round by round (the same program and data):"
    for i in 0 1 2; do
        printf '  %-15s%s\n' "${TRANSPORTS[$i]}" "${CTRL_RATIOS[$i]}"
    done
fi
echo "indexed pgsql: $IDX_NOTE"
echo "tutorial view: $SLOW_NOTE; measured on $SLOW_KEYS keys in ${SECS[$SLOW_LABEL]} s," \
    "extrapolated to $N_KEYS keys: $SLOW_100K s"
echo "server CPU for pgsql = every PostgreSQL process of the private cluster (backend, checkpointer, ...)"
echo "server waited for CPU = runnable, but another process had the server's core (schedstat): other work on the machine"
if [ "$SIDE" = 1 ]; then
    for i in 0 1 2; do
        l="side by side (both postmaps at once, $SIDE_SECONDS s windows): ${TRANSPORTS[$i]} mailrosterd/mini_server per round:${SIDE_RATIOS[$i]}"
        # shellcheck disable=SC2086  # the rounds' figures, one word each
        l+=", median $(side_median ${SIDE_RATIOS[$i]})"
        if [ "$CONTROL" = 1 ]; then
            # shellcheck disable=SC2086
            l+="; control mini2/mini:${SIDE_CTRL[$i]}, median $(side_median ${SIDE_CTRL[$i]})"
        fi
        echo "$l"
    done
    echo "side by side, server CPU us/lookup per round (utime+stime in the window / its output lines over the keys' hit fraction $SIDE_HIT):"
    for i in 0 1 2; do
        l="  $(printf '%-15s' "${TRANSPORTS[$i]}")mailrosterd${SIDE_CPU_MRD[$i]}; mini_server${SIDE_CPU_MINI[$i]}"
        [ "$CONTROL" = 1 ] && l+="; mini2${SIDE_CPU_MINI2[$i]}"
        echo "$l"
    done
    echo "side by side: postmap writes its output in $SIDE_BLOCK-byte blocks; a window's bytes are off by < $SIDE_BLOCK," \
        "at most $SIDE_ERR % of the smallest window (${SIDE_MIN_BYTES:--} bytes)"
    if awk -v e="$SIDE_ERR" 'BEGIN { exit !(e > 0.5) }'; then
        echo "WARNING: side by side: the windows are too short for the $SIDE_BLOCK-byte blocks (> 0.5 %): raise SIDE_SECONDS"
    fi
fi
if grep -qE 'error|warning' "$LOG"; then
    echo "mailrosterd log warnings/errors:"
    grep -E 'error|warning' "$LOG" | sort | uniq -c | head -20
fi

bench_footer
