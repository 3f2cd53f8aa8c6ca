#!/usr/bin/env bash
# tests/bench/e2e_mail.sh - mail through a real private Postfix, end to end:
# smtp-source (SESSIONS parallel sessions, MESSAGES messages, each to a
# different mailbox: -N) -> Postfix smtpd on port 25 -> cleanup, qmgr ->
# lmtp -> an smtp-sink in LMTP mode. The same Postfix, in turn, with
#   pgsql      the maps a sysop writes today: pgsql: on the primary keys
#              (domains, mailboxes, aliases), no policy service
#   mailroster socketmap: maps from mailrosterd, and its policy service at
#              RCPT (check_policy_service after reject_unauth_destination:
#              recipient disabled / may not receive / over quota)
#   minimal    socketmap: maps from mini_server (an in-memory epoll server
#              with no Postfix table semantics: the ceiling), no policy
# Messages/s from smtp-source's start to the last "status=sent" in
# Postfix's log; the best of REPEAT rounds, configurations interleaved
# (their order turned by one each round), and each round's ratio.
# Server CPU: mailrosterd's (or PostgreSQL's, or mini_server's) per
# message. Nothing is asserted.
#
# CONTROL=1: a fourth configuration, "minimal2", the minimal one again
# against a second mini_server (the same program and data), in the same
# turns: its ratio to minimal, round by round, is how far two identical
# configurations differ on this machine at that time (the resolution of a
# round's ratio).
#
#   tests/bench/e2e_mail.sh       (as root)
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TOP/tests/bench/benchlib.sh"
bench_init e2e_mail
MESSAGES=${MESSAGES:-3000}
SESSIONS=${SESSIONS:-10}
REPEAT=${REPEAT:-2}
CONTROL=${CONTROL:-0}
STACK_KEEP=${STACK_KEEP:-0}
N_MAILBOXES=$(( MESSAGES + 1000 ))

gcc -O2 -Wall -o "$STACK_DIR/mini_server" "$TOP/tests/bench/mini_server.c" || exit 1
bench_db
sql <<SQL >/dev/null
INSERT INTO mailroster.domains (name) VALUES ('example.com');
INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT d.id, g || 'u' FROM mailroster.domains d, generate_series(1, $N_MAILBOXES) g;
INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
  SELECT d.id, 'alias' || g, ARRAY[g || 'u@example.com'] FROM mailroster.domains d, generate_series(1, 1000) g;
SQL
sql -c "VACUUM ANALYZE" >/dev/null

# mailrosterd: socketmap and policy on unix sockets Postfix's (unchrooted)
# daemons reach
P_POL=$STACK_DIR/mr/policy
CONF=$STACK_DIR/mailroster.conf
mr_write_conf "$CONF" "policy_listen = unix:$P_POL"
bench_mr_start "$CONF"
chmod 755 "$STACK_DIR" "$STACK_DIR/mr"

# mini_server: the same answers for the keys Postfix asks
{
    echo -e "domains example.com\texample.com"
    sql -c "SELECT 'mailboxes ' || m.local_part || '@example.com' || chr(9) || m.maildir FROM mailroster.mailboxes m"
    sql -c "SELECT 'aliases ' || a.local_part || '@example.com' || chr(9) || array_to_string(a.destinations, ',') FROM mailroster.aliases a"
} >"$STACK_DIR/mini.tab"
bench_mini_start mini -M -f "$STACK_DIR/mini.tab" -s "unix:$STACK_DIR/mini.smap"
MINI_PID=$MINI_STARTED
MINI2_PID=
if [ "$CONTROL" = 1 ]; then
    bench_mini_start mini2 -M -f "$STACK_DIR/mini.tab" -s "unix:$STACK_DIR/mini2.smap"
    MINI2_PID=$MINI_STARTED
fi

