/* test_features.c - lookups of migration 0010's directory features:
 * forwarding from a mailbox (aliases map), sender rights per alias
 * (senders map) and the transports map. Every expected answer is written
 * out by hand from the rules in lookup.c. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lookup.h"
#include "tests.h"

static struct dir *D;

static void forwarder(uint64_t id, uint64_t dom, const char *addr, const char *to, int keep_copy,
                      int enabled, int may_receive)
{
    char maildir[300];
    struct dir_mailbox t = { .id = id, .domain_id = dom, .address = addr, .enabled = (uint8_t)enabled,
                             .may_send = 1, .may_receive = (uint8_t)may_receive, .services = SVC_ALL,
                             .quota_bytes = -1, .quota_messages = -1, .limit_messages = -1,
                             .limit_recipients = -1, .uid = -1, .gid = -1,
                             .forward = to, .keep_copy = (uint8_t)keep_copy };
    snprintf(maildir, sizeof(maildir), "%s/%llu/", strchr(addr, '@') + 1, (unsigned long long)id);
    t.maildir = maildir;
    dir_put(D, DIR_MAILBOX, dir_mailbox_new(&t));
}

static void alias(uint64_t id, const char *src, const char *dests, int may_send)
{
    struct dir_alias t = { .id = id, .domain_id = 1, .source = src, .destinations = dests, .enabled = 1,
                           .may_send = (uint8_t)may_send };
    dir_put(D, DIR_ALIAS, dir_alias_new(&t));
}

static void transport(uint64_t id, const char *pattern, const char *to, int enabled)
{
    struct dir_transport t = { .id = id, .enabled = (uint8_t)enabled, .pattern = pattern, .transport = to };
    dir_put(D, DIR_TRANSPORT, dir_transport_new(&t));
}

/* fixture_dir() (test_dir.c): example.com with alice, bob, carol
 * (disabled), norecv (may not receive), the catch-all @example.com ->
 * alice; off.example (disabled) with dave; xn--mnchen-3ya.de with hans
 * and the catch-all -> @example.com. */
static void setup(void)
{
    D = fixture_dir();
    forwarder(70, 1, "carl@example.com", "dora@remote.example", 0, 1, 1);
    forwarder(71, 1, "erin@example.com", "dora@remote.example,bob@example.com", 1, 1, 1);
    forwarder(72, 1, "fred@example.com", "dora@remote.example", 0, 0, 1);   /* disabled */
    forwarder(73, 1, "gina@example.com", "dora@remote.example", 1, 1, 0);   /* may not receive */
    forwarder(74, 2, "hugo@off.example", "dora@remote.example", 0, 1, 1);   /* domain disabled */
    forwarder(75, 3, "ivan@xn--mnchen-3ya.de", "dora@remote.example", 1, 1, 1);
    alias(80, "noreply@example.com", "alice@example.com", 0);
    alias(81, "team@example.com", "erin@example.com,alice@example.com", 1);
    transport(90, "example.net", "relay:[10.0.0.5]:8025", 1);
    transport(91, ".example.net", "smtp:[mx.example.net]:25", 1);
    transport(92, "gone@example.com", "error:5.1.1 gone, mail carl@remote.example", 1);
    transport(93, "list@example.com", "smtp:[list.example]", 1);
    transport(94, "list+owner@example.com", "smtp:[owner.example]", 1);
    transport(95, "off.example.org", "discard:", 0);
    transport(96, "xn--mnchen-3ya.de", "relay:[10.1.1.1]", 1);
    transport(97, "user@example.org", "lmtp:unix:private/app", 1);
}

static void teardown(void) { dir_free(D); }

static const char *q(enum lk_map map, const char *key)
{
    static struct buf v;
    if (lk_lookup(D, map, key, strlen(key), "+", &v) == LK_NOTFOUND) {
        ck_assert_uint_eq(v.len, 0);
        return "(not found)";
    }
    ck_assert_uint_gt(v.len, 0);
    return v.data;
}

