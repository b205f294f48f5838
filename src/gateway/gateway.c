/*
 * gateway.c - one request through the data plane:
 *
 *   decode -> resolve model -> [attempt: build upstream request in the
 *   provider's API (translating OpenAI <-> Anthropic when they differ) ->
 *   upstream call (curl) or simulator playback -> head -> body or stream]
 *   -> retry with backoff / next fallback on failure -> respond.
 *
 * A gw_call lives in the request's pool. The three things that can call
 * back into it (the upstream call, the simulator playback and the backoff
 * timer) are all stopped before the request is finished, so no callback
 * ever sees a freed call. A client that goes away mid-call cancels the
 * upstream transfer at once (on_abort).
 *
 * Streams: once the first byte of a streamed answer has gone to the client
 * there is no retry; a later failure ends the stream with an error event in
 * the client's API shape, never a silent cut. A slow client pauses the
 * upstream transfer (backpressure) when more than server.max_stream_buffer
 * bytes wait for its socket, and resumes it when they drain.
 *
 * The gateway's own time (x-genaiops-overhead-us) is the request's time
 * minus the time spent waiting on upstreams and backoff.
 */
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include "core/jscan.h"
#include "core/log.h"
#include "api/prompts.h"
#include "api/traces.h"
#include "api/guard.h"
#include "api/evals.h"
#include "api/stats.h"
#include "web/web.h"
#include "gateway/gateway.h"
#include "observe/metrics.h"
#include "gateway/request.h"
#include "http/sse.h"
#include "http/upstream.h"
#include "observe/extract.h"
#include "observe/trace.h"
#include "gateway/prompted.h"
#include "gateway/guarded.h"
#include "guard/guard.h"
#include "providers/anthropic.h"
#include "providers/simplay.h"
#include "providers/simulator.h"

#define MAX_RESPONSE_BYTES (64u << 20)
#define MAX_SSE_EVENT (8u << 20)
#define MAX_RETRY_AFTER_MS 60000
#define GW_MAX_RCHECKS 8
#define MAX_RCHECK_BODY (1u << 20)

struct gateway {
    const config *cfg;
    time_t started;
    _Atomic uint64_t seq;        /* simulator request counter */
    gw_observe obs;              /* tracing, pricing and metrics hooks (may be empty) */
    prompt_server *prompts;      /* served prompts, or NULL */
    const guard_engine *guard;   /* guardrail policies, or NULL */
};

typedef struct gw_worker {
    gateway *g;
    http_worker *hw;
    upstream *up;
    buf prompt_scratch[2];       /* gw_prompt_apply's buffers, kept between requests */
} gw_worker;

typedef struct gw_call {
    http_req *r;
    gw_worker *w;
    gateway *g;
    gw_endpoint ep;              /* the client's endpoint */
    api_format cfmt;             /* the client's API */
    gw_request rq;               /* the client's request (root owned) */
    json_t *as_openai;           /* an Anthropic client's request as OpenAI chat, made once */
    gw_target t[GW_MAX_TARGETS];
    int nt, ti, tries_here, attempts;
    /* the current attempt */
    api_format wire;
    gw_endpoint wire_ep;
    upstream_call *uc;
    sim_call *sc;
    sim_plan plan;
    int status;
    long retry_after_ms;
    buf body;                    /* collected upstream body */
    buf out;                     /* translated stream bytes */
    sse_parser sse;
    bool sse_ready;
    xlate_stream *xs;
    bool streaming_out;          /* the client's stream has started */
    bool saw_end;                /* [DONE] / message_stop seen */
    bool paused;
    bool aborted;
    int in_cb;                   /* inside an upstream/sim callback */
    uv_timer_t *backoff;
    uint64_t up_ns, up_t0;
    err_code last_err;
    int last_status;
    char last_msg[300];
    /* the trace of this request (NULL when not traced) */
    trace_rec *tr;
    span_rec *attempt;           /* the current attempt's span */
    uint64_t unix0, mono0;       /* clocks at the start, to turn monotonic times into unix ones */
    uint64_t overhead_ns;
    char *content;               /* capture area after the record */
    size_t content_cap;
    buf out_text;                /* streamed output text being captured */
    bool keep_trace;             /* sampled for the store (metrics see every request) */
    /* guardrails (gq NULL when no policy applies) */
    guard_req *gq;
    gw_guard_stream *gst;        /* the answer's stream, when output or tool policies apply */
    sse_parser gsse;             /* translated stream bytes, read again as events for gst */
    bool gsse_ready;
    bool gblocked;               /* a guardrail ended the stream */
    buf gout;                    /* guarded stream bytes to send */
    struct gw_rcheck *rc[GW_MAX_RCHECKS]; /* remote checks (harm classifier, webhook) */
    int nrc, rpending;
    guard_stage rstage;          /* the stage the pending remote checks belong to */
    const char *held;            /* an answer waiting for its remote checks */
    size_t held_len;
    int held_status;
    bool admin_key;              /* the request came with the admin key (policies attached to key "admin") */
} gw_call;

/* A remote guardrail check: the harm classifier or the webhook. */
typedef struct gw_rcheck {
    gw_call *c;
    int policy;
    guard_detector det;
    guard_stage st;
    upstream_call *uc;
    sim_call *sc;
    sim_plan plan;
    api_format wire;
    int status;
    buf body;
    uint64_t t0;
    size_t text_len;
} gw_rcheck;

static void attempt_start(gw_call *c);
static void infer_continue(gw_call *c);
static void deliver_send(gw_call *c);
static void guard_spans(gw_call *c, trace_rec *t);
static void send_guard_block(gw_call *c, guard_stage st);
static void guard_header(gw_call *c, bool input_only);
static int remote_start(gw_call *c, guard_stage st, const char *const *texts, const size_t *lens, size_t n);
static bool stage_remote(const gw_call *c, guard_stage st);

/* ---- small helpers ---------------------------------------------------- */

static bool ct_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    if (n != strlen(b))
        return false;
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

static uint64_t add_overhead(http_req *r, uint64_t up_ns)
{
    uint64_t total = http_now_ns() - r->start_ns;
    uint64_t own = total > up_ns ? total - up_ns : 0;
    http_resp_header_u64(r, "x-genaiops-overhead-us", own / 1000);
    return own;
}

static void send_error(http_req *r, api_format fmt, const gw_error *e, uint64_t up_ns)
{
    size_t len;
    char *body = gw_error_body(e, fmt, r->pool, &len);
    if (sv_starts(r->path, SV("/v1/")))
        add_overhead(r, up_ns);
    http_resp_send(r, e->status, "application/json", body, len);
}

static void send_json(http_req *r, int status, json_t *o)
{
    size_t n = json_dumpb(o, NULL, 0, JSON_COMPACT);
    char *s = pool_alloc(r->pool, n + 1);
    if (s)
        json_dumpb(o, s, n, JSON_COMPACT);
    json_decref(o);
    if (!s) {
        gw_error e;
        gw_error_set(&e, 500, "api_error", NULL, NULL, "out of memory");
        send_error(r, API_OPENAI, &e, 0);
        return;
    }
    http_resp_send(r, status, "application/json", s, n);
}

static char *dump_pool(pool *p, json_t *o, size_t *len)
{
    size_t n = json_dumpb(o, NULL, 0, JSON_COMPACT);
    char *s = pool_alloc(p, n + 1);
    if (!s)
        return NULL;
    json_dumpb(o, s, n, JSON_COMPACT);
    s[n] = '\0';
    *len = n;
    return s;
}

/* ---- model resolution ------------------------------------------------- */

/* One reference without fallbacks: a configured model or PROVIDER/MODEL. */
static bool resolve_one(const config *cfg, sv ref, gw_target *t)
{
    const cfg_model *m = config_find_model(cfg, ref);
    if (m) {
        const cfg_provider *p = config_find_provider(cfg, sv_from(m->provider));
        if (!p)
            return false;
        *t = (gw_target){ p, m->upstream_model ? m->upstream_model : m->name, m->name };
        return true;
    }
    const char *slash = memchr(ref.p, '/', ref.len);
    if (!slash || slash == ref.p || (size_t)(slash - ref.p) + 1 >= ref.len)
        return false;
    const cfg_provider *p = config_find_provider(cfg, sv_make(ref.p, (size_t)(slash - ref.p)));
    if (!p)
        return false;
    if (p->type == PROVIDER_SIMULATOR) {
        /* only known modes resolve; an unknown one is a 404 like any model */
        char mode[64];
        size_t n = ref.len - (size_t)(slash - ref.p) - 1;
        if (n >= sizeof mode)
            return false;
        memcpy(mode, slash + 1, n);
        mode[n] = '\0';
        if (!sim_mode_valid(mode))
            return false;
    }
    *t = (gw_target){ p, slash + 1, NULL };
    return true;
}

int gateway_resolve(const gateway *g, sv model, gw_target *out, int max)
{
    const config *cfg = g->cfg;
    const cfg_deployment *d = config_find_deployment(cfg, model);
    if (d)
        model = sv_from(d->model);
    if (max < 1 || !resolve_one(cfg, model, &out[0]))
        return 0;
    /* upstream_model of a PROVIDER/MODEL target points into model's bytes */
    int n = 1;
    const cfg_model *m = config_find_model(cfg, model);
    for (size_t i = 0; m && i < m->nfallbacks && n < max; i++)
        if (resolve_one(cfg, sv_from(m->fallbacks[i]), &out[n]))
            n++;
    return n;
}

/* ---- traces ----------------------------------------------------------- */

static uint64_t unix_of(const gw_call *c, uint64_t mono) { return c->unix0 + (mono - c->mono0); }

