/* test_proto.c - tcp_table and socketmap request handling. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "proto.h"
#include "tests.h"

static struct dir *D;
static struct lk_stats stats;
static int complaints;

static void count_complaint(void *arg, const char *what)
{
    (void)arg;
    (void)what;
    complaints++;
}

static struct lk_env env(void)
{
    struct lk_env e = { D, "+", &stats, count_complaint, NULL, NULL };
    return e;
}

static void setup(void)
{
    D = fixture_dir();
    complaints = 0;
    memset(&stats, 0, sizeof(stats));
}

static void teardown(void) { dir_free(D); }

/* Feed a whole stream, as the connection loop does; returns the answers. */
static const char *run_tcp(enum lk_map map, const char *in, size_t len, int *closed)
{
    static struct buf out;
    struct lk_env e = env();
    size_t pos = 0;
    buf_reset(&out);
    *closed = 0;
    while (pos < len) {
        ssize_t n = tcpt_request(&e, map, in + pos, len - pos, &out);
        if (n < 0) {
            *closed = 1;
            break;
        }
        if (n == 0)
            break;
        pos += (size_t)n;
    }
    return out.data ? out.data : "";
}

START_TEST(tcp_get)
{
    int closed;
    const char *in = "get Alice@Example.COM\nget nobody%40nowhere.org\nget info%2Bx@example.com\n";
    ck_assert_str_eq(run_tcp(LK_MAILBOXES, in, strlen(in), &closed),
                     "200 example.com/10/\n500 not found\n500 not found\n");
    in = "get info%2Bx@example.com\nget fwd@example.com\r\n";
    ck_assert_str_eq(run_tcp(LK_ALIASES, in, strlen(in), &closed),
                     "200 alice+x@example.com,bob+x@example.com\n200 someone@remote.example\n");
    ck_assert_int_eq(closed, 0);
    ck_assert_uint_eq(stats.requests[LK_ALIASES], 2);
    ck_assert_uint_eq(stats.found[LK_ALIASES], 2);
}
END_TEST

START_TEST(tcp_bad_input)
{
    int closed;
    const char *in = "fetch x\nget a b\nget %zz\nget \nput a b\nget\n";
    ck_assert_str_eq(run_tcp(LK_DOMAINS, in, strlen(in), &closed),
                     "400 malformed request\n400 malformed request\n400 malformed key\n"
                     "400 malformed key\n500 put is not implemented: this table is read-only\n"
                     "400 malformed request\n");
    ck_assert_int_eq(complaints, 5);
    ck_assert_int_eq(closed, 0);
    /* NUL inside the key (encoded) is simply not found; raw NUL is malformed */
    in = "get a%00b@example.com\n";
    ck_assert_str_eq(run_tcp(LK_MAILBOXES, in, strlen(in), &closed), "500 not found\n");
    ck_assert_str_eq(run_tcp(LK_MAILBOXES, "get a\0b\n", 8, &closed), "400 malformed request\n");
    /* a partial request waits for more */
    ck_assert_str_eq(run_tcp(LK_MAILBOXES, "get alice@exa", 13, &closed), "");
    ck_assert_int_eq(closed, 0);
}
END_TEST

START_TEST(tcp_too_long)
{
    int closed;
    static char big[TCPT_MAX_REQUEST + 10];
    memset(big, 'a', sizeof(big));
    ck_assert_str_eq(run_tcp(LK_MAILBOXES, big, sizeof(big), &closed), "400 request too long\n");
    ck_assert_int_eq(closed, 1);
    /* an answer over 4096 octets is refused, not cut */
    struct buf dests;
    buf_init(&dests);
    for (int i = 0; i < 300; i++)
        buf_printf(&dests, "%sdestination%03d@example.org", i ? "," : "", i);
    struct dir_alias t = { .id = 99, .source = "big@example.com", .destinations = dests.data, .enabled = 1,
                           .may_send = 1 };
    dir_put(D, DIR_ALIAS, dir_alias_new(&t));
    ck_assert_str_eq(run_tcp(LK_ALIASES, "get big@example.com\n", 20, &closed),
                     "400 reply too long for tcp_table\n");
    ck_assert_int_eq(complaints, 2);
    buf_free(&dests);
}
END_TEST

