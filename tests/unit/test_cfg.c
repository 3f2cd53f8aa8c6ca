/* test_cfg.c - the configuration parser. */
#include "config.h"

#include <string.h>

#include "conf.h"
#include "tests.h"

static int parse(const char *text, struct mr_conf *c, struct buf *err)
{
    cfg_defaults(mr_conf_defs, c);
    return cfg_parse(text, strlen(text), "t.conf", mr_conf_defs, c, err);
}

START_TEST(cfg_defaults_and_values)
{
    struct mr_conf c;
    struct buf err;
    buf_init(&err);
    ck_assert_int_eq(parse("# comment\n\n"
                           "database = host=/tmp dbname=x\n"
                           "poll_interval=2m\n"
                           "socketmap_listen = unix:/tmp/a,\n"
                           "    inet:127.0.0.1:9000\n"
                           "socketmap_mode = 0660\n"
                           "debug = yes\n", &c, &err), 0);
    ck_assert_str_eq(c.database, "host=/tmp dbname=x");
    ck_assert_int_eq(c.poll_interval, 120);
    ck_assert_str_eq(c.socketmap_listen, "unix:/tmp/a, inet:127.0.0.1:9000");
    ck_assert_int_eq(c.socketmap_mode, 0660);
    ck_assert_int_eq(c.debug, 1);
    ck_assert_str_eq(c.recipient_delimiter, "+");
    ck_assert_int_eq(c.idle_timeout, 300);
    cfg_free(mr_conf_defs, &c);
    buf_free(&err);
}
END_TEST

START_TEST(cfg_errors_name_file_and_line)
{
    struct mr_conf c;
    struct buf err;
    buf_init(&err);
    ck_assert_int_eq(parse("debug = no\nno_such_key = 1\n", &c, &err), -1);
    ck_assert_str_eq(err.data, "t.conf:2: unknown parameter 'no_such_key'");
    cfg_free(mr_conf_defs, &c);
    ck_assert_int_eq(parse("\n\nmax_connections = lots\n", &c, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.data, "t.conf:3: bad value for max_connections"));
    cfg_free(mr_conf_defs, &c);
    ck_assert_int_eq(parse("max_connections = 0\n", &c, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.data, "outside"));
    cfg_free(mr_conf_defs, &c);
    ck_assert_int_eq(parse("debug = maybe\n", &c, &err), -1);
    cfg_free(mr_conf_defs, &c);
    ck_assert_int_eq(parse("  indented = 1\n", &c, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.data, "t.conf:1: continuation"));
    cfg_free(mr_conf_defs, &c);
    ck_assert_int_eq(parse("debug\n", &c, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.data, "t.conf:1: missing '='"));
    cfg_free(mr_conf_defs, &c);
    ck_assert_int_eq(parse("poll_interval = 5x\n", &c, &err), -1);
    cfg_free(mr_conf_defs, &c);
    ck_assert_int_eq(parse("socketmap_mode = 0999\n", &c, &err), -1);
    cfg_free(mr_conf_defs, &c);
    /* found by fuzzing: a huge negative time overflowed instead of failing */
    ck_assert_int_eq(parse("idle_timeout = -144115188075855871d\n", &c, &err), -1);
    cfg_free(mr_conf_defs, &c);
    ck_assert_int_eq(parse("poll_interval = -106751991167301d\n", &c, &err), -1);
    cfg_free(mr_conf_defs, &c);
    buf_free(&err);
}
END_TEST

Suite *cfg_suite(void)
{
    Suite *s = suite_create("cfg");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, cfg_defaults_and_values);
    tcase_add_test(tc, cfg_errors_name_file_and_line);
    suite_add_tcase(s, tc);
    return s;
}
