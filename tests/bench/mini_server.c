/* mini_server.c - the benchmarks' ceiling: a minimal single-threaded epoll
 * server answering Postfix tcp_table ("get KEY\n" -> "200 VALUE\n" /
 * "500 not found\n") and socketmap (netstring "MAP KEY" -> "OK VALUE" /
 * "NOTFOUND ") from an in-memory hash table of "KEY<TAB>VALUE" lines, and
 * Postfix's policy delegation (attribute lines up to an empty line, each
 * split at its "=" -> "action=DUNNO"): the parse-and-DUNNO ceiling.
 *
 * It does no Postfix table semantics (no case folding, no address
 * extensions, no domain check, one table whatever the map name): it is what
 * any lookup server costs at least on this machine, the baseline of
 * tests/bench/perf-baselines ("a minimal in-memory tcp_table server").
 *
 *   mini_server -f KEYVALUES [-t 127.0.0.1:PORT]... [-s 127.0.0.1:PORT | -s unix:PATH]...
 *               [-p 127.0.0.1:PORT | -p unix:PATH]... [-M]
 *
 * -M: a socketmap request is looked up as "MAP KEY" (the table's keys then
 * carry the map name), so that one server can answer several maps.
 *
 * Prints "ready" on stdout once it listens. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

enum proto { P_TCPT, P_SMAP, P_POL };

struct ent {
    char *key, *val;
    size_t klen, vlen;
};
static struct ent *tab;
static size_t tab_mask;

static uint64_t hash(const char *p, size_t n)
{
    uint64_t x = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        x ^= (unsigned char)p[i];
        x *= 1099511628211ULL;
    }
    return x ^ (x >> 32);
}

static const struct ent *get(const char *k, size_t n)
{
    for (size_t i = hash(k, n) & tab_mask;; i = (i + 1) & tab_mask) {
        if (tab[i].key == NULL)
            return NULL;
        if (tab[i].klen == n && memcmp(tab[i].key, k, n) == 0)
            return &tab[i];
    }
}

static void load(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, n = 0, lines = 0;
    ssize_t len;

    if (fp == NULL) {
        perror(path);
        exit(1);
    }
    while (getline(&line, &cap, fp) > 0)
        lines++;
    rewind(fp);
    size_t size = 16;
    while (size < lines * 2)
        size <<= 1;
    tab = calloc(size, sizeof(*tab));
    tab_mask = size - 1;
    while ((len = getline(&line, &cap, fp)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = 0;
        char *tabc = strchr(line, '\t');
        if (tabc == NULL)
            continue;
        size_t kl = (size_t)(tabc - line);
        size_t i = hash(line, kl) & tab_mask;
        while (tab[i].key && !(tab[i].klen == kl && memcmp(tab[i].key, line, kl) == 0))
            i = (i + 1) & tab_mask;
        tab[i].key = strndup(line, kl);
        tab[i].klen = kl;
        tab[i].val = strdup(tabc + 1);
        tab[i].vlen = strlen(tabc + 1);
        n++;
    }
    free(line);
    fclose(fp);
    fprintf(stderr, "mini_server: %zu keys\n", n);
}

struct conn {
    int fd;
    int listener;      /* a listening socket */
    enum proto proto;
    char *in;
    size_t inlen, incap;
    char *out;
    size_t outlen, outoff, outcap;
    int want_out;
};

static int ep;
static int smap_with_map;  /* -M */

static void need(char **b, size_t *cap, size_t want)
{
    if (want <= *cap)
        return;
    size_t c = *cap ? *cap : 4096;
    while (c < want)
        c *= 2;
    *b = realloc(*b, c);
    *cap = c;
}

