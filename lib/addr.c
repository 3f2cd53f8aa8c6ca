/* addr.c - canonical domains and addresses. */
#include "config.h"

#include <errno.h>
#include <idn2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unicase.h>
#include <unistr.h>

#include "addr.h"
#include "log.h"

const char *addr_strerror(int err)
{
    switch (err) {
    case ADDR_OK: return "ok";
    case ADDR_EMPTY: return "empty";
    case ADDR_NO_AT: return "address has no '@'";
    case ADDR_LOCAL_EMPTY: return "local part is empty";
    case ADDR_LOCAL_TOO_LONG: return "local part longer than 64 octets";
    case ADDR_LOCAL_BAD_CHAR: return "local part has a control, space or special character";
    case ADDR_LOCAL_BAD_DOT: return "local part has a leading or trailing dot or '..'";
    case ADDR_LOCAL_DELIM: return "local part contains the recipient delimiter";
    case ADDR_DOMAIN_TOO_LONG: return "domain longer than 253 octets";
    case ADDR_DOMAIN_BAD: return "domain is not letters, digits and hyphens in labels of 1 to 63 octets";
    case ADDR_DOMAIN_IGNORABLE: return "domain has an invisible character (soft hyphen, zero-width space, ...)";
    case ADDR_DOMAIN_IDN: return "domain is not a valid IDNA2008 name";
    case ADDR_TOO_LONG: return "address longer than 254 octets";
    case ADDR_LOCAL_BAD_UTF8: return "local part is not valid UTF-8";
    }
    return "unknown error";
}

static int ldh_check(const char *d, size_t len)
{
    size_t label = 0;

    if (len == 0)
        return ADDR_EMPTY;
    if (len > 253)
        return ADDR_DOMAIN_TOO_LONG;
    for (size_t i = 0; i < len; i++) {
        char c = d[i];
        if (c == '.') {
            if (label == 0 || d[i - 1] == '-')
                return ADDR_DOMAIN_BAD;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return ADDR_DOMAIN_BAD;
        if (c == '-' && label == 0)
            return ADDR_DOMAIN_BAD;
        if (++label > 63)
            return ADDR_DOMAIN_BAD;
    }
    if (label == 0 || d[len - 1] == '-')
        return ADDR_DOMAIN_BAD;
    return ADDR_OK;
}

/* Decode one UTF-8 sequence; returns its length or 0 when invalid. */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t n = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || n > len)
        return 0;
    uint32_t c = s[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    *cp = c;
    return n;
}

/* Code points UTS #46 maps to nothing: libidn2 would silently drop them and
 * turn "ex<U+200B>ample.com" into "example.com". */
static int ignorable(uint32_t c)
{
    return c == 0xad || c == 0x34f || (c >= 0x180b && c <= 0x180f) ||
           (c >= 0x200b && c <= 0x200f) || (c >= 0x2060 && c <= 0x206f) ||
           (c >= 0xfe00 && c <= 0xfe0f) || c == 0xfeff ||
           (c >= 0xe0000 && c <= 0xe0fff) || c == 0x1bca0 || c == 0x1bca1 ||
           c == 0x1bca2 || c == 0x1bca3;
}

int addr_unicode(const char *addr, struct buf *out)
{
    const char *at = strrchr(addr, '@');
    char *u = NULL;

    buf_reset(out);
    if (at == NULL || strstr(at + 1, "xn--") == NULL)
        return -1;
    if (idn2_to_unicode_8z8z(at + 1, &u, 0) != IDN2_OK) {
        free(u);
        return -1;
    }
    buf_add(out, addr, (size_t)(at - addr) + 1);
    buf_adds(out, u);
    free(u);
    return 0;
}

/* The canonical form of the domain in[0..len), appended to out. */
static int domain_canon_add(const char *in, size_t len, struct buf *out)
{
    size_t start = out->len;

    if (len == 0)
        return ADDR_EMPTY;
    if (len > 1024)
        return ADDR_DOMAIN_TOO_LONG;
    /* ASCII without NUL, nearly every domain: nothing to decode, nothing
     * ignorable, so copied folded in one pass */
    size_t k = 0;
    while (k < len && (unsigned char)in[k] - 1u < 0x7fu)
        k++;
    if (k == len) {
        buf_reserve(out, len);
        char *d = out->data + start;
        for (size_t i = 0; i < len; i++)
            d[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] + 32) : in[i];
        out->len += len;
        out->data[out->len] = 0;
        return ldh_check(d, len);
    }
    /* here in[k] is NUL (refused below) or 8-bit: a U-label somewhere */
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_next((const unsigned char *)in + i, len - i, &cp);
        if (n == 0 || cp == 0)
            return ADDR_DOMAIN_BAD;
        if (ignorable(cp))
            return ADDR_DOMAIN_IGNORABLE;
        i += n;
    }
    char *tmp = strndup(in, len), *alabel = NULL;
    if (tmp == NULL)
        return ADDR_DOMAIN_IDN;
    int rc = idn2_lookup_u8((const uint8_t *)tmp, (uint8_t **)&alabel,
                            IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    free(tmp);
    if (rc != IDN2_OK) {
        idn2_free(alabel);
        return ADDR_DOMAIN_IDN;
    }
    buf_adds(out, alabel);
    idn2_free(alabel);
    for (size_t i = start; i < out->len; i++)
        if (out->data[i] >= 'A' && out->data[i] <= 'Z')
            out->data[i] += 32;
    return ldh_check(out->data + start, out->len - start);
}

