/* dir.h - the mail directory in memory: domains, mailboxes, aliases, extra
 * sender addresses, master users and transports, indexed for lookups.
 *
 * Only the event loop thread touches a live directory. The database thread
 * builds records (and whole directories, on a full load) and hands them
 * over; the directory then owns them. Every record is one allocation: the
 * struct followed by its strings. */
#ifndef MR_DIR_H
#define MR_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "htab.h"

enum dir_kind { DIR_DOMAIN, DIR_MAILBOX, DIR_ALIAS, DIR_SENDER, DIR_MASTER, DIR_TRANSPORT, DIR_NKINDS };

/* Per-service access bits of a mailbox. */
enum {
    SVC_IMAP = 1 << 0,
    SVC_POP3 = 1 << 1,
    SVC_SUBMISSION = 1 << 2,
    SVC_LMTP = 1 << 3,
    SVC_SIEVE = 1 << 4,
    SVC_ALL = (1 << 5) - 1,
};
/* Parse "imap,pop3" or a PostgreSQL array literal "{imap,pop3}"; -1 on an unknown name. */
int dir_services_parse(const char *s, uint32_t *out);
/* Append the names of bits to a buffer as "imap,pop3". */
struct buf;
void dir_services_format(struct buf *out, uint32_t bits);

/* Every record starts with its id: one key function serves all id indexes. */
struct dir_domain {
    uint64_t id;
    int64_t quota_bytes, quota_messages;   /* 0 = unlimited */
    int32_t limit_messages, limit_recipients, limit_window;
    uint8_t enabled;
    const char *name;                      /* canonical A-label */
    const char *disabled_reason;           /* may be NULL */
};

struct dir_mailbox {
    uint64_t id, domain_id;
    int64_t quota_bytes, quota_messages;   /* -1 = domain default */
    int32_t limit_messages, limit_recipients; /* -1 = domain default */
    int32_t uid, gid;                      /* -1 = not set */
    uint32_t services;
    const char *password;                  /* "{SCHEME}hash" or NULL */
    const char *home, *mail;               /* overrides or NULL */
    const char *maildir;
    const char *disabled_reason;
    const char *suspended_reason;          /* set when send_suspended */
    /* forwarding (migration 0010): incoming mail goes to forward instead
     * of the mailbox, or besides it with keep_copy */
    const char *forward;                   /* comma-separated, NULL = none */
    /* What a lookup reads comes last, next to the address the record's
     * strings start with (dir_mailbox_new): at 100,000 mailboxes and more
     * a lookup's first touch of a record misses the cache, and the hash
     * key, the flags and the address then share one or two lines. */
    uint8_t enabled, may_send, may_receive;
    /* sending suspended after repeated rate-limit refusals (migration
     * 0006): its mail is held, not refused; may_send = 0 is an admin's
     * refusal, a different thing */
    uint8_t send_suspended;
    uint8_t keep_copy;
    const char *address;                   /* canonical local@domain */
    const char *key;                       /* index key if not address (below) */
};

struct dir_alias {
    uint64_t id, domain_id;
    uint8_t enabled;
    uint8_t may_send;                      /* its local destinations may send as it */
    const char *source;                    /* local@domain, or @domain */
    const char *key;                       /* index key if not source (below) */
    const char *destinations;              /* comma-separated */
};

struct dir_sender {
    uint64_t id, mailbox_id;
    const char *address;                   /* local@domain or @domain */
    const char *key;                       /* index key if not address (below) */
    struct dir_sender *next;               /* same address, other owner */
};

struct dir_master {
    uint64_t id;
    uint8_t enabled;
    const char *name;
    const char *password;
    const char *domains;                   /* comma-separated, NULL = all */
};

/* A Postfix transport(5) entry (migration 0010). */
struct dir_transport {
    uint64_t id;
    uint8_t enabled;
    const char *pattern;                   /* local@domain, domain or .domain (A-labels) */
    const char *transport;                 /* transport(5)'s right-hand side */
};

