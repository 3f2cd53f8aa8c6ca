/* db.c - the database thread (see db.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "buf.h"
#include "db.h"
#include "htab.h"
#include "log.h"
#include "mem.h"
#include "pqlog.h"
#include "thr.h"

/* the first with forwarding, alias sender rights and transports
 * (0010_directory_features.sql) */
#define MR_SCHEMA_FEATURES 10

struct db {
    char *conninfo;
    db_post_fn post;
    void *arg;
    pthread_t thread;
    pthread_mutex_t lock;
    /* under lock */
    int poll_interval;
    int have_base;
    uint64_t base_seq;
    char base_id[DIR_DBID_SIZE];
    /* thread only */
    PGconn *conn;
    int loaded;          /* the event loop has a directory at seq */
    uint64_t seq;        /* last change handed over */
    char loaded_id[DIR_DBID_SIZE]; /* the identity of the database it is of, "" = unknown */
    int ever_connected;
    int64_t schema;      /* the database's schema version */
    char id[DIR_DBID_SIZE]; /* the database's identity, "" = it has none */
    int said_no_id;      /* "the database has no identity" was logged */
};

/* The columns of each directory table, in the order rec_*() reads them.
 * The mailbox and alias queries are put together from parts (see
 * select_of): what a column came with is asked only of a schema that has
 * it. */
#define Q_MAILBOX_HEAD                                                                      \
    "SELECT x.id, x.domain_id, x.local_part || '@' || d.name, x.password, "                 \
    "x.enabled, x.may_send, x.may_receive, x.services::text, "                              \
    "coalesce(x.quota_bytes, -1), coalesce(x.quota_messages, -1), "                         \
    "coalesce(x.send_limit_messages, -1), coalesce(x.send_limit_recipients, -1), "          \
    "coalesce(x.uid, -1), coalesce(x.gid, -1), x.home, x.mail, x.maildir, x.disabled_reason, "
#define Q_MAILBOX_TAIL " FROM mailroster.mailboxes x JOIN mailroster.domains d ON d.id = x.domain_id"
/* 0006: the suspension; 0010: forwarding (an empty forward_to is NULL:
 * no forward) */
#define Q_SUSPEND "x.send_suspended_reason"
#define Q_NO_SUSPEND "NULL::text"
#define Q_FORWARD ", nullif(array_to_string(x.forward_to, ','), ''), x.keep_copy"
#define Q_NO_FORWARD ", NULL::text, false"

#define Q_ALIAS_HEAD "SELECT x.id, x.domain_id, x.local_part || '@' || d.name, " \
                     "array_to_string(x.destinations, ','), x.enabled, "
#define Q_ALIAS_TAIL " FROM mailroster.aliases x JOIN mailroster.domains d ON d.id = x.domain_id"

static const char *q_select[DIR_NKINDS] = {
    [DIR_DOMAIN] = "SELECT x.id, x.name, x.enabled, x.disabled_reason, x.quota_bytes, "
                   "x.quota_messages, x.send_limit_messages, x.send_limit_recipients, "
                   "x.send_limit_window FROM mailroster.domains x",
    [DIR_MAILBOX] = Q_MAILBOX_HEAD Q_SUSPEND Q_FORWARD Q_MAILBOX_TAIL,
    [DIR_ALIAS] = Q_ALIAS_HEAD "x.may_send" Q_ALIAS_TAIL,
    [DIR_SENDER] = "SELECT x.id, x.mailbox_id, x.address FROM mailroster.sender_addresses x",
    [DIR_MASTER] = "SELECT x.id, x.name, x.password, x.enabled, array_to_string(x.domains, ',') "
                   "FROM mailroster.master_users x",
    [DIR_TRANSPORT] = "SELECT x.id, x.pattern, x.transport, x.enabled FROM mailroster.transports x",
};

/* Older schemas: no suspension column before 0006 (every row "not
 * suspended"), no forwarding, per-alias sender rights or transports
 * before 0010 (no forward, may_send true as before, no transports). */
