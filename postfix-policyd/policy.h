/* policy.h - Postfix policy delegation (check_policy_service): the checks
 * answered from the directory in memory.
 *
 * Outbound, on a SASL-authenticated session: the login must be a mailbox
 * here, enabled (its domain too) and allowed to send, and the envelope
 * sender must be one the login owns (as Postfix's
 * reject_sender_login_mismatch, from the same "senders" map). Inbound,
 * at RCPT without SASL: a recipient that is a mailbox here that may not
 * receive is refused with 550 5.2.1. Everything else gets DUNNO, so the
 * rest of Postfix's restrictions decide.
 *
 * Reply texts leave out the address Postfix puts in front itself
 * ("<rcpt>: Recipient address rejected: ...").
 *
 * The checks that need PostgreSQL (rate limits, recipient quota) are not
 * made here. */
#ifndef MR_POLICY_H
#define MR_POLICY_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "dir.h"
#include "polproto.h"

/* What a request was answered with; the counters in stats. */
enum pol_decision {
    POL_DUNNO,
    POL_REJECT_UNKNOWN_LOGIN,
    POL_REJECT_DISABLED,
    POL_REJECT_MAY_NOT_SEND,
    POL_REJECT_SENDER_NOT_OWNED,
    POL_REJECT_RCPT_UNAVAILABLE,
    POL_DEFER_NOT_LOADED,
    POL_NDECISIONS
};

struct pol_stats {
    unsigned long requests;
    unsigned long decisions[POL_NDECISIONS];
    unsigned long incomplete;   /* a request without what a check needs: DUNNO */
    unsigned long malformed;    /* broken requests: logged, connection closed */
};

struct pol_env {
    const struct dir *dir;      /* NULL = not loaded yet */
    const char *delims;         /* recipient delimiters */
    struct pol_stats *stats;
    struct pol_req *req;        /* the connection's own parser state (see pol_parse) */
    void (*log)(void *arg, int warn, const char *text);
    void *log_arg;
};

/* Answer the request at the start of in: bytes consumed (> 0), 0 for more
 * input, < 0 when the stream is broken (nothing is answered then: Postfix
 * retries on a new connection, as SMTPD_POLICY_README asks). env->req
 * belongs to one connection, and in follows pol_parse's resuming rules:
 * it starts at the stream's first unconsumed byte and only grows until a
 * request is consumed. */
ssize_t pol_request(const struct pol_env *env, const char *in, size_t len, struct buf *out);

const char *pol_decision_name(enum pol_decision d);

#endif
