#!/usr/bin/env bash
# restart_test.sh - a restart with PostgreSQL up and a snapshot file.
# The database connection goes through gate_proxy.py, which holds it until
# the test opens the gate: the window between the snapshot being read and
# PostgreSQL answering is as long as the test wants, without timing.
#  - bridged: a recent snapshot is answered from as soon as it is read,
#    while the connection is held; once the gate opens, the change log
#    brings it up to date (no full load). A probe asking tcp_table from
#    the moment the port accepts sees the snapshot's answers, then the
#    database's: each changed key flips exactly once, and no temporary
#    failure after the first answer.
#  - pruned: the change log no longer reaches back to the snapshot's
#    change; the snapshot is answered from until a full load replaces it,
#    still without a temporary failure.
#  - old: a snapshot older than startup_snapshot_max_age is not answered
#    from before PostgreSQL says the log bridges it (temporary failures
#    meanwhile).
#  - PostgreSQL down: the snapshot is served as in any outage.
#  - the file's time: an unchanged file is marked current while the daemon
#    is in step with the change log, and at the stop.
#  - running: a full load replaces the directory of a running daemon (its
#    connections refused for a moment, the log pruned past its change):
#    answers all along, no temporary failure, then the new directory's.
#  - foreign: the snapshot names its database (migration 0014); started
#    against another database whose change log happens to cover the
#    snapshot's change, the daemon serves the snapshot only until it has
#    read that database's identity, then temporary failures (the load is
#    held by a table lock here) until the full load of the other database.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
. "$TOP/tests/integration/begin.sh" mr-restart

stack_pg_start || exit 1
mr_setup_db || exit 1
sql -c "INSERT INTO mailroster.domains (name) VALUES ('example.com')" \
    -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'u' || g FROM mailroster.domains, generate_series(1, 2000) g" \
    -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'gone' FROM mailroster.domains" >/dev/null
CONF=$STACK_DIR/mailroster.conf
LOG=$STACK_DIR/mailrosterd.log
mr_write_conf "$CONF"
PORT=$MR_TCP_MAILBOXES
# the same daemon through the gate; libpq's connect timeout and
# startup_timeout well above any wait here, so a held connection is only slow
GATE=$STACK_DIR/gate
GATE_PORT=$(stack_free_port)
GCONF=$STACK_DIR/gated.conf
sed "s|^database = .*|database = host=127.0.0.1 port=$GATE_PORT dbname=$MR_DB user=mrd connect_timeout=120|" \
    "$CONF" >"$GCONF"
echo "startup_timeout = 600s" >>"$GCONF"
python3 "$TOP/tests/integration/gate_proxy.py" "$GATE_PORT" "$PGHOST/.s.PGSQL.$PGPORT" "$GATE" &
STACK_PIDS+=("$!")
wait_for "test -e $GATE.ready && echo yes" yes 30 || { notok "the gate proxy starts"; t_summary; exit 1; }
# code KEY: the tcp_table reply code for KEY in the mailboxes map
code() {
    local line=""
    { exec 3<>"/dev/tcp/127.0.0.1/$PORT" && printf 'get %s\n' "$1" >&3 && read -r -t 5 line <&3; exec 3>&-; } 2>/dev/null
    printf '%s\n' "${line:0:3}"
}
head_seq() { sql -c "SELECT max(seq) FROM mailroster.change_log"; }
mtime() { stat -c %Y "$MR_SNAPSHOT"; }

mr_start "$CONF" "$LOG" || { notok "first start"; t_summary; exit 1; }
check "first start: a full load" "1" "$(grep -c 'loaded directory at change' "$LOG")"
wait_for "test -s $MR_SNAPSHOT && echo yes" yes 10 || notok "snapshot written after the load"
A_ID=$(sql -c "SELECT database_id FROM mailroster.settings")
check "the snapshot file names the database it is of" "mailroster-snapshot 5 $(head_seq) $A_ID" \
    "$(head -n 1 "$MR_SNAPSHOT")"
mr_stop
SNAP_SEQ=$(head_seq)