START_TEST(forward_aliases)
{
    /* without a copy: the forward only */
    ck_assert_str_eq(q(LK_ALIASES, "carl@example.com"), "dora@remote.example");
    ck_assert_str_eq(q(LK_ALIASES, "Carl@EXAMPLE.com"), "dora@remote.example");
    /* matched as carl@example.com: the extension goes back on */
    ck_assert_str_eq(q(LK_ALIASES, "carl+news@example.com"), "dora+news@remote.example");
    /* with a copy: the forward, then the address itself (delivered, not expanded again) */
    ck_assert_str_eq(q(LK_ALIASES, "erin@example.com"), "dora@remote.example,bob@example.com,erin@example.com");
    ck_assert_str_eq(q(LK_ALIASES, "ERIN+x@example.com"),
                     "dora+x@remote.example,bob+x@example.com,erin+x@example.com");
    /* a U-label key: the own address comes back canonical */
    ck_assert_str_eq(q(LK_ALIASES, "ivan+x@m\xc3\xbcnchen.de"),
                     "dora+x@remote.example,ivan+x@xn--mnchen-3ya.de");
    /* a mailbox that would refuse mail forwards nothing, and the
     * catch-all (alice; @example.com for münchen) does not take it */
    ck_assert_str_eq(q(LK_ALIASES, "fred@example.com"), "(not found)");
    ck_assert_str_eq(q(LK_ALIASES, "fred+x@example.com"), "(not found)");
    ck_assert_str_eq(q(LK_ALIASES, "gina@example.com"), "(not found)");
    ck_assert_str_eq(q(LK_ALIASES, "hugo@off.example"), "(not found)");
    /* a mailbox without a forward: as before, neither forward nor catch-all */
    ck_assert_str_eq(q(LK_ALIASES, "alice@example.com"), "(not found)");
    ck_assert_str_eq(q(LK_ALIASES, "hans@xn--mnchen-3ya.de"), "(not found)");
    /* the catch-all itself is unchanged */
    ck_assert_str_eq(q(LK_ALIASES, "nobody@example.com"), "alice@example.com");
    ck_assert_str_eq(q(LK_ALIASES, "nobody@m\xc3\xbcnchen.de"), "nobody@example.com");
    /* an alias to a forwarding mailbox answers the mailbox: Postfix expands on */
    ck_assert_str_eq(q(LK_ALIASES, "team@example.com"), "erin@example.com,alice@example.com");
    /* the mailboxes map still answers a forwarding mailbox that may receive */
    ck_assert_str_eq(q(LK_MAILBOXES, "carl@example.com"), "example.com/70/");
    ck_assert_str_eq(q(LK_MAILBOXES, "erin+x@example.com"), "example.com/71/");
    ck_assert_str_eq(q(LK_MAILBOXES, "fred@example.com"), "(not found)");
    ck_assert_str_eq(q(LK_MAILBOXES, "gina@example.com"), "(not found)");
}
END_TEST

/* a forward made empty or taken back in a change: as without one */
START_TEST(forward_changes)
{
    struct dir_mailbox t = *dir_mailbox_get(D, "carl@example.com", 16);
    t.forward = NULL;
    dir_put(D, DIR_MAILBOX, dir_mailbox_new(&t));
    ck_assert_str_eq(q(LK_ALIASES, "carl@example.com"), "(not found)");
    t = *dir_mailbox_get(D, "carl@example.com", 16); /* the put freed the strings t pointed to */
    t.forward = "x@remote.example,y@remote.example";
    t.keep_copy = 1;
    dir_put(D, DIR_MAILBOX, dir_mailbox_new(&t));
    ck_assert_str_eq(q(LK_ALIASES, "carl@example.com"), "x@remote.example,y@remote.example,carl@example.com");
    ck_assert_int_eq(dir_del(D, DIR_MAILBOX, 70), 1);
    /* gone: the catch-all has it now */
    ck_assert_str_eq(q(LK_ALIASES, "carl@example.com"), "alice@example.com");
}
END_TEST

