-- mailroster: least-privilege group roles and their grants.
--
-- Run after sql/schema.sql (or after each migration), as the schema owner or
-- a superuser (creating roles needs CREATEROLE):
--
--   psql -X -v ON_ERROR_STOP=1 -d DB -f sql/roles.sql
--
-- Idempotent: it creates the roles only if missing, then revokes and
-- re-grants every privilege on the schema's objects, so running it again
-- (also after a migration added objects) leaves exactly the grants below.
--
-- The three roles are NOLOGIN groups.  The sysop creates login roles and
-- makes them members, e.g.
--   CREATE ROLE mailrosterd LOGIN PASSWORD '...' IN ROLE mailroster_reader;
--   CREATE ROLE mailroster_panel LOGIN PASSWORD '...' IN ROLE mailroster_admin;
--   CREATE ROLE dovecot_dict LOGIN PASSWORD '...' IN ROLE mailroster_dovecot_dict;
--
-- mailroster_reader        the daemon's lookup connection: reads the
--                          directory, change_log and usage tables, LISTENs,
--                          and admits outbound messages through
--                          mailroster.send_admit_many() and send_admit()
--                          (SECURITY DEFINER, the only writers of
--                          send_counters and send_hits, and
--                          the one that suspends an account's sending; the
--                          reader itself may only read the counters).
-- mailroster_admin         the admin path: the reader's rights plus writes to
--                          the directory tables and appends to audit_log.
--                          No DDL.
-- mailroster_dovecot_dict  Dovecot's dicts: quota_usage and last_login;
--                          the shares (written through a view) and the
--                          sieve scripts (read) of migration 0011.
--
-- Nobody gets INSERT on change_log or USAGE on change_log_seq_seq: the
-- change-log trigger function mailroster.tg_log_change() is SECURITY DEFINER
-- (owned by the schema owner, search_path pinned to mailroster, pg_temp) and
-- writes the change log on the writer's behalf.  So is
-- mailroster.tg_mailbox_usage_gone() (migration 0007): it deletes a removed
-- mailbox's quota_usage row, which the admin role may not write.  The other
-- trigger functions run as the caller and only read tables the admin role
-- may read anyway (tg_quota_usage_stamp() reads nothing).

\set ON_ERROR_STOP 1

BEGIN;

DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['mailroster_reader', 'mailroster_admin', 'mailroster_dovecot_dict'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$roles$;

-- Start from nothing.
REVOKE ALL ON SCHEMA mailroster
    FROM PUBLIC, mailroster_reader, mailroster_admin, mailroster_dovecot_dict;
REVOKE ALL ON ALL TABLES IN SCHEMA mailroster
    FROM PUBLIC, mailroster_reader, mailroster_admin, mailroster_dovecot_dict;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA mailroster
    FROM PUBLIC, mailroster_reader, mailroster_admin, mailroster_dovecot_dict;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mailroster
    FROM PUBLIC, mailroster_reader, mailroster_admin, mailroster_dovecot_dict;

GRANT USAGE ON SCHEMA mailroster
    TO mailroster_reader, mailroster_admin, mailroster_dovecot_dict;

-- Functions: the validators used by CHECK constraints and the lock-key
-- function called by the (SECURITY INVOKER) statement trigger run with the
-- writer's rights, so the admin role needs EXECUTE on them.  Trigger
-- functions get no EXECUTE grant: triggers fire regardless, and they cannot
-- be called directly.
GRANT EXECUTE ON FUNCTION
    mailroster.directory_lock_key(),
    mailroster.is_domain_name(text),
    mailroster.is_local_part(text),
    mailroster.is_mailbox_local_part(text),
    mailroster.is_address(text, boolean),
    mailroster.are_addresses(text[], boolean),
    mailroster.are_domain_names(text[]),
    mailroster.is_password_hash(text),
    mailroster.path_is_clean(text),
    mailroster.path_is_under(text, text),
    mailroster.mail_paths_problem(text, text, text),
    mailroster.password_hash_problem(text),
    mailroster.password_hash_ok(text),
    mailroster.is_transport_pattern(text)
TO mailroster_admin;

-- mailroster_reader
GRANT SELECT ON
    mailroster.domains, mailroster.mailboxes, mailroster.aliases,
    mailroster.sender_addresses, mailroster.master_users,
    mailroster.transports,
    mailroster.change_log, mailroster.schema_version,
    mailroster.quota_usage, mailroster.last_login
TO mailroster_reader;
-- Rate limits (migration 0005): the reader reads the limits and the log and
-- writes the log only through send_admit(), which locks the mailbox row and
-- keeps the log exact; it cannot erase its own counters.
GRANT SELECT ON mailroster.send_counters, mailroster.send_limits
TO mailroster_reader;
GRANT EXECUTE ON FUNCTION
    mailroster.send_admit(text, int, text, int),
    mailroster.send_admit_many(text[], int[], text[], int)
TO mailroster_reader;

-- mailroster_admin: the reader's rights ...
GRANT SELECT ON
    mailroster.domains, mailroster.mailboxes, mailroster.aliases,
    mailroster.sender_addresses, mailroster.master_users,
    mailroster.transports,
    mailroster.change_log, mailroster.schema_version,
    mailroster.quota_usage, mailroster.last_login
TO mailroster_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON mailroster.send_counters
TO mailroster_admin;
-- send_limits is policy, not directory: the admin role sets it (no change
-- log: the daemon does not cache it, send_admit reads it each time).
GRANT SELECT, INSERT, UPDATE, DELETE ON mailroster.send_limits
TO mailroster_admin;
-- Limit windows as the admin socket shows and checks them (migration
-- 0006; send_windows reads them through send_window_rows, 0018); the hits toward a suspension are read, never written, by it.
GRANT EXECUTE ON FUNCTION
    mailroster.send_limits_of(bigint),
    mailroster.send_limits_from(bigint, int, boolean),
    mailroster.send_windows(bigint, bigint, int, int, int, int, int, int, boolean),
    mailroster.send_window_rows(bigint, bigint, int, int, int, int, int, int, boolean),
    mailroster.send_limits_problem(bigint),
    mailroster.send_usage(text)
TO mailroster_admin;
GRANT SELECT ON mailroster.send_hits TO mailroster_admin;
-- ... plus directory writes and the audit trail.
GRANT INSERT, UPDATE, DELETE ON
    mailroster.domains, mailroster.mailboxes, mailroster.aliases,
    mailroster.sender_addresses, mailroster.master_users,
    mailroster.transports
TO mailroster_admin;
GRANT SELECT, INSERT ON mailroster.audit_log TO mailroster_admin;
-- mail_base (migration 0004): read by the mailbox path trigger, which runs
-- with the writer's rights; database_id (migration 0014): read by
-- mailrosterd; both changed by the schema owner only.
GRANT SELECT ON mailroster.settings TO mailroster_reader, mailroster_admin;
-- claimed_addresses is written by a SECURITY DEFINER trigger; nobody else
-- needs it.
GRANT USAGE ON SEQUENCE
    mailroster.domains_id_seq, mailroster.mailboxes_id_seq,
    mailroster.aliases_id_seq, mailroster.sender_addresses_id_seq,
    mailroster.master_users_id_seq, mailroster.audit_log_id_seq,
    mailroster.send_limits_id_seq, mailroster.transports_id_seq
TO mailroster_admin;

-- mailroster_dovecot_dict
GRANT SELECT, INSERT, UPDATE, DELETE ON mailroster.quota_usage, mailroster.last_login
TO mailroster_dovecot_dict;

-- Shared mailboxes and sieve scripts (migration 0011).  Dovecot's dict
-- reads the shares and the scripts through the views dict-sql names, and
-- writes shares (IMAP SETACL) only through dovecot_shared_mailboxes: an
-- automatically updatable view, so the rows reach shared_mailboxes with the
-- view owner's rights, and the table's SECURITY DEFINER trigger checks that
-- both addresses are mailboxes.  UPDATE only of "dummy": dict-sql's ON
-- CONFLICT ... DO UPDATE SET dummy.  Provisioning (the admin role) writes
-- both tables; the reader reads them.
GRANT SELECT ON
    mailroster.dovecot_shared_mailboxes, mailroster.dovecot_public_mailboxes,
    mailroster.dovecot_sieve_scripts
TO mailroster_dovecot_dict;
GRANT INSERT, DELETE ON mailroster.dovecot_shared_mailboxes TO mailroster_dovecot_dict;
GRANT UPDATE (dummy) ON mailroster.dovecot_shared_mailboxes TO mailroster_dovecot_dict;
GRANT SELECT ON mailroster.shared_mailboxes, mailroster.sieve_scripts
TO mailroster_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON mailroster.shared_mailboxes, mailroster.sieve_scripts
TO mailroster_admin;
GRANT SELECT ON
    mailroster.dovecot_shared_mailboxes, mailroster.dovecot_public_mailboxes,
    mailroster.dovecot_sieve_scripts
TO mailroster_reader, mailroster_admin;

-- Export and import as JSON lines (migration 0002).  Export is SECURITY
-- INVOKER: it reads with the caller's table rights above.  Import is
-- SECURITY DEFINER since migration 0015 (it writes as the schema owner, so
-- that the row checks it does itself are not done twice; see the
-- migration); the triggers keep the change log.  Only the admin role may
-- import.
GRANT EXECUTE ON FUNCTION mailroster.export_jsonl(text)
TO mailroster_reader, mailroster_admin;
GRANT EXECUTE ON FUNCTION mailroster.import_jsonl(text, boolean)
TO mailroster_admin;
-- The same import reading lines the caller COPYs into the temporary table
-- that import_input_open() makes (migration 0016; what mailrosterd uses).
GRANT EXECUTE ON FUNCTION mailroster.import_input_open(), mailroster.import_jsonl_input(boolean)
TO mailroster_admin;
-- The import of migration 0002, which import_jsonl (migration 0010) wraps:
-- it runs with the caller's rights, so the caller needs it too.
GRANT EXECUTE ON FUNCTION mailroster.import_jsonl_core(text, boolean)
TO mailroster_admin;
-- The row-by-row import of migration 0010, which the set-based import_jsonl
-- (migration 0012) runs to name the fault of a file it does not take.
GRANT EXECUTE ON FUNCTION mailroster.import_jsonl_rowwise(text, boolean)
TO mailroster_admin;

COMMIT;
