/*
 * upstream.c - HTTP client towards providers on libcurl's multi-socket API,
 * driven by the worker's libuv loop.
 *
 * How it works:
 *  - libcurl tells us which sockets to watch (socket callback) and when to
 *    call it back (timer callback). A watched socket gets a uv_poll_t
 *    (sock_watch), the timer is one uv_timer_t per client. When either
 *    fires we call curl_multi_socket_action() ("drive") and then settle
 *    what libcurl forbids doing from inside its own callbacks: deferred
 *    cancels (reap queue), deferred starts (pending list), finished
 *    transfers (curl_multi_info_read -> on_done), a deferred close.
 *  - u->depth counts libcurl frames on the stack. Any upstream_* call made
 *    while depth > 0 (that is, from a user callback) only records what to
 *    do; the work happens after libcurl returns.
 *  - A call lives in a slot: easy handle + per-call idle uv_timer_t +
 *    buffers. Finished slots go back to a small free list (curl_easy_reset
 *    keeps nothing call-specific), so slots, easy handles and their timers
 *    are reused; keep-alive connections live in the multi handle's cache.
 *  - Pausing: the body bytes handed to on_data are always consumed (the
 *    write callback returns their length); if on_data asked for a pause we
 *    call curl_easy_pause(CURLPAUSE_RECV) right there (documented as
 *    allowed inside callbacks), so libcurl keeps any further bytes and does
 *    not finish the transfer. Should libcurl still call the write callback
 *    while paused, we return CURL_WRITEFUNC_PAUSE: those bytes were not
 *    delivered, and libcurl hands exactly them back after the unpause.
 *    upstream_resume queues the unpause for a uv_idle_t, so the re-delivery
 *    happens from the loop and not inside upstream_resume.
 *  - Idle timeout: the slot timer re-arms itself lazily from the time of
 *    the last received byte (last_rx) instead of being restarted per byte.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "http/upstream.h"
#include "http/h1client.h"
#include "core/buf.h"
#include "core/log.h"

/* ---- intrusive doubly linked lists ---- */

typedef struct ulink {
    struct ulink *prev, *next;
} ulink;

#define UL_ENTRY(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static void ul_init(ulink *h) { h->prev = h->next = h; }
static bool ul_empty(const ulink *h) { return h->next == h; }

