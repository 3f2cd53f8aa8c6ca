#!/usr/bin/env bash
# provision.sh - provisioning rate through the admin socket: "user add"
# with ready hashes (accounts/s, one and four connections), the time to
# import 100,000 accounts with "mailroster import", and socketmap lookup
# latency while that import runs, against the same lookups before it.
# Sizes: ADDS=5000 IMPORT=100000 IMPORT_ALIASES=0 (aliases to the first
# mailboxes, after them in the file). Prints figures; asserts nothing.
# BEFORE_SQL=DIR (an older tree's sql/ directory) runs the import first
# into a fresh database made from DIR, then from this tree's sql/, in the
# same run; each import also reports the CPU seconds its PostgreSQL
# backend used (steadier than wall time on a busy machine) and the load.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TOP/tests/bench/benchlib.sh"
bench_init provision
ADDS=${ADDS:-5000}
IMPORT=${IMPORT:-100000}
IMPORT_ALIASES=${IMPORT_ALIASES:-0}
CLI=$(dirname "$BENCH_MRD_ORIG")/mailroster
PROBE=$TOP/tests/bench/provision_probe.py

stack_pg_start >/dev/null || exit 1
mr_setup_db || exit 1
ADM=$STACK_DIR/mr/admin
mr_write_conf "$STACK_DIR/c.conf" "admin_socket = $ADM" \
    "admin_database = host=$PGHOST port=$PGPORT dbname=$MR_DB user=mradm"
mr_start "$STACK_DIR/c.conf" "$LOG" || exit 1
export MAILROSTER_SOCKET=$ADM
"$CLI" domain add bench.example >/dev/null
"$CLI" domain add import.example >/dev/null
echo pw | "$CLI" user add probe@bench.example --password-stdin >/dev/null
HASH=$(doveadm pw -s SHA512-CRYPT -p bench)

bench_note "user add x $ADDS, one connection"
read -r n1 s1 r1 e1 < <(python3 "$PROBE" adds "$ADM" "$ADDS" 1 "$HASH")
sql -c "DELETE FROM mailroster.mailboxes m USING mailroster.domains d WHERE d.id = m.domain_id AND d.name = 'bench.example' AND m.local_part LIKE 'u%'" >/dev/null
sleep 1
bench_note "user add x $ADDS, four connections"
read -r n4 s4 r4 e4 < <(python3 "$PROBE" adds "$ADM" "$ADDS" 4 "$HASH")

bench_note "writing $IMPORT accounts and $IMPORT_ALIASES aliases as JSON lines"
python3 - "$IMPORT" "$HASH" "$IMPORT_ALIASES" >"$STACK_DIR/import.jsonl" <<'PY'
import json, sys
n, h, na = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
print(json.dumps({"kind":"domain","name":"import.example","enabled":True,"disabled_reason":None,"quota_bytes":0,"quota_messages":0,"send_limit_messages":0,"send_limit_recipients":0,"send_limit_window":3600}, separators=(",",":")))
for i in range(n):
    print(json.dumps({"kind":"mailbox","address":"m%06d@import.example" % i,"password":h,"enabled":True,"disabled_reason":None,"may_send":True,"may_receive":True,"services":["imap","pop3","submission","lmtp","sieve"],"quota_bytes":None,"quota_messages":None,"send_limit_messages":None,"send_limit_recipients":None,"home":None,"mail":None,"uid":None,"gid":None,"maildir":None}, separators=(",",":")))
for i in range(na):
    print(json.dumps({"kind":"alias","source":"a%06d@import.example" % i,"destinations":["m%06d@import.example" % (i % n)],"enabled":True}, separators=(",",":")))
