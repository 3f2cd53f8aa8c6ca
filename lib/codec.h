/* codec.h - wire codecs for Postfix lookup tables: tcp_table(5) %XX quoting,
 * netstrings (socketmap_table(5)) and Dovecot's tab escaping. Pure functions over buffers. */
#ifndef MR_CODEC_H
#define MR_CODEC_H

#include <stddef.h>

#include "buf.h"

/* The value of one hexadecimal digit (either case), or -1. */
int hex_digit(unsigned char c);

/* Append raw[0..len) to out, replacing '%', whitespace and non-printing
 * bytes (anything outside 0x21..0x7e) with %XX, as Postfix's hex_quote. */
void hexq_encode(struct buf *out, const char *raw, size_t len);
/* Decode %XX (either case) into out. Returns 0, or -1 on a malformed escape. */
int hexq_decode(struct buf *out, const char *in, size_t len);

enum ns_status { NS_NEED_MORE = 0, NS_OK = 1, NS_BAD = -1, NS_TOO_LONG = -2 };

/* Parse one netstring "LEN:DATA," at the start of in (len octets).
 * On NS_OK, *data and *dlen point into in and *consumed is its full length.
 * A length above maxlen gives NS_TOO_LONG as soon as the digits show it. */
enum ns_status ns_parse(const char *in, size_t len, size_t maxlen,
                        size_t *consumed, const char **data, size_t *dlen);
void ns_format(struct buf *out, const char *data, size_t len);

/* Dovecot's tab escaping (str_tabescape): 0x01 -> 0x01 '1', TAB -> 0x01 't',
 * LF -> 0x01 'n', CR -> 0x01 'r', so a field never holds a TAB or a line
 * break and Dovecot's own t_strsplit_tabescaped() reads it back. */
void tabesc_encode(struct buf *out, const char *raw, size_t len);
/* Decode in place (the result is never longer); returns the new length,
 * or -1 on 0x01 followed by anything else or at the end. */
long tabesc_decode(char *s, size_t len);

#endif
