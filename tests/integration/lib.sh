# shellcheck shell=bash
# tests/integration/lib.sh - what the mailroster integration tests share:
# TAP-style assertions, a database with the schema and roles, and a
# mailrosterd on private ports. Source after scripts/lib/stack.sh.
#
# Needs: TOP (the source tree), MRD (the mailrosterd binary), STACK_DIR.

T_PASS=0
T_FAIL=0

ok() { T_PASS=$((T_PASS + 1)); echo "ok - $*"; }
notok() { T_FAIL=$((T_FAIL + 1)); echo "not ok - $*"; }
# check DESCRIPTION EXPECTED ACTUAL
check() {
    if [ "$2" = "$3" ]; then ok "$1"; else notok "$1: expected [$2], got [$3]"; fi
}
# check_cmd DESCRIPTION CMD...: passes when CMD succeeds
check_cmd() {
    local what=$1; shift
    if "$@"; then ok "$what"; else notok "$what"; fi
}
t_summary() {
    echo "$T_PASS passed, $T_FAIL failed"
    [ "$T_FAIL" -eq 0 ]
}

# psql as the superuser, on the test database
sql() { psql -X -q -v ON_ERROR_STOP=1 -At -d "${MR_DB:-mailroster}" "$@"; }

# lock_mailbox_row LOCAL DOMAIN: a psql session, the coprocess LK, holds
# the mailbox's row FOR UPDATE in an open transaction until the caller
# writes COMMIT or ROLLBACK to ${LK[1]}; its PID in lk_pid (bash unsets
# LK_PID as soon as the coprocess ends, which it does when its input is
# closed: keep it for the wait), its first answer ("locked") in LK_LINE.
lock_mailbox_row() {
    coproc LK { psql -X -q -At -d "${MR_DB:-mailroster}" 2>&1; }
    lk_pid=$LK_PID
    echo "BEGIN; SELECT 'locked' FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id
        WHERE m.local_part = '$1' AND d.name = '$2' FOR UPDATE;" >&"${LK[1]}"
    LK_LINE=
    read -r -t 20 LK_LINE <&"${LK[0]}"
}

# mr_setup_db: database "mailroster" with schema, roles, and two login
# roles: mrd (the daemon: mailroster_reader) and mradm (mailroster_admin).
mr_setup_db() {
    MR_DB=mailroster
    stack_pg_createdb "$MR_DB"
    sql -f "$TOP/sql/schema.sql" >/dev/null
    sql -f "$TOP/sql/roles.sql" >/dev/null
    sql -c "CREATE ROLE mrd LOGIN IN ROLE mailroster_reader" \
        -c "CREATE ROLE mradm LOGIN IN ROLE mailroster_admin"
}

# admin_sql: psql as the admin role (what provisioning uses)
admin_sql() { psql -X -q -v ON_ERROR_STOP=1 -At -U mradm -d "$MR_DB" "$@"; }

# mr_write_conf FILE [extra lines...]: a mailrosterd config on free ports;
# sets MR_TCP_DOMAINS.. MR_TCP_SENDERS (ports), MR_SMAP_UNIX, MR_SMAP_PORT.
mr_write_conf() {
    local f=$1; shift
    MR_TCP_DOMAINS=$(stack_free_port)
    MR_TCP_MAILBOXES=$(stack_free_port)
    MR_TCP_ALIASES=$(stack_free_port)
    MR_TCP_SENDERS=$(stack_free_port)
    MR_SMAP_PORT=$(stack_free_port)
    MR_SMAP_UNIX=$STACK_DIR/mr/socketmap
    MR_SNAPSHOT=$STACK_DIR/mr/directory.snapshot
    mkdir -p "$STACK_DIR/mr"
    chmod 755 "$STACK_DIR/mr"
    {
        echo "# mailrosterd test configuration"
        echo "database = host=$PGHOST port=$PGPORT dbname=$MR_DB user=mrd"
        echo "snapshot_file = $MR_SNAPSHOT"
        echo "tcp_table_domains = 127.0.0.1:$MR_TCP_DOMAINS"
        echo "tcp_table_mailboxes = 127.0.0.1:$MR_TCP_MAILBOXES"
        echo "tcp_table_aliases = 127.0.0.1:$MR_TCP_ALIASES"
        echo "tcp_table_senders = 127.0.0.1:$MR_TCP_SENDERS"
        echo "socketmap_listen = unix:$MR_SMAP_UNIX,"
        echo "    inet:127.0.0.1:$MR_SMAP_PORT"
        for l in "$@"; do echo "$l"; done
    } >"$f"
}

