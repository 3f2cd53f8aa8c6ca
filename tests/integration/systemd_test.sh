#!/usr/bin/env bash
# systemd_test.sh - conf.d/systemd/mailrosterd.service and the notify
# protocol: the unit passes `systemd-analyze verify`, its exposure under
# `systemd-analyze security --offline=yes` is at most 2.0, and mailrosterd
# started with the unit's own ExecStart arguments tells the manager (a
# NOTIFY_SOCKET this test listens on: this machine has no systemd as PID 1)
# READY=1 only once a directory is served, STATUS= with what and from
# where, RELOADING=1 / READY=1 around SIGHUP, WATCHDOG=1 when asked, and
# STOPPING=1 on SIGTERM.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
UNIT=$TOP/conf.d/systemd/mailrosterd.service
. "$TOP/tests/integration/begin.sh" mr-systemd

# --- the unit file -----------------------------------------------------------------
# verify: the shipped unit with ExecStart pointing at this build
mkdir -p "$STACK_DIR/unit"
sed -e "s|/usr/sbin/mailrosterd|$MRD|g" "$UNIT" >"$STACK_DIR/unit/mailrosterd.service"
# (it loads the host's other units too: what they draw is theirs)
out=$(cd "$STACK_DIR/unit" && systemd-analyze verify --man=no ./mailrosterd.service 2>&1 | grep 'mailrosterd')
check "systemd-analyze verify: no complaint about mailrosterd.service" "" "$out"
bad=$(sed 's/^Type=notify$/Type=notfy/' "$STACK_DIR/unit/mailrosterd.service")
printf '%s\n' "$bad" >"$STACK_DIR/unit/broken.service"
out=$(cd "$STACK_DIR/unit" && systemd-analyze verify --man=no ./broken.service 2>&1 | grep -c 'broken.service')
check_cmd "... and it would complain about a broken copy ($out lines)" test "$out" -gt 0
mr_check_exposure "$UNIT" "systemd-analyze security"
grep -q '^Type=notify$' "$UNIT" && ok "Type=notify" || notok "Type=notify"
# the arguments ExecStart gives mailrosterd, to run them below
EXEC_ARGS=$(sed -n 's|^ExecStart=/usr/sbin/mailrosterd ||p' "$UNIT")
check "ExecStart runs mailrosterd in the foreground with the packaged config" \
    "-f -c /etc/mailroster/mailroster.conf" "$EXEC_ARGS"

# --- the notify protocol -------------------------------------------------------------
# a datagram listener standing in for the manager: one line per message,
# its fields joined with |
NSOCK=$STACK_DIR/notify
NLOG=$STACK_DIR/notify.log
mr_notify_listen "$NSOCK" "$NLOG" || exit 1

stack_pg_start || exit 1
mr_setup_db || exit 1
sql -c "INSERT INTO mailroster.domains (name) VALUES ('example.com')" \
    -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'a' || g FROM mailroster.domains, generate_series(1, 3) g" >/dev/null
CONF=$STACK_DIR/mailroster.conf
LOG=$STACK_DIR/mailrosterd.log
mr_write_conf "$CONF"
# ExecStart's arguments, with this test's configuration
ARGS=${EXEC_ARGS//\/etc\/mailroster\/mailroster.conf/$CONF}
# wait_line ERE: the notify log gets a matching line (10 s at most)
wait_line() {
    local i
    for i in $(seq 1 200); do grep -Eq -- "$1" "$NLOG" && return 0; sleep 0.05; done
    return 1
}
# shellcheck disable=SC2086
NOTIFY_SOCKET=$NSOCK WATCHDOG_USEC=1000000 "$MRD" $ARGS >>"$LOG" 2>&1 &
PID=$!
STACK_PIDS+=("$PID")
wait_line '^READY=1' && ok "READY=1" || notok "READY=1 (log: $(cat "$NLOG"))"
check "READY comes with STATUS: 3 mailboxes from PostgreSQL" "1" \
    "$(grep -c '^READY=1|STATUS=serving 3 mailboxes, 0 aliases from PostgreSQL, at change [0-9]*$' "$NLOG")"
check "READY=1 was said once" "1" "$(grep -c 'READY=1' "$NLOG")"
wait_line '^WATCHDOG=1$' && ok "WATCHDOG=1 with WATCHDOG_USEC set" || notok "WATCHDOG=1"

sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'b' FROM mailroster.domains" >/dev/null
wait_line '^STATUS=serving 4 mailboxes' && ok "STATUS follows a change" || notok "STATUS after a change: $(tail -3 "$NLOG")"

: >"$NLOG"
kill -HUP "$PID"
wait_line '^READY=1$' && ok "SIGHUP: READY=1 again" || notok "SIGHUP: READY=1 ($(cat "$NLOG"))"
check "SIGHUP: RELOADING=1 before READY=1" "RELOADING=1 READY=1" \
    "$(grep -E '^(RELOADING|READY)=1$' "$NLOG" | head -2 | tr '\n' ' ' | sed 's/ $//')"

stack_pg_stop
wait_line '^STATUS=serving 4 mailboxes, 0 aliases from memory, at change [0-9]*; PostgreSQL unavailable' &&
    ok "STATUS: PostgreSQL down, serving from memory" || notok "STATUS with PostgreSQL down: $(tail -3 "$NLOG")"
stack_pg_start_again || notok "PostgreSQL restarts"
wait_line 'STATUS=serving 4 mailboxes, 0 aliases from PostgreSQL' && ok "STATUS: PostgreSQL back" || notok "STATUS: back"

: >"$NLOG"
kill -TERM "$PID"
wait "$PID" 2>/dev/null
check "SIGTERM: STOPPING=1" "1" "$(grep -c '^STOPPING=1$' "$NLOG")"

# --- no directory, no READY ----------------------------------------------------------
# PostgreSQL down and no snapshot file: the daemon answers temporary
# failures, but does not tell the manager it is ready
stack_pg_stop
rm -f "$MR_SNAPSHOT"
: >"$NLOG"
# shellcheck disable=SC2086
NOTIFY_SOCKET=$NSOCK "$MRD" $ARGS >>"$LOG" 2>&1 &
PID=$!
STACK_PIDS+=("$PID")
wait_line '^STATUS=no directory yet' && ok "no directory: STATUS says so" || notok "no directory: STATUS ($(cat "$NLOG"))"
# the daemon has given up on a first load and said why (startup_timeout)
for _ in $(seq 1 200); do grep -q "answering temporary failures" "$LOG" && break; sleep 0.05; done
check "no directory: no READY=1" "0" "$(grep -c 'READY=1' "$NLOG")"
stack_pg_start_again || notok "PostgreSQL restarts"
wait_line '^READY=1[|]STATUS=serving 4 mailboxes' && ok "PostgreSQL back: READY=1 with the directory" || notok "READY after PostgreSQL came back: $(cat "$NLOG")"
kill -TERM "$PID"
wait "$PID" 2>/dev/null
t_summary
