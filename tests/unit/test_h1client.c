/*
 * test_h1client.c - the lean HTTP/1.1 client (h1client.c) against a
 * scripted HTTP/1.1 server on the same loop.
 *
 * The server answers each complete request with whatever the running test's
 * script function returns for it: canned bytes, optionally cut in two with
 * a pause between the parts (to split a response at a chosen byte), then
 * keep or close the connection, or close without answering (a server that
 * dropped a keep-alive connection). It counts accepts, requests and open
 * connections and keeps the last request head.
 *
 * Most tests drive h1client_* directly (so pool limits can be changed);
 * the routing tests go through upstream_start and compare with libcurl
 * (GENAIOPS_UPSTREAM_CLIENT=curl): the same request head, the same proxy
 * decision. test_upstream.c runs its whole suite against both clients.
 * Every test ends with uv_loop_close() == 0: no handle leaked.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include "test.h"
#include "core/buf.h"
#include "http/h1client.h"
#include "http/upstream.h"

/* ---------------------------------------------------------------- server */

typedef struct srv srv;

typedef struct sconn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    srv *s;
    struct sconn *next;
    char in[65536];
    size_t inlen;
    int nreq;                  /* complete requests seen on this connection */
    char *rest;                /* second part of a split response */
    size_t rest_len;
    bool rest_close;
    bool silent;               /* answers nothing more */
    bool closing;
    int open_handles;
} sconn;

/* What the server does with one request. */
typedef struct action {
    const char *data;
    size_t len;
    size_t split;              /* 0 < split < len: the rest goes delay_ms later */
    int delay_ms;
    bool close_after;          /* close once sent */
    bool close_now;            /* close without answering */
    bool silent;               /* never answer */
} action;

typedef action (*script_fn)(srv *s, sconn *c, sv head);

struct srv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    int accepts, requests, open;
    char last_head[8192];
    char last_target[512];
    script_fn script;
    const void *arg;           /* for the script */
    sconn *conns;
};

typedef struct wr {
    uv_write_t req;
    sconn *c;
    bool close;
    char data[];
} wr;

static void sc_handle_closed(uv_handle_t *h)
{
    sconn *c = h->data;
    if (--c->open_handles == 0) {
        free(c->rest);
        free(c);
    }
}

static void sc_close(sconn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->s->open--;
    for (sconn **pp = &c->s->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, sc_handle_closed);
    uv_close((uv_handle_t *)&c->timer, sc_handle_closed);
}

static void sc_written(uv_write_t *req, int status)
{
    wr *w = (wr *)req;
    if (w->close && !w->c->closing)
        sc_close(w->c);
    free(w);
}

static void sc_send(sconn *c, const char *p, size_t n, bool close)
{
    if (c->closing)
        return;
    if (n == 0) {
        if (close)
            sc_close(c);
        return;
    }
    wr *w = malloc(sizeof *w + n);
    w->c = c;
    w->close = close;
    memcpy(w->data, p, n);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, sc_written) < 0) {
        free(w);
        sc_close(c);
    }
}

static void sc_process(sconn *c);

static void sc_on_timer(uv_timer_t *t)
{
    sconn *c = t->data;
    char *rest = c->rest;
    c->rest = NULL;
    sc_send(c, rest, c->rest_len, c->rest_close);
    free(rest);
    sc_process(c);
}

/* Value of request header `name` in head, or SV_NULL. */
static sv head_value(sv head, const char *name)
{
    size_t nl = strlen(name);
    const char *p = head.p, *end = head.p + head.len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && *v == ' ')
                v++;
            size_t vl = (size_t)(eol - v);
            if (vl && v[vl - 1] == '\r')
                vl--;
            return (sv){ v, vl };
        }
        p = eol + 1;
    }
    return SV_NULL;
}

static void sc_process(sconn *c)
{
    srv *s = c->s;
    while (!c->closing && !c->rest && !c->silent) {
        char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
        if (!end)
            return;
        size_t hlen = (size_t)(end - c->in) + 4;
        sv head = { c->in, hlen };
        sv cl = head_value(head, "Content-Length");
        size_t blen = cl.p ? (size_t)strtoul(cl.p, NULL, 10) : 0;
        if (hlen + blen > sizeof c->in) {
            sc_close(c);
            return;
        }
        if (c->inlen < hlen + blen)
            return;
        c->nreq++;
        s->requests++;
        snprintf(s->last_head, sizeof s->last_head, "%.*s", (int)hlen, c->in);
        const char *sp = memchr(c->in, ' ', hlen);
        const char *sp2 = sp ? memchr(sp + 1, ' ', hlen - (size_t)(sp + 1 - c->in)) : NULL;
        if (sp && sp2)
            snprintf(s->last_target, sizeof s->last_target, "%.*s", (int)(sp2 - sp - 1), sp + 1);
        action a = s->script(s, c, head);
        memmove(c->in, c->in + hlen + blen, c->inlen - hlen - blen);
        c->inlen -= hlen + blen;
        if (a.silent) {
            c->silent = true;
            return;
        }
        if (a.close_now) {
            sc_close(c);
            return;
        }
        if (a.split > 0 && a.split < a.len) {
            sc_send(c, a.data, a.split, false);
            c->rest = malloc(a.len - a.split);
            memcpy(c->rest, a.data + a.split, a.len - a.split);
            c->rest_len = a.len - a.split;
            c->rest_close = a.close_after;
            uv_timer_start(&c->timer, sc_on_timer, (uint64_t)a.delay_ms, 0);
            return;
        }
        sc_send(c, a.data, a.len, a.close_after);
        if (a.close_after)
            return;
    }
}

static void sc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    sconn *c = h->data;
    *b = uv_buf_init(c->in + c->inlen, (unsigned)(sizeof c->in - c->inlen));
}

static void sc_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    sconn *c = st->data;
    if (n < 0 || (n == 0 && c->inlen == sizeof c->in)) {
        sc_close(c);
        return;
    }
    c->inlen += (size_t)n;
    sc_process(c);
}

static void srv_accept(uv_stream_t *ls, int status)
{
    srv *s = ls->data;
    if (status < 0)
        return;
    sconn *c = calloc(1, sizeof *c);
    c->s = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    s->open++;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0) {
        sc_close(c);
        return;
    }
    s->accepts++;
    uv_tcp_nodelay(&c->tcp, 1); /* a split response really goes out in two parts */
    c->next = s->conns;
    s->conns = c;
    uv_read_start((uv_stream_t *)&c->tcp, sc_alloc, sc_read);
}

/* Listens on `ip` (127.0.0.1 or ::1); returns false if that is impossible. */
static bool srv_start_on(srv *s, uv_loop_t *loop, const char *ip, script_fn fn, const void *arg)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->script = fn;
    s->arg = arg;
    struct sockaddr_storage ss;
    if (strchr(ip, ':'))
        uv_ip6_addr(ip, 0, (struct sockaddr_in6 *)&ss);
    else
        uv_ip4_addr(ip, 0, (struct sockaddr_in *)&ss);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    if (uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0) != 0 ||
        uv_listen((uv_stream_t *)&s->listener, 128, srv_accept) != 0) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        return false;
    }
    int len = sizeof ss;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    return true;
}

