-- sql/import/bbs-mail-users.sql - BinktermPHP's mail integration (mail_users,
-- mail_aliases) as mailroster JSON lines.
--
-- Run against the SOURCE database, read only (its binkterm_mail role can):
--
--   psql -X -At -f sql/import/bbs-mail-users.sql binkterm > dir.jsonl
--   psql -X -At -v mail_base=/var/mail/vhosts -f sql/import/bbs-mail-users.sql binkterm > dir.jsonl
--
-- JSON lines on stdout; the report (every row or field not imported as it
-- was, and why; format in _core.sql) on stderr.
-- With -v keys=on it prints instead the old setup's keys, one a line, for
-- mailroster verify --keys (the refused rows included; see _emit.sql).
--
-- Source, as the BinktermPHP proposal writes it:
--   mail_users(id, user_id, email, mail_password, maildir, quota_mb,
--              enabled, created_at, updated_at)
--   mail_aliases(source, destination)   read by virtual_alias_maps.cf
--                                       (SELECT destination ... WHERE source = '%s')
-- with Postfix's virtual_mailbox_maps (maildir ... WHERE email = '%s' AND
-- enabled) and Dovecot's password_query (mail_password WHERE email = '%u'
-- AND enabled, default_pass_scheme = BLF-CRYPT) and user_query (home =
-- maildir, mail = 'maildir:' || maildir, quota_rule *:storage=<quota_mb>M).
-- An older mail_users with "password" instead of "mail_password" and no
-- maildir column is read too; mail_aliases is optional.
--
-- What it does:
--   - domains: -v domains='a.example,b.example', the names the old
--     virtual_mailbox_domains.cf lists in its query (addresses in other
--     domains never received mail: not imported, reported); without it,
--     the domains of the addresses.
--   - email: ASCII folded to lower case and reported (Postfix looked up
--     lower case and never found such a row; a login had to use the exact
--     case); a U-label domain becomes its A-label, reported; an apostrophe
--     or non-ASCII letters in the local part: a note (Dovecot's default
--     auth_username_chars refused that login; mailroster's driver takes it).
--   - mail_password: a {SCHEME} prefix is kept; without one the scheme its
--     form tells, reported per account with whether the old
--     default_pass_scheme (BLF-CRYPT; -v default_pass_scheme=) verified it;
--     schemes mailroster refuses: imported without a password, reported.
--   - maildir: kept exactly.  It must lie under mail_base (-v mail_base=,
--     default /var/mail/vhosts, the proposal's maildir_base; mailroster's
--     mail_base must be the same): the mailbox gets that path, relative to
--     mail_base, as its maildir (so its home is the old one) and
--     "maildir:<the old path>" as its mail location, as the old user_query
--     gave Dovecot.  A maildir elsewhere (an archive, a renamed directory)
--     is never replaced by a new one: the mailbox is not imported and the
--     report says how to carry it over.  Without a maildir column: -v
--     maildir=TEMPLATE (%d domain, %n local part, %u address, relative to
--     mail_base), else mailroster makes new maildirs, reported per mailbox.
--   - quota_mb: quota_bytes = quota_mb * 1048576 exactly (Dovecot's M is
--     MiB); 0 stays 0 (unlimited).  enabled -> enabled.
--   - id, user_id, created_at, updated_at: not kept (one report line).
--   - mail_aliases: one alias per source, destinations in row order (a
--     destination may list several, separated by commas); "@domain" is the
--     domain's catch-all (the query's '%s' matched it); the report notes
--     that it took every mailbox's mail too (no identity rows), which a
--     mailroster catch-all does not.  A source that is a mailbox becomes
--     that mailbox's forwarding (a copy kept when the row names the mailbox
--     too), reported as a note.
--   - the proposal sets no smtpd_sender_login_maps, so a logged-in member
--     could send as any address; mailroster lets a mailbox send as itself
--     and the aliases that lead to it (one report line).

\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only on
\pset pager off
\ir _core.sql

\if :{?default_pass_scheme}
\else
\set default_pass_scheme 'BLF-CRYPT'
\endif
\if :{?mail_base}
\else
\set mail_base '/var/mail/vhosts'
\endif
\if :{?maildir}
\else
\set maildir ''
\endif
\if :{?domains}
\else
\set domains ''
\endif
SELECT to_regclass('mail_users') IS NOT NULL AS mr_has_users,
       to_regclass('mail_aliases') IS NOT NULL AS mr_has_aliases \gset
\if :mr_has_users
\else
\warn 'bbs-mail-users: no table mail_users: is this the BBS database (and the right search_path)?'
\quit 1
\endif

