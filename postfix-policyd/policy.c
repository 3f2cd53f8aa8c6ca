/* policy.c - the policy checks answered from memory (see policy.h). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "htab.h"
#include "log.h"
#include "lookup.h"
#include "mem.h"
#include "policy.h"
#include "proto.h"

static const char *decision_names[POL_NDECISIONS] = {
    "dunno", "reject_unknown_login", "reject_disabled", "reject_may_not_send",
    "reject_sender_not_owned", "reject_recipient_unavailable", "defer_not_loaded",
    "defer_rate_limit", "reject_too_many_recipients", "defer_db_unavailable",
    "dunno_db_unavailable", "reject_over_quota", "defer_over_quota", "hold_suspended",
};

const char *pol_decision_name(enum pol_decision d)
{
    return d < POL_NDECISIONS ? decision_names[d] : "?";
}

static void say(const struct pol_env *env, int warn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(const struct pol_env *env, int warn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_callv(env->log, env->log_arg, warn, fmt, ap);
    va_end(ap);
}

/* Values go into SMTP reply texts: printable ASCII only, bounded. */
static void clean(char *dst, size_t size, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < size; i++)
        dst[i] = (src[i] > 0x20 && src[i] < 0x7f) ? src[i] : '?';
    dst[i] = 0;
}

/* The mailbox behind a canonical address, if any, with its domain. */
static const struct dir_mailbox *mailbox_of(const struct dir *d, const struct buf *addr, size_t at,
                                            const struct dir_domain **dom)
{
    *dom = dir_domain_get(d, addr->data + at + 1, addr->len - at - 1);
    return *dom ? dir_mailbox_get(d, addr->data, addr->len) : NULL;
}

/* Is login among the comma-separated owners? */
static int owns(const char *owners, size_t len, const char *login)
{
    size_t ll = strlen(login);
    const char *p = owners, *end = owners + len;
    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        size_t n = c ? (size_t)(c - p) : (size_t)(end - p);
        if (n == ll && !memcmp(p, login, n))
            return 1;
        p += n + 1;
    }
    return 0;
}

/* Is sender the login's own address, written as the login is? Then the
 * senders map's answer is known: its first key, the address itself, is
 * this mailbox (enabled: outbound() refused a disabled one before), so the
 * login is among the owners and no later key is asked. Most submissions
 * send as their login. */
static int own_address(const struct dir_mailbox *m, const char *login, const char *sender,
                       const struct buf *canon)
{
    return strcmp(sender, login) == 0 && strcmp(m->address, canon->data) == 0;
}

/* canon_out (POL_LOGIN_MAX): the canonical login when it is a mailbox here
 * (a mailbox address is at most 254 octets: the schema refuses longer) */
static enum pol_decision outbound(const struct pol_env *env, const char *login, const char *sender,
                                  char *action, size_t asize, char *canon_out)
{
    struct lk_work w;
    size_t at;
    const struct dir_domain *dom;
    const struct dir_mailbox *m = NULL;
    char shown[300], shown_sender[300];
    enum pol_decision d = POL_DUNNO;

    lk_work_take(&w, env->scratch);
    struct buf *canon = w.bufs.a, *owners = w.bufs.b;
    if (addr_canon(login, strlen(login), canon, &at) == ADDR_OK && at > 0)
        m = mailbox_of(env->dir, canon, at, &dom);
    if (m == NULL)
        d = POL_REJECT_UNKNOWN_LOGIN;
    else if (!dom->enabled || !m->enabled)
        d = POL_REJECT_DISABLED;
    else if (!m->may_send)
        d = POL_REJECT_MAY_NOT_SEND;
    else if (sender && *sender && !own_address(m, login, sender, canon) && /* "<>": as Postfix, not checked */
             (lk_lookup_in(env->dir, LK_SENDERS, sender, strlen(sender), env->delims, owners, w.keys) ==
                  LK_NOTFOUND ||
              !owns(owners->data, owners->len, canon->data)))
        d = POL_REJECT_SENDER_NOT_OWNED;
    else if (m->send_suspended)
        d = POL_HOLD_SUSPENDED;
    if (d == POL_DUNNO) {
        /* the usual answer: no text to build */
        if (canon->len < POL_LOGIN_MAX)
            memcpy(canon_out, canon->data, canon->len + 1);
        else
            *canon_out = 0;
        lk_work_give(&w);
        return d;
    }
    clean(shown, sizeof(shown), login);
    switch (d) {
    case POL_REJECT_UNKNOWN_LOGIN:
        snprintf(action, asize, "554 5.7.1 Login <%s> has no mailbox here", shown);
        break;
    case POL_REJECT_DISABLED:
        snprintf(action, asize, "554 5.7.1 Account <%s> is disabled", shown);
        break;
    case POL_REJECT_MAY_NOT_SEND:
        snprintf(action, asize, "554 5.7.1 Account <%s> may not send mail", shown);
        break;
    case POL_REJECT_SENDER_NOT_OWNED:
        clean(shown_sender, sizeof(shown_sender), sender);
        snprintf(action, asize, "553 5.7.1 Sender address <%s> is not owned by user %s",
                 shown_sender, canon->data);
        break;
    default: /* POL_HOLD_SUSPENDED */
        pol_hold_text(action, asize, canon->data, m->suspended_reason);
        break;
    }
    say(env, 0, "outbound login=%s sender=<%s>: %s", m ? canon->data : shown, sender ? sender : "",
        decision_names[d]);
    lk_work_give(&w);
    return d;
}

