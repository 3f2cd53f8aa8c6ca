/* auth.c - the auth endpoint's protocol and answers (see auth.h). Pure over
 * buffers, like the table protocols: the caller owns the socket. */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "auth.h"
#include "codec.h"
#include "log.h"
#include "mem.h"

#define AUTH_MAX_FIELDS 8

static const char *kind_names[AUTH_NKINDS] = { "passdb", "master", "userdb", "iterate" };
static const char *outcome_names[AUTH_NOUTCOMES] = { "ok", "notfound", "disabled", "denied", "tempfail" };
static const char *outcome_words[AUTH_NOUTCOMES] = { "OK", "NOTFOUND", "DISABLED", "DENIED", "FAIL" };

const char *auth_kind_name(enum auth_kind k) { return k < AUTH_NKINDS ? kind_names[k] : "?"; }
const char *auth_outcome_name(enum auth_outcome o) { return o < AUTH_NOUTCOMES ? outcome_names[o] : "?"; }

static void say(const struct auth_env *env, int warn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(const struct auth_env *env, int warn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_callv(env->log, env->log_arg, warn, fmt, ap);
    va_end(ap);
}

/* One answer under construction: "ID WORD" then key=value fields. */
static void begin(struct buf *out, const char *id, const char *word)
{
    buf_adds(out, id);
    buf_addc(out, '\t');
    buf_adds(out, word);
}

static void field(struct buf *out, const char *key, const char *value)
{
    buf_addc(out, '\t');
    buf_adds(out, key);
    buf_addc(out, '=');
    tabesc_encode(out, value, strlen(value));
}

static void field_num(struct buf *out, const char *key, long long v)
{
    char n[32];
    snprintf(n, sizeof(n), "%lld", v);
    field(out, key, n);
}

static void end(struct buf *out) { buf_addc(out, '\n'); }

static void answer(struct buf *out, const char *id, enum auth_outcome o, const char *reason)
{
    begin(out, id, outcome_words[o]);
    if (reason)
        field(out, "reason", reason);
    end(out);
}

static void error(const struct auth_env *env, struct buf *out, const char *id, const char *why)
{
    if (env->stats)
        env->stats->errors++;
    say(env, 1, "malformed request: %s", why);
    begin(out, id, "ERROR");
    field(out, "reason", why);
    end(out);
}

/* Dovecot service name -> access bit; 0 = not one we restrict (doveadm, ...). */
static uint32_t service_bit(const char *s)
{
    static const struct { const char *name; uint32_t bit; } map[] = {
        { "imap", SVC_IMAP }, { "pop3", SVC_POP3 }, { "submission", SVC_SUBMISSION },
        { "smtp", SVC_SUBMISSION }, /* Postfix's SASL through Dovecot */
        { "lmtp", SVC_LMTP }, { "sieve", SVC_SIEVE }, { "managesieve", SVC_SIEVE },
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(map[i].name, s))
            return map[i].bit;
    return 0;
}

/* The account behind a login name, its domain, and why it may not be used. */
struct acct {
    struct buf name;                    /* canonical address */
    const struct dir_mailbox *mbox;
    const struct dir_domain *dom;
};

static enum auth_outcome find_acct(const struct dir *d, const char *user, struct acct *a,
                                   const char **reason, char *rbuf, size_t rlen)
{
    size_t at;
    buf_init(&a->name);
    a->mbox = NULL;
    a->dom = NULL;
    if (addr_canon(user, strlen(user), &a->name, &at) != ADDR_OK || at == 0)
        return AUTH_NOTFOUND;
    a->dom = dir_domain_get(d, a->name.data + at + 1, a->name.len - at - 1);
    a->mbox = dir_mailbox_get(d, a->name.data, a->name.len);
    if (a->dom == NULL || a->mbox == NULL)
        return AUTH_NOTFOUND;
    if (!a->dom->enabled) {
        snprintf(rbuf, rlen, "domain disabled%s%s", a->dom->disabled_reason ? ": " : "",
                 a->dom->disabled_reason ? a->dom->disabled_reason : "");
        *reason = rbuf;
        return AUTH_DISABLED;
    }
    if (!a->mbox->enabled) {
        snprintf(rbuf, rlen, "mailbox disabled%s%s", a->mbox->disabled_reason ? ": " : "",
                 a->mbox->disabled_reason ? a->mbox->disabled_reason : "");
        *reason = rbuf;
        return AUTH_DISABLED;
    }
    return AUTH_OK;
}

static enum auth_outcome check_service(const struct dir_mailbox *m, const char *service,
                                       const char **reason, char *rbuf, size_t rlen)
{
    uint32_t bit = service_bit(service);
    if (bit && !(m->services & bit)) {
        snprintf(rbuf, rlen, "service %s not allowed for this mailbox", service);
        *reason = rbuf;
        return AUTH_DENIED;
    }
    return AUTH_OK;
}

static enum auth_outcome do_pass(const struct auth_env *env, char **f, struct buf *out)
{
    struct acct a;
    const char *reason = NULL;
    char rbuf[600];
    enum auth_outcome o = find_acct(env->dir, f[2], &a, &reason, rbuf, sizeof(rbuf));

    if (o == AUTH_OK)
        o = check_service(a.mbox, f[3], &reason, rbuf, sizeof(rbuf));
    if (o == AUTH_OK && a.mbox->password == NULL) {
        reason = "no password set";
        o = AUTH_DENIED;
    }
    if (o == AUTH_OK) {
        begin(out, f[0], "OK");
        field(out, "user", a.name.data);
        field(out, "password", a.mbox->password);
        end(out);
    } else {
        answer(out, f[0], o, reason);
        if (o != AUTH_NOTFOUND)
            say(env, 0, "passdb %s (%s): %s", a.name.data, f[3], reason);
    }
    buf_free(&a.name);
    return o;
}

/* Is domain in the comma-separated scope list (NULL = every domain)? */
static int in_scope(const char *list, const char *domain)
{
    size_t dl = strlen(domain);
    const char *p = list;
    if (list == NULL)
        return 1;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == dl && !memcmp(p, domain, n))
            return 1;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* A master user opening someone's mailbox: both must be usable, the target
 * inside the master's domains. Every use is logged, allowed or not. */
static enum auth_outcome do_master(const struct auth_env *env, char **f, struct buf *out)
{
    const char *mname = f[2], *service = f[4];
    const struct dir_master *ms = dir_master_get(env->dir, mname, strlen(mname));
    struct acct a;
    const char *reason = NULL;
    char rbuf[600];
    enum auth_outcome o;

    buf_init(&a.name);
    if (ms == NULL) {
        o = AUTH_NOTFOUND;
        reason = "no such master user";
    } else if (!ms->enabled) {
        o = AUTH_DISABLED;
        reason = "master user disabled";
    } else if (ms->password == NULL) {
        o = AUTH_DENIED;
        reason = "master user has no password";
    } else {
        buf_free(&a.name);
        o = find_acct(env->dir, f[3], &a, &reason, rbuf, sizeof(rbuf));
        if (o == AUTH_NOTFOUND) {
            o = AUTH_DENIED;
            reason = "target mailbox not found";
        } else if (o == AUTH_OK && !in_scope(ms->domains, a.dom->name)) {
            o = AUTH_DENIED;
            reason = "target outside the master user's domains";
        } else if (o == AUTH_OK) {
            o = check_service(a.mbox, service, &reason, rbuf, sizeof(rbuf));
        }
        if (o == AUTH_DISABLED)
            o = AUTH_DENIED;    /* the target's state, not the master's */
    }
    if (o == AUTH_OK) {
        begin(out, f[0], "OK");
        field(out, "user", ms->name);
        field(out, "password", ms->password);
        end(out);
        say(env, 0, "master user %s for %s (%s): allowed, password check follows", mname,
            a.name.len ? a.name.data : f[3], service);
    } else {
        answer(out, f[0], o, reason);
        say(env, 1, "master user %s for %s (%s): refused: %s", mname,
            a.name.len ? a.name.data : f[3], service, reason);
    }
    buf_free(&a.name);
    return o;
}

static int64_t effective(int64_t own, int64_t dflt) { return own >= 0 ? own : dflt; }

static enum auth_outcome do_user(const struct auth_env *env, char **f, struct buf *out)
{
    struct acct a;
    const char *reason = NULL;
    char rbuf[600];
    enum auth_outcome o = find_acct(env->dir, f[2], &a, &reason, rbuf, sizeof(rbuf));
    const struct dir_mailbox *m = a.mbox;

    /* to LMTP and everyone else a mailbox that is off does not exist */
    if (o == AUTH_OK && !strcmp(f[3], "lmtp") && !m->may_receive)
        o = AUTH_NOTFOUND;
    if (o != AUTH_OK) {
        answer(out, f[0], AUTH_NOTFOUND, NULL);
        buf_free(&a.name);
        return AUTH_NOTFOUND;
    }
    begin(out, f[0], "OK");
    field(out, "user", a.name.data);
    if (m->home) {
        field(out, "home", m->home);
    } else {
        struct buf h;
        buf_init(&h);
        buf_adds(&h, env->defaults->mail_base);
        if (h.len && h.data[h.len - 1] != '/')
            buf_addc(&h, '/');
        buf_adds(&h, m->maildir);
        if (h.len > 1 && h.data[h.len - 1] == '/')
            buf_truncate(&h, h.len - 1);
        field(out, "home", h.data);
        buf_free(&h);
    }
    if (m->mail)
        field(out, "mail", m->mail);
    if (m->uid > 0)
        field_num(out, "uid", m->uid);
    else if (env->defaults->uid > 0)
        field_num(out, "uid", env->defaults->uid);
    if (m->gid > 0)
        field_num(out, "gid", m->gid);
    else if (env->defaults->gid > 0)
        field_num(out, "gid", env->defaults->gid);
    /* Dovecot's quota plugin enforces these; 0 = unlimited = no rule */
    int64_t qb = effective(m->quota_bytes, a.dom->quota_bytes);
    int64_t qm = effective(m->quota_messages, a.dom->quota_messages);
    char rule[64];
    if (qb > 0) {
        snprintf(rule, sizeof(rule), "*:storage=%" PRId64 "B", qb);
        field(out, "quota_rule", rule);
    }
    if (qm > 0) {
        snprintf(rule, sizeof(rule), "*:messages=%" PRId64, qm);
        field(out, qb > 0 ? "quota_rule2" : "quota_rule", rule);
    }
    end(out);
    buf_free(&a.name);
    return AUTH_OK;
}

struct auth_list {
    char *id;                   /* the request's */
    uint64_t *ids;
    size_t n, pos;
};

/* Every mailbox that can log in or receive: what `doveadm user '*'` and
 * `doveadm -A` walk. */
int auth_list_next(struct auth_list *it, const struct dir *d, struct buf *out, size_t max)
{
    size_t start = out->len;
    while (it->pos < it->n && out->len - start < max) {
        const struct dir_mailbox *m = dir_mailbox_by_id(d, it->ids[it->pos++]);
        const char *at = m ? strchr(m->address, '@') : NULL;
        const struct dir_domain *dom = at ? dir_domain_get(d, at + 1, strlen(at + 1)) : NULL;
        if (m == NULL || !m->enabled || dom == NULL || !dom->enabled)
            continue; /* removed or disabled since the LIST began */
        begin(out, it->id, "ROW");
        buf_addc(out, '\t');
        tabesc_encode(out, m->address, strlen(m->address));
        end(out);
    }
    if (it->pos < it->n)
        return 1;
    begin(out, it->id, "END");
    end(out);
    return 0;
}

void auth_list_free(struct auth_list *it)
{
    if (it == NULL)
        return;
    free(it->id);
    free(it->ids);
    free(it);
}

static enum auth_outcome do_list(const struct auth_env *env, char **f, struct buf *out)
{
    const struct dir_mailbox *m;
    struct auth_list *it = xcalloc(1, sizeof(*it));

    it->id = xstrdup(f[0]);
    it->ids = xcalloc(dir_count(env->dir, DIR_MAILBOX) + 1, sizeof(*it->ids));
    for (size_t i = 0; (m = htab_next(&env->dir->mbox_addr, &i)) != NULL;)
        it->ids[it->n++] = m->id;
    if (env->list) {
        env->list(env->list_arg, it);
        return AUTH_OK;
    }
    while (auth_list_next(it, env->dir, out, (size_t)-1))
        ;
    auth_list_free(it);
    return AUTH_OK;
}

static const struct {
    const char *word;
    enum auth_kind kind;
    int nfields;                /* incl. id and word */
    enum auth_outcome (*fn)(const struct auth_env *, char **, struct buf *);
} cmds[] = {
    { "PASS", AUTH_PASS, 4, do_pass },
    { "MASTER", AUTH_MASTER, 5, do_master },
    { "USER", AUTH_USER, 4, do_user },
    { "LIST", AUTH_LIST, 2, do_list },
};

static int valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 10 || s[0] == '0')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return strtoull(s, NULL, 10) <= 0xffffffffULL;
}

