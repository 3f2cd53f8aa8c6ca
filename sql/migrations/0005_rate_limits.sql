-- mailroster migration 0005: outbound rate limits, decided in PostgreSQL.
--
-- Apply with:  psql -v ON_ERROR_STOP=1 -X -d DB -f sql/migrations/0005_rate_limits.sql
-- (as the schema owner; then run sql/roles.sql).  One transaction.
--
-- WHAT IS LIMITED.  Messages and recipients that a SASL-authenticated
-- login sends, per window of W seconds.  Postfix asks mailrosterd at
-- END-OF-MESSAGE with recipient_count; mailrosterd calls
-- mailroster.send_admit(login, recipient_count), which admits the whole
-- message (1 message, N recipients) or not.  A message refused before
-- END-OF-MESSAGE (a recipient refused, the size) never reaches it, so it
-- does not consume a slot.  (A message a content filter rejects after
-- END-OF-MESSAGE has been counted: nothing tells the policy service.)
--
-- WHERE LIMITS COME FROM: mailroster.send_limits_of(mailbox id) is the one
-- place that lists an account's windows; send_admit loops over them, so
-- more windows per account are rows, not code.
--   * mailroster.send_limits rows, scope 'mailbox' (mailbox_id),
--     'domain' (domain_id) or 'global' (neither), each one window:
--     window_seconds, messages, recipients (NULL = no limit of that kind).
--   * the older columns, one window each: mailboxes.send_limit_messages /
--     send_limit_recipients (NULL = the domain's value) and
--     domains.send_limit_messages / send_limit_recipients /
--     send_limit_window (0 = no limit of that kind), as before.
-- Precedence: mailbox > domain > global, wholesale: the most specific scope
-- that has anything (a send_limits row, or for the mailbox a non-NULL
-- send_limit_* column, or for the domain a non-zero one) gives the whole
-- window list, and less specific scopes are not looked at.  "Unlimited" is
-- explicit: a row whose messages and recipients are both NULL (or a mailbox
-- whose send_limit_messages and send_limit_recipients are both 0) states it,
-- and hides the domain's and the global limits.  An account with no window
-- at all is unlimited; its messages are admitted without a log row.
--
-- THE ALGORITHM: a sliding log.  send_counters holds one row per admitted
-- message (username, window_start = the admission time, messages = 1,
-- recipients = N).  send_admit
--   1. locks the mailbox row (FOR NO KEY UPDATE: it conflicts with itself,
--      so every admission of one account, from any mailrosterd on this
--      database, runs one after the other; unlike FOR UPDATE it does not
--      block foreign-key checks of other tables against the mailbox);
--   2. reads the clock after the lock, and never below the account's newest
--      row + 1 us, so one account's admission times strictly increase in
--      the order the admissions ran (also across a clock step backwards);
--   3. for every window W with limit L messages / R recipients, sums the
--      rows with window_start in (t - W, t]; the message fits when
--      count + 1 <= L and sum + N <= R in every window;
--   4. inserts its row and answers 'ok', or answers 'defer' naming the
--      window whose slot frees last, and when (the time at which enough of
--      the oldest rows have left that window: row time + W), or 'toobig'
--      when N > R (it can never fit: a permanent refusal, not a deferral);
--   5. deletes the account's rows older than its longest window (bounded:
--      at most the rows the account added since the last call left).
-- EXACTNESS: take any interval (a, a + W] and the admissions in it, k of
-- them; let t be the last.  Every other one has a time in (a, t], and
-- a >= t - W, so all k - 1 were rows in (t - W, t] when t was decided
-- (the lock ordered them before t, and step 2 gives them smaller times).
-- t was admitted only if (k - 1) + 1 <= L, so k <= L (same for recipients).
-- So at most L admissions in ANY window of length W: no edge burst.  A
-- fixed window (counter reset at :00) lets 2L through around the reset;
-- GCRA / token buckets keep a rate with a burst allowance, not "at most L
-- in any W" (a bucket of L refilling at L/W admits up to 2L - 1 within one
-- W after an idle period); neither is what the limit promises.
-- The log costs one row per message per account, kept for the longest
-- window: a limit of 10000 messages/day keeps up to 10000 rows for that
-- account, summed by an index range scan (username, window_start).

\set ON_ERROR_STOP 1

BEGIN;

