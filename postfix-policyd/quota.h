/* quota.h - recipient quota at RCPT: the usage Dovecot keeps in
 * mailroster.quota_usage, held in memory, and the pure decision whether a
 * recipient's mailboxes have room for a message.
 *
 * Only the event loop touches the live usage table; the quota database
 * thread (quota_db.h) builds tables of rows and hands them over, either as
 * the whole table or as the rows that changed.
 *
 * Over quota, per mailbox: used bytes + the declared message size > the
 * storage quota, or used messages + 1 > the message quota. A quota is the
 * mailbox's own, else its domain's (as the auth endpoint's quota_rule);
 * 0 is unlimited. A mailbox without a usage row has used nothing yet. */
#ifndef MR_QUOTA_H
#define MR_QUOTA_H

#include <stddef.h>
#include <stdint.h>

#include "dir.h"

/* --- usage: user name (the canonical address) -> bytes, messages ------- */

struct quota_usage;

struct quota_usage *quota_usage_new(void);
void quota_usage_free(struct quota_usage *u);
/* A user's row as it is now (a new row or a changed one). */
void quota_usage_set(struct quota_usage *u, const char *user, int64_t bytes, int64_t messages);
/* 1 and the row's values when user has a row, else 0. */
int quota_usage_get(const struct quota_usage *u, const char *user, size_t len, int64_t *bytes,
                    int64_t *messages);
/* Drop a user's row (a removed mailbox); 0 when there was none. */
int quota_usage_forget(struct quota_usage *u, const char *user);
/* Move every row of from into to (replacing to's rows of the same users);
 * from is left empty. */
void quota_usage_merge(struct quota_usage *to, struct quota_usage *from);
size_t quota_usage_count(const struct quota_usage *u);

/* --- the decision -------------------------------------------------------- */

enum quota_test {
    QUOTA_ROOM,             /* fits (or unlimited) */
    QUOTA_FULL,             /* at or over a limit whatever the size */
    QUOTA_NO_ROOM,          /* not full, but a message of this size does not fit */
};

/* One mailbox: limits (0 = unlimited), its usage, the message size (0 =
 * not declared). Which limit is in *what ("storage" / "messages"). */
enum quota_test quota_test(int64_t limit_bytes, int64_t limit_messages, int64_t used_bytes,
                           int64_t used_messages, int64_t size, const char **what);

struct quota_result;

/* One mailbox of the directory (dom its domain): QUOTA_ROOM unless it can
 * receive and is over quota; res counts it and, when over, names it. */
enum quota_test quota_mailbox(const struct dir_domain *dom, const struct dir_mailbox *m,
                              const struct quota_usage *u, int64_t size, struct quota_result *res);

/* Addresses looked at for one recipient at most (aliases followed),
 * as Postfix's virtual_alias_expansion_limit. */
#define QUOTA_MAX_ADDRESSES 1000

struct quota_result {
    enum quota_test verdict;    /* QUOTA_ROOM unless every final mailbox is over */
    int mailboxes;              /* final local mailboxes looked at */
    int over;                   /* ... of them over quota */
    char mailbox[256];          /* an over-quota mailbox (the first), for the log */
    const char *what;           /* its limit: "storage" / "messages" */
    int64_t used, limit;        /* its usage and limit of that kind */
};

/* Does the recipient (as Postfix gives it) have room for a message of size
 * octets? Aliases are followed to their final addresses as Postfix's
 * virtual_alias_maps would expand them. The recipient is refused
 * (verdict != QUOTA_ROOM) only when every final address is a local mailbox
 * over quota: an outside address, a mailbox with room, or anything else
 * (an unknown or disabled mailbox, which Postfix refuses on its own) lets
 * it through, and so does an expansion larger than QUOTA_MAX_ADDRESSES.
 * QUOTA_NO_ROOM when at least one of the full mailboxes would take a
 * smaller message. Pure: reads d and u only. */
void quota_rcpt(const struct dir *d, const struct quota_usage *u, const char *delims, const char *rcpt,
                int64_t size, struct quota_result *res);

#endif
