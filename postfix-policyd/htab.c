/* htab.c - open-addressing hash index (see htab.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "htab.h"
#include "log.h"
#include "mem.h"

/* A slot: the record's address, and in a tagged table on x86-64 (user
 * addresses below 2^47, also with 5-level paging unless a program asks mmap
 * for more) a tag from the hash's top bits in the address's top 16.
 * Elsewhere the tag is 0 and every probe compares the key. */
#if defined(__x86_64__) && UINTPTR_MAX == UINT64_MAX
#define TAG_SHIFT 48
#define TAG_OF(hash) ((uintptr_t)((hash) >> 48))
#define ADDR_MASK (((uintptr_t)1 << TAG_SHIFT) - 1)
#else
#define TAG_SHIFT 0
#define TAG_OF(hash) ((uintptr_t)0)
#define ADDR_MASK UINTPTR_MAX
#endif

static void *slot_rec(const void *slot)
{
    return (void *)((uintptr_t)slot & ADDR_MASK);
}

static uintptr_t slot_tag(const void *slot)
{
    return TAG_SHIFT ? (uintptr_t)slot >> TAG_SHIFT : 0;
}

static uintptr_t tag_of(const struct htab *h, uint64_t hash)
{
    return h->tagged ? TAG_OF(hash) : 0;
}

static void *slot_make(const struct htab *h, void *rec, uint64_t hash)
{
    if (((uintptr_t)rec & ~ADDR_MASK) != 0)
        msg_fatal("htab: record address %p does not fit below 2^%d", rec, TAG_SHIFT);
    return (void *)((uintptr_t)rec | (TAG_SHIFT ? tag_of(h, hash) << TAG_SHIFT : 0));
}

void htab_init(struct htab *h, htab_keyof_fn keyof)
{
    h->slots = NULL;
    h->cap = 0;
    h->count = 0;
    h->keyof = keyof;
    h->tagged = 0;
}

void htab_init_tagged(struct htab *h, htab_keyof_fn keyof)
{
    htab_init(h, keyof);
    h->tagged = TAG_SHIFT > 0;
}

void htab_free(struct htab *h)
{
    free(h->slots);
    h->slots = NULL;
    h->cap = h->count = 0;
}

/* Eight octets a step, each step a multiply and a shift, then the last
 * eight (overlapping what came before, or the short key's octets alone)
 * and MurmurHash3's final avalanche, so that both the low bits (the slot)
 * and the top 16 (the tag) spread. An octet at a time (FNV-1a) cost three
 * times as much for the addresses looked up here (12-25 octets); over
 * 1,000,000 addresses u<n>@example.com the fullest of 65,536 slots held
 * 40 (FNV-1a: 37; a uniform hash: about 35). The values live in memory
 * only. */
uint64_t htab_hash(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t x = 0x9e3779b97f4a7c15ULL ^ len, w;
    size_t n = len;

    for (; n > 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        x = (x ^ w) * 0xbf58476d1ce4e5b9ULL;
        x ^= x >> 31;
    }
    w = 0;
    if (len >= 8)
        memcpy(&w, (const unsigned char *)key + len - 8, 8);
    else
        for (size_t i = 0; i < n; i++)
            w |= (uint64_t)p[i] << (8 * i);
    x = (x ^ w) * 0x94d049bb133111ebULL;
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

static uint64_t rec_hash(const struct htab *h, const void *rec)
{
    size_t len;
    const void *key = h->keyof(rec, &len);
    return htab_hash(key, len);
}

/* The slot of key (hash x), or of the empty slot that ends its run. */
static size_t find(const struct htab *h, const void *key, size_t len, uint64_t x)
{
    size_t mask = h->cap - 1;
    uintptr_t tag = tag_of(h, x);
    for (size_t i = (size_t)x & mask;; i = (i + 1) & mask) {
        void *slot = h->slots[i];
        if (slot == NULL)
            return i;
        if (slot_tag(slot) == tag && key_eq(h, slot_rec(slot), key, len))
            return i;
    }
}

void *htab_get(const struct htab *h, const void *key, size_t len)
{
    if (h->count == 0)
        return NULL;
    return slot_rec(h->slots[find(h, key, len, htab_hash(key, len))]);
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
        size_t i = (size_t)rec_hash(h, slot_rec(old[j])) & (h->cap - 1);
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
    uint64_t x = htab_hash(key, len);

    if ((h->count + 1) * 4 > h->cap * 3)
        htab_grow(h);
    size_t i = find(h, key, len, x);
    void *cur = slot_rec(h->slots[i]);
    h->slots[i] = slot_make(h, rec, x);
    if (cur == NULL)
        h->count++;
    return cur;
}

void *htab_del(struct htab *h, const void *key, size_t len)
{
    if (h->count == 0)
        return NULL;
    size_t mask = h->cap - 1, i = find(h, key, len, htab_hash(key, len));
    void *found = slot_rec(h->slots[i]);

    if (found == NULL)
        return NULL;
    /* Backward-shift: move later members of the run into the hole when
     * their home slot does not lie cyclically in (hole, j]. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; h->slots[j] != NULL; j = (j + 1) & mask) {
        size_t home = (size_t)rec_hash(h, slot_rec(h->slots[j])) & mask;
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
        void *slot = h->slots[(*pos)++];
        if (slot != NULL)
            return slot_rec(slot);
    }
    return NULL;
}
