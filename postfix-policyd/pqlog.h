/* pqlog.h - libpq's notices and server messages into the project log.
 *
 * Without a notice receiver libpq prints NOTICE/WARNING lines, and the
 * FATAL a server sends before it closes an idle connection ("terminating
 * connection due to administrator command"), to stderr: no
 * "mailrosterd[pid]:" prefix, and nothing at all under syslog. Attach to
 * every connection right after it is made. Messages from the server never
 * carry a password (libpq does not echo the conninfo), but they are
 * logged as one sanitised line all the same.
 */
#ifndef MR_PQLOG_H
#define MR_PQLOG_H

#include <stddef.h>

struct pg_conn; /* libpq's PGconn */

/* WHO names the connection in each line ("database"); it must outlive
 * the connection (a string literal). */
void pqlog_attach(struct pg_conn *conn, const char *who);

/* --- pure helpers (unit-tested) --- */

enum pqlog_level { PQLOG_DEBUG, PQLOG_INFO, PQLOG_WARN };

/* The level for a message by its severity word: the untranslated
 * severity field, or the message itself ("FATAL:  ..."). WARNING, ERROR,
 * FATAL, PANIC and anything unknown (a translated word) are warnings;
 * NOTICE, INFO and LOG are info; DEBUG1..5 are debug. */
enum pqlog_level pqlog_level(const char *severity);

/* MSG as one log line in DST: trailing newlines dropped, each further
 * line (DETAIL, HINT) joined with "; ", runs of blanks made one, other
 * control characters made '?'. Returns DST. */
const char *pqlog_text(char *dst, size_t len, const char *msg);

#endif
