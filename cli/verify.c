/* verify.c - "mailroster verify": before main.cf is switched over, ask the
 * old maps and mailrosterd the same keys, as Postfix would ask them, and
 * print every difference with the reason mailroster's directory gives.
 *
 * Both sides are asked through "postmap -q -" (keys on standard input, one
 * process per map and round), so any map type Postfix reads works on the
 * old side. Postfix's own address lookup is followed on both sides: the
 * key, then the key without its extension, then @domain (mail_addr_find),
 * with the extension put into alias destinations found without it; for
 * transport_maps trivial-rewrite's walk (the address, without its
 * extension, the domain, its parents, "*") on the old side, the whole
 * address on mailrosterd's, which walks itself. mailroster's directory
 * (domain, user, alias, sender and transport lists from the admin socket)
 * gives the keys when none are named, and the reasons. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "mem.h"
#include "verify.h"
#include "verify_parse.h"

enum { M_DOMAINS, M_MAILBOXES, M_ALIASES, M_SENDERS, M_TRANSPORTS, NMAPS };
static const char *const map_name[NMAPS] = { "domains", "mailboxes", "aliases", "senders", "transports" };
static const char *const map_param[NMAPS] = { "virtual_mailbox_domains", "virtual_mailbox_maps",
                                              "virtual_alias_maps", "smtpd_sender_login_maps",
                                              "transport_maps" };

#define DEFAULT_SOCKETMAP "unix:/run/mailroster/socketmap"
#define UNKNOWN_LOCAL "mailroster-verify-unknown"
#define EXT_WORD "verify"

static void __attribute__((noreturn, format(printf, 2, 3))) fail(int code, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("mailroster verify: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

/* --- child processes ------------------------------------------------------------ */

static FILE *temp_file(void)
{
    FILE *f = tmpfile();
    if (f == NULL)
        fail(EX_CANTCREAT, "cannot make a temporary file: %s", strerror(errno));
    return f;
}

static void slurp(FILE *f, struct buf *out)
{
    char chunk[8192];
    size_t n;
    buf_reset(out);
    buf_add(out, "", 0);
    rewind(f);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(out, chunk, n);
}

/* Run argv (PATH searched) with in as standard input; its standard output
 * and error into out and err. Files, not pipes: no deadlock whatever the
 * sizes. Returns the exit status, 128+N for a signal. */
static int run(char *const *argv, const struct buf *in, struct buf *out, struct buf *err)
{
    FILE *fi = temp_file(), *fo = temp_file(), *fe = temp_file();
    int st;
    pid_t pid;

    if (in && in->len && fwrite(in->data, 1, in->len, fi) != in->len)
        fail(EX_IOERR, "writing a temporary file: %s", strerror(errno));
    fflush(fi);
    rewind(fi);
    fflush(stdout);
    fflush(stderr);
    if ((pid = fork()) < 0)
        fail(EX_OSERR, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(fileno(fi), 0);
        dup2(fileno(fo), 1);
        dup2(fileno(fe), 2);
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            fail(EX_OSERR, "waitpid: %s", strerror(errno));
    slurp(fo, out);
    slurp(fe, err);
    fclose(fi);
    fclose(fo);
    fclose(fe);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* the first line of a child's error text, for a one-line message */
static const char *first_line(struct buf *b)
{
    char *nl;
    if (b->len == 0)
        return "(no message)";
    if ((nl = strchr(b->data, '\n')) != NULL)
        *nl = 0;
    return b->data;
}

/* --- postmap ---------------------------------------------------------------------- */

/* Ask maps (tried in order, as Postfix does for a list) the n keys; ans[i]
 * gets keys[i]'s value or stays NULL. A lookup error ends verify: a map
 * that cannot answer proves nothing either way. */
static void ask(const struct strv *maps, const char *side, char *const *keys, size_t n, char **ans)
{
    struct buf in, out, err;
    char **argv;
    int rc;

    if (n == 0 || maps->n == 0)
        return;
    buf_init(&in);
    buf_init(&out);
    buf_init(&err);
    for (size_t i = 0; i < n; i++) {
        buf_adds(&in, keys[i]);
        buf_addc(&in, '\n');
    }
    argv = xcalloc(maps->n + 4, sizeof(*argv));
    argv[0] = "postmap";
    argv[1] = "-q";
    argv[2] = "-";
    for (size_t i = 0; i < maps->n; i++)
        argv[3 + i] = maps->v[i];
    rc = run(argv, &in, &out, &err);
    free(argv);
    /* exit 1 is "nothing found"; a failed lookup is fatal: and says so */
    if ((rc != 0 && rc != 1) || strstr(err.data, "fatal:") || strstr(err.data, "lookup error"))
        fail(EX_UNAVAILABLE, "the %s map %s cannot answer: %s", side, maps->v[0], first_line(&err));
    if (vp_answers(out.data, out.len, keys, n, ans) < 0)
        fail(EX_SOFTWARE, "postmap's answer from the %s map %s is not one per key asked", side, maps->v[0]);
    buf_free(&in);
    buf_free(&out);
    buf_free(&err);
}

/* --- mailroster's directory ------------------------------------------------------- */

/* One object of the directory; which fields are used depends on the list:
 * domain (a = disabled reason), mailbox (a = disabled reason, may_receive),
 * alias (a = destinations), sender (a = login), transport (key = pattern,
 * a = transport). */
struct rec {
    char *key, *a;
    int enabled, may_receive;
};
struct recs {
    struct rec *v;
    size_t n, cap;
};
struct roster {
    int loaded, tra_loaded;
    struct recs dom, mbx, ali, snd, tra;
};

static const char *field(char *const *names, char *const *values, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return values[i];
    return "";
}

static void rec_add(struct recs *r, const char *key, const char *a, int enabled, int may_receive)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
    }
    r->v[r->n].key = xstrdup(key);
    r->v[r->n].a = xstrdup(a);
    r->v[r->n].enabled = enabled;
    r->v[r->n].may_receive = may_receive;
    r->n++;
}

