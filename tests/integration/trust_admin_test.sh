#!/usr/bin/env bash
# trust_admin_test.sh - every caller in its room (issue 10, items 1, 7, 9
# and the admin logging of 10), over the real admin socket and against the
# real schema:
#   1  a domain admin cannot point a mailbox at another domain's mail (home,
#      mail, uid, gid, path_override), pass its domain's quota or limits,
#      manage master users, give sender rights or aliases outside its
#      domains, import or export everything; each refusal is answered
#      "ERR refused", logged with the actor, and writes nothing; the schema
#      refuses home/mail outside mail_base unless path_override is set;
#   7  one table of password hash forms (tests/unit/pwhash_cases.tsv, the
#      verdicts written there) through the SQL check and the daemon's C
#      check; plaintext and malformed hashes refused by import (line and
#      cause named, nothing written) and by direct SQL;
#   9  a read-only caller's export has no hashes and says so; its show
#      commands are answered, without hashes;
#   10 an oversized request line, the object of "import commit" and an
#      import abandoned by SIGTERM are logged.
#
#   TOP=/work/main MRD=/work/main/build-ha/mailrosterd bash tests/integration/trust_admin_test.sh
#
# Runs as root (it starts PostgreSQL and connects as two system users).
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
. "$TOP/tests/integration/begin.sh" mr-trust
LOG=$STACK_DIR/mailrosterd.log
CASES=$TOP/tests/unit/pwhash_cases.tsv

for u in mrbbs mrview; do
    id -u "$u" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$u"
done
stack_pg_start || exit 1
mr_setup_db || exit 1
ADM=$STACK_DIR/mr/admin
CONF=$STACK_DIR/mailroster.conf
mr_write_conf "$CONF" "admin_socket = $ADM" "admin_socket_mode = 0666" \
    "admin_database = host=$PGHOST port=$PGPORT dbname=$MR_DB user=mradm" \
    "admin_allow_admin = root" "admin_allow_readonly = mrview" "admin_allow_domain = mrbbs:a.test"
mr_start "$CONF" "$LOG" || { notok "mailrosterd starts"; t_summary; exit 1; }

