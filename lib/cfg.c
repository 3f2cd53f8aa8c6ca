/* cfg.c - Postfix-style configuration parser. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "mem.h"

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

static int parse_long(const char *v, long *out, int time_units)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (end == v || errno != 0)
        return -1;
    if (time_units && *end) {
        long mul;
        switch (*end) {
        case 's': mul = 1; break;
        case 'm': mul = 60; break;
        case 'h': mul = 3600; break;
        case 'd': mul = 86400; break;
        default: return -1;
        }
        if (n > 0x7fffffffL / mul || n < -0x7fffffffL / mul)
            return -1;
        n *= mul;
        end++;
    }
    if (*end)
        return -1;
    *out = n;
    return 0;
}

static int cfg_set(const struct cfg_def *d, void *target, const char *value, struct buf *why)
{
    char *base = (char *)target + d->offset;
    long n;

    switch (d->type) {
    case CFG_STR: {
        char **sp = (char **)(void *)base;
        free(*sp);
        *sp = xstrdup(value);
        return 0;
    }
    case CFG_BOOL:
        if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "1"))
            *(int *)(void *)base = 1;
        else if (!strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "0"))
            *(int *)(void *)base = 0;
        else {
            buf_printf(why, "'%s' is not yes or no", value);
            return -1;
        }
        return 0;
    case CFG_MODE: {
        char *end;
        errno = 0;
        n = strtol(value, &end, 8);
        if (end == value || *end || errno || n < 0 || n > 07777) {
            buf_printf(why, "'%s' is not an octal file mode", value);
            return -1;
        }
        *(int *)(void *)base = (int)n;
        return 0;
    }
    case CFG_INT:
    case CFG_TIME:
        if (parse_long(value, &n, d->type == CFG_TIME) < 0) {
            buf_printf(why, "'%s' is not %s", value,
                       d->type == CFG_TIME ? "a time (e.g. 30s, 5m, 1h)" : "a whole number");
            return -1;
        }
        if (n < d->min || n > d->max) {
            buf_printf(why, "%ld is outside %ld..%ld", n, d->min, d->max);
            return -1;
        }
        *(int *)(void *)base = (int)n;
        return 0;
    }
    return -1;
}

void cfg_defaults(const struct cfg_def *defs, void *target)
{
    struct buf why;
    buf_init(&why);
    for (const struct cfg_def *d = defs; d->name; d++) {
        if (d->type == CFG_STR)
            *(char **)(void *)((char *)target + d->offset) = NULL;
        if (cfg_set(d, target, d->defval ? d->defval : "", &why) < 0)
            abort(); /* a bad default is a programming error */
    }
    buf_free(&why);
}

void cfg_free(const struct cfg_def *defs, void *target)
{
    for (const struct cfg_def *d = defs; d->name; d++)
        if (d->type == CFG_STR) {
            char **sp = (char **)(void *)((char *)target + d->offset);
            free(*sp);
            *sp = NULL;
        }
}

/* Apply one logical line (continuations already joined). */
static int cfg_line(const char *line, size_t len, const char *fname, int lineno,
                    const struct cfg_def *defs, void *target, struct buf *err)
{
    const char *eq = memchr(line, '=', len);
    size_t klen, vstart, vend;
    struct buf key, val, why;
    int rc = -1;

    if (eq == NULL) {
        buf_printf(err, "%s:%d: missing '=' in \"%.*s\"", fname, lineno, (int)(len > 60 ? 60 : len), line);
        return -1;
    }
    klen = (size_t)(eq - line);
    while (klen > 0 && is_space(line[klen - 1]))
        klen--;
    vstart = (size_t)(eq - line) + 1;
    vend = len;
    while (vstart < vend && (is_space(line[vstart]) || line[vstart] == '\n'))
        vstart++;
    while (vend > vstart && (is_space(line[vend - 1]) || line[vend - 1] == '\n'))
        vend--;
    buf_init(&key);
    buf_init(&val);
    buf_init(&why);
    buf_add(&key, line, klen);
    /* continuation newlines become single spaces */
    for (size_t i = vstart; i < vend; i++)
        buf_addc(&val, line[i] == '\n' ? ' ' : line[i]);
    if (klen == 0) {
        buf_printf(err, "%s:%d: missing parameter name", fname, lineno);
        goto out;
    }
    if (memchr(val.data ? val.data : "", 0, val.len) != NULL) {
        buf_printf(err, "%s:%d: NUL byte in value", fname, lineno);
        goto out;
    }
    for (const struct cfg_def *d = defs; d->name; d++) {
        if (strlen(d->name) == klen && memcmp(d->name, line, klen) == 0) {
            if (cfg_set(d, target, val.data ? val.data : "", &why) < 0) {
                buf_printf(err, "%s:%d: bad value for %s: %s", fname, lineno, d->name, why.data);
                goto out;
            }
            rc = 0;
            goto out;
        }
    }
    buf_printf(err, "%s:%d: unknown parameter '%.*s'", fname, lineno, (int)(klen > 64 ? 64 : klen), line);
out:
    buf_free(&key);
    buf_free(&val);
    buf_free(&why);
    return rc;
}

