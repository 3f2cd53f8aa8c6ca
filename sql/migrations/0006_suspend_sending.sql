-- mailroster migration 0006: a compromised account's sending suspended,
-- decided in PostgreSQL next to send_admit; limit windows as the admin
-- socket sees them; counters of removed accounts pruned.
--
-- Apply with:  psql -v ON_ERROR_STOP=1 -X -d DB -f sql/migrations/0006_suspend_sending.sql
-- (as the schema owner; then run sql/roles.sql: send_admit is replaced,
-- and its grant with it).  One transaction.
--
-- 1. SUSPENSION.  A "hit" is an admission send_admit refuses because of a
--    limit ('defer' or 'toobig').  An account with N hits within the last
--    T seconds has its sending suspended: mailboxes.send_suspended_at and
--    send_suspended_reason are set, an audit_log row is written (actor
--    'mailroster.send_admit', action 'user suspend'), and send_admit
--    answers 'suspended' (mailrosterd answers HOLD: the message goes to
--    Postfix's hold queue).  It is decided in send_admit, under the
--    mailbox row lock every admission of the account takes, so hosts
--    sharing the database count one sequence of hits and suspend once.
--    The suspension is an UPDATE of the mailbox row: the change log
--    carries it to every mailrosterd like any other mailbox change, and
--    each answers the account's next messages with HOLD from memory.
--    While suspended, send_admit answers 'suspended' without counting.
--    N and T are database-wide (mailroster.settings.suspend_after_hits,
--    0 = off, the default; suspend_hits_within, seconds): the decision is
--    taken here, so a per-host setting could not hold across hosts.
--    Lifting it (send_suspended_at = NULL) forgets the account's hits,
--    so the account gets N fresh ones.  Hits are one row each in
--    mailroster.send_hits, kept for T.
--    Lock order: send_admit holds the mailbox row when it suspends; the
--    UPDATE then takes the directory lock (migration 0001).  A directory
--    writer waiting for that same row while holding the directory lock is
--    a deadlock PostgreSQL detects and ends by failing one of the two; the
--    lock wait of send_admit is bounded by its p_wait_ms as before.
--    A message refused at RCPT from mailrosterd's memory ("known full")
--    never reaches send_admit and is not a hit; mailrosterd asks the
--    database again at the latest POL_FULL_TRUST (60 s) later, so a sender
--    that keeps trying scores about one hit per minute and host.
-- 2. LIMIT WINDOWS.  mailroster.send_limits_from(mailbox, rank, unlimited) is
--    send_limits_of without the scopes more specific than rank (2: what
--    the mailbox inherits from its domain, or the global rows), and
--    send_limits_of calls it.  mailroster.send_limits_problem(mailbox)
--    says why the mailbox's own windows admit more than the ones it would
--    inherit (NULL when they do not): a domain admin may only tighten.
--    mailroster.send_usage(login) lists the effective windows with what
--    each holds now.
-- 3. PRUNING.  send_counters rows of a deleted mailbox are deleted with
--    it; when a mailbox's address changes, its rows follow it (a rename
--    must not reset a limit), and rows under the old address go.  Rows
--    left by mailboxes removed before this migration are deleted now.

\set ON_ERROR_STOP 1

BEGIN;

------------------------------------------------------------------------------
-- 1. Suspension
------------------------------------------------------------------------------

ALTER TABLE mailroster.settings
    ADD COLUMN suspend_after_hits int NOT NULL DEFAULT 0
        CONSTRAINT settings_suspend_after_hits_check CHECK (suspend_after_hits BETWEEN 0 AND 1000000),
    ADD COLUMN suspend_hits_within int NOT NULL DEFAULT 3600
        CONSTRAINT settings_suspend_hits_within_check CHECK (suspend_hits_within BETWEEN 1 AND 31622400);
COMMENT ON COLUMN mailroster.settings.suspend_after_hits IS
    'Suspend an account''s sending after this many rate-limit refusals within suspend_hits_within seconds; 0 = never (see migration 0006)';
COMMENT ON COLUMN mailroster.settings.suspend_hits_within IS
    'Seconds within which suspend_after_hits refusals suspend an account';

ALTER TABLE mailroster.mailboxes
    ADD COLUMN send_suspended_at timestamptz,
    ADD COLUMN send_suspended_reason text
        CONSTRAINT mailboxes_send_suspended_reason_check
        CHECK (octet_length(send_suspended_reason) BETWEEN 1 AND 500
               AND send_suspended_reason !~ '[\x01-\x1f\x7f]'),
    ADD CONSTRAINT mailboxes_send_suspended_check
        CHECK ((send_suspended_at IS NULL) = (send_suspended_reason IS NULL));
