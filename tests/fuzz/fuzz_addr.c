/* fuzz_addr.c - canonical domains and addresses. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "addr.h"
#include "fixture.h"

static int ldh_only(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
              s[i] == '-'))
            return 0;
    return 1;
}

static void check_err(int rc)
{
    FUZZ_CHECK(rc > ADDR_OK && rc <= ADDR_LOCAL_BAD_UTF8);
    FUZZ_CHECK(strcmp(addr_strerror(rc), "unknown error") != 0);
}

static void fuzz_domain(const char *in, size_t len)
{
    struct buf out, again;
    int rc;

    buf_init(&out);
    buf_init(&again);
    rc = addr_domain_canon(in, len, &out);
    if (rc == ADDR_OK) {
        FUZZ_CHECK(out.len >= 1 && out.len <= 253);
        FUZZ_CHECK(ldh_only(out.data, out.len));
        FUZZ_CHECK(addr_domain_canon(out.data, out.len, &again) == ADDR_OK);
        FUZZ_CHECK(again.len == out.len && memcmp(again.data, out.data, out.len) == 0);
    } else {
        check_err(rc);
    }
    buf_free(&out);
    buf_free(&again);
}

static void fuzz_address(const char *in, size_t len)
{
    struct buf out, again;
    size_t at = (size_t)-1, at2 = (size_t)-1;
    int rc;

    buf_init(&out);
    buf_init(&again);
    rc = addr_canon(in, len, &out, &at);
    if (rc == ADDR_OK) {
        FUZZ_CHECK(out.len <= 254);
        FUZZ_CHECK(strlen(out.data) == out.len);
        /* case folding grows a local part at most 3x (U+0390: 2 -> 6 octets) */
        FUZZ_CHECK(at <= 3 * 64 && at < out.len && out.data[at] == '@');
        for (size_t i = 0; i < at; i++)
            FUZZ_CHECK(!(out.data[i] >= 'A' && out.data[i] <= 'Z'));
        FUZZ_CHECK(out.len - at - 1 >= 1 && ldh_only(out.data + at + 1, out.len - at - 1));
        /* folding is idempotent */
        FUZZ_CHECK(addr_fold(out.data, at, &again) == ADDR_OK);
        FUZZ_CHECK(again.len == at && (at == 0 || memcmp(again.data, out.data, at) == 0));
        if (at <= 64) {
            FUZZ_CHECK(addr_canon(out.data, out.len, &again, &at2) == ADDR_OK);
            FUZZ_CHECK(at2 == at);
            FUZZ_CHECK(again.len == out.len && memcmp(again.data, out.data, out.len) == 0);
        }
    } else {
        check_err(rc);
    }
    buf_free(&out);
    buf_free(&again);
}

static void fuzz_local(const char *in, size_t len, const char *delims)
{
    int rc = addr_local_check(in, len, delims);
    if (rc == ADDR_OK) {
        FUZZ_CHECK(len >= 1 && len <= 64);
        FUZZ_CHECK(in[0] != '.' && in[len - 1] != '.');
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)in[i];
            FUZZ_CHECK(c > 0x20 && c != 0x7f && c != '@');
            FUZZ_CHECK(!(c == '.' && i + 1 < len && in[i + 1] == '.'));
            FUZZ_CHECK(delims == NULL || strchr(delims, c) == NULL);
        }
    } else {
        check_err(rc);
    }

    /* the first delimiter, unless it is the first octet */
    size_t r = addr_ext_split(in, len, delims), want = len;
    if (delims && *delims)
        for (size_t i = 0; i < len; i++)
            if (in[i] != 0 && strchr(delims, in[i]) != NULL) {
                want = i == 0 ? len : i;
                break;
            }
    FUZZ_CHECK(r == want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;

    fuzz_domain(in, size);
    fuzz_address(in, size);
    fuzz_local(in, size, "+");
    fuzz_local(in, size, "+-=");
    fuzz_local(in, size, "");
    fuzz_local(in, size, NULL);
    return 0;
}
