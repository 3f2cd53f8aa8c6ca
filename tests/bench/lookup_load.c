/* lookup_load.c - load client for mailrosterd's endpoints: the Postfix
 * lookup protocols tcp_table(5) ("get KEY\n" -> one reply line) and
 * socketmap(5) (netstrings), the auth endpoint (mailroster-auth(7): "ID\tPASS\t
 * KEY\timap\n" or "ID\tUSER\tKEY\tlmtp\n" -> one reply line with the same
 * ID) and the policy service (Postfix's policy delegation: a full Postfix
 * 3.7 RCPT request of name=value lines and an empty line -> "action=...\n\n"),
 * over N connections with P requests in flight each (pipelined), for D
 * seconds, cycling through a key file; single-threaded, epoll, nonblocking.
 *
 *   lookup_load -t tcp|smap|auth|policy -a 127.0.0.1:PORT|unix:PATH [-m MODE] -k KEYS
 *               [-c CONNS] [-p IN_FLIGHT] [-d SECONDS] [-r RATE] [-w WARMUP_S] [-s] [-n COUNT]
 *               [-b ADDR2]
 *
 * -m: smap: the map name (default mailboxes); auth: pass (default: PASS
 * KEY imap) or user (USER KEY lmtp); policy: out (default: an authenticated
 * submission, sasl_username=LOGIN sender=SENDER recipient=a remote address;
 * a key line is "LOGIN SENDER" or just "LOGIN", then the sender is the
 * login), in (no SASL login, recipient=KEY, sender a remote address) or
 * msg (a whole submitted message as smtpd asks about it: the out request
 * at RCPT, then END-OF-MESSAGE with recipient_count=1, where rate limits
 * admit; two requests per key line, so messages = requests / 2).
 * Auth ids count up from 1 on each connection; every reply's id must be
 * that of the oldest request outstanding on its connection (otherwise it
 * counts as an error and id_mismatch).
 *
 * What counts as what: tcp 200 / smap OK / auth OK / policy DUNNO = hit;
 * tcp 500 / smap NOTFOUND / auth NOTFOUND / policy any other action =
 * miss; auth DISABLED and DENIED (definite answers, not failures) = other;
 * everything else (tcp 400, smap TEMP, auth FAIL or ERROR, policy
 * DEFER_IF_PERMIT, a wrong auth id) = error. answers= breaks the measured
 * replies down by their first word (policy: the reply code and, for the
 * texts mailrosterd sends, a tag: 554/unknown_login, 554/disabled,
 * 554/may_not_send, 553/not_owned, 550/unavailable).
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
 * -n COUNT: instead of a duration, send exactly COUNT requests (closed
 * loop, no warm-up, every reply measured) starting with the first key, and
 * stop when all are answered: with COUNT = the number of keys, one pass
 * over the key file, for checking answers= against what is expected.
 * Gives up when no reply came for 10 s (stalled=1).
 *
 * -b ADDR2: a second server, loaded side by side with the first in the
 * same loop: as many connections again, each server its own pass through
 * the keys from the first and its own figures (paced: RATE each, the
 * second's requests due half an interval after the first's). Both then
 * share every moment of the run: a stall of the machine, a busy neighbour
 * or a slow phase of the CPU falls on both, and the ratio of their figures
 * compares the servers, not the moments each ran alone. Two output lines,
 * the first server's, then the second's. Not with -n.
 *
 * The first WARMUP seconds (default 1) are not measured. -s busy-polls
 * (epoll with a zero timeout) instead of sleeping: the client then owns its
 * core, and its own wake-up latency (large in a VM, where an idle vCPU
 * halts) stays out of the figures.
 *
 * Output: one line of key=value pairs (lookups/s, hit/miss/other/error
 * counts, p50/p90/p99/p99.9/max latency in microseconds, the client's own
 * CPU in the measured window, replies_total: every reply including warm-up
 * and drain, for dividing a server's CPU time by, and answers=). */
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
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum proto { P_TCPT, P_SMAP, P_AUTH, P_POLICY };
static const char *proto_names[] = { "tcp", "smap", "auth", "policy" };

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
    uint32_t *ids;         /* auth: ring of request ids, like sent */
    uint32_t next_id;      /* auth: the next request's id */
    int head, count;
    int want_out;
    struct target *tg;     /* the server it is connected to */
};

