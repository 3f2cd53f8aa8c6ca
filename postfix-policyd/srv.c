/* srv.c - libevent listeners and connection state machines. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "log.h"
#include "mem.h"
#include "srv.h"

struct srv {
    struct evconnlistener *listener;
    char *spec;
    char *name;
    char *unix_path;         /* removed again on close */
    srv_handler handler;
    void *arg;
    struct srv_limits *lim;
};

struct srv_conn {
    struct srv *srv;
    struct bufferevent *bev;
    int closing;
    int suspended;           /* waiting for srv_conn_reply() */
    int gone;                /* the client left while suspended */
    int eof;                 /* the client is done sending; answer, then close */
    int have_cred;
    struct ucred cred;
    void *data;
    void (*data_free)(void *);
};
#define conn srv_conn

static struct buf scratch; /* answers of one read, written in one go */

static void conn_event(struct bufferevent *bev, short what, void *arg);
static void conn_drained_free(struct bufferevent *bev, void *arg);

static void conn_free(struct conn *c)
{
    if (c->data_free)
        c->data_free(c->data);
    bufferevent_free(c->bev);
    c->srv->lim->active--;
    free(c);
}

/* After an error reply: discard what the client still sends until it
 * closes (or a short timeout), so that closing with unread input does not
 * reset the connection and lose the reply ("lingering close"). */
static void conn_discard(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    (void)arg;
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void conn_linger(struct conn *c)
{
    struct timeval t = { 2, 0 };
    shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    bufferevent_set_timeouts(c->bev, &t, &t);
    bufferevent_setcb(c->bev, conn_discard, NULL, conn_event, c);
    bufferevent_enable(c->bev, EV_READ);
}

static void conn_drained(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_linger(arg);
}

static void conn_drained_free(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_free(arg);
}

static void conn_close_when_flushed(struct conn *c)
{
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_free(c);
    else
        bufferevent_setcb(c->bev, NULL, conn_drained_free, conn_event, c);
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    (void)bev;
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && !c->closing) {
        /* a half-close: the client still reads what it asked for */
        c->eof = 1;
        if (!c->suspended)
            conn_close_when_flushed(c);
        return;
    }
    if (c->suspended) {
        /* a deferred answer is on its way: free when it arrives */
        c->gone = 1;
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        msg_debug("%s: closing idle connection", c->srv->name);
    else if ((what & BEV_EVENT_ERROR) && errno != ECONNRESET && errno != EPIPE)
        msg_debug("%s: connection error: %s", c->srv->name, strerror(errno));
    conn_free(c);
}

static void conn_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    int broken = 0;

    if (c->suspended)
        return;
    buf_reset(&scratch);
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            break;
        const char *data = (const char *)evbuffer_pullup(in, -1);
        ssize_t n = c->srv->handler(c->srv->arg, c, data, len, &scratch);
        if (n < 0) {
            broken = 1;
            break;
        }
        if (n == 0)
            break;
        evbuffer_drain(in, (size_t)n);
        if (c->suspended)
            break;
    }
    if (scratch.len)
        bufferevent_write(bev, scratch.data, scratch.len);
    if (broken) {
        /* the error reply goes out, then the connection is closed */
        c->closing = 1;
        bufferevent_disable(bev, EV_READ);
        evbuffer_drain(in, evbuffer_get_length(in));
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            conn_linger(c);
        else
            bufferevent_setcb(bev, NULL, conn_drained, conn_event, c);
    }
}

static void srv_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                       int salen, void *arg)
{
    struct srv *s = arg;
    struct conn *c;
    struct timeval idle;
    (void)l;
    (void)sa;
    (void)salen;

    if (s->lim->active >= s->lim->max_connections) {
        time_t now = time(NULL);
        s->lim->refused++;
        if (now - s->lim->last_refusal_log >= 10) {
            msg_warn("%s: connection limit of %d reached (max_connections); refusing connections",
                     s->name, s->lim->max_connections);
            s->lim->last_refusal_log = now;
        }
        evutil_closesocket(fd);
        return;
    }
    c = xcalloc(1, sizeof(*c));
    c->srv = s;
    c->bev = bufferevent_socket_new(evconnlistener_get_base(s->listener), fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        evutil_closesocket(fd);
        free(c);
        return;
    }
    s->lim->active++;
    if (s->unix_path) {
        socklen_t cl = sizeof(c->cred);
        c->have_cred = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &cl) == 0;
    }
    idle.tv_sec = s->lim->idle_timeout;
    idle.tv_usec = 0;
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

