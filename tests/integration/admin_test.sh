#!/usr/bin/env bash
# admin_test.sh - provisioning through mailrosterd's admin socket, raw (the
# line protocol, as an application speaks it) and with the mailroster
# command: success paths, validation errors, unknown objects, access by
# peer credentials, ensure, concurrent admins, audit rows, and lookups
# answered while a write waits on the database.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
CLI=${CLI:-$(dirname "$MRD")/mailroster}
. "$TOP/tests/integration/begin.sh" mr-admin
LOG=$STACK_DIR/mailrosterd.log

# users the access tests connect as (system accounts, no login)
for u in mrbbs mrview; do
    id -u "$u" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$u"
done
stack_pg_start || exit 1
mr_setup_db || exit 1
ADM=$STACK_DIR/mr/admin
CONF=$STACK_DIR/mailroster.conf
mr_write_conf "$CONF" "admin_socket = $ADM" "admin_socket_mode = 0666" \
    "admin_database = host=$PGHOST port=$PGPORT dbname=$MR_DB user=mradm" \
    "admin_allow_admin = root" "admin_allow_readonly = mrview" "admin_allow_domain = mrbbs:bbs.example"
mr_start "$CONF" "$LOG" || { notok "mailrosterd starts"; t_summary; exit 1; }

# adm LINE...: send lines on one connection, print the replies
adm() { printf '%s\n' "$@" | socat -t 20 - "UNIX-CONNECT:$ADM"; }
adm_as() { local u=$1; shift; printf '%s\n' "$@" | su -s /bin/sh "$u" -c "socat -t 20 - UNIX-CONNECT:$ADM"; }
last() { tail -n 1; }

# --- domains ---------------------------------------------------------------------
check "domain add" "OK created example.com" "$(adm 'domain add Example.COM quota=2G send_limit_messages=100 send_limit_window=1h' | last)"
check "domain add again: exists" "ERR exists" "$(adm 'domain add example.com' | last | cut -d' ' -f1-2)"
check "domain add an IDN U-label stores the A-label" "OK created xn--mnchen-3ya.de" "$(adm 'domain add München.de' | last)"
check "domain add: zero-width space refused" "ERR bad-input" "$(adm "domain add $(printf 'ex\xe2\x80\x8bample.org')" | last | cut -d' ' -f1-2)"
check "domain add: soft hyphen refused" "ERR bad-input" "$(adm "domain add $(printf 'ex\xc2\xadample.org')" | last | cut -d' ' -f1-2)"
check "domain add: underscore refused" "ERR bad-input" "$(adm 'domain add ex_ample.org' | last | cut -d' ' -f1-2)"
check "domain add: bad quota" "ERR bad-input quota: '2X' is not a size (e.g. 500M, 2G, 0 for unlimited)" "$(adm 'domain add q.example quota=2X' | last)"
check "domain add: unknown option" "ERR usage unknown option 'colour'" "$(adm 'domain add q.example colour=blue' | last)"
check "domain show" "quota_bytes=2147483648" "$(adm 'domain show example.com' | head -1 | grep -o 'quota_bytes=[0-9]*')"
check "domain show unknown" "ERR not-found no such domain: nowhere.example" "$(adm 'domain show nowhere.example' | last)"
check "domain ensure existing, same: unchanged" "OK unchanged example.com" "$(adm 'domain ensure example.com quota=2G' | last)"
check "domain ensure existing, other quota: updated" "OK updated example.com" "$(adm 'domain ensure example.com quota=3G' | last)"
check "domain ensure new: created" "OK created bbs.example" "$(adm 'domain ensure bbs.example' | last)"
check "domain disable" "OK updated xn--mnchen-3ya.de" "$(adm 'domain disable xn--mnchen-3ya.de reason=unpaid' | last)"
check "a disabled domain is not found at once" "(not found)" "$(q_smap domains xn--mnchen-3ya.de)"
check "domain enable" "OK updated xn--mnchen-3ya.de" "$(adm 'domain enable münchen.de' | last)"
check "an enabled domain is found at once" "xn--mnchen-3ya.de" "$(q_smap domains xn--mnchen-3ya.de)"

# --- users -------------------------------------------------------------------------
HASH=$(doveadm pw -s SHA512-CRYPT -p 'fixture password')
check "user add with a hash" "OK created alice@example.com" "$(adm "user add Alice@Example.com password=$HASH quota=1G services=imap,lmtp" | last)"
check "visible to lookups as soon as the command returns" "example.com/alice.1/" "$(q_smap mailboxes alice@example.com)"
check "user add: plaintext password refused" "ERR bad-input" "$(adm 'user add bob@example.com password=secret' | last | cut -d' ' -f1-2)"
check "user add: unknown domain" "ERR not-found no such domain" "$(adm 'user add bob@nowhere.example' | last)"
for bad in 'a..b@example.com' '.a@example.com' 'a.@example.com' 'a+b@example.com' 'nobody' \
    "$(head -c 65 /dev/zero | tr '\0' a)@example.com" 'a@-bad.example'; do
    check "user add '$bad' refused" "ERR bad-input" "$(adm "user add \"$bad\"" | last | cut -d' ' -f1-2)"
