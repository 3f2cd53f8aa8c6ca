#!/bin/bash
# Integration test of sql/schema.sql, sql/migrations/ and sql/roles.sql
# against a private, throw-away PostgreSQL 15 server.
#
#   bash tests/integration/schema_test.sh
#
# Starts its own server in a mktemp directory (unix socket only, no TCP),
# loads the schema and roles, checks constraints, triggers, the change log,
# NOTIFY, the serialisation of directory writers and the role privileges,
# prints one "ok - ..." / "not ok - ..." line per assertion and a final
# "N passed, M failed" line, exits non-zero if anything failed, and always
# stops the server and removes the directory.
#
# Environment: PGBIN (default /usr/lib/postgresql/15/bin).  When run as root,
# the server runs as user "postgres" (PostgreSQL refuses to run as root).

set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
SQL=$TOP/sql

PASS=0
FAIL=0
SERVER_UP=0
BG_PIDS=""
DONE=0
FDS_SAVED=0

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mailroster-schema.XXXXXX")
DATA=$TMP/data
SOCK=$TMP/sock
PORT=""

if [ "$(id -u)" = 0 ]; then
    as_pg() { runuser -u postgres -- "$@"; }
    chown postgres "$TMP"
else
    as_pg() { "$@"; }
fi
chmod 0755 "$TMP"

cleanup() {
    local pid
    set +e
    if [ "$FDS_SAVED" = 1 ]; then exec 1>&7 2>&8; fi
    if [ "$DONE" = 0 ]; then
        not_ok "test script stopped early (see the error above)"
        echo "$PASS passed, $FAIL failed"
    fi
    exec 3>&- 4>&-
    for pid in $BG_PIDS; do
        kill "$pid" 2>/dev/null
    done
    if [ "$SERVER_UP" = 1 ]; then
        as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -t 30 -w stop >/dev/null 2>&1 ||
            as_pg "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1
    fi
    for pid in $BG_PIDS; do
        wait "$pid" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap 'rc=$?; cleanup; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ok()     { PASS=$((PASS + 1)); echo "ok - $*"; }
not_ok() { FAIL=$((FAIL + 1)); echo "not ok - $*"; }
diag()   { sed 's/^/#   /'; }

# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------

as_pg mkdir -p "$SOCK"
if ! as_pg "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$TMP/initdb.log" 2>&1; then
    diag <"$TMP/initdb.log"
    echo "Bail out! initdb failed"
    exit 1
fi

for attempt in 0 1 2 3 4 5 6 7 8 9; do
    PORT=$((20000 + ($$ + attempt * 7919) % 10000))
    if as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$TMP/server.log" -w -t 60 \
            -o "-k $SOCK -p $PORT -c listen_addresses='' -c fsync=off" start >/dev/null 2>&1; then
        SERVER_UP=1
        break
    fi
done
if [ "$SERVER_UP" != 1 ]; then
    diag <"$TMP/server.log" || true
    echo "Bail out! could not start PostgreSQL"
    exit 1
fi

# Keep the real stdout/stderr (opened only now, so the server does not
# inherit them): a signal trap can run while a command's redirection to a
# file in $TMP is still in effect, and cleanup's report must not go there.
exec 7>&1 8>&2
FDS_SAVED=1

DB=mr_test

# psql as superuser postgres (or as -U USER given first): quiet, tuples only.
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d "$DB" "$@"; }
# q_as ROLE SQL: run SQL as a login role.
q_as() { local u=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U "$u" -d "$DB" -c "$*"; }

# expect_ok NAME SQL [USER]
expect_ok() {
    local name=$1 sql=$2 user=${3:-postgres}
    if q_as "$user" "$sql" >"$TMP/out" 2>&1; then
        ok "$name"
    else
        not_ok "$name"; diag <"$TMP/out"
    fi
}

# expect_fail NAME SQL PATTERN [USER]: must fail with an error matching PATTERN
# (extended regex, e.g. the constraint name).
expect_fail() {
    local name=$1 sql=$2 pat=$3 user=${4:-postgres}
    if q_as "$user" "$sql" >"$TMP/out" 2>&1; then
        not_ok "$name (was accepted)"
    elif grep -Eq -- "$pat" "$TMP/out"; then
        ok "$name"
    else
        not_ok "$name (wrong error, wanted /$pat/)"; diag <"$TMP/out"
    fi
}

# expect_eq NAME SQL EXPECTED [USER]
expect_eq() {
    local name=$1 sql=$2 want=$3 user=${4:-postgres} got
    if got=$(q_as "$user" "$sql" 2>&1) && [ "$got" = "$want" ]; then
        ok "$name"
    else
        not_ok "$name"
        { echo "want: $want"; echo "got:  $got"; } | diag
    fi
}

# Change-log helpers: mark the current end, then list what came after it.
cl_mark() { q -c "SELECT coalesce(max(seq), 0) FROM mailroster.change_log"; }
# Sorted "tbl:op:row_id" entries after MARK, space separated.
cl_since() {
    q -c "SELECT coalesce(string_agg(tbl || ':' || op || ':' || row_id, ' ' ORDER BY tbl, op, row_id), '')
            FROM mailroster.change_log WHERE seq > $1"
}
expect_log() {
    local name=$1 mark=$2 want=$3 got
    got=$(cl_since "$mark")
    if [ "$got" = "$want" ]; then
        ok "$name"
    else
        not_ok "$name"
        { echo "want: $want"; echo "got:  $got"; } | diag
    fi
}

psql_pg() { psql -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres "$@"; }

# ---------------------------------------------------------------------------
# Load: schema.sql into mr_test, the migrations one by one into mr_mig.
# ---------------------------------------------------------------------------

psql_pg -d postgres -c "CREATE DATABASE mr_test" -c "CREATE DATABASE mr_mig" >/dev/null

if psql_pg -d mr_test -f "$SQL/schema.sql" >"$TMP/out" 2>&1; then
    ok "schema.sql loads"
else
    not_ok "schema.sql loads"; diag <"$TMP/out"
    echo "Bail out! cannot continue without the schema"
    exit 1
fi

mig_ok=1
for m in "$SQL"/migrations/[0-9][0-9][0-9][0-9]_*.sql; do
    psql_pg -d mr_mig -f "$m" >"$TMP/out" 2>&1 || { mig_ok=0; diag <"$TMP/out"; }
done
if [ $mig_ok = 1 ]; then ok "migrations apply one by one"; else not_ok "migrations apply one by one"; fi

if psql_pg -d mr_test -f "$SQL/roles.sql" >"$TMP/out" 2>&1; then
    ok "roles.sql runs"
else
    not_ok "roles.sql runs"; diag <"$TMP/out"
fi

dump() {
    pg_dump -h "$SOCK" -p "$PORT" -U postgres --schema-only -d "$1" |
        grep -Ev '^\\(un)?restrict ' | grep -v '^-- Dumped '
}
dump mr_test >"$TMP/dump_roles1.sql"

if psql_pg -d mr_test -f "$SQL/roles.sql" >"$TMP/out" 2>&1; then
    ok "roles.sql runs a second time"
else
    not_ok "roles.sql runs a second time"; diag <"$TMP/out"
fi
dump mr_test >"$TMP/dump_roles2.sql"
if diff -u "$TMP/dump_roles1.sql" "$TMP/dump_roles2.sql" >"$TMP/out"; then
    ok "roles.sql is idempotent (same grants after the second run)"
else
    not_ok "roles.sql is idempotent"; head -40 "$TMP/out" | diag
fi
psql_pg -d mr_mig -f "$SQL/roles.sql" >/dev/null 2>&1 || true

dump mr_mig >"$TMP/dump_mig.sql"
if diff -u "$TMP/dump_roles2.sql" "$TMP/dump_mig.sql" >"$TMP/out"; then
    ok "schema.sql and the migrations give the same pg_dump --schema-only"
else
    not_ok "schema.sql and the migrations give the same pg_dump --schema-only"
    head -40 "$TMP/out" | diag
fi
expect_eq "schema_version has one row per migration" \
    "SELECT string_agg(version::text, ',' ORDER BY version) FROM mailroster.schema_version" \
    "$(cd "$SQL/migrations" && ls [0-9][0-9][0-9][0-9]_*.sql | sed 's/_.*//; s/^0*//' | paste -sd,)"

if psql_pg -d mr_mig -f "$SQL/migrations/0001_initial.sql" >"$TMP/out" 2>&1; then
    not_ok "re-applying 0001 is refused"
else
    ok "re-applying 0001 is refused"
fi
if [ "$(psql_pg -At -d mr_mig -c "SELECT count(*) FROM mailroster.schema_version")" = "$(ls "$SQL"/migrations/[0-9][0-9][0-9][0-9]_*.sql | wc -l)" ] &&
   dump mr_mig | diff -q - "$TMP/dump_mig.sql" >/dev/null; then
    ok "a failed migration leaves the database unchanged"
else
    not_ok "a failed migration leaves the database unchanged"
fi

# Login roles, members of the groups (as a sysop would create them).
q -c "CREATE ROLE t_reader LOGIN IN ROLE mailroster_reader;
      CREATE ROLE t_admin  LOGIN IN ROLE mailroster_admin;
      CREATE ROLE t_dict   LOGIN IN ROLE mailroster_dovecot_dict;
      CREATE ROLE t_nobody LOGIN;"
expect_eq "group roles are NOLOGIN" \
    "SELECT string_agg(rolname || '=' || rolcanlogin, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'mailroster\_%'" \
    "mailroster_admin=false,mailroster_dovecot_dict=false,mailroster_reader=false"

# ---------------------------------------------------------------------------
# Valid rows (written by the admin role, through its own privileges)
# ---------------------------------------------------------------------------

A=t_admin
expect_ok "admin inserts domains (incl. xn-- label, single label)" \
    "INSERT INTO mailroster.domains (name) VALUES ('example.org'), ('xn--bcher-kva.example'), ('localhost'), ('a-b.c0.example')" $A
expect_ok "admin inserts a mailbox with a hashed password" \
    "INSERT INTO mailroster.mailboxes (domain_id, local_part, password)
     SELECT id, 'bob', '{SHA512-CRYPT}\$6\$salt\$abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdef' FROM mailroster.domains WHERE name = 'example.org'" $A
expect_ok "mailbox with NULL password, limits, services subset, uid/gid, home" \
    "INSERT INTO mailroster.mailboxes (domain_id, local_part, services, quota_bytes, quota_messages,
                                       send_limit_messages, send_limit_recipients, home, mail, uid, gid)
     SELECT id, 'alice.smith', '{imap,submission}', 1000000, 0, 100, 500, '/var/vmail/x', 'maildir:~/Maildir', 5000, 5000
       FROM mailroster.domains WHERE name = 'example.org'" $A
expect_ok "64-octet local part accepted" \
    "INSERT INTO mailroster.mailboxes (domain_id, local_part)
     SELECT id, repeat('x', 64) FROM mailroster.domains WHERE name = 'example.org'" $A
expect_ok "UTF-8 local part of 64 octets accepted" \
    "INSERT INTO mailroster.mailboxes (domain_id, local_part)
     SELECT id, repeat('é', 32) FROM mailroster.domains WHERE name = 'example.org'" $A
expect_ok "alias with local, remote, +tagged and @domain destinations" \
    "INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
     SELECT id, 'postmaster', '{bob@example.org,someone+tag@remote.example,@xn--bcher-kva.example}'
       FROM mailroster.domains WHERE name = 'example.org'" $A
expect_ok "catch-all alias (empty local part)" \
    "INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
     SELECT id, '', '{bob@example.org}' FROM mailroster.domains WHERE name = 'example.org'" $A
expect_ok "alias with 1000 destinations accepted" \
    "INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
     SELECT id, 'many', (SELECT array_agg('u' || i || '@remote.example') FROM generate_series(1, 1000) i)
       FROM mailroster.domains WHERE name = 'example.org'" $A
expect_ok "sender addresses (address and @domain wildcard)" \
    "INSERT INTO mailroster.sender_addresses (mailbox_id, address)
     SELECT id, unnest('{info@example.org,@localhost}'::text[]) FROM mailroster.mailboxes WHERE local_part = 'bob'" $A
expect_ok "master users (all domains, some domains)" \
    "INSERT INTO mailroster.master_users (name, password, domains)
     VALUES ('master', '{ARGON2ID}\$argon2id\$v=19\$m=65536,t=3,p=1\$c29tZXNhbHQ\$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc', NULL), ('helpdesk', '{BLF-CRYPT}\$2y\$05\$abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc', '{example.org}')" $A
expect_ok "audit_log append by admin" \
    "INSERT INTO mailroster.audit_log (actor, action, object, detail) VALUES ('test', 'add', 'bob@example.org', '{\"k\":1}')" $A

# 254-octet address accepted: 63 + 1 + 190.
LONGDOM=$(printf 'a%.0s' $(seq 63)).$(printf 'b%.0s' $(seq 63)).$(printf 'c%.0s' $(seq 62))
q -c "INSERT INTO mailroster.domains (name) VALUES ('$LONGDOM')"
expect_ok "254-octet mailbox address accepted" \
    "INSERT INTO mailroster.mailboxes (domain_id, local_part)
     SELECT id, repeat('l', 63) FROM mailroster.domains WHERE name = '$LONGDOM'" $A

# ---------------------------------------------------------------------------
# Constraint violations
# ---------------------------------------------------------------------------

dom_fail() { expect_fail "domain refused: $1" "INSERT INTO mailroster.domains (name) VALUES ($2)" "${3:-domains_name_check}" $A; }
dom_fail "uppercase"                "'Example.com'"
dom_fail "underscore in label"      "'ex_ample.com'"
dom_fail "leading hyphen"           "'-abc.com'"
dom_fail "trailing hyphen"          "'abc-.com'"
dom_fail "empty label (a..b)"       "'a..b'"
dom_fail "trailing dot"             "'abc.com.'"
dom_fail "leading dot"              "'.abc.com'"
dom_fail "64-octet label"           "repeat('a', 64) || '.com'"
dom_fail "254 octets"               "'$LONGDOM' || '.com' || repeat('d', 60)"
dom_fail "empty name"               "''"
dom_fail "U-label (not A-label)"    "'bücher.example'"
dom_fail "space"                    "'a b.com'"
dom_fail "duplicate name"           "'example.org'" "domains_name_key"
expect_fail "domain refused: negative quota" \
    "INSERT INTO mailroster.domains (name, quota_bytes) VALUES ('q.example', -1)" domains_quota_bytes_check $A