void srv_conn_suspend(struct conn *c)
{
    /* a long write (a large import) is not an idle client */
    c->suspended = 1;
    bufferevent_set_timeouts(c->bev, NULL, NULL);
}

void srv_conn_reply(struct conn *c, const char *data, size_t len)
{
    struct timeval idle = { c->srv->lim->idle_timeout, 0 };
    c->suspended = 0;
    if (c->gone) {
        conn_free(c);
        return;
    }
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    if (len)
        bufferevent_write(c->bev, data, len);
    if (c->closing)
        return;
    /* requests that arrived meanwhile */
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        conn_read(c->bev, c);
    if (c->eof && !c->suspended && !c->closing && !c->gone)
        conn_close_when_flushed(c);
}

void *srv_conn_data(const struct conn *c) { return c->data; }

void srv_conn_set_data(struct conn *c, void *data, void (*free_fn)(void *))
{
    if (c->data_free)
        c->data_free(c->data);
    c->data = data;
    c->data_free = free_fn;
}

int srv_conn_peer(const struct conn *c, uid_t *uid, gid_t *gid, pid_t *pid)
{
    if (!c->have_cred)
        return -1;
    *uid = c->cred.uid;
    *gid = c->cred.gid;
    *pid = c->cred.pid;
    return 0;
}

static void srv_accept_error(struct evconnlistener *l, void *arg)
{
    struct srv *s = arg;
    (void)l;
    msg_warn("%s: accept: %s", s->name, strerror(errno));
}

struct srv *srv_listen(struct event_base *base, const char *spec, int unix_mode,
                       const char *name, srv_handler handler, void *arg,
                       struct srv_limits *lim, struct buf *err)
{
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    struct srv *s = xcalloc(1, sizeof(*s));
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;

    s->spec = xstrdup(spec);
    s->name = xstrdup(name);
    s->handler = handler;
    s->arg = arg;
    s->lim = lim;
    memset(&ss, 0, sizeof(ss));
    if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
        const char *path = spec + 5;
        struct stat st;
        if (strlen(path) == 0 || strlen(path) >= sizeof(sun->sun_path)) {
            buf_printf(err, "%s: bad unix socket path", spec);
            goto fail;
        }
        /* a stale socket from a previous run goes; anything else stays */
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, path);
        if (lstat(path, &st) == 0) {
            if (!S_ISSOCK(st.st_mode)) {
                buf_printf(err, "%s: exists and is not a socket", path);
                goto fail;
            }
            /* someone still answering there is not stale: leave it */
            int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            int live = probe >= 0 && connect(probe, (struct sockaddr *)sun, sizeof(*sun)) == 0;
            if (probe >= 0)
                close(probe);
            if (live) {
                buf_printf(err, "%s: another process is listening there (a second mailrosterd?)", path);
                goto fail;
            }
            unlink(path);
        }
        sslen = sizeof(*sun);
        s->unix_path = xstrdup(path);
    } else {
        const char *hp = strncmp(spec, "inet:", 5) == 0 ? spec + 5 : spec;
        if (evutil_parse_sockaddr_port(hp, (struct sockaddr *)&ss, &sslen) < 0 ||
            ((struct sockaddr_in *)&ss)->sin_port == 0) {
            buf_printf(err, "%s: expected HOST:PORT or unix:PATH", spec);
            goto fail;
        }
        /* the table protocols have no authentication: loopback only */
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        if (!((ss.ss_family == AF_INET && (ntohl(sin->sin_addr.s_addr) >> 24) == 127) ||
              (ss.ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)))) {
            buf_printf(err, "%s: not a loopback address (these protocols have no authentication)", spec);
            goto fail;
        }
        flags |= LEV_OPT_REUSEABLE;
    }
    s->listener = evconnlistener_new_bind(base, srv_accept, s, flags, 512,
                                          (struct sockaddr *)&ss, sslen);
    if (s->listener == NULL) {
        buf_printf(err, "%s: cannot listen: %s", spec, strerror(errno));
        goto fail;
    }
    if (s->unix_path && chmod(s->unix_path, (mode_t)unix_mode) < 0) {
        buf_printf(err, "chmod %s: %s", s->unix_path, strerror(errno));
        goto fail;
    }
    evconnlistener_set_error_cb(s->listener, srv_accept_error);
    return s;
fail:
    srv_close(s);
    return NULL;
}

void srv_close(struct srv *s)
{
    if (s == NULL)
        return;
    if (s->listener)
        evconnlistener_free(s->listener);
    if (s->unix_path && s->listener)
        unlink(s->unix_path);
    free(s->unix_path);
    free(s->spec);
    free(s->name);
    free(s);
}

const char *srv_name(const struct srv *s) { return s->name; }