done
check "user add: an alias source" "ERR exists address info@example.com is already an alias; it cannot also be a mailbox" "$(adm 'alias add info@example.com alice@example.com' 'user add info@example.com' | last)"
out=$(adm 'user show alice@example.com')
case $out in *"services=imap,lmtp"*"quota_bytes=1073741824"*"password_scheme=SHA512-CRYPT"*) ok "user show" ;; *) notok "user show: $out" ;; esac
case $out in *'$6$'*) notok "user show prints the hash" ;; *) ok "user show never prints the hash" ;; esac
check "user set" "OK updated alice@example.com" "$(adm 'user set alice@example.com quota=500M may_send=no' | last)"
check "user set: bad boolean" "ERR bad-input may_send: 'maybe' is not yes or no" "$(adm 'user set alice@example.com may_send=maybe' | last)"
check "user set: an option twice" "ERR usage option 'quota' given twice" "$(adm 'user set alice@example.com quota=1G quota=2G' | last)"
check "user disable: a reason with a control character" "ERR bad-input reason has a control character" "$(adm 'user disable alice@example.com "reason=a\x01b"' | last)"
check "user set: unknown service" "ERR bad-input" "$(adm 'user set alice@example.com services=imap,ftp' | last | cut -d' ' -f1-2)"
check "user set unknown user" "ERR not-found no such mailbox" "$(adm 'user set nobody@example.com quota=1G' | last)"
check "user passwd" "OK updated alice@example.com" "$(adm "user passwd alice@example.com $HASH" | last)"
check "user ensure existing: unchanged" "OK unchanged alice@example.com" "$(adm 'user ensure alice@example.com quota=500M' | last)"
check "user ensure on an alias: conflict" "OK conflict info@example.com is an alias, not a mailbox" "$(adm 'user ensure info@example.com' | last)"
check "user ensure new: created" "OK created carol@example.com" "$(adm 'user ensure carol@example.com' | last)"
check "user disable" "OK updated carol@example.com" "$(adm 'user disable carol@example.com reason=left' | last)"
check "a disabled mailbox is not found at once" "(not found)" "$(q_smap mailboxes carol@example.com)"
check "user show: disabled with its reason" "enabled=no disabled_reason=left" "$(adm 'user show carol@example.com' | head -1 | grep -o 'enabled=no disabled_reason=left')"
check "user remove keeps the row" "OK updated carol@example.com" "$(adm 'user remove carol@example.com' | last)"
# carol's row as the database has it (id|maildir), before and after the purge
carol_row() { sql -c "SELECT m.id || '|' || m.maildir FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id WHERE d.name = 'example.com' AND m.local_part = 'carol'"; }
old_row=$(carol_row)
old_md=${old_row#*|}
check "the purged mailbox had a maildir of the documented form" "example.com/carol.${old_row%%|*}/" "$old_md"
check "user remove --purge" "OK purged carol@example.com" "$(adm 'user remove carol@example.com --purge' | last)"
check "re-created address gets a new maildir" "OK created carol@example.com" "$(adm 'user add carol@example.com' | last)"
new_row=$(carol_row)
new_id=${new_row%%|*}
md=$(q_smap mailboxes carol@example.com)
if [ -n "$old_md" ] && [ -n "$new_id" ] && [ "$md" = "example.com/carol.$new_id/" ] && [ "$md" != "$old_md" ]; then
    ok "new maildir $md differs from the purged one ($old_md)"
else
    notok "new maildir differs from the purged one: answered [$md], new id [$new_id], purged maildir [$old_md]"
fi
check "user list example.com" "2" "$(adm 'user list example.com' | grep -c '^\* ')"

# --- aliases and senders ------------------------------------------------------------
check "alias add multi, remote (a destination may carry an extension)" "OK created sales@example.com" "$(adm 'alias add sales@example.com alice@example.com Bob+Lists@Remote.ORG' | last)"
check "alias answered" "alice@example.com,bob+lists@remote.org" "$(q_smap aliases sales@example.com)"
check "catch-all" "OK created @example.com" "$(adm 'alias add @example.com alice@example.com' | last)"
check "catch-all does not take a real mailbox" "(not found)" "$(q_smap aliases carol@example.com)"
check "self-reference refused" "ERR bad-input alias x@example.com points to itself" "$(adm 'alias add x@example.com X@example.com' | last)"
adm 'alias add a1@example.com a2@example.com' >/dev/null
check "loop refused" "ERR bad-input alias a2@example.com would make a loop through other aliases" "$(adm 'alias add a2@example.com a1@example.com' | last)"
check "alias ensure same: unchanged" "OK unchanged sales@example.com" "$(adm 'alias ensure sales@example.com alice@example.com bob+lists@remote.org' | last)"
check "alias ensure other: updated" "OK updated sales@example.com" "$(adm 'alias ensure sales@example.com alice@example.com' | last)"
check "alias ensure on a mailbox: conflict" "OK conflict alice@example.com is a mailbox, not an alias" "$(adm 'alias ensure alice@example.com bob@remote.org' | last)"
check "alias remove" "OK removed a1@example.com" "$(adm 'alias remove a1@example.com' | last)"
check "alias remove unknown" "ERR not-found no such alias" "$(adm 'alias remove a1@example.com' | last)"

# --- forwarding, display names, metadata, sender rights per alias, transports ---------
check "user set forward= keep-copy=" "OK updated alice@example.com" "$(adm 'user set alice@example.com forward=Carl@Other.ORG,dave@example.com keep-copy=yes' | last)"
check "forward stored canonical, with the copy flag" "{carl@other.org,dave@example.com}|t" "$(sql -c "SELECT m.forward_to, m.keep_copy FROM mailroster.mailboxes m WHERE m.local_part = 'alice'")"
check "forward to a non-address refused" "ERR bad-input forward: 'carl' is not a list of addresses (local@domain,...)" "$(adm 'user set alice@example.com forward=carl' | last)"
out=$(adm 'user set alice@example.com forward=Alice@example.com' | last)
case $out in "ERR "*"cannot forward to itself"*) ok "forward to itself refused, naming keep-copy: $out" ;; *) notok "forward to itself: $out" ;; esac
check "forward= takes forwarding away" "{}" "$(adm 'user set alice@example.com forward=' >/dev/null; sql -c "SELECT forward_to FROM mailroster.mailboxes WHERE local_part = 'alice'")"
check "display_name and metadata set" "OK updated alice@example.com" "$(adm 'user set alice@example.com "display_name=Alice Example" "metadata={\"plan\":\"gold\",\"n\":2}"' | last)"
out=$(adm 'user show alice@example.com')
case $out in *'"display_name=Alice Example"'*) ok "user show: display_name" ;; *) notok "user show: display_name: $out" ;; esac
case $out in *'"metadata={\"n\": 2, \"plan\": \"gold\"}"'*) ok "user show: metadata" ;; *) notok "user show: metadata: $out" ;; esac
check "metadata that is not an object refused" "ERR bad-input metadata: '[1]' is not a JSON object ({...})" "$(adm 'user set alice@example.com metadata=[1]' | last)"
check "metadata that is not JSON refused by the database, nothing changed" "ERR|{\"n\": 2, \"plan\": \"gold\"}" "$(adm 'user set alice@example.com "metadata={\"a\":"' | last | cut -d' ' -f1)|$(sql -c "SELECT metadata FROM mailroster.mailboxes WHERE local_part = 'alice'")"
long=$(head -c 257 /dev/zero | tr '\0' n)
check "display_name over 256 octets refused, nothing changed" "ERR bad-input display_name: '$long' is longer than 256 octets|" \
    "$(adm "user set alice@example.com display_name=$long" | last)|$(sql -c "SELECT count(*) FROM mailroster.mailboxes WHERE display_name = '$long'" | sed 's/^0$//')"
check "display_name= takes the name away" "" "$(adm 'user set alice@example.com display_name=' >/dev/null; sql -c "SELECT display_name FROM mailroster.mailboxes WHERE local_part = 'alice'")"
check "alias add may_send=no" "OK created news@example.com" "$(adm 'alias add news@example.com alice@example.com may_send=no' | last)"
check "alias may_send stored" "f|{alice@example.com}" "$(sql -c "SELECT may_send, destinations FROM mailroster.aliases WHERE local_part = 'news'")"
check "alias set may_send=yes" "OK updated news@example.com" "$(adm 'alias set news@example.com may_send=yes' | last)"
check "alias ensure with other may_send: updated" "OK updated news@example.com|f" "$(adm 'alias ensure news@example.com alice@example.com may_send=no' | last)|$(sql -c "SELECT may_send FROM mailroster.aliases WHERE local_part = 'news'")"
check "alias ensure without may_send keeps it: unchanged" "OK unchanged news@example.com|f" "$(adm 'alias ensure news@example.com alice@example.com' | last)|$(sql -c "SELECT may_send FROM mailroster.aliases WHERE local_part = 'news'")"
check "alias add with may_send twice" "ERR usage option 'may_send' given twice" "$(adm 'alias add x3@example.com alice@example.com may_send=no may_send=yes' | last)"
check "alias set on no alias" "ERR not-found no such alias" "$(adm 'alias set nonews@example.com may_send=no' | last)"
check "alias add with only an option" "ERR usage usage: alias add SOURCE DESTINATION... [may_send=yes|no]" "$(adm 'alias add x2@example.com may_send=no' | last)"
check "transport add (address)" "OK created special@example.com" "$(adm 'transport add Special@Example.com relay:[172.30.40.50]:8025' | last)"
check "transport add (domain, canonical)" "OK created app.example.com" "$(adm 'transport add App.Example.COM relay:[172.30.40.50]:8025' | last)"
check "transport add (.domain)" "OK created .apps.example.com" "$(adm 'transport add .apps.example.com lmtp:unix:private/app' | last)"
check "transport add error: text with spaces" "OK created gone@example.com" "$(adm 'transport add gone@example.com "error:5.1.1 this address is gone"' | last)"
check "transport add: not transport:nexthop" "ERR bad-input nowhere: not transport:nexthop (e.g. relay:[10.0.0.5]:8025, lmtp:unix:private/app, error:5.1.1 gone)" "$(adm 'transport add x.example.com nowhere' | last)"
check "transport add: a catch-all is no pattern" "ERR bad-input @example.com: a transport pattern is local@domain, domain or .domain" "$(adm 'transport add @example.com smtp:' | last)"
check "transport add twice" "ERR" "$(adm 'transport add app.example.com smtp:' | last | cut -d' ' -f1)"
check "transport ensure same: unchanged" "OK unchanged app.example.com" "$(adm 'transport ensure app.example.com relay:[172.30.40.50]:8025' | last)"
check "transport ensure other: updated" "OK updated app.example.com" "$(adm 'transport ensure app.example.com relay:[172.30.40.51]:8025' | last)"
check "transport set enabled=no" "OK updated .apps.example.com" "$(adm 'transport set .apps.example.com enabled=no' | last)"
check "transport list" "* pattern=.apps.example.com transport=lmtp:unix:private/app enabled=no|* pattern=app.example.com transport=relay:[172.30.40.51]:8025 enabled=yes|* pattern=gone@example.com \"transport=error:5.1.1 this address is gone\" enabled=yes|* pattern=special@example.com transport=relay:[172.30.40.50]:8025 enabled=yes|OK 4 transports" "$(adm 'transport list' | paste -sd'|')"
check "transport remove" "OK removed gone@example.com" "$(adm 'transport remove gone@example.com' | last)"
check "transport remove unknown" "ERR not-found no such transport entry" "$(adm 'transport remove gone@example.com' | last)"
check "transports are in the change log (4 added, 1 ensured, 1 set, 1 removed)" "7" "$(sql -c "SELECT count(*) FROM mailroster.change_log WHERE tbl = 'transports'")"
check "a domain admin may not add a transport" "ERR refused only an admin may manage transports" "$(adm_as mrbbs 'transport add bbs.example smtp:[10.0.0.1]' | last)"
check "a domain admin may not list transports" "ERR refused only an admin may list transports" "$(adm_as mrbbs 'transport list' | last)"
adm 'user add bob@example.com' 'user add dan@example.com' >/dev/null
check "sieve set" "OK updated bob@example.com" "$(adm 'sieve set Bob@example.com "require \"fileinto\";\nif header :contains \"X-Spam\" \"Yes\" { fileinto \"Junk\"; stop; }\n"' | last)"
check "sieve stored byte for byte" "$(printf 'require "fileinto";\nif header :contains "X-Spam" "Yes" { fileinto "Junk"; stop; }\nx')" \
    "$(sql -c "SELECT s.script || 'x' FROM mailroster.sieve_scripts s JOIN mailroster.mailboxes m ON m.id = s.mailbox_id WHERE m.local_part = 'bob'")"
check "sieve show" '* address=bob@example.com "script=require \"fileinto\";\nif header :contains \"X-Spam\" \"Yes\" { fileinto \"Junk\"; stop; }\n"' "$(adm 'sieve show bob@example.com' | head -1 | sed 's/ updated_at=.*//')"
check "sieve set on no mailbox" "ERR not-found no such mailbox" "$(adm 'sieve set nobody@example.com keep;' | last)"
check "sieve set: empty" "ERR bad-input an empty Sieve script (to remove one: sieve remove bob@example.com)" "$(adm 'sieve set bob@example.com ""' | last)"
check "a domain admin may not set another domain's script" "ERR refused|may not manage domain example.com" "$(adm_as mrbbs 'sieve set bob@example.com keep;' | last | sed 's/^\(ERR refused\) .*\(may not\)/\1|\2/')"
printf 'require "fileinto";\nfileinto "Other";\n' >"$STACK_DIR/other.sieve"
check "mailroster sieve set FILE" "updated bob@example.com" "$("$CLI" -s "$ADM" sieve set bob@example.com "$STACK_DIR/other.sieve" 2>&1)"
check "... replaced byte for byte" "$(cat "$STACK_DIR/other.sieve"; echo x)" \
    "$(sql -c "SELECT s.script || 'x' FROM mailroster.sieve_scripts s JOIN mailroster.mailboxes m ON m.id = s.mailbox_id WHERE m.local_part = 'bob'")"
head -c 40000 /dev/zero | tr '\0' '\001' >"$STACK_DIR/big.sieve"
"$CLI" -s "$ADM" sieve set bob@example.com "$STACK_DIR/big.sieve" >/dev/null 2>"$STACK_DIR/big.err"
check "mailroster sieve set: a script too long for a request is refused by the command (exit 65)" "65" "$?"
check "sieve remove" "OK removed bob@example.com|0" "$(adm 'sieve remove bob@example.com' | last)|$(sql -c "SELECT count(*) FROM mailroster.sieve_scripts")"
check "sieve show without a script" "ERR not-found no Sieve script for that mailbox" "$(adm 'sieve show bob@example.com' | last)"
check "share add" "OK created alice@example.com" "$(adm 'share add Alice@example.com bob@example.com' | last)"
check "share add again" "ERR not-found no such mailbox, or already shared" "$(adm 'share add alice@example.com bob@example.com' | last)"
check "share add with itself" "ERR bad-input a mailbox is not shared with itself" "$(adm 'share add alice@example.com alice@example.com' | last)"
check "share add to no mailbox" "ERR not-found no such mailbox, or already shared" "$(adm 'share add alice@example.com nobody@example.com' | last)"
adm 'share add dan@example.com alice@example.com' >/dev/null
check "share list" "* mailbox=alice@example.com shared_with=bob@example.com|* mailbox=dan@example.com shared_with=alice@example.com|OK 2 shares" "$(adm 'share list' | paste -sd'|')"
check "share list of a bad domain: one error answer" "ERR bad-input" "$(adm 'share list ex_ample.org' | cut -d' ' -f1-2 | paste -sd'|')"
check "share list of another domain by a domain admin: one refusal" "ERR refused" "$(adm_as mrbbs 'share list example.com' | cut -d' ' -f1-2 | paste -sd'|')"
check "a domain admin sees only its domains' shares" "OK 0 shares" "$(adm_as mrbbs 'share list' | last)"
check "share remove" "OK removed dan@example.com" "$(adm 'share remove dan@example.com alice@example.com' | last)"
check "share remove unknown" "ERR not-found no such share" "$(adm 'share remove dan@example.com alice@example.com' | last)"
check "a purged mailbox takes its shares with it" "0" "$(adm 'user remove bob@example.com --purge' >/dev/null; sql -c "SELECT count(*) FROM mailroster.shared_mailboxes")"
check "keep-copy and the like in the audit log" "user set" "$(sql -c "SELECT action FROM mailroster.audit_log WHERE detail->>'command' LIKE '%keep-copy=yes%'")"
check "sender add" "OK created boss@example.com" "$(adm 'sender add boss@example.com alice@example.com' | last)"
check "sender answered" "alice@example.com" "$(q_smap senders boss@example.com)"
check "sender add for an unknown login" "ERR not-found no such mailbox" "$(adm 'sender add boss@example.com nobody@example.com' | last)"
check "sender ensure existing: unchanged" "OK unchanged boss@example.com" "$(adm 'sender ensure boss@example.com alice@example.com' | last)"
MHASH=$(doveadm pw -s SHA512-CRYPT -p 'gateway secret')
check "master add" "OK created gateway" "$(adm "master add gateway password=$MHASH domains=example.com" | last)"
check "master ensure same: unchanged" "OK unchanged gateway" "$(adm "master ensure gateway password=$MHASH domains=example.com" | last)"
check "master ensure other domains: updated" "OK updated gateway" "$(adm "master ensure gateway password=$MHASH domains=example.com,münchen.de" | last)"
check "master list shows the domains as A-labels" "domains=example.com,xn--mnchen-3ya.de" "$(adm 'master list' | grep -o 'domains=[^ ]*')"
check "master add without a password" "ERR usage a master user needs password=HASH" "$(adm 'master add other domains=example.com' | last)"
check "master remove" "OK removed gateway" "$(adm 'master remove gateway' | last)"
check "sender remove" "OK removed boss@example.com" "$(adm 'sender remove boss@example.com alice@example.com' | last)"

# --- protocol ------------------------------------------------------------------------
check "unknown command" "ERR unknown-command unknown command 'frobnicate'; try: help" "$(adm 'frobnicate' | last)"
check "wrong arity" "ERR usage usage: user passwd ADDRESS HASH" "$(adm 'user passwd alice@example.com' | last)"
check "unterminated quote" "ERR usage unterminated quote" "$(adm 'user show "alice' | last)"
check "quoted words" "OK 1 mailbox" "$(adm 'user show "alice@example.com"' | last)"
check "pipelined: three answers in order" "OK 1 domain|OK 1 mailbox|ERR not-found no such domain: nope.example" \
    "$(adm 'domain show example.com' 'user show alice@example.com' 'domain show nope.example' | grep -v '^\*' | paste -sd'|')"
check "help lists commands" "OK" "$(adm 'help' | last | cut -d' ' -f1)"
check "help COMMAND" '* "command=user add"' "$(adm 'help user add' | head -1 | cut -c1-20)"
check "status answers" "* key=database value=connected" "$(adm 'status' | grep 'key=database ')"

# --- access by peer credentials --------------------------------------------------------
check "a uid in no list is refused" "ERR refused" "$(adm_as daemon 'domain list' | last | cut -d' ' -f1-2)"
grep -q "admin: refused uid=1 pid=[0-9]* (not in admin_allow_\*)" "$LOG" && ok "the refusal is logged" || notok "the refusal is logged"
# the lists are resolved when the configuration is read: SIGHUP applies a change
sed -i 's/^admin_allow_readonly = mrview$/admin_allow_readonly = mrview, daemon, no-such-user-here/' "$CONF"
kill -HUP "$MR_PID"
wait_for "grep -c 'reloaded' '$LOG'" 1 5
check "after SIGHUP a uid added to admin_allow_readonly may list" "OK" "$(adm_as daemon 'domain list' | last | cut -d' ' -f1)"
adm_as daemon 'domain add ro2.example' >/dev/null
check "... and is named in the log" "1" "$(grep -c 'admin: refused domain add for read-only uid=1(daemon) pid=' "$LOG")"
check "an unknown name in the list is logged" "1" "$(grep -c 'admin_allow_readonly: no such user or group: no-such-user-here' "$LOG")"
sed -i 's/^admin_allow_readonly = .*/admin_allow_readonly = mrview/' "$CONF"
kill -HUP "$MR_PID"
wait_for "grep -c 'reloaded' '$LOG'" 2 5
check "after SIGHUP again it is refused again" "ERR refused" "$(adm_as daemon 'domain list' | last | cut -d' ' -f1-2)"
check "read-only may list" "OK" "$(adm_as mrview 'domain list' | last | cut -d' ' -f1)"
check "read-only may show a user" "OK 1 mailbox" "$(adm_as mrview 'user show alice@example.com' | last)"
check "read-only may not write" "ERR refused" "$(adm_as mrview 'domain add ro.example' | last | cut -d' ' -f1-2)"
check "domain admin adds in its domain" "OK created member@bbs.example" "$(adm_as mrbbs 'user add member@bbs.example' | last)"
check "domain admin refused elsewhere" "ERR refused" "$(adm_as mrbbs 'user add member@example.com' | last | cut -d' ' -f1-2)"
check "domain admin may not add domains" "ERR refused" "$(adm_as mrbbs 'domain add other.example' | last | cut -d' ' -f1-2)"
check "domain admin lists only its domain" "bbs.example" "$(adm_as mrbbs 'domain list' | grep '^\*' | grep -o 'domain=[^ ]*' | cut -d= -f2 | paste -sd,)"

# --- domain remove ------------------------------------------------------------------------
out=$(adm 'domain remove bbs.example' | last)
check "domain remove with a mailbox left is refused and says what is left" "ERR refused domain still has 1 mailboxes and 0 aliases (remove them first, or use --force)" "$out"
check "domain remove --force" "OK removed bbs.example (with 1 mailboxes and 0 aliases)" "$(adm 'domain remove bbs.example --force' | last)"
check "a removed domain is gone from lookups" "(not found)" "$(q_smap mailboxes member@bbs.example)"

# --- audit ----------------------------------------------------------------------------------
check "every write has an audit row with its actor" "uid=0(root)" "$(sql -c "SELECT DISTINCT split_part(actor, ' ', 1) FROM mailroster.audit_log WHERE actor LIKE 'uid=0%'")"
check "the domain admin's write is audited as such" "1" "$(sql -c "SELECT count(*) FROM mailroster.audit_log WHERE actor LIKE 'uid=%(mrbbs)%' AND object = 'member@bbs.example'")"
check "no password hash in the audit log" "0" "$(sql -c "SELECT count(*) FROM mailroster.audit_log WHERE detail::text LIKE '%\$6\$%'")"
check "no password hash in the daemon's log" "0" "$(grep -c '\$6\$' "$LOG")"

# --- concurrent admins -------------------------------------------------------------------------
pids=()
for i in $(seq 1 10); do adm "sender add s$i@example.com alice@example.com" >"$STACK_DIR/c$i.out" & pids+=($!); done
for i in $(seq 1 10); do adm "user set alice@example.com quota_messages=$((i * 100))" >"$STACK_DIR/q$i.out" & pids+=($!); done
wait "${pids[@]}"
check "10 concurrent sender adds all kept" "10" "$(sql -c "SELECT count(*) FROM mailroster.sender_addresses WHERE address LIKE 's%@example.com'")"
check "10 concurrent quota_messages updates all answered" "10" "$(cat "$STACK_DIR"/q*.out | grep -cx 'OK updated alice@example.com')"
qm=$(sql -c "SELECT m.quota_messages FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id WHERE d.name = 'example.com' AND m.local_part = 'alice'")
case " 100 200 300 400 500 600 700 800 900 1000 " in
    *" $qm "*) ok "quota_messages is one of the values written ($qm)" ;;
    *) notok "quota_messages is one of the values written: got [$qm]" ;;
