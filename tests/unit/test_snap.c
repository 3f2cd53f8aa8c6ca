/* test_snap.c - the snapshot file as the daemon trusts it: checksum, size
 * bounds, owner, mode, symlinks (run as root, CI also tries another uid). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lookup.h"
#include "snap.h"
#include "tests.h"

TCase *snap_file_tcase(void);

static char tmpdir[64];
static char path[128];

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/mr-snap.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(path, sizeof(path), "%s/dir.snapshot", tmpdir);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *p, const char *data, size_t len, mode_t mode)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    ck_assert_int_eq(fchmod(fd, mode), 0);
    close(fd);
}

static void read_all(const char *p, struct buf *out)
{
    char chunk[65536];
    ssize_t n;
    int fd = open(p, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    buf_reset(out);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        buf_add(out, chunk, (size_t)n);
    close(fd);
}

/* snap_read of path must fail with want in the message (and the path). */
static void refused(const char *want)
{
    struct buf err;
    buf_init(&err);
    struct dir *d = snap_read(path, &err);
    ck_assert_msg(d == NULL, "accepted; expected \"%s\"", want);
    ck_assert_msg(strstr(err.data, want) != NULL, "\"%s\" does not say \"%s\"", err.data, want);
    ck_assert_msg(strstr(err.data, path) != NULL, "\"%s\" does not name the file", err.data);
    buf_free(&err);
}

static void write_fixture(void)
{
    struct dir *d = fixture_dir();
    struct buf err;
    buf_init(&err);
    ck_assert_msg(snap_write(d, path, &err) == 0, "%s", err.data);
    dir_free(d);
    buf_free(&err);
}

START_TEST(snap_write_read)
{
    struct stat st;
    struct buf err;
    buf_init(&err);
    write_fixture();
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    struct dir *d = snap_read(path, &err), *f = fixture_dir();
    ck_assert_msg(d != NULL, "%s", err.data);
    for (int k = 0; k < DIR_NKINDS; k++)
        ck_assert_uint_eq(dir_count(d, (enum dir_kind)k), dir_count(f, (enum dir_kind)k));
    ck_assert_uint_eq(d->seq, f->seq);
    dir_free(d);
    dir_free(f);
    buf_free(&err);
}
END_TEST

/* One byte of a maildir changed, every count the same: only the checksum
 * can tell. */
START_TEST(snap_edited_byte)
{
    struct buf text, err;
    buf_init(&text);
    buf_init(&err);
    write_fixture();
    read_all(path, &text);
    char *md = strstr(text.data, " =example.com/10/");
    ck_assert_ptr_nonnull(md);
    char was = md[15];
    md[15] = was == '9' ? '8' : '9';
    write_file(path, text.data, text.len, 0600);
    refused("checksum mismatch: the file is damaged or was edited");
    /* the same in memory */
    ck_assert_ptr_null(snap_parse(text.data, text.len, &err));
    ck_assert_str_eq(err.data, "checksum mismatch: the file is damaged or was edited");
    /* a damaged checksum line */
    md[15] = was;
    char sum = text.data[text.len - 2];
    text.data[text.len - 2] = sum == 'a' ? 'b' : 'a';
    write_file(path, text.data, text.len, 0600);
    refused("checksum mismatch");
    /* anything after the checksum line */
    text.data[text.len - 2] = sum;
    struct dir *d = snap_parse(text.data, text.len, &err);
    ck_assert_msg(d != NULL, "%s", err.data);
    dir_free(d);
    buf_adds(&text, "end 0\n");
    write_file(path, text.data, text.len, 0600);
    refused("malformed record");
    buf_free(&text);
    buf_free(&err);
}
END_TEST

