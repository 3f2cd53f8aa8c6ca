/* pol_db.c - the policy service's admission threads (see pol_db.h).
 *
 * Each thread has its own libpq connection (the daemon's `database`, the
 * reader role, which may only EXECUTE mailroster.send_admit_many and
 * send_admit on the rate tables) and takes jobs from one queue: every job
 * queued when it looks, up to POL_DB_BATCH, so that under load one
 * statement, one round trip and one commit serve many admissions, and
 * under light load a job waits for nothing but its own statement.
 *
 * Threads are ranked. The first takes every batch; a later one takes jobs
 * only while every thread before it is busy and the oldest queued job has
 * waited SPILL_S: when a statement is stuck (a lock another session
 * holds, a server that stalls), the jobs behind it go on without it. A
 * second thread taking turns instead would halve every batch, and each
 * statement's fixed cost (function entry, executor start-up, the commit)
 * would be paid twice as often: on one core up to a fifth fewer
 * admissions a second, and 12-78 % more of PostgreSQL's CPU per admission
 * (tests/bench/README.md). Each
 * admission of a batch locks its account's mailbox row (in login order, so
 * batches never wait for each other in a circle), so admissions of one
 * account from every thread and every mailrosterd on the database run one
 * after the other, and different accounts in parallel. A database older
 * than schema 8 has no send_admit_many: the thread then asks send_admit,
 * one job per statement.
 *
 * Commits: synchronous_commit is off on these connections unless
 * policy_db_synchronous_commit says otherwise. The WAL flush (a disk
 * sync, 0.1-1 ms) would otherwise bound admissions per connection; what
 * an asynchronous commit risks is that a crash of PostgreSQL itself (not a
 * clean stop, not a crash of mailrosterd) forgets the admissions of its
 * last few hundred milliseconds. Exactness does not depend on it: the row
 * lock and the visibility of committed rows are the same either way.
 *
 * Statements: prepared once per connection (admit_many, or admit on a
 * schema older than 8, found out while preparing), so that an admission
 * costs the server no parse and no plan of its own.
 *
 * Bounds: statement_timeout = policy_db_timeout on every connection (a
 * slow server ends there, SQLSTATE 57014 = PV_TIMEOUT); a server that
 * does not answer at all (stopped, or its host gone without a reset) is
 * waited for STALL_GRACE_MS longer, then the connection is dropped and
 * the batch answered PV_TIMEOUT: whether it committed cannot be told
 * then, so such an admission may be counted although its client was
 * told to try again (counted once too often, never admitted past the
 * limit); the wait for the
 * account's lock gets what is left of the job's time less 200 ms
 * (send_admit's p_wait_ms, SQLSTATE 55P03), so a query stuck behind
 * another session's lock gives up, changing nothing, before the loop
 * answers by itself; a job whose deadline passed in the queue is not
 * started, and one the loop's timer answered while it was queued is left
 * alone (pol_db.h: who answers a job); a connection that
 * failed is not tried again for a second, so while PostgreSQL is down every
 * job fails at once instead of each waiting for a connect timeout. A query
 * whose connection breaks is never repeated: whether it committed cannot
 * be told, and a second admission could count the message twice. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "buf.h"
#include "log.h"
#include "mem.h"
#include "pol_db.h"
#include "pqlog.h"
#include "thr.h"

#define POL_DB_MAX_THREADS 32
#define RECONNECT_PAUSE 1.0     /* s between connection attempts of one thread */
#define LOG_EVERY 10.0          /* s between two "still unavailable" lines */
#define LOCK_MARGIN_MS 200      /* of policy_db_timeout, kept for all but the lock wait */
#define POL_DB_BATCH 64         /* admissions at most in one statement */
#define LINGER_NS 200000        /* a thread's wait for more admissions under load */
#define LINGER_WHEN_GAP 0.002   /* s between two admissions that counts as load */
#define STALL_GRACE_MS 1000     /* past statement_timeout: the server is not answering at all */
#define SPILL_S 0.005           /* a job's wait before a later-ranked thread takes it */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* the first thread's; CLOCK_MONOTONIC (pol_db_start) */
    struct pol_job *head, *tail;
    int queued;
    double last_submit; /* monotonic s */
    double gap;         /* between the last two submissions */
    /* the ranks: first_idle says the first thread waits for a job (cond);
     * busy[r] that thread r took jobs and has not posted them yet; the
     * later threads wait on standby, woken when a job is queued behind a
     * busy first thread, then at the oldest job's SPILL_S */
    int first_idle;
    int lingering;      /* the first thread waits, up to LINGER_NS, for `want` jobs (cond) */
    int want;           /* the batch it waits for: the recent batches' size */
    int busy[POL_DB_MAX_THREADS];
    pthread_cond_t standby;
    int standby_waiting;
    char *conninfo;
    int timeout_ms;
    int sync_commit;
    pol_db_post_fn post;
    /* unavailability, logged at most every LOG_EVERY s */
    int down;
    double last_log;
    unsigned long failed_since_log;
} Q = { .lock = PTHREAD_MUTEX_INITIALIZER, .gap = 1e9, .want = POL_DB_BATCH };

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
    int single;         /* no send_admit_many on this connection (schema < 8) */
    struct buf logins, counts, qids;    /* a batch's arrays, as text */
};

