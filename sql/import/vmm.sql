-- sql/import/vmm.sql - a vmm (Virtual Mail Manager 0.7) database as mailroster JSON lines.
--
-- Run against the SOURCE database, read only:
--
--   psql -X -At -f sql/import/vmm.sql VMMDB > dir.jsonl
--
-- JSON lines on stdout; the report (every row or field not imported as it
-- was, and why; format in _core.sql) on stderr.
-- With -v keys=on it prints instead the old setup's keys, one a line, for
-- mailroster verify --keys (the refused rows included; see _emit.sql).
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
--     mail).  users.name has no place in mailroster yet: reported per mailbox.
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
--     rejected today.  An alias address that is also a mailbox (the alias
--     won in vmm) becomes the mailbox's forwarding, reported as a note.
--   - catchall rows become the domain's catch-all "@domain" (vmm's catch-all
--     yields to mailboxes and aliases, like mailroster's); a destination
--     with %n or %= (the recipient's local part) cannot be expressed and is
--     dropped with a warning; %d is the domain.
--   - a mailbox's own transport (users.tid other than its domain's) becomes
--     a transport entry for its address; name is kept as display_name.
--   - relocated entries have no counterpart: each is reported.
--   - ASCII letters are lowercased; U-label domains are refused (vmm stores
--     A-labels, so there should be none).

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

BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SET LOCAL jit = off;
SET LOCAL mailroster_import.format = 'vmm';
SET LOCAL mailroster_import.default_pass_scheme = :'default_pass_scheme';

-- domains: the primary names; alias domains become a domain whose
-- catch-all rewrites to the primary, with sender lines
INSERT INTO pg_temp.mr_domain (ref, ord, name, quota_bytes, quota_messages)
SELECT format('domain_name %s', n.domainname), row_number() OVER (ORDER BY n.domainname COLLATE "C"), n.domainname,
       coalesce(q.bytes, 0), coalesce(q.messages, 0)
  FROM domain_name n JOIN domain_data dd ON dd.gid = n.gid LEFT JOIN quotalimit q ON q.qid = dd.qid;

-- (an alias domain's quota is its primary's: the domain line carries none)
UPDATE pg_temp.mr_domain d SET quota_bytes = 0, quota_messages = 0
  FROM domain_name n WHERE d.name = n.domainname AND NOT n.is_primary;
INSERT INTO pg_temp.mr_alias (ref, ord, source, destination)
SELECT format('domain_name %s (alias domain of %s)', a.domainname, p.domainname), 1000000000 + row_number() OVER (ORDER BY a.domainname COLLATE "C"),
       '@' || a.domainname, '@' || lower(p.domainname)
  FROM domain_name a JOIN domain_name p ON p.gid = a.gid AND p.is_primary
 WHERE NOT a.is_primary;
INSERT INTO pg_temp.mr_report (grp, ref, verdict, msg)
SELECT 1, format('domain_name %s (alias domain of %s)', a.domainname, p.domainname), 'note',
       format('alias domain "%s" of "%s": a domain whose catch-all rewrites to @%s, and every mailbox of %s may send as user@%s; logging in as user@%s no longer works',
              a.domainname, p.domainname, lower(p.domainname), lower(p.domainname), lower(a.domainname), lower(a.domainname))
  FROM domain_name a JOIN domain_name p ON p.gid = a.gid AND p.is_primary
 WHERE NOT a.is_primary;

-- mailboxes
INSERT INTO pg_temp.mr_mailbox (ref, ord, address, password, may_send, services, quota_bytes, quota_messages, home, mail, uid, gid, problem,
                                display_name)
SELECT format('users %s@%s', u.local_part, coalesce(p.domainname, '?')), u.uid, u.local_part || '@' || coalesce(p.domainname, '?'), u.passwd,
       coalesce(ss.smtp, true),
       ARRAY(SELECT x.s FROM (VALUES (1, 'imap', coalesce(ss.imap, true)), (2, 'pop3', coalesce(ss.pop3, true)),
                                     (3, 'submission', coalesce(ss.smtp, true)), (4, 'lmtp', true),
                                     (5, 'sieve', coalesce(ss.sieve, true))) AS x(o, s, on_) WHERE x.on_ ORDER BY x.o),
       q.bytes, q.messages,
       CASE WHEN dd.domaindir || '/' || u.uid ~ '^/' AND dd.domaindir !~ '[\x01-\x1f\x7f]' THEN dd.domaindir || '/' || u.uid END,
       f.format || ':~/' || ml.directory,
       CASE WHEN u.uid BETWEEN 1 AND 2147483647 THEN u.uid END,
       CASE WHEN u.gid BETWEEN 1 AND 2147483647 THEN u.gid END,
       CASE WHEN p.gid IS NULL THEN 'its domain (gid ' || u.gid || ') has no primary name: it never received mail' END,
       nullif(btrim(u.name), '')
  FROM users u
  LEFT JOIN domain_name p ON p.gid = u.gid AND p.is_primary
  LEFT JOIN domain_data dd ON dd.gid = u.gid
  LEFT JOIN service_set ss ON ss.ssid = coalesce(u.ssid, dd.ssid)
  LEFT JOIN quotalimit q ON q.qid = u.qid
  LEFT JOIN maillocation ml ON ml.mid = u.mid
  LEFT JOIN mailboxformat f ON f.fid = ml.fid;