START_TEST(snap_truncated)
{
    struct buf text;
    buf_init(&text);
    write_fixture();
    read_all(path, &text);
    const size_t sumline = strlen("sha256 ") + 64 + 1;
    size_t cuts[] = { 0, 1, 30, text.len / 2, text.len - sumline, text.len - 1 };
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        ck_assert_int_eq(truncate(path, (off_t)cuts[i]), 0);
        refused("refused");
        write_file(path, text.data, text.len, 0600);
    }
    ck_assert_int_eq(truncate(path, 0), 0);
    refused("file is empty");
    write_file(path, text.data, text.len - sumline, 0600); /* cut before the checksum line */
    refused("file is cut short (no checksum line)");
    write_file(path, text.data, text.len - 1, 0600);
    refused("no newline at end of file");
    buf_free(&text);
}
END_TEST

START_TEST(snap_old_version)
{
    const char *v1 = "mailroster-snapshot 1 100\nD 1 1 0 0 0 0 1 =example.com -\nend 1\n";
    write_file(path, v1, strlen(v1), 0600);
    refused("snapshot format 1 is from an older version of mailroster (this one reads formats 3 to 5)");
}
END_TEST

/* Format 4's records: a mailbox's forward, an alias's may_send, transports
 * (strings with spaces, '%', ',' and ':'), through a file and back. */
START_TEST(snap_features)
{
    struct dir *d = fixture_dir(), *e;
    struct buf err, text;
    buf_init(&err);
    buf_init(&text);
    struct dir_mailbox m = *dir_mailbox_get(d, "bob@example.com", 15);
    m.forward = "x@remote.example,y+z@remote.example";
    m.keep_copy = 1;
    dir_put(d, DIR_MAILBOX, dir_mailbox_new(&m));
    struct dir_alias a = *dir_alias_get(d, "info@example.com", 16);
    a.may_send = 0;
    dir_put(d, DIR_ALIAS, dir_alias_new(&a));
    struct dir_transport t1 = { .id = 7, .enabled = 1, .pattern = ".example.net",
                                .transport = "error:5.1.1 100% gone, ask x@y" };
    struct dir_transport t2 = { .id = 8, .enabled = 0, .pattern = "a@example.org", .transport = "relay:[10.0.0.5]:25" };
    dir_put(d, DIR_TRANSPORT, dir_transport_new(&t1));
    dir_put(d, DIR_TRANSPORT, dir_transport_new(&t2));
    ck_assert_msg(snap_write(d, path, &err) == 0, "%s", err.data);
    read_all(path, &text);
    /* the fixture is of no known database */
    ck_assert_int_eq(strncmp(text.data, "mailroster-snapshot 5 100 -\n", 28), 0);
    ck_assert_ptr_nonnull(strstr(text.data, "\nT 7 1 =.example.net =error:5.1.1%20100%25%20gone,%20ask%20x@y\n"));
    ck_assert_ptr_nonnull(strstr(text.data, "\nT 8 0 =a@example.org =relay:[10.0.0.5]:25\n"));
    e = snap_read(path, &err);
    ck_assert_msg(e != NULL, "%s", err.data);
    ck_assert_uint_eq(dir_count(e, DIR_TRANSPORT), 2);
    const struct dir_mailbox *bob = dir_mailbox_get(e, "bob@example.com", 15);
    ck_assert_str_eq(bob->forward, "x@remote.example,y+z@remote.example");
    ck_assert_int_eq(bob->keep_copy, 1);
    const struct dir_mailbox *alice = dir_mailbox_get(e, "alice@example.com", 17);
    ck_assert_ptr_null(alice->forward);
    ck_assert_int_eq(alice->keep_copy, 0);
    ck_assert_int_eq(dir_alias_get(e, "info@example.com", 16)->may_send, 0);
    ck_assert_int_eq(dir_alias_get(e, "@example.com", 12)->may_send, 1);
    const struct dir_transport *t = dir_transport_get(e, ".example.net", 12);
    ck_assert_uint_eq(t->id, 7);
    ck_assert_int_eq(t->enabled, 1);
    ck_assert_str_eq(t->transport, "error:5.1.1 100% gone, ask x@y");
    ck_assert_int_eq(dir_transport_get(e, "a@example.org", 13)->enabled, 0);
    dir_free(e);
    dir_free(d);
    buf_free(&err);
    buf_free(&text);
}
END_TEST

