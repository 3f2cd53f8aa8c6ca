/* conf.c - the table of mailrosterd's parameters and their defaults. */
#include "config.h"

#include <stddef.h>

#include "conf.h"

#define O(f) offsetof(struct mr_conf, f)

const struct cfg_def mr_conf_defs[] = {
    { "database", CFG_STR, "dbname=mailroster", O(database), 0, 0 },
    { "snapshot_file", CFG_STR, "", O(snapshot_file), 0, 0 },
    { "snapshot_interval", CFG_TIME, "60s", O(snapshot_interval), 1, 86400 },
    { "snapshot_max_size", CFG_INT, "1073741824", O(snapshot_max_size), 65536, 2147483647 },
    { "poll_interval", CFG_TIME, "10s", O(poll_interval), 1, 3600 },
    { "startup_timeout", CFG_TIME, "10s", O(startup_timeout), 0, 3600 },
    { "startup_snapshot_max_age", CFG_TIME, "1h", O(startup_snapshot_max_age), 0, 2592000 },
    { "recipient_delimiter", CFG_STR, "+", O(recipient_delimiter), 0, 0 },
    { "tcp_table_domains", CFG_STR, "", O(tcp_table_domains), 0, 0 },
    { "tcp_table_mailboxes", CFG_STR, "", O(tcp_table_mailboxes), 0, 0 },
    { "tcp_table_aliases", CFG_STR, "", O(tcp_table_aliases), 0, 0 },
    { "tcp_table_senders", CFG_STR, "", O(tcp_table_senders), 0, 0 },
    { "tcp_table_transports", CFG_STR, "", O(tcp_table_transports), 0, 0 },
    { "socketmap_listen", CFG_STR, "", O(socketmap_listen), 0, 0 },
    { "socketmap_mode", CFG_MODE, "0666", O(socketmap_mode), 0, 0 },
    { "admin_socket", CFG_STR, "", O(admin_socket), 0, 0 },
    { "admin_socket_mode", CFG_MODE, "0660", O(admin_socket_mode), 0, 0 },
    { "admin_database", CFG_STR, "", O(admin_database), 0, 0 },
    { "admin_allow_admin", CFG_STR, "root", O(admin_allow_admin), 0, 0 },
    { "admin_allow_readonly", CFG_STR, "", O(admin_allow_readonly), 0, 0 },
    { "admin_allow_domain", CFG_STR, "", O(admin_allow_domain), 0, 0 },
    { "policy_listen", CFG_STR, "", O(policy_listen), 0, 0 },
    { "policy_socket_mode", CFG_MODE, "0666", O(policy_socket_mode), 0, 0 },
    { "policy_rate_limits", CFG_BOOL, "yes", O(policy_rate_limits), 0, 0 },
    { "policy_db_timeout", CFG_TIME, "2s", O(policy_db_timeout), 1, 60 },
    { "policy_db_unavailable_action", CFG_STR, "defer", O(policy_db_unavailable_action), 0, 0 },
    { "policy_db_connections", CFG_INT, "2", O(policy_db_connections), 1, 32 },
    { "policy_db_synchronous_commit", CFG_BOOL, "no", O(policy_db_synchronous_commit), 0, 0 },
    { "policy_quota", CFG_BOOL, "yes", O(policy_quota), 0, 0 },
    { "policy_over_quota_action", CFG_STR, "reject", O(policy_over_quota_action), 0, 0 },
    { "auth_socket", CFG_STR, "", O(auth_socket), 0, 0 },
    { "auth_socket_mode", CFG_MODE, "0660", O(auth_socket_mode), 0, 0 },
    { "auth_allow", CFG_STR, "root, dovecot", O(auth_allow), 0, 0 },
    { "dovecot_auth_master_socket", CFG_STR, "", O(dovecot_auth_master_socket), 0, 0 },
    { "mail_base", CFG_STR, "/var/vmail", O(mail_base), 0, 0 },
    { "mail_uid", CFG_INT, "0", O(mail_uid), 0, 2147483647 },
    { "mail_gid", CFG_INT, "0", O(mail_gid), 0, 2147483647 },
    { "max_connections", CFG_INT, "1000", O(max_connections), 1, 1000000 },
    { "max_connections_per_peer", CFG_INT, "500", O(max_connections_per_peer), 1, 1000000 },
    { "idle_timeout", CFG_TIME, "300s", O(idle_timeout), 1, 86400 },
    { "request_timeout", CFG_TIME, "10s", O(request_timeout), 1, 3600 },
    { "output_buffer_limit", CFG_INT, "262144", O(output_buffer_limit), 4096, 1073741824 },
    { "debug", CFG_BOOL, "no", O(debug), 0, 0 },
    { NULL, CFG_STR, NULL, 0, 0, 0 },
};
