/* test_polproto.c - Postfix policy delegation requests and replies. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "polproto.h"
#include "tests.h"

/* What Postfix 3.7 smtpd sends at RCPT TO over a STARTTLS session without
 * SASL or a client certificate: all 29 attributes, in its order. */
static const char RCPT[] =
    "request=smtpd_access_policy\n"
    "protocol_state=RCPT\n"
    "protocol_name=ESMTP\n"
    "helo_name=mail.sender.example\n"
    "queue_id=\n"
    "sender=alice@sender.example\n"
    "recipient=bob@example.com\n"
    "recipient_count=0\n"
    "client_address=192.0.2.25\n"
    "client_name=mail.sender.example\n"
    "reverse_client_name=mail.sender.example\n"
    "instance=1b2f.6581c3d4.a8e5f.0\n"
    "sasl_method=\n"
    "sasl_username=\n"
    "sasl_sender=\n"
    "size=18342\n"
    "ccert_subject=\n"
    "ccert_issuer=\n"
    "ccert_fingerprint=\n"
    "ccert_pubkey_fingerprint=\n"
    "encryption_protocol=TLSv1.3\n"
    "encryption_cipher=TLS_AES_256_GCM_SHA384\n"
    "encryption_keysize=256\n"
    "etrn_domain=\n"
    "stress=\n"
    "client_port=48812\n"
    "policy_context=\n"
    "server_address=198.51.100.7\n"
    "server_port=25\n"
    "\n";

/* The same session's end of message, on a submission service with SASL
 * and a client certificate (ccert_* values are xtext, as Postfix sends). */
static const char EOM[] =
    "request=smtpd_access_policy\n"
    "protocol_state=END-OF-MESSAGE\n"
    "protocol_name=ESMTP\n"
    "helo_name=[192.168.1.20]\n"
    "queue_id=4VxK2m3QYfz9sWP\n"
    "sender=alice@example.com\n"
    "recipient=\n"
    "recipient_count=2\n"
    "client_address=2001:db8::20\n"
    "client_name=unknown\n"
    "reverse_client_name=unknown\n"
    "instance=1c07.6581c3e1.2b9d4.0\n"
    "sasl_method=PLAIN\n"
    "sasl_username=alice@example.com\n"
    "sasl_sender=\n"
    "size=52011\n"
    "ccert_subject=Alice+20Example\n"
    "ccert_issuer=Example+20CA+20R3\n"
    "ccert_fingerprint=3A:1F:0C:9E:44:D2:7B:81:5E:03:B6:9A:2C:70:F1:E8:0D:4A:92:65\n"
    "ccert_pubkey_fingerprint=C4:E2:8B:15:70:9D:3F:A6:01:5C:BE:27:93:D8:4F:6A:E0:19:72:3B\n"
    "encryption_protocol=TLSv1.3\n"
    "encryption_cipher=TLS_AES_128_GCM_SHA256\n"
    "encryption_keysize=128\n"
    "etrn_domain=\n"
    "stress=\n"
    "client_port=51544\n"
    "policy_context=submission\n"
    "server_address=2001:db8::7\n"
    "server_port=587\n"
    "\n";

static struct pol_req R, T;    /* one-shot parses; the same bytes trickling in */

static void setup(void)
{
    pol_req_init(&R);
    pol_req_init(&T);
}

static void teardown(void)
{
    pol_req_free(&R);
    pol_req_free(&T);
}

/* pol_parse(&T, ...) on in[0..k), as a connection that has received k
 * bytes: from an exact-size copy (reads past the end are caught) for the
 * first bytes and now and then, else straight from in. */
static enum pol_status feed(const char *in, size_t k, size_t *used, const char **why)
{
    enum pol_status st;
    if (k < 600 || k % 509 == 0) {
        char *copy = malloc(k ? k : 1);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, in, k);
        st = pol_parse(&T, copy, k, used, why);
        free(copy);
    } else {
        st = pol_parse(&T, in, k, used, why);
    }
    return st;
}

/* Feed in[0..len) to T byte by byte, as one stream: the first verdict must
 * be the one-shot verdict (st, used, why, R's attributes), reached by
 * looking at each byte a bounded number of times. */
static void trickle(const char *in, size_t len, enum pol_status st, size_t used, const char *why)
{
    unsigned long before = T.examined;
    enum pol_status s = POL_NEED_MORE;
    size_t u = 0, k;
    const char *w = NULL;

    pol_req_reset(&T);
    for (k = 1; k <= len && s == POL_NEED_MORE; k++)
        s = feed(in, k, &u, &w);
    ck_assert_msg(s == st, "trickled: status %d, in one piece %d", s, st);
    if (st == POL_NEED_MORE || st == POL_OK) {
        ck_assert_uint_eq(u, used);
    } else {
        ck_assert_str_eq(w, why);
        /* the end of a bad request may not have been in yet */
        ck_assert_msg(u == used || u == 0, "trickled: used %zu, in one piece %zu", u, used);
    }
    if (st == POL_OK) {
        ck_assert_int_eq(T.nattrs, R.nattrs);
        for (int i = 0; i < R.nattrs; i++) {
            ck_assert_str_eq(T.attrs[i].name, R.attrs[i].name);
            ck_assert_str_eq(T.attrs[i].value, R.attrs[i].value);
        }
    }
    /* linear: a few looks per byte and per call, however it was split */
    ck_assert_msg(T.examined - before <= 8 * (unsigned long)len + 16,
                  "%lu bytes examined for %zu", T.examined - before, len);
}