/* send_admit of schema 6 (0006_suspend_sending.sql), and of schema 5,
 * which a daemon upgraded before its database still meets: it admits
 * without suspensions meanwhile. */
static const char q_admit[] =
    "SELECT verdict, limit_kind, limit_value, window_seconds, used, free_in, full_in, reason, suspended_now "
    "FROM mailroster.send_admit($1, $2::int, $3, $4::int)";
static const char q_admit_many[] =
    "SELECT ord, verdict, limit_kind, limit_value, window_seconds, used, free_in, full_in, reason, suspended_now "
    "FROM mailroster.send_admit_many($1::text[], $2::int[], $3::text[], $4::int)";
static const char q_admit_v5[] =
    "SELECT verdict, limit_kind, limit_value, window_seconds, used, free_in, full_in, NULL, false "
    "FROM mailroster.send_admit($1, $2::int, $3, $4::int)";

/* the prepared statements' names */
#define S_MANY "mr_admit_many"
#define S_ONE "mr_admit"

static void drop_conn(struct worker *w)
{
    if (w->pg)
        PQfinish(w->pg);
    w->pg = NULL;
    w->next_try = pol_db_now() + RECONNECT_PAUSE;
}

/* The answer to what was just sent on w->pg (its last result), waiting
 * at most statement_timeout + STALL_GRACE_MS; NULL, the connection
 * dropped and err set, when the server does not answer in that time.
 * libpq's own calls would wait for as long as the socket stays open. */
static PGresult *await(struct worker *w, char *err, size_t esize)
{
    double until = pol_db_now() + (Q.timeout_ms + STALL_GRACE_MS) / 1000.0;
    PGresult *last = NULL, *r;

    for (;;) {
        while (PQisBusy(w->pg)) {
            double left = until - pol_db_now();
            if (left <= 0) {
                PQclear(last);
                snprintf(err, esize, "no answer from the database within %d ms "
                         "(policy_db_timeout + %d ms): connection dropped",
                         Q.timeout_ms + STALL_GRACE_MS, STALL_GRACE_MS);
                drop_conn(w);
                return NULL;
            }
            struct pollfd pf = { .fd = PQsocket(w->pg), .events = POLLIN };
            int rc = poll(&pf, 1, (int)(left * 1000) + 1);
            if (rc < 0 && errno != EINTR) {
                /* no wait left that is bounded: PQgetResult would block */
                PQclear(last);
                snprintf(err, esize, "poll on the database connection: %s: connection dropped",
                         strerror(errno));
                drop_conn(w);
                return NULL;
            }
            if (rc > 0 && !PQconsumeInput(w->pg))
                break;          /* PQgetResult reports the broken connection */
        }
        r = PQgetResult(w->pg);
        if (r == NULL)
            break;
        PQclear(last);
        last = r;
        if (PQstatus(w->pg) != CONNECTION_OK)
            break;
    }
    if (last == NULL)
        snprintf(err, esize, "%s", "the database closed the connection");
    return last;
}

