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

typedef ssize_t (*srv_handler)(void *arg, const char *in, size_t len, struct buf *out);

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
