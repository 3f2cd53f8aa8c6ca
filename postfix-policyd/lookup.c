/* lookup.c - Postfix lookup-table semantics over the in-memory directory. */
#include "config.h"

#include <string.h>

#include "addr.h"
#include "lookup.h"

static const char *map_names[LK_NMAPS] = { "domains", "mailboxes", "aliases", "senders", "transports" };

int lk_map_by_name(const char *name, size_t len)
{
    for (int i = 0; i < LK_NMAPS; i++)
        if (strlen(map_names[i]) == len && memcmp(map_names[i], name, len) == 0)
            return i;
    return -1;
}

const char *lk_map_name(enum lk_map map) { return map < LK_NMAPS ? map_names[map] : "?"; }

/* A canonical key split in its parts, in the caller's LK_KEY_BUFS
 * buffers or in its own. */
struct lk_key {
    struct lk_pair bufs;
    struct buf *full;    /* user+ext@domain */
    struct buf *bare;    /* user@domain, when there is an extension */
    size_t at;           /* offset of '@' in full */
    size_t ext;          /* offset of the delimiter in full, == at when none */
};

static void key_take(struct lk_key *k, struct buf *lent)
{
    lk_pair_take(&k->bufs, lent);
    k->full = k->bufs.a;
    k->bare = k->bufs.b;
}

static void key_give(struct lk_key *k) { lk_pair_give(&k->bufs); }

static int key_split(struct lk_key *k, const char *key, size_t len, const char *delims)
{
    if (memchr(key, 0, len) != NULL)
        return -1;
    if (addr_canon(key, len, k->full, &k->at) != ADDR_OK)
        return -1;
    k->ext = addr_ext_split(k->full->data, k->at, delims);
    if (k->ext < k->at) {
        buf_add(k->bare, k->full->data, k->ext);
        buf_add(k->bare, k->full->data + k->at, k->full->len - k->at);
    }
    return 0;
}

static const struct dir_domain *key_domain(const struct dir *d, const struct lk_key *k)
{
    const struct dir_domain *dom =
        dir_domain_get(d, k->full->data + k->at + 1, k->full->len - k->at - 1);
    return dom && dom->enabled ? dom : NULL;
}

static const struct dir_mailbox *find_mailbox(const struct dir *d, const struct lk_key *k)
{
    const struct dir_mailbox *m = dir_mailbox_get(d, k->full->data, k->full->len);
    if (m == NULL && k->bare->len)
        m = dir_mailbox_get(d, k->bare->data, k->bare->len);
    return m;
}

/* Append the destinations of an alias to value, Postfix-style: a "@domain"
 * destination gets the key's local part in front; when the alias matched
 * without the key's extension, each destination gets it back. */
static void add_destinations(struct buf *value, const char *dests, const struct lk_key *k,
                             int propagate)
{
    const char *p = dests;
    size_t extlen = k->at - k->ext;

    while (*p) {
        size_t n = strcspn(p, ",");
        if (n > 0) {
            if (value->len)
                buf_addc(value, ',');
            if (p[0] == '@') {
                buf_add(value, k->full->data, k->at); /* local part with its extension */
                buf_add(value, p, n);
            } else {
                const char *at = memchr(p, '@', n);
                size_t llen = at ? (size_t)(at - p) : n;
                buf_add(value, p, llen);
                if (propagate && extlen)
                    buf_add(value, k->full->data + k->ext, extlen);
                buf_add(value, p + llen, n - llen);
            }
        }
        p += n;
        if (*p == ',')
            p++;
    }
}

/* Forwarding from a mailbox (migration 0010) is an alias row on the
 * mailbox's own address, as in the tutorials' setups: the key's mailbox
 * answers its forward destinations, and its own address too when it keeps
 * a copy (Postfix's cleanup expands an address that an alias expands into
 * itself only once, then delivers it: cleanup_map1n.c). Where the mailbox
 * matched without the key's extension, the destinations and the own
 * address get it back; the own address then reaches the mailbox through
 * the mailboxes map, which also drops the extension.
 *
 * Whether a mailbox forwards, by its state (the domain is enabled: a
 * disabled domain answers nothing at all):
 *
 *   enabled  may_receive  forward_to  keep_copy  aliases map          mailboxes map
 *   yes      yes          none        -          not found            its maildir
 *   yes      yes          set         no         forward_to           its maildir
 *   yes      yes          set         yes        forward_to + itself  its maildir
 *   yes      no           any         any        not found            not found
 *   no       any          any         any        not found            not found
 *
 * A mailbox that would refuse mail never forwards it: it stays refused
 * (Postfix: unknown in the mailboxes map; the policy service: 550 5.2.1),
 * never passed on, and never falls through to the domain's catch-all
 * either. The mailboxes map keeps answering a forwarded mailbox: Postfix
 * asks it at RCPT (virtual_mailbox_maps) before the alias expansion
 * happens in cleanup, and the keep_copy delivery needs it. */