START_TEST(tcp_not_loaded)
{
    int closed;
    struct dir *saved = D;
    D = NULL;
    ck_assert_str_eq(run_tcp(LK_MAILBOXES, "get a@b.c\n", 10, &closed), "400 directory not loaded yet\n");
    D = saved;
}
END_TEST

static const char *run_smap(const char *in, size_t len, int *closed)
{
    static struct buf out;
    struct lk_env e = env();
    size_t pos = 0;
    buf_reset(&out);
    *closed = 0;
    while (pos < len) {
        ssize_t n = smap_request(&e, in + pos, len - pos, &out);
        if (n < 0) {
            *closed = 1;
            break;
        }
        if (n == 0)
            break;
        pos += (size_t)n;
    }
    return out.data ? out.data : "";
}

START_TEST(smap_get)
{
    int closed;
    const char *in = "25:mailboxes Bob@example.com,19:domains EXAMPLE.COM,"
                     "24:aliases info@example.com,21:senders x@nowhere.org,";
    ck_assert_str_eq(run_smap(in, strlen(in), &closed),
                     "18:OK example.com/11/,14:OK example.com,"
                     "36:OK alice@example.com,bob@example.com,9:NOTFOUND ,");
    ck_assert_int_eq(closed, 0);
    /* keys may hold spaces: only the first one separates */
    in = "25:mailboxes a b@example.com,";
    ck_assert_str_eq(run_smap(in, strlen(in), &closed), "9:NOTFOUND ,");
}
END_TEST

/* transport(5) answers may hold spaces ("error:5.1.1 text"): tcp_table
 * sends them %XX-quoted (dict_tcp decodes the reply), socketmap as they
 * are (the netstring carries its length) */
START_TEST(transports_encoded)
{
    int closed;
    struct dir_transport t = { .id = 1, .enabled = 1, .pattern = "gone@example.com",
                               .transport = "error:5.1.1 moved; 100% gone" };
    dir_put(D, DIR_TRANSPORT, dir_transport_new(&t));
    struct dir_transport t2 = { .id = 2, .enabled = 1, .pattern = ".example.net", .transport = "relay:[10.0.0.5]:8025" };
    dir_put(D, DIR_TRANSPORT, dir_transport_new(&t2));
    const char *in = "get Gone%2Bx@example.com\nget a.example.net\nget example.net\n";
    ck_assert_str_eq(run_tcp(LK_TRANSPORTS, in, strlen(in), &closed),
                     "200 error:5.1.1%20moved;%20100%25%20gone\n200 relay:[10.0.0.5]:8025\n500 not found\n");
    ck_assert_uint_eq(stats.requests[LK_TRANSPORTS], 3);
    ck_assert_uint_eq(stats.found[LK_TRANSPORTS], 2);
    in = "27:transports gone@example.com,24:transports a.example.net,";
    ck_assert_str_eq(run_smap(in, strlen(in), &closed),
                     "31:OK error:5.1.1 moved; 100% gone,24:OK relay:[10.0.0.5]:8025,");
    ck_assert_int_eq(closed, 0);
}
END_TEST

