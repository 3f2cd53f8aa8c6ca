/* roster-dovecot23.c - Dovecot 2.3 glue of the `roster` passdb and userdb
 * drivers: mailrosterd's auth endpoint (mailroster-auth(7)) asked on
 * Dovecot's own ioloop, never blocking the auth process.
 *
 * Loaded by the auth process as libauthdb_roster.so from its module dir when
 * a passdb or userdb says `driver = roster` (passdb_preinit() asks
 * auth_module_load("authdb_roster"), which wants authdb_roster_init,
 * authdb_roster_deinit and authdb_roster_version).
 *
 * One connection per socket path, shared by every roster passdb/userdb and
 * by every in-flight request: requests are pipelined, each tagged with an id,
 * and each answer is matched to its request by that id. A request that gets
 * no answer within `timeout` fails as an internal (temporary) failure; a
 * dead connection is dropped, its requests fail the same way, and the next
 * request connects again (after a short backoff while connecting fails).
 *
 * The wire format lives in roster-proto.c, apart from this file, so that a
 * Dovecot 2.4 glue file can reuse it. */
#include "auth-common.h"
#include "array.h"
#include "ioloop.h"
#include "istream.h"
#include "ostream.h"
#include "net.h"
#include "llist.h"
#include "str.h"
#include "strnum.h"
#include "time-util.h"
#include "password-scheme.h"
#include "passdb.h"
#include "userdb.h"

#include "roster-proto.h"
#include "roster-verify23.h"

#define ROSTER_DEFAULT_SOCKET "/run/mailroster/auth"
#define ROSTER_DEFAULT_TIMEOUT_MSECS 2000
/* Connecting again right after a failed connect only floods the log. */
#define ROSTER_BACKOFF_MIN_MSECS 100
#define ROSTER_BACKOFF_MAX_MSECS 1000
/* Every lookup depends on the login name and the service (services lists);
 * a master lookup also on its target. %u leads, so that `doveadm auth
 * cache flush USER` finds the entries. */
#define ROSTER_PASSDB_CACHE_KEY "%u\t%{login_user}\t%s"
#define ROSTER_USERDB_CACHE_KEY "%u\t%s"

/* ------------------------------------------------------------ connection */

struct roster_query;
/* ans is NULL on failure (error says why); for a LIST, called for every ROW
 * and then once more for END or the failure. */
typedef void roster_answer_cb_t(const struct roster_answer *ans, const char *error,
                                void *context);

struct roster_conn {
    struct roster_conn *prev, *next; /* roster_conns */
    int refcount;
    char *path;

    int fd;
    struct io *io;
    struct istream *input;
    struct ostream *output;
    /* requests made in one ioloop run go out in one write, when it ends */
    struct timeout *to_flush;

    uint32_t last_id;
    /* in-flight requests, oldest first: the daemon answers in order */
    struct roster_query *queries, *queries_tail;

    struct timeval next_connect;      /* no connect before this */
    unsigned int backoff_msecs;
};

struct roster_query {
    struct roster_query *prev, *next;
    struct roster_conn *conn;
    uint32_t id;
    unsigned int timeout_msecs;
    struct timeout *to;
    bool multi; /* LIST: stays until END */
    unsigned int rows; /* LIST: ROWs so far */
    roster_answer_cb_t *callback;
    void *context;
};

static struct roster_conn *roster_conns = NULL;

static const char *roster_reason(const struct roster_answer *ans)
{
    const char *reason = roster_answer_field(ans, "reason");
    return reason != NULL ? reason : "no reason given";
}

static void roster_conn_input(struct roster_conn *conn);

static struct roster_conn *roster_conn_get(const char *path)
{
    struct roster_conn *conn;

    for (conn = roster_conns; conn != NULL; conn = conn->next) {
        if (strcmp(conn->path, path) == 0) {
            conn->refcount++;
            return conn;
        }
    }
    conn = i_new(struct roster_conn, 1);
    conn->refcount = 1;
    conn->path = i_strdup(path);
    conn->fd = -1;
    DLLIST_PREPEND(&roster_conns, conn);
    return conn;
}