static enum lk_result forward_of(const struct dir_mailbox *m, const struct lk_key *k, struct buf *value)
{
    if (m->forward == NULL || *m->forward == 0 || !m->enabled || !m->may_receive)
        return LK_NOTFOUND;
    /* matched as user@domain although the key has an extension */
    int propagate = strcmp(m->address, k->full->data) != 0;
    add_destinations(value, m->forward, k, propagate);
    if (value->len && m->keep_copy) {
        buf_addc(value, ',');
        buf_add(value, k->full->data, k->full->len); /* the key as it stands: the address with its extension */
    }
    return value->len ? LK_FOUND : LK_NOTFOUND;
}

static enum lk_result lookup_alias(const struct dir *d, const struct lk_key *k, struct buf *value)
{
    const struct dir_alias *a;
    const struct dir_mailbox *m;
    const char *dom = k->full->data + k->at;

    if (k->at == 0)
        return LK_NOTFOUND; /* "@domain" itself is not an address */
    if ((a = dir_alias_get(d, k->full->data, k->full->len)) != NULL && a->enabled) {
        add_destinations(value, a->destinations, k, 0);
        return value->len ? LK_FOUND : LK_NOTFOUND;
    }
    if (k->bare->len && (a = dir_alias_get(d, k->bare->data, k->bare->len)) != NULL && a->enabled) {
        add_destinations(value, a->destinations, k, 1);
        return value->len ? LK_FOUND : LK_NOTFOUND;
    }
    /* A catch-all never swallows a real mailbox, forwarded or not. */
    if ((m = find_mailbox(d, k)) != NULL)
        return forward_of(m, k, value);
    if ((a = dir_alias_get(d, dom, k->full->len - k->at)) != NULL && a->enabled) {
        add_destinations(value, a->destinations, k, 0);
        return value->len ? LK_FOUND : LK_NOTFOUND;
    }
    return LK_NOTFOUND;
}

static void add_owner(struct buf *value, const char *login)
{
    /* owners are few: a linear duplicate check is cheap */
    size_t n = strlen(login);
    const char *p = value->data;
    while (p && *p) {
        size_t m = strcspn(p, ",");
        if (m == n && memcmp(p, login, n) == 0)
            return;
        p += m;
        if (*p == ',')
            p++;
    }
    if (value->len)
        buf_addc(value, ',');
    buf_add(value, login, n);
}

/* Logins that may send as addr: the mailbox itself, local mailboxes an
 * alias delivers to (unless the alias says they may not: may_send), and
 * mailboxes granted the address explicitly. A mailbox's forward gives its
 * destinations no right: that takes a grant. */
static void owners_of(const struct dir *d, const char *addr, size_t len, struct buf *value)
{
    const struct dir_mailbox *m = dir_mailbox_get(d, addr, len);
    const struct dir_alias *a;

    if (m && m->enabled)
        add_owner(value, m->address);
    if ((a = dir_alias_get(d, addr, len)) != NULL && a->enabled && a->may_send) {
        const char *p = a->destinations;
        while (*p) {
            size_t n = strcspn(p, ",");
            const struct dir_mailbox *dm = dir_mailbox_get(d, p, n);
            if (dm && dm->enabled)
                add_owner(value, dm->address);
            p += n;
            if (*p == ',')
                p++;
        }
    }
    for (const struct dir_sender *s = dir_sender_get(d, addr, len); s; s = s->next) {
        const struct dir_mailbox *om = dir_mailbox_by_id(d, s->mailbox_id);
        if (om && om->enabled)
            add_owner(value, om->address);
    }
}

static enum lk_result lookup_senders(const struct dir *d, const struct lk_key *k, struct buf *value)
{
    if (k->at == 0)
        return LK_NOTFOUND;
    owners_of(d, k->full->data, k->full->len, value);
    if (value->len == 0 && k->bare->len)
        owners_of(d, k->bare->data, k->bare->len, value);
    if (value->len == 0)
        owners_of(d, k->full->data + k->at, k->full->len - k->at, value);
    return value->len ? LK_FOUND : LK_NOTFOUND;
}

/* --- transports ------------------------------------------------------ */