/* A failed statement's message, with what a sysop should do about the
 * states that have a remedy. */
static void explain(PGresult *r, char *err, size_t esize)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    char why[120];

    first_line(why, sizeof(why), PQresultErrorMessage(r));
    if (state && !strcmp(state, "42883"))       /* undefined_function */
        snprintf(err, esize, "%s (the schema is older than version 5: apply "
                 "sql/migrations/0005_rate_limits.sql, then sql/roles.sql)", why);
    else if (state && !strcmp(state, "42501"))  /* insufficient_privilege */
        snprintf(err, esize, "%s (the database role needs EXECUTE on "
                 "mailroster.send_admit_many and send_admit: run sql/roles.sql)", why);
    else
        snprintf(err, esize, "%s", why);
}

/* After a PQsend* call (sent: what it returned): the answer as await
 * gives it, or NULL with err set. */
static PGresult *answer_to(struct worker *w, int sent, char *err, size_t esize)
{
    if (!sent) {
        first_line(err, esize, PQerrorMessage(w->pg));
        drop_conn(w);
        return NULL;
    }
    return await(w, err, esize);
}

/* Send a statement, or prepare one (name != NULL), and wait for it. */
static PGresult *run_bounded(struct worker *w, const char *name, const char *sql, int n,
                             const char *const *params, char *err, size_t esize)
{
    return answer_to(w, name ? PQsendPrepare(w->pg, name, sql, n, NULL)
                             : PQsendQueryParams(w->pg, sql, n, NULL, params, NULL, NULL, 0),
                     err, esize);
}

/* Prepare this connection's admission statement: send_admit_many, or on
 * an older schema send_admit (with or without suspensions). */
static int prepare(struct worker *w, char *err, size_t esize)
{
    PGresult *r = run_bounded(w, S_MANY, q_admit_many, 4, NULL, err, esize);
    if (r == NULL)
        return -1;
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok && st && !strcmp(st, "42883")) {
        /* no send_admit_many (schema older than 8) */
        PQclear(r);
        w->single = 1;
        msg_info("policy: rate-limit admissions: the database has no mailroster.send_admit_many "
                 "(schema older than 8): one admission per statement on this connection");
        if ((r = run_bounded(w, S_ONE, q_admit, 4, NULL, err, esize)) == NULL)
            return -1;
        st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok && st && !strcmp(st, "42703")) {
            /* undefined column: schema 5, send_admit without suspensions */
            PQclear(r);
            w->v5 = 1;
            if ((r = run_bounded(w, S_ONE, q_admit_v5, 4, NULL, err, esize)) == NULL)
                return -1;
            ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        }
    }
    if (!ok)
        explain(r, err, esize);
    PQclear(r);
    return ok ? 0 : -1;
}

