#!/usr/bin/env bash
# dovecot_dicts_test.sh - shared mailboxes and per-mailbox sieve scripts
# from mailroster's database (migration 0011), with the shipped
# conf.d/dovecot files (dict-sql.conf.ext, quota-roster.conf.ext,
# shares-sieve-roster.conf.ext; only paths, the mail user and the connect
# line changed), a private PostgreSQL migrated by `mailroster db migrate`,
# mailrosterd (roster auth driver) and a private Dovecot 2.3 with
# Pigeonhole.
#
# Shares: alice shares her INBOX with bob by IMAP SETACL; Dovecot writes
# the row into mailroster.shared_mailboxes (the exact statements dict-sql
# sends are read back from PostgreSQL's statement log); bob lists, selects
# and reads alice's INBOX under shared/alice@.../; DELETEACL deletes the
# row and bob no longer sees it; a row inserted by SQL (as an importer
# does) shares carol's INBOX the same way; the dict role cannot share to a
# non-mailbox nor write the table; deleting bob deletes his share rows.
# Sieve: carol's script, stored by the admin role, files mail with
# "X-Spam: Yes" into Junk and the rest into INBOX (LMTP, checked over
# IMAP); a changed script (another id) files into Other at the next
# delivery; a mailbox without a script gets its mail in INBOX and no
# sieve error is logged.

set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
. "$TOP/tests/integration/begin.sh" mr-dicts mrstack

T0=$(date +%s)
D=example.test
if [ ! -f /usr/lib/dovecot/modules/lib90_sieve_plugin.so ]; then
    notok "Pigeonhole's sieve plugin is installed (dovecot-sieve; scripts/lib/deps.sh)"
    t_summary; exit 1
fi

# --- the database, as an upgrade does it ------------------------------------
MR_DB=mailroster
stack_pg_start && stack_pg_createdb "$MR_DB" || { notok "PostgreSQL starts"; t_summary; exit 1; }
out=$("$MRS_CLI" db migrate --database "host=$PGHOST port=$PGPORT dbname=$MR_DB" --sql-dir "$TOP/sql" 2>&1)
check "mailroster db migrate applies 0011 and the grants" "applied: 0011_dovecot_shares_sieve.sql|applied: roles.sql (grants)" \
    "$(echo "$out" | grep -E '^applied: (0011|roles)' | tr '\n' '|' | sed 's/|$//')"
check "schema at the newest migration (0011 or later)" \
    "$(ls "$TOP"/sql/migrations | sed -n 's/^0*\([0-9][0-9]*\)_.*\.sql$/\1/p' | sort -n | tail -1)" \
    "$(sql -c "SELECT max(version) FROM mailroster.schema_version")"
sql -c "CREATE ROLE mrd LOGIN IN ROLE mailroster_reader" -c "CREATE ROLE mradm LOGIN IN ROLE mailroster_admin" \
    || { notok "login roles"; t_summary; exit 1; }
mrs_daemon || { notok "mailrosterd starts"; t_summary; exit 1; }

# --- Dovecot with the shipped files ---------------------------------------------
mrs_dovecot_dict || { notok "dict role and configuration"; t_summary; exit 1; }
CONFD=$MRS_DICT_CONFD
sed -e "s|/etc/dovecot/dict-sql.conf.ext|$CONFD/dict-sql.conf.ext|" \
    "$TOP/conf.d/dovecot/shares-sieve-roster.conf.ext" >"$CONFD/shares-sieve-roster.conf.ext"
chmod 644 "$CONFD/shares-sieve-roster.conf.ext"
check "config: both new dicts point at the map file" 2 \
    "$(grep -c "pgsql:$CONFD/dict-sql.conf.ext" "$CONFD/shares-sieve-roster.conf.ext")"
# every statement of the dict's role goes to the server log: what dict-sql
# sends is read back from there
sql -c "ALTER ROLE mrdict SET log_statement = 'all'" || notok "log_statement for mrdict"
MRS_DOVECOT_EXTRA="$MRS_DICT_INCLUDE
!include $CONFD/shares-sieve-roster.conf.ext"
mrs_dovecot || { notok "Dovecot starts with quota, acl and sieve"; t_summary; exit 1; }
DOVEADM=(doveadm -c "$STACK_DOVECOT_CONF")
plugins() { doveconf -c "$STACK_DOVECOT_CONF" -f protocol="$1" -h mail_plugins 2>&1 | xargs; }
check "doveconf: imap keeps quota and last_login, adds acl" "quota imap_quota last_login acl imap_acl" "$(plugins imap)"
check "doveconf: lmtp runs sieve" "quota sieve" "$(plugins lmtp)"
check "doveconf: doveadm loads acl" "quota acl" "$(plugins doveadm)"

