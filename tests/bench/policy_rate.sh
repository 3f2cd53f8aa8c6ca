#!/usr/bin/env bash
# tests/bench/policy_rate.sh - mailrosterd's policy service against Debian's
# policyd-rate-limit (the fastest rate-limiting peer) and a minimal
# parse-and-DUNNO server (mini_server -p: the ceiling), same request stream,
# same run, persistent connections, one request in flight per connection as
# smtpd asks (lookup_load -t policy).
#
#   in-memory checks   -m out: the RCPT request of an authenticated
#                      submission (login, sender ownership; mailrosterd
#                      decides from memory, policyd-rate-limit from its
#                      sqlite database in memory, counting at RCPT)
#   admissions         -m msg: RCPT, then END-OF-MESSAGE with
#                      recipient_count=1 per message: mailrosterd admits at
#                      END-OF-MESSAGE with send_admit() in PostgreSQL,
#                      policyd-rate-limit counts at RCPT in PostgreSQL (or
#                      sqlite in memory); figures are messages/s (= requests/2)
# Fixture: N_ACCOUNTS mailboxes u1..uN@example.com, 100 messages per hour
# each (the domain's limit; policyd-rate-limit's limits: [[100, 3600]]);
# logins drawn at random, so no account reaches its limit.
# PostgreSQL runs durable for the admissions (fsync and synchronous_commit
# on, as on a real host: the WAL flush bounds a durable admission); DURABLE=0
# keeps the test cluster's fsync=off. Its shared_buffers is Debian's
# default, 128MB (the test clusters' 16MB would not hold the log's index).
# Server CPU per request: mailrosterd's (or the peer's) utime+stime, plus
# every PostgreSQL process's for the admissions. Nothing is asserted.
#
# CONTROL=1: a second mini_server -p (the same program) runs in the RCPT
# part's rounds too, and a row per shape gives it against the first: how far
# two identical servers differ on this machine at that time (the resolution
# of a ratio, and of its rounds).
#
# SIDE=1 (the default): the RCPT shapes also side by side: one client loads
# mailrosterd and the minimal server at once (lookup_load -b), REPEAT runs
# with their order in the client swapped each run. Both then share every
# stall and slow phase of the machine, and the ratio compares the servers
# (with CONTROL=1 also the second minimal server against the first so).
#
#   tests/bench/policy_rate.sh       (as root; installs policyd-rate-limit)
#   PARTS=msg MRD_CONF_EXTRA='policy_db_synchronous_commit = yes' tests/bench/policy_rate.sh
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TOP/tests/bench/benchlib.sh"
bench_init policy_rate
export STACK_PG_SHARED_BUFFERS=${STACK_PG_SHARED_BUFFERS:-128MB}
N_ACCOUNTS=${N_ACCOUNTS:-10000}
N_KEYS=${N_KEYS:-200000}
DURATION=${DURATION:-3}
WARMUP=${WARMUP:-0.5}
REPEAT=${REPEAT:-3}
DURABLE=${DURABLE:-1}
PARTS=${PARTS:-rcpt,msg,ceiling}     # which parts run
# CLIENT_SPIN=1: the client busy-polls its sockets instead of sleeping in
# epoll_wait (lookup_load -s, as lookup_load.sh does by default). A sleeping
# client, as smtpd is, has to be woken for each answer, and in this VM that
# wake-up (an IPI) is charged to the server that writes the answer: the
# slower server leaves the client asleep more often and pays more per
# request (perf: 24 % of mailrosterd's samples against 14 % of the minimal
# server's in sock_def_readable's wake-up, 32 connections over TCP), which
# widens any gap between the two. Busy-polling takes that out, so the
# ratio compares the servers' own work.
CLIENT_SPIN=${CLIENT_SPIN:-0}
CONTROL=${CONTROL:-0}
SIDE=${SIDE:-1}
SPIN=""; [ "$CLIENT_SPIN" = 1 ] && SPIN=-s

if [ ! -x /usr/bin/policyd-rate-limit ] || ! /usr/bin/python3 -c 'import psycopg2' 2>/dev/null; then
    bench_note "installing policyd-rate-limit and python3-psycopg2"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        policyd-rate-limit python3-psycopg2 >/dev/null || exit 1
