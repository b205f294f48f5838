/*
 * h1client.c - a lean HTTP/1.1 client on libuv for plain-http upstreams on
 * loopback or a LAN, behind the upstream API (see h1client.h).
 *
 * How it works:
 *  - Routing: h1client_start() parses the URL itself (http://, an IPv4 or
 *    IPv6 literal or localhost, printable ASCII, no userinfo, no dot
 *    segments, a valid port) and checks the proxy environment the way
 *    libcurl does; anything else is handed back (ERR_UNSUPPORTED) so that
 *    libcurl treats it exactly as before.
 *  - Connections: one origin per host:port with a LIFO list of idle
 *    keep-alive connections (at most max_idle, closed after idle_close_ms
 *    by one sweep timer). An idle connection keeps a read running into a
 *    small shared buffer, so the server's close is noticed at once; it is
 *    unref'd so that it does not keep the loop alive. A request that fails
 *    on a reused connection before any response byte (EOF, reset, EPIPE) is
 *    retried once on a fresh connection.
 *  - Requests: the head is built in the call's reusable buffer in one pass
 *    (its size computed first) and written together with the caller's body
 *    by one sendmsg(MSG_NOSIGNAL) - uv_try_write without the SIGPIPE -
 *    with uv_write for whatever the socket did not take.
 *  - Responses: bytes are read into the call's 64 KiB buffer, which holds
 *    [r_lo, r_hi) not yet processed and [d_lo, d_hi) decoded body bytes
 *    not yet delivered. pump() parses the head (1xx heads skipped, 16 KiB
 *    cap over all heads, obs-fold joined in place), then frames the body
 *    (Content-Length, chunked through http_chunked_decode in place, or up
 *    to EOF) and hands pieces of at most 16 KiB to on_data.
 *  - Pause: on_data returning UPSTREAM_PAUSE stops reading (uv_read_stop:
 *    TCP backpressure); undelivered bytes stay in the buffer and are
 *    delivered, in order, when the loop runs the queued resume (uv_idle_t).
 *  - Re-entrancy: the user may cancel, start, resume or close from any
 *    callback. A call is never released while one of its callbacks runs
 *    (in_cb); memory of calls and connections is freed only in libuv close
 *    callbacks, so the frames that called back can still look at the
 *    flags (canceled, h->closed) and unwind.
 *  - Timeouts: one timer per call, armed for the nearest of the connect,
 *    total and idle deadlines; the idle one is checked lazily against
 *    last_rx when the timer fires, so bytes received only store a time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include "http/h1client.h"
#include "http/parser.h"
#include "core/buf.h"
#include "core/log.h"

/* Largest request head we build (a bigger one goes to libcurl). */
#define REQ_MAX (16u << 20)
/* Distinct host:port origins remembered per client. */
#define MAX_ORIGINS 1024

/* ---- intrusive doubly linked lists ---- */

typedef struct hlink {
    struct hlink *prev, *next;
} hlink;

#define HL_ENTRY(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static void hl_init(hlink *h) { h->prev = h->next = h; }
static bool hl_empty(const hlink *h) { return h->next == h; }
static bool hl_linked(const hlink *n) { return n->next != n; }

static void hl_insert(hlink *after, hlink *n)
{
    n->prev = after;
    n->next = after->next;
    after->next->prev = n;
    after->next = n;
}

static void hl_push_back(hlink *h, hlink *n) { hl_insert(h->prev, n); }
static void hl_push_front(hlink *h, hlink *n) { hl_insert(h, n); }

static void hl_del(hlink *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* ---- types ---- */

typedef struct h1origin {
    struct h1origin *next;
    char prefix[96];             /* "http://host[:port]" as first seen in a URL */
    size_t prefix_len;
    bool proxied;                /* a proxy applies: every request goes to libcurl */
    char key[72];                /* "host:port", host as in the URL */
    size_t keylen;
    char hosthdr[72];            /* Host header value: host, ":port" unless 80 */
    size_t hosthdr_len;
    struct sockaddr_storage addr[2]; /* localhost: 127.0.0.1 then ::1 */
    int naddr;
    int prefer;                  /* index that connected last */
    hlink idle;                  /* idle h1conn, most recently used first */
    size_t nidle;
} h1origin;

typedef struct h1call h1call;

typedef struct h1conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    h1client *h;
    h1origin *o;
    h1call *call;                /* the call using it, NULL while pooled */
    hlink all;                   /* in h->conns */
    hlink idle;                  /* in o->idle while pooled */
    uint64_t idle_since;
    int addr_index;
    bool connecting, reading, writing, pooled, eof, closing;
} h1conn;

enum call_state { CALL_FREE = 0, CALL_ACTIVE, CALL_DEAD };
enum body_mode { BODY_NONE = 0, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };

/* Per-call state, zeroed at every start. */
typedef struct h1state {
    upstream_callbacks cb;
    void *ud;
    h1origin *o;
    h1conn *conn;
    const char *body;
    size_t body_len;
    size_t r_lo, r_hi;           /* unprocessed bytes in rbuf */
    size_t d_lo, d_hi;           /* decoded body bytes not yet delivered */
    size_t scan;                 /* head bytes after r_lo already searched */
    size_t head_bytes;           /* earlier (1xx) heads and stray blank lines */
    size_t nh;                   /* headers of the final head */
    uint64_t remaining;          /* BODY_LENGTH: bytes still to come */
    http_chunked chunk;
    uint64_t total_deadline, connect_deadline, last_rx;
    long idle_ms, connect_ms, timeout_ms;
    int status;
    int pending_err;             /* a write error found inside start, reported from the loop */
    int addr_index;
    uint8_t mode;
    bool head_method;            /* HEAD: no response body */
    bool close_after;            /* the caller sent Connection: close */
    bool head_done, body_done, keep_alive;
    bool body_bad;               /* malformed chunked body: fail once the bytes before it are out */
    bool paused, resume_queued, canceled, done, in_cb;
    bool reused;                 /* the connection came from the pool */
    bool retried, alt_tried, got_bytes;
    char why[160];
} h1state;

struct h1call {
    unsigned char impl;          /* UPSTREAM_IMPL_H1; must stay the first member */
    unsigned char state;         /* enum call_state */
    h1client *h;
    hlink node;                  /* in h->active or h->free */
    hlink qnode;                 /* in h->workq */
    uv_timer_t timer;
    char *rbuf;                  /* H1CLIENT_READ_BUF bytes */
    buf req;                     /* the request head */
    h1state s;
};

struct h1client {
    uv_loop_t *loop;
    uv_idle_t work;              /* runs queued resumes and deferred failures */
    uv_timer_t sweep;            /* closes connections idle too long */
    hlink active, free, workq, conns;
    h1origin *origins;
    size_t norigins;
    size_t nactive, nfree, nidle;
    size_t max_idle;
    uint64_t idle_close_ms;
    upstream_header *hv;         /* header views of the head being delivered */
    size_t hv_cap;
    bool proxy_set;              /* the environment names a proxy for http:// */
    char *no_proxy;              /* no_proxy / NO_PROXY as read at creation, or NULL */
    int closing_handles;         /* uv_close callbacks still to come */
    bool closed;
    char scratch[256];           /* read buffer of idle connections */
};

static bool pump(h1call *c);
static void finish(h1call *c, err_code e, const char *msg);
static void io_failed(h1call *c, int err);
static int conn_open(h1call *c);