/* Mailboxes, aliases and senders are indexed by their address case-folded
 * as Postfix folds keys (addr_fold): a row stored by SQL or an importer as
 * "Jörg@..." or "straße@..." (the schema refuses only ASCII upper case) is
 * found as "jörg@..." or "strasse@...". The address stays as stored; key
 * holds the folded form only where it differs. The *_new functions set key
 * (a template's is ignored); the *_get functions fold a key with non-ASCII
 * text and take an ASCII one as given (lowercase, as addr_canon makes it).
 * Master users are names, not addresses: matched exactly. */

/* Packed copies of a template whose strings may live anywhere. */
struct dir_domain *dir_domain_new(const struct dir_domain *t);
struct dir_mailbox *dir_mailbox_new(const struct dir_mailbox *t);
struct dir_alias *dir_alias_new(const struct dir_alias *t);
struct dir_sender *dir_sender_new(const struct dir_sender *t);
struct dir_master *dir_master_new(const struct dir_master *t);
struct dir_transport *dir_transport_new(const struct dir_transport *t);

/* A database's identity (migration 0014): a UUID in text, "" = unknown. */
#define DIR_DBID_SIZE 37

struct dir {
    uint64_t seq;                          /* last change applied */
    char db_id[DIR_DBID_SIZE];             /* the database it is of, "" = unknown */
    struct htab dom_name, dom_id;
    struct htab mbox_addr, mbox_id;
    struct htab alias_src, alias_id;
    struct htab sender_addr, sender_id;    /* sender_addr holds chain heads */
    struct htab master_name, master_id;
    struct htab transport_pattern, transport_id;
    /* while views exist, records dropped are kept here, not freed */
    int views;
    void **kept;
    size_t nkept, kept_cap;
};

struct dir *dir_new(void);
/* Frees d and its records; d must have no views. */
void dir_free(struct dir *d);

/* A view: the directory as it is now, for a snapshot writer on another
 * thread while the loop goes on changing d. Only the view's seq and by-id
 * indexes may be read (snap_format does no more); they are copies (8 bytes
 * a slot), the records are d's own. Records are never changed in place, so
 * a record a view holds stays as it was: while d has views, the ones it
 * drops are kept until the last view is freed. Made and freed on the
 * thread that changes d. The view has d's seq and db_id as they are now. */
struct dir *dir_view_new(struct dir *d);
void dir_view_free(struct dir *d, struct dir *view);

/* Store rec (replacing and freeing the record with the same id); takes ownership. */
void dir_put(struct dir *d, enum dir_kind kind, void *rec);
/* Remove and free the record with this id; 0 when there was none. */
int dir_del(struct dir *d, enum dir_kind kind, uint64_t id);

/* One change from the change log: rec is the row as it is now, NULL when
 * the row is gone. */
struct dir_change {
    uint64_t seq;
    enum dir_kind kind;
    uint64_t id;
    void *rec;
};

/* Apply in order: a change whose seq is not above the directory's is a
 * duplicate and is dropped. Takes ownership of rec. Returns 1 if applied. */
int dir_apply(struct dir *d, struct dir_change *c);

const struct dir_domain *dir_domain_get(const struct dir *d, const char *name, size_t len);
const struct dir_mailbox *dir_mailbox_get(const struct dir *d, const char *addr, size_t len);
const struct dir_mailbox *dir_mailbox_by_id(const struct dir *d, uint64_t id);
const struct dir_alias *dir_alias_get(const struct dir *d, const char *src, size_t len);
const struct dir_sender *dir_sender_get(const struct dir *d, const char *addr, size_t len);
const struct dir_master *dir_master_get(const struct dir *d, const char *name, size_t len);
const struct dir_transport *dir_transport_get(const struct dir *d, const char *pattern, size_t len);

size_t dir_count(const struct dir *d, enum dir_kind kind);
const char *dir_kind_name(enum dir_kind kind);

#endif