# gated LABEL KEY... : the gate closed, start the probe (asking KEYs) and the
# daemon through the gate; sets PROBE_STOP, PROBE_OUT, PROBE_PID, BEFORE
# (log lines)
gated() {
    rm -f "$GATE"
    PROBE_STOP=$STACK_DIR/stop.$1
    local label=$1; shift
    PROBE_OUT=$STACK_DIR/probe.$label
    python3 "$TOP/tests/integration/restart_probe.py" "$PORT" "$PROBE_STOP" "$@" >"$PROBE_OUT" &
    PROBE_PID=$!
    wait_for "test -e $PROBE_STOP.ready && echo yes" yes 30
    BEFORE=$(wc -l <"$LOG")
    mr_start "${GATED_CONF:-$GCONF}" "$LOG" || notok "$label: mailrosterd starts"
}
# seen KEY CODE: the probe has had CODE for KEY
seen() { grep -qx "$1 $2" "$PROBE_STOP.progress" 2>/dev/null && echo yes; }
# logged REGEX: a line of this start matches
logged() { tail -n +"$((BEFORE + 1))" "$LOG" | grep -qE "$1" && echo yes; }
# probe_end: stop the probe; PROBE = its output, L2 = the log of this start
probe_end() {
    touch "$PROBE_STOP"
    wait "$PROBE_PID"
    PROBE=$(cat "$PROBE_OUT")
    L2=$(tail -n +"$((BEFORE + 1))" "$LOG")
}
# answers KEY: the probe's sequence for KEY, a leading 400 (lookups while
# the file was being read) dropped
answers() { sed -n "s/^$1 //p" <<<"$PROBE" | sed 's/^400 //'; }

# --- bridged: changes made while the daemon was down come from the log ---------------
sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'fresh' FROM mailroster.domains" \
    -c "DELETE FROM mailroster.mailboxes WHERE local_part = 'gone'" >/dev/null
HEAD1=$(head_seq)
gated bridged fresh@example.com gone@example.com u7@example.com
wait_for "seen fresh@example.com 500" yes 30 || notok "bridged: the probe sees the snapshot's answer"
check "bridged: answering from the snapshot while the database connection is held" "200 500 200" \
    "$(code u7@example.com) $(code fresh@example.com) $(code gone@example.com)"
touch "$GATE"
wait_for "logged 'caught up to change $HEAD1 '" yes 30 || notok "bridged: caught up to change $HEAD1"
wait_for "seen fresh@example.com 200" yes 30
probe_end
check "bridged: served as soon as read, at the snapshot's change" "1" \
    "$(grep -c "starting from snapshot file $MR_SNAPSHOT: serving the snapshot of .* at change $SNAP_SEQ (2001 mailboxes, 0 aliases; read in [0-9.]* s) while PostgreSQL brings it up to date" <<<"$L2")"
check "bridged: the change log reaches back" "1" \
    "$(grep -c "the change log reaches back to the snapshot's change $SNAP_SEQ: catching up" <<<"$L2")"
check "bridged: caught up, the two changes applied" "1" \
    "$(grep -c "caught up to change $HEAD1 (2 changes applied to the snapshot)" <<<"$L2")"
check "bridged: no full load" "0" "$(grep -c 'loaded directory at change' <<<"$L2")"
check "bridged: an unchanged mailbox is found from the first answer" "200" "$(answers u7@example.com)"
check "bridged: a new mailbox: the snapshot's answer, then the database's" "500 200" "$(answers fresh@example.com)"
check "bridged: a removed mailbox: the snapshot's answer, then the database's" "200 500" "$(answers gone@example.com)"
check "bridged: the end state is the database's" "200 500" "$(code fresh@example.com) $(code gone@example.com)"
mr_stop

# --- not bridged: the log was pruned past the snapshot's change ----------------------
SNAP2=$(head_seq)
sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'later' FROM mailroster.domains" \
    -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'later2' FROM mailroster.domains" >/dev/null
LAST=$(head_seq)
# prune every row before the newest one, as a retention job would
sql -c "DELETE FROM mailroster.change_log WHERE seq < $LAST" >/dev/null
check "the change log now starts after the snapshot's change" "yes" \
    "$([ "$(sql -c 'SELECT min(seq) FROM mailroster.change_log')" -gt $((SNAP2 + 1)) ] && echo yes || echo no)"
