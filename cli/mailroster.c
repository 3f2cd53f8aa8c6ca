/* mailroster.c - the admin command line: sends one command to mailrosterd's
 * admin socket (the line protocol of lib/admproto.h) and prints the answer
 * as an aligned table, tab-separated text or JSON.
 *
 * The command set is the daemon's ("mailroster help" asks it). The one
 * thing done here is passwords: "user add|ensure|passwd" take password
 * options that never reach the daemon; the password is hashed here and
 * only the hash is sent. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sysexits.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

#include "admproto.h"
#include "buf.h"
#include "dbmigrate.h"
#include "import_from.h"
#include "log.h"
#include "mem.h"
#include "pwhash.h"
#include "setup.h"
#include "verify.h"

#define DEFAULT_SOCKET "/run/mailroster/admin"
#define IO_TIMEOUT 30           /* seconds, for connect, send and each receive */
#define PW_BUF 512              /* longest password, plus one: libxcrypt's limit */

enum format { F_TABLE, F_TAB, F_JSON };

static int verbose;
static int err_exit(const char *code);

static void __attribute__((noreturn, format(printf, 2, 3))) die(int code, const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fputs("mailroster: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

static void usage(FILE *f)
{
    fputs("usage: mailroster [-s SOCKET] [-f table|tab|json] [-v] COMMAND [ARGUMENT...]\n"
          "       mailroster -h | -V\n"
          "\n"
          "Sends COMMAND to mailrosterd's admin socket and prints the answer.\n"
          "'mailroster help' lists the commands, 'mailroster help COMMAND' shows one.\n"
          "\n"
          "  -s SOCKET  admin socket (default: $MAILROSTER_SOCKET, else " DEFAULT_SOCKET ")\n"
          "  -f FORMAT  table (default on a terminal), tab (default otherwise) or json\n"
          "  -v         show the request and the final OK text on standard error\n"
          "  -h         show this help\n"
          "  -V         show the version\n"
          "\n"
          "Passwords for 'user add|ensure ADDRESS' and 'user passwd ADDRESS' are hashed\n"
          "here; only the hash is sent:\n"
          "  --password-stdin      read the password as one line from standard input\n"
          "  --password-hash HASH  send a ready {SCHEME} hash as it is\n"
          "  --scheme SCHEME       yescrypt (default), bcrypt or sha512\n"
          "  --bcrypt-cost N       4 to 31 (default 12)\n"
          "Without them the password is asked for on the terminal.\n"
          "\n"
          "'mailroster db migrate|status' upgrades the database's schema directly\n"
          "(see 'mailroster db help').\n"
          "'mailroster verify' compares the old Postfix maps with mailrosterd's\n"
          "(see 'mailroster verify --help').\n",
          f);
}

/* --- text from the daemon, made safe to print ----------------------------------- */

/* Length (1..4) of the valid UTF-8 character at s with its code point, or 0. */
static size_t utf8_char(const unsigned char *s, unsigned *cp)
{
    unsigned c = s[0], v;
    size_t n;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        v = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10ffff)) ||
        (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* Append s with control characters (C0, DEL, C1) and bytes that are not
 * UTF-8 written as \n \t \r \xHH, so one value stays on one line and
 * cannot drive the terminal. tab: also escape the backslash, so that
 * tab-separated output can be read back without loss. */
static void escape_text(struct buf *b, const char *s, int tab)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        unsigned cp;
        size_t n = utf8_char(p, &cp);
        if (n == 0 || (cp >= 0x80 && cp < 0xa0)) {
            size_t k = n ? n : 1;
            for (size_t i = 0; i < k; i++)
                buf_printf(b, "\\x%02x", p[i]);
            p += k;
            continue;
        }
        if (*p == '\n')
            buf_adds(b, "\\n");
        else if (*p == '\t')
            buf_adds(b, "\\t");
        else if (*p == '\r')
            buf_adds(b, "\\r");
        else if (*p < 0x20 || *p == 0x7f)
            buf_printf(b, "\\x%02x", *p);
        else if (*p == '\\' && tab)
            buf_adds(b, "\\\\");
        else
            buf_add(b, p, n);
        p += n;
    }
}

/* Print s on f, escaped as for the table. */
static void put_text(FILE *f, const char *s)
{
    struct buf b;
    buf_init(&b);
    escape_text(&b, s, 0);
    fputs(b.data ? b.data : "", f);
    buf_free(&b);
}

/* Columns taken on a terminal by escaped (valid UTF-8) text. */
static size_t disp_width(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0;

    while (*p) {
        unsigned cp;
        size_t n = utf8_char(p, &cp);
        int cw = cp < 0x80 ? 1 : wcwidth((wchar_t)cp);
        w += cw < 0 ? 1 : (size_t)cw;
        p += n ? n : 1;
    }
    return w;
}