/* Parse in[0..len) as a new stream from an allocation of exactly len bytes,
 * so that a read past the end is caught under ASan; then check that the
 * same bytes arriving one at a time are judged the same. */
static enum pol_status parse(const char *in, size_t len, size_t *used, const char **why)
{
    char *copy = malloc(len ? len : 1);
    enum pol_status st;
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, in, len);
    pol_req_reset(&R);
    st = pol_parse(&R, copy, len, used, why);
    /* the attributes are a copy: the input may go away */
    memset(copy, 'Z', len);
    free(copy);
    trickle(in, len, st, *used, *why);
    return st;
}

static enum pol_status parses(const char *in, size_t *used, const char **why)
{
    return parse(in, strlen(in), used, why);
}

/* "v=" and fill bytes 'x', then end, making total bytes in all. */
static char *filled(size_t total, const char *end)
{
    size_t elen = strlen(end);
    char *s = malloc(total + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, "v=", 2);
    memset(s + 2, 'x', total - 2 - elen);
    memcpy(s + total - elen, end, elen);
    s[total] = 0;
    return s;
}

/* n attribute lines "aNNN=N\n" and an empty line. */
static char *many(int n, struct buf *b)
{
    buf_reset(b);
    for (int i = 0; i < n; i++)
        buf_printf(b, "a%03d=%d\n", i, i);
    buf_addc(b, '\n');
    return b->data;
}

START_TEST(real_requests)
{
    size_t used;
    const char *why = "x";

    ck_assert_int_eq(parses(RCPT, &used, &why), POL_OK);
    ck_assert_uint_eq(used, strlen(RCPT));
    ck_assert_ptr_null(why);
    ck_assert_int_eq(R.nattrs, 29);
    ck_assert_str_eq(R.attrs[0].name, "request");
    ck_assert_str_eq(R.attrs[0].value, "smtpd_access_policy");
    ck_assert_str_eq(R.attrs[28].name, "server_port");
    ck_assert_str_eq(pol_get(&R, "protocol_state"), "RCPT");
    ck_assert_str_eq(pol_get(&R, "sender"), "alice@sender.example");
    ck_assert_str_eq(pol_get(&R, "recipient"), "bob@example.com");
    ck_assert_str_eq(pol_get(&R, "client_address"), "192.0.2.25");
    ck_assert_str_eq(pol_get(&R, "server_port"), "25");
    /* present but empty is not absent */
    ck_assert_str_eq(pol_get(&R, "queue_id"), "");
    ck_assert_str_eq(pol_get(&R, "sasl_username"), "");
    ck_assert_str_eq(pol_get(&R, "policy_context"), "");
    ck_assert_ptr_null(pol_get(&R, "mail_version"));   /* Postfix 3.8 and later */
    ck_assert_ptr_null(pol_get(&R, "REQUEST"));
    ck_assert_ptr_null(pol_get(&R, ""));

    ck_assert_int_eq(parses(EOM, &used, &why), POL_OK);
    ck_assert_uint_eq(used, strlen(EOM));
    ck_assert_int_eq(R.nattrs, 29);
    ck_assert_str_eq(pol_get(&R, "protocol_state"), "END-OF-MESSAGE");
    ck_assert_str_eq(pol_get(&R, "helo_name"), "[192.168.1.20]");
    ck_assert_str_eq(pol_get(&R, "client_address"), "2001:db8::20");
    ck_assert_str_eq(pol_get(&R, "sasl_username"), "alice@example.com");
    ck_assert_str_eq(pol_get(&R, "ccert_issuer"), "Example+20CA+20R3");   /* still xtext */
    ck_assert_str_eq(pol_get(&R, "ccert_fingerprint"),
                     "3A:1F:0C:9E:44:D2:7B:81:5E:03:B6:9A:2C:70:F1:E8:0D:4A:92:65");
    ck_assert_str_eq(pol_get(&R, "recipient"), "");
    ck_assert_str_eq(pol_get(&R, "recipient_count"), "2");
    ck_assert_str_eq(pol_get(&R, "policy_context"), "submission");
}
END_TEST

/* The attributes pol_get finds without a search: the last of a repeated
 * name, none from an earlier request, none after a bad one. */
START_TEST(known_names)
{
    size_t used;
    const char *why;
    const char *two = "sender=a@x\nrequest=smtpd_access_policy\nsender=b@x\nsize=12\n"
                      "recipient_count=3\nsendr=c@x\n\n";

    ck_assert_int_eq(pol_parse(&R, two, strlen(two), &used, &why), POL_OK);
    ck_assert_str_eq(pol_get(&R, "sender"), "b@x");
    ck_assert_str_eq(pol_get(&R, "size"), "12");
    ck_assert_str_eq(pol_get(&R, "recipient_count"), "3");
    ck_assert_str_eq(pol_get(&R, "sendr"), "c@x");
    ck_assert_ptr_null(pol_get(&R, "recipient"));
    ck_assert_ptr_null(pol_get(&R, "queue_id"));
    ck_assert_ptr_null(pol_get(&R, "sende"));
    /* a shorter request after it: nothing of the first one is found */
    ck_assert_int_eq(pol_parse(&R, "recipient=r@x\n\n", 15, &used, &why), POL_OK);
    ck_assert_str_eq(pol_get(&R, "recipient"), "r@x");
    ck_assert_ptr_null(pol_get(&R, "sender"));
    ck_assert_ptr_null(pol_get(&R, "size"));
    /* a bad request: no attribute at all */
    ck_assert_int_eq(pol_parse(&R, "sender=x\nBAD\n\n", 14, &used, &why), POL_BAD);
    ck_assert_ptr_null(pol_get(&R, "sender"));
    ck_assert_ptr_null(pol_get(&R, "recipient"));
}
END_TEST

