/* dir.c - the in-memory mail directory. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "buf.h"
#include "dir.h"
#include "mem.h"

static const char *svc_names[] = { "imap", "pop3", "submission", "lmtp", "sieve" };

int dir_services_parse(const char *s, uint32_t *out)
{
    uint32_t bits = 0;
    const char *p = s;

    if (*p == '{')
        p++;
    while (*p && *p != '}') {
        size_t n = strcspn(p, ",}");
        int found = 0;
        const char *name = p;
        size_t nlen = n;
        if (nlen >= 2 && name[0] == '"' && name[nlen - 1] == '"') {
            name++;
            nlen -= 2;
        }
        for (size_t i = 0; i < sizeof(svc_names) / sizeof(svc_names[0]); i++)
            if (strlen(svc_names[i]) == nlen && memcmp(svc_names[i], name, nlen) == 0) {
                bits |= 1u << i;
                found = 1;
            }
        if (!found && nlen > 0)
            return -1;
        p += n;
        if (*p == ',')
            p++;
    }
    *out = bits;
    return 0;
}

void dir_services_format(struct buf *out, uint32_t bits)
{
    int first = 1;
    for (size_t i = 0; i < sizeof(svc_names) / sizeof(svc_names[0]); i++)
        if (bits & (1u << i)) {
            if (!first)
                buf_addc(out, ',');
            buf_adds(out, svc_names[i]);
            first = 0;
        }
}

/* Copy the strings behind ptrs into the bytes after the struct. */
static void *pack(const void *tmpl, size_t size, const char **ptrs[], size_t n)
{
    size_t total = size;
    for (size_t i = 0; i < n; i++)
        if (*ptrs[i])
            total += strlen(*ptrs[i]) + 1;
    char *rec = xmalloc(total), *s = rec + size;
    memcpy(rec, tmpl, size);
    for (size_t i = 0; i < n; i++) {
        /* the same field inside the new record */
        const char **field = (const char **)(void *)(rec + ((const char *)ptrs[i] - (const char *)tmpl));
        if (*ptrs[i]) {
            size_t len = strlen(*ptrs[i]) + 1;
            memcpy(s, *ptrs[i], len);
            *field = s;
            s += len;
        }
    }
    return rec;
}

#define NPTRS(a) (sizeof(a) / sizeof((a)[0]))

/* Does s[0..len) change when case-folded? Lowercase ASCII, the common case,
 * does not: one pass, no allocation, no library call. */
static int needs_fold(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || (c >= 'A' && c <= 'Z'))
            return 1;
    }
    return 0;
}

/* The index key of a stored address: NULL when it is its own key, else its
 * folded form in tmp. Text that is not UTF-8 (the database cannot hold it)
 * is its own key: no folded lookup key can meet it. */
static const char *fold_key(const char *s, struct buf *tmp)
{
    if (s == NULL || !needs_fold(s, strlen(s)))
        return NULL;
    if (addr_fold(s, strlen(s), tmp) != ADDR_OK || strcmp(tmp->data, s) == 0)
        return NULL;
    return tmp->data;
}

struct dir_domain *dir_domain_new(const struct dir_domain *t)
{
    const char **p[] = { (const char **)&t->name, (const char **)&t->disabled_reason };
    return pack(t, sizeof(*t), p, NPTRS(p));
}

struct dir_mailbox *dir_mailbox_new(const struct dir_mailbox *t)
{
    struct dir_mailbox c = *t;
    struct buf k;
    buf_init(&k);
    c.key = fold_key(t->address, &k);
    const char **p[] = { (const char **)&c.address, (const char **)&c.key,
                         (const char **)&c.password,
                         (const char **)&c.home, (const char **)&c.mail,
                         (const char **)&c.maildir, (const char **)&c.disabled_reason,
                         (const char **)&c.suspended_reason, (const char **)&c.forward };
    struct dir_mailbox *m = pack(&c, sizeof(c), p, NPTRS(p));
    buf_free(&k);
    return m;
}