adm() { printf '%s\n' "$@" | socat -t 20 - "UNIX-CONNECT:$ADM"; }
adm_as() { local u=$1; shift; printf '%s\n' "$@" | su -s /bin/sh "$u" -c "socat -t 20 - UNIX-CONNECT:$ADM"; }
last() { tail -n 1; }
code() { last | cut -d' ' -f1-2; }
# everything a write could have changed; if psql fails, a value unique to the
# call, so no before/after comparison can match
state() {
    local st
    st=$(sql -c "SELECT (SELECT md5(string_agg(m::text, '|' ORDER BY m.id)) FROM mailroster.mailboxes m) || ' '
                || (SELECT count(*) FROM mailroster.aliases) || ' ' || (SELECT count(*) FROM mailroster.sender_addresses) || ' '
                || (SELECT count(*) FROM mailroster.master_users) || ' ' || (SELECT md5(string_agg(d::text, '|' ORDER BY d.id)) FROM mailroster.domains d)
                || ' seq=' || (SELECT coalesce(max(seq), 0) FROM mailroster.change_log)") && [ -n "$st" ] \
        || st="psql failed ($RANDOM$RANDOM$RANDOM)"
    printf '%s\n' "$st"
}
# a well-formed hash of the admin's own making (what the CLI sends)
HASH='{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1'

check "setup: domains and mailboxes" "OK created a.test|OK created b.test|OK created alice@a.test|OK created victim@b.test" \
    "$(adm 'domain add a.test quota=1G quota_messages=1000 send_limit_messages=100 send_limit_recipients=500' | last)|$(adm 'domain add b.test' | last)|$(adm "user add alice@a.test password=$HASH" | last)|$(adm "user add victim@b.test password=$HASH" | last)"
VICTIM_MD=$(sql -c "SELECT maildir FROM mailroster.mailboxes WHERE local_part = 'victim'")

# ---------------------------------------------------------------- 1: domain admin
before=$(state)
REFUSALS=0
refused() { # NAME REQUEST: the domain admin's REQUEST is refused and writes nothing
    local got
    REFUSALS=$((REFUSALS + 1))
    got=$(adm_as mrbbs "$2" | last)
    case $got in
        "ERR refused "*) ok "domain admin: $1: ERR refused" ;;
        *) notok "domain admin: $1: expected ERR refused, got [$got]" ;;
    esac
}
refused "home into another domain's maildir" "user set alice@a.test home=/var/vmail/$VICTIM_MD"
refused "mail location into another domain's maildir" "user set alice@a.test mail=maildir:/var/vmail/$VICTIM_MD"
refused "uid" "user set alice@a.test uid=1"
refused "gid" "user set alice@a.test gid=1"
refused "the whole attack in one request" "user set alice@a.test home=/var/vmail/b.test/victim.1 mail=maildir:/var/vmail/b.test/victim.1/ uid=1 gid=1"
refused "path_override" "user set alice@a.test path_override=yes"
refused "home on user add" "user add new@a.test home=/var/vmail/$VICTIM_MD"
refused "mail on user ensure" "user ensure alice@a.test mail=maildir:/etc"
refused "quota above the domain's (1G)" "user set alice@a.test quota=2G"
refused "quota 0 (unlimited) when the domain has one" "user set alice@a.test quota=0"
refused "message quota above the domain's" "user set alice@a.test quota_messages=1001"
refused "send limit above the domain's" "user set alice@a.test send_limit_messages=101"
refused "recipient limit 0 (unlimited)" "user add new2@a.test send_limit_recipients=0"
refused "raising its domain's quota" "domain set a.test quota=100G"
refused "raising its domain's send limit" "domain set a.test send_limit_messages=0"
refused "a master user" "master add gw password=$HASH"
refused "a master user for its own domain" "master add gw password=$HASH domains=a.test"
refused "a sender address in another domain" "sender add boss@b.test alice@a.test"
refused "a sender wildcard of another domain" "sender add @b.test alice@a.test"
refused "a sender address of an unhosted domain" "sender add ceo@bank.example alice@a.test"
refused "an alias whose source is in another domain" "alias add victim2@b.test alice@a.test"
refused "a catch-all of another domain" "alias add @b.test alice@a.test"
refused "a user in another domain" "user set victim@b.test quota=1M"
refused "an import" "import begin"
refused "an export of every domain" "export"
refused "an export of another domain" "export b.test"
check "domain admin: none of the refusals wrote anything" "$before" "$(state)"
check "domain admin: alice still has no home, mail, uid or gid" "||||f" \
    "$(sql -c "SELECT home, mail, uid, gid, path_override FROM mailroster.mailboxes WHERE local_part = 'alice'")"
n=$(grep -c "admin: refused .* for uid=[0-9]*(mrbbs) pid=" "$LOG")
if [ "$n" -ge 26 ]; then ok "domain admin: every refusal logged with its actor ($n lines)"; else notok "domain admin: refusals logged with the actor: $n of 26"; grep 'refused' "$LOG" | tail -5 | sed 's/^/#   /'; fi
# and audited: one row each, written on its own (the refusals above wrote
# nothing else); wait for the admin thread to have written the last
audited() { sql -c "SELECT count(*) FROM mailroster.audit_log WHERE action LIKE 'refused: %' AND actor LIKE '%(mrbbs)%'"; }
wait_for audited "$REFUSALS" 10
check "domain admin: every refusal ($REFUSALS asked) is in the audit log too" "$REFUSALS" "$(audited)"
check "domain admin: the audit row says what was asked and why it was refused" \
    "refused: user set|user set victim@b.test quota=1M|t" \
    "$(sql -c "SELECT action, object, detail->>'refused' LIKE '%may not manage domain b.test%' FROM mailroster.audit_log WHERE object = 'user set victim@b.test quota=1M'" | tr '\n' ' ' | sed 's/ $//')"