static void roster_query_free(struct roster_query **_query)
{
    struct roster_query *query = *_query;

    *_query = NULL;
    timeout_remove(&query->to);
    i_free(query);
}

/* Fail every in-flight request. The list is detached first: a callback may
 * send a new request (the next passdb), which must go to a fresh list. */
static void roster_conn_fail_all(struct roster_conn *conn, const char *error)
{
    struct roster_query *query = conn->queries;

    conn->queries = conn->queries_tail = NULL;
    while (query != NULL) {
        struct roster_query *next = query->next;
        roster_answer_cb_t *callback = query->callback;
        void *context = query->context;

        roster_query_free(&query);
        T_BEGIN {
            callback(NULL, error, context);
        } T_END;
        query = next;
    }
}

static void roster_conn_disconnect(struct roster_conn *conn, const char *reason)
{
    if (conn->fd == -1)
        return;
    if (conn->queries != NULL)
        i_error("roster: connection to %s lost: %s", conn->path, reason);
    io_remove(&conn->io);
    timeout_remove(&conn->to_flush);
    i_stream_destroy(&conn->input);
    o_stream_destroy(&conn->output);
    net_disconnect(conn->fd);
    conn->fd = -1;
    roster_conn_fail_all(conn, t_strdup_printf("connection to %s lost: %s", conn->path, reason));
}

static void roster_conn_unref(struct roster_conn **_conn)
{
    struct roster_conn *conn = *_conn;

    *_conn = NULL;
    i_assert(conn->refcount > 0);
    if (--conn->refcount > 0)
        return;
    roster_conn_disconnect(conn, "deinit");
    DLLIST_REMOVE(&roster_conns, conn);
    i_free(conn->path);
    i_free(conn);
}

static void roster_conn_backoff(struct roster_conn *conn)
{
    conn->backoff_msecs = conn->backoff_msecs == 0 ? ROSTER_BACKOFF_MIN_MSECS
                          : I_MIN(conn->backoff_msecs * 2, ROSTER_BACKOFF_MAX_MSECS);
    conn->next_connect = ioloop_timeval;
    timeval_add_msecs(&conn->next_connect, conn->backoff_msecs);
}

/* Connect if not connected. Returns 0, or -1 with *error_r. */
static int roster_conn_connect(struct roster_conn *conn, const char **error_r)
{
    if (conn->fd != -1)
        return 0;
    if (timeval_cmp(&ioloop_timeval, &conn->next_connect) < 0) {
        *error_r = t_strdup_printf("mailrosterd at %s unreachable (retrying in %u ms)",
                                   conn->path, conn->backoff_msecs);
        return -1;
    }
    conn->fd = net_connect_unix(conn->path);
    if (conn->fd == -1) {
        *error_r = t_strdup_printf("connect(%s) failed: %m", conn->path);
        roster_conn_backoff(conn);
        return -1;
    }
    conn->backoff_msecs = 0;
    /* one byte more than the longest line, so that a longer one is -2 */
    conn->input = i_stream_create_fd(conn->fd, ROSTER_LINE_MAX + 1);
    conn->output = o_stream_create_fd(conn->fd, SIZE_MAX);
    o_stream_set_no_error_handling(conn->output, TRUE);
    conn->io = io_add(conn->fd, IO_READ, roster_conn_input, conn);
    o_stream_nsend_str(conn->output, ROSTER_VERSION_LINE);
    return 0;
}

static struct roster_query *roster_conn_find(struct roster_conn *conn, uint32_t id)
{
    struct roster_query *query;

    for (query = conn->queries; query != NULL; query = query->next)
        if (query->id == id)
            return query;
    return NULL;
}