static void copy_cstr(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

/* "redacted" capture keeps a message's shape (roles, types, names, ids) and
 * replaces every other string with its length. Writes JSON into out. */
static void redact_json(jval v, const char *key_hint, buf *out, int depth)
{
    static const char *const keep[] = { "role", "type", "name", "id", "tool_call_id", "finish_reason" };
    if (depth > 32) {
        buf_append_str(out, "null");
        return;
    }
    if (v.type == J_OBJECT || v.type == J_ARRAY) {
        buf_append(out, v.type == J_OBJECT ? "{" : "[", 1);
        jscan_iter it;
        jscan_iter_init(&it, v);
        jval k, e;
        bool first = true;
        while (jscan_next(&it, &k, &e)) {
            if (!first)
                buf_append(out, ",", 1);
            first = false;
            char kb[32] = "";
            if (v.type == J_OBJECT) {
                buf_append(out, k.p, k.len);
                buf_append(out, ":", 1);
                size_t kl;
                if (!jscan_string(k, kb, sizeof kb, &kl))
                    kb[0] = '\0';
            }
            redact_json(e, v.type == J_OBJECT ? kb : key_hint, out, depth + 1);
        }
        buf_append(out, v.type == J_OBJECT ? "}" : "]", 1);
        return;
    }
    if (v.type == J_STRING) {
        bool kept = false;
        for (size_t i = 0; key_hint && i < countof(keep); i++)
            kept |= strcmp(key_hint, keep[i]) == 0;
        if (!kept) {
            buf_printf(out, "\"[redacted: %zu bytes]\"", v.len >= 2 ? v.len - 2 : 0);
            return;
        }
    }
    buf_append(out, v.p, v.len);
}

/* Stores a JSON text (the client's messages, the answer) in the capture
 * area as the configured mode wants; returns where, or NULL. */
static const char *capture(gw_call *c, const char *json, size_t len, bool is_json)
{
    const cfg_telemetry *tc = &c->g->cfg->telemetry;
    if (!c->tr || tc->capture_content == CAPTURE_OFF || !json || !len || c->content_cap == 0)
        return NULL;
    buf tmp;
    buf_init(&tmp, 64u << 20);
    if (tc->capture_content == CAPTURE_REDACTED) {
        c->tr->content_redacted = true;
        if (is_json) {
            redact_json(jscan_root(json, len), NULL, &tmp, 0);
        } else {
            buf_printf(&tmp, "\"[redacted: %zu bytes]\"", len);
        }
        json = tmp.p ? tmp.p : "";
        len = tmp.len;
    }
    size_t half = c->content_cap / 2;
    char *dst = c->content + (c->tr->input_messages ? half : 0);
    size_t n = len;
    if (n > half - 1) {
        n = half - 1;
        c->tr->content_truncated = true;
    }
    memcpy(dst, json, n);
    dst[n] = '\0';
    buf_free(&tmp);
    return dst;
}

/* Starts the trace of a request (sampling decides), with its root span. */
static void trace_begin(gw_call *c)
{
    const cfg_telemetry *tc = &c->g->cfg->telemetry;
    if (!c->g->obs.submit && !c->g->obs.observe)
        return;
    /* metrics see every request; sampling decides what is stored */
    bool keep = c->g->obs.submit && tc->traces && tc->sample_rate > 0;
    if (keep && tc->sample_rate < 1) {
        uint32_t rnd;
        if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd)
            rnd = (uint32_t)http_now_ns();
        keep = (double)rnd / 4294967296.0 < tc->sample_rate;
    }
    size_t extra = keep && tc->capture_content != CAPTURE_OFF ? 2 * tc->content_max_bytes + 2 : 0;
    c->tr = trace_new(extra);
    if (!c->tr)
        return;
    c->keep_trace = keep;
    c->content = (char *)(c->tr + 1);
    c->content_cap = extra;
    c->mono0 = c->r->start_ns;
    c->unix0 = trace_unix_of_mono(c->mono0);
    c->tr->start_ns = c->unix0;
    trace_add_span(c->tr, SPAN_REQUEST, c->unix0);
    copy_cstr(c->tr->request_id, sizeof c->tr->request_id, c->r->request_id);
    copy_cstr(c->tr->endpoint, sizeof c->tr->endpoint, c->ep == EP_CHAT ? "/v1/chat/completions"
                                                        : c->ep == EP_COMPLETIONS ? "/v1/completions"
                                                        : c->ep == EP_EMBEDDINGS ? "/v1/embeddings" : "/v1/messages");
    copy_cstr(c->tr->operation, sizeof c->tr->operation, c->ep == EP_COMPLETIONS ? "text_completion"
                                                          : c->ep == EP_EMBEDDINGS ? "embeddings" : "chat");
    buf_init(&c->out_text, tc->content_max_bytes);
}

/* The decoded request's fields; with content, the input as the gateway
 * sends it (after the input guardrails' redactions). A request blocked by
 * the input guardrails is traced without it: what was blocked is not kept. */
static void trace_request(gw_call *c, bool content)
{
    trace_rec *t = c->tr;
    if (!t)
        return;
    const gw_request *q = &c->rq;
    copy_cstr(t->request_model, sizeof t->request_model, q->model);
    t->stream = q->stream;
    t->has_temperature = q->has_temperature, t->temperature = q->temperature;
    t->has_top_p = q->has_top_p, t->top_p = q->top_p;
    t->has_max_tokens = q->has_max_tokens, t->max_tokens = q->max_tokens;
    t->has_seed = q->has_seed, t->seed = q->seed;
    t->has_frequency_penalty = q->has_frequency_penalty, t->frequency_penalty = q->frequency_penalty;
    t->has_presence_penalty = q->has_presence_penalty, t->presence_penalty = q->presence_penalty;
    const cfg_deployment *d = config_find_deployment(c->g->cfg, sv_from(q->model));
    if (d)
        copy_cstr(t->deployment, sizeof t->deployment, d->name);
    if (content)
        t->input_messages = capture(c, q->input_at, q->input_len, true);
}

/* server.address and server.port of a provider's base URL. */
static void url_host(const char *url, char *host, size_t cap, int *port)
{
    *port = 0;
    host[0] = '\0';
    if (!url)
        return;
    bool https = strncmp(url, "https://", 8) == 0;
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    const char *end = h;
    if (*end == '[')
        while (*end && *end != ']')
            end++;
    while (*end && *end != ':' && *end != '/')
        end++;
    size_t n = (size_t)(end - h);
    if (*h == '[' && n > 1)
        h++, n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(host, h, n);
    host[n] = '\0';
    if (*end == ']')
        end++;
    *port = *end == ':' ? (int)strtol(end + 1, NULL, 10) : (https ? 443 : 80);
}

/* url_host, remembered per thread for the last URL: a gateway sends to the
 * same few providers over and over. (Compared by content, not pointer: a
 * reloaded config may put another URL at a freed one's address.) */
static void url_host_memo(const char *url, char *host, size_t cap, int *port)
{
    static _Thread_local char last_url[256], last_host[128];
    static _Thread_local int last_port;
    size_t n = url ? strlen(url) : 0;
    if (n > 0 && n < sizeof last_url && cap >= sizeof last_host && memcmp(url, last_url, n + 1) == 0) {
        memcpy(host, last_host, sizeof last_host);
        *port = last_port;
        return;
    }
    url_host(url, host, cap, port);
    if (n > 0 && n < sizeof last_url && cap >= sizeof last_host) {
        memcpy(last_url, url, n + 1);
        memcpy(last_host, host, sizeof last_host);
        last_port = *port;
    }
}

static void trace_attempt_begin(gw_call *c, const gw_target *t, uint64_t now)
{
    if (!c->tr)
        return;
    c->attempt = trace_add_span(c->tr, SPAN_ATTEMPT, unix_of(c, now));
    if (!c->attempt)
        return;
    copy_cstr(c->attempt->provider, sizeof c->attempt->provider, t->prov->name);
    copy_cstr(c->attempt->model, sizeof c->attempt->model, t->upstream_model);
    if (t->prov->type != PROVIDER_SIMULATOR)
        url_host_memo(t->prov->base_url, c->attempt->server_address, sizeof c->attempt->server_address,
                      &c->attempt->server_port);
}

static void trace_attempt_end(gw_call *c, err_code e, int status, uint64_t now)
{
    span_rec *s = c->attempt;
    if (!s)
        return;
    s->end_ns = unix_of(c, now);
    s->http_status = status;
    if (e == ERR_TIMEOUT)
        copy_cstr(s->error_type, sizeof s->error_type, "timeout");
    else if (e == ERR_CANCELED)
        copy_cstr(s->error_type, sizeof s->error_type, "canceled");
    else if (e != ERR_OK)
        copy_cstr(s->error_type, sizeof s->error_type, "connection_error");
    else if (status >= 400)
        snprintf(s->error_type, sizeof s->error_type, "%d", status);
    c->attempt = NULL;
}

/* Usage from a complete body in the wire's API; with tx (an OpenAI body
 * the client gets as it is), the answer's texts for its guardrails from
 * the same walk (tx->complete false when there was none). */
static void trace_response(gw_call *c, const char *body, size_t len, extract_texts *tx)
{
    if (tx)
        tx->complete = false;
    if (!c->tr)
        return;
    if (c->wire == API_ANTHROPIC)
        extract_anthropic_response(c->tr, body, len);
    else if (tx)
        extract_openai_response_texts(c->tr, body, len, tx);
    else
        extract_openai_response(c->tr, body, len);
}

/* The answer as the client gets it (guardrails applied), for capture. */
static void trace_output(gw_call *c, const char *body, size_t len)
{
    if (!c->tr || c->g->cfg->telemetry.capture_content == CAPTURE_OFF)
        return;
    jval root = jscan_root(body, len), part;
    if (root.type == J_OBJECT && jscan_get(root, c->cfmt == API_ANTHROPIC ? "content" : "choices", &part, NULL))
        c->tr->output_messages = capture(c, part.p, part.len, true);
}

/* One upstream stream event: usage, ids, and the text for capture. */
static void trace_event(gw_call *c, const sse_event *ev)
{
    trace_rec *t = c->tr;
    if (!t)
        return;
    if (c->wire == API_ANTHROPIC)
        extract_anthropic_event(t, ev->event, ev->data.p, ev->data.len);
    else
        extract_openai_chunk(t, ev->data.p, ev->data.len);
    if (c->g->cfg->telemetry.capture_content == CAPTURE_OFF || ev->data.len == 0 || ev->data.p[0] != '{' || c->gst)
        return; /* a guarded stream captures what it releases */
    jval root = jscan_root(ev->data.p, ev->data.len), a, b, text;
    bool found = false;
    if (c->wire == API_ANTHROPIC) {
        found = sv_eq_cstr(ev->event, "content_block_delta") && jscan_get(root, "delta", &a, NULL) &&
                jscan_get(a, "text", &text, NULL);
    } else if (jscan_get(root, "choices", &a, NULL) && a.type == J_ARRAY) {
        jscan_iter it;
        jscan_iter_init(&it, a);
        jval k, ch;
        found = jscan_next(&it, &k, &ch) && jscan_get(ch, "delta", &b, NULL) && jscan_get(b, "content", &text, NULL);
    }
    if (found && text.type == J_STRING && text.len >= 2) {
        char piece[4096];
        size_t n;
        if (jscan_string(text, piece, sizeof piece, &n) && buf_append(&c->out_text, piece, n) != ERR_OK)
            t->content_truncated = true;
    }
}

