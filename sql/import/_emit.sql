-- _emit.sql - the end of every SQL importer (see _core.sql): check the
-- staging tables, print the report on stderr and the JSON lines on stdout,
-- end the (read-only) transaction.  Included with \ir; not an importer.
DO $$ BEGIN PERFORM pg_temp.mr_run(); END $$;
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
COMMIT;
