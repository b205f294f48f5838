/*
 * server.c - HTTP/1.1 connections on libuv, one loop per worker thread.
 *
 * Each worker binds its own listening socket with SO_REUSEPORT. A
 * connection moves through HEAD (reading the request head into conn->in,
 * re-parsed from the start as bytes arrive: the parser keeps no state),
 * BODY (Content-Length or chunked, into the request's body), HANDLING (the
 * application holds the request; we keep reading so a disconnect is seen,
 * but parse nothing) and back to HEAD for keep-alive and pipelining.
 *
 * One uv_timer per connection enforces whichever timeout applies: the whole
 * head within header_timeout (a slow sender is cut off, not reset by each
 * byte), the gap between body reads, and keep-alive idleness.
 *
 * Output is double-buffered: bytes go straight to the socket with
 * uv_try_write when nothing is queued; what the kernel does not take is
 * queued (bounded) and written with uv_write. The application watches
 * http_resp_pending() and on_drain to apply backpressure upstream.
 *
 * A connection is freed once its two handles are closed and no request is
 * held by the application.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "core/log.h"
#include "http/server.h"

enum conn_state { CONN_HEAD, CONN_BODY, CONN_HANDLING, CONN_CLOSED };

#define READ_CHUNK 16384
#define LINGER_MS 2000                      /* after a reject, read and drop input this long */
#define LINGER_MAX_BYTES (64u << 20)        /* ... or this much, then close */
#define OUT_HARD_LIMIT (256u << 20) /* queued output beyond this is refused */

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    http_worker *w;
    struct http_conn *prev, *next;
    enum conn_state state;
    buf in;                          /* unparsed input */
    http_req *req;                   /* current request, NULL between requests */
    int64_t body_left;               /* Content-Length bytes still to read */
    bool chunked;
    http_chunked chunk;
    buf body;                        /* the body being read */
    buf out_pending;                 /* queued while a write is in flight */
    buf out_inflight;                /* the bytes of the uv_write in flight */
    buf scratch;                     /* response heads are formatted here */
    uv_write_t wreq;
    bool writing;
    bool close_after_write;
    bool linger;                     /* drain input before closing (after a reject) */
    bool lingering;
    bool out_paused;                 /* reading stopped until queued output drains */
    size_t linger_bytes;
    uv_shutdown_t shut;
    bool closing;
    bool peer_eof;
    bool reading;
    bool in_process;
    int handles;                     /* open handles (tcp, timer) */
    unsigned nrequests;
};

struct http_worker {
    http_server *srv;
    int index;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t wake;
    uv_timer_t deadline;
    uv_thread_t thread;
    int listen_fd;
    http_conn *conns;                /* every open connection */
    size_t nconns;
    bool stopping;
    bool stopped_app;
    bool listener_open;
    uint64_t rid_state;
    void *data;
    err_code start_err;
};

struct http_server {
    http_server_opts o;
    cfg_server cfg;
    http_worker *workers;
    int nworkers;
    int port;
    long drain_ms;
    _Atomic int stop_requested;
};

static atomic_size_t conns_active;

size_t http_conns_active(void) { return atomic_load(&conns_active); }
uv_loop_t *http_worker_loop(http_worker *w) { return &w->loop; }
void *http_worker_app(http_worker *w) { return w->srv->o.app; }
void *http_worker_data(http_worker *w) { return w->data; }
void http_worker_set_data(http_worker *w, void *data) { w->data = data; }
int http_worker_index(http_worker *w) { return w->index; }
bool http_worker_stopping(http_worker *w) { return w->stopping; }
int http_server_port(const http_server *s) { return s->port; }

uint64_t http_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void conn_close(http_conn *c);
static void conn_fail(http_conn *c);
static void conn_done_writing(http_conn *c);
static void conn_set_timer(http_conn *c, long ms);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void conn_process(http_conn *c);
static void conn_flush(http_conn *c);
static void worker_maybe_done(http_worker *w);

/* ---- small helpers ---------------------------------------------------- */

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* A client-sent x-request-id is kept when it is short and printable. */
static bool rid_acceptable(sv v)
{
    if (v.len == 0 || v.len > 64)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char ch = (unsigned char)v.p[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
            return false;
    }
    return true;
}

sv http_req_header(const http_req *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->nheaders; i++)
        if (r->headers[i].name.len == n && strncasecmp(r->headers[i].name.p, name, n) == 0)
            return r->headers[i].value;
    return SV_NULL;
}

