-- mailroster migration 0009: admissions without JIT compilation.
--
-- Apply with:  psql -v ON_ERROR_STOP=1 -X -d DB -f sql/migrations/0009_admission_jit.sql
-- (as the schema owner; then run sql/roles.sql).  One transaction.
--
-- send_admit_many (migration 0008) runs with enable_seqscan = off, so that
-- a generic plan never scans the rate log.  The one sequential scan left,
-- of the single row of mailroster.settings read at each refusal, is then
-- costed far above jit_above_cost, and PostgreSQL compiled it with LLVM
-- at every refusal: a batch of 25 refusals took 3.1-4.4 s of CPU, 12 ms
-- with jit = off (measured with pgbench on the function, PostgreSQL 15
-- with JIT as Debian builds it).  A refusal is what an account at its
-- limit gets for every message it tries: the cost landed on exactly the
-- traffic a limit is for.  Nothing in these functions gains from JIT (each
-- statement touches a few rows by key).

\set ON_ERROR_STOP 1

BEGIN;

DO $guard$
BEGIN
    IF (SELECT max(version) FROM mailroster.schema_version) <> 8 THEN
        RAISE EXCEPTION 'migration 0009 needs schema version 8';
    END IF;
END
$guard$;

ALTER FUNCTION mailroster.send_admit_many(text[], int[], text[], int) SET jit = off;
ALTER FUNCTION mailroster.send_admit(text, int, text, int) SET jit = off;

INSERT INTO mailroster.schema_version (version, description)
VALUES (9, 'admissions run without JIT compilation');

COMMIT;
