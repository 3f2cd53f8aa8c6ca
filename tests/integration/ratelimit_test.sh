#!/usr/bin/env bash
# ratelimit_test.sh - outbound rate limits (issue 12), decided in PostgreSQL
# by mailroster.send_admit at END-OF-MESSAGE, through a real private Postfix
# with Dovecot SASL (the roster passdb, set up as policy_test.sh does), plus the raw policy
# protocol for what Postfix cannot drive precisely: window edges, two
# daemons on one database hammered concurrently, a slow database.
#
# Postfix uses the per-check form of conf.d/postfix (timeout=10s,
# default_action=DUNNO). The expected replies are written here from
# mailrosterd(8) RATE LIMITS and mailroster.conf(5); Postfix puts "<rcpt>: Recipient address rejected: " (RCPT)
# or "<END-OF-MESSAGE>: End-of-data rejected: " in front.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
. "$TOP/tests/integration/begin.sh" mr-ratelimit mrstack

POL_PORT=$(stack_free_port)
MRS_CONF_EXTRA="policy_listen = inet:127.0.0.1:$POL_PORT
policy_db_timeout = 2s
policy_db_unavailable_action = defer"
MRS_DOVECOT_EXTRA="service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}"
mrs_db && mrs_daemon || { notok "database and mailrosterd start"; t_summary; exit 1; }
MRD_PID=${STACK_PIDS[-1]}
mrs_mail "recipient_delimiter = +
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $STACK_DIR/dovecot/run/auth-postfix
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_policy_service_try_limit = 1
message_size_limit = 100000
smtpd_recipient_restrictions = check_policy_service { inet:127.0.0.1:$POL_PORT, timeout=10s, default_action=DUNNO },
    check_recipient_access inline:{ refused@example.test=REJECT }
smtpd_end_of_data_restrictions = check_policy_service { inet:127.0.0.1:$POL_PORT, timeout=10s, default_action=DUNNO }" \
    || { notok "Dovecot and Postfix start"; t_summary; exit 1; }

# Limits: the domain's window is 1 h; alice 3 messages, bob 10 messages and
# 100 recipients, erin 5 messages (two-daemon race), frank and grace 100
# messages; dave has a send_limits row of his own (2 messages per 3 s).
mrs_cli domain add example.test send_limit_window=1h >/dev/null
for u in alice bob dave erin frank grace hank; do
    echo "pw-$u" | mrs_cli user add "$u@example.test" --password-stdin --scheme sha512 >/dev/null || notok "user add $u"
done
mrs_cli user set alice@example.test send_limit_messages=3 >/dev/null
mrs_cli user set bob@example.test send_limit_messages=10 send_limit_recipients=100 >/dev/null
mrs_cli user set erin@example.test send_limit_messages=5 >/dev/null
mrs_cli user set frank@example.test send_limit_messages=100 >/dev/null
mrs_cli user set grace@example.test send_limit_messages=100 >/dev/null
mrs_cli user set hank@example.test send_limit_messages=100 >/dev/null
sql -c "INSERT INTO mailroster.send_limits (scope, mailbox_id, window_seconds, messages)
        SELECT 'mailbox', m.id, 3, 2 FROM mailroster.mailboxes m WHERE m.local_part = 'dave'"

# send FROM LOGIN TO...: 250 when queued, else the first refusal (code and text)
send() {
    local from=$1 login=$2 out to
    shift 2
    to=$(IFS=,; echo "$*")
    out=$(swaks --server "127.0.0.1:$STACK_SMTP_PORT" --from "$from" --to "$to" \
        --auth PLAIN --auth-user "$login" --auth-password "pw-${login%@*}" \
        --h-Subject "rate test" --body "test" --timeout 30 2>&1)
    if echo "$out" | grep -q "queued as"; then echo 250; return; fi
    echo "$out" | grep -E '^<\** +[45][0-9]{2} ' | grep -v 'Authentication' | head -1 | sed -E 's/^<\** +//'
}
# rows LOGIN: "messages|recipients" in the log, read by SQL
rows() { sql -c "SELECT count(*) || '|' || coalesce(sum(recipients), 0) FROM mailroster.send_counters WHERE username = '$1'"; }
# strip the variable end "; try again in N s (at HH:MM:SS UTC)"
stem() { sed -E 's/; try again in [0-9]+ s \(at [0-9]{2}:[0-9]{2}:[0-9]{2} UTC\)$/; try again in N s (at T)/'; }

