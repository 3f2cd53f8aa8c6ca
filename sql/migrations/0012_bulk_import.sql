-- mailroster migration 0012: bulk import at set speed, with the change log,
-- NOTIFY and every answer of the import as they were.
--
-- Apply with:  psql -v ON_ERROR_STOP=1 -X -d DB -f sql/migrations/0012_bulk_import.sql
-- (as the schema owner; then run sql/roles.sql).  One transaction.
--
-- Where 20,000 imported accounts spent their time (2 cores, busy): the
-- import's own per-line PL/pgSQL (parsing, checks, one INSERT statement per
-- line) about half; per statement, re-planned SQL functions of the CHECK
-- constraints (are_addresses for forward_to) about a fifth; per row, the
-- change-log trigger (an INSERT and a pg_notify for each row), the claim
-- trigger and the password checks the rest.
--
-- 1. THE CHANGE LOG PER STATEMENT.  The AFTER ROW change-log triggers of
--    the directory tables become AFTER STATEMENT triggers with transition
--    tables: one INSERT ... SELECT into change_log per statement, one row
--    per changed row in the order the statement changed them, and one
--    pg_notify per statement that changed a row (PostgreSQL folds them into
--    one per transaction, as before).  The directory lock is taken again
--    before the seqs are allocated, so commit order is still seq order.
--    Within one statement the rows of a cascade (a mailbox's senders) are
--    now logged before the mailbox rather than after it; the daemons read a
--    transaction's rows as one batch and de-duplicate by id, so nothing
--    they do depends on the order inside a transaction.
--    tg_log_change() stays for row triggers a later table may still use.
-- 2. CHEAP ROW CHECKS.  The BEFORE ROW checks of mailboxes and aliases
--    skip an UPDATE that keeps what they check; the password, path and
--    forward triggers run only for rows they act on (WHEN); and
--    password_hash_ok accepts the common hash forms without calling
--    password_hash_problem (same answers).
-- 3. A SET-BASED IMPORT.  import_jsonl of migration 0010 is kept, unchanged,
--    as import_jsonl_rowwise.  The new import_jsonl parses every line in
--    one statement into typed rows, checks them with set queries at least
--    as strictly as the row-by-row import does, and applies each kind with
--    one INSERT ... SELECT (in line order, so new ids follow the lines as
--    before) and one UPDATE ... FROM.  When any check fails, or a
--    constraint or trigger refuses a row, everything it did is undone and
--    the row-by-row import runs instead: it finds the faulty line and says
--    what it always said.  So the answers (created / updated / unchanged
--    per line, in line order), the dry run, the dependency order, the
--    maildir rules, never deleting and every error message are those of
--    the row-by-row import; only a valid import is fast.
--    One difference in the change log: within one kind, the rows created
--    are logged before the rows updated (two statements), where the
--    row-by-row import interleaved them in line order; and the fields of
--    migration 0010 are applied per kind (mailboxes, aliases, transports)
--    rather than interleaved by line.  Same rows, same ids, same I/U/D
--    entries; the order differs only inside the one transaction.

\set ON_ERROR_STOP 1

BEGIN;

------------------------------------------------------------------------------
-- 1. The change log per statement
------------------------------------------------------------------------------

-- AFTER INSERT / UPDATE / DELETE ... FOR EACH STATEMENT on every directory
-- table, with the transition table new_rows (INSERT, UPDATE) or old_rows
-- (DELETE).  SECURITY DEFINER like tg_log_change: writers need no right on
-- change_log or its sequence.  A statement that changed no row logs nothing
-- and wakes nobody.
CREATE FUNCTION mailroster.tg_log_changes() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    n bigint;
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(mailroster.directory_lock_key());
    IF TG_OP = 'DELETE' THEN
        INSERT INTO mailroster.change_log (tbl, op, row_id)
        SELECT TG_TABLE_NAME, 'D', o.id FROM old_rows o;
    ELSE
        INSERT INTO mailroster.change_log (tbl, op, row_id)
        SELECT TG_TABLE_NAME, CASE TG_OP WHEN 'INSERT' THEN 'I' ELSE 'U' END, r.id FROM new_rows r;
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_catalog.pg_notify('mailroster_changes', '');
    END IF;
    RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION mailroster.tg_log_changes() FROM PUBLIC;

DO $swap$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['domains', 'mailboxes', 'aliases', 'sender_addresses', 'master_users', 'transports'] LOOP
        EXECUTE format('DROP TRIGGER %I ON mailroster.%I', t || '_90_change_log', t);
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON mailroster.%I REFERENCING NEW TABLE AS new_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_log_changes()', t || '_90_change_log_i', t);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON mailroster.%I REFERENCING NEW TABLE AS new_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_log_changes()', t || '_90_change_log_u', t);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON mailroster.%I REFERENCING OLD TABLE AS old_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_log_changes()', t || '_90_change_log_d', t);
    END LOOP;
END
$swap$;

------------------------------------------------------------------------------
-- 2. Row checks that skip what did not change
------------------------------------------------------------------------------

