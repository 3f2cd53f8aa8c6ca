/* verify_parse.c - the text "mailroster verify" reads (see verify_parse.h).
 * No I/O here, so that the fuzz target can drive every function. */
#include "config.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <wctype.h>

#include "addr.h"
#include "buf.h"
#include "codec.h"
#include "mem.h"
#include "verify_parse.h"

void strv_addn(struct strv *s, const char *str, size_t len)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = xstrndup(str, len);
}

void strv_add(struct strv *s, const char *str) { strv_addn(s, str, strlen(str)); }

void strv_free(struct strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void strv_uniq(struct strv *s)
{
    size_t o = 0;
    if (s->n == 0)
        return;
    qsort(s->v, s->n, sizeof(*s->v), cmp_str);
    for (size_t i = 0; i < s->n; i++) {
        if (o > 0 && !strcmp(s->v[o - 1], s->v[i]))
            free(s->v[i]);
        else
            s->v[o++] = s->v[i];
    }
    s->n = o;
}

long strv_find(const struct strv *s, const char *str)
{
    char *const *hit;
    if (s->n == 0)
        return -1;
    hit = bsearch(&str, s->v, s->n, sizeof(*s->v), cmp_str);
    return hit ? (long)(hit - s->v) : -1;
}

/* C.UTF-8 for towlower, whatever the caller's locale; made once */
static locale_t utf8_locale(void)
{
    static int tried;
    static locale_t loc = (locale_t)0;
    if (!tried) {
        tried = 1;
        loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    }
    return loc;
}

void vp_fold(const char *s, size_t len, struct buf *out)
{
    locale_t loc = utf8_locale();
    size_t i = 0;

    buf_reset(out);
    buf_add(out, "", 0);
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            buf_addc(out, (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (char)c);
            i++;
            continue;
        }
        /* one UTF-8 character, folded in C.UTF-8; else the byte as it is */
        mbstate_t st;
        wchar_t wc;
        char mb[8];
        size_t n = (size_t)-1, m = (size_t)-1;
        if (loc != (locale_t)0) {
            locale_t old = uselocale(loc);
            memset(&st, 0, sizeof(st));
            n = mbrtowc(&wc, s + i, len - i, &st);
            if (n != (size_t)-1 && n != (size_t)-2 && n != 0) {
                memset(&st, 0, sizeof(st));
                m = wcrtomb(mb, (wchar_t)towlower((wint_t)wc), &st);
            }
            uselocale(old);
        }
        if (n == (size_t)-1 || n == (size_t)-2 || n == 0 || m == (size_t)-1 || m > sizeof(mb)) {
            buf_addc(out, (char)c);
            i++;
        } else {
            buf_add(out, mb, m);
            i += n;
        }
    }
}

static void trim(const char **p, size_t *len)
{
    while (*len > 0 && (**p == ' ' || **p == '\t' || **p == '\r')) {
        (*p)++;
        (*len)--;
    }
    while (*len > 0 && ((*p)[*len - 1] == ' ' || (*p)[*len - 1] == '\t' || (*p)[*len - 1] == '\r'))
        (*len)--;
}

int vp_key_line(const char *line, size_t len, struct buf *out)
{
    trim(&line, &len);
    if (len == 0 || line[0] == '#')
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            return -1;
    buf_reset(out);
    buf_add(out, line, len);
    return 1;
}

int vp_ignore_line(const char *line, size_t len, struct buf *map, struct buf *key)
{
    const char *tab = memchr(line, '\t', len), *sp;
    if (tab)
        len = (size_t)(tab - line);
    trim(&line, &len);
    if (len == 0 || line[0] == '#')
        return 0;
    sp = memchr(line, ' ', len);
    if (sp == NULL || sp == line)
        return -1;
    buf_reset(map);
    buf_add(map, line, (size_t)(sp - line));
    len -= (size_t)(sp - line) + 1;
    line = sp + 1;
    trim(&line, &len);
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            return -1;
    vp_fold(line, len, key);
    return 1;
}

int vp_answers(const char *text, size_t len, char *const *keys, size_t n, char **ans)
{
    size_t next = 0, pos = 0;

    while (pos < len) {
        const char *l = text + pos, *nl = memchr(l, '\n', len - pos), *tab;
        size_t ll = nl ? (size_t)(nl - l) : len - pos, kl;
        pos += ll + (nl ? 1 : 0);
        if (ll == 0)
            continue;
        tab = memchr(l, '\t', ll);
        if (tab == NULL)
            return -1;
        kl = (size_t)(tab - l);
        /* answers come in the order asked; keys not found leave no line */
        while (next < n && !(strlen(keys[next]) == kl && !memcmp(keys[next], l, kl)))
            next++;
        if (next == n)
            return -1;
        ans[next] = xstrndup(tab + 1, ll - kl - 1);
        next++;
    }
    return 0;
}