# --- N per window: N accepted, N+1 deferred ----------------------------------------------
check "alice: message 1 of 3" 250 "$(send alice@example.test alice@example.test bob@example.test)"
check "alice: message 2 of 3" 250 "$(send alice@example.test alice@example.test bob@example.test)"
check "alice: message 3 of 3" 250 "$(send alice@example.test alice@example.test bob@example.test)"
check "alice: 3 log rows" "3|3" "$(rows alice@example.test)"
# the third admission left the account full: RCPT refuses the fourth at once
check "alice: message 4 deferred at RCPT (known full)" \
    "450 4.7.1 <bob@example.test>: Recipient address rejected: Sending limit reached for <alice@example.test>: 3 messages per 1h; try again in N s (at T)" \
    "$(send alice@example.test alice@example.test bob@example.test | stem)"
check "alice: still 3 log rows" "3|3" "$(rows alice@example.test)"
out=$(send alice@example.test alice@example.test bob@example.test)
secs=$(echo "$out" | sed -nE 's/.*try again in ([0-9]+) s.*/\1/p')
if [ -n "$secs" ] && [ "$secs" -gt 3500 ] && [ "$secs" -le 3600 ]; then ok "alice: frees up in about an hour ($secs s)"; else notok "alice: frees up in about an hour: $out"; fi

# --- one message, 16 recipients: 1 message and 16 recipients --------------------------------
to16=(); for i in $(seq 1 16); do to16+=("alice+r$i@example.test"); done
check "bob: one message to 16 recipients" 250 "$(send bob@example.test bob@example.test "${to16[@]}")"
check "bob: counted 1 message, 16 recipients" "1|16" "$(rows bob@example.test)"
# --- 200 recipients under a 100-recipient limit: refused, counters unchanged ----------------
to200=(); for i in $(seq 1 200); do to200+=("alice+s$i@example.test"); done
check "bob: 200 recipients refused at END-OF-MESSAGE" \
    "554 5.5.3 <END-OF-MESSAGE>: End-of-data rejected: Message has 200 recipients; <bob@example.test> may send to at most 100 recipients per 1h" \
    "$(send bob@example.test bob@example.test "${to200[@]}")"
check "bob: counters unchanged" "1|16" "$(rows bob@example.test)"
check "bob: may still send" 250 "$(send bob@example.test bob@example.test alice@example.test)"
check "bob: 2 messages, 17 recipients" "2|17" "$(rows bob@example.test)"

# --- what a later restriction or the size limit refuses is not counted -------------------------------
# smtplib goes on after a refused RCPT (swaks would stop)
out=$(python3 - "$STACK_SMTP_PORT" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
s.login("hank@example.test", "pw-hank")
refused = s.sendmail("hank@example.test", ["alice+h1@example.test", "refused@example.test", "alice+h2@example.test"],
                     "Subject: partly refused\r\n\r\ntest\r\n")
print(" ".join("%s:%d" % (k, v[0]) for k, v in sorted(refused.items())))
s.quit()
PY
)
check "hank: a recipient refused by a later restriction" "refused@example.test:554" "$out"
check "hank: counted 1 message, 2 recipients (not 3)" "1|2" "$(rows hank@example.test)"
# 120000 octets: over message_size_limit, under the 128 KiB limit of one
# argument; Postfix 3.7 (cleanup) answers "552 5.3.4 Error: message file too big"
big=$(head -c 120000 /dev/zero | tr '\0' x | fold -w 76)
swaks --server "127.0.0.1:$STACK_SMTP_PORT" --from hank@example.test --to alice@example.test \
    --auth PLAIN --auth-user hank@example.test --auth-password pw-hank --body "$big" --timeout 30 >"$STACK_DIR/big.out" 2>&1
out=$(grep -E '^<\** +[45][0-9]{2} ' "$STACK_DIR/big.out" | grep -v Authentication | head -1 | sed -E 's/^<\** +//')
check "hank: a message over message_size_limit is refused" "552 5.3.4 Error: message file too big" "$out"
[ "$out" = "552 5.3.4 Error: message file too big" ] || grep -v '^ *[-~>]> *x*$' "$STACK_DIR/big.out" | tail -n 15 | sed 's/^/# /'
check "hank: ... and not counted" "1|2" "$(rows hank@example.test)"

# --- the raw protocol: END-OF-MESSAGE with an empty recipient= ---------------------------------
# eom HOST:PORT LOGIN RCPT_COUNT [N_CONNECTIONS]: N concurrent connections,
# one END-OF-MESSAGE request each; prints each answer on a line
cat >"$STACK_DIR/eom.py" <<'PY'
import socket, sys, threading
addrs = sys.argv[1].split(",")
login, n, conns = sys.argv[2], sys.argv[3], int(sys.argv[4])
req = ("request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nprotocol_name=ESMTP\n"
       "client_address=127.0.0.1\nsender=%s\nrecipient=\nrecipient_count=%s\nqueue_id=TEST%%d\n"
       "size=300\nsasl_method=PLAIN\nsasl_username=%s\n\n" % (login, n, login))