check "domain admin: quota within the domain's: allowed" "OK updated alice@a.test" "$(adm_as mrbbs 'user set alice@a.test quota=500M send_limit_messages=50' | last)"
check "domain admin: enable/disable its domain still allowed" "OK updated a.test" "$(adm_as mrbbs 'domain disable a.test' | last)"
adm 'domain enable a.test' >/dev/null
check "domain admin: alias and sender inside its domain allowed" "OK created info@a.test|OK created @a.test" \
    "$(adm_as mrbbs 'alias add info@a.test alice@a.test' | last)|$(adm_as mrbbs 'sender add @a.test alice@a.test' | last)"

# full admin: paths under mail_base, or an explicit override
check "admin: home under mail_base accepted" "OK updated alice@a.test" "$(adm 'user set alice@a.test home=/var/vmail/a.test/alice mail=maildir:~/Maildir' | last)"
check "admin: home outside mail_base refused by the schema" "ERR bad-input" "$(adm 'user set alice@a.test home=/srv/elsewhere' | code)"
check "admin: '..' in home refused by the schema" "ERR bad-input" "$(adm 'user set alice@a.test home=/var/vmail/a.test/../../etc' | code)"
check "admin: mail location outside mail_base refused" "ERR bad-input" "$(adm 'user set alice@a.test mail=maildir:/etc/x' | code)"
check "admin: ... with path_override=yes accepted" "OK updated alice@a.test" "$(adm 'user set alice@a.test home=/srv/elsewhere path_override=yes' | last)"
check "admin: the override is stored" "/srv/elsewhere|t" "$(sql -c "SELECT home, path_override FROM mailroster.mailboxes WHERE local_part = 'alice'")"
adm 'user set alice@a.test home=/var/vmail/a.test/alice path_override=no' >/dev/null

# the schema, written directly (any client with the admin role)
s_fail() { # NAME SQL PATTERN
    local out
    if out=$(admin_sql -c "$2" 2>&1); then notok "schema: $1 (accepted)"
    elif printf '%s' "$out" | grep -Eq -- "$3"; then ok "schema: $1"
    else notok "schema: $1: wanted /$3/, got: $out"; fi
}
s_ok() { local out; if out=$(admin_sql -c "$2" 2>&1); then ok "schema: $1"; else notok "schema: $1: $out"; fi; }
s_fail "relative home refused" "UPDATE mailroster.mailboxes SET home = 'var/vmail/x' WHERE local_part = 'alice'" 'mailboxes_home_check|mail_base'
s_fail "home outside mail_base refused" "UPDATE mailroster.mailboxes SET home = '/home/alice' WHERE local_part = 'alice'" 'mailboxes_paths_under_mail_base'
s_fail "home with '..' refused" "UPDATE mailroster.mailboxes SET home = '/var/vmail/../etc' WHERE local_part = 'alice'" 'mailboxes_paths_under_mail_base'
s_fail "home beside mail_base (/var/vmailx) refused" "UPDATE mailroster.mailboxes SET home = '/var/vmailx/a' WHERE local_part = 'alice'" 'mailboxes_paths_under_mail_base'
s_fail "mail path outside mail_base refused" "UPDATE mailroster.mailboxes SET mail = 'maildir:/root/Maildir' WHERE local_part = 'alice'" 'mailboxes_paths_under_mail_base'
s_fail "mail INDEX= outside mail_base refused" "UPDATE mailroster.mailboxes SET mail = 'maildir:~/Maildir:INDEX=/tmp/idx' WHERE local_part = 'alice'" 'mailboxes_paths_under_mail_base'
s_fail "mail ~/../ refused" "UPDATE mailroster.mailboxes SET mail = 'maildir:~/../victim' WHERE local_part = 'alice'" 'mailboxes_paths_under_mail_base'
s_fail "mail ~user refused" "UPDATE mailroster.mailboxes SET mail = 'maildir:~victim/Maildir' WHERE local_part = 'alice'" 'mailboxes_paths_under_mail_base'
s_ok "mail ~/Maildir with LAYOUT=fs and an INDEX under mail_base accepted" "UPDATE mailroster.mailboxes SET mail = 'maildir:~/Maildir:LAYOUT=fs:INDEX=/var/vmail/idx/%u' WHERE local_part = 'alice'"
s_ok "path_override lets a home outside mail_base in" "UPDATE mailroster.mailboxes SET home = '/home/alice', path_override = true WHERE local_part = 'alice'"
s_fail "clearing path_override re-checks the paths" "UPDATE mailroster.mailboxes SET path_override = false WHERE local_part = 'alice'" 'mailboxes_paths_under_mail_base'
sql -c "UPDATE mailroster.mailboxes SET mail = NULL WHERE local_part = 'alice'" -c "UPDATE mailroster.settings SET mail_base = '/home'" >/dev/null
s_ok "another mail_base (settings) applies" "UPDATE mailroster.mailboxes SET path_override = false WHERE local_part = 'alice'"
sql -c "UPDATE mailroster.settings SET mail_base = '/var/vmail'" >/dev/null
s_fail "the admin role cannot move mail_base" "UPDATE mailroster.settings SET mail_base = '/'" 'permission denied'

