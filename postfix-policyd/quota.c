/* quota.c - usage in memory and the quota decision (see quota.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "htab.h"
#include "lookup.h"
#include "mem.h"
#include "quota.h"

/* One row: a single allocation, the key after the numbers. */
struct urec {
    int64_t bytes, messages;
    size_t len;
    char user[];
};

struct quota_usage {
    struct htab h;
};

static const void *urec_key(const void *rec, size_t *len)
{
    const struct urec *r = rec;
    *len = r->len;
    return r->user;
}

struct quota_usage *quota_usage_new(void)
{
    struct quota_usage *u = xcalloc(1, sizeof(*u));
    htab_init(&u->h, urec_key);
    return u;
}

void quota_usage_free(struct quota_usage *u)
{
    void *r;
    if (u == NULL)
        return;
    for (size_t i = 0; (r = htab_next(&u->h, &i)) != NULL;)
        free(r);
    htab_free(&u->h);
    free(u);
}

void quota_usage_set(struct quota_usage *u, const char *user, int64_t bytes, int64_t messages)
{
    size_t len = strlen(user);
    struct urec *r = htab_get(&u->h, user, len);
    if (r) {
        r->bytes = bytes;
        r->messages = messages;
        return;
    }
    r = xmalloc(sizeof(*r) + len + 1);
    r->bytes = bytes;
    r->messages = messages;
    r->len = len;
    memcpy(r->user, user, len + 1);
    htab_put(&u->h, r);
}

int quota_usage_get(const struct quota_usage *u, const char *user, size_t len, int64_t *bytes,
                    int64_t *messages)
{
    const struct urec *r = htab_get(&u->h, user, len);
    if (r == NULL)
        return 0;
    *bytes = r->bytes;
    *messages = r->messages;
    return 1;
}

int quota_usage_forget(struct quota_usage *u, const char *user)
{
    void *r = htab_del(&u->h, user, strlen(user));
    free(r);
    return r != NULL;
}

void quota_usage_merge(struct quota_usage *to, struct quota_usage *from)
{
    void *r;
    for (size_t i = 0; (r = htab_next(&from->h, &i)) != NULL;)
        free(htab_put(&to->h, r));
    /* the records belong to `to` now: drop the slots only */
    htab_free(&from->h);
}

size_t quota_usage_count(const struct quota_usage *u) { return u ? u->h.count : 0; }

/* --- the decision -------------------------------------------------------- */

enum quota_test quota_test(int64_t limit_bytes, int64_t limit_messages, int64_t used_bytes,
                           int64_t used_messages, int64_t size, const char **what)
{
    /* a negative count (a hand-edited row) is no usage */
    int64_t ub = used_bytes > 0 ? used_bytes : 0, um = used_messages > 0 ? used_messages : 0;
    if (size < 0)
        size = 0;
    /* written without sums: the operands come from outside and may be huge */
    if (limit_bytes > 0 && (ub > limit_bytes || (ub == limit_bytes && size > 0))) {
        *what = "storage";
        return QUOTA_FULL;
    }
    if (limit_messages > 0 && um >= limit_messages) {
        *what = "messages";
        return QUOTA_FULL;
    }
    if (limit_bytes > 0 && size > limit_bytes - ub) {
        *what = "storage";
        return QUOTA_NO_ROOM;
    }
    *what = NULL;
    return QUOTA_ROOM;
}

static int64_t effective(int64_t own, int64_t dflt) { return own >= 0 ? own : dflt; }

enum quota_test quota_mailbox(const struct dir_domain *dom, const struct dir_mailbox *m,
                              const struct quota_usage *u, int64_t size, struct quota_result *res)
{
    if (!dom->enabled || !m->enabled || !m->may_receive)
        return QUOTA_ROOM;  /* Postfix refuses it on its own */
    int64_t lb = effective(m->quota_bytes, dom->quota_bytes);
    int64_t lm = effective(m->quota_messages, dom->quota_messages);
    int64_t ub = 0, um = 0;
    const char *what = NULL;
    (void)quota_usage_get(u, m->address, strlen(m->address), &ub, &um);
    res->mailboxes++;
    enum quota_test t = quota_test(lb, lm, ub, um, size, &what);
    if (t != QUOTA_ROOM && res->over++ == 0) {
        size_t n = strlen(m->address);
        if (n >= sizeof(res->mailbox))
            n = sizeof(res->mailbox) - 1;
        memcpy(res->mailbox, m->address, n);
        res->mailbox[n] = 0;
        res->what = what;
        res->used = !strcmp(what, "storage") ? ub : um;
        res->limit = !strcmp(what, "storage") ? lb : lm;
    }
    return t;
}

