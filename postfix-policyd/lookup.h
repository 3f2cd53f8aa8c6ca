/* lookup.h - Postfix table semantics over the directory, shared by every
 * table transport (tcp_table, socketmap) and the policy service.
 *
 * Postfix asks tcp: and socketmap: tables once, with the key as it stands,
 * so this does what Postfix does itself for hash and pgsql tables: fold
 * case, try user+ext@domain, then user@domain, then @domain where the map
 * has such entries, and give alias destinations the unmatched extension.
 * The transports map likewise does what trivial-rewrite does for a fixed
 * table (it asks a pattern table only the whole address): address, address
 * without its extension, domain, then ".parent" domains. */
#ifndef MR_LOOKUP_H
#define MR_LOOKUP_H

#include <stddef.h>

#include "buf.h"
#include "dir.h"

enum lk_map { LK_DOMAINS, LK_MAILBOXES, LK_ALIASES, LK_SENDERS, LK_TRANSPORTS, LK_NMAPS };

enum lk_result { LK_NOTFOUND = 0, LK_FOUND = 1 };

/* Map name ("domains", ...) to enum; -1 when unknown. */
int lk_map_by_name(const char *name, size_t len);
const char *lk_map_name(enum lk_map map);

/* Look key up in map. On LK_FOUND value holds a non-empty answer. */
enum lk_result lk_lookup(const struct dir *d, enum lk_map map, const char *key, size_t len,
                         const char *delims, struct buf *value);

/* Two working buffers: two a caller lends, kept from use to use (one
 * grown past LK_KEEP is freed after its use, so a rare long key does not
 * pin its memory), or two of the holder's own, freed after each use. */
#define LK_KEEP 4096
struct lk_pair {
    struct buf own[2];
    struct buf *lent;
    struct buf *a, *b;
};

static inline void lk_pair_take(struct lk_pair *p, struct buf *lent)
{
    struct buf *s = lent ? lent : p->own;
    if (lent == NULL) {
        buf_init(&s[0]);
        buf_init(&s[1]);
    }
    buf_reset(&s[0]);
    buf_reset(&s[1]);
    p->lent = lent;
    p->a = &s[0];
    p->b = &s[1];
}

static inline void lk_pair_give(struct lk_pair *p)
{
    if (p->lent == NULL || p->a->cap > LK_KEEP)
        buf_free(p->a);
    if (p->lent == NULL || p->b->cap > LK_KEEP)
        buf_free(p->b);
}

/* lk_lookup with LK_KEY_BUFS buffers lent for the key's canonical forms
 * (NULL: allocated for the call), kept from call to call, so that a
 * lookup in a loop allocates nothing; one thread at a time. */
#define LK_KEY_BUFS 2
enum lk_result lk_lookup_in(const struct dir *d, enum lk_map map, const char *key, size_t len,
                            const char *delims, struct buf *value, struct buf *lent);

#endif
