/* test_roster_proto.c - the Dovecot roster driver's side of the auth
 * protocol: requests as the daemon reads them, answers as it writes them. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../dovecot-plugin/roster-proto.h"
#include "buf.h"
#include "codec.h"
#include "tests.h"

/* parse a copy of s (the parser writes into its line) */
static enum roster_parse_error parse(const char *s, struct roster_answer *ans, char **keep)
{
    size_t len = strlen(s);
    *keep = malloc(len + 1);
    memcpy(*keep, s, len + 1);
    return roster_parse_answer(*keep, len, ans);
}

START_TEST(encode_requests)
{
    char out[256];
    const char *pass[] = { "Alice@Example.COM", "imap" };
    const char *master[] = { "webmail", "alice@example.com", "imap" };

    ck_assert_int_eq(roster_encode_request(out, sizeof(out), 1, ROSTER_CMD_PASS, pass, 2), 30);
    ck_assert_str_eq(out, "1\tPASS\tAlice@Example.COM\timap\n");
    ck_assert_int_gt(roster_encode_request(out, sizeof(out), 4294967295u, ROSTER_CMD_MASTER, master, 3), 0);
    ck_assert_str_eq(out, "4294967295\tMASTER\twebmail\talice@example.com\timap\n");
    ck_assert_int_gt(roster_encode_request(out, sizeof(out), 10, ROSTER_CMD_USER, pass, 2), 0);
    ck_assert_str_eq(out, "10\tUSER\tAlice@Example.COM\timap\n");
    ck_assert_int_eq(roster_encode_request(out, sizeof(out), 7, ROSTER_CMD_LIST, NULL, 0), 7);
    ck_assert_str_eq(out, "7\tLIST\n");
}
END_TEST

START_TEST(encode_escapes)
{
    char out[256];
    const char *args[] = { "a\tb\nc\rd\001e", "im\tap" };
    ck_assert_int_gt(roster_encode_request(out, sizeof(out), 2, ROSTER_CMD_PASS, args, 2), 0);
    ck_assert_str_eq(out, "2\tPASS\ta\001tb\001nc\001rd\0011e\tim\001tap\n");
    /* an apostrophe and UTF-8 go as they are */
    const char *utf[] = { "o'hara@b\xc3\xbc" "cher.example", "imap" };
    ck_assert_int_gt(roster_encode_request(out, sizeof(out), 3, ROSTER_CMD_PASS, utf, 2), 0);
    ck_assert_str_eq(out, "3\tPASS\to'hara@b\xc3\xbc" "cher.example\timap\n");
}
END_TEST

START_TEST(encode_refuses)
{
    char out[64];
    const char *empty[] = { "", "imap" };
    const char *nul[] = { NULL, "imap" };
    const char *ok[] = { "a@b", "imap" };
    ck_assert_int_eq(roster_encode_request(out, sizeof(out), 1, ROSTER_CMD_PASS, empty, 2), -1);
    ck_assert_int_eq(roster_encode_request(out, sizeof(out), 1, ROSTER_CMD_PASS, nul, 2), -1);
    ck_assert_int_eq(roster_encode_request(out, sizeof(out), 0, ROSTER_CMD_PASS, ok, 2), -1);
    ck_assert_int_eq(roster_encode_request(out, sizeof(out), 1, ROSTER_CMD_PASS, ok, 1), -1);
    ck_assert_int_eq(roster_encode_request(out, sizeof(out), 1, ROSTER_CMD_MASTER, ok, 2), -1);
    ck_assert_int_eq(roster_encode_request(out, 8, 1, ROSTER_CMD_PASS, ok, 2), -1);
    /* exactly fitting: "1\tPASS\ta@b\timap\n" is 16 octets + NUL */
    ck_assert_int_eq(roster_encode_request(out, 17, 1, ROSTER_CMD_PASS, ok, 2), 16);
    ck_assert_int_eq(roster_encode_request(out, 16, 1, ROSTER_CMD_PASS, ok, 2), -1);
}
END_TEST

/* The daemon's limit: 8192 octets with the LF; one more is refused. */
START_TEST(encode_limit)
{
    static char big[9000], out[9000];
    const char *args[] = { big, "imap" };
    size_t fixed = strlen("1\tPASS\t\timap\n");

    memset(big, 'a', ROSTER_REQUEST_MAX - fixed);
    big[ROSTER_REQUEST_MAX - fixed] = 0;
    ck_assert_int_eq(roster_encode_request(out, sizeof(out), 1, ROSTER_CMD_PASS, args, 2), ROSTER_REQUEST_MAX);
    big[ROSTER_REQUEST_MAX - fixed] = 'a';
    big[ROSTER_REQUEST_MAX - fixed + 1] = 0;
    ck_assert_int_eq(roster_encode_request(out, sizeof(out), 1, ROSTER_CMD_PASS, args, 2), -1);
    /* escaping counts: 0x01 doubles */
    memset(big, '\001', ROSTER_REQUEST_MAX / 2);
    big[ROSTER_REQUEST_MAX / 2] = 0;
    ck_assert_int_eq(roster_encode_request(out, sizeof(out), 1, ROSTER_CMD_PASS, args, 2), -1);
}
END_TEST