/* A final address (no alias of its own): QUOTA_ROOM unless it is a local
 * mailbox that can receive and is over quota (then res says which). */
static enum quota_test final_address(const struct dir *d, const struct quota_usage *u, const char *delims,
                                     const char *addr, size_t len, int64_t size, struct quota_result *res)
{
    struct buf canon;
    size_t at;
    enum quota_test t = QUOTA_ROOM;

    buf_init(&canon);
    if (memchr(addr, 0, len) == NULL && addr_canon(addr, len, &canon, &at) == ADDR_OK && at > 0) {
        /* user+ext@domain is user@domain's mailbox */
        size_t ext = addr_ext_split(canon.data, at, delims);
        if (ext < at) {
            memmove(canon.data + ext, canon.data + at, canon.len - at + 1);
            canon.len -= at - ext;
            at = ext;
        }
        const struct dir_domain *dom = dir_domain_get(d, canon.data + at + 1, canon.len - at - 1);
        const struct dir_mailbox *m = dom ? dir_mailbox_get(d, canon.data, canon.len) : NULL;
        if (m)
            t = quota_mailbox(dom, m, u, size, res);
    }
    buf_free(&canon);
    return t;
}

/* The addresses met while following aliases: each string once. */
static const void *str_key(const void *rec, size_t *len)
{
    *len = strlen(rec);
    return rec;
}

/* Is addr one of the comma-separated addresses in list? */
static int listed(const char *list, const char *addr)
{
    size_t n = strlen(addr);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && memcmp(p, addr, n) == 0)
            return 1;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

void quota_rcpt(const struct dir *d, const struct quota_usage *u, const char *delims, const char *rcpt,
                int64_t size, struct quota_result *res)
{
    struct htab seen;
    char **todo = NULL;
    size_t n = 0, cap = 0, finals = 0;
    int no_room = 0, room = 0;
    struct buf value;

    memset(res, 0, sizeof(*res));
    res->verdict = QUOTA_ROOM;
    buf_init(&value);
    /* the common case, a mailbox: no alias, nothing to remember */
    if (lk_lookup(d, LK_ALIASES, rcpt, strlen(rcpt), delims, &value) == LK_NOTFOUND) {
        enum quota_test t = final_address(d, u, delims, rcpt, strlen(rcpt), size, res);
        if (t != QUOTA_ROOM)
            res->verdict = t;
        buf_free(&value);
        return;
    }
    /* breadth first; todo[] owns every address met, seen indexes it */
    htab_init(&seen, str_key);
    for (size_t i = 0;; i++) {
        for (const char *p = value.data; *p && !room;) {
            size_t len = strcspn(p, ",");
            if (len > 0 && htab_get(&seen, p, len) == NULL) {
                if (n == QUOTA_MAX_ADDRESSES) {
                    room = 1;   /* too many to judge: Postfix decides */
                    break;
                }
                if (n == cap) {
                    cap = cap ? 2 * cap : 8;
                    todo = xrealloc(todo, cap * sizeof(*todo));
                }
                htab_put(&seen, todo[n++] = xstrndup(p, len));
            }
            p += len;
            if (*p == ',')
                p++;
        }
        /* the next address that is not an alias itself is a final one; so
         * is one that expands into itself (a mailbox that keeps a copy of
         * what it forwards), which Postfix expands once and delivers */
        for (; i < n && !room; i++) {
            int alias = lk_lookup(d, LK_ALIASES, todo[i], strlen(todo[i]), delims, &value) == LK_FOUND;
            if (alias && !listed(value.data, todo[i]))
                break;
            finals++;
            switch (final_address(d, u, delims, todo[i], strlen(todo[i]), size, res)) {
            case QUOTA_ROOM: room = 1; break;
            case QUOTA_NO_ROOM: no_room = 1; break;
            case QUOTA_FULL: break;
            }
            if (alias)
                break;  /* its other destinations next */
        }
        if (i >= n || room)
            break;
    }
    if (!room && finals > 0)
        res->verdict = no_room ? QUOTA_NO_ROOM : QUOTA_FULL;
    for (size_t i = 0; i < n; i++)
        free(todo[i]);
    free(todo);
    htab_free(&seen);
    buf_free(&value);
}
