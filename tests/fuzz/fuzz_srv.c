/* fuzz_srv.c - the connection layer (postfix-policyd/srv.c) under every
 * framing it serves: tcp_table lines (a line protocol with its maximum),
 * socketmap netstrings (no line limit) and the auth endpoint (lines,
 * pipelined ids, LIST sent in parts as the client reads). The same stream
 * goes to a real listener on a unix socket twice: in one write, and cut
 * into up to 16 pieces, each handed to the event loop before the next is
 * written. The answers must be identical, octet for octet, and both
 * connections must end the same way. On tcp_table a line "wait" is answered
 * later, as a policy admission is: the request is suspended, whatever the
 * client sends meanwhile (the next pieces, its end of stream) waits behind
 * it, and the harness replies once the loop has nothing else to do.
 *
 * Input: byte 0 bits 0-1 the protocol (0 tcp_table, 1 socketmap, 2 auth,
 * 3 tcp_table), bits 2-4 the tcp_table map (modulo the number of maps);
 * bytes 1-2 seed the cut points; the stream after that. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth.h"
#include "buf.h"
#include "fixture.h"
#include "log.h"
#include "proto.h"
#include "srv.h"

static struct dir *D;
static struct event_base *B;
static char sock_dir[80];
static char sock_path[3][108];
static struct lk_stats lk_stats;
static struct auth_stats auth_stats;
static const struct auth_defaults auth_defaults = { "/var/vmail", 0, 0 };
static enum lk_map tcp_map;
static struct srv_conn *waiting;        /* the suspended "wait" request's */

static void no_complaint(void *arg, const char *what)
{
    (void)arg;
    (void)what;
}

static ssize_t h_tcpt(void *arg, struct srv_conn *c, const char *in, size_t len, struct buf *out)
{
    struct lk_env env = { D, "+", &lk_stats, no_complaint, NULL, NULL };
    (void)arg;
    if (len >= 5 && memcmp(in, "wait\n", 5) == 0) {
        FUZZ_CHECK(waiting == NULL);    /* nothing is read behind a suspended request */
        waiting = c;
        srv_conn_suspend(c);
        return 5;
    }
    return tcpt_request(&env, tcp_map, in, len, out);
}

static ssize_t h_smap(void *arg, struct srv_conn *c, const char *in, size_t len, struct buf *out)
{
    struct lk_env env = { D, "+", &lk_stats, no_complaint, NULL, NULL };
    (void)arg;
    (void)c;
    return smap_request(&env, in, len, out);
}

/* LIST in parts this small, so that a few rows already take several */
static int list_part(void *arg, struct buf *out) { return auth_list_next(arg, D, out, 256); }
static void list_done(void *arg) { auth_list_free(arg); }
static void list_stream(void *arg, struct auth_list *it) { srv_conn_stream(arg, list_part, it, list_done); }

static ssize_t h_auth(void *arg, struct srv_conn *c, const char *in, size_t len, struct buf *out)
{
    struct auth_env env = { D, &auth_defaults, &auth_stats, NULL, NULL, list_stream, c };
    (void)arg;
    return auth_request(&env, in, len, out);
}

/* at exit: the sockets and their directory go (a crash leaves them in
 * TMPDIR, which run.sh points into its scratch directory) */
