/* stream.h - drive a table protocol handler the way a connection does. */
#ifndef MR_FUZZ_STREAM_H
#define MR_FUZZ_STREAM_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "proto.h"

typedef ssize_t (*stream_handler)(const struct lk_env *env, enum lk_map map, const char *in,
                                  size_t len, struct buf *out);
/* Check the reply one call appended (seg[0..len)) given what it returned. */
typedef void (*stream_check)(const char *seg, size_t len, ssize_t rc);

struct stream_result {
    struct buf out;     /* every reply, in order */
    size_t consumed;    /* input octets answered */
    int closed;         /* a handler said the stream is broken */
};

/* The peer sends data[0..split) and then data[split..len); the handler sees
 * only what has arrived (in an allocation of exactly that size, so that
 * reading past it is caught) and is called until it needs more input,
 * breaks the stream, or everything is consumed. */
void stream_run(stream_handler h, stream_check check, const struct lk_env *env, enum lk_map map,
                const char *data, size_t len, size_t split, struct stream_result *r);

/* The fuzzer input of a stream target: byte 0 flags (bit 7: no directory
 * loaded, bits 0-6 modulo the number of maps: the map for tcp_table),
 * bytes 1-2 the split point (big endian, taken modulo the stream length +
 * 1), the stream after that. Runs
 * the stream unsplit and split; both must give the same replies. With
 * MR_FUZZ_ECHO set in the environment, print the replies to stderr. */
void stream_fuzz(stream_handler h, stream_check check, const struct dir *d, const char *data,
                 size_t size);

#endif
