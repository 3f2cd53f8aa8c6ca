#!/usr/bin/env bash
# verify_test.sh - "mailroster verify" on two real setups the project
# replaces: the ISP-mail tutorial (seed 002) and the BBS (seed 000). For
# each: the old setup in a private PostgreSQL, imported into mailroster,
# mailrosterd started, then verify against the seed's own pgsql map files.
# The differences it reports must be exactly the hand-written ones of
# tests/integration/import/<seed>/expected-map-diffs.tsv (written from the
# seed's data, for the keys import_test.sh asks); after one change in
# mailroster, exactly those plus the changed key; with the known ones
# excluded, none (exit 0). The keys the importers write (psql -v keys=on),
# main.cf, the keys mailroster has, errors; then the transports map against
# seed 004's transport file.
#
#   TOP=... MRD=.../build/mailrosterd bash tests/integration/verify_test.sh   (as root)
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/build/mailrosterd}
CLI=${CLI:-$(dirname "$MRD")/mailroster}
FIX=$TOP/tests/integration/import
. "$TOP/tests/integration/begin.sh" mr-verify
W=$STACK_DIR/work
mkdir -p "$W"

pg() { local db=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -At -U postgres -d "$db" "$@"; }
val() { pg "$1" -c "$2"; }
newdb() {
    stack_pg_createdb "$1" && pg "$1" -f "$TOP/sql/schema.sql" >/dev/null && pg "$1" -f "$TOP/sql/roles.sql" >/dev/null &&
        if [ -n "${2:-}" ]; then pg "$1" -c "UPDATE mailroster.settings SET mail_base = '$2'" >/dev/null; fi
}
# imp DB FILE: the importer's JSON lines into mailroster, as the admin role
imp() {
    psql -X -q -v ON_ERROR_STOP=1 -At -U mradm -d "$1" -f - <<EOF
\\set lines \`cat '$2'\`
SELECT count(*) FROM mailroster.import_jsonl(:'lines', false);
EOF
}
# seed_maps SRCDB ROLE DIR OUT FILES...: the seed's own map files, changed
# only for the connection (host, port, database, no password)
seed_maps() {
    local db=$1 role=$2 dir=$3 out=$4 f; shift 4
    mkdir -p "$out"
    for f in "$@"; do
        sed -e "s|^hosts = .*|hosts = 127.0.0.1:$STACK_PG_PORT|" -e "s|^dbname = .*|dbname = $db|" \
            -e "s|^user = .*|user = $role|" -e '/^password = /d' "$dir/$f" >"$out/$f"
    done
}
# start_mr DB NAME DELIMITER [conf lines]: mailrosterd with an admin socket on DB
start_mr() {
    local db=$1 name=$2 delim=$3; shift 3
    MR_DB=$db
    mr_write_conf "$W/$name-mr.conf" "recipient_delimiter = $delim" "admin_socket = $STACK_DIR/mr/admin" "admin_socket_mode = 0600" \
        "admin_database = host=$PGHOST port=$PGPORT dbname=$db user=mradm" "admin_allow_admin = root" "$@"
    mr_start "$W/$name-mr.conf" "$W/$name-mr.log"
}
ADM() { "$CLI" -s "$STACK_DIR/mr/admin" "$@"; }
# vfy OUT ARGS...: mailroster verify, its differences in OUT, its summary in
# OUT.err; sets RC
vfy() {
    local out=$1; shift
    ADM verify --socketmap "unix:$MR_SMAP_UNIX" "$@" >"$out" 2>"$out.err"
    RC=$?
}
# the "MAP KEY" of each difference, sorted
keys_of() { cut -f1,2 "$1" | tr '\t' ' ' | LC_ALL=C sort; }
expected() { grep -v '^#' "$1" | cut -f1 | LC_ALL=C sort; }
# check_set NAME WANT_FILE GOT_FILE: the same lines, and which differ
check_set() {
    if cmp -s "$2" "$3"; then
        ok "$1"
    else
        notok "$1"
        diff "$2" "$3" | grep '^[<>]' | sed -e 's/^</#   missing:/' -e 's/^>/#   unexpected:/'
    fi
}
# reason_of OUT MAP KEY: the reason column of that difference
reason_of() { awk -F'\t' -v m="$2" -v k="$3" '$1 == m && $2 == k { print $5 }' "$1"; }
check_reason() { # NAME OUT MAP KEY ERE
    local r
    r=$(reason_of "$2" "$3" "$4")
    if printf '%s' "$r" | grep -Eq -- "$5"; then ok "$1"; else notok "$1: reason [$r] does not match /$5/"; fi
}

stack_pg_start || { notok "PostgreSQL starts"; t_summary; exit 1; }
newdb mr_isp || { notok "schema and roles load"; t_summary; exit 1; }
pg postgres -c "CREATE ROLE mradm LOGIN IN ROLE mailroster_admin" -c "CREATE ROLE mrd LOGIN IN ROLE mailroster_reader" \
    -c "CREATE ROLE mail_user WITH LOGIN" -c "CREATE ROLE binkterm_mail WITH LOGIN" >/dev/null

# ---------------------------------------------------------------- ISP-mail tutorial (seed 002)
I=$FIX/ispmail
stack_pg_createdb src_isp && pg src_isp -f "$I/schema.sql" -f "$I/data.sql" >/dev/null &&
    pg src_isp -c "GRANT CONNECT ON DATABASE src_isp TO mail_user" >/dev/null
psql -X -At -U mail_user -d src_isp -f "$TOP/sql/import/ispmail.sql" >"$W/isp.jsonl" 2>"$W/isp.report"
check "ispmail: imported" "$(grep -c . "$W/isp.jsonl")" "$(imp mr_isp "$W/isp.jsonl" 2>&1)"
seed_maps src_isp mail_user "$I" "$W/isp-maps" pgsql-virtual-mailbox-domains.cf pgsql-virtual-mailbox-maps.cf pgsql-virtual-alias-maps.cf
# the keys import_test.sh asks: every address of the old data, its upper
# case, an extension, and the A-label forms of the U-label domain
val src_isp "SELECT local || '@' || domain FROM users UNION SELECT source_local || '@' || source_domain FROM aliases
             UNION SELECT upper(local) || '@' || domain FROM users UNION SELECT local || '+tag@' || domain FROM users WHERE local = 'alice'" >"$W/isp.keys"
printf '%s\n' 'jörg@xn--mnchen-3ya.de' 'info@xn--mnchen-3ya.de' >>"$W/isp.keys"
M=$W/isp-maps
# the tutorial's main.cf: smtpd_sender_login_maps asks the mailbox map, then the alias map
ISP_MAPS=("domains=pgsql:$M/pgsql-virtual-mailbox-domains.cf" "mailboxes=pgsql:$M/pgsql-virtual-mailbox-maps.cf"
    "aliases=pgsql:$M/pgsql-virtual-alias-maps.cf" "senders=pgsql:$M/pgsql-virtual-mailbox-maps.cf, pgsql:$M/pgsql-virtual-alias-maps.cf")
start_mr mr_isp isp "" || notok "mailrosterd starts on the ispmail import"

vfy "$W/isp.v1" --keys "$W/isp.keys" --no-variants --delimiter '' "${ISP_MAPS[@]}"
check "ispmail: differences: exit 1" "1" "$RC"
sed 's/^/#   /' "$W/isp.v1" "$W/isp.v1.err"
expected "$I/expected-map-diffs.tsv" >"$W/isp.want"
keys_of "$W/isp.v1" >"$W/isp.got"
check_set "ispmail: exactly the expected differences" "$W/isp.want" "$W/isp.got"
check "ispmail: five columns, a reason on every line" "0" "$(awk -F'\t' 'NF != 5 || $5 == ""' "$W/isp.v1" | wc -l)"
check_grep() { if grep -Eq -- "$3" "$2"; then ok "$1"; else notok "$1: no /$3/ in $(cat "$2")"; fi; }
check_grep "ispmail: summary with the counts" "$W/isp.v1.err" "^mailroster verify: [0-9]+ domains, [0-9]+ addresses, [0-9]+ lookups: $(grep -c . "$W/isp.want") differences, 0 known, [0-9]+ skipped"
check_reason "ispmail: a U-label domain: IDN" "$W/isp.v1" domains münchen.de '^IDN: .*xn--mnchen-3ya\.de'
check_reason "ispmail: the mixed-case domain row" "$W/isp.v1" domains example.net 'mailroster hosts example\.net; the old map does not find it'
check_reason "ispmail: a mailbox the import left out" "$W/isp.v1" mailboxes a+b@example.com '^no mailbox a\+b@example\.com in mailroster'
check_reason "ispmail: Nora, stored in mixed case" "$W/isp.v1" mailboxes nora@example.com 'mailroster has the mailbox nora@example\.com; the old map does not'
check_reason "ispmail: owners in mailroster, none in the old maps (mixed case there)" "$W/isp.v1" senders nora@example.com \
    '^mailroster finds owners of nora@example\.com; the old map does not'
# the old setup's keys written by the importer itself (psql -v keys=on):
# the same differences as the hand-made keys, the refused rows among them
psql -X -At -U mail_user -d src_isp -v keys=on -f "$TOP/sql/import/ispmail.sql" >"$W/isp.oldkeys" 2>"$W/isp.oldkeys.err"
check "ispmail: -v keys=on: the count on stderr, nothing else" \
    "ispmail: $(grep -c . "$W/isp.oldkeys") keys of the old setup, for mailroster verify --keys" "$(cat "$W/isp.oldkeys.err")"
check "ispmail: -v keys=on: keys, no JSON lines" "0" "$(grep -c '^{' "$W/isp.oldkeys")"
check "ispmail: -v keys=on: the refused mailbox, the mixed-case row as stored and as imported, the A-label" \
    "a+b@example.com|Nora@example.com|nora@example.com|xn--mnchen-3ya.de" \
    "$(grep -Fx a+b@example.com "$W/isp.oldkeys")|$(grep -Fx Nora@example.com "$W/isp.oldkeys")|$(grep -Fx nora@example.com "$W/isp.oldkeys")|$(grep -Fx xn--mnchen-3ya.de "$W/isp.oldkeys")"
vfy "$W/isp.k1" --keys "$W/isp.oldkeys" --no-variants --delimiter '' "${ISP_MAPS[@]}"
sed 's/^/#   /' "$W/isp.k1.err"
check "ispmail: the importer's keys: differences, exit 1" "1" "$RC"
keys_of "$W/isp.k1" >"$W/isp.kgot"
check_set "ispmail: the importer's keys: exactly the expected differences" "$W/isp.want" "$W/isp.kgot"
check_reason "ispmail: the importer's keys: the row the import refuses is asked, with mailroster's reason" "$W/isp.k1" \
    mailboxes a+b@example.com '^no mailbox a\+b@example\.com in mailroster \(left out by the import\?\)'

# the tutorial's alias row on alice's address is her forwarding in
# mailroster: both sides answer carl@123qwe.com
check "ispmail: the forward from a mailbox answers as the old alias did: no difference" "" \
    "$(awk -F'\t' '$2 ~ /^alice[@+]/' "$W/isp.v1")"
check "ispmail: ... mailrosterd's own answer" "carl@123qwe.com" "$(q_smap aliases alice@example.com)"

# one change in mailroster: the alias boss@example.com goes; the old
# senders map (mailbox map, then alias map) also answered for it
ADM alias remove boss@example.com >/dev/null 2>&1
wait_for 'q_smap aliases boss@example.com' "(not found)" 5 || notok "ispmail: the removal reached mailrosterd"
vfy "$W/isp.v2" --keys "$W/isp.keys" --no-variants --delimiter '' "${ISP_MAPS[@]}"
check "ispmail: after removing an alias: exit 1" "1" "$RC"
{ cat "$W/isp.want"; printf '%s\n' 'aliases boss@example.com' 'senders boss@example.com'; } | LC_ALL=C sort >"$W/isp.want2"
keys_of "$W/isp.v2" >"$W/isp.got2"
check_set "ispmail: after removing an alias: exactly that key more" "$W/isp.want2" "$W/isp.got2"
check_reason "ispmail: the removed alias is named as missing" "$W/isp.v2" aliases boss@example.com '^no alias boss@example\.com in mailroster'
check "ispmail: its old answer is shown" "alice@example.com" "$(awk -F'\t' '$1 == "aliases" && $2 == "boss@example.com" { print $3 }' "$W/isp.v2")"
vfy "$W/isp.v3" --keys "$W/isp.keys" --no-variants --delimiter '' --ignore "$I/expected-map-diffs.tsv" "${ISP_MAPS[@]}"
check "ispmail: known differences excluded, the removal still reported" "aliases boss@example.com
senders boss@example.com|1" "$(keys_of "$W/isp.v3")|$RC"
ADM alias add boss@example.com alice@example.com >/dev/null 2>&1
wait_for 'q_smap aliases boss@example.com' "alice@example.com" 5 || notok "ispmail: the alias is back in mailrosterd"
vfy "$W/isp.v4" --keys "$W/isp.keys" --no-variants --delimiter '' --ignore "$I/expected-map-diffs.tsv" "${ISP_MAPS[@]}"
check "ispmail: alias back, known differences excluded: none, exit 0" "0|0" "$(grep -c . "$W/isp.v4")|$RC"
check_grep "ispmail: ... and the summary counts them as known" "$W/isp.v4.err" " 0 differences, $(grep -c . "$W/isp.want") known,"

# the keys from mailroster itself, with the variants: every difference is
# of a key mailroster has or of its unknown address per domain
vfy "$W/isp.v5" --delimiter '' "${ISP_MAPS[@]}"
check "ispmail: mailroster's own keys: differences, exit 1" "1" "$RC"
check_grep "ispmail: mailroster's own keys: an unknown address per domain asked" "$W/isp.v5.err" \
    "^mailroster verify: 4 domains, $(($(val mr_isp "SELECT (SELECT count(*) FROM mailroster.mailboxes) + (SELECT count(*) FROM mailroster.aliases WHERE local_part <> '')") + 4)) addresses,"
mr_stop

# with the delimiter "+" on both sides, every address also asked with
# "+verify": Postfix's extension handling of the old map (found without it,
# the extension put into the alias's destinations) is what mailrosterd
# answers; the differences are those of the addresses themselves and the
# same for them with +verify (an address that has an extension gets no
# other); alice's forward gets the extension on both sides
start_mr mr_isp isp-ext "+" || notok "mailrosterd starts with recipient_delimiter +"
vfy "$W/isp.x1" --keys "$W/isp.keys" --delimiter + "${ISP_MAPS[@]}"
sed 's/^/#   /' "$W/isp.x1" "$W/isp.x1.err"
check "ispmail, delimiter +: differences, exit 1" "1" "$RC"
{ while read -r m k; do
    echo "$m $k"
    case $k in *@example.net|*@münchen.de|*@xn--mnchen-3ya.de|*+*@*|"") ;; *) echo "$m ${k%@*}+verify@${k#*@}" ;; esac
done <"$W/isp.want"; } | LC_ALL=C sort -u >"$W/isp.xwant"
keys_of "$W/isp.x1" | grep -v '^domains ' | grep -v 'mailroster-verify-unknown@' >"$W/isp.xgot"
grep -v '^domains ' "$W/isp.xwant" >"$W/isp.xwant2"
check_set "ispmail, delimiter +: each address's difference, and the same for it with +verify" "$W/isp.xwant2" "$W/isp.xgot"
check "ispmail, delimiter +: a forward from a mailbox, asked with an extension: the same on both sides" "" \
    "$(awk -F'\t' '$2 ~ /^alice[@+]/' "$W/isp.x1")"
check "ispmail, delimiter +: mailrosterd puts the extension into the forward's destination, as Postfix did" "carl+verify@123qwe.com" \
    "$(q_smap aliases alice+verify@example.com)"
check_reason "ispmail, delimiter +: a '+' address: mailroster would not store it" "$W/isp.x1" mailboxes a+b@example.com \
    '^a\+b is not a local part mailroster takes \(local part contains the recipient delimiter\)'
mr_stop

# ---------------------------------------------------------------- BBS (seed 000)
B=$FIX/bbs
newdb mr_bbs /var/mail/vhosts
stack_pg_createdb src_bbs && pg src_bbs -f "$B/schema.sql" -f "$B/data.sql" >/dev/null &&
    pg src_bbs -c "GRANT CONNECT ON DATABASE src_bbs TO binkterm_mail" >/dev/null
psql -X -At -U binkterm_mail -d src_bbs -v domains=yourbbs.com -f "$TOP/sql/import/bbs-mail-users.sql" >"$W/bbs.jsonl" 2>"$W/bbs.report"
check "bbs: imported" "$(grep -c . "$W/bbs.jsonl")" "$(imp mr_bbs "$W/bbs.jsonl" 2>&1)"
seed_maps src_bbs binkterm_mail "$B" "$W/bbs-maps" virtual_mailbox_domains.cf virtual_mailbox_maps.cf virtual_alias_maps.cf
val src_bbs "SELECT email FROM mail_users UNION SELECT source FROM mail_aliases UNION SELECT upper(email) FROM mail_users
             UNION SELECT 'nobody@yourbbs.com' UNION SELECT 'sysop+tag@yourbbs.com'" >"$W/bbs.keys"
M=$W/bbs-maps
BBS_MAPS=("domains=pgsql:$M/virtual_mailbox_domains.cf" "mailboxes=pgsql:$M/virtual_mailbox_maps.cf" "aliases=pgsql:$M/virtual_alias_maps.cf")
start_mr mr_bbs bbs "" "mail_base = /var/mail/vhosts" || notok "mailrosterd starts on the bbs import"

vfy "$W/bbs.v1" --keys "$W/bbs.keys" --no-variants --delimiter '' "${BBS_MAPS[@]}"
check "bbs: differences: exit 1" "1" "$RC"
sed 's/^/#   /' "$W/bbs.v1" "$W/bbs.v1.err"
expected "$B/expected-map-diffs.tsv" >"$W/bbs.want"
keys_of "$W/bbs.v1" >"$W/bbs.got"
check_set "bbs: exactly the expected differences" "$W/bbs.want" "$W/bbs.got"
check_reason "bbs: the old catch-all swallowed a mailbox; mailroster's never does" "$W/bbs.v1" aliases dave@yourbbs.com \
    '^catch-all: in mailroster a catch-all never answers for a mailbox \(dave@yourbbs\.com\)'
check_reason "bbs: ... a disabled mailbox too" "$W/bbs.v1" aliases banned@yourbbs.com 'never answers for a mailbox \(banned@yourbbs\.com, disabled\)'
check_reason "bbs: the mixed-case alias: the old catch-all took it, mailroster has it" "$W/bbs.v1" aliases sales@yourbbs.com \
    '^the old catch-all answered; mailroster has the alias sales@yourbbs\.com of its own'
check_reason "bbs: an address mailroster does not take" "$W/bbs.v1" mailboxes 'we ird@yourbbs.com' \
    '^we ird is not a local part mailroster takes \(.*\): the import left it out'
check "bbs: the catch-all's answer is marked" "sysop@yourbbs.com (from @domain)" \
    "$(awk -F'\t' '$1 == "aliases" && $2 == "dave@yourbbs.com" { print $3 }' "$W/bbs.v1")"
# the importer's keys: the same differences, the refused "we ird" among them
psql -X -At -U binkterm_mail -d src_bbs -v domains=yourbbs.com -v keys=on -f "$TOP/sql/import/bbs-mail-users.sql" \
    >"$W/bbs.oldkeys" 2>"$W/bbs.oldkeys.err"
check "bbs: -v keys=on: the refused address is a key" "we ird@yourbbs.com" "$(grep -Fx 'we ird@yourbbs.com' "$W/bbs.oldkeys")"
vfy "$W/bbs.k1" --keys "$W/bbs.oldkeys" --no-variants --delimiter '' "${BBS_MAPS[@]}"
keys_of "$W/bbs.k1" >"$W/bbs.kgot"
check_set "bbs: the importer's keys: exactly the expected differences" "$W/bbs.want" "$W/bbs.kgot"
check_reason "bbs: the importer's keys: the refused address, with mailroster's reason" "$W/bbs.k1" mailboxes 'we ird@yourbbs.com' \
    '^we ird is not a local part mailroster takes \(.*\): the import left it out'
# every SQL importer writes them the same way (_emit.sql): vmm's refused
# alias row with an empty address, its catch-all, a mailbox's transport
stack_pg_createdb src_vmm && pg src_vmm -f "$FIX/vmm/source.sql" >/dev/null
psql -X -At -U postgres -d src_vmm -v keys=on -f "$TOP/sql/import/vmm.sql" >"$W/vmm.keys" 2>"$W/vmm.keys.err"
check "vmm: -v keys=on: the refused @example.com, the catch-all @vmm.test, postmaster@example.com" "3|1" \
    "$(grep -cFx -e @example.com -e @vmm.test -e postmaster@example.com "$W/vmm.keys")|$(grep -c '^vmm: [0-9]* keys of the old setup' "$W/vmm.keys.err")"

# one change: the alias abuse@ goes, so mailroster's catch-all answers for it
ADM alias remove abuse@yourbbs.com >/dev/null 2>&1
wait_for 'q_smap aliases abuse@yourbbs.com' "sysop@yourbbs.com" 5 || notok "bbs: the removal reached mailrosterd"
vfy "$W/bbs.v2" --keys "$W/bbs.keys" --no-variants --delimiter '' "${BBS_MAPS[@]}"
{ cat "$W/bbs.want"; echo 'aliases abuse@yourbbs.com'; } | LC_ALL=C sort >"$W/bbs.want2"
keys_of "$W/bbs.v2" >"$W/bbs.got2"
check_set "bbs: after removing an alias: exactly that key more" "$W/bbs.want2" "$W/bbs.got2"
check_reason "bbs: ... the catch-all answers instead, said" "$W/bbs.v2" aliases abuse@yourbbs.com \
    "^mailroster's catch-all @yourbbs\.com answers: no enabled alias abuse@yourbbs\.com"
ADM alias add abuse@yourbbs.com sysop@yourbbs.com kim@yourbbs.com >/dev/null 2>&1
wait_for 'q_smap aliases abuse@yourbbs.com' "sysop@yourbbs.com,kim@yourbbs.com" 5 || notok "bbs: the alias is back in mailrosterd"
vfy "$W/bbs.v3" --keys "$W/bbs.keys" --no-variants --delimiter '' --ignore "$B/expected-map-diffs.tsv" "${BBS_MAPS[@]}"
check "bbs: known differences excluded: none, exit 0" "0|0" "$(grep -c . "$W/bbs.v3")|$RC"
# a disabled mailbox: its address differs in the mailbox map, said why
ADM user disable sysop@yourbbs.com >/dev/null 2>&1
wait_for 'q_smap mailboxes sysop@yourbbs.com' "(not found)" 5 || notok "bbs: the disabling reached mailrosterd"
vfy "$W/bbs.v4" --keys "$W/bbs.keys" --no-variants --delimiter '' --ignore "$B/expected-map-diffs.tsv" "${BBS_MAPS[@]}"
check "bbs: a disabled mailbox: exactly its key, exit 1" "mailboxes sysop@yourbbs.com|1" "$(keys_of "$W/bbs.v4")|$RC"
check_reason "bbs: ... the reason names the disabling" "$W/bbs.v4" mailboxes sysop@yourbbs.com '^the mailbox sysop@yourbbs\.com is disabled in mailroster'
ADM user enable sysop@yourbbs.com >/dev/null 2>&1
wait_for 'q_smap mailboxes sysop@yourbbs.com' "yourbbs.com/sysop/" 5 || true

# the old maps named by a main.cf, as the sysop has it: the same answer
mkdir -p "$W/etc-postfix"
cat >"$W/etc-postfix/main.cf" <<EOF
compatibility_level = 3.6
recipient_delimiter =
virtual_mailbox_domains = pgsql:$M/virtual_mailbox_domains.cf
virtual_mailbox_maps = pgsql:$M/virtual_mailbox_maps.cf
virtual_alias_maps = pgsql:$M/virtual_alias_maps.cf
EOF
vfy "$W/bbs.v5" --main-cf "$W/etc-postfix/main.cf" --keys "$W/bbs.keys" --no-variants
check "bbs: --main-cf: the same differences as the maps named, exit 1" "$(cat "$W/bbs.got")|1" "$(keys_of "$W/bbs.v5")|$RC"
sed -i 's/^virtual_mailbox_domains = .*/virtual_mailbox_domains = yourbbs.com/' "$W/etc-postfix/main.cf"
vfy "$W/bbs.v6" --main-cf "$W/etc-postfix" --keys "$W/bbs.keys" --no-variants
check "bbs: --main-cf DIR with a literal domain list: the same differences" "$(cat "$W/bbs.got")|1" "$(keys_of "$W/bbs.v6")|$RC"

# errors: one line, their own exit codes
ADM verify --socketmap "unix:$STACK_DIR/no-such-socket" --keys "$W/bbs.keys" "${BBS_MAPS[@]}" >/dev/null 2>"$W/e1.err"
check "an unreachable socketmap: EX_UNAVAILABLE, one line" "69|1" "$?|$(grep -c . "$W/e1.err")"
check_grep "... naming the map" "$W/e1.err" '^mailroster verify: the new map socketmap:unix:.*no-such-socket:domains cannot answer'
ADM verify --keys "$W/bbs.keys" >/dev/null 2>"$W/e2.err"
check "no old maps: a usage error" "64" "$?"
ADM verify nonsense=pgsql:/x >/dev/null 2>&1
check "an unknown map: a usage error" "64" "$?"
ADM verify --help >"$W/help.out" 2>&1
check "--help: exit 0, the usage on standard output" "0|1" "$?|$(grep -c '^usage: mailroster \[-s SOCKET\] verify' "$W/help.out")"
printf 'a@b\tc\n' >"$W/bad.keys"
ADM verify --keys "$W/bad.keys" "${BBS_MAPS[@]}" >/dev/null 2>"$W/e3.err"
check "a key with a tab: EX_DATAERR, the line named" "65|$W/bad.keys line 1: a key with a control character" "$?|$(sed 's/^mailroster verify: //' "$W/e3.err")"
mr_stop

# ---------------------------------------------------------------- transports (seed 004, users.json)
# The role's transport file is the old transport_maps (texthash: reads it
# as hash: would), with entries for the domain walk added on both sides:
# ".example.org" covers its subdomains, "example.net" (the default
# parent_domain_matches_subdomains) only itself.
J=$FIX/users-json
newdb mr_json
"$TOP/scripts/import-users-json" --config "$J/config.json" --valiases "$J/local_valiases.json" --passwd "$J/passwd" \
    "$J/users.json" >"$W/json.jsonl" 2>"$W/json.report"
check "users-json: imported" "$(grep -c . "$W/json.jsonl")" "$(imp mr_json "$W/json.jsonl" 2>&1)"
check "users-json: its two transport entries" "2" "$(grep -c '"kind":"transport"' "$W/json.jsonl")"
{ cat "$J/transport"; printf '%s\n' '.example.org smtp:[mx.example.org]' 'example.net smtp:[mx.example.net]'; } >"$W/json.transport"
start_mr mr_json json "+" || notok "mailrosterd starts on the users-json import"
ADM transport add .example.org 'smtp:[mx.example.org]' >/dev/null 2>&1
ADM transport add example.net 'smtp:[mx.example.net]' >/dev/null 2>&1
wait_for 'q_smap transports x@example.net' "smtp:[mx.example.net]" 5 || notok "users-json: the transports reached mailrosterd"
printf '%s\n' subdomain.example.com .example.org a@b.example.org x+y@b.example.org c@b.example.net >"$W/json.keys"
TMAP=("transports=texthash:$W/json.transport")
vfy "$W/json.t1" --keys "$W/json.keys" --roster-keys --delimiter + "${TMAP[@]}"
sed 's/^/#   /' "$W/json.t1" "$W/json.t1.err"
check "transports: the same entries: no difference, exit 0" "0|0" "$(grep -c . "$W/json.t1")|$RC"
check "transports: ... the old map finds .example.org for a subdomain's address with an extension only by the walk" "||smtp:[mx.example.org]" \
    "$(postmap -q x+y@b.example.org "texthash:$W/json.transport")|$(postmap -q b.example.org "texthash:$W/json.transport")|$(postmap -q .example.org "texthash:$W/json.transport")"
check "transports: ... mailrosterd answers it from the whole address" "smtp:[mx.example.org]" "$(q_smap transports x+y@b.example.org)"

# deliberate differences: one entry changed, one removed
ADM transport set specialaddress@example.com 'transport=relay:[10.9.9.9]:25' >/dev/null 2>&1
ADM transport remove subdomain.example.com >/dev/null 2>&1
wait_for 'q_smap transports u@subdomain.example.com' "(not found)" 5 || notok "users-json: the changes reached mailrosterd"
vfy "$W/json.t2" --keys "$W/json.keys" --roster-keys --delimiter + "${TMAP[@]}"
sed 's/^/#   /' "$W/json.t2"
check "transports: after the changes: exit 1" "1" "$RC"
printf '%s\n' 'transports mailroster-verify-unknown@subdomain.example.com' 'transports specialaddress+verify@example.com' \
    'transports specialaddress@example.com' | LC_ALL=C sort >"$W/json.want"
keys_of "$W/json.t2" >"$W/json.got"
check_set "transports: exactly the changed and the removed entry's recipients" "$W/json.want" "$W/json.got"
# the same from the importer's keys alone (--keys): the removed entry's
# domain is asked because the old setup has it
"$TOP/scripts/import-users-json" --config "$J/config.json" --valiases "$J/local_valiases.json" --passwd "$J/passwd" \
    --keys "$J/users.json" >"$W/json.oldkeys" 2>"$W/json.oldkeys.err"
check "users-json --keys: the count on stderr" "users-json: $(grep -c . "$W/json.oldkeys") keys of the old setup, for mailroster verify --keys" \
    "$(cat "$W/json.oldkeys.err")"
vfy "$W/json.t2k" --keys "$W/json.oldkeys" --delimiter + "${TMAP[@]}"
keys_of "$W/json.t2k" >"$W/json.gotk"
check_set "transports, the importer's keys: the same differences" "$W/json.want" "$W/json.gotk"
check_reason "transports: the removed entry is named" "$W/json.t2" transports mailroster-verify-unknown@subdomain.example.com \
    '^no transport entry subdomain\.example\.com in mailroster'
check_reason "transports: the changed entry: mailroster's value" "$W/json.t2" transports specialaddress@example.com \
    "^the transports differ: mailroster's entry specialaddress@example\.com has relay:\[10\.9\.9\.9\]:25$"
check "transports: the old answer found without the extension names its key" \
    "relay:172.30.40.50:8025 (from specialaddress@example.com)|relay:[10.9.9.9]:25" \
    "$(awk -F'\t' '$2 == "specialaddress+verify@example.com" { print $3 "|" $4 }' "$W/json.t2")"

# parent_domain_matches_subdomains naming transport_maps (from main.cf):
# trivial-rewrite asks parents without the dot, so the old entry
# example.net covers b.example.net too and .example.org covers nothing
mkdir -p "$W/json-postfix"
cat >"$W/json-postfix/main.cf" <<EOF
compatibility_level = 3.6
recipient_delimiter = +
transport_maps = texthash:$W/json.transport
parent_domain_matches_subdomains = transport_maps
EOF
vfy "$W/json.t3" --main-cf "$W/json-postfix" --keys "$W/json.keys" --no-variants --ignore "$W/json.want"
sed 's/^/#   /' "$W/json.t3" "$W/json.t3.err"
printf 'transports %s\n' c@b.example.net mailroster-verify-unknown@b.example.net a@b.example.org x+y@b.example.org \
    mailroster-verify-unknown@b.example.org mailroster-verify-unknown@verify.example.org | LC_ALL=C sort >"$W/json.want3"
keys_of "$W/json.t3" >"$W/json.got3"
check_set "transports, parent style: example.net covers its subdomains, .example.org is never asked" "$W/json.want3" "$W/json.got3"
check "transports, parent style: exit 1" "1" "$RC"
check_reason "transports, parent style: said why" "$W/json.t3" transports c@b.example.net \
    '^parent_domain_matches_subdomains names transport_maps: the old entry example\.net covers its subdomains'
check_reason "transports, parent style: mailroster's .example.org answers alone" "$W/json.t3" transports a@b.example.org \
    "^mailroster's transport entry \.example\.org answers; parent_domain_matches_subdomains names transport_maps, so Postfix never asked the old map a \.domain key$"

# the old map's wildcard "*" answers last, for every recipient nothing
# else matched; mailrosterd serves none
printf '%s\n' 'example.net smtp:[mx.example.net]' '* smtp:[fallback.example]' >"$W/json.wild"
printf '%s\n' x@example.net z@nowhere.example >"$W/json.wkeys"
vfy "$W/json.t4" --keys "$W/json.wkeys" --no-variants --delimiter + "transports=texthash:$W/json.wild"
check "transports, wildcard: the recipients only * routes differ" \
    "transports mailroster-verify-unknown@nowhere.example
transports z@nowhere.example|1" "$(keys_of "$W/json.t4")|$RC"
check "transports, wildcard: the old answer names it, the reason too" \
    "smtp:[fallback.example] (from *)|the old map's wildcard * answers; mailroster serves no * entry (give the domains an entry, or set default_transport)" \
    "$(awk -F'\t' '$2 == "z@nowhere.example" { print $3 "|" $5 }' "$W/json.t4")"
mr_stop

t_summary