static int ensure_conn(struct worker *w, char *err, size_t esize)
{
    char ct[16], st[32];
    const char *keys[] = { "application_name", "connect_timeout", "dbname", NULL };
    const char *vals[] = { "mailrosterd-policy", ct, Q.conninfo, NULL };
    const char *p[2] = { st, Q.sync_commit ? "on" : "off" };

    if (w->pg && PQstatus(w->pg) == CONNECTION_OK) {
        /* An idle connection has nothing to read unless the server is
         * closing it (a restart sends a FATAL line, then the end; a rare
         * notice costs a new connection too): found out before a
         * statement is sent on it, a connection is made again at once,
         * and no admission fails for a server long since back. */
        struct pollfd pf = { .fd = PQsocket(w->pg), .events = POLLIN };
        if (poll(&pf, 1, 0) <= 0)
            return 0;
        PQfinish(w->pg);
        w->pg = NULL;
        w->next_try = 0;
    }
    if (pol_db_now() < w->next_try) {
        snprintf(err, esize, "not connected (next attempt within %.0f s)", RECONNECT_PAUSE);
        return -1;
    }
    if (w->pg)
        PQfinish(w->pg);
    w->v5 = 0;
    w->single = 0;
    /* libpq's connect_timeout has a 2 s minimum and whole seconds */
    snprintf(ct, sizeof(ct), "%d", Q.timeout_ms < 2000 ? 2 : (Q.timeout_ms + 999) / 1000);
    w->pg = PQconnectdbParams(keys, vals, 1);
    pqlog_attach(w->pg, "policy database");
    if (PQstatus(w->pg) != CONNECTION_OK) {
        first_line(err, esize, PQerrorMessage(w->pg));
        drop_conn(w);
        return -1;
    }
    snprintf(st, sizeof(st), "%d", Q.timeout_ms);
    PGresult *r = run_bounded(w, NULL, "SELECT set_config('statement_timeout', $1, false), "
                              "set_config('synchronous_commit', $2, false)", 2, p, err, esize);
    if (r == NULL)
        return -1;
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        first_line(err, esize, PQresultErrorMessage(r));
    PQclear(r);
    if (ok && prepare(w, err, esize) == 0)
        return 0;
    drop_conn(w);
    return -1;
}

static double num(PGresult *r, int row, int col, double none)
{
    return PQgetisnull(r, row, col) ? none : strtod(PQgetvalue(r, row, col), NULL);
}

/* The lock wait a job may use: what is left of the caller's time, less a
 * margin for the rest of the function, the COMMIT and the way back; <= 0
 * when nothing is left. */
static long lock_wait_ms(const struct pol_job *j, double now)
{
    return (long)((j->deadline - now) * 1000) - LOCK_MARGIN_MS;
}

/* The time left for j's lock wait at now, into *left; 0 and j answered
 * PV_TIMEOUT when nothing is left. */
static int time_left(struct pol_job *j, double now, long *left)
{
    *left = lock_wait_ms(j, now);
    if (*left >= 1)
        return 1;
    j->res.verdict = PV_TIMEOUT;
    snprintf(j->err, sizeof(j->err), "waited longer than policy_db_timeout for a database thread");
    return 0;
}

static void start_result(struct pol_job *j)
{
    memset(&j->res, 0, sizeof(j->res));
    j->res.free_in = j->res.full_in = -1;
    j->err[0] = 0;
}

/* Row `row` of an answer whose verdict is in column `c` and the other
 * columns follow as in q_admit (without scope). */
static void take_row(PGresult *r, int row, int c, struct pol_job *j)
{
    struct pol_admit_result *res = &j->res;
    const char *v = PQgetvalue(r, row, c);

    res->verdict = !strcmp(v, "ok") ? PV_OK : !strcmp(v, "defer") ? PV_DEFER
                   : !strcmp(v, "toobig") ? PV_TOOBIG : !strcmp(v, "suspended") ? PV_SUSPENDED
                   : !strcmp(v, "busy") ? PV_TIMEOUT : PV_UNKNOWN;
    if (res->verdict == PV_TIMEOUT)
        snprintf(j->err, sizeof(j->err), "lock timeout: another session held the account "
                 "longer than policy_db_timeout leaves for the wait");
    snprintf(res->kind, sizeof(res->kind), "%s", PQgetvalue(r, row, c + 1));
    res->limit = (long)num(r, row, c + 2, 0);
    res->window = (long)num(r, row, c + 3, 0);
    res->used = (long)num(r, row, c + 4, 0);
    res->free_in = num(r, row, c + 5, -1);
    res->full_in = num(r, row, c + 6, -1);
    snprintf(res->reason, sizeof(res->reason), "%s", PQgetvalue(r, row, c + 7));
    res->suspended_now = PQgetvalue(r, row, c + 8)[0] == 't';
}

/* A statement that failed (r), or got no answer at all (r NULL, why in
 * err): the same verdict and text for its jobs. */
