#!/usr/bin/env bash
# quota_test.sh - recipient quota at RCPT (issue 12): mail for a mailbox
# over its storage or message quota is refused by mailrosterd's policy
# service, through a real private Postfix on port 25 with the restrictions
# of conf.d/postfix/main.cf.snippet, from the usage Dovecot's dict writes
# into mailroster.quota_usage (mostly written here with the dict role and
# the statements Dovecot 2.3's dict-sql sends; at the end by Dovecot itself,
# with the shipped conf.d/dovecot files, from real LMTP deliveries and an
# expunge). Directly, through aliases, with a declared SIZE=, by message
# count, 452 when configured; forwards and unlimited mailboxes pass; usage
# that goes down is seen again; PostgreSQL stopped: answers from memory;
# a writer that commits late is not missed; usage never read: no refusal;
# an alias with one full mailbox: delivered to the other, bounced by
# Dovecot for the full one only.
#
# Expected replies are written here from mailrosterd(8) POLICY SERVICE;
# Postfix puts "<rcpt>: Recipient address rejected: " in front. Usage
# values are chosen around each quota by the rule in that page.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
. "$TOP/tests/integration/begin.sh" mr-quota mrstack

POL_PORT=$(stack_free_port)
# snapshot_interval 1s: the second daemon below starts from a current file
MRS_CONF_EXTRA="policy_listen = inet:127.0.0.1:$POL_PORT
snapshot_interval = 1s"
mrs_db && mrs_daemon || { notok "database and mailrosterd start"; t_summary; exit 1; }
MRD_PID=${STACK_PIDS[-1]}
# Dovecot counts usage into quota_usage with the shipped configuration; its
# dict login role mrdict is a member of mailroster_dovecot_dict only
mrs_dovecot_dict || { notok "dict role and configuration"; t_summary; exit 1; }
MRS_DOVECOT_EXTRA=$MRS_DICT_INCLUDE
# port 25 as main.cf.snippet sets it: the policy service after
# reject_unauth_destination, with its own timeout and DUNNO when it fails
mrs_mail "recipient_delimiter = +
smtpd_recipient_restrictions = reject_unauth_destination,
    check_policy_service { inet:127.0.0.1:$POL_PORT, timeout=5s, default_action=DUNNO }
smtpd_policy_service_try_limit = 1" \
    || { notok "Dovecot and Postfix start"; t_summary; exit 1; }
dict_sql() { psql -X -q -v ON_ERROR_STOP=1 -At -U mrdict -d "$MR_DB" "$@"; }

# example.test: 20000 octets and 100 messages by default
Q=10000        # alice's own storage quota
DQ=20000       # the domain's
mrs_cli domain add example.test quota=$DQ quota_messages=100 >/dev/null || notok "domain add"
mrs_cli user add alice@example.test quota=$Q >/dev/null || notok "user add alice"
mrs_cli user add bob@example.test quota_messages=5 >/dev/null || notok "user add bob"
for u in carol dora erin frank; do mrs_cli user add "$u@example.test" >/dev/null || notok "user add $u"; done
mrs_cli user add unl@example.test quota=0 quota_messages=0 >/dev/null || notok "user add unl"
mrs_cli alias add team@example.test alice@example.test >/dev/null || notok "alias team"
mrs_cli alias add both@example.test alice@example.test bob@example.test >/dev/null || notok "alias both"
mrs_cli alias add mixed@example.test alice@example.test carol@example.test >/dev/null || notok "alias mixed"
mrs_cli alias add fwd@example.test someone@remote.example >/dev/null || notok "alias fwd"
mrs_cli alias add fwdfull@example.test alice@example.test someone@remote.example >/dev/null || notok "alias fwdfull"
mrs_cli alias add chain@example.test team@example.test >/dev/null || notok "alias chain"

# Dovecot 2.3's dict-sql: an UPDATE adding to the counters, or, when there is
# no row yet (or on a recalculation), this upsert of both values
usage_set() { # USER BYTES MESSAGES
    dict_sql -c "INSERT INTO mailroster.quota_usage (bytes, messages, username) VALUES ($2, $3, '$1')
                 ON CONFLICT (username) DO UPDATE SET bytes = $2, messages = $3"
}
usage_add() { # USER BYTES MESSAGES
    dict_sql -c "UPDATE mailroster.quota_usage SET bytes = bytes + $2, messages = messages + $3 WHERE username = '$1'"
}