/* Append s as a JSON string: escapes for '"', '\' and control characters,
 * valid UTF-8 as it is, any other byte as U+FFFD. */
static void json_string(struct buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    buf_addc(b, '"');
    while (*p) {
        unsigned cp;
        size_t n = utf8_char(p, &cp);
        if (n == 0) {
            buf_adds(b, "\\ufffd");
            p++;
            continue;
        }
        switch (*p) {
        case '"': buf_adds(b, "\\\""); break;
        case '\\': buf_adds(b, "\\\\"); break;
        case '\b': buf_adds(b, "\\b"); break;
        case '\f': buf_adds(b, "\\f"); break;
        case '\n': buf_adds(b, "\\n"); break;
        case '\r': buf_adds(b, "\\r"); break;
        case '\t': buf_adds(b, "\\t"); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                buf_printf(b, "\\u%04x", *p);
            else
                buf_add(b, p, n);
        }
        p += n;
    }
    buf_addc(b, '"');
}

/* --- rows ------------------------------------------------------------------------ */

struct row {
    int n;                      /* fields */
    char **kv;                  /* key0, value0, key1, value1...; one allocation */
};

struct rows {
    struct row *v;
    size_t n, cap;
};

/* "* key=value ..." (line[0] is '*') into a row. */
static void add_row(struct rows *rs, struct adm_args *a, const char *line, size_t len)
{
    const char *why;
    struct row *r;
    char *text;

    if (len > 1 && line[1] != ' ')
        die(EX_SOFTWARE, "malformed row from mailrosterd (no space after '*')");
    if (adm_split(a, len > 1 ? line + 2 : "", len > 1 ? len - 2 : 0, &why) < 0)
        die(EX_SOFTWARE, "malformed row from mailrosterd: %s", why);
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 64;
        rs->v = xrealloc(rs->v, rs->cap * sizeof(*rs->v));
    }
    r = &rs->v[rs->n++];
    r->n = a->argc;
    r->kv = xmalloc(2 * (size_t)a->argc * sizeof(char *) + a->store.len + 1);
    text = (char *)(r->kv + 2 * a->argc);
    if (a->store.len)
        memcpy(text, a->store.data, a->store.len);
    for (int i = 0; i < a->argc; i++) {
        char *w = text + (a->argv[i] - a->store.data), *eq = strchr(w, '=');
        if (eq == NULL || eq == w)
            die(EX_SOFTWARE, "malformed row from mailrosterd (a field is not key=value)");
        *eq = 0;
        r->kv[2 * i] = w;
        r->kv[2 * i + 1] = eq + 1;
    }
}

static void rows_free(struct rows *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        free(rs->v[i].kv);
    free(rs->v);
}

static int same_keys(const struct row *a, const struct row *b)
{
    if (a->n != b->n)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->kv[2 * i], b->kv[2 * i]))
            return 0;
    return 1;
}

/* One line of the table: the keys (values 0) or the values of row r. */
static void print_line(const struct row *r, int values, const size_t *width, int tab,
                       struct buf *cell)
{
    for (int c = 0; c < r->n; c++) {
        buf_reset(cell);
        escape_text(cell, r->kv[2 * c + values], tab);
        fputs(cell->data, stdout);
        if (c == r->n - 1)
            break;
        if (tab) {
            putchar('\t');
        } else {
            for (size_t w = disp_width(cell->data); w < width[c] + 2; w++)
                putchar(' ');
        }
    }
    putchar('\n');
}

/* A header line of keys, then the rows, per run of rows with the same
 * keys; runs are separated by an empty line. */
static void print_table(const struct rows *rs, int tab)
{
    struct buf cell;
    size_t *width = NULL;

    buf_init(&cell);
    for (size_t g = 0, end; g < rs->n; g = end) {
        const struct row *h = &rs->v[g];
        for (end = g + 1; end < rs->n && same_keys(h, &rs->v[end]); end++)
            ;
        if (h->n == 0)
            continue;
        if (g > 0)
            putchar('\n');
        width = xrealloc(width, (size_t)h->n * sizeof(*width));
        for (int c = 0; c < h->n && !tab; c++) {
            buf_reset(&cell);
            escape_text(&cell, h->kv[2 * c], 0);
            width[c] = disp_width(cell.data);
            for (size_t i = g; i < end; i++) {
                buf_reset(&cell);
                escape_text(&cell, rs->v[i].kv[2 * c + 1], 0);
                size_t w = disp_width(cell.data);
                if (w > width[c])
                    width[c] = w;
            }
        }
        print_line(h, 0, width, tab, &cell);
        for (size_t i = g; i < end; i++)
            print_line(&rs->v[i], 1, width, tab, &cell);
    }
    free(width);
    buf_free(&cell);
}