# ---------------------------------------------------------------- 7: one hash check
# the SQL function, case by case, against the verdicts written in the table
grep -v '^#' "$CASES" >"$STACK_DIR/cases.tsv"
sql -c "CREATE TABLE pw_cases (verdict text, what text, hash text)" \
    -c "\\copy pw_cases FROM '$STACK_DIR/cases.tsv'" >/dev/null
ncases=$(wc -l <"$STACK_DIR/cases.tsv")
check "hash table: every case loaded" "$ncases" "$(sql -c "SELECT count(*) FROM pw_cases")"
# "AGREEING|DISAGREEING CASES": all of them agree, none named (a failing query is no answer)
agree_sql=$(sql -c "SELECT count(*) FILTER (WHERE mailroster.password_hash_ok(hash) IS NOT DISTINCT FROM (verdict = 'good'))
                   || '|' || coalesce(string_agg(what, '; ') FILTER (WHERE mailroster.password_hash_ok(hash) IS DISTINCT FROM (verdict = 'good')), '')
                   FROM pw_cases")
check "hash table: mailroster.password_hash_ok() agrees with every verdict ($ncases cases)" "$ncases|" "$agree_sql"
# the daemon's C check, through the admin socket: a hash it accepts goes on to
# the database and finds no such mailbox; one it refuses is bad-input at once
quote() { local s=${1//\\/\\\\}; printf '"%s"' "${s//\"/\\\"}"; }
: >"$STACK_DIR/req"
while IFS=$'\t' read -r verdict what hash; do
    printf 'user passwd nobody@a.test %s\n' "$(quote "$hash")" >>"$STACK_DIR/req"
done <"$STACK_DIR/cases.tsv"
socat -t 30 - "UNIX-CONNECT:$ADM" <"$STACK_DIR/req" >"$STACK_DIR/resp"
bad_c=""
i=0
while IFS=$'\t' read -r verdict what hash; do
    i=$((i + 1))
    got=$(sed -n "${i}p" "$STACK_DIR/resp")
    case $verdict:$got in
        good:"ERR not-found"*|bad:"ERR bad-input"*) ;;
        *) bad_c="$bad_c; $what ($verdict: $got)" ;;
    esac
done <"$STACK_DIR/cases.tsv"
check "hash table: the daemon's check (lib/pwhash.c) agrees with every verdict" "" "$bad_c"

# import through the socket: refused, the line and the cause named, nothing written
jl_dom='{"kind":"domain","name":"imp.test","enabled":true,"disabled_reason":null,"quota_bytes":0,"quota_messages":0,"send_limit_messages":0,"send_limit_recipients":0,"send_limit_window":3600}'
jl_mbx() { printf '{"kind":"mailbox","address":"%s","password":"%s","enabled":true,"disabled_reason":null,"may_send":true,"may_receive":true,"services":["imap"],"quota_bytes":null,"quota_messages":null,"send_limit_messages":null,"send_limit_recipients":null,"home":null,"mail":null,"uid":null,"gid":null,"maildir":null}' "$1" "$2"; }
imp_req() { # LINES...: import begin, each line, import commit
    printf 'import begin\n'
    for l in "$@"; do printf 'import line %s\n' "$(quote "$l")"; done
    printf 'import commit\n'
}
before=$(state)
out=$(imp_req "$jl_dom" "$(jl_mbx ok@imp.test "$HASH")" "$(jl_mbx p@imp.test '{PLAIN}hunter2')" | socat -t 20 - "UNIX-CONNECT:$ADM" | last)
case $out in "ERR bad-input line 3: mailbox: "*plaintext*) ok "import: {PLAIN}hunter2 refused, line and cause named" ;; *) notok "import: {PLAIN} refused with line and cause: [$out]" ;; esac
out=$(imp_req "$jl_dom" "$(jl_mbx n@imp.test '{SHA512-CRYPT}notahash')" | socat -t 20 - "UNIX-CONNECT:$ADM" | last)
case $out in "ERR bad-input line 2: mailbox: "*"SHA512-CRYPT"*) ok "import: {SHA512-CRYPT}notahash refused, line and cause named" ;; *) notok "import: notahash refused with line and cause: [$out]" ;; esac
jl_master='{"kind":"master","name":"gw","password":"{CLEAR}x","enabled":true,"domains":null}'
out=$(imp_req "$jl_dom" "$jl_master" | socat -t 20 - "UNIX-CONNECT:$ADM" | last)
case $out in "ERR bad-input line 2: master: "*) ok "import: a master user's plaintext refused" ;; *) notok "import: master plaintext: [$out]" ;; esac
check "import: nothing of the refused imports was written" "$before" "$(state)"
check "import: nobody is served a plaintext password" "0" "$(sql -c "SELECT count(*) FROM mailroster.mailboxes WHERE password LIKE '{PLAIN%'")"
s_fail "direct INSERT of {PLAIN}hunter2 refused" \
    "INSERT INTO mailroster.mailboxes (domain_id, local_part, password) SELECT id, 'p', '{PLAIN}hunter2' FROM mailroster.domains WHERE name = 'a.test'" 'mailboxes_password_check'
