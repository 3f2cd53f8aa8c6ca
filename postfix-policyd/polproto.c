/* polproto.c - Postfix policy delegation requests in, "action=" replies out.
 *
 * Rules, checked line by line in the order the bytes arrive:
 *   - a line ends at "\n"; one "\r" right before it is dropped;
 *   - an empty line ends the request; one before any attribute is bad;
 *   - any other line is NAME=VALUE: NAME is one or more of [a-z0-9_],
 *     VALUE is the rest of the line, "=" and any other "\r" included;
 *   - a NUL byte is bad anywhere.
 * Parsing is two passes over each request: judge() finds the verdict and
 * the end without writing anything, and notes where each good line's "="
 * and end lie; split() then copies a good request into r->text and cuts it
 * there. judge() keeps where it stopped in r->scan, so bytes that were
 * judged while the request trickled in are not judged again; split() runs
 * once, on a complete request. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "polproto.h"

#define STR_(x) #x
#define STR(x) STR_(x)

void pol_req_init(struct pol_req *r)
{
    r->text = NULL;
    r->text_size = 0;
    r->nattrs = 0;
    memset(r->known, 0, sizeof(r->known));
    r->examined = 0;
    pol_req_reset(r);
}

void pol_req_free(struct pol_req *r)
{
    free(r->text);
    pol_req_init(r);
}

void pol_req_reset(struct pol_req *r)
{
    r->scan.line = 0;
    r->scan.next = 0;
    r->scan.eq = 0;
    r->scan.eqpos = 0;
    r->scan.nattrs = 0;
}

/* a-z 0-9 _ (a table: the name scan is the parser's inner loop) */
static const unsigned char name_chars[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['_'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1,
    ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1,
    ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static int name_char(unsigned char c)
{
    return name_chars[c];
}

/* Judge the bytes [sc->next, end) of the line that starts at sc->line;
 * end is its content's end (without "\n" and, when complete, the "\r"
 * before it), or what is in of it. Moves sc->next past what is good.
 * NULL: nothing wrong so far. */
static const char *judge_line(struct pol_req *r, const char *in, size_t end, int complete)
{
    struct pol_scan *sc = &r->scan;
    size_t i = sc->next;

    for (; i < end && !sc->eq; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '=') {
            if (i == sc->line)
                return "empty attribute name";
            sc->eq = 1;
            sc->eqpos = i;
        } else if (!name_char(c)) {
            if (c == 0)
                return "NUL byte in request";
            /* the "\r" of a "\r\n" that is not all in yet: judged next time */
            if (c == '\r' && !complete && i == end - 1)
                break;
            return "bad character in attribute name (not a-z 0-9 _)";
        }
    }
    r->examined += i - sc->next;
    if (sc->eq && i < end) {
        r->examined += end - i;
        if (memchr(in + i, 0, end - i) != NULL)
            return "NUL byte in request";
        i = end;
    }
    sc->next = i > sc->next ? i : sc->next;
    if (complete && !sc->eq)
        return "line without \"=\"";
    return NULL;
}

/* The end (just past its empty line) of a request whose line starting at
 * p is not empty, or 0 if that is not in in[0..lim) yet. */
static size_t request_end(struct pol_req *r, const char *in, size_t p, size_t lim)
{
    size_t from = p;

    for (;;) {
        const char *nl = memchr(in + p, '\n', lim - p);
        if (nl == NULL) {
            r->examined += lim - from;
            return 0;
        }
        p = (size_t)(nl - in) + 1;
        if (p < lim && in[p] == '\n')
            p += 1;
        else if (p + 1 < lim && in[p] == '\r' && in[p + 1] == '\n')
            p += 2;
        else
            continue;
        r->examined += p - from;
        return p;
    }
}

/* The good lines' scan looks at a window of 64 octets at a time: two
 * masks, a bit per octet, say which octets end a name (any octet not in
 * [a-z0-9_]) and which end a value ("\n" or NUL), and a line's "=" and end
 * are each the lowest set bit past its start. An octet loop paid a wrongly
 * predicted branch at the end of every name and every value, the window
 * one at each 64 octets (Postfix's RCPT request: 29 lines, 720 octets).
 * With SSE2 (every x86-64) a window takes 4 loads and a few compares; the
 * portable build (and POL_PORTABLE, which the unit tests also build) fills
 * the masks an octet at a time. Octets at or past lim read as NUL, so a
 * scan stops there. */
#if defined(__SSE2__) && !defined(POL_PORTABLE)
#include <emmintrin.h>
#define POL_SSE2 1
#endif

/* in[base..base+64), or a copy of what is in of it padded with NULs:
 * never a read past lim */
static const unsigned char *window_octets(const char *in, size_t base, size_t lim, unsigned char pad[64])
{
    const unsigned char *s = (const unsigned char *)in + base;

    if (lim - base >= 64)
        return s;
    memset(pad, 0, 64);
    memcpy(pad, s, lim - base);
    return pad;
}

#ifdef POL_SSE2
/* Which octets of v are in [a-z0-9_]: x + (0x80 - lo) puts [lo, lo + n)
 * at the bottom of the signed octets, where one compare finds it. */
static inline __m128i name_class(__m128i v)
{
    const __m128i a_off = _mm_set1_epi8((char)(0x80 - 'a')), a_top = _mm_set1_epi8((char)(-128 + 26));
    const __m128i d_off = _mm_set1_epi8((char)(0x80 - '0')), d_top = _mm_set1_epi8((char)(-128 + 10));
    return _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(_mm_add_epi8(v, a_off), a_top),
                                     _mm_cmplt_epi8(_mm_add_epi8(v, d_off), d_top)),
                        _mm_cmpeq_epi8(v, _mm_set1_epi8('_')));
}
#endif

