/* test_auth.c - the auth endpoint's protocol and answers. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "codec.h"
#include "tests.h"

static struct dir *D;
static struct auth_stats stats;
static struct auth_defaults defaults = { "/var/vmail", 5000, 5000 };
static int warnings, notes;
static char last_log[1100];

static void logit(void *arg, int warn, const char *text)
{
    (void)arg;
    if (warn)
        warnings++;
    else
        notes++;
    snprintf(last_log, sizeof(last_log), "%s", text);
}

static void setup(void)
{
    D = fixture_dir();
    /* a gateway for example.com only, one for every domain, one switched off */
    struct dir_master m1 = { .id = 1, .enabled = 1, .name = "webmail", .password = "{CRYPT}$y$j9T$m1",
                             .domains = "example.com" };
    struct dir_master m2 = { .id = 2, .enabled = 1, .name = "backup", .password = "{CRYPT}$y$j9T$m2" };
    struct dir_master m3 = { .id = 3, .enabled = 0, .name = "old", .password = "{CRYPT}$y$j9T$m3" };
    dir_put(D, DIR_MASTER, dir_master_new(&m1));
    dir_put(D, DIR_MASTER, dir_master_new(&m2));
    dir_put(D, DIR_MASTER, dir_master_new(&m3));
    /* imap only, own quota, own uid, home and mail location; a domain default quota */
    struct dir_mailbox t = { .id = 40, .domain_id = 1, .address = "eve@example.com", .enabled = 1,
                             .may_send = 1, .may_receive = 1, .services = SVC_IMAP | SVC_LMTP,
                             .quota_bytes = 2147483648LL, .quota_messages = 1000, .limit_messages = -1,
                             .limit_recipients = -1, .uid = 700, .gid = 701,
                             .password = "{BLF-CRYPT}$2y$12$abc", .home = "/srv/mail/eve",
                             .mail = "maildir:~/Maildir", .maildir = "example.com/eve.40/" };
    dir_put(D, DIR_MAILBOX, dir_mailbox_new(&t));
    struct dir_mailbox n = t;
    n.id = 41;
    n.address = "nopw@example.com";
    n.password = NULL;
    n.home = n.mail = NULL;
    n.maildir = "example.com/nopw.41/";
    n.services = SVC_ALL;
    dir_put(D, DIR_MAILBOX, dir_mailbox_new(&n));
    struct dir_domain q = { .id = 3, .name = "xn--mnchen-3ya.de", .enabled = 1, .quota_bytes = 1048576,
                            .limit_window = 3600 };
    dir_put(D, DIR_DOMAIN, dir_domain_new(&q));
    memset(&stats, 0, sizeof(stats));
    warnings = notes = 0;
    last_log[0] = 0;
}

static void teardown(void) { dir_free(D); }

/* Feed a stream as the connection loop does; *closed when it broke. */
static const char *run(const struct dir *d, const char *in, size_t len, int *closed)
{
    static struct buf out;
    struct auth_env e = { d, &defaults, &stats, logit, NULL, NULL, NULL };  /* LIST answered whole */
    size_t pos = 0;
    buf_reset(&out);
    *closed = 0;
    while (pos < len) {
        ssize_t n = auth_request(&e, in + pos, len - pos, &out);
        if (n < 0) {
            *closed = 1;
            break;
        }
        if (n == 0)
            break;
        pos += (size_t)n;
    }
    return out.data ? out.data : "";
}

static const char *r(const char *in)
{
    int closed;
    const char *s = run(D, in, strlen(in), &closed);
    ck_assert_int_eq(closed, 0);
    return s;
}

