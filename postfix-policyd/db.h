/* db.h - the database thread: loads the directory from PostgreSQL and
 * follows its change log.
 *
 * libpq calls block, so they run in a thread of their own and never on
 * the event loop. The thread hands its results over as messages: a whole
 * new directory (first load, or when the change log cannot bridge the gap)
 * or a batch of changes in sequence order. LISTEN/NOTIFY only wakes it; the
 * change sequence is the truth, and a periodic poll covers a silent
 * connection. After a lost connection it reconnects with backoff and
 * catches up from the last change it handed over. */
#ifndef MR_DB_H
#define MR_DB_H

#include <stddef.h>
#include <stdint.h>

#include "dir.h"

/* schema versions this daemon works with (sql/migrations) */
#define MR_SCHEMA_MIN 1
#define MR_SCHEMA_VERSION 18
/* the first with mailroster.settings.database_id (0014_database_identity.sql) */
#define MR_SCHEMA_IDENTITY 14
/* the first with mailboxes.send_suspended_reason (0006_suspend_sending.sql) */
#define MR_SCHEMA_SUSPEND 6

enum db_msg_type {
    DBM_FULL,     /* dir: a complete directory */
    DBM_BRIDGED,  /* the change log reaches back to db_start's base_seq: changes follow */
    DBM_CHANGES,  /* changes[n], then the directory is at max_seq */
    DBM_CAUGHT_UP, /* a connection's first catch-up is done: the log ends at max_seq;
                      text: the database's identity (NULL: it has none) */
    DBM_FOREIGN,  /* the directory the loop has (the snapshot, or an earlier load) is of
                     another database (text says which): a full load follows */
    DBM_UP,       /* connected; text says to what */
    DBM_DOWN,     /* connection lost or refused; text says why */
    DBM_FATAL,    /* the database is reachable but unusable (schema, rights) */
};

struct db_msg {
    enum db_msg_type type;
    struct dir *dir;
    struct dir_change *changes;
    size_t n;
    size_t done;                /* changes applied so far (event loop) */
    uint64_t max_seq;
    char *text;
    struct db_msg *next;
};

void db_msg_free(struct db_msg *m);

typedef void (*db_post_fn)(struct db_msg *m, void *arg);

struct db;
/* base_seq: the change of a snapshot read at start (0: none), base_id:
 * the identity of the database it is of (NULL or "": unknown). When the
 * change log reaches back to it, the thread posts DBM_BRIDGED and then
 * the changes after it, instead of a full load; while PostgreSQL is
 * unreachable the caller answers from it, and catches up from it later.
 * Change numbers say nothing about whose they are: when the database's
 * identity is known and differs from base_id (or, after a reconnect, from
 * the identity of what was loaded), the thread posts DBM_FOREIGN and loads
 * in full. An unknown identity on either side (a format 4 snapshot, a
 * database before migration 0014) leaves the decision to the numbers. */
struct db *db_start(const char *conninfo, int poll_interval, uint64_t base_seq, const char *base_id,
                    db_post_fn post, void *arg);
void db_set_poll_interval(struct db *db, int seconds);

#endif