struct pol_win {
    size_t base;                /* in[base..base+64); (size_t)-1: none loaded */
    uint64_t name_end, value_end;
};

/* out of line: once a window, while the finds stay in their callers */
__attribute__((noinline)) static void win_load(struct pol_win *w, const char *in, size_t base,
                                               size_t lim)
{
    unsigned char pad[64];
    const unsigned char *s = window_octets(in, base, lim, pad);
    uint64_t ne = 0, ve = 0;

#ifdef POL_SSE2
    const __m128i nl = _mm_set1_epi8('\n'), nul = _mm_setzero_si128();
    for (int k = 0; k < 4; k++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + 16 * k));
        __m128i name = name_class(x);
        __m128i end = _mm_or_si128(_mm_cmpeq_epi8(x, nl), _mm_cmpeq_epi8(x, nul));
        ne |= (uint64_t)(uint16_t)~_mm_movemask_epi8(name) << (16 * k);
        ve |= (uint64_t)(uint16_t)_mm_movemask_epi8(end) << (16 * k);
    }
#else
    for (int k = 0; k < 64; k++) {
        ne |= (uint64_t)!name_char(s[k]) << k;
        ve |= (uint64_t)(s[k] == '\n' || s[k] == 0) << k;
    }
#endif
    w->base = base;
    w->name_end = ne;
    w->value_end = ve;
}

/* The first octet at or past i that ends a name (value == 0) or a value
 * (value == 1), or lim if none is in. Positions only move forward within
 * one judge() call, so each window is loaded once. */
static inline __attribute__((always_inline)) size_t win_find(struct pol_win *w, const char *in,
                                                             size_t i, size_t lim, int value)
{
    for (;;) {
        if (i >= lim)
            return lim;
        if (i < w->base || i - w->base >= 64)
            win_load(w, in, i, lim);
        uint64_t m = (value ? w->value_end : w->name_end) >> (i - w->base);
        if (m) {
            size_t at = i + (size_t)__builtin_ctzll(m);
            return at < lim ? at : lim;
        }
        i = w->base + 64;
    }
}

/* A whole good attribute line at sc->line, judged in one pass (the lines
 * of nearly every request): its end (just past its "\n") and its span, or
 * 0 for anything else (a fault, an empty line, a line not all in), which
 * the careful path then judges. */
static size_t good_line(struct pol_req *r, const char *in, size_t lim, struct pol_span *sp,
                        struct pol_win *w)
{
    size_t p = r->scan.line, i = win_find(w, in, p, lim, 0);

