-- mailroster migration 0002: export and import of the directory as JSON lines.
--
-- Apply with:  psql -v ON_ERROR_STOP=1 -X -d DB -f sql/migrations/0002_import_export.sql
-- (as the schema owner; then run sql/roles.sql).  One transaction, like 0001.
--
-- THE FORMAT.  One JSON object per line; every key always present (null
-- where unset), keys in this order, no spaces:
--
--   {"kind":"domain","name":"example.com","enabled":true,"disabled_reason":null,
--    "quota_bytes":0,"quota_messages":0,"send_limit_messages":0,
--    "send_limit_recipients":0,"send_limit_window":3600}
--   {"kind":"mailbox","address":"alice@example.com","password":"{SHA512-CRYPT}$6$...",
--    "enabled":true,"disabled_reason":null,"may_send":true,"may_receive":true,
--    "services":["imap","pop3","submission","lmtp","sieve"],"quota_bytes":null,
--    "quota_messages":null,"send_limit_messages":null,"send_limit_recipients":null,
--    "home":null,"mail":null,"uid":null,"gid":null,"maildir":"example.com/alice.1/"}
--   {"kind":"alias","source":"info@example.com","destinations":["alice@example.com"],"enabled":true}
--       (source "@example.com" is the domain's catch-all)
--   {"kind":"sender","address":"boss@example.com","login":"alice@example.com"}
--   {"kind":"master","name":"gateway","password":"{...}","enabled":true,"domains":null}
--
-- (each object on one line).  An export lists domains by name, then
-- mailboxes by address, aliases by source, senders by (address, login) and
-- master users by name, all in byte order (COLLATE "C"), so export, import
-- into another database and export again give the same bytes.  Lines are
-- built by hand from to_json() of each value: jsonb would reorder the keys
-- and json_build_object() puts spaces around ':' and ','.
--
-- mailroster.export_jsonl(p_domain text DEFAULT NULL) RETURNS SETOF text
--   The whole directory, or one domain: its domain line, its mailboxes and
--   aliases, and the sender lines whose login is one of its mailboxes.
--   Master users only in the whole export.
--
-- mailroster.import_jsonl(p_lines text, p_dry_run boolean DEFAULT false)
--   RETURNS TABLE(line int, action text, kind text, key text)
--   Parses p_lines (newline-separated, blank lines ignored, key order free),
--   checks every line before writing anything (errors name the line:
--   'line 7: mailbox: "quota_bytes" must be a number or null'), then applies
--   the objects as upserts in dependency order (domains, mailboxes, aliases,
--   senders, masters).  One row per object: action created, updated or
--   unchanged; key is the domain name, the address, the alias source,
--   "ADDRESS LOGIN" for a sender, the master user's name.  Rows in line
--   order.  Never deletes.  Domain names and ASCII letters in addresses are
--   lowercased silently; a U-label domain is refused (convert it to its
--   A-label first; the importers under sql/import/ and
--   scripts/import-users-json do).  A mailbox's maildir from the file is
--   used when the mailbox is created (so mail locations survive a
--   migration) and replaces the stored one when it differs; null keeps the
--   stored one, or lets the trigger make one for a new mailbox.  Any error
--   fails the whole import and changes nothing.  With p_dry_run the work is
--   done inside a block that is then rolled back (rows, change log and
--   NOTIFY alike), and the rows say what would have changed.
--   The function takes the directory lock first, so it reads the directory
--   as it is while it alone may write it.

\set ON_ERROR_STOP 1

BEGIN;

CREATE FUNCTION mailroster.export_jsonl(p_domain text DEFAULT NULL) RETURNS SETOF text
    LANGUAGE plpgsql STABLE SECURITY INVOKER
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    v_domain_id bigint;
BEGIN
    IF p_domain IS NOT NULL THEN
        SELECT d.id INTO v_domain_id FROM mailroster.domains d
         WHERE d.name = lower(p_domain COLLATE "C");
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no such domain: %', p_domain USING ERRCODE = 'no_data_found';
        END IF;
    END IF;

    RETURN QUERY
    SELECT x.l FROM (
        SELECT 1 AS grp, d.name COLLATE "C" AS k1, ''::text COLLATE "C" AS k2,
               format('{"kind":"domain","name":%s,"enabled":%s,"disabled_reason":%s,'
                      '"quota_bytes":%s,"quota_messages":%s,"send_limit_messages":%s,'
                      '"send_limit_recipients":%s,"send_limit_window":%s}',
                      to_json(d.name), to_json(d.enabled),
                      coalesce(to_json(d.disabled_reason)::text, 'null'),
                      to_json(d.quota_bytes), to_json(d.quota_messages),
                      to_json(d.send_limit_messages), to_json(d.send_limit_recipients),
                      to_json(d.send_limit_window)) AS l
          FROM mailroster.domains d
         WHERE v_domain_id IS NULL OR d.id = v_domain_id
        UNION ALL
        SELECT 2, (m.local_part || '@' || d.name) COLLATE "C", '',
               format('{"kind":"mailbox","address":%s,"password":%s,"enabled":%s,'
                      '"disabled_reason":%s,"may_send":%s,"may_receive":%s,"services":%s,'
                      '"quota_bytes":%s,"quota_messages":%s,"send_limit_messages":%s,'
                      '"send_limit_recipients":%s,"home":%s,"mail":%s,"uid":%s,"gid":%s,'
                      '"maildir":%s}',
                      to_json(m.local_part || '@' || d.name),
                      coalesce(to_json(m.password)::text, 'null'),
                      to_json(m.enabled),
                      coalesce(to_json(m.disabled_reason)::text, 'null'),
                      to_json(m.may_send), to_json(m.may_receive), to_json(m.services),
                      coalesce(to_json(m.quota_bytes)::text, 'null'),
                      coalesce(to_json(m.quota_messages)::text, 'null'),
                      coalesce(to_json(m.send_limit_messages)::text, 'null'),
                      coalesce(to_json(m.send_limit_recipients)::text, 'null'),
                      coalesce(to_json(m.home)::text, 'null'),
                      coalesce(to_json(m.mail)::text, 'null'),
                      coalesce(to_json(m.uid)::text, 'null'),
                      coalesce(to_json(m.gid)::text, 'null'),
                      to_json(m.maildir))
          FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id
         WHERE v_domain_id IS NULL OR d.id = v_domain_id
        UNION ALL
        SELECT 3, (a.local_part || '@' || d.name) COLLATE "C", '',
               format('{"kind":"alias","source":%s,"destinations":%s,"enabled":%s}',
                      to_json(a.local_part || '@' || d.name), to_json(a.destinations),
                      to_json(a.enabled))
          FROM mailroster.aliases a JOIN mailroster.domains d ON d.id = a.domain_id
         WHERE v_domain_id IS NULL OR d.id = v_domain_id
        UNION ALL
        SELECT 4, s.address COLLATE "C", (m.local_part || '@' || d.name) COLLATE "C",
               format('{"kind":"sender","address":%s,"login":%s}',
                      to_json(s.address), to_json(m.local_part || '@' || d.name))
          FROM mailroster.sender_addresses s
          JOIN mailroster.mailboxes m ON m.id = s.mailbox_id
          JOIN mailroster.domains d ON d.id = m.domain_id
         WHERE v_domain_id IS NULL OR d.id = v_domain_id
        UNION ALL
        SELECT 5, u.name COLLATE "C", '',
               format('{"kind":"master","name":%s,"password":%s,"enabled":%s,"domains":%s}',
                      to_json(u.name), to_json(u.password), to_json(u.enabled),
                      coalesce(to_json(u.domains)::text, 'null'))
          FROM mailroster.master_users u
         WHERE v_domain_id IS NULL
    ) x
    ORDER BY x.grp, x.k1, x.k2;
END
$fn$;
COMMENT ON FUNCTION mailroster.export_jsonl(text) IS
    'The directory (or one domain) as JSON lines in a fixed order; see migration 0002 for the format';

CREATE FUNCTION mailroster.import_jsonl(p_lines text, p_dry_run boolean DEFAULT false)
    RETURNS TABLE (line int, action text, kind text, key text)
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    c_services CONSTANT text[] := '{imap,pop3,submission,lmtp,sieve}';
    c_kinds CONSTANT text[] := '{domain,mailbox,alias,sender,master}';
    -- What each kind's keys are: name, type, nullable, minimum, maximum.
    sp_kind text[];
    sp_key  text[];
    sp_type text[];
    sp_null boolean[];
    sp_min  numeric[];
    sp_max  numeric[];
    sp_keystr text[];        -- per kind (in c_kinds order): its keys, sorted, comma-separated
    -- The parsed lines (parallel arrays).
    x_ln   int[] := '{}';
    x_kind text[] := '{}';
    x_key  text[] := '{}';   -- canonical key (see the header)
    x_obj  json[] := '{}';
    -- The result rows (parallel arrays).
    r_ln     int[] := '{}';
    r_action text[] := '{}';
    r_kind   text[] := '{}';
    r_key    text[] := '{}';
    -- Where we are, for error messages.
    v_cur_line int;
    v_cur_kind text;
    v_rec   record;
    v_all_ln  int[];
    v_all_obj json[];
    v_idx   int;
    v_n     int;
    v_dup   text;
    v_text  text;
    v_obj   json;
    v_val   json;
    v_t     text;
    v_k     text;
    v_keys  text[];
    v_list  text[];
    v_ok    boolean;
    v_want  text;
    v_i     int;
    v_j     int;
    -- address checks of one line: what, value (lowercased), type
    ck_what text[];
    ck_val  text[];
    ck_type text[];
    v_at    int;
    v_lp    text;
    v_dom   text;
    v_prob  text;
    v_canon text;
    -- apply
    v_act   text;
    v_did   bigint;
    v_mid   bigint;
    v_name  text;
    v_arr   text[];
    v_dr    mailroster.domains%ROWTYPE;
    v_mr    mailroster.mailboxes%ROWTYPE;
    v_ar    mailroster.aliases%ROWTYPE;
    v_ur    mailroster.master_users%ROWTYPE;
    -- error re-raise
    v_state text;
    v_msg   text;
    v_detail text;
    v_hint  text;
BEGIN
    IF p_lines IS NULL THEN
        RAISE EXCEPTION 'import_jsonl: no input (p_lines is NULL)' USING ERRCODE = 'null_value_not_allowed';
    END IF;

    SELECT array_agg(s.fkind ORDER BY s.o), array_agg(s.fk ORDER BY s.o), array_agg(s.ft ORDER BY s.o),
           array_agg(s.fnull ORDER BY s.o), array_agg(s.fmin ORDER BY s.o), array_agg(s.fmax ORDER BY s.o)
      INTO sp_kind, sp_key, sp_type, sp_null, sp_min, sp_max
      FROM (VALUES
        ( 1, 'domain',  'name',                  'string',  false, NULL::numeric, NULL::numeric),
        ( 2, 'domain',  'enabled',               'boolean', false, NULL, NULL),
        ( 3, 'domain',  'disabled_reason',       'string',  true,  NULL, NULL),
        ( 4, 'domain',  'quota_bytes',           'number',  false, 0, 9223372036854775807),
        ( 5, 'domain',  'quota_messages',        'number',  false, 0, 9223372036854775807),
        ( 6, 'domain',  'send_limit_messages',   'number',  false, 0, 2147483647),
        ( 7, 'domain',  'send_limit_recipients', 'number',  false, 0, 2147483647),
        ( 8, 'domain',  'send_limit_window',     'number',  false, 1, 2147483647),
        (10, 'mailbox', 'address',               'string',  false, NULL, NULL),
        (11, 'mailbox', 'password',              'string',  true,  NULL, NULL),
        (12, 'mailbox', 'enabled',               'boolean', false, NULL, NULL),
        (13, 'mailbox', 'disabled_reason',       'string',  true,  NULL, NULL),
        (14, 'mailbox', 'may_send',              'boolean', false, NULL, NULL),
        (15, 'mailbox', 'may_receive',           'boolean', false, NULL, NULL),
        (16, 'mailbox', 'services',              'strings', false, NULL, NULL),
        (17, 'mailbox', 'quota_bytes',           'number',  true,  0, 9223372036854775807),
        (18, 'mailbox', 'quota_messages',        'number',  true,  0, 9223372036854775807),
        (19, 'mailbox', 'send_limit_messages',   'number',  true,  0, 2147483647),
        (20, 'mailbox', 'send_limit_recipients', 'number',  true,  0, 2147483647),
        (21, 'mailbox', 'home',                  'string',  true,  NULL, NULL),
        (22, 'mailbox', 'mail',                  'string',  true,  NULL, NULL),
        (23, 'mailbox', 'uid',                   'number',  true,  1, 2147483647),
        (24, 'mailbox', 'gid',                   'number',  true,  1, 2147483647),
        (25, 'mailbox', 'maildir',               'string',  true,  NULL, NULL),
        (30, 'alias',   'source',                'string',  false, NULL, NULL),
        (31, 'alias',   'destinations',          'strings', false, NULL, NULL),
        (32, 'alias',   'enabled',               'boolean', false, NULL, NULL),
        (40, 'sender',  'address',               'string',  false, NULL, NULL),
        (41, 'sender',  'login',                 'string',  false, NULL, NULL),
        (50, 'master',  'name',                  'string',  false, NULL, NULL),
        (51, 'master',  'password',              'string',  false, NULL, NULL),
        (52, 'master',  'enabled',               'boolean', false, NULL, NULL),
        (53, 'master',  'domains',               'strings', true,  NULL, NULL)
      ) AS s(o, fkind, fk, ft, fnull, fmin, fmax);
    sp_keystr := ARRAY(
        SELECT (SELECT string_agg(x.k, ',' ORDER BY x.k COLLATE "C")
                  FROM (SELECT 'kind'::text AS k
                        UNION ALL
                        SELECT s.fk FROM unnest(sp_kind, sp_key) AS s(fkind, fk) WHERE s.fkind = c.kind) x)
          FROM unnest(c_kinds) WITH ORDINALITY AS c(kind, o)
         ORDER BY c.o);

    -- Everything happens in this block: an error anywhere, or the private
    -- exception of a dry run, undoes all of it (rows, change_log, NOTIFY).
    BEGIN
        -- Serialise with every other directory writer before reading, so
        -- that what we compare with is what we overwrite.
        PERFORM pg_catalog.pg_advisory_xact_lock(mailroster.directory_lock_key());

        --------------------------------------------------------------------
        -- Pass 1: syntax, keys, types, canonical form; no database access
        -- except the pure validation functions.
        --------------------------------------------------------------------
        -- Parse every non-blank line in one statement (a byte order mark
        -- before line 1 is ignored); only when that fails, go line by line
        -- to find the one at fault.
        BEGIN
            SELECT coalesce(array_agg(u.n ORDER BY u.n), '{}'), coalesce(array_agg(u.t::json ORDER BY u.n), '{}')
              INTO v_all_ln, v_all_obj
              FROM (SELECT CASE WHEN x.n = 1 THEN ltrim(x.t, chr(65279)) ELSE x.t END AS t, x.n::int AS n
                      FROM unnest(string_to_array(p_lines, E'\n')) WITH ORDINALITY AS x(t, n)) u
             WHERE u.t !~ '^[ \t\r]*$';
        EXCEPTION WHEN OTHERS THEN
            FOR v_rec IN
                SELECT CASE WHEN x.n = 1 THEN ltrim(x.t, chr(65279)) ELSE x.t END AS t, x.n::int AS n
                  FROM unnest(string_to_array(p_lines, E'\n')) WITH ORDINALITY AS x(t, n)
                 ORDER BY x.n
            LOOP
                CONTINUE WHEN v_rec.t ~ '^[ \t\r]*$';
                BEGIN
                    v_obj := v_rec.t::json;
                EXCEPTION WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS v_msg = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
                    RAISE EXCEPTION 'line %: not valid JSON: %', v_rec.n,
                        coalesce(nullif(v_detail, ''), v_msg)
                        USING ERRCODE = 'invalid_text_representation';
                END;
            END LOOP;
            RAISE;
        END;

        FOR v_idx IN 1 .. cardinality(v_all_ln) LOOP
            v_n := v_all_ln[v_idx];
            v_obj := v_all_obj[v_idx];
            v_cur_line := v_n;
            v_cur_kind := NULL;
            IF json_typeof(v_obj) <> 'object' THEN
                RAISE EXCEPTION 'line %: not a JSON object', v_n
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF v_obj -> 'kind' IS NULL THEN
                RAISE EXCEPTION 'line %: "kind" is missing', v_n
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF json_typeof(v_obj -> 'kind') <> 'string' OR NOT (v_obj ->> 'kind') = ANY (c_kinds) THEN
                RAISE EXCEPTION 'line %: unknown kind %; expected domain, mailbox, alias, sender or master',
                    v_n, (v_obj -> 'kind')::text
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            v_k := v_obj ->> 'kind';
            v_cur_kind := v_k;

            -- The keys: exactly those of the kind, each once.  Compared as
            -- one sorted string; only a mismatch looks closer.
            SELECT string_agg(x.k, ',' ORDER BY x.k COLLATE "C") INTO v_text FROM json_object_keys(v_obj) AS x(k);
            IF v_text IS DISTINCT FROM sp_keystr[array_position(c_kinds, v_k)] THEN
                v_keys := ARRAY(SELECT json_object_keys(v_obj));
                SELECT x.k INTO v_dup FROM unnest(v_keys) AS x(k) GROUP BY x.k HAVING count(*) > 1 LIMIT 1;
                IF FOUND THEN
                    RAISE EXCEPTION 'line %: %: key % appears more than once', v_n, v_k, to_json(v_dup)
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                v_list := ARRAY(SELECT to_json(s.fk)::text
                                  FROM unnest(sp_kind, sp_key) WITH ORDINALITY AS s(fkind, fk, o)
                                 WHERE s.fkind = v_k AND NOT s.fk = ANY (v_keys)
                                 ORDER BY s.o);
                IF cardinality(v_list) > 0 THEN
                    RAISE EXCEPTION 'line %: %: missing %', v_n, v_k, array_to_string(v_list, ', ')
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                v_list := ARRAY(SELECT to_json(x.k)::text
                                  FROM unnest(v_keys) WITH ORDINALITY AS x(k, o)
                                 WHERE x.k <> 'kind'
                                   AND NOT EXISTS (SELECT 1 FROM unnest(sp_kind, sp_key) AS s(fkind, fk)
                                                    WHERE s.fkind = v_k AND s.fk = x.k)
                                 ORDER BY x.o);
                RAISE EXCEPTION 'line %: %: unknown key %', v_n, v_k, array_to_string(v_list, ', ')
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;

            -- Types.
            FOR v_j IN 1 .. cardinality(sp_kind) LOOP
                CONTINUE WHEN sp_kind[v_j] <> v_k;
                v_val := v_obj -> sp_key[v_j];
                v_t := json_typeof(v_val);
                CONTINUE WHEN v_t = 'null' AND sp_null[v_j];
                CASE sp_type[v_j]
                    WHEN 'string' THEN
                        v_ok := v_t = 'string';
                        v_want := 'a string';
                    WHEN 'boolean' THEN
                        v_ok := v_t = 'boolean';
                        v_want := 'true or false';
                    WHEN 'number' THEN
                        v_ok := v_t = 'number';
                        v_want := 'a number';
                    ELSE -- 'strings'
                        v_ok := v_t = 'array'
                                AND NOT EXISTS (SELECT 1 FROM json_array_elements(v_val) AS e(v)
                                                 WHERE json_typeof(e.v) <> 'string');
                        v_want := 'a list of strings';
                END CASE;
                IF NOT v_ok THEN
                    RAISE EXCEPTION 'line %: %: "%" must be %', v_n, v_k, sp_key[v_j],
                        v_want || CASE WHEN sp_null[v_j] THEN ' or null' ELSE '' END
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                IF sp_type[v_j] = 'number'
                   AND (v_val::text !~ '^-?[0-9]+$'
                        OR v_val::text::numeric NOT BETWEEN sp_min[v_j] AND sp_max[v_j]) THEN
                    RAISE EXCEPTION 'line %: %: "%" must be a whole number from % to %', v_n, v_k,
                        sp_key[v_j], sp_min[v_j],
                        sp_max[v_j] || CASE WHEN sp_null[v_j] THEN ', or null' ELSE '' END
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            END LOOP;

            -- Names and addresses: lowercase the ASCII letters, then check.
            ck_what := '{}'; ck_val := '{}'; ck_type := '{}';
            CASE v_k
                WHEN 'domain' THEN
                    v_canon := lower((v_obj ->> 'name') COLLATE "C");
                    ck_what := ARRAY['name']; ck_val := ARRAY[v_canon]; ck_type := ARRAY['domain'];
                WHEN 'mailbox' THEN
                    v_canon := lower((v_obj ->> 'address') COLLATE "C");
                    ck_what := ARRAY['address']; ck_val := ARRAY[v_canon]; ck_type := ARRAY['mailbox'];
                WHEN 'alias' THEN
                    v_canon := lower((v_obj ->> 'source') COLLATE "C");
                    v_arr := ARRAY(SELECT lower(e.v COLLATE "C")
                                     FROM json_array_elements_text(v_obj -> 'destinations') AS e(v));
                    ck_what := ARRAY['source'] || array_fill('destinations'::text, ARRAY[cardinality(v_arr)]);
                    ck_val := ARRAY[v_canon] || v_arr;
                    ck_type := ARRAY['source'] || array_fill('destination'::text, ARRAY[cardinality(v_arr)]);
                WHEN 'sender' THEN
                    v_canon := lower((v_obj ->> 'address') COLLATE "C") || ' '
                               || lower((v_obj ->> 'login') COLLATE "C");
                    ck_what := ARRAY['address', 'login'];
                    ck_val := ARRAY[lower((v_obj ->> 'address') COLLATE "C"),
                                    lower((v_obj ->> 'login') COLLATE "C")];
                    ck_type := ARRAY['sender', 'mailbox'];
                ELSE -- master
                    v_canon := v_obj ->> 'name';
                    IF json_typeof(v_obj -> 'domains') = 'array' THEN
                        v_arr := ARRAY(SELECT lower(e.v COLLATE "C")
                                         FROM json_array_elements_text(v_obj -> 'domains') AS e(v));
                        ck_what := array_fill('domains'::text, ARRAY[cardinality(v_arr)]);
                        ck_val := v_arr;
                        ck_type := array_fill('domain'::text, ARRAY[cardinality(v_arr)]);
                    END IF;
            END CASE;
            FOR v_i IN 1 .. coalesce(cardinality(ck_val), 0) LOOP
                v_prob := NULL;
                IF ck_type[v_i] = 'domain' THEN
                    v_lp := NULL;
                    v_dom := ck_val[v_i];
                ELSE
                    v_at := strpos(reverse(ck_val[v_i]), '@');
                    IF v_at = 0 THEN
                        v_prob := 'is not an address (local@domain)';
                    ELSE
                        v_at := length(ck_val[v_i]) - v_at + 1;
                        v_lp := left(ck_val[v_i], v_at - 1);
                        v_dom := substr(ck_val[v_i], v_at + 1);
                    END IF;
                END IF;
                IF v_prob IS NOT NULL THEN
                    NULL;
                ELSIF v_dom ~ '[^\x01-\x7f]' THEN
                    v_prob := CASE WHEN v_lp IS NULL THEN 'is a U-label'
                                   ELSE format('has the U-label domain %s', to_json(v_dom)) END
                              || ': convert it to its A-label (xn--...) first';
                ELSIF NOT mailroster.is_domain_name(v_dom) THEN
                    v_prob := CASE WHEN v_lp IS NULL THEN 'is not a valid domain name'
                                   ELSE format('has an invalid domain %s', to_json(v_dom)) END;
                ELSIF ck_type[v_i] = 'mailbox' AND NOT mailroster.is_mailbox_local_part(v_lp) THEN
                    v_prob := 'has an invalid local part (1 to 64 octets, no "+", spaces, control characters, @ , " \ ( ) < > [ ] ; :, no leading, trailing or double dot)';
                ELSIF ck_type[v_i] = 'source' AND v_lp <> '' AND NOT mailroster.is_mailbox_local_part(v_lp) THEN
                    v_prob := 'has an invalid local part (1 to 64 octets, no "+", spaces, control characters, @ , " \ ( ) < > [ ] ; :, no leading, trailing or double dot)';
                ELSIF ck_type[v_i] IN ('destination', 'sender') AND NOT mailroster.is_address(ck_val[v_i], true) THEN
                    v_prob := 'is not a valid address (local@domain or @domain)';
                ELSIF octet_length(ck_val[v_i]) > 254 THEN
                    v_prob := 'is longer than 254 octets';
                END IF;
                IF v_prob IS NOT NULL THEN
                    RAISE EXCEPTION 'line %: %: "%" % %', v_n, v_k, ck_what[v_i],
                        to_json(ck_val[v_i]), v_prob
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            END LOOP;

            -- Other field checks that need no database.
            IF v_k IN ('mailbox', 'master') AND json_typeof(v_obj -> 'password') = 'string'
               AND NOT mailroster.is_password_hash(v_obj ->> 'password') THEN
                RAISE EXCEPTION 'line %: %: "password" must be a hash with its {SCHEME} prefix, e.g. {SHA512-CRYPT}$6$...%',
                    v_n, v_k, CASE WHEN v_k = 'mailbox' THEN ', or null' ELSE '' END
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF v_k = 'master'
               AND NOT (octet_length(v_canon) BETWEEN 1 AND 254
                        AND v_canon !~ '[\x01-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]') THEN
                RAISE EXCEPTION 'line %: master: "name" % must be 1 to 254 octets without spaces or control characters',
                    v_n, to_json(v_canon)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF v_k = 'mailbox' THEN
                v_arr := ARRAY(SELECT e.v FROM json_array_elements_text(v_obj -> 'services') AS e(v));
                IF NOT v_arr <@ c_services THEN
                    RAISE EXCEPTION 'line %: mailbox: "services" may only list imap, pop3, submission, lmtp and sieve', v_n
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                IF json_typeof(v_obj -> 'maildir') = 'string'
                   AND NOT (v_obj ->> 'maildir' ~ '^[^/].*/$'
                            AND v_obj ->> 'maildir' !~ '(^|/)\.{1,2}/'
                            AND strpos(v_obj ->> 'maildir', '//') = 0
                            AND v_obj ->> 'maildir' !~ '[\x01-\x1f\x7f]') THEN
                    RAISE EXCEPTION 'line %: mailbox: "maildir" must be a relative path ending in "/", without "." or ".." components or "//"', v_n
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                IF json_typeof(v_obj -> 'home') = 'string'
                   AND NOT (v_obj ->> 'home' ~ '^/' AND v_obj ->> 'home' !~ '[\x01-\x1f\x7f]') THEN
                    RAISE EXCEPTION 'line %: mailbox: "home" must be an absolute path', v_n
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            ELSIF v_k = 'alias' THEN
                IF cardinality(ck_val) - 1 NOT BETWEEN 1 AND 1000 THEN
                    RAISE EXCEPTION 'line %: alias: "destinations" must list 1 to 1000 addresses', v_n
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                IF v_canon = ANY (ck_val[2:]) THEN
                    RAISE EXCEPTION 'line %: alias: % cannot have itself as a destination', v_n, to_json(v_canon)
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            END IF;

            x_ln := x_ln || v_n;
            x_kind := x_kind || v_k;
            x_key := x_key || v_canon;
            x_obj := x_obj || v_obj;
        END LOOP;
        v_cur_line := NULL;
        v_cur_kind := NULL;

        -- The same object twice, or an address that is both a mailbox and
        -- an alias source, in the file itself.
        SELECT b.ln AS ln, b.k AS k, b.kk AS kk, a.ln AS first_ln, a.k AS first_k INTO v_rec
          FROM unnest(x_ln, x_kind, x_key) AS a(ln, k, kk)
          JOIN unnest(x_ln, x_kind, x_key) AS b(ln, k, kk)
            ON b.kk = a.kk AND a.ln < b.ln
           AND (a.k = b.k OR (a.k IN ('mailbox', 'alias') AND b.k IN ('mailbox', 'alias')))
         ORDER BY b.ln, a.ln
         LIMIT 1;
        IF FOUND THEN
            IF v_rec.k = v_rec.first_k THEN
                RAISE EXCEPTION 'line %: %: % is also on line %', v_rec.ln, v_rec.k, to_json(v_rec.kk), v_rec.first_ln
                    USING ERRCODE = 'unique_violation';
            ELSE
                RAISE EXCEPTION 'line %: %: % is a % on line %; an address cannot be both a mailbox and an alias',
                    v_rec.ln, v_rec.k, to_json(v_rec.kk), v_rec.first_k, v_rec.first_ln
                    USING ERRCODE = 'unique_violation';
            END IF;
        END IF;

        --------------------------------------------------------------------
        -- Pass 2: apply in dependency order.
        --------------------------------------------------------------------
        FOR v_i IN
            SELECT x.i::int FROM unnest(x_kind) WITH ORDINALITY AS x(k, i)
             ORDER BY array_position(c_kinds, x.k), x.i
        LOOP
            v_cur_line := x_ln[v_i];
            v_cur_kind := x_kind[v_i];
            v_obj := x_obj[v_i];
            v_canon := x_key[v_i];
            v_act := 'unchanged';

            IF x_kind[v_i] = 'domain' THEN
                SELECT * INTO v_dr FROM mailroster.domains d WHERE d.name = v_canon;
                IF NOT FOUND THEN
                    INSERT INTO mailroster.domains (name, enabled, disabled_reason, quota_bytes, quota_messages,
                                                    send_limit_messages, send_limit_recipients, send_limit_window)
                    VALUES (v_canon, (v_obj ->> 'enabled')::boolean, v_obj ->> 'disabled_reason',
                            (v_obj ->> 'quota_bytes')::bigint, (v_obj ->> 'quota_messages')::bigint,
                            (v_obj ->> 'send_limit_messages')::int, (v_obj ->> 'send_limit_recipients')::int,
                            (v_obj ->> 'send_limit_window')::int);
                    v_act := 'created';
                ELSIF (v_dr.enabled, v_dr.disabled_reason, v_dr.quota_bytes, v_dr.quota_messages,
                       v_dr.send_limit_messages, v_dr.send_limit_recipients, v_dr.send_limit_window)
                      IS DISTINCT FROM
                      ((v_obj ->> 'enabled')::boolean, v_obj ->> 'disabled_reason',
                       (v_obj ->> 'quota_bytes')::bigint, (v_obj ->> 'quota_messages')::bigint,
                       (v_obj ->> 'send_limit_messages')::int, (v_obj ->> 'send_limit_recipients')::int,
                       (v_obj ->> 'send_limit_window')::int) THEN
                    UPDATE mailroster.domains d
                       SET enabled = (v_obj ->> 'enabled')::boolean,
                           disabled_reason = v_obj ->> 'disabled_reason',
                           quota_bytes = (v_obj ->> 'quota_bytes')::bigint,
                           quota_messages = (v_obj ->> 'quota_messages')::bigint,
                           send_limit_messages = (v_obj ->> 'send_limit_messages')::int,
                           send_limit_recipients = (v_obj ->> 'send_limit_recipients')::int,
                           send_limit_window = (v_obj ->> 'send_limit_window')::int
                     WHERE d.id = v_dr.id;
                    v_act := 'updated';
                END IF;

            ELSIF x_kind[v_i] = 'mailbox' THEN
                v_at := length(v_canon) - strpos(reverse(v_canon), '@') + 1;
                v_lp := left(v_canon, v_at - 1);
                v_dom := substr(v_canon, v_at + 1);
                SELECT d.id INTO v_did FROM mailroster.domains d WHERE d.name = v_dom;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'line %: mailbox: the domain % of % does not exist; add a "domain" line for it',
                        v_cur_line, to_json(v_dom), to_json(v_canon)
                        USING ERRCODE = 'foreign_key_violation';
                END IF;
                v_arr := ARRAY(SELECT e.v FROM json_array_elements_text(v_obj -> 'services') AS e(v));
                SELECT * INTO v_mr FROM mailroster.mailboxes m WHERE m.domain_id = v_did AND m.local_part = v_lp;
                IF NOT FOUND THEN
                    INSERT INTO mailroster.mailboxes (domain_id, local_part, password, enabled, disabled_reason,
                                                      may_send, may_receive, services, quota_bytes, quota_messages,
                                                      send_limit_messages, send_limit_recipients, home, mail,
                                                      uid, gid, maildir)
                    VALUES (v_did, v_lp, v_obj ->> 'password', (v_obj ->> 'enabled')::boolean,
                            v_obj ->> 'disabled_reason', (v_obj ->> 'may_send')::boolean,
                            (v_obj ->> 'may_receive')::boolean, v_arr,
                            (v_obj ->> 'quota_bytes')::bigint, (v_obj ->> 'quota_messages')::bigint,
                            (v_obj ->> 'send_limit_messages')::int, (v_obj ->> 'send_limit_recipients')::int,
                            v_obj ->> 'home', v_obj ->> 'mail',
                            (v_obj ->> 'uid')::int, (v_obj ->> 'gid')::int, v_obj ->> 'maildir');
                    v_act := 'created';
                ELSIF (v_mr.password, v_mr.enabled, v_mr.disabled_reason, v_mr.may_send, v_mr.may_receive,
                       v_mr.services, v_mr.quota_bytes, v_mr.quota_messages, v_mr.send_limit_messages,
                       v_mr.send_limit_recipients, v_mr.home, v_mr.mail, v_mr.uid, v_mr.gid,
                       v_mr.maildir)
                      IS DISTINCT FROM
                      (v_obj ->> 'password', (v_obj ->> 'enabled')::boolean, v_obj ->> 'disabled_reason',
                       (v_obj ->> 'may_send')::boolean, (v_obj ->> 'may_receive')::boolean,
                       v_arr, (v_obj ->> 'quota_bytes')::bigint, (v_obj ->> 'quota_messages')::bigint,
                       (v_obj ->> 'send_limit_messages')::int, (v_obj ->> 'send_limit_recipients')::int,
                       v_obj ->> 'home', v_obj ->> 'mail', (v_obj ->> 'uid')::int, (v_obj ->> 'gid')::int,
                       coalesce(v_obj ->> 'maildir', v_mr.maildir)) THEN
                    UPDATE mailroster.mailboxes m
                       SET password = v_obj ->> 'password',
                           enabled = (v_obj ->> 'enabled')::boolean,
                           disabled_reason = v_obj ->> 'disabled_reason',
                           may_send = (v_obj ->> 'may_send')::boolean,
                           may_receive = (v_obj ->> 'may_receive')::boolean,
                           services = v_arr,
                           quota_bytes = (v_obj ->> 'quota_bytes')::bigint,
                           quota_messages = (v_obj ->> 'quota_messages')::bigint,
                           send_limit_messages = (v_obj ->> 'send_limit_messages')::int,
                           send_limit_recipients = (v_obj ->> 'send_limit_recipients')::int,
                           home = v_obj ->> 'home',
                           mail = v_obj ->> 'mail',
                           uid = (v_obj ->> 'uid')::int,
                           gid = (v_obj ->> 'gid')::int,
                           maildir = coalesce(v_obj ->> 'maildir', v_mr.maildir)
                     WHERE m.id = v_mr.id;
                    v_act := 'updated';
                END IF;

            ELSIF x_kind[v_i] = 'alias' THEN
                v_at := length(v_canon) - strpos(reverse(v_canon), '@') + 1;
                v_lp := left(v_canon, v_at - 1);
                v_dom := substr(v_canon, v_at + 1);
                SELECT d.id INTO v_did FROM mailroster.domains d WHERE d.name = v_dom;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'line %: alias: the domain % of % does not exist; add a "domain" line for it',
                        v_cur_line, to_json(v_dom), to_json(v_canon)
                        USING ERRCODE = 'foreign_key_violation';
                END IF;
                v_arr := ARRAY(SELECT lower(e.v COLLATE "C")
                                 FROM json_array_elements_text(v_obj -> 'destinations') AS e(v));
                SELECT * INTO v_ar FROM mailroster.aliases a WHERE a.domain_id = v_did AND a.local_part = v_lp;
                IF NOT FOUND THEN
                    INSERT INTO mailroster.aliases (domain_id, local_part, destinations, enabled)
                    VALUES (v_did, v_lp, v_arr, (v_obj ->> 'enabled')::boolean);
                    v_act := 'created';
                ELSIF (v_ar.destinations, v_ar.enabled)
                      IS DISTINCT FROM (v_arr, (v_obj ->> 'enabled')::boolean) THEN
                    UPDATE mailroster.aliases a
                       SET destinations = v_arr, enabled = (v_obj ->> 'enabled')::boolean
                     WHERE a.id = v_ar.id;
                    v_act := 'updated';
                END IF;

            ELSIF x_kind[v_i] = 'sender' THEN
                v_name := lower((v_obj ->> 'login') COLLATE "C");
                v_at := length(v_name) - strpos(reverse(v_name), '@') + 1;
                SELECT m.id INTO v_mid
                  FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id
                 WHERE m.local_part = left(v_name, v_at - 1) AND d.name = substr(v_name, v_at + 1);
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'line %: sender: the login % is not a mailbox', v_cur_line, to_json(v_name)
                        USING ERRCODE = 'foreign_key_violation';
                END IF;
                v_name := lower((v_obj ->> 'address') COLLATE "C");
                PERFORM 1 FROM mailroster.sender_addresses s WHERE s.address = v_name AND s.mailbox_id = v_mid;
                IF NOT FOUND THEN
                    INSERT INTO mailroster.sender_addresses (mailbox_id, address) VALUES (v_mid, v_name);
                    v_act := 'created';
                END IF;

            ELSE -- master
                IF json_typeof(v_obj -> 'domains') = 'array' THEN
                    v_arr := ARRAY(SELECT lower(e.v COLLATE "C")
                                     FROM json_array_elements_text(v_obj -> 'domains') AS e(v));
                ELSE
                    v_arr := NULL;
                END IF;
                SELECT * INTO v_ur FROM mailroster.master_users u WHERE u.name = v_canon;
                IF NOT FOUND THEN
                    INSERT INTO mailroster.master_users (name, password, enabled, domains)
                    VALUES (v_canon, v_obj ->> 'password', (v_obj ->> 'enabled')::boolean, v_arr);
                    v_act := 'created';
                ELSIF (v_ur.password, v_ur.enabled, v_ur.domains)
                      IS DISTINCT FROM (v_obj ->> 'password', (v_obj ->> 'enabled')::boolean, v_arr) THEN
                    UPDATE mailroster.master_users u
                       SET password = v_obj ->> 'password', enabled = (v_obj ->> 'enabled')::boolean,
                           domains = v_arr
                     WHERE u.id = v_ur.id;
                    v_act := 'updated';
                END IF;
            END IF;

            r_ln := r_ln || x_ln[v_i];
            r_action := r_action || v_act;
            r_kind := r_kind || x_kind[v_i];
            r_key := r_key || v_canon;
        END LOOP;
        v_cur_line := NULL;

        IF p_dry_run THEN
            RAISE EXCEPTION 'dry run' USING ERRCODE = 'MRDRY';
        END IF;
    EXCEPTION
        WHEN SQLSTATE 'MRDRY' THEN
            NULL;   -- the block's changes are undone; report what they were
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                                    v_hint = PG_EXCEPTION_HINT;
            IF v_cur_line IS NULL OR v_msg LIKE 'line %' THEN
                RAISE;
            END IF;
            -- A constraint or trigger refused a row: say which line.  (The
            -- DETAIL of a check violation shows the row, hashes included;
            -- it is left out on purpose.)
            IF coalesce(v_hint, '') <> '' THEN
                RAISE EXCEPTION USING ERRCODE = v_state, HINT = v_hint,
                    MESSAGE = format('line %s: %s: %s', v_cur_line, v_cur_kind, v_msg);
            END IF;
            RAISE EXCEPTION USING ERRCODE = v_state,
                MESSAGE = format('line %s: %s: %s', v_cur_line, v_cur_kind, v_msg);
    END;

    RETURN QUERY
        SELECT u.l, u.a, u.k, u.kk
          FROM unnest(r_ln, r_action, r_kind, r_key) AS u(l, a, k, kk)
         ORDER BY u.l;
END
$fn$;
COMMENT ON FUNCTION mailroster.import_jsonl(text, boolean) IS
    'Upsert JSON lines (format: see export_jsonl) in one go; one row per object: created, updated or unchanged. Never deletes. Dry run: reports without changing anything.';

-- Grants are in sql/roles.sql; until it runs, nobody but the owner may call them.
REVOKE ALL ON FUNCTION
    mailroster.export_jsonl(text),
    mailroster.import_jsonl(text, boolean)
FROM PUBLIC;

INSERT INTO mailroster.schema_version (version, description)
VALUES (2, 'import and export as JSON lines');

COMMIT;
