/* test_policy.c - the policy checks answered from memory. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "mem.h"
#include "policy.h"
#include "proto.h"
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
    /* suspended: held, not refused (and distinct from may_send = 0) */
    t.id = 51;
    t.address = "susp@example.com";
    t.maildir = "example.com/susp.51/";
    t.may_send = 1;
    t.send_suspended = 1;
    t.suspended_reason = "3 sending-limit refusals within 3600 s";
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
    struct pol_env env = { d, "+", &stats, &req, logit, NULL, NULL, NULL, 0, NULL, 0, NULL };
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
    ck_assert_str_eq(ask("protocol_state=RCPT\nsasl_username=susp@example.com\nsender=susp@example.com\n"),
                     "HOLD sending suspended for <susp@example.com>: 3 sending-limit refusals within 3600 s");
    ck_assert_str_eq(ask("protocol_state=RCPT\nsasl_username=mute@example.com\nsender=mute@example.com\n"),
                     "554 5.7.1 Account <mute@example.com> may not send mail");
    ck_assert_str_eq(ask("protocol_state=RCPT\nsasl_username=ghost\nsender=ghost@example.com\n"),
                     "554 5.7.1 Login <ghost> has no mailbox here");
    /* what a client typed ends up in a reply text: printable only */
    ck_assert_str_eq(ask("protocol_state=RCPT\nsasl_username=gh ost\x01@x\nsender=\n"),
                     "554 5.7.1 Login <gh?ost?@x> has no mailbox here");
    ck_assert_uint_eq(stats.requests, 13);
    ck_assert_uint_eq(stats.decisions[POL_DUNNO], 5);
    ck_assert_uint_eq(stats.decisions[POL_REJECT_SENDER_NOT_OWNED], 2);
    ck_assert_uint_eq(stats.decisions[POL_REJECT_DISABLED], 2);
    ck_assert_uint_eq(stats.decisions[POL_REJECT_MAY_NOT_SEND], 1);
    ck_assert_uint_eq(stats.decisions[POL_HOLD_SUSPENDED], 1);
    ck_assert_uint_eq(stats.decisions[POL_REJECT_UNKNOWN_LOGIN], 2);
    ck_assert_int_eq(logged, 8);
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
    struct pol_env env = { D, "+", &stats, &req, logit, NULL, NULL, NULL, 0, NULL, 0, NULL };
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
    struct pol_env env = { D, "+", &stats, &req, logit, NULL, NULL, NULL, 0, NULL, 0, NULL };
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

/* A login sending as itself, written exactly as it logged in, skips the
 * senders map (own_address): the answer must be the map's. The expectation
 * is computed from lk_lookup and the canonical login, not by policy.c. */
START_TEST(own_address_as_the_map_says)
{
    const char *logins[] = { "alice@example.com", "Alice@EXAMPLE.com", "bob@example.com",
                             "hans@xn--mnchen-3ya.de", "HANS@XN--MNCHEN-3YA.DE", "hans@m\xc3\xbcnchen.de",
                             "norecv@example.com", "alice+tag@example.com" };
    struct buf canon, owners;
    int both[2] = { 0, 0 };
    buf_init(&canon);
    buf_init(&owners);
    for (size_t i = 0; i < sizeof(logins) / sizeof(logins[0]); i++) {
        const char *l = logins[i];
        size_t at;
        ck_assert_int_eq(addr_canon(l, strlen(l), &canon, &at), ADDR_OK);
        int found = lk_lookup(D, LK_SENDERS, l, strlen(l), "+", &owners) == LK_FOUND;
        int owned = 0;
        for (const char *p = owners.data; found && p && *p;) {
            size_t n = strcspn(p, ",");
            owned |= n == canon.len && !memcmp(p, canon.data, n);
            p += n + (p[n] == ',');
        }
        char attrs[300];
        snprintf(attrs, sizeof(attrs), "protocol_state=RCPT\nsasl_username=%s\nsender=%s\n", l, l);
        const char *action = ask(attrs);
        both[owned]++;
        if (getenv("MR_TEST_ECHO"))
            fprintf(stderr, "%s: owned %d: %s\n", l, owned, action);
        if (owned)
            ck_assert_msg(!strcmp(action, "DUNNO"), "%s: %s", l, action);
        else
            ck_assert_msg(!strncmp(action, "55", 2), "%s: %s", l, action);
    }
    /* the fixture has logins of both kinds */
    ck_assert_int_gt(both[0], 0);
    ck_assert_int_gt(both[1], 0);
    buf_free(&canon);
    buf_free(&owners);
}
END_TEST

