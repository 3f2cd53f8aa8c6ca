/* snap.h - the on-disk copy of the directory, so that a daemon restarted
 * while PostgreSQL is down still answers.
 *
 * Text, one record a line, fields separated by one space, every string
 * %XX-quoted behind '=' (or '-' for none); a header with the format version
 * and the change sequence, a trailer with the record count so that a cut
 * file is refused. Holds password hashes: written mode 0600 via a temporary
 * file, fsync and rename. */
#ifndef MR_SNAP_H
#define MR_SNAP_H

#include <stddef.h>

#include "buf.h"
#include "dir.h"

void snap_format(const struct dir *d, struct buf *out);
/* Build a new directory from text; NULL with a reason in err. */
struct dir *snap_parse(const char *text, size_t len, struct buf *err);

int snap_write(const struct dir *d, const char *path, struct buf *err);
struct dir *snap_read(const char *path, struct buf *err);

#endif
