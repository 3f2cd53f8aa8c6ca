-- sql/import/vmm.sql - a vmm (Virtual Mail Manager 0.7) database as mailroster JSON lines.
--
-- Run against the SOURCE database, read only:
--
--   psql -X -At -f sql/import/vmm.sql VMMDB > dir.jsonl
--
-- JSON lines on stdout; every row not imported as it was, and why, on
-- stderr as a WARNING; a NOTICE with the totals last.
--
-- Source tables (vmm's create_tables.pgsql): domain_name(domainname, gid,
-- is_primary), domain_data(gid, qid, ssid, tid, domaindir), users(local_part,
-- passwd, name, uid, gid, mid, qid, ssid, tid), alias(gid, address,
-- destination), catchall(gid, destination), relocated(gid, address,
-- destination), quotalimit(qid, bytes, messages), service_set(ssid, smtp,
-- pop3, imap, sieve), maillocation(mid, fid, directory, extra),
-- mailboxformat(fid, format), transport(tid, transport).
--
-- What it does:
--   - domains: each primary domain name; quota_bytes/quota_messages from the
--     domain's quotalimit, exactly (0 = unlimited in both).
--   - alias domains (is_primary false) become a domain with the catch-all
--     "@alias.domain" -> "@primary.domain", which delivers the same mail,
--     plus a sender line user@alias.domain for every mailbox of the primary
--     domain (vmm lets a mailbox send as its local part in every alias
--     domain).  Logging in as user@alias.domain does not carry over; each
--     alias domain is reported.
--   - mailboxes: address local_part@primary domain; password as stored
--     (vmm writes {SCHEME}hash; a hash without prefix gets one from its form
--     or -v default_pass_scheme=SCHEME, else no password, reported);
--     services from the user's service set, else the domain's: imap, pop3,
--     sieve as they are, smtp -> "submission" and may_send, lmtp always;
--     quota from the user's quotalimit, or null (= the domain's) when it has
--     none; uid, gid, home (domaindir/uid) and mail (format:~/directory) as
--     vmm gave them to Dovecot, so the mail stays where it is.  maildir is
--     left to mailroster (vmm delivers through Dovecot, which uses home and
--     mail).  users.name has no place in mailroster: counted in one warning.
--   - a password hash whose scheme or form mailroster refuses (plaintext
--     such as {PLAIN} or {PLAIN-MD5}, {MD5-CRYPT} and $1$, {ARGON2I}, DES
--     {CRYPT}, any scheme but {CRYPT}, {BLF-CRYPT}, {SHA512-CRYPT},
--     {SHA256-CRYPT} and {ARGON2ID}: mailroster.password_hash_problem()) is
--     reported, naming the mailbox and the scheme, and the mailbox is
--     imported without a password (it receives mail, cannot log in until it
--     gets a new one: mailroster user passwd).  A malformed hash of an
--     accepted scheme is passed on: mailroster's import refuses the file and
--     names the line (fix the source, then run this again).
--   - aliases: one alias per (domain, address); the destinations' %n, %d and
--     %= are filled in for that address, as vmm's postfix_virtual_alias_map
--     does.  An alias row with an empty address is reported and left out:
--     it looked like a catch-all but never matched (Postfix does not query
--     an empty %u), and importing it as one would accept mail that is
--     rejected today.  An alias address that is also a mailbox is refused
--     and named (the alias won in vmm; mailroster does not allow both).
--   - catchall rows become the domain's catch-all "@domain" (vmm's catch-all
--     yields to mailboxes and aliases, like mailroster's); a destination
--     with %n or %= (the recipient's local part) cannot be expressed and is
--     dropped with a warning; %d is the domain.
--   - relocated entries and per-user transports have no counterpart: each is
--     reported.
--   - ASCII letters are lowercased; U-label domains are refused (vmm stores
--     A-labels, so there should be none).

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
    n_snd   int := 0;
    n_warn  int := 0;
BEGIN
    IF current_setting('mailroster_import.default_pass_scheme') !~ '^[A-Za-z0-9.-]*$' THEN
        RAISE EXCEPTION 'vmm: -v default_pass_scheme must be a scheme name such as SHA512-CRYPT';
    END IF;

    FOR r IN
    WITH
    cfg AS (
        SELECT upper(current_setting('mailroster_import.default_pass_scheme')) AS defscheme
    ),
    -- domains ----------------------------------------------------------------
    dn AS (
        SELECT n.domainname AS raw, n.gid, n.is_primary,
               lower(n.domainname COLLATE "C") AS name
          FROM domain_name n
    ),
    dchk AS (
        SELECT n.*,
               CASE
                 WHEN n.name ~ '[^\x01-\x7f]' THEN
                      'is a U-label: store its A-label (xn--...) in domain_name; not imported, nor anything in it'
                 WHEN NOT (octet_length(n.name) BETWEEN 1 AND 253
                           AND n.name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$') THEN
                      'is not a valid domain name; not imported, nor anything in it'
               END AS problem
          FROM dn n
    ),
    prim AS (   -- gid -> primary name (only good ones)
        SELECT c.gid, c.name, dd.qid, dd.ssid, dd.tid, dd.domaindir
          FROM dchk c JOIN domain_data dd ON dd.gid = c.gid
         WHERE c.is_primary AND c.problem IS NULL
    ),
    adom AS (   -- alias domains of imported primaries
        SELECT c.name, c.raw, p.name AS target, p.gid
          FROM dchk c JOIN prim p ON p.gid = c.gid
         WHERE NOT c.is_primary AND c.problem IS NULL
    ),
    -- mailboxes --------------------------------------------------------------
    usrc AS (
        SELECT u.local_part AS raw_lp, u.passwd AS pw, u.name AS display_name, u.uid, u.gid, u.mid,
               u.qid, u.ssid, u.tid,
               lower(u.local_part COLLATE "C") AS lp,
               p.name AS dom, p.domaindir, p.ssid AS dssid, p.tid AS dtid
          FROM users u JOIN prim p ON p.gid = u.gid
    ),
    uchk AS (
        SELECT s.*, s.lp || '@' || s.dom AS addr, s.raw_lp || '@' || s.dom AS raw,
               CASE
                 WHEN NOT (octet_length(s.lp) BETWEEN 1 AND 64
                           AND s.lp !~ '^\.|\.$' AND strpos(s.lp, '..') = 0 AND strpos(s.lp, '+') = 0
                           AND s.lp !~ '[\x01-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]'
                           AND s.lp !~ '[]["@,\\()<>;:]') THEN
                      'has a local part mailroster does not accept for a mailbox (1 to 64 octets; no "+", spaces, control characters, @ , " \ ( ) < > [ ] ; :; no leading, trailing or double dot)'
                 WHEN octet_length(s.lp || '@' || s.dom) > 254 THEN 'is longer than 254 octets'
               END AS problem,
               row_number() OVER (PARTITION BY s.gid, s.lp ORDER BY (s.raw_lp = s.lp) DESC, s.uid) AS rn
          FROM usrc s
    ),
    mbx AS (
        SELECT c.*,
               hp.hash_in, hp.hash_refused,
               CASE WHEN hp.hash_refused IS NULL THEN hp.hash_in END AS password,
               ss.smtp, ss.pop3, ss.imap, ss.sieve,
               q.bytes AS qbytes, q.messages AS qmessages,
               c.domaindir || '/' || c.uid AS home,
               f.format || ':~/' || ml.directory AS mail,
               ml.extra AS mail_extra,
               CASE WHEN c.tid IS NOT NULL AND c.tid IS DISTINCT FROM c.dtid
                    THEN (SELECT t.transport FROM transport t WHERE t.tid = c.tid) END AS own_transport
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
          LEFT JOIN service_set ss ON ss.ssid = coalesce(c.ssid, c.dssid)
          LEFT JOIN quotalimit q ON q.qid = c.qid
          LEFT JOIN maillocation ml ON ml.mid = c.mid
          LEFT JOIN mailboxformat f ON f.fid = ml.fid
         WHERE c.problem IS NULL AND c.rn = 1
    ),
    -- aliases ----------------------------------------------------------------
    asrc AS (
        SELECT a.gid, a.address AS raw_lp, a.destination AS raw_dest, p.name AS dom,
               lower(a.address COLLATE "C") AS lp,
               row_number() OVER (PARTITION BY a.gid, a.address ORDER BY a.destination) AS o
          FROM alias a JOIN prim p ON p.gid = a.gid
    ),
    asrc2 AS (
        SELECT s.*, s.lp || '@' || s.dom AS source, s.raw_lp || '@' || s.dom AS raw_source,
               lower(replace(replace(replace(btrim(s.raw_dest), '%n', s.lp), '%d', s.dom), '%=', s.lp || '=' || s.dom) COLLATE "C") AS dest,
               false AS catchall
          FROM asrc s
        UNION ALL
        SELECT c.gid, '', c.destination, p.name, '', row_number() OVER (PARTITION BY c.gid ORDER BY c.destination),
               '@' || p.name, '@' || p.name,
               CASE WHEN c.destination ~ '%[n=]' THEN NULL
                    ELSE lower(replace(btrim(c.destination), '%d', p.name) COLLATE "C") END,
               true
          FROM catchall c JOIN prim p ON p.gid = c.gid
    ),
    asplit AS (
        SELECT s.*,
               CASE WHEN strpos(s.dest, '@') > 0
                    THEN left(s.dest, length(s.dest) - strpos(reverse(s.dest), '@')) END AS dlp,
               CASE WHEN strpos(s.dest, '@') > 0
                    THEN right(s.dest, strpos(reverse(s.dest), '@') - 1) END AS ddom
          FROM asrc2 s
    ),
    achk AS (
        SELECT s.*,
               CASE
                 WHEN NOT s.catchall AND s.lp = '' THEN
                      'has an empty address: it looks like a catch-all but never matched (Postfix does not query an empty %u); importing it as one would accept mail that is rejected today'
                 WHEN NOT s.catchall AND NOT (octet_length(s.lp) <= 64
                           AND s.lp !~ '^\.|\.$' AND strpos(s.lp, '..') = 0 AND strpos(s.lp, '+') = 0
                           AND s.lp !~ '[\x01-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]'
                           AND s.lp !~ '[]["@,\\()<>;:]') THEN
                      'has a local part mailroster does not accept for an alias (1 to 64 octets; no "+", spaces, control characters, @ , " \ ( ) < > [ ] ; :; no leading, trailing or double dot)'
                 WHEN octet_length(s.source) > 254 THEN 'is longer than 254 octets'
                 WHEN NOT s.catchall AND uu.lp IS NOT NULL THEN
                      'is also a mailbox, and mailroster does not allow an address to be both. Until now the alias decided where the mail went (vmm asks the alias table first) while the mailbox owner could still log in and send as it. Decide: drop the alias (mail goes to the mailbox) or the mailbox (mail follows the alias), in the source or in the JSON lines'
               END AS problem,
               CASE
                 WHEN s.dest IS NULL THEN 'uses %n or %= (the recipient''s local part), which a mailroster catch-all cannot express'
                 WHEN s.dest = '' THEN 'is empty'
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
          FROM asplit s
          LEFT JOIN (SELECT DISTINCT u.gid, u.lp FROM uchk u) uu ON uu.gid = s.gid AND uu.lp = s.lp
    ),
    agood AS (   -- each destination once, where it first appears
        SELECT a.source, a.dest, min(a.o) AS o FROM achk a
         WHERE a.problem IS NULL AND a.dproblem IS NULL GROUP BY a.source, a.dest
    ),
    ali AS (
        SELECT c.source, min(c.raw_source) AS raw_source, g.dests
          FROM achk c
          LEFT JOIN (SELECT a.source, array_agg(a.dest ORDER BY a.o) AS dests FROM agood a GROUP BY a.source) g
                 ON g.source = c.source
         WHERE c.problem IS NULL
         GROUP BY c.source, g.dests
    ),
    -- output -----------------------------------------------------------------
    out AS (
        SELECT 1 AS grp, p.name AS k, NULL::text AS k2,
               format('{"kind":"domain","name":%s,"enabled":true,"disabled_reason":null,'
                      '"quota_bytes":%s,"quota_messages":%s,"send_limit_messages":0,'
                      '"send_limit_recipients":0,"send_limit_window":3600}', to_json(p.name),
                      coalesce(q.bytes, 0), coalesce(q.messages, 0)) AS line,
               CASE WHEN c.raw <> c.name THEN format('domain %s becomes %s', to_json(c.raw), to_json(c.name)) END AS warn
          FROM prim p
          JOIN dchk c ON c.gid = p.gid AND c.is_primary
          LEFT JOIN quotalimit q ON q.qid = p.qid
        UNION ALL
        SELECT 1, a.name, NULL,
               format('{"kind":"domain","name":%s,"enabled":true,"disabled_reason":null,'
                      '"quota_bytes":0,"quota_messages":0,"send_limit_messages":0,'
                      '"send_limit_recipients":0,"send_limit_window":3600}', to_json(a.name)),
               format('alias domain %s of %s becomes a domain whose catch-all rewrites to @%s, and its mailboxes may send as user@%s; logging in as user@%s no longer works',
                      to_json(a.name), to_json(a.target), a.target, a.name, a.name)
          FROM adom a
        UNION ALL
        SELECT 1, c.name, NULL, NULL, format('domain %s %s', to_json(c.raw), c.problem)
          FROM dchk c WHERE c.problem IS NOT NULL
        UNION ALL
        -- mailboxes
        SELECT 2, m.addr, NULL,
               format('{"kind":"mailbox","address":%s,"password":%s,"enabled":true,"disabled_reason":null,'
                      '"may_send":%s,"may_receive":true,"services":%s,'
                      '"quota_bytes":%s,"quota_messages":%s,"send_limit_messages":null,'
                      '"send_limit_recipients":null,"home":%s,"mail":%s,"uid":%s,"gid":%s,"maildir":null}',
                      to_json(m.addr), coalesce(to_json(m.password)::text, 'null'),
                      to_json(coalesce(m.smtp, true)),
                      to_json(ARRAY(SELECT x.s FROM (VALUES (1, 'imap', coalesce(m.imap, true)),
                                                            (2, 'pop3', coalesce(m.pop3, true)),
                                                            (3, 'submission', coalesce(m.smtp, true)),
                                                            (4, 'lmtp', true),
                                                            (5, 'sieve', coalesce(m.sieve, true))) AS x(o, s, on_)
                                     WHERE x.on_ ORDER BY x.o)),
                      coalesce(m.qbytes::text, 'null'), coalesce(m.qmessages::text, 'null'),
                      CASE WHEN m.home ~ '^/' AND m.home !~ '[\x01-\x1f\x7f]' THEN to_json(m.home)::text ELSE 'null' END,
                      coalesce(to_json(m.mail)::text, 'null'),
                      CASE WHEN m.uid BETWEEN 1 AND 2147483647 THEN m.uid::text ELSE 'null' END,
                      CASE WHEN m.gid BETWEEN 1 AND 2147483647 THEN m.gid::text ELSE 'null' END),
               CASE WHEN w.t <> '' THEN format('mailbox %s %s', to_json(m.raw), w.t) END
          FROM mbx m
          CROSS JOIN LATERAL (SELECT concat_ws('; ',
               CASE WHEN m.raw <> m.addr THEN format('becomes %s', to_json(m.addr)) END,
               CASE WHEN m.pw = '' THEN 'has an empty password: imported without one (receives mail, cannot log in)'
                    WHEN m.hash_refused IS NOT NULL THEN
                         format('has a %s password hash, which mailroster refuses (%s): imported without a password (receives mail, cannot log in); set a new one with mailroster user passwd',
                                substring(m.hash_in from '^\{[^}]*\}'), m.hash_refused)
                    WHEN m.pw IS NOT NULL AND m.password IS NULL AND m.pw ~ '[\x01-\x1f\x7f]' THEN
                         'has control characters in its password hash: imported without a password (receives mail, cannot log in)'
                    WHEN m.pw IS NOT NULL AND m.password IS NULL THEN
                         format('has a password hash without {SCHEME} prefix whose scheme cannot be told from its form (%s characters): imported without a password (receives mail, cannot log in); pass -v default_pass_scheme=SCHEME to keep it',
                                length(m.pw)) END,
               CASE WHEN NOT (m.home ~ '^/' AND m.home !~ '[\x01-\x1f\x7f]') THEN
                    format('has the home %s, which is not an absolute path: imported without one', to_json(m.home)) END,
               CASE WHEN m.uid NOT BETWEEN 1 AND 2147483647 OR m.gid NOT BETWEEN 1 AND 2147483647 THEN
                    format('has uid %s / gid %s, beyond what mailroster stores (1 to 2147483647): imported without', m.uid, m.gid) END,
               CASE WHEN m.mail_extra IS NOT NULL AND m.mail_extra <> '' THEN
                    format('has mail location options %s, which are not imported', to_json(m.mail_extra)) END,
               CASE WHEN m.own_transport IS NOT NULL THEN
                    format('has its own transport %s, which mailroster does not have', to_json(m.own_transport)) END) AS t) w
        UNION ALL
        SELECT 2, c.addr, c.uid::text, NULL,
               format('mailbox %s (uid %s) %s; not imported', to_json(c.raw), c.uid,
                      coalesce(c.problem, format('has the same address as uid %s in another case',
                                                 (SELECT k.uid FROM uchk k WHERE k.gid = c.gid AND k.lp = c.lp AND k.rn = 1))))
          FROM uchk c
         WHERE c.problem IS NOT NULL OR c.rn > 1
        UNION ALL
        SELECT 2, '', NULL, NULL,
               format('%s mailboxes have a name (users.name); mailroster has no place for it, so it is not imported', count(*))
          FROM mbx m WHERE nullif(btrim(m.display_name), '') IS NOT NULL
        HAVING count(*) > 0
        UNION ALL
        SELECT 2, u.local_part || '@' || coalesce(p.name, ''), u.uid::text, NULL,
               format('mailbox %s (uid %s) is in a domain that is not imported (see above); not imported',
                      to_json(u.local_part || '@' || coalesce((SELECT n.domainname FROM domain_name n WHERE n.gid = u.gid AND n.is_primary), '?')),
                      u.uid)
          FROM users u LEFT JOIN prim p ON p.gid = u.gid
         WHERE p.gid IS NULL
        UNION ALL
        -- aliases
        SELECT 3, a.source, NULL,
               CASE WHEN a.dests IS NOT NULL THEN
                    format('{"kind":"alias","source":%s,"destinations":%s,"enabled":true}',
                           to_json(a.source), to_json(a.dests))
               END,
               nullif(concat_ws('; ',
                   CASE WHEN a.raw_source <> a.source THEN format('alias %s becomes %s', to_json(a.raw_source), to_json(a.source)) END,
                   CASE WHEN a.dests IS NULL THEN format('alias %s has no usable destination left; not imported', to_json(a.source)) END), '')
          FROM ali a
        UNION ALL
        SELECT 3, '@' || a.name, NULL,
               format('{"kind":"alias","source":%s,"destinations":%s,"enabled":true}',
                      to_json('@' || a.name), to_json(ARRAY['@' || a.target])),
               NULL
          FROM adom a
        UNION ALL
        SELECT 3, c.source, min(c.o)::text, NULL,
               format('alias %s -> %s %s; not imported', to_json(c.raw_source),
                      string_agg(to_json(c.raw_dest)::text, ', ' ORDER BY c.o), c.problem)
          FROM achk c
         WHERE c.problem IS NOT NULL
         GROUP BY c.source, c.raw_source, c.problem
        UNION ALL
        SELECT 3, c.source, c.o::text, NULL,
               format('%s %s: destination %s %s; dropped', CASE WHEN c.catchall THEN 'catch-all' ELSE 'alias' END,
                      to_json(c.source), to_json(c.raw_dest), c.dproblem)
          FROM achk c
         WHERE c.problem IS NULL AND c.dproblem IS NOT NULL
        UNION ALL
        SELECT 3, rl.address || '@' || p.name, NULL, NULL,
               format('relocated %s -> %s: mailroster has no relocated map; not imported (mail to it is rejected%s)',
                      to_json(rl.address || '@' || p.name), to_json(rl.destination),
                      CASE WHEN EXISTS (SELECT 1 FROM catchall c WHERE c.gid = rl.gid) THEN ', or caught by the catch-all' ELSE '' END)
          FROM relocated rl JOIN prim p ON p.gid = rl.gid
        UNION ALL
        -- senders: a mailbox may send as its local part in the alias domains
        SELECT 4, m.lp || '@' || a.name, m.addr,
               format('{"kind":"sender","address":%s,"login":%s}', to_json(m.lp || '@' || a.name), to_json(m.addr)),
               NULL
          FROM mbx m JOIN adom a ON a.gid = m.gid
    )
    SELECT o.grp, o.line, o.warn FROM out o
     ORDER BY o.grp, o.k COLLATE "C", o.line IS NULL, o.k2 COLLATE "C"
    LOOP
        IF r.warn IS NOT NULL THEN
            RAISE WARNING 'vmm: %', r.warn;
            n_warn := n_warn + 1;
        END IF;
        IF r.line IS NOT NULL THEN
            v_lines := v_lines || r.line;
            CASE r.grp WHEN 1 THEN n_dom := n_dom + 1; WHEN 2 THEN n_mbx := n_mbx + 1;
                       WHEN 3 THEN n_ali := n_ali + 1; ELSE n_snd := n_snd + 1; END CASE;
        END IF;
    END LOOP;

    PERFORM set_config('mailroster_import.lines', array_to_string(v_lines, E'\n'), true);
    RAISE NOTICE 'vmm: % domains, % mailboxes, % aliases, % senders; % warnings%', n_dom, n_mbx, n_ali, n_snd, n_warn,
        CASE WHEN n_warn > 0 THEN ' (see above: those rows are not imported as they were)' ELSE '' END;
END
$import$;

SELECT l FROM unnest(string_to_array(current_setting('mailroster_import.lines'), E'\n')) AS l;

COMMIT;
