/* adm_db.c - the admin database thread (see adm_db.h). Every write is one
 * transaction: the directory change (whose triggers append the change log
 * and raise NOTIFY) and its audit row commit together. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "adm_db.h"
#include "log.h"
#include "mem.h"
#include "policy.h"
#include "pqlog.h"
#include "thr.h"

/* Two workers, each with its own connection: writes run one at a time in
 * order; reads (usage, counters, export) never wait behind a write that
 * waits on a lock. */
struct worker {
    const char *name;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct adm_job *head, *tail;
    PGconn *pg;
};

static struct {
    char *conninfo;
    adm_post_fn done;
    struct worker w[2];
} W = { .w = { { .name = "mailrosterd-admin", .lock = PTHREAD_MUTEX_INITIALIZER,
                 .cond = PTHREAD_COND_INITIALIZER },
               { .name = "mailrosterd-admin-read", .lock = PTHREAD_MUTEX_INITIALIZER,
                 .cond = PTHREAD_COND_INITIALIZER } } };

/* A stop closes the gate: no COMMIT begins after it, and the stop waits
 * for one that has begun, so that it can tell what was committed. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stopping;
    int committing;
} G = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };

/* the connection of the worker running this job */
static __thread PGconn *cur_pg;
#define A_PG cur_pg

void adm_job_free(struct adm_job *j)
{
    if (j == NULL)
        return;
    adm_args_free(&j->args);
    free(j->key1);
    free(j->key2);
    for (int i = 0; i < j->nset; i++)
        free(j->set_val[i]);
    for (int i = 0; i < j->nlist; i++)
        free(j->list[i]);
    free(j->list);
    free(j->commit_reply);
    free(j->object);
    buf_free(&j->reply);
    free(j);
}

void adm_db_stop(void)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&G.lock);
    G.stopping = 1;
    while (G.committing > 0 && pthread_cond_timedwait(&G.cond, &G.lock, &until) == 0)
        ;
    pthread_mutex_unlock(&G.lock);
}

int adm_db_job_committed(struct adm_job *j)
{
    pthread_mutex_lock(&G.lock);
    int c = j->committed;
    pthread_mutex_unlock(&G.lock);
    return c;
}

/* COMMIT unless the daemon is stopping: 0, or -1 (rolled back). */
static int gated_commit(struct adm_job *j);

