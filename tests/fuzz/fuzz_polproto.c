/* fuzz_polproto.c - Postfix policy delegation requests (pol_parse, pol_get,
 * pol_reply). The input is what one connection receives: requests back to
 * back, parsed one after another as the daemon would, until one is
 * incomplete or refused (the daemon then waits or closes). Each request is
 * parsed in one piece, and again as it would trickle in (pol_parse resumes
 * where it stopped): the verdicts must agree.
 *
 * The work per input is linear in its size: the input is copied once, not
 * once per request, and the checks of one request look at that request
 * only. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/asan_interface.h>

#include "fixture.h"
#include "polproto.h"

/* the connection's; the one re-parsed in one piece; the trickled one */
static struct pol_req A, B, C;

/* pol_parse on an exact-size copy of p[0..len), as a new stream: reads
 * past the end are caught, and so is an attribute left pointing into the
 * input. */
static enum pol_status parse(struct pol_req *r, const char *p, size_t len, size_t *used,
                             const char **why)
{
    char *c = malloc(len ? len : 1);
    enum pol_status st;

    FUZZ_CHECK(c != NULL);
    memcpy(c, p, len);
    pol_req_reset(r);
    st = pol_parse(r, c, len, used, why);
    free(c);
    return st;
}

/* A second, plain reading of where a request ends: just past the first
 * empty line ("\n" or "\r\n") within the limit, or 0 if there is none.
 * pol_parse's *used must agree whatever its verdict. */
static size_t first_empty_line(const char *in, size_t len)
{
    size_t lim = len < POL_MAX_REQUEST ? len : POL_MAX_REQUEST;

    for (size_t s = 0; s < lim;) {
        const char *nl = memchr(in + s, '\n', lim - s);
        if (nl == NULL)
            return 0;
        size_t e = (size_t)(nl - in);
        if (e == s || (e == s + 1 && in[s] == '\r'))
            return e + 1;
        s = e + 1;
    }
    return 0;
}