/* The requests of a stream, answered into out (reset first). */
static void answer_all(const struct pol_env *env, const char *in, struct buf *out)
{
    size_t len = strlen(in), pos = 0;
    buf_reset(out);
    while (pos < len) {
        ssize_t n = pol_request(env, in + pos, len - pos, out);
        ck_assert_int_gt(n, 0);
        pos += (size_t)n;
    }
}

/* With the event loop's scratch buffers a request allocates nothing once
 * they and the request's copy have grown (the sender lookup's key
 * included), and is answered as without them. */
START_TEST(scratch_no_allocs)
{
    const char *in =
        "request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=Alice@Example.com\n"
        "sender=ALICE+lists@example.com\nrecipient=Bob+x@example.com\n\n"
        "request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=alice@example.com\n"
        "sender=info@example.com\nrecipient=x@remote.example\n\n"
        "request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=bob@example.com\n"
        "sender=alice@example.com\n\n"
        "request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=mute@example.com\n\n"
        "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=carol+y@example.com\n\n";
    struct buf scratch[LK_NSCRATCH] = { { 0 } }, want = { 0 }, got = { 0 };
    struct pol_env own = { D, "+", &stats, &req, logit, NULL, NULL, NULL, 0, NULL, 0, NULL };
    struct pol_env lent = own;
    lent.scratch = scratch;
    answer_all(&own, in, &want);
    /* the answers the fixture gives, so that the check below means something */
    ck_assert_str_eq(want.data, "action=DUNNO\n\naction=DUNNO\n\n"
                                "action=553 5.7.1 Sender address <alice@example.com> is not owned by user bob@example.com\n\n"
                                "action=554 5.7.1 Account <mute@example.com> may not send mail\n\n"
                                "action=550 5.2.1 Mailbox unavailable\n\n");
    answer_all(&lent, in, &got);
    ck_assert_str_eq(got.data, want.data);
    unsigned long before = mem_allocs();
    answer_all(&lent, in, &got);
    ck_assert_uint_eq(mem_allocs() - before, 0);
    ck_assert_str_eq(got.data, want.data);
    bufs_free(scratch, LK_NSCRATCH);
    buf_free(&want);
    buf_free(&got);
}
END_TEST

/* --- rate limits: the pure parts ------------------------------------------- */

START_TEST(window_names)
{
    char w[32];
    pol_fmt_window(3600, w, sizeof(w));
    ck_assert_str_eq(w, "1h");
    pol_fmt_window(86400, w, sizeof(w));
    ck_assert_str_eq(w, "1d");
    pol_fmt_window(120, w, sizeof(w));
    ck_assert_str_eq(w, "2m");
    pol_fmt_window(90, w, sizeof(w));
    ck_assert_str_eq(w, "90s");
    pol_fmt_window(5400, w, sizeof(w));
    ck_assert_str_eq(w, "90m");
}
END_TEST

