/* test_policy.c - the policy checks answered from memory. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "tests.h"

static struct dir *D;
static struct pol_stats stats;
static struct pol_req req;
static int logged;

static void logit(void *arg, int warn, const char *text)
{
    (void)arg;
    (void)warn;
    (void)text;
    logged++;
}

static void setup(void)
{
    D = fixture_dir();
    struct dir_mailbox t = *dir_mailbox_get(D, "bob@example.com", 15);
    t.id = 50;
    t.address = "mute@example.com";
    t.maildir = "example.com/mute.50/";
    t.may_send = 0;
    dir_put(D, DIR_MAILBOX, dir_mailbox_new(&t));
    memset(&stats, 0, sizeof(stats));
    pol_req_init(&req);
    logged = 0;
}

static void teardown(void)
{
    pol_req_free(&req);
    dir_free(D);
}

/* One request from attribute lines; returns the action. */
static const char *ask_dir(const struct dir *d, const char *attrs)
{
    static struct buf out;
    static char action[800];
    char in[4096];
    struct pol_env env = { d, "+", &stats, &req, logit, NULL };
    int n = snprintf(in, sizeof(in), "request=smtpd_access_policy\n%s\n", attrs);
    buf_reset(&out);
    ssize_t used = pol_request(&env, in, (size_t)n, &out);
    ck_assert_int_eq(used, n);
    ck_assert(out.len > 9 && !strncmp(out.data, "action=", 7) && !strcmp(out.data + out.len - 2, "\n\n"));
    snprintf(action, sizeof(action), "%.*s", (int)(out.len - 9), out.data + 7);
    return action;
}

static const char *ask(const char *attrs) { return ask_dir(D, attrs); }

START_TEST(outbound)
{
    ck_assert_str_eq(ask("protocol_state=RCPT\nsasl_username=Alice@Example.com\nsender=alice@example.com\n"
                         "recipient=x@remote.example\n"), "DUNNO");
    /* its own address with an extension, an alias it receives, an extra sender address */
    ck_assert_str_eq(ask("protocol_state=RCPT\nsasl_username=alice@example.com\nsender=ALICE+lists@example.com\n"), "DUNNO");
    ck_assert_str_eq(ask("protocol_state=RCPT\nsasl_username=alice@example.com\nsender=info@example.com\n"), "DUNNO");
    ck_assert_str_eq(ask("protocol_state=RCPT\nsasl_username=bob@example.com\nsender=boss@example.com\n"), "DUNNO");
    /* the null sender is not checked */
    ck_assert_str_eq(ask("protocol_state=RCPT\nsasl_username=bob@example.com\nsender=\n"), "DUNNO");
    ck_assert_str_eq(ask("protocol_state=END-OF-MESSAGE\nsasl_username=bob@example.com\nsender=alice@example.com\n"),
                     "553 5.7.1 Sender address <alice@example.com> is not owned by user bob@example.com");
    ck_assert_str_eq(ask("protocol_state=RCPT\nsasl_username=bob@example.com\nsender=someone@remote.example\n"),
                     "553 5.7.1 Sender address <someone@remote.example> is not owned by user bob@example.com");
    ck_assert_str_eq(ask("protocol_state=RCPT\nsasl_username=carol@example.com\nsender=carol@example.com\n"),
                     "554 5.7.1 Account <carol@example.com> is disabled");
    ck_assert_str_eq(ask("protocol_state=RCPT\nsasl_username=dave@off.example\nsender=dave@off.example\n"),
                     "554 5.7.1 Account <dave@off.example> is disabled");
    ck_assert_str_eq(ask("protocol_state=RCPT\nsasl_username=mute@example.com\nsender=mute@example.com\n"),
                     "554 5.7.1 Account <mute@example.com> may not send mail");
    ck_assert_str_eq(ask("protocol_state=RCPT\nsasl_username=ghost\nsender=ghost@example.com\n"),
                     "554 5.7.1 Login <ghost> has no mailbox here");
    /* what a client typed ends up in a reply text: printable only */
    ck_assert_str_eq(ask("protocol_state=RCPT\nsasl_username=gh ost\x01@x\nsender=\n"),
                     "554 5.7.1 Login <gh?ost?@x> has no mailbox here");
    ck_assert_uint_eq(stats.requests, 12);
    ck_assert_uint_eq(stats.decisions[POL_DUNNO], 5);
    ck_assert_uint_eq(stats.decisions[POL_REJECT_SENDER_NOT_OWNED], 2);
    ck_assert_uint_eq(stats.decisions[POL_REJECT_DISABLED], 2);
    ck_assert_uint_eq(stats.decisions[POL_REJECT_MAY_NOT_SEND], 1);
    ck_assert_uint_eq(stats.decisions[POL_REJECT_UNKNOWN_LOGIN], 2);
    ck_assert_int_eq(logged, 7);
}
END_TEST