/* ---- output ----------------------------------------------------------- */

static void on_write(uv_write_t *wr, int status)
{
    http_conn *c = wr->data;
    c->writing = false;
    buf_reset(&c->out_inflight);
    if (status < 0) {
        if (status != UV_ECANCELED)
            log_debug("write failed: %s", uv_strerror(status));
        buf_reset(&c->out_pending);
        conn_close(c);
        return;
    }
    if (c->out_pending.len) {
        conn_flush(c);
        return;
    }
    if (c->close_after_write) {
        conn_done_writing(c);
        return;
    }
    if (c->out_paused) {
        /* pipelined requests answered faster than read: go on now */
        c->out_paused = false;
        if (!c->reading && !c->peer_eof) {
            uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
            c->reading = true;
        }
        if (!c->in_process && c->state == CONN_HEAD)
            conn_process(c);
        return;
    }
    if (c->req && !c->req->finished && c->req->on_drain)
        c->req->on_drain(c->req);
}

/* Starts a uv_write of everything pending, if none is in flight. */
static void conn_flush(http_conn *c)
{
    if (c->writing || c->closing || c->out_pending.len == 0)
        return;
    buf t = c->out_inflight;
    c->out_inflight = c->out_pending;
    c->out_pending = t;
    buf_reset(&c->out_pending);
    uv_buf_t b = uv_buf_init(c->out_inflight.p, (unsigned)c->out_inflight.len);
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        buf_reset(&c->out_inflight);
        conn_fail(c);
        return;
    }
    c->writing = true;
}

/* Writes the given pieces: directly when nothing is queued, the rest queued. */
static err_code conn_writev(http_conn *c, uv_buf_t *bufs, unsigned n)
{
    if (c->closing)
        return ERR_CANCELED;
    size_t total = 0;
    for (unsigned k = 0; k < n; k++)
        total += bufs[k].len;
    if (c->out_pending.len + c->out_inflight.len + total > OUT_HARD_LIMIT) {
        /* all or nothing: never a truncated response */
        conn_fail(c);
        return ERR_TOOBIG;
    }
    unsigned i = 0;
    size_t off = 0;
    if (!c->writing && c->out_pending.len == 0) {
        int w = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
        size_t done = w > 0 ? (size_t)w : 0;
        if (w < 0 && w != UV_EAGAIN) {
            conn_fail(c);
            return ERR_IO;
        }
        while (i < n && done >= bufs[i].len)
            done -= bufs[i++].len;
        off = done;
    }
    for (; i < n; i++, off = 0) {
        err_code e = buf_append(&c->out_pending, bufs[i].base + off, bufs[i].len - off);
        if (e) {
            conn_fail(c);
            return e;
        }
    }
    conn_flush(c);
    return ERR_OK;
}

size_t http_resp_pending(const http_req *r)
{
    const http_conn *c = r->conn;
    return c->out_pending.len + c->out_inflight.len;
}

/* ---- responses -------------------------------------------------------- */

static bool header_safe(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return false;
    return true;
}

void http_resp_header(http_req *r, const char *name, const char *value)
{
    if (!header_safe(name) || !header_safe(value)) {
        log_req(L_WARN, r->request_id, "dropped response header %s with CR/LF", name);
        return;
    }
    buf_append_str(&r->headers_out, name);
    buf_append(&r->headers_out, ": ", 2);
    buf_append_str(&r->headers_out, value);
    buf_append(&r->headers_out, "\r\n", 2);
}