static int rec_cmp(const void *x, const void *y)
{
    return strcmp(((const struct rec *)x)->key, ((const struct rec *)y)->key);
}

static const struct rec *rec_find(const struct recs *r, const char *key)
{
    struct rec k = { (char *)key, NULL, 0, 0 };
    if (key == NULL || r->n == 0)
        return NULL;
    return bsearch(&k, r->v, r->n, sizeof(*r->v), rec_cmp);
}

static void recs_free(struct recs *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].key);
        free(r->v[i].a);
    }
    free(r->v);
}

static void on_domain(void *arg, char *const *nm, char *const *v, size_t n)
{
    rec_add(arg, field(nm, v, n, "domain"), field(nm, v, n, "disabled_reason"),
            !strcmp(field(nm, v, n, "enabled"), "yes"), 1);
}
static void on_mailbox(void *arg, char *const *nm, char *const *v, size_t n)
{
    rec_add(arg, field(nm, v, n, "address"), field(nm, v, n, "disabled_reason"),
            !strcmp(field(nm, v, n, "enabled"), "yes"), !strcmp(field(nm, v, n, "may_receive"), "yes"));
}
static void on_alias(void *arg, char *const *nm, char *const *v, size_t n)
{
    rec_add(arg, field(nm, v, n, "source"), field(nm, v, n, "destinations"),
            !strcmp(field(nm, v, n, "enabled"), "yes"), 1);
}
static void on_sender(void *arg, char *const *nm, char *const *v, size_t n)
{
    rec_add(arg, field(nm, v, n, "address"), field(nm, v, n, "login"), 1, 1);
}
static void on_transport(void *arg, char *const *nm, char *const *v, size_t n)
{
    rec_add(arg, field(nm, v, n, "pattern"), field(nm, v, n, "transport"),
            !strcmp(field(nm, v, n, "enabled"), "yes"), 1);
}

/* One list through this same program ("mailroster -s SOCK -f tab WHAT
 * list"), so the admin protocol stays in one place. 0, or -1 with err. */
static int load_list(const char *sock, const char *what, vp_row_fn fn, struct recs *r, struct buf *err)
{
    char *argv[] = { "/proc/self/exe", "-s", (char *)sock, "-f", "tab", (char *)what, "list", NULL };
    struct buf out;
    int rc;

    buf_init(&out);
    rc = run(argv, NULL, &out, err);
    if (rc == 0 && vp_tab_rows(out.data, out.len, fn, r) < 0) {
        buf_reset(err);
        buf_printf(err, "malformed \"%s list\" answer", what);
        rc = -1;
    }
    buf_free(&out);
    if (rc != 0)
        return -1;
    if (r->n > 1)
        qsort(r->v, r->n, sizeof(*r->v), rec_cmp);
    return 0;
}

/* The transport list only when that map is compared, and without it the
 * rest still serves: only admins may list transports. */
static int roster_load(struct roster *ro, const char *sock, int transports, struct buf *err)
{
    memset(ro, 0, sizeof(*ro));
    if (load_list(sock, "domain", on_domain, &ro->dom, err) < 0 ||
        load_list(sock, "user", on_mailbox, &ro->mbx, err) < 0 ||
        load_list(sock, "alias", on_alias, &ro->ali, err) < 0 ||
        load_list(sock, "sender", on_sender, &ro->snd, err) < 0)
        return -1;
    ro->loaded = 1;
    if (transports) {
        if (load_list(sock, "transport", on_transport, &ro->tra, err) == 0)
            ro->tra_loaded = 1;
        else
            fprintf(stderr, "mailroster verify: cannot read mailroster's transport list (%s): transports are compared without its keys and reasons\n",
                    first_line(err));
    }
    return 0;
}

static void roster_free(struct roster *ro)
{
    recs_free(&ro->dom);
    recs_free(&ro->mbx);
    recs_free(&ro->ali);
    recs_free(&ro->snd);
    recs_free(&ro->tra);
}

/* --- keys ------------------------------------------------------------------------ */

static void keys_from_file(const char *path, struct strv *keys)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    char *line = NULL;
    size_t cap = 0, no = 0;
    ssize_t len;
    struct buf k;

    if (f == NULL)
        fail(EX_NOINPUT, "cannot read keys from %s: %s", path, strerror(errno));
    buf_init(&k);
    while ((len = getline(&line, &cap, f)) >= 0) {
        no++;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        int r = vp_key_line(line, (size_t)len, &k);
        if (r < 0)
            fail(EX_DATAERR, "%s line %zu: a key with a control character", path, no);
        if (r > 0)
            strv_add(keys, k.data);
    }
    if (ferror(f))
        fail(EX_IOERR, "reading %s: %s", path, strerror(errno));
    if (f != stdin)
        fclose(f);
    free(line);
    buf_free(&k);
}

static void keys_from_roster(const struct roster *ro, struct strv *keys)
{
    for (size_t i = 0; i < ro->dom.n; i++)
        strv_add(keys, ro->dom.v[i].key);
    for (size_t i = 0; i < ro->mbx.n; i++)
        strv_add(keys, ro->mbx.v[i].key);
    for (size_t i = 0; i < ro->ali.n; i++)
        strv_add(keys, ro->ali.v[i].key[0] == '@' ? ro->ali.v[i].key + 1 : ro->ali.v[i].key);
    for (size_t i = 0; i < ro->snd.n; i++)
        strv_add(keys, ro->snd.v[i].key[0] == '@' ? ro->snd.v[i].key + 1 : ro->snd.v[i].key);
    for (size_t i = 0; i < ro->tra.n; i++)
        strv_add(keys, ro->tra.v[i].key);
}