# pgsql maps on the primary keys, as the daemon's read-only role
sql -c "ALTER ROLE mrd PASSWORD 'mrd'" >/dev/null
PGM=$STACK_DIR/pgmaps
mkdir -p "$PGM"
pgcf() { printf 'hosts = 127.0.0.1:%s\nuser = mrd\npassword = mrd\ndbname = %s\nquery = %s\n' "$STACK_PG_PORT" "$MR_DB" "$2" >"$PGM/$1.cf"; }
pgcf domains "SELECT name FROM mailroster.domains WHERE name = '%s' AND enabled"
pgcf mailboxes "SELECT m.maildir FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id WHERE d.name = '%d' AND m.local_part = '%u' AND m.enabled AND m.may_receive AND d.enabled"
pgcf aliases "SELECT array_to_string(a.destinations, ',') FROM mailroster.aliases a JOIN mailroster.domains d ON d.id = a.domain_id WHERE d.name = '%d' AND a.local_part = '%u' AND a.enabled AND d.enabled"
chmod 755 "$PGM"; chmod 644 "$PGM"/*.cf

# the LMTP sink
SINK_PORT=$(stack_free_port)
smtp-sink -u nobody -L -c "127.0.0.1:$SINK_PORT" 256 >"$STACK_DIR/sink.out" 2>&1 &
STACK_PIDS+=("$!")
stack__wait_port "$SINK_PORT" 10 || { echo "smtp-sink did not start" >&2; exit 1; }

common="virtual_transport = lmtp:inet:127.0.0.1:$SINK_PORT
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
lmtp_destination_concurrency_limit = 20
default_process_limit = 100"
conf_of() { # NAME: the main.cf lines of one configuration
    case $1 in
    pgsql) printf '%s\n' "virtual_mailbox_domains = pgsql:$PGM/domains.cf" \
        "virtual_mailbox_maps = pgsql:$PGM/mailboxes.cf" "virtual_alias_maps = pgsql:$PGM/aliases.cf" \
        "smtpd_recipient_restrictions = reject_unauth_destination" ;;
    mailroster) local s="socketmap:unix:$MR_SMAP_UNIX"
        printf '%s\n' "virtual_mailbox_domains = $s:domains" "virtual_mailbox_maps = $s:mailboxes" \
        "virtual_alias_maps = $s:aliases" \
        "smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service { unix:$P_POL, timeout=10s, default_action=DUNNO }" ;;
    minimal | minimal2) local s="socketmap:unix:$STACK_DIR/mini.smap"
        [ "$1" = minimal2 ] && s="socketmap:unix:$STACK_DIR/mini2.smap"
        printf '%s\n' "virtual_mailbox_domains = $s:domains" "virtual_mailbox_maps = $s:mailboxes" \
        "virtual_alias_maps = $s:aliases" "smtpd_recipient_restrictions = reject_unauth_destination" ;;
    esac
}
server_pid() { case $1 in mailroster) echo "$MR_PID" ;; minimal) echo "$MINI_PID" ;; minimal2) echo "$MINI2_PID" ;; esac; }

count_sent() { local n; n=$(grep -c 'status=sent' "$STACK_POSTFIX_LOG" 2>/dev/null); echo "${n:-0}"; }
declare -A BEST BEST_CPU RATE_OF
run() { # NAME ROUND
    local name=$1 t0 t1 sent c0 c1 pid
    stack_postfix_start "$common
$(conf_of "$name")" || { echo "Postfix ($name) did not start" >&2; exit 1; }
    # every map answers before the clock starts
    for m in domains mailboxes; do postmap -c "$STACK_POSTFIX_CONF" -q "$([ $m = domains ] && echo example.com || echo 1u@example.com)" \
        "$(postconf -c "$STACK_POSTFIX_CONF" -h virtual_mailbox_"$([ $m = domains ] && echo domains || echo maps)")" >/dev/null ||
        { echo "$name: the $m map does not answer" >&2; exit 1; }; done
    local before
    before=$(count_sent)
    pid=$(server_pid "$name")
    c0=0; [ -n "$pid" ] && c0=$(proc_ticks "$pid"); [ "$name" = pgsql ] && c0=$(pg_ticks)
    t0=$(now_us)
    # -N: recipients 1u@, 2u@, ... (a lookup per message, no cache hit)
    taskset -c "$CLIENT_CPU" smtp-source -N -s "$SESSIONS" -m "$MESSAGES" -f sender@remote.example \
        -t "u@example.com" "127.0.0.1:$STACK_SMTP_PORT" 2>"$STACK_DIR/source.err" || true
    local deadline=$(( $(now_us) + 300000000 ))
    while :; do
        sent=$(( $(count_sent) - before ))
        [ "$sent" -ge "$MESSAGES" ] && break
        [ "$(now_us)" -gt "$deadline" ] && { echo "$name: only $sent of $MESSAGES delivered" >&2; break; }
        sleep 0.05
    done
    t1=$(now_us)
    c1=0; [ -n "$pid" ] && c1=$(proc_ticks "$pid"); [ "$name" = pgsql ] && c1=$(pg_ticks)
    local rate cpu
    rate=$(awk -v n="$sent" -v us=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (us / 1e6) }')
    cpu=$(ticks_to_us_per $((c1 - c0)) "$sent")
    bench_note "$name, round $2: $sent messages in $(( (t1 - t0) / 1000 )) ms = $rate msg/s, server CPU $cpu µs/message;" \
        "rejected: $(grep -c 'NOQUEUE: reject' "$STACK_POSTFIX_LOG" 2>/dev/null)"
    RATE_OF[$name.$2]=$rate
    if [ -z "${BEST[$name]:-}" ] || [ "$rate" -gt "${BEST[$name]}" ]; then
        BEST[$name]=$rate
        BEST_CPU[$name]=$cpu
    fi
    stack_postfix_stop
    mv "$STACK_POSTFIX_LOG" "$STACK_POSTFIX_LOG.$name.$2"
}
# The order turns by one each round, so that no configuration always runs
# right after the same one (after pgsql's run, PostgreSQL's and the page
# cache's state is not what it was before it).
for round in $(seq 1 "$REPEAT"); do
    # shellcheck disable=SC2046,SC2086  # configuration names: words without spaces
    for name in $(turned "$round" ${CONFIGS:-pgsql mailroster minimal} $([ "$CONTROL" = 1 ] && echo minimal2)); do
        run "$name" "$round"
    done
done

echo
echo "end to end: smtp-source ($SESSIONS sessions, $MESSAGES messages, one fresh mailbox each) -> Postfix -> LMTP sink"
# (a configuration left out of CONFIGS shows "-")
for name in pgsql mailroster minimal; do BEST[$name]=${BEST[$name]:--} BEST_CPU[$name]=${BEST_CPU[$name]:--}; done
bench_row "pgsql maps (primary keys), no policy" "${BEST[pgsql]}" "1.00" "$(ratio "${BEST[pgsql]}" "${BEST[minimal]}")" "${BEST_CPU[pgsql]} (PostgreSQL)"
bench_row "mailroster socketmap maps + policy at RCPT" "${BEST[mailroster]}" "$(ratio "${BEST[mailroster]}" "${BEST[pgsql]}")" \
    "$(ratio "${BEST[mailroster]}" "${BEST[minimal]}")" "${BEST_CPU[mailroster]} (mailrosterd)"
bench_row "minimal server socketmap maps, no policy" "${BEST[minimal]}" "$(ratio "${BEST[minimal]}" "${BEST[pgsql]}")" "1.00" "${BEST_CPU[minimal]} (mini_server)"
bench_table "configuration" "msg/s" "vs pgsql" "vs minimal" "server CPU µs/msg"
if [ -n "${RATE_OF[mailroster.1]:-}" ] && [ -n "${RATE_OF[minimal.1]:-}" ]; then
    rs=""
    for round in $(seq 1 "$REPEAT"); do
        rs+=" $(ratio "${RATE_OF[mailroster.$round]}" "${RATE_OF[minimal.$round]}")"
    done
    echo "mailroster / minimal msg/s, round by round:$rs; median $(median_of $rs)"
fi
if [ "$CONTROL" = 1 ] && [ -n "${RATE_OF[minimal2.1]:-}" ] && [ -n "${RATE_OF[minimal.1]:-}" ]; then
    rs=""
    for round in $(seq 1 "$REPEAT"); do
        rs+=" $(ratio "${RATE_OF[minimal2.$round]}" "${RATE_OF[minimal.$round]}")"
    done
    # shellcheck disable=SC2086  # the rounds' ratios, one word each
    echo "control, minimal2 / minimal msg/s (the same configuration twice), round by round:$rs; median $(median_of $rs)"
fi
echo
bench_footer
