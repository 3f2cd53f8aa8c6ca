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

-- Right after 0010, whose tables the views show.
DO $guard$
BEGIN
    IF (SELECT max(version) FROM mailroster.schema_version) <> 10 THEN
        RAISE EXCEPTION 'migration 0011 needs schema version 10';
    END IF;
END
$guard$;

-- (mailroster.shared_mailboxes and mailroster.sieve_scripts, with the
-- triggers that keep them, are migration 0010's.)

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


INSERT INTO mailroster.schema_version (version, description)
VALUES (11, 'shared mailboxes (Dovecot acl_shared_dict) and per-mailbox sieve scripts, served through dict-sql');

COMMIT;
