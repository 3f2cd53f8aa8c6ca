/* roster-verify23.c - the password check of the roster passdb (see
 * roster-verify23.h).
 *
 * The lookup itself stays on the auth process's ioloop: it costs a few
 * microseconds and pipelines on one connection. The hash does not: one
 * SHA512-CRYPT costs milliseconds, and the auth process is one process on
 * one core, so with every hash checked there a burst of logins queues
 * behind it (and a client such as Postfix's smtpd gives up on the auth
 * socket after its own timeout). Auth workers are processes the master
 * starts on demand, so the hashes go there, one per free worker. */
#include "auth-common.h"
#include "str.h"
#include "strescape.h"
#include "password-scheme.h"
#include "passdb.h"
#include "passdb-blocking.h"
#include "auth-worker-server.h"

#include "roster-verify23.h"

/* One digest (or none): cheaper here than the hand-off to a worker.
 * Dovecot's "MD5" is MD5-CRYPT, so it is not in the list. */
static const char *const roster_cheap_schemes[] = {
    "PLAIN", "CLEAR", "CLEARTEXT", "PLAIN-TRUNC", "PLAIN-MD4", "PLAIN-MD5", "LDAP-MD5",
    "SMD5", "SHA", "SHA1", "SSHA", "SHA256", "SSHA256", "SHA512", "SSHA512",
    "CRAM-MD5", "DIGEST-MD5", "NTLM", "LANMAN", NULL
};

bool roster_scheme_is_cheap(const char *scheme)
{
    /* an encoding suffix (SHA256.b64, PLAIN.hex) does not change the cost */
    size_t len = strcspn(scheme, ".");

    for (unsigned int i = 0; roster_cheap_schemes[i] != NULL; i++) {
        if (strlen(roster_cheap_schemes[i]) == len &&
            strncasecmp(roster_cheap_schemes[i], scheme, len) == 0)
            return TRUE;
    }
    return FALSE;
}

struct roster_verify_job {
    struct auth_request *request; /* our reference */
    verify_plain_callback_t *callback;
};

static bool roster_verify_worker_reply(struct auth_worker_connection *conn ATTR_UNUSED,
                                       const char *reply, void *context)
{
    struct roster_verify_job *job = context;
    struct auth_request *request = job->request;
    /* "OK\t\t" or "FAIL\t<result>"; a worker that died or a request queued
     * too long comes back as FAIL with INTERNAL_FAILURE */
    enum passdb_result result = passdb_blocking_auth_worker_reply_parse(request, reply);

    if (result == PASSDB_RESULT_PASSWORD_MISMATCH) {
        /* the worker's own line names neither the user nor the client:
         * say it here, as a check in this process would */
        auth_request_log_password_mismatch(request, AUTH_SUBSYS_DB);
    } else if (result != PASSDB_RESULT_OK) {
        result = PASSDB_RESULT_INTERNAL_FAILURE;
    }
    job->callback(result, request);
    auth_request_unref(&request);
    return TRUE;
}

static void roster_verify_in_worker(struct auth_request *request, const char *plain,
                                    const char *crypted, verify_plain_callback_t *callback)
{
    struct roster_verify_job *job = p_new(request->pool, struct roster_verify_job, 1);
    string_t *str = t_str_new(256);

    /* PASSW <passdb id> <plain> <{SCHEME}hash> <request fields>: the worker
     * checks the hash without a passdb lookup of its own */
    str_printfa(str, "PASSW\t%u\t", request->passdb->passdb->id);
    str_append_tabescaped(str, plain);
    str_append_c(str, '\t');
    str_append_tabescaped(str, crypted);
    str_append_c(str, '\t');
    auth_request_export(request, str);

    auth_request_ref(request);
    job->request = request;
    job->callback = callback;
    e_debug(authdb_event(request), "password check in an auth worker");
    auth_worker_call(request->pool, request->fields.user, str_c(str),
                     roster_verify_worker_reply, job);
}

void roster_verify(struct auth_request *request, const char *plain, const char *crypted,
                   bool in_worker, verify_plain_callback_t *callback)
{
    const char *hash = crypted;
    const char *scheme = password_get_scheme(&hash);
    int ret;

    i_assert(scheme != NULL);
    /* An auth worker cannot ask another one; a login after a master user's
     * check (skip-password-check) or a cheap scheme hashes nothing worth
     * moving. */
    if (in_worker && !worker && !request->fields.skip_password_check &&
        !roster_scheme_is_cheap(scheme)) {
        roster_verify_in_worker(request, plain, crypted, callback);
        return;
    }
    ret = auth_request_password_verify(request, plain, hash, scheme, AUTH_SUBSYS_DB);
    callback(ret > 0 ? PASSDB_RESULT_OK : PASSDB_RESULT_PASSWORD_MISMATCH, request);
}