/* Fold every key as Postfix does, add the variants (an extension on every
 * address, an unknown address in every domain), drop duplicates; split
 * into address keys, the domains they and the domain keys name, and the
 * ".domain" keys (transport patterns for subdomains) without their dot. */
static void keys_prepare(struct strv *in, int variants, const char *delims, struct strv *addrs,
                         struct strv *doms, struct strv *subs)
{
    struct buf f;
    buf_init(&f);
    for (size_t i = 0; i < in->n; i++) {
        const char *at;
        vp_fold(in->v[i], strlen(in->v[i]), &f);
        at = strrchr(f.data, '@');
        if (at == NULL && f.data[0] == '.') {
            if (f.data[1])
                strv_add(subs, f.data + 1);
            continue;
        }
        if (at == NULL) {
            strv_add(doms, f.data);
            continue;
        }
        if (at[1])
            strv_add(doms, at + 1);
        if (at == f.data)      /* "@domain": the domain only; Postfix asks it itself */
            continue;
        strv_add(addrs, f.data);
        if (variants && delims[0] && addr_ext_split(f.data, (size_t)(at - f.data), delims) == (size_t)(at - f.data)) {
            struct buf v;
            buf_init(&v);
            buf_printf(&v, "%.*s%c" EXT_WORD "%s", (int)(at - f.data), f.data, delims[0], at);
            strv_add(addrs, v.data);
            buf_free(&v);
        }
    }
    strv_uniq(doms);
    for (size_t i = 0; variants && i < doms->n; i++) {
        struct buf v;
        buf_init(&v);
        buf_printf(&v, UNKNOWN_LOCAL "@%s", doms->v[i]);
        strv_add(addrs, v.data);
        buf_free(&v);
    }
    strv_uniq(addrs);
    strv_uniq(subs);
    buf_free(&f);
}

/* The recipients the transports map is asked: every address key, and for
 * every domain (a transport entry may name one that hosts nothing) an
 * unknown address in it, and in a subdomain of every ".domain" key. */
static void keys_transports(const struct strv *addrs, const struct strv *doms, const struct strv *subs,
                            struct strv *out)
{
    struct buf v;
    buf_init(&v);
    for (size_t i = 0; i < addrs->n; i++)
        strv_add(out, addrs->v[i]);
    for (size_t i = 0; i < doms->n; i++) {
        buf_reset(&v);
        buf_printf(&v, UNKNOWN_LOCAL "@%s", doms->v[i]);
        strv_add(out, v.data);
    }
    for (size_t i = 0; i < subs->n; i++) {
        buf_reset(&v);
        buf_printf(&v, UNKNOWN_LOCAL "@" EXT_WORD ".%s", subs->v[i]);
        strv_add(out, v.data);
    }
    strv_uniq(out);
    buf_free(&v);
}

/* --- Postfix's lookup of one map, on one side ---------------------------------- */

/* What Postfix ends up with for one key: val (NULL: not found) and how it
 * was found: 1 the key, 2 the key without its extension, 3 @domain; for
 * the old transport map, via is the key that answered. */
struct res {
    char *val;
    int step;
    char *via;
};

/* The extension of an address key ("+tag"), or "" */
static const char *ext_of(const char *key, const char *delims, size_t *user_len)
{
    const char *at = strrchr(key, '@');
    size_t ll = at ? (size_t)(at - key) : 0, u = at ? addr_ext_split(key, ll, delims) : 0;
    *user_len = u;
    return at && u < ll ? key + u : "";
}

/* The alias answer as Postfix uses it: "@other" destinations get the key's
 * local part; found without the extension, the others get the extension. */
static char *alias_rewrite(const char *val, int step, const char *key, const char *delims)
{
    size_t ul;
    const char *ext = ext_of(key, delims, &ul), *at = strrchr(key, '@'), *p = val;
    size_t extl = at && *ext ? (size_t)(at - ext) : 0;
    struct buf out;

    buf_init(&out);
    buf_add(&out, "", 0);
    while (*p) {
        size_t l = strcspn(p, ",");
        const char *s = p, *e = p + l;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s) {
            const char *dat = NULL;
            for (const char *q = s; q < e; q++)
                if (*q == '@')
                    dat = q;
            if (out.len)
                buf_addc(&out, ',');
            if (*s == '@' && at)
                buf_printf(&out, "%.*s%.*s", (int)(at - key), key, (int)(e - s), s);
            else if (step == 2 && extl && dat)
                buf_printf(&out, "%.*s%.*s%.*s", (int)(dat - s), s, (int)extl, ext, (int)(e - dat), dat);
            else
                buf_add(&out, s, (size_t)(e - s));
        }
        p += l + (p[l] ? 1 : 0);
    }
    return out.data;
}

/* mail_addr_find: every key, then the unresolved ones without extension,
 * then @domain; each round one postmap. */