/* The request is over: close the record, price it, count it, hand it on. */
static void trace_finish(gw_call *c)
{
    trace_rec *t = c->tr;
    if (!t)
        return;
    c->tr = NULL;
    http_req *r = c->r;
    uint64_t now = http_now_ns();
    if (c->attempt)
        trace_attempt_end(c, ERR_CANCELED, 0, now);
    t->end_ns = unix_of(c, now);
    t->spans[0].end_ns = t->end_ns;
    t->status = r->responded ? r->status : 499; /* 499: the client went away first */
    t->spans[0].http_status = t->status;
    if (t->status >= 400)
        snprintf(t->error_type, sizeof t->error_type, "%s",
                 t->status == 499 ? "client_closed" : c->last_err == ERR_TIMEOUT ? "timeout"
                                                     : c->last_err != ERR_OK ? "upstream_unavailable" : "");
    if (t->status >= 400 && !t->error_type[0])
        snprintf(t->error_type, sizeof t->error_type, "%d", t->status);
    copy_cstr(t->spans[0].error_type, sizeof t->spans[0].error_type, t->error_type);
    t->attempts = c->attempts;
    t->overhead_ns = c->overhead_ns;
    guard_spans(c, t);
    if (c->nt > 0) {
        const cfg_provider *p = c->t[c->ti].prov;
        copy_cstr(t->provider, sizeof t->provider, p->name);
        copy_cstr(t->provider_type, sizeof t->provider_type, provider_type_name(p->type));
    }
    if (c->out_text.len && !t->output_messages) {
        /* the streamed answer, as one assistant message */
        json_t *m = json_pack("[{s:s, s:s%}]", "role", "assistant", "content", c->out_text.p, c->out_text.len);
        char *s = m ? json_dumps(m, JSON_COMPACT) : NULL;
        if (s)
            t->output_messages = capture(c, s, strlen(s), true);
        free(s);
        json_decref(m);
    }
    if (!t->cost_known && c->g->obs.price && c->nt > 0 && t->status < 400) {
        const gw_target *tg = &c->t[c->ti];
        const cfg_model *m = tg->name ? config_find_model(c->g->cfg, sv_from(tg->name)) : NULL;
        t->cost_known = c->g->obs.price(c->g->obs.ud, m, provider_type_name(tg->prov->type),
                                        t->response_model[0] ? t->response_model : tg->upstream_model, t, &t->cost_usd);
    }
    int widx = http_worker_index(r->worker);
    if (c->g->obs.observe)
        c->g->obs.observe(c->g->obs.ud, widx, t);
    if (c->keep_trace)
        (void)c->g->obs.submit(c->g->obs.ud, widx, t); /* a drop is counted by the writer, which frees t */
    else
        trace_free(t);
}

/* ---- the call's lifetime ---------------------------------------------- */

static void on_backoff_closed(uv_handle_t *h) { free(h); }

/* Stops whatever could still call back into c: the upstream transfer, the
 * simulator playback and the backoff timer. After this no callback comes. */
static void call_stop(gw_call *c)
{
    if (c->uc)
        upstream_cancel(c->uc);
    if (c->sc)
        simplay_cancel(c->sc);
    c->uc = NULL;
    c->sc = NULL;
    if (c->backoff)
        uv_timer_stop(c->backoff);
    for (int i = 0; i < c->nrc; i++) {
        gw_rcheck *k = c->rc[i];
        if (k->uc)
            upstream_cancel(k->uc);
        if (k->sc)
            simplay_cancel(k->sc);
        k->uc = NULL;
        k->sc = NULL;
    }
    c->rpending = 0;
}

static void call_cleanup(void *data)
{
    gw_call *c = data;
    call_stop(c);
    trace_finish(c);
    buf_free(&c->out_text);
    if (c->g->obs.inflight)
        c->g->obs.inflight(c->g->obs.ud, http_worker_index(c->r->worker), -1);
    if (c->backoff) {
        uv_close((uv_handle_t *)c->backoff, on_backoff_closed);
        c->backoff = NULL;
    }
    json_decref(c->rq.root);
    json_decref(c->as_openai);
    buf_free(&c->body);
    buf_free(&c->out);
    if (c->sse_ready)
        sse_parser_free(&c->sse);
    xlate_stream_free(c->xs);
    for (int i = 0; i < c->nrc; i++)
        buf_free(&c->rc[i]->body);
    gw_guard_stream_free(c->gst);
    if (c->gsse_ready)
        sse_parser_free(&c->gsse);
    buf_free(&c->gout);
    guard_req_free(c->gq);
}

/* The client went away: stop everything now. If we are inside a callback
 * of the upstream, the request is given up when it returns. */
static void on_abort(http_req *r)
{
    gw_call *c = r->ud;
    c->aborted = true;
    call_stop(c);
    if (!c->in_cb)
        http_req_abandon(r);
}

/* Gives the request up from inside an upstream callback: the transfer is
 * canceled first so that no further callback can reach the freed call. */
static void call_abandon(gw_call *c)
{
    call_stop(c);
    http_req_abandon(c->r);
}

static void on_drain(http_req *r)
{
    gw_call *c = r->ud;
    if (!c->paused)
        return;
    c->paused = false;
    if (c->uc)
        upstream_resume(c->uc);
    if (c->sc)
        simplay_resume(c->sc);
}

/* ---- responses -------------------------------------------------------- */

static void common_headers(gw_call *c)
{
    http_req *r = c->r;
    const gw_target *t = &c->t[c->ti];
    http_resp_header(r, "x-genaiops-provider", t->prov->name);
    http_resp_header_u64(r, "x-genaiops-attempts", (unsigned long long)c->attempts);
    c->overhead_ns = add_overhead(r, c->up_ns);
}

/* A complete 2xx body: pass it through or translate it. */
/* A cost in USD with ten decimals, as "%.10f" prints it, without printf's
 * floating-point path (it is on every priced response). false when the
 * value is negative, not finite or too large for it. */
static bool usd10(double v, char *out, size_t cap)
{
    if (!(v >= 0 && v < 1e8) || cap < 32)
        return false;
    /* round at the tenth decimal; x86-64's 64-bit long double mantissa makes
     * this agree with printf's exact rounding (2M random values checked) */
    uint64_t units = (uint64_t)((long double)v * 1e10L + 0.5L);
    uint64_t whole = units / 10000000000ull, frac = units % 10000000000ull;
    char tmp[24];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + whole % 10);
    while ((whole /= 10) > 0);
    size_t k = 0;
    while (n > 0)
        out[k++] = tmp[--n];
    out[k++] = '.';
    for (int i = 9; i >= 0; i--, frac /= 10)
        out[k + (size_t)i] = (char)('0' + frac % 10);
    out[k + 10] = '\0';
    return true;
}

static void deliver(gw_call *c)
{
    http_req *r = c->r;
    const char *body = c->body.p ? c->body.p : "";
    size_t len = c->body.len;
    extract_texts tx;
    bool share = c->gq && c->wire == API_OPENAI && c->cfmt == API_OPENAI; /* the guard reads the same body */
    tx.completions = c->ep == EP_COMPLETIONS;
    trace_response(c, body, len, share ? &tx : NULL);
    if (c->tr && c->g->obs.price) {
        const gw_target *tg = &c->t[c->ti];
        const cfg_model *m = tg->name ? config_find_model(c->g->cfg, sv_from(tg->name)) : NULL;
        c->tr->cost_known = c->g->obs.price(c->g->obs.ud, m, provider_type_name(tg->prov->type),
                                            c->tr->response_model[0] ? c->tr->response_model : tg->upstream_model,
                                            c->tr, &c->tr->cost_usd);
        char usd[48];
        if (c->tr->cost_known && usd10(c->tr->cost_usd, usd, sizeof usd))
            http_resp_header(r, "x-genaiops-cost-usd", usd);
    }
    if (c->wire != c->cfmt) {
        json_error_t je;
        json_t *in = json_loadb(body, len, 0, &je);
        json_t *out = NULL;
        if (in)
            out = c->wire == API_ANTHROPIC ? anthropic_to_chat_response(in, c->rq.model)
                                           : anthropic_from_chat_response(in, c->rq.model);
        json_decref(in);
        if (!out) {
            gw_error e;
            gw_error_set(&e, 502, "upstream_error", "invalid_upstream_response", NULL,
                         "provider '%s' returned a response that is not valid JSON of its API", c->t[c->ti].prov->name);
            send_error(r, c->cfmt, &e, c->up_ns);
            return;
        }
        body = dump_pool(r->pool, out, &len);
        json_decref(out);
        if (!body) {
            http_req_abandon(r);
            return;
        }
    }
    c->held = body;
    c->held_len = len;
    c->held_status = c->status;
    if (c->gq) {
        const char *nb;
        size_t nl;
        if (gw_guard_response(c->gq, c->ep, c->cfmt, body, len, share ? &tx : NULL, r->pool, &nb, &nl) != ERR_OK) {
            gw_error e;
            gw_error_set(&e, 500, "api_error", NULL, NULL, "out of memory while checking the answer's guardrails");
            send_error(r, c->cfmt, &e, c->up_ns);
            return;
        }
        for (guard_stage st = GS_OUTPUT; st <= GS_TOOL; st++)
            if (guard_verdict(c->gq, st) == GA_BLOCK) {
                send_guard_block(c, st);
                return;
            }
        if (nb)
            c->held = nb, c->held_len = nl;
        if (stage_remote(c, GS_OUTPUT)) {
            const char *texts[64];
            size_t lens[64];
            size_t n = gw_guard_texts(c->ep, c->cfmt, true, c->held, c->held_len, r->pool, texts, lens, 64);
            if (remote_start(c, GS_OUTPUT, texts, lens, n) > 0)
                return; /* deliver_send when they are done */
        }
    }
    deliver_send(c);
}

/* The answer goes out (after its guardrails). */
static void deliver_send(gw_call *c)
{
    trace_output(c, c->held, c->held_len);
    guard_header(c, false);
    common_headers(c);
    http_resp_send(c->r, c->held_status, "application/json", c->held, c->held_len);
}

/* The final failure: the upstream's status and message, in the client's API. */
static void deliver_failure(gw_call *c)
{
    http_req *r = c->r;
    gw_error e;
    const char *pname = c->t[c->ti].prov->name;
    if (c->last_err != ERR_OK) {
        bool timeout = c->last_err == ERR_TIMEOUT;
        gw_error_set(&e, timeout ? 504 : 502, "upstream_error", timeout ? "upstream_timeout" : "upstream_unavailable",
                     NULL, "provider '%s' %s after %d attempt%s: %s", pname,
                     timeout ? "timed out" : "could not be reached", c->attempts, c->attempts == 1 ? "" : "s",
                     c->last_msg[0] ? c->last_msg : err_message(c->last_err));
        common_headers(c);
        size_t len;
        char *body = gw_error_body(&e, c->cfmt, r->pool, &len);
        http_resp_send(r, e.status, "application/json", body, len);
        return;
    }
    if (c->last_status == 0) { /* no target could serve the endpoint */
        gw_error_set(&e, 400, "invalid_request_error", "unsupported_endpoint", "model", "%s", c->last_msg);
        send_error(r, c->cfmt, &e, c->up_ns);
        return;
    }
    const char *body = c->body.p ? c->body.p : "";
    size_t len = c->body.len;
    json_error_t je;
    json_t *in = len ? json_loadb(body, len, 0, &je) : NULL;
    json_t *err = in ? json_object_get(in, "error") : NULL;
    bool shaped = c->wire == API_OPENAI ? json_is_object(err) : (json_is_object(err) && json_is_string(json_object_get(in, "type")));
    json_decref(in);
    if (c->retry_after_ms > 0)
        http_resp_headerf(r, "retry-after", "%ld", (c->retry_after_ms + 999) / 1000);
    common_headers(c);
    if (shaped && c->wire == c->cfmt) {
        http_resp_send(r, c->last_status, "application/json", body, len);
        return;
    }
    json_t *o = NULL;
    if (shaped)
        o = c->cfmt == API_OPENAI ? anthropic_error_to_openai(c->last_status, body, len)
                                  : anthropic_error_from_openai(c->last_status, body, len);
    if (!o) {
        char snippet[200];
        size_t k = 0;
        for (size_t i = 0; i < len && k + 1 < sizeof snippet; i++)
            snippet[k++] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : ' ';
        snippet[k] = '\0';
        gw_error_set(&e, c->last_status, c->last_status == 429 ? "rate_limit_error" : "upstream_error", NULL, NULL,
                     "provider '%s' returned HTTP %d%s%s", pname, c->last_status, k ? ": " : "", snippet);
        size_t blen;
        char *b = gw_error_body(&e, c->cfmt, r->pool, &blen);
        http_resp_send(r, c->last_status, "application/json", b, blen);
        return;
    }
    send_json(r, c->last_status, o);
}

