#!/usr/bin/env bash
# usage_test.sh - Dovecot 2.3 itself writes mailroster.quota_usage and
# mailroster.last_login through dict-sql (conf.d/dovecot/quota-roster.conf.ext
# and dict-sql.conf.ext, used as shipped but for paths, the mail user and the
# connect line), and `mailroster user show` reads them back: bytes and
# messages after LMTP deliveries agree with the Maildir and with
# `doveadm quota get`, go down after an IMAP expunge, are kept per user, and
# an IMAP login (but not a delivery) sets last_login.

set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
. "$TOP/tests/integration/begin.sh" mr-usage mrstack

T0=$(date +%s)
mrs_db && mrs_daemon || { notok "database and mailrosterd start"; t_summary; exit 1; }

# last_login: Dovecot 2.3.19 writes the login time as unix seconds, which a
# timestamptz column refuses; migration 0003 gave the table at_unix, with
# "at" generated from it.
check "last_login has at_unix (migration 0003)" "1" "$(sql -c "SELECT 1 FROM information_schema.columns WHERE table_schema = 'mailroster'
                   AND table_name = 'last_login' AND column_name = 'at_unix'")"

# The shipped configuration, with this stack's paths, mail user and
# database; the dict's own login role mrdict is a member of
# mailroster_dovecot_dict only, with a password as in production (the
# private cluster trusts its socket: the role's rights are what is tested).
mrs_dovecot_dict || { notok "dict role and configuration"; t_summary; exit 1; }
CONFD=$MRS_DICT_CONFD
# each substitution must have hit, or the test would not use the shipped files
check "config: connect line replaced" 1 "$(grep -c "user=mrdict" "$CONFD/dict-sql.conf.ext")"
check "config: both dicts point at the map file" 2 "$(grep -c "pgsql:$CONFD/dict-sql.conf.ext" "$CONFD/quota-roster.conf.ext")"
check "config: dict socket for the mail user" 2 "$(grep -cE '^ *(user|group) = mrvmail$' "$CONFD/quota-roster.conf.ext")"

MRS_DOVECOT_EXTRA=$MRS_DICT_INCLUDE
mrs_dovecot || { notok "Dovecot starts with the roster driver and the quota config"; t_summary; exit 1; }
DOVEADM=(doveadm -c "$STACK_DOVECOT_CONF")
check "doveconf: quota plugin setting" "dict:User quota::no-unset:proxy::quota" \
    "$(doveconf -c "$STACK_DOVECOT_CONF" -h plugin/quota 2>&1)"
check "doveconf: imap loads last_login" "quota imap_quota last_login" \
    "$(doveconf -c "$STACK_DOVECOT_CONF" -f protocol=imap -h mail_plugins 2>&1 | xargs)"
check "doveconf: lmtp does not load last_login" "quota" \
    "$(doveconf -c "$STACK_DOVECOT_CONF" -f protocol=lmtp -h mail_plugins 2>&1 | xargs)"

# --- provisioning with the mailroster command --------------------------------
QUOTA_BYTES=10485760
mrs_cli domain add example.test >/dev/null || notok "mailroster domain add"
for u in alice bob; do
    echo "pw-$u" | mrs_cli user add "$u@example.test" --password-stdin --scheme sha512 "quota=10M" >/dev/null \
        || notok "mailroster user add $u"
done
# Dovecot learns the users, their homes and quota limits from the roster
# userdb (mailrosterd): quota=10M is its quota_rule
ALICE_HOME=$(mrs_home alice@example.test)
BOB_HOME=$(mrs_home bob@example.test)
rule() { "${DOVEADM[@]}" user -f quota_rule "$1" 2>&1; }
check "Dovecot's userdb gives the quota rule" "*:storage=${QUOTA_BYTES}B" "$(rule alice@example.test)"
check "... for bob too" "*:storage=${QUOTA_BYTES}B" "$(rule bob@example.test)"
check "the homes are mail_base/maildir" "$MRS_MAIL_BASE/$(sql -c "SELECT maildir FROM mailroster.mailboxes WHERE local_part = 'alice'" | sed 's|/$||') $MRS_MAIL_BASE/$(sql -c "SELECT maildir FROM mailroster.mailboxes WHERE local_part = 'bob'" | sed 's|/$||')" \
    "$ALICE_HOME $BOB_HOME"