answers = [None] * conns
socks = []
for i in range(conns):
    host, port = addrs[i % len(addrs)].rsplit(":", 1)
    socks.append(socket.create_connection((host, int(port)), timeout=20))
go = threading.Barrier(conns)
def one(i):
    s = socks[i]
    go.wait()
    s.sendall((req % i).encode())
    got = b""
    while not got.endswith(b"\n\n"):
        b = s.recv(4096)
        if not b:
            break
        got += b
    answers[i] = got.decode().strip()
ts = [threading.Thread(target=one, args=(i,)) for i in range(conns)]
for t in ts: t.start()
for t in ts: t.join()
for a in answers: print(a)
PY
eom() { python3 "$STACK_DIR/eom.py" "$1" "$2" "$3" "${4:-1}"; }
check "raw END-OF-MESSAGE, empty recipient=, recipient_count=2: admitted" "action=DUNNO" \
    "$(eom "127.0.0.1:$POL_PORT" frank@example.test 2)"
check "frank: 1 message, 2 recipients" "1|2" "$(rows frank@example.test)"
check "raw END-OF-MESSAGE for alice (full): deferred by the database" \
    "action=450 4.7.1 Sending limit reached for <alice@example.test>: 3 messages per 1h; try again in N s (at T)" \
    "$(eom "127.0.0.1:$POL_PORT" alice@example.test 1 | stem)"

# --- precedence mailbox > domain > global, several windows, unlimited ----------------------------------
mrs_cli domain add prec.test send_limit_messages=2 send_limit_window=1h >/dev/null
mrs_cli domain add glob.test >/dev/null
for u in p1 p2 p3 p5; do mrs_cli user add "$u@prec.test" >/dev/null || notok "user add $u"; done
mrs_cli user add p4@glob.test >/dev/null || notok "user add p4"
mrs_cli user set p2@prec.test send_limit_messages=3 >/dev/null
mrs_cli user set p3@prec.test send_limit_messages=0 send_limit_recipients=0 >/dev/null
sql -c "INSERT INTO mailroster.send_limits (scope, window_seconds, messages) VALUES ('global', 3600, 1)"
sql -c "INSERT INTO mailroster.send_limits (scope, mailbox_id, window_seconds, messages)
        SELECT 'mailbox', m.id, w, n FROM mailroster.mailboxes m, (VALUES (600, 1), (3600, 5)) v(w, n)
         WHERE m.local_part = 'p5'"
# seq LOGIN N: N admissions one after the other: "ok" or "450:<limit>" each
seq_answers() {
    local i a r=""
    for i in $(seq 1 "$2"); do
        a=$(eom "127.0.0.1:$POL_PORT" "$1" 1)
        case $a in
            action=DUNNO) r="$r ok" ;;
            "action=450 4.7.1 Sending limit reached for <$1>: "*) a=${a#*>: }; r="$r 450:${a%%;*}" ;;
            *) r="$r ?($a)" ;;
        esac
    done
    echo "${r# }"
}
check "precedence: the domain's limit (2/1h)" "ok ok 450:2 messages per 1h" "$(seq_answers p1@prec.test 3)"
check "precedence: the mailbox's own value (3/1h) over the domain's" "ok ok ok 450:3 messages per 1h" "$(seq_answers p2@prec.test 4)"
check "precedence: explicitly unlimited (0/0) hides domain and global" "ok ok ok ok ok" "$(seq_answers p3@prec.test 5)"
check "precedence: unlimited sends are not logged" "0|0" "$(rows p3@prec.test)"
check "precedence: a domain without limits: the global row (1/1h)" "ok 450:1 messages per 1h" "$(seq_answers p4@glob.test 2)"
# (10 min: both admissions fall in the short window however slow the machine)
check "several windows: the shorter one defers first (1/10m, 5/1h)" "ok 450:1 messages per 10m" "$(seq_answers p5@prec.test 2)"
sql -c "DELETE FROM mailroster.send_limits WHERE scope = 'global'"

# --- window edge: 2 per 3 s, hammered for 7.5 s: never 3 within 3 s ----------------------------
cat >"$STACK_DIR/edge.py" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=10)
req = ("request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nsender=dave@example.test\n"
       "recipient=\nrecipient_count=1\nsasl_username=dave@example.test\n\n").encode()
