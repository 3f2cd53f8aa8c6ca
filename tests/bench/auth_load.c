/* auth_load.c - load client for Dovecot's auth process, on its own sockets:
 *
 *   -t auth  the auth-client protocol (what imap-login, Postfix's smtpd and
 *            doveadm auth test speak): handshake "VERSION 1 2" + "CPID n",
 *            then "AUTH id PLAIN service=S secured lip rip resp=BASE64"
 *            -> "OK id ..." / "FAIL id ..." (a "CONT" is an error: PLAIN
 *            sends its initial response);
 *   -t user  the auth-master protocol (what the post-login and LMTP
 *            processes speak): "VERSION 1 0", then "USER id NAME service=S"
 *            -> "USER id ..." / "NOTFOUND id" / "FAIL id ...".
 *
 * N connections, P requests in flight on each, for D seconds after W of
 * warm-up, or exactly -n COUNT requests (all measured); single-threaded,
 * epoll, nonblocking. Answers may come in any order (an auth worker can
 * finish a later request first): every request's id finds its send time.
 *
 *   auth_load -t auth|user -a SOCKET -k KEYS [-c CONNS] [-p IN_FLIGHT]
 *             [-d SECONDS] [-w WARMUP_S] [-n COUNT] [-r RATE] [-S SERVICE] [-s]
 *
 * KEYS: one "user<TAB>password" line per login (the password is used by
 * -t auth only), cycled through.
 * Closed loop (default): every answer sends the next request on its
 * connection. Paced (-r RATE, requests/s for all connections together):
 * request i is due at start + i/RATE and goes out on a connection with a
 * free slot; latency counts from the moment it was due, so a client or
 * server falling behind shows in the figures instead of hiding.
 * -s busy-polls (the client owns its core; no wake-up latency of its own).
 *
 * Output: one line of key=value pairs: rate (answers/s in the measured
 * window), ok, fail (FAIL / NOTFOUND), err (anything else), p50 p90 p99
 * p999 max latency in microseconds, client_cpu_us per answer, and
 * answers_total (warm-up and drain included, for dividing a server's CPU
 * time by). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RING 4096            /* send times per connection, indexed by id */
#define LINE_MAX_IN 65536
#define H1 1000000           /* 1 us buckets up to 1 s */
#define H2 100000            /* then 1 ms buckets up to 100 s */

struct conn {
    int fd;
    char *out;
    size_t outlen, outoff, outcap;
    char in[LINE_MAX_IN];
    size_t inlen;
    int ready;               /* handshake seen (auth: DONE) */
    uint32_t next_id;
    int outstanding;
    uint64_t sent[RING];     /* 0 = free */
    uint32_t sent_id[RING];
};

struct key {
    char *user;
    char *resp;              /* base64 of "\0user\0password" */
};

static int mode_user;        /* -t user */
static const char *service = "imap";
static struct key *keys;
static size_t nkeys, next_key;
static struct conn *conns;
static int nconns = 1, inflight = 1, spin, ep;
static double rate;
static uint64_t limit, issued;
static uint32_t *hist1, *hist2;
static uint64_t lat_max, lat_n, n_ok, n_fail, n_err, answers_total;
static int measuring;

