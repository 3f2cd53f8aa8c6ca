/* test_srv.c - the connection layer (postfix-policyd/srv.c): framing of a
 * line protocol however the input is cut, pipelined requests answered in
 * order, a line over its maximum, a deferred answer with requests queued
 * behind it, backpressure at the high-water mark and the per-peer cap.
 * A real listener on a unix socket; the test is its client and turns the
 * event loop by hand between writes. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "srv.h"
#include "tests.h"

#define LINE_MAX_TEST 64

static struct event_base *B;
static struct srv *S;
static char path[108];
static int calls;
static struct srv_conn *waiting;        /* the suspended request's connection */
static size_t answer_pad;               /* octets added to every answer */

/* "ok LINE\n" per line; "wait" is answered later by the test; a line over
 * the maximum gets "err\n" and ends the connection. */
static ssize_t handler(void *arg, struct srv_conn *c, const char *in, size_t len, struct buf *out)
{
    const char *nl = memchr(in, '\n', len);
    (void)arg;
    if (nl == NULL) {
        if (len >= LINE_MAX_TEST) {
            buf_adds(out, "err\n");
            return -1;
        }
        return 0;
    }
    calls++;
    size_t n = (size_t)(nl - in);
    if (n == 4 && !memcmp(in, "wait", 4)) {
        waiting = c;
        srv_conn_suspend(c);
        return (ssize_t)n + 1;
    }
    buf_adds(out, "ok ");
    buf_add(out, in, n);
    for (size_t i = 0; i < answer_pad; i++)
        buf_addc(out, '.');
    buf_addc(out, '\n');
    return (ssize_t)n + 1;
}

static void start(int max_per_peer, size_t high_water)
{
    struct srv_conf conf = { 100, max_per_peer, 30, 30, high_water };
    struct buf err;
    buf_init(&err);
    signal(SIGPIPE, SIG_IGN);
    B = event_base_new();
    ck_assert_ptr_nonnull(B);
    snprintf(path, sizeof(path), "/tmp/mr-test-srv.%ld", (long)getpid());
    unlink(path);
    char spec[128];
    snprintf(spec, sizeof(spec), "unix:%s", path);
    S = srv_listen(B, spec, 0600, "test", handler, NULL, &conf, &err);
    ck_assert_msg(S != NULL, "%s", err.data ? err.data : "");
    srv_set_line_max(S, LINE_MAX_TEST);
    calls = 0;
    waiting = NULL;
    answer_pad = 0;
    buf_free(&err);
}

static void stop(void)
{
    srv_close(S);
    unlink(path);
}

static void turn(int times)
{
    for (int i = 0; i < times; i++)
        event_base_loop(B, EVLOOP_NONBLOCK);
}

static int client(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    turn(2);
    return fd;
}

static void put(int fd, const char *s, size_t len)
{
    ck_assert_int_eq(write(fd, s, len), (ssize_t)len);
}

/* What has arrived on fd, after turning the loop; *eof set at end of stream. */
static void take(int fd, struct buf *got, int *eof)
{
    char tmp[65536];
    turn(3);
    for (;;) {
        ssize_t n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
        if (n > 0) {
            buf_add(got, tmp, (size_t)n);
            turn(2);
            continue;
        }
        if (n == 0 && eof)
            *eof = 1;
        break;
    }
}

static void bufs_init(struct buf *req, struct buf *want, struct buf *got)
{
    buf_init(req);
    buf_init(want);
    buf_init(got);
}

/* got holds exactly want; then the client, its buffers and the listener go */
static void expect_all(int fd, struct buf *req, struct buf *want, struct buf *got)
{
    ck_assert_uint_eq(got->len, want->len);
    ck_assert(memcmp(got->data, want->data, want->len) == 0);
    close(fd);
    buf_free(req);
    buf_free(want);
    buf_free(got);
    stop();
}

START_TEST(split_anywhere)
{
    const char req[] = "a\nbb\n\nccc\n";
    start(10, 65536);
    int whole = client(), bytes = client();
    struct buf a, b;
    buf_init(&a);
    buf_init(&b);
    put(whole, req, sizeof(req) - 1);
    take(whole, &a, NULL);
    for (size_t i = 0; i < sizeof(req) - 1; i++) {
        put(bytes, req + i, 1);
        turn(2);
    }
    take(bytes, &b, NULL);
    ck_assert_str_eq(a.data, "ok a\nok bb\nok \nok ccc\n");
    ck_assert_str_eq(b.data, a.data);
    ck_assert_int_eq(calls, 8);     /* once per line, however it trickled in */
    close(whole);
    close(bytes);
    buf_free(&a);
    buf_free(&b);
    stop();
}
END_TEST

