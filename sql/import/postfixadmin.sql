-- sql/import/postfixadmin.sql - a PostfixAdmin database as mailroster JSON lines.
--
-- Run against the SOURCE (PostfixAdmin's PostgreSQL) database, read only:
--
--   psql -X -At -f sql/import/postfixadmin.sql POSTFIXADMINDB > dir.jsonl
--
-- JSON lines on stdout; the report (every row or field not imported as it
-- was, and why; format in _core.sql) on stderr.
-- With -v keys=on it prints instead the old setup's keys, one a line, for
-- mailroster verify --keys (the refused rows included; see _emit.sql).
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
--     left out, reported.  The row 'ALL' (PostfixAdmin's superadmin
--     pseudo-domain) is no mail domain: reported, not imported.  The domain's total quota (domain.quota) has no
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
--     name (mailbox.name) is kept.
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
--     or without a copy to the mailbox) becomes the mailbox's forwarding,
--     with keep_copy when goto names the mailbox too, reported as a note.  Vacation destinations
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
\ir _core.sql
\if :{?default_pass_scheme}
\else
\set default_pass_scheme ''
\endif
SELECT to_regclass('alias_domain') IS NOT NULL AS mr_is_pfa \gset
\if :mr_is_pfa
\else
\warn 'postfixadmin: no table alias_domain: is this a PostfixAdmin database (and the right search_path)?'
\quit 1
\endif

BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SET LOCAL jit = off;
SET LOCAL mailroster_import.format = 'postfixadmin';
SET LOCAL mailroster_import.default_pass_scheme = :'default_pass_scheme';

-- domains
INSERT INTO pg_temp.mr_domain (ref, ord, name, enabled, problem)
SELECT format('domain %s', d.domain), row_number() OVER (ORDER BY d.domain COLLATE "C"), d.domain,
       coalesce((to_jsonb(d) ->> 'active')::boolean, true),
       CASE WHEN coalesce((to_jsonb(d) ->> 'backupmx')::boolean, false) THEN
            'is a backup MX domain (relayed, not hosted)' END
  FROM domain d WHERE d.domain <> 'ALL';
INSERT INTO pg_temp.mr_report (grp, ref, verdict, msg)
SELECT 1, 'domain ALL', 'not imported', 'PostfixAdmin''s superadmin pseudo-domain is no mail domain'
  FROM domain d WHERE d.domain = 'ALL'
UNION ALL
SELECT 1, format('domain %s', d.domain), 'not kept',
       format('its total quota of %s MB is not kept: mailroster has no domain-wide total (mailbox quotas are kept)', to_jsonb(d) ->> 'quota')
  FROM domain d WHERE d.domain <> 'ALL' AND (to_jsonb(d) ->> 'quota')::numeric > 0
   AND NOT coalesce((to_jsonb(d) ->> 'backupmx')::boolean, false);

-- mailboxes
INSERT INTO pg_temp.mr_mailbox (ref, ord, address, password, enabled, may_send, services, quota_bytes, maildir,
                                display_name)
SELECT format('mailbox %s', m.username), row_number() OVER (ORDER BY m.username COLLATE "C"), m.username, m.password,
       coalesce((to_jsonb(m) ->> 'active')::boolean, true),
       coalesce((to_jsonb(m) ->> 'smtp_active')::boolean, true),
       CASE WHEN coalesce((to_jsonb(m) ->> 'smtp_active')::boolean, true) THEN '{imap,pop3,submission,lmtp,sieve}'
            ELSE '{imap,pop3,lmtp,sieve}' END::text[],
       CASE WHEN (to_jsonb(m) ->> 'quota')::numeric >= 0 THEN (to_jsonb(m) ->> 'quota')::numeric END,
       nullif(to_jsonb(m) ->> 'maildir', ''),
       nullif(btrim(to_jsonb(m) ->> 'name'), '')
  FROM mailbox m;
INSERT INTO pg_temp.mr_report (grp, ref, ord, verdict, msg)
SELECT 2, format('mailbox %s', m.username), m.n, 'changed',
       format('quota %s is negative: imported without a quota of its own', m.j ->> 'quota')
  FROM (SELECT x.username, to_jsonb(x) AS j, row_number() OVER (ORDER BY x.username COLLATE "C") AS n FROM mailbox x) m
 WHERE (m.j ->> 'quota')::numeric < 0;