START_TEST(full_table)
{
    char action[400];
    struct pol_full *f = pol_full_new();
    /* 1000000000 = 2001-09-09 01:46:40 UTC */
    pol_full_set(f, "alice@example.com", 1000000100.0, 1000000000.0, "3 messages per 1h");
    ck_assert_int_eq(pol_full_get(f, "alice@example.com", 1000000000.0, 1, action, sizeof(action)), 1);
    ck_assert_str_eq(action, "450 4.7.1 Sending limit reached for <alice@example.com>: 3 messages per 1h; "
                             "try again in 100 s (at 01:48:20 UTC)");
    /* rounded up: 99.5 s left is "100 s" */
    ck_assert_int_eq(pol_full_get(f, "alice@example.com", 1000000000.5, 1, action, sizeof(action)), 1);
    ck_assert_str_eq(action, "450 4.7.1 Sending limit reached for <alice@example.com>: 3 messages per 1h; "
                             "try again in 100 s (at 01:48:20 UTC)");
    ck_assert_int_eq(pol_full_get(f, "bob@example.com", 1000000000.0, 1, action, sizeof(action)), 0);
    /* expired: forgotten */
    ck_assert_int_eq(pol_full_get(f, "alice@example.com", 1000000100.0, 1, action, sizeof(action)), 0);
    ck_assert_uint_eq(pol_full_count(f), 0);
    /* replaced, then forgotten by an "until" in the past */
    pol_full_set(f, "bob@example.com", 50.0, 10.0, "1 messages per 1m");
    pol_full_set(f, "bob@example.com", 70.0, 10.0, "2 messages per 1m");
    ck_assert_uint_eq(pol_full_count(f), 1);
    ck_assert_int_eq(pol_full_get(f, "bob@example.com", 10.0, 1, action, sizeof(action)), 1);
    ck_assert(strstr(action, "2 messages per 1m; try again in 60 s") != NULL);
    pol_full_set(f, "bob@example.com", 5.0, 10.0, "x");
    ck_assert_uint_eq(pol_full_count(f), 0);
    /* RCPT trusts an entry POL_FULL_TRUST s; the fallback until it expires */
    pol_full_set(f, "carol@example.com", 1000.0, 10.0, "1 messages per 1h");
    ck_assert_int_eq(pol_full_get(f, "carol@example.com", 10.0 + POL_FULL_TRUST - 1, 1, action, sizeof(action)), 1);
    ck_assert_int_eq(pol_full_get(f, "carol@example.com", 10.0 + POL_FULL_TRUST, 1, action, sizeof(action)), 0);
    ck_assert_int_eq(pol_full_get(f, "carol@example.com", 10.0 + POL_FULL_TRUST, 0, action, sizeof(action)), 1);
    ck_assert(strstr(action, "try again in 930 s") != NULL);
    pol_full_set(f, "carol@example.com", 0, 10.0, NULL);
    ck_assert_uint_eq(pol_full_count(f), 0);
    /* bounded: at POL_FULL_MAX expired entries go first, then new ones are not kept */
    char login[64];
    for (int i = 0; i < POL_FULL_MAX; i++) {
        snprintf(login, sizeof(login), "u%d@example.com", i);
        pol_full_set(f, login, i < 10 ? 20.0 : 1000.0, 10.0, "1 messages per 1h");
    }
    ck_assert_uint_eq(pol_full_count(f), POL_FULL_MAX);
    pol_full_set(f, "late@example.com", 1000.0, 30.0, "1 messages per 1h");
    ck_assert_uint_eq(pol_full_count(f), POL_FULL_MAX - 10 + 1);
    for (int i = 0; i < 20; i++) {
        snprintf(login, sizeof(login), "more%d@example.com", i);
        pol_full_set(f, login, 1000.0, 30.0, "1 messages per 1h");
    }
    ck_assert_uint_eq(pol_full_count(f), POL_FULL_MAX);
    ck_assert_int_eq(pol_full_get(f, "late@example.com", 30.0, 1, action, sizeof(action)), 1);
    pol_full_free(f);
}
END_TEST