void http_resp_headerf(http_req *r, const char *name, const char *fmt, ...)
{
    char v[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    http_resp_header(r, name, v);
}

/* Decimal digits of v into dst (at least 21 bytes); returns the length. */
static size_t u64_digits(char *dst, unsigned long long v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        dst[i] = tmp[n - 1 - i];
    return n;
}

#define APPEND_LIT(b, lit) buf_append((b), (lit), sizeof(lit) - 1)

/* Formats the status line and headers into out (the connection's scratch
 * buffer; no printf on this path). */
static void format_head(http_req *r, int status, const char *ctype, long long clen, bool chunked, buf *out)
{
    http_conn *c = r->conn;
    bool close = !r->keep_alive || c->w->stopping || c->peer_eof;
    if (!chunked && clen < 0)
        close = true; /* close-delimited body */
    if (close)
        r->keep_alive = false;
    char num[24];
    buf_append(out, r->minor_version ? "HTTP/1.1 " : "HTTP/1.0 ", 9);
    if (status < 100 || status > 999)
        status = 500;
    num[0] = (char)('0' + status / 100);
    num[1] = (char)('0' + status / 10 % 10);
    num[2] = (char)('0' + status % 10);
    num[3] = ' ';
    buf_append(out, num, 4);
    buf_append_str(out, http_status_reason(status));
    APPEND_LIT(out, "\r\nserver: genaiops\r\nx-request-id: ");
    buf_append_str(out, r->request_id);
    APPEND_LIT(out, "\r\n");
    if (ctype) {
        APPEND_LIT(out, "content-type: ");
        buf_append_str(out, ctype);
        APPEND_LIT(out, "\r\n");
    }
    if (clen >= 0) {
        APPEND_LIT(out, "content-length: ");
        buf_append(out, num, u64_digits(num, (unsigned long long)clen));
        APPEND_LIT(out, "\r\n");
    }
    if (chunked)
        APPEND_LIT(out, "transfer-encoding: chunked\r\n");
    buf_append(out, r->headers_out.p, r->headers_out.len);
    if (close)
        APPEND_LIT(out, "connection: close\r\n");
    else if (r->minor_version == 0)
        APPEND_LIT(out, "connection: keep-alive\r\n");
    APPEND_LIT(out, "\r\n");
}

void http_resp_header_u64(http_req *r, const char *name, unsigned long long value)
{
    char num[24];
    size_t n = u64_digits(num, value);
    buf_append_str(&r->headers_out, name);
    APPEND_LIT(&r->headers_out, ": ");
    buf_append(&r->headers_out, num, n);
    APPEND_LIT(&r->headers_out, "\r\n");
}

static void req_finish(http_req *r);
static void conn_maybe_free(http_conn *c);

void http_resp_send(http_req *r, int status, const char *content_type, const char *body, size_t len)
{
    if (r->finished)
        return;
    r->status = status;
    if (!r->aborted && !r->responded) {
        r->responded = true;
        buf *head = &r->conn->scratch;
        buf_reset(head);
        format_head(r, status, content_type, (long long)len, false, head);
        uv_buf_t b[2] = { uv_buf_init(head->p, (unsigned)head->len), uv_buf_init((char *)body, (unsigned)len) };
        bool is_head = sv_eq_cstr(r->method, "HEAD");
        conn_writev(r->conn, b, is_head ? 1 : 2);
    }
    req_finish(r);
}

void http_resp_start(http_req *r, int status, const char *content_type)
{
    if (r->finished || r->responded)
        return;
    r->status = status;
    r->responded = true;
    r->streaming = true;
    if (r->aborted)
        return;
    buf *head = &r->conn->scratch;
    buf_reset(head);
    bool chunked = r->minor_version >= 1;
    format_head(r, status, content_type, -1, chunked, head);
    uv_buf_t b = uv_buf_init(head->p, (unsigned)head->len);
    conn_writev(r->conn, &b, 1);
}

err_code http_resp_write(http_req *r, const char *data, size_t len)
{
    if (r->aborted || r->finished || r->conn->closing)
        return ERR_CANCELED;
    if (len == 0)
        return ERR_OK;
    if (http_resp_pending(r) > OUT_HARD_LIMIT)
        return ERR_TOOBIG;
    if (r->minor_version == 0) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        return conn_writev(r->conn, &b, 1);
    }
    char pre[24];
    int n = snprintf(pre, sizeof pre, "%zx\r\n", len);
    uv_buf_t b[3] = { uv_buf_init(pre, (unsigned)n), uv_buf_init((char *)data, (unsigned)len),
                      uv_buf_init("\r\n", 2) };
    return conn_writev(r->conn, b, 3);
}

void http_resp_end(http_req *r)
{
    if (r->finished)
        return;
    if (!r->responded)
        http_resp_start(r, r->status ? r->status : 200, NULL);
    if (!r->aborted && r->minor_version >= 1) {
        uv_buf_t b = uv_buf_init("0\r\n\r\n", 5);
        conn_writev(r->conn, &b, 1);
    }
    req_finish(r);
}

void http_req_abandon(http_req *r)
{
    if (r->finished)
        return;
    r->keep_alive = false;
    r->conn->close_after_write = true;
    req_finish(r);
}

