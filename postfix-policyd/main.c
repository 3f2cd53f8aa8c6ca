/* main.c - mailrosterd: the mail directory in memory, answering Postfix's
 * lookup tables from one event loop.
 *
 * Threads: the event loop (this file, srv.c and the protocol handlers; the
 * only one that touches the live directory), the database thread (db.c),
 * the policy service's admission threads (pol_db.c: rate limits, answers
 * posted back through the wake pipe), the quota usage thread (quota_db.c),
 * a short-lived snapshot writer, and the reaper (reap.c), which frees a
 * directory the loop no longer serves.
 * While the writer reads the directory, the loop keeps answering lookups
 * but holds changes back, so the directory never changes under the writer. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "addr.h"
#include "adm_db.h"
#include "admin.h"
#include "auth.h"
#include "buf.h"
#include "conf.h"
#include "db.h"
#include "dcache.h"
#include "dir.h"
#include "log.h"
#include "mem.h"
#include "proto.h"
#include "peer.h"
#include "pol_db.h"
#include "policy.h"
#include "quota_db.h"
#include "reap.h"
#include "snap.h"
#include "srv.h"
#include "svc.h"
#include "thr.h"

#define MAX_LISTENERS 16

struct map_ctx {
    enum lk_map map;
    char name[40];
};

static struct app {
    const char *conf_path;
    struct mr_conf conf;
    struct event_base *base;
    struct dir *dir;            /* NULL until loaded */
    struct db *db;
    struct lk_stats stats;
    struct auth_stats auth_stats;
    struct pol_stats pol_stats;
    struct pol_full *pol_full;  /* accounts known full (rate limits); NULL = off */
    struct pol_job *phead, *ptail; /* admissions answered by the policy database threads */
    int pol_defer_when_down;    /* policy_db_unavailable_action = defer */
    struct quota_usage *usage;  /* quota usage read so far; NULL = none yet (not checked) */
    struct quota_msg *uhead, *utail; /* reads of the quota usage thread */
    int quota_defer;            /* policy_over_quota_action = defer */
    struct auth_defaults auth_defaults;
    struct peer_list auth_peers;
    struct srv_conf srv_conf;   /* every listener's limits */
    struct srv *listeners[MAX_LISTENERS];
    int nlisteners;
    struct map_ctx maps[LK_NMAPS];
    struct map_ctx smap_ctx;
    struct buf lk_scratch[LK_NSCRATCH]; /* the lookup handlers' (event loop only) */

    /* database threads -> event loop */
    pthread_mutex_t qlock;
    struct db_msg *qhead, *qtail;
    struct adm_job *jhead, *jtail;
    time_t started;
    int wake[2];
    struct event *wake_ev;

    int db_up;
    int in_sync;                /* connected and caught up with the change log once */
    char *db_state;             /* last word from the database thread */
    unsigned long changes_applied, changes_duplicate, full_loads;

    /* snapshot file */
    atomic_int snap_busy;
    atomic_int snap_result;     /* the writer finished: look at snap_ok */
    atomic_intptr_t snap_read_job; /* the reader finished: its job */
    int snap_ok;                /* result of the last write, set by the writer */
    struct dir *snap_view;      /* what the writer reads (dir_view_new) */
    struct dir *snap_base;      /* the directory it is a view of */
    int snap_base_retired;      /* replaced meanwhile: freed with the view */
    char snap_err[512];
    uint64_t snap_seq;          /* what the file holds */
    unsigned long snap_gen, dir_gen;
    time_t snap_time;
    struct event *snap_timer;
    struct event *startup_timer;
    struct event *watchdog_timer;

    int ready_fd;               /* tells the parent we are up (daemon mode) */
    int verbose_flag;           /* -v: stays on across reloads */
    int said_no_dir;            /* "answering temporary failures" was logged */
    struct dir *pending;        /* read at start, too old to serve yet (see snapshot_read_done) */
    enum { START_SNAP_NONE, START_SNAP_SERVED, START_SNAP_BRIDGED } start_snap; /* app.dir is the
                                   snapshot read at start, not yet caught up or replaced */
    time_t start_snap_time;     /* that file's time (see snap_mark_current) */
    double start_snap_read_s;   /* how long it took to read */
    unsigned long start_snap_applied; /* changes_applied when it was served */
    time_t snap_touched;        /* snap_mark_current last marked the file */
    int startup_expired;        /* startup_timeout has passed */
} app;

static void wake_loop(void)
{
    char c = 0;
    ssize_t n = write(app.wake[1], &c, 1);
    (void)n; /* a full pipe already means "wake up" */
}

/* The queues from the worker threads to the loop (database messages,
 * admin jobs, policy admissions): singly linked through ->next, under
 * app.qlock, any struct type. */
/* first: set to whether the queue was empty (checked under the same lock) */
#define QUEUE_PUT_FIRST(head, tail, item, first) do { \
        pthread_mutex_lock(&app.qlock);         \
        (first) = (head) == NULL;               \
        if (tail)                               \
            (tail)->next = (item);              \
        else                                    \
            (head) = (item);                    \
        (tail) = (item);                        \
        pthread_mutex_unlock(&app.qlock);       \
    } while (0)
#define QUEUE_PUT(head, tail, item) do {        \
        int first_;                             \
        QUEUE_PUT_FIRST(head, tail, item, first_); \
        (void)first_;                           \
    } while (0)
#define QUEUE_TAKE(head, tail, var) do {        \
        pthread_mutex_lock(&app.qlock);         \
        (var) = (head);                         \
        if (var) {                              \
            (head) = (var)->next;               \
            if ((head) == NULL)                 \
                (tail) = NULL;                  \
            (var)->next = NULL;                 \
        }                                       \
        pthread_mutex_unlock(&app.qlock);       \
    } while (0)

static void post_msg(struct db_msg *m, void *arg)
{
    (void)arg;
    QUEUE_PUT(app.qhead, app.qtail, m);
    wake_loop();
}

static void post_job(struct adm_job *j)
{
    QUEUE_PUT(app.jhead, app.jtail, j);
    wake_loop();
}

/* the service manager's STATUS= line: what is served, from where */
static void svc_text(char *out, size_t size)
{
    if (app.dir == NULL)
        snprintf(out, size, "no directory yet (%s): answering temporary failures",
                 app.db_state ? app.db_state : "loading from PostgreSQL");
    else if (app.start_snap != START_SNAP_NONE && (app.db_up || app.db_state == NULL))
        snprintf(out, size, "serving %zu mailboxes, %zu aliases from the snapshot file, at change %" PRIu64
                 "; catching up from PostgreSQL", dir_count(app.dir, DIR_MAILBOX),
                 dir_count(app.dir, DIR_ALIAS), app.dir->seq);
    else if (app.db_up)
        snprintf(out, size, "serving %zu mailboxes, %zu aliases from PostgreSQL, at change %" PRIu64,
                 dir_count(app.dir, DIR_MAILBOX), dir_count(app.dir, DIR_ALIAS), app.dir->seq);
    else
        snprintf(out, size, "serving %zu mailboxes, %zu aliases from memory, at change %" PRIu64
                 "; PostgreSQL unavailable (%s)", dir_count(app.dir, DIR_MAILBOX),
                 dir_count(app.dir, DIR_ALIAS), app.dir->seq, app.db_state ? app.db_state : "?");
}