void vp_list_norm(const char *v, struct buf *out)
{
    struct strv items = { NULL, 0, 0 };
    struct buf f;
    const char *p = v;

    buf_init(&f);
    while (*p) {
        size_t l = strcspn(p, ", \t");
        if (l > 0) {
            vp_fold(p, l, &f);
            strv_add(&items, f.data);
        }
        p += l;
        if (*p)
            p++;
    }
    strv_uniq(&items);
    buf_reset(out);
    buf_add(out, "", 0);
    for (size_t i = 0; i < items.n; i++) {
        if (i)
            buf_addc(out, ',');
        buf_adds(out, items.v[i]);
    }
    strv_free(&items);
    buf_free(&f);
}

void vp_split_maps(const char *s, struct strv *out)
{
    while (*s) {
        size_t l = 0;
        int depth = 0;
        while (*s == ',' || *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
            s++;
        while (s[l] && (depth > 0 || !strchr(", \t\n\r", s[l]))) {
            if (s[l] == '{')
                depth++;
            else if (s[l] == '}' && depth > 0)
                depth--;
            l++;
        }
        if (l > 0)
            strv_addn(out, s, l);
        s += l;
    }
}

/* one tab-separated cell, escapes undone, into a new string */
static char *unescape(const char *p, size_t len)
{
    struct buf b;
    buf_init(&b);
    buf_add(&b, "", 0);
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '\\' || i + 1 == len) {
            buf_addc(&b, p[i]);
            continue;
        }
        char e = p[++i];
        int hi = i + 2 < len ? hex_digit((unsigned char)p[i + 1]) : -1;
        int lo = i + 2 < len ? hex_digit((unsigned char)p[i + 2]) : -1;
        if (e == 'n')
            buf_addc(&b, '\n');
        else if (e == 't')
            buf_addc(&b, '\t');
        else if (e == 'r')
            buf_addc(&b, '\r');
        else if (e == 'x' && hi >= 0 && lo >= 0) {
            buf_addc(&b, (char)(hi * 16 + lo));
            i += 2;
        } else
            buf_addc(&b, e);
    }
    return b.data;
}

static void split_tabs(const char *l, size_t ll, struct strv *out)
{
    for (;;) {
        const char *t = memchr(l, '\t', ll);
        size_t cl = t ? (size_t)(t - l) : ll;
        char *c = unescape(l, cl);
        strv_add(out, c);
        free(c);
        if (!t)
            break;
        ll -= cl + 1;
        l = t + 1;
    }
}

int vp_tab_rows(const char *text, size_t len, vp_row_fn fn, void *arg)
{
    struct strv head = { NULL, 0, 0 }, row = { NULL, 0, 0 };
    size_t pos = 0;
    int rc = 0;

    while (pos < len) {
        const char *l = text + pos, *nl = memchr(l, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - l) : len - pos;
        pos += ll + (nl ? 1 : 0);
        if (ll == 0) {          /* a new group: a new header follows */
            strv_free(&head);
            continue;
        }
        if (head.n == 0) {
            split_tabs(l, ll, &head);
            continue;
        }
        split_tabs(l, ll, &row);
        if (row.n > head.n) {
            rc = -1;
        } else {
            while (row.n < head.n)
                strv_add(&row, "");
            fn(arg, head.v, row.v, row.n);
        }
        strv_free(&row);
    }
    strv_free(&head);
    return rc;
}

void vp_transport_walk(const char *key, const char *delims, int parent_style, struct strv *out)
{
    const char *at = strrchr(key, '@'), *name, *next;
    size_t ll, ul;

    strv_add(out, key);
    if (at == NULL)
        return;
    ll = (size_t)(at - key);
    ul = delims && *delims ? addr_ext_split(key, ll, delims) : ll;
    if (ul < ll) {
        struct buf b;
        buf_init(&b);
        buf_printf(&b, "%.*s%s", (int)ul, key, at);
        strv_add(out, b.data);
        buf_free(&b);
    }
    for (name = at + 1; *name; name = next) {
        strv_add(out, name);
        if ((next = strchr(name + 1, '.')) == NULL)
            break;
        if (parent_style)
            next++;
    }
    strv_add(out, "*");
}
