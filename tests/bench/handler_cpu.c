/* handler_cpu.c - CPU per request of the request handlers alone, without
 * sockets: tcp_table and socketmap mailbox lookups (tcpt_request,
 * smap_request) and Postfix's RCPT request of an authenticated submission
 * (pol_request), on one thread, in CPU time.
 *
 *   handler_cpu [-n REQUESTS] [-m MAILBOXES] [-k KEYS] [-P]
 *
 * MAILBOXES mailboxes u1..uN@example.com; KEYS distinct requests cycled
 * (a fifth of the lookups miss). With KEYS near MAILBOXES and both large
 * (100,000), every record is cold, as in lookup_load.sh; with a few
 * thousand keys they stay in the cache. Built against a build tree's
 * libmrcore.a by handler_cpu.sh, which runs two trees' code alternately.
 * Prints one line: tcpt_ns=... smap_ns=... policy_ns=...
 *
 * -P: each policy request first goes through a pipe (written, then read
 * back into a buffer, as a server reads it from its socket), so that the
 * kernel runs between two requests as it does in the daemon; policy_ns is
 * then the whole round less the same pipe round alone (pipe_ns, measured
 * in turns with it): the handler's CPU with the caches and branch history
 * the kernel leaves behind. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "dir.h"
#include "policy.h"
#include "proto.h"

/* what Postfix 3.7's smtpd sends at RCPT for a submission (lookup_load.c's) */
static const char pol_fmt[] =
    "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
    "client_address=198.51.100.23\nclient_name=dsl-23.isp.example\nclient_port=%u\n"
    "reverse_client_name=dsl-23.isp.example\nserver_address=192.0.2.25\nserver_port=587\n"
    "helo_name=[192.168.1.20]\nsender=%s\nrecipient=friend@remote.example\nrecipient_count=0\n"
    "queue_id=\ninstance=%x.%x.%x.0\nsize=18734\netrn_domain=\nstress=\nsasl_method=PLAIN\n"
    "sasl_username=%s\nsasl_sender=\nccert_subject=\nccert_issuer=\nccert_fingerprint=\n"
    "ccert_pubkey_fingerprint=\nencryption_protocol=TLSv1.3\n"
    "encryption_cipher=TLS_AES_256_GCM_SHA384\nencryption_keysize=256\npolicy_context=\n\n";

static void quiet(void *arg, int warn, const char *text)
{
    (void)arg;
    (void)warn;
    (void)text;
}

static double cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    long n = 1000000;
    int nacc = 100000, nkeys = 100000, opt, via_pipe = 0;
    char addr[64], md[80];

    while ((opt = getopt(argc, argv, "n:m:k:P")) != -1) {
        switch (opt) {
        case 'n': n = atol(optarg); break;
        case 'm': nacc = atoi(optarg); break;
        case 'k': nkeys = atoi(optarg); break;
        case 'P': via_pipe = 1; break;
        default:
            fprintf(stderr, "usage: handler_cpu [-n REQUESTS] [-m MAILBOXES] [-k KEYS] [-P]\n");
            return 2;
        }
    }
    if (n < 1 || nacc < 1 || nkeys < 1)
        return 2;
    struct dir *d = dir_new();
    struct dir_domain dt = { .id = 1, .enabled = 1, .name = "example.com" };
    dir_put(d, DIR_DOMAIN, dir_domain_new(&dt));
    for (int i = 1; i <= nacc; i++) {
        snprintf(addr, sizeof(addr), "u%d@example.com", i);
        snprintf(md, sizeof(md), "example.com/u%d/", i);
        struct dir_mailbox t = { .id = (uint64_t)i + 100, .domain_id = 1, .quota_bytes = -1,
                                 .quota_messages = -1, .limit_messages = -1, .limit_recipients = -1,
                                 .uid = -1, .gid = -1, .services = 0xff, .enabled = 1, .may_send = 1,
                                 .may_receive = 1, .address = addr, .maildir = md };
        dir_put(d, DIR_MAILBOX, dir_mailbox_new(&t));
    }

    /* the request streams: tcp_table lines, netstrings, policy requests */
    struct buf tin, sin, pin, out;
    size_t *poff = calloc((size_t)nkeys + 1, sizeof(size_t));
    buf_init(&tin);
    buf_init(&sin);
    buf_init(&pin);
    buf_init(&out);
    srand(42);
    for (int i = 0; i < nkeys; i++) {
        char k[80];
        int u = 1 + rand() % (nacc + nacc / 4);
        int kl = snprintf(k, sizeof(k), "mailboxes u%d@example.com", u);
        buf_printf(&tin, "get %s\n", k + 10);
        ns_format(&sin, k, (size_t)kl);
        snprintf(addr, sizeof(addr), "u%d@example.com", 1 + rand() % nacc);
        poff[i] = pin.len;
        buf_printf(&pin, pol_fmt, 40000 + i % 20000, addr, i, i, i, addr);
    }
    poff[nkeys] = pin.len;

    struct lk_stats st;
    memset(&st, 0, sizeof(st));
