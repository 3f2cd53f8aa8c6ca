-- sql/import/ispmail.sql - the ISP-mail tutorial's database as mailroster JSON lines.
--
-- Run against the SOURCE database (read only; nothing is written anywhere):
--
--   psql -X -At -f sql/import/ispmail.sql mail_server > dir.jsonl
--
-- then feed dir.jsonl to mailroster's import (dry run first).  The JSON
-- lines go to stdout; the report (every row or field not imported as it
-- was, and why; format in _core.sql) goes to stderr.
-- With -v keys=on it prints instead the old setup's keys, one a line, for
-- mailroster verify --keys (the refused rows included; see _emit.sql).
--
-- Two versions of the tutorial are read; the tables tell which:
--
-- A. The PostgreSQL tutorial (domains, users, aliases, shared_mailboxes):
--      domains(domain)
--      users(domain, local, password_hash, display_name)
--      aliases(source_local, source_domain, destination_local, destination_domain)
--      shared_mailboxes(shared_mailbox_local, shared_mailbox_domain,
--                       shared_to_local, shared_to_domain)
--    with Postfix's virtual_mailbox_maps on users_fqda (fqda='%s'),
--    virtual_alias_maps on aliases (source_local='%u' AND source_domain='%d'),
--    smtpd_sender_login_maps = both, Dovecot's password_query on users_fqda
--    (fqda='%u', default_pass_scheme = ARGON2ID) and a static userdb with
--    home=/var/vmail/%d/%n and mail_location = maildir:~/Maildir.
--    - domains: every row.  A name with upper-case letters never matched
--      (Postfix looks up lower case): imported lower-cased, reported.  A
--      U-label is imported as its A-label (xn--...), reported: mail to the
--      A-label was rejected until now.
--    - users: a mailbox each; maildir %d/%n/ from the stored domain and
--      local part (-v maildir=TEMPLATE), so the home stays
--      /var/vmail/<domain>/<local> exactly as Dovecot's static userdb made it
--      (mailroster's mail_base /var/vmail); the mail location stays Dovecot's
--      mail_location.  Mixed case is folded and reported (Postfix never found
--      those; a login had to use the exact case).  A local part with an
--      apostrophe or non-ASCII letters is reported as a note: Dovecot's
--      default auth_username_chars refused its login; mailroster's driver
--      takes it.  password_hash without {SCHEME}: the scheme its form tells
--      ($argon2id$ ARGON2ID, $2y$ BLF-CRYPT, $6$ SHA512-CRYPT, ...), reported
--      per account with whether the old default_pass_scheme (ARGON2ID; -v
--      default_pass_scheme=) verified it; schemes mailroster refuses:
--      imported without a password, reported.  display_name: kept.
--    - aliases: one alias per source, its destinations in row order.  A
--      source that is also a mailbox (the tutorial allows it: mail to alice
--      goes elsewhere while alice keeps her login and sending rights)
--      becomes that mailbox's forwarding (with a copy kept when a row also
--      names the mailbox), reported as a note.  An empty source_local never matched (Postfix does not query an
--      empty %u): not imported, reported.  Senders need no lines: mailroster
--      lets a mailbox send as itself and as the aliases that lead to it, as
--      the tutorial's smtpd_sender_login_maps did.
--    - shared_mailboxes: imported (mailroster's shares, which Dovecot's
--      acl_shared_dict reads through conf.d/dovecot); the dovecot-acl files
--      with the rights stay in the maildirs.
--
-- B. The older workaround.org tutorial (virtual_domains, virtual_users,
--    virtual_aliases): virtual_domains(id, name), virtual_users(id,
--    domain_id, email, password, quota) with quota in bytes, virtual_aliases
--    (id, domain_id, source, destination) with one row per destination; the
--    alias query compared source='%s', so "@domain" rows were catch-alls
--    (-v at_domain_aliases=skip if yours used %u: then they never matched).
--    The same rules apply; quota is kept in bytes.  The default_pass_scheme
--    is not assumed (-v default_pass_scheme=).
--
-- Options (psql -v NAME=VALUE):
--   maildir=TEMPLATE        each maildir relative to mailroster's mail_base;
--                           %d domain, %n local part, %u address, as stored;
--                           default '%d/%n/'; empty: mailroster makes new ones
--   default_pass_scheme=S   the old Dovecot default_pass_scheme
--   at_domain_aliases=catch-all|skip   (version B only)

\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only on
\pset pager off
\ir _core.sql

SELECT EXISTS (SELECT 1 FROM information_schema.columns
                WHERE table_name = 'aliases' AND column_name = 'source_local'
                  AND table_schema = ANY (current_schemas(false))) AS mr_v_seed,
       to_regclass('virtual_users') IS NOT NULL AS mr_v_old \gset
\if :mr_v_seed
\elif :mr_v_old
\else
\warn 'ispmail: neither the tutorial''s users/aliases tables (source_local, ...) nor virtual_users were found: is this the ISP-mail database (and the right search_path)?'
\quit 1
\endif