int cfg_parse(const char *text, size_t len, const char *fname,
              const struct cfg_def *defs, void *target, struct buf *err)
{
    struct buf logical;
    int start_line = 0, lineno = 0, rc = 0;
    size_t pos = 0;

    buf_init(&logical);
    buf_reset(err);
    while (pos < len && rc == 0) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - (text + pos)) : len - pos;
        const char *line = text + pos;
        size_t i = 0;

        lineno++;
        pos += llen + (nl ? 1 : 0);
        while (i < llen && is_space(line[i]))
            i++;
        if (i == llen || line[i] == '#')
            continue; /* blank or comment line */
        if (i > 0) {
            if (logical.len == 0) {
                buf_printf(err, "%s:%d: continuation line without a parameter", fname, lineno);
                rc = -1;
                break;
            }
            buf_addc(&logical, '\n');
            buf_add(&logical, line + i, llen - i);
            continue;
        }
        if (logical.len)
            rc = cfg_line(logical.data, logical.len, fname, start_line, defs, target, err);
        buf_reset(&logical);
        buf_add(&logical, line, llen);
        start_line = lineno;
    }
    if (rc == 0 && logical.len)
        rc = cfg_line(logical.data, logical.len, fname, start_line, defs, target, err);
    buf_free(&logical);
    return rc;
}

/* Who may have written the file: it names the database (perhaps with a
 * password) and the files the daemon trusts. Root or the daemon itself may
 * own it; no one else may write it, nor a group other than root's. */
static int cfg_check(int fd, const char *path, size_t max, struct buf *err)
{
    struct stat st;
    char eb[128];

    if (fstat(fd, &st) < 0) {
        buf_printf(err, "stat %s: %s", path, strerror_r(errno, eb, sizeof(eb)));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        buf_printf(err, "%s: refused: %s, not a regular file", path,
                   S_ISDIR(st.st_mode) ? "a directory" : S_ISCHR(st.st_mode) ? "a character device"
                   : S_ISBLK(st.st_mode) ? "a block device" : S_ISFIFO(st.st_mode) ? "a FIFO"
                   : S_ISSOCK(st.st_mode) ? "a socket" : "a special file");
        return -1;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        buf_printf(err, "%s: refused: owned by uid %u, not by root or the daemon's uid %u", path,
                   (unsigned)st.st_uid, (unsigned)geteuid());
        return -1;
    }
    if ((st.st_mode & S_IWOTH) || ((st.st_mode & S_IWGRP) && st.st_gid != 0)) {
        buf_printf(err, "%s: refused: mode %04o lets %s write it", path, (unsigned)(st.st_mode & 07777),
                   st.st_mode & S_IWOTH ? "others" : "a group other than root's");
        return -1;
    }
    if ((uintmax_t)st.st_size > max) {
        buf_printf(err, "%s: refused: %jd bytes, more than the limit of %zu bytes", path,
                   (intmax_t)st.st_size, max);
        return -1;
    }
    return 0;
}

int cfg_read_file(const char *path, size_t max, struct buf *text, struct buf *err)
{
    char eb[128];
    size_t got = 0;
    int fd;

    buf_reset(err);
    /* O_NONBLOCK: opening a FIFO must not wait for a writer */
    fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        buf_printf(err, "open %s: %s", path, strerror_r(errno, eb, sizeof(eb)));
        return -1;
    }
    if (cfg_check(fd, path, max, err) < 0) {
        close(fd);
        return -1;
    }
    /* read at most max + 1 bytes: the file may grow after fstat */
    for (;;) {
        size_t want = max + 1 - got;
        ssize_t n;
        if (want > 8192)
            want = 8192;
        buf_reserve(text, want);
        n = read(fd, text->data + text->len, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            buf_printf(err, "read %s: %s", path, strerror_r(errno, eb, sizeof(eb)));
            break;
        }
        if (n == 0) {
            close(fd);
            return 0;
        }
        text->len += (size_t)n;
        text->data[text->len] = 0;
        got += (size_t)n;
        if (got > max) {
            buf_printf(err, "%s: refused: it grew past the limit of %zu bytes while read", path, max);
            break;
        }
    }
    close(fd);
    return -1;
}

int cfg_load(const char *path, const struct cfg_def *defs, void *target, struct buf *err)
{
    struct buf text;
    int rc;

    buf_init(&text);
    rc = cfg_read_file(path, CFG_MAX_SIZE, &text, err);
    if (rc == 0)
        rc = cfg_parse(text.data ? text.data : "", text.len, path, defs, target, err);
    buf_free(&text);
    return rc;
}