fi

gcc -O2 -Wall -o "$STACK_DIR/lookup_load" "$TOP/tests/bench/lookup_load.c" || exit 1
gcc -O2 -Wall -o "$STACK_DIR/mini_server" "$TOP/tests/bench/mini_server.c" || exit 1

bench_db
sql <<SQL >/dev/null
INSERT INTO mailroster.domains (name, send_limit_messages, send_limit_window) VALUES ('example.com', 100, 3600);
INSERT INTO mailroster.mailboxes (domain_id, local_part, password)
  SELECT d.id, 'u' || g, $BENCH_SHA512 FROM mailroster.domains d, generate_series(1, $N_ACCOUNTS) g;
SQL
sql -c "VACUUM ANALYZE" >/dev/null
KEYS=$STACK_DIR/keys
awk -v n="$N_ACCOUNTS" -v k="$N_KEYS" 'BEGIN { srand(4242); for (i = 0; i < k; i++) print "u" int(1 + rand() * n) "@example.com" }' >"$KEYS"

# --- the servers -------------------------------------------------------------------
P_MRD=$(stack_free_port)
CONF=$STACK_DIR/mailroster.conf
mr_write_conf "$CONF" "policy_listen = inet:127.0.0.1:$P_MRD, unix:$STACK_DIR/mr/policy" \
    "policy_db_connections = ${POLICY_DB_CONNECTIONS:-2}" "${MRD_CONF_EXTRA:-}"
bench_mr_start "$CONF"

P_MINI=$(stack_free_port)
bench_mini_start mini -f /dev/null -p "127.0.0.1:$P_MINI" -p "unix:$STACK_DIR/mini.policy"
MINI_PID=$MINI_STARTED
if [ "$CONTROL" = 1 ]; then
    P_MINI2=$(stack_free_port)
    bench_mini_start mini2 -f /dev/null -p "127.0.0.1:$P_MINI2" -p "unix:$STACK_DIR/mini2.policy"
    MINI2_PID=$MINI_STARTED
fi

# policyd-rate-limit, as user nobody (it drops root by itself only to a
# user its config names, after making directories we do not want)
PRL_DIR=$(mktemp -d /tmp/mr-bench-prl.XXXXXX)
bench_cleanup() { stack_cleanup; rm -rf "$PRL_DIR"; }
chmod 0777 "$PRL_DIR"
sql -c "CREATE ROLE prl LOGIN PASSWORD 'prl'" -c "CREATE DATABASE prl OWNER prl" >/dev/null
prl_start() { # NAME BACKEND(0 sqlite, 2 pgsql) PORT
    mkdir -p "$PRL_DIR/$1" && chmod 0777 "$PRL_DIR/$1"
    cat >"$PRL_DIR/$1/prl.yaml" <<YAML
debug: False
user: "nobody"
group: "nogroup"
pidfile: "$PRL_DIR/$1/prl.pid"
sqlite_config:
    database: ":memory:"
pgsql_config:
    database: "prl"
    user: "prl"
    password: "prl"
    host: "127.0.0.1"
    port: $PGPORT
backend: $2
SOCKET: ["127.0.0.1", $3]
limits:
    - [100, 3600]
limits_by_id: {}
limit_by_sasl: True
limit_by_sender: False
limit_by_ip: False
limited_networks: []
success_action: "dunno"
fail_action: "defer_if_permit Rate limit reach, retry later"
db_error_action: "dunno"
report: False
delay_to_close: 300
YAML
    chmod 0644 "$PRL_DIR/$1/prl.yaml"
    taskset -c "$SERVER_CPU" runuser -u nobody -- /usr/bin/policyd-rate-limit -f "$PRL_DIR/$1/prl.yaml" \
        >"$PRL_DIR/$1/log" 2>&1 &
    STACK_PIDS+=("$!")
    stack__wait_port "$3" 10 || { echo "policyd-rate-limit ($1) did not start:" >&2; cat "$PRL_DIR/$1/log" >&2; exit 1; }
}
P_PRLM=$(stack_free_port)
P_PRLP=$(stack_free_port)
prl_start mem 0 "$P_PRLM"
prl_start pg 2 "$P_PRLP"
# the python process (runuser's child) for its CPU
prl_pid() { pgrep -f "policyd-rate-limit -f $PRL_DIR/$1/" | while read -r p; do
    [ "$(cat /proc/"$p"/comm 2>/dev/null)" != runuser ] && echo "$p"; done | head -1; }