static void srv_start(srv *s, uv_loop_t *loop, script_fn fn, const void *arg)
{
    CHECK(srv_start_on(s, loop, "127.0.0.1", fn, arg));
}

static void srv_close(srv *s)
{
    while (s->conns)
        sc_close(s->conns);
    if (!uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, NULL);
}

/* ---------------------------------------------------------------- scripts */

static action say(const char *text) { return (action){ .data = text, .len = strlen(text) }; }

static const char ok2[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/* Answers s->arg (a NUL-terminated response) to everything. */
static action script_fixed(srv *s, sconn *c, sv head) { return say(s->arg ? s->arg : ok2); }

/* Like script_fixed, and closes after answering (no Connection: close). */
static action script_fixed_then_close(srv *s, sconn *c, sv head)
{
    action a = script_fixed(s, c, head);
    a.close_after = true;
    return a;
}

/* A keep-alive server that dropped the connection: the second request on
 * any connection is met with a close. */
static action script_drop_second(srv *s, sconn *c, sv head)
{
    if (c->nreq >= 2)
        return (action){ .close_now = true };
    return say(ok2);
}

/* Answers only the very first request of the server's life. */
static action script_only_first(srv *s, sconn *c, sv head)
{
    if (s->requests > 1)
        return (action){ .close_now = true };
    return say(ok2);
}

/* Second request on a connection: half a head, then close. */
static action script_partial_second(srv *s, sconn *c, sv head)
{
    if (c->nreq >= 2) {
        action a = say("HTTP/1.1 200 OK\r\nContent-Le");
        a.close_after = true;
        return a;
    }
    return say(ok2);
}

/* s->arg is a split_case: the response cut at `at` with a pause. */
typedef struct split_case {
    const char *resp;
    size_t at;
    int delay_ms;
    bool close_after;
} split_case;

static action script_split(srv *s, sconn *c, sv head)
{
    const split_case *sc = s->arg;
    action a = say(sc->resp);
    a.split = sc->at;
    a.delay_ms = sc->delay_ms;
    a.close_after = sc->close_after;
    return a;
}

/* Never answers. */
static action script_silent(srv *s, sconn *c, sv head) { return (action){ .silent = true }; }

/* ---------------------------------------------------------------- harness */

static void tick(uv_timer_t *t) { UNUSED(t); }

static bool run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, tick, 2, 2);
    uv_update_time(loop);
    uint64_t start = uv_now(loop);
    bool ok;
    while (!(ok = pred ? pred(arg) : false) && uv_now(loop) - start < ms)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static void run_for(uv_loop_t *loop, uint64_t ms) { run_until(loop, NULL, NULL, ms); }

typedef struct fx {
    uv_loop_t loop;
    srv srv;
    h1client *h;
} fx;

static void clear_proxy_env(void)
{
    static const char *const vars[] = { "http_proxy", "all_proxy", "ALL_PROXY" };
    for (size_t i = 0; i < countof(vars); i++)
        unsetenv(vars[i]);
}

static void fx_init(fx *f, script_fn fn, const void *arg)
{
    clear_proxy_env();
    uv_loop_init(&f->loop);
    srv_start(&f->srv, &f->loop, fn, arg);
    f->h = h1client_new(&f->loop);
    CHECK(f->h != NULL);
}

