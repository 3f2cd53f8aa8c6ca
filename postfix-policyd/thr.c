/* thr.c - thread names and priorities (see thr.h). */
#include "config.h"

#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "thr.h"

void thr_role(const char *name, int background)
{
    char n[16];

    strncpy(n, name, sizeof(n) - 1);
    n[sizeof(n) - 1] = 0;
    pthread_setname_np(pthread_self(), n);
    /* Linux: the nice value of one thread, not of the process */
    if (background)
        setpriority(PRIO_PROCESS, (id_t)gettid(), THR_BACKGROUND_NICE);
}
