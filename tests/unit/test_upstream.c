/*
 * test_upstream.c - the upstream client against a small HTTP/1.1 server of
 * our own running on the same libuv loop (127.0.0.1, ephemeral port).
 *
 * The server picks its answer from the request path: canned content-length
 * and chunked responses, an echo, 1xx and 429 heads, large bodies, slow
 * trickles, a stall after the first chunk, a server that never answers and
 * one that closes at once. It counts accepted connections so keep-alive
 * reuse can be checked. Each test has its own loop and ends by closing the
 * client and the server and checking that uv_loop_close() succeeds, i.e.
 * that no libuv handle was leaked.
 *
 * Every scenario runs twice (UPSTREAM_TEST): as "name" with the default
 * routing, where these loopback http:// URLs go to the lean HTTP/1.1 client
 * (h1client.c; rec_start checks that they do), and as "name_curl" with
 * GENAIOPS_UPSTREAM_CLIENT=curl, where everything goes to libcurl. Requests
 * that only libcurl serves (https, a proxy, Accept-Encoding, host names) go
 * to libcurl in both runs.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>
#include "test.h"
#include "core/buf.h"
#include "http/upstream.h"
#include "http/h1client.h"

/* ---------------------------------------------------------------- server */

typedef struct tsrv tsrv;

typedef struct tconn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    tsrv *s;
    struct tconn *next;
    char in[65536];
    size_t inlen;
    int left;          /* trickle chunks still to send */
    int seq;
    bool busy;         /* a response is still being produced */
    bool closing;
    int open_handles;
} tconn;

struct tsrv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    int accepts;
    int requests;
    char last_target[256];
    tconn *conns;
};

typedef struct wreq {
    uv_write_t req;
    char *data;
} wreq;

static const unsigned char gzip_hello[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48,
    0xcd, 0xc9, 0xc9, 0x57, 0x48, 0xaf, 0xca, 0x2c, 0x50, 0x28, 0xcf, 0x2f,
    0xca, 0x49, 0x01, 0x00, 0x6b, 0x7d, 0xe8, 0xb7, 0x10, 0x00, 0x00, 0x00,
}; /* "hello gzip world" */

static unsigned char pattern(size_t i) { return (unsigned char)((i * 31u + (i >> 8)) & 0xffu); }

static void conn_handle_closed(uv_handle_t *h)
{
    tconn *c = h->data;
    if (--c->open_handles == 0)
        free(c);
}

