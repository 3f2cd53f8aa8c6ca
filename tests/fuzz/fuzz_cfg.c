/* fuzz_cfg.c - mailroster.conf parser with mailrosterd's parameter table. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "conf.h"
#include "fixture.h"

static void check_str(const char *s)
{
    size_t n;
    FUZZ_CHECK(s != NULL);
    n = strlen(s);
    FUZZ_CHECK(strchr(s, '\n') == NULL); /* continuations are joined with a space */
    if (n) {
        FUZZ_CHECK(strchr(" \t\r", s[0]) == NULL);
        FUZZ_CHECK(strchr(" \t\r", s[n - 1]) == NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mr_conf c;
    struct buf err;
    int rc;

    buf_init(&err);
    cfg_defaults(mr_conf_defs, &c);
    rc = cfg_parse((const char *)data, size, "fuzz.conf", mr_conf_defs, &c, &err);
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc < 0) {
        FUZZ_CHECK(err.len > 0 && strncmp(err.data, "fuzz.conf:", 10) == 0);
    } else {
        FUZZ_CHECK(err.len == 0);
        check_str(c.database);
        check_str(c.snapshot_file);
        check_str(c.recipient_delimiter);
        check_str(c.tcp_table_domains);
        check_str(c.tcp_table_mailboxes);
        check_str(c.tcp_table_aliases);
        check_str(c.tcp_table_senders);
        check_str(c.socketmap_listen);
        FUZZ_CHECK(c.snapshot_interval >= 1 && c.snapshot_interval <= 86400);
        FUZZ_CHECK(c.poll_interval >= 1 && c.poll_interval <= 3600);
        FUZZ_CHECK(c.startup_timeout >= 0 && c.startup_timeout <= 3600);
        FUZZ_CHECK(c.socketmap_mode >= 0 && c.socketmap_mode <= 07777);
        FUZZ_CHECK(c.max_connections >= 1 && c.max_connections <= 1000000);
        FUZZ_CHECK(c.idle_timeout >= 1 && c.idle_timeout <= 86400);
        FUZZ_CHECK(c.debug == 0 || c.debug == 1);
    }
    cfg_free(mr_conf_defs, &c);
    buf_free(&err);
    return 0;
}