static void take_failure(struct worker *w, PGresult *r, const char *nores, struct pol_job **jobs, int n)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    char err[sizeof(jobs[0]->err)];

    if (r)
        explain(r, err, sizeof(err));
    else
        snprintf(err, sizeof(err), "%s", nores);
    /* statement_timeout (57014), the lock wait (55P03, lock_not_available),
     * or no answer at all */
    enum pol_verdict v = r == NULL || (state && (!strcmp(state, "57014") || !strcmp(state, "55P03")))
                         ? PV_TIMEOUT : PV_UNAVAILABLE;
    for (int i = 0; i < n; i++) {
        jobs[i]->res.verdict = v;
        snprintf(jobs[i]->err, sizeof(jobs[i]->err), "%s", err);
    }
    /* a broken connection; or a prepared statement the schema changed
     * under (0A000: its result type; 26000: gone): prepared anew on the
     * next connection */
    if (w->pg && (PQstatus(w->pg) != CONNECTION_OK
                  || (state && (!strcmp(state, "0A000") || !strcmp(state, "26000"))))) {
        PQfinish(w->pg);
        w->pg = NULL;
    }
    note_failure(err);
}

/* Run this connection's prepared admission statement with params p; the
 * result, or NULL with err set. */
static PGresult *exec_admit(struct worker *w, const char *name, const char *const *p,
                            char *err, size_t esize)
{
    return answer_to(w, PQsendQueryPrepared(w->pg, name, 4, p, NULL, NULL, 0), err, esize);
}

/* One job, one statement: send_admit (schema 5 to 7). */
static void admit_one(struct worker *w, struct pol_job *j, long wait_ms)
{
    char n[16], wait[24], err[sizeof(j->err)];
    const char *p[4] = { j->req.login, n, j->req.queue_id, wait };

    snprintf(n, sizeof(n), "%d", j->req.recipients);
    snprintf(wait, sizeof(wait), "%ld", wait_ms);
    PGresult *r = exec_admit(w, S_ONE, p, err, sizeof(err));
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 9) {
        take_row(r, 0, 0, j);
        note_success();
    } else {
        take_failure(w, r, err, &j, 1);
    }
    PQclear(r);
}

/* An element of a text[] literal: quoted, with " and \ escaped; NULL for
 * none (a queue id that is not known). */
static void array_elem(struct buf *b, const char *s)
{
    if (b->len > 1)
        buf_addc(b, ',');
    if (s == NULL) {
        buf_adds(b, "NULL");
        return;
    }
    buf_addc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_addc(b, '\\');
        buf_addc(b, *s);
    }
    buf_addc(b, '"');
}

/* n jobs, one statement: send_admit_many (schema 8). Answers come back
 * with ord = the job's place (1-based); a job the answer does not name
 * keeps PV_UNAVAILABLE. */
static void admit_many(struct worker *w, struct pol_job **jobs, int n, long wait_ms)
{
    char wait[24], err[sizeof(jobs[0]->err)];
    const char *p[4];

    buf_reset(&w->logins);
    buf_reset(&w->counts);
    buf_reset(&w->qids);
    buf_addc(&w->logins, '{');
    buf_addc(&w->counts, '{');
    buf_addc(&w->qids, '{');
    for (int i = 0; i < n; i++) {
        array_elem(&w->logins, jobs[i]->req.login);
        buf_printf(&w->counts, "%s%d", i ? "," : "", jobs[i]->req.recipients);
        array_elem(&w->qids, jobs[i]->req.queue_id[0] ? jobs[i]->req.queue_id : NULL);
    }
    buf_addc(&w->logins, '}');
    buf_addc(&w->counts, '}');
    buf_addc(&w->qids, '}');
    snprintf(wait, sizeof(wait), "%ld", wait_ms);
    p[0] = w->logins.data;
    p[1] = w->counts.data;
    p[2] = w->qids.data;
    p[3] = wait;

    PGresult *r = exec_admit(w, S_MANY, p, err, sizeof(err));
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQnfields(r) == 10) {
        for (int i = 0; i < n; i++) {
            jobs[i]->res.verdict = PV_UNAVAILABLE;
            snprintf(jobs[i]->err, sizeof(jobs[i]->err), "send_admit_many gave no answer for it");
        }
        int busy = 0, decided = 0;
        for (int row = 0; row < PQntuples(r); row++) {
            long ord = strtol(PQgetvalue(r, row, 0), NULL, 10);
            if (ord < 1 || ord > n)
                continue;
            jobs[ord - 1]->err[0] = 0;
            take_row(r, row, 1, jobs[ord - 1]);
            if (jobs[ord - 1]->res.verdict == PV_TIMEOUT)
                busy = (int)ord;
            else
                decided++;
        }
        if (decided)
            note_success();
        if (busy)
            note_failure(jobs[busy - 1]->err);
    } else {
        take_failure(w, r, err, jobs, n);
    }
    PQclear(r);
}

