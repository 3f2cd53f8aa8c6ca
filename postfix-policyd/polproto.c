/* polproto.c - Postfix policy delegation requests in, "action=" replies out.
 *
 * Rules, checked line by line in the order the bytes arrive:
 *   - a line ends at "\n"; one "\r" right before it is dropped;
 *   - an empty line ends the request; one before any attribute is bad;
 *   - any other line is NAME=VALUE: NAME is one or more of [a-z0-9_],
 *     VALUE is the rest of the line, "=" and any other "\r" included;
 *   - a NUL byte is bad anywhere.
 * Parsing is two passes over the same bytes: judge() finds the verdict and
 * the end without writing anything, split() then copies a good request
 * into r->text, which needs no checks any more. */
#include "config.h"

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
}

void pol_req_free(struct pol_req *r)
{
    free(r->text);
    pol_req_init(r);
}

static int name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* Judge the line s[0..n), without its "\n" and, when complete, without its
 * "\r"; an incomplete line (its "\n" not in yet) is judged as far as it
 * goes. NULL: nothing wrong so far. */
static const char *judge_line(const char *s, size_t n, int complete)
{
    size_t i;

    for (i = 0; i < n && s[i] != '='; i++) {
        if (name_char((unsigned char)s[i]))
            continue;
        if (s[i] == 0)
            return "NUL byte in request";
        /* the "\r" of a "\r\n" that is not all in yet */
        if (s[i] == '\r' && !complete && i == n - 1)
            return NULL;
        return "bad character in attribute name (not a-z 0-9 _)";
    }
    if (i == n)
        return complete ? "line without \"=\"" : NULL;
    if (i == 0)
        return "empty attribute name";
    if (memchr(s + i + 1, 0, n - i - 1) != NULL)
        return "NUL byte in request";
    return NULL;
}

/* The end (just past its empty line) of a request whose line starting at
 * p is not empty, or 0 if that is not in in[0..lim) yet. */
static size_t request_end(const char *in, size_t p, size_t lim)
{
    for (;;) {
        const char *nl = memchr(in + p, '\n', lim - p);
        if (nl == NULL)
            return 0;
        p = (size_t)(nl - in) + 1;
        if (p < lim && in[p] == '\n')
            return p + 1;
        if (p + 1 < lim && in[p] == '\r' && in[p + 1] == '\n')
            return p + 2;
    }
}

/* The verdict on in[0..len) and the number of attributes; *used as
 * pol_parse's. */
static enum pol_status judge(const char *in, size_t len, size_t *used, const char **why,
                             int *nattrs)
{
    /* bytes beyond the limit are never looked at: a request cannot reach them */
    size_t lim = len < POL_MAX_REQUEST ? len : POL_MAX_REQUEST;
    size_t p = 0;
    int n = 0;

    for (;;) {
        const char *nl = memchr(in + p, '\n', lim - p);
        size_t end = nl ? (size_t)(nl - in) : lim;   /* of what is in of this line */
        size_t c = end;                               /* of its content */

        if (nl && c > p && in[c - 1] == '\r')
            c--;
        if (nl && c == p) {
            *used = end + 1;
            if (n == 0) {
                *why = "empty request";
                return POL_BAD;
            }
            *nattrs = n;
            return POL_OK;
        }
        if ((*why = judge_line(in + p, c - p, nl != NULL)) != NULL) {
            *used = nl ? request_end(in, p, lim) : 0;
            return POL_BAD;
        }
        if (nl == NULL) {
            if (lim < POL_MAX_REQUEST)
                return POL_NEED_MORE;
            *why = "request longer than " STR(POL_MAX_REQUEST) " bytes";
            return POL_TOO_LONG;
        }
        if (n == POL_MAX_ATTRS) {
            *used = request_end(in, p, lim);
            *why = "more than " STR(POL_MAX_ATTRS) " attributes";
            return POL_TOO_LONG;
        }
        n++;
        p = end + 1;
    }
}

/* Copy the good request in[0..used) into r->text, each line cut into
 * "name\0value\0" where its "=" and line end were. */
static void split(struct pol_req *r, const char *in, size_t used, int nattrs)
{
    size_t p = 0;

    if (r->text_size < used) {
        size_t size = r->text_size ? r->text_size : 1024;
        while (size < used)
            size *= 2;
        r->text = xrealloc(r->text, size);
        r->text_size = size;
    }
    memcpy(r->text, in, used);
    for (int i = 0; i < nattrs; i++) {
        char *s = r->text + p;
        char *nl = memchr(s, '\n', used - p);
        char *eq = memchr(s, '=', (size_t)(nl - s));
        p = (size_t)(nl - r->text) + 1;
        if (nl > eq + 1 && nl[-1] == '\r')
            nl--;
        *eq = 0;
        *nl = 0;
        r->attrs[i].name = s;
        r->attrs[i].value = eq + 1;
    }
    r->nattrs = nattrs;
}

enum pol_status pol_parse(struct pol_req *r, const char *in, size_t len, size_t *used,
                          const char **why)
{
    enum pol_status st;
    int nattrs = 0;

    r->nattrs = 0;
    *used = 0;
    *why = NULL;
    if (len == 0)       /* an empty buf's data may be NULL */
        return POL_NEED_MORE;
    st = judge(in, len, used, why, &nattrs);
    if (st == POL_OK)
        split(r, in, *used, nattrs);
    return st;
}

const char *pol_get(const struct pol_req *r, const char *name)
{
    for (int i = r->nattrs - 1; i >= 0; i--)
        if (strcmp(r->attrs[i].name, name) == 0)
            return r->attrs[i].value;
    return NULL;
}

void pol_reply(struct buf *out, const char *text)
{
    buf_adds(out, "action=");
    for (const char *s = text; *s; s++)
        buf_addc(out, *s == '\r' || *s == '\n' ? ' ' : *s);
    buf_adds(out, "\n\n");
}
