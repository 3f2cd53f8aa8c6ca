/* test_quota.c - the recipient quota decision: one mailbox's test, the
 * usage table, aliases followed, and the policy answers built on them.
 * Expected values are worked out by hand from the rule in quota.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "quota.h"
#include "tests.h"

static struct dir *D;
static struct quota_usage *U;

/* a mailbox or domain of the fixture, with its quotas changed */
static void mailbox_quota(const char *addr, int64_t bytes, int64_t messages)
{
    struct dir_mailbox t = *dir_mailbox_get(D, addr, strlen(addr));
    t.quota_bytes = bytes;
    t.quota_messages = messages;
    dir_put(D, DIR_MAILBOX, dir_mailbox_new(&t));
}

static void domain_quota(const char *name, int64_t bytes, int64_t messages)
{
    struct dir_domain t = *dir_domain_get(D, name, strlen(name));
    t.quota_bytes = bytes;
    t.quota_messages = messages;
    dir_put(D, DIR_DOMAIN, dir_domain_new(&t));
}

static void add_alias(uint64_t id, const char *src, const char *dests)
{
    struct dir_alias t = { .id = id, .source = src, .destinations = dests, .enabled = 1, .may_send = 1 };
    dir_put(D, DIR_ALIAS, dir_alias_new(&t));
}

static void setup(void)
{
    D = fixture_dir();
    U = quota_usage_new();
    /* example.com: 1000 octets, 10 messages by default; bob has his own
     * 5000 octets and no message limit; alice the domain's */
    domain_quota("example.com", 1000, 10);
    mailbox_quota("bob@example.com", 5000, 0);
}

static void teardown(void)
{
    quota_usage_free(U);
    dir_free(D);
}

/* the verdict for rcpt and a message of size octets: "room", "full", "no room" */
static const char *verdict(const char *rcpt, int64_t size)
{
    struct quota_result r;
    quota_rcpt(D, U, "+", rcpt, size, &r);
    return r.verdict == QUOTA_ROOM ? "room" : r.verdict == QUOTA_FULL ? "full" : "no room";
}

START_TEST(one_mailbox)
{
    const char *what = "x";
    /* unlimited */
    ck_assert_int_eq(quota_test(0, 0, 1000000, 1000000, 1000000, &what), QUOTA_ROOM);
    ck_assert_ptr_null(what);
    /* storage: used + size may reach the limit, not pass it */
    ck_assert_int_eq(quota_test(1000, 0, 900, 5, 100, &what), QUOTA_ROOM);
    ck_assert_int_eq(quota_test(1000, 0, 900, 5, 101, &what), QUOTA_NO_ROOM);
    ck_assert_str_eq(what, "storage");
    ck_assert_int_eq(quota_test(1000, 0, 1000, 5, 0, &what), QUOTA_ROOM);  /* size not declared */
    ck_assert_int_eq(quota_test(1000, 0, 1000, 5, 1, &what), QUOTA_FULL);
    ck_assert_int_eq(quota_test(1000, 0, 1001, 5, 0, &what), QUOTA_FULL);
    ck_assert_str_eq(what, "storage");
    /* messages: used + 1 may reach the limit */
    ck_assert_int_eq(quota_test(0, 10, 0, 9, 0, &what), QUOTA_ROOM);
    ck_assert_int_eq(quota_test(0, 10, 0, 10, 0, &what), QUOTA_FULL);
    ck_assert_str_eq(what, "messages");
    /* a full storage is named before the message count */
    ck_assert_int_eq(quota_test(1000, 10, 2000, 10, 0, &what), QUOTA_FULL);
    ck_assert_str_eq(what, "storage");
    /* messages full beats "no room for this size" */
    ck_assert_int_eq(quota_test(1000, 10, 900, 10, 500, &what), QUOTA_FULL);
    ck_assert_str_eq(what, "messages");
    /* huge and negative values: no overflow, a negative count is none */
    ck_assert_int_eq(quota_test(INT64_MAX, 0, INT64_MAX - 1, 0, INT64_MAX, &what), QUOTA_NO_ROOM);
    ck_assert_int_eq(quota_test(1000, 10, -5000, -3, 1000, &what), QUOTA_ROOM);
    ck_assert_int_eq(quota_test(1000, 0, INT64_MIN, 0, 1001, &what), QUOTA_NO_ROOM);
    ck_assert_int_eq(quota_test(1000, 0, 0, 0, -7, &what), QUOTA_ROOM);
}
END_TEST

