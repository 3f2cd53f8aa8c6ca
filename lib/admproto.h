/* admproto.h - the admin socket's line protocol, both sides.
 *
 * Request: one line, words separated by spaces or tabs; a word with
 * spaces, quotes or control characters is written in double quotes with
 * backslash escapes (\" \\ \n \t \r \xHH). Options are key=value words.
 * Reply: zero or more data rows, then one final line:
 *   "* key=value key=value ..."   a row (values quoted like request words)
 *   "OK text"                     success
 *   "ERR code text"               failure; code is one stable word
 * Pure functions over buffers: the daemon, the CLI and the fuzz target
 * share them. */
#ifndef MR_ADMPROTO_H
#define MR_ADMPROTO_H

#include <stddef.h>

#include "buf.h"

#define ADM_MAX_LINE 65536
#define ADM_MAX_ARGS 1100   /* an alias may have 1000 destinations */

struct adm_args {
    int argc;
    char *argv[ADM_MAX_ARGS];
    struct buf store;       /* the decoded words, NUL-separated */
};

void adm_args_init(struct adm_args *a);
void adm_args_free(struct adm_args *a);
/* Split one line (without its newline). 0, or -1 with *why set. */
int adm_split(struct adm_args *a, const char *line, size_t len, const char **why);
/* Append s as one word, quoted when it needs to be. */
void adm_quote(struct buf *out, const char *s);
/* Append " key=value" (the whole word quoted when needed) to a row. */
void adm_field(struct buf *out, const char *key, const char *value);

#endif
