/* test_polproto_portable.c - the policy parser's suite again, over the
 * portable scan (POL_PORTABLE: the masks filled an octet at a time), which
 * builds without SSE2 would use. */
#include "config.h"

#include <stdlib.h>

#include "log.h"
#include "tests.h"

int main(void)
{
    SRunner *sr = srunner_create(polproto_suite());
    int failed;

    log_init("test_polproto_portable", 1);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