/* Format 5: the header names the database (migration 0014), through a
 * file and back, and through a view as the writer thread sees it; format
 * 4 files read with the identity unknown; malformed identities refused. */
START_TEST(snap_identity)
{
    static const char id[] = "0b6f3c1e-9a2d-4f7b-8c5e-1d2a3b4c5d6e";
    struct dir *d = fixture_dir(), *e, *v;
    struct buf err, text, want;
    buf_init(&err);
    buf_init(&text);
    buf_init(&want);
    memcpy(d->db_id, id, sizeof(id));
    ck_assert_msg(snap_write(d, path, &err) == 0, "%s", err.data);
    read_all(path, &text);
    buf_printf(&want, "mailroster-snapshot 5 %" PRIu64 " %s\n", d->seq, id);
    ck_assert_int_eq(strncmp(text.data, want.data, want.len), 0);
    e = snap_read(path, &err);
    ck_assert_msg(e != NULL, "%s", err.data);
    ck_assert_str_eq(e->db_id, id);
    ck_assert_uint_eq(e->seq, d->seq);
    dir_free(e);
    /* the writer formats a view: it names the same database */
    v = dir_view_new(d);
    buf_reset(&text);
    snap_format(v, &text);
    ck_assert_int_eq(strncmp(text.data, want.data, want.len), 0);
    dir_view_free(d, v);

    /* format 4: three header fields, identity unknown */
    static const char *good[][2] = {
        { "mailroster-snapshot 4 7\nend 0\n", "" },
        { "mailroster-snapshot 5 7 -\nend 0\n", "" },
        { "mailroster-snapshot 5 7 ffffffff-0000-4000-8000-0123456789ab\nend 0\n",
          "ffffffff-0000-4000-8000-0123456789ab" },
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        buf_reset(&text);
        buf_adds(&text, good[i][0]);
        snap_seal(&text);
        e = snap_parse(text.data, text.len, &err);
        ck_assert_msg(e != NULL, "%s: %s", good[i][0], err.data);
        ck_assert_str_eq(e->db_id, good[i][1]);
        ck_assert_uint_eq(e->seq, 7);
        dir_free(e);
    }
    static const char *bad[] = {
        "mailroster-snapshot 5 7\nend 0\n",                     /* format 5 without it */
        "mailroster-snapshot 4 7 -\nend 0\n",                   /* format 4 with it */
        "mailroster-snapshot 5 7 - x\nend 0\n",
        "mailroster-snapshot 5 7 =\nend 0\n",
        "mailroster-snapshot 5 7 0B6F3C1E-9A2D-4F7B-8C5E-1D2A3B4C5D6E\nend 0\n", /* not as PostgreSQL prints it */
        "mailroster-snapshot 5 7 0b6f3c1e-9a2d-4f7b-8c5e-1d2a3b4c5d6\nend 0\n",
        "mailroster-snapshot 5 7 0b6f3c1e-9a2d-4f7b-8c5e-1d2a3b4c5d6ef\nend 0\n",
        "mailroster-snapshot 5 7 0b6f3c1e9a2d-4f7b-8c5e-1d2a3b4c5d6e-\nend 0\n",
        "mailroster-snapshot 5 7 0b6f3c1e-9a2d-4f7b-8c5e-1d2a3b4c5d6g\nend 0\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_reset(&text);
        buf_adds(&text, bad[i]);
        snap_seal(&text);
        e = snap_parse(text.data, text.len, &err);
        ck_assert_msg(e == NULL, "accepted: %s", bad[i]);
        ck_assert_msg(strncmp(err.data, "line 1: ", 8) == 0, "%s: %s", bad[i], err.data);
    }
    dir_free(d);
    buf_free(&err);
    buf_free(&text);
    buf_free(&want);
}
END_TEST

/* A format 3 file, as the daemon before migration 0010 wrote it: read
 * after an upgrade (PostgreSQL may be down), with no forwards, may_send
 * true and no transports. */
