/* srv.c - listeners and connection state machines over plain libevent
 * events and our own buffers.
 *
 * One read, every complete request answered, one write: a request costs
 * two system calls. Input is read into one buffer shared by all
 * connections (the loop is single-threaded); only the unanswered tail of a
 * request that arrived in pieces is copied into the connection, so an idle
 * connection holds no buffer. Answers are built in a shared scratch buffer
 * and written at once; only what the socket did not take is kept. Timeouts
 * are checked by one sweep a second over all connections, not a timer per
 * connection. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "log.h"
#include "mem.h"
#include "srv.h"

#define READ_CHUNK 65536          /* one read at most */
#define ACCEPT_BATCH 64           /* accepts per wake-up */
#define LINGER_SECONDS 2
#define REFUSAL_LOG_INTERVAL 10   /* s between two refusal lines of a listener */
#define PEER_BUCKETS 256
#define SCRATCH_KEEP (1 << 20)    /* shared buffers above this go back after use */

/* Kinds of refusal, each logged at its own rate. */
enum refusal_kind { RK_CAP, RK_PEER, RK_DEADLINE, RK_ACCEPT, RK_N };

/* Connections from one peer on one listener. */
struct peer {
    struct peer *next;
    unsigned char key[17];      /* family tag + uid or address */
    int count;
};

struct srv {
    struct event_base *base;
    struct event *accept_ev;
    struct event *resume_ev;    /* accepting again after EMFILE */
    int fd;
    int is_unix;
    char *spec;
    char *name;
    char *unix_path;            /* removed again on close */
    srv_handler handler;
    void *arg;
    struct srv_conf conf;
    size_t line_max;            /* line protocol: see srv_set_line_max */
    struct srv_stats stats;
    struct peer *peers[PEER_BUCKETS];
    /* refusal log lines, by kind (see log_refusal) */
    unsigned long refusals_unlogged[RK_N];
    time_t last_refusal_log[RK_N];
    struct srv *next_srv;       /* all listeners, for the sweep */
};

enum conn_state { CS_OPEN, CS_CLOSING, CS_LINGER };

struct srv_conn {
    struct srv *srv;
    struct peer *peer;
    int fd;
    enum conn_state state;
    struct event *rev, *wev;
    int reading;                /* rev is added */
    int writing;                /* wev is added */
    int suspended;              /* waiting for srv_conn_reply() */
    int eof;                    /* the client is done sending: answer, then close */
    int busy;                   /* inside conn_process: do not free */
    int dead;                   /* free when conn_process returns */
    int orphan;                 /* the client is gone, an answer still owed (see conn_free) */
    struct buf in;              /* the unanswered tail of the input */
    struct buf out;             /* answers the socket has not taken */
    size_t out_off;             /* ... of which this much is sent */
    struct buf *cur;            /* where answers go while the handler runs */
    int64_t last_active;        /* ms (mono_ms): a request arrived or the client read */
    int64_t req_start;          /* ms: first byte of an incomplete request, 0 = none */
    size_t scanned;             /* octets at the start of in known to hold no newline */
    int64_t linger_start;       /* ms */
    srv_stream_fn stream;
    void *stream_arg;
    void (*stream_free)(void *);
    int have_cred;
    struct ucred cred;
    void *data;
    void (*data_free)(void *);
    struct srv_conn *prev, *next;   /* all connections */
};
#define conn srv_conn

static struct srv *all_srv;
static struct conn *all_conns;
static struct conn *orphans;        /* gone clients whose answers are still owed */
static int closing;                 /* srv_close: free, never orphan */
static int total_conns;
static struct event *sweep_ev;
static char rbuf[READ_CHUNK];
static struct buf scratch;

static void conn_process(struct conn *c, const char *data, size_t len);
static void conn_update_events(struct conn *c);

/* Milliseconds of a clock that never jumps: timeouts are kept to the
 * millisecond and checked by the sweep once a second, so a connection is
 * closed between its timeout and a second later, never before. */
static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- peers ---------------------------------------------------------------- */

static unsigned peer_hash(const unsigned char *k)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 17; i++)
        h = (h ^ k[i]) * 16777619u;
    return h % PEER_BUCKETS;
}

