/* htab.c - open-addressing hash index (see htab.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "htab.h"
#include "mem.h"

void htab_init(struct htab *h, htab_keyof_fn keyof)
{
    h->slots = NULL;
    h->cap = 0;
    h->count = 0;
    h->keyof = keyof;
}

void htab_free(struct htab *h)
{
    free(h->slots);
    h->slots = NULL;
    h->cap = h->count = 0;
}

/* FNV-1a with a final avalanche: short keys, good spread for linear probing. */
uint64_t htab_hash(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t x = 1469598103934665603ULL;

    for (size_t i = 0; i < len; i++) {
        x ^= p[i];
        x *= 1099511628211ULL;
    }
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static int key_eq(const struct htab *h, const void *rec, const void *key, size_t len)
{
    size_t rlen;
    const void *rkey = h->keyof(rec, &rlen);
    return rlen == len && memcmp(rkey, key, len) == 0;
}

static size_t rec_slot(const struct htab *h, const void *rec)
{
    size_t len;
    const void *key = h->keyof(rec, &len);
    return (size_t)htab_hash(key, len) & (h->cap - 1);
}

void *htab_get(const struct htab *h, const void *key, size_t len)
{
    if (h->count == 0)
        return NULL;
    size_t mask = h->cap - 1;
    for (size_t i = (size_t)htab_hash(key, len) & mask;; i = (i + 1) & mask) {
        void *rec = h->slots[i];
        if (rec == NULL)
            return NULL;
        if (key_eq(h, rec, key, len))
            return rec;
    }
}

static void htab_grow(struct htab *h)
{
    size_t oldcap = h->cap;
    void **old = h->slots;

    h->cap = oldcap ? oldcap * 2 : 16;
    h->slots = xcalloc(h->cap, sizeof(void *));
    for (size_t j = 0; j < oldcap; j++) {
        if (old[j] == NULL)
            continue;
        size_t i = rec_slot(h, old[j]);
        while (h->slots[i] != NULL)
            i = (i + 1) & (h->cap - 1);
        h->slots[i] = old[j];
    }
    free(old);
}

void *htab_put(struct htab *h, void *rec)
{
    size_t len;
    const void *key = h->keyof(rec, &len);

    if ((h->count + 1) * 4 > h->cap * 3)
        htab_grow(h);
    size_t mask = h->cap - 1;
    for (size_t i = (size_t)htab_hash(key, len) & mask;; i = (i + 1) & mask) {
        void *cur = h->slots[i];
        if (cur == NULL) {
            h->slots[i] = rec;
            h->count++;
            return NULL;
        }
        if (key_eq(h, cur, key, len)) {
            h->slots[i] = rec;
            return cur;
        }
    }
}

void *htab_del(struct htab *h, const void *key, size_t len)
{
    if (h->count == 0)
        return NULL;
    size_t mask = h->cap - 1, i;
    void *found = NULL;

    for (i = (size_t)htab_hash(key, len) & mask;; i = (i + 1) & mask) {
        if (h->slots[i] == NULL)
            return NULL;
        if (key_eq(h, h->slots[i], key, len)) {
            found = h->slots[i];
            break;
        }
    }
    /* Backward-shift: move later members of the run into the hole when
     * their home slot does not lie cyclically in (hole, j]. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; h->slots[j] != NULL; j = (j + 1) & mask) {
        size_t home = rec_slot(h, h->slots[j]);
        int in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_range) {
            h->slots[hole] = h->slots[j];
            hole = j;
        }
    }
    h->slots[hole] = NULL;
    h->count--;
    return found;
}

void *htab_next(const struct htab *h, size_t *pos)
{
    while (*pos < h->cap) {
        void *rec = h->slots[(*pos)++];
        if (rec != NULL)
            return rec;
    }
    return NULL;
}