START_TEST(small_forms)
{
    size_t used;
    const char *why;

    /* "=" in a value is data; only the first one splits */
    ck_assert_int_eq(parses("a=b=c\nx==\n_9=\n\n", &used, &why), POL_OK);
    ck_assert_uint_eq(used, 15);
    ck_assert_int_eq(R.nattrs, 3);
    ck_assert_str_eq(pol_get(&R, "a"), "b=c");
    ck_assert_str_eq(pol_get(&R, "x"), "=");
    ck_assert_str_eq(pol_get(&R, "_9"), "");
    /* values are not escaped and may hold anything but NUL and newline */
    ck_assert_int_eq(parses("v= sp\tace \xc3\xa9 %41 +20 \x01\x7f\xff\n\n", &used, &why), POL_OK);
    ck_assert_str_eq(pol_get(&R, "v"), " sp\tace \xc3\xa9 %41 +20 \x01\x7f\xff");
    /* one attribute; what follows the request is not looked at */
    ck_assert_int_eq(parses("a=1\n\nGET / HTTP/1.0\r\n", &used, &why), POL_OK);
    ck_assert_uint_eq(used, 5);
    ck_assert_int_eq(R.nattrs, 1);
}
END_TEST

START_TEST(back_to_back)
{
    struct buf in;
    size_t used, pos = 0;
    const char *why;
    buf_init(&in);
    buf_adds(&in, RCPT);
    buf_adds(&in, EOM);
    buf_adds(&in, "request=smtpd_access_policy\nprotocol_state=DA");

    ck_assert_int_eq(parse(in.data, in.len, &used, &why), POL_OK);
    ck_assert_uint_eq(used, strlen(RCPT));
    ck_assert_str_eq(pol_get(&R, "protocol_state"), "RCPT");
    pos += used;
    ck_assert_int_eq(parse(in.data + pos, in.len - pos, &used, &why), POL_OK);
    ck_assert_uint_eq(used, strlen(EOM));
    ck_assert_str_eq(pol_get(&R, "protocol_state"), "END-OF-MESSAGE");
    ck_assert_str_eq(pol_get(&R, "recipient"), "");
    pos += used;
    ck_assert_int_eq(parse(in.data + pos, in.len - pos, &used, &why), POL_NEED_MORE);
    ck_assert_uint_eq(used, 0);
    ck_assert_ptr_null(why);
    ck_assert_int_eq(R.nattrs, 0);
    ck_assert_ptr_null(pol_get(&R, "request"));
    /* the text buffer is kept for the next request */
    ck_assert_ptr_nonnull(R.text);
    ck_assert_uint_ge(R.text_size, strlen(EOM));
    buf_free(&in);
}
END_TEST

START_TEST(byte_at_a_time)
{
    size_t used, n = strlen(RCPT);
    const char *why;
    char *copy;

    /* one stream: each call sees one more byte, and goes on where the last stopped */
    for (size_t k = 0; k < n; k++) {
        why = "x";
        used = 99;
        copy = malloc(k ? k : 1);
        memcpy(copy, RCPT, k);
        ck_assert_int_eq(pol_parse(&R, copy, k, &used, &why), POL_NEED_MORE);
        free(copy);
        ck_assert_uint_eq(used, 0);
        ck_assert_ptr_null(why);
        ck_assert_int_eq(R.nattrs, 0);
    }
    ck_assert_int_eq(pol_parse(&R, RCPT, n, &used, &why), POL_OK);
    ck_assert_uint_eq(used, n);
    ck_assert_int_eq(R.nattrs, 29);
    ck_assert_str_eq(pol_get(&R, "server_port"), "25");
    /* nothing yet: an empty struct buf has no data at all */
    ck_assert_int_eq(pol_parse(&R, NULL, 0, &used, &why), POL_NEED_MORE);
    ck_assert_int_eq(R.nattrs, 0);
}
END_TEST

/* Two requests back to back, arriving in pieces of every size from 1 to
 * 64 bytes: the connection's view (in starts at the first unconsumed byte
 * and grows) gives the same two requests each time. */
START_TEST(pieces)
{
    struct buf s;
    buf_init(&s);
    buf_adds(&s, EOM);
    buf_adds(&s, "a=1\r\nb=x\r\n\r\n");
    for (size_t step = 1; step <= 64; step++) {
        size_t start = 0, have = 0, used;
        int got = 0;
        const char *why;
        pol_req_reset(&R);
        while (have < s.len) {
            have = have + step < s.len ? have + step : s.len;
            for (;;) {
                enum pol_status st = pol_parse(&R, s.data + start, have - start, &used, &why);
                if (st == POL_NEED_MORE)
                    break;
                ck_assert_int_eq(st, POL_OK);
                ck_assert_uint_eq(used, (got == 0 ? strlen(EOM) : 12));
                ck_assert_str_eq(pol_get(&R, got == 0 ? "policy_context" : "b"),
                                 got == 0 ? "submission" : "x");
                start += used;
                got++;
            }
        }
        ck_assert_int_eq(got, 2);
        ck_assert_uint_eq(start, s.len);
    }
    buf_free(&s);
}
END_TEST

