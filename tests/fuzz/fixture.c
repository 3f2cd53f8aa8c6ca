/* fixture.c - the fuzz targets' directory (see fixture.h). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "fixture.h"

static void domain(struct dir *d, uint64_t id, const char *name, int enabled, const char *why)
{
    struct dir_domain t = { .id = id, .name = name, .enabled = (uint8_t)enabled,
                            .quota_bytes = 1 << 30, .limit_messages = 500,
                            .limit_recipients = 50, .limit_window = 3600,
                            .disabled_reason = why };
    dir_put(d, DIR_DOMAIN, dir_domain_new(&t));
}

static void mailbox(struct dir *d, uint64_t id, uint64_t dom, const char *addr, int enabled,
                    int may_receive)
{
    char maildir[300];
    struct dir_mailbox t = { .id = id, .domain_id = dom, .address = addr,
                             .enabled = (uint8_t)enabled, .may_send = 1,
                             .may_receive = (uint8_t)may_receive, .services = SVC_ALL,
                             .quota_bytes = -1, .quota_messages = -1, .limit_messages = -1,
                             .limit_recipients = -1, .uid = -1, .gid = -1,
                             .password = "{SHA512-CRYPT}$6$salt$hash with space%" };
    snprintf(maildir, sizeof(maildir), "%s/%llu/", strchr(addr, '@') + 1, (unsigned long long)id);
    t.maildir = maildir;
    if (id == 14) {
        t.home = "/srv/mail/h\xc3\xa4ns";
        t.mail = "maildir:~/Maildir";
        t.services = SVC_IMAP | SVC_LMTP;
        t.uid = 5000;
        t.gid = 5000;
    }
    if (!enabled)
        t.disabled_reason = "left the company\n(2024)";
    dir_put(d, DIR_MAILBOX, dir_mailbox_new(&t));
}

static void alias(struct dir *d, uint64_t id, uint64_t dom, const char *src, const char *dests,
                  int enabled)
{
    struct dir_alias t = { .id = id, .domain_id = dom, .source = src, .destinations = dests,
                           .enabled = (uint8_t)enabled, .may_send = 1 };
    dir_put(d, DIR_ALIAS, dir_alias_new(&t));
}

/* A mailbox that forwards (migration 0010). */
static void forwarder(struct dir *d, uint64_t id, const char *addr, const char *to, int keep_copy)
{
    struct dir_mailbox t = { .id = id, .domain_id = 1, .address = addr, .enabled = 1, .may_send = 1,
                             .may_receive = 1, .services = SVC_ALL, .quota_bytes = -1,
                             .quota_messages = -1, .limit_messages = -1, .limit_recipients = -1,
                             .uid = -1, .gid = -1, .maildir = "example.com/fwd/",
                             .forward = to, .keep_copy = (uint8_t)keep_copy };
    dir_put(d, DIR_MAILBOX, dir_mailbox_new(&t));
}

static void transport(struct dir *d, uint64_t id, const char *pattern, const char *to, int enabled)
{
    struct dir_transport t = { .id = id, .enabled = (uint8_t)enabled, .pattern = pattern, .transport = to };
    dir_put(d, DIR_TRANSPORT, dir_transport_new(&t));
}

static void sender(struct dir *d, uint64_t id, uint64_t mbox, const char *addr)
{
    struct dir_sender t = { .id = id, .mailbox_id = mbox, .address = addr };
    dir_put(d, DIR_SENDER, dir_sender_new(&t));
}

/* Destinations "dNNNNN@r.example,..." of exactly len octets. */
static void long_dests(struct buf *b, size_t len)
{
    unsigned n = 0;
    buf_reset(b);
    while (len - b->len > 40) {
        if (b->len)
            buf_addc(b, ',');
        buf_printf(b, "d%05u@r.example", n++);
    }
    buf_adds(b, ",z");
    while (b->len < len - strlen("@r.example"))
        buf_addc(b, 'z');
    buf_adds(b, "@r.example");
}

