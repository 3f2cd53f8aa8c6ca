/* svc.c - the service manager's notify protocol (sd_notify(3)).
 *
 * Type=notify: READY=1 once the listeners are up and a directory is served
 * (from PostgreSQL or from the snapshot file); STATUS= says what is served
 * and from where; RELOADING=1 ... READY=1 around SIGHUP; STOPPING=1 on the
 * way out; WATCHDOG=1 from the event loop when WatchdogSec= is set, so a
 * loop that stops turning is restarted. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "svc.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>

static int said_ready;
static char last_status[256];

static void say(const char *state, const char *status)
{
    char msg[400];

    if (status != NULL) {
        snprintf(last_status, sizeof(last_status), "%s", status);
        snprintf(msg, sizeof(msg), "%s%sSTATUS=%s", state, *state ? "\n" : "", last_status);
    } else {
        snprintf(msg, sizeof(msg), "%s", state);
    }
    /* unset_environment 0: a reload says RELOADING/READY on the same socket */
    sd_notify(0, msg);
}

void svc_ready(const char *status)
{
    say(said_ready ? "" : "READY=1", status);
    said_ready = 1;
}

void svc_status(const char *status)
{
    char cur[sizeof(last_status)];

    snprintf(cur, sizeof(cur), "%s", status);
    if (strcmp(cur, last_status) != 0)
        say("", status);
}

void svc_reloading(void) { say("RELOADING=1", NULL); }

void svc_reloaded(void) { say("READY=1", NULL); }

void svc_stopping(void) { say("STOPPING=1", NULL); }

uint64_t svc_watchdog_usec(void)
{
    uint64_t usec = 0;
    return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

void svc_watchdog(void) { sd_notify(0, "WATCHDOG=1"); }

#else

void svc_ready(const char *status) { (void)status; }
void svc_status(const char *status) { (void)status; }
void svc_reloading(void) {}
void svc_reloaded(void) {}
void svc_stopping(void) {}
uint64_t svc_watchdog_usec(void) { return 0; }
void svc_watchdog(void) {}

#endif