void adm_db_submit(struct adm_job *j)
{
    struct worker *w = &W.w[j->read_only ? 1 : 0];
    pthread_mutex_lock(&w->lock);
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* --- one transaction's helpers ------------------------------------------- */

static void err_reply(struct adm_job *j, const char *code, const char *text)
{
    buf_reset(&j->reply);
    buf_printf(&j->reply, "ERR %s %s\n", code, text);
    j->ok = 0;
}

/* Map a failed statement to the protocol's error codes. */
static void pg_fail(struct adm_job *j, PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char text[512];

    if (msg == NULL)
        msg = PQerrorMessage(A_PG);
    snprintf(text, sizeof(text), "%s", msg);
    for (char *p = text; *p; p++)
        if (*p == '\n')
            *p = ' ';
    if (state == NULL || PQstatus(A_PG) != CONNECTION_OK || strncmp(state, "08", 2) == 0)
        err_reply(j, "unavailable", "database unavailable");
    else if (!strcmp(state, "23505"))
        err_reply(j, "exists", text);
    else if (!strcmp(state, "23503"))
        err_reply(j, "refused", text);
    else if (!strncmp(state, "23", 2) || !strncmp(state, "22", 2) || !strcmp(state, "P0001"))
        err_reply(j, "bad-input", text);
    else if (!strcmp(state, "42501")) {
        msg_error("admin database: %s", text);
        err_reply(j, "internal", "the admin_database role lacks a right (see the log)");
    } else {
        msg_error("admin database: %s: %s", state, text);
        err_reply(j, "internal", "database error (see the log)");
    }
}

static PGresult *q(struct adm_job *j, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(A_PG, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    pg_fail(j, r);
    PQclear(r);
    return NULL;
}

static int cmd(struct adm_job *j, const char *sql)
{
    PGresult *r = q(j, sql, 0, NULL);
    PQclear(r);
    return r ? 0 : -1;
}

static void rollback(void)
{
    PQclear(PQexec(A_PG, "ROLLBACK"));
}

/* The request words for the audit row, passwords left out. */
static void audit_words(struct adm_job *j, struct buf *out)
{
    for (int i = 0; i < j->args.argc; i++) {
        if (i)
            buf_addc(out, ' ');
        if (!strncmp(j->args.argv[i], "password=", 9))
            buf_adds(out, "password=(hash)");
        else if (i == 3 && !strcmp(j->cmd, "user passwd"))
            buf_adds(out, "(hash)");
        else
            adm_quote(out, j->args.argv[i]);
    }
}

/* Audit row, the change to wait for, commit, "OK word text". */
static int finish(struct adm_job *j, const char *object, const char *word, const char *text)
{
    struct buf words;
    PGresult *r;
    buf_init(&words);
    audit_words(j, &words);
    const char *p[4] = { j->actor, j->cmd, object, words.data };
    r = q(j, "INSERT INTO mailroster.audit_log (actor, action, object, detail) "
             "VALUES ($1, $2, $3, jsonb_build_object('command', $4::text)) RETURNING id", 4, p);
    buf_free(&words);
    if (r == NULL)
        return -1;
    j->audit_id = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    /* directory writers hold the advisory lock: the newest seq is ours */
    if ((r = q(j, "SELECT coalesce(max(seq), 0) FROM mailroster.change_log", 0, NULL)) == NULL)
        return -1;
    j->seq = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    struct buf ok;
    buf_init(&ok);
    buf_printf(&ok, "OK %s%s%s\n", word, text && *text ? " " : "", text ? text : "");
    free(j->commit_reply);
    j->commit_reply = ok.data;
    free(j->object);
    j->object = xstrdup(object);
    if (gated_commit(j) < 0)
        return -1;
    buf_reset(&j->reply);
    buf_adds(&j->reply, j->commit_reply);
    free(j->commit_reply);
    j->commit_reply = NULL;
    j->ok = 1;
    return 0;
}

static int gated_commit(struct adm_job *j)
{
    pthread_mutex_lock(&G.lock);
    int stopping = G.stopping;
    if (!stopping)
        G.committing++;
    pthread_mutex_unlock(&G.lock);
    if (stopping) {
        rollback();
        err_reply(j, "unavailable", "mailrosterd is stopping: nothing was committed");
        return -1;
    }
    int rc = cmd(j, "COMMIT");
    pthread_mutex_lock(&G.lock);
    j->committed = rc == 0;
    G.committing--;
    pthread_cond_broadcast(&G.cond);
    pthread_mutex_unlock(&G.lock);
    return rc;
}

/* A write that must touch a row, then the commit: "OK word object".
 * Nothing matched: rolled back, "ERR not-found missing". */
static void write_one(struct adm_job *j, const char *sql, int n, const char *const *p,
                      const char *missing, const char *object, const char *word)
{
    PGresult *r = q(j, sql, n, p);
    if (r == NULL) {
        rollback();
        return;
    }
    int rows = atoi(PQcmdTuples(r));
    PQclear(r);
    if (rows == 0) {
        rollback();
        err_reply(j, "not-found", missing);
        return;
    }
    finish(j, object, word, object);
}

/* The first half of an "ensure" of an existing row: sel answers one
 * boolean, whether the row (locked FOR UPDATE) is as asked. As asked:
 * "OK unchanged"; else upd changes it ("OK updated"). 1 when answered
 * (or failed and rolled back), 0 when there is no row: the caller creates
 * it. */
static int ensure_existing(struct adm_job *j, const char *sel, const char *upd, int n, const char *const *p,
                           const char *missing)
{
    PGresult *r = q(j, sel, n, p);
    if (r == NULL) {
        rollback();
        return 1;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    int same = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (same) {
        rollback();
        buf_printf(&j->reply, "OK unchanged %s\n", j->key1);
        j->ok = 1;
    } else
        write_one(j, upd, n, p, missing, j->key1, "updated");
    return 1;
}

/* Append ", col = $n::cast" for each prepared value, from $first. */
static void set_list(struct adm_job *j, struct buf *sql, int first, const char *sep)
{
    for (int i = 0; i < j->nset; i++)
        buf_printf(sql, "%s%s = $%d::%s", i || *sep == ',' ? ", " : "", j->set_col[i], first + i,
                   j->set_cast[i]);
}

static void params_from(struct adm_job *j, const char **p, int first)
{
    for (int i = 0; i < j->nset; i++)
        p[first + i] = j->set_val[i];
}

/* --- the jobs -------------------------------------------------------------- */

/* domain add / ensure: key1 = name */
static int run_domain_add(void *pg, struct adm_job *j)
{
    struct buf sql;
    const char *p[32] = { j->key1 };
    PGresult *r;
    int ensure = !strcmp(j->cmd, "domain ensure");
    (void)pg;

    buf_init(&sql);
    params_from(j, p, 1);
    if (cmd(j, "BEGIN") < 0)
        goto out;
    if (ensure) {
        if ((r = q(j, "SELECT id FROM mailroster.domains WHERE name = $1 FOR UPDATE", 1, p)) == NULL)
            goto fail;
        int exists = PQntuples(r) > 0;
        PQclear(r);
        if (exists) {
            if (j->nset == 0) {
                rollback();
                buf_printf(&j->reply, "OK unchanged %s\n", j->key1);
                j->ok = 1;
                goto out;
            }
            buf_adds(&sql, "UPDATE mailroster.domains SET ");
            set_list(j, &sql, 2, "");
            buf_adds(&sql, " WHERE name = $1 AND (");
            for (int i = 0; i < j->nset; i++)
                buf_printf(&sql, "%s%s IS DISTINCT FROM $%d::%s", i ? " OR " : "", j->set_col[i], i + 2,
                           j->set_cast[i]);
            buf_adds(&sql, ")");
            if ((r = q(j, sql.data, 1 + j->nset, p)) == NULL)
                goto fail;
            int changed = atoi(PQcmdTuples(r)) > 0;
            PQclear(r);
            if (!changed) {
                rollback();
                buf_printf(&j->reply, "OK unchanged %s\n", j->key1);
                j->ok = 1;
                goto out;
            }
            finish(j, j->key1, "updated", j->key1);
            goto out;
        }
    }
    buf_adds(&sql, "INSERT INTO mailroster.domains (name");
    for (int i = 0; i < j->nset; i++)
        buf_printf(&sql, ", %s", j->set_col[i]);
    buf_adds(&sql, ") VALUES ($1");
    for (int i = 0; i < j->nset; i++)
        buf_printf(&sql, ", $%d::%s", i + 2, j->set_cast[i]);
    buf_adds(&sql, ")");
    if ((r = q(j, sql.data, 1 + j->nset, p)) == NULL)
        goto fail;
    PQclear(r);
    finish(j, j->key1, "created", j->key1);
    goto out;
fail:
    rollback();
out:
    buf_free(&sql);
    return 0;
}

/* domain set / enable / disable: key1 = name */
static int run_domain_update(void *pg, struct adm_job *j)
{
    struct buf sql;
    const char *p[32] = { j->key1 };
    (void)pg;

    buf_init(&sql);
    params_from(j, p, 1);
    buf_adds(&sql, "UPDATE mailroster.domains SET ");
    set_list(j, &sql, 2, "");
    buf_adds(&sql, " WHERE name = $1");
    if (cmd(j, "BEGIN") < 0)
        goto out;
    write_one(j, sql.data, 1 + j->nset, p, "no such domain", j->key1, "updated");
out:
    buf_free(&sql);
    return 0;
}

/* domain remove [--force]: key1 = name */
static int run_domain_remove(void *pg, struct adm_job *j)
{
    const char *p[1] = { j->key1 };
    PGresult *r;
    (void)pg;

    if (cmd(j, "BEGIN") < 0)
        return 0;
    r = q(j, "SELECT d.id, (SELECT count(*) FROM mailroster.mailboxes m WHERE m.domain_id = d.id), "
             "(SELECT count(*) FROM mailroster.aliases a WHERE a.domain_id = d.id) "
             "FROM mailroster.domains d WHERE d.name = $1 FOR UPDATE", 1, p);
    if (r == NULL)
        goto fail;
    if (PQntuples(r) == 0) {
        PQclear(r);
        rollback();
        err_reply(j, "not-found", "no such domain");
        return 0;
    }
    long nm = atol(PQgetvalue(r, 0, 1)), na = atol(PQgetvalue(r, 0, 2));
    PQclear(r);
    if ((nm || na) && !j->flag) {
        char text[200];
        rollback();
        snprintf(text, sizeof(text), "domain still has %ld mailboxes and %ld aliases "
                 "(remove them first, or use --force)", nm, na);
        err_reply(j, "refused", text);
        return 0;
    }
    if (cmd(j, "SET LOCAL lock_timeout = '10s'") < 0)
        goto fail;
    if ((r = q(j, "DELETE FROM mailroster.aliases WHERE domain_id = (SELECT id FROM mailroster.domains WHERE name = $1)", 1, p)) == NULL)
        goto fail;
    PQclear(r);
    if ((r = q(j, "DELETE FROM mailroster.mailboxes WHERE domain_id = (SELECT id FROM mailroster.domains WHERE name = $1)", 1, p)) == NULL)
        goto fail;
    PQclear(r);
    if ((r = q(j, "DELETE FROM mailroster.domains WHERE name = $1", 1, p)) == NULL)
        goto fail;
    PQclear(r);
    {
        char text[300];
        snprintf(text, sizeof(text), "%s (with %ld mailboxes and %ld aliases)", j->key1, nm, na);
        finish(j, j->key1, "removed", text);
    }
    return 0;
fail:
    rollback();
    return 0;
}

/* user add / ensure: key1 = domain, key2 = local part */
static int run_user_add(void *pg, struct adm_job *j)
{
    struct buf sql, addr;
    const char *p[32] = { j->key1, j->key2 };
    PGresult *r;
    int ensure = !strcmp(j->cmd, "user ensure");
    (void)pg;

    buf_init(&sql);
    buf_init(&addr);
    buf_printf(&addr, "%s@%s", j->key2, j->key1);
    params_from(j, p, 2);
    if (cmd(j, "BEGIN") < 0)
        goto out;
    if (ensure) {
        r = q(j, "SELECT m.id FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id "
                 "WHERE d.name = $1 AND m.local_part = $2 FOR UPDATE OF m", 2, p);
        if (r == NULL)
            goto fail;
        int exists = PQntuples(r) > 0;
        PQclear(r);
        if (!exists) {
            r = q(j, "SELECT 1 FROM mailroster.aliases a JOIN mailroster.domains d ON d.id = a.domain_id "
                     "WHERE d.name = $1 AND a.local_part = $2", 2, p);
            if (r == NULL)
                goto fail;
            int alias = PQntuples(r) > 0;
            PQclear(r);
            if (alias) {
                rollback();
                buf_printf(&j->reply, "OK conflict %s is an alias, not a mailbox\n", addr.data);
                j->ok = 1;
                goto out;
            }
        } else {
            /* an existing account keeps its password: ensure never resets it */
            int nupd = 0;
            buf_adds(&sql, "UPDATE mailroster.mailboxes m SET ");
            for (int i = 0; i < j->nset; i++) {
                if (!strcmp(j->set_col[i], "password"))
                    continue;
                buf_printf(&sql, "%s%s = $%d::%s", nupd ? ", " : "", j->set_col[i], i + 3, j->set_cast[i]);
                nupd++;
            }
            if (nupd == 0) {
                rollback();
                buf_printf(&j->reply, "OK unchanged %s\n", addr.data);
                j->ok = 1;
                goto out;
            }
            buf_adds(&sql, " FROM mailroster.domains d WHERE d.id = m.domain_id AND d.name = $1 "
                           "AND m.local_part = $2 AND (");
            nupd = 0;
            for (int i = 0; i < j->nset; i++) {
                if (!strcmp(j->set_col[i], "password"))
                    continue;
                buf_printf(&sql, "%sm.%s IS DISTINCT FROM $%d::%s", nupd++ ? " OR " : "", j->set_col[i],
                           i + 3, j->set_cast[i]);
            }
            buf_adds(&sql, ")");
            /* unused password parameter still has to be typed */
            for (int i = 0; i < j->nset; i++)
                if (!strcmp(j->set_col[i], "password"))
                    buf_printf(&sql, " AND $%d::text IS NOT NULL", i + 3);
            if ((r = q(j, sql.data, 2 + j->nset, p)) == NULL)
                goto fail;
            int changed = atoi(PQcmdTuples(r)) > 0;
            PQclear(r);
            if (!changed) {
                rollback();
                buf_printf(&j->reply, "OK unchanged %s\n", addr.data);
                j->ok = 1;
                goto out;
            }
            finish(j, addr.data, "updated", addr.data);
            goto out;
        }
    }
    buf_adds(&sql, "INSERT INTO mailroster.mailboxes (domain_id, local_part");
    for (int i = 0; i < j->nset; i++)
        buf_printf(&sql, ", %s", j->set_col[i]);
    buf_adds(&sql, ") SELECT d.id, $2");
    for (int i = 0; i < j->nset; i++)
        buf_printf(&sql, ", $%d::%s", i + 3, j->set_cast[i]);
    buf_adds(&sql, " FROM mailroster.domains d WHERE d.name = $1");
    write_one(j, sql.data, 2 + j->nset, p, "no such domain", addr.data, "created");
    goto out;
fail:
    rollback();
out:
    buf_free(&sql);
    buf_free(&addr);
    return 0;
}

/* user set / passwd / enable / disable / remove: key1 = domain, key2 = local */
static int run_user_update(void *pg, struct adm_job *j)
{
    struct buf sql, addr;
    const char *p[32] = { j->key1, j->key2 };
    (void)pg;

    buf_init(&sql);
    buf_init(&addr);
    buf_printf(&addr, "%s@%s", j->key2, j->key1);
    params_from(j, p, 2);
    if (j->flag) /* remove --purge */
        buf_adds(&sql, "DELETE FROM mailroster.mailboxes m USING mailroster.domains d "
                       "WHERE d.id = m.domain_id AND d.name = $1 AND m.local_part = $2");
    else {
        buf_adds(&sql, "UPDATE mailroster.mailboxes m SET ");
        set_list(j, &sql, 3, "");
        buf_adds(&sql, " FROM mailroster.domains d WHERE d.id = m.domain_id AND d.name = $1 AND m.local_part = $2");
    }
    if (cmd(j, "BEGIN") < 0)
        goto out;
    write_one(j, sql.data, 2 + (j->flag ? 0 : j->nset), p, "no such mailbox", addr.data,
              j->flag ? "purged" : "updated");
out:
    buf_free(&sql);
    buf_free(&addr);
    return 0;
}

/* destinations as a PostgreSQL array literal */
static void array_literal(struct adm_job *j, struct buf *out)
{
    buf_addc(out, '{');
    for (int i = 0; i < j->nlist; i++) {
        buf_adds(out, i ? ",\"" : "\"");
        for (const char *s = j->list[i]; *s; s++) {
            if (*s == '"' || *s == '\\')
                buf_addc(out, '\\');
            buf_addc(out, *s);
        }
        buf_addc(out, '"');
    }
    buf_addc(out, '}');
}

/* alias add / ensure / remove: key1 = domain, key2 = local part ("" = catch-all) */
static int run_alias(void *pg, struct adm_job *j)
{
    struct buf arr, src;
    /* $4: may_send, when the request gave it (NULL: as it is, or true) */
    const char *p[4] = { j->key1, j->key2, NULL, j->nset == 1 ? j->set_val[0] : NULL };
    PGresult *r;
    (void)pg;

    buf_init(&arr);
    buf_init(&src);
    buf_printf(&src, "%s@%s", j->key2, j->key1);
    array_literal(j, &arr);
    p[2] = arr.data;
    if (cmd(j, "BEGIN") < 0)
        goto out;
    if (!strcmp(j->cmd, "alias set")) {
        const char *ps[3] = { j->key1, j->key2, p[3] };
        write_one(j, "UPDATE mailroster.aliases a SET may_send = $3::boolean FROM mailroster.domains d "
                     "WHERE d.id = a.domain_id AND d.name = $1 AND a.local_part = $2", 3, ps,
                  "no such alias", src.data, "updated");
        goto out;
    }
    if (!strcmp(j->cmd, "alias remove")) {
        write_one(j, "DELETE FROM mailroster.aliases a USING mailroster.domains d WHERE d.id = a.domain_id "
                     "AND d.name = $1 AND a.local_part = $2", 2, p, "no such alias", src.data, "removed");
        goto out;
    }
    if (!strcmp(j->cmd, "alias ensure")) {
        r = q(j, "SELECT a.destinations = $3::text[] AND a.may_send = coalesce($4::boolean, a.may_send) "
                 "FROM mailroster.aliases a JOIN mailroster.domains d "
                 "ON d.id = a.domain_id WHERE d.name = $1 AND a.local_part = $2 FOR UPDATE OF a", 4, p);
        if (r == NULL)
            goto fail;
        if (PQntuples(r) > 0) {
            int same = PQgetvalue(r, 0, 0)[0] == 't';
            PQclear(r);
            if (same) {
                rollback();
                buf_printf(&j->reply, "OK unchanged %s\n", src.data);
                j->ok = 1;
                goto out;
            }
            r = q(j, "UPDATE mailroster.aliases a SET destinations = $3::text[], "
                     "may_send = coalesce($4::boolean, a.may_send) FROM mailroster.domains d "
                     "WHERE d.id = a.domain_id AND d.name = $1 AND a.local_part = $2", 4, p);
            if (r == NULL)
                goto fail;
            PQclear(r);
            finish(j, src.data, "updated", src.data);
            goto out;
        }
        PQclear(r);
        r = q(j, "SELECT 1 FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id "
                 "WHERE d.name = $1 AND m.local_part = $2", 2, p);
        if (r == NULL)
            goto fail;
        int mbox = PQntuples(r) > 0;
        PQclear(r);
        if (mbox) {
            rollback();
            buf_printf(&j->reply, "OK conflict %s is a mailbox, not an alias\n", src.data);
            j->ok = 1;
            goto out;
        }
    }
    write_one(j, "INSERT INTO mailroster.aliases (domain_id, local_part, destinations, may_send) "
                 "SELECT d.id, $2, $3::text[], coalesce($4::boolean, true) FROM mailroster.domains d "
                 "WHERE d.name = $1", 4, p,
              "no such domain", src.data, "created");
    goto out;
fail:
    rollback();
out:
    buf_free(&arr);
    buf_free(&src);
    return 0;
}

/* sender add / remove: key1 = address (or @domain), key2 = owner login */
static int run_sender(void *pg, struct adm_job *j)
{
    const char *p[2] = { j->key1, j->key2 };
    PGresult *r;
    int add = strcmp(j->cmd, "sender remove") != 0;
    (void)pg;

    if (cmd(j, "BEGIN") < 0)
        return 0;
    if (!strcmp(j->cmd, "sender ensure")) {
        r = q(j, "SELECT 1 FROM mailroster.sender_addresses s JOIN mailroster.mailboxes m ON m.id = s.mailbox_id "
                 "JOIN mailroster.domains d ON d.id = m.domain_id "
                 "WHERE s.address = $1 AND m.local_part || '@' || d.name = $2", 2, p);
        if (r == NULL)
            goto fail;
        int exists = PQntuples(r) > 0;
        PQclear(r);
        if (exists) {
            rollback();
            buf_printf(&j->reply, "OK unchanged %s\n", j->key1);
            j->ok = 1;
            return 0;
        }
    }
    if (add)
        r = q(j, "INSERT INTO mailroster.sender_addresses (mailbox_id, address) SELECT m.id, $1 "
                 "FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id "
                 "WHERE m.local_part || '@' || d.name = $2", 2, p);
    else
        r = q(j, "DELETE FROM mailroster.sender_addresses s USING mailroster.mailboxes m, mailroster.domains d "
                 "WHERE m.id = s.mailbox_id AND d.id = m.domain_id AND s.address = $1 "
                 "AND m.local_part || '@' || d.name = $2", 2, p);
    if (r == NULL)
        goto fail;
    int n = atoi(PQcmdTuples(r));
    PQclear(r);
    if (n == 0) {
        rollback();
        err_reply(j, "not-found", add ? "no such mailbox" : "no such sender address for that login");
        return 0;
    }
    finish(j, j->key1, add ? "created" : "removed", j->key1);
    return 0;
fail:
    rollback();
    return 0;
}

/* user show, second half: usage rows Dovecot's dict and the policy
 * service write. j->reply holds the row so far (no newline); key1 is the
 * address, key2 the send-limit window in seconds. */
static int run_user_usage(void *pg, struct adm_job *j)
{
    const char *p[2] = { j->key1, j->key2 };
    PGresult *r;
    (void)pg;

    r = A_PG == NULL ? NULL : PQexecParams(A_PG, "SELECT (SELECT bytes FROM mailroster.quota_usage WHERE username = $1), "
                           "(SELECT messages FROM mailroster.quota_usage WHERE username = $1), "
                           "(SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                           "   FROM mailroster.last_login WHERE username = $1), "
                           "(SELECT service FROM mailroster.last_login WHERE username = $1), "
                           "(SELECT coalesce(sum(messages), 0) FROM mailroster.send_counters "
                           "   WHERE username = $1 AND window_start > now() - make_interval(secs => $2::int)), "
                           "(SELECT coalesce(sum(recipients), 0) FROM mailroster.send_counters "
                           "   WHERE username = $1 AND window_start > now() - make_interval(secs => $2::int)), "
                           /* the effective windows (limit show has the details) */
                           "(SELECT coalesce(string_agg(format('%s %ss messages=%s recipients=%s', scope, window_seconds, "
                           "   coalesce(messages::text, 'unlimited'), coalesce(recipients::text, 'unlimited')), '; ' "
                           "   ORDER BY window_seconds), 'unlimited') FROM mailroster.send_usage($1) "
                           "   WHERE messages IS NOT NULL OR recipients IS NOT NULL), "
                           /* kept for the sysop, not loaded by the daemon */
                           "(SELECT m.display_name FROM mailroster.mailboxes m JOIN mailroster.domains d "
                           "   ON d.id = m.domain_id WHERE m.local_part || '@' || d.name = $1), "
                           "(SELECT m.metadata::text FROM mailroster.mailboxes m JOIN mailroster.domains d "
                           "   ON d.id = m.domain_id WHERE m.local_part || '@' || d.name = $1)",
                     2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        static const char *keys[] = { "quota_used_bytes", "quota_used_messages", "last_login",
                                      "last_login_service", "sent_messages_window",
                                      "sent_recipients_window", "send_windows", "display_name", "metadata" };
        for (int i = 0; i < 9; i++)
            adm_field(&j->reply, keys[i], PQgetisnull(r, 0, i) ? "" : PQgetvalue(r, 0, i));
        buf_adds(&j->reply, "\nOK 1 mailbox\n");
    } else {
        adm_field(&j->reply, "usage", "unavailable");
        buf_adds(&j->reply, "\nOK 1 mailbox (database unavailable: usage not shown)\n");
    }
    PQclear(r);
    j->ok = 1;
    return 0;
}

/* A limit value for a reply: the number, or "unlimited" for NULL. */
static const char *limit_value(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? "unlimited" : PQgetvalue(r, row, col);
}

/* One window row: scope, window, limits (both NULL: the scope states
 * "unlimited", and its window means nothing). */
static void window_row(struct adm_job *j, PGresult *r, int i, const char *scope)
{
    char win[32];
    int unlimited = PQgetisnull(r, i, 2) && PQgetisnull(r, i, 3);
    pol_fmt_window(strtol(PQgetvalue(r, i, 1), NULL, 10), win, sizeof(win));
    buf_adds(&j->reply, "*");
    adm_field(&j->reply, "scope", scope ? scope : PQgetvalue(r, i, 0));
    adm_field(&j->reply, "window", unlimited ? "" : win);
    adm_field(&j->reply, "messages", limit_value(r, i, 2));
    adm_field(&j->reply, "recipients", limit_value(r, i, 3));
}

/* limit show / log / reset: key1 = scope, key2 = login or domain */
static int run_limit(void *pg, struct adm_job *j)
{
    const char *p[1] = { j->key2 };
    PGresult *r;
    (void)pg;

    if (!strcmp(j->cmd, "limit show") && !strcmp(j->key1, "mailbox")) {
        /* the effective windows, as send_admit sees them, and their use */
        r = q(j, "SELECT scope, window_seconds, messages, recipients, sent_messages, sent_recipients, "
                 "to_char(frees_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                 "FROM mailroster.send_usage($1)", 1, p);
        if (r == NULL)
            return 0;
        buf_reset(&j->reply);
        int n = 0;
        for (int i = 0; i < PQntuples(r); i++) {
            int unlimited = PQgetisnull(r, i, 2) && PQgetisnull(r, i, 3);
            window_row(j, r, i, NULL);
            adm_field(&j->reply, "sent_messages", unlimited ? "" : PQgetvalue(r, i, 4));
            adm_field(&j->reply, "sent_recipients", unlimited ? "" : PQgetvalue(r, i, 5));
            adm_field(&j->reply, "frees_at", unlimited ? "" : PQgetvalue(r, i, 6));
            buf_addc(&j->reply, '\n');
            n += !unlimited;
        }
        if (PQntuples(r) == 0)
            buf_adds(&j->reply, "OK 0 windows: unlimited (no limit set for it, its domain or everyone)\n");
        else if (n == 0)
            buf_printf(&j->reply, "OK 0 windows: unlimited (stated by its %s limits)\n", PQgetvalue(r, 0, 0));
        else
            buf_printf(&j->reply, "OK %d windows\n", n);
        PQclear(r);
        j->ok = 1;
        return 0;
    }
    if (!strcmp(j->cmd, "limit show")) {
        /* what one scope states: its send_limits rows, and for a domain
         * the window of its send_limit_* columns (domain set) */
        const char *pp[2] = { j->key1, j->key2 };
        r = q(j, "SELECT 'limit set', l.window_seconds, l.messages, l.recipients FROM mailroster.send_limits l "
                 "LEFT JOIN mailroster.domains d ON d.id = l.domain_id "
                 "WHERE l.scope = $1 AND ($2::text IS NULL OR d.name = $2) "
                 "UNION ALL SELECT 'domain set', d.send_limit_window, nullif(d.send_limit_messages, 0), "
                 "nullif(d.send_limit_recipients, 0) FROM mailroster.domains d "
                 "WHERE $1 = 'domain' AND d.name = $2 AND (d.send_limit_messages > 0 OR d.send_limit_recipients > 0) "
                 "ORDER BY 2", 2, pp);
        if (r == NULL)
            return 0;
        buf_reset(&j->reply);
        for (int i = 0; i < PQntuples(r); i++) {
            window_row(j, r, i, j->key1);
            adm_field(&j->reply, "set_by", PQgetvalue(r, i, 0));
            buf_addc(&j->reply, '\n');
        }
        buf_printf(&j->reply, "OK %d windows\n", PQntuples(r));
        PQclear(r);
        j->ok = 1;
        return 0;
    }
    if (!strcmp(j->cmd, "limit log")) {
        r = q(j, "SELECT to_char(window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                 "messages, recipients FROM mailroster.send_counters WHERE username = $1 ORDER BY window_start",
              1, p);
        if (r == NULL)
            return 0;
        buf_reset(&j->reply);
        for (int i = 0; i < PQntuples(r); i++) {
            buf_adds(&j->reply, "*");
            adm_field(&j->reply, "window_start", PQgetvalue(r, i, 0));
            adm_field(&j->reply, "messages", PQgetvalue(r, i, 1));
            adm_field(&j->reply, "recipients", PQgetvalue(r, i, 2));
            buf_addc(&j->reply, '\n');
        }
        buf_printf(&j->reply, "OK %d rows\n", PQntuples(r));
        PQclear(r);
        j->ok = 1;
        return 0;
    }
    if (cmd(j, "BEGIN") < 0)
        return 0;
    if ((r = q(j, "DELETE FROM mailroster.send_counters WHERE username = $1", 1, p)) == NULL) {
        rollback();
        return 0;
    }
    char text[300];
    snprintf(text, sizeof(text), "%s (%s windows cleared)", j->key2, PQcmdTuples(r));
    PQclear(r);
    finish(j, j->key2, "reset", text);
    return 0;
}

/* The refusal of a write decided here (the transaction is rolled back):
 * its audit row, as the event loop writes one for the refusals it
 * decides, and "ERR refused why". */
static void refuse(struct adm_job *j, const char *why)
{
    struct buf words;
    buf_init(&words);
    audit_words(j, &words);
    const char *p[4] = { j->actor, j->cmd, words.data, why };
    PGresult *r = q(j, "INSERT INTO mailroster.audit_log (actor, action, object, detail) "
                       "VALUES ($1, 'refused: ' || $2, $3, jsonb_build_object('refused', $4::text))", 4, p);
    PQclear(r);
    buf_free(&words);
    msg_warn("admin: refused %s for %s: %s", j->cmd, j->actor, why);
    err_reply(j, "refused", why);
}

/* The value of column col in the job, or NULL (unlimited / not given);
 * *given says whether it was given. */
static const char *job_value(const struct adm_job *j, const char *col, int *given)
{
    for (int i = 0; i < j->nset; i++)
        if (!strcmp(j->set_col[i], col)) {
            *given = 1;
            return j->set_val[i];
        }
    *given = 0;
    return NULL;
}

/* limit set / remove: key1 = scope, key2 = address / domain / NULL,
 * window_seconds, messages, recipients in the column list, flag =
 * "unlimited". */
static int run_limit_write(void *pg, struct adm_job *j)
{
    const char *p[8] = { j->key1, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
    char mbx[32] = "", dom[32] = "", object[300];
    int gw, gm, gr;
    PGresult *r;
    (void)pg;

    if (cmd(j, "BEGIN") < 0)
        return 0;
    /* the target's id */
    if (!strcmp(j->key1, "mailbox")) {
        const char *pa[1] = { j->key2 };
        r = q(j, "SELECT m.id FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id "
                 "WHERE d.name = split_part($1, '@', 2) AND m.local_part = split_part($1, '@', 1)", 1, pa);
        if (r == NULL)
            goto fail;
        if (PQntuples(r) == 1)
            snprintf(mbx, sizeof(mbx), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        if (!*mbx) {
            rollback();
            err_reply(j, "not-found", "no such mailbox");
            return 0;
        }
        p[1] = mbx;
    } else if (!strcmp(j->key1, "domain")) {
        const char *pa[1] = { j->key2 };
        if ((r = q(j, "SELECT id FROM mailroster.domains WHERE name = $1", 1, pa)) == NULL)
            goto fail;
        if (PQntuples(r) == 1)
            snprintf(dom, sizeof(dom), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        if (!*dom) {
            rollback();
            err_reply(j, "not-found", "no such domain");
            return 0;
        }
        p[2] = dom;
    }
    snprintf(object, sizeof(object), "%s%s%s", !strcmp(j->key1, "mailbox") ? "user" : j->key1,
             j->key2 ? " " : "", j->key2 ? j->key2 : "");
    p[3] = job_value(j, "window_seconds", &gw);
    p[4] = job_value(j, "messages", &gm);
    p[5] = job_value(j, "recipients", &gr);
    p[6] = gm ? "true" : "false";
    p[7] = gr ? "true" : "false";
#define TARGET "scope = $1 AND mailbox_id IS NOT DISTINCT FROM $2::bigint AND domain_id IS NOT DISTINCT FROM $3::bigint"
    int removed = 0;
    if (!strcmp(j->cmd, "limit remove")) {
        r = q(j, "DELETE FROM mailroster.send_limits WHERE " TARGET " AND ($4::int IS NULL OR window_seconds = $4::int)",
              4, p);
        if (r == NULL)
            goto fail;
        removed = atoi(PQcmdTuples(r));
        PQclear(r);
        if (removed == 0) {
            rollback();
            err_reply(j, "not-found", gw ? "no such window" : "no windows set there");
            return 0;
        }
    } else if (j->flag) {
        /* "unlimited": the scope's windows give way to one that states it */
        if ((r = q(j, "DELETE FROM mailroster.send_limits WHERE " TARGET, 3, p)) == NULL)
            goto fail;
        PQclear(r);
        r = q(j, "INSERT INTO mailroster.send_limits (scope, mailbox_id, domain_id, window_seconds) "
                 "VALUES ($1, $2::bigint, $3::bigint, 86400)", 3, p);
        if (r == NULL)
            goto fail;
        PQclear(r);
    } else {
        /* an "unlimited" row of the scope gives way to a real window */
        r = q(j, "DELETE FROM mailroster.send_limits WHERE " TARGET
                 " AND messages IS NULL AND recipients IS NULL AND window_seconds <> $4::int", 4, p);
        if (r == NULL)
            goto fail;
        PQclear(r);
        r = q(j, "INSERT INTO mailroster.send_limits AS l (scope, mailbox_id, domain_id, window_seconds, messages, recipients) "
                 "VALUES ($1, $2::bigint, $3::bigint, $4::int, $5::int, $6::int) "
                 "ON CONFLICT (scope, coalesce(mailbox_id, 0), coalesce(domain_id, 0), window_seconds) DO UPDATE "
                 "SET messages = CASE WHEN $7::boolean THEN excluded.messages ELSE l.messages END, "
                 "recipients = CASE WHEN $8::boolean THEN excluded.recipients ELSE l.recipients END", 8, p);
        if (r == NULL)
            goto fail;
        PQclear(r);
    }
#undef TARGET
    if (j->confined && *mbx) {
        /* a domain admin may only tighten what the mailbox inherits */
        const char *pm[1] = { mbx };
        if ((r = q(j, "SELECT mailroster.send_limits_problem($1::bigint)", 1, pm)) == NULL)
            goto fail;
        if (!PQgetisnull(r, 0, 0)) {
            char why[600];
            snprintf(why, sizeof(why), "%s may not loosen the limits of %s: %s", j->actor, j->key2,
                     PQgetvalue(r, 0, 0));
            PQclear(r);
            rollback();
            refuse(j, why);
            return 0;
        }
        PQclear(r);
    }
    char text[400];
    if (removed)
        snprintf(text, sizeof(text), "%s (%d windows)", object, removed);
    else
        snprintf(text, sizeof(text), "%s", object);
    finish(j, object, removed ? "removed" : "set", text);
    return 0;
fail:
    rollback();
    return 0;
}

/* master add / remove: key1 = name */
static int run_master(void *pg, struct adm_job *j)
{
    struct buf sql;
    const char *p[32] = { j->key1 };
    (void)pg;

    buf_init(&sql);
    params_from(j, p, 1);
    if (cmd(j, "BEGIN") < 0)
        goto out;
    if (!strcmp(j->cmd, "master ensure")) {
        /* an existing master keeps its password; its domains follow the request */
        const char *dom = NULL;
        for (int i = 0; i < j->nset; i++)
            if (!strcmp(j->set_col[i], "domains"))
                dom = j->set_val[i];
        const char *pp[2] = { j->key1, dom };
        if (ensure_existing(j, "SELECT domains IS NOT DISTINCT FROM $2::text[] FROM mailroster.master_users "
                               "WHERE name = $1 FOR UPDATE",
                            "UPDATE mailroster.master_users SET domains = $2::text[] WHERE name = $1", 2, pp,
                            "no such master user"))
            goto out;
    }
    if (!strcmp(j->cmd, "master remove"))
        buf_adds(&sql, "DELETE FROM mailroster.master_users WHERE name = $1");
    else {
        buf_adds(&sql, "INSERT INTO mailroster.master_users (name");
        for (int i = 0; i < j->nset; i++)
            buf_printf(&sql, ", %s", j->set_col[i]);
        buf_adds(&sql, ") VALUES ($1");
        for (int i = 0; i < j->nset; i++)
            buf_printf(&sql, ", $%d::%s", i + 2, j->set_cast[i]);
        buf_adds(&sql, ")");
    }
    write_one(j, sql.data, 1 + j->nset, p, "no such master user", j->key1,
              strcmp(j->cmd, "master remove") ? "created" : "removed");
out:
    buf_free(&sql);
    return 0;
}

/* transport add / ensure / set / remove / list: key1 = canonical pattern,
 * key2 = the transport (add, ensure) */
static int run_transport(void *pg, struct adm_job *j)
{
    struct buf sql;
    const char *p[32] = { j->key1, j->key2 };
    PGresult *r;
    (void)pg;

    buf_init(&sql);
    if (!strcmp(j->cmd, "transport list")) {
        r = q(j, "SELECT pattern, transport, CASE WHEN enabled THEN 'yes' ELSE 'no' END FROM mailroster.transports "
                 "ORDER BY pattern COLLATE \"C\"", 0, NULL);
        if (r != NULL) {
            for (int i = 0; i < PQntuples(r); i++) {
                buf_adds(&j->reply, "*");
                adm_field(&j->reply, "pattern", PQgetvalue(r, i, 0));
                adm_field(&j->reply, "transport", PQgetvalue(r, i, 1));
                adm_field(&j->reply, "enabled", PQgetvalue(r, i, 2));
                buf_addc(&j->reply, '\n');
            }
            buf_printf(&j->reply, "OK %d transports\n", PQntuples(r));
            j->ok = 1;
            PQclear(r);
        }
        goto out;
    }
    if (cmd(j, "BEGIN") < 0)
        goto out;
    if (!strcmp(j->cmd, "transport remove")) {
        write_one(j, "DELETE FROM mailroster.transports WHERE pattern = $1", 1, p, "no such transport entry",
                  j->key1, "removed");
        goto out;
    }
    if (!strcmp(j->cmd, "transport set")) {
        params_from(j, p, 1);
        buf_adds(&sql, "UPDATE mailroster.transports SET ");
        set_list(j, &sql, 2, "");
        buf_adds(&sql, " WHERE pattern = $1");
        write_one(j, sql.data, 1 + j->nset, p, "no such transport entry", j->key1, "updated");
        goto out;
    }
    if (!strcmp(j->cmd, "transport ensure") &&
        ensure_existing(j, "SELECT transport = $2 AND enabled FROM mailroster.transports WHERE pattern = $1 FOR UPDATE",
                        "UPDATE mailroster.transports SET transport = $2, enabled = true WHERE pattern = $1", 2, p,
                        "no such transport entry"))
        goto out;
    write_one(j, "INSERT INTO mailroster.transports (pattern, transport) VALUES ($1, $2)", 2, p,
              "not created", j->key1, "created");
out:
    buf_free(&sql);
    return 0;
}

/* The id of a mailbox by address, as a SQL expression on $1. */
#define MAILBOX_ID(n) "(SELECT m.id FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id " \
                      "WHERE m.local_part || '@' || d.name = $" n ")"

/* sieve set|show|remove: key1 = address, key2 = the script (set);
 * share add|remove: key1 = owner, key2 = shared with; share list: key1 =
 * domain or NULL, key2 = a domain admin's " dom1 dom2 " or NULL */
static int run_sieve_share(void *pg, struct adm_job *j)
{
    const char *p[2] = { j->key1, j->key2 };
    PGresult *r;
    (void)pg;

    if (!strcmp(j->cmd, "sieve show") || !strcmp(j->cmd, "share list")) {
        int sieve = !strncmp(j->cmd, "sieve ", 6);
        r = sieve ? q(j, "SELECT $1::text, s.script, to_char(s.updated_at AT TIME ZONE 'UTC', "
                         "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM mailroster.sieve_scripts s "
                         "WHERE s.mailbox_id = " MAILBOX_ID("1"), 1, p)
                  : q(j, "SELECT mo.local_part || '@' || dom.name, mt.local_part || '@' || dt.name "
                         "FROM mailroster.shared_mailboxes s "
                         "JOIN mailroster.mailboxes mo ON mo.id = s.mailbox_id JOIN mailroster.domains dom ON dom.id = mo.domain_id "
                         "JOIN mailroster.mailboxes mt ON mt.id = s.shared_to_id JOIN mailroster.domains dt ON dt.id = mt.domain_id "
                         "WHERE ($1::text IS NULL OR dom.name = $1) "
                         "AND ($2::text IS NULL OR position(' ' || dom.name || ' ' IN $2) > 0) "
                         "ORDER BY mo.local_part || '@' || dom.name COLLATE \"C\", "
                         "mt.local_part || '@' || dt.name COLLATE \"C\"", 2, p);
        if (r == NULL)
            return 0;
        if (sieve && PQntuples(r) == 0) {
            PQclear(r);
            err_reply(j, "not-found", "no Sieve script for that mailbox");
            return 0;
        }
        for (int i = 0; i < PQntuples(r); i++) {
            buf_adds(&j->reply, "*");
            adm_field(&j->reply, sieve ? "address" : "mailbox", PQgetvalue(r, i, 0));
            adm_field(&j->reply, sieve ? "script" : "shared_with", PQgetvalue(r, i, 1));
            if (sieve)
                adm_field(&j->reply, "updated_at", PQgetvalue(r, i, 2));
            buf_addc(&j->reply, '\n');
        }
        if (sieve)
            buf_adds(&j->reply, "OK 1 script\n");
        else
            buf_printf(&j->reply, "OK %d shares\n", PQntuples(r));
        PQclear(r);
        j->ok = 1;
        return 0;
    }
    if (cmd(j, "BEGIN") < 0)
        return 0;
    if (!strcmp(j->cmd, "sieve set"))
        write_one(j, "INSERT INTO mailroster.sieve_scripts (mailbox_id, script) SELECT " MAILBOX_ID("1") ", $2 "
                     "WHERE " MAILBOX_ID("1") " IS NOT NULL "
                     "ON CONFLICT (mailbox_id) DO UPDATE SET script = EXCLUDED.script, updated_at = now()", 2, p,
                  "no such mailbox", j->key1, "updated");
    else if (!strcmp(j->cmd, "sieve remove"))
        write_one(j, "DELETE FROM mailroster.sieve_scripts WHERE mailbox_id = " MAILBOX_ID("1"), 1, p,
                  "no Sieve script for that mailbox", j->key1, "removed");
    else if (!strcmp(j->cmd, "share add"))
        write_one(j, "INSERT INTO mailroster.shared_mailboxes (mailbox_id, shared_to_id) SELECT a, b FROM "
                     "(SELECT " MAILBOX_ID("1") " AS a, " MAILBOX_ID("2") " AS b) x "
                     "WHERE a IS NOT NULL AND b IS NOT NULL ON CONFLICT DO NOTHING", 2, p,
                  "no such mailbox, or already shared", j->key1, "created");
    else
        write_one(j, "DELETE FROM mailroster.shared_mailboxes WHERE mailbox_id = " MAILBOX_ID("1")
                     " AND shared_to_id = " MAILBOX_ID("2"), 2, p, "no such share", j->key1, "removed");
    return 0;
}

/* export [DOMAIN]: key1 = domain or NULL */
static int run_export(void *pg, struct adm_job *j)
{
    const char *p[1] = { j->key1 };
    PGresult *r;
    (void)pg;
    if (cmd(j, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") < 0)
        return 0;
    /* without secrets (flag): the "password" value of mailbox and master
     * lines, which the format puts third, after a string without '"'
     * unescaped, becomes null */
    if (j->flag)
        r = q(j, "SELECT regexp_replace(l, "
                 "'^(\\{\"kind\":\"(mailbox\",\"address|master\",\"name)\":\"([^\"\\\\]|\\\\.)*\",\"password\":)"
                 "(null|\"([^\"\\\\]|\\\\.)*\")', '\\1null') "
                 "FROM mailroster.export_jsonl($1) AS l", 1, p);
    else
        r = q(j, "SELECT l FROM mailroster.export_jsonl($1) AS l", 1, p);
    if (r == NULL) {
        rollback();
        return 0;
    }
    buf_reset(&j->reply);
    for (int i = 0; i < PQntuples(r); i++) {
        buf_adds(&j->reply, "*");
        adm_field(&j->reply, "json", PQgetvalue(r, i, 0));
        buf_addc(&j->reply, '\n');
    }
    buf_printf(&j->reply, "OK %d lines%s\n", PQntuples(r),
               j->flag ? " (password hashes left out: read-only access)" : "");
    PQclear(r);
    rollback();
    j->ok = 1;
    return 0;
}

/* Add the domain an import row touched to " a.example b.example" (the
 * first few; "..." after them). */
static void import_domain(struct buf *doms, int *ndoms, const char *kind, const char *key)
{
    const char *d = key;
    if (!strcmp(kind, "sender"))
        d = strchr(key, ' ') ? strchr(key, ' ') + 1 : key;   /* "ADDRESS LOGIN": the login's */
    if (!strcmp(kind, "master"))
        return;
    if (strcmp(kind, "domain") != 0)
        d = strrchr(d, '@') ? strrchr(d, '@') + 1 : d;
    size_t n = strlen(d);
    for (const char *p = doms->data; p && (p = strstr(p, d)) != NULL; p += n)
        if (p[-1] == ' ' && (p[n] == ' ' || p[n] == 0))
            return;
    if ((*ndoms)++ < 8) {
        buf_addc(doms, ' ');
        buf_adds(doms, d);
    } else if (*ndoms == 9) {
        buf_adds(doms, " ...");
    }
}

/* Append a binary COPY field: its length in network order, then its
 * octets. */
static void copy_field(struct buf *out, const void *p, uint32_t len)
{
    uint32_t n = htonl(len);
    buf_add(out, &n, 4);
    buf_add(out, p, len);
}

#define COPY_CHUNK (256 * 1024)

/* A line the COPY refuses (a text that is not UTF-8, the one fault a line
 * can have there) is named as the import names the others: its number is
 * the row's in the COPY's context ("COPY mr_import_input, line 3, ..."). */
static void copy_fail(struct adm_job *j, PGresult *r)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *ctx = PQresultErrorField(r, PG_DIAG_CONTEXT);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *at = ctx ? strstr(ctx, ", line ") : NULL;
    if (state && !strncmp(state, "22", 2) && msg && at && at[7] >= '1' && at[7] <= '9') {
        char text[512];
        snprintf(text, sizeof(text), "line %lu: %s", strtoul(at + 7, NULL, 10), msg);
        for (char *p = text; *p; p++)
            if (*p == '\n')
                *p = ' ';
        err_reply(j, "bad-input", text);
    } else {
        pg_fail(j, r);
    }
}

/* The import's lines (text, each ended by a newline) into
 * pg_temp.mr_import_input as rows (n, t) numbered from 1, by COPY in
 * PostgreSQL's binary form: no 47 MB parameter to bind, no quoting, no
 * splitting in SQL. 0, or -1 with the error in j->reply. */
static int copy_lines(struct adm_job *j, const char *text, size_t len)
{
    static const char head[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
    static const unsigned char fields[2] = { 0, 2 }, trailer[2] = { 0xff, 0xff };
    PGresult *r = PQexec(A_PG, "COPY pg_temp.mr_import_input (n, t) FROM STDIN (FORMAT binary)");
    const char *p = text, *end = text + len;
    uint32_t n = 0;
    int sent = 1;
    struct buf out;

    if (PQresultStatus(r) != PGRES_COPY_IN) {
        pg_fail(j, r);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    buf_init(&out);
    buf_add(&out, head, sizeof(head));
    while (p < end && sent == 1) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        uint32_t num = htonl(++n);
        buf_add(&out, fields, 2);
        copy_field(&out, &num, 4);
        copy_field(&out, p, (uint32_t)l);   /* (an import is at most 512 MiB) */
        if (out.len >= COPY_CHUNK) {
            sent = PQputCopyData(A_PG, out.data, (int)out.len);
            buf_reset(&out);
        }
        p = nl ? nl + 1 : end;
    }
    buf_add(&out, trailer, 2);
    if (sent == 1)
        sent = PQputCopyData(A_PG, out.data, (int)out.len);
    buf_free(&out);
    /* a failed send ends the copy with an error; the result says which */
    if (PQputCopyEnd(A_PG, sent == 1 ? NULL : "the import's lines could not be sent") != 1) {
        pg_fail(j, NULL);
        return -1;
    }
    int rc = 0;
    while ((r = PQgetResult(A_PG)) != NULL) {
        if (rc == 0 && PQresultStatus(r) != PGRES_COMMAND_OK) {
            copy_fail(j, r);
            rc = -1;
        }
        PQclear(r);
    }
    return rc;
}

/* import commit: key1 = the JSON lines, each ended by a newline; flag =
 * dry run. Since migration 0016 the lines go in by COPY; before it, as
 * one parameter of import_jsonl. */
static int run_import(void *pg, struct adm_job *j)
{
    const char *p[2] = { j->key1, j->flag ? "true" : "false" };
    PGresult *r;
    long created = 0, updated = 0, unchanged = 0, masters = 0;
    struct buf rows, doms, object;
    int ndoms = 0, input;
    (void)pg;

    if (cmd(j, "BEGIN") < 0)
        return 0;
    r = q(j, "SELECT to_regprocedure('mailroster.import_jsonl_input(boolean)') IS NOT NULL", 0, NULL);
    if (r == NULL) {
        rollback();
        return 0;
    }
    input = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (input) {
        if (cmd(j, "SELECT mailroster.import_input_open()") < 0 || copy_lines(j, j->key1, strlen(j->key1)) < 0) {
            rollback();
            return 0;
        }
        r = q(j, "SELECT line, action, kind, key FROM mailroster.import_jsonl_input($1::boolean)", 1, p + 1);
    } else {
        r = q(j, "SELECT line, action, kind, key FROM mailroster.import_jsonl($1, $2::boolean)", 2, p);
    }
    if (r == NULL) {
        rollback();
        return 0;
    }
    buf_init(&rows);
    buf_init(&doms);
    buf_init(&object);
    for (int i = 0; i < PQntuples(r); i++) {
        const char *action = PQgetvalue(r, i, 1);
        import_domain(&doms, &ndoms, PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
        masters += !strcmp(PQgetvalue(r, i, 2), "master");
        if (!strcmp(action, "created"))
            created++;
        else if (!strcmp(action, "updated"))
            updated++;
        else
            unchanged++;
        if (!strcmp(action, "unchanged"))
            continue;
        buf_adds(&rows, "*");
        adm_field(&rows, "line", PQgetvalue(r, i, 0));
        adm_field(&rows, "action", action);
        adm_field(&rows, "kind", PQgetvalue(r, i, 2));
        adm_field(&rows, "key", PQgetvalue(r, i, 3));
        buf_addc(&rows, '\n');
    }
    char text[200];
    snprintf(text, sizeof(text), "%ld created, %ld updated, %ld unchanged", created, updated, unchanged);
    /* the audit row's object and the log line say what came in */
    buf_printf(&object, "import of %d objects (%s; domains:%s%s)", PQntuples(r), text,
               ndoms ? doms.data : " none", masters ? "; master users" : "");
    PQclear(r);
    if (j->flag) {
        rollback();
        buf_reset(&j->reply);
        buf_add(&j->reply, rows.data ? rows.data : "", rows.len);
        buf_printf(&j->reply, "OK dry-run: would be %s\n", text);
        j->ok = 1;
    } else if (finish(j, object.data, "imported", text) == 0) {
        struct buf final;
        buf_init(&final);
        buf_add(&final, rows.data ? rows.data : "", rows.len);
        buf_add(&final, j->reply.data, j->reply.len);
        buf_reset(&j->reply);
        buf_add(&j->reply, final.data, final.len);
        buf_free(&final);
    }
    buf_free(&rows);
    buf_free(&doms);
    buf_free(&object);
    return 0;
}

/* A refused request of a known caller: the audit row alone, in a
 * statement of its own (nothing else was written). j->object holds the
 * reason the caller was given. */
static int run_refusal(void *pg, struct adm_job *j)
{
    struct buf words;
    PGresult *r;
    (void)pg;
    buf_init(&words);
    audit_words(j, &words);
    const char *p[4] = { j->actor, j->cmd, words.data, j->object ? j->object : "" };
    r = q(j, "INSERT INTO mailroster.audit_log (actor, action, object, detail) "
             "VALUES ($1, 'refused: ' || $2, $3, jsonb_build_object('refused', $4::text))", 4, p);
    buf_free(&words);
    PQclear(r);
    j->ok = r != NULL;
    return 0;
}

int (*adm_run_refusal)(void *, struct adm_job *) = run_refusal;
int (*adm_run_user_usage)(void *, struct adm_job *) = run_user_usage;
int (*adm_run_limit)(void *, struct adm_job *) = run_limit;
int (*adm_run_limit_write)(void *, struct adm_job *) = run_limit_write;
int (*adm_run_master)(void *, struct adm_job *) = run_master;
int (*adm_run_export)(void *, struct adm_job *) = run_export;
int (*adm_run_import)(void *, struct adm_job *) = run_import;
int (*adm_run_domain_add)(void *, struct adm_job *) = run_domain_add;
int (*adm_run_domain_update)(void *, struct adm_job *) = run_domain_update;
int (*adm_run_domain_remove)(void *, struct adm_job *) = run_domain_remove;
int (*adm_run_user_add)(void *, struct adm_job *) = run_user_add;
int (*adm_run_user_update)(void *, struct adm_job *) = run_user_update;
int (*adm_run_alias)(void *, struct adm_job *) = run_alias;
int (*adm_run_sender)(void *, struct adm_job *) = run_sender;
int (*adm_run_transport)(void *, struct adm_job *) = run_transport;
int (*adm_run_sieve_share)(void *, struct adm_job *) = run_sieve_share;

/* --- the thread -------------------------------------------------------------- */

static int ensure_conn(struct worker *w)
{
    const char *keys[] = { "application_name", "connect_timeout", "dbname", NULL };
    const char *vals[] = { w->name, "5", W.conninfo, NULL };

    if (w->pg && PQstatus(w->pg) == CONNECTION_OK) {
        cur_pg = w->pg;
        return 0;
    }
    if (w->pg)
        PQfinish(w->pg);
    w->pg = cur_pg = PQconnectdbParams(keys, vals, 1);
    pqlog_attach(w->pg, "admin database");
    if (PQstatus(A_PG) != CONNECTION_OK) {
        char text[512];
        snprintf(text, sizeof(text), "%s", PQerrorMessage(A_PG));
        text[strcspn(text, "\n")] = 0;
        msg_warn("admin database unavailable: %s", text);
        return -1;
    }
    return 0;
}

/* After the connection broke during a COMMIT: 1 if the transaction is in
 * (its audit row exists; the job gets the answer it would have had), -1 if
 * that cannot be told (the job says so), 0 if it is not in: run it again. */
static int committed_anyway(struct adm_job *j)
{
    char id[32];
    const char *p[1] = { id };
    if (j->commit_reply == NULL || j->audit_id == 0)
        return 0;
    snprintf(id, sizeof(id), "%" PRIu64, j->audit_id);
    PGresult *r = PQexecParams(A_PG, "SELECT 1 FROM mailroster.audit_log WHERE id = $1::bigint", 1, NULL, p,
                               NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) > 0 : -1;
    PQclear(r);
    if (rc == 1) {
        msg_warn("admin: %s: the database connection broke during COMMIT; the change is in (audit row %s)",
                 j->cmd, id);
        buf_reset(&j->reply);
        buf_adds(&j->reply, j->commit_reply);
        j->ok = 1;
    } else if (rc < 0) {
        err_reply(j, "unavailable",
                  "the database connection broke during COMMIT: whether the change was made is unknown (look with show)");
    } else {
        msg_warn("admin: %s: the database connection broke during COMMIT, which did not happen; running it again",
                 j->cmd);
    }
    return rc == 0 ? 0 : 1;
}

static void *adm_db_main(void *arg)
{
    struct worker *w = arg;
    thr_role("mr-admin-db", 1);
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (w->head == NULL)
            pthread_cond_wait(&w->cond, &w->lock);
        struct adm_job *j = w->head;
        w->head = j->next;
        if (w->head == NULL)
            w->tail = NULL;
        j->next = NULL;
        pthread_mutex_unlock(&w->lock);

        if (ensure_conn(w) < 0) {
            if (j->soft)
                j->run(NULL, j); /* answers without the database */
            else
                err_reply(j, "unavailable", "database unavailable");
        }
        else {
            j->run(A_PG, j);
            if (!j->ok && strstr(j->cmd, "ensure") && !strncmp(j->reply.data, "ERR exists", 10)) {
                /* another host created it between our look and our insert:
                 * looking again answers "unchanged" or "updated" */
                buf_reset(&j->reply);
                j->run(A_PG, j);
            }
            if (!j->ok && PQstatus(A_PG) != CONNECTION_OK) {
                /* the connection died under the job: if that was during its
                 * COMMIT, the change may be in; else one more try */
                if (ensure_conn(w) == 0 && committed_anyway(j) == 0) {
                    buf_reset(&j->reply);
                    free(j->commit_reply);
                    j->commit_reply = NULL;
                    j->run(A_PG, j);
                }
            }
        }
        W.done(j);
    }
    return NULL;
}

void adm_db_start(const char *conninfo, adm_post_fn done)
{
    pthread_t t;
    pthread_attr_t attr;

    W.conninfo = xstrdup(conninfo);
    W.done = done;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t, &attr, adm_db_main, &W.w[i]) != 0)
            msg_fatal("cannot start the admin database thread: %s", strerror(errno));
    pthread_attr_destroy(&attr);
}