static void svc_update(void)
{
    char text[512];
    svc_text(text, sizeof(text));
    svc_status(text);
}

/* Up: to the parent in daemon mode at the first answer of any kind (so a
 * start without PostgreSQL and snapshot does not hang); to the service
 * manager only once a directory is served. */
static void tell_ready(void)
{
    if (app.dir != NULL) {
        char text[512];
        svc_text(text, sizeof(text));
        svc_ready(text);
    } else {
        svc_update();
    }
    if (app.ready_fd >= 0) {
        char c = 'R';
        ssize_t n = write(app.ready_fd, &c, 1);
        (void)n;
        close(app.ready_fd);
        app.ready_fd = -1;
    }
}

/* --- lookups ----------------------------------------------------------- */

static void complain(void *arg, const char *what)
{
    msg_warn("%s: %s", (const char *)arg, what);
}

static ssize_t tcp_handler(void *arg, struct srv_conn *c, const char *in, size_t len, struct buf *out)
{
    struct map_ctx *m = arg;
    struct lk_env env = { app.dir, app.conf.recipient_delimiter, &app.stats, complain, m->name,
                          app.lk_scratch };
    (void)c;
    return tcpt_request(&env, m->map, in, len, out);
}

static ssize_t smap_handler(void *arg, struct srv_conn *c, const char *in, size_t len, struct buf *out)
{
    struct map_ctx *m = arg;
    struct lk_env env = { app.dir, app.conf.recipient_delimiter, &app.stats, complain, m->name,
                          app.lk_scratch };
    (void)c;
    return smap_request(&env, in, len, out);
}

/* --- policy delegation --------------------------------------------------- */

static void pol_log(void *arg, int warn, const char *text)
{
    (void)arg;
    if (warn)
        msg_warn("policy: %s", text);
    else
        msg_info("policy: %s", text);
}

static void pol_conn_free(void *p)
{
    pol_req_free(p);
    free(p);
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An admission's answer (from a database thread, or the loop's own timer):
 * on the loop. */
static void pol_answer(struct pol_job *j)
{
    char action[700];
    struct buf out;
    enum pol_decision d;

    if (j->res.verdict == PV_TIMEOUT)
        app.pol_stats.db_timeouts++;
    else if (j->res.verdict == PV_UNAVAILABLE)
        app.pol_stats.db_errors++;
    else if (j->res.verdict == PV_OK)
        app.pol_stats.admitted++;
    d = pol_admit_answer(&j->req, &j->res, app.pol_defer_when_down, app.pol_full, wall_now(),
                         action, sizeof(action));
    app.pol_stats.decisions[d]++;
    if (d != POL_DUNNO || j->res.verdict != PV_OK)
        msg_info("policy: admission login=%s recipients=%d queue_id=%s: %s%s%s", j->req.login,
                 j->req.recipients, j->req.queue_id, pol_decision_name(d),
                 j->err[0] ? ": " : "", j->err);
    buf_init(&out);
    pol_reply(&out, action);
    j->answered = 1;
    srv_conn_reply(j->conn, out.data, out.len);
    buf_free(&out);
}

static void pol_job_free(struct pol_job *j)
{
    if (j->timer)
        event_free(j->timer);
    free(j);
}

/* policy_db_timeout passed: answer now, unless a database thread has the
 * job: its statement is bounded by statement_timeout and the lock wait
 * (and by the thread's own wait for a server that does not answer at
 * all, pol_db.c), and only it knows whether the admission was counted (an answer here
 * could say "try again" for a message the database has admitted). The
 * job comes back from the thread later either way. */
static void pol_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pol_job *j = arg;
    int queued = POL_JOB_QUEUED;
    (void)fd;
    (void)what;
    if (j->answered || !atomic_compare_exchange_strong(&j->state, &queued, POL_JOB_LATE))
        return;
    j->res.verdict = PV_TIMEOUT;
    snprintf(j->err, sizeof(j->err), "no answer from the database within policy_db_timeout");
    msg_warn("policy: admission login=%s: no answer from the database within %d s",
             j->req.login, app.conf.policy_db_timeout);
    pol_answer(j);
}

/* from the quota usage thread */
static void post_usage(struct quota_msg *m)
{
    QUEUE_PUT(app.uhead, app.utail, m);
    wake_loop();
}

/* on the loop: a read of quota_usage, the whole table or the rows that
 * changed (the table the loop held before is freed here: a whole read
 * comes every QUOTA_DB_WHOLE_EVERY s, far apart) */
static void usage_read(struct quota_msg *m)
{
    if (m->whole || app.usage == NULL) {
        quota_usage_free(app.usage);
        app.usage = m->usage;
        m->usage = NULL;
    } else {
        quota_usage_merge(app.usage, m->usage);
    }
    quota_msg_free(m);
}

/* from a database thread */
static void post_pol(struct pol_job *j)
{
    /* A batch posts its jobs one after the other: the first into an empty
     * queue wakes the loop, which reads the pipe before it takes the
     * queue, and takes it until it is empty, so the others ride along. */
    int was_empty;
    QUEUE_PUT_FIRST(app.phead, app.ptail, j, was_empty);
    if (was_empty)
        wake_loop();
}

/* on the loop: a database thread is done with j */
static void pol_job_done(struct pol_job *j)
{
    /* the line a sysop alerts on (mailrosterd(8), SUSPENDED SENDING):
     * logged by the one daemon whose admission decided it, also when its
     * own timer had answered already */
    if (j->res.verdict == PV_SUSPENDED && j->res.suspended_now)
        msg_warn("sending suspended: login=%s queue_id=%s: %s (mail held; lift with: mailroster user "
                 "unsuspend %s)", j->req.login, j->req.queue_id[0] ? j->req.queue_id : "-", j->res.reason,
                 j->req.login);
    if (!j->answered) {
        if (j->timer)
            event_del(j->timer);
        pol_answer(j);
    }
    pol_job_free(j);
}

/* Each connection has its own parser state: a request that arrives in
 * pieces is parsed on from where the last piece ended. */
static ssize_t pol_handler(void *arg, struct srv_conn *c, const char *in, size_t len, struct buf *out)
{
    struct pol_req *req = srv_conn_data(c);
    struct pol_admit admit;
    (void)arg;
    if (req == NULL) {
        req = xmalloc(sizeof(*req));
        pol_req_init(req);
        srv_conn_set_data(c, req, pol_conn_free);
    }
    struct pol_env env = { app.dir, app.conf.recipient_delimiter, &app.pol_stats, req,
                           pol_log, NULL, app.pol_full, app.pol_full ? &admit : NULL, wall_now(),
                           app.usage, app.quota_defer, app.lk_scratch };
    ssize_t used = pol_request(&env, in, len, out);
    if (used > 0 && app.pol_full && admit.pending) {
        /* END-OF-MESSAGE: PostgreSQL decides, on a database thread; this
         * connection waits, every other one is answered meanwhile */
        struct pol_job *j = xcalloc(1, sizeof(*j));
        struct timeval tv = { app.conf.policy_db_timeout, 0 };
        j->req = admit;
        j->conn = c;
        j->deadline = pol_db_now() + app.conf.policy_db_timeout;
        j->timer = evtimer_new(app.base, pol_timeout_cb, j);
        evtimer_add(j->timer, &tv);
        app.pol_stats.admissions++;
        srv_conn_suspend(c);
        pol_db_submit(j);
    }
    return used;
}