START_TEST(inbound)
{
    ck_assert_str_eq(ask("protocol_state=RCPT\nsender=x@remote.example\nrecipient=alice@example.com\n"), "DUNNO");
    ck_assert_str_eq(ask("protocol_state=RCPT\nsender=\nrecipient=norecv+tag@Example.com\n"),
                     "550 5.2.1 Mailbox unavailable");
    ck_assert_str_eq(ask("protocol_state=RCPT\nrecipient=carol@example.com\n"),
                     "550 5.2.1 Mailbox unavailable");
    /* not a mailbox here, an alias, a disabled domain: the maps decide */
    ck_assert_str_eq(ask("protocol_state=RCPT\nrecipient=nobody@example.com\n"), "DUNNO");
    ck_assert_str_eq(ask("protocol_state=RCPT\nrecipient=info@example.com\n"), "DUNNO");
    ck_assert_str_eq(ask("protocol_state=RCPT\nrecipient=dave@off.example\n"), "DUNNO");
    ck_assert_str_eq(ask("protocol_state=RCPT\nrecipient=x@remote.example\n"), "DUNNO");
    /* only at RCPT */
    ck_assert_str_eq(ask("protocol_state=END-OF-MESSAGE\nrecipient=norecv@example.com\n"), "DUNNO");
    ck_assert_uint_eq(stats.decisions[POL_REJECT_RCPT_UNAVAILABLE], 2);
}
END_TEST

START_TEST(incomplete_and_not_loaded)
{
    struct buf out;
    struct pol_env env = { D, "+", &stats, &req, logit, NULL };
    buf_init(&out);
    /* a request without what the checks need: DUNNO and a log line */
    const char *in = "sasl_username=bob@example.com\n\n";
    ck_assert_int_eq(pol_request(&env, in, strlen(in), &out), (ssize_t)strlen(in));
    ck_assert_str_eq(out.data, "action=DUNNO\n\n");
    ck_assert_uint_eq(stats.incomplete, 1);
    ck_assert_int_eq(logged, 1);
    /* not loaded yet: a temporary answer, never a rejection */
    ck_assert_str_eq(ask_dir(NULL, "protocol_state=RCPT\nsasl_username=carol@example.com\n"),
                     "DEFER_IF_PERMIT 4.3.0 mail directory not loaded yet");
    ck_assert_uint_eq(stats.decisions[POL_DEFER_NOT_LOADED], 1);
    buf_free(&out);
}
END_TEST

START_TEST(stream)
{
    struct buf out;
    struct pol_env env = { D, "+", &stats, &req, logit, NULL };
    const char *two = "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=carol@example.com\n\n"
                      "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=alice@example.com\n\n";
    size_t len = strlen(two), pos = 0;
    buf_init(&out);
    /* partial: nothing yet */
    ck_assert_int_eq(pol_request(&env, two, 30, &out), 0);
    ck_assert_uint_eq(out.len, 0);
    while (pos < len) {
        ssize_t n = pol_request(&env, two + pos, len - pos, &out);
        ck_assert_int_gt(n, 0);
        pos += (size_t)n;
    }
    ck_assert_str_eq(out.data, "action=550 5.2.1 Mailbox unavailable\n\n"
                               "action=DUNNO\n\n");
    /* garbage: no answer, the connection is closed, counted and logged */
    buf_reset(&out);
    ck_assert_int_lt(pol_request(&env, "GET / HTTP/1.0\r\n\r\n", 18, &out), 0);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_uint_eq(stats.malformed, 1);
    ck_assert_int_eq(logged, 2);
    buf_free(&out);
}
END_TEST

Suite *policy_suite(void)
{
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("policy");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, outbound);
    tcase_add_test(tc, inbound);
    tcase_add_test(tc, incomplete_and_not_loaded);
    tcase_add_test(tc, stream);
    suite_add_tcase(s, tc);
    return s;
}