static void out_add(struct conn *c, const char *p, size_t n)
{
    need(&c->out, &c->outcap, c->outlen + n);
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* one tcp_table request line (without \n) */
static void tcpt(struct conn *c, const char *l, size_t n)
{
    char key[4096];
    size_t kl = 0;
    if (n < 5 || memcmp(l, "get ", 4) != 0) {
        out_add(c, "400 malformed request\n", 22);
        return;
    }
    for (size_t i = 4; i < n && kl < sizeof(key); i++) {
        if (l[i] == '%' && i + 2 < n && hexval(l[i + 1]) >= 0 && hexval(l[i + 2]) >= 0) {
            key[kl++] = (char)(hexval(l[i + 1]) * 16 + hexval(l[i + 2]));
            i += 2;
        } else {
            key[kl++] = l[i];
        }
    }
    const struct ent *e = get(key, kl);
    if (e == NULL) {
        out_add(c, "500 not found\n", 14);
        return;
    }
    out_add(c, "200 ", 4);
    for (size_t i = 0; i < e->vlen; i++) {
        unsigned char ch = (unsigned char)e->val[i];
        if (ch <= ' ' || ch == '%' || ch >= 0x7f) {
            char hx[4];
            snprintf(hx, sizeof(hx), "%%%02X", ch);
            out_add(c, hx, 3);
        } else {
            out_add(c, (const char *)&ch, 1);
        }
    }
    out_add(c, "\n", 1);
}

static void smap_reply(struct conn *c, const char *a, size_t an, const char *b, size_t bn)
{
    char hdr[32];
    int h = snprintf(hdr, sizeof(hdr), "%zu:", an + bn);
    out_add(c, hdr, (size_t)h);
    out_add(c, a, an);
    out_add(c, b, bn);
    out_add(c, ",", 1);
}

/* one socketmap request: "MAP KEY" */
static void smap(struct conn *c, const char *d, size_t n)
{
    const char *sp = memchr(d, ' ', n);
    if (sp == NULL) {
        smap_reply(c, "PERM malformed request", 22, "", 0);
        return;
    }
    const struct ent *e = smap_with_map ? get(d, n) : get(sp + 1, n - (size_t)(sp + 1 - d));
    if (e == NULL)
        smap_reply(c, "NOTFOUND ", 9, "", 0);
    else
        smap_reply(c, "OK ", 3, e->val, e->vlen);
}

/* one policy request (its attribute lines, the empty line excluded):
 * each line is split at its "=" as a policy server must, then DUNNO */
static int pol(struct conn *c, const char *d, size_t n)
{
    size_t attrs = 0;
    for (const char *p = d, *end = d + n; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        if (memchr(p, '=', (size_t)(eol - p)) == NULL)
            return -1;
        attrs++;
        p = eol + 1;
    }
    if (attrs == 0)
        return -1;
    out_add(c, "action=DUNNO\n\n", 14);
    return 0;
}

/* answer every complete request in c->in; -1: close */
static int process(struct conn *c)
{
    size_t off = 0;
    while (off < c->inlen) {
        const char *p = c->in + off;
        size_t left = c->inlen - off;
        if (c->proto == P_TCPT) {
            const char *nl = memchr(p, '\n', left);
            if (nl == NULL)
                break;
            size_t n = (size_t)(nl - p);
            tcpt(c, p, n > 0 && p[n - 1] == '\r' ? n - 1 : n);
            off += n + 1;
        } else if (c->proto == P_POL) {
            const char *end = memmem(p, left, "\n\n", 2);
            if (end == NULL)
                break;
            if (pol(c, p, (size_t)(end - p)) < 0)
                return -1;
            off += (size_t)(end - p) + 2;
        } else {
            size_t len = 0, i = 0;
            while (i < left && p[i] >= '0' && p[i] <= '9' && i < 7)
                len = len * 10 + (size_t)(p[i++] - '0');
            if (i == left)
                break;
            if (i == 0 || p[i] != ':')
                return -1;
            if (left < i + 1 + len + 1)
                break;
            if (p[i + 1 + len] != ',')
                return -1;
            smap(c, p + i + 1, len);
            off += i + 1 + len + 1;
        }
    }
    memmove(c->in, c->in + off, c->inlen - off);
    c->inlen -= off;
    return c->inlen > 200000 ? -1 : 0;
}

static void conn_close(struct conn *c)
{
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

static int flush_out(struct conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0)
            return -1;
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
    return 0;
}

static void on_readable(struct conn *c)
{
    for (;;) {
        need(&c->in, &c->incap, c->inlen + 65536);
        ssize_t n = read(c->fd, c->in + c->inlen, c->incap - c->inlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            conn_close(c);
            return;
        }
        c->inlen += (size_t)n;
        if ((size_t)n < 65536)
            break;
    }
    if (process(c) < 0 || flush_out(c) < 0)
        conn_close(c);
}

static void add_listener(const char *spec, enum proto proto)
{
    int fd;
    if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", spec + 5);
        unlink(sun.sun_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
            perror(spec);
            exit(1);
        }
        chmod(sun.sun_path, 0666);
    } else {
        const char *hp = strncmp(spec, "inet:", 5) == 0 ? spec + 5 : spec;
        char host[64];
        const char *colon = strrchr(hp, ':');
        if (colon == NULL || (size_t)(colon - hp) >= sizeof(host)) {
            fprintf(stderr, "bad address %s\n", spec);
            exit(1);
        }
        memcpy(host, hp, (size_t)(colon - hp));
        host[colon - hp] = 0;
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
        inet_pton(AF_INET, host, &sin.sin_addr);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
            perror(spec);
            exit(1);
        }
    }
    if (listen(fd, 512) < 0) {
        perror("listen");
        exit(1);
    }
    struct conn *l = calloc(1, sizeof(*l));
    l->fd = fd;
    l->listener = 1;
    l->proto = proto;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = l };
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int main(int argc, char **argv)
{
    int ch;
    const char *file = NULL;

    signal(SIGPIPE, SIG_IGN);
    ep = epoll_create1(EPOLL_CLOEXEC);
    while ((ch = getopt(argc, argv, "f:t:s:p:M")) != -1) {
        switch (ch) {
        case 'f': file = optarg; break;
        case 't': add_listener(optarg, P_TCPT); break;
        case 's': add_listener(optarg, P_SMAP); break;
        case 'p': add_listener(optarg, P_POL); break;
        case 'M': smap_with_map = 1; break;
        default:
            fprintf(stderr, "usage: mini_server -f FILE [-t HOST:PORT]... [-s HOST:PORT|unix:PATH]... [-p HOST:PORT|unix:PATH]...\n");
            return 64;
        }
    }
    if (file == NULL) {
        fprintf(stderr, "mini_server: -f FILE is required\n");
        return 64;
    }
    load(file);
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->listener) {
                int fd;
                while ((fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    struct conn *nc = calloc(1, sizeof(*nc));
                    nc->fd = fd;
                    nc->proto = c->proto;
                    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = nc };
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                if (flush_out(c) < 0) {
                    conn_close(c);
                    continue;
                }
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(c);
        }
    }
}
