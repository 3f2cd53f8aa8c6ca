-- mailroster migration 0001: initial schema.
--
-- Apply with:  psql -v ON_ERROR_STOP=1 -X -d DB -f sql/migrations/0001_initial.sql
-- (as the role that will own the schema; then run sql/roles.sql).
-- The whole migration is one transaction: it applies completely, including
-- its schema_version row, or not at all.  Running it a second time fails at
-- CREATE SCHEMA and changes nothing.
--
-- Target: PostgreSQL 15, database encoding UTF8.
--
-- CHANGE LOG ORDERING (see docs DESIGN.md, "Change-log order is not commit
-- order"): every write to a directory table (domains, mailboxes, aliases,
-- sender_addresses, master_users) first takes the transaction-level advisory
-- lock
--
--     pg_advisory_xact_lock(7881696737372369780)
--         = 0x6d61696c726f7374 = the ASCII bytes "mailrost"
--         (shown in pg_locks as locktype 'advisory', classid 1835100524,
--          objid 1919906676, objsubid 1)
--
-- (function mailroster.directory_lock_key() returns the constant) in a
-- BEFORE STATEMENT trigger, and the AFTER ROW trigger that allocates the
-- change_log seq takes it again before nextval().  So directory writers are
-- serialised, a seq is only ever allocated while holding the lock, and the
-- lock is released only after the commit is visible: commit order equals
-- seq order, and a reader that asks for seq > last_applied cannot skip a row
-- that commits later with a smaller seq.  change_log_seq_seq must keep
-- CACHE 1 (a per-session cache would hand out out-of-order values).

\set ON_ERROR_STOP 1

BEGIN;

DO $check$
BEGIN
    IF current_setting('server_version_num')::int < 150000 THEN
        RAISE EXCEPTION 'mailroster needs PostgreSQL 15 or later (this is %)',
            current_setting('server_version');
    END IF;
    IF (SELECT pg_catalog.pg_encoding_to_char(encoding) FROM pg_catalog.pg_database
         WHERE datname = pg_catalog.current_database()) <> 'UTF8' THEN
        RAISE EXCEPTION 'mailroster needs a UTF8 database (addresses may be UTF-8)';
    END IF;
END
$check$;

CREATE SCHEMA mailroster;
REVOKE ALL ON SCHEMA mailroster FROM PUBLIC;
COMMENT ON SCHEMA mailroster IS
    'mailroster account directory; see sql/README.md';

------------------------------------------------------------------------------
-- Validation functions (pure, immutable; used by CHECK constraints).
-- Character classes are spelled out as code points so that the result never
-- depends on the database locale.
------------------------------------------------------------------------------

-- The advisory lock key that serialises directory writers (see header).
CREATE FUNCTION mailroster.directory_lock_key() RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 7881696737372369780;
COMMENT ON FUNCTION mailroster.directory_lock_key() IS
    'Key of pg_advisory_xact_lock taken by every directory write: 0x6d61696c726f7374 ("mailrost")';