static void print_json(const struct rows *rs)
{
    struct buf b;

    buf_init(&b);
    if (rs->n == 0) {
        fputs("[]\n", stdout);
        return;
    }
    buf_adds(&b, "[\n");
    for (size_t i = 0; i < rs->n; i++) {
        const struct row *r = &rs->v[i];
        buf_adds(&b, "  {");
        for (int c = 0; c < r->n; c++) {
            if (c)
                buf_adds(&b, ", ");
            json_string(&b, r->kv[2 * c]);
            buf_adds(&b, ": ");
            json_string(&b, r->kv[2 * c + 1]);
        }
        buf_adds(&b, i + 1 < rs->n ? "},\n" : "}\n");
        fwrite(b.data, 1, b.len, stdout);
        buf_reset(&b);
    }
    fputs("]\n", stdout);
    buf_free(&b);
}

/* --- the socket ------------------------------------------------------------------ */

static int admin_connect(const char *path)
{
    struct sockaddr_un sa;
    struct timeval tv = { IO_TIMEOUT, 0 };
    int fd;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path))
        die(EX_USAGE, "socket path %s is too long", path);
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die(EX_UNAVAILABLE, "cannot make a socket: %s", strerror(errno));
    /* on a unix socket the send timeout also bounds connect() to a full backlog */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
        die(EX_OSERR, "cannot set socket timeouts: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        if (e == EINTR) {
            /* the connection goes on in the background: wait for it */
            struct pollfd p = { fd, POLLOUT, 0 };
            socklen_t len = sizeof(e);
            int n;
            do
                n = poll(&p, 1, IO_TIMEOUT * 1000);
            while (n < 0 && errno == EINTR);
            if (n == 0)
                e = EAGAIN;
            else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                e = errno;
        }
        if (e == EAGAIN || e == EWOULDBLOCK || e == EINPROGRESS)
            die(EX_TEMPFAIL, "timed out connecting to mailrosterd at %s", path);
        if (e != 0)
            die(EX_UNAVAILABLE, "cannot connect to %s: %s", path, strerror(e));
    }
    return fd;
}

/* 0, or -1 with errno when the daemon closed its side (its answer may
 * still be there to read). */
static int send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                die(EX_TEMPFAIL, "timed out waiting for mailrosterd");
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A buffered line reader over the socket. */
struct reader {
    int fd;
    struct buf in;
    size_t pos;                 /* start of the data not yet returned */
};

/* The next line, newline (and a CR before it) cut off, NUL-terminated in
 * the reader's buffer and valid until the next call; NULL at the end of
 * the stream. */
static char *read_line(struct reader *r, size_t *len)
{
    for (;;) {
        size_t avail = r->in.len - r->pos;
        char *start = r->in.data + r->pos;
        char *nl = avail ? memchr(start, '\n', avail) : NULL;
        ssize_t n;

        if (nl != NULL) {
            size_t l = (size_t)(nl - start);
            if (l > ADM_MAX_LINE)
                break;
            *nl = 0;
            r->pos += l + 1;
            if (l > 0 && start[l - 1] == '\r')
                start[--l] = 0;
            *len = l;
            return start;
        }
        if (avail > ADM_MAX_LINE)
            break;
        if (r->pos > 0) {
            memmove(r->in.data, start, avail);
            r->in.len = avail;
            r->pos = 0;
        }
        buf_reserve(&r->in, 16384);
        n = read(r->fd, r->in.data + r->in.len, r->in.cap - r->in.len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                die(EX_TEMPFAIL, "timed out waiting for mailrosterd");
            if (errno == ECONNRESET)
                return NULL;
            die(EX_TEMPFAIL, "reading from mailrosterd: %s", strerror(errno));
        }
        if (n == 0)
            return NULL;
        r->in.len += (size_t)n;
        r->in.data[r->in.len] = 0;
    }
    die(EX_SOFTWARE, "mailrosterd sent a line longer than %d octets", ADM_MAX_LINE);
}

/* --- passwords ------------------------------------------------------------------- */

struct pwplan {
    const char *verb;           /* "add", "ensure", "passwd" */
    int from_stdin;
    const char *hash;           /* a ready hash */
    const char *hash_from;      /* where it came from, for messages */
    const char *scheme;         /* NULL: yescrypt */
    int cost;                   /* 0: not given */
    int prompt;                 /* ask on the terminal */
};

static volatile sig_atomic_t caught;

static void on_signal(int sig) { caught = sig; }

/* Read one line from fd into dst byte by byte, so that no copy of it is
 * left in a stdio buffer; a CR before the newline is cut off too. 1 a
 * line, 0 end of input before anything, -1 longer than cap - 1 bytes, -2
 * interrupted by a signal, -3 a read error (errno). */
