/*
 * buf.h - growable byte buffers with a hard maximum (curl's dynbuf).
 *
 * A buf owns its heap bytes. Growing past `max` fails with ERR_TOOBIG and
 * leaves the contents as they were, so a caller can answer 413 instead of
 * crashing. The bytes are kept NUL-terminated for convenience (the NUL is
 * not counted in len and does not count against max).
 */
#ifndef GENAIOPS_BUF_H
#define GENAIOPS_BUF_H

#include <stdarg.h>
#include "common.h"
#include "err.h"

typedef struct buf {
    char *p;
    size_t len;
    size_t cap;
    size_t max;
} buf;

void buf_init(buf *b, size_t max);
void buf_free(buf *b);                       /* frees bytes; b may be reused after buf_init */
void buf_reset(buf *b);                      /* len = 0, keeps memory */
err_code buf_reserve(buf *b, size_t extra);  /* room for extra more bytes */
err_code buf_append(buf *b, const void *data, size_t n);
err_code buf_append_sv(buf *b, sv s);
err_code buf_append_str(buf *b, const char *s);
err_code buf_printf(buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
err_code buf_vprintf(buf *b, const char *fmt, va_list ap);
void buf_consume(buf *b, size_t n);          /* drop n bytes from the front */
char *buf_steal(buf *b, size_t *len);        /* caller owns returned bytes; b is reset to empty */
static inline sv buf_sv(const buf *b) { return (sv){ b->p, b->len }; }

#endif
