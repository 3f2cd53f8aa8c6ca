#!/usr/bin/env bash
# import_test.sh - export/import as JSON lines (sql/migrations/0002) and the
# importers (sql/import/*.sql, scripts/import-users-json) against a private
# PostgreSQL: one source database per importer loaded from
# tests/integration/import/<format>/, one mailroster database per format.
# For each: the importer's output and warnings, a dry run that changes
# nothing, the real import, spot checks of the edge cases, a second import
# that changes nothing, export -> import into a fresh database -> export
# (byte-identical), and a per-domain export.  Then malformed input, updates,
# privileges and NOTIFY.
#
#   bash tests/integration/import_test.sh          (as root: it starts PostgreSQL)
#
# Prints "ok - ..." / "not ok - ..." per check and "N passed, M failed" last;
# exits non-zero if anything failed.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
FIX=$TOP/tests/integration/import
STACK_DIR=$(mktemp -d /tmp/mr-import.XXXXXX)
export STACK_DIR
STACK_PIDS=()
. "$TOP/scripts/lib/stack.sh"
. "$TOP/tests/integration/lib.sh"
trap stack_cleanup EXIT
W=$STACK_DIR/work
mkdir -p "$W"

# pg DB ARGS...: psql as the superuser; adm DB ARGS...: as the admin login role
pg() { local db=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -At -U postgres -d "$db" "$@"; }
adm() { local db=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -At -U mradm -d "$db" "$@"; }
# one value from the superuser's view of DB (psql's errors go to stderr, never
# into the value: an unreachable database is not a value)
val() { pg "$1" -c "$2"; }

# newdb NAME [MAIL_BASE]: a mailroster database with schema.sql and roles.sql;
# with MAIL_BASE, mailroster.settings.mail_base set to it (as the sysop
# would, as the schema owner, to the mailrosterd mail_base of the new host)
newdb() {
    stack_pg_createdb "$1" &&
        pg "$1" -f "$TOP/sql/schema.sql" >/dev/null &&
        pg "$1" -f "$TOP/sql/roles.sql" >/dev/null &&
        if [ -n "${2:-}" ]; then pg "$1" -c "UPDATE mailroster.settings SET mail_base = '$2'" >/dev/null; fi
}