INSERT INTO pg_temp.mr_report (grp, ref, ord, verdict, msg)
SELECT 2, format('users %s@%s', u.local_part, coalesce(p.domainname, '?')), u.uid, x.v, x.m
  FROM users u
  LEFT JOIN domain_name p ON p.gid = u.gid AND p.is_primary
  LEFT JOIN domain_data dd ON dd.gid = u.gid
  LEFT JOIN maillocation ml ON ml.mid = u.mid
  CROSS JOIN LATERAL (VALUES
      (CASE WHEN nullif(ml.extra, '') IS NOT NULL THEN 'not kept' END,
       format('mail location options %s are not kept', to_json(ml.extra))),
      (CASE WHEN NOT (u.uid BETWEEN 1 AND 2147483647 AND u.gid BETWEEN 1 AND 2147483647) THEN 'changed' END,
       format('uid %s / gid %s are beyond what mailroster stores (1 to 2147483647): imported without', u.uid, u.gid))
  ) AS x(v, m)
 WHERE x.v IS NOT NULL AND p.gid IS NOT NULL;

-- a mailbox's own transport (one that differs from its domain's): a
-- transport entry for its address
INSERT INTO pg_temp.mr_transport (ref, ord, pattern, transport)
SELECT format('users %s@%s', u.local_part, p.domainname), u.uid, u.local_part || '@' || p.domainname, t.transport
  FROM users u
  JOIN domain_name p ON p.gid = u.gid AND p.is_primary
  LEFT JOIN domain_data dd ON dd.gid = u.gid
  JOIN transport t ON t.tid = u.tid
 WHERE u.tid IS DISTINCT FROM dd.tid;

-- aliases: %n, %d and %= filled in for the address, as vmm's alias map does
INSERT INTO pg_temp.mr_alias (ref, ord, source, destination, problem)
SELECT format('alias %s@%s', a.address, p.domainname), row_number() OVER (ORDER BY p.domainname, a.address, a.destination),
       a.address || '@' || p.domainname,
       replace(replace(replace(btrim(a.destination), '%n', lower(a.address)), '%d', lower(p.domainname)), '%=', lower(a.address) || '=' || lower(p.domainname)),
       CASE WHEN a.address = '' THEN
            'it has an empty address: it looks like a catch-all but never matched (Postfix does not query an empty %u); importing it as one would accept mail that is rejected today' END
  FROM alias a JOIN domain_name p ON p.gid = a.gid AND p.is_primary;
-- catchall rows: the domain's catch-all; %n and %= cannot be expressed
INSERT INTO pg_temp.mr_alias (ref, ord, source, destination, dproblem)
SELECT format('catchall @%s', p.domainname), 500000000 + row_number() OVER (ORDER BY p.domainname, c.destination),
       '@' || p.domainname, replace(btrim(c.destination), '%d', lower(p.domainname)),
       CASE WHEN c.destination ~ '%[n=]' THEN 'uses %n or %= (the recipient''s local part), which a mailroster catch-all cannot express' END
  FROM catchall c JOIN domain_name p ON p.gid = c.gid AND p.is_primary;
-- senders: a mailbox may send as its local part in its alias domains
INSERT INTO pg_temp.mr_sender (ref, address, login)
SELECT format('domain_name %s (alias domain of %s)', a.domainname, p.domainname),
       lower(u.local_part) || '@' || lower(a.domainname), lower(u.local_part) || '@' || lower(p.domainname)
  FROM users u JOIN domain_name p ON p.gid = u.gid AND p.is_primary
  JOIN domain_name a ON a.gid = u.gid AND NOT a.is_primary;
-- relocated: no counterpart
INSERT INTO pg_temp.mr_report (grp, ref, verdict, msg)
SELECT 3, format('relocated %s@%s', rl.address, p.domainname), 'not imported',
       format('relocated "%s@%s" -> %s: mailroster has no relocated map (mail to it is rejected%s)',
              rl.address, p.domainname, to_json(rl.destination),
              CASE WHEN EXISTS (SELECT 1 FROM catchall c WHERE c.gid = rl.gid) THEN ', or caught by the catch-all' ELSE '' END)
  FROM relocated rl JOIN domain_name p ON p.gid = rl.gid AND p.is_primary;

\ir _emit.sql
