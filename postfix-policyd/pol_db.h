/* pol_db.h - the policy service's database threads: END-OF-MESSAGE
 * admissions (mailroster.send_admit) on connections of their own.
 *
 * The event loop never waits for them: a policy connection is suspended,
 * its admission queued here, and the answer posted back (post) when the
 * database has spoken, or marked PV_TIMEOUT / PV_UNAVAILABLE when it could
 * not. The loop also holds its own timer per admission (policy_db_timeout)
 * and answers by itself when that fires before a database thread has taken
 * the job; the job still comes back later and is then only freed. Every
 * job submitted is posted back exactly once. */
#ifndef MR_POL_DB_H
#define MR_POL_DB_H

#include <stdatomic.h>

#include "policy.h"

struct srv_conn;
struct event;

/* Who answers a job: a database thread that takes it (QUEUED -> RUNNING)
 * answers it with what it committed; the loop's timer answers only a job
 * no thread has taken (QUEUED -> LATE), and a thread then leaves it alone.
 * So an admission the database counted is never answered "try again",
 * unless the server stopped answering mid-statement (pol_db.c). */
enum { POL_JOB_QUEUED, POL_JOB_RUNNING, POL_JOB_LATE };

struct pol_job {
    struct pol_admit req;
    struct pol_admit_result res;
    char err[256];              /* why PV_UNAVAILABLE */
    double deadline;            /* monotonic s: not started after it */
    double queued_at;           /* monotonic s: pol_db_submit's */
    _Atomic int state;          /* POL_JOB_*: res and err belong to its winner */
    /* the event loop's */
    struct srv_conn *conn;
    struct event *timer;
    int answered;               /* the loop's timer answered already */
    struct pol_job *next;
};

typedef void (*pol_db_post_fn)(struct pol_job *j);

/* nthreads connections to conninfo; timeout_ms: statement_timeout, the
 * connect timeout, and (plus a grace) how long a thread waits for a
 * server that does not answer at all; sync_commit: synchronous_commit on
 * these connections. */
void pol_db_start(const char *conninfo, int nthreads, int timeout_ms, int sync_commit,
                  pol_db_post_fn post);
void pol_db_submit(struct pol_job *j);
/* Jobs queued and not started: how many (for stats). */
int pol_db_queued(void);
double pol_db_now(void);        /* the monotonic clock deadlines use */

#endif