    if (i == p || i == lim || in[i] != '=') {
        r->examined += i - p;
        return 0;
    }
    sp->line = (unsigned short)p;
    sp->eq = (unsigned short)i;
    /* the value: up to its "\n", or a NUL (the careful path's), or the
     * end of what is in; what is counted as examined is as an octet loop
     * would have it */
    i = win_find(w, in, i + 1, lim, 1);
    r->examined += i - p;
    if (i == lim || in[i] == 0)
        return 0;
    /* as judge(): one "\r" right before the "\n" is dropped */
    sp->end = (unsigned short)(in[i - 1] == '\r' && i - 1 > sp->eq ? i - 1 : i);
    return i + 1;
}

/* A whole plain request (what Postfix sends: no "\r", no NUL, every line
 * NAME=VALUE, the empty line in) judged a 64-octet word at a time, without
 * a branch per line: per word, masks of the octets that end a name (X),
 * the newlines (NL), the "=" (EQ) and the octets that need the careful
 * path ("\r" or NUL: BAD). Lines start at 0 and after each newline (S);
 * the first X at or after each line start is X & ~(X - S), taken as one
 * long subtraction over the words (a borrow stops at the next X, and every
 * line's newline is one). The request is good when each line's first X is
 * an "=" that is not at the line's start; its end is the first line start
 * on a newline (the empty line). The spans are then the set bits, in
 * order: S for the starts, the firsts for the "=", NL for the ends.
 * Returns 0 for anything else (not all in, a fault, a "\r", too many
 * lines), and judge() decides as it always has. */
struct pol_masks {
    uint64_t x, nl, eq, bad;
};

static void masks_of(struct pol_masks *m, const char *in, size_t base, size_t lim)
{
    unsigned char pad[64];
    const unsigned char *s = window_octets(in, base, lim, pad);
    uint64_t x = 0, nl = 0, eq = 0, bad = 0;

#ifdef POL_SSE2
    const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
    const __m128i eqc = _mm_set1_epi8('='), nul = _mm_setzero_si128();
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + 16 * k));
        __m128i name = name_class(v);
        x |= (uint64_t)(uint16_t)~_mm_movemask_epi8(name) << (16 * k);
        nl |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf)) << (16 * k);
        eq |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, eqc)) << (16 * k);
        bad |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, nul)))
               << (16 * k);
    }
#else
    for (int k = 0; k < 64; k++) {
        x |= (uint64_t)!name_char(s[k]) << k;
        nl |= (uint64_t)(s[k] == '\n') << k;
        eq |= (uint64_t)(s[k] == '=') << k;
        bad |= (uint64_t)(s[k] == '\r' || s[k] == 0) << k;
    }
#endif
    m->x = x;
    m->nl = nl;
    m->eq = eq;
    m->bad = bad;
}

/* the positions base + each set bit of bits, in order, into one field of
 * spans[*n...]; 0 when more than POL_MAX_ATTRS */
#define SPAN_BITS(bits, field, n)                                  \
    for (uint64_t b_ = (bits); b_; b_ &= b_ - 1) {                 \
        if ((n) == POL_MAX_ATTRS)                                  \
            return 0;                                              \
        r->spans[(n)++].field = (unsigned short)(base + (size_t)__builtin_ctzll(b_)); \
    }