esac
check "concurrent updates of another field lost none of them: one audit row each" "100 200 300 400 500 600 700 800 900 1000" \
    "$(sql -c "SELECT string_agg(v, ' ' ORDER BY v::int) FROM (SELECT substring(detail->>'command' from 'quota_messages=([0-9]+)') AS v FROM mailroster.audit_log WHERE action = 'user set' AND object = 'alice@example.com') s WHERE v IS NOT NULL")"
pids=()
for i in 1 2 3 4 5; do adm 'user ensure signup@example.com' >"$STACK_DIR/e$i.out" & pids+=($!); done
wait "${pids[@]}"
check "5 concurrent ensures: one created, four unchanged" "1 4" \
    "$(cat "$STACK_DIR"/e*.out | grep -c 'OK created') $(cat "$STACK_DIR"/e*.out | grep -c 'OK unchanged')"

# --- lookups keep flowing while a write waits on the database ------------------------------------
mkfifo "$STACK_DIR/lock.fifo"
psql -X -q -d "$MR_DB" <"$STACK_DIR/lock.fifo" >/dev/null 2>&1 &
lockpid=$!
exec 7>"$STACK_DIR/lock.fifo"
echo "BEGIN; SELECT pg_advisory_xact_lock(mailroster.directory_lock_key());" >&7
# wait for the lock to be held, then for the write to wait on it (no sleep:
# a loaded machine starts psql late)
advisory() { sql -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted = $1"; }
wait_for "advisory true" 1 20 || notok "the test's psql holds the directory lock"
adm 'user add waiting@example.com' >"$STACK_DIR/wait.out" &
wpid=$!
wait_for "advisory false" 1 20 || notok "the write waits on the directory lock"
t0=$(date +%s%N)
got=$(q_smap mailboxes alice@example.com)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "a lookup is answered while a write waits (${ms} ms incl. postmap start)" "example.com/alice.1/" "$got"
check "the write is still waiting: no answer yet" "" "$(cat "$STACK_DIR/wait.out")"
check_cmd "the write is still waiting: its client is still running" kill -0 "$wpid"
check "admin reads are answered too" "OK 1 mailbox" "$(adm 'user show alice@example.com' | last)"
echo "COMMIT;" >&7
exec 7>&-
wait "$wpid"; wait "$lockpid"
check "the write completes once the lock is gone" "OK created waiting@example.com" "$(cat "$STACK_DIR/wait.out")"

# --- the mailroster command ------------------------------------------------------------------------
if [ -x "$CLI" ]; then
    export MAILROSTER_SOCKET=$ADM
    out=$("$CLI" -f json user show alice@example.com); rc=$?
    check "mailroster -f json user show: exit 0" 0 "$rc"
    echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[0]["address"]=="alice@example.com", d' \
        && ok "json output parses, address right" || notok "json output: $out"
    "$CLI" user show nobody@example.com >/dev/null 2>&1; check "unknown user: exit 67" 67 "$?"
    "$CLI" user add 'a..b@example.com' </dev/null >/dev/null 2>&1; check "bad input: exit 65" 65 "$?"
    su -s /bin/sh daemon -c "MAILROSTER_SOCKET=$ADM $CLI domain list" >/dev/null 2>&1; check "refused: exit 77" 77 "$?"
    "$CLI" -s "$STACK_DIR/no-such-socket" domain list >/dev/null 2>&1; check "no daemon: exit 69" 69 "$?"
    out=$(printf 's3cret-Pass\n' | "$CLI" user add dave@example.com --password-stdin); rc=$?
    check "mailroster user add --password-stdin" "0 created dave@example.com" "$rc $out"
    check "the stored hash is yescrypt" '{CRYPT}$y$' "$(sql -c "SELECT left(password, 10) FROM mailroster.mailboxes WHERE local_part = 'dave'")"
    grep -q 's3cret-Pass' "$LOG" && notok "plaintext in the daemon log" || ok "plaintext never in the daemon log"
    check "plaintext never in the database" 0 "$(sql -c "SELECT count(*) FROM mailroster.audit_log WHERE detail::text LIKE '%s3cret%'")"
    out=$(printf 'x\n' | "$CLI" user passwd dave@example.com --password-stdin --scheme bcrypt --bcrypt-cost 5); rc=$?
    check "mailroster user passwd bcrypt" "0" "$rc"
    check "bcrypt with the cost asked for" '{BLF-CRYPT}$2b$05$' "$(sql -c "SELECT left(password, 18) FROM mailroster.mailboxes WHERE local_part = 'dave'")"
    check "mailroster user ensure prints the outcome" "unchanged dave@example.com" "$("$CLI" user ensure dave@example.com </dev/null)"
    check "mailroster -f tab user list: a header and a row per mailbox of the domain" \
        "$((1 + $(sql -c "SELECT count(*) FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id WHERE d.name = 'example.com'")))" \
        "$("$CLI" -f tab user list example.com | wc -l)"
    # export, then import into another domain: one transaction, dry run first
    "$CLI" export example.com >"$STACK_DIR/export.jsonl"; rc=$?
    check "mailroster export example.com: exit 0" 0 "$rc"
    check "export: one domain line first" '{"kind":"domain","name":"example.com",' "$(head -1 "$STACK_DIR/export.jsonl" | cut -c1-38)"
    sed 's/example\.com/copy.example/g' "$STACK_DIR/export.jsonl" >"$STACK_DIR/copy.jsonl"
    seq0=$(sql -c "SELECT max(seq) FROM mailroster.change_log")
    out=$("$CLI" import --dry-run "$STACK_DIR/copy.jsonl" 2>&1); rc=$?
    check "import --dry-run: exit 0" 0 "$rc"
    case $out in *"would be"*"created"*) ok "import --dry-run reports what it would create" ;; *) notok "dry run: $out" ;; esac
    check "import --dry-run changes nothing" "$seq0" "$(sql -c "SELECT max(seq) FROM mailroster.change_log")"
    check "after a dry run the domain is still unknown" "(not found)" "$(q_smap domains copy.example)"
    "$CLI" import "$STACK_DIR/copy.jsonl" >/dev/null 2>&1; rc=$?
    check "import: exit 0" 0 "$rc"
    check "imported mailbox answered at once" "copy.example/alice.1/" "$(q_smap mailboxes alice@copy.example)"
    out=$("$CLI" import "$STACK_DIR/copy.jsonl" 2>&1)
    case $out in *"0 created, 0 updated"*) ok "importing again changes nothing" ;; *) notok "re-import: $out" ;; esac
    "$CLI" export copy.example | sed 's/copy\.example/example.com/g' >"$STACK_DIR/back.jsonl"
    check "export of the copy matches the original" "" "$(diff "$STACK_DIR/export.jsonl" "$STACK_DIR/back.jsonl")"
    printf '{"kind":"domain","name":"bad.example"}\n{"kind":"nonsense"}\n' >"$STACK_DIR/bad.jsonl"
    "$CLI" import "$STACK_DIR/bad.jsonl" >/dev/null 2>&1; rc=$?
    check "a malformed import: exit 65" 65 "$rc"
    check "a malformed import changes nothing" "(not found)" "$(q_smap domains bad.example)"
    # the file goes in "import data" frames of 1 MiB, blank lines and all:
    # the line numbers are the file's
    printf '%s\r\n\n \n{"kind":"nonsense"}\n' "$(head -1 "$STACK_DIR/copy.jsonl" | sed 's/copy\.example/bad.example/')" >"$STACK_DIR/bad2.jsonl"
    out=$("$CLI" import "$STACK_DIR/bad2.jsonl" 2>&1)
    case $out in *"line 4: unknown kind"*) ok "import: the error names the file's line (blank lines counted)" ;; *) notok "import: the file's line named: $out" ;; esac
    { head -2 "$STACK_DIR/copy.jsonl"; printf '\n'; sed -n 3p "$STACK_DIR/copy.jsonl" | sed 's/copy\.example/c\xffpy.example/'; } >"$STACK_DIR/bad3.jsonl"
    out=$("$CLI" import "$STACK_DIR/bad3.jsonl" 2>&1); rc=$?
    check "import: a line that is not UTF-8 is named (exit 65)" \
        '65 mailroster: line 4: invalid byte sequence for encoding "UTF8": 0xff' "$rc $out"
    python3 - "$STACK_DIR/frames.jsonl" <<'PY2'
