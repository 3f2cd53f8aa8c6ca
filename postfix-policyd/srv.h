/* srv.h - listeners and connections on the event loop (libevent).
 *
 * A listener is a loopback TCP port or a unix socket in front of one
 * protocol handler (see proto.h). Each connection reads, hands every
 * complete request to the handler in order (requests may be pipelined),
 * and writes the answers in one go. Idle connections are closed; the
 * number of connections is capped across all listeners. */
#ifndef MR_SRV_H
#define MR_SRV_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

struct event_base;

struct srv_conn;

/* Answer at most one request: bytes consumed (> 0), 0 for more input,
 * < 0 when the stream is broken. A handler that cannot answer at once
 * calls srv_conn_suspend() and returns the bytes of the request; the
 * connection then reads nothing more until srv_conn_reply(). */
typedef ssize_t (*srv_handler)(void *arg, struct srv_conn *c, const char *in, size_t len,
                               struct buf *out);

void srv_conn_suspend(struct srv_conn *c);
/* Send the deferred answer and go on with buffered requests. Safe when the
 * client went away meanwhile (the connection is freed then). */
void srv_conn_reply(struct srv_conn *c, const char *data, size_t len);
/* A protocol's own state for one connection, freed with it. */
void *srv_conn_data(const struct srv_conn *c);
void srv_conn_set_data(struct srv_conn *c, void *data, void (*free_fn)(void *));
/* Peer credentials of a unix-socket connection; -1 elsewhere. */
int srv_conn_peer(const struct srv_conn *c, uid_t *uid, gid_t *gid, pid_t *pid);

struct srv_limits {
    int max_connections;
    int idle_timeout;        /* seconds */
    int active;              /* connections now open */
    unsigned long refused;   /* connections refused for the cap */
    time_t last_refusal_log;
};

struct srv;

/* spec: "inet:HOST:PORT", "HOST:PORT" or "unix:PATH". */
struct srv *srv_listen(struct event_base *base, const char *spec, int unix_mode,
                       const char *name, srv_handler handler, void *arg,
                       struct srv_limits *lim, struct buf *err);
void srv_close(struct srv *s);
const char *srv_name(const struct srv *s);

#endif