/* --- the auth endpoint (Dovecot's roster driver) ------------------------- */

struct auth_conn {
    long uid, pid;
};

static void auth_log(void *arg, int warn, const char *text)
{
    const struct auth_conn *ac = arg;
    if (warn)
        msg_warn("auth: %s (client uid %ld pid %ld)", text, ac->uid, ac->pid);
    else
        msg_info("auth: %s (client uid %ld pid %ld)", text, ac->uid, ac->pid);
}

/* LIST goes out in parts as the client reads (srv_conn_stream), each part
 * from the directory as it is then. */
#define AUTH_LIST_PART 16384

static int auth_list_part(void *arg, struct buf *out)
{
    return auth_list_next(arg, app.dir, out, AUTH_LIST_PART);
}

static void auth_list_done(void *arg) { auth_list_free(arg); }

static void auth_list_stream(void *arg, struct auth_list *it)
{
    srv_conn_stream(arg, auth_list_part, it, auth_list_done);
}

/* The answers carry password hashes: only the peers in auth_allow, checked
 * once per connection from the kernel's credentials. */
static ssize_t auth_handler(void *arg, struct srv_conn *c, const char *in, size_t len, struct buf *out)
{
    struct auth_conn *ac = srv_conn_data(c);
    (void)arg;
    if (ac == NULL) {
        uid_t uid;
        gid_t gid;
        pid_t pid;
        if (srv_conn_peer(c, &uid, &gid, &pid) < 0)
            uid = (uid_t)-1, gid = (gid_t)-1, pid = -1;   /* not a unix socket: never */
        if (uid == (uid_t)-1 || !peer_list_has(&app.auth_peers, uid, gid)) {
            msg_warn("auth: refused a client uid %ld gid %ld pid %ld: not in auth_allow",
                     (long)uid, (long)gid, (long)pid);
            app.auth_stats.refused++;
            buf_adds(out, "0\tERROR\treason=not allowed by auth_allow\n");
            return -1;
        }
        ac = xcalloc(1, sizeof(*ac));
        ac->uid = (long)uid;
        ac->pid = (long)pid;
        srv_conn_set_data(c, ac, free);
    }
    struct auth_env env = { app.dir, &app.auth_defaults, &app.auth_stats, auth_log, ac,
                            auth_list_stream, c };
    return auth_request(&env, in, len, out);
}

static void auth_conf(void)
{
    peer_list_free(&app.auth_peers);
    if (*app.conf.auth_socket)
        peer_list_load(&app.auth_peers, app.conf.auth_allow, "auth_allow");
    app.auth_defaults.mail_base = app.conf.mail_base;
    app.auth_defaults.uid = app.conf.mail_uid;
    app.auth_defaults.gid = app.conf.mail_gid;
}

static void set_srv_conf(void)
{
    app.srv_conf.max_connections = app.conf.max_connections;
    app.srv_conf.max_per_peer = app.conf.max_connections_per_peer;
    app.srv_conf.idle_timeout = app.conf.idle_timeout;
    app.srv_conf.request_timeout = app.conf.request_timeout;
    app.srv_conf.output_high_water = (size_t)app.conf.output_buffer_limit;
}

/* Every listener may hold max_connections descriptors: make room for them
 * up to the hard limit, and say so when even that is too small. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)app.nlisteners * (rlim_t)app.conf.max_connections + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = need < rl.rlim_max ? need : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < need)
        msg_warn("open-file limit %llu is below %d listeners x max_connections %d: "
                 "connections beyond it are refused", (unsigned long long)rl.rlim_cur,
                 app.nlisteners, app.conf.max_connections);
}

/* line_max: the protocol's longest line, for a line protocol; 0 otherwise
 * (see srv_set_line_max) */
static void open_listener(const char *spec, const char *name, int mode, srv_handler h, void *arg,
                          size_t line_max)
{
    struct buf err;
    struct srv *s;

    if (app.nlisteners == MAX_LISTENERS)
        msg_fatal("too many listeners (at most %d)", MAX_LISTENERS);
    buf_init(&err);
    s = srv_listen(app.base, spec, mode, name, h, arg, &app.srv_conf, &err);
    if (s == NULL)
        msg_fatal("%s: %s", name, err.data);
    buf_free(&err);
    srv_set_line_max(s, line_max);
    app.listeners[app.nlisteners++] = s;
    msg_info("%s: listening on %s", name, spec);
}

/* A list of unix:PATH / inet:HOST:PORT endpoints, or one socket path. */
static void open_list(const char *list, int one_path, const char *name, int mode, srv_handler h, void *arg,
                      size_t line_max)
{
    char *copy = xstrdup(list), *save = NULL;
    if (one_path && *list) {
        char spec[1100];
        /* a path; "unix:PATH" as the list parameters take it is fine too */
        snprintf(spec, sizeof(spec), "unix:%s", strncmp(list, "unix:", 5) ? list : list + 5);
        open_listener(spec, name, mode, h, arg, line_max);
    }
    for (char *tok = one_path ? NULL : strtok_r(copy, ", \t\n", &save); tok;
         tok = strtok_r(NULL, ", \t\n", &save))
        open_listener(tok, name, mode, h, arg, line_max);
    free(copy);
}

static void open_listeners(void)
{
    const char *tcp[LK_NMAPS] = { app.conf.tcp_table_domains, app.conf.tcp_table_mailboxes,
                                  app.conf.tcp_table_aliases, app.conf.tcp_table_senders,
                                  app.conf.tcp_table_transports };
    for (int i = 0; i < LK_NMAPS; i++) {
        app.maps[i].map = (enum lk_map)i;
        snprintf(app.maps[i].name, sizeof(app.maps[i].name), "tcp_table %s", lk_map_name((enum lk_map)i));
        if (*tcp[i])
            open_listener(tcp[i], app.maps[i].name, 0, tcp_handler, &app.maps[i], TCPT_MAX_REQUEST);
    }
    snprintf(app.smap_ctx.name, sizeof(app.smap_ctx.name), "socketmap");
    /* netstrings and policy requests are parsed on from where they stopped
     * (smap reads a length, polproto keeps its position): no line hint */
    open_list(app.conf.socketmap_listen, 0, app.smap_ctx.name, app.conf.socketmap_mode, smap_handler,
              &app.smap_ctx, 0);
    open_list(app.conf.admin_socket, 1, "admin", app.conf.admin_socket_mode, adm_handler, NULL,
              ADM_MAX_LINE);
    open_list(app.conf.policy_listen, 0, "policy", app.conf.policy_socket_mode, pol_handler, NULL, 0);
    open_list(app.conf.auth_socket, 1, "auth", app.conf.auth_socket_mode, auth_handler, NULL,
              AUTH_MAX_LINE);
    if (app.nlisteners == 0)
        msg_warn("no listener configured (tcp_table_*, socketmap_listen, policy_listen, auth_socket, admin_socket): nothing to answer");
}

/* --- snapshot file ----------------------------------------------------- */

static void *snap_writer(void *arg)
{
    struct buf err;
    thr_role("mr-snap-write", 1);
    buf_init(&err);
    app.snap_ok = snap_write(arg, app.conf.snapshot_file, &err) == 0;
    snprintf(app.snap_err, sizeof(app.snap_err), "%s", err.data ? err.data : "");
    buf_free(&err);
    atomic_store(&app.snap_result, 1);
    atomic_store(&app.snap_busy, 0);
    wake_loop();
    return NULL;
}

