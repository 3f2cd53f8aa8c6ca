/* pol_db.c - the policy service's admission threads (see pol_db.h).
 *
 * Each thread has its own libpq connection (the daemon's `database`, the
 * reader role, which may only EXECUTE mailroster.send_admit on the rate
 * tables) and takes jobs from one queue. An admission is one statement in
 * its own transaction: the function locks the account's mailbox row, so
 * admissions of one account from every thread and every mailrosterd on the
 * database run one after the other, and different accounts in parallel.
 *
 * Commits: synchronous_commit is off on these connections unless
 * policy_db_synchronous_commit says otherwise. The WAL flush (a disk
 * sync, 0.1-1 ms) would otherwise bound admissions per connection; what
 * an asynchronous commit risks is that a crash of PostgreSQL itself (not a
 * clean stop, not a crash of mailrosterd) forgets the admissions of its
 * last few hundred milliseconds. Exactness does not depend on it: the row
 * lock and the visibility of committed rows are the same either way.
 *
 * Bounds: statement_timeout = policy_db_timeout on every connection (a
 * slow server ends there, SQLSTATE 57014 = PV_TIMEOUT); the wait for the
 * account's lock gets what is left of the job's time less 200 ms
 * (send_admit's p_wait_ms, SQLSTATE 55P03), so a query stuck behind
 * another session's lock gives up, changing nothing, before the loop
 * answers by itself; a job whose deadline passed in the queue is not
 * started; a connection that
 * failed is not tried again for a second, so while PostgreSQL is down every
 * job fails at once instead of each waiting for a connect timeout. A query
 * whose connection breaks is never repeated: whether it committed cannot
 * be told, and a second admission could count the message twice. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "log.h"
#include "mem.h"
#include "pol_db.h"
#include "pqlog.h"

#define POL_DB_MAX_THREADS 32
#define RECONNECT_PAUSE 1.0     /* s between connection attempts of one thread */
#define LOG_EVERY 10.0          /* s between two "still unavailable" lines */
#define LOCK_MARGIN_MS 200      /* of policy_db_timeout, kept for all but the lock wait */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct pol_job *head, *tail;
    int queued;
    char *conninfo;
    int timeout_ms;
    int sync_commit;
    pol_db_post_fn post;
    /* unavailability, logged at most every LOG_EVERY s */
    int down;
    double last_log;
    unsigned long failed_since_log;
} Q = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

double pol_db_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* one line, no newline */
static void first_line(char *dst, size_t size, const char *msg)
{
    snprintf(dst, size, "%s", msg ? msg : "");
    dst[strcspn(dst, "\n")] = 0;
}

static void note_failure(const char *why)
{
    double now = pol_db_now();
    pthread_mutex_lock(&Q.lock);
    Q.failed_since_log++;
    if (!Q.down || now - Q.last_log >= LOG_EVERY) {
        msg_warn("policy: rate-limit admissions: database unavailable: %s "
                 "(%lu admission(s) without an answer since the last such line; "
                 "policy_db_unavailable_action applies)", why, Q.failed_since_log);
        Q.last_log = now;
        Q.failed_since_log = 0;
    }
    Q.down = 1;
    pthread_mutex_unlock(&Q.lock);
}

static void note_success(void)
{
    pthread_mutex_lock(&Q.lock);
    if (Q.down) {
        msg_info("policy: rate-limit admissions: database available again (%lu more without an answer)",
                 Q.failed_since_log);
        Q.down = 0;
        Q.failed_since_log = 0;
    }
    pthread_mutex_unlock(&Q.lock);
}

struct worker {
    PGconn *pg;
    double next_try;
    int v5;             /* this connection's send_admit has no suspension (schema 5) */
};

/* send_admit of schema 6 (0006_suspend_sending.sql), and of schema 5,
 * which a daemon upgraded before its database still meets: it admits
 * without suspensions meanwhile. */
static const char q_admit[] =
    "SELECT verdict, limit_kind, limit_value, window_seconds, used, free_in, full_in, reason, suspended_now "
    "FROM mailroster.send_admit($1, $2::int, $3, $4::int)";
static const char q_admit_v5[] =
    "SELECT verdict, limit_kind, limit_value, window_seconds, used, free_in, full_in, NULL, false "
    "FROM mailroster.send_admit($1, $2::int, $3, $4::int)";