static int read_secret(int fd, char *dst, size_t cap, size_t *len)
{
    *len = 0;
    dst[0] = 0;
    for (;;) {
        char extra;
        char *at = *len < cap - 1 ? dst + *len : &extra;
        ssize_t n = read(fd, at, 1);
        if (n < 0) {
            if (errno != EINTR)
                return -3;
            if (caught)
                return -2;
            continue;
        }
        if (n == 0) {
            if (*len == 0)
                return 0;
            break;
        }
        if (*at == '\n') {
            *at = 0;
            break;
        }
        if (at == &extra) {
            explicit_bzero(&extra, 1);
            return -1;
        }
        dst[++*len] = 0;
    }
    if (*len > 0 && dst[*len - 1] == '\r')
        dst[--*len] = 0;
    return 1;
}

/* Ask on the terminal (standard input) with echo off. Restores the
 * terminal when interrupted, then dies of the same signal. */
static int tty_ask(const char *prompt, char *dst, size_t cap, size_t *len)
{
    static const int sigs[] = { SIGINT, SIGHUP, SIGTERM, SIGQUIT, SIGTSTP };
    struct sigaction sa, old[sizeof(sigs) / sizeof(sigs[0])];
    struct termios saved, quiet;
    int rc, e;

    if (tcgetattr(STDIN_FILENO, &saved) < 0)
        die(EX_IOERR, "cannot read the terminal settings: %s", strerror(errno));
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;            /* no SA_RESTART: read() must return */
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        /* a stop would leave the terminal silent: ignore ^Z meanwhile */
        sa.sa_handler = sigs[i] == SIGTSTP ? SIG_IGN : on_signal;
        sigaction(sigs[i], &sa, &old[i]);
    }
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
    quiet.c_lflag |= ECHONL;
    fputs(prompt, stderr);
    fflush(stderr);
    if (caught)
        rc = -2;
    else if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0)
        rc = -3;
    else
        rc = read_secret(STDIN_FILENO, dst, cap, len);
    e = errno;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &old[i], NULL);
    errno = e;
    if (rc == -2) {
        explicit_bzero(dst, cap);
        fputc('\n', stderr);
        raise(caught);
        die(128 + caught, "interrupted");
    }
    if (rc == 0)
        fputc('\n', stderr);    /* ^D: ECHONL saw no newline */
    return rc;
}

static void secret_fail(int rc, const char *where)
{
    if (rc == -1)
        die(EX_DATAERR, "the password from %s is longer than %d bytes", where, PW_BUF - 1);
    if (rc == -3)
        die(EX_IOERR, "reading the password from %s: %s", where, strerror(errno));
}

/* Get the password as planned and append its hash to out. */
static void make_hash(const struct pwplan *pw, struct buf *out)
{
    char *plain = xmalloc(PW_BUF), *again = NULL;
    const char *why;
    size_t len, len2;
    int rc;

    if (pw->from_stdin) {
        rc = read_secret(STDIN_FILENO, plain, PW_BUF, &len);
        if (rc < 0) {
            explicit_bzero(plain, PW_BUF);
            secret_fail(rc, "standard input");
        }
    } else {
        again = xmalloc(PW_BUF);
        rc = tty_ask("Password: ", plain, PW_BUF, &len);
        if (rc >= 0 && len > 0)
            rc = tty_ask("Retype password: ", again, PW_BUF, &len2);
        else
            len2 = len;
        if (rc < 0 || len != len2 || memcmp(plain, again, len)) {
            explicit_bzero(plain, PW_BUF);
            explicit_bzero(again, PW_BUF);
            secret_fail(rc, "the terminal");
            die(EX_DATAERR, "the passwords do not match");
        }
        explicit_bzero(again, PW_BUF);
        free(again);
    }
    if (len > 0 && strlen(plain) != len) {
        explicit_bzero(plain, PW_BUF);
        die(EX_DATAERR, "the password has a NUL byte");
    }
    rc = pw_hash_make(pw->scheme, pw->cost ? pw->cost : PW_BCRYPT_COST_DEFAULT, plain, out, &why);
    explicit_bzero(plain, PW_BUF);
    free(plain);
    if (rc < 0)
        die(EX_DATAERR, "%s", why);
}

static int opt_value(int n, char **w, int *i, const char *name, const char **val)
{
    size_t l = strlen(name);

    if (strncmp(w[*i], name, l) || (w[*i][l] != 0 && w[*i][l] != '='))
        return 0;
    if (*val != NULL)
        die(EX_USAGE, "%s given twice", name);
    if (w[*i][l] == '=') {
        *val = w[*i] + l + 1;
    } else {
        if (*i + 1 >= n)
            die(EX_USAGE, "%s needs a value", name);
        *val = w[++*i];
    }
    return 1;
}

/* The command words of "user add|ensure|passwd" minus the password
 * options, into out[]; the plan for the password into *pw. */
