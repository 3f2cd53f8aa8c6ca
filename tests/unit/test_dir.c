/* test_dir.c - the directory, lookup semantics, change application and
 * the snapshot file. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lookup.h"
#include "snap.h"
#include "tests.h"

static void add_domain(struct dir *d, uint64_t id, const char *name, int enabled)
{
    struct dir_domain t = { .id = id, .name = name, .enabled = (uint8_t)enabled, .limit_window = 3600 };
    dir_put(d, DIR_DOMAIN, dir_domain_new(&t));
}

static struct dir_mailbox *mailbox(uint64_t id, uint64_t dom, const char *addr, int enabled)
{
    static char maildir[300];
    struct dir_mailbox t = { .id = id, .domain_id = dom, .address = addr, .enabled = (uint8_t)enabled,
                             .may_send = 1, .may_receive = 1, .services = SVC_ALL,
                             .quota_bytes = -1, .quota_messages = -1, .limit_messages = -1,
                             .limit_recipients = -1, .uid = -1, .gid = -1,
                             .password = "{SHA512-CRYPT}$6$x$y" };
    snprintf(maildir, sizeof(maildir), "%s/%llu/", strchr(addr, '@') + 1, (unsigned long long)id);
    t.maildir = maildir;
    return dir_mailbox_new(&t);
}

static void add_alias(struct dir *d, uint64_t id, const char *src, const char *dests, int enabled)
{
    struct dir_alias t = { .id = id, .source = src, .destinations = dests, .enabled = (uint8_t)enabled,
                           .may_send = 1 };
    dir_put(d, DIR_ALIAS, dir_alias_new(&t));
}

static void add_sender(struct dir *d, uint64_t id, uint64_t mbox, const char *addr)
{
    struct dir_sender t = { .id = id, .mailbox_id = mbox, .address = addr };
    dir_put(d, DIR_SENDER, dir_sender_new(&t));
}

struct dir *fixture_dir(void)
{
    struct dir *d = dir_new();
    add_domain(d, 1, "example.com", 1);
    add_domain(d, 2, "off.example", 0);
    add_domain(d, 3, "xn--mnchen-3ya.de", 1);
    dir_put(d, DIR_MAILBOX, mailbox(10, 1, "alice@example.com", 1));
    dir_put(d, DIR_MAILBOX, mailbox(11, 1, "bob@example.com", 1));
    dir_put(d, DIR_MAILBOX, mailbox(12, 1, "carol@example.com", 0));
    dir_put(d, DIR_MAILBOX, mailbox(13, 2, "dave@off.example", 1));
    dir_put(d, DIR_MAILBOX, mailbox(14, 3, "hans@xn--mnchen-3ya.de", 1));
    struct dir_mailbox *nr = mailbox(15, 1, "norecv@example.com", 1);
    nr->may_receive = 0;
    dir_put(d, DIR_MAILBOX, nr);
    add_alias(d, 20, "info@example.com", "alice@example.com,bob@example.com", 1);
    add_alias(d, 21, "@example.com", "alice@example.com", 1);
    add_alias(d, 22, "fwd@example.com", "someone@remote.example", 1);
    add_alias(d, 23, "@xn--mnchen-3ya.de", "@example.com", 1);
    add_alias(d, 24, "sales@off.example", "dave@off.example", 1);
    add_alias(d, 25, "old@example.com", "bob@example.com", 0);
    add_sender(d, 30, 11, "boss@example.com");
    add_sender(d, 31, 10, "boss@example.com");
    add_sender(d, 32, 12, "carol-alt@example.com");
    d->seq = 100;
    return d;
}

static const char *q(const struct dir *d, enum lk_map map, const char *key)
{
    static struct buf v;
    if (lk_lookup(d, map, key, strlen(key), "+", &v) == LK_NOTFOUND)
        return "(not found)";
    ck_assert_uint_gt(v.len, 0);
    return v.data;
}

START_TEST(lookup_domains)
{
    struct dir *d = fixture_dir();
    ck_assert_str_eq(q(d, LK_DOMAINS, "EXAMPLE.com"), "example.com");
    ck_assert_str_eq(q(d, LK_DOMAINS, "off.example"), "(not found)");
    ck_assert_str_eq(q(d, LK_DOMAINS, "m\xc3\xbcnchen.de"), "xn--mnchen-3ya.de");
    ck_assert_str_eq(q(d, LK_DOMAINS, "xn--mnchen-3ya.de"), "xn--mnchen-3ya.de");
    ck_assert_str_eq(q(d, LK_DOMAINS, "nowhere.org"), "(not found)");
    ck_assert_str_eq(q(d, LK_DOMAINS, "ex\xe2\x80\x8b" "ample.com"), "(not found)");
    ck_assert_str_eq(q(d, LK_DOMAINS, ""), "(not found)");
    dir_free(d);
}
END_TEST

START_TEST(lookup_mailboxes)
{
    struct dir *d = fixture_dir();
    ck_assert_str_eq(q(d, LK_MAILBOXES, "Alice@Example.COM"), "example.com/10/");
    ck_assert_str_eq(q(d, LK_MAILBOXES, "alice+tag@example.com"), "example.com/10/");
    ck_assert_str_eq(q(d, LK_MAILBOXES, "carol@example.com"), "(not found)");
    ck_assert_str_eq(q(d, LK_MAILBOXES, "dave@off.example"), "(not found)");
    ck_assert_str_eq(q(d, LK_MAILBOXES, "norecv@example.com"), "(not found)");
    ck_assert_str_eq(q(d, LK_MAILBOXES, "hans@M\xc3\x9cNCHEN.de"), "xn--mnchen-3ya.de/14/");
    ck_assert_str_eq(q(d, LK_MAILBOXES, "@example.com"), "(not found)");
    ck_assert_str_eq(q(d, LK_MAILBOXES, "alice"), "(not found)");
    ck_assert_str_eq(q(d, LK_MAILBOXES, "alice@example.com\r"), "(not found)");
    dir_free(d);
}
END_TEST

START_TEST(lookup_aliases)
{
    struct dir *d = fixture_dir();
    ck_assert_str_eq(q(d, LK_ALIASES, "INFO@example.com"), "alice@example.com,bob@example.com");
    /* matched without the extension: each destination gets it back */
    ck_assert_str_eq(q(d, LK_ALIASES, "info+x@example.com"), "alice+x@example.com,bob+x@example.com");
    /* a catch-all never swallows a real mailbox, enabled or not */
    ck_assert_str_eq(q(d, LK_ALIASES, "alice@example.com"), "(not found)");
    ck_assert_str_eq(q(d, LK_ALIASES, "alice+x@example.com"), "(not found)");
    ck_assert_str_eq(q(d, LK_ALIASES, "carol@example.com"), "(not found)");
    /* catch-all: no extension propagation, as Postfix does for @domain */
    ck_assert_str_eq(q(d, LK_ALIASES, "nobody@example.com"), "alice@example.com");
    ck_assert_str_eq(q(d, LK_ALIASES, "nobody+x@example.com"), "alice@example.com");
    ck_assert_str_eq(q(d, LK_ALIASES, "Fwd@EXAMPLE.com"), "someone@remote.example");
    /* @domain destination: the local part goes in front */
    ck_assert_str_eq(q(d, LK_ALIASES, "y+z@m\xc3\xbcnchen.de"), "y+z@example.com");
    ck_assert_str_eq(q(d, LK_ALIASES, "hans@m\xc3\xbcnchen.de"), "(not found)");
    ck_assert_str_eq(q(d, LK_ALIASES, "sales@off.example"), "(not found)");
    /* a disabled alias is as if absent */
    ck_assert_str_eq(q(d, LK_ALIASES, "old@example.com"), "alice@example.com");
    ck_assert_str_eq(q(d, LK_ALIASES, "@example.com"), "(not found)");
    dir_free(d);
}
END_TEST