static void snap_done(void);

/* The writer is done with its view (or never started): free it, and the
 * directory it was made from if a full load replaced that meanwhile. */
static void snap_view_release(void)
{
    if (app.snap_view == NULL)
        return;
    dir_view_free(app.snap_base, app.snap_view);
    if (app.snap_base_retired)
        reap_dir(app.snap_base);
    app.snap_view = app.snap_base = NULL;
    app.snap_base_retired = 0;
}

static void snap_maybe_write(int force)
{
    pthread_t t;
    pthread_attr_t attr;

    if (atomic_exchange(&app.snap_result, 0))
        snap_done();    /* the last write's view goes before a new one */
    if (!*app.conf.snapshot_file || app.dir == NULL || atomic_load(&app.snap_busy))
        return;
    if (app.snap_gen == app.dir_gen && app.snap_seq == app.dir->seq)
        return; /* nothing new */
    if (!force && time(NULL) - app.snap_time < app.conf.snapshot_interval)
        return;
    atomic_store(&app.snap_busy, 1);
    app.snap_gen = app.dir_gen;
    app.snap_seq = app.dir->seq;
    app.snap_time = time(NULL);
    /* the writer reads a view: changes go on being applied meanwhile */
    app.snap_view = dir_view_new(app.dir);
    app.snap_base = app.dir;
    app.snap_base_retired = 0;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, snap_writer, app.snap_view) != 0) {
        msg_warn("cannot start the snapshot writer: %s", strerror(errno));
        snap_view_release();
        atomic_store(&app.snap_busy, 0);
    }
    pthread_attr_destroy(&attr);
}

static void snap_done(void)
{
    snap_view_release();
    if (app.snap_ok) {
        msg_debug("snapshot written at change %" PRIu64, app.snap_seq);
    } else {
        msg_warn("snapshot file: %s", app.snap_err);
        app.snap_gen = (unsigned long)-1; /* try again next time */
    }
}

/* The file's time is when it was last known to hold what PostgreSQL
 * holds: when it was written, or later while the daemon is in step with
 * the change log and the file still holds the directory (marked again
 * every snapshot_interval and at stop). startup_snapshot_max_age judges a
 * snapshot by that time, so a quiet directory's file does not look old. */
static void snap_mark_current(int force)
{
    time_t now = time(NULL);

    if (!*app.conf.snapshot_file || app.dir == NULL || !app.in_sync || atomic_load(&app.snap_busy))
        return;
    if (app.snap_gen != app.dir_gen || app.snap_seq != app.dir->seq)
        return; /* the file is behind: the next write brings it */
    if (!force && now - app.snap_touched < app.conf.snapshot_interval)
        return;
    if (utimensat(AT_FDCWD, app.conf.snapshot_file, NULL, 0) == 0)
        app.snap_touched = now;
}

static void snap_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    snap_maybe_write(0);
    snap_mark_current(0);
    adm_tick();
    svc_update();
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    svc_watchdog();
}

static const struct dir *current_dir(void) { return app.dir; }

/* rows for the admin "status" command */
static void status_rows(struct buf *out)
{
    char v[64];
    time_t now = time(NULL);
#define ROW(k, val) do { buf_adds(out, "*"); adm_field(out, "key", k); adm_field(out, "value", val); buf_addc(out, '\n'); } while (0)
    snprintf(v, sizeof(v), "%ld", (long)(now - app.started));
    ROW("uptime_seconds", v);
    ROW("database", app.db_up ? "connected" : "unavailable");
    if (!app.db_up && app.db_state)
        ROW("database_error", app.db_state);
    ROW("directory", app.dir ? "loaded" : "not loaded");
    if (app.dir) {
        snprintf(v, sizeof(v), "%" PRIu64, app.dir->seq);
        ROW("change_seq", v);
        for (int k = 0; k < DIR_NKINDS; k++) {
            snprintf(v, sizeof(v), "%zu", dir_count(app.dir, (enum dir_kind)k));
            ROW(dir_kind_name((enum dir_kind)k), v);
        }
    }
    snprintf(v, sizeof(v), "%lu", app.changes_applied);
    ROW("changes_applied", v);
    snprintf(v, sizeof(v), "%lu", app.changes_duplicate);
    ROW("changes_duplicate", v);
    snprintf(v, sizeof(v), "%lu", app.full_loads);
    ROW("full_loads", v);
    if (*app.conf.snapshot_file) {
        ROW("snapshot_file", app.conf.snapshot_file);
        if (app.snap_time) {
            snprintf(v, sizeof(v), "%ld", (long)(now - app.snap_time));
            ROW("snapshot_age_seconds", v);
        }
    }
    {
        struct srv_stats t = { 0 };
        for (int i = 0; i < app.nlisteners; i++) {
            const struct srv_stats *st = srv_get_stats(app.listeners[i]);
            t.active += st->active;
            t.refused_cap += st->refused_cap;
            t.refused_peer += st->refused_peer;
            t.request_timeouts += st->request_timeouts;
            t.idle_closed += st->idle_closed;
            t.paused += st->paused;
        }
        snprintf(v, sizeof(v), "%d", t.active);
        ROW("connections", v);
        snprintf(v, sizeof(v), "%lu", t.refused_cap + t.refused_peer);
        ROW("connections_refused", v);
        snprintf(v, sizeof(v), "%lu", t.refused_peer);
        ROW("connections_refused_per_peer", v);
        snprintf(v, sizeof(v), "%lu", t.request_timeouts);
        ROW("request_timeouts", v);
        snprintf(v, sizeof(v), "%lu", t.idle_closed);
        ROW("idle_closed", v);
        snprintf(v, sizeof(v), "%lu", t.paused);
        ROW("output_paused", v);
    }
    snprintf(v, sizeof(v), "%lu", app.stats.errors);
    ROW("lookup_errors", v);
    if (*app.conf.policy_listen && app.conf.policy_quota) {
        int up;
        double last;
        quota_db_state(&up, &last);
        ROW("quota_usage", app.usage ? (up ? "current" : "stale (database unavailable)") : "not read yet");
        snprintf(v, sizeof(v), "%zu", quota_usage_count(app.usage));
        ROW("quota_usage_rows", v);
        if (last > 0) {
            snprintf(v, sizeof(v), "%ld", (long)(now - (time_t)last));
            ROW("quota_usage_age_seconds", v);
        }
    }
    if (*app.conf.dovecot_auth_master_socket) {
        unsigned long fok, ffail;
        dcache_stats(&fok, &ffail);
        snprintf(v, sizeof(v), "%lu", fok);
        ROW("dovecot_cache_flushes", v);
        snprintf(v, sizeof(v), "%lu", ffail);
        ROW("dovecot_cache_flush_failures", v);
    }
#undef ROW
}

/* The snapshot file is read at start, on a thread of its own: a large file
 * takes seconds, and the loop keeps answering (temporary failures) and
 * hearing signals meanwhile. The database thread starts once it is read,
 * from the snapshot's change when there is one. */
struct snap_read_job {
    char *path;
    uint64_t max_size;
    struct dir *dir;            /* the result, or NULL with err */
    struct buf err;
    time_t mtime;               /* the file's time (see snap_mark_current) */
    double seconds;             /* the read took */
};