# rcpt TO [SIZE]: the reply to RCPT TO through Postfix on port 25 ("250" when
# accepted), MAIL FROM with SIZE= when given; swaks without it, Python's
# smtplib with it (swaks cannot send SIZE=)
rcpt() {
    if [ -z "${2:-}" ]; then
        swaks --server "127.0.0.1:$STACK_SMTP_PORT" --from someone@remote.example --to "$1" \
            --quit-after RCPT --timeout 20 2>&1 | awk '/^ *-> RCPT TO/ { r = 1; next } r && /^<[-*~]* +[2-5][0-9][0-9] / { sub(/^<[-*~]* +/, ""); print; exit }' | sed -E 's/^250 .*/250/'
        return
    fi
    python3 - "$STACK_SMTP_PORT" "$1" "$2" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.ehlo("client.remote.example")
code, msg = s.mail("someone@remote.example", ["SIZE=%s" % sys.argv[3]])
if code != 250:
    print("MAIL %d %s" % (code, msg.decode()))
else:
    code, msg = s.rcpt(sys.argv[2])
    print("250" if code == 250 else "%d %s" % (code, msg.decode()))
s.quit()
PY
}
full() { echo "552 5.2.2 <$1>: Recipient address rejected: Mailbox full"; }
noroom() { echo "552 5.2.2 <$1>: Recipient address rejected: Not enough room in the mailbox for a message of $2 octets"; }

# --- storage: directly, the extension folded, then through aliases ------------------------
usage_set alice@example.test $((Q + 1)) 3                  # over whatever the size
usage_set bob@example.test 100 1
usage_set unl@example.test 999999999 999999                 # unlimited: never over
if wait_for "rcpt alice@example.test" "$(full alice@example.test)" 10; then
    ok "over its storage quota: refused at RCPT with 552 5.2.2"
else
    notok "over its storage quota: expected [$(full alice@example.test)], got [$(rcpt alice@example.test)]"
fi
check "the extension is folded (alice+lists)" "$(full alice+lists@example.test)" "$(rcpt alice+lists@example.test)"
check "an alias to the full mailbox" "$(full team@example.test)" "$(rcpt team@example.test)"
check "an alias to an alias to it" "$(full chain@example.test)" "$(rcpt chain@example.test)"
check "an alias to a full mailbox and one with room: accepted" 250 "$(rcpt mixed@example.test)"
check "a forward outside: accepted" 250 "$(rcpt fwd@example.test)"
check "a full mailbox and a forward outside: accepted" 250 "$(rcpt fwdfull@example.test)"
check "an unlimited mailbox far beyond any quota: accepted" 250 "$(rcpt unl@example.test)"
check "a mailbox with room" 250 "$(rcpt bob@example.test)"
check "the refusal is logged, one line" 1 \
    "$(grep -c "policy: inbound recipient=<team@example.test> size=0: reject_over_quota (1 of 1 mailboxes over quota; alice@example.test: storage $((Q + 1)) of $Q)" "$MRS_LOG")"

# --- the declared size (MAIL FROM ... SIZE=) ----------------------------------------------
# carol has the domain's quota: room for exactly 1000 more octets
usage_set carol@example.test $((DQ - 1000)) 7
wait_for "rcpt carol@example.test 1001" "$(noroom carol@example.test 1001)" 10 \
    || notok "carol's usage read"
check "SIZE= one octet over the domain's quota: refused" "$(noroom carol@example.test 1001)" "$(rcpt carol@example.test 1001)"
check "SIZE= that just fits: accepted" 250 "$(rcpt carol@example.test 1000)"
check "no SIZE= (Postfix sends size=0): accepted" 250 "$(rcpt carol@example.test)"
# mixed: alice is full, carol has no room for 5000 either
check "SIZE= too large for every mailbox of an alias" "$(noroom mixed@example.test 5000)" "$(rcpt mixed@example.test 5000)"
check "SIZE= that fits one mailbox of the alias" 250 "$(rcpt mixed@example.test 1000)"

# --- message quota (bob: 5 messages; used + 1 > 5 is over) ------------------------------------
usage_add bob@example.test 100 4                            # 5 messages now
wait_for "rcpt bob@example.test" "$(full bob@example.test)" 10 || notok "bob's usage read"
check "at its message quota: refused" "$(full bob@example.test)" "$(rcpt bob@example.test)"
check "an alias to two full mailboxes (storage, messages)" "$(full both@example.test)" "$(rcpt both@example.test)"
usage_add bob@example.test -100 -1                          # an expunge: 4 of 5
if wait_for "rcpt bob@example.test" 250 10; then ok "one message expunged: accepted again"; else notok "one message expunged: accepted again: $(rcpt bob@example.test)"; fi
check "... and the alias to both with it" 250 "$(rcpt both@example.test)"

