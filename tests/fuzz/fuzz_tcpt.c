/* fuzz_tcpt.c - tcp_table(5) request stream (input format: stream.h). */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "fixture.h"
#include "stream.h"

static struct dir *D;

/* One reply line per answered request: "200 "/"400 "/"500 ", at most
 * TCPT_MAX_REPLY octets with the newline, a 200 value %XX-quoted. */
static void check(const char *seg, size_t len, ssize_t rc)
{
    if (rc == 0) {
        FUZZ_CHECK(len == 0);
        return;
    }
    FUZZ_CHECK(len >= 5 && len <= TCPT_MAX_REPLY);
    FUZZ_CHECK(seg[len - 1] == '\n');
    FUZZ_CHECK(memchr(seg, '\n', len - 1) == NULL);
    FUZZ_CHECK(memcmp(seg, "200 ", 4) == 0 || memcmp(seg, "400 ", 4) == 0 ||
               memcmp(seg, "500 ", 4) == 0);
    if (rc < 0)
        FUZZ_CHECK(memcmp(seg, "400 ", 4) == 0);
    if (memcmp(seg, "200 ", 4) == 0)
        for (size_t i = 4; i < len - 1; i++)
            FUZZ_CHECK((unsigned char)seg[i] > 0x20 && (unsigned char)seg[i] < 0x7f);
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
    stream_fuzz(tcpt_request, check, D, (const char *)data, size);
    return 0;
}