struct dir *fuzz_fixture_dir(int big)
{
    struct dir *d = dir_new();
    struct dir_master m = { .id = 40, .enabled = 1, .name = "admin",
                            .password = "{ARGON2ID}$argon2id$x", .domains = "example.com" };

    domain(d, 1, "example.com", 1, NULL);
    domain(d, 2, "off.example", 0, "unpaid");
    domain(d, 3, "xn--mnchen-3ya.de", 1, NULL);
    mailbox(d, 10, 1, "alice@example.com", 1, 1);
    mailbox(d, 11, 1, "bob@example.com", 1, 1);
    mailbox(d, 12, 1, "carol@example.com", 0, 1);
    mailbox(d, 13, 2, "dave@off.example", 1, 1);
    mailbox(d, 14, 3, "hans@xn--mnchen-3ya.de", 1, 1);
    mailbox(d, 15, 1, "norecv@example.com", 1, 0);
    mailbox(d, 16, 1, "a-b.c+d@example.com", 1, 1); /* delimiter inside a stored name */
    alias(d, 20, 1, "info@example.com", "alice@example.com,bob@example.com", 1);
    alias(d, 21, 1, "@example.com", "alice@example.com", 1);
    alias(d, 22, 1, "fwd@example.com", "someone@remote.example", 1);
    alias(d, 23, 3, "@xn--mnchen-3ya.de", "@example.com", 1);
    alias(d, 24, 2, "sales@off.example", "dave@off.example", 1);
    alias(d, 25, 1, "old@example.com", "bob@example.com", 0);
    alias(d, 26, 1, "odd@example.com", ",per%cent@remote.example,,sp ace@x,@example.com,nodomain,", 1);
    alias(d, 27, 1, "team@example.com", "info@example.com,carol@example.com,alice@example.com", 1);
    forwarder(d, 17, "fwd-only@example.com", "bob@example.com,x@remote.example", 0);
    forwarder(d, 18, "fwd-copy@example.com", "carl@remote.example", 1);
    {
        struct dir_alias t = { .id = 28, .domain_id = 1, .source = "noreply@example.com",
                               .destinations = "alice@example.com", .enabled = 1, .may_send = 0 };
        dir_put(d, DIR_ALIAS, dir_alias_new(&t));
    }
    transport(d, 60, "example.net", "relay:[10.0.0.5]:8025", 1);
    transport(d, 61, ".example.net", "smtp:[mx.example.net]", 1);
    transport(d, 62, "gone@example.com", "error:5.1.1 gone, try carl@remote.example", 1);
    transport(d, 63, "off.example.org", "discard:", 0);
    sender(d, 30, 11, "boss@example.com");
    sender(d, 31, 10, "boss@example.com");
    sender(d, 32, 12, "carol-alt@example.com");
    sender(d, 33, 99, "ghost@example.com"); /* owner that does not exist */
    sender(d, 34, 10, "@xn--mnchen-3ya.de");
    dir_put(d, DIR_MASTER, dir_master_new(&m));
    if (big) {
        struct buf b;
        buf_init(&b);
        /* "200 " + value + "\n": 4096 octets fit, 4097 do not */
        long_dests(&b, TCPT_EDGE_VALUE);
        alias(d, 50, 1, "edge4096@example.com", b.data, 1);
        long_dests(&b, TCPT_EDGE_VALUE + 1);
        alias(d, 51, 1, "edge4097@example.com", b.data, 1);
        /* "OK " + value: 100000 octets fit, 100001 do not */
        long_dests(&b, SMAP_EDGE_VALUE);
        alias(d, 52, 1, "huge@example.com", b.data, 1);
        long_dests(&b, SMAP_EDGE_VALUE + 1);
        alias(d, 53, 1, "huge1@example.com", b.data, 1);
        buf_free(&b);
    }
    d->seq = 100;
    return d;
}
