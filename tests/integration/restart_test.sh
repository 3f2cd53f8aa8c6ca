#!/usr/bin/env bash
# restart_test.sh - a restart with PostgreSQL up and a snapshot file: the
# daemon answers from the snapshot as soon as it is read and the change
# log brings it up to date (no full load, no temporary failure after the
# first answer); when the change log no longer reaches back to the
# snapshot's change, the snapshot is not served (its answers would be
# wrong, not just late) and the directory is loaded in full.
# A probe asks tcp_table from the moment the port accepts and records the
# sequence of answers per key.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
STACK_DIR=$(mktemp -d /tmp/mr-restart.XXXXXX)
export STACK_DIR
STACK_PIDS=()
. "$TOP/scripts/lib/stack.sh"
. "$TOP/tests/integration/lib.sh"
trap stack_cleanup EXIT

stack_pg_start || exit 1
mr_setup_db || exit 1
sql -c "INSERT INTO mailroster.domains (name) VALUES ('example.com')" \
    -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'u' || g FROM mailroster.domains, generate_series(1, 2000) g" \
    -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'gone' FROM mailroster.domains" >/dev/null
CONF=$STACK_DIR/mailroster.conf
LOG=$STACK_DIR/mailrosterd.log
mr_write_conf "$CONF"
PORT=$MR_TCP_MAILBOXES
# code KEY: the tcp_table reply code for KEY in the mailboxes map
code() {
    local line=""
    { exec 3<>"/dev/tcp/127.0.0.1/$PORT" && printf 'get %s\n' "$1" >&3 && read -r -t 5 line <&3; exec 3>&-; } 2>/dev/null
    printf '%s\n' "${line:0:3}"
}

mr_start "$CONF" "$LOG" || { notok "first start"; t_summary; exit 1; }
check "first start: a full load" "1" "$(grep -c 'loaded directory at change' "$LOG")"
mr_stop
[ -s "$MR_SNAPSHOT" ] && ok "snapshot written at the stop" || notok "snapshot written at the stop"
SNAP_SEQ=$(sql -c "SELECT max(seq) FROM mailroster.change_log")

# restart LABEL: start with the probe running, wait until KEYS settle
# (fresh is found), stop the probe; sets PROBE (its output) and L2 (the
# log of this start)
restart() {
    local stop=$STACK_DIR/stop.$1 before
    before=$(wc -l <"$LOG")
    python3 "$TOP/tests/integration/restart_probe.py" "$PORT" "$stop" \
        "fresh@example.com" "gone@example.com" "u7@example.com" >"$STACK_DIR/probe.$1" &
    local probe=$!
    wait_for "test -e $stop.ready && echo yes" yes 30
    mr_start "$CONF" "$LOG" || notok "$1: mailrosterd starts"
    wait_for "code fresh@example.com" 200 10
    sleep 0.2
    touch "$stop"
    wait "$probe"
    PROBE=$(cat "$STACK_DIR/probe.$1")
    L2=$(tail -n +"$((before + 1))" "$LOG")
}
# answers KEY: the probe's sequence for KEY
answers() { sed -n "s/^$1 //p" <<<"$PROBE"; }
# no_temp_after_first SEQ: no 400 once something else was answered
no_temp_after_first() { sed 's/^400 //' <<<"$1" | grep -qw 400 && return 1; return 0; }

# --- bridged: changes made while the daemon was down come from the log ---------------
sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'fresh' FROM mailroster.domains" \
    -c "DELETE FROM mailroster.mailboxes WHERE local_part = 'gone'" >/dev/null
restart bridged
check "bridged: the snapshot is served, the change log brings it up to date" "1" \
    "$(grep -c "starting from snapshot file .* at change $SNAP_SEQ .*: the change log brings it up to date" <<<"$L2")"
check "bridged: no full load" "0" "$(grep -c 'loaded directory at change' <<<"$L2")"
a=$(answers u7@example.com)
case $a in 200|"400 200") ok "bridged: an unchanged mailbox is found from the first answer ($a)" ;;
    *) notok "bridged: u7 answers: $a" ;; esac
a=$(answers fresh@example.com)
case $a in 500|"500 200"|"400 500 200"|200|"400 200") ok "bridged: a new mailbox goes from the snapshot's answer to the database's ($a)" ;;
    *) notok "bridged: fresh answers: $a" ;; esac
no_temp_after_first "$a" && ok "bridged: no temporary failure after the first answer" || notok "bridged: TEMP after an answer: $a"
a=$(answers gone@example.com)
case $a in 200|"200 500"|"400 200 500"|500|"400 500") ok "bridged: a removed mailbox goes from found to not found ($a)" ;;
    *) notok "bridged: gone answers: $a" ;; esac
check "bridged: the end state is the database's" "200 500" "$(code fresh@example.com) $(code gone@example.com)"
mr_stop

# --- not bridged: the log was pruned past the snapshot's change ----------------------
SNAP2=$(sql -c "SELECT max(seq) FROM mailroster.change_log")
sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'later' FROM mailroster.domains" \
    -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'later2' FROM mailroster.domains" >/dev/null
LAST=$(sql -c "SELECT max(seq) FROM mailroster.change_log")
# prune every row before the newest one, as a retention job would
sql -c "DELETE FROM mailroster.change_log WHERE seq < $LAST" >/dev/null
check "the change log now starts after the snapshot's change" "yes" \
    "$([ "$(sql -c 'SELECT min(seq) FROM mailroster.change_log')" -gt $((SNAP2 + 1)) ] && echo yes || echo no)"
stop=$STACK_DIR/stop.pruned
before=$(wc -l <"$LOG")
python3 "$TOP/tests/integration/restart_probe.py" "$PORT" "$stop" "later@example.com" >"$STACK_DIR/probe.pruned" &
probe=$!
wait_for "test -e $stop.ready && echo yes" yes 30
mr_start "$CONF" "$LOG" || notok "pruned: mailrosterd starts"
wait_for "code later@example.com" 200 10
sleep 0.2
touch "$stop"
wait "$probe"
L2=$(tail -n +"$((before + 1))" "$LOG")
a=$(sed -n 's/^later@example.com //p' "$STACK_DIR/probe.pruned")
check "pruned: the snapshot is not used" "1" "$(grep -c 'snapshot file not used: the change log does not reach back' <<<"$L2")"
check "pruned: a full load" "1" "$(grep -c 'loaded directory at change' <<<"$L2")"
case $a in 200|"400 200") ok "pruned: never the stale snapshot's answer ($a)" ;; *) notok "pruned: later answers: $a" ;; esac
mr_stop

# --- PostgreSQL down: the snapshot is served as in any outage -----------------------
stack_pg_stop
before=$(wc -l <"$LOG")
mr_start "$CONF" "$LOG" || notok "down: mailrosterd starts"
check "down: starting from the snapshot" "1" "$(tail -n +"$((before + 1))" "$LOG" | grep -c 'PostgreSQL unavailable .*: starting from snapshot file')"
check "down: answers from it" "200" "$(code later@example.com)"
stack_pg_start_again || notok "PostgreSQL restarts"
sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'after' FROM mailroster.domains" >/dev/null
wait_for "code after@example.com" 200 40
check "down: back, it catches up" "200" "$(code after@example.com)"
mr_stop
if grep -q "ERROR: AddressSanitizer\|runtime error:" "$LOG"; then notok "no sanitizer report"; else ok "no sanitizer report"; fi
t_summary