static enum proto proto = P_TCPT;
static struct req *reqs;
static size_t nreqs;
static struct conn *conns;
static int nconns = 1, inflight = 1, ep;
static long outstanding;  /* requests written or queued, not answered */
static double rate;
static int spin;          /* -s: busy-poll, never sleep */
static int auth_user;     /* -t auth -m user: USER KEY lmtp (else PASS KEY imap) */
static int pol_in;        /* -t policy -m in: inbound (else outbound, SASL) */
static int pol_msg;       /* -t policy -m msg: RCPT then END-OF-MESSAGE per key */
static uint64_t limit, sent_total; /* -n COUNT */

/* latency histogram: 1 us buckets up to 1 s */
#define HMAX 1000000
/* measured replies by their first word (see the top) */
#define NWORDS 32

/* One server under load (-a, and -b beside it): its own pass through the
 * keys and its own figures. */
struct target {
    const char *addr;
    size_t next_req;
    uint32_t *hist;
    uint64_t hover, lat_max, lat_count;
    uint64_t hits, misses, others, errors, measured, replies_total, id_mismatch;
    uint64_t t_last_reply;
    struct {
        char w[40];
        uint64_t n;
    } words[NWORDS];
    int nwords;
    /* paced: the next request's due time, those due and not yet out */
    uint64_t due, backlog, backlog_max;
    int rr;               /* paced: its next connection to try */
};
static struct target targets[2];
static int ntargets = 1;

static void tally(struct target *tg, const char *w, size_t n)
{
    if (n >= sizeof(tg->words[0].w))
        n = sizeof(tg->words[0].w) - 1;
    for (int i = 0; i < tg->nwords; i++)
        if (strlen(tg->words[i].w) == n && memcmp(tg->words[i].w, w, n) == 0) {
            tg->words[i].n++;
            return;
        }
    if (tg->nwords == NWORDS) {
        tally(tg, "(more)", 6);
        return;
    }
    memcpy(tg->words[tg->nwords].w, w, n);
    tg->words[tg->nwords].w[n] = 0;
    for (size_t i = 0; i < n; i++) /* one token in the output line */
        if ((unsigned char)tg->words[tg->nwords].w[i] <= ' ' || tg->words[tg->nwords].w[i] == ',' ||
            tg->words[tg->nwords].w[i] == ':')
            tg->words[tg->nwords].w[i] = '_';
    tg->words[tg->nwords++].n = 1;
}

static int word_cmp(const void *a, const void *b) { return strcmp(a, b); }
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

/* What Postfix 3.7's smtpd sends at RCPT (every attribute, in its order;
 * SMTPD_POLICY_README), for an authenticated submission and for mail from
 * outside. */
static const char pol_out_fmt[] =
    "request=smtpd_access_policy\n"
    "protocol_state=RCPT\n"
    "protocol_name=ESMTP\n"
    "client_address=198.51.100.23\n"
    "client_name=dsl-23.isp.example\n"
    "client_port=%u\n"
    "reverse_client_name=dsl-23.isp.example\n"
    "server_address=192.0.2.25\n"
    "server_port=587\n"
    "helo_name=[192.168.1.20]\n"
    "sender=%s\n"
    "recipient=friend@remote.example\n"
    "recipient_count=0\n"
    "queue_id=\n"
    "instance=%x.%x.%x.0\n"
    "size=18734\n"
    "etrn_domain=\n"
    "stress=\n"
    "sasl_method=PLAIN\n"
    "sasl_username=%s\n"
    "sasl_sender=\n"
    "ccert_subject=\n"
    "ccert_issuer=\n"
    "ccert_fingerprint=\n"
    "ccert_pubkey_fingerprint=\n"
    "encryption_protocol=TLSv1.3\n"
    "encryption_cipher=TLS_AES_256_GCM_SHA384\n"
    "encryption_keysize=256\n"
    "policy_context=\n"
    "\n";
