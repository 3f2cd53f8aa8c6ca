/* lookup_load.c - load client for Postfix lookup servers: tcp_table(5)
 * ("get KEY\n" -> one reply line) and socketmap(5) (netstrings), over N
 * connections with P requests in flight each (pipelined), for D seconds,
 * cycling through a key file; single-threaded, epoll, nonblocking.
 *
 *   lookup_load -t tcp|smap -a 127.0.0.1:PORT|unix:PATH [-m MAP] -k KEYS
 *               [-c CONNS] [-p IN_FLIGHT] [-d SECONDS] [-r RATE] [-w WARMUP_S] [-s]
 *
 * Closed loop (default): every reply sends the next request on its
 * connection, so each connection always has P requests outstanding.
 * Paced (-r RATE, lookups/s for all connections together): requests are due
 * at start + i/RATE and go out on a connection with fewer than P
 * outstanding; a request that finds none waits in a backlog. Latency is
 * measured from the moment a request was due (paced) or written (closed
 * loop) to the arrival of its reply, so a late client counts against the
 * result instead of hiding it.
 *
 * The first WARMUP seconds (default 1) are not measured. -s busy-polls
 * (epoll with a zero timeout) instead of sleeping: the client then owns its
 * core, and its own wake-up latency (large in a VM, where an idle vCPU
 * halts) stays out of the figures.
 *
 * Output: one line of key=value pairs (lookups/s, hit/miss/error counts,
 * p50/p90/p99/p99.9/max latency in microseconds, the client's own CPU in
 * the measured window, and replies_total: every reply including warm-up and
 * drain, for dividing a server's CPU time by). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

enum proto { P_TCPT, P_SMAP };

struct req {
    char *data;
    size_t len;
};

struct conn {
    int fd;
    char *out;
    size_t outlen, outoff, outcap;
    char in[65536];
    size_t inlen;
    uint64_t *sent;        /* ring of send (or due) times, oldest first */
    int head, count;
    int want_out;
};

static enum proto proto = P_TCPT;
static struct req *reqs;
static size_t nreqs, next_req;
static struct conn *conns;
static int nconns = 1, inflight = 1, ep;
static long outstanding;  /* requests written or queued, not answered */
static double rate;
static int spin;          /* -s: busy-poll, never sleep */

/* latency histogram: 1 us buckets up to 1 s */
#define HMAX 1000000
static uint32_t *hist;
static uint64_t hover, lat_max, lat_count;
static uint64_t hits, misses, errors, measured, replies_total;
static uint64_t t_measure, t_end;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void load_keys(const char *path, const char *map)
{
    FILE *fp = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, rcap = 0;
    ssize_t len;

    if (fp == NULL)
        die(path);
    while ((len = getline(&line, &cap, fp)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = 0;
        if (len == 0)
            continue;
        if (nreqs == rcap) {
            rcap = rcap ? rcap * 2 : 65536;
            reqs = realloc(reqs, rcap * sizeof(*reqs));
        }
        char buf[8192];
        size_t n = 0;
        if (proto == P_TCPT) {
            n = (size_t)snprintf(buf, sizeof(buf), "get ");
            for (ssize_t i = 0; i < len && n < sizeof(buf) - 8; i++) {
                unsigned char ch = (unsigned char)line[i];
                if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                    ch == '@' || ch == '.' || ch == '-' || ch == '_' || ch == '+')
                    buf[n++] = (char)ch;
                else
                    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%%%02X", ch);
            }
            buf[n++] = '\n';
        } else {
            n = (size_t)snprintf(buf, sizeof(buf), "%zu:%s %s,", strlen(map) + 1 + (size_t)len, map, line);
        }
        reqs[nreqs].data = malloc(n);
        memcpy(reqs[nreqs].data, buf, n);
        reqs[nreqs].len = n;
        nreqs++;
    }
    free(line);
    fclose(fp);
    if (nreqs == 0) {
        fprintf(stderr, "lookup_load: no keys in %s\n", path);
        exit(1);
    }
}

