#!/usr/bin/env bash
# daemon_test.sh - mailrosterd against a private PostgreSQL, driven with
# Postfix's own client (postmap): every map over tcp_table and socketmap
# answers as the equivalent pgsql: map file does; changes arrive through
# NOTIFY and the change log; PostgreSQL outages, broken connections, the
# change-log ordering trap, restarts from the snapshot file, bad input,
# limits and reload.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
STACK_DIR=$(mktemp -d /tmp/mr-daemon.XXXXXX)
export STACK_DIR
STACK_PIDS=()
. "$TOP/scripts/lib/stack.sh"
. "$TOP/tests/integration/lib.sh"
. "$TOP/tests/integration/pgsql-maps.sh"
trap stack_cleanup EXIT
LOG=$STACK_DIR/mailrosterd.log

stack_pg_start || exit 1
mr_setup_db || exit 1
admin_sql -f "$TOP/tests/integration/fixture.sql" || exit 1
CONF=$STACK_DIR/mailroster.conf
mr_write_conf "$CONF" "poll_interval = 60s" "snapshot_interval = 1s" "idle_timeout = 3s" \
    "max_connections = 40"
pg_write_maps "$STACK_DIR" mrd

# --- configuration checks ---------------------------------------------------
out=$("$MRD" -n -c "$CONF" 2>&1)
check "mailrosterd -n accepts the test configuration" "$CONF: ok" "$out"
printf 'database = x\n\nno_such_parameter = 1\n' >"$STACK_DIR/bad.conf"
out=$("$MRD" -n -c "$STACK_DIR/bad.conf" 2>&1); rc=$?
check "unknown parameter: exit status 1" 1 "$rc"
case $out in *"bad.conf:3: unknown parameter 'no_such_parameter'"*) ok "unknown parameter named with file:line" ;;
    *) notok "unknown parameter message: $out" ;; esac
printf 'mail_base = var/vmail\n' >"$STACK_DIR/bad2.conf"
out=$("$MRD" -n -c "$STACK_DIR/bad2.conf" 2>&1); rc=$?
check "a relative mail_base: exit status 1" 1 "$rc"
case $out in *"mail_base must be an absolute path"*) ok "a relative mail_base is named" ;; *) notok "relative mail_base: $out" ;; esac
printf 'policy_listen = inet:192.0.2.1:10045\n' >"$STACK_DIR/bad3.conf"
out=$("$MRD" -f -c "$STACK_DIR/bad3.conf" 2>&1); rc=$?
check "a policy listener off loopback: exit status 1" 1 "$rc"
case $out in *"not a loopback address"*) ok "... and says why" ;; *) notok "policy off loopback: $out" ;; esac

# --- a database without the schema: refuse to start, say why ----------------
stack_pg_createdb empty >/dev/null
sed "s/dbname=$MR_DB user=mrd/dbname=empty user=postgres/; s|^snapshot_file = .*|snapshot_file =|" "$CONF" \
    | grep -v '^tcp_table\|^socketmap\|^ *inet:' >"$STACK_DIR/empty.conf"
out=$(timeout 20 "$MRD" -f -c "$STACK_DIR/empty.conf" 2>&1); rc=$?
check "no schema: mailrosterd exits 1" 1 "$rc"
case $out in *"is not usable"*"schema_version"*) ok "no schema: the error names the problem" ;;
    *) notok "no schema message: $out" ;; esac

mr_start "$CONF" "$LOG" || { notok "mailrosterd starts"; t_summary; exit 1; }
ok "mailrosterd starts and loads the directory"

# --- every map, both transports, against the pgsql map ----------------------
declare -A KEYS=(
    [domains]="example.com EXAMPLE.Com off.example xn--mnchen-3ya.de nowhere.org"
    [mailboxes]="alice@example.com Alice@Example.COM alice+tag@example.com BOB+x+y@example.com carol@example.com norecv@example.com dave@off.example hans@xn--mnchen-3ya.de nobody@example.com o'brien@example.com"
    [aliases]="info@example.com INFO+x@example.com fwd@example.com Fwd@Example.Com nobody@example.com nobody+x@example.com bob@example.com bob+x@example.com carol@example.com old@example.com y+z@xn--mnchen-3ya.de hans@xn--mnchen-3ya.de sales@off.example"
    [senders]="alice@example.com alice+x@example.com boss@example.com info@example.com random@example.com carol@example.com dave@off.example x@nowhere.org"
)
for map in domains mailboxes aliases senders; do
    for key in ${KEYS[$map]}; do
        want=$(pg_ref "$map" "$key")
        got=$(q_tcp "$map" "$key")
        [ "$map" = senders ] && [ "$got" != "(not found)" ] && got=$(echo "$got" | sort_list)
        check "tcp_table $map '$key' = pgsql map" "$want" "$got"
        got=$(q_smap "$map" "$key")
        [ "$map" = senders ] && [ "$got" != "(not found)" ] && got=$(echo "$got" | sort_list)
        check "socketmap $map '$key' = pgsql map" "$want" "$got"
    done