expect_fail "domain refused: send_limit_window 0" \
    "INSERT INTO mailroster.domains (name, send_limit_window) VALUES ('q.example', 0)" domains_send_limit_window_check $A
expect_fail "domain rename refused" \
    "UPDATE mailroster.domains SET name = 'example.net' WHERE name = 'example.org'" "cannot be renamed" $A
expect_ok "other domain updates allowed" \
    "UPDATE mailroster.domains SET enabled = false, disabled_reason = 'test', name = name WHERE name = 'localhost'" $A

mb() { # mb LOCAL_PART_SQL [EXTRA_COLS EXTRA_VALS]
    echo "INSERT INTO mailroster.mailboxes (domain_id, local_part${2:+, $2})
          SELECT id, $1${3:+, $3} FROM mailroster.domains WHERE name = 'example.org'"
}
lp_fail() { expect_fail "mailbox refused: $1" "$(mb "$2")" "${3:-mailboxes_local_part_check}" $A; }
lp_fail "65-octet local part"         "repeat('x', 65)"
lp_fail "65-octet UTF-8 local part"   "repeat('é', 32) || 'x'"
lp_fail "empty local part"            "''"
lp_fail "uppercase"                   "'Bob2'"
lp_fail "'..'"                        "'a..b'"
lp_fail "leading dot"                 "'.ab'"
lp_fail "trailing dot"                "'ab.'"
lp_fail "'+' (recipient delimiter)"   "'bob+tag'"
lp_fail "space"                       "'a b'"
lp_fail "tab"                         "E'a\\tb'"
lp_fail "DEL"                         "E'a\\x7fb'"
lp_fail "no-break space"              "E'a\\u00a0b'"
for ch in '@' ',' '"' '\' '(' ')' '<' '>' '[' ']' ';' ':'; do
    lp_fail "'$ch'" "'a${ch}b'"
done
lp_fail "duplicate address"           "'bob'" "mailboxes_domain_id_local_part_key"
expect_fail "mailbox refused: 255-octet address" \
    "INSERT INTO mailroster.mailboxes (domain_id, local_part)
     SELECT id, repeat('m', 64) FROM mailroster.domains WHERE name = '$LONGDOM'" 'is longer than 254 octets' $A
expect_fail "mailbox refused: password without {SCHEME}" "$(mb "'pw1'" password "'secret'")" mailboxes_password_check $A
expect_fail "mailbox refused: lowercase scheme" "$(mb "'pw2'" password "'{plain}secret'")" mailboxes_password_check $A
expect_fail "mailbox refused: scheme only" "$(mb "'pw3'" password "'{PLAIN}'")" mailboxes_password_check $A
expect_fail "mailbox refused: unknown service" "$(mb "'sv1'" services "'{imap,smtp}'")" mailboxes_services_check $A
expect_fail "mailbox refused: NULL service" "$(mb "'sv2'" services "'{imap,NULL}'")" mailboxes_services_check $A
expect_fail "mailbox refused: negative quota" "$(mb "'qt1'" quota_bytes "-5")" mailboxes_quota_bytes_check $A
expect_fail "mailbox refused: maildir with '..'" "$(mb "'md1'" maildir "'example.org/../x/'")" mailboxes_maildir_check $A
expect_fail "mailbox refused: absolute maildir" "$(mb "'md2'" maildir "'/etc/'")" mailboxes_maildir_check $A
expect_fail "mailbox refused: unknown domain" \
    "INSERT INTO mailroster.mailboxes (domain_id, local_part) VALUES (999999, 'x')" "does not exist" $A

# Alias / mailbox address conflicts, both directions.
expect_fail "alias whose source is a mailbox refused (names the address)" \
    "INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
     SELECT id, 'bob', '{x@remote.example}' FROM mailroster.domains WHERE name = 'example.org'" \
    'bob@example.org is already a mailbox' $A
expect_fail "mailbox whose address is an alias refused (names the address)" \
    "$(mb "'postmaster'")" 'postmaster@example.org is already an alias' $A
expect_fail "alias renamed onto a mailbox address refused" \
    "UPDATE mailroster.aliases SET local_part = 'bob' WHERE local_part = 'postmaster'" \
    'bob@example.org is already a mailbox' $A
expect_fail "mailbox renamed onto an alias address refused" \
    "UPDATE mailroster.mailboxes SET local_part = 'postmaster' WHERE local_part = 'bob'" \
    'postmaster@example.org is already an alias' $A
expect_fail "self-referencing alias refused" \
    "INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
     SELECT id, 'loop', '{bob@example.org,loop@example.org}' FROM mailroster.domains WHERE name = 'example.org'" \
    'cannot have itself as a destination' $A
expect_fail "self-referencing catch-all refused" \
    "INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
     SELECT id, '', '{@localhost}' FROM mailroster.domains WHERE name = 'localhost'" \
    'cannot have itself as a destination' $A
expect_fail "alias updated to point at itself refused" \
    "UPDATE mailroster.aliases SET destinations = destinations || '{postmaster@example.org}'::text[] WHERE local_part = 'postmaster'" \
    'cannot have itself as a destination' $A