static int connect_to(const char *addr)
{
    int fd;
    if (strncmp(addr, "unix:", 5) == 0) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", addr + 5);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
            die(addr);
    } else {
        const char *hp = strncmp(addr, "inet:", 5) == 0 ? addr + 5 : addr;
        char host[64];
        const char *colon = strrchr(hp, ':');
        if (colon == NULL || (size_t)(colon - hp) >= sizeof(host)) {
            fprintf(stderr, "lookup_load: bad address %s\n", addr);
            exit(64);
        }
        memcpy(host, hp, (size_t)(colon - hp));
        host[colon - hp] = 0;
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
        if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
            fprintf(stderr, "lookup_load: bad address %s\n", addr);
            exit(64);
        }
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
            die(addr);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void queue_req(struct conn *c, uint64_t t)
{
    const struct req *r = &reqs[next_req];
    next_req = next_req + 1 == nreqs ? 0 : next_req + 1;
    if (c->outlen + r->len > c->outcap) {
        c->outcap = (c->outlen + r->len) * 2;
        c->out = realloc(c->out, c->outcap);
    }
    memcpy(c->out + c->outlen, r->data, r->len);
    c->outlen += r->len;
    c->sent[(c->head + c->count) % inflight] = t;
    c->count++;
    outstanding++;
}

static void flush_conn(struct conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0)
            die("write");
        c->outoff += (size_t)n;
    }
    if (c->outoff == c->outlen)
        c->outoff = c->outlen = 0;
    int want = c->outlen > 0;
    if (want != c->want_out) {
        struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c };
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
}

static void record(uint64_t sent, uint64_t now, int kind)
{
    replies_total++;
    if (now < t_measure || sent < t_measure || now > t_end)
        return;
    uint64_t us = (now - sent) / 1000;
    measured++;
    if (us < HMAX)
        hist[us]++;
    else
        hover++;
    if (us > lat_max)
        lat_max = us;
    lat_count++;
    if (kind == 1)
        hits++;
    else if (kind == 0)
        misses++;
    else
        errors++;
}

/* parse complete replies; returns how many */
static int parse_replies(struct conn *c, uint64_t now)
{
    size_t off = 0;
    int got = 0;
    while (off < c->inlen) {
        const char *p = c->in + off;
        size_t left = c->inlen - off, used;
        int kind;
        if (proto == P_TCPT) {
            const char *nl = memchr(p, '\n', left);
            if (nl == NULL)
                break;
            used = (size_t)(nl - p) + 1;
            kind = left >= 3 && memcmp(p, "200", 3) == 0 ? 1 : left >= 3 && memcmp(p, "500", 3) == 0 ? 0 : -1;
        } else {
            size_t len = 0, i = 0;
            while (i < left && p[i] >= '0' && p[i] <= '9')
                len = len * 10 + (size_t)(p[i++] - '0');
            if (i == left)
                break;
            if (i == 0 || p[i] != ':') {
                fprintf(stderr, "lookup_load: malformed netstring from server\n");
                exit(1);
            }
            if (left < i + 1 + len + 1)
                break;
            const char *d = p + i + 1;
            used = i + 1 + len + 1;
            kind = len >= 3 && memcmp(d, "OK ", 3) == 0 ? 1 : len >= 8 && memcmp(d, "NOTFOUND", 8) == 0 ? 0 : -1;
        }
        if (c->count == 0) {
            fprintf(stderr, "lookup_load: reply without a request\n");
            exit(1);
        }
        record(c->sent[c->head], now, kind);
        c->head = (c->head + 1) % inflight;
        c->count--;
        outstanding--;
        off += used;
        got++;
    }
    memmove(c->in, c->in + off, c->inlen - off);
    c->inlen -= off;
    return got;
}

static uint64_t pct(double p)
{
    uint64_t want = (uint64_t)((double)lat_count * p + 0.5), seen = 0;
    if (want == 0)
        want = 1;
    for (uint64_t i = 0; i < HMAX; i++) {
        seen += hist[i];
        if (seen >= want)
            return i;
    }
    return lat_max;
}

static void usage(void)
{
    fprintf(stderr, "usage: lookup_load -t tcp|smap -a ADDR [-m MAP] -k KEYS [-c CONNS] [-p IN_FLIGHT]\n"
                    "                   [-d SECONDS] [-r RATE] [-w WARMUP_SECONDS] [-s]\n");
    exit(64);
}

