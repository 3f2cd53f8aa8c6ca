-- mailroster migration 0013: an account's window list in one statement.
--
-- Apply with:  psql -v ON_ERROR_STOP=1 -X -d DB -f sql/migrations/0013_admission_windows.sql
-- (as the schema owner; then run sql/roles.sql).  One transaction.
--
-- mailroster.send_windows() (migration 0008) applies the precedence of
-- migration 0005 (mailbox > domain > global, wholesale) and is the one
-- place that does; every admission calls it.  It built the list with
-- array appends and an insertion sort in PL/pgSQL: 27 us of the ~130 us an
-- admission cost PostgreSQL (pg_stat_user_functions, 16,700 admissions),
-- of which the one query it ran took 3 us.  The same rule is now one
-- query, with the same answers:
--   - the candidates: the mailbox's send_limit_* columns (rank 1), the
--     domain's (rank 2), then send_limits rows of the mailbox (1), the
--     domain (2) and global ones (3), each rank only when p_rank allows;
--   - the best (lowest) rank among all candidates, an explicitly
--     unlimited one included, gives the whole list;
--   - of it, the windows with a limit (all of them when p_unlimited),
--     shortest first; windows of equal length keep the candidates' order
--     (columns before rows, rows by id), as the insertion sort kept it.

\set ON_ERROR_STOP 1

BEGIN;

DO $guard$
BEGIN
    IF (SELECT max(version) FROM mailroster.schema_version) <> 12 THEN
        RAISE EXCEPTION 'migration 0013 needs schema version 12';
    END IF;
END
$guard$;

CREATE OR REPLACE FUNCTION mailroster.send_windows(p_mailbox_id bigint, p_domain_id bigint,
                                                   p_mm int, p_mr int, p_dm int, p_dr int, p_dw int,
                                                   p_rank int, p_unlimited boolean,
                                                   OUT scopes text[], OUT secs int[], OUT msgs int[], OUT rcpts int[])
    LANGUAGE plpgsql STABLE
    SET search_path = mailroster, pg_temp
AS $fn$
BEGIN
    WITH c AS (
        SELECT 1 AS rank, 'mailbox'::text AS scope, p_dw AS w,
               nullif(coalesce(p_mm, p_dm), 0) AS m, nullif(coalesce(p_mr, p_dr), 0) AS r,
               0 AS src, 0::bigint AS id
         WHERE p_rank <= 1 AND (p_mm IS NOT NULL OR p_mr IS NOT NULL)
        UNION ALL
        SELECT 2, 'domain', p_dw, nullif(p_dm, 0), nullif(p_dr, 0), 1, 0
         WHERE p_rank <= 2 AND (p_dm > 0 OR p_dr > 0)
        UNION ALL
        SELECT 1, 'mailbox', s.window_seconds, s.messages, s.recipients, 2, s.id
          FROM mailroster.send_limits s WHERE s.mailbox_id = p_mailbox_id AND p_rank <= 1
        UNION ALL
        SELECT 2, 'domain', s.window_seconds, s.messages, s.recipients, 3, s.id
          FROM mailroster.send_limits s WHERE s.domain_id = p_domain_id AND p_rank <= 2
        UNION ALL
        SELECT 3, 'global', s.window_seconds, s.messages, s.recipients, 4, s.id
          FROM mailroster.send_limits s WHERE s.scope = 'global'
    )
    SELECT coalesce(array_agg(c.scope ORDER BY c.w, c.src, c.id), '{}'),
           coalesce(array_agg(c.w ORDER BY c.w, c.src, c.id), '{}'),
           coalesce(array_agg(c.m ORDER BY c.w, c.src, c.id), '{}'),
           coalesce(array_agg(c.r ORDER BY c.w, c.src, c.id), '{}')
      INTO scopes, secs, msgs, rcpts
      FROM c
     WHERE c.rank = (SELECT min(b.rank) FROM c b)
       AND (p_unlimited OR c.m IS NOT NULL OR c.r IS NOT NULL);
END
$fn$;

INSERT INTO mailroster.schema_version (version, description)
VALUES (13, 'send_windows: an account''s window list in one statement');

COMMIT;
