/* fuzz_admproto.c - the admin socket's line protocol (adm_split, adm_quote,
 * adm_field) and the password-hash form check the admin socket applies to
 * every hash it is given. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admproto.h"
#include "fixture.h"
#include "pwhash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct adm_args a, b;
    static int init;
    const char *why = NULL;
    struct buf line;

    if (!init) {
        adm_args_init(&a);
        adm_args_init(&b);
        init = 1;
    }
    /* an exact-size copy: reads past the end are caught */
    char *in = malloc(size ? size : 1);
    FUZZ_CHECK(in != NULL);
    memcpy(in, data, size);
    buf_init(&line);
    if (adm_split(&a, in, size, &why) == 0) {
        FUZZ_CHECK(a.argc >= 0 && a.argc <= ADM_MAX_ARGS);
        /* quoting what was split gives a line that splits the same way */
        for (int i = 0; i < a.argc; i++) {
            if (i)
                buf_addc(&line, ' ');
            adm_quote(&line, a.argv[i]);
        }
        FUZZ_CHECK(line.len == 0 || memchr(line.data, '\n', line.len) == NULL);
        FUZZ_CHECK(adm_split(&b, line.data ? line.data : "", line.len, &why) == 0);
        FUZZ_CHECK(b.argc == a.argc);
        for (int i = 0; i < a.argc; i++)
            FUZZ_CHECK(strcmp(a.argv[i], b.argv[i]) == 0);
        /* a row field is one word */
        if (a.argc >= 2) {
            buf_reset(&line);
            adm_field(&line, a.argv[0], a.argv[1]);
            FUZZ_CHECK(adm_split(&b, line.data, line.len, &why) == 0 && b.argc == 1);
        }
    } else {
        FUZZ_CHECK(why != NULL);
    }
    /* the hash check on the input as one NUL-terminated string */
    char *h = malloc(size + 1);
    FUZZ_CHECK(h != NULL);
    memcpy(h, data, size);
    h[size] = 0;
    why = NULL;
    if (!pw_hash_check(h, &why))
        FUZZ_CHECK(why != NULL);
    free(h);
    free(in);
    buf_free(&line);
    return 0;
}
