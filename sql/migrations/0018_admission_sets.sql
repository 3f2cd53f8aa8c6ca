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
--    decided by the loop of migration 0008, unchanged, after the fast
--    path's rows are in: the same verdicts, texts, hits and suspensions.
--    Its locks are the fast path's own by then (held to the commit), so it
--    waits for nothing new.
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

CREATE OR REPLACE FUNCTION mailroster.send_admit_many(p_logins text[], p_recipients int[], p_queue_ids text[],
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
    v_t0 timestamptz;
    v_i int;
    v_login text;
    v_at int;
    v_n int;
    v_qid text;
    v_mbx bigint;
    v_dom bigint;
    v_susp text;
    v_mm int; v_mr int; v_dm int; v_dr int; v_dw int;
    v_w record;
    v_nw int;
    v_now timestamptz;
    v_lat timestamptz;
    v_lseq bigint;
    v_lcum bigint;
    v_fseq bigint;
    v_fcum bigint;
    v_frcpt int;
    v_max int;
    v_cnt bigint;
    v_sum bigint;
    v_free timestamptz;
    v_worst timestamptz;
    v_full timestamptz;
    v_maybe_full boolean;
    v_hit record;
BEGIN
    IF p_wait_ms IS NOT NULL THEN
        PERFORM set_config('lock_timeout', greatest(p_wait_ms, 1)::text, true);
    END IF;

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

    -- 3. the rest, one at a time (migration 0008)
    FOR v_i IN
        SELECT u.o::int FROM unnest(p_logins) WITH ORDINALITY AS u(l, o)
         WHERE u.o::int <> ALL (v_fast) ORDER BY u.l, u.o
    LOOP
        ord := v_i;
        verdict := NULL; limit_kind := NULL; limit_value := NULL; window_seconds := NULL;
        used := NULL; free_in := NULL; full_in := NULL; scope := NULL; reason := NULL;
        suspended_now := false;
        v_login := p_logins[v_i];
        v_n := greatest(coalesce(p_recipients[v_i], 0), 0);
        v_qid := p_queue_ids[v_i];
        v_at := length(v_login) - strpos(reverse(v_login), '@') + 1;
        IF v_login IS NULL OR strpos(v_login, '@') < 2 THEN
            verdict := 'unknown';
            RETURN NEXT;
            CONTINUE;
        END IF;
        BEGIN
            SELECT mb.id, mb.domain_id, mb.send_suspended_reason, mb.send_limit_messages, mb.send_limit_recipients,
                   d.send_limit_messages, d.send_limit_recipients, d.send_limit_window
              INTO v_mbx, v_dom, v_susp, v_mm, v_mr, v_dm, v_dr, v_dw
              FROM mailroster.mailboxes mb JOIN mailroster.domains d ON d.id = mb.domain_id
             WHERE d.name = substr(v_login, v_at + 1) AND mb.local_part = substr(v_login, 1, v_at - 1)
               FOR NO KEY UPDATE OF mb;
            IF NOT FOUND THEN
                verdict := 'unknown';
                RETURN NEXT;
                CONTINUE;
            END IF;
            IF v_susp IS NOT NULL THEN
                verdict := 'suspended';
                reason := v_susp;
                RETURN NEXT;
                CONTINUE;
            END IF;
            v_w := mailroster.send_windows(v_mbx, v_dom, v_mm, v_mr, v_dm, v_dr, v_dw, 1, false);
            v_nw := coalesce(array_length(v_w.secs, 1), 0);
            IF v_nw = 0 THEN
                verdict := 'ok';        -- unlimited: admitted without a row
                RETURN NEXT;
                CONTINUE;
            END IF;
            -- after the lock (migration 0005, step 2)
            SELECT c.window_start, c.seq, c.cum_recipients INTO v_lat, v_lseq, v_lcum
              FROM mailroster.send_counters c
             WHERE c.username = v_login
             ORDER BY c.window_start DESC LIMIT 1;
            v_now := clock_timestamp();
            IF v_lat IS NOT NULL AND v_lat >= v_now THEN
                v_now := v_lat + interval '1 microsecond';
            END IF;
            v_max := 0;
            v_worst := NULL;
            v_full := NULL;
            v_maybe_full := false;
            FOR k IN 1 .. v_nw LOOP
                v_max := greatest(v_max, v_w.secs[k]);
                IF v_w.rcpts[k] IS NOT NULL AND v_n > v_w.rcpts[k] THEN
                    verdict := 'toobig'; limit_kind := 'recipients'; limit_value := v_w.rcpts[k];
                    window_seconds := v_w.secs[k]; used := v_n; scope := v_w.scopes[k];
                    EXIT;
                END IF;
                v_fseq := NULL;
                IF v_lat IS NOT NULL AND v_lat > v_now - make_interval(secs => v_w.secs[k]) THEN
                    SELECT c.seq, c.cum_recipients, c.recipients INTO v_fseq, v_fcum, v_frcpt
                      FROM mailroster.send_counters c
                     WHERE c.username = v_login AND c.window_start > v_now - make_interval(secs => v_w.secs[k])
                     ORDER BY c.window_start LIMIT 1;
                END IF;
                IF v_fseq IS NULL THEN
                    v_cnt := 0; v_sum := 0;
                ELSE
                    v_cnt := v_lseq - v_fseq + 1;
                    v_sum := v_lcum - v_fcum + v_frcpt;
                END IF;
                IF (v_w.msgs[k] IS NOT NULL AND v_cnt + 1 >= v_w.msgs[k])
                   OR (v_w.rcpts[k] IS NOT NULL AND v_sum + v_n >= v_w.rcpts[k]) THEN
                    v_maybe_full := true;   -- full after this message, or already
                END IF;
                IF (v_w.msgs[k] IS NOT NULL AND v_cnt + 1 > v_w.msgs[k])
                   OR (v_w.rcpts[k] IS NOT NULL AND v_sum + v_n > v_w.rcpts[k]) THEN
                    v_free := mailroster.send_free_at(v_login, v_now, v_w.secs[k], v_w.msgs[k], v_w.rcpts[k], v_n);
                    IF v_worst IS NULL OR v_free > v_worst THEN
                        v_worst := v_free;
                        window_seconds := v_w.secs[k]; scope := v_w.scopes[k];
                        IF v_w.msgs[k] IS NOT NULL AND v_cnt + 1 > v_w.msgs[k] THEN
                            limit_kind := 'messages'; limit_value := v_w.msgs[k]; used := v_cnt;
                        ELSE
                            limit_kind := 'recipients'; limit_value := v_w.rcpts[k]; used := v_sum;
                        END IF;
                    END IF;
                END IF;
            END LOOP;
            IF verdict = 'toobig' THEN
                v_hit := mailroster.send_hit(v_mbx, v_login, v_now,
                                             format('%s recipients in one message, at most %s per %s s',
                                                    v_n, limit_value, window_seconds), v_qid);
                IF v_hit.suspended THEN
                    verdict := 'suspended'; reason := v_hit.reason; suspended_now := true;
                END IF;
                RETURN NEXT;
                CONTINUE;
            END IF;

            -- this account's rows that no window looks at any more, at
            -- every 16th admission (the rows in between cost nothing: every
            -- query asks for a window)
            IF v_lseq % 16 = 0 THEN
                DELETE FROM mailroster.send_counters c
                 WHERE c.username = v_login AND c.window_start <= v_now - make_interval(secs => v_max);
            END IF;

            IF v_worst IS NOT NULL THEN
                verdict := 'defer';
                free_in := greatest(extract(epoch FROM v_worst - v_now), 0);
                -- full for a 1-recipient message too?
                FOR k IN 1 .. v_nw LOOP
                    v_free := mailroster.send_free_at(v_login, v_now, v_w.secs[k], v_w.msgs[k], v_w.rcpts[k], 1);
                    IF v_free IS NOT NULL AND (v_full IS NULL OR v_free > v_full) THEN
                        v_full := v_free;
                    END IF;
                END LOOP;
                full_in := greatest(extract(epoch FROM v_full - v_now), 0);
                v_hit := mailroster.send_hit(v_mbx, v_login, v_now,
                                             format('%s %s per %s s', limit_value, limit_kind, window_seconds), v_qid);
                IF v_hit.suspended THEN
                    verdict := 'suspended'; reason := v_hit.reason; suspended_now := true;
                END IF;
                RETURN NEXT;
                CONTINUE;
            END IF;

            verdict := 'ok';
            INSERT INTO mailroster.send_counters (username, window_start, messages, recipients, seq, cum_recipients)
            VALUES (v_login, v_now, 1, v_n, coalesce(v_lseq, 0) + 1, coalesce(v_lcum, 0) + v_n);
            IF v_maybe_full THEN
                -- full now?  Then name the window that stays full longest.
                FOR k IN 1 .. v_nw LOOP
                    v_free := mailroster.send_free_at(v_login, v_now, v_w.secs[k], v_w.msgs[k], v_w.rcpts[k], 1);
                    IF v_free IS NOT NULL AND (v_full IS NULL OR v_free > v_full) THEN
                        v_full := v_free;
                        window_seconds := v_w.secs[k]; scope := v_w.scopes[k];
                        SELECT s.cnt, s.rc INTO v_cnt, v_sum
                          FROM (SELECT coalesce(v_lseq, 0) + 1 - c.seq + 1 AS cnt,
                                       coalesce(v_lcum, 0) + v_n - c.cum_recipients + c.recipients AS rc
                                  FROM mailroster.send_counters c
                                 WHERE c.username = v_login
                                   AND c.window_start > v_now - make_interval(secs => v_w.secs[k])
                                 ORDER BY c.window_start LIMIT 1) s;
                        IF v_w.msgs[k] IS NOT NULL AND v_cnt >= v_w.msgs[k] THEN
                            limit_kind := 'messages'; limit_value := v_w.msgs[k]; used := v_cnt;
                        ELSE
                            limit_kind := 'recipients'; limit_value := v_w.rcpts[k]; used := v_sum;
                        END IF;
                    END IF;
                END LOOP;
                full_in := extract(epoch FROM v_full - v_now);
            END IF;
            RETURN NEXT;
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            -- this admission changed nothing; the batch goes on
            verdict := 'busy'; limit_kind := NULL; limit_value := NULL; window_seconds := NULL;
            used := NULL; free_in := NULL; full_in := NULL; scope := NULL; reason := NULL;
            suspended_now := false;
            RETURN NEXT;
        END;
    END LOOP;
END
$fn$;

REVOKE ALL ON FUNCTION
    mailroster.send_window_rows(bigint, bigint, int, int, int, int, int, int, boolean)
FROM PUBLIC;

INSERT INTO mailroster.schema_version (version, description)
VALUES (18, 'admissions decided for the whole batch when no account is locked (send_admit_many)');

COMMIT;