START_TEST(sender_rights)
{
    /* may_send = false: noreply's destination alice gets no right from
     * it; like a missing entry, the key goes on to the catch-all, which
     * does give alice the right */
    ck_assert_str_eq(q(LK_SENDERS, "noreply@example.com"), "alice@example.com");
    ck_assert_str_eq(q(LK_SENDERS, "info@example.com"), "alice@example.com,bob@example.com");
    /* the catch-all with may_send = false: no rights for anyone */
    struct dir_alias a = *dir_alias_get(D, "@example.com", 12);
    a.may_send = 0;
    dir_put(D, DIR_ALIAS, dir_alias_new(&a));
    ck_assert_str_eq(q(LK_SENDERS, "noreply@example.com"), "(not found)");
    ck_assert_str_eq(q(LK_SENDERS, "nobody@example.com"), "(not found)");
    ck_assert_str_eq(q(LK_SENDERS, "nobody+x@example.com"), "(not found)");
    /* an alias that may send still gives its destinations the right */
    ck_assert_str_eq(q(LK_SENDERS, "info@example.com"), "alice@example.com,bob@example.com");
    ck_assert_str_eq(q(LK_SENDERS, "team@example.com"), "erin@example.com,alice@example.com");
    /* a grant still works where the alias gives none */
    struct dir_sender s = { .id = 99, .mailbox_id = 11, .address = "noreply@example.com" };
    dir_put(D, DIR_SENDER, dir_sender_new(&s));
    ck_assert_str_eq(q(LK_SENDERS, "noreply@example.com"), "bob@example.com");
    /* forwarding is no sending right: erin forwards to bob, carl outside */
    ck_assert_str_eq(q(LK_SENDERS, "erin@example.com"), "erin@example.com");
    ck_assert_str_eq(q(LK_SENDERS, "carl+x@example.com"), "carl@example.com");
    ck_assert_str_eq(q(LK_SENDERS, "dora@remote.example"), "(not found)");
}
END_TEST