mrs_cli domain add "$D" >/dev/null || { notok "domain add"; t_summary; exit 1; }
for u in alice bob carol dave; do
    echo "pw-$u" | mrs_cli user add "$u@$D" --password-stdin --scheme sha512 >/dev/null \
        || { notok "user add $u"; t_summary; exit 1; }
done
id_of() { sql -c "SELECT m.id FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id
                  WHERE m.local_part = '$1' AND d.name = '$D'"; }
ALICE=$(id_of alice); BOB=$(id_of bob); CAROL=$(id_of carol)
CAROL_HOME=$(mrs_home "carol@$D")

# --- helpers ---------------------------------------------------------------------
lmtp_send() { # TO SUBJECT [HEADER]: one message over Dovecot's LMTP socket; prints "sent"
    python3 - "$STACK_LMTP_SOCKET" "$@" <<'PY'
import smtplib, sys
sock, rcpt, subject = sys.argv[1:4]
extra = sys.argv[4] + "\r\n" if len(sys.argv) > 4 else ""
msg = ("From: sender@dicts.test\r\nTo: %s\r\nSubject: %s\r\n%s"
       "Message-ID: <%s@dicts.test>\r\n\r\nbody of %s\r\n" % (rcpt, subject, extra, subject.replace(" ", "."), subject))
lmtp = smtplib.LMTP(sock, local_hostname="client.dicts.test")
try:
    refused = lmtp.sendmail("sender@dicts.test", [rcpt], msg)
    print("refused %r" % refused if refused else "sent")
except smtplib.SMTPException as e:
    print("LMTP: %s" % e)
lmtp.quit()
PY
}
# imap USER ACTION ARGS...: one IMAP session (password pw-<local part>)
#   setacl MAILBOX WHO RIGHTS | deleteacl MAILBOX WHO | create MAILBOX...
#   list: the mailbox names, one per line, sorted
#   subjects MAILBOX: the subjects in MAILBOX, sorted, joined with ","
#   select MAILBOX: "OK n" or the server's answer
imap() {
    python3 - "$STACK_IMAP_PORT" "$@" <<'PY'
import imaplib, re, sys
port, user, action, args = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
m = imaplib.IMAP4("127.0.0.1", port)
m.login(user, "pw-" + user.split("@")[0])
def q(name):
    return '"%s"' % name
if action == "setacl":
    typ, data = m.setacl(q(args[0]), args[1], args[2])
    print(typ)
elif action == "deleteacl":
    typ, data = m.deleteacl(q(args[0]), args[1])
    print(typ)
elif action == "create":
    print(" ".join(m.create(q(a))[0] for a in args))
elif action == "list":
    typ, data = m.list('""', "*")
    names = []
    for line in data:
        line = line.decode()
        mm = re.match(r'\(.*?\) (?:"[^"]*"|NIL) (.*)$', line)
        name = mm.group(1) if mm else line
        names.append(name.strip('"'))
    print("\n".join(sorted(names)))
elif action == "select":
    try:
        typ, data = m.select(q(args[0]), readonly=True)
        print(typ, data[0].decode())
    except imaplib.IMAP4.error as e:
        print("NO", e)
elif action == "subjects":
    typ, data = m.select(q(args[0]), readonly=True)
    if typ != "OK":
        print("select %s: %s" % (args[0], data))
        sys.exit(0)
    subjects = []
    typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])") if int(data[0]) else ("OK", [])
    for part in data:
        if isinstance(part, tuple):
            subjects.append(part[1].decode().split(":", 1)[1].strip())
    print(",".join(sorted(subjects)))