/* What we encode, the daemon's own decoder gives back (lib/codec.c). */
START_TEST(escape_matches_daemon)
{
    char raw[256], enc[600];
    for (int i = 0; i < 256; i++)
        raw[i] = (char)i;
    long n = roster_tabescape(enc, sizeof(enc), raw, sizeof(raw));
    ck_assert_int_gt(n, 0);
    struct buf b;
    buf_init(&b);
    tabesc_encode(&b, raw, sizeof(raw));
    ck_assert_uint_eq(b.len, (size_t)n);
    ck_assert_mem_eq(b.data, enc, (size_t)n);
    buf_free(&b);
    ck_assert_int_eq(tabesc_decode(enc, (size_t)n), 256);
    ck_assert_mem_eq(enc, raw, 256);
    ck_assert_int_eq(roster_tabescape(enc, 3, "\t\t", 2), -1);
}
END_TEST

START_TEST(parse_pass_ok)
{
    struct roster_answer a;
    char *k;
    ck_assert_int_eq(parse("1\tOK\tuser=alice@example.com\tpassword={CRYPT}$y$j9T$abc", &a, &k), ROSTER_PARSE_OK);
    ck_assert_uint_eq(a.id, 1);
    ck_assert_int_eq(a.verdict, ROSTER_OK);
    ck_assert_uint_eq(a.nfields, 2);
    ck_assert_str_eq(a.fields[0].key, "user");
    ck_assert_str_eq(roster_answer_field(&a, "user"), "alice@example.com");
    ck_assert_str_eq(roster_answer_field(&a, "password"), "{CRYPT}$y$j9T$abc");
    ck_assert_ptr_null(roster_answer_field(&a, "home"));
    free(k);
}
END_TEST

START_TEST(parse_verdicts)
{
    struct roster_answer a;
    char *k;
    ck_assert_int_eq(parse("3\tNOTFOUND", &a, &k), ROSTER_PARSE_OK);
    ck_assert_int_eq(a.verdict, ROSTER_NOTFOUND);
    ck_assert_uint_eq(a.nfields, 0);
    free(k);
    ck_assert_int_eq(parse("5\tDISABLED\treason=mailbox disabled: abuse", &a, &k), ROSTER_PARSE_OK);
    ck_assert_int_eq(a.verdict, ROSTER_DISABLED);
    ck_assert_str_eq(roster_answer_field(&a, "reason"), "mailbox disabled: abuse");
    free(k);
    ck_assert_int_eq(parse("4\tDENIED\treason=service pop3 not allowed", &a, &k), ROSTER_PARSE_OK);
    ck_assert_int_eq(a.verdict, ROSTER_DENIED);
    free(k);
    ck_assert_int_eq(parse("1\tFAIL\treason=directory not loaded yet", &a, &k), ROSTER_PARSE_OK);
    ck_assert_int_eq(a.verdict, ROSTER_FAIL);
    free(k);
    ck_assert_int_eq(parse("0\tERROR\treason=request line too long", &a, &k), ROSTER_PARSE_OK);
    ck_assert_int_eq(a.verdict, ROSTER_ERROR);
    ck_assert_uint_eq(a.id, 0);
    free(k);
    ck_assert_int_eq(parse("17\tROW\to'hara@example.com", &a, &k), ROSTER_PARSE_OK);
    ck_assert_int_eq(a.verdict, ROSTER_ROW);
    ck_assert_str_eq(a.row_user, "o'hara@example.com");
    free(k);
    ck_assert_int_eq(parse("17\tEND", &a, &k), ROSTER_PARSE_OK);
    ck_assert_int_eq(a.verdict, ROSTER_END);
    free(k);
    ck_assert_int_eq(parse("VERSION\t1\t0", &a, &k), ROSTER_PARSE_OK);
    ck_assert_int_eq(a.verdict, ROSTER_VERSION);
    ck_assert_uint_eq(a.version_major, 1);
    free(k);
}
END_TEST

START_TEST(parse_userdb_escaped)
{
    struct roster_answer a;
    char *k;
    ck_assert_int_eq(parse("14\tOK\tuser=eve@example.com\thome=/home/e\001tve\tmail=maildir:~/Mail\t"
                           "uid=7001\tgid=7002\tquota_rule=*:storage=52428800B\tquota_rule2=*:messages=100\tempty=",
                           &a, &k), ROSTER_PARSE_OK);
    ck_assert_uint_eq(a.nfields, 8);
    ck_assert_str_eq(roster_answer_field(&a, "home"), "/home/e\tve");
    ck_assert_str_eq(roster_answer_field(&a, "quota_rule"), "*:storage=52428800B");
    ck_assert_str_eq(roster_answer_field(&a, "empty"), "");
    free(k);
}
END_TEST