/* A canned error before a request reaches the application; the connection
 * closes after it. */
static void conn_reject(http_conn *c, int status, const char *msg)
{
    char body[512], out[1024];
    int bn = snprintf(body, sizeof body,
                      "{\"error\":{\"message\":\"%s\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}",
                      msg);
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 %d %s\r\nserver: genaiops\r\ncontent-type: application/json\r\n"
                     "content-length: %d\r\nconnection: close\r\n\r\n%s",
                     status, http_status_reason(status), bn, body);
    uv_buf_t b = uv_buf_init(out, (unsigned)n);
    conn_writev(c, &b, 1);
    c->close_after_write = true;
    c->linger = true;
    c->state = CONN_CLOSED;
    if (!c->writing && c->out_pending.len == 0)
        conn_done_writing(c);
}

static void on_shutdown(uv_shutdown_t *req, int status) { (void)req; (void)status; }

/* Output is flushed and the connection is to close. After a reject the
 * client may still be sending a body it will not stop sending until it
 * reads our answer: closing now would make the kernel reset the connection
 * and destroy the answer. So shut our side, drop what arrives, and close on
 * EOF or after LINGER_MS / LINGER_MAX_BYTES (nginx's lingering close). */
static void conn_done_writing(http_conn *c)
{
    if (!c->linger || c->peer_eof || c->closing || c->w->stopping) {
        conn_close(c);
        return;
    }
    c->lingering = true;
    buf_reset(&c->in);
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c);
        return;
    }
    if (!c->reading) {
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        c->reading = true;
    }
    conn_set_timer(c, LINGER_MS);
}

/* ---- requests --------------------------------------------------------- */

static void req_free(http_req *r)
{
    buf_free(&r->headers_out);
    pool_free(r->pool);
}

/* The handler is done with r: free it and go on with the connection. */
static void req_finish(http_req *r)
{
    http_conn *c = r->conn;
    r->finished = true;
    log_req(L_DEBUG, r->request_id, "%.*s %.*s -> %d%s in %llu us", SV_FMT(r->method),
            (int)MIN(r->target.len, 200), r->target.p, r->status, r->aborted ? " (client gone)" : "",
            (unsigned long long)((http_now_ns() - r->start_ns) / 1000));
    bool keep = r->keep_alive && !r->aborted && !c->w->stopping && !c->peer_eof;
    c->req = NULL;
    req_free(r);
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    if (c->state == CONN_CLOSED) {
        conn_close(c);
        return;
    }
    if (!keep) {
        c->close_after_write = true;
        c->state = CONN_CLOSED;
        if (!c->writing && c->out_pending.len == 0)
            conn_done_writing(c);
        return;
    }
    c->state = CONN_HEAD;
    if (!c->reading && !c->peer_eof) {
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        c->reading = true;
    }
    conn_set_timer(c, c->in.len ? c->w->srv->cfg.header_timeout_ms : c->w->srv->cfg.idle_timeout_ms);
    if (!c->in_process)
        conn_process(c);
}

static void dispatch(http_conn *c)
{
    http_req *r = c->req;
    c->state = CONN_HANDLING;
    uv_timer_stop(&c->timer);
    if (c->body.len) {
        r->body = c->body.p;
        r->body_len = c->body.len;
        /* the body's bytes move to the request's pool lifetime */
        if (pool_cleanup_add(r->pool, free, c->body.p) == 0)
            buf_steal(&c->body, NULL);
        else
            r->body = pool_strndup(r->pool, c->body.p, c->body.len); /* NULL only on OOM */
        if (!r->body) {
            r->body = "";
            r->body_len = 0;
        }
    } else {
        r->body = "";
        r->body_len = 0;
    }
    r->start_ns = http_now_ns();
    c->w->srv->o.handler(r);
}