al() { echo "INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
             SELECT id, $1, $2 FROM mailroster.domains WHERE name = 'example.org'"; }
expect_fail "alias refused: '+' in source"   "$(al "'a+b'" "'{bob@example.org}'")" aliases_local_part_check $A
expect_fail "alias refused: '..' in source"  "$(al "'a..b'" "'{bob@example.org}'")" aliases_local_part_check $A
expect_fail "alias refused: no destinations" "$(al "'d0'" "'{}'")" aliases_destinations_count_check $A
expect_fail "alias refused: 1001 destinations" \
    "$(al "'d1001'" "(SELECT array_agg('u' || i || '@remote.example') FROM generate_series(1, 1001) i)")" \
    aliases_destinations_count_check $A
dest_fail() { expect_fail "alias refused: destination $1" "$(al "'dx'" "$2")" aliases_destinations_check $A; }
dest_fail "without @"          "'{bob}'"
dest_fail "with space"         "'{\"a b@remote.example\"}'"
dest_fail "with comma"         "'{\"a,b@remote.example\"}'"
dest_fail "uppercase domain"   "'{x@Remote.example}'"
dest_fail "trailing @"         "'{x@}'"
dest_fail "bad domain"         "'{x@-remote.example}'"
dest_fail "NULL element"       "'{bob@example.org,NULL}'"
dest_fail "control character"  "ARRAY[E'a\\nb@remote.example']"
dest_fail "65-octet local"     "ARRAY[repeat('x', 65) || '@remote.example']"
dest_fail "255 octets"         "ARRAY[repeat('y', 64) || '@$LONGDOM']"
expect_fail "sender address refused: uppercase" \
    "INSERT INTO mailroster.sender_addresses (mailbox_id, address)
     SELECT id, 'Info@example.org' FROM mailroster.mailboxes WHERE local_part = 'bob'" sender_addresses_address_check $A
expect_fail "sender address refused: duplicate" \
    "INSERT INTO mailroster.sender_addresses (mailbox_id, address)
     SELECT id, 'info@example.org' FROM mailroster.mailboxes WHERE local_part = 'bob'" sender_addresses_address_mailbox_id_key $A
expect_fail "master user refused: password without scheme" \
    "INSERT INTO mailroster.master_users (name, password) VALUES ('m2', 'secret')" master_users_password_check $A
expect_fail "master user refused: bad domain in domains" \
    "INSERT INTO mailroster.master_users (name, password, domains) VALUES ('m3', '{BLF-CRYPT}\$2y\$05\$abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc', '{Example.org}')" master_users_domains_check $A
expect_fail "domain with mailboxes cannot be deleted" \
    "DELETE FROM mailroster.domains WHERE name = 'example.org'" "foreign key" $A
expect_fail "TRUNCATE of a directory table refused (even for the owner)" \
    "TRUNCATE mailroster.sender_addresses" "not allowed" postgres
expect_fail "id of a directory row cannot change" \
    "UPDATE mailroster.master_users SET id = id + 1000 WHERE name = 'master'" "cannot be changed" $A

# ---------------------------------------------------------------------------
# maildir
# ---------------------------------------------------------------------------

expect_eq "maildir generated as <domain>/<local_part>.<id>/" \
    "SELECT maildir = 'example.org/bob.' || id || '/' FROM mailroster.mailboxes WHERE local_part = 'bob'" t
q -c "INSERT INTO mailroster.domains (name) VALUES ('re.example');
      INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'carol' FROM mailroster.domains WHERE name = 're.example'"
MD1=$(q -c "SELECT maildir FROM mailroster.mailboxes WHERE local_part = 'carol'")
q -c "DELETE FROM mailroster.mailboxes WHERE local_part = 'carol';
      INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'carol' FROM mailroster.domains WHERE name = 're.example'"
MD2=$(q -c "SELECT maildir FROM mailroster.mailboxes WHERE local_part = 'carol'")
if [ -n "$MD1" ] && [ -n "$MD2" ] && [ "$MD1" != "$MD2" ]; then
    ok "re-created address gets a different maildir ($MD1 -> $MD2)"
else
    not_ok "re-created address gets a different maildir ($MD1 -> $MD2)"
fi
expect_eq "'/' in a local part does not nest directories" \
    "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'bob.1/x' FROM mailroster.domains WHERE name = 're.example'
     RETURNING maildir ~ '^re\.example/bob\.1_x\.[0-9]+/\$'" t
expect_eq "explicit maildir kept" \
    "INSERT INTO mailroster.mailboxes (domain_id, local_part, maildir) SELECT id, 'dave', 'custom/dave/' FROM mailroster.domains WHERE name = 're.example'
     RETURNING maildir" "custom/dave/"
expect_fail "duplicate maildir refused" \
    "INSERT INTO mailroster.mailboxes (domain_id, local_part, maildir) SELECT id, 'erin', 'custom/dave/' FROM mailroster.domains WHERE name = 're.example'" \
    mailboxes_maildir_key

# ---------------------------------------------------------------------------
# Change log
# ---------------------------------------------------------------------------

m=$(cl_mark)
q_as $A "INSERT INTO mailroster.domains (name) VALUES ('log.example')" >/dev/null
D=$(q -c "SELECT id FROM mailroster.domains WHERE name = 'log.example'")
expect_log "domain insert logged" "$m" "domains:I:$D"
expect_eq "change_log row written by the same transaction as the data row" \
    "SELECT c.xmin::text = d.xmin::text FROM mailroster.change_log c, mailroster.domains d
      WHERE d.name = 'log.example' AND c.tbl = 'domains' AND c.op = 'I' AND c.row_id = d.id" t

m=$(cl_mark)
q_as $A "UPDATE mailroster.domains SET quota_bytes = 10 WHERE id = $D" >/dev/null
expect_log "domain update logged" "$m" "domains:U:$D"
expect_eq "updated_at maintained" \
    "SELECT updated_at > created_at FROM mailroster.domains WHERE id = $D" t

m=$(cl_mark)
M=$(q_as $A "INSERT INTO mailroster.mailboxes (domain_id, local_part) VALUES ($D, 'frank') RETURNING id")
S=$(q_as $A "INSERT INTO mailroster.sender_addresses (mailbox_id, address)
             VALUES ($M, 'f1@log.example'), ($M, 'f2@log.example') RETURNING id" | sort -n | paste -sd' ')
S1=${S%% *}; S2=${S##* }
expect_log "mailbox and multi-row sender insert logged (one row each)" "$m" \
    "mailboxes:I:$M sender_addresses:I:$S1 sender_addresses:I:$S2"

m=$(cl_mark)
q_as $A "UPDATE mailroster.sender_addresses SET address = address WHERE mailbox_id = $M" >/dev/null
expect_log "multi-row update logs every row" "$m" "sender_addresses:U:$S1 sender_addresses:U:$S2"

m=$(cl_mark)
AL=$(q_as $A "INSERT INTO mailroster.aliases (domain_id, local_part, destinations) VALUES ($D, 'info', '{frank@log.example}') RETURNING id")
q_as $A "UPDATE mailroster.aliases SET enabled = false WHERE id = $AL" >/dev/null
q_as $A "DELETE FROM mailroster.aliases WHERE id = $AL" >/dev/null
expect_log "alias insert/update/delete logged" "$m" "aliases:D:$AL aliases:I:$AL aliases:U:$AL"

m=$(cl_mark)
MU=$(q_as $A "INSERT INTO mailroster.master_users (name, password) VALUES ('logmaster', '{BLF-CRYPT}\$2y\$05\$abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc') RETURNING id")
q_as $A "UPDATE mailroster.master_users SET enabled = false WHERE id = $MU" >/dev/null
q_as $A "DELETE FROM mailroster.master_users WHERE id = $MU" >/dev/null
expect_log "master user insert/update/delete logged" "$m" "master_users:D:$MU master_users:I:$MU master_users:U:$MU"

m=$(cl_mark)
q_as $A "DELETE FROM mailroster.mailboxes WHERE id = $M" >/dev/null
expect_log "mailbox delete logs the cascaded sender_addresses deletes" "$m" \
    "mailboxes:D:$M sender_addresses:D:$S1 sender_addresses:D:$S2"

m=$(cl_mark)
q_as $A "DELETE FROM mailroster.domains WHERE id = $D" >/dev/null
expect_log "domain delete logged" "$m" "domains:D:$D"

m=$(cl_mark)
q_as $A "INSERT INTO mailroster.domains (name) VALUES ('ups.example')
         ON CONFLICT (name) DO UPDATE SET enabled = true" >/dev/null
D2=$(q -c "SELECT id FROM mailroster.domains WHERE name = 'ups.example'")
q_as $A "INSERT INTO mailroster.domains (name) VALUES ('ups.example')
         ON CONFLICT (name) DO UPDATE SET enabled = false" >/dev/null
expect_log "INSERT ... ON CONFLICT DO UPDATE logged as I then U" "$m" "domains:I:$D2 domains:U:$D2"

m=$(cl_mark)
q_as $A "BEGIN; INSERT INTO mailroster.domains (name) VALUES ('rolledback.example'); ROLLBACK" >/dev/null
q_as $A "INSERT INTO mailroster.domains (name) VALUES ('BAD.example')" >/dev/null 2>&1 || true
q_as $A "UPDATE mailroster.domains SET enabled = enabled WHERE false" >/dev/null
expect_log "rolled-back, failed and zero-row writes log nothing" "$m" ""

expect_eq "change_log sequence has CACHE 1" \
    "SELECT seqcache FROM pg_sequence WHERE seqrelid = 'mailroster.change_log_seq_seq'::regclass" 1

# ---------------------------------------------------------------------------
# NOTIFY
# ---------------------------------------------------------------------------

psql -X -h "$SOCK" -p "$PORT" -U $A -d "$DB" >"$TMP/notify.out" 2>&1 <<'EOF' || true
LISTEN mailroster_changes;
BEGIN;
INSERT INTO mailroster.domains (name) VALUES ('notify1.example'), ('notify2.example');
COMMIT;
SELECT 1;
EOF
n=$(grep -c 'Asynchronous notification "mailroster_changes"' "$TMP/notify.out" || true)
if [ "$n" = 1 ]; then
    ok "committed write sends NOTIFY mailroster_changes (once per transaction)"
else
    not_ok "committed write sends NOTIFY mailroster_changes once (got $n)"; diag <"$TMP/notify.out"
fi

psql -X -h "$SOCK" -p "$PORT" -U $A -d "$DB" >"$TMP/notify2.out" 2>&1 <<'EOF' || true
LISTEN mailroster_changes;
BEGIN;
INSERT INTO mailroster.domains (name) VALUES ('notify3.example');
ROLLBACK;
SELECT 1;
EOF
if grep -q 'Asynchronous notification' "$TMP/notify2.out"; then
    not_ok "rolled-back write sends no NOTIFY"; diag <"$TMP/notify2.out"
else
    ok "rolled-back write sends no NOTIFY"
fi

# Another session (the daemon, as mailroster_reader) gets the wake-up.
mkfifo "$TMP/l.fifo"
psql -X -h "$SOCK" -p "$PORT" -U t_reader -d "$DB" <"$TMP/l.fifo" >"$TMP/l.out" 2>&1 &
LPID=$!; BG_PIDS="$BG_PIDS $LPID"
exec 4>"$TMP/l.fifo"
echo "LISTEN mailroster_changes; SELECT 'listening';" >&4
for i in $(seq 100); do grep -q listening "$TMP/l.out" && break; sleep 0.1; done
q_as $A "DELETE FROM mailroster.domains WHERE name = 'notify1.example'" >/dev/null
echo "SELECT 'after';" >&4
echo '\q' >&4
exec 4>&-
wait $LPID || true
if grep -q 'Asynchronous notification "mailroster_changes"' "$TMP/l.out"; then
    ok "reader session LISTENing receives the notification of another session's write"
else
    not_ok "reader session LISTENing receives the notification"; diag <"$TMP/l.out"
fi

# ---------------------------------------------------------------------------
# Serialisation: change-log order = commit order
# ---------------------------------------------------------------------------

LAST=$(cl_mark)      # what a daemon has applied so far
mkfifo "$TMP/a.fifo"
psql -X -At -h "$SOCK" -p "$PORT" -U $A -d "$DB" <"$TMP/a.fifo" >"$TMP/a.out" 2>&1 &
APID=$!; BG_PIDS="$BG_PIDS $APID"
exec 3>"$TMP/a.fifo"
echo "BEGIN;" >&3
echo "INSERT INTO mailroster.domains (name) VALUES ('writer-a.example');" >&3
echo "SELECT 'A_SEQ=' || max(seq) FROM mailroster.change_log;" >&3
for i in $(seq 100); do grep -q '^A_SEQ=' "$TMP/a.out" && break; sleep 0.1; done
SEQ_A=$(sed -n 's/^A_SEQ=//p' "$TMP/a.out")
expect_eq "writer A holds the directory advisory lock while open" \
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
        AND ((classid::bigint << 32) | objid::bigint) = mailroster.directory_lock_key() AND objsubid = 1" 1

psql -X -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U $A -d "$DB" \
    -c "INSERT INTO mailroster.domains (name) VALUES ('writer-b.example')" >"$TMP/b.out" 2>&1 &
BPID=$!; BG_PIDS="$BG_PIDS $BPID"

blocked=0
for i in $(seq 100); do
    w=$(q -c "SELECT wait_event_type || '/' || wait_event FROM pg_stat_activity
               WHERE query LIKE '%writer-b.example%' AND pid <> pg_backend_pid()")
    if [ "$w" = "Lock/advisory" ]; then blocked=1; break; fi
    sleep 0.1
done
if [ $blocked = 1 ] && kill -0 $BPID 2>/dev/null; then
    ok "writer B waits on the advisory lock while A is open"
else
    not_ok "writer B waits on the advisory lock while A is open (wait_event: ${w:-none})"
fi
expect_eq "B has not taken a change_log seq while waiting" \
    "SELECT last_value FROM mailroster.change_log_seq_seq" "$SEQ_A"
# The daemon polls now and advances its position to the highest seq it saw
# (the trap: without serialisation it would see B's seq and later skip A's).
POLL1=$(q_as t_reader "SELECT count(*) || ' ' || coalesce(max(seq), $LAST) FROM mailroster.change_log WHERE seq > $LAST")
if [ "${POLL1%% *}" = 0 ]; then
    ok "daemon poll while A is open sees nothing new (seq > last)"
else
    not_ok "daemon poll while A is open sees nothing new (saw ${POLL1%% *} rows)"
fi
LAST=${POLL1##* }

echo "COMMIT;" >&3
echo '\q' >&3
exec 3>&-
wait $APID || true
if wait $BPID; then
    ok "writer B completes after A commits"
else
    not_ok "writer B completes after A commits"; diag <"$TMP/b.out"
fi
SEQ_B=$(q -c "SELECT seq FROM mailroster.change_log c JOIN mailroster.domains d ON d.id = c.row_id
              WHERE c.tbl = 'domains' AND c.op = 'I' AND d.name = 'writer-b.example'")
if [ -n "$SEQ_A" ] && [ -n "$SEQ_B" ] && [ "$SEQ_B" -gt "$SEQ_A" ]; then
    ok "B's seq ($SEQ_B) > A's seq ($SEQ_A)"
else
    not_ok "B's seq (${SEQ_B:-none}) > A's seq (${SEQ_A:-none})"
fi
expect_eq "daemon's next poll (seq > its last) gets A then B, each once" \
    "SELECT string_agg(d.name, ',' ORDER BY c.seq) FROM mailroster.change_log c
       JOIN mailroster.domains d ON d.id = c.row_id AND c.tbl = 'domains'
      WHERE c.seq > $LAST" "writer-a.example,writer-b.example" t_reader

# ---------------------------------------------------------------------------
# Mailbox/alias exclusivity at REPEATABLE READ (migration 0004)
# ---------------------------------------------------------------------------

# race FIRST SECOND NAME: session 1 takes a REPEATABLE READ snapshot, session
# 2 commits a FIRST (mailbox|alias) NAME@example.org, session 1 (which still
# does not see it) inserts a SECOND with the same address: must fail.
race() {
    local first=$1 second=$2 name=$3 ins1 ins2 i
    ins() {
        if [ "$1" = mailbox ]; then
            echo "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, '$2' FROM mailroster.domains WHERE name = 'example.org';"
        else
            echo "INSERT INTO mailroster.aliases (domain_id, local_part, destinations) SELECT id, '$2', '{bob@example.org}' FROM mailroster.domains WHERE name = 'example.org';"
        fi
    }
    rm -f "$TMP/r.fifo"; mkfifo "$TMP/r.fifo"
    psql -X -At -h "$SOCK" -p "$PORT" -U $A -d "$DB" <"$TMP/r.fifo" >"$TMP/r.out" 2>&1 &
    RPID=$!; BG_PIDS="$BG_PIDS $RPID"
    exec 3>"$TMP/r.fifo"
    echo "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 'SNAP=' || count(*) FROM mailroster.mailboxes;" >&3
    for i in $(seq 200); do grep -q '^SNAP=' "$TMP/r.out" && break; sleep 0.05; done
    q_as $A "$(ins "$first" "$name")" >/dev/null 2>&1
    echo "SELECT 'SEES=' || (SELECT count(*) FROM mailroster.mailboxes WHERE local_part = '$name')
                         + (SELECT count(*) FROM mailroster.aliases WHERE local_part = '$name');" >&3
    for i in $(seq 200); do grep -q '^SEES=' "$TMP/r.out" && break; sleep 0.05; done
    ins "$second" "$name" >&3
    echo "COMMIT;" >&3
    echo '\q' >&3
    exec 3>&-
    wait $RPID || true
    if grep -q '^SEES=0$' "$TMP/r.out" && grep -q 'ERROR' "$TMP/r.out" &&
       [ "$(q -c "SELECT (SELECT count(*) FROM mailroster.mailboxes WHERE local_part = '$name')
                        + (SELECT count(*) FROM mailroster.aliases WHERE local_part = '$name')")" = 1 ]; then
        ok "REPEATABLE READ: $second $name@ after a $first committed since the snapshot is refused"
    else
        not_ok "REPEATABLE READ: $second $name@ after a $first committed since the snapshot is refused"
        diag <"$TMP/r.out"
        q -c "SELECT 'mailboxes', count(*) FROM mailroster.mailboxes WHERE local_part = '$name'
              UNION ALL SELECT 'aliases', count(*) FROM mailroster.aliases WHERE local_part = '$name'" | diag
    fi
}
race mailbox alias clash
race alias mailbox clash2
expect_eq "claimed_addresses holds exactly the mailboxes and aliases" \
    "SELECT (SELECT count(*) FROM mailroster.claimed_addresses) = (SELECT count(*) FROM mailroster.mailboxes) + (SELECT count(*) FROM mailroster.aliases)" t
expect_eq "a renamed mailbox moves its claim" \
    "BEGIN; UPDATE mailroster.mailboxes SET local_part = 'clash-renamed' WHERE local_part = 'clash';
     SELECT string_agg(local_part || ':' || kind, ',' ORDER BY local_part) FROM mailroster.claimed_addresses WHERE local_part LIKE 'clash%'; ROLLBACK" \
    "clash-renamed:mailbox,clash2:alias"

# ---------------------------------------------------------------------------
# Migration 0004 on a database with older rows
# ---------------------------------------------------------------------------

psql_pg -d postgres -c "CREATE DATABASE mr_old" >/dev/null
for m in "$SQL"/migrations/000[123]_*.sql; do psql_pg -d mr_old -f "$m" >/dev/null 2>&1; done
psql_pg -d mr_old -c "INSERT INTO mailroster.domains (name) VALUES ('old.example');
    INSERT INTO mailroster.mailboxes (domain_id, local_part, password, home)
    SELECT id, 'plain', '{PLAIN}hunter2', '/home/plain' FROM mailroster.domains;" >/dev/null
if psql_pg -d mr_old -f "$SQL/migrations/0004_trust_boundaries.sql" >"$TMP/out" 2>&1; then
    not_ok "0004 refuses a database with a plaintext password"
elif grep -q 'stored password hashes are not accepted hashes: mailbox plain@old.example (plaintext' "$TMP/out"; then
    ok "0004 refuses a database with a plaintext password, naming the account"
else
    not_ok "0004 refuses a database with a plaintext password, naming the account"; diag <"$TMP/out"
fi
psql_pg -d mr_old -c "UPDATE mailroster.mailboxes SET password = NULL" >/dev/null
if psql_pg -d mr_old -f "$SQL/migrations/0004_trust_boundaries.sql" >"$TMP/out" 2>&1 &&
   grep -q '1 mailboxes have a home or mail location outside mail_base' "$TMP/out"; then
    ok "0004 then applies, and keeps a home outside mail_base with path_override (saying so)"
else
    not_ok "0004 then applies, and keeps a home outside mail_base with path_override"; diag <"$TMP/out"
fi
check_old=$(psql_pg -At -d mr_old -c "SELECT home || ' ' || path_override FROM mailroster.mailboxes;
    SELECT count(*) FROM mailroster.claimed_addresses")
if [ "$check_old" = "$(printf '/home/plain true\n1')" ]; then
    ok "0004: the old row is marked, its address claimed"
else
    not_ok "0004: the old row is marked, its address claimed (got: $check_old)"
fi

# ---------------------------------------------------------------------------
# Roles
# ---------------------------------------------------------------------------

# Exact table privileges of each group role (r=SELECT a=INSERT w=UPDATE
# d=DELETE D=TRUNCATE x=REFERENCES t=TRIGGER), sequence USAGE, functions.
privs() {
    q -c "SELECT coalesce(string_agg(relname || ':' || p, ' ' ORDER BY relname), '') FROM (
            SELECT c.relname, string_agg(v.l, '' ORDER BY v.ord) AS p
              FROM pg_class c,
                   (VALUES (1, 'SELECT', 'r'), (2, 'INSERT', 'a'), (3, 'UPDATE', 'w'), (4, 'DELETE', 'd'),
                           (5, 'TRUNCATE', 'D'), (6, 'REFERENCES', 'x'), (7, 'TRIGGER', 't')) v(ord, priv, l)
             WHERE c.relnamespace = 'mailroster'::regnamespace AND c.relkind IN ('r', 'p', 'v')
               AND has_table_privilege('$1', c.oid, v.priv)
             GROUP BY c.relname) t"
}
seqs() {
    q -c "SELECT coalesce(string_agg(relname, ' ' ORDER BY relname), '') FROM pg_class
           WHERE relnamespace = 'mailroster'::regnamespace AND relkind = 'S'
             AND (has_sequence_privilege('$1', oid, 'USAGE') OR has_sequence_privilege('$1', oid, 'SELECT')
                  OR has_sequence_privilege('$1', oid, 'UPDATE'))"
}
funcs() {
    q -c "SELECT coalesce(string_agg(proname, ' ' ORDER BY proname), '') FROM pg_proc
           WHERE pronamespace = 'mailroster'::regnamespace AND has_function_privilege('$1', oid, 'EXECUTE')"
}
check_privs() {
    local name=$1 got=$2 want=$3
    if [ "$got" = "$want" ]; then ok "$name"; else not_ok "$name"; { echo "want: $want"; echo "got:  $got"; } | diag; fi
}
check_privs "reader: exactly the specified table privileges" "$(privs mailroster_reader)" \
    "aliases:r change_log:r domains:r dovecot_public_mailboxes:r dovecot_shared_mailboxes:r dovecot_sieve_scripts:r last_login:r mailboxes:r master_users:r quota_usage:r schema_version:r send_counters:r send_limits:r sender_addresses:r settings:r shared_mailboxes:r sieve_scripts:r transports:r"
check_privs "reader: no sequence privileges; EXECUTE on export_jsonl and send_admit only" "$(seqs mailroster_reader)|$(funcs mailroster_reader)" "|export_jsonl send_admit send_admit_many"
check_privs "admin: exactly the specified table privileges" "$(privs mailroster_admin)" \
    "aliases:rawd audit_log:ra change_log:r domains:rawd dovecot_public_mailboxes:r dovecot_shared_mailboxes:r dovecot_sieve_scripts:r last_login:r mailboxes:rawd master_users:rawd quota_usage:r schema_version:r send_counters:rawd send_hits:r send_limits:rawd sender_addresses:rawd settings:r shared_mailboxes:rawd sieve_scripts:rawd transports:rawd"
check_privs "admin: USAGE on the id sequences it needs, not on change_log's" "$(seqs mailroster_admin)" \
    "aliases_id_seq audit_log_id_seq domains_id_seq mailboxes_id_seq master_users_id_seq send_limits_id_seq sender_addresses_id_seq transports_id_seq"
check_privs "admin: EXECUTE on validators, the lock key, export, import and the limit windows only" "$(funcs mailroster_admin)" \
    "are_addresses are_domain_names directory_lock_key export_jsonl import_input_open import_jsonl import_jsonl_core import_jsonl_input import_jsonl_rowwise is_address is_domain_name is_local_part is_mailbox_local_part is_password_hash is_transport_pattern mail_paths_problem password_hash_ok password_hash_problem path_is_clean path_is_under send_limits_from send_limits_of send_limits_problem send_usage send_window_rows send_windows"
check_privs "dovecot_dict: exactly the specified table privileges" "$(privs mailroster_dovecot_dict)" \
    "dovecot_public_mailboxes:r dovecot_shared_mailboxes:rad dovecot_sieve_scripts:r last_login:rawd quota_usage:rawd"
check_privs "dovecot_dict: UPDATE of the shares view's dummy only (dict-sql's ON CONFLICT)" \
    "$(q -c "SELECT string_agg(a.attname, ' ' ORDER BY a.attname) FROM pg_attribute a
              WHERE a.attrelid = 'mailroster.dovecot_shared_mailboxes'::regclass AND a.attnum > 0
                AND has_column_privilege('mailroster_dovecot_dict', a.attrelid, a.attnum, 'UPDATE')")" "dummy"
check_privs "dovecot_dict: no sequence or function privileges" "$(seqs mailroster_dovecot_dict)|$(funcs mailroster_dovecot_dict)" "|"
check_privs "PUBLIC: no schema, table, sequence or function privileges" \
    "$(q -c "SELECT has_schema_privilege('t_nobody', 'mailroster', 'USAGE') OR has_schema_privilege('t_nobody', 'mailroster', 'CREATE')")|$(privs t_nobody)|$(seqs t_nobody)|$(funcs t_nobody)" "f|||"
expect_eq "change-log trigger function is SECURITY DEFINER with a pinned search_path" \
    "SELECT prosecdef || ' ' || array_to_string(proconfig, ',') FROM pg_proc WHERE oid = 'mailroster.tg_log_change()'::regprocedure" \
    "true search_path=mailroster, pg_temp"

R=t_reader
expect_ok   "reader can SELECT mailboxes" "SELECT count(*) FROM mailroster.mailboxes" $R
expect_ok   "reader can SELECT every directory and usage table" \
    "SELECT (SELECT count(*) FROM mailroster.domains) + (SELECT count(*) FROM mailroster.aliases)
          + (SELECT count(*) FROM mailroster.sender_addresses) + (SELECT count(*) FROM mailroster.master_users)
          + (SELECT count(*) FROM mailroster.change_log) + (SELECT count(*) FROM mailroster.schema_version)
          + (SELECT count(*) FROM mailroster.quota_usage) + (SELECT count(*) FROM mailroster.last_login)" $R
expect_fail "reader cannot INSERT into mailboxes" "$(mb "'r1'")" "permission denied" $R
expect_fail "reader cannot UPDATE domains" "UPDATE mailroster.domains SET enabled = true" "permission denied" $R
expect_fail "reader cannot DELETE aliases" "DELETE FROM mailroster.aliases" "permission denied" $R
expect_fail "reader cannot SELECT audit_log" "SELECT * FROM mailroster.audit_log" "permission denied" $R
expect_fail "reader cannot write quota_usage" "INSERT INTO mailroster.quota_usage (username) VALUES ('x')" "permission denied" $R
# 0005: the reader writes the rate-limit log only through send_admit()
expect_fail "reader cannot INSERT into send_counters directly" \
    "INSERT INTO mailroster.send_counters (username, window_start, messages, recipients) VALUES ('bob@example.org', '2024-01-01', 1, 3)" \
    "permission denied" $R
expect_fail "reader cannot DELETE its counters" "DELETE FROM mailroster.send_counters" "permission denied" $R
expect_fail "reader cannot change limits" \
    "INSERT INTO mailroster.send_limits (scope, window_seconds, messages) VALUES ('global', 60, 1)" "permission denied" $R
expect_eq   "send_admit is SECURITY DEFINER with a pinned search_path (and no JIT, migration 0009)" \
    "SELECT prosecdef || ' ' || array_to_string(proconfig, ',') FROM pg_proc WHERE oid = 'mailroster.send_admit(text, int, text, int)'::regprocedure" \
    "true search_path=mailroster, pg_temp,jit=off"
q -c "INSERT INTO mailroster.send_limits (scope, mailbox_id, window_seconds, messages, recipients)
      SELECT 'mailbox', m.id, 3600, 2, 5 FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id
       WHERE m.local_part = 'bob' AND d.name = 'example.org'"
expect_eq   "reader: send_admit admits 1 of 2 messages (3 recipients)" \
    "SELECT verdict || ' ' || coalesce(full_in::text, '-') FROM mailroster.send_admit('bob@example.org', 3)" "ok -" $R
expect_eq   "reader: send_admit refuses 3 recipients more than 5 allow" \
    "SELECT verdict || ' ' || limit_kind || ' ' || limit_value || ' ' || window_seconds FROM mailroster.send_admit('bob@example.org', 3)" \
    "defer recipients 5 3600" $R
expect_eq   "reader: send_admit admits 2 recipients, then the account is full" \
    "SELECT verdict || ' ' || (full_in > 3590) FROM mailroster.send_admit('bob@example.org', 2)" "ok true" $R
expect_eq   "reader: send_admit defers the 3rd message by the message limit" \
    "SELECT verdict || ' ' || limit_kind || ' ' || used || ' ' || (free_in BETWEEN 3590 AND 3600) FROM mailroster.send_admit('bob@example.org', 1)" \
    "defer messages 2 true" $R
expect_eq   "reader: more recipients than a window allows is 'toobig'" \
    "SELECT verdict FROM mailroster.send_admit('bob@example.org', 6)" "toobig" $R
expect_eq   "reader: an unknown login is 'unknown', nothing logged" \
    "SELECT verdict FROM mailroster.send_admit('nobody@example.org', 1)" "unknown" $R
expect_eq   "send_admit logged 2 rows, 5 recipients" \
    "SELECT count(*) || '|' || sum(recipients) FROM mailroster.send_counters WHERE username = 'bob@example.org'" "2|5" $R
# 0008: batches.  Admissions run in login order and see each other: bob
# (2 messages, 5 recipients an hour, full) is deferred, tom (2 messages an
# hour, none sent) gets 2 of his 3; ord is each message's place.
q -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'tom' FROM mailroster.domains WHERE name = 'example.org';
      INSERT INTO mailroster.send_limits (scope, mailbox_id, window_seconds, messages)
      SELECT 'mailbox', m.id, 3600, 2 FROM mailroster.mailboxes m WHERE m.local_part = 'tom'"
expect_eq   "admissions run without JIT compilation (migration 0009)" \
    "SELECT string_agg(proname || ':' || (array_position(proconfig, 'jit=off') IS NOT NULL)::text, ' ' ORDER BY proname)
       FROM pg_proc WHERE pronamespace = 'mailroster'::regnamespace AND proname IN ('send_admit', 'send_admit_many')" \
    "send_admit:true send_admit_many:true"
expect_eq   "reader: send_admit_many decides a batch in order, one row per message" \
    "SELECT string_agg(ord || ':' || verdict, ' ' ORDER BY ord) FROM mailroster.send_admit_many(
       '{tom@example.org,bob@example.org,tom@example.org,nobody@example.org,tom@example.org,x}', '{1,1,1,1,1,1}', NULL, 1000)" \
    "1:ok 2:defer 3:ok 4:unknown 5:defer 6:unknown" $R
expect_eq   "running totals: seq and cum_recipients count the account's rows" \
    "SELECT string_agg(seq || '/' || cum_recipients, ' ' ORDER BY window_start) FROM mailroster.send_counters WHERE username = 'bob@example.org'" \
    "1/3 2/5" $R
expect_eq   "send_usage from the running totals" \
    "SELECT string_agg(sent_messages || '|' || sent_recipients || '|' || (frees_at > now()), ' ') FROM mailroster.send_usage('bob@example.org')" \
    "2|5|true" $A
# a row written by hand gets its totals from the newest row; rows older than
# the longest window go at every 16th admission of the account (3 old rows
# by hand: seq 1-3, so the 14th admission, seq 17, prunes them)
q -c "DELETE FROM mailroster.send_counters; DELETE FROM mailroster.send_limits"
expect_eq   "a hand-written row gets running totals" \
    "INSERT INTO mailroster.send_counters (username, window_start, messages, recipients)
     SELECT 'tom@example.org', now() - interval '3 hours' + g * interval '1 s', 1, 2 FROM generate_series(1, 3) g;
     SELECT string_agg(seq || '/' || cum_recipients, ' ' ORDER BY window_start) FROM mailroster.send_counters" \
    "1/2 2/4 3/6" $A
q -c "INSERT INTO mailroster.send_limits (scope, mailbox_id, window_seconds, messages)
      SELECT 'mailbox', m.id, 3600, 100 FROM mailroster.mailboxes m WHERE m.local_part = 'tom'"
expect_eq   "13 admissions keep the 3 rows past the window, the 14th prunes them" \
    "SELECT count(*) FROM mailroster.send_admit_many(array_fill('tom@example.org'::text, '{13}'), array_fill(1, '{13}'), NULL) WHERE verdict = 'ok';
     SELECT count(*) FILTER (WHERE window_start < now() - interval '1 hour') FROM mailroster.send_counters;
     SELECT verdict FROM mailroster.send_admit('tom@example.org', 1);
     SELECT count(*) FILTER (WHERE window_start < now() - interval '1 hour') || ' ' || count(*) || ' ' || max(seq)
       FROM mailroster.send_counters" \
    "13
3
ok
0 14 17" $R
# a locked account is 'busy' after p_wait_ms and changes nothing; the
# others in the batch are decided
coproc LK { psql -X -q -At -h "$SOCK" -p "$PORT" -U postgres -d "$DB" 2>&1; }
# bash unsets LK_PID when the coprocess ends, which it does as soon as
# its input is closed: keep the PID for the wait
lk_pid=$LK_PID
echo "BEGIN; SELECT 'locked' FROM mailroster.mailboxes WHERE local_part = 'bob' FOR UPDATE;" >&"${LK[1]}"
read -r -t 20 line <&"${LK[0]}"
expect_eq   "a locked account is 'busy', the rest of the batch is decided" \
    "SELECT string_agg(ord || ':' || verdict, ' ' ORDER BY ord) FROM mailroster.send_admit_many(
       '{bob@example.org,tom@example.org}', '{1,1}', '{Q1,Q2}', 300);
     SELECT count(*) FROM mailroster.send_counters WHERE username = 'bob@example.org'" \
    "1:busy 2:ok
0" $R
expect_fail "send_admit on a locked account: SQLSTATE 55P03 after p_wait_ms" \
    "SELECT verdict FROM mailroster.send_admit('bob@example.org', 1, NULL, 300)" "lock timeout" $R
echo "COMMIT;" >&"${LK[1]}"
exec {LK[1]}>&-
wait "$lk_pid" 2>/dev/null
q -c "DELETE FROM mailroster.send_counters; DELETE FROM mailroster.send_limits;
      DELETE FROM mailroster.mailboxes WHERE local_part = 'tom'"
# 0006: two refusals within an hour suspend; the reader writes hits and the
# suspension only through send_admit
expect_fail "reader cannot write send_hits" \
    "INSERT INTO mailroster.send_hits (mailbox_id, at) SELECT id, now() FROM mailroster.mailboxes LIMIT 1" "permission denied" $R
q -c "UPDATE mailroster.settings SET suspend_after_hits = 2, suspend_hits_within = 3600;
      INSERT INTO mailroster.send_limits (scope, mailbox_id, window_seconds, messages)
      SELECT 'mailbox', m.id, 3600, 1 FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id
       WHERE m.local_part = 'bob' AND d.name = 'example.org'"
expect_eq   "reader: admitted, refused, then the 2nd refusal suspends" \
    "SELECT string_agg(v, ' ') FROM (SELECT (mailroster.send_admit('bob@example.org', 1)).verdict AS v FROM generate_series(1, 3)) x" \
    "ok defer suspended" $R
expect_eq   "the suspension is in the mailbox row and the change log" \
    "SELECT m.send_suspended_reason || '|' || (SELECT tbl || op FROM mailroster.change_log ORDER BY seq DESC LIMIT 1)
       FROM mailroster.mailboxes m WHERE m.local_part = 'bob' AND m.send_suspended_at IS NOT NULL" \
    "2 sending-limit refusals within 3600 s (the last: 1 messages per 3600 s)|mailboxesU"
expect_eq   "a suspended account is answered 'suspended', nothing counted" \
    "SELECT verdict || ' ' || suspended_now || ' ' || (SELECT count(*) FROM mailroster.send_counters) FROM mailroster.send_admit('bob@example.org', 1)" \
    "suspended false 1" $R
expect_fail "a suspension needs its reason" \
    "UPDATE mailroster.mailboxes SET send_suspended_reason = NULL WHERE local_part = 'bob'" mailboxes_send_suspended_check $A
expect_eq   "lifting it forgets the hits" \
    "UPDATE mailroster.mailboxes SET send_suspended_at = NULL, send_suspended_reason = NULL WHERE local_part = 'bob';
     SELECT count(*) FROM mailroster.send_hits" "0" $A
q -c "DELETE FROM mailroster.send_counters; DELETE FROM mailroster.send_limits;
      UPDATE mailroster.settings SET suspend_after_hits = 0"
expect_ok   "reader can LISTEN" "LISTEN mailroster_changes" $R
expect_fail "reader cannot create tables in the schema" "CREATE TABLE mailroster.x (i int)" "permission denied" $R

D=t_dict
expect_ok   "dovecot_dict can upsert quota_usage" \
    "INSERT INTO mailroster.quota_usage (username, bytes, messages) VALUES ('bob@example.org', 100, 1)
       ON CONFLICT (username) DO UPDATE SET bytes = quota_usage.bytes + excluded.bytes, messages = quota_usage.messages + excluded.messages;
     INSERT INTO mailroster.quota_usage (username, bytes, messages) VALUES ('bob@example.org', 100, 1)
       ON CONFLICT (username) DO UPDATE SET bytes = quota_usage.bytes + excluded.bytes, messages = quota_usage.messages + excluded.messages" $D
expect_eq   "quota_usage upsert result" "SELECT bytes || '/' || messages FROM mailroster.quota_usage WHERE username = 'bob@example.org'" "200/2" $D
expect_ok   "dovecot_dict can write last_login as Dovecot 2.3 does (unix seconds)" \
    "INSERT INTO mailroster.last_login (at_unix, username) VALUES (1795594812, 'bob@example.org')
       ON CONFLICT (username) DO UPDATE SET at_unix = 1795594812; DELETE FROM mailroster.last_login WHERE username = 'nobody'" $D
expect_eq   "last_login.at is computed from at_unix" \
    "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM mailroster.last_login WHERE username = 'bob@example.org'" \
    "2026-11-25 08:20:12" $D
expect_fail "dovecot_dict cannot SELECT mailboxes" "SELECT * FROM mailroster.mailboxes" "permission denied" $D
expect_fail "dovecot_dict cannot SELECT change_log" "SELECT * FROM mailroster.change_log" "permission denied" $D
expect_fail "dovecot_dict cannot write send_counters" \
    "INSERT INTO mailroster.send_counters (username, window_start) VALUES ('x', now())" "permission denied" $D

expect_fail "admin cannot INSERT into change_log directly" \
    "INSERT INTO mailroster.change_log (tbl, op, row_id) VALUES ('domains', 'I', 1)" "permission denied" $A
expect_fail "admin cannot take change_log seq values" \
    "SELECT nextval('mailroster.change_log_seq_seq')" "permission denied" $A
expect_fail "admin cannot UPDATE audit_log" "UPDATE mailroster.audit_log SET actor = 'x'" "permission denied" $A
expect_fail "admin cannot DELETE audit_log" "DELETE FROM mailroster.audit_log" "permission denied" $A
expect_ok   "admin can SELECT audit_log" "SELECT count(*) FROM mailroster.audit_log" $A
expect_fail "admin cannot create tables in the schema (no DDL)" "CREATE TABLE mailroster.x (i int)" "permission denied" $A
expect_fail "admin cannot ALTER directory tables (no DDL)" "ALTER TABLE mailroster.domains ADD COLUMN x int" "must be owner" $A
expect_fail "admin cannot TRUNCATE" "TRUNCATE mailroster.domains" "permission denied" $A
expect_fail "admin cannot write quota_usage" "INSERT INTO mailroster.quota_usage (username) VALUES ('y')" "permission denied" $A

expect_fail "audit_log UPDATE refused even for the owner" "UPDATE mailroster.audit_log SET actor = 'x'" "append-only" postgres
expect_fail "audit_log DELETE refused even for the owner" "DELETE FROM mailroster.audit_log" "append-only" postgres
expect_fail "audit_log TRUNCATE refused even for the owner" "TRUNCATE mailroster.audit_log" "append-only" postgres

expect_fail "PUBLIC has no access to the schema" "SELECT * FROM mailroster.domains" "permission denied for schema" t_nobody
expect_fail "trigger functions cannot be called directly (no EXECUTE)" \
    "SELECT mailroster.tg_log_change()" "permission denied for function" $A

# ---------------------------------------------------------------------------
# Migration 0012: the change log per statement, the set-based import
# ---------------------------------------------------------------------------

# A multi-row statement logs one row per changed row, in the order it
# changed them (the ids come from RETURNING, not from the log).
m=$(cl_mark)
ids=$(q_as $A "INSERT INTO mailroster.domains (name) VALUES ('st3.example'), ('st1.example'), ('st2.example') RETURNING id" | tr '\n' ' ')
want=$(for i in $ids; do printf 'domains:I:%s ' "$i"; done)
expect_eq "multi-row INSERT: one change_log row per row, in the statement's order" \
    "SELECT string_agg(tbl || ':' || op || ':' || row_id, ' ' ORDER BY seq) || ' ' FROM mailroster.change_log WHERE seq > $m" "$want"
m=$(cl_mark)
q_as $A "UPDATE mailroster.domains SET quota_bytes = 7 WHERE name LIKE 'st_.example'" >/dev/null
expect_log "multi-row UPDATE: one change_log row per row" "$m" \
    "$(for i in $(echo $ids | tr ' ' '\n' | sort -n); do printf 'domains:U:%s ' "$i"; done | sed 's/ $//')"
m=$(cl_mark)
q_as $A "UPDATE mailroster.domains SET quota_bytes = 8 WHERE false" >/dev/null
expect_log "an UPDATE of no row logs nothing" "$m" ""
m=$(cl_mark)
q_as $A "DELETE FROM mailroster.domains WHERE name LIKE 'st_.example'" >/dev/null
expect_log "multi-row DELETE: one change_log row per row" "$m" \
    "$(for i in $(echo $ids | tr ' ' '\n' | sort -n); do printf 'domains:D:%s ' "$i"; done | sed 's/ $//')"
expect_eq "seqs rise with the statements (I before U before D of the same rows)" \
    "SELECT bool_and(ops = 'IUD') FROM (SELECT string_agg(op, '' ORDER BY seq) AS ops FROM mailroster.change_log
      WHERE tbl = 'domains' AND row_id IN ($(echo $ids | tr ' ' ','))  GROUP BY row_id) x" t

psql -X -h "$SOCK" -p "$PORT" -U $A -d "$DB" >"$TMP/notify3.out" 2>&1 <<'EOF' || true
LISTEN mailroster_changes;
BEGIN;
INSERT INTO mailroster.domains (name) VALUES ('nt1.example'), ('nt2.example'), ('nt3.example');
UPDATE mailroster.domains SET quota_bytes = 1 WHERE name LIKE 'nt_.example';
DELETE FROM mailroster.domains WHERE name LIKE 'nt_.example';
COMMIT;
SELECT 'after-first';
BEGIN;
UPDATE mailroster.domains SET quota_bytes = 1 WHERE false;
COMMIT;
SELECT 'after-second';
EOF
expect_eq_text() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; { echo "want: $2"; echo "got:  $3"; } | diag; fi; }
expect_eq_text "one NOTIFY for a transaction of several multi-row statements, none for one that changed nothing" \
    "1 notification, 0 after the first transaction" \
    "$(grep -c 'Asynchronous notification "mailroster_changes"' "$TMP/notify3.out" || true) notification, $(sed -n '/after-first/,$p' "$TMP/notify3.out" | grep -c 'Asynchronous notification' || true) after the first transaction"

# The set-based import against the row-by-row import of migration 0010:
# the same files into a database at 0010 (mr_imp_old) and one with the
# whole schema (mr_imp_new) give the same answers, rows, ids and change
# log entries.  The expectation is what 0010's code does.
psql_pg -d postgres -c "CREATE DATABASE mr_imp_old" -c "CREATE DATABASE mr_imp_new" >/dev/null
for f in "$SQL"/migrations/*.sql; do
    n=$(basename "$f" | cut -c1-4)
    [ "$((10#$n))" -le 10 ] && psql_pg -d mr_imp_old -f "$f" >/dev/null 2>&1
done
psql_pg -d mr_imp_new -f "$SQL/schema.sql" >/dev/null 2>&1
newest=$(basename "$(ls "$SQL"/migrations/[0-9]*.sql | tail -n 1)" | cut -c1-4)
expect_eq_text "comparison databases at 10 and the newest migration" "10 $((10#$newest))" \
    "$(psql_pg -At -d mr_imp_old -c "SELECT max(version) FROM mailroster.schema_version") $(psql_pg -At -d mr_imp_new -c "SELECT max(version) FROM mailroster.schema_version")"
python3 - "$TMP" <<'PY'
import json, sys, random
tmp = sys.argv[1]
rnd = random.Random(12)
c64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
def s(n): return ''.join(rnd.choice(c64) for _ in range(n))
def sha(): return '{SHA512-CRYPT}$6$' + s(rnd.randint(1, 16)) + '$' + s(86)
def blf(): return '{BLF-CRYPT}$2y$%02d$' % rnd.randint(4, 12) + s(53)
def rounds(): return '{CRYPT}$6$rounds=5000$' + s(8) + '$' + s(86)
def line(o): return json.dumps(o, separators=(',', ':'))
def dom(name, q=0): return {"kind": "domain", "name": name, "enabled": True, "disabled_reason": None, "quota_bytes": q,
                            "quota_messages": 0, "send_limit_messages": 0, "send_limit_recipients": 0, "send_limit_window": 3600}
def mbox(a, pw, **kw):
    o = {"kind": "mailbox", "address": a, "password": pw, "enabled": True, "disabled_reason": None, "may_send": True,
         "may_receive": True, "services": ["imap", "pop3", "submission", "lmtp", "sieve"], "quota_bytes": None,
         "quota_messages": None, "send_limit_messages": None, "send_limit_recipients": None, "home": None, "mail": None,
         "uid": None, "gid": None, "maildir": None}
    o.update(kw); return o
def write(name, lines):
    open(tmp + '/' + name, 'w').write('\n'.join(lines) + '\n')
r1 = [line(dom('cmp-a.example')), line(dom('CMP-B.example', 5))]
pws = [sha, blf, rounds, lambda: None]
for i in range(120):
    kw = {}
    if i % 7 == 0: kw['maildir'] = 'cmp-a.example/kept%d/' % i
    if i % 11 == 0: kw['home'] = '/var/vmail/h%d' % i
    if i % 13 == 0: kw['quota_bytes'] = 1000 * i
    if i % 17 == 0: kw.update(display_name='User %d' % i, metadata={'k': i}, forward_to=['Fwd%d@elsewhere.example' % i], keep_copy=True)
    r1.append(line(mbox(('u%03d@cmp-a.example' if i % 5 else 'U%03d@CMP-A.example') % i, pws[i % 4](), **kw)))
r1.append('')
r1.append(line({"kind": "alias", "source": "info@cmp-a.example", "destinations": ["U001@cmp-a.example", "x@ext.example"], "enabled": True}))
r1.append(line({"kind": "alias", "source": "@cmp-b.example", "destinations": ["@cmp-a.example"], "enabled": True, "may_send": False}))
r1.append(line({"kind": "sender", "address": "boss@cmp-a.example", "login": "u001@cmp-a.example"}))
r1.append(line({"kind": "sender", "address": "@cmp-b.example", "login": "u002@cmp-a.example"}))
r1.append(line({"kind": "master", "name": "gw", "password": sha(), "enabled": True, "domains": ["CMP-A.example"]}))
r1.append(line({"kind": "master", "name": "gw2", "password": blf(), "enabled": False, "domains": None}))
r1.append(line({"kind": "transport", "pattern": ".CMP-B.example", "transport": "relay:[10.0.0.5]:25", "enabled": True}))
write('imp1.jsonl', r1)
# round 2: changes, unchanged lines, new lines between them, 0010's fields alone
r2 = [line(dom('cmp-b.example', 6)), line(dom('cmp-c.example')), line(dom('cmp-a.example'))]
for i in range(0, 140, 3):
    a = 'u%03d@cmp-a.example' % i
    kw = {}
    if i % 2: kw['quota_messages'] = i
    if i % 9 == 0: kw['display_name'] = 'Now %d' % i
    if i % 4 == 0: kw['keep_copy'] = False
    r2.append(line(mbox(a, sha() if i % 6 == 0 else None, **kw)))
r2.append(line(mbox('new@cmp-c.example', blf())))
r2.append(line({"kind": "alias", "source": "info@cmp-a.example", "destinations": ["u001@cmp-a.example", "x@ext.example"], "enabled": True, "may_send": False}))
r2.append(line({"kind": "alias", "source": "sales@cmp-c.example", "destinations": ["new@cmp-c.example"], "enabled": True}))
r2.append(line({"kind": "sender", "address": "boss@cmp-a.example", "login": "u001@cmp-a.example"}))
r2.append(line({"kind": "sender", "address": "any@cmp-c.example", "login": "new@cmp-c.example"}))
r2.append(line({"kind": "master", "name": "gw", "password": sha(), "enabled": True, "domains": []}))
r2.append(line({"kind": "transport", "pattern": ".cmp-b.example", "transport": "relay:[10.0.0.6]:25", "enabled": True}))
r2.append(line({"kind": "transport", "pattern": "cmp-c.example", "transport": "lmtp:unix:private/app", "enabled": False}))
write('imp2.jsonl', r2)
# faults: a bad value late in a file; a mailbox over an alias (a trigger refuses it)
bad = r2[:]; bad.insert(20, line(mbox('z@cmp-a.example', sha(), quota_bytes=-1)))
write('bad1.jsonl', bad)
write('bad2.jsonl', r2[:5] + [line(mbox('info@cmp-a.example', None))])
# round 3 (0015): valid lines in the shapes the staged import's quick test
# does not decide (other key orders, spaces, escapes, ':' in a value,
# numbers, a key of 0010), beside plain ones
r3 = [line(dom('cmp-d.example'))]
for i in range(12):
    r3.append(line(mbox('p%02d@cmp-d.example' % i, sha())))
m = mbox('q1@cmp-d.example', sha()); r3.append(json.dumps(dict(reversed(list(m.items())))))
r3.append(json.dumps(mbox('q2@cmp-d.example', blf())))
r3.append(line(mbox('q3@cmp-d.example', None)).replace('"q3@', '"\\u0071\\u0033@').replace('"kind"', '"\\u006bind"'))
r3.append(line(mbox('q4@cmp-d.example', None, display_name='Q: four')))
r3.append(line(mbox('q5@cmp-d.example', None, quota_bytes=5000, quota_messages=-0, uid=1001, gid=1001, home='/var/vmail/q5')))
r3.append(line(mbox('q6@cmp-d.example', None, maildir='cmp-d.example/q6:x/')))
r3.append('  ' + line(mbox('q7@cmp-d.example', None)) + ' \r')
r3.append(' \t')
r3.append(line({"kind": "alias", "source": "a1@cmp-d.example", "destinations": ["P01@cmp-d.example"], "enabled": True}))
r3.append(json.dumps({"kind": "alias", "source": "a2@cmp-d.example", "destinations": [], "enabled": True}).replace('[]', '["p02@cmp-d.example", "x@y.example"]'))
r3.append(line({"kind": "alias", "source": "a3@cmp-d.example", "destinations": ["p03@cmp-d.example"], "enabled": True, "may_send": True}))
r3.append(json.dumps({"kind": "alias", "source": "a4@cmp-d.example", "destinations": ["x@y.example"], "enabled": False}))
r3.append(line(mbox('p00@cmp-d.example', sha())))      # (was created above: a second line of one object)
write('imp3.jsonl', r3[:-1])
# faults the quick test must not let through: each against 0010's answer
def badfile(n, text):
    write('bad%d.jsonl' % n, r3[:6] + [text])
badfile(3, line(mbox('z3@cmp-d.example', None)).replace('"enabled":true', '"enabled":true,"enabled":false'))
badfile(4, line(mbox('z4@cmp-d.example', None)).replace('"quota_bytes":null', '"quota_bytes":1e3'))
badfile(5, line(mbox('z5@cmp-d.example', None)).replace('"enabled":true', '"enabled":"true"'))
badfile(6, line(mbox('z6@cmp-d.example', None, services=[None])))
badfile(7, line(mbox('z7@cmp-d.example', None, services=[["imap"]])))
badfile(8, line(mbox('z8@cmp-d.example', None)).replace('"uid":null', '"uid":null,"colour":"red"'))
badfile(9, line(mbox('z9@cmp-d.example', None)).replace(',"uid":null', ''))
badfile(10, line({"kind": "alias", "source": "z10@cmp-d.example", "destinations": ["p01@cmp-d.example", 5], "enabled": True}))
badfile(11, line(mbox('z11@cmp-d.example', None)).replace('"may_send":true', '"may_send":1'))
badfile(12, line(mbox('z12@cmp-d.example', None)).replace('"address"', '"address":"x@cmp-d.example","address"'))
badfile(13, r3[-1])
write('bad14.jsonl', r3[:6] + [line(mbox('z14@cmp-d.example', None)), line(mbox('z14@cmp-d.example', sha()))])
write('bad15.jsonl', r3[:6] + [line({"kind": "alias", "source": "p05@cmp-d.example", "destinations": ["x@y.example"], "enabled": True})])
write('bad16.jsonl', r3[:6] + [line(mbox('z16@cmp-d.example', None)), line({"kind": "alias", "source": "z16@cmp-d.example", "destinations": ["x@y.example"], "enabled": True})])
write('bad17.jsonl', r3[:6] + [line(mbox('z17@cmp-d.example', 'not a hash'))])
write('bad18.jsonl', r3[:6] + [line(mbox('z18@nowhere.example', None))])
PY
# imp_run DB FILE DRY: the answer rows, then whether the row-by-row path ran
imp_run() {
    psql_pg -At -d "$1" 2>&1 <<EOF
\set lines \`cat $2\`
SET track_functions = 'pl';
BEGIN;
SELECT line || ' ' || action || ' ' || kind || ' ' || key FROM mailroster.import_jsonl(:'lines', $3);
SELECT 'rowwise calls: ' || coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions WHERE funcname = 'import_jsonl_rowwise';
COMMIT;
EOF
}
imp_state() {
    psql_pg -At -d "$1" <<'EOF'
SELECT * FROM mailroster.export_jsonl();
SELECT 'd ' || id || ' ' || name || ' ' || (updated_at > created_at) FROM mailroster.domains ORDER BY id;
SELECT 'm ' || id || ' ' || domain_id || ' ' || local_part || ' ' || maildir || ' ' || path_override || ' ' || (updated_at > created_at) FROM mailroster.mailboxes ORDER BY id;
SELECT 'a ' || id || ' ' || domain_id || ' ' || local_part || ' ' || (updated_at > created_at) FROM mailroster.aliases ORDER BY id;
SELECT 's ' || id || ' ' || mailbox_id || ' ' || address FROM mailroster.sender_addresses ORDER BY id;
SELECT 'u ' || id || ' ' || name || ' ' || (updated_at > created_at) FROM mailroster.master_users ORDER BY id;
SELECT 't ' || id || ' ' || pattern || ' ' || (updated_at > created_at) FROM mailroster.transports ORDER BY id;
SELECT 'c ' || domain_id || ' ' || local_part || ' ' || kind FROM mailroster.claimed_addresses ORDER BY 1;
SELECT 'log ' || count(*) || ' ' || max(seq) FROM mailroster.change_log;
SELECT 'log ' || tbl || ' ' || row_id || ' ' || string_agg(op, '' ORDER BY seq) FROM mailroster.change_log GROUP BY tbl, row_id ORDER BY tbl, row_id;
EOF
}
for round in 1 2 3; do
    f=$TMP/imp$round.jsonl
    for dry in true false; do
        imp_run mr_imp_old "$f" $dry >"$TMP/old.out" || true
        imp_run mr_imp_new "$f" $dry >"$TMP/new.out" || true
        if [ "$(grep -v '^rowwise' "$TMP/old.out")" = "$(grep -v '^rowwise' "$TMP/new.out")" ] \
           && [ "$(grep -c ' created \| updated \| unchanged ' "$TMP/old.out")" -gt 10 ]; then
            ok "import round $round (dry run $dry): the same answer line by line as the row-by-row import"
        else
            not_ok "import round $round (dry run $dry): the same answer as the row-by-row import"
            diff "$TMP/old.out" "$TMP/new.out" | head -20 | diag
        fi
        expect_eq_text "... taken by the set-based path" "rowwise calls: 0" "$(grep '^rowwise' "$TMP/new.out")"
        [ "$round" = 2 ] && cp "$TMP/old.out" "$TMP/round2.out"
        imp_state mr_imp_old >"$TMP/old.state"; imp_state mr_imp_new >"$TMP/new.state"
        if diff "$TMP/old.state" "$TMP/new.state" >"$TMP/state.diff"; then
            ok "... the same rows, ids, claims and change log (entries per row in seq order) afterwards"
        else
            not_ok "... the same rows, ids, claims and change log afterwards"; head -20 "$TMP/state.diff" | diag
        fi
    done
done
if grep -q ' updated mailbox ' "$TMP/round2.out" && grep -q ' unchanged ' "$TMP/round2.out" \
   && grep -q ' created mailbox ' "$TMP/round2.out"; then
    ok "round 2 has created, updated and unchanged lines"
else
    not_ok "round 2 has created, updated and unchanged lines"
fi
imp_state mr_imp_old >"$TMP/old.pre"; imp_state mr_imp_new >"$TMP/new.pre"
for b in bad1 bad2 bad3 bad4 bad5 bad6 bad7 bad8 bad9 bad10 bad11 bad12 bad13 bad14 bad15 bad16 bad17 bad18; do
    imp_run mr_imp_old "$TMP/$b.jsonl" false >"$TMP/old.out" || true
    imp_run mr_imp_new "$TMP/$b.jsonl" false >"$TMP/new.out" || true
    if grep -q '^ERROR:  line [0-9]*: ' "$TMP/old.out" && [ "$(grep ERROR "$TMP/old.out")" = "$(grep ERROR "$TMP/new.out")" ]; then
        ok "$b: the same error, naming the same line ($(grep -o 'line [0-9]*' "$TMP/old.out" | head -1))"
    else
        not_ok "$b: the same error as the row-by-row import"; cat "$TMP/old.out" "$TMP/new.out" | diag
    fi
done
imp_state mr_imp_old >"$TMP/old.state"; imp_state mr_imp_new >"$TMP/new.state"
if cmp -s "$TMP/old.pre" "$TMP/old.state" && cmp -s "$TMP/new.pre" "$TMP/new.state"; then
    ok "... and neither import changed anything"
else
    not_ok "... and neither import changed anything"
fi

# ---------------------------------------------------------------------------
# Migration 0013: the bulk import's speed (hash check, claims per statement)
# ---------------------------------------------------------------------------

# The row-by-row import in this schema (claims per statement) against the
# set-based one: the same files, the same rows, ids, claims and change log.
psql_pg -d postgres -c "CREATE DATABASE mr_imp_row" >/dev/null
psql_pg -d mr_imp_row -f "$SQL/schema.sql" >/dev/null 2>&1
for round in 1 2 3; do
    for dry in true false; do    # (as above: a dry run uses ids too)
        psql_pg -At -d mr_imp_row >"$TMP/row.out" 2>&1 <<EOF
\set lines \`cat $TMP/imp$round.jsonl\`
SELECT line || ' ' || action || ' ' || kind || ' ' || key FROM mailroster.import_jsonl_rowwise(:'lines', $dry);
EOF
    done
done
imp_state mr_imp_row >"$TMP/row.state"; imp_state mr_imp_new >"$TMP/new.state"
if [ "$(grep -c '^c ' "$TMP/row.state")" -gt 100 ] && diff "$TMP/row.state" "$TMP/new.state" >"$TMP/state.diff"; then
    ok "0013: rowwise and set-based imports of the mixed files leave the same rows, ids, claims and change log"
else
    not_ok "0013: rowwise and set-based imports of the mixed files leave the same rows, ids, claims and change log"
    head -20 "$TMP/state.diff" | diag
fi

# Claims per statement: after multi-row INSERT, rename and DELETE, the
# claims are exactly the mailboxes' and aliases' addresses.
claims_exact="SELECT (SELECT string_agg(x, ',' ORDER BY x) FROM (
        SELECT domain_id || ' ' || local_part || ' ' || kind AS x FROM mailroster.claimed_addresses) c)
    IS NOT DISTINCT FROM (SELECT string_agg(x, ',' ORDER BY x) FROM (
        SELECT domain_id || ' ' || local_part || ' mailbox' AS x FROM mailroster.mailboxes
        UNION ALL SELECT domain_id || ' ' || local_part || ' alias' FROM mailroster.aliases) u)"
q_as $A "INSERT INTO mailroster.mailboxes (domain_id, local_part)
         SELECT d.id, 'bulk' || g FROM mailroster.domains d, generate_series(1, 5) g WHERE d.name = 'example.org';
         INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
         SELECT d.id, 'bulka' || g, '{bob@example.org}' FROM mailroster.domains d, generate_series(1, 5) g WHERE d.name = 'example.org'" >/dev/null
expect_eq "0013: multi-row INSERTs claim each address" \
    "SELECT count(*) FROM mailroster.claimed_addresses WHERE local_part ~ '^bulka?[1-5]$'" 10
q_as $A "UPDATE mailroster.mailboxes SET local_part = local_part || 'r' WHERE local_part ~ '^bulk[1-5]$';
         UPDATE mailroster.aliases SET local_part = local_part || 'r', enabled = false WHERE local_part ~ '^bulka[1-5]$'" >/dev/null
expect_eq "... a multi-row rename moves every claim" \
    "SELECT string_agg(local_part || ':' || kind, ',' ORDER BY local_part) FROM mailroster.claimed_addresses WHERE local_part ~ '^bulk'" \
    "bulk1r:mailbox,bulk2r:mailbox,bulk3r:mailbox,bulk4r:mailbox,bulk5r:mailbox,bulka1r:alias,bulka2r:alias,bulka3r:alias,bulka4r:alias,bulka5r:alias"
q_as $A "UPDATE mailroster.mailboxes SET enabled = false WHERE local_part ~ '^bulk[1-5]r$'" >/dev/null
expect_eq "... an UPDATE that keeps the addresses keeps the claims" \
    "SELECT count(*) FROM mailroster.claimed_addresses WHERE local_part ~ '^bulka?[1-5]r$'" 10
expect_eq "... and the claims are exactly the mailboxes and aliases" "$claims_exact" t
q_as $A "DELETE FROM mailroster.mailboxes WHERE local_part ~ '^bulk[1-5]r$'; DELETE FROM mailroster.aliases WHERE local_part ~ '^bulka[1-5]r$'" >/dev/null
expect_eq "... a multi-row DELETE frees every address" \
    "SELECT count(*) FROM mailroster.claimed_addresses WHERE local_part ~ '^bulk'" 0
expect_eq "... still exactly the mailboxes and aliases" "$claims_exact" t
# The claim itself refuses (the alias row check is switched off, so the
# rows reach the claim trigger), naming the address and the constraint;
# the whole statement is undone.
expect_fail "... a multi-row INSERT with one address claimed by the other kind is refused by the claim" \
    "BEGIN; ALTER TABLE mailroster.aliases DISABLE TRIGGER aliases_20_check;
     INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
     SELECT d.id, x, '{bob@example.org}' FROM mailroster.domains d, unnest('{zz1,bob,zz2}'::text[]) x WHERE d.name = 'example.org'; COMMIT" \
    'address bob@example.org is already a mailbox; it cannot also be an alias'
expect_eq "... and nothing of it stays" \
    "SELECT count(*) FROM mailroster.aliases WHERE local_part IN ('zz1', 'zz2')" 0

# password_hash_ok (0013: no translate()) answers as the full check does,
# for hashes of the forms it has a short cut for, and near misses.
expect_eq "0013: password_hash_ok agrees with password_hash_problem on 3,000 generated hashes" \
    "WITH g AS (SELECT i, (SELECT string_agg(substr('./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\$!é ',
                                                   (1 + abs(hashint4(i * 1000 + j)::bigint) % CASE WHEN i % 7 = 0 THEN 68 ELSE 64 END)::int, 1), '')
                           FROM generate_series(1, 120) j) AS r
                  FROM generate_series(1, 3000) i),
          h AS (SELECT CASE i % 6
                       WHEN 0 THEN '{SHA512-CRYPT}\$6\$' || left(r, 1 + i % 18) || '\$' || substr(r, 20, CASE WHEN i % 5 = 0 THEN 85 ELSE 86 END)
                       WHEN 1 THEN '{CRYPT}\$6\$' || left(r, 1 + i % 17) || '\$' || substr(r, 20, 86)
                       WHEN 2 THEN '{BLF-CRYPT}\$2' || substr('abyx', 1 + i % 4, 1) || '\$' || lpad((i % 35)::text, 2, '0') || '\$' || substr(r, 1, CASE WHEN i % 5 = 0 THEN 54 ELSE 53 END)
                       WHEN 3 THEN '{CRYPT}\$2b\$' || lpad((i % 33)::text, 2, '0') || '\$' || substr(r, 1, 53)
                       WHEN 4 THEN '{SHA512-CRYPT}\$6\$' || left(r, 8) || '\$' || substr(r, 20, 40) || '\$' || substr(r, 60, 45)
                       ELSE '{SHA512-CRYPT}\$6\$rounds=5000\$' || left(r, 8) || '\$' || substr(r, 20, 86) END AS p
                  FROM g)
     SELECT count(*) FILTER (WHERE mailroster.password_hash_ok(p) IS DISTINCT FROM (mailroster.password_hash_problem(p) IS NULL))
            || ' ' || (count(*) FILTER (WHERE mailroster.password_hash_ok(p)) BETWEEN 300 AND 2700)
       FROM h" "0 true"

# ---------------------------------------------------------------------------
# Migration 0015: the staged import and the row checks it skips
# ---------------------------------------------------------------------------

expect_eq "0015, 0016: import_jsonl is SECURITY DEFINER with a pinned search_path" \
    "SELECT prosecdef || ' ' || array_to_string(proconfig, ',') FROM pg_proc WHERE oid = 'mailroster.import_jsonl(text, boolean)'::regprocedure" \
    "true search_path=mailroster, pg_temp"
# An address of 64 + 1 + 191 octets: only the row checks refuse it.
LONGD=$(printf 'l%.0s' {1..60}).$(printf 'm%.0s' {1..60}).$(printf 'n%.0s' {1..60}).example
LONGL=$(printf 'x%.0s' {1..64})
q -c "INSERT INTO mailroster.domains (name) VALUES ('$LONGD')" >/dev/null
long_mb="INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, '$LONGL' FROM mailroster.domains WHERE name = '$LONGD'"
long_al="INSERT INTO mailroster.aliases (domain_id, local_part, destinations) SELECT id, '$LONGL', '{bob@example.org}' FROM mailroster.domains WHERE name = '$LONGD'"
expect_fail "0015: the admin role setting mailroster.bulk_import still gets the mailbox row check" \
    "SET mailroster.bulk_import = 'on'; $long_mb" 'longer than 254 octets' $A
expect_fail "... and the alias row check" \
    "SET mailroster.bulk_import = 'on'; $long_al" 'longer than 254 octets' $A
expect_fail "... and the password trigger's message for a hash the CHECK refuses" \
    "SET mailroster.bulk_import = 'on'; $(mb "'bypass0'" password "'{SHA512-CRYPT}short'")" 'password refused \(mailboxes_password_check\)' $A
expect_eq "... which still makes the maildir of a new mailbox" \
    "SET mailroster.bulk_import = 'on'; $(mb "'bypass1'") RETURNING maildir = 'example.org/bypass1.' || id || '/'" t $A
expect_fail "... and an UPDATE has no way past the row check, not even the schema owner's" \
    "SET mailroster.bulk_import = 'on'; UPDATE mailroster.mailboxes SET local_part = '$LONGL',
        domain_id = (SELECT id FROM mailroster.domains WHERE name = '$LONGD') WHERE local_part = 'bypass1'" \
    'longer than 254 octets'
expect_fail "the schema owner with the setting skips the INSERT check (what the import does): no maildir is made" \
    "BEGIN; SET LOCAL mailroster.bulk_import = 'on'; $(mb "'bypass2'"); ROLLBACK" 'null value in column "maildir"'
expect_ok "... and without it the check runs" "BEGIN; $(mb "'bypass2'"); ROLLBACK"
expect_fail "... and a bad hash is left to the CHECK (no trigger message)" \
    "BEGIN; SET LOCAL mailroster.bulk_import = 'on'; $(mb "'bypass3'" 'password, maildir' "'{SHA512-CRYPT}short', 'x/'"); ROLLBACK" \
    'violates check constraint "mailboxes_password_check"' 
# A file of mailboxes from the admin role: the staged path, the maildirs
# the row check would have made, the setting reset; then one from the
# superuser, who may count the calls: no row-by-row import, no row check.
python3 - "$TMP" <<'PY'
import json, sys
for f, n in (('bulk1', 'bulk'), ('bulk2', 'bulkb')):
    open(sys.argv[1] + '/' + f + '.jsonl', 'w').write(''.join(json.dumps({"kind": "mailbox", "address": "%s%02d@example.org" % (n, i), "password": None, "enabled": True, "disabled_reason": None, "may_send": True, "may_receive": True, "services": ["imap"], "quota_bytes": None, "quota_messages": None, "send_limit_messages": None, "send_limit_recipients": None, "home": None, "mail": None, "uid": None, "gid": None, "maildir": None}, separators=(',', ':')) + '\n' for i in range(20)))
PY
psql -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U $A -d "$DB" >"$TMP/bulk.out" 2>&1 <<EOF || true
\set lines \`cat $TMP/bulk1.jsonl\`
BEGIN;
SELECT count(*) FILTER (WHERE action = 'created') FROM mailroster.import_jsonl(:'lines', false);
SELECT coalesce(current_setting('mailroster.bulk_import', true), '') = '';
COMMIT;
EOF
expect_eq_text "0015: the admin role imports 20 mailboxes, the setting reset after" "20|t" "$(tr '\n' '|' <"$TMP/bulk.out" | sed 's/|$//')"
expect_eq "... with the maildirs the row check makes" \
    "SELECT count(*) FILTER (WHERE maildir = 'example.org/' || local_part || '.' || id || '/') FROM mailroster.mailboxes WHERE local_part LIKE 'bulk__'" 20
psql -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d "$DB" >"$TMP/bulk.out" 2>&1 <<EOF || true
\set lines \`cat $TMP/bulk2.jsonl\`
SET track_functions = 'pl';
BEGIN;
SELECT count(*) FILTER (WHERE action = 'created') FROM mailroster.import_jsonl(:'lines', false);
SELECT 'calls ' || coalesce(sum(calls) FILTER (WHERE funcname = 'import_jsonl_rowwise'), 0)
       || ' ' || coalesce(sum(calls) FILTER (WHERE funcname = 'tg_mailbox_check'), 0) FROM pg_stat_xact_user_functions;
COMMIT;
EOF
expect_eq_text "... on the staged path, without a call of the row check" "20|calls 0 0" "$(tr '\n' '|' <"$TMP/bulk.out" | sed 's/|$//')"

# ---------------------------------------------------------------------------
# Migration 0016: the lines as rows (COPY into import_input_open's table)
# ---------------------------------------------------------------------------

expect_eq "0016: import_jsonl_input is SECURITY DEFINER, search_path pinned, JIT off" \
    "SELECT prosecdef || ' ' || array_to_string(proconfig, ',') FROM pg_proc WHERE oid = 'mailroster.import_jsonl_input(boolean)'::regprocedure" \
    "true search_path=mailroster, pg_temp,plan_cache_mode=force_generic_plan,work_mem=64MB,jit=off"
# the claims of the import's own rows: a plain INSERT (a conflict fails the
# index and the row-by-row import names it); everybody else's name it
claim_alias="INSERT INTO mailroster.aliases (domain_id, local_part, destinations) SELECT domain_id, local_part, '{x@y.example}' FROM mailroster.mailboxes WHERE local_part LIKE 'bulk__' ORDER BY id LIMIT 1"
expect_fail "0016: the schema owner with mailroster.bulk_import on: the claim is a plain INSERT" \
    "BEGIN; SET LOCAL mailroster.bulk_import = 'on'; $claim_alias; COMMIT" 'claimed_addresses_pkey'
expect_fail "... without it the claim trigger names the conflict" \
    "$claim_alias" 'is already a mailbox; it cannot also be an alias'
expect_eq "... and the two claim triggers of an INSERT exclude each other" \
    "SELECT count(*) FROM pg_trigger WHERE tgname IN ('mailboxes_80_claim_i', 'mailboxes_80_claim_ib', 'aliases_80_claim_i', 'aliases_80_claim_ib') AND pg_get_triggerdef(oid) LIKE '%bulk_import%has_table_privilege%'" 4
expect_eq "0016: import_input_open is SECURITY DEFINER with a pinned search_path" \
    "SELECT prosecdef || ' ' || array_to_string(proconfig, ',') FROM pg_proc WHERE oid = 'mailroster.import_input_open()'::regprocedure" \
    "true search_path=mailroster, pg_temp"
expect_fail "0016: the reader role cannot open an import" "SELECT mailroster.import_input_open()" \
    'permission denied for function import_input_open' t_reader
expect_fail "0016: import_jsonl_input without its table names the call to make" \
    "SELECT * FROM mailroster.import_jsonl_input(true)" 'no input \(call mailroster.import_input_open\(\)' t_admin
expect_fail "0016: lines not numbered 1 to N are refused" \
    "SELECT mailroster.import_input_open(); INSERT INTO pg_temp.mr_import_input VALUES (1, '{}'), (3, '{}'); SELECT * FROM mailroster.import_jsonl_input(true)" \
    'must be numbered 1 to N' t_admin
expect_eq_text "0016: the session's role may INSERT (and COPY) into the table, and nothing else" "true false" \
    "$(q_as t_admin "SELECT mailroster.import_input_open(); SELECT has_table_privilege('pg_temp.mr_import_input', 'INSERT')::text || ' ' || has_table_privilege('pg_temp.mr_import_input', 'SELECT, UPDATE, DELETE, TRUNCATE')::text" 2>&1 | tail -1)"
# Each file of the comparison above COPYed as rows in PostgreSQL's binary
# form, as mailrosterd sends them, dry run: the answers are import_jsonl's
# with the text, line by line; and the admin role's COPY of the bulk file.
# copy_run DB FILE USER: the answers of import_jsonl_input(true) to FILE's lines
copy_run() {
    python3 - "$2" "$TMP/copy.bin" <<'PY2'
import struct, sys
lines = open(sys.argv[1], 'rb').read().split(b'\n')
if lines and lines[-1] == b'':
    lines.pop()
with open(sys.argv[2], 'wb') as f:
    f.write(b'PGCOPY\n\xff\r\n\x00' + struct.pack('>ii', 0, 0))
    for n, t in enumerate(lines, 1):
        f.write(struct.pack('>hiii', 2, 4, n, len(t)) + t)
    f.write(struct.pack('>h', -1))
PY2
    psql -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U "$3" -d "$1" 2>&1 <<EOF | grep -v '^$' || true
BEGIN;
SELECT mailroster.import_input_open();
\copy pg_temp.mr_import_input (n, t) FROM '$TMP/copy.bin' WITH (FORMAT binary)
SELECT line || ' ' || action || ' ' || kind || ' ' || key FROM mailroster.import_jsonl_input(true);
ROLLBACK;
EOF
}
for round in 1 2 3 4; do
    if [ $round = 4 ]; then db=$DB f=$TMP/bulk2.jsonl u=t_admin; else db=mr_imp_new f=$TMP/imp$round.jsonl u=postgres; fi
    copy_run "$db" "$f" "$u" >"$TMP/copy.out"
    psql -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U "$u" -d "$db" >"$TMP/text.out" 2>&1 <<EOF || true
\set lines \`cat $f\`
SELECT line || ' ' || action || ' ' || kind || ' ' || key FROM mailroster.import_jsonl(:'lines', true);
EOF
    if [ "$(wc -l <"$TMP/text.out")" -ge 20 ] && diff "$TMP/copy.out" "$TMP/text.out" >/dev/null; then
        ok "0016: $(basename "$f") COPYed as rows by $u: the same answers as import_jsonl's text ($(wc -l <"$TMP/text.out") lines)"
    else
        not_ok "0016: $(basename "$f") COPYed as rows by $u: the same answers as import_jsonl's text"; diff "$TMP/copy.out" "$TMP/text.out" | head -10 | diag
    fi
done

# ---------------------------------------------------------------------------
# Migration 0017: imports that do not depend on current statistics
# ---------------------------------------------------------------------------

expect_eq "0017: import_fresh_stats is SECURITY DEFINER with a pinned search_path, not for the admin role" \
    "SELECT prosecdef || ' ' || array_to_string(proconfig, ',') || ' ' || has_function_privilege('t_admin', oid, 'EXECUTE') FROM pg_proc WHERE oid = 'mailroster.import_fresh_stats(bigint, bigint)'::regprocedure" \
    "true search_path=mailroster, pg_temp false"
# The trap: a table whose rows were deleted and which was vacuumed with its
# pages kept (here by TRUNCATE false; in life a reader held the lock) has
# statistics that say it is empty, whatever goes into it.
q_as postgres "INSERT INTO mailroster.domains (name) VALUES ('stats.example')" >/dev/null
q_as postgres "BEGIN; SET LOCAL mailroster.bulk_import = 'on';
    INSERT INTO mailroster.mailboxes (id, domain_id, local_part, maildir)
    SELECT n, (SELECT id FROM mailroster.domains WHERE name = 'stats.example'), 's' || n, 'stats.example/s' || n || '/'
      FROM (SELECT nextval('mailroster.mailboxes_id_seq') AS n FROM generate_series(1, 8000)) g; COMMIT" >/dev/null
q_as postgres "DELETE FROM mailroster.mailboxes WHERE domain_id = (SELECT id FROM mailroster.domains WHERE name = 'stats.example')" >/dev/null
q_as postgres "VACUUM (TRUNCATE false, ANALYZE) mailroster.mailboxes" >/dev/null
expect_eq "0017: the trap is set: the statistics count the few rows left, the pages are kept" \
    "SELECT CASE WHEN reltuples < 1000 AND relpages >= 100 THEN 't' ELSE reltuples || ' rows, ' || relpages || ' pages' END FROM pg_class WHERE oid = 'mailroster.mailboxes'::regclass" t
python3 - >"$TMP/stats.jsonl" <<'PY'
import json
for i in range(3000):
    print(json.dumps({"kind": "mailbox", "address": "t%04d@stats.example" % i, "password": None,
                      "enabled": True, "disabled_reason": None, "may_send": True, "may_receive": True,
                      "services": ["imap"], "quota_bytes": None, "quota_messages": None,
                      "send_limit_messages": None, "send_limit_recipients": None, "home": None, "mail": None,
                      "uid": None, "gid": None, "maildir": None, "display_name": "T %d" % i}))
PY
psql -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U t_admin -d "$DB" >"$TMP/stats.out" 2>&1 <<EOF || true
\set lines \`cat $TMP/stats.jsonl\`
SELECT action || ' ' || count(*) FROM mailroster.import_jsonl(:'lines') GROUP BY action;
EOF
expect_eq_text "0017: 3,000 mailboxes with display names imported into it" "created 3000" "$(cat "$TMP/stats.out")"
# the UPDATE of the display names read 3,000 new rows the statistics did
# not know: they were counted first
expect_eq "... and the statistics count the new rows" \
    "SELECT reltuples >= 3000 FROM pg_class WHERE oid = 'mailroster.mailboxes'::regclass" t
expect_eq "... each with its display name" \
    "SELECT count(*) FROM mailroster.mailboxes WHERE local_part LIKE 't____' AND display_name LIKE 'T %'" 3000

# ---------------------------------------------------------------------------
# Migration 0018: batches decided in two statements when no account is locked
# ---------------------------------------------------------------------------

# Two domains with the same eight accounts, limits and history: df.test's
# messages go in random batches of 2-12 through send_admit_many, dr.test's
# one at a time in the same order (a batch of one: the loop of 0008, the
# expectation).  Every answer and every account's rows must be the same.
q -c "UPDATE mailroster.settings SET suspend_after_hits = 4, suspend_hits_within = 3600;
      INSERT INTO mailroster.domains (name, send_limit_messages, send_limit_recipients)
      VALUES ('df.test', 6, 20), ('dr.test', 6, 20), ('dp.test', 100, 0);
      INSERT INTO mailroster.mailboxes (domain_id, local_part, send_limit_messages, send_limit_recipients)
      SELECT d.id, 'm' || g, CASE g WHEN 2 THEN 3 END, CASE g WHEN 5 THEN 10 END
        FROM mailroster.domains d, generate_series(1, 8) g;
      UPDATE mailroster.mailboxes SET send_suspended_at = now(), send_suspended_reason = 'by hand'
       WHERE local_part = 'm6' AND domain_id IN (SELECT id FROM mailroster.domains WHERE name IN ('df.test', 'dr.test'));
      INSERT INTO mailroster.send_limits (scope, mailbox_id, window_seconds, messages, recipients)
      SELECT 'mailbox', m.id, w.s, w.m, w.r
        FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id,
             (VALUES ('m3', 600, 4, NULL), ('m3', 3600, 8, 30), ('m4', 3600, NULL, NULL), ('m7', 60, 2, NULL),
                     ('m8', 600, 3, NULL), ('m8', 7200, 9, 40)) w(lp, s, m, r)
       WHERE d.name IN ('df.test', 'dr.test') AND m.local_part = w.lp;
      INSERT INTO mailroster.send_counters (username, window_start, messages, recipients)
      SELECT 'm8@' || d, now() - a * interval '1 s', 1, 2
        FROM unnest('{df.test,dr.test}'::text[]) d, unnest('{7000,5000,3000,500,100}'::int[]) a ORDER BY 1, 2" >/dev/null
q >"$TMP/sets.out" 2>&1 <<'EOF' || true
CREATE TEMP TABLE got (b int, ord int, who text, row text);
DO $t$
DECLARE
    v_logins text[];
    v_n int[];
    v_k int;
    r record;
BEGIN
    PERFORM setseed(0.18);
    FOR b IN 1 .. 160 LOOP
        v_k := 2 + floor(random() * 11)::int;
        v_logins := '{}'; v_n := '{}';
        FOR i IN 1 .. v_k LOOP
            v_logins := v_logins || CASE WHEN random() < 0.05 THEN 'nobody' ELSE 'm' || (1 + floor(random() * 8)::int) END;
            v_n := v_n || CASE WHEN random() < 0.05 THEN 25 ELSE floor(random() * 5)::int END;
        END LOOP;
        FOR r IN SELECT * FROM mailroster.send_admit_many(ARRAY(SELECT l || '@df.test' FROM unnest(v_logins) l), v_n, NULL, 1000) LOOP
            INSERT INTO got VALUES (b, r.ord, 'fast', concat_ws('|', v_logins[r.ord], r.verdict, r.limit_kind, r.limit_value,
                                    r.window_seconds, r.used, r.scope, r.reason, r.suspended_now, r.free_in IS NULL, r.full_in IS NULL));
        END LOOP;
        FOR i IN 1 .. v_k LOOP
            FOR r IN SELECT * FROM mailroster.send_admit_many(ARRAY[v_logins[i] || '@dr.test'], ARRAY[v_n[i]], NULL, 1000) LOOP
                INSERT INTO got VALUES (b, i, 'ref', concat_ws('|', v_logins[i], r.verdict, r.limit_kind, r.limit_value,
                                        r.window_seconds, r.used, r.scope, r.reason, r.suspended_now, r.free_in IS NULL, r.full_in IS NULL));
            END LOOP;
        END LOOP;
    END LOOP;
END
$t$;
SELECT 'answers ' || (count(*) FILTER (WHERE who = 'fast') = count(*) FILTER (WHERE who = 'ref'))
       || ' ' || (count(*) FILTER (WHERE who = 'fast') > 800) FROM got;
SELECT 'verdicts ' || string_agg(v, ' ' ORDER BY v)
  FROM (SELECT DISTINCT split_part(row, '|', 2) AS v FROM got WHERE who = 'fast') x;
SELECT 'differ ' || count(*) FROM (SELECT * FROM got WHERE who = 'fast') f FULL JOIN (SELECT * FROM got WHERE who = 'ref') r USING (b, ord)
 WHERE f.row IS DISTINCT FROM r.row;
SELECT 'first ' || coalesce(min(f.b || ':' || f.ord || ' ' || f.row || ' / ' || r.row), '-')
  FROM got f JOIN got r USING (b, ord) WHERE f.who = 'fast' AND r.who = 'ref' AND f.row <> r.row;
SELECT 'rows ' || count(*) FROM (
    (SELECT split_part(username, '@', 1), seq, cum_recipients, recipients FROM mailroster.send_counters WHERE username LIKE '%@df.test'
     EXCEPT ALL
     SELECT split_part(username, '@', 1), seq, cum_recipients, recipients FROM mailroster.send_counters WHERE username LIKE '%@dr.test')
    UNION ALL
    (SELECT split_part(username, '@', 1), seq, cum_recipients, recipients FROM mailroster.send_counters WHERE username LIKE '%@dr.test'
     EXCEPT ALL
     SELECT split_part(username, '@', 1), seq, cum_recipients, recipients FROM mailroster.send_counters WHERE username LIKE '%@df.test')) x;
SELECT 'times ' || count(*) FROM (SELECT window_start, lag(window_start) OVER (PARTITION BY username ORDER BY seq) AS prev
                                    FROM mailroster.send_counters WHERE username LIKE '%@df.test') x
 WHERE prev >= window_start;
SELECT 'suspended ' || string_agg(m.local_part, ' ' ORDER BY m.local_part) FILTER (WHERE d.name = 'df.test')
       || ' / ' || string_agg(m.local_part, ' ' ORDER BY m.local_part) FILTER (WHERE d.name = 'dr.test')
  FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id
 WHERE d.name IN ('df.test', 'dr.test') AND m.send_suspended_at IS NOT NULL;
-- the two statements decide a batch with room in one go: one time for the
-- batch (the loop reads the clock at each admission), the j-th message of
-- an account j - 1 microseconds after its first
SELECT 'fast ' || string_agg(verdict, ' ' ORDER BY ord)
  FROM mailroster.send_admit_many(ARRAY(SELECT 'm' || g || '@dp.test' FROM generate_series(1, 8) g) || '{m1@dp.test,m1@dp.test}',
                                  array_fill(1, '{10}'), NULL, 1000);
SELECT 'stamp ' || count(DISTINCT window_start) || ' ' || count(*) || ' '
       || (SELECT string_agg(extract(microseconds FROM c.window_start - c.first)::text, ',' ORDER BY c.seq)
             FROM (SELECT c.*, min(c.window_start) OVER () AS first FROM mailroster.send_counters c
                    WHERE c.username = 'm1@dp.test') c)
  FROM mailroster.send_counters WHERE username LIKE '%@dp.test' AND seq = 1;
EOF
sets() { sed -n "s/^$1 //p" "$TMP/sets.out"; }
expect_eq_text "0018: random batches and one at a time: as many answers, over 800" "true true" "$(sets answers)"
expect_eq_text "0018: ... every kind of answer among them" "defer ok suspended toobig unknown" "$(sets verdicts)"
expect_eq_text "0018: ... the same answers (verdict, limit, window, used, scope, reason)" "0" "$(sets differ)"
[ "$(sets differ)" = 0 ] || { sets first; grep -i error "$TMP/sets.out"; } | diag
expect_eq_text "0018: ... the same rows (seq, running recipients, recipients) for every account" "0" "$(sets rows)"
expect_eq_text "0018: ... each account's times increase with its seq" "0" "$(sets times)"
expect_eq_text "0018: ... the same accounts suspended (m6 by hand, others by 4 refusals)" \
    "$(sets suspended | sed 's| / .*||')" "$(sets suspended | sed 's|.* / ||')"
susp_f=$(sets suspended | sed 's| / .*||')
expect_eq_text "0018: ... among them m6 (by hand) and at least one account suspended by its refusals" "m6 yes" \
    "$(echo " $susp_f " | grep -o ' m6 ' | tr -d ' ') $([ "$(echo "$susp_f" | wc -w)" -ge 2 ] && echo yes || echo "no ($susp_f)")"
expect_eq_text "0018: a batch with room is admitted in one statement (one time; m1's 3 rows 1 us apart)" \
    "ok ok ok ok ok ok ok ok ok ok|1 8 0,1,2" "$(sets fast)|$(sets stamp)"

# Four sessions at once, batches of 6 over four accounts of 10 messages an
# hour: the fast path and the loop (after a NOWAIT that found a lock) take
# turns, and each account admits exactly 10, seq 1-10, whatever the order.
q -c "UPDATE mailroster.settings SET suspend_after_hits = 0;
      INSERT INTO mailroster.domains (name, send_limit_messages) VALUES ('dc.test', 10);
      INSERT INTO mailroster.mailboxes (domain_id, local_part)
      SELECT d.id, 'c' || g FROM mailroster.domains d, generate_series(1, 4) g WHERE d.name = 'dc.test'" >/dev/null
conc_pids=()
for s in 1 2 3 4; do
    { echo "SELECT setseed(0.$s);"
      for b in $(seq 20); do
          echo "SELECT string_agg(verdict, ' ') FROM mailroster.send_admit_many(
                  ARRAY(SELECT 'c' || (1 + floor(random() * 4)::int) || '@dc.test' FROM generate_series(1, 6)),
                  array_fill(1, '{6}'), NULL, 5000);"
      done; } | q >"$TMP/conc$s.out" 2>&1 &
    conc_pids+=($!)
done
wait "${conc_pids[@]}"
expect_eq_text "0018: 4 sessions x 20 batches of 6 over 4 accounts: 40 admitted, the rest deferred" \
    "ok 40 defer 440" "$(cat "$TMP"/conc[1-4].out | tr ' ' '\n' | grep -E '^(ok|defer|busy|unknown|suspended|toobig)$' | sort | uniq -c | sort -k2 -r | awk '{printf "%s%s %s", (NR > 1 ? " " : ""), $2, $1}')"
expect_eq "0018: ... each account 10 rows, seq 1-10" \
    "SELECT string_agg(split_part(username, '@', 1) || ':' || n || ':' || s, ' ' ORDER BY username)
       FROM (SELECT username, count(*) AS n, string_agg(seq::text, ',' ORDER BY seq) = '1,2,3,4,5,6,7,8,9,10' AS s
               FROM mailroster.send_counters WHERE username LIKE '%@dc.test' GROUP BY username) x" \
    "c1:10:true c2:10:true c3:10:true c4:10:true"

# ---------------------------------------------------------------------------

DONE=1
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
