/*
 * sse.c - incremental text/event-stream parser and writer.
 *
 * How the parser works: each feed scans its slice for line ends. A line that
 * lies wholly inside the slice is interpreted in place; only the unfinished
 * tail of a slice is copied into p->line, and the next slice's first line is
 * appended to it before it is interpreted. A CR that ends a slice sets p->cr
 * so that an LF opening the next slice is taken as the second half of the
 * same CRLF. The leading BOM is matched byte by byte (it too may be split);
 * if the stream turns out not to start with a BOM the matched bytes are
 * replayed as ordinary input.
 *
 * Field lines fill p->event / p->data / p->id (see the spec's "process the
 * field"); a blank line dispatches. Limits are checked before every append
 * so the buffers never grow past max_event_bytes.
 */
#include <limits.h>
#include "http/sse.h"

static const unsigned char BOM[3] = { 0xEF, 0xBB, 0xBF };

void sse_parser_init(sse_parser *p, size_t max_event_bytes)
{
    size_t max = max_event_bytes ? max_event_bytes : SSE_DEFAULT_MAX_EVENT;
    p->max = max;
    buf_init(&p->line, max);
    buf_init(&p->data, max);
    buf_init(&p->event, max);
    buf_init(&p->id, max);
    p->retry_ms = -1;
    p->bom = 0;
    p->cr = false;
    p->in_event = false;
    p->err = ERR_OK;
}

void sse_parser_free(sse_parser *p)
{
    buf_free(&p->line);
    buf_free(&p->data);
    buf_free(&p->event);
    buf_free(&p->id);
}

bool sse_parser_pending(const sse_parser *p)
{
    return p->line.len > 0 || p->in_event || (p->bom > 0 && p->bom < 3);
}

/* Blank line: hand the gathered event to cb if it has data, then clear it. */
static err_code dispatch(sse_parser *p, sse_event_cb cb, void *ud)
{
    p->in_event = false;
    if (p->data.len == 0) {
        buf_reset(&p->event);
        return ERR_OK;
    }
    sse_event ev = {
        .event = buf_sv(&p->event),
        .data = { p->data.p, p->data.len - 1 }, /* drop the last LF */
        .id = buf_sv(&p->id),
    };
    int stop = cb ? cb(ud, &ev) : 0;
    buf_reset(&p->data);
    buf_reset(&p->event);
    return stop ? ERR_CANCELED : ERR_OK;
}

/* "retry:" takes effect only when the value is all ASCII digits. */
static void set_retry(sse_parser *p, sv v)
{
    if (v.len == 0)
        return;
    long r = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return;
        int d = v.p[i] - '0';
        if (r > (LONG_MAX - d) / 10)
            return; /* overflow: ignore like any other unusable value */
        r = r * 10 + d;
    }
    p->retry_ms = r;
}

/* Interprets one complete line (without its terminator). */
static err_code process_line(sse_parser *p, sv line, sse_event_cb cb, void *ud)
{
    if (line.len == 0)
        return dispatch(p, cb, ud);
    if (line.p[0] == ':')
        return ERR_OK; /* comment */
    p->in_event = true;
    const char *colon = memchr(line.p, ':', line.len);
    sv field = line, value = SV_NULL;
    if (colon) {
        field.len = (size_t)(colon - line.p);
        value.p = colon + 1;
        value.len = line.len - field.len - 1;
        if (value.len && value.p[0] == ' ') {
            value.p++;
            value.len--;
        }
    } else {
        value.p = line.p + line.len;
    }
    if (sv_eq_cstr(field, "data")) {
        if (value.len + 1 > p->max - MIN(p->max, p->data.len + p->event.len))
            return ERR_TOOBIG;
        err_code e = buf_append_sv(&p->data, value);
        return e ? e : buf_append(&p->data, "\n", 1);
    }
    if (sv_eq_cstr(field, "event")) {
        if (value.len > p->max - MIN(p->max, p->data.len))
            return ERR_TOOBIG;
        buf_reset(&p->event);
        return buf_append_sv(&p->event, value);
    }
    if (sv_eq_cstr(field, "id")) {
        if (value.len && memchr(value.p, '\0', value.len))
            return ERR_OK; /* ids containing NUL are ignored */
        buf_reset(&p->id);
        return buf_append_sv(&p->id, value);
    }
    if (sv_eq_cstr(field, "retry"))
        set_retry(p, value);
    return ERR_OK; /* unknown fields are ignored */
}

