#!/usr/bin/env bash
# suspend_test.sh - a compromised account's sending suspended (issue 12),
# the admin commands for limit windows, and counters pruned with their
# mailbox; through a real private Postfix with Dovecot SASL (set up as
# ratelimit_test.sh does), the raw policy protocol where Postfix cannot
# drive it precisely, and two mailrosterd on one database.
#
# What is expected is written here from mailrosterd(8) SUSPENDED SENDING,
# mailroster(1) and migration 0006: N refusals by send_admit within T
# suspend the account; its mail is then answered "HOLD sending suspended
# for <login>: REASON" and sits in Postfix's hold queue; receiving and
# IMAP keep working; "user unsuspend" lifts it.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
. "$TOP/tests/integration/begin.sh" mr-suspend mrstack

id -u mrbbs >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin mrbbs
POL_PORT=$(stack_free_port)
MRS_CONF_EXTRA="policy_listen = inet:127.0.0.1:$POL_PORT
policy_db_timeout = 5s
admin_socket_mode = 0666
admin_allow_domain = mrbbs:example.test"
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
smtpd_recipient_restrictions = check_policy_service { inet:127.0.0.1:$POL_PORT, timeout=10s, default_action=DUNNO }
smtpd_end_of_data_restrictions = check_policy_service { inet:127.0.0.1:$POL_PORT, timeout=10s, default_action=DUNNO }" \
    || { notok "Dovecot and Postfix start"; t_summary; exit 1; }
PFC=$STACK_DIR/postfix/etc

# A second mailrosterd on the same database: policy only.
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

# Every account 1 message per hour (the domain's window); mal is the
# compromised one, rcv receives, calm stays below N, early is hammered
# while suspension is off.
mrs_cli domain add example.test send_limit_messages=1 send_limit_window=1h >/dev/null
for u in mal rcv calm early held; do
    echo "pw-$u" | mrs_cli user add "$u@example.test" --password-stdin --scheme sha512 >/dev/null || notok "user add $u"
    h=$(mrs_home "$u@example.test") && [ -n "$h" ] || notok "Dovecot's home of $u"
    eval "HOME_$u=\$h"
done
mrs_cli user set rcv@example.test send_limit_messages=1000 >/dev/null

# send FROM LOGIN TO SUBJECT: 250 when queued, else the first refusal
send() {
    local out
    out=$(swaks --server "127.0.0.1:$STACK_SMTP_PORT" --from "$1" --to "$3" \
        --auth PLAIN --auth-user "$2" --auth-password "pw-${2%@*}" \
        --h-Subject "$4" --body "test" --timeout 30 2>&1)
    if echo "$out" | grep -q "queued as"; then echo 250; return; fi
    echo "$out" | grep -E '^<\** +[45][0-9]{2} ' | grep -v 'Authentication' | head -1 | sed -E 's/^<\** +//'
}
# ask HOST:PORT STATE LOGIN: one raw policy request, its answer
ask() {
    python3 - "$1" "$2" "$3" <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
state, login = sys.argv[2], sys.argv[3]
s = socket.create_connection((host, int(port)), timeout=20)
rcpt = "rcv@example.test" if state == "RCPT" else ""
s.sendall(("request=smtpd_access_policy\nprotocol_state=%s\nprotocol_name=ESMTP\nclient_address=127.0.0.1\n"
           "sender=%s\nrecipient=%s\nrecipient_count=1\nqueue_id=RAW1\nsasl_method=PLAIN\nsasl_username=%s\n\n"
           % (state, login, rcpt, login)).encode())
got = b""
while not got.endswith(b"\n\n"):
    b = s.recv(4096)
    if not b:
        break
    got += b
print(got.decode().strip())
PY
}
# held SENDER: queue IDs of SENDER's messages in the hold queue, found
# the way mailroster(1) tells a sysop to (postqueue -j and jq)
held() {
    postqueue -c "$PFC" -j | jq -r --arg s "$1" 'select(.queue_name == "hold" and .sender == $s) | .queue_id' | sort
}
suspended() { sql -c "SELECT coalesce(send_suspended_reason, '-') FROM mailroster.mailboxes m WHERE m.local_part = '$1'"; }
field() { mrs_cli -f json user show "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)[0].get('$2', '(absent)'))"; }
DEFER="action=450 4.7.1 Sending limit reached for"

