/*
 * fuzz_sse.c - libFuzzer driver for the text/event-stream parser and writer.
 *
 * Input: byte 0 picks max_event_bytes, byte 1 seeds the slice sizes, the rest
 * is the stream. Checks, beyond "does not crash": feeding the stream whole
 * and in random slices dispatches exactly the same events and ends with the
 * same result; every dispatched event written back with sse_write_event and
 * parsed again is the same event.
 */
#include <stdint.h>
#include <stdlib.h>
#include "http/sse.h"

typedef struct tally {
    uint64_t hash;
    size_t count;
} tally;

static uint64_t fnv(uint64_t h, sv s)
{
    for (size_t i = 0; i < s.len; i++)
        h = (h ^ (unsigned char)s.p[i]) * 1099511628211ULL;
    return (h ^ 0xff) * 1099511628211ULL; /* field separator */
}

typedef struct expect {
    const sse_event *want;
    int seen;
} expect;

static int same_cb(void *ud, const sse_event *ev)
{
    expect *x = ud;
    if (x->seen++ || !sv_eq(ev->event, x->want->event) || !sv_eq(ev->data, x->want->data))
        abort();
    return 0;
}

static int on_event(void *ud, const sse_event *ev)
{
    tally *t = ud;
    t->hash = fnv(fnv(fnv(t->hash, ev->event), ev->data), ev->id);
    t->count++;
    /* round trip through the writer */
    buf out;
    buf_init(&out, (ev->data.len + 1) * 7 + ev->event.len + 16); /* "data: \n" per line */
    if (sse_write_event(&out, ev->event, ev->data) != ERR_OK)
        abort(); /* the parser never yields CR/LF in a name */
    sse_parser p;
    expect x = { ev, 0 };
    sse_parser_init(&p, out.len + 1);
    if (sse_parser_feed(&p, out.p, out.len, same_cb, &x) != ERR_OK || sse_parser_pending(&p) || x.seen != 1)
        abort();
    sse_parser_free(&p);
    buf_free(&out);
    return 0;
}

static err_code run(const uint8_t *data, size_t size, size_t max, unsigned seed, tally *t, bool *pending)
{
    sse_parser p;
    sse_parser_init(&p, max);
    err_code e = ERR_OK;
    size_t at = 0;
    while (at < size && e == ERR_OK) {
        size_t n = size - at;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            n = MIN(n, (size_t)((seed >> 16) % 17));
        }
        e = sse_parser_feed(&p, (const char *)data + at, n, on_event, t);
        at += n;
    }
    *pending = sse_parser_pending(&p);
    sse_parser_free(&p);
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max = 8 + (size_t)data[0] * 8;
    unsigned seed = data[1] | 1u;
    data += 2;
    size -= 2;
    tally whole = { 14695981039346656037ULL, 0 }, split = whole;
    bool pw, ps;
    err_code ew = run(data, size, max, 0, &whole, &pw);
    err_code es = run(data, size, max, seed, &split, &ps);
    if (ew != es || whole.count != split.count || whole.hash != split.hash)
        abort();
    if (ew == ERR_OK && pw != ps)
        abort();
    return 0;
}