/* A 32 KiB request fed one byte at a time: each byte is looked at a few
 * times, not once per call (which would be n * n / 2 = 512 Mi looks). */
START_TEST(linear_trickle)
{
    char *one = filled(POL_MAX_REQUEST, "\n\n");   /* one long value */
    struct buf lines;                               /* 128 lines of 255 bytes */
    size_t used;
    const char *why;
    buf_init(&lines);
    for (int i = 0; i < POL_MAX_ATTRS; i++) {
        buf_printf(&lines, "a%03d=", i);
        for (int j = 0; j < 249; j++)
            buf_addc(&lines, j % 7 ? 'v' : '\r');  /* a "\r" is judged when its next byte is in */
        buf_addc(&lines, '\n');
    }
    buf_adds(&lines, "\r\n");
    ck_assert_uint_le(lines.len, POL_MAX_REQUEST);

    const char *in[] = { one, lines.data };
    size_t len[] = { POL_MAX_REQUEST, lines.len };
    for (int c = 0; c < 2; c++) {
        unsigned long before = R.examined;
        enum pol_status st = POL_NEED_MORE;
        size_t k;
        pol_req_reset(&R);
        for (k = 1; k <= len[c] && st == POL_NEED_MORE; k++)
            st = pol_parse(&R, in[c], k, &used, &why);
        ck_assert_int_eq(st, POL_OK);
        ck_assert_uint_eq(k - 1, len[c]);
        ck_assert_uint_eq(used, len[c]);
        ck_assert_msg(R.examined - before <= 6 * (unsigned long)len[c],
                      "case %d: %lu bytes examined for %zu", c, R.examined - before, len[c]);
    }
    ck_assert_int_eq(R.nattrs, POL_MAX_ATTRS);
    ck_assert_uint_eq(strlen(pol_get(&R, "a127")), 249);

    /* garbage that trickles in is refused on its first line, at once */
    unsigned long before = R.examined;
    pol_req_reset(&R);
    ck_assert_int_eq(pol_parse(&R, "a=1\nGE", 6, &used, &why), POL_BAD);
    ck_assert_uint_le(R.examined - before, 12);
    free(one);
    buf_free(&lines);
}
END_TEST

/* What resuming asks of the caller, and what happens when it is not kept. */
START_TEST(resume_rules)
{
    size_t used;
    const char *why;

    /* a new stream after pol_req_reset */
    ck_assert_int_eq(pol_parse(&R, "a=1\nb=2\n", 8, &used, &why), POL_NEED_MORE);
    pol_req_reset(&R);
    ck_assert_int_eq(pol_parse(&R, "Bad\n\n", 5, &used, &why), POL_BAD);
    ck_assert_str_eq(why, "bad character in attribute name (not a-z 0-9 _)");
    /* an in shorter than what was judged is a new stream */
    ck_assert_int_eq(pol_parse(&R, "a=1\nb=2\n", 8, &used, &why), POL_NEED_MORE);
    ck_assert_int_eq(pol_parse(&R, "x\n\n", 3, &used, &why), POL_BAD);
    ck_assert_str_eq(why, "line without \"=\"");
    /* a verdict ends the request: the next call starts at in[0] */
    ck_assert_int_eq(pol_parse(&R, "a=1\n", 4, &used, &why), POL_NEED_MORE);
    ck_assert_int_eq(pol_parse(&R, "a=1\n\n", 5, &used, &why), POL_OK);
    ck_assert_int_eq(pol_parse(&R, "c=3\n\n", 5, &used, &why), POL_OK);
    ck_assert_int_eq(R.nattrs, 1);
    ck_assert_str_eq(pol_get(&R, "c"), "3");
    /* other bytes under the judged part (a caller error): refused, memory safe */
    ck_assert_int_eq(pol_parse(&R, "a=1\nb=2\n", 8, &used, &why), POL_NEED_MORE);
    ck_assert_int_eq(pol_parse(&R, "garbage!\n\n", 10, &used, &why), POL_BAD);
    ck_assert_str_eq(why, "request changed between calls (caller error)");
    ck_assert_int_eq(R.nattrs, 0);
    ck_assert_int_eq(pol_parse(&R, "a=1\nb=2\n", 8, &used, &why), POL_NEED_MORE);
    ck_assert_int_eq(pol_parse(&R, "x=1\n=\n\n\n\n", 9, &used, &why), POL_BAD);
    ck_assert_int_eq(pol_parse(&R, "a=1\n\n", 5, &used, &why), POL_OK);
}
END_TEST

START_TEST(crlf)
{
    const char *in = "request=smtpd_access_policy\r\n"
                     "sender=a@example.com\r\n"
                     "empty=\r\n"
                     "mixed=lf\n"
                     "inner=a\rb\r\n"
                     "twocr=x\r\r\n"
                     "\r\n";
    size_t used;
    const char *why;

    ck_assert_int_eq(parses(in, &used, &why), POL_OK);
    ck_assert_uint_eq(used, strlen(in));
    ck_assert_int_eq(R.nattrs, 6);
    ck_assert_str_eq(pol_get(&R, "request"), "smtpd_access_policy");
    ck_assert_str_eq(pol_get(&R, "sender"), "a@example.com");
    ck_assert_str_eq(pol_get(&R, "empty"), "");
    ck_assert_str_eq(pol_get(&R, "mixed"), "lf");
    /* only the one "\r" right before the "\n" goes */
    ck_assert_str_eq(pol_get(&R, "inner"), "a\rb");
    ck_assert_str_eq(pol_get(&R, "twocr"), "x\r");
    /* an LF request ended by a CRLF empty line, and the other way round */
    ck_assert_int_eq(parses("a=1\n\r\n", &used, &why), POL_OK);
    ck_assert_uint_eq(used, 6);
    ck_assert_int_eq(parses("a=1\r\n\n", &used, &why), POL_OK);
    ck_assert_uint_eq(used, 6);
    ck_assert_str_eq(pol_get(&R, "a"), "1");
    /* a "\r" at the end of what is in may be half of a "\r\n" */
    ck_assert_int_eq(parses("a=1\n\r", &used, &why), POL_NEED_MORE);
    ck_assert_int_eq(parses("a=1\nb\r", &used, &why), POL_NEED_MORE);
    ck_assert_int_eq(parses("a=1\r", &used, &why), POL_NEED_MORE);
}
END_TEST

