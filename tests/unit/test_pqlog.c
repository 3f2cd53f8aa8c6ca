/* test_pqlog.c - libpq's messages as log lines: the level by severity and
 * the one-line text. */
#include "config.h"

#include <string.h>

#include "pqlog.h"
#include "tests.h"

START_TEST(level_by_severity)
{
    /* the untranslated severity field, as libpq gives it */
    ck_assert_int_eq(pqlog_level("WARNING"), PQLOG_WARN);
    ck_assert_int_eq(pqlog_level("ERROR"), PQLOG_WARN);
    ck_assert_int_eq(pqlog_level("FATAL"), PQLOG_WARN);
    ck_assert_int_eq(pqlog_level("PANIC"), PQLOG_WARN);
    ck_assert_int_eq(pqlog_level("NOTICE"), PQLOG_INFO);
    ck_assert_int_eq(pqlog_level("INFO"), PQLOG_INFO);
    ck_assert_int_eq(pqlog_level("LOG"), PQLOG_INFO);
    ck_assert_int_eq(pqlog_level("DEBUG1"), PQLOG_DEBUG);
    ck_assert_int_eq(pqlog_level("DEBUG5"), PQLOG_DEBUG);
    /* or the message itself, when there is no field */
    ck_assert_int_eq(pqlog_level("FATAL:  terminating connection due to administrator command\n"), PQLOG_WARN);
    ck_assert_int_eq(pqlog_level("NOTICE:  relation \"x\" already exists, skipping\n"), PQLOG_INFO);
    ck_assert_int_eq(pqlog_level("DEBUG2:  x\n"), PQLOG_DEBUG);
    /* a word that only starts like a known one, a translation, nothing:
     * a warning (rather seen than lost) */
    ck_assert_int_eq(pqlog_level("LOGGED:  x"), PQLOG_WARN);
    ck_assert_int_eq(pqlog_level("INFORMATION"), PQLOG_WARN);
    ck_assert_int_eq(pqlog_level("DEBUG"), PQLOG_DEBUG);
    ck_assert_int_eq(pqlog_level("DEBUG9"), PQLOG_WARN);
    ck_assert_int_eq(pqlog_level("notice"), PQLOG_WARN);
    ck_assert_int_eq(pqlog_level("HINWEIS:  x"), PQLOG_WARN);
    ck_assert_int_eq(pqlog_level(""), PQLOG_WARN);
    ck_assert_int_eq(pqlog_level(NULL), PQLOG_WARN);
}
END_TEST

START_TEST(one_line)
{
    char t[64];
    ck_assert_str_eq(pqlog_text(t, sizeof(t), "FATAL:  terminating connection\n"), "FATAL: terminating connection");
    /* DETAIL and HINT lines joined, blanks made one, control characters '?' */
    ck_assert_str_eq(pqlog_text(t, sizeof(t), "WARNING:  a\nDETAIL:  b\tc\r\nHINT:  d\x01\n\n"),
                     "WARNING: a; DETAIL: b c; HINT: d?");
    ck_assert_str_eq(pqlog_text(t, sizeof(t), "  \n"), "");
    ck_assert_str_eq(pqlog_text(t, sizeof(t), NULL), "");
    ck_assert_str_eq(pqlog_text(t, sizeof(t), "caf\xc3\xa9 \x7f"), "caf\xc3\xa9 ?"); /* UTF-8 kept */
    /* cut to the buffer, always terminated, never a dangling separator */
    ck_assert_str_eq(pqlog_text(t, 8, "NOTICE:  abcdef"), "NOTICE:");
    ck_assert_str_eq(pqlog_text(t, 10, "NOTICE:  abcdef"), "NOTICE: a");
    ck_assert_str_eq(pqlog_text(t, 10, "NOTICE:\nabcdef"), "NOTICE:");
    ck_assert_str_eq(pqlog_text(t, 1, "x"), "");
    t[0] = 'z';
    pqlog_text(t, 0, "x"); /* nothing written */
    ck_assert_int_eq(t[0], 'z');
}
END_TEST

Suite *pqlog_suite(void)
{
    Suite *s = suite_create("pqlog");
    TCase *tc = tcase_create("pqlog");
    tcase_add_test(tc, level_by_severity);
    tcase_add_test(tc, one_line);
    suite_add_tcase(s, tc);
    return s;
}