ok = deferred = other = 0
end = time.monotonic() + 7.5
while time.monotonic() < end:
    s.sendall(req)
    got = b""
    while not got.endswith(b"\n\n"):
        got += s.recv(4096)
    a = got.decode().strip()
    if a == "action=DUNNO": ok += 1
    elif a.startswith("action=450 4.7.1 Sending limit reached for <dave@example.test>: 2 messages per 3s"): deferred += 1
    else:
        other += 1; print("unexpected:", a, file=sys.stderr)
    time.sleep(0.01)
print(ok, deferred, other)
PY
read -r e_ok e_def e_other < <(python3 "$STACK_DIR/edge.py" "127.0.0.1:$POL_PORT")
# every interval (t - 3 s, t] ending at a log row holds at most 2 rows
worst=$(sql -c "SELECT max((SELECT count(*) FROM mailroster.send_counters c2
                             WHERE c2.username = c.username AND c2.window_start > c.window_start - interval '3 s'
                               AND c2.window_start <= c.window_start))
                  FROM mailroster.send_counters c WHERE c.username = 'dave@example.test'")
check "window edge: at most 2 admissions in any 3 s (log rows)" 2 "$worst"
if [ "${e_ok:-0}" -ge 5 ] && [ "${e_ok:-0}" -le 6 ] && [ "${e_other:-1}" = 0 ] && [ "${e_def:-0}" -gt 10 ]; then
    ok "window edge: 5 or 6 admitted in 7.5 s, the rest deferred ($e_ok admitted, $e_def deferred)"
else
    notok "window edge: 5 or 6 admitted in 7.5 s: got admitted=$e_ok deferred=$e_def other=$e_other"
fi
# (rows past the longest window go at every 16th admission: schema_test)

# --- a slow database: no head-of-line blocking, the configured action within the timeout ------
# Another session holds grace's mailbox row until this test lets go, so
# grace's admission waits on the lock. What is checked is the order of
# events, not how long they took: the other client is answered while the
# admission is still pending, and the admission is answered (by the
# daemon giving up its lock wait) while the row is still locked.
lock_mailbox_row grace example.test
check "slow admission: another session holds grace's row" "locked" "$LK_LINE"
cat >"$STACK_DIR/hol.py" <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
a = socket.create_connection((host, int(port)), timeout=30)
b = socket.create_connection((host, int(port)), timeout=30)
def read_answer(s):
    got = b""
    while not got.endswith(b"\n\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    return got.decode().strip()
# grace's admission, and behind it on the same connection a RCPT request
# sent while the admission waits: answered after it, in order
a.sendall(("request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nsender=grace@example.test\n"
           "recipient=\nrecipient_count=1\nsasl_username=grace@example.test\n\n"
           "request=smtpd_access_policy\nprotocol_state=RCPT\nsender=frank@example.test\n"
           "recipient=bob@example.test\nsasl_username=frank@example.test\n\n").encode())
b.sendall(("request=smtpd_access_policy\nprotocol_state=RCPT\nsender=frank@example.test\n"
           "recipient=bob@example.test\nsasl_username=frank@example.test\n\n").encode())
rb = read_answer(b)
def state(s):
    s.setblocking(False)
    try:
        st = "answered" if s.recv(1, socket.MSG_PEEK) else "closed"
    except BlockingIOError:
        st = "pending"
    s.setblocking(True)
    s.settimeout(30)
    return st
# has grace's admission been answered by the time frank's RCPT was?
a_state = state(a)
# another account's admission, once grace's statement waits for the lock
# (the test says when): a second database thread decides it meanwhile
with open(sys.argv[2]) as go:
    go.readline()
c = socket.create_connection((host, int(port)), timeout=30)
c.sendall(("request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nsender=hank@example.test\n"
           "recipient=\nrecipient_count=1\nsasl_username=hank@example.test\n\n").encode())
rc = read_answer(c)
a_state2 = state(a)
ra = read_answer(a)
while ra.count("\n\n") < 1:
    more = read_answer(a)
    if not more:
        break
    ra += "\n\n" + more
ra1, _, ra2 = ra.partition("\n\n")
print("%s|%s|%s|%s|%s|%s" % (rb, a_state, rc, a_state2, ra1, ra2), flush=True)
PY
mkfifo "$STACK_DIR/hol.go"
python3 "$STACK_DIR/hol.py" "127.0.0.1:$POL_PORT" "$STACK_DIR/hol.go" >"$STACK_DIR/hol.out" 2>&1 &
hol_pid=$!
# grace's admission is in a statement that waits for the row lock
for _ in $(seq 200); do
    [ "$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mailrosterd-policy'
                 AND wait_event_type = 'Lock'")" -ge 1 ] && break
    sleep 0.05
done
echo go >"$STACK_DIR/hol.go"
wait "$hol_pid"
IFS='|' read -r r_b a_state r_c a_state2 r_a r_a2 <"$STACK_DIR/hol.out"
check "slow admission: another client's RCPT answered meanwhile" "action=DUNNO" "$r_b"
check "slow admission: ... while the admission was still pending" "pending" "$a_state"
check "slow admission: another account's admission decided meanwhile" "action=DUNNO" "$r_c"
check "slow admission: ... while the first was still pending" "pending" "$a_state2"
check "slow admission: policy_db_unavailable_action = defer" \
    "action=451 4.3.0 Sending limits cannot be checked right now; try again later" "$r_a"
check "slow admission: a RCPT sent behind it on its connection, answered after it" "action=DUNNO" "$r_a2"
# row locks last until the transaction ends: it still holds its table locks
echo "SELECT 'still ' || count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND mode = 'RowShareLock';" >&"${LK[1]}"
read -r -t 20 line <&"${LK[0]}"
case ${line:-} in "still "[1-9]*) ok "slow admission: answered while the row was still locked" ;;
    *) notok "slow admission: the locking session: ${line:-no answer}" ;; esac