static const char v3[] =
    "mailroster-snapshot 3 42\n"
    "D 1 1 0 0 0 0 3600 =example.com -\n"
    "M 10 1 1 1 1 31 -1 -1 -1 -1 -1 -1 =alice@example.com =%7BSHA512-CRYPT%7D$6$x$y - - =example.com/10/ - -\n"
    "M 11 1 1 1 1 31 -1 -1 -1 -1 -1 -1 =bob@example.com - - - =example.com/11/ - =3%20refusals\n"
    "A 20 1 1 =info@example.com =alice@example.com,bob@example.com\n"
    "A 21 1 0 =old@example.com =bob@example.com\n"
    "S 30 11 =boss@example.com\n"
    "U 40 1 =admin =%7BARGON2ID%7Dx -\n"
    "end 7\n";

START_TEST(snap_format3)
{
    struct buf text, err, v;
    buf_init(&text);
    buf_init(&err);
    buf_init(&v);
    buf_adds(&text, v3);
    snap_seal(&text);
    write_file(path, text.data, text.len, 0600);
    struct dir *d = snap_read(path, &err);
    ck_assert_msg(d != NULL, "%s", err.data);
    ck_assert_uint_eq(d->seq, 42);
    ck_assert_uint_eq(dir_count(d, DIR_MAILBOX), 2);
    ck_assert_uint_eq(dir_count(d, DIR_ALIAS), 2);
    ck_assert_uint_eq(dir_count(d, DIR_TRANSPORT), 0);
    const struct dir_mailbox *m = dir_mailbox_get(d, "bob@example.com", 15);
    ck_assert_ptr_null(m->forward);
    ck_assert_int_eq(m->keep_copy, 0);
    ck_assert_int_eq(m->send_suspended, 1);
    ck_assert_str_eq(m->suspended_reason, "3 refusals");
    ck_assert_str_eq(m->maildir, "example.com/11/");
    ck_assert_int_eq(dir_alias_get(d, "info@example.com", 16)->may_send, 1);
    ck_assert_int_eq(dir_alias_get(d, "old@example.com", 15)->may_send, 1);
    /* so the senders map answers as before the upgrade */
    ck_assert_int_eq(lk_lookup(d, LK_SENDERS, "info@example.com", 16, "+", &v), LK_FOUND);
    ck_assert_str_eq(v.data, "alice@example.com,bob@example.com");
    ck_assert_int_eq(lk_lookup(d, LK_ALIASES, "bob@example.com", 15, "+", &v), LK_NOTFOUND);
    /* written again, it is the newest format with the defaults spelled
     * out, of no known database */
    buf_reset(&text);
    snap_format(d, &text);
    ck_assert_int_eq(strncmp(text.data, "mailroster-snapshot 5 42 -\n", 27), 0);
    ck_assert_ptr_nonnull(strstr(text.data, "\nA 20 1 1 1 =info@example.com =alice@example.com,bob@example.com\n"));
    ck_assert_ptr_nonnull(strstr(text.data, " =example.com/11/ - =3%20refusals 0 -\n"));
    dir_free(d);

    /* each format's records only: a format 3 file with a format 4
     * mailbox, alias or transport line, and the other way round */
    static const char *bad[] = {
        "mailroster-snapshot 3 1\nM 10 1 1 1 1 31 -1 -1 -1 -1 -1 -1 =a@example.com - - - =m/ - - 0 -\nend 1\n",
        "mailroster-snapshot 3 1\nA 20 1 1 1 =info@example.com =a@example.com\nend 1\n",
        "mailroster-snapshot 3 1\nT 7 1 =example.net =relay:x\nend 1\n",
        "mailroster-snapshot 4 1\nM 10 1 1 1 1 31 -1 -1 -1 -1 -1 -1 =a@example.com - - - =m/ - -\nend 1\n",
        "mailroster-snapshot 4 1\nA 20 1 1 =info@example.com =a@example.com\nend 1\n",
        /* format 4: keep_copy is 0 or 1, a forward is never empty, a
         * transport has both strings */
        "mailroster-snapshot 4 1\nM 10 1 1 1 1 31 -1 -1 -1 -1 -1 -1 =a@example.com - - - =m/ - - 2 -\nend 1\n",
        "mailroster-snapshot 4 1\nM 10 1 1 1 1 31 -1 -1 -1 -1 -1 -1 =a@example.com - - - =m/ - - 1 =\nend 1\n",
        "mailroster-snapshot 4 1\nT 7 1 =example.net -\nend 1\n",
        "mailroster-snapshot 4 1\nT 7 1 = =relay:x\nend 1\n",
        "mailroster-snapshot 4 1\nT 7 2 =example.net =relay:x\nend 1\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_reset(&text);
        buf_adds(&text, bad[i]);
        snap_seal(&text);
        d = snap_parse(text.data, text.len, &err);
        ck_assert_msg(d == NULL, "accepted: %s", bad[i]);
        ck_assert_str_eq(err.data, "line 2: malformed record");
    }
    /* the good twins of the first and fourth */
    buf_reset(&text);
    buf_adds(&text, "mailroster-snapshot 4 1\nM 10 1 1 1 1 31 -1 -1 -1 -1 -1 -1 =a@example.com - - - =m/ - - 1 =b@x.example\n"
                    "A 20 1 1 0 =info@example.com =a@example.com\nT 7 1 =example.net =relay:x\nend 3\n");
    snap_seal(&text);
    d = snap_parse(text.data, text.len, &err);
    ck_assert_msg(d != NULL, "%s", err.data);
    ck_assert_str_eq(dir_mailbox_get(d, "a@example.com", 13)->forward, "b@x.example");
    ck_assert_int_eq(dir_alias_get(d, "info@example.com", 16)->may_send, 0);
    dir_free(d);
    buf_free(&text);
    buf_free(&err);
    buf_free(&v);
}
END_TEST

