/* peer.c - allow lists of local users and groups (see peer.h). */
#include "config.h"

#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"
#include "peer.h"

static void add_uid(struct peer_list *pl, uid_t u, const char *name)
{
    pl->uids = xrealloc(pl->uids, (pl->nuids + 1) * sizeof(*pl->uids));
    pl->names = xrealloc(pl->names, (pl->nuids + 1) * sizeof(*pl->names));
    pl->uids[pl->nuids] = u;
    pl->names[pl->nuids++] = name ? xstrdup(name) : NULL;
}

static void add_gid(struct peer_list *pl, gid_t g)
{
    pl->gids = xrealloc(pl->gids, (pl->ngids + 1) * sizeof(*pl->gids));
    pl->gids[pl->ngids++] = g;
}

static int number(const char *s, long *n)
{
    char *end;
    if (*s < '0' || *s > '9')
        return 0;
    *n = strtol(s, &end, 10);
    return *end == 0 && *n >= 0;
}

static void missing(struct buf *warn, const char *name)
{
    if (warn->len)
        buf_adds(warn, ", ");
    buf_adds(warn, name);
}

void peer_list_load(struct peer_list *pl, const char *spec, const char *param)
{
    const char *p = spec;
    char name[256];
    long n;
    struct buf wbuf, *warn = &wbuf;

    memset(pl, 0, sizeof(*pl));
    buf_init(warn);
    while (p && *p) {
        p += strspn(p, ", \t");
        size_t len = strcspn(p, ", \t");
        if (len == 0)
            break;
        if (len >= sizeof(name)) {
            buf_printf(warn, "%s%.*s...", warn->len ? ", " : "", 32, p);
            p += len;
            continue;
        }
        memcpy(name, p, len);
        name[len] = 0;
        p += len;
        if (name[0] == '@') {
            struct group *g;
            if (number(name + 1, &n)) {
                add_gid(pl, (gid_t)n);
                continue;
            }
            if ((g = getgrnam(name + 1)) == NULL) {
                missing(warn, name);
                continue;
            }
            add_gid(pl, g->gr_gid);
            /* supplementary members: SO_PEERCRED shows only the primary gid */
            for (char **m = g->gr_mem; *m; m++) {
                struct passwd *pw = getpwnam(*m);
                if (pw)
                    add_uid(pl, pw->pw_uid, pw->pw_name);
            }
        } else if (number(name, &n)) {
            struct passwd *pw = getpwuid((uid_t)n);
            add_uid(pl, (uid_t)n, pw ? pw->pw_name : NULL);
        } else {
            struct passwd *pw = getpwnam(name);
            if (pw)
                add_uid(pl, pw->pw_uid, pw->pw_name);
            else
                missing(warn, name);
        }
    }
    if (warn->len)
        msg_warn("%s: no such user or group: %s", param, warn->data);
    buf_free(warn);
}

void peer_list_free(struct peer_list *pl)
{
    for (size_t i = 0; i < pl->nuids; i++)
        free(pl->names[i]);
    free(pl->names);
    free(pl->uids);
    free(pl->gids);
    memset(pl, 0, sizeof(*pl));
}

int peer_list_has(const struct peer_list *pl, uid_t uid, gid_t gid)
{
    for (size_t i = 0; i < pl->nuids; i++)
        if (pl->uids[i] == uid)
            return 1;
    for (size_t i = 0; i < pl->ngids; i++)
        if (pl->gids[i] == gid)
            return 1;
    return 0;
}

const char *peer_list_name(const struct peer_list *pl, uid_t uid)
{
    for (size_t i = 0; i < pl->nuids; i++)
        if (pl->uids[i] == uid && pl->names[i])
            return pl->names[i];
    return NULL;
}
