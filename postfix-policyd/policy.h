/* policy.h - Postfix policy delegation (check_policy_service): the checks
 * answered from the directory in memory.
 *
 * Outbound, on a SASL-authenticated session: the login must be a mailbox
 * here, enabled (its domain too) and allowed to send, and the envelope
 * sender must be one the login owns (as Postfix's
 * reject_sender_login_mismatch, from the same "senders" map). Inbound,
 * at RCPT without SASL: a recipient that is a mailbox here that may not
 * receive is refused with 550 5.2.1, and one whose mailboxes (aliases and
 * mailbox forwards followed) are all over quota with 552 5.2.2 or 452
 * 4.2.2 (quota.h). A mailbox that may not receive never forwards either.
 * Everything else gets DUNNO, so the rest of Postfix's restrictions
 * decide.
 *
 * Reply texts leave out the address Postfix puts in front itself
 * ("<rcpt>: Recipient address rejected: ...").
 *
 * Outbound rate limits are decided in PostgreSQL (mailroster.send_admit,
 * sql/migrations/0005_rate_limits.sql), at END-OF-MESSAGE only, with
 * recipient_count: when env->admit is set, an authenticated END-OF-MESSAGE
 * request that passed the checks above is not answered here but handed out
 * in *env->admit, and the caller answers it later with pol_admit_answer().
 * RCPT never waits on the database: it refuses only an account that an
 * earlier answer showed to be full (env->full, "full until T").
 *
 * An account whose sending is suspended (dir_mailbox.send_suspended, set
 * in PostgreSQL by send_admit after repeated refusals, migration 0006) is
 * answered "HOLD" at every state: Postfix accepts its messages into the
 * hold queue, where they wait for a sysop. The admission that suspends an
 * account is answered HOLD too (PV_SUSPENDED). */
#ifndef MR_POLICY_H
#define MR_POLICY_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "dir.h"
#include "polproto.h"
#include "quota.h"

/* What a request was answered with; the counters in stats. */
enum pol_decision {
    POL_DUNNO,
    POL_REJECT_UNKNOWN_LOGIN,
    POL_REJECT_DISABLED,
    POL_REJECT_MAY_NOT_SEND,
    POL_REJECT_SENDER_NOT_OWNED,
    POL_REJECT_RCPT_UNAVAILABLE,
    POL_DEFER_NOT_LOADED,
    POL_DEFER_RATE_LIMIT,       /* over a limit (END-OF-MESSAGE, or known full at RCPT) */
    POL_REJECT_TOO_MANY_RCPTS,  /* more recipients than a window ever allows */
    POL_DEFER_DB_UNAVAILABLE,   /* no admission: database down or too slow, action defer */
    POL_DUNNO_DB_UNAVAILABLE,   /* ... action dunno (the message goes out uncounted) */
    POL_REJECT_OVER_QUOTA,      /* inbound: every mailbox of the recipient is over quota */
    POL_DEFER_OVER_QUOTA,       /* ... with policy_over_quota_action = defer */
    POL_HOLD_SUSPENDED,         /* sending suspended: HOLD (Postfix's hold queue) */
    POL_NDECISIONS
};

struct pol_stats {
    unsigned long requests;
    unsigned long decisions[POL_NDECISIONS];
    unsigned long incomplete;   /* a request without what a check needs: DUNNO */
    unsigned long malformed;    /* broken requests: logged, connection closed */
    unsigned long admissions;   /* END-OF-MESSAGE admissions asked of the database */
    unsigned long admitted;     /* ... admitted (answered DUNNO, counted in decisions too) */
    unsigned long db_timeouts;  /* ... not answered within policy_db_timeout */
    unsigned long db_errors;    /* ... database unreachable or the query failed */
};

