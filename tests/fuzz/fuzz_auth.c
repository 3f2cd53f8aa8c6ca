/* fuzz_auth.c - the auth endpoint's request stream. Input: byte 0 flags
 * (bit 7: no directory loaded), bytes 1-2 a split point; the stream after
 * that arrives in two parts, and must be answered the same as in one. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "auth.h"
#include "fixture.h"

static struct dir *D;
static const struct auth_defaults defaults = { "/var/vmail", 5000, 5000 };

static void nolog(void *arg, int warn, const char *text)
{
    (void)arg;
    (void)warn;
    FUZZ_CHECK(strchr(text, '\n') == NULL && strchr(text, '\t') == NULL);
}

/* Every answer is one line "ID WORD [fields]" with a known word, or the
 * version line; no line is empty. */
static void check_replies(const struct buf *out)
{
    static const char *words[] = { "OK", "NOTFOUND", "DISABLED", "DENIED", "FAIL", "ERROR", "ROW", "END" };
    if (out->len == 0)
        return;
    const char *p = out->data, *end = out->data + out->len;
    FUZZ_CHECK(end[-1] == '\n');
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        FUZZ_CHECK(nl != NULL && nl > p);
        if (!(nl - p == 11 && !memcmp(p, "VERSION\t1\t0", 11))) {
            const char *tab = memchr(p, '\t', (size_t)(nl - p));
            FUZZ_CHECK(tab != NULL && tab > p && tab - p <= 10);
            const char *w = tab + 1;
            size_t wl = strcspn(w, "\t\n");
            int known = 0;
            for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
                known |= strlen(words[i]) == wl && !memcmp(words[i], w, wl);
            FUZZ_CHECK(known);
        }
        FUZZ_CHECK(memchr(p, '\r', (size_t)(nl - p)) == NULL);
        p = nl + 1;
    }
}

/* Answer what has arrived, as the connection loop does. What has arrived
 * is copied once, to an allocation that ends where it ends (overreads are
 * caught); each request is answered from its place in that copy, so the
 * cost is linear in the input, not in requests times input. */
static int feed(const struct auth_env *env, const char *data, size_t len, size_t *pos, struct buf *out)
{
    int rc = 0;

    if (*pos >= len)
        return 0;
    char *in = malloc(len - *pos);
    FUZZ_CHECK(in != NULL);
    memcpy(in, data + *pos, len - *pos);
    for (size_t at = 0; *pos < len;) {
        ssize_t n = auth_request(env, in + at, len - *pos, out);
        if (n < 0) {
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        FUZZ_CHECK((size_t)n <= len - *pos);
        *pos += (size_t)n;
        at += (size_t)n;
    }
    free(in);
    return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    D = fuzz_fixture_dir(0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct auth_stats stats;
    struct buf one, two;
    size_t pos, split;
    int c1, c2;

    if (size < 3)
        return 0;
    const struct dir *d = (data[0] & 0x80) ? NULL : D;
    const char *s = (const char *)data + 3;
    size_t len = size - 3;
    split = ((size_t)data[1] << 8 | data[2]) % (len + 1);
    struct auth_env env = { d, &defaults, &stats, nolog, NULL, NULL, NULL };  /* LIST answered whole */
    memset(&stats, 0, sizeof(stats));
    buf_init(&one);
    buf_init(&two);
    pos = 0;
    c1 = feed(&env, s, len, &pos, &one);
    check_replies(&one);
    /* in two parts: the first part alone, then everything */
    pos = 0;
    c2 = feed(&env, s, split, &pos, &two);
    if (c2 == 0)
        c2 = feed(&env, s, len, &pos, &two);
    check_replies(&two);
    FUZZ_CHECK(c1 == c2);
    FUZZ_CHECK(one.len == two.len && (one.len == 0 || !memcmp(one.data, two.data, one.len)));
    buf_free(&one);
    buf_free(&two);
    return 0;
}