START_TEST(parse_refuses)
{
    struct roster_answer a;
    char *k;
    static const struct { const char *line; enum roster_parse_error e; } bad[] = {
        { "", ROSTER_PARSE_BAD_ID },
        { "x\tOK", ROSTER_PARSE_BAD_ID },
        { "01\tOK", ROSTER_PARSE_BAD_ID },
        { "4294967296\tOK", ROSTER_PARSE_BAD_ID },
        { "-1\tOK", ROSTER_PARSE_BAD_ID },
        { "0\tOK", ROSTER_PARSE_BAD_ID },
        { "0\tEND", ROSTER_PARSE_BAD_ID },
        { "0\tROW\ta", ROSTER_PARSE_BAD_ID },
        { "1", ROSTER_PARSE_BAD_VERDICT },
        { "1\tok", ROSTER_PARSE_BAD_VERDICT },
        { "1\tVERSION", ROSTER_PARSE_BAD_VERDICT },
        { "1\tOK\tnovalue", ROSTER_PARSE_BAD_FIELD },
        { "1\tOK\t=v", ROSTER_PARSE_BAD_FIELD },
        { "1\tOK\tuser=a\001", ROSTER_PARSE_BAD_ESCAPE },
        { "1\tOK\tuser=a\001x", ROSTER_PARSE_BAD_ESCAPE },
        { "1\tROW", ROSTER_PARSE_BAD_ARITY },
        { "1\tROW\t", ROSTER_PARSE_BAD_ARITY },
        { "1\tROW\ta\tb", ROSTER_PARSE_BAD_ARITY },
        { "1\tEND\tx", ROSTER_PARSE_BAD_ARITY },
        { "VERSION\t1", ROSTER_PARSE_BAD_ARITY },
        { "VERSION\tx\t0", ROSTER_PARSE_BAD_FIELD },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum roster_parse_error e = parse(bad[i].line, &a, &k);
        ck_assert_msg(e == bad[i].e, "line %zu: got %d want %d", i, e, bad[i].e);
        ck_assert_str_ne(roster_parse_error_str(e), "?");
        free(k);
    }
    char nul[] = "1\tOK\tuser=a\0b";
    ck_assert_int_eq(roster_parse_answer(nul, sizeof(nul) - 1, &a), ROSTER_PARSE_NUL);
}
END_TEST

START_TEST(parse_bounds)
{
    struct roster_answer a;
    static char line[ROSTER_LINE_MAX + 16];
    size_t n;

    /* 64 fields pass, 65 do not */
    n = (size_t)snprintf(line, sizeof(line), "1\tOK");
    for (int i = 0; i < ROSTER_FIELDS_MAX; i++)
        n += (size_t)snprintf(line + n, sizeof(line) - n, "\tk%d=v", i);
    char *copy = strdup(line);
    ck_assert_int_eq(roster_parse_answer(copy, n, &a), ROSTER_PARSE_OK);
    ck_assert_uint_eq(a.nfields, ROSTER_FIELDS_MAX);
    ck_assert_str_eq(a.fields[63].key, "k63");
    free(copy);
    n += (size_t)snprintf(line + n, sizeof(line) - n, "\tk64=v");
    ck_assert_int_eq(roster_parse_answer(line, n, &a), ROSTER_PARSE_TOO_MANY_FIELDS);
    /* 8192 octets pass, 8193 do not */
    memset(line, 'a', sizeof(line));
    memcpy(line, "1\tOK\tk=", 7);
    line[ROSTER_LINE_MAX] = 0;
    ck_assert_int_eq(roster_parse_answer(line, ROSTER_LINE_MAX, &a), ROSTER_PARSE_OK);
    ck_assert_uint_eq(strlen(roster_answer_field(&a, "k")), ROSTER_LINE_MAX - 7);
    ck_assert_int_eq(roster_parse_answer(line, ROSTER_LINE_MAX + 1, &a), ROSTER_PARSE_TOO_LONG);
    ck_assert_str_eq(roster_verdict_name(ROSTER_DENIED), "DENIED");
}
END_TEST

Suite *roster_proto_suite(void)
{
    Suite *s = suite_create("roster_proto");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, encode_requests);
    tcase_add_test(tc, encode_escapes);
    tcase_add_test(tc, encode_refuses);
    tcase_add_test(tc, encode_limit);
    tcase_add_test(tc, escape_matches_daemon);
    tcase_add_test(tc, parse_pass_ok);
    tcase_add_test(tc, parse_verdicts);
    tcase_add_test(tc, parse_userdb_escaped);
    tcase_add_test(tc, parse_refuses);
    tcase_add_test(tc, parse_bounds);
    suite_add_tcase(s, tc);
    return s;
}
