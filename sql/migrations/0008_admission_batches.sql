-- mailroster migration 0008: admissions in batches, at a cost that does not
-- grow with the number of messages an account has sent.
--
-- Apply with:  psql -v ON_ERROR_STOP=1 -X -d DB -f sql/migrations/0008_admission_batches.sql
-- (as the schema owner; then run sql/roles.sql).  One transaction.
--
-- The algorithm of migration 0005 stays (a sliding log, one row per
-- admitted message, exact in any window); what changes is its cost.
--
-- 1. RUNNING TOTALS.  Every send_counters row now carries the account's
--    running totals up to and including itself: seq (messages: 1, 2, 3,
--    ...) and cum_recipients.  What a window (t - W, t] holds is then the
--    newest row's totals less those before the window's first row: two
--    index probes, where migration 0005 summed every row of the window (a
--    newsletter account with 10,000 messages a day made every admission
--    read 10,000 rows).  Rows are still deleted oldest first only, so the
--    totals of the rows that remain stay consistent; a row inserted by hand
--    (the admin role may) gets totals from the trigger below.
-- 2. BATCHES.  mailroster.send_admit_many(logins[], recipient counts[],
--    queue ids[], wait) decides many admissions in one statement and one
--    transaction: mailrosterd hands a database thread every admission that
--    queued while the thread was busy, so a round trip, a parse and a
--    commit are shared by all of them.  The admissions run in the order of
--    their logins (and of their place in the batch for one login), so two
--    batches that share accounts lock them in the same order and never
--    wait for each other in a circle.  Each admission is a step of its own:
--    one whose account stays locked longer than p_wait_ms (or that ends a
--    deadlock with a writer outside mailroster) is answered 'busy' and
--    changes nothing, and the others go on.  The verdicts, the texts and the
--    suspension rules are those of send_admit (migration 0006), which is now
--    a batch of one.
-- 3. WINDOW LISTS.  mailroster.send_windows() applies the precedence of
--    migration 0005 to values the caller has already read; it is the one
--    place that does, and send_limits_from() (the admin socket's listings)
--    calls it too.  A partial index finds the global windows.

\set ON_ERROR_STOP 1

BEGIN;

DO $guard$
BEGIN
    IF (SELECT max(version) FROM mailroster.schema_version) <> 7 THEN
        RAISE EXCEPTION 'migration 0008 needs schema version 7';
    END IF;
END
$guard$;

------------------------------------------------------------------------------
-- 1. Running totals
------------------------------------------------------------------------------

ALTER TABLE mailroster.send_counters
    ADD COLUMN seq bigint,
    ADD COLUMN cum_recipients bigint;

UPDATE mailroster.send_counters c
   SET seq = t.seq, cum_recipients = t.cum
  FROM (SELECT username, window_start,
               sum(messages) OVER o AS seq, sum(recipients) OVER o AS cum
          FROM mailroster.send_counters
        WINDOW o AS (PARTITION BY username ORDER BY window_start)) t
 WHERE t.username = c.username AND t.window_start = c.window_start;

ALTER TABLE mailroster.send_counters
    ALTER COLUMN seq SET NOT NULL,
    ALTER COLUMN cum_recipients SET NOT NULL;

-- A row written without totals (by hand, by an older send_admit) gets them
-- from the account's newest row.  send_admit_many writes them itself.
CREATE FUNCTION mailroster.tg_send_counters_totals() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    v_seq bigint;
    v_cum bigint;
BEGIN
    SELECT c.seq, c.cum_recipients INTO v_seq, v_cum
      FROM mailroster.send_counters c
     WHERE c.username = NEW.username AND c.window_start < NEW.window_start
     ORDER BY c.window_start DESC LIMIT 1;
    NEW.seq := coalesce(v_seq, 0) + NEW.messages;
    NEW.cum_recipients := coalesce(v_cum, 0) + NEW.recipients;
    RETURN NEW;
END
$fn$;

CREATE TRIGGER send_counters_10_totals BEFORE INSERT ON mailroster.send_counters
    FOR EACH ROW WHEN (NEW.seq IS NULL OR NEW.cum_recipients IS NULL)
    EXECUTE FUNCTION mailroster.tg_send_counters_totals();

COMMENT ON TABLE mailroster.send_counters IS
    'Sliding log of admitted outbound messages: one row per message (window_start = admission time, messages = 1, recipients = recipient_count, seq and cum_recipients = the account''s running totals including this row), written only by mailroster.send_admit_many(), pruned past the account''s longest window, oldest first.';

CREATE INDEX send_limits_global_idx ON mailroster.send_limits (window_seconds) WHERE scope = 'global';

------------------------------------------------------------------------------
-- 2. Window lists
------------------------------------------------------------------------------

-- The windows of a mailbox from what the caller read of it: its id, its
-- domain's id, mailboxes.send_limit_messages / _recipients (p_mm, p_mr) and
-- domains.send_limit_messages / _recipients / _window (p_dm, p_dr, p_dw).
-- Precedence as in migration 0005 (mailbox > domain > global, wholesale);
-- p_rank 2 leaves out the mailbox's own scope (what it would inherit);
-- p_unlimited keeps the windows that state "unlimited" (both NULL).
-- Arrays in window order.
CREATE FUNCTION mailroster.send_windows(p_mailbox_id bigint, p_domain_id bigint,
                                        p_mm int, p_mr int, p_dm int, p_dr int, p_dw int,
                                        p_rank int, p_unlimited boolean,
                                        OUT scopes text[], OUT secs int[], OUT msgs int[], OUT rcpts int[])
    LANGUAGE plpgsql STABLE
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    l record;
    v_best int := 4;
    v_rank int;         -- rank, then a place in the arrays
    -- candidates: rank, scope, window, messages, recipients
    c_rank int[] := '{}';
    c_scope text[] := '{}';
    c_w int[] := '{}';
    c_m int[] := '{}';
    c_r int[] := '{}';
BEGIN
    IF p_rank <= 1 AND (p_mm IS NOT NULL OR p_mr IS NOT NULL) THEN
        c_rank := c_rank || 1; c_scope := c_scope || 'mailbox'::text; c_w := c_w || p_dw;
        c_m := c_m || nullif(coalesce(p_mm, p_dm), 0); c_r := c_r || nullif(coalesce(p_mr, p_dr), 0);
    END IF;
    IF p_rank <= 2 AND (p_dm > 0 OR p_dr > 0) THEN
        c_rank := c_rank || 2; c_scope := c_scope || 'domain'::text; c_w := c_w || p_dw;
        c_m := c_m || nullif(p_dm, 0); c_r := c_r || nullif(p_dr, 0);
    END IF;
    FOR l IN
        SELECT 1 AS rank, 'mailbox'::text AS scope, s.window_seconds, s.messages, s.recipients
          FROM mailroster.send_limits s WHERE s.mailbox_id = p_mailbox_id AND p_rank <= 1
        UNION ALL
        SELECT 2, 'domain', s.window_seconds, s.messages, s.recipients
          FROM mailroster.send_limits s WHERE s.domain_id = p_domain_id AND p_rank <= 2
        UNION ALL
        SELECT 3, 'global', s.window_seconds, s.messages, s.recipients
          FROM mailroster.send_limits s WHERE s.scope = 'global'
    LOOP
        c_rank := c_rank || l.rank; c_scope := c_scope || l.scope; c_w := c_w || l.window_seconds;
        c_m := c_m || l.messages; c_r := c_r || l.recipients;
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(c_rank, 1), 0) LOOP
        v_best := least(v_best, c_rank[i]);
    END LOOP;
    scopes := '{}'; secs := '{}'; msgs := '{}'; rcpts := '{}';
    -- the chosen rank's windows, shortest first (insertion sort: a handful)
    FOR i IN 1 .. coalesce(array_length(c_rank, 1), 0) LOOP
        CONTINUE WHEN c_rank[i] <> v_best OR NOT (p_unlimited OR c_m[i] IS NOT NULL OR c_r[i] IS NOT NULL);
        v_rank := coalesce(array_length(secs, 1), 0) + 1;
        WHILE v_rank > 1 AND secs[v_rank - 1] > c_w[i] LOOP
            scopes[v_rank] := scopes[v_rank - 1]; secs[v_rank] := secs[v_rank - 1];
            msgs[v_rank] := msgs[v_rank - 1]; rcpts[v_rank] := rcpts[v_rank - 1];
            v_rank := v_rank - 1;
        END LOOP;
        scopes[v_rank] := c_scope[i]; secs[v_rank] := c_w[i]; msgs[v_rank] := c_m[i]; rcpts[v_rank] := c_r[i];
    END LOOP;
