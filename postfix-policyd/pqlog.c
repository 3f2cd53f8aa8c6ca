/* pqlog.c - libpq's notices and server messages into the project log
 * (see pqlog.h). */
#include "config.h"

#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "pqlog.h"

enum pqlog_level pqlog_level(const char *severity)
{
    static const struct {
        const char *word;
        enum pqlog_level level;
    } map[] = {
        { "WARNING", PQLOG_WARN }, { "ERROR", PQLOG_WARN }, { "FATAL", PQLOG_WARN },
        { "PANIC", PQLOG_WARN },   { "NOTICE", PQLOG_INFO }, { "INFO", PQLOG_INFO },
        { "LOG", PQLOG_INFO },     { "DEBUG", PQLOG_DEBUG },
    };
    size_t n;

    if (severity == NULL)
        return PQLOG_WARN;
    n = strcspn(severity, ":");
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        size_t w = strlen(map[i].word);
        if (strncmp(severity, map[i].word, w) != 0)
            continue;
        /* the whole word: "DEBUG1".."DEBUG5" have a digit after it */
        if (n == w || (map[i].level == PQLOG_DEBUG && n == w + 1 && severity[w] >= '1' && severity[w] <= '5'))
            return map[i].level;
    }
    return PQLOG_WARN; /* unknown or translated: rather seen than lost */
}

const char *pqlog_text(char *dst, size_t len, const char *msg)
{
    size_t o = 0;
    int blank = 0, newline = 0;

    if (len == 0)
        return dst;
    for (const char *p = msg ? msg : ""; *p && o + 1 < len; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\n' || c == '\r') {
            newline = 1;
            continue;
        }
        if (c == ' ' || c == '\t') {
            blank = 1;
            continue;
        }
        if (o > 0 && newline) {
            if (o + 3 >= len)
                break;
            dst[o++] = ';';
            dst[o++] = ' ';
        } else if (o > 0 && blank) {
            if (o + 2 >= len)
                break;
            dst[o++] = ' ';
        }
        blank = newline = 0;
        dst[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    dst[o] = 0;
    return dst;
}

/* A notice receiver rather than a processor: the result carries the
 * untranslated severity, so a server with lc_messages = de_DE still logs
 * WARNUNG as a warning and NOTIZ as info. */
static void receive(void *arg, const PGresult *res)
{
    const char *who = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorMessage(res);
    char text[1024];

    pqlog_text(text, sizeof(text), msg);
    switch (pqlog_level(sev ? sev : msg)) {
    case PQLOG_DEBUG:
        msg_debug("%s: %s", who, text);
        break;
    case PQLOG_INFO:
        msg_info("%s: %s", who, text);
        break;
    case PQLOG_WARN:
        msg_warn("%s: %s", who, text);
        break;
    }
}

void pqlog_attach(struct pg_conn *conn, const char *who)
{
    if (conn != NULL)
        PQsetNoticeReceiver(conn, receive, (void *)who);
}
