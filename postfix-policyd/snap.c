/* snap.c - directory snapshot file: format, parse, atomic write, checked
 * read. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "codec.h"
#include "log.h"
#include "mem.h"
#include "snap.h"

#define SNAP_MAGIC "mailroster-snapshot"
#define SUM_NAME "sha256"
#define SUM_HEX 64              /* SHA-256 in hex */
#define FLUSH_AT (1u << 20)     /* hand the output over a megabyte at a time */

/* strerror is not thread-safe, and snap_write and snap_read run off the
 * event loop: the GNU strerror_r (config.h defines _GNU_SOURCE). */
static const char *errstr(int e, char *tmp, size_t n)
{
    return strerror_r(e, tmp, n);
}

/* --- checksum ------------------------------------------------------------- */

/* A SHA-256 context; like xmalloc, no memory for it is fatal. */
static EVP_MD_CTX *sum_new(void)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
        msg_fatal("cannot set up SHA-256 (libcrypto)");
    return c;
}

static void sum_add(EVP_MD_CTX *c, const void *p, size_t n)
{
    if (n > 0 && EVP_DigestUpdate(c, p, n) != 1)
        msg_fatal("SHA-256 update failed (libcrypto)");
}

/* Finish c into hex (lowercase, NUL-terminated) and free it. */
static void sum_end(EVP_MD_CTX *c, char hex[SUM_HEX + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    static const char dig[] = "0123456789abcdef";

    if (EVP_DigestFinal_ex(c, md, &n) != 1 || n * 2 != SUM_HEX)
        msg_fatal("SHA-256 final failed (libcrypto)");
    for (unsigned int i = 0; i < n; i++) {
        hex[2 * i] = dig[md[i] >> 4];
        hex[2 * i + 1] = dig[md[i] & 15];
    }
    hex[SUM_HEX] = 0;
    EVP_MD_CTX_free(c);
}

/* --- format --------------------------------------------------------------- */

/* A database identity as PostgreSQL prints a uuid: 8-4-4-4-12 lowercase
 * hex digits. Nothing else goes into or comes out of the header. */
static int snap_dbid_ok(const char *id)
{
    size_t i;
    for (i = 0; id[i] != 0 && i < DIR_DBID_SIZE - 1; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? id[i] != '-' : !((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    }
    return i == DIR_DBID_SIZE - 1 && id[i] == 0;
}

static void put_str(struct buf *out, const char *s)
{
    buf_addc(out, ' ');
    if (s == NULL) {
        buf_addc(out, '-');
        return;
    }
    buf_addc(out, '=');
    hexq_encode(out, s, strlen(s));
}

/* Where the formatted text goes: out, summed as it grows; with flush,
 * handed over whenever it holds a megabyte, so a million records never sit
 * in memory twice. */
struct emitter {
    struct buf *out;
    EVP_MD_CTX *sum;
    size_t summed;              /* bytes of out already in sum */
    int (*flush)(void *, struct buf *);
    void *arg;
};

/* After a line: sum and hand over what out holds, if it is time (or last). */
static int emit_step(struct emitter *e, int last)
{
    if (!last && e->out->len < FLUSH_AT)
        return 0;
    sum_add(e->sum, e->out->data + e->summed, e->out->len - e->summed);
    e->summed = e->out->len;
    if (e->flush == NULL)
        return 0;
    if (e->flush(e->arg, e->out) < 0)
        return -1;
    e->summed = e->out->len; /* flush empties out */
    return 0;
}

static int snap_records(const struct dir *d, struct emitter *e)
{
    struct buf *out = e->out;
    size_t n = 0, i;
    const void *rec;

    buf_printf(out, "%s %d %" PRIu64 " %s\n", SNAP_MAGIC, SNAP_VERSION, d->seq,
               snap_dbid_ok(d->db_id) ? d->db_id : "-");
    for (i = 0; (rec = htab_next(&d->dom_id, &i)) != NULL; n++) {
        const struct dir_domain *r = rec;
        buf_printf(out, "D %" PRIu64 " %d %" PRId64 " %" PRId64 " %d %d %d", r->id, r->enabled,
                   r->quota_bytes, r->quota_messages, r->limit_messages, r->limit_recipients,
                   r->limit_window);
        put_str(out, r->name);
        put_str(out, r->disabled_reason);
        buf_addc(out, '\n');
        if (emit_step(e, 0) < 0)
            return -1;
    }
    for (i = 0; (rec = htab_next(&d->mbox_id, &i)) != NULL; n++) {
        const struct dir_mailbox *r = rec;
        buf_printf(out, "M %" PRIu64 " %" PRIu64 " %d %d %d %u %" PRId64 " %" PRId64 " %d %d %d %d",
                   r->id, r->domain_id, r->enabled, r->may_send, r->may_receive, r->services,
                   r->quota_bytes, r->quota_messages, r->limit_messages, r->limit_recipients,
                   r->uid, r->gid);
        put_str(out, r->address);
        put_str(out, r->password);
        put_str(out, r->home);
        put_str(out, r->mail);
        put_str(out, r->maildir);
        put_str(out, r->disabled_reason);
        put_str(out, r->send_suspended ? (r->suspended_reason ? r->suspended_reason : "") : NULL);
        buf_printf(out, " %d", r->keep_copy);
        put_str(out, r->forward);
        buf_addc(out, '\n');
        if (emit_step(e, 0) < 0)
            return -1;
    }
    for (i = 0; (rec = htab_next(&d->alias_id, &i)) != NULL; n++) {
        const struct dir_alias *r = rec;
        buf_printf(out, "A %" PRIu64 " %" PRIu64 " %d %d", r->id, r->domain_id, r->enabled, r->may_send);
        put_str(out, r->source);
        put_str(out, r->destinations);
        buf_addc(out, '\n');
        if (emit_step(e, 0) < 0)
            return -1;
    }
    for (i = 0; (rec = htab_next(&d->sender_id, &i)) != NULL; n++) {
        const struct dir_sender *r = rec;
        buf_printf(out, "S %" PRIu64 " %" PRIu64, r->id, r->mailbox_id);
        put_str(out, r->address);
        buf_addc(out, '\n');
        if (emit_step(e, 0) < 0)
            return -1;
    }
    for (i = 0; (rec = htab_next(&d->master_id, &i)) != NULL; n++) {
        const struct dir_master *r = rec;
        buf_printf(out, "U %" PRIu64 " %d", r->id, r->enabled);
        put_str(out, r->name);
        put_str(out, r->password);
        put_str(out, r->domains);
        buf_addc(out, '\n');
        if (emit_step(e, 0) < 0)
            return -1;
    }
    for (i = 0; (rec = htab_next(&d->transport_id, &i)) != NULL; n++) {
        const struct dir_transport *r = rec;
        buf_printf(out, "T %" PRIu64 " %d", r->id, r->enabled);
        put_str(out, r->pattern);
        put_str(out, r->transport);
        buf_addc(out, '\n');
        if (emit_step(e, 0) < 0)
            return -1;
    }
    buf_printf(out, "end %zu\n", n);
    return emit_step(e, 1);
}

/* The records, then the checksum line over every byte before it. */
static int snap_emit(const struct dir *d, struct buf *out, int (*flush)(void *, struct buf *), void *arg)
{
    struct emitter e = { out, sum_new(), out->len, flush, arg };
    char hex[SUM_HEX + 1];

    if (snap_records(d, &e) < 0) {
        EVP_MD_CTX_free(e.sum);
        return -1;
    }
    sum_end(e.sum, hex);
    buf_printf(out, "%s %s\n", SUM_NAME, hex);
    return flush ? flush(arg, out) : 0;
}

void snap_format(const struct dir *d, struct buf *out)
{
    snap_emit(d, out, NULL, NULL);
}

void snap_seal(struct buf *text)
{
    EVP_MD_CTX *c = sum_new();
    char hex[SUM_HEX + 1];

    sum_add(c, text->data, text->len);
    sum_end(c, hex);
    buf_printf(text, "%s %s\n", SUM_NAME, hex);
}

/* --- parse ---------------------------------------------------------------- */

/* A line split into fields; strings decoded into one arena. */
#define MAXF 24
struct fields {
    size_t n;
    const char *f[MAXF];
    size_t flen[MAXF];
};

static int split(const char *line, size_t len, struct fields *fs)
{
    size_t i = 0;
    fs->n = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && line[j] != ' ')
            j++;
        if (fs->n == MAXF || j == i)
            return -1;
        fs->f[fs->n] = line + i;
        fs->flen[fs->n++] = j - i;
        i = j + 1;
        if (j + 1 == len && line[j] == ' ')
            return -1;
    }
    return 0;
}

static int get_i64(const struct fields *fs, size_t k, int64_t min, int64_t max, int64_t *out)
{
    char tmp[24], *end;
    if (k >= fs->n || fs->flen[k] == 0 || fs->flen[k] >= sizeof(tmp))
        return -1;
    memcpy(tmp, fs->f[k], fs->flen[k]);
    tmp[fs->flen[k]] = 0;
    if (tmp[0] != '-' && (tmp[0] < '0' || tmp[0] > '9'))
        return -1;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (*end || errno || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int get_u64(const struct fields *fs, size_t k, uint64_t *out)
{
    char tmp[24], *end;
    if (k >= fs->n || fs->flen[k] == 0 || fs->flen[k] >= sizeof(tmp))
        return -1;
    memcpy(tmp, fs->f[k], fs->flen[k]);
    tmp[fs->flen[k]] = 0;
    if (tmp[0] < '0' || tmp[0] > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(tmp, &end, 10);
    if (*end || errno)
        return -1;
    *out = v;
    return 0;
}

/* Decode string field k into strs[slot] (NUL-terminated, no NUL inside). */
static int get_str(const struct fields *fs, size_t k, struct buf *store, const char **out, int required)
{
    if (k >= fs->n)
        return -1;
    if (fs->flen[k] == 1 && fs->f[k][0] == '-') {
        *out = NULL;
        return required ? -1 : 0;
    }
    if (fs->f[k][0] != '=')
        return -1;
    buf_reset(store);
    if (hexq_decode(store, fs->f[k] + 1, fs->flen[k] - 1) < 0)
        return -1;
    if (memchr(store->data, 0, store->len) != NULL)
        return -1;
    if (required && store->len == 0)
        return -1;
    *out = store->data;
    return 0;
}

#define I(k, lo, hi, dst) \
    do { int64_t v_; if (get_i64(&fs, k, lo, hi, &v_) < 0) goto bad; dst = v_; } while (0)
#define U(k, dst) \
    do { if (get_u64(&fs, k, &dst) < 0) goto bad; } while (0)
#define S(k, slot, dst, req) \
    do { if (get_str(&fs, k, &s[slot], &dst, req) < 0) goto bad; } while (0)
#define FLAG(k, dst) I(k, 0, 1, dst)

/* Where lines come from: 1 with a line (without its newline, which
 * line[len] still holds), 0 at the end, -1 for a last line that has no
 * newline. The file is read a line at a time, so a start from a large
 * snapshot never holds the file and the directory in memory together. */
typedef int (*snap_next_fn)(void *arg, const char **line, size_t *len);

/* The header: magic, a version this code reads (into *ver), the change
 * sequence. */
/* "mailroster-snapshot <format> <seq>", and from format 5 " <db_id>"
 * (a uuid, or "-": unknown). */
static int check_header(const struct fields *fs, struct dir *d, int64_t *ver_out, struct buf *err)
{
    int64_t ver;
    if (fs->n < 3 || fs->flen[0] != strlen(SNAP_MAGIC) || memcmp(fs->f[0], SNAP_MAGIC, fs->flen[0])
        || get_i64(fs, 1, 0, 1000000, &ver) < 0 || get_u64(fs, 2, &d->seq) < 0) {
        buf_printf(err, "line 1: not a mailroster snapshot");
        return -1;
    }
    if (ver < SNAP_VERSION_OLDEST || ver > SNAP_VERSION) {
        buf_printf(err, "line 1: snapshot format %d is from %s version of mailroster (this one reads "
                   "formats %d to %d)", (int)ver, ver < SNAP_VERSION ? "an older" : "a newer",
                   SNAP_VERSION_OLDEST, SNAP_VERSION);
        return -1;
    }
    if (fs->n != (ver >= 5 ? 4u : 3u)) {
        buf_printf(err, "line 1: not a mailroster snapshot");
        return -1;
    }
    d->db_id[0] = 0;
    if (ver >= 5 && !(fs->flen[3] == 1 && fs->f[3][0] == '-')) {
        if (fs->flen[3] != DIR_DBID_SIZE - 1) {
            buf_printf(err, "line 1: malformed database identity");
            return -1;
        }
        memcpy(d->db_id, fs->f[3], fs->flen[3]);
        d->db_id[fs->flen[3]] = 0;
        if (!snap_dbid_ok(d->db_id)) {
            d->db_id[0] = 0;
            buf_printf(err, "line 1: malformed database identity");
            return -1;
        }
    }
    *ver_out = ver;
    return 0;
}

/* The last line: "sha256 <hex>" of every byte before it. Finishes sum. */
static int check_sum(const char *line, size_t len, EVP_MD_CTX *sum, size_t lineno, struct buf *err)
{
    char hex[SUM_HEX + 1];
    size_t nl = strlen(SUM_NAME);

    sum_end(sum, hex);
    if (len != nl + 1 + SUM_HEX || memcmp(line, SUM_NAME " ", nl + 1) != 0) {
        buf_printf(err, "line %zu: malformed checksum line", lineno);
        return -1;
    }
    if (memcmp(line + nl + 1, hex, SUM_HEX) != 0) {
        buf_printf(err, "checksum mismatch: the file is damaged or was edited");
        return -1;
    }
    return 0;
}

static struct dir *snap_parse_lines(snap_next_fn next, void *arg, struct buf *err)
{
    struct dir *d = dir_new();
    EVP_MD_CTX *sum = sum_new();
    struct buf s[8];
    struct fields fs;
    size_t lineno = 0, count = 0;
    int ended = 0, sealed = 0;
    int64_t ver = SNAP_VERSION;

    for (int i = 0; i < 8; i++)
        buf_init(&s[i]);
    buf_reset(err);
    for (;;) {
        const char *line;
        size_t llen;
        int more = next(arg, &line, &llen);
        if (more == 0)
            break;
        if (more < 0) {
            buf_printf(err, "line %zu: no newline at end of file", lineno + 1);
            goto fail;
        }
        lineno++;
        if (sealed)
            goto bad; /* nothing may follow the checksum */
        if (ended) {
            int rc = check_sum(line, llen, sum, lineno, err);
            sum = NULL; /* check_sum finished it */
            if (rc < 0)
                goto fail;
            sealed = 1;
            continue;
        }
        sum_add(sum, line, llen + 1);
        if (lineno == 1) {
            if (split(line, llen, &fs) < 0 || check_header(&fs, d, &ver, err) < 0)
                goto fail_header;
            continue;
        }
        if (split(line, llen, &fs) < 0 || fs.n == 0)
            goto bad;
        if (fs.flen[0] != 1 && !(fs.flen[0] == 3 && memcmp(fs.f[0], "end", 3) == 0))
            goto bad;
        switch (fs.f[0][0]) {
        case 'D': {
            struct dir_domain r = { 0 };
            if (fs.n != 10) goto bad;
            U(1, r.id);
            FLAG(2, r.enabled);
            I(3, 0, INT64_MAX, r.quota_bytes);
            I(4, 0, INT64_MAX, r.quota_messages);
            I(5, 0, INT32_MAX, r.limit_messages);
            I(6, 0, INT32_MAX, r.limit_recipients);
            I(7, 1, INT32_MAX, r.limit_window);
            S(8, 0, r.name, 1);
            S(9, 1, r.disabled_reason, 0);
            dir_put(d, DIR_DOMAIN, dir_domain_new(&r));
            break;
        }
        case 'M': {
            struct dir_mailbox r = { 0 };
            /* format 3 ends at the suspension: no forward */
            if (fs.n != (ver >= 4 ? 22u : 20u)) goto bad;
            U(1, r.id);
            U(2, r.domain_id);
            FLAG(3, r.enabled);
            FLAG(4, r.may_send);
            FLAG(5, r.may_receive);
            I(6, 0, SVC_ALL, r.services);
            I(7, -1, INT64_MAX, r.quota_bytes);
            I(8, -1, INT64_MAX, r.quota_messages);
            I(9, -1, INT32_MAX, r.limit_messages);
            I(10, -1, INT32_MAX, r.limit_recipients);
            I(11, -1, INT32_MAX, r.uid);
            I(12, -1, INT32_MAX, r.gid);
            S(13, 0, r.address, 1);
            S(14, 1, r.password, 0);
            S(15, 2, r.home, 0);
            S(16, 3, r.mail, 0);
            S(17, 4, r.maildir, 1);
            S(18, 5, r.disabled_reason, 0);
            S(19, 6, r.suspended_reason, 0);
            r.send_suspended = r.suspended_reason != NULL;
            if (ver >= 4) {
                FLAG(20, r.keep_copy);
                S(21, 7, r.forward, 0);
                if (r.forward && *r.forward == 0) goto bad;
            }
            if (strchr(r.address, '@') == NULL) goto bad;
            dir_put(d, DIR_MAILBOX, dir_mailbox_new(&r));
            break;
        }
        case 'A': {
            struct dir_alias r = { 0 };
            /* format 3 has no may_send: every alias gave the right */
            size_t o = ver >= 4;
            if (fs.n != 6 + o) goto bad;
            U(1, r.id);
            U(2, r.domain_id);
            FLAG(3, r.enabled);
            r.may_send = 1;
            if (o)
                FLAG(4, r.may_send);
            S(4 + o, 0, r.source, 1);
            S(5 + o, 1, r.destinations, 1);
            if (strchr(r.source, '@') == NULL) goto bad;
            dir_put(d, DIR_ALIAS, dir_alias_new(&r));
            break;
        }
        case 'S': {
            struct dir_sender r = { 0 };
            if (fs.n != 4) goto bad;
            U(1, r.id);
            U(2, r.mailbox_id);
            S(3, 0, r.address, 1);
            dir_put(d, DIR_SENDER, dir_sender_new(&r));
            break;
        }
        case 'U': {
            struct dir_master r = { 0 };
            if (fs.n != 6) goto bad;
            U(1, r.id);
            FLAG(2, r.enabled);
            S(3, 0, r.name, 1);
            S(4, 1, r.password, 1);
            S(5, 2, r.domains, 0);
            dir_put(d, DIR_MASTER, dir_master_new(&r));
            break;
        }
        case 'T': {
            struct dir_transport r = { 0 };
            if (ver < 4 || fs.n != 5) goto bad;
            U(1, r.id);
            FLAG(2, r.enabled);
            S(3, 0, r.pattern, 1);
            S(4, 1, r.transport, 1);
            dir_put(d, DIR_TRANSPORT, dir_transport_new(&r));
            break;
        }
        case 'e': {
            uint64_t n;
            if (fs.n != 2) goto bad;
            U(1, n);
            if (n != count) {
                buf_printf(err, "line %zu: trailer counts %" PRIu64 " records, file has %zu", lineno, n, count);
                goto fail;
            }
            ended = 1;
            continue;
        }
        default:
            goto bad;
        }
        count++;
    }
    if (lineno == 0) {
        buf_printf(err, "file is empty");
        goto fail;
    }
    if (!ended || !sealed) {
        buf_printf(err, "file is cut short (no %s line)", ended ? "checksum" : "trailer");
        goto fail;
    }
    /* Record counts may differ from the trailer when ids repeat: refuse. */
    {
        size_t total = 0;
        for (int k = 0; k < DIR_NKINDS; k++)
            total += dir_count(d, (enum dir_kind)k);
        if (total != count) {
            buf_printf(err, "duplicate record ids");
            goto fail;
        }
    }
    for (int i = 0; i < 8; i++)
        buf_free(&s[i]);
    return d;
fail_header:
    if (err->len == 0)
        buf_printf(err, "line 1: not a mailroster snapshot");
    goto fail;
bad:
    buf_printf(err, "line %zu: malformed record", lineno);
fail:
    for (int i = 0; i < 8; i++)
        buf_free(&s[i]);
    if (sum != NULL)
        EVP_MD_CTX_free(sum);
    dir_free(d);
    return NULL;
}

struct mem_src {
    const char *text;
    size_t len, pos;
};

static int mem_next(void *arg, const char **line, size_t *len)
{
    struct mem_src *m = arg;
    if (m->pos >= m->len)
        return 0;
    const char *start = m->text + m->pos, *nl = memchr(start, '\n', m->len - m->pos);
    if (nl == NULL)
        return -1;
    *line = start;
    *len = (size_t)(nl - start);
    m->pos += *len + 1;
    return 1;
}

struct dir *snap_parse(const char *text, size_t len, struct buf *err)
{
    struct mem_src m = { text, len, 0 };
    return snap_parse_lines(mem_next, &m, err);
}

/* Lines of an open file, read in chunks; never more than max bytes. */
#define CHUNK (64u << 10)
struct file_src {
    int fd;
    uint64_t total, max;        /* bytes read so far, and the bound */
    char *chunk;
    size_t clen, cpos;
    struct buf line;            /* a line that spans chunks */
    int eof;
    int error;                  /* errno of a failed read; EFBIG past max */
};

static void file_fill(struct file_src *f)
{
    size_t want = CHUNK;
    ssize_t n;

    /* one byte past the bound shows a file that grew beyond it */
    if (f->max - f->total < want)
        want = (size_t)(f->max - f->total) + 1;
    do
        n = read(f->fd, f->chunk, want);
    while (n < 0 && errno == EINTR);
    f->cpos = f->clen = 0;
    if (n < 0)
        f->error = errno;
    else if (n == 0)
        f->eof = 1;
    else if ((f->total += (uint64_t)n) > f->max)
        f->error = EFBIG;
    else
        f->clen = (size_t)n;
}

static int file_next(void *arg, const char **line, size_t *len)
{
    struct file_src *f = arg;

    buf_reset(&f->line);
    for (;;) {
        if (f->cpos < f->clen) {
            char *start = f->chunk + f->cpos;
            char *nl = memchr(start, '\n', f->clen - f->cpos);
            size_t n = nl ? (size_t)(nl - start) + 1 : f->clen - f->cpos;
            f->cpos += n;
            if (nl && f->line.len == 0) { /* the common case: no copy */
                *line = start;
                *len = n - 1;
                return 1;
            }
            buf_add(&f->line, start, n);
            if (nl) {
                *line = f->line.data;
                *len = f->line.len - 1;
                return 1;
            }
        }
        if (f->eof || f->error)
            return f->line.len ? -1 : 0;
        file_fill(f);
    }
}

struct fd_sink {
    int fd;
    int error;                  /* errno of a failed write */
};

static int fd_flush(void *arg, struct buf *out)
{
    struct fd_sink *k = arg;
    size_t off = 0;
    while (off < out->len) {
        ssize_t n = write(k->fd, out->data + off, out->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            k->error = n < 0 ? errno : EIO;
            return -1;
        }
        off += (size_t)n;
    }
    buf_reset(out);
    return 0;
}

int snap_write(const struct dir *d, const char *path, struct buf *err)
{
    struct buf text, tmp;
    int fd = -1, rc = -1;
    char eb[128];

    buf_init(&text);
    buf_init(&tmp);
    buf_reset(err);
    buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid());
    /* never follow or reuse what someone else left at the temporary name */
    unlink(tmp.data);
    fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        buf_printf(err, "create %s: %s", tmp.data, errstr(errno, eb, sizeof(eb)));
        goto out;
    }
    fchmod(fd, 0600);
    {
        struct fd_sink sink = { fd, 0 };
        if (snap_emit(d, &text, fd_flush, &sink) < 0) {
            buf_printf(err, "write %s: %s", tmp.data, errstr(sink.error, eb, sizeof(eb)));
            goto out;
        }
    }
    if (fsync(fd) < 0) {
        buf_printf(err, "fsync %s: %s", tmp.data, errstr(errno, eb, sizeof(eb)));
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        buf_printf(err, "close %s: %s", tmp.data, errstr(errno, eb, sizeof(eb)));
        goto out;
    }
    fd = -1;
    if (rename(tmp.data, path) < 0) {
        buf_printf(err, "rename %s to %s: %s", tmp.data, path, errstr(errno, eb, sizeof(eb)));
        goto out;
    }
    /* make the rename itself durable */
    {
        char *dirpath = xstrdup(path), *slash = strrchr(dirpath, '/');
        if (slash)
            *(slash == dirpath ? slash + 1 : slash) = 0;
        int dfd = open(slash ? dirpath : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dirpath);
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        unlink(tmp.data);
    buf_free(&text);
    buf_free(&tmp);
    return rc;
}

static const char *file_kind(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device"
         : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

/* What may be trusted: a regular file of ours that no one else may write
 * (it decides who logs in) or read (it holds password hashes), small
 * enough to load. */
static int snap_check(int fd, const char *path, uint64_t max, struct buf *err)
{
    struct stat st;
    char eb[128];

    if (fstat(fd, &st) < 0) {
        buf_printf(err, "stat %s: %s", path, errstr(errno, eb, sizeof(eb)));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        buf_printf(err, "%s: refused: it is %s, not a regular file", path, file_kind(st.st_mode));
        return -1;
    }
    if (st.st_uid != geteuid()) {
        buf_printf(err, "%s: refused: owned by uid %u, not by the daemon's uid %u", path,
                   (unsigned)st.st_uid, (unsigned)geteuid());
        return -1;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        buf_printf(err, "%s: refused: mode %04o lets %s write it (the daemon writes it 0600)", path,
                   (unsigned)(st.st_mode & 07777), st.st_mode & S_IWOTH ? "others" : "the group");
        return -1;
    }
    if (st.st_mode & S_IRWXO) {
        buf_printf(err, "%s: refused: mode %04o lets others read it, and it holds password hashes "
                   "(the daemon writes it 0600)", path, (unsigned)(st.st_mode & 07777));
        return -1;
    }
    if ((uint64_t)st.st_size > max) {
        buf_printf(err, "%s: refused: %jd bytes, more than the limit of %" PRIu64 " bytes", path,
                   (intmax_t)st.st_size, max);
        return -1;
    }
    return 0;
}

struct dir *snap_read_max(const char *path, uint64_t max_size, struct buf *err)
{
    struct file_src f = { .fd = -1 };
    struct dir *d = NULL;
    char eb[128];

    buf_reset(err);
    if (max_size == 0)
        max_size = SNAP_MAX_SIZE_DEFAULT;
    /* O_NOFOLLOW: a symlink could point anywhere; O_NONBLOCK: opening a
     * FIFO must not wait for a writer */
    f.fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (f.fd < 0) {
        if (errno == ELOOP)
            buf_printf(err, "%s: refused: it is a symbolic link, not a regular file", path);
        else
            buf_printf(err, "open %s: %s", path, errstr(errno, eb, sizeof(eb)));
        return NULL;
    }
    if (snap_check(f.fd, path, max_size, err) < 0) {
        close(f.fd);
        return NULL;
    }
    f.max = max_size;
    f.chunk = xmalloc(CHUNK);
    buf_init(&f.line);
    d = snap_parse_lines(file_next, &f, err);
    if (d == NULL || f.error) {
        struct buf why;
        buf_init(&why);
        if (f.error == EFBIG)
            buf_printf(&why, "%s: refused: it grew past the limit of %" PRIu64 " bytes while read", path, max_size);
        else if (f.error)
            buf_printf(&why, "read %s: %s", path, errstr(f.error, eb, sizeof(eb)));
        else
            buf_printf(&why, "%s: refused: %s", path, err->data);
        buf_reset(err);
        buf_add(err, why.data, why.len);
        buf_free(&why);
        dir_free(d);
        d = NULL;
    }
    buf_free(&f.line);
    free(f.chunk);
    close(f.fd);
    return d;
}

struct dir *snap_read(const char *path, struct buf *err)
{
    return snap_read_max(path, SNAP_MAX_SIZE_DEFAULT, err);
}