/* An enabled entry for pattern, into value. */
static int transport_try(const struct dir *d, const char *pattern, size_t len, struct buf *value)
{
    const struct dir_transport *t = dir_transport_get(d, pattern, len);
    if (t == NULL || !t->enabled || *t->transport == 0)
        return 0;
    buf_adds(value, t->transport);
    return 1;
}

/* name (a canonical domain, or ".domain"), then each ".parent" of it, as
 * trivial-rewrite's transport_lookup walks them when
 * parent_domain_matches_subdomains does not name transport_maps (the
 * default): "a.b.example" tries a.b.example, .b.example, .example. */
static int transport_domain(const struct dir *d, const char *name, size_t len, struct buf *value)
{
    const char *p = name, *end = name + len;
    for (;;) {
        if (transport_try(d, p, (size_t)(end - p), value))
            return 1;
        const char *next = memchr(p + 1, '.', (size_t)(end - p - 1));
        if (next == NULL || next + 1 == end)
            return 0;
        p = next;
    }
}

/* Postfix asks a tcp: or socketmap: transport map only the whole
 * recipient ("user+ext@domain"; its partial keys skip pattern tables:
 * transport.c), and relay_domains asks it the bare domain: the rest of
 * the walk is done here. Keys: an address, a domain, or ".domain". */
static enum lk_result lookup_transport(const struct dir *d, const char *key, size_t len,
                                       const char *delims, struct buf *value, struct buf *lent)
{
    struct lk_key k;
    int found = 0;

    key_take(&k, lent);
    if (memchr(key, 0, len) != NULL || len == 0) {
        /* nothing: "*" (transport_maps' wildcard) and the like fall out below */
    } else if (memchr(key, '@', len) != NULL) {
        if (key_split(&k, key, len, delims) == 0 && k.at > 0)
            found = transport_try(d, k.full->data, k.full->len, value)
                 || (k.bare->len && transport_try(d, k.bare->data, k.bare->len, value))
                 || transport_domain(d, k.full->data + k.at + 1, k.full->len - k.at - 1, value);
    } else {
        /* a domain or ".domain": canonical in bare, the name asked in full */
        int dot = key[0] == '.';
        if (addr_domain_canon(key + dot, len - (size_t)dot, k.bare) == ADDR_OK) {
            if (dot)
                buf_addc(k.full, '.');
            buf_add(k.full, k.bare->data, k.bare->len);
            found = transport_domain(d, k.full->data, k.full->len, value);
        }
    }
    key_give(&k);
    return found ? LK_FOUND : LK_NOTFOUND;
}

enum lk_result lk_lookup(const struct dir *d, enum lk_map map, const char *key, size_t len,
                         const char *delims, struct buf *value)
{
    return lk_lookup_in(d, map, key, len, delims, value, NULL);
}

enum lk_result lk_lookup_in(const struct dir *d, enum lk_map map, const char *key, size_t len,
                            const char *delims, struct buf *value, struct buf *lent)
{
    enum lk_result r = LK_NOTFOUND;
    struct lk_key k;

    buf_reset(value);
    if (map == LK_DOMAINS) {
        const struct dir_domain *dom;
        if (memchr(key, 0, len) != NULL || addr_domain_canon(key, len, value) != ADDR_OK) {
            buf_reset(value);
            return LK_NOTFOUND;
        }
        dom = dir_domain_get(d, value->data, value->len);
        buf_reset(value);
        if (dom && dom->enabled) {
            buf_adds(value, dom->name);
            return LK_FOUND;
        }
        return LK_NOTFOUND;
    }
    if (map == LK_TRANSPORTS) {
        /* any domain, hosted here or not */
        if ((r = lookup_transport(d, key, len, delims, value, lent)) == LK_NOTFOUND)
            buf_reset(value);
        return r;
    }
    key_take(&k, lent);
    if (key_split(&k, key, len, delims) < 0) {
        key_give(&k);
        return LK_NOTFOUND;
    }
    if (key_domain(d, &k) != NULL) {
        switch (map) {
        case LK_MAILBOXES: {
            const struct dir_mailbox *m = find_mailbox(d, &k);
            if (m && m->enabled && m->may_receive && k.at > 0) {
                buf_adds(value, m->maildir);
                r = LK_FOUND;
            }
            break;
        }
        case LK_ALIASES:
            r = lookup_alias(d, &k, value);
            break;
        case LK_SENDERS:
            r = lookup_senders(d, &k, value);
            break;
        default:
            break;
        }
    }
    key_give(&k);
    if (r == LK_NOTFOUND)
        buf_reset(value);
    return r;
}