# --- off by default --------------------------------------------------------------------------
check "suspension is off by default (settings)" "0|3600" \
    "$(sql -c "SELECT suspend_after_hits || '|' || suspend_hits_within FROM mailroster.settings")"
ask "127.0.0.1:$POL_PORT" END-OF-MESSAGE early@example.test >/dev/null
r=""
for i in 1 2 3 4 5 6; do r="$r$(ask "127.0.0.1:$POL_PORT" END-OF-MESSAGE early@example.test | cut -c1-${#DEFER})|"; done
check "off: six refusals are six deferrals" "$(printf '%s|' "$DEFER" "$DEFER" "$DEFER" "$DEFER" "$DEFER" "$DEFER")" "$r"
check "off: not suspended, no hits kept" "-|0" "$(suspended early)|$(sql -c "SELECT count(*) FROM mailroster.send_hits")"

# --- on: 3 refusals within 1 h -----------------------------------------------------------------
sql -c "UPDATE mailroster.settings SET suspend_after_hits = 3, suspend_hits_within = 3600"
# below N: calm is refused twice, nothing happens
ask "127.0.0.1:$POL_PORT" END-OF-MESSAGE calm@example.test >/dev/null
ask "127.0.0.1:$POL_PORT" END-OF-MESSAGE calm@example.test >/dev/null
ask "127.0.0.1:$POL2" END-OF-MESSAGE calm@example.test >/dev/null
check "below N: 2 refusals leave the account as it was" "-|2" \
    "$(suspended calm)|$(sql -c "SELECT count(*) FROM mailroster.send_hits h JOIN mailroster.mailboxes m ON m.id = h.mailbox_id WHERE m.local_part = 'calm'")"
check "the third refusal (N = 3, one host or another) is held" \
    "action=HOLD sending suspended for <calm@example.test>: 3 sending-limit refusals within 3600 s (the last: 1 messages per 3600 s)" \
    "$(ask "127.0.0.1:$POL2" END-OF-MESSAGE calm@example.test)"
check "... and suspends the account" "3 sending-limit refusals within 3600 s (the last: 1 messages per 3600 s)" "$(suspended calm)"

# mal: the first message through the second daemon, so that the first one
# (Postfix's) never learns that mal is full and asks the database at
# END-OF-MESSAGE; two refusals there too
check "mal: message 1 admitted (second daemon)" "action=DUNNO" "$(ask "127.0.0.1:$POL2" END-OF-MESSAGE mal@example.test)"
check "mal: refusal 1 (second daemon)" "$DEFER" "$(ask "127.0.0.1:$POL2" END-OF-MESSAGE mal@example.test | cut -c1-${#DEFER})"
check "mal: refusal 2 (second daemon)" "$DEFER" "$(ask "127.0.0.1:$POL2" END-OF-MESSAGE mal@example.test | cut -c1-${#DEFER})"
check "mal: not suspended after 2" "-" "$(suspended mal)"
# the third, a real message through Postfix: held at END-OF-MESSAGE
check "mal: the message that makes 3 refusals is accepted into the hold queue" 250 \
    "$(send mal@example.test mal@example.test rcv@example.test "spam one")"
REASON="3 sending-limit refusals within 3600 s (the last: 1 messages per 3600 s)"
check "mal: suspended, with the reason" "$REASON" "$(suspended mal)"
check "mal: its hits are kept while it is suspended" 3 \
    "$(sql -c "SELECT count(*) FROM mailroster.send_hits h JOIN mailroster.mailboxes m ON m.id = h.mailbox_id WHERE m.local_part = 'mal'")"
check "mal: the audit row" "mailroster.send_admit|user suspend|true|3|3600|$REASON" \
    "$(sql -c "SELECT actor, action, detail->>'automatic', detail->>'hits', detail->>'within_seconds', detail->>'reason' FROM mailroster.audit_log WHERE object = 'mal@example.test' AND action = 'user suspend'" | tr '\n' ' ' | sed 's/ $//')"
grep -q "warning: sending suspended: login=mal@example.test queue_id=[0-9A-F]*: $REASON (mail held; lift with: mailroster user unsuspend mal@example.test)" "$MRS_LOG" \
    && ok "mal: the alert line, logged by the daemon that decided it" || { notok "mal: the alert line"; grep -i suspend "$MRS_LOG" | sed 's/^/# /'; }