static void fx_done(fx *f)
{
    if (f->h)
        h1client_close(f->h);
    srv_close(&f->srv);
    for (int i = 0; i < 3000 && uv_loop_alive(&f->loop); i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    CHECK(!uv_loop_alive(&f->loop));
    CHECK_INT(uv_loop_close(&f->loop), 0);
}

/* ---------------------------------------------------------------- recorder */

typedef struct rec {
    fx *f;
    upstream_call *call;
    char url[160];
    upstream_request req;
    const char *method;
    int status, nhead, ndata, ndone;
    err_code err;
    char msg[256];
    char headers[8192];
    size_t hlen;
    buf body;
    size_t first_piece;
    int data_while_paused, done_while_paused;
    bool paused;
    uint64_t t_paused;
    /* what to do */
    bool cancel_on_head, abort_on_head, close_on_head;
    int cancel_at_data, abort_at_data, close_at_data, pause_at_data;
    bool pause_each;
    bool cancel_in_done, close_in_done;
    struct rec *start_in_cb;    /* started from the callback that cancels */
} rec;

static upstream_callbacks rec_cb;

static void rec_init(rec *r, fx *f, const char *path)
{
    memset(r, 0, sizeof *r);
    r->f = f;
    snprintf(r->url, sizeof r->url, "http://127.0.0.1:%d%s", f->srv.port, path);
    r->req.url = r->url;
    r->method = "GET";
    r->err = (err_code)-1;
    buf_init(&r->body, 8u << 20);
}

static void rec_reset(rec *r)
{
    r->status = r->nhead = r->ndata = r->ndone = 0;
    r->err = (err_code)-1;
    r->msg[0] = '\0';
    r->hlen = 0;
    r->headers[0] = '\0';
    buf_reset(&r->body);
    r->first_piece = 0;
}

static void rec_free(rec *r) { buf_free(&r->body); }

static err_code rec_start(rec *r)
{
    return h1client_start(r->f->h, &r->req, r->method, &rec_cb, r, &r->call);
}

static void start_other(rec *r)
{
    if (r->start_in_cb)
        CHECK_INT(rec_start(r->start_in_cb), ERR_OK);
}

static void close_client(rec *r)
{
    h1client_close(r->f->h);
    r->f->h = NULL;
}

static int rec_head(void *ud, int status, const upstream_header *h, size_t nh)
{
    rec *r = ud;
    r->nhead++;
    r->status = status;
    for (size_t i = 0; i < nh; i++) {
        int n = snprintf(r->headers + r->hlen, sizeof r->headers - r->hlen, "%.*s: %.*s\n",
                         SV_FMT(h[i].name), SV_FMT(h[i].value));
        if (n > 0 && (size_t)n < sizeof r->headers - r->hlen)
            r->hlen += (size_t)n;
    }
    if (r->cancel_on_head) {
        upstream_cancel(r->call);
        start_other(r);
    }
    if (r->close_on_head)
        close_client(r);
    return r->abort_on_head;
}

static int rec_data(void *ud, const char *p, size_t n)
{
    rec *r = ud;
    if (r->paused)
        r->data_while_paused++;
    r->ndata++;
    if (r->ndata == 1)
        r->first_piece = n;
    CHECK_INT(buf_append(&r->body, p, n), ERR_OK);
    if (r->cancel_at_data == r->ndata) {
        upstream_cancel(r->call);
        start_other(r);
    }
    if (r->close_at_data == r->ndata)
        close_client(r);
    if (r->abort_at_data == r->ndata)
        return UPSTREAM_ABORT;
    if (r->pause_each || r->pause_at_data == r->ndata) {
        r->paused = true;
        r->t_paused = uv_now(&r->f->loop);
        return UPSTREAM_PAUSE;
    }
    return UPSTREAM_CONTINUE;
}

static void rec_done(void *ud, err_code e, const char *msg)
{
    rec *r = ud;
    if (r->paused && e == ERR_OK)
        r->done_while_paused++;
    r->ndone++;
    r->err = e;
    snprintf(r->msg, sizeof r->msg, "%s", msg ? msg : "");
    if (r->cancel_in_done)
        upstream_cancel(r->call); /* a no-op */
    if (r->close_in_done)
        close_client(r);
}

static upstream_callbacks rec_cb = { rec_head, rec_data, rec_done };

static bool rec_is_done(void *arg) { return ((rec *)arg)->ndone > 0; }

/* Starts r and runs the loop until it is done (or 5 s pass). */
static bool rec_run(rec *r)
{
    rec_reset(r);
    err_code e = rec_start(r);
    CHECK_INT(e, ERR_OK);
    return e == ERR_OK && run_until(&r->f->loop, rec_is_done, r, 5000);
}

static bool idle_is(void *arg)
{
    fx *f = arg;
    return h1client_idle_conns(f->h) == 0;
}

static bool srv_has_no_conns(void *arg) { return ((srv *)arg)->open == 0; }

/* ---------------------------------------------------------------- keep-alive and retry */

TEST(h1_stale_keepalive_retried_once)
{
    fx f;
    fx_init(&f, script_drop_second, NULL);
    rec r;
    rec_init(&r, &f, "/a");
    r.method = "POST";
    r.req.body = "hello";
    r.req.body_len = 5;
    CHECK(rec_run(&r));
    CHECK_INT(r.err, ERR_OK);
    CHECK_INT(h1client_idle_conns(f.h), 1);
    /* The pooled connection is taken; the server drops it on the request. */
    CHECK(rec_run(&r));
    CHECK_INT(r.err, ERR_OK);
    CHECK_INT(r.status, 200);
    CHECK_MEM(r.body.p, r.body.len, "ok");
    CHECK_INT(r.nhead, 1);
    CHECK_INT(f.srv.accepts, 2);
    CHECK_INT(f.srv.requests, 3); /* the dropped one, then the retry with its whole body */
    CHECK(strstr(f.srv.last_head, "Content-Length: 5\r\n") != NULL);
    CHECK_INT(h1client_active(f.h), 0);
    rec_free(&r);
    fx_done(&f);
}

TEST(h1_retry_is_not_repeated)
{
    fx f;
    fx_init(&f, script_only_first, NULL);
    rec r;
    rec_init(&r, &f, "/a");
    CHECK(rec_run(&r));
    CHECK_INT(r.err, ERR_OK);
    CHECK(rec_run(&r)); /* reused: dropped; fresh: dropped again -> error */
    CHECK_INT(r.err, ERR_UPSTREAM);
    CHECK(strstr(r.msg, "closed before the response was complete") != NULL);
    CHECK_INT(r.nhead, 0);
    CHECK_INT(f.srv.accepts, 2);
    CHECK_INT(f.srv.requests, 3);
    rec_free(&r);
    fx_done(&f);
}

TEST(h1_no_retry_once_response_bytes_arrived)
{
    fx f;
    fx_init(&f, script_partial_second, NULL);
    rec r;
    rec_init(&r, &f, "/a");
    CHECK(rec_run(&r));
    CHECK_INT(r.err, ERR_OK);
    CHECK(rec_run(&r));
    CHECK_INT(r.err, ERR_UPSTREAM);
    CHECK(strstr(r.msg, "closed before the response was complete") != NULL);
    CHECK_INT(f.srv.accepts, 1);
    CHECK_INT(f.srv.requests, 2);
    rec_free(&r);
    fx_done(&f);
}

TEST(h1_no_retry_on_a_fresh_connection)
{
    fx f;
    fx_init(&f, script_only_first, NULL);
    f.srv.requests = 1; /* so that even the first request is dropped */
    rec r;
    rec_init(&r, &f, "/a");
    CHECK(rec_run(&r));
    CHECK_INT(r.err, ERR_UPSTREAM);
    CHECK_INT(f.srv.accepts, 1);
    CHECK_INT(f.srv.requests, 2);
    rec_free(&r);
    fx_done(&f);
}

typedef struct wave {
    rec r[8];
} wave;

static bool wave_done(void *arg)
{
    wave *w = arg;
    for (size_t i = 0; i < countof(w->r); i++)
        if (w->r[i].ndone == 0)
            return false;
    return true;
}

static void run_wave(fx *f, wave *w)
{
    for (size_t i = 0; i < countof(w->r); i++) {
        rec_reset(&w->r[i]);
        CHECK_INT(rec_start(&w->r[i]), ERR_OK);
    }
    CHECK(run_until(&f->loop, wave_done, w, 5000));
    for (size_t i = 0; i < countof(w->r); i++) {
        CHECK_INT(w->r[i].err, ERR_OK);
        CHECK_MEM(w->r[i].body.p, w->r[i].body.len, "ok");
    }
}

TEST(h1_pool_reuse_and_limit)
{
    fx f;
    fx_init(&f, script_fixed, NULL);
    rec r;
    rec_init(&r, &f, "/seq");
    for (int i = 0; i < 10; i++) {
        CHECK(rec_run(&r));
        CHECK_INT(r.err, ERR_OK);
    }
    CHECK_INT(f.srv.accepts, 1);
    CHECK_INT(f.srv.requests, 10);
    wave *w = calloc(1, sizeof *w);
    for (size_t i = 0; i < countof(w->r); i++)
        rec_init(&w->r[i], &f, "/wave");
    run_wave(&f, w);
    CHECK_INT(f.srv.accepts, 8); /* the pooled one and 7 new */
    CHECK_INT(h1client_idle_conns(f.h), 8);
    run_wave(&f, w);
    CHECK_INT(f.srv.accepts, 8); /* all 8 reused */
    /* At most 3 idle per origin: the other 5 are closed after their call. */
    h1client_set_pool(f.h, 3, 60000);
    run_wave(&f, w);
    CHECK_INT(f.srv.accepts, 8);
    CHECK_INT(h1client_idle_conns(f.h), 3);
    run_for(&f.loop, 50);
    CHECK_INT(f.srv.open, 3);
    /* Another origin (localhost) has its own pool. */
    rec l;
    rec_init(&l, &f, "/other");
    snprintf(l.url, sizeof l.url, "http://localhost:%d/other", f.srv.port);
    CHECK(rec_run(&l));
    CHECK_INT(l.err, ERR_OK);
    CHECK_INT(f.srv.accepts, 9);
    CHECK_INT(h1client_idle_conns(f.h), 4);
    /* Another spelling of the same host:port shares its pool. */
    snprintf(l.url, sizeof l.url, "HTTP://127.0.0.1:%d?q", f.srv.port);
    CHECK(rec_run(&l));
    CHECK_INT(l.err, ERR_OK);
    CHECK_INT(f.srv.accepts, 9);
    CHECK_STR(f.srv.last_target, "/?q");
    for (size_t i = 0; i < countof(w->r); i++)
        rec_free(&w->r[i]);
    free(w);
    rec_free(&r);
    rec_free(&l);
    fx_done(&f);
}

TEST(h1_idle_connections_evicted)
{
    fx f;
    fx_init(&f, script_fixed, NULL);
    h1client_set_pool(f.h, 256, 120);
    rec r;
    rec_init(&r, &f, "/a");
    CHECK(rec_run(&r));
    CHECK_INT(h1client_idle_conns(f.h), 1);
    run_for(&f.loop, 40);
    CHECK_INT(h1client_idle_conns(f.h), 1);
    CHECK(run_until(&f.loop, idle_is, &f, 2000));
    CHECK(run_until(&f.loop, srv_has_no_conns, &f.srv, 2000)); /* really closed */
    CHECK(rec_run(&r));
    CHECK_INT(r.err, ERR_OK);
    CHECK_INT(f.srv.accepts, 2);
    rec_free(&r);
    fx_done(&f);
}

TEST(h1_server_close_of_idle_connection_noticed)
{
    fx f;
    fx_init(&f, script_fixed_then_close, NULL); /* keep-alive response, then close */
    rec r;
    rec_init(&r, &f, "/a");
    CHECK(rec_run(&r));
    CHECK_INT(r.err, ERR_OK);
    CHECK(run_until(&f.loop, idle_is, &f, 2000)); /* the EOF was read while idle */
    CHECK(rec_run(&r));
    CHECK_INT(r.err, ERR_OK);
    CHECK_INT(f.srv.accepts, 2);
    CHECK_INT(f.srv.requests, 2); /* no retry was needed */
    rec_free(&r);
    fx_done(&f);
}

/* Counts client handles that would keep the loop running. */
typedef struct walk {
    srv *s;
    int alive;
} walk;

static void count_alive(uv_handle_t *h, void *arg)
{
    walk *w = arg;
    if (h == (uv_handle_t *)&w->s->listener || !uv_is_active(h) || !uv_has_ref(h))
        return;
    for (sconn *c = w->s->conns; c; c = c->next)
        if (h == (uv_handle_t *)&c->tcp || h == (uv_handle_t *)&c->timer)
            return;
    w->alive++;
}

TEST(h1_idle_pool_does_not_keep_loop_alive)
{
    fx f;
    fx_init(&f, script_fixed, NULL);
    rec r;
    rec_init(&r, &f, "/a");
    CHECK(rec_run(&r));
    CHECK_INT(h1client_idle_conns(f.h), 1);
    walk w = { &f.srv, 0 };
    uv_walk(&f.loop, count_alive, &w);
    CHECK_INT(w.alive, 0);
    rec_free(&r);
    fx_done(&f);
}

TEST(h1_connection_close_and_http10)
{
    static const struct {
        const char *resp;
        const char *caller_conn; /* a Connection header of the caller, or NULL */
        int pooled;
    } cases[] = {
        { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", NULL, 1 },
        { "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", NULL, 0 },
        { "HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 2\r\n\r\nok", NULL, 0 },
        { "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", NULL, 0 },
        { "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", NULL, 1 },
        { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "Connection: close", 0 },
        { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXCESS", NULL, 0 },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n", NULL, 0 },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        fx f;
        fx_init(&f, script_fixed, cases[i].resp);
        rec r;
        rec_init(&r, &f, "/a");
        const char *hdrs[] = { cases[i].caller_conn, NULL };
        r.req.headers = hdrs;
        CHECK(rec_run(&r));
        CHECK_INT(r.err, ERR_OK);
        CHECK_MEM(r.body.p, r.body.len, "ok");
        if ((int)h1client_idle_conns(f.h) != cases[i].pooled)
            test_fail(__FILE__, __LINE__, "case %zu: %zu idle connections", i, h1client_idle_conns(f.h));
        if (cases[i].caller_conn)
            CHECK(strstr(f.srv.last_head, "\r\nConnection: close\r\n") != NULL);
        else
            CHECK(strstr(f.srv.last_head, "\r\nConnection: keep-alive\r\n") != NULL);
        CHECK(rec_run(&r));
        CHECK_INT(r.err, ERR_OK);
        CHECK_INT(f.srv.accepts, cases[i].pooled ? 1 : 2);
        rec_free(&r);
        fx_done(&f);
    }
}

/* ---------------------------------------------------------------- framing */

typedef struct frame_case {
    const char *resp;
    int status;
    const char *body;
    const char *headers;       /* expected on_head headers, "Name: value\n" each */
} frame_case;

static const frame_case frames[] = {
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4;ext=1\r\nWiki\r\n5;a=b;c=\"q\"\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n"
      "0;last\r\nX-Trailer: yes\r\nX-More: 1\r\n\r\n",
      200, "Wikipedia in\r\n\r\nchunks.", "Transfer-Encoding: chunked\n" },
    { "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
      "HTTP/1.1 201 Created\r\nX-Fold: a\r\n \t b\r\nX-Empty:\r\nno colon line\r\n"
      "Content-Length: 5\r\n\r\nhello",
      201, "hello", "X-Fold: a b\nX-Empty: \nContent-Length: 5\n" },
    { "\r\nHTTP/1.1 200 OK\nContent-Length: 3\n\nabc", 200, "abc", "Content-Length: 3\n" },
    { "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found",
      404, "not found", "Content-Type: text/plain\nContent-Length: 9\n" },
};

/* Every response, cut at every byte with a pause between the halves,
 * gives the same head and body. */
TEST(h1_responses_split_at_every_byte)
{
    for (size_t k = 0; k < countof(frames); k++) {
        split_case sc = { frames[k].resp, 0, 1, false };
        fx f;
        fx_init(&f, script_split, &sc);
        rec r;
        rec_init(&r, &f, "/split");
        size_t len = strlen(frames[k].resp);
        for (size_t at = 0; at < len; at++) {
            sc.at = at;
            if (!rec_run(&r)) {
                test_fail(__FILE__, __LINE__, "frame %zu split %zu: no end", k, at);
                break;
            }
            if (r.err != ERR_OK || r.status != frames[k].status || r.nhead != 1 ||
                r.body.len != strlen(frames[k].body) || memcmp(r.body.p, frames[k].body, r.body.len) != 0 ||
                strcmp(r.headers, frames[k].headers) != 0) {
                test_fail(__FILE__, __LINE__, "frame %zu split %zu: %s %d \"%.*s\" headers:\n%s", k, at,
                          err_name(r.err), r.status, (int)r.body.len, r.body.p, r.headers);
                break;
            }
        }
        CHECK_INT(f.srv.accepts, 1); /* every one of them reused the connection */
        rec_free(&r);
        fx_done(&f);
    }
}

TEST(h1_close_delimited_body)
{
    static const char *const resps[] = {
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
        "HTTP/1.0 200 OK\r\n\r\nuntil the end",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nuntil the end", /* not chunked: to EOF */
    };
    for (size_t i = 0; i < countof(resps); i++) {
        split_case sc = { resps[i], strlen(resps[i]) - 4, 20, true };
        fx f;
        fx_init(&f, script_split, &sc);
        rec r;
        rec_init(&r, &f, "/a");
        CHECK(rec_run(&r));
        CHECK_INT(r.err, ERR_OK);
        CHECK_MEM(r.body.p, r.body.len, "until the end");
        CHECK_INT(h1client_idle_conns(f.h), 0);
        rec_free(&r);
        fx_done(&f);
    }
}

TEST(h1_responses_without_body)
{
    static const struct {
        const char *method, *resp;
        int status;
    } cases[] = {
        { "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 200 },
        { "HEAD", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 200 },
        { "GET", "HTTP/1.1 204 No Content\r\n\r\n", 204 },
        { "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", 304 },
        { "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200 },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        fx f;
        fx_init(&f, script_fixed, cases[i].resp);
        rec r;
        rec_init(&r, &f, "/a");
        r.method = cases[i].method;
        for (int n = 0; n < 2; n++) {
            CHECK(rec_run(&r));
            CHECK_INT(r.err, ERR_OK);
            CHECK_INT(r.status, cases[i].status);
            CHECK_INT(r.ndata, 0);
        }
        CHECK_INT(f.srv.accepts, 1);
        rec_free(&r);
        fx_done(&f);
    }
}

TEST(h1_malformed_responses_refused)
{
    static const struct {
        const char *resp;
        int nhead;                /* on_head calls before the error */
        const char *body;         /* delivered before the error */
        const char *msg;
    } cases[] = {
        { "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", 0, "", "malformed status line" },
        { "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n", 0, "", "malformed status line" },
        { "ICY 200 OK\r\n\r\n", 0, "", "malformed status line" },
        { "HTTP/1.1 20 OK\r\n\r\n", 0, "", "malformed status line" },
        { "HTTP/1.1 200OK\r\n\r\n", 0, "", "malformed status line" },
        { "HTTP/1.1 099 Low\r\n\r\n", 0, "", "malformed status line" },
        { "HTTP/1.1\r\n\r\n", 0, "", "malformed status line" },
        { "\x16\x03\x01\x02\x01\x01\x01\x01\xfc\x03\x03\r\n\r\n", 0, "", "malformed status line" },
        { "HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n", 0, "", "invalid Content-Length" },
        { "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, "", "invalid Content-Length" },
        { "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 0, "", "invalid Content-Length" },
        { "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", 0, "", "invalid Content-Length" },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 1, "", "malformed chunked body" },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n", 1, "ok", "malformed chunked body" },
        /* found by fuzzing: the bytes before the fault are delivered whether
         * or not they came in the same read as the fault */
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=1\r\nWi\t\x01\x01\x01" "edia\r\n0\r\n\r\n", 1, "Wi\t\x01",
          "malformed chunked body" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        for (int cut = 0; cut < 2; cut++) {
            size_t len = strlen(cases[i].resp);
            split_case sc = { cases[i].resp, cut ? len - 8 : 0, 5, false };
            fx f;
            fx_init(&f, script_split, &sc);
            rec r;
            rec_init(&r, &f, "/a");
            CHECK(rec_run(&r));
            if (r.err != ERR_UPSTREAM || r.nhead != cases[i].nhead || !strstr(r.msg, cases[i].msg) ||
                r.body.len != strlen(cases[i].body) || (r.body.len && memcmp(r.body.p, cases[i].body, r.body.len) != 0))
                test_fail(__FILE__, __LINE__, "case %zu cut %d: %s, %d heads, %zu body bytes, \"%s\"", i, cut,
                          err_name(r.err), r.nhead, r.body.len, r.msg);
            CHECK_INT(r.ndone, 1);
            CHECK_INT(h1client_idle_conns(f.h), 0);
            rec_free(&r);
            fx_done(&f);
        }
    }
}

TEST(h1_connection_lost_mid_response)
{
    static const char *const resps[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
        "HTTP/1.1 200 OK\r\nContent-Le",
    };
    for (size_t i = 0; i < countof(resps); i++) {
        fx f;
        fx_init(&f, script_fixed_then_close, resps[i]);
        rec r;
        rec_init(&r, &f, "/a");
        CHECK(rec_run(&r));
        CHECK_INT(r.err, ERR_UPSTREAM);
        CHECK(strstr(r.msg, "connection closed before the response was complete") != NULL);
        CHECK_INT(r.nhead, i < 2 ? 1 : 0);
        rec_free(&r);
        fx_done(&f);
    }
}

/* A head of exactly n bytes: status line, Content-Length: 0, padding. */
static char *head_of(size_t n, const char *status_line)
{
    char *p = malloc(n + 1);
    size_t sl = strlen(status_line);
    const char *cl = "Content-Length: 0\r\n";
    size_t pad = n - sl - strlen(cl) - strlen("X-Pad: \r\n\r\n");
    size_t w = 0;
    memcpy(p + w, status_line, sl), w += sl;
    memcpy(p + w, cl, strlen(cl)), w += strlen(cl);
    memcpy(p + w, "X-Pad: ", 7), w += 7;
    memset(p + w, 'x', pad), w += pad;
    memcpy(p + w, "\r\n\r\n", 5), w += 4;
    CHECK_INT(w, n);
    return p;
}

TEST(h1_head_size_limit)
{
    char *exact = head_of(UPSTREAM_MAX_HEAD_BYTES, "HTTP/1.1 200 OK\r\n");
    char *over = head_of(UPSTREAM_MAX_HEAD_BYTES + 1, "HTTP/1.1 200 OK\r\n");
    /* 1xx heads count too: 10000 bytes of 103, then a 7000-byte final head. */
    char *early = head_of(10000, "HTTP/1.1 103 Early Hints\r\n");
    char *fin = head_of(7000, "HTTP/1.1 200 OK\r\n");
    char *both = malloc(17001);
    memcpy(both, early, 10000);
    memcpy(both + 10000, fin, 7001);
    struct {
        const char *resp;
        err_code want;
    } cases[] = { { exact, ERR_OK }, { over, ERR_UPSTREAM }, { both, ERR_UPSTREAM }, { fin, ERR_OK } };
    for (size_t i = 0; i < countof(cases); i++) {
        for (int split = 0; split < 2; split++) {
            split_case sc = { cases[i].resp, split ? 5000 : 0, 5, false };
            fx f;
            fx_init(&f, script_split, &sc);
            rec r;
            rec_init(&r, &f, "/a");
            CHECK(rec_run(&r));
            if (r.err != cases[i].want)
                test_fail(__FILE__, __LINE__, "case %zu split %d: %s \"%s\"", i, split, err_name(r.err), r.msg);
            if (cases[i].want == ERR_UPSTREAM) {
                CHECK(strstr(r.msg, "response head larger than 16384 bytes") != NULL);
                CHECK_INT(r.nhead, 0);
            }
            rec_free(&r);
            fx_done(&f);
        }
    }
    free(exact);
    free(over);
    free(early);
    free(fin);
    free(both);
}

/* ---------------------------------------------------------------- pause, cancel, abort, close */

static unsigned char pat(size_t i) { return (unsigned char)((i * 7u + (i >> 9)) & 0xffu); }

static char *patterned_response(size_t n, size_t *len)
{
    char head[128];
    int hl = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
    char *p = malloc((size_t)hl + n + 1);
    memcpy(p, head, (size_t)hl);
    for (size_t i = 0; i < n; i++)
        p[hl + (int)i] = (char)(pat(i) ? pat(i) : 1);
    p[(size_t)hl + n] = '\0';
    *len = (size_t)hl + n;
    return p;
}

static bool body_ok(const buf *b, size_t n)
{
    if (b->len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)b->p[i] != (pat(i) ? pat(i) : 1))
            return false;
    return true;
}

static bool is_paused(void *arg) { return ((rec *)arg)->paused; }

TEST(h1_pause_keeps_buffered_bytes)
{
    size_t len;
    char *resp = patterned_response(60000, &len); /* arrives in one read: more than one piece */
    fx f;
    fx_init(&f, script_fixed, resp);
    rec r;
    rec_init(&r, &f, "/a");
    r.pause_each = true;
    CHECK_INT(rec_start(&r), ERR_OK);
    for (int rounds = 0; rounds < 20 && r.ndone == 0; rounds++) {
        CHECK(run_until(&f.loop, is_paused, &r, 2000) || r.ndone);
        if (r.ndone)
            break;
        int seen = r.ndata;
        run_for(&f.loop, 30);
        CHECK_INT(r.ndata, seen); /* nothing while paused */
        CHECK_INT(r.ndone, 0);
        r.paused = false;
        upstream_resume(r.call);
        upstream_resume(r.call); /* twice is harmless */
        CHECK_INT(r.ndata, seen); /* never from inside upstream_resume */
        CHECK(run_until(&f.loop, rec_is_done, &r, 100) || r.paused);
    }
    CHECK(run_until(&f.loop, rec_is_done, &r, 2000));
    CHECK_INT(r.err, ERR_OK);
    CHECK_INT(r.first_piece, H1CLIENT_MAX_PIECE);
    CHECK(r.ndata >= 4);
    CHECK(body_ok(&r.body, 60000)); /* every byte once, in order */
    CHECK_INT(r.data_while_paused, 0);
    CHECK_INT(r.done_while_paused, 0);
    CHECK_INT(h1client_idle_conns(f.h), 1);
    rec_free(&r);
    free(resp);
    fx_done(&f);
}

TEST(h1_pause_then_eof_of_close_delimited_body)
{
    split_case sc = { "HTTP/1.1 200 OK\r\n\r\nfirst,second", 25, 30, true };
    fx f;
    fx_init(&f, script_split, &sc);
    rec r;
    rec_init(&r, &f, "/a");
    r.pause_at_data = 1;
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, is_paused, &r, 2000));
    run_for(&f.loop, 100); /* the rest and the EOF are sent meanwhile */
    CHECK_INT(r.ndone, 0);
    r.paused = false;
    upstream_resume(r.call);
    CHECK(run_until(&f.loop, rec_is_done, &r, 2000));
    CHECK_INT(r.err, ERR_OK);
    CHECK_MEM(r.body.p, r.body.len, "first,second");
    rec_free(&r);
    fx_done(&f);
}

static const char two_chunks[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n";

TEST(h1_cancel_in_every_callback)
{
    enum { ON_HEAD, ON_DATA1, ON_DATA2, ON_DONE };
    for (int where = ON_HEAD; where <= ON_DONE; where++) {
        for (int start_new = 0; start_new < 2; start_new++) {
            /* Split after the first chunk, so there is a second on_data. */
            split_case sc = { two_chunks, strlen(two_chunks) - 15, 20, false };
            fx f;
            fx_init(&f, script_split, &sc);
            rec r, next;
            rec_init(&r, &f, "/a");
            rec_init(&next, &f, "/b");
            if (start_new)
                r.start_in_cb = &next;
            if (where == ON_HEAD)
                r.cancel_on_head = true;
            else if (where == ON_DATA1)
                r.cancel_at_data = 1;
            else if (where == ON_DATA2)
                r.cancel_at_data = 2;
            else
                r.cancel_in_done = true;
            CHECK_INT(rec_start(&r), ERR_OK);
            run_for(&f.loop, 150);
            CHECK_INT(r.nhead, 1);
            CHECK_INT(r.ndata, where == ON_HEAD ? 0 : where == ON_DATA1 ? 1 : 2);
            CHECK_INT(r.ndone, where == ON_DONE ? 1 : 0);
            if (start_new && where != ON_DONE) {
                CHECK(run_until(&f.loop, rec_is_done, &next, 2000));
                CHECK_INT(next.err, ERR_OK);
                CHECK_MEM(next.body.p, next.body.len, "onetwo");
            }
            CHECK_INT(h1client_active(f.h), 0);
            /* The client goes on working. */
            CHECK(rec_run(&next));
            CHECK_INT(next.err, ERR_OK);
            rec_free(&r);
            rec_free(&next);
            fx_done(&f);
        }
    }
}

TEST(h1_abort_and_close_in_callbacks)
{
    enum { ABORT_HEAD, ABORT_DATA, CLOSE_HEAD, CLOSE_DATA, CLOSE_DONE };
    for (int what = ABORT_HEAD; what <= CLOSE_DONE; what++) {
        split_case sc = { two_chunks, strlen(two_chunks) - 15, 20, false };
        fx f;
        fx_init(&f, script_split, &sc);
        rec r, other;
        rec_init(&r, &f, "/a");
        rec_init(&other, &f, "/b");
        r.abort_on_head = what == ABORT_HEAD;
        r.abort_at_data = what == ABORT_DATA ? 1 : 0;
        r.close_on_head = what == CLOSE_HEAD;
        r.close_at_data = what == CLOSE_DATA ? 1 : 0;
        r.close_in_done = what == CLOSE_DONE;
        CHECK_INT(rec_start(&other), ERR_OK); /* in flight when the client closes */
        CHECK_INT(rec_start(&r), ERR_OK);
        run_for(&f.loop, 150);
        if (what <= ABORT_DATA) {
            CHECK_INT(r.ndone, 1);
            CHECK_INT(r.err, ERR_CANCELED);
            CHECK(strstr(r.msg, what == ABORT_HEAD ? "on_head" : "on_data") != NULL);
            CHECK_INT(r.ndata, what == ABORT_HEAD ? 0 : 1);
            CHECK_INT(other.ndone, 1);
        } else {
            CHECK(f.h == NULL);
            CHECK_INT(r.ndone, what == CLOSE_DONE ? 1 : 0);
            CHECK_INT(r.ndata, what == CLOSE_HEAD ? 0 : what == CLOSE_DATA ? 1 : 2);
            CHECK(other.ndone <= 1);
        }
        rec_free(&r);
        rec_free(&other);
        fx_done(&f);
    }
}

TEST(h1_timeouts)
{
    fx f;
    fx_init(&f, script_silent, NULL);
    rec r;
    rec_init(&r, &f, "/a");
    r.req.idle_timeout_ms = 80;
    CHECK(rec_run(&r));
    CHECK_INT(r.err, ERR_TIMEOUT);
    CHECK(strstr(r.msg, "idle timeout") != NULL);
    r.req.idle_timeout_ms = 0;
    r.req.timeout_ms = 80;
    CHECK(rec_run(&r));
    CHECK_INT(r.err, ERR_TIMEOUT);
    CHECK(strstr(r.msg, "timed out after 80 ms") != NULL);
    CHECK_INT(h1client_idle_conns(f.h), 0);
    rec_free(&r);
    fx_done(&f);
}

/* ---------------------------------------------------------------- addresses */

TEST(h1_ipv6_and_localhost)
{
    fx f;
    clear_proxy_env();
    uv_loop_init(&f.loop);
    if (!srv_start_on(&f.srv, &f.loop, "::1", script_fixed, NULL)) {
        printf("    (no IPv6 loopback here: h1_ipv6_and_localhost skipped)\n");
        CHECK_INT(uv_loop_close(&f.loop), 0);
        return;
    }
    f.h = h1client_new(&f.loop);
    rec r;
    rec_init(&r, &f, "/");
    /* localhost: 127.0.0.1 is refused, then ::1 answers (and is preferred). */
    static const char *const urls[] = { "http://[::1]:%d/v6", "http://localhost:%d/v6", "http://localhost:%d/v6" };
    for (size_t i = 0; i < countof(urls); i++) {
        snprintf(r.url, sizeof r.url, urls[i], f.srv.port);
        CHECK(rec_run(&r));
        CHECK_INT(r.err, ERR_OK);
        CHECK_MEM(r.body.p, r.body.len, "ok");
    }
    CHECK(strstr(f.srv.last_head, "\r\nHost: localhost:") != NULL);
    CHECK_INT(f.srv.accepts, 2); /* one per origin */
    rec_free(&r);
    fx_done(&f);
}

TEST(h1_connect_refused)
{
    fx f;
    fx_init(&f, script_fixed, NULL);
    uv_tcp_t t;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&f.loop, &t);
    uv_tcp_bind(&t, (const struct sockaddr *)&a, 0);
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len);
    uv_close((uv_handle_t *)&t, NULL);
    run_for(&f.loop, 5);
    rec r;
    rec_init(&r, &f, "/");
    snprintf(r.url, sizeof r.url, "http://127.0.0.1:%d/", ntohs(got.sin_port));
    CHECK(rec_run(&r));
    CHECK_INT(r.err, ERR_UPSTREAM);
    CHECK_STR(r.msg, "connection refused");
    rec_free(&r);
    fx_done(&f);
}