static int plan_password(int n, char **w, const char **out, struct pwplan *pw)
{
    const char *cost = NULL, *hash_opt = NULL, *hash_word = NULL;
    int passwd = !strcmp(w[1], "passwd"), nout = 2, npos;

    memset(pw, 0, sizeof(*pw));
    pw->verb = w[1];
    out[0] = w[0];
    out[1] = w[1];
    for (int i = 2; i < n; i++) {
        if (!strcmp(w[i], "--password-stdin")) {
            if (pw->from_stdin)
                die(EX_USAGE, "--password-stdin given twice");
            pw->from_stdin = 1;
        } else if (opt_value(n, w, &i, "--password-hash", &hash_opt) ||
                   opt_value(n, w, &i, "--scheme", &pw->scheme) ||
                   opt_value(n, w, &i, "--bcrypt-cost", &cost)) {
            continue;
        } else if (!strncmp(w[i], "--pass", 6)) {
            /* never send what may be a password in clear */
            die(EX_USAGE, "unknown option %.*s; the password options are --password-stdin "
                "and --password-hash", (int)strcspn(w[i], "="), w[i]);
        } else if (!passwd && !strncmp(w[i], "password=", 9)) {
            if (hash_word != NULL)
                die(EX_USAGE, "password= given twice");
            hash_word = w[i] + 9;
        } else {
            out[nout++] = w[i];
        }
    }
    npos = nout - 2;
    if (npos == 0 || (passwd && npos > 2))
        die(EX_USAGE, "usage: mailroster user %s ADDRESS %s", pw->verb,
            passwd ? "[HASH | --password-stdin | --password-hash HASH | --scheme SCHEME]"
                   : "[key=value...] [--password-stdin | --password-hash HASH | --scheme SCHEME]");
    if (passwd && npos == 2)
        hash_word = out[--nout];
    if (hash_opt != NULL && hash_word != NULL)
        die(EX_USAGE, "two password hashes given");
    pw->hash = hash_opt ? hash_opt : hash_word;
    pw->hash_from = hash_opt ? "--password-hash" : passwd ? "the HASH word" : "password=";
    if (pw->hash != NULL && (pw->from_stdin || pw->scheme || cost))
        die(EX_USAGE, "a ready password hash cannot be combined with --password-stdin, "
            "--scheme or --bcrypt-cost");
    if (pw->scheme && strcmp(pw->scheme, "yescrypt") && strcmp(pw->scheme, "bcrypt") &&
        strcmp(pw->scheme, "sha512"))
        die(EX_USAGE, "unknown --scheme %s; use yescrypt, bcrypt or sha512", pw->scheme);
    if (cost != NULL) {
        char *end;
        long c = strtol(cost, &end, 10);
        if (*cost < '0' || *cost > '9' || *end || c < PW_BCRYPT_COST_MIN || c > PW_BCRYPT_COST_MAX)
            die(EX_USAGE, "--bcrypt-cost must be a number from 4 to 31");
        if (pw->scheme == NULL || strcmp(pw->scheme, "bcrypt"))
            die(EX_USAGE, "--bcrypt-cost needs --scheme bcrypt");
        pw->cost = (int)c;
    }
    if (pw->hash != NULL) {
        const char *why;
        if (!pw_hash_check(pw->hash, &why))
            die(EX_DATAERR, "%s refused: %s (to set a password, use --password-stdin or the prompt)",
                pw->hash_from, why);
    } else if (!pw->from_stdin) {
        if (isatty(STDIN_FILENO))
            pw->prompt = 1;
        else if (passwd)
            die(EX_USAGE, "user passwd: no terminal to ask for the password on; use "
                "--password-stdin or --password-hash");
        else if (pw->scheme || cost)
            die(EX_USAGE, "--scheme and --bcrypt-cost need a password: no terminal to ask on; "
                "use --password-stdin");
        else if (verbose)
            fprintf(stderr, "mailroster: no password given and no terminal: the mailbox cannot "
                    "log in until one is set (user passwd)\n");
    }
    return nout;
}

/* Any other "user" command: a password= word must be a hash, checked here
 * so that a password typed in clear is not sent. */
static void guard_password_words(int n, char **w)
{
    const char *why;

    for (int i = 2; i < n; i++) {
        if (!strncmp(w[i], "--pass", 6))
            die(EX_USAGE, "unknown option %.*s; password options are for user add, ensure and "
                "passwd", (int)strcspn(w[i], "="), w[i]);
        if (!strncmp(w[i], "password=", 9) && !pw_hash_check(w[i] + 9, &why))
            die(EX_DATAERR, "password= refused: %s (to set a password, use user passwd)", why);
    }
}

/* --- main ------------------------------------------------------------------------ */

/* import [--dry-run] [FILE]: the file goes between "import begin" and
 * "import commit" as "import data" frames of whole lines, as they are
 * (blank lines too, so that the line numbers in the answers are the
 * file's), each answered with the lines so far; a daemon that does not
 * offer frames in its answer to "import begin" gets "import line"
 * requests, a batch at a time. The answers to all but the commit are
 * checked and dropped here. */