START_TEST(repeated_names)
{
    size_t used;
    const char *why;

    ck_assert_int_eq(parses("recipient=a@x\nsize=1\nrecipient=b@x\nrecipient=\n\n", &used, &why),
                     POL_OK);
    ck_assert_int_eq(R.nattrs, 4);
    /* every instance is kept in order; pol_get answers the last */
    ck_assert_str_eq(R.attrs[0].value, "a@x");
    ck_assert_str_eq(R.attrs[2].value, "b@x");
    ck_assert_str_eq(pol_get(&R, "recipient"), "");
    ck_assert_str_eq(pol_get(&R, "size"), "1");
}
END_TEST

struct bad_case {
    const char *in;
    size_t len;         /* 0: strlen(in) */
    const char *why;
    size_t used;
};

START_TEST(bad_requests)
{
    static const char *NOEQ = "line without \"=\"", *CHAR = "bad character in attribute name (not a-z 0-9 _)",
                      *NUL = "NUL byte in request", *EMPTYNAME = "empty attribute name";
    const struct bad_case cases[] = {
        { "\n", 0, "empty request", 1 },
        { "\r\n", 0, "empty request", 2 },
        { "\nrequest=smtpd_access_policy\n\n", 0, "empty request", 1 },
        { "noequals\n\n", 0, NOEQ, 10 },
        { "a=1\nnoequals\r\nb=2\n\n", 0, NOEQ, 19 },
        { "foo\n\rx\n\n", 0, NOEQ, 8 },       /* "\rx" does not end it */
        { "=value\n\n", 0, EMPTYNAME, 8 },
        { "Request=x\n\n", 0, CHAR, 11 },
        { "a-b=x\n\n", 0, CHAR, 7 },
        { "a b=x\n\n", 0, CHAR, 7 },
        { " a=x\n\n", 0, CHAR, 6 },
        { "a.b=x\n\n", 0, CHAR, 7 },
        { "caf\xc3\xa9=x\n\n", 0, CHAR, 9 },
        { "a\rb=x\r\n\r\n", 0, CHAR, 9 },
        { "a=1\n\r\r\n", 0, CHAR, 0 },          /* "\r" is a line, not an end */
        { "a\0=x\n\n", 6, NUL, 6 },
        { "\0", 1, NUL, 0 },
        { "a=x\0y\n\n", 7, NUL, 7 },
        { "a=1\nb=\0\n", 8, NUL, 0 },
        /* an HTTP client is refused on its first line */
        { "GET / HTTP/1.1\r\nHost: policy\r\n\r\n", 0, CHAR, 32 },
        { "a=1\nGET / HTTP/1.1\r\nHost: x\r\n\r\nb=2\n\n", 0, CHAR, 31 },
        /* the end of the bad request is not in yet */
        { "a=1\nfoo\nb=2\n", 0, NOEQ, 0 },
        { "a=1\nfoo\nb=2\n\r", 0, NOEQ, 0 },
        /* judged before their line is complete: nothing could repair them */
        { "GET", 0, CHAR, 0 },
        { "=", 0, EMPTYNAME, 0 },
        { "a=1\nx\0", 6, NUL, 0 },
        { "ab\rc", 0, CHAR, 0 },
    };
    size_t used;
    const char *why;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bad_case *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->in);
        used = 99;
        ck_assert_msg(parse(c->in, len, &used, &why) == POL_BAD, "case %zu", i);
        ck_assert_msg(why && strcmp(why, c->why) == 0, "case %zu: %s", i, why ? why : "(null)");
        ck_assert_msg(used == c->used, "case %zu: used %zu", i, used);
        ck_assert_int_eq(R.nattrs, 0);
        /* every shorter start is either not judged yet or judged the same */
        for (size_t k = 0; k < len; k++) {
            const char *w = NULL;
            enum pol_status st = parse(c->in, k, &used, &w);
            ck_assert_msg(st == POL_NEED_MORE || (st == POL_BAD && strcmp(w, c->why) == 0),
                          "case %zu, first %zu bytes", i, k);
        }
    }
    /* the same faults before their newline */
    ck_assert_int_eq(parses("noequals", &used, &why), POL_NEED_MORE);
    ck_assert_int_eq(parses("noequals\r", &used, &why), POL_NEED_MORE);
    ck_assert_int_eq(parses("ab", &used, &why), POL_NEED_MORE);
    /* a good request, then a stray empty line (the caller's next parse) */
    ck_assert_int_eq(parses("a=1\n\n\n", &used, &why), POL_OK);
    ck_assert_uint_eq(used, 5);
    ck_assert_int_eq(parses("\n", &used, &why), POL_BAD);
    /* a failure after a success leaves no stale attributes */
    ck_assert_int_eq(parses("a=1\n\n", &used, &why), POL_OK);
    ck_assert_int_eq(parses("a\n\n", &used, &why), POL_BAD);
    ck_assert_int_eq(R.nattrs, 0);
    ck_assert_ptr_null(pol_get(&R, "a"));
}
END_TEST