static int name_ok(const char *s)
{
    if (*s == 0)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static int in_text(const struct pol_req *r, const char *p)
{
    return p >= r->text && p < r->text + r->text_size;
}

/* The attributes of a request of used bytes, as pol_parse left them in r. */
static void check_attrs(const struct pol_req *r, size_t used)
{
    size_t total = 1;   /* the empty line */

    FUZZ_CHECK(r->nattrs >= 1 && r->nattrs <= POL_MAX_ATTRS);
    for (int i = 0; i < r->nattrs; i++) {
        const struct pol_attr *a = &r->attrs[i];
        FUZZ_CHECK(in_text(r, a->name) && in_text(r, a->value));
        FUZZ_CHECK(name_ok(a->name));
        FUZZ_CHECK(strchr(a->value, '\n') == NULL);
        total += strlen(a->name) + strlen(a->value) + 2;
        /* pol_get answers the last attribute of that name */
        int last = i;
        for (int j = i + 1; j < r->nattrs; j++)
            if (strcmp(r->attrs[j].name, a->name) == 0)
                last = j;
        FUZZ_CHECK(pol_get(r, a->name) == r->attrs[last].value);
    }
    FUZZ_CHECK(total <= used);
    /* names that no request can hold */
    FUZZ_CHECK(pol_get(r, "") == NULL && pol_get(r, "Request") == NULL);
}

/* Write r's attributes out again and parse that: the same attributes.
 * A value ending in "\r" gets a "\r\n" line end (a bare "\n" would lose its
 * "\r"), others "\n": never longer than what was received. */
static void check_roundtrip(const struct pol_req *r, size_t used)
{
    struct buf out;
    size_t used2;
    const char *why;

    buf_init(&out);
    buf_reserve(&out, used);    /* one allocation: the round trip is no longer */
    for (int i = 0; i < r->nattrs; i++) {
        size_t vl = strlen(r->attrs[i].value);
        buf_printf(&out, "%s=%s", r->attrs[i].name, r->attrs[i].value);
        buf_adds(&out, vl && r->attrs[i].value[vl - 1] == '\r' ? "\r\n" : "\n");
    }
    buf_addc(&out, '\n');
    FUZZ_CHECK(out.len <= used);
    FUZZ_CHECK(parse(&B, out.data, out.len, &used2, &why) == POL_OK);
    FUZZ_CHECK(used2 == out.len && why == NULL);
    FUZZ_CHECK(B.nattrs == r->nattrs);
    for (int i = 0; i < r->nattrs; i++) {
        FUZZ_CHECK(strcmp(B.attrs[i].name, r->attrs[i].name) == 0);
        FUZZ_CHECK(strcmp(B.attrs[i].value, r->attrs[i].value) == 0);
    }
    buf_free(&out);
}

/* Bytes past the end of what a parse may see that are poisoned while it
 * runs: a read of them is caught as with an exact-size copy, at a cost
 * that does not grow with the rest of the input. */
#define FENCE 256

/* The first k bytes of a piece in[0..len) whose verdict is st (why,
 * used): not judged yet, or judged the same; a good request is good once
 * its end is in. Parsed in place, the bytes after k fenced off. */
static void check_prefix(const char *in, size_t len, size_t k, enum pol_status st,
                         const char *why, size_t used)
{
    size_t u, fence = len - k < FENCE ? len - k : FENCE;
    const char *w;
    enum pol_status s;

    ASAN_POISON_MEMORY_REGION(in + k, fence);
    pol_req_reset(&B);
    s = pol_parse(&B, in, k, &u, &w);
    ASAN_UNPOISON_MEMORY_REGION(in + k, fence);
    if (st == POL_OK) {
        FUZZ_CHECK(s == (k < used ? POL_NEED_MORE : POL_OK));
        FUZZ_CHECK(u == (k < used ? 0 : used));
    } else {
        FUZZ_CHECK(s == POL_NEED_MORE || s == st);
    }
    if (s == POL_NEED_MORE) {
        FUZZ_CHECK(u == 0 && w == NULL && B.nattrs == 0);
        FUZZ_CHECK(k < POL_MAX_REQUEST);
    } else if (s != POL_OK) {
        FUZZ_CHECK(w != NULL && strcmp(w, why) == 0);
        FUZZ_CHECK(u == 0 || u == used);
    }
}

/* A few starts of the request at in: never past its end (a good one's
 * verdict cannot change after it) nor the limit, so that the cost is the
 * request's, not the rest of the input's. Every start is judged by the
 * trickle check too; these are parsed in one piece, from scratch. */
static void check_prefixes(const char *in, size_t len, enum pol_status st, const char *why,
                           size_t used)
{
    size_t w = st == POL_OK ? used + 1 : POL_MAX_REQUEST + 1;
    size_t h = 5381;

    if (w > len)
        w = len;
    for (size_t i = 0; i < w; i += 97)
        h = h * 33 + (unsigned char)in[i];
    size_t cuts[] = { 0, w / 2, w - 1, h % w, (h >> 16) % w, used ? used - 1 : 1, used };
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
        if (cuts[i] < len)
            check_prefix(in, len, cuts[i], st, why, used);
}

/* The request at in[0..len) arriving in pieces, one connection: C is fed
 * in[0..k) for growing k (byte by byte for a short request, else in steps
 * of 1 to 16 bytes drawn from the input) and goes on where it stopped; the
 * bytes not arrived yet are fenced off, so a read of them is caught. Its
 * first verdict must be the one-piece verdict (st, used, why, A). */
static void check_trickle(const char *in, size_t len, enum pol_status st, const char *why,
                          size_t used)
{
    size_t w = st == POL_OK ? used : (len < POL_MAX_REQUEST + 1 ? len : POL_MAX_REQUEST + 1);
    size_t fence = w + (len - w < FENCE ? len - w : FENCE);
    size_t k = 0, u = 0, h = 0x9e3779b9u;
    const char *wy = NULL;
    enum pol_status s = POL_NEED_MORE;
    unsigned long before = C.examined, calls = 0;

    pol_req_reset(&C);
    ASAN_POISON_MEMORY_REGION(in, fence);
    while (s == POL_NEED_MORE && k < w) {
        size_t step = 1;
        if (w > 256) {
            h = h * 33 + (k ? (unsigned char)in[k - 1] : 0);  /* arrived bytes only */
            step = 1 + (h >> 8) % 16;
        }
        step = step < w - k ? step : w - k;
        ASAN_UNPOISON_MEMORY_REGION(in + k, step);
        k += step;
        s = pol_parse(&C, in, k, &u, &wy);
        calls++;
    }
    ASAN_UNPOISON_MEMORY_REGION(in, fence);
    FUZZ_CHECK(s == st);
    if (st == POL_OK) {
        FUZZ_CHECK(u == used && C.nattrs == A.nattrs);
        for (int i = 0; i < A.nattrs; i++) {
            FUZZ_CHECK(strcmp(C.attrs[i].name, A.attrs[i].name) == 0);
            FUZZ_CHECK(strcmp(C.attrs[i].value, A.attrs[i].value) == 0);
        }
    } else if (st == POL_NEED_MORE) {
        FUZZ_CHECK(u == 0 && wy == NULL);
    } else {
        FUZZ_CHECK(wy != NULL && strcmp(wy, why) == 0);
        FUZZ_CHECK(u == used || u == 0);
    }
    /* linear: each byte looked at a few times, however it arrived */
    FUZZ_CHECK(C.examined - before <= 8 * (unsigned long)w + 4 * calls + 16);
}

/* A reply is one attribute in the request framing: it parses back. */
static void check_reply(const char *data, size_t size)
{
    size_t n = size < 200 ? size : 200, used;
    char *text = malloc(n + 1);
    const char *why;
    struct buf out;

    FUZZ_CHECK(text != NULL);
    memcpy(text, data, n);
    text[n] = 0;
    buf_init(&out);
    pol_reply(&out, text);
    FUZZ_CHECK(out.len == strlen("action=") + strlen(text) + 2);
    FUZZ_CHECK(memcmp(out.data, "action=", 7) == 0);
    FUZZ_CHECK(memcmp(out.data + out.len - 2, "\n\n", 2) == 0);
    FUZZ_CHECK(memchr(out.data, '\n', out.len - 2) == NULL);
    FUZZ_CHECK(memchr(out.data, '\r', out.len) == NULL);
    FUZZ_CHECK(parse(&B, out.data, out.len, &used, &why) == POL_OK && used == out.len);
    FUZZ_CHECK(B.nattrs == 1 && strcmp(B.attrs[0].name, "action") == 0);
    FUZZ_CHECK(strlen(B.attrs[0].value) == strlen(text));
    free(text);
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    /* one exact-size copy: a request at in + off has its end at the end of
     * the allocation, so reads past it are caught */
    char *in = malloc(size ? size : 1);
    size_t off = 0;

    FUZZ_CHECK(in != NULL);
    memcpy(in, data, size);
    if (!init) {
        pol_req_init(&A);
        pol_req_init(&B);
        pol_req_init(&C);
        init = 1;
    }
    pol_req_reset(&A);      /* a new connection */
    while (off < size) {
        const char *p = in + off, *why = "unset";
        size_t len = size - off, used = 12345;
        enum pol_status st = pol_parse(&A, p, len, &used, &why);

        FUZZ_CHECK(used <= len && used <= POL_MAX_REQUEST);
        FUZZ_CHECK(used == first_empty_line(p, len));
        switch (st) {
        case POL_OK:
            FUZZ_CHECK(used > 0 && why == NULL);
            check_attrs(&A, used);
            check_trickle(in + off, len, st, why, used);
            check_prefixes(p, len, st, why, used);
            /* pol_parse reuses A's text: the round trip parses into B */
            check_roundtrip(&A, used);
            off += used;
            continue;
        case POL_NEED_MORE:
            FUZZ_CHECK(used == 0 && why == NULL && A.nattrs == 0);
            FUZZ_CHECK(len < POL_MAX_REQUEST);
            check_trickle(in + off, len, st, why, used);
            break;
        case POL_TOO_LONG:
        case POL_BAD:
            FUZZ_CHECK(why != NULL && A.nattrs == 0);
            if (st == POL_TOO_LONG && used == 0)
                FUZZ_CHECK(len >= POL_MAX_REQUEST || strstr(why, "attributes") != NULL);
            check_trickle(in + off, len, st, why, used);
            check_prefixes(p, len, st, why, used);
            break;
        default:
            FUZZ_CHECK(!"pol_parse returned no pol_status");
        }
        break;  /* wait for more, or close */
    }
    check_reply(in, size);
    free(in);
    return 0;
}
