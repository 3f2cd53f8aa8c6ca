/* fuzz_roster_proto.c - the Dovecot roster driver's protocol code: answer
 * lines from a (possibly broken) daemon, and requests built from arbitrary
 * names read back by the daemon's own decoder (lib/codec.c). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../dovecot-plugin/roster-proto.h"
#include "codec.h"
#include "fixture.h"

/* Parse an exact-size copy (+1 for the NUL the parser may write). */
static void fuzz_parse(const char *in, size_t len)
{
    struct roster_answer a;
    char *line = malloc(len + 1);
    FUZZ_CHECK(line != NULL);
    memcpy(line, in, len);
    line[len] = 'X'; /* not a NUL: the parser must not rely on one */
    if (roster_parse_answer(line, len, &a) == ROSTER_PARSE_OK) {
        FUZZ_CHECK(len <= ROSTER_LINE_MAX);
        FUZZ_CHECK(a.nfields <= ROSTER_FIELDS_MAX);
        for (unsigned int i = 0; i < a.nfields; i++) {
            FUZZ_CHECK(a.fields[i].key[0] != '\0');
            FUZZ_CHECK(strchr(a.fields[i].key, '=') == NULL);
            FUZZ_CHECK(a.fields[i].key >= line && a.fields[i].key <= line + len);
            FUZZ_CHECK(a.fields[i].value >= line && a.fields[i].value <= line + len);
            FUZZ_CHECK(roster_answer_field(&a, a.fields[i].key) != NULL);
        }
        if (a.verdict == ROSTER_ROW)
            FUZZ_CHECK(a.row_user != NULL && a.row_user[0] != '\0');
        if (a.id == 0)
            FUZZ_CHECK(a.verdict == ROSTER_ERROR || a.verdict == ROSTER_VERSION);
    }
    free(line);
}

/* Encode up to three NUL-separated names; the daemon's split + decode must
 * give them back, and an answer carrying each as a value must too. */
static void fuzz_encode(uint8_t sel, const char *in, size_t len)
{
    static char out[ROSTER_REQUEST_MAX + 64];
    char *copy = malloc(len + 1);
    const char *args[3] = { "", "", "" };
    unsigned int nargs = 0;
    enum roster_cmd cmd = (enum roster_cmd)(sel % 4);
    static const unsigned int want[] = { 2, 3, 2, 0 };

    FUZZ_CHECK(copy != NULL);
    memcpy(copy, in, len);
    copy[len] = 0;
    for (const char *p = copy; nargs < 3 && p <= copy + len; p += strlen(p) + 1)
        args[nargs++] = p;
    nargs = want[cmd] < nargs ? want[cmd] : nargs;
    uint32_t id = 1u + (uint32_t)sel * 16777259u;
    long n = roster_encode_request(out, sizeof(out), id, cmd, args, want[cmd]);
    int fits = nargs == want[cmd];
    for (unsigned int i = 0; i < want[cmd]; i++)
        fits = fits && args[i][0] != '\0';
    if (!fits) {
        FUZZ_CHECK(n == -1);
        free(copy);
        return;
    }
    if (n < 0) {
        free(copy);
        return; /* too long: refused, and that is all */
    }
    FUZZ_CHECK(n <= ROSTER_REQUEST_MAX && out[n - 1] == '\n' && out[n] == '\0');
    FUZZ_CHECK(memchr(out, '\n', (size_t)n - 1) == NULL);
    /* the daemon's way: split at TABs, decode each field */
    char *f[8];
    unsigned int nf = 0;
    out[n - 1] = '\0';
    for (char *p = out;; ) {
        FUZZ_CHECK(nf < 8);
        f[nf++] = p;
        char *tab = strchr(p, '\t');
        if (tab == NULL)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    FUZZ_CHECK(nf == want[cmd] + 2);
    for (unsigned int i = 2; i < nf; i++) {
        long m = tabesc_decode(f[i], strlen(f[i]));
        FUZZ_CHECK(m >= 0);
        f[i][m] = '\0';
        FUZZ_CHECK(strcmp(f[i], args[i - 2]) == 0);
    }
    /* and an answer "ID OK k=<escaped>" gives the value back */
    for (unsigned int i = 0; i < want[cmd]; i++) {
        struct roster_answer a;
        size_t alen = strlen(args[i]);
        char *ans = malloc(8 + 2 * alen + 1);
        FUZZ_CHECK(ans != NULL);
        memcpy(ans, "9\tOK\tk=", 7);
        long e = roster_tabescape(ans + 7, 2 * alen + 1, args[i], alen);
        FUZZ_CHECK(e >= 0);
        if (7 + (size_t)e <= ROSTER_LINE_MAX) {
            FUZZ_CHECK(roster_parse_answer(ans, 7 + (size_t)e, &a) == ROSTER_PARSE_OK);
            FUZZ_CHECK(strcmp(roster_answer_field(&a, "k"), args[i]) == 0);
        }
        free(ans);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 0x80)
        fuzz_encode(data[0], (const char *)data + 1, size - 1);
    else
        fuzz_parse((const char *)data + 1, size - 1);
    return 0;
}