PRLM_PID=$(prl_pid mem)
PRLP_PID=$(prl_pid pg)
pin_pg "$SERVER_CPU" 2>/dev/null || true

# fld NAME LINE: a field of lookup_load's result line
fld() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# --- sanity: every server answers DUNNO to a submission ------------------------------
for a in "127.0.0.1:$P_MRD" "127.0.0.1:$P_MINI" "127.0.0.1:$P_PRLM" "127.0.0.1:$P_PRLP" ${P_MINI2:+"127.0.0.1:$P_MINI2"}; do
    out=$("$STACK_DIR/lookup_load" -t policy -a "$a" -m msg -k "$KEYS" -n 20 -c 1 -p 1 2>&1)
    [ "$(fld hits "$out")" = 20 ] || { echo "$a does not answer DUNNO: $out" >&2; exit 1; }
done
bench_note "every server answers DUNNO to 10 messages"

durable() { # on|off
    sql -c "ALTER SYSTEM SET fsync = $1" -c "ALTER SYSTEM SET synchronous_commit = $1" \
        -c "SELECT pg_reload_conf()" >/dev/null
}

# The servers are measured in turns: each round runs every configuration of
# a part once, so a slow spell of the machine (this VM's speed moves by half
# within minutes) falls on all of them alike, and each round gives ratios
# of its own; the order turns by one each round.
# cfg NAME LABEL PID WITH_PG ARGS...: a configuration (lookup_load's ARGS)
declare -A C_LABEL C_PID C_PG C_ARGS B_RPS B_CPU B_P99 B_ERR R_RPS
cfg() { C_LABEL[$1]=$2; C_PID[$1]=$3; C_PG[$1]=$4; local n=$1; shift 4; C_ARGS[$n]="$*"; }
# runset NAME...: REPEAT rounds; per configuration the best round by
# requests/s is kept: B_RPS, B_CPU (server CPU µs per request over every
# reply, warm-up included; PostgreSQL's added when WITH_PG), B_P99 (µs),
# B_ERR; and every round's requests/s, R_RPS[NAME.ROUND]
runset() {
    local n r s0 s1 g0 g1 line rps
    for n in "$@"; do B_RPS[$n]=-1; done
    for r in $(seq 1 "$REPEAT"); do
        # the order turns by one each round: the first run after a part
        # starts (PostgreSQL's settings just reloaded, the client's first
        # pass over the keys) is not always the same server's
        for n in $(turned "$r" "$@"); do
            s0=$(proc_ticks "${C_PID[$n]}"); g0=0; [ "${C_PG[$n]}" = 1 ] && g0=$(pg_ticks)
            # shellcheck disable=SC2086  # ARGS: words without spaces
            line=$(taskset -c "$CLIENT_CPU" "$STACK_DIR/lookup_load" $SPIN ${C_ARGS[$n]} -k "$KEYS" \
                -d "$DURATION" -w "$WARMUP") || { echo "lookup_load failed: ${C_LABEL[$n]}" >&2; exit 1; }
            s1=$(proc_ticks "${C_PID[$n]}"); g1=0; [ "${C_PG[$n]}" = 1 ] && g1=$(pg_ticks)
            rps=$(fld lookups_per_s "$line")
            R_RPS[$n.$r]=$rps
            bench_note "${C_LABEL[$n]}, round $r: $line server_ticks=$((s1 - s0)) pg_ticks=$((g1 - g0))"
            if awk -v a="$rps" -v b="${B_RPS[$n]}" 'BEGIN { exit !(a > b) }'; then
                B_RPS[$n]=$rps
                B_CPU[$n]=$(ticks_to_us_per $((s1 - s0 + g1 - g0)) "$(fld replies_total "$line")")
                B_P99[$n]=$(fld p99_us "$line")
                B_ERR[$n]=$(( $(fld errors "$line") + $(fld misses "$line") ))
            fi
        done
    done
}
# rounds A B: A's requests/s over B's in each round: "median, lowest"
rounds() {
    local r q v=()
    for r in $(seq 1 "$REPEAT"); do
        q=$(ratio "${R_RPS[$1.$r]}" "${R_RPS[$2.$r]}")
        [ "$q" != - ] && v+=("$q")
    done
    if [ ${#v[@]} -eq 0 ]; then echo -; else awk -v m="$(median_of "${v[@]}")" -v l="$(min_of "${v[@]}")" 'BEGIN { printf "%.2f, %.2f", m, l }'; fi
}
half() { awk -v a="$1" 'BEGIN { printf "%.0f", a / 2 }'; }

# side_rcpt WHO CONNS TRANSPORT ADDR PID BASE_ADDR: REPEAT runs of the RCPT
# request against ADDR and the minimal server at once (lookup_load -b, the
# two in the client's order swapped each run); a line in SIDE_NOTES with
# ADDR's requests/s over the minimal server's in each run and its median,
# and both servers' CPU per request
SIDE_NOTES=()
side_rcpt() {
    local who=$1 conns=$2 tr=$3 a=$4 pid=$5 b=$6 r out la lb s0 s1 m0 m1 x1 x2 rs=() cpus=""
    for r in $(seq 1 "$REPEAT"); do
        s0=$(proc_ticks "$pid"); m0=$(proc_ticks "$MINI_PID")
        if [ $((r % 2)) = 1 ]; then x1=$a x2=$b; else x1=$b x2=$a; fi
        # shellcheck disable=SC2086  # SPIN: one option or none
        out=$(taskset -c "$CLIENT_CPU" "$STACK_DIR/lookup_load" $SPIN -t policy -m out -a "$x1" -b "$x2" \
            -c "$conns" -p 1 -k "$KEYS" -d "$DURATION" -w "$WARMUP") || { echo "lookup_load failed: side by side" >&2; exit 1; }
        s1=$(proc_ticks "$pid"); m1=$(proc_ticks "$MINI_PID")
        if [ $((r % 2)) = 1 ]; then la=$(sed -n 1p <<<"$out") lb=$(sed -n 2p <<<"$out")
        else la=$(sed -n 2p <<<"$out") lb=$(sed -n 1p <<<"$out"); fi
        bench_note "side by side, $who ${conns}x1 $tr, run $r: $la"
        bench_note "  minimal: $lb"
        rs+=("$(ratio "$(fld lookups_per_s "$la")" "$(fld lookups_per_s "$lb")")")
        cpus+="${cpus:+ }$(ticks_to_us_per $((s1 - s0)) "$(fld replies_total "$la")")/$(ticks_to_us_per $((m1 - m0)) "$(fld replies_total "$lb")")"
    done
    local head="RCPT checks, mailrosterd"
    [ "$who" = mrd ] || head="  control, a second minimal server"
    SIDE_NOTES+=("$head/minimal, $conns conns, $tr: $(median_of "${rs[@]}") (each run: ${rs[*]});\
 server CPU µs/request, each run: $cpus")
}

# --- in-memory checks: RCPT of a submission ---------------------------------------------
durable off
for conns in 8 32; do
    [[ ,$PARTS, == *,rcpt,* ]] || break
    cfg mt "mailrosterd tcp ${conns}x1" "$MR_PID" 0 -t policy -m out -a "127.0.0.1:$P_MRD" -c "$conns" -p 1
    cfg mu "mailrosterd unix ${conns}x1" "$MR_PID" 0 -t policy -m out -a "unix:$STACK_DIR/mr/policy" -c "$conns" -p 1
    cfg ct "mini tcp ${conns}x1" "$MINI_PID" 0 -t policy -m out -a "127.0.0.1:$P_MINI" -c "$conns" -p 1
    cfg cu "mini unix ${conns}x1" "$MINI_PID" 0 -t policy -m out -a "unix:$STACK_DIR/mini.policy" -c "$conns" -p 1
    cfg rt "policyd-rate-limit (sqlite in memory) tcp ${conns}x1" "$PRLM_PID" 0 -t policy -m out -a "127.0.0.1:$P_PRLM" -c "$conns" -p 1
    CTRL=()
    if [ "$CONTROL" = 1 ]; then
        cfg dt "second mini tcp ${conns}x1" "$MINI2_PID" 0 -t policy -m out -a "127.0.0.1:$P_MINI2" -c "$conns" -p 1
        cfg du "second mini unix ${conns}x1" "$MINI2_PID" 0 -t policy -m out -a "unix:$STACK_DIR/mini2.policy" -c "$conns" -p 1
        CTRL=(dt du)
    fi
    runset mt mu ct cu rt "${CTRL[@]}"
    bench_row "RCPT checks, ${conns} conns, tcp" "${B_RPS[mt]}" "${B_RPS[ct]}" "$(ratio "${B_RPS[mt]}" "${B_RPS[ct]}")" \
        "$(rounds mt ct)" "${B_RPS[rt]}" "$(ratio "${B_RPS[mt]}" "${B_RPS[rt]}")" \
        "${B_CPU[mt]} / ${B_CPU[ct]} / ${B_CPU[rt]}" "${B_P99[mt]} / ${B_P99[ct]} / ${B_P99[rt]}" "${B_ERR[mt]}"
    bench_row "RCPT checks, ${conns} conns, unix" "${B_RPS[mu]}" "${B_RPS[cu]}" "$(ratio "${B_RPS[mu]}" "${B_RPS[cu]}")" \
        "$(rounds mu cu)" "-" "-" "${B_CPU[mu]} / ${B_CPU[cu]} / -" "${B_P99[mu]} / - / -" "-"
    if [ "$CONTROL" = 1 ]; then
        for t in t u; do
            bench_row "control: a second minimal server, ${conns} conns, $([ $t = t ] && echo tcp || echo unix)" \
                "${B_RPS[d$t]}" "${B_RPS[c$t]}" "$(ratio "${B_RPS[d$t]}" "${B_RPS[c$t]}")" "$(rounds "d$t" "c$t")" \
                "-" "-" "${B_CPU[d$t]} / ${B_CPU[c$t]} / -" "${B_P99[d$t]} / ${B_P99[c$t]} / -" "-"
        done
    fi
    if [ "$SIDE" = 1 ]; then
        side_rcpt mrd "$conns" tcp "127.0.0.1:$P_MRD" "$MR_PID" "127.0.0.1:$P_MINI"
        side_rcpt mrd "$conns" unix "unix:$STACK_DIR/mr/policy" "$MR_PID" "unix:$STACK_DIR/mini.policy"
        if [ "$CONTROL" = 1 ]; then
            side_rcpt control "$conns" tcp "127.0.0.1:$P_MINI2" "$MINI2_PID" "127.0.0.1:$P_MINI"
            side_rcpt control "$conns" unix "unix:$STACK_DIR/mini2.policy" "$MINI2_PID" "unix:$STACK_DIR/mini.policy"
        fi
    fi
done

# --- admissions: a whole message, counted in a database -----------------------------------
[ "$DURABLE" = 1 ] && durable on
for conns in 8 32; do
    [[ ,$PARTS, == *,msg,* ]] || break
    cfg mm "mailrosterd msg tcp ${conns}x1" "$MR_PID" 1 -t policy -m msg -a "127.0.0.1:$P_MRD" -c "$conns" -p 1
    cfg cm "mini msg tcp ${conns}x1" "$MINI_PID" 0 -t policy -m msg -a "127.0.0.1:$P_MINI" -c "$conns" -p 1
    cfg pm "policyd-rate-limit (PostgreSQL) msg tcp ${conns}x1" "$PRLP_PID" 1 -t policy -m msg -a "127.0.0.1:$P_PRLP" -c "$conns" -p 1
    cfg rm "policyd-rate-limit (sqlite in memory) msg tcp ${conns}x1" "$PRLM_PID" 0 -t policy -m msg -a "127.0.0.1:$P_PRLM" -c "$conns" -p 1
    runset mm cm pm rm
    bench_row "messages/s, PG counters, ${conns} conns" "$(half "${B_RPS[mm]}")" "$(half "${B_RPS[cm]}")" \
        "$(ratio "${B_RPS[mm]}" "${B_RPS[cm]}")" "$(rounds mm cm)" \
        "$(half "${B_RPS[pm]}") (pg) / $(half "${B_RPS[rm]}") (mem)" \
        "$(ratio "${B_RPS[mm]}" "${B_RPS[pm]}") / $(ratio "${B_RPS[mm]}" "${B_RPS[rm]}"); rounds vs pg: $(rounds mm pm)" \
        "${B_CPU[mm]} / ${B_CPU[cm]} / ${B_CPU[pm]}" "${B_P99[mm]} / ${B_P99[cm]} / ${B_P99[pm]}" "${B_ERR[mm]}"
done
# --- the database's own ceiling for these admissions --------------------------------------
# PostgreSQL alone, on the same core, running send_admit_many as
# mailrosterd's admission threads do (prepared, synchronous_commit off, 2
# connections) but with the batch filled by pgbench at once: no policy
# server, no SMTP client, no wait for a batch to fill. Admissions/s here
# bound what any server built on this function can admit on this core.
if [[ ,$PARTS, == *,ceiling,* ]]; then
    for b in 1 8 32; do
        {
            elems=""
            for i in $(seq "$b"); do
                echo "\\set a$i random(1, $N_ACCOUNTS)"
                elems="$elems${elems:+, }'u' || :a$i || '@example.com'"
            done
            ones=$(printf '1,%.0s' $(seq "$b")); ones=${ones%,}
            echo "SELECT count(*) FROM mailroster.send_admit_many(ARRAY[$elems], '{$ones}'::int[], NULL::text[], 2000);"
        } >"$STACK_DIR/admit_$b.sql"
        best=-1
        for r in $(seq 1 "$REPEAT"); do
            g0=$(pg_ticks)
            out=$(PGOPTIONS='-c synchronous_commit=off' taskset -c "$CLIENT_CPU" \
                pgbench -n -M prepared -c 2 -j 2 -T "$DURATION" -f "$STACK_DIR/admit_$b.sql" \
                "${MR_DB:-mailroster}" 2>&1) || { echo "pgbench failed: $out" >&2; exit 1; }
            # the backends' CPU reaches the postmaster's cutime once they have exited
            for _ in $(seq 40); do pgrep -f "postgres: postgres ${MR_DB:-mailroster} " >/dev/null || break; sleep 0.05; done
            g1=$(pg_ticks)
            tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
            aps=$(awk -v t="$tx" -v b="$b" -v d="$DURATION" 'BEGIN { printf "%.0f", t * b / d }')
            us=$(ticks_to_us_per $((g1 - g0)) $((tx * b)))
            bench_note "ceiling: send_admit_many batch $b, 2 connections, round $r: $aps admissions/s, PostgreSQL CPU $us µs each"
            if [ "$aps" -gt "$best" ]; then best=$aps; CEIL_US=$us; fi
        done
        bench_row "PostgreSQL alone, send_admit_many batch $b (pgbench, 2 conns)" "$best admissions/s" "-" "-" "-" "-" "-" \
            "- / - / - (PostgreSQL: $CEIL_US)" "-" "-"
    done
fi

durable off
ADMITTED=$(sql -c "SELECT count(*) FROM mailroster.send_counters")
bench_note "send_counters rows after the runs: $ADMITTED (pruned to the last hour: every admission of this run)"
DEFERS=$(grep -c "Sending limit reached" "$LOG")
bench_note "deferrals in mailrosterd's log: $DEFERS"

echo
echo "policy service: mailrosterd vs minimal parse-and-DUNNO server vs policyd-rate-limit"
echo "($N_ACCOUNTS accounts, 100 msgs/h each; ${DURATION}s runs, best of $REPEAT rounds, the servers in turns in each round; PostgreSQL durable=$DURABLE for the admissions;" \
    "client $([ -n "$SPIN" ] && echo busy-polling || echo "sleeping in epoll, as smtpd"))"
bench_table "shape" "mailrosterd" "minimal" "vs minimal" "each round: median, lowest" "policyd-rate-limit" "vs prl" "server CPU µs/req (mrd/min/prl)" "p99 µs (mrd/min/prl)" "mrd non-DUNNO"
if [ ${#SIDE_NOTES[@]} -gt 0 ]; then
    echo "side by side (one client loads both servers at once, as many connections to each, the same requests; median of $REPEAT runs):"
    for x in "${SIDE_NOTES[@]}"; do echo "$x"; done
fi
echo
bench_footer
