/*
 * server.h - the HTTP/1.1 server: one libuv loop per worker thread, each with
 * its own SO_REUSEPORT listening socket, so workers share nothing and the
 * kernel spreads connections over them.
 *
 * A connection reads a request head (bounded in bytes, header count and
 * time), then its body (Content-Length or chunked, bounded), and hands the
 * complete request to the application's handler. The handler answers now or
 * later, with one call (http_resp_send) or as a stream (http_resp_start,
 * http_resp_write..., http_resp_end). Keep-alive and pipelining follow.
 *
 * Ownership: the server owns http_req and its pool. The handler "holds" the
 * request from dispatch until it calls http_resp_send, http_resp_end or
 * http_req_abandon; only then may the server free it. If the client goes
 * away first, r->aborted is set and r->on_abort (if set) is called; the
 * handler must still finish with one of those three calls, and writes after
 * an abort are silently dropped.
 */
#ifndef GENAIOPS_HTTP_SERVER_H
#define GENAIOPS_HTTP_SERVER_H

#include <uv.h>
#include "core/buf.h"
#include "core/config.h"
#include "core/pool.h"
#include "http/parser.h"

typedef struct http_server http_server;
typedef struct http_worker http_worker;
typedef struct http_conn http_conn;
typedef struct http_req http_req;

typedef void (*http_handler_fn)(http_req *r);

struct http_req {
    pool *pool;
    http_conn *conn;
    http_worker *worker;
    sv method, target, path, query;
    int minor_version;
    http_header *headers;
    size_t nheaders;
    const char *body;                /* the complete body (NUL-terminated), may be empty */
    size_t body_len;
    char request_id[72];
    uint64_t start_ns;               /* when the head was complete (monotonic) */
    bool keep_alive;
    bool aborted;                    /* the client went away */
    bool responded;                  /* status line sent */
    bool finished;                   /* handler is done with it */
    bool streaming;                  /* chunked (1.1) or close-delimited (1.0) response */
    int status;
    buf headers_out;                 /* extra response headers, "name: value\r\n" lines */
    void *ud;                        /* the handler's */
    void (*on_abort)(http_req *r);   /* client gone while the handler held the request */
    void (*on_drain)(http_req *r);   /* output queue fell below the low-water mark */
};

typedef struct http_server_opts {
    const cfg_server *cfg;
    const char *host;                /* numeric IPv4/IPv6 or "localhost" */
    int port;
    int workers;                     /* >= 1 */
    http_handler_fn handler;
    void *app;                       /* given back by http_worker_app */
    /* Called in each worker thread before it serves, and when it has drained
     * on shutdown (the loop still runs after worker_stop so handles can close). */
    int (*worker_start)(http_worker *w);
    void (*worker_stop)(http_worker *w);
} http_server_opts;

/* Binds every worker's socket (so an address in use fails here, before any
 * thread starts) and starts the threads. Returns 0 or an error with a log line. */
err_code http_server_start(const http_server_opts *o, http_server **out);
/* Stops accepting, lets in-flight requests finish for up to drain_ms, then
 * closes what is left. Safe from a signal-handling loop; returns at once. */
void http_server_stop(http_server *s, long drain_ms);
/* Waits for every worker to finish and frees the server. */
void http_server_join(http_server *s);
int http_server_port(const http_server *s);  /* the bound port (useful with port 0) */

uv_loop_t *http_worker_loop(http_worker *w);
void *http_worker_app(http_worker *w);
void *http_worker_data(http_worker *w);
void http_worker_set_data(http_worker *w, void *data);
int http_worker_index(http_worker *w);
bool http_worker_stopping(http_worker *w);
size_t http_conns_active(void);              /* process-wide */

/* Request helpers */
sv http_req_header(const http_req *r, const char *name);   /* SV_NULL if absent */

/* Responses. Header names and values must not contain CR or LF (checked:
 * such a header is dropped with a warning). */
void http_resp_header(http_req *r, const char *name, const char *value);
void http_resp_headerf(http_req *r, const char *name, const char *fmt, ...) PRINTF_LIKE(3, 4);
void http_resp_header_u64(http_req *r, const char *name, unsigned long long value); /* name must be safe */
/* A whole response with Content-Length; finishes the request. */
void http_resp_send(http_req *r, int status, const char *content_type, const char *body, size_t len);
/* Starts a streamed response (chunked on HTTP/1.1, close-delimited on 1.0). */
void http_resp_start(http_req *r, int status, const char *content_type);
/* Queues body bytes of a streamed response. Returns ERR_CANCELED after an
 * abort, ERR_TOOBIG if the output queue is over its hard limit. */
err_code http_resp_write(http_req *r, const char *data, size_t len);
/* Ends a streamed response and finishes the request. */
void http_resp_end(http_req *r);
/* Bytes queued for the socket and not yet written (for backpressure). */
size_t http_resp_pending(const http_req *r);
/* Gives up on a request without a response (the connection is closed). */
void http_req_abandon(http_req *r);

uint64_t http_now_ns(void);                   /* monotonic clock */

#endif