# --- usage going down (a recalculation writes the row again) ---------------------------------
usage_set alice@example.test $((Q / 2)) 2
if wait_for "rcpt alice@example.test" 250 10; then ok "alice under her quota again: accepted"; else notok "alice under her quota again: $(rcpt alice@example.test)"; fi
check "... through the alias too" 250 "$(rcpt team@example.test)"
usage_set alice@example.test $((Q + 1)) 3

# --- 452 4.2.2 when configured ------------------------------------------------------------------
n_reload=$(grep -c "reloaded" "$MRS_LOG")
echo "policy_over_quota_action = defer" >>"$MRS_CONF"
kill -HUP "$MRD_PID"
wait_for "grep -c 'reloaded' '$MRS_LOG'" "$((n_reload + 1))" 10 || notok "reload"
defer="452 4.2.2 <alice@example.test>: Recipient address rejected: Mailbox full"
if wait_for "rcpt alice@example.test" "$defer" 10; then ok "policy_over_quota_action = defer: 452 4.2.2"; else notok "defer: expected [$defer], got [$(rcpt alice@example.test)]"; fi
check "defer: the size refusal too" \
    "452 4.2.2 <carol@example.test>: Recipient address rejected: Not enough room in the mailbox for a message of 1001 octets" \
    "$(rcpt carol@example.test 1001)"
sed -i '/^policy_over_quota_action = defer$/d' "$MRS_CONF"
kill -HUP "$MRD_PID"
wait_for "grep -c 'reloaded' '$MRS_LOG'" "$((n_reload + 2))" 10 || notok "reload back"
check "reject again after the reload" "$(full alice@example.test)" "$(rcpt alice@example.test)"
echo "policy_over_quota_action = 552" >>"$MRS_CONF"
kill -HUP "$MRD_PID"
wait_for "grep -c 'reloaded' '$MRS_LOG'" "$((n_reload + 3))" 10 || notok "reload with a bad value"
check "a bad value is refused at reload and the running one kept" 1 \
    "$(grep -c 'reload: policy_over_quota_action must be reject or defer; keeping reject' "$MRS_LOG")"
sed -i '/^policy_over_quota_action = 552$/d' "$MRS_CONF"

# --- a writer that commits late is not missed (commit order is not xid order) -----------------
# Session A writes erin's row and stays open; B writes frank's and commits;
# the daemon reads B; then A commits: erin's row must still arrive.
coproc PA { psql -X -q -At -U mrdict -d "$MR_DB" 2>&1; }
echo "BEGIN;
INSERT INTO mailroster.quota_usage (bytes, messages, username) VALUES ($((DQ + 1)), 1, 'erin@example.test');
SELECT 'A has written';" >&"${PA[1]}"
read -r -t 20 line <&"${PA[0]}"
check "session A wrote erin's row, not committed" "A has written" "${line:-}"
usage_set frank@example.test $((DQ + 1)) 1
wait_for "rcpt frank@example.test" "$(full frank@example.test)" 10 || notok "B's row (frank) read while A is open"
check "B read while A is open; erin not yet" "$(full frank@example.test) 250" \
    "$(rcpt frank@example.test) $(rcpt erin@example.test)"
echo "COMMIT; SELECT 'A committed';" >&"${PA[1]}"
read -r -t 20 line <&"${PA[0]}"
check "session A committed" "A committed" "${line:-}"
if wait_for "rcpt erin@example.test" "$(full erin@example.test)" 10; then
    ok "erin's row, committed after frank's, is read"
else
    notok "erin's row, committed after frank's, is read: $(rcpt erin@example.test)"
fi
exec {PA[1]}>&-

# --- the stamp: the dict role writes, the reader reads xact_id, nobody chooses it ------------
x1=$(psql -X -At -U mrd -d "$MR_DB" -c "SELECT xact_id FROM mailroster.quota_usage WHERE username = 'frank@example.test'")
[ -n "$x1" ] && ok "the daemon's role reads xact_id ($x1)" || notok "the daemon's role reads xact_id"
dict_sql -c "UPDATE mailroster.quota_usage SET bytes = bytes, xact_id = '1' WHERE username = 'frank@example.test'"
x2=$(sql -c "SELECT xact_id FROM mailroster.quota_usage WHERE username = 'frank@example.test'")
if [ -n "$x2" ] && [ "$x2" != 1 ] && [ "$x2" -gt "$x1" ]; then ok "a write is stamped with its transaction, not the value given ($x1 -> $x2)"; else notok "xact_id after a write: $x1 -> $x2"; fi

