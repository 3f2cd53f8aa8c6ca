/* adm_db.h - the admin database thread: runs provisioning jobs, one
 * transaction each, on a connection of its own (the admin role). */
#ifndef MR_ADM_DB_H
#define MR_ADM_DB_H

#include <stdint.h>

#include "admproto.h"
#include "buf.h"

struct pg_conn;

/* A write, prepared and validated on the event loop; run in the thread. */
struct adm_job {
    struct srv_conn *conn;
    const char *cmd;                 /* "user add", ... */
    int (*run)(void *pg, struct adm_job *j);
    struct adm_args args;            /* the request words */
    char actor[128];                 /* who asked (for the audit log) */
    /* prepared values */
    char *key1, *key2;               /* domain name / local part / address */
    int nset;
    const char *set_col[24];
    const char *set_cast[24];
    char *set_val[24];
    char **list;                     /* destinations */
    int nlist;
    int flag;                        /* --force / --purge / --dry-run */
    int read_only;                   /* runs beside the writes, not behind them */
    int soft;                        /* has an answer without the database */
    int confined;                    /* a domain admin's: may only tighten limits */
    /* results */
    struct buf reply;                /* rows + final line */
    uint64_t seq;                    /* change to wait for before answering */
    int ok;
    char *object;                    /* what the write changed (its audit object) */
    int committed;                   /* COMMIT succeeded (read with adm_db_job_committed) */
    /* a COMMIT whose answer was lost may still have committed: the audit
     * row's id tells, and the answer it would have had is kept */
    uint64_t audit_id;
    char *commit_reply;              /* set while COMMIT is under way */
    struct adm_job *next;
    double deadline;
};

typedef void (*adm_post_fn)(struct adm_job *j);
void adm_db_start(const char *conninfo, adm_post_fn done);
void adm_db_submit(struct adm_job *j);
void adm_job_free(struct adm_job *j);
/* At a stop: no COMMIT starts after this returns (a job that gets there
 * rolls back and answers "unavailable"); waits up to 10 s for one under way. */
void adm_db_stop(void);
/* Did j's COMMIT succeed? Safe from any thread. */
int adm_db_job_committed(struct adm_job *j);

#endif
