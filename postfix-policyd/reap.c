/* reap.c - frees retired directories on a thread of their own (see reap.h). */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"
#include "reap.h"
#include "thr.h"

struct reap_item {
    struct dir *dir;
    struct reap_item *next;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    int started, stopping;      /* stopping: reap_stop was called */
    struct reap_item *head, *tail;
} R = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void *reaper(void *arg)
{
    (void)arg;
    /* freeing may take its time, a lookup may not */
    thr_role("mr-reap", 1);
    pthread_mutex_lock(&R.lock);
    for (;;) {
        while (R.head == NULL && !R.stopping)
            pthread_cond_wait(&R.cond, &R.lock);
        struct reap_item *it = R.head;
        if (it == NULL)
            break; /* stopping, and nothing left */
        R.head = it->next;
        if (R.head == NULL)
            R.tail = NULL;
        pthread_mutex_unlock(&R.lock);
        dir_free(it->dir);
        free(it);
        pthread_mutex_lock(&R.lock);
    }
    pthread_mutex_unlock(&R.lock);
    return NULL;
}

void reap_dir(struct dir *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&R.lock);
    if (!R.started && !R.stopping) {
        int e = pthread_create(&R.thread, NULL, reaper, NULL);
        if (e == 0)
            R.started = 1;
        else
            msg_warn("cannot start the thread that frees old directories: %s; freeing on the event loop",
                     strerror(e));
    }
    if (!R.started || R.stopping) {
        pthread_mutex_unlock(&R.lock);
        dir_free(d);
        return;
    }
    struct reap_item *it = xcalloc(1, sizeof(*it));
    it->dir = d;
    if (R.tail)
        R.tail->next = it;
    else
        R.head = it;
    R.tail = it;
    pthread_cond_signal(&R.cond);
    pthread_mutex_unlock(&R.lock);
}

void reap_stop(void)
{
    pthread_mutex_lock(&R.lock);
    int join = R.started && !R.stopping;
    R.stopping = 1;
    pthread_cond_signal(&R.cond);
    pthread_mutex_unlock(&R.lock);
    if (join)
        pthread_join(R.thread, NULL);
}