/* in = head, pos octets of fill (cycled), the octet c, tail; its length */
static size_t octet_at(char *in, const char *head, const char *fill, int pos, int c, const char *tail)
{
    size_t n = strlen(head), fl = strlen(fill), tl = strlen(tail);

    memcpy(in, head, n);
    for (int k = 0; k < pos; k++)
        in[n++] = fill[k % fl];
    in[n++] = (char)c;
    memcpy(in + n, tail, tl);
    return n + tl;
}

/* The places an octet is put at below: the first twenty, and those around
 * the end of the scan's first 64-octet window (a name from octet 0, a
 * value from octet 2). */
static const int octet_places[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                                    62, 63, 64, 65, 66 };
#define N_OCTET_PLACES (sizeof(octet_places) / sizeof(octet_places[0]))

/* Every octet at each of octet_places in a name: each is judged by the
 * rule (a-z 0-9 _), written here in the rule's own terms, on the fast path
 * (a whole request at once). */
START_TEST(name_octets)
{
    char in[128];
    size_t used;
    const char *why;

    for (size_t j = 0; j < N_OCTET_PLACES; j++) {
        int pos = octet_places[j];
        for (int c = 0; c < 256; c++) {
            size_t n = octet_at(in, "", "a0_z9m", pos, c, "bbbbb=v\n\n");
            int name = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
            enum pol_status st = parse(in, n, &used, &why);
            if (name || (c == '=' && pos > 0)) {
                ck_assert_msg(st == POL_OK, "octet %d at %d: %s", c, pos, why ? why : "");
                ck_assert_int_eq(R.nattrs, 1);
                ck_assert_uint_eq(strlen(R.attrs[0].name), name ? (size_t)pos + 6 : (size_t)pos);
                ck_assert_str_eq(R.attrs[0].value, name ? "v" : "bbbbb=v");
                continue;
            }
            ck_assert_msg(st == POL_BAD, "octet %d at %d: %d", c, pos, st);
            const char *want = c == 0 ? "NUL byte in request"
                             : c == '=' ? "empty attribute name"
                             : c == '\n' && pos == 0 ? "empty request"
                             : c == '\n' ? "line without \"=\""
                             : "bad character in attribute name (not a-z 0-9 _)";
            ck_assert_msg(!strcmp(why, want), "octet %d at %d: %s", c, pos, why);
        }
    }
}
END_TEST

/* Every octet at each of octet_places in a value: a value
 * ends at "\n", a NUL anywhere is refused, and every other octet (a "\r"
 * not before the "\n", "=", 8-bit octets) is part of it. */
START_TEST(value_octets)
{
    char in[128];
    size_t used;
    const char *why;

    for (size_t j = 0; j < N_OCTET_PLACES; j++) {
        int pos = octet_places[j];
        for (int c = 0; c < 256; c++) {
            size_t n = octet_at(in, "n=", "x=\r\xc3\xa9 9", pos, c, "bbbbbbbbbb\n\n");
            enum pol_status st = parse(in, n, &used, &why);
            if (c == 0 || c == '\n') {
                ck_assert_msg(st == POL_BAD, "octet %d at %d: %d", c, pos, st);
                ck_assert_str_eq(why, c ? "line without \"=\"" : "NUL byte in request");
                continue;
            }
            ck_assert_msg(st == POL_OK, "octet %d at %d: %s", c, pos, why ? why : "");
            ck_assert_int_eq(R.nattrs, 1);
            ck_assert_uint_eq(used, n);
            const char *v = pol_get(&R, "n");
            ck_assert_ptr_nonnull(v);
            ck_assert_uint_eq(strlen(v), (size_t)pos + 11);
            ck_assert_int_eq((unsigned char)v[pos], c);
            ck_assert_int_eq(memcmp(v, in + 2, (size_t)pos + 11), 0);
        }
    }
}
END_TEST