START_TEST(passdb)
{
    ck_assert_str_eq(r("1\tPASS\tAlice@EXAMPLE.com\timap\n"),
                     "1\tOK\tuser=alice@example.com\tpassword={SHA512-CRYPT}$6$x$y\n");
    ck_assert_str_eq(r("2\tPASS\tnobody@example.com\timap\n"), "2\tNOTFOUND\n");
    ck_assert_str_eq(r("3\tPASS\talice@nowhere.org\timap\n"), "3\tNOTFOUND\n");
    ck_assert_str_eq(r("4\tPASS\talice\timap\n"), "4\tNOTFOUND\n");
    ck_assert_str_eq(r("5\tPASS\t@example.com\timap\n"), "5\tNOTFOUND\n");
    ck_assert_str_eq(r("6\tPASS\tcarol@example.com\timap\n"), "6\tDISABLED\treason=mailbox disabled\n");
    ck_assert_str_eq(r("7\tPASS\tdave@off.example\tpop3\n"), "7\tDISABLED\treason=domain disabled\n");
    /* eve may use IMAP only */
    ck_assert_str_eq(r("8\tPASS\teve@example.com\timap\n"),
                     "8\tOK\tuser=eve@example.com\tpassword={BLF-CRYPT}$2y$12$abc\n");
    ck_assert_str_eq(r("9\tPASS\teve@example.com\tpop3\n"),
                     "9\tDENIED\treason=service pop3 not allowed for this mailbox\n");
    ck_assert_str_eq(r("10\tPASS\teve@example.com\tsmtp\n"),
                     "10\tDENIED\treason=service smtp not allowed for this mailbox\n");
    ck_assert_str_eq(r("11\tPASS\teve@example.com\tdoveadm\n"),
                     "11\tOK\tuser=eve@example.com\tpassword={BLF-CRYPT}$2y$12$abc\n");
    ck_assert_str_eq(r("12\tPASS\tnopw@example.com\timap\n"), "12\tDENIED\treason=no password set\n");
    /* U-label login names find the A-label mailbox */
    ck_assert_str_eq(r("13\tPASS\thans@m\xc3\xbcnchen.de\timap\n"),
                     "13\tOK\tuser=hans@xn--mnchen-3ya.de\tpassword={SHA512-CRYPT}$6$x$y\n");
    ck_assert_uint_eq(stats.n[AUTH_PASS][AUTH_OK], 4);
    ck_assert_uint_eq(stats.n[AUTH_PASS][AUTH_NOTFOUND], 4);
    ck_assert_uint_eq(stats.n[AUTH_PASS][AUTH_DISABLED], 2);
    ck_assert_uint_eq(stats.n[AUTH_PASS][AUTH_DENIED], 3);
    /* refusals say why in the log; unknown users do not fill it */
    ck_assert_int_eq(notes, 5);
}
END_TEST

START_TEST(passdb_reasons)
{
    struct dir_mailbox t = *dir_mailbox_get(D, "carol@example.com", 17);
    t.disabled_reason = "spam\tsent";
    dir_put(D, DIR_MAILBOX, dir_mailbox_new(&t));
    /* a TAB in a reason is escaped, never a field separator */
    ck_assert_str_eq(r("1\tPASS\tcarol@example.com\timap\n"),
                     "1\tDISABLED\treason=mailbox disabled: spam\001tsent\n");
    /* the refusal is logged once, its TAB shown as '?' (never a raw TAB) */
    ck_assert_int_eq(notes, 1);
    ck_assert_str_eq(last_log, "passdb carol@example.com (imap): mailbox disabled: spam?sent");
    ck_assert(strchr(last_log, '\t') == NULL);
}
END_TEST

START_TEST(master)
{
    ck_assert_str_eq(r("1\tMASTER\twebmail\tAlice@example.com\timap\n"),
                     "1\tOK\tuser=webmail\tpassword={CRYPT}$y$j9T$m1\n");
    ck_assert_int_eq(notes, 1);
    ck_assert_ptr_nonnull(strstr(last_log, "master user webmail for alice@example.com (imap): allowed"));
    /* out of its domains */
    ck_assert_str_eq(r("2\tMASTER\twebmail\thans@xn--mnchen-3ya.de\timap\n"),
                     "2\tDENIED\treason=target outside the master user's domains\n");
    ck_assert_ptr_nonnull(strstr(last_log, "refused"));
    ck_assert_str_eq(r("3\tMASTER\tbackup\thans@xn--mnchen-3ya.de\timap\n"),
                     "3\tOK\tuser=backup\tpassword={CRYPT}$y$j9T$m2\n");
    ck_assert_str_eq(r("4\tMASTER\tbackup\tcarol@example.com\timap\n"),
                     "4\tDENIED\treason=mailbox disabled\n");
    ck_assert_str_eq(r("5\tMASTER\tbackup\tdave@off.example\timap\n"),
                     "5\tDENIED\treason=domain disabled\n");
    ck_assert_str_eq(r("6\tMASTER\tbackup\tnobody@example.com\timap\n"),
                     "6\tDENIED\treason=target mailbox not found\n");
    ck_assert_str_eq(r("7\tMASTER\tbackup\teve@example.com\tpop3\n"),
                     "7\tDENIED\treason=service pop3 not allowed for this mailbox\n");
    ck_assert_str_eq(r("8\tMASTER\told\talice@example.com\timap\n"),
                     "8\tDISABLED\treason=master user disabled\n");
    ck_assert_str_eq(r("9\tMASTER\tnoone\talice@example.com\timap\n"),
                     "9\tNOTFOUND\treason=no such master user\n");
    /* every use is logged, allowed or refused */
    ck_assert_int_eq(notes + warnings, 9);
    ck_assert_int_eq(warnings, 7);
    ck_assert_uint_eq(stats.n[AUTH_MASTER][AUTH_OK], 2);
    ck_assert_uint_eq(stats.n[AUTH_MASTER][AUTH_DENIED], 5);
}
END_TEST