START_TEST(usage_table)
{
    int64_t b = -1, m = -1;
    struct quota_usage *more = quota_usage_new();

    ck_assert_int_eq(quota_usage_get(U, "alice@example.com", 17, &b, &m), 0);
    quota_usage_set(U, "alice@example.com", 10, 1);
    quota_usage_set(U, "bob@example.com", 20, 2);
    quota_usage_set(U, "alice@example.com", 30, 3);     /* a changed row */
    ck_assert_uint_eq(quota_usage_count(U), 2);
    ck_assert_int_eq(quota_usage_get(U, "alice@example.com", 17, &b, &m), 1);
    ck_assert(b == 30 && m == 3);
    /* a length-bounded key */
    ck_assert_int_eq(quota_usage_get(U, "alice@example.comX", 17, &b, &m), 1);
    quota_usage_set(more, "bob@example.com", 40, 4);
    quota_usage_set(more, "carol@example.com", 50, 5);
    quota_usage_merge(U, more);
    ck_assert_uint_eq(quota_usage_count(U), 3);
    ck_assert_uint_eq(quota_usage_count(more), 0);
    ck_assert_int_eq(quota_usage_get(U, "bob@example.com", 15, &b, &m), 1);
    ck_assert(b == 40 && m == 4);
    ck_assert_int_eq(quota_usage_forget(U, "carol@example.com"), 1);
    ck_assert_int_eq(quota_usage_forget(U, "carol@example.com"), 0);
    ck_assert_uint_eq(quota_usage_count(U), 2);
    ck_assert_uint_eq(quota_usage_count(NULL), 0);
    /* the emptied table still works */
    quota_usage_set(more, "x@example.com", 1, 1);
    ck_assert_uint_eq(quota_usage_count(more), 1);
    quota_usage_free(more);
    quota_usage_free(NULL);
}
END_TEST

START_TEST(mailboxes)
{
    /* no row: nothing used yet, so only a message larger than the quota is refused */
    ck_assert_str_eq(verdict("alice@example.com", 1000), "room");
    ck_assert_str_eq(verdict("alice@example.com", 1001), "no room");
    /* the domain's quota applies to alice, bob's own to bob */
    quota_usage_set(U, "alice@example.com", 1000, 3);
    quota_usage_set(U, "bob@example.com", 1000, 3);
    ck_assert_str_eq(verdict("alice@example.com", 0), "room");
    ck_assert_str_eq(verdict("alice@example.com", 1), "full");
    ck_assert_str_eq(verdict("bob@example.com", 4000), "room");
    ck_assert_str_eq(verdict("bob@example.com", 4001), "no room");
    /* case and extension folded, as Postfix delivers alice+x to alice */
    ck_assert_str_eq(verdict("Alice+news@EXAMPLE.com", 1), "full");
    /* the domain's message limit (10) for alice; bob has none (0 = unlimited, not the domain's) */
    quota_usage_set(U, "alice@example.com", 0, 10);
    quota_usage_set(U, "bob@example.com", 0, 1000000);
    ck_assert_str_eq(verdict("alice@example.com", 0), "full");
    ck_assert_str_eq(verdict("bob@example.com", 0), "room");
    /* a mailbox with its own 0 is unlimited even when the domain has limits */
    mailbox_quota("alice@example.com", 0, 0);
    ck_assert_str_eq(verdict("alice@example.com", 1000000), "room");
    /* the domain unlimited: a mailbox without its own quota is unlimited */
    mailbox_quota("alice@example.com", -1, -1);
    domain_quota("example.com", 0, 0);
    ck_assert_str_eq(verdict("alice@example.com", 1000000), "room");
    /* what else is not judged here: a disabled mailbox, one that may not
     * receive, a disabled domain, an unknown user, an outside address */
    domain_quota("example.com", 1, 1);
    quota_usage_set(U, "carol@example.com", 100, 100);
    quota_usage_set(U, "norecv@example.com", 100, 100);
    quota_usage_set(U, "dave@off.example", 100, 100);
    ck_assert_str_eq(verdict("carol@example.com", 10), "room");
    ck_assert_str_eq(verdict("norecv@example.com", 10), "room");
    ck_assert_str_eq(verdict("dave@off.example", 10), "room");
    ck_assert_str_eq(verdict("someone@remote.example", 10), "room");
    ck_assert_str_eq(verdict("not an address", 10), "room");
    ck_assert_str_eq(verdict("", 10), "room");
}
END_TEST

