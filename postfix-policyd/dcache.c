/* dcache.c - flush changed accounts from Dovecot's auth cache (dcache.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "codec.h"
#include "dcache.h"
#include "log.h"
#include "mem.h"

#define BATCH_DELAY_MS 50       /* changes of one transaction go together */
#define MAX_USERS 1000          /* more pending than this: flush everything */
#define USERS_PER_LINE 64       /* a new CACHE-FLUSH line after this many */
#define ANSWER_TIMEOUT 2        /* s */
#define WARN_INTERVAL 60        /* s between two warnings */

static struct {
    struct event_base *base;
    char *socket;
    /* what waits to be flushed */
    char **users;
    size_t nusers;
    int all;
    struct event *timer;
    /* the flush under way */
    int fd;
    struct event *io;
    struct buf out;
    size_t out_off;
    struct buf in;
    unsigned next_id, first_id, last_id;
    unsigned answered;
    unsigned long flushed;      /* entries Dovecot says it dropped */
    time_t started, last_warn;
    unsigned long batches_ok, batches_failed;
} D = { .fd = -1 };

void dcache_stats(unsigned long *ok, unsigned long *failed)
{
    *ok = D.batches_ok;
    *failed = D.batches_failed;
}

void dcache_request(struct buf *out, unsigned id, const char *const *users, size_t nusers)
{
    buf_printf(out, "CACHE-FLUSH\t%u", id);
    for (size_t i = 0; i < nusers; i++) {
        buf_addc(out, '\t');
        tabesc_encode(out, users[i], strlen(users[i]));
    }
    buf_addc(out, '\n');
}

/* At most one warning per WARN_INTERVAL: a Dovecot that is down would
 * otherwise cost a line per change. */
static void warn(const char *what, const char *detail)
{
    time_t now = time(NULL);
    if (now - D.last_warn < WARN_INTERVAL)
        return;
    D.last_warn = now;
    msg_warn("Dovecot auth cache flush through %s: %s%s%s", D.socket, what, detail ? ": " : "",
             detail ? detail : "");
}

static void pending_clear(void)
{
    for (size_t i = 0; i < D.nusers; i++)
        free(D.users[i]);
    D.nusers = 0;
    D.all = 0;
}

static void conn_close(void)
{
    if (D.io) {
        event_free(D.io);
        D.io = NULL;
    }
    if (D.fd >= 0)
        close(D.fd);
    D.fd = -1;
    buf_reset(&D.out);
    buf_reset(&D.in);
    D.out_off = 0;
}

static void schedule(void);

/* Answers: the server's greeting, then "OK <id> <count>" or "FAIL <id>"
 * per request. Done when every request of ours is answered. */
static int read_answers(void)
{
    char tmp[4096];
    ssize_t n;

    while ((n = read(D.fd, tmp, sizeof(tmp))) > 0) {
        buf_add(&D.in, tmp, (size_t)n);
        if (D.in.len > 65536)
            return -1;
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        return -1;
    char *p = D.in.data, *nl;
    while (p && (nl = memchr(p, '\n', D.in.len - (size_t)(p - D.in.data))) != NULL) {
        *nl = 0;
        unsigned id, count;
        if (sscanf(p, "OK\t%u\t%u", &id, &count) == 2 && id >= D.first_id && id <= D.last_id) {
            D.answered++;
            D.flushed += count;
        } else if (sscanf(p, "FAIL\t%u", &id) == 1 && id >= D.first_id && id <= D.last_id) {
            warn("failed", p);
            D.answered++;
        }
        p = nl + 1;
    }
    size_t rest = D.in.len - (size_t)(p - D.in.data);
    memmove(D.in.data, p, rest);
    buf_truncate(&D.in, rest);
    return D.answered > D.last_id - D.first_id ? 1 : 0;
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    int rc = 0;
    (void)fd;
    (void)arg;
    if (what & EV_TIMEOUT) {
        warn("no answer within 2 s", NULL);
        rc = -1;
    }
    if (rc == 0 && (what & EV_WRITE) && D.out_off < D.out.len) {
        ssize_t n = write(D.fd, D.out.data + D.out_off, D.out.len - D.out_off);
        if (n > 0)
            D.out_off += (size_t)n;
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            rc = -1;
    }
    if (rc == 0 && (what & EV_READ))
        rc = read_answers();
    if (rc == 0) {
        /* wait for what is left: writing, then answers */
        struct timeval t = { ANSWER_TIMEOUT - (time(NULL) - D.started), 0 };
        if (t.tv_sec < 1)
            t.tv_sec = 1;
        event_del(D.io);
        event_assign(D.io, D.base, D.fd, D.out_off < D.out.len ? EV_WRITE | EV_READ : EV_READ,
                     on_io, NULL);
        event_add(D.io, &t);
        return;
    }
    if (rc > 0) {
        D.batches_ok++;
        msg_debug("Dovecot auth cache: %lu entries flushed", D.flushed);
    } else {
        D.batches_failed++;
    }
    conn_close();
    if (D.nusers || D.all)
        schedule(); /* what changed meanwhile */
}

/* Send what is pending on a new connection. */
static void flush(evutil_socket_t fd, short what, void *arg)
{
    struct sockaddr_un sun;
    (void)fd;
    (void)what;
    (void)arg;

    if (D.fd >= 0)
        return; /* one at a time: on_io schedules the rest */
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", D.socket);
    D.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (D.fd < 0 || connect(D.fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        /* EAGAIN too: a full backlog is a Dovecot that does not keep up */
        warn("cannot connect", strerror(errno));
        D.batches_failed++;
        conn_close();
        pending_clear();
        return;
    }
    buf_adds(&D.out, "VERSION\t1\t0\n");
    D.first_id = ++D.next_id;
    if (D.all) {
        dcache_request(&D.out, D.next_id, NULL, 0);
    } else {
        /* lines of at most USERS_PER_LINE names stay well inside what
         * Dovecot reads as one line */
        size_t from = 0;
        for (size_t i = 0; i < D.nusers; i++) {
            if (i + 1 == D.nusers || i - from + 1 >= USERS_PER_LINE) {
                dcache_request(&D.out, D.next_id, (const char *const *)D.users + from, i - from + 1);
                from = i + 1;
                if (i + 1 < D.nusers)
                    D.next_id++;
            }
        }
    }
    D.last_id = D.next_id;
    D.answered = 0;
    D.flushed = 0;
    D.started = time(NULL);
    pending_clear();
    D.io = event_new(D.base, D.fd, EV_WRITE | EV_READ, on_io, NULL);
    on_io(D.fd, EV_WRITE, NULL);
}

static void schedule(void)
{
    struct timeval t = { 0, BATCH_DELAY_MS * 1000 };
    if (D.timer && !evtimer_pending(D.timer, NULL))
        evtimer_add(D.timer, &t);
}

void dcache_init(struct event_base *base, const char *socket)
{
    D.base = base;
    free(D.socket);
    D.socket = socket && *socket ? xstrdup(socket) : NULL;
    if (D.timer == NULL) {
        D.timer = evtimer_new(base, flush, NULL);
        buf_init(&D.out);
        buf_init(&D.in);
    }
}

void dcache_user(const char *user)
{
    if (D.socket == NULL || D.all)
        return;
    if (D.nusers == MAX_USERS) {
        dcache_all();
        return;
    }
    if (D.users == NULL)
        D.users = xcalloc(MAX_USERS, sizeof(*D.users));
    D.users[D.nusers++] = xstrdup(user);
    schedule();
}

void dcache_all(void)
{
    if (D.socket == NULL)
        return;
    pending_clear();
    D.all = 1;
    schedule();
}
