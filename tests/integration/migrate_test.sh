#!/usr/bin/env bash
# migrate_test.sh - "mailroster db migrate" upgrades a database made by an
# older mailroster (migrations 0001-0003 only) with its data in it: dry run,
# upgrade, nothing lost, the result identical to a fresh schema.sql, a
# second run changes nothing, a newer database is refused, a failing
# migration leaves nothing behind, two hosts upgrading at once apply each
# migration once; a schema 7 database's rate-limit log gets its running
# totals (0008).
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
. "$TOP/tests/integration/begin.sh" mr-migrate
CLI=$(dirname "$MRD")/mailroster
SQL=$TOP/sql

stack_pg_start || { notok "PostgreSQL starts"; t_summary; exit 1; }
psqlq() { local db=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }
# the versions this tree knows, from the file names (not from the tool)
KNOWN=$(ls "$SQL/migrations" | sed -n 's/^\([0-9]\{4\}\)_.*\.sql$/\1/p' | sort -n | tail -1 | sed 's/^0*//')
PENDING=$(ls "$SQL/migrations" | grep -E '^[0-9]{4}_.*\.sql$' | sort | awk -F_ '$1 + 0 > 3' | tr '\n' ' ')
migrate() { local db=$1; shift; "$CLI" db "$@" --database "host=$PGHOST port=$PGPORT dbname=$db" --sql-dir "$SQL"; }