static void die(const char *what)
{
    fprintf(stderr, "auth_load: %s: %s\n", what, strerror(errno));
    exit(1);
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static char *b64(const unsigned char *in, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;
    size_t i;

    if (out == NULL)
        die("malloc");
    for (i = 0; i + 2 < len; i += 3) {
        *o++ = tab[in[i] >> 2];
        *o++ = tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        *o++ = tab[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
        *o++ = tab[in[i + 2] & 63];
    }
    if (i < len) {
        *o++ = tab[in[i] >> 2];
        if (i + 1 < len) {
            *o++ = tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
            *o++ = tab[(in[i + 1] & 15) << 2];
        } else {
            *o++ = tab[(in[i] & 3) << 4];
            *o++ = '=';
        }
        *o++ = '=';
    }
    *o = 0;
    return out;
}

static void load_keys(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[2048];
    size_t cap = 0;

    if (f == NULL)
        die(path);
    while (fgets(line, sizeof(line), f) != NULL) {
        char *tab, *nl = strchr(line, '\n');
        unsigned char plain[2048];
        size_t ul, pl;

        if (nl != NULL)
            *nl = 0;
        if (line[0] == 0)
            continue;
        tab = strchr(line, '\t');
        if (tab != NULL)
            *tab++ = 0;
        else
            tab = line + strlen(line);
        if (nkeys == cap) {
            cap = cap ? cap * 2 : 1024;
            keys = realloc(keys, cap * sizeof(*keys));
            if (keys == NULL)
                die("realloc");
        }
        ul = strlen(line);
        pl = strlen(tab);
        plain[0] = 0;
        memcpy(plain + 1, line, ul);
        plain[ul + 1] = 0;
        memcpy(plain + ul + 2, tab, pl);
        keys[nkeys].user = strdup(line);
        keys[nkeys].resp = b64(plain, ul + pl + 2);
        nkeys++;
    }
    fclose(f);
    if (nkeys == 0) {
        fprintf(stderr, "auth_load: no keys in %s\n", path);
        exit(1);
    }
}

static void out_add(struct conn *c, const char *s, size_t n)
{
    if (c->outlen + n > c->outcap) {
        c->outcap = (c->outlen + n) * 2;
        c->out = realloc(c->out, c->outcap);
        if (c->out == NULL)
            die("realloc");
    }
    memcpy(c->out + c->outlen, s, n);
    c->outlen += n;
}

static void flush_conn(struct conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t w = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
        if (w < 0) {
            if (errno == EAGAIN)
                break;
            die("write");
        }
        c->outoff += (size_t)w;
    }
    if (c->outoff == c->outlen)
        c->outoff = c->outlen = 0;
    struct epoll_event ev = { .events = EPOLLIN | (c->outlen ? EPOLLOUT : 0), .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void connect_all(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "auth_load: socket path too long\n");
        exit(1);
    }
    strcpy(sa.sun_path, path);
    conns = calloc((size_t)nconns, sizeof(*conns));
    if (conns == NULL)
        die("calloc");
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        char hello[64];
        int n;

        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (c->fd < 0)
            die("socket");
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
            die(path);
        c->next_id = 1;
        /* a CPID must be unique among the auth process's clients */
        if (mode_user)
            n = snprintf(hello, sizeof(hello), "VERSION\t1\t0\n");
        else
            n = snprintf(hello, sizeof(hello), "VERSION\t1\t2\nCPID\t%d\n",
                         (int)(getpid() % 20000) * 50000 + i + 1);
        out_add(c, hello, (size_t)n);
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            die("epoll_ctl");
    }
}

/* queue one request on c, due (or sent) at t */
static void send_req(struct conn *c, uint64_t t)
{
    const struct key *k = &keys[next_key++ % nkeys];
    char line[4096];
    uint32_t id = c->next_id++;
    int n;

    if (c->next_id == 0)
        c->next_id = 1;
    if (mode_user)
        n = snprintf(line, sizeof(line), "USER\t%u\t%s\tservice=%s\n", id, k->user, service);
    else
        n = snprintf(line, sizeof(line),
                     "AUTH\t%u\tPLAIN\tservice=%s\tsecured\tlip=127.0.0.1\trip=127.0.0.1"
                     "\tresp=%s\n", id, service, k->resp);
    if (n <= 0 || (size_t)n >= sizeof(line)) {
        fprintf(stderr, "auth_load: key too long\n");
        exit(1);
    }
    if (c->sent[id % RING] != 0) {
        fprintf(stderr, "auth_load: more than %d requests outstanding on one connection\n", RING);
        exit(1);
    }
    c->sent[id % RING] = t;
    c->sent_id[id % RING] = id;
    c->outstanding++;
    issued++;
    out_add(c, line, (size_t)n);
}

