/* thr.h - what each of mailrosterd's threads is, for the scheduler and for
 * a sysop: a name (top -H, ps -L, /proc/PID/task/TID/comm) and, for the
 * threads whose work can wait, a lower priority.
 *
 * The event loop answers every lookup, policy and auth request; the
 * directory's database thread, the admin and quota threads, the snapshot
 * writer and reader and the reaper do work that can wait a little. On a
 * core they share with the loop, the scheduler gives them a tenth of the
 * loop's share (nice 10) instead of half, so a full load, a snapshot write
 * or an import never takes the loop's time by chance. The admission
 * threads stay at the loop's priority: an SMTP client waits for them. */
#ifndef MR_THR_H
#define MR_THR_H

#define THR_BACKGROUND_NICE 10

/* Name the calling thread (at most 15 octets are kept) and, when
 * background, lower its priority. Failures are ignored: a thread that
 * keeps its priority still works. */
void thr_role(const char *name, int background);

#endif
