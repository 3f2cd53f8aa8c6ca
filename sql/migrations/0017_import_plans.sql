-- mailroster migration 0017: imports and catch-ups that do not depend on
-- the planner's statistics being current.
--
-- Apply with:  psql -v ON_ERROR_STOP=1 -X -d DB -f sql/migrations/0017_import_plans.sql
-- (as the schema owner; then run sql/roles.sql).  One transaction.
--
-- A table whose rows were all deleted and which was then vacuumed while
-- a reader held it (so that its pages stayed) has statistics that say
-- "no rows" whatever it holds until the next ANALYZE.  The planner then
-- took the import's lookup of each line's stored row ("the mailbox with
-- this domain and local part") as a scan of the whole (domain_id,
-- local_part) index by local part alone, once for every line: 100,000
-- lines took minutes, not seconds.  After such an import, a second one
-- into the same table (display names, senders) read its 100,000 new rows
-- as though there were none.  Now:
--
-- - import_jsonl_input looks up each line's stored mailbox or alias by
--   both key columns, one index probe per line, in a LATERAL subquery
--   the planner cannot turn around or merge away;
-- - import_fresh_stats(mailboxes, aliases) runs ANALYZE on mailboxes or
--   aliases when the statistics say the table is empty while it has
--   pages on disk, or say far fewer rows than the caller knows are there;
--   the import calls it before it applies the lines, and again after its
--   mailbox INSERT when later statements read those rows.  (ANALYZE
--   counts the rows the import's own transaction inserted.)
--
-- mailrosterd's catch-up query after a change is fixed the same way (in
-- postfix-policyd/db.c: each changed row by its key, in a LATERAL
-- subquery).

\set ON_ERROR_STOP 1

BEGIN;

DO $guard$
BEGIN
    IF (SELECT max(version) FROM mailroster.schema_version) <> 16 THEN
        RAISE EXCEPTION 'migration 0017 needs schema version 16';
    END IF;
END
$guard$;

------------------------------------------------------------------------------
-- 1. Statistics counted again when they would mislead
------------------------------------------------------------------------------

-- p_mailboxes, p_aliases: rows of each table the caller knows are there
-- now (0: none known).  ANALYZE a table when its statistics say 1,000 or
-- more rows fewer than that, or none at all while it has 100 pages or
-- more on disk.  Cheap when nothing is wrong: two rows of pg_class.
CREATE FUNCTION mailroster.import_fresh_stats(p_mailboxes bigint, p_aliases bigint)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    v_tuples real;
    v_pages int;
BEGIN
    SELECT c.reltuples, c.relpages INTO v_tuples, v_pages FROM pg_catalog.pg_class c
     WHERE c.oid = 'mailroster.mailboxes'::regclass;
    IF v_tuples >= 0 AND (p_mailboxes - v_tuples >= 1000 OR (v_tuples = 0 AND v_pages >= 100)) THEN
        ANALYZE mailroster.mailboxes;
    END IF;
    SELECT c.reltuples, c.relpages INTO v_tuples, v_pages FROM pg_catalog.pg_class c
     WHERE c.oid = 'mailroster.aliases'::regclass;
    IF v_tuples >= 0 AND (p_aliases - v_tuples >= 1000 OR (v_tuples = 0 AND v_pages >= 100)) THEN
        ANALYZE mailroster.aliases;
    END IF;
END
$fn$;
REVOKE ALL ON FUNCTION mailroster.import_fresh_stats(bigint, bigint) FROM PUBLIC;
COMMENT ON FUNCTION mailroster.import_fresh_stats(bigint, bigint) IS
    'ANALYZE mailboxes or aliases when an import is about to use that many of their rows and the statistics say fewer; see migration 0017';