static void *snap_reader(void *arg)
{
    struct snap_read_job *j = arg;
    struct timespec t0, t1;
    struct stat st;

    thr_role("mr-snap-read", 1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    j->mtime = stat(j->path, &st) == 0 ? st.st_mtime : 0;
    j->dir = snap_read_max(j->path, j->max_size, &j->err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    j->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    atomic_store(&app.snap_read_job, (intptr_t)j);
    wake_loop();
    return NULL;
}

static void read_snapshot(void)
{
    pthread_t t;
    pthread_attr_t attr;
    struct snap_read_job *j = xcalloc(1, sizeof(*j));

    j->path = xstrdup(app.conf.snapshot_file);
    j->max_size = (uint64_t)app.conf.snapshot_max_size;
    buf_init(&j->err);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, snap_reader, j) != 0) {
        msg_warn("cannot start the snapshot reader: %s", strerror(errno));
        snap_reader(j);
    }
    pthread_attr_destroy(&attr);
}

/* Nothing to answer from while PostgreSQL is unavailable: say so once. */
static void no_directory(const char *why)
{
    if (app.dir != NULL || app.pending != NULL || app.said_no_dir)
        return;
    app.said_no_dir = 1;
    if (!*app.conf.snapshot_file)
        msg_warn("PostgreSQL unavailable (%s) and no snapshot_file configured: "
                 "answering temporary failures until the directory is loaded", why);
    else
        msg_error("PostgreSQL unavailable (%s) and the snapshot file cannot be used: "
                  "answering temporary failures until the directory is loaded", why);
    tell_ready();
}

static void time_text(time_t t, char *out, size_t size)
{
    struct tm tm;
    if (t == 0 || localtime_r(&t, &tm) == NULL)
        snprintf(out, size, "unknown time");
    else
        strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm);
}

enum serve_how {
    SERVE_AT_ONCE,  /* young enough: before PostgreSQL has answered */
    SERVE_BRIDGED,  /* the change log reaches back to it */
    SERVE_OUTAGE,   /* PostgreSQL cannot be used (why) */
};

/* Serve the snapshot read at start (app.pending). */
static void serve_pending(enum serve_how how, const char *why)
{
    struct dir *d = app.pending;
    char when[64];

    app.pending = NULL;
    time_text(app.start_snap_time, when, sizeof(when));
    if (how == SERVE_AT_ONCE)
        msg_info("starting from snapshot file %s: serving the snapshot of %s at change %" PRIu64
                 " (%zu mailboxes, %zu aliases; read in %.2f s) while PostgreSQL brings it up to date",
                 app.conf.snapshot_file, when, d->seq, dir_count(d, DIR_MAILBOX),
                 dir_count(d, DIR_ALIAS), app.start_snap_read_s);
    else if (how == SERVE_OUTAGE)
        msg_warn("PostgreSQL unavailable (%s): starting from snapshot file %s written %s, "
                 "at change %" PRIu64 " (%zu mailboxes, %zu aliases)", why, app.conf.snapshot_file,
                 when, d->seq, dir_count(d, DIR_MAILBOX), dir_count(d, DIR_ALIAS));
    else
        msg_info("starting from snapshot file %s written %s, at change %" PRIu64 " (%zu mailboxes, "
                 "%zu aliases): the change log brings it up to date", app.conf.snapshot_file, when,
                 d->seq, dir_count(d, DIR_MAILBOX), dir_count(d, DIR_ALIAS));
    app.start_snap = how == SERVE_BRIDGED ? START_SNAP_BRIDGED : START_SNAP_SERVED;
    app.start_snap_applied = app.changes_applied;
    app.dir = d;
    app.dir_gen++;
    app.snap_gen = app.dir_gen;
    app.snap_seq = d->seq;
    tell_ready();
}

/* On the loop: the reader is done; the database thread starts from the
 * snapshot's change.
 *
 * Whether to answer from the snapshot before PostgreSQL has said if its
 * change log reaches back to it is decided here, once: going back to
 * temporary failures after answering would be worse than either.
 *  - The snapshot is a consistent state of the directory at its change:
 *    each answer is one the daemon gave then. Serving it is what happens
 *    anyway while PostgreSQL is unavailable.
 *  - When the log bridges it (the usual restart), its answers are late by
 *    the changes made since, which are applied within moments: a running
 *    daemon a little behind.
 *  - When it does not (the log pruned past it, the database restored from
 *    an older backup), a full load follows, and the snapshot is served
 *    until it replaces it. Then its answers are as old as the file: a
 *    mailbox added since unknown (mail to it refused), one removed still
 *    found, a changed password still the old one, for the load's seconds.
 *    Both directories are in memory meanwhile, as when startup_timeout
 *    ends a slow load.
 * What bounds the harm is the snapshot's age, known now (the file's time,
 * see snap_mark_current); whether the log bridges it is known only later,
 * and a log pruned past a recent snapshot is rare. So a snapshot younger
 * than startup_snapshot_max_age is served at once, through the bridge
 * check, the catch-up or the full load; an older one waits for PostgreSQL
 * (temporary failures meanwhile): served if the log bridges it, dropped
 * for a full load if not, served as in any outage if PostgreSQL cannot be
 * used or startup_timeout passes first.
 *
 * The snapshot names the database it is of (its identity, migration
 * 0014); that it is the configured database's is known only once the
 * database thread has connected and read the database's identity, so a
 * young snapshot is served in that window as before (the connection's
 * first query, or the whole outage when PostgreSQL cannot be reached). When
 * the identities differ, the database thread says so (DBM_FOREIGN) before
 * it starts the full load, and the snapshot stops being served at once:
 * temporary failures until the load is done, never an answer from another
 * database's directory once that is known, nor a change of this database
 * applied to it. A snapshot with no identity (format 4, or a database
 * before migration 0014) is judged by its change number, as before. */
static void snapshot_read_done(struct snap_read_job *j)
{
    uint64_t base = 0;
    char base_id[DIR_DBID_SIZE] = "";

    if (j->dir == NULL) {
        if (access(j->path, F_OK) != 0 && errno == ENOENT)
            msg_info("no snapshot file %s yet: loading the directory from PostgreSQL", j->path);
        else
            msg_error("the snapshot file cannot be used: %s; loading the directory from PostgreSQL",
                      j->err.data);
    } else {
        time_t age = time(NULL) - j->mtime;
        char when[64];

        if (age < 0)
            age = 0;  /* the clock went back: a file of "later" is recent */
        base = j->dir->seq;
        memcpy(base_id, j->dir->db_id, sizeof(base_id));
        if (!base_id[0])
            msg_info("snapshot file %s names no database (written before migration 0014 or by an older "
                     "mailrosterd): whether the change log continues it is judged by its change number only",
                     j->path);
        app.pending = j->dir;
        app.start_snap_time = j->mtime;
        app.start_snap_read_s = j->seconds;
        if (age < app.conf.startup_snapshot_max_age) {
            serve_pending(SERVE_AT_ONCE, NULL);
        } else if (app.startup_expired) {
            /* startup_timeout passed while the file was read */
            serve_pending(SERVE_OUTAGE, "no answer within startup_timeout");
        } else {
            time_text(j->mtime, when, sizeof(when));
            msg_info("snapshot file %s of %s at change %" PRIu64 " is older than startup_snapshot_max_age "
                     "(%d s): answering temporary failures until PostgreSQL says whether its change log "
                     "reaches back to it", j->path, when, base, app.conf.startup_snapshot_max_age);
        }
    }
    app.db = db_start(app.conf.database, app.conf.poll_interval, base, base_id, post_msg, NULL);
    buf_free(&j->err);
    free(j->path);
    free(j);
}

