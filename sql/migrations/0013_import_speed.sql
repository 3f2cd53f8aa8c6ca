-- mailroster migration 0013: a bulk import of 100,000 accounts in seconds,
-- with the same rows, change log, claims, NOTIFY and answers as before.
--
-- Apply with:  psql -v ON_ERROR_STOP=1 -X -d DB -f sql/migrations/0013_import_speed.sql
-- (as the schema owner; then run sql/roles.sql).  One transaction.
--
-- Where a valid import of 100,000 mailboxes and 5,000 aliases spent its
-- PostgreSQL CPU after 0012 (perf on the backend, 21.5 s in all):
--   * password_hash_ok, called twice per written row (the WHEN of the
--     password trigger and the CHECK), walked each hash with translate(),
--     which compares every character with each of 64 others: ~28 µs a call,
--     about a quarter of the total;
--   * planning: PL/pgSQL hands the parsed file (an array of 100,000
--     composite rows) to each statement as a parameter, and a custom plan
--     folds it into a constant that the planner copies and walks again for
--     every statement: about a fifth;
--   * the per-row triggers (the claim, the mailbox check, the foreign key)
--     about a sixth; the sorts of the arrays spilled to disk.
--
-- 1. password_hash_ok tests the characters of a hash with one negated
--    bracket expression instead of translate(): the same sets, the same
--    answers (tests/unit/pwhash_cases.tsv through trust_admin_test.sh, and
--    schema_test.sh against password_hash_problem).  The row checks of
--    mailboxes and aliases ask for the domain's name and for a clash with
--    the other kind in one query instead of two.
-- 2. import_jsonl runs with plan_cache_mode = force_generic_plan (its
--    arrays stay parameters, planned once) and work_mem = 64MB (the sorts
--    of 100,000 rows stay in memory).
-- 3. The claim triggers (0004: an address is a mailbox or an alias, not
--    both) become statement triggers over the transition tables: one
--    set-based DELETE and INSERT ... ON CONFLICT per statement instead of
--    two statements per row.  A clash is refused with the message,
--    SQLSTATE and constraint name of before.
-- The change log (one entry per changed row, 0012), NOTIFY, the audit row
-- (written by mailrosterd), the answers and the row-by-row fallback with
-- its messages are unchanged.

\set ON_ERROR_STOP 1

BEGIN;

DO $guard$
BEGIN
    IF (SELECT max(version) FROM mailroster.schema_version) <> 12 THEN
        RAISE EXCEPTION 'migration 0013 needs schema version 12';
    END IF;
END
$guard$;

------------------------------------------------------------------------------
-- 1. password_hash_ok without translate()
------------------------------------------------------------------------------