/* ---- client and handle bookkeeping ---- */

static void maybe_free_client(h1client *h)
{
    if (!h->closed || h->closing_handles > 0)
        return;
    while (h->origins) {
        h1origin *o = h->origins;
        h->origins = o->next;
        free(o);
    }
    free(h->hv);
    free(h->no_proxy);
    free(h);
}

static void on_handle_closed(uv_handle_t *hd)
{
    h1client *h = hd->data;
    h->closing_handles--;
    maybe_free_client(h);
}

static void on_conn_closed(uv_handle_t *hd)
{
    h1conn *k = hd->data;
    h1client *h = k->h;
    free(k);
    h->closing_handles--;
    maybe_free_client(h);
}

/* Closes a connection (the caller has detached its call); freed in the close callback. */
static void conn_close(h1conn *k)
{
    if (k->closing)
        return;
    h1client *h = k->h;
    k->closing = true;
    k->call = NULL;
    hl_del(&k->all);
    if (k->pooled) {
        hl_del(&k->idle);
        k->o->nidle--;
        h->nidle--;
        k->pooled = false;
    }
    h->closing_handles++;
    uv_close((uv_handle_t *)&k->tcp, on_conn_closed);
}

static void on_call_closed(uv_handle_t *hd)
{
    h1call *c = hd->data;
    h1client *h = c->h;
    free(c->rbuf);
    buf_free(&c->req);
    free(c);
    h->closing_handles--;
    maybe_free_client(h);
}

/* Frees a call struct for good (memory goes in the timer's close callback). */
static void call_destroy(h1call *c)
{
    h1client *h = c->h;
    hl_del(&c->node);
    hl_del(&c->qnode);
    c->state = CALL_DEAD;
    c->s.conn = NULL;
    uv_timer_stop(&c->timer);
    h->closing_handles++;
    uv_close((uv_handle_t *)&c->timer, on_call_closed);
}

/* A call struct, reused or new, linked into h->active; NULL on OOM. */
static h1call *call_get(h1client *h)
{
    h1call *c;
    if (!hl_empty(&h->free)) {
        c = HL_ENTRY(h->free.next, h1call, node);
        hl_del(&c->node);
        h->nfree--;
    } else {
        c = calloc(1, sizeof *c);
        if (!c)
            return NULL;
        c->rbuf = malloc(H1CLIENT_READ_BUF);
        if (!c->rbuf) {
            free(c);
            return NULL;
        }
        c->impl = UPSTREAM_IMPL_H1;
        c->h = h;
        hl_init(&c->node);
        hl_init(&c->qnode);
        buf_init(&c->req, REQ_MAX);
        uv_timer_init(h->loop, &c->timer);
        c->timer.data = c;
    }
    memset(&c->s, 0, sizeof c->s);
    c->state = CALL_ACTIVE;
    hl_push_back(&h->active, &c->node);
    return c;
}

/* Puts an ended call back on the free list (or frees it). Its connection
 * must already be detached. */
static void call_release(h1call *c)
{
    h1client *h = c->h;
    hl_del(&c->node);
    hl_del(&c->qnode);
    uv_timer_stop(&c->timer);
    c->s.conn = NULL;
    c->s.cb = (upstream_callbacks){ 0 };
    c->s.ud = NULL;
    c->s.body = NULL;
    if (h->closed || h->nfree >= H1CLIENT_FREE_CALLS) {
        hl_push_back(&h->free, &c->node); /* call_destroy unlinks it again */
        call_destroy(c);
        return;
    }
    c->state = CALL_FREE;
    buf_reset(&c->req);
    hl_push_back(&h->free, &c->node);
    h->nfree++;
}

/* ---- reading on/off ---- */

static void on_alloc(uv_handle_t *hd, size_t hint, uv_buf_t *b);
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b);

static void conn_read_stop(h1conn *k)
{
    if (k->reading) {
        uv_read_stop((uv_stream_t *)&k->tcp);
        k->reading = false;
    }
}

static int conn_read_start(h1conn *k)
{
    if (k->reading)
        return 0;
    int rc = uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
    if (rc == 0)
        k->reading = true;
    return rc;
}

/* ---- pool ---- */

static void on_sweep(uv_timer_t *t)
{
    h1client *h = t->data;
    uint64_t now = uv_now(h->loop), next = UINT64_MAX;
    for (h1origin *o = h->origins; o; o = o->next) {
        while (!hl_empty(&o->idle)) {
            h1conn *k = HL_ENTRY(o->idle.prev, h1conn, idle); /* the oldest */
            if (now - k->idle_since >= h->idle_close_ms) {
                conn_close(k);
                continue;
            }
            next = MIN(next, k->idle_since + h->idle_close_ms);
            break;
        }
    }
    if (next != UINT64_MAX)
        uv_timer_start(&h->sweep, on_sweep, next - now, 0);
}

/* Keeps a connection whose call ended cleanly, or closes it when the
 * origin has enough idle ones. */
static void pool_put(h1conn *k)
{
    h1client *h = k->h;
    h1origin *o = k->o;
    k->call = NULL;
    /* An idle connection keeps a read running, to see the server's close
     * (a call that paused stopped it). */
    if (h->closed || k->eof || o->nidle >= h->max_idle || conn_read_start(k) < 0) {
        conn_close(k);
        return;
    }
    k->pooled = true;
    k->idle_since = uv_now(h->loop);
    hl_push_front(&o->idle, &k->idle);
    o->nidle++;
    h->nidle++;
    uv_unref((uv_handle_t *)&k->tcp);
    if (!uv_is_active((uv_handle_t *)&h->sweep))
        uv_timer_start(&h->sweep, on_sweep, h->idle_close_ms, 0);
}

/* The most recently used idle connection of o, or NULL. */
static h1conn *pool_take(h1origin *o)
{
    if (hl_empty(&o->idle))
        return NULL;
    h1conn *k = HL_ENTRY(o->idle.next, h1conn, idle);
    hl_del(&k->idle);
    k->pooled = false;
    o->nidle--;
    k->h->nidle--;
    uv_ref((uv_handle_t *)&k->tcp);
    return k;
}

/* ---- timers ---- */

static void on_timer(uv_timer_t *t);

