/* quota_db.h - the thread that follows mailroster.quota_usage (the usage
 * Dovecot's quota dict writes) for the RCPT quota check.
 *
 * It reads the whole table at start and every QUOTA_DB_WHOLE_EVERY
 * seconds, and in between, every QUOTA_DB_POLL seconds, only the rows
 * written since its last read (xact_id, migration 0007). Each read is
 * handed to the event loop as a message; the loop owns the live table and
 * merges or replaces. The loop never waits for this thread: while
 * PostgreSQL is away the last usage read stays in use. */
#ifndef MR_QUOTA_DB_H
#define MR_QUOTA_DB_H

#include "quota.h"

#define QUOTA_DB_POLL 1.0           /* s between two reads of the changed rows */
#define QUOTA_DB_WHOLE_EVERY 600.0  /* s between two reads of the whole table (deleted rows) */
#define QUOTA_DB_TIMEOUT_MS 30000   /* statement_timeout of this thread's connection */

struct quota_msg {
    int whole;                  /* usage is the whole table: replace the live one */
    struct quota_usage *usage;  /* the rows read; the loop takes them */
    struct quota_msg *next;
};

void quota_msg_free(struct quota_msg *m);

typedef void (*quota_db_post_fn)(struct quota_msg *m);

/* One thread with its own connection to conninfo (the reader role). */
void quota_db_start(const char *conninfo, quota_db_post_fn post);

/* For status: whether the last read worked, and the wall-clock time of the
 * last one that did (0 = none yet). */
void quota_db_state(int *up, double *last_read);

#endif