import json, sys
with open(sys.argv[1], "w") as f:
    f.write(json.dumps({"kind": "domain", "name": "frames.example", "enabled": True, "disabled_reason": None, "quota_bytes": 0, "quota_messages": 0, "send_limit_messages": 0, "send_limit_recipients": 0, "send_limit_window": 3600}) + "\n\n")
    for i in range(4000):
        f.write(json.dumps({"kind": "mailbox", "address": "f%04d@frames.example" % i, "password": None, "enabled": True, "disabled_reason": None, "may_send": True, "may_receive": True, "services": ["imap", "pop3", "submission", "lmtp", "sieve"], "quota_bytes": None, "quota_messages": None, "send_limit_messages": None, "send_limit_recipients": None, "home": None, "mail": None, "uid": None, "gid": None, "maildir": None, "display_name": "F" * (1 + i % 40)}) + "\n")
PY2
    out=$("$CLI" -f tab import "$STACK_DIR/frames.jsonl" 2>"$STACK_DIR/frames.err"); rc=$?
    check "import of $(($(stat -c %s "$STACK_DIR/frames.jsonl") / 1024)) KiB (several frames): exit 0, every mailbox created" \
        "0 4000" "$rc $(printf '%s\n' "$out" | grep -c 'created.*mailbox')"
    check "... the last line's number is the file's" "4002" "$(printf '%s\n' "$out" | tail -1 | cut -f1)"
    check "... in the database and answered" "4000 frames.example/f3999.$(sql -c "SELECT id FROM mailroster.mailboxes WHERE local_part = 'f3999'")/" \
        "$(sql -c "SELECT count(*) FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id WHERE d.name = 'frames.example'") $(q_smap mailboxes f3999@frames.example)"