static void record(uint64_t lat, int kind)
{
    answers_total++;
    if (!measuring)
        return;
    if (kind == 0)
        n_ok++;
    else if (kind == 1)
        n_fail++;
    else
        n_err++;
    if (lat < H1)
        hist1[lat]++;
    else if (lat / 1000 < H2)
        hist2[lat / 1000]++;
    else
        hist2[H2 - 1]++;
    if (lat > lat_max)
        lat_max = lat;
    lat_n++;
}

/* one answer line: returns 1 if it answered a request */
static int answer(struct conn *c, char *line, uint64_t now)
{
    char *tab = strchr(line, '\t');
    unsigned long id;
    int kind;

    if (!c->ready) {
        /* auth-client: VERSION MECH SPID CUID COOKIE DONE; master: VERSION SPID */
        if (mode_user ? strncmp(line, "SPID\t", 5) == 0 : strcmp(line, "DONE") == 0)
            c->ready = 1;
        return 0;
    }
    if (tab == NULL)
        return 0;
    *tab = 0;
    if (strcmp(line, "OK") == 0 || strcmp(line, "USER") == 0)
        kind = 0;
    else if (strcmp(line, "FAIL") == 0 || strcmp(line, "NOTFOUND") == 0)
        kind = strcmp(line, "FAIL") == 0 && mode_user ? 2 : 1;
    else
        kind = 2;
    id = strtoul(tab + 1, NULL, 10);
    if (c->sent[id % RING] == 0 || c->sent_id[id % RING] != id) {
        fprintf(stderr, "auth_load: answer for unknown id %lu: %s\n", id, line);
        exit(1);
    }
    record(now - c->sent[id % RING], kind);
    c->sent[id % RING] = 0;
    c->outstanding--;
    return 1;
}

static int read_conn(struct conn *c, uint64_t now)
{
    int answered = 0;

    for (;;) {
        ssize_t r = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
        if (r == 0) {
            fprintf(stderr, "auth_load: the auth process closed a connection\n");
            exit(1);
        }
        if (r < 0) {
            if (errno == EAGAIN)
                break;
            die("read");
        }
        c->inlen += (size_t)r;
        char *p = c->in, *nl;
        while ((nl = memchr(p, '\n', c->inlen - (size_t)(p - c->in))) != NULL) {
            *nl = 0;
            answered += answer(c, p, now);
            p = nl + 1;
        }
        c->inlen -= (size_t)(p - c->in);
        memmove(c->in, p, c->inlen);
        if (c->inlen == sizeof(c->in)) {
            fprintf(stderr, "auth_load: answer line too long\n");
            exit(1);
        }
    }
    return answered;
}

static uint64_t percentile(double q)
{
    uint64_t want = (uint64_t)(q * (double)lat_n), seen = 0;

    if (lat_n == 0)
        return 0;
    if (want >= lat_n)
        want = lat_n - 1;
    for (uint64_t i = 0; i < H1; i++)
        if ((seen += hist1[i]) > want)
            return i;
    for (uint64_t i = 0; i < H2; i++)
        if ((seen += hist2[i]) > want)
            return i * 1000;
    return lat_max;
}