static void startup_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    app.startup_expired = 1;
    if (app.dir == NULL && app.db_up)
        /* connected and loading: the load is newer than any snapshot, and
         * reading both would hold two directories at once */
        msg_info("still loading the directory from PostgreSQL after startup_timeout; waiting for it");
    else if (app.dir == NULL && app.pending)
        serve_pending(SERVE_OUTAGE, "no answer within startup_timeout");
    else if (app.dir == NULL && app.db)
        no_directory("no answer within startup_timeout");
}

/* --- messages from the database thread ---------------------------------- */

/* Dovecot's auth cache must forget an account that changed: under its
 * old name and its new one (a rename, a removal, a new account that the
 * negative cache still calls unknown). A domain or master user change can
 * touch any account: everything goes. Called before the change applies,
 * while the old record is still there. */
static void forget_user(const char *address)
{
    struct buf u;
    dcache_user(address);
    /* Dovecot caches the name as typed: a U-label domain too */
    buf_init(&u);
    if (addr_unicode(address, &u) == 0)
        dcache_user(u.data);
    buf_free(&u);
}

static void forget_cached(const struct dir_change *c)
{
    if (c->kind == DIR_DOMAIN || c->kind == DIR_MASTER) {
        dcache_all();
    } else if (c->kind == DIR_MAILBOX) {
        const struct dir_mailbox *old = dir_mailbox_by_id(app.dir, c->id);
        const struct dir_mailbox *new = c->rec;
        if (old)
            forget_user(old->address);
        /* a removed or renamed mailbox's usage goes (migration 0007 deletes its row) */
        if (old && app.usage && (new == NULL || strcmp(old->address, new->address) != 0))
            quota_usage_forget(app.usage, old->address);
        if (new && (old == NULL || strcmp(old->address, new->address) != 0))
            forget_user(new->address);
    }
}

/* app.dir is no longer served: it goes to the reaper, or, while the
 * snapshot writer still reads a view of it, with that view (see
 * snap_view_release). Nothing on the loop keeps a pointer into it: lookups,
 * policy and auth requests look records up when they are answered, a
 * streamed LIST holds ids and looks each up in the directory of the
 * moment, and dcache holds copies of names. Freeing a large directory
 * takes seconds; on the loop, no lookup would be answered meanwhile. */
static void retire_dir(void)
{
    if (app.dir == NULL)
        return;
    if (app.dir == app.snap_base)
        app.snap_base_retired = 1;  /* the writer still reads it */
    else
        reap_dir(app.dir);
    app.dir = NULL;
}

/* Changes are applied this many at a time, with the loop's other events
 * (lookups) served in between: a large import never stalls a lookup for
 * the whole batch. */
#define APPLY_SLICE 1000

/* 1 when the message is done with, 0 when it has more to apply */
static int handle_msg(struct db_msg *m)
{
    switch (m->type) {
    case DBM_BRIDGED:
        if (app.pending) {
            serve_pending(SERVE_BRIDGED, NULL);
        } else if (app.start_snap == START_SNAP_SERVED) {
            app.start_snap = START_SNAP_BRIDGED;
            msg_info("the change log reaches back to the snapshot's change %" PRIu64 ": catching up",
                     app.dir->seq);
        }
        break;
    case DBM_CAUGHT_UP:
        app.in_sync = 1;
        if (app.dir != NULL && !app.dir->db_id[0] && m->text != NULL) {
            /* the log continued a directory of unknown origin: it is this
             * database's, and the next snapshot file says so */
            snprintf(app.dir->db_id, sizeof(app.dir->db_id), "%s", m->text);
            app.dir_gen++;
        }
        if (app.start_snap != START_SNAP_NONE && app.dir != NULL) {
            msg_info("caught up to change %" PRIu64 " (%lu changes applied to the snapshot)",
                     app.dir->seq, app.changes_applied - app.start_snap_applied);
            app.start_snap = START_SNAP_NONE;
            svc_update();
        }
        break;
    case DBM_FULL:
        if (app.pending) {
            msg_info("snapshot file not used: the change log does not reach back to its change %" PRIu64
                     "; loaded from PostgreSQL instead", app.pending->seq);
            reap_dir(app.pending);
            app.pending = NULL;
        }
        if (app.dir && app.start_snap != START_SNAP_NONE) {
            char when[64];
            time_text(app.start_snap_time, when, sizeof(when));
            msg_info("the snapshot of %s at change %" PRIu64 " replaced by a full load at change %" PRIu64,
                     when, app.dir->seq, m->dir->seq);
            app.start_snap = START_SNAP_NONE;
        } else if (app.dir) {
            msg_info("replacing the directory (change %" PRIu64 ") with a full load (change %" PRIu64 ")",
                     app.dir->seq, m->dir->seq);
        }
        if (app.dir)
            dcache_all(); /* which accounts changed is not known */
        retire_dir();
        app.dir = m->dir;
        m->dir = NULL;
        app.dir_gen++;
        app.full_loads++;
        tell_ready();
        adm_dir_advanced(app.dir->seq);
        snap_maybe_write(1);
        break;
    case DBM_FOREIGN:
        /* another database's directory is not served, not even while the
         * full load that follows runs (see snapshot_read_done) */
        if (app.pending) {
            msg_info("snapshot file not used: %s", m->text);
            reap_dir(app.pending);
            app.pending = NULL;
        }
        if (app.dir) {
            msg_warn("no longer answering from %s: temporary failures until the directory is loaded "
                     "from PostgreSQL", m->text);
            dcache_all();
            retire_dir();
            app.start_snap = START_SNAP_NONE;
            app.said_no_dir = 0;
            svc_update();
        }
        break;
    case DBM_CHANGES:
        if (app.dir == NULL)
            break; /* cannot happen: changes follow a load */
        for (size_t stop = m->done + APPLY_SLICE; m->done < m->n && m->done < stop; m->done++) {
            forget_cached(&m->changes[m->done]);
            if (dir_apply(app.dir, &m->changes[m->done]))
                app.changes_applied++;
            else
                app.changes_duplicate++;
        }
        if (m->done < m->n)
            return 0;
        if (m->max_seq > app.dir->seq)
            app.dir->seq = m->max_seq;
        msg_debug("applied changes up to %" PRIu64, app.dir->seq);
        adm_dir_advanced(app.dir->seq);
        break;
    case DBM_UP:
        if (!app.db_up)
            msg_info("connected to database %s", m->text);
        app.db_up = 1;
        svc_update();
        break;
    case DBM_DOWN:
        app.in_sync = 0;
        if (app.db_up || app.db_state == NULL || strcmp(app.db_state, m->text) != 0)
            msg_warn("database unavailable: %s%s", m->text,
                     app.dir ? "; answering from memory" : "");
        app.db_up = 0;
        free(app.db_state);
        app.db_state = xstrdup(m->text);
        svc_update();
        if (app.dir == NULL && app.pending)
            serve_pending(SERVE_OUTAGE, m->text);
        else if (app.dir == NULL)
            no_directory(m->text);
        break;
    case DBM_FATAL: {
        char text[600];
        app.in_sync = 0;
        if (app.dir == NULL && app.pending)
            serve_pending(SERVE_OUTAGE, m->text);
        if (app.dir != NULL) {
            /* started from the snapshot meanwhile: keep answering */
            msg_error("database is not usable: %s; answering from memory", m->text);
            break;
        }
        snprintf(text, sizeof(text), "%s", m->text ? m->text : "");
        db_msg_free(m);
        msg_fatal("database is not usable: %s", text);
    }
    }
    return 1;
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    char drain[256];
    (void)what;
    (void)arg;
    while (read(fd, drain, sizeof(drain)) > 0)
        ;
    for (;;) {
        struct adm_job *j;
        QUEUE_TAKE(app.jhead, app.jtail, j);
        if (j == NULL)
            break;
        adm_job_done(j);
    }
    for (;;) {
        struct pol_job *pj;
        QUEUE_TAKE(app.phead, app.ptail, pj);
        if (pj == NULL)
            break;
        pol_job_done(pj);
    }
    for (;;) {
        struct quota_msg *qm;
        QUEUE_TAKE(app.uhead, app.utail, qm);
        if (qm == NULL)
            break;
        usage_read(qm);
    }
    struct snap_read_job *rj = (struct snap_read_job *)atomic_exchange(&app.snap_read_job, 0);
    if (rj)
        snapshot_read_done(rj);
    if (atomic_exchange(&app.snap_result, 0))
        snap_done();
    for (;;) {
        pthread_mutex_lock(&app.qlock);
        struct db_msg *m = app.qhead;
        pthread_mutex_unlock(&app.qlock);
        if (m == NULL)
            break;
        if (!handle_msg(m)) {
            wake_loop(); /* the rest after the events waiting now */
            break;
        }
        pthread_mutex_lock(&app.qlock);
        app.qhead = m->next;
        if (app.qhead == NULL)
            app.qtail = NULL;
        pthread_mutex_unlock(&app.qlock);
        db_msg_free(m);
    }
}