static const char q_mailbox_0001[] = Q_MAILBOX_HEAD Q_NO_SUSPEND Q_NO_FORWARD Q_MAILBOX_TAIL;
static const char q_mailbox_0006[] = Q_MAILBOX_HEAD Q_SUSPEND Q_NO_FORWARD Q_MAILBOX_TAIL;
static const char q_alias_0001[] = Q_ALIAS_HEAD "true" Q_ALIAS_TAIL;

/* NULL: the schema has no such table (nothing to load or follow) */
static const char *select_of(const struct db *db, int kind)
{
    if (db->schema >= MR_SCHEMA_FEATURES)
        return q_select[kind];
    switch (kind) {
    case DIR_MAILBOX: return db->schema < MR_SCHEMA_SUSPEND ? q_mailbox_0001 : q_mailbox_0006;
    case DIR_ALIAS: return q_alias_0001;
    case DIR_TRANSPORT: return NULL;
    default: return q_select[kind];
    }
}

void db_msg_free(struct db_msg *m)
{
    if (m == NULL)
        return;
    dir_free(m->dir);
    for (size_t i = 0; i < m->n; i++)
        free(m->changes[i].rec);
    free(m->changes);
    free(m->text);
    free(m);
}

static void post(struct db *db, enum db_msg_type type, const char *text)
{
    struct db_msg *m = xcalloc(1, sizeof(*m));
    m->type = type;
    m->text = text ? xstrdup(text) : NULL;
    db->post(m, db->arg);
}