#define IMPORT_BATCH 500
#define IMPORT_FRAME (1024 * 1024)

/* One answer during the import: an error ends the command. */
static void import_answer(const char *line)
{
    if (line == NULL)
        die(EX_TEMPFAIL, "mailrosterd closed the connection during the import");
    if (!strncmp(line, "ERR ", 4)) {
        size_t cl = strcspn(line + 4, " ");
        char code[32];
        snprintf(code, sizeof(code), "%.*s", (int)(cl < 31 ? cl : 31), line + 4);
        fputs("mailroster: ", stderr);
        put_text(stderr, line[4 + cl] ? line + 5 + cl : code);
        fputc('\n', stderr);
        exit(err_exit(code));
    }
    if (strncmp(line, "OK", 2) != 0)
        die(EX_SOFTWARE, "unexpected answer from mailrosterd during the import");
}

static void import_expect(struct reader *rd, size_t n)
{
    size_t len;
    for (size_t i = 0; i < n; i++)
        import_answer(read_line(rd, &len));
}

/* Send what req holds: as one "import data" frame, or as it is. */
static void import_flush(int fd, struct buf *req, int frames)
{
    if (frames) {
        char head[48];
        int hl = snprintf(head, sizeof(head), "import data %zu\n", req->len);
        if (send_all(fd, head, (size_t)hl) < 0)
            die(EX_TEMPFAIL, "sending to mailrosterd: %s", strerror(errno));
    }
    if (send_all(fd, req->data, req->len) < 0)
        die(EX_TEMPFAIL, "sending to mailrosterd: %s", strerror(errno));
    buf_reset(req);
}

static void send_import(int fd, struct reader *rd, int argc, char **argv)
{
    const char *path = "-";
    int dry = 0, frames;
    FILE *fp;
    struct buf req;
    char *line = NULL, *begun;
    size_t cap = 0, pending = 0, lines = 0, len;
    ssize_t n;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dry-run"))
            dry = 1;
        else if (path[0] == '-' && path[1] == 0 && (strcmp(argv[i], "-") == 0 || argv[i][0] != '-'))
            path = argv[i];
        else
            die(EX_USAGE, "usage: mailroster import [--dry-run] [FILE]");
    }
    fp = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (fp == NULL)
        die(EX_NOINPUT, "%s: %s", path, strerror(errno));
    if (send_all(fd, "import begin\n", 13) < 0)
        die(EX_TEMPFAIL, "sending to mailrosterd: %s", strerror(errno));
    begun = read_line(rd, &len);
    import_answer(begun);
    frames = strstr(begun, "\"import data") != NULL;
    buf_init(&req);
    while ((n = getline(&line, &cap, fp)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        lines++;
        if (memchr(line, 0, (size_t)n) != NULL)
            die(EX_DATAERR, "%s: line %zu has a NUL byte", path, lines);
        if (frames) {
            /* (a line longer than a frame goes in a frame of its own) */
            if (req.len > 0 && req.len + (size_t)n + 1 > IMPORT_FRAME) {
                import_flush(fd, &req, 1);
                if (++pending >= 2) {   /* one frame in flight beside the one being read */
                    import_expect(rd, 1);
                    pending--;
                }
            }
            buf_add(&req, line, (size_t)n);
            buf_addc(&req, '\n');
            continue;
        }
        if (n == 0)
            continue;
        buf_adds(&req, "import line ");
        adm_quote(&req, line);
        buf_addc(&req, '\n');
        if (++pending >= IMPORT_BATCH) {
            import_flush(fd, &req, 0);
            import_expect(rd, pending);
            pending = 0;
        }
    }
    if (ferror(fp))
        die(EX_IOERR, "%s: %s", path, strerror(errno));
    if (fp != stdin)
        fclose(fp);
    free(line);
    if (req.len > 0) {
        pending += frames;
        import_flush(fd, &req, frames);
    }
    import_expect(rd, pending);
    buf_adds(&req, dry ? "import commit --dry-run\n" : "import commit\n");
    /* one transaction over the whole file: give it an hour, not 30 s */
    struct timeval tv = { 3600, 0 };
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
        die(EX_OSERR, "cannot set the socket timeout: %s", strerror(errno));
    if (send_all(fd, req.data, req.len) < 0)
        die(EX_TEMPFAIL, "sending to mailrosterd: %s", strerror(errno));
    buf_free(&req);
}

static int err_exit(const char *code)
{
    static const struct {
        const char *code;
        int ex;
    } map[] = {
        { "bad-input", EX_DATAERR },   { "not-found", EX_NOUSER },
        { "exists", EX_CANTCREAT },    { "conflict", EX_DATAERR },
        { "refused", EX_NOPERM },      { "unavailable", EX_TEMPFAIL },
        { "usage", EX_USAGE },         { "unknown-command", EX_USAGE },
        { "internal", EX_SOFTWARE },
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(code, map[i].code))
            return map[i].ex;
    return EX_SOFTWARE;
}

