/*
 * pool.c - a bump allocator over a list of blocks. Requests larger than a
 * quarter of the block size get a block of their own so a big body does not
 * waste the rest of a small block.
 */
#include <stdio.h>
#include <stdlib.h>
#include "pool.h"

#define ALIGN 16

typedef struct block {
    struct block *next;
    size_t size;
    size_t used;
    _Alignas(ALIGN) unsigned char data[];
} block;

typedef struct cleanup {
    struct cleanup *next;
    pool_cleanup_fn fn;
    void *data;
} cleanup;

struct pool {
    block *blocks;
    cleanup *cleanups;
    size_t block_size;
    size_t used;
#ifdef POOL_DEBUG_MALLOC
    void **allocs;
    size_t nallocs, capallocs;
#endif
};

pool *pool_new(size_t block_size)
{
    pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->block_size = block_size ? block_size : 4096;
    return p;
}

void pool_free(pool *p)
{
    if (!p)
        return;
    cleanup *c = p->cleanups;
    while (c) {
        cleanup *next = c->next;
        c->fn(c->data);
        free(c);
        c = next;
    }
    block *b = p->blocks;
    while (b) {
        block *next = b->next;
        free(b);
        b = next;
    }
#ifdef POOL_DEBUG_MALLOC
    for (size_t i = 0; i < p->nallocs; i++)
        free(p->allocs[i]);
    free(p->allocs);
#endif
    free(p);
}

void *pool_alloc(pool *p, size_t n)
{
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX / 2)
        return NULL;
    p->used += n;
#ifdef POOL_DEBUG_MALLOC
    if (p->nallocs == p->capallocs) {
        size_t cap = p->capallocs ? p->capallocs * 2 : 16;
        void **na = realloc(p->allocs, cap * sizeof *na);
        if (!na)
            return NULL;
        p->allocs = na;
        p->capallocs = cap;
    }
    void *m = malloc(n);
    if (m)
        p->allocs[p->nallocs++] = m;
    return m;
#else
    size_t need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    block *b = p->blocks;
    if (b && b->size - b->used >= need) {
        void *r = b->data + b->used;
        b->used += need;
        return r;
    }
    size_t size = need > p->block_size / 4 ? need : p->block_size;
    block *nb = malloc(sizeof *nb + size);
    if (!nb)
        return NULL;
    nb->size = size;
    nb->used = need;
    if (size == need && b) {
        /* a dedicated block: keep the current one first so small
         * allocations keep using its free space */
        nb->next = b->next;
        b->next = nb;
    } else {
        nb->next = b;
        p->blocks = nb;
    }
    return nb->data;
#endif
}

void *pool_calloc(pool *p, size_t n)
{
    void *r = pool_alloc(p, n);
    if (r)
        memset(r, 0, n);
    return r;
}

char *pool_strndup(pool *p, const char *s, size_t n)
{
    char *r = pool_alloc(p, n + 1);
    if (!r)
        return NULL;
    if (n)
        memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

char *pool_strdup(pool *p, const char *s) { return pool_strndup(p, s, strlen(s)); }

sv pool_sv_dup(pool *p, sv s)
{
    char *r = pool_strndup(p, s.p ? s.p : "", s.len);
    return r ? (sv){ r, s.len } : SV_NULL;
}

char *pool_printf(pool *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *r = pool_alloc(p, (size_t)n + 1);
    if (!r)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(r, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return r;
}

int pool_cleanup_add(pool *p, pool_cleanup_fn fn, void *data)
{
    cleanup *c = malloc(sizeof *c);
    if (!c)
        return -1;
    c->fn = fn;
    c->data = data;
    c->next = p->cleanups;
    p->cleanups = c;
    return 0;
}

size_t pool_used(const pool *p) { return p->used; }