static void conn_close(tconn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    for (tconn **pp = &c->s->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void on_written(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    free(w->data);
    free(w);
}

static void conn_write(tconn *c, const void *p, size_t n)
{
    if (c->closing || n == 0)
        return;
    wreq *w = malloc(sizeof *w);
    w->data = malloc(n);
    memcpy(w->data, p, n);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
        free(w->data);
        free(w);
    }
}

static void conn_printf(tconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_printf(tconn *c, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        conn_write(c, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void conn_process(tconn *c);

static void on_trickle(uv_timer_t *t)
{
    tconn *c = t->data;
    if (c->left > 0) {
        char piece[32];
        int n = snprintf(piece, sizeof piece, "t%02d;", c->seq++);
        conn_printf(c, "%x\r\n%s\r\n", n, piece);
        c->left--;
        return;
    }
    uv_timer_stop(t);
    conn_write(c, "0\r\n\r\n", 5);
    c->busy = false;
    conn_process(c);
}

/* Value of request header `name` (case-insensitive) copied into out, or "none". */
static void req_header(sv head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    snprintf(out, cap, "none");
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
            snprintf(out, cap, "%.*s", (int)vl, v);
            return;
        }
        p = eol + 1;
    }
}

static void respond(tconn *c, const char *method, const char *path, sv head, sv body)
{
    c->s->requests++;
    snprintf(c->s->last_target, sizeof c->s->last_target, "%s", path);
    if (strncmp(path, "http://", 7) == 0) { /* absolute form: we are the proxy */
        const char *slash = strchr(path + 7, '/');
        path = slash ? slash : "/";
    }
    int a = 0, b = 0;
    if (strcmp(path, "/cl") == 0) {
        conn_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Test: a\r\n"
                       "Content-Length: 11\r\n\r\nhello world");
    } else if (strcmp(path, "/chunked") == 0) {
        conn_printf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nhel\r\n3\r\nlo \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n");
    } else if (strcmp(path, "/echo") == 0) {
        char expect[128], custom[128], ae[128];
        req_header(head, "Expect", expect, sizeof expect);
        req_header(head, "X-Custom", custom, sizeof custom);
        req_header(head, "Accept-Encoding", ae, sizeof ae);
        conn_printf(c, "HTTP/1.1 200 OK\r\nX-Method: %s\r\nX-Expect: %s\r\nX-Custom: %s\r\n"
                       "X-AE: %s\r\nContent-Length: %zu\r\n\r\n",
                    method, expect, custom, ae, body.len);
        conn_write(c, body.p, body.len);
    } else if (strcmp(path, "/gzip") == 0) {
        char ae[128];
        req_header(head, "Accept-Encoding", ae, sizeof ae);
        if (strstr(ae, "gzip")) {
            conn_printf(c, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n",
                        sizeof gzip_hello);
            conn_write(c, gzip_hello, sizeof gzip_hello);
        } else {
            conn_printf(c, "HTTP/1.1 406 Not Acceptable\r\nContent-Length: 0\r\n\r\n");
        }
    } else if (strcmp(path, "/1xx") == 0) {
        conn_printf(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                       "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    } else if (strcmp(path, "/429") == 0) {
        conn_printf(c, "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                       "retry-after:   7  \r\nContent-Length: 2\r\n\r\n{}");
    } else if (strcmp(path, "/fold") == 0) {
        conn_printf(c, "HTTP/1.1 200 OK\r\nX-Fold: a\r\n   b\r\nX-After: c\r\nContent-Length: 0\r\n\r\n");
    } else if (strcmp(path, "/hugehdr") == 0) {
        conn_printf(c, "HTTP/1.1 200 OK\r\n");
        char pad[1100];
        memset(pad, 'x', 1000);
        pad[1000] = 0;
        for (int i = 0; i < 20; i++)
            conn_printf(c, "X-Pad-%d: %s\r\n", i, pad);
        conn_printf(c, "Content-Length: 0\r\n\r\n");
    } else if (sscanf(path, "/big/%d", &a) == 1 && a > 0) {
        conn_printf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", a);
        unsigned char *p = malloc((size_t)a);
        for (size_t i = 0; i < (size_t)a; i++)
            p[i] = pattern(i);
        conn_write(c, p, (size_t)a);
        free(p);
    } else if (sscanf(path, "/bigchunked/%d", &a) == 1 && a > 0) {
        conn_printf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        unsigned char p[1000];
        for (size_t off = 0; off < (size_t)a; off += sizeof p) {
            size_t n = (size_t)a - off < sizeof p ? (size_t)a - off : sizeof p;
            for (size_t i = 0; i < n; i++)
                p[i] = pattern(off + i);
            conn_printf(c, "%zx\r\n", n);
            conn_write(c, p, n);
            conn_write(c, "\r\n", 2);
        }
        conn_write(c, "0\r\n\r\n", 5);
    } else if (sscanf(path, "/trickle/%d/%d", &a, &b) == 2) {
        conn_printf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        c->left = a;
        c->seq = 0;
        c->busy = true;
        uv_timer_start(&c->timer, on_trickle, (uint64_t)b, (uint64_t)b);
    } else if (strcmp(path, "/stall") == 0) {
        conn_printf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n");
        c->busy = true;
    } else if (strcmp(path, "/never") == 0) {
        c->busy = true;
    } else if (strcmp(path, "/close") == 0) {
        conn_close(c);
    } else {
        conn_printf(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
}

/* Answers every complete request in the input buffer, one at a time. */
static void conn_process(tconn *c)
{
    if (c->inlen > 0 && !(c->in[0] >= 'A' && c->in[0] <= 'Z')) {
        conn_close(c); /* not HTTP/1 (a TLS hello, say) */
        return;
    }
    while (!c->closing && !c->busy) {
        char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
        if (!end)
            return;
        size_t hlen = (size_t)(end - c->in) + 4;
        sv head = { c->in, hlen };
        char cl[32];
        req_header(head, "Content-Length", cl, sizeof cl);
        long blen = strcmp(cl, "none") == 0 ? 0 : strtol(cl, NULL, 10);
        if (blen < 0 || hlen + (size_t)blen > sizeof c->in) {
            conn_close(c);
            return;
        }
        if (c->inlen < hlen + (size_t)blen)
            return;
        char method[16] = "", path[256] = "";
        if (sscanf(c->in, "%15s %255s", method, path) != 2) {
            conn_close(c);
            return;
        }
        respond(c, method, path, head, (sv){ c->in + hlen, (size_t)blen });
        if (c->closing)
            return;
        size_t used = hlen + (size_t)blen;
        memmove(c->in, c->in + used, c->inlen - used);
        c->inlen -= used;
    }
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    tconn *c = h->data;
    size_t room = sizeof c->in - c->inlen;
    *b = uv_buf_init(c->in + c->inlen, (unsigned)room);
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    tconn *c = st->data;
    if (n < 0 || (n == 0 && c->inlen == sizeof c->in)) {
        conn_close(c);
        return;
    }
    c->inlen += (size_t)n;
    conn_process(c);
}

static void on_accept(uv_stream_t *ls, int status)
{
    tsrv *s = ls->data;
    if (status < 0)
        return;
    tconn *c = calloc(1, sizeof *c);
    c->s = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
        uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
        return;
    }
    s->accepts++;
    c->next = s->conns;
    s->conns = c;
    uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
}

static int tcp_port(uv_tcp_t *t)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void srv_start(tsrv *s, uv_loop_t *loop)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    CHECK_INT(uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0), 0);
    CHECK_INT(uv_listen((uv_stream_t *)&s->listener, 128, on_accept), 0);
    s->port = tcp_port(&s->listener);
}

static void srv_close(tsrv *s)
{
    while (s->conns)
        conn_close(s->conns);
    uv_close((uv_handle_t *)&s->listener, NULL);
}

/* A port on which nothing listens (bound, then closed again). */
static int free_port(uv_loop_t *loop)
{
    uv_tcp_t t;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(loop, &t);
    uv_tcp_bind(&t, (const struct sockaddr *)&addr, 0);
    int port = tcp_port(&t);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return port;
}

/* ---------------------------------------------------------------- clients */

/* Which client the scenario runs against: true = default routing (h1). */
static bool want_h1;

/* Runs fn with GENAIOPS_UPSTREAM_CLIENT set to `which` (NULL = unset),
 * restoring the previous value afterwards. The variable is read by
 * upstream_new, so it applies to every client the scenario creates. */
static void with_client(const char *which, void (*fn)(void))
{
    const char *old = getenv("GENAIOPS_UPSTREAM_CLIENT");
    char *saved = old ? strdup(old) : NULL;
    if (which)
        setenv("GENAIOPS_UPSTREAM_CLIENT", which, 1);
    else
        unsetenv("GENAIOPS_UPSTREAM_CLIENT");
    want_h1 = which == NULL;
    fn();
    if (saved)
        setenv("GENAIOPS_UPSTREAM_CLIENT", saved, 1);
    else
        unsetenv("GENAIOPS_UPSTREAM_CLIENT");
    free(saved);
    want_h1 = false;
}

/* A scenario registered twice: "name" (default routing) and "name_curl". */
#define UPSTREAM_TEST(name)                                                   \
    static void scenario_##name(void);                                        \
    TEST(name) { with_client(NULL, scenario_##name); }                        \
    TEST(name##_curl) { with_client("curl", scenario_##name); }               \
    static void scenario_##name(void)

/* ---------------------------------------------------------------- fixture */

typedef struct fx {
    uv_loop_t loop;
    tsrv srv;
    upstream *u;
} fx;

static void tick(uv_timer_t *t) { UNUSED(t); }

/* Runs the loop until pred(arg) holds or ms pass; returns pred's last value. */
static bool run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, tick, 2, 2); /* so that UV_RUN_ONCE always comes back */
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

/* Proxy variables of the environment would catch our loopback requests. */
static void hermetic_env(void)
{
    static const char *const vars[] = { "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy" };
    for (size_t i = 0; i < countof(vars); i++)
        if (getenv(vars[i])) {
            setenv("no_proxy", "127.0.0.1,localhost", 1);
            return;
        }
}

static void fx_init(fx *f)
{
    upstream_global_init();
    hermetic_env();
    uv_loop_init(&f->loop);
    srv_start(&f->srv, &f->loop);
    f->u = upstream_new(&f->loop);
    CHECK(f->u != NULL);
}

/* Closes client and server and checks that every libuv handle went away. */
static void fx_done(fx *f)
{
    if (f->u)
        upstream_close(f->u);
    srv_close(&f->srv);
    for (int i = 0; i < 3000 && uv_loop_alive(&f->loop); i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    CHECK(!uv_loop_alive(&f->loop));
    CHECK_INT(uv_loop_close(&f->loop), 0);
}

static void fx_url(fx *f, char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "http://127.0.0.1:%d%s", f->srv.port, path);
}

/* ---------------------------------------------------------------- recorder */

typedef struct rec {
    fx *f;
    upstream_call *call;
    char url[128];
    upstream_request req;
    /* what happened */
    int status, nhead, ndata, ndone;
    err_code err;
    bool had_msg;
    char msg[256];
    char headers[8192];
    size_t hlen;
    char retry_after[32];
    buf body;
    int data_while_paused, done_while_paused, data_before_head;
    int npauses;
    uint64_t t_start, t_done, t_paused;
    /* what to do */
    int abort_on_head;
    int abort_data_at;          /* UPSTREAM_ABORT at this on_data (1-based) */
    int cancel_self_at;         /* upstream_cancel(self) at this on_data */
    upstream_call **cancel_other;
    int close_client_at;        /* upstream_close at this on_data */
    bool pause_each;
    bool paused;
    struct rec *start_on_head;  /* start this recorder from inside on_head */
    int chain_left;             /* start again from on_done this many times */
    int chain_ok;
    bool close_in_done;         /* upstream_close from inside on_done */
    bool cancel_self_in_done;   /* upstream_cancel(self) inside on_done: a no-op */
    upstream_call **cancel_on_head; /* upstream_cancel this from inside on_head */
} rec;

static upstream_callbacks rec_cb;

static void rec_init(rec *r, fx *f, const char *path)
{
    memset(r, 0, sizeof *r);
    r->f = f;
    fx_url(f, r->url, sizeof r->url, path);
    r->req.url = r->url;
    r->err = (err_code)-1;
    buf_init(&r->body, 40u << 20);
}

static void rec_free(rec *r) { buf_free(&r->body); }

static bool proxy_in_env(void)
{
    return getenv("http_proxy") || getenv("all_proxy") || getenv("ALL_PROXY");
}

/* True when the default routing must send r to the h1 client: plain http
 * to 127.0.0.1, no Accept-Encoding (and no proxy, see rec_start). */
static bool routes_to_h1(const rec *r)
{
    if (strncmp(r->req.url, "http://127.0.0.1:", 17) != 0)
        return false;
    for (size_t i = 0; r->req.headers && r->req.headers[i]; i++)
        if (strncasecmp(r->req.headers[i], "Accept-Encoding:", 16) == 0)
            return false;
    return true;
}

static err_code rec_start(rec *r)
{
    r->t_start = uv_now(&r->f->loop);
    err_code e = upstream_start(r->f->u, &r->req, &rec_cb, r, &r->call);
    if (e == ERR_OK && !proxy_in_env() && h1client_owns(r->call) != (want_h1 && routes_to_h1(r)))
        test_fail(__FILE__, __LINE__, "%s went to the %s client", r->req.url,
                  h1client_owns(r->call) ? "h1" : "curl");
    return e;
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
        if (sv_ieq_cstr(h[i].name, "Retry-After"))
            snprintf(r->retry_after, sizeof r->retry_after, "%.*s", SV_FMT(h[i].value));
    }
    if (r->start_on_head)
        CHECK_INT(rec_start(r->start_on_head), ERR_OK);
    if (r->cancel_on_head)
        upstream_cancel(*r->cancel_on_head);
    return r->abort_on_head;
}

static int rec_data(void *ud, const char *p, size_t n)
{
    rec *r = ud;
    if (r->paused)
        r->data_while_paused++;
    if (r->nhead == 0)
        r->data_before_head++;
    r->ndata++;
    CHECK_INT(buf_append(&r->body, p, n), ERR_OK);
    if (r->cancel_self_at && r->ndata == r->cancel_self_at)
        upstream_cancel(r->call);
    if (r->cancel_other && r->ndata == 1)
        upstream_cancel(*r->cancel_other);
    if (r->close_client_at && r->ndata == r->close_client_at) {
        upstream_close(r->f->u);
        r->f->u = NULL;
    }
    if (r->abort_data_at && r->ndata == r->abort_data_at)
        return UPSTREAM_ABORT;
    if (r->pause_each) {
        r->paused = true;
        r->npauses++;
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
    r->had_msg = msg != NULL;
    snprintf(r->msg, sizeof r->msg, "%s", msg ? msg : "");
    r->t_done = uv_now(&r->f->loop);
    if (r->cancel_self_in_done)
        upstream_cancel(r->call);
    if (r->close_in_done) {
        upstream_close(r->f->u);
        r->f->u = NULL;
    }
    if (r->chain_left > 0) {
        if (e == ERR_OK && r->status == 200 && r->body.len == 11)
            r->chain_ok++;
        r->chain_left--;
        buf_reset(&r->body);
        r->status = 0;
        r->ndone = 0;
        r->err = (err_code)-1;
        CHECK_INT(rec_start(r), ERR_OK); /* from on_done: must be allowed */
    }
}

static upstream_callbacks rec_cb = { rec_head, rec_data, rec_done };

static bool rec_is_done(void *arg) { return ((rec *)arg)->ndone > 0; }

static bool has_header(const rec *r, const char *line)
{
    return strstr(r->headers, line) != NULL;
}

static bool body_is_pattern(const buf *b, size_t n)
{
    if (b->len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)b->p[i] != pattern(i))
            return false;
    return true;
}

/* ---------------------------------------------------------------- tests */

UPSTREAM_TEST(upstream_content_length)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/cl");
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(r.call != NULL);
    CHECK_INT(upstream_active(f.u), 1);
    CHECK_INT(r.ndone + r.nhead, 0); /* nothing from inside upstream_start */
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_OK);
    CHECK(!r.had_msg);
    CHECK_INT(r.nhead, 1);
    CHECK_INT(r.status, 200);
    CHECK(has_header(&r, "X-Test: a\n"));
    CHECK(has_header(&r, "Content-Length: 11\n"));
    CHECK(has_header(&r, "Content-Type: text/plain\n"));
    CHECK_MEM(r.body.p, r.body.len, "hello world");
    CHECK_INT(r.data_before_head, 0);
    CHECK_INT(upstream_active(f.u), 0);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_chunked_with_trailer)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/chunked");
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_OK);
    CHECK_INT(r.nhead, 1); /* the trailer does not make a second head */
    CHECK(has_header(&r, "Transfer-Encoding: chunked\n"));
    CHECK(!has_header(&r, "X-Trailer"));
    CHECK_MEM(r.body.p, r.body.len, "hello world");
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_post_echo_headers_no_expect)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/echo");
    /* Over 1 KiB: libcurl would add "Expect: 100-continue" on its own. */
    char body[3000];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)('a' + i % 26);
    const char *hdrs[] = { "X-Custom: v1", "Expect: 100-continue", "Content-Type: application/json", NULL };
    r.req.method = "POST";
    r.req.headers = hdrs;
    r.req.body = body;
    r.req.body_len = sizeof body;
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_OK);
    CHECK_INT(r.status, 200);
    CHECK(has_header(&r, "X-Method: POST\n"));
    CHECK(has_header(&r, "X-Expect: none\n"));
    CHECK(has_header(&r, "X-Custom: v1\n"));
    CHECK(has_header(&r, "X-AE: none\n")); /* accept-encoding not forced */
    CHECK(r.body.len == sizeof body && memcmp(r.body.p, body, sizeof body) == 0);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_methods)
{
    static const struct {
        const char *method;
        const char *body;
        const char *want;
    } cases[] = {
        { NULL, NULL, "X-Method: GET\n" },
        { NULL, "x", "X-Method: POST\n" },
        { "GET", NULL, "X-Method: GET\n" },
        { "POST", NULL, "X-Method: POST\n" },
        { "DELETE", NULL, "X-Method: DELETE\n" },
        { "PUT", "abc", "X-Method: PUT\n" },
    };
    fx f;
    fx_init(&f);
    for (size_t i = 0; i < countof(cases); i++) {
        rec r;
        rec_init(&r, &f, "/echo");
        r.req.method = cases[i].method;
        r.req.body = cases[i].body;
        r.req.body_len = cases[i].body ? strlen(cases[i].body) : 0;
        CHECK_INT(rec_start(&r), ERR_OK);
        CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
        CHECK_INT(r.err, ERR_OK);
        if (!has_header(&r, cases[i].want))
            test_fail(__FILE__, __LINE__, "case %zu: no \"%s\" in\n%s", i, cases[i].want, r.headers);
        CHECK_INT(r.body.len, r.req.body_len);
        rec_free(&r);
    }
    fx_done(&f);
}