else
    notok "the mailroster command was not built ($CLI)"
fi

# --- import data frames through the socket ---------------------------------------------------
# a NUL octet in a frame: the frame is read to its end, the import dropped
out=$(printf 'import begin\nimport data 13\n{"a":1}\nab\000c\nimport commit\n' | socat -t 20 - "UNIX-CONNECT:$ADM")
check "import data: a NUL octet names its line and drops the import" \
    "ERR bad-input line 2 has a NUL octet; the import was dropped|ERR usage no import in progress: import begin first" \
    "$(printf '%s\n' "$out" | tail -2 | paste -sd'|')"
# a frame that cannot be read: answered, then the connection is closed
out=$(printf 'import begin\nimport data 0\ndomain list\n' | socat -t 20 - "UNIX-CONNECT:$ADM")
check "import data 0: refused and the connection closed (nothing after it answered)" \
    "2 ERR usage import data takes the frame's length in octets, 1 to 67108864; connection closed" \
    "$(printf '%s\n' "$out" | wc -l) $(printf '%s\n' "$out" | tail -1)"
out=$(printf 'import data 3\nabc\ndomain list\n' | socat -t 20 - "UNIX-CONNECT:$ADM")
check "import data without an import begun: refused and the connection closed" \
    "1 ERR usage no import in progress: import begin first" "$(printf '%s\n' "$out" | wc -l) $(printf '%s\n' "$out" | tail -1)"
