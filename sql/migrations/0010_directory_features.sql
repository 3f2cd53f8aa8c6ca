-- mailroster migration 0010: what the setups mailroster replaces hold and it
-- could not: forwarding from a mailbox, sender rights per alias, display
-- names and free metadata, and transport entries.
--
-- Apply with:  psql -v ON_ERROR_STOP=1 -X -d DB -f sql/migrations/0010_directory_features.sql
-- (as the schema owner; then run sql/roles.sql).  One transaction.
--
-- 1. FORWARDING FROM A MAILBOX.  mailboxes.forward_to (addresses, none by
--    default) and mailboxes.keep_copy.  A mailbox with forward_to keeps its
--    login, its sending rights and its mail, but its incoming mail goes to
--    forward_to, and also into the mailbox when keep_copy is set: the
--    aliases map answers "carl@x" (or "carl@x,alice@y" with a copy kept;
--    Postfix delivers an address that an alias expands to itself).  This is
--    the ISP-mail tutorial's alias row that shares a mailbox's address, and
--    PostfixAdmin's forwarding with "deliver to the local mailbox" ticked.
--    forward_to never names the mailbox itself (keep_copy says that), and
--    forwarding is not a sending right: a forward target that may send as
--    the address needs a sender grant, as before.
-- 2. SENDER RIGHTS PER ALIAS.  aliases.may_send (default true, today's
--    behaviour): whether the alias's local destinations may send as it.
--    A catch-all of seed 004 ("catchAll") gives none; the tutorial's sender
--    query gives every alias destination the right.
-- 3. DISPLAY NAMES AND METADATA.  mailboxes.display_name (one line, at most
--    256 octets) and mailboxes.metadata (a JSON object, at most 16 KiB, for
--    whatever the old setup kept per account that mailroster does not
--    interpret).  Kept, shown and exported; mailrosterd does not load them.
-- 4. TRANSPORTS.  mailroster.transports: one row per Postfix transport(5)
--    entry, pattern -> transport.  pattern is an address (local@domain,
--    with or without an extension), a domain, or ".domain" (its
--    subdomains, as Postfix looks them up when parent_domain_matches_
--    subdomains does not name transport_maps, the default); transport is
--    what transport(5) takes on the right ("relay:[10.0.0.5]:8025",
--    "lmtp:unix:private/app", "error:5.1.1 gone").  mailrosterd serves them
--    as the "transports" map; the same map may serve relay_domains (it
--    looks up domains only).  A directory table (change log, NOTIFY): only
--    a full admin writes it, since a transport can send any domain's mail
--    anywhere.
-- 5. SHARED MAILBOXES AND SIEVE SCRIPTS.  mailroster.shared_mailboxes (who
--    shares folders with whom: Dovecot's acl_shared_dict; the rights stay
--    in the folders' dovecot-acl files) and mailroster.sieve_scripts (a
--    mailbox's one Sieve script).  Not directory tables: mailrosterd does
--    not load them; migration 0011 shows them to Dovecot's dict-sql.
--
-- The export format gains the new fields (mailbox: display_name, metadata,
-- forward_to, keep_copy; alias: may_send) and three kinds, after the
-- others in this order:
--   {"kind":"transport","pattern":"app.example.com","transport":"relay:[10.0.0.5]:8025","enabled":true}
--   {"kind":"share","mailbox":"alice@example.com","shared_with":"bob@example.com"}
--   {"kind":"sieve","address":"alice@example.com","script":"require \"fileinto\";\n..."}
-- (shares and sieve scripts: section 5 below); the import
-- accepts lines with or without the new keys (see import_jsonl below).

\set ON_ERROR_STOP 1

BEGIN;

------------------------------------------------------------------------------
-- 1-3. New columns
------------------------------------------------------------------------------

ALTER TABLE mailroster.mailboxes
    ADD COLUMN display_name text
        CONSTRAINT mailboxes_display_name_check
        CHECK (octet_length(display_name) <= 256 AND display_name !~ '[\x01-\x1f\x7f]'),
    ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'
        CONSTRAINT mailboxes_metadata_check
        CHECK (jsonb_typeof(metadata) = 'object' AND octet_length(metadata::text) <= 16384),
    ADD COLUMN forward_to text[] NOT NULL DEFAULT '{}'
        CONSTRAINT mailboxes_forward_to_check
        CHECK (cardinality(forward_to) <= 1000 AND mailroster.are_addresses(forward_to, false)),
    ADD COLUMN keep_copy boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN mailroster.mailboxes.forward_to IS
    'Incoming mail goes to these addresses instead of (keep_copy = false) or besides (keep_copy = true) the mailbox; empty = no forwarding. Never the mailbox''s own address.';
COMMENT ON COLUMN mailroster.mailboxes.metadata IS
    'Free per-account data (a JSON object) kept for the sysop; mailroster does not interpret it.';

ALTER TABLE mailroster.aliases
    ADD COLUMN may_send boolean NOT NULL DEFAULT true;
COMMENT ON COLUMN mailroster.aliases.may_send IS
    'Whether the alias''s local mailbox destinations may send as its address (senders map).';

-- BEFORE INSERT OR UPDATE OF forward_to: a forward to the mailbox itself is
-- what keep_copy says; refused so that there is one way to say it.
CREATE FUNCTION mailroster.tg_mailbox_forward() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    v_addr text;
BEGIN
    IF cardinality(NEW.forward_to) = 0 THEN
        RETURN NEW;
    END IF;
    SELECT NEW.local_part || '@' || d.name INTO v_addr FROM mailroster.domains d WHERE d.id = NEW.domain_id;
    IF v_addr = ANY (NEW.forward_to) THEN
        RAISE EXCEPTION 'mailbox % cannot forward to itself; keep a copy with keep_copy (keep-copy=yes)', v_addr
            USING ERRCODE = 'check_violation', CONSTRAINT = 'mailboxes_forward_self';
    END IF;
    RETURN NEW;
END
$fn$;
CREATE TRIGGER mailboxes_40_forward BEFORE INSERT OR UPDATE OF forward_to, local_part, domain_id
    ON mailroster.mailboxes
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_mailbox_forward();

------------------------------------------------------------------------------
-- 4. Transports
------------------------------------------------------------------------------

-- An address, a domain or ".domain": the keys Postfix asks a transport map.
CREATE FUNCTION mailroster.is_transport_pattern(p text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN p IS NOT NULL
       AND (mailroster.is_address(p, false)
            OR mailroster.is_domain_name(p)
            OR (left(p, 1) = '.' AND mailroster.is_domain_name(substr(p, 2))));

CREATE TABLE mailroster.transports (
    id         bigserial PRIMARY KEY,
    pattern    text NOT NULL UNIQUE
               CONSTRAINT transports_pattern_check CHECK (mailroster.is_transport_pattern(pattern)),
    -- transport(5)'s right-hand side: [transport]:[nexthop], or error:text
    transport  text NOT NULL
               CONSTRAINT transports_transport_check
               CHECK (octet_length(transport) BETWEEN 1 AND 1024
                      AND transport ~ '^[A-Za-z0-9_-]*:'
                      AND transport !~ '[\x01-\x1f\x7f]'),
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE mailroster.transports IS
    'Postfix transport(5) entries served as the "transports" map: pattern (local@domain, domain or .domain for its subdomains) -> transport (e.g. relay:[10.0.0.5]:8025). Full admins only.';

ALTER TABLE mailroster.change_log DROP CONSTRAINT change_log_tbl_check;
ALTER TABLE mailroster.change_log ADD CONSTRAINT change_log_tbl_check
    CHECK (tbl IN ('domains', 'mailboxes', 'aliases', 'sender_addresses', 'master_users', 'transports'));

CREATE TRIGGER transports_10_lock BEFORE INSERT OR UPDATE OR DELETE ON mailroster.transports
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_lock_directory();
CREATE TRIGGER transports_30_updated_at BEFORE UPDATE ON mailroster.transports
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_set_updated_at();
CREATE TRIGGER transports_90_change_log AFTER INSERT OR UPDATE OR DELETE ON mailroster.transports
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_log_change();
CREATE TRIGGER transports_no_truncate BEFORE TRUNCATE ON mailroster.transports
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_refuse_truncate();

------------------------------------------------------------------------------
-- 5. Shared mailboxes and Sieve scripts (what Dovecot reads and writes
--    through its dict is migration 0011's; its header explains the
--    design of shared_mailboxes)
------------------------------------------------------------------------------

-- The address of a mailbox: local_part@domain, what mailrosterd's userdb
-- answers as the user name.  NULL for no such mailbox.
CREATE FUNCTION mailroster.mailbox_address(p_id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = mailroster, pg_temp
AS $fn$
    SELECT m.local_part || '@' || d.name
      FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id
     WHERE m.id = p_id
$fn$;

-- The mailbox of an address (split at its last '@'; domains are stored
-- in lower case), NULL for none.
CREATE FUNCTION mailroster.mailbox_id_of(p_address text) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = mailroster, pg_temp
AS $fn$
    SELECT m.id
      FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id
     WHERE m.local_part = substring(p_address FROM '^(.*)@[^@]*$')
       AND d.name = lower(substring(p_address FROM '@([^@]*)$'))
$fn$;

-- Shared mailboxes: who shares folders with whom.
CREATE TABLE mailroster.shared_mailboxes (
    mailbox_id     bigint NOT NULL REFERENCES mailroster.mailboxes ON DELETE CASCADE,
    shared_to_id   bigint NOT NULL REFERENCES mailroster.mailboxes ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- written by tg_shared_mailboxes_names() from the ids: Dovecot's key
    shared_mailbox text NOT NULL,
    shared_to      text NOT NULL,
    -- the dict's value ("1"); a column only so that dict-sql can write it
    dict_value     smallint NOT NULL DEFAULT 1
                   CONSTRAINT shared_mailboxes_dict_value_check CHECK (dict_value = 1),
    PRIMARY KEY (mailbox_id, shared_to_id),
    -- the arbiter of dict-sql's ON CONFLICT (shared_mailbox,shared_to)
    CONSTRAINT shared_mailboxes_names_key UNIQUE (shared_mailbox, shared_to)
);
-- "who shared to bob" and the cascade from a deleted mailbox
CREATE INDEX shared_mailboxes_shared_to_id_idx ON mailroster.shared_mailboxes (shared_to_id);

-- Ids from the addresses when they are missing (a row from Dovecot), then
-- the addresses from the ids, always.  SECURITY DEFINER: Dovecot's dict
-- role writes through the view and may not read the mailboxes.
CREATE FUNCTION mailroster.tg_shared_mailboxes_names() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = mailroster, pg_temp
AS $fn$
BEGIN
    IF NEW.mailbox_id IS NULL THEN
        NEW.mailbox_id := mailroster.mailbox_id_of(NEW.shared_mailbox);
        IF NEW.mailbox_id IS NULL THEN
            RAISE EXCEPTION 'cannot share %: not a mailbox', coalesce(quote_literal(NEW.shared_mailbox), 'NULL')
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    IF NEW.shared_to_id IS NULL THEN
        NEW.shared_to_id := mailroster.mailbox_id_of(NEW.shared_to);
        IF NEW.shared_to_id IS NULL THEN
            RAISE EXCEPTION 'cannot share to %: not a mailbox', coalesce(quote_literal(NEW.shared_to), 'NULL')
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    NEW.shared_mailbox := mailroster.mailbox_address(NEW.mailbox_id);
    NEW.shared_to := mailroster.mailbox_address(NEW.shared_to_id);
    IF NEW.shared_mailbox IS NULL OR NEW.shared_to IS NULL THEN
        RAISE EXCEPTION 'cannot share mailbox % to mailbox %: no such mailbox', NEW.mailbox_id, NEW.shared_to_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$fn$;

CREATE TRIGGER shared_mailboxes_names
    BEFORE INSERT OR UPDATE ON mailroster.shared_mailboxes
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_shared_mailboxes_names();

-- A renamed mailbox (a domain cannot be renamed): its shares get the new
-- address (the update re-runs the trigger above).  Dovecot's dovecot-acl files still
-- name the old address: rights follow a user name, not a mailbox.
CREATE FUNCTION mailroster.tg_shares_follow_rename() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = mailroster, pg_temp
AS $fn$
BEGIN
    UPDATE mailroster.shared_mailboxes SET mailbox_id = mailbox_id
     WHERE mailbox_id = NEW.id OR shared_to_id = NEW.id;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER mailboxes_shares_follow_rename
    AFTER UPDATE OF local_part, domain_id ON mailroster.mailboxes
    FOR EACH ROW WHEN (OLD.local_part IS DISTINCT FROM NEW.local_part OR OLD.domain_id IS DISTINCT FROM NEW.domain_id)
    EXECUTE FUNCTION mailroster.tg_shares_follow_rename();

-- Sieve scripts: one a mailbox.
CREATE TABLE mailroster.sieve_scripts (
    mailbox_id bigint PRIMARY KEY REFERENCES mailroster.mailboxes ON DELETE CASCADE,
    -- Pigeonhole reads the whole script into memory at each compile
    script     text NOT NULL
               CONSTRAINT sieve_scripts_script_check
               CHECK (octet_length(script) BETWEEN 1 AND 262144),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION mailroster.tg_sieve_scripts_stamp() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
    IF NEW.script IS DISTINCT FROM OLD.script THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$fn$;

CREATE TRIGGER sieve_scripts_stamp
    BEFORE UPDATE ON mailroster.sieve_scripts
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_sieve_scripts_stamp();

REVOKE ALL ON FUNCTION
    mailroster.mailbox_address(bigint),
    mailroster.mailbox_id_of(text),
    mailroster.tg_shared_mailboxes_names(),
    mailroster.tg_shares_follow_rename(),
    mailroster.tg_sieve_scripts_stamp()
FROM PUBLIC;

------------------------------------------------------------------------------
-- Export: the new fields and the transport kind
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION mailroster.export_jsonl(p_domain text DEFAULT NULL) RETURNS SETOF text
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
                      '"maildir":%s,"display_name":%s,"metadata":%s,"forward_to":%s,"keep_copy":%s}',
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
                      to_json(m.maildir),
                      coalesce(to_json(m.display_name)::text, 'null'),
                      -- jsonb's text form has spaces: keep the format's own
                      -- (no spaces) by rebuilding it from json
                      (SELECT coalesce('{' || string_agg(to_json(e.key)::text || ':' || e.value::text, ','
                                                         ORDER BY e.key COLLATE "C") || '}', '{}')
                         FROM jsonb_each(m.metadata) e),
                      to_json(m.forward_to), to_json(m.keep_copy))
          FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id
         WHERE v_domain_id IS NULL OR d.id = v_domain_id
        UNION ALL
        SELECT 3, (a.local_part || '@' || d.name) COLLATE "C", '',
               format('{"kind":"alias","source":%s,"destinations":%s,"enabled":%s,"may_send":%s}',
                      to_json(a.local_part || '@' || d.name), to_json(a.destinations),
                      to_json(a.enabled), to_json(a.may_send))
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
        UNION ALL
        SELECT 6, t.pattern COLLATE "C", '',
               format('{"kind":"transport","pattern":%s,"transport":%s,"enabled":%s}',
                      to_json(t.pattern), to_json(t.transport), to_json(t.enabled))
          FROM mailroster.transports t
         WHERE v_domain_id IS NULL
        UNION ALL
        SELECT 7, (mo.local_part || '@' || dom.name) COLLATE "C", (mt.local_part || '@' || dt.name) COLLATE "C",
               format('{"kind":"share","mailbox":%s,"shared_with":%s}',
                      to_json(mo.local_part || '@' || dom.name), to_json(mt.local_part || '@' || dt.name))
          FROM mailroster.shared_mailboxes sh
          JOIN mailroster.mailboxes mo ON mo.id = sh.mailbox_id JOIN mailroster.domains dom ON dom.id = mo.domain_id
          JOIN mailroster.mailboxes mt ON mt.id = sh.shared_to_id JOIN mailroster.domains dt ON dt.id = mt.domain_id
         WHERE v_domain_id IS NULL OR dom.id = v_domain_id
        UNION ALL
        SELECT 8, (m.local_part || '@' || d.name) COLLATE "C", '',
               format('{"kind":"sieve","address":%s,"script":%s}',
                      to_json(m.local_part || '@' || d.name), to_json(sv.script))
          FROM mailroster.sieve_scripts sv
          JOIN mailroster.mailboxes m ON m.id = sv.mailbox_id JOIN mailroster.domains d ON d.id = m.domain_id
         WHERE v_domain_id IS NULL OR d.id = v_domain_id
    ) x
    ORDER BY x.grp, x.k1, x.k2;
END
$fn$;

------------------------------------------------------------------------------
-- Import: the new fields and the transport kind
------------------------------------------------------------------------------

-- The import of migration 0002 stays as it is (its checks, its order, its
-- answers) and becomes the core of a new import_jsonl: this one takes the
-- new keys and transport lines off each line, hands the rest to the core,
-- then applies what it took, in the same transaction under the same
-- directory lock.  A line without the new keys leaves those fields as they
-- are (an export made before this migration imports unchanged).
ALTER FUNCTION mailroster.import_jsonl(text, boolean) RENAME TO import_jsonl_core;
REVOKE ALL ON FUNCTION mailroster.import_jsonl_core(text, boolean) FROM PUBLIC;

CREATE FUNCTION mailroster.import_jsonl(p_lines text, p_dry_run boolean DEFAULT false)
    RETURNS TABLE (line int, action text, kind text, key text)
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    c_mbox_keys CONSTANT text[] := '{display_name,metadata,forward_to,keep_copy}';
    c_tr_keys   CONSTANT text := 'enabled,kind,pattern,transport';
    v_lines  text[];
    v_core   text[];
    v_obj    jsonb;
    v_extra  jsonb;
    v_n      int;
    v_k      text;
    v_key    text;
    v_fwd    text[];
    v_row    record;
    v_keys   text;
    -- what the core answered, by line
    c_ln     int[] := '{}';
    c_action text[] := '{}';
    c_kind   text[] := '{}';
    c_key    text[] := '{}';
    -- extras taken off lines: line, kind, object
    e_ln     int[] := '{}';
    e_kind   text[] := '{}';
    e_obj    jsonb[] := '{}';
    v_i      int;
    v_i2     int;
    v_act    text;
    v_id     bigint;
    v_id2    bigint;
    v_changed boolean;
BEGIN
    IF p_lines IS NULL THEN
        RAISE EXCEPTION 'import_jsonl: no input (p_lines is NULL)' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    BEGIN
        PERFORM pg_catalog.pg_advisory_xact_lock(mailroster.directory_lock_key());
        v_lines := string_to_array(p_lines, E'\n');
        v_core := v_lines;
        FOR v_n IN 1 .. coalesce(cardinality(v_lines), 0) LOOP
            CONTINUE WHEN v_lines[v_n] !~ '"(kind|display_name|metadata|forward_to|keep_copy|may_send)"';
            BEGIN
                v_obj := ltrim(v_lines[v_n], chr(65279))::jsonb;
            EXCEPTION WHEN OTHERS THEN
                CONTINUE;           -- the core names the line and its fault
            END;
            CONTINUE WHEN jsonb_typeof(v_obj) <> 'object';
            v_k := v_obj ->> 'kind';
            IF v_k = 'transport' THEN
                SELECT string_agg(x, ',' ORDER BY x COLLATE "C") INTO v_keys FROM jsonb_object_keys(v_obj) x;
                IF v_keys IS DISTINCT FROM c_tr_keys THEN
                    RAISE EXCEPTION 'line %: transport: keys are kind, pattern, transport, enabled (got %)', v_n, v_keys
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                IF jsonb_typeof(v_obj -> 'pattern') <> 'string' OR jsonb_typeof(v_obj -> 'transport') <> 'string'
                   OR jsonb_typeof(v_obj -> 'enabled') <> 'boolean' THEN
                    RAISE EXCEPTION 'line %: transport: pattern and transport must be strings, enabled true or false', v_n
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                v_key := lower((v_obj ->> 'pattern') COLLATE "C");
                IF NOT mailroster.is_transport_pattern(v_key) THEN
                    RAISE EXCEPTION 'line %: transport: pattern % is not an address, a domain or .domain (A-labels)',
                        v_n, to_json(v_obj ->> 'pattern')
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                v_obj := jsonb_set(v_obj, '{pattern}', to_jsonb(v_key));
                e_ln := e_ln || v_n; e_kind := e_kind || 'transport'::text; e_obj := e_obj || v_obj;
                v_core[v_n] := '';
            ELSIF v_k = 'mailbox' AND v_obj ?| c_mbox_keys THEN
                v_extra := jsonb_build_object('address', v_obj -> 'address');
                IF v_obj ? 'display_name' THEN
                    IF jsonb_typeof(v_obj -> 'display_name') NOT IN ('string', 'null') THEN
                        RAISE EXCEPTION 'line %: mailbox: "display_name" must be a string or null', v_n
                            USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                    v_extra := v_extra || jsonb_build_object('display_name', v_obj -> 'display_name');
                END IF;
                IF v_obj ? 'metadata' THEN
                    IF jsonb_typeof(v_obj -> 'metadata') <> 'object' THEN
                        RAISE EXCEPTION 'line %: mailbox: "metadata" must be an object', v_n
                            USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                    v_extra := v_extra || jsonb_build_object('metadata', v_obj -> 'metadata');
                END IF;
                IF v_obj ? 'forward_to' THEN
                    IF jsonb_typeof(v_obj -> 'forward_to') <> 'array'
                       OR EXISTS (SELECT 1 FROM jsonb_array_elements(v_obj -> 'forward_to') e
                                   WHERE jsonb_typeof(e) <> 'string') THEN
                        RAISE EXCEPTION 'line %: mailbox: "forward_to" must be an array of addresses', v_n
                            USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                    v_fwd := ARRAY(SELECT lower(e COLLATE "C") FROM jsonb_array_elements_text(v_obj -> 'forward_to') e);
                    IF NOT mailroster.are_addresses(v_fwd, false) THEN
                        RAISE EXCEPTION 'line %: mailbox: "forward_to" holds something that is not an address (local@domain, A-label)', v_n
                            USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                    v_extra := v_extra || jsonb_build_object('forward_to', to_jsonb(v_fwd));
                END IF;
                IF v_obj ? 'keep_copy' THEN
                    IF jsonb_typeof(v_obj -> 'keep_copy') <> 'boolean' THEN
                        RAISE EXCEPTION 'line %: mailbox: "keep_copy" must be true or false', v_n
                            USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                    v_extra := v_extra || jsonb_build_object('keep_copy', v_obj -> 'keep_copy');
                END IF;
                e_ln := e_ln || v_n; e_kind := e_kind || 'mailbox'::text; e_obj := e_obj || v_extra;
                v_core[v_n] := (v_obj - c_mbox_keys)::text;
            ELSIF v_k IN ('share', 'sieve') THEN
                SELECT string_agg(x, ',' ORDER BY x COLLATE "C") INTO v_keys FROM jsonb_object_keys(v_obj) x;
                IF v_keys IS DISTINCT FROM (CASE v_k WHEN 'share' THEN 'kind,mailbox,shared_with' ELSE 'address,kind,script' END) THEN
                    RAISE EXCEPTION 'line %: %: keys are %', v_n, v_k,
                        CASE v_k WHEN 'share' THEN 'kind, mailbox, shared_with' ELSE 'kind, address, script' END
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                IF EXISTS (SELECT 1 FROM jsonb_each(v_obj) e WHERE jsonb_typeof(e.value) <> 'string') THEN
                    RAISE EXCEPTION 'line %: %: every value is a string', v_n, v_k
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                IF v_k = 'sieve' AND (v_obj ->> 'script' = '' OR octet_length(v_obj ->> 'script') > 262144) THEN
                    RAISE EXCEPTION 'line %: sieve: the script is empty or longer than 256 KiB', v_n
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                FOREACH v_key IN ARRAY CASE v_k WHEN 'share' THEN ARRAY['mailbox', 'shared_with'] ELSE ARRAY['address'] END LOOP
                    IF NOT mailroster.is_address(lower((v_obj ->> v_key) COLLATE "C"), false) THEN
                        RAISE EXCEPTION 'line %: %: % % is not an address (local@domain, A-label)', v_n, v_k, v_key,
                            to_json(v_obj ->> v_key)
                            USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                    v_obj := jsonb_set(v_obj, ARRAY[v_key], to_jsonb(lower((v_obj ->> v_key) COLLATE "C")));
                END LOOP;
                e_ln := e_ln || v_n; e_kind := e_kind || v_k; e_obj := e_obj || v_obj;
                v_core[v_n] := '';
            ELSIF v_k = 'alias' AND v_obj ? 'may_send' THEN
                IF jsonb_typeof(v_obj -> 'may_send') <> 'boolean' THEN
                    RAISE EXCEPTION 'line %: alias: "may_send" must be true or false', v_n
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                e_ln := e_ln || v_n; e_kind := e_kind || 'alias'::text;
                e_obj := e_obj || jsonb_build_object('source', v_obj -> 'source', 'may_send', v_obj -> 'may_send');
                v_core[v_n] := (v_obj - 'may_send')::text;
            END IF;
        END LOOP;

        -- the core: checks every line, applies domains .. masters
        FOR v_row IN SELECT * FROM mailroster.import_jsonl_core(array_to_string(v_core, E'\n'), false) LOOP
            c_ln := c_ln || v_row.line; c_action := c_action || v_row.action;
            c_kind := c_kind || v_row.kind; c_key := c_key || v_row.key;
        END LOOP;

        -- then what it did not see, in line order
        FOR v_i IN 1 .. cardinality(e_ln) LOOP
            v_obj := e_obj[v_i];
            v_changed := false;
            IF e_kind[v_i] IN ('share', 'sieve') THEN
                -- after the core: the mailboxes named exist now, or never will
                SELECT m.id INTO v_id FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id
                 WHERE m.local_part || '@' || d.name = v_obj ->> CASE e_kind[v_i] WHEN 'share' THEN 'mailbox' ELSE 'address' END;
                IF e_kind[v_i] = 'share' THEN
                    SELECT m.id INTO v_id2 FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id
                     WHERE m.local_part || '@' || d.name = v_obj ->> 'shared_with';
                END IF;
                IF v_id IS NULL OR (e_kind[v_i] = 'share' AND v_id2 IS NULL) THEN
                    RAISE EXCEPTION 'line %: %: % is not a mailbox', e_ln[v_i], e_kind[v_i],
                        CASE WHEN v_id IS NULL THEN v_obj ->> CASE e_kind[v_i] WHEN 'share' THEN 'mailbox' ELSE 'address' END
                             ELSE v_obj ->> 'shared_with' END
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                IF e_kind[v_i] = 'share' THEN
                    v_key := (v_obj ->> 'mailbox') || ' ' || (v_obj ->> 'shared_with');
                    INSERT INTO mailroster.shared_mailboxes (mailbox_id, shared_to_id) VALUES (v_id, v_id2)
                    ON CONFLICT DO NOTHING;
                    v_act := CASE WHEN FOUND THEN 'created' ELSE 'unchanged' END;
                ELSE
                    v_key := v_obj ->> 'address';
                    SELECT CASE WHEN s.script IS NULL THEN 'created'
                                WHEN s.script = v_obj ->> 'script' THEN 'unchanged' ELSE 'updated' END
                      INTO v_act
                      FROM (SELECT 1) one LEFT JOIN mailroster.sieve_scripts s ON s.mailbox_id = v_id;
                    IF v_act <> 'unchanged' THEN
                        INSERT INTO mailroster.sieve_scripts (mailbox_id, script) VALUES (v_id, v_obj ->> 'script')
                        ON CONFLICT (mailbox_id) DO UPDATE SET script = EXCLUDED.script, updated_at = now();
                    END IF;
                END IF;
                c_ln := c_ln || e_ln[v_i]; c_action := c_action || v_act;
                c_kind := c_kind || e_kind[v_i]; c_key := c_key || v_key;
                v_id := NULL;
                v_id2 := NULL;
                CONTINUE;
            END IF;
            IF e_kind[v_i] = 'transport' THEN
                SELECT t.id, (t.transport, t.enabled) IS DISTINCT FROM
                              (v_obj ->> 'transport', (v_obj ->> 'enabled')::boolean)
                  INTO v_id, v_changed
                  FROM mailroster.transports t WHERE t.pattern = v_obj ->> 'pattern';
                IF v_id IS NULL THEN
                    INSERT INTO mailroster.transports (pattern, transport, enabled)
                    VALUES (v_obj ->> 'pattern', v_obj ->> 'transport', (v_obj ->> 'enabled')::boolean);
                    v_act := 'created';
                ELSIF v_changed THEN
                    UPDATE mailroster.transports SET transport = v_obj ->> 'transport',
                           enabled = (v_obj ->> 'enabled')::boolean
                     WHERE id = v_id;
                    v_act := 'updated';
                ELSE
                    v_act := 'unchanged';
                END IF;
                c_ln := c_ln || e_ln[v_i]; c_action := c_action || v_act;
                c_kind := c_kind || 'transport'::text; c_key := c_key || (v_obj ->> 'pattern');
                v_id := NULL;
                CONTINUE;
            END IF;
            -- mailbox or alias: the core created or found the row; its key
            -- is the canonical address the core answered for this line
            v_i2 := array_position(c_ln, e_ln[v_i]);
            v_key := c_key[v_i2];
            IF e_kind[v_i] = 'mailbox' THEN
                SELECT m.id INTO v_id FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id
                 WHERE d.name = split_part(v_key, '@', 2) AND m.local_part = split_part(v_key, '@', 1);
                v_fwd := CASE WHEN v_obj ? 'forward_to'
                              THEN ARRAY(SELECT jsonb_array_elements_text(v_obj -> 'forward_to')) END;
                UPDATE mailroster.mailboxes m
                   SET display_name = CASE WHEN v_obj ? 'display_name' THEN v_obj ->> 'display_name'
                                           ELSE m.display_name END,
                       metadata = coalesce(v_obj -> 'metadata', m.metadata),
                       forward_to = coalesce(v_fwd, m.forward_to),
                       keep_copy = coalesce((v_obj ->> 'keep_copy')::boolean, m.keep_copy)
                 WHERE m.id = v_id
                   AND (m.display_name, m.metadata, m.forward_to, m.keep_copy) IS DISTINCT FROM
                       (CASE WHEN v_obj ? 'display_name' THEN v_obj ->> 'display_name' ELSE m.display_name END,
                        coalesce(v_obj -> 'metadata', m.metadata), coalesce(v_fwd, m.forward_to),
                        coalesce((v_obj ->> 'keep_copy')::boolean, m.keep_copy));
            ELSE
                UPDATE mailroster.aliases a SET may_send = (v_obj ->> 'may_send')::boolean
                  FROM mailroster.domains d
                 WHERE d.id = a.domain_id AND d.name = split_part(v_key, '@', 2)
                   AND a.local_part = split_part(v_key, '@', 1)
                   AND a.may_send IS DISTINCT FROM (v_obj ->> 'may_send')::boolean;
            END IF;
            IF FOUND AND c_action[v_i2] = 'unchanged' THEN
                c_action[v_i2] := 'updated';
            END IF;
            v_id := NULL;
        END LOOP;

        IF p_dry_run THEN
            RAISE EXCEPTION 'dry run' USING ERRCODE = 'MRDRY';
        END IF;
    EXCEPTION WHEN SQLSTATE 'MRDRY' THEN
        NULL;               -- the dry run: everything above is undone
    END;
    RETURN QUERY
    SELECT u.ln, u.act, u.knd, u.ky
      FROM unnest(c_ln, c_action, c_kind, c_key) AS u(ln, act, knd, ky)
     ORDER BY u.ln;
END
$fn$;
COMMENT ON FUNCTION mailroster.import_jsonl(text, boolean) IS
    'JSON lines (migration 0002, with migration 0010''s fields and transport lines) into the directory; see both migrations';

INSERT INTO mailroster.schema_version (version, description)
VALUES (10, 'forwarding from mailboxes, sender rights per alias, display names and metadata, transports');

COMMIT;
