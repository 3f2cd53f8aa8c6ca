/* roster-verify23.h - where the roster passdb has a plaintext password
 * checked against the hash mailrosterd answered: in an auth worker process
 * (every core hashes) or in the auth process itself. Dovecot 2.3 glue. */
#ifndef ROSTER_VERIFY23_H
#define ROSTER_VERIFY23_H

#include "passdb.h"

/* Does scheme cost a digest or two, so that handing it to a worker costs
 * more than doing it here? (PLAIN, SHA256, SSHA512 ...; not CRYPT, the
 * *-CRYPT schemes, ARGON2*, PBKDF2, SCRAM-*.) */
bool roster_scheme_is_cheap(const char *scheme);

/* Check plain against crypted ("{SCHEME}hash") for request and call
 * callback exactly once with OK, PASSWORD_MISMATCH or INTERNAL_FAILURE,
 * maybe before returning. With in_worker, a costly scheme is checked by an
 * auth worker (Dovecot's PASSW command, as auth_cache_verify_password_with_
 * worker does); the caller's reference on request is its own either way. */
void roster_verify(struct auth_request *request, const char *plain, const char *crypted,
                   bool in_worker, verify_plain_callback_t *callback);

#endif
