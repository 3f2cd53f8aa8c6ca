/* fixture.h - a small directory for the fuzz targets, and the helpers
 * they share. Not part of mailrosterd. */
#ifndef MR_FUZZ_FIXTURE_H
#define MR_FUZZ_FIXTURE_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "dir.h"

/* Domains, mailboxes, aliases (catch-all, @domain destinations, disabled
 * ones), sender grants sharing an address, a master user. With big != 0
 * also aliases whose answers sit right at the tcp_table (4096) and
 * socketmap (100000) reply limits. */
struct dir *fuzz_fixture_dir(int big);
#define TCPT_EDGE_VALUE (4096 - 5)    /* "200 " value "\n" is 4096 octets */
#define SMAP_EDGE_VALUE (100000 - 3)  /* "OK " value is 100000 octets */

/* An invariant of the code under test does not hold: say which, then
 * abort so that libFuzzer keeps the input. */
#define FUZZ_CHECK(cond)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, \
                    #cond);                                                       \
            abort();                                                              \
        }                                                                         \
    } while (0)

#endif