ssize_t auth_request(const struct auth_env *env, const char *in, size_t len, struct buf *out)
{
    const char *nl = memchr(in, '\n', len < AUTH_MAX_LINE ? len : AUTH_MAX_LINE);
    char line[AUTH_MAX_LINE];
    char *f[AUTH_MAX_FIELDS];
    int nf = 0;

    if (nl == NULL) {
        if (len < AUTH_MAX_LINE)
            return 0;
        error(env, out, "0", "request line too long");
        return -1;
    }
    size_t used = (size_t)(nl - in) + 1, ll = used - 1;
    memcpy(line, in, ll);
    line[ll] = 0;
    if (memchr(line, 0, ll) != NULL) {
        error(env, out, "0", "NUL in request");
        return (ssize_t)used;
    }
    /* split at TABs, then undo the escaping of each field */
    for (char *p = line;;) {
        char *tab = strchr(p, '\t');
        if (nf == AUTH_MAX_FIELDS) {
            error(env, out, valid_id(f[0]) ? f[0] : "0", "too many fields");
            return (ssize_t)used;
        }
        f[nf++] = p;
        if (tab == NULL)
            break;
        *tab = 0;
        p = tab + 1;
    }
    for (int i = 0; i < nf; i++) {
        long n = tabesc_decode(f[i], strlen(f[i]));
        if (n < 0) {
            error(env, out, i > 0 && valid_id(f[0]) ? f[0] : "0", "bad escape");
            return (ssize_t)used;
        }
        f[i][n] = 0;
    }
    if (!strcmp(f[0], "VERSION")) {
        if (nf < 2 || strcmp(f[1], "1") != 0) {
            error(env, out, "0", "unsupported protocol version (this is 1)");
            return -1;
        }
        buf_adds(out, "VERSION\t1\t0\n");
        return (ssize_t)used;
    }
    if (!valid_id(f[0])) {
        error(env, out, "0", "request without a valid id");
        return (ssize_t)used;
    }
    if (nf < 2) {
        error(env, out, f[0], "no command");
        return (ssize_t)used;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(cmds[i].word, f[1]) != 0)
            continue;
        if (nf != cmds[i].nfields) {
            error(env, out, f[0], "wrong number of fields");
            return (ssize_t)used;
        }
        for (int j = 2; j < nf; j++)
            if (f[j][0] == 0) {
                error(env, out, f[0], "empty field");
                return (ssize_t)used;
            }
        enum auth_outcome o;
        if (env->dir == NULL) {
            answer(out, f[0], AUTH_FAIL, "directory not loaded yet");
            o = AUTH_FAIL;
        } else {
            o = cmds[i].fn(env, f, out);
        }
        if (env->stats)
            env->stats->n[cmds[i].kind][o]++;
        return (ssize_t)used;
    }
    error(env, out, f[0], "unknown command");
    return (ssize_t)used;
}