static void lookup(const struct strv *maps, const char *side, int map, char *const *keys, size_t n,
                   const char *delims, struct res *res)
{
    char **ask_keys = xcalloc(n ? n : 1, sizeof(*ask_keys)), **ans = xcalloc(n ? n : 1, sizeof(*ans));
    size_t *idx = xcalloc(n ? n : 1, sizeof(*idx));

    for (size_t i = 0; i < n; i++)
        res[i].val = NULL, res[i].step = 0, res[i].via = NULL;
    ask(maps, side, keys, n, ans);
    for (size_t i = 0; i < n; i++)
        if (ans[i])
            res[i].val = ans[i], res[i].step = 1, ans[i] = NULL;
    /* a domain is asked as it is; mailrosterd walks a transport key itself */
    for (int round = 2; round <= 3 && map != M_DOMAINS && map != M_TRANSPORTS; round++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            size_t ul;
            const char *at = strrchr(keys[i], '@');
            if (res[i].val || at == NULL)
                continue;
            if (round == 2 && *ext_of(keys[i], delims, &ul)) {
                struct buf b;
                buf_init(&b);
                buf_printf(&b, "%.*s%s", (int)ul, keys[i], at);
                ask_keys[m] = b.data;
            } else if (round == 3) {
                ask_keys[m] = xstrdup(at);
            } else {
                continue;
            }
            idx[m++] = i;
        }
        ask(maps, side, ask_keys, m, ans);
        for (size_t j = 0; j < m; j++) {
            if (ans[j])
                res[idx[j]].val = ans[j], res[idx[j]].step = round, ans[j] = NULL;
            free(ask_keys[j]);
            ask_keys[j] = NULL;
        }
    }
    for (size_t i = 0; i < n && map == M_ALIASES; i++) {
        if (res[i].val) {
            char *v = alias_rewrite(res[i].val, res[i].step, keys[i], delims);
            free(res[i].val);
            res[i].val = v;
        }
    }
    free(ask_keys);
    free(ans);
    free(idx);
}

/* The old transport map as trivial-rewrite asks it: round r asks each
 * unresolved key the r-th key of its walk; one postmap per round. */
static void lookup_transports(const struct strv *maps, char *const *keys, size_t n, const char *delims,
                              int parent_style, struct res *res)
{
    struct strv *walk = xcalloc(n ? n : 1, sizeof(*walk));
    char **ask_keys = xcalloc(n ? n : 1, sizeof(*ask_keys)), **ans = xcalloc(n ? n : 1, sizeof(*ans));
    size_t *idx = xcalloc(n ? n : 1, sizeof(*idx)), m;

    for (size_t i = 0; i < n; i++) {
        res[i].val = NULL, res[i].step = 0, res[i].via = NULL;
        vp_transport_walk(keys[i], delims, parent_style, &walk[i]);
    }
    for (size_t r = 0;; r++) {
        m = 0;
        for (size_t i = 0; i < n; i++)
            if (!res[i].val && r < walk[i].n) {
                ask_keys[m] = walk[i].v[r];
                idx[m++] = i;
            }
        if (m == 0)
            break;
        ask(maps, "old", ask_keys, m, ans);
        for (size_t j = 0; j < m; j++)
            if (ans[j]) {
                res[idx[j]].val = ans[j], res[idx[j]].step = (int)r + 1, ans[j] = NULL;
                res[idx[j]].via = xstrdup(ask_keys[j]);
            }
    }
    for (size_t i = 0; i < n; i++)
        strv_free(&walk[i]);
    free(walk);
    free(ask_keys);
    free(ans);
    free(idx);
}

/* The entry mailrosterd answers key with, as it walks (mailrosterd(8),
 * transports): the address, without its extension, the domain, each
 * ".parent"; disabled entries count as absent. */
static const struct rec *roster_transport(const struct roster *ro, const char *key, const char *delims)
{
    struct strv w = { NULL, 0, 0 };
    const struct rec *t = NULL;

    vp_transport_walk(key, delims, 0, &w);
    for (size_t i = 0; i + 1 < w.n && t == NULL; i++) {   /* not "*" */
        t = rec_find(&ro->tra, w.v[i]);
        if (t && !t->enabled)
            t = NULL;
    }
    strv_free(&w);
    return t;
}

/* --- reasons ------------------------------------------------------------------------ */

/* An address mailroster would not store: 0 after saying why in out. */
static int local_ok(const char *addr, size_t at_off, const char *delims, struct buf *out)
{
    int rc = addr_local_check(addr, at_off, delims);
    if (rc == ADDR_OK)
        return 1;
    buf_printf(out, "%.*s is not a local part mailroster takes (%s): the import left it out", (int)at_off, addr,
               addr_strerror(rc));
    return 0;
}

/* A transports difference of the canonical address key. Transports do not
 * depend on hosting: a relay domain has no other entry. */
static void transport_reason(const struct roster *ro, const char *key, const struct res *o,
                             const struct res *nw, const char *delims, int parent_style, struct buf *out)
{
    const struct rec *t = roster_transport(ro, key, delims), *od = NULL;
    const char *via = o->via ? o->via : "";

    if (!ro->tra_loaded) {
        buf_adds(out, "(mailroster's transport list was not read)");
        return;
    }
    if (o->val && strcmp(via, "*"))
        od = rec_find(&ro->tra, via);
    if (o->val && !nw->val) {
        if (!strcmp(via, "*"))
            buf_adds(out, "the old map's wildcard * answers; mailroster serves no * entry (give the domains an entry, or set default_transport)");
        else if (od && !od->enabled)
            buf_printf(out, "the transport entry %s is disabled in mailroster", od->key);
        else if (parent_style && strchr(via, '@') == NULL && via[0] != '.' && strcmp(via, strrchr(key, '@') + 1))
            buf_printf(out, "parent_domain_matches_subdomains names transport_maps: the old entry %s covers its subdomains, mailroster's %s only itself (add .%s)",
                       via, via, via);
        else
            buf_printf(out, "no transport entry %s in mailroster (left out by the import?)", via);
    } else if (!o->val) {
        if (t && t->key[0] == '.' && parent_style)
            buf_printf(out, "mailroster's transport entry %s answers; parent_domain_matches_subdomains names transport_maps, so Postfix never asked the old map a .domain key",
                       t->key);
        else if (t)
            buf_printf(out, "mailroster's transport entry %s answers; the old map has none", t->key);
        else
            buf_adds(out, "mailroster answers; the old map has none");
    } else if (t && strcmp(t->key, via)) {
        buf_printf(out, "the old entry %s answers; in mailroster the entry %s comes first", via, t->key);
    } else if (t) {
        buf_printf(out, "the transports differ: mailroster's entry %s has %s", t->key, t->a);
    } else {
        buf_adds(out, "the transports differ");
    }
}