static void roster_query_timeout(struct roster_query *query)
{
    struct roster_conn *conn = query->conn;
    uint32_t id = query->id;
    unsigned int rows = query->rows;
    roster_answer_cb_t *callback;
    void *context;
    const char *error;

    /* Dovecot runs expired timeouts before reading: after a stall of the
     * auth process itself (a hash checked here, a busy machine) the answer
     * may be waiting in the socket. Read it before calling it lost. */
    if (conn->fd != -1) {
        roster_conn_input(conn);
        query = roster_conn_find(conn, id);
        if (query == NULL || query->rows != rows)
            return; /* answered, failed with the connection, or more ROWs */
    }
    callback = query->callback;
    context = query->context;
    error = t_strdup_printf("no answer from mailrosterd at %s in %u ms",
                            conn->path, query->timeout_msecs);
    /* a late answer for this id is dropped as unknown */
    DLLIST2_REMOVE(&conn->queries, &conn->queries_tail, query);
    roster_query_free(&query);
    callback(NULL, error, context);
}

/* Hand one answer to its request; returns -1 if the line is not ours to
 * understand (the connection is then out of step and dropped). */
static int roster_conn_line(struct roster_conn *conn, char *line, size_t len)
{
    struct roster_answer ans;
    struct roster_query *query;
    enum roster_parse_error err;

    err = roster_parse_answer(line, len, &ans);
    if (err != ROSTER_PARSE_OK) {
        i_error("roster: bad answer from %s: %s", conn->path, roster_parse_error_str(err));
        return -1;
    }
    if (ans.verdict == ROSTER_VERSION) {
        if (ans.version_major != 1) {
            i_error("roster: %s speaks protocol %u, not 1", conn->path, ans.version_major);
            return -1;
        }
        return 0;
    }
    if (ans.id == 0) {
        /* the daemon could not read one of our lines: a bug, not the user's */
        i_error("roster: %s refused a request: %s", conn->path, roster_reason(&ans));
        return 0;
    }
    query = roster_conn_find(conn, ans.id);
    if (query == NULL)
        return 0; /* timed out or cancelled meanwhile */
    if (query->multi && ans.verdict == ROSTER_ROW) {
        /* more rows follow: restart the clock */
        query->rows++;
        timeout_reset(query->to);
        query->callback(&ans, NULL, query->context);
        return 0;
    }
    roster_answer_cb_t *callback = query->callback;
    void *context = query->context;
    DLLIST2_REMOVE(&conn->queries, &conn->queries_tail, query);
    roster_query_free(&query);
    callback(&ans, NULL, context);
    return 0;
}

static void roster_conn_input(struct roster_conn *conn)
{
    struct istream *input = conn->input;
    char *line;
    ssize_t ret;

    ret = i_stream_read(input);
    /* a callback may disconnect: stop when our stream is no longer current */
    while (conn->input == input && (line = i_stream_next_line(input)) != NULL) {
        int r;
        T_BEGIN {
            r = roster_conn_line(conn, line, strlen(line));
        } T_END;
        if (r < 0) {
            roster_conn_disconnect(conn, "protocol error");
            return;
        }
    }
    if (conn->input != input)
        return;
    if (ret == -2)
        roster_conn_disconnect(conn, "answer line too long");
    else if (ret == -1)
        roster_conn_disconnect(conn, input->stream_errno == 0 ? "closed by mailrosterd"
                                                              : i_stream_get_error(input));
}

static void roster_conn_flush(struct roster_conn *conn)
{
    timeout_remove(&conn->to_flush);
    o_stream_uncork(conn->output);
    if (o_stream_flush(conn->output) < 0)
        roster_conn_disconnect(conn, t_strdup_printf("write failed: %s",
                                                     o_stream_get_error(conn->output)));
}

/* Send one encoded request line. On failure the callback is not called and
 * -1 is returned with *error_r; a failed write fails the request later,
 * with every other one on the connection. */
static int roster_conn_query(struct roster_conn *conn, enum roster_cmd cmd,
                             const char *const *args, unsigned int nargs,
                             unsigned int timeout_msecs, bool multi,
                             roster_answer_cb_t *callback, void *context,
                             struct roster_query **query_r, const char **error_r)
{
    char line[ROSTER_REQUEST_MAX + 1];
    struct roster_query *query;
    long len;
    uint32_t id;