------------------------------------------------------------------------------
-- 2. The import: stored rows looked up by both key columns
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION mailroster.import_jsonl_input(p_dry_run boolean DEFAULT false)
    RETURNS TABLE (line int, action text, kind text, key text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
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
    -- the keys of a mailbox line, an alias line (without those of migration 0010)
    c_mb_keys CONSTANT text[] := '{kind,address,password,enabled,disabled_reason,may_send,may_receive,services,quota_bytes,quota_messages,send_limit_messages,send_limit_recipients,home,mail,uid,gid,maildir}';
    c_al_keys CONSTANT text[] := '{kind,source,destinations,enabled}';
    -- the sig of each kind (see migration 0012)
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
    -- a dry run's answer (parallel arrays: they outlive the rollback)
    r_ln     int[];
    r_action text[];
    r_kind   text[];
    r_key    text[];
    k_ln   int[];
    -- lines of each kind; rows a kind's UPDATE changes
    n_domain bigint; n_mailbox bigint; n_alias bigint; n_sender bigint; n_master bigint; n_transport bigint;
    n_mb_extra bigint; n_al_extra bigint;
    n_upd  bigint;
    v_done boolean := false;
    v_hash text;
    v_merge text;
BEGIN
    -- The lines: pg_temp.mr_import_input, made by import_input_open() and
    -- filled by the caller, numbered 1, 2, ... as they came (blank ones
    -- too, so that the numbers are the file's).
    IF to_regclass('pg_temp.mr_import_input') IS NULL THEN
        RAISE EXCEPTION 'import_jsonl_input: no input (call mailroster.import_input_open() and fill pg_temp.mr_import_input first)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF EXISTS (SELECT 1 FROM (SELECT count(*) AS c, min(z.n) AS lo, max(z.n) AS hi FROM pg_temp.mr_import_input z) s
                WHERE s.c > 0 AND (s.lo <> 1 OR s.hi <> s.c)) THEN
        RAISE EXCEPTION 'import_jsonl_input: the lines of pg_temp.mr_import_input must be numbered 1 to N, each once'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    BEGIN
        PERFORM pg_catalog.pg_advisory_xact_lock(mailroster.directory_lock_key());

        -- The staging tables: the parsed and checked lines, and each
        -- line's answer.  (Made anew for each import; a table of that name
        -- the caller made is not ours to drop, and then the row-by-row
        -- import runs.)  A line that fails a check fails the CHECK, which
        -- undoes the block.
        IF to_regclass('pg_temp.mr_import_lines') IS NOT NULL THEN
            DROP TABLE pg_temp.mr_import_lines;
        END IF;
        IF to_regclass('pg_temp.mr_import_answer') IS NOT NULL THEN
            DROP TABLE pg_temp.mr_import_answer;
        END IF;
        CREATE TEMP TABLE mr_import_lines (
            ln int, kd text, ky text, extra boolean, has_dn boolean,
            lp text, dom text,
            name text, address text, password text, enabled boolean, disabled_reason text,
            may_send boolean, may_receive boolean, services text[],
            quota_bytes numeric, quota_messages numeric, send_limit_messages numeric,
            send_limit_recipients numeric, send_limit_window numeric,
            home text, mail text, uid numeric, gid numeric, maildir text,
            display_name text, metadata jsonb, forward_to text[], keep_copy boolean,
            destinations text[], login text, login_lp text, login_dom text,
            domains text[], pattern text, transport text, shape_ok boolean, raw_ok boolean,
            ok boolean CHECK (ok)) ON COMMIT DROP;
        CREATE TEMP TABLE mr_import_answer (ln int, act text, kd text, ky text, rid bigint) ON COMMIT DROP;

        -- Parse every non-blank line (a byte order mark before line 1 is
        -- ignored, as the row-by-row import does) into jsonb, once, and
        -- check it.  Anything jsonb or jsonb_to_record cannot take raises,
        -- and the row-by-row import says why.
        --
        -- shape_ok: the line has exactly its kind's keys, once each, with
        -- values of the right JSON types (0012's sig).  For the common
        -- mailbox and alias lines a cheaper test decides (fast): the kind's
        -- keys are all there (?&) and the line has as many ':' as the kind
        -- has keys.  Each key of the line, at any depth, has a ':' after it
        -- outside strings, so there is no other key, nested or not, and
        -- no second copy of one (which jsonb would drop).  Then the JSON
        -- type of each value, no number (jsonb reads 1e3 as 1000, where 0012
        -- wants digits) and lists of strings only.  Lines it does not
        -- decide get 0012's sig from the text.
        --
        -- ok: the checks of 0012, exactly as strict as the row-by-row
        -- import, or stricter (that only costs the slow path).  Domain
        -- names and local parts of mailboxes are left to the tables: a
        -- name the row-by-row import would refuse is not in domains, so
        -- its lines find no domain (the slow path's to name), and a new
        -- one fails domains_name_check; a mailbox's local part is checked
        -- by mailboxes_local_part_check.
        WITH ins AS (
        INSERT INTO pg_temp.mr_import_lines
        SELECT v.*,
               coalesce(v.shape_ok AND CASE v.kd
                   WHEN 'domain' THEN
                       v.quota_bytes BETWEEN 0 AND c_i64 AND v.quota_messages BETWEEN 0 AND c_i64
                       AND v.send_limit_messages BETWEEN 0 AND c_i32 AND v.send_limit_recipients BETWEEN 0 AND c_i32
                       AND v.send_limit_window BETWEEN 1 AND c_i32
                   WHEN 'mailbox' THEN
                       coalesce(v.raw_ok, true)
                       AND octet_length(v.ky) <= 254
                       -- (is_password_hash: implied by password_hash_ok,
                       -- which mailboxes_password_check asks of a written row)
                       AND coalesce(v.quota_bytes BETWEEN 0 AND c_i64, true)
                       AND coalesce(v.quota_messages BETWEEN 0 AND c_i64, true)
                       AND coalesce(v.send_limit_messages BETWEEN 0 AND c_i32, true)
                       AND coalesce(v.send_limit_recipients BETWEEN 0 AND c_i32, true)
                       AND coalesce(v.uid BETWEEN 1 AND c_i32, true) AND coalesce(v.gid BETWEEN 1 AND c_i32, true)
                       AND coalesce(v.services, '{}') <@ c_services
                       AND (v.maildir IS NULL
                            OR (v.maildir ~ '^[^/].*/$' AND v.maildir !~ '(^|/)\.{1,2}/'
                                AND strpos(v.maildir, '//') = 0 AND v.maildir !~ '[\x01-\x1f\x7f]'))
                       AND (v.home IS NULL OR (v.home ~ '^/' AND v.home !~ '[\x01-\x1f\x7f]'))
                       AND (v.forward_to IS NULL OR mailroster.are_addresses(v.forward_to, false))
                   WHEN 'alias' THEN
                       coalesce(v.raw_ok, true)
                       AND v.dom IS NOT NULL
                       AND (v.lp = '' OR mailroster.is_mailbox_local_part(v.lp))
                       AND octet_length(v.ky) <= 254
                       AND cardinality(v.destinations) BETWEEN 1 AND 1000
                       AND mailroster.are_addresses(v.destinations, true)
                       AND NOT v.ky = ANY (v.destinations)
                   WHEN 'sender' THEN
                       mailroster.is_address(lower(v.address COLLATE "C"), true)
                       AND v.login_dom IS NOT NULL
                       AND octet_length(v.login) <= 254
                   WHEN 'master' THEN
                       octet_length(v.ky) BETWEEN 1 AND 254
                       AND v.ky !~ '[\x01-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]'
                       AND mailroster.is_password_hash(v.password)
                       AND (v.domains IS NULL OR mailroster.are_domain_names(v.domains))
                   WHEN 'transport' THEN
                       v.raw_ok AND mailroster.is_transport_pattern(v.ky)
                   END, false)
          FROM (
        SELECT c.n AS ln, c.kind AS kd, c.canon AS ky, c.extra, c.j ? 'display_name' AS has_dn,
               CASE WHEN a.at > 0 THEN left(c.canon, a.at - 1) END AS lp,
               CASE WHEN a.at > 0 THEN substr(c.canon, a.at + 1) END AS dom,
               c.name, c.address, c.password, c.enabled, c.disabled_reason,
               c.may_send, c.may_receive, c.services,
               c.quota_bytes, c.quota_messages, c.send_limit_messages,
               c.send_limit_recipients, c.send_limit_window,
               c.home, c.mail, c.uid, c.gid, c.maildir,
               c.display_name,
               CASE WHEN c.extra THEN c.j -> 'metadata' END AS metadata,
               CASE WHEN c.forward_to IS NOT NULL
                    THEN ARRAY(SELECT lower(u.e COLLATE "C") FROM unnest(c.forward_to) WITH ORDINALITY u(e, o) ORDER BY u.o) END AS forward_to,
               c.keep_copy,
               CASE WHEN c.destinations IS NOT NULL
                    THEN ARRAY(SELECT lower(u.e COLLATE "C") FROM unnest(c.destinations) WITH ORDINALITY u(e, o) ORDER BY u.o) END AS destinations,
               lower(c.login COLLATE "C") AS login,
               CASE WHEN strpos(c.login, '@') > 0
                    THEN left(lower(c.login COLLATE "C"), length(c.login) - strpos(reverse(c.login), '@')) END AS login_lp,
               CASE WHEN strpos(c.login, '@') > 0
                    THEN substr(lower(c.login COLLATE "C"), length(c.login) - strpos(reverse(c.login), '@') + 2) END AS login_dom,
               CASE WHEN c.domains IS NOT NULL
                    THEN ARRAY(SELECT lower(u.e COLLATE "C") FROM unnest(c.domains) WITH ORDINALITY u(e, o) ORDER BY u.o) END AS domains,
               c.pattern, c.transport,
               CASE WHEN c.fast THEN true
                    ELSE coalesce((
                        SELECT CASE c.kind
                                   WHEN 'domain' THEN g.sig = c_sig_domain
                                   WHEN 'mailbox' THEN g.sig = ANY (c_sig_mailbox)
                                   WHEN 'alias' THEN g.sig = ANY (c_sig_alias)
                                   WHEN 'sender' THEN g.sig = 'address:s,kind:s,login:s'
                                   WHEN 'master' THEN g.sig = 'domains:a,enabled:b,kind:s,name:s,password:s'
                                   WHEN 'transport' THEN g.sig = 'enabled:b,kind:s,pattern:s,transport:s'
                               END
                          FROM (SELECT string_agg(CASE WHEN strpos(e.key, ',') = 0 THEN e.key ELSE '?' END || ':' ||
                                           CASE json_typeof(e.value)
                                               WHEN 'string' THEN 's' WHEN 'boolean' THEN 'b'
                                               WHEN 'null' THEN
                                                   CASE WHEN c.kind || '.' || e.key = ANY (c_null_s) THEN 's'
                                                        WHEN c.kind || '.' || e.key = ANY (c_null_i) THEN 'i'
                                                        WHEN c.kind || '.' || e.key = ANY (c_null_a) THEN 'a'
                                                        ELSE 'n' END
                                               WHEN 'object' THEN 'o'
                                               WHEN 'number' THEN CASE WHEN translate(e.value::text, '-0123456789', '') = '' THEN 'i' ELSE 'x' END
                                               WHEN 'array' THEN
                                                   CASE WHEN EXISTS (SELECT 1 FROM json_array_elements(e.value) a
                                                                      WHERE json_typeof(a) <> 'string') THEN 'x' ELSE 'a' END
                                               ELSE 'x' END,
                                           ',' ORDER BY e.key COLLATE "C") AS sig
                                  FROM json_each(c.t::json) e) g), false)
               END AS shape_ok,
               -- migration 0010's wrapper reads a line's extra keys only
               -- when this matches; require what it requires
               CASE WHEN c.extra THEN c.t ~ '"(kind|display_name|metadata|forward_to|keep_copy|may_send)"' END AS raw_ok
          FROM (SELECT q.n, q.t, q.j, r.*,
                       CASE r.kind
                           WHEN 'mailbox' THEN
                               q.j ?& c_mb_keys
                               AND octet_length(q.t) - octet_length(replace(q.t, ':', '')) = 17
                               AND jsonb_typeof(q.j -> 'kind') = 'string'
                               AND jsonb_typeof(q.j -> 'address') = 'string'
                               AND jsonb_typeof(q.j -> 'password') IN ('string', 'null')
                               AND jsonb_typeof(q.j -> 'enabled') = 'boolean'
                               AND jsonb_typeof(q.j -> 'disabled_reason') IN ('string', 'null')
                               AND jsonb_typeof(q.j -> 'may_send') = 'boolean'
                               AND jsonb_typeof(q.j -> 'may_receive') = 'boolean'
                               AND jsonb_typeof(q.j -> 'home') IN ('string', 'null')
                               AND jsonb_typeof(q.j -> 'mail') IN ('string', 'null')
                               AND jsonb_typeof(q.j -> 'maildir') IN ('string', 'null')
                               -- (nulls: a number, a string or a boolean
                               -- would not be null here)
                               AND r.quota_bytes IS NULL AND r.quota_messages IS NULL
                               AND r.send_limit_messages IS NULL AND r.send_limit_recipients IS NULL
                               AND r.uid IS NULL AND r.gid IS NULL
                               AND coalesce(array_ndims(r.services), 1) = 1 AND array_position(r.services, NULL) IS NULL
                               AND to_jsonb(r.services) = q.j -> 'services'
                           WHEN 'alias' THEN
                               q.j ?& c_al_keys
                               AND octet_length(q.t) - octet_length(replace(q.t, ':', '')) = 4
                               AND jsonb_typeof(q.j -> 'kind') = 'string'
                               AND jsonb_typeof(q.j -> 'source') = 'string'
                               AND jsonb_typeof(q.j -> 'enabled') = 'boolean'
                               AND coalesce(array_ndims(r.destinations), 1) = 1
                               AND array_position(r.destinations, NULL) IS NULL
                               AND to_jsonb(r.destinations) = q.j -> 'destinations'
                           ELSE false
                       END AS fast,
                       r.kind = 'transport'
                       OR (r.kind = 'mailbox'
                           AND (q.j ? 'display_name' OR q.j ? 'forward_to' OR q.j ? 'keep_copy' OR q.j ? 'metadata'))
                       OR (r.kind = 'alias' AND q.j ? 'may_send') AS extra,
                       CASE r.kind
                           WHEN 'domain' THEN lower(r.name COLLATE "C")
                           WHEN 'mailbox' THEN lower(r.address COLLATE "C")
                           WHEN 'alias' THEN lower(r.source COLLATE "C")
                           WHEN 'sender' THEN lower(r.address COLLATE "C") || ' ' || lower(r.login COLLATE "C")
                           WHEN 'master' THEN r.name
                           WHEN 'transport' THEN lower(r.pattern COLLATE "C")
                       END AS canon
                  FROM (SELECT u.n, u.t, u.t::jsonb AS j      -- (OFFSET 0: parse each line once)
                          FROM (SELECT z.n,
                                       CASE WHEN z.n = 1 THEN ltrim(z.t, chr(65279)) ELSE z.t END AS t
                                  FROM pg_temp.mr_import_input z) u
                         -- (the core's '^[ \t\r]*$'; btrim only of a line
                         -- that starts with one of them)
                         WHERE u.t <> '' AND (left(u.t, 1) NOT IN (' ', E'\t', E'\r') OR btrim(u.t, E' \t\r') <> '')
                        OFFSET 0) q
                  CROSS JOIN LATERAL jsonb_to_record(q.j) AS r(
                        kind text, name text, address text, source text, password text, enabled boolean,
                        disabled_reason text, may_send boolean, may_receive boolean, services text[],
                        quota_bytes numeric, quota_messages numeric, send_limit_messages numeric,
                        send_limit_recipients numeric, send_limit_window numeric,
                        home text, mail text, uid numeric, gid numeric, maildir text,
                        display_name text, forward_to text[], keep_copy boolean,
                        destinations text[], login text, domains text[], pattern text, transport text)
                OFFSET 0) c
          CROSS JOIN LATERAL (SELECT CASE WHEN strpos(c.canon, '@') > 0
                                         THEN length(c.canon) - strpos(reverse(c.canon), '@') + 1 ELSE 0 END AS at) a
               ) v
        RETURNING kd, extra, may_send)
        SELECT count(*) FILTER (WHERE ins.kd = 'domain'), count(*) FILTER (WHERE ins.kd = 'mailbox'),
               count(*) FILTER (WHERE ins.kd = 'alias'), count(*) FILTER (WHERE ins.kd = 'sender'),
               count(*) FILTER (WHERE ins.kd = 'master'), count(*) FILTER (WHERE ins.kd = 'transport'),
               count(*) FILTER (WHERE ins.kd = 'mailbox' AND ins.extra),
               count(*) FILTER (WHERE ins.kd = 'alias' AND ins.may_send IS NOT NULL)
          INTO n_domain, n_mailbox, n_alias, n_sender, n_master, n_transport, n_mb_extra, n_al_extra
          FROM ins;

        -- Apply, kind by kind in dependency order (a kind without lines is
        -- skipped).  For each kind one statement reads what is stored and
        -- decides each line's action (into mr_import_answer); then one
        -- INSERT of the new rows and one UPDATE of the changed ones, both
        -- in line order (new ids follow the lines, as they did).  The
        -- UPDATEs walk the lines in a nested loop over the table's index,
        -- so their change-log rows follow the lines too.
        v_hash := current_setting('enable_hashjoin');
        v_merge := current_setting('enable_mergejoin');

        -- Statistics that say a table is empty while it is not (see the
        -- header): counted again before the statements that read it.
        PERFORM mailroster.import_fresh_stats(0, 0);

        -- Domains.
        IF n_domain > 0 THEN
            WITH w AS MATERIALIZED (
                SELECT r.ln, r.ky, d.id,
                       CASE WHEN d.id IS NULL THEN 'created'
                            WHEN (d.enabled, d.disabled_reason, d.quota_bytes, d.quota_messages,
                                  d.send_limit_messages, d.send_limit_recipients, d.send_limit_window)
                                 IS DISTINCT FROM
                                 (r.enabled, r.disabled_reason, r.quota_bytes::bigint, r.quota_messages::bigint,
                                  r.send_limit_messages::int, r.send_limit_recipients::int, r.send_limit_window::int)
                            THEN 'updated' ELSE 'unchanged' END AS act,
                       r.enabled, r.disabled_reason, r.quota_bytes, r.quota_messages,
                       r.send_limit_messages, r.send_limit_recipients, r.send_limit_window
                  FROM pg_temp.mr_import_lines r LEFT JOIN mailroster.domains d ON d.name = r.ky
                 WHERE r.kd = 'domain'),
             a AS (INSERT INTO pg_temp.mr_import_answer (ln, act, kd, ky, rid)
                   SELECT w.ln, w.act, 'domain', w.ky, w.id FROM w),
             i AS (INSERT INTO mailroster.domains (name, enabled, disabled_reason, quota_bytes, quota_messages,
                                                   send_limit_messages, send_limit_recipients, send_limit_window)
                   SELECT w.ky, w.enabled, w.disabled_reason, w.quota_bytes, w.quota_messages,
                          w.send_limit_messages, w.send_limit_recipients, w.send_limit_window
                     FROM w WHERE w.act = 'created' ORDER BY w.ln)
            SELECT count(*) FILTER (WHERE w.act = 'updated') INTO n_upd FROM w;
            IF n_upd > 0 THEN
                PERFORM set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true);
                UPDATE mailroster.domains d
                   SET enabled = s.enabled, disabled_reason = s.disabled_reason,
                       quota_bytes = s.quota_bytes, quota_messages = s.quota_messages,
                       send_limit_messages = s.send_limit_messages,
                       send_limit_recipients = s.send_limit_recipients,
                       send_limit_window = s.send_limit_window
                  FROM (SELECT a.rid, r.* FROM pg_temp.mr_import_answer a JOIN pg_temp.mr_import_lines r ON r.ln = a.ln
                         WHERE a.kd = 'domain' AND a.act = 'updated' ORDER BY a.ln) s
                 WHERE d.id = s.rid;
                PERFORM set_config('enable_hashjoin', v_hash, true), set_config('enable_mergejoin', v_merge, true);
            END IF;
        END IF;

        -- Mailboxes.  A line whose domain is missing makes the INSERT fail
        -- (domain_id is NOT NULL), and the slow path names it.  The ids are
        -- drawn here, in line order, as the column default would; so the
        -- maildir the row check would make is made here, and the check
        -- itself is skipped for these rows (see the trigger above): its
        -- other tests are the import's own (the length), the foreign key's
        -- and the claim trigger's (an alias of that address).
        IF n_mailbox > 0 THEN
            PERFORM set_config('mailroster.bulk_import', 'on', true);
            WITH w AS MATERIALIZED (
                SELECT r.ln, r.ky, r.lp, d.id AS did, d.name AS dname, m.id AS mid,
                       CASE WHEN m.id IS NULL THEN 'created'
                            WHEN (m.password, m.enabled, m.disabled_reason, m.may_send, m.may_receive,
                                  m.services, m.quota_bytes, m.quota_messages, m.send_limit_messages,
                                  m.send_limit_recipients, m.home, m.mail, m.uid, m.gid, m.maildir)
                                 IS DISTINCT FROM
                                 (r.password, r.enabled, r.disabled_reason, r.may_send, r.may_receive,
                                  r.services, r.quota_bytes::bigint, r.quota_messages::bigint,
                                  r.send_limit_messages::int, r.send_limit_recipients::int, r.home, r.mail,
                                  r.uid::int, r.gid::int, coalesce(r.maildir, m.maildir))
                            THEN 'updated' ELSE 'unchanged' END AS act,
                       r.password, r.enabled, r.disabled_reason, r.may_send, r.may_receive, r.services,
                       r.quota_bytes, r.quota_messages, r.send_limit_messages, r.send_limit_recipients,
                       r.home, r.mail, r.uid, r.gid, r.maildir
                  FROM pg_temp.mr_import_lines r
                  LEFT JOIN mailroster.domains d ON d.name = r.dom
                  LEFT JOIN LATERAL (SELECT m.* FROM mailroster.mailboxes m
                                      WHERE m.domain_id = d.id AND m.local_part = r.lp OFFSET 0) m ON true
                 WHERE r.kd = 'mailbox'),
             a AS (INSERT INTO pg_temp.mr_import_answer (ln, act, kd, ky, rid)
                   SELECT w.ln, w.act, 'mailbox', w.ky, w.mid FROM w),
             i AS (INSERT INTO mailroster.mailboxes (id, domain_id, local_part, password, enabled, disabled_reason,
                                                     may_send, may_receive, services, quota_bytes, quota_messages,
                                                     send_limit_messages, send_limit_recipients, home, mail,
                                                     uid, gid, maildir)
                   SELECT s.id, s.did, s.lp, s.password, s.enabled, s.disabled_reason, s.may_send,
                          s.may_receive, s.services, s.quota_bytes, s.quota_messages,
                          s.send_limit_messages, s.send_limit_recipients, s.home, s.mail, s.uid, s.gid,
                          coalesce(s.maildir, s.dname || '/' || replace(s.lp, '/', '_') || '.' || s.id || '/')
                     FROM (SELECT nextval('mailroster.mailboxes_id_seq'::regclass) AS id, o.*
                             FROM (SELECT * FROM w WHERE w.act = 'created' ORDER BY w.ln) o) s)
            SELECT count(*) FILTER (WHERE w.act = 'updated') INTO n_upd FROM w;
            PERFORM set_config('mailroster.bulk_import', '', true);
            -- (the new rows are read again by the UPDATEs of 0010's
            -- fields and the sender lines)
            IF n_mb_extra + n_sender > 0 THEN
                PERFORM mailroster.import_fresh_stats(n_mailbox, 0);
            END IF;
            IF n_upd > 0 THEN
                PERFORM set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true);
                UPDATE mailroster.mailboxes m
                   SET password = s.password, enabled = s.enabled, disabled_reason = s.disabled_reason,
                       may_send = s.may_send, may_receive = s.may_receive, services = s.services,
                       quota_bytes = s.quota_bytes, quota_messages = s.quota_messages,
                       send_limit_messages = s.send_limit_messages,
                       send_limit_recipients = s.send_limit_recipients,
                       home = s.home, mail = s.mail, uid = s.uid, gid = s.gid,
                       maildir = coalesce(s.maildir, m.maildir)
                  FROM (SELECT a.rid, r.* FROM pg_temp.mr_import_answer a JOIN pg_temp.mr_import_lines r ON r.ln = a.ln
                         WHERE a.kd = 'mailbox' AND a.act = 'updated' ORDER BY a.ln) s
                 WHERE m.id = s.rid;
                PERFORM set_config('enable_hashjoin', v_hash, true), set_config('enable_mergejoin', v_merge, true);
            END IF;
        END IF;

        -- Aliases.  (The alias row check is skipped as the mailbox's is:
        -- the import checked the length and the self-reference, and the
        -- claim trigger refuses an address that is a mailbox.)
        IF n_alias > 0 THEN
            PERFORM set_config('mailroster.bulk_import', 'on', true);
            WITH w AS MATERIALIZED (
                SELECT r.ln, r.ky, r.lp, d.id AS did, al.id AS aid,
                       CASE WHEN al.id IS NULL THEN 'created'
                            WHEN (al.destinations, al.enabled) IS DISTINCT FROM (r.destinations, r.enabled)
                            THEN 'updated' ELSE 'unchanged' END AS act,
                       r.destinations, r.enabled
                  FROM pg_temp.mr_import_lines r
                  LEFT JOIN mailroster.domains d ON d.name = r.dom
                  LEFT JOIN LATERAL (SELECT al.* FROM mailroster.aliases al
                                      WHERE al.domain_id = d.id AND al.local_part = r.lp OFFSET 0) al ON true
                 WHERE r.kd = 'alias'),
             a AS (INSERT INTO pg_temp.mr_import_answer (ln, act, kd, ky, rid)
                   SELECT w.ln, w.act, 'alias', w.ky, w.aid FROM w),
             i AS (INSERT INTO mailroster.aliases (domain_id, local_part, destinations, enabled)
                   SELECT w.did, w.lp, w.destinations, w.enabled FROM w WHERE w.act = 'created' ORDER BY w.ln)
            SELECT count(*) FILTER (WHERE w.act = 'updated') INTO n_upd FROM w;
            PERFORM set_config('mailroster.bulk_import', '', true);
            IF n_upd > 0 THEN
                PERFORM set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true);
                UPDATE mailroster.aliases al
                   SET destinations = s.destinations, enabled = s.enabled
                  FROM (SELECT a.rid, r.* FROM pg_temp.mr_import_answer a JOIN pg_temp.mr_import_lines r ON r.ln = a.ln
                         WHERE a.kd = 'alias' AND a.act = 'updated' ORDER BY a.ln) s
                 WHERE al.id = s.rid;
                PERFORM set_config('enable_hashjoin', v_hash, true), set_config('enable_mergejoin', v_merge, true);
            END IF;
        END IF;

        -- Senders: the login must be a mailbox by now (a line whose login
        -- is none makes the INSERT fail: mailbox_id is NOT NULL).
        IF n_sender > 0 THEN
            WITH w AS MATERIALIZED (
                SELECT r.ln, r.ky, m.id AS mid, lower(r.address COLLATE "C") AS address,
                       CASE WHEN EXISTS (SELECT 1 FROM mailroster.sender_addresses s
                                          WHERE s.address = lower(r.address COLLATE "C") AND s.mailbox_id = m.id)
                            THEN 'unchanged' ELSE 'created' END AS act
                  FROM pg_temp.mr_import_lines r
                  LEFT JOIN mailroster.domains d ON d.name = r.login_dom
                  LEFT JOIN LATERAL (SELECT m.id FROM mailroster.mailboxes m
                                      WHERE m.domain_id = d.id AND m.local_part = r.login_lp OFFSET 0) m ON true
                 WHERE r.kd = 'sender'),
             a AS (INSERT INTO pg_temp.mr_import_answer (ln, act, kd, ky)
                   SELECT w.ln, w.act, 'sender', w.ky FROM w)
            INSERT INTO mailroster.sender_addresses (mailbox_id, address)
            SELECT w.mid, w.address FROM w WHERE w.act = 'created' ORDER BY w.ln;
        END IF;

        -- Master users.
        IF n_master > 0 THEN
            WITH w AS MATERIALIZED (
                SELECT r.ln, r.ky, u.id,
                       CASE WHEN u.id IS NULL THEN 'created'
                            WHEN (u.password, u.enabled, u.domains) IS DISTINCT FROM (r.password, r.enabled, r.domains)
                            THEN 'updated' ELSE 'unchanged' END AS act,
                       r.password, r.enabled, r.domains
                  FROM pg_temp.mr_import_lines r LEFT JOIN mailroster.master_users u ON u.name = r.ky
                 WHERE r.kd = 'master'),
             a AS (INSERT INTO pg_temp.mr_import_answer (ln, act, kd, ky, rid)
                   SELECT w.ln, w.act, 'master', w.ky, w.id FROM w),
             i AS (INSERT INTO mailroster.master_users (name, password, enabled, domains)
                   SELECT w.ky, w.password, w.enabled, w.domains FROM w WHERE w.act = 'created' ORDER BY w.ln)
            SELECT count(*) FILTER (WHERE w.act = 'updated') INTO n_upd FROM w;
            IF n_upd > 0 THEN
                PERFORM set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true);
                UPDATE mailroster.master_users u
                   SET password = s.password, enabled = s.enabled, domains = s.domains
                  FROM (SELECT a.rid, r.* FROM pg_temp.mr_import_answer a JOIN pg_temp.mr_import_lines r ON r.ln = a.ln
                         WHERE a.kd = 'master' AND a.act = 'updated' ORDER BY a.ln) s
                 WHERE u.id = s.rid;
                PERFORM set_config('enable_hashjoin', v_hash, true), set_config('enable_mergejoin', v_merge, true);
            END IF;
        END IF;

        -- Migration 0010's fields, after the core as there: a mailbox or
        -- alias line they change is "updated".
        k_ln := '{}';
        PERFORM set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true);
        IF n_mb_extra > 0 THEN
            WITH ch AS (
                UPDATE mailroster.mailboxes m
                   SET display_name = CASE WHEN s.has_dn THEN s.display_name ELSE m.display_name END,
                       metadata = coalesce(s.metadata, m.metadata),
                       forward_to = coalesce(s.forward_to, m.forward_to),
                       keep_copy = coalesce(s.keep_copy, m.keep_copy)
                  FROM (SELECT d.id AS did, r.* FROM pg_temp.mr_import_lines r JOIN mailroster.domains d ON d.name = r.dom
                         WHERE r.kd = 'mailbox' AND r.extra
                         ORDER BY r.ln) s
                 WHERE m.domain_id = s.did AND m.local_part = s.lp
                   AND (m.display_name, m.metadata, m.forward_to, m.keep_copy) IS DISTINCT FROM
                       (CASE WHEN s.has_dn THEN s.display_name ELSE m.display_name END,
                        coalesce(s.metadata, m.metadata), coalesce(s.forward_to, m.forward_to),
                        coalesce(s.keep_copy, m.keep_copy))
                RETURNING s.ln)
            SELECT k_ln || array_agg(ch.ln) INTO k_ln FROM ch;
        END IF;
        IF n_al_extra > 0 THEN
            WITH ch AS (
                UPDATE mailroster.aliases al
                   SET may_send = s.may_send
                  FROM (SELECT d.id AS did, r.* FROM pg_temp.mr_import_lines r JOIN mailroster.domains d ON d.name = r.dom
                         WHERE r.kd = 'alias' AND r.may_send IS NOT NULL ORDER BY r.ln) s
                 WHERE al.domain_id = s.did AND al.local_part = s.lp AND al.may_send IS DISTINCT FROM s.may_send
                RETURNING s.ln)
            SELECT k_ln || array_agg(ch.ln) INTO k_ln FROM ch;
        END IF;
        PERFORM set_config('enable_hashjoin', v_hash, true), set_config('enable_mergejoin', v_merge, true);
        IF cardinality(k_ln) > 0 THEN
            UPDATE pg_temp.mr_import_answer a SET act = 'updated'
             WHERE a.act = 'unchanged' AND a.ln = ANY (k_ln);
        END IF;

        -- Transports.
        IF n_transport > 0 THEN
            WITH w AS MATERIALIZED (
                SELECT r.ln, r.ky, t.id,
                       CASE WHEN t.id IS NULL THEN 'created'
                            WHEN (t.transport, t.enabled) IS DISTINCT FROM (r.transport, r.enabled)
                            THEN 'updated' ELSE 'unchanged' END AS act,
                       r.transport, r.enabled
                  FROM pg_temp.mr_import_lines r LEFT JOIN mailroster.transports t ON t.pattern = r.ky
                 WHERE r.kd = 'transport'),
             a AS (INSERT INTO pg_temp.mr_import_answer (ln, act, kd, ky, rid)
                   SELECT w.ln, w.act, 'transport', w.ky, w.id FROM w),
             i AS (INSERT INTO mailroster.transports (pattern, transport, enabled)
                   SELECT w.ky, w.transport, w.enabled FROM w WHERE w.act = 'created' ORDER BY w.ln)
            SELECT count(*) FILTER (WHERE w.act = 'updated') INTO n_upd FROM w;
            IF n_upd > 0 THEN
                PERFORM set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true);
                UPDATE mailroster.transports t
                   SET transport = s.transport, enabled = s.enabled
                  FROM (SELECT a.rid, r.* FROM pg_temp.mr_import_answer a JOIN pg_temp.mr_import_lines r ON r.ln = a.ln
                         WHERE a.kd = 'transport' AND a.act = 'updated' ORDER BY a.ln) s
                 WHERE t.id = s.rid;
                PERFORM set_config('enable_hashjoin', v_hash, true), set_config('enable_mergejoin', v_merge, true);
            END IF;
        END IF;

        -- The same object twice: two new ones fail a unique index (an
        -- address as a mailbox and an alias, the claim), which undoes the
        -- block; two lines of one stored object are found here.
        IF EXISTS (SELECT 1 FROM pg_temp.mr_import_answer a WHERE a.act <> 'created'
                    GROUP BY CASE WHEN a.kd IN ('mailbox', 'alias') THEN 'address' ELSE a.kd END, a.ky
                   HAVING count(*) > 1) THEN
            RAISE EXCEPTION 'a line needs a closer look' USING ERRCODE = 'MRSLW';
        END IF;

        v_done := true;
        IF p_dry_run THEN
            SELECT array_agg(a.ln ORDER BY a.ln), array_agg(a.act ORDER BY a.ln),
                   array_agg(a.kd ORDER BY a.ln), array_agg(a.ky ORDER BY a.ln)
              INTO r_ln, r_action, r_kind, r_key
              FROM pg_temp.mr_import_answer a;
            RAISE EXCEPTION 'dry run' USING ERRCODE = 'MRDRY';
        END IF;
    EXCEPTION
        WHEN SQLSTATE 'MRDRY' THEN
            NULL;           -- the dry run: everything above is undone
        WHEN OTHERS THEN
            v_done := false;   -- undone; the row-by-row import says what is wrong
    END;

    IF NOT v_done THEN
        -- (the lines as one text again: the same numbers)
        RETURN QUERY SELECT * FROM mailroster.import_jsonl_rowwise(
            (SELECT coalesce(string_agg(z.t, E'\n' ORDER BY z.n), '') FROM pg_temp.mr_import_input z), p_dry_run);
        RETURN;
    END IF;
    IF p_dry_run THEN
        RETURN QUERY
        SELECT u.ln, u.act, u.knd, u.ky
          FROM unnest(r_ln, r_action, r_kind, r_key) AS u(ln, act, knd, ky)
         ORDER BY u.ln;
        RETURN;
    END IF;
    RETURN QUERY SELECT a.ln, a.act, a.kd, a.ky FROM pg_temp.mr_import_answer a ORDER BY a.ln;
    DROP TABLE pg_temp.mr_import_lines, pg_temp.mr_import_answer;
END
$fn$;
ALTER FUNCTION mailroster.import_jsonl_input(boolean) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION mailroster.import_jsonl_input(boolean) SET work_mem = '64MB';
-- (JIT off: the staging table has no statistics, so the planner takes its
-- size for its rows, and each statement of a large import cost past
-- jit_above_cost; compiling them took 40 % of the staging statement's
-- time, each import anew)
ALTER FUNCTION mailroster.import_jsonl_input(boolean) SET jit = off;
COMMENT ON FUNCTION mailroster.import_jsonl_input(boolean) IS
    'The lines of pg_temp.mr_import_input (see import_input_open) into the directory, as import_jsonl does with its text; see migrations 0015, 0016 and 0017';
REVOKE ALL ON FUNCTION mailroster.import_jsonl_input(boolean) FROM PUBLIC;

INSERT INTO mailroster.schema_version (version, description)
VALUES (17, 'imports that do not depend on current statistics (lookups by both key columns, import_fresh_stats)');

COMMIT;