START_TEST(lookup_senders)
{
    struct dir *d = fixture_dir();
    ck_assert_str_eq(q(d, LK_SENDERS, "Alice@example.com"), "alice@example.com");
    ck_assert_str_eq(q(d, LK_SENDERS, "alice+x@example.com"), "alice@example.com");
    ck_assert_str_eq(q(d, LK_SENDERS, "info@example.com"), "alice@example.com,bob@example.com");
    ck_assert_str_eq(q(d, LK_SENDERS, "boss@example.com"), "alice@example.com,bob@example.com");
    ck_assert_str_eq(q(d, LK_SENDERS, "carol@example.com"), "alice@example.com"); /* disabled: catch-all owner */
    ck_assert_str_eq(q(d, LK_SENDERS, "carol-alt@example.com"), "alice@example.com");
    ck_assert_str_eq(q(d, LK_SENDERS, "dave@off.example"), "(not found)");
    ck_assert_str_eq(q(d, LK_SENDERS, "x@nowhere.org"), "(not found)");
    dir_free(d);
}
END_TEST

START_TEST(unfolded_keys)
{
    /* rows as SQL or an importer may write them: not in folded form */
    struct dir *d = dir_new();
    add_domain(d, 1, "example.org", 1);
    struct dir_mailbox *jorg = mailbox(10, 1, "Jörg@example.org", 1);
    struct dir_mailbox *jurgen = mailbox(12, 1, "jürgen@example.org", 1);
    ck_assert_str_eq(jorg->key, "jörg@example.org");
    ck_assert_ptr_null(jurgen->key);                   /* folded already */
    dir_put(d, DIR_MAILBOX, jorg);
    dir_put(d, DIR_MAILBOX, mailbox(11, 1, "straße@example.org", 1));
    dir_put(d, DIR_MAILBOX, jurgen);
    dir_put(d, DIR_MAILBOX, mailbox(13, 1, "alice@example.org", 1));
    add_alias(d, 20, "Ärger@example.org", "Jörg@example.org,straße@example.org", 1);
    add_sender(d, 30, 12, "ΟΔΟΣ@example.org");
    add_sender(d, 31, 10, "οδος@example.org");        /* same folded key: one chain */
    struct dir_master mt = { .id = 40, .enabled = 1, .name = "Admin", .password = "{PLAIN}x" };
    dir_put(d, DIR_MASTER, dir_master_new(&mt));

    /* any case of the key finds the record; the address stays as stored */
    static const char *jorgs[] = { "jörg@example.org", "Jörg@example.org", "JÖRG@EXAMPLE.ORG", "jÖrg@example.org" };
    for (size_t i = 0; i < sizeof(jorgs) / sizeof(jorgs[0]); i++) {
        const struct dir_mailbox *m = dir_mailbox_get(d, jorgs[i], strlen(jorgs[i]));
        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(m->address, "Jörg@example.org");
    }
    ck_assert_str_eq(q(d, LK_MAILBOXES, "ALICE@example.org"), "example.org/13/");
    ck_assert_ptr_null(dir_mailbox_get(d, "j\xffrg@example.org", 16));
    ck_assert_str_eq(q(d, LK_MAILBOXES, "JÖRG@example.org"), "example.org/10/");
    ck_assert_str_eq(q(d, LK_MAILBOXES, "jÖrg+tag@example.org"), "example.org/10/");
    ck_assert_str_eq(q(d, LK_MAILBOXES, "STRASSE@example.org"), "example.org/11/");
    ck_assert_str_eq(q(d, LK_MAILBOXES, "strasse@example.org"), "example.org/11/");
    ck_assert_str_eq(q(d, LK_MAILBOXES, "STRAẞE@example.org"), "example.org/11/");
    ck_assert_str_eq(q(d, LK_MAILBOXES, "JÜRGEN@example.org"), "example.org/12/");
    ck_assert_str_eq(q(d, LK_MAILBOXES, "j\xc3rg@example.org"), "(not found)");
    ck_assert_str_eq(q(d, LK_ALIASES, "ÄRGER@example.org"), "Jörg@example.org,straße@example.org");
    ck_assert_str_eq(q(d, LK_ALIASES, "ärger@example.org"), "Jörg@example.org,straße@example.org");
    /* owners through the alias's stored destinations, answered as stored */
    ck_assert_str_eq(q(d, LK_SENDERS, "Ärger@example.org"), "Jörg@example.org,straße@example.org");
    ck_assert_str_eq(q(d, LK_SENDERS, "ΟΔΟΣ@example.org"), "Jörg@example.org,jürgen@example.org");
    ck_assert_str_eq(q(d, LK_SENDERS, "οδος@example.org"), "Jörg@example.org,jürgen@example.org");
    /* master users are names, matched exactly */
    ck_assert_ptr_nonnull(dir_master_get(d, "Admin", 5));
    ck_assert_ptr_null(dir_master_get(d, "admin", 5));

    /* deletes find the folded key too */
    ck_assert_int_eq(dir_del(d, DIR_SENDER, 31), 1);
    ck_assert_str_eq(q(d, LK_SENDERS, "οδοσ@example.org"), "jürgen@example.org");
    ck_assert_int_eq(dir_del(d, DIR_SENDER, 30), 1);
    ck_assert_ptr_null(dir_sender_get(d, "οδοσ@example.org", strlen("οδοσ@example.org")));
    ck_assert_int_eq(dir_del(d, DIR_MAILBOX, 10), 1);
    ck_assert_str_eq(q(d, LK_MAILBOXES, "jörg@example.org"), "(not found)");
    ck_assert_int_eq(dir_del(d, DIR_ALIAS, 20), 1);
    ck_assert_str_eq(q(d, LK_ALIASES, "ärger@example.org"), "(not found)");
    /* a renamed row leaves its old key */
    dir_put(d, DIR_MAILBOX, mailbox(11, 1, "Straßer@example.org", 1));
    ck_assert_str_eq(q(d, LK_MAILBOXES, "strasse@example.org"), "(not found)");
    ck_assert_str_eq(q(d, LK_MAILBOXES, "STRASSER@example.org"), "example.org/11/");
    dir_free(d);
}
END_TEST