-- Canonical domain name: lowercase A-label, LDH labels of 1..63 octets with
-- inner hyphens only (so xn-- labels are allowed), separated by single dots,
-- no trailing dot, 1..253 octets.
CREATE FUNCTION mailroster.is_domain_name(d text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN d IS NOT NULL
       AND octet_length(d) BETWEEN 1 AND 253
       AND d ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$';

-- Local part syntax shared by every address column: 1..64 octets, no ASCII
-- uppercase, no leading/trailing dot, no "..", no whitespace or control
-- characters (ASCII, C1, Unicode White_Space), none of @ , " \ ( ) < > [ ] ; :
-- The recipient delimiter '+' is refused separately where needed.
CREATE FUNCTION mailroster.is_local_part(lp text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN lp IS NOT NULL
       AND octet_length(lp) BETWEEN 1 AND 64
       AND lp !~ '[A-Z]'
       AND lp !~ '^\.|\.$'
       AND strpos(lp, '..') = 0
       AND lp !~ '[\x01-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]'
       AND lp !~ '[]["@,\\()<>;:]';

-- Local part of a hosted mailbox or alias source: the above, without '+'.
CREATE FUNCTION mailroster.is_mailbox_local_part(lp text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN mailroster.is_local_part(lp) AND strpos(lp, '+') = 0;

-- An address "local@domain" in canonical lowercase form (any domain, hosted
-- or not; '+' allowed in the local part), at most 254 octets; with
-- allow_wildcard also "@domain".
CREATE FUNCTION mailroster.is_address(a text, allow_wildcard boolean) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN a IS NOT NULL
       AND octet_length(a) <= 254
       AND CASE
             WHEN strpos(a, '@') = 1 THEN
                  coalesce(allow_wildcard, false)
                  AND mailroster.is_domain_name(substr(a, 2))
             WHEN strpos(a, '@') > 1 THEN
                  mailroster.is_local_part(split_part(a, '@', 1))
                  AND mailroster.is_domain_name(substr(a, strpos(a, '@') + 1))
             ELSE false
           END;

-- Every element of a one-dimensional array is a valid address (NULL elements
-- are not); an empty array passes (count limits are separate constraints).
CREATE FUNCTION mailroster.are_addresses(arr text[], allow_wildcard boolean) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN arr IS NOT NULL
       AND coalesce(array_ndims(arr), 1) = 1
       AND (SELECT coalesce(bool_and(coalesce(mailroster.is_address(x, allow_wildcard), false)), true)
              FROM unnest(arr) AS x);

CREATE FUNCTION mailroster.are_domain_names(arr text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN arr IS NOT NULL
       AND coalesce(array_ndims(arr), 1) = 1
       AND (SELECT coalesce(bool_and(coalesce(mailroster.is_domain_name(x), false)), true)
              FROM unnest(arr) AS x);

-- A Dovecot password hash with its {SCHEME} prefix; no control characters
-- (the auth protocols are line and tab based).
CREATE FUNCTION mailroster.is_password_hash(p text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN p IS NOT NULL
       AND p ~ '^\{[A-Z0-9.-]+\}.+'
       AND p !~ '[\x01-\x1f\x7f]';

------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------

CREATE TABLE mailroster.schema_version (
    version     int PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    description text
);
COMMENT ON TABLE mailroster.schema_version IS
    'One row per applied migration (sql/migrations/NNNN_*.sql)';

CREATE TABLE mailroster.domains (
    id                    bigserial PRIMARY KEY,
    name                  text NOT NULL UNIQUE
                          CONSTRAINT domains_name_check CHECK (mailroster.is_domain_name(name)),
    enabled               boolean NOT NULL DEFAULT true,
    disabled_reason       text,
    quota_bytes           bigint NOT NULL DEFAULT 0
                          CONSTRAINT domains_quota_bytes_check CHECK (quota_bytes >= 0),
    quota_messages        bigint NOT NULL DEFAULT 0
                          CONSTRAINT domains_quota_messages_check CHECK (quota_messages >= 0),
    send_limit_messages   int NOT NULL DEFAULT 0
                          CONSTRAINT domains_send_limit_messages_check CHECK (send_limit_messages >= 0),
    send_limit_recipients int NOT NULL DEFAULT 0
                          CONSTRAINT domains_send_limit_recipients_check CHECK (send_limit_recipients >= 0),
    send_limit_window     int NOT NULL DEFAULT 3600
                          CONSTRAINT domains_send_limit_window_check CHECK (send_limit_window > 0),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE mailroster.domains IS
    'Hosted domains. name is the lowercase A-label and cannot be changed (rename = remove + add). 0 = unlimited for quota_* and send_limit_*; send_limit_window in seconds.';

CREATE TABLE mailroster.mailboxes (
    id                    bigserial PRIMARY KEY,
    domain_id             bigint NOT NULL REFERENCES mailroster.domains ON DELETE RESTRICT,
    local_part            text NOT NULL
                          CONSTRAINT mailboxes_local_part_check CHECK (mailroster.is_mailbox_local_part(local_part)),
    password              text
                          CONSTRAINT mailboxes_password_check CHECK (password IS NULL OR mailroster.is_password_hash(password)),
    enabled               boolean NOT NULL DEFAULT true,
    disabled_reason       text,
    may_send              boolean NOT NULL DEFAULT true,
    may_receive           boolean NOT NULL DEFAULT true,
    services              text[] NOT NULL DEFAULT '{imap,pop3,submission,lmtp,sieve}'
                          CONSTRAINT mailboxes_services_check
                          CHECK (coalesce(array_ndims(services), 1) = 1
                                 AND services <@ '{imap,pop3,submission,lmtp,sieve}'::text[]),
    quota_bytes           bigint
                          CONSTRAINT mailboxes_quota_bytes_check CHECK (quota_bytes >= 0),
    quota_messages        bigint
                          CONSTRAINT mailboxes_quota_messages_check CHECK (quota_messages >= 0),
    send_limit_messages   int
                          CONSTRAINT mailboxes_send_limit_messages_check CHECK (send_limit_messages >= 0),
    send_limit_recipients int
                          CONSTRAINT mailboxes_send_limit_recipients_check CHECK (send_limit_recipients >= 0),
    home                  text
                          CONSTRAINT mailboxes_home_check CHECK (home ~ '^/' AND home !~ '[\x01-\x1f\x7f]'),
    mail                  text
                          CONSTRAINT mailboxes_mail_check CHECK (mail !~ '[\x01-\x1f\x7f]'),
    uid                   int
                          CONSTRAINT mailboxes_uid_check CHECK (uid > 0),
    gid                   int
                          CONSTRAINT mailboxes_gid_check CHECK (gid > 0),
    -- Relative to the mail root; set by trigger to <domain>/<local_part>.<id>/
    -- when NULL on INSERT.  Must end in '/', no '.', '..' or empty component,
    -- not absolute, so that UNIQUE really means "different directory".
    maildir               text NOT NULL UNIQUE
                          CONSTRAINT mailboxes_maildir_check
                          CHECK (maildir ~ '^[^/].*/$'
                                 AND maildir !~ '(^|/)\.{1,2}/'
                                 AND strpos(maildir, '//') = 0
                                 AND maildir !~ '[\x01-\x1f\x7f]'),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mailboxes_domain_id_local_part_key UNIQUE (domain_id, local_part)
);
COMMENT ON TABLE mailroster.mailboxes IS
    'Mailboxes. NULL password = cannot log in; NULL quota_*/send_limit_* = domain default. maildir is generated as <domain>/<local_part>.<id>/ (a "/" in the local part becomes "_") so a re-created address never sees old mail.';

CREATE TABLE mailroster.aliases (
    id           bigserial PRIMARY KEY,
    domain_id    bigint NOT NULL REFERENCES mailroster.domains ON DELETE RESTRICT,
    local_part   text NOT NULL
                 CONSTRAINT aliases_local_part_check
                 CHECK (local_part = '' OR mailroster.is_mailbox_local_part(local_part)),
    destinations text[] NOT NULL
                 CONSTRAINT aliases_destinations_count_check
                 CHECK (cardinality(destinations) BETWEEN 1 AND 1000)
                 CONSTRAINT aliases_destinations_check
                 CHECK (mailroster.are_addresses(destinations, true)),
    enabled      boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT aliases_domain_id_local_part_key UNIQUE (domain_id, local_part)
);
COMMENT ON TABLE mailroster.aliases IS
    'Aliases. local_part '''' is the catch-all @domain. destinations: 1..1000 of local@domain or @domain (domain rewrite). An alias source may not be a mailbox address.';

CREATE TABLE mailroster.sender_addresses (
    id         bigserial PRIMARY KEY,
    mailbox_id bigint NOT NULL REFERENCES mailroster.mailboxes ON DELETE CASCADE,
    address    text NOT NULL
               CONSTRAINT sender_addresses_address_check CHECK (mailroster.is_address(address, true)),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sender_addresses_address_mailbox_id_key UNIQUE (address, mailbox_id)
);
COMMENT ON TABLE mailroster.sender_addresses IS
    'Extra addresses (or @domain wildcards) a mailbox may send as, besides its own.';
CREATE INDEX sender_addresses_mailbox_id_idx ON mailroster.sender_addresses (mailbox_id);

CREATE TABLE mailroster.master_users (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE
               CONSTRAINT master_users_name_check
               CHECK (octet_length(name) BETWEEN 1 AND 254
                      AND name !~ '[\x01-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]'),
    password   text NOT NULL
               CONSTRAINT master_users_password_check CHECK (mailroster.is_password_hash(password)),
    enabled    boolean NOT NULL DEFAULT true,
    domains    text[]
               CONSTRAINT master_users_domains_check
               CHECK (domains IS NULL OR mailroster.are_domain_names(domains)),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE mailroster.master_users IS
    'Dovecot master users. domains NULL = may log in as any user of any domain.';

CREATE TABLE mailroster.change_log (
    seq    bigserial PRIMARY KEY,
    tbl    text NOT NULL
           CONSTRAINT change_log_tbl_check
           CHECK (tbl IN ('domains', 'mailboxes', 'aliases', 'sender_addresses', 'master_users')),
    op     char(1) NOT NULL
           CONSTRAINT change_log_op_check CHECK (op IN ('I', 'U', 'D')),
    row_id bigint NOT NULL,
    at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE mailroster.change_log IS
    'One row per changed directory row, written by trigger in the writing transaction. Directory writers are serialised by pg_advisory_xact_lock(mailroster.directory_lock_key()), so commit order = seq order. NOTIFY mailroster_changes is only a wake-up.';

CREATE TABLE mailroster.audit_log (
    id     bigserial PRIMARY KEY,
    at     timestamptz DEFAULT now(),
    actor  text NOT NULL,
    action text NOT NULL,
    object text,
    detail jsonb
);
COMMENT ON TABLE mailroster.audit_log IS
    'Append-only record of admin actions (UPDATE, DELETE and TRUNCATE are refused by trigger).';

CREATE TABLE mailroster.quota_usage (
    username text PRIMARY KEY,
    bytes    bigint NOT NULL DEFAULT 0,
    messages bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE mailroster.quota_usage IS 'Written by Dovecot''s quota dict.';

CREATE TABLE mailroster.last_login (
    username  text PRIMARY KEY,
    at        timestamptz NOT NULL,
    service   text,
    remote_ip text
);
COMMENT ON TABLE mailroster.last_login IS 'Written by Dovecot''s last_login dict.';

CREATE TABLE mailroster.send_counters (
    username     text NOT NULL,
    window_start timestamptz NOT NULL,
    messages     int NOT NULL DEFAULT 0,
    recipients   int NOT NULL DEFAULT 0,
    PRIMARY KEY (username, window_start)
);
COMMENT ON TABLE mailroster.send_counters IS
    'Outbound rate-limit counters shared by every mailrosterd on this database.';

------------------------------------------------------------------------------
-- Trigger functions
------------------------------------------------------------------------------

-- BEFORE STATEMENT on every directory table: serialise directory writers.
CREATE FUNCTION mailroster.tg_lock_directory() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = mailroster, pg_temp
AS $fn$
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(mailroster.directory_lock_key());
    RETURN NULL;
END
$fn$;

-- AFTER ROW on every directory table: append to change_log, wake listeners.
-- SECURITY DEFINER so writers need neither INSERT on change_log nor USAGE on
-- its sequence.  The lock is taken again (a no-op when already held) so that
-- nextval() can never run without it.  The NOTIFY payload is empty on
-- purpose: identical notifications are folded by PostgreSQL, so a
-- transaction sends one wake-up however many rows it changed.
CREATE FUNCTION mailroster.tg_log_change() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = mailroster, pg_temp
AS $fn$
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(mailroster.directory_lock_key());
    INSERT INTO mailroster.change_log (tbl, op, row_id)
    VALUES (TG_TABLE_NAME,
            CASE TG_OP WHEN 'INSERT' THEN 'I' WHEN 'UPDATE' THEN 'U' ELSE 'D' END,
            CASE TG_OP WHEN 'DELETE' THEN OLD.id ELSE NEW.id END);
    PERFORM pg_catalog.pg_notify('mailroster_changes', '');
    RETURN NULL;
END
$fn$;

-- BEFORE TRUNCATE on directory tables: TRUNCATE fires no row triggers, so it
-- would bypass the change log.
CREATE FUNCTION mailroster.tg_refuse_truncate() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = mailroster, pg_temp
AS $fn$
BEGIN
    RAISE EXCEPTION 'TRUNCATE of mailroster.% is not allowed; use DELETE so the change log records it',
        TG_TABLE_NAME
        USING ERRCODE = 'feature_not_supported';
END
$fn$;

-- BEFORE UPDATE on tables with updated_at: maintain it; ids never change.
CREATE FUNCTION mailroster.tg_set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = mailroster, pg_temp
AS $fn$
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id THEN
        RAISE EXCEPTION 'mailroster.%.id cannot be changed', TG_TABLE_NAME
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$fn$;

-- sender_addresses has no updated_at, but its id must not change either.
CREATE FUNCTION mailroster.tg_keep_id() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = mailroster, pg_temp
AS $fn$
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id THEN
        RAISE EXCEPTION 'mailroster.%.id cannot be changed', TG_TABLE_NAME
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$fn$;

-- BEFORE UPDATE OF name ON domains.
CREATE FUNCTION mailroster.tg_domain_name_immutable() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = mailroster, pg_temp
AS $fn$
BEGIN
    IF NEW.name IS DISTINCT FROM OLD.name THEN
        RAISE EXCEPTION 'domain % cannot be renamed to %; remove it and add the new name',
            OLD.name, NEW.name
            USING ERRCODE = 'check_violation', CONSTRAINT = 'domains_name_immutable';
    END IF;
    RETURN NEW;
END
$fn$;

-- BEFORE INSERT OR UPDATE ON mailboxes: address length, no alias with the
-- same address, generated maildir.
CREATE FUNCTION mailroster.tg_mailbox_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    dname text;
BEGIN
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
    IF NEW.local_part <> ''
       AND (TG_OP = 'INSERT' OR NEW.domain_id <> OLD.domain_id OR NEW.local_part <> OLD.local_part) THEN
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

-- BEFORE INSERT OR UPDATE ON aliases: address length, no mailbox with the
-- same address, no destination equal to the alias itself.
CREATE FUNCTION mailroster.tg_alias_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    dname  text;
    source text;
BEGIN
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

-- BEFORE UPDATE/DELETE/TRUNCATE ON audit_log.
CREATE FUNCTION mailroster.tg_audit_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = mailroster, pg_temp
AS $fn$
BEGIN
    RAISE EXCEPTION 'mailroster.audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$fn$;

-- Trigger functions are never called directly.
REVOKE ALL ON FUNCTION
    mailroster.tg_lock_directory(),
    mailroster.tg_log_change(),
    mailroster.tg_refuse_truncate(),
    mailroster.tg_set_updated_at(),
    mailroster.tg_keep_id(),
    mailroster.tg_domain_name_immutable(),
    mailroster.tg_mailbox_check(),
    mailroster.tg_alias_check(),
    mailroster.tg_audit_append_only()
FROM PUBLIC;

------------------------------------------------------------------------------
-- Triggers.  Same-timing triggers fire in name order.
------------------------------------------------------------------------------

CREATE TRIGGER domains_10_lock BEFORE INSERT OR UPDATE OR DELETE ON mailroster.domains
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_lock_directory();
CREATE TRIGGER domains_20_name_immutable BEFORE UPDATE OF name ON mailroster.domains
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_domain_name_immutable();
CREATE TRIGGER domains_30_updated_at BEFORE UPDATE ON mailroster.domains
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_set_updated_at();
CREATE TRIGGER domains_90_change_log AFTER INSERT OR UPDATE OR DELETE ON mailroster.domains
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_log_change();
CREATE TRIGGER domains_no_truncate BEFORE TRUNCATE ON mailroster.domains
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_refuse_truncate();

CREATE TRIGGER mailboxes_10_lock BEFORE INSERT OR UPDATE OR DELETE ON mailroster.mailboxes
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_lock_directory();
CREATE TRIGGER mailboxes_20_check BEFORE INSERT OR UPDATE ON mailroster.mailboxes
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_mailbox_check();
CREATE TRIGGER mailboxes_30_updated_at BEFORE UPDATE ON mailroster.mailboxes
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_set_updated_at();
CREATE TRIGGER mailboxes_90_change_log AFTER INSERT OR UPDATE OR DELETE ON mailroster.mailboxes
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_log_change();
CREATE TRIGGER mailboxes_no_truncate BEFORE TRUNCATE ON mailroster.mailboxes
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_refuse_truncate();

CREATE TRIGGER aliases_10_lock BEFORE INSERT OR UPDATE OR DELETE ON mailroster.aliases
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_lock_directory();
CREATE TRIGGER aliases_20_check BEFORE INSERT OR UPDATE ON mailroster.aliases
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_alias_check();
CREATE TRIGGER aliases_30_updated_at BEFORE UPDATE ON mailroster.aliases
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_set_updated_at();
CREATE TRIGGER aliases_90_change_log AFTER INSERT OR UPDATE OR DELETE ON mailroster.aliases
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_log_change();
CREATE TRIGGER aliases_no_truncate BEFORE TRUNCATE ON mailroster.aliases
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_refuse_truncate();

CREATE TRIGGER sender_addresses_10_lock BEFORE INSERT OR UPDATE OR DELETE ON mailroster.sender_addresses
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_lock_directory();
CREATE TRIGGER sender_addresses_30_keep_id BEFORE UPDATE ON mailroster.sender_addresses
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_keep_id();
CREATE TRIGGER sender_addresses_90_change_log AFTER INSERT OR UPDATE OR DELETE ON mailroster.sender_addresses
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_log_change();
CREATE TRIGGER sender_addresses_no_truncate BEFORE TRUNCATE ON mailroster.sender_addresses
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_refuse_truncate();

CREATE TRIGGER master_users_10_lock BEFORE INSERT OR UPDATE OR DELETE ON mailroster.master_users
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_lock_directory();
CREATE TRIGGER master_users_30_updated_at BEFORE UPDATE ON mailroster.master_users
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_set_updated_at();
CREATE TRIGGER master_users_90_change_log AFTER INSERT OR UPDATE OR DELETE ON mailroster.master_users
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_log_change();
CREATE TRIGGER master_users_no_truncate BEFORE TRUNCATE ON mailroster.master_users
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_refuse_truncate();

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON mailroster.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION mailroster.tg_audit_append_only();

INSERT INTO mailroster.schema_version (version, description)
VALUES (1, 'initial schema');

COMMIT;