START_TEST(admit_answers)
{
    char action[600];
    struct pol_full *f = pol_full_new();
    struct pol_admit a = { 1, "alice@example.com", 16, "QID" };
    struct pol_admit_result r = { PV_OK, "", 0, 0, 0, -1, -1, "", 0 };
    double now = 1000000000.0;

    ck_assert_int_eq(pol_admit_answer(&a, &r, 1, f, now, action, sizeof(action)), POL_DUNNO);
    ck_assert_str_eq(action, "DUNNO");
    ck_assert_uint_eq(pol_full_count(f), 0);
    /* admitted, and full now: remembered for RCPT */
    r = (struct pol_admit_result){ PV_OK, "messages", 3, 3600, 3, -1, 3599.2, "", 0 };
    ck_assert_int_eq(pol_admit_answer(&a, &r, 1, f, now, action, sizeof(action)), POL_DUNNO);
    ck_assert_int_eq(pol_full_get(f, "alice@example.com", now, 1, action, sizeof(action)), 1);
    ck_assert_str_eq(action, "450 4.7.1 Sending limit reached for <alice@example.com>: 3 messages per 1h; "
                             "try again in 3600 s (at 02:46:40 UTC)");
    /* over the recipient limit */
    r = (struct pol_admit_result){ PV_DEFER, "recipients", 100, 86400, 90, 42.0, 10.0, "", 0 };
    ck_assert_int_eq(pol_admit_answer(&a, &r, 1, f, now, action, sizeof(action)), POL_DEFER_RATE_LIMIT);
    ck_assert_str_eq(action, "450 4.7.1 Sending limit reached for <alice@example.com>: 100 recipients per 1d; "
                             "try again in 42 s (at 01:47:22 UTC)");
    /* never fits */
    r = (struct pol_admit_result){ PV_TOOBIG, "recipients", 10, 3600, 16, -1, -1, "", 0 };
    ck_assert_int_eq(pol_admit_answer(&a, &r, 1, f, now, action, sizeof(action)), POL_REJECT_TOO_MANY_RCPTS);
    ck_assert_str_eq(action, "554 5.5.3 Message has 16 recipients; <alice@example.com> may send to at most "
                             "10 recipients per 1h");
    /* the database did not answer: the configured action */
    r = (struct pol_admit_result){ PV_TIMEOUT, "", 0, 0, 0, -1, -1, "", 0 };
    ck_assert_int_eq(pol_admit_answer(&a, &r, 1, f, now, action, sizeof(action)), POL_DEFER_DB_UNAVAILABLE);
    ck_assert_str_eq(action, "451 4.3.0 Sending limits cannot be checked right now; try again later");
    r.verdict = PV_UNAVAILABLE;
    struct pol_admit b = { 1, "bob@example.com", 1, "" };
    ck_assert_int_eq(pol_admit_answer(&b, &r, 0, f, now, action, sizeof(action)), POL_DUNNO_DB_UNAVAILABLE);
    ck_assert_str_eq(action, "DUNNO");
    /* ... but dunno still defers an account this daemon knows to be full */
    ck_assert_int_eq(pol_admit_answer(&a, &r, 0, f, now, action, sizeof(action)), POL_DEFER_RATE_LIMIT);
    ck_assert(!strncmp(action, "450 4.7.1 Sending limit reached for <alice@example.com>", 55));
    /* admitted and not full: forgotten */
    r = (struct pol_admit_result){ PV_OK, "", 0, 0, 0, -1, -1, "", 0 };
    pol_admit_answer(&a, &r, 1, f, now, action, sizeof(action));
    ck_assert_uint_eq(pol_full_count(f), 0);
    /* unknown to the database: not refused */
    r.verdict = PV_UNKNOWN;
    ck_assert_int_eq(pol_admit_answer(&a, &r, 1, f, now, action, sizeof(action)), POL_DUNNO);
    /* suspended (now or before): held, with the reason; not remembered as full */
    r = (struct pol_admit_result){ PV_SUSPENDED, "messages", 3, 3600, 3, 42.0, 10.0,
                                   "3 sending-limit refusals within 3600 s\t(the last: x)", 1 };
    ck_assert_int_eq(pol_admit_answer(&a, &r, 1, f, now, action, sizeof(action)), POL_HOLD_SUSPENDED);
    ck_assert_str_eq(action, "HOLD sending suspended for <alice@example.com>: "
                             "3 sending-limit refusals within 3600 s?(the last: x)");
    ck_assert_uint_eq(pol_full_count(f), 0);
    /* without a reason */
    r.reason[0] = 0;
    ck_assert_int_eq(pol_admit_answer(&a, &r, 0, f, now, action, sizeof(action)), POL_HOLD_SUSPENDED);
    ck_assert_str_eq(action, "HOLD sending suspended for <alice@example.com>");
    ck_assert_str_eq(pol_decision_name(POL_HOLD_SUSPENDED), "hold_suspended");
    pol_full_free(f);
}
END_TEST

/* pol_request with rate limits on: END-OF-MESSAGE is handed out, RCPT
 * refuses a known-full account, the in-memory checks still come first */