# --- helpers -----------------------------------------------------------------
# (python3 starts slowly on a busy machine: one start per batch, not per value)
lmtp_send() { # TO:SUBJECT:BODY_LINES...: deliver over Dovecot's LMTP socket,
    # one session per message; prints how many were accepted
    python3 - "$STACK_LMTP_SOCKET" "$@" <<'PY'
import smtplib, sys
n = 0
for spec in sys.argv[2:]:
    rcpt, subject, lines = spec.split(":")
    body = "".join("line %05d of %s: %s\r\n" % (i, subject, "x" * 50) for i in range(int(lines)))
    msg = ("From: sender@usage.test\r\nTo: %s\r\nSubject: %s\r\n"
           "Message-ID: <%s@usage.test>\r\n\r\n%s" % (rcpt, subject, subject.replace(" ", "."), body))
    lmtp = smtplib.LMTP(sys.argv[1], local_hostname="client.usage.test")
    try:
        if not lmtp.sendmail("sender@usage.test", [rcpt], msg):
            n += 1
    except smtplib.SMTPException as e:
        print("LMTP %s: %s" % (spec, e), file=sys.stderr)
    lmtp.quit()
print(n)
PY
}
imap() { # ADDRESS PASSWORD ACTION [SUBJECT]: count | expunge SUBJECT
    python3 - "$STACK_IMAP_PORT" "$@" <<'PY'
import imaplib, sys
port, user, pw, action = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
m = imaplib.IMAP4("127.0.0.1", port)
m.login(user, pw)
typ, data = m.select("INBOX")
if action == "count":
    print(int(data[0]))
elif action == "expunge":
    typ, data = m.search(None, "SUBJECT", '"%s"' % sys.argv[5])
    ids = data[0].split()
    if len(ids) != 1:
        sys.exit("expected one message %r, found %d" % (sys.argv[5], len(ids)))
    m.store(ids[0], "+FLAGS", "\\Deleted")
    m.expunge()
    typ, data = m.select("INBOX")
    print(int(data[0]))
m.logout()
PY
}
# show ADDRESS: `mailroster -f json user show ADDRESS` into the array J
# (field -> value; J[rc] the exit code, J[rows] the number of rows)
declare -A J
show() {
    local json line
    J=()
    json=$(mrs_cli -f json user show "$1")
    J[rc]=$?
    while IFS= read -r line; do
        J[${line%%=*}]=${line#*=}
    done < <(printf '%s' "$json" | python3 -c '
import json, sys
rows = json.load(sys.stdin)
print("rows=%d" % len(rows))
for k, v in rows[0].items():
    print("%s=%s" % (k, v))')
}
# field NAME: J[NAME], or "(absent)" when user show has no such field
field() { if [ -n "${J[$1]+set}" ]; then printf '%s' "${J[$1]}"; else printf '(absent)'; fi; }
tab_field() { # ADDRESS NAME: NAME's column of `mailroster -f tab user show`
    mrs_cli -f tab user show "$1" | awk -F'\t' -v n="$2" \
        'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i } NR == 2 { print (n in c) ? $c[n] : "(absent)" }'
}
maildir_bytes() { # HOME: the sizes of the files in the Maildir's INBOX
    find "$1/Maildir/cur" "$1/Maildir/new" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'
}
doveadm_quota() { # ADDRESS: "MESSAGE-value STORAGE-value STORAGE-limit" (storage in KiB)
    "${DOVEADM[@]}" -f tab quota get -u "$1" |
        awk -F'\t' '$2 == "MESSAGE" { m = $3 } $2 == "STORAGE" { s = $3; l = $4 } END { print m, s, l }'
}
# doveadm shows STORAGE in KiB, rounded up (quota.c: (bytes + 1023) / 1024)
kib() { echo $(( ($1 + 1023) / 1024 )); }
usage_row() { sql -c "SELECT bytes || ' ' || messages FROM mailroster.quota_usage WHERE username = '$1'"; }
login_row() { sql -c "SELECT at_unix FROM mailroster.last_login WHERE username = '$1'"; }

# --- deliveries ----------------------------------------------------------------
show alice@example.test
check "the roster's quota_bytes is the limit the roster userdb gives Dovecot" "$QUOTA_BYTES" "$(field quota_bytes)"
check "before any mail: user show has quota_used_bytes, empty" "" "$(field quota_used_bytes)"
check "before any mail: quota_used_messages empty" "" "$(field quota_used_messages)"
check "before any login: last_login empty" "" "$(field last_login)"
check "three messages delivered to alice over LMTP, one to bob" "3 1" \
    "$(lmtp_send "alice@example.test:usage one:20" "alice@example.test:usage two:200" \
        "alice@example.test:usage three:2000") $(lmtp_send "bob@example.test:usage bob:50")"
ALICE_BYTES=$(maildir_bytes "$ALICE_HOME")
wait_for "usage_row alice@example.test" "$ALICE_BYTES 3" 10 \
    || notok "quota_usage row for alice: expected [$ALICE_BYTES 3], got [$(usage_row alice@example.test)]"
show alice@example.test
check "mailroster -f json user show: exit 0, one row" "0 1" "${J[rc]} ${J[rows]}"
bytes=$(field quota_used_bytes)
[ "${bytes:-0}" -gt 140000 ] 2>/dev/null && ok "quota_used_bytes > the bodies sent ($bytes)" \
    || notok "quota_used_bytes > the bodies sent: got [$bytes]"
check "quota_used_bytes = the Maildir's file sizes" "$ALICE_BYTES" "$bytes"
check "quota_used_messages = messages delivered" 3 "$(field quota_used_messages)"
check "a delivery is not a login" "" "$(field last_login)"
check "doveadm quota get: MESSAGE, STORAGE (KiB) and its limit agree" \
    "3 $(kib "$ALICE_BYTES") $(kib "$QUOTA_BYTES")" "$(doveadm_quota alice@example.test)"
check "tab output: quota_used_bytes = the Maildir's file sizes" "$ALICE_BYTES" "$(tab_field alice@example.test quota_used_bytes)"
check "tab output: quota_used_messages" 3 "$(tab_field alice@example.test quota_used_messages)"

# --- an IMAP login -----------------------------------------------------------
L0=$(date +%s)
check "IMAP: alice logs in, sees three messages" 3 "$(imap alice@example.test pw-alice count 2>&1)"
L1=$(date +%s)
wait_for "login_row alice@example.test | grep -c ." 1 10
show alice@example.test
at=$(field last_login)
at_s=$(date -u -d "$at" +%s 2>/dev/null || echo 0)
if [ "$at_s" -ge "$L0" ] && [ "$at_s" -le "$L1" ]; then ok "last_login set by the IMAP login ($at)"
else notok "last_login between $(date -u -d "@$L0" +%FT%TZ) and $(date -u -d "@$L1" +%FT%TZ): got [$at]"; fi
check "last_login = the row's unix time" "$(login_row alice@example.test)" "$at_s"
# 2.3.19's last_login plugin writes the time only (dict-sql.conf.ext)
check "last_login_service: empty (Dovecot 2.3.19 does not write it)" "" "$(field last_login_service)"
tab_at=$(tab_field alice@example.test last_login)
check "tab output: last_login = the row's unix time" "$(login_row alice@example.test)" "$(date -u -d "$tab_at" +%s 2>/dev/null || echo "[$tab_at]")"

# --- an expunge ----------------------------------------------------------------
f=$(grep -l '^Subject: usage two' "$ALICE_HOME"/Maildir/cur/* "$ALICE_HOME"/Maildir/new/* 2>/dev/null | head -1)
gone=$(stat -c %s "$f" 2>/dev/null || echo 0)
AFTER=$((ALICE_BYTES - gone))
check "IMAP: expunge 'usage two' leaves two" 2 "$(imap alice@example.test pw-alice expunge 'usage two' 2>&1)"
wait_for "usage_row alice@example.test" "$AFTER 2" 10 \
    || notok "quota_usage row after the expunge: expected [$AFTER 2], got [$(usage_row alice@example.test)]"
show alice@example.test
check "after the expunge: quota_used_bytes went down by the message's size ($gone)" "$AFTER" \
    "$(field quota_used_bytes)"
check "after the expunge: quota_used_bytes = the Maildir's file sizes" "$(maildir_bytes "$ALICE_HOME")" \
    "$(field quota_used_bytes)"
check "after the expunge: quota_used_messages" 2 "$(field quota_used_messages)"
check "after the expunge: doveadm agrees" "2 $(kib "$AFTER")" "$(doveadm_quota alice@example.test | cut -d' ' -f1-2)"

# --- a second user -----------------------------------------------------------
BOB_BYTES=$(maildir_bytes "$BOB_HOME")
wait_for "usage_row bob@example.test" "$BOB_BYTES 1" 10 || true
show bob@example.test
check "bob's own usage: bytes, messages" "$BOB_BYTES 1" "$(field quota_used_bytes) $(field quota_used_messages)"
check "bob never logged in: no last_login" "" "$(field last_login)"
check "one usage row per user, one login row" "2 1" \
    "$(sql -c "SELECT (SELECT count(*) FROM mailroster.quota_usage) || ' ' || (SELECT count(*) FROM mailroster.last_login)")"
check "alice's usage untouched by bob's mail" "$AFTER 2" "$(usage_row alice@example.test)"

# --- the dict role's rights ---------------------------------------------------
if psql -X -q -At -U mrdict -d "$MR_DB" -c "SELECT count(*) FROM mailroster.mailboxes" >/dev/null 2>&1; then
    notok "the dict role can read the mailboxes"
else
    ok "the dict role cannot read the mailboxes"
fi
check "no errors from the quota or last_login dicts" "" \
    "$(grep -E 'Error|Warning|Fatal|Panic' "$STACK_DOVECOT_LOG" | grep -iE 'dict|quota|last_login|sql' | head -5)"
echo "# wall time: $(( $(date +%s) - T0 )) s"
t_summary