static const char pol_in_fmt[] =
    "request=smtpd_access_policy\n"
    "protocol_state=RCPT\n"
    "protocol_name=ESMTP\n"
    "client_address=203.0.113.45\n"
    "client_name=mx2.remote.example\n"
    "client_port=%u\n"
    "reverse_client_name=mx2.remote.example\n"
    "server_address=192.0.2.25\n"
    "server_port=25\n"
    "helo_name=mx2.remote.example\n"
    "sender=newsletter@remote.example\n"
    "recipient=%s\n"
    "recipient_count=0\n"
    "queue_id=\n"
    "instance=%x.%x.%x.0\n"
    "size=52311\n"
    "etrn_domain=\n"
    "stress=\n"
    "sasl_method=\n"
    "sasl_username=\n"
    "sasl_sender=\n"
    "ccert_subject=\n"
    "ccert_issuer=\n"
    "ccert_fingerprint=\n"
    "ccert_pubkey_fingerprint=\n"
    "encryption_protocol=TLSv1.3\n"
    "encryption_cipher=TLS_AES_256_GCM_SHA384\n"
    "encryption_keysize=256\n"
    "policy_context=\n"
    "\n";

/* The same submission at END-OF-MESSAGE, made from the RCPT request: the
 * state, an empty recipient, the count and a queue id. */
static size_t to_eom(const char *rcpt, size_t n, char *out, size_t size)
{
    static const struct { const char *from, *to; } subst[] = {
        { "protocol_state=RCPT\n", "protocol_state=END-OF-MESSAGE\n" },
        { "recipient=friend@remote.example\n", "recipient=\n" },
        { "recipient_count=0\n", "recipient_count=1\n" },
        { "queue_id=\n", "queue_id=4Xk2Lq0d8Hz1Bc\n" },
    };
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k;
        for (k = 0; k < sizeof(subst) / sizeof(subst[0]); k++) {
            size_t fl = strlen(subst[k].from), tl = strlen(subst[k].to);
            if (n - i >= fl && memcmp(rcpt + i, subst[k].from, fl) == 0 && o + tl < size) {
                memcpy(out + o, subst[k].to, tl);
                o += tl;
                i += fl;
                break;
            }
        }
        if (k == sizeof(subst) / sizeof(subst[0]) && o + 1 < size)
            out[o++] = rcpt[i++];
        else if (k == sizeof(subst) / sizeof(subst[0]))
            break;
    }
    return o;
}

static void add_req(const char *data, size_t n)
{
    static size_t rcap;
    if (nreqs == rcap) {
        rcap = rcap ? rcap * 2 : 65536;
        reqs = realloc(reqs, rcap * sizeof(*reqs));
    }
    reqs[nreqs].data = malloc(n);
    memcpy(reqs[nreqs].data, data, n);
    reqs[nreqs].len = n;
    nreqs++;
}