    if (roster_conn_connect(conn, error_r) < 0)
        return -1;
    id = ++conn->last_id;
    if (id == 0)
        id = ++conn->last_id; /* 0 is the daemon's "no id" */
    len = roster_encode_request(line, sizeof(line), id, cmd, args, nargs);
    if (len < 0) {
        *error_r = "request too long or with an empty field";
        return -1;
    }
    /* A login process hands over many requests in one read, and each
     * write here wakes mailrosterd: one write per ioloop run, not per
     * request, saves system calls and wake-ups on both sides. */
    if (conn->to_flush == NULL) {
        o_stream_cork(conn->output);
        conn->to_flush = timeout_add_short(0, roster_conn_flush, conn);
    }
    o_stream_nsend(conn->output, line, (size_t)len);
    query = i_new(struct roster_query, 1);
    query->conn = conn;
    query->id = id;
    query->multi = multi;
    query->timeout_msecs = timeout_msecs;
    query->callback = callback;
    query->context = context;
    query->to = timeout_add(timeout_msecs, roster_query_timeout, query);
    DLLIST2_APPEND(&conn->queries, &conn->queries_tail, query);
    if (query_r != NULL)
        *query_r = query;
    return 0;
}

/* Forget a request whose caller went away; its answer will be dropped. */
static void roster_query_cancel(struct roster_query **_query)
{
    struct roster_query *query = *_query;

    *_query = NULL;
    DLLIST2_REMOVE(&query->conn->queries, &query->conn->queries_tail, query);
    roster_query_free(&query);
}

/* ------------------------------------------------------------ settings */

struct roster_settings {
    const char *socket_path;
    unsigned int timeout_msecs;
    bool verify_in_worker; /* passdb: costly hashes checked by auth workers */
    bool blocking;         /* the whole lookup in auth workers */
};

/* "2s", "500ms" or a bare number of seconds */
static int roster_parse_msecs(const char *value, unsigned int *msecs_r)
{
    unsigned int n;
    const char *end;

    if (str_parse_uint(value, &n, &end) < 0)
        return -1;
    if (*end == '\0' || strcmp(end, "s") == 0 || strcmp(end, "secs") == 0) {
        if (n > 3600)
            return -1;
        *msecs_r = n * 1000;
    } else if (strcmp(end, "ms") == 0 || strcmp(end, "msecs") == 0) {
        *msecs_r = n;
    } else {
        return -1;
    }
    return *msecs_r > 0 ? 0 : -1;
}

/* args: socket=PATH timeout=TIME blocking=no|yes, and for a passdb
 * verify=worker|inline; wrong args stop the auth process, as Dovecot's own
 * drivers do. */
static void roster_parse_args(pool_t pool, const char *kind, const char *args,
                              struct roster_settings *set)
{
    const char *const *tmp;

    set->socket_path = ROSTER_DEFAULT_SOCKET;
    set->timeout_msecs = ROSTER_DEFAULT_TIMEOUT_MSECS;
    set->verify_in_worker = TRUE;
    for (tmp = t_strsplit_spaces(args, " "); *tmp != NULL; tmp++) {
        const char *key = *tmp, *value = strchr(key, '=');

        if (value == NULL)
            i_fatal("%s roster: missing value in: %s", kind, key);
        key = t_strdup_until(key, value++);
        if (strcmp(key, "socket") == 0 && *value != '\0')
            set->socket_path = p_strdup(pool, value);
        else if (strcmp(key, "timeout") == 0) {
            if (roster_parse_msecs(value, &set->timeout_msecs) < 0)
                i_fatal("%s roster: invalid timeout: %s", kind, value);
        } else if (strcmp(key, "blocking") == 0) {
            if (strcmp(value, "yes") == 0 || strcmp(value, "no") == 0)
                set->blocking = strcmp(value, "yes") == 0;
            else
                i_fatal("%s roster: blocking must be yes or no: %s", kind, value);
        } else if (strcmp(key, "verify") == 0 && strcmp(kind, "passdb") == 0) {
            if (strcmp(value, "worker") == 0)
                set->verify_in_worker = TRUE;
            else if (strcmp(value, "inline") == 0)
                set->verify_in_worker = FALSE;
            else
                i_fatal("%s roster: verify must be worker or inline: %s", kind, value);
        } else {
            i_fatal("%s roster: unknown parameter: %s", kind, *tmp);
        }
    }
}