# the daemon gave up its lock wait (lock_timeout from policy_db_timeout):
# it did wait for the lock, and did not wait for the other session
if grep -q 'policy: rate-limit admissions: database unavailable: lock timeout' "$MRS_LOG"; then
    ok "slow admission: the lock wait ended by its own timeout"; else notok "slow admission: the lock wait ended by its own timeout"; fi
echo "COMMIT;" >&"${LK[1]}"
exec {LK[1]}>&-
wait "$lk_pid" 2>/dev/null
if grep -q 'policy: admission login=grace@example.test recipients=1 queue_id=: defer_db_unavailable' "$MRS_LOG"; then
    ok "slow admission: logged"; else notok "slow admission: logged"; fi
check "slow admission: the timed-out admission did not count (lock timeout)" "0|0" "$(rows grace@example.test)"
check "slow admission: the other account's admission counted" "2|3" "$(rows hank@example.test)"

# --- counters (the restart below starts them again) ------------------------------------------
st=$(mrs_cli -f json stats)
get() { echo "$st" | python3 -c "import json,sys; rows=[r for r in json.load(sys.stdin) if r.get('service') == 'policy']; print(rows[0]['$1'])"; }
check "stats: too many recipients, timed-out admission" "1 1" "$(get reject_too_many_recipients) $(get defer_db_unavailable)"
n=$(get defer_rate_limit)
# alice 2 at RCPT + 1 raw, 4 in the precedence part, dave's deferrals
if [ "$n" -eq $((7 + e_def)) ]; then ok "stats: defer_rate_limit counted ($n)"; else notok "stats: defer_rate_limit: $n, expected $((7 + e_def))"; fi

# --- restart of mailrosterd mid-window keeps the counts ------------------------------------------
kill -TERM "$MRD_PID"; wait "$MRD_PID" 2>/dev/null
# (a restart serves the snapshot file and catches up from the change log:
# it says "starting from snapshot file", not "loaded directory")
n_loaded=$(grep -cE "loaded directory|starting from snapshot file" "$MRS_LOG")
"$MRD" -f -c "$MRS_CONF" >>"$MRS_LOG" 2>&1 &
MRD_PID=$!
STACK_PIDS+=("$MRD_PID")
wait_for "grep -cE 'loaded directory|starting from snapshot file' '$MRS_LOG'" "$((n_loaded + 1))" 10 || notok "mailrosterd restarts"
# the new daemon does not know alice is full: RCPT passes, END-OF-MESSAGE asks the database
check "after a restart: alice's 4th message deferred at END-OF-MESSAGE" \
    "450 4.7.1 <END-OF-MESSAGE>: End-of-data rejected: Sending limit reached for <alice@example.test>: 3 messages per 1h; try again in N s (at T)" \
    "$(send alice@example.test alice@example.test bob@example.test | stem)"
check "after a restart: alice still has 3 rows" "3|3" "$(rows alice@example.test)"
check "after a restart: RCPT now refuses alice at once (learned at END-OF-MESSAGE)" \
    "450 4.7.1 <bob@example.test>: Recipient address rejected: Sending limit reached for <alice@example.test>: 3 messages per 1h; try again in N s (at T)" \
    "$(send alice@example.test alice@example.test bob@example.test | stem)"

