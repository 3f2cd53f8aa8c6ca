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
. "$TOP/tests/integration/begin.sh" mr-import
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
                "home", "mail", "uid", "gid", "maildir", "display_name", "metadata", "forward_to", "keep_copy"],
    "alias": ["kind", "source", "destinations", "enabled", "may_send"],
    "sender": ["kind", "address", "login"],
    "master": ["kind", "name", "password", "enabled", "domains"],
    "transport": ["kind", "pattern", "transport", "enabled"],
    "share": ["kind", "mailbox", "shared_with"],
    "sieve": ["kind", "address", "script"],
}
bad = 0
for n, l in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    l = l.rstrip("\n")
    o = json.loads(l)       # (dicts keep the order of the keys)
    k = o.get("kind")
    if list(o) != keys.get(k) or l != json.dumps(o, ensure_ascii=False, separators=(",", ":")):
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
            or (k == "alias" and o["source"].endswith("@" + d)) or (k == "sender" and o["login"].endswith("@" + d))
            or (k == "share" and o["mailbox"].endswith("@" + d)) or (k == "sieve" and o["address"].endswith("@" + d)))
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
                           + (SELECT count(*) FROM mailroster.master_users) + (SELECT count(*) FROM mailroster.transports)
                           + (SELECT count(*) FROM mailroster.shared_mailboxes) + (SELECT count(*) FROM mailroster.sieve_scripts)")
    check "$fmt: one row per line landed" "$n" "$rows"
    # (shares and sieve scripts are no directory rows: Dovecot reads them,
    # not mailrosterd, so they have no change log)
    check "$fmt: every landed directory row is in the change log" \
        "$(( n - $(grep -c '"kind":"\(share\|sieve\)"' "$jl") ))" \
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