/* The body of feed once the BOM question is settled. */
static err_code feed_lines(sse_parser *p, const char *s, size_t n, sse_event_cb cb, void *ud)
{
    size_t i = 0;
    if (p->cr && n > 0) {
        p->cr = false;
        if (s[0] == '\n')
            i = 1;
    }
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != '\n' && s[j] != '\r')
            j++;
        size_t seg = j - i;
        if (seg > p->max - MIN(p->max, p->line.len))
            return ERR_TOOBIG;
        if (j == n) { /* unfinished line: keep it for the next slice */
            return buf_append(&p->line, s + i, seg);
        }
        sv line = { s + i, seg };
        if (p->line.len) {
            err_code e = buf_append(&p->line, s + i, seg);
            if (e)
                return e;
            line = buf_sv(&p->line);
        }
        /* consume the terminator before calling out, so state is right even
         * if the callback stops us */
        if (s[j] == '\r') {
            if (j + 1 < n) {
                if (s[j + 1] == '\n')
                    j++;
            } else {
                p->cr = true;
            }
        }
        i = j + 1;
        err_code e = process_line(p, line, cb, ud);
        buf_reset(&p->line);
        if (e)
            return e;
    }
    return ERR_OK;
}

err_code sse_parser_feed(sse_parser *p, const char *bytes, size_t n, sse_event_cb cb, void *ud)
{
    if (p->err)
        return p->err;
    size_t i = 0;
    err_code e = ERR_OK;
    if (p->bom < 3) {
        while (i < n && p->bom < 3 && (unsigned char)bytes[i] == BOM[p->bom]) {
            p->bom++;
            i++;
        }
        if (p->bom < 3 && i < n) {
            /* not a BOM after all: replay what was matched, then go on */
            size_t matched = p->bom;
            p->bom = 3;
            e = feed_lines(p, (const char *)BOM, matched, cb, ud);
        } else if (p->bom < 3) {
            return ERR_OK; /* slice ended inside a possible BOM */
        }
    }
    if (!e)
        e = feed_lines(p, bytes + i, n - i, cb, ud);
    if (e)
        p->err = e;
    return e;
}

/* Appends "data: " + line + "\n" for each line of data. */
static err_code write_data_lines(buf *out, sv data)
{
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < data.len && data.p[j] != '\n' && data.p[j] != '\r')
            j++;
        err_code e = buf_append(out, "data: ", 6);
        if (!e)
            e = buf_append(out, data.p + i, j - i);
        if (!e)
            e = buf_append(out, "\n", 1);
        if (e)
            return e;
        if (j == data.len)
            return ERR_OK;
        if (data.p[j] == '\r' && j + 1 < data.len && data.p[j + 1] == '\n')
            j++;
        i = j + 1;
    }
}

err_code sse_write_event(buf *out, sv event, sv data)
{
    if (event.len && (memchr(event.p, '\n', event.len) || memchr(event.p, '\r', event.len)))
        return ERR_INVAL;
    size_t start = out->len;
    err_code e = ERR_OK;
    if (event.len) {
        e = buf_append(out, "event: ", 7);
        if (!e)
            e = buf_append_sv(out, event);
        if (!e)
            e = buf_append(out, "\n", 1);
    }
    if (!e)
        e = write_data_lines(out, data);
    if (!e)
        e = buf_append(out, "\n", 1);
    if (e) {
        out->len = start;
        if (out->p)
            out->p[start] = '\0';
    }
    return e;
}
