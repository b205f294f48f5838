/*
 * sse.h - text/event-stream (Server-Sent Events): an incremental parser and
 * a writer.
 *
 * The parser follows the WHATWG HTML "event stream interpretation": bytes
 * arrive in arbitrary slices, lines end in LF, CR or CRLF (also when the CR
 * and the LF fall in different slices), a UTF-8 BOM at the very start is
 * skipped, lines starting with ':' are comments, and a blank line dispatches
 * the event gathered so far if it has at least one data line. Unlike a
 * browser it does not default the event name to "message": an event without
 * an `event:` line is reported with an empty name (what OpenAI streams send).
 * Bytes are passed through undecoded; consumers that need valid UTF-8 (JSON)
 * check it themselves.
 *
 * Everything the parser buffers is bounded by max_event_bytes: a single line,
 * and the data plus event name of the event being gathered. Exceeding it is
 * ERR_TOOBIG and the parser stays failed.
 */
#ifndef GENAIOPS_SSE_H
#define GENAIOPS_SSE_H

#include "core/buf.h"
#include "core/common.h"
#include "core/err.h"

#define SSE_DEFAULT_MAX_EVENT ((size_t)1 << 20) /* used when max_event_bytes is 0 */

/* One dispatched event. The views point into the parser and are valid only
 * during the callback. data has its per-line "\n" joins and no trailing LF;
 * id is the last event id seen on the stream (it persists across events, as
 * the spec says), empty if none. */
typedef struct sse_event {
    sv event;
    sv data;
    sv id;
} sse_event;

/* Called once per dispatched event; a nonzero return stops parsing. The
 * callback must not feed the same parser. */
typedef int (*sse_event_cb)(void *ud, const sse_event *ev);

typedef struct sse_parser {
    buf line;        /* the partial line carried over between feeds */
    buf data;        /* data lines of the current event, each followed by LF */
    buf event;       /* event name of the current event */
    buf id;          /* last event id */
    long retry_ms;   /* last valid "retry:" value, -1 if none seen */
    size_t max;      /* max_event_bytes */
    uint8_t bom;     /* bytes of a leading BOM matched so far; 3 = past the start */
    bool cr;         /* the previous slice ended in CR: a leading LF is its pair */
    bool in_event;   /* a field line was seen since the last blank line */
    err_code err;    /* sticky: ERR_TOOBIG or ERR_CANCELED once it happened */
} sse_parser;

/* Prepares p; max_event_bytes bounds a line and a buffered event (0 = the
 * default, 1 MiB). Never fails: memory is allocated on demand. */
void sse_parser_init(sse_parser *p, size_t max_event_bytes);

/* Parses n more bytes, calling cb(ud, ev) for every complete event.
 * Returns ERR_OK; ERR_TOOBIG when a line or event exceeds the bound;
 * ERR_CANCELED when cb returned nonzero (the rest of the slice is dropped);
 * ERR_NOMEM. After any error the parser is dead: later feeds return the
 * same error without calling cb. */
err_code sse_parser_feed(sse_parser *p, const char *bytes, size_t n, sse_event_cb cb, void *ud);

/* True if a partial line or a started but undispatched event is buffered,
 * i.e. the stream was cut in the middle of an event. */
bool sse_parser_pending(const sse_parser *p);

/* Frees the parser's buffers; p may be initialised again afterwards. */
void sse_parser_free(sse_parser *p);

/* Appends one event to out: "event: NAME\n" when event.len, then one
 * "data: LINE\n" per line of data (CR, LF and CRLF all split lines, so
 * parsing the output gives data back with LF joins), then "\n".
 * ERR_INVAL if the event name contains CR or LF; ERR_TOOBIG/ERR_NOMEM from
 * out. On error out is left exactly as it was. */
err_code sse_write_event(buf *out, sv event, sv data);

#endif