gated pruned later@example.com u7@example.com
wait_for "seen later@example.com 500" yes 30 || notok "pruned: the probe sees the snapshot's answer"
touch "$GATE"
wait_for "logged 'replaced by a full load at change $LAST'" yes 60 || notok "pruned: a full load replaces the snapshot"
wait_for "seen later@example.com 200" yes 30
probe_end
check "pruned: served as soon as read" "1" \
    "$(grep -c "starting from snapshot file $MR_SNAPSHOT: serving the snapshot of .* at change $SNAP2 " <<<"$L2")"
check "pruned: the database thread says why it loads in full" "1" \
    "$(grep -c "change log starts at $LAST, after our $SNAP2: reloading the whole directory" <<<"$L2")"
check "pruned: a full load" "1" "$(grep -c "loaded directory at change $LAST:" <<<"$L2")"
check "pruned: it replaces the snapshot" "1" \
    "$(grep -c "the snapshot of .* at change $SNAP2 replaced by a full load at change $LAST$" <<<"$L2")"
check "pruned: the stale snapshot's answer until the load, then the database's" "500 200" "$(answers later@example.com)"
check "pruned: an unchanged mailbox, found throughout" "200" "$(answers u7@example.com)"
mr_stop

# --- old: a snapshot older than startup_snapshot_max_age waits for PostgreSQL ---------
SNAP3=$(head_seq)
sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'later3' FROM mailroster.domains" >/dev/null
HEAD3=$(head_seq)
touch -d '2 hours ago' "$MR_SNAPSHOT"
gated old later3@example.com u7@example.com
wait_for "logged 'is older than startup_snapshot_max_age'" yes 30 || notok "old: says it waits"
wait_for "seen u7@example.com 400" yes 30
check "old: read, but temporary failures while the database connection is held" "400 400" \
    "$(code u7@example.com) $(code later3@example.com)"
touch "$GATE"
wait_for "logged 'caught up to change $HEAD3 '" yes 30 || notok "old: caught up to change $HEAD3"
wait_for "seen later3@example.com 200" yes 30
probe_end
check "old: held, then served once the log bridges it" "1 1" \
    "$(grep -c "snapshot file $MR_SNAPSHOT of .* at change $SNAP3 is older than startup_snapshot_max_age (3600 s)" <<<"$L2") $(grep -c "starting from snapshot file $MR_SNAPSHOT written .* at change $SNAP3 (.*): the change log brings it up to date" <<<"$L2")"
check "old: no full load" "0" "$(grep -c 'loaded directory at change' <<<"$L2")"
a=$(sed -n 's/^u7@example.com //p' <<<"$PROBE")
check "old: an unchanged mailbox: temporary failures, then found" "400 200" "$a"
a=$(sed -n 's/^later3@example.com //p' <<<"$PROBE")
# between the log's answer and its first changes the snapshot is served as it is
case $a in "400 200"|"400 500 200") ok "old: a new mailbox: temporary failures, then found ($a)" ;;
    *) notok "old: later3 answers: $a" ;; esac
mr_stop

# --- PostgreSQL down: the snapshot is served as in any outage -----------------------
stack_pg_stop
BEFORE=$(wc -l <"$LOG")
mr_start "$CONF" "$LOG" || notok "down: mailrosterd starts"
wait_for "logged 'database unavailable: .*; answering from memory'" yes 30
check "down: starting from the snapshot" "yes" "$(logged "starting from snapshot file $MR_SNAPSHOT: serving the snapshot of .* at change $HEAD3 ")"
check "down: answers from it" "200" "$(code later3@example.com)"
stack_pg_start_again || notok "PostgreSQL restarts"
sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'after' FROM mailroster.domains" >/dev/null
wait_for "code after@example.com" 200 40
check "down: back, it catches up" "200" "$(code after@example.com)"
# the reconnection may come before the INSERT or after it
wait_for "logged 'caught up to change ($HEAD3|$(head_seq)) '" yes 10 \
    && ok "down: caught up, from the snapshot's change" || notok "down: caught up, from the snapshot's change"
mr_stop