/* Decide n jobs taken from the queue together. */
static void admit(struct worker *w, struct pol_job **jobs, int n)
{
    struct pol_job *go[POL_DB_BATCH];
    int ngo = 0;
    double now = pol_db_now();
    long wait_ms = -1;

    for (int i = 0; i < n; i++) {
        long left;
        int queued = POL_JOB_QUEUED;
        /* the loop's timer answered it already: not started, not counted */
        if (!atomic_compare_exchange_strong(&jobs[i]->state, &queued, POL_JOB_RUNNING))
            continue;
        start_result(jobs[i]);
        if (!time_left(jobs[i], now, &left))
            continue;
        /* the batch's lock wait: what the most hurried job has left */
        if (wait_ms < 0 || left < wait_ms)
            wait_ms = left;
        go[ngo++] = jobs[i];
    }
    if (ngo == 0)
        return;
    if (ensure_conn(w, go[0]->err, sizeof(go[0]->err)) < 0) {
        for (int i = 0; i < ngo; i++) {
            go[i]->res.verdict = PV_UNAVAILABLE;
            if (i > 0)
                snprintf(go[i]->err, sizeof(go[i]->err), "%s", go[0]->err);
        }
        note_failure(go[0]->err);
        return;
    }
    if (w->single) {
        for (int i = 0; i < ngo; i++) {
            /* each statement starts from what its job has left */
            long left;
            if (!time_left(go[i], pol_db_now(), &left))
                continue;
            if (w->pg == NULL && ensure_conn(w, go[i]->err, sizeof(go[i]->err)) < 0) {
                go[i]->res.verdict = PV_UNAVAILABLE;
                note_failure(go[i]->err);
                continue;
            }
            if (w->single)
                admit_one(w, go[i], left);
            else        /* connected again, to an upgraded schema */
                admit_many(w, &go[i], 1, left);
        }
        return;
    }
    admit_many(w, go, ngo, wait_ms);
}

/* Are all threads ranked before r busy? (Q.lock held) */
static int before_busy(int r)
{
    for (int i = 0; i < r; i++)
        if (!Q.busy[i])
            return 0;
    return 1;
}

/* A later-ranked thread's wait for jobs it may take (Q.lock held). */
static void standby_wait(int rank)
{
    for (;;) {
        if (Q.head != NULL && before_busy(rank)) {
            double due = Q.head->queued_at + SPILL_S;
            if (pol_db_now() >= due)
                return;
            /* pol_db_now's clock is the condition's (CLOCK_MONOTONIC) */
            struct timespec ts = { .tv_sec = (time_t)due };
            ts.tv_nsec = (long)((due - (double)ts.tv_sec) * 1e9);
            pthread_cond_timedwait(&Q.standby, &Q.lock, &ts);
        } else {
            Q.standby_waiting++;
            pthread_cond_wait(&Q.standby, &Q.lock);
            Q.standby_waiting--;
        }
    }
}