UPSTREAM_TEST(upstream_accept_encoding_decoded_by_curl)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/gzip");
    const char *hdrs[] = { "Accept-Encoding: gzip", NULL };
    r.req.headers = hdrs;
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_OK);
    CHECK_INT(r.status, 200);
    CHECK(has_header(&r, "Content-Encoding: gzip\n"));
    CHECK_MEM(r.body.p, r.body.len, "hello gzip world");
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_interim_heads_skipped)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/1xx");
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_OK);
    CHECK_INT(r.nhead, 1);
    CHECK_INT(r.status, 200);
    CHECK(!has_header(&r, "Link"));
    CHECK_MEM(r.body.p, r.body.len, "ok");
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_retry_after_visible)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/429");
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_OK); /* an HTTP error status is still a finished call */
    CHECK_INT(r.status, 429);
    CHECK_STR(r.retry_after, "7"); /* value trimmed, name matched case-insensitively */
    CHECK_MEM(r.body.p, r.body.len, "{}");
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_obs_fold_joined)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/fold");
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_OK);
    CHECK(has_header(&r, "X-Fold: a b\nX-After: c\n"));
    CHECK_INT(r.body.len, 0);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_head_too_large_refused)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/hugehdr");
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_UPSTREAM);
    CHECK_INT(r.nhead, 0);
    CHECK_INT(r.ndata, 0);
    CHECK(strstr(r.msg, "larger than 16384") != NULL);
    rec_free(&r);
    fx_done(&f);
}

