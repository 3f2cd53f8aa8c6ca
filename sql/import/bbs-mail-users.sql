-- sql/import/bbs-mail-users.sql - a BBS's mail_users table as mailroster JSON lines.
--
-- Run against the SOURCE database, read only:
--
--   psql -X -At -f sql/import/bbs-mail-users.sql SOURCEDB > dir.jsonl
--   psql -X -At -v maildir='%d/%n/' -f sql/import/bbs-mail-users.sql SOURCEDB > dir.jsonl
--
-- JSON lines on stdout; every row not imported as it was, and why, on
-- stderr as a WARNING; a NOTICE with the totals last.
--
-- Source: mail_users(email, password, quota_mb, enabled), optionally id
-- (used only to say which row a warning is about, and to break ties).
-- The domains are the domains of the addresses.
--
-- What it does:
--   - ASCII letters are lowercased.  The BBS's Postfix and Dovecot queries
--     compare the stored text exactly while Postfix looks up lower case, so a
--     row stored as Dave@... never received mail; it is reported, and works
--     after the import.  Rows that differ only in case: the one already in
--     lower case is kept (else the lowest id), the others are reported.
--   - an address whose domain has non-ASCII characters (a U-label) is
--     refused with a warning: store the A-label (xn--...) in the source or
--     add it with mailroster's tools, which convert.
--   - password: the stored {BLF-CRYPT} value is kept (scheme name
--     upper-cased); a hash without a prefix gets one from its form ($2a$/
--     $2b$/$2y$ BLF-CRYPT, $5$ SHA256-CRYPT, $6$ SHA512-CRYPT, $y$ CRYPT,
--     $argon2id$ ARGON2ID, $argon2i$ ARGON2I, $1$ MD5-CRYPT), else from
--     -v default_pass_scheme=SCHEME, else the mailbox is imported without a
--     password (receives mail, cannot log in) and reported.  NULL stays NULL.
--   - a password hash whose scheme or form mailroster refuses (plaintext
--     such as {PLAIN} or {PLAIN-MD5}, {MD5-CRYPT} and $1$, {ARGON2I}, DES
--     {CRYPT}, any scheme but {CRYPT}, {BLF-CRYPT}, {SHA512-CRYPT},
--     {SHA256-CRYPT} and {ARGON2ID}: mailroster.password_hash_problem()) is
--     reported, naming the mailbox and the scheme, and the mailbox is
--     imported without a password (it receives mail, cannot log in until it
--     gets a new one: mailroster user passwd).  A malformed hash of an
--     accepted scheme is passed on: mailroster's import refuses the file and
--     names the line (fix the source, then run this again).
--   - quota_mb: 0 = unlimited stays 0; otherwise quota_bytes = quota_mb *
--     1048576 exactly (Dovecot's "M" is MiB; the BBS's quota rule was
--     "*:storage=<quota_mb>M").  Another factor: -v mb_bytes=N.  NULL = no
--     quota of its own (the domain's, unlimited by default).
--   - enabled -> enabled (NULL counts as enabled).
--   - maildir: mail_users has none.  Default: mailroster makes new ones
--     (<domain>/<local part>.<id>/), and a NOTICE says so.  To keep the
--     existing mail, pass -v maildir=TEMPLATE, the path of each Maildir
--     relative to the mail root, %d = domain, %n = local part, %u = address
--     (e.g. '%d/%n/' for a mail_location of maildir:/var/vmail/%d/%n).

\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only on
\pset pager off
\ir _hash.sql
\if :{?maildir}
\else
\set maildir ''
\endif
\if :{?default_pass_scheme}
\else
\set default_pass_scheme ''
\endif
\if :{?mb_bytes}
\else
\set mb_bytes 1048576
\endif

BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SET LOCAL work_mem = '64MB';   -- hashed lookups over all addresses
SET LOCAL jit = off;           -- compiling this one big query costs more than it saves
SET LOCAL enable_nestloop = off;  -- row estimates of the CTEs are poor; never loop over all addresses per address
SET LOCAL mailroster_import.maildir = :'maildir';
SET LOCAL mailroster_import.default_pass_scheme = :'default_pass_scheme';
SET LOCAL mailroster_import.mb_bytes = :'mb_bytes';

DO $import$
DECLARE
    r       record;
    v_lines text[] := '{}';
    n_dom   int := 0;
    n_mbx   int := 0;
    n_warn  int := 0;
BEGIN
    IF current_setting('mailroster_import.default_pass_scheme') !~ '^[A-Za-z0-9.-]*$' THEN
        RAISE EXCEPTION 'bbs-mail-users: -v default_pass_scheme must be a scheme name such as BLF-CRYPT';
    END IF;
    IF current_setting('mailroster_import.mb_bytes') !~ '^[1-9][0-9]{0,12}$' THEN
        RAISE EXCEPTION 'bbs-mail-users: -v mb_bytes must be a positive whole number (bytes per quota_mb unit)';
    END IF;
    IF current_setting('mailroster_import.maildir') = '' THEN
        RAISE NOTICE 'bbs-mail-users: mail_users has no maildir column, so mailroster makes new maildirs (<domain>/<local part>.<id>/); to keep the existing mail pass -v maildir=TEMPLATE (e.g. ''%%d/%%n/'', relative to the mail root)';
    END IF;

    FOR r IN
    WITH
    cfg AS (
        SELECT current_setting('mailroster_import.maildir') AS maildir,
               upper(current_setting('mailroster_import.default_pass_scheme')) AS defscheme,
               current_setting('mailroster_import.mb_bytes')::numeric AS mb_bytes
    ),
    usrc AS (
        SELECT u.email AS raw, u.password AS pw,
               (to_jsonb(u) ->> 'id') AS id,
               (to_jsonb(u) ->> 'quota_mb')::numeric AS quota_mb,
               coalesce((to_jsonb(u) ->> 'enabled')::boolean, true) AS enabled,
               lower(u.email COLLATE "C") AS addr
          FROM mail_users u
    ),
    usplit AS (
        SELECT s.*,
               CASE WHEN strpos(s.addr, '@') > 0
                    THEN left(s.addr, length(s.addr) - strpos(reverse(s.addr), '@')) END AS lp,
               CASE WHEN strpos(s.addr, '@') > 0
                    THEN right(s.addr, strpos(reverse(s.addr), '@') - 1) END AS dom
          FROM usrc s
    ),
    uchk AS (
        SELECT s.*,
               CASE
                 WHEN s.addr IS NULL OR s.lp IS NULL THEN 'is not an address'
                 WHEN s.dom ~ '[^\x01-\x7f]' THEN
                      'has a U-label domain: store its A-label (xn--...) in mail_users, or add the domain with mailroster''s tools'
                 WHEN NOT (octet_length(s.dom) BETWEEN 1 AND 253
                           AND s.dom ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$') THEN
                      'has an invalid domain'
                 WHEN NOT (octet_length(s.lp) BETWEEN 1 AND 64
                           AND s.lp !~ '^\.|\.$' AND strpos(s.lp, '..') = 0 AND strpos(s.lp, '+') = 0
                           AND s.lp !~ '[\x01-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]'
                           AND s.lp !~ '[]["@,\\()<>;:]') THEN
                      'has a local part mailroster does not accept for a mailbox (1 to 64 octets; no "+", spaces, control characters, @ , " \ ( ) < > [ ] ; :; no leading, trailing or double dot)'
                 WHEN octet_length(s.addr) > 254 THEN 'is longer than 254 octets'
               END AS problem,
               row_number() OVER (PARTITION BY s.addr
                                  ORDER BY (s.raw = s.addr) DESC,
                                           CASE WHEN s.id ~ '^[0-9]+$' THEN s.id::numeric END NULLS LAST,
                                           s.raw) AS rn
          FROM usplit s
    ),
    mbx AS (
        SELECT c.*,
               hp.hash_in, hp.hash_refused,
               CASE WHEN hp.hash_refused IS NULL THEN hp.hash_in END AS password,
               CASE WHEN c.quota_mb >= 0 AND c.quota_mb = trunc(c.quota_mb)
                         AND c.quota_mb * cfg.mb_bytes <= 9223372036854775807
                    THEN c.quota_mb * cfg.mb_bytes END AS quota_bytes,
               CASE WHEN cfg.maildir <> '' THEN
                    replace(replace(replace(cfg.maildir, '%d', c.dom), '%n', c.lp), '%u', c.addr)
               END AS maildir
          FROM uchk c CROSS JOIN cfg
          -- the hash with its {SCHEME}
          CROSS JOIN LATERAL (SELECT
               CASE
                 WHEN c.pw IS NULL THEN NULL
                 WHEN c.pw ~ '[\x01-\x1f\x7f]' THEN NULL
                 WHEN c.pw ~ '^\{[A-Za-z0-9.-]+\}.' THEN
                      '{' || upper(substring(c.pw from '^\{([A-Za-z0-9.-]+)\}')) || '}' || substr(c.pw, strpos(c.pw, '}') + 1)
                 WHEN c.pw ~ '^\$2[aby]\$' THEN '{BLF-CRYPT}' || c.pw
                 WHEN c.pw ~ '^\$5\$' THEN '{SHA256-CRYPT}' || c.pw
                 WHEN c.pw ~ '^\$6\$' THEN '{SHA512-CRYPT}' || c.pw
                 WHEN c.pw ~ '^\$y\$' THEN '{CRYPT}' || c.pw
                 WHEN c.pw ~ '^\$argon2id\$' THEN '{ARGON2ID}' || c.pw
                 WHEN c.pw ~ '^\$argon2i\$' THEN '{ARGON2I}' || c.pw
                 WHEN c.pw ~ '^\$1\$' THEN '{MD5-CRYPT}' || c.pw
                 WHEN c.pw <> '' AND cfg.defscheme <> '' THEN '{' || cfg.defscheme || '}' || c.pw
               END AS hash_in) hi
          -- the hash forms mailroster refuses: _hash.sql
          CROSS JOIN LATERAL (SELECT hi.hash_in, pg_temp.mr_hash_refused(hi.hash_in) AS hash_refused) hp
         WHERE c.problem IS NULL AND c.rn = 1
    ),
    mbx2 AS (
        SELECT m.*,
               m.maildir IS NOT NULL
               AND NOT (m.maildir ~ '^[^/].*/$' AND m.maildir !~ '(^|/)\.{1,2}/'
                        AND strpos(m.maildir, '//') = 0 AND m.maildir !~ '[\x01-\x1f\x7f]') AS bad_maildir
          FROM mbx m
    ),
    out AS (
        SELECT DISTINCT 1 AS grp, m.dom AS k, NULL::text AS k2,
               format('{"kind":"domain","name":%s,"enabled":true,"disabled_reason":null,'
                      '"quota_bytes":0,"quota_messages":0,"send_limit_messages":0,'
                      '"send_limit_recipients":0,"send_limit_window":3600}', to_json(m.dom)) AS line,
               NULL::text AS warn
          FROM mbx m
        UNION ALL
        SELECT 2, m.addr, NULL,
               format('{"kind":"mailbox","address":%s,"password":%s,"enabled":%s,"disabled_reason":null,'
                      '"may_send":true,"may_receive":true,"services":["imap","pop3","submission","lmtp","sieve"],'
                      '"quota_bytes":%s,"quota_messages":null,"send_limit_messages":null,'
                      '"send_limit_recipients":null,"home":null,"mail":null,"uid":null,"gid":null,"maildir":%s}',
                      to_json(m.addr), coalesce(to_json(m.password)::text, 'null'), to_json(m.enabled),
                      coalesce(m.quota_bytes::text, 'null'),
                      CASE WHEN m.bad_maildir THEN 'null' ELSE coalesce(to_json(m.maildir)::text, 'null') END),
               CASE WHEN w.t <> '' THEN format('mailbox %s%s %s', to_json(m.raw),
                                               CASE WHEN m.id IS NOT NULL THEN format(' (id %s)', m.id) ELSE '' END, w.t)
               END
          FROM mbx2 m
          CROSS JOIN LATERAL (SELECT concat_ws('; ',
               CASE WHEN m.raw <> m.addr THEN
                    format('becomes %s (Postfix looked it up in lower case, so mail to it was rejected until now)',
                           to_json(m.addr)) END,
               CASE WHEN m.pw = '' THEN 'has an empty password: imported without one (receives mail, cannot log in)'
                    WHEN m.hash_refused IS NOT NULL THEN
                         format('has a %s password hash, which mailroster refuses (%s): imported without a password (receives mail, cannot log in); set a new one with mailroster user passwd',
                                substring(m.hash_in from '^\{[^}]*\}'), m.hash_refused)
                    WHEN m.pw IS NOT NULL AND m.password IS NULL AND m.pw ~ '[\x01-\x1f\x7f]' THEN
                         'has control characters in its password hash: imported without a password (receives mail, cannot log in)'
                    WHEN m.pw IS NOT NULL AND m.password IS NULL THEN
                         format('has a password hash without {SCHEME} prefix whose scheme cannot be told from its form (%s characters): imported without a password (receives mail, cannot log in); pass -v default_pass_scheme=SCHEME (the old Dovecot default_pass_scheme) to keep it',
                                length(m.pw)) END,
               CASE WHEN m.quota_mb IS NOT NULL AND m.quota_bytes IS NULL THEN
                    format('has quota_mb %s, which is not a whole number of MB from 0 up: imported without a quota of its own', m.quota_mb) END,
               CASE WHEN m.bad_maildir THEN
                    format('gets a new maildir: the template gives %s, which is not a relative path ending in "/"',
                           to_json(m.maildir)) END) AS t) w
        UNION ALL
        SELECT 2, coalesce(c.addr, ''), coalesce(c.id, c.raw), NULL,
               format('mailbox %s%s %s; not imported', to_json(c.raw),
                      CASE WHEN c.id IS NOT NULL THEN format(' (id %s)', c.id) ELSE '' END,
                      coalesce(c.problem,
                               format('has the same address as %s in another case',
                                      to_json((SELECT k.raw FROM uchk k WHERE k.addr = c.addr AND k.rn = 1)))))
          FROM uchk c
         WHERE c.problem IS NOT NULL OR c.rn > 1
    )
    SELECT o.grp, o.line, o.warn FROM out o
     ORDER BY o.grp, o.k COLLATE "C", o.line IS NULL, o.k2 COLLATE "C"
    LOOP
        IF r.warn IS NOT NULL THEN
            RAISE WARNING 'bbs-mail-users: %', r.warn;
            n_warn := n_warn + 1;
        END IF;
        IF r.line IS NOT NULL THEN
            v_lines := v_lines || r.line;
            IF r.grp = 1 THEN n_dom := n_dom + 1; ELSE n_mbx := n_mbx + 1; END IF;
        END IF;
    END LOOP;

    PERFORM set_config('mailroster_import.lines', array_to_string(v_lines, E'\n'), true);
    RAISE NOTICE 'bbs-mail-users: % domains, % mailboxes; % warnings%', n_dom, n_mbx, n_warn,
        CASE WHEN n_warn > 0 THEN ' (see above: those rows are not imported as they were)' ELSE '' END;
END
$import$;

SELECT l FROM unnest(string_to_array(current_setting('mailroster_import.lines'), E'\n')) AS l;

COMMIT;