START_TEST(snap_not_trusted)
{
    char link[160];
    write_fixture();
    /* a symlink, even to a good file of ours */
    snprintf(link, sizeof(link), "%s/link.snapshot", tmpdir);
    ck_assert_int_eq(symlink(path, link), 0);
    char good[128];
    memcpy(good, path, sizeof(good));
    memcpy(path, link, sizeof(path));
    refused("it is a symbolic link");
    memcpy(path, good, sizeof(path));
    /* modes: group or others may write; others may read */
    ck_assert_int_eq(chmod(path, 0620), 0);
    refused("mode 0620 lets the group write it");
    ck_assert_int_eq(chmod(path, 0602), 0);
    refused("lets others write it");
    ck_assert_int_eq(chmod(path, 0604), 0);
    refused("mode 0604 lets others read it");
    ck_assert_int_eq(chmod(path, 0640), 0); /* the group may read it (backups) */
    struct buf err;
    buf_init(&err);
    struct dir *d = snap_read(path, &err);
    ck_assert_msg(d != NULL, "%s", err.data);
    dir_free(d);
    ck_assert_int_eq(chmod(path, 0600), 0);
    /* another owner (only root can hand a file over) */
    if (geteuid() == 0) {
        ck_assert_int_eq(chown(path, 4242, 4242), 0);
        refused("owned by uid 4242, not by the daemon's uid 0");
        ck_assert_int_eq(chown(path, 0, 0), 0);
    }
    /* not regular files: refused at once, a FIFO does not block the open */
    memcpy(path, "/dev/zero", sizeof("/dev/zero"));
    refused("it is a character device");
    snprintf(path, sizeof(path), "%s", tmpdir);
    refused("it is a directory");
    snprintf(path, sizeof(path), "%s/fifo", tmpdir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    refused("it is a FIFO");
    snprintf(path, sizeof(path), "%s/none", tmpdir);
    refused("No such file");
    memcpy(path, good, sizeof(path));
    buf_free(&err);
}
END_TEST

/* A directory of n mailboxes. */
static struct dir *big_dir(size_t n)
{
    struct dir *d = dir_new();
    struct dir_domain dom = { .id = 1, .enabled = 1, .limit_window = 3600, .name = "example.com" };
    char addr[64], maildir[64];
    dir_put(d, DIR_DOMAIN, dir_domain_new(&dom));
    for (size_t i = 0; i < n; i++) {
        snprintf(addr, sizeof(addr), "user%zu@example.com", i);
        snprintf(maildir, sizeof(maildir), "example.com/user%zu.%zu/", i, i);
        struct dir_mailbox m = { .id = i + 10, .domain_id = 1, .enabled = 1, .may_send = 1, .may_receive = 1,
                                 .services = SVC_ALL, .quota_bytes = -1, .quota_messages = -1,
                                 .limit_messages = -1, .limit_recipients = -1, .uid = -1, .gid = -1,
                                 .address = addr, .maildir = maildir,
                                 .password = "{SHA512-CRYPT}$6$rounds=5000$0123456789abcdef$"
                                             "0123456789abcdef0123456789abcdef0123456789abcdef"
                                             "0123456789abcdef0123456789abcdef0123456789" };
        dir_put(d, DIR_MAILBOX, dir_mailbox_new(&m));
    }
    d->seq = 7;
    return d;
}

/* Large but valid: read in full; the bound is exact. */
START_TEST(snap_large_valid)
{
    struct dir *d = big_dir(100000), *e;
    struct buf err;
    struct stat st;
    buf_init(&err);
    ck_assert_msg(snap_write(d, path, &err) == 0, "%s", err.data);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_gt(st.st_size, 15 << 20);
    e = snap_read_max(path, (uint64_t)st.st_size, &err);
    ck_assert_msg(e != NULL, "%s", err.data);
    ck_assert_uint_eq(dir_count(e, DIR_MAILBOX), 100000);
    ck_assert_str_eq(dir_mailbox_get(e, "user99999@example.com", 21)->maildir, "example.com/user99999.99999/");
    dir_free(e);
    e = snap_read_max(path, (uint64_t)st.st_size - 1, &err);
    ck_assert_ptr_null(e);
    ck_assert_ptr_nonnull(strstr(err.data, "more than the limit of"));
    dir_free(d);
    buf_free(&err);
}
END_TEST

/* Past the default bound: a sparse file is refused before a byte is read. */
START_TEST(snap_oversized)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)SNAP_MAX_SIZE_DEFAULT + 1), 0);
    close(fd);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    refused("more than the limit of 1073741824 bytes");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 2);
}
END_TEST