START_TEST(changes_in_order)
{
    struct dir *d = fixture_dir();
    struct dir_change c = { .seq = 101, .kind = DIR_MAILBOX, .id = 40,
                            .rec = mailbox(40, 1, "new@example.com", 1) };
    ck_assert_int_eq(dir_apply(d, &c), 1);
    ck_assert_uint_eq(d->seq, 101);
    ck_assert_str_eq(q(d, LK_MAILBOXES, "new@example.com"), "example.com/40/");
    /* a duplicate (same seq) and an older change are dropped */
    struct dir_change dup = { .seq = 101, .kind = DIR_MAILBOX, .id = 40, .rec = NULL };
    ck_assert_int_eq(dir_apply(d, &dup), 0);
    struct dir_change old = { .seq = 50, .kind = DIR_MAILBOX, .id = 40, .rec = NULL };
    ck_assert_int_eq(dir_apply(d, &old), 0);
    ck_assert_str_eq(q(d, LK_MAILBOXES, "new@example.com"), "example.com/40/");
    ck_assert_uint_eq(d->seq, 101);
    /* rename: the same id under a new address; the old key goes */
    struct dir_change ren = { .seq = 105, .kind = DIR_MAILBOX, .id = 40,
                              .rec = mailbox(40, 1, "renamed@example.com", 1) };
    ck_assert_int_eq(dir_apply(d, &ren), 1);
    ck_assert_str_eq(q(d, LK_MAILBOXES, "renamed@example.com"), "example.com/40/");
    ck_assert_str_eq(q(d, LK_ALIASES, "new@example.com"), "alice@example.com");
    ck_assert_uint_eq(dir_count(d, DIR_MAILBOX), 7);
    /* delete */
    struct dir_change del = { .seq = 106, .kind = DIR_MAILBOX, .id = 40, .rec = NULL };
    ck_assert_int_eq(dir_apply(d, &del), 1);
    ck_assert_str_eq(q(d, LK_MAILBOXES, "renamed@example.com"), "(not found)");
    ck_assert_uint_eq(dir_count(d, DIR_MAILBOX), 6);
    /* disable a domain: everything under it goes dark */
    struct dir_domain t = { .id = 1, .name = "example.com", .enabled = 0, .limit_window = 3600 };
    struct dir_change dis = { .seq = 107, .kind = DIR_DOMAIN, .id = 1, .rec = dir_domain_new(&t) };
    ck_assert_int_eq(dir_apply(d, &dis), 1);
    ck_assert_str_eq(q(d, LK_MAILBOXES, "alice@example.com"), "(not found)");
    ck_assert_str_eq(q(d, LK_ALIASES, "info@example.com"), "(not found)");
    ck_assert_str_eq(q(d, LK_DOMAINS, "example.com"), "(not found)");
    dir_free(d);
}
END_TEST

