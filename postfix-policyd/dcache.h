/* dcache.h - tell Dovecot's auth process to forget what it cached about
 * accounts that changed, so that a password change, a disable or a new
 * account is honoured at once with Dovecot's auth cache on (its negative
 * cache keeps "unknown user" for auth_cache_negative_ttl, an hour by
 * default).
 *
 * Dovecot's auth-master socket takes "CACHE-FLUSH <id> [<user> ...]" and
 * answers "OK <id> <count>" (what `doveadm auth cache flush` sends). The
 * names of the changed accounts are collected as changes are applied and
 * sent together a moment later, on the event loop, never waiting: a
 * Dovecot that does not answer costs a warning, not a lookup. */
#ifndef MR_DCACHE_H
#define MR_DCACHE_H

#include <stddef.h>

#include "buf.h"

struct event_base;

/* socket "" = off. Can be called again at reload. */
void dcache_init(struct event_base *base, const char *socket);
/* This account's entries must go (canonical address as the userdb answers). */
void dcache_user(const char *user);
/* Everything must go (a domain or master user changed). */
void dcache_all(void);
/* Flushes Dovecot answered, and those that failed (for status). */
void dcache_stats(unsigned long *ok, unsigned long *failed);

/* --- pure helpers (unit-tested) --- */

/* Append "CACHE-FLUSH\t<id>[\t<user>]...\n", users tab-escaped as Dovecot's
 * str_append_tabescaped does; nusers 0 = the whole cache. */
void dcache_request(struct buf *out, unsigned id, const char *const *users, size_t nusers);

#endif
