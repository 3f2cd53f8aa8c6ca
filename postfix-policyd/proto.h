/* proto.h - the Postfix table protocols as pure functions over buffers.
 *
 * Each handler takes the bytes received so far, answers at most one
 * request into out, and returns the bytes it consumed: > 0 a request was
 * answered, 0 more input is needed, < 0 the stream is broken (out then
 * holds the protocol's own error reply; the connection is closed after it
 * is sent). */
#ifndef MR_PROTO_H
#define MR_PROTO_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "dir.h"
#include "lookup.h"

#define TCPT_MAX_REPLY 4096       /* dict_tcp.c: reply incl. newline */
#define TCPT_MAX_REQUEST 16384    /* a 4096-octet key, all %XX-quoted, and then some */
#define SMAP_MAX_REPLY 100000     /* dict_sockmap.c default */
#define SMAP_MAX_REQUEST 100000

struct lk_stats {
    unsigned long requests[LK_NMAPS];
    unsigned long found[LK_NMAPS];
    unsigned long errors;         /* malformed requests, replies too long */
};

/* What a request is answered from. dir NULL = not loaded yet (answers are
 * temporary failures, so Postfix defers instead of rejecting). */
struct lk_env {
    const struct dir *dir;
    const char *delims;
    struct lk_stats *stats;
    /* where to say why a request was refused; NULL = nowhere */
    void (*complain)(void *arg, const char *what);
    void *complain_arg;
    /* LK_NSCRATCH buffers a handler reuses from request to request (the
     * caller's, used by one thread at a time), or NULL: then each request
     * allocates its own */
    struct buf *scratch;
};

/* two for the handler, then those it lends lk_lookup_in for the key */
#define LK_NSCRATCH (2 + LK_KEY_BUFS)

/* A handler's two working buffers (bufs.a, bufs.b), the scratch ones or
 * its own, and the key buffers it lends lk_lookup_in (NULL without
 * scratch). */
struct lk_work {
    struct lk_pair bufs;
    struct buf *keys;
};

static inline void lk_work_take(struct lk_work *w, struct buf *scratch)
{
    lk_pair_take(&w->bufs, scratch);
    w->keys = scratch ? scratch + 2 : NULL;
}

static inline void lk_work_give(struct lk_work *w) { lk_pair_give(&w->bufs); }

ssize_t tcpt_request(const struct lk_env *env, enum lk_map map, const char *in, size_t len,
                     struct buf *out);
ssize_t smap_request(const struct lk_env *env, const char *in, size_t len, struct buf *out);

#endif
