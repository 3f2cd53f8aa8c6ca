-- mailroster migration 0003: last_login as Dovecot writes it.
--
-- Apply with:  psql -v ON_ERROR_STOP=1 -X -d DB -f sql/migrations/0003_last_login_unix.sql
-- (as the schema owner; then run sql/roles.sql).  One transaction.
--
-- Dovecot 2.3's last_login plugin writes one value through its dict: the
-- login time as decimal unix seconds (dict-sql sends it as an integer with
-- value_type = uint, or as a string), and dict-sql cannot wrap it in
-- to_timestamp().  A timestamptz column refuses both forms, so no row was
-- ever written.  The plugin's value now goes into at_unix, and "at" is
-- computed from it, so readers keep a timestamp.  service and remote_ip
-- stay for writers that know them; Dovecot 2.3 leaves them empty.

\set ON_ERROR_STOP 1

BEGIN;

ALTER TABLE mailroster.last_login ADD COLUMN at_unix bigint;
UPDATE mailroster.last_login SET at_unix = extract(epoch FROM at)::bigint;
ALTER TABLE mailroster.last_login ALTER COLUMN at_unix SET NOT NULL;
ALTER TABLE mailroster.last_login DROP COLUMN at;
ALTER TABLE mailroster.last_login
    ADD COLUMN at timestamptz GENERATED ALWAYS AS (to_timestamp(at_unix)) STORED;
COMMENT ON COLUMN mailroster.last_login.at_unix IS
    'Login time in unix seconds, as Dovecot''s last_login plugin writes it.';
COMMENT ON COLUMN mailroster.last_login.at IS 'at_unix as a timestamp (generated).';

INSERT INTO mailroster.schema_version (version, description)
VALUES (3, 'last_login.at_unix, as Dovecot''s last_login plugin writes it');

COMMIT;
