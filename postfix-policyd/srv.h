/* srv.h - listeners and connections on the event loop.
 *
 * A listener is a loopback TCP port or a unix socket in front of one
 * protocol handler (see proto.h). A connection reads what has arrived,
 * hands every complete request to the handler in order (requests may be
 * pipelined), and writes all their answers with one write.
 *
 * Every listener has its own limits, so that clients of one protocol never
 * starve another: a connection cap, a cap per peer (uid on a unix socket,
 * address on TCP), an idle timeout, a deadline for one request from its
 * first byte, and a high-water mark of unsent output above which the
 * connection is not read until the client has taken its answers. */
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
/* Part of the deferred answer, sent now (what goes first of a long answer
 * whose end has to wait); the request stays suspended until
 * srv_conn_reply(). Nothing when the client went away. */
void srv_conn_reply_part(struct srv_conn *c, const char *data, size_t len);

/* An answer too large to build at once. After the handler returns, fn is
 * called whenever the unsent output is below the high-water mark: it
 * appends the next part to out and returns 1 while more follows, 0 after
 * the last part. No further request is read meanwhile. free_fn(arg) runs
 * when the stream ends or the connection closes. */
typedef int (*srv_stream_fn)(void *arg, struct buf *out);
void srv_conn_stream(struct srv_conn *c, srv_stream_fn fn, void *arg, void (*free_fn)(void *));

/* A protocol's own state for one connection, freed with it. */
void *srv_conn_data(const struct srv_conn *c);
void srv_conn_set_data(struct srv_conn *c, void *data, void (*free_fn)(void *));
/* Peer credentials of a unix-socket connection; -1 elsewhere. */
int srv_conn_peer(const struct srv_conn *c, uid_t *uid, gid_t *gid, pid_t *pid);

/* A listener's limits (mailroster.conf(5)); can change at run time. */
struct srv_conf {
    int max_connections;        /* open at once on this listener */
    int max_per_peer;           /* ... from one uid or one address */
    int idle_timeout;           /* s without a request, or without the client reading */
    int request_timeout;        /* s from a request's first byte to its last */
    size_t output_high_water;   /* unsent octets above which reading stops */
};

struct srv_stats {
    int active;                 /* connections open now */
    unsigned long accepted;
    unsigned long refused_cap;  /* max_connections reached */
    unsigned long refused_peer; /* max_per_peer reached */
    unsigned long idle_closed;
    unsigned long request_timeouts;
    unsigned long paused;       /* times reading stopped at the high-water mark */
};

struct srv;

/* spec: "inet:HOST:PORT", "HOST:PORT" or "unix:PATH". */
struct srv *srv_listen(struct event_base *base, const char *spec, int unix_mode,
                       const char *name, srv_handler handler, void *arg,
                       const struct srv_conf *conf, struct buf *err);
void srv_set_conf(struct srv *s, const struct srv_conf *conf);
/* A line protocol: the handler is called only once a newline has arrived,
 * or max octets without one (so that it can refuse the line), and each
 * octet is searched for the newline once, however the line trickles in.
 * 0 (the default): called whenever new octets arrive. */
void srv_set_line_max(struct srv *s, size_t max);
const struct srv_stats *srv_get_stats(const struct srv *s);
/* Stops listening; open connections stay until they end. */
void srv_close(struct srv *s);
const char *srv_name(const struct srv *s);

/* Connections open on all listeners. */
int srv_total_connections(void);

#endif
