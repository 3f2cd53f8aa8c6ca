/* reap.h - frees retired directories off the event loop.
 *
 * Freeing a directory of a million mailboxes takes seconds (millions of
 * records and index slots): on the event loop that is seconds in which no
 * lookup is answered. The loop hands a directory it no longer serves to
 * one long-lived thread that frees it; directories handed over while it
 * is busy wait in a queue, so there is never more than one such thread.
 *
 * The caller gives up every pointer into the directory when it hands it
 * over: nothing on the loop may still read it (in-flight requests look
 * records up again in the current directory; a snapshot writer's view
 * keeps its base until the view is freed, see main.c). */
#ifndef MR_REAP_H
#define MR_REAP_H

#include "dir.h"

/* Hand d (no views left; NULL: nothing) to the reaper. When the thread
 * cannot be started, d is freed here, as before. */
void reap_dir(struct dir *d);

/* At exit: free what is queued, then stop the thread and wait for it, so
 * that nothing is half freed when the process ends. Later calls of
 * reap_dir free synchronously. */
void reap_stop(void);

#endif
