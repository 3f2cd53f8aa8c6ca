/* test_core.c - runs every unit suite. */
#include "config.h"

#include <stdlib.h>

#include "log.h"
#include "tests.h"

int main(void)
{
    SRunner *sr = srunner_create(codec_suite());
    int failed;

    log_init("test_core", 1);
    srunner_add_suite(sr, addr_suite());
    srunner_add_suite(sr, cfg_suite());
    srunner_add_suite(sr, dir_suite());
    srunner_add_suite(sr, proto_suite());
    srunner_add_suite(sr, pwhash_suite());
    srunner_add_suite(sr, admproto_suite());
    srunner_add_suite(sr, auth_suite());
    srunner_add_suite(sr, policy_suite());
    srunner_add_suite(sr, polproto_suite());
    srunner_add_suite(sr, quota_suite());
    srunner_add_suite(sr, peer_suite());
    srunner_add_suite(sr, pqlog_suite());
    srunner_add_suite(sr, roster_proto_suite());
    srunner_add_suite(sr, srv_suite());
    srunner_add_suite(sr, verify_parse_suite());
    srunner_add_suite(sr, features_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