/* Ends a started stream after a failure with an error event the client's
 * SDK will raise, then the end of the response. */
static void stream_fail(gw_call *c, const char *why)
{
    gw_error e;
    gw_error_set(&e, 502, "upstream_error", "stream_interrupted", NULL,
                 "the upstream stream from provider '%s' failed: %s", c->t[c->ti].prov->name, why);
    size_t len;
    char *b = gw_error_body(&e, c->cfmt, c->r->pool, &len);
    buf_reset(&c->out);
    if (c->cfmt == API_ANTHROPIC)
        sse_write_event(&c->out, SV("error"), sv_make(b, len));
    else
        sse_write_event(&c->out, SV_NULL, sv_make(b, len));
    http_resp_write(c->r, c->out.p, c->out.len);
    log_req(L_WARN, c->r->request_id, "stream from provider %s failed: %s", c->t[c->ti].prov->name, why);
}

/* ---- upstream callbacks ----------------------------------------------- */

long gateway_retry_after_ms(sv v, time_t now)
{
    if (!v.len || v.len > 40)
        return 0;
    char tmp[48];
    memcpy(tmp, v.p, v.len);
    tmp[v.len] = '\0';
    char *end;
    double secs = strtod(tmp, &end);
    if (end != tmp && *end == '\0') {
        if (!(secs >= 0) || secs > 86400.0 * 365)
            return 0; /* negative, NaN or absurd */
        return (long)(secs * 1000);
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(tmp, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (rest && *rest == '\0') {
        time_t when = timegm(&tm);
        return when > now ? (long)(when - now) * 1000 : 0;
    }
    return 0;
}

long gateway_backoff_ms(const cfg_retry *rc, int tries, long retry_after_ms, uint32_t rnd)
{
    long cap = rc->max_ms > 0 ? rc->max_ms : 8000;
    long d = rc->base_ms > 0 ? rc->base_ms : 200;
    for (int i = 0; i < tries && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    d = d / 2 + (long)(rnd % (uint32_t)(d / 2 + 1)); /* equal jitter: [d/2, d] */
    return retry_after_ms > d ? retry_after_ms : d;
}

/* One event of the client's stream (translated if need be) through the
 * stream's guardrails into gout. */
static int guarded_event(void *ud, const sse_event *ev)
{
    gw_call *c = ud;
    if (gw_guard_stream_event(c->gst, ev->event, ev->data, &c->gout)) {
        c->gblocked = true;
        return 1;
    }
    return 0;
}

/* Sends gout; after a block, the guardrail's error event instead of what
 * was held. false when the client is gone. */
static bool guarded_flush(gw_call *c)
{
    if (c->gblocked) {
        guard_stage st = guard_verdict(c->gq, GS_TOOL) == GA_BLOCK ? GS_TOOL : GS_OUTPUT;
        char msg[400];
        guard_block_message(c->gq, st, msg, sizeof msg);
        gw_error e;
        gw_error_set(&e, 400, "guardrail_violation", "guardrail_violation", NULL, "%s", msg);
        size_t len;
        char *b = gw_error_body(&e, c->cfmt, c->r->pool, &len);
        (void)sse_write_event(&c->gout, c->cfmt == API_ANTHROPIC ? SV("error") : SV_NULL, sv_make(b, len));
        log_req(L_INFO, c->r->request_id, "%s", msg);
    }
    bool ok = !c->gout.len || http_resp_write(c->r, c->gout.p, c->gout.len) == ERR_OK;
    buf_reset(&c->gout);
    return ok;
}

static int stream_event(void *ud, const sse_event *ev)
{
    gw_call *c = ud;
    trace_event(c, ev);
    if (c->gst) {
        if (c->gblocked)
            return 1;
        if (c->xs) {
            buf_reset(&c->out);
            xlate_stream_event(c->xs, ev->event, ev->data, &c->out);
            if (xlate_stream_done(c->xs))
                c->saw_end = true;
            if (c->out.len && sse_parser_feed(&c->gsse, c->out.p, c->out.len, guarded_event, c) == ERR_TOOBIG)
                c->gblocked = true;
        } else {
            if (c->wire == API_OPENAI ? sv_eq_cstr(ev->data, "[DONE]") : sv_eq_cstr(ev->event, "message_stop"))
                c->saw_end = true;
            if (c->wire == API_ANTHROPIC ? sv_eq_cstr(ev->event, "error")
                                         : (ev->data.len > 9 && memcmp(ev->data.p, "{\"error\":", 9) == 0))
                c->saw_end = true;
            guarded_event(c, ev);
        }
        if (!guarded_flush(c)) {
            c->aborted = true;
            return 1;
        }
        return c->gblocked ? 1 : 0;
    }
    if (c->xs) {
        buf_reset(&c->out);
        xlate_stream_event(c->xs, ev->event, ev->data, &c->out);
        if (c->out.len && http_resp_write(c->r, c->out.p, c->out.len) != ERR_OK) {
            c->aborted = true;
            return 1;
        }
        if (xlate_stream_done(c->xs))
            c->saw_end = true;
        return 0;
    }
    if (c->wire == API_OPENAI ? sv_eq_cstr(ev->data, "[DONE]") : sv_eq_cstr(ev->event, "message_stop"))
        c->saw_end = true;
    /* an upstream's own error event ends its stream: the client has it */
    if (c->wire == API_ANTHROPIC ? sv_eq_cstr(ev->event, "error")
                                 : (ev->data.len > 9 && memcmp(ev->data.p, "{\"error\":", 9) == 0))
        c->saw_end = true;
    return 0;
}

static int cb_head(void *ud, int status, const upstream_header *h, size_t nh)
{
    gw_call *c = ud;
    c->status = status;
    c->retry_after_ms = 0;
    for (size_t i = 0; i < nh; i++)
        if (sv_ieq_cstr(h[i].name, "retry-after") && !c->retry_after_ms)
            c->retry_after_ms = gateway_retry_after_ms(h[i].value, time(NULL));
        else if (sv_ieq_cstr(h[i].name, "retry-after-ms")) {
            long ms = gateway_retry_after_ms(h[i].value, time(NULL)) / 1000;
            if (ms > 0)
                c->retry_after_ms = ms; /* the finer one wins */
        }
    if (status >= 200 && status < 300 && c->rq.stream) {
        uint64_t now = http_now_ns();
        c->up_ns += now - c->up_t0;
        c->up_t0 = now;
        c->streaming_out = true;
        c->in_cb++;
        guard_header(c, true);
        common_headers(c);
        http_resp_header(c->r, "cache-control", "no-cache");
        http_resp_start(c->r, 200, "text/event-stream");
        c->in_cb--;
        if (c->wire != c->cfmt) {
            c->xs = xlate_stream_new(c->wire == API_ANTHROPIC ? XLATE_ANTHROPIC_TO_OPENAI : XLATE_OPENAI_TO_ANTHROPIC,
                                     c->rq.model, c->rq.include_usage);
            if (!c->xs)
                return 1;
        }
        sse_parser_init(&c->sse, MAX_SSE_EVENT);
        c->sse_ready = true;
        if (c->gq && (guard_req_set(c->gq, GS_OUTPUT) || guard_req_set(c->gq, GS_TOOL) || guard_restore_wanted(c->gq))) {
            c->gst = gw_guard_stream_new(c->gq, c->ep, c->cfmt);
            if (!c->gst)
                return 1;
            buf_init(&c->gout, MAX_RESPONSE_BYTES);
            if (c->tr && c->g->cfg->telemetry.capture_content != CAPTURE_OFF)
                gw_guard_stream_capture(c->gst, &c->out_text);
            if (c->xs) {
                sse_parser_init(&c->gsse, MAX_SSE_EVENT);
                c->gsse_ready = true;
            }
        }
    }
    if (c->aborted) {
        call_abandon(c);
        return 1;
    }
    return 0;
}

static int cb_data(void *ud, const char *p, size_t n)
{
    gw_call *c = ud;
    if (!c->streaming_out) {
        if (buf_append(&c->body, p, n) != ERR_OK) {
            c->last_err = ERR_TOOBIG;
            return UPSTREAM_ABORT;
        }
        return UPSTREAM_CONTINUE;
    }
    if (c->tr && !c->tr->ttft_ns)
        c->tr->ttft_ns = http_now_ns() - c->r->start_ns;
    c->in_cb++;
    if (!c->xs && !c->gst && http_resp_write(c->r, p, n) != ERR_OK)
        c->aborted = true;
    if (!c->aborted) {
        err_code e = sse_parser_feed(&c->sse, p, n, stream_event, c);
        if (e == ERR_TOOBIG) {
            stream_fail(c, "an event exceeded the size limit");
            c->in_cb--;
            return UPSTREAM_ABORT;
        }
    }
    c->in_cb--;
    if (c->aborted) {
        call_abandon(c);
        return UPSTREAM_ABORT;
    }
    if (c->gblocked)
        return UPSTREAM_ABORT; /* cb_done ends the response */
    if (http_resp_pending(c->r) > c->g->cfg->server.max_stream_buffer) {
        c->paused = true;
        return UPSTREAM_PAUSE;
    }
    return UPSTREAM_CONTINUE;
}

static bool retryable(err_code e, int status)
{
    if (e == ERR_UPSTREAM || e == ERR_TIMEOUT)
        return true;
    return status == 408 || status == 409 || status == 429 || status >= 500;
}

static void on_backoff(uv_timer_t *t)
{
    gw_call *c = t->data;
    c->up_ns += http_now_ns() - c->up_t0; /* the wait is not the gateway's own time */
    attempt_start(c);
}

/* The attempt failed: retry it, fall back, or answer with the failure. */
static void attempt_failed(gw_call *c)
{
    const gw_target *t = &c->t[c->ti];
    int max_retries = t->prov->max_retries >= 0 ? t->prov->max_retries : c->g->cfg->retry.max_retries;
    bool again = retryable(c->last_err, c->last_status);
    if (again && c->tries_here < max_retries && c->retry_after_ms <= MAX_RETRY_AFTER_MS) {
        uint32_t rnd = 0;
        if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd)
            rnd = (uint32_t)http_now_ns();
        long d = gateway_backoff_ms(&c->g->cfg->retry, c->tries_here, c->retry_after_ms, rnd);
        c->tries_here++;
        if (!c->backoff) {
            c->backoff = malloc(sizeof *c->backoff);
            if (!c->backoff) {
                deliver_failure(c);
                return;
            }
            uv_timer_init(http_worker_loop(c->w->hw), c->backoff);
            c->backoff->data = c;
        }
        log_req(L_INFO, c->r->request_id, "retrying provider %s in %ld ms (attempt %d)", t->prov->name, d, c->attempts + 1);
        c->up_t0 = http_now_ns(); /* backoff counts as upstream time */
        uv_timer_start(c->backoff, on_backoff, (uint64_t)d, 0);
        return;
    }
    bool fall = again || c->last_status == 401 || c->last_status == 403 || c->last_status == 404 || c->last_status == 0;
    if (fall && c->ti + 1 < c->nt) {
        log_req(L_INFO, c->r->request_id, "provider %s failed; falling back to %s", t->prov->name,
                c->t[c->ti + 1].prov->name);
        c->ti++;
        c->tries_here = 0;
        attempt_start(c);
        return;
    }
    deliver_failure(c);
}

static void cb_done(void *ud, err_code e, const char *msg)
{
    gw_call *c = ud;
    c->uc = NULL;
    c->sc = NULL;
    uint64_t now = http_now_ns();
    c->up_ns += now - c->up_t0;
    trace_attempt_end(c, e, e == ERR_OK ? c->status : 0, now);
    if (c->gblocked && !c->aborted) { /* a guardrail ended the stream: its error event went out */
        http_resp_end(c->r);
        return;
    }
    if (c->aborted || (e == ERR_CANCELED && c->last_err != ERR_TOOBIG)) {
        http_req_abandon(c->r);
        return;
    }
    if (c->streaming_out) {
        if (e == ERR_OK && c->gst) {
            if (c->xs) {
                buf_reset(&c->out);
                xlate_stream_finish(c->xs, &c->out);
                if (c->out.len && sse_parser_feed(&c->gsse, c->out.p, c->out.len, guarded_event, c) == ERR_TOOBIG)
                    c->gblocked = true;
            }
            if (!c->gblocked && gw_guard_stream_end(c->gst, &c->gout))
                c->gblocked = true;
            guarded_flush(c);
            if (c->gblocked) {
                http_resp_end(c->r);
                return;
            }
        }
        if (e == ERR_OK && c->xs && !c->gst) {
            buf_reset(&c->out);
            xlate_stream_finish(c->xs, &c->out);
            http_resp_write(c->r, c->out.p, c->out.len);
        } else if (e != ERR_OK) {
            stream_fail(c, msg ? msg : err_message(e));
        } else if (!c->saw_end) {
            stream_fail(c, c->wire == API_OPENAI ? "the stream ended without its final [DONE] event"
                                                 : "the stream ended without its message_stop event");
        }
        http_resp_end(c->r);
        return;
    }
    if (c->last_err == ERR_TOOBIG) {
        gw_error ge;
        gw_error_set(&ge, 502, "upstream_error", "upstream_response_too_large", NULL,
                     "provider '%s' returned more than %u bytes", c->t[c->ti].prov->name, MAX_RESPONSE_BYTES);
        send_error(c->r, c->cfmt, &ge, c->up_ns);
        return;
    }
    if (e == ERR_OK && c->status >= 200 && c->status < 300) {
        deliver(c);
        return;
    }
    c->last_err = e;
    c->last_status = e == ERR_OK ? c->status : 0;
    snprintf(c->last_msg, sizeof c->last_msg, "%s", msg ? msg : "");
    if (e != ERR_OK)
        log_req(L_WARN, c->r->request_id, "provider %s: %s", c->t[c->ti].prov->name, msg ? msg : err_message(e));
    attempt_failed(c);
}

static const upstream_callbacks callbacks = { cb_head, cb_data, cb_done };

/* ---- attempts --------------------------------------------------------- */

static sim_endpoint sim_ep(gw_endpoint ep)
{
    switch (ep) {
    case EP_COMPLETIONS: return SIM_COMPLETIONS;
    case EP_EMBEDDINGS: return SIM_EMBEDDINGS;
    default: return SIM_CHAT;
    }
}

/* The request for target t. In the same API as the client and to a real
 * provider: the client's bytes (with "model" spliced when it is renamed),
 * in *body, no tree. Otherwise a tree in the target's API (a new reference)
 * in *tree: translated, or the client's own for the simulator, which gets
 * its mode separately and answers with the name the client used
 * ("sim/echo"), so it is never mistaken for a real model. */
static bool request_for(gw_call *c, const gw_target *t, json_t **tree, const char **body, size_t *len, gw_error *e)
{
    *tree = NULL;
    *body = NULL;
    pool *pl = c->r->pool;
    if (c->cfmt == c->wire && t->prov->type != PROVIDER_SIMULATOR) {
        if (strcmp(t->upstream_model, c->rq.model) == 0) {
            *body = c->rq.body;
            *len = c->rq.len;
        } else {
            *body = gw_request_with_model(&c->rq, t->upstream_model, pl, len);
        }
        if (!*body)
            gw_error_set(e, 500, "api_error", NULL, NULL, "out of memory");
        return *body != NULL;
    }
    json_t *root = gw_request_tree(&c->rq);
    if (!root) {
        gw_error_set(e, 500, "api_error", NULL, NULL, "out of memory");
        return false;
    }
    xlate_err xe = { 0 };
    if (c->cfmt == API_ANTHROPIC && c->wire == API_OPENAI) {
        if (!c->as_openai)
            c->as_openai = anthropic_to_chat_request(root, &xe);
        if (c->as_openai) {
            *tree = json_copy(c->as_openai);
            if (*tree && t->prov->type != PROVIDER_SIMULATOR)
                json_object_set_new(*tree, "model", json_string(t->upstream_model));
        }
    } else if (c->cfmt == API_OPENAI && c->wire == API_ANTHROPIC) {
        *tree = anthropic_from_chat_request(root, t->upstream_model, &xe);
    } else {
        *tree = json_incref(root);
    }
    if (!*tree) {
        gw_error_set(e, xe.status ? xe.status : 400, "invalid_request_error", NULL, xe.param && xe.param[0] ? xe.param : NULL,
                     "%s", xe.message[0] ? xe.message : "out of memory");
        return false;
    }
    return true;
}

static void attempt_start(gw_call *c)
{
    http_req *r = c->r;
    const gw_target *t = &c->t[c->ti];
    const cfg_provider *p = t->prov;
    gw_error ge;
    if (!provider_endpoint(p, c->ep, &c->wire_ep)) {
        c->last_err = ERR_OK;
        c->last_status = 0;
        snprintf(c->last_msg, sizeof c->last_msg, "provider '%s' (type %s) does not serve this endpoint", p->name,
                 provider_type_name(p->type));
        if (c->ti + 1 < c->nt) {
            c->ti++;
            attempt_start(c);
        } else {
            deliver_failure(c);
        }
        return;
    }
    c->wire = provider_wire(p);
    c->attempts++;
    c->status = 0;
    c->retry_after_ms = 0;
    c->last_err = ERR_OK;
    buf_reset(&c->body);
    json_t *o;
    const char *body;
    size_t len = 0;
    if (!request_for(c, t, &o, &body, &len, &ge)) {
        send_error(r, c->cfmt, &ge, c->up_ns);
        return;
    }
    c->up_t0 = http_now_ns();
    trace_attempt_begin(c, t, c->up_t0); /* the attempt starts as it is sent */
    err_code e;
    if (p->type == PROVIDER_SIMULATOR) {
        uint64_t seq = atomic_fetch_add(&c->g->seq, 1);
        e = sim_plan_make(&p->sim, sim_ep(c->wire_ep), t->upstream_model, o, seq, r->pool, &c->plan);
        json_decref(o);
        if (e == ERR_OK)
            e = simplay_start(http_worker_loop(c->w->hw), &c->plan, &callbacks, c, &c->sc);
        if (e != ERR_OK) {
            gw_error_set(&ge, 500, "api_error", NULL, NULL, "simulator failed: %s", err_message(e));
            send_error(r, c->cfmt, &ge, c->up_ns);
        }
        return;
    }
    if (o) {
        body = dump_pool(r->pool, o, &len);
        json_decref(o);
    }
    provider_http ph;
    if (!body || provider_build_http(p, c->wire_ep, t->upstream_model, c->rq.stream, r->pool, &ph) != ERR_OK) {
        gw_error_set(&ge, 500, "api_error", NULL, NULL, "out of memory");
        send_error(r, c->cfmt, &ge, c->up_ns);
        return;
    }
    upstream_request ur = {
        .method = "POST",
        .url = ph.url,
        .headers = ph.headers,
        .body = body,
        .body_len = len,
        .connect_timeout_ms = p->connect_timeout_ms,
        .timeout_ms = p->timeout_ms,
        .ca_file = p->ca_file,
    };
    e = upstream_start(c->w->up, &ur, &callbacks, c, &c->uc);
    if (e != ERR_OK) {
        c->last_err = ERR_UPSTREAM;
        c->last_status = 0;
        snprintf(c->last_msg, sizeof c->last_msg, "could not start the request: %s", err_message(e));
        attempt_failed(c);
    }
}

/* ---- guardrails -------------------------------------------------------- */

/* The answer of a blocked stage: 400 guardrail_violation naming the policy
 * and what was found (types and positions, never the text). */
static void send_guard_block(gw_call *c, guard_stage st)
{
    char msg[400];
    guard_block_message(c->gq, st, msg, sizeof msg);
    gw_error e;
    gw_error_set(&e, 400, "guardrail_violation", "guardrail_violation", NULL, "%s", msg);
    log_req(L_INFO, c->r->request_id, "%s", msg);
    guard_header(c, false);
    if (c->nt > 0)
        common_headers(c);
    send_error(c->r, c->cfmt, &e, c->up_ns);
}

/* x-genaiops-guardrails: POLICY=ACTION (monitor:ACTION) for every policy
 * that found something (at input only, for a stream's head). */
static void guard_header(gw_call *c, bool input_only)
{
    if (!c->gq)
        return;
    const guard_hit *h;
    size_t n = guard_req_hits(c->gq, &h);
    if (!n)
        return;
    char val[512];
    size_t k = 0;
    guard_set seen = 0;
    for (size_t i = 0; i < n; i++) {
        if ((input_only && h[i].stage != GS_INPUT) || h[i].policy >= GUARD_MAX_POLICIES ||
            (seen & ((guard_set)1 << h[i].policy)))
            continue;
        seen |= (guard_set)1 << h[i].policy;
        const guard_policy_info *pi = guard_policy_at(c->g->guard, h[i].policy);
        if (!pi)
            continue;
        int w = snprintf(val + k, sizeof val - k, "%s%s=%s%s", k ? ", " : "", pi->name, pi->monitor ? "monitor:" : "",
                         guard_action_name(pi->action));
        if (w < 0 || (size_t)w >= sizeof val - k)
            break;
        k += (size_t)w;
    }
    if (k)
        http_resp_header(c->r, "x-genaiops-guardrails", val);
}

/* The checks as spans of the trace (metrics count them from there). */
_Static_assert(sizeof((span_rec){ 0 }.guard_policy) == GUARD_POLICY_LABEL_WIDTH &&
                   sizeof((span_rec){ 0 }.guard_detector) == GUARD_DETECTOR_NAME_WIDTH &&
                   sizeof((span_rec){ 0 }.guard_stage) == GUARD_STAGE_NAME_WIDTH &&
                   sizeof((span_rec){ 0 }.guard_verdict) == GUARD_ACTION_NAME_WIDTH &&
                   sizeof((span_rec){ 0 }.guard_mode) == 8,
               "a guardrail span's labels are copied at the guard names' widths");
static void guard_spans(gw_call *c, trace_rec *t)
{
    if (!t || !c->gq)
        return;
    const guard_check *ck;
    const guard_hit *h;
    size_t nc = guard_req_checks(c->gq, &ck), nh = guard_req_hits(c->gq, &h);
    /* the names at their fields' widths, NUL-padded (trace_add_guard_span) */
    static const char error_verdict[GUARD_ACTION_NAME_WIDTH] = "error";
    static const char modes[2][8] = { "monitor", "enforce" };
    for (size_t i = 0; i < nc; i++) {
        span_rec *s = trace_add_guard_span(t, unix_of(c, ck[i].start_ns), guard_policy_label(c->g->guard, ck[i].policy),
                                           guard_detector_name((guard_detector)ck[i].detector),
                                           guard_stage_name((guard_stage)ck[i].stage),
                                           ck[i].error ? error_verdict : guard_action_name(ck[i].verdict),
                                           modes[ck[i].enforced]);
        if (!s)
            break;
        s->guard_key = guard_check_key(c->g->guard, &ck[i]);
        s->end_ns = s->start_ns + ck[i].ns;
        if (ck[i].error)
            copy_cstr(s->error_type, sizeof s->error_type, "guardrail_error");
        size_t k = 0;
        for (size_t j = 0; j < nh; j++) {
            const guard_hit *x = &h[j];
            if (x->policy != ck[i].policy || x->detector != ck[i].detector || x->stage != ck[i].stage)
                continue;
            int slot = 0;
            while (slot < 8 && s->guard_types[slot] && s->guard_types[slot] != x->f.type + 1)
                slot++;
            if (slot < 8) {
                s->guard_types[slot] = (uint8_t)(x->f.type + 1);
                s->guard_counts[slot]++;
            }
            char where[32];
            if (x->where >= 0)
                snprintf(where, sizeof where, "messages[%d]", (int)x->where);
            else
                snprintf(where, sizeof where, "%s", x->stage == GS_INPUT ? "request" : x->stage == GS_TOOL ? "tool_call" : "answer");
            int w = snprintf(s->guard_findings + k, sizeof s->guard_findings - k, "%s%s %s %u-%u", k ? "," : "",
                             guard_type_name(x->f.type), where, x->f.start, x->f.start + x->f.len);
            if (w < 0 || (size_t)w >= sizeof s->guard_findings - k) {
                s->guard_findings[k] = '\0';
                break;
            }
            k += (size_t)w;
        }
    }
}

/* The remote checks of a stage are all in: decide, then go on. */
static void remote_done(gw_call *c)
{
    guard_stage st = c->rstage;
    if (st == GS_INPUT) {
        if (guard_verdict(c->gq, GS_INPUT) == GA_BLOCK) {
            trace_request(c, false);
            send_guard_block(c, GS_INPUT);
            return;
        }
        infer_continue(c);
        return;
    }
    if (guard_verdict(c->gq, GS_OUTPUT) == GA_BLOCK) {
        send_guard_block(c, GS_OUTPUT);
        return;
    }
    deliver_send(c);
}

static int rc_head(void *ud, int status, const upstream_header *h, size_t nh)
{
    UNUSED(h), UNUSED(nh);
    gw_rcheck *k = ud;
    k->status = status;
    return 0;
}

static int rc_data(void *ud, const char *p, size_t n)
{
    gw_rcheck *k = ud;
    return buf_append(&k->body, p, n) == ERR_OK ? UPSTREAM_CONTINUE : UPSTREAM_ABORT;
}

/* The classifier's answer text: OpenAI's choices[0].message.content or
 * Anthropic's content[0].text. */
static bool classifier_text(const gw_rcheck *k, char *out, size_t cap, size_t *len)
{
    jval root = jscan_root(k->body.p ? k->body.p : "", k->body.len), a, b, t;
    if (!k->body.len || !jscan_validate(k->body.p, k->body.len, 64, NULL))
        return false;
    jscan_iter it;
    if (k->wire == API_ANTHROPIC) {
        if (!jscan_get(root, "content", &a, NULL))
            return false;
        jscan_iter_init(&it, a);
        return jscan_next(&it, NULL, &b) && jscan_get(b, "text", &t, NULL) && jscan_string(t, out, cap, len);
    }
    if (!jscan_get(root, "choices", &a, NULL))
        return false;
    jscan_iter_init(&it, a);
    return jscan_next(&it, NULL, &b) && jscan_get(b, "message", &t, NULL) && jscan_get(t, "content", &t, NULL) &&
           jscan_string(t, out, cap, len);
}

static void rc_done(void *ud, err_code e, const char *msg)
{
    gw_rcheck *k = ud;
    gw_call *c = k->c;
    k->uc = NULL;
    k->sc = NULL;
    uint64_t now = http_now_ns();
    if (e != ERR_OK) {
        log_req(L_WARN, c->r->request_id, "guardrail %s check of policy %s failed: %s", guard_detector_name(k->det),
                guard_policy_at(c->g->guard, (size_t)k->policy)->name, msg ? msg : err_message(e));
        guard_remote_failed(c->gq, k->policy, k->det, k->st, k->t0, now - k->t0);
    } else if (k->det == GD_WEBHOOK) {
        guard_webhook_answer(c->gq, k->policy, k->st, k->status, k->body.p ? k->body.p : "", k->body.len, k->t0,
                             now - k->t0);
    } else {
        char answer[512];
        size_t alen = 0;
        if (k->status >= 200 && k->status < 300 && classifier_text(k, answer, sizeof answer, &alen))
            guard_harm_answer(c->gq, k->policy, k->st, 0, -1, k->text_len, answer, alen, k->t0, now - k->t0);
        else
            guard_remote_failed(c->gq, k->policy, k->det, k->st, k->t0, now - k->t0);
    }
    if (--c->rpending == 0)
        remote_done(c);
}

static const upstream_callbacks rc_callbacks = { rc_head, rc_data, rc_done };

/* Starts one remote check; false (the check recorded as failed) when it
 * cannot be started. */
static bool rc_start(gw_call *c, gw_rcheck *k, const guard_policy_info *pi, const char *text, size_t len)
{
    pool *pl = c->r->pool;
    upstream_request ur = { .method = "POST" };
    json_t *o = NULL;
    if (k->det == GD_WEBHOOK) {
        o = guard_webhook_request(c->gq, k->policy, k->st, (const char *const[]){ text }, (const size_t[]){ len }, 1);
        const char **hdr = pool_calloc(pl, (pi->nwebhook_headers + 2) * sizeof *hdr);
        if (!hdr) {
            json_decref(o);
            return false;
        }
        size_t nh = 0;
        hdr[nh++] = "Content-Type: application/json";
        for (size_t i = 0; i < pi->nwebhook_headers; i++) {
            size_t n = strlen(pi->webhook_headers[i].name) + strlen(pi->webhook_headers[i].value) + 3;
            char *h = pool_alloc(pl, n);
            if (h) {
                snprintf(h, n, "%s: %s", pi->webhook_headers[i].name, pi->webhook_headers[i].value);
                hdr[nh++] = h;
            }
        }
        ur.url = pi->webhook_url;
        ur.headers = hdr;
        ur.timeout_ms = pi->webhook_timeout_ms > 0 ? pi->webhook_timeout_ms : 2000;
        k->wire = API_OPENAI;
    } else {
        gw_target t;
        if (gateway_resolve(c->g, sv_from(pi->harm_model), &t, 1) < 1)
            return false;
        const cfg_provider *p = t.prov;
        o = guard_harm_request(c->gq, k->policy, t.upstream_model, text, len);
        if (!o)
            return false;
        k->wire = provider_wire(p);
        if (p->type == PROVIDER_SIMULATOR) {
            uint64_t seq = atomic_fetch_add(&c->g->seq, 1);
            err_code e = sim_plan_make(&p->sim, SIM_CHAT, t.upstream_model, o, seq, pl, &k->plan);
            json_decref(o);
            k->wire = API_OPENAI;
            return e == ERR_OK &&
                   simplay_start(http_worker_loop(c->w->hw), &k->plan, &rc_callbacks, k, &k->sc) == ERR_OK;
        }
        if (k->wire == API_ANTHROPIC) {
            xlate_err xe = { 0 };
            json_t *a = anthropic_from_chat_request(o, t.upstream_model, &xe);
            json_decref(o);
            o = a;
        }
        gw_endpoint wep;
        provider_http ph;
        if (!o || !provider_endpoint(p, EP_CHAT, &wep) ||
            provider_build_http(p, wep, t.upstream_model, false, pl, &ph) != ERR_OK) {
            json_decref(o);
            return false;
        }
        ur.url = ph.url;
        ur.headers = ph.headers;
        ur.connect_timeout_ms = p->connect_timeout_ms;
        ur.timeout_ms = pi->harm_timeout_ms > 0 ? pi->harm_timeout_ms : 10000;
        ur.ca_file = p->ca_file;
    }
    if (!o)
        return false;
    ur.body = dump_pool(pl, o, &ur.body_len);
    json_decref(o);
    return ur.body && upstream_start(c->w->up, &ur, &rc_callbacks, k, &k->uc) == ERR_OK;
}

/* Whether some policy of stage st calls out (harm classifier, webhook). */
static bool stage_remote(const gw_call *c, guard_stage st)
{
    guard_set set = guard_req_set(c->gq, st);
    for (size_t i = 0; set; i++, set >>= 1) {
        const guard_policy_info *pi = (set & 1) ? guard_policy_at(c->g->guard, i) : NULL;
        if (pi && (pi->detectors & ((1u << GD_HARM) | (1u << GD_WEBHOOK))))
            return true;
    }
    return false;
}

/* Starts the remote checks of stage st's policies over the texts (joined).
 * Returns how many are in flight (remote_done follows when they end). */
static int remote_start(gw_call *c, guard_stage st, const char *const *texts, const size_t *lens, size_t n)
{
    guard_set set = guard_req_set(c->gq, st);
    const uint32_t remote = (1u << GD_HARM) | (1u << GD_WEBHOOK);
    const char *text = NULL;
    size_t len = 0;
    c->rstage = st;
    for (size_t i = 0; set && i < GUARD_MAX_POLICIES; i++) {
        if (!(set & ((guard_set)1 << i)))
            continue;
        const guard_policy_info *pi = guard_policy_at(c->g->guard, i);
        if (!pi || !(pi->detectors & remote))
            continue;
        if (!text) { /* the texts joined once, for every check */
            buf j;
            buf_init(&j, 16u << 20);
            for (size_t t = 0; t < n; t++) {
                if (t)
                    buf_append(&j, "\n\n", 2);
                buf_append(&j, texts[t], lens[t]);
            }
            char *s = pool_alloc(c->r->pool, j.len + 1);
            if (s) {
                memcpy(s, j.p ? j.p : "", j.len);
                s[j.len] = '\0';
            }
            buf_free(&j);
            text = s ? s : "";
            len = s ? strlen(s) : 0;
        }
        for (guard_detector d = GD_HARM; d <= GD_WEBHOOK; d++) {
            if (!(pi->detectors & (1u << d)))
                continue;
            gw_rcheck *k = c->nrc < GW_MAX_RCHECKS ? pool_calloc(c->r->pool, sizeof *k) : NULL;
            uint64_t t0 = http_now_ns();
            if (!k) {
                guard_remote_failed(c->gq, (int)i, d, st, t0, 0);
                continue;
            }
            k->c = c;
            k->policy = (int)i;
            k->det = d;
            k->st = st;
            k->t0 = t0;
            k->text_len = len;
            buf_init(&k->body, MAX_RCHECK_BODY);
            c->rc[c->nrc++] = k;
            if (rc_start(c, k, pi, text, len))
                c->rpending++;
            else
                guard_remote_failed(c->gq, (int)i, d, st, t0, http_now_ns() - t0);
        }
    }
    return c->rpending;
}

/* Which policies apply and the input stage. False with e when the request
 * cannot go on (blocked, a bad response_format schema, out of memory). */
static bool guard_input(gw_call *c, gw_error *e)
{
    const guard_engine *ge = c->g->guard;
    if (!ge || guard_policy_count(ge) == 0)
        return true;
    const cfg_deployment *d = c->rq.model[0] ? config_find_deployment(c->g->cfg, sv_from(c->rq.model)) : NULL;
    const char *key = c->admin_key ? "admin" : NULL;
    guard_set set[GS__COUNT];
    bool any = false;
    for (guard_stage st = 0; st < GS__COUNT; st++) {
        set[st] = guard_select(ge, st, c->rq.model, d ? d->name : NULL, key);
        any |= set[st] != 0;
    }
    if (!any)
        return true;
    c->gq = guard_req_new(ge, set);
    if (!c->gq) {
        gw_error_set(e, 503, "api_error", NULL, NULL, "out of memory");
        return false;
    }
    const char *nb;
    size_t nl;
    char msg[256] = "";
    err_code er = gw_guard_request(c->gq, ge, c->ep, c->cfmt, c->rq.body, c->rq.len, &c->rq, c->r->pool, &nb, &nl,
                                   msg, sizeof msg);
    if (er == ERR_INVAL) {
        gw_error_set(e, 400, "invalid_request_error", NULL, "response_format", "%s", msg);
        return false;
    }
    if (er != ERR_OK) {
        gw_error_set(e, 503, "api_error", NULL, NULL, "out of memory");
        return false;
    }
    if (guard_verdict(c->gq, GS_INPUT) == GA_BLOCK) {
        char m[400];
        guard_block_message(c->gq, GS_INPUT, m, sizeof m);
        log_req(L_INFO, c->r->request_id, "%s", m);
        gw_error_set(e, 400, "guardrail_violation", "guardrail_violation", NULL, "%s", m);
        guard_header(c, false);
        return false;
    }
    if (nb) { /* the redacted body replaces the client's */
        json_decref(c->rq.root);
        c->rq.root = NULL;
        if (gw_decode_request(c->ep, nb, nl, &c->rq, e) != ERR_OK)
            return false;
    }
    if (stage_remote(c, GS_INPUT)) {
        const char *texts[64];
        size_t lens[64];
        size_t n = gw_guard_texts(c->ep, c->cfmt, false, c->rq.body, c->rq.len, c->r->pool, texts, lens, 64);
        remote_start(c, GS_INPUT, texts, lens, n);
    }
    return true;
}

/* ---- endpoints -------------------------------------------------------- */

/* The data plane needs the admin key as a bearer token (or Anthropic's
 * x-api-key) when one is configured; virtual keys come with governance. */
static bool authorized(http_req *r, const char *key)
{
    if (!key || !*key)
        return true;
    sv a = http_req_header(r, "authorization");
    char tok[512];
    if (a.len > 7 && strncasecmp(a.p, "Bearer ", 7) == 0 && a.len - 7 < sizeof tok) {
        memcpy(tok, a.p + 7, a.len - 7);
        tok[a.len - 7] = '\0';
        return ct_equal(tok, key);
    }
    sv x = http_req_header(r, "x-api-key");
    if (x.len && x.len < sizeof tok) {
        memcpy(tok, x.p, x.len);
        tok[x.len] = '\0';
        return ct_equal(tok, key);
    }
    return false;
}

/* A chat request that names a prompt (or whose deployment binds one):
 * render it into a new body, decode that, and record the prompt and a
 * prompt span. False with e on any error. */
static bool apply_prompt(gw_call *c, gw_error *e)
{
    const cfg_deployment *d = c->rq.model[0] ? config_find_deployment(c->g->cfg, sv_from(c->rq.model)) : NULL;
    const char *bound = d ? d->prompt : NULL;
    if (!c->rq.has_prompt && !bound)
        return true;
    uint64_t t0 = http_now_ns();
    gw_prompted pr;
    if (gw_prompt_apply(c->g->prompts, &c->rq, bound, c->r->pool, c->w->prompt_scratch, &pr, e) != ERR_OK)
        return false;
    c->rq = pr.rq;
    if (c->tr) {
        copy_cstr(c->tr->prompt_name, sizeof c->tr->prompt_name, pr.name);
        c->tr->prompt_version = pr.version;
        span_rec *s = trace_add_span(c->tr, SPAN_PROMPT, unix_of(c, t0));
        if (s)
            s->end_ns = unix_of(c, http_now_ns());
    }
    return true;
}

static void handle_infer(http_req *r, gw_endpoint ep, api_format cfmt)
{
    gw_worker *w = http_worker_data(r->worker);
    gateway *g = w->g;
    gw_error e;
    if (!authorized(r, g->cfg->server.admin_key)) {
        gw_error_set(&e, 401, "invalid_request_error", "invalid_api_key", NULL,
                     "missing or invalid API key: send the gateway's key as 'Authorization: Bearer KEY'");
        send_error(r, cfmt, &e, 0);
        return;
    }
    gw_call *c = pool_calloc(r->pool, sizeof *c);
    if (!c || pool_cleanup_add(r->pool, call_cleanup, c) < 0) {
        gw_error_set(&e, 503, "api_error", NULL, NULL, "out of memory");
        send_error(r, cfmt, &e, 0);
        return;
    }
    c->r = r;
    c->w = w;
    c->g = g;
    c->ep = ep;
    c->cfmt = cfmt;
    buf_init(&c->body, MAX_RESPONSE_BYTES);
    buf_init(&c->out, MAX_RESPONSE_BYTES);
    if (g->obs.inflight)
        g->obs.inflight(g->obs.ud, http_worker_index(r->worker), +1);
    trace_begin(c);
    if (gw_decode_request(ep, r->body, r->body_len, &c->rq, &e) != ERR_OK) {
        send_error(r, cfmt, &e, 0);
        return;
    }
    if (ep == EP_CHAT && !apply_prompt(c, &e)) {
        send_error(r, cfmt, &e, 0);
        return;
    }
    r->ud = c;
    r->on_abort = on_abort;
    r->on_drain = on_drain;
    c->admin_key = g->cfg->server.admin_key && *g->cfg->server.admin_key;
    if (!guard_input(c, &e)) {
        trace_request(c, false);
        send_error(r, cfmt, &e, 0);
        return;
    }
    if (c->rpending == 0)
        infer_continue(c);
}

/* After the input stage: resolve the model and make the first attempt. */
static void infer_continue(gw_call *c)
{
    http_req *r = c->r;
    gateway *g = c->g;
    api_format cfmt = c->cfmt;
    gw_error e;
    trace_request(c, true);
    /* a PROVIDER/MODEL target's upstream_model points into rq.model: copy */
    c->nt = gateway_resolve(g, sv_from(c->rq.model), c->t, GW_MAX_TARGETS);
    for (int i = 0; i < c->nt; i++)
        c->t[i].upstream_model = pool_strdup(r->pool, c->t[i].upstream_model);
    if (c->nt == 0) {
        gw_error_set(&e, 404, "invalid_request_error", "model_not_found", "model",
                     "The model '%s' does not exist: it is not a configured model or deployment, nor PROVIDER/MODEL "
                     "with a configured provider (GET /v1/models lists them)",
                     c->rq.model);
        send_error(r, cfmt, &e, 0);
        return;
    }
    attempt_start(c);
}

static void model_entry(json_t *list, const char *id, const char *owner, time_t created)
{
    json_array_append_new(list, json_pack("{s:s, s:s, s:I, s:s}", "id", id, "object", "model", "created",
                                          (json_int_t)created, "owned_by", owner));
}

static json_t *models_list(gateway *g)
{
    const config *cfg = g->cfg;
    json_t *data = json_array();
    for (size_t i = 0; i < cfg->nmodels; i++)
        model_entry(data, cfg->models[i].name, cfg->models[i].provider, g->started);
    for (size_t i = 0; i < cfg->ndeployments; i++)
        model_entry(data, cfg->deployments[i].name, "genaiops-deployment", g->started);
    for (size_t i = 0; i < cfg->nproviders; i++) {
        const cfg_provider *p = &cfg->providers[i];
        if (p->type != PROVIDER_SIMULATOR)
            continue;
        for (size_t k = 0; sim_mode_name(k); k++) {
            char id[160];
            snprintf(id, sizeof id, "%s/%s", p->name, sim_mode_name(k));
            model_entry(data, id, "genaiops-simulator", g->started);
        }
    }
    return data;
}

static void handle_models(http_req *r, sv id)
{
    gw_worker *w = http_worker_data(r->worker);
    gw_error e;
    if (!authorized(r, w->g->cfg->server.admin_key)) {
        gw_error_set(&e, 401, "invalid_request_error", "invalid_api_key", NULL, "missing or invalid API key");
        send_error(r, API_OPENAI, &e, 0);
        return;
    }
    json_t *data = models_list(w->g);
    if (!id.len) {
        add_overhead(r, 0);
        send_json(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
        return;
    }
    /* SDKs percent-encode the id: models.retrieve("sim/echo") asks for sim%2Fecho */
    char decoded[256];
    size_t dn = http_url_decode(decoded, sizeof decoded, id);
    if (dn != (size_t)-1)
        id = sv_make(decoded, dn);
    size_t i;
    json_t *m;
    json_array_foreach(data, i, m) {
        if (sv_eq_cstr(id, json_string_value(json_object_get(m, "id")))) {
            json_incref(m);
            json_decref(data);
            add_overhead(r, 0);
            send_json(r, 200, m);
            return;
        }
    }
    json_decref(data);
    gw_error_set(&e, 404, "invalid_request_error", "model_not_found", "model", "The model '%.*s' does not exist",
                 SV_FMT(id));
    send_error(r, API_OPENAI, &e, 0);
}

/* The control plane needs the admin key whenever one is set; answers 401
 * and returns false otherwise. */
static bool admin_ok(http_req *r)
{
    gw_worker *w = http_worker_data(r->worker);
    const config *cfg = w->g->cfg;
    if (!cfg->server.admin_key || !*cfg->server.admin_key || authorized(r, cfg->server.admin_key))
        return true;
    gw_error e;
    gw_error_set(&e, 401, "invalid_request_error", "invalid_admin_key", NULL,
                 "the control plane needs the admin key as 'Authorization: Bearer KEY'");
    send_error(r, API_OPENAI, &e, 0);
    return false;
}

static const char *store_url(http_req *r)
{
    gw_worker *w = http_worker_data(r->worker);
    return w->g->cfg->store_url ? w->g->cfg->store_url : "sqlite://./genaiops.db";
}

/* Langfuse's SDKs authenticate with Basic PUBLIC_KEY:SECRET_KEY: the
 * secret key is the admin key (any public key); a bearer admin key works
 * too. With no admin key configured the path is open, as /api/v1 is. */
static bool langfuse_ok(http_req *r)
{
    gw_worker *w = http_worker_data(r->worker);
    const char *key = w->g->cfg->server.admin_key;
    if (!key || !*key || authorized(r, key))
        return true;
    sv a = http_req_header(r, "authorization");
    if (a.len > 6 && a.len < 700 && strncasecmp(a.p, "Basic ", 6) == 0) {
        unsigned char dec[600];
        int n = EVP_DecodeBlock(dec, (const unsigned char *)a.p + 6, (int)(a.len - 6));
        if (n > 0) {
            /* EVP_DecodeBlock counts the '=' padding as zero bytes */
            while (n > 0 && dec[n - 1] == '\0')
                n--;
            dec[n] = '\0';
            const char *colon = memchr(dec, ':', (size_t)n);
            if (colon && ct_equal(colon + 1, key))
                return true;
        }
    }
    http_resp_header(r, "www-authenticate", "Basic realm=\"genaiops\"");
    http_resp_send(r, 401, "application/json",
                   "{\"message\":\"Unauthorized: use Basic auth with the genaiops admin key as the secret key\"}",
                   strlen("{\"message\":\"Unauthorized: use Basic auth with the genaiops admin key as the secret key\"}"));
    return false;
}

/* Whether the caller presented the admin key (for recording who moved a
 * label and for protected labels). */
static bool admin_presented(http_req *r)
{
    gw_worker *w = http_worker_data(r->worker);
    const char *key = w->g->cfg->server.admin_key;
    return key && *key && authorized(r, key);
}

static void r_traces(http_req *r)
{
    if (admin_ok(r))
        api_traces_list(r, store_url(r));
}
static void r_scores(http_req *r)
{
    if (admin_ok(r))
        api_scores_post(r, store_url(r));
}
static void r_score_configs(http_req *r)
{
    if (admin_ok(r))
        api_score_configs(r, store_url(r));
}

/* Prometheus scrapes: no key needed (like the probes); listen on loopback
 * or put it behind your network policy. */
static void r_metrics(http_req *r)
{
    buf out;
    buf_init(&out, 64u << 20);
    if (metrics_render_prometheus(&out) != ERR_OK) {
        buf_free(&out);
        http_resp_send(r, 500, "text/plain", "metrics unavailable\n", 20);
        return;
    }
    char *body = pool_strndup(r->pool, out.p ? out.p : "", out.len);
    size_t len = out.len;
    buf_free(&out);
    http_resp_send(r, 200, "text/plain; version=0.0.4; charset=utf-8", body ? body : "", body ? len : 0);
}

static void handle_status(http_req *r)
{
    gw_worker *w = http_worker_data(r->worker);
    const config *cfg = w->g->cfg;
    if (!admin_ok(r))
        return;
    json_t *provs = json_array();
    for (size_t i = 0; i < cfg->nproviders; i++)
        json_array_append_new(provs, json_pack("{s:s, s:s, s:s?}", "name", cfg->providers[i].name, "type",
                                               provider_type_name(cfg->providers[i].type), "base_url",
                                               cfg->providers[i].base_url));
    send_json(r, 200,
              json_pack("{s:s, s:s, s:I, s:I, s:o, s:o}", "name", "genaiops", "version", GENAIOPS_VERSION,
                        "uptime_s", (json_int_t)(time(NULL) - w->g->started), "connections",
                        (json_int_t)http_conns_active(), "providers", provs, "models", models_list(w->g)));
}

typedef struct route {
    const char *path;
    const char *method;
    void (*fn)(http_req *r);
} route;

static void r_chat(http_req *r) { handle_infer(r, EP_CHAT, API_OPENAI); }
static void r_completions(http_req *r) { handle_infer(r, EP_COMPLETIONS, API_OPENAI); }
static void r_embeddings(http_req *r) { handle_infer(r, EP_EMBEDDINGS, API_OPENAI); }
static void r_messages(http_req *r) { handle_infer(r, EP_MESSAGES, API_ANTHROPIC); }
static void r_models(http_req *r) { handle_models(r, SV_NULL); }
static void r_healthz(http_req *r) { http_resp_send(r, 200, "application/json", "{\"status\":\"ok\"}", 15); }
static void r_readyz(http_req *r)
{
    if (http_worker_stopping(r->worker))
        http_resp_send(r, 503, "application/json", "{\"status\":\"draining\"}", 21);
    else
        http_resp_send(r, 200, "application/json", "{\"status\":\"ready\"}", 18);
}
static void r_root(http_req *r)
{
    static const char body[] =
        "{\"name\":\"genaiops\",\"version\":\"" GENAIOPS_VERSION "\",\"endpoints\":[\"/v1/chat/completions\","
        "\"/v1/completions\",\"/v1/embeddings\",\"/v1/messages\",\"/v1/models\",\"/healthz\",\"/readyz\","
        "\"/metrics\",\"/api/v1/status\",\"/api/v1/traces\",\"/api/v1/scores\",\"/api/v1/score-configs\","
        "\"/api/v1/prompts\",\"/api/public/v2/prompts\",\"/api/v1/guard\",\"/api/v1/evals\",\"/api/v1/stats\","
        "\"/ui/\"]}";
    http_resp_send(r, 200, "application/json", body, sizeof body - 1);
}

static const route routes[] = {
    { "/v1/chat/completions", "POST", r_chat },
    { "/v1/completions", "POST", r_completions },
    { "/v1/embeddings", "POST", r_embeddings },
    { "/v1/messages", "POST", r_messages },
    { "/v1/models", "GET", r_models },
    { "/healthz", "GET", r_healthz },
    { "/readyz", "GET", r_readyz },
    { "/api/v1/status", "GET", handle_status },
    { "/api/v1/traces", "GET", r_traces },
    { "/api/v1/scores", "POST", r_scores },
    { "/api/v1/score-configs", "GET", r_score_configs },
    { "/api/v1/score-configs", "POST", r_score_configs },
    { "/metrics", "GET", r_metrics },
    { "/", "GET", r_root },
};

void gateway_handle(http_req *r)
{
    bool path_known = false;
    sv method = r->method;
    if (sv_eq_cstr(method, "HEAD"))
        method = SV("GET");
    for (size_t i = 0; i < countof(routes); i++) {
        if (!sv_eq_cstr(r->path, routes[i].path))
            continue;
        path_known = true;
        if (sv_eq_cstr(method, routes[i].method)) {
            routes[i].fn(r);
            return;
        }
    }
    gw_error e;
    if (!path_known && sv_starts(r->path, SV("/v1/models/")) && sv_eq_cstr(method, "GET")) {
        handle_models(r, sv_make(r->path.p + 11, r->path.len - 11));
        return;
    }
    if (!path_known && (sv_eq_cstr(r->path, "/api/v1/prompts") || sv_starts(r->path, SV("/api/v1/prompts/")))) {
        if (admin_ok(r)) {
            gw_worker *w = http_worker_data(r->worker);
            const config *cfg = w->g->cfg;
            bool has_key = cfg->server.admin_key && *cfg->server.admin_key;
            /* single-user mode (no admin key): every label moves freely */
            api_prompts(r, store_url(r), admin_presented(r), cfg->prompts.protected_labels,
                        has_key ? cfg->prompts.nprotected : 0);
        }
        return;
    }
    if (!path_known && (sv_eq_cstr(r->path, "/api/public/v2/prompts") || sv_starts(r->path, SV("/api/public/v2/prompts/")))) {
        if (langfuse_ok(r))
            api_langfuse_prompts(r, store_url(r));
        return;
    }
    if (!path_known && sv_starts(r->path, SV("/api/v1/guard/"))) {
        if (admin_ok(r)) {
            gw_worker *w = http_worker_data(r->worker);
            api_guard(r, w->g->cfg, w->g->guard);
        }
        return;
    }
    if (!path_known && (sv_eq_cstr(r->path, "/api/v1/evals") || sv_starts(r->path, SV("/api/v1/evals/")))) {
        if (admin_ok(r))
            api_evals(r, store_url(r));
        return;
    }
    if (!path_known && sv_starts(r->path, SV("/api/v1/stats/"))) {
        if (admin_ok(r))
            api_stats(r, store_url(r));
        return;
    }
    if (!path_known && (sv_eq_cstr(r->path, "/ui") || sv_starts(r->path, SV("/ui/")))) {
        web_serve(r); /* the assets are public; the data they show needs the admin key */
        return;
    }
    if (!path_known && sv_starts(r->path, SV("/api/v1/traces/")) && r->path.len > 15 && sv_eq_cstr(method, "GET")) {
        if (admin_ok(r))
            api_trace_get(r, store_url(r), sv_make(r->path.p + 15, r->path.len - 15));
        return;
    }
    api_format fmt = sv_eq_cstr(r->path, "/v1/messages") ? API_ANTHROPIC : API_OPENAI;
    if (path_known) {
        const char *allow = "GET, HEAD";
        for (size_t i = 0; i < countof(routes); i++)
            if (sv_eq_cstr(r->path, routes[i].path) && strcmp(routes[i].method, "POST") == 0)
                allow = "POST";
        http_resp_header(r, "allow", allow);
        gw_error_set(&e, 405, "invalid_request_error", "method_not_allowed", NULL,
                     "method %.*s is not allowed on %.*s (allowed: %s)", SV_FMT(r->method), SV_FMT(r->path), allow);
    } else {
        gw_error_set(&e, 404, "invalid_request_error", "unknown_url", NULL, "Unknown request URL: %.*s %.*s",
                     SV_FMT(r->method), (int)MIN(r->path.len, 200), r->path.p);
    }
    send_error(r, fmt, &e, 0);
}

/* ---- setup ------------------------------------------------------------ */

gateway *gateway_new(const config *cfg)
{
    gateway *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->cfg = cfg;
    g->started = time(NULL);
    return g;
}

void gateway_free(gateway *g) { free(g); }

void gateway_set_observe(gateway *g, const gw_observe *o) { g->obs = *o; }
void gateway_set_prompts(gateway *g, prompt_server *ps) { g->prompts = ps; }
void gateway_set_guard(gateway *g, const guard_engine *e) { g->guard = e; }
const guard_engine *gateway_guard(const gateway *g) { return g->guard; }

int gateway_worker_start(http_worker *hw)
{
    gw_worker *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->g = http_worker_app(hw);
    w->hw = hw;
    w->up = upstream_new(http_worker_loop(hw));
    if (!w->up) {
        free(w);
        return -1;
    }
    http_worker_set_data(hw, w);
    return 0;
}

void gateway_worker_stop(http_worker *hw)
{
    gw_worker *w = http_worker_data(hw);
    if (!w)
        return;
    upstream_close(w->up);
    guard_req_cache_release();
    buf_free(&w->prompt_scratch[0]);
    buf_free(&w->prompt_scratch[1]);
    free(w);
    http_worker_set_data(hw, NULL);
}
