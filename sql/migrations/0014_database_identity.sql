-- mailroster migration 0014: the database's identity.
--
-- Apply with:  psql -v ON_ERROR_STOP=1 -X -d DB -f sql/migrations/0014_database_identity.sql
-- (as the schema owner; then run sql/roles.sql).  One transaction.
--
-- mailrosterd keeps a snapshot file of the directory and, at start, asks
-- the change log whether it reaches back to the snapshot's change number.
-- Change numbers alone do not say whose they are: a `database =` pointing
-- at another mailroster database (a test copy, a second site) whose change
-- log happens to cover the number would be taken for the same history, and
-- the daemon would serve and then patch a foreign directory.  So each
-- database gets an identity, set once, which the daemon stores in the
-- snapshot file and compares with the database's before it trusts the log.
--
-- mailroster.settings.database_id: a random UUID, filled in when the column
-- is added (the one row) or when a database is created from schema.sql.  A
-- copy made with pg_dump, pg_basebackup or CREATE DATABASE ... TEMPLATE
-- keeps it: it is the same history up to the copy.  A copy that is to live
-- on as a database of its own (a test database that then takes its own
-- writes) should get a new one, as the schema owner:
--     UPDATE mailroster.settings SET database_id = gen_random_uuid();
-- mailroster_reader and mailroster_admin already read mailroster.settings
-- (sql/roles.sql); only the schema owner changes it.

BEGIN;

DO $guard$
BEGIN
    IF (SELECT max(version) FROM mailroster.schema_version) <> 13 THEN
        RAISE EXCEPTION 'migration 0014 needs schema version 13';
    END IF;
END
$guard$;

ALTER TABLE mailroster.settings
    ADD COLUMN database_id uuid NOT NULL DEFAULT gen_random_uuid();
COMMENT ON COLUMN mailroster.settings.database_id IS
    'This database''s identity, set once (migration 0014): mailrosterd stores it in its snapshot file and trusts the change log to bridge from a snapshot only of the same database.';

INSERT INTO mailroster.schema_version (version, description)
VALUES (14, 'database identity');

COMMIT;
