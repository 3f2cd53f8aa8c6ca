-- mailroster migration 0018: admissions decided for the whole batch at once
-- when nothing stands in their way.
--
-- Apply with:  psql -v ON_ERROR_STOP=1 -X -d DB -f sql/migrations/0018_admission_sets.sql
-- (as the schema owner; then run sql/roles.sql).  One transaction.
--
-- The algorithm (a sliding log, one row per admitted message, running
-- totals; migrations 0005, 0006, 0008) and every answer stay as they were.
-- What changes is the cost of the common case.  send_admit_many (0008)
-- ran five to seven statements for each admission (lock, limits, newest
-- row, first row of each window, insert), and PL/pgSQL set up each
-- statement's expressions once per transaction: a batch of 32 cost
-- PostgreSQL about 60 us an admission, most of it in executor start-up.
-- Now a batch of two or more first takes a fast path of two statements in
-- all (a batch of one costs the loop less):
--
-- 1. LOCK.  The mailbox rows of every account in the batch, locked in one
--    statement with NOWAIT.  If any of them is locked by another
--    transaction, the statement fails at once, holds nothing, and the
--    batch goes the old way (below), which waits for each lock in login
--    order as before.  The fast path never waits, so it can never be part
--    of a circle of waits.
-- 2. DECIDE.  One statement, with a snapshot taken after the locks (so it
--    sees every admission committed before them), reads for each locked
--    account that is not suspended its windows (send_window_rows, below),
--    its newest row and the first row of each window, and admits the
--    account's messages of the batch in order as long as each leaves every
--    window strictly below its limits.  The j-th message of an account
--    counts the j - 1 before it; its time is the batch's time plus j - 1
--    microseconds (times stay distinct and increasing per account, as
--    before).  The counts are read at the first message's time, so a row
--    that leaves a window in the microseconds between is still counted:
--    the fast path may pass a message on to the old way, never admit one
--    the old way would not.
-- 3. THE REST.  Every message the fast path did not admit (an unknown or
--    suspended account, one that fills a window or does not fit, one after
--    it of the same account, or the whole batch when a lock was taken) is
--    decided by the loop of migration 0008, unchanged (0008's
--    send_admit_many, renamed send_admit_each; the new send_admit_many
--    takes over its callers' privileges), after the fast path's rows are
--    in: the same verdicts, texts, hits and suspensions.  After a fast
--    path, the loop's locks are the fast path's own (held to the commit),
--    so it waits for nothing new; after a NOWAIT that failed, it waits in
--    login order as 0008 does.
--
-- Pruning is as before: an account's rows no window looks at are deleted
-- when an admission finds seq % 16 = 0 before it.
--
-- WINDOW LISTS.  mailroster.send_window_rows() is now the one place that
-- applies the precedence (mailbox > domain > global, wholesale; migration
-- 0005): a SQL function the planner inlines into the fast path's
-- statement.  send_windows() (the loop, the admin listings) returns its
-- rows as arrays, as before.
--
-- Measured with pgbench on PostgreSQL 15 (prepared, synchronous_commit
-- off, 2 connections, 10,000 accounts, one window each): a batch of 32
-- admissions 1.16-1.21 ms of server CPU instead of 2.26-2.38 ms, of 8
-- 0.44-0.46 ms instead of 0.65 ms, of 4 0.41-0.45 instead of 0.50-0.52,
-- of 2 the same (0.33-0.34 ms).

\set ON_ERROR_STOP 1

BEGIN;

DO $guard$
BEGIN
    IF (SELECT max(version) FROM mailroster.schema_version) <> 17 THEN
        RAISE EXCEPTION 'migration 0018 needs schema version 17';
    END IF;
END
$guard$;

------------------------------------------------------------------------------
-- 1. Window lists
------------------------------------------------------------------------------

-- The windows of a mailbox from what the caller read of it (arguments as
-- send_windows', migration 0008), one row each, shortest first (place).  Plain
-- SQL, no SET clause and no SECURITY DEFINER, so that the planner inlines
-- it into the statement that calls it; every name is qualified.
CREATE FUNCTION mailroster.send_window_rows(p_mailbox_id bigint, p_domain_id bigint,
                                            p_mm int, p_mr int, p_dm int, p_dr int, p_dw int,
                                            p_rank int, p_unlimited boolean)
    RETURNS TABLE (scope text, secs int, msgs int, rcpts int, place bigint)
    LANGUAGE sql STABLE
AS $fn$
    SELECT c.scope, c.secs, c.msgs, c.rcpts, row_number() OVER (ORDER BY c.secs, c.o)
      FROM (SELECT c.*, min(c.rank) OVER () AS best
              FROM (-- the columns: the mailbox's own values (NULL: the
                    -- domain's), in the domain's window; 0 = no limit
                    SELECT 1 AS rank, 0 AS o, 'mailbox'::text AS scope, p_dw AS secs,
                           nullif(coalesce(p_mm, p_dm), 0) AS msgs, nullif(coalesce(p_mr, p_dr), 0) AS rcpts
                     WHERE p_rank <= 1 AND (p_mm IS NOT NULL OR p_mr IS NOT NULL)
                    UNION ALL
                    SELECT 2, 1, 'domain', p_dw, nullif(p_dm, 0), nullif(p_dr, 0)
                     WHERE p_rank <= 2 AND (p_dm > 0 OR p_dr > 0)
                    UNION ALL
                    -- the send_limits rows (both NULL: stated unlimited)
                    SELECT 1, 2, 'mailbox', s.window_seconds, s.messages, s.recipients
                      FROM mailroster.send_limits s WHERE s.mailbox_id = p_mailbox_id AND p_rank <= 1
                    UNION ALL
                    SELECT 2, 3, 'domain', s.window_seconds, s.messages, s.recipients
                      FROM mailroster.send_limits s WHERE s.domain_id = p_domain_id AND p_rank <= 2
                    UNION ALL
                    SELECT 3, 4, 'global', s.window_seconds, s.messages, s.recipients
                      FROM mailroster.send_limits s WHERE s.scope = 'global') c) c
     WHERE c.rank = c.best AND (p_unlimited OR c.msgs IS NOT NULL OR c.rcpts IS NOT NULL)
     ORDER BY c.secs, c.o
$fn$;

-- send_windows stays PL/pgSQL: a SQL function called from an expression
-- is planned again at every call, PL/pgSQL keeps the plan.
CREATE OR REPLACE FUNCTION mailroster.send_windows(p_mailbox_id bigint, p_domain_id bigint,
                                                   p_mm int, p_mr int, p_dm int, p_dr int, p_dw int,
                                                   p_rank int, p_unlimited boolean,
                                                   OUT scopes text[], OUT secs int[], OUT msgs int[], OUT rcpts int[])
    LANGUAGE plpgsql STABLE
    SET search_path = mailroster, pg_temp
AS $fn$
BEGIN
    SELECT coalesce(array_agg(w.scope ORDER BY w.place), '{}'), coalesce(array_agg(w.secs ORDER BY w.place), '{}'),
           coalesce(array_agg(w.msgs ORDER BY w.place), '{}'), coalesce(array_agg(w.rcpts ORDER BY w.place), '{}')
      INTO scopes, secs, msgs, rcpts
      FROM mailroster.send_window_rows(p_mailbox_id, p_domain_id, p_mm, p_mr, p_dm, p_dr, p_dw,
                                       p_rank, p_unlimited) AS w;
END
$fn$;

------------------------------------------------------------------------------
-- 2. Admissions: the fast path, then the loop of migration 0008
------------------------------------------------------------------------------

-- 0008's send_admit_many, unchanged, is now the loop that decides the rest
-- of a batch; the new send_admit_many takes over its name and privileges.
ALTER FUNCTION mailroster.send_admit_many(text[], int[], text[], int) RENAME TO send_admit_each;

CREATE FUNCTION mailroster.send_admit_many(p_logins text[], p_recipients int[], p_queue_ids text[],
                                           p_wait_ms int DEFAULT NULL)
    RETURNS TABLE (ord int, verdict text, limit_kind text, limit_value int,
                   window_seconds int, used bigint, free_in float8,
                   full_in float8, scope text, reason text, suspended_now boolean)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = mailroster, pg_temp
    SET plan_cache_mode = force_generic_plan
    SET enable_seqscan = off
    SET jit = off
AS $fn$
DECLARE
    v_ids bigint[];
    v_fast int[] := '{}';
    v_rest int[];
    v_t0 timestamptz;
    v_i int;
BEGIN
    -- 1. lock every account of the batch, or none (one of them is busy);
    -- a batch of one costs the loop less than the two statements
    IF cardinality(p_logins) > 1 THEN
        BEGIN
            -- one probe of each key per login, whatever the statistics
            -- say (migration 0017): the locking subquery is run per row
            SELECT coalesce(array_agg(x.id), '{}') INTO v_ids
              FROM unnest(p_logins) AS u(l)
             CROSS JOIN LATERAL (SELECT length(u.l) - strpos(reverse(u.l), '@') + 1 AS at) p
             CROSS JOIN LATERAL (SELECT mb.id
                                   FROM mailroster.domains d
                                   JOIN mailroster.mailboxes mb ON mb.domain_id = d.id
                                  WHERE d.name = substr(u.l, p.at + 1) AND mb.local_part = substr(u.l, 1, p.at - 1)
                                    FOR NO KEY UPDATE OF mb NOWAIT) x
             WHERE strpos(u.l, '@') >= 2;
        EXCEPTION WHEN lock_not_available THEN
            v_ids := NULL;
        END;
    END IF;

    -- 2. admit, in one statement, what fits with room to spare
    IF cardinality(v_ids) > 0 THEN
        v_t0 := clock_timestamp();
        WITH req AS (
            SELECT u.o::int AS ord, u.l AS login, greatest(coalesce(u.n, 0), 0) AS n
              FROM unnest(p_logins, p_recipients) WITH ORDINALITY AS u(l, n, o)
        ),
        -- each locked account that may send: its newest row, and the time
        -- of its first admission in this batch (after its newest row)
        acct AS MATERIALIZED (
            SELECT mb.local_part || '@' || d.name AS login, mb.id, mb.domain_id,
                   mb.send_limit_messages AS mm, mb.send_limit_recipients AS mr,
                   d.send_limit_messages AS dm, d.send_limit_recipients AS dr, d.send_limit_window AS dw,
                   l.window_start AS lat, coalesce(l.seq, 0) AS lseq, coalesce(l.cum_recipients, 0) AS lcum,
                   l.seq IS NOT NULL AS has_rows,
                   CASE WHEN l.window_start >= v_t0 THEN l.window_start + interval '1 microsecond'
                        ELSE v_t0 END AS now1
              FROM mailroster.mailboxes mb
              JOIN mailroster.domains d ON d.id = mb.domain_id
              LEFT JOIN LATERAL (SELECT c.window_start, c.seq, c.cum_recipients
                                   FROM mailroster.send_counters c
                                  WHERE c.username = mb.local_part || '@' || d.name
                                  ORDER BY c.window_start DESC LIMIT 1) l ON true
             WHERE mb.id = ANY (v_ids) AND mb.send_suspended_reason IS NULL
        ),
        -- each account's windows and what each holds at now1
        win AS MATERIALIZED (
            SELECT a.login, w.secs, w.msgs, w.rcpts,
                   coalesce(a.lseq - f.seq + 1, 0) AS cnt,
                   coalesce(a.lcum - f.cum_recipients + f.recipients, 0) AS rsum
              FROM acct a
             CROSS JOIN LATERAL mailroster.send_window_rows(a.id, a.domain_id, a.mm, a.mr,
                                                            a.dm, a.dr, a.dw, 1, false) w
              LEFT JOIN LATERAL (SELECT c.seq, c.cum_recipients, c.recipients
                                   FROM mailroster.send_counters c
                                  WHERE c.username = a.login
                                    AND a.lat > a.now1 - make_interval(secs => w.secs)
                                    AND c.window_start > a.now1 - make_interval(secs => w.secs)
                                  ORDER BY c.window_start LIMIT 1) f ON true
        ),
        -- the j-th message of its account in the batch, and the recipients
        -- of the first j
        occ AS (
            SELECT r.ord, r.login, r.n, a.lseq, a.lcum, a.now1, a.has_rows,
                   row_number() OVER o AS j, sum(r.n) OVER o AS cumn
              FROM req r JOIN acct a ON a.login = r.login
            WINDOW o AS (PARTITION BY r.login ORDER BY r.ord)
        ),
        -- admitted: every window stays below both its limits after it (the
        -- j-th fits only if the j - 1 before it do)
        ok AS MATERIALIZED (
            SELECT o.*, w.nw, w.maxsecs
              FROM occ o
              CROSS JOIN LATERAL (SELECT count(*) AS nw, max(w.secs) AS maxsecs,
                                         coalesce(bool_or((w.msgs IS NOT NULL AND w.cnt + o.j >= w.msgs)
                                                       OR (w.rcpts IS NOT NULL AND w.rsum + o.cumn >= w.rcpts)),
                                                  false) AS fills
                                    FROM win w WHERE w.login = o.login) w
             WHERE NOT w.fills
        ),
        ins AS (
            -- an account without windows is unlimited: admitted without a row
            INSERT INTO mailroster.send_counters (username, window_start, messages, recipients,
                                                  seq, cum_recipients)
            SELECT o.login, o.now1 + (o.j - 1) * interval '1 microsecond', 1, o.n, o.lseq + o.j, o.lcum + o.cumn
              FROM ok o WHERE o.nw > 0
        ),
        pruned AS (
            DELETE FROM mailroster.send_counters c
             USING (SELECT o.login,
                           max(o.now1 + (o.j - 1) * interval '1 microsecond'
                               - make_interval(secs => o.maxsecs)) AS cut
                      FROM ok o
                     WHERE o.nw > 0 AND (o.has_rows OR o.j >= 2) AND (o.lseq + o.j - 1) % 16 = 0
                     GROUP BY o.login) p
             WHERE c.username = p.login AND c.window_start <= p.cut
        )
        SELECT coalesce(array_agg(o.ord), '{}') INTO v_fast FROM ok o;

        verdict := 'ok'; limit_kind := NULL; limit_value := NULL; window_seconds := NULL;
        used := NULL; free_in := NULL; full_in := NULL; scope := NULL; reason := NULL;
        suspended_now := false;
        FOREACH v_i IN ARRAY v_fast LOOP
            ord := v_i;
            RETURN NEXT;
        END LOOP;
        IF cardinality(v_fast) = cardinality(p_logins) THEN
            RETURN;
        END IF;
    END IF;

    -- 3. the rest, one at a time, by the loop of migration 0008
    IF cardinality(v_fast) = 0 THEN
        RETURN QUERY SELECT * FROM mailroster.send_admit_each(p_logins, p_recipients, p_queue_ids, p_wait_ms);
        RETURN;
    END IF;
    v_rest := ARRAY(SELECT g.i FROM generate_subscripts(p_logins, 1) AS g(i) WHERE g.i <> ALL (v_fast) ORDER BY g.i);
    RETURN QUERY
        SELECT v_rest[e.ord], e.verdict, e.limit_kind, e.limit_value, e.window_seconds, e.used, e.free_in,
               e.full_in, e.scope, e.reason, e.suspended_now
          FROM mailroster.send_admit_each(
                   ARRAY(SELECT p_logins[x.i] FROM unnest(v_rest) WITH ORDINALITY AS x(i, k) ORDER BY x.k),
                   ARRAY(SELECT p_recipients[x.i] FROM unnest(v_rest) WITH ORDINALITY AS x(i, k) ORDER BY x.k),
                   ARRAY(SELECT p_queue_ids[x.i] FROM unnest(v_rest) WITH ORDINALITY AS x(i, k) ORDER BY x.k),
                   p_wait_ms) AS e;
END
$fn$;

-- the callers of the old send_admit_many (roles.sql: mailroster_reader)
-- call the new one; the loop is for it alone
DO $acl$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT DISTINCT r.rolname
          FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) x JOIN pg_roles r ON r.oid = x.grantee
         WHERE p.oid = 'mailroster.send_admit_each(text[], int[], text[], int)'::regprocedure
           AND x.grantee <> p.proowner AND x.privilege_type = 'EXECUTE'
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION mailroster.send_admit_many(text[], int[], text[], int) TO %I', g.rolname);
        EXECUTE format('REVOKE EXECUTE ON FUNCTION mailroster.send_admit_each(text[], int[], text[], int) FROM %I', g.rolname);
    END LOOP;
END
$acl$;

REVOKE ALL ON FUNCTION
    mailroster.send_window_rows(bigint, bigint, int, int, int, int, int, int, boolean),
    mailroster.send_admit_many(text[], int[], text[], int),
    mailroster.send_admit_each(text[], int[], text[], int)
FROM PUBLIC;

INSERT INTO mailroster.schema_version (version, description)
VALUES (18, 'admissions decided for the whole batch when no account is locked (send_admit_many)');

COMMIT;