int addr_domain_canon(const char *in, size_t len, struct buf *out)
{
    buf_reset(out);
    return domain_canon_add(in, len, out);
}

int addr_fold(const char *in, size_t len, struct buf *out)
{
    size_t i = 0;

    while (i < len && (unsigned char)in[i] < 0x80)
        i++;
    if (i == len) {
        for (i = 0; i < len; i++)
            buf_addc(out, (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] + 32) : in[i]);
        return ADDR_OK;
    }
    /* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF):
     * u8_casefold would quietly fold garbage to U+FFFD, and two different
     * broken keys must not meet under one folded key. */
    if (u8_check((const uint8_t *)in, len) != NULL)
        return ADDR_LOCAL_BAD_UTF8;
    uint8_t small[256];
    size_t n = sizeof(small);
    uint8_t *r = u8_casefold((const uint8_t *)in, len, NULL, NULL, small, &n);
    if (r == NULL) {
        if (errno == EILSEQ)
            return ADDR_LOCAL_BAD_UTF8;
        msg_fatal("u8_casefold: out of memory");
    }
    buf_add(out, r, n);
    if (r != small)
        free(r);
    return ADDR_OK;
}

int addr_canon(const char *in, size_t len, struct buf *out, size_t *at)
{
    const char *sep = NULL;
    int rc;

    buf_reset(out);
    if (len == 0)
        return ADDR_EMPTY;
    for (size_t i = len; i > 0; i--)
        if (in[i - 1] == '@') {
            sep = in + i - 1;
            break;
        }
    if (sep == NULL)
        return ADDR_NO_AT;
    /* RFC 5321's 64 octets count what the client sent; the folded form may
     * be longer (U+0390 grows from 2 to 6 octets) and is still a key. */
    size_t llen = (size_t)(sep - in);
    int ascii = 1;
    if (llen > 64)
        return ADDR_LOCAL_TOO_LONG;
    buf_reserve(out, llen + 1);         /* the local part, then its "@" */
    for (size_t i = 0; i < llen; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c == 0x7f) {
            out->data[out->len] = 0;
            return ADDR_LOCAL_BAD_CHAR;
        }
        if (c >= 0x80)
            ascii = 0;
        out->data[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (char)c;
    }
    out->len = llen;
    out->data[llen] = 0;
    /* Invalid UTF-8 is no key at all: Postfix's dict_utf8 wrapper skips
     * such a lookup as not found (with a warning), and the database (UTF8
     * encoded) cannot hold it. */
    if (!ascii) {
        buf_reset(out);
        if ((rc = addr_fold(in, llen, out)) != ADDR_OK)
            return rc;
    }
    *at = out->len;
    buf_addc(out, '@');
    rc = domain_canon_add(sep + 1, len - llen - 1, out);
    if (rc == ADDR_OK && out->len > 254)
        rc = ADDR_TOO_LONG;
    return rc;
}

int addr_local_check(const char *local, size_t len, const char *delims)
{
    if (len == 0)
        return ADDR_LOCAL_EMPTY;
    if (len > 64)
        return ADDR_LOCAL_TOO_LONG;
    if (local[0] == '.' || local[len - 1] == '.')
        return ADDR_LOCAL_BAD_DOT;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)local[i];
        if (c <= 0x20 || c == 0x7f || strchr("@,\"\\()<>[];:", c) != NULL)
            return ADDR_LOCAL_BAD_CHAR;
        if (c == '.' && local[i + 1] == '.')
            return ADDR_LOCAL_BAD_DOT;
        if (delims && *delims && strchr(delims, c) != NULL)
            return ADDR_LOCAL_DELIM;
    }
    return ADDR_OK;
}

size_t addr_ext_split(const char *local, size_t len, const char *delims)
{
    if (delims == NULL || *delims == 0)
        return len;
    if (delims[1] == 0) {   /* one delimiter, as most sites have */
        const char *d = memchr(local, delims[0], len);
        return d == NULL || d == local ? len : (size_t)(d - local);
    }
    for (size_t i = 0; i < len; i++)
        if (strchr(delims, local[i]) != NULL && local[i] != 0)
            return i == 0 ? len : i;
    return len;
}