END
$fn$;

-- The admin socket's listing, as in migration 0006, now through send_windows.
CREATE OR REPLACE FUNCTION mailroster.send_limits_from(p_mailbox_id bigint, p_rank int, p_unlimited boolean)
    RETURNS TABLE (scope text, window_seconds int, messages int, recipients int)
    LANGUAGE plpgsql STABLE
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    w record;
BEGIN
    SELECT x.* INTO w
      FROM mailroster.mailboxes mb JOIN mailroster.domains d ON d.id = mb.domain_id,
           LATERAL mailroster.send_windows(mb.id, mb.domain_id, mb.send_limit_messages, mb.send_limit_recipients,
                                           d.send_limit_messages, d.send_limit_recipients, d.send_limit_window,
                                           p_rank, p_unlimited) x
     WHERE mb.id = p_mailbox_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM unnest(w.scopes, w.secs, w.msgs, w.rcpts);
END
$fn$;

------------------------------------------------------------------------------
-- 3. What a window holds, and when a message fits
------------------------------------------------------------------------------

-- When would a message of p_n recipients fit into one window, counting
-- only the rows there are now?  NULL when it fits at p_now.  Rows leave the
-- window (p_now - W, p_now] oldest first; the answer is the time the
-- oldest row that has to go leaves: its time + W.  (Same answer as
-- migration 0005's, from the running totals.)
CREATE OR REPLACE FUNCTION mailroster.send_free_at(p_login text, p_now timestamptz, p_window int,
                                                   p_messages int, p_recipients int, p_n int)
    RETURNS timestamptz
    LANGUAGE plpgsql STABLE
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    v_since timestamptz := p_now - make_interval(secs => p_window);
    v_lseq bigint;
    v_lcum bigint;
    v_fseq bigint;
    v_fcum bigint;
    v_frcpt int;
    v_cnt bigint;
    v_sum bigint;
    v_tm timestamptz;
    v_tr timestamptz;
BEGIN
    SELECT c.seq, c.cum_recipients INTO v_lseq, v_lcum
      FROM mailroster.send_counters c
     WHERE c.username = p_login AND c.window_start <= p_now
     ORDER BY c.window_start DESC LIMIT 1;
    SELECT c.seq, c.cum_recipients, c.recipients INTO v_fseq, v_fcum, v_frcpt
      FROM mailroster.send_counters c
     WHERE c.username = p_login AND c.window_start > v_since AND c.window_start <= p_now
     ORDER BY c.window_start LIMIT 1;
    IF v_fseq IS NULL THEN
        v_cnt := 0; v_sum := 0;
    ELSE
        v_cnt := v_lseq - v_fseq + 1;
        v_sum := v_lcum - v_fcum + v_frcpt;
    END IF;
    IF (p_messages IS NULL OR v_cnt + 1 <= p_messages)
       AND (p_recipients IS NULL OR v_sum + p_n <= p_recipients) THEN
        RETURN NULL;
    END IF;
    IF v_fseq IS NULL THEN
        RETURN NULL;    -- never fits (more recipients than the window takes)
    END IF;
    -- messages: the (v_cnt + 1 - L)th row of the window has to go
    IF p_messages IS NOT NULL AND v_cnt + 1 > p_messages THEN
        SELECT c.window_start INTO v_tm
          FROM mailroster.send_counters c
         WHERE c.username = p_login AND c.window_start > v_since
           AND c.seq >= v_fseq + (v_cnt - p_messages)
         ORDER BY c.window_start LIMIT 1;
        IF v_tm IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;
    -- recipients: the first row by which enough recipients have gone
    IF p_recipients IS NOT NULL AND v_sum + p_n > p_recipients THEN
        SELECT c.window_start INTO v_tr
          FROM mailroster.send_counters c
         WHERE c.username = p_login AND c.window_start > v_since
           AND c.cum_recipients - (v_fcum - v_frcpt) >= v_sum + p_n - p_recipients
         ORDER BY c.window_start LIMIT 1;
        IF v_tr IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN greatest(v_tm, v_tr) + make_interval(secs => p_window);
END
$fn$;

-- send_usage as in migration 0006, from the running totals.
CREATE OR REPLACE FUNCTION mailroster.send_usage(p_login text)
    RETURNS TABLE (scope text, window_seconds int, messages int, recipients int,
                   sent_messages bigint, sent_recipients bigint, frees_at timestamptz)
    LANGUAGE sql STABLE
    SET search_path = mailroster, pg_temp
AS $fn$
    SELECT l.scope, l.window_seconds, l.messages, l.recipients,
           coalesce(la.seq - f.seq + 1, 0),
           coalesce(la.cum_recipients - f.cum_recipients + f.recipients, 0),
           f.window_start + make_interval(secs => l.window_seconds)
      FROM mailroster.mailboxes mb
      JOIN mailroster.domains d ON d.id = mb.domain_id
     CROSS JOIN LATERAL mailroster.send_limits_from(mb.id, 1, true) l
      LEFT JOIN LATERAL (SELECT c.seq, c.cum_recipients, c.recipients, c.window_start
                           FROM mailroster.send_counters c
                          WHERE c.username = p_login
                            AND c.window_start > now() - make_interval(secs => l.window_seconds)
                          ORDER BY c.window_start LIMIT 1) f ON true
      LEFT JOIN LATERAL (SELECT c.seq, c.cum_recipients
                           FROM mailroster.send_counters c
                          WHERE c.username = p_login
                          ORDER BY c.window_start DESC LIMIT 1) la ON true
     WHERE d.name = split_part(p_login, '@', 2) AND mb.local_part = split_part(p_login, '@', 1)
     ORDER BY l.window_seconds;
$fn$;

------------------------------------------------------------------------------
-- 4. Admissions in batches
------------------------------------------------------------------------------

-- Admit each message i of p_recipients[i] recipients sent by p_logins[i]
-- (canonical logins, local@domain), or say why not; one row per message,
-- ord = i.  p_queue_ids[i] may be NULL (the array too).  p_wait_ms: how
-- long an admission waits at most for its account's lock (NULL: the
-- session's lock_timeout); one that waits longer is 'busy' and changes
-- nothing.  Verdicts and columns as send_admit's (migration 0005 and 0006),
-- plus 'busy'.
CREATE FUNCTION mailroster.send_admit_many(p_logins text[], p_recipients int[], p_queue_ids text[],
                                           p_wait_ms int DEFAULT NULL)
    RETURNS TABLE (ord int, verdict text, limit_kind text, limit_value int,
                   window_seconds int, used bigint, free_in float8,
                   full_in float8, scope text, reason text, suspended_now boolean)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = mailroster, pg_temp
    -- the same plans for every call, not planned again each time, and
    -- on the indexes even where a table is tiny (a sequential scan asks
    -- the kernel for the table's size, each time)
    SET plan_cache_mode = force_generic_plan
    SET enable_seqscan = off
AS $fn$
DECLARE
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
    FOR v_i IN
        SELECT u.o::int FROM unnest(p_logins) WITH ORDINALITY AS u(l, o) ORDER BY u.l, u.o
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

-- send_admit (migrations 0005, 0006): a batch of one.  A lock wait past
-- p_wait_ms ends it with SQLSTATE 55P03, as before.
CREATE OR REPLACE FUNCTION mailroster.send_admit(p_login text, p_recipients int, p_queue_id text DEFAULT NULL,
                                                 p_wait_ms int DEFAULT NULL,
                                                 OUT verdict text, OUT limit_kind text, OUT limit_value int,
                                                 OUT window_seconds int, OUT used bigint, OUT free_in float8,
                                                 OUT full_in float8, OUT scope text,
                                                 OUT reason text, OUT suspended_now boolean)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM mailroster.send_admit_many(ARRAY[p_login], ARRAY[p_recipients], ARRAY[p_queue_id], p_wait_ms);
    IF r.verdict = 'busy' THEN
        RAISE EXCEPTION 'canceling statement due to lock timeout' USING ERRCODE = 'lock_not_available';
    END IF;
    verdict := r.verdict; limit_kind := r.limit_kind; limit_value := r.limit_value;
    window_seconds := r.window_seconds; used := r.used; free_in := r.free_in; full_in := r.full_in;
    scope := r.scope; reason := r.reason; suspended_now := r.suspended_now;
END
$fn$;

REVOKE ALL ON FUNCTION
    mailroster.send_admit_many(text[], int[], text[], int),
    mailroster.send_windows(bigint, bigint, int, int, int, int, int, int, boolean),
    mailroster.tg_send_counters_totals()
FROM PUBLIC;

INSERT INTO mailroster.schema_version (version, description)
VALUES (8, 'admissions in batches (send_admit_many); running totals in send_counters');

COMMIT;
