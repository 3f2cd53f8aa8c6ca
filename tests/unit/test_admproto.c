/* test_admproto.c - the admin line protocol: splitting and quoting. */
#include "config.h"

#include <string.h>

#include "admproto.h"
#include "tests.h"

static struct adm_args A;

static int split(const char *line, const char **why)
{
    return adm_split(&A, line, strlen(line), why);
}

START_TEST(split_words)
{
    const char *why = NULL;
    adm_args_init(&A);
    ck_assert_int_eq(split("  user add\talice@example.com  quota=2G ", &why), 0);
    ck_assert_int_eq(A.argc, 4);
    ck_assert_str_eq(A.argv[0], "user");
    ck_assert_str_eq(A.argv[2], "alice@example.com");
    ck_assert_str_eq(A.argv[3], "quota=2G");
    ck_assert_int_eq(split("say \"a b\" \"q\\\"x\\\\y\" \"\\n\\t\\x41\" \"\"", &why), 0);
    ck_assert_int_eq(A.argc, 5);
    ck_assert_str_eq(A.argv[1], "a b");
    ck_assert_str_eq(A.argv[2], "q\"x\\y");
    ck_assert_str_eq(A.argv[3], "\n\tA");
    ck_assert_str_eq(A.argv[4], "");
    ck_assert_int_eq(split("", &why), 0);
    ck_assert_int_eq(A.argc, 0);
    adm_args_free(&A);
}
END_TEST

START_TEST(split_errors)
{
    const char *why = NULL;
    adm_args_init(&A);
    ck_assert_int_eq(split("a \"open", &why), -1);
    ck_assert_str_eq(why, "unterminated quote");
    ck_assert_int_eq(split("a\"b", &why), -1);
    ck_assert_str_eq(why, "quote inside a word");
    ck_assert_int_eq(split("a\\b", &why), -1);
    ck_assert_str_eq(why, "backslash outside quotes");
    ck_assert_int_eq(split("\"x\"y", &why), -1);
    ck_assert_str_eq(why, "text right after a closing quote");
    ck_assert_int_eq(split("\"\\q\"", &why), -1);
    ck_assert_str_eq(why, "unknown backslash escape");
    ck_assert_int_eq(split("\"\\x00\"", &why), -1);
    ck_assert_str_eq(why, "bad \\x escape");
    ck_assert_int_eq(split("\"\\x4\"", &why), -1);
    ck_assert_int_eq(split("a\x01", &why), -1);
    ck_assert_str_eq(why, "control character in a word");
    ck_assert_int_eq(split("\"a\x01\"", &why), -1);
    adm_args_free(&A);
}
END_TEST

START_TEST(quote_roundtrip)
{
    const char *words[] = { "plain", "two words", "q\"uote", "back\\slash", "tab\there", "new\nline",
                            "\x01\x7f", "", "caf\xc3\xa9", "=x=" };
    struct buf line;
    const char *why = NULL;
    buf_init(&line);
    adm_args_init(&A);
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (i)
            buf_addc(&line, ' ');
        adm_quote(&line, words[i]);
    }
    ck_assert_ptr_null(memchr(line.data, '\n', line.len));
    ck_assert_int_eq(adm_split(&A, line.data, line.len, &why), 0);
    ck_assert_int_eq(A.argc, (int)(sizeof(words) / sizeof(words[0])));
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        ck_assert_str_eq(A.argv[i], words[i]);
    buf_reset(&line);
    buf_adds(&line, "*");
    adm_field(&line, "reason", "left us");
    adm_field(&line, "quota", "2G");
    ck_assert_str_eq(line.data, "* \"reason=left us\" quota=2G");
    adm_args_free(&A);
    buf_free(&line);
}
END_TEST

/* The limits of one line: ADM_MAX_LINE octets and ADM_MAX_ARGS words are
 * split, one more of either is refused with its own reason. */
START_TEST(split_limits)
{
    struct buf line;
    const char *why = NULL;
    buf_init(&line);
    adm_args_init(&A);
    /* ADM_MAX_ARGS words, then one more */
    for (int i = 0; i < ADM_MAX_ARGS; i++)
        buf_adds(&line, i ? " w" : "w");
    ck_assert_int_eq(adm_split(&A, line.data, line.len, &why), 0);
    ck_assert_int_eq(A.argc, ADM_MAX_ARGS);
    buf_adds(&line, " w");
    ck_assert_int_eq(adm_split(&A, line.data, line.len, &why), -1);
    ck_assert_str_eq(why, "too many words");
    ck_assert_int_eq(A.argc, ADM_MAX_ARGS);
    /* one quoted word of escapes filling the line, then one octet more */
    buf_reset(&line);
    buf_addc(&line, '"');
    while (line.len + 4 < ADM_MAX_LINE)
        buf_adds(&line, "\\x41");
    while (line.len + 1 < ADM_MAX_LINE)
        buf_addc(&line, 'b');
    buf_addc(&line, '"');
    ck_assert_uint_eq(line.len, ADM_MAX_LINE);
    ck_assert_int_eq(adm_split(&A, line.data, line.len, &why), 0);
    ck_assert_int_eq(A.argc, 1);
    ck_assert_uint_eq(strlen(A.argv[0]), (ADM_MAX_LINE - 2) / 4 + (ADM_MAX_LINE - 2) % 4);
    ck_assert_int_eq(A.argv[0][0], 'A');
    buf_addc(&line, ' ');
    ck_assert_int_eq(adm_split(&A, line.data, line.len, &why), -1);
    ck_assert_str_eq(why, "line too long");
    adm_args_free(&A);
    buf_free(&line);
}
END_TEST

Suite *admproto_suite(void)
{
    Suite *s = suite_create("admproto");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, split_words);
    tcase_add_test(tc, split_errors);
    tcase_add_test(tc, quote_roundtrip);
    tcase_add_test(tc, split_limits);
    suite_add_tcase(s, tc);
    return s;
}