static void ul_push(ulink *h, ulink *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

static void ul_del(ulink *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* ---- types ---- */

enum where { IN_FREE = 0, IN_PENDING, IN_ACTIVE };

struct upstream_call {
    unsigned char impl;          /* UPSTREAM_IMPL_CURL (0); first, see h1client.h */
    upstream *u;
    CURL *easy;
    uv_timer_t idle;             /* idle timeout; lives as long as the slot */
    ulink node;                  /* in u->free, u->pending or u->active */
    ulink qnode;                 /* in u->resumeq or u->reapq, else self-linked */
    enum where where;

    upstream_callbacks cb;
    void *ud;
    struct curl_slist *hdrs;
    long idle_ms;
    uint64_t last_rx;            /* uv_now() of the last received byte */
    curl_off_t last_ul;          /* upload progress seen, for the idle clock */
    buf head;                    /* lines of the response head, '\n'-separated */
    size_t head_lines;           /* lines in head, the status line included */
    size_t head_bytes;           /* raw head bytes so far, 1xx heads included */
    upstream_header *hv;         /* built at the end of the head */

    bool in_multi;               /* added to u->multi */
    bool head_done;
    bool paused;                 /* on_data returned UPSTREAM_PAUSE, no resume yet */
    bool canceled;               /* upstream_cancel: no callbacks, reap */
    bool aborted;                /* a callback asked to abort: ERR_CANCELED */
    bool toobig;                 /* head over UPSTREAM_MAX_HEAD_BYTES */
    bool done;                   /* on_done being delivered */
    char errbuf[CURL_ERROR_SIZE]; /* libcurl's reason (CURLOPT_ERRORBUFFER) */
    char why[160];               /* our own reason; wins over errbuf */
};

typedef struct sock_watch {
    uv_poll_t poll;
    upstream *u;
    curl_socket_t fd;
    ulink node;                  /* in u->socks */
} sock_watch;

struct upstream {
    uv_loop_t *loop;
    h1client *h1;                /* plain-http calls to local addresses; NULL = all to libcurl */
    CURLM *multi;
    uv_timer_t timer;            /* libcurl's timeout */
    uv_idle_t work;              /* runs queued resumes */
    ulink free, pending, active; /* slots */
    ulink resumeq, reapq;        /* calls, through qnode */
    ulink socks;                 /* sock_watch */
    size_t nfree;
    size_t nactive;              /* started, not ended or canceled */
    int depth;                   /* libcurl frames on the stack */
    int closing_handles;         /* uv_close callbacks still to come */
    bool close_requested;        /* upstream_close from inside a callback */
    bool closed;
};

static void after_curl(upstream *u);
static void do_close(upstream *u);

/* ---- global init ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init_once(void)
{
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK)
        log_error("upstream: curl_global_init failed: %s", curl_easy_strerror(rc));
}

void upstream_global_init(void)
{
    pthread_once(&global_once, global_init_once);
}

/* ---- handle bookkeeping ---- */

static void maybe_free_client(upstream *u)
{
    if (u->closed && u->closing_handles == 0)
        free(u);
}

static void on_handle_closed(uv_handle_t *h)
{
    upstream *u = h->data;
    u->closing_handles--;
    maybe_free_client(u);
}

static void on_slot_closed(uv_handle_t *h)
{
    upstream_call *c = h->data;
    upstream *u = c->u;
    free(c);
    u->closing_handles--;
    maybe_free_client(u);
}

static void on_watch_closed(uv_handle_t *h)
{
    sock_watch *w = h->data;
    upstream *u = w->u;
    free(w);
    u->closing_handles--;
    maybe_free_client(u);
}

static void close_watch(sock_watch *w)
{
    ul_del(&w->node);
    uv_poll_stop(&w->poll);
    w->u->closing_handles++;
    uv_close((uv_handle_t *)&w->poll, on_watch_closed);
}

/* Frees a slot for good: easy handle now, memory in the timer's close callback. */
static void slot_destroy(upstream_call *c)
{
    upstream *u = c->u;
    ul_del(&c->node);
    ul_del(&c->qnode);
    if (c->in_multi && u->multi)
        curl_multi_remove_handle(u->multi, c->easy);
    c->in_multi = false;
    curl_easy_cleanup(c->easy);
    c->easy = NULL;
    curl_slist_free_all(c->hdrs);
    c->hdrs = NULL;
    buf_free(&c->head);
    free(c->hv);
    c->hv = NULL;
    uv_timer_stop(&c->idle);
    u->closing_handles++;
    uv_close((uv_handle_t *)&c->idle, on_slot_closed);
}

/* A free slot (reused or new) with a clean easy handle; NULL on OOM. */
static upstream_call *slot_get(upstream *u)
{
    upstream_call *c;
    if (!ul_empty(&u->free)) {
        c = UL_ENTRY(u->free.next, upstream_call, node);
        ul_del(&c->node);
        u->nfree--;
        return c;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->easy = curl_easy_init();
    if (!c->easy) {
        free(c);
        return NULL;
    }
    c->u = u;
    ul_init(&c->node);
    ul_init(&c->qnode);
    buf_init(&c->head, UPSTREAM_MAX_HEAD_BYTES);
    uv_timer_init(u->loop, &c->idle);
    c->idle.data = c;
    return c;
}

/* Ends a slot's call: takes it out of the multi handle (only when libcurl is
 * not on the stack), clears the call state and keeps the slot for reuse, or
 * destroys it when the free list is full or the client is closing. */
static void slot_release(upstream_call *c)
{
    upstream *u = c->u;
    if (c->in_multi)
        curl_multi_remove_handle(u->multi, c->easy);
    c->in_multi = false;
    uv_timer_stop(&c->idle);
    ul_del(&c->node);
    ul_del(&c->qnode);
    if (u->closed || u->nfree >= UPSTREAM_FREE_HANDLES) {
        ul_push(&u->free, &c->node); /* slot_destroy unlinks it again */
        slot_destroy(c);
        return;
    }
    curl_slist_free_all(c->hdrs);
    c->hdrs = NULL;
    free(c->hv);
    c->hv = NULL;
    buf_reset(&c->head);
    curl_easy_reset(c->easy);
    c->cb = (upstream_callbacks){ 0 };
    c->ud = NULL;
    c->idle_ms = 0;
    c->last_rx = 0;
    c->last_ul = 0;
    c->head_bytes = 0;
    c->head_lines = 0;
    c->head_done = c->paused = c->canceled = c->aborted = c->toobig = c->done = false;
    c->errbuf[0] = '\0';
    c->why[0] = '\0';
    c->where = IN_FREE;
    ul_push(&u->free, &c->node);
    u->nfree++;
}

/* Reports the end of a call and releases it. The call must already be out
 * of the multi handle or libcurl must not be on the stack. */
static void finish(upstream_call *c, err_code e, const char *msg)
{
    upstream *u = c->u;
    c->done = true;
    u->nactive--;
    uv_timer_stop(&c->idle);
    ul_del(&c->qnode);
    if (c->in_multi) {
        curl_multi_remove_handle(u->multi, c->easy);
        c->in_multi = false;
    }
    c->cb.on_done(c->ud, e, msg);
    if (u->closed)
        return; /* upstream_close inside on_done destroyed every slot */
    slot_release(c);
}

/* ---- idle timeout ---- */

static void on_idle(uv_timer_t *t);

static void idle_start(upstream_call *c)
{
    c->last_rx = uv_now(c->u->loop);
    if (c->idle_ms > 0 && !c->paused)
        uv_timer_start(&c->idle, on_idle, (uint64_t)c->idle_ms, 0);
}

/* Marks activity; the timer notices when it fires and re-arms itself. */
static void idle_touch(upstream_call *c)
{
    c->last_rx = uv_now(c->u->loop);
}

static void on_idle(uv_timer_t *t)
{
    upstream_call *c = t->data;
    if (c->done || c->canceled || c->paused || c->where == IN_FREE)
        return;
    uint64_t now = uv_now(c->u->loop), idle = (uint64_t)c->idle_ms;
    uint64_t since = now - c->last_rx;
    if (since < idle) {
        uv_timer_start(&c->idle, on_idle, idle - since, 0);
        return;
    }
    upstream *u = c->u;
    snprintf(c->why, sizeof c->why, "idle timeout: no data received for %ld ms", c->idle_ms);
    finish(c, ERR_TIMEOUT, c->why);
    after_curl(u);
}

/* ---- response head ---- */

static bool is_ows(char ch) { return ch == ' ' || ch == '\t'; }

static sv sv_trim(sv s)
{
    while (s.len && is_ows(s.p[0]))
        s.p++, s.len--;
    while (s.len && is_ows(s.p[s.len - 1]))
        s.len--;
    return s;
}

/* Status code of "HTTP/<version> <3 digits>[ reason]", or 0 if malformed. */
static int parse_status(sv line)
{
    if (line.len < 5 || memcmp(line.p, "HTTP/", 5) != 0)
        return 0;
    size_t i = 5;
    while (i < line.len && line.p[i] != ' ')
        i++;
    if (line.len - i < 4)
        return 0;
    const char *d = line.p + i + 1;
    for (int k = 0; k < 3; k++)
        if (d[k] < '0' || d[k] > '9')
            return 0;
    if (line.len - i > 4 && d[3] != ' ')
        return 0;
    return (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
}

/* Splits the stored head (status line, then one header per line) into
 * c->hv. Lines without a colon or with an empty name are skipped. Returns
 * the number of headers, or -1 on OOM. */
static long build_headers(upstream_call *c)
{
    size_t lines = 0;
    for (size_t i = 0; i < c->head.len; i++)
        lines += c->head.p[i] == '\n';
    free(c->hv);
    c->hv = calloc(lines ? lines : 1, sizeof *c->hv);
    if (!c->hv)
        return -1;
    size_t nh = 0, pos = 0;
    bool first = true;
    while (pos < c->head.len) {
        const char *nl = memchr(c->head.p + pos, '\n', c->head.len - pos);
        size_t end = nl ? (size_t)(nl - c->head.p) : c->head.len;
        sv line = { c->head.p + pos, end - pos };
        pos = end + 1;
        if (first) { /* the status line */
            first = false;
            continue;
        }
        const char *colon = memchr(line.p, ':', line.len);
        if (!colon)
            continue;
        sv name = sv_trim((sv){ line.p, (size_t)(colon - line.p) });
        if (name.len == 0)
            continue;
        sv value = sv_trim((sv){ colon + 1, line.len - (size_t)(colon - line.p) - 1 });
        c->hv[nh++] = (upstream_header){ name, value };
    }
    return (long)nh;
}

/* Hands the completed head to on_head. Returns false if the call must stop. */
static bool deliver_head(upstream_call *c, int status)
{
    c->head_done = true;
    long nh = build_headers(c);
    if (nh < 0) {
        snprintf(c->why, sizeof c->why, "out of memory for the response head");
        return false;
    }
    if (!c->cb.on_head)
        return true;
    int r = c->cb.on_head(c->ud, status, c->hv, (size_t)nh);
    if (r != 0) {
        c->aborted = true;
        snprintf(c->why, sizeof c->why, "aborted by on_head");
    }
    return r == 0 && !c->canceled && !c->u->close_requested;
}

/* One raw head line as libcurl hands it over (CRLF included). Stores it,
 * folds obs-fold continuations into the previous line, enforces the size
 * limit, skips 1xx heads and ignores trailers. Returns false to fail the
 * transfer (limit, OOM, abort). */
static bool head_line(upstream_call *c, const char *p, size_t len)
{
    if (c->head_done)
        return true; /* trailers after a chunked body */
    c->head_bytes += len;
    if (c->head_bytes > UPSTREAM_MAX_HEAD_BYTES) {
        c->toobig = true;
        snprintf(c->why, sizeof c->why, "response head larger than %u bytes",
                 UPSTREAM_MAX_HEAD_BYTES);
        return false;
    }
    sv line = { p, len };
    while (line.len && (line.p[line.len - 1] == '\n' || line.p[line.len - 1] == '\r'))
        line.len--;
    if (line.len == 0) { /* end of a head */
        if (c->head.len == 0)
            return true; /* stray blank line */
        const char *nl = memchr(c->head.p, '\n', c->head.len);
        int status = parse_status((sv){ c->head.p, nl ? (size_t)(nl - c->head.p) : c->head.len });
        if (status == 0) {
            long code = 0;
            if (c->easy)
                curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
            status = (int)code;
        }
        if (status >= 100 && status < 200) { /* interim head: wait for the real one */
            buf_reset(&c->head);
            c->head_lines = 0;
            return true;
        }
        return deliver_head(c, status);
    }
    if (is_ows(line.p[0]) && c->head_lines > 1) {
        /* obs-fold: continue the previous header line (never the status line) */
        c->head.len--; /* drop its '\n' */
        sv more = sv_trim(line);
        if (buf_append(&c->head, " ", 1) || buf_append_sv(&c->head, more) || buf_append(&c->head, "\n", 1))
            goto toobig;
        return true;
    }
    if (c->head.len == 0 && !(line.len >= 5 && memcmp(line.p, "HTTP/", 5) == 0))
        return true; /* no status line yet (should not happen): ignore */
    if (buf_append_sv(&c->head, line) || buf_append(&c->head, "\n", 1))
        goto toobig;
    c->head_lines++;
    return true;
toobig:
    c->toobig = true;
    snprintf(c->why, sizeof c->why, "response head larger than %u bytes", UPSTREAM_MAX_HEAD_BYTES);
    return false;
}

/* ---- libcurl easy callbacks ---- */

static bool call_stopped(const upstream_call *c)
{
    return c->canceled || c->aborted || c->toobig || c->u->close_requested || c->u->closed;
}

static size_t on_curl_header(char *p, size_t size, size_t n, void *ud)
{
    upstream_call *c = ud;
    size_t len = size * n;
    if (call_stopped(c))
        return CURL_WRITEFUNC_ERROR;
    idle_touch(c);
    if (!head_line(c, p, len))
        return CURL_WRITEFUNC_ERROR;
    return len;
}

static size_t on_curl_write(char *p, size_t size, size_t n, void *ud)
{
    upstream_call *c = ud;
    size_t len = size * n;
    if (call_stopped(c))
        return CURL_WRITEFUNC_ERROR;
    if (c->paused)
        return CURL_WRITEFUNC_PAUSE; /* not delivered: libcurl keeps these bytes for later */
    idle_touch(c);
    if (NEVER(!c->head_done)) {
        long code = 0;
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
        if (!deliver_head(c, (int)code))
            return CURL_WRITEFUNC_ERROR;
    }
    if (!c->cb.on_data || len == 0)
        return len;
    int r = c->cb.on_data(c->ud, p, len);
    if (call_stopped(c))
        return CURL_WRITEFUNC_ERROR;
    if (r == UPSTREAM_CONTINUE)
        return len;
    if (r == UPSTREAM_PAUSE) {
        /* The bytes are consumed; pause now so libcurl holds what follows. */
        c->paused = true;
        uv_timer_stop(&c->idle);
        curl_easy_pause(c->easy, CURLPAUSE_RECV);
        return len;
    }
    c->aborted = true;
    snprintf(c->why, sizeof c->why, "aborted by on_data");
    return CURL_WRITEFUNC_ERROR;
}

static int on_curl_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                            curl_off_t ulnow)
{
    upstream_call *c = ud;
    if (call_stopped(c))
        return 1;
    if (ulnow > c->last_ul) { /* sending the body counts as activity too */
        c->last_ul = ulnow;
        idle_touch(c);
    }
    return 0;
}

/* ---- libcurl multi callbacks ---- */

static void drive(upstream *u, curl_socket_t s, int flags)
{
    int running = 0;
    u->depth++;
    CURLMcode rc = curl_multi_socket_action(u->multi, s, flags, &running);
    u->depth--;
    if (rc != CURLM_OK)
        log_warn("upstream: curl_multi_socket_action: %s", curl_multi_strerror(rc));
    after_curl(u);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_watch *w = h->data;
    upstream *u = w->u;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    if (u->closed)
        return;
    drive(u, w->fd, flags);
}

static void on_timeout(uv_timer_t *t)
{
    upstream *u = t->data;
    if (!u->closed)
        drive(u, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching one socket. */
static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    upstream *u = userp;
    sock_watch *w = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (w)
            close_watch(w);
        return 0;
    }
    if (u->closed)
        return 0;
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w)
            return -1;
        int rc = uv_poll_init_socket(u->loop, &w->poll, s);
        if (rc < 0) {
            log_warn("upstream: uv_poll_init_socket(%d): %s", (int)s, uv_strerror(rc));
            free(w);
            return -1;
        }
        w->u = u;
        w->fd = s;
        w->poll.data = w;
        ul_push(&u->socks, &w->node);
        curl_multi_assign(u->multi, s, w);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    if (events == 0) {
        uv_poll_stop(&w->poll);
        return 0;
    }
    int rc = uv_poll_start(&w->poll, events, on_poll);
    if (rc < 0) {
        log_warn("upstream: uv_poll_start(%d): %s", (int)s, uv_strerror(rc));
        return -1;
    }
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer, otherwise (re)start it. */
static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
    upstream *u = userp;
    if (u->closed)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&u->timer);
    else
        uv_timer_start(&u->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- after libcurl returned ---- */

static err_code map_result(upstream_call *c, CURLcode rc, const char **msg)
{
    *msg = c->why[0] ? c->why : c->errbuf[0] ? c->errbuf : NULL;
    if (c->aborted) {
        if (!*msg)
            *msg = "aborted by callback";
        return ERR_CANCELED;
    }
    if (c->toobig)
        return ERR_UPSTREAM;
    if (rc == CURLE_OK) {
        *msg = NULL;
        return ERR_OK;
    }
    if (!*msg)
        *msg = curl_easy_strerror(rc);
    return rc == CURLE_OPERATION_TIMEDOUT ? ERR_TIMEOUT : ERR_UPSTREAM;
}

/* Runs with libcurl off the stack, after every libcurl entry point that can
 * call user code: reaps deferred cancels, adds deferred starts, reports
 * finished transfers, performs a deferred close. */
static void after_curl(upstream *u)
{
    if (u->closed || u->depth > 0)
        return;
    if (u->close_requested) {
        do_close(u);
        return;
    }
    while (!ul_empty(&u->reapq)) {
        upstream_call *c = UL_ENTRY(u->reapq.next, upstream_call, qnode);
        slot_release(c);
    }
    while (!ul_empty(&u->pending)) {
        upstream_call *c = UL_ENTRY(u->pending.next, upstream_call, node);
        ul_del(&c->node);
        ul_push(&u->active, &c->node);
        c->where = IN_ACTIVE;
        CURLMcode mrc = curl_multi_add_handle(u->multi, c->easy);
        if (mrc != CURLM_OK) {
            snprintf(c->why, sizeof c->why, "cannot start transfer: %s", curl_multi_strerror(mrc));
            finish(c, ERR_UPSTREAM, c->why);
            if (u->closed)
                return;
            continue;
        }
        c->in_multi = true;
    }
    CURLMsg *m;
    int left;
    while (!u->closed && (m = curl_multi_info_read(u->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode rc = m->data.result;
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        upstream_call *c = (upstream_call *)(void *)priv;
        if (NEVER(!c)) {
            curl_multi_remove_handle(u->multi, easy);
            continue;
        }
        curl_multi_remove_handle(u->multi, easy); /* m is invalid from here */
        c->in_multi = false;
        if (c->canceled) {
            slot_release(c);
            continue;
        }
        const char *msg;
        err_code e = map_result(c, rc, &msg);
        finish(c, e, msg);
    }
    if (!u->closed && u->close_requested)
        do_close(u);
}

/* uv_idle_t callback: applies queued resumes, from the loop. */
static void on_work(uv_idle_t *h)
{
    upstream *u = h->data;
    while (!u->closed && !u->close_requested && !ul_empty(&u->resumeq)) {
        upstream_call *c = UL_ENTRY(u->resumeq.next, upstream_call, qnode);
        ul_del(&c->qnode);
        if (c->done || c->canceled || !c->paused)
            continue;
        c->paused = false;
        idle_start(c);
        if (!c->in_multi)
            continue;
        /* Unpausing makes libcurl hand back what it held, possibly right
         * here through on_curl_write, then it wakes the transfer up. */
        u->depth++;
        CURLcode rc = curl_easy_pause(c->easy, CURLPAUSE_CONT);
        u->depth--;
        if (rc != CURLE_OK && !c->canceled && !c->done && !u->close_requested) {
            /* libcurl does not fail the transfer itself when the re-delivery
             * fails, so end it here. */
            const char *msg;
            err_code e = map_result(c, rc, &msg);
            finish(c, e == ERR_OK ? ERR_UPSTREAM : e, msg ? msg : curl_easy_strerror(rc));
        }
    }
    if (!u->closed)
        uv_idle_stop(&u->work);
    after_curl(u);
}

/* ---- public API ---- */

upstream *upstream_new(uv_loop_t *loop)
{
    if (!loop)
        return NULL;
    upstream_global_init();
    upstream *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->loop = loop;
    ul_init(&u->free);
    ul_init(&u->pending);
    ul_init(&u->active);
    ul_init(&u->resumeq);
    ul_init(&u->reapq);
    ul_init(&u->socks);
    u->multi = curl_multi_init();
    if (!u->multi) {
        free(u);
        return NULL;
    }
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, (long)UPSTREAM_MAX_IDLE_CONNS);
    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    uv_idle_init(loop, &u->work);
    u->work.data = u;
    /* The lean client for plain http to numeric hosts and localhost, unless
     * GENAIOPS_UPSTREAM_CLIENT=curl sends everything to libcurl. */
    const char *which = getenv("GENAIOPS_UPSTREAM_CLIENT");
    if (!which || strcmp(which, "curl") != 0)
        u->h1 = h1client_new(loop);
    return u;
}

static void do_close(upstream *u)
{
    u->closed = true;
    u->close_requested = false;
    h1client_close(u->h1);
    u->h1 = NULL;
    /* Every slot goes: in-flight ones are removed from the multi handle first. */
    ulink *lists[] = { &u->active, &u->pending, &u->free };
    for (size_t i = 0; i < countof(lists); i++)
        while (!ul_empty(lists[i]))
            slot_destroy(UL_ENTRY(lists[i]->next, upstream_call, node));
    u->nactive = 0;
    u->nfree = 0;
    /* Closes the cached connections; REMOVE callbacks close their watchers. */
    curl_multi_cleanup(u->multi);
    u->multi = NULL;
    while (!ul_empty(&u->socks))
        close_watch(UL_ENTRY(u->socks.next, sock_watch, node));
    uv_timer_stop(&u->timer);
    uv_idle_stop(&u->work);
    u->closing_handles += 2;
    uv_close((uv_handle_t *)&u->timer, on_handle_closed);
    uv_close((uv_handle_t *)&u->work, on_handle_closed);
}

void upstream_close(upstream *u)
{
    if (!u || u->closed)
        return;
    if (u->depth > 0) {
        u->close_requested = true;
        return;
    }
    do_close(u);
}

size_t upstream_active(const upstream *u)
{
    return u ? u->nactive + h1client_active(u->h1) : 0;
}

/* True for an RFC 9110 token character (header names, methods). */
static bool is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return true;
    return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool valid_method(const char *m)
{
    size_t n = 0;
    for (; m[n]; n++)
        if (!is_tchar((unsigned char)m[n]) || n >= 32)
            return false;
    return n > 0;
}

/* "Name: value": a token name, a colon, no CR/LF or other control bytes
 * (except HT) anywhere. Returns the name length, or 0 if invalid. */
static size_t valid_header(const char *h)
{
    size_t n = 0;
    while (is_tchar((unsigned char)h[n]))
        n++;
    if (n == 0 || h[n] != ':')
        return 0;
    size_t total = 0;
    for (const char *p = h; *p; p++, total++) {
        unsigned char ch = (unsigned char)*p;
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f || total > 8192)
            return 0;
    }
    return n;
}

static bool valid_url(const char *url)
{
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return false;
    CURLU *h = curl_url();
    if (!h)
        return false;
    CURLUcode rc = curl_url_set(h, CURLUPART_URL, url, 0);
    curl_url_cleanup(h);
    return rc == CURLUE_OK;
}

/* Applies the request to the slot's (reset) easy handle. */
static err_code configure(upstream_call *c, const upstream_request *r, const char *method)
{
    CURL *e = c->easy;
    CURLcode rc = CURLE_OK;
    bool has_body = r->body && r->body_len > 0;
    bool https = strncasecmp(r->url, "https://", 8) == 0;
    long ct = r->connect_timeout_ms ? r->connect_timeout_ms : 5000;
    const char *accept_encoding = NULL;

#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)
    SET(CURLOPT_PRIVATE, (void *)c);
    SET(CURLOPT_URL, r->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TCP_NODELAY, 1L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SET(CURLOPT_ERRORBUFFER, c->errbuf);
    SET(CURLOPT_HEADERFUNCTION, on_curl_header);
    SET(CURLOPT_HEADERDATA, (void *)c);
    SET(CURLOPT_WRITEFUNCTION, on_curl_write);
    SET(CURLOPT_WRITEDATA, (void *)c);
    SET(CURLOPT_XFERINFOFUNCTION, on_curl_progress);
    SET(CURLOPT_XFERINFODATA, (void *)c);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, ct);
    if (r->timeout_ms > 0)
        SET(CURLOPT_TIMEOUT_MS, r->timeout_ms);
    if (https)
        SET(CURLOPT_PIPEWAIT, 1L); /* prefer multiplexing on a connection being set up */
    if (https && r->ca_file)
        SET(CURLOPT_CAINFO, r->ca_file); /* a private CA; verification stays on */
    if (rc != CURLE_OK)
        goto out;
    /* HTTP/2 needs nghttp2 in libcurl; without it stay on HTTP/1.1. */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);

    if (strcmp(method, "GET") == 0 && !has_body) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0 && !has_body) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (has_body || strcmp(method, "POST") == 0) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(has_body ? r->body_len : 0));
        SET(CURLOPT_POSTFIELDS, has_body ? r->body : "");
        if (strcmp(method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, method);
    } else {
        SET(CURLOPT_CUSTOMREQUEST, method);
    }

    struct curl_slist *l = NULL, *t;
    for (size_t i = 0; r->headers && r->headers[i]; i++) {
        const char *h = r->headers[i];
        if (strncasecmp(h, "Accept-Encoding:", 16) == 0) {
            /* Handled by libcurl so that it also decodes the body. */
            accept_encoding = h + 16;
            while (is_ows(*accept_encoding))
                accept_encoding++;
            if (!*accept_encoding)
                accept_encoding = NULL;
            continue;
        }
        if (strncasecmp(h, "Expect:", 7) == 0)
            continue; /* never 100-continue, see below */
        t = curl_slist_append(l, h);
        if (!t)
            goto nomem;
        l = t;
    }
    t = curl_slist_append(l, "Expect:"); /* no 100-continue round trip */
    if (!t)
        goto nomem;
    l = t;
    c->hdrs = l;
    SET(CURLOPT_HTTPHEADER, c->hdrs);
    if (accept_encoding)
        SET(CURLOPT_ACCEPT_ENCODING, accept_encoding);
    /* Proxies: CURLOPT_PROXY/NOPROXY are deliberately left unset, so libcurl
     * honours http_proxy, HTTPS_PROXY, NO_PROXY from the environment. */
#undef SET
out:
    if (rc == CURLE_OUT_OF_MEMORY)
        return ERR_NOMEM;
    if (rc == CURLE_UNKNOWN_OPTION || rc == CURLE_NOT_BUILT_IN || rc == CURLE_UNSUPPORTED_PROTOCOL)
        return ERR_UNSUPPORTED;
    return rc == CURLE_OK ? ERR_OK : ERR_INVAL;
nomem:
    curl_slist_free_all(l);
    return ERR_NOMEM;
}