/* Postfix's size attribute: the SIZE= of MAIL FROM, 0 when not declared
 * (or not a plain number). */
static int64_t declared_size(const char *v)
{
    int64_t n = 0;
    if (v == NULL || *v == 0 || strlen(v) > 15 || strspn(v, "0123456789") != strlen(v))
        return 0;
    for (; *v; v++)
        n = n * 10 + (*v - '0');
    return n;
}

/* Every mailbox the recipient reaches is over quota: refuse it here, so
 * the sender hears at once instead of from a bounce. m: the recipient's
 * own mailbox when it is one and does not forward (then no alias can match
 * it: an address is never both, and a catch-all never swallows a mailbox),
 * else NULL: the aliases map's answer is followed, which for a forwarding
 * mailbox is its forward (and itself when it keeps a copy), so a mailbox
 * that forwards everything is never refused for its own quota, one that
 * keeps a copy counts as one of the final mailboxes, and an outside
 * forward target always has room (lookup.c, forward_of). */
static enum pol_decision over_quota(const struct pol_env *env, const char *rcpt, const struct dir_domain *dom,
                                    const struct dir_mailbox *m, char *action, size_t asize)
{
    struct quota_result r;
    int64_t size = declared_size(pol_get(env->req, "size"));
    const char *code = env->quota_defer ? "452 4.2.2" : "552 5.2.2";
    enum pol_decision d = env->quota_defer ? POL_DEFER_OVER_QUOTA : POL_REJECT_OVER_QUOTA;
    char shown[300];

    if (m && m->forward == NULL) {
        memset(&r, 0, sizeof(r));
        r.verdict = quota_mailbox(dom, m, env->usage, size, &r);
    } else {
        quota_rcpt(env->dir, env->usage, env->delims, rcpt, size, &r);
    }
    if (r.verdict == QUOTA_ROOM)
        return POL_DUNNO;
    if (r.verdict == QUOTA_NO_ROOM)
        snprintf(action, asize, "%s Not enough room in the mailbox for a message of %lld octets", code,
                 (long long)size);
    else
        snprintf(action, asize, "%s Mailbox full", code);
    clean(shown, sizeof(shown), rcpt);
    say(env, 0, "inbound recipient=<%s> size=%lld: %s (%d of %d mailboxes over quota; %s: %s %lld of %lld)",
        shown, (long long)size, decision_names[d], r.over, r.mailboxes, r.mailbox, r.what,
        (long long)r.used, (long long)r.limit);
    return d;
}

static enum pol_decision inbound(const struct pol_env *env, const char *rcpt, char *action, size_t asize)
{
    struct lk_work w;
    size_t at;
    const struct dir_domain *dom = NULL;
    const struct dir_mailbox *m = NULL;
    enum pol_decision d = POL_DUNNO;