/* libpq's message without its trailing newline (never holds a password). */
static const char *pq_error(PGconn *c, char *tmp, size_t len)
{
    snprintf(tmp, len, "%s", PQerrorMessage(c));
    size_t n = strlen(tmp);
    while (n > 0 && (tmp[n - 1] == '\n' || tmp[n - 1] == ' '))
        tmp[--n] = 0;
    for (char *p = tmp; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    return tmp;
}

/* --- rows to records ------------------------------------------------- */

static const char *val(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}
static int64_t num(const PGresult *r, int row, int col)
{
    const char *v = val(r, row, col);
    return v ? strtoll(v, NULL, 10) : 0;
}
static int flag(const PGresult *r, int row, int col)
{
    const char *v = val(r, row, col);
    return v && v[0] == 't';
}

static void *rec_from_row(enum dir_kind kind, const PGresult *r, int i)
{
    switch (kind) {
    case DIR_DOMAIN: {
        struct dir_domain t = { 0 };
        t.id = (uint64_t)num(r, i, 0);
        t.name = val(r, i, 1);
        t.enabled = (uint8_t)flag(r, i, 2);
        t.disabled_reason = val(r, i, 3);
        t.quota_bytes = num(r, i, 4);
        t.quota_messages = num(r, i, 5);
        t.limit_messages = (int32_t)num(r, i, 6);
        t.limit_recipients = (int32_t)num(r, i, 7);
        t.limit_window = (int32_t)num(r, i, 8);
        return dir_domain_new(&t);
    }
    case DIR_MAILBOX: {
        struct dir_mailbox t = { 0 };
        t.id = (uint64_t)num(r, i, 0);
        t.domain_id = (uint64_t)num(r, i, 1);
        t.address = val(r, i, 2);
        t.password = val(r, i, 3);
        t.enabled = (uint8_t)flag(r, i, 4);
        t.may_send = (uint8_t)flag(r, i, 5);
        t.may_receive = (uint8_t)flag(r, i, 6);
        if (dir_services_parse(val(r, i, 7) ? val(r, i, 7) : "", &t.services) < 0) {
            msg_warn("mailbox %s: unknown service in %s; allowing none", t.address, val(r, i, 7));
            t.services = 0;
        }
        t.quota_bytes = num(r, i, 8);
        t.quota_messages = num(r, i, 9);
        t.limit_messages = (int32_t)num(r, i, 10);
        t.limit_recipients = (int32_t)num(r, i, 11);
        t.uid = (int32_t)num(r, i, 12);
        t.gid = (int32_t)num(r, i, 13);
        t.home = val(r, i, 14);
        t.mail = val(r, i, 15);
        t.maildir = val(r, i, 16);
        t.disabled_reason = val(r, i, 17);
        t.suspended_reason = val(r, i, 18);
        t.send_suspended = t.suspended_reason != NULL;
        t.forward = val(r, i, 19);
        t.keep_copy = (uint8_t)flag(r, i, 20);
        return dir_mailbox_new(&t);
    }
    case DIR_ALIAS: {
        struct dir_alias t = { 0 };
        t.id = (uint64_t)num(r, i, 0);
        t.domain_id = (uint64_t)num(r, i, 1);
        t.source = val(r, i, 2);
        t.destinations = val(r, i, 3) ? val(r, i, 3) : "";
        t.enabled = (uint8_t)flag(r, i, 4);
        t.may_send = (uint8_t)flag(r, i, 5);
        return dir_alias_new(&t);
    }
    case DIR_SENDER: {
        struct dir_sender t = { 0 };
        t.id = (uint64_t)num(r, i, 0);
        t.mailbox_id = (uint64_t)num(r, i, 1);
        t.address = val(r, i, 2);
        return dir_sender_new(&t);
    }
    case DIR_MASTER: {
        struct dir_master t = { 0 };
        t.id = (uint64_t)num(r, i, 0);
        t.name = val(r, i, 1);
        t.password = val(r, i, 2);
        t.enabled = (uint8_t)flag(r, i, 3);
        t.domains = val(r, i, 4);
        return dir_master_new(&t);
    }
    case DIR_TRANSPORT: {
        struct dir_transport t = { 0 };
        t.id = (uint64_t)num(r, i, 0);
        t.pattern = val(r, i, 1);
        t.transport = val(r, i, 2);
        t.enabled = (uint8_t)flag(r, i, 3);
        return dir_transport_new(&t);
    }
    default:
        return NULL;
    }
}

/* --- queries --------------------------------------------------------- */

/* Why a statement failed: the server's one-line message when there is
 * one, else libpq's (connection trouble). */
static void result_error(struct db *db, const PGresult *r, struct buf *why)
{
    char tmp[512];
    const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (primary)
        buf_printf(why, "%s", primary);
    else
        buf_printf(why, "%s", pq_error(db->conn, tmp, sizeof(tmp)));
}

/* Run a statement that returns no rows; -1 with a reason on failure. */
static int exec_cmd(struct db *db, const char *sql, struct buf *why)
{
    PGresult *r = PQexec(db->conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        result_error(db, r, why);
    PQclear(r);
    return ok ? 0 : -1;
}

static PGresult *query(struct db *db, const char *sql, int nparams, const char *const *params,
                       struct buf *why)
{
    PGresult *r = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        result_error(db, r, why);
        PQclear(r);
        return NULL;
    }
    return r;
}

typedef void (*row_fn)(void *arg, const PGresult *r, int i);

static int fetch_send(struct db *db, const char *sql, struct buf *why)
{
    if (PQsendQuery(db->conn, sql))
        return 0;
    result_error(db, NULL, why);
    return -1;
}

static PGresult *fetch_get(struct db *db, struct buf *why)
{
    PGresult *r = PQgetResult(db->conn), *more;
    while ((more = PQgetResult(db->conn)) != NULL)
        PQclear(more);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        result_error(db, r, why);
        PQclear(r);
        return NULL;
    }
    return r;
}

/* Read the cursor mr_load to its end, FETCH batch rows at a time, each
 * row handed to fn. The next FETCH is sent before a batch is turned into
 * records, so that PostgreSQL reads and sends one batch while we parse the
 * one before. -1 with a reason on failure (the transaction is then
 * aborted: the caller rolls back). */