/* --- signals -------------------------------------------------------------- */

static void reload_conf(void)
{
    struct mr_conf nc;
    struct buf err;

    buf_init(&err);
    cfg_defaults(mr_conf_defs, &nc);
    if (cfg_load(app.conf_path, mr_conf_defs, &nc, &err) < 0) {
        msg_error("reload: %s; keeping the running configuration", err.data);
        cfg_free(mr_conf_defs, &nc);
        buf_free(&err);
        return;
    }
    const char *fixed[][3] = {
        { "database", app.conf.database, nc.database },
        { "snapshot_file", app.conf.snapshot_file, nc.snapshot_file },
        { "tcp_table_domains", app.conf.tcp_table_domains, nc.tcp_table_domains },
        { "tcp_table_mailboxes", app.conf.tcp_table_mailboxes, nc.tcp_table_mailboxes },
        { "tcp_table_aliases", app.conf.tcp_table_aliases, nc.tcp_table_aliases },
        { "tcp_table_senders", app.conf.tcp_table_senders, nc.tcp_table_senders },
        { "tcp_table_transports", app.conf.tcp_table_transports, nc.tcp_table_transports },
        { "socketmap_listen", app.conf.socketmap_listen, nc.socketmap_listen },
        { "admin_socket", app.conf.admin_socket, nc.admin_socket },
        { "admin_database", app.conf.admin_database, nc.admin_database },
        { "auth_socket", app.conf.auth_socket, nc.auth_socket },
        { "policy_listen", app.conf.policy_listen, nc.policy_listen },
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (strcmp(fixed[i][1], fixed[i][2]) != 0)
            msg_warn("reload: %s changed; it takes effect at the next restart", fixed[i][0]);
    /* what can change at run time */
    free(app.conf.recipient_delimiter);
    app.conf.recipient_delimiter = xstrdup(nc.recipient_delimiter);
    adm_set_delims(app.conf.recipient_delimiter);
    app.conf.snapshot_interval = nc.snapshot_interval;
    app.conf.poll_interval = nc.poll_interval;
    app.conf.max_connections = nc.max_connections;
    app.conf.idle_timeout = nc.idle_timeout;
    app.conf.debug = nc.debug;
    if (strcmp(nc.policy_db_unavailable_action, "defer") != 0 &&
        strcmp(nc.policy_db_unavailable_action, "dunno") != 0) {
        msg_warn("reload: policy_db_unavailable_action must be defer or dunno; keeping %s",
                 app.conf.policy_db_unavailable_action);
    } else {
        free(app.conf.policy_db_unavailable_action);
        app.conf.policy_db_unavailable_action = xstrdup(nc.policy_db_unavailable_action);
        app.pol_defer_when_down = !strcmp(nc.policy_db_unavailable_action, "defer");
    }
    if (strcmp(nc.policy_over_quota_action, "reject") != 0 && strcmp(nc.policy_over_quota_action, "defer") != 0) {
        msg_warn("reload: policy_over_quota_action must be reject or defer; keeping %s",
                 app.conf.policy_over_quota_action);
    } else {
        free(app.conf.policy_over_quota_action);
        app.conf.policy_over_quota_action = xstrdup(nc.policy_over_quota_action);
        app.quota_defer = !strcmp(nc.policy_over_quota_action, "defer");
    }
    if (nc.mail_base[0] != '/') {
        msg_warn("reload: mail_base must be an absolute path; keeping %s", app.conf.mail_base);
    } else {
        free(app.conf.mail_base);
        app.conf.mail_base = xstrdup(nc.mail_base);
    }
    free(app.conf.auth_allow);
    app.conf.auth_allow = xstrdup(nc.auth_allow);
    free(app.conf.dovecot_auth_master_socket);
    app.conf.dovecot_auth_master_socket = xstrdup(nc.dovecot_auth_master_socket);
    dcache_init(app.base, app.conf.dovecot_auth_master_socket);
    free(app.conf.admin_allow_admin);
    app.conf.admin_allow_admin = xstrdup(nc.admin_allow_admin);
    free(app.conf.admin_allow_readonly);
    app.conf.admin_allow_readonly = xstrdup(nc.admin_allow_readonly);
    free(app.conf.admin_allow_domain);
    app.conf.admin_allow_domain = xstrdup(nc.admin_allow_domain);
    adm_set_access(app.conf.admin_allow_admin, app.conf.admin_allow_readonly, app.conf.admin_allow_domain);
    app.conf.mail_uid = nc.mail_uid;
    app.conf.mail_gid = nc.mail_gid;
    auth_conf();
    app.conf.max_connections_per_peer = nc.max_connections_per_peer;
    app.conf.request_timeout = nc.request_timeout;
    app.conf.output_buffer_limit = nc.output_buffer_limit;
    set_srv_conf();
    for (int i = 0; i < app.nlisteners; i++)
        srv_set_conf(app.listeners[i], &app.srv_conf);
    log_set_verbose(nc.debug || app.verbose_flag);
    if (app.db)
        db_set_poll_interval(app.db, nc.poll_interval);
    cfg_free(mr_conf_defs, &nc);
    buf_free(&err);
    msg_info("reloaded %s", app.conf_path);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    if (sig == SIGHUP) {
        svc_reloading();
        reload_conf();
        svc_reloaded();
        return;
    }
    msg_info("stopping on signal %d", (int)sig);
    svc_stopping();
    event_base_loopbreak(app.base);
}

static void shutdown_cleanly(void)
{
    for (int i = 0; i < app.nlisteners; i++)
        srv_close(app.listeners[i]);
    app.nlisteners = 0;
    /* wait for a running write, then leave the newest state on disk */
    for (int i = 0; i < 1000 && atomic_load(&app.snap_busy); i++)
        usleep(10000);
    if (!atomic_load(&app.snap_busy) && atomic_exchange(&app.snap_result, 0))
        snap_done();
    if (!atomic_load(&app.snap_busy) && *app.conf.snapshot_file && app.dir &&
        (app.snap_gen != app.dir_gen || app.snap_seq != app.dir->seq)) {
        struct buf err;
        buf_init(&err);
        if (snap_write(app.dir, app.conf.snapshot_file, &err) < 0)
            msg_warn("snapshot file: %s", err.data);
        buf_free(&err);
    } else {
        snap_mark_current(1); /* unchanged: current as of now, for the next start */
    }
    peer_list_free(&app.auth_peers);
    for (int i = 0; i < LK_NSCRATCH; i++)
        buf_free(&app.lk_scratch[i]);
    adm_shutdown();
    reap_stop();    /* nothing half freed when the process ends */
    msg_info("stopped");
}

/* --- start ---------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: mailrosterd [-f] [-v] [-n] [-c config_file]\n"
                    "  -f  stay in the foreground, log to stderr\n"
                    "  -v  verbose logging\n"
                    "  -n  check the configuration file and exit\n");
    exit(64);
}

/* Fork into the background; the parent exits 0 once the child says it is
 * serving, 1 if the child dies first (its reason is in the log). */
static void daemonize(void)
{
    int p[2];
    pid_t pid;
    char c;

    if (pipe(p) < 0)
        msg_fatal("pipe: %s", strerror(errno));
    if ((pid = fork()) < 0)
        msg_fatal("fork: %s", strerror(errno));
    if (pid > 0) {
        close(p[1]);
        _exit(read(p[0], &c, 1) == 1 ? 0 : 1);
    }
    close(p[0]);
    setsid();
    umask(027);
    if (chdir("/") < 0)
        msg_fatal("chdir /: %s", strerror(errno));
    app.ready_fd = p[1];
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
}

int main(int argc, char **argv)
{
    int foreground = 0, verbose = 0, check_only = 0, ch;
    struct buf err;
    struct event *sigs[3];
    int signums[3] = { SIGHUP, SIGTERM, SIGINT };

    app.conf_path = SYSCONFDIR "/mailroster/mailroster.conf";
    app.ready_fd = -1;
    while ((ch = getopt(argc, argv, "c:fvn")) != -1) {
        switch (ch) {
        case 'c': app.conf_path = optarg; break;
        case 'f': foreground = 1; break;
        case 'v': verbose = 1; break;
        case 'n': check_only = 1; break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();
    log_init("mailrosterd", 1); /* errors before the start go to the terminal */
    buf_init(&err);
    cfg_defaults(mr_conf_defs, &app.conf);
    if (cfg_load(app.conf_path, mr_conf_defs, &app.conf, &err) < 0)
        msg_fatal("%s", err.data);
    if (app.conf.mail_base[0] != '/')
        msg_fatal("%s: mail_base must be an absolute path", app.conf_path);
    if (strcmp(app.conf.policy_db_unavailable_action, "defer") != 0 &&
        strcmp(app.conf.policy_db_unavailable_action, "dunno") != 0)
        msg_fatal("%s: policy_db_unavailable_action must be defer or dunno", app.conf_path);
    if (strcmp(app.conf.policy_over_quota_action, "reject") != 0 &&
        strcmp(app.conf.policy_over_quota_action, "defer") != 0)
        msg_fatal("%s: policy_over_quota_action must be reject or defer", app.conf_path);
    if (check_only) {
        printf("%s: ok\n", app.conf_path);
        return 0;
    }
    app.verbose_flag = verbose;
    log_set_verbose(verbose || app.conf.debug);
    signal(SIGPIPE, SIG_IGN);
    if (!foreground) {
        log_init("mailrosterd", 0);
        daemonize();
    }

    set_srv_conf();
    app.snap_ok = 1;
    pthread_mutex_init(&app.qlock, NULL);
    if (pipe2(app.wake, O_NONBLOCK | O_CLOEXEC) < 0)
        msg_fatal("pipe: %s", strerror(errno));
    if ((app.base = event_base_new()) == NULL)
        msg_fatal("cannot create the event loop");
    app.wake_ev = event_new(app.base, app.wake[0], EV_READ | EV_PERSIST, wake_cb, NULL);
    event_add(app.wake_ev, NULL);
    for (int i = 0; i < 3; i++) {
        sigs[i] = evsignal_new(app.base, signums[i], signal_cb, NULL);
        event_add(sigs[i], NULL);
    }
    app.started = time(NULL);
    auth_conf();
    struct adm_host host = { current_dir, app.conf.recipient_delimiter, &app.stats, &app.auth_stats, &app.pol_stats, status_rows,
                             *app.conf.admin_database != 0 };
    adm_init(&host);
    adm_set_access(app.conf.admin_allow_admin, app.conf.admin_allow_readonly, app.conf.admin_allow_domain);
    if (*app.conf.admin_database)
        adm_db_start(app.conf.admin_database, post_job);
    app.pol_defer_when_down = !strcmp(app.conf.policy_db_unavailable_action, "defer");
    if (*app.conf.policy_listen && app.conf.policy_rate_limits) {
        /* rate limits: END-OF-MESSAGE admissions on threads of their own */
        app.pol_full = pol_full_new();
        pol_db_start(app.conf.database, app.conf.policy_db_connections,
                     app.conf.policy_db_timeout * 1000, app.conf.policy_db_synchronous_commit,
                     post_pol);
    }
    app.quota_defer = !strcmp(app.conf.policy_over_quota_action, "defer");
    open_listeners();
    raise_fd_limit();
    /* after the listeners, which may still refuse to start */
    if (*app.conf.policy_listen && app.conf.policy_quota)
        quota_db_start(app.conf.database, post_usage); /* the over-quota check at RCPT */
    dcache_init(app.base, app.conf.dovecot_auth_master_socket);

    struct timeval tv = { 1, 0 }; /* the interval itself is checked in snap_maybe_write */
    app.snap_timer = event_new(app.base, -1, EV_PERSIST, snap_timer_cb, NULL);
    event_add(app.snap_timer, &tv);
    uint64_t wd = svc_watchdog_usec();
    if (wd > 0) {
        /* WatchdogSec=: the loop itself pings, at half the interval */
        struct timeval wt = { (time_t)(wd / 2000000), (suseconds_t)(wd / 2 % 1000000) };
        app.watchdog_timer = event_new(app.base, -1, EV_PERSIST, watchdog_cb, NULL);
        event_add(app.watchdog_timer, &wt);
    }
    struct timeval st = { app.conf.startup_timeout, 0 };
    app.startup_timer = event_new(app.base, -1, 0, startup_timer_cb, NULL);
    event_add(app.startup_timer, &st);

    msg_info("starting (configuration %s)", app.conf_path);
    if (*app.conf.snapshot_file)
        read_snapshot();   /* the database thread starts when it is read */
    else
        app.db = db_start(app.conf.database, app.conf.poll_interval, 0, NULL, post_msg, NULL);
    event_base_dispatch(app.base);
    shutdown_cleanly();
    buf_free(&err);
    return 0;
}