/* What mailroster's directory says of key, for one difference. The checks
 * follow the order in which mailrosterd decides (mailrosterd(8), KEYS AND
 * ANSWERS), so the first that applies is the reason. */
static void reason(const struct roster *ro, int map, const char *key, const struct res *o,
                   const struct res *nw, const char *delims, int parent_style, struct buf *out)
{
    struct buf c, bare, catchall;
    size_t at_off = 0, ul;
    const struct rec *dom = NULL, *mb = NULL, *al = NULL, *ca = NULL;
    int canon_ok, nonascii = 0;
    const char *d;

    buf_init(&c);
    buf_init(&bare);
    buf_init(&catchall);
    buf_reset(out);
    buf_add(out, "", 0);
    for (const char *p = key; *p; p++)
        nonascii |= (unsigned char)*p >= 0x80;
    if (map == M_DOMAINS)
        canon_ok = addr_domain_canon(key, strlen(key), &c) == ADDR_OK;
    else
        canon_ok = addr_canon(key, strlen(key), &c, &at_off) == ADDR_OK;
    d = !canon_ok ? NULL : map == M_DOMAINS ? c.data : c.data + at_off + 1;
    if (canon_ok && map != M_DOMAINS) {
        ext_of(c.data, delims, &ul);
        buf_printf(&bare, "%.*s%s", (int)ul, c.data, c.data + at_off);
        buf_printf(&catchall, "@%s", d);
        mb = rec_find(&ro->mbx, c.data);
        if (mb == NULL)
            mb = rec_find(&ro->mbx, bare.data);
        if ((al = rec_find(&ro->ali, c.data)) == NULL)
            al = rec_find(&ro->ali, bare.data);
        ca = rec_find(&ro->ali, catchall.data);
    }
    if (canon_ok)
        dom = rec_find(&ro->dom, d);

    if (!canon_ok) {
        buf_adds(out, map == M_DOMAINS ? "not a domain name mailroster takes: never found"
                                       : "not an address mailroster takes: never found");
    } else if (!ro->loaded) {
        buf_adds(out, "(mailroster's directory was not read)");
    } else if (map == M_TRANSPORTS) {
        transport_reason(ro, c.data, o, nw, delims, parent_style, out);
    } else if (map == M_DOMAINS) {
        int idn = nonascii || strstr(d, "xn--") != NULL;
        if (o->val && !nw->val)
            buf_printf(out, dom ? "the domain %s is disabled in mailroster%s%s" : "the domain %s is not in mailroster",
                       d, dom && *dom->a ? ": " : "", dom ? dom->a : "");
        else if (idn && nonascii)
            buf_printf(out, "IDN: mailroster finds a U-label domain as its A-label %s; the old map compares the text", d);
        else if (idn)
            buf_printf(out, "IDN: mailroster keeps %s as its A-label; the old data has another form", d);
        else
            buf_printf(out, "mailroster hosts %s; the old map does not find it (stored in another case or form?)", d);
    } else if (dom == NULL) {
        buf_printf(out, "the domain %s is not in mailroster", d);
    } else if (!dom->enabled) {
        buf_printf(out, "the domain %s is disabled in mailroster: none of its addresses is found", d);
    } else if (map == M_MAILBOXES) {
        if (o->val && !nw->val) {
            if (mb && !mb->enabled)
                buf_printf(out, "the mailbox %s is disabled in mailroster%s%s", mb->key, *mb->a ? ": " : "", mb->a);
            else if (mb && !mb->may_receive)
                buf_printf(out, "the mailbox %s may not receive in mailroster", mb->key);
            else if (al)
                buf_printf(out, "%s is an alias in mailroster, not a mailbox", al->key);
            else if (local_ok(c.data, at_off, delims, out))
                buf_printf(out, "no mailbox %s in mailroster (left out by the import?)", c.data);
        } else if (nonascii) {
            buf_printf(out, "a non-ASCII local part: mailroster finds the mailbox %s, the old map does not (its database's client encoding?)",
                       mb ? mb->key : c.data);
        } else {
            buf_printf(out, "mailroster has the mailbox %s; the old map does not find it (stored in another case, or disabled, there?)",
                       mb ? mb->key : c.data);
        }
    } else if (map == M_ALIASES) {
        if (o->val && !nw->val) {
            if (mb && o->step == 3)
                buf_printf(out, "catch-all: in mailroster a catch-all never answers for a mailbox (%s%s)", mb->key,
                           mb->enabled ? "" : ", disabled");
            else if (mb)
                buf_printf(out, "%s is a mailbox in mailroster, which is never also an alias: its mail goes to the mailbox",
                           mb->key);
            else if (al && !al->enabled)
                buf_printf(out, "the alias %s is disabled in mailroster", al->key);
            else if (o->step == 3)
                buf_printf(out, ca ? "the catch-all @%s is disabled in mailroster" : "no catch-all @%s in mailroster", d);
            else if (local_ok(c.data, at_off, delims, out))
                buf_printf(out, "no alias %s in mailroster (left out by the import?)", c.data);
        } else if (!o->val) {
            if (al && al->enabled)
                buf_printf(out, "mailroster has the alias %s; the old map does not find it (stored in another case there?)", al->key);
            else
                buf_printf(out, "mailroster's catch-all @%s answers; the old map has none", d);
        } else if (o->step == 3 && al && al->enabled) {
            buf_printf(out, "the old catch-all answered; mailroster has the alias %s of its own", al->key);
        } else if (o->step != 3 && !(al && al->enabled) && ca && ca->enabled) {
            buf_printf(out, "mailroster's catch-all @%s answers: no enabled alias %s in mailroster (left out by the import?)", d, c.data);
        } else if (o->step == 2 || (delims[0] && strpbrk(key, delims))) {
            buf_adds(out, "extension: mailroster inserts the extension into every destination of an alias found without it");
        } else if (al) {
            buf_printf(out, "the destinations differ: mailroster's alias %s has %s", al->key, al->a);
        } else {
            buf_adds(out, "the destinations differ");
        }
    } else { /* senders */
        if (o->val && !nw->val && mb && !mb->enabled)
            buf_printf(out, "the mailbox %s is disabled in mailroster: a disabled mailbox owns no address", mb->key);
        else if (o->val && !nw->val && !mb && !al) {
            if (local_ok(c.data, at_off, delims, out))
                buf_printf(out, "no mailbox or alias %s in mailroster (left out by the import?)", c.data);
        } else if (!o->val)
            buf_printf(out, "mailroster finds owners of %s; the old map does not (stored in another case there?)", c.data);
        else
            buf_adds(out, "the owners differ: in mailroster they are the enabled mailbox itself, the enabled mailboxes its alias names, and sender add grants");
    }
    buf_free(&c);
    buf_free(&bare);
    buf_free(&catchall);
}