START_TEST(userdb)
{
    ck_assert_str_eq(r("1\tUSER\tALICE@example.com\tlmtp\n"),
                     "1\tOK\tuser=alice@example.com\thome=/var/vmail/example.com/10\tuid=5000\tgid=5000\n");
    ck_assert_str_eq(r("2\tUSER\teve@example.com\timap\n"),
                     "2\tOK\tuser=eve@example.com\thome=/srv/mail/eve\tmail=maildir:~/Maildir\tuid=700\tgid=701"
                     "\tquota_rule=*:storage=2147483648B\tquota_rule2=*:messages=1000\n");
    /* the domain's default quota */
    ck_assert_str_eq(r("3\tUSER\thans@xn--mnchen-3ya.de\tlmtp\n"),
                     "3\tOK\tuser=hans@xn--mnchen-3ya.de\thome=/var/vmail/xn--mnchen-3ya.de/14\tuid=5000\tgid=5000"
                     "\tquota_rule=*:storage=1048576B\n");
    /* off, or not receiving: unknown to LMTP */
    ck_assert_str_eq(r("4\tUSER\tcarol@example.com\tlmtp\n"), "4\tNOTFOUND\n");
    ck_assert_str_eq(r("5\tUSER\tdave@off.example\timap\n"), "5\tNOTFOUND\n");
    ck_assert_str_eq(r("6\tUSER\tnorecv@example.com\tlmtp\n"), "6\tNOTFOUND\n");
    ck_assert_str_eq(r("7\tUSER\tnorecv@example.com\timap\n"),
                     "7\tOK\tuser=norecv@example.com\thome=/var/vmail/example.com/15\tuid=5000\tgid=5000\n");
    /* no default uid: Dovecot's mail_uid applies */
    struct auth_defaults keep = defaults;
    defaults.uid = defaults.gid = 0;
    defaults.mail_base = "/m/";
    ck_assert_str_eq(r("8\tUSER\tbob@example.com\tlmtp\n"), "8\tOK\tuser=bob@example.com\thome=/m/example.com/11\n");
    defaults = keep;
    ck_assert_uint_eq(stats.n[AUTH_USER][AUTH_OK], 5);
    ck_assert_uint_eq(stats.n[AUTH_USER][AUTH_NOTFOUND], 3);
}
END_TEST

START_TEST(iterate)
{
    const char *s = r("5\tLIST\n");
    /* enabled mailboxes of enabled domains, then the end */
    ck_assert_ptr_nonnull(strstr(s, "5\tROW\talice@example.com\n"));
    ck_assert_ptr_nonnull(strstr(s, "5\tROW\teve@example.com\n"));
    ck_assert_ptr_nonnull(strstr(s, "5\tROW\thans@xn--mnchen-3ya.de\n"));
    ck_assert_ptr_null(strstr(s, "carol@"));
    ck_assert_ptr_null(strstr(s, "dave@"));
    int rows = 0;
    for (const char *p = s; (p = strstr(p, "\tROW\t")) != NULL; p++)
        rows++;
    ck_assert_int_eq(rows, 6); /* alice bob hans norecv eve nopw */
    size_t n = strlen(s);
    ck_assert(n > 6 && !strcmp(s + n - 6, "5\tEND\n"));
}
END_TEST

START_TEST(protocol)
{
    int closed;
    const char *s;
    /* pipelined, answered in order, with their ids */
    s = r("VERSION\t1\t0\n7\tPASS\tbob@example.com\timap\n8\tUSER\tbob@example.com\tlmtp\n");
    ck_assert(!strncmp(s, "VERSION\t1\t0\n7\tOK\tuser=bob@example.com\t", 38));
    ck_assert_ptr_nonnull(strstr(s, "\n8\tOK\tuser=bob@example.com\thome="));
    /* a partial line waits */
    s = run(D, "9\tPASS\tbob", 10, &closed);
    ck_assert_str_eq(s, "");
    ck_assert_int_eq(closed, 0);
    /* escaped fields are decoded: a name with an escaped TAB is not found */
    ck_assert_str_eq(r("10\tPASS\tbob\001t@example.com\timap\n"), "10\tNOTFOUND\n");
    /* not loaded yet: temporary, never "unknown user" */
    s = run(NULL, "11\tPASS\tbob@example.com\timap\n", 29, &closed);
    ck_assert_str_eq(s, "11\tFAIL\treason=directory not loaded yet\n");
    ck_assert_uint_eq(stats.n[AUTH_PASS][AUTH_FAIL], 1);
}
END_TEST