# ---------------------------------------------------------------- seed helpers
# report_ok FMT ERRFILE EXPECTED.tsv: the report (stderr) has exactly the
# lines of the hand-written EXPECTED.tsv (REF, VERDICT, a fragment of the
# message; one report line each) and the summary line, nothing else.
report_ok() {
    python3 - "$@" <<'PY'
import sys
fmt, err, exp = sys.argv[1:]
want = [l.rstrip("\n").split("\t") for l in open(exp, encoding="utf-8") if l.strip() and not l.startswith("#")]
got = [l.rstrip("\n") for l in open(err, encoding="utf-8") if l.startswith(fmt + ": ") and not l.startswith(fmt + ": imported ")]
bad = 0
used = set()
for ref, verdict, frag in want:
    hits = [i for i, g in enumerate(got) if g.startswith(f"{fmt}: {ref}: {verdict}: ") and frag in g and i not in used]
    if len(hits) != 1:
        print(f"#   expected once, found {len(hits)}: {ref}: {verdict}: ...{frag}...")
        bad += 1
    else:
        used.add(hits[0])
for i, g in enumerate(got):
    if i not in used:
        print(f"#   not expected: {g}")
        bad += 1
others = [l for l in open(err, encoding="utf-8") if not l.startswith(fmt + ": ")]
for l in others:
    print(f"#   stray stderr: {l.rstrip()}")
    bad += 1
sys.exit(1 if bad else 0)
PY
}
# seed_maps SRCDB ROLE DIR OUT FILES...: the seed's own map files, rewritten
# only for the connection (host, port, database, no password), into OUT
seed_maps() {
    local db=$1 role=$2 dir=$3 out=$4 f; shift 4
    mkdir -p "$out"
    for f in "$@"; do
        sed -e "s|^hosts = .*|hosts = 127.0.0.1:$STACK_PG_PORT|" -e "s|^dbname = .*|dbname = $db|" \
            -e "s|^user = .*|user = $role|" -e '/^password = /d' "$dir/$f" >"$out/$f"
    done
}
# batch_q MAPSPEC ARRAY < KEYS: every key asked in one postmap run (-q -);
# ARRAY[key] = the answer (several lines of one key joined with commas),
# unset when not found
batch_q() {
    local -n into=$2
    local k v
    into=()
    while IFS=$'\t' read -r k v; do
        into[$k]=${into[$k]:+${into[$k]},}$v
    done < <(postmap -q - "$1" 2>/dev/null)
}
# compare_maps FMT DIR KEYS DOMAINS_CF MAILBOXES_CF ALIASES_CF [SENDER_CFS...]:
# every key asked of the old maps (as Postfix asks: the address, then @domain,
# only in a hosted domain) and of mailrosterd's socketmap; prints
# "MAP key<TAB>old<TAB>new" for each difference, keys in lower case.
# (Each map is asked all its keys in one postmap run.)
compare_maps() {
    local fmt=$1 dir=$2 keys=$3 dcf=$4 mcf=$5 acf=$6 lk dom o n m v i; shift 6
    local scfs=("$@") smap="socketmap:unix:$MR_SMAP_UNIX"
    local -A od nd om nm oa na ns os tmp
    local -a lks
    mapfile -t lks < <(grep -v '^$' "$keys" | python3 -c 'import sys; [print(l.rstrip("\n").lower()) for l in sys.stdin]')
    local all="$STACK_DIR/compare.keys"
    { printf '%s\n' "${lks[@]}"; for lk in "${lks[@]}"; do printf '%s\n' "${lk##*@}" "@${lk##*@}"; done; } | sort -u >"$all"
    batch_q "pgsql:$dir/$dcf" od <"$all"
    batch_q "$smap:domains" nd <"$all"
    batch_q "pgsql:$dir/$mcf" om <"$all"
    batch_q "$smap:mailboxes" nm <"$all"
    batch_q "pgsql:$dir/$acf" oa <"$all"
    batch_q "$smap:aliases" na <"$all"
    batch_q "$smap:senders" ns <"$all"
    for i in "${!scfs[@]}"; do
        batch_q "pgsql:$dir/${scfs[$i]}" tmp <"$all"
        for m in "${!tmp[@]}"; do os[$i|$m]=${tmp[$m]}; done
    done
    sortlist() { printf '%s' "$1" | tr ',' '\n' | sort | paste -sd, -; }
    for lk in "${lks[@]}"; do
        dom=${lk##*@}
        o="(not found)"; [ -n "${od[$dom]:-}" ] && o=found
        n="(not found)"; [ -n "${nd[$dom]+x}" ] && n=found
        [ "$o" = "$n" ] || printf 'domains %s\t%s\t%s\n' "$dom" "$o" "$n"
        [ "$lk" = "${lk#@}" ] || continue
        [ "$o" = found ] || continue
        o="(not found)"; [ -n "${om[$lk]:-}" ] && o=found
        n="(not found)"; [ -n "${nm[$lk]+x}" ] && n=found
        [ "$o" = "$n" ] || printf 'mailboxes %s\t%s\t%s\n' "$lk" "$o" "$n"
        o=${oa[$lk]:-}; [ -n "$o" ] || o=${oa[@$dom]:-}
        o=$(sortlist "${o:-(not found)}")
        n=$(sortlist "${na[$lk]-(not found)}")
        [ "$o" = "$n" ] || printf 'aliases %s\t%s\t%s\n' "$lk" "$o" "$n"
        if [ ${#scfs[@]} -gt 0 ]; then
            o=""
            for m in "$lk" "@$dom"; do
                for i in "${!scfs[@]}"; do
                    [ -z "$o" ] && o=${os[$i|$m]:-}
                done
            done
            o=$(sortlist "${o:-(not found)}")
            n=$(sortlist "${ns[$lk]-(not found)}")
            [ "$o" = "$n" ] || printf 'senders %s\t%s\t%s\n' "$lk" "$o" "$n"
        fi
    done | sort -u
}
# diffs_ok FMT GOT EXPECTED REPORT: the differences are exactly the
# hand-written ones, and each one's address is named in the report
diffs_ok() {
    local fmt=$1 got=$2 exp=$3 rep=$4
    check "$fmt: old maps and mailrosterd differ exactly where expected" \
        "$(grep -v '^#' "$exp" | cut -f1 | sort -u)" "$(cut -f1 "$got" | sort -u)"
    local miss
    miss=$(grep -v '^#' "$exp" | cut -f3 | sort -u | while IFS= read -r a; do
        [ -n "$a" ] && ! grep -qiF -- "$a" "$rep" && echo "$a"; done)
    check "$fmt: every difference is named in the report" "" "$miss"
}

# ---------------------------------------------------------------- ISP-mail (seed 002)
pg postgres -c "CREATE ROLE mail_user WITH LOGIN" -c "CREATE ROLE binkterm_mail WITH LOGIN" -c "CREATE ROLE mrd LOGIN IN ROLE mailroster_reader" >/dev/null
stack_pg_createdb src_isp && pg src_isp -f "$FIX/ispmail/schema.sql" -f "$FIX/ispmail/data.sql" >/dev/null &&
    pg src_isp -c "GRANT CONNECT ON DATABASE src_isp TO mail_user" >/dev/null
if psql -X -At -U mail_user -d src_isp -f "$TOP/sql/import/ispmail.sql" >"$W/isp.jsonl" 2>"$W/isp.err"; then
    ok "ispmail (seed 002): importer runs as the tutorial's read-only mail_user"
else
    notok "ispmail (seed 002): importer runs as the tutorial's read-only mail_user"; sed 's/^/#   /' "$W/isp.err"
fi
if report_ok ispmail "$W/isp.err" "$FIX/ispmail/expected-report.tsv"; then
    ok "ispmail (seed 002): the report names exactly the expected rows"
else
    notok "ispmail (seed 002): the report names exactly the expected rows"
fi
check_grep "ispmail (seed 002): summary" "$W/isp.err" '^ispmail: imported 4 domains, 19 mailboxes, 7 aliases, 0 senders, 0 master users, 0 transports, 2 shares, 0 sieve scripts; report: 3 not imported, 24 changed, 0 not kept, 3 notes$'
newdb mr_isp
run_format ispmail-seed "$W/isp.jsonl" mr_isp example.com
D=mr_isp
check "ispmail (seed 002): homes stay /var/vmail/<domain>/<local> as stored" "example.com/alice/ münchen.de/jörg/ Example.NET/sue/ example.com/o'brien/" \
    "$(val $D "SELECT string_agg(maildir, ' ' ORDER BY CASE local_part WHEN 'alice' THEN 1 WHEN 'jörg' THEN 2 WHEN 'sue' THEN 3 ELSE 4 END) FROM mailroster.mailboxes WHERE local_part IN ('alice', 'jörg', 'sue', 'o''brien')")"
check "ispmail (seed 002): bare hashes get the scheme of their form" "fred:{SHA512-CRYPT} gina:{SHA256-CRYPT} hans:{BLF-CRYPT} ines:{CRYPT}" \
    "$(val $D "SELECT string_agg(local_part || ':' || substring(password from '^\{[A-Z0-9-]+\}'), ' ' ORDER BY local_part) FROM mailroster.mailboxes WHERE local_part IN ('fred', 'gina', 'hans', 'ines')")"
check "ispmail (seed 002): refused, formless and NULL hashes: no password" "hex md5 nopw plain weak" \
    "$(val $D "SELECT string_agg(local_part, ' ' ORDER BY local_part) FROM mailroster.mailboxes WHERE password IS NULL")"
check "ispmail (seed 002): the alias on alice's address is her forwarding (no copy), not an alias; the tutorial's aliases landed" "0|{carl@123qwe.com}|f|{carl@123qwe.com}" \
    "$(val $D "SELECT (SELECT count(*) FROM mailroster.aliases WHERE local_part = 'alice'), m.forward_to, m.keep_copy, (SELECT destinations FROM mailroster.aliases WHERE local_part = 'orders') FROM mailroster.mailboxes m WHERE m.local_part = 'alice'")"
check "ispmail (seed 002): display names kept" "Alice Smith|Jörg Müller" \
    "$(val $D "SELECT string_agg(display_name, '|' ORDER BY local_part) FROM mailroster.mailboxes WHERE local_part IN ('alice', 'jörg')")"
check "ispmail (seed 002): shared_mailboxes kept" "alice@example.com>bob@example.com carl@123qwe.com>dora@example.com" \
    "$(val $D "SELECT string_agg(mo.local_part || '@' || dom.name || '>' || mt.local_part || '@' || dt.name, ' ' ORDER BY mo.local_part)
                 FROM mailroster.shared_mailboxes s JOIN mailroster.mailboxes mo ON mo.id = s.mailbox_id JOIN mailroster.domains dom ON dom.id = mo.domain_id
                 JOIN mailroster.mailboxes mt ON mt.id = s.shared_to_id JOIN mailroster.domains dt ON dt.id = mt.domain_id")"
# postmap: the seed's own map files against mailrosterd, for every address of the fixture
seed_maps src_isp mail_user "$FIX/ispmail" "$W/isp-maps" pgsql-virtual-mailbox-domains.cf pgsql-virtual-mailbox-maps.cf pgsql-virtual-alias-maps.cf
val src_isp "SELECT local || '@' || domain FROM users UNION SELECT source_local || '@' || source_domain FROM aliases
             UNION SELECT upper(local) || '@' || domain FROM users UNION SELECT local || '+tag@' || domain FROM users WHERE local = 'alice'" >"$W/isp.keys"
printf '%s\n' 'jörg@xn--mnchen-3ya.de' 'info@xn--mnchen-3ya.de' >>"$W/isp.keys"
MR_DB=mr_isp
mr_write_conf "$W/isp-mr.conf" "recipient_delimiter ="
mr_start "$W/isp-mr.conf" "$W/isp-mr.log" || notok "mailrosterd starts on the ispmail import"
compare_maps ispmail "$W/isp-maps" "$W/isp.keys" pgsql-virtual-mailbox-domains.cf pgsql-virtual-mailbox-maps.cf pgsql-virtual-alias-maps.cf \
    pgsql-virtual-mailbox-maps.cf pgsql-virtual-alias-maps.cf >"$W/isp.diffs"
sed 's/^/#   /' "$W/isp.diffs"
diffs_ok ispmail "$W/isp.diffs" "$FIX/ispmail/expected-map-diffs.tsv" "$W/isp.err"
mr_stop
imp mr_isp "$W/isp.jsonl" false >"$W/isp.again" 2>&1
check "ispmail (seed 002): re-import is unchanged" "$(nonblank "$W/isp.jsonl")" "$(grep -c '|unchanged|' "$W/isp.again")"

# ---------------------------------------------------------------- ISP-mail, the older tutorial (virtual_*)
stack_pg_createdb src_ispmail && pg src_ispmail -f "$FIX/ispmail/old-tutorial.sql" >/dev/null
if psql -X -At -U postgres -d src_ispmail -f "$TOP/sql/import/ispmail.sql" >"$W/ispmail.jsonl" 2>"$W/ispmail.err"; then
    ok "ispmail: importer runs"
else
    notok "ispmail: importer runs"; sed 's/^/#   /' "$W/ispmail.err"
fi
E=$W/ispmail.err
check_grep "ispmail: U-label domain becomes its A-label, reported" "$E" '^ispmail: virtual_domains id 3: changed: domain "münchen.de" is imported as "xn--mnchen-3ya.de"'
check_grep "ispmail: mixed-case address reported" "$E" '^ispmail: virtual_users id 2: changed: address "Dave@example.org" is imported as "dave@example.org"'
check_grep "ispmail: case twin left out, named" "$E" '^ispmail: virtual_users id 4: not imported: "Max@example.org" is the same address as "max@example.org" \(virtual_users id 3\)'
check_grep "ispmail: uninferable hash reported" "$E" '^ispmail: virtual_users id 7: changed: its password hash has no \{SCHEME\} prefix and its form tells none'
check_grep "ispmail: inferred scheme reported per account" "$E" '^ispmail: virtual_users id 2: changed: its password hash has no \{SCHEME\} prefix: imported as \{SHA512-CRYPT\}, told by its form \$6\$'
check_grep "ispmail: alias rows on a mailbox become its forwarding, with the copy the row to itself asked for" "$E" '^ispmail: virtual_aliases id 4: note: "john@example.org" is also a mailbox: imported as the mailbox.s forwarding to boss@remote.test, with a copy kept in the mailbox'
check_grep "ispmail: '+' local part refused" "$E" '^ispmail: virtual_users id 11: not imported: "a\+b@example.org"'
check_grep "ispmail: \$1\$ (MD5 crypt) refused, named: imported without a password" "$E" '^ispmail: virtual_users id 13: changed: .*\{MD5-CRYPT\}, a scheme mailroster refuses \(MD5 crypt is too weak\): imported without a password'
check_grep "ispmail: \$argon2i\$ refused, named" "$E" '^ispmail: virtual_users id 14: changed: .*\{ARGON2I\}, a scheme mailroster refuses'
check_grep "ispmail: {Plain} refused, named" "$E" '^ispmail: virtual_users id 15: changed: its \{PLAIN\} password hash is a scheme mailroster refuses \(plaintext'
check_grep "ispmail: DES {CRYPT} refused, named" "$E" '^ispmail: virtual_users id 16: changed: its \{CRYPT\} password hash is a scheme mailroster refuses \(DES crypt is too weak\)'
check_nogrep "ispmail: no refused scheme in the output" "$W/ispmail.jsonl" '\{(MD5-CRYPT|ARGON2I|PLAIN)\}|\{CRYPT\}abJ'
check_grep "ispmail: summary" "$E" '^ispmail: imported 4 domains, 14 mailboxes, 5 aliases, 0 senders, 0 master users, 0 transports, 0 shares, 0 sieve scripts; report: 2 not imported, 16 changed, 0 not kept, 2 notes$'
check_grep "ispmail: a destination in an imported domain that is nothing there is named" "$E" '^ispmail: virtual_aliases id 7: note: destination "x@xn--mnchen-3ya.de" is in a domain of this import but is no mailbox or alias'
run_format ispmail "$W/ispmail.jsonl" mr_ispmail example.org
D=mr_ispmail
check "ispmail: domains (U-label as A-label, mixed case folded)" "example.net example.org xn--bcher-kva.example xn--mnchen-3ya.de" \
    "$(val $D "SELECT string_agg(name, ' ' ORDER BY name) FROM mailroster.domains")"
check "ispmail: \$6\$ hash gets {SHA512-CRYPT}, quota in bytes exact, home as stored" "t|5368709120|example.org/Dave/" \
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
check "ispmail: the alias rows on mailbox john are its forwarding, with a copy, not an alias" "0|{boss@remote.test}|t" \
    "$(val $D "SELECT (SELECT count(*) FROM mailroster.aliases WHERE local_part = 'john'), forward_to, keep_copy FROM mailroster.mailboxes WHERE local_part = 'john'")"
check "ispmail: destinations lowercased and deduplicated, in row order" "{john@example.org,dave@example.org}" \
    "$(val $D "SELECT destinations FROM mailroster.aliases WHERE local_part = 'team'")"
check "ispmail: mixed-case alias source folded" "1" "$(val $D "SELECT count(*) FROM mailroster.aliases WHERE local_part = 'sales'")"
psql -X -At -U postgres -d src_ispmail -v at_domain_aliases=skip -v maildir= -v default_pass_scheme=plain-md5 \
    -f "$TOP/sql/import/ispmail.sql" >"$W/ispmail2.jsonl" 2>"$W/ispmail2.err"
check_nogrep "ispmail -v at_domain_aliases=skip: no catch-all" "$W/ispmail2.jsonl" '"source":"@'
check_grep "ispmail -v at_domain_aliases=skip: says it never matched" "$W/ispmail2.err" '^ispmail: virtual_aliases id 3: not imported: .*never matched'
check_grep "ispmail -v default_pass_scheme: applied to the unprefixed hash, and {PLAIN-MD5} refused" "$W/ispmail2.err" '^ispmail: virtual_users id 7: changed: .*as the old default_pass_scheme PLAIN-MD5 it is a scheme mailroster refuses \(plaintext'
check_grep "ispmail -v default_pass_scheme=plain-md5: the mailbox without a password" "$W/ispmail2.jsonl" '"address":"weird@example.org","password":null,'
check_grep "ispmail -v maildir=: maildir left to mailroster" "$W/ispmail2.jsonl" '"address":"john@example.org".*"maildir":null,"display_name":null'

# ---------------------------------------------------------------- BBS (seed 000)
stack_pg_createdb src_bbs && pg src_bbs -f "$FIX/bbs/schema.sql" -f "$FIX/bbs/data.sql" >/dev/null &&
    pg src_bbs -c "GRANT CONNECT ON DATABASE src_bbs TO binkterm_mail" >/dev/null
if psql -X -At -U binkterm_mail -d src_bbs -v domains=yourbbs.com -f "$TOP/sql/import/bbs-mail-users.sql" >"$W/bbs.jsonl" 2>"$W/bbs.err"; then
    ok "bbs (seed 000): importer runs as the BBS's read-only binkterm_mail"
else
    notok "bbs (seed 000): importer runs as the BBS's read-only binkterm_mail"; sed 's/^/#   /' "$W/bbs.err"
fi
if report_ok bbs "$W/bbs.err" "$FIX/bbs/expected-report.tsv"; then
    ok "bbs (seed 000): the report names exactly the expected rows"
else
    notok "bbs (seed 000): the report names exactly the expected rows"
fi
newdb mr_bbs /var/mail/vhosts
run_format bbs "$W/bbs.jsonl" mr_bbs yourbbs.com /var/mail/vhosts
D=mr_bbs
check "bbs (seed 000): maildirs kept exactly (relative to mail_base, and as the mail location)" \
    "yourbbs.com/Dave/|maildir:/var/mail/vhosts/yourbbs.com/Dave/ yourbbs.com/old-name.2019/|maildir:/var/mail/vhosts/yourbbs.com/old-name.2019" \
    "$(val $D "SELECT string_agg(maildir || '|' || mail, ' ' ORDER BY local_part) FROM mailroster.mailboxes WHERE local_part IN ('dave', 'renamed')")"
check "bbs (seed 000): the archived maildir got no new one: not imported" "0" \
    "$(val $D "SELECT count(*) FROM mailroster.mailboxes WHERE local_part = 'archie'")"
check "bbs (seed 000): quota_mb exact, enabled kept, {blf-crypt} upper-cased" "262144000|true 52428800|false|{BLF-CRYPT}" \
    "$(val $D "SELECT (SELECT quota_bytes || '|' || enabled FROM mailroster.mailboxes WHERE local_part = 'dave') || ' ' || (SELECT quota_bytes || '|' || enabled || '|' || left(password, 11) FROM mailroster.mailboxes WHERE local_part = 'banned')")"
check "bbs (seed 000): mail_aliases: two rows of a source merged, a row listing two, a catch-all" \
    "@:{sysop@yourbbs.com} abuse:{sysop@yourbbs.com,kim@yourbbs.com} info:{friend@elsewhere.example,sysop@yourbbs.com}" \
    "$(val $D "SELECT string_agg(coalesce(nullif(local_part, ''), '@') || ':' || destinations::text, ' ' ORDER BY local_part) FROM mailroster.aliases WHERE local_part IN ('', 'abuse', 'info')")"
seed_maps src_bbs binkterm_mail "$FIX/bbs" "$W/bbs-maps" virtual_mailbox_domains.cf virtual_mailbox_maps.cf virtual_alias_maps.cf
val src_bbs "SELECT email FROM mail_users UNION SELECT source FROM mail_aliases UNION SELECT upper(email) FROM mail_users
             UNION SELECT 'nobody@yourbbs.com' UNION SELECT 'sysop+tag@yourbbs.com'" >"$W/bbs.keys"
MR_DB=mr_bbs
mr_write_conf "$W/bbs-mr.conf" "recipient_delimiter =" "mail_base = /var/mail/vhosts"
mr_start "$W/bbs-mr.conf" "$W/bbs-mr.log" || notok "mailrosterd starts on the bbs import"
compare_maps bbs "$W/bbs-maps" "$W/bbs.keys" virtual_mailbox_domains.cf virtual_mailbox_maps.cf virtual_alias_maps.cf >"$W/bbs.diffs"
sed 's/^/#   /' "$W/bbs.diffs"
diffs_ok bbs "$W/bbs.diffs" "$FIX/bbs/expected-map-diffs.tsv" "$W/bbs.err"
mr_stop
# an older mail_users: "password", no maildir column
newdb mr_bbsold
stack_pg_createdb src_bbsold && pg src_bbsold -f "$FIX/bbs/old-mail-users.sql" >/dev/null
psql -X -At -U postgres -d src_bbsold -f "$TOP/sql/import/bbs-mail-users.sql" >"$W/bbsold.jsonl" 2>"$W/bbsold.err"
check_grep "bbs (older mail_users): each new maildir is reported" "$W/bbsold.err" '^bbs: mail_users id 1: changed: mail_users has no maildir column'
check_grep "bbs (older mail_users): the password column is read" "$W/bbsold.jsonl" '"address":"sysop@bbs.example","password":"\{BLF-CRYPT\}'
run_format bbs-old "$W/bbsold.jsonl" mr_bbsold bbs.example
psql -X -At -U postgres -d src_bbsold -v maildir='%d/%n/' -f "$TOP/sql/import/bbs-mail-users.sql" >"$W/bbs2.jsonl" 2>/dev/null
check_grep "bbs (older mail_users) -v maildir: the old layout kept" "$W/bbs2.jsonl" '"address":"sysop@bbs.example".*"maildir":"bbs.example/sysop/","display_name":null'

# ---------------------------------------------------------------- Dovecot passwd-file (seed 001)
P=$FIX/dovecot-passwd
if "$TOP/scripts/import-dovecot-passwd" --master "$P/master-users" "$P/users" >"$W/dp.jsonl" 2>"$W/dp.err"; then
    ok "dovecot-passwd (seed 001): importer runs"
else
    notok "dovecot-passwd (seed 001): importer runs"; sed 's/^/#   /' "$W/dp.err"
fi
if report_ok dovecot-passwd "$W/dp.err" "$P/expected-report.tsv"; then
    ok "dovecot-passwd (seed 001): the report names exactly the expected rows"
else
    notok "dovecot-passwd (seed 001): the report names exactly the expected rows"
fi
newdb mr_dp
run_format dovecot-passwd "$W/dp.jsonl" mr_dp bbs.profullstack.com
check "dovecot-passwd (seed 001): master user gateway (the first line), any domain" "gateway|{SHA512-CRYPT}|true|" \
    "$(val mr_dp "SELECT name || '|' || left(password, 14) || '|' || enabled || '|' || coalesce(domains::text, '') FROM mailroster.master_users WHERE name = 'gateway'")"
check "dovecot-passwd (seed 001): uid, gid, home and quota kept" "5000|5000|/var/vmail/bbs.profullstack.com/alice|1073741824" \
    "$(val mr_dp "SELECT uid || '|' || gid || '|' || home || '|' || quota_bytes FROM mailroster.mailboxes WHERE local_part = 'alice'")"
check "dovecot-passwd (seed 001): gecos kept as the display name" "Alice A." \
    "$(val mr_dp "SELECT display_name FROM mailroster.mailboxes WHERE local_part = 'alice'")"
"$TOP/scripts/import-dovecot-passwd" --keys --master "$P/master-users" "$P/users" >"$W/dp.keys" 2>"$W/dp.keys.err"
check "dovecot-passwd --keys: the old setup's keys, the refused ones included (for mailroster verify --keys)" \
    "$(grep -v '^#' "$P/expected-keys")" "$(cat "$W/dp.keys")"
check "dovecot-passwd --keys: their count on stderr" "dovecot-passwd: 9 keys of the old setup, for mailroster verify --keys" \
    "$(cat "$W/dp.keys.err")"
"$TOP/scripts/import-dovecot-passwd" >/dev/null 2>&1
check "dovecot-passwd: usage error exits 2" "2" "$?"

# ---------------------------------------------------------------- mailroster import --from
# the front end: the shipped importer on the old database, its report, and a
# dry run through mailrosterd's admin socket; --apply imports
newdb mr_from
MR_DB=mr_from
mr_write_conf "$W/from-mr.conf" "admin_socket = $STACK_DIR/mr/admin" "admin_socket_mode = 0600" \
    "admin_database = host=$PGHOST port=$PGPORT dbname=mr_from user=mradm" "admin_allow_admin = root"
if mr_start "$W/from-mr.conf" "$W/from-mr.log"; then
    CLI=$(dirname "$MRD")/mailroster
    export MAILROSTER_IMPORT_DIR=$TOP/sql/import
    "$CLI" -s "$STACK_DIR/mr/admin" -f tab import --from ispmail "host=$PGHOST port=$PGPORT dbname=src_isp user=mail_user" \
        >"$W/from.dry" 2>"$W/from.dry.err"
    check "import --from ispmail: a dry run exits 0" "0" "$?"
    check_grep "import --from ispmail: the importer's report is shown" "$W/from.dry.err" '^ispmail: users Nora@example.com: changed: address'
    check_grep "import --from ispmail: says it is a dry run" "$W/from.dry.err" 'a dry run'
    check "import --from ispmail: the dry run lists every line as created" "$(nonblank "$W/isp.jsonl")" "$(grep -c 'created' "$W/from.dry")"
    check "import --from ispmail: the dry run wrote nothing" "0" "$(val mr_from "SELECT count(*) FROM mailroster.mailboxes")"
    "$CLI" -s "$STACK_DIR/mr/admin" -f tab import --from ispmail "host=$PGHOST port=$PGPORT dbname=src_isp user=mail_user" --apply \
        >"$W/from.imp" 2>"$W/from.imp.err"
    check "import --from ispmail --apply: imports, the same as the importer's lines" \
        "$(grep -c '"kind":"mailbox"' "$W/isp.jsonl")" "$(val mr_from "SELECT count(*) FROM mailroster.mailboxes")"
    unset MAILROSTER_IMPORT_DIR
    MAILROSTER_IMPORT_DIR=$TOP/scripts "$CLI" -s "$STACK_DIR/mr/admin" import --from dovecot-passwd "$FIX/dovecot-passwd/users" \
        --master "$FIX/dovecot-passwd/master-users" --apply >/dev/null 2>"$W/from.dp.err"
    check "import --from dovecot-passwd --apply: the master users landed" "backup gateway" \
        "$(val mr_from "SELECT string_agg(name, ' ' ORDER BY name) FROM mailroster.master_users")"
    MAILROSTER_IMPORT_DIR=$TOP/sql/import "$CLI" -s "$STACK_DIR/mr/admin" import --from ispmail "host=$PGHOST port=$PGPORT dbname=no_such_db" \
        >/dev/null 2>"$W/from.bad.err"
    check "import --from: a failing importer is EX_DATAERR, nothing imported" "65" "$?"
    "$CLI" -s "$STACK_DIR/mr/admin" import --from nonsense x >/dev/null 2>&1
    check "import --from: an unknown format is a usage error" "64" "$?"
    mr_stop
else
    notok "mailrosterd with an admin socket starts"
fi

# ---------------------------------------------------------------- PostfixAdmin
newdb mr_pfa
stack_pg_createdb src_pfa && pg src_pfa -f "$FIX/postfixadmin/source.sql" >/dev/null
if psql -X -At -U postgres -d src_pfa -f "$TOP/sql/import/postfixadmin.sql" >"$W/pfa.jsonl" 2>"$W/pfa.err"; then
    ok "postfixadmin: importer runs"
else
    notok "postfixadmin: importer runs"; sed 's/^/#   /' "$W/pfa.err"
fi
E=$W/pfa.err
check_grep "postfixadmin: backup MX domain left out" "$E" '^postfixadmin: domain relay.example: not imported: domain "relay.example" is a backup MX domain'
check_grep "postfixadmin: a mailbox's alias row with another goto is its forwarding, a copy kept" "$E" '^postfixadmin: alias bob@example.com: note: "bob@example.com" is also a mailbox: imported as the mailbox.s forwarding to bob@elsewhere.test, with a copy kept in the mailbox'
check_grep "postfixadmin: vacation destination dropped" "$E" '^postfixadmin: alias sales@example.com: changed: destination "alice#example.com@autoreply.example.com" is PostfixAdmin.s vacation'
check_grep "postfixadmin: vacation on a mailbox's own row reported" "$E" '^postfixadmin: alias carol@example.com: not imported: PostfixAdmin.s vacation auto-reply is switched on'
check_grep "postfixadmin: bad maildir reported" "$E" '^postfixadmin: mailbox Eve@Shop.Example: changed: its maildir "../escape/" is not a relative path'
check_grep "postfixadmin: display names kept" "$W/pfa.jsonl" '"address":"alice@example.com".*"display_name":"Alice A."'
check_grep "postfixadmin: domain total quota named" "$E" '^postfixadmin: domain Shop.Example: not kept: its total quota of 1000 MB'
check_grep "postfixadmin: \$1\$ (PostfixAdmin's md5crypt) refused, named" "$E" '^postfixadmin: mailbox alice@example.com: changed: .*\{MD5-CRYPT\}, a scheme mailroster refuses \(MD5 crypt is too weak\): imported without a password'
check_grep "postfixadmin: alias domain: logins do not carry over, said" "$E" '^postfixadmin: alias_domain alias.example -> example.com: note: .*does not carry over'
check_nogrep "postfixadmin: the mailboxes' own alias rows are dropped silently" "$E" '^postfixadmin: alias (alice|dan)@'
check_grep "postfixadmin: summary" "$E" '^postfixadmin: imported 4 domains, 5 mailboxes, 5 aliases, 0 senders, 0 master users, 0 transports, 0 shares, 0 sieve scripts; report: 3 not imported, 7 changed, 1 not kept, 2 notes$'
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
check_grep "vmm: alias row with an empty address left out: never matched" "$E" '^vmm: alias @example.com: not imported: it has an empty address: .*never matched'
check_grep "vmm: alias on a mailbox (which won in vmm) is its forwarding" "$E" '^vmm: alias b.user@example.com: note: "b.user@example.com" is also a mailbox: imported as the mailbox.s forwarding to a.user@example.com, without a copy in the mailbox'
check_grep "vmm: catch-all destination with %n dropped" "$E" '^vmm: catchall @vmm.test: changed: destination "%n@other.example" uses %n'
check_grep "vmm: relocated reported" "$E" '^vmm: relocated gone@vmm.test: not imported'
check_grep "vmm: alias domain reported" "$E" '^vmm: domain_name example.net \(alias domain of example.com\): note: alias domain "example.net" of "example.com"'
check_grep "vmm: a mailbox's own transport becomes a transport entry" "$W/vmm.jsonl" '^\{"kind":"transport","pattern":"postmaster@example.com","transport":"smtp:\[backup.example.net\]","enabled":true\}$'
check_grep "vmm: {CRAM-MD5} refused, named" "$E" '^vmm: users b.user@example.com: changed: its \{CRAM-MD5\} password hash is a scheme mailroster refuses.*imported without a password'
check_grep "vmm: names kept" "$W/vmm.jsonl" '"address":"a.user@example.com".*"display_name":"A. User"'
check_grep "vmm: summary" "$E" '^vmm: imported 3 domains, 4 mailboxes, 4 aliases, 3 senders, 0 master users, 1 transports, 0 shares, 0 sieve scripts; report: 2 not imported, 3 changed, 0 not kept, 2 notes$'
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
check_grep "users-json: mixed-case key reported" "$E" '^users-json: account Bob@Example.com: changed: becomes "bob@example.com" \(Postfix accepted'
check_grep "users-json: duplicate alias: the first map line wins, the others reported" "$E" '^users-json: local_valiases info@example.com: not imported: it is the same alias as the earlier account Bob@Example.com alias'
check_grep "users-json: an alias that is another account's address is that account's forwarding" "$E" '^users-json: account gina@example.com alias frank@example.com: note: "frank@example.com" is also the address of account "frank@example.com": imported as its forwarding to gina@example.com, without a copy in the mailbox'
check_grep "users-json: disabled domain: the change is said" "$E" '^users-json: config domain old.example.com: changed: domain "old.example.com" has "enable": false: imported disabled'
check_grep "users-json: catchAll gives no sending rights (may_send false)" "$W/users.jsonl" '^\{"kind":"alias","source":"@sub.example.com","destinations":\["alice@example.com"\],"enabled":true,"may_send":false\}$'
check_grep "users-json: unusable password reported" "$E" '^users-json: account hugo@example.com: changed: has a password that is not a hash'
check_grep "users-json: unusable quota reported" "$E" '^users-json: account hugo@example.com: changed: has quota "10%"'
check_grep "users-json: DES crypt (by --default-scheme CRYPT) refused, named" "$E" '^users-json: account dave@example.com: changed: has a \{CRYPT\} password hash \(from hashedPassword\), which mailroster refuses \(DES crypt is too weak\): imported without a password'
check_grep "users-json: inferred scheme reported per account" "$E" '^users-json: account gina@example.com: changed: has a password hash without \{SCHEME\} prefix \(from hashedPassword\): imported as \{ARGON2ID\}, told by its form; the old passdb verified hashes with crypt\(3\), which cannot verify it'
check_grep "users-json: sieveScript is the mailbox's Sieve script" "$W/users.jsonl" '^\{"kind":"sieve","address":"gina@example.com","script":"require \\"fileinto\\";"\}$'
check_grep "users-json: name kept as display_name" "$W/users.jsonl" '"address":"frank@example.com".*"display_name":"Frank"'
check_grep "users-json: summary in the SQL importers' format" "$E" '^users-json: imported 4 domains, 9 mailboxes, 7 aliases, 0 senders, 0 master users, 2 transports, 0 shares, 1 sieve scripts; report: 4 not imported, 11 changed, 0 not kept, 1 notes$'
check_grep "users-json: dynamicMaps virtual_alias_maps: the seed's remote alias imported" "$W/users.jsonl" '^\{"kind":"alias","source":"alias@example.com","destinations":\["remote@address.example"\],'
check_grep "users-json: dynamicMaps: a continuation line is part of its entry" "$W/users.jsonl" '^\{"kind":"alias","source":"list@example.com","destinations":\["alice@example.com","bob@example.com"\],'
check_grep "users-json: dynamicMaps transport_maps: an address entry becomes a transport" "$W/users.jsonl" '^\{"kind":"transport","pattern":"specialaddress@example.com","transport":"relay:172.30.40.50:8025","enabled":true\}$'
check_grep "users-json: dynamicMaps transport_maps: a domain entry becomes a transport" "$W/users.jsonl" '^\{"kind":"transport","pattern":"subdomain.example.com","transport":"relay:172.30.40.50:8025","enabled":true\}$'
check_grep "users-json: dynamicMaps relay_domains: named, not imported" "$E" '^users-json: dynamicMaps relay_domains transport:2: not imported: relay domain "subdomain.example.com"'
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
check_grep "users-json without --passwd: empty hashedPassword reported" "$W/users2.err" '^users-json: account carol@example.com: changed: has no password'
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