-- As in 0001; an UPDATE that keeps the address has nothing to check here
-- (the maildir is only made on INSERT).
CREATE OR REPLACE FUNCTION mailroster.tg_mailbox_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    dname text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.domain_id = OLD.domain_id AND NEW.local_part = OLD.local_part THEN
        RETURN NEW;
    END IF;
    SELECT d.name INTO dname FROM mailroster.domains d WHERE d.id = NEW.domain_id;
    IF dname IS NULL THEN
        RAISE EXCEPTION 'domain id % does not exist', NEW.domain_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'mailboxes_domain_id_fkey';
    END IF;
    IF octet_length(NEW.local_part) + 1 + octet_length(dname) > 254 THEN
        RAISE EXCEPTION 'address %@% is longer than 254 octets', NEW.local_part, dname
            USING ERRCODE = 'check_violation', CONSTRAINT = 'mailboxes_address_length';
    END IF;
    -- (an empty local part is refused by mailboxes_local_part_check; do not
    -- report it as a clash with the catch-all alias)
    IF NEW.local_part <> '' THEN
        IF EXISTS (SELECT 1 FROM mailroster.aliases a
                    WHERE a.domain_id = NEW.domain_id AND a.local_part = NEW.local_part) THEN
            RAISE EXCEPTION 'address %@% is already an alias; it cannot also be a mailbox',
                NEW.local_part, dname
                USING ERRCODE = 'unique_violation', CONSTRAINT = 'address_mailbox_alias_conflict';
        END IF;
    END IF;
    IF TG_OP = 'INSERT' AND NEW.maildir IS NULL THEN
        -- ids are never reused, so a re-created address gets a new directory.
        NEW.maildir := dname || '/' || replace(NEW.local_part, '/', '_') || '.' || NEW.id || '/';
    END IF;
    RETURN NEW;
END
$fn$;

-- As in 0001; an UPDATE that keeps the address and the destinations (say,
-- of enabled or may_send) has nothing to check here.
CREATE OR REPLACE FUNCTION mailroster.tg_alias_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    dname  text;
    source text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.domain_id = OLD.domain_id AND NEW.local_part = OLD.local_part
       AND NEW.destinations = OLD.destinations THEN
        RETURN NEW;
    END IF;
    SELECT d.name INTO dname FROM mailroster.domains d WHERE d.id = NEW.domain_id;
    IF dname IS NULL THEN
        RAISE EXCEPTION 'domain id % does not exist', NEW.domain_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'aliases_domain_id_fkey';
    END IF;
    source := NEW.local_part || '@' || dname;
    IF octet_length(source) > 254 THEN
        RAISE EXCEPTION 'address % is longer than 254 octets', source
            USING ERRCODE = 'check_violation', CONSTRAINT = 'aliases_address_length';
    END IF;
    IF NEW.local_part <> ''
       AND (TG_OP = 'INSERT' OR NEW.domain_id <> OLD.domain_id OR NEW.local_part <> OLD.local_part)
       AND EXISTS (SELECT 1 FROM mailroster.mailboxes m
                    WHERE m.domain_id = NEW.domain_id AND m.local_part = NEW.local_part) THEN
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

