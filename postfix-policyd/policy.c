/* policy.c - the policy checks answered from memory (see policy.h). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "log.h"
#include "lookup.h"
#include "policy.h"

static const char *decision_names[POL_NDECISIONS] = {
    "dunno", "reject_unknown_login", "reject_disabled", "reject_may_not_send",
    "reject_sender_not_owned", "reject_recipient_unavailable", "defer_not_loaded",
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

static enum pol_decision outbound(const struct pol_env *env, const char *login, const char *sender,
                                  char *action, size_t asize)
{
    struct buf canon, owners;
    size_t at;
    const struct dir_domain *dom;
    const struct dir_mailbox *m = NULL;
    char shown[300], shown_sender[300];
    enum pol_decision d = POL_DUNNO;

    buf_init(&canon);
    buf_init(&owners);
    clean(shown, sizeof(shown), login);
    if (addr_canon(login, strlen(login), &canon, &at) == ADDR_OK && at > 0)
        m = mailbox_of(env->dir, &canon, at, &dom);
    if (m == NULL) {
        snprintf(action, asize, "554 5.7.1 Login <%s> has no mailbox here", shown);
        d = POL_REJECT_UNKNOWN_LOGIN;
    } else if (!dom->enabled || !m->enabled) {
        snprintf(action, asize, "554 5.7.1 Account <%s> is disabled", shown);
        d = POL_REJECT_DISABLED;
    } else if (!m->may_send) {
        snprintf(action, asize, "554 5.7.1 Account <%s> may not send mail", shown);
        d = POL_REJECT_MAY_NOT_SEND;
    } else if (sender && *sender &&
               (lk_lookup(env->dir, LK_SENDERS, sender, strlen(sender), env->delims, &owners) == LK_NOTFOUND ||
                !owns(owners.data, owners.len, canon.data))) {
        /* the null sender (bounces) is not checked, as in Postfix */
        clean(shown_sender, sizeof(shown_sender), sender);
        snprintf(action, asize, "553 5.7.1 Sender address <%s> is not owned by user %s",
                 shown_sender, canon.data);
        d = POL_REJECT_SENDER_NOT_OWNED;
    }
    if (d != POL_DUNNO)
        say(env, 0, "outbound login=%s sender=<%s>: %s", m ? canon.data : shown, sender ? sender : "",
            decision_names[d]);
    buf_free(&canon);
    buf_free(&owners);
    return d;
}

static enum pol_decision inbound(const struct pol_env *env, const char *rcpt, char *action, size_t asize)
{
    struct buf canon;
    size_t at;
    const struct dir_domain *dom;
    const struct dir_mailbox *m = NULL;
    enum pol_decision d = POL_DUNNO;

    buf_init(&canon);
    if (addr_canon(rcpt, strlen(rcpt), &canon, &at) == ADDR_OK && at > 0) {
        /* user+ext@domain is user@domain's mailbox */
        size_t ext = addr_ext_split(canon.data, at, env->delims);
        if (ext < at) {
            memmove(canon.data + ext, canon.data + at, canon.len - at + 1);
            canon.len -= at - ext;
            at = ext;
        }
        m = mailbox_of(env->dir, &canon, at, &dom);
    }
    if (m && dom->enabled && (!m->enabled || !m->may_receive)) {
        snprintf(action, asize, "550 5.2.1 Mailbox unavailable");
        d = POL_REJECT_RCPT_UNAVAILABLE;
        say(env, 0, "inbound recipient=<%s>: %s", canon.data, decision_names[d]);
    }
    buf_free(&canon);
    return d;
}

ssize_t pol_request(const struct pol_env *env, const char *in, size_t len, struct buf *out)
{
    size_t used = 0;
    const char *why = NULL;
    char action[700];
    enum pol_decision d = POL_DUNNO;

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
    snprintf(action, sizeof(action), "DUNNO");
    if (request == NULL || strcmp(request, "smtpd_access_policy") != 0 || state == NULL) {
        if (env->stats)
            env->stats->incomplete++;
        say(env, 1, "request without request=smtpd_access_policy and protocol_state: DUNNO");
    } else if (env->dir == NULL) {
        /* not "no": Postfix asks again, and the client retries */
        snprintf(action, sizeof(action), "DEFER_IF_PERMIT 4.3.0 mail directory not loaded yet");
        d = POL_DEFER_NOT_LOADED;
    } else if (login && *login) {
        d = outbound(env, login, sender, action, sizeof(action));
    } else if (!strcmp(state, "RCPT") && rcpt && *rcpt) {
        d = inbound(env, rcpt, action, sizeof(action));
    }
    if (env->stats)
        env->stats->decisions[d]++;
    pol_reply(out, action);
    return (ssize_t)used;
}