/* Arms the call's timer for the nearest deadline (or stops it). */
static void arm(h1call *c)
{
    uint64_t next = UINT64_MAX;
    if (c->s.total_deadline)
        next = c->s.total_deadline;
    if (c->s.connect_deadline && c->s.connect_deadline < next)
        next = c->s.connect_deadline;
    if (c->s.idle_ms > 0 && !c->s.paused && c->s.last_rx + (uint64_t)c->s.idle_ms < next)
        next = c->s.last_rx + (uint64_t)c->s.idle_ms;
    if (next == UINT64_MAX) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t now = uv_now(c->h->loop);
    uv_timer_start(&c->timer, on_timer, next > now ? next - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    h1call *c = t->data;
    if (c->state != CALL_ACTIVE || c->s.done || c->s.canceled)
        return;
    uint64_t now = uv_now(c->h->loop);
    h1state *s = &c->s;
    if (s->total_deadline && now >= s->total_deadline) {
        snprintf(s->why, sizeof s->why, "operation timed out after %ld ms", s->timeout_ms);
    } else if (s->connect_deadline && now >= s->connect_deadline) {
        snprintf(s->why, sizeof s->why, "connect timeout after %ld ms", s->connect_ms);
    } else if (s->idle_ms > 0 && !s->paused && now - s->last_rx >= (uint64_t)s->idle_ms) {
        snprintf(s->why, sizeof s->why, "idle timeout: no data received for %ld ms", s->idle_ms);
    } else {
        arm(c);
        return;
    }
    finish(c, ERR_TIMEOUT, s->why);
}

/* ---- ending a call ---- */

/* True when the connection can serve another request after this call. */
static bool reusable(const h1call *c, const h1conn *k)
{
    return c->s.keep_alive && c->s.body_done && c->s.r_lo == c->s.r_hi && !k->writing &&
           !k->eof && !k->closing;
}

/* Reports the end of a call (exactly once) and releases it. The connection
 * goes back to the pool before on_done, so that a call started from
 * on_done can reuse it. */
static void finish(h1call *c, err_code e, const char *msg)
{
    h1client *h = c->h;
    c->s.done = true;
    h->nactive--;
    uv_timer_stop(&c->timer);
    hl_del(&c->qnode);
    h1conn *k = c->s.conn;
    c->s.conn = NULL;
    if (k) {
        k->call = NULL;
        if (e == ERR_OK && reusable(c, k))
            pool_put(k);
        else
            conn_close(k);
    }
    c->s.in_cb = true;
    c->s.cb.on_done(c->s.ud, e, msg);
    c->s.in_cb = false;
    if (h->closed)
        return; /* h1client_close inside on_done destroyed every call */
    call_release(c);
}

/* ---- writing the request ---- */

static void on_write(uv_write_t *req, int status)
{
    h1conn *k = req->data;
    k->writing = false;
    if (k->closing || !k->call)
        return;
    h1call *c = k->call;
    if (status < 0) {
        /* Once the response has started, let the read side conclude. */
        if (!c->s.got_bytes)
            io_failed(c, status);
        return;
    }
    c->s.last_rx = uv_now(k->h->loop); /* sending counts as activity */
}

/* Sends head and body: one sendmsg, uv_write for the rest. Returns 0 or a
 * libuv error (nothing is called back in either case). */
static int send_request(h1call *c)
{
    h1conn *k = c->s.conn;
    struct iovec iov[2] = { { c->req.p, c->req.len }, { (void *)c->s.body, c->s.body_len } };
    int niov = c->s.body_len ? 2 : 1;
    uv_os_fd_t fd;
    int rc = uv_fileno((const uv_handle_t *)&k->tcp, &fd);
    if (rc < 0)
        return rc;
    struct msghdr m = { 0 };
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)niov;
    ssize_t n;
    do
        n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return uv_translate_sys_error(errno);
        n = 0;
    }
    size_t sent = (size_t)n;
    uv_buf_t rest[2];
    unsigned nrest = 0;
    for (int i = 0; i < niov; i++) {
        if (sent >= iov[i].iov_len) {
            sent -= iov[i].iov_len;
            continue;
        }
        rest[nrest++] = uv_buf_init((char *)iov[i].iov_base + sent, (unsigned)(iov[i].iov_len - sent));
        sent = 0;
    }
    if (nrest == 0)
        return 0;
    k->wreq.data = k;
    rc = uv_write(&k->wreq, (uv_stream_t *)&k->tcp, rest, nrest, on_write);
    if (rc < 0)
        return rc;
    k->writing = true;
    return 0;
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *hd, size_t hint, uv_buf_t *b)
{
    h1conn *k = hd->data;
    h1call *c = k->call;
    if (!c) { /* pooled: anything that arrives ends the connection */
        *b = uv_buf_init(k->h->scratch, sizeof k->h->scratch);
        return;
    }
    h1state *s = &c->s;
    /* Reading only happens with no decoded bytes pending (pump drains them
     * before asking for more, and a paused call does not read). */
    if (s->r_lo == s->r_hi) {
        s->r_lo = s->r_hi = s->d_lo = s->d_hi = 0;
    } else if (H1CLIENT_READ_BUF - s->r_hi < 4096 && s->r_lo > 0) {
        memmove(c->rbuf, c->rbuf + s->r_lo, s->r_hi - s->r_lo);
        s->r_hi -= s->r_lo;
        s->r_lo = s->d_lo = s->d_hi = 0;
    }
    *b = uv_buf_init(c->rbuf + s->r_hi, (unsigned)(H1CLIENT_READ_BUF - s->r_hi));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    h1conn *k = st->data;
    h1call *c = k->call;
    if (n == 0)
        return; /* EAGAIN */
    if (n < 0) {
        k->reading = false; /* libuv stopped on EOF; on errors we close */
        if (n == UV_EOF)
            k->eof = true;
    }
    if (!c) { /* idle: the server closed it, or sent bytes nobody asked for */
        conn_close(k);
        return;
    }
    if (n > 0) {
        c->s.r_hi += (size_t)n;
        c->s.got_bytes = true;
        c->s.last_rx = uv_now(k->h->loop);
        pump(c);
        return;
    }
    if (n == UV_EOF && c->s.head_done && c->s.mode == BODY_CLOSE) {
        c->s.body_done = true; /* a close-delimited body is complete */
        pump(c);
        return;
    }
    io_failed(c, (int)n);
}

/* ---- connection failures ---- */

/* Detaches and closes the call's connection, if any. */
static void drop_conn(h1call *c)
{
    h1conn *k = c->s.conn;
    if (!k)
        return;
    c->s.conn = NULL;
    k->call = NULL;
    conn_close(k);
}

/* Forgets everything received, for a new attempt on a new connection. */
static void reset_response(h1call *c)
{
    h1state *s = &c->s;
    s->r_lo = s->r_hi = s->d_lo = s->d_hi = s->scan = 0;
    s->head_bytes = s->nh = 0;
    s->remaining = 0;
    http_chunked_init(&s->chunk);
    s->status = 0;
    s->mode = BODY_NONE;
    s->head_done = s->body_done = s->keep_alive = s->got_bytes = false;
}

static const char *conn_error_text(int err, bool got_bytes)
{
    if (err == UV_EOF)
        return got_bytes ? "connection closed before the response was complete"
                         : "connection closed before the response was complete (no response)";
    if (err == UV_ECONNRESET)
        return "connection reset before the response was complete";
    if (err == UV_EPIPE)
        return "connection closed while sending the request";
    return NULL;
}

/* The connection broke (read or write error, EOF) before the response was
 * complete. A reused connection that broke before any response byte gets
 * one fresh attempt (the server may have closed it as we reused it). */
static void io_failed(h1call *c, int err)
{
    h1state *s = &c->s;
    s->pending_err = 0; /* whichever side noticed first decides */
    if (s->reused && !s->retried && !s->got_bytes &&
        (err == UV_EOF || err == UV_ECONNRESET || err == UV_EPIPE)) {
        drop_conn(c);
        s->retried = true;
        s->reused = false;
        reset_response(c);
        int rc = conn_open(c);
        if (rc == 0) {
            arm(c);
            return;
        }
        err = rc;
    }
    drop_conn(c);
    const char *text = conn_error_text(err, s->got_bytes);
    if (text)
        snprintf(s->why, sizeof s->why, "%s", text);
    else
        snprintf(s->why, sizeof s->why, "connection error: %s", uv_strerror(err));
    finish(c, ERR_UPSTREAM, s->why);
}