START_TEST(aliases)
{
    struct quota_result r;
    quota_usage_set(U, "alice@example.com", 1000, 1);   /* full (1000 of 1000) */
    quota_usage_set(U, "bob@example.com", 100, 1);      /* room for 4900 */

    /* info -> alice, bob: one has room, so Postfix gets the message */
    ck_assert_str_eq(verdict("info@example.com", 1), "room");
    ck_assert_str_eq(verdict("info@example.com", 4900), "room");
    /* both without room: refused; bob would take a smaller one */
    ck_assert_str_eq(verdict("info@example.com", 4901), "no room");
    quota_usage_set(U, "bob@example.com", 5000, 1);
    quota_rcpt(D, U, "+", "info+tag@example.com", 1, &r);
    ck_assert_int_eq(r.verdict, QUOTA_FULL);
    ck_assert_int_eq(r.mailboxes, 2);
    ck_assert_int_eq(r.over, 2);
    ck_assert_str_eq(r.mailbox, "alice@example.com");
    ck_assert_str_eq(r.what, "storage");
    ck_assert(r.used == 1000 && r.limit == 1000);
    /* the catch-all goes to alice; the U-label domain's catch-all too */
    ck_assert_str_eq(verdict("nobody@example.com", 1), "full");
    ck_assert_str_eq(verdict("x@m\xc3\xbcnchen.de", 1), "full");
    /* a forward outside is never refused, alone or with full mailboxes */
    ck_assert_str_eq(verdict("fwd@example.com", 1000000), "room");
    add_alias(40, "mixed@example.com", "alice@example.com,someone@remote.example,bob@example.com");
    ck_assert_str_eq(verdict("mixed@example.com", 1), "room");
    /* aliases of aliases, and a loop between two of them */
    add_alias(41, "team@example.com", "info@example.com,lead@example.com");
    add_alias(42, "lead@example.com", "team@example.com,alice@example.com");
    quota_rcpt(D, U, "+", "team@example.com", 1, &r);
    ck_assert_int_eq(r.verdict, QUOTA_FULL);
    ck_assert_int_eq(r.over, 2);                        /* alice once, bob */
    /* a disabled mailbox among the targets: Postfix refuses it on its own; not "all full" */
    add_alias(43, "ghost@example.com", "alice@example.com,carol@example.com");
    ck_assert_str_eq(verdict("ghost@example.com", 1), "room");
    /* room again: the alias passes */
    quota_usage_set(U, "bob@example.com", 0, 0);
    ck_assert_str_eq(verdict("team@example.com", 1), "room");
}
END_TEST

/* a mailbox that forwards, with and without a copy (lookup.c, forward_of):
 * the forward is followed like an alias's destinations */
static void forwarder(uint64_t id, const char *addr, const char *to, int keep_copy)
{
    struct dir_mailbox t = *dir_mailbox_get(D, "alice@example.com", 17);
    t.id = id;
    t.address = addr;
    t.maildir = addr;
    t.forward = to;
    t.keep_copy = (uint8_t)keep_copy;
    dir_put(D, DIR_MAILBOX, dir_mailbox_new(&t));
}

START_TEST(forwards)
{
    struct quota_result r;
    /* example.com: 1000 octets each by default, bob 5000 */
    forwarder(60, "carl@example.com", "bob@example.com", 0);
    forwarder(61, "erin@example.com", "dora@remote.example", 1);
    forwarder(62, "kim@example.com", "bob@example.com", 1);
    forwarder(63, "liz@example.com", "kim@example.com", 0);
    quota_usage_set(U, "carl@example.com", 2000, 1);    /* over */
    quota_usage_set(U, "erin@example.com", 2000, 1);    /* over */
    quota_usage_set(U, "kim@example.com", 2000, 1);     /* over */
    quota_usage_set(U, "bob@example.com", 100, 1);      /* room */
    /* no copy kept: carl's own usage does not count, bob's does */
    ck_assert_str_eq(verdict("carl@example.com", 1), "room");
    quota_rcpt(D, U, "+", "carl+x@example.com", 1, &r);
    ck_assert_int_eq(r.verdict, QUOTA_ROOM);
    ck_assert_int_eq(r.mailboxes, 1);                   /* bob only */
    /* a copy kept and a forward outside: the outside has room */
    ck_assert_str_eq(verdict("erin@example.com", 1), "room");
    /* a copy kept, forward to bob: both final, bob has room */
    ck_assert_str_eq(verdict("kim@example.com", 1), "room");
    ck_assert_str_eq(verdict("kim+x@example.com", 1), "room");
    /* bob full too: carl, kim and liz (-> kim -> bob, kim) are refused */
    quota_usage_set(U, "bob@example.com", 5000, 1);
    ck_assert_str_eq(verdict("carl@example.com", 1), "full");
    quota_rcpt(D, U, "+", "kim+x@example.com", 1, &r);
    ck_assert_int_eq(r.verdict, QUOTA_FULL);
    ck_assert_int_eq(r.mailboxes, 2);                   /* bob, and kim itself */
    ck_assert_int_eq(r.over, 2);
    quota_rcpt(D, U, "+", "liz@example.com", 1, &r);
    ck_assert_int_eq(r.verdict, QUOTA_FULL);
    ck_assert_int_eq(r.mailboxes, 2);
    ck_assert_str_eq(verdict("erin@example.com", 1), "room");
    /* kim with room again: its own copy fits */
    quota_usage_set(U, "kim@example.com", 0, 0);
    ck_assert_str_eq(verdict("kim@example.com", 1), "room");
    ck_assert_str_eq(verdict("liz@example.com", 1), "room");
}
END_TEST

