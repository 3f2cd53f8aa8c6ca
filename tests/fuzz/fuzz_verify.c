/* fuzz_verify.c - what "mailroster verify" reads from files and from its
 * children (cli/verify_parse.c): key and known-difference lines, postmap's
 * answers, address lists, main.cf map lists, mailroster's tab listings.
 * The input up to its first NUL is the keys asked (one a line), the rest
 * the text read. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "verify_parse.h"

static void no_ctl(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        FUZZ_CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
}

static void on_row(void *arg, char *const *names, char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(names[i] != NULL && values[i] != NULL);
    (*(size_t *)arg)++;
}

static void lines(const char *in, size_t len)
{
    struct buf k, m;
    size_t pos = 0;

    buf_init(&k);
    buf_init(&m);
    while (pos < len) {
        const char *l = in + pos, *nl = memchr(l, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - l) : len - pos;
        pos += ll + 1;
        if (vp_key_line(l, ll, &k) > 0) {
            no_ctl(k.data, k.len);
            FUZZ_CHECK(k.len > 0 && k.data[0] != ' ' && k.data[k.len - 1] != ' ' && k.data[0] != '#');
        }
        if (vp_ignore_line(l, ll, &m, &k) > 0) {
            FUZZ_CHECK(m.len > 0 && k.len > 0 && memchr(m.data, ' ', m.len) == NULL);
            no_ctl(k.data, k.len);
        }
    }
    buf_free(&k);
    buf_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *nul = memchr(in, 0, size);
    size_t klen = nul ? (size_t)(nul - in) : 0;
    const char *text = nul ? nul + 1 : in;
    size_t tlen = nul ? size - klen - 1 : size;
    struct strv keys = { NULL, 0, 0 }, maps = { NULL, 0, 0 };
    struct buf a, b, f;
    char *s;
    size_t rows = 0;

    lines(in, size);

    /* postmap's answers to the keys asked */
    for (size_t pos = 0; pos < klen;) {
        const char *l = in + pos, *nl = memchr(l, '\n', klen - pos);
        size_t ll = nl ? (size_t)(nl - l) : klen - pos;
        strv_addn(&keys, l, ll);
        pos += ll + 1;
    }
    char **ans = calloc(keys.n + 1, sizeof(*ans));
    if (vp_answers(text, tlen, keys.v, keys.n, ans) == 0)
        for (size_t i = 0; i < keys.n; i++)
            FUZZ_CHECK(ans[i] == NULL || strchr(ans[i], '\n') == NULL);
    for (size_t i = 0; i < keys.n; i++)
        free(ans[i]);
    free(ans);
    strv_uniq(&keys);
    for (size_t i = 1; i < keys.n; i++)
        FUZZ_CHECK(strcmp(keys.v[i - 1], keys.v[i]) < 0);
    for (size_t i = 0; i < keys.n; i++)
        FUZZ_CHECK(strv_find(&keys, keys.v[i]) == (long)i);
    strv_free(&keys);

    /* the NUL-terminated text: lists, map lists, folding */
    s = strndup(text, tlen);
    buf_init(&a);
    buf_init(&b);
    buf_init(&f);
    vp_list_norm(s, &a);
    FUZZ_CHECK(strpbrk(a.data, " \t") == NULL);
    vp_list_norm(a.data, &b);
    FUZZ_CHECK(!strcmp(a.data, b.data));   /* a normalised list is its own normal form */
    vp_fold(s, strlen(s), &f);
    vp_split_maps(s, &maps);
    for (size_t i = 0; i < maps.n; i++)
        FUZZ_CHECK(maps.v[i][0] != 0);
    strv_free(&maps);
    /* the transport keys of an address, in both parent styles: the
     * address first, "*" last when it has a domain, none longer than it */
    for (int style = 0; style < 2; style++) {
        struct strv walk = { NULL, 0, 0 };
        vp_transport_walk(s, "+-", style, &walk);
        FUZZ_CHECK(walk.n >= 1 && !strcmp(walk.v[0], s));
        FUZZ_CHECK(strrchr(s, '@') == NULL || !strcmp(walk.v[walk.n - 1], "*"));
        for (size_t i = 0; i < walk.n; i++)
            FUZZ_CHECK(strlen(walk.v[i]) <= strlen(s) || !strcmp(walk.v[i], "*"));
        strv_free(&walk);
    }
    free(s);
    buf_free(&a);
    buf_free(&b);
    buf_free(&f);

    /* mailroster's -f tab listing */
    vp_tab_rows(text, tlen, on_row, &rows);
    return 0;
}