# --- two daemons on one database: 50 concurrent admissions at limit-1, exactly 1 admitted ----------
POL2=$(stack_free_port)
cat >"$STACK_DIR/mr/second.conf" <<CONF
database = host=$PGHOST port=$PGPORT dbname=$MR_DB user=mrd
policy_listen = inet:127.0.0.1:$POL2
policy_db_timeout = 5s
CONF
MRS_LOG2=$STACK_DIR/mr/second.log
"$MRD" -f -c "$STACK_DIR/mr/second.conf" >>"$MRS_LOG2" 2>&1 &
MRD2_PID=$!
STACK_PIDS+=("$MRD2_PID")
wait_for "grep -c 'loaded directory' '$MRS_LOG2'" 1 10 || notok "second mailrosterd starts"
# Each round: exactly one DUNNO (admitted) and 5 rows; every other answer
# the limit's 450, or 451 for an admission that waited for erin's row lock
# longer than its time allows (50 admissions of one account queue on one
# row lock: a slow machine times some out, uncounted; never admitted).
race_bad=0
race_busy=0
full="action=450 4.7.1 Sending limit reached for <erin@example.test>: 5 messages per 1h; try again in N s (at T)"
busy="action=451 4.3.0 Sending limits cannot be checked right now; try again later"
for round in $(seq 1 10); do
    sql -c "DELETE FROM mailroster.send_counters WHERE username = 'erin@example.test'"
    for i in 1 2 3 4; do sql -c "SELECT verdict FROM mailroster.send_admit('erin@example.test', 1)" >/dev/null; done
    eom "127.0.0.1:$POL_PORT,127.0.0.1:$POL2" erin@example.test 1 50 | stem >"$STACK_DIR/race.out"
    n_ok=$(grep -cxF 'action=DUNNO' "$STACK_DIR/race.out")
    n_full=$(grep -cxF "$full" "$STACK_DIR/race.out")
    n_busy=$(grep -cxF "$busy" "$STACK_DIR/race.out")
    r=$(rows erin@example.test)
    race_busy=$((race_busy + n_busy))
    if [ "$n_ok" != 1 ] || [ $((n_ok + n_full + n_busy)) != 50 ] || [ "$r" != "5|5" ]; then
        race_bad=$((race_bad + 1))
        echo "# round $round: $(sort "$STACK_DIR/race.out" | uniq -c | sed 's/^ *//' | paste -sd';'); rows $r"
    fi
done
echo "# answered 451 after a long lock wait (uncounted): $race_busy of 500"
check "two daemons, 50 concurrent at limit-1, 10 rounds: exactly 1 admitted each round, 5 rows, the rest refused" 0 "$race_bad"

# --- PostgreSQL stalled (every process stopped, sockets open): the thread --------------------------
# waits policy_db_timeout + 1 s, drops its connection, and the configured
# action answers; whether the stalled statement commits once PostgreSQL
# runs again cannot be told (mailrosterd(8)): hank has 1 or 2 more rows.
# (Both threads hold live connections after the race above; one that had
# none would connect first, and end at connect_timeout instead: either
# line says so.)
hank0=$(sql -c "SELECT count(*) FROM mailroster.send_counters WHERE username = 'hank@example.test'")
stall_re="admission login=hank@example.test .*defer_db_unavailable: (no answer from the database within 3000 ms|connection to server .* failed: timeout expired)"
n_stall=$(grep -cE "$stall_re" "$MRS_LOG")
pm=$(head -n 1 "$STACK_DIR/pg/postmaster.pid")
pg_procs="$pm $(ps -o pid= --ppid "$pm" | tr '\n' ' ')"
# shellcheck disable=SC2086
kill -STOP $pg_procs
stalled=$(eom "127.0.0.1:$POL_PORT" hank@example.test 1)
# shellcheck disable=SC2086
kill -CONT $pg_procs
check "database stalled: hank's message deferred (policy_db_unavailable_action = defer)" \
    "action=451 4.3.0 Sending limits cannot be checked right now; try again later" "$stalled"
if [ "$(grep -cE "$stall_re" "$MRS_LOG")" -gt "$n_stall" ]; then
    ok "database stalled: logged ($(grep -oE "$stall_re" "$MRS_LOG" | tail -n 1 | sed 's/.*defer_db_unavailable: //'))"
else
    notok "database stalled: logged"
    grep -E "policy: (rate-limit|admission login=hank)" "$MRS_LOG" | tail -n 5 | sed 's/^/#   /'
fi
again=""
for i in $(seq 1 30); do
    again=$(eom "127.0.0.1:$POL_PORT" hank@example.test 1)
    [ "$again" = action=DUNNO ] && break
    sleep 0.5