-- As in 0012; "translate(s, C64, '') = ''" (s only of [./0-9A-Za-z]) is
-- "s !~ '[^./0-9A-Za-z]'", and "translate(s, C64, '') = '$'" is s of those
-- and exactly one "$".
CREATE OR REPLACE FUNCTION mailroster.password_hash_ok(p text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN p IS NOT NULL
       AND (CASE
                WHEN octet_length(p) > 512 THEN false
                -- {SHA512-CRYPT}$6$salt$hash, {CRYPT}$6$salt$hash: 1 to 16
                -- and 86 characters of [./0-9A-Za-z], one "$" between
                WHEN left(p, 17) = '{SHA512-CRYPT}$6$' OR left(p, 10) = '{CRYPT}$6$' THEN
                     substr(p, strpos(p, '}') + 4) !~ '[^./0-9A-Za-z$]'
                     AND octet_length(split_part(p, '$', 3)) BETWEEN 1 AND 16
                     AND octet_length(split_part(p, '$', 4)) = 86
                     -- (and no third "$": salt, "$" and hash are all there is)
                     AND octet_length(p) = strpos(p, '}') + 3 + octet_length(split_part(p, '$', 3)) + 1 + 86
                -- {BLF-CRYPT}$2b$NN$..., {CRYPT}$2b$NN$...: cost 04 to 31,
                -- then 53 characters of [./0-9A-Za-z]
                WHEN left(p, 14) IN ('{BLF-CRYPT}$2a', '{BLF-CRYPT}$2b', '{BLF-CRYPT}$2y')
                     OR left(p, 10) IN ('{CRYPT}$2a', '{CRYPT}$2b', '{CRYPT}$2y') THEN
                     substr(p, strpos(p, '}') + 4, 1) = '$'
                     AND substr(p, strpos(p, '}') + 5, 2) IN
                         ('04', '05', '06', '07', '08', '09', '10', '11', '12', '13', '14', '15', '16', '17',
                          '18', '19', '20', '21', '22', '23', '24', '25', '26', '27', '28', '29', '30', '31')
                     AND substr(p, strpos(p, '}') + 7, 1) = '$'
                     AND octet_length(p) = strpos(p, '}') + 60
                     AND substr(p, strpos(p, '}') + 8) !~ '[^./0-9A-Za-z]'
                ELSE false
            END
            OR mailroster.password_hash_problem(p) IS NULL);

------------------------------------------------------------------------------
-- 1b. The row checks of mailboxes and aliases: one query instead of two
------------------------------------------------------------------------------

-- As in 0012, but the domain's name and whether the address is taken by
-- the other kind come from one query: each query a PL/pgSQL trigger runs
-- costs an executor start per row, the larger part of these triggers.
-- The same checks in the same order, the same messages.
CREATE OR REPLACE FUNCTION mailroster.tg_mailbox_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    dname text;
    taken boolean;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.domain_id = OLD.domain_id AND NEW.local_part = OLD.local_part THEN
        RETURN NEW;
    END IF;
    -- (an empty local part is refused by mailboxes_local_part_check; do not
    -- report it as a clash with the catch-all alias)
    SELECT d.name,
           NEW.local_part <> '' AND EXISTS (SELECT 1 FROM mailroster.aliases a
                                             WHERE a.domain_id = NEW.domain_id AND a.local_part = NEW.local_part)
      INTO dname, taken
      FROM mailroster.domains d WHERE d.id = NEW.domain_id;
    IF dname IS NULL THEN
        RAISE EXCEPTION 'domain id % does not exist', NEW.domain_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'mailboxes_domain_id_fkey';
    END IF;
    IF octet_length(NEW.local_part) + 1 + octet_length(dname) > 254 THEN
        RAISE EXCEPTION 'address %@% is longer than 254 octets', NEW.local_part, dname
            USING ERRCODE = 'check_violation', CONSTRAINT = 'mailboxes_address_length';
    END IF;
    IF taken THEN
        RAISE EXCEPTION 'address %@% is already an alias; it cannot also be a mailbox',
            NEW.local_part, dname
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'address_mailbox_alias_conflict';
    END IF;
    IF TG_OP = 'INSERT' AND NEW.maildir IS NULL THEN
        -- ids are never reused, so a re-created address gets a new directory.
        NEW.maildir := dname || '/' || replace(NEW.local_part, '/', '_') || '.' || NEW.id || '/';
    END IF;
    RETURN NEW;
END
$fn$;

CREATE OR REPLACE FUNCTION mailroster.tg_alias_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    dname  text;
    taken  boolean;
    source text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.domain_id = OLD.domain_id AND NEW.local_part = OLD.local_part
       AND NEW.destinations = OLD.destinations THEN
        RETURN NEW;
    END IF;
    SELECT d.name,
           NEW.local_part <> ''
           AND (TG_OP = 'INSERT' OR NEW.domain_id <> OLD.domain_id OR NEW.local_part <> OLD.local_part)
           AND EXISTS (SELECT 1 FROM mailroster.mailboxes m
                        WHERE m.domain_id = NEW.domain_id AND m.local_part = NEW.local_part)
      INTO dname, taken
      FROM mailroster.domains d WHERE d.id = NEW.domain_id;
    IF dname IS NULL THEN
        RAISE EXCEPTION 'domain id % does not exist', NEW.domain_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'aliases_domain_id_fkey';
    END IF;
    source := NEW.local_part || '@' || dname;
    IF octet_length(source) > 254 THEN
        RAISE EXCEPTION 'address % is longer than 254 octets', source
            USING ERRCODE = 'check_violation', CONSTRAINT = 'aliases_address_length';
    END IF;
    IF taken THEN
        RAISE EXCEPTION 'address % is already a mailbox; it cannot also be an alias', source
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'address_mailbox_alias_conflict';
    END IF;
    IF source = ANY (NEW.destinations) THEN
        RAISE EXCEPTION 'alias % cannot have itself as a destination', source
            USING ERRCODE = 'check_violation', CONSTRAINT = 'aliases_self_reference';
    END IF;
    RETURN NEW;
END
$fn$;

------------------------------------------------------------------------------
-- 2. The import's plans and sorts
------------------------------------------------------------------------------

-- (The row-by-row fallback it calls runs with the same settings; its
-- per-line statements gain from generic plans too.)
ALTER FUNCTION mailroster.import_jsonl(text, boolean) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION mailroster.import_jsonl(text, boolean) SET work_mem = '64MB';

------------------------------------------------------------------------------
-- 3. Address claims per statement
------------------------------------------------------------------------------

-- AFTER INSERT / UPDATE / DELETE ... FOR EACH STATEMENT on mailboxes and
-- aliases, over the transition tables (new_rows, old_rows).  What the row
-- trigger of 0004 did per row, per statement: the addresses the statement
-- gave up lose their claim, the addresses it took get one; an UPDATE that
-- keeps a row's address claims nothing.  A taken address is refused with
-- the row trigger's message, SQLSTATE and constraint name (if several
-- clash, the first by domain and local part is named).  SECURITY DEFINER:
-- writers need no rights on claimed_addresses.  As before, the primary key
-- is checked against the latest committed rows, waiting for an open writer
-- of the same key, whatever snapshot the writer reads with.
CREATE FUNCTION mailroster.tg_claim_addresses() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    k text := CASE TG_TABLE_NAME WHEN 'mailboxes' THEN 'mailbox' ELSE 'alias' END;
    v_dom bigint;
    v_lp text;
    dname text;
    n bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM mailroster.claimed_addresses c
         USING old_rows o
         WHERE c.domain_id = o.domain_id AND c.local_part = o.local_part AND c.kind = k;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        -- (set differences, not a join on id: rows that swap addresses
        -- within the statement keep their claims)
        DELETE FROM mailroster.claimed_addresses c
         USING (SELECT o.domain_id, o.local_part FROM old_rows o
                EXCEPT
                SELECT r.domain_id, r.local_part FROM new_rows r) g
         WHERE c.domain_id = g.domain_id AND c.local_part = g.local_part AND c.kind = k;
        WITH took AS (SELECT r.domain_id, r.local_part FROM new_rows r
                      EXCEPT
                      SELECT o.domain_id, o.local_part FROM old_rows o),
             ins AS (INSERT INTO mailroster.claimed_addresses (domain_id, local_part, kind)
                     SELECT t.domain_id, t.local_part, k FROM took t
                     ON CONFLICT (domain_id, local_part) DO NOTHING
                     RETURNING domain_id, local_part)
        SELECT t.domain_id, t.local_part INTO v_dom, v_lp
          FROM took t
         WHERE NOT EXISTS (SELECT 1 FROM ins i WHERE i.domain_id = t.domain_id AND i.local_part = t.local_part)
         ORDER BY t.domain_id, t.local_part COLLATE "C"
         LIMIT 1;
    ELSE
        -- (no exception block, as before: a key another open or newer
        -- transaction holds fails here with unique_violation or
        -- serialization_failure)
        INSERT INTO mailroster.claimed_addresses (domain_id, local_part, kind)
        SELECT r.domain_id, r.local_part, k FROM new_rows r
        ON CONFLICT (domain_id, local_part) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n < (SELECT count(*) FROM new_rows) THEN
            -- a row whose address is claimed by the other kind (or, were
            -- the claims ever stale, by its own)
            SELECT r.domain_id, r.local_part INTO v_dom, v_lp
              FROM new_rows r
              LEFT JOIN mailroster.claimed_addresses c
                ON c.domain_id = r.domain_id AND c.local_part = r.local_part
             ORDER BY c.kind IS DISTINCT FROM k DESC, r.domain_id, r.local_part COLLATE "C"
             LIMIT 1;
        END IF;
    END IF;
    IF v_dom IS NOT NULL THEN
        SELECT d.name INTO dname FROM mailroster.domains d WHERE d.id = v_dom;
        RAISE EXCEPTION 'address %@% is already %; it cannot also be %',
            v_lp, dname, CASE k WHEN 'mailbox' THEN 'an alias' ELSE 'a mailbox' END,
            CASE k WHEN 'mailbox' THEN 'a mailbox' ELSE 'an alias' END
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'address_mailbox_alias_conflict';
    END IF;
    RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION mailroster.tg_claim_addresses() FROM PUBLIC;

-- tg_claim_address() stays (like tg_log_change in 0012) for a row trigger
-- a later table may want.
DROP TRIGGER mailboxes_80_claim ON mailroster.mailboxes;
DROP TRIGGER aliases_80_claim ON mailroster.aliases;
CREATE TRIGGER mailboxes_80_claim_i AFTER INSERT ON mailroster.mailboxes REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_claim_addresses();
CREATE TRIGGER mailboxes_80_claim_u AFTER UPDATE ON mailroster.mailboxes
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_claim_addresses();
CREATE TRIGGER mailboxes_80_claim_d AFTER DELETE ON mailroster.mailboxes REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_claim_addresses();
CREATE TRIGGER aliases_80_claim_i AFTER INSERT ON mailroster.aliases REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_claim_addresses();
CREATE TRIGGER aliases_80_claim_u AFTER UPDATE ON mailroster.aliases
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_claim_addresses();
CREATE TRIGGER aliases_80_claim_d AFTER DELETE ON mailroster.aliases REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_claim_addresses();

INSERT INTO mailroster.schema_version (version, description)
VALUES (13, 'bulk import speed: cheaper hash check, generic plans, claims per statement');

COMMIT;