START_TEST(expansion_limit)
{
    /* an alias to QUOTA_MAX_ADDRESSES + 1 full mailboxes: too many to judge */
    struct buf dests;
    char addr[64];
    buf_init(&dests);
    domain_quota("example.com", 1, 0);
    for (int i = 0; i <= QUOTA_MAX_ADDRESSES; i++) {
        snprintf(addr, sizeof(addr), "m%d@example.com", i);
        struct dir_mailbox t = *dir_mailbox_get(D, "alice@example.com", 17);
        t.id = 1000 + (uint64_t)i;
        t.address = addr;
        t.maildir = addr;
        dir_put(D, DIR_MAILBOX, dir_mailbox_new(&t));
        quota_usage_set(U, addr, 5, 0);
        if (i)
            buf_addc(&dests, ',');
        buf_adds(&dests, addr);
    }
    add_alias(50, "many@example.com", dests.data);
    ck_assert_str_eq(verdict("many@example.com", 0), "room");
    /* one fewer: judged, and full */
    const char *last = strrchr(dests.data, ',');
    dests.data[last - dests.data] = 0;
    add_alias(50, "many@example.com", dests.data);
    ck_assert_str_eq(verdict("many@example.com", 0), "full");
    buf_free(&dests);
}
END_TEST

/* --- through pol_request --------------------------------------------------- */

static struct pol_stats stats;
static char logline[600];

static void logit(void *arg, int warn, const char *text)
{
    (void)arg;
    (void)warn;
    snprintf(logline, sizeof(logline), "%s", text);
}

static const char *ask(const struct quota_usage *u, int defer, const char *attrs)
{
    static struct buf out;
    static char action[800];
    static struct pol_req req;
    char in[4096];
    struct pol_env env = { D, "+", &stats, &req, logit, NULL, NULL, NULL, 0, u, defer, NULL };
    int n = snprintf(in, sizeof(in), "request=smtpd_access_policy\n%s\n", attrs);
    pol_req_init(&req);
    buf_reset(&out);
    ck_assert_int_eq(pol_request(&env, in, (size_t)n, &out), n);
    pol_req_free(&req);
    snprintf(action, sizeof(action), "%.*s", (int)(out.len - 9), out.data + 7);
    return action;
}