START_TEST(pipelined_in_order)
{
    struct buf req, want, got;
    bufs_init(&req, &want, &got);
    start(10, 1 << 20);
    for (int i = 0; i < 500; i++) {
        buf_printf(&req, "r%d\n", i);
        buf_printf(&want, "ok r%d\n", i);
    }
    int fd = client();
    put(fd, req.data, req.len);
    take(fd, &got, NULL);
    expect_all(fd, &req, &want, &got);
}
END_TEST

START_TEST(line_too_long)
{
    char line[LINE_MAX_TEST + 10];
    struct buf got;
    int eof = 0;
    buf_init(&got);
    start(10, 65536);
    memset(line, 'x', sizeof(line));
    int fd = client();
    put(fd, "fine\n", 5);
    put(fd, line, sizeof(line));
    take(fd, &got, &eof);
    for (int i = 0; i < 20 && !eof; i++)
        take(fd, &got, &eof);
    ck_assert_str_eq(got.data, "ok fine\nerr\n");
    ck_assert_int_eq(eof, 1);
    close(fd);
    buf_free(&got);
    stop();
}
END_TEST

START_TEST(deferred_answer_keeps_order)
{
    struct buf got;
    buf_init(&got);
    start(10, 65536);
    int fd = client();
    put(fd, "one\nwait\ntwo\nthree\n", 19);
    take(fd, &got, NULL);
    /* nothing behind the suspended request is answered before it */
    ck_assert_str_eq(got.data, "ok one\n");
    ck_assert_ptr_nonnull(waiting);
    srv_conn_reply(waiting, "later\n", 6);
    take(fd, &got, NULL);
    ck_assert_str_eq(got.data, "ok one\nlater\nok two\nok three\n");
    close(fd);
    buf_free(&got);
    stop();
}
END_TEST

/* The client goes while its request waits for an answer from another
 * thread, with answers to earlier requests still unsent: the connection's
 * state stays until that answer comes (a database thread still holds it),
 * and the answer then goes nowhere. */
START_TEST(client_gone_while_suspended)
{
    struct buf req;
    buf_init(&req);
    start(10, 1 << 22);
    answer_pad = 4096;
    int fd = client();
    int sz = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    for (int i = 0; i < 200; i++)
        buf_printf(&req, "q%03d\n", i);
    buf_adds(&req, "wait\n");
    put(fd, req.data, req.len);
    turn(10);
    ck_assert_ptr_nonnull(waiting);
    ck_assert_int_eq(srv_get_stats(S)->active, 1);
    close(fd);          /* answers unread: the server's next write fails */
    turn(10);
    srv_conn_reply_part(waiting, "part\n", 5);
    turn(5);
    srv_conn_reply(waiting, "later\n", 6);
    turn(5);
    ck_assert_int_eq(srv_get_stats(S)->active, 0);
    buf_free(&req);
    stop();
}
END_TEST

/* As much of req past *sent as a non-blocking socket takes. */
static void put_more(int fd, const struct buf *req, size_t *sent)
{
    if (*sent >= req->len)
        return;
    ssize_t n = write(fd, req->data + *sent, req->len - *sent);
    if (n > 0)
        *sent += (size_t)n;
}

/* What the client sends while its request waits (more than one read's
 * worth) is kept, not answered, and answered in order after the reply. */