/* Makes c->req from a parsed head of head_len bytes at the start of c->in. */
static int begin_request(http_conn *c, http_request_head *h, size_t head_len)
{
    pool *p = pool_new(4096);
    if (!p)
        return -1;
    http_req *r = pool_calloc(p, sizeof *r);
    char *copy = pool_alloc(p, head_len);
    http_header *hs = pool_alloc(p, sizeof *hs * (h->nheaders ? h->nheaders : 1));
    if (!r || !copy || !hs) {
        pool_free(p);
        return -1;
    }
    memcpy(copy, c->in.p, head_len);
    const char *base = c->in.p;
#define REBASE(s) ((sv){ copy + ((s).p - base), (s).len })
    r->pool = p;
    r->conn = c;
    r->worker = c->w;
    r->method = REBASE(h->method);
    r->target = REBASE(h->target);
    for (size_t i = 0; i < h->nheaders; i++) {
        hs[i].name = REBASE(h->headers[i].name);
        hs[i].value = REBASE(h->headers[i].value);
    }
#undef REBASE
    r->headers = hs;
    r->nheaders = h->nheaders;
    r->minor_version = h->minor_version;
    r->keep_alive = h->keep_alive;
    http_split_target(r->target, &r->path, &r->query);
    buf_init(&r->headers_out, 64 * 1024);
    sv rid = http_req_header(r, "x-request-id");
    if (rid_acceptable(rid)) {
        memcpy(r->request_id, rid.p, rid.len);
        r->request_id[rid.len] = '\0';
    } else {
        uint64_t a = xorshift(&c->w->rid_state), b = xorshift(&c->w->rid_state);
        snprintf(r->request_id, sizeof r->request_id, "req_%016llx%08llx", (unsigned long long)a,
                 (unsigned long long)(b >> 32));
    }
    c->req = r;
    c->nrequests++;
    return 0;
}