check "mal: ... and only by that one" 0 "$(grep -c 'sending suspended: login=mal' "$MRS_LOG2")"
grep "hold: END-OF-MESSAGE from " "$STACK_POSTFIX_LOG" | grep -qF ": End-of-data sending suspended for <mal@example.test>: $REASON; from=<mal@example.test> to=<rcv@example.test>" \
    && ok "mal: Postfix logs the HOLD with its text" || { notok "mal: Postfix logs the HOLD"; grep -i hold "$STACK_POSTFIX_LOG" | tail -3 | sed 's/^/# /'; }
mapfile -t H < <(held mal@example.test)
check "mal: one message in the hold queue (postqueue -j)" 1 "${#H[@]}"
check "mal: the user show row says so" "yes|$REASON" "$(field mal@example.test send_suspended)|$(field mal@example.test suspended_reason)"

# every daemon learns it through the change log: RCPT is held from memory
HOLD="action=HOLD sending suspended for <mal@example.test>: $REASON"
wait_for "ask 127.0.0.1:$POL2 RCPT mal@example.test" "$HOLD" 5
check "second daemon: RCPT of mal held (from the change log)" "$HOLD" "$(ask "127.0.0.1:$POL2" RCPT mal@example.test)"
check "first daemon: RCPT of mal held" "$HOLD" "$(ask "127.0.0.1:$POL_PORT" RCPT mal@example.test)"
check "the database holds END-OF-MESSAGE too, without counting it" "$HOLD|1" \
    "$(ask "127.0.0.1:$POL2" END-OF-MESSAGE mal@example.test)|$(sql -c "SELECT count(*) FROM mailroster.send_counters WHERE username = 'mal@example.test'")"
check "mal: the next message through Postfix: accepted, held" 250 "$(send mal@example.test mal@example.test rcv@example.test "spam two")"
mapfile -t H < <(held mal@example.test)
check "mal: two messages in the hold queue" 2 "${#H[@]}"
grep -qE "hold: RCPT from [^:]*: <rcv@example.test>: Recipient address sending suspended for <mal@example.test>" "$STACK_POSTFIX_LOG" \
    && ok "mal: Postfix logs the RCPT HOLD" || { notok "mal: Postfix logs the RCPT HOLD"; grep -i hold "$STACK_POSTFIX_LOG" | tail -3 | sed 's/^/# /'; }
check "rcv got none of it" 0 "$(ls "$HOME_rcv/Maildir/new" 2>/dev/null | wc -l)"

# receiving and IMAP keep working
check "mal still receives (SMTP to LMTP)" 250 "$(send rcv@example.test rcv@example.test mal@example.test "for mal")"
stack_wait_maildir_file "$HOME_mal/Maildir" 20 >/dev/null && ok "... into its maildir" || notok "... into its maildir"
if mrs_imap_fetch mal@example.test pw-mal "for mal" | grep -q "^Subject: for mal"; then ok "mal reads it over IMAP"; else notok "mal reads it over IMAP"; fi

# the held mail: released one (postsuper -H), deleted the other (postsuper -d)
postsuper -c "$PFC" -H "${H[0]:-none}" 2>/dev/null
postqueue -c "$PFC" -i "${H[0]:-none}" 2>/dev/null
# the rest as mailroster(1) says: every held message of the account at once
held mal@example.test | postsuper -c "$PFC" -d - 2>/dev/null
stack_wait_maildir_file "$HOME_rcv/Maildir" 30 >/dev/null && ok "postsuper -H: the released message is delivered" || notok "postsuper -H: released and delivered"
check "postsuper -d: nothing of mal's left in any queue" 0 \
    "$(postqueue -c "$PFC" -j | jq -r 'select(.sender == "mal@example.test") | .queue_id' | wc -l)"

# lifting it
check "user unsuspend" "updated mal@example.test" "$(mrs_cli user unsuspend mal@example.test)"
check "unsuspended: in the database and in user show" "-|no" "$(suspended mal)|$(field mal@example.test send_suspended)"
check "unsuspended: audited" 1 "$(sql -c "SELECT count(*) FROM mailroster.audit_log WHERE action = 'user unsuspend' AND object = 'mal@example.test'")"
check "unsuspended: its hits are forgotten" 0 \
    "$(sql -c "SELECT count(*) FROM mailroster.send_hits h JOIN mailroster.mailboxes m ON m.id = h.mailbox_id WHERE m.local_part = 'mal'")"
