/*
 * upstream.h - the gateway's HTTP client towards providers: one libcurl
 * multi handle per worker loop, driven by libuv through curl's multi-socket
 * interface (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION mapped onto
 * uv_poll_t and uv_timer_t). Nothing here blocks the loop.
 *
 * A call is started with upstream_start() and reports through three
 * callbacks: on_head once when the response head is complete, on_data for
 * each piece of (de-chunked, decoded) body, and on_done exactly once when it
 * ends - unless the caller canceled it first. Callbacks only ever run from
 * the loop, never from inside an upstream_* function, and every upstream_*
 * function may be called from inside a callback (work that libcurl forbids
 * there is deferred until libcurl has returned).
 *
 * Ownership: the client owns every call; an upstream_call pointer is valid
 * from upstream_start() until on_done returns or upstream_cancel() is
 * called, whichever comes first. The request strings are copied by
 * upstream_start() except the body, which the caller keeps alive until
 * on_done (or the cancel). See docs/internals/upstream.md.
 */
#ifndef GENAIOPS_UPSTREAM_H
#define GENAIOPS_UPSTREAM_H

#include <uv.h>
#include "core/common.h"
#include "core/err.h"

/* Largest response head accepted (status line + headers, all 1xx heads
 * included); a bigger one ends the call with ERR_UPSTREAM. */
#define UPSTREAM_MAX_HEAD_BYTES (16u * 1024u)
/* Idle easy handles (with their connection-independent state) kept for reuse. */
#define UPSTREAM_FREE_HANDLES 16
/* Idle keep-alive connections the multi handle keeps open (CURLMOPT_MAXCONNECTS). */
#define UPSTREAM_MAX_IDLE_CONNS 128

typedef struct upstream upstream;
typedef struct upstream_call upstream_call;

/* A response header as views into the client's copy of the head; valid only
 * during on_head (copy what you keep). Names keep the server's spelling. */
typedef struct upstream_header {
    sv name;
    sv value;
} upstream_header;

typedef struct upstream_request {
    const char *method;                /* "POST", "GET", ... (NULL = "GET", or "POST" with a body) */
    const char *url;                   /* http:// or https:// only */
    const char *const *headers;        /* NULL-terminated "Name: value" strings; may be NULL */
    const char *body;                  /* must stay valid until on_done (or cancel) */
    size_t body_len;
    long connect_timeout_ms;           /* 0 = 5000 */
    long timeout_ms;                   /* total; 0 = none */
    long idle_timeout_ms;              /* no byte received for this long -> ERR_TIMEOUT; 0 = none */
    const char *ca_file;               /* PEM CA bundle for https; NULL = the system store */
} upstream_request;

typedef struct upstream_callbacks {
    /* Status line and headers complete (called once, before any body byte;
     * 1xx interim heads are skipped). Return 0 to go on, nonzero to abort the
     * call (on_done then comes with ERR_CANCELED). May be NULL. */
    int (*on_head)(void *ud, int status, const upstream_header *h, size_t nh);
    /* Body bytes (already de-chunked/decompressed by curl). Return
     * UPSTREAM_CONTINUE, UPSTREAM_PAUSE (the bytes WERE consumed; no more are
     * delivered until upstream_resume) or UPSTREAM_ABORT (on_done then comes
     * with ERR_CANCELED). May be NULL (the body is discarded). */
    int (*on_data)(void *ud, const char *p, size_t n);
    /* The call ended: ERR_OK, ERR_TIMEOUT, ERR_UPSTREAM (connect refused,
     * DNS, TLS, reset, head too large...), ERR_CANCELED. msg is a
     * human-readable reason, valid during the callback, or NULL on ERR_OK.
     * Called exactly once unless upstream_cancel was called first; never
     * from inside upstream_start. A successful end is never reported while
     * the call is paused; a timeout can be. The call is freed when this
     * returns. Required. */
    void (*on_done)(void *ud, err_code e, const char *msg);
} upstream_callbacks;

enum { UPSTREAM_CONTINUE = 0, UPSTREAM_PAUSE = 1, UPSTREAM_ABORT = 2 };

/* Calls curl_global_init once (thread-safe); call it before starting threads. */
void upstream_global_init(void);

/* Creates the client for `loop` (the loop's thread is the only one that may
 * use it). Returns NULL on failure. */
upstream *upstream_new(uv_loop_t *loop);

/* Ends every call (without callbacks), closes the connections and frees the
 * client once its libuv handles are closed: the loop must run afterwards for
 * the close callbacks. Called from inside a callback it takes effect as soon
 * as libcurl has returned, and no further callback is made. NULL is ignored. */
void upstream_close(upstream *u);

/* Starts a call. Returns ERR_OK and sets *out, or an error (ERR_INVAL for a
 * bad request or a closed client, ERR_NOMEM, ERR_UPSTREAM) in which case
 * *out is NULL and no callback will ever be called. cb is copied. */
err_code upstream_start(upstream *u, const upstream_request *r, const upstream_callbacks *cb,
                        void *ud, upstream_call **out);

/* Lets a call paused by UPSTREAM_PAUSE deliver again; the bytes come from
 * the loop shortly after, never from inside this function. Safe to call on a
 * call that is not paused. */
void upstream_resume(upstream_call *c);

/* Ends the call now; no callback follows, c is invalid afterwards. Safe from
 * inside any callback of any call (except on_done of c itself, where it is a
 * no-op). NULL is ignored. */
void upstream_cancel(upstream_call *c);

/* Calls started and not yet ended or canceled. */
size_t upstream_active(const upstream *u);

#endif