    lk_work_take(&w, env->scratch);
    struct buf *canon = w.bufs.a;
    if (addr_canon(rcpt, strlen(rcpt), canon, &at) == ADDR_OK && at > 0) {
        /* user+ext@domain is user@domain's mailbox */
        size_t ext = addr_ext_split(canon->data, at, env->delims);
        if (ext < at) {
            memmove(canon->data + ext, canon->data + at, canon->len - at + 1);
            canon->len -= at - ext;
            at = ext;
        }
        m = mailbox_of(env->dir, canon, at, &dom);
    }
    if (m && dom->enabled && (!m->enabled || !m->may_receive)) {
        snprintf(action, asize, "550 5.2.1 Mailbox unavailable");
        d = POL_REJECT_RCPT_UNAVAILABLE;
        say(env, 0, "inbound recipient=<%s>: %s", canon->data, decision_names[d]);
    } else if (env->usage && dom != NULL) {
        /* a domain not hosted here has no mailbox and no alias (both
         * belong to a domain row): nothing to be full */
        d = over_quota(env, rcpt, dom, m, action, asize);
    }
    lk_work_give(&w);
    return d;
}

/* After the in-memory checks passed for a login: RCPT refuses an account
 * known to be full; END-OF-MESSAGE hands the admission out
 * (POL_NDECISIONS: nothing to answer now). */
static enum pol_decision rate_limit(const struct pol_env *env, const char *state, const char *canon,
                                    char *action, size_t asize)
{
    if (!strcmp(state, "RCPT")) {
        if (env->full && pol_full_get(env->full, canon, env->now, 1, action, asize)) {
            say(env, 0, "outbound login=%s: known to be at its sending limit: defer_rate_limit", canon);
            return POL_DEFER_RATE_LIMIT;
        }
        return POL_DUNNO;
    }
    if (strcmp(state, "END-OF-MESSAGE") != 0 || env->admit == NULL)
        return POL_DUNNO;
    /* recipient_count: the whole message at once (recipient= is empty when
     * there are several) */
    const char *rc = pol_get(env->req, "recipient_count");
    char *end = NULL;
    long n = rc && *rc ? strtol(rc, &end, 10) : -1;
    if (end == NULL || *end || n < 0 || n > 1000000) {
        if (env->stats)
            env->stats->incomplete++;
        say(env, 1, "END-OF-MESSAGE request for %s without a valid recipient_count: DUNNO", canon);
        return POL_DUNNO;
    }
    const char *qid = pol_get(env->req, "queue_id");
    env->admit->pending = 1;
    snprintf(env->admit->login, sizeof(env->admit->login), "%s", canon);
    env->admit->recipients = (int)n;
    clean(env->admit->queue_id, sizeof(env->admit->queue_id), qid ? qid : "");
    return POL_NDECISIONS;
}

ssize_t pol_request(const struct pol_env *env, const char *in, size_t len, struct buf *out)
{
    size_t used = 0;
    const char *why = NULL;
    char action[700];
    enum pol_decision d = POL_DUNNO;

    if (env->admit)
        env->admit->pending = 0;
    switch (pol_parse(env->req, in, len, &used, &why)) {
    case POL_NEED_MORE:
        return 0;
    case POL_BAD:
    case POL_TOO_LONG:
        if (env->stats)
            env->stats->malformed++;
        say(env, 1, "malformed request: %s; closing the connection", why ? why : "?");
        return -1;
    case POL_OK:
        break;
    }
    if (env->stats)
        env->stats->requests++;
    const char *request = pol_get(env->req, "request");
    const char *state = pol_get(env->req, "protocol_state");
    const char *login = pol_get(env->req, "sasl_username");
    const char *sender = pol_get(env->req, "sender");
    const char *rcpt = pol_get(env->req, "recipient");
    memcpy(action, "DUNNO", sizeof("DUNNO"));
    if (request == NULL || strcmp(request, "smtpd_access_policy") != 0 || state == NULL) {
        if (env->stats)
            env->stats->incomplete++;
        say(env, 1, "request without request=smtpd_access_policy and protocol_state: DUNNO");
    } else if (env->dir == NULL) {
        /* not "no": Postfix asks again, and the client retries */
        snprintf(action, sizeof(action), "DEFER_IF_PERMIT 4.3.0 mail directory not loaded yet");
        d = POL_DEFER_NOT_LOADED;
    } else if (login && *login) {
        char canon[POL_LOGIN_MAX] = "";
        d = outbound(env, login, sender, action, sizeof(action), canon);
        if (d == POL_DUNNO && *canon)
            d = rate_limit(env, state, canon, action, sizeof(action));
        if (d == POL_NDECISIONS)
            return (ssize_t)used; /* handed out: the caller answers */
        /* a local recipient is checked as for mail from outside: a user's
         * message to a full or closed mailbox is refused now, not bounced
         * back to them after delivery failed */
        if (d == POL_DUNNO && !strcmp(state, "RCPT") && rcpt && *rcpt)
            d = inbound(env, rcpt, action, sizeof(action));
    } else if (!strcmp(state, "RCPT") && rcpt && *rcpt) {
        d = inbound(env, rcpt, action, sizeof(action));
    }
    if (env->stats)
        env->stats->decisions[d]++;
    pol_reply(out, action);
    return (ssize_t)used;
}