done
check "database running again: hank admitted" "action=DUNNO" "$again"
hank1=$(sql -c "SELECT count(*) FROM mailroster.send_counters WHERE username = 'hank@example.test'")
if [ "$hank1" -eq $((hank0 + 1)) ] || [ "$hank1" -eq $((hank0 + 2)) ]; then
    ok "database stalled: hank has $((hank1 - hank0)) more row(s) (1, or 2 if the stalled one committed)"
else
    notok "database stalled: hank has $((hank1 - hank0)) more rows, expected 1 or 2"
fi

# --- PostgreSQL stopped: the configured action, logged; counts intact when it returns ----------------
n_down=$(grep -c "policy: rate-limit admissions: database unavailable" "$MRS_LOG")
n_up=$(grep -c "policy: rate-limit admissions: database available again" "$MRS_LOG")
n_reload=$(grep -c "reloaded" "$MRS_LOG")
stack_pg_stop || notok "PostgreSQL stops"
check "database down: frank's message deferred (policy_db_unavailable_action = defer)" \
    "451 4.3.0 <END-OF-MESSAGE>: End-of-data rejected: Sending limits cannot be checked right now; try again later" \
    "$(send frank@example.test frank@example.test bob@example.test)"
if [ "$(grep -c "policy: rate-limit admissions: database unavailable" "$MRS_LOG")" -gt "$n_down" ]; then ok "database down: logged"; else notok "database down: logged"; fi
check "database down: an account known full is still refused at RCPT" \
    "450 4.7.1 <bob@example.test>: Recipient address rejected: Sending limit reached for <alice@example.test>: 3 messages per 1h; try again in N s (at T)" \
    "$(send alice@example.test alice@example.test bob@example.test | stem)"
# switch to dunno at run time: mail flows uncounted
sed -i 's/^policy_db_unavailable_action = defer$/policy_db_unavailable_action = dunno/' "$MRS_CONF"
kill -HUP "$MRD_PID"
wait_for "grep -c 'reloaded' '$MRS_LOG'" "$((n_reload + 1))" 5 || notok "reload"
check "database down, action dunno: frank's message goes out" 250 "$(send frank@example.test frank@example.test bob@example.test)"
check "database down, action dunno: a known-full account is still deferred (raw EOM)" \
    "action=450 4.7.1 Sending limit reached for <alice@example.test>: 3 messages per 1h; try again in N s (at T)" \
    "$(eom "127.0.0.1:$POL_PORT" alice@example.test 1 | stem)"
sed -i 's/^policy_db_unavailable_action = dunno$/policy_db_unavailable_action = defer/' "$MRS_CONF"
kill -HUP "$MRD_PID"
wait_for "grep -c 'reloaded' '$MRS_LOG'" "$((n_reload + 2))" 5 || notok "reload back to defer"
stack_pg_start_again || notok "PostgreSQL starts again"
check "database back: alice still has 3 rows, frank 1, bob 2" "3|3 1|2 2|17" \
    "$(rows alice@example.test) $(rows frank@example.test) $(rows bob@example.test)"
ok_again=""
for i in $(seq 1 30); do
    ok_again=$(send frank@example.test frank@example.test bob@example.test)
    [ "$ok_again" = 250 ] && break
    sleep 0.5
done
# frank had 1 message with 2 recipients (raw); the dunno one went out uncounted
check "database back: frank admitted and counted again" "250 2|3" "$ok_again $(rows frank@example.test)"
if [ "$(grep -c "policy: rate-limit admissions: database available again" "$MRS_LOG")" -gt "$n_up" ]; then ok "database back: logged"; else notok "database back: logged"; fi

# --- limit show / limit reset (admin socket) ------------------------------------------------------------
check "limit log: one row per admitted message" 3 "$(mrs_cli -f json limit log alice@example.test | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
mrs_cli limit reset alice@example.test >/dev/null || notok "limit reset"
check "limit reset: the next admission is decided by the database at once" "action=DUNNO" "$(eom "127.0.0.1:$POL_PORT" alice@example.test 1)"
check "limit reset: ... which also clears what RCPT remembered" 250 "$(send alice@example.test alice@example.test bob@example.test)"
check "limit reset: 2 rows now" "2|2" "$(rows alice@example.test)"

