/* admin.h - the admin socket: doveadm-style commands over a line protocol
 * (lib/admproto.h), access by the peer's credentials, reads answered from
 * memory, writes run as one PostgreSQL transaction each in the admin
 * database thread (adm_db.c) and answered once this daemon's directory
 * shows them. */
#ifndef MR_ADMIN_H
#define MR_ADMIN_H

#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "dir.h"
#include "auth.h"
#include "policy.h"
#include "proto.h"

struct srv_conn;
struct adm_job;

/* What the admin module needs from the daemon. */
struct adm_host {
    const struct dir *(*dir)(void);
    const char *delims;
    const struct lk_stats *stats;
    const struct auth_stats *auth_stats;
    const struct pol_stats *pol_stats;
    void (*status)(struct buf *out);    /* appends "* ..." rows */
    int have_db;                        /* admin_database configured */
};

void adm_init(const struct adm_host *host);
/* The access lists (admin_allow_*): resolved to ids now, at start and on
 * reload, never per request. */
void adm_set_access(const char *allow_admin, const char *allow_readonly, const char *allow_domain);
void adm_shutdown(void);
/* The recipient delimiter changed (SIGHUP). */
void adm_set_delims(const char *delims);
ssize_t adm_handler(void *arg, struct srv_conn *c, const char *in, size_t len, struct buf *out);
/* A job came back from the admin database thread. */
void adm_job_done(struct adm_job *j);
/* The directory moved on: answer the writes it now shows. */
void adm_dir_advanced(uint64_t seq);
/* Answer writes that waited too long for their change to arrive. */
void adm_tick(void);

#endif
