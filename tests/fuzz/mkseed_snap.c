/* mkseed_snap.c - print snap_format() of the fuzz fixture: the seed
 * corpus/snap/sealed.snap; with -b, without its checksum line (which
 * fuzz_snap adds itself): corpus/snap/fixture.snap. build.sh builds it as
 * OUT/mkseed_snap. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "fixture.h"
#include "snap.h"

int main(int argc, char **argv)
{
    struct dir *d = fuzz_fixture_dir(0);
    struct buf out;

    buf_init(&out);
    snap_format(d, &out);
    if (argc > 1 && strcmp(argv[1], "-b") == 0) {
        /* the checksum line is the last one */
        out.len--;
        while (out.len > 0 && out.data[out.len - 1] != '\n')
            out.len--;
    }
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
    dir_free(d);
    return 0;
}