# mr_start CONF LOG: start mailrosterd in the foreground, in the background
# of this shell; waits until it has a directory (from the database or the
# snapshot file). Sets MR_PID.
mr_start() {
    local conf=$1 log=$2 i
    : >>"$log"
    local before
    before=$(wc -l <"$log")
    ${MRD_WRAP:-} "$MRD" -f -c "$conf" >>"$log" 2>&1 &
    MR_PID=$!
    STACK_PIDS+=("$MR_PID")
    for i in $(seq 1 200); do
        if tail -n +"$((before + 1))" "$log" | grep -qE 'loaded directory|starting from snapshot|answering temporary failures'; then
            return 0
        fi
        if ! kill -0 "$MR_PID" 2>/dev/null; then
            echo "mailrosterd died:" >&2
            tail -n 20 "$log" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "mailrosterd did not load a directory in 10 s" >&2
    tail -n 20 "$log" >&2
    return 1
}

# mr_stop: SIGTERM and wait
mr_stop() {
    kill -TERM "$MR_PID" 2>/dev/null || true
    wait "$MR_PID" 2>/dev/null || true
}

# lookups through postmap, the client sysops test with
q_tcp() { # MAP KEY
    local port
    case $1 in
        domains) port=$MR_TCP_DOMAINS ;; mailboxes) port=$MR_TCP_MAILBOXES ;;
        aliases) port=$MR_TCP_ALIASES ;; senders) port=$MR_TCP_SENDERS ;;
    esac
    postmap -q "$2" "tcp:127.0.0.1:$port" 2>/dev/null || echo "(not found)"
}
q_smap() { postmap -q "$2" "socketmap:unix:$MR_SMAP_UNIX:$1" 2>/dev/null || echo "(not found)"; }
q_smap_inet() { postmap -q "$2" "socketmap:inet:127.0.0.1:$MR_SMAP_PORT:$1" 2>/dev/null || echo "(not found)"; }

# wait_for CMD EXPECTED TIMEOUT_S: poll until CMD prints EXPECTED
wait_for() {
    local deadline=$(( $(date +%s%N) + $3 * 1000000000 ))
    while [ "$(date +%s%N)" -lt "$deadline" ]; do
        [ "$(eval "$1")" = "$2" ] && return 0
        sleep 0.02
    done
    return 1
}

# peer_close ADDR TIMEOUT_S: send stdin on one connection to ADDR (HOST:PORT,
# or the path of a unix socket) without ever shutting down our side, then
# wait for the peer. Prints what happened, so a caller can tell them apart:
#   "closed"             the peer closed (EOF, or a reset) having sent nothing
#   "closed after N bytes: ..." / "open after N bytes: ..." it answered
#   "timed out"          the connection was still open after TIMEOUT_S
#   "error: ..."         no connection (refused, no such socket, ...)
# Our side stays open: an EOF can only be the peer's own doing.
peer_close() {
    python3 -c '
import select, socket, sys, time
addr, limit = sys.argv[1], float(sys.argv[2])
data = sys.stdin.buffer.read()
try:
    if addr.startswith("/"):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(limit)
        s.connect(addr)
    else:
        host, port = addr.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=limit)
except OSError as e:
    print("error: connect: %s" % e)
    sys.exit(0)
s.setblocking(False)
got, closed = b"", False
deadline = time.monotonic() + limit
while not closed:
    left = deadline - time.monotonic()
    if left <= 0:
        break
    r, w, _ = select.select([s], [s] if data else [], [], left)
    if w:
        try:
            data = data[s.send(data):]
        except BlockingIOError:
            pass
        except OSError:      # the peer closed: stop sending, read what it sent
            data = b""
    if r:
        try:
            b = s.recv(65536)
        except BlockingIOError:
            continue
        except OSError:      # a reset: closed
            b = b""
        if not b:
            closed = True
        got += b
if got:
    print("%s after %d bytes: %r" % ("closed" if closed else "open", len(got), got[:200]))
else:
    print("closed" if closed else "timed out")
' "$1" "$2"
}

# mr_notify_listen SOCK LOG: a datagram socket standing in for systemd's
# notify socket (mode 0666: the daemon may run as another user); each
# message becomes one line of LOG, its fields joined with |. The listener's
# PID goes to STACK_PIDS; returns once the socket exists.
mr_notify_listen() {
    : >"$2"
    python3 - "$1" "$2" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        data = s.recv(65536).decode("utf-8", "replace")
        log.write(data.strip("\n").replace("\n", "|") + "\n")
PY
    STACK_PIDS+=("$!")
    for _ in $(seq 1 100); do [ -S "$1" ] && return 0; sleep 0.05; done
    return 1
}

# mr_check_exposure UNIT LABEL: systemd-analyze's offline security score of
# UNIT (mailrosterd.service) is at most 2.0 (issue goal), one check.
mr_check_exposure() {
    local e
    e=$(systemd-analyze security --offline=yes "$1" 2>/dev/null |
        sed -n 's/.*Overall exposure level for mailrosterd.service: \([0-9.]*\).*/\1/p')
    if [ -n "$e" ] && awk -v e="$e" 'BEGIN { exit !(e <= 2.0) }'; then
        ok "$2: exposure $e <= 2.0"
    else
        notok "$2: exposure <= 2.0: got [$e]"
    fi
}
