/* admin.c - the admin socket's commands (see admin.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "adm_db.h"
#include "admin.h"
#include "admproto.h"
#include "log.h"
#include "mem.h"
#include "peer.h"
#include "pwhash.h"
#include "srv.h"

extern int (*adm_run_domain_add)(void *, struct adm_job *);
extern int (*adm_run_domain_update)(void *, struct adm_job *);
extern int (*adm_run_domain_remove)(void *, struct adm_job *);
extern int (*adm_run_user_add)(void *, struct adm_job *);
extern int (*adm_run_user_update)(void *, struct adm_job *);
extern int (*adm_run_alias)(void *, struct adm_job *);
extern int (*adm_run_sender)(void *, struct adm_job *);
extern int (*adm_run_transport)(void *, struct adm_job *);
extern int (*adm_run_sieve_share)(void *, struct adm_job *);
extern int (*adm_run_user_usage)(void *, struct adm_job *);
extern int (*adm_run_refusal)(void *, struct adm_job *);
extern int (*adm_run_limit)(void *, struct adm_job *);
extern int (*adm_run_limit_write)(void *, struct adm_job *);
extern int (*adm_run_master)(void *, struct adm_job *);
extern int (*adm_run_export)(void *, struct adm_job *);
extern int (*adm_run_import)(void *, struct adm_job *);

enum role { ROLE_NONE, ROLE_READONLY, ROLE_DOMAIN, ROLE_ADMIN };

/* Who is asking, decided once per request from the peer's credentials. */
struct caller {
    enum role role;
    int reading;            /* the command only looks */
    char domains[1024];     /* for ROLE_DOMAIN: " a.example b.example " */
    char actor[128];
};

struct cmd;
typedef void (*cmd_fn)(const struct cmd *c, struct adm_args *a, struct caller *who,
                        struct srv_conn *conn, struct buf *out);

struct cmd {
    const char *name;       /* "user add" */
    int min, max;           /* words after the name */
    int write;              /* needs the admin role (or domain admin of the target) */
    cmd_fn fn;
    const char *usage;
    const char *help;
};

static struct adm_host H;
static struct adm_job *waiting;   /* writes done, waiting for their change to arrive */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void err(struct buf *out, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void err(struct buf *out, const char *code, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    buf_printf(out, "ERR %s %s\n", code, text);
}

/* --- access ------------------------------------------------------------------- */

/* Who may do what: the admin_allow_* lists resolved to ids when the
 * configuration is read, so that a request never waits on NSS. */
struct grant {
    struct peer_list who;
    char domain[256];       /* canonical */
};

static struct {
    struct peer_list admin, readonly;
    struct grant *grants;
    size_t ngrants;
} acl;

static void acl_free(void)
{
    peer_list_free(&acl.admin);
    peer_list_free(&acl.readonly);
    for (size_t i = 0; i < acl.ngrants; i++)
        peer_list_free(&acl.grants[i].who);
    free(acl.grants);
    acl.grants = NULL;
    acl.ngrants = 0;
}

void adm_set_access(const char *allow_admin, const char *allow_readonly, const char *allow_domain)
{
    const char *p = allow_domain;

    acl_free();
    peer_list_load(&acl.admin, allow_admin, "admin_allow_admin");
    peer_list_load(&acl.readonly, allow_readonly, "admin_allow_readonly");
    /* admin_allow_domain: "bbs:bbs.example, @web:club.example" */
    while (p && *p) {
        p += strspn(p, ", \t");
        size_t n = strcspn(p, ", \t");
        const char *colon = memchr(p, ':', n);
        if (n && colon && colon > p) {
            size_t dn = n - (size_t)(colon + 1 - p);
            struct buf canon;
            buf_init(&canon);
            if (addr_domain_canon(colon + 1, dn, &canon) != ADDR_OK || canon.len >= sizeof(acl.grants->domain)) {
                msg_warn("admin_allow_domain: '%.*s' is not a domain name", (int)dn, colon + 1);
            } else {
                char who[256];
                snprintf(who, sizeof(who), "%.*s", (int)(colon - p), p);
                acl.grants = xrealloc(acl.grants, (acl.ngrants + 1) * sizeof(*acl.grants));
                struct grant *g = &acl.grants[acl.ngrants++];
                peer_list_load(&g->who, who, "admin_allow_domain");
                memcpy(g->domain, canon.data, canon.len + 1);
            }
            buf_free(&canon);
        }
        p += n;
    }
}

/* The caller's login name, if a list named it (NSS is not asked here). */
static const char *known_name(uid_t uid)
{
    const char *n = peer_list_name(&acl.admin, uid);
    if (n == NULL)
        n = peer_list_name(&acl.readonly, uid);
    for (size_t i = 0; n == NULL && i < acl.ngrants; i++)
        n = peer_list_name(&acl.grants[i].who, uid);
    return n;
}

static void identify(struct srv_conn *conn, struct caller *who)
{
    uid_t uid;
    gid_t gid;
    pid_t pid;

    memset(who, 0, sizeof(*who));
    if (srv_conn_peer(conn, &uid, &gid, &pid) < 0) {
        snprintf(who->actor, sizeof(who->actor), "unknown peer");
        return;
    }
    const char *name = known_name(uid);
    if (name)
        snprintf(who->actor, sizeof(who->actor), "uid=%ld(%s) pid=%ld", (long)uid, name, (long)pid);
    else
        snprintf(who->actor, sizeof(who->actor), "uid=%ld pid=%ld", (long)uid, (long)pid);
    if (peer_list_has(&acl.admin, uid, gid)) {
        who->role = ROLE_ADMIN;
        return;
    }
    size_t dl = 1;
    who->domains[0] = ' ';
    for (size_t i = 0; i < acl.ngrants; i++) {
        const struct grant *g = &acl.grants[i];
        size_t n = strlen(g->domain);
        if (!peer_list_has(&g->who, uid, gid))
            continue;
        if (dl + n + 2 >= sizeof(who->domains)) {
            msg_warn("admin_allow_domain: too many domains for %s; the rest are ignored", who->actor);
            break;
        }
        memcpy(who->domains + dl, g->domain, n);
        dl += n;
        who->domains[dl++] = ' ';
        who->domains[dl] = 0;
        who->role = ROLE_DOMAIN;
    }
    if (who->role == ROLE_DOMAIN)
        return;
    if (peer_list_has(&acl.readonly, uid, gid))
        who->role = ROLE_READONLY;
}

/* a reason=TEXT: printable, bounded */
static int reason_ok(const char *r, struct buf *out)
{
    for (const char *p = r; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            err(out, "bad-input", "reason has a control character");
            return 0;
        }
    if (strlen(r) > 500) {
        err(out, "bad-input", "reason longer than 500 octets");
        return 0;
    }
    return 1;
}

static int may_domain(const struct caller *who, const char *domain)
{
    char pat[300];
    if (who->role == ROLE_ADMIN || (who->role == ROLE_READONLY && who->reading))
        return 1;
    if (who->role != ROLE_DOMAIN)
        return 0;
    snprintf(pat, sizeof(pat), " %s ", domain);
    return strstr(who->domains, pat) != NULL;
}

/* --- input validation ---------------------------------------------------------- */

static int canon_domain(const char *in, struct buf *out, struct buf *reply)
{
    int rc = addr_domain_canon(in, strlen(in), out);
    if (rc != ADDR_OK) {
        err(reply, "bad-input", "%s: %s", in, addr_strerror(rc));
        return -1;
    }
    return 0;
}

/* "local@domain" into canonical parts; catch_all allows "@domain".
 * Addresses we store as mailboxes or alias sources may not hold the
 * recipient delimiter; destinations (perhaps remote) may. */
static int canon_address_d(const char *in, int catch_all, const char *delims, struct buf *local,
                           struct buf *domain, struct buf *reply);
static int canon_address(const char *in, int catch_all, struct buf *local, struct buf *domain,
                         struct buf *reply)
{
    return canon_address_d(in, catch_all, H.delims, local, domain, reply);
}

static int canon_address_d(const char *in, int catch_all, const char *delims, struct buf *local,
                           struct buf *domain, struct buf *reply)
{
    const char *at = strrchr(in, '@');
    int rc;
    if (at == NULL) {
        err(reply, "bad-input", "%s: %s", in, addr_strerror(ADDR_NO_AT));
        return -1;
    }
    /* stored folded, the form every lookup folds to; the 64-octet limit
     * then applies to what is stored */
    buf_reset(local);
    if ((rc = addr_fold(in, (size_t)(at - in), local)) != ADDR_OK) {
        err(reply, "bad-input", "%s: %s", in, addr_strerror(rc));
        return -1;
    }
    if (local->len == 0 && catch_all) {
        /* the catch-all */
    } else if ((rc = addr_local_check(local->data ? local->data : "", local->len, delims)) != ADDR_OK) {
        err(reply, "bad-input", "%s: %s", in, addr_strerror(rc));
        return -1;
    }
    if (canon_domain(at + 1, domain, reply) < 0)
        return -1;
    if (local->len + 1 + domain->len > 254) {
        err(reply, "bad-input", "%s: %s", in, addr_strerror(ADDR_TOO_LONG));
        return -1;
    }
    return 0;
}

/* A quota or size: 2G, 500M, 1024K, 12345 (bytes); 0 = unlimited. */
static int parse_size(const char *s, char *out, size_t outlen)
{
    char *end;
    unsigned long long n;
    if (*s < '0' || *s > '9')
        return -1;
    n = strtoull(s, &end, 10);
    unsigned long long mul = 1;
    switch (*end) {
    case 0: break;
    case 'k': case 'K': mul = 1024ULL; end++; break;
    case 'm': case 'M': mul = 1024ULL * 1024; end++; break;
    case 'g': case 'G': mul = 1024ULL * 1024 * 1024; end++; break;
    case 't': case 'T': mul = 1024ULL * 1024 * 1024 * 1024; end++; break;
    default: return -1;
    }
    if ((*end == 'b' || *end == 'B') && mul > 1)
        end++;
    if (*end || n > (unsigned long long)INT64_MAX / mul)
        return -1;
    snprintf(out, outlen, "%llu", n * mul);
    return 0;
}

static int parse_count(const char *s, long max, char *out, size_t outlen)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    long long n = strtoll(s, &end, 10);
    if (*end || n < 0 || n > max)
        return -1;
    snprintf(out, outlen, "%lld", n);
    return 0;
}

static int parse_bool(const char *s, char *out, size_t outlen)
{
    if (!strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "on"))
        snprintf(out, outlen, "true");
    else if (!strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "off"))
        snprintf(out, outlen, "false");
    else
        return -1;
    return 0;
}

enum opt_type { O_SIZE, O_COUNT, O_BOOL, O_SERVICES, O_PATH, O_TEXT, O_ID, O_DURATION, O_HASH, O_LIMIT,
                O_JSON, O_ADDRS, O_LINE };

struct opt {
    const char *key;
    const char *col;
    const char *cast;
    enum opt_type type;
    const char *help;
    int admin_only;         /* reaches outside the domain: full admins only */
};

static const struct opt domain_opts[] = {
    { "quota", "quota_bytes", "bigint", O_SIZE, "default storage quota, e.g. 2G (0 = unlimited)", 0 },
    { "quota_messages", "quota_messages", "bigint", O_COUNT, "default message quota", 0 },
    { "send_limit_messages", "send_limit_messages", "int", O_COUNT, "messages per window", 0 },
    { "send_limit_recipients", "send_limit_recipients", "int", O_COUNT, "recipients per window", 0 },
    { "send_limit_window", "send_limit_window", "int", O_DURATION, "window, e.g. 1h", 0 },
    { NULL, NULL, NULL, 0, NULL, 0 },
};