/* ------------------------------------------------------------ passdb */

struct roster_passdb_module {
    struct passdb_module module;
    struct roster_settings set;
    struct roster_conn *conn;
};

struct roster_passdb_request {
    struct auth_request *auth_request;
    bool credentials; /* lookup_credentials, else verify_plain */
    union {
        verify_plain_callback_t *verify_plain;
        lookup_credentials_callback_t *lookup_credentials;
    } callback;
};

/* What Dovecot is told, with the why in its log. Only an answer of the
 * daemon's decides "unknown" or "disabled": everything else is temporary. */
static enum passdb_result roster_passdb_result(struct auth_request *request,
                                               const struct roster_answer *ans,
                                               const char *error)
{
    if (ans == NULL) {
        e_error(authdb_event(request), "%s", error);
        return PASSDB_RESULT_INTERNAL_FAILURE;
    }
    switch (ans->verdict) {
    case ROSTER_OK:
        return PASSDB_RESULT_OK;
    case ROSTER_NOTFOUND:
        if (roster_answer_field(ans, "reason") != NULL)
            e_info(authdb_event(request), "%s", roster_reason(ans));
        auth_request_log_unknown_user(request, AUTH_SUBSYS_DB);
        return PASSDB_RESULT_USER_UNKNOWN;
    case ROSTER_DISABLED:
    case ROSTER_DENIED:
        e_info(authdb_event(request), "%s: %s",
               ans->verdict == ROSTER_DISABLED ? "disabled" : "denied", roster_reason(ans));
        return PASSDB_RESULT_USER_DISABLED;
    case ROSTER_FAIL:
        e_error(authdb_event(request), "mailrosterd: temporary failure: %s",
                roster_reason(ans));
        return PASSDB_RESULT_INTERNAL_FAILURE;
    default:
        e_error(authdb_event(request), "mailrosterd answered %s: %s",
                roster_verdict_name(ans->verdict), roster_reason(ans));
        return PASSDB_RESULT_INTERNAL_FAILURE;
    }
}

/* The answer's fields as Dovecot's own: user= renames to the canonical
 * address, password= is the hash with its {SCHEME} (CRYPT if none). */
static void roster_passdb_set_fields(struct auth_request *request,
                                     const struct roster_answer *ans)
{
    for (unsigned int i = 0; i < ans->nfields; i++)
        auth_request_set_field(request, ans->fields[i].key, ans->fields[i].value, "CRYPT");
}

static void roster_passdb_finish(struct roster_passdb_request *pr, enum passdb_result result)
{
    struct auth_request *request = pr->auth_request;
    struct roster_passdb_module *module =
        (struct roster_passdb_module *)request->passdb->passdb;
    const char *password = NULL, *scheme = NULL, *crypted = NULL;

    if (result == PASSDB_RESULT_OK) {
        if (request->passdb_password == NULL) {
            e_error(authdb_event(request), "OK answer without a password");
            result = PASSDB_RESULT_INTERNAL_FAILURE;
        } else {
            /* passdb_password may change on the way: copy it */
            crypted = password = t_strdup(request->passdb_password);
            scheme = password_get_scheme(&password);
            i_assert(scheme != NULL);
        }
    }
    if (pr->credentials) {
        passdb_handle_credentials(result, password, scheme,
                                  pr->callback.lookup_credentials, request);
    } else if (result != PASSDB_RESULT_OK) {
        pr->callback.verify_plain(result, request);
    } else {
        /* Dovecot verifies the hash, so every scheme it knows works */
        roster_verify(request, request->mech_password, crypted,
                      module->set.verify_in_worker, pr->callback.verify_plain);
    }
}

static void roster_passdb_answer(const struct roster_answer *ans, const char *error,
                                 void *context)
{
    struct roster_passdb_request *pr = context;
    struct auth_request *request = pr->auth_request;
    enum passdb_result result;

    result = roster_passdb_result(request, ans, error);
    if (result == PASSDB_RESULT_OK)
        roster_passdb_set_fields(request, ans);
    roster_passdb_finish(pr, result);
    auth_request_unref(&request);
}