-- Password hashes.  password_hash_problem (0004) is a PL/pgSQL function
-- with a pinned search_path: each call costs tens of microseconds, and a
-- written row paid it twice (the CHECK through password_hash_ok, and the
-- trigger).  password_hash_ok now accepts the two forms most hashes have
-- ({SHA512-CRYPT}/{CRYPT} $6$ without rounds=, {BLF-CRYPT}/{CRYPT} $2a/b/y$)
-- with plain string functions, inlined, and asks password_hash_problem
-- only about the rest.  Each test implies every test password_hash_problem
-- makes for that form, so the answer is the same
-- (tests/unit/pwhash_cases.tsv runs through both in trust_admin_test.sh).
CREATE OR REPLACE FUNCTION mailroster.password_hash_ok(p text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN p IS NOT NULL
       AND (CASE
                WHEN octet_length(p) > 512 THEN false
                -- {SHA512-CRYPT}$6$salt$hash, {CRYPT}$6$salt$hash: 1 to 16
                -- and 86 characters of [./0-9A-Za-z], one "$" between
                WHEN left(p, 17) = '{SHA512-CRYPT}$6$' OR left(p, 10) = '{CRYPT}$6$' THEN
                     translate(substr(p, strpos(p, '}') + 4),
                               './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', '') = '$'
                     AND octet_length(split_part(p, '$', 3)) BETWEEN 1 AND 16
                     AND octet_length(split_part(p, '$', 4)) = 86
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
                     AND translate(substr(p, strpos(p, '}') + 8),
                                   './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', '') = ''
                ELSE false
            END
            OR mailroster.password_hash_problem(p) IS NULL);

-- mailboxes_forward_to_check (0010) called are_addresses, a SQL function
-- with a subquery that is never inlined, for every row, forward_to empty
-- or not; the same check now calls it only for a non-empty list.
ALTER TABLE mailroster.mailboxes DROP CONSTRAINT mailboxes_forward_to_check;
ALTER TABLE mailroster.mailboxes ADD CONSTRAINT mailboxes_forward_to_check
    CHECK (cardinality(forward_to) <= 1000
           AND (cardinality(forward_to) = 0 OR mailroster.are_addresses(forward_to, false)));

-- The row triggers that only act on some rows say which in WHEN, so the
-- other rows do not call them at all (a call of a PL/pgSQL function with a
-- pinned search_path costs more than most of their bodies): the password
-- trigger only names the fault of a hash password_hash_ok refuses; the
-- path check (0004) skips rows without home and mail or with
-- path_override; the forward check (0010) skips rows without forward_to.
DROP TRIGGER mailboxes_15_password ON mailroster.mailboxes;
CREATE TRIGGER mailboxes_15_password BEFORE INSERT OR UPDATE OF password ON mailroster.mailboxes
    FOR EACH ROW WHEN (NEW.password IS NOT NULL AND NOT mailroster.password_hash_ok(NEW.password))
    EXECUTE FUNCTION mailroster.tg_password_form();
DROP TRIGGER master_users_15_password ON mailroster.master_users;
CREATE TRIGGER master_users_15_password BEFORE INSERT OR UPDATE OF password ON mailroster.master_users
    FOR EACH ROW WHEN (NEW.password IS NOT NULL AND NOT mailroster.password_hash_ok(NEW.password))
    EXECUTE FUNCTION mailroster.tg_password_form();
DROP TRIGGER mailboxes_25_paths ON mailroster.mailboxes;
CREATE TRIGGER mailboxes_25_paths BEFORE INSERT OR UPDATE ON mailroster.mailboxes
    FOR EACH ROW WHEN (NOT NEW.path_override AND (NEW.home IS NOT NULL OR NEW.mail IS NOT NULL))
    EXECUTE FUNCTION mailroster.tg_mailbox_paths();
DROP TRIGGER mailboxes_40_forward ON mailroster.mailboxes;
CREATE TRIGGER mailboxes_40_forward BEFORE INSERT OR UPDATE OF forward_to, local_part, domain_id
    ON mailroster.mailboxes
    FOR EACH ROW WHEN (cardinality(NEW.forward_to) > 0)
    EXECUTE FUNCTION mailroster.tg_mailbox_forward();

------------------------------------------------------------------------------
-- 3. The set-based import
------------------------------------------------------------------------------

ALTER FUNCTION mailroster.import_jsonl(text, boolean) RENAME TO import_jsonl_rowwise;
REVOKE ALL ON FUNCTION mailroster.import_jsonl_rowwise(text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION mailroster.import_jsonl_rowwise(text, boolean) IS
    'The row-by-row import of migration 0010; import_jsonl runs it when its set-based checks find a fault, to name the line';

-- One parsed line of an import: the fields of every kind (null where the
-- kind has none), its canonical key, and sig: its keys with the JSON type
-- of each value, sorted ("address:s,disabled_reason:s,..."; s string,
-- b boolean, i whole number, a list of strings, o object, n null where the
-- key may not be null, x other; a null where it may be shows as the type
-- it may have).  extra: the line has keys of migration 0010 (or is a
-- transport); raw_ok: then whether 0010's wrapper would read them.
CREATE TYPE mailroster.import_line AS (
    ln int, kind text, key text, sig text, extra boolean, raw_ok boolean,
    lp text, dom text,
    name text, address text, password text, enabled boolean, disabled_reason text,
    may_send boolean, may_receive boolean, services text[],
    quota_bytes numeric, quota_messages numeric, send_limit_messages numeric,
    send_limit_recipients numeric, send_limit_window numeric,
    home text, mail text, uid numeric, gid numeric, maildir text,
    display_name text, metadata jsonb, forward_to text[], keep_copy boolean,
    destinations text[], login text, login_lp text, login_dom text,
    domains text[], pattern text, transport text);

CREATE FUNCTION mailroster.import_jsonl(p_lines text, p_dry_run boolean DEFAULT false)
    RETURNS TABLE (line int, action text, kind text, key text)
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    c_services CONSTANT text[] := '{imap,pop3,submission,lmtp,sieve}';
    c_i64 CONSTANT numeric := 9223372036854775807;
    c_i32 CONSTANT numeric := 2147483647;
    -- keys that may be null, by the type they have otherwise
    c_null_s CONSTANT text[] := '{domain.disabled_reason,mailbox.password,mailbox.disabled_reason,mailbox.home,mailbox.mail,mailbox.maildir,mailbox.display_name}';
    c_null_i CONSTANT text[] := '{mailbox.quota_bytes,mailbox.quota_messages,mailbox.send_limit_messages,mailbox.send_limit_recipients,mailbox.uid,mailbox.gid}';
    c_null_a CONSTANT text[] := '{master.domains}';
    -- the sig of each kind (a mailbox with or without each of 0010's four
    -- keys, an alias with or without may_send)
    c_sig_domain CONSTANT text := 'disabled_reason:s,enabled:b,kind:s,name:s,quota_bytes:i,quota_messages:i,send_limit_messages:i,send_limit_recipients:i,send_limit_window:i';
    c_sig_mailbox CONSTANT text[] := ARRAY(
        SELECT string_agg(k.key || ':' || k.t, ',' ORDER BY k.key COLLATE "C")
          FROM generate_series(0, 15) AS b(bits)
          CROSS JOIN (VALUES ('address', 's', -1), ('disabled_reason', 's', -1), ('display_name', 's', 0),
                             ('enabled', 'b', -1), ('forward_to', 'a', 1), ('gid', 'i', -1), ('home', 's', -1),
                             ('keep_copy', 'b', 2), ('kind', 's', -1), ('mail', 's', -1), ('maildir', 's', -1),
                             ('may_receive', 'b', -1), ('may_send', 'b', -1), ('metadata', 'o', 3),
                             ('password', 's', -1), ('quota_bytes', 'i', -1), ('quota_messages', 'i', -1),
                             ('send_limit_messages', 'i', -1), ('send_limit_recipients', 'i', -1),
                             ('services', 'a', -1), ('uid', 'i', -1)) AS k(key, t, bit)
         WHERE k.bit < 0 OR (b.bits >> k.bit) & 1 = 1
         GROUP BY b.bits);
    c_sig_alias CONSTANT text[] := '{"destinations:a,enabled:b,kind:s,source:s","destinations:a,enabled:b,kind:s,may_send:b,source:s"}';
    x      mailroster.import_line[];
    -- the answer (parallel arrays)
    r_ln     int[] := '{}';
    r_action text[] := '{}';
    r_kind   text[] := '{}';
    r_key    text[] := '{}';
    -- one kind's lines: line, action, key
    k_ln   int[];
    k_act  text[];
    k_key  text[];
    c_rows mailroster.import_line[];    -- its lines to create
    c_id   bigint[];                    -- ... with their domain / mailbox
    u_rows mailroster.import_line[];    -- its lines to update
    u_id   bigint[];                    -- ... with the row's id
    v_bad  boolean;
    v_done boolean := false;
    v_hash text;
    v_merge text;
BEGIN
    IF p_lines IS NULL THEN
        RAISE EXCEPTION 'import_jsonl: no input (p_lines is NULL)' USING ERRCODE = 'null_value_not_allowed';
    END IF;

    BEGIN
        PERFORM pg_catalog.pg_advisory_xact_lock(mailroster.directory_lock_key());

        -- Parse: every non-blank line (a byte order mark before line 1 is
        -- ignored, as the row-by-row import does), once.  Anything
        -- json_to_record cannot take raises, and the row-by-row import
        -- says why.
        x := ARRAY(
            SELECT ROW(c.n, c.kind, c.canon, c.sig, c.extra,
                       -- migration 0010's wrapper reads a line's extra keys
                       -- only when this matches; require what it requires
                       CASE WHEN c.extra THEN c.t ~ '"(kind|display_name|metadata|forward_to|keep_copy|may_send)"' END,
                       CASE WHEN a.at > 0 THEN left(c.canon, a.at - 1) END,
                       CASE WHEN a.at > 0 THEN substr(c.canon, a.at + 1) END,
                       c.name, c.address, c.password, c.enabled, c.disabled_reason,
                       c.may_send, c.may_receive, c.services,
                       c.quota_bytes, c.quota_messages, c.send_limit_messages,
                       c.send_limit_recipients, c.send_limit_window,
                       c.home, c.mail, c.uid, c.gid, c.maildir,
                       c.display_name,
                       -- (what jsonb refuses, the wrapper passes on as it is:
                       -- the cast raises, and the slow path decides)
                       CASE WHEN c.extra THEN (c.t::jsonb) -> 'metadata' END,
                       CASE WHEN c.forward_to IS NOT NULL
                            THEN ARRAY(SELECT lower(u.e COLLATE "C") FROM unnest(c.forward_to) WITH ORDINALITY u(e, o) ORDER BY u.o) END,
                       c.keep_copy,
                       CASE WHEN c.destinations IS NOT NULL
                            THEN ARRAY(SELECT lower(u.e COLLATE "C") FROM unnest(c.destinations) WITH ORDINALITY u(e, o) ORDER BY u.o) END,
                       lower(c.login COLLATE "C"),
                       CASE WHEN strpos(c.login, '@') > 0
                            THEN left(lower(c.login COLLATE "C"), length(c.login) - strpos(reverse(c.login), '@')) END,
                       CASE WHEN strpos(c.login, '@') > 0
                            THEN substr(lower(c.login COLLATE "C"), length(c.login) - strpos(reverse(c.login), '@') + 2) END,
                       CASE WHEN c.domains IS NOT NULL
                            THEN ARRAY(SELECT lower(u.e COLLATE "C") FROM unnest(c.domains) WITH ORDINALITY u(e, o) ORDER BY u.o) END,
                       c.pattern, c.transport)::mailroster.import_line
              FROM (SELECT q.n, q.t, s.sig, r.*,
                           r.kind = 'transport'
                           OR (r.kind = 'mailbox'
                               AND (strpos(s.sig, ',display_name:') > 0 OR strpos(s.sig, ',forward_to:') > 0
                                    OR strpos(s.sig, ',keep_copy:') > 0 OR strpos(s.sig, ',metadata:') > 0))
                           OR (r.kind = 'alias' AND strpos(s.sig, ',may_send:') > 0) AS extra,
                           CASE r.kind
                               WHEN 'domain' THEN lower(r.name COLLATE "C")
                               WHEN 'mailbox' THEN lower(r.address COLLATE "C")
                               WHEN 'alias' THEN lower(r.source COLLATE "C")
                               WHEN 'sender' THEN lower(r.address COLLATE "C") || ' ' || lower(r.login COLLATE "C")
                               WHEN 'master' THEN r.name
                               WHEN 'transport' THEN lower(r.pattern COLLATE "C")
                           END AS canon
                      FROM (SELECT u.n, u.t, u.t::json AS o      -- (OFFSET 0: parse each line once)
                              FROM (SELECT z.n::int AS n,
                                           CASE WHEN z.n = 1 THEN ltrim(z.t, chr(65279)) ELSE z.t END AS t
                                      FROM unnest(string_to_array(p_lines, E'\n')) WITH ORDINALITY AS z(t, n)) u
                             WHERE btrim(u.t, E' \t\r') <> ''      -- (the core's '^[ \t\r]*$')
                            OFFSET 0) q
                      CROSS JOIN LATERAL json_to_record(q.o) AS r(
                            kind text, name text, address text, source text, password text, enabled boolean,
                            disabled_reason text, may_send boolean, may_receive boolean, services text[],
                            quota_bytes numeric, quota_messages numeric, send_limit_messages numeric,
                            send_limit_recipients numeric, send_limit_window numeric,
                            home text, mail text, uid numeric, gid numeric, maildir text,
                            display_name text, forward_to text[], keep_copy boolean,
                            destinations text[], login text, domains text[], pattern text, transport text)
                      CROSS JOIN LATERAL (
                           SELECT string_agg(CASE WHEN strpos(e.key, ',') = 0 THEN e.key ELSE '?' END || ':' ||
                                      CASE json_typeof(e.value)
                                          WHEN 'string' THEN 's' WHEN 'boolean' THEN 'b'
                                          WHEN 'null' THEN
                                              CASE WHEN r.kind || '.' || e.key = ANY (c_null_s) THEN 's'
                                                   WHEN r.kind || '.' || e.key = ANY (c_null_i) THEN 'i'
                                                   WHEN r.kind || '.' || e.key = ANY (c_null_a) THEN 'a'
                                                   ELSE 'n' END
                                          WHEN 'object' THEN 'o'
                                          WHEN 'number' THEN CASE WHEN translate(e.value::text, '-0123456789', '') = '' THEN 'i' ELSE 'x' END   -- (-?[0-9]+)
                                          WHEN 'array' THEN
                                              CASE WHEN EXISTS (SELECT 1 FROM json_array_elements(e.value) a
                                                                 WHERE json_typeof(a) <> 'string') THEN 'x' ELSE 'a' END
                                          ELSE 'x' END,
                                      ',' ORDER BY e.key COLLATE "C") AS sig
                             FROM json_each(q.o) e) s
                    OFFSET 0) c
              CROSS JOIN LATERAL (SELECT CASE WHEN strpos(c.canon, '@') > 0
                                             THEN length(c.canon) - strpos(reverse(c.canon), '@') + 1 ELSE 0 END AS at) a
             ORDER BY c.n);

        -- Check: every line exactly as strict as the row-by-row import (or
        -- stricter: that only costs the slow path).
        SELECT bool_or(NOT coalesce(CASE r.kind
            WHEN 'domain' THEN
                r.sig = c_sig_domain
                AND mailroster.is_domain_name(r.key)
                AND r.quota_bytes BETWEEN 0 AND c_i64 AND r.quota_messages BETWEEN 0 AND c_i64
                AND r.send_limit_messages BETWEEN 0 AND c_i32 AND r.send_limit_recipients BETWEEN 0 AND c_i32
                AND r.send_limit_window BETWEEN 1 AND c_i32
            WHEN 'mailbox' THEN
                r.sig = ANY (c_sig_mailbox) AND coalesce(r.raw_ok, true)
                AND mailroster.is_domain_name(r.dom) AND mailroster.is_mailbox_local_part(r.lp)
                AND octet_length(r.key) <= 254
                AND (r.password IS NULL OR mailroster.is_password_hash(r.password))
                AND coalesce(r.quota_bytes BETWEEN 0 AND c_i64, true)
                AND coalesce(r.quota_messages BETWEEN 0 AND c_i64, true)
                AND coalesce(r.send_limit_messages BETWEEN 0 AND c_i32, true)
                AND coalesce(r.send_limit_recipients BETWEEN 0 AND c_i32, true)
                AND coalesce(r.uid BETWEEN 1 AND c_i32, true) AND coalesce(r.gid BETWEEN 1 AND c_i32, true)
                AND coalesce(r.services, '{}') <@ c_services
                AND (r.maildir IS NULL
                     OR (r.maildir ~ '^[^/].*/$' AND r.maildir !~ '(^|/)\.{1,2}/'
                         AND strpos(r.maildir, '//') = 0 AND r.maildir !~ '[\x01-\x1f\x7f]'))
                AND (r.home IS NULL OR (r.home ~ '^/' AND r.home !~ '[\x01-\x1f\x7f]'))
                AND (r.forward_to IS NULL OR mailroster.are_addresses(r.forward_to, false))
            WHEN 'alias' THEN
                r.sig = ANY (c_sig_alias) AND coalesce(r.raw_ok, true)
                AND mailroster.is_domain_name(r.dom)
                AND (r.lp = '' OR mailroster.is_mailbox_local_part(r.lp))
                AND octet_length(r.key) <= 254
                AND cardinality(r.destinations) BETWEEN 1 AND 1000
                AND mailroster.are_addresses(r.destinations, true)
                AND NOT r.key = ANY (r.destinations)
            WHEN 'sender' THEN
                r.sig = 'address:s,kind:s,login:s'
                AND mailroster.is_address(lower(r.address COLLATE "C"), true)
                AND mailroster.is_domain_name(r.login_dom) AND mailroster.is_mailbox_local_part(r.login_lp)
                AND octet_length(r.login) <= 254
            WHEN 'master' THEN
                r.sig = 'domains:a,enabled:b,kind:s,name:s,password:s'
                AND octet_length(r.key) BETWEEN 1 AND 254
                AND r.key !~ '[\x01-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]'
                AND mailroster.is_password_hash(r.password)
                AND (r.domains IS NULL OR mailroster.are_domain_names(r.domains))
            WHEN 'transport' THEN
                r.sig = 'enabled:b,kind:s,pattern:s,transport:s' AND r.raw_ok
                AND mailroster.is_transport_pattern(r.key)
            END, false))
          INTO v_bad
          FROM unnest(x) r;
        -- the same object twice; an address both a mailbox and an alias
        IF v_bad OR EXISTS (SELECT 1 FROM unnest(x) r
                             GROUP BY CASE WHEN r.kind IN ('mailbox', 'alias') THEN 'address' ELSE r.kind END, r.key
                            HAVING count(*) > 1) THEN
            RAISE EXCEPTION 'a line needs a closer look' USING ERRCODE = 'MRSLW';
        END IF;

        -- Apply, kind by kind in dependency order.  For each kind one
        -- statement reads what is stored and decides each line's action;
        -- then one INSERT of the new rows and one UPDATE of the changed
        -- ones, both in line order (new ids follow the lines, as they did).
        -- The UPDATEs walk the lines in a nested loop over the table's
        -- index, so their change-log rows follow the lines too.
        v_hash := current_setting('enable_hashjoin');
        v_merge := current_setting('enable_mergejoin');

        -- Domains.
        SELECT array_agg(w.ln ORDER BY w.ln), array_agg(w.act ORDER BY w.ln), array_agg(w.key ORDER BY w.ln),
               array_agg(w.r ORDER BY w.ln) FILTER (WHERE w.act = 'created'),
               array_agg(w.r ORDER BY w.ln) FILTER (WHERE w.act = 'updated'),
               array_agg(w.id ORDER BY w.ln) FILTER (WHERE w.act = 'updated')
          INTO k_ln, k_act, k_key, c_rows, u_rows, u_id
          FROM (SELECT r.ln, r.key, r, d.id,
                       CASE WHEN d.id IS NULL THEN 'created'
                            WHEN (d.enabled, d.disabled_reason, d.quota_bytes, d.quota_messages,
                                  d.send_limit_messages, d.send_limit_recipients, d.send_limit_window)
                                 IS DISTINCT FROM
                                 (r.enabled, r.disabled_reason, r.quota_bytes::bigint, r.quota_messages::bigint,
                                  r.send_limit_messages::int, r.send_limit_recipients::int, r.send_limit_window::int)
                            THEN 'updated' ELSE 'unchanged' END AS act
                  FROM unnest(x) r LEFT JOIN mailroster.domains d ON d.name = r.key
                 WHERE r.kind = 'domain') w;
        IF k_ln IS NOT NULL THEN
            INSERT INTO mailroster.domains (name, enabled, disabled_reason, quota_bytes, quota_messages,
                                            send_limit_messages, send_limit_recipients, send_limit_window)
            SELECT r.key, r.enabled, r.disabled_reason, r.quota_bytes, r.quota_messages,
                   r.send_limit_messages, r.send_limit_recipients, r.send_limit_window
              FROM unnest(c_rows) r ORDER BY r.ln;
            PERFORM set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true);
            UPDATE mailroster.domains d
               SET enabled = s.enabled, disabled_reason = s.disabled_reason,
                   quota_bytes = s.quota_bytes, quota_messages = s.quota_messages,
                   send_limit_messages = s.send_limit_messages,
                   send_limit_recipients = s.send_limit_recipients,
                   send_limit_window = s.send_limit_window
              FROM (SELECT r.*, u_id[r.ordinality] AS row_id FROM unnest(u_rows) WITH ORDINALITY AS r) s
             WHERE d.id = s.row_id;
            PERFORM set_config('enable_hashjoin', v_hash, true), set_config('enable_mergejoin', v_merge, true);
            r_ln := r_ln || k_ln; r_action := r_action || k_act; r_key := r_key || k_key;
            r_kind := r_kind || array_fill('domain'::text, ARRAY[cardinality(k_ln)]);
        END IF;

        -- Mailboxes.  A missing domain is the slow path's to name.
        SELECT array_agg(w.ln ORDER BY w.ln), array_agg(w.act ORDER BY w.ln), array_agg(w.key ORDER BY w.ln),
               bool_or(w.did IS NULL),
               array_agg(w.r ORDER BY w.ln) FILTER (WHERE w.act = 'created'),
               array_agg(w.did ORDER BY w.ln) FILTER (WHERE w.act = 'created'),
               array_agg(w.r ORDER BY w.ln) FILTER (WHERE w.act = 'updated'),
               array_agg(w.id ORDER BY w.ln) FILTER (WHERE w.act = 'updated')
          INTO k_ln, k_act, k_key, v_bad, c_rows, c_id, u_rows, u_id
          FROM (SELECT r.ln, r.key, r, d.id AS did, m.id,
                       CASE WHEN m.id IS NULL THEN 'created'
                            WHEN (m.password, m.enabled, m.disabled_reason, m.may_send, m.may_receive,
                                  m.services, m.quota_bytes, m.quota_messages, m.send_limit_messages,
                                  m.send_limit_recipients, m.home, m.mail, m.uid, m.gid, m.maildir)
                                 IS DISTINCT FROM
                                 (r.password, r.enabled, r.disabled_reason, r.may_send, r.may_receive,
                                  r.services, r.quota_bytes::bigint, r.quota_messages::bigint,
                                  r.send_limit_messages::int, r.send_limit_recipients::int, r.home, r.mail,
                                  r.uid::int, r.gid::int, coalesce(r.maildir, m.maildir))
                            THEN 'updated' ELSE 'unchanged' END AS act
                  FROM unnest(x) r
                  LEFT JOIN mailroster.domains d ON d.name = r.dom
                  LEFT JOIN mailroster.mailboxes m ON m.domain_id = d.id AND m.local_part = r.lp
                 WHERE r.kind = 'mailbox') w;
        IF v_bad THEN
            RAISE EXCEPTION 'a mailbox without its domain' USING ERRCODE = 'MRSLW';
        END IF;
        IF k_ln IS NOT NULL THEN
            INSERT INTO mailroster.mailboxes (domain_id, local_part, password, enabled, disabled_reason,
                                              may_send, may_receive, services, quota_bytes, quota_messages,
                                              send_limit_messages, send_limit_recipients, home, mail,
                                              uid, gid, maildir)
            SELECT s.did, s.lp, s.password, s.enabled, s.disabled_reason, s.may_send,
                   s.may_receive, s.services, s.quota_bytes, s.quota_messages,
                   s.send_limit_messages, s.send_limit_recipients, s.home, s.mail,
                   s.uid, s.gid, s.maildir
              FROM (SELECT r.*, c_id[r.ordinality] AS did FROM unnest(c_rows) WITH ORDINALITY AS r) s ORDER BY s.ln;
            PERFORM set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true);
            UPDATE mailroster.mailboxes m
               SET password = s.password, enabled = s.enabled, disabled_reason = s.disabled_reason,
                   may_send = s.may_send, may_receive = s.may_receive, services = s.services,
                   quota_bytes = s.quota_bytes, quota_messages = s.quota_messages,
                   send_limit_messages = s.send_limit_messages,
                   send_limit_recipients = s.send_limit_recipients,
                   home = s.home, mail = s.mail, uid = s.uid, gid = s.gid,
                   maildir = coalesce(s.maildir, m.maildir)
              FROM (SELECT r.*, u_id[r.ordinality] AS row_id FROM unnest(u_rows) WITH ORDINALITY AS r) s
             WHERE m.id = s.row_id;
            PERFORM set_config('enable_hashjoin', v_hash, true), set_config('enable_mergejoin', v_merge, true);
            r_ln := r_ln || k_ln; r_action := r_action || k_act; r_key := r_key || k_key;
            r_kind := r_kind || array_fill('mailbox'::text, ARRAY[cardinality(k_ln)]);
        END IF;

        -- Aliases.
        SELECT array_agg(w.ln ORDER BY w.ln), array_agg(w.act ORDER BY w.ln), array_agg(w.key ORDER BY w.ln),
               bool_or(w.did IS NULL),
               array_agg(w.r ORDER BY w.ln) FILTER (WHERE w.act = 'created'),
               array_agg(w.did ORDER BY w.ln) FILTER (WHERE w.act = 'created'),
               array_agg(w.r ORDER BY w.ln) FILTER (WHERE w.act = 'updated'),
               array_agg(w.id ORDER BY w.ln) FILTER (WHERE w.act = 'updated')
          INTO k_ln, k_act, k_key, v_bad, c_rows, c_id, u_rows, u_id
          FROM (SELECT r.ln, r.key, r, d.id AS did, a.id,
                       CASE WHEN a.id IS NULL THEN 'created'
                            WHEN (a.destinations, a.enabled) IS DISTINCT FROM (r.destinations, r.enabled)
                            THEN 'updated' ELSE 'unchanged' END AS act
                  FROM unnest(x) r
                  LEFT JOIN mailroster.domains d ON d.name = r.dom
                  LEFT JOIN mailroster.aliases a ON a.domain_id = d.id AND a.local_part = r.lp
                 WHERE r.kind = 'alias') w;
        IF v_bad THEN
            RAISE EXCEPTION 'an alias without its domain' USING ERRCODE = 'MRSLW';
        END IF;
        IF k_ln IS NOT NULL THEN
            INSERT INTO mailroster.aliases (domain_id, local_part, destinations, enabled)
            SELECT s.did, s.lp, s.destinations, s.enabled
              FROM (SELECT r.*, c_id[r.ordinality] AS did FROM unnest(c_rows) WITH ORDINALITY AS r) s ORDER BY s.ln;
            PERFORM set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true);
            UPDATE mailroster.aliases a
               SET destinations = s.destinations, enabled = s.enabled
              FROM (SELECT r.*, u_id[r.ordinality] AS row_id FROM unnest(u_rows) WITH ORDINALITY AS r) s
             WHERE a.id = s.row_id;
            PERFORM set_config('enable_hashjoin', v_hash, true), set_config('enable_mergejoin', v_merge, true);
            r_ln := r_ln || k_ln; r_action := r_action || k_act; r_key := r_key || k_key;
            r_kind := r_kind || array_fill('alias'::text, ARRAY[cardinality(k_ln)]);
        END IF;

        -- Senders: the login must be a mailbox by now.
        SELECT array_agg(w.ln ORDER BY w.ln), array_agg(w.act ORDER BY w.ln), array_agg(w.key ORDER BY w.ln),
               bool_or(w.mid IS NULL),
               array_agg(w.r ORDER BY w.ln) FILTER (WHERE w.act = 'created'),
               array_agg(w.mid ORDER BY w.ln) FILTER (WHERE w.act = 'created')
          INTO k_ln, k_act, k_key, v_bad, c_rows, c_id
          FROM (SELECT r.ln, r.key, r, m.id AS mid,
                       CASE WHEN EXISTS (SELECT 1 FROM mailroster.sender_addresses s
                                          WHERE s.address = lower(r.address COLLATE "C") AND s.mailbox_id = m.id)
                            THEN 'unchanged' ELSE 'created' END AS act
                  FROM unnest(x) r
                  LEFT JOIN mailroster.domains d ON d.name = r.login_dom
                  LEFT JOIN mailroster.mailboxes m ON m.domain_id = d.id AND m.local_part = r.login_lp
                 WHERE r.kind = 'sender') w;
        IF v_bad THEN
            RAISE EXCEPTION 'a sender whose login is no mailbox' USING ERRCODE = 'MRSLW';
        END IF;
        IF k_ln IS NOT NULL THEN
            INSERT INTO mailroster.sender_addresses (mailbox_id, address)
            SELECT s.mid, lower(s.address COLLATE "C")
              FROM (SELECT r.*, c_id[r.ordinality] AS mid FROM unnest(c_rows) WITH ORDINALITY AS r) s ORDER BY s.ln;
            r_ln := r_ln || k_ln; r_action := r_action || k_act; r_key := r_key || k_key;
            r_kind := r_kind || array_fill('sender'::text, ARRAY[cardinality(k_ln)]);
        END IF;

        -- Master users.
        SELECT array_agg(w.ln ORDER BY w.ln), array_agg(w.act ORDER BY w.ln), array_agg(w.key ORDER BY w.ln),
               array_agg(w.r ORDER BY w.ln) FILTER (WHERE w.act = 'created'),
               array_agg(w.r ORDER BY w.ln) FILTER (WHERE w.act = 'updated'),
               array_agg(w.id ORDER BY w.ln) FILTER (WHERE w.act = 'updated')
          INTO k_ln, k_act, k_key, c_rows, u_rows, u_id
          FROM (SELECT r.ln, r.key, r, u.id,
                       CASE WHEN u.id IS NULL THEN 'created'
                            WHEN (u.password, u.enabled, u.domains) IS DISTINCT FROM (r.password, r.enabled, r.domains)
                            THEN 'updated' ELSE 'unchanged' END AS act
                  FROM unnest(x) r LEFT JOIN mailroster.master_users u ON u.name = r.key
                 WHERE r.kind = 'master') w;
        IF k_ln IS NOT NULL THEN
            INSERT INTO mailroster.master_users (name, password, enabled, domains)
            SELECT r.key, r.password, r.enabled, r.domains FROM unnest(c_rows) r ORDER BY r.ln;
            PERFORM set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true);
            UPDATE mailroster.master_users u
               SET password = s.password, enabled = s.enabled, domains = s.domains
              FROM (SELECT r.*, u_id[r.ordinality] AS row_id FROM unnest(u_rows) WITH ORDINALITY AS r) s
             WHERE u.id = s.row_id;
            PERFORM set_config('enable_hashjoin', v_hash, true), set_config('enable_mergejoin', v_merge, true);
            r_ln := r_ln || k_ln; r_action := r_action || k_act; r_key := r_key || k_key;
            r_kind := r_kind || array_fill('master'::text, ARRAY[cardinality(k_ln)]);
        END IF;

        -- Migration 0010's fields, after the core as there: a mailbox or
        -- alias line they change is "updated".
        PERFORM set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true);
        WITH ch AS (
            UPDATE mailroster.mailboxes m
               SET display_name = CASE WHEN strpos(s.sig, ',display_name:') > 0 THEN s.display_name ELSE m.display_name END,
                   metadata = coalesce(s.metadata, m.metadata),
                   forward_to = coalesce(s.forward_to, m.forward_to),
                   keep_copy = coalesce(s.keep_copy, m.keep_copy)
              FROM (SELECT d.id AS did, r.* FROM unnest(x) r JOIN mailroster.domains d ON d.name = r.dom
                     WHERE r.kind = 'mailbox' AND r.extra
                     ORDER BY r.ln) s
             WHERE m.domain_id = s.did AND m.local_part = s.lp
               AND (m.display_name, m.metadata, m.forward_to, m.keep_copy) IS DISTINCT FROM
                   (CASE WHEN strpos(s.sig, ',display_name:') > 0 THEN s.display_name ELSE m.display_name END,
                    coalesce(s.metadata, m.metadata), coalesce(s.forward_to, m.forward_to),
                    coalesce(s.keep_copy, m.keep_copy))
            RETURNING s.ln)
        SELECT array_agg(ch.ln) INTO k_ln FROM ch;
        WITH ch AS (
            UPDATE mailroster.aliases a
               SET may_send = s.may_send
              FROM (SELECT d.id AS did, r.* FROM unnest(x) r JOIN mailroster.domains d ON d.name = r.dom
                     WHERE r.kind = 'alias' AND r.may_send IS NOT NULL ORDER BY r.ln) s
             WHERE a.domain_id = s.did AND a.local_part = s.lp AND a.may_send IS DISTINCT FROM s.may_send
            RETURNING s.ln)
        SELECT coalesce(k_ln, '{}') || array_agg(ch.ln) INTO k_ln FROM ch;
        PERFORM set_config('enable_hashjoin', v_hash, true), set_config('enable_mergejoin', v_merge, true);
        IF cardinality(k_ln) > 0 THEN
            r_action := ARRAY(SELECT CASE WHEN u.a = 'unchanged' AND c.ln IS NOT NULL THEN 'updated' ELSE u.a END
                                FROM unnest(r_ln, r_action) WITH ORDINALITY AS u(l, a, o)
                                LEFT JOIN unnest(k_ln) AS c(ln) ON c.ln = u.l
                               ORDER BY u.o);
        END IF;

        -- Transports.
        SELECT array_agg(w.ln ORDER BY w.ln), array_agg(w.act ORDER BY w.ln), array_agg(w.key ORDER BY w.ln),
               array_agg(w.r ORDER BY w.ln) FILTER (WHERE w.act = 'created'),
               array_agg(w.r ORDER BY w.ln) FILTER (WHERE w.act = 'updated'),
               array_agg(w.id ORDER BY w.ln) FILTER (WHERE w.act = 'updated')
          INTO k_ln, k_act, k_key, c_rows, u_rows, u_id
          FROM (SELECT r.ln, r.key, r, t.id,
                       CASE WHEN t.id IS NULL THEN 'created'
                            WHEN (t.transport, t.enabled) IS DISTINCT FROM (r.transport, r.enabled)
                            THEN 'updated' ELSE 'unchanged' END AS act
                  FROM unnest(x) r LEFT JOIN mailroster.transports t ON t.pattern = r.key
                 WHERE r.kind = 'transport') w;
        IF k_ln IS NOT NULL THEN
            INSERT INTO mailroster.transports (pattern, transport, enabled)
            SELECT r.key, r.transport, r.enabled FROM unnest(c_rows) r ORDER BY r.ln;
            PERFORM set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true);
            UPDATE mailroster.transports t
               SET transport = s.transport, enabled = s.enabled
              FROM (SELECT r.*, u_id[r.ordinality] AS row_id FROM unnest(u_rows) WITH ORDINALITY AS r) s
             WHERE t.id = s.row_id;
            PERFORM set_config('enable_hashjoin', v_hash, true), set_config('enable_mergejoin', v_merge, true);
            r_ln := r_ln || k_ln; r_action := r_action || k_act; r_key := r_key || k_key;
            r_kind := r_kind || array_fill('transport'::text, ARRAY[cardinality(k_ln)]);
        END IF;

        v_done := true;
        IF p_dry_run THEN
            RAISE EXCEPTION 'dry run' USING ERRCODE = 'MRDRY';
        END IF;
    EXCEPTION
        WHEN SQLSTATE 'MRDRY' THEN
            NULL;           -- the dry run: everything above is undone
        WHEN OTHERS THEN
            v_done := false;   -- undone; the row-by-row import says what is wrong
    END;

    IF NOT v_done THEN
        RETURN QUERY SELECT * FROM mailroster.import_jsonl_rowwise(p_lines, p_dry_run);
        RETURN;
    END IF;
    RETURN QUERY
    SELECT u.ln, u.act, u.knd, u.ky
      FROM unnest(r_ln, r_action, r_kind, r_key) AS u(ln, act, knd, ky)
     ORDER BY u.ln;
END
$fn$;
COMMENT ON FUNCTION mailroster.import_jsonl(text, boolean) IS
    'JSON lines (migration 0002, with migration 0010''s fields and transport lines) into the directory, set-based; a file with a fault goes through import_jsonl_rowwise, which names it. See migrations 0002, 0010, 0012';
REVOKE ALL ON FUNCTION mailroster.import_jsonl(text, boolean) FROM PUBLIC;

INSERT INTO mailroster.schema_version (version, description)
VALUES (12, 'change log per statement; set-based import');

COMMIT;