static int ensure_conn(struct worker *w, char *err, size_t esize)
{
    char ct[16], st[32];
    const char *keys[] = { "application_name", "connect_timeout", "dbname", NULL };
    const char *vals[] = { "mailrosterd-policy", ct, Q.conninfo, NULL };
    const char *p[2] = { st, Q.sync_commit ? "on" : "off" };

    if (w->pg && PQstatus(w->pg) == CONNECTION_OK)
        return 0;
    if (pol_db_now() < w->next_try) {
        snprintf(err, esize, "not connected (next attempt within %.0f s)", RECONNECT_PAUSE);
        return -1;
    }
    if (w->pg)
        PQfinish(w->pg);
    w->v5 = 0;
    /* libpq's connect_timeout has a 2 s minimum and whole seconds */
    snprintf(ct, sizeof(ct), "%d", Q.timeout_ms < 2000 ? 2 : (Q.timeout_ms + 999) / 1000);
    w->pg = PQconnectdbParams(keys, vals, 1);
    pqlog_attach(w->pg, "policy database");
    if (PQstatus(w->pg) != CONNECTION_OK) {
        first_line(err, esize, PQerrorMessage(w->pg));
        goto fail;
    }
    snprintf(st, sizeof(st), "%d", Q.timeout_ms);
    PGresult *r = PQexecParams(w->pg, "SELECT set_config('statement_timeout', $1, false), "
                               "set_config('synchronous_commit', $2, false)", 2, NULL, p, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        first_line(err, esize, PQresultErrorMessage(r));
    PQclear(r);
    if (ok)
        return 0;
fail:
    PQfinish(w->pg);
    w->pg = NULL;
    w->next_try = pol_db_now() + RECONNECT_PAUSE;
    return -1;
}

static double num(PGresult *r, int col, double none)
{
    return PQgetisnull(r, 0, col) ? none : strtod(PQgetvalue(r, 0, col), NULL);
}

static void admit(struct worker *w, struct pol_job *j)
{
    char n[16], wait[24];
    const char *p[4] = { j->req.login, n, j->req.queue_id, wait };
    struct pol_admit_result *res = &j->res;

    memset(res, 0, sizeof(*res));
    res->free_in = res->full_in = -1;
    /* the lock wait may use what is left of the caller's time, less a
     * margin for the rest of the function, the COMMIT and the way back */
    long left_ms = (long)((j->deadline - pol_db_now()) * 1000) - LOCK_MARGIN_MS;
    if (left_ms < 1) {
        res->verdict = PV_TIMEOUT;
        snprintf(j->err, sizeof(j->err), "waited longer than policy_db_timeout for a database thread");
        return;
    }
    if (ensure_conn(w, j->err, sizeof(j->err)) < 0) {
        res->verdict = PV_UNAVAILABLE;
        note_failure(j->err);
        return;
    }
    snprintf(n, sizeof(n), "%d", j->req.recipients);
    snprintf(wait, sizeof(wait), "%ld", left_ms);
    PGresult *r = PQexecParams(w->pg, w->v5 ? q_admit_v5 : q_admit, 4, NULL, p, NULL, NULL, 0);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (!w->v5 && st && !strcmp(st, "42703")) {
        /* undefined column: refused while the query was analysed, so
         * nothing ran; the schema is 5 (or older: then that fails too) */
        PQclear(r);
        w->v5 = 1;
        r = PQexecParams(w->pg, q_admit_v5, 4, NULL, p, NULL, NULL, 0);
    }
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 9) {
        const char *v = PQgetvalue(r, 0, 0);
        res->verdict = !strcmp(v, "ok") ? PV_OK : !strcmp(v, "defer") ? PV_DEFER
                       : !strcmp(v, "toobig") ? PV_TOOBIG : !strcmp(v, "suspended") ? PV_SUSPENDED
                       : PV_UNKNOWN;
        snprintf(res->reason, sizeof(res->reason), "%s", PQgetvalue(r, 0, 7));
        res->suspended_now = PQgetvalue(r, 0, 8)[0] == 't';
        snprintf(res->kind, sizeof(res->kind), "%s", PQgetvalue(r, 0, 1));
        res->limit = (long)num(r, 2, 0);
        res->window = (long)num(r, 3, 0);
        res->used = (long)num(r, 4, 0);
        res->free_in = num(r, 5, -1);
        res->full_in = num(r, 6, -1);
        note_success();
    } else {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        char why[120];
        first_line(why, sizeof(why), PQresultErrorMessage(r));
        if (state && !strcmp(state, "42883"))       /* undefined_function */
            snprintf(j->err, sizeof(j->err), "%s (the schema is older than version 5: apply "
                     "sql/migrations/0005_rate_limits.sql, then sql/roles.sql)", why);
        else if (state && !strcmp(state, "42501"))  /* insufficient_privilege */
            snprintf(j->err, sizeof(j->err), "%s (the database role needs EXECUTE on "
                     "mailroster.send_admit: run sql/roles.sql)", why);
        else
            snprintf(j->err, sizeof(j->err), "%s", why);
        /* statement_timeout (57014) or the lock wait (55P03, lock_not_available) */
        res->verdict = state && (!strcmp(state, "57014") || !strcmp(state, "55P03")) ? PV_TIMEOUT
                                                                                    : PV_UNAVAILABLE;
        if (PQstatus(w->pg) != CONNECTION_OK) {
            PQfinish(w->pg);
            w->pg = NULL;
        }
        note_failure(j->err);
    }
    PQclear(r);
}

static void *pol_db_main(void *arg)
{
    struct worker w = { NULL, 0, 0 };
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&Q.lock);
        while (Q.head == NULL)
            pthread_cond_wait(&Q.cond, &Q.lock);
        struct pol_job *j = Q.head;
        Q.head = j->next;
        if (Q.head == NULL)
            Q.tail = NULL;
        Q.queued--;
        j->next = NULL;
        pthread_mutex_unlock(&Q.lock);
        admit(&w, j);
        Q.post(j);
    }
    return NULL;
}

void pol_db_start(const char *conninfo, int nthreads, int timeout_ms, int sync_commit,
                  pol_db_post_fn post)
{
    pthread_t t;
    pthread_attr_t attr;

    Q.conninfo = xstrdup(conninfo);
    Q.timeout_ms = timeout_ms;
    Q.sync_commit = sync_commit;
    Q.post = post;
    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > POL_DB_MAX_THREADS)
        nthreads = POL_DB_MAX_THREADS;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&t, &attr, pol_db_main, NULL) != 0)
            msg_fatal("cannot start a policy database thread: %s", strerror(errno));
    pthread_attr_destroy(&attr);
}

void pol_db_submit(struct pol_job *j)
{
    pthread_mutex_lock(&Q.lock);
    j->next = NULL;
    if (Q.tail)
        Q.tail->next = j;
    else
        Q.head = j;
    Q.tail = j;
    Q.queued++;
    pthread_cond_signal(&Q.cond);
    pthread_mutex_unlock(&Q.lock);
}

int pol_db_queued(void)
{
    pthread_mutex_lock(&Q.lock);
    int n = Q.queued;
    pthread_mutex_unlock(&Q.lock);
    return n;
}