START_TEST(too_long_by_size)
{
    size_t used;
    const char *why;
    char *s;

    /* exactly at the limit, LF and CRLF */
    s = filled(POL_MAX_REQUEST, "\n\n");
    ck_assert_int_eq(parse(s, POL_MAX_REQUEST, &used, &why), POL_OK);
    ck_assert_uint_eq(used, POL_MAX_REQUEST);
    ck_assert_uint_eq(strlen(pol_get(&R, "v")), POL_MAX_REQUEST - 4);
    ck_assert_int_eq(parse(s, POL_MAX_REQUEST - 1, &used, &why), POL_NEED_MORE);
    free(s);
    s = filled(POL_MAX_REQUEST, "\r\n\r\n");
    ck_assert_int_eq(parse(s, POL_MAX_REQUEST, &used, &why), POL_OK);
    ck_assert_uint_eq(used, POL_MAX_REQUEST);
    ck_assert_uint_eq(strlen(pol_get(&R, "v")), POL_MAX_REQUEST - 6);
    free(s);

    /* one byte over: its end would be byte POL_MAX_REQUEST + 1 */
    s = filled(POL_MAX_REQUEST + 1, "\n\n");
    ck_assert_int_eq(parse(s, POL_MAX_REQUEST - 1, &used, &why), POL_NEED_MORE);
    ck_assert_int_eq(parse(s, POL_MAX_REQUEST, &used, &why), POL_TOO_LONG);
    ck_assert_str_eq(why, "request longer than 32768 bytes");
    ck_assert_uint_eq(used, 0);
    ck_assert_int_eq(R.nattrs, 0);
    ck_assert_int_eq(parse(s, POL_MAX_REQUEST + 1, &used, &why), POL_TOO_LONG);
    free(s);
    s = filled(POL_MAX_REQUEST + 1, "\r\n\r\n");
    ck_assert_int_eq(parse(s, POL_MAX_REQUEST + 1, &used, &why), POL_TOO_LONG);
    free(s);

    /* many short lines add up the same */
    struct buf b;
    buf_init(&b);
    while (b.len < POL_MAX_REQUEST) {   /* 33 lines: the count is not what trips */
        buf_adds(&b, "a=");
        for (int i = 0; i < 997; i++)
            buf_addc(&b, 'x');
        buf_addc(&b, '\n');
    }
    ck_assert_int_eq(parse(b.data, b.len, &used, &why), POL_TOO_LONG);
    ck_assert_str_eq(why, "request longer than 32768 bytes");
    buf_free(&b);

    /* a fault inside the limit is reported as such, one past it is not looked at */
    s = filled(POL_MAX_REQUEST + 10, "\n\n");
    s[POL_MAX_REQUEST - 5] = '\n';
    s[POL_MAX_REQUEST - 4] = '-';
    ck_assert_int_eq(parse(s, POL_MAX_REQUEST + 10, &used, &why), POL_BAD);
    ck_assert_str_eq(why, "bad character in attribute name (not a-z 0-9 _)");
    s[POL_MAX_REQUEST - 4] = 'v';
    s[POL_MAX_REQUEST] = '-';
    ck_assert_int_eq(parse(s, POL_MAX_REQUEST + 10, &used, &why), POL_TOO_LONG);
    free(s);
}
END_TEST

START_TEST(too_long_by_count)
{
    struct buf b;
    size_t used;
    const char *why;
    buf_init(&b);

    many(POL_MAX_ATTRS, &b);
    ck_assert_int_eq(parse(b.data, b.len, &used, &why), POL_OK);
    ck_assert_uint_eq(used, b.len);
    ck_assert_int_eq(R.nattrs, POL_MAX_ATTRS);
    ck_assert_str_eq(pol_get(&R, "a000"), "0");
    ck_assert_str_eq(pol_get(&R, "a127"), "127");

    many(POL_MAX_ATTRS + 1, &b);
    ck_assert_int_eq(parse(b.data, b.len, &used, &why), POL_TOO_LONG);
    ck_assert_str_eq(why, "more than 128 attributes");
    ck_assert_uint_eq(used, b.len);
    ck_assert_int_eq(R.nattrs, 0);
    /* without its end; and the 129th line not complete yet */
    ck_assert_int_eq(parse(b.data, b.len - 1, &used, &why), POL_TOO_LONG);
    ck_assert_uint_eq(used, 0);
    ck_assert_int_eq(parse(b.data, b.len - 2, &used, &why), POL_NEED_MORE);

    /* a bad 129th line is bad, not one too many */
    many(POL_MAX_ATTRS, &b);
    buf_truncate(&b, b.len - 1);
    buf_adds(&b, "oops\n\n");
    ck_assert_int_eq(parse(b.data, b.len, &used, &why), POL_BAD);
    ck_assert_str_eq(why, "line without \"=\"");
    buf_free(&b);
}
END_TEST

/* A reading of the rules written for this test alone, octet by octet:
 * the verdict on in[0..len) (len well below POL_MAX_REQUEST), *used, and
 * each attribute's name and value as offsets. */
struct ref_attr {
    size_t name, name_len, value, value_len;
};

static enum pol_status ref_parse(const char *in, size_t len, size_t *used, struct ref_attr *a, int *n)
{
    size_t s = 0;
    *n = 0;
    *used = 0;
    for (;;) {
        const char *nl = memchr(in + s, '\n', len - s);
        size_t e, c;
        for (size_t i = s; i < (nl ? (size_t)(nl - in) : len); i++)
            if (in[i] == 0)
                return POL_BAD;
        if (nl == NULL)
            return POL_NEED_MORE;
        e = (size_t)(nl - in);
        c = e > s && in[e - 1] == '\r' ? e - 1 : e;
        if (c == s) {
            *used = e + 1;
            return *n ? POL_OK : POL_BAD;
        }
        size_t q = s;
        while (q < c && ((in[q] >= 'a' && in[q] <= 'z') || (in[q] >= '0' && in[q] <= '9') || in[q] == '_'))
            q++;
        if (q == s || q == c || in[q] != '=' || *n == POL_MAX_ATTRS)
            return POL_BAD;
        a[*n].name = s;
        a[*n].name_len = q - s;
        a[*n].value = q + 1;
        a[*n].value_len = c - q - 1;
        (*n)++;
        s = e + 1;
    }
}

/* Requests whose lines end, split and go wrong at every place relative to
 * the parser's 64-octet words (lines of 1-140 octets, from a fixed seed),
 * whole and with one octet changed: the verdict, the end and the
 * attributes are the reference's, in one piece and trickling in. */
