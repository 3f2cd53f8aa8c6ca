-- mailroster migration 0011: shared mailboxes and per-user sieve scripts,
-- kept with the accounts and served to Dovecot 2.3 through dict-sql
-- (conf.d/dovecot/dict-sql.conf.ext, shares-sieve-roster.conf.ext).
--
-- Apply with:  psql -v ON_ERROR_STOP=1 -X -d DB -f sql/migrations/0011_dovecot_shares_sieve.sql
-- (as the schema owner; then run sql/roles.sql).  One transaction.
--
-- 1. SHARED MAILBOXES.  The per-folder rights stay in Dovecot's dovecot-acl
--    files (acl = vfile); what lives here is the acl plugin's global "who
--    shared to whom" dictionary (acl_shared_dict), keys
--        shared/shared-boxes/user/<to>/<from>    value "1"
--    which Dovecot itself writes when a user runs IMAP SETACL/DELETEACL (or
--    `doveadm acl set/delete`), and which the importer fills by SQL.
--    mailroster.shared_mailboxes keeps a share by mailbox ids, so deleting
--    either mailbox deletes it (ON DELETE CASCADE).
--
--    What dict-sql 2.3.19 sends (PostgreSQL driver), for the map of
--    conf.d/dovecot/dict-sql.conf.ext:
--        set:   INSERT INTO mailroster.dovecot_shared_mailboxes
--                   (dummy,shared_to,shared_mailbox) VALUES ('1','b@d','a@d')
--                   ON CONFLICT (shared_to,shared_mailbox) DO UPDATE SET dummy='1'
--        unset: DELETE FROM mailroster.dovecot_shared_mailboxes
--                   WHERE shared_to = 'b@d' AND shared_mailbox = 'a@d'
--        read:  SELECT dummy,shared_mailbox FROM ... WHERE shared_to = 'b@d'
--               (b@d lists the shared namespace), and the whole dict,
--               SELECT dummy,shared_to,shared_mailbox FROM ..., at each
--               rebuild after a change of rights
--    (a@d shares to b@d; logged by tests/integration/dovecot_dicts_test.sh).
--    An ON CONFLICT with a conflict target is planned against the unique
--    indexes of the statement's target relation.  A view with INSTEAD OF
--    triggers has none, so PostgreSQL refuses the statement before any
--    trigger runs ("there is no unique or exclusion constraint matching
--    the ON CONFLICT specification"); rules are refused with any ON
--    CONFLICT at all.  What works is an automatically updatable view over
--    a table with a unique index on the columns the view shows: PostgreSQL
--    infers the arbiter on the table.  So shared_mailboxes also carries the
--    two addresses as text (shared_mailbox, shared_to, unique together) and
--    a constant dict_value column (the view's "dummy": dict-sql inserts and
--    updates it, so it must be a column, not an expression).  The text is
--    never trusted: a BEFORE trigger (SECURITY DEFINER: the dict role may
--    not read the mailboxes) finds the ids of addresses given as text,
--    refusing an address that is not a mailbox, and then rewrites both
--    addresses from the ids; renaming a mailbox rewrites them again.  The
--    ids are the truth, the text is their index for Dovecot.
--    "anyone" shares (public mailboxes) are not supported: the second map
--    Dovecot needs reads an empty view, as in the ISP-mail set-up, and
--    Dovecot refuses the "anyone" identifier unless acl_anyone = allow.
-- 2. SIEVE SCRIPTS.  One script per mailbox (mailroster.sieve_scripts),
--    run at LMTP delivery by Pigeonhole's dict script storage
--    (sieve = dict:proxy::sieve;name=roster;...), which reads two private
--    (per-user) keys:
--        priv/sieve/name/<script name>  -> an id
--        priv/sieve/data/<id>           -> the script
--    Pigeonhole writes the id into the compiled binary it keeps (bindir=)
--    and compiles again when the id it reads differs.  The id is therefore
--    the SHA-256 of the script, computed by the view when read: it changes
--    whenever the text does, and cannot go back to an id a different text
--    had (a version counter would restart at 1 after a delete and insert,
--    and a stale binary would then run).  No row, no script: Pigeonhole
--    finds no id and delivers as without sieve.

\set ON_ERROR_STOP 1

BEGIN;

-- Right after 0010, whose export and import read these tables.
DO $guard$
BEGIN
    IF (SELECT max(version) FROM mailroster.schema_version) <> 10 THEN
        RAISE EXCEPTION 'migration 0011 needs schema version 10';
    END IF;
END
$guard$;

------------------------------------------------------------------------------
-- Addresses as Dovecot's user names
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

------------------------------------------------------------------------------
-- 1. Shared mailboxes
------------------------------------------------------------------------------

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

-- What dict-sql reads and writes (map shared/shared-boxes/user/$to/$from).
-- Automatically updatable (one table, plain columns), so INSERT ... ON
-- CONFLICT and DELETE go to shared_mailboxes, checked with the rights of
-- the view's owner; the dict role gets rights on the view only.
CREATE VIEW mailroster.dovecot_shared_mailboxes AS
    SELECT shared_mailbox, shared_to, dict_value AS dummy
      FROM mailroster.shared_mailboxes;

-- The map shared/shared-boxes/anyone/$from, which Dovecot needs to exist:
-- no public mailboxes, never any row.  Not updatable: should Dovecot ever
-- write it (acl_anyone = allow), the statement fails and says so.
CREATE VIEW mailroster.dovecot_public_mailboxes AS
    SELECT NULL::text AS public_mailbox, NULL::smallint AS dummy
     WHERE false;

------------------------------------------------------------------------------
-- 2. Sieve scripts
------------------------------------------------------------------------------

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

-- What Pigeonhole's dict storage reads (maps priv/sieve/name/$name and
-- priv/sieve/data/$id; username = the Dovecot user).  The script's name
-- is the one the sieve location gives (name=roster): one script per
-- mailbox, so the name is a constant.  data_id: see 2. above.
CREATE VIEW mailroster.dovecot_sieve_scripts AS
    SELECT m.local_part || '@' || d.name AS username,
           'roster'::text AS script_name,
           encode(sha256(convert_to(s.script, 'UTF8')), 'hex') AS data_id,
           s.script
      FROM mailroster.sieve_scripts s
      JOIN mailroster.mailboxes m ON m.id = s.mailbox_id
      JOIN mailroster.domains d ON d.id = m.domain_id;

REVOKE ALL ON FUNCTION
    mailroster.mailbox_address(bigint),
    mailroster.mailbox_id_of(text),
    mailroster.tg_shared_mailboxes_names(),
    mailroster.tg_shares_follow_rename(),
    mailroster.tg_sieve_scripts_stamp()
FROM PUBLIC;

INSERT INTO mailroster.schema_version (version, description)
VALUES (11, 'shared mailboxes (Dovecot acl_shared_dict) and per-mailbox sieve scripts, served through dict-sql');

COMMIT;