static int cursor_each(struct db *db, int batch, row_fn fn, void *arg, struct buf *why)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "FETCH %d FROM mr_load", batch);
    if (fetch_send(db, sql, why) < 0)
        return -1;
    for (;;) {
        PGresult *r = fetch_get(db, why);
        if (r == NULL)
            return -1;
        int n = PQntuples(r);
        if (n == batch && fetch_send(db, sql, why) < 0) {
            PQclear(r);
            return -1;
        }
        for (int i = 0; i < n; i++)
            fn(arg, r, i);
        PQclear(r);
        if (n < batch)
            return 0;
    }
}

static void rollback(struct db *db)
{
    PGresult *r = PQexec(db->conn, "ROLLBACK");
    PQclear(r);
}

static int check_schema(struct db *db, struct buf *why)
{
    PGresult *r = query(db, "SELECT max(version) FROM mailroster.schema_version", 0, NULL, why);
    if (r == NULL)
        return -1;
    int64_t v = PQgetisnull(r, 0, 0) ? 0 : num(r, 0, 0);
    PQclear(r);
    db->schema = v;
    if (v < MR_SCHEMA_MIN || v > MR_SCHEMA_VERSION) {
        buf_printf(why, "database schema version is %" PRId64 ", this mailrosterd works with %d to %d "
                   "(apply sql/migrations)", v, MR_SCHEMA_MIN, MR_SCHEMA_VERSION);
        return -1;
    }
    return 0;
}

/* The database's identity into db->id ("" before migration 0014). */
static int read_identity(struct db *db, struct buf *why)
{
    db->id[0] = 0;
    if (db->schema < MR_SCHEMA_IDENTITY) {
        if (!db->said_no_id)
            msg_info("database has no identity yet (schema version %" PRId64 ", before migration 0014): "
                     "whether its change log continues the directory is judged by change numbers only",
                     db->schema);
        db->said_no_id = 1;
        return 0;
    }
    PGresult *r = query(db, "SELECT database_id::text FROM mailroster.settings", 0, NULL, why);
    if (r == NULL)
        return -1;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) && strlen(val(r, 0, 0)) == DIR_DBID_SIZE - 1)
        memcpy(db->id, val(r, 0, 0), DIR_DBID_SIZE);
    else
        buf_printf(why, "mailroster.settings holds no database_id (migration 0014): one row expected");
    PQclear(r);
    return db->id[0] ? 0 : -1;
}

/* Is what the loop has (the snapshot read at start, or an earlier load)
 * of another database? Only when both identities are known: a format 4
 * snapshot, a load from a database before migration 0014 or a database
 * without an identity leave it to the change numbers (need_full_load). */
static int foreign(struct db *db, int from_base)
{
    if (!db->loaded || !db->loaded_id[0] || !db->id[0] || strcmp(db->loaded_id, db->id) == 0)
        return 0;
    if (from_base)
        msg_warn("the snapshot file belongs to another database (id %s, this database is %s): "
                 "loading from PostgreSQL", db->loaded_id, db->id);
    else
        msg_warn("the directory in memory is of another database (id %s, this database is %s): "
                 "loading from PostgreSQL", db->loaded_id, db->id);
    return 1;
}

struct load_put {
    struct dir *d;
    enum dir_kind kind;
};

static void load_put_row(void *arg, const PGresult *r, int i)
{
    struct load_put *p = arg;
    dir_put(p->d, p->kind, rec_from_row(p->kind, r, i));
}

/* Load everything in one consistent snapshot, a cursor at a time so that a
 * million rows never sit in client memory at once. */
static struct dir *full_load(struct db *db, struct buf *why)
{
    struct dir *d = dir_new();
    struct buf sql;
    PGresult *r;

