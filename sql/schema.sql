-- mailroster: complete schema for a fresh database.
--
-- This file is, by definition, all migrations applied in order: it includes
-- them rather than copying them, so it cannot drift from them.  A new
-- migration NNNN_*.sql is added here as one more \ir line.
-- tests/integration/schema_test.sh checks that loading this file and
-- applying the migrations one by one give identical pg_dump --schema-only
-- output.
--
--   psql -X -v ON_ERROR_STOP=1 -d DB -f sql/schema.sql
--   psql -X -v ON_ERROR_STOP=1 -d DB -f sql/roles.sql
--
-- Each migration is its own transaction and records itself in
-- mailroster.schema_version.

\set ON_ERROR_STOP 1

\ir migrations/0001_initial.sql
\ir migrations/0002_import_export.sql
\ir migrations/0003_last_login_unix.sql
\ir migrations/0004_trust_boundaries.sql
\ir migrations/0005_rate_limits.sql
\ir migrations/0006_suspend_sending.sql
\ir migrations/0007_quota_usage_changes.sql
\ir migrations/0008_admission_batches.sql
\ir migrations/0009_admission_jit.sql
\ir migrations/0010_directory_features.sql
\ir migrations/0011_dovecot_shares_sieve.sql
\ir migrations/0012_bulk_import.sql
\ir migrations/0013_import_speed.sql
\ir migrations/0014_database_identity.sql
\ir migrations/0015_import_staged.sql
\ir migrations/0016_import_input.sql
\ir migrations/0017_import_plans.sql
\ir migrations/0018_admission_sets.sql
