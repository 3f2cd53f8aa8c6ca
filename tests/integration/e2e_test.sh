#!/usr/bin/env bash
# e2e_test.sh - swaks → a private Postfix routing with mailrosterd's
# socketmap maps → Dovecot LMTP (home, uid and gid from the roster userdb,
# that is mailrosterd) → the Maildir, read back over IMAP (a login checked
# by the roster passdb); and what Postfix refuses because mailrosterd says so.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
. "$TOP/tests/integration/begin.sh" mr-e2e mrstack

mrs_db && mrs_daemon || { notok "database and mailrosterd start"; t_summary; exit 1; }
mrs_admin_sql <<'SQL' || notok "provisioning"
INSERT INTO mailroster.domains (name) VALUES ('example.test'), ('other.test');
INSERT INTO mailroster.domains (name, enabled) VALUES ('off.test', false);
INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'alice' FROM mailroster.domains WHERE name = 'example.test';
INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'gone' FROM mailroster.domains WHERE name = 'example.test';
INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'bob' FROM mailroster.domains WHERE name = 'off.test';
INSERT INTO mailroster.aliases (domain_id, local_part, destinations) SELECT id, 'team', ARRAY['alice@example.test'] FROM mailroster.domains WHERE name = 'example.test';
INSERT INTO mailroster.aliases (domain_id, local_part, destinations) SELECT id, '', ARRAY['alice@example.test'] FROM mailroster.domains WHERE name = 'other.test';
SQL
mrs_admin_sql -c "UPDATE mailroster.mailboxes SET enabled = false WHERE local_part = 'gone'"
mrs_mail "recipient_delimiter = +" || { notok "Dovecot and Postfix start"; t_summary; exit 1; }
echo secret1 | mrs_cli user passwd alice@example.test --password-stdin --scheme sha512 >/dev/null || notok "mailroster user passwd"
sleep 0.3
# Postfix only learns from the mailboxes map that alice exists; LMTP puts the
# mail where Dovecot's userdb says: mail_base/maildir, which is the map's answer
MRS_HOME=$(mrs_home alice@example.test)
check "Dovecot's home for alice (roster userdb) = mail_base + the mailboxes map's answer" \
    "$MRS_MAIL_BASE/$(postmap -q alice@example.test "socketmap:unix:$MRS_SMAP:mailboxes" | sed 's|/$||')" "$MRS_HOME"
check "Dovecot's uid and gid for alice = mail_uid and mail_gid" "$MRS_UID $MRS_GID" \
    "$(timeout 20 doveadm -c "$STACK_DOVECOT_CONF" user -f uid alice@example.test) $(timeout 20 doveadm -c "$STACK_DOVECOT_CONF" user -f gid alice@example.test)"

send() { # TO SUBJECT: 250 when queued, else the first 4xx/5xx reply code
    local out
    out=$(swaks --server "127.0.0.1:$STACK_SMTP_PORT" --from sender@example.org --to "$1" \
        --h-Subject "$2" --body "test body" --timeout 20 2>&1)
    if echo "$out" | grep -q "queued as"; then echo 250; return; fi
    echo "$out" | grep -E '^<\** +[45][0-9]{2} ' | head -1 | sed -E 's/^<\** +([0-9]{3}).*/\1/'
}
count() { ls "$MRS_HOME/Maildir/new" 2>/dev/null | wc -l; }

check "mail to Alice@Example.TEST accepted" 250 "$(send Alice@Example.TEST 'e2e direct')"
check "mail to the alias team+x@example.test accepted" 250 "$(send team+x@example.test 'e2e alias')"
check "mail to a catch-all domain accepted" 250 "$(send anyone@other.test 'e2e catchall')"
check "mail to an unknown user is refused (550)" 550 "$(send nobody@example.test 'e2e unknown')"
check "mail to a disabled mailbox is refused (550)" 550 "$(send gone@example.test 'e2e disabled')"
code=$(send bob@off.test 'e2e disabled domain')
case $code in 5*|4*) ok "mail to a disabled domain is not accepted ($code)" ;; *) notok "disabled domain: $code" ;; esac

for i in $(seq 1 150); do [ "$(count)" -ge 3 ] && break; sleep 0.2; done
check "three messages in the Maildir" 3 "$(count)"
check "... owned by the mail user" 3 "$(find "$MRS_HOME/Maildir/new" -type f -uid "$MRS_UID" | wc -l)"
for s in "e2e direct" "e2e alias" "e2e catchall"; do
    if mrs_imap_fetch alice@example.test secret1 "$s" >"$STACK_DIR/imap.out" 2>&1; then
        ok "IMAP: '$s' read back"
    else
        notok "IMAP: '$s' read back: $(cat "$STACK_DIR/imap.out")"
    fi
done
grep -qs "Delivered-To: alice+x@example.test" "$MRS_HOME"/Maildir/new/* "$MRS_HOME"/Maildir/cur/* && ok "the alias kept the extension (alice+x)" \
    || notok "the alias kept the extension (alice+x)"

# a change made now is routed at once
mrs_admin_sql -c "INSERT INTO mailroster.aliases (domain_id, local_part, destinations) SELECT id, 'late', ARRAY['alice@example.test'] FROM mailroster.domains WHERE name = 'example.test'"
sleep 0.3
check "an alias added a moment ago routes mail" 250 "$(send late@example.test 'e2e late')"
t_summary