CREATE TABLE mailroster.send_limits (
    id             bigserial PRIMARY KEY,
    scope          text NOT NULL
                   CONSTRAINT send_limits_scope_check CHECK (scope IN ('mailbox', 'domain', 'global')),
    mailbox_id     bigint REFERENCES mailroster.mailboxes ON DELETE CASCADE,
    domain_id      bigint REFERENCES mailroster.domains ON DELETE CASCADE,
    window_seconds int NOT NULL
                   CONSTRAINT send_limits_window_check CHECK (window_seconds BETWEEN 1 AND 31622400),
    messages       int CONSTRAINT send_limits_messages_check CHECK (messages > 0),
    recipients     int CONSTRAINT send_limits_recipients_check CHECK (recipients > 0),
    CONSTRAINT send_limits_owner_check CHECK (
        (scope = 'mailbox' AND mailbox_id IS NOT NULL AND domain_id IS NULL) OR
        (scope = 'domain' AND domain_id IS NOT NULL AND mailbox_id IS NULL) OR
        (scope = 'global' AND mailbox_id IS NULL AND domain_id IS NULL))
);
CREATE UNIQUE INDEX send_limits_window_key
    ON mailroster.send_limits (scope, coalesce(mailbox_id, 0), coalesce(domain_id, 0), window_seconds);
CREATE INDEX send_limits_mailbox_id_idx ON mailroster.send_limits (mailbox_id) WHERE mailbox_id IS NOT NULL;
CREATE INDEX send_limits_domain_id_idx ON mailroster.send_limits (domain_id) WHERE domain_id IS NOT NULL;
COMMENT ON TABLE mailroster.send_limits IS
    'Outbound rate-limit windows beyond the send_limit_* columns. Precedence mailbox > domain > global, wholesale (the most specific scope with any limit gives the whole list); messages and recipients both NULL = explicitly unlimited. See migration 0005.';

COMMENT ON TABLE mailroster.send_counters IS
    'Sliding log of admitted outbound messages: one row per message (window_start = admission time, messages = 1, recipients = recipient_count), written only by mailroster.send_admit(), pruned past the account''s longest window.';

-- The window list of one mailbox: the one place send_admit takes it from.
-- (plpgsql, not sql: its plan is cached for the session; an sql function
-- that cannot be inlined is planned again at every call.)
CREATE FUNCTION mailroster.send_limits_of(p_mailbox_id bigint)
    RETURNS TABLE (scope text, window_seconds int, messages int, recipients int)
    LANGUAGE plpgsql STABLE
    SET search_path = mailroster, pg_temp
AS $fn$
BEGIN
    RETURN QUERY
    WITH m AS (
        SELECT mb.id, mb.domain_id, mb.send_limit_messages AS mm, mb.send_limit_recipients AS mr,
               d.send_limit_messages AS dm, d.send_limit_recipients AS dr, d.send_limit_window AS dw
          FROM mailroster.mailboxes mb JOIN mailroster.domains d ON d.id = mb.domain_id
         WHERE mb.id = p_mailbox_id
    ), cand AS (
        SELECT 1 AS rank, 'mailbox'::text AS sc, l.window_seconds AS w, l.messages AS ms, l.recipients AS rs
          FROM mailroster.send_limits l, m WHERE l.scope = 'mailbox' AND l.mailbox_id = m.id
        UNION ALL
        SELECT 1, 'mailbox', m.dw, nullif(coalesce(m.mm, m.dm), 0), nullif(coalesce(m.mr, m.dr), 0)
          FROM m WHERE m.mm IS NOT NULL OR m.mr IS NOT NULL
        UNION ALL
        SELECT 2, 'domain', l.window_seconds, l.messages, l.recipients
          FROM mailroster.send_limits l, m WHERE l.scope = 'domain' AND l.domain_id = m.domain_id
        UNION ALL
        SELECT 2, 'domain', m.dw, nullif(m.dm, 0), nullif(m.dr, 0)
          FROM m WHERE m.dm > 0 OR m.dr > 0
        UNION ALL
        SELECT 3, 'global', l.window_seconds, l.messages, l.recipients
          FROM mailroster.send_limits l WHERE l.scope = 'global'
    )
    SELECT c.sc, c.w, c.ms, c.rs
      FROM cand c
     WHERE c.rank = (SELECT min(c2.rank) FROM cand c2)
       AND (c.ms IS NOT NULL OR c.rs IS NOT NULL)
     ORDER BY c.w;
END
$fn$;