/* --- options ------------------------------------------------------------------------ */

struct opts {
    const char *main_cf, *socketmap, *delims, *sock;
    char *delims_own;           /* delims, when postconf gave it */
    int variants, roster_keys, parent_style;
    struct strv keyfiles, ignorefiles, old[NMAPS];
};

static void usage_exit(FILE *f, int code)
{
    fputs("usage: mailroster [-s SOCKET] verify [OPTION...] [MAP=OLDMAPS...]\n"
          "  MAP=OLDMAPS        MAP is domains, mailboxes, aliases, senders or transports;\n"
          "                     OLDMAPS the old Postfix maps, as in main.cf (pgsql:/etc/postfix/x.cf,...)\n"
          "  --main-cf PATH     the old maps from this main.cf (or its directory)\n"
          "  --socketmap SPEC   mailrosterd's socketmap (default " DEFAULT_SOCKETMAP ")\n"
          "  --keys FILE        keys to ask, one a line (- for standard input); repeatable; an\n"
          "                     SQL importer run with psql -v keys=on writes those of the old setup\n"
          "  --roster-keys      also mailroster's own addresses, domains and transport patterns\n"
          "                     (the default without --keys)\n"
          "  --no-variants      only the keys given: no +extension or unknown-address keys\n"
          "  --delimiter CHARS  recipient_delimiter (default: postconf's)\n"
          "  --ignore FILE      known differences (\"MAP KEY\" lines): counted, not reported\n"
          "Prints MAP, KEY, OLD, NEW and REASON per difference (tab-separated); exits 0 when\n"
          "none, 1 when there are differences.\n",
          f);
    exit(code);
}

/* postconf's value of param (of the main.cf in dir, or the default one) */
static char *postconf(const char *dir, const char *param)
{
    char *argv[] = { "postconf", "-hx", (char *)param, NULL, NULL, NULL };
    struct buf out, err;
    int rc;

    if (dir) {
        argv[1] = "-c";
        argv[2] = (char *)dir;
        argv[3] = "-hx";
        argv[4] = (char *)param;
    }
    buf_init(&out);
    buf_init(&err);
    rc = run(argv, NULL, &out, &err);
    if (rc != 0)
        fail(EX_CONFIG, "postconf %s: %s", param, first_line(&err));
    while (out.len && (out.data[out.len - 1] == '\n' || out.data[out.len - 1] == ' '))
        out.data[--out.len] = 0;
    buf_free(&err);
    return out.data;
}

/* Whether parent_domain_matches_subdomains names transport_maps: then
 * trivial-rewrite asks "parent" where it otherwise asks ".parent". */
static int transport_parent_style(const char *dir)
{
    struct strv items = { NULL, 0, 0 };
    char *v = postconf(dir, "parent_domain_matches_subdomains");
    int yes = 0;

    vp_split_maps(v, &items);
    for (size_t i = 0; i < items.n; i++)
        yes |= !strcmp(items.v[i], map_param[M_TRANSPORTS]);
    strv_free(&items);
    free(v);
    return yes;
}

