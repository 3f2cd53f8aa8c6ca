/* peer.h - lists of local users and groups allowed on a unix socket
 * ("root, dovecot, 1001, @mail"), resolved to ids once, when the
 * configuration is read, so that checking a peer never asks NSS (which
 * may be LDAP and slow) on the event loop. */
#ifndef MR_PEER_H
#define MR_PEER_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

struct peer_list {
    uid_t *uids;        /* users named, and the members of the groups named */
    char **names;       /* their login names, NULL where none is known */
    size_t nuids;
    gid_t *gids;        /* primary groups named */
    size_t ngids;
};

/* Resolve spec, the value of the parameter param. Names that do not exist
 * are skipped and logged in one warning ("param: no such user or group:
 * a, b"). Numeric ids are taken as they are. */
void peer_list_load(struct peer_list *pl, const char *spec, const char *param);
void peer_list_free(struct peer_list *pl);
/* Does the list admit a peer with this uid and primary gid? */
int peer_list_has(const struct peer_list *pl, uid_t uid, gid_t gid);
/* The login name of a uid in the list, as resolved at load; NULL if none. */
const char *peer_list_name(const struct peer_list *pl, uid_t uid);

#endif