static bool chain_done(void *arg)
{
    rec *r = arg;
    return r->chain_left == 0 && r->ndone > 0;
}

UPSTREAM_TEST(upstream_sequential_calls_reuse_connection)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/cl");
    r.chain_left = 19; /* 20 calls, each started from the previous on_done */
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, chain_done, &r, 10000));
    CHECK_INT(r.chain_ok, 19);
    CHECK_INT(r.err, ERR_OK);
    CHECK_INT(f.srv.requests, 20);
    CHECK_INT(f.srv.accepts, 1);
    /* Later calls, after the loop went idle, still use the same connection. */
    rec r2;
    rec_init(&r2, &f, "/chunked");
    CHECK_INT(rec_start(&r2), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r2, 5000));
    CHECK_INT(r2.err, ERR_OK);
    CHECK_INT(f.srv.accepts, 1);
    rec_free(&r);
    rec_free(&r2);
    fx_done(&f);
}

typedef struct many {
    rec r[50];
} many;

static bool all_done(void *arg)
{
    many *m = arg;
    for (size_t i = 0; i < countof(m->r); i++)
        if (m->r[i].ndone == 0)
            return false;
    return true;
}

UPSTREAM_TEST(upstream_fifty_concurrent_calls)
{
    fx f;
    fx_init(&f);
    many *m = calloc(1, sizeof *m);
    for (size_t i = 0; i < countof(m->r); i++) {
        rec_init(&m->r[i], &f, i % 2 ? "/big/5000" : "/bigchunked/7000");
        CHECK_INT(rec_start(&m->r[i]), ERR_OK);
    }
    CHECK_INT(upstream_active(f.u), 50);
    CHECK(run_until(&f.loop, all_done, m, 10000));
    for (size_t i = 0; i < countof(m->r); i++) {
        CHECK_INT(m->r[i].err, ERR_OK);
        CHECK_INT(m->r[i].ndone, 1);
        CHECK(body_is_pattern(&m->r[i].body, i % 2 ? 5000 : 7000));
    }
    CHECK_INT(upstream_active(f.u), 0);
    CHECK(f.srv.accepts >= 1 && f.srv.accepts <= 50);
    CHECK_INT(f.srv.requests, 50);
    /* A second wave reuses the cached connections instead of opening more. */
    int before = f.srv.accepts;
    for (size_t i = 0; i < countof(m->r); i++) {
        rec_free(&m->r[i]);
        rec_init(&m->r[i], &f, "/cl");
        CHECK_INT(rec_start(&m->r[i]), ERR_OK);
    }
    CHECK(run_until(&f.loop, all_done, m, 10000));
    for (size_t i = 0; i < countof(m->r); i++)
        CHECK_INT(m->r[i].err, ERR_OK);
    CHECK(f.srv.accepts <= 50);
    CHECK(f.srv.accepts - before < 50);
    for (size_t i = 0; i < countof(m->r); i++)
        rec_free(&m->r[i]);
    free(m);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_connect_refused)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/cl");
    snprintf(r.url, sizeof r.url, "http://127.0.0.1:%d/cl", free_port(&f.loop));
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_UPSTREAM);
    CHECK(r.had_msg && r.msg[0]);
    CHECK_INT(r.nhead, 0);
    CHECK_INT(upstream_active(f.u), 0);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_server_closes_at_once)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/close");
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_UPSTREAM);
    CHECK(r.had_msg);
    CHECK_INT(r.nhead, 0);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_total_timeout)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/never");
    r.req.timeout_ms = 200;
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_TIMEOUT);
    CHECK(r.had_msg);
    uint64_t took = r.t_done - r.t_start;
    CHECK(took >= 190 && took < 2000);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_total_timeout_mid_body)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/trickle/100/20");
    r.req.timeout_ms = 250;
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_TIMEOUT);
    CHECK(r.ndata >= 2);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_idle_timeout_after_first_chunk)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/stall");
    r.req.idle_timeout_ms = 150;
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_TIMEOUT);
    CHECK(strstr(r.msg, "idle") != NULL);
    CHECK_INT(r.nhead, 1);
    CHECK_MEM(r.body.p, r.body.len, "first");
    uint64_t took = r.t_done - r.t_start;
    CHECK(took >= 140 && took < 2000);
    CHECK_INT(upstream_active(f.u), 0);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_idle_timeout_before_first_byte)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/never");
    r.req.idle_timeout_ms = 120;
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_TIMEOUT);
    CHECK_INT(r.nhead, 0);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_idle_timer_reset_by_each_byte)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/trickle/10/40"); /* ~440 ms in all, a byte every 40 ms */
    r.req.idle_timeout_ms = 150;
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_OK);
    CHECK(r.t_done - r.t_start >= 300);
    CHECK_MEM(r.body.p, r.body.len, "t00;t01;t02;t03;t04;t05;t06;t07;t08;t09;");
    rec_free(&r);
    fx_done(&f);
}