PY
# CPU ticks used so far by the admin role's backends (the daemon's
# admin connection runs the import)
admin_ticks() {
    local p t=0
    for p in $(sql -c "SELECT pid FROM pg_stat_activity WHERE usename = 'mradm'"); do
        t=$(( t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0) ))
    done
    echo "$t"
}
# cli_ticks VAR: CPU ticks of this shell's finished children (the CLI)
# into VAR (times must run in this shell, not in a subshell)
cli_ticks() {
    times >"$STACK_DIR/times"
    printf -v "$1" %s "$(awk -v hz="$CLK_TCK" 'function sec(x) { split(x, a, /[ms]/); return a[1] * 60 + a[2] }
        NR == 2 { printf "%d", (sec($1) + sec($2)) * hz + 0.5 }' "$STACK_DIR/times")"
}
# import_run LABEL: the import into the current database, lookups beside it
IMP_LINES=()
import_run() {
    bench_note "lookup latency, idle (10 s) [$1]"
    read -r b50 b99 bmax bn < <(python3 "$PROBE" lookups "$MR_SMAP_UNIX" probe@bench.example 10)
    bench_note "import of $IMPORT accounts, lookups beside it [$1]"
    rm -f "$STACK_DIR/stop"
    python3 "$PROBE" lookups "$MR_SMAP_UNIX" probe@bench.example 3600 "$STACK_DIR/stop" >"$STACK_DIR/during.out" &
    lpid=$!
    c0=$(admin_ticks)
    m0=$(proc_ticks "$MR_PID")
    cli_ticks k0
    t0=$(now_us)
    "$CLI" import "$STACK_DIR/import.jsonl" >/dev/null 2>"$STACK_DIR/import.err"; irc=$?
    t1=$(now_us)
    c1=$(admin_ticks)
    m1=$(proc_ticks "$MR_PID")
    cli_ticks k1
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    # the daemon has the accounts when the last one answers
    last=m$(printf %06d $((IMPORT - 1)))@import.example
    until postmap -q "$last" "socketmap:unix:$MR_SMAP_UNIX:mailboxes" >/dev/null; do sleep 0.05; done
    t2=$(now_us)
    touch "$STACK_DIR/stop"
    wait "$lpid"
    read -r d50 d99 dmax dn <"$STACK_DIR/during.out"
    cat "$STACK_DIR/import.err" >&2
    local ms=$(( (t1 - t0) / 1000 )) cpu=$(( (c1 - c0) * 10 ))
    IMP_LINES+=("$(printf '%-52s %s' "[$1] import $IMPORT accounts + $IMPORT_ALIASES aliases (one transaction), exit $irc" \
        "$ms ms = $(( (IMPORT + IMPORT_ALIASES) * 1000 / (ms > 0 ? ms : 1) )) rows/s; backend CPU $cpu ms = $(( (IMPORT + IMPORT_ALIASES) * 1000 / (cpu > 0 ? cpu : 1) )) rows/s; in the daemon's memory after $(( (t2 - t0) / 1000 )) ms; mailrosterd CPU $(( (m1 - m0) * 1000 / CLK_TCK )) ms, CLI CPU $(( (k1 - k0) * 1000 / CLK_TCK )) ms; load $load")")
    IMP_LINES+=("$(printf '%-52s %s' "[$1] lookup latency idle: p50 / p99 / max (ms)" "$b50 / $b99 / $bmax ($bn lookups)")")
    IMP_LINES+=("$(printf '%-52s %s' "[$1] lookup latency during the import: p50 / p99 / max" "$d50 / $d99 / $dmax ($dn lookups)")")
}
# fresh_db SQLDIR: the database again, from SQLDIR, with the bench's own rows
fresh_db() {
    mr_stop
    sql -d postgres -c "DROP DATABASE $MR_DB" -c "CREATE DATABASE $MR_DB" >/dev/null
    sql -f "$1/schema.sql" >/dev/null && sql -f "$1/roles.sql" >/dev/null || exit 1
    mr_start "$STACK_DIR/c.conf" "$LOG" || exit 1
    "$CLI" domain add bench.example >/dev/null
    "$CLI" domain add import.example >/dev/null
    echo pw | "$CLI" user add probe@bench.example --password-stdin >/dev/null
}
if [ -n "${BEFORE_SQL:-}" ]; then
    fresh_db "$BEFORE_SQL"
    import_run before
    fresh_db "$TOP/sql"
    import_run after
else
    import_run this
fi

echo
echo "provisioning through the admin socket ($(nproc) cores)"
printf '%-52s %s\n' "user add, ready hash, 1 connection" "$r1 accounts/s ($n1 in $s1 s, $e1 errors)"
printf '%-52s %s\n' "user add, ready hash, 4 connections" "$r4 accounts/s ($n4 in $s4 s, $e4 errors)"
printf '%s\n' "${IMP_LINES[@]}"