static void remove_sockets(void)
{
    for (int i = 0; i < 3; i++)
        if (sock_path[i][0])
            unlink(sock_path[i]);
    rmdir(sock_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const srv_handler handlers[3] = { h_tcpt, h_smap, h_auth };
    static const size_t line_max[3] = { 4096, 0, AUTH_MAX_LINE };
    /* small enough that LIST and the big fixture answers hit it */
    struct srv_conf conf = { 100, 100, 60, 60, 8192 };
    const char *tmp = getenv("TMPDIR");
    struct buf err;

    (void)argc;
    (void)argv;
    log_init("fuzz_srv", 1);
    signal(SIGPIPE, SIG_IGN);   /* a split run may write after the server closed */
    D = fuzz_fixture_dir(1);
    B = event_base_new();
    if (tmp == NULL || *tmp == 0 || strlen(tmp) > 50)   /* socket paths are short */
        tmp = "/tmp";
    snprintf(sock_dir, sizeof(sock_dir), "%s/mr-fuzz-srv.XXXXXX", tmp);
    FUZZ_CHECK(B != NULL && mkdtemp(sock_dir) != NULL);
    atexit(remove_sockets);
    buf_init(&err);
    for (int i = 0; i < 3; i++) {
        char spec[128];
        snprintf(sock_path[i], sizeof(sock_path[i]), "%s/s%d", sock_dir, i);
        snprintf(spec, sizeof(spec), "unix:%s", sock_path[i]);
        struct srv *s = srv_listen(B, spec, 0600, "fuzz", handlers[i], NULL, &conf, &err);
        FUZZ_CHECK(s != NULL);
        srv_set_line_max(s, line_max[i]);
    }
    buf_free(&err);
    return 0;
}

struct run {
    struct buf out;
    int eof;            /* the server closed the connection */
};

static void drain(int fd, struct run *r)
{
    char tmp[65536];
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n > 0) {
            buf_add(&r->out, tmp, (size_t)n);
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            r->eof = 1;
        return;
    }
}

/* turn the loop until nothing more happens for a few rounds; a suspended
 * request is answered then, and the loop turned on */
static void settle(int fd, struct run *r)
{
    size_t before;
    int quiet = 0;
    for (int i = 0; i < 100000 && !r->eof; i++) {
        if (quiet >= 4) {
            if (waiting == NULL)
                break;
            struct srv_conn *c = waiting;
            waiting = NULL;
            srv_conn_reply(c, "200 waited\n", 11);
            quiet = 0;
        }
        before = r->out.len;
        event_base_loop(B, EVLOOP_NONBLOCK);
        drain(fd, r);
        quiet = r->out.len == before ? quiet + 1 : 0;
    }
}

/* cuts[0..ncuts) ascending, each in (0, len) */
static void run(int proto, const char *data, size_t len, const size_t *cuts, int ncuts, struct run *r)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    size_t sent = 0;

    buf_init(&r->out);
    r->eof = 0;
    FUZZ_CHECK(fd >= 0);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path[proto]);
    FUZZ_CHECK(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
    for (int k = 0; k <= ncuts && !r->eof; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        while (sent < end && !r->eof) {
            ssize_t n = write(fd, data + sent, end - sent);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                break;      /* the server closed on us: r->eof follows */
            settle(fd, r);
        }
        settle(fd, r);
    }
    /* the client is done: the server answers what is complete, then closes */
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 1000 && !r->eof; i++)
        settle(fd, r);
    FUZZ_CHECK(r->eof);
    FUZZ_CHECK(waiting == NULL);        /* a suspended request keeps its connection */
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cuts[16];
    int ncuts = 0;
    struct run whole, parts;

    if (size < 3)
        return 0;
    int proto = data[0] & 3;
    if (proto == 3)
        proto = 0;
    tcp_map = (enum lk_map)(((data[0] >> 2) & 7) % LK_NMAPS);
    uint32_t x = (uint32_t)data[1] << 8 | data[2];
    data += 3;
    size -= 3;
    /* up to 16 ascending cut points from a small generator */
    for (size_t pos = 0; ncuts < 16 && size > 1;) {
        x = x * 1103515245u + 12345u;
        size_t step = 1 + (x >> 16) % (size / 4 + 1);
        if (pos + step >= size)
            break;
        pos += step;
        cuts[ncuts++] = pos;
    }
    run(proto, (const char *)data, size, NULL, 0, &whole);
    run(proto, (const char *)data, size, cuts, ncuts, &parts);
    if (getenv("MR_FUZZ_ECHO"))
        fprintf(stderr, "-- proto %d, %d cuts, %zu octets answered:\n%.*s\n", proto, ncuts,
                whole.out.len, (int)(whole.out.len < 2000 ? whole.out.len : 2000),
                whole.out.data ? whole.out.data : "");
    FUZZ_CHECK(whole.out.len == parts.out.len);
    FUZZ_CHECK(whole.out.len == 0 || memcmp(whole.out.data, parts.out.data, whole.out.len) == 0);
    buf_free(&whole.out);
    buf_free(&parts.out);
    return 0;
}