# an install of an older mailroster: migrations 0001-0003, with data
old_db() { # NAME
    stack_pg_createdb "$1" || return 1
    for f in "$SQL"/migrations/000[123]_*.sql; do psqlq "$1" -f "$f" >/dev/null || return 1; done
    psqlq "$1" <<'SQL' >/dev/null
INSERT INTO mailroster.domains (name) VALUES ('old.example');
INSERT INTO mailroster.mailboxes (domain_id, local_part, password)
SELECT id, 'keep', '{SHA512-CRYPT}$6$saltsalt$' || repeat('k', 86) FROM mailroster.domains;
INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
SELECT id, 'info', ARRAY['keep@old.example'] FROM mailroster.domains;
SQL
}
data() { psqlq "$1" -c "SELECT m.local_part || '@' || d.name || ' ' || m.password || ' ' || m.maildir || ' ' || a.local_part || '>' || array_to_string(a.destinations, ',')
    FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id JOIN mailroster.aliases a ON a.domain_id = d.id"; }
version() { psqlq "$1" -c "SELECT max(version) FROM mailroster.schema_version"; }

old_db up || { notok "an old database"; t_summary; exit 1; }
before=$(data up)
check "the old database is at version 3" 3 "$(version up)"

out=$(migrate up status); rc=$?
check "status: exit 0" 0 "$rc"
check "status names the version and what is pending" \
    "schema version 3; this mailroster knows up to $KNOWN|$(for f in $PENDING; do printf 'pending: %s|' "$f"; done)" \
    "$(echo "$out" | tr '\n' '|')"

out=$(migrate up migrate --dry-run); rc=$?
check "dry run: exit 0, lists each migration, changes nothing" \
    "0|$(for f in $PENDING; do printf 'would apply: %s|' "$f"; done)schema version 3 -> $KNOWN (dry run: nothing changed)|3" \
    "$rc|$(echo "$out" | tr '\n' '|')$(version up)"

out=$(migrate up migrate); rc=$?
check "migrate: exit 0, each migration applied, then the grants" \
    "0|$(for f in $PENDING; do printf 'applied: %s|' "$f"; done)applied: roles.sql (grants)|schema version 3 -> $KNOWN" \
    "$rc|$(echo "$out" | tr '\n' '|' | sed 's/|$//')"
check "the database is at the newest version" "$KNOWN" "$(version up)"
check "nothing of the data was lost" "$before" "$(data up)"
check "the old mailbox's address is claimed (0004 filled claimed_addresses)" 2 \
    "$(psqlq up -c "SELECT count(*) FROM mailroster.claimed_addresses")"

# the same schema as a fresh install
stack_pg_createdb fresh
psqlq fresh -f "$SQL/schema.sql" >/dev/null && psqlq fresh -f "$SQL/roles.sql" >/dev/null
# (pg_dump's \restrict lines carry a random key each run)
dump() { pg_dump --schema-only --no-owner -h "$PGHOST" -p "$PGPORT" "$1" | grep -v -e '^--' -e '^$' -e '^\\restrict' -e '^\\unrestrict'; }
if diff <(dump up) <(dump fresh) >"$STACK_DIR/schema.diff"; then
    ok "the upgraded schema is identical to a fresh schema.sql"
else
    notok "the upgraded schema is identical to a fresh schema.sql"; head -20 "$STACK_DIR/schema.diff" | sed 's/^/#   /'
fi

out=$(migrate up migrate); rc=$?
check "a second run changes nothing" "0|schema version $KNOWN; this mailroster knows up to $KNOWN: up to date|$KNOWN" \
    "$rc|$out|$(version up)"

# a database of schema 7 whose accounts have sent: migration 0008 gives the
# rate-limit log its running totals, and admissions go on from them
stack_pg_createdb v7 || notok "a schema 7 database"
for f in "$SQL"/migrations/000[1-7]_*.sql; do psqlq v7 -f "$f" >/dev/null || notok "v7: $f"; done
psqlq v7 <<'SQL' >/dev/null
INSERT INTO mailroster.domains (name, send_limit_messages, send_limit_window) VALUES ('sent.example', 10, 3600);
INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, u FROM mailroster.domains, unnest('{ann,ben}'::text[]) u;
INSERT INTO mailroster.send_counters (username, window_start, messages, recipients) VALUES
  ('ann@sent.example', now() - interval '50 min', 1, 3),
  ('ben@sent.example', now() - interval '40 min', 1, 1),
  ('ann@sent.example', now() - interval '30 min', 1, 5),
  ('ann@sent.example', now() - interval '10 min', 1, 2);
SQL
check "v7: at version 7" 7 "$(version v7)"
migrate v7 migrate >/dev/null 2>&1
check "v7 -> $KNOWN" "$KNOWN" "$(version v7)"
check "the log's rows got each account's running totals" \
    "ann@sent.example 1 3|ann@sent.example 2 8|ann@sent.example 3 10|ben@sent.example 1 1" \
    "$(psqlq v7 -c "SELECT string_agg(username || ' ' || seq || ' ' || cum_recipients, '|' ORDER BY username, window_start) FROM mailroster.send_counters")"
check "the next admission counts on from them" "ok|4 11" \
    "$(psqlq v7 -c "SELECT verdict FROM mailroster.send_admit('ann@sent.example', 1)")|$(psqlq v7 -c "SELECT max(seq) || ' ' || max(cum_recipients) FROM mailroster.send_counters WHERE username = 'ann@sent.example'")"
check "what the window holds, as before the upgrade" "4|11" \
    "$(psqlq v7 -c "SELECT sent_messages || '|' || sent_recipients FROM mailroster.send_usage('ann@sent.example')")"

# a database of schema 17 with its grants: 0018 renames 0008's
# send_admit_many to send_admit_each and creates a new send_admit_many; the
# reader's EXECUTE moves to the new one before roles.sql runs again, so a
# daemon running through the upgrade keeps admitting
stack_pg_createdb v17 || notok "a schema 17 database"
for f in "$SQL"/migrations/*.sql; do
    n=$(basename "$f" | cut -c1-4)
    [ "$((10#$n))" -le 17 ] && { psqlq v17 -f "$f" >/dev/null || notok "v17: $f"; }
done
# (as roles.sql of schema 17 granted it; today's names 0018's functions)
psqlq v17 -c "GRANT EXECUTE ON FUNCTION mailroster.send_admit_many(text[], int[], text[], int) TO mailroster_reader" >/dev/null ||
    notok "v17: the grant"
check "v17: the reader may run send_admit_many" "t" \
    "$(psqlq v17 -c "SELECT has_function_privilege('mailroster_reader', 'mailroster.send_admit_many(text[], int[], text[], int)', 'EXECUTE')")"
psqlq v17 -f "$SQL"/migrations/0018_*.sql >/dev/null || notok "v17: 0018"
check "0018 without roles.sql: the reader may run the new send_admit_many, not the loop it renamed" "1 0" \
    "$(psqlq v17 -c "SELECT has_function_privilege('mailroster_reader', 'mailroster.send_admit_many(text[], int[], text[], int)', 'EXECUTE')::int || ' ' ||
                            has_function_privilege('mailroster_reader', 'mailroster.send_admit_each(text[], int[], text[], int)', 'EXECUTE')::int")"

# a database of schema 10 with rows and a change log: 0012 (the change log
# per statement, the set-based import) keeps both, and logs on from them
stack_pg_createdb v10 || notok "a schema 10 database"
for f in "$SQL"/migrations/*.sql; do
    n=$(basename "$f" | cut -c1-4)
    [ "$((10#$n))" -le 10 ] && { psqlq v10 -f "$f" >/dev/null || notok "v10: $f"; }
done
psqlq v10 <<'SQL' >/dev/null
INSERT INTO mailroster.domains (name) VALUES ('ten.example'), ('tenb.example');
INSERT INTO mailroster.mailboxes (domain_id, local_part, password, forward_to)
SELECT d.id, u, '{SHA512-CRYPT}$6$saltsalt$' || repeat('t', 86), CASE WHEN u = 'amy' THEN '{x@else.example}'::text[] ELSE '{}' END
  FROM mailroster.domains d, unnest('{amy,bob}'::text[]) u WHERE d.name = 'ten.example';
INSERT INTO mailroster.aliases (domain_id, local_part, destinations, may_send)
SELECT id, 'info', ARRAY['amy@ten.example'], false FROM mailroster.domains WHERE name = 'ten.example';
INSERT INTO mailroster.sender_addresses (mailbox_id, address) SELECT id, 'boss@ten.example' FROM mailroster.mailboxes WHERE local_part = 'bob';
INSERT INTO mailroster.transports (pattern, transport) VALUES ('tenb.example', 'relay:[10.0.0.5]');
UPDATE mailroster.mailboxes SET quota_bytes = 5;
DELETE FROM mailroster.domains WHERE name = 'tenb.example';
SQL
v10rows() { psqlq v10 -c "SELECT * FROM mailroster.export_jsonl()" -c "SELECT string_agg(tbl || ':' || op || ':' || row_id, ' ' ORDER BY seq) FROM mailroster.change_log"; }
before10=$(v10rows)
check "v10: at version 10, with a change log of 10 rows" "10 10" "$(version v10) $(psqlq v10 -c "SELECT count(*) FROM mailroster.change_log")"
migrate v10 migrate >/dev/null 2>&1
check "v10 -> $KNOWN" "$KNOWN" "$(version v10)"
check "v10: the rows and the change log are as they were" "$before10" "$(v10rows)"
m10=$(psqlq v10 -c "SELECT max(seq) FROM mailroster.change_log")
psqlq v10 -c "UPDATE mailroster.mailboxes SET quota_bytes = 6" >/dev/null
check "v10: a two-row UPDATE after the upgrade logs two rows after the old ones" \
    "mailboxes:U mailboxes:U|$m10" \
    "$(psqlq v10 -c "SELECT string_agg(tbl || ':' || op, ' ' ORDER BY seq) || '|' || (min(seq) - 1) FROM mailroster.change_log WHERE seq > $m10")"
check "v10: the import after the upgrade answers as before (a mailbox unchanged, one created)" \
    "1 unchanged mailbox amy@ten.example|2 created mailbox cat@ten.example" \
    "$(psqlq v10 -c "SELECT string_agg(line || ' ' || action || ' ' || kind || ' ' || key, '|' ORDER BY line) FROM mailroster.import_jsonl(
        (SELECT string_agg(l, E'\n') FROM mailroster.export_jsonl() l WHERE l LIKE '{\"kind\":\"mailbox\",\"address\":\"amy@%')
        || E'\n' || (SELECT (l::jsonb || '{\"address\": \"cat@ten.example\", \"maildir\": null}')::text
                         FROM mailroster.export_jsonl() l WHERE l LIKE '{\"kind\":\"mailbox\",\"address\":\"bob@%'))" 2>&1)"

# a database newer than this mailroster
psqlq up -c "INSERT INTO mailroster.schema_version (version, description) VALUES (9999, 'from the future')"
out=$(migrate up migrate 2>&1); rc=$?
check "a newer database is refused (EX_CONFIG) and left alone" \
    "78|mailroster: the database's schema is at version 9999, newer than this mailroster knows ($KNOWN): refusing to touch it; upgrade mailroster instead|9999" \
    "$rc|$out|$(version up)"

# a migration that fails half-way leaves nothing of itself
cp -r "$SQL" "$STACK_DIR/sql"
cat >"$STACK_DIR/sql/migrations/9990_broken.sql" <<'SQL'
BEGIN;
CREATE TABLE mailroster.half_done (x int);
SELECT 1 / 0;
INSERT INTO mailroster.schema_version (version, description) VALUES (9990, 'broken');
COMMIT;
SQL
out=$("$CLI" db migrate --database "host=$PGHOST port=$PGPORT dbname=fresh" --sql-dir "$STACK_DIR/sql" 2>&1); rc=$?
check "a failing migration: EX_DATAERR, named with PostgreSQL's reason" "65|1" \
    "$rc|$(echo "$out" | grep -c '^mailroster: 9990_broken.sql failed, nothing of it was applied: ERROR:  division by zero')"
check "... and nothing of it is left" "$KNOWN|" \
    "$(version fresh)|$(psqlq fresh -c "SELECT to_regclass('mailroster.half_done')")"

# two hosts upgrade at once: each migration once
old_db race1 || notok "a second old database"
migrate race1 migrate >"$STACK_DIR/r1.out" 2>&1 & p1=$!
migrate race1 migrate >"$STACK_DIR/r2.out" 2>&1 & p2=$!
wait "$p1"; rc1=$?; wait "$p2"; rc2=$?
check "two at once: both exit 0, one applied the migrations, the other found them done" \
    "0 0 $(echo $PENDING | wc -w)" "$rc1 $rc2 $(cat "$STACK_DIR"/r[12].out | grep -c '^applied: [0-9]')"
# (one row per migration file: the numbers need not be contiguous)
check "... each version recorded once" "$(ls "$SQL/migrations" | grep -cE '^[0-9]{4}_.*\.sql$')" \
    "$(psqlq race1 -c "SELECT count(*) FROM mailroster.schema_version")"

t_summary