/* the old maps from main.cf; a literal domain list becomes an inline: map */
static void maps_from_main_cf(struct opts *o)
{
    struct stat st;
    char *dir = xstrdup(o->main_cf);

    if (stat(dir, &st) < 0)
        fail(EX_NOINPUT, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        char *slash = strrchr(dir, '/');
        if (slash == NULL)
            strcpy(dir, ".");
        else if (slash == dir)
            dir[1] = 0;
        else
            *slash = 0;
    }
    for (int m = 0; m < NMAPS; m++) {
        struct strv items = { NULL, 0, 0 };
        struct buf lit;
        char *v;
        if (o->old[m].n)
            continue;           /* MAP=OLDMAPS wins */
        v = postconf(dir, map_param[m]);
        vp_split_maps(v, &items);
        buf_init(&lit);
        for (size_t i = 0; i < items.n; i++) {
            if (strchr(items.v[i], ':') || items.v[i][0] == '/')
                strv_add(&o->old[m], items.v[i]);
            else
                buf_printf(&lit, "%s%s=%s", lit.len ? ", " : "inline:{", items.v[i], items.v[i]);
        }
        if (lit.len) {
            buf_adds(&lit, "}");
            strv_add(&o->old[m], lit.data);
        }
        buf_free(&lit);
        strv_free(&items);
        free(v);
    }
    if (!o->delims)
        o->delims = o->delims_own = postconf(dir, "recipient_delimiter");
    if (o->old[M_TRANSPORTS].n)
        o->parent_style = transport_parent_style(dir);
    free(dir);
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        { "main-cf", required_argument, NULL, 'm' },   { "socketmap", required_argument, NULL, 'S' },
        { "keys", required_argument, NULL, 'k' },      { "roster-keys", no_argument, NULL, 'r' },
        { "no-variants", no_argument, NULL, 'n' },     { "delimiter", required_argument, NULL, 'd' },
        { "ignore", required_argument, NULL, 'i' },    { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    o->socketmap = DEFAULT_SOCKETMAP;
    o->variants = 1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': o->main_cf = optarg; break;
        case 'S': o->socketmap = optarg; break;
        case 'k': strv_add(&o->keyfiles, optarg); break;
        case 'r': o->roster_keys = 1; break;
        case 'n': o->variants = 0; break;
        case 'd': o->delims = optarg; break;
        case 'i': strv_add(&o->ignorefiles, optarg); break;
        case 'h': usage_exit(stdout, 0); break;
        case ':': fail(EX_USAGE, "option %s needs a value", argv[optind - 1]);
        default: fail(EX_USAGE, "unknown option %s; see mailroster verify --help", argv[optind - 1]);
        }
    }
    for (int i = optind; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        int m;
        for (m = 0; m < NMAPS; m++)
            if (eq && strlen(map_name[m]) == (size_t)(eq - argv[i]) && !strncmp(argv[i], map_name[m], (size_t)(eq - argv[i])))
                break;
        if (m == NMAPS || !eq[1])
            fail(EX_USAGE, "'%s' is not MAP=OLDMAPS (MAP: domains, mailboxes, aliases, senders or transports)", argv[i]);
        vp_split_maps(eq + 1, &o->old[m]);
    }
    if (o->main_cf) {
        maps_from_main_cf(o);
    } else {
        if (!o->delims)
            o->delims = o->delims_own = postconf(NULL, "recipient_delimiter");
        if (o->old[M_TRANSPORTS].n)
            o->parent_style = transport_parent_style(NULL);
    }
    for (c = 0; c < NMAPS && !o->old[c].n; c++)
        ;
    if (c == NMAPS)
        fail(EX_USAGE, "no old maps: give MAP=OLDMAPS or --main-cf; see mailroster verify --help");
    if (o->keyfiles.n == 0)
        o->roster_keys = 1;
}

static void load_ignores(const struct strv *files, struct strv *ign)
{
    struct buf m, k, e;
    buf_init(&m);
    buf_init(&k);
    buf_init(&e);
    for (size_t i = 0; i < files->n; i++) {
        FILE *f = fopen(files->v[i], "r");
        char *line = NULL;
        size_t cap = 0, no = 0;
        ssize_t len;
        if (f == NULL)
            fail(EX_NOINPUT, "cannot read %s: %s", files->v[i], strerror(errno));
        while ((len = getline(&line, &cap, f)) >= 0) {
            int r;
            no++;
            if (len > 0 && line[len - 1] == '\n')
                len--;
            if ((r = vp_ignore_line(line, (size_t)len, &m, &k)) < 0)
                fail(EX_DATAERR, "%s line %zu: not \"MAP KEY\"", files->v[i], no);
            if (r > 0) {
                buf_reset(&e);
                buf_printf(&e, "%s %s", m.data, k.data);
                strv_add(ign, e.data);
            }
        }
        fclose(f);
        free(line);
    }
    strv_uniq(ign);
    buf_free(&m);
    buf_free(&k);
    buf_free(&e);
}

/* --- the comparison ------------------------------------------------------------------ */

struct tally {
    size_t diffs, known, skipped, asked;
};

/* one field: a control character (an old map answers anything) as \xHH,
 * so a line stays five fields and cannot drive the terminal */
static void put_cell(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            printf("\\x%02x", (unsigned char)*s);
        else
            putchar(*s);
    }
}

static void report(const struct opts *o, const struct roster *ro, const struct strv *ign, int map,
                   const char *key, const struct res *old, const struct res *nw, struct tally *t)
{
    struct buf why, e;
    int same;

    if (map == M_DOMAINS || map == M_MAILBOXES) {
        same = !old->val == !nw->val;       /* Postfix only asks whether they exist */
    } else if (map == M_TRANSPORTS) {
        same = !old->val == !nw->val && (!old->val || !strcmp(old->val, nw->val));
    } else {
        struct buf a, b;
        buf_init(&a);
        buf_init(&b);
        vp_list_norm(old->val ? old->val : "", &a);
        vp_list_norm(nw->val ? nw->val : "", &b);
        same = !old->val == !nw->val && !strcmp(a.data, b.data);
        buf_free(&a);
        buf_free(&b);
    }
    if (same)
        return;
    buf_init(&e);
    buf_printf(&e, "%s %s", map_name[map], key);
    if (strv_find(ign, e.data) >= 0) {
        t->known++;
        buf_free(&e);
        return;
    }
    buf_free(&e);
    t->diffs++;
    buf_init(&why);
    reason(ro, map, key, old, nw, o->delims, o->parent_style, &why);
    printf("%s\t", map_name[map]);
    put_cell(key);
    putchar('\t');
    put_cell(old->val ? old->val : "(not found)");
    if (old->val && old->step == 3 && map != M_TRANSPORTS)
        fputs(" (from @domain)", stdout);
    if (old->via && strcmp(old->via, key)) {
        fputs(" (from ", stdout);
        put_cell(old->via);
        putchar(')');
    }
    putchar('\t');
    put_cell(nw->val ? nw->val : "(not found)");
    putchar('\t');
    put_cell(why.data);
    putchar('\n');
    buf_free(&why);
}

static void free_res(struct res *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].val);
        free(r[i].via);
    }
    free(r);
}