START_TEST(smap_bad_input)
{
    int closed;
    ck_assert_str_eq(run_smap("9:nosuchmap,", 12, &closed), "22:PERM malformed request,");
    ck_assert_str_eq(run_smap("7:other x,", 10, &closed), "21:PERM unknown map name,");
    ck_assert_int_eq(closed, 0);
    ck_assert_str_eq(run_smap("3:abcd", 6, &closed), "24:PERM malformed netstring,");
    ck_assert_int_eq(closed, 1);
    ck_assert_str_eq(run_smap("abc", 3, &closed), "24:PERM malformed netstring,");
    ck_assert_int_eq(closed, 1);
    ck_assert_str_eq(run_smap("100001:", 7, &closed), "21:PERM request too long,");
    ck_assert_int_eq(closed, 1);
    ck_assert_str_eq(run_smap("25:mailboxes", 12, &closed), "");
    ck_assert_int_eq(closed, 0);
    struct dir *saved = D;
    D = NULL;
    ck_assert_str_eq(run_smap("9:domains x,", 12, &closed), "29:TEMP directory not loaded yet,");
    D = saved;
}
END_TEST

START_TEST(smap_reply_too_long)
{
    int closed;
    struct buf dests;
    buf_init(&dests);
    for (int i = 0; i < 3000; i++)
        buf_printf(&dests, "%sa-rather-long-destination-%04d@example.org", i ? "," : "", i);
    struct dir_alias t = { .id = 99, .source = "big@example.com", .destinations = dests.data, .enabled = 1,
                           .may_send = 1 };
    dir_put(D, DIR_ALIAS, dir_alias_new(&t));
    ck_assert_str_eq(run_smap("23:aliases big@example.com,", 27, &closed),
                     "33:PERM reply too long for socketmap,");
    buf_free(&dests);
}
END_TEST

typedef ssize_t (*handler_fn)(const struct lk_env *env, enum lk_map map, const char *in,
                              size_t len, struct buf *out);

/* Feed a whole stream to h with env e into out (reset first). */
static void run_with(handler_fn h, const struct lk_env *e, enum lk_map map, const char *in, struct buf *out)
{
    size_t pos = 0, len = strlen(in);
    buf_reset(out);
    while (pos < len) {
        ssize_t n = h(e, map, in + pos, len - pos, out);
        if (n <= 0)
            break;
        pos += (size_t)n;
    }
}

static ssize_t smap_h(const struct lk_env *env, enum lk_map map, const char *in, size_t len,
                      struct buf *out);

/* With the event loop's scratch buffers, a lookup allocates nothing once
 * they have grown to the keys' size (the event loop's thread makes no
 * malloc call per request), and answers as without them. */
START_TEST(scratch_no_allocs)
{
    struct dir_transport t = { .id = 1, .enabled = 1, .pattern = "gone@example.com", .transport = "error:5.1.1 gone" };
    dir_put(D, DIR_TRANSPORT, dir_transport_new(&t));
    struct dir_transport t2 = { .id = 2, .enabled = 1, .pattern = ".example.net", .transport = "relay:[10.0.0.5]" };
    dir_put(D, DIR_TRANSPORT, dir_transport_new(&t2));
    /* mailboxes with and without an extension, aliases (with the
     * extension given back), senders, domains, and transports by address,
     * by domain and by ".domain" */
    const char *tcp = "get Alice@Example.COM\nget alice%2Bnews@example.com\nget info%2Bx@example.com\n"
                      "get fwd@example.com\nget nobody@nowhere.org\nget EXAMPLE.com\nget Gone%2Bx@example.com\n"
                      "get a.example.net\nget .example.net\nget x@a.example.net\n";
    const char *smap = "25:mailboxes Bob@example.com,30:mailboxes alice+news@Example.com,"
                       "24:aliases info@example.com,26:aliases info+x@example.com,"
                       "21:senders x@nowhere.org,25:senders alice@example.com,"
                       "19:domains EXAMPLE.COM,27:transports gone@example.com,"
                       "24:transports a.example.net,";
    struct buf scratch[LK_NSCRATCH] = { { 0 } }, want = { 0 }, got = { 0 };
    struct lk_env own = env(), lent = env();
    lent.scratch = scratch;
    for (enum lk_map m = LK_DOMAINS; m < LK_NMAPS; m++) {
        run_with(tcpt_request, &own, m, tcp, &want);
        run_with(tcpt_request, &lent, m, tcp, &got);     /* the buffers grow */
        ck_assert_str_eq(got.data, want.data);
        unsigned long before = mem_allocs();
        run_with(tcpt_request, &lent, m, tcp, &got);
        ck_assert_uint_eq(mem_allocs() - before, 0);
        ck_assert_str_eq(got.data, want.data);
    }
    run_with(smap_h, &own, LK_DOMAINS, smap, &want);
    run_with(smap_h, &lent, LK_DOMAINS, smap, &got);
    ck_assert_str_eq(got.data, want.data);
    unsigned long before = mem_allocs();
    run_with(smap_h, &lent, LK_DOMAINS, smap, &got);
    ck_assert_uint_eq(mem_allocs() - before, 0);
    ck_assert_str_eq(got.data, want.data);
    /* and without them, each lookup allocates (the counter counts) */
    before = mem_allocs();
    run_with(tcpt_request, &own, LK_MAILBOXES, tcp, &got);
    ck_assert_uint_gt(mem_allocs() - before, 0);
    bufs_free(scratch, LK_NSCRATCH);
    buf_free(&want);
    buf_free(&got);
}
END_TEST