COMMENT ON COLUMN mailroster.mailboxes.send_suspended_at IS
    'Set: sending suspended since then (mail held by Postfix), with send_suspended_reason; NULL: not suspended. Distinct from may_send = false, an admin''s refusal.';

CREATE TABLE mailroster.send_hits (
    mailbox_id bigint NOT NULL REFERENCES mailroster.mailboxes ON DELETE CASCADE,
    at         timestamptz NOT NULL
);
CREATE INDEX send_hits_mailbox_id_at_idx ON mailroster.send_hits (mailbox_id, at);
COMMENT ON TABLE mailroster.send_hits IS
    'One row per rate-limit refusal of an account, kept for settings.suspend_hits_within; written only by mailroster.send_admit() (migration 0006).';

-- One refusal of v_mbx at p_now: record it, and suspend the account when it
-- makes settings.suspend_after_hits within suspend_hits_within.  True when
-- this call suspended it.  Runs inside send_admit, under the mailbox lock.
CREATE FUNCTION mailroster.send_hit(p_mailbox_id bigint, p_login text, p_now timestamptz, p_what text,
                                    p_queue_id text, OUT suspended boolean, OUT reason text)
    LANGUAGE plpgsql VOLATILE
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    v_n int;
    v_within int;
    v_hits bigint;
BEGIN
    suspended := false;
    SELECT s.suspend_after_hits, s.suspend_hits_within INTO v_n, v_within FROM mailroster.settings s;
    IF coalesce(v_n, 0) = 0 THEN
        RETURN;
    END IF;
    DELETE FROM mailroster.send_hits h
     WHERE h.mailbox_id = p_mailbox_id AND h.at <= p_now - make_interval(secs => v_within);
    INSERT INTO mailroster.send_hits (mailbox_id, at) VALUES (p_mailbox_id, p_now);
    SELECT count(*) INTO v_hits FROM mailroster.send_hits h WHERE h.mailbox_id = p_mailbox_id;
    IF v_hits < v_n THEN
        RETURN;
    END IF;
    reason := format('%s sending-limit refusals within %s s (the last: %s)', v_hits, v_within, p_what);
    UPDATE mailroster.mailboxes SET send_suspended_at = p_now, send_suspended_reason = reason
     WHERE id = p_mailbox_id;
    INSERT INTO mailroster.audit_log (actor, action, object, detail)
    VALUES ('mailroster.send_admit', 'user suspend', p_login,
            jsonb_build_object('automatic', true, 'reason', reason, 'hits', v_hits,
                               'within_seconds', v_within, 'queue_id', nullif(p_queue_id, '')));
    suspended := true;
END
$fn$;

-- Lifting a suspension (by anyone) forgets the hits that led to it.
CREATE FUNCTION mailroster.tg_unsuspend_forget_hits() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = mailroster, pg_temp
AS $fn$
BEGIN
    DELETE FROM mailroster.send_hits h WHERE h.mailbox_id = NEW.id;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER mailboxes_85_unsuspend AFTER UPDATE OF send_suspended_at ON mailroster.mailboxes
    FOR EACH ROW WHEN (OLD.send_suspended_at IS NOT NULL AND NEW.send_suspended_at IS NULL)
    EXECUTE FUNCTION mailroster.tg_unsuspend_forget_hits();

-- send_admit as in migration 0005, plus: a suspended account's messages
-- are answered 'suspended' (reason: why) and not counted; a refusal
-- ('defer', 'toobig') is a hit (send_hit), and the hit that suspends the
-- account turns the answer into 'suspended' with suspended_now = true.
DROP FUNCTION mailroster.send_admit(text, int, text, int);
CREATE FUNCTION mailroster.send_admit(p_login text, p_recipients int, p_queue_id text DEFAULT NULL,
                                      p_wait_ms int DEFAULT NULL,
                                      OUT verdict text, OUT limit_kind text, OUT limit_value int,
                                      OUT window_seconds int, OUT used bigint, OUT free_in float8,
                                      OUT full_in float8, OUT scope text,
                                      OUT reason text, OUT suspended_now boolean)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    v_at int := length(p_login) - strpos(reverse(p_login), '@') + 1;
    v_mbx bigint;
    v_susp text;
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
    v_hit record;
    l record;