m.logout()
PY
}
shares() { sql -c "SELECT coalesce(string_agg(mailbox_id || '>' || shared_to_id, ' ' ORDER BY mailbox_id, shared_to_id), '')
                   FROM mailroster.shared_mailboxes"; }
dict_sql() { psql -X -q -v ON_ERROR_STOP=1 -At -U mrdict -d "$MR_DB" "$@"; }

# === shared mailboxes ==========================================================
check "alice gets a message" sent "$(lmtp_send "alice@$D" "for alice")"
check "no shares yet" "" "$(shares)"
check "bob sees no shared folder" "INBOX" "$(imap "bob@$D" list)"
check "IMAP SETACL as alice: INBOX to bob, lookup+read" OK "$(imap "alice@$D" setacl INBOX "bob@$D" lr)"
wait_for shares "$ALICE>$BOB" 10 || true
check "Dovecot wrote the share into mailroster.shared_mailboxes (alice's id > bob's id)" "$ALICE>$BOB" "$(shares)"
check "... with the addresses Dovecot uses" "alice@$D bob@$D 1" \
    "$(sql -c "SELECT shared_mailbox || ' ' || shared_to || ' ' || dummy FROM mailroster.dovecot_shared_mailboxes")"
# what dict-sql sent, as the server logged it
logged() { grep -o "statement: $1.*" "$STACK_PG_LOG" | sed 's/^statement: //' | sort -u; }
check "dict-sql's set: INSERT ... ON CONFLICT on the view" \
    "INSERT INTO mailroster.dovecot_shared_mailboxes (dummy,shared_to,shared_mailbox) VALUES ('1','bob@$D','alice@$D') ON CONFLICT (shared_to,shared_mailbox) DO UPDATE SET dummy='1'" \
    "$(logged "INSERT INTO mailroster.dovecot_shared")"
# Dovecot lists another user's Maildir++ INBOX under the name of the
# namespace's root, shared/<owner>; shared/<owner>/INBOX is the same folder
check "bob's LIST shows alice's INBOX as shared/alice@$D" "INBOX|shared|shared/alice@$D" \
    "$(imap "bob@$D" list | tr '\n' '|' | sed 's/|$//')"
check "bob reads alice's message under the listed name" "for alice" "$(imap "bob@$D" subjects "shared/alice@$D")"
check "bob selects alice's INBOX: one message" "OK 1" "$(imap "bob@$D" select "shared/alice@$D/INBOX")"
check "bob reads alice's message" "for alice" "$(imap "bob@$D" subjects "shared/alice@$D/INBOX")"
check "carol (no rights) does not see it" "INBOX" "$(imap "carol@$D" list)"

check "IMAP DELETEACL as alice" OK "$(imap "alice@$D" deleteacl INBOX "bob@$D")"
wait_for shares "" 10 || true
check "the share row is gone" "" "$(shares)"
check "dict-sql's unset: DELETE on the view" \
    "DELETE FROM mailroster.dovecot_shared_mailboxes WHERE shared_to = 'bob@$D' AND shared_mailbox = 'alice@$D'" \
    "$(logged "DELETE FROM mailroster.dovecot_shared")"
check "bob no longer sees alice's INBOX" "INBOX" "$(imap "bob@$D" list)"
check "... nor can select it" "NO" "$(imap "bob@$D" select "shared/alice@$D/INBOX" | cut -d' ' -f1)"
# the same through doveadm (the acl plugin is loaded for it)
"${DOVEADM[@]}" acl set -u "alice@$D" INBOX "user=carol@$D" lookup read || notok "doveadm acl set"
check "doveadm acl set writes the share row" "$ALICE>$CAROL" "$(shares)"
"${DOVEADM[@]}" acl delete -u "alice@$D" INBOX "user=carol@$D" || notok "doveadm acl delete"
check "doveadm acl delete deletes it" "" "$(shares)"

# a share as an importer brings it: the folder's dovecot-acl (it comes with
# the Maildir) and a row written by SQL as the admin role
check "carol gets a message" sent "$(lmtp_send "carol@$D" "for carol")"
printf 'user=bob@%s lr\n' "$D" >"$CAROL_HOME/Maildir/dovecot-acl"
chown --reference="$CAROL_HOME/Maildir" "$CAROL_HOME/Maildir/dovecot-acl"
check "rights alone (no row yet): bob does not see carol's INBOX" "INBOX" "$(imap "bob@$D" list)"
mrs_admin_sql -c "INSERT INTO mailroster.shared_mailboxes (mailbox_id, shared_to_id) VALUES ($CAROL, $BOB)" \
    || notok "admin inserts a share row"
check "the row gets the addresses from the ids" "carol@$D bob@$D" \
    "$(sql -c "SELECT shared_mailbox || ' ' || shared_to FROM mailroster.shared_mailboxes")"
check "with the row: bob lists carol's INBOX" "INBOX|shared|shared/carol@$D" "$(imap "bob@$D" list | tr '\n' '|' | sed 's/|$//')"
check "bob reads carol's message" "for carol" "$(imap "bob@$D" subjects "shared/carol@$D/INBOX")"

# the dict role writes through the view only, and only shares of mailboxes
err=$(dict_sql -c "INSERT INTO mailroster.dovecot_shared_mailboxes (dummy,shared_mailbox,shared_to) VALUES ('1','alice@$D','nobody@$D')" 2>&1)
check "a share to a non-mailbox is refused, with the reason" 1 "$(echo "$err" | grep -c "cannot share to 'nobody@$D': not a mailbox")"
err=$(dict_sql -c "INSERT INTO mailroster.dovecot_shared_mailboxes (dummy,shared_mailbox,shared_to) VALUES ('1','nobody@$D','bob@$D')" 2>&1)
check "a share of a non-mailbox is refused" 1 "$(echo "$err" | grep -c "cannot share 'nobody@$D': not a mailbox")"
err=$(dict_sql -c "INSERT INTO mailroster.shared_mailboxes (mailbox_id, shared_to_id) VALUES ($ALICE, $BOB)" 2>&1)
check "the dict role cannot write the table itself" 1 "$(echo "$err" | grep -c 'permission denied for table shared_mailboxes')"
err=$(dict_sql -c "INSERT INTO mailroster.dovecot_public_mailboxes (public_mailbox, dummy) VALUES ('alice@$D', '1')" 2>&1)
check "no 'anyone' shares: the public view refuses writes" 1 "$(echo "$err" | grep -c 'cannot insert into view "dovecot_public_mailboxes"')"
check "the refused statements changed nothing" "$CAROL>$BOB" "$(shares)"

check "alice shares again (IMAP SETACL)" OK "$(imap "alice@$D" setacl INBOX "bob@$D" lr)"
wait_for shares "$ALICE>$BOB $CAROL>$BOB" 10 || true
check "two shares to bob" "$ALICE>$BOB $CAROL>$BOB" "$(shares)"
mrs_cli user remove "bob@$D" --purge >/dev/null || notok "user remove bob --purge"
check "deleting bob's mailbox deletes the shares to him" "" "$(shares)"

# === sieve ======================================================================
check "carol creates Junk and Other" "OK OK" "$(imap "carol@$D" create Junk Other)"
SCRIPT1='require "fileinto";
if header :contains "X-Spam" "Yes" { fileinto "Junk"; stop; }'
printf '%s\n' "INSERT INTO mailroster.sieve_scripts (mailbox_id, script) VALUES (:id, :'s');" |
    mrs_admin_sql -v id="$CAROL" -v s="$SCRIPT1" -f - || notok "admin stores carol's script"
id1=$(sql -c "SELECT data_id FROM mailroster.dovecot_sieve_scripts WHERE username = 'carol@$D'")
check "the script's id is the SHA-256 of its text" "$(printf '%s' "$SCRIPT1" | sha256sum | cut -d' ' -f1)" "$id1"
check "spam to carol" sent "$(lmtp_send "carol@$D" "spam one" "X-Spam: Yes")"
check "ham to carol" sent "$(lmtp_send "carol@$D" "ham one")"
check "the spam is in Junk" "spam one" "$(imap "carol@$D" subjects Junk)"
check "the ham is in INBOX" "for carol,ham one" "$(imap "carol@$D" subjects INBOX)"
check "Pigeonhole cached the compiled script under the id" 1 \
    "$(grep -c "$id1" "$CAROL_HOME/sieve-bin/roster.svbin" 2>/dev/null || echo 0)"

SCRIPT2='require "fileinto";
if header :contains "X-Spam" "Yes" { fileinto "Other"; stop; }'
printf '%s\n' "UPDATE mailroster.sieve_scripts SET script = :'s' WHERE mailbox_id = :id;" |
    mrs_admin_sql -v id="$CAROL" -v s="$SCRIPT2" -f - || notok "admin changes carol's script"
id2=$(sql -c "SELECT data_id FROM mailroster.dovecot_sieve_scripts WHERE username = 'carol@$D'")
check "the changed script has another id" "$(printf '%s' "$SCRIPT2" | sha256sum | cut -d' ' -f1)" "$id2"
check "spam to carol after the change" sent "$(lmtp_send "carol@$D" "spam two" "X-Spam: Yes")"
check "the changed script ran: the spam is in Other" "spam two" "$(imap "carol@$D" subjects Other)"
check "... and Junk has only the first" "spam one" "$(imap "carol@$D" subjects Junk)"
check "dict-sql's lookups of the script (name -> id, id -> text)" \
    "SELECT data_id FROM mailroster.dovecot_sieve_scripts WHERE script_name = 'roster' AND username = 'carol@$D'|SELECT script FROM mailroster.dovecot_sieve_scripts WHERE data_id = '$id2' AND username = 'carol@$D'" \
    "$(grep -o "statement: SELECT [a-z_]* FROM mailroster.dovecot_sieve_scripts .*carol.*" "$STACK_PG_LOG" | sed 's/^statement: //' |
        grep -e "roster'" -e "$id2" | sort -u | tr '\n' '|' | sed 's/|$//')"