static void roster_passdb_lookup(struct roster_passdb_request *pr)
{
    struct auth_request *request = pr->auth_request;
    struct roster_passdb_module *module =
        (struct roster_passdb_module *)request->passdb->passdb;
    const char *args[3];
    unsigned int nargs = 0;
    enum roster_cmd cmd = ROSTER_CMD_PASS;
    const char *error;

    /* In a master passdb, user is the master and requested_login_user the
     * mailbox it wants to open. An auth worker finds its passdb by module
     * id, and Dovecot shares one module between passdbs with the same
     * driver and args, so there passdb->set may be the other passdb's:
     * the requested login user alone marks the master's lookup (Dovecot
     * clears it before it looks the target up). */
    if ((request->passdb->set->master || worker) &&
        request->fields.requested_login_user != NULL) {
        cmd = ROSTER_CMD_MASTER;
        args[nargs++] = request->fields.user;
        args[nargs++] = request->fields.requested_login_user;
    } else {
        args[nargs++] = request->fields.user;
    }
    args[nargs++] = request->fields.service;
    e_debug(authdb_event(request), "%s %s", cmd == ROSTER_CMD_MASTER ? "MASTER" : "PASS",
            request->fields.user);

    auth_request_ref(request);
    if (roster_conn_query(module->conn, cmd, args, nargs, module->set.timeout_msecs, FALSE,
                          roster_passdb_answer, pr, NULL, &error) < 0)
        roster_passdb_answer(NULL, error, pr);
}

static void roster_verify_plain(struct auth_request *request, const char *password ATTR_UNUSED,
                                verify_plain_callback_t *callback)
{
    struct roster_passdb_request *pr = p_new(request->pool, struct roster_passdb_request, 1);

    pr->auth_request = request;
    pr->callback.verify_plain = callback;
    roster_passdb_lookup(pr);
}

static void roster_lookup_credentials(struct auth_request *request,
                                      lookup_credentials_callback_t *callback)
{
    struct roster_passdb_request *pr = p_new(request->pool, struct roster_passdb_request, 1);

    pr->auth_request = request;
    pr->credentials = TRUE;
    pr->callback.lookup_credentials = callback;
    roster_passdb_lookup(pr);
}

static struct passdb_module *roster_passdb_preinit(pool_t pool, const char *args)
{
    struct roster_passdb_module *module = p_new(pool, struct roster_passdb_module, 1);

    roster_parse_args(pool, "passdb", args, &module->set);
    /* blocking: Dovecot runs our lookups in its auth workers, each worker
     * with a connection of its own */
    module->module.blocking = module->set.blocking;
    module->module.default_cache_key = ROSTER_PASSDB_CACHE_KEY;
    module->module.default_pass_scheme = "CRYPT";
    return &module->module;
}

static void roster_passdb_init(struct passdb_module *_module)
{
    struct roster_passdb_module *module = (struct roster_passdb_module *)_module;

    /* no connect here: the first request connects, as the auth process's user */
    module->conn = roster_conn_get(module->set.socket_path);
}

static void roster_passdb_deinit(struct passdb_module *_module)
{
    struct roster_passdb_module *module = (struct roster_passdb_module *)_module;

    if (module->conn != NULL)
        roster_conn_unref(&module->conn);
}

static struct passdb_module_interface passdb_roster = {
    .name = "roster",
    .preinit = roster_passdb_preinit,
    .init = roster_passdb_init,
    .deinit = roster_passdb_deinit,
    .verify_plain = roster_verify_plain,
    .lookup_credentials = roster_lookup_credentials,
};

/* ------------------------------------------------------------ userdb */

struct roster_userdb_module {
    struct userdb_module module;
    struct roster_settings set;
    struct roster_conn *conn;
};

struct roster_userdb_request {
    struct auth_request *auth_request;
    userdb_callback_t *callback;
};

