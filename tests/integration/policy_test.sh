#!/usr/bin/env bash
# policy_test.sh - mailrosterd as Postfix's check_policy_service, through a
# real private Postfix: SASL logins (Dovecot, roster passdb) that may not
# send, senders a login does not own, recipients that may not receive; then
# the raw protocol: pipelining, incomplete and malformed requests; counters.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
. "$TOP/tests/integration/begin.sh" mr-policy mrstack

POL_PORT=$(stack_free_port)
POL_SOCK=$STACK_DIR/mr/policy
MRS_CONF_EXTRA="policy_listen = inet:127.0.0.1:$POL_PORT, unix:$POL_SOCK"
# Postfix's SASL asks Dovecot's auth service over this socket. After the
# roster passdbs, a passdb that knows one login mailroster does not (a
# leftover of an old setup): ghost@example.test, password pw-ghost.
MRS_DOVECOT_EXTRA="service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}
passdb {
  driver = static
  args = password={PLAIN}pw-ghost
  username_filter = ghost@example.test
}"
mrs_db && mrs_daemon || { notok "database and mailrosterd start"; t_summary; exit 1; }
check "policy listeners open" "2" "$(grep -c 'policy: listening on' "$MRS_LOG")"
mrs_mail "recipient_delimiter = +
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $STACK_DIR/dovecot/run/auth-postfix
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:$POL_PORT
smtpd_end_of_data_restrictions = check_policy_service inet:127.0.0.1:$POL_PORT" \
    || { notok "Dovecot and Postfix start"; t_summary; exit 1; }

mrs_cli domain add example.test >/dev/null
for u in alice bob carol mute; do
    echo "pw-$u" | mrs_cli user add "$u@example.test" --password-stdin --scheme sha512 >/dev/null || notok "user add $u"
done
mrs_cli user add norecv@example.test may_receive=no >/dev/null
mrs_cli user set mute@example.test may_send=no >/dev/null
mrs_cli alias add team@example.test alice@example.test >/dev/null
mrs_cli sender add boss@example.test bob@example.test >/dev/null

# send FROM TO [LOGIN]: 250 when queued, else the reply code and text of the refusal
send() {
    local out auth=()
    [ -n "${3:-}" ] && auth=(--auth PLAIN --auth-user "$3" --auth-password "pw-${3%@*}")
    out=$(swaks --server "127.0.0.1:$STACK_SMTP_PORT" --from "$1" --to "$2" "${auth[@]}" \
        --h-Subject "policy test" --body "test" --timeout 20 2>&1)
    if echo "$out" | grep -q "queued as"; then echo 250; return; fi
    echo "$out" | grep -E '^<\** +[45][0-9]{2} ' | grep -v 'Authentication' | head -1 | sed -E 's/^<\** +//'
}

# --- outbound (SASL) -------------------------------------------------------------------
check "own address" 250 "$(send alice@example.test bob@example.test alice@example.test)"
check "own address with an extension" 250 "$(send alice+news@example.test bob@example.test alice@example.test)"
check "an alias that delivers to the login" 250 "$(send team@example.test bob@example.test alice@example.test)"
check "an extra sender address" 250 "$(send boss@example.test alice@example.test bob@example.test)"
check "the null sender" 250 "$(send '<>' alice@example.test bob@example.test)"
check "someone else's address" "553 5.7.1 <alice@example.test>: Recipient address rejected: Sender address <alice@example.test> is not owned by user bob@example.test" \
    "$(send alice@example.test alice@example.test bob@example.test)"
check "an address outside the directory" "553 5.7.1 <alice@example.test>: Recipient address rejected: Sender address <bob@elsewhere.example> is not owned by user bob@example.test" \
    "$(send bob@elsewhere.example alice@example.test bob@example.test)"
# carol logs in, then her account is disabled: the session goes on, the
# policy service refuses it (smtplib: login, disable, then MAIL and RCPT)
disabled_in_session() {
    python3 - "$STACK_SMTP_PORT" "$MRS_CLI" "$MRS_ADMIN" <<'PY2'
import os, smtplib, subprocess, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
s.login("carol@example.test", "pw-carol")
subprocess.run([sys.argv[2], "user", "disable", "carol@example.test", "reason=compromised"], check=True,
               env=dict(os.environ, MAILROSTER_SOCKET=sys.argv[3]), stdout=subprocess.DEVNULL)
try:
    s.sendmail("carol@example.test", ["alice@example.test"], "Subject: policy test\r\n\r\ntest\r\n")
    print(250)
except smtplib.SMTPRecipientsRefused as e:
    code, text = list(e.recipients.values())[0]
    print(code, text.decode())
s.quit()
PY2
}
check "an account disabled after it logged in (Dovecot let it in)" "554 5.7.1 <alice@example.test>: Recipient address rejected: Account <carol@example.test> is disabled" \
    "$(disabled_in_session 2>&1)"
# a new login of the disabled account is refused by the roster passdb (from
# another loopback address: Dovecot's auth penalty for the failure would
# slow the next logins from 127.0.0.1)
m=$(wc -l <"$STACK_DOVECOT_LOG")
out=$(swaks --server "127.0.0.1:$STACK_SMTP_PORT" --local-interface 127.0.0.2 --from carol@example.test \
    --to alice@example.test --auth PLAIN --auth-user carol@example.test --auth-password pw-carol \
    --quit-after AUTH --timeout 20 2>&1 | grep -E '^<\** +[45][0-9]{2} ' | head -1 | sed -E 's/^<\** +//')