/* ---------------------------------------------------------------- routing and request heads */

/* Runs one request through upstream_start (default routing unless `which`
 * says curl); returns the client that took it (1 = h1) and leaves the
 * server's view in s. */
static int via_upstream(fx *f, const char *which, const char *url, const char *method,
                        const char *const *headers, const char *body, err_code *err)
{
    if (which)
        setenv("GENAIOPS_UPSTREAM_CLIENT", which, 1);
    else
        unsetenv("GENAIOPS_UPSTREAM_CLIENT");
    upstream *u = upstream_new(&f->loop);
    unsetenv("GENAIOPS_UPSTREAM_CLIENT");
    rec r;
    rec_init(&r, f, "/");
    snprintf(r.url, sizeof r.url, "%s", url);
    r.req.method = method;
    r.req.headers = headers;
    r.req.body = body;
    r.req.body_len = body ? strlen(body) : 0;
    int h1 = -1;
    *err = upstream_start(u, &r.req, &rec_cb, &r, &r.call);
    if (*err == ERR_OK) {
        h1 = h1client_owns(r.call);
        CHECK(run_until(&f->loop, rec_is_done, &r, 5000));
        *err = r.err;
    }
    upstream_close(u);
    run_for(&f->loop, 5);
    rec_free(&r);
    return h1;
}