wait_for "ask 127.0.0.1:$POL_PORT RCPT mal@example.test" "action=DUNNO" 5
check "unsuspended: RCPT passes again" "action=DUNNO" "$(ask "127.0.0.1:$POL_PORT" RCPT mal@example.test)"
# the second daemon admitted mal's first message: it still knows mal is full
check "unsuspended: the second daemon is back to the rate limit" "$DEFER <mal@example.test>: 1 messages per 1h" \
    "$(ask "127.0.0.1:$POL2" RCPT mal@example.test | sed 's/; try again.*//')"
mrs_cli limit reset mal@example.test >/dev/null
check "unsuspended (and its counters reset): mal sends again" 250 "$(send mal@example.test mal@example.test rcv@example.test "legit")"
check "... not held" 0 "$(held mal@example.test | wc -l)"
# its hits started again: two more refusals do not suspend it
ask "127.0.0.1:$POL2" END-OF-MESSAGE mal@example.test >/dev/null
ask "127.0.0.1:$POL2" END-OF-MESSAGE mal@example.test >/dev/null
check "unsuspended: N fresh refusals needed (2 are not enough)" "-" "$(suspended mal)"

# by hand, and may_send=yes lifts it too
check "user suspend by hand" "updated held@example.test" "$(mrs_cli user suspend held@example.test reason="phished, password reset pending")"
wait_for "ask 127.0.0.1:$POL2 RCPT held@example.test" "action=HOLD sending suspended for <held@example.test>: phished, password reset pending" 5
check "suspended by hand: held" "action=HOLD sending suspended for <held@example.test>: phished, password reset pending" \
    "$(ask "127.0.0.1:$POL2" RCPT held@example.test)"
mrs_cli user set held@example.test may_send=yes >/dev/null
check "user set may_send=yes lifts it" "-" "$(suspended held)"
mrs_cli user set held@example.test may_send=no >/dev/null
check "may_send=no is still a refusal (554), not a hold" "action=554 5.7.1 Account <held@example.test> may not send mail" \
    "$(ask "127.0.0.1:$POL_PORT" RCPT held@example.test)"