/* Resumes every paused recorder of a set after `delay` ms of pause. */
typedef struct resumer {
    uv_timer_t t;
    rec **recs;
    size_t n;
    uint64_t delay;
    int resumes;
} resumer;

static void on_resume_tick(uv_timer_t *t)
{
    resumer *rs = t->data;
    uint64_t now = uv_now(t->loop);
    for (size_t i = 0; i < rs->n; i++) {
        rec *r = rs->recs[i];
        if (r->paused && r->ndone == 0 && now - r->t_paused >= rs->delay) {
            r->paused = false;
            rs->resumes++;
            upstream_resume(r->call);
            upstream_resume(r->call); /* twice is harmless */
        }
    }
}

static void resumer_start(resumer *rs, uv_loop_t *loop, rec **recs, size_t n, uint64_t delay)
{
    memset(rs, 0, sizeof *rs);
    rs->recs = recs;
    rs->n = n;
    rs->delay = delay;
    uv_timer_init(loop, &rs->t);
    rs->t.data = rs;
    uv_timer_start(&rs->t, on_resume_tick, 1, 1);
}

static void resumer_stop(resumer *rs) { uv_close((uv_handle_t *)&rs->t, NULL); }

static void pause_resume_case(const char *path, size_t n)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, path);
    r.pause_each = true;
    r.req.idle_timeout_ms = 2000;
    rec *list[] = { &r };
    resumer rs;
    resumer_start(&rs, &f.loop, list, 1, 0);
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 10000));
    CHECK_INT(r.err, ERR_OK);
    CHECK(body_is_pattern(&r.body, n)); /* every byte, in order, exactly once */
    CHECK(r.npauses >= 5);
    CHECK_INT(r.data_while_paused, 0);
    CHECK_INT(r.done_while_paused, 0);
    CHECK(rs.resumes >= r.npauses - 1);
    resumer_stop(&rs);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_pause_resume_content_length)
{
    pause_resume_case("/big/300000", 300000);
}

UPSTREAM_TEST(upstream_pause_resume_chunked)
{
    pause_resume_case("/bigchunked/200000", 200000);
}

