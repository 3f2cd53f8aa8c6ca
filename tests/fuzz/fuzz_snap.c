/* fuzz_snap.c - snapshot file parser: whatever it accepts must survive
 * snap_format and parse again into the same records.
 *
 * The last line of a snapshot is the SHA-256 of the rest, which a fuzzer
 * cannot forge: an input without a "sha256 " line is sealed here first
 * (snap_seal), so mutations reach every record check and the round trip;
 * an input that has one is parsed as given, which fuzzes the checksum line
 * itself (the seeds hold both kinds). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "snap.h"

struct line {
    const char *p;
    size_t len;
};

static int cmp_line(const void *a, const void *b)
{
    const struct line *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* The lines of a formatted snapshot, sorted: the record order follows the
 * hash tables, which depends on the insertion history. Without the
 * checksum line: it sums the records in their order. */
static struct line *sorted_lines(const struct buf *b, size_t *n)
{
    size_t cap = 16, k = 0, pos = 0;
    struct line *v = malloc(cap * sizeof(*v));
    FUZZ_CHECK(v != NULL);
    while (pos < b->len) {
        const char *nl = memchr(b->data + pos, '\n', b->len - pos);
        FUZZ_CHECK(nl != NULL); /* snap_format ends every line */
        if (k == cap) {
            cap *= 2;
            v = realloc(v, cap * sizeof(*v));
            FUZZ_CHECK(v != NULL);
        }
        v[k].p = b->data + pos;
        v[k].len = (size_t)(nl - (b->data + pos));
        pos += v[k].len + 1;
        if (pos < b->len || strncmp(v[k].p, "sha256 ", 7) != 0)
            k++;
    }
    qsort(v, k, sizeof(*v), cmp_line);
    *n = k;
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf err, in, text, text2;
    struct dir *d, *d2;

    buf_init(&err);
    buf_init(&in);
    buf_add(&in, data, size);
    if (memmem(data, size, "sha256 ", 7) == NULL)
        snap_seal(&in);
    d = snap_parse(in.data, in.len, &err);
    buf_free(&in);
    if (d == NULL) {
        FUZZ_CHECK(err.len > 0);
        buf_free(&err);
        return 0;
    }
    FUZZ_CHECK(err.len == 0);
    buf_init(&text);
    snap_format(d, &text);
    d2 = snap_parse(text.data, text.len, &err);
    if (d2 == NULL)
        fprintf(stderr, "re-parse of snap_format output failed: %s\n", err.data);
    FUZZ_CHECK(d2 != NULL);
    FUZZ_CHECK(d2->seq == d->seq);
    FUZZ_CHECK(strcmp(d2->db_id, d->db_id) == 0);
    for (int k = 0; k < DIR_NKINDS; k++)
        FUZZ_CHECK(dir_count(d2, (enum dir_kind)k) == dir_count(d, (enum dir_kind)k));

    /* and it formats to the same records */
    buf_init(&text2);
    snap_format(d2, &text2);
    FUZZ_CHECK(text2.len == text.len);
    size_t n1, n2;
    struct line *l1 = sorted_lines(&text, &n1), *l2 = sorted_lines(&text2, &n2);
    FUZZ_CHECK(n1 == n2);
    for (size_t i = 0; i < n1; i++)
        FUZZ_CHECK(cmp_line(&l1[i], &l2[i]) == 0);
    free(l1);
    free(l2);

    buf_free(&text2);
    buf_free(&text);
    buf_free(&err);
    dir_free(d2);
    dir_free(d);
    return 0;
}
