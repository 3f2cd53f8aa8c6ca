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
bench_note "plan of the indexed query:"; sed 's/^/#   /' <<<"$idx_plan" >&2
bench_note "plan of the tutorial query:"; sed 's/^/#   /' <<<"$slow_plan" >&2
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
if grep -qE 'error|warning' "$LOG"; then
    echo "mailrosterd log warnings/errors:"
    grep -E 'error|warning' "$LOG" | sort | uniq -c | head -20
fi

bench_footer
