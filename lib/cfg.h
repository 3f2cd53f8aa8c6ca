/* cfg.h - Postfix-style "key = value" configuration, table-driven.
 *
 * Comments start with '#' at the beginning of a line; a line that starts
 * with white space continues the previous one; unknown keys and bad values
 * are errors naming file:line. Parsing is a pure function over a buffer. */
#ifndef MR_CFG_H
#define MR_CFG_H

#include <stddef.h>

#include "buf.h"

enum cfg_type { CFG_STR, CFG_INT, CFG_BOOL, CFG_TIME, CFG_MODE };

struct cfg_def {
    const char *name;
    enum cfg_type type;
    const char *defval;   /* parsed like a file value; NULL = empty string */
    size_t offset;        /* of a char * (CFG_STR) or an int (the others) */
    long min, max;        /* for CFG_INT and CFG_TIME */
};

/* Set every key of defs to its default in target. */
void cfg_defaults(const struct cfg_def *defs, void *target);
/* Parse text into target. Returns 0, or -1 with a message in err. */
int cfg_parse(const char *text, size_t len, const char *fname,
              const struct cfg_def *defs, void *target, struct buf *err);
/* Largest configuration file read (a real one is a few kilobytes). */
#define CFG_MAX_SIZE ((size_t)1 << 20)
/* Append the file at path to text. Refused, with the file and the reason
 * in err: not a regular file (a symlink to one is fine), owned by neither
 * root nor the effective uid, writable by others or by a group other than
 * gid 0, larger than max bytes. 0, or -1 with err set. */
int cfg_read_file(const char *path, size_t max, struct buf *text, struct buf *err);
/* Read (cfg_read_file with CFG_MAX_SIZE) and parse a file. */
int cfg_load(const char *path, const struct cfg_def *defs, void *target, struct buf *err);
/* Free the strings of target. */
void cfg_free(const struct cfg_def *defs, void *target);

#endif
