/* log.h - one logging family for every mailroster program.
 *
 * Postfix style: "prog[pid]: warning: text". To syslog (facility mail) by
 * default, to stderr in the foreground. Never pass secrets to these.
 */
#ifndef MR_LOG_H
#define MR_LOG_H

#include <stdarg.h>

void log_init(const char *progname, int to_stderr);
void log_set_verbose(int verbose);
int log_verbose(void);

void msg_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void msg_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A protocol handler's log callback (pure handlers log through one): the
 * line is formatted here, and any control character in it (names come
 * from clients) becomes '?', so one log line stays one line. */
typedef void (*log_fn)(void *arg, int warn, const char *text);
void log_callv(log_fn fn, void *arg, int warn, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* Copy at most max bytes of s into a printable, single-line form for logs. */
const char *log_printable(char *dst, size_t dstlen, const char *s, size_t len);

#endif
