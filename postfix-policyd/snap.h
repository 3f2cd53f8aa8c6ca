/* snap.h - the on-disk copy of the directory, so that a daemon restarted
 * while PostgreSQL is down still answers.
 *
 * Text, one record a line, fields separated by one space, every string
 * %XX-quoted behind '=' (or '-' for none); a header with the format version
 * and the change sequence, a trailer with the record count so that a cut
 * file is refused, and a last line "sha256 <hex>": the SHA-256 of every byte
 * before it, so that a damaged or edited file is refused.
 *
 * Holds password hashes: written mode 0600 via a temporary file, fsync and
 * rename. Read only if it is a regular file (not a symlink) owned by the
 * effective uid, not writable by group or others and not readable by
 * others, and no larger than a limit. The checksum is not a MAC: whoever may
 * write the file may also recompute it; the owner and mode checks keep
 * others out, the checksum catches damage and hand edits. */
#ifndef MR_SNAP_H
#define MR_SNAP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "dir.h"

void snap_format(const struct dir *d, struct buf *out);
/* Append the checksum line over the len bytes in text: makes hand-written
 * records (tests, the fuzz harness) a file snap_parse accepts. */
void snap_seal(struct buf *text);
/* Build a new directory from text; NULL with a reason in err. */
struct dir *snap_parse(const char *text, size_t len, struct buf *err);

/* Format version written, and the oldest one read; older ones are refused
 * as "from an older version" (the daemon then loads from the database).
 * 3: a mailbox's sending suspension (its reason, "-" when not suspended).
 * 4: a mailbox's forward (keep_copy, then the destinations or "-"), an
 * alias's may_send (after enabled), transport records ("T"). A format 3
 * file is still read, with no forwards, may_send true and no transports,
 * which is what a database before migration 0010 says: a daemon upgraded
 * while PostgreSQL is down keeps answering from the file it wrote.
 * 5: the header names the database the directory is of (its identity,
 * migration 0014, in the directory's db_id; "-" when unknown). A format 3
 * or 4 file is read with the identity unknown: the daemon then judges it
 * by its change number alone, as before. */
#define SNAP_VERSION 5
#define SNAP_VERSION_OLDEST 3

/* Default bound of snap_read_max(): 1 GiB. A mailbox line with a crypt hash
 * is about 250 bytes, so a 1,000,000-mailbox directory (the design target)
 * writes about 300 MB with its aliases and senders: the default leaves
 * three times that, and refuses garbage before it costs gigabytes. */
#define SNAP_MAX_SIZE_DEFAULT (UINT64_C(1) << 30)

int snap_write(const struct dir *d, const char *path, struct buf *err);

/* Check and read the file at path into a new directory; NULL with the file
 * name and the reason in err. The checksum is verified before the directory
 * is returned. Refused: a symlink, not a regular file, not owned by the
 * effective uid, mode & 027 (writable by group, any access for others),
 * larger than max_size bytes (0: SNAP_MAX_SIZE_DEFAULT). Uses no global
 * state: safe to call from any thread, concurrently with snap_write. */
struct dir *snap_read_max(const char *path, uint64_t max_size, struct buf *err);
/* snap_read_max(path, SNAP_MAX_SIZE_DEFAULT, err) */
struct dir *snap_read(const char *path, struct buf *err);

#endif