static void peer_key(unsigned char key[17], const struct sockaddr *sa, const struct ucred *cred)
{
    memset(key, 0, 17);
    if (cred) {
        key[0] = 'u';
        memcpy(key + 1, &cred->uid, sizeof(cred->uid));
    } else if (sa->sa_family == AF_INET) {
        key[0] = '4';
        memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        key[0] = '6';
        memcpy(key + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    }
}

static struct peer *peer_get(struct srv *s, const unsigned char key[17])
{
    struct peer **head = &s->peers[peer_hash(key)];
    for (struct peer *p = *head; p; p = p->next)
        if (memcmp(p->key, key, 17) == 0)
            return p;
    struct peer *p = xcalloc(1, sizeof(*p));
    memcpy(p->key, key, 17);
    p->next = *head;
    *head = p;
    return p;
}

static void peer_release(struct srv *s, struct peer *p)
{
    if (--p->count > 0)
        return;
    struct peer **pp = &s->peers[peer_hash(p->key)];
    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    free(p);
}

static void peer_text(const unsigned char key[17], char *out, size_t len)
{
    uid_t uid;
    switch (key[0]) {
    case 'u':
        memcpy(&uid, key + 1, sizeof(uid));
        snprintf(out, len, "uid %ld", (long)uid);
        break;
    case '4':
        inet_ntop(AF_INET, key + 1, out, (socklen_t)len);
        break;
    case '6':
        inet_ntop(AF_INET6, key + 1, out, (socklen_t)len);
        break;
    default:
        snprintf(out, len, "unknown peer");
    }
}

/* One line per listener and kind per REFUSAL_LOG_INTERVAL, with the count
 * of the refusals it did not log: a flood does not flood the log. */
static void log_refusal(struct srv *s, enum refusal_kind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_refusal(struct srv *s, enum refusal_kind k, const char *fmt, ...)
{
    time_t now = time(NULL);
    char text[300];
    va_list ap;

    if (now - s->last_refusal_log[k] < REFUSAL_LOG_INTERVAL) {
        s->refusals_unlogged[k]++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (s->refusals_unlogged[k])
        msg_warn("%s: %s (and %lu more like it in the last %ld s)", s->name, text,
                 s->refusals_unlogged[k], (long)(now - s->last_refusal_log[k]));
    else
        msg_warn("%s: %s", s->name, text);
    s->refusals_unlogged[k] = 0;
    s->last_refusal_log[k] = now;
}

/* --- connections ---------------------------------------------------------- */

/* the doubly linked lists of connections: all_conns, orphans */
static void list_push(struct conn **head, struct conn *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
}

static void list_unlink(struct conn **head, struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* Everything of a connection but the struct: the stream, the protocol's
 * state, events, socket, buffers, its place in the list of all
 * connections and in the per-listener and per-peer counts. */
static void conn_release(struct conn *c)
{
    if (c->stream_free)
        c->stream_free(c->stream_arg);
    c->stream = NULL;
    c->stream_free = NULL;
    if (c->data_free)
        c->data_free(c->data);
    c->data = NULL;
    c->data_free = NULL;
    event_free(c->rev);
    event_free(c->wev);
    c->rev = c->wev = NULL;
    c->reading = c->writing = 0;
    evutil_closesocket(c->fd);
    c->fd = -1;
    buf_free(&c->in);
    buf_free(&c->out);
    c->out_off = 0;
    list_unlink(&all_conns, c);
    c->srv->stats.active--;
    total_conns--;
    peer_release(c->srv, c->peer);
    c->peer = NULL;
}

/* Close and free a connection; inside conn_process, once it returns. A
 * suspended request's connection (its client gone, a write failed) is
 * still held by a database thread that will answer it: all of it but the
 * struct goes now, the struct when that answer comes (srv_conn_reply),
 * which then goes nowhere. */
static void conn_free(struct conn *c)
{
    if (c->busy) {
        c->dead = 1;
        return;
    }
    conn_release(c);
    if (c->suspended && !closing) {
        c->orphan = 1;
        list_push(&orphans, c);
        return;
    }
    free(c);
}

static void orphan_free(struct conn *c)
{
    list_unlink(&orphans, c);
    free(c);
}

static size_t pending(const struct conn *c) { return c->out.len - c->out_off; }

/* After an error reply: discard what the client still sends until it
 * closes (or LINGER_SECONDS), so that closing with unread input does not
 * reset the connection and lose the reply ("lingering close"). */
static void conn_linger(struct conn *c)
{
    c->state = CS_LINGER;
    c->linger_start = mono_ms();
    shutdown(c->fd, SHUT_WR);
    conn_update_events(c);
}

/* Write what is pending. 0: all of it went (or some stays for EV_WRITE);
 * -1: the connection is gone (freed, unless busy). */
static int conn_flush(struct conn *c)
{
    while (pending(c) > 0) {
        ssize_t n = write(c->fd, c->out.data + c->out_off, pending(c));
        if (n > 0) {
            c->out_off += (size_t)n;
            c->last_active = mono_ms();
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (errno != EPIPE && errno != ECONNRESET)
            msg_debug("%s: write: %s", c->srv->name, strerror(errno));
        conn_free(c);
        return -1;
    }
    /* all sent: give a large buffer back */
    if (c->out.cap > 65536)
        buf_free(&c->out);
    else
        buf_reset(&c->out);
    c->out_off = 0;
    return 0;
}

static void conn_update_events(struct conn *c)
{
    int want_read, want_write = pending(c) > 0;

    /* A suspended request keeps its read event while nothing waits in its
     * input: its client (smtpd) sends nothing until it is answered, and a
     * request that waits for an admission would otherwise cost two
     * epoll_ctl calls. What a client sends meanwhile is read once (one
     * chunk at most), kept unanswered, and reading stops until the reply. */
    if (c->state == CS_LINGER)
        want_read = 1;
    else
        want_read = c->state == CS_OPEN && (!c->suspended || c->in.len == 0) && !c->eof &&
                    c->stream == NULL && pending(c) < c->srv->conf.output_high_water;
    if (want_read != c->reading) {
        if (want_read)
            event_add(c->rev, NULL);
        else
            event_del(c->rev);
        if (!want_read && c->state == CS_OPEN && !c->suspended && !c->eof && c->stream == NULL)
            c->srv->stats.paused++;
        c->reading = want_read;
    }
    if (want_write != c->writing) {
        if (want_write)
            event_add(c->wev, NULL);
        else
            event_del(c->wev);
        c->writing = want_write;
    }
}

/* What follows a write or a handler: close when done, else wait. */
static void conn_settle(struct conn *c)
{
    if (c->dead)
        return;
    if (c->state == CS_CLOSING && pending(c) == 0) {
        conn_linger(c);
        return;
    }
    if (c->state == CS_OPEN && c->eof && !c->suspended && c->stream == NULL && pending(c) == 0) {
        conn_free(c);
        return;
    }
    conn_update_events(c);
}

/* Parts of a streamed answer while the client keeps up. */
static void conn_pump(struct conn *c)
{
    while (c->stream && pending(c) < c->srv->conf.output_high_water) {
        if (c->out_off > 0 && c->out_off == c->out.len) {
            buf_reset(&c->out);
            c->out_off = 0;
        }
        if (!c->stream(c->stream_arg, &c->out)) {
            if (c->stream_free)
                c->stream_free(c->stream_arg);
            c->stream = NULL;
            c->stream_free = NULL;
            c->stream_arg = NULL;
        }
        if (pending(c) >= c->srv->conf.output_high_water && conn_flush(c) < 0)
            return;
    }
}

/* Write the answers in scratch straight from it; only what the socket
 * does not take is copied into the connection. -1: the connection broke. */
static int conn_send_scratch(struct conn *c)
{
    size_t done = 0;
    while (done < scratch.len) {
        ssize_t n = write(c->fd, scratch.data + done, scratch.len - done);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (errno != EPIPE && errno != ECONNRESET)
            msg_debug("%s: write: %s", c->srv->name, strerror(errno));
        conn_free(c);
        return -1;
    }
    if (done < scratch.len)
        buf_add(&c->out, scratch.data + done, scratch.len - done);
    return 0;
}

static int has_room(const struct conn *c)
{
    size_t queued = pending(c) + (c->cur == &scratch ? scratch.len : 0);
    return queued < c->srv->conf.output_high_water;
}

/* Answer the complete requests in data[0..len) (the connection's own input
 * buffer, or the shared read buffer when nothing was left over), keep the
 * incomplete tail, write. */
static void conn_process(struct conn *c, const char *data, size_t len)
{
    c->busy = 1;
    for (;;) {
        size_t off = 0;
        int own = data == c->in.data, blocked;

        c->cur = pending(c) ? &c->out : &scratch;
        buf_reset(&scratch);
        size_t no_nl = 0;       /* a line protocol's tail without a newline */
        while (c->state == CS_OPEN && !c->suspended && c->stream == NULL && off < len &&
               has_room(c)) {
            if (c->srv->line_max) {
                /* call the handler only for a whole line (or one too long):
                 * each octet is searched once however the line trickles in */
                size_t from = off + (own && off == 0 ? c->scanned : 0);
                if (memchr(data + from, '\n', len - from) == NULL && len - off < c->srv->line_max) {
                    no_nl = len - off;
                    break;
                }
            }
            ssize_t n = c->srv->handler(c->srv->arg, c, data + off, len - off, c->cur);
            if (n < 0) {
                /* the error reply goes out, then the connection is closed */
                c->state = CS_CLOSING;
                off = len;
                break;
            }
            if (n == 0)
                break;
            off += (size_t)n;
            /* (last_active was set by the read, reply or write that
             * brought us here: no clock read per request) */
            c->req_start = 0;
        }
        /* stopped by a streamed answer or the high-water mark, not by
         * an incomplete request: go on once there is room again */
        blocked = off < len && c->state == CS_OPEN && !c->suspended &&
                  (c->stream != NULL || !has_room(c));
        /* keep the tail: unanswered input, or what waits behind a pause */
        if (own) {
            if (off == len) {
                if (c->in.cap > 65536)
                    buf_free(&c->in);
                else
                    buf_reset(&c->in);
            } else if (off > 0) {
                memmove(c->in.data, c->in.data + off, len - off);
                buf_truncate(&c->in, len - off);
            }
        } else if (off < len) {
            buf_add(&c->in, data + off, len - off);
        }
        c->scanned = no_nl;
        if (c->in.len > 0 && c->req_start == 0)
            c->req_start = mono_ms();
        if (c->cur == &scratch && scratch.len && conn_send_scratch(c) < 0)
            break;
        c->cur = NULL;
        if (scratch.cap > SCRATCH_KEEP)
            buf_free(&scratch);
        if (conn_flush(c) < 0)
            break;
        conn_pump(c);
        if (c->dead || !blocked || c->stream != NULL || !has_room(c))
            break;
        data = c->in.data;
        len = c->in.len;
    }
    c->cur = NULL;
    c->busy = 0;
    if (c->dead) {
        c->dead = 0;
        conn_free(c);
        return;
    }
    conn_settle(c);
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    ssize_t n;
    (void)what;

    n = read(fd, rbuf, sizeof(rbuf));
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        if (errno != ECONNRESET)
            msg_debug("%s: read: %s", c->srv->name, strerror(errno));
        conn_free(c);
        return;
    }
    if (c->state == CS_LINGER) {
        if (n == 0)
            conn_free(c);
        return;
    }
    if (n == 0) {
        /* a half-close: the client still reads what it asked for */
        c->eof = 1;
        conn_settle(c);
        return;
    }
    c->last_active = mono_ms();
    if (c->in.len == 0) {
        conn_process(c, rbuf, (size_t)n);
    } else {
        buf_add(&c->in, rbuf, (size_t)n);
        conn_process(c, c->in.data, c->in.len);
    }
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;
    if (conn_flush(c) < 0)
        return;
    c->busy = 1;
    conn_pump(c);
    c->busy = 0;
    if (c->dead) {
        c->dead = 0;
        conn_free(c);
        return;
    }
    /* below the mark again: answer what waited in the input */
    if (c->state == CS_OPEN && !c->suspended && c->stream == NULL && c->in.len > 0 &&
        pending(c) < c->srv->conf.output_high_water) {
        conn_process(c, c->in.data, c->in.len);
        return;
    }
    conn_settle(c);
}

void srv_conn_suspend(struct conn *c)
{
    c->suspended = 1;
}

void srv_conn_reply(struct conn *c, const char *data, size_t len)
{
    if (c->orphan) {
        orphan_free(c);
        return;
    }
    c->suspended = 0;
    c->last_active = mono_ms();
    if (c->busy) {
        /* answered from inside the handler: after the answers before it */
        if (len)
            buf_add(c->cur ? c->cur : &c->out, data, len);
        return;
    }
    if (len)
        buf_add(&c->out, data, len);
    /* the request deadline runs only while we wait for the client */
    if (c->in.len > 0)
        c->req_start = c->last_active;
    if (c->state == CS_OPEN && c->stream == NULL && c->in.len > 0) {
        /* requests that arrived meanwhile */
        conn_process(c, c->in.data, c->in.len);
        return;
    }
    c->busy = 1;
    if (conn_flush(c) == 0)
        conn_pump(c);
    c->busy = 0;
    if (c->dead) {
        c->dead = 0;
        conn_free(c);
        return;
    }
    conn_settle(c);
}

void srv_conn_reply_part(struct conn *c, const char *data, size_t len)
{
    if (c->orphan || c->state != CS_OPEN || len == 0)
        return;
    c->last_active = mono_ms();
    if (c->busy) {
        buf_add(c->cur ? c->cur : &c->out, data, len);
        return;
    }
    buf_add(&c->out, data, len);
    c->busy = 1;
    conn_flush(c);
    c->busy = 0;
    if (c->dead) {
        c->dead = 0;
        conn_free(c);   /* (suspended: kept for the rest of the answer) */
        return;
    }
    conn_settle(c);
}

void srv_conn_stream(struct conn *c, srv_stream_fn fn, void *arg, void (*free_fn)(void *))
{
    c->stream = fn;
    c->stream_arg = arg;
    c->stream_free = free_fn;
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

int srv_total_connections(void) { return total_conns; }

/* --- timeouts ------------------------------------------------------------- */

static void sweep(evutil_socket_t fd, short what, void *arg)
{
    int64_t now = mono_ms();
    struct conn *c, *next;
    (void)fd;
    (void)what;
    (void)arg;

    for (c = all_conns; c; c = next) {
        const struct srv_conf *cf = &c->srv->conf;
        next = c->next;
        if (c->state == CS_LINGER) {
            if (now - c->linger_start >= LINGER_SECONDS * 1000)
                conn_free(c);
            continue;
        }
        if (c->suspended)
            continue; /* a long write (a large import) is not an idle client */
        /* the deadline runs only while we wait for the client's bytes */
        if (c->req_start && c->reading && now - c->req_start >= (int64_t)cf->request_timeout * 1000) {
            char peer[INET6_ADDRSTRLEN + 16];
            peer_text(c->peer->key, peer, sizeof(peer));
            c->srv->stats.request_timeouts++;
            log_refusal(c->srv, RK_DEADLINE, "closing a connection from %s: request not complete within "
                        "request_timeout (%d s)", peer, cf->request_timeout);
            conn_free(c);
            continue;
        }
        if (now - c->last_active >= (int64_t)cf->idle_timeout * 1000) {
            msg_debug("%s: closing %s connection", c->srv->name,
                      pending(c) ? "a connection that does not read its answers" : "idle");
            c->srv->stats.idle_closed++;
            conn_free(c);
        }
    }
}

/* --- listening ------------------------------------------------------------ */

static void resume_accept(evutil_socket_t fd, short what, void *arg)
{
    struct srv *s = arg;
    (void)fd;
    (void)what;
    event_add(s->accept_ev, NULL);
}

static int conn_new(struct srv *s, int fd, const struct sockaddr *sa)
{
    struct conn *c;
    struct ucred cred;
    unsigned char key[17];
    int have_cred = 0;
    struct peer *p;

    if (s->is_unix) {
        socklen_t cl = sizeof(cred);
        have_cred = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0;
    }
    peer_key(key, sa, have_cred ? &cred : NULL);
    if (s->stats.active >= s->conf.max_connections) {
        char peer[INET6_ADDRSTRLEN + 16];
        peer_text(key, peer, sizeof(peer));
        s->stats.refused_cap++;
        log_refusal(s, RK_CAP, "refused a connection from %s: max_connections (%d) reached", peer,
                    s->conf.max_connections);
        return -1;
    }
    p = peer_get(s, key);
    if (p->count >= s->conf.max_per_peer) {
        char peer[INET6_ADDRSTRLEN + 16];
        peer_text(key, peer, sizeof(peer));
        s->stats.refused_peer++;
        log_refusal(s, RK_PEER, "refused a connection from %s: max_connections_per_peer (%d) reached",
                    peer, s->conf.max_per_peer);
        return -1;
    }
    c = xcalloc(1, sizeof(*c));
    c->srv = s;
    c->fd = fd;
    c->peer = p;
    p->count++;
    c->have_cred = have_cred;
    if (have_cred)
        c->cred = cred;
    c->rev = event_new(s->base, fd, EV_READ | EV_PERSIST, conn_on_read, c);
    c->wev = event_new(s->base, fd, EV_WRITE | EV_PERSIST, conn_on_write, c);
    c->last_active = mono_ms();
    buf_init(&c->in);
    buf_init(&c->out);
    list_push(&all_conns, c);
    s->stats.active++;
    s->stats.accepted++;
    total_conns++;
    c->reading = 1;
    event_add(c->rev, NULL);
    return 0;
}

static void srv_on_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct srv *s = arg;
    (void)what;

    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            /* out of descriptors: do not spin on a listener we cannot serve */
            log_refusal(s, RK_ACCEPT, "accept: %s; not accepting for a second", strerror(errno));
            event_del(s->accept_ev);
            struct timeval t = { 1, 0 };
            event_add(s->resume_ev, &t);
            return;
        }
        if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
            /* one small answer per request: sent at once, not held back
             * for the ACK of the previous one (Nagle) */
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        if (conn_new(s, fd, (struct sockaddr *)&ss) < 0)
            close(fd);
    }
}

static int bind_listen(struct srv *s, const struct sockaddr *sa, socklen_t sl, struct buf *err)
{
    int one = 1;
    s->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        buf_printf(err, "%s: socket: %s", s->spec, strerror(errno));
        return -1;
    }
    if (!s->is_unix)
        setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s->fd, sa, sl) < 0 || listen(s->fd, 512) < 0) {
        buf_printf(err, "%s: cannot listen: %s", s->spec, strerror(errno));
        return -1;
    }
    return 0;
}