-- aliases: goto split; the row every mailbox has (address = goto = the
-- mailbox, perhaps with its vacation address) is not an alias
WITH src AS (
    SELECT a.address, a.goto, coalesce((to_jsonb(a) ->> 'active')::boolean, true) AS active,
           row_number() OVER (ORDER BY a.address COLLATE "C") AS n,
           ARRAY(SELECT x.d FROM regexp_split_to_table(coalesce(a.goto, ''), '[,[:space:]]+') WITH ORDINALITY AS x(d, o)
                  WHERE x.d <> '' ORDER BY x.o) AS dests
      FROM alias a
),
own AS (   -- the mailbox's own row
    SELECT s.* FROM src s
     WHERE EXISTS (SELECT 1 FROM mailbox m WHERE m.username = s.address)
       AND s.dests <> '{}'
       AND (SELECT bool_and(d = s.address OR d ~ '#[^@]*@autoreply\.') FROM unnest(s.dests) AS d)
),
rep AS (
    INSERT INTO pg_temp.mr_report (grp, ref, ord, verdict, msg)
    SELECT 3, format('alias %s', o.address), o.n, 'not imported',
           'PostfixAdmin''s vacation auto-reply is switched on for this mailbox; mailroster has no auto-reply, so it is dropped (the mailbox is imported)'
      FROM own o WHERE EXISTS (SELECT 1 FROM unnest(o.dests) AS d WHERE d ~ '#[^@]*@autoreply\.')
    RETURNING 1
)
INSERT INTO pg_temp.mr_alias (ref, ord, source, destination, enabled, dproblem)
SELECT format('alias %s', s.address), s.n * 1000 + x.o, s.address, x.d, s.active,
       CASE WHEN x.d ~ '#[^@]*@autoreply\.' THEN 'is PostfixAdmin''s vacation auto-reply, which mailroster does not have' END
  FROM src s
  CROSS JOIN LATERAL (SELECT u.d, u.o FROM unnest(s.dests) WITH ORDINALITY AS u(d, o)
                      UNION ALL SELECT NULL, 1 WHERE s.dests = '{}') x
 WHERE s.address NOT IN (SELECT own.address FROM own)
   AND (SELECT count(*) FROM rep) >= 0;

-- alias domains: "@alias" -> "@target", when that delivers the same mail
INSERT INTO pg_temp.mr_alias (ref, ord, source, destination, enabled, problem)
SELECT format('alias_domain %s -> %s', x.alias_domain, x.target_domain), 1000000000 + row_number() OVER (ORDER BY x.alias_domain COLLATE "C"),
       '@' || x.alias_domain, '@' || x.target_domain, true,
       CASE
         WHEN NOT coalesce((to_jsonb(x) ->> 'active')::boolean, true) THEN 'the alias domain is not active'
         WHEN NOT EXISTS (SELECT 1 FROM domain d WHERE d.domain = x.target_domain AND NOT coalesce((to_jsonb(d) ->> 'backupmx')::boolean, false)) THEN
              'it points to a domain that is not imported'
         WHEN EXISTS (SELECT 1 FROM mailbox m WHERE lower(split_part(m.username, '@', 2)) = lower(x.alias_domain))
              OR EXISTS (SELECT 1 FROM alias a WHERE lower(substr(a.address, strpos(a.address, '@') + 1)) = lower(x.alias_domain)) THEN
              'the alias domain has mailboxes or aliases of its own, which a catch-all rewrite would shadow or be shadowed by'
       END
  FROM alias_domain x;
INSERT INTO pg_temp.mr_report (grp, ref, verdict, msg)
SELECT 3, format('alias_domain %s -> %s', x.alias_domain, x.target_domain), 'note',
       'mail to user@' || x.alias_domain || ' is delivered as before (the catch-all @' || x.alias_domain || ' -> @' || x.target_domain || '); logging in or sending as user@' || x.alias_domain || ' does not carry over'
  FROM alias_domain x WHERE coalesce((to_jsonb(x) ->> 'active')::boolean, true);

\ir _emit.sql