# --- a stalled policy daemon: the shipped fallback (timeout=10s, default_action=DUNNO, try_limit 1) -----
# A third mailrosterd serves only the policy service; Postfix is pointed at
# it and it is SIGSTOPped: 50 parallel submissions must each get through
# while it is still stopped (Postfix's fallback after 2 x 10 s, RCPT and
# END-OF-MESSAGE), none held ~200 s (what the time is on a loaded machine
# is printed, not asserted).
POL3=$(stack_free_port)
cat >"$STACK_DIR/mr/third.conf" <<CONF
database = host=$PGHOST port=$PGPORT dbname=$MR_DB user=mrd
policy_listen = inet:127.0.0.1:$POL3
CONF
"$MRD" -f -c "$STACK_DIR/mr/third.conf" >>"$STACK_DIR/mr/third.log" 2>&1 &
MRD3_PID=$!
STACK_PIDS+=("$MRD3_PID")
wait_for "grep -c 'loaded directory' '$STACK_DIR/mr/third.log'" 1 10 || notok "third mailrosterd starts"
postconf -c "$STACK_DIR/postfix/etc" -e \
    "smtpd_recipient_restrictions = check_policy_service { inet:127.0.0.1:$POL3, timeout=10s, default_action=DUNNO }" \
    "smtpd_end_of_data_restrictions = check_policy_service { inet:127.0.0.1:$POL3, timeout=10s, default_action=DUNNO }"
stack__postfix_cmd reload
sleep 1
kill -STOP "$MRD3_PID"
senders=()
for i in $(seq 1 50); do
    ( t0=$(date +%s); r=$(send frank@example.test frank@example.test "alice+stall$i@example.test"); echo "$r $(( $(date +%s) - t0 ))" >"$STACK_DIR/stall.$i" ) &
    senders+=("$!")
done
wait_for "ls '$STACK_DIR'/stall.* 2>/dev/null | wc -l" 50 150 || true
done_stopped=$(ls "$STACK_DIR"/stall.* 2>/dev/null | wc -l)
kill -CONT "$MRD3_PID"
wait "${senders[@]}"   # only these: the daemons are children of this shell too
res=$(cat "$STACK_DIR"/stall.* 2>/dev/null | awk '{print $1}' | sort | uniq -c | sed 's/^ *//' | paste -sd';')
slowest=$(cat "$STACK_DIR"/stall.* 2>/dev/null | awk 'BEGIN{m=0} $2>m{m=$2} END{print m}')
check "stalled policy daemon: all 50 submissions accepted (default_action=DUNNO)" "50 250" "$res"
check "stalled policy daemon: all 50 done while it was stopped" 50 "$done_stopped"
echo "# stalled policy daemon: slowest submission ${slowest}s (2 x 10 s of Postfix's timeout, plus the machine's load)"
check "stalled policy daemon: nothing counted meanwhile" "2|3" "$(rows frank@example.test)"

# --- counters ------------------------------------------------------------------------------------------
st=$(mrs_cli -f json stats)
get() { echo "$st" | python3 -c "import json,sys; rows=[r for r in json.load(sys.stdin) if r.get('service') == 'policy']; print(rows[0]['$1'])"; }
n=$(get defer_db_unavailable)
if [ "$n" -ge 1 ]; then ok "stats: defer_db_unavailable counted ($n)"; else notok "stats: defer_db_unavailable counted: $n"; fi
check "stats: dunno_db_unavailable counted" 1 "$(get dunno_db_unavailable)"
# this daemon was asked to admit while PostgreSQL was stopped, so some
# admissions failed on the database; every admission ended one way
a=$(get admissions) ok_=$(get admitted) to=$(get db_timeouts) er=$(get db_errors)
if [ "$er" -ge 1 ] && [ "$a" -ge $((ok_ + to + er)) ] && [ "$ok_" -ge 1 ]; then
    ok "stats: admissions $a = admitted $ok_ + refused + db_timeouts $to + db_errors $er"
else
    notok "stats: admissions $a, admitted $ok_, db_timeouts $to, db_errors $er"
fi

# stop both daemons first, so that what a sanitizer says at exit is in the logs
kill -TERM "$MRD_PID" "$MRD2_PID" "$MRD3_PID" 2>/dev/null
wait "$MRD_PID" "$MRD2_PID" "$MRD3_PID" 2>/dev/null
check "both daemons stopped cleanly" "stopped stopped" "$(tail -n 1 "$MRS_LOG" | grep -o 'stopped$') $(tail -n 1 "$MRS_LOG2" | grep -o 'stopped$')"
# (Dovecot's log: an ASan build's roster driver runs under the sanitizers in its auth process)
for f in "$MRS_LOG" "$MRS_LOG2" "$STACK_DIR/mr/third.log" "$STACK_DOVECOT_LOG"; do
    if grep -q "runtime error\|AddressSanitizer\|LeakSanitizer" "$f"; then notok "sanitizer report in $(basename "$f")"; grep -m5 -A5 "runtime error\|AddressSanitizer" "$f"; else ok "no sanitizer report in $(basename "$f")"; fi
done
t_summary
