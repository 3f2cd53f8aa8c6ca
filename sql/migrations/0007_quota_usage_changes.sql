-- mailroster migration 0007: quota usage that mailrosterd can follow.
--
-- Apply with:  psql -v ON_ERROR_STOP=1 -X -d DB -f sql/migrations/0007_quota_usage_changes.sql
-- (as the schema owner; then run sql/roles.sql).  One transaction.
--
-- mailrosterd refuses mail at RCPT for a recipient whose mailboxes are over
-- quota, from the usage Dovecot's quota dict writes into quota_usage.  The
-- RCPT path never waits on PostgreSQL, so the daemon keeps the usage in
-- memory and reads only the rows that changed, once a second.
--
-- WHICH ROWS CHANGED.  Every INSERT and UPDATE stamps the row with the id
-- of the writing transaction (xact_id, set by trigger; xid8 never wraps
-- around).  The reader, in one REPEATABLE READ snapshot, takes the
-- snapshot's horizon h = pg_snapshot_xmin(pg_current_snapshot()) -- every
-- transaction below h has ended -- and reads the rows with
-- xact_id >= the horizon of its previous read; next time it starts from h.
-- Take a row version written by transaction x: the first read whose
-- horizon is above x has a snapshot in which x has ended, so it sees that
-- version (or a newer one of the row), and its lower bound, the previous
-- read's horizon, was taken before x ended, so it is <= x.
-- A sequence would not do: its values are taken at write time and commit in
-- another order, so "seq > last seen" misses a row that commits late with a
-- smaller value (the change log serialises its writers for that reason;
-- Dovecot's writers are not ours to serialise).  The cost: rows written at
-- or after the horizon are read again at the next poll (harmless: a row is
-- the whole usage, not a delta), and a long-running writing transaction
-- anywhere in the cluster keeps the horizon back, so that the rows written
-- meanwhile are read again each second until it ends.
--
-- Deleted rows leave no trace to read; mailrosterd reads the whole table
-- again every 10 minutes.
--
-- A REMOVED MAILBOX TAKES ITS USAGE ROW WITH IT.  quota_usage is keyed by
-- address, and a mailbox created again at that address gets a new, empty
-- maildir: the old row would make Dovecot and mailrosterd count mail that
-- is not there.  With the row gone, Dovecot's next update finds nothing and
-- counts the mailbox afresh.  The same for a mailbox whose address changes.

\set ON_ERROR_STOP 1

BEGIN;

-- The default covers the rows that exist now (the migration's transaction);
-- the trigger sets it on every write after that.
ALTER TABLE mailroster.quota_usage
    ADD COLUMN xact_id xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id();
CREATE INDEX quota_usage_xact_id_idx ON mailroster.quota_usage (xact_id);
COMMENT ON COLUMN mailroster.quota_usage.xact_id IS
    'The transaction that last wrote the row (set by trigger): mailrosterd reads the rows written since its last read.';

-- BEFORE INSERT OR UPDATE: runs with the writer's rights (Dovecot's dict
-- role); it reads nothing, and a writer cannot choose the value.
CREATE FUNCTION mailroster.tg_quota_usage_stamp() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = mailroster, pg_temp
AS $fn$
BEGIN
    NEW.xact_id := pg_catalog.pg_current_xact_id();
    RETURN NEW;
END
$fn$;

CREATE TRIGGER quota_usage_10_stamp BEFORE INSERT OR UPDATE ON mailroster.quota_usage
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_quota_usage_stamp();

-- AFTER DELETE, or UPDATE of the address, on mailboxes: the old address's
-- usage row goes.  SECURITY DEFINER: the admin role may not write
-- quota_usage.  Domain names cannot change (domains_20_name_immutable), and
-- a domain with mailboxes cannot be deleted, so the name is still there.
CREATE FUNCTION mailroster.tg_mailbox_usage_gone() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = mailroster, pg_temp
AS $fn$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.domain_id = OLD.domain_id AND NEW.local_part = OLD.local_part THEN
        RETURN NULL;
    END IF;
    DELETE FROM mailroster.quota_usage q
     USING mailroster.domains d
     WHERE d.id = OLD.domain_id AND q.username = OLD.local_part || '@' || d.name;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER mailboxes_95_usage_gone AFTER DELETE OR UPDATE OF domain_id, local_part
    ON mailroster.mailboxes
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_mailbox_usage_gone();

REVOKE ALL ON FUNCTION
    mailroster.tg_quota_usage_stamp(),
    mailroster.tg_mailbox_usage_gone()
FROM PUBLIC;

INSERT INTO mailroster.schema_version (version, description)
VALUES (7, 'quota_usage.xact_id for mailrosterd''s RCPT quota check; usage rows go with their mailbox');

COMMIT;