int verify_command(int argc, char **argv, const char *admin_socket)
{
    struct opts o;
    struct roster ro;
    struct strv raw = { NULL, 0, 0 }, addrs = { NULL, 0, 0 }, doms = { NULL, 0, 0 }, ign = { NULL, 0, 0 };
    struct strv subs = { NULL, 0, 0 }, trkeys = { NULL, 0, 0 };
    struct strv newmap[NMAPS];
    struct tally t = { 0, 0, 0, 0 };
    struct res *dold = NULL, *dnew = NULL;
    struct buf err;

    memset(&o, 0, sizeof(o));
    memset(newmap, 0, sizeof(newmap));
    o.sock = admin_socket;
    parse_opts(argc, argv, &o);
    load_ignores(&o.ignorefiles, &ign);

    buf_init(&err);
    if (roster_load(&ro, o.sock, o.old[M_TRANSPORTS].n > 0, &err) < 0) {
        if (o.roster_keys)
            fail(EX_UNAVAILABLE, "cannot read mailroster's directory for the keys (%s)%s", first_line(&err),
                 o.keyfiles.n ? "" : "; name them with --keys");
        fprintf(stderr, "mailroster verify: cannot read mailroster's directory (%s): reasons name no account state\n",
                first_line(&err));
        ro.loaded = 0;
    }
    buf_free(&err);
    for (size_t i = 0; i < o.keyfiles.n; i++)
        keys_from_file(o.keyfiles.v[i], &raw);
    if (o.roster_keys)
        keys_from_roster(&ro, &raw);
    keys_prepare(&raw, o.variants, o.delims, &addrs, &doms, &subs);
    strv_free(&raw);
    if (o.old[M_TRANSPORTS].n)
        keys_transports(&addrs, &doms, &subs, &trkeys);
    if (addrs.n == 0 && doms.n == 0 && trkeys.n == 0)
        fail(EX_DATAERR, "no keys to ask");

    for (int m = 0; m < NMAPS; m++) {
        struct buf b;
        buf_init(&b);
        buf_printf(&b, "socketmap:%s:%s", o.socketmap, map_name[m]);
        strv_add(&newmap[m], b.data);
        buf_free(&b);
    }

    /* domains first: an address whose domain one side hosts and the other
     * does not differs because of its domain, which is reported once */
    if (o.old[M_DOMAINS].n) {
        dold = xcalloc(doms.n + 1, sizeof(*dold));
        dnew = xcalloc(doms.n + 1, sizeof(*dnew));
        lookup(&o.old[M_DOMAINS], "old", M_DOMAINS, doms.v, doms.n, o.delims, dold);
        lookup(&newmap[M_DOMAINS], "new", M_DOMAINS, doms.v, doms.n, o.delims, dnew);
        for (size_t i = 0; i < doms.n; i++)
            report(&o, &ro, &ign, M_DOMAINS, doms.v[i], &dold[i], &dnew[i], &t);
        t.asked += doms.n;
    }
    /* the address keys in domains both sides agree on */
    char **keys = xcalloc(addrs.n + 1, sizeof(*keys));
    size_t nk = 0, nskip = 0;
    for (size_t i = 0; i < addrs.n; i++) {
        long d = strv_find(&doms, strrchr(addrs.v[i], '@') + 1);
        if (dold && d >= 0 && !dold[d].val != !dnew[d].val)
            nskip++;
        else
            keys[nk++] = addrs.v[i];
    }
    for (int m = M_MAILBOXES; m < M_TRANSPORTS; m++) {
        struct res *ro_old, *ro_new;
        if (!o.old[m].n)
            continue;
        ro_old = xcalloc(nk + 1, sizeof(*ro_old));
        ro_new = xcalloc(nk + 1, sizeof(*ro_new));
        lookup(&o.old[m], "old", m, keys, nk, o.delims, ro_old);
        lookup(&newmap[m], "new", m, keys, nk, o.delims, ro_new);
        for (size_t i = 0; i < nk; i++)
            report(&o, &ro, &ign, m, keys[i], &ro_old[i], &ro_new[i], &t);
        t.asked += nk;
        t.skipped += nskip;
        free_res(ro_old, nk);
        free_res(ro_new, nk);
    }
    /* transports route any recipient, hosted or not: no key is skipped */
    if (o.old[M_TRANSPORTS].n) {
        struct res *to = xcalloc(trkeys.n + 1, sizeof(*to)), *tn = xcalloc(trkeys.n + 1, sizeof(*tn));
        lookup_transports(&o.old[M_TRANSPORTS], trkeys.v, trkeys.n, o.delims, o.parent_style, to);
        lookup(&newmap[M_TRANSPORTS], "new", M_TRANSPORTS, trkeys.v, trkeys.n, o.delims, tn);
        for (size_t i = 0; i < trkeys.n; i++)
            report(&o, &ro, &ign, M_TRANSPORTS, trkeys.v[i], &to[i], &tn[i], &t);
        t.asked += trkeys.n;
        free_res(to, trkeys.n);
        free_res(tn, trkeys.n);
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        fail(EX_IOERR, "writing the differences: %s", strerror(errno));
    fprintf(stderr, "mailroster verify: %zu domains, %zu addresses, %zu lookups: %zu differences, %zu known, %zu skipped (their domain differs)\n",
            doms.n, addrs.n, t.asked, t.diffs, t.known, t.skipped);

    free(keys);
    if (dold) {
        free_res(dold, doms.n);
        free_res(dnew, doms.n);
    }
    for (int m = 0; m < NMAPS; m++) {
        strv_free(&o.old[m]);
        strv_free(&newmap[m]);
    }
    free(o.delims_own);
    strv_free(&o.keyfiles);
    strv_free(&o.ignorefiles);
    strv_free(&addrs);
    strv_free(&doms);
    strv_free(&subs);
    strv_free(&trkeys);
    strv_free(&ign);
    roster_free(&ro);
    return t.diffs ? 1 : 0;
}