# --- the file's time: marked current while in step, and at the stop --------------
# Nothing changes in the directory. Once in step with the change log the
# daemon marks the unchanged file current at its first timer tick, then
# every snapshot_interval (1 h here: no second mark), and at the stop.
sed 's/^snapshot_interval = .*//' "$CONF" >"$STACK_DIR/mark.conf"
echo "snapshot_interval = 1h" >>"$STACK_DIR/mark.conf"
touch -d '3 hours ago' "$MR_SNAPSHOT"
t0=$(date +%s)
BEFORE=$(wc -l <"$LOG")
mr_start "$STACK_DIR/mark.conf" "$LOG" || notok "mark: mailrosterd starts"
wait_for "[ \$(mtime) -ge $t0 ] && echo yes" yes 30 \
    && ok "an unchanged snapshot file is marked current while running" \
    || notok "an unchanged snapshot file is marked current while running: time $(mtime), set back at $t0"
check "mark: an old file, held until the log bridges it" "yes" "$(logged 'is older than startup_snapshot_max_age')"
touch -d '3 hours ago' "$MR_SNAPSHOT"
t0=$(date +%s)
mr_stop
[ "$(mtime)" -ge "$t0" ] && ok "the stop marks the unchanged snapshot file current" \
    || notok "the stop marks the unchanged snapshot file current: time $(mtime), stopped at $t0"
# --- running: a full load replaces the directory of a running daemon ---------------
BEFORE=$(wc -l <"$LOG")
mr_start "$CONF" "$LOG" || notok "running: mailrosterd starts"
wait_for "logged 'caught up to change'" yes 30 || notok "running: caught up"
PROBE_STOP=$STACK_DIR/stop.running
PROBE_OUT=$STACK_DIR/probe.running
python3 "$TOP/tests/integration/restart_probe.py" "$PORT" "$PROBE_STOP" u7@example.com running1@example.com >"$PROBE_OUT" &
PROBE_PID=$!
wait_for "test -e $PROBE_STOP.ready && echo yes" yes 30
wait_for "seen running1@example.com 500" yes 30 || notok "running: the probe asks"
RSEQ=$(head_seq)
# refuse and cut the daemon's connections, change, prune past its change, let it in
sql -c "ALTER ROLE mrd NOLOGIN" >/dev/null
sql -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'mrd'" >/dev/null
sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'running1' FROM mailroster.domains" \
    -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'running2' FROM mailroster.domains" >/dev/null
RHEAD=$(head_seq)
sql -c "DELETE FROM mailroster.change_log WHERE seq < $RHEAD" >/dev/null
sql -c "ALTER ROLE mrd LOGIN" >/dev/null
wait_for "logged 'replacing the directory'" yes 60 || notok "running: a full load replaces the directory"
wait_for "seen running1@example.com 200" yes 30
probe_end
check "running: the directory at $RSEQ replaced by a full load at $RHEAD" "1" \
    "$(grep -c "replacing the directory (change $RSEQ) with a full load (change $RHEAD)" <<<"$L2")"
check "running: an unchanged mailbox, found throughout (no temporary failure)" "200" \
    "$(sed -n 's/^u7@example.com //p' <<<"$PROBE")"
check "running: a new mailbox: not found, then found (no temporary failure)" "500 200" \
    "$(sed -n 's/^running1@example.com //p' <<<"$PROBE")"
check "running: the new directory is served" "200 200" "$(code running2@example.com) $(code u7@example.com)"
mr_stop

# --- foreign: the snapshot is of another database whose log covers its change -------
read -r _ _ FSEQ FID <"$MR_SNAPSHOT"
check "foreign: the snapshot file is of database A" "$A_ID" "$FID"
stack_pg_createdb mr_other || notok "foreign: database B created"
bsql() { MR_DB=mr_other sql "$@"; }
bsql -f "$TOP/sql/schema.sql" >/dev/null
bsql -f "$TOP/sql/roles.sql" >/dev/null
# B: the same domain, other mailboxes, more changes than A has had
bsql -c "INSERT INTO mailroster.domains (name) VALUES ('example.com')" \
    -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'b' || g FROM mailroster.domains, generate_series(1, $((FSEQ + 50))) g" >/dev/null
