/* fuzz_policy.c - policy requests through the checks (pol_request) against
 * the fixture directory: every answer is one "action=...\n\n" with a known
 * action, a broken stream is answered with nothing, and the stream in two
 * parts is answered as in one. Input: byte 0 flags (bit 7: no directory,
 * bit 6: quota usage known, bit 5: over quota deferred), bytes 1-2 a split
 * point, then the stream. The usage has alice over her quota and bob
 * 1000 octets under it, so aliases and size= decide. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "fixture.h"
#include "policy.h"
#include "proto.h"

static struct dir *D;
static struct quota_usage *U;

static void nolog(void *arg, int warn, const char *text)
{
    (void)arg;
    (void)warn;
    FUZZ_CHECK(strchr(text, '\n') == NULL);
}

/* quota_ok: an over-quota answer may be among them */
static void check_replies(const struct buf *out, int quota_ok)
{
    static const char *starts[] = { "DUNNO", "DEFER_IF_PERMIT 4.", "553 5.7.1 ", "554 5.7.1 ", "550 5.2.1 ",
                                    "552 5.2.2 ", "452 4.2.2 " };
    size_t nstarts = sizeof(starts) / sizeof(starts[0]) - (quota_ok ? 0 : 2);
    size_t pos = 0;
    while (pos < out->len) {
        const char *p = out->data + pos;
        const char *end = memchr(p, '\n', out->len - pos);
        FUZZ_CHECK(end != NULL && (size_t)(end - out->data) + 1 < out->len && end[1] == '\n');
        FUZZ_CHECK(!strncmp(p, "action=", 7));
        int known = 0;
        for (size_t i = 0; i < nstarts; i++)
            known |= !strncmp(p + 7, starts[i], strlen(starts[i]));
        FUZZ_CHECK(known);
        for (const char *c = p + 7; c < end; c++)
            FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f);
        pos = (size_t)(end - out->data) + 2;
    }
}

/* Answer what has arrived, as the connection loop does: copied once to an
 * allocation that ends where it ends (overreads are caught), each request
 * answered from its place in the copy (linear in the input). Between two
 * calls for one stream the copy only grows, as pol_parse's resuming needs. */
static int feed(const struct pol_env *env, const char *data, size_t len, size_t *pos, struct buf *out)
{
    int rc = 0;

    if (*pos >= len)
        return 0;
    char *in = malloc(len - *pos);
    FUZZ_CHECK(in != NULL);
    memcpy(in, data + *pos, len - *pos);
    for (size_t at = 0; *pos < len;) {
        size_t before = out->len;
        ssize_t n = pol_request(env, in + at, len - *pos, out);
        if (n < 0) {
            FUZZ_CHECK(out->len == before);   /* nothing answered on a broken stream */
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        FUZZ_CHECK((size_t)n <= len - *pos);
        *pos += (size_t)n;
        at += (size_t)n;
    }
    free(in);
    return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    D = fuzz_fixture_dir(0);
    /* the fixture's domains have 1 GiB */
    U = quota_usage_new();
    quota_usage_set(U, "alice@example.com", (int64_t)1 << 31, 10);
    quota_usage_set(U, "bob@example.com", ((int64_t)1 << 30) - 1000, 10);
    quota_usage_set(U, "a-b.c+d@example.com", -1, -1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pol_req req;
    static int init;
    struct pol_stats stats;
    struct buf one, two;
    size_t pos;

    if (!init) {
        pol_req_init(&req);
        init = 1;
    }
    if (size < 3)
        return 0;
    const char *s = (const char *)data + 3;
    size_t len = size - 3, split = ((size_t)data[1] << 8 | data[2]) % (len + 1);
    int quota = (data[0] & 0x40) != 0;
    struct pol_env env = { (data[0] & 0x80) ? NULL : D, "+-", &stats, &req, nolog, NULL, NULL, NULL, 0,
                           quota ? U : NULL, (data[0] & 0x20) != 0, NULL };
    memset(&stats, 0, sizeof(stats));
    buf_init(&one);
    buf_init(&two);
    pos = 0;
    pol_req_reset(&req);    /* each run is a new connection */
    int c1 = feed(&env, s, len, &pos, &one);
    check_replies(&one, quota);
    /* the split run with the event loop's scratch buffers, reused from
     * request to request: they must not change an answer either */
    struct buf scratch[LK_NSCRATCH] = { { 0 } };    /* zero: empty buffers */
    struct pol_env lent = env;
    lent.scratch = scratch;
    pos = 0;
    pol_req_reset(&req);
    int c2 = feed(&lent, s, split, &pos, &two);
    if (c2 == 0)
        c2 = feed(&lent, s, len, &pos, &two);
    for (int i = 0; i < LK_NSCRATCH; i++)
        buf_free(&scratch[i]);
    check_replies(&two, quota);
    FUZZ_CHECK(c1 == c2);
    FUZZ_CHECK(one.len == two.len && (one.len == 0 || !memcmp(one.data, two.data, one.len)));
    buf_free(&one);
    buf_free(&two);
    return 0;
}
