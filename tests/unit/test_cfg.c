/* test_cfg.c - the configuration parser. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* cfg_load of path: 0, or -1 with want in the message. */
static void load_ok(const char *path)
{
    struct mr_conf c;
    struct buf err;
    buf_init(&err);
    cfg_defaults(mr_conf_defs, &c);
    ck_assert_msg(cfg_load(path, mr_conf_defs, &c, &err) == 0, "%s", err.data);
    ck_assert_int_eq(c.poll_interval, 120);
    cfg_free(mr_conf_defs, &c);
    buf_free(&err);
}

static void load_refused(const char *path, const char *want)
{
    struct mr_conf c;
    struct buf err;
    buf_init(&err);
    cfg_defaults(mr_conf_defs, &c);
    ck_assert_int_eq(cfg_load(path, mr_conf_defs, &c, &err), -1);
    ck_assert_msg(strstr(err.data, want) != NULL, "\"%s\" does not say \"%s\"", err.data, want);
    ck_assert_msg(strstr(err.data, path) != NULL, "\"%s\" does not name the file", err.data);
    cfg_free(mr_conf_defs, &c);
    buf_free(&err);
}

/* The file: regular (a symlink to one is fine), bounded, written only by
 * root or the daemon. */
START_TEST(cfg_file_checks)
{
    char dir[] = "/tmp/mr-cfg.XXXXXX", path[64], link[64], cmd[64];
    const char *text = "poll_interval = 2m\n";
    FILE *fp;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/mailroster.conf", dir);
    fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    ck_assert_int_eq(chmod(path, 0644), 0);
    load_ok(path);
    snprintf(link, sizeof(link), "%s/link.conf", dir);
    ck_assert_int_eq(symlink(path, link), 0);
    load_ok(link);

    ck_assert_int_eq(chmod(path, 0646), 0);
    load_refused(path, "mode 0646 lets others write it");
    ck_assert_int_eq(chmod(path, 0640), 0);
    if (geteuid() == 0) {
        ck_assert_int_eq(chown(path, 0, 0), 0);
        ck_assert_int_eq(chmod(path, 0660), 0); /* root's group may write */
        load_ok(path);
        ck_assert_int_eq(chown(path, 0, 4242), 0);
        load_refused(path, "lets a group other than root's write it");
        ck_assert_int_eq(chmod(path, 0640), 0);
        load_ok(path);
        ck_assert_int_eq(chown(path, 4242, 0), 0);
        load_refused(path, "owned by uid 4242, not by root or the daemon's uid 0");
        ck_assert_int_eq(chown(path, 0, 0), 0);
    }

    /* not regular files, refused at once: /dev/zero, and a symlink to it */
    load_refused("/dev/zero", "not a regular file");
    unlink(link);
    ck_assert_int_eq(symlink("/dev/zero", link), 0);
    load_refused(link, "not a regular file");
    unlink(link);
    ck_assert_int_eq(mkfifo(link, 0600), 0); /* the open must not wait for a writer */
    load_refused(link, "not a regular file");
    load_refused(dir, "not a regular file");

    /* the size bound: exactly CFG_MAX_SIZE is read, one byte more is not */
    int fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    for (size_t n = strlen(text); n < CFG_MAX_SIZE; ) {
        char pad[4096];
        size_t k = CFG_MAX_SIZE - n < sizeof(pad) ? CFG_MAX_SIZE - n : sizeof(pad);
        memset(pad, '#', k);
        pad[k - 1] = '\n';
        ck_assert_int_eq(write(fd, pad, k), (ssize_t)k);
        n += k;
    }
    load_ok(path);
    ck_assert_int_eq(write(fd, "\n", 1), 1);
    close(fd);
    load_refused(path, "1048577 bytes, more than the limit of 1048576 bytes");
    ck_assert_int_eq(truncate(path, 1L << 40), 0); /* sparse: nothing is read */
    load_refused(path, "more than the limit");

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

Suite *cfg_suite(void)
{
    Suite *s = suite_create("cfg");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, cfg_defaults_and_values);
    tcase_add_test(tc, cfg_errors_name_file_and_line);
    tcase_add_test(tc, cfg_file_checks);
    suite_add_tcase(s, tc);
    return s;
}