B_ID=$(bsql -c "SELECT database_id FROM mailroster.settings")
BHEAD=$(bsql -c "SELECT max(seq) FROM mailroster.change_log")
check "foreign: two databases, two identities" "yes" "$([ -n "$A_ID" ] && [ -n "$B_ID" ] && [ "$A_ID" != "$B_ID" ] && echo yes)"
check "foreign: B's change log covers the snapshot's change $FSEQ" "yes" \
    "$([ "$(bsql -c 'SELECT min(seq) FROM mailroster.change_log')" -le $((FSEQ + 1)) ] && [ "$BHEAD" -ge "$FSEQ" ] && echo yes)"
# hold B's full load: a transaction that locks its mailboxes (fed through a FIFO)
mkfifo "$STACK_DIR/lockfeed"
bsql <"$STACK_DIR/lockfeed" >/dev/null 2>&1 &
LOCKER=$!
STACK_PIDS+=("$LOCKER")
exec 5>"$STACK_DIR/lockfeed"
echo "BEGIN; LOCK TABLE mailroster.mailboxes IN ACCESS EXCLUSIVE MODE;" >&5
wait_for "bsql -c \"SELECT count(*) FROM pg_locks WHERE relation = 'mailroster.mailboxes'::regclass AND mode = 'AccessExclusiveLock' AND granted\"" 1 30 \
    || notok "foreign: B's mailboxes locked"
sed "s|dbname=$MR_DB |dbname=mr_other |" "$GCONF" >"$STACK_DIR/other.conf"
touch "$MR_SNAPSHOT"   # young: served at once
# (5>&-: the daemon and the probe must not hold the FIFO open)
GATED_CONF=$STACK_DIR/other.conf gated foreign u7@example.com b7@example.com 5>&-
wait_for "seen u7@example.com 200" yes 30 || notok "foreign: the probe sees the snapshot's answer"
check "foreign: the snapshot is served while the connection is held (its identity unknown)" "200 500" \
    "$(code u7@example.com) $(code b7@example.com)"
touch "$GATE"
wait_for "logged 'the snapshot file belongs to another database'" yes 30 || notok "foreign: B's identity read"
wait_for "seen u7@example.com 400" yes 30 || notok "foreign: the probe sees temporary failures"
check "foreign: B's identity known, its load held: temporary failures, not A's answers" "400 400" \
    "$(code u7@example.com) $(code b7@example.com)"
printf "COMMIT;\n\\q\n" >&5
exec 5>&-
wait "$LOCKER"
wait_for "logged 'loaded directory at change $BHEAD:'" yes 60 || notok "foreign: B loaded in full"
wait_for "seen b7@example.com 200" yes 30
probe_end
check "foreign: the log line names both identities" "1" \
    "$(grep -c "the snapshot file belongs to another database (id $A_ID, this database is $B_ID): loading from PostgreSQL" <<<"$L2")"
check "foreign: the loop stops answering from it" "1" \
    "$(grep -c "no longer answering from the snapshot file of database $A_ID, this database is $B_ID: temporary failures" <<<"$L2")"
check "foreign: no bridge, no catch-up applied to it" "0 0" \
    "$(grep -c "reaches back" <<<"$L2") $(grep -c "changes applied to the snapshot" <<<"$L2")"
check "foreign: the identity is known before the load" "belongs loaded" \
    "$(grep -oE "belongs to another database|loaded directory at change $BHEAD:" <<<"$L2" | sed 's/.*belongs.*/belongs/; s/^loaded.*/loaded/' | paste -sd' ')"
check "foreign: A's mailbox: found (snapshot), temporary failures, not found (B)" "200 400 500" "$(answers u7@example.com)"
check "foreign: B's mailbox: not found (snapshot), temporary failures, found (B)" "500 400 200" "$(answers b7@example.com)"
wait_for "head -n 1 $MR_SNAPSHOT" "mailroster-snapshot 5 $BHEAD $B_ID" 30 \
    && ok "foreign: the snapshot file is rewritten, of database B" \
    || notok "foreign: the snapshot file is rewritten, of database B: $(head -n 1 "$MR_SNAPSHOT")"
mr_stop

if grep -q "ERROR: AddressSanitizer\|runtime error:" "$LOG"; then notok "no sanitizer report"; else ok "no sanitizer report"; fi
t_summary