struct srv *srv_listen(struct event_base *base, const char *spec, int unix_mode,
                       const char *name, srv_handler handler, void *arg,
                       const struct srv_conf *conf, struct buf *err)
{
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    struct srv *s = xcalloc(1, sizeof(*s));

    s->fd = -1;
    s->base = base;
    s->spec = xstrdup(spec);
    s->name = xstrdup(name);
    s->handler = handler;
    s->arg = arg;
    s->conf = *conf;
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
        s->is_unix = 1;
        if (bind_listen(s, (struct sockaddr *)&ss, (socklen_t)sslen, err) < 0)
            goto fail;
        s->unix_path = xstrdup(path);
        if (chmod(s->unix_path, (mode_t)unix_mode) < 0) {
            buf_printf(err, "chmod %s: %s", s->unix_path, strerror(errno));
            goto fail;
        }
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
        if (bind_listen(s, (struct sockaddr *)&ss, (socklen_t)sslen, err) < 0)
            goto fail;
    }
    s->accept_ev = event_new(base, s->fd, EV_READ | EV_PERSIST, srv_on_accept, s);
    s->resume_ev = evtimer_new(base, resume_accept, s);
    event_add(s->accept_ev, NULL);
    if (sweep_ev == NULL) {
        struct timeval t = { 1, 0 };
        sweep_ev = event_new(base, -1, EV_PERSIST, sweep, NULL);
        event_add(sweep_ev, &t);
    }
    s->next_srv = all_srv;
    all_srv = s;
    return s;