static void connect_failed(h1call *c, int status)
{
    h1state *s = &c->s;
    drop_conn(c);
    if (s->o->naddr > 1 && !s->alt_tried && status != UV_ETIMEDOUT) {
        s->alt_tried = true; /* localhost: the other address family */
        s->addr_index ^= 1;
        int rc = conn_open(c);
        if (rc == 0) {
            arm(c);
            return;
        }
        status = rc;
    }
    if (status == UV_ETIMEDOUT) {
        snprintf(s->why, sizeof s->why, "connect timeout: %s", uv_strerror(status));
        finish(c, ERR_TIMEOUT, s->why);
        return;
    }
    if (status == UV_ECONNREFUSED)
        snprintf(s->why, sizeof s->why, "connection refused");
    else
        snprintf(s->why, sizeof s->why, "cannot connect: %s", uv_strerror(status));
    finish(c, ERR_UPSTREAM, s->why);
}

static void on_connect(uv_connect_t *req, int status)
{
    h1conn *k = req->data;
    k->connecting = false;
    if (k->closing)
        return; /* canceled or closed meanwhile */
    h1call *c = k->call;
    if (status < 0) {
        connect_failed(c, status);
        return;
    }
    c->s.connect_deadline = 0; /* the timer notices when it fires */
    k->o->prefer = k->addr_index;
    int rc = conn_read_start(k);
    if (rc == 0)
        rc = send_request(c);
    if (rc < 0)
        io_failed(c, rc);
}

/* Opens a new connection for the call (to its current address). Returns 0
 * or a libuv error, with nothing called back. */
static int conn_open(h1call *c)
{
    h1client *h = c->h;
    h1origin *o = c->s.o;
    h1conn *k = calloc(1, sizeof *k);
    if (!k)
        return UV_ENOMEM;
    int rc = uv_tcp_init(h->loop, &k->tcp);
    if (rc < 0) {
        free(k);
        return rc;
    }
    k->tcp.data = k;
    k->h = h;
    k->o = o;
    hl_init(&k->idle);
    hl_push_back(&h->conns, &k->all);
    uv_tcp_nodelay(&k->tcp, 1);
    uv_tcp_keepalive(&k->tcp, 1, 60);
    k->addr_index = c->s.addr_index;
    k->creq.data = k;
    rc = uv_tcp_connect(&k->creq, &k->tcp, (const struct sockaddr *)&o->addr[k->addr_index], on_connect);
    if (rc < 0) {
        conn_close(k);
        return rc;
    }
    k->connecting = true;
    k->call = c;
    c->s.conn = k;
    c->s.connect_deadline = uv_now(h->loop) + (uint64_t)c->s.connect_ms;
    return 0;
}

/* ---- the response head ---- */

static bool is_ows(char ch) { return ch == ' ' || ch == '\t'; }

static sv trim(sv s)
{
    while (s.len && is_ows(s.p[0]))
        s.p++, s.len--;
    while (s.len && is_ows(s.p[s.len - 1]))
        s.len--;
    return s;
}

/* "HTTP/1.<d> <3 digits>[ reason]": sets *minor and *status. */
static bool parse_status_line(sv l, int *minor, int *status)
{
    if (l.len < 12 || memcmp(l.p, "HTTP/1.", 7) != 0 || l.p[7] < '0' || l.p[7] > '9' || l.p[8] != ' ')
        return false;
    const char *d = l.p + 9;
    for (int i = 0; i < 3; i++)
        if (d[i] < '0' || d[i] > '9')
            return false;
    if (l.len > 12 && l.p[12] != ' ')
        return false;
    *minor = l.p[7] - '0';
    *status = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
    return *status >= 100;
}

/* True when the comma-separated list v holds token t (case-insensitive). */
static bool has_token(sv v, const char *t)
{
    size_t tl = strlen(t);
    size_t i = 0;
    while (i < v.len) {
        size_t j = i;
        while (j < v.len && v.p[j] != ',')
            j++;
        sv tok = trim((sv){ v.p + i, j - i });
        if (tok.len == tl && strncasecmp(tok.p, t, tl) == 0)
            return true;
        i = j + 1;
    }
    return false;
}

/* True when the last transfer coding of v is "chunked". */
static bool last_is_chunked(sv v)
{
    v = trim(v);
    while (v.len && v.p[v.len - 1] == ',')
        v = trim((sv){ v.p, v.len - 1 });
    if (v.len < 7 || strncasecmp(v.p + v.len - 7, "chunked", 7) != 0)
        return false;
    return v.len == 7 || v.p[v.len - 8] == ',' || is_ows(v.p[v.len - 8]);
}

/* Content-Length: digits only, below 2^62. */
static bool parse_length(sv v, uint64_t *out)
{
    if (v.len == 0 || v.len > 18)
        return false;
    uint64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
        n = n * 10 + (uint64_t)(v.p[i] - '0');
    }
    *out = n;
    return true;
}

static bool hv_push(h1client *h, size_t n, sv name, sv value)
{
    if (n == h->hv_cap) {
        size_t cap = h->hv_cap ? h->hv_cap * 2 : 32;
        upstream_header *nv = realloc(h->hv, cap * sizeof *nv);
        if (!nv)
            return false;
        h->hv = nv;
        h->hv_cap = cap;
    }
    h->hv[n] = (upstream_header){ name, value };
    return true;
}

/* Offset just past the blank line ending the head in p[0..n), or 0 when
 * it is not there yet (*scan remembers how far we looked). */
static size_t find_head_end(const char *p, size_t n, size_t *scan)
{
    size_t i = *scan;
    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        if (!nl)
            break;
        size_t k = (size_t)(nl - p);
        if (k >= 1 && (p[k - 1] == '\n' || (p[k - 1] == '\r' && k >= 2 && p[k - 2] == '\n')))
            return k + 1;
        i = k + 1;
    }
    *scan = n;
    return 0;
}

/* Splits the head p[0..len) into status and header views (in h->hv, into
 * the buffer: obs-fold lines are joined to the previous value in place)
 * and works out the body framing. Returns false with s->why set on a
 * malformed head. */
