/* tcpt.c - Postfix tcp_table(5) server side: "get %XX-key\n" in,
 * "200 value" / "500 not found" / "400 error" out. */
#include "config.h"

#include <string.h>

#include "codec.h"
#include "log.h"
#include "proto.h"

static void complain(const struct lk_env *env, const char *what)
{
    if (env->stats)
        env->stats->errors++;
    if (env->complain)
        env->complain(env->complain_arg, what);
}

ssize_t tcpt_request(const struct lk_env *env, enum lk_map map, const char *in, size_t len,
                     struct buf *out)
{
    const char *nl = memchr(in, '\n', len > TCPT_MAX_REQUEST ? TCPT_MAX_REQUEST : len);
    struct lk_work w;
    size_t llen;

    if (nl == NULL) {
        if (len >= TCPT_MAX_REQUEST) {
            complain(env, "request longer than 16384 octets");
            buf_adds(out, "400 request too long\n");
            return -1;
        }
        return 0;
    }
    llen = (size_t)(nl - in);
    if (llen > 0 && in[llen - 1] == '\r')
        llen--; /* a person typing with telnet */

    if (llen >= 4 && memcmp(in, "put ", 4) == 0) {
        buf_adds(out, "500 put is not implemented: this table is read-only\n");
        return (ssize_t)(nl - in) + 1;
    }
    if (llen < 4 || memcmp(in, "get ", 4) != 0 || memchr(in + 4, ' ', llen - 4) != NULL ||
        memchr(in, 0, llen) != NULL) {
        complain(env, "malformed request (expected \"get KEY\")");
        buf_adds(out, "400 malformed request\n");
        return (ssize_t)(nl - in) + 1;
    }
    lk_work_take(&w, env->scratch);
    struct buf *key = w.bufs.a, *value = w.bufs.b;
    if (hexq_decode(key, in + 4, llen - 4) < 0 || key->len == 0) {
        complain(env, "malformed %XX escape in key");
        buf_adds(out, "400 malformed key\n");
    } else if (env->dir == NULL) {
        buf_adds(out, "400 directory not loaded yet\n");
    } else {
        if (env->stats)
            env->stats->requests[map]++;
        if (lk_lookup_in(env->dir, map, key->data, key->len, env->delims, value, w.keys) == LK_NOTFOUND) {
            buf_adds(out, "500 not found\n");
        } else {
            size_t mark = out->len;
            buf_adds(out, "200 ");
            hexq_encode(out, value->data, value->len);
            buf_addc(out, '\n');
            if (out->len - mark > TCPT_MAX_REPLY) {
                buf_truncate(out, mark);
                complain(env, "reply longer than tcp_table's 4096 octets (too many destinations?)");
                buf_adds(out, "400 reply too long for tcp_table\n");
            } else if (env->stats) {
                env->stats->found[map]++;
            }
        }
    }
    lk_work_give(&w);
    return (ssize_t)(nl - in) + 1;
}