START_TEST(sender_chain_delete)
{
    struct dir *d = fixture_dir();
    /* remove the chain head, then the last one */
    ck_assert_int_eq(dir_del(d, DIR_SENDER, 31), 1);
    ck_assert_str_eq(q(d, LK_SENDERS, "boss@example.com"), "bob@example.com");
    ck_assert_int_eq(dir_del(d, DIR_SENDER, 30), 1);
    ck_assert_str_eq(q(d, LK_SENDERS, "boss@example.com"), "alice@example.com"); /* catch-all */
    ck_assert_int_eq(dir_del(d, DIR_SENDER, 30), 0);
    /* remove from the middle of a chain of three */
    add_sender(d, 50, 10, "x@example.com");
    add_sender(d, 51, 11, "x@example.com");
    add_sender(d, 52, 14, "x@example.com");
    ck_assert_int_eq(dir_del(d, DIR_SENDER, 51), 1);
    ck_assert_str_eq(q(d, LK_SENDERS, "x@example.com"), "hans@xn--mnchen-3ya.de,alice@example.com");
    dir_free(d);
}
END_TEST

START_TEST(htab_many)
{
    /* growth and backward-shift deletion keep every key reachable */
    struct dir *d = dir_new();
    char addr[64];
    add_domain(d, 1, "example.com", 1);
    for (int i = 0; i < 5000; i++) {
        snprintf(addr, sizeof(addr), "u%d@example.com", i);
        dir_put(d, DIR_MAILBOX, mailbox((uint64_t)i + 100, 1, addr, 1));
    }
    for (int i = 0; i < 5000; i += 2)
        ck_assert_int_eq(dir_del(d, DIR_MAILBOX, (uint64_t)i + 100), 1);
    for (int i = 0; i < 5000; i++) {
        snprintf(addr, sizeof(addr), "u%d@example.com", i);
        ck_assert_int_eq(dir_mailbox_get(d, addr, strlen(addr)) != NULL, i % 2);
    }
    ck_assert_uint_eq(dir_count(d, DIR_MAILBOX), 2500);
    dir_free(d);
}
END_TEST