static enum userdb_result roster_userdb_result(struct auth_request *request,
                                               const struct roster_answer *ans,
                                               const char *error)
{
    if (ans == NULL) {
        e_error(authdb_event(request), "%s", error);
        return USERDB_RESULT_INTERNAL_FAILURE;
    }
    switch (ans->verdict) {
    case ROSTER_OK:
        return USERDB_RESULT_OK;
    case ROSTER_NOTFOUND:
    case ROSTER_DISABLED:
    case ROSTER_DENIED:
        if (roster_answer_field(ans, "reason") != NULL)
            e_info(authdb_event(request), "%s", roster_reason(ans));
        auth_request_log_unknown_user(request, AUTH_SUBSYS_DB);
        return USERDB_RESULT_USER_UNKNOWN;
    default:
        e_error(authdb_event(request), "mailrosterd answered %s: %s",
                roster_verdict_name(ans->verdict), roster_reason(ans));
        return USERDB_RESULT_INTERNAL_FAILURE;
    }
}

static void roster_userdb_answer(const struct roster_answer *ans, const char *error,
                                 void *context)
{
    struct roster_userdb_request *ur = context;
    struct auth_request *request = ur->auth_request;
    enum userdb_result result = roster_userdb_result(request, ans, error);

    /* home, mail, uid, gid, quota_rule, quota_rule2 (and user=canonical)
     * go to Dovecot exactly as answered */
    if (result == USERDB_RESULT_OK) {
        for (unsigned int i = 0; i < ans->nfields; i++)
            auth_request_set_userdb_field(request, ans->fields[i].key, ans->fields[i].value);
    }
    ur->callback(result, request);
    auth_request_unref(&request);
}

static void roster_userdb_lookup(struct auth_request *request, userdb_callback_t *callback)
{
    struct roster_userdb_module *module =
        (struct roster_userdb_module *)request->userdb->userdb;
    struct roster_userdb_request *ur = p_new(request->pool, struct roster_userdb_request, 1);
    const char *args[2] = { request->fields.user, request->fields.service };
    const char *error;

    ur->auth_request = request;
    ur->callback = callback;
    e_debug(authdb_event(request), "USER %s", request->fields.user);
    auth_request_ref(request);
    if (roster_conn_query(module->conn, ROSTER_CMD_USER, args, 2, module->set.timeout_msecs,
                          FALSE, roster_userdb_answer, ur, NULL, &error) < 0)
        roster_userdb_answer(NULL, error, ur);
}

/* Iteration (doveadm user '*', doveadm -A): rows are queued as they come
 * and handed over one per iterate_next(). Delivery runs in one loop that a
 * reentrant iterate_next() only re-arms, so a long list never recurses. */
struct roster_userdb_iterate_context {
    struct userdb_iterate_context ctx;
    struct roster_query *query; /* NULL once END or a failure came */
    ARRAY(char *) rows;
    unsigned int next_row;
    bool ended, want_next, delivering, freed;
};

static void roster_iter_free(struct roster_userdb_iterate_context *ctx)
{
    char **row;

    if (ctx->query != NULL)
        roster_query_cancel(&ctx->query);
    array_foreach_modifiable(&ctx->rows, row)
        i_free(*row);
    array_free(&ctx->rows);
    i_free(ctx);
}

static void roster_iter_deliver(struct roster_userdb_iterate_context *ctx)
{
    if (ctx->delivering)
        return; /* the outer loop goes on */
    ctx->delivering = TRUE;
    while (ctx->want_next && !ctx->freed) {
        if (ctx->next_row < array_count(&ctx->rows)) {
            char **row = array_idx_modifiable(&ctx->rows, ctx->next_row++);
            char *user = *row;

            *row = NULL;
            ctx->want_next = FALSE;
            ctx->ctx.callback(user, ctx->ctx.context);
            i_free(user);
        } else if (ctx->ended) {
            ctx->want_next = FALSE;
            ctx->ctx.callback(NULL, ctx->ctx.context);
        } else {
            break; /* wait for more rows */
        }
    }
    ctx->delivering = FALSE;
    if (ctx->freed)
        roster_iter_free(ctx);
}

