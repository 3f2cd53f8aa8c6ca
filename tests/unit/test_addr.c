/* test_addr.c - case folding of local parts (addr_fold, addr_canon).
 *
 * Expected strings are written out from Unicode's CaseFolding.txt (status
 * C and F, the full folding Postfix gets from ICU with smtputf8_enable =
 * yes); the line used is quoted next to each case. */
#include "config.h"

#include <string.h>

#include "addr.h"
#include "buf.h"
#include "tests.h"

/* addr_fold of s must give want */
static void fold_is(const char *s, const char *want)
{
    struct buf b;
    buf_init(&b);
    ck_assert_int_eq(addr_fold(s, strlen(s), &b), ADDR_OK);
    ck_assert_uint_eq(b.len, strlen(want));
    if (b.len > 0) /* an empty buf has no data at all */
        ck_assert_mem_eq(b.data, want, b.len);
    buf_free(&b);
}

START_TEST(fold_ascii)
{
    fold_is("AbC.d-E_f+G", "abc.d-e_f+g");
    fold_is("alice", "alice");
    fold_is("", "");
}
END_TEST

START_TEST(fold_unicode)
{
    fold_is("JÖRG", "jörg");          /* 00D6; C; 00F6 */
    fold_is("Jörg", "jörg");
    fold_is("jörg", "jörg");          /* folded text stays as it is */
    fold_is("STRASSE", "strasse");
    fold_is("straße", "strasse");     /* 00DF; F; 0073 0073 */
    fold_is("STRAẞE", "strasse");     /* 1E9E; F; 0073 0073 */
    fold_is("ÄRGER", "ärger");        /* 00C4; C; 00E4 */
    fold_is("ΟΔΟΣ", "οδοσ");          /* 03A3; C; 03C3 */
    fold_is("οδος", "οδοσ");          /* 03C2; C; 03C3 (final sigma) */
    /* 0130; F; 0069 0307 - full folding, not the Turkic "T" mapping to i */
    fold_is("İ", "i\xcc\x87");
    fold_is("İSTANBUL", "i\xcc\x87stanbul");
    /* 0390; F; 03B9 0308 0301: 2 octets become 6 */
    fold_is("\xce\x90", "\xce\xb9\xcc\x88\xcc\x81");
    fold_is("ǅ", "ǆ");                /* 01C5; C; 01C6 (title case) */
    fold_is("日本", "日本");           /* no case: unchanged */
}
END_TEST

/* More than the 256 octets addr_fold folds on its stack. */
START_TEST(fold_long)
{
    char in[201], want[601];
    struct buf b;
    for (int i = 0; i < 100; i++) {
        memcpy(in + 2 * i, "\xce\x90", 2);
        memcpy(want + 6 * i, "\xce\xb9\xcc\x88\xcc\x81", 6);
    }
    in[200] = want[600] = 0;
    buf_init(&b);
    buf_adds(&b, "x");
    ck_assert_int_eq(addr_fold(in, 200, &b), ADDR_OK);   /* appends */
    ck_assert_uint_eq(b.len, 601);
    ck_assert_int_eq(b.data[0], 'x');
    ck_assert_mem_eq(b.data + 1, want, 600);
    buf_free(&b);
}
END_TEST

START_TEST(fold_bad_utf8)
{
    static const char *bad[] = {
        "j\xffrg",          /* not UTF-8 at all */
        "j\xc3",            /* cut short */
        "\xc3\x28",         /* bad continuation */
        "\xc0\xaf",         /* overlong '/' */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
    };
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_reset(&b);
        ck_assert_int_eq(addr_fold(bad[i], strlen(bad[i]), &b), ADDR_LOCAL_BAD_UTF8);
        ck_assert_uint_eq(b.len, 0);
    }
    buf_free(&b);
}
END_TEST

START_TEST(canon_unicode_local)
{
    struct buf b;
    size_t at = 0;
    buf_init(&b);
    ck_assert_int_eq(addr_canon("JÖRG@Example.ORG", strlen("JÖRG@Example.ORG"), &b, &at), ADDR_OK);
    ck_assert_str_eq(b.data, "jörg@example.org");
    ck_assert_uint_eq(at, 5);                       /* "jörg" is 5 octets */
    ck_assert_int_eq(addr_canon("STRASSE@example.org", 19, &b, &at), ADDR_OK);
    ck_assert_str_eq(b.data, "strasse@example.org");
    ck_assert_int_eq(addr_canon("Straße@example.org", strlen("Straße@example.org"), &b, &at), ADDR_OK);
    ck_assert_str_eq(b.data, "strasse@example.org");
    ck_assert_uint_eq(at, 7);
    ck_assert_int_eq(addr_canon("ÄRGER@MÜNCHEN.de", strlen("ÄRGER@MÜNCHEN.de"), &b, &at), ADDR_OK);
    ck_assert_str_eq(b.data, "ärger@xn--mnchen-3ya.de");
    ck_assert_int_eq(addr_canon("İ@x.example", strlen("İ@x.example"), &b, &at), ADDR_OK);
    ck_assert_str_eq(b.data, "i\xcc\x87@x.example");
    /* invalid UTF-8 in the local part is no key; control characters stay refused */
    ck_assert_int_eq(addr_canon("j\xffrg@example.org", 16, &b, &at), ADDR_LOCAL_BAD_UTF8);
    ck_assert_int_eq(addr_canon("j\xc3\xb6\x01@example.org", 16, &b, &at), ADDR_LOCAL_BAD_CHAR);
    ck_assert_str_eq(addr_strerror(ADDR_LOCAL_BAD_UTF8), "local part is not valid UTF-8");
    buf_free(&b);
}
END_TEST

/* RFC 5321's 64 octets count the local part as sent, before folding. */
START_TEST(canon_limit_before_folding)
{
    char in[200], want[300];
    struct buf b;
    size_t at = 0, n = 0, w = 0;
    for (int i = 0; i < 32; i++) {
        memcpy(in + n, "\xce\x90", 2);
        n += 2;
        memcpy(want + w, "\xce\xb9\xcc\x88\xcc\x81", 6);
        w += 6;
    }
    memcpy(in + n, "@x.example", 11);
    memcpy(want + w, "@x.example", 11);
    buf_init(&b);
    ck_assert_int_eq(addr_canon(in, n + 10, &b, &at), ADDR_OK); /* 64 octets sent */
    ck_assert_uint_eq(at, 192);                                 /* 192 folded */
    ck_assert_str_eq(b.data, want);
    memmove(in + 1, in, n + 11);                                /* 65 octets */
    in[0] = 'a';
    ck_assert_int_eq(addr_canon(in, n + 11, &b, &at), ADDR_LOCAL_TOO_LONG);
    buf_free(&b);
}
END_TEST

Suite *addr_suite(void)
{
    Suite *s = suite_create("addr");
    TCase *tc = tcase_create("fold");
    tcase_add_test(tc, fold_ascii);
    tcase_add_test(tc, fold_unicode);
    tcase_add_test(tc, fold_long);
    tcase_add_test(tc, fold_bad_utf8);
    tcase_add_test(tc, canon_unicode_local);
    tcase_add_test(tc, canon_limit_before_folding);
    suite_add_tcase(s, tc);
    return s;
}