done
check "socketmap over loopback TCP" "example.com/alice.1/" "$(q_smap_inet mailboxes alice@example.com)"
# each thread named; what can wait yields its core to the event loop
threads=$(for t in /proc/"$MR_PID"/task/*; do
    st=$(cat "$t/stat" 2>/dev/null) || continue
    # stat: pid (comm) state ... field 19 is nice; comm may hold spaces
    set -- ${st##*) }
    echo "$(cat "$t/comm") ${17}"
done | sort)
check "the event loop thread runs at nice 0" "mailrosterd 0" "$(grep '^mailrosterd ' <<<"$threads")"
check "the directory's database thread is named and at nice 10" "mr-dir-db 10" "$(grep '^mr-dir-db ' <<<"$threads")"
check "every other thread is named mr-*" "" "$(grep -v '^mailrosterd \|^mr-' <<<"$threads")"
check "every named thread but the admission threads at nice 10" "" \
    "$(grep '^mr-' <<<"$threads" | grep -v '^mr-policy-db 0$' | grep -v ' 10$')"
# where the status quo fails and mailrosterd must not: U-label keys
check "pgsql map misses a U-label domain (status quo)" "(not found)" "$(pg_ref domains 'münchen.de')"
check "tcp_table finds a U-label domain as its A-label" "xn--mnchen-3ya.de" "$(q_tcp domains 'MÜNCHEN.de')"
check "socketmap finds a mailbox under a U-label domain" "$(pg_ref mailboxes hans@xn--mnchen-3ya.de)" \
    "$(q_smap mailboxes 'Hans@München.de')"
# an address with an apostrophe, found as typed
check "o'brien is found" "$(pg_ref mailboxes "o'brien@example.com")" "$(q_tcp mailboxes "O'Brien@example.com")"

# --- changes arrive through NOTIFY, fast -------------------------------------
lat=""
for i in 1 2 3 4 5; do
    t0=$(date +%s%N)
    admin_sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'new$i' FROM mailroster.domains WHERE name = 'example.com'"
    if wait_for "q_smap mailboxes new$i@example.com" "$(pgq mailboxes new$i@example.com)" 5; then
        lat="$lat $(( ($(date +%s%N) - t0) / 1000000 ))"
    else
        lat="$lat timeout"
    fi
done
case $lat in *timeout*) notok "new mailboxes answered (poll_interval 60 s: only NOTIFY can do it): ms$lat" ;;
    *) ok "new mailboxes answered via NOTIFY; ms from INSERT to answer (incl. postmap start):$lat" ;; esac
admin_sql -c "UPDATE mailroster.mailboxes SET enabled = false WHERE local_part = 'new1'"
check_cmd "a disabled mailbox disappears" wait_for "q_tcp mailboxes new1@example.com" "(not found)" 5
admin_sql -c "UPDATE mailroster.domains SET enabled = false WHERE name = 'xn--mnchen-3ya.de'"
check_cmd "a disabled domain disappears" wait_for "q_tcp domains xn--mnchen-3ya.de" "(not found)" 5
admin_sql -c "UPDATE mailroster.domains SET enabled = true WHERE name = 'xn--mnchen-3ya.de'"
admin_sql -c "DELETE FROM mailroster.mailboxes WHERE local_part = 'new2'"
check_cmd "a deleted mailbox disappears" wait_for "q_tcp mailboxes new2@example.com" "(not found)" 5
admin_sql -c "UPDATE mailroster.aliases SET destinations = ARRAY['bob@example.com'] WHERE local_part = 'info'"
check_cmd "an alias change arrives" wait_for "q_tcp aliases info@example.com" "bob@example.com" 5

# --- the change-log ordering trap ---------------------------------------------
# Writer A takes its change seq and stays open; writer B commits after it.
# Directory writers are serialised, so B waits for A; both must arrive.
mkfifo "$STACK_DIR/a.fifo"
psql -X -q -v ON_ERROR_STOP=1 -U mradm -d "$MR_DB" <"$STACK_DIR/a.fifo" >"$STACK_DIR/a.out" 2>&1 &
apid=$!
exec 7>"$STACK_DIR/a.fifo"
echo "BEGIN; INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'writer-a' FROM mailroster.domains WHERE name = 'example.com';" >&7
sleep 0.5
admin_sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'writer-b' FROM mailroster.domains WHERE name = 'example.com'" &
bpid=$!
sleep 0.5
waiting=$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%writer-b%'")
check "writer B waits for writer A's lock" 1 "$waiting"
echo "SELECT pg_sleep(0.3); COMMIT;" >&7
exec 7>&-
wait "$apid"; wait "$bpid"
check_cmd "writer A's change arrives" wait_for "q_tcp mailboxes writer-a@example.com" "$(pgq mailboxes writer-a@example.com)" 5
check_cmd "writer B's change arrives" wait_for "q_tcp mailboxes writer-b@example.com" "$(pgq mailboxes writer-b@example.com)" 5
seqs=$(sql -c "SELECT string_agg(c.seq::text, ' ' ORDER BY c.seq) FROM mailroster.change_log c JOIN mailroster.mailboxes m ON m.id = c.row_id AND c.tbl = 'mailboxes' WHERE m.local_part IN ('writer-a', 'writer-b')")
a_seq=$(sql -c "SELECT c.seq FROM mailroster.change_log c JOIN mailroster.mailboxes m ON m.id = c.row_id AND c.tbl = 'mailboxes' WHERE m.local_part = 'writer-a'")
b_seq=$(sql -c "SELECT c.seq FROM mailroster.change_log c JOIN mailroster.mailboxes m ON m.id = c.row_id AND c.tbl = 'mailboxes' WHERE m.local_part = 'writer-b'")
check_cmd "commit order equals seq order (A $a_seq < B $b_seq)" test "$a_seq" -lt "$b_seq"

# --- PostgreSQL down: answers from memory; changes after it returns ------------
want_b=$(pgq mailboxes writer-b@example.com) # what the database held before it stopped
stack_pg_stop
check "PostgreSQL down: tcp_table still answers (writer B's mailbox as the database held it)" \
    "${want_b:-(the pgsql map found nothing)}" "$(q_tcp mailboxes writer-b@example.com)"
check "PostgreSQL down: mailbox answered from memory" "example.com/alice.1/" "$(q_tcp mailboxes alice@example.com)"
check "PostgreSQL down: alias answered from memory" "bob@example.com" "$(q_smap aliases info@example.com)"
sleep 1
grep -q "database unavailable" "$LOG" && ok "the outage is logged" || notok "the outage is logged"
stack_pg_start_again
admin_sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'after-outage' FROM mailroster.domains WHERE name = 'example.com'"
check_cmd "a change made after PostgreSQL returns is picked up" \
    wait_for "q_tcp mailboxes after-outage@example.com" "$(pgq mailboxes after-outage@example.com)" 40

# --- the daemon's connection breaks; a change lands meanwhile -----------------
sql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mailrosterd'" >/dev/null
admin_sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'while-broken' FROM mailroster.domains WHERE name = 'example.com'"
check_cmd "a change made while the daemon's connection was broken is not lost" \
    wait_for "q_tcp mailboxes while-broken@example.com" "$(pgq mailboxes while-broken@example.com)" 40
# the server's last word before it closed the connection went through the
# daemon's logger (pqlog), not to stderr in libpq's own format
grep -q "^mailrosterd\[[0-9]*\]: warning: database: FATAL: terminating connection due to administrator command$" "$LOG" \
    && ok "libpq's FATAL is logged as a warning with the daemon's prefix" \
    || notok "libpq's FATAL is logged as a warning with the daemon's prefix: $(grep -i 'terminating connection' "$LOG" | head -2)"
check "every log line so far has the daemon's prefix" "" "$(grep -v '^mailrosterd\[[0-9]*\]: ' "$LOG" | head -3)"

# --- bad input over real sockets ---------------------------------------------------
exec 8<>/dev/tcp/127.0.0.1/"$MR_TCP_MAILBOXES"
printf 'bogus request\nget %%zz\nget alice@example.com\n' >&8
read -r l1 <&8; read -r l2 <&8; read -r l3 <&8
exec 8>&-
check "tcp_table: a malformed request gets 400" "400 malformed request" "$l1"
check "tcp_table: a bad escape gets 400" "400 malformed key" "$l2"
check "tcp_table: the connection stays usable" "200 example.com/alice.1/" "$l3"
grep -q "tcp_table mailboxes: malformed request" "$LOG" && ok "malformed request logged" || notok "malformed request logged"
# the client keeps its side open: only the daemon's idle timeout (3 s) ends it
reply=$(python3 - "$MR_SMAP_UNIX" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"5:abc")
t0 = time.monotonic(); s.settimeout(10); got = b""
try:
    while True:
        b = s.recv(100)
        if not b: break
        got += b
    print("closed after %.1f s%s" % (time.monotonic() - t0, ", answered " + repr(got) if got else ""))
except socket.timeout:
    print("still open after 10 s")
PY
)
case $reply in "closed after "[2-5].?" s") ok "socketmap: a cut netstring waits, then the idle timeout (3 s) closes it ($reply)" ;;
    *) notok "socketmap: a cut netstring waits, then the idle timeout (3 s) closes it: $reply" ;; esac
reply=$(printf 'zz:abc,' | timeout 5 socat -t 2 - "UNIX-CONNECT:$MR_SMAP_UNIX" 2>/dev/null)
check "socketmap: a malformed netstring gets PERM" "24:PERM malformed netstring," "$reply"
head -c 200000 /dev/zero | tr '\0' '9' | timeout 5 socat -t 2 - "UNIX-CONNECT:$MR_SMAP_UNIX" >"$STACK_DIR/long.out" 2>/dev/null
check "socketmap: an oversized request gets PERM" "21:PERM request too long," "$(cat "$STACK_DIR/long.out")"
check "the daemon is still alive and answering" "example.com" "$(q_smap domains example.com)"

# --- idle timeout and connection limit -------------------------------------------
exec 9<>/dev/tcp/127.0.0.1/"$MR_TCP_DOMAINS"
sleep 4.5
printf 'get example.com\n' >&9 2>/dev/null
line=""; read -r -t 2 line <&9 2>/dev/null
exec 9>&-
check "an idle connection is closed after idle_timeout" "" "$line"
python3 - "$MR_TCP_DOMAINS" >"$STACK_DIR/limit.out" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
conns = []
for i in range(60):
    s = socket.create_connection(("127.0.0.1", port)); conns.append(s)
time.sleep(0.3)
answered = 0
for s in conns:
    try:
        s.settimeout(2); s.sendall(b"get example.com\n")
        if s.recv(100).startswith(b"200 "): answered += 1
    except OSError: pass
print(answered)
PY
check "max_connections = 40: 40 of 60 connections answered" 40 "$(cat "$STACK_DIR/limit.out")"
grep -q "max_connections (40) reached" "$LOG" && ok "the connection limit is logged" || notok "the connection limit is logged"

# --- SIGHUP re-reads the configuration --------------------------------------------
echo "recipient_delimiter = -" >>"$CONF"
kill -HUP "$MR_PID"
check_cmd "SIGHUP: the new recipient_delimiter applies" wait_for "q_tcp mailboxes alice-tag@example.com" "example.com/alice.1/" 5
grep -q "reloaded $CONF" "$LOG" && ok "reload logged" || notok "reload logged"

# --- restart while PostgreSQL is down: the snapshot file --------------------------
sleep 1.5 # let a snapshot write happen after the last change
mr_stop
grep -q "stopped" "$LOG" && ok "SIGTERM stops cleanly" || notok "SIGTERM stops cleanly"
check "snapshot file mode 0600" 600 "$(stat -c %a "$MR_SNAPSHOT")"
check_cmd "the unix socket is removed at stop" test ! -e "$MR_SMAP_UNIX"
want_wb=$(pgq mailboxes while-broken@example.com)
stack_pg_stop
mr_start "$CONF" "$LOG" || notok "restart with PostgreSQL down"
grep -q "starting from snapshot file $MR_SNAPSHOT" "$LOG" && ok "restart with PostgreSQL down: says it starts from the snapshot" \
    || notok "restart with PostgreSQL down: says it starts from the snapshot"
check "restart with PostgreSQL down: answers from the snapshot" "example.com/alice.1/" "$(q_tcp mailboxes alice@example.com)"
check "restart with PostgreSQL down: the last change is there" \
    "${want_wb:-(the pgsql map found nothing)}" "$(q_tcp mailboxes while-broken@example.com)"
stack_pg_start_again
admin_sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'after-restart' FROM mailroster.domains WHERE name = 'example.com'"
check_cmd "after a start from the snapshot, changes are caught up" \
    wait_for "q_tcp mailboxes after-restart@example.com" "$(pgq mailboxes after-restart@example.com)" 40
mr_stop
check "no sanitizer report (after the stop: leaks too)" "" \
    "$(grep -E 'runtime error|AddressSanitizer|LeakSanitizer' "$LOG" | head -3)"

t_summary
