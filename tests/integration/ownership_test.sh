#!/usr/bin/env bash
# ownership_test.sh - who answers an END-OF-MESSAGE admission whose
# statement ends after the admission's deadline (policy_db_timeout) but
# within statement_timeout (pol_db.h: who answers a job). The database
# thread took the job, so the thread answers, with what PostgreSQL
# decided: the message it counted in send_counters is admitted (DUNNO),
# never "try again" (451) while counted.
#
# One database thread (policy_db_connections = 1), policy_db_timeout = T.
#  1. Another session holds a's mailbox row; a's admission (job A) waits
#     for it on the thread (seen in pg_stat_activity).
#  2. b's admission (job B) is queued behind it (seen in the daemon's
#     stats: admissions = 2; counted just before the job is queued, in
#     the same callback). Now is Q: B's deadline is at most Q + T.
#  3. The other session lets go M1 + M2 after Q (pg_sleep): A is decided,
#     then the thread takes B. A trigger on send_counters (b's rows only)
#     sleeps until Q + T + M1: B's statement ends M1 after B's deadline
#     at the latest, and M2 before its statement_timeout (it started after
#     the release, at Q + M1 + M2 or later).
# The order is checked afterwards from PostgreSQL's clock (the trigger and
# the other session write clock_timestamp() into a side table); an order
# that did not happen is a failure with the times, not a pass. Nothing
# here depends on how fast the machine is: the steps before the release
# have T - 0.2 - M1 - M2 s to happen in (the lock wait's budget less the
# margins; 7.8 s with T = 10), and they start no program: the clients,
# the admin connection and the other session are open before A is sent.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
. "$TOP/tests/integration/begin.sh" mr-ownership mrstack

T=10    # policy_db_timeout, s
M1=1    # B's statement ends this long after its deadline at the latest
M2=1    # ... and this long before its statement_timeout at the earliest
DUNNO="action=DUNNO"
DEFER="action=451 4.3.0 Sending limits cannot be checked right now; try again later"

POL_PORT=$(stack_free_port)
MRS_CONF_EXTRA="policy_listen = inet:127.0.0.1:$POL_PORT
policy_db_connections = 1
policy_db_timeout = ${T}s
policy_db_unavailable_action = defer"
mrs_db && mrs_daemon || { notok "database and mailrosterd start"; t_summary; exit 1; }
MRD_PID=${STACK_PIDS[-1]}

mrs_cli domain add own.test >/dev/null || notok "domain add"
for u in a b; do
    mrs_cli user add "$u@own.test" send_limit_messages=100 >/dev/null || notok "user add $u"
done

# the side table and the trigger (superuser; b's rows only)
sql <<SQL || notok "trigger set up"
CREATE TABLE public.own_events (ev text PRIMARY KEY, at timestamptz NOT NULL);
CREATE FUNCTION public.own_slow_b() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public AS \$\$
DECLARE
    v_until timestamptz;
BEGIN
    INSERT INTO own_events VALUES ('trigger_start', clock_timestamp());
    SELECT at INTO v_until FROM own_events WHERE ev = 'sleep_until';
    PERFORM pg_sleep(greatest(extract(epoch FROM v_until - clock_timestamp()), 0));
    INSERT INTO own_events VALUES ('trigger_end', clock_timestamp());
    RETURN NEW;
END
\$\$;
CREATE TRIGGER send_counters_99_slow_b BEFORE INSERT ON mailroster.send_counters
    FOR EACH ROW WHEN (NEW.username = 'b@own.test') EXECUTE FUNCTION public.own_slow_b();
SQL

# (values as psql variables, read from stdin: -c would not expand them)
rows() {
    echo "SELECT count(*) FROM mailroster.send_counters WHERE username = :'login';" | sql -v login="$1" -f -
}
# seconds from event $1 to event $2 (PostgreSQL's clock), or "none"
span() {
    echo "SELECT coalesce(round(extract(epoch FROM (SELECT at FROM own_events WHERE ev = :'b')
                                               - (SELECT at FROM own_events WHERE ev = :'a'))::numeric, 3)::text,
                          'none');" | sql -v a="$1" -v b="$2" -f -
}
# The clients: one connection per login, opened before anything starts
# (a process's start-up is not in the timed part); a login read from the
# FIFO sends that login's END-OF-MESSAGE request, and LOGIN.out gets the
# answer and the wall-clock time it came (PostgreSQL's clock on this host).
cat >"$STACK_DIR/clients.py" <<'PY'
import socket, sys, threading, time
port, out = int(sys.argv[1]), sys.argv[2]
logins = ("a@own.test", "b@own.test")
conns = {l: socket.create_connection(("127.0.0.1", port), timeout=120) for l in logins}
def answer(login, s):
    got = b""
    while not got.endswith(b"\n\n"):
        b = s.recv(4096)
        if not b:
            break
        got += b
    with open("%s/%s.out" % (out, login), "w") as f:
        f.write("%s\n%.6f\n" % (got.decode().strip(), time.time()))
