/* polproto.h - Postfix's policy delegation protocol (SMTPD_POLICY_README),
 * server side, as pure functions over buffers.
 *
 * Request: lines "name=value\n", then an empty line "\n". Names are
 * Postfix attribute names ([a-z0-9_]); a value is any bytes but NUL and
 * newline, never escaped (ccert_* values come xtext-encoded from Postfix,
 * and stay so here). A "\r" right before a "\n" is dropped, so that a
 * person typing through telnet is understood. Reply: "action=...\n\n".
 * Connections are persistent: requests follow each other on one stream.
 *
 * Malformed input (POL_BAD, POL_TOO_LONG): SMTPD_POLICY_README says a
 * server in trouble must not reply but log a warning and disconnect;
 * Postfix then retries and, in the end, applies its
 * smtpd_policy_service_default_action. */
#ifndef MR_POLPROTO_H
#define MR_POLPROTO_H

#include <stddef.h>

#include "buf.h"

#define POL_MAX_REQUEST 32768   /* bytes of one request incl. the blank line */
#define POL_MAX_ATTRS 128       /* Postfix 3.7 sends 29 */

struct pol_attr {
    const char *name, *value;
};

/* Where a good line lies in the request (offsets: POL_MAX_REQUEST < 64 Ki). */
struct pol_span {
    unsigned short line, eq, end;   /* its start, its "=", its content's end */
};

/* The attributes the checks ask for at every request: pol_get finds them
 * without a search (the index of the last one of each, + 1; 0 = absent). */
enum pol_known {
    POL_K_REQUEST, POL_K_PROTOCOL_STATE, POL_K_SASL_USERNAME, POL_K_SENDER, POL_K_RECIPIENT,
    POL_K_RECIPIENT_COUNT, POL_K_SIZE, POL_K_QUEUE_ID, POL_NKNOWN
};

/* How far the parse of a request that is not complete yet got, so that
 * the next call goes on from there instead of judging the same bytes
 * again (offsets into the caller's in, which starts at the request). */
struct pol_scan {
    size_t line;                /* start of the line being read; all before it are good lines */
    size_t next;                /* bytes of that line judged good so far */
    int eq;                     /* its "=" is among them (at eqpos) */
    size_t eqpos;
    int nattrs;                 /* good attribute lines before it */
};

struct pol_req {
    char *text;                 /* owned NUL-separated copy of the request */
    size_t text_size;           /* capacity, reused across requests */
    int nattrs;
    struct pol_attr attrs[POL_MAX_ATTRS];
    unsigned char known[POL_NKNOWN];
    struct pol_scan scan;       /* the request being received */
    struct pol_span spans[POL_MAX_ATTRS];   /* its good lines so far */
    unsigned long examined;     /* bytes looked at since pol_req_init (tests) */
};

enum pol_status { POL_NEED_MORE, POL_OK, POL_TOO_LONG, POL_BAD };

void pol_req_init(struct pol_req *r);
void pol_req_free(struct pol_req *r);
/* Forget a request received in part: r will parse a new stream. */
void pol_req_reset(struct pol_req *r);

/* Parse one request at the start of in[0..len).
 *
 * POL_OK: *used = bytes up to and incl. the terminating empty line; r holds
 *   the attributes in the order received (pointers into r->text, valid until
 *   the next pol_parse or pol_req_free).
 * POL_NEED_MORE: no complete request yet, nothing wrong so far, and fewer
 *   than POL_MAX_REQUEST bytes; *used = 0.
 * POL_TOO_LONG: no end within the first POL_MAX_REQUEST bytes (*used = 0),
 *   or a complete, well-formed attribute line beyond the POL_MAX_ATTRS-th
 *   (*used as for POL_BAD).
 * POL_BAD: malformed (see polproto.c for the rules).
 *
 * *why: for POL_BAD and POL_TOO_LONG a static string saying what, for a
 * log line; NULL otherwise. On anything but POL_OK, r->nattrs is 0.
 *
 * Where the bad request ends: the input is judged byte by byte in order,
 * and the first fault decides, as soon as the bytes that show it are in
 * (a NUL or a bad name character is a fault at once, a line without "="
 * when its newline arrives). So garbage (an HTTP client, a port scanner)
 * is refused on its first line, not after 32 KiB; and the status and *why
 * do not depend on how the stream was split: a longer input with the same
 * start never gives a different verdict, only POL_NEED_MORE turns into one.
 * A bad request still ends, like any, at the first empty line after its
 * start; when that line is already in in[0..min(len, POL_MAX_REQUEST)),
 * *used = bytes through it, else 0 (and only then may *used grow as more
 * input arrives). The caller is expected to close the connection, so *used
 * is for the log, not for resynchronising.
 *
 * Resuming (what the caller must keep to): one pol_req per connection
 * stream; in always starts at the first unconsumed byte of the stream, and
 * between calls it only grows (same bytes, more of them) until a request
 * is consumed. A call goes on from where the last one stopped, so a request
 * that trickles in costs time linear in its size, not quadratic. After any
 * verdict but POL_NEED_MORE the next call starts a new request at in[0];
 * to start a new stream with the same pol_req, call pol_req_reset(). An in
 * shorter than what was already judged is taken as a new stream. */
enum pol_status pol_parse(struct pol_req *r, const char *in, size_t len, size_t *used,
                          const char **why);

/* The value of an attribute, NULL when absent. A repeated name: the last
 * one wins (SMTPD_POLICY_README lets a server keep either). */
const char *pol_get(const struct pol_req *r, const char *name);

/* Append "action=TEXT\n\n" to out; a CR or LF in text becomes a space, so
 * one reply stays one reply. (text is a C string: it cannot hold a NUL.) */
void pol_reply(struct buf *out, const char *text);

#endif