static const struct opt user_opts[] = {
    { "password", "password", "text", O_HASH, "a {SCHEME} hash (the CLI hashes for you)", 0 },
    { "quota", "quota_bytes", "bigint", O_SIZE, "storage quota, e.g. 2G", 0 },
    { "quota_messages", "quota_messages", "bigint", O_COUNT, "message quota", 0 },
    { "may_send", "may_send", "boolean", O_BOOL, "yes/no", 0 },
    { "may_receive", "may_receive", "boolean", O_BOOL, "yes/no", 0 },
    { "services", "services", "text[]", O_SERVICES, "imap,pop3,submission,lmtp,sieve", 0 },
    { "send_limit_messages", "send_limit_messages", "int", O_COUNT, "messages per window", 0 },
    { "send_limit_recipients", "send_limit_recipients", "int", O_COUNT, "recipients per window", 0 },
    { "display_name", "display_name", "text", O_LINE, "the name to show, one line (empty: none)", 0 },
    { "metadata", "metadata", "jsonb", O_JSON, "a JSON object kept with the account", 0 },
    { "forward", "forward_to", "text[]", O_ADDRS, "ADDRESS,...: incoming mail goes there (empty: none)", 0 },
    { "keep_copy", "keep_copy", "boolean", O_BOOL, "yes: forwarded mail is kept in the mailbox too", 0 },
    /* a path or an id is a way into another domain's mail: admins only */
    { "home", "home", "text", O_PATH, "home directory override", 1 },
    { "mail", "mail", "text", O_TEXT, "mail location override", 1 },
    { "uid", "uid", "int", O_ID, "system uid", 1 },
    { "gid", "gid", "int", O_ID, "system gid", 1 },
    { "path_override", "path_override", "boolean", O_BOOL, "yes: home and mail may leave mail_base", 1 },
    { NULL, NULL, NULL, 0, NULL, 0 },
};

static const struct opt alias_opts[] = {
    { "may_send", "may_send", "boolean", O_BOOL, "yes: the alias's mailboxes may send as it", 0 },
    { NULL, NULL, NULL, 0, NULL, 0 },
};

static const struct opt transport_opts[] = {
    { "transport", "transport", "text", O_TEXT, "transport(5)'s right-hand side", 0 },
    { "enabled", "enabled", "boolean", O_BOOL, "yes/no", 0 },
    { NULL, NULL, NULL, 0, NULL, 0 },
};

/* A ready hash: its scheme prefix and its form (pwhash.c). */
static int hash_ok(const char *h, const char **why)
{
    return pw_hash_check(h, why);
}

/* Is w[0..len) the option key? "keep-copy" is "keep_copy": the words
 * people type and the column names both work. */