/* The header lines of a request head, without the request line and our
 * "Connection: keep-alive" (libcurl relies on the HTTP/1.1 default),
 * sorted, one per line. */
static void header_set(const char *head, char *out, size_t cap)
{
    char lines[64][256];
    size_t n = 0;
    const char *p = strstr(head, "\r\n");
    while (p && n < 64) {
        p += 2;
        const char *e = strstr(p, "\r\n");
        if (!e || e == p)
            break;
        snprintf(lines[n], sizeof lines[n], "%.*s", (int)(e - p), p);
        if (strcmp(lines[n], "Connection: keep-alive") != 0)
            n++;
        p = e;
    }
    qsort(lines, n, sizeof lines[0], (int (*)(const void *, const void *))strcmp);
    size_t w = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(out + w, cap - w, "%s\n", lines[i]);
        if (k > 0 && (size_t)k < cap - w)
            w += (size_t)k;
    }
}

TEST(h1_request_heads_match_libcurl)
{
    static const char *const none[] = { NULL };
    static const char *const json[] = { "Content-Type: application/json", "Authorization: Bearer k", NULL };
    static const char *const custom[] = { "Host: other.example", "Accept:", "X-Empty:   ", "Expect: 100-continue",
                                          "X-Keep: 1", NULL };
    static const char *const close[] = { "Connection: close", "accept: text/plain", NULL };
    static const struct {
        const char *method, *path, *body;
        const char *const *headers;
        const char *line; /* the request line h1 must send */
    } cases[] = {
        { NULL, "/v1/models", NULL, none, "GET /v1/models HTTP/1.1" },
        { NULL, "/v1/chat/completions", "{\"a\":1}", json, "POST /v1/chat/completions HTTP/1.1" },
        { "POST", "", NULL, none, "POST / HTTP/1.1" },
        { "PUT", "/x?y=1&z", "abc", none, "PUT /x?y=1&z HTTP/1.1" },
        { "DELETE", "/x", NULL, custom, "DELETE /x HTTP/1.1" },
        { "GET", "?q#frag", NULL, close, "GET /?q HTTP/1.1" },
        { "OPTIONS", "/o", "zz", none, "OPTIONS /o HTTP/1.1" },
        { "HEAD", "/h", NULL, none, "HEAD /h HTTP/1.1" },
    };
    fx f;
    fx_init(&f, script_fixed, NULL);
    for (size_t i = 0; i < countof(cases); i++) {
        char url[160], a[2048], b[2048], line[256];
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", f.srv.port, cases[i].path);
        err_code e;
        CHECK_INT(via_upstream(&f, NULL, url, cases[i].method, cases[i].headers, cases[i].body, &e), 1);
        CHECK_INT(e, ERR_OK);
        const char *eol = strstr(f.srv.last_head, "\r\n");
        snprintf(line, sizeof line, "%.*s", eol ? (int)(eol - f.srv.last_head) : 0, f.srv.last_head);
        CHECK_STR(line, cases[i].line);
        header_set(f.srv.last_head, a, sizeof a);
        CHECK_INT(via_upstream(&f, "curl", url, cases[i].method, cases[i].headers, cases[i].body, &e), 0);
        CHECK_INT(e, ERR_OK);
        header_set(f.srv.last_head, b, sizeof b);
        if (strcmp(a, b) != 0)
            test_fail(__FILE__, __LINE__, "case %zu: h1 sent\n%slibcurl sent\n%s", i, a, b);
    }
    fx_done(&f);
}