-- When would a message of p_n recipients fit into one window, counting
-- only the rows there are now?  NULL when it fits at p_now.  Rows leave the
-- window (p_now - W, p_now] oldest first; the answer is the time the
-- oldest row that has to go leaves: its time + W.
CREATE FUNCTION mailroster.send_free_at(p_login text, p_now timestamptz, p_window int,
                                        p_messages int, p_recipients int, p_n int)
    RETURNS timestamptz
    LANGUAGE plpgsql STABLE
    SET search_path = mailroster, pg_temp
AS $fn$
BEGIN
    RETURN (
    WITH w AS (
        SELECT c.window_start AS at,
               count(*) OVER o AS cm, sum(c.recipients) OVER o AS cr,
               count(*) OVER () AS tm, sum(c.recipients) OVER () AS tr
          FROM mailroster.send_counters c
         WHERE c.username = p_login AND c.window_start > p_now - make_interval(secs => p_window)
        WINDOW o AS (ORDER BY c.window_start ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    )
    SELECT CASE
             WHEN (p_messages IS NULL OR coalesce(max(w.tm), 0) + 1 <= p_messages)
              AND (p_recipients IS NULL OR coalesce(max(w.tr), 0) + p_n <= p_recipients) THEN NULL
             ELSE (SELECT min(w2.at) FROM w w2
                    WHERE (p_messages IS NULL OR w2.tm - w2.cm + 1 <= p_messages)
                      AND (p_recipients IS NULL OR w2.tr - w2.cr + p_n <= p_recipients))
                  + make_interval(secs => p_window)
           END
      FROM w);
END
$fn$;

-- Admit one message of p_recipients recipients sent by p_login (the
-- canonical login, local@domain), or say why not.  p_wait_ms: how long to
-- wait at most for the account's lock (NULL: lock_timeout as set).  SECURITY DEFINER: the
-- daemon's reader role may run it, and it is the reader's only way to
-- write send_counters.
--   verdict      'ok' (admitted and logged; or no limit applies: not logged),
--                'defer' (over a limit: limit_kind/limit_value/window_seconds
--                name it, used = what the window holds, free_in = seconds
--                until this message would fit), 'toobig' (more recipients
--                than a window allows: never fits), 'unknown' (no mailbox).
--   full_in      seconds until a 1-recipient message would fit again, when
--                the account is now full (after this admission); else NULL.
--                mailrosterd refuses the account at RCPT until then.  With
--                'ok' and full_in set, limit_kind .. used name the full window.
CREATE FUNCTION mailroster.send_admit(p_login text, p_recipients int, p_queue_id text DEFAULT NULL,
                                      p_wait_ms int DEFAULT NULL,
                                      OUT verdict text, OUT limit_kind text, OUT limit_value int,
                                      OUT window_seconds int, OUT used bigint, OUT free_in float8,
                                      OUT full_in float8, OUT scope text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    v_at int := length(p_login) - strpos(reverse(p_login), '@') + 1;
    v_mbx bigint;
    v_now timestamptz;
    v_n int := greatest(coalesce(p_recipients, 0), 0);
    v_max int := 0;
    v_nlim int := 0;
    v_cnt bigint;
    v_sum bigint;
    v_free timestamptz;
    v_worst timestamptz;
    v_full timestamptz;
    v_maybe_full boolean := false;
    l record;
BEGIN
    -- p_queue_id is for the log line of a future audit; not stored yet
    -- the caller's remaining time: a lock wait longer than that ends with
    -- SQLSTATE 55P03 and changes nothing (the caller has given up by then)
    IF p_wait_ms IS NOT NULL THEN
        PERFORM set_config('lock_timeout', greatest(p_wait_ms, 1)::text, true);
    END IF;
    IF p_login IS NULL OR strpos(p_login, '@') < 2 THEN
        verdict := 'unknown';
        RETURN;
    END IF;
    SELECT mb.id INTO v_mbx
      FROM mailroster.mailboxes mb JOIN mailroster.domains d ON d.id = mb.domain_id
     WHERE d.name = substr(p_login, v_at + 1) AND mb.local_part = substr(p_login, 1, v_at - 1)
       FOR NO KEY UPDATE OF mb;
    IF NOT FOUND THEN
        verdict := 'unknown';
        RETURN;
    END IF;
    -- after the lock (see the header, step 2)
    v_now := greatest(clock_timestamp(),
                      (SELECT max(c.window_start) + interval '1 microsecond'
                         FROM mailroster.send_counters c WHERE c.username = p_login));

    FOR l IN SELECT * FROM mailroster.send_limits_of(v_mbx) LOOP
        v_nlim := v_nlim + 1;
        v_max := greatest(v_max, l.window_seconds);
        IF l.recipients IS NOT NULL AND v_n > l.recipients THEN
            verdict := 'toobig'; limit_kind := 'recipients'; limit_value := l.recipients;
            window_seconds := l.window_seconds; used := v_n; scope := l.scope;
            RETURN;
        END IF;
        SELECT count(*), coalesce(sum(c.recipients), 0) INTO v_cnt, v_sum
          FROM mailroster.send_counters c
         WHERE c.username = p_login AND c.window_start > v_now - make_interval(secs => l.window_seconds);
        IF (l.messages IS NOT NULL AND v_cnt + 1 >= l.messages)
           OR (l.recipients IS NOT NULL AND v_sum + v_n >= l.recipients) THEN
            v_maybe_full := true;   -- full after this message, or already
        END IF;
        IF (l.messages IS NOT NULL AND v_cnt + 1 > l.messages)
           OR (l.recipients IS NOT NULL AND v_sum + v_n > l.recipients) THEN
            v_free := mailroster.send_free_at(p_login, v_now, l.window_seconds, l.messages, l.recipients, v_n);
            IF v_worst IS NULL OR v_free > v_worst THEN
                v_worst := v_free;
                window_seconds := l.window_seconds; scope := l.scope;
                IF l.messages IS NOT NULL AND v_cnt + 1 > l.messages THEN
                    limit_kind := 'messages'; limit_value := l.messages; used := v_cnt;
                ELSE
                    limit_kind := 'recipients'; limit_value := l.recipients; used := v_sum;
                END IF;
            END IF;
        END IF;
    END LOOP;

    -- prune this account's rows that no window looks at any more
    DELETE FROM mailroster.send_counters c
     WHERE c.username = p_login AND c.window_start <= v_now - make_interval(secs => v_max);

    IF v_worst IS NOT NULL THEN
        verdict := 'defer';
        free_in := greatest(extract(epoch FROM v_worst - v_now), 0);
        -- full for a 1-recipient message too?
        FOR l IN SELECT * FROM mailroster.send_limits_of(v_mbx) LOOP
            v_free := mailroster.send_free_at(p_login, v_now, l.window_seconds, l.messages, l.recipients, 1);
            IF v_free IS NOT NULL AND (v_full IS NULL OR v_free > v_full) THEN
                v_full := v_free;
            END IF;
        END LOOP;
        full_in := greatest(extract(epoch FROM v_full - v_now), 0);
        RETURN;
    END IF;
    verdict := 'ok';
    IF v_nlim = 0 THEN
        RETURN;
    END IF;
    INSERT INTO mailroster.send_counters (username, window_start, messages, recipients)
    VALUES (p_login, v_now, 1, v_n);
    IF NOT v_maybe_full THEN
        RETURN;
    END IF;
    -- full now?  Then name the window that stays full longest.
    FOR l IN SELECT * FROM mailroster.send_limits_of(v_mbx) LOOP
        v_free := mailroster.send_free_at(p_login, v_now, l.window_seconds, l.messages, l.recipients, 1);
        IF v_free IS NOT NULL AND (v_full IS NULL OR v_free > v_full) THEN
            v_full := v_free;
            window_seconds := l.window_seconds; scope := l.scope;
            SELECT count(*), coalesce(sum(c.recipients), 0) INTO v_cnt, v_sum
              FROM mailroster.send_counters c
             WHERE c.username = p_login AND c.window_start > v_now - make_interval(secs => l.window_seconds);
            IF l.messages IS NOT NULL AND v_cnt >= l.messages THEN
                limit_kind := 'messages'; limit_value := l.messages; used := v_cnt;
            ELSE
                limit_kind := 'recipients'; limit_value := l.recipients; used := v_sum;
            END IF;
        END IF;
    END LOOP;
    full_in := extract(epoch FROM v_full - v_now);
END
$fn$;

REVOKE ALL ON FUNCTION
    mailroster.send_limits_of(bigint),
    mailroster.send_free_at(text, timestamptz, int, int, int, int),
    mailroster.send_admit(text, int, text, int)
FROM PUBLIC;
REVOKE ALL ON mailroster.send_limits FROM PUBLIC;
REVOKE ALL ON SEQUENCE mailroster.send_limits_id_seq FROM PUBLIC;

INSERT INTO mailroster.schema_version (version, description)
VALUES (5, 'outbound rate limits: send_limits, send_admit() sliding log');

COMMIT;
