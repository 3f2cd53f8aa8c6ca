/* test_verify_parse.c - the text "mailroster verify" reads (cli/verify_parse.c):
 * key files, lists of known differences, postmap's answers, answer lists,
 * main.cf map lists and mailroster's tab listings; and the keys Postfix
 * asks a transport map. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"
#include "verify_parse.h"

#define S(lit) (lit), (sizeof(lit) - 1)

START_TEST(key_lines)
{
    struct buf k;
    buf_init(&k);
    ck_assert_int_eq(vp_key_line(S("  Alice@Example.COM \r"), &k), 1);
    ck_assert_str_eq(k.data, "Alice@Example.COM");  /* trimmed, not folded */
    ck_assert_int_eq(vp_key_line(S(""), &k), 0);
    ck_assert_int_eq(vp_key_line(S("   "), &k), 0);
    ck_assert_int_eq(vp_key_line(S("# a comment"), &k), 0);
    /* a tab or NUL inside a key would break postmap's answer */
    ck_assert_int_eq(vp_key_line(S("a\tb@example.com"), &k), -1);
    ck_assert_int_eq(vp_key_line("a\0b@example.com", 15, &k), -1);
    buf_free(&k);
}
END_TEST

START_TEST(ignore_lines)
{
    struct buf m, k;
    buf_init(&m);
    buf_init(&k);
    ck_assert_int_eq(vp_ignore_line(S("aliases Info@Example.com\tcatch-all\tmore"), &m, &k), 1);
    ck_assert_str_eq(m.data, "aliases");
    ck_assert_str_eq(k.data, "info@example.com");
    ck_assert_int_eq(vp_ignore_line(S("# MAP KEY"), &m, &k), 0);
    ck_assert_int_eq(vp_ignore_line(S(""), &m, &k), 0);
    ck_assert_int_eq(vp_ignore_line(S("aliases"), &m, &k), -1);     /* no key */
    ck_assert_int_eq(vp_ignore_line(S("x@y"), &m, &k), -1);          /* no map */
    ck_assert_int_eq(vp_ignore_line(S("aliases  \t"), &m, &k), -1);
    ck_assert_int_eq(vp_ignore_line(S("aliases a\x01" "b@x"), &m, &k), -1);
    buf_free(&m);
    buf_free(&k);
}
END_TEST

START_TEST(answers_in_order)
{
    char *keys[] = { "a@x", "b@x", "c@x", "d@x" };
    char *ans[4] = { NULL, NULL, NULL, NULL };
    /* b@x not found: no line; values keep their tabs and commas */
    ck_assert_int_eq(vp_answers(S("a@x\t1,2\nc@x\tv\tw\nd@x\t\n"), keys, 4, ans), 0);
    ck_assert_str_eq(ans[0], "1,2");
    ck_assert_ptr_null(ans[1]);
    ck_assert_str_eq(ans[2], "v\tw");
    ck_assert_str_eq(ans[3], "");
    for (int i = 0; i < 4; i++) {
        free(ans[i]);
        ans[i] = NULL;
    }
    /* a key that was not asked, an answer out of order, a line without a tab */
    ck_assert_int_eq(vp_answers(S("z@x\t1\n"), keys, 4, ans), -1);
    for (int i = 0; i < 4; i++) {
        free(ans[i]);
        ans[i] = NULL;
    }
    ck_assert_int_eq(vp_answers(S("c@x\t1\na@x\t2\n"), keys, 4, ans), -1);
    for (int i = 0; i < 4; i++) {
        free(ans[i]);
        ans[i] = NULL;
    }
    ck_assert_int_eq(vp_answers(S("a@x 1\n"), keys, 4, ans), -1);
    for (int i = 0; i < 4; i++)
        free(ans[i]);
}
END_TEST

START_TEST(list_norm)
{
    struct buf out;
    buf_init(&out);
    vp_list_norm("Bob@X, alice@x,,bob@x  carol@x\t", &out);
    ck_assert_str_eq(out.data, "alice@x,bob@x,carol@x");
    vp_list_norm("", &out);
    ck_assert_str_eq(out.data ? out.data : "", "");
    buf_free(&out);
}
END_TEST

START_TEST(split_maps)
{
    struct strv v = { NULL, 0, 0 };
    vp_split_maps("pgsql:/etc/postfix/a.cf, hash:/etc/postfix/b  inline:{ x=1, y=2 },proxy:mysql:/c.cf", &v);
    ck_assert_uint_eq(v.n, 4);
    ck_assert_str_eq(v.v[0], "pgsql:/etc/postfix/a.cf");
    ck_assert_str_eq(v.v[1], "hash:/etc/postfix/b");
    ck_assert_str_eq(v.v[2], "inline:{ x=1, y=2 }");
    ck_assert_str_eq(v.v[3], "proxy:mysql:/c.cf");
    strv_free(&v);
}
END_TEST

