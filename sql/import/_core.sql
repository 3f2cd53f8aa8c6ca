-- _core.sql - what every SQL importer shares: the staging tables each one
-- fills from its old schema, and the one piece of code that checks them,
-- writes the report and emits mailroster's JSON lines (migration 0002).
-- Included with \ir before the importer's transaction; not an importer.
--
-- An importer:
--   \ir _core.sql                            (tables and functions; pg_temp)
--   BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
--   SET LOCAL mailroster_import.format = 'NAME';   (and the options below)
--   INSERT INTO pg_temp.mr_domain / mr_mailbox / mr_alias / mr_sender /
--          mr_master / mr_transport / mr_share / mr_sieve
--          ... SELECT ... FROM <its old tables>;
--   (an alias row whose source is also a mailbox becomes that mailbox's
--   forwarding, with keep_copy when the row names the mailbox too;
--   mr_mailbox.display_name and .metadata and mr_alias.may_send are kept)
--   INSERT INTO pg_temp.mr_report ...        (what only it knows: fields
--                                             mailroster cannot hold, ...)
--   \ir _emit.sql                            (checks, report, lines, COMMIT)
--
-- Everything lives in pg_temp: the old database needs to grant nothing but
-- TEMP (PUBLIC has it by default) and SELECT on the tables read.  Nothing
-- is written outside this session.
--
-- Options (SET LOCAL mailroster_import.X, from psql -v X=...):
--   format               the importer's name, first word of every report line
--   default_pass_scheme  the old Dovecot default_pass_scheme: the scheme of a
--                        hash without {SCHEME} whose form tells none, and
--                        what the old setup verified bare hashes with
--   mail_base            the directory mailroster's mail_base will be; an
--                        absolute maildir path (mr_mailbox.maildir_path)
--                        under it is kept, relative to it
--
-- THE REPORT (stderr, one line per finding, sorted by kind and source row):
--
--   FORMAT: SOURCE-ROW: VERDICT: WHAT AND WHY
--
-- SOURCE-ROW names the old row as the importer staged it (table and key).
-- VERDICT is one of
--   not imported  the row is not imported (WHY says what to do about it)
--   changed       the row is imported, but a value differs from the old one
--                 (an address case-folded or converted to its A-label, a
--                 {SCHEME} added to a bare hash, a destination dropped)
--   not kept      the row is imported, but one of its fields is not
--                 (mailroster has no place for it)
--   note          imported as it was, but it behaves differently now (a
--                 login Dovecot refused before works, ...)
-- and a summary line comes last:
--   FORMAT: imported N domains, N mailboxes, N aliases, N senders, N master
--   users, N transports, N shares, N sieve scripts; report: N not
--   imported, N changed, N not kept, N notes
-- Exactly the rows and fields the report does not name are carried over
-- unchanged.

SET work_mem = '64MB';

-- the hash rules: mr_hash_refused()
\ir _hash.sql

CREATE TEMP TABLE mr_domain (
    seq          bigserial,
    ref          text NOT NULL,          -- the source row, as the report names it
    ord          bigint,                 -- source order, for ties
    name         text,                   -- as stored
    enabled      boolean NOT NULL DEFAULT true,
    quota_bytes  numeric NOT NULL DEFAULT 0,
    quota_messages numeric NOT NULL DEFAULT 0,
    implied      boolean NOT NULL DEFAULT false,   -- no row of its own: the domain of addresses
    -- filled by mr_check()
    canon        text,
    problem      text,                   -- may be set by the importer: do not import, why
    rn           int
);
CREATE TEMP TABLE mr_mailbox (
    seq          bigserial,
    ref          text NOT NULL,
    ord          bigint,
    address      text,                   -- as stored
    password     text,                   -- as stored
    enabled      boolean NOT NULL DEFAULT true,
    may_send     boolean NOT NULL DEFAULT true,
    may_receive  boolean NOT NULL DEFAULT true,
    services     text[] NOT NULL DEFAULT '{imap,pop3,submission,lmtp,sieve}',
    quota_bytes  numeric,                -- NULL: the domain's
    quota_messages numeric,
    home         text,
    mail         text,                   -- Dovecot mail location, as the old userdb gave it
    uid          bigint,
    gid          bigint,
    maildir      text,                   -- relative to the mail root, or
    maildir_path text,                   -- the absolute maildir on disk
    display_name text,                   -- the old setup's name for the account
    metadata     jsonb,                  -- what else it kept per account (an object)
    problem      text,                   -- set by the importer: do not import, why
    -- filled by mr_check()
    raw_lp       text,
    raw_dom      text,
    lp           text,
    dom          text,
    addr         text,
    rn           int,
    hash         text,                   -- with {SCHEME}
    hash_note    text,                   -- the report's words on the hash
    hash_changed boolean NOT NULL DEFAULT false,
    maildir_out  text
);
CREATE TEMP TABLE mr_alias (
    seq          bigserial,
    ref          text NOT NULL,
    ord          bigint,
    source       text,                   -- as stored; "@domain" = catch-all
    destination  text,                   -- one row per destination; NULL = none
    enabled      boolean NOT NULL DEFAULT true,
    may_send     boolean NOT NULL DEFAULT true,  -- its destinations may send as it
    problem      text,                   -- set by the importer: do not import, why
    -- filled by mr_check()
    src          text,
    lp           text,
    dom          text,
    dest         text,
    dproblem     text,                   -- may be set by the importer: drop this destination, why
    sproblem     text,
    fwd          boolean NOT NULL DEFAULT false  -- the source is a mailbox: its forwarding
);
CREATE TEMP TABLE mr_sender (
    seq          bigserial,
    ref          text NOT NULL,
    ord          bigint,
    address      text,
    login        text,
    problem      text
);
CREATE TEMP TABLE mr_master (
    seq          bigserial,
    ref          text NOT NULL,
    ord          bigint,
    name         text,
    password     text,
    enabled      boolean NOT NULL DEFAULT true,
    domains      text[],
    problem      text,
    hash         text,
    hash_note    text
);
CREATE TEMP TABLE mr_transport (
    seq          bigserial,
    ref          text NOT NULL,
    ord          bigint,
    pattern      text,                   -- address, domain or .domain, as stored
    transport    text,                   -- transport(5)'s right-hand side
    enabled      boolean NOT NULL DEFAULT true,
    problem      text,
    canon        text
);
CREATE TEMP TABLE mr_share (
    seq          bigserial,
    ref          text NOT NULL,
    ord          bigint,
    mailbox      text,                   -- the mailbox that shares, as stored
    shared_with  text,                   -- the mailbox it shares with, as stored
    problem      text
);
CREATE TEMP TABLE mr_sieve (
    seq          bigserial,
    ref          text NOT NULL,
    ord          bigint,
    address      text,                   -- the mailbox, as stored
    script       text,
    problem      text
);
-- report lines; grp orders them: 1 domains, 2 mailboxes, 3 aliases,
-- 4 senders, 5 master users, 6 the rest (transports)
CREATE TEMP TABLE mr_report (
    seq          bigserial,
    grp          int NOT NULL DEFAULT 6,
    ref          text NOT NULL,
    ord          bigint,
    verdict      text NOT NULL CHECK (verdict IN ('not imported', 'changed', 'not kept', 'note')),
    msg          text NOT NULL
);
CREATE TEMP TABLE mr_out (
    grp          int NOT NULL,
    k            text NOT NULL,
    line         text NOT NULL
);