static void *pol_db_main(void *arg)
{
    struct worker w = { 0 };
    struct pol_job *jobs[POL_DB_BATCH];
    int rank = (int)(intptr_t)arg;
    thr_role("mr-policy-db", 0);    /* an SMTP client waits for it */
    buf_init(&w.logins);
    buf_init(&w.counts);
    buf_init(&w.qids);
    for (;;) {
        int n = 0;
        pthread_mutex_lock(&Q.lock);
        if (rank == 0) {
            Q.first_idle = 1;
            while (Q.head == NULL)
                pthread_cond_wait(&Q.cond, &Q.lock);
            Q.first_idle = 0;
        } else {
            standby_wait(rank);
        }
        Q.busy[rank] = 1;
        /* Under load a short wait fills the batch: the admissions of
         * the other smtpd processes are a few hundred microseconds
         * behind, and one statement for all of them costs little more
         * than one for this job. The wait ends at LINGER_NS, or as soon
         * as the batch is as large as the recent ones (want): when the
         * last of 8 smtpd processes sends its END-OF-MESSAGE, the
         * statement starts, instead of the database idling out the rest
         * of the wait. Idle (the previous admission came long before
         * this one), a job waits for nothing. A later-ranked thread
         * comes to jobs that have waited already. */
        if (rank == 0 && Q.queued < Q.want && Q.gap < LINGER_WHEN_GAP) {
            double due = pol_db_now() + LINGER_NS / 1e9;
            struct timespec ts = { .tv_sec = (time_t)due };
            ts.tv_nsec = (long)((due - (double)ts.tv_sec) * 1e9);
            Q.lingering = 1;
            while (Q.queued < Q.want)
                if (pthread_cond_timedwait(&Q.cond, &Q.lock, &ts) != 0)
                    break;      /* ETIMEDOUT; never spin on another error */
            Q.lingering = 0;
        }
        /* every job queued now, up to a batch: they waited while the
         * threads were busy, and one statement answers them all */
        while (Q.head != NULL && n < POL_DB_BATCH) {
            struct pol_job *j = Q.head;
            Q.head = j->next;
            Q.queued--;
            j->next = NULL;
            jobs[n++] = j;
        }
        /* want: the largest recent batch; one less after each batch
         * that came short of it (a client gone, the load falling) */
        if (rank == 0) {
            if (n > Q.want)
                Q.want = n;
            else if (n < Q.want && Q.want > 1)
                Q.want--;
        }
        if (Q.head == NULL)
            Q.tail = NULL;
        else if (Q.standby_waiting > 0)
            pthread_cond_broadcast(&Q.standby);     /* more than a batch: time what is left */
        pthread_mutex_unlock(&Q.lock);
        admit(&w, jobs, n);
        for (int i = 0; i < n; i++)
            Q.post(jobs[i]);
        pthread_mutex_lock(&Q.lock);
        Q.busy[rank] = 0;
        pthread_mutex_unlock(&Q.lock);
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
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&Q.standby, &ca);
    pthread_cond_init(&Q.cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&t, &attr, pol_db_main, (void *)(intptr_t)i) != 0)
            msg_fatal("cannot start a policy database thread: %s", strerror(errno));
    pthread_attr_destroy(&attr);
}

void pol_db_submit(struct pol_job *j)
{
    double now = pol_db_now();
    pthread_mutex_lock(&Q.lock);
    Q.gap = now - Q.last_submit;
    Q.last_submit = now;
    j->next = NULL;
    j->queued_at = now;
    int first = Q.head == NULL;
    if (Q.tail)
        Q.tail->next = j;
    else
        Q.head = j;
    Q.tail = j;
    Q.queued++;
    if (Q.first_idle || (Q.lingering && Q.queued >= Q.want))
        pthread_cond_signal(&Q.cond);
    else if (first && Q.standby_waiting > 0)
        /* behind a busy first thread: the later ones time this job */
        pthread_cond_broadcast(&Q.standby);
    pthread_mutex_unlock(&Q.lock);
}

int pol_db_queued(void)
{
    pthread_mutex_lock(&Q.lock);
    int n = Q.queued;
    pthread_mutex_unlock(&Q.lock);
    return n;
}