/* Tagged and untagged tables answer alike, also for keys whose hashes
 * share their top bits (the tag) or their slot. */
static const void *str_keyof(const void *rec, size_t *len)
{
    *len = strlen(rec);
    return rec;
}

START_TEST(htab_tags)
{
    enum { N = 3000 };
    static char keys[N][16];
    struct htab t, u;
    htab_init_tagged(&t, str_keyof);
    htab_init(&u, str_keyof);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        ck_assert_ptr_null(htab_put(&t, keys[i]));
        ck_assert_ptr_null(htab_put(&u, keys[i]));
    }
    /* some pairs share a tag (16 bits of 3,000 hashes): all still found */
    int same_tag = 0;
    for (int i = 0; i < N && !same_tag; i++)
        for (int j = i + 1; j < N && !same_tag; j++)
            same_tag = htab_hash(keys[i], strlen(keys[i])) >> 48 == htab_hash(keys[j], strlen(keys[j])) >> 48;
    ck_assert(same_tag);
    for (int i = 0; i < N; i++) {
        ck_assert_ptr_eq(htab_get(&t, keys[i], strlen(keys[i])), keys[i]);
        ck_assert_ptr_eq(htab_get(&u, keys[i], strlen(keys[i])), keys[i]);
    }
    ck_assert_ptr_null(htab_get(&t, "k3000", 5));
    /* replacing gives the old record back, untagged */
    char again[] = "k7";
    ck_assert_ptr_eq(htab_put(&t, again), keys[7]);
    ck_assert_ptr_eq(htab_get(&t, "k7", 2), again);
    for (int i = 0; i < N; i += 3) {
        void *want = i == 7 ? (void *)again : (void *)keys[i];
        ck_assert_ptr_eq(htab_del(&t, keys[i], strlen(keys[i])), want);
    }
    size_t n = 0, pos = 0;
    for (const char *r; (r = htab_next(&t, &pos)) != NULL; n++)
        ck_assert_str_eq(htab_get(&u, r, strlen(r)), r);   /* real addresses */
    ck_assert_uint_eq(n, N - (N + 2) / 3);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(htab_get(&t, keys[i], strlen(keys[i])) != NULL, i % 3 != 0);
    htab_free(&t);
    htab_free(&u);
}
END_TEST