/* --- rate limits: answers of the database, and what RCPT remembers ------- */

void pol_hold_text(char *action, size_t asize, const char *login, const char *reason)
{
    char shown[POL_LOGIN_MAX], why[400];
    clean(shown, sizeof(shown), login);
    /* clean() turns spaces into '?': keep them, they are only logged */
    size_t i = 0;
    for (const char *p = reason ? reason : ""; *p && i + 1 < sizeof(why); p++)
        why[i++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    why[i] = 0;
    snprintf(action, asize, "HOLD sending suspended for <%s>%s%s", shown, *why ? ": " : "", why);
}

struct full_rec {
    double until;
    double trusted_until;       /* RCPT refuses on it until then */
    char *what;                 /* "3 messages per 1h" */
    size_t len;
    char login[];               /* the key */
};

struct pol_full {
    struct htab h;
};

static const void *full_key(const void *rec, size_t *len)
{
    const struct full_rec *r = rec;
    *len = r->len;
    return r->login;
}

struct pol_full *pol_full_new(void)
{
    struct pol_full *f = xcalloc(1, sizeof(*f));
    htab_init(&f->h, full_key);
    return f;
}

static void full_rec_free(struct full_rec *r)
{
    if (r) {
        free(r->what);
        free(r);
    }
}

void pol_full_free(struct pol_full *f)
{
    struct full_rec *r;
    if (f == NULL)
        return;
    for (size_t i = 0; (r = htab_next(&f->h, &i)) != NULL;)
        full_rec_free(r);
    htab_free(&f->h);
    free(f);
}

size_t pol_full_count(const struct pol_full *f) { return f ? f->h.count : 0; }

/* Forget every expired entry (a full table only: bounded work per call). */
static void full_expire(struct pol_full *f, double now)
{
    struct full_rec *r;
    size_t i = 0;
    while ((r = htab_next(&f->h, &i)) != NULL) {
        if (r->until <= now) {
            htab_del(&f->h, r->login, r->len);
            full_rec_free(r);
            i = 0;  /* backward-shift deletion moved slots: look again */
        }
    }
}

void pol_full_set(struct pol_full *f, const char *login, double until, double now, const char *what)
{
    size_t len = strlen(login);
    if (f == NULL)
        return;
    if (what == NULL || until <= now) {
        full_rec_free(htab_del(&f->h, login, len));
        return;
    }
    if (f->h.count >= POL_FULL_MAX && htab_get(&f->h, login, len) == NULL) {
        full_expire(f, now);
        if (f->h.count >= POL_FULL_MAX)
            return; /* END-OF-MESSAGE still decides */
    }
    struct full_rec *r = xmalloc(sizeof(*r) + len + 1);
    r->until = until;
    r->trusted_until = now + POL_FULL_TRUST < until ? now + POL_FULL_TRUST : until;
    r->what = xstrdup(what);
    r->len = len;
    memcpy(r->login, login, len + 1);
    full_rec_free(htab_put(&f->h, r));
}

void pol_fmt_window(long s, char *dst, size_t size)
{
    if (s > 0 && s % 86400 == 0)
        snprintf(dst, size, "%ldd", s / 86400);
    else if (s > 0 && s % 3600 == 0)
        snprintf(dst, size, "%ldh", s / 3600);
    else if (s > 0 && s % 60 == 0)
        snprintf(dst, size, "%ldm", s / 60);
    else
        snprintf(dst, size, "%lds", s);
}

/* "450 4.7.1 ..." for an account over a limit, free in `in` seconds */
static void over_limit_text(char *action, size_t asize, const char *login, const char *what,
                            double now, double in)
{
    char shown[POL_LOGIN_MAX], at[32] = "";
    double u = now + (in > 0 ? in : 0);
    long secs = in <= 0 ? 0 : (long)in + ((double)(long)in < in);   /* rounded up */
    time_t t = (time_t)u + ((double)(time_t)u < u);                  /* the same */
    struct tm tm;
    clean(shown, sizeof(shown), login);
    if (gmtime_r(&t, &tm))
        strftime(at, sizeof(at), "%H:%M:%S UTC", &tm);
    snprintf(action, asize, "450 4.7.1 Sending limit reached for <%s>: %s; try again in %ld s (at %s)",
             shown, what, secs, at);
}

int pol_full_get(struct pol_full *f, const char *login, double now, int fresh, char *action, size_t asize)
{
    size_t len = strlen(login);
    struct full_rec *r = f ? htab_get(&f->h, login, len) : NULL;
    if (r == NULL)
        return 0;
    if (r->until <= now) {
        htab_del(&f->h, login, len);
        full_rec_free(r);
        return 0;
    }
    if (fresh && r->trusted_until <= now)
        return 0;
    over_limit_text(action, asize, login, r->what, now, r->until - now);
    return 1;
}

enum pol_decision pol_admit_answer(const struct pol_admit *a, const struct pol_admit_result *r,
                                   int defer_when_down, struct pol_full *full, double now,
                                   char *action, size_t asize)
{
    char win[32], what[96], shown[POL_LOGIN_MAX];

    pol_fmt_window(r->window, win, sizeof(win));
    snprintf(what, sizeof(what), "%ld %s per %s", r->limit, r->kind[0] ? r->kind : "messages", win);
    clean(shown, sizeof(shown), a->login);
    switch (r->verdict) {
    case PV_OK:
        snprintf(action, asize, "DUNNO");
        /* full after this one? then RCPT refuses the next one at once */
        pol_full_set(full, a->login, r->full_in >= 0 ? now + r->full_in : now, now,
                     r->full_in >= 0 ? what : NULL);
        return POL_DUNNO;
    case PV_DEFER:
        over_limit_text(action, asize, a->login, what, now, r->free_in);
        if (r->full_in >= 0)
            pol_full_set(full, a->login, now + r->full_in, now, what);
        return POL_DEFER_RATE_LIMIT;
    case PV_TOOBIG:
        /* can never fit: a deferral would only make the client retry for days */
        snprintf(action, asize, "554 5.5.3 Message has %d recipients; <%s> may send to at most %s",
                 a->recipients, shown, what);
        return POL_REJECT_TOO_MANY_RCPTS;
    case PV_SUSPENDED:
        /* not a refusal: the message waits in the hold queue for a sysop */
        pol_hold_text(action, asize, a->login, r->reason);
        return POL_HOLD_SUSPENDED;
    case PV_UNKNOWN:
        /* the directory in memory knows the login, the database does not
         * (yet, or any more): the next change-log catch-up settles it */
        snprintf(action, asize, "DUNNO");
        return POL_DUNNO;
    case PV_UNAVAILABLE:
    case PV_TIMEOUT:
        break;
    }
    if (defer_when_down) {
        snprintf(action, asize, "451 4.3.0 Sending limits cannot be checked right now; try again later");
        return POL_DEFER_DB_UNAVAILABLE;
    }
    /* dunno: the message goes out uncounted, unless this daemon already
     * knows the account to be full */
    if (pol_full_get(full, a->login, now, 0, action, asize))
        return POL_DEFER_RATE_LIMIT;
    snprintf(action, asize, "DUNNO");
    return POL_DUNNO_DB_UNAVAILABLE;
}