UPSTREAM_TEST(upstream_pause_resume_many_concurrent)
{
    fx f;
    fx_init(&f);
    rec rs_[8];
    rec *list[8];
    for (size_t i = 0; i < 8; i++) {
        rec_init(&rs_[i], &f, i % 2 ? "/big/100000" : "/bigchunked/100000");
        rs_[i].pause_each = true;
        list[i] = &rs_[i];
    }
    resumer rs;
    resumer_start(&rs, &f.loop, list, 8, 1);
    for (size_t i = 0; i < 8; i++)
        CHECK_INT(rec_start(&rs_[i]), ERR_OK);
    for (size_t i = 0; i < 8; i++) {
        CHECK(run_until(&f.loop, rec_is_done, &rs_[i], 10000));
        CHECK_INT(rs_[i].err, ERR_OK);
        CHECK(body_is_pattern(&rs_[i].body, 100000));
        CHECK_INT(rs_[i].data_while_paused, 0);
        CHECK_INT(rs_[i].done_while_paused, 0);
    }
    resumer_stop(&rs);
    for (size_t i = 0; i < 8; i++)
        rec_free(&rs_[i]);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_pause_on_last_bytes_holds_done)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/cl");
    r.pause_each = true;
    rec *list[] = { &r };
    resumer rs;
    resumer_start(&rs, &f.loop, list, 1, 150);
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_OK);
    CHECK_INT(r.done_while_paused, 0);
    CHECK_INT(rs.resumes, 1);
    CHECK(r.t_done - r.t_paused >= 140); /* on_done only after the resume */
    CHECK_MEM(r.body.p, r.body.len, "hello world");
    resumer_stop(&rs);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_paused_call_times_out_total_not_idle)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/big/300000");
    r.pause_each = true;       /* and never resumed */
    r.req.idle_timeout_ms = 80; /* does not run while paused */
    r.req.timeout_ms = 400;
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_TIMEOUT);
    CHECK(strstr(r.msg, "idle") == NULL);
    CHECK_INT(r.npauses, 1);
    CHECK_INT(r.data_while_paused, 0);
    CHECK(r.t_done - r.t_start >= 390);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_resume_when_not_paused_is_harmless)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/trickle/3/10");
    CHECK_INT(rec_start(&r), ERR_OK);
    upstream_resume(r.call);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_OK);
    CHECK_MEM(r.body.p, r.body.len, "t00;t01;t02;");
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_cancel_inside_on_data)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/trickle/20/15");
    r.cancel_self_at = 2;
    CHECK_INT(rec_start(&r), ERR_OK);
    run_for(&f.loop, 600);
    CHECK_INT(r.ndata, 2);
    CHECK_INT(r.ndone, 0);
    CHECK_INT(upstream_active(f.u), 0);
    /* The client is still usable. */
    rec r2;
    rec_init(&r2, &f, "/cl");
    CHECK_INT(rec_start(&r2), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r2, 5000));
    CHECK_INT(r2.err, ERR_OK);
    rec_free(&r);
    rec_free(&r2);
    fx_done(&f);
}

static void cancel_later(uv_timer_t *t)
{
    rec *r = t->data;
    upstream_cancel(r->call);
    upstream_cancel(NULL);
    uv_close((uv_handle_t *)t, NULL);
}

UPSTREAM_TEST(upstream_cancel_from_loop_mid_body)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/trickle/30/15");
    CHECK_INT(rec_start(&r), ERR_OK);
    uv_timer_t t;
    uv_timer_init(&f.loop, &t);
    t.data = &r;
    uv_timer_start(&t, cancel_later, 100, 0);
    run_for(&f.loop, 200);
    int seen = r.ndata;
    CHECK(seen >= 1 && seen < 30);
    run_for(&f.loop, 300);
    CHECK_INT(r.ndata, seen); /* nothing after the cancel */
    CHECK_INT(r.ndone, 0);
    CHECK_INT(upstream_active(f.u), 0);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_cancel_other_call_inside_callback)
{
    fx f;
    fx_init(&f);
    rec a, b;
    rec_init(&a, &f, "/trickle/3/10");
    rec_init(&b, &f, "/never");
    a.cancel_other = &b.call;
    CHECK_INT(rec_start(&b), ERR_OK);
    CHECK_INT(rec_start(&a), ERR_OK);
    CHECK_INT(upstream_active(f.u), 2);
    CHECK(run_until(&f.loop, rec_is_done, &a, 5000));
    run_for(&f.loop, 100);
    CHECK_INT(a.err, ERR_OK);
    CHECK_INT(b.ndone + b.nhead + b.ndata, 0);
    CHECK_INT(upstream_active(f.u), 0);
    rec_free(&a);
    rec_free(&b);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_abort_from_on_head)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/cl");
    r.abort_on_head = 1;
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_CANCELED);
    CHECK_INT(r.nhead, 1);
    CHECK_INT(r.ndata, 0);
    CHECK_INT(r.ndone, 1);
    run_for(&f.loop, 50);
    CHECK_INT(r.ndone, 1);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_abort_from_on_data)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/trickle/10/10");
    r.abort_data_at = 2;
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_CANCELED);
    CHECK_INT(r.ndata, 2);
    run_for(&f.loop, 150);
    CHECK_INT(r.ndata, 2);
    CHECK_INT(r.ndone, 1);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_start_from_inside_on_head)
{
    fx f;
    fx_init(&f);
    rec a, b;
    rec_init(&a, &f, "/429");
    rec_init(&b, &f, "/cl");
    a.abort_on_head = 1;        /* e.g. give up on a 429 ... */
    a.start_on_head = &b;       /* ... and try elsewhere, from inside the callback */
    CHECK_INT(rec_start(&a), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &b, 5000));
    CHECK(run_until(&f.loop, rec_is_done, &a, 5000));
    CHECK_INT(a.err, ERR_CANCELED);
    CHECK_INT(b.err, ERR_OK);
    CHECK_MEM(b.body.p, b.body.len, "hello world");
    CHECK_INT(upstream_active(f.u), 0);
    rec_free(&a);
    rec_free(&b);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_close_inside_on_data)
{
    fx f;
    fx_init(&f);
    rec a, b;
    rec_init(&a, &f, "/trickle/10/10");
    rec_init(&b, &f, "/trickle/10/10");
    a.close_client_at = 1;
    CHECK_INT(rec_start(&a), ERR_OK);
    CHECK_INT(rec_start(&b), ERR_OK);
    run_for(&f.loop, 300);
    CHECK(f.u == NULL);
    CHECK_INT(a.ndata, 1);
    CHECK_INT(a.ndone + b.ndone, 0);
    CHECK(b.ndata <= 1);
    rec_free(&a);
    rec_free(&b);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_close_with_calls_in_flight)
{
    fx f;
    fx_init(&f);
    rec r[5];
    for (size_t i = 0; i < 5; i++) {
        rec_init(&r[i], &f, i < 3 ? "/never" : "/trickle/50/10");
        CHECK_INT(rec_start(&r[i]), ERR_OK);
    }
    run_for(&f.loop, 60);
    CHECK_INT(upstream_active(f.u), 5);
    upstream_close(f.u);
    upstream_close(NULL);
    f.u = NULL;
    run_for(&f.loop, 100);
    for (size_t i = 0; i < 5; i++) {
        CHECK_INT(r[i].ndone, 0);
        rec_free(&r[i]);
    }
    fx_done(&f);
}