static void load_keys(const char *path, const char *map)
{
    FILE *fp = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;

    if (fp == NULL)
        die(path);
    while ((len = getline(&line, &cap, fp)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = 0;
        if (len == 0)
            continue;
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
        } else if (proto == P_SMAP) {
            n = (size_t)snprintf(buf, sizeof(buf), "%zu:%s %s,", strlen(map) + 1 + (size_t)len, map, line);
        } else if (proto == P_AUTH) {
            /* the key, escaped as Dovecot's str_tabescape does; the rest of
             * the line (id, command, service) is added when it is sent */
            for (ssize_t i = 0; i < len && n < sizeof(buf) - 2; i++) {
                char ch = line[i];
                if (ch == 0x01 || ch == '\t' || ch == '\n' || ch == '\r') {
                    buf[n++] = 0x01;
                    buf[n++] = ch == 0x01 ? '1' : ch == '\t' ? 't' : ch == '\n' ? 'n' : 'r';
                } else {
                    buf[n++] = ch;
                }
            }
        } else {
            unsigned i = (unsigned)nreqs;
            if (len > 1000) {
                fprintf(stderr, "lookup_load: key too long for a policy request: %s\n", line);
                exit(1);
            }
            if (pol_in) {
                n = (size_t)snprintf(buf, sizeof(buf), pol_in_fmt, 30000 + i % 30000, line, 0x1b2c + i % 7,
                                     0x674f1a2e + i / 3, i * 37 % 0xfffff);
            } else {
                char *sp = strchr(line, ' ');
                const char *login = line, *sender = line;
                if (sp) {
                    *sp = 0;
                    sender = sp + 1;
                }
                n = (size_t)snprintf(buf, sizeof(buf), pol_out_fmt, 30000 + i % 30000, sender, 0x1b2c + i % 7,
                                     0x674f1a2e + i / 3, i * 37 % 0xfffff, login);
                if (pol_msg) {
                    char eom[8192];
                    add_req(buf, n);
                    n = to_eom(buf, n, eom, sizeof(eom));
                    memcpy(buf, eom, n);
                }
            }
        }
        add_req(buf, n);
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

/* the next request onto c's output; 0 when -n COUNT are out already */
static int queue_req(struct conn *c, uint64_t t)
{
    if (limit && sent_total >= limit)
        return 0;
    struct target *tg = c->tg;
    const struct req *r = &reqs[tg->next_req];
    tg->next_req = tg->next_req + 1 == nreqs ? 0 : tg->next_req + 1;
    size_t need = r->len + 32; /* auth: id, command and service around the key */
    if (c->outlen + need > c->outcap) {
        c->outcap = (c->outlen + need) * 2;
        c->out = realloc(c->out, c->outcap);
    }
    int slot = (c->head + c->count) % inflight;
    if (proto == P_AUTH) {
        uint32_t id = c->next_id;
        c->next_id = c->next_id == 0xffffffffU ? 1 : c->next_id + 1;
        c->ids[slot] = id;
        c->outlen += (size_t)sprintf(c->out + c->outlen, "%u\t%s\t", id, auth_user ? "USER" : "PASS");
        memcpy(c->out + c->outlen, r->data, r->len);
        c->outlen += r->len;
        memcpy(c->out + c->outlen, auth_user ? "\tlmtp\n" : "\timap\n", 6);
        c->outlen += 6;
    } else {
        memcpy(c->out + c->outlen, r->data, r->len);
        c->outlen += r->len;
    }
    c->sent[slot] = t;
    c->count++;
    outstanding++;
    sent_total++;
    return 1;
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

/* kind: 1 hit, 0 miss, 2 other (auth DISABLED/DENIED), -1 error */
static void record(struct target *tg, uint64_t sent, uint64_t now, int kind, const char *word, size_t wlen)
{
    tg->replies_total++;
    tg->t_last_reply = now;
    if (now < t_measure || sent < t_measure || now > t_end)
        return;
    tally(tg, word, wlen);
    uint64_t us = (now - sent) / 1000;
    tg->measured++;
    if (us < HMAX)
        tg->hist[us]++;
    else
        tg->hover++;
    if (us > tg->lat_max)
        tg->lat_max = us;
    tg->lat_count++;
    if (kind == 1)
        tg->hits++;
    else if (kind == 0)
        tg->misses++;
    else if (kind == 2)
        tg->others++;
    else
        tg->errors++;
}

/* the first token of [p, p+n): up to a space, TAB or LF */
static size_t token(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
        i++;
    return i;
}

static const char *find(const char *hay, size_t n, const char *needle)
{
    return memmem(hay, n, needle, strlen(needle));
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
        const char *w = p;
        size_t wl = 0;
        char wbuf[40];
        if (proto == P_TCPT) {
            const char *nl = memchr(p, '\n', left);
            if (nl == NULL)
                break;
            used = (size_t)(nl - p) + 1;
            kind = left >= 3 && memcmp(p, "200", 3) == 0 ? 1 : left >= 3 && memcmp(p, "500", 3) == 0 ? 0 : -1;
            wl = token(p, used);
        } else if (proto == P_SMAP) {
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
            w = d;
            wl = token(d, len);
        } else if (proto == P_AUTH) {
            /* ID TAB WORD [TAB key=value ...] LF */
            const char *nl = memchr(p, '\n', left);
            if (nl == NULL)
                break;
            used = (size_t)(nl - p) + 1;
            size_t i = 0;
            unsigned long long id = 0;
            while (i < used && p[i] >= '0' && p[i] <= '9' && id <= 0xffffffffULL)
                id = id * 10 + (unsigned long long)(p[i++] - '0');
            w = p + i + 1;
            wl = i > 0 && p[i] == '\t' ? token(w, used - i - 1) : 0;
            if (wl == 2 && !memcmp(w, "OK", 2))
                kind = 1;
            else if (wl == 8 && !memcmp(w, "NOTFOUND", 8))
                kind = 0;
            else if ((wl == 8 && !memcmp(w, "DISABLED", 8)) || (wl == 6 && !memcmp(w, "DENIED", 6)))
                kind = 2;
            else
                kind = -1;
            if (wl == 0) {
                w = "(malformed)";
                wl = strlen(w);
            }
            if (c->count > 0 && (i == 0 || id != c->ids[c->head])) {
                if (c->tg->id_mismatch++ < 3)
                    fprintf(stderr, "lookup_load: reply id %.*s, the oldest request outstanding is %u: %.*s\n",
                            (int)i, p, c->ids[c->head], (int)(used > 200 ? 200 : used - 1), p);
                kind = -1;
            }
        } else {
            /* action=TEXT LF [more name=value lines] LF */
            const char *end = NULL;
            for (const char *q = p; (q = memchr(q, '\n', left - (size_t)(q - p))) != NULL; q++)
                if ((size_t)(q - p) + 1 < left && q[1] == '\n') {
                    end = q + 2;
                    break;
                }
            if (end == NULL) {
                if (left > 4096) {
                    fprintf(stderr, "lookup_load: policy reply without an end: %.200s\n", p);
                    exit(1);
                }
                break;
            }
            used = (size_t)(end - p);
            const char *nl = memchr(p, '\n', used);
            if (used < 8 || memcmp(p, "action=", 7) != 0) {
                kind = -1;
                w = "(malformed)";
                wl = strlen(w);
            } else {
                const char *a = p + 7;
                size_t al = (size_t)(nl - a);
                w = a;
                wl = token(a, al);
                if (wl == 5 && !strncasecmp(a, "DUNNO", 5)) {
                    kind = 1;
                } else if (wl >= 5 && !strncasecmp(a, "DEFER", 5)) {
                    kind = -1; /* DEFER_IF_PERMIT: not loaded (a temporary failure) */
                } else {
                    const char *tag = find(a, al, "has no mailbox here") ? "unknown_login"
                                      : find(a, al, "is disabled")       ? "disabled"
                                      : find(a, al, "may not send")      ? "may_not_send"
                                      : find(a, al, "is not owned")      ? "not_owned"
                                      : find(a, al, "unavailable")       ? "unavailable"
                                                                         : "other";
                    snprintf(wbuf, sizeof(wbuf), "%.*s/%s", (int)(wl > 8 ? 8 : wl), a, tag);
                    w = wbuf;
                    wl = strlen(wbuf);
                    kind = 0;
                }
            }
        }
        if (c->count == 0) {
            fprintf(stderr, "lookup_load: reply without a request: %.*s\n", (int)(used > 200 ? 200 : used), p);
            exit(1);
        }
        record(c->tg, c->sent[c->head], now, kind, w, wl);
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

static uint64_t pct(const struct target *tg, double p)
{
    uint64_t want = (uint64_t)((double)tg->lat_count * p + 0.5), seen = 0;
    if (want == 0)
        want = 1;
    for (uint64_t i = 0; i < HMAX; i++) {
        seen += tg->hist[i];
        if (seen >= want)
            return i;
    }
    return tg->lat_max;
}

/* the output line of one target (see the top); client_cpu_s, stalled and
 * outstanding are the whole client's, the same on both lines with -b */
static void print_target(struct target *tg, double secs, double cpu, int stalled)
{
    printf("proto=%s conns=%d inflight=%d rate_offered=%.0f secs=%.2f lookups=%llu lookups_per_s=%.0f "
           "hits=%llu misses=%llu errors=%llu p50_us=%llu p90_us=%llu p99_us=%llu p999_us=%llu max_us=%llu "
           "client_cpu_s=%.2f backlog_max=%llu replies_total=%llu others=%llu id_mismatch=%llu stalled=%d "
           "outstanding=%ld answers=",
           proto_names[proto], nconns, inflight, rate, secs, (unsigned long long)tg->measured,
           secs > 0 ? (double)tg->measured / secs : 0, (unsigned long long)tg->hits, (unsigned long long)tg->misses,
           (unsigned long long)tg->errors, (unsigned long long)pct(tg, 0.5), (unsigned long long)pct(tg, 0.9),
           (unsigned long long)pct(tg, 0.99), (unsigned long long)pct(tg, 0.999), (unsigned long long)tg->lat_max,
           cpu, (unsigned long long)tg->backlog_max, (unsigned long long)tg->replies_total,
           (unsigned long long)tg->others, (unsigned long long)tg->id_mismatch, stalled, outstanding);
    qsort(tg->words, (size_t)tg->nwords, sizeof(tg->words[0]), word_cmp);
    for (int i = 0; i < tg->nwords; i++)
        printf("%s%s:%llu", i ? "," : "", tg->words[i].w, (unsigned long long)tg->words[i].n);
    printf("%s\n", tg->nwords ? "" : "-");
}

static void usage(void)
{
    fprintf(stderr, "usage: lookup_load -t tcp|smap|auth|policy -a ADDR [-m MAP|pass|user|out|in] -k KEYS\n"
                    "                   [-c CONNS] [-p IN_FLIGHT] [-d SECONDS] [-r RATE] [-w WARMUP_SECONDS] [-s]\n"
                    "                   [-n COUNT] [-b ADDR2]\n");
    exit(64);
}

int main(int argc, char **argv)
{
    const char *addr = NULL, *addr2 = NULL, *keys = NULL, *map = NULL;
    double secs = 10, warmup = 1;
    int ch;

    while ((ch = getopt(argc, argv, "t:a:b:m:k:c:p:d:r:w:sn:")) != -1) {
        switch (ch) {
        case 't':
            if (strcmp(optarg, "tcp") == 0)
                proto = P_TCPT;
            else if (strcmp(optarg, "smap") == 0)
                proto = P_SMAP;
            else if (strcmp(optarg, "auth") == 0)
                proto = P_AUTH;
            else if (strcmp(optarg, "policy") == 0)
                proto = P_POLICY;
            else
                usage();
            break;
        case 'a': addr = optarg; break;
        case 'b': addr2 = optarg; break;
        case 'm': map = optarg; break;
        case 'k': keys = optarg; break;
        case 'c': nconns = atoi(optarg); break;
        case 'p': inflight = atoi(optarg); break;
        case 'd': secs = atof(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 's': spin = 1; break;
        case 'n': limit = strtoull(optarg, NULL, 10); break;
        default: usage();
        }
    }
    if (addr == NULL || keys == NULL || nconns < 1 || inflight < 1 || secs <= 0 || (limit && rate > 0) ||
        (limit && addr2))
        usage();
    if (proto == P_AUTH) {
        if (map == NULL || strcmp(map, "pass") == 0)
            auth_user = 0;
        else if (strcmp(map, "user") == 0)
            auth_user = 1;
        else
            usage();
    } else if (proto == P_POLICY) {
        if (map == NULL || strcmp(map, "out") == 0)
            pol_in = 0;
        else if (strcmp(map, "in") == 0)
            pol_in = 1;
        else if (strcmp(map, "msg") == 0)
            pol_msg = 1;
        else
            usage();
    } else if (map == NULL) {
        map = "mailboxes";
    }
    load_keys(keys, map);
    targets[0].addr = addr;
    if (addr2) {
        targets[1].addr = addr2;
        ntargets = 2;
    }
    for (int t = 0; t < ntargets; t++)
        targets[t].hist = calloc(HMAX, sizeof(uint32_t));
    ep = epoll_create1(EPOLL_CLOEXEC);
    /* connection i serves target i % ntargets: the targets' connections
     * interleave, in the order of connecting and of the first requests */
    int nall = nconns * ntargets;
    conns = calloc((size_t)nall, sizeof(*conns));
    for (int i = 0; i < nall; i++) {
        struct conn *c = &conns[i];
        c->tg = &targets[i % ntargets];
        c->fd = connect_to(c->tg->addr);
        c->sent = calloc((size_t)inflight, sizeof(uint64_t));
        c->ids = calloc((size_t)inflight, sizeof(uint32_t));
        c->next_id = 1;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    uint64_t start = now_ns(), interval = 0;
    t_measure = start + (uint64_t)(warmup * 1e9);
    t_end = t_measure + (uint64_t)(secs * 1e9);
    int stalled = 0;
    if (limit) {
        t_measure = start;
        t_end = UINT64_MAX / 2;
    }
    if (rate > 0) {
        interval = (uint64_t)(1e9 / rate);
        for (int t = 0; t < ntargets; t++)
            targets[t].due = start + interval * (uint64_t)t / (uint64_t)ntargets;
    } else {
        for (int i = 0; i < nall; i++) {
            for (int j = 0; j < inflight; j++)
                queue_req(&conns[i], start);
            flush_conn(&conns[i]);
        }
    }
    struct rusage ru0, ru1;
    int measuring = 0;
    for (;;) {
        uint64_t now = now_ns();
        if (!measuring && now >= t_measure) {
            getrusage(RUSAGE_SELF, &ru0);
            measuring = 1;
        }
        if (now >= t_end + 2000000000ULL)
            break; /* stragglers: give up after 2 s */
        if (limit && sent_total >= limit && outstanding == 0)
            break;
        if (limit && now > (targets[0].t_last_reply > start ? targets[0].t_last_reply : start) + 10000000000ULL) {
            stalled = 1;
            break;
        }
        if (now >= t_end && outstanding == 0)
            break;
        struct timespec wait = { 0, 100000000 }; /* 100 ms */
        if (rate > 0 && now < t_end) {
            uint64_t next_due = UINT64_MAX;
            for (int t = 0; t < ntargets; t++) {
                struct target *tg = &targets[t];
                /* everything due by now: as the backlog, then out where there is room */
                while (tg->due <= now) {
                    tg->backlog++;
                    tg->due += interval;
                }
                if (tg->backlog > tg->backlog_max)
                    tg->backlog_max = tg->backlog;
                int tried = 0;
                uint64_t first_due = tg->due - tg->backlog * interval;
                while (tg->backlog > 0 && tried < nconns) {
                    struct conn *c = &conns[tg->rr * ntargets + t];
                    tg->rr = (tg->rr + 1) % nconns;
                    if (c->count >= inflight) {
                        tried++;
                        continue;
                    }
                    tried = 0;
                    queue_req(c, first_due);
                    first_due += interval;
                    tg->backlog--;
                }
                if (tg->due < next_due)
                    next_due = tg->due;
            }
            for (int i = 0; i < nall; i++)
                if (conns[i].outlen > conns[i].outoff)
                    flush_conn(&conns[i]);
            /* sleep until the next one is due (or a reply comes) */
            uint64_t t = now_ns(), until = next_due > t ? next_due - t : 0;
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
    if (limit)
        secs = targets[0].t_last_reply > start ? (double)(targets[0].t_last_reply - start) / 1e9 : 0;
    for (int t = 0; t < ntargets; t++)
        print_target(&targets[t], secs, cpu, stalled);
    return 0;
}