START_TEST(sent_while_suspended)
{
    struct buf req, want, got;
    bufs_init(&req, &want, &got);
    start(10, 1 << 22);
    int fd = client();
    put(fd, "wait\n", 5);
    take(fd, &got, NULL);
    ck_assert_ptr_nonnull(waiting);
    ck_assert_int_eq(calls, 1);
    buf_adds(&want, "later\n");
    for (int i = 0; i < 20000; i++) {      /* 120 KB: two of the server's reads */
        buf_printf(&req, "r%04d\n", i % 10000);
        buf_printf(&want, "ok r%04d\n", i % 10000);
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    size_t sent = 0;
    for (int i = 0; i < 200 && sent < req.len; i++) {
        put_more(fd, &req, &sent);
        turn(2);
    }
    take(fd, &got, NULL);
    ck_assert_uint_eq(got.len, 0);          /* nothing answered meanwhile */
    ck_assert_int_eq(calls, 1);
    srv_conn_reply(waiting, "later\n", 6);
    for (int i = 0; i < 2000 && (sent < req.len || got.len < want.len); i++) {
        put_more(fd, &req, &sent);
        take(fd, &got, NULL);
    }
    expect_all(fd, &req, &want, &got);
}
END_TEST

/* The client closes while its request waits, before any answer: the
 * connection is kept for the answer, which then ends it. */
START_TEST(closed_while_suspended)
{
    start(10, 65536);
    int fd = client();
    put(fd, "wait\n", 5);
    turn(5);
    ck_assert_ptr_nonnull(waiting);
    close(fd);
    turn(10);
    ck_assert_int_eq(srv_get_stats(S)->active, 1);
    srv_conn_reply(waiting, "later\n", 6);
    turn(5);
    ck_assert_int_eq(srv_get_stats(S)->active, 0);
    stop();
}
END_TEST

/* Part of an answer goes out while the request stays suspended; nothing
 * behind it is answered before the rest. */
START_TEST(answer_in_parts)
{
    struct buf got;
    buf_init(&got);
    start(10, 65536);
    int fd = client();
    put(fd, "wait\nnext\n", 10);
    take(fd, &got, NULL);
    ck_assert_ptr_nonnull(waiting);
    srv_conn_reply_part(waiting, "* row\n", 6);
    take(fd, &got, NULL);
    ck_assert_str_eq(got.data, "* row\n");
    srv_conn_reply(waiting, "OK\n", 3);
    take(fd, &got, NULL);
    ck_assert_str_eq(got.data, "* row\nOK\nok next\n");
    close(fd);
    buf_free(&got);
    stop();
}
END_TEST

START_TEST(backpressure)
{
    /* answers of 4 KB, the high-water mark at 16 KB, and a client that
     * asks 200 of them before it reads: reading stops, nothing is lost */
    struct buf req, got;
    buf_init(&req);
    buf_init(&got);
    start(10, 16384);
    answer_pad = 4096;
    int fd = client();
    int sz = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    for (int i = 0; i < 200; i++)
        buf_printf(&req, "q%03d\n", i);
    put(fd, req.data, req.len);
    turn(20);
    ck_assert_int_lt(calls, 200);
    ck_assert_uint_ge(srv_get_stats(S)->paused, 1);
    for (int i = 0; i < 400 && got.len < 200 * (4096 + 8); i++)
        take(fd, &got, NULL);
    ck_assert_int_eq(calls, 200);
    ck_assert_uint_eq(got.len, 200 * (4096 + 8));
    for (int i = 0; i < 200; i++) {
        char head[16];
        snprintf(head, sizeof(head), "ok q%03d", i);
        ck_assert(memcmp(got.data + (size_t)i * (4096 + 8), head, 7) == 0);
    }
    close(fd);
    buf_free(&req);
    buf_free(&got);
    stop();
}
END_TEST

START_TEST(per_peer_cap)
{
    struct buf got;
    int eof = 0;
    buf_init(&got);
    start(2, 65536);
    int a = client(), b = client(), c = client();
    take(c, &got, &eof);
    for (int i = 0; i < 20 && !eof; i++)
        take(c, &got, &eof);
    ck_assert_int_eq(eof, 1);       /* the third from this uid is closed */
    ck_assert_uint_eq(srv_get_stats(S)->refused_peer, 1);
    ck_assert_int_eq(srv_get_stats(S)->active, 2);
    put(a, "x\n", 2);
    buf_reset(&got);
    take(a, &got, NULL);
    ck_assert_str_eq(got.data, "ok x\n");
    close(a);
    close(b);
    close(c);
    buf_free(&got);
    stop();
}
END_TEST

Suite *srv_suite(void)
{
    Suite *s = suite_create("srv");
    TCase *tc = tcase_create("framing");
    tcase_add_test(tc, split_anywhere);
    tcase_add_test(tc, pipelined_in_order);
    tcase_add_test(tc, line_too_long);
    tcase_add_test(tc, deferred_answer_keeps_order);
    tcase_add_test(tc, backpressure);
    tcase_add_test(tc, client_gone_while_suspended);
    tcase_add_test(tc, answer_in_parts);
    tcase_add_test(tc, sent_while_suspended);
    tcase_add_test(tc, closed_while_suspended);
    tcase_add_test(tc, per_peer_cap);
    suite_add_tcase(s, tc);
    return s;
}