/* "sieve set ADDRESS FILE|-": the script's text, which goes as one word of
 * the request (escaped: a request line holds at most ADM_MAX_LINE). */
static char *read_script(const char *path)
{
    struct buf b;
    char chunk[4096];
    size_t n;
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (f == NULL)
        die(EX_NOINPUT, "%s: %s", path, strerror(errno));
    buf_init(&b);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (memchr(chunk, 0, n) != NULL)
            die(EX_DATAERR, "%s: a Sieve script is text; this has a NUL byte", path);
        buf_add(&b, chunk, n);
        if (b.len > ADM_MAX_LINE)
            break;
    }
    if (ferror(f))
        die(EX_IOERR, "%s: %s", path, strerror(errno));
    if (f != stdin)
        fclose(f);
    if (b.len == 0)
        die(EX_DATAERR, "%s: empty (to remove a script: sieve remove ADDRESS)", path);
    struct buf quoted;
    buf_init(&quoted);
    adm_quote(&quoted, b.data);
    if (quoted.len > ADM_MAX_LINE - 1024)   /* room for the command and the address */
        die(EX_DATAERR, "%s: too long for a request (%zu octets written out; at most %d)", path, quoted.len,
            ADM_MAX_LINE - 1024);
    buf_free(&quoted);
    return b.data;      /* the caller's */
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *sock = getenv("MAILROSTER_SOCKET"), *fmt_name = NULL;
    enum format fmt;
    const char **words;
    char *script = NULL;        /* sieve set: the file's text */
    struct pwplan pw;
    int has_pw = 0, nwords, hash_at = -1, c, fd, send_failed, send_errno = 0;
    struct buf req, shown, hash;
    struct reader rd;
    struct adm_args args;
    struct rows rows = { NULL, 0, 0 };
    char *line, *ok_text = NULL, *err_code = NULL, *err_text = NULL;
    size_t len;
    int ex = 0;

    log_init("mailroster", 1);
    setlocale(LC_CTYPE, "");
    if (sock == NULL || *sock == 0)
        sock = DEFAULT_SOCKET;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:s:f:vhV", longopts, NULL)) != -1) {
        switch (c) {
        case 's': sock = optarg; break;
        case 'f': fmt_name = optarg; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("%s\n", PACKAGE_STRING); return 0;
        case ':':
            die(EX_USAGE, "option %s needs a value; see mailroster -h", argv[optind - 1]);
        default:
            if (optopt)
                die(EX_USAGE, "unknown option -%c; see mailroster -h", optopt);
            die(EX_USAGE, "unknown option %s; see mailroster -h", argv[optind - 1]);
        }
    }
    if (fmt_name == NULL)
        fmt = isatty(STDOUT_FILENO) ? F_TABLE : F_TAB;
    else if (!strcmp(fmt_name, "table"))
        fmt = F_TABLE;
    else if (!strcmp(fmt_name, "tab"))
        fmt = F_TAB;
    else if (!strcmp(fmt_name, "json"))
        fmt = F_JSON;
    else
        die(EX_USAGE, "unknown format %s; use table, tab or json", fmt_name);
    argv += optind;
    argc -= optind;
    if (argc == 0) {
        usage(stderr);
        return EX_USAGE;
    }
    if (!strcmp(argv[0], "db"))
        return db_command(argc, argv);
    if (!strcmp(argv[0], "verify"))
        return verify_command(argc, argv, sock);   /* old maps against mailrosterd: verify.c */
    if (!strcmp(argv[0], "setup"))
        return setup_command(argc, argv);   /* execs mailroster-setup(8) */

    rd.fd = -1;
    buf_init(&rd.in);
    rd.pos = 0;
    if (!strcmp(argv[0], "import"))
        argv = import_from(&argc, argv);   /* --from FORMAT SOURCE: run that importer first */
    if (!strcmp(argv[0], "import")) {
        /* a stream of requests, then the commit's answer as usual */
        fd = admin_connect(sock);
        rd.fd = fd;
        send_import(fd, &rd, argc, argv);
        send_failed = 0;
        goto answer;
    }

    /* the words to send; the password options stay here */
    words = xcalloc((size_t)argc + 1, sizeof(*words));
    if (argc >= 2 && !strcmp(argv[0], "user") &&
        (!strcmp(argv[1], "add") || !strcmp(argv[1], "ensure") || !strcmp(argv[1], "passwd"))) {
        nwords = plan_password(argc, argv, words, &pw);
        has_pw = pw.hash || pw.from_stdin || pw.prompt;
    } else {
        if (!strcmp(argv[0], "user"))
            guard_password_words(argc, argv);
        for (nwords = 0; nwords < argc; nwords++)
            words[nwords] = argv[nwords];
        if (argc == 4 && !strcmp(argv[0], "sieve") && !strcmp(argv[1], "set"))
            words[3] = script = read_script(argv[3]);    /* the file's text is the word */
    }

    fd = admin_connect(sock);

    buf_init(&hash);
    if (has_pw) {
        if (strcmp(pw.verb, "passwd"))
            buf_adds(&hash, "password=");
        if (pw.hash)
            buf_adds(&hash, pw.hash);
        else
            make_hash(&pw, &hash);
        hash_at = nwords;
        words[nwords++] = hash.data;
    }
    if (nwords > ADM_MAX_ARGS)
        die(EX_USAGE, "too many words (at most %d)", ADM_MAX_ARGS);
    buf_init(&req);
    buf_init(&shown);
    for (int i = 0; i < nwords; i++) {
        if (i > 0) {
            buf_addc(&req, ' ');
            buf_addc(&shown, ' ');
        }
        adm_quote(&req, words[i]);
        if (i == hash_at)
            buf_adds(&shown, strcmp(pw.verb, "passwd") ? "password=(hash)" : "(hash)");
        else
            adm_quote(&shown, words[i]);
    }
    if (req.len > ADM_MAX_LINE)
        die(EX_USAGE, "the request is longer than %d octets", ADM_MAX_LINE);
    if (verbose) {
        fputs("mailroster: request: ", stderr);
        put_text(stderr, shown.data);
        fputc('\n', stderr);
    }
    buf_addc(&req, '\n');
    send_failed = send_all(fd, req.data, req.len) < 0;
    if (send_failed)
        send_errno = errno;
    buf_free(&req);
    buf_free(&shown);
    buf_free(&hash);
    free(words);
    free(script);

    /* rows, then OK or ERR */
    rd.fd = fd;
