/* conf.h - mailrosterd's configuration (mailroster.conf). */
#ifndef MR_CONF_H
#define MR_CONF_H

#include "cfg.h"

struct mr_conf {
    char *database;             /* libpq connection string */
    char *snapshot_file;        /* "" = none */
    int snapshot_interval;      /* at most one snapshot write per this many seconds */
    int snapshot_max_size;      /* a larger snapshot file is refused */
    int poll_interval;          /* change-log poll when no NOTIFY arrives */
    int startup_timeout;        /* wait this long for PostgreSQL before using the snapshot */
    int startup_snapshot_max_age; /* a younger snapshot is served before PostgreSQL answers */
    char *recipient_delimiter;  /* as Postfix's; "" = none */
    char *tcp_table_domains;    /* HOST:PORT or "" */
    char *tcp_table_mailboxes;
    char *tcp_table_aliases;
    char *tcp_table_senders;
    char *tcp_table_transports;
    char *socketmap_listen;     /* list of unix:PATH / inet:HOST:PORT */
    int socketmap_mode;
    char *admin_socket;         /* unix socket path, "" = none */
    int admin_socket_mode;
    char *admin_database;       /* libpq connection string of the admin role, "" = read-only */
    char *admin_allow_admin;    /* users, @groups or numeric ids with every right */
    char *admin_allow_readonly; /* ... that may only look */
    char *admin_allow_domain;   /* "user:domain" / "@group:domain" pairs */
    char *policy_listen;        /* list of unix:PATH / inet:HOST:PORT for check_policy_service */
    int policy_socket_mode;
    int policy_rate_limits;     /* admit END-OF-MESSAGE through mailroster.send_admit */
    int policy_db_timeout;      /* s an admission may take before the action below */
    char *policy_db_unavailable_action; /* "defer" or "dunno" */
    int policy_db_connections;  /* admission threads, one connection each */
    int policy_db_synchronous_commit; /* admissions wait for the WAL flush */
    int policy_quota;           /* refuse inbound recipients over quota (usage from quota_usage) */
    char *policy_over_quota_action; /* "reject" (552 5.2.2) or "defer" (452 4.2.2) */
    char *auth_socket;          /* unix socket path of the auth endpoint, "" = none */
    int auth_socket_mode;
    char *auth_allow;           /* users, @groups or ids that may ask it (hashes!) */
    char *dovecot_auth_master_socket; /* flush changed accounts from Dovecot's auth cache; "" = off */
    char *mail_base;            /* maildirs are relative to this (Postfix's virtual_mailbox_base) */
    int mail_uid, mail_gid;     /* userdb uid/gid unless the mailbox has its own; 0 = none */
    int max_connections;        /* per listener */
    int max_connections_per_peer; /* per listener, from one uid or address */
    int idle_timeout;
    int request_timeout;        /* from a request's first byte to its last */
    int output_buffer_limit;    /* unsent octets above which a client is not read */
    int debug;
};

extern const struct cfg_def mr_conf_defs[];

#endif
