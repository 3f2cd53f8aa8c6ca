/* auth.h - the auth endpoint that the Dovecot `roster` driver talks to:
 * passdb, master passdb, userdb and iteration answered from memory.
 *
 * Protocol (docs/mailroster-auth.7): one request per line, fields separated
 * by TAB and tab-escaped as Dovecot's str_tabescape does, each request
 * tagged with an id the client chooses, so one connection carries many
 * lookups at once:
 *
 *   VERSION 1 0                       -> VERSION 1 0
 *   ID PASS USER SERVICE              -> ID OK user=.. password={SCHEME}..
 *   ID MASTER MASTER USER SERVICE     -> ID OK user=MASTER password=..
 *   ID USER USER SERVICE              -> ID OK user=.. home=.. uid=.. ...
 *   ID LIST                           -> ID ROW USER ... ID END
 *
 * Other answers: ID NOTFOUND, ID DISABLED reason=.. (the account or its
 * domain is off), ID DENIED reason=.. (not for this service, no password,
 * master out of scope), ID FAIL reason=.. (temporary: not loaded yet),
 * ID ERROR reason=.. (a malformed request). A line without a usable id is
 * answered with id 0; a line too long breaks the connection. */
#ifndef MR_AUTH_H
#define MR_AUTH_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "dir.h"

#define AUTH_MAX_LINE 8192

enum auth_kind { AUTH_PASS, AUTH_MASTER, AUTH_USER, AUTH_LIST, AUTH_NKINDS };
enum auth_outcome { AUTH_OK, AUTH_NOTFOUND, AUTH_DISABLED, AUTH_DENIED, AUTH_FAIL, AUTH_NOUTCOMES };

struct auth_stats {
    unsigned long n[AUTH_NKINDS][AUTH_NOUTCOMES];
    unsigned long errors;     /* malformed requests */
    unsigned long refused;    /* connections from peers not in auth_allow */
};

/* What the userdb answers besides the mailbox's own overrides. */
struct auth_defaults {
    const char *mail_base;    /* maildirs are relative to this, as Postfix's virtual_mailbox_base */
    long uid, gid;            /* 0 = leave to Dovecot's mail_uid/mail_gid */
};

/* An iteration for LIST: the ids of the mailboxes when it started (8 octets
 * each), each looked up again when its row is sent, so that a mailbox
 * changed or removed meanwhile is answered as it is then, and the
 * directory may change, or be replaced by a full load, between parts. */
struct auth_list;

/* Append rows to out until about max octets or the end ("ID END"): 1
 * while more follows, 0 after the end. d is the directory as it is now. */
int auth_list_next(struct auth_list *it, const struct dir *d, struct buf *out, size_t max);
void auth_list_free(struct auth_list *it);

struct auth_env {
    const struct dir *dir;    /* NULL = not loaded yet */
    const struct auth_defaults *defaults;
    struct auth_stats *stats;
    /* log lines: warn = 1 for refusals and malformed input; NULL = nowhere */
    void (*log)(void *arg, int warn, const char *text);
    void *log_arg;
    /* LIST: when set, hand the iteration to the caller, which sends it in
     * parts (auth_list_next) as the client reads; NULL = answer it whole. */
    void (*list)(void *arg, struct auth_list *it);
    void *list_arg;
};

/* Answer the request at the start of in: bytes consumed (> 0), 0 for more
 * input, < 0 when the stream is broken (out holds the error answer). */
ssize_t auth_request(const struct auth_env *env, const char *in, size_t len, struct buf *out);

const char *auth_kind_name(enum auth_kind k);
const char *auth_outcome_name(enum auth_outcome o);

#endif