err_code upstream_start(upstream *u, const upstream_request *r, const upstream_callbacks *cb,
                        void *ud, upstream_call **out)
{
    if (out)
        *out = NULL;
    if (!u || !r || !cb || !cb->on_done || !out || u->closed || u->close_requested)
        return ERR_INVAL;
    if (!r->url)
        return ERR_INVAL;
    bool has_body = r->body && r->body_len > 0;
    const char *method = r->method ? r->method : (has_body ? "POST" : "GET");
    if (!valid_method(method) || (r->body_len > 0 && !r->body))
        return ERR_INVAL;
    if (r->connect_timeout_ms < 0 || r->timeout_ms < 0 || r->idle_timeout_ms < 0)
        return ERR_INVAL;
    for (size_t i = 0; r->headers && r->headers[i]; i++)
        if (i >= 256 || !valid_header(r->headers[i]))
            return ERR_INVAL;
    if (u->h1) {
        /* Plain http to a numeric host or localhost without a proxy: the
         * lean client (h1client.h). It parses the URL strictly and hands
         * back (ERR_UNSUPPORTED) anything libcurl should judge. */
        err_code he = h1client_start(u->h1, r, method, cb, ud, out);
        if (he != ERR_UNSUPPORTED)
            return he;
    }
    if (!valid_url(r->url))
        return ERR_INVAL;

    upstream_call *c = slot_get(u);
    if (!c)
        return ERR_NOMEM;
    c->cb = *cb;
    c->ud = ud;
    c->idle_ms = r->idle_timeout_ms;
    err_code e = configure(c, r, method);
    if (e != ERR_OK) {
        slot_release(c);
        return e;
    }
    if (u->depth > 0) {
        /* Inside a libcurl callback: curl_multi_add_handle must wait. */
        c->where = IN_PENDING;
        ul_push(&u->pending, &c->node);
    } else {
        CURLMcode mrc = curl_multi_add_handle(u->multi, c->easy);
        if (mrc != CURLM_OK) {
            log_warn("upstream: curl_multi_add_handle: %s", curl_multi_strerror(mrc));
            slot_release(c);
            return mrc == CURLM_OUT_OF_MEMORY ? ERR_NOMEM : ERR_UPSTREAM;
        }
        c->in_multi = true;
        c->where = IN_ACTIVE;
        ul_push(&u->active, &c->node);
    }
    u->nactive++;
    idle_start(c);
    *out = c;
    return ERR_OK;
}

void upstream_resume(upstream_call *c)
{
    if (c && h1client_owns(c)) {
        h1client_resume(c);
        return;
    }
    if (!c || c->where == IN_FREE || c->done || c->canceled || !c->paused)
        return;
    upstream *u = c->u;
    if (u->closed || c->qnode.next != &c->qnode)
        return; /* already queued */
    ul_push(&u->resumeq, &c->qnode);
    uv_idle_start(&u->work, on_work);
}

void upstream_cancel(upstream_call *c)
{
    if (c && h1client_owns(c)) {
        h1client_cancel(c);
        return;
    }
    if (!c || c->where == IN_FREE || c->done || c->canceled)
        return;
    upstream *u = c->u;
    if (u->closed)
        return;
    c->canceled = true;
    u->nactive--;
    uv_timer_stop(&c->idle);
    ul_del(&c->qnode);
    if (c->in_multi && u->depth > 0) {
        /* libcurl is on the stack: curl_multi_remove_handle must wait. */
        ul_push(&u->reapq, &c->qnode);
        return;
    }
    slot_release(c);
}
