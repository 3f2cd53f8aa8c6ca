/* stream.c - drive a table protocol handler the way a connection does. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "stream.h"

/* Replace the pending bytes by what is left of them plus n new octets. */
static char *deliver(char *pending, const char *cur, size_t left, const char *src, size_t n)
{
    char *p = malloc(left + n ? left + n : 1);
    FUZZ_CHECK(p != NULL);
    if (left)
        memcpy(p, cur, left);
    if (n)
        memcpy(p + left, src, n);
    free(pending);
    return p;
}

void stream_run(stream_handler h, stream_check check, const struct lk_env *env, enum lk_map map,
                const char *data, size_t len, size_t split, struct stream_result *r)
{
    char *pending = NULL;
    const char *cur;
    size_t left, sent = split;

    buf_init(&r->out);
    r->consumed = 0;
    r->closed = 0;
    pending = deliver(NULL, NULL, 0, data, split);
    cur = pending;
    left = split;
    for (;;) {
        if (left == 0) {
            if (sent == len)
                break;
            pending = deliver(pending, cur, 0, data + sent, len - sent);
            cur = pending;
            left = len - sent;
            sent = len;
            continue;
        }
        size_t before = r->out.len;
        ssize_t n = h(env, map, cur, left, &r->out);
        FUZZ_CHECK(n <= (ssize_t)left);
        check(r->out.data ? r->out.data + before : "", r->out.len - before, n);
        if (n < 0) {
            r->closed = 1;
            break;
        }
        if (n == 0) {
            if (sent == len)
                break;
            pending = deliver(pending, cur, left, data + sent, len - sent);
            cur = pending;
            left += len - sent;
            sent = len;
            continue;
        }
        cur += n;
        left -= (size_t)n;
        r->consumed += (size_t)n;
    }
    free(pending);
}

static void no_complaint(void *arg, const char *what)
{
    (void)arg;
    (void)what;
}

void stream_fuzz(stream_handler h, stream_check check, const struct dir *d, const char *data,
                 size_t size)
{
    struct lk_stats stats;
    struct stream_result whole, parts;

    if (size < 3)
        return;
    memset(&stats, 0, sizeof(stats));
    struct lk_env env = { (data[0] & 0x80) ? NULL : d, "+", &stats, no_complaint, NULL, NULL };
    enum lk_map map = (enum lk_map)((data[0] & 0x7f) % LK_NMAPS);
    size_t split = ((size_t)(unsigned char)data[1] << 8 | (unsigned char)data[2]);
    data += 3;
    size -= 3;
    split %= size + 1;

    /* the split run with the event loop's scratch buffers, reused from
     * request to request: they must not change an answer either */
    struct buf scratch[LK_NSCRATCH] = { { 0 } };    /* zero: empty buffers */
    struct lk_env lent = env;
    lent.scratch = scratch;
    stream_run(h, check, &env, map, data, size, size, &whole);
    stream_run(h, check, &lent, map, data, size, split, &parts);
    for (int i = 0; i < LK_NSCRATCH; i++)
        buf_free(&scratch[i]);
    if (getenv("MR_FUZZ_ECHO")) /* see what a seed is answered */
        fprintf(stderr, "-- consumed %zu of %zu%s, split at %zu:\n%.*s\n", whole.consumed, size,
                whole.closed ? ", closed" : "", split, (int)whole.out.len,
                whole.out.data ? whole.out.data : "");
    FUZZ_CHECK(whole.consumed <= size);
    /* how the bytes arrive must not change the answers */
    FUZZ_CHECK(whole.closed == parts.closed);
    FUZZ_CHECK(whole.consumed == parts.consumed);
    FUZZ_CHECK(whole.out.len == parts.out.len);
    FUZZ_CHECK(whole.out.len == 0 || memcmp(whole.out.data, parts.out.data, whole.out.len) == 0);
    buf_free(&whole.out);
    buf_free(&parts.out);
}