case $out in "535 5.7.8 "*) ok "a disabled account cannot log in (535)" ;; *) notok "a disabled account cannot log in: $out" ;; esac
check "... refused by the roster passdb, with the reason" "1" \
    "$(tail -n +"$((m + 1))" "$STACK_DOVECOT_LOG" | grep -c 'roster(carol@example.test,.*disabled: mailbox disabled: compromised')"
check "an account that may not send" "554 5.7.1 <alice@example.test>: Recipient address rejected: Account <mute@example.test> may not send mail" \
    "$(send mute@example.test alice@example.test mute@example.test)"
# ghost: the roster passdb does not know it, the passdb after it does
check "a login without a mailbox (another passdb let it in)" "554 5.7.1 <alice@example.test>: Recipient address rejected: Login <ghost@example.test> has no mailbox here" \
    "$(send ghost@example.test alice@example.test ghost@example.test)"
mrs_cli user set mute@example.test may_send=yes >/dev/null
check "may send again, at once" 250 "$(send mute@example.test alice@example.test mute@example.test)"
check "the decision is logged" "1" "$(grep -c 'policy: outbound login=bob@example.test sender=<alice@example.test>: reject_sender_not_owned' "$MRS_LOG")"

# --- inbound ------------------------------------------------------------------------------
check "inbound to a mailbox" 250 "$(send someone@remote.example alice@example.test)"
out=$(send someone@remote.example norecv@example.test)
case $out in "550 5.2.1 <norecv@example.test>: Recipient address rejected: Mailbox unavailable"*) ok "inbound to a mailbox that may not receive: 550 5.2.1" ;;
    *) notok "inbound to a mailbox that may not receive: $out" ;; esac
out=$(send someone@remote.example carol@example.test)
case $out in "550 5.2.1 "*) ok "inbound to a disabled mailbox: 550 5.2.1" ;; *) notok "inbound to a disabled mailbox: $out" ;; esac

# --- the raw protocol ---------------------------------------------------------------------
req() { printf 'request=smtpd_access_policy\nprotocol_state=RCPT\n%s\n' "$@"; }
out=$( { req "sasl_username=bob@example.test" "sender=alice@example.test" ""; req "recipient=alice@example.test" ""; printf 'sasl_username=x\n\n'; } \
    | socat -t 5 - "UNIX-CONNECT:$POL_SOCK")
check "pipelined requests on the unix socket, answered in order" \
    "action=553 5.7.1 Sender address <alice@example.test> is not owned by user bob@example.test||action=DUNNO||action=DUNNO|" \
    "$(echo "$out" | tr '\n' '|')"
check "an incomplete request is logged" "1" "$(grep -c 'policy: request without request=smtpd_access_policy' "$MRS_LOG")"
# peer_close keeps its side open: "closed" means the daemon hung up, within 3 s
check "garbage: no answer, connection closed" "closed" "$(printf 'GET / HTTP/1.0\r\n\r\n' | peer_close "127.0.0.1:$POL_PORT" 3)"
check "garbage is logged" "1" "$(grep -c 'policy: malformed request' "$MRS_LOG")"
check "an oversized request: no answer, connection closed" "closed" \
    "$( { printf 'request=smtpd_access_policy\n'; head -c 40000 /dev/zero | tr '\0' a; } | peer_close "127.0.0.1:$POL_PORT" 3)"
check "still answering afterwards" "action=DUNNO" "$(req "recipient=alice@example.test" "" | socat -t 5 - "TCP:127.0.0.1:$POL_PORT" | head -1)"

# --- counters -------------------------------------------------------------------------------
st=$(mrs_cli -f json stats)
get() { echo "$st" | python3 -c "import json,sys; rows=[r for r in json.load(sys.stdin) if r.get('service') == 'policy']; print(rows[0]['$1'])"; }
n_req=$(get requests)
sum=$(( $(get dunno) + $(get reject_unknown_login) + $(get reject_disabled) + $(get reject_may_not_send) + $(get reject_sender_not_owned) + $(get reject_recipient_unavailable) + $(get defer_not_loaded) ))
check "stats: every request has one decision" "$n_req" "$sum"
check "stats: sender not owned (2 by Postfix, 1 raw)" 3 "$(get reject_sender_not_owned)"
check "stats: disabled, may not send, unknown login" "1 1 1" "$(get reject_disabled) $(get reject_may_not_send) $(get reject_unknown_login)"
check "stats: recipients unavailable" 2 "$(get reject_recipient_unavailable)"
check "stats: malformed" 2 "$(get malformed)"

if grep -q "runtime error\|AddressSanitizer\|LeakSanitizer" "$MRS_LOG"; then notok "sanitizer report in the log"; else ok "no sanitizer report"; fi
# (an ASan build's roster driver runs under the sanitizers in Dovecot's auth process)
if grep -q "runtime error\|AddressSanitizer\|LeakSanitizer" "$STACK_DOVECOT_LOG"; then notok "sanitizer report in Dovecot's log"; else ok "no sanitizer report in Dovecot's log"; fi
t_summary