static bool parse_head(h1call *c, char *p, size_t len)
{
    h1state *s = &c->s;
    h1client *h = c->h;
    size_t pos = 0, nh = 0;
    int minor = 1;
    bool first = true;
    while (pos < len) {
        char *nl = memchr(p + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - p) : len;
        sv line = { p + pos, end - pos };
        pos = end + 1;
        if (line.len && line.p[line.len - 1] == '\r')
            line.len--;
        if (first) {
            first = false;
            if (!parse_status_line(line, &minor, &s->status)) {
                snprintf(s->why, sizeof s->why, "malformed status line from upstream: \"%.*s\"",
                         (int)MIN(line.len, 60), line.p);
                return false;
            }
            continue;
        }
        if (line.len == 0)
            break;
        if (is_ows(line.p[0])) { /* obs-fold: continues the previous value */
            if (nh == 0)
                continue;
            sv more = trim(line);
            if (more.len == 0)
                continue;
            upstream_header *last = &h->hv[nh - 1];
            if (last->value.len == 0) { /* nothing to join to */
                last->value = more;
                continue;
            }
            /* The value ends before this line starts, so the joined bytes
             * only move left, over the line break and the fold's blanks. */
            char *dst = (char *)last->value.p + last->value.len;
            *dst++ = ' ';
            memmove(dst, more.p, more.len);
            last->value.len += 1 + more.len;
            continue;
        }
        const char *colon = memchr(line.p, ':', line.len);
        if (!colon)
            continue;
        sv name = trim((sv){ line.p, (size_t)(colon - line.p) });
        if (name.len == 0)
            continue;
        sv value = trim((sv){ colon + 1, line.len - (size_t)(colon - line.p) - 1 });
        if (!hv_push(h, nh, name, value)) {
            snprintf(s->why, sizeof s->why, "out of memory for the response head");
            return false;
        }
        nh++;
    }
    s->nh = nh;
    if (s->status < 200)
        return true; /* interim: the caller skips it */

    bool have_len = false, te = false, chunked = false, conn_close_hdr = false, conn_ka = false;
    uint64_t clen = 0;
    for (size_t i = 0; i < nh; i++) {
        sv n = h->hv[i].name, v = h->hv[i].value;
        if (n.len == 14 && strncasecmp(n.p, "Content-Length", 14) == 0) {
            uint64_t x;
            if (!parse_length(v, &x) || (have_len && x != clen)) {
                snprintf(s->why, sizeof s->why, "invalid Content-Length in the response");
                return false;
            }
            have_len = true;
            clen = x;
        } else if (n.len == 17 && strncasecmp(n.p, "Transfer-Encoding", 17) == 0) {
            te = true;
            chunked = last_is_chunked(v);
        } else if (n.len == 10 && strncasecmp(n.p, "Connection", 10) == 0) {
            conn_close_hdr |= has_token(v, "close");
            conn_ka |= has_token(v, "keep-alive");
        }
    }
    if (s->head_method || s->status == 204 || s->status == 304) {
        s->mode = BODY_NONE;
    } else if (te) {
        s->mode = chunked ? BODY_CHUNKED : BODY_CLOSE;
        http_chunked_init(&s->chunk);
    } else if (have_len) {
        s->mode = clen ? BODY_LENGTH : BODY_NONE;
        s->remaining = clen;
    } else {
        s->mode = BODY_CLOSE;
    }
    s->keep_alive = (minor >= 1 ? !conn_close_hdr : conn_ka) && s->mode != BODY_CLOSE &&
                    !s->close_after && !(te && have_len);
    s->body_done = s->mode == BODY_NONE;
    return true;
}

/* One step on the head: 1 = the final head is parsed, 0 = an interim head
 * was skipped, -2 = more bytes needed, -1 = error (s->why set). */
static int head_step(h1call *c)
{
    h1state *s = &c->s;
    if (s->scan == 0) /* stray blank lines before a status line */
        while (s->r_lo < s->r_hi && (c->rbuf[s->r_lo] == '\r' || c->rbuf[s->r_lo] == '\n'))
            s->r_lo++, s->head_bytes++;
    char *p = c->rbuf + s->r_lo;
    size_t n = s->r_hi - s->r_lo;
    size_t end = n ? find_head_end(p, n, &s->scan) : 0;
    if (s->head_bytes + (end ? end : n) > UPSTREAM_MAX_HEAD_BYTES) {
        snprintf(s->why, sizeof s->why, "response head larger than %u bytes", UPSTREAM_MAX_HEAD_BYTES);
        return -1;
    }
    if (end == 0)
        return -2;
    if (!parse_head(c, p, end))
        return -1;
    s->r_lo += end;
    s->scan = 0;
    if (s->status < 200) {
        s->head_bytes += end;
        return 0;
    }
    s->head_done = true;
    return 1;
}

/* Frames the next raw bytes as body: decoded bytes land in [d_lo, d_hi).
 * On a malformed chunked body the bytes decoded before the fault are still
 * delivered, then the call fails (s->body_bad, s->why), so that the result
 * does not depend on how the bytes were cut into reads. */
static void body_step(h1call *c)
{
    h1state *s = &c->s;
    char *p = c->rbuf + s->r_lo;
    size_t n = s->r_hi - s->r_lo;
    s->d_lo = s->r_lo;
    switch (s->mode) {
    case BODY_LENGTH: {
        size_t take = n < s->remaining ? n : (size_t)s->remaining;
        s->d_hi = s->r_lo + take;
        s->r_lo += take;
        s->remaining -= take;
        s->body_done = s->remaining == 0;
        return;
    }
    case BODY_CHUNKED: {
        size_t out = 0, used = 0;
        int rc = http_chunked_decode(&s->chunk, p, n, &out, &used);
        s->d_hi = s->r_lo + MIN(out, n);
        if (rc < 0) {
            snprintf(s->why, sizeof s->why, "malformed chunked body from upstream: %s",
                     s->chunk.error ? s->chunk.error : "?");
            s->body_bad = true;
            s->r_lo = s->r_hi;
            return;
        }
        s->r_lo += used;
        s->body_done = rc == 1;
        return;
    }
    case BODY_CLOSE:
        s->d_hi = s->r_hi;
        s->r_lo = s->r_hi;
        return;
    default: /* BODY_NONE: whatever follows is excess; the connection is not reused */
        s->d_hi = s->d_lo;
        s->r_lo = s->r_hi;
        s->keep_alive = false;
        return;
    }
}

/* ---- pump: head, body, end ---- */

/* Processes the buffered bytes as far as possible: head(s), body pieces,
 * the end of the call. Returns false when the call ended (or was canceled,
 * or the client closed) and must not be touched; true when it waits for
 * more bytes or for a resume. */
static bool pump(h1call *c)
{
    h1client *h = c->h;
    h1state *s = &c->s;
    for (;;) {
        if (s->paused)
            return true;
        if (!s->head_done) {
            int r = head_step(c);
            if (r == -2)
                return true;
            if (r == -1) {
                drop_conn(c);
                finish(c, ERR_UPSTREAM, s->why);
                return false;
            }
            if (r == 0 || !s->cb.on_head)
                continue;
            s->in_cb = true;
            int a = s->cb.on_head(s->ud, s->status, h->hv, s->nh);
            s->in_cb = false;
            if (h->closed)
                return false;
            if (s->canceled) {
                call_release(c);
                return false;
            }
            if (a != 0) {
                snprintf(s->why, sizeof s->why, "aborted by on_head");
                drop_conn(c);
                finish(c, ERR_CANCELED, s->why);
                return false;
            }
            continue;
        }
        if (s->d_lo < s->d_hi) {
            size_t n = MIN(s->d_hi - s->d_lo, (size_t)H1CLIENT_MAX_PIECE);
            const char *p = c->rbuf + s->d_lo;
            s->d_lo += n;
            if (!s->cb.on_data)
                continue;
            s->in_cb = true;
            int r = s->cb.on_data(s->ud, p, n);
            s->in_cb = false;
            if (h->closed)
                return false;
            if (s->canceled) {
                call_release(c);
                return false;
            }
            if (r == UPSTREAM_CONTINUE)
                continue;
            if (r == UPSTREAM_PAUSE) {
                s->paused = true;
                if (s->conn)
                    conn_read_stop(s->conn);
                return true;
            }
            snprintf(s->why, sizeof s->why, "aborted by on_data");
            drop_conn(c);
            finish(c, ERR_CANCELED, s->why);
            return false;
        }
        if (s->body_bad) {
            drop_conn(c);
            finish(c, ERR_UPSTREAM, s->why);
            return false;
        }
        if (s->body_done) {
            finish(c, ERR_OK, NULL);
            return false;
        }
        if (s->r_lo == s->r_hi)
            return true;
        body_step(c);
    }
}