print("ready", flush=True)
threads = []
for line in sys.stdin:
    login = line.strip()
    conns[login].sendall(("request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nprotocol_name=ESMTP\n"
                          "client_address=127.0.0.1\nsender=%s\nrecipient=\nrecipient_count=1\n"
                          "queue_id=OWN%s\nsize=300\nsasl_method=PLAIN\nsasl_username=%s\n\n"
                          % (login, login[0].upper(), login)).encode())
    threads.append(threading.Thread(target=answer, args=(login, conns[login])))
    threads[-1].start()
for t in threads:
    t.join()
PY
mkfifo "$STACK_DIR/clients.in"
python3 "$STACK_DIR/clients.py" "$POL_PORT" "$STACK_DIR" <"$STACK_DIR/clients.in" >"$STACK_DIR/clients.log" 2>&1 &
cl_pid=$!
STACK_PIDS+=("$cl_pid")
exec {CL}>"$STACK_DIR/clients.in"
wait_for "cat '$STACK_DIR/clients.log'" ready 60 || notok "clients connected: $(cat "$STACK_DIR/clients.log")"

# The admin socket on one connection (socat between two FIFOs): the
# stats are asked for without starting a process each time.
mkfifo "$STACK_DIR/adm.in" "$STACK_DIR/adm.out"
socat -t 60 - "UNIX-CONNECT:$MRS_ADMIN" <"$STACK_DIR/adm.in" >"$STACK_DIR/adm.out" 2>/dev/null &
STACK_PIDS+=("$!")
exec {AW}>"$STACK_DIR/adm.in" {AR}<"$STACK_DIR/adm.out"
# the daemon's count of admissions submitted (counted just before the job
# is queued, in the same callback)
admissions() {
    local line n=
    printf 'stats\n' >&"$AW"
    while read -r -t 20 line <&"$AR"; do
        case $line in
            "* service=policy "*) n=${line##* admissions=}; n=${n%% *} ;;
            OK*|ERR*) break ;;
        esac
    done
    echo "$n"
}

# 1. a's row held by another session; A waits for it on the thread. The
# session itself watches for that (pg_stat_activity, its snapshot cleared
# each time: it is inside a transaction), and later lets go: the steps
# until the release start no program.
lock_mailbox_row a own.test
check "another session holds a's mailbox row" "locked" "$LK_LINE"
# lk_read: the session's next "waits N" line into $line (others, such as
# the empty result of pg_stat_clear_snapshot(), are passed over; an error
# is kept for the message)
lk_read() {
    local l other=
    line=
    while read -r -t 60 l <&"${LK[0]}"; do
        case $l in
            "waits "*) line=$l; return 0 ;;
            ?*) other=$l ;;
        esac
    done
    line=${other:-no answer}
    return 1
}
WAITS="SELECT count(*) FROM pg_stat_activity
        WHERE application_name = 'mailrosterd-policy' AND wait_event_type = 'Lock'"
echo a@own.test >&"$CL"
echo "DO \$\$ BEGIN
    FOR i IN 1 .. 2000 LOOP
        PERFORM pg_stat_clear_snapshot();
        EXIT WHEN ($WAITS) > 0;
        PERFORM pg_sleep(0.01);
    END LOOP;
END \$\$;
SELECT pg_stat_clear_snapshot(); SELECT 'waits ' || ($WAITS);" >&"${LK[1]}"
lk_read
reached=1
if [ "${line:-}" = "waits 1" ]; then
    ok "job A runs on the thread, waiting for a's row"
else
    notok "order not reached: job A never waited for a's row on the thread ($line)"
    reached=0
fi

# 2. B queued behind A: the stats count it, the thread still waits for A;
# then, M1 + M2 after that, the other session lets go
echo b@own.test >&"$CL"
if wait_for admissions 2 20; then
    echo "SELECT pg_stat_clear_snapshot();
        INSERT INTO own_events VALUES ('b_queued', clock_timestamp()),
                                      ('sleep_until', clock_timestamp() + interval '$((T + M1)) s');
        SELECT 'waits ' || ($WAITS);" >&"${LK[1]}"
    lk_read
    if [ "${line:-}" = "waits 1" ]; then
        ok "job B queued while the thread still waits for A"
    else
        notok "order not reached: the thread no longer waited for A when B was queued ($line)"
        reached=0
    fi