#ifdef LK_NSCRATCH
    /* the event loop's reused buffers (a tree from before them: none) */
    struct buf scratch[LK_NSCRATCH];
    for (int i = 0; i < LK_NSCRATCH; i++)
        buf_init(&scratch[i]);
#define SCRATCH , scratch
#else
#define SCRATCH
#endif
    struct lk_env env = { d, "+", &st, NULL, NULL SCRATCH };
    double ns[3];
    for (int proto = 0; proto < 2; proto++) {
        struct buf *in = proto ? &sin : &tin;
        size_t off = 0;
        double t0 = cpu_ns();
        for (long i = 0; i < n; i++) {
            if (off >= in->len)
                off = 0;
            if ((i & 31) == 0)
                buf_reset(&out);    /* 32 answers per write, as pipelined */
            ssize_t u = proto ? smap_request(&env, in->data + off, in->len - off, &out)
                              : tcpt_request(&env, LK_MAILBOXES, in->data + off, in->len - off, &out);
            if (u <= 0) {
                fprintf(stderr, "handler_cpu: request refused (%zd)\n", u);
                return 1;
            }
            off += (size_t)u;
        }
        ns[proto] = (cpu_ns() - t0) / (double)n;
    }

    struct pol_stats ps;
    struct pol_req req;
    memset(&ps, 0, sizeof(ps));
    pol_req_init(&req);
    long dunno = 0;
    int pfd[2] = { -1, -1 };
    static char rbuf[65536];
    double pipe_ns = 0;
    if (via_pipe && pipe(pfd) != 0) {
        perror("handler_cpu: pipe");
        return 1;
    }
    /* slices of the pipe alone and of pipe + handler, in turns */
    long slice = via_pipe ? 20000 : n, done = 0, piped = 0;
    double t_both = 0;
    while (done < n) {
        long m = n - done < slice ? n - done : slice;
        for (int with = via_pipe ? 0 : 1; with < 2; with++) {
            double t0 = cpu_ns();
            for (long j = 0; j < m; j++) {
                long i = done + j;
                struct pol_env pe = { d, "+", &ps, &req, quiet, NULL, NULL, NULL, 0, NULL, 0 SCRATCH };
                size_t k = (size_t)(i % nkeys), len = poff[k + 1] - poff[k];
                const char *rq = pin.data + poff[k];
                if (via_pipe) {
                    if (write(pfd[1], rq, len) != (ssize_t)len || read(pfd[0], rbuf, sizeof(rbuf)) != (ssize_t)len) {
                        perror("handler_cpu: pipe round");
                        return 1;
                    }
                    rq = rbuf;
                }
                if (!with)
                    continue;
                buf_reset(&out);
                if (pol_request(&pe, rq, len, &out) != (ssize_t)len) {
                    fprintf(stderr, "handler_cpu: policy request not consumed\n");
                    return 1;
                }
                dunno += out.len == 14;    /* "action=DUNNO\n\n" */
            }
            if (with)
                t_both += cpu_ns() - t0;
            else {
                pipe_ns += cpu_ns() - t0;
                piped += m;
            }
        }
        done += m;
    }
    ns[2] = t_both / (double)n;
    if (via_pipe) {
        pipe_ns /= (double)piped;
        ns[2] -= pipe_ns;
        close(pfd[0]);
        close(pfd[1]);
    }
    if (dunno != n) {
        fprintf(stderr, "handler_cpu: %ld of %ld policy answers were not DUNNO\n", n - dunno, n);
        return 1;
    }
    printf("tcpt_ns=%.0f smap_ns=%.0f policy_ns=%.0f found=%lu", ns[0], ns[1], ns[2],
           st.found[LK_MAILBOXES]);
    if (via_pipe)
        printf(" pipe_ns=%.0f", pipe_ns);
    printf("\n");
    pol_req_free(&req);
#ifdef LK_NSCRATCH
    for (int i = 0; i < LK_NSCRATCH; i++)
        buf_free(&scratch[i]);
#endif
    buf_free(&tin);
    buf_free(&sin);
    buf_free(&pin);
    buf_free(&out);
    free(poff);
    dir_free(d);
    return 0;
}
