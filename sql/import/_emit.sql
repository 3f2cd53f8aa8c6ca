-- _emit.sql - the end of every SQL importer (see _core.sql): check the
-- staging tables, print the report on stderr and the JSON lines on stdout,
-- end the (read-only) transaction.  Included with \ir; not an importer.
--
-- With psql -v keys=on it prints instead the old setup's keys, one a line,
-- for "mailroster verify --keys": every domain, mailbox address, alias
-- source, sender address and transport pattern as stored and as mailroster
-- would store it, the rows the import refuses included (the ones verify
-- must show), and a count on stderr.  Keys with control characters cannot
-- be asked through postmap and are left out.
DO $$ BEGIN PERFORM pg_temp.mr_run(); END $$;
\if :{?keys}
\else
\set keys off
\endif
\if :keys
SELECT current_setting('mailroster_import.format') AS mr_format \gset
SELECT y.k FROM (
    SELECT DISTINCT x.k FROM (
        SELECT d.name FROM pg_temp.mr_domain d UNION ALL SELECT d.canon FROM pg_temp.mr_domain d
        UNION ALL SELECT m.address FROM pg_temp.mr_mailbox m UNION ALL SELECT m.addr FROM pg_temp.mr_mailbox m
        UNION ALL SELECT a.source FROM pg_temp.mr_alias a UNION ALL SELECT a.src FROM pg_temp.mr_alias a
        UNION ALL SELECT s.address FROM pg_temp.mr_sender s
        UNION ALL SELECT t.pattern FROM pg_temp.mr_transport t UNION ALL SELECT t.canon FROM pg_temp.mr_transport t
    ) x(k)
     WHERE btrim(x.k) <> '' AND x.k !~ '[\x01-\x1f\x7f]'
) y ORDER BY y.k COLLATE "C";
\warn :mr_format: :ROW_COUNT keys of the old setup, for mailroster verify --keys
\else
SELECT coalesce(string_agg(format('%s: %s: %s: %s', current_setting('mailroster_import.format'), r.ref, r.verdict, r.msg),
                           E'\n' ORDER BY r.grp, r.ord NULLS LAST, r.ref COLLATE "C", r.seq), '') AS mr_report,
       count(*) > 0 AS mr_has_report
  FROM pg_temp.mr_report r \gset
\if :mr_has_report
\warn :mr_report
\endif
SELECT format('%s: imported %s domains, %s mailboxes, %s aliases, %s senders, %s master users, %s transports, %s shares, %s sieve scripts; report: %s not imported, %s changed, %s not kept, %s notes',
              current_setting('mailroster_import.format'),
              (SELECT count(*) FROM pg_temp.mr_out WHERE grp = 1), (SELECT count(*) FROM pg_temp.mr_out WHERE grp = 2),
              (SELECT count(*) FROM pg_temp.mr_out WHERE grp = 3), (SELECT count(*) FROM pg_temp.mr_out WHERE grp = 4),
              (SELECT count(*) FROM pg_temp.mr_out WHERE grp = 5), (SELECT count(*) FROM pg_temp.mr_out WHERE grp = 6),
              (SELECT count(*) FROM pg_temp.mr_out WHERE grp = 7), (SELECT count(*) FROM pg_temp.mr_out WHERE grp = 8),
              (SELECT count(*) FROM pg_temp.mr_report WHERE verdict = 'not imported'),
              (SELECT count(*) FROM pg_temp.mr_report WHERE verdict = 'changed'),
              (SELECT count(*) FROM pg_temp.mr_report WHERE verdict = 'not kept'),
              (SELECT count(*) FROM pg_temp.mr_report WHERE verdict = 'note')) AS mr_summary \gset
\warn :mr_summary
SELECT o.line FROM pg_temp.mr_out o ORDER BY o.grp, o.k COLLATE "C";
\endif
COMMIT;