    buf_init(&sql);
    if (exec_cmd(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", why) < 0)
        goto fail;
    if ((r = query(db, "SELECT coalesce(max(seq), 0) FROM mailroster.change_log", 0, NULL, why)) == NULL)
        goto fail_tx;
    d->seq = (uint64_t)num(r, 0, 0);
    PQclear(r);
    for (int k = 0; k < DIR_NKINDS; k++) {
        if (select_of(db, k) == NULL)
            continue;
        struct load_put put = { d, (enum dir_kind)k };
        buf_reset(&sql);
        buf_printf(&sql, "DECLARE mr_load NO SCROLL CURSOR FOR %s", select_of(db, k));
        if (exec_cmd(db, sql.data, why) < 0 || cursor_each(db, 20000, load_put_row, &put, why) < 0)
            goto fail_tx;
        if (exec_cmd(db, "CLOSE mr_load", why) < 0)
            goto fail_tx;
    }
    if (exec_cmd(db, "COMMIT", why) < 0)
        goto fail;
    memcpy(d->db_id, db->id, sizeof(d->db_id));
    buf_free(&sql);
    return d;
fail_tx:
    rollback(db);
fail:
    buf_free(&sql);
    dir_free(d);
    return NULL;
}

static int kind_by_table(const char *t)
{
    for (int k = 0; k < DIR_NKINDS; k++)
        if (strcmp(dir_kind_name((enum dir_kind)k), t) == 0)
            return k;
    return -1;
}

static int cmp_change(const void *a, const void *b)
{
    const struct dir_change *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

#define CATCHUP_BATCH 20000

/* (id, kind) of a change, for finding it again in a batch */
struct chkey {
    uint64_t key;
    size_t idx;
};

static const void *chkey_key(const void *rec, size_t *len)
{
    *len = sizeof(uint64_t);
    return rec;
}

struct catch_put {
    struct dir_change *ch;
    struct htab *index;
    enum dir_kind kind;
};

static void catch_put_row(void *arg, const PGresult *r, int i)
{
    struct catch_put *p = arg;
    uint64_t key = (uint64_t)num(r, i, 0) << 3 | (uint64_t)p->kind;
    struct chkey *hit = htab_get(p->index, &key, sizeof(key));
    if (hit != NULL && p->ch[hit->idx].rec == NULL)
        p->ch[hit->idx].rec = rec_from_row(p->kind, r, i);
}

/* The catch-up's query of one kind, as a cursor: the changed ids of the
 * log's stretch first, then each row by its key (LATERAL with OFFSET 0:
 * the planner can neither turn the join around nor merge it away). */
static void catchup_sql(struct buf *sql, const char *select)
{
    buf_printf(sql, "DECLARE mr_load NO SCROLL CURSOR FOR SELECT r.* FROM (SELECT DISTINCT c.row_id "
                    "FROM mailroster.change_log c WHERE c.seq > $1::bigint AND c.seq <= $2::bigint "
                    "AND c.tbl = $3) k CROSS JOIN LATERAL (%s WHERE x.id = k.row_id OFFSET 0) r", select);
}

/* Hand over the changes after db->seq. Returns the number of change-log
 * rows read (CATCHUP_BATCH means: call again), or -1. */
static int catch_up(struct db *db, struct buf *why)
{
    char seqtxt[32], maxtxt[32];
    const char *params[1] = { seqtxt };
    struct dir_change *ch = NULL;
    size_t nch = 0;
    uint64_t max_seq = 0;
    int touched[DIR_NKINDS] = { 0 };
    struct buf sql;
    struct chkey *keys = NULL;
    struct htab index;
    PGresult *r;
    int rows;

    htab_init(&index, chkey_key);
    buf_init(&sql);
    snprintf(seqtxt, sizeof(seqtxt), "%" PRIu64, db->seq);
    /* Each changed row found by its key, in the order catchup_sql writes
     * the joins. With the planner's own choice a batch of 20,000 read
     * every row of the table (a hash join), so that a catch-up cost the
     * table's size, not the changes'; and on a table whose statistics say
     * it is empty (vacuumed after its rows were deleted) it walked the
     * batch's stretch of the change log once for every row of the table,
     * or the whole table once for every change: minutes for an import. */
    if (exec_cmd(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
                     "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; "
                     "SET LOCAL enable_material = off; SET LOCAL enable_seqscan = off", why) < 0)
        goto fail;
    r = query(db, "SELECT seq, tbl, row_id FROM mailroster.change_log WHERE seq > $1::bigint "
                  "ORDER BY seq LIMIT " "20000", 1, params, why);
    if (r == NULL)
        goto fail_tx;
    rows = PQntuples(r);
    ch = xcalloc((size_t)rows + 1, sizeof(*ch));
    keys = xcalloc((size_t)rows + 1, sizeof(*keys));
    /* One change per row touched: the row as it is now, under the seq of
     * its last change. */
    for (int i = 0; i < rows; i++) {
        uint64_t seq = (uint64_t)num(r, i, 0), id = (uint64_t)num(r, i, 2);
        int k = kind_by_table(PQgetvalue(r, i, 1));
        max_seq = seq;
        if (k < 0) {
            msg_warn("change log row %" PRIu64 ": unknown table %s", seq, PQgetvalue(r, i, 1));
            continue;
        }
        uint64_t key = id << 3 | (uint64_t)k;
        struct chkey *hit = htab_get(&index, &key, sizeof(key));
        if (hit != NULL) {
            ch[hit->idx].seq = seq;
            continue;
        }
        ch[nch].seq = seq;
        ch[nch].kind = (enum dir_kind)k;
        ch[nch].id = id;
        keys[nch].key = key;
        keys[nch].idx = nch;
        htab_put(&index, &keys[nch]);
        nch++;
        touched[k] = 1;
    }
    PQclear(r);
    /* The rows as they are now, found through the same stretch of the
     * log (no list of ids to send and parse) */
    snprintf(maxtxt, sizeof(maxtxt), "%" PRIu64, max_seq);
    for (int k = 0; k < DIR_NKINDS; k++) {
        if (!touched[k] || select_of(db, k) == NULL)
            continue;
        buf_reset(&sql);
        catchup_sql(&sql, select_of(db, k));
        const char *p[3] = { seqtxt, maxtxt, dir_kind_name((enum dir_kind)k) };
        struct catch_put put = { ch, &index, (enum dir_kind)k };
        r = PQexecParams(db->conn, sql.data, 3, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            result_error(db, r, why);
            PQclear(r);
            goto fail_tx;
        }
        PQclear(r);
        /* in parts of 5,000: the first is parsed while the server reads
         * the next */
        if (cursor_each(db, 5000, catch_put_row, &put, why) < 0 || exec_cmd(db, "CLOSE mr_load", why) < 0)
            goto fail_tx;
    }
    if (exec_cmd(db, "COMMIT", why) < 0)
        goto fail;
    if (rows > 0) {
        struct db_msg *m = xcalloc(1, sizeof(*m));
        qsort(ch, nch, sizeof(*ch), cmp_change);
        m->type = DBM_CHANGES;
        m->changes = ch;
        m->n = nch;
        m->max_seq = max_seq;
        db->seq = max_seq;
        db->post(m, db->arg);
    } else {
        free(ch);
    }
    free(keys);
    htab_free(&index);
    buf_free(&sql);
    return rows;
fail_tx:
    rollback(db);
fail:
    if (ch)
        for (size_t j = 0; j < nch; j++)
            free(ch[j].rec);
    free(ch);
    free(keys);
    htab_free(&index);
    buf_free(&sql);
    return -1;
}

/* Can the change log bridge from db->seq? Not when rows were pruned after
 * it, nor when the database is behind us (restored from a backup). */
static int need_full_load(struct db *db, struct buf *why)
{
    PGresult *r;
    if (!db->loaded)
        return 1;
    r = query(db, "SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM mailroster.change_log",
              0, NULL, why);
    if (r == NULL)
        return -1;
    uint64_t lo = (uint64_t)num(r, 0, 0), hi = (uint64_t)num(r, 0, 1);
    PQclear(r);
    if (db->seq > hi) {
        msg_warn("database change log ends at %" PRIu64 ", before our %" PRIu64
                 " (restored from a backup?): reloading the whole directory", hi, db->seq);
        return 1;
    }
    if (lo > db->seq + 1) {
        msg_info("change log starts at %" PRIu64 ", after our %" PRIu64 ": reloading the whole directory",
                 lo, db->seq);
        return 1;
    }
    return 0;
}

/* Free the notifications libpq holds in its queue; how many there were.
 * LISTEN/NOTIFY is only a wake-up: the payload means nothing. PQnotifies
 * also parses what libpq has read but not yet looked at, which poll()
 * cannot see either. */
static int drain_notifies(struct db *db)
{
    PGnotify *n;
    int count = 0;
    while ((n = PQnotifies(db->conn)) != NULL) {
        PQfreemem(n);
        count++;
    }
    return count;
}

static void sleep_backoff(int seconds)
{
    struct timespec ts = { seconds, 0 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* One connection's life: returns when it broke. */
static void session(struct db *db)
{
    struct buf why;
    char tmp[512];
    int rc;

    buf_init(&why);
    if (check_schema(db, &why) < 0 || read_identity(db, &why) < 0)
        goto fatal;
    if (exec_cmd(db, "LISTEN mailroster_changes", &why) < 0)
        goto broken;
    int from_base = 0;
    pthread_mutex_lock(&db->lock);
    if (db->have_base && !db->loaded) {
        db->loaded = 1;
        db->seq = db->base_seq;
        memcpy(db->loaded_id, db->base_id, sizeof(db->loaded_id));
        from_base = 1;
    }
    db->have_base = 0;
    pthread_mutex_unlock(&db->lock);
    if (foreign(db, from_base)) {
        /* before the load's seconds: the loop stops answering from it now */
        char text[160];
        snprintf(text, sizeof(text), "%s of database %s, this database is %s",
                 from_base ? "the snapshot file" : "the directory in memory", db->loaded_id, db->id);
        post(db, DBM_FOREIGN, text);
        db->loaded = 0;
        db->loaded_id[0] = 0;
    }
    if ((rc = need_full_load(db, &why)) < 0)
        goto broken;
    if (rc == 0 && !db->loaded_id[0])
        memcpy(db->loaded_id, db->id, sizeof(db->loaded_id)); /* the log continues it: it is ours */
    if (rc == 0 && from_base)
        post(db, DBM_BRIDGED, NULL);
    if (rc) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        struct dir *d = full_load(db, &why);
        if (d == NULL)
            goto fatal;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        msg_info("loaded directory at change %" PRIu64 ": %zu domains, %zu mailboxes, %zu aliases, "
                 "%zu sender addresses, %zu master users, %zu transports in %.2f s",
                 d->seq, dir_count(d, DIR_DOMAIN), dir_count(d, DIR_MAILBOX),
                 dir_count(d, DIR_ALIAS), dir_count(d, DIR_SENDER), dir_count(d, DIR_MASTER),
                 dir_count(d, DIR_TRANSPORT),
                 (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        db->seq = d->seq;
        db->loaded = 1;
        memcpy(db->loaded_id, db->id, sizeof(db->loaded_id));
        struct db_msg *m = xcalloc(1, sizeof(*m));
        m->type = DBM_FULL;
        m->dir = d;
        db->post(m, db->arg);
        malloc_trim(0); /* give the load's transient memory back */
    }
    int caught_up = 0;
    for (;;) {
        /* What is queued so far (read with the load's or an earlier query's
         * replies, or by PQconsumeInput below) is covered by this catch-up:
         * a notification is delivered only after its transaction committed,
         * so the catch-up's snapshot, taken later, sees that change. */
        drain_notifies(db);
        while ((rc = catch_up(db, &why)) == CATCHUP_BATCH)
            ;
        if (rc < 0)
            goto broken;
        if (!caught_up) {
            struct db_msg *m = xcalloc(1, sizeof(*m));
            m->type = DBM_CAUGHT_UP;
            m->max_seq = db->seq;
            m->text = db->id[0] ? xstrdup(db->id) : NULL;
            db->post(m, db->arg);
            caught_up = 1;
        }
        /* NOTIFY reaches us only between transactions: a writer that
         * committed while catch_up's transaction was open is told when it
         * ends (PostgreSQL 15 sends it just before the reply to our COMMIT,
         * older ones right after), so libpq has read it, or may have, into
         * its own queue, and poll() would sleep through it: read again
         * instead of waiting. */
        if (drain_notifies(db) > 0)
            continue;
        pthread_mutex_lock(&db->lock);
        int wait_ms = db->poll_interval * 1000;
        pthread_mutex_unlock(&db->lock);
        struct pollfd pfd = { PQsocket(db->conn), POLLIN, 0 };
        rc = poll(&pfd, 1, wait_ms);
        if (rc < 0 && errno != EINTR)
            goto broken;
        if (rc > 0 && !PQconsumeInput(db->conn)) {
            buf_printf(&why, "%s", pq_error(db->conn, tmp, sizeof(tmp)));
            goto broken;
        }
        if (PQstatus(db->conn) != CONNECTION_OK) {
            buf_printf(&why, "connection lost");
            goto broken;
        }
    }
fatal:
    /* Reachable but unusable: fatal before the first load, a loud error
     * (and another try later) once we are serving from memory. A query
     * that failed because the connection broke is no verdict on the
     * schema: that is an outage. */
    if (PQstatus(db->conn) != CONNECTION_OK)
        goto broken;
    if (!db->loaded) {
        post(db, DBM_FATAL, why.data);
    } else {
        msg_error("database: %s; still answering from memory", why.data);
        post(db, DBM_DOWN, why.data);
    }
    buf_free(&why);
    return;
broken:
    if (PQstatus(db->conn) == CONNECTION_OK && why.len) {
        /* a query failed on a live connection: same as unusable */
        msg_error("database: %s", why.data);
    }
    post(db, DBM_DOWN, why.len ? why.data : "connection lost");
    buf_free(&why);
}

static void *db_main(void *arg)
{
    struct db *db = arg;
    const char *keys[] = { "application_name", "connect_timeout", "dbname", NULL };
    const char *vals[] = { "mailrosterd", "5", db->conninfo, NULL };
    thr_role("mr-dir-db", 1);
    int backoff = 1;
    char tmp[512];

    for (;;) {
        db->conn = PQconnectdbParams(keys, vals, 1);
        if (PQstatus(db->conn) != CONNECTION_OK) {
            post(db, DBM_DOWN, pq_error(db->conn, tmp, sizeof(tmp)));
            PQfinish(db->conn);
            db->conn = NULL;
            sleep_backoff(backoff);
            backoff = backoff < 16 ? backoff * 2 : 30;
            continue;
        }
        backoff = 1;
        pqlog_attach(db->conn, "database");
        post(db, DBM_UP, PQdb(db->conn));
        session(db);
        PQfinish(db->conn);
        db->conn = NULL;
        sleep_backoff(backoff);
        backoff = backoff < 16 ? backoff * 2 : 30;
    }
    return NULL;
}

struct db *db_start(const char *conninfo, int poll_interval, uint64_t base_seq, const char *base_id,
                    db_post_fn postfn, void *arg)
{
    struct db *db = xcalloc(1, sizeof(*db));
    pthread_attr_t attr;

    db->have_base = base_seq > 0;
    db->base_seq = base_seq;
    if (base_id != NULL && strlen(base_id) == DIR_DBID_SIZE - 1)
        memcpy(db->base_id, base_id, sizeof(db->base_id));
    db->conninfo = xstrdup(conninfo);
    db->post = postfn;
    db->arg = arg;
    db->poll_interval = poll_interval;
    pthread_mutex_init(&db->lock, NULL);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&db->thread, &attr, db_main, db) != 0)
        msg_fatal("cannot start the database thread: %s", strerror(errno));
    pthread_attr_destroy(&attr);
    return db;
}

void db_set_poll_interval(struct db *db, int seconds)
{
    pthread_mutex_lock(&db->lock);
    db->poll_interval = seconds;
    pthread_mutex_unlock(&db->lock);
}
