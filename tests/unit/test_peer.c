/* test_peer.c - allow lists of users and groups, resolved once. */
#include "config.h"

#include <string.h>

#include "peer.h"
#include "tests.h"

START_TEST(resolve)
{
    struct peer_list pl;
    /* root and group root exist on every system; 4242/@4343 are taken as ids */
    peer_list_load(&pl, " root, 4242\t@4343 ,no-such-user-here, @no-such-group-here,", "test_allow");
    ck_assert(peer_list_has(&pl, 0, 5555));        /* root by name */
    ck_assert(peer_list_has(&pl, 4242, 5555));     /* a numeric uid */
    ck_assert(peer_list_has(&pl, 7777, 4343));     /* a numeric gid */
    ck_assert(!peer_list_has(&pl, 7777, 5555));
    ck_assert_str_eq(peer_list_name(&pl, 0), "root");
    ck_assert_ptr_null(peer_list_name(&pl, 7777));
    peer_list_free(&pl);
    peer_list_load(&pl, "@root", "test_allow");
    ck_assert(peer_list_has(&pl, 7777, 0));        /* primary group root */
    ck_assert(!peer_list_has(&pl, 7777, 5555));
    peer_list_free(&pl);
    peer_list_load(&pl, "", "test_allow");
    ck_assert(!peer_list_has(&pl, 0, 0));
    peer_list_free(&pl);
}
END_TEST

Suite *peer_suite(void)
{
    Suite *s = suite_create("peer");
    TCase *tc = tcase_create("peer");
    tcase_add_test(tc, resolve);
    suite_add_tcase(s, tc);
    return s;
}