UPSTREAM_TEST(upstream_bad_requests_refused)
{
    static const char *const hdr_crlf[] = { "X-A: 1\r\nX-Injected: 1", NULL };
    static const char *const hdr_nocolon[] = { "NoColon", NULL };
    static const char *const hdr_noname[] = { ": v", NULL };
    static const char *const hdr_space[] = { "Bad Name: v", NULL };
    static const char *const hdr_lf[] = { "X-A: 1\n", NULL };
    static const struct {
        const char *url, *method;
        const char *const *headers;
        const char *body;
        size_t body_len;
        long ct, to, idle;
    } cases[] = {
        { NULL, NULL, NULL, NULL, 0, 0, 0, 0 },
        { "ftp://127.0.0.1/x", NULL, NULL, NULL, 0, 0, 0, 0 },
        { "file:///etc/passwd", NULL, NULL, NULL, 0, 0, 0, 0 },
        { "127.0.0.1:80/x", NULL, NULL, NULL, 0, 0, 0, 0 },
        { "http://", NULL, NULL, NULL, 0, 0, 0, 0 },
        { "http://exa mple.com/", NULL, NULL, NULL, 0, 0, 0, 0 },
        { "", NULL, NULL, NULL, 0, 0, 0, 0 },
        { "http://h/", "PO ST", NULL, NULL, 0, 0, 0, 0 },
        { "http://h/", "", NULL, NULL, 0, 0, 0, 0 },
        { "http://h/", "GET\r\n", NULL, NULL, 0, 0, 0, 0 },
        { "http://h/", NULL, hdr_crlf, NULL, 0, 0, 0, 0 },
        { "http://h/", NULL, hdr_nocolon, NULL, 0, 0, 0, 0 },
        { "http://h/", NULL, hdr_noname, NULL, 0, 0, 0, 0 },
        { "http://h/", NULL, hdr_space, NULL, 0, 0, 0, 0 },
        { "http://h/", NULL, hdr_lf, NULL, 0, 0, 0, 0 },
        { "http://h/", "POST", NULL, NULL, 5, 0, 0, 0 },
        { "http://h/", NULL, NULL, NULL, 0, -1, 0, 0 },
        { "http://h/", NULL, NULL, NULL, 0, 0, -1, 0 },
        { "http://h/", NULL, NULL, NULL, 0, 0, 0, -1 },
    };
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/cl");
    for (size_t i = 0; i < countof(cases); i++) {
        upstream_request q = { .method = cases[i].method, .url = cases[i].url,
                               .headers = cases[i].headers, .body = cases[i].body,
                               .body_len = cases[i].body_len, .connect_timeout_ms = cases[i].ct,
                               .timeout_ms = cases[i].to, .idle_timeout_ms = cases[i].idle };
        upstream_call *c = (upstream_call *)&r; /* must be overwritten with NULL */
        err_code e = upstream_start(f.u, &q, &rec_cb, &r, &c);
        if (e != ERR_INVAL)
            test_fail(__FILE__, __LINE__, "case %zu: %s, expected INVAL", i, err_name(e));
        CHECK(c == NULL);
    }
    /* API misuse */
    upstream_call *c = NULL;
    upstream_request ok = { .url = r.url };
    upstream_callbacks no_done = { rec_head, rec_data, NULL };
    CHECK_INT(upstream_start(f.u, &ok, &no_done, &r, &c), ERR_INVAL);
    CHECK_INT(upstream_start(f.u, NULL, &rec_cb, &r, &c), ERR_INVAL);
    CHECK_INT(upstream_start(f.u, &ok, NULL, &r, &c), ERR_INVAL);
    CHECK_INT(upstream_start(f.u, &ok, &rec_cb, &r, NULL), ERR_INVAL);
    CHECK_INT(upstream_start(NULL, &ok, &rec_cb, &r, &c), ERR_INVAL);
    CHECK_INT(upstream_active(f.u), 0);
    run_for(&f.loop, 50);
    CHECK_INT(r.nhead + r.ndata + r.ndone, 0); /* no callback after a refused start */
    CHECK_INT(f.srv.accepts, 0);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_start_after_close_refused)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    upstream *u = upstream_new(&loop);
    CHECK(u != NULL);
    upstream_close(u);
    /* u is still allocated until the loop runs the close callbacks */
    upstream_call *c = NULL;
    upstream_request q = { .url = "http://127.0.0.1:1/" };
    CHECK_INT(upstream_start(u, &q, &rec_cb, NULL, &c), ERR_INVAL);
    CHECK(c == NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
    CHECK(upstream_new(NULL) == NULL);
    CHECK_INT(upstream_active(NULL), 0);
    upstream_resume(NULL);
    upstream_cancel(NULL);
}