/* ---- deferred work: resumes and failures found inside start ---- */

static void on_work(uv_idle_t *w)
{
    h1client *h = w->data;
    while (!h->closed && !hl_empty(&h->workq)) {
        h1call *c = HL_ENTRY(h->workq.next, h1call, qnode);
        hl_del(&c->qnode);
        h1state *s = &c->s;
        if (c->state != CALL_ACTIVE || s->done || s->canceled)
            continue;
        if (s->pending_err) {
            int err = s->pending_err;
            s->pending_err = 0;
            io_failed(c, err);
            continue;
        }
        if (!s->resume_queued)
            continue;
        s->resume_queued = false;
        if (!s->paused)
            continue;
        s->paused = false;
        s->last_rx = uv_now(h->loop);
        arm(c);
        if (!pump(c))
            continue;
        if (!s->paused && s->conn && !s->conn->eof) {
            int rc = conn_read_start(s->conn);
            if (rc < 0)
                io_failed(c, rc);
        }
    }
    if (!h->closed)
        uv_idle_stop(&h->work);
}

static void queue_work(h1call *c)
{
    h1client *h = c->h;
    if (!hl_linked(&c->qnode))
        hl_push_back(&h->workq, &c->qnode);
    uv_idle_start(&h->work, on_work);
}

/* ---- routing: URL, proxy environment, request headers ---- */

typedef struct target {
    sv prefix;                   /* "http://" and the authority, as written */
    sv host;                     /* as written, IPv6 with its brackets */
    sv path;                     /* from '/' or '?' up to '#' or the end; may be empty */
    unsigned port;
    int family;                  /* AF_INET, AF_INET6, or AF_UNSPEC for localhost */
    struct in_addr v4;
    struct in6_addr v6;
} target;

/* True when a path holds a "." or ".." segment (libcurl would remove it). */
static bool has_dot_segment(sv path)
{
    size_t i = 0;
    while (i < path.len && path.p[i] != '?') {
        size_t j = i;
        while (j < path.len && path.p[j] != '/' && path.p[j] != '?')
            j++;
        size_t n = j - i;
        if ((n == 1 && path.p[i] == '.') || (n == 2 && path.p[i] == '.' && path.p[i + 1] == '.'))
            return true;
        i = j < path.len && path.p[j] == '/' ? j + 1 : j;
    }
    return false;
}

/* Parses what follows the authority (p: '/', '?', '#' or the end) into
 * t->path. Refuses what libcurl would rewrite: bytes outside printable
 * ASCII (percent-encoded by libcurl) and dot segments (removed). */
static bool parse_path(const char *p, target *t)
{
    const char *e = p;
    for (; *e; e++) {
        unsigned char ch = (unsigned char)*e;
        if (ch <= 0x20 || ch >= 0x7f)
            return false;
    }
    const char *hash = memchr(p, '#', (size_t)(e - p));
    t->path = (sv){ p, (size_t)((hash ? hash : e) - p) };
    return !has_dot_segment(t->path);
}

/* Parses the URL if it is one for this client (see the file comment):
 * t gets host, port, address and path. */
static bool parse_target(const char *url, target *t)
{
    if (strncasecmp(url, "http://", 7) != 0)
        return false;
    const char *a = url + 7, *p = a;
    while (*p && *p != '/' && *p != '?' && *p != '#') {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 0x20 || ch >= 0x7f || ch == '@')
            return false;
        p++;
    }
    const char *aend = p;
    if (!parse_path(p, t))
        return false;

    char tmp[64];
    const char *after;
    if (*a == '[') {
        const char *close = memchr(a, ']', (size_t)(aend - a));
        size_t n = close ? (size_t)(close - a - 1) : 0;
        if (!close || n == 0 || n >= sizeof tmp)
            return false;
        memcpy(tmp, a + 1, n);
        tmp[n] = '\0';
        if (inet_pton(AF_INET6, tmp, &t->v6) != 1)
            return false; /* also refuses a zone id */
        t->family = AF_INET6;
        t->host = (sv){ a, n + 2 };
        after = close + 1;
    } else {
        const char *colon = memchr(a, ':', (size_t)(aend - a));
        const char *hend = colon ? colon : aend;
        size_t n = (size_t)(hend - a);
        if (n == 9 && strncasecmp(a, "localhost", 9) == 0) {
            t->family = AF_UNSPEC;
        } else {
            if (n == 0 || n >= 16)
                return false;
            memcpy(tmp, a, n);
            tmp[n] = '\0';
            if (inet_pton(AF_INET, tmp, &t->v4) != 1)
                return false;
            t->family = AF_INET;
        }
        t->host = (sv){ a, n };
        after = hend;
    }
    t->prefix = (sv){ url, (size_t)(aend - url) };
    if (after == aend) {
        t->port = 80;
        return true;
    }
    if (*after != ':' || aend - after < 2 || aend - after > 6)
        return false;
    unsigned port = 0;
    for (const char *d = after + 1; d < aend; d++) {
        if (*d < '0' || *d > '9')
            return false;
        port = port * 10 + (unsigned)(*d - '0');
    }
    if (port == 0 || port > 65535)
        return false;
    t->port = port;
    return true;
}

/* libcurl's no_proxy matching (Curl_check_noproxy) for our hosts: "*"
 * alone matches all; tokens are separated by commas and blanks; an IPv4
 * host matches an address token or a CIDR (a.b.c.d/bits); localhost
 * matches a host token ignoring one leading and one trailing dot. IPv6
 * hosts are never matched here (they go to libcurl whenever a proxy is
 * set). */
static bool noproxy_match(const target *t, const char *list)
{
    if (!list || !*list)
        return false;
    if (strcmp(list, "*") == 0)
        return true;
    if (t->family == AF_INET6)
        return false;
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *tok = p;
        while (*p && *p != ' ' && *p != '\t' && *p != ',')
            p++;
        size_t n = (size_t)(p - tok);
        if (n && t->family == AF_UNSPEC) {
            if (tok[n - 1] == '.')
                n--;
            if (n && tok[0] == '.')
                tok++, n--;
            if (n == 9 && strncasecmp(tok, "localhost", 9) == 0)
                return true;
        } else if (n && n < 64) {
            char ip[64];
            memcpy(ip, tok, n);
            ip[n] = '\0';
            long bits = 0;
            char *slash = strchr(ip, '/');
            if (slash) {
                *slash = '\0';
                bits = strtol(slash + 1, NULL, 10);
            }
            struct in_addr net;
            if (bits >= 0 && bits <= 32 && inet_pton(AF_INET, ip, &net) == 1) {
                uint32_t mask = bits == 0 || bits == 32 ? 0xffffffffu : 0xffffffffu << (32 - bits);
                if (((ntohl(net.s_addr) ^ ntohl(t->v4.s_addr)) & mask) == 0)
                    return true;
            }
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != ',')
            break;
        while (*p == ',')
            p++;
    }
    return false;
}

/* Reads the proxy environment the way libcurl does for an http:// URL:
 * http_proxy (lower case only: libcurl ignores HTTP_PROXY, the "httpoxy"
 * problem), else all_proxy, else ALL_PROXY; one that is set but empty
 * means no proxy; no_proxy (else NO_PROXY) exempts hosts. Read once, when
 * the client is created (libcurl reads it per transfer; a server's
 * environment does not change while it runs). Returns false on OOM. */