answer:
    adm_args_init(&args);
    for (;;) {
        line = read_line(&rd, &len);
        if (line == NULL) {
            if (send_failed)
                die(EX_TEMPFAIL, "mailrosterd closed the connection: %s", strerror(send_errno));
            die(EX_TEMPFAIL, "mailrosterd closed the connection before its answer was complete");
        }
        if (line[0] == '*') {
            add_row(&rows, &args, line, len);
        } else if (!strncmp(line, "OK", 2) && (line[2] == 0 || line[2] == ' ')) {
            ok_text = xstrdup(line[2] ? line + 3 : "");
            break;
        } else if (!strncmp(line, "ERR ", 4)) {
            size_t cl = strcspn(line + 4, " ");
            err_code = xstrndup(line + 4, cl);
            err_text = xstrdup(line[4 + cl] && line[5 + cl] ? line + 5 + cl : err_code);
            break;
        } else {
            char shown_line[200];
            die(EX_SOFTWARE, "unexpected answer from mailrosterd: %s",
                log_printable(shown_line, sizeof(shown_line), line, len));
        }
    }
    close(fd);
    adm_args_free(&args);
    buf_free(&rd.in);

    if (err_code != NULL) {
        /* rows before an error are not an answer: none are printed */
        ex = err_exit(err_code);
        fputs("mailroster: ", stderr);
        put_text(stderr, err_text);
        if (verbose) {
            fputs(" (", stderr);
            put_text(stderr, err_code);
            fputc(')', stderr);
        }
        fputc('\n', stderr);
    } else if (!strcmp(argv[0], "export")) {
        /* JSON lines, as they are: what import reads back */
        for (size_t i = 0; i < rows.n; i++)
            for (int k = 0; k < rows.v[i].n; k++)
                if (!strcmp(rows.v[i].kv[2 * k], "json"))
                    printf("%s\n", rows.v[i].kv[2 * k + 1]);
        /* a read-only export has no hashes: say so where a person reads it */
        if (ok_text && strstr(ok_text, "left out")) {
            fflush(stdout);
            fputs("mailroster: ", stderr);
            put_text(stderr, ok_text);
            fputc('\n', stderr);
        }
    } else {
        if (fmt == F_JSON)
            print_json(&rows);
        else
            print_table(&rows, fmt == F_TAB);
        if (rows.n == 0 && fmt != F_JSON && *ok_text) {
            put_text(stdout, ok_text);
            putchar('\n');
        } else if ((verbose || !strcmp(argv[0], "import")) && *ok_text) {
            fflush(stdout);
            fputs("mailroster: ", stderr);
            put_text(stderr, ok_text);
            fputc('\n', stderr);
        }
    }
    rows_free(&rows);
    free(ok_text);
    free(err_code);
    free(err_text);
    if (fflush(stdout) != 0 || ferror(stdout))
        die(EX_IOERR, "writing the answer: %s", strerror(errno));
    return ex;
}
