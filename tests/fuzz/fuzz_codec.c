/* fuzz_codec.c - %XX quoting and netstrings round trips. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fixture.h"

/* ns_parse over an exact-size copy of in[0..len): reads past it are caught. */
static enum ns_status parse_copy(const char *in, size_t len, size_t maxlen)
{
    char *p = malloc(len ? len : 1);
    const char *data = NULL;
    size_t used = 0, dlen = 0;
    FUZZ_CHECK(p != NULL);
    if (len)
        memcpy(p, in, len);
    enum ns_status st = ns_parse(p, len, maxlen, &used, &data, &dlen);
    free(p);
    return st;
}

static void fuzz_hexq(const char *in, size_t len)
{
    struct buf enc, dec, enc2, dec2;

    buf_init(&enc);
    buf_init(&dec);
    buf_init(&enc2);
    buf_init(&dec2);
    hexq_encode(&enc, in, len);
    FUZZ_CHECK(enc.len >= len);
    for (size_t i = 0; i < enc.len; i++)
        FUZZ_CHECK((unsigned char)enc.data[i] > 0x20 && (unsigned char)enc.data[i] < 0x7f);
    FUZZ_CHECK(hexq_decode(&dec, enc.data, enc.len) == 0);
    FUZZ_CHECK(dec.len == len && (len == 0 || memcmp(dec.data, in, len) == 0));

    /* decoding arbitrary text: what it accepts, it gives back unchanged */
    buf_reset(&dec);
    int rc = hexq_decode(&dec, in, len);
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc == 0) {
        FUZZ_CHECK(dec.len <= len);
        hexq_encode(&enc2, dec.data, dec.len);
        FUZZ_CHECK(hexq_decode(&dec2, enc2.data, enc2.len) == 0);
        FUZZ_CHECK(dec2.len == dec.len && (dec.len == 0 || memcmp(dec2.data, dec.data, dec.len) == 0));
    }
    buf_free(&enc);
    buf_free(&dec);
    buf_free(&enc2);
    buf_free(&dec2);
}

static void fuzz_ns(const char *in, size_t len)
{
    struct buf ns;
    const char *data = NULL;
    size_t used = 0, dlen = 0;

    buf_init(&ns);
    ns_format(&ns, in, len);
    FUZZ_CHECK(ns_parse(ns.data, ns.len, len, &used, &data, &dlen) == NS_OK);
    FUZZ_CHECK(used == ns.len && dlen == len && data + dlen + 1 == ns.data + ns.len);
    FUZZ_CHECK(len == 0 || memcmp(data, in, len) == 0);
    if (len > 0)
        FUZZ_CHECK(parse_copy(ns.data, ns.len, len - 1) == NS_TOO_LONG);
    /* any proper prefix needs more */
    for (size_t k = 0; k < ns.len; k = k < 64 ? k + 1 : (k < ns.len - 1 ? ns.len - 1 : ns.len))
        FUZZ_CHECK(parse_copy(ns.data, k, len) == NS_NEED_MORE);
    buf_free(&ns);

    /* arbitrary input */
    used = dlen = 0;
    data = NULL;
    enum ns_status st = ns_parse(in, len, 100000, &used, &data, &dlen);
    FUZZ_CHECK(st == NS_OK || st == NS_NEED_MORE || st == NS_BAD || st == NS_TOO_LONG);
    if (st == NS_OK) {
        FUZZ_CHECK(used <= len && dlen <= 100000);
        FUZZ_CHECK(data > in && data + dlen + 1 == in + used && in[used - 1] == ',');
        FUZZ_CHECK(in[0] >= '0' && in[0] <= '9' && data[-1] == ':');
    }
}

/* Dovecot tab escaping: encoded text has no TAB, CR or LF and decodes back;
 * decoding arbitrary input never grows it. */
static void fuzz_tabesc(const char *data, size_t size)
{
    struct buf enc;
    char *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy != NULL);
    buf_init(&enc);
    tabesc_encode(&enc, data, size);
    FUZZ_CHECK(enc.len >= size);
    for (size_t i = 0; i < enc.len; i++)
        FUZZ_CHECK(enc.data[i] != '\t' && enc.data[i] != '\n' && enc.data[i] != '\r');
    long n = tabesc_decode(enc.data, enc.len);
    FUZZ_CHECK(n == (long)size && (size == 0 || !memcmp(enc.data, data, size)));
    memcpy(copy, data, size);
    n = tabesc_decode(copy, size);
    FUZZ_CHECK(n <= (long)size);
    free(copy);
    buf_free(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_hexq((const char *)data, size);
    fuzz_tabesc((const char *)data, size);
    fuzz_ns((const char *)data, size);
    return 0;
}