START_TEST(word_edges)
{
    static const char swaps[] = { '=', '\n', 'A', '\r', 0, '-', 'a', '_' };
    struct buf b;
    struct ref_attr ra[POL_MAX_ATTRS];
    unsigned seed = 12345;
    buf_init(&b);
    for (int round = 0; round < 600; round++) {
        buf_reset(&b);
        int lines = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 9;
        for (int l = 0; l < lines; l++) {
            int nlen = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 70;
            int vlen = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 140;
            for (int k = 0; k < nlen; k++)
                buf_addc(&b, "abcdefghijklmnopqrstuvwxyz0123456789_"[(k * 7 + l) % 37]);
            buf_addc(&b, '=');
            for (int k = 0; k < vlen; k++)
                buf_addc(&b, " =x:Y@.+"[(k + l) % 8]);
            buf_addc(&b, '\n');
        }
        buf_addc(&b, '\n');
        size_t whole = b.len;
        buf_adds(&b, "next=1\n\n");   /* a request behind it, as pipelined */
        for (int v = 0; v < 1 + (int)sizeof(swaps); v++) {
            char *in = malloc(b.len);
            ck_assert_ptr_nonnull(in);
            memcpy(in, b.data, b.len);
            if (v > 0)      /* one octet of the first request changed */
                in[((seed = seed * 1103515245u + 12345u) >> 16) % whole] = swaps[v - 1];
            size_t used, rused;
            int rn;
            const char *why;
            enum pol_status want = ref_parse(in, b.len, &rused, ra, &rn);
            enum pol_status st = parse(in, b.len, &used, &why);
            ck_assert_msg(st == want, "round %d variant %d: status %d, expected %d", round, v, st, want);
            if (st == POL_OK) {
                ck_assert_uint_eq(used, rused);
                ck_assert_int_eq(R.nattrs, rn);
                for (int i = 0; i < rn; i++) {
                    ck_assert_uint_eq(strlen(R.attrs[i].name), ra[i].name_len);
                    ck_assert(memcmp(R.attrs[i].name, in + ra[i].name, ra[i].name_len) == 0);
                    ck_assert_uint_eq(strlen(R.attrs[i].value), ra[i].value_len);
                    ck_assert(memcmp(R.attrs[i].value, in + ra[i].value, ra[i].value_len) == 0);
                }
            }
            free(in);
        }
    }
    buf_free(&b);
}
END_TEST

START_TEST(reply)
{
    struct buf out;
    buf_init(&out);
    pol_reply(&out, "DUNNO");
    ck_assert_str_eq(out.data, "action=DUNNO\n\n");
    pol_reply(&out, "REJECT 5.7.1 no\r\naction=OK\n\nbad\r");
    ck_assert_str_eq(out.data, "action=DUNNO\n\naction=REJECT 5.7.1 no  action=OK  bad \n\n");
    buf_reset(&out);
    pol_reply(&out, "");
    ck_assert_str_eq(out.data, "action=\n\n");
    buf_reset(&out);
    pol_reply(&out, "defer_if_permit Service temporarily unavailable");
    ck_assert_uint_eq(out.len, strlen("action=defer_if_permit Service temporarily unavailable\n\n"));
    buf_free(&out);
}
END_TEST

START_TEST(init_free)
{
    struct pol_req r;
    size_t used;
    const char *why;

    pol_req_init(&r);
    ck_assert_ptr_null(pol_get(&r, "request"));
    pol_req_free(&r);   /* nothing allocated yet */
    ck_assert_int_eq(pol_parse(&r, "a=1\n\n", 5, &used, &why), POL_OK);
    /* a bigger request grows the buffer */
    char *big = filled(5000, "\n\n");
    ck_assert_int_eq(pol_parse(&r, big, 5000, &used, &why), POL_OK);
    ck_assert_uint_ge(r.text_size, 5000);
    ck_assert_uint_eq(strlen(pol_get(&r, "v")), 4996);
    free(big);
    ck_assert_int_eq(pol_parse(&r, EOM, strlen(EOM), &used, &why), POL_OK);
    size_t cap = r.text_size;
    /* a smaller request reuses the buffer */
    ck_assert_int_eq(pol_parse(&r, "a=1\n\n", 5, &used, &why), POL_OK);
    ck_assert_uint_eq(r.text_size, cap);
    pol_req_free(&r);
    ck_assert_ptr_null(r.text);
    ck_assert_uint_eq(r.text_size, 0);
    pol_req_free(&r);
}
END_TEST

Suite *polproto_suite(void)
{
    Suite *s = suite_create("polproto");
    TCase *tc = tcase_create("core");
    /* the octet sweeps parse every input whole and a byte at a time: 1-2 s
     * each under ASan alone, too close to check's 4 s on a busy machine */
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, real_requests);
    tcase_add_test(tc, known_names);
    tcase_add_test(tc, small_forms);
    tcase_add_test(tc, back_to_back);
    tcase_add_test(tc, byte_at_a_time);
    tcase_add_test(tc, pieces);
    tcase_add_test(tc, linear_trickle);
    tcase_add_test(tc, resume_rules);
    tcase_add_test(tc, crlf);
    tcase_add_test(tc, repeated_names);
    tcase_add_test(tc, bad_requests);
    tcase_add_test(tc, name_octets);
    tcase_add_test(tc, value_octets);
    tcase_add_test(tc, too_long_by_size);
    tcase_add_test(tc, too_long_by_count);
    tcase_add_test(tc, word_edges);
    tcase_add_test(tc, reply);
    tcase_add_test(tc, init_free);
    suite_add_tcase(s, tc);
    return s;
}