# --- a removed mailbox takes its usage row with it ---------------------------------------------
check "frank has a usage row" 1 "$(sql -c "SELECT count(*) FROM mailroster.quota_usage WHERE username = 'frank@example.test'")"
mrs_cli user remove frank@example.test --purge >/dev/null || notok "user remove --purge frank"
check "frank removed: his usage row is gone" 0 "$(sql -c "SELECT count(*) FROM mailroster.quota_usage WHERE username = 'frank@example.test'")"
mrs_cli user add frank@example.test >/dev/null || notok "user add frank again"
if wait_for "rcpt frank@example.test" 250 10; then ok "frank created again: starts empty, accepted"; else notok "frank created again: $(rcpt frank@example.test)"; fi

# --- Dovecot writes the usage: real deliveries, an expunge, an alias with one full mailbox -----------
# gina: one message; hugo: the domain's 20000 octets. Dovecot learns them
# from mailrosterd through the roster userdb.
# (Dovecot 2.3.19 refuses at LMTP a message that would take a mailbox over
# its storage quota, so only the message count can fill one by delivery.)
echo pw-gina | mrs_cli user add gina@example.test --password-stdin --scheme sha512 quota_messages=1 >/dev/null || notok "user add gina"
echo pw-hugo | mrs_cli user add hugo@example.test --password-stdin --scheme sha512 >/dev/null || notok "user add hugo"
mrs_cli alias add gh@example.test gina@example.test hugo@example.test >/dev/null || notok "alias gh"
# the roster userdb gives Dovecot their quota rules and homes
GINA_HOME=$(mrs_home gina@example.test) || notok "Dovecot user gina"
HUGO_HOME=$(mrs_home hugo@example.test) || notok "Dovecot user hugo"
DOVEADM=(doveadm -c "$STACK_DOVECOT_CONF")
wait_for "${DOVEADM[*]} user -f quota_rule hugo@example.test 2>&1" "*:storage=${DQ}B" 10 || notok "Dovecot knows hugo's quota"
check "Dovecot knows gina's message quota" "*:messages=1" "$("${DOVEADM[@]}" user -f quota_rule2 gina@example.test 2>&1)"
# one message straight to Dovecot's LMTP: gina is at her message quota
lmtp_send() { # TO SUBJECT LINES: 1 when Dovecot accepted it
    python3 - "$STACK_LMTP_SOCKET" "$1" "$2" "$3" <<'PY'
import smtplib, sys
sock, rcpt, subject, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
body = "".join("line %03d %s\r\n" % (i, "y" * 50) for i in range(n))
msg = "From: someone@remote.example\r\nTo: %s\r\nSubject: %s\r\n\r\n%s" % (rcpt, subject, body)
lmtp = smtplib.LMTP(sock, local_hostname="client.remote.example")
try:
    print(0 if lmtp.sendmail("someone@remote.example", [rcpt], msg) else 1)
except smtplib.SMTPException as e:
    print("LMTP: %s" % e)
lmtp.quit()
PY
}
maildir_bytes() { find "$1/Maildir/cur" "$1/Maildir/new" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
check "Dovecot takes gina's first message" 1 "$(lmtp_send gina@example.test "fill gina" 20)"
GB=$(maildir_bytes "$GINA_HOME")
usage_row() { sql -c "SELECT bytes || ' ' || messages FROM mailroster.quota_usage WHERE username = '$1'"; }
wait_for "usage_row gina@example.test" "$GB 1" 10 || notok "Dovecot wrote gina's usage: [$(usage_row gina@example.test)]"
if wait_for "rcpt gina@example.test" "$(full gina@example.test)" 10; then
    ok "usage written by Dovecot: gina refused at RCPT (1 of 1 messages)"
else
    notok "usage written by Dovecot: gina refused at RCPT: $(rcpt gina@example.test)"
fi
check "the alias to gina and hugo: accepted at RCPT (hugo has room)" 250 "$(rcpt gh@example.test)"
# the whole message through Postfix: hugo gets it, Dovecot refuses it for
# gina at delivery, and Postfix bounces it for gina only
out=$(swaks --server "127.0.0.1:$STACK_SMTP_PORT" --from someone@remote.example --to gh@example.test \
    --h-Subject "to gina and hugo" --body "for both" --timeout 20 2>&1)
qid=$(echo "$out" | sed -nE 's/.* queued as ([0-9A-Za-z]+).*/\1/p' | head -1)
if [ -n "$qid" ]; then ok "the alias: the message is queued ($qid)"; else notok "the alias: the message is queued"; fi
f=$(stack_wait_maildir_file "$HUGO_HOME/Maildir" 20) && grep -q '^Subject: to gina and hugo' "$f" \
    && ok "delivered to hugo" || notok "delivered to hugo"
plog() { grep -c "$qid: to=<$1>, orig_to=<gh@example.test>, .*status=$2 .*$3" "$STACK_POSTFIX_LOG"; }
if wait_for "plog gina@example.test bounced '552 5.2.2'" 1 20; then
    ok "for gina: bounced, Dovecot's 552 5.2.2 at delivery"
else
    notok "for gina: bounced with 552 5.2.2: $(grep "$qid: to=<gina" "$STACK_POSTFIX_LOG" | tail -1)"
fi
check "for hugo: sent" 1 "$(plog hugo@example.test sent '')"
check "gina's mailbox still holds one message" 1 "$(find "$GINA_HOME/Maildir/cur" "$GINA_HOME/Maildir/new" -type f | wc -l)"
# an expunge: Dovecot writes the usage down, mailrosterd lets mail in again
"${DOVEADM[@]}" expunge -u gina@example.test mailbox INBOX all || notok "doveadm expunge"
wait_for "usage_row gina@example.test" "0 0" 10 || notok "Dovecot wrote gina's usage down: [$(usage_row gina@example.test)]"
if wait_for "rcpt gina@example.test" 250 10; then ok "after the expunge: gina accepted again"; else notok "after the expunge: $(rcpt gina@example.test)"; fi
check "no errors from Dovecot's quota dict" "" \
    "$(grep -E 'Error|Warning|Fatal|Panic' "$STACK_DOVECOT_LOG" | grep -iE 'dict|quota|sql' | head -5)"

# --- PostgreSQL stopped: answers from memory ------------------------------------------------------
n_warn=$(grep -c "quota usage: cannot read mailroster.quota_usage" "$MRS_LOG")
stack_pg_stop || notok "PostgreSQL stops"
check "database stopped: over quota still refused (from memory)" "$(full alice@example.test)" "$(rcpt alice@example.test)"
check "database stopped: an alias to it too" "$(full team@example.test)" "$(rcpt team@example.test)"
check "database stopped: a mailbox with room accepted" 250 "$(rcpt bob@example.test)"
warned() { [ "$(grep -c 'quota usage: cannot read mailroster.quota_usage' "$MRS_LOG")" -gt "$n_warn" ] && echo yes; }
wait_for warned yes 10 && ok "database stopped: the usage thread says so" || notok "database stopped: logged"
check "status: the usage is stale" "stale (database unavailable)" \
    "$(mrs_cli -f json status | python3 -c 'import json,sys; print({r["key"]: r["value"] for r in json.load(sys.stdin)}.get("quota_usage"))')"
stack_pg_start_again || notok "PostgreSQL starts again"
usage_set alice@example.test 0 0
# the thread tries again at most 10 s apart
if wait_for "rcpt alice@example.test" 250 25; then ok "database back: alice's new usage read, accepted"; else notok "database back: $(rcpt alice@example.test)"; fi
check "database back: logged" 1 "$(grep -c 'quota usage: reading mailroster.quota_usage again' "$MRS_LOG")"
usage_set alice@example.test $((Q + 1)) 3
wait_for "rcpt alice@example.test" "$(full alice@example.test)" 10 || notok "alice full again"

# --- usage never read (the database never reached): no refusal ---------------------------------
# a second daemon from the first one's snapshot file, its database a closed port
P2=$(stack_free_port)
DEAD=$(stack_free_port)
cp "$STACK_DIR/mr/directory.snapshot" "$STACK_DIR/mr/second.snapshot" && chmod 600 "$STACK_DIR/mr/second.snapshot"
cat >"$STACK_DIR/mr/second.conf" <<CONF
database = host=127.0.0.1 port=$DEAD dbname=$MR_DB user=mrd connect_timeout=2
snapshot_file = $STACK_DIR/mr/second.snapshot
policy_listen = inet:127.0.0.1:$P2
CONF
"$MRD" -f -c "$STACK_DIR/mr/second.conf" >>"$STACK_DIR/mr/second.log" 2>&1 &
MRD2_PID=$!
STACK_PIDS+=("$MRD2_PID")
wait_for "grep -c 'starting from snapshot file' '$STACK_DIR/mr/second.log'" 1 20 || notok "second daemon starts from the snapshot"
ask() { # PORT RCPT: the raw policy answer
    printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nsender=someone@remote.example\nrecipient=%s\nsize=0\n\n' "$2" |
        socat -t 5 - "TCP:127.0.0.1:$1" | head -1
}
# the second daemon knows alice (its directory came from the file)
check "the second daemon knows alice" "action=553 5.7.1 Sender address <bob@example.test> is not owned by user alice@example.test" \
    "$(printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=alice@example.test\nsender=bob@example.test\nrecipient=x@remote.example\n\n' |
        socat -t 5 - "TCP:127.0.0.1:$P2" | head -1)"
