/* htab.h - open-addressing hash index over records that carry their own key.
 *
 * A slot holds only the record pointer (8 bytes: the directory must fit a
 * million mailboxes in little memory); the key is read back from the record
 * through keyof(). In a tagged table (x86-64 only) the pointer's unused top
 * 16 bits carry 16 bits of the key's hash, so a probe that meets another
 * key's record skips it without reading the record (at a million records,
 * reading it is a cache miss). A tagged slot is no pointer to a leak
 * checker: tag only a table whose records another, untagged table also
 * points to (the directory's name indexes; its id indexes are untagged).
 * Linear probing with backward-shift deletion, no tombstones, load factor
 * at most 3/4. */
#ifndef MR_HTAB_H
#define MR_HTAB_H

#include <stddef.h>
#include <stdint.h>

typedef const void *(*htab_keyof_fn)(const void *rec, size_t *len);

struct htab {
    void **slots;
    size_t cap;    /* power of two, or 0 */
    size_t count;
    htab_keyof_fn keyof;
    int tagged;
};

void htab_init(struct htab *h, htab_keyof_fn keyof);
void htab_init_tagged(struct htab *h, htab_keyof_fn keyof);
void htab_free(struct htab *h);   /* frees the slots, not the records */
uint64_t htab_hash(const void *key, size_t len);
void *htab_get(const struct htab *h, const void *key, size_t len);
/* Insert rec; returns the record it replaced under the same key, or NULL. */
void *htab_put(struct htab *h, void *rec);
/* Remove the record under key; returns it, or NULL. */
void *htab_del(struct htab *h, const void *key, size_t len);

/* Iterate: for (size_t i = 0; (rec = htab_next(h, &i)) != NULL;) */
void *htab_next(const struct htab *h, size_t *pos);

#endif