TEST(h1_routing)
{
    static const char *const ae[] = { "Accept-Encoding: gzip", NULL };
    static const char *const ae_empty[] = { "Accept-Encoding:", NULL };
    static const char *const te[] = { "Transfer-Encoding: chunked", NULL };
    static const char *const cl[] = { "Content-Length: 0", NULL };
    static const struct {
        const char *url;          /* %d = the server's port */
        const char *const *headers;
        const char *method;
        const char *env, *value;  /* an environment variable set for the case */
        int h1;                   /* 1 = h1, 0 = libcurl, -1 = refused */
    } cases[] = {
        { "http://127.0.0.1:%d/a", NULL, NULL, NULL, NULL, 1 },
        { "HTTP://127.0.0.1:%d/a", NULL, NULL, NULL, NULL, 1 },
        { "http://localhost:%d/a", NULL, NULL, NULL, NULL, 1 },
        { "http://127.0.0.1:%d/a", NULL, NULL, "GENAIOPS_UPSTREAM_CLIENT", "curl", 0 },
        { "http://127.0.0.1:%d/a", NULL, NULL, "GENAIOPS_UPSTREAM_CLIENT", "h1", 1 },
        { "http://127.0.0.1:%d/a", ae, NULL, NULL, NULL, 0 },
        { "http://127.0.0.1:%d/a", ae_empty, NULL, NULL, NULL, 1 },
        { "http://127.0.0.1:%d/a", te, "POST", NULL, NULL, 0 },
        { "http://127.0.0.1:%d/a", cl, "POST", NULL, NULL, 0 },
        { "http://user:pw@127.0.0.1:%d/a", NULL, NULL, NULL, NULL, 0 },
        { "http://127.0.0.1:%d/a/../b", NULL, NULL, NULL, NULL, 0 },
        { "http://127.0.0.1:%d/./b", NULL, NULL, NULL, NULL, 0 },
        { "http://127.0.0.1:%d/%%c3%%bc\xc3\xbc", NULL, NULL, NULL, NULL, 0 },
        { "http://127.1:%d/a", NULL, NULL, NULL, NULL, 0 },
        { "http://127.0.0.1:%d9999/a", NULL, NULL, NULL, NULL, -1 },
        { "http://127.0.0.1:/a%d", NULL, NULL, NULL, NULL, 0 },
        { "http://127.0.0.1:%d/a", NULL, NULL, "http_proxy", "http://127.0.0.1:9", 0 },
        { "http://127.0.0.1:%d/a", NULL, NULL, "http_proxy", "", 1 },
        { "http://127.0.0.1:%d/a", NULL, NULL, "HTTP_PROXY", "http://127.0.0.1:9", 1 },
        { "http://127.0.0.1:%d/a", NULL, NULL, "all_proxy", "socks5://127.0.0.1:9", 0 },
        { "http://127.0.0.1:%d/a", NULL, NULL, "ALL_PROXY", "http://127.0.0.1:9", 0 },
        { "https://127.0.0.1:%d/a", NULL, NULL, NULL, NULL, 0 },
    };
    fx f;
    fx_init(&f, script_fixed, NULL);
    const char *saved = getenv("GENAIOPS_UPSTREAM_CLIENT");
    char *keep = saved ? strdup(saved) : NULL;
    unsetenv("GENAIOPS_UPSTREAM_CLIENT");
    for (size_t i = 0; i < countof(cases); i++) {
        if (cases[i].env)
            setenv(cases[i].env, cases[i].value, 1);
        upstream *u = upstream_new(&f.loop);
        rec r;
        rec_init(&r, &f, "/");
        snprintf(r.url, sizeof r.url, cases[i].url, f.srv.port);
        r.req.headers = cases[i].headers;
        r.req.method = cases[i].method;
        r.req.timeout_ms = 500; /* https to our plain server hangs in the TLS handshake */
        err_code e = upstream_start(u, &r.req, &rec_cb, &r, &r.call);
        int got = e != ERR_OK ? -1 : h1client_owns(r.call);
        if (got != cases[i].h1)
            test_fail(__FILE__, __LINE__, "case %zu (%s): %d, expected %d", i, r.url, got, cases[i].h1);
        if (e == ERR_OK)
            run_until(&f.loop, rec_is_done, &r, 3000);
        if (cases[i].env)
            unsetenv(cases[i].env);
        upstream_close(u);
        run_for(&f.loop, 5);
        rec_free(&r);
    }
    if (keep)
        setenv("GENAIOPS_UPSTREAM_CLIENT", keep, 1);
    free(keep);
    fx_done(&f);
}