# imp DB FILE [true|false] [ROLE]: mailroster.import_jsonl(contents of FILE, dry)
# as ROLE (mradm); prints "line|action|kind|key" rows.
imp() {
    local db=$1 f=$2 dry=${3:-false} role=${4:-mradm}
    psql -X -q -v ON_ERROR_STOP=1 -At -U "$role" -d "$db" -v dry="$dry" -f - <<EOF
\\set lines \`cat '$f'\`
SELECT * FROM mailroster.import_jsonl(:'lines', :dry);
EOF
}
# export DB [DOMAIN]: mailroster.export_jsonl as the admin role
export_db() {
    if [ -n "${2:-}" ]; then
        adm "$1" -c "SELECT l FROM mailroster.export_jsonl('$2') AS l"
    else
        adm "$1" -c "SELECT l FROM mailroster.export_jsonl() AS l"
    fi
}
# state DB: sets STATE to the object counts and the change log's last seq.
# Called in this shell (not in $(...)) so that a psql failure is a "not ok"
# that counts; STATE is then unique, so no before/after comparison can match.
state() {
    if ! STATE=$(val "$1" "SELECT (SELECT count(*) FROM mailroster.domains) || ' ' || (SELECT count(*) FROM mailroster.mailboxes)
                     || ' ' || (SELECT count(*) FROM mailroster.aliases) || ' ' || (SELECT count(*) FROM mailroster.sender_addresses)
                     || ' ' || (SELECT count(*) FROM mailroster.master_users)
                     || ' seq=' || (SELECT coalesce(max(seq), 0) FROM mailroster.change_log)") ||
        ! [[ $STATE =~ ^[0-9]+\ [0-9]+\ [0-9]+\ [0-9]+\ [0-9]+\ seq=[0-9]+$ ]]; then
        notok "state of $1: psql failed (got [$STATE])"
        STATE="no state ($1, $RANDOM$RANDOM$RANDOM)"
    fi
}
nonblank() { grep -c . "$1"; }
# check_grep DESCRIPTION FILE ERE: FILE has a line matching ERE
check_grep() {
    if grep -Eq -- "$3" "$2"; then ok "$1"; else notok "$1: no line matching /$3/ in:"; sed 's/^/#   /' "$2" | head -20; fi
}
check_nogrep() {
    if grep -Eq -- "$3" "$2"; then notok "$1: unexpected /$3/:"; grep -E -- "$3" "$2" | sed 's/^/#   /' | head -5; else ok "$1"; fi
}

# format_ok FILE: every line is one compact JSON object with the keys of its
# kind in the documented order (all present)
format_ok() {
    python3 - "$1" <<'PY'
import json, sys
keys = {
    "domain": ["kind", "name", "enabled", "disabled_reason", "quota_bytes", "quota_messages",
               "send_limit_messages", "send_limit_recipients", "send_limit_window"],
    "mailbox": ["kind", "address", "password", "enabled", "disabled_reason", "may_send", "may_receive",
                "services", "quota_bytes", "quota_messages", "send_limit_messages", "send_limit_recipients",
                "home", "mail", "uid", "gid", "maildir"],
    "alias": ["kind", "source", "destinations", "enabled"],
    "sender": ["kind", "address", "login"],
    "master": ["kind", "name", "password", "enabled", "domains"],
}
bad = 0
for n, l in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    l = l.rstrip("\n")
    o = json.loads(l, object_pairs_hook=lambda p: p)
    k = dict(o).get("kind")
    if [x[0] for x in o] != keys.get(k) or l != json.dumps(dict(o), ensure_ascii=False, separators=(",", ":")):
        print(f"#   line {n}: {l}")
        bad += 1
sys.exit(1 if bad else 0)
PY
}

# only_domain FULL PART DOMAIN: PART is exactly the lines of FULL that belong
# to DOMAIN (its domain line, mailboxes, aliases, senders whose login is there)
only_domain() {
    python3 - "$1" "$2" "$3" <<'PY'
import json, sys
full, part, d = sys.argv[1:]
def mine(o):
    k = o["kind"]
    return ((k == "domain" and o["name"] == d) or (k == "mailbox" and o["address"].endswith("@" + d))
            or (k == "alias" and o["source"].endswith("@" + d)) or (k == "sender" and o["login"].endswith("@" + d)))
want = [l for l in open(full, encoding="utf-8") if mine(json.loads(l))]
got = list(open(part, encoding="utf-8"))
sys.exit(0 if want == got and got else 1)
PY
}

# the common checks of one format: dry run, import, re-import, round trip,
# per-domain export.  Spot checks follow per format.
run_format() { # FORMAT JSONL DB DOMAIN [MAIL_BASE of the round-trip database]
    local fmt=$1 jl=$2 db=$3 dom=$4 base=${5:-} before after n rows
    n=$(nonblank "$jl")
    if [ "$fmt" != full ]; then   # full.jsonl is hand-written: any order, a blank line, mixed case
        if format_ok "$jl"; then ok "$fmt: importer output is in the interchange format"; else notok "$fmt: importer output is in the interchange format"; fi
    fi
    state "$db"; before=$STATE
    if imp "$db" "$jl" true >"$W/$fmt.dry" 2>"$W/$fmt.dry.err"; then
        ok "$fmt: dry run succeeds"
    else
        notok "$fmt: dry run succeeds"; sed 's/^/#   /' "$W/$fmt.dry.err"
    fi
    state "$db"; after=$STATE
    check "$fmt: dry run changes nothing (rows, change_log seq)" "$before" "$after"
    check "$fmt: dry run reports every line as created" "$n" "$(grep -c '|created|' "$W/$fmt.dry")"
    if imp "$db" "$jl" false >"$W/$fmt.imp" 2>"$W/$fmt.imp.err"; then
        ok "$fmt: import succeeds"
    else
        notok "$fmt: import succeeds"; sed 's/^/#   /' "$W/$fmt.imp.err"
    fi
    check "$fmt: import reports the same as the dry run" "$(cat "$W/$fmt.dry")" "$(cat "$W/$fmt.imp")"
    rows=$(val "$db" "SELECT (SELECT count(*) FROM mailroster.domains) + (SELECT count(*) FROM mailroster.mailboxes)
                           + (SELECT count(*) FROM mailroster.aliases) + (SELECT count(*) FROM mailroster.sender_addresses)
                           + (SELECT count(*) FROM mailroster.master_users)")
    check "$fmt: one row per line landed" "$n" "$rows"
    check "$fmt: every landed row is in the change log" "$n" \
        "$(val "$db" "SELECT count(*) FROM mailroster.change_log WHERE op = 'I'")"
    state "$db"; before=$STATE
    imp "$db" "$jl" false >"$W/$fmt.again" 2>&1
    check "$fmt: importing the same file again: all unchanged" "$n unchanged" \
        "$(grep -c '|unchanged|' "$W/$fmt.again") unchanged"
    state "$db"
    check "$fmt: ... and nothing was written (rows, change_log seq)" "$before" "$STATE"
    export_db "$db" >"$W/$fmt.exp1"
    if format_ok "$W/$fmt.exp1"; then ok "$fmt: export is in the interchange format"; else notok "$fmt: export is in the interchange format"; fi
    newdb "${db}_rt" "$base" || notok "$fmt: fresh database"
    imp "${db}_rt" "$W/$fmt.exp1" false >/dev/null 2>"$W/$fmt.rt.err" || sed 's/^/#   /' "$W/$fmt.rt.err"
    export_db "${db}_rt" >"$W/$fmt.exp2"
    if [ -s "$W/$fmt.exp1" ] && cmp -s "$W/$fmt.exp1" "$W/$fmt.exp2"; then
        ok "$fmt: export -> import into a fresh database -> export is byte-identical"
    else
        notok "$fmt: export -> import into a fresh database -> export is byte-identical"
        diff "$W/$fmt.exp1" "$W/$fmt.exp2" | head -10 | sed 's/^/#   /'
    fi
    export_db "$db" "$dom" >"$W/$fmt.dom"
    if only_domain "$W/$fmt.exp1" "$W/$fmt.dom" "$dom"; then
        ok "$fmt: export of $dom has exactly that domain's lines"
    else
        notok "$fmt: export of $dom has exactly that domain's lines"; sed 's/^/#   /' "$W/$fmt.dom" | head -10
    fi
    check_nogrep "$fmt: a per-domain export has no master users" "$W/$fmt.dom" '"kind":"master"'
}

stack_pg_start || { notok "PostgreSQL starts"; t_summary; exit 1; }
newdb mr_ispmail || { notok "schema and roles load"; t_summary; exit 1; }
pg postgres -c "CREATE ROLE mradm LOGIN IN ROLE mailroster_admin" \
    -c "CREATE ROLE mrread LOGIN IN ROLE mailroster_reader"
ok "schema.sql (with 0002) and roles.sql load"
check "schema_version has every migration" \
    "$(ls "$TOP/sql/migrations" | sed -n 's/^0*\([0-9][0-9]*\)_.*\.sql$/\1/p' | sort -n | paste -sd,)" "$(val mr_ispmail "SELECT string_agg(version::text, ',' ORDER BY version) FROM mailroster.schema_version")"

# ---------------------------------------------------------------- ISP-mail
stack_pg_createdb src_ispmail && pg src_ispmail -f "$FIX/ispmail/source.sql" >/dev/null
if psql -X -At -U postgres -d src_ispmail -f "$TOP/sql/import/ispmail.sql" >"$W/ispmail.jsonl" 2>"$W/ispmail.err"; then
    ok "ispmail: importer runs"
else
    notok "ispmail: importer runs"; sed 's/^/#   /' "$W/ispmail.err"
fi
E=$W/ispmail.err
check_grep "ispmail: U-label domain refused, named" "$E" 'WARNING: +ispmail: domain "münchen.de" .*U-label'
check_grep "ispmail: mixed-case address reported" "$E" 'mailbox "Dave@example.org" becomes "dave@example.org"'
check_grep "ispmail: case twin left out, named" "$E" 'mailbox "Max@example.org" \(virtual_users id 4\) has the same address as virtual_users id 3'
check_grep "ispmail: uninferable hash reported" "$E" 'mailbox "weird@example.org" has a password hash without \{SCHEME\}'
check_grep "ispmail: alias source that is a mailbox refused, named" "$E" 'alias "john@example.org" .* is also a mailbox'
check_grep "ispmail: U-label destination dropped" "$E" 'destination "x@münchen.de" .* dropped'
check_grep "ispmail: '+' local part refused" "$E" 'mailbox "a\+b@example.org"'
check_grep "ispmail: \$1\$ (MD5 crypt) refused, named: imported without a password" "$E" 'mailbox "md5@example.org" has a \{MD5-CRYPT\} password hash, which mailroster refuses \(MD5 crypt is too weak\): imported without a password'
check_grep "ispmail: \$argon2i\$ refused, named" "$E" 'mailbox "argon2i@example.org" has a \{ARGON2I\} password hash, which mailroster refuses'
check_grep "ispmail: {Plain} refused, named" "$E" 'mailbox "plain@example.org" has a \{PLAIN\} password hash, which mailroster refuses \(plaintext'
check_grep "ispmail: DES {CRYPT} refused, named" "$E" 'mailbox "des@example.org" has a \{CRYPT\} password hash, which mailroster refuses \(DES crypt is too weak\)'
check_nogrep "ispmail: no refused scheme in the output" "$W/ispmail.jsonl" '\{(MD5-CRYPT|ARGON2I|PLAIN)\}|\{CRYPT\}abJ'
check_grep "ispmail: summary notice" "$E" 'NOTICE: +ispmail: 3 domains, 13 mailboxes, 4 aliases; 16 warnings'
run_format ispmail "$W/ispmail.jsonl" mr_ispmail example.org
D=mr_ispmail
check "ispmail: domains (U-label left out, mixed case folded)" "example.net example.org xn--bcher-kva.example" \
    "$(val $D "SELECT string_agg(name, ' ' ORDER BY name) FROM mailroster.domains")"
check "ispmail: \$6\$ hash gets {SHA512-CRYPT}, quota in bytes exact" "t|5368709120|example.org/dave/Maildir/" \
    "$(val $D "SELECT m.password LIKE '{SHA512-CRYPT}\$6\$rounds=5000\$%', m.quota_bytes, m.maildir FROM mailroster.mailboxes m WHERE local_part = 'dave'")"
check "ispmail: \$y\$ hash gets {CRYPT}, the lower-case twin is kept" "{CRYPT}\$y\$j9T\$F5Jx5" \
    "$(val $D "SELECT left(password, 19) FROM mailroster.mailboxes WHERE local_part = 'max'")"
check "ispmail: \$argon2id\$ / \$5\$ / {sha512-crypt} prefixes" "{ARGON2ID}|{SHA256-CRYPT}|{SHA512-CRYPT}" \
    "$(val $D "SELECT string_agg(substring(password from '^\{[A-Z0-9-]+\}'), '|' ORDER BY local_part) FROM mailroster.mailboxes WHERE local_part IN ('argon', 'sha256', 'sue')")"
check "ispmail: uninferable hash, refused schemes and NULL hash: no password" "argon2i des md5 nopw plain weird" \
    "$(val $D "SELECT string_agg(local_part, ' ' ORDER BY local_part) FROM mailroster.mailboxes WHERE password IS NULL")"
check "ispmail: quota 0 stays 0 (unlimited)" "0" "$(val $D "SELECT quota_bytes FROM mailroster.mailboxes WHERE local_part = 'john'")"
check "ispmail: catch-all @example.net" "{sue@example.net}" \
    "$(val $D "SELECT a.destinations FROM mailroster.aliases a JOIN mailroster.domains d ON d.id = a.domain_id WHERE d.name = 'example.net' AND a.local_part = ''")"
check "ispmail: the alias that is a mailbox did not land" "0" \
    "$(val $D "SELECT count(*) FROM mailroster.aliases WHERE local_part = 'john'")"
check "ispmail: destinations lowercased and deduplicated, in row order" "{john@example.org,dave@example.org}" \
    "$(val $D "SELECT destinations FROM mailroster.aliases WHERE local_part = 'team'")"
check "ispmail: mixed-case alias source folded" "1" "$(val $D "SELECT count(*) FROM mailroster.aliases WHERE local_part = 'sales'")"
psql -X -At -U postgres -d src_ispmail -v at_domain_aliases=skip -v maildir= -v default_pass_scheme=plain-md5 \
    -f "$TOP/sql/import/ispmail.sql" >"$W/ispmail2.jsonl" 2>"$W/ispmail2.err"
check_nogrep "ispmail -v at_domain_aliases=skip: no catch-all" "$W/ispmail2.jsonl" '"source":"@'
check_grep "ispmail -v at_domain_aliases=skip: says it never matched" "$W/ispmail2.err" 'alias "@example.net" .*never matched'
check_grep "ispmail -v default_pass_scheme: applied to the unprefixed hash, and {PLAIN-MD5} refused" "$W/ispmail2.err" 'mailbox "weird@example.org" has a \{PLAIN-MD5\} password hash, which mailroster refuses \(plaintext'
check_grep "ispmail -v default_pass_scheme=plain-md5: the mailbox without a password" "$W/ispmail2.jsonl" '"address":"weird@example.org","password":null,'
check_grep "ispmail -v maildir=: maildir left to mailroster" "$W/ispmail2.jsonl" '"address":"john@example.org".*"maildir":null\}'

# ---------------------------------------------------------------- BBS mail_users
newdb mr_bbs
stack_pg_createdb src_bbs && pg src_bbs -f "$FIX/bbs-mail-users/source.sql" >/dev/null
if psql -X -At -U postgres -d src_bbs -f "$TOP/sql/import/bbs-mail-users.sql" >"$W/bbs.jsonl" 2>"$W/bbs.err"; then
    ok "bbs-mail-users: importer runs"
else
    notok "bbs-mail-users: importer runs"; sed 's/^/#   /' "$W/bbs.err"
fi
E=$W/bbs.err
check_grep "bbs-mail-users: says the maildirs will be new" "$E" 'has no maildir column'
check_grep "bbs-mail-users: U-label domain refused" "$E" 'mailbox "anna@bücher.example" \(id 7\) has a U-label domain'
check_grep "bbs-mail-users: mixed case reported" "$E" 'mailbox "Dave@bbs.example" \(id 2\) becomes "dave@bbs.example"'
check_grep "bbs-mail-users: case twin left out" "$E" 'mailbox "Kim@BBS.example" \(id 4\) has the same address as "kim@bbs.example"'
check_grep "bbs-mail-users: uninferable hash reported" "$E" 'mailbox "legacy@bbs.example" \(id 9\) has a password hash without'
check_grep "bbs-mail-users: {MD5-CRYPT} refused, named" "$E" 'mailbox "retro@bbs.example" \(id 10\) has a \{MD5-CRYPT\} password hash, which mailroster refuses \(MD5 crypt is too weak\): imported without a password'
run_format bbs-mail-users "$W/bbs.jsonl" mr_bbs bbs.example
D=mr_bbs
check "bbs-mail-users: domains derived from the addresses" "bbs.example xn--bcher-kva.example" \
    "$(val $D "SELECT string_agg(name, ' ' ORDER BY name) FROM mailroster.domains")"
check "bbs-mail-users: quota_mb 0 -> 0 (unlimited), 250 -> 262144000, 4096 -> 4294967296" "0 262144000 4294967296" \
    "$(val $D "SELECT string_agg(quota_bytes::text, ' ' ORDER BY quota_bytes) FROM mailroster.mailboxes WHERE local_part IN ('sysop', 'dave', 'otto')")"
check "bbs-mail-users: enabled = false kept, {blf-crypt} upper-cased" "f|{BLF-CRYPT}" \
    "$(val $D "SELECT enabled, left(password, 11) FROM mailroster.mailboxes WHERE local_part = 'banned'")"
check "bbs-mail-users: bare \$2b\$ gets {BLF-CRYPT} (the lower-case twin)" "{BLF-CRYPT}\$2b\$12\$bbbb" \
    "$(val $D "SELECT left(password, 22) FROM mailroster.mailboxes WHERE local_part = 'kim'")"
check "bbs-mail-users: NULL password, uninferable hash and refused scheme: no password" "guest legacy retro" \
    "$(val $D "SELECT string_agg(local_part, ' ' ORDER BY local_part) FROM mailroster.mailboxes WHERE password IS NULL")"
check "bbs-mail-users: maildirs generated (<domain>/<local part>.<id>/)" "t" \
    "$(val $D "SELECT maildir ~ '^bbs\.example/sysop\.[0-9]+/$' FROM mailroster.mailboxes WHERE local_part = 'sysop'")"
psql -X -At -U postgres -d src_bbs -v maildir='%d/%n/' -v mb_bytes=1000000 -f "$TOP/sql/import/bbs-mail-users.sql" >"$W/bbs2.jsonl" 2>/dev/null
check_grep "bbs-mail-users -v maildir: the old layout kept" "$W/bbs2.jsonl" '"address":"sysop@bbs.example".*"maildir":"bbs.example/sysop/"\}'
check_grep "bbs-mail-users -v mb_bytes: another factor" "$W/bbs2.jsonl" '"address":"dave@bbs.example".*"quota_bytes":250000000,'

# ---------------------------------------------------------------- PostfixAdmin
newdb mr_pfa
stack_pg_createdb src_pfa && pg src_pfa -f "$FIX/postfixadmin/source.sql" >/dev/null
if psql -X -At -U postgres -d src_pfa -f "$TOP/sql/import/postfixadmin.sql" >"$W/pfa.jsonl" 2>"$W/pfa.err"; then
    ok "postfixadmin: importer runs"
else
    notok "postfixadmin: importer runs"; sed 's/^/#   /' "$W/pfa.err"
fi
E=$W/pfa.err
check_grep "postfixadmin: backup MX domain left out" "$E" 'domain "relay.example" is a backup MX domain'
check_grep "postfixadmin: forward of a mailbox refused, named" "$E" 'alias "bob@example.com" -> bob@example.com, bob@elsewhere.test is also a mailbox'
check_grep "postfixadmin: vacation destination dropped" "$E" 'destination "alice#example.com@autoreply.example.com" is PostfixAdmin.s vacation'
check_grep "postfixadmin: vacation on a mailbox's own row reported" "$E" 'mailbox "carol@example.com" has PostfixAdmin.s vacation'
check_grep "postfixadmin: bad maildir reported" "$E" 'has the maildir "../escape/"'
check_grep "postfixadmin: display names counted" "$E" '2 mailboxes have a display name'
check_grep "postfixadmin: \$1\$ (PostfixAdmin's md5crypt) refused, named" "$E" 'mailbox "alice@example.com" has a \{MD5-CRYPT\} password hash, which mailroster refuses \(MD5 crypt is too weak\): imported without a password'
check_nogrep "postfixadmin: the mailboxes' own alias rows are dropped silently" "$E" 'alias "(alice|dan)@'
run_format postfixadmin "$W/pfa.jsonl" mr_pfa example.com
D=mr_pfa
check "postfixadmin: domains (ALL and backup MX left out, active -> enabled)" "alias.example:true example.com:true old.example:false shop.example:true" \
    "$(val $D "SELECT string_agg(name || ':' || enabled, ' ' ORDER BY name) FROM mailroster.domains")"
check "postfixadmin: maildir and quota bytes kept, the \$1\$ hash not" "example.com/alice/|1024000000|no password" \
    "$(val $D "SELECT maildir, quota_bytes, coalesce(password, 'no password') FROM mailroster.mailboxes WHERE local_part = 'alice'")"
check "postfixadmin: smtp_active = false -> may_send false, no submission" "f|{imap,pop3,lmtp,sieve}" \
    "$(val $D "SELECT may_send, services FROM mailroster.mailboxes WHERE local_part = 'bob'")"
check "postfixadmin: inactive mailbox disabled" "f" "$(val $D "SELECT enabled FROM mailroster.mailboxes WHERE local_part = 'carol'")"
check "postfixadmin: no alias rows for mailboxes" "0" \
    "$(val $D "SELECT count(*) FROM mailroster.aliases a JOIN mailroster.mailboxes m USING (domain_id, local_part)")"
check "postfixadmin: catch-all and alias domain" "@alias.example:{@example.com} @example.com:{alice@example.com}" \
    "$(val $D "SELECT string_agg(a.local_part || '@' || d.name || ':' || a.destinations::text, ' ' ORDER BY d.name) FROM mailroster.aliases a JOIN mailroster.domains d ON d.id = a.domain_id WHERE a.local_part = ''")"
check "postfixadmin: goto split at commas and spaces; vacation dropped; inactive alias disabled" \
    "info:{alice@example.com,carol@example.com}:true old:{alice@example.com}:false sales:{alice@example.com}:true" \
    "$(val $D "SELECT string_agg(local_part || ':' || destinations::text || ':' || enabled, ' ' ORDER BY local_part) FROM mailroster.aliases WHERE local_part <> ''")"
check "postfixadmin: a maildir mailroster refuses is replaced" "t" \
    "$(val $D "SELECT maildir ~ '^shop\.example/eve\.[0-9]+/$' FROM mailroster.mailboxes WHERE local_part = 'eve'")"

# ---------------------------------------------------------------- vmm
newdb mr_vmm
stack_pg_createdb src_vmm && pg src_vmm -f "$FIX/vmm/source.sql" >/dev/null
if psql -X -At -U postgres -d src_vmm -f "$TOP/sql/import/vmm.sql" >"$W/vmm.jsonl" 2>"$W/vmm.err"; then
    ok "vmm: importer runs"
else
    notok "vmm: importer runs"; sed 's/^/#   /' "$W/vmm.err"
fi
E=$W/vmm.err
check_grep "vmm: alias row with an empty address left out: never matched" "$E" 'alias "@example.com" -> "a.user@example.com" has an empty address: .*never matched'
check_grep "vmm: alias that is a mailbox refused, named" "$E" 'alias "b.user@example.com" -> "a.user@example.com" is also a mailbox'
check_grep "vmm: catch-all destination with %n dropped" "$E" 'catch-all "@vmm.test": destination "%n@other.example" uses %n'
check_grep "vmm: relocated reported" "$E" 'relocated "gone@vmm.test"'
check_grep "vmm: alias domain reported" "$E" 'alias domain "example.net" of "example.com"'
check_grep "vmm: per-user transport reported" "$E" 'mailbox "postmaster@example.com" has its own transport'
check_grep "vmm: {CRAM-MD5} refused, named" "$E" 'mailbox "b.user@example.com" has a \{CRAM-MD5\} password hash, which mailroster refuses.*imported without a password'
# vmm's homes are under /srv/mail (its domaindir base): the sysop keeps the
# mail where it is and sets mailroster's mail_base (and mailrosterd's) to it.
# Before that, the import is refused, naming the line and mail_base.
if imp mr_vmm "$W/vmm.jsonl" true >"$W/vmm.base" 2>&1; then
    notok "vmm: homes outside mail_base (default /var/vmail) refused: it was accepted"
else
    check_grep "vmm: homes outside mail_base (default /var/vmail) refused, naming the line" "$W/vmm.base" \
        'line [0-9]+: mailbox: .*home /srv/mail/[^ ]+ is not a clean absolute path under mail_base /var/vmail'
fi
pg mr_vmm -c "UPDATE mailroster.settings SET mail_base = '/srv/mail'" >/dev/null
run_format vmm "$W/vmm.jsonl" mr_vmm example.com /srv/mail
D=mr_vmm
check "vmm: domain quota from quotalimit, exact" "1073741824|10000" \
    "$(val $D "SELECT quota_bytes, quota_messages FROM mailroster.domains WHERE name = 'example.com'")"
check "vmm: uid, gid, home and mail kept" "70002|70000|/srv/mail/5/70000/70002|maildir:~/Maildir" \
    "$(val $D "SELECT uid, gid, home, mail FROM mailroster.mailboxes WHERE local_part = 'a.user'")"
check "vmm: service set: smtp off -> no submission, may_send false; user quotalimit" "f|{imap,pop3,lmtp,sieve}|524288000" \
    "$(val $D "SELECT may_send, services, quota_bytes FROM mailroster.mailboxes WHERE local_part = 'b.user'")"
check "vmm: the domain's service set applies when the user has none" "{imap,submission,lmtp}" \
    "$(val $D "SELECT services FROM mailroster.mailboxes WHERE local_part = 'c.user'")"
check "vmm: %n filled in; the empty-address row and the mailbox alias did not land" "info:{b.user@example.com,a.user@example.com} list:{list-owner@lists.example.org}" \
    "$(val $D "SELECT string_agg(a.local_part || ':' || a.destinations::text, ' ' ORDER BY a.local_part) FROM mailroster.aliases a JOIN mailroster.domains d ON d.id = a.domain_id WHERE d.name = 'example.com'")"
check "vmm: alias domain: catch-all rewrite and sender rights" "{@example.com}|3" \
    "$(val $D "SELECT a.destinations, (SELECT count(*) FROM mailroster.sender_addresses WHERE address LIKE '%@example.net') FROM mailroster.aliases a JOIN mailroster.domains d ON d.id = a.domain_id WHERE d.name = 'example.net'")"
check "vmm: catchall table -> catch-all" "{c.user@vmm.test}" \
    "$(val $D "SELECT a.destinations FROM mailroster.aliases a JOIN mailroster.domains d ON d.id = a.domain_id WHERE d.name = 'vmm.test' AND a.local_part = ''")"

# ---------------------------------------------------------------- users.json
newdb mr_users
U=$FIX/users-json
if "$TOP/scripts/import-users-json" --config "$U/config.json" --valiases "$U/local_valiases.json" \
        --passwd "$U/passwd" "$U/users.json" >"$W/users.jsonl" 2>"$W/users.err"; then
    ok "users-json: importer runs"
else
    notok "users-json: importer runs"; sed 's/^/#   /' "$W/users.err"
fi
E=$W/users.err
HAVE_IDN2=$(python3 -c 'import ctypes.util; print(1 if ctypes.util.find_library("idn2") else 0)')
check_grep "users-json: mixed-case key reported" "$E" 'account "Bob@Example.com" becomes "bob@example.com" \(Postfix accepted'
check_grep "users-json: duplicate alias: the first map line wins, the others reported" "$E" 'local_valiases entry "info@example.com" is the same alias as the earlier alias of account "Bob@Example.com"'
check_grep "users-json: alias that is an account refused, named" "$E" 'alias of account "gina@example.com" "frank@example.com" is also the address of account "frank@example.com"'
check_grep "users-json: disabled domain: the change is said" "$E" 'domain "old.example.com" has "enable": false: imported disabled'
check_grep "users-json: catchAll's new send right is said" "$E" 'catch-all "@sub.example.com" -> alice@example.com: in mailroster'
check_grep "users-json: unusable quota and password reported" "$E" 'account "hugo@example.com" has a password that is not a hash.*quota "10%"'
check_grep "users-json: DES crypt (by --default-scheme CRYPT) refused, named" "$E" 'account "dave@example.com" has a \{CRYPT\} password hash \(from hashedPassword\), which mailroster refuses \(DES crypt is too weak\): imported without a password'
if [ "$HAVE_IDN2" = 1 ]; then
    check_grep "users-json: U-label converted with IDNA2008" "$W/users.jsonl" '"address":"erin@xn--mnchen-3ya.de"'
else
    check_grep "users-json: U-label refused without libidn2" "$E" 'erin@münchen.de.*libidn2'
fi
run_format users-json "$W/users.jsonl" mr_users example.com
D=mr_users
check "users-json: quota 4G / 500M / 1024 (no unit = KiB), exact" "alice:4294967296 bob:524288000 dave:1048576" \
    "$(val $D "SELECT string_agg(local_part || ':' || quota_bytes, ' ' ORDER BY local_part) FROM mailroster.mailboxes WHERE local_part IN ('alice', 'bob', 'dave')")"
check "users-json: \$y\$ -> {CRYPT}, empty -> passwd file, DES (--default-scheme CRYPT) -> none" "alice:{CRYPT}\$y\$ carol:{BLF-CRYPT} dave:no password" \
    "$(val $D "SELECT string_agg(local_part || ':' || coalesce(left(password, CASE local_part WHEN 'carol' THEN 11 ELSE 10 END), 'no password'), ' ' ORDER BY local_part) FROM mailroster.mailboxes WHERE local_part IN ('alice', 'carol', 'dave')")"
check "users-json: info -> the first map line (Bob's)" "{bob@example.com}" \
    "$(val $D "SELECT destinations FROM mailroster.aliases WHERE local_part = 'info'")"
check "users-json: sendOnly -> may_receive false; no alias frank" "f|0" \
    "$(val $D "SELECT may_receive, (SELECT count(*) FROM mailroster.aliases WHERE local_part = 'frank') FROM mailroster.mailboxes WHERE local_part = 'frank'")"
check "users-json: disabled domain, catch-all, maildir template" "f|{alice@example.com}|example.com/alice/" \
    "$(val $D "SELECT (SELECT enabled FROM mailroster.domains WHERE name = 'old.example.com'),
                      (SELECT a.destinations FROM mailroster.aliases a JOIN mailroster.domains d ON d.id = a.domain_id WHERE d.name = 'sub.example.com' AND a.local_part = ''),
                      (SELECT maildir FROM mailroster.mailboxes WHERE local_part = 'alice')")"
"$TOP/scripts/import-users-json" "$U/users.json" >"$W/users2.jsonl" 2>"$W/users2.err"
check_grep "users-json without --config: the accounts' domains, enabled" "$W/users2.jsonl" '^\{"kind":"domain","name":"old.example.com","enabled":true,'
check_grep "users-json without --passwd: empty hashedPassword reported" "$W/users2.err" 'account "carol@example.com" has no password'
"$TOP/scripts/import-users-json" --bogus x >/dev/null 2>&1
check "users-json: usage error exits 2" "2" "$?"

# ---------------------------------------------------------------- every field
newdb mr_full
F=$FIX/full.jsonl
run_format full "$F" mr_full full.example
D=mr_full
check "full: lines in any order are applied in dependency order; keys canonicalised" "x@other.example|{full.example,other.example}" \
    "$(val $D "SELECT (SELECT m.local_part || '@' || d.name FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id WHERE d.name = 'other.example'),
                      (SELECT domains FROM mailroster.master_users WHERE name = 'support')")"
check "full: every mailbox field landed" "f|left \"for good\" – März|f|t|{imap,lmtp}|1073741824|5000|10|20|/var/vmail/full.example/all|maildir:~/Maildir|5000|5000|full.example/all/" \
    "$(val $D "SELECT enabled, disabled_reason, may_send, may_receive, services, quota_bytes, quota_messages, send_limit_messages, send_limit_recipients, home, mail, uid, gid, maildir FROM mailroster.mailboxes WHERE local_part = 'all'")"
check "full: every domain field landed" "f|unpaid|2147483648|100000|100|500|86400" \
    "$(val $D "SELECT enabled, disabled_reason, quota_bytes, quota_messages, send_limit_messages, send_limit_recipients, send_limit_window FROM mailroster.domains WHERE name = 'full.example'")"
check "full: the per-domain export keeps senders by login domain" "2" "$(grep -c '"kind":"sender"' "$W/full.dom")"
check "full: a whole export has the master users, sorted" "gateway support" \
    "$(grep '"kind":"master"' "$W/full.exp1" | python3 -c 'import sys, json; print(" ".join(json.loads(l)["name"] for l in sys.stdin))')"

# updates: change a field in an export, import it: one "updated"
sed 's/"quota_bytes":1073741824,"quota_messages":5000/"quota_bytes":2147483648,"quota_messages":5000/' "$W/full.exp1" >"$W/full.upd"
imp $D "$W/full.upd" >"$W/full.upd.out" 2>&1
check "update: one changed field -> one 'updated', the rest unchanged" "1 updated, $(($(nonblank "$W/full.upd") - 1)) unchanged" \
    "$(grep -c '|updated|mailbox|all@full.example$' "$W/full.upd.out") updated, $(grep -c '|unchanged|' "$W/full.upd.out") unchanged"
check "update: the value changed" "2147483648" "$(val $D "SELECT quota_bytes FROM mailroster.mailboxes WHERE local_part = 'all'")"
# a maildir of null keeps the stored one; a different one replaces it
sed -n '/"address":"x@other.example"/p' "$W/full.exp1" | sed 's/"maildir":"[^"]*"/"maildir":null/' >"$W/full.nullmd"
check "update: maildir null keeps the stored maildir" "1|unchanged|mailbox|x@other.example" "$(imp $D "$W/full.nullmd" 2>&1)"
sed -n '/"address":"x@other.example"/p' "$W/full.exp1" | sed 's/"maildir":"[^"]*"/"maildir":"moved\/x\/"/' >"$W/full.newmd"
check "update: a new maildir replaces it" "1|updated|mailbox|x@other.example moved/x/" \
    "$(imp $D "$W/full.newmd" 2>&1) $(val $D "SELECT maildir FROM mailroster.mailboxes WHERE local_part = 'x'")"
# an import never deletes: a file with less in it leaves the rest alone
head -1 "$W/full.exp1" >"$W/full.one"
state $D; before=$STATE
imp $D "$W/full.one" >/dev/null 2>&1
state $D
check "an import never deletes" "$before" "$STATE"

# ---------------------------------------------------------------- malformed input
D=mr_ispmail
good_dom='{"kind":"domain","name":"new.example","enabled":true,"disabled_reason":null,"quota_bytes":0,"quota_messages":0,"send_limit_messages":0,"send_limit_recipients":0,"send_limit_window":3600}'
good_mbx='{"kind":"mailbox","address":"neu@new.example","password":null,"enabled":true,"disabled_reason":null,"may_send":true,"may_receive":true,"services":["imap"],"quota_bytes":null,"quota_messages":null,"send_limit_messages":null,"send_limit_recipients":null,"home":null,"mail":null,"uid":null,"gid":null,"maildir":null}'
bad_case() { # NAME LINE3 PATTERN: good lines 1-2 (and a blank line), the bad one on line 4
    local name=$1 bad=$2 pat=$3 before out
    printf '%s\n%s\n\n%s\n%s\n' "$good_dom" "$good_mbx" "$bad" "$(sed -n 1p "$W/ispmail.jsonl")" >"$W/bad.jsonl"
    state $D; before=$STATE
    if out=$(imp $D "$W/bad.jsonl" 2>&1); then
        notok "malformed: $name: refused (it was accepted)"
    elif printf '%s\n' "$out" | grep -Eq -- "$pat"; then
        ok "malformed: $name: refused with the line number"
    else
        notok "malformed: $name: wrong message, wanted /$pat/"; printf '%s\n' "$out" | sed 's/^/#   /'
    fi
    state $D
    check "malformed: $name: nothing changed" "$before" "$STATE"
}
bad_case "not JSON" '{"kind":"domain","name":"x.example"' 'ERROR: +line 4: not valid JSON'
bad_case "wrong type" "${good_mbx/\"quota_bytes\":null/\"quota_bytes\":\"1G\"}" 'line 4: mailbox: "quota_bytes" must be a number or null'
bad_case "unknown kind" '{"kind":"forward","from":"a@b.c"}' 'line 4: unknown kind "forward"'
bad_case "missing key" '{"kind":"alias","source":"x@new.example","enabled":true}' 'line 4: alias: missing "destinations"'
bad_case "unknown key" '{"kind":"sender","address":"x@new.example","login":"neu@new.example","note":"hi"}' 'line 4: sender: unknown key "note"'
bad_case "fraction" '{"kind":"domain","name":"y.example","enabled":true,"disabled_reason":null,"quota_bytes":1.5,"quota_messages":0,"send_limit_messages":0,"send_limit_recipients":0,"send_limit_window":3600}' 'line 4: domain: "quota_bytes" must be a whole number'
bad_case "U-label" '{"kind":"domain","name":"münchen.de","enabled":true,"disabled_reason":null,"quota_bytes":0,"quota_messages":0,"send_limit_messages":0,"send_limit_recipients":0,"send_limit_window":3600}' 'line 4: domain: "name" "münchen.de" is a U-label: convert it to its A-label'
bad_case "no {SCHEME}" "${good_mbx/\"password\":null/\"password\":\"\$6\$abc\$def\"}" 'line 4: mailbox: "password" must be a hash with its \{SCHEME\} prefix'
bad_case "alias of a stored mailbox" '{"kind":"alias","source":"john@example.org","destinations":["x@y.example"],"enabled":true}' 'line 4: alias: address john@example.org is already a mailbox'
bad_case "unknown domain" "${good_mbx/neu@new.example/neu@nowhere.example}" 'line 4: mailbox: the domain "nowhere.example" of "neu@nowhere.example" does not exist'
bad_case "the same object twice" "$good_dom" 'line 4: domain: "new.example" is also on line 1'
bad_case "mailbox and alias in one file" '{"kind":"alias","source":"neu@new.example","destinations":["x@y.example"],"enabled":true}' 'line 4: alias: "neu@new.example" is a mailbox on line 2'
bad_case "sender without mailbox" '{"kind":"sender","address":"x@new.example","login":"nobody@new.example"}' 'line 4: sender: the login "nobody@new.example" is not a mailbox'
bad_case "constraint (home)" "${good_mbx/\"home\":null/\"home\":\"relative\"}" 'line 4: mailbox: "home" must be an absolute path'
bad_case "not an object" '["kind","domain"]' 'line 4: not a JSON object'
bad_case "a key twice" '{"kind":"sender","address":"x@new.example","login":"neu@new.example","login":"neu@new.example"}' 'line 4: sender: key "login" appears more than once'

# ---------------------------------------------------------------- privileges and NOTIFY
if imp mr_full "$F" true mrread >"$W/priv.out" 2>&1; then
    notok "the reader role cannot import"
else
    check_grep "the reader role cannot import" "$W/priv.out" 'permission denied for function import_jsonl'
fi
if psql -X -q -At -U mrread -d mr_full -c "SELECT count(*) FROM mailroster.export_jsonl()" >"$W/priv2.out" 2>&1; then
    check "the reader role can export" "$(nonblank "$W/full.exp1")" "$(cat "$W/priv2.out")"
else
    notok "the reader role can export"; sed 's/^/#   /' "$W/priv2.out"
fi
check "PUBLIC may not execute either function" "f|f" \
    "$(val mr_full "SELECT has_function_privilege('public', 'mailroster.import_jsonl(text, boolean)', 'EXECUTE'), has_function_privilege('public', 'mailroster.export_jsonl(text)', 'EXECUTE')")"
check "export of an unknown domain is an error" "no such domain: nowhere.example" \
    "$(adm mr_full -c "SELECT mailroster.export_jsonl('nowhere.example')" 2>&1 | sed -n 's/^ERROR: *//p')"

notify_seen() { # DRY: import one new domain as mradm in a session that LISTENs
    local dry=$1 name=$2
    printf '{"kind":"domain","name":"%s","enabled":true,"disabled_reason":null,"quota_bytes":0,"quota_messages":0,"send_limit_messages":0,"send_limit_recipients":0,"send_limit_window":3600}\n' "$name" >"$W/n.jsonl"
    psql -X -At -U mradm -d mr_full -v dry="$dry" -f - <<EOF 2>&1 | grep -c 'Asynchronous notification "mailroster_changes"'
LISTEN mailroster_changes;
\\set lines \`cat '$W/n.jsonl'\`
SELECT count(*) FROM mailroster.import_jsonl(:'lines', :dry);
SELECT 1;
EOF
}
check "a dry run sends no NOTIFY" "0" "$(notify_seen true dry.example)"
check "a real import sends one NOTIFY" "1" "$(notify_seen false real.example)"
check "the dry run's domain is not there, the real one is" "0|1" \
    "$(val mr_full "SELECT count(*) FILTER (WHERE name = 'dry.example') || '|' || count(*) FILTER (WHERE name = 'real.example') FROM mailroster.domains")"

t_summary
