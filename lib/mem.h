/* mem.h - allocation that never returns NULL (it aborts), like Postfix's mymalloc. */
#ifndef MR_MEM_H
#define MR_MEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* How many allocations this thread has made through these functions: the
 * tests check that a request path reusing its buffers makes none. */
unsigned long mem_allocs(void);

#endif