CREATE FUNCTION pg_temp.mr_maildir(addr text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN strpos(addr, '@') > 0 THEN
           nullif(replace(replace(replace(current_setting('mailroster_import.maildir'),
                  '%d', right(addr, strpos(reverse(addr), '@') - 1)),
                  '%n', left(addr, length(addr) - strpos(reverse(addr), '@'))), '%u', addr), '') END
$$;

BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SET LOCAL jit = off;
SET LOCAL mailroster_import.format = 'bbs';
SET LOCAL mailroster_import.default_pass_scheme = :'default_pass_scheme';
SET LOCAL mailroster_import.mail_base = :'mail_base';
SET LOCAL mailroster_import.maildir = :'maildir';
SET LOCAL mailroster_import.domains = :'domains';
SET LOCAL mailroster_import.catchall_shadows = 'on';


INSERT INTO pg_temp.mr_mailbox (ref, ord, address, password, enabled, quota_bytes, maildir_path, mail, maildir)
SELECT format('mail_users id %s', coalesce(j ->> 'id', '?')), (j ->> 'id')::numeric, j ->> 'email',
       coalesce(j ->> 'mail_password', j ->> 'password'),
       coalesce((j ->> 'enabled')::boolean, true),
       CASE WHEN (j ->> 'quota_mb')::numeric >= 0 AND (j ->> 'quota_mb')::numeric = trunc((j ->> 'quota_mb')::numeric)
            THEN (j ->> 'quota_mb')::numeric * 1048576 END,
       j ->> 'maildir',
       CASE WHEN j ->> 'maildir' IS NOT NULL THEN 'maildir:' || (j ->> 'maildir') END,
       CASE WHEN NOT j ? 'maildir' THEN pg_temp.mr_maildir(j ->> 'email') END
  FROM (SELECT to_jsonb(u) AS j FROM mail_users u) s;

INSERT INTO pg_temp.mr_report (grp, ref, ord, verdict, msg)
SELECT 2, format('mail_users id %s', coalesce(j ->> 'id', '?')), (j ->> 'id')::numeric, 'changed',
       format('quota_mb %s is not a whole number from 0 up: imported without a quota of its own (the domain''s, unlimited by default)', j ->> 'quota_mb')
  FROM (SELECT to_jsonb(u) AS j FROM mail_users u) s
 WHERE j ->> 'quota_mb' IS NOT NULL AND NOT ((j ->> 'quota_mb')::numeric >= 0 AND (j ->> 'quota_mb')::numeric = trunc((j ->> 'quota_mb')::numeric))
UNION ALL
SELECT 2, format('mail_users id %s', coalesce(j ->> 'id', '?')), (j ->> 'id')::numeric, 'changed',
       'mail_users has no maildir column and no -v maildir=TEMPLATE was given: mailroster makes a new maildir; the old mail stays where it was'
  FROM (SELECT to_jsonb(u) AS j FROM mail_users u) s
 WHERE NOT j ? 'maildir' AND current_setting('mailroster_import.maildir') = ''
UNION ALL
SELECT 6, 'mail_users', NULL, 'not kept',
       format('columns %s have no place in mailroster (account metadata is planned); the BBS keeps them',
              string_agg(c.column_name, ', ' ORDER BY c.ordinal_position))
  FROM information_schema.columns c
 WHERE c.table_name = 'mail_users' AND c.table_schema = ANY (current_schemas(false))
   AND c.column_name NOT IN ('email', 'mail_password', 'password', 'maildir', 'quota_mb', 'enabled')
HAVING count(*) > 0
UNION ALL
SELECT 6, 'main.cf', NULL, 'note',
       'the BBS''s Postfix sets no smtpd_sender_login_maps, so a logged-in member could send as any address; with mailroster''s senders map (smtpd_sender_login_maps with reject_sender_login_mismatch) a mailbox sends as itself and as the aliases that lead to it';

-- the domains: -v domains=, as virtual_mailbox_domains.cf listed them, or
-- those of the addresses
INSERT INTO pg_temp.mr_domain (ref, ord, name)
SELECT 'virtual_mailbox_domains.cf', x.o, btrim(x.d)
  FROM regexp_split_to_table(current_setting('mailroster_import.domains'), '[,[:space:]]+') WITH ORDINALITY AS x(d, o)
 WHERE btrim(x.d) <> '';
INSERT INTO pg_temp.mr_domain (ref, name, implied)
SELECT DISTINCT 'mail_users', right(m.address, strpos(reverse(m.address), '@') - 1), true
  FROM pg_temp.mr_mailbox m
 WHERE strpos(m.address, '@') > 0 AND current_setting('mailroster_import.domains') = '';

\if :mr_has_aliases
INSERT INTO pg_temp.mr_alias (ref, ord, source, destination)
SELECT format('mail_aliases %s -> %s', a.j ->> 'source', a.j ->> 'destination'), a.n * 1000 + x.o, a.j ->> 'source', x.d
  FROM (SELECT to_jsonb(t) AS j, row_number() OVER (ORDER BY to_jsonb(t) ->> 'source' COLLATE "C", to_jsonb(t) ->> 'destination' COLLATE "C") AS n
          FROM mail_aliases t) a
  CROSS JOIN LATERAL (SELECT y.d, y.o FROM regexp_split_to_table(coalesce(a.j ->> 'destination', ''), '[,[:space:]]+') WITH ORDINALITY AS y(d, o)
                       WHERE y.d <> '' UNION ALL SELECT NULL, 1 WHERE coalesce(btrim(a.j ->> 'destination'), '') = '') x;
INSERT INTO pg_temp.mr_domain (ref, name, implied)
SELECT DISTINCT 'mail_aliases', right(a.source, strpos(reverse(a.source), '@') - 1), true
  FROM pg_temp.mr_alias a WHERE strpos(a.source, '@') > 0 AND current_setting('mailroster_import.domains') = '';
\endif

\ir _emit.sql