grep -q "an import data frame from .* was refused; connection closed" "$LOG" && ok "a refused frame is logged" || notok "a refused frame is logged"
# frames split anywhere, even inside a line, make the same lines
jd='{"kind":"domain","name":"split.example","enabled":true,"disabled_reason":null,"quota_bytes":0,"quota_messages":0,"send_limit_messages":0,"send_limit_recipients":0,"send_limit_window":3600}'
out=$(printf 'import begin\nimport data 10\n%simport data %d\n%s\n\nimport commit --dry-run\n' "${jd:0:10}" $(( ${#jd} - 10 + 2 )) "${jd:10}" | socat -t 20 - "UNIX-CONNECT:$ADM")
check "import data split inside a line: one line, answered per frame" \
    "OK 0|OK 2|* line=1 action=created kind=domain key=split.example|OK dry-run: would be 1 created, 0 updated, 0 unchanged" \
    "$(printf '%s\n' "$out" | tail -4 | paste -sd'|')"

# --- the connection breaks during COMMIT ----------------------------------------------------
admin_pid() { sql -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'mailrosterd-admin'"; }
# committed, but the answer is lost: COMMIT waits for a synchronous standby
# that does not exist (the commit is already durable then), and the backend
# is terminated while it waits
# (the test cluster runs with synchronous_commit = off: on for this step)
sql -c "ALTER SYSTEM SET synchronous_standby_names = 'nobody'" -c "ALTER SYSTEM SET synchronous_commit = on" \
    -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
adm 'user add lost-answer@example.com' >"$STACK_DIR/lost.out" &
bg=$!
if wait_for "sql -c \"SELECT wait_event FROM pg_stat_activity WHERE application_name = 'mailrosterd-admin'\"" SyncRep 10; then
    sql -c "SELECT pg_terminate_backend($(admin_pid))" >/dev/null
    ok "COMMIT waits for the standby"
else
    notok "COMMIT waits for the standby"
fi
sql -c "ALTER SYSTEM RESET synchronous_standby_names" -c "ALTER SYSTEM RESET synchronous_commit" -c "SELECT pg_reload_conf()" >/dev/null
wait "$bg"
check "committed, answer lost: answered as the commit it was (not 'exists')" "OK created lost-answer@example.com" "$(tail -n 1 "$STACK_DIR/lost.out")"
check "... and logged" "1" "$(grep -c 'admin: user add: the database connection broke during COMMIT; the change is in (audit row' "$LOG")"
check "... done once" "1" "$(sql -c "SELECT count(*) FROM mailroster.audit_log WHERE object = 'lost-answer@example.com'")"
# not committed: a deferred trigger holds the COMMIT, the backend is terminated
# (the trigger waits as long as public.hold_commit has a row, up to 60 s: a
# fixed sleep could end, and the COMMIT with it, before a loaded machine
# gets to the terminate)
sql -c "CREATE TABLE public.hold_commit (x int)" -c "INSERT INTO public.hold_commit VALUES (1)" \
    -c "CREATE FUNCTION public.slow_commit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS \$\$BEGIN FOR i IN 1 .. 1200 LOOP EXIT WHEN NOT EXISTS (SELECT 1 FROM public.hold_commit); PERFORM pg_sleep(0.05); END LOOP; RETURN NULL; END\$\$" \
    -c "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON mailroster.audit_log DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.slow_commit()" >/dev/null
adm 'user add retried@example.com' >"$STACK_DIR/retried.out" &
bg=$!
if wait_for "sql -c \"SELECT wait_event FROM pg_stat_activity WHERE application_name = 'mailrosterd-admin'\"" PgSleep 10; then
    # (with a timeout it returns once the backend is gone; then the retry
    # may commit)
    sql -c "SELECT pg_terminate_backend($(admin_pid), 10000)" >/dev/null
    ok "COMMIT held by the trigger"
else
    notok "COMMIT held by the trigger"
fi
sql -c "DELETE FROM public.hold_commit" >/dev/null
wait "$bg"
sql -c "DROP TRIGGER slow_commit ON mailroster.audit_log" \
    -c "DROP FUNCTION public.slow_commit()" -c "DROP TABLE public.hold_commit" >/dev/null
check "not committed: run again, created once" "OK created retried@example.com" "$(tail -n 1 "$STACK_DIR/retried.out")"
check "... logged as run again" "1" "$(grep -c 'admin: user add: the database connection broke during COMMIT, which did not happen; running it again' "$LOG")"
check "... one audit row" "1" "$(sql -c "SELECT count(*) FROM mailroster.audit_log WHERE object = 'retried@example.com'")"

mr_stop
t_summary
