/*
 * fuzz_h1client.c - libFuzzer driver for the response side of h1client.c
 * (head parsing, 1xx skipping, framing, de-chunking, pause/resume, pieces).
 * It includes the .c to reach pump() and feeds a call struct directly, with
 * no socket. Input: byte 0 = flags (bit0 HEAD request, bit1 pause on every
 * piece, bit2 end with EOF), byte 1 = slice seed, then the response bytes.
 * Each input is run twice - whole, and cut into slices chosen by the seed -
 * and both runs must agree on status, body bytes and result; callbacks must
 * come in order (head before data, done exactly once).
 */
#include "../../src/http/h1client.c"

typedef struct out {
    int nhead, ndone, status;
    err_code err;
    buf body;
    bool pause;
    bool paused;
} out;

static int o_head(void *ud, int st, const upstream_header *hv, size_t nh)
{
    out *o = ud;
    if (o->nhead++ || o->ndone || o->body.len)
        abort();
    o->status = st;
    for (size_t i = 0; i < nh; i++) /* views must be readable */
        if ((hv[i].name.len && !hv[i].name.p) || (hv[i].value.len && !hv[i].value.p) ||
            memchr(hv[i].name.p, '\n', hv[i].name.len))
            abort();
    return 0;
}

static int o_data(void *ud, const char *p, size_t n)
{
    out *o = ud;
    if (!o->nhead || o->ndone || o->paused || n == 0 || n > H1CLIENT_MAX_PIECE)
        abort();
    buf_append(&o->body, p, n);
    if (o->pause) {
        o->paused = true;
        return UPSTREAM_PAUSE;
    }
    return UPSTREAM_CONTINUE;
}

static void o_done(void *ud, err_code e, const char *msg)
{
    out *o = ud;
    if (o->ndone++ || (e == ERR_OK && o->paused) || (e != ERR_OK && !msg))
        abort();
    o->err = e;
}

static const upstream_callbacks ocb = { o_head, o_data, o_done };

static uv_loop_t loop;
static h1client *h;

/* Keeps pumping while the call pauses (an immediate resume). */
static bool pump_all(h1call *c, out *o)
{
    for (;;) {
        if (!pump(c))
            return false;
        if (!c->s.paused)
            return true;
        o->paused = false;
        c->s.paused = false;
    }
}

static void run(const uint8_t *d, size_t n, uint8_t flags, unsigned seed, out *o)
{
    memset(o, 0, sizeof *o);
    buf_init(&o->body, 1u << 24);
    o->err = (err_code)-1;
    o->pause = flags & 2;
    h1call *c = call_get(h);
    c->s.cb = ocb;
    c->s.ud = o;
    c->s.head_method = flags & 1;
    http_chunked_init(&c->s.chunk);
    h->nactive++;
    h1conn k = { 0 };
    k.tcp.data = &k;
    k.h = h;
    k.call = c;
    size_t pos = 0;
    bool alive = true;
    while (alive && pos < n) {
        uv_buf_t b;
        on_alloc((uv_handle_t *)&k.tcp, 65536, &b);
        size_t want = seed ? 1 + (seed * 2654435761u + pos) % (seed % 97 + 1) : n - pos;
        size_t take = MIN(MIN(want, n - pos), b.len);
        if (take == 0)
            abort(); /* the buffer never fills: heads are capped, bodies drained */
        memcpy(b.base, d + pos, take);
        pos += take;
        c->s.r_hi += take;
        c->s.got_bytes = true;
        alive = pump_all(c, o);
    }
    if (alive) { /* the server closes */
        if (c->s.head_done && c->s.mode == BODY_CLOSE) {
            c->s.body_done = true;
            if (pump_all(c, o))
                abort(); /* must have finished */
        } else {
            io_failed(c, UV_EOF);
        }
    }
    if (o->ndone != 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!h) {
        uv_loop_init(&loop);
        h = h1client_new(&loop);
    }
    if (size < 2)
        return 0;
    uint8_t flags = data[0];
    unsigned seed = data[1] ? data[1] : 1;
    out a, b;
    run(data + 2, size - 2, flags, 0, &a);
    run(data + 2, size - 2, flags, seed, &b);
    if (a.err != b.err || a.nhead != b.nhead || a.status != b.status || a.body.len != b.body.len ||
        (a.body.len && memcmp(a.body.p, b.body.p, a.body.len) != 0))
        abort();
    buf_free(&a.body);
    buf_free(&b.body);
    uv_run(&loop, UV_RUN_NOWAIT);
    return 0;
}
