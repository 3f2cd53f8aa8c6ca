-- sql/import/ispmail.sql - the ISP-mail tutorial's schema as mailroster JSON lines.
--
-- Run against the SOURCE database (read only; nothing is written anywhere):
--
--   psql -X -At -f sql/import/ispmail.sql SOURCEDB > dir.jsonl
--
-- then check dir.jsonl and feed it to mailroster's import (dry run first).
-- The JSON lines go to stdout; every row that is not imported as it was, and
-- why, goes to stderr as a WARNING, followed by a NOTICE with the totals.
--
-- Source tables (workaround.org ISP-mail tutorial):
--   virtual_domains(id, name)
--   virtual_users(id, domain_id, email, password, quota)      quota in bytes
--   virtual_aliases(id, domain_id, source, destination)      one row per destination
--
-- What it does:
--   - domains: every virtual_domains name; mailboxes and aliases are placed
--     by the domain in their own address.
--   - ASCII letters are lowercased.  The tutorial's Postfix queries compare
--     with '%s', which Postfix lowercases, so a row stored as Dave@... never
--     received mail; it is reported, and works after the import.  Two rows
--     that differ only in case: the one already in lower case is kept (else
--     the lowest id), the others are reported and left out.
--   - a domain with non-ASCII characters (a U-label) is refused with a
--     warning, with everything in it: store its A-label (xn--...) in the
--     source, or add it with mailroster's own tools, which convert.
--   - passwords: a {SCHEME} prefix is kept (scheme name upper-cased); a hash
--     without one gets it from its form ($2a$/$2b$/$2y$ BLF-CRYPT, $5$
--     SHA256-CRYPT, $6$ SHA512-CRYPT, $y$ CRYPT (yescrypt), $argon2id$
--     ARGON2ID, $argon2i$ ARGON2I, $1$ MD5-CRYPT); anything else gets
--     -v default_pass_scheme=SCHEME (Dovecot's default_pass_scheme of the old
--     setup) if given, else the mailbox is imported without a password (it
--     receives mail, cannot log in) and reported.  NULL stays NULL.
--   - a password hash whose scheme or form mailroster refuses (plaintext
--     such as {PLAIN} or {PLAIN-MD5}, {MD5-CRYPT} and $1$, {ARGON2I}, DES
--     {CRYPT}, any scheme but {CRYPT}, {BLF-CRYPT}, {SHA512-CRYPT},
--     {SHA256-CRYPT} and {ARGON2ID}: mailroster.password_hash_problem()) is
--     reported, naming the mailbox and the scheme, and the mailbox is
--     imported without a password (it receives mail, cannot log in until it
--     gets a new one: mailroster user passwd).  A malformed hash of an
--     accepted scheme is passed on: mailroster's import refuses the file and
--     names the line (fix the source, then run this again).
--   - quota: bytes, exact; 0 (unlimited in Dovecot's *:bytes=0) stays 0.
--   - maildir: -v maildir=TEMPLATE, the path of each Maildir relative to the
--     mail root, %d = domain, %n = local part, %u = address.  Default
--     '%d/%n/Maildir/': the tutorial's mail_home /var/vmail/%d/%n with
--     mail_location maildir:~/Maildir, with /var/vmail as mailroster's mail
--     root.  -v maildir= (empty) lets mailroster make new ones.
--   - aliases: rows with the same source become one alias (destinations in
--     id order, duplicates dropped).  A source "@domain" is that domain's
--     catch-all: the tutorial's alias query (source='%s') matched it.  If
--     your alias query used '%u' instead, such rows never matched; pass
--     -v at_domain_aliases=skip to leave them out.
--   - an alias whose source is also a mailbox is refused and named: in the
--     old setup it took all of that mailbox's mail (virtual_alias_maps come
--     first) while the owner could still log in and send as it; mailroster
--     does not allow an address to be both.  Decide per address, and change
--     the source or the JSON lines.
--   - an alias destination that is not a valid address (or has a U-label
--     domain) is dropped and reported; an alias left without destinations is
--     reported and left out.  An alias that names itself as a destination
--     loses that destination (it is not a mailbox).
--   - the tutorial has no enabled flags, limits, senders or master users.