check "raw request, the first daemon: alice refused" "action=552 5.2.2 Mailbox full" "$(ask "$POL_PORT" alice@example.test)"
check "raw request, a daemon that never read the usage: DUNNO" "action=DUNNO" "$(ask "$P2" alice@example.test)"
check "... and it says why" 1 "$(grep -c 'quota usage: cannot read mailroster.quota_usage: .*; the over-quota check is skipped until it can' "$STACK_DIR/mr/second.log")"
# a local user's message to a full local mailbox: refused at RCPT too (not
# accepted and bounced back after Dovecot refused it); to a mailbox with
# room, and outside, it passes
sub() { # RCPT: bob's authenticated request
    printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=bob@example.test\nsender=bob@example.test\nrecipient=%s\nsize=0\n\n' "$1" |
        socat -t 5 - "TCP:127.0.0.1:$POL_PORT" | head -1
}
check "authenticated, to a full local mailbox: refused" "action=552 5.2.2 Mailbox full" "$(sub alice@example.test)"
check "authenticated, to an alias of it: refused" "action=552 5.2.2 Mailbox full" "$(sub team@example.test)"
check "authenticated, to a mailbox with room, and outside: DUNNO" "action=DUNNO action=DUNNO" \
    "$(sub carol@example.test) $(sub someone@remote.example)"