START_TEST(admission_handed_out)
{
    struct buf out;
    struct pol_admit admit;
    struct pol_full *f = pol_full_new();
    struct pol_env env = { D, "+", &stats, &req, logit, NULL, f, &admit, 1000000000.0, NULL, 0, NULL };
    const char *eom = "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nsasl_username=Alice@Example.COM\n"
                      "sender=alice@example.com\nrecipient=\nrecipient_count=16\nqueue_id=4Q2x\n\n";
    buf_init(&out);
    ck_assert_int_eq(pol_request(&env, eom, strlen(eom), &out), (ssize_t)strlen(eom));
    ck_assert_uint_eq(out.len, 0);
    ck_assert_int_eq(admit.pending, 1);
    ck_assert_str_eq(admit.login, "alice@example.com");
    ck_assert_int_eq(admit.recipients, 16);
    ck_assert_str_eq(admit.queue_id, "4Q2x");
    ck_assert_uint_eq(stats.requests, 1);
    /* the sender check comes first: answered at once */
    const char *bad = "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nsasl_username=bob@example.com\n"
                      "sender=alice@example.com\nrecipient_count=1\n\n";
    ck_assert_int_eq(pol_request(&env, bad, strlen(bad), &out), (ssize_t)strlen(bad));
    ck_assert_int_eq(admit.pending, 0);
    ck_assert(!strncmp(out.data, "action=553 5.7.1", 16));
    /* no valid recipient_count: DUNNO, counted as incomplete, logged */
    buf_reset(&out);
    const char *norc = "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nsasl_username=alice@example.com\n"
                       "sender=alice@example.com\nrecipient_count=x\n\n";
    ck_assert_int_eq(pol_request(&env, norc, strlen(norc), &out), (ssize_t)strlen(norc));
    ck_assert_int_eq(admit.pending, 0);
    ck_assert_str_eq(out.data, "action=DUNNO\n\n");
    ck_assert_uint_eq(stats.incomplete, 1);
    /* RCPT: DUNNO until the account is known full, then 450 without asking */
    buf_reset(&out);
    const char *rcpt = "request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=alice@example.com\n"
                       "sender=alice@example.com\nrecipient=x@remote.example\n\n";
    ck_assert_int_eq(pol_request(&env, rcpt, strlen(rcpt), &out), (ssize_t)strlen(rcpt));
    ck_assert_str_eq(out.data, "action=DUNNO\n\n");
    pol_full_set(f, "alice@example.com", 1000000060.0, 1000000000.0, "3 messages per 1h");
    buf_reset(&out);
    ck_assert_int_eq(pol_request(&env, rcpt, strlen(rcpt), &out), (ssize_t)strlen(rcpt));
    ck_assert_str_eq(out.data, "action=450 4.7.1 Sending limit reached for <alice@example.com>: 3 messages per 1h; "
                               "try again in 60 s (at 01:47:40 UTC)\n\n");
    ck_assert_int_eq(admit.pending, 0);
    ck_assert_uint_eq(stats.decisions[POL_DEFER_RATE_LIMIT], 1);
    /* a suspended account: HOLD at RCPT and at END-OF-MESSAGE, before the
     * rate limit (no admission asked, whatever RCPT remembers) */
    pol_full_set(f, "susp@example.com", 1000000060.0, 1000000000.0, "3 messages per 1h");
    const char *srcpt = "request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=susp@example.com\n"
                        "sender=susp@example.com\nrecipient=x@remote.example\n\n";
    const char *seom = "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nsasl_username=susp@example.com\n"
                       "sender=susp@example.com\nrecipient=\nrecipient_count=1\n\n";
    const char *held = "action=HOLD sending suspended for <susp@example.com>: 3 sending-limit refusals within 3600 s\n\n";
    buf_reset(&out);
    ck_assert_int_eq(pol_request(&env, srcpt, strlen(srcpt), &out), (ssize_t)strlen(srcpt));
    ck_assert_str_eq(out.data, held);
    buf_reset(&out);
    ck_assert_int_eq(pol_request(&env, seom, strlen(seom), &out), (ssize_t)strlen(seom));
    ck_assert_str_eq(out.data, held);
    ck_assert_int_eq(admit.pending, 0);
    ck_assert_uint_eq(stats.decisions[POL_HOLD_SUSPENDED], 2);
    /* a sender it does not own is still refused first */
    buf_reset(&out);
    const char *sbad = "request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=susp@example.com\n"
                       "sender=alice@example.com\n\n";
    ck_assert_int_eq(pol_request(&env, sbad, strlen(sbad), &out), (ssize_t)strlen(sbad));
    ck_assert(!strncmp(out.data, "action=553 5.7.1", 16));
    /* without rate limits (env->admit NULL): END-OF-MESSAGE is DUNNO at once */
    struct pol_env off = { D, "+", &stats, &req, logit, NULL, NULL, NULL, 0, NULL, 0, NULL };
    buf_reset(&out);
    ck_assert_int_eq(pol_request(&off, eom, strlen(eom), &out), (ssize_t)strlen(eom));
    ck_assert_str_eq(out.data, "action=DUNNO\n\n");
    buf_free(&out);
    pol_full_free(f);
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
    tcase_add_test(tc, window_names);
    tcase_add_test(tc, full_table);
    tcase_add_test(tc, admit_answers);
    tcase_add_test(tc, admission_handed_out);
    tcase_add_test(tc, scratch_no_allocs);
    tcase_add_test(tc, own_address_as_the_map_says);
    suite_add_tcase(s, tc);
    return s;
}
