-- sql/import/postfixadmin.sql - a PostfixAdmin database as mailroster JSON lines.
--
-- Run against the SOURCE (PostfixAdmin's PostgreSQL) database, read only:
--
--   psql -X -At -f sql/import/postfixadmin.sql POSTFIXADMINDB > dir.jsonl
--
-- JSON lines on stdout; every row not imported as it was, and why, on
-- stderr as a WARNING; a NOTICE with the totals last.
--
-- Source tables (columns read; others are ignored, and columns that older
-- versions lack are optional):
--   domain(domain, backupmx, active)            the row 'ALL' is skipped
--   mailbox(username, password, name, maildir, quota, active, smtp_active)
--   alias(address, goto, active)                goto: comma-separated
--   alias_domain(alias_domain, target_domain, active)
--
-- What it does:
--   - domains: active -> enabled.  backupmx domains are relayed, not hosted:
--     left out, reported.  The domain's total quota (domain.quota) has no
--     counterpart in mailroster and is reported when set; maxquota (a limit
--     for the web form) and transport are ignored.
--   - ASCII letters are lowercased (PostfixAdmin lowercases what it writes;
--     rows written by other means are reported).  A U-label domain is
--     refused with a warning, with everything in it.
--   - mailboxes: quota is already in bytes (PostfixAdmin multiplies the
--     form's MB by quota_multiplier before storing), so it is kept exactly;
--     0 stays 0 (unlimited).  active -> enabled; smtp_active = false ->
--     may_send false and no "submission" service.  maildir is kept as the
--     mailroster maildir (relative to the mail root, as PostfixAdmin's is to
--     virtual_mailbox_base); one mailroster refuses is reported and the
--     mailbox gets a new one.  Passwords: a {SCHEME} prefix is kept; without
--     one (PostfixAdmin's default md5crypt/php_crypt stores none) the scheme
--     comes from the hash's form ($1$ MD5-CRYPT, $2a$/$2b$/$2y$ BLF-CRYPT,
--     $5$ SHA256-CRYPT, $6$ SHA512-CRYPT, $y$ CRYPT, $argon2id$ ARGON2ID,
--     $argon2i$ ARGON2I), else from -v default_pass_scheme=SCHEME, else the
--     mailbox is imported without a password and reported.  The display
--     name (mailbox.name) has no place in mailroster: one warning counts
--     the mailboxes that have one.
--   - a password hash whose scheme or form mailroster refuses (plaintext
--     such as {PLAIN} or {PLAIN-MD5}, {MD5-CRYPT} and $1$, {ARGON2I}, DES
--     {CRYPT}, any scheme but {CRYPT}, {BLF-CRYPT}, {SHA512-CRYPT},
--     {SHA256-CRYPT} and {ARGON2ID}: mailroster.password_hash_problem()) is
--     reported, naming the mailbox and the scheme, and the mailbox is
--     imported without a password (it receives mail, cannot log in until it
--     gets a new one: mailroster user passwd).  A malformed hash of an
--     accepted scheme is passed on: mailroster's import refuses the file and
--     names the line (fix the source, then run this again).
--   - aliases: goto is split at commas (and white space).  The row
--     PostfixAdmin keeps for every mailbox (address = goto = the mailbox)
--     is dropped.  Any other alias row of a mailbox address (a forward, with
--     or without a copy to the mailbox) is refused and named: mailroster
--     does not allow an address to be both.  Vacation destinations
--     (user#domain@autoreply...) are dropped and reported.  "@domain" is the
--     domain's catch-all (PostfixAdmin's query, address='%s', matched it).
--   - alias_domain: when "simple" - active, the target is imported, and
--     the alias domain has no mailboxes or aliases of its own - it becomes
--     a domain with the catch-all "@alias.domain" -> "@target.domain", which
--     delivers the same mail.  Anything else is reported and left out.
--     Logins as user@alias.domain do not carry over.

\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only on
\pset pager off
\ir _hash.sql
\if :{?default_pass_scheme}
\else
\set default_pass_scheme ''
\endif

BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SET LOCAL work_mem = '64MB';   -- hashed lookups over all addresses
SET LOCAL jit = off;           -- compiling this one big query costs more than it saves
SET LOCAL enable_nestloop = off;  -- row estimates of the CTEs are poor; never loop over all addresses per address
SET LOCAL mailroster_import.default_pass_scheme = :'default_pass_scheme';

DO $import$
DECLARE
    r       record;
    v_lines text[] := '{}';
    n_dom   int := 0;
    n_mbx   int := 0;
    n_ali   int := 0;
    n_warn  int := 0;
BEGIN
    IF current_setting('mailroster_import.default_pass_scheme') !~ '^[A-Za-z0-9.-]*$' THEN
        RAISE EXCEPTION 'postfixadmin: -v default_pass_scheme must be a scheme name such as SHA512-CRYPT';
    END IF;
    IF to_regclass('alias_domain') IS NULL THEN
        RAISE EXCEPTION 'postfixadmin: no table alias_domain: is this a PostfixAdmin database (and the right search_path)?';
    END IF;

    FOR r IN
    WITH
    cfg AS (
        SELECT upper(current_setting('mailroster_import.default_pass_scheme')) AS defscheme
    ),
    -- domains ----------------------------------------------------------------
    dsrc AS (
        SELECT d.domain AS raw,
               lower(d.domain COLLATE "C") AS name,
               coalesce((to_jsonb(d) ->> 'active')::boolean, true) AS active,
               coalesce((to_jsonb(d) ->> 'backupmx')::boolean, false) AS backupmx,
               (to_jsonb(d) ->> 'quota')::numeric AS dquota
          FROM domain d
         WHERE d.domain <> 'ALL'
    ),
    dchk AS (
        SELECT s.*,
               CASE
                 WHEN s.name ~ '[^\x01-\x7f]' THEN
                      'is a U-label: store its A-label (xn--...) in PostfixAdmin, or add the domain with mailroster''s tools; the domain, its mailboxes and aliases are not imported'
                 WHEN NOT (octet_length(s.name) BETWEEN 1 AND 253
                           AND s.name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$') THEN
                      'is not a valid domain name; the domain, its mailboxes and aliases are not imported'
                 WHEN s.backupmx THEN
                      'is a backup MX domain (relayed, not hosted); not imported, nor anything in it'
               END AS problem,
               row_number() OVER (PARTITION BY s.name ORDER BY (s.raw = s.name) DESC, s.raw) AS rn
          FROM dsrc s
    ),
    doms AS (SELECT c.name, c.active FROM dchk c WHERE c.problem IS NULL AND c.rn = 1),
    -- mailboxes --------------------------------------------------------------
    usrc AS (
        SELECT m.username AS raw, m.password AS pw,
               lower(m.username COLLATE "C") AS addr,
               (to_jsonb(m) ->> 'quota')::numeric AS quota,
               to_jsonb(m) ->> 'maildir' AS src_maildir,
               coalesce((to_jsonb(m) ->> 'active')::boolean, true) AS active,
               coalesce((to_jsonb(m) ->> 'smtp_active')::boolean, true) AS smtp_active,
               nullif(btrim(to_jsonb(m) ->> 'name'), '') AS display_name
          FROM mailbox m
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
                 WHEN s.lp IS NULL THEN 'is not an address'
                 WHEN s.dom ~ '[^\x01-\x7f]' THEN 'has a U-label domain: store its A-label (xn--...) in the source'
                 WHEN dm.name IS NULL THEN
                      'is in a domain that is not imported (see above)'
                 WHEN NOT (octet_length(s.lp) BETWEEN 1 AND 64
                           AND s.lp !~ '^\.|\.$' AND strpos(s.lp, '..') = 0 AND strpos(s.lp, '+') = 0
                           AND s.lp !~ '[\x01-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]'
                           AND s.lp !~ '[]["@,\\()<>;:]') THEN
                      'has a local part mailroster does not accept for a mailbox (1 to 64 octets; no "+", spaces, control characters, @ , " \ ( ) < > [ ] ; :; no leading, trailing or double dot)'
                 WHEN octet_length(s.addr) > 254 THEN 'is longer than 254 octets'
               END AS problem,
               row_number() OVER (PARTITION BY s.addr ORDER BY (s.raw = s.addr) DESC, s.raw) AS rn
          FROM usplit s LEFT JOIN doms dm ON dm.name = s.dom
    ),
    mbx AS (
        SELECT c.*,
               hp.hash_in, hp.hash_refused,
               CASE WHEN hp.hash_refused IS NULL THEN hp.hash_in END AS password,
               c.src_maildir IS NOT NULL
               AND NOT (c.src_maildir ~ '^[^/].*/$' AND c.src_maildir !~ '(^|/)\.{1,2}/'
                        AND strpos(c.src_maildir, '//') = 0 AND c.src_maildir !~ '[\x01-\x1f\x7f]') AS bad_maildir
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
    -- aliases ----------------------------------------------------------------
    asrc AS (
        SELECT a.address AS raw_source,
               lower(a.address COLLATE "C") AS source,
               coalesce((to_jsonb(a) ->> 'active')::boolean, true) AS active,
               coalesce(a.goto, '') AS goto
          FROM alias a
    ),
    asplit AS (
        SELECT s.*,
               CASE WHEN strpos(s.source, '@') > 0
                    THEN left(s.source, length(s.source) - strpos(reverse(s.source), '@')) END AS lp,
               CASE WHEN strpos(s.source, '@') > 0
                    THEN right(s.source, strpos(reverse(s.source), '@') - 1) END AS dom,
               ARRAY(SELECT x.raw FROM regexp_split_to_table(s.goto, '[,[:space:]]+') WITH ORDINALITY AS x(raw, o)
                      WHERE x.raw <> '' ORDER BY x.o) AS raw_dests
          FROM asrc s
    ),
    -- the mailbox's own row: address = goto = the mailbox
    aself AS (
        SELECT s.* FROM asplit s
         WHERE s.source IN (SELECT mbx.addr FROM mbx)
           AND s.raw_dests <> '{}'
           AND (SELECT bool_and(lower(d COLLATE "C") = s.source
                                OR d ~ '#[^@]*@autoreply\.')
                  FROM unnest(s.raw_dests) AS d)
    ),
    achk AS (
        SELECT s.*,
               CASE
                 WHEN s.lp IS NULL THEN 'is not an address'
                 WHEN s.dom ~ '[^\x01-\x7f]' THEN 'has a U-label domain: store its A-label (xn--...) in the source'
                 WHEN dm.name IS NULL THEN
                      'is in a domain that is not imported (see above)'
                 WHEN s.lp <> '' AND NOT (octet_length(s.lp) <= 64
                           AND s.lp !~ '^\.|\.$' AND strpos(s.lp, '..') = 0 AND strpos(s.lp, '+') = 0
                           AND s.lp !~ '[\x01-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]'
                           AND s.lp !~ '[]["@,\\()<>;:]') THEN
                      'has a local part mailroster does not accept for an alias (1 to 64 octets; no "+", spaces, control characters, @ , " \ ( ) < > [ ] ; :; no leading, trailing or double dot)'
                 WHEN octet_length(s.source) > 254 THEN 'is longer than 254 octets'
                 WHEN s.lp <> '' AND mb.addr IS NOT NULL THEN
                      'is also a mailbox: a PostfixAdmin forward. mailroster does not allow an address to be both a mailbox and an alias. Until now the alias decided where the mailbox''s mail went (with a copy to the mailbox if its own address is in the list). Decide: drop the forward (mail goes to the mailbox only), or remove the mailbox, in the source or in the JSON lines'
               END AS problem,
               row_number() OVER (PARTITION BY s.source ORDER BY (s.raw_source = s.source) DESC, s.raw_source) AS rn
          FROM asplit s
          LEFT JOIN doms dm ON dm.name = s.dom
          LEFT JOIN mbx mb ON mb.addr = s.source
         WHERE s.raw_source NOT IN (SELECT aself.raw_source FROM aself)
    ),
    adest AS (
        SELECT c.source, x.o, x.raw AS raw_dest, x.dest,
               CASE WHEN strpos(x.dest, '@') > 0
                    THEN left(x.dest, length(x.dest) - strpos(reverse(x.dest), '@')) END AS dlp,
               CASE WHEN strpos(x.dest, '@') > 0
                    THEN right(x.dest, strpos(reverse(x.dest), '@') - 1) END AS ddom
          FROM achk c
          CROSS JOIN LATERAL (
              SELECT u.raw, lower(u.raw COLLATE "C") AS dest, u.o
                FROM unnest(c.raw_dests) WITH ORDINALITY AS u(raw, o)) x
         WHERE c.problem IS NULL AND c.rn = 1
    ),
    adchk AS (
        SELECT d.*,
               CASE
                 WHEN d.ddom IS NULL THEN 'is not an address'
                 WHEN d.dlp ~ '#' AND d.ddom ~ '^autoreply\.' THEN
                      'is PostfixAdmin''s vacation auto-reply, which mailroster does not have'
                 WHEN d.ddom ~ '[^\x01-\x7f]' THEN 'has a U-label domain; convert it to its A-label (xn--...)'
                 WHEN NOT (octet_length(d.ddom) BETWEEN 1 AND 253
                           AND d.ddom ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$') THEN
                      'has an invalid domain'
                 WHEN d.dlp <> '' AND NOT (octet_length(d.dlp) <= 64
                           AND d.dlp !~ '^\.|\.$' AND strpos(d.dlp, '..') = 0
                           AND d.dlp !~ '[\x01-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]'
                           AND d.dlp !~ '[]["@,\\()<>;:]') THEN
                      'has a local part mailroster does not accept'
                 WHEN octet_length(d.dest) > 254 THEN 'is longer than 254 octets'
                 WHEN d.dest = d.source THEN 'is the alias itself'
               END AS dproblem
          FROM adest d
    ),
    agood AS (   -- each destination once, where it first appears
        SELECT d.source, d.dest, min(d.o) AS o FROM adchk d WHERE d.dproblem IS NULL GROUP BY d.source, d.dest
    ),
    ali AS (
        SELECT c.source, c.raw_source, c.active, g.dests
          FROM achk c
          LEFT JOIN (SELECT a.source, array_agg(a.dest ORDER BY a.o) AS dests FROM agood a GROUP BY a.source) g
                 ON g.source = c.source
         WHERE c.problem IS NULL AND c.rn = 1
    ),
    -- alias domains ----------------------------------------------------------
    adsrc AS (
        SELECT lower(x.alias_domain COLLATE "C") AS name,
               lower(x.target_domain COLLATE "C") AS target,
               coalesce((to_jsonb(x) ->> 'active')::boolean, true) AS active
          FROM alias_domain x
    ),
    adchk2 AS (
        SELECT s.*,
               CASE
                 WHEN NOT s.active THEN 'is not active'
                 WHEN s.name ~ '[^\x01-\x7f]' OR s.target ~ '[^\x01-\x7f]' THEN
                      'has a U-label: store A-labels (xn--...) in the source'
                 WHEN NOT (octet_length(s.name) BETWEEN 1 AND 253
                           AND s.name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$') THEN
                      'is not a valid domain name'
                 WHEN s.name IN (SELECT c.name FROM dchk c WHERE c.problem IS NOT NULL) THEN
                      'is not imported (see above)'
                 WHEN s.target NOT IN (SELECT doms.name FROM doms) THEN
                      'points to a domain that is not imported'
                 WHEN s.name IN (SELECT mbx.dom FROM mbx)
                      OR s.name IN (SELECT substr(ali.source, strpos(ali.source, '@') + 1) FROM ali) THEN
                      'has mailboxes or aliases of its own, which a catch-all rewrite would shadow or be shadowed by'
               END AS problem
          FROM adsrc s
    ),
    -- output -----------------------------------------------------------------
    out AS (
        -- domains (alias domains included when they are not also in "domain")
        SELECT 1 AS grp, c.name AS k, NULL::text AS k2,
               CASE WHEN c.problem IS NULL AND c.rn = 1 THEN
                 format('{"kind":"domain","name":%s,"enabled":%s,"disabled_reason":null,'
                        '"quota_bytes":0,"quota_messages":0,"send_limit_messages":0,'
                        '"send_limit_recipients":0,"send_limit_window":3600}', to_json(c.name), to_json(c.active))
               END AS line,
               nullif(concat_ws('; ',
                   CASE WHEN c.problem IS NOT NULL THEN c.problem END,
                   CASE WHEN c.problem IS NULL AND c.rn = 1 AND c.raw <> c.name THEN
                        format('becomes %s', to_json(c.name)) END,
                   CASE WHEN c.problem IS NULL AND c.rn > 1 THEN
                        format('is the same domain as %s in another case; merged', to_json(c.name)) END,
                   CASE WHEN c.problem IS NULL AND c.rn = 1 AND c.dquota > 0 THEN
                        format('has a total quota of %s MB, which mailroster does not have (mailbox quotas are kept)', c.dquota) END),
                   '') AS warn,
               c.raw AS what
          FROM dchk c
        UNION ALL
        SELECT 1, s.name, NULL,
               format('{"kind":"domain","name":%s,"enabled":true,"disabled_reason":null,'
                      '"quota_bytes":0,"quota_messages":0,"send_limit_messages":0,'
                      '"send_limit_recipients":0,"send_limit_window":3600}', to_json(s.name)),
               NULL, s.name
          FROM adchk2 s
         WHERE s.problem IS NULL AND s.name NOT IN (SELECT c.name FROM dchk c)
        UNION ALL
        -- mailboxes
        SELECT 2, m.addr, NULL,
               format('{"kind":"mailbox","address":%s,"password":%s,"enabled":%s,"disabled_reason":null,'
                      '"may_send":%s,"may_receive":true,"services":%s,'
                      '"quota_bytes":%s,"quota_messages":null,"send_limit_messages":null,'
                      '"send_limit_recipients":null,"home":null,"mail":null,"uid":null,"gid":null,"maildir":%s}',
                      to_json(m.addr), coalesce(to_json(m.password)::text, 'null'), to_json(m.active),
                      to_json(m.smtp_active),
                      CASE WHEN m.smtp_active THEN '["imap","pop3","submission","lmtp","sieve"]'
                           ELSE '["imap","pop3","lmtp","sieve"]' END,
                      CASE WHEN m.quota >= 0 THEN m.quota::text ELSE 'null' END,
                      CASE WHEN m.bad_maildir THEN 'null' ELSE coalesce(to_json(m.src_maildir)::text, 'null') END),
               nullif(concat_ws('; ',
                   CASE WHEN m.raw <> m.addr THEN format('becomes %s', to_json(m.addr)) END,
                   CASE WHEN m.pw = '' THEN 'has an empty password: imported without one (receives mail, cannot log in)'
                        WHEN m.hash_refused IS NOT NULL THEN
                             format('has a %s password hash, which mailroster refuses (%s): imported without a password (receives mail, cannot log in); set a new one with mailroster user passwd',
                                    substring(m.hash_in from '^\{[^}]*\}'), m.hash_refused)
                        WHEN m.pw IS NOT NULL AND m.password IS NULL AND m.pw ~ '[\x01-\x1f\x7f]' THEN
                             'has control characters in its password hash: imported without a password (receives mail, cannot log in)'
                        WHEN m.pw IS NOT NULL AND m.password IS NULL THEN
                             format('has a password hash without {SCHEME} prefix whose scheme cannot be told from its form (%s characters): imported without a password (receives mail, cannot log in); pass -v default_pass_scheme=SCHEME (PostfixAdmin''s $CONF[''encrypt''] scheme) to keep it',
                                    length(m.pw)) END,
                   CASE WHEN m.quota < 0 THEN format('has quota %s: imported without a quota of its own', m.quota) END,
                   CASE WHEN m.bad_maildir THEN
                        format('has the maildir %s, which is not a relative path ending in "/": mailroster makes a new one', to_json(m.src_maildir)) END),
                   '') AS warn,
               m.raw
          FROM mbx m
        UNION ALL
        SELECT 2, coalesce(c.addr, ''), c.raw, NULL,
               CASE WHEN c.problem IS NOT NULL THEN c.problem || '; not imported'
                    ELSE format('is the same address as %s in another case; not imported',
                                to_json((SELECT k.raw FROM uchk k WHERE k.addr = c.addr AND k.rn = 1))) END,
               c.raw
          FROM uchk c
         WHERE c.problem IS NOT NULL OR c.rn > 1
        UNION ALL
        SELECT 2, '', NULL, NULL,
               format('%s mailboxes have a display name (mailbox.name); mailroster has no place for it, so it is not imported',
                      count(*)),
               NULL
          FROM mbx m WHERE m.display_name IS NOT NULL
        HAVING count(*) > 0
        UNION ALL
        -- aliases
        SELECT 3, a.source, NULL,
               CASE WHEN a.dests IS NOT NULL THEN
                    format('{"kind":"alias","source":%s,"destinations":%s,"enabled":%s}',
                           to_json(a.source), to_json(a.dests), to_json(a.active))
               END,
               nullif(concat_ws('; ',
                   CASE WHEN a.raw_source <> a.source THEN format('becomes %s', to_json(a.source)) END,
                   CASE WHEN a.dests IS NULL THEN 'has no usable destination left; not imported' END), ''),
               a.raw_source
          FROM ali a
        UNION ALL
        SELECT 3, coalesce(c.source, ''), c.raw_source, NULL,
               CASE WHEN c.problem IS NOT NULL THEN
                         format('-> %s %s; not imported', array_to_string(c.raw_dests, ', '), c.problem)
                    ELSE format('is the same address as %s in another case; not imported',
                                to_json((SELECT k.raw_source FROM achk k WHERE k.source = c.source AND k.rn = 1))) END,
               c.raw_source
          FROM achk c
         WHERE c.problem IS NOT NULL OR c.rn > 1
        UNION ALL
        SELECT 3, d.source, lpad(d.o::text, 6, '0'), NULL,
               format('destination %s %s; dropped', to_json(d.raw_dest), d.dproblem),
               d.source
          FROM adchk d
         WHERE d.dproblem IS NOT NULL
        UNION ALL
        SELECT 2, s.source, NULL, NULL,
               'has PostfixAdmin''s vacation auto-reply switched on, which mailroster does not have; dropped',
               s.raw_source
          FROM aself s
         WHERE EXISTS (SELECT 1 FROM unnest(s.raw_dests) AS d WHERE d ~ '#[^@]*@autoreply\.')
        UNION ALL
        SELECT 3, '@' || s.name, NULL,
               CASE WHEN s.problem IS NULL THEN
                    format('{"kind":"alias","source":%s,"destinations":%s,"enabled":true}',
                           to_json('@' || s.name), to_json(ARRAY['@' || s.target]))
               END,
               CASE WHEN s.problem IS NOT NULL THEN
                    format('alias domain %s -> %s %s; not imported', to_json(s.name), to_json(s.target), s.problem)
               END,
               NULL
          FROM adchk2 s
    )
    SELECT o.grp, o.k, o.line,
           CASE WHEN o.warn IS NULL THEN NULL
                WHEN o.what IS NULL THEN o.warn
                ELSE format('%s %s %s', CASE o.grp WHEN 1 THEN 'domain' WHEN 2 THEN 'mailbox' ELSE 'alias' END,
                            to_json(o.what), o.warn)
           END AS warn
      FROM out o
     ORDER BY o.grp, o.k COLLATE "C", o.line IS NULL, o.k2 COLLATE "C"
    LOOP
        IF r.warn IS NOT NULL THEN
            RAISE WARNING 'postfixadmin: %', r.warn;
            n_warn := n_warn + 1;
        END IF;
        IF r.line IS NOT NULL THEN
            v_lines := v_lines || r.line;
            CASE r.grp WHEN 1 THEN n_dom := n_dom + 1; WHEN 2 THEN n_mbx := n_mbx + 1; ELSE n_ali := n_ali + 1; END CASE;
        END IF;
    END LOOP;

    PERFORM set_config('mailroster_import.lines', array_to_string(v_lines, E'\n'), true);
    RAISE NOTICE 'postfixadmin: % domains, % mailboxes, % aliases; % warnings%', n_dom, n_mbx, n_ali, n_warn,
        CASE WHEN n_warn > 0 THEN ' (see above: those rows are not imported as they were)' ELSE '' END;
END
$import$;

SELECT l FROM unnest(string_to_array(current_setting('mailroster_import.lines'), E'\n')) AS l;

COMMIT;