# --- counters: every refusal Postfix logged, and the raw one ----------------------------------------
n_pf=$(grep -c 'NOQUEUE: reject: RCPT from [^ ]*: 552 5.2.2 ' "$STACK_POSTFIX_LOG")
n_pf_defer=$(grep -c 'NOQUEUE: reject: RCPT from [^ ]*: 452 4.2.2 ' "$STACK_POSTFIX_LOG")
st=$(mrs_cli -f json stats)
get() { echo "$st" | python3 -c "import json,sys; rows=[r for r in json.load(sys.stdin) if r.get('service') == 'policy']; print(rows[0]['$1'])"; }
check "stats: reject_over_quota = Postfix's 552 5.2.2 rejections + 3 raw" "$((n_pf + 3))" "$(get reject_over_quota)"
check "stats: defer_over_quota = Postfix's 452 4.2.2 rejections" "$n_pf_defer" "$(get defer_over_quota)"
check "one log line per refusal" "$((n_pf + n_pf_defer + 3))" "$(grep -cE 'policy: inbound recipient=<[^>]*> size=[0-9]+: (reject|defer)_over_quota' "$MRS_LOG")"
if [ "$n_pf" -ge 15 ] && [ "$n_pf_defer" -ge 2 ]; then ok "Postfix refused at RCPT ($n_pf x 552, $n_pf_defer x 452)"; else notok "Postfix refusals: $n_pf x 552, $n_pf_defer x 452"; fi

kill -TERM "$MRD_PID" "$MRD2_PID" 2>/dev/null
wait "$MRD_PID" "$MRD2_PID" 2>/dev/null
check "both daemons stopped cleanly" "stopped stopped" \
    "$(tail -n 1 "$MRS_LOG" | grep -o 'stopped$') $(tail -n 1 "$STACK_DIR/mr/second.log" | grep -o 'stopped$')"
for f in "$MRS_LOG" "$STACK_DIR/mr/second.log"; do
    if grep -q "runtime error\|AddressSanitizer\|LeakSanitizer" "$f"; then notok "sanitizer report in $(basename "$f")"; grep -m5 -A5 "runtime error\|AddressSanitizer" "$f"; else ok "no sanitizer report in $(basename "$f")"; fi
done
t_summary