\if :{?maildir}
\else
\set maildir '%d/%n/'
\endif
\if :{?default_pass_scheme}
\elif :mr_v_seed
\set default_pass_scheme 'ARGON2ID'
\else
\set default_pass_scheme ''
\endif
\if :{?at_domain_aliases}
\else
\set at_domain_aliases 'catch-all'
\endif

CREATE FUNCTION pg_temp.mr_maildir(dom text, lp text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT nullif(replace(replace(replace(current_setting('mailroster_import.maildir'),
                                          '%d', dom), '%n', lp), '%u', lp || '@' || dom), '')
$$;

BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SET LOCAL jit = off;
SET LOCAL mailroster_import.format = 'ispmail';
SET LOCAL mailroster_import.default_pass_scheme = :'default_pass_scheme';
SET LOCAL mailroster_import.maildir = :'maildir';
SET LOCAL mailroster_import.at_domain_aliases = :'at_domain_aliases';

DO $$ BEGIN
    IF current_setting('mailroster_import.at_domain_aliases') NOT IN ('catch-all', 'skip') THEN
        RAISE EXCEPTION 'ispmail: -v at_domain_aliases must be catch-all or skip';
    END IF;
END $$;

\if :mr_v_seed
-- A: domains, users, aliases, shared_mailboxes
INSERT INTO pg_temp.mr_domain (ref, ord, name)
SELECT format('domains %s', d.domain), row_number() OVER (ORDER BY d.domain COLLATE "C"), d.domain
  FROM domains d;

INSERT INTO pg_temp.mr_mailbox (ref, ord, address, password, maildir, display_name)
SELECT format('users %s@%s', u.local, u.domain), row_number() OVER (ORDER BY u.domain COLLATE "C", u.local COLLATE "C"),
       u.local || '@' || u.domain, u.password_hash, pg_temp.mr_maildir(u.domain, u.local),
       nullif(to_jsonb(u) ->> 'display_name', '')
  FROM users u;

INSERT INTO pg_temp.mr_alias (ref, ord, source, destination, problem)
SELECT format('aliases %s@%s', a.source_local, a.source_domain),
       row_number() OVER (ORDER BY a.source_domain COLLATE "C", a.source_local COLLATE "C"),
       a.source_local || '@' || a.source_domain,
       a.destination_local || '@' || a.destination_domain,
       CASE WHEN a.source_local = '' THEN
            'its source_local is empty: the alias map queries source_local=''%u'', which Postfix never sends empty, so this row never matched; importing it as a catch-all would accept mail that is rejected today'
       END
  FROM aliases a;

-- the tutorial grants mail_user the view, not the table; the dovecot-acl
-- files (the rights) stay in the maildirs
INSERT INTO pg_temp.mr_share (ref, ord, mailbox, shared_with)
SELECT format('shared_mailboxes %s -> %s', s.shared_mailbox, s.shared_to),
       row_number() OVER (ORDER BY s.shared_mailbox COLLATE "C", s.shared_to COLLATE "C"),
       s.shared_mailbox, s.shared_to
  FROM view_shared_mailboxes s;
\else
-- B: virtual_domains, virtual_users, virtual_aliases
INSERT INTO pg_temp.mr_domain (ref, ord, name)
SELECT format('virtual_domains id %s', d.id), d.id, d.name FROM virtual_domains d;

INSERT INTO pg_temp.mr_mailbox (ref, ord, address, password, quota_bytes, maildir)
SELECT format('virtual_users id %s', u.id), u.id, u.email, u.password,
       CASE WHEN (to_jsonb(u) ->> 'quota')::numeric >= 0 THEN (to_jsonb(u) ->> 'quota')::numeric END,
       CASE WHEN strpos(u.email, '@') > 0 THEN
            pg_temp.mr_maildir(right(u.email, strpos(reverse(u.email), '@') - 1),
                               left(u.email, length(u.email) - strpos(reverse(u.email), '@'))) END
  FROM virtual_users u;
INSERT INTO pg_temp.mr_report (grp, ref, ord, verdict, msg)
SELECT 2, format('virtual_users id %s', u.id), u.id, 'changed',
       format('quota %s is negative: imported without a quota of its own (the domain''s)', to_jsonb(u) ->> 'quota')
  FROM virtual_users u WHERE (to_jsonb(u) ->> 'quota')::numeric < 0;

INSERT INTO pg_temp.mr_alias (ref, ord, source, destination, problem)
SELECT format('virtual_aliases id %s', a.id), a.id, a.source, a.destination,
       CASE WHEN a.source LIKE '@%' AND current_setting('mailroster_import.at_domain_aliases') = 'skip' THEN
            'its source has no local part; with -v at_domain_aliases=skip such a row never matched (Postfix does not query an empty %u), and importing it as a catch-all would accept mail that is rejected today'
       END
  FROM virtual_aliases a;
\endif

\ir _emit.sql