# --- limit windows through the admin socket ---------------------------------------------------------
mrs_cli domain add lim.test >/dev/null
mrs_cli domain add other.test >/dev/null
for u in a b c d; do mrs_cli user add "$u@lim.test" >/dev/null || notok "user add $u@lim.test"; done
mrs_cli user add x@other.test >/dev/null
# show LOGIN: "scope window messages recipients" per row, then the OK text
show() { mrs_cli -f json limit show "$@" | python3 -c '
import json, sys
print(";".join("%s %s %s %s" % (r["scope"], r["window"], r["messages"], r["recipients"]) for r in json.load(sys.stdin)))'; }
check "no limit anywhere: limit show says unlimited" "0 windows: unlimited (no limit set for it, its domain or everyone)" \
    "$(mrs_cli limit show a@lim.test)"
check "limit set global" "set global" "$(mrs_cli limit set global window=1h messages=50)"
check "global row: limit show" "global 1h 50 unlimited" "$(show a@lim.test)"
mrs_cli limit set domain lim.test window=1d messages=500 recipients=2000 >/dev/null
mrs_cli limit set domain lim.test window=1h messages=40 >/dev/null
check "domain rows over the global one" "domain 1h 40 unlimited;domain 1d 500 2000" "$(show a@lim.test)"
check "another domain still has the global one" "global 1h 50 unlimited" "$(show x@other.test)"
mrs_cli limit set user b@lim.test window=10m messages=3 recipients=unlimited >/dev/null
check "mailbox row over the domain's" "mailbox 10m 3 unlimited" "$(show user b@lim.test)"
mrs_cli limit set user c@lim.test unlimited >/dev/null
check "explicitly unlimited: stated by the mailbox" "mailbox  unlimited unlimited" "$(show c@lim.test)"
check "... which the OK line says" "OK 0 windows: unlimited (stated by its mailbox limits)" "$(printf 'limit show c@lim.test\n' | socat -t 20 - "UNIX-CONNECT:$MRS_ADMIN" | tail -n 1)"
check "limit show domain" "domain 1h 40 unlimited;domain 1d 500 2000" "$(show domain lim.test)"
check "limit show global" "global 1h 50 unlimited" "$(show global)"
# the windows are what send_admit uses: b may send 3 per 10 min
r=""; for i in 1 2 3 4; do r="$r$(ask "127.0.0.1:$POL_PORT" END-OF-MESSAGE b@lim.test)|"; done
check "b: 3 admitted, the 4th deferred by its own window" \
    "action=DUNNO|action=DUNNO|action=DUNNO|action=450 4.7.1 Sending limit reached for <b@lim.test>: 3 messages per 10m|" "$(echo "$r" | sed 's/; try again[^|]*//')"
check "b: usage in limit show" "3|3" "$(mrs_cli -f json limit show b@lim.test | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print(r["sent_messages"] + "|" + r["sent_recipients"])')"
check "user show lists the windows" "mailbox 600s messages=3 recipients=unlimited" "$(field b@lim.test send_windows)"
check "unlimited: c sends 5 without a deferral" "5" \
    "$(for i in 1 2 3 4 5; do ask "127.0.0.1:$POL_PORT" END-OF-MESSAGE c@lim.test; done | grep -c '^action=DUNNO$')"
check "limit reset: b's counters gone" "reset b@lim.test (3 windows cleared)|0" \
    "$(mrs_cli limit reset b@lim.test)|$(sql -c "SELECT count(*) FROM mailroster.send_counters WHERE username = 'b@lim.test'")"
check "limit set: updating one value keeps the other" "domain 1h 40 unlimited;domain 1d 450 2000" \
    "$(mrs_cli limit set domain lim.test window=1d messages=450 >/dev/null; show domain lim.test)"
check "limit remove one window" "removed domain lim.test (1 windows)" "$(mrs_cli limit remove domain lim.test window=1h)"
check "limit remove user: b falls back to its domain" "domain 1d 450 2000" "$(mrs_cli limit remove user b@lim.test >/dev/null; show b@lim.test)"
check "limit remove of nothing" "no windows set there" "$(mrs_cli limit remove user a@lim.test 2>&1 | sed 's/^mailroster: //')"
check "messages=0 refused" "messages: '0' is neither a whole number above 0 nor unlimited" "$(mrs_cli limit set global window=1h messages=0 2>&1 | sed 's/^mailroster: //')"
check "a window is required" "usage: $(mrs_cli -f tab help limit set | tail -n 1 | cut -f2)" "$(mrs_cli limit set global messages=5 2>&1 | sed 's/^mailroster: //')"
check "the writes are audited" "limit remove|limit remove|limit set|limit set|limit set|limit set|limit set|limit set" \
    "$(sql -c "SELECT action FROM mailroster.audit_log WHERE action LIKE 'limit %' AND action <> 'limit reset' ORDER BY action" | paste -sd'|')"

# --- a domain admin (mrbbs: example.test only) ----------------------------------------------------
adm_as() { local u=$1; shift; printf '%s\n' "$@" | su -s /bin/sh "$u" -c "socat -t 20 - UNIX-CONNECT:$MRS_ADMIN" | tail -n 1; }
# the domain's own 1/1h (domain set) goes; a window of 100 per day stays
mrs_cli domain set example.test send_limit_messages=0 >/dev/null
mrs_cli limit set domain example.test window=1d messages=100 >/dev/null
n0=$(sql -c "SELECT count(*) FROM mailroster.audit_log WHERE action LIKE 'refused: limit%'")
check "domain admin: tighter windows for its mailbox" "OK set user calm@example.test" \
    "$(adm_as mrbbs 'limit set user calm@example.test window=1h messages=4')"
check "... in effect" "mailbox 1h 4 unlimited" "$(show calm@example.test)"
before=$(sql -c "SELECT md5(string_agg(l::text, '|' ORDER BY id)) FROM mailroster.send_limits l")
refused() { case $(adm_as mrbbs "$2") in "ERR refused "*) ok "domain admin: $1: refused" ;; *) notok "domain admin: $1: $(adm_as mrbbs "$2")" ;; esac; }
refused "looser than its domain (5/1h = 120/1d > 100/1d)" "limit set user calm@example.test window=1h messages=5"
refused "unlimited" "limit set user calm@example.test unlimited"
refused "its domain's windows" "limit set domain example.test window=1h messages=1"
refused "removing its domain's windows" "limit remove domain example.test"
refused "the global windows" "limit set global window=1h messages=1"
refused "a mailbox of another domain" "limit set user a@lim.test window=1h messages=1"
refused "showing another domain's account" "limit show a@lim.test"
check "domain admin: the refusals changed nothing" "$before" "$(sql -c "SELECT md5(string_agg(l::text, '|' ORDER BY id)) FROM mailroster.send_limits l")"
wait_for "sql -c \"SELECT count(*) - $n0 FROM mailroster.audit_log WHERE action LIKE 'refused: limit%'\"" 7 10
check "domain admin: every refusal audited" 7 "$(sql -c "SELECT count(*) - $n0 FROM mailroster.audit_log WHERE action LIKE 'refused: limit%'")"
check "domain admin: the database's refusal names the limit" \
    "refused: limit set|the domain limit of 100 messages per 86400 s would no longer hold" \
    "$(sql -c "SELECT action || '|' || regexp_replace(detail->>'refused', '^.*: ', '') FROM mailroster.audit_log WHERE object = 'limit set user calm@example.test window=1h messages=5'")"
