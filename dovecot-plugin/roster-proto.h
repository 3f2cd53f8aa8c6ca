/* roster-proto.h - the client side of mailrosterd's auth protocol
 * (mailroster-auth(7)): request encoding and answer parsing for the Dovecot
 * `roster` passdb/userdb driver.
 *
 * Pure functions over caller-owned buffers: no Dovecot headers, no sockets,
 * no allocation, no globals, so the code is unit-tested and fuzzed alone and
 * shared by every Dovecot glue file (2.3 today, 2.4 later). */
#ifndef ROSTER_PROTO_H
#define ROSTER_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Longest answer line we accept, without its LF. The daemon's request limit
 * is 8191 octets plus the LF; its answers are far shorter. */
#define ROSTER_LINE_MAX 8192
/* A request line, LF included, is at most this long (the daemon's limit). */
#define ROSTER_REQUEST_MAX 8192
/* Most key=value fields one answer may carry. */
#define ROSTER_FIELDS_MAX 64

enum roster_cmd {
    ROSTER_CMD_PASS,   /* id PASS user service */
    ROSTER_CMD_MASTER, /* id MASTER master user service */
    ROSTER_CMD_USER,   /* id USER user service */
    ROSTER_CMD_LIST    /* id LIST */
};

enum roster_verdict {
    ROSTER_OK,
    ROSTER_NOTFOUND,
    ROSTER_DISABLED,
    ROSTER_DENIED,
    ROSTER_FAIL,       /* temporary: the daemon has no directory yet */
    ROSTER_ERROR,      /* the daemon found our request malformed */
    ROSTER_ROW,        /* one user of a LIST */
    ROSTER_END,        /* end of a LIST */
    ROSTER_VERSION     /* answer to VERSION: no id */
};

struct roster_field {
    const char *key;   /* never empty */
    const char *value; /* may be empty */
};

/* One parsed answer. Every string points into the line that was parsed,
 * which the caller keeps alive as long as it uses the answer. */
struct roster_answer {
    uint32_t id;                /* 0 for VERSION and id-less ERRORs */
    enum roster_verdict verdict;
    const char *row_user;       /* ROW only */
    unsigned int version_major; /* VERSION only */
    unsigned int version_minor;
    unsigned int nfields;
    struct roster_field fields[ROSTER_FIELDS_MAX];
};

/* Why an answer line was refused (for the log). */
enum roster_parse_error {
    ROSTER_PARSE_OK = 0,
    ROSTER_PARSE_TOO_LONG = -1,
    ROSTER_PARSE_NUL = -2,
    ROSTER_PARSE_BAD_ID = -3,
    ROSTER_PARSE_BAD_VERDICT = -4,
    ROSTER_PARSE_BAD_ESCAPE = -5,
    ROSTER_PARSE_BAD_FIELD = -6,
    ROSTER_PARSE_TOO_MANY_FIELDS = -7,
    ROSTER_PARSE_BAD_ARITY = -8
};

/* Encode one request line, LF-terminated and NUL-terminated, into
 * out[0..cap). args are the cmd's arguments in protocol order (PASS and
 * USER: user, service; MASTER: master, user, service; LIST: none), each
 * non-empty and tab-escaped here. Returns the line's length (LF included,
 * NUL excluded), or -1 if id is 0, an argument is NULL or empty, or the line
 * would exceed ROSTER_REQUEST_MAX or cap-1 octets. */
long roster_encode_request(char *out, size_t cap, uint32_t id, enum roster_cmd cmd,
                           const char *const *args, unsigned int nargs);

/* The VERSION handshake line, sent first on every connection. */
#define ROSTER_VERSION_LINE "VERSION\t1\t0\n"

/* Parse one answer line of len octets (without its LF) in place: TABs and
 * escapes are replaced, fields NUL-terminated inside line, which must have
 * room for len + 1 octets (the last field's NUL goes at line[len]). Returns
 * ROSTER_PARSE_OK and fills *ans, or a negative roster_parse_error. */
enum roster_parse_error roster_parse_answer(char *line, size_t len, struct roster_answer *ans);

/* The value of field key in ans, or NULL. */
const char *roster_answer_field(const struct roster_answer *ans, const char *key);

const char *roster_verdict_name(enum roster_verdict v);
const char *roster_parse_error_str(enum roster_parse_error e);

/* Dovecot's tab escaping of len octets of in into out[0..cap): returns the
 * escaped length or -1 if it does not fit. No NUL is written. */
long roster_tabescape(char *out, size_t cap, const char *in, size_t len);
/* Undo it in place; returns the new length or -1 on a bad escape. */
long roster_tabunescape(char *s, size_t len);

#endif