else
    notok "order not reached: job B was not submitted (admissions: $(admissions))"
    reached=0
fi
echo "SELECT pg_sleep($((M1 + M2))); INSERT INTO own_events VALUES ('released', clock_timestamp()); COMMIT;" >&"${LK[1]}"
exec {LK[1]}>&-
wait "$lk_pid" 2>/dev/null
exec {CL}>&- {AW}>&- {AR}<&-
wait "$cl_pid" 2>/dev/null
# what the database decided is final once the thread's statement is over
# (an answer may have come before it, which is what this test is about)
busy() {
    sql -c "SELECT count(*) FROM pg_stat_activity
             WHERE application_name = 'mailrosterd-policy' AND state <> 'idle'"
}
wait_for busy 0 $((2 * T)) || notok "the policy connection's statement did not end within $((2 * T)) s"
{ read -r ans_a; read -r _; } <"$STACK_DIR/a@own.test.out" 2>/dev/null
{ read -r ans_b; read -r at_b; } <"$STACK_DIR/b@own.test.out" 2>/dev/null
rows_a=$(rows a@own.test)
rows_b=$(rows b@own.test)

# The order, on PostgreSQL's clock: B queued at Q (its deadline <= Q + T),
# released at R >= Q + M1 + M2; B's statement (after R) ran the trigger
# from S to E.
q_r=$(span b_queued released)
r_s=$(span released trigger_start)
q_e=$(span b_queued trigger_end)
r_e=$(span released trigger_end)
times="Q->R $q_r s, R->S $r_s s, Q->E $q_e s (deadline <= Q+$T), R->E $r_e s (statement_timeout >= R+$T)"
if [ "$reached" = 1 ] && [ "$q_r" != none ] && [ "$r_s" != none ] && [ "$q_e" != none ] &&
    awk -v qe="$q_e" -v re="$r_e" -v rs="$r_s" -v t="$T" 'BEGIN { exit !(rs >= 0 && qe > t && re < t) }'; then
    ok "order reached: B's statement began after the release and ended after B's deadline, within statement_timeout ($times)"
else
    notok "order not reached: $times; answers A [${ans_a:-none}] B [${ans_b:-none}], rows a=$rows_a b=$rows_b"
    grep -E 'policy|admission' "$MRS_LOG" | tail -n 10 | sed 's/^/# /'
fi

# What each client was told matches what the database counted.
consistent() { # ANSWER ROWS
    { [ "$1" = "$DUNNO" ] && [ "$2" = 1 ]; } || { [ "$1" = "$DEFER" ] && [ "$2" = 0 ]; }
}
check_cmd "A: answer [${ans_a:-none}] matches send_counters ($rows_a row)" consistent "${ans_a:-}" "$rows_a"
check_cmd "B: answer [${ans_b:-none}] matches send_counters ($rows_b row)" consistent "${ans_b:-}" "$rows_b"
# ... and it is the thread's answer: B was taken, so it was admitted
check "A admitted (its lock wait outlasted the hold)" "$DUNNO|1" "${ans_a:-}|$rows_a"
check "B admitted by the thread that took it, after its deadline" "$DUNNO|1" "${ans_b:-}|$rows_b"
# B's client had its answer only after the statement ended (same clock)
e_epoch=$(sql -c "SELECT extract(epoch FROM at) FROM own_events WHERE ev = 'trigger_end'")
if [ -n "${at_b:-}" ] && [ -n "$e_epoch" ] && awk -v a="$at_b" -v e="$e_epoch" 'BEGIN { exit !(a >= e) }'; then
    ok "B answered after its statement ended"
else
    notok "B answered after its statement ended: answer at ${at_b:-none}, statement end ${e_epoch:-none}"
fi
if grep -q 'policy: admission login=b@own.test: no answer from the database' "$MRS_LOG"; then
    notok "the loop's timer did not answer B (it did: $(grep 'login=b@own.test: no answer' "$MRS_LOG" | head -1))"
else
    ok "the loop's timer did not answer B"
fi

# stop the daemon first, so that what a sanitizer says at exit is in the log
kill -TERM "$MRD_PID" 2>/dev/null
wait "$MRD_PID" 2>/dev/null
check "mailrosterd stopped cleanly" "stopped" "$(tail -n 1 "$MRS_LOG" | grep -o 'stopped$')"
check "no sanitizer report (after the stop: leaks too)" "" \
    "$(grep -E 'runtime error|AddressSanitizer|LeakSanitizer' "$MRS_LOG" | head -3)"
t_summary