/* With http_proxy pointing at our server (which then sees the absolute
 * form), each no_proxy value must lead both clients to the same choice:
 * direct or through the proxy. */
TEST(h1_proxy_decision_matches_libcurl)
{
    static const char *const noproxy[] = {
        NULL, "", "*", "127.0.0.1", " 10.0.0.1 , 127.0.0.1 ", "127.0.0.0/8", "127.0.0.2/32",
        "10.0.0.0/8", "localhost", ".localhost", "localhost.", "example.com,127.0.0.1/33", "127.0.0.1/0",
        "*,x", "127.0.0.", "127.0.0.1:80",
    };
    static const char *const hosts[] = { "127.0.0.1", "localhost" };
    fx f;
    fx_init(&f, script_fixed, NULL);
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", f.srv.port);
    unsetenv("NO_PROXY");
    for (size_t h = 0; h < countof(hosts); h++) {
        for (size_t i = 0; i < countof(noproxy); i++) {
            setenv("http_proxy", proxy, 1);
            if (noproxy[i])
                setenv("no_proxy", noproxy[i], 1);
            else
                unsetenv("no_proxy");
            char url[128], t1[512], t2[512];
            snprintf(url, sizeof url, "http://%s:%d/p", hosts[h], f.srv.port);
            err_code e;
            int c1 = via_upstream(&f, NULL, url, NULL, NULL, NULL, &e);
            CHECK_INT(e, ERR_OK);
            snprintf(t1, sizeof t1, "%s", f.srv.last_target);
            via_upstream(&f, "curl", url, NULL, NULL, NULL, &e);
            CHECK_INT(e, ERR_OK);
            snprintf(t2, sizeof t2, "%s", f.srv.last_target);
            bool direct = strcmp(t1, "/p") == 0;
            if (strcmp(t1, t2) != 0 || c1 != (direct ? 1 : 0))
                test_fail(__FILE__, __LINE__, "%s no_proxy=%s: h1 routing %d sent %s, libcurl sent %s", hosts[h],
                          noproxy[i] ? noproxy[i] : "(unset)", c1, t1, t2);
        }
    }
    unsetenv("http_proxy");
    unsetenv("no_proxy");
    fx_done(&f);
}

