#!/usr/bin/env bash
# hostile_test.sh - clients that try to starve mailrosterd: one that sends
# without ever reading its answers, 2,000 idle connections on one listener,
# one that trickles a request an octet at a time, and a LIST its client
# does not read. Each must cost bounded memory, and every other listener
# and every other client must still be answered.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
. "$TOP/tests/integration/begin.sh" mr-hostile
HC="python3 $TOP/tests/integration/hostile_client.py"
# under ASan, freed memory waits in a quarantine (256 MB by default) that
# would count as the daemon's: keep it small so RSS measures what we hold
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4"
T=$'\t'

stack_pg_start || { notok "PostgreSQL starts"; t_summary; exit 1; }
mr_setup_db
admin_sql <<'SQL' >/dev/null
INSERT INTO mailroster.domains (name) VALUES ('example.test');
INSERT INTO mailroster.mailboxes (domain_id, local_part)
SELECT d.id, 'user' || g FROM mailroster.domains d, generate_series(1, 3000) g;
SQL
MBOXES=$(sql -c "SELECT count(*) FROM mailroster.mailboxes WHERE enabled")

POL_PORT=$(stack_free_port)
AUTH=$STACK_DIR/mr/auth
ADMIN=$STACK_DIR/mr/admin
CONF=$STACK_DIR/mr/mailroster.conf
LOG=$STACK_DIR/mr/mailrosterd.log
mr_write_conf "$CONF" \
    "policy_listen = inet:127.0.0.1:$POL_PORT" \
    "auth_socket = $AUTH" \
    "admin_socket = $ADMIN" \
    "request_timeout = 3s" \
    "output_buffer_limit = 16384"
mr_start "$CONF" "$LOG" || { notok "mailrosterd starts"; t_summary; exit 1; }

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$MR_PID/status"; }
hwm_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$MR_PID/status"; }
status() { MAILROSTER_SOCKET=$ADMIN "$(dirname "$MRD")/mailroster" status 2>/dev/null | awk -v k="$1" '$1 == k { print $2 }'; }

# Expectations written here, not asked of the daemon: the domain exists,
# a mailbox exists, the policy service lets an unauthenticated message to
# an existing mailbox pass.
POLICY_REQ='request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=SMTP\nclient_address=192.0.2.1\nsender=a@remote.example\nrecipient=user1@example.test\n\n'
others_answered() { # LABEL
    check "$1: tcp_table from another address answers" "200 example.test" \
        "$($HC ask "127.0.0.1:$MR_TCP_DOMAINS" 'get example.test\n' 127.0.0.2)"
    check "$1: socketmap answers" "example.test" "$(q_smap domains example.test)"
    check "$1: policy answers" "action=DUNNO" "$($HC ask "127.0.0.1:$POL_PORT" "$POLICY_REQ")"
    check "$1: auth answers" "7${T}OK${T}user=user2@example.test" \
        "$($HC ask "unix:$AUTH" 'VERSION\t1\t0\n7\tUSER\tuser2@example.test\timap\n' | tail -1 | cut -f1-3)"
    check "$1: admin answers" "loaded" "$(status directory)"
}

# --- 1. a client that sends and never reads ------------------------------------
rss0=$(rss_kb)
FLOOD_HOLD=4 $HC flood "127.0.0.1:$MR_TCP_DOMAINS" 20 300000000 >"$STACK_DIR/flood.out" &
flood_pid=$!
sleep 1
others_answered "while a client floods without reading"
wait "$flood_pid"
sent=$(cat "$STACK_DIR/flood.out")
growth=$(( ($(hwm_kb) - rss0) / 1024 ))
echo "# flood: the daemon took ${sent} octets, peak RSS growth ${growth} MB"
check_cmd "a client that never reads stays bounded (peak RSS growth ${growth} MB < 64 MB)" \
    test "$growth" -lt 64
check_cmd "the daemon stopped reading it (took ${sent} of 300000000 octets)" test "$sent" -lt 100000000
check_cmd "stats count the pause" test "$(status output_paused)" -ge 1

# --- 2. 2,000 idle connections on one listener -----------------------------------
$HC hold "127.0.0.1:$MR_TCP_DOMAINS" 2000 15 >"$STACK_DIR/hold.out" &
hold_pid=$!
for _ in $(seq 1 100); do [ -s "$STACK_DIR/hold.out" ] && break; sleep 0.1; done
held=$(cat "$STACK_DIR/hold.out")
check "one peer holds at most max_connections_per_peer (500)" "500" "$held"
others_answered "2,000 idle connections on tcp_table"
check_cmd "the refusals are counted" test "$(status connections_refused_per_peer)" -ge 1500
lines=$(grep -c 'max_connections_per_peer (500) reached' "$LOG")
check_cmd "the refusals are logged, not flooding the log ($lines lines)" test "$lines" -ge 1 -a "$lines" -le 3
kill "$hold_pid" 2>/dev/null
wait "$hold_pid" 2>/dev/null

# --- 3. a request that trickles in ----------------------------------------------
took=$($HC trickle "127.0.0.1:$MR_TCP_DOMAINS" 0.5 15)
# request_timeout is 3 s: closed (not "open", not a client error) after 3 s,
# seen at the client's next byte (every 0.5 s), not much later
case $took in
    [0-9]*.[0-9]) if awk -v t="$took" 'BEGIN { exit !(t >= 3.0 && t <= 6.0) }'; then
            ok "a trickled request is cut off at request_timeout (closed after ${took} s)"
        else notok "a trickled request is cut off at request_timeout (3 s): closed after ${took} s"; fi ;;
    *) notok "a trickled request is cut off at request_timeout: the client says [$took]" ;;
esac
grep -q 'request not complete within request_timeout (3 s)' "$LOG"
check_cmd "the cut-off is logged" test $? -eq 0

# --- 4. a LIST whose client does not read -----------------------------------------
out=$($HC auth-list "$AUTH" 2)
check "auth LIST, read late, is whole and in order" "rows=$MBOXES end=1 after_end=2 NOTFOUND" "$out"
check_cmd "still answering after it" test "$(q_smap domains example.test)" = "example.test"

kill -0 "$MR_PID" 2>/dev/null
check_cmd "mailrosterd still runs" test $? -eq 0
mr_stop
t_summary