s_fail "direct UPDATE to {SHA512-CRYPT}notahash refused" \
    "UPDATE mailroster.mailboxes SET password = '{SHA512-CRYPT}notahash' WHERE local_part = 'alice'" 'mailboxes_password_check'
s_fail "direct INSERT of a master user with a malformed hash refused" \
    "INSERT INTO mailroster.master_users (name, password) VALUES ('m', '{BLF-CRYPT}\$2y\$10\$abc')" 'master_users_password_check'

# ---------------------------------------------------------------- 9: read-only
adm "master add support password=$HASH" >/dev/null
adm_as mrview export >"$STACK_DIR/ro.export"
check "read-only export: answered" "OK" "$(last <"$STACK_DIR/ro.export" | cut -d' ' -f1)"
if grep -q 'svn8UoSVapNt' "$STACK_DIR/ro.export"; then notok "read-only export: no hash in it"; else ok "read-only export: no hash in it"; fi
check "read-only export: the mailboxes and master users are there, password null" "3" \
    "$(grep -Ec 'password\\?":null' "$STACK_DIR/ro.export")"
case $(last <"$STACK_DIR/ro.export") in *"password hashes left out"*) ok "read-only export: says the hashes are left out" ;; *) notok "read-only export: says the hashes are left out: $(last <"$STACK_DIR/ro.export")" ;; esac
check "admin export: the hashes are there" "3" "$(adm export | grep -c 'svn8UoSVapNt')"
check "domain admin export of its domain: its hash is there, no other domain's" "1" "$(adm_as mrbbs 'export a.test' | grep -c 'svn8UoSVapNt')"
check "read-only: domain show, user show and limit show are answered" "OK 1 domain|OK 1 mailbox|OK" \
    "$(adm_as mrview 'domain show a.test' | last)|$(adm_as mrview 'user show alice@a.test' | last)|$(adm_as mrview 'limit show alice@a.test' | last | cut -d' ' -f1)"