static bool read_proxy_env(h1client *h)
{
    const char *px = getenv("http_proxy");
    if (!px) {
        px = getenv("all_proxy");
        if (!px)
            px = getenv("ALL_PROXY");
    }
    h->proxy_set = px && *px;
    const char *np = getenv("no_proxy");
    if (!np)
        np = getenv("NO_PROXY");
    if (h->proxy_set && np) {
        h->no_proxy = strdup(np);
        if (!h->no_proxy)
            return false;
    }
    return true;
}

enum {
    HF_HOST = 1, HF_ACCEPT = 2, HF_CTYPE = 4, HF_CONN = 8, HF_CLOSE = 16,
};

/* What the caller's headers mean for the request head (libcurl's rules:
 * a caller's Host/Accept/Content-Type/Connection replaces ours, one whose
 * value is empty is not sent and suppresses ours, Expect is dropped).
 * Returns false when the request should go to libcurl (Accept-Encoding,
 * which libcurl decodes, or a caller's own Content-Length or
 * Transfer-Encoding). *bytes gets the bytes the sent headers take. */
static bool scan_headers(const char *const *hs, unsigned *flags, size_t *bytes)
{
    *flags = 0;
    *bytes = 0;
    for (size_t i = 0; hs && hs[i]; i++) {
        const char *hd = hs[i];
        const char *colon = strchr(hd, ':');
        if (!colon || strpbrk(hd, "\r\n"))
            return false; /* upstream_start refuses these; libcurl's path says so */
        size_t n = (size_t)(colon - hd);
        const char *v = colon + 1;
        while (is_ows(*v))
            v++;
        bool empty = *v == '\0';
        switch (n) {
        case 4:
            if (strncasecmp(hd, "Host", 4) == 0)
                *flags |= HF_HOST;
            break;
        case 6:
            if (strncasecmp(hd, "Accept", 6) == 0)
                *flags |= HF_ACCEPT;
            else if (strncasecmp(hd, "Expect", 6) == 0)
                continue; /* never sent */
            break;
        case 10:
            if (strncasecmp(hd, "Connection", 10) == 0) {
                *flags |= HF_CONN;
                if (has_token(sv_from(v), "close"))
                    *flags |= HF_CLOSE;
            }
            break;
        case 12:
            if (strncasecmp(hd, "Content-Type", 12) == 0)
                *flags |= HF_CTYPE;
            break;
        case 14:
            if (strncasecmp(hd, "Content-Length", 14) == 0)
                return false;
            break;
        case 15:
            if (strncasecmp(hd, "Accept-Encoding", 15) == 0 && !empty)
                return false;
            break;
        case 17:
            if (strncasecmp(hd, "Transfer-Encoding", 17) == 0)
                return false;
            break;
        default:
            break;
        }
        if (!empty)
            *bytes += strlen(hd) + 2;
    }
    return true;
}

/* Decimal digits of v into out (room for 20); returns their count. */
static size_t put_dec(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

#define PUT(w, lit) (memcpy((w), (lit), sizeof(lit) - 1), (w) += sizeof(lit) - 1)

/* Builds the request head into c->req in one pass. */
static err_code build_head(h1call *c, const upstream_request *r, const char *method, const target *t,
                           unsigned flags, size_t hdr_bytes, bool post)
{
    h1origin *o = c->s.o;
    size_t mlen = strlen(method);
    bool need_slash = t->path.len == 0 || t->path.p[0] != '/';
    char clen[24];
    size_t clen_n = post ? put_dec(clen, r->body_len) : 0;
    size_t total = mlen + 1 + need_slash + t->path.len + sizeof(" HTTP/1.1\r\n") - 1 + hdr_bytes + 2;
    if (!(flags & HF_HOST))
        total += 6 + o->hosthdr_len + 2;
    if (!(flags & HF_ACCEPT))
        total += sizeof("Accept: */*\r\n") - 1;
    if (post) {
        total += 16 + clen_n + 2;
        if (!(flags & HF_CTYPE))
            total += sizeof("Content-Type: application/x-www-form-urlencoded\r\n") - 1;
    }
    if (!(flags & HF_CONN))
        total += sizeof("Connection: keep-alive\r\n") - 1;
    buf_reset(&c->req);
    if (buf_reserve(&c->req, total) != ERR_OK)
        return ERR_NOMEM;
    char *w = c->req.p;
    memcpy(w, method, mlen);
    w += mlen;
    *w++ = ' ';
    if (need_slash)
        *w++ = '/';
    memcpy(w, t->path.p, t->path.len);
    w += t->path.len;
    PUT(w, " HTTP/1.1\r\n");
    if (!(flags & HF_HOST)) {
        PUT(w, "Host: ");
        memcpy(w, o->hosthdr, o->hosthdr_len);
        w += o->hosthdr_len;
        PUT(w, "\r\n");
    }
    if (!(flags & HF_ACCEPT))
        PUT(w, "Accept: */*\r\n");
    if (post) {
        PUT(w, "Content-Length: ");
        memcpy(w, clen, clen_n);
        w += clen_n;
        PUT(w, "\r\n");
        if (!(flags & HF_CTYPE))
            PUT(w, "Content-Type: application/x-www-form-urlencoded\r\n");
    }
    for (size_t i = 0; r->headers && r->headers[i]; i++) {
        const char *hd = r->headers[i];
        const char *colon = strchr(hd, ':');
        const char *v = colon + 1;
        while (is_ows(*v))
            v++;
        if (!*v || (colon - hd == 6 && strncasecmp(hd, "Expect", 6) == 0))
            continue;
        size_t n = strlen(hd);
        memcpy(w, hd, n);
        w += n;
        PUT(w, "\r\n");
    }
    if (!(flags & HF_CONN))
        PUT(w, "Connection: keep-alive\r\n");
    PUT(w, "\r\n");
    c->req.len = (size_t)(w - c->req.p);
    c->req.p[c->req.len] = '\0';
    return ERR_OK;
}

/* The origin for host:port, created on first use; NULL on OOM or when
 * there are too many. */
static h1origin *origin_get(h1client *h, const target *t)
{
    char key[72];
    char port[8];
    size_t pn = put_dec(port, t->port);
    size_t klen = t->host.len + 1 + pn;
    if (klen >= sizeof key)
        return NULL;
    memcpy(key, t->host.p, t->host.len);
    key[t->host.len] = ':';
    memcpy(key + t->host.len + 1, port, pn);
    for (h1origin *o = h->origins; o; o = o->next)
        if (o->keylen == klen && memcmp(o->key, key, klen) == 0)
            return o;
    if (h->norigins >= MAX_ORIGINS)
        return NULL;
    h1origin *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    memcpy(o->key, key, klen);
    o->keylen = klen;
    if (t->prefix.len < sizeof o->prefix) {
        memcpy(o->prefix, t->prefix.p, t->prefix.len);
        o->prefix_len = t->prefix.len;
    }
    o->proxied = h->proxy_set && !noproxy_match(t, h->no_proxy);
    o->hosthdr_len = t->port == 80 ? t->host.len : klen;
    memcpy(o->hosthdr, key, o->hosthdr_len);
    hl_init(&o->idle);
    if (t->family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&o->addr[0];
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)t->port);
        a->sin6_addr = t->v6;
        o->naddr = 1;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&o->addr[0];
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)t->port);
        if (t->family == AF_INET) {
            a->sin_addr = t->v4;
            o->naddr = 1;
        } else { /* localhost: 127.0.0.1, then ::1 */
            a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            struct sockaddr_in6 *b = (struct sockaddr_in6 *)&o->addr[1];
            b->sin6_family = AF_INET6;
            b->sin6_port = htons((uint16_t)t->port);
            b->sin6_addr = in6addr_loopback;
            o->naddr = 2;
        }
    }
    o->next = h->origins;
    h->origins = o;
    h->norigins++;
    return o;
}