START_TEST(transports)
{
    /* a domain, a subdomain through ".domain", and the walk up */
    ck_assert_str_eq(q(LK_TRANSPORTS, "example.net"), "relay:[10.0.0.5]:8025");
    ck_assert_str_eq(q(LK_TRANSPORTS, "EXAMPLE.Net"), "relay:[10.0.0.5]:8025");
    ck_assert_str_eq(q(LK_TRANSPORTS, "a.example.net"), "smtp:[mx.example.net]:25");
    ck_assert_str_eq(q(LK_TRANSPORTS, "b.a.example.net"), "smtp:[mx.example.net]:25");
    ck_assert_str_eq(q(LK_TRANSPORTS, ".example.net"), "smtp:[mx.example.net]:25");
    ck_assert_str_eq(q(LK_TRANSPORTS, ".a.example.net"), "smtp:[mx.example.net]:25");
    ck_assert_str_eq(q(LK_TRANSPORTS, "net"), "(not found)");
    ck_assert_str_eq(q(LK_TRANSPORTS, ".net"), "(not found)");
    /* addresses: the whole address, without its extension, its domain */
    ck_assert_str_eq(q(LK_TRANSPORTS, "user@example.net"), "relay:[10.0.0.5]:8025");
    ck_assert_str_eq(q(LK_TRANSPORTS, "user+x@sub.EXAMPLE.net"), "smtp:[mx.example.net]:25");
    ck_assert_str_eq(q(LK_TRANSPORTS, "gone@example.com"), "error:5.1.1 gone, mail carl@remote.example");
    ck_assert_str_eq(q(LK_TRANSPORTS, "Gone+tag@Example.COM"), "error:5.1.1 gone, mail carl@remote.example");
    ck_assert_str_eq(q(LK_TRANSPORTS, "list@example.com"), "smtp:[list.example]");
    ck_assert_str_eq(q(LK_TRANSPORTS, "list+owner@example.com"), "smtp:[owner.example]");
    ck_assert_str_eq(q(LK_TRANSPORTS, "list+other@example.com"), "smtp:[list.example]");
    ck_assert_str_eq(q(LK_TRANSPORTS, "alice@example.com"), "(not found)");
    /* an address entry makes no domain entry (relay_domains asks domains) */
    ck_assert_str_eq(q(LK_TRANSPORTS, "example.com"), "(not found)");
    ck_assert_str_eq(q(LK_TRANSPORTS, "user@example.org"), "lmtp:unix:private/app");
    ck_assert_str_eq(q(LK_TRANSPORTS, "other@example.org"), "(not found)");
    ck_assert_str_eq(q(LK_TRANSPORTS, "example.org"), "(not found)");
    /* disabled: as if not there */
    ck_assert_str_eq(q(LK_TRANSPORTS, "off.example.org"), "(not found)");
    ck_assert_str_eq(q(LK_TRANSPORTS, "x@off.example.org"), "(not found)");
    /* IDN: A-label or U-label, key or address */
    ck_assert_str_eq(q(LK_TRANSPORTS, "M\xc3\x9cNCHEN.de"), "relay:[10.1.1.1]");
    ck_assert_str_eq(q(LK_TRANSPORTS, "hans@m\xc3\xbcnchen.de"), "relay:[10.1.1.1]");
    ck_assert_str_eq(q(LK_TRANSPORTS, "xn--mnchen-3ya.de"), "relay:[10.1.1.1]");
    /* what is no key: transport_maps' "*" wildcard, "@domain", junk */
    ck_assert_str_eq(q(LK_TRANSPORTS, "*"), "(not found)");
    ck_assert_str_eq(q(LK_TRANSPORTS, "@example.net"), "(not found)");
    ck_assert_str_eq(q(LK_TRANSPORTS, ""), "(not found)");
    ck_assert_str_eq(q(LK_TRANSPORTS, "."), "(not found)");
    ck_assert_str_eq(q(LK_TRANSPORTS, "..example.net"), "(not found)");
    ck_assert_str_eq(q(LK_TRANSPORTS, "exa mple.net"), "(not found)");
    struct buf v;
    buf_init(&v);
    ck_assert_int_eq(lk_lookup(D, LK_TRANSPORTS, "example.net\0x", 13, "+", &v), LK_NOTFOUND);
    buf_free(&v);
    /* the map's name */
    ck_assert_int_eq(lk_map_by_name("transports", 10), LK_TRANSPORTS);
    ck_assert_str_eq(lk_map_name(LK_TRANSPORTS), "transports");
    /* a change: disabled, then gone */
    struct dir_transport t = *dir_transport_get(D, "example.net", 11);
    t.enabled = 0;
    dir_put(D, DIR_TRANSPORT, dir_transport_new(&t));
    ck_assert_str_eq(q(LK_TRANSPORTS, "example.net"), "(not found)");
    ck_assert_str_eq(q(LK_TRANSPORTS, "a.example.net"), "smtp:[mx.example.net]:25");
    ck_assert_int_eq(dir_del(D, DIR_TRANSPORT, 91), 1);
    ck_assert_str_eq(q(LK_TRANSPORTS, "a.example.net"), "(not found)");
    ck_assert_uint_eq(dir_count(D, DIR_TRANSPORT), 7);
    ck_assert_str_eq(dir_kind_name(DIR_TRANSPORT), "transports");
}
END_TEST

Suite *features_suite(void)
{
    Suite *s = suite_create("features");
    TCase *tc = tcase_create("features");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, forward_aliases);
    tcase_add_test(tc, forward_changes);
    tcase_add_test(tc, sender_rights);
    tcase_add_test(tc, transports);
    suite_add_tcase(s, tc);
    return s;
}