struct dir_alias *dir_alias_new(const struct dir_alias *t)
{
    struct dir_alias c = *t;
    struct buf k;
    buf_init(&k);
    c.key = fold_key(t->source, &k);
    const char **p[] = { (const char **)&c.source, (const char **)&c.key,
                         (const char **)&c.destinations };
    struct dir_alias *a = pack(&c, sizeof(c), p, NPTRS(p));
    buf_free(&k);
    return a;
}

struct dir_sender *dir_sender_new(const struct dir_sender *t)
{
    struct dir_sender c = *t;
    struct buf k;
    buf_init(&k);
    c.key = fold_key(t->address, &k);
    const char **p[] = { (const char **)&c.address, (const char **)&c.key };
    struct dir_sender *s = pack(&c, sizeof(c), p, NPTRS(p));
    buf_free(&k);
    s->next = NULL;
    return s;
}

struct dir_master *dir_master_new(const struct dir_master *t)
{
    const char **p[] = { (const char **)&t->name, (const char **)&t->password,
                         (const char **)&t->domains };
    return pack(t, sizeof(*t), p, NPTRS(p));
}

struct dir_transport *dir_transport_new(const struct dir_transport *t)
{
    const char **p[] = { (const char **)&t->pattern, (const char **)&t->transport };
    return pack(t, sizeof(*t), p, NPTRS(p));
}

static const void *key_id(const void *rec, size_t *len)
{
    *len = sizeof(uint64_t);
    return rec; /* every record starts with its id */
}

#define STRKEY(fn, type, field)                          \
    static const void *fn(const void *rec, size_t *len)  \
    {                                                    \
        const char *s = ((const type *)rec)->field;      \
        *len = strlen(s);                                \
        return s;                                        \
    }
/* the folded form where the record has one (see dir.h) */
#define FOLDKEY(fn, type, field)                         \
    static const void *fn(const void *rec, size_t *len)  \
    {                                                    \
        const type *r = rec;                             \
        const char *s = r->key ? r->key : r->field;      \
        *len = strlen(s);                                \
        return s;                                        \
    }
STRKEY(key_dom, struct dir_domain, name)
FOLDKEY(key_mbox, struct dir_mailbox, address)
FOLDKEY(key_alias, struct dir_alias, source)
FOLDKEY(key_sender, struct dir_sender, address)
STRKEY(key_master, struct dir_master, name)
STRKEY(key_transport, struct dir_transport, pattern)

struct dir *dir_new(void)
{
    struct dir *d = xcalloc(1, sizeof(*d));
    /* names tagged; the id indexes keep each record in a leak checker's sight */
    htab_init_tagged(&d->dom_name, key_dom);
    htab_init(&d->dom_id, key_id);
    htab_init_tagged(&d->mbox_addr, key_mbox);
    htab_init(&d->mbox_id, key_id);
    htab_init_tagged(&d->alias_src, key_alias);
    htab_init(&d->alias_id, key_id);
    htab_init_tagged(&d->sender_addr, key_sender);
    htab_init(&d->sender_id, key_id);
    htab_init_tagged(&d->master_name, key_master);
    htab_init(&d->master_id, key_id);
    htab_init_tagged(&d->transport_pattern, key_transport);
    htab_init(&d->transport_id, key_id);
    return d;
}

static void free_all(struct htab *by_id)
{
    void *rec;
    for (size_t i = 0; (rec = htab_next(by_id, &i)) != NULL;)
        free(rec);
}

void dir_free(struct dir *d)
{
    if (d == NULL)
        return;
    free_all(&d->dom_id);
    free_all(&d->mbox_id);
    free_all(&d->alias_id);
    free_all(&d->sender_id);
    free_all(&d->master_id);
    free_all(&d->transport_id);
    htab_free(&d->dom_name);
    htab_free(&d->dom_id);
    htab_free(&d->mbox_addr);
    htab_free(&d->mbox_id);
    htab_free(&d->alias_src);
    htab_free(&d->alias_id);
    htab_free(&d->sender_addr);
    htab_free(&d->sender_id);
    htab_free(&d->master_name);
    htab_free(&d->master_id);
    htab_free(&d->transport_pattern);
    htab_free(&d->transport_id);
    for (size_t i = 0; i < d->nkept; i++)
        free(d->kept[i]);
    free(d->kept);
    free(d);
}