/* The origin whose URL prefix starts url (followed by the path), moved to
 * the front of the list; NULL if none. Saves parsing the authority of
 * every request again. */
static h1origin *origin_by_prefix(h1client *h, const char *url)
{
    for (h1origin **pp = &h->origins; *pp; pp = &(*pp)->next) {
        h1origin *o = *pp;
        if (o->prefix_len == 0 || strncmp(url, o->prefix, o->prefix_len) != 0)
            continue;
        char next = url[o->prefix_len];
        if (next != '/' && next != '?' && next != '#' && next != '\0')
            continue;
        if (pp != &h->origins) {
            *pp = o->next;
            o->next = h->origins;
            h->origins = o;
        }
        return o;
    }
    return NULL;
}

/* ---- public API ---- */

h1client *h1client_new(uv_loop_t *loop)
{
    if (!loop)
        return NULL;
    h1client *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->loop = loop;
    hl_init(&h->active);
    hl_init(&h->free);
    hl_init(&h->workq);
    hl_init(&h->conns);
    h->max_idle = H1CLIENT_MAX_IDLE_PER_ORIGIN;
    h->idle_close_ms = H1CLIENT_IDLE_CLOSE_MS;
    if (!read_proxy_env(h)) {
        free(h);
        return NULL;
    }
    uv_idle_init(loop, &h->work);
    h->work.data = h;
    uv_timer_init(loop, &h->sweep);
    h->sweep.data = h;
    uv_unref((uv_handle_t *)&h->sweep);
    return h;
}

void h1client_close(h1client *h)
{
    if (!h || h->closed)
        return;
    h->closed = true;
    while (!hl_empty(&h->active))
        call_destroy(HL_ENTRY(h->active.next, h1call, node));
    while (!hl_empty(&h->free))
        call_destroy(HL_ENTRY(h->free.next, h1call, node));
    h->nactive = h->nfree = 0;
    while (!hl_empty(&h->conns))
        conn_close(HL_ENTRY(h->conns.next, h1conn, all));
    uv_idle_stop(&h->work);
    uv_timer_stop(&h->sweep);
    h->closing_handles += 2;
    uv_close((uv_handle_t *)&h->work, on_handle_closed);
    uv_close((uv_handle_t *)&h->sweep, on_handle_closed);
}

err_code h1client_start(h1client *h, const upstream_request *r, const char *method,
                        const upstream_callbacks *cb, void *ud, upstream_call **out)
{
    if (!h || !r || !r->url || !method || !cb || !cb->on_done || !out)
        return ERR_INVAL;
    if (h->closed)
        return ERR_INVAL;
    target t;
    h1origin *o = origin_by_prefix(h, r->url);
    if (o) {
        if (o->proxied || !parse_path(r->url + o->prefix_len, &t))
            return ERR_UNSUPPORTED;
    } else {
        if (!parse_target(r->url, &t))
            return ERR_UNSUPPORTED;
        o = origin_get(h, &t);
        if (!o)
            return h->norigins >= MAX_ORIGINS ? ERR_UNSUPPORTED : ERR_NOMEM;
        if (o->proxied)
            return ERR_UNSUPPORTED;
    }
    bool has_body = r->body && r->body_len > 0;
    bool head_method = strcmp(method, "HEAD") == 0;
    if (head_method && has_body)
        return ERR_UNSUPPORTED;
    unsigned flags;
    size_t hdr_bytes;
    if (!scan_headers(r->headers, &flags, &hdr_bytes) || hdr_bytes + t.path.len > REQ_MAX / 2)
        return ERR_UNSUPPORTED;
    h1call *c = call_get(h);
    if (!c)
        return ERR_NOMEM;
    h1state *s = &c->s;
    s->o = o;
    /* libcurl's rule: a body, or POST, is sent with Content-Length. */
    bool post = has_body || strcmp(method, "POST") == 0;
    if (build_head(c, r, method, &t, flags, hdr_bytes, post) != ERR_OK) {
        call_release(c);
        return ERR_NOMEM;
    }
    s->cb = *cb;
    s->ud = ud;
    s->body = has_body ? r->body : NULL;
    s->body_len = has_body ? r->body_len : 0;
    s->head_method = head_method;
    s->close_after = (flags & HF_CLOSE) != 0;
    s->idle_ms = r->idle_timeout_ms;
    s->timeout_ms = r->timeout_ms;
    s->connect_ms = r->connect_timeout_ms ? r->connect_timeout_ms : 5000;
    s->addr_index = o->prefer;
    http_chunked_init(&s->chunk);
    uint64_t now = uv_now(h->loop);
    s->last_rx = now;
    if (r->timeout_ms > 0)
        s->total_deadline = now + (uint64_t)r->timeout_ms;

    h1conn *k = pool_take(o);
    if (k) {
        k->call = c;
        s->conn = k;
        s->reused = true;
        int rc = send_request(c);
        if (rc < 0) { /* reported (or retried) from the loop, never from here */
            s->pending_err = rc;
            queue_work(c);
        }
    } else {
        int rc = conn_open(c);
        if (rc < 0) {
            log_warn("h1client: cannot open a connection to %s: %s", o->key, uv_strerror(rc));
            call_release(c);
            return rc == UV_ENOMEM ? ERR_NOMEM : ERR_UPSTREAM;
        }
    }
    h->nactive++;
    arm(c);
    *out = (upstream_call *)(void *)c;
    return ERR_OK;
}

void h1client_resume(upstream_call *uc)
{
    h1call *c = (h1call *)(void *)uc;
    if (!c || c->state != CALL_ACTIVE || c->s.done || c->s.canceled || !c->s.paused || c->h->closed)
        return;
    if (c->s.resume_queued)
        return;
    c->s.resume_queued = true;
    queue_work(c);
}

void h1client_cancel(upstream_call *uc)
{
    h1call *c = (h1call *)(void *)uc;
    if (!c || c->state != CALL_ACTIVE || c->s.done || c->s.canceled || c->h->closed)
        return;
    h1client *h = c->h;
    c->s.canceled = true;
    h->nactive--;
    uv_timer_stop(&c->timer);
    hl_del(&c->qnode);
    drop_conn(c); /* mid-exchange: the connection cannot be reused */
    if (!c->s.in_cb)
        call_release(c); /* else the frame that called back releases it */
}

size_t h1client_active(const h1client *h)
{
    return h ? h->nactive : 0;
}

size_t h1client_idle_conns(const h1client *h)
{
    return h ? h->nidle : 0;
}

void h1client_set_pool(h1client *h, size_t max_idle_per_origin, uint64_t idle_close_ms)
{
    if (!h)
        return;
    h->max_idle = max_idle_per_origin;
    h->idle_close_ms = idle_close_ms ? idle_close_ms : 1;
}