-- every domain name met in addresses, converted once
CREATE TEMP TABLE mr_dommap (
    raw          text PRIMARY KEY,
    v            text[]
);

-- what mr_run() looks rows up by (a big import must not scan per row)
CREATE INDEX ON mr_domain (canon);
CREATE INDEX ON mr_mailbox (addr);
CREATE INDEX ON mr_mailbox (seq);
CREATE INDEX ON mr_alias (seq);

-- ASCII letters to lower case, nothing else (what mailroster folds)
CREATE FUNCTION pg_temp.mr_lower_ascii(s text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT translate(s, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
$$;

-- RFC 3492 Punycode of one label (without "xn--")
CREATE FUNCTION pg_temp.mr_punycode(label text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    cps   int[] := ARRAY(SELECT ascii(x.c) FROM regexp_split_to_table(label, '') WITH ORDINALITY AS x(c, o) ORDER BY x.o);
    res   text := '';
    n     int := 128;
    delta bigint := 0;
    bias  int := 72;
    b     int;
    h     int;
    m     int;
    q     bigint;
    k     int;
    t     int;
    c     int;
    d     bigint;
    digit int;
BEGIN
    FOREACH c IN ARRAY cps LOOP
        IF c < 128 THEN res := res || chr(c); END IF;
    END LOOP;
    b := length(res);
    h := b;
    IF b > 0 THEN res := res || '-'; END IF;
    WHILE h < cardinality(cps) LOOP
        SELECT min(x) INTO m FROM unnest(cps) AS x WHERE x >= n;
        delta := delta + (m - n)::bigint * (h + 1);
        n := m;
        FOREACH c IN ARRAY cps LOOP
            IF c < n THEN delta := delta + 1; END IF;
            IF c = n THEN
                q := delta;
                k := 36;
                LOOP
                    t := CASE WHEN k <= bias THEN 1 WHEN k >= bias + 26 THEN 26 ELSE k - bias END;
                    EXIT WHEN q < t;
                    digit := t + (q - t) % (36 - t);
                    res := res || CASE WHEN digit < 26 THEN chr(97 + digit) ELSE chr(22 + digit) END;
                    q := (q - t) / (36 - t);
                    k := k + 36;
                END LOOP;
                res := res || CASE WHEN q < 26 THEN chr(97 + q::int) ELSE chr(22 + q::int) END;
                -- adapt
                d := CASE WHEN h = b THEN delta / 700 ELSE delta / 2 END;
                d := d + d / (h + 1);
                k := 0;
                WHILE d > 455 LOOP d := d / 35; k := k + 36; END LOOP;
                bias := k + (36 * d) / (d + 38);
                delta := 0;
                h := h + 1;
            END IF;
        END LOOP;
        delta := delta + 1;
        n := n + 1;
    END LOOP;
    RETURN res;
END
$$;

-- a domain as mailroster stores it: {canonical name, problem}.  ASCII
-- lowercased; a label with other characters (a U-label) becomes its A-label
-- when it is already in NFC and lower case (what IDNA2008 would store).
CREATE FUNCTION pg_temp.mr_canon_domain(d text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    labels text[];
    l      text;
    out    text[] := '{}';
BEGIN
    IF d IS NULL OR d = '' THEN
        RETURN ARRAY[NULL, 'has no domain'];
    END IF;
    labels := string_to_array(pg_temp.mr_lower_ascii(d), '.');
    FOREACH l IN ARRAY labels LOOP
        IF l ~ '[^\x01-\x7f]' THEN
            IF normalize(l, NFC) <> l OR lower(l) <> l OR l ~ '[\x01-\x2c\x2e-\x2f\x3a-\x60\x7b-\x7f\u00a0-\u00bf\u2000-\u206f\u3000-\u303f]' THEN
                RETURN ARRAY[NULL, 'is a U-label that is not in lower case NFC or has punctuation: store its A-label (xn--...) in the source'];
            END IF;
            l := 'xn--' || pg_temp.mr_punycode(l);
        END IF;
        out := out || l;
    END LOOP;
    l := array_to_string(out, '.');
    IF NOT (octet_length(l) BETWEEN 1 AND 253
            AND l ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$') THEN
        RETURN ARRAY[NULL, 'is not a valid domain name'];
    END IF;
    RETURN ARRAY[l, NULL];
END
$$;

-- mr_canon_domain() of a name in mr_dommap
CREATE FUNCTION pg_temp.mr_dom(d text) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT m.v FROM pg_temp.mr_dommap m WHERE m.raw = d
$$;

-- why a local part cannot be a mailbox's or an alias's, or NULL
CREATE FUNCTION pg_temp.mr_lp_problem(lp text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
             WHEN lp IS NULL OR lp = '' THEN 'has an empty local part'
             WHEN NOT (octet_length(lp) <= 64
                       AND lp !~ '^\.|\.$' AND strpos(lp, '..') = 0 AND strpos(lp, '+') = 0
                       AND lp !~ '[\x01-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]'
                       AND lp !~ '[]["@,\\()<>;:]') THEN
                  'has a local part mailroster does not accept (1 to 64 octets; no "+", spaces, control characters, @ , " \ ( ) < > [ ] ; :; no leading, trailing or double dot)'
           END
$$;

-- why a destination cannot be one, or NULL ("@domain" is allowed: a
-- catch-all's rewrite to another domain)
CREATE FUNCTION pg_temp.mr_dest_problem(lp text, dom text, dom_problem text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
             WHEN dom_problem IS NOT NULL THEN 'its domain ' || dom_problem
             WHEN lp <> '' AND NOT (octet_length(lp) <= 64
                       AND lp !~ '^\.|\.$' AND strpos(lp, '..') = 0
                       AND lp !~ '[\x01-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]'
                       AND lp !~ '[]["@,\\()<>;:]') THEN 'has a local part mailroster does not accept'
             WHEN octet_length(lp || '@' || dom) > 254 THEN 'is longer than 254 octets'
           END
$$;

-- a stored password as mailroster will hold it, and what the report says:
-- {hash, note, changed}.  old_default: the old Dovecot default_pass_scheme
-- (upper case, '' = not known).
CREATE FUNCTION pg_temp.mr_canon_hash(pw text, old_default text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    form    text;
    h       text;
    why     text;
    crypts  CONSTANT text[] := '{CRYPT,MD5-CRYPT,BLF-CRYPT,SHA256-CRYPT,SHA512-CRYPT,DES-CRYPT}';
    was     text;
BEGIN
    IF pw IS NULL THEN
        RETURN ARRAY[NULL, NULL, 'f'];
    END IF;
    IF pw = '' THEN
        RETURN ARRAY[NULL, 'the password is empty: imported without one (it receives mail; it cannot log in, and could not before)', 't'];
    END IF;
    IF pw ~ '[\x01-\x20\x7f]' THEN
        RETURN ARRAY[NULL, 'the password hash has spaces or control characters: imported without a password (it receives mail, cannot log in)', 't'];
    END IF;
    IF pw ~ '^\{[A-Za-z0-9.-]+\}.' THEN
        h := '{' || upper(substring(pw from '^\{([A-Za-z0-9.-]+)\}')) || '}' || substr(pw, strpos(pw, '}') + 1);
        why := pg_temp.mr_hash_refused(h);
        IF why IS NOT NULL THEN
            RETURN ARRAY[NULL, format('its %s password hash is a scheme mailroster refuses (%s): imported without a password (it receives mail; it cannot log in until it gets a new one: mailroster user passwd)',
                                      substring(h from '^\{[^}]*\}'), why), 't'];
        END IF;
        RETURN ARRAY[h, NULL, 'f'];
    END IF;
    form := CASE
              WHEN pw ~ '^\$2[aby]\$' THEN 'BLF-CRYPT'
              WHEN pw ~ '^\$5\$' THEN 'SHA256-CRYPT'
              WHEN pw ~ '^\$6\$' THEN 'SHA512-CRYPT'
              WHEN pw ~ '^\$g?y\$' THEN 'CRYPT'
              WHEN pw ~ '^\$7\$' THEN 'CRYPT'
              WHEN pw ~ '^\$argon2id\$' THEN 'ARGON2ID'
              WHEN pw ~ '^\$argon2i\$' THEN 'ARGON2I'
              WHEN pw ~ '^\$1\$' THEN 'MD5-CRYPT'
            END;
    IF form IS NULL THEN
        -- the form tells nothing: the old default decided, if it fits the form
        IF old_default = '' THEN
            RETURN ARRAY[NULL, format('its password hash has no {SCHEME} prefix and its form tells none (%s characters): imported without a password (it receives mail, cannot log in); pass -v default_pass_scheme=SCHEME (the old Dovecot default_pass_scheme) to keep it', length(pw)), 't'];
        END IF;
        IF old_default IN ('ARGON2ID', 'ARGON2I', 'BLF-CRYPT', 'SHA256-CRYPT', 'SHA512-CRYPT', 'MD5-CRYPT') THEN
            RETURN ARRAY[NULL, format('its password hash has no {SCHEME} prefix and is not of the form of the old default_pass_scheme %s (%s characters), so Dovecot could not verify it: imported without a password (it receives mail; it could not log in before either)', old_default, length(pw)), 't'];
        END IF;
        h := '{' || old_default || '}' || pw;
        why := pg_temp.mr_hash_refused(h);
        IF why IS NOT NULL THEN
            RETURN ARRAY[NULL, format('its password hash has no {SCHEME} prefix; as the old default_pass_scheme %s it is a scheme mailroster refuses (%s): imported without a password (it receives mail; it cannot log in until it gets a new one: mailroster user passwd)', old_default, why), 't'];
        END IF;
        RETURN ARRAY[h, format('its password hash has no {SCHEME} prefix and its form tells none: imported as {%s}, the old default_pass_scheme', old_default), 't'];
    END IF;
    h := '{' || form || '}' || pw;
    why := pg_temp.mr_hash_refused(h);
    was := CASE
             WHEN old_default = '' THEN 'the old default_pass_scheme was not given, so whether Dovecot verified it before is not known'
             WHEN old_default = form
                  OR (old_default = ANY (crypts) AND form = ANY (crypts || '{CRYPT}'::text[])) THEN
                  format('Dovecot verified it the same way as the old default_pass_scheme %s', old_default)
             ELSE format('the old default_pass_scheme %s could not verify it, so this login failed until now', old_default)
           END;
    IF why IS NOT NULL THEN
        RETURN ARRAY[NULL, format('its password hash has no {SCHEME} prefix; its form (%s) is {%s}, a scheme mailroster refuses (%s): imported without a password (it receives mail; it cannot log in until it gets a new one: mailroster user passwd); %s',
                                  substring(pw from '^\$[^$]*\$'), form, why, was), 't'];
    END IF;
    RETURN ARRAY[h, format('its password hash has no {SCHEME} prefix: imported as {%s}, told by its form %s; %s',
                           form, substring(pw from '^\$[^$]*\$'), was), 't'];
END
$$;

-- what the old setup did with a login name of these characters: Dovecot's
-- default auth_username_chars (letters, digits, . - _ @) refused others
CREATE FUNCTION pg_temp.mr_login_note(lp text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN lp ~ '[^a-zA-Z0-9._@-]' THEN
                format('its local part has %s, which Dovecot''s default auth_username_chars refused: it could not log in before; it can now (mailroster''s auth driver takes every valid address)%s',
                       CASE WHEN lp ~ '[^\x01-\x7f]' AND lp ~ '''' THEN 'an apostrophe and non-ASCII characters'
                            WHEN lp ~ '[^\x01-\x7f]' THEN 'non-ASCII characters'
                            WHEN lp ~ '''' THEN 'an apostrophe'
                            ELSE format('the character(s) %s', (SELECT string_agg(DISTINCT x, ' ') FROM regexp_split_to_table(regexp_replace(lp, '[a-zA-Z0-9._@-]', '', 'g'), '') AS x)) END,
                       CASE WHEN lp ~ '[^\x01-\x7f]' THEN
                            '; and Postfix''s pgsql client talks LATIN1 before Postfix 3.8 (Debian 12 has 3.7), so it never found this address: its mail was rejected until now, mailroster accepts it'
                            ELSE '' END)
           END
$$;

-- mr_run(): check the staging tables, fill mr_report and mr_out.
CREATE FUNCTION pg_temp.mr_run() RETURNS void
LANGUAGE plpgsql AS $run$
DECLARE
    fmt      text := current_setting('mailroster_import.format');
    defs     text := upper(coalesce(current_setting('mailroster_import.default_pass_scheme', true), ''));
    base     text := rtrim(coalesce(nullif(current_setting('mailroster_import.mail_base', true), ''), '/var/vmail'), '/');
BEGIN
    IF defs !~ '^[A-Z0-9.-]*$' THEN
        RAISE EXCEPTION '%: -v default_pass_scheme must be a scheme name such as SHA512-CRYPT', fmt;
    END IF;
    IF base || '/' !~ '^/' OR base ~ '(^|/)\.\.?(/|$)' OR strpos(base, '//') > 0 THEN
        RAISE EXCEPTION '%: -v mail_base must be a clean absolute path', fmt;
    END IF;

    ANALYZE pg_temp.mr_domain;
    ANALYZE pg_temp.mr_mailbox;
    ANALYZE pg_temp.mr_alias;
    ------------------------------------------------------------------ domains
    UPDATE pg_temp.mr_domain d SET canon = c.v[1], problem = coalesce(d.problem, c.v[2])
      FROM (SELECT x.seq, pg_temp.mr_canon_domain(x.name) AS v FROM pg_temp.mr_domain x) c
     WHERE c.seq = d.seq;
    UPDATE pg_temp.mr_domain d SET rn = r.rn
      FROM (SELECT x.seq, row_number() OVER (PARTITION BY x.canon ORDER BY x.implied, (x.name = x.canon) DESC, x.ord, x.seq) AS rn
              FROM pg_temp.mr_domain x WHERE x.problem IS NULL) r
     WHERE r.seq = d.seq;
    INSERT INTO pg_temp.mr_report (grp, ref, ord, verdict, msg)
    SELECT 1, d.ref, d.ord, 'not imported',
           format('domain %s %s; nothing in it is imported', to_json(d.name), d.problem)
      FROM pg_temp.mr_domain d WHERE d.problem IS NOT NULL
    UNION ALL
    SELECT 1, d.ref, d.ord, 'changed',
           format('domain %s is imported as %s: %s', to_json(d.name), to_json(d.canon),
                  CASE WHEN d.name ~ '[^\x01-\x7f]' THEN
                       'a U-label becomes its A-label; Postfix never found either form (it looks up the A-label most senders use, and its pgsql client talks LATIN1 before Postfix 3.8, which Debian 12 has), so mail to this domain was rejected until now'
                       ELSE 'Postfix looked domains up in lower case and never found this one, so its mail was rejected until now' END)
      FROM pg_temp.mr_domain d WHERE d.problem IS NULL AND d.rn = 1 AND NOT d.implied AND d.name <> d.canon
    UNION ALL
    SELECT 1, d.ref, d.ord, 'not imported',
           format('domain %s is the same domain as %s; imported once', to_json(d.name), to_json(d.canon))
      FROM pg_temp.mr_domain d WHERE d.problem IS NULL AND d.rn > 1 AND NOT d.implied;

    ---------------------------------------------------------------- mailboxes
    UPDATE pg_temp.mr_mailbox m
       SET raw_lp = CASE WHEN strpos(m.address, '@') > 0 THEN left(m.address, length(m.address) - strpos(reverse(m.address), '@')) END,
           raw_dom = CASE WHEN strpos(m.address, '@') > 0 THEN right(m.address, strpos(reverse(m.address), '@') - 1) END;
    INSERT INTO pg_temp.mr_dommap (raw)
    SELECT DISTINCT x.d FROM (
        SELECT m.raw_dom AS d FROM pg_temp.mr_mailbox m
        UNION SELECT right(a.source, strpos(reverse(a.source), '@') - 1) FROM pg_temp.mr_alias a WHERE strpos(a.source, '@') > 0
        UNION SELECT right(btrim(a.destination), strpos(reverse(btrim(a.destination)), '@') - 1) FROM pg_temp.mr_alias a
         WHERE strpos(a.destination, '@') > 0) x
     WHERE x.d IS NOT NULL
    ON CONFLICT DO NOTHING;
    UPDATE pg_temp.mr_dommap SET v = pg_temp.mr_canon_domain(raw);
    ANALYZE pg_temp.mr_dommap;
    UPDATE pg_temp.mr_mailbox m
       SET lp = pg_temp.mr_lower_ascii(m.raw_lp),
           dom = (pg_temp.mr_dom(m.raw_dom))[1];
    UPDATE pg_temp.mr_mailbox m SET addr = m.lp || '@' || m.dom WHERE m.lp IS NOT NULL AND m.dom IS NOT NULL;
    UPDATE pg_temp.mr_mailbox m
       SET problem = CASE
             WHEN m.raw_lp IS NULL THEN format('%s is not an address', to_json(m.address))
             WHEN m.dom IS NULL THEN format('the domain of %s %s', to_json(m.address), (pg_temp.mr_dom(m.raw_dom))[2])
             WHEN NOT EXISTS (SELECT 1 FROM pg_temp.mr_domain d WHERE d.canon = m.dom AND d.problem IS NULL) THEN
                  CASE WHEN EXISTS (SELECT 1 FROM pg_temp.mr_domain d WHERE pg_temp.mr_lower_ascii(d.name) = pg_temp.mr_lower_ascii(m.raw_dom))
                       THEN format('%s is in a domain that is not imported (see the domains above)', to_json(m.address))
                       ELSE format('%s is in %s, which the old setup did not host (its mail was never accepted)', to_json(m.address), to_json(m.raw_dom)) END
             WHEN pg_temp.mr_lp_problem(m.lp) IS NOT NULL THEN format('%s %s', to_json(m.address), pg_temp.mr_lp_problem(m.lp))
             WHEN octet_length(m.addr) > 254 THEN format('%s is longer than 254 octets', to_json(m.address))
           END
     WHERE m.problem IS NULL;
    UPDATE pg_temp.mr_mailbox m SET rn = r.rn
      FROM (SELECT x.seq, row_number() OVER (PARTITION BY x.addr ORDER BY (x.address = x.addr) DESC, x.ord, x.seq) AS rn
              FROM pg_temp.mr_mailbox x WHERE x.problem IS NULL) r
     WHERE r.seq = m.seq;
    UPDATE pg_temp.mr_mailbox m
       SET problem = format('%s is the same address as %s (%s); only that one is imported', to_json(m.address),
                            to_json(k.address), k.ref)
      FROM pg_temp.mr_mailbox k
     WHERE m.rn > 1 AND k.addr = m.addr AND k.rn = 1;
    -- maildir: an absolute path on disk is kept, relative to mail_base
    UPDATE pg_temp.mr_mailbox m
       SET problem = CASE
             WHEN NOT (m.maildir_path ~ '^/' AND m.maildir_path !~ '(^|/)\.\.?(/|$)'
                       AND strpos(m.maildir_path, '//') = 0 AND m.maildir_path !~ '[\x01-\x1f\x7f]') THEN
                  format('its maildir %s is not a clean absolute path; mailroster cannot point at it. Fix the path in the source, or move the mail and give the new path', to_json(m.maildir_path))
             WHEN left(m.maildir_path, length(base) + 1) <> base || '/' OR rtrim(m.maildir_path, '/') = base THEN
                  format('its maildir %s is outside mail_base %s, and mailroster keeps the mail where it is or not at all. Either run the importer again with -v mail_base=DIR, a directory above every maildir (and set mailroster''s and mailrosterd''s mail_base to it), or import it and then, as a full admin: mailroster user set %s home=%s mail=maildir:%s path_override=yes',
                         to_json(m.maildir_path), base, m.addr, rtrim(m.maildir_path, '/'), m.maildir_path)
           END,
           maildir_out = rtrim(substr(m.maildir_path, length(base) + 2), '/') || '/'
     WHERE m.problem IS NULL AND m.maildir_path IS NOT NULL;
    UPDATE pg_temp.mr_mailbox m SET maildir_out = m.maildir
     WHERE m.problem IS NULL AND m.maildir_path IS NULL AND m.maildir IS NOT NULL;
    UPDATE pg_temp.mr_mailbox m
       SET hash = c.v[1], hash_note = c.v[2], hash_changed = c.v[3]::boolean
      FROM (SELECT x.seq, pg_temp.mr_canon_hash(x.password, defs) AS v FROM pg_temp.mr_mailbox x WHERE x.problem IS NULL) c
     WHERE c.seq = m.seq;

    INSERT INTO pg_temp.mr_report (grp, ref, ord, verdict, msg)
    SELECT 2, m.ref, m.ord, 'not imported', m.problem
      FROM pg_temp.mr_mailbox m WHERE m.problem IS NOT NULL
    UNION ALL
    SELECT 2, m.ref, m.ord, 'changed',
           format('address %s is imported as %s: %s', to_json(m.address), to_json(m.addr),
                  concat_ws('; ',
                      CASE WHEN m.raw_lp <> m.lp OR pg_temp.mr_lower_ascii(m.raw_dom) <> m.raw_dom THEN
                           'Postfix looked addresses up in lower case and never found this one, so its mail was rejected until now (a login had to use exactly this case)' END,
                      CASE WHEN m.raw_dom ~ '[^\x01-\x7f]' THEN
                           'its domain, a U-label, becomes its A-label (Postfix never found this domain: see the domain)' END))
      FROM pg_temp.mr_mailbox m WHERE m.problem IS NULL AND m.address <> m.addr
    UNION ALL
    SELECT 2, m.ref, m.ord, CASE WHEN m.hash IS NULL THEN 'changed' ELSE 'changed' END, m.hash_note
      FROM pg_temp.mr_mailbox m WHERE m.problem IS NULL AND m.hash_note IS NOT NULL
    UNION ALL
    SELECT 2, m.ref, m.ord, 'note', pg_temp.mr_login_note(m.lp)
      FROM pg_temp.mr_mailbox m WHERE m.problem IS NULL AND pg_temp.mr_login_note(m.lp) IS NOT NULL
    UNION ALL
    SELECT 2, m.ref, m.ord, 'changed',
           format('its maildir %s is not a relative path ending in "/": mailroster makes a new one; the old mail stays where it was', to_json(m.maildir_out))
      FROM pg_temp.mr_mailbox m
     WHERE m.problem IS NULL AND m.maildir_out IS NOT NULL
       AND NOT (m.maildir_out ~ '^[^/].*/$' AND m.maildir_out !~ '(^|/)\.{1,2}/'
                AND strpos(m.maildir_out, '//') = 0 AND m.maildir_out !~ '[\x01-\x1f\x7f]');
    UPDATE pg_temp.mr_mailbox m SET maildir_out = NULL
     WHERE m.problem IS NULL AND m.maildir_out IS NOT NULL
       AND NOT (m.maildir_out ~ '^[^/].*/$' AND m.maildir_out !~ '(^|/)\.{1,2}/'
                AND strpos(m.maildir_out, '//') = 0 AND m.maildir_out !~ '[\x01-\x1f\x7f]');

    ------------------------------------------------------------------ aliases
    UPDATE pg_temp.mr_alias a
       SET src = CASE WHEN strpos(a.source, '@') > 0 THEN left(a.source, length(a.source) - strpos(reverse(a.source), '@')) END;
    UPDATE pg_temp.mr_alias a
       SET lp = pg_temp.mr_lower_ascii(a.src),
           dom = (pg_temp.mr_dom(right(a.source, strpos(reverse(a.source), '@') - 1)))[1]
     WHERE a.src IS NOT NULL;
    UPDATE pg_temp.mr_alias a SET src = a.lp || '@' || a.dom WHERE a.dom IS NOT NULL;
    UPDATE pg_temp.mr_alias a
       SET sproblem = coalesce(a.problem, CASE
             WHEN a.lp IS NULL THEN 'its source is not an address'
             WHEN a.dom IS NULL THEN format('the domain of its source %s',
                                            (pg_temp.mr_dom(right(a.source, strpos(reverse(a.source), '@') - 1)))[2])
             WHEN NOT EXISTS (SELECT 1 FROM pg_temp.mr_domain d WHERE d.canon = a.dom AND d.problem IS NULL) THEN
                  CASE WHEN EXISTS (SELECT 1 FROM pg_temp.mr_domain d WHERE d.canon = a.dom OR pg_temp.mr_lower_ascii(d.name) = a.dom)
                       THEN 'its source is in a domain that is not imported (see the domains above)'
                       ELSE 'its source is in a domain the old setup did not host (its mail was never accepted)' END
             WHEN a.lp <> '' AND pg_temp.mr_lp_problem(a.lp) IS NOT NULL THEN 'its source ' || pg_temp.mr_lp_problem(a.lp)
             WHEN octet_length(a.src) > 254 THEN 'its source is longer than 254 octets'
           END);
    -- an alias on a mailbox's address took the mailbox's mail (virtual_
    -- alias_maps come first) while its owner kept login and sending: the
    -- mailbox's forwarding (and keep_copy when it named the mailbox too)
    UPDATE pg_temp.mr_alias a SET fwd = true
     WHERE a.sproblem IS NULL AND a.lp <> ''
       AND EXISTS (SELECT 1 FROM pg_temp.mr_mailbox m WHERE m.addr = a.src AND m.problem IS NULL);
    -- destinations
    UPDATE pg_temp.mr_alias a
       SET dest = CASE WHEN strpos(btrim(a.destination), '@') > 0 THEN
                       pg_temp.mr_lower_ascii(left(btrim(a.destination), length(btrim(a.destination)) - strpos(reverse(btrim(a.destination)), '@')))
                       || '@' || coalesce((pg_temp.mr_dom(right(btrim(a.destination), strpos(reverse(btrim(a.destination)), '@') - 1)))[1], '') END
     WHERE a.sproblem IS NULL AND a.destination IS NOT NULL;
    UPDATE pg_temp.mr_alias a
       SET dproblem = coalesce(a.dproblem, CASE
             WHEN a.destination IS NULL OR btrim(a.destination) = '' THEN 'is empty'
             WHEN a.dest IS NULL THEN 'is not an address'
             WHEN a.dest ~ '@$' THEN 'has a domain that ' || (pg_temp.mr_dom(right(btrim(a.destination), strpos(reverse(btrim(a.destination)), '@') - 1)))[2]
             ELSE pg_temp.mr_dest_problem(left(a.dest, length(a.dest) - strpos(reverse(a.dest), '@')),
                                          right(a.dest, strpos(reverse(a.dest), '@') - 1), NULL)
           END)
     WHERE a.sproblem IS NULL;
    UPDATE pg_temp.mr_alias a SET dproblem = 'is the alias itself'
     WHERE a.sproblem IS NULL AND a.dproblem IS NULL AND a.dest = a.src AND NOT a.fwd;

    INSERT INTO pg_temp.mr_report (grp, ref, ord, verdict, msg)
    SELECT 3, a.ref, min(a.ord), 'not imported', a.sproblem
      FROM pg_temp.mr_alias a WHERE a.sproblem IS NOT NULL
     GROUP BY a.ref, a.sproblem
    UNION ALL
    SELECT 3, a.ref, min(a.ord), 'changed',
           format('source %s is imported as %s: %s', to_json(a.source), to_json(a.src),
                  CASE WHEN right(a.source, strpos(reverse(a.source), '@') - 1) ~ '[^\x01-\x7f]' THEN
                       'a U-label domain becomes its A-label'
                       ELSE 'Postfix looked it up in lower case and never found it, so its mail was rejected until now' END)
      FROM pg_temp.mr_alias a WHERE a.sproblem IS NULL AND a.source <> a.src
     GROUP BY a.ref, a.source, a.src
    UNION ALL
    SELECT 3, a.ref, a.ord, 'changed',
           format('destination %s %s; dropped', to_json(a.destination), a.dproblem)
      FROM pg_temp.mr_alias a WHERE a.sproblem IS NULL AND a.dproblem IS NOT NULL
    UNION ALL
    SELECT 3, a.ref, a.ord, 'note',
           format('destination %s is in a domain of this import but is no mailbox or alias of it (see above): mail sent there will bounce unless it is added', to_json(a.dest))
      FROM pg_temp.mr_alias a
     WHERE a.sproblem IS NULL AND a.dproblem IS NULL AND a.dest !~ '^@'
       AND EXISTS (SELECT 1 FROM pg_temp.mr_domain d WHERE d.problem IS NULL
                    AND d.canon = right(a.dest, strpos(reverse(a.dest), '@') - 1))
       AND NOT EXISTS (SELECT 1 FROM pg_temp.mr_mailbox m WHERE m.problem IS NULL AND m.addr = a.dest)
       AND NOT EXISTS (SELECT 1 FROM pg_temp.mr_alias x WHERE x.sproblem IS NULL AND x.src IN (a.dest, '@' || right(a.dest, strpos(reverse(a.dest), '@') - 1)))
    UNION ALL
    SELECT 3, min(a.ref), min(a.ord), 'note',
           format('catch-all %s: in the old setup it also took the mail of every mailbox of its domain (virtual_alias_maps come first, and there were no rows mapping the mailboxes to themselves); in mailroster a catch-all takes only addresses that are neither a mailbox nor an alias', to_json(a.src))
      FROM pg_temp.mr_alias a
     WHERE a.sproblem IS NULL AND a.lp = '' AND coalesce(current_setting('mailroster_import.catchall_shadows', true), '') = 'on'
       AND EXISTS (SELECT 1 FROM pg_temp.mr_mailbox m WHERE m.problem IS NULL AND m.dom = a.dom)
     GROUP BY a.src
    UNION ALL
    SELECT 3, min(a.ref), min(a.ord), 'not imported',
           format('alias %s has no destination left; not imported', to_json(a.src))
      FROM pg_temp.mr_alias a WHERE a.sproblem IS NULL AND NOT a.fwd
     GROUP BY a.src HAVING count(*) FILTER (WHERE a.dproblem IS NULL) = 0
    UNION ALL
    SELECT 3, min(a.ref), min(a.ord), 'note',
           format('%s is also a mailbox: imported as the mailbox''s forwarding to %s, %s, as the old setup delivered it (virtual_alias_maps come first); its owner keeps login and sending rights',
                  to_json(a.src), string_agg(a.dest, ', ' ORDER BY a.ord, a.seq) FILTER (WHERE a.dest <> a.src),
                  CASE WHEN bool_or(a.dest = a.src) THEN 'with a copy kept in the mailbox (the row named the mailbox too)'
                       ELSE 'without a copy in the mailbox' END)
      FROM pg_temp.mr_alias a WHERE a.sproblem IS NULL AND a.fwd AND a.dproblem IS NULL
     GROUP BY a.src HAVING bool_or(a.dest <> a.src);

    ------------------------------------------------------- senders, masters
    UPDATE pg_temp.mr_sender s
       SET problem = coalesce(s.problem, CASE
             WHEN NOT EXISTS (SELECT 1 FROM pg_temp.mr_mailbox m WHERE m.problem IS NULL
                               AND m.addr = pg_temp.mr_lower_ascii(s.login)) THEN
                  format('its login %s is not an imported mailbox', to_json(s.login))
           END);
    INSERT INTO pg_temp.mr_report (grp, ref, ord, verdict, msg)
    SELECT 4, s.ref, s.ord, 'not imported', s.problem FROM pg_temp.mr_sender s WHERE s.problem IS NOT NULL;

    UPDATE pg_temp.mr_master u
       SET problem = coalesce(u.problem, CASE
             WHEN u.name IS NULL OR octet_length(u.name) NOT BETWEEN 1 AND 254
                  OR u.name ~ '[\x01-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]' THEN
                  format('master user name %s is empty, too long or has spaces or control characters', to_json(u.name))
           END);
    UPDATE pg_temp.mr_master u
       SET hash = c.v[1], hash_note = c.v[2]
      FROM (SELECT x.seq, pg_temp.mr_canon_hash(x.password, defs) AS v FROM pg_temp.mr_master x WHERE x.problem IS NULL) c
     WHERE c.seq = u.seq;
    UPDATE pg_temp.mr_master u
       SET problem = 'a master user needs a password; ' || coalesce(u.hash_note, 'it has none') || '. Not imported: add it with mailroster master add'
     WHERE u.problem IS NULL AND u.hash IS NULL;
    UPDATE pg_temp.mr_master u
       SET problem = format('master user %s is the same as %s (%s); only that one is imported', to_json(u.name), to_json(k.name), k.ref)
      FROM pg_temp.mr_master k
     WHERE u.problem IS NULL AND k.problem IS NULL AND k.name = u.name AND (k.ord, k.seq) < (u.ord, u.seq);
    INSERT INTO pg_temp.mr_report (grp, ref, ord, verdict, msg)
    SELECT 5, u.ref, u.ord, 'not imported', u.problem FROM pg_temp.mr_master u WHERE u.problem IS NOT NULL
    UNION ALL
    SELECT 5, u.ref, u.ord, 'changed', u.hash_note FROM pg_temp.mr_master u WHERE u.problem IS NULL AND u.hash_note IS NOT NULL;

    --------------------------------------------------------------- transports
    UPDATE pg_temp.mr_transport t
       SET canon = CASE
             WHEN t.pattern LIKE '%@%' THEN
                  pg_temp.mr_lower_ascii(left(t.pattern, length(t.pattern) - strpos(reverse(t.pattern), '@'))) || '@'
                  || (pg_temp.mr_canon_domain(right(t.pattern, strpos(reverse(t.pattern), '@') - 1)))[1]
             WHEN t.pattern LIKE '.%' THEN '.' || (pg_temp.mr_canon_domain(substr(t.pattern, 2)))[1]
             ELSE (pg_temp.mr_canon_domain(t.pattern))[1] END
     WHERE t.problem IS NULL;
    UPDATE pg_temp.mr_transport t
       SET problem = CASE
             WHEN t.canon IS NULL OR t.canon LIKE '@%' OR t.canon ~ '[\x01-\x20\x7f]' THEN
                  format('pattern %s is not an address, a domain or .domain', to_json(t.pattern))
             WHEN t.transport IS NULL OR t.transport !~ '^[A-Za-z0-9_-]*:' OR t.transport ~ '[\x01-\x1f\x7f]'
                  OR octet_length(t.transport) > 1024 THEN
                  format('%s is not a transport(5) value (transport:nexthop)', to_json(t.transport))
             WHEN EXISTS (SELECT 1 FROM pg_temp.mr_transport k WHERE k.problem IS NULL AND k.canon = t.canon
                           AND (k.ord, k.seq) < (t.ord, t.seq)) THEN
                  format('pattern %s is given before; Postfix used the first', to_json(t.pattern))
           END
     WHERE t.problem IS NULL;
    INSERT INTO pg_temp.mr_report (grp, ref, ord, verdict, msg)
    SELECT 6, t.ref, t.ord, 'not imported', t.problem FROM pg_temp.mr_transport t WHERE t.problem IS NOT NULL
    UNION ALL
    SELECT 6, t.ref, t.ord, 'changed', format('pattern %s is imported as %s', to_json(t.pattern), to_json(t.canon))
      FROM pg_temp.mr_transport t WHERE t.problem IS NULL AND t.canon <> t.pattern;

    ----------------------------------------------------- shares, sieve scripts
    -- both name mailboxes of this import (case folded as the mailboxes are)
    UPDATE pg_temp.mr_share x
       SET problem = coalesce(x.problem, CASE
             WHEN NOT EXISTS (SELECT 1 FROM pg_temp.mr_mailbox m WHERE m.problem IS NULL AND m.rn = 1
                               AND lower(m.address) = lower(x.mailbox)) THEN
                  format('%s is not an imported mailbox', to_json(x.mailbox))
             WHEN NOT EXISTS (SELECT 1 FROM pg_temp.mr_mailbox m WHERE m.problem IS NULL AND m.rn = 1
                               AND lower(m.address) = lower(x.shared_with)) THEN
                  format('%s is not an imported mailbox', to_json(x.shared_with))
             WHEN lower(x.mailbox) = lower(x.shared_with) THEN 'a mailbox shared with itself'
           END);
    UPDATE pg_temp.mr_sieve x
       SET problem = coalesce(x.problem, CASE
             WHEN NOT EXISTS (SELECT 1 FROM pg_temp.mr_mailbox m WHERE m.problem IS NULL AND m.rn = 1
                               AND lower(m.address) = lower(x.address)) THEN
                  format('%s is not an imported mailbox', to_json(x.address))
             WHEN x.script IS NULL OR x.script = '' OR octet_length(x.script) > 262144 THEN
                  'the script is empty or longer than 256 KiB'
           END);
    INSERT INTO pg_temp.mr_report (grp, ref, ord, verdict, msg)
    SELECT 6, x.ref, x.ord, 'not imported', x.problem FROM pg_temp.mr_share x WHERE x.problem IS NOT NULL
    UNION ALL
    SELECT 6, x.ref, x.ord, 'not imported', x.problem FROM pg_temp.mr_sieve x WHERE x.problem IS NOT NULL;

    ------------------------------------------------------------------- lines
    INSERT INTO pg_temp.mr_out (grp, k, line)
    SELECT 1, d.canon,
           format('{"kind":"domain","name":%s,"enabled":%s,"disabled_reason":null,'
                  '"quota_bytes":%s,"quota_messages":%s,"send_limit_messages":0,'
                  '"send_limit_recipients":0,"send_limit_window":3600}',
                  to_json(d.canon), to_json(d.enabled), d.quota_bytes, d.quota_messages)
      FROM pg_temp.mr_domain d
     WHERE d.problem IS NULL AND d.rn = 1
       AND (NOT d.implied
            OR EXISTS (SELECT 1 FROM pg_temp.mr_mailbox m WHERE m.problem IS NULL AND m.dom = d.canon)
            OR EXISTS (SELECT 1 FROM pg_temp.mr_alias a WHERE a.sproblem IS NULL AND a.dproblem IS NULL AND a.dom = d.canon))
    UNION ALL
    SELECT 2, m.addr,
           format('{"kind":"mailbox","address":%s,"password":%s,"enabled":%s,"disabled_reason":null,'
                  '"may_send":%s,"may_receive":%s,"services":%s,'
                  '"quota_bytes":%s,"quota_messages":%s,"send_limit_messages":null,'
                  '"send_limit_recipients":null,"home":%s,"mail":%s,"uid":%s,"gid":%s,"maildir":%s,'
                  '"display_name":%s,"metadata":%s,"forward_to":%s,"keep_copy":%s}',
                  to_json(m.addr), coalesce(to_json(m.hash)::text, 'null'), to_json(m.enabled),
                  to_json(m.may_send), to_json(m.may_receive), to_json(m.services),
                  coalesce(m.quota_bytes::text, 'null'), coalesce(m.quota_messages::text, 'null'),
                  coalesce(to_json(m.home)::text, 'null'), coalesce(to_json(m.mail)::text, 'null'),
                  coalesce(m.uid::text, 'null'), coalesce(m.gid::text, 'null'),
                  coalesce(to_json(m.maildir_out)::text, 'null'),
                  coalesce(to_json(nullif(m.display_name, ''))::text, 'null'),
                  coalesce(m.metadata::text, '{}'),
                  to_json(coalesce(f.dests, '{}')), to_json(coalesce(f.copy AND cardinality(f.dests) > 0, false)))
      FROM pg_temp.mr_mailbox m
      LEFT JOIN (SELECT x.src, array_agg(x.dest ORDER BY x.fo, x.fs) FILTER (WHERE x.dest <> x.src) AS dests,
                        bool_or(x.dest = x.src) AS copy
                   FROM (SELECT y.src, y.dest, min(coalesce(y.ord, 0)) AS fo, min(y.seq) AS fs
                           FROM pg_temp.mr_alias y WHERE y.fwd AND y.sproblem IS NULL AND y.dproblem IS NULL
                          GROUP BY y.src, y.dest) x
                  GROUP BY x.src) f ON f.src = m.addr
     WHERE m.problem IS NULL
    UNION ALL
    SELECT 3, g.src,
           format('{"kind":"alias","source":%s,"destinations":%s,"enabled":%s,"may_send":%s}',
                  to_json(g.src), to_json(g.dests), to_json(g.enabled), to_json(g.may_send))
      FROM (SELECT a.src, bool_or(a.enabled) AS enabled, bool_and(a.may_send) AS may_send,
                   array_agg(a.dest ORDER BY a.fo, a.fs) AS dests
              FROM (SELECT x.src, x.dest, bool_or(x.enabled) AS enabled, bool_and(x.may_send) AS may_send,
                           min(coalesce(x.ord, 0)) AS fo, min(x.seq) AS fs
                      FROM pg_temp.mr_alias x WHERE x.sproblem IS NULL AND x.dproblem IS NULL AND NOT x.fwd
                     GROUP BY x.src, x.dest) a
             GROUP BY a.src) g
    UNION ALL
    SELECT DISTINCT 4, pg_temp.mr_lower_ascii(s.address) || ' ' || pg_temp.mr_lower_ascii(s.login),
           format('{"kind":"sender","address":%s,"login":%s}',
                  to_json(pg_temp.mr_lower_ascii(s.address)), to_json(pg_temp.mr_lower_ascii(s.login)))
      FROM pg_temp.mr_sender s WHERE s.problem IS NULL
    UNION ALL
    SELECT 5, u.name,
           format('{"kind":"master","name":%s,"password":%s,"enabled":%s,"domains":%s}',
                  to_json(u.name), to_json(u.hash), to_json(u.enabled), coalesce(to_json(u.domains)::text, 'null'))
      FROM pg_temp.mr_master u WHERE u.problem IS NULL
    UNION ALL
    SELECT 6, t.canon,
           format('{"kind":"transport","pattern":%s,"transport":%s,"enabled":%s}',
                  to_json(t.canon), to_json(t.transport), to_json(t.enabled))
      FROM pg_temp.mr_transport t WHERE t.problem IS NULL
    UNION ALL
    SELECT DISTINCT 7, a.addr || ' ' || b.addr,
           format('{"kind":"share","mailbox":%s,"shared_with":%s}', to_json(a.addr), to_json(b.addr))
      FROM pg_temp.mr_share x
      JOIN pg_temp.mr_mailbox a ON a.problem IS NULL AND a.rn = 1 AND lower(a.address) = lower(x.mailbox)
      JOIN pg_temp.mr_mailbox b ON b.problem IS NULL AND b.rn = 1 AND lower(b.address) = lower(x.shared_with)
     WHERE x.problem IS NULL
    UNION ALL
    SELECT 8, a.addr, format('{"kind":"sieve","address":%s,"script":%s}', to_json(a.addr), to_json(x.script))
      FROM pg_temp.mr_sieve x
      JOIN pg_temp.mr_mailbox a ON a.problem IS NULL AND a.rn = 1 AND lower(a.address) = lower(x.address)
     WHERE x.problem IS NULL;
END
$run$;