/* A view keeps the directory as it was while changes go on: the snapshot
 * written from it equals the one written before the changes. */
START_TEST(view_keeps_its_state)
{
    struct dir *d = fixture_dir(), *v;
    struct buf before, during, after;
    buf_init(&before);
    buf_init(&during);
    buf_init(&after);
    snap_format(d, &before);
    v = dir_view_new(d);
    ck_assert_uint_eq(v->seq, 100);
    /* replace, delete, add, and a sender chain change, on the directory */
    struct dir_change chg[] = {
        { 101, DIR_MAILBOX, 10, mailbox(10, 1, "alice@example.com", 0) },
        { 102, DIR_MAILBOX, 11, NULL },
        { 103, DIR_ALIAS, 20, NULL },
        { 104, DIR_SENDER, 31, NULL },
        { 105, DIR_MAILBOX, 70, mailbox(70, 1, "new@example.com", 1) },
    };
    for (size_t i = 0; i < sizeof(chg) / sizeof(chg[0]); i++)
        ck_assert_int_eq(dir_apply(d, &chg[i]), 1);
    for (int i = 0; i < 2000; i++) {    /* and make the indexes grow */
        char addr[64];
        snprintf(addr, sizeof(addr), "g%d@example.com", i);
        dir_put(d, DIR_MAILBOX, mailbox((uint64_t)i + 1000, 1, addr, 1));
    }
    ck_assert_uint_eq(d->nkept, 4);    /* alice's old record, bob, info, a sender */
    snap_format(v, &during);
    ck_assert_uint_eq(during.len, before.len);
    ck_assert(memcmp(during.data, before.data, before.len) == 0);
    ck_assert_str_eq(q(d, LK_MAILBOXES, "bob@example.com"), "(not found)");
    dir_view_free(d, v);
    ck_assert_uint_eq(d->views, 0);
    ck_assert_uint_eq(d->nkept, 0);
    /* without views, dropped records are freed at once */
    ck_assert_int_eq(dir_del(d, DIR_MAILBOX, 70), 1);
    ck_assert_uint_eq(d->nkept, 0);
    snap_format(d, &after);
    ck_assert(after.len != before.len || memcmp(after.data, before.data, before.len) != 0);
    buf_free(&before);
    buf_free(&during);
    buf_free(&after);
    dir_free(d);
}
END_TEST

static const char *keys[] = { "alice@example.com", "info+x@example.com", "nobody@example.com",
                              "boss@example.com", "hans@xn--mnchen-3ya.de", "carol@example.com",
                              "y@xn--mnchen-3ya.de", "example.com", "off.example" };