struct reader {
    pthread_t t;
    int ok;
};

static void *read_thread(void *arg)
{
    struct reader *r = arg;
    struct buf err;
    buf_init(&err);
    for (int i = 0; i < 20; i++) {
        struct dir *d = snap_read(path, &err);
        r->ok += d != NULL && dir_count(d, DIR_MAILBOX) == 1000;
        dir_free(d);
    }
    buf_free(&err);
    return NULL;
}

/* snap_read keeps no state: threads read side by side. */
START_TEST(snap_threads)
{
    struct dir *d = big_dir(1000);
    struct buf err;
    struct reader r[4];
    buf_init(&err);
    ck_assert_msg(snap_write(d, path, &err) == 0, "%s", err.data);
    for (int i = 0; i < 4; i++) {
        r[i].ok = 0;
        ck_assert_int_eq(pthread_create(&r[i].t, NULL, read_thread, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(r[i].t, NULL);
        ck_assert_int_eq(r[i].ok, 20);
    }
    dir_free(d);
    buf_free(&err);
}
END_TEST

TCase *snap_file_tcase(void)
{
    TCase *tc = tcase_create("snapfile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, snap_write_read);
    tcase_add_test(tc, snap_edited_byte);
    tcase_add_test(tc, snap_truncated);
    tcase_add_test(tc, snap_old_version);
    tcase_add_test(tc, snap_features);
    tcase_add_test(tc, snap_format3);
    tcase_add_test(tc, snap_identity);
    tcase_add_test(tc, snap_not_trusted);
    tcase_add_test(tc, snap_large_valid);
    tcase_add_test(tc, snap_oversized);
    tcase_add_test(tc, snap_threads);
    return tc;
}