if adm_as mrview 'user show alice@a.test' | grep -q 'svn8UoSVapNt\|\$6\$'; then notok "read-only user show: no hash"; else ok "read-only user show: no hash, only the scheme"; fi

# ---------------------------------------------------------------- 10: logging
long=$(head -c 70000 /dev/zero | tr '\0' x)
out=$(printf '%s' "$long" | su -s /bin/sh mrview -c "socat -t 5 - UNIX-CONNECT:$ADM" | last)
check "an oversized line: ERR usage" "ERR usage" "$(printf '%s' "$out" | cut -d' ' -f1-2)"
check "an oversized line: logged with its actor" "1" "$(grep -c 'admin: request line longer than 65536 octets from uid=[0-9]*(mrview) pid=[0-9]*' "$LOG")"
out=$(imp_req "$jl_dom" "$(jl_mbx ok@imp.test "$HASH")" | socat -t 20 - "UNIX-CONNECT:$ADM" | last)
check "import commit: answered" "OK imported 2 created, 0 updated, 0 unchanged" "$out"
for i in $(seq 50); do grep -q 'admin: import commit import of' "$LOG" && break; sleep 0.1; done
check "import commit: the log line names what came in" "1" \
    "$(grep -c 'admin: import commit import of 2 objects (2 created, 0 updated, 0 unchanged; domains: imp.test) by uid=0(root)' "$LOG")"
check "import commit: so does its audit row" "import of 2 objects (2 created, 0 updated, 0 unchanged; domains: imp.test)" \
    "$(sql -c "SELECT object FROM mailroster.audit_log WHERE action = 'import commit' ORDER BY id DESC LIMIT 1")"
# an import under way when the daemon stops
before=$(state)
mkfifo "$STACK_DIR/imp.fifo"
socat -t 30 - "UNIX-CONNECT:$ADM" <"$STACK_DIR/imp.fifo" >"$STACK_DIR/imp.out" 2>&1 &
SPID=$!
exec 5>"$STACK_DIR/imp.fifo"
printf 'import begin\nimport line %s\nimport line %s\n' "$(quote "$jl_dom")" "$(quote "$(jl_mbx late@imp.test "$HASH")")" >&5
for i in $(seq 100); do [ "$(grep -c '^OK' "$STACK_DIR/imp.out")" -ge 3 ] && break; sleep 0.05; done
mr_stop
exec 5>&-
wait "$SPID" 2>/dev/null
check "SIGTERM during an import: logged as abandoned, nothing committed" "1" \
    "$(grep -c 'admin: import session of uid=0(root) pid=[0-9]* abandoned: .* 2 lines received and no import commit; nothing was committed' "$LOG")"
check "SIGTERM during an import: nothing was written" "$before" "$(state)"
# under ASan/UBSan builds: no report in the daemon's output
if grep -Eq 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$LOG"; then
    notok "no sanitizer report in the daemon's log"; grep -E -A8 'Sanitizer|runtime error' "$LOG" | head -30 | sed 's/^/#   /'
else
    ok "no sanitizer report in the daemon's log"
fi

t_summary