static int key_is(const char *key, const char *w, size_t len)
{
    if (strlen(key) != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (key[i] != w[i] && !(key[i] == '_' && w[i] == '-'))
            return 0;
    return 1;
}

/* "a@x,b@y" (or empty) as a PostgreSQL array literal of canonical
 * addresses; NULL with the reason in *why. */
static char *addr_list_literal(const char *v, const char **why)
{
    struct buf lit, local, dom, err_out;
    char *res = NULL;
    size_t n = 0;
    buf_init(&lit);
    buf_init(&local);
    buf_init(&dom);
    buf_init(&err_out);
    buf_addc(&lit, '{');
    for (const char *p = v; *p;) {
        size_t len = strcspn(p, ", ");
        if (len > 0) {
            char *one = xstrndup(p, len);
            int bad = canon_address_d(one, 0, NULL, &local, &dom, &err_out) < 0;
            free(one);
            if (bad) {
                *why = "not a list of addresses (local@domain,...)";
                goto out;
            }
            if (++n > 1000) {
                *why = "more than 1000 addresses";
                goto out;
            }
            buf_adds(&lit, n > 1 ? ",\"" : "\"");
            buf_printf(&lit, "%s@%s\"", local.data, dom.data);
        }
        p += len;
        while (*p == ',' || *p == ' ')
            p++;
    }
    buf_addc(&lit, '}');
    res = xstrdup(lit.data);
out:
    buf_free(&lit);
    buf_free(&local);
    buf_free(&dom);
    buf_free(&err_out);
    return res;
}

/* key=value words argv[from..to) into the job's column list. */
static int take_opts_in(struct adm_job *j, const struct opt *table, struct adm_args *a, int from, int to,
                        const struct caller *who, struct buf *out)
{
    for (int i = from; i < to; i++) {
        const char *w = a->argv[i], *eq = strchr(w, '=');
        const struct opt *o;
        char val[64];
        const char *v = eq ? eq + 1 : NULL;
        if (eq == NULL) {
            err(out, "usage", "expected key=value, got '%s'", w);
            return -1;
        }
        for (o = table; o->key; o++)
            if (key_is(o->key, w, (size_t)(eq - w)))
                break;
        if (o->key == NULL) {
            err(out, "usage", "unknown option '%.*s'", (int)(eq - w), w);
            return -1;
        }
        if (o->admin_only && who->role != ROLE_ADMIN) {
            err(out, "refused", "%s may not set %s: only an admin may (it can reach outside the domain)",
                who->actor, o->key);
            msg_warn("admin: refused %s %s %s= for %s (admins only)", a->argv[0], a->argv[1], o->key,
                     who->actor);
            return -1;
        }
        if (j->nset == 24) {
            err(out, "usage", "too many options");
            return -1;
        }
        for (int k = 0; k < j->nset; k++)
            if (!strcmp(j->set_col[k], o->col)) {
                err(out, "usage", "option '%s' given twice", o->key);
                return -1;
            }
        char *stored = NULL;
        const char *why = NULL;
        int is_null = 0;
        switch (o->type) {
        case O_LIMIT:       /* a count above 0, or "unlimited" (NULL) */
            if (!strcmp(v, "unlimited"))
                is_null = 1;
            else if (parse_count(v, 0x7fffffffL, val, sizeof(val)) < 0 || !strcmp(val, "0"))
                why = "neither a whole number above 0 nor unlimited";
            break;
        case O_SIZE:
            if (parse_size(v, val, sizeof(val)) < 0)
                why = "not a size (e.g. 500M, 2G, 0 for unlimited)";
            break;
        case O_COUNT:
            if (parse_count(v, 0x7fffffffL, val, sizeof(val)) < 0)
                why = "not a whole number";
            break;
        case O_ID:
            if (parse_count(v, 0x7fffffffL, val, sizeof(val)) < 0 || !strcmp(val, "0"))
                why = "not a uid/gid above 0";
            break;
        case O_DURATION: {
            char *end;
            long n = strtol(v, &end, 10), mul = 1;
            if (*end == 's') end++;
            else if (*end == 'm') { mul = 60; end++; }
            else if (*end == 'h') { mul = 3600; end++; }
            else if (*end == 'd') { mul = 86400; end++; }
            if (end == v || *end || n <= 0 || n > 0x7fffffffL / mul)
                why = "not a duration (e.g. 3600, 60m, 1h, 1d)";
            else
                snprintf(val, sizeof(val), "%ld", n * mul);
            break;
        }
        case O_BOOL:
            if (parse_bool(v, val, sizeof(val)) < 0)
                why = "not yes or no";
            break;
        case O_SERVICES: {
            uint32_t bits;
            if (dir_services_parse(v, &bits) < 0)
                why = "services are imap, pop3, submission, lmtp, sieve";
            else {
                struct buf b;
                buf_init(&b);
                buf_addc(&b, '{');
                dir_services_format(&b, bits);
                buf_addc(&b, '}');
                stored = xstrdup(b.data);
                buf_free(&b);
            }
            break;
        }
        case O_PATH:
            if (v[0] != '/')
                why = "not an absolute path";
            /* fall through */
        case O_TEXT:
            for (const char *p = v; *p && !why; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                    why = "has a control character";
            if (!why && strlen(v) > 1024)
                why = "longer than 1024 octets";
            stored = why ? NULL : xstrdup(v);
            break;
        case O_LINE:        /* a name: one line, at most 256 octets; empty: none */
            for (const char *p = v; *p && !why; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                    why = "has a control character";
            if (!why && strlen(v) > 256)
                why = "longer than 256 octets";
            if (!why && *v)
                stored = xstrdup(v);
            is_null = !why && !*v;
            break;
        case O_JSON:        /* the database checks it is an object and its size */
            if (*v != '{')
                why = "not a JSON object ({...})";
            else if (strlen(v) > 16384)
                why = "longer than 16384 octets";
            else
                stored = xstrdup(v);
            break;
        case O_ADDRS:
            stored = addr_list_literal(v, &why);
            break;
        case O_HASH:
            if (hash_ok(v, &why))
                stored = xstrdup(v);
            else {
                err(out, "bad-input", "%s", why);
                return -1;
            }
            break;
        }
        if (why) {
            err(out, "bad-input", "%s: '%s' is %s", o->key, o->type == O_HASH ? "(hash)" : v, why);
            free(stored);
            return -1;
        }
        j->set_col[j->nset] = o->col;
        j->set_cast[j->nset] = o->cast;
        j->set_val[j->nset++] = is_null ? NULL : stored ? stored : xstrdup(val);
    }
    return 0;
}

/* key=value words from argv[from..] into the job's column list. */
static int take_opts(struct adm_job *j, const struct opt *table, struct adm_args *a, int from,
                     const struct caller *who, struct buf *out)
{
    return take_opts_in(j, table, a, from, a->argc, who, out);
}

static struct adm_job *job_new(const struct cmd *c, struct adm_args *a, struct caller *who,
                               struct srv_conn *conn, int (*run)(void *, struct adm_job *))
{
    struct adm_job *j = xcalloc(1, sizeof(*j));
    const char *why;
    struct buf line;
    j->cmd = c->name;
    j->conn = conn;
    j->run = run;
    snprintf(j->actor, sizeof(j->actor), "%s", who->actor);
    adm_args_init(&j->args);
    /* keep our own copy of the words: the request buffer goes away */
    buf_init(&line);
    for (int i = 0; i < a->argc; i++) {
        if (i)
            buf_addc(&line, ' ');
        adm_quote(&line, a->argv[i]);
    }
    adm_split(&j->args, line.data, line.len, &why);
    buf_free(&line);
    buf_init(&j->reply);
    return j;
}

static void submit(struct adm_job *j, struct buf *out)
{
    if (!H.have_db) {
        err(out, "unavailable", "no admin_database configured: this daemon cannot write");
        adm_job_free(j);
        return;
    }
    srv_conn_suspend(j->conn);
    adm_db_submit(j);
}

/* --- commands: domains ------------------------------------------------------------ */

static int domain_target(struct adm_args *a, struct caller *who, struct buf *dom, struct buf *out)
{
    if (canon_domain(a->argv[2], dom, out) < 0)
        return -1;
    if (!may_domain(who, dom->data)) {
        err(out, "refused", "%s may not manage domain %s", who->actor, dom->data);
        msg_warn("admin: refused %s %s for %s", a->argv[0], a->argv[1], who->actor);
        return -1;
    }
    return 0;
}

static void c_domain_write(const struct cmd *c, struct adm_args *a, struct caller *who,
                           struct srv_conn *conn, struct buf *out)
{
    struct buf dom;
    int (*run)(void *, struct adm_job *) = adm_run_domain_update;
    int from = 3;
    buf_init(&dom);
    if (domain_target(a, who, &dom, out) < 0)
        goto out;
    if (!strcmp(c->name, "domain add") || !strcmp(c->name, "domain ensure")) {
        if (who->role != ROLE_ADMIN) {
            err(out, "refused", "only an admin may add domains");
            msg_warn("admin: refused %s %s for %s (admins only)", a->argv[0], a->argv[1], who->actor);
            goto out;
        }
        run = adm_run_domain_add;
    } else if (!strcmp(c->name, "domain remove")) {
        if (who->role != ROLE_ADMIN) {
            err(out, "refused", "only an admin may remove domains");
            msg_warn("admin: refused %s %s for %s (admins only)", a->argv[0], a->argv[1], who->actor);
            goto out;
        }
        run = adm_run_domain_remove;
    }
    struct adm_job *j = job_new(c, a, who, conn, run);
    j->key1 = xstrdup(dom.data);
    if (!strcmp(c->name, "domain enable") || !strcmp(c->name, "domain disable")) {
        int en = !strcmp(c->name, "domain enable");
        const char *reason = NULL;
        for (int i = 3; i < a->argc; i++) {
            if (!strncmp(a->argv[i], "reason=", 7) && !en) {
                reason = a->argv[i] + 7;
                if (!reason_ok(reason, out)) {
                    adm_job_free(j);
                    goto out;
                }
            }
            else {
                err(out, "usage", "usage: %s", c->usage);
                adm_job_free(j);
                goto out;
            }
        }
        j->set_col[0] = "enabled"; j->set_cast[0] = "boolean"; j->set_val[0] = xstrdup(en ? "true" : "false");
        j->set_col[1] = "disabled_reason"; j->set_cast[1] = "text";
        j->set_val[1] = en ? NULL : xstrdup(reason ? reason : "disabled by admin");
        j->nset = 2;
        from = a->argc;
    } else if (!strcmp(c->name, "domain remove")) {
        for (int i = 3; i < a->argc; i++) {
            if (!strcmp(a->argv[i], "--force"))
                j->flag = 1;
            else {
                err(out, "usage", "usage: %s", c->usage);
                adm_job_free(j);
                goto out;
            }
        }
        from = a->argc;
    }
    if (from < a->argc && who->role != ROLE_ADMIN) {
        /* a domain's quotas and limits bound its admin: not theirs to raise */
        err(out, "refused", "%s may not change the quotas and send limits of %s: only an admin may",
            who->actor, dom.data);
        msg_warn("admin: refused %s %s %s for %s (admins only)", a->argv[0], a->argv[1], dom.data, who->actor);
        adm_job_free(j);
        goto out;
    }
    if (take_opts(j, domain_opts, a, from, who, out) < 0) {
        adm_job_free(j);
        goto out;
    }
    if (!strcmp(c->name, "domain set") && j->nset == 0) {
        err(out, "usage", "usage: %s", c->usage);
        adm_job_free(j);
        goto out;
    }
    submit(j, out);
out:
    buf_free(&dom);
}

static void domain_row(struct buf *out, const struct dir_domain *d, const struct dir *dir)
{
    char n[32];
    buf_adds(out, "*");
    adm_field(out, "domain", d->name);
    adm_field(out, "enabled", d->enabled ? "yes" : "no");
    adm_field(out, "disabled_reason", d->disabled_reason);
    snprintf(n, sizeof(n), "%" PRId64, d->quota_bytes);
    adm_field(out, "quota_bytes", n);
    snprintf(n, sizeof(n), "%" PRId64, d->quota_messages);
    adm_field(out, "quota_messages", n);
    snprintf(n, sizeof(n), "%d", d->limit_messages);
    adm_field(out, "send_limit_messages", n);
    snprintf(n, sizeof(n), "%d", d->limit_recipients);
    adm_field(out, "send_limit_recipients", n);
    snprintf(n, sizeof(n), "%d", d->limit_window);
    adm_field(out, "send_limit_window", n);
    (void)dir;
    buf_addc(out, '\n');
}

/* The directory reads answer from, or NULL after saying it is not there yet. */
static const struct dir *loaded(struct buf *out)
{
    const struct dir *d = H.dir();
    if (d == NULL)
        err(out, "unavailable", "directory not loaded yet");
    return d;
}

static void c_domain_show(const struct cmd *c, struct adm_args *a, struct caller *who,
                          struct srv_conn *conn, struct buf *out)
{
    const struct dir *d = loaded(out);
    struct buf dom;
    (void)c;
    (void)conn;
    if (d == NULL)
        return;
    buf_init(&dom);
    if (domain_target(a, who, &dom, out) == 0) {
        const struct dir_domain *r = dir_domain_get(d, dom.data, dom.len);
        if (r == NULL)
            err(out, "not-found", "no such domain: %s", dom.data);
        else {
            domain_row(out, r, d);
            buf_adds(out, "OK 1 domain\n");
        }
    }
    buf_free(&dom);
}

static void c_domain_list(const struct cmd *c, struct adm_args *a, struct caller *who,
                          struct srv_conn *conn, struct buf *out)
{
    const struct dir *d;
    const struct dir_domain *r;
    size_t n = 0;
    (void)c;
    (void)a;
    (void)conn;
    if ((d = loaded(out)) == NULL)
        return;
    for (size_t i = 0; (r = htab_next(&d->dom_id, &i)) != NULL;)
        if (who->role != ROLE_DOMAIN || may_domain(who, r->name)) {
            domain_row(out, r, d);
            n++;
        }
    buf_printf(out, "OK %zu domains\n", n);
}

/* --- commands: users -------------------------------------------------------------- */

static int user_target(const char *addr, struct caller *who, struct buf *local, struct buf *dom,
                       struct buf *out, int catch_all)
{
    if (canon_address(addr, catch_all, local, dom, out) < 0)
        return -1;
    if (!may_domain(who, dom->data)) {
        err(out, "refused", "%s may not manage domain %s", who->actor, dom->data);
        msg_warn("admin: refused a write in %s for %s", dom->data, who->actor);
        return -1;
    }
    return 0;
}

/* A domain admin's mailbox values stay within its domain's: a quota or a
 * send limit may not pass the domain's (nor be 0, unlimited, when the
 * domain has one). 1, or 0 with the refusal answered and logged. */
static int within_domain_limits(const struct adm_job *j, const struct caller *who, const char *domain,
                                struct buf *out)
{
    const struct dir *d = H.dir();
    const struct dir_domain *dm = d ? dir_domain_get(d, domain, strlen(domain)) : NULL;
    if (dm == NULL)
        return 1; /* the database answers "no such domain" */
    for (int i = 0; i < j->nset; i++) {
        int64_t cap;
        if (!strcmp(j->set_col[i], "quota_bytes"))
            cap = dm->quota_bytes;
        else if (!strcmp(j->set_col[i], "quota_messages"))
            cap = dm->quota_messages;
        else if (!strcmp(j->set_col[i], "send_limit_messages"))
            cap = dm->limit_messages;
        else if (!strcmp(j->set_col[i], "send_limit_recipients"))
            cap = dm->limit_recipients;
        else
            continue;
        long long v = strtoll(j->set_val[i], NULL, 10);
        if (cap > 0 && (v == 0 || v > cap)) {
            err(out, "refused", "%s may not set %s to %lld: the domain %s allows at most %" PRId64
                " (0, unlimited, neither)", who->actor, j->set_col[i], v, domain, cap);
            msg_warn("admin: refused %s above the limit of %s for %s", j->set_col[i], domain, who->actor);
            return 0;
        }
    }
    return 1;
}

/* Append the columns of a sending suspension: reason NULL lifts it. */
static void suspension(struct adm_job *j, const char *reason)
{
    j->set_col[j->nset] = "send_suspended_at"; j->set_cast[j->nset] = "timestamptz";
    j->set_val[j->nset++] = reason ? xstrdup("now") : NULL;
    j->set_col[j->nset] = "send_suspended_reason"; j->set_cast[j->nset] = "text";
    j->set_val[j->nset++] = reason ? xstrdup(reason) : NULL;
}

static void c_user_write(const struct cmd *c, struct adm_args *a, struct caller *who,
                         struct srv_conn *conn, struct buf *out)
{
    struct buf local, dom;
    struct adm_job *j = NULL;
    int from = 3;
    int (*run)(void *, struct adm_job *) = adm_run_user_update;

    buf_init(&local);
    buf_init(&dom);
    if (user_target(a->argv[2], who, &local, &dom, out, 0) < 0)
        goto out;
    if (!strcmp(c->name, "user add") || !strcmp(c->name, "user ensure"))
        run = adm_run_user_add;
    j = job_new(c, a, who, conn, run);
    j->key1 = xstrdup(dom.data);
    j->key2 = xstrdup(local.data);
    if (!strcmp(c->name, "user passwd")) {
        const char *why;
        if (!hash_ok(a->argv[3], &why)) {
            err(out, "bad-input", "%s", why);
            goto fail;
        }
        j->set_col[0] = "password"; j->set_cast[0] = "text"; j->set_val[0] = xstrdup(a->argv[3]);
        j->nset = 1;
        from = a->argc;
    } else if (!strcmp(c->name, "user enable") || !strcmp(c->name, "user disable") ||
               !strcmp(c->name, "user remove")) {
        int en = !strcmp(c->name, "user enable");
        const char *reason = !strcmp(c->name, "user remove") ? "removed" : "disabled by admin";
        for (int i = 3; i < a->argc; i++) {
            if (!strncmp(a->argv[i], "reason=", 7) && !en) {
                reason = a->argv[i] + 7;
                if (!reason_ok(reason, out))
                    goto fail;
            }
            else if (!strcmp(a->argv[i], "--purge") && !strcmp(c->name, "user remove"))
                j->flag = 1;
            else {
                err(out, "usage", "usage: %s", c->usage);
                goto fail;
            }
        }
        j->set_col[0] = "enabled"; j->set_cast[0] = "boolean"; j->set_val[0] = xstrdup(en ? "true" : "false");
        j->set_col[1] = "disabled_reason"; j->set_cast[1] = "text"; j->set_val[1] = en ? NULL : xstrdup(reason);
        j->nset = 2;
        from = a->argc;
    } else if (!strcmp(c->name, "user suspend") || !strcmp(c->name, "user unsuspend")) {
        int on = !strcmp(c->name, "user suspend");
        const char *reason = "suspended by admin";
        for (int i = 3; i < a->argc; i++) {
            if (on && !strncmp(a->argv[i], "reason=", 7) && a->argv[i][7]) {
                reason = a->argv[i] + 7;
                if (!reason_ok(reason, out))
                    goto fail;
            } else {
                err(out, "usage", "usage: %s", c->usage);
                goto fail;
            }
        }
        suspension(j, on ? reason : NULL);
        from = a->argc;
    }
    if (take_opts(j, user_opts, a, from, who, out) < 0)
        goto fail;
    /* may_send=yes is "this account may send": it lifts a suspension too
     * (user set only: an ensure repeated by a provisioning tool must not) */
    for (int i = 0; i < j->nset && !strcmp(c->name, "user set"); i++)
        if (!strcmp(j->set_col[i], "may_send") && !strcmp(j->set_val[i], "true")) {
            suspension(j, NULL);
            break;
        }
    if (who->role != ROLE_ADMIN && !within_domain_limits(j, who, dom.data, out))
        goto fail;
    if (!strcmp(c->name, "user set") && j->nset == 0) {
        err(out, "usage", "usage: %s", c->usage);
        goto fail;
    }
    submit(j, out);
    j = NULL;
fail:
    adm_job_free(j);
out:
    buf_free(&local);
    buf_free(&dom);
}

static const char *scheme_of(const char *pw, char *buf, size_t len)
{
    const char *end;
    if (pw == NULL)
        return "none";
    if (pw[0] != '{' || (end = strchr(pw, '}')) == NULL)
        return "unknown";
    snprintf(buf, len, "%.*s", (int)(end - pw - 1), pw + 1);
    return buf;
}

static void user_row(struct buf *out, const struct dir_mailbox *m, const struct dir *d)
{
    char n[40], sch[40];
    const char *at = strchr(m->address, '@');
    const struct dir_domain *dom = at ? dir_domain_get(d, at + 1, strlen(at + 1)) : NULL;
    struct buf s;
    buf_init(&s);
    buf_adds(out, "*");
    adm_field(out, "address", m->address);
    adm_field(out, "enabled", m->enabled && dom && dom->enabled ? "yes" : "no");
    adm_field(out, "disabled_reason", !m->enabled ? (m->disabled_reason ? m->disabled_reason : "disabled")
                                      : dom && !dom->enabled ? "domain disabled" : "");
    adm_field(out, "may_send", m->may_send ? "yes" : "no");
    adm_field(out, "send_suspended", m->send_suspended ? "yes" : "no");
    adm_field(out, "suspended_reason", m->send_suspended ? m->suspended_reason : "");
    adm_field(out, "may_receive", m->may_receive ? "yes" : "no");
    dir_services_format(&s, m->services);
    adm_field(out, "services", s.data ? s.data : "");
    snprintf(n, sizeof(n), "%" PRId64, m->quota_bytes >= 0 ? m->quota_bytes : dom ? dom->quota_bytes : 0);
    adm_field(out, "quota_bytes", n);
    snprintf(n, sizeof(n), "%" PRId64, m->quota_messages >= 0 ? m->quota_messages : dom ? dom->quota_messages : 0);
    adm_field(out, "quota_messages", n);
    snprintf(n, sizeof(n), "%d", m->limit_messages >= 0 ? m->limit_messages : dom ? dom->limit_messages : 0);
    adm_field(out, "send_limit_messages", n);
    snprintf(n, sizeof(n), "%d", m->limit_recipients >= 0 ? m->limit_recipients : dom ? dom->limit_recipients : 0);
    adm_field(out, "send_limit_recipients", n);
    adm_field(out, "password_scheme", scheme_of(m->password, sch, sizeof(sch)));
    adm_field(out, "maildir", m->maildir);
    adm_field(out, "home", m->home);
    adm_field(out, "mail", m->mail);
    adm_field(out, "forward", m->forward ? m->forward : "");
    adm_field(out, "keep_copy", m->keep_copy ? "yes" : "no");
    buf_addc(out, '\n');
    buf_free(&s);
}

static void c_user_show(const struct cmd *c, struct adm_args *a, struct caller *who,
                        struct srv_conn *conn, struct buf *out)
{
    const struct dir *d = loaded(out);
    struct buf local, dom, addr;
    if (d == NULL)
        return;
    buf_init(&local);
    buf_init(&dom);
    buf_init(&addr);
    if (user_target(a->argv[2], who, &local, &dom, out, 0) == 0) {
        buf_printf(&addr, "%s@%s", local.data, dom.data);
        const struct dir_mailbox *m = dir_mailbox_get(d, addr.data, addr.len);
        if (m == NULL)
            err(out, "not-found", "no such mailbox: %s", addr.data);
        else if (!H.have_db) {
            user_row(out, m, d);
            buf_adds(out, "OK 1 mailbox\n");
        } else {
            /* the row from memory, then usage and counters from the database */
            struct adm_job *j = job_new(c, a, who, conn, adm_run_user_usage);
            j->read_only = 1;
            j->soft = 1;
            const struct dir_domain *dm = dir_domain_get(d, dom.data, dom.len);
            char win[32];
            user_row(&j->reply, m, d);
            buf_truncate(&j->reply, j->reply.len - 1);
            snprintf(win, sizeof(win), "%d", dm ? dm->limit_window : 3600);
            j->key1 = xstrdup(addr.data);
            j->key2 = xstrdup(win);
            submit(j, out);
        }
    }
    buf_free(&local);
    buf_free(&dom);
    buf_free(&addr);
}

/* "... list [DOMAIN]": the directory and the domain asked for (dom stays
 * empty for all); NULL with the error in out. */
static const struct dir *list_begin(struct adm_args *a, struct caller *who, struct buf *dom,
                                    struct buf *out)
{
    const struct dir *d;
    if ((d = loaded(out)) == NULL)
        return NULL;
    if (a->argc > 2 && domain_target(a, who, dom, out) < 0)
        return NULL;
    return d;
}

/* Does a listing for dom (empty: all) by who show an object of domain? */
static int list_wants(const struct caller *who, const struct buf *dom, const char *domain)
{
    if (dom->len && strcmp(domain, dom->data))
        return 0;
    return who->role != ROLE_DOMAIN || may_domain(who, domain);
}

static void c_user_list(const struct cmd *c, struct adm_args *a, struct caller *who,
                        struct srv_conn *conn, struct buf *out)
{
    const struct dir *d;
    const struct dir_mailbox *m;
    struct buf dom;
    size_t n = 0;
    (void)c;
    (void)conn;
    buf_init(&dom);
    if ((d = list_begin(a, who, &dom, out)) == NULL)
        goto out;
    for (size_t i = 0; (m = htab_next(&d->mbox_id, &i)) != NULL;) {
        if (!list_wants(who, &dom, strchr(m->address, '@') + 1))
            continue;
        user_row(out, m, d);
        n++;
    }
    buf_printf(out, "OK %zu mailboxes\n", n);
out:
    buf_free(&dom);
}

/* --- commands: aliases and senders ---------------------------------------------- */

/* Would an alias source -> dests close a loop through existing aliases? */
static int alias_loops(const struct dir *d, const char *source, char **dests, int n)
{
    const char *stack[256];
    int sp = 0, steps = 0;
    for (int i = 0; i < n && sp < 256; i++)
        stack[sp++] = dests[i];
    while (sp > 0 && steps++ < 10000) {
        const char *cur = stack[--sp];
        if (!strcmp(cur, source))
            return 1;
        const struct dir_alias *a = dir_alias_get(d, cur, strlen(cur));
        if (a == NULL || !a->enabled)
            continue;
        const char *p = a->destinations;
        while (*p && sp < 256) {
            size_t len = strcspn(p, ",");
            /* point into the record: the directory does not change meanwhile */
            static char tmp[256][256];
            if (len < 256) {
                memcpy(tmp[sp], p, len);
                tmp[sp][len] = 0;
                stack[sp] = tmp[sp];
                sp++;
            }
            p += len;
            if (*p == ',')
                p++;
        }
    }
    return 0;
}

static void c_alias_write(const struct cmd *c, struct adm_args *a, struct caller *who,
                          struct srv_conn *conn, struct buf *out)
{
    struct buf local, dom, dl, dd, src;
    struct adm_job *j = NULL;

    buf_init(&local);
    buf_init(&dom);
    buf_init(&dl);
    buf_init(&dd);
    buf_init(&src);
    if (user_target(a->argv[2], who, &local, &dom, out, 1) < 0)
        goto out;
    buf_printf(&src, "%s@%s", local.data ? local.data : "", dom.data);
    j = job_new(c, a, who, conn, adm_run_alias);
    j->key1 = xstrdup(dom.data);
    j->key2 = xstrdup(local.data ? local.data : "");
    if (!strcmp(c->name, "alias set")) {
        if (take_opts(j, alias_opts, a, 3, who, out) < 0)
            goto fail;
    } else if (strcmp(c->name, "alias remove") != 0) {
        j->list = xcalloc((size_t)a->argc, sizeof(char *));
        for (int i = 3; i < a->argc; i++) {
            /* an option word has '=' and no '@'; a destination always has '@' */
            if (strchr(a->argv[i], '=') && !strchr(a->argv[i], '@')) {
                if (take_opts_in(j, alias_opts, a, i, i + 1, who, out) < 0)
                    goto fail;
                continue;
            }
            /* a destination: local@domain, or @domain to rewrite the domain */
            if (canon_address_d(a->argv[i], 1, NULL, &dl, &dd, out) < 0)
                goto fail;
            buf_reset(&src);
            buf_printf(&src, "%s@%s", dl.data ? dl.data : "", dd.data);
            j->list[j->nlist++] = xstrdup(src.data);
        }
        if (j->nlist == 0) {
            err(out, "usage", "usage: %s", c->usage);
            goto fail;
        }
        buf_reset(&src);
        buf_printf(&src, "%s@%s", j->key2, j->key1);
        for (int i = 0; i < j->nlist; i++)
            if (!strcmp(j->list[i], src.data)) {
                err(out, "bad-input", "alias %s points to itself", src.data);
                goto fail;
            }
        if (H.dir() && alias_loops(H.dir(), src.data, j->list, j->nlist)) {
            err(out, "bad-input", "alias %s would make a loop through other aliases", src.data);
            goto fail;
        }
    }
    submit(j, out);
    j = NULL;
fail:
    adm_job_free(j);
out:
    buf_free(&local);
    buf_free(&dom);
    buf_free(&dl);
    buf_free(&dd);
    buf_free(&src);
}

static void c_alias_list(const struct cmd *c, struct adm_args *a, struct caller *who,
                         struct srv_conn *conn, struct buf *out)
{
    const struct dir *d;
    const struct dir_alias *al;
    struct buf dom;
    size_t n = 0;
    (void)c;
    (void)conn;
    buf_init(&dom);
    if ((d = list_begin(a, who, &dom, out)) == NULL)
        goto out;
    for (size_t i = 0; (al = htab_next(&d->alias_id, &i)) != NULL;) {
        if (!list_wants(who, &dom, strchr(al->source, '@') + 1))
            continue;
        buf_adds(out, "*");
        adm_field(out, "source", al->source);
        adm_field(out, "destinations", al->destinations);
        adm_field(out, "enabled", al->enabled ? "yes" : "no");
        adm_field(out, "may_send", al->may_send ? "yes" : "no");
        buf_addc(out, '\n');
        n++;
    }
    buf_printf(out, "OK %zu aliases\n", n);
out:
    buf_free(&dom);
}

static void c_sender_write(const struct cmd *c, struct adm_args *a, struct caller *who,
                           struct srv_conn *conn, struct buf *out)
{
    struct buf l1, d1, l2, d2, s;
    struct adm_job *j;
    buf_init(&l1);
    buf_init(&d1);
    buf_init(&l2);
    buf_init(&d2);
    buf_init(&s);
    if (canon_address_d(a->argv[2], 1, NULL, &l1, &d1, out) < 0)
        goto out;
    if (!may_domain(who, d1.data)) {
        err(out, "refused", "%s may not manage domain %s", who->actor, d1.data);
        msg_warn("admin: refused %s %s %s for %s (sender address outside its domains)", a->argv[0],
                 a->argv[1], a->argv[2], who->actor);
        goto out;
    }
    if (user_target(a->argv[3], who, &l2, &d2, out, 0) < 0)
        goto out;
    j = job_new(c, a, who, conn, adm_run_sender);
    buf_printf(&s, "%s@%s", l1.data ? l1.data : "", d1.data);
    j->key1 = xstrdup(s.data);
    buf_reset(&s);
    buf_printf(&s, "%s@%s", l2.data, d2.data);
    j->key2 = xstrdup(s.data);
    submit(j, out);
out:
    buf_free(&l1);
    buf_free(&d1);
    buf_free(&l2);
    buf_free(&d2);
    buf_free(&s);
}

static void c_sender_list(const struct cmd *c, struct adm_args *a, struct caller *who,
                          struct srv_conn *conn, struct buf *out)
{
    const struct dir *d;
    const struct dir_sender *s;
    size_t n = 0;
    (void)c;
    (void)conn;
    if ((d = loaded(out)) == NULL)
        return;
    for (size_t i = 0; (s = htab_next(&d->sender_id, &i)) != NULL;) {
        const struct dir_mailbox *m = dir_mailbox_by_id(d, s->mailbox_id);
        if (m == NULL)
            continue;
        if (a->argc > 2 && strcasecmp(a->argv[2], m->address))
            continue;
        if (who->role == ROLE_DOMAIN && !may_domain(who, strchr(m->address, '@') + 1))
            continue;
        buf_adds(out, "*");
        adm_field(out, "address", s->address);
        adm_field(out, "login", m->address);
        buf_addc(out, '\n');
        n++;
    }
    buf_printf(out, "OK %zu sender addresses\n", n);
}

/* --- commands: limits, master users, export and import ------------------------------ */

/* The target of a limit command at argv[i]: "user ADDRESS" (or a bare
 * ADDRESS), "domain DOMAIN" or "global", checked against who. scope gets
 * "mailbox", "domain" or "global", name the canonical address or domain.
 * The index after it, or -1 with the error answered. */
static int limit_target(const struct cmd *c, struct adm_args *a, int i, struct caller *who, int write,
                        const char **scope, struct buf *name, struct buf *out)
{
    const char *w = a->argv[i];
    if (!strcmp(w, "global")) {
        *scope = "global";
        if (write && who->role != ROLE_ADMIN) {
            err(out, "refused", "%s may not change the global limits: only an admin may", who->actor);
            msg_warn("admin: refused %s global for %s (admins only)", c->name, who->actor);
            return -1;
        }
        return i + 1;
    }
    if ((!strcmp(w, "user") || !strcmp(w, "domain")) && i + 1 >= a->argc) {
        err(out, "usage", "usage: %s", c->usage);
        return -1;
    }
    if (!strcmp(w, "domain")) {
        *scope = "domain";
        if (canon_domain(a->argv[i + 1], name, out) < 0)
            return -1;
        if (!may_domain(who, name->data)) {
            err(out, "refused", "%s may not manage domain %s", who->actor, name->data);
            msg_warn("admin: refused %s domain %s for %s", c->name, name->data, who->actor);
            return -1;
        }
        if (write && who->role != ROLE_ADMIN) {
            /* a domain's limits bound its admin: not theirs to change */
            err(out, "refused", "%s may not change the limits of domain %s: only an admin may", who->actor,
                name->data);
            msg_warn("admin: refused %s domain %s for %s (admins only)", c->name, name->data, who->actor);
            return -1;
        }
        return i + 2;
    }
    if (!strcmp(w, "user"))
        w = a->argv[++i];
    *scope = "mailbox";
    struct buf local, dom;
    buf_init(&local);
    buf_init(&dom);
    int rc = user_target(w, who, &local, &dom, out, 0);
    if (rc == 0)
        buf_printf(name, "%s@%s", local.data, dom.data);
    buf_free(&local);
    buf_free(&dom);
    return rc < 0 ? -1 : i + 1;
}

/* limit show / log / reset */
static void c_limit(const struct cmd *c, struct adm_args *a, struct caller *who,
                    struct srv_conn *conn, struct buf *out)
{
    const char *scope = NULL;
    struct buf name;
    int show = !strcmp(c->name, "limit show");
    buf_init(&name);
    int next = limit_target(c, a, 2, who, 0, &scope, &name, out);
    if (next < 0)
        goto out;
    if (next != a->argc || (!show && strcmp(scope, "mailbox") != 0)) {
        err(out, "usage", "usage: %s", c->usage);
        goto out;
    }
    if (!strcmp(scope, "mailbox")) {
        const struct dir *d = loaded(out);
        if (d == NULL)
            goto out;
        if (dir_mailbox_get(d, name.data, name.len) == NULL) {
            err(out, "not-found", "no such mailbox: %s", name.data);
            goto out;
        }
    }
    struct adm_job *j = job_new(c, a, who, conn, adm_run_limit);
    j->read_only = strcmp(c->name, "limit reset") != 0;
    j->key1 = xstrdup(scope);
    j->key2 = name.len ? xstrdup(name.data) : NULL;
    submit(j, out);
out:
    buf_free(&name);
}

static const struct opt limit_opts[] = {
    { "window", "window_seconds", "int", O_DURATION, "the window, e.g. 1h, 1d", 0 },
    { "messages", "messages", "int", O_LIMIT, "messages per window, or unlimited", 0 },
    { "recipients", "recipients", "int", O_LIMIT, "recipients per window, or unlimited", 0 },
    { NULL, NULL, NULL, 0, NULL, 0 },
};

static int has_col(const struct adm_job *j, const char *col)
{
    for (int i = 0; i < j->nset; i++)
        if (!strcmp(j->set_col[i], col))
            return 1;
    return 0;
}

/* limit set / remove: one send_limits window of a mailbox, a domain or
 * everyone (migration 0005); key1 = scope, key2 = target, the values in
 * the column list; flag: "unlimited" (the scope's windows replaced by one
 * that states it). A domain admin's mailbox windows may only be stricter
 * than what the mailbox inherits: the database checks (confined). */
static void c_limit_write(const struct cmd *c, struct adm_args *a, struct caller *who,
                          struct srv_conn *conn, struct buf *out)
{
    const char *scope = NULL;
    struct buf name;
    struct adm_job *j = NULL;
    int set = !strcmp(c->name, "limit set");
    buf_init(&name);
    int next = limit_target(c, a, 2, who, 1, &scope, &name, out);
    if (next < 0)
        goto out;
    j = job_new(c, a, who, conn, adm_run_limit_write);
    j->key1 = xstrdup(scope);
    j->key2 = name.len ? xstrdup(name.data) : NULL;
    j->confined = who->role != ROLE_ADMIN;
    if (set && next + 1 == a->argc && !strcmp(a->argv[next], "unlimited")) {
        j->flag = 1;
    } else {
        if (take_opts(j, limit_opts, a, next, who, out) < 0)
            goto out;
        if (set ? !has_col(j, "window_seconds") || j->nset < 2 : j->nset != (int)has_col(j, "window_seconds")) {
            err(out, "usage", "usage: %s", c->usage);
            goto out;
        }
    }
    submit(j, out);
    j = NULL;
out:
    adm_job_free(j);
    buf_free(&name);
}

static void c_master_write(const struct cmd *c, struct adm_args *a, struct caller *who,
                           struct srv_conn *conn, struct buf *out)
{
    const char *name = a->argv[2];
    struct adm_job *j;
    if (who->role != ROLE_ADMIN) {
        err(out, "refused", "only an admin may manage master users");
        msg_warn("admin: refused %s %s for %s (admins only)", a->argv[0], a->argv[1], who->actor);
        return;
    }
    if (strlen(name) > 254 || strpbrk(name, " \t\r\n") != NULL) {
        err(out, "bad-input", "a master user name is 1 to 254 octets without white space");
        return;
    }
    j = job_new(c, a, who, conn, adm_run_master);
    j->key1 = xstrdup(name);
    if (strcmp(c->name, "master remove") != 0) {
        int have_pw = 0;
        for (int i = 3; i < a->argc; i++) {
            const char *w = a->argv[i], *why;
            if (!strncmp(w, "password=", 9)) {
                if (!hash_ok(w + 9, &why)) {
                    err(out, "bad-input", "%s", why);
                    goto fail;
                }
                j->set_col[j->nset] = "password"; j->set_cast[j->nset] = "text";
                j->set_val[j->nset++] = xstrdup(w + 9);
                have_pw = 1;
            } else if (!strncmp(w, "domains=", 8)) {
                /* a comma-separated list of hosted domains the master may open */
                struct buf lit, one;
                buf_init(&lit);
                buf_init(&one);
                buf_addc(&lit, '{');
                const char *p = w + 8;
                while (*p) {
                    size_t n = strcspn(p, ",");
                    char tmp[300];
                    snprintf(tmp, sizeof(tmp), "%.*s", (int)(n < 299 ? n : 299), p);
                    if (canon_domain(tmp, &one, out) < 0) {
                        buf_free(&lit);
                        buf_free(&one);
                        goto fail;
                    }
                    if (lit.len > 1)
                        buf_addc(&lit, ',');
                    buf_add(&lit, one.data, one.len);
                    p += n;
                    if (*p == ',')
                        p++;
                }
                buf_addc(&lit, '}');
                j->set_col[j->nset] = "domains"; j->set_cast[j->nset] = "text[]";
                j->set_val[j->nset++] = xstrdup(lit.data);
                buf_free(&lit);
                buf_free(&one);
            } else {
                err(out, "usage", "usage: %s", c->usage);
                goto fail;
            }
        }
        if (!have_pw) {
            err(out, "usage", "a master user needs password=HASH");
            goto fail;
        }
    }
    submit(j, out);
    return;
fail:
    adm_job_free(j);
}

/* --- commands: sieve scripts and shared mailboxes ------------------------------- */

/* "ADDRESS" of a mailbox the caller may manage, canonical, into addr. */
static int mailbox_arg(const char *in, struct caller *who, struct buf *addr, struct buf *out)
{
    struct buf local, dom;
    int rc;
    buf_init(&local);
    buf_init(&dom);
    rc = user_target(in, who, &local, &dom, out, 0);
    if (rc == 0) {
        buf_reset(addr);
        buf_printf(addr, "%s@%s", local.data, dom.data);
    }
    buf_free(&local);
    buf_free(&dom);
    return rc;
}

/* sieve set ADDRESS SCRIPT | sieve show ADDRESS | sieve remove ADDRESS:
 * the mailbox's one Sieve script, run at delivery (Dovecot reads it from
 * the database through its dict: conf.d/dovecot). */
static void c_sieve(const struct cmd *c, struct adm_args *a, struct caller *who,
                    struct srv_conn *conn, struct buf *out)
{
    struct buf addr;
    struct adm_job *j;
    buf_init(&addr);
    if (mailbox_arg(a->argv[2], who, &addr, out) < 0)
        goto out;
    if (!strcmp(c->name, "sieve set")) {
        const char *sc = a->argv[3];
        if (*sc == 0) {
            err(out, "bad-input", "an empty Sieve script (to remove one: sieve remove %s)", addr.data);
            goto out;
        }
    }
    j = job_new(c, a, who, conn, adm_run_sieve_share);
    j->key1 = xstrdup(addr.data);
    if (!strcmp(c->name, "sieve set"))
        j->key2 = xstrdup(a->argv[3]);
    j->read_only = !strcmp(c->name, "sieve show");
    submit(j, out);
out:
    buf_free(&addr);
}

/* share add MAILBOX TO | share remove MAILBOX TO | share list [DOMAIN]:
 * who may open whose mailbox in Dovecot's shared namespace. The folders
 * and rights are Dovecot's ACLs (IMAP SETACL, doveadm acl); these rows
 * are the "who shared with whom" dictionary Dovecot keeps beside them. */
static void c_share(const struct cmd *c, struct adm_args *a, struct caller *who,
                    struct srv_conn *conn, struct buf *out)
{
    struct buf owner, to;
    struct adm_job *j;
    buf_init(&owner);
    buf_init(&to);
    if (!strcmp(c->name, "share list")) {
        j = job_new(c, a, who, conn, adm_run_sieve_share);
        if (a->argc > 2) {
            if (domain_target(a, who, &owner, out) < 0) {
                adm_job_free(j);
                goto out;
            }
            j->key1 = xstrdup(owner.data);
        } else if (who->role == ROLE_DOMAIN) {
            j->key2 = xstrdup(who->domains);   /* its domains only */
        }
        j->read_only = 1;
        submit(j, out);
        goto out;
    }
    if (mailbox_arg(a->argv[2], who, &owner, out) < 0 || mailbox_arg(a->argv[3], who, &to, out) < 0)
        goto out;
    if (!strcmp(owner.data, to.data)) {
        err(out, "bad-input", "a mailbox is not shared with itself");
        goto out;
    }
    j = job_new(c, a, who, conn, adm_run_sieve_share);
    j->key1 = xstrdup(owner.data);
    j->key2 = xstrdup(to.data);
    submit(j, out);
out:
    buf_free(&owner);
    buf_free(&to);
}

/* --- commands: transports ----------------------------------------------------- */

/* A transport pattern in its canonical form: local@domain (the extension
 * kept: Postfix asks user+ext@domain first), domain, or .domain. */
static int canon_pattern(const char *in, struct buf *pat, struct buf *out)
{
    struct buf local, dom;
    int rc = -1;
    buf_init(&local);
    buf_init(&dom);
    buf_reset(pat);
    if (strchr(in, '@')) {
        if (in[0] != '@' && canon_address_d(in, 0, NULL, &local, &dom, out) == 0) {
            buf_printf(pat, "%s@%s", local.data, dom.data);
            rc = 0;
        } else if (in[0] == '@')
            err(out, "bad-input", "%s: a transport pattern is local@domain, domain or .domain", in);
    } else if (in[0] == '.' && in[1] != '.') {
        if (canon_domain(in + 1, &dom, out) == 0) {
            buf_printf(pat, ".%s", dom.data);
            rc = 0;
        }
    } else if (canon_domain(in, &dom, out) == 0) {
        buf_adds(pat, dom.data);
        rc = 0;
    }
    buf_free(&local);
    buf_free(&dom);
    return rc;
}

/* transport(5)'s right-hand side: "[transport]:[nexthop]" or "error:text";
 * one line, the transport name letters, digits, '-' and '_'. */
static const char *transport_problem(const char *t)
{
    size_t n = strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");
    if (t[n] != ':')
        return "not transport:nexthop (e.g. relay:[10.0.0.5]:8025, lmtp:unix:private/app, error:5.1.1 gone)";
    if (strlen(t) > 1024)
        return "longer than 1024 octets";
    for (const char *p = t; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return "has a control character";
    return NULL;
}

static void c_transport_write(const struct cmd *c, struct adm_args *a, struct caller *who,
                              struct srv_conn *conn, struct buf *out)
{
    struct buf pat;
    struct adm_job *j = NULL;
    const char *why;

    if (who->role != ROLE_ADMIN) {
        /* a transport can send any domain's mail anywhere */
        err(out, "refused", "only an admin may manage transports");
        msg_warn("admin: refused %s %s for %s (admins only)", a->argv[0], a->argv[1], who->actor);
        return;
    }
    buf_init(&pat);
    if (canon_pattern(a->argv[2], &pat, out) < 0)
        goto out;
    j = job_new(c, a, who, conn, adm_run_transport);
    j->key1 = xstrdup(pat.data);
    if (!strcmp(c->name, "transport add") || !strcmp(c->name, "transport ensure")) {
        if ((why = transport_problem(a->argv[3])) != NULL) {
            err(out, "bad-input", "%s: %s", a->argv[3], why);
            goto fail;
        }
        j->key2 = xstrdup(a->argv[3]);
    } else if (!strcmp(c->name, "transport set")) {
        if (take_opts(j, transport_opts, a, 3, who, out) < 0)
            goto fail;
        for (int i = 0; i < j->nset; i++)
            if (!strcmp(j->set_col[i], "transport") && (why = transport_problem(j->set_val[i])) != NULL) {
                err(out, "bad-input", "%s: %s", j->set_val[i], why);
                goto fail;
            }
    }
    submit(j, out);
    j = NULL;
fail:
    adm_job_free(j);
out:
    buf_free(&pat);
}

static void c_transport_list(const struct cmd *c, struct adm_args *a, struct caller *who,
                             struct srv_conn *conn, struct buf *out)
{
    struct adm_job *j;
    if (who->role == ROLE_DOMAIN) {
        err(out, "refused", "only an admin may list transports");
        return;
    }
    j = job_new(c, a, who, conn, adm_run_transport);
    j->read_only = 1;
    submit(j, out);
}

static void c_master_list(const struct cmd *c, struct adm_args *a, struct caller *who,
                          struct srv_conn *conn, struct buf *out)
{
    const struct dir *d;
    const struct dir_master *m;
    size_t n = 0;
    char sch[40];
    (void)c;
    (void)a;
    (void)conn;
    if (who->role == ROLE_DOMAIN) {
        err(out, "refused", "master users are for admins");
        return;
    }
    if ((d = loaded(out)) == NULL)
        return;
    for (size_t i = 0; (m = htab_next(&d->master_id, &i)) != NULL; n++) {
        buf_adds(out, "*");
        adm_field(out, "name", m->name);
        adm_field(out, "enabled", m->enabled ? "yes" : "no");
        adm_field(out, "domains", m->domains ? m->domains : "(all)");
        adm_field(out, "password_scheme", scheme_of(m->password, sch, sizeof(sch)));
        buf_addc(out, '\n');
    }
    buf_printf(out, "OK %zu master users\n", n);
}

static void c_export(const struct cmd *c, struct adm_args *a, struct caller *who,
                     struct srv_conn *conn, struct buf *out)
{
    struct buf dom;
    struct adm_job *j;
    buf_init(&dom);
    if (a->argc > 2) {
        if (domain_target(a, who, &dom, out) < 0)
            goto out;
    } else if (who->role == ROLE_DOMAIN) {
        err(out, "refused", "a domain admin exports one domain: export DOMAIN");
        msg_warn("admin: refused export of every domain for %s", who->actor);
        goto out;
    }
    j = job_new(c, a, who, conn, adm_run_export);
    j->read_only = 1;
    j->key1 = dom.len ? xstrdup(dom.data) : NULL;
    /* hashes are secrets: only who may set them may read them */
    j->flag = who->role == ROLE_READONLY;
    submit(j, out);
out:
    buf_free(&dom);
}

/* An import collects its lines on the connection, then runs as one
 * transaction at "import commit". The open sessions and the commits under
 * way are listed, so that a stop can say what it abandoned. */
struct import_session {
    struct buf text;
    size_t lines;
    size_t raw_left;        /* octets of an "import data" frame still to come */
    size_t raw_nul;         /* the line of the frame's first NUL octet, or 0 */
    int ended;              /* committed, aborted or replaced: nothing to report */
    char actor[128];
    struct import_session *prev, *next;
};

struct import_running {
    struct adm_job *job;
    struct import_running *next;
};

static struct import_session *sessions;
static struct import_running *running;

#define IMPORT_MAX_OCTETS (512UL * 1024 * 1024)
/* one "import data" frame at most; the CLI sends 1 MiB */
#define IMPORT_FRAME_MAX (64UL * 1024 * 1024)

/* An "import data" request whose frame cannot be read (refused, or its
 * length is not one) closes the connection after its answer: what
 * follows it is not a request. */
static int import_close;

static void import_free(void *p)
{
    struct import_session *s = p;
    if (s) {
        /* the connection went (the client left, or the daemon is stopping) */
        if (!s->ended)
            msg_warn("admin: import session of %s abandoned: its connection closed with %zu lines received "
                     "and no import commit; nothing was committed", s->actor, s->lines);
        if (s->prev)
            s->prev->next = s->next;
        else
            sessions = s->next;
        if (s->next)
            s->next->prev = s->prev;
        buf_free(&s->text);
        free(s);
    }
}

static void running_drop(const struct adm_job *j)
{
    for (struct import_running **pp = &running; *pp; pp = &(*pp)->next)
        if ((*pp)->job == j) {
            struct import_running *r = *pp;
            *pp = r->next;
            free(r);
            return;
        }
}

/* At a stop: what happened to each import (no commit starts any more). */
static void imports_abandon(void)
{
    /* (the sessions stay with their connections, which the exit drops) */
    for (const struct import_session *s = sessions; s; s = s->next)
        msg_warn("admin: import session of %s abandoned: mailrosterd is stopping with %zu lines received "
                 "and no import commit; nothing was committed", s->actor, s->lines);
    while (running) {
        if (adm_db_job_committed(running->job))
            msg_info("admin: import commit by %s was committed as mailrosterd stopped", running->job->actor);
        else
            msg_warn("admin: import commit by %s abandoned: mailrosterd is stopping; nothing was committed",
                     running->job->actor);
        running_drop(running->job); /* the job itself stays with the database thread */
    }
}

static void c_import(const struct cmd *c, struct adm_args *a, struct caller *who,
                     struct srv_conn *conn, struct buf *out)
{
    struct import_session *s = srv_conn_data(conn);
    if (who->role != ROLE_ADMIN) {
        err(out, "refused", "only an admin may import");
        msg_warn("admin: refused %s %s for %s (admins only)", a->argv[0], a->argv[1], who->actor);
        return;
    }
    if (!strcmp(c->name, "import begin")) {
        if (s)
            s->ended = 1;   /* replaced, as documented */
        s = xcalloc(1, sizeof(*s));
        buf_init(&s->text);
        snprintf(s->actor, sizeof(s->actor), "%s", who->actor);
        srv_conn_set_data(conn, s, import_free);
        s->next = sessions;
        if (sessions)
            sessions->prev = s;
        sessions = s;
        buf_adds(out, "OK send \"import line JSON\" for each line, or \"import data OCTETS\" and the lines, "
                      "then \"import commit [--dry-run]\"\n");
        return;
    }
    if (s == NULL) {
        err(out, "usage", "no import in progress: import begin first");
        return;
    }
    if (!strcmp(c->name, "import data")) {
        const char *v = a->argv[2];
        char *e;
        errno = 0;
        unsigned long long n = strtoull(v, &e, 10);
        if (*v < '1' || *v > '9' || *e || errno || n > IMPORT_FRAME_MAX) {
            err(out, "usage", "import data takes the frame's length in octets, 1 to %lu; connection closed",
                IMPORT_FRAME_MAX);
            return;
        }
        if (s->text.len + n > IMPORT_MAX_OCTETS) {
            err(out, "bad-input", "import larger than 512 MiB; connection closed");
            return;
        }
        /* adm_handler reads the frame; its answer follows it */
        s->raw_left = (size_t)n;
        s->raw_nul = 0;
        import_close = 0;
        return;
    }
    if (!strcmp(c->name, "import line")) {
        if (s->text.len + strlen(a->argv[2]) + 1 > IMPORT_MAX_OCTETS) {
            err(out, "bad-input", "import larger than 512 MiB");
            return;
        }
        buf_adds(&s->text, a->argv[2]);
        buf_addc(&s->text, '\n');
        s->lines++;
        buf_printf(out, "OK %zu\n", s->lines);
        return;
    }
    if (!strcmp(c->name, "import abort")) {
        s->ended = 1;
        srv_conn_set_data(conn, NULL, NULL);
        buf_adds(out, "OK aborted\n");
        return;
    }
    /* import commit [--dry-run] */
    int dry = 0;
    for (int i = 2; i < a->argc; i++) {
        if (!strcmp(a->argv[i], "--dry-run"))
            dry = 1;
        else {
            err(out, "usage", "usage: %s", c->usage);
            return;
        }
    }
    struct adm_job *j = job_new(c, a, who, conn, adm_run_import);
    if (s->text.len && s->text.data[s->text.len - 1] != '\n')
        buf_addc(&s->text, '\n');  /* a frame's last line without its newline */
    j->key1 = s->text.data ? s->text.data : xstrdup("");   /* the job takes the lines */
    buf_init(&s->text);
    j->flag = dry;
    s->ended = 1;
    srv_conn_set_data(conn, NULL, NULL);
    if (H.have_db) {
        struct import_running *r = xcalloc(1, sizeof(*r));
        r->job = j;
        r->next = running;
        running = r;
    }
    submit(j, out);
}

/* --- commands: the daemon ------------------------------------------------------------ */

static void c_stats(const struct cmd *c, struct adm_args *a, struct caller *who,
                    struct srv_conn *conn, struct buf *out)
{
    char n[32];
    (void)c;
    (void)a;
    (void)who;
    (void)conn;
    for (int m = 0; m < LK_NMAPS; m++) {
        buf_adds(out, "*");
        adm_field(out, "service", "lookup");
        adm_field(out, "map", lk_map_name((enum lk_map)m));
        snprintf(n, sizeof(n), "%lu", H.stats->requests[m]);
        adm_field(out, "lookups", n);
        snprintf(n, sizeof(n), "%lu", H.stats->found[m]);
        adm_field(out, "found", n);
        buf_addc(out, '\n');
    }
    snprintf(n, sizeof(n), "%lu", H.stats->errors);
    buf_adds(out, "*");
    adm_field(out, "service", "lookup");
    adm_field(out, "malformed", n);
    buf_addc(out, '\n');
    /* policy delegation: how requests were answered */
    buf_adds(out, "*");
    adm_field(out, "service", "policy");
    snprintf(n, sizeof(n), "%lu", H.pol_stats->requests);
    adm_field(out, "requests", n);
    for (int d = 0; d < POL_NDECISIONS; d++) {
        snprintf(n, sizeof(n), "%lu", H.pol_stats->decisions[d]);
        adm_field(out, pol_decision_name((enum pol_decision)d), n);
    }
    snprintf(n, sizeof(n), "%lu", H.pol_stats->incomplete);
    adm_field(out, "incomplete", n);
    snprintf(n, sizeof(n), "%lu", H.pol_stats->malformed);
    adm_field(out, "malformed", n);
    /* rate-limit admissions asked of PostgreSQL, and how they ended */
    snprintf(n, sizeof(n), "%lu", H.pol_stats->admissions);
    adm_field(out, "admissions", n);
    snprintf(n, sizeof(n), "%lu", H.pol_stats->admitted);
    adm_field(out, "admitted", n);
    snprintf(n, sizeof(n), "%lu", H.pol_stats->db_timeouts);
    adm_field(out, "db_timeouts", n);
    snprintf(n, sizeof(n), "%lu", H.pol_stats->db_errors);
    adm_field(out, "db_errors", n);
    buf_addc(out, '\n');
    /* the auth endpoint: per kind of request, how each was answered */
    for (int k = 0; k < AUTH_NKINDS; k++) {
        unsigned long total = 0;
        for (int o = 0; o < AUTH_NOUTCOMES; o++)
            total += H.auth_stats->n[k][o];
        buf_adds(out, "*");
        adm_field(out, "service", "auth");
        adm_field(out, "request", auth_kind_name((enum auth_kind)k));
        snprintf(n, sizeof(n), "%lu", total);
        adm_field(out, "requests", n);
        for (int o = 0; o < AUTH_NOUTCOMES; o++) {
            snprintf(n, sizeof(n), "%lu", H.auth_stats->n[k][o]);
            adm_field(out, auth_outcome_name((enum auth_outcome)o), n);
        }
        buf_addc(out, '\n');
    }
    buf_adds(out, "*");
    adm_field(out, "service", "auth");
    snprintf(n, sizeof(n), "%lu", H.auth_stats->errors);
    adm_field(out, "malformed", n);
    snprintf(n, sizeof(n), "%lu", H.auth_stats->refused);
    adm_field(out, "refused_clients", n);
    buf_addc(out, '\n');
    buf_adds(out, "OK\n");
}

static void c_status(const struct cmd *c, struct adm_args *a, struct caller *who,
                     struct srv_conn *conn, struct buf *out)
{
    (void)c;
    (void)a;
    (void)who;
    (void)conn;
    H.status(out);
    buf_adds(out, "OK\n");
}

static void c_help(const struct cmd *c, struct adm_args *a, struct caller *who,
                   struct srv_conn *conn, struct buf *out);

static const struct cmd cmds[] = {
    { "domain add", 1, 6, 1, c_domain_write, "domain add DOMAIN [quota=SIZE] [quota_messages=N] [send_limit_messages=N] [send_limit_recipients=N] [send_limit_window=DURATION]", "add a hosted domain" },
    { "domain ensure", 1, 6, 1, c_domain_write, "domain ensure DOMAIN [options as for add]", "add or update a domain; answers created, updated or unchanged" },
    { "domain set", 2, 6, 1, c_domain_write, "domain set DOMAIN key=value...", "change a domain's defaults" },
    { "domain enable", 1, 1, 1, c_domain_write, "domain enable DOMAIN", "enable a domain" },
    { "domain disable", 1, 2, 1, c_domain_write, "domain disable DOMAIN [reason=TEXT]", "disable a domain: its addresses are not found" },
    { "domain remove", 1, 2, 1, c_domain_write, "domain remove DOMAIN [--force]", "remove a domain; with mailboxes or aliases left only with --force" },
    { "domain show", 1, 1, 0, c_domain_show, "domain show DOMAIN", "show a domain" },
    { "domain list", 0, 0, 0, c_domain_list, "domain list", "list domains" },
    { "user add", 1, 18, 1, c_user_write, "user add ADDRESS [password=HASH] [quota=SIZE] [quota_messages=N] [may_send=yes|no] [may_receive=yes|no] [services=LIST] [send_limit_messages=N] [send_limit_recipients=N] [display_name=TEXT] [metadata=JSON] [forward=ADDRESS,...] [keep_copy=yes|no] [home=PATH] [mail=LOCATION] [uid=N] [gid=N] [path_override=yes|no]", "add a mailbox (home, mail, uid, gid and path_override: admins only)" },
    { "user ensure", 1, 18, 1, c_user_write, "user ensure ADDRESS [options as for add]", "add or update a mailbox (an existing password is kept); answers created, updated, unchanged or conflict" },
    { "user set", 2, 18, 1, c_user_write, "user set ADDRESS key=value...", "change a mailbox" },
    { "user passwd", 2, 2, 1, c_user_write, "user passwd ADDRESS HASH", "set a mailbox's password hash" },
    { "user enable", 1, 1, 1, c_user_write, "user enable ADDRESS", "enable a mailbox" },
    { "user disable", 1, 2, 1, c_user_write, "user disable ADDRESS [reason=TEXT]", "disable a mailbox: no mail in, none out, no login" },
    { "user remove", 1, 3, 1, c_user_write, "user remove ADDRESS [--purge] [reason=TEXT]", "disable a mailbox and keep its data; --purge deletes the row" },
    { "user suspend", 1, 2, 1, c_user_write, "user suspend ADDRESS [reason=TEXT]", "suspend a mailbox's sending: its mail goes to Postfix's hold queue" },
    { "user unsuspend", 1, 1, 1, c_user_write, "user unsuspend ADDRESS", "lift a sending suspension (held mail stays held: see mailroster(1))" },
    { "user show", 1, 1, 0, c_user_show, "user show ADDRESS", "show everything about a mailbox" },
    { "user list", 0, 1, 0, c_user_list, "user list [DOMAIN]", "list mailboxes" },
    { "alias add", 2, 1002, 1, c_alias_write, "alias add SOURCE DESTINATION... [may_send=yes|no]", "add an alias (SOURCE @domain is the catch-all); may_send=no: its destinations may not send as it" },
    { "alias ensure", 2, 1002, 1, c_alias_write, "alias ensure SOURCE DESTINATION... [may_send=yes|no]", "add or update an alias; answers created, updated, unchanged or conflict" },
    { "alias set", 2, 2, 1, c_alias_write, "alias set SOURCE may_send=yes|no", "whether the alias's mailboxes may send as its address" },
    { "alias remove", 1, 1, 1, c_alias_write, "alias remove SOURCE", "remove an alias" },
    { "alias list", 0, 1, 0, c_alias_list, "alias list [DOMAIN]", "list aliases" },
    { "sender add", 2, 2, 1, c_sender_write, "sender add ADDRESS LOGIN", "let LOGIN send as ADDRESS (or @domain)" },
    { "sender ensure", 2, 2, 1, c_sender_write, "sender ensure ADDRESS LOGIN", "let LOGIN send as ADDRESS unless it may already; answers created or unchanged" },
    { "sender remove", 2, 2, 1, c_sender_write, "sender remove ADDRESS LOGIN", "take that right away" },
    { "sender list", 0, 1, 0, c_sender_list, "sender list [LOGIN]", "list extra sender addresses" },
    { "limit set", 2, 5, 1, c_limit_write, "limit set user ADDRESS|domain DOMAIN|global window=DURATION [messages=N|unlimited] [recipients=N|unlimited], or limit set user ADDRESS|domain DOMAIN|global unlimited", "set one send-limit window of a mailbox, a domain or everyone (domain and global: admins only)" },
    { "limit remove", 1, 3, 1, c_limit_write, "limit remove user ADDRESS|domain DOMAIN|global [window=DURATION]", "remove one window (or all) of a mailbox, a domain or everyone" },
    { "limit show", 1, 2, 0, c_limit, "limit show [user] ADDRESS | limit show domain DOMAIN | limit show global", "an account's effective windows (with the scope that gives them) and what each holds now; or the windows a domain or everyone has" },
    { "limit log", 1, 1, 0, c_limit, "limit log ADDRESS", "the account's send log: one row per admitted message" },
    { "limit reset", 1, 1, 1, c_limit, "limit reset ADDRESS", "clear the account's send counters" },
    { "master add", 2, 3, 1, c_master_write, "master add NAME password=HASH [domains=DOMAIN,...]", "add a master user (a gateway that may open mailboxes), optionally for some domains only" },
    { "master ensure", 2, 3, 1, c_master_write, "master ensure NAME password=HASH [domains=DOMAIN,...]", "add a master user, or bring its domains in line (an existing password is kept); answers created, updated or unchanged" },
    { "master remove", 1, 1, 1, c_master_write, "master remove NAME", "remove a master user" },
    { "master list", 0, 0, 0, c_master_list, "master list", "list master users" },
    { "sieve set", 2, 2, 1, c_sieve, "sieve set ADDRESS SCRIPT", "the mailbox's Sieve script, run at delivery (mailroster reads SCRIPT from a file: sieve set ADDRESS FILE|-)" },
    { "sieve show", 1, 1, 0, c_sieve, "sieve show ADDRESS", "the mailbox's Sieve script" },
    { "sieve remove", 1, 1, 1, c_sieve, "sieve remove ADDRESS", "no Sieve script: mail is delivered to the INBOX" },
    { "share add", 2, 2, 1, c_share, "share add MAILBOX TO", "tell Dovecot that MAILBOX shares folders with TO (the rights are Dovecot's ACLs)" },
    { "share remove", 2, 2, 1, c_share, "share remove MAILBOX TO", "take that entry away" },
    { "share list", 0, 1, 0, c_share, "share list [DOMAIN]", "who shares with whom" },
    { "transport add", 2, 2, 1, c_transport_write, "transport add PATTERN TRANSPORT", "route mail for an address, a domain or .domain (its subdomains) as transport(5) says, e.g. relay:[10.0.0.5]:8025 (admins only)" },
    { "transport ensure", 2, 2, 1, c_transport_write, "transport ensure PATTERN TRANSPORT", "add or update a transport entry; answers created, updated or unchanged" },
    { "transport set", 2, 3, 1, c_transport_write, "transport set PATTERN [transport=TRANSPORT] [enabled=yes|no]", "change a transport entry" },
    { "transport remove", 1, 1, 1, c_transport_write, "transport remove PATTERN", "remove a transport entry" },
    { "transport list", 0, 0, 0, c_transport_list, "transport list", "list transport entries (from the database)" },
    { "export", 0, 1, 0, c_export, "export [DOMAIN]", "the directory (or one domain) as JSON lines" },
    { "import begin", 0, 0, 1, c_import, "import begin", "start an import on this connection" },
    { "import line", 1, 1, 1, c_import, "import line JSON", "one JSON line of the import" },
    { "import data", 1, 1, 1, c_import, "import data OCTETS", "the next OCTETS octets are lines of the import, as they are" },
    { "import commit", 0, 1, 1, c_import, "import commit [--dry-run]", "run the import as one transaction, or only report what it would change" },
    { "import abort", 0, 0, 1, c_import, "import abort", "forget the lines sent" },
    { "stats", 0, 0, 0, c_stats, "stats", "lookup, policy and auth counters" },
    { "status", 0, 0, 0, c_status, "status", "directory size, change sequence, database and snapshot state" },
    { "help", 0, 2, 0, c_help, "help [COMMAND]", "list commands, or show one" },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
};

static void c_help(const struct cmd *c, struct adm_args *a, struct caller *who,
                   struct srv_conn *conn, struct buf *out)
{
    size_t n = 0;
    struct buf want;
    (void)c;
    (void)who;
    (void)conn;
    buf_init(&want);
    for (int i = 2; i < a->argc; i++) { /* argv[0..1] are "help help" */
        if (want.len)
            buf_addc(&want, ' ');
        buf_adds(&want, a->argv[i]);
    }
    for (const struct cmd *k = cmds; k->name; k++) {
        if (want.len && strncmp(k->name, want.data, want.len))
            continue;
        buf_adds(out, "*");
        adm_field(out, "command", k->name);
        adm_field(out, "usage", k->usage);
        adm_field(out, "help", k->help);
        buf_addc(out, '\n');
        n++;
    }
    if (n == 0)
        err(out, "unknown-command", "no command %s", want.data);
    else
        buf_printf(out, "OK %zu commands\n", n);
    buf_free(&want);
}

/* --- the request loop -------------------------------------------------------------- */

/* A refusal of a caller the access lists name goes into the audit log
 * too (its warning is logged where it is refused); a stranger's only into
 * the log, so that no one can fill the table from outside. */
static void audit_refusal(const struct cmd *c, struct adm_args *a, struct caller *who,
                          const struct buf *out, size_t mark)
{
    static const char refused[] = "ERR refused ";
    if (!H.have_db || who->role == ROLE_NONE || out->len - mark < sizeof(refused) - 1 ||
        memcmp(out->data + mark, refused, sizeof(refused) - 1) != 0)
        return;
    struct adm_job *j = job_new(c, a, who, NULL, adm_run_refusal);
    const char *reason = out->data + mark + sizeof(refused) - 1;
    const char *nl = memchr(reason, '\n', out->len - mark - (sizeof(refused) - 1));
    j->object = nl ? xstrndup(reason, (size_t)(nl - reason)) : xstrdup(reason);
    adm_db_submit(j);
}

static void dispatch(struct srv_conn *conn, const char *line, size_t len, struct buf *out)
{
    size_t mark = out->len;
    struct adm_args a;
    struct caller who;
    const char *why;
    const struct cmd *k, *found = NULL;
    int words = 0;

    identify(conn, &who);
    adm_args_init(&a);
    if (who.role == ROLE_NONE) {
        err(out, "refused", "%s is not allowed to use the admin socket", who.actor);
        msg_warn("admin: refused %s (not in admin_allow_*)", who.actor);
        goto out;
    }
    if (adm_split(&a, line, len, &why) < 0) {
        err(out, "usage", "%s", why);
        msg_warn("admin: malformed request from %s: %s", who.actor, why);
        goto out;
    }
    if (a.argc == 0) {
        err(out, "usage", "empty request; try: help");
        goto out;
    }
    for (k = cmds; k->name; k++) {
        const char *sp = strchr(k->name, ' ');
        int kw = sp ? 2 : 1;
        if (kw > a.argc)
            continue;
        if (kw == 1 ? !strcmp(k->name, a.argv[0])
                    : (strlen(a.argv[0]) == (size_t)(sp - k->name) &&
                       !memcmp(a.argv[0], k->name, (size_t)(sp - k->name)) && !strcmp(sp + 1, a.argv[1]))) {
            found = k;
            words = kw;
            break;
        }
    }
    /* (cleared once its frame is sure to be read) */
    import_close = found != NULL && !strcmp(found->name, "import data");
    if (found == NULL) {
        err(out, "unknown-command", "unknown command '%s%s%s'; try: help", a.argv[0],
            a.argc > 1 ? " " : "", a.argc > 1 ? a.argv[1] : "");
        goto out;
    }
    if (a.argc - words < found->min || a.argc - words > found->max) {
        err(out, "usage", "usage: %s", found->usage);
        goto out;
    }
    who.reading = !found->write;
    if (found->write && who.role == ROLE_READONLY) {
        err(out, "refused", "%s has read-only access", who.actor);
        msg_warn("admin: refused %s for read-only %s", found->name, who.actor);
        goto out;
    }
    /* "domain list" and friends use argv[2..]; shift for one-word commands */
    if (words == 1) {
        /* argv[0] is the command; argv[1..] the arguments: present them
         * the same way as two-word commands (argument at argv[2]) */
        if (a.argc >= ADM_MAX_ARGS) {
            err(out, "usage", "too many words");
            goto out;
        }
        memmove(a.argv + 1, a.argv, sizeof(char *) * (size_t)a.argc);
        a.argc++;
    }
    found->fn(found, &a, &who, conn, out);
out:
    if (found)
        audit_refusal(found, &a, &who, out, mark);
    adm_args_free(&a);
}

/* Part of an "import data" frame: its lines, as they are, into the
 * import. A NUL octet spoils the import (no line may have one): the
 * frame is read to its end, then the import is dropped and the answer
 * names the line. */
static ssize_t import_frame(struct srv_conn *c, struct import_session *s, const char *in, size_t len,
                            struct buf *out)
{
    size_t n = len < s->raw_left ? len : s->raw_left;
    if (s->raw_nul == 0) {
        const char *z = memchr(in, 0, n);
        size_t scan = z ? (size_t)(z - in) : n;
        for (const char *p = in, *e = in + scan; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
            s->lines++;
        if (z != NULL) {
            s->raw_nul = s->lines + 1;
        } else {
            buf_add(&s->text, in, n);
        }
    }
    s->raw_left -= n;
    if (s->raw_left == 0) {
        if (s->raw_nul) {
            err(out, "bad-input", "line %zu has a NUL octet; the import was dropped", s->raw_nul);
            msg_warn("admin: import session of %s dropped: line %zu has a NUL octet", s->actor, s->raw_nul);
            s->ended = 1;
            srv_conn_set_data(c, NULL, NULL);
        } else {
            buf_printf(out, "OK %zu\n", s->lines);
        }
    }
    return (ssize_t)n;
}

ssize_t adm_handler(void *arg, struct srv_conn *c, const char *in, size_t len, struct buf *out)
{
    struct import_session *s = srv_conn_data(c);
    const char *nl;
    size_t llen;
    (void)arg;
    if (s != NULL && s->raw_left > 0)
        return import_frame(c, s, in, len, out);
    nl = memchr(in, '\n', len > ADM_MAX_LINE ? ADM_MAX_LINE : len);
    if (nl == NULL) {
        if (len >= ADM_MAX_LINE) {
            struct caller who;
            identify(c, &who);
            err(out, "usage", "line longer than %d octets", ADM_MAX_LINE);
            msg_warn("admin: request line longer than %d octets from %s; connection closed", ADM_MAX_LINE,
                     who.actor);
            return -1;
        }
        return 0;
    }
    llen = (size_t)(nl - in);
    if (llen > 0 && in[llen - 1] == '\r')
        llen--;
    import_close = 0;
    dispatch(c, in, llen, out);
    if (import_close) {
        struct caller who;
        identify(c, &who);
        msg_warn("admin: an import data frame from %s was refused; connection closed", who.actor);
        return -1;
    }
    return (ssize_t)(nl - in) + 1;
}

/* --- answers from the database thread ----------------------------------------------- */

static void answer(struct adm_job *j)
{
    if (j->conn)    /* an audit row alone has no one to answer */
        srv_conn_reply(j->conn, j->reply.data, j->reply.len);
    else if (!j->ok)
        msg_warn("admin: the audit row of a refusal to %s was not written: %.*s", j->actor,
                 (int)(j->reply.len ? j->reply.len - 1 : 0), j->reply.data ? j->reply.data : "");
    adm_job_free(j);
}

/* What a write changed, for its log line: the audit row's object. */
static const char *job_object(const struct adm_job *j)
{
    if (j->object)
        return j->object;
    return j->args.argc > 2 ? j->args.argv[2] : "";
}

void adm_job_done(struct adm_job *j)
{
    const struct dir *d = H.dir();
    running_drop(j);
    if (j->ok && j->seq > 0 && (d == NULL || d->seq < j->seq)) {
        /* answer once this daemon's directory shows the change; the rows
         * before the final line (an import's, one per object) go now */
        if (j->conn && j->reply.len > 1) {
            const char *last = memrchr(j->reply.data, '\n', j->reply.len - 1);
            if (last != NULL) {
                size_t head = (size_t)(last - j->reply.data) + 1;
                srv_conn_reply_part(j->conn, j->reply.data, head);
                memmove(j->reply.data, j->reply.data + head, j->reply.len - head);
                buf_truncate(&j->reply, j->reply.len - head);
            }
        }
        j->deadline = now() + 5.0;
        j->next = waiting;
        waiting = j;
        return;
    }
    if (j->ok && j->seq > 0)
        msg_info("admin: %s %s by %s", j->cmd, job_object(j), j->actor);
    answer(j);
}

void adm_dir_advanced(uint64_t seq)
{
    struct adm_job **pp = &waiting;
    while (*pp) {
        struct adm_job *j = *pp;
        if (j->seq <= seq) {
            *pp = j->next;
            msg_info("admin: %s %s by %s", j->cmd, job_object(j), j->actor);
            answer(j);
        } else {
            pp = &j->next;
        }
    }
}

void adm_tick(void)
{
    double t = now();
    struct adm_job **pp = &waiting;
    while (*pp) {
        struct adm_job *j = *pp;
        if (j->deadline <= t) {
            *pp = j->next;
            /* committed, but not yet seen here: say so, it is not an error */
            buf_truncate(&j->reply, j->reply.len ? j->reply.len - 1 : 0);
            buf_adds(&j->reply, " (committed; not yet in this daemon's memory)\n");
            msg_warn("admin: %s committed at change %" PRIu64 " but not yet applied here", j->cmd, j->seq);
            answer(j);
        } else {
            pp = &j->next;
        }
    }
}

void adm_init(const struct adm_host *host)
{
    H = *host;
}

void adm_shutdown(void)
{
    adm_db_stop();
    imports_abandon();
    acl_free();
}

void adm_set_delims(const char *delims)
{
    H.delims = delims;
}
