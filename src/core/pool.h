/*
 * pool.h - request-lifetime memory (nginx's ngx_pool_t, h2o's req->pool).
 *
 * Allocations come from large blocks and are released together by
 * pool_free(), which first runs the registered cleanups in reverse order
 * (for non-memory resources: json_t references, curl handles, files).
 * Built with -DPOOL_DEBUG_MALLOC every allocation is its own malloc so
 * AddressSanitizer sees overruns (nginx's NGX_DEBUG_PALLOC).
 * Nothing allocated from a pool may be freed on its own.
 */
#ifndef GENAIOPS_POOL_H
#define GENAIOPS_POOL_H

#include <stdarg.h>
#include "common.h"

typedef struct pool pool;
typedef void (*pool_cleanup_fn)(void *data);

pool *pool_new(size_t block_size);            /* NULL on out of memory; 0 = default 4 KiB */
void pool_free(pool *p);                      /* runs cleanups, frees everything; NULL ok */
void *pool_alloc(pool *p, size_t n);          /* 16-byte aligned; NULL on out of memory */
void *pool_calloc(pool *p, size_t n);
char *pool_strndup(pool *p, const char *s, size_t n); /* NUL-terminated copy */
char *pool_strdup(pool *p, const char *s);
char *pool_printf(pool *p, const char *fmt, ...) PRINTF_LIKE(2, 3);
sv pool_sv_dup(pool *p, sv s);
/* Registers fn(data) to run when the pool is freed. Returns 0, or -1 on OOM
 * (in which case fn is NOT called; the caller still owns data). */
int pool_cleanup_add(pool *p, pool_cleanup_fn fn, void *data);
size_t pool_used(const pool *p);              /* bytes handed out, for limits and tests */

#endif