static int judge_plain(struct pol_req *r, const char *in, size_t lim, size_t *used, int *nattrs)
{
    uint64_t carry = 1;         /* position 0 starts a line */
    uint64_t borrow = 0;
    int ns = 0, nq = 0, nn = 0;
    struct pol_masks m;

    for (size_t base = 0; base < lim; base += 64) {
        masks_of(&m, in, base, lim);
        r->examined += (lim - base < 64 ? lim - base : 64);
        uint64_t s = m.nl << 1 | carry;
        carry = m.nl >> 63;
        uint64_t t = m.x - s, d = t - borrow;
        borrow = (m.x < s) | (t < borrow);
        uint64_t first = m.x & ~d;
        /* the octets of this request in this word: up to its empty line */
        uint64_t end = s & m.nl, keep = ~(uint64_t)0;
        if (end) {
            unsigned e = (unsigned)__builtin_ctzll(end);
            if (base + e == 0)
                return 0;       /* an empty request */
            keep = e == 63 ? ~((uint64_t)1 << 63) : ((uint64_t)1 << e) - 1;
        }
        if (base + 64 > lim && !end)
            return 0;           /* not all in (past lim the pad is NUL: bad anyway) */
        if ((m.bad | (first & ~m.eq) | (first & s)) & keep)
            return 0;
        SPAN_BITS(s & keep, line, ns);
        SPAN_BITS(first & keep, eq, nq);
        SPAN_BITS(m.nl & keep, end, nn);
        if (end) {
            if (ns != nq || nq != nn)
                return 0;       /* cannot be: every line has one of each */
            *used = base + (size_t)__builtin_ctzll(end) + 1;
            *nattrs = ns;
            return 1;
        }
    }
    return 0;
}
#undef SPAN_BITS

/* The verdict on in[0..len) and the number of attributes, going on from
 * r->scan; *used as pol_parse's. */
static enum pol_status judge(struct pol_req *r, const char *in, size_t len, size_t *used,
                             const char **why, int *nattrs, int *plain)
{
    /* bytes beyond the limit are never looked at: a request cannot reach them */
    size_t lim = len < POL_MAX_REQUEST ? len : POL_MAX_REQUEST;
    struct pol_scan *sc = &r->scan;
    struct pol_win w = { .base = (size_t)-1 };

    if (sc->next > lim)     /* not the stream judged so far */
        pol_req_reset(r);
    if (sc->line == 0 && sc->next == 0 && judge_plain(r, in, lim, used, nattrs)) {
        *plain = 1;
        return POL_OK;
    }
    for (;;) {
        size_t p = sc->line;
        if (sc->next == p && sc->nattrs < POL_MAX_ATTRS) {
            size_t next = good_line(r, in, lim, &r->spans[sc->nattrs], &w);
            if (next > 0) {
                sc->nattrs++;
                sc->line = sc->next = next;
                continue;
            }
        }
        /* the line's bytes before sc->next hold no "\n" */
        const char *nl = memchr(in + sc->next, '\n', lim - sc->next);
        size_t end = nl ? (size_t)(nl - in) : lim;   /* of what is in of this line */
        size_t c = end;                               /* of its content */

        r->examined += (nl ? end + 1 : lim) - sc->next;
        if (nl && c > p && in[c - 1] == '\r')
            c--;
        if (nl && c == p) {
            *used = end + 1;
            if (sc->nattrs == 0) {
                *why = "empty request";
                return POL_BAD;
            }
            *nattrs = sc->nattrs;
            return POL_OK;
        }
        if ((*why = judge_line(r, in, c, nl != NULL)) != NULL) {
            *used = nl ? request_end(r, in, p, lim) : 0;
            return POL_BAD;
        }
        if (nl == NULL) {
            if (lim < POL_MAX_REQUEST)
                return POL_NEED_MORE;
            *why = "request longer than " STR(POL_MAX_REQUEST) " bytes";
            return POL_TOO_LONG;
        }
        if (sc->nattrs == POL_MAX_ATTRS) {
            *used = request_end(r, in, p, lim);
            *why = "more than " STR(POL_MAX_ATTRS) " attributes";
            return POL_TOO_LONG;
        }
        r->spans[sc->nattrs].line = (unsigned short)p;
        r->spans[sc->nattrs].eq = (unsigned short)sc->eqpos;
        r->spans[sc->nattrs].end = (unsigned short)c;
        sc->nattrs++;
        sc->line = sc->next = end + 1;
        sc->eq = 0;
    }
}

/* The known attribute a name is, or POL_NKNOWN. The names differ in
 * length; each comparison has a constant length, which the compiler does
 * in a load or two instead of a call (once for every attribute of every
 * request). */