/* Accounts known to be full, until when (seconds, the caller's clock): a
 * cache of the database's last word, so that RCPT can refuse without
 * asking. Bounded: entries go when they expire, and at POL_FULL_MAX the
 * table forgets expired ones first, then refuses new ones (EOM still
 * decides). RCPT trusts an entry for POL_FULL_TRUST seconds only: after
 * that the next message goes to END-OF-MESSAGE, where the database says
 * again (so a "limit reset", a raised limit or another host's view is
 * noticed within that time); the fallback when the database is down
 * trusts it until it expires. */
#define POL_FULL_MAX 100000
#define POL_FULL_TRUST 60.0
struct pol_full;
struct pol_full *pol_full_new(void);
void pol_full_free(struct pol_full *f);
/* Full until `until` by the limit `what` ("3 messages per 1h"); until <= now
 * (or what NULL) forgets the login. */
void pol_full_set(struct pol_full *f, const char *login, double until, double now, const char *what);
/* 1 when login is full at now, with the refusal into action; else 0 (an
 * expired entry is forgotten). fresh: only an entry set less than
 * POL_FULL_TRUST s ago counts. */
int pol_full_get(struct pol_full *f, const char *login, double now, int fresh, char *action, size_t asize);
size_t pol_full_count(const struct pol_full *f);

/* An admission to ask the database for (filled by pol_request). */
#define POL_LOGIN_MAX 320
struct pol_admit {
    int pending;                /* set: the request was not answered; ask, then answer */
    char login[POL_LOGIN_MAX];  /* canonical login (the mailbox address) */
    int recipients;             /* recipient_count */
    char queue_id[64];
};

/* What mailroster.send_admit() said, or that it could not be asked. */
enum pol_verdict { PV_OK, PV_DEFER, PV_TOOBIG, PV_UNKNOWN, PV_UNAVAILABLE, PV_TIMEOUT, PV_SUSPENDED };
struct pol_admit_result {
    enum pol_verdict verdict;
    char kind[16];              /* "messages" / "recipients" */
    long limit, window, used;
    double free_in;             /* s until this message would fit; < 0 = unknown */
    double full_in;             /* s until a 1-recipient message fits; < 0 = not full */
    char reason[512];           /* PV_SUSPENDED: why */
    int suspended_now;          /* PV_SUSPENDED: this admission suspended the account */
};

/* The answer to an admission, into action (without "action="); remembers
 * in full when the account is full (and forgets it when not). defer_when_down:
 * policy_db_unavailable_action = defer. Pure: now is the caller's clock. */
enum pol_decision pol_admit_answer(const struct pol_admit *a, const struct pol_admit_result *r,
                                   int defer_when_down, struct pol_full *full, double now,
                                   char *action, size_t asize);

/* "HOLD sending suspended for <login>: reason" into action (printable
 * ASCII, bounded: Postfix logs the text). */
void pol_hold_text(char *action, size_t asize, const char *login, const char *reason);

/* "3600" -> "1h", "90" -> "90s", "86400" -> "1d" (for reply texts) */
void pol_fmt_window(long seconds, char *dst, size_t size);

struct pol_env {
    const struct dir *dir;      /* NULL = not loaded yet */
    const char *delims;         /* recipient delimiters */
    struct pol_stats *stats;
    struct pol_req *req;        /* the connection's own parser state (see pol_parse) */
    void (*log)(void *arg, int warn, const char *text);
    void *log_arg;
    /* rate limits; both NULL = none (no admission asked, nothing refused) */
    struct pol_full *full;      /* accounts known full, refused at RCPT */
    struct pol_admit *admit;    /* END-OF-MESSAGE admissions are handed out here */
    double now;                 /* the clock full is kept with */
    /* recipient quota (inbound RCPT): usage NULL = not known, not checked */
    const struct quota_usage *usage;
    int quota_defer;            /* 452 4.2.2 instead of 552 5.2.2 */
    /* LK_NSCRATCH buffers reused from request to request (the caller's,
     * one thread at a time), or NULL: each request allocates its own */
    struct buf *scratch;
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
