/*
 * buf.c - bounded growable buffers. Capacity doubles from 256 bytes and is
 * clamped to max (+1 for the terminating NUL).
 */
#include <stdio.h>
#include <stdlib.h>
#include "buf.h"

void buf_init(buf *b, size_t max)
{
    b->p = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void buf_free(buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void buf_reset(buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

err_code buf_reserve(buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return ERR_TOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return ERR_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *np = realloc(b->p, cap);
    if (!np)
        return ERR_NOMEM;
    b->p = np;
    b->cap = cap;
    return ERR_OK;
}

err_code buf_append(buf *b, const void *data, size_t n)
{
    err_code e = buf_reserve(b, n);
    if (e)
        return e;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return ERR_OK;
}

err_code buf_append_sv(buf *b, sv s) { return buf_append(b, s.p, s.len); }
err_code buf_append_str(buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

err_code buf_vprintf(buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return ERR_INVAL;
    if ((size_t)n < sizeof small)
        return buf_append(b, small, (size_t)n);
    err_code e = buf_reserve(b, (size_t)n);
    if (e)
        return e;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return ERR_OK;
}

err_code buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_code e = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return e;
}

void buf_consume(buf *b, size_t n)
{
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    b->p[b->len] = '\0';
}

char *buf_steal(buf *b, size_t *len)
{
    char *p = b->p;
    if (len)
        *len = b->len;
    if (!p)
        p = calloc(1, 1);
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}
