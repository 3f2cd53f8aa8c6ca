/* mkseed_snap.c - print snap_format() of the fuzz fixture: the seed
 * corpus/snap/fixture.snap (build.sh builds it as OUT/mkseed_snap). */
#include "config.h"

#include <stdio.h>

#include "fixture.h"
#include "snap.h"

int main(void)
{
    struct dir *d = fuzz_fixture_dir(0);
    struct buf out;

    buf_init(&out);
    snap_format(d, &out);
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
    dir_free(d);
    return 0;
}