BEGIN
    suspended_now := false;
    -- the caller's remaining time: a lock wait longer than that ends with
    -- SQLSTATE 55P03 and changes nothing (the caller has given up by then)
    IF p_wait_ms IS NOT NULL THEN
        PERFORM set_config('lock_timeout', greatest(p_wait_ms, 1)::text, true);
    END IF;
    IF p_login IS NULL OR strpos(p_login, '@') < 2 THEN
        verdict := 'unknown';
        RETURN;
    END IF;
    SELECT mb.id, mb.send_suspended_reason INTO v_mbx, v_susp
      FROM mailroster.mailboxes mb JOIN mailroster.domains d ON d.id = mb.domain_id
     WHERE d.name = substr(p_login, v_at + 1) AND mb.local_part = substr(p_login, 1, v_at - 1)
       FOR NO KEY UPDATE OF mb;
    IF NOT FOUND THEN
        verdict := 'unknown';
        RETURN;
    END IF;
    IF v_susp IS NOT NULL THEN
        verdict := 'suspended';
        reason := v_susp;
        RETURN;
    END IF;
    -- after the lock (migration 0005, step 2)
    v_now := greatest(clock_timestamp(),
                      (SELECT max(c.window_start) + interval '1 microsecond'
                         FROM mailroster.send_counters c WHERE c.username = p_login));

    FOR l IN SELECT * FROM mailroster.send_limits_of(v_mbx) LOOP
        v_nlim := v_nlim + 1;
        v_max := greatest(v_max, l.window_seconds);
        IF l.recipients IS NOT NULL AND v_n > l.recipients THEN
            verdict := 'toobig'; limit_kind := 'recipients'; limit_value := l.recipients;
            window_seconds := l.window_seconds; used := v_n; scope := l.scope;
            v_hit := mailroster.send_hit(v_mbx, p_login, v_now,
                                         format('%s recipients in one message, at most %s per %s s',
                                                v_n, l.recipients, l.window_seconds), p_queue_id);
            IF v_hit.suspended THEN
                verdict := 'suspended'; reason := v_hit.reason; suspended_now := true;
            END IF;
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
        v_hit := mailroster.send_hit(v_mbx, p_login, v_now,
                                     format('%s %s per %s s', limit_value, limit_kind, window_seconds), p_queue_id);
        IF v_hit.suspended THEN
            verdict := 'suspended'; reason := v_hit.reason; suspended_now := true;
        END IF;
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

------------------------------------------------------------------------------
-- 2. Limit windows for the admin socket
------------------------------------------------------------------------------

-- send_limits_of (migration 0005) from p_rank on: 1 = everything (the
-- account's windows), 2 = what it would have without windows of its own;
-- p_unlimited: also the rows that state "unlimited" (both NULL), so that
-- a listing shows which scope made an account unlimited.
CREATE FUNCTION mailroster.send_limits_from(p_mailbox_id bigint, p_rank int, p_unlimited boolean)
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
    ), kept AS (
        SELECT * FROM cand WHERE cand.rank >= p_rank
    )
    SELECT c.sc, c.w, c.ms, c.rs
      FROM kept c
     WHERE c.rank = (SELECT min(c2.rank) FROM kept c2)
       AND (p_unlimited OR c.ms IS NOT NULL OR c.rs IS NOT NULL)
     ORDER BY c.w;
END
$fn$;

CREATE OR REPLACE FUNCTION mailroster.send_limits_of(p_mailbox_id bigint)
    RETURNS TABLE (scope text, window_seconds int, messages int, recipients int)
    LANGUAGE plpgsql STABLE
    SET search_path = mailroster, pg_temp
AS $fn$
BEGIN
    RETURN QUERY SELECT * FROM mailroster.send_limits_from(p_mailbox_id, 1, false);
END
$fn$;

-- Why the mailbox's windows admit more than the ones it would inherit
-- (NULL when they do not).  An inherited window (W, L) still holds when
-- the account has a window (w, l) with ceil(W / w) * l <= L: any W
-- seconds lie inside ceil(W / w) consecutive windows of w seconds, each
-- holding at most l (for w >= W: one window, l <= L).  Messages and
-- recipients are looked at separately.  Sufficient, not necessary: a
-- list it refuses may still be stricter; the caller then states it
-- window by window.
CREATE FUNCTION mailroster.send_limits_problem(p_mailbox_id bigint) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    b record;
BEGIN
    FOR b IN SELECT * FROM mailroster.send_limits_from(p_mailbox_id, 2, false) LOOP
        IF b.messages IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM mailroster.send_limits_from(p_mailbox_id, 1, false) a
             WHERE ceil(b.window_seconds::numeric / a.window_seconds) * a.messages <= b.messages) THEN
            RETURN format('the %s limit of %s messages per %s s would no longer hold',
                          b.scope, b.messages, b.window_seconds);
        END IF;
        IF b.recipients IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM mailroster.send_limits_from(p_mailbox_id, 1, false) a
             WHERE ceil(b.window_seconds::numeric / a.window_seconds) * a.recipients <= b.recipients) THEN
            RETURN format('the %s limit of %s recipients per %s s would no longer hold',
                          b.scope, b.recipients, b.window_seconds);
        END IF;
    END LOOP;
    RETURN NULL;