int main(int argc, char **argv)
{
    const char *addr = NULL, *keys = NULL, *map = "mailboxes";
    double secs = 10, warmup = 1;
    int ch;

    while ((ch = getopt(argc, argv, "t:a:m:k:c:p:d:r:w:s")) != -1) {
        switch (ch) {
        case 't':
            if (strcmp(optarg, "tcp") == 0)
                proto = P_TCPT;
            else if (strcmp(optarg, "smap") == 0)
                proto = P_SMAP;
            else
                usage();
            break;
        case 'a': addr = optarg; break;
        case 'm': map = optarg; break;
        case 'k': keys = optarg; break;
        case 'c': nconns = atoi(optarg); break;
        case 'p': inflight = atoi(optarg); break;
        case 'd': secs = atof(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 's': spin = 1; break;
        default: usage();
        }
    }
    if (addr == NULL || keys == NULL || nconns < 1 || inflight < 1 || secs <= 0)
        usage();
    load_keys(keys, map);
    hist = calloc(HMAX, sizeof(*hist));
    ep = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)nconns, sizeof(*conns));
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        c->fd = connect_to(addr);
        c->sent = calloc((size_t)inflight, sizeof(uint64_t));
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    uint64_t start = now_ns(), interval = 0, due = start, backlog = 0, backlog_max = 0;
    t_measure = start + (uint64_t)(warmup * 1e9);
    t_end = t_measure + (uint64_t)(secs * 1e9);
    if (rate > 0) {
        interval = (uint64_t)(1e9 / rate);
    } else {
        for (int i = 0; i < nconns; i++) {
            for (int j = 0; j < inflight; j++)
                queue_req(&conns[i], start);
            flush_conn(&conns[i]);
        }
    }
    struct rusage ru0, ru1;
    int measuring = 0;
    int rr = 0; /* paced: next connection to try */
    for (;;) {
        uint64_t now = now_ns();
        if (!measuring && now >= t_measure) {
            getrusage(RUSAGE_SELF, &ru0);
            measuring = 1;
        }
        if (now >= t_end + 2000000000ULL)
            break; /* stragglers: give up after 2 s */
        if (now >= t_end && outstanding == 0)
            break;
        struct timespec wait = { 0, 100000000 }; /* 100 ms */
        if (rate > 0 && now < t_end) {
            /* everything due by now: as the backlog, then out where there is room */
            while (due <= now) {
                backlog++;
                due += interval;
            }
            if (backlog > backlog_max)
                backlog_max = backlog;
            int tried = 0;
            uint64_t first_due = due - backlog * interval;
            while (backlog > 0 && tried < nconns) {
                struct conn *c = &conns[rr];
                rr = (rr + 1) % nconns;
                if (c->count >= inflight) {
                    tried++;
                    continue;
                }
                tried = 0;
                queue_req(c, first_due);
                first_due += interval;
                backlog--;
            }
            for (int i = 0; i < nconns; i++)
                if (conns[i].outlen > conns[i].outoff)
                    flush_conn(&conns[i]);
            /* sleep until the next one is due (or a reply comes) */
            uint64_t t = now_ns(), until = due > t ? due - t : 0;
            wait.tv_sec = (time_t)(until / 1000000000ULL);
            wait.tv_nsec = (long)(until % 1000000000ULL);
        }
        struct epoll_event evs[256];
        if (spin)
            wait.tv_sec = wait.tv_nsec = 0;
        int n = epoll_pwait2(ep, evs, 256, &wait, NULL);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLOUT)
                flush_conn(c);
            if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            for (;;) {
                ssize_t r = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0 && errno == EAGAIN)
                    break;
                if (r <= 0) {
                    fprintf(stderr, "lookup_load: server closed a connection (%s)\n",
                            r == 0 ? "EOF" : strerror(errno));
                    exit(1);
                }
                c->inlen += (size_t)r;
                uint64_t t = now_ns();
                int got = parse_replies(c, t);
                if (rate <= 0 && t < t_end)
                    for (int j = 0; j < got; j++)
                        queue_req(c, t);
                if (c->inlen == sizeof(c->in)) {
                    fprintf(stderr, "lookup_load: reply too long\n");
                    exit(1);
                }
                if ((size_t)r < sizeof(c->in) / 2)
                    break;
            }
            if (c->outlen > c->outoff)
                flush_conn(c);
        }
    }
    getrusage(RUSAGE_SELF, &ru1);
    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                 (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    printf("proto=%s conns=%d inflight=%d rate_offered=%.0f secs=%.2f lookups=%llu lookups_per_s=%.0f "
           "hits=%llu misses=%llu errors=%llu p50_us=%llu p90_us=%llu p99_us=%llu p999_us=%llu max_us=%llu "
           "client_cpu_s=%.2f backlog_max=%llu replies_total=%llu\n",
           proto == P_TCPT ? "tcp" : "smap", nconns, inflight, rate, secs, (unsigned long long)measured,
           (double)measured / secs, (unsigned long long)hits, (unsigned long long)misses,
           (unsigned long long)errors, (unsigned long long)pct(0.5), (unsigned long long)pct(0.9),
           (unsigned long long)pct(0.99), (unsigned long long)pct(0.999), (unsigned long long)lat_max, cpu,
           (unsigned long long)backlog_max, (unsigned long long)replies_total);
    return 0;
}
