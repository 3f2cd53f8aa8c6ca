/* smap.c - Postfix socketmap_table(5) server side: netstring "map key" in,
 * netstring "OK value" / "NOTFOUND " / "TEMP reason" / "PERM reason" out. */
#include "config.h"

#include <string.h>

#include "codec.h"
#include "proto.h"

static void reply(struct buf *out, const char *text)
{
    ns_format(out, text, strlen(text));
}

static void complain(const struct lk_env *env, const char *what)
{
    if (env->stats)
        env->stats->errors++;
    if (env->complain)
        env->complain(env->complain_arg, what);
}

ssize_t smap_request(const struct lk_env *env, const char *in, size_t len, struct buf *out)
{
    const char *data, *sp;
    size_t dlen, used;
    int map;
    struct lk_work w;

    switch (ns_parse(in, len, SMAP_MAX_REQUEST, &used, &data, &dlen)) {
    case NS_NEED_MORE:
        return 0;
    case NS_TOO_LONG:
        complain(env, "request longer than 100000 octets");
        reply(out, "PERM request too long");
        return -1;
    case NS_BAD:
        complain(env, "malformed netstring");
        reply(out, "PERM malformed netstring");
        return -1;
    case NS_OK:
        break;
    }
    sp = memchr(data, ' ', dlen);
    if (sp == NULL || sp == data) {
        complain(env, "malformed request (expected \"MAP KEY\")");
        reply(out, "PERM malformed request");
        return (ssize_t)used;
    }
    if ((map = lk_map_by_name(data, (size_t)(sp - data))) < 0) {
        complain(env, "unknown map name");
        reply(out, "PERM unknown map name");
        return (ssize_t)used;
    }
    if (env->dir == NULL) {
        reply(out, "TEMP directory not loaded yet");
        return (ssize_t)used;
    }
    if (env->stats)
        env->stats->requests[map]++;
    lk_work_take(&w, env->scratch);
    struct buf *value = w.bufs.a, *ans = w.bufs.b;
    if (lk_lookup_in(env->dir, (enum lk_map)map, sp + 1, dlen - (size_t)(sp + 1 - data),
                     env->delims, value, w.keys) == LK_NOTFOUND) {
        reply(out, "NOTFOUND ");
    } else if (value->len + 3 > SMAP_MAX_REPLY) {
        complain(env, "reply longer than socketmap's 100000 octets (too many destinations?)");
        reply(out, "PERM reply too long for socketmap");
    } else {
        buf_add(ans, "OK ", 3);
        buf_add(ans, value->data, value->len);
        ns_format(out, ans->data, ans->len);
        if (env->stats)
            env->stats->found[map]++;
    }
    lk_work_give(&w);
    return (ssize_t)used;
}