\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only on
\pset pager off
\ir _hash.sql
\if :{?maildir}
\else
\set maildir '%d/%n/Maildir/'
\endif
\if :{?default_pass_scheme}
\else
\set default_pass_scheme ''
\endif
\if :{?at_domain_aliases}
\else
\set at_domain_aliases 'catch-all'
\endif

BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SET LOCAL work_mem = '64MB';   -- hashed lookups over all addresses
SET LOCAL jit = off;           -- compiling this one big query costs more than it saves
SET LOCAL enable_nestloop = off;  -- row estimates of the CTEs are poor; never loop over all addresses per address
SET LOCAL mailroster_import.maildir = :'maildir';
SET LOCAL mailroster_import.default_pass_scheme = :'default_pass_scheme';
SET LOCAL mailroster_import.at_domain_aliases = :'at_domain_aliases';

DO $import$
DECLARE
    r       record;
    v_lines text[] := '{}';
    n_dom   int := 0;
    n_mbx   int := 0;
    n_ali   int := 0;
    n_warn  int := 0;
BEGIN
    IF current_setting('mailroster_import.at_domain_aliases') NOT IN ('catch-all', 'skip') THEN
        RAISE EXCEPTION 'ispmail: -v at_domain_aliases must be catch-all or skip';
    END IF;
    IF current_setting('mailroster_import.default_pass_scheme') !~ '^[A-Za-z0-9.-]*$' THEN
        RAISE EXCEPTION 'ispmail: -v default_pass_scheme must be a scheme name such as SHA512-CRYPT';
    END IF;

    FOR r IN
    WITH
    cfg AS (
        SELECT current_setting('mailroster_import.maildir') AS maildir,
               upper(current_setting('mailroster_import.default_pass_scheme')) AS defscheme,
               current_setting('mailroster_import.at_domain_aliases') = 'skip' AS skip_at
    ),
    -- domains
    dsrc AS (
        SELECT d.id, d.name AS raw,
               lower(d.name COLLATE "C") AS name
          FROM virtual_domains d
    ),
    dchk AS (
        SELECT s.*,
               CASE
                 WHEN s.name IS NULL THEN 'has no name'
                 WHEN s.name ~ '[^\x01-\x7f]' THEN
                      'is a U-label: store its A-label (xn--...) in virtual_domains, or add the domain with mailroster''s tools; the domain, its mailboxes and aliases are not imported'
                 WHEN NOT (octet_length(s.name) BETWEEN 1 AND 253
                           AND s.name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$') THEN
                      'is not a valid domain name; the domain, its mailboxes and aliases are not imported'
               END AS problem,
               row_number() OVER (PARTITION BY s.name ORDER BY (s.raw = s.name) DESC, s.id) AS rn
          FROM dsrc s
    ),
    doms AS (SELECT DISTINCT c.name FROM dchk c WHERE c.problem IS NULL),
    dom_out AS (
        SELECT 1 AS grp, c.name AS k, NULL::text AS k2,
               CASE WHEN c.problem IS NULL AND c.rn = 1 THEN
                 format('{"kind":"domain","name":%s,"enabled":true,"disabled_reason":null,'
                        '"quota_bytes":0,"quota_messages":0,"send_limit_messages":0,'
                        '"send_limit_recipients":0,"send_limit_window":3600}', to_json(c.name))
               END AS line,
               CASE
                 WHEN c.problem IS NOT NULL THEN format('domain %s (id %s) %s', to_json(c.raw), c.id, c.problem)
                 WHEN c.raw <> c.name AND c.rn = 1 THEN
                      format('domain %s (id %s) becomes %s (Postfix looked it up in lower case and never found it)',
                             to_json(c.raw), c.id, to_json(c.name))
               END AS warn
          FROM dchk c
    ),
    -- mailboxes
    usrc AS (
        SELECT u.id, u.email AS raw, u.password AS pw, (to_jsonb(u) ->> 'quota')::numeric AS quota,
               lower(u.email COLLATE "C") AS addr
          FROM virtual_users u
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
                 WHEN s.dom ~ '[^\x01-\x7f]' THEN 'has a U-label domain: store its A-label (xn--...) in the source'
                 WHEN dm.name IS NULL THEN
                      'is in a domain that is not imported (not in virtual_domains, or refused above)'
                 WHEN NOT (octet_length(s.lp) BETWEEN 1 AND 64
                           AND s.lp !~ '^\.|\.$' AND strpos(s.lp, '..') = 0 AND strpos(s.lp, '+') = 0
                           AND s.lp !~ '[\x01-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]'
                           AND s.lp !~ '[]["@,\\()<>;:]') THEN
                      'has a local part mailroster does not accept for a mailbox (1 to 64 octets; no "+", spaces, control characters, @ , " \ ( ) < > [ ] ; :; no leading, trailing or double dot)'
                 WHEN octet_length(s.addr) > 254 THEN 'is longer than 254 octets'
               END AS problem,
               row_number() OVER (PARTITION BY s.addr ORDER BY (s.raw = s.addr) DESC, s.id) AS rn
          FROM usplit s LEFT JOIN doms dm ON dm.name = s.dom
    ),
    ukept AS (
        SELECT c.*,
               hp.hash_in, hp.hash_refused,
               CASE WHEN hp.hash_refused IS NULL THEN hp.hash_in END AS password,
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
    mbx AS (
        SELECT k.*,
               k.maildir IS NOT NULL
               AND NOT (k.maildir ~ '^[^/].*/$' AND k.maildir !~ '(^|/)\.{1,2}/'
                        AND strpos(k.maildir, '//') = 0 AND k.maildir !~ '[\x01-\x1f\x7f]') AS bad_maildir
          FROM ukept k
    ),
    mbx_out AS (
        SELECT 2 AS grp, m.addr AS k, NULL::text AS k2, m.raw,
               format('{"kind":"mailbox","address":%s,"password":%s,"enabled":true,"disabled_reason":null,'
                      '"may_send":true,"may_receive":true,"services":["imap","pop3","submission","lmtp","sieve"],'
                      '"quota_bytes":%s,"quota_messages":null,"send_limit_messages":null,'
                      '"send_limit_recipients":null,"home":null,"mail":null,"uid":null,"gid":null,"maildir":%s}',
                      to_json(m.addr), coalesce(to_json(m.password)::text, 'null'),
                      CASE WHEN m.quota >= 0 THEN m.quota::text ELSE 'null' END,
                      CASE WHEN m.bad_maildir THEN 'null' ELSE coalesce(to_json(m.maildir)::text, 'null') END) AS line,
               nullif(concat_ws('; ',
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
                   CASE WHEN m.quota < 0 THEN format('has quota %s: imported without a quota of its own', m.quota) END,
                   CASE WHEN m.bad_maildir THEN
                        format('gets a new maildir: the template gives %s, which is not a relative path ending in "/"',
                               to_json(m.maildir)) END), '') AS warn_text
          FROM mbx m
    ),
    mbx_skip AS (
        SELECT 2 AS grp, coalesce(c.addr, '') AS k, c.id::text AS k2, NULL::text AS line,
               CASE WHEN c.problem IS NOT NULL THEN
                         format('mailbox %s (virtual_users id %s) %s; not imported', to_json(c.raw), c.id, c.problem)
                    ELSE format('mailbox %s (virtual_users id %s) has the same address as virtual_users id %s in another case; not imported',
                                to_json(c.raw), c.id,
                                (SELECT k.id FROM uchk k WHERE k.addr = c.addr AND k.rn = 1))
               END AS warn
          FROM uchk c
         WHERE c.problem IS NOT NULL OR c.rn > 1
    ),
    -- aliases
    asrc AS (
        SELECT a.id, a.source AS raw_source, a.destination AS raw_dest,
               lower(a.source COLLATE "C") AS source,
               lower(btrim(a.destination) COLLATE "C") AS dest
          FROM virtual_aliases a
    ),
    asplit AS (
        SELECT s.*,
               CASE WHEN strpos(s.source, '@') > 0
                    THEN left(s.source, length(s.source) - strpos(reverse(s.source), '@')) END AS lp,
               CASE WHEN strpos(s.source, '@') > 0
                    THEN right(s.source, strpos(reverse(s.source), '@') - 1) END AS dom,
               CASE WHEN strpos(s.dest, '@') > 0
                    THEN left(s.dest, length(s.dest) - strpos(reverse(s.dest), '@')) END AS dlp,
               CASE WHEN strpos(s.dest, '@') > 0
                    THEN right(s.dest, strpos(reverse(s.dest), '@') - 1) END AS ddom
          FROM asrc s
    ),
    achk AS (
        SELECT s.*,
               CASE
                 WHEN s.source IS NULL OR s.lp IS NULL THEN 'is not an address'
                 WHEN s.dom ~ '[^\x01-\x7f]' THEN 'has a U-label domain: store its A-label (xn--...) in the source'
                 WHEN dm.name IS NULL THEN
                      'is in a domain that is not imported (not in virtual_domains, or refused above)'
                 WHEN s.lp = '' AND cfg.skip_at THEN
                      'has an empty local part; with -v at_domain_aliases=skip such a row never matched (Postfix does not query an empty %u), and importing it as a catch-all would accept mail that is rejected today'
                 WHEN s.lp <> '' AND NOT (octet_length(s.lp) <= 64
                           AND s.lp !~ '^\.|\.$' AND strpos(s.lp, '..') = 0 AND strpos(s.lp, '+') = 0
                           AND s.lp !~ '[\x01-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]'
                           AND s.lp !~ '[]["@,\\()<>;:]') THEN
                      'has a local part mailroster does not accept for an alias (1 to 64 octets; no "+", spaces, control characters, @ , " \ ( ) < > [ ] ; :; no leading, trailing or double dot)'
                 WHEN octet_length(s.source) > 254 THEN 'is longer than 254 octets'
                 WHEN s.lp <> '' AND mb.addr IS NOT NULL THEN
                      'is also a mailbox, and mailroster does not allow an address to be both. Until now the alias decided where its mail went (virtual_alias_maps come first) while the mailbox owner could still log in and send as it. Decide: drop the alias (mail goes to the mailbox) or the mailbox (mail follows the alias), in the source or in the JSON lines'
               END AS problem,
               CASE
                 WHEN s.dest IS NULL OR s.dest = '' THEN 'is empty'
                 WHEN s.ddom IS NULL THEN 'is not an address'
                 WHEN s.ddom ~ '[^\x01-\x7f]' THEN 'has a U-label domain; convert it to its A-label (xn--...)'
                 WHEN NOT (octet_length(s.ddom) BETWEEN 1 AND 253
                           AND s.ddom ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$') THEN
                      'has an invalid domain'
                 WHEN s.dlp <> '' AND NOT (octet_length(s.dlp) <= 64
                           AND s.dlp !~ '^\.|\.$' AND strpos(s.dlp, '..') = 0
                           AND s.dlp !~ '[\x01-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]'
                           AND s.dlp !~ '[]["@,\\()<>;:]') THEN
                      'has a local part mailroster does not accept'
                 WHEN octet_length(s.dest) > 254 THEN 'is longer than 254 octets'
                 WHEN s.dest = s.source THEN 'is the alias itself'
               END AS dproblem
          FROM asplit s CROSS JOIN cfg
          LEFT JOIN doms dm ON dm.name = s.dom
          LEFT JOIN mbx mb ON mb.addr = s.source
    ),
    agood AS (
        SELECT c.source, c.dest, min(c.id) AS first_id
          FROM achk c
         WHERE c.problem IS NULL AND c.dproblem IS NULL
         GROUP BY c.source, c.dest
    ),
    asrcs AS (SELECT DISTINCT c.source, c.raw_source FROM achk c WHERE c.problem IS NULL),
    ali AS (
        SELECT s.source, array_agg(g.dest ORDER BY g.first_id) FILTER (WHERE g.dest IS NOT NULL) AS dests
          FROM (SELECT DISTINCT source FROM asrcs) s
          LEFT JOIN agood g ON g.source = s.source
         GROUP BY s.source
    ),
    ali_out AS (
        SELECT 3 AS grp, a.source AS k, NULL::text AS k2,
               CASE WHEN a.dests IS NOT NULL THEN
                    format('{"kind":"alias","source":%s,"destinations":%s,"enabled":true}',
                           to_json(a.source), to_json(a.dests))
               END AS line,
               CASE WHEN a.dests IS NULL THEN
                    format('alias %s has no usable destination left; not imported', to_json(a.source))
               END AS warn
          FROM ali a
    ),
    ali_case AS (
        SELECT 3 AS grp, s.source AS k, s.raw_source AS k2, NULL::text AS line,
               format('alias source %s becomes %s (Postfix looked it up in lower case, so mail to it was rejected until now)',
                      to_json(s.raw_source), to_json(s.source)) AS warn
          FROM asrcs s
         WHERE s.raw_source <> s.source
    ),
    ali_skip AS (
        SELECT 3 AS grp, coalesce(c.source, '') AS k, min(c.id)::text AS k2, NULL::text AS line,
               format('alias %s -> %s (virtual_aliases id %s) %s; not imported',
                      to_json(c.raw_source), string_agg(to_json(c.raw_dest)::text, ', ' ORDER BY c.id),
                      string_agg(c.id::text, ', ' ORDER BY c.id), c.problem) AS warn
          FROM achk c
         WHERE c.problem IS NOT NULL
         GROUP BY c.source, c.raw_source, c.problem
        UNION ALL
        SELECT 3, c.source, c.id::text, NULL,
               format('alias %s: destination %s (virtual_aliases id %s) %s; dropped',
                      to_json(c.source), to_json(c.raw_dest), c.id, c.dproblem)
          FROM achk c
         WHERE c.problem IS NULL AND c.dproblem IS NOT NULL
    )
    SELECT o.grp, o.k, o.k2, o.line, o.warn FROM (
        SELECT d.grp, d.k, d.k2, d.line, d.warn FROM dom_out d
        UNION ALL SELECT m.grp, m.k, m.k2, m.line,
                         CASE WHEN m.warn_text IS NOT NULL THEN format('mailbox %s %s', to_json(m.raw), m.warn_text) END
                    FROM mbx_out m
        UNION ALL SELECT * FROM mbx_skip
        UNION ALL SELECT * FROM ali_out
        UNION ALL SELECT * FROM ali_case
        UNION ALL SELECT * FROM ali_skip
    ) o
    ORDER BY o.grp, o.k COLLATE "C", o.line IS NULL, o.k2 COLLATE "C"
    LOOP
        IF r.warn IS NOT NULL THEN
            RAISE WARNING 'ispmail: %', r.warn;
            n_warn := n_warn + 1;
        END IF;
        IF r.line IS NOT NULL THEN
            v_lines := v_lines || r.line;
            CASE r.grp WHEN 1 THEN n_dom := n_dom + 1; WHEN 2 THEN n_mbx := n_mbx + 1; ELSE n_ali := n_ali + 1; END CASE;
        END IF;
    END LOOP;

    PERFORM set_config('mailroster_import.lines', array_to_string(v_lines, E'\n'), true);
    RAISE NOTICE 'ispmail: % domains, % mailboxes, % aliases; % warnings%', n_dom, n_mbx, n_ali, n_warn,
        CASE WHEN n_warn > 0 THEN ' (see above: those rows are not imported as they were)' ELSE '' END;
END
$import$;

SELECT l FROM unnest(string_to_array(current_setting('mailroster_import.lines'), E'\n')) AS l;

COMMIT;