/* A connection that receives the stream one byte at a time: after each
 * byte the handler sees everything not consumed yet, as srv.c gives it. */

static ssize_t smap_h(const struct lk_env *env, enum lk_map map, const char *in, size_t len,
                      struct buf *out)
{
    (void)map;
    return smap_request(env, in, len, out);
}

static void trickle(handler_fn h, enum lk_map map, const char *in, size_t len, struct buf *out,
                    int *closed)
{
    struct lk_env e = env();
    size_t start = 0;
    buf_reset(out);
    *closed = 0;
    for (size_t have = 1; have <= len && !*closed; have++) {
        while (start < have) {
            /* exactly what has arrived: a read past it is caught under ASan */
            char *copy = malloc(have - start);
            memcpy(copy, in + start, have - start);
            ssize_t n = h(&e, map, copy, have - start, out);
            free(copy);
            if (n < 0)
                *closed = 1;
            if (n <= 0)
                break;
            start += (size_t)n;
        }
    }
}

START_TEST(byte_by_byte)
{
    struct buf out;
    int closed, whole;
    const char *tcp = "get Alice@Example.COM\r\nget info%2Bx@example.com\nfetch x\nget %zz\n"
                      "put a b\nget fwd@example.com\nget alice@exa";
    const char *smap = "25:mailboxes Bob@example.com,24:aliases info@example.com,"
                       "9:nosuchmap,7:other x,21:senders x@nowhere.org,3:abcd";
    buf_init(&out);
    for (enum lk_map m = LK_DOMAINS; m < LK_NMAPS; m++) {
        trickle(tcpt_request, m, tcp, strlen(tcp), &out, &closed);
        ck_assert_str_eq(out.data, run_tcp(m, tcp, strlen(tcp), &whole));
        ck_assert_int_eq(closed, whole);
    }
    trickle(smap_h, LK_DOMAINS, smap, strlen(smap), &out, &closed);
    ck_assert_str_eq(out.data, run_smap(smap, strlen(smap), &whole));
    ck_assert_int_eq(closed, 1);
    ck_assert_int_eq(whole, 1);
    buf_free(&out);
}
END_TEST

Suite *proto_suite(void)
{
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, tcp_get);
    tcase_add_test(tc, tcp_bad_input);
    tcase_add_test(tc, tcp_too_long);
    tcase_add_test(tc, tcp_not_loaded);
    tcase_add_test(tc, smap_get);
    tcase_add_test(tc, smap_bad_input);
    tcase_add_test(tc, smap_reply_too_long);
    tcase_add_test(tc, transports_encoded);
    tcase_add_test(tc, byte_by_byte);
    tcase_add_test(tc, scratch_no_allocs);
    suite_add_tcase(s, tc);
    return s;
}