static void usage(void)
{
    fprintf(stderr, "usage: auth_load -t auth|user -a SOCKET -k KEYS [-c CONNS] [-p IN_FLIGHT]\n"
                    "                 [-d SECONDS] [-w WARMUP_S] [-n COUNT] [-r RATE] [-S SERVICE] [-s]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *path = NULL, *keyfile = NULL;
    double duration = 5, warmup = 1;
    int opt;

    while ((opt = getopt(argc, argv, "t:a:k:c:p:d:w:n:r:S:s")) != -1) {
        switch (opt) {
        case 't': mode_user = strcmp(optarg, "user") == 0;
                  if (!mode_user && strcmp(optarg, "auth") != 0) usage();
                  break;
        case 'a': path = optarg; break;
        case 'k': keyfile = optarg; break;
        case 'c': nconns = atoi(optarg); break;
        case 'p': inflight = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'n': limit = strtoull(optarg, NULL, 10); break;
        case 'r': rate = atof(optarg); break;
        case 'S': service = optarg; break;
        case 's': spin = 1; break;
        default: usage();
        }
    }
    if (path == NULL || keyfile == NULL || nconns < 1 || inflight < 1 || inflight > RING / 2)
        usage();
    load_keys(keyfile);
    hist1 = calloc(H1, sizeof(*hist1));
    hist2 = calloc(H2, sizeof(*hist2));
    ep = epoll_create1(0);
    if (hist1 == NULL || hist2 == NULL || ep < 0)
        die("init");
    connect_all(path);

    /* wait for every handshake, so that the first requests are not timed
     * against the auth process's start-up */
    struct epoll_event evs[256];
    int nready = 0;
    uint64_t give_up = now_us() + 10000000;
    while (nready < nconns) {
        if (now_us() > give_up) {
            fprintf(stderr, "auth_load: no handshake from the auth process in 10 s\n");
            return 1;
        }
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLOUT)
                flush_conn(c);
            if (evs[i].events & EPOLLIN) {
                int was = c->ready;
                read_conn(c, now_us());
                nready += c->ready && !was;
            }
        }
    }

    uint64_t t0 = now_us(), m0 = 0, m1 = 0, cpu0 = 0, cpu1 = 0, last_answer = t0;
    uint64_t warm_end = limit ? t0 : t0 + (uint64_t)(warmup * 1e6);
    uint64_t end = limit ? UINT64_MAX : warm_end + (uint64_t)(duration * 1e6);
    int rr = 0;

    if (limit) {
        measuring = 1;
        m0 = t0;
        cpu0 = cpu_us();
    }
    for (;;) {
        uint64_t now = now_us();

        if (!measuring && !limit && now >= warm_end) {
            measuring = 1;
            m0 = now;
            cpu0 = cpu_us();
        }
        if (limit ? (issued >= limit && answers_total >= limit) : now >= end)
            break;
        if (now - last_answer > 120000000ULL) {
            fprintf(stderr, "auth_load: no answer for 120 s; giving up\n");
            return 1;
        }
        /* fill free slots: closed loop at once, paced when due */
        for (int k = 0; k < nconns; k++) {
            struct conn *c = &conns[(rr + k) % nconns];
            int queued = 0;
            while (c->outstanding < inflight && (!limit || issued < limit)) {
                uint64_t due = now;
                if (rate > 0) {
                    due = t0 + (uint64_t)((double)issued * 1e6 / rate);
                    if (due > now)
                        break;
                }
                send_req(c, due);
                queued = 1;
            }
            if (queued)
                flush_conn(c);
        }
        rr = (rr + 1) % nconns;
        int n = epoll_wait(ep, evs, 256, spin ? 0 : 1);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        now = now_us();
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLOUT)
                flush_conn(c);
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                if (read_conn(c, now) > 0)
                    last_answer = now;
        }
    }
    m1 = now_us();
    cpu1 = cpu_us();
    /* drain what is still outstanding, so answers_total counts every
     * request the server worked on */
    measuring = 0;
    uint64_t drain_end = now_us() + 30000000;
    for (;;) {
        long left = 0;
        for (int k = 0; k < nconns; k++)
            left += conns[k].outstanding;
        if (left == 0 || now_us() > drain_end)
            break;
        int n = epoll_wait(ep, evs, 256, 10);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLOUT)
                flush_conn(c);
            if (evs[i].events & EPOLLIN)
                read_conn(c, now_us());
        }
    }
    double secs = (double)(m1 - m0) / 1e6;
    printf("rate=%.0f ok=%llu fail=%llu err=%llu p50=%llu p90=%llu p99=%llu p999=%llu max=%llu"
           " client_cpu_us=%.1f answers_total=%llu secs=%.2f\n",
           secs > 0 ? (double)lat_n / secs : 0, (unsigned long long)n_ok,
           (unsigned long long)n_fail, (unsigned long long)n_err,
           (unsigned long long)percentile(0.50), (unsigned long long)percentile(0.90),
           (unsigned long long)percentile(0.99), (unsigned long long)percentile(0.999),
           (unsigned long long)lat_max, lat_n ? (double)(cpu1 - cpu0) / (double)lat_n : 0,
           (unsigned long long)answers_total, secs);
    return 0;
}