static void roster_iter_answer(const struct roster_answer *ans, const char *error, void *context)
{
    struct roster_userdb_iterate_context *ctx = context;

    if (ans != NULL && ans->verdict == ROSTER_ROW) {
        char *user = i_strdup(ans->row_user);
        array_push_back(&ctx->rows, &user);
    } else {
        /* END, or the end of the query one way or another */
        ctx->query = NULL;
        ctx->ended = TRUE;
        if (ans == NULL || ans->verdict != ROSTER_END) {
            e_error(authdb_event(ctx->ctx.auth_request), "iteration failed: %s",
                    ans == NULL ? error : roster_reason(ans));
            ctx->ctx.failed = TRUE;
        }
    }
    roster_iter_deliver(ctx);
}

static struct userdb_iterate_context *
roster_userdb_iterate_init(struct auth_request *request, userdb_iter_callback_t *callback,
                           void *context)
{
    struct roster_userdb_module *module =
        (struct roster_userdb_module *)request->userdb->userdb;
    struct roster_userdb_iterate_context *ctx = i_new(struct roster_userdb_iterate_context, 1);
    const char *error;

    ctx->ctx.auth_request = request;
    ctx->ctx.callback = callback;
    ctx->ctx.context = context;
    i_array_init(&ctx->rows, 64);
    auth_request_ref(request);
    if (roster_conn_query(module->conn, ROSTER_CMD_LIST, NULL, 0, module->set.timeout_msecs,
                          TRUE, roster_iter_answer, ctx, &ctx->query, &error) < 0) {
        e_error(authdb_event(request), "iteration failed: %s", error);
        ctx->ctx.failed = TRUE;
        ctx->ended = TRUE;
    }
    return &ctx->ctx;
}

static void roster_userdb_iterate_next(struct userdb_iterate_context *_ctx)
{
    struct roster_userdb_iterate_context *ctx = (struct roster_userdb_iterate_context *)_ctx;

    ctx->want_next = TRUE;
    roster_iter_deliver(ctx);
}

static int roster_userdb_iterate_deinit(struct userdb_iterate_context *_ctx)
{
    struct roster_userdb_iterate_context *ctx = (struct roster_userdb_iterate_context *)_ctx;
    int ret = _ctx->failed ? -1 : 0;

    auth_request_unref(&_ctx->auth_request);
    ctx->freed = TRUE;
    if (!ctx->delivering)
        roster_iter_free(ctx);
    return ret;
}

static struct userdb_module *roster_userdb_preinit(pool_t pool, const char *args)
{
    struct roster_userdb_module *module = p_new(pool, struct roster_userdb_module, 1);

    roster_parse_args(pool, "userdb", args, &module->set);
    module->module.blocking = module->set.blocking;
    module->module.default_cache_key = ROSTER_USERDB_CACHE_KEY;
    return &module->module;
}

static void roster_userdb_init(struct userdb_module *_module)
{
    struct roster_userdb_module *module = (struct roster_userdb_module *)_module;

    module->conn = roster_conn_get(module->set.socket_path);
}

static void roster_userdb_deinit(struct userdb_module *_module)
{
    struct roster_userdb_module *module = (struct roster_userdb_module *)_module;

    if (module->conn != NULL)
        roster_conn_unref(&module->conn);
}

static struct userdb_module_interface userdb_roster = {
    .name = "roster",
    .preinit = roster_userdb_preinit,
    .init = roster_userdb_init,
    .deinit = roster_userdb_deinit,
    .lookup = roster_userdb_lookup,
    .iterate_init = roster_userdb_iterate_init,
    .iterate_next = roster_userdb_iterate_next,
    .iterate_deinit = roster_userdb_iterate_deinit,
};

/* ------------------------------------------------------------ module */

const char *authdb_roster_version = DOVECOT_ABI_VERSION;
void authdb_roster_init(void);
void authdb_roster_deinit(void);

void authdb_roster_init(void)
{
    passdb_register_module(&passdb_roster);
    userdb_register_module(&userdb_roster);
}

void authdb_roster_deinit(void)
{
    passdb_unregister_module(&passdb_roster);
    userdb_unregister_module(&userdb_roster);
}
