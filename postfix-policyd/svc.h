/* svc.h - tell the service manager how mailrosterd is doing (systemd's
 * notify protocol through libsystemd; nothing at all when mailrosterd is
 * built without it or runs without NOTIFY_SOCKET). */
#ifndef MR_SVC_H
#define MR_SVC_H

#include <stdint.h>

/* READY=1 with a status line; only the first call says READY */
void svc_ready(const char *status);
/* STATUS=..., sent only when it differs from the last one */
void svc_status(const char *status);
/* around a configuration reload */
void svc_reloading(void);
void svc_reloaded(void);
void svc_stopping(void);
/* the watchdog interval the manager asked for, 0 when none */
uint64_t svc_watchdog_usec(void);
void svc_watchdog(void);

#endif