#define KNOWN(name, lit, k) (memcmp((name), lit, sizeof(lit) - 1) == 0 ? (k) : POL_NKNOWN)
static enum pol_known known_of(const char *name, size_t len)
{
    switch (len) {
    case 7: return KNOWN(name, "request", POL_K_REQUEST);
    case 14: return KNOWN(name, "protocol_state", POL_K_PROTOCOL_STATE);
    case 13: return KNOWN(name, "sasl_username", POL_K_SASL_USERNAME);
    case 6: return KNOWN(name, "sender", POL_K_SENDER);
    case 9: return KNOWN(name, "recipient", POL_K_RECIPIENT);
    case 15: return KNOWN(name, "recipient_count", POL_K_RECIPIENT_COUNT);
    case 4: return KNOWN(name, "size", POL_K_SIZE);
    case 8: return KNOWN(name, "queue_id", POL_K_QUEUE_ID);
    default: return POL_NKNOWN;
    }
}
#undef KNOWN

/* Copy the good request in[0..used) into r->text, each line cut into
 * "name\0value\0" where judge() saw its "=" and its end. Those places are
 * checked, not trusted, unless judge_plain() found them in this call on
 * these bytes (plain): should a caller break the resuming contract, the
 * verdict may be wrong, but every write stays inside the copy. Returns -1
 * when the text is not the nattrs good lines judged. */
static int split(struct pol_req *r, const char *in, size_t used, int nattrs, int plain)
{
    size_t from = 0;

    if (r->text_size < used) {
        size_t size = r->text_size ? r->text_size : 1024;
        while (size < used)
            size *= 2;
        r->text = xrealloc(r->text, size);
        r->text_size = size;
    }
    memcpy(r->text, in, used);
    r->examined += used;
    memset(r->known, 0, sizeof(r->known));
    for (int i = 0; i < nattrs; i++) {
        const struct pol_span *sp = &r->spans[i];
        char *t = r->text;
        if (!plain && (sp->line < from || sp->eq <= sp->line || sp->end <= sp->eq || sp->end >= used ||
                       t[sp->eq] != '=' || (t[sp->end] != '\n' && t[sp->end] != '\r')))
            return -1;
        from = (size_t)sp->end + 1;
        t[sp->eq] = 0;
        t[sp->end] = 0;
        r->attrs[i].name = t + sp->line;
        r->attrs[i].value = t + sp->eq + 1;
        enum pol_known k = known_of(t + sp->line, (size_t)(sp->eq - sp->line));
        if (k != POL_NKNOWN)
            r->known[k] = (unsigned char)(i + 1);
    }
    r->nattrs = nattrs;
    return 0;
}

enum pol_status pol_parse(struct pol_req *r, const char *in, size_t len, size_t *used,
                          const char **why)
{
    enum pol_status st;
    int nattrs = 0, plain = 0;

    r->nattrs = 0;
    *used = 0;
    *why = NULL;
    if (len == 0) {     /* an empty buf's data may be NULL */
        pol_req_reset(r);
        return POL_NEED_MORE;
    }
    st = judge(r, in, len, used, why, &nattrs, &plain);
    if (st == POL_NEED_MORE)
        return st;
    pol_req_reset(r);   /* a verdict: the next call starts a new request */
    if (st == POL_OK && split(r, in, *used, nattrs, plain) < 0) {
        *why = "request changed between calls (caller error)";
        return POL_BAD;
    }
    return st;
}

const char *pol_get(const struct pol_req *r, const char *name)
{
    size_t len = strlen(name);
    enum pol_known k = known_of(name, len);

    if (k != POL_NKNOWN)
        return r->known[k] && r->known[k] <= r->nattrs ? r->attrs[r->known[k] - 1].value : NULL;
    for (int i = r->nattrs - 1; i >= 0; i--)
        if (strcmp(r->attrs[i].name, name) == 0)
            return r->attrs[i].value;
    return NULL;
}

void pol_reply(struct buf *out, const char *text)
{
    size_t at = out->len + 7, n = strlen(text);

    buf_add(out, "action=", 7);
    buf_add(out, text, n);
    buf_add(out, "\n\n", 2);
    for (char *s = out->data + at; s < out->data + at + n; s++)
        if (*s == '\r' || *s == '\n')
            *s = ' ';
}