TEST(h1_start_refusals)
{
    fx f;
    fx_init(&f, script_fixed, NULL);
    rec r;
    rec_init(&r, &f, "/a");
    upstream_call *c = (upstream_call *)(void *)&r;
    CHECK_INT(h1client_start(NULL, &r.req, "GET", &rec_cb, &r, &c), ERR_INVAL);
    CHECK_INT(h1client_start(f.h, &r.req, NULL, &rec_cb, &r, &c), ERR_INVAL);
    upstream_callbacks no_done = { rec_head, rec_data, NULL };
    CHECK_INT(h1client_start(f.h, &r.req, "GET", &no_done, &r, &c), ERR_INVAL);
    static const char *const crlf[] = { "X-A: 1\r\nX-B: 2", NULL };
    r.req.headers = crlf;
    CHECK_INT(h1client_start(f.h, &r.req, "GET", &rec_cb, &r, &c), ERR_UNSUPPORTED);
    r.req.headers = NULL;
    r.req.body = "x";
    r.req.body_len = 1;
    CHECK_INT(h1client_start(f.h, &r.req, "HEAD", &rec_cb, &r, &c), ERR_UNSUPPORTED);
    CHECK_INT(h1client_active(f.h), 0);
    CHECK_INT(h1client_active(NULL), 0);
    CHECK_INT(h1client_idle_conns(NULL), 0);
    h1client_close(NULL);
    h1client_set_pool(NULL, 1, 1);
    run_for(&f.loop, 20);
    CHECK_INT(r.nhead + r.ndata + r.ndone, 0);
    CHECK_INT(f.srv.accepts, 0);
    h1client_close(f.h);
    CHECK_INT(h1client_start(f.h, &r.req, "GET", &rec_cb, &r, &c), ERR_INVAL);
    f.h = NULL;
    rec_free(&r);
    fx_done(&f);
}
