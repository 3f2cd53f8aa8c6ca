/* verify_parse.h - the text "mailroster verify" reads, without I/O: key
 * files, the "key<TAB>value" lines of "postmap -q -", mailroster's
 * tab-separated listings, lists of known differences and of Postfix maps.
 * Every function works on a (pointer, length) it does not own and returns
 * allocations the caller frees. */
#ifndef MR_VERIFY_PARSE_H
#define MR_VERIFY_PARSE_H

#include <stddef.h>

#include "buf.h"

/* A growable vector of owned strings. */
struct strv {
    char **v;
    size_t n, cap;
};
void strv_add(struct strv *s, const char *str);          /* copies str */
void strv_addn(struct strv *s, const char *str, size_t len);
void strv_free(struct strv *s);
/* Sort and drop duplicates (byte order). */
void strv_uniq(struct strv *s);
/* Index of str in a sorted, unique s, or -1. */
long strv_find(const struct strv *s, const char *str);

/* Lower-case s into out (reset first), as Postfix folds a lookup key: ASCII
 * letters, and UTF-8 letters when a C.UTF-8 locale exists. Bytes that are
 * not UTF-8 are kept. */
void vp_fold(const char *s, size_t len, struct buf *out);

/* One line of a key file (without its newline): 1 with the key, blanks at
 * either end trimmed, in out; 0 for a blank or "#" comment line; -1 when it
 * has a control character (a tab or NUL would break postmap's answer). */
int vp_key_line(const char *line, size_t len, struct buf *out);

/* One line of a list of known differences: "MAP KEY", maybe followed by a
 * tab and a comment (the format of expected-differences files). 1 with map
 * and key set (key folded), 0 for a blank or comment line, -1 when malformed. */
int vp_ignore_line(const char *line, size_t len, struct buf *map, struct buf *key);

/* The output of "postmap -q - MAPS" for the n keys sent, in that order:
 * "key<TAB>value" per key found, in the order asked. Sets ans[i] to a copy
 * of the value of keys[i] (ans[] must be NULL on entry; keys not found stay
 * NULL). -1 when a line is not the answer to a key sent, at or after the
 * previous answer's key. */
int vp_answers(const char *text, size_t len, char *const *keys, size_t n, char **ans);

/* A comma- or blank-separated list of addresses as Postfix reads a table's
 * answer: each item trimmed and folded, sorted, duplicates dropped, joined
 * with ",". Compares alias destinations and sender owners as sets. */
void vp_list_norm(const char *v, struct buf *out);

/* Postfix's map list (main.cf: "pgsql:/a.cf, hash:/b" or blank-separated);
 * braces of inline:{...} are kept together. Appends the items to out. */
void vp_split_maps(const char *s, struct strv *out);

/* Appends to out the keys trivial-rewrite asks transport_maps for the
 * recipient key (transport.c, transport_lookup), in its order: the
 * address, the address without its extension (delims: recipient_delimiter),
 * the domain, each parent as ".parent" (as "parent" when parent_style:
 * parent_domain_matches_subdomains names transport_maps), then "*". A key
 * without "@" gives itself only. */
void vp_transport_walk(const char *key, const char *delims, int parent_style, struct strv *out);

/* mailroster's "-f tab" output: a header line of names, then rows of values
 * (tab-separated, escaped as \\ \t \n \r \xHH), groups separated by an empty
 * line. Calls fn for each row with the n names and values (unescaped; the
 * value of a missing column is ""). Returns -1 on a row with more columns
 * than its header, else 0. */
typedef void (*vp_row_fn)(void *arg, char *const *names, char *const *values, size_t n);
int vp_tab_rows(const char *text, size_t len, vp_row_fn fn, void *arg);

#endif
