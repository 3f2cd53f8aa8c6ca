/* log.c - Postfix-style logging to syslog or stderr. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static const char *log_prog = "mailroster";
static int log_stderr = 1;
static int log_verb;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_init(const char *progname, int to_stderr)
{
    log_prog = progname;
    log_stderr = to_stderr;
    if (!to_stderr)
        openlog(progname, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_set_verbose(int verbose) { log_verb = verbose; }
int log_verbose(void) { return log_verb; }

static void log_emit(int prio, const char *tag, const char *fmt, va_list ap)
{
    char text[2048];
    int saved = errno;

    vsnprintf(text, sizeof(text), fmt, ap);
    errno = saved;
    if (log_stderr) {
        pthread_mutex_lock(&log_lock);
        fprintf(stderr, "%s[%ld]: %s%s\n", log_prog, (long)getpid(), tag, text);
        pthread_mutex_unlock(&log_lock);
    } else {
        syslog(prio, "%s%s", tag, text);
    }
}

#define LOG_BODY(prio, tag)                  \
    va_list ap;                              \
    va_start(ap, fmt);                       \
    log_emit(prio, tag, fmt, ap);            \
    va_end(ap)

void msg_debug(const char *fmt, ...)
{
    if (!log_verb)
        return;
    LOG_BODY(LOG_DEBUG, "debug: ");
}
void msg_info(const char *fmt, ...) { LOG_BODY(LOG_INFO, ""); }
void msg_warn(const char *fmt, ...) { LOG_BODY(LOG_WARNING, "warning: "); }
void msg_error(const char *fmt, ...) { LOG_BODY(LOG_ERR, "error: "); }

void msg_fatal(const char *fmt, ...)
{
    LOG_BODY(LOG_CRIT, "fatal: ");
    exit(1);
}

void msg_panic(const char *fmt, ...)
{
    LOG_BODY(LOG_CRIT, "panic: ");
    abort();
}

const char *log_printable(char *dst, size_t dstlen, const char *s, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 5 < dstlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            dst[o++] = (char)c;
        } else {
            o += (size_t)snprintf(dst + o, dstlen - o, "\\x%02x", c);
        }
    }
    if (dstlen)
        dst[o < dstlen ? o : dstlen - 1] = 0;
    return dst;
}

void log_callv(log_fn fn, void *arg, int warn, const char *fmt, va_list ap)
{
    char text[1024];
    if (fn == NULL)
        return;
    vsnprintf(text, sizeof(text), fmt, ap);
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    fn(arg, warn, text);
}
