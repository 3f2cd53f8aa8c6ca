/* quota_db.c - the quota usage thread (see quota_db.h).
 *
 * One libpq connection of its own (the daemon's `database`, the reader
 * role: SELECT on quota_usage). Each read is one REPEATABLE READ READ ONLY
 * transaction: the snapshot's horizon, then the rows with xact_id at or
 * above the previous read's horizon (migration 0007 says why that misses
 * no row however the writers' commits interleave). A read that fails is
 * tried again after a pause that doubles up to RETRY_MAX, and is logged at
 * most every LOG_EVERY seconds; the horizon stays, so nothing written
 * meanwhile is missed. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "log.h"
#include "mem.h"
#include "pqlog.h"
#include "quota_db.h"
#include "thr.h"

#define RETRY_MAX 10.0      /* s between attempts while reads fail */
#define LOG_EVERY 60.0      /* s between two lines about the same trouble */

static struct {
    char *conninfo;
    quota_db_post_fn post;
    atomic_int up;
    _Atomic double last_read;
} Q;

void quota_msg_free(struct quota_msg *m)
{
    if (m) {
        quota_usage_free(m->usage);
        free(m);
    }
}

void quota_db_state(int *up, double *last_read)
{
    *up = atomic_load(&Q.up);
    *last_read = atomic_load(&Q.last_read);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* libpq's or the server's message as one line, never a password (libpq
 * does not echo the conninfo). */
static void one_line(char *dst, size_t size, const char *msg)
{
    pqlog_text(dst, size, msg ? msg : "");
}

static PGconn *connect_db(char *err, size_t esize)
{
    char st[16];
    const char *keys[] = { "application_name", "connect_timeout", "keepalives_idle",
                           "keepalives_interval", "keepalives_count", "dbname", NULL };
    const char *vals[] = { "mailrosterd-quota", "5", "10", "5", "3", Q.conninfo, NULL };
    const char *p[1] = { st };

    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    pqlog_attach(pg, "quota usage database");
    if (PQstatus(pg) != CONNECTION_OK) {
        one_line(err, esize, PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    snprintf(st, sizeof(st), "%d", QUOTA_DB_TIMEOUT_MS);
    PGresult *r = PQexecParams(pg, "SELECT set_config('statement_timeout', $1, false)", 1, NULL, p, NULL,
                               NULL, 0);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        one_line(err, esize, PQresultErrorMessage(r));
    PQclear(r);
    if (!ok) {
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

/* A statement's failure as one line, with a hint for what a sysop can fix. */
static void failed(PGresult *r, char *err, size_t esize)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    char why[300];
    one_line(why, sizeof(why), PQresultErrorMessage(r));
    if (state && !strcmp(state, "42703"))       /* undefined_column */
        snprintf(err, esize, "%s (the schema is older than version 7: apply "
                 "sql/migrations/0007_quota_usage_changes.sql)", why);
    else if (state && !strcmp(state, "42501"))  /* insufficient_privilege */
        snprintf(err, esize, "%s (the database role needs SELECT on mailroster.quota_usage: "
                 "run sql/roles.sql)", why);
    else
        snprintf(err, esize, "%s", why);
}

/* One read: every row (from = NULL) or those written at or after the
 * horizon from. The rows into *out, the new horizon into horizon. */
static int read_rows(PGconn *pg, const char *from, struct quota_usage **out, char *horizon, size_t hsize,
                     char *err, size_t esize)
{
    const char *p[1] = { from };
    PGresult *r = PQexecParams(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL, NULL, NULL,
                               NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        failed(r, err, esize);
    PQclear(r);
    if (!ok)
        return -1;
    /* the first statement takes the snapshot both statements read */
    r = PQexecParams(pg, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text", 0, NULL, NULL, NULL, NULL, 0);
    ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok)
        snprintf(horizon, hsize, "%s", PQgetvalue(r, 0, 0));
    else
        failed(r, err, esize);
    PQclear(r);
    if (ok) {
        r = from ? PQexecParams(pg, "SELECT username, bytes, messages FROM mailroster.quota_usage "
                                    "WHERE xact_id >= $1::xid8", 1, NULL, p, NULL, NULL, 0)
                 /* xact_id named here too: a schema without it fails at once, clearly */
                 : PQexecParams(pg, "SELECT username, bytes, messages FROM mailroster.quota_usage "
                                    "WHERE xact_id IS NOT NULL", 0, NULL, NULL, NULL, NULL, 0);
        ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQnfields(r) == 3;
        if (ok) {
            struct quota_usage *u = quota_usage_new();
            for (int i = 0, n = PQntuples(r); i < n; i++)
                quota_usage_set(u, PQgetvalue(r, i, 0), strtoll(PQgetvalue(r, i, 1), NULL, 10),
                                strtoll(PQgetvalue(r, i, 2), NULL, 10));
            *out = u;
        } else {
            failed(r, err, esize);
        }
        PQclear(r);
    }
    r = PQexecParams(pg, ok ? "COMMIT" : "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
    PQclear(r);
    return ok ? 0 : -1;
}

static void *quota_db_main(void *arg)
{
    PGconn *pg = NULL;
    char horizon[32] = "", err[512], last_err[512] = "";
    double next_whole = 0, pause = QUOTA_DB_POLL, last_log = -LOG_EVERY;
    int ever = 0, troubled = 0;
    (void)arg;
    thr_role("mr-quota-db", 1);

    for (;;) {
        double t0 = mono_now();
        int ok = 0, whole = horizon[0] == 0 || t0 >= next_whole;
        if (pg == NULL)
            pg = connect_db(err, sizeof(err));
        if (pg) {
            struct quota_usage *u = NULL;
            char h[32];
            if (read_rows(pg, whole ? NULL : horizon, &u, h, sizeof(h), err, sizeof(err)) == 0) {
                struct quota_msg *m = xcalloc(1, sizeof(*m));
                if (!ever || (whole && log_verbose()))
                    msg_info("quota usage: read %zu rows of mailroster.quota_usage", quota_usage_count(u));
                m->whole = whole;
                m->usage = u;
                Q.post(m);
                snprintf(horizon, sizeof(horizon), "%s", h);
                if (whole)
                    next_whole = t0 + QUOTA_DB_WHOLE_EVERY;
                ok = ever = 1;
            } else if (PQstatus(pg) != CONNECTION_OK) {
                PQfinish(pg);
                pg = NULL;
            }
        }
        atomic_store(&Q.up, ok);
        if (ok) {
            atomic_store(&Q.last_read, wall_now());
            if (troubled)
                msg_info("quota usage: reading mailroster.quota_usage again");
            troubled = 0;
            last_err[0] = 0;
            pause = QUOTA_DB_POLL;
        } else {
            /* the same trouble once a minute; a new one at once */
            if (strcmp(err, last_err) != 0 || t0 - last_log >= LOG_EVERY) {
                msg_warn("quota usage: cannot read mailroster.quota_usage: %s; %s", err,
                         ever ? "the over-quota check uses the usage read last"
                              : "the over-quota check is skipped until it can");
                last_log = t0;
                snprintf(last_err, sizeof(last_err), "%s", err);
            }
            troubled = 1;
            pause = pause * 2 < RETRY_MAX ? pause * 2 : RETRY_MAX;
        }
        double left = t0 + pause - mono_now();
        if (left > 0)
            sleep_s(left);
    }
    return NULL;
}

void quota_db_start(const char *conninfo, quota_db_post_fn post)
{
    pthread_t t;
    pthread_attr_t attr;

    Q.conninfo = xstrdup(conninfo);
    Q.post = post;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, quota_db_main, NULL) != 0)
        msg_fatal("cannot start the quota usage thread: %s", strerror(errno));
    pthread_attr_destroy(&attr);
}