END
$fn$;

-- The account's effective windows and what each holds now; a row with
-- messages and recipients both NULL: that scope states "unlimited".
CREATE FUNCTION mailroster.send_usage(p_login text)
    RETURNS TABLE (scope text, window_seconds int, messages int, recipients int,
                   sent_messages bigint, sent_recipients bigint, frees_at timestamptz)
    LANGUAGE sql STABLE
    SET search_path = mailroster, pg_temp
AS $fn$
    SELECT l.scope, l.window_seconds, l.messages, l.recipients,
           (SELECT count(*) FROM mailroster.send_counters c
             WHERE c.username = p_login AND c.window_start > now() - make_interval(secs => l.window_seconds)),
           (SELECT coalesce(sum(c.recipients), 0) FROM mailroster.send_counters c
             WHERE c.username = p_login AND c.window_start > now() - make_interval(secs => l.window_seconds)),
           (SELECT min(c.window_start) + make_interval(secs => l.window_seconds) FROM mailroster.send_counters c
             WHERE c.username = p_login AND c.window_start > now() - make_interval(secs => l.window_seconds))
      FROM mailroster.mailboxes mb
      JOIN mailroster.domains d ON d.id = mb.domain_id
     CROSS JOIN LATERAL mailroster.send_limits_from(mb.id, 1, true) l
     WHERE d.name = split_part(p_login, '@', 2) AND mb.local_part = split_part(p_login, '@', 1)
     ORDER BY l.window_seconds;
$fn$;

------------------------------------------------------------------------------
-- 3. Counters of removed and renamed accounts
------------------------------------------------------------------------------

-- AFTER DELETE OR UPDATE OF local_part, domain_id ON mailboxes.  SECURITY
-- DEFINER: writers need no rights on send_counters.  (Domains cannot be
-- renamed, and a domain's mailboxes are deleted before it.)
CREATE FUNCTION mailroster.tg_prune_send_counters() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    v_old text := OLD.local_part || '@' || (SELECT d.name FROM mailroster.domains d WHERE d.id = OLD.domain_id);
    v_new text;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        v_new := NEW.local_part || '@' || (SELECT d.name FROM mailroster.domains d WHERE d.id = NEW.domain_id);
        IF v_new IS NOT DISTINCT FROM v_old THEN
            RETURN NULL;
        END IF;
        -- rows under the new address belong to no account: they go
        DELETE FROM mailroster.send_counters c WHERE c.username = v_new;
        UPDATE mailroster.send_counters c SET username = v_new WHERE c.username = v_old;
        RETURN NULL;
    END IF;
    DELETE FROM mailroster.send_counters c WHERE c.username = v_old;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER mailboxes_86_prune_counters AFTER DELETE OR UPDATE OF local_part, domain_id ON mailroster.mailboxes
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_prune_send_counters();

DO $prune$
DECLARE
    n bigint;
BEGIN
    DELETE FROM mailroster.send_counters c
     WHERE NOT EXISTS (SELECT 1 FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id
                        WHERE m.local_part || '@' || d.name = c.username);
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        RAISE NOTICE 'migration 0006: % send_counters rows of removed mailboxes deleted', n;
    END IF;
END
$prune$;

REVOKE ALL ON FUNCTION
    mailroster.send_hit(bigint, text, timestamptz, text, text),
    mailroster.send_admit(text, int, text, int),
    mailroster.send_limits_from(bigint, int, boolean),
    mailroster.send_limits_problem(bigint),
    mailroster.send_usage(text),
    mailroster.tg_unsuspend_forget_hits(),
    mailroster.tg_prune_send_counters()
FROM PUBLIC;
REVOKE ALL ON mailroster.send_hits FROM PUBLIC;

INSERT INTO mailroster.schema_version (version, description)
VALUES (6, 'sending suspended after repeated rate-limit refusals; limit windows for the admin socket; counters pruned');

COMMIT;