static void sender_unlink(struct dir *d, struct dir_sender *s)
{
    size_t len;
    const void *key = key_sender(s, &len);
    struct dir_sender *head = htab_get(&d->sender_addr, key, len);

    if (head == s) {
        if (s->next)
            htab_put(&d->sender_addr, s->next);
        else
            htab_del(&d->sender_addr, key, len);
        return;
    }
    for (struct dir_sender *p = head; p != NULL; p = p->next)
        if (p->next == s) {
            p->next = s->next;
            return;
        }
}

static void sender_link(struct dir *d, struct dir_sender *s)
{
    size_t len;
    const void *key = key_sender(s, &len);
    struct dir_sender *head = htab_get(&d->sender_addr, key, len);
    s->next = head;
    htab_put(&d->sender_addr, s);
}

static struct htab *by_id(struct dir *d, enum dir_kind kind)
{
    switch (kind) {
    case DIR_DOMAIN: return &d->dom_id;
    case DIR_MAILBOX: return &d->mbox_id;
    case DIR_ALIAS: return &d->alias_id;
    case DIR_SENDER: return &d->sender_id;
    case DIR_MASTER: return &d->master_id;
    case DIR_TRANSPORT: return &d->transport_id;
    default: return NULL;
    }
}

static struct htab *by_key(struct dir *d, enum dir_kind kind)
{
    switch (kind) {
    case DIR_DOMAIN: return &d->dom_name;
    case DIR_MAILBOX: return &d->mbox_addr;
    case DIR_ALIAS: return &d->alias_src;
    case DIR_MASTER: return &d->master_name;
    case DIR_TRANSPORT: return &d->transport_pattern;
    default: return NULL;
    }
}

/* Take rec out of the key index, if it is the record indexed there. */
static void unindex(struct dir *d, enum dir_kind kind, void *rec)
{
    if (kind == DIR_SENDER) {
        sender_unlink(d, rec);
        return;
    }
    struct htab *h = by_key(d, kind);
    size_t len;
    const void *key = h->keyof(rec, &len);
    if (htab_get(h, key, len) == rec)
        htab_del(h, key, len);
}

/* A record the directory no longer holds: freed, or kept for the views. */
static void drop(struct dir *d, void *rec)
{
    if (d->views == 0) {
        free(rec);
        return;
    }
    if (d->nkept == d->kept_cap) {
        d->kept_cap = d->kept_cap ? 2 * d->kept_cap : 256;
        d->kept = xrealloc(d->kept, d->kept_cap * sizeof(*d->kept));
    }
    d->kept[d->nkept++] = rec;
}

int dir_del(struct dir *d, enum dir_kind kind, uint64_t id)
{
    void *old = htab_del(by_id(d, kind), &id, sizeof(id));
    if (old == NULL)
        return 0;
    unindex(d, kind, old);
    drop(d, old);
    return 1;
}

static void copy_index(struct htab *to, const struct htab *from)
{
    *to = *from;
    if (from->cap) {
        to->slots = xmalloc(from->cap * sizeof(*from->slots));
        memcpy(to->slots, from->slots, from->cap * sizeof(*from->slots));
    }
}

struct dir *dir_view_new(struct dir *d)
{
    struct dir *v = dir_new();
    v->seq = d->seq;
    memcpy(v->db_id, d->db_id, sizeof(v->db_id));
    copy_index(&v->dom_id, &d->dom_id);
    copy_index(&v->mbox_id, &d->mbox_id);
    copy_index(&v->alias_id, &d->alias_id);
    copy_index(&v->sender_id, &d->sender_id);
    copy_index(&v->master_id, &d->master_id);
    copy_index(&v->transport_id, &d->transport_id);
    d->views++;
    return v;
}