check "domain admin: may read its own account's windows" "mailbox 1h 4 unlimited" \
    "$(printf 'limit show calm@example.test\n' | su -s /bin/sh mrbbs -c "socat -t 20 - UNIX-CONNECT:$MRS_ADMIN" | head -1 | sed 's/^\* //; s/[a-z_]*=//g; s/\t/ /g' | cut -d' ' -f1-4)"
check "domain admin: may unsuspend its domain's account" "OK updated calm@example.test" "$(adm_as mrbbs 'user unsuspend calm@example.test')"

# --- counters pruned with their mailbox ---------------------------------------------------------------
ask "127.0.0.1:$POL_PORT" END-OF-MESSAGE d@lim.test >/dev/null
ask "127.0.0.1:$POL_PORT" END-OF-MESSAGE a@lim.test >/dev/null
check "d and a have counter rows" "1|1" \
    "$(sql -c "SELECT count(*) FILTER (WHERE username = 'd@lim.test') || '|' || count(*) FILTER (WHERE username = 'a@lim.test') FROM mailroster.send_counters")"
mrs_cli user remove d@lim.test --purge >/dev/null || notok "user remove --purge"
check "purged: d's rows are gone, a's stay" "0|1" \
    "$(sql -c "SELECT count(*) FILTER (WHERE username = 'd@lim.test') || '|' || count(*) FILTER (WHERE username = 'a@lim.test') FROM mailroster.send_counters")"
sql -c "UPDATE mailroster.mailboxes SET local_part = 'a2' WHERE local_part = 'a' AND domain_id = (SELECT id FROM mailroster.domains WHERE name = 'lim.test')"
check "renamed (SQL): the rows follow the account" "0|1" \
    "$(sql -c "SELECT count(*) FILTER (WHERE username = 'a@lim.test') || '|' || count(*) FILTER (WHERE username = 'a2@lim.test') FROM mailroster.send_counters")"

# --- the snapshot keeps the suspension -------------------------------------------------------------
mrs_cli user suspend rcv@example.test reason="snapshot check" >/dev/null
wait_for "ask 127.0.0.1:$POL_PORT RCPT rcv@example.test" "action=HOLD sending suspended for <rcv@example.test>: snapshot check" 5
kill -TERM "$MRD_PID"; wait "$MRD_PID" 2>/dev/null
stack_pg_stop || notok "PostgreSQL stops"
n_snap=$(grep -c "starting from snapshot" "$MRS_LOG")
"$MRD" -f -c "$MRS_CONF" >>"$MRS_LOG" 2>&1 &
MRD_PID=$!
STACK_PIDS+=("$MRD_PID")
wait_for "grep -c 'starting from snapshot' '$MRS_LOG'" "$((n_snap + 1))" 10 || notok "restart from the snapshot"
check "restarted from the snapshot, database down: still held" "action=HOLD sending suspended for <rcv@example.test>: snapshot check" \
    "$(ask "127.0.0.1:$POL_PORT" RCPT rcv@example.test)"
stack_pg_start_again || notok "PostgreSQL starts again"

kill -TERM "$MRD_PID" "$MRD2_PID" 2>/dev/null
wait "$MRD_PID" "$MRD2_PID" 2>/dev/null
for f in "$MRS_LOG" "$MRS_LOG2"; do
    if grep -q "runtime error\|AddressSanitizer\|LeakSanitizer" "$f"; then notok "sanitizer report in $(basename "$f")"; grep -m5 -A5 "runtime error\|AddressSanitizer" "$f"; else ok "no sanitizer report in $(basename "$f")"; fi
done
t_summary