START_TEST(policy_answers)
{
    memset(&stats, 0, sizeof(stats));
    quota_usage_set(U, "alice@example.com", 1001, 1);   /* over, whatever the size */
    quota_usage_set(U, "bob@example.com", 100, 1);
    ck_assert_str_eq(ask(U, 0, "protocol_state=RCPT\nrecipient=alice@example.com\nsize=0\n"), "552 5.2.2 Mailbox full");
    ck_assert_str_eq(logline, "inbound recipient=<alice@example.com> size=0: reject_over_quota "
                              "(1 of 1 mailboxes over quota; alice@example.com: storage 1001 of 1000)");
    ck_assert_str_eq(ask(U, 1, "protocol_state=RCPT\nrecipient=alice@example.com\n"), "452 4.2.2 Mailbox full");
    /* the declared size */
    ck_assert_str_eq(ask(U, 0, "protocol_state=RCPT\nrecipient=bob@example.com\nsize=4900\n"), "DUNNO");
    ck_assert_str_eq(ask(U, 0, "protocol_state=RCPT\nrecipient=bob@example.com\nsize=4901\n"),
                     "552 5.2.2 Not enough room in the mailbox for a message of 4901 octets");
    ck_assert_str_eq(ask(U, 0, "protocol_state=RCPT\nrecipient=info@example.com\nsize=4901\n"),
                     "552 5.2.2 Not enough room in the mailbox for a message of 4901 octets");
    /* a size that is not a plain number is no size */
    ck_assert_str_eq(ask(U, 0, "protocol_state=RCPT\nrecipient=bob@example.com\nsize=-4901\n"), "DUNNO");
    ck_assert_str_eq(ask(U, 0, "protocol_state=RCPT\nrecipient=bob@example.com\nsize=99999999999999999999\n"), "DUNNO");
    ck_assert_str_eq(ask(U, 0, "protocol_state=RCPT\nrecipient=bob@example.com\nsize=4901x\n"), "DUNNO");
    /* usage not read yet: not checked */
    ck_assert_str_eq(ask(NULL, 0, "protocol_state=RCPT\nrecipient=alice@example.com\n"), "DUNNO");
    /* RCPT only; a local user's message to a full mailbox too, after the
     * sender's checks (a sender refusal wins); may_receive is answered first */
    ck_assert_str_eq(ask(U, 0, "protocol_state=END-OF-MESSAGE\nrecipient=alice@example.com\n"), "DUNNO");
    ck_assert_str_eq(ask(U, 0, "protocol_state=RCPT\nrecipient=alice@example.com\nsasl_username=bob@example.com\n"
                               "sender=bob@example.com\n"), "552 5.2.2 Mailbox full");
    ck_assert_str_eq(ask(U, 0, "protocol_state=RCPT\nrecipient=alice@example.com\nsasl_username=bob@example.com\n"
                               "sender=alice@example.com\n"),
                     "553 5.7.1 Sender address <alice@example.com> is not owned by user bob@example.com");
    quota_usage_set(U, "norecv@example.com", 100000, 100000);
    ck_assert_str_eq(ask(U, 0, "protocol_state=RCPT\nrecipient=norecv@example.com\n"), "550 5.2.1 Mailbox unavailable");
    /* a mailbox that forwards everything is not refused for its own quota
     * (before forwarding, its own mailbox decided: 552); one that keeps a
     * copy is, when the forward's mailboxes are full too */
    forwarder(60, "carl@example.com", "bob@example.com", 0);
    forwarder(62, "kim@example.com", "bob@example.com", 1);
    quota_usage_set(U, "carl@example.com", 2000, 1);
    quota_usage_set(U, "kim@example.com", 2000, 1);
    ck_assert_str_eq(ask(U, 0, "protocol_state=RCPT\nrecipient=carl@example.com\n"), "DUNNO");
    ck_assert_str_eq(ask(U, 0, "protocol_state=RCPT\nrecipient=kim@example.com\n"), "DUNNO");
    quota_usage_set(U, "bob@example.com", 5001, 1);
    ck_assert_str_eq(ask(U, 0, "protocol_state=RCPT\nrecipient=carl@example.com\n"), "552 5.2.2 Mailbox full");
    ck_assert_str_eq(ask(U, 0, "protocol_state=RCPT\nrecipient=kim+x@example.com\n"), "552 5.2.2 Mailbox full");
    ck_assert_str_eq(logline, "inbound recipient=<kim+x@example.com> size=0: reject_over_quota "
                              "(2 of 2 mailboxes over quota; bob@example.com: storage 5001 of 5000)");
    /* a forwarding mailbox that may not receive: refused, never forwarded */
    struct dir_mailbox t = *dir_mailbox_get(D, "carl@example.com", 16);
    t.may_receive = 0;
    dir_put(D, DIR_MAILBOX, dir_mailbox_new(&t));
    ck_assert_str_eq(ask(U, 0, "protocol_state=RCPT\nrecipient=carl@example.com\n"), "550 5.2.1 Mailbox unavailable");
    ck_assert_uint_eq(stats.decisions[POL_REJECT_OVER_QUOTA], 6);
    ck_assert_uint_eq(stats.decisions[POL_DEFER_OVER_QUOTA], 1);
    ck_assert_str_eq(pol_decision_name(POL_REJECT_OVER_QUOTA), "reject_over_quota");
    ck_assert_str_eq(pol_decision_name(POL_DEFER_OVER_QUOTA), "defer_over_quota");
}
END_TEST

Suite *quota_suite(void)
{
    Suite *s = suite_create("quota");
    TCase *tc = tcase_create("quota");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, one_mailbox);
    tcase_add_test(tc, usage_table);
    tcase_add_test(tc, mailboxes);
    tcase_add_test(tc, aliases);
    tcase_add_test(tc, forwards);
    tcase_add_test(tc, expansion_limit);
    tcase_add_test(tc, policy_answers);
    suite_add_tcase(s, tc);
    return s;
}
