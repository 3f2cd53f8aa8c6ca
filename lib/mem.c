/* mem.c - allocation wrappers: out of memory is fatal, call sites stay short. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"

static _Thread_local unsigned long allocs;

unsigned long mem_allocs(void) { return allocs; }

void *xmalloc(size_t n)
{
    allocs++;
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        msg_fatal("out of memory allocating %zu bytes", n);
    return p;
}

void *xcalloc(size_t n, size_t sz)
{
    allocs++;
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (p == NULL)
        msg_fatal("out of memory allocating %zu x %zu bytes", n, sz);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    allocs++;
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        msg_fatal("out of memory reallocating %zu bytes", n);
    return q;
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }
