/* addr.h - the one canonical form of domains and addresses.
 *
 * Domains: lowercase A-labels (IDNA2008 via libidn2), LDH labels of 1..63
 * octets, at most 253 octets. Local parts: case-folded the way Postfix folds
 * keys with smtputf8_enable = yes: ASCII letters to lowercase, other text by
 * full Unicode case folding (CaseFolding.txt C+F, no locale: "STRASSE" and
 * "straße" both become "strasse"). Used by lookups (fold the key) and by
 * provisioning (validate input before it reaches the database). */
#ifndef MR_ADDR_H
#define MR_ADDR_H

#include <stddef.h>

#include "buf.h"

enum addr_err {
    ADDR_OK = 0,
    ADDR_EMPTY,            /* nothing given */
    ADDR_NO_AT,            /* address without '@' */
    ADDR_LOCAL_EMPTY,      /* "@domain" where a local part is required */
    ADDR_LOCAL_TOO_LONG,   /* > 64 octets */
    ADDR_LOCAL_BAD_CHAR,   /* control, space or a special character */
    ADDR_LOCAL_BAD_DOT,    /* leading/trailing dot or ".." */
    ADDR_LOCAL_DELIM,      /* contains the recipient delimiter */
    ADDR_DOMAIN_TOO_LONG,  /* > 253 octets */
    ADDR_DOMAIN_BAD,       /* not LDH labels of 1..63 octets */
    ADDR_DOMAIN_IGNORABLE, /* an invisible code point IDNA would drop */
    ADDR_DOMAIN_IDN,       /* IDNA2008 refused it */
    ADDR_TOO_LONG,         /* address > 254 octets */
    ADDR_LOCAL_BAD_UTF8,   /* non-ASCII local part that is not valid UTF-8 */
};

const char *addr_strerror(int err);

/* Canonical domain into out (reset first). */
int addr_domain_canon(const char *in, size_t len, struct buf *out);
/* "local@U-label" of a canonical address whose domain has A-labels
 * ("xn--"), into out (reset first): the form a client may have typed.
 * -1 when the domain has none, or libidn2 cannot decode it. */
int addr_unicode(const char *addr, struct buf *out);
/* Case-fold UTF-8 text, appended to out: ASCII-only text gets the ASCII
 * lowercase loop and no library call, other text full case folding
 * (libunistring u8_casefold, no language, no normalization: what ICU's
 * U_FOLD_CASE_DEFAULT gives Postfix). ADDR_LOCAL_BAD_UTF8 when in is not
 * valid UTF-8 (out unchanged). Folding may lengthen the text (up to 3x). */
int addr_fold(const char *in, size_t len, struct buf *out);
/* Canonical "local@domain" or "@domain" into out (reset first); *at gets the
 * offset of '@' in out. Lenient on the local part (lookup keys). The 64
 * octet limit applies to the local part as given, before folding. */
int addr_canon(const char *in, size_t len, struct buf *out, size_t *at);
/* Strict checks of a local part for storing (RFC 5321 dot-atom-ish). */
int addr_local_check(const char *local, size_t len, const char *delims);
/* Offset of the first recipient delimiter in local[0..len), or len when
 * there is none or it would leave an empty user part. */
size_t addr_ext_split(const char *local, size_t len, const char *delims);

#endif