struct rows {
    int n;
    char seen[4][64];
};

static void row(void *arg, char *const *names, char *const *values, size_t n)
{
    struct rows *r = arg;
    size_t len = 0;
    r->seen[r->n][0] = 0;
    for (size_t i = 0; i < n && len + 1 < sizeof(r->seen[0]); i++)
        len += (size_t)snprintf(r->seen[r->n] + len, sizeof(r->seen[0]) - len, "%s%s=%s",
                                i ? " " : "", names[i], values[i]);
    r->n++;
}

START_TEST(tab_rows)
{
    struct rows r = { 0 };
    /* two groups; escapes undone; a short row gets "" for its missing column */
    ck_assert_int_eq(vp_tab_rows(S("address\tenabled\na\\tb@x\t1\nc@x\n\nname\nd\\x41\\\\\n"), row, &r), 0);
    ck_assert_int_eq(r.n, 3);
    ck_assert_str_eq(r.seen[0], "address=a\tb@x enabled=1");
    ck_assert_str_eq(r.seen[1], "address=c@x enabled=");
    ck_assert_str_eq(r.seen[2], "name=dA\\");
    /* more columns than the header */
    struct rows r2 = { 0 };
    ck_assert_int_eq(vp_tab_rows(S("a\nx\ty\n"), row, &r2), -1);
}
END_TEST

START_TEST(strv_sorted)
{
    struct strv v = { NULL, 0, 0 };
    strv_add(&v, "c");
    strv_add(&v, "a");
    strv_addn(&v, "bxx", 1);
    strv_add(&v, "a");
    strv_uniq(&v);
    ck_assert_uint_eq(v.n, 3);
    ck_assert_str_eq(v.v[0], "a");
    ck_assert_str_eq(v.v[1], "b");
    ck_assert_int_eq(strv_find(&v, "c"), 2);
    ck_assert_int_eq(strv_find(&v, "d"), -1);
    strv_free(&v);
}
END_TEST

/* the walk joined with spaces, for one comparison */
static void walk_str(const char *key, const char *delims, int parent_style, char *out, size_t cap)
{
    struct strv w = { NULL, 0, 0 };
    size_t len = 0;
    vp_transport_walk(key, delims, parent_style, &w);
    out[0] = 0;
    for (size_t i = 0; i < w.n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? " " : "", w.v[i]);
    strv_free(&w);
}

START_TEST(transport_walk)
{
    char got[512];
    /* transport(5), TABLE SEARCH ORDER: address, without the extension,
     * domain, .parent..., and the wildcard */
    walk_str("u+x@a.b.example", "+", 0, got, sizeof(got));
    ck_assert_str_eq(got, "u+x@a.b.example u@a.b.example a.b.example .b.example .example *");
    /* parent_domain_matches_subdomains names transport_maps: no dots */
    walk_str("u+x@a.b.example", "+", 1, got, sizeof(got));
    ck_assert_str_eq(got, "u+x@a.b.example u@a.b.example a.b.example b.example example *");
    /* no extension, or no delimiter: the address once */
    walk_str("u@example", "+", 0, got, sizeof(got));
    ck_assert_str_eq(got, "u@example example *");
    walk_str("u+x@example", "", 0, got, sizeof(got));
    ck_assert_str_eq(got, "u+x@example example *");
    /* several delimiters: the first in the local part splits */
    walk_str("u-a+b@example", "+-", 0, got, sizeof(got));
    ck_assert_str_eq(got, "u-a+b@example u@example example *");
    /* a local part that starts with the delimiter has no extension */
    walk_str("+x@example", "+", 0, got, sizeof(got));
    ck_assert_str_eq(got, "+x@example example *");
    /* not an address: itself */
    walk_str("example", "+", 0, got, sizeof(got));
    ck_assert_str_eq(got, "example");
}
END_TEST

Suite *verify_parse_suite(void)
{
    Suite *s = suite_create("verify_parse");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, key_lines);
    tcase_add_test(tc, ignore_lines);
    tcase_add_test(tc, answers_in_order);
    tcase_add_test(tc, list_norm);
    tcase_add_test(tc, split_maps);
    tcase_add_test(tc, tab_rows);
    tcase_add_test(tc, strv_sorted);
    tcase_add_test(tc, transport_walk);
    suite_add_tcase(s, tc);
    return s;
}