void dir_view_free(struct dir *d, struct dir *v)
{
    /* the view's indexes only: its records are d's (or kept) */
    htab_free(&v->dom_id);
    htab_free(&v->mbox_id);
    htab_free(&v->alias_id);
    htab_free(&v->sender_id);
    htab_free(&v->master_id);
    htab_free(&v->transport_id);
    free(v);
    if (--d->views > 0)
        return;
    for (size_t i = 0; i < d->nkept; i++)
        free(d->kept[i]);
    free(d->kept);
    d->kept = NULL;
    d->nkept = d->kept_cap = 0;
}

void dir_put(struct dir *d, enum dir_kind kind, void *rec)
{
    uint64_t id = *(const uint64_t *)rec;

    dir_del(d, kind, id);
    htab_put(by_id(d, kind), rec);
    if (kind == DIR_SENDER) {
        sender_link(d, rec);
        return;
    }
    /* The database keeps keys unique; should two ids ever claim one key,
     * the newer row wins the key index and the older one loses it. */
    void *displaced = htab_put(by_key(d, kind), rec);
    (void)displaced;
}

int dir_apply(struct dir *d, struct dir_change *c)
{
    if (c->seq != 0 && c->seq <= d->seq) {
        free(c->rec);
        c->rec = NULL;
        return 0;
    }
    if (c->rec)
        dir_put(d, c->kind, c->rec);
    else
        dir_del(d, c->kind, c->id);
    c->rec = NULL;
    if (c->seq)
        d->seq = c->seq;
    return 1;
}

/* Any octet above 0x7f? Eight at a time: this runs on every lookup. */
static int has_non_ascii(const char *s, size_t len)
{
    uint64_t acc = 0, w;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, s + i, sizeof(w));
        acc |= w;
    }
    for (; i < len; i++)
        acc |= (unsigned char)s[i];
    return (acc & 0x8080808080808080ull) != 0;
}

/* Look key up folded. An ASCII key goes straight to the index as given:
 * lowercase, as addr_canon makes it and the schema stores it. */
static void *get_folded(const struct htab *h, const char *key, size_t len)
{
    struct buf k;
    void *rec = NULL;

    if (!has_non_ascii(key, len))
        return htab_get(h, key, len);
    buf_init(&k);
    if (addr_fold(key, len, &k) == ADDR_OK)
        rec = htab_get(h, k.data, k.len);
    buf_free(&k);
    return rec;
}

const struct dir_domain *dir_domain_get(const struct dir *d, const char *name, size_t len)
{
    return htab_get(&d->dom_name, name, len);
}

const struct dir_mailbox *dir_mailbox_get(const struct dir *d, const char *addr, size_t len)
{
    return get_folded(&d->mbox_addr, addr, len);
}

const struct dir_mailbox *dir_mailbox_by_id(const struct dir *d, uint64_t id)
{
    return htab_get(&d->mbox_id, &id, sizeof(id));
}

const struct dir_alias *dir_alias_get(const struct dir *d, const char *src, size_t len)
{
    return get_folded(&d->alias_src, src, len);
}

const struct dir_sender *dir_sender_get(const struct dir *d, const char *addr, size_t len)
{
    return get_folded(&d->sender_addr, addr, len);
}

const struct dir_master *dir_master_get(const struct dir *d, const char *name, size_t len)
{
    return htab_get(&d->master_name, name, len);
}

const struct dir_transport *dir_transport_get(const struct dir *d, const char *pattern, size_t len)
{
    return htab_get(&d->transport_pattern, pattern, len);
}

size_t dir_count(const struct dir *d, enum dir_kind kind)
{
    return by_id((struct dir *)d, kind)->count;
}

const char *dir_kind_name(enum dir_kind kind)
{
    static const char *names[] = { "domains", "mailboxes", "aliases", "sender_addresses", "master_users",
                                    "transports" };
    return kind < DIR_NKINDS ? names[kind] : "?";
}