/* Parses and reads as far as the buffered input allows. */
static void conn_process(http_conn *c)
{
    const cfg_server *cfg = &c->w->srv->cfg;
    c->in_process = true;
    while (!c->closing) {
        if (c->state == CONN_HEAD) {
            if (c->in.len == 0)
                break;
            if (c->out_pending.len + c->out_inflight.len > cfg->max_stream_buffer) {
                /* answers pile up unread: read no more until they drain */
                c->out_paused = true;
                if (c->reading) {
                    uv_read_stop((uv_stream_t *)&c->tcp);
                    c->reading = false;
                }
                break;
            }
            http_header hdrs[256];
            http_request_head h;
            size_t maxh = cfg->max_headers < countof(hdrs) ? cfg->max_headers : countof(hdrs);
            const char *reason = NULL;
            int n = http_parse_request(c->in.p, c->in.len, &h, hdrs, maxh, &reason);
            if (n == HTTP_PARSE_INCOMPLETE) {
                if (c->in.len > cfg->max_header_bytes)
                    conn_reject(c, 431, "request header fields too large");
                break;
            }
            if (n < 0) {
                if (n == HTTP_PARSE_TOO_MANY_HEADERS)
                    conn_reject(c, 431, "too many header fields");
                else if (n == HTTP_PARSE_UNSUPPORTED_TE)
                    conn_reject(c, 501, "unsupported transfer-encoding");
                else if (n == HTTP_PARSE_BAD_VERSION)
                    conn_reject(c, 505, "HTTP version not supported");
                else {
                    char msg[200];
                    snprintf(msg, sizeof msg, "malformed HTTP request: %s", reason ? reason : "parse error");
                    conn_reject(c, 400, msg);
                }
                break;
            }
            if ((size_t)n > cfg->max_header_bytes) {
                conn_reject(c, 431, "request header fields too large");
                break;
            }
            if (h.content_length > 0 && (uint64_t)h.content_length > cfg->max_body_bytes) {
                conn_reject(c, 413, "request body too large");
                break;
            }
            if (begin_request(c, &h, (size_t)n) < 0) {
                conn_reject(c, 503, "out of memory");
                break;
            }
            buf_consume(&c->in, (size_t)n);
            buf_reset(&c->body);
            c->chunked = h.chunked;
            c->body_left = h.chunked ? 0 : (h.content_length > 0 ? h.content_length : 0);
            if (h.chunked)
                http_chunked_init(&c->chunk);
            if ((h.chunked || c->body_left > 0) && h.expect_continue && c->in.len == 0) {
                char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                uv_buf_t b = uv_buf_init(cont, sizeof cont - 1);
                conn_writev(c, &b, 1);
            }
            c->state = CONN_BODY;
            conn_set_timer(c, cfg->body_timeout_ms);
        }
        if (c->state == CONN_BODY) {
            bool complete = false;
            if (c->chunked) {
                if (c->in.len == 0)
                    break;
                size_t out_len = 0, consumed = 0;
                int rc = http_chunked_decode(&c->chunk, c->in.p, c->in.len, &out_len, &consumed);
                if (rc < 0) {
                    conn_reject(c, 400, "malformed chunked request body");
                    break;
                }
                if (buf_append(&c->body, c->in.p, out_len) != ERR_OK || c->body.len > cfg->max_body_bytes) {
                    conn_reject(c, 413, "request body too large");
                    break;
                }
                buf_consume(&c->in, consumed);
                complete = rc == 1;
            } else {
                size_t take = (size_t)MIN((int64_t)c->in.len, c->body_left);
                if (take) {
                    if (c->body.len == 0 && buf_reserve(&c->body, (size_t)c->body_left) != ERR_OK) {
                        conn_reject(c, 413, "request body too large");
                        break;
                    }
                    buf_append(&c->body, c->in.p, take);
                    buf_consume(&c->in, take);
                    c->body_left -= (int64_t)take;
                }
                complete = c->body_left == 0;
            }
            if (!complete)
                break;
            dispatch(c);
            continue; /* a synchronous answer returns the state to HEAD */
        }
        break; /* HANDLING or CLOSED: pipelined bytes wait */
    }
    c->in_process = false;
    if (!c->closing && c->state == CONN_HANDLING && c->in.len > cfg->max_header_bytes + cfg->max_body_bytes) {
        /* a client that pipelines without limit: stop reading until we catch up */
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* ---- connection lifecycle --------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    http_conn *c = h->data;
    c->handles--;
    conn_maybe_free(c);
}

/* Frees c once its handles are closed and the application holds no request
 * of it (an aborted request's handler may finish later). */
static void conn_maybe_free(http_conn *c)
{
    if (c->handles > 0 || c->req)
        return;
    http_worker *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    atomic_fetch_sub(&conns_active, 1);
    buf_free(&c->in);
    buf_free(&c->body);
    buf_free(&c->out_pending);
    buf_free(&c->out_inflight);
    buf_free(&c->scratch);
    free(c);
    worker_maybe_done(w);
}

/* A write failed while the application may be on the stack (it called a
 * response function): mark the request aborted and let the caller see the
 * error; the connection closes when the request is finished. */
static void conn_fail(http_conn *c)
{
    buf_reset(&c->out_pending);
    c->peer_eof = true;
    c->close_after_write = true;
    if (c->state == CONN_HANDLING && c->req && !c->req->finished) {
        c->req->aborted = true;
        return;
    }
    conn_close(c);
}

static void conn_close(http_conn *c)
{
    if (c->closing)
        return;
    bool handling = c->state == CONN_HANDLING;
    c->closing = true;
    c->state = CONN_CLOSED;
    http_req *r = c->req;
    if (r && !handling) {
        /* read but never dispatched: nobody else holds it */
        c->req = NULL;
        req_free(r);
        r = NULL;
    }
    if (r && !r->finished && !r->aborted) {
        r->aborted = true;
        if (r->on_abort)
            r->on_abort(r);
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_timeout(uv_timer_t *t)
{
    http_conn *c = t->data;
    if (c->lingering) {
        conn_close(c);
        return;
    }
    if (c->state == CONN_HEAD && c->in.len == 0) {
        conn_close(c); /* idle keep-alive connection */
        return;
    }
    if (c->state == CONN_HEAD || c->state == CONN_BODY) {
        log_debug("client too slow: closing connection");
        conn_reject(c, 408, "request timeout");
        return;
    }
}

static void conn_set_timer(http_conn *c, long ms)
{
    if (c->closing)
        return;
    if (ms > 0)
        uv_timer_start(&c->timer, on_timeout, (uint64_t)ms, 0);
    else
        uv_timer_stop(&c->timer);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    http_conn *c = h->data;
    size_t room = READ_CHUNK;
    if (buf_reserve(&c->in, room) != ERR_OK) {
        /* at the input limit: hand libuv a tiny slice; conn_process rejects */
        if (c->in.cap > c->in.len + 1) {
            *out = uv_buf_init(c->in.p + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
            return;
        }
        *out = uv_buf_init(NULL, 0);
        return;
    }
    *out = uv_buf_init(c->in.p + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    http_conn *c = s->data;
    if (c->lingering) {
        c->in.len = 0;
        if (n < 0 || (c->linger_bytes += (size_t)(n > 0 ? n : 0)) > LINGER_MAX_BYTES)
            conn_close(c);
        return;
    }
    if (n == UV_ENOBUFS) {
        conn_reject(c, 413, "request too large");
        return;
    }
    if (n < 0) {
        c->peer_eof = true;
        uv_read_stop(s);
        c->reading = false;
        if (c->state == CONN_HANDLING && c->req && !c->req->finished) {
            /* the client went away (or half-closed) while we work: cancel */
            conn_close(c);
            return;
        }
        if (!c->writing && c->out_pending.len == 0)
            conn_close(c);
        else
            c->close_after_write = true;
        return;
    }
    if (n == 0)
        return;
    bool was_empty = c->in.len == 0;
    c->in.len += (size_t)n;
    c->in.p[c->in.len] = '\0';
    if (c->state == CONN_HEAD && was_empty)
        conn_set_timer(c, c->w->srv->cfg.header_timeout_ms);
    else if (c->state == CONN_BODY)
        conn_set_timer(c, c->w->srv->cfg.body_timeout_ms);
    if (!c->in_process)
        conn_process(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    http_worker *w = server->data;
    if (status < 0) {
        log_warn("accept: %s", uv_strerror(status));
        return;
    }
    http_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    const cfg_server *cfg = &w->srv->cfg;
    c->w = w;
    buf_init(&c->in, cfg->max_header_bytes + cfg->max_body_bytes + READ_CHUNK);
    buf_init(&c->body, cfg->max_body_bytes);
    buf_init(&c->out_pending, OUT_HARD_LIMIT + (1u << 20));
    buf_init(&c->out_inflight, OUT_HARD_LIMIT + (1u << 20));
    buf_init(&c->scratch, 128 * 1024);
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    size_t active = atomic_fetch_add(&conns_active, 1) + 1;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (active > cfg->max_connections) {
        log_warn("connection limit (%zu) reached: refusing a connection", cfg->max_connections);
        c->state = CONN_CLOSED;
        conn_reject(c, 503, "too many connections");
        return;
    }
    c->state = CONN_HEAD;
    conn_set_timer(c, cfg->header_timeout_ms);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    c->reading = true;
}

/* ---- workers ---------------------------------------------------------- */

static void worker_close_handles(http_worker *w)
{
    if (!uv_is_closing((uv_handle_t *)&w->wake))
        uv_close((uv_handle_t *)&w->wake, NULL);
    if (!uv_is_closing((uv_handle_t *)&w->deadline))
        uv_close((uv_handle_t *)&w->deadline, NULL);
}

static void worker_maybe_done(http_worker *w)
{
    if (!w->stopping || w->nconns > 0 || w->stopped_app)
        return;
    w->stopped_app = true;
    if (w->srv->o.worker_stop)
        w->srv->o.worker_stop(w);
    worker_close_handles(w);
}

static void on_deadline(uv_timer_t *t)
{
    http_worker *w = t->data;
    if (w->nconns)
        log_warn("worker %d: drain deadline reached, closing %zu connections", w->index, w->nconns);
    for (http_conn *c = w->conns; c; c = c->next)
        conn_close(c);
    worker_maybe_done(w);
}

static void on_wake(uv_async_t *a)
{
    http_worker *w = a->data;
    if (!atomic_load(&w->srv->stop_requested) || w->stopping)
        return;
    w->stopping = true;
    if (w->listener_open) {
        w->listener_open = false;
        uv_close((uv_handle_t *)&w->listener, NULL);
    }
    /* idle connections close now; busy ones close after their response */
    http_conn *c = w->conns;
    while (c) {
        http_conn *next = c->next;
        /* a request still arriving, or being served, gets its answer with
         * connection: close (format_head sees w->stopping) */
        if (c->state == CONN_HEAD && c->in.len == 0 && !c->writing)
            conn_close(c);
        c = next;
    }
    uv_timer_start(&w->deadline, on_deadline, (uint64_t)(w->srv->drain_ms > 0 ? w->srv->drain_ms : 1), 0);
    worker_maybe_done(w);
}

static void worker_main(void *arg)
{
    http_worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (!w->stopped_app && w->srv->o.worker_stop) {
        w->stopped_app = true;
        w->srv->o.worker_stop(w);
        uv_run(&w->loop, UV_RUN_DEFAULT);
    }
}

/* Binds (and, unless probe, listens on) host:port. A probe binds without
 * SO_REUSEPORT and closes at once: it fails while anyone listens on the
 * port, which SO_REUSEPORT alone would let us share silently with another
 * server (the kernel would split the connections between the two). */
static int bind_socket(const char *host, int port, bool probe, int *out_fd, int *bound_port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    const char *h = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    int family;
    socklen_t len;
    if (uv_ip4_addr(*h ? h : "0.0.0.0", port, (struct sockaddr_in *)&ss) == 0) {
        family = AF_INET;
        len = sizeof(struct sockaddr_in);
    } else if (uv_ip6_addr(h, port, (struct sockaddr_in6 *)&ss) == 0) {
        family = AF_INET6;
        len = sizeof(struct sockaddr_in6);
    } else {
        log_error("listen address %s is not a numeric IPv4 or IPv6 address", host);
        return -1;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        log_errno(L_ERROR, errno, "socket");
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (!probe)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        if (errno == EADDRINUSE)
            log_error("cannot listen on %s:%d: the address is in use (another server listens on it)", host, port);
        else
            log_errno(L_ERROR, errno, "cannot listen on %s:%d", host, port);
        close(fd);
        return -1;
    }
    if (probe) {
        close(fd);
        return 0;
    }
    if (listen(fd, 1024) < 0) {
        log_errno(L_ERROR, errno, "listen");
        close(fd);
        return -1;
    }
    if (bound_port) {
        getsockname(fd, (struct sockaddr *)&ss, &len);
        *bound_port = family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                        : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    *out_fd = fd;
    return 0;
}

err_code http_server_start(const http_server_opts *o, http_server **out)
{
    http_server *s = calloc(1, sizeof *s);
    if (!s)
        return ERR_NOMEM;
    s->o = *o;
    s->cfg = *o->cfg;
    s->nworkers = o->workers > 0 ? o->workers : 1;
    s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
    if (!s->workers) {
        free(s);
        return ERR_NOMEM;
    }
    int port = o->port;
    int probe_fd = -1;
    if (port != 0 && bind_socket(o->host, port, true, &probe_fd, NULL) < 0) {
        free(s->workers);
        free(s);
        return ERR_IO;
    }
    for (int i = 0; i < s->nworkers; i++) {
        http_worker *w = &s->workers[i];
        w->srv = s;
        w->index = i;
        w->listen_fd = -1;
        int bound = 0;
        if (bind_socket(o->host, port, false, &w->listen_fd, &bound) < 0) {
            for (int j = 0; j < i; j++)
                close(s->workers[j].listen_fd);
            free(s->workers);
            free(s);
            return ERR_IO;
        }
        if (i == 0) {
            port = bound; /* port 0: every worker joins the port the first one got */
            s->port = bound;
        }
    }
    for (int i = 0; i < s->nworkers; i++) {
        http_worker *w = &s->workers[i];
        uint64_t seed = 0;
        if (getrandom(&seed, sizeof seed, 0) != sizeof seed)
            seed = (uint64_t)http_now_ns();
        w->rid_state = seed | 1;
        uv_loop_init(&w->loop);
        uv_tcp_init(&w->loop, &w->listener);
        w->listener.data = w;
        uv_tcp_open(&w->listener, w->listen_fd);
        w->listener_open = true;
        uv_async_init(&w->loop, &w->wake, on_wake);
        w->wake.data = w;
        uv_timer_init(&w->loop, &w->deadline);
        w->deadline.data = w;
        int rc = uv_listen((uv_stream_t *)&w->listener, 1024, on_connection);
        if (rc < 0) {
            log_error("listen: %s", uv_strerror(rc));
            return ERR_IO;
        }
        if (o->worker_start && o->worker_start(w) != 0) {
            log_error("worker %d failed to start", i);
            return ERR_IO;
        }
    }
    for (int i = 0; i < s->nworkers; i++)
        uv_thread_create(&s->workers[i].thread, worker_main, &s->workers[i]);
    *out = s;
    return ERR_OK;
}

void http_server_stop(http_server *s, long drain_ms)
{
    if (atomic_exchange(&s->stop_requested, 1))
        return;
    s->drain_ms = drain_ms;
    for (int i = 0; i < s->nworkers; i++)
        uv_async_send(&s->workers[i].wake);
}

void http_server_join(http_server *s)
{
    for (int i = 0; i < s->nworkers; i++) {
        uv_thread_join(&s->workers[i].thread);
        uv_loop_close(&s->workers[i].loop);
    }
    free(s->workers);
    free(s);
}