START_TEST(snapshot_roundtrip)
{
    struct dir *d = fixture_dir(), *e;
    struct buf text, err, a, b;
    buf_init(&text);
    buf_init(&err);
    buf_init(&a);
    buf_init(&b);
    struct dir_mailbox *odd = mailbox(60, 1, "odd@example.com", 1);
    dir_put(d, DIR_MAILBOX, odd);
    /* a suspended one, its reason with a space and a '%' */
    struct dir_mailbox *h = mailbox(61, 1, "held@example.com", 1), st = *h;
    st.send_suspended = 1;
    st.suspended_reason = "3 refusals (100%)";
    dir_put(d, DIR_MAILBOX, dir_mailbox_new(&st));
    free(h);
    snap_format(d, &text);
    e = snap_parse(text.data, text.len, &err);
    ck_assert_msg(e != NULL, "%s", err.data);
    ck_assert_uint_eq(e->seq, 100);
    for (int k = 0; k < DIR_NKINDS; k++)
        ck_assert_uint_eq(dir_count(e, (enum dir_kind)k), dir_count(d, (enum dir_kind)k));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        for (int m = 0; m < LK_NMAPS; m++) {
            lk_lookup(d, (enum lk_map)m, keys[i], strlen(keys[i]), "+", &a);
            lk_lookup(e, (enum lk_map)m, keys[i], strlen(keys[i]), "+", &b);
            ck_assert_str_eq(a.data ? a.data : "", b.data ? b.data : "");
        }
    const struct dir_mailbox *m = dir_mailbox_get(e, "alice@example.com", 17);
    ck_assert_str_eq(m->password, "{SHA512-CRYPT}$6$x$y");
    ck_assert_ptr_null(m->home);
    ck_assert_int_eq(m->quota_bytes, -1);
    ck_assert_int_eq(m->send_suspended, 0);
    ck_assert_ptr_null(m->suspended_reason);
    m = dir_mailbox_get(e, "held@example.com", 16);
    ck_assert_int_eq(m->send_suspended, 1);
    ck_assert_str_eq(m->suspended_reason, "3 refusals (100%)");
    dir_free(e);

    /* a cut file is refused */
    e = snap_parse(text.data, text.len - 8, &err);
    ck_assert_ptr_null(e);
    /* a wrong trailer count is refused */
    char *t2 = strdup(text.data);
    char *end = strstr(t2, "\nend ");
    end[5] = end[5] == '9' ? '8' : (char)(end[5] + 1);
    e = snap_parse(t2, strlen(t2), &err);
    ck_assert_ptr_null(e);
    free(t2);
    /* a version from elsewhere is refused, and says which way */
    struct buf t;
    buf_init(&t);
    buf_adds(&t, "mailroster-snapshot 6 5\nend 0\n");
    snap_seal(&t);
    e = snap_parse(t.data, t.len, &err);
    ck_assert_ptr_null(e);
    ck_assert_ptr_nonnull(strstr(err.data, "from a newer version"));
    e = snap_parse("mailroster-snapshot 1 5\nend 0\n", 30, &err);
    ck_assert_ptr_null(e);
    ck_assert_ptr_nonnull(strstr(err.data, "format 1 is from an older version"));
    /* format 2 had no suspension: older too */
    buf_reset(&t);
    buf_adds(&t, "mailroster-snapshot 2 5\nend 0\n");
    snap_seal(&t);
    e = snap_parse(t.data, t.len, &err);
    ck_assert_ptr_null(e);
    ck_assert_ptr_nonnull(strstr(err.data, "format 2 is from an older version"));
    buf_reset(&t);
    buf_adds(&t, "mailroster-snapshot 3 5\nend 0\n");
    snap_seal(&t);
    e = snap_parse(t.data, t.len, &err);
    ck_assert_msg(e != NULL, "%s", err.data);
    dir_free(e);
    /* without its checksum line it is cut */
    e = snap_parse("mailroster-snapshot 3 5\nend 0\n", 30, &err);
    ck_assert_ptr_null(e);
    ck_assert_str_eq(err.data, "file is cut short (no checksum line)");
    /* an empty optional string (found by fuzzing: it used to be unterminated) */
    buf_reset(&t);
    buf_adds(&t, "mailroster-snapshot 3 0\nD 1 1 0 0 0 0 1 =a =\nend 1\n");
    snap_seal(&t);
    e = snap_parse(t.data, t.len, &err);
    buf_free(&t);
    ck_assert_msg(e != NULL, "%s", err.data);
    ck_assert_str_eq(dir_domain_get(e, "a", 1)->disabled_reason, "");
    dir_free(e);
    dir_free(d);
    buf_free(&text);
    buf_free(&err);
    buf_free(&a);
    buf_free(&b);
}
END_TEST

TCase *snap_file_tcase(void);

Suite *dir_suite(void)
{
    Suite *s = suite_create("dir");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, lookup_domains);
    tcase_add_test(tc, lookup_mailboxes);
    tcase_add_test(tc, lookup_aliases);
    tcase_add_test(tc, lookup_senders);
    tcase_add_test(tc, changes_in_order);
    tcase_add_test(tc, sender_chain_delete);
    tcase_add_test(tc, htab_many);
    tcase_add_test(tc, htab_tags);
    tcase_add_test(tc, view_keeps_its_state);
    tcase_add_test(tc, snapshot_roundtrip);
    tcase_add_test(tc, unfolded_keys);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, snap_file_tcase()); /* test_snap.c */
    return s;
}