UPSTREAM_TEST(upstream_env_proxy_honoured)
{
    fx f;
    fx_init(&f);
    static const char *const vars[] = { "http_proxy", "no_proxy", "NO_PROXY", "ALL_PROXY", "all_proxy" };
    char *saved[countof(vars)];
    for (size_t i = 0; i < countof(vars); i++) {
        const char *v = getenv(vars[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(vars[i]);
    }
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", f.srv.port);
    setenv("http_proxy", proxy, 1);
    rec r;
    rec_init(&r, &f, "/cl");
    snprintf(r.url, sizeof r.url, "http://provider.invalid/cl");
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_OK);
    CHECK_MEM(r.body.p, r.body.len, "hello world");
    CHECK_STR(f.srv.last_target, "http://provider.invalid/cl"); /* absolute form: via the proxy */
    for (size_t i = 0; i < countof(vars); i++) {
        if (saved[i])
            setenv(vars[i], saved[i], 1);
        else
            unsetenv(vars[i]);
        free(saved[i]);
    }
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_tls_failure_is_upstream_error)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/cl");
    snprintf(r.url, sizeof r.url, "https://127.0.0.1:%d/cl", f.srv.port); /* plain server */
    r.req.timeout_ms = 4000;
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_UPSTREAM);
    CHECK(r.had_msg && r.msg[0]);
    CHECK_INT(r.nhead, 0);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_optional_callbacks_null)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/big/50000");
    upstream_callbacks only_done = { NULL, NULL, rec_done };
    CHECK_INT(upstream_start(f.u, &r.req, &only_done, &r, &r.call), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_OK);
    CHECK_INT(r.body.len, 0);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_cancel_paused_and_resume_queued)
{
    fx f;
    fx_init(&f);
    rec a, b;
    rec_init(&a, &f, "/big/300000");
    rec_init(&b, &f, "/big/300000");
    a.pause_each = b.pause_each = true;
    CHECK_INT(rec_start(&a), ERR_OK);
    CHECK_INT(rec_start(&b), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &a, 300) == false);
    CHECK(a.paused && b.paused);
    upstream_cancel(a.call);      /* paused, libcurl may hold bytes for it */
    upstream_resume(b.call);      /* queued ... */
    upstream_cancel(b.call);      /* ... and canceled before the loop ran it */
    upstream_resume(b.call);      /* stale handle use after cancel: ignored */
    CHECK_INT(upstream_active(f.u), 0);
    run_for(&f.loop, 100);
    CHECK_INT(a.ndata, 1);
    CHECK_INT(b.ndata, 1);
    CHECK_INT(a.ndone + b.ndone, 0);
    rec_free(&a);
    rec_free(&b);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_close_with_paused_call)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/bigchunked/300000");
    r.pause_each = true;
    CHECK_INT(rec_start(&r), ERR_OK);
    run_for(&f.loop, 200);
    CHECK(r.paused);
    upstream_close(f.u);
    f.u = NULL;
    run_for(&f.loop, 50);
    CHECK_INT(r.ndone, 0);
    rec_free(&r);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_cancel_deferred_start_inside_callback)
{
    fx f;
    fx_init(&f);
    rec a, b;
    rec_init(&a, &f, "/cl");
    rec_init(&b, &f, "/cl");
    a.start_on_head = &b;       /* started while libcurl is on the stack ... */
    a.cancel_on_head = &b.call; /* ... and canceled before it was ever added */
    CHECK_INT(rec_start(&a), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &a, 5000));
    run_for(&f.loop, 100);
    CHECK_INT(a.err, ERR_OK);
    CHECK_INT(b.nhead + b.ndata + b.ndone, 0);
    CHECK_INT(f.srv.requests, 1);
    CHECK_INT(upstream_active(f.u), 0);
    rec_free(&a);
    rec_free(&b);
    fx_done(&f);
}

UPSTREAM_TEST(upstream_close_and_cancel_inside_on_done)
{
    fx f;
    fx_init(&f);
    rec a, b;
    rec_init(&a, &f, "/cl");
    rec_init(&b, &f, "/never");
    a.cancel_self_in_done = true;
    a.close_in_done = true;
    CHECK_INT(rec_start(&a), ERR_OK);
    CHECK_INT(rec_start(&b), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &a, 5000));
    CHECK_INT(a.err, ERR_OK);
    CHECK(f.u == NULL);
    run_for(&f.loop, 50);
    CHECK_INT(a.ndone, 1);
    CHECK_INT(b.ndone, 0); /* closed without callbacks */
    rec_free(&a);
    rec_free(&b);
    fx_done(&f);
}

/* A listener that never accepts, its backlog filled: Linux drops further
 * SYNs, so a connect to it hangs until the connect timeout. */
UPSTREAM_TEST(upstream_connect_timeout)
{
    fx f;
    fx_init(&f);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    CHECK_INT(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_INT(listen(lfd, 0), 0);
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    int fill[4];
    for (size_t i = 0; i < countof(fill); i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&a, sizeof a);
    }
    usleep(50000);
    rec r;
    rec_init(&r, &f, "/cl");
    snprintf(r.url, sizeof r.url, "http://127.0.0.1:%d/cl", ntohs(a.sin_port));
    r.req.connect_timeout_ms = 200;
    CHECK_INT(rec_start(&r), ERR_OK);
    CHECK(run_until(&f.loop, rec_is_done, &r, 5000));
    CHECK_INT(r.err, ERR_TIMEOUT);
    uint64_t took = r.t_done - r.t_start;
    CHECK(took >= 190 && took < 2000);
    for (size_t i = 0; i < countof(fill); i++)
        close(fill[i]);
    close(lfd);
    rec_free(&r);
    fx_done(&f);
}

static size_t srv_unsent(const tsrv *s)
{
    size_t n = 0;
    for (const tconn *c = s->conns; c; c = c->next)
        n += c->tcp.write_queue_size;
    return n;
}

/* Pausing must stop reading the socket (TCP backpressure), not just stop
 * calling on_data while libcurl buffers the stream in memory. */
UPSTREAM_TEST(upstream_pause_applies_backpressure)
{
    fx f;
    fx_init(&f);
    rec r;
    rec_init(&r, &f, "/big/33554432"); /* 32 MiB: far more than socket buffers hold */
    r.pause_each = true;
    CHECK_INT(rec_start(&r), ERR_OK);
    run_for(&f.loop, 300);
    CHECK_INT(r.npauses, 1);
    CHECK(r.paused);
    size_t unsent = srv_unsent(&f.srv);
    if (unsent < 24u << 20)
        test_fail(__FILE__, __LINE__, "only %zu bytes left unsent: the client kept reading", unsent);
    r.pause_each = false;
    r.paused = false;
    upstream_resume(r.call);
    CHECK(run_until(&f.loop, rec_is_done, &r, 20000));
    CHECK_INT(r.err, ERR_OK);
    CHECK(body_is_pattern(&r.body, 33554432));
    rec_free(&r);
    fx_done(&f);
}
