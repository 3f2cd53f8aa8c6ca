#!/usr/bin/env bash
# provision.sh - provisioning rate through the admin socket: "user add"
# with ready hashes (accounts/s, one and four connections), the time to
# import 100,000 accounts with "mailroster import", and socketmap lookup
# latency while that import runs, against the same lookups before it.
# Sizes: ADDS=5000 IMPORT=100000. Prints figures; asserts nothing.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TOP/tests/bench/benchlib.sh"
bench_init provision
ADDS=${ADDS:-5000}
IMPORT=${IMPORT:-100000}
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

bench_note "writing $IMPORT accounts as JSON lines"
python3 - "$IMPORT" "$HASH" >"$STACK_DIR/import.jsonl" <<'PY'
import json, sys
n, h = int(sys.argv[1]), sys.argv[2]
print(json.dumps({"kind":"domain","name":"import.example","enabled":True,"disabled_reason":None,"quota_bytes":0,"quota_messages":0,"send_limit_messages":0,"send_limit_recipients":0,"send_limit_window":3600}, separators=(",",":")))
for i in range(n):
    print(json.dumps({"kind":"mailbox","address":"m%06d@import.example" % i,"password":h,"enabled":True,"disabled_reason":None,"may_send":True,"may_receive":True,"services":["imap","pop3","submission","lmtp","sieve"],"quota_bytes":None,"quota_messages":None,"send_limit_messages":None,"send_limit_recipients":None,"home":None,"mail":None,"uid":None,"gid":None,"maildir":None}, separators=(",",":")))
PY
bench_note "lookup latency, idle (10 s)"
read -r b50 b99 bmax bn < <(python3 "$PROBE" lookups "$MR_SMAP_UNIX" probe@bench.example 10)
bench_note "import of $IMPORT accounts, lookups beside it"
python3 "$PROBE" lookups "$MR_SMAP_UNIX" probe@bench.example 3600 "$STACK_DIR/stop" >"$STACK_DIR/during.out" &
lpid=$!
t0=$(now_us)
"$CLI" import "$STACK_DIR/import.jsonl" >/dev/null 2>"$STACK_DIR/import.err"; irc=$?
t1=$(now_us)
# the daemon has the accounts when the last one answers
last=m$(printf %06d $((IMPORT - 1)))@import.example
until postmap -q "$last" "socketmap:unix:$MR_SMAP_UNIX:mailboxes" >/dev/null; do sleep 0.05; done
t2=$(now_us)
touch "$STACK_DIR/stop"
wait "$lpid"
read -r d50 d99 dmax dn <"$STACK_DIR/during.out"

echo
echo "provisioning through the admin socket ($(nproc) cores)"
printf '%-52s %s\n' "user add, ready hash, 1 connection" "$r1 accounts/s ($n1 in $s1 s, $e1 errors)"
printf '%-52s %s\n' "user add, ready hash, 4 connections" "$r4 accounts/s ($n4 in $s4 s, $e4 errors)"
printf '%-52s %s\n' "import $IMPORT accounts (one transaction), exit $irc" "$(( (t1 - t0) / 1000 )) ms; in the daemon's memory after $(( (t2 - t0) / 1000 )) ms"
printf '%-52s %s\n' "lookup latency idle: p50 / p99 / max (ms)" "$b50 / $b99 / $bmax ($bn lookups)"
printf '%-52s %s\n' "lookup latency during an import: p50 / p99 / max" "$d50 / $d99 / $dmax ($dn lookups)"
cat "$STACK_DIR/import.err" >&2