# the id is looked up at each delivery, the text only when the id is new:
# the ham (second delivery with the first script) ran the cached binary
check "the text of each script was read once, by its id" "1 1" \
    "$(grep -c "statement: SELECT script FROM mailroster.dovecot_sieve_scripts WHERE data_id = '$id1'" "$STACK_PG_LOG") $(grep -c "statement: SELECT script FROM mailroster.dovecot_sieve_scripts WHERE data_id = '$id2'" "$STACK_PG_LOG")"
n=$(grep -c "statement: SELECT data_id FROM mailroster.dovecot_sieve_scripts WHERE script_name = 'roster' AND username = 'carol@$D'" "$STACK_PG_LOG")
[ "$n" -ge 3 ] && ok "... and its id at each of the three deliveries to carol ($n lookups)" \
    || notok "... and its id at each of the three deliveries to carol: $n lookups"

check "dave (no script) gets spam" sent "$(lmtp_send "dave@$D" "spam to dave" "X-Spam: Yes")"
check "without a script the spam stays in INBOX" "spam to dave" "$(imap "dave@$D" subjects INBOX)"
check "no sieve error or warning in Dovecot's log" "" \
    "$(grep -iE 'error|warning|fatal|panic' "$STACK_DOVECOT_LOG" | grep -iE 'sieve|dict|acl' | head -5)"