START_TEST(bad_input)
{
    int closed;
    const char *s;
    ck_assert_str_eq(r("x\tPASS\ta@b\timap\n"), "0\tERROR\treason=request without a valid id\n");
    ck_assert_str_eq(r("0\tPASS\ta@b\timap\n"), "0\tERROR\treason=request without a valid id\n");
    ck_assert_str_eq(r("4294967296\tPASS\ta@b\timap\n"), "0\tERROR\treason=request without a valid id\n");
    ck_assert_str_eq(r("4294967295\tNOPE\n"), "4294967295\tERROR\treason=unknown command\n");
    ck_assert_str_eq(r("3\n"), "3\tERROR\treason=no command\n");
    ck_assert_str_eq(r("3\tPASS\ta@b\n"), "3\tERROR\treason=wrong number of fields\n");
    ck_assert_str_eq(r("3\tPASS\ta@b\timap\textra\n"), "3\tERROR\treason=wrong number of fields\n");
    ck_assert_str_eq(r("3\tPASS\t\timap\n"), "3\tERROR\treason=empty field\n");
    ck_assert_str_eq(r("3\tPASS\ta\001x@b\timap\n"), "3\tERROR\treason=bad escape\n");
    ck_assert_str_eq(r("3\tPASS\ta@b\timap\001\n"), "3\tERROR\treason=bad escape\n");
    ck_assert_str_eq(r("3\tA\tB\tC\tD\tE\tF\tG\tH\tI\n"), "3\tERROR\treason=too many fields\n");
    ck_assert_str_eq(r("\n"), "0\tERROR\treason=request without a valid id\n");
    s = run(D, "3\tPASS\ta\0b@c\timap\n", 18, &closed);
    ck_assert_str_eq(s, "0\tERROR\treason=NUL in request\n");
    ck_assert_int_eq(closed, 0);
    /* the connection goes on after a bad line */
    ck_assert_str_eq(r("x\n5\tPASS\tnobody@example.com\timap\n"),
                     "0\tERROR\treason=request without a valid id\n5\tNOTFOUND\n");
    ck_assert_uint_eq(stats.errors, 14);
    /* an unknown protocol version, a line too long: the connection ends */
    s = run(D, "VERSION\t2\t0\n", 12, &closed);
    ck_assert_int_eq(closed, 1);
    ck_assert_str_eq(s, "0\tERROR\treason=unsupported protocol version (this is 1)\n");
    char *big = malloc(AUTH_MAX_LINE + 10);
    memset(big, 'a', AUTH_MAX_LINE + 10);
    s = run(D, big, AUTH_MAX_LINE + 10, &closed);
    ck_assert_int_eq(closed, 1);
    ck_assert_str_eq(s, "0\tERROR\treason=request line too long\n");
    /* just under the limit is answered */
    memcpy(big, "1\tPASS\t", 7);
    memcpy(big + AUTH_MAX_LINE - 6, "\timap\n", 6);
    s = run(D, big, AUTH_MAX_LINE, &closed);
    ck_assert_int_eq(closed, 0);
    ck_assert_str_eq(s, "1\tNOTFOUND\n");
    free(big);
    ck_assert_int_gt(warnings, 0);
}
END_TEST

START_TEST(tab_escaping)
{
    struct buf b;
    char s[16];
    buf_init(&b);
    tabesc_encode(&b, "a\tb\nc\rd\001e", 9);
    ck_assert_str_eq(b.data, "a\001tb\001nc\001rd\0011e");
    memcpy(s, b.data, b.len);
    ck_assert_int_eq(tabesc_decode(s, b.len), 9);
    ck_assert(!memcmp(s, "a\tb\nc\rd\001e", 9));
    memcpy(s, "x\001", 2);
    ck_assert_int_eq(tabesc_decode(s, 2), -1);
    memcpy(s, "x\001z", 3);
    ck_assert_int_eq(tabesc_decode(s, 3), -1);
    buf_free(&b);
}
END_TEST

Suite *auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("auth");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, passdb);
    tcase_add_test(tc, passdb_reasons);
    tcase_add_test(tc, master);
    tcase_add_test(tc, userdb);
    tcase_add_test(tc, iterate);
    tcase_add_test(tc, protocol);
    tcase_add_test(tc, bad_input);
    tcase_add_test(tc, tab_escaping);
    suite_add_tcase(s, tc);
    return s;
}
