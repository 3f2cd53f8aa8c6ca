/* fuzz_smap.c - socketmap_table(5) request stream (input format: stream.h;
 * the map bits of the flags byte are unused, the request names the map). */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "codec.h"
#include "fixture.h"
#include "stream.h"

static struct dir *D;

static ssize_t handler(const struct lk_env *env, enum lk_map map, const char *in, size_t len,
                       struct buf *out)
{
    (void)map;
    return smap_request(env, in, len, out);
}

static int starts(const char *p, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(p, prefix, n) == 0;
}

/* One netstring per answered request, its payload "OK value",
 * "NOTFOUND ", "TEMP reason" or "PERM reason", at most SMAP_MAX_REPLY. */
static void check(const char *seg, size_t len, ssize_t rc)
{
    const char *p;
    size_t used, plen;

    if (rc == 0) {
        FUZZ_CHECK(len == 0);
        return;
    }
    FUZZ_CHECK(ns_parse(seg, len, SMAP_MAX_REPLY, &used, &p, &plen) == NS_OK);
    FUZZ_CHECK(used == len);
    FUZZ_CHECK(starts(p, plen, "OK ") || starts(p, plen, "NOTFOUND ") ||
               starts(p, plen, "TEMP ") || starts(p, plen, "PERM "));
    if (starts(p, plen, "OK "))
        FUZZ_CHECK(plen > 3);
    if (rc < 0)
        FUZZ_CHECK(starts(p, plen, "PERM "));
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    D = fuzz_fixture_dir(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    stream_fuzz(handler, check, D, (const char *)data, size);
    return 0;
}