check "no error in Dovecot's log at all" "" "$(grep -E ' (Error|Fatal|Panic): ' "$STACK_DOVECOT_LOG" | head -5)"

# a script that does not compile: logged, and the mail is kept in INBOX
printf '%s\n' "INSERT INTO mailroster.sieve_scripts (mailbox_id, script) VALUES (:id, 'if nonsense {');" |
    mrs_admin_sql -v id="$(id_of dave)" -f - || notok "admin stores a broken script for dave"
check "dave (broken script) gets a message" sent "$(lmtp_send "dave@$D" "after broken")"
check "... kept in INBOX" "after broken,spam to dave" "$(imap "dave@$D" subjects INBOX)"
# Pigeonhole logs the failure (at info level) and the parse errors into
# the user's own sieve log, next to the Maildir
check "... the failure is in Dovecot's log" 1 \
    "$(grep -c "lmtp(dave@$D).*sieve: Failed to compile script .dict:proxy::sieve;user=dave@$D;name=roster'" "$STACK_DOVECOT_LOG")"
check "... the reason in dave's .dovecot.sieve.log" 1 \
    "$(grep -c "^roster: error: parse failed" "$(mrs_home "dave@$D")/.dovecot.sieve.log" 2>/dev/null)"

# a renamed mailbox keeps its shares, under its new address
mrs_admin_sql -c "INSERT INTO mailroster.shared_mailboxes (mailbox_id, shared_to_id) VALUES ($ALICE, $(id_of dave))" \
    || notok "admin shares alice's mailbox to dave"
mrs_admin_sql -c "UPDATE mailroster.mailboxes SET local_part = 'david' WHERE id = $(id_of dave)" || notok "rename dave"
check "the share follows the rename" "alice@$D david@$D" \
    "$(sql -c "SELECT shared_mailbox || ' ' || shared_to FROM mailroster.dovecot_shared_mailboxes")"

mrs_cli user remove "carol@$D" --purge >/dev/null || notok "user remove carol --purge"
check "deleting carol's mailbox deletes her script (dave's stays)" "0 1" "$(sql -c "SELECT count(*) FILTER (WHERE mailbox_id = $CAROL) || ' ' || count(*) FROM mailroster.sieve_scripts")"

echo "# wall time: $(( $(date +%s) - T0 )) s"
t_summary