fail:
    srv_close(s);
    return NULL;
}

void srv_set_conf(struct srv *s, const struct srv_conf *conf)
{
    s->conf = *conf;
}

void srv_set_line_max(struct srv *s, size_t max)
{
    s->line_max = max;
}

const struct srv_stats *srv_get_stats(const struct srv *s) { return &s->stats; }

void srv_close(struct srv *s)
{
    struct conn *c, *next;
    if (s == NULL)
        return;
    closing = 1;
    for (c = all_conns; c; c = next) {
        next = c->next;
        if (c->srv == s)
            conn_free(c);
    }
    for (c = orphans; c; c = next) {
        next = c->next;
        if (c->srv == s)
            orphan_free(c);
    }
    closing = 0;
    for (struct srv **pp = &all_srv; *pp; pp = &(*pp)->next_srv)
        if (*pp == s) {
            *pp = s->next_srv;
            break;
        }
    if (s->accept_ev)
        event_free(s->accept_ev);
    if (s->resume_ev)
        event_free(s->resume_ev);
    if (s->fd >= 0)
        close(s->fd);
    if (s->unix_path)
        unlink(s->unix_path);
    if (all_srv == NULL && sweep_ev) {
        event_free(sweep_ev);
        sweep_ev = NULL;
    }
    free(s->unix_path);
    free(s->spec);
    free(s->name);
    free(s);
}

const char *srv_name(const struct srv *s) { return s->name; }
