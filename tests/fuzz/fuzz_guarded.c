/*
 * fuzz_guarded.c - the gateway's guardrail rewriting (src/gateway/guarded.c)
 * on hostile bodies and streams.
 *
 * The first byte picks what the rest is: a request body (input stage), a
 * response body (output and tool stages) or a stream of events (split at
 * blank lines; in Anthropic's shape "event\ndata"), and the endpoint and
 * API. The policies redact PII and secrets at every stage and put the
 * originals back into answers. Checks: nothing crashes or leaks (ASan), a
 * rewritten body of a valid document is again one valid JSON document,
 * every event a guarded stream writes carries valid JSON (or [DONE]), and
 * two shortcuts agree with the guard's own walk (the same verdicts, hits
 * and body): an OpenAI answer's texts as the trace's extraction walk finds
 * them, and a chat request's messages as the decoder records them.
 */
#include <stdlib.h>
#include <string.h>
#include "core/jscan.h"
#include "gateway/guarded.h"
#include "http/sse.h"

static guard_engine *engine(void)
{
    static guard_engine *g;
    static cfg_guard_policy pol[2];
    static cfg_guardrails cfg;
    static const char *dets[] = { "pii", "secrets" };
    static const char *inj[] = { "injection" };
    if (g)
        return g;
    pol[0] = (cfg_guard_policy){ .name = "redact", .stages = 7, .detectors = dets, .ndetectors = 2, .action = "redact",
                                 .mode = "enforce", .restore = true, .stream_holdback = 16, .injection_threshold = 0.5,
                                 .leak_min_run = 8, .leak_min_coverage = 0.5, .harm_threshold = 1, .on_error = "closed" };
    pol[1] = (cfg_guard_policy){ .name = "inj", .stages = 5, .detectors = inj, .ndetectors = 1, .action = "flag",
                                 .mode = "monitor", .stream_holdback = 64, .injection_threshold = 0.5,
                                 .leak_min_run = 8, .leak_min_coverage = 0.5, .harm_threshold = 1, .on_error = "open" };
    cfg.policies = pol;
    cfg.npolicies = 2;
    char msg[256];
    if (guard_engine_new(&cfg, &g, msg, sizeof msg) != ERR_OK)
        abort();
    return g;
}

static guard_req *request(void)
{
    guard_set set[GS__COUNT] = { 3, 1, 3 };
    guard_req *q = guard_req_new(engine(), set);
    if (!q)
        abort();
    return q;
}

/* The same verdicts, hits and rewritten body. */
static void same(guard_req *q, guard_req *q2, const char *out, size_t olen, const char *out2, size_t olen2)
{
    const guard_hit *h1, *h2;
    size_t n1 = guard_req_hits(q, &h1), n2 = guard_req_hits(q2, &h2);
    for (guard_stage st = 0; st < GS__COUNT; st++)
        if (guard_verdict(q, st) != guard_verdict(q2, st))
            abort();
    if (n1 != n2 || !out != !out2 || (out && (olen != olen2 || memcmp(out, out2, olen) != 0)))
        abort();
    for (size_t i = 0; i < n1; i++)
        if (h1[i].part != h2[i].part || h1[i].where != h2[i].where || h1[i].f.type != h2[i].f.type ||
            h1[i].f.start != h2[i].f.start || h1[i].f.len != h2[i].f.len)
            abort();
}

static void body_case(bool response, gw_endpoint ep, api_format fmt, const char *p, size_t n)
{
    if (!jscan_validate(p, n, 64, NULL))
        return;
    guard_req *q = request();
    pool *pl = pool_new(4096);
    const char *out = NULL;
    size_t olen = 0;
    char msg[128];
    err_code e = response ? gw_guard_response(q, ep, fmt, p, n, NULL, pl, &out, &olen)
                          : gw_guard_request(q, engine(), ep, fmt, p, n, NULL, pl, &out, &olen, msg, sizeof msg);
    if (e == ERR_OK && out && !jscan_validate(out, olen, 64, NULL))
        abort();
    if (response && fmt == API_OPENAI && e == ERR_OK) {
        /* the texts the trace's walk finds must give the same checks and
         * the same body as the guard's own walk */
        trace_rec *t = trace_new(0);
        extract_texts tx = { .completions = ep == EP_COMPLETIONS };
        if (!t)
            abort();
        extract_openai_response_texts(t, p, n, &tx);
        if (tx.complete) {
            guard_req *q2 = request();
            const char *out2 = NULL;
            size_t olen2 = 0;
            if (gw_guard_response(q2, ep, fmt, p, n, &tx, pl, &out2, &olen2) != ERR_OK)
                abort();
            same(q, q2, out, olen, out2, olen2);
            guard_req_free(q2);
        }
        trace_free(t);
    }
    gw_request rq;
    gw_error ge;
    if (!response && ep == EP_CHAT && e == ERR_OK && gw_decode_request(ep, p, n, &rq, &ge) == ERR_OK) {
        /* the messages the decoder recorded must give the same as the walk */
        guard_req *q2 = request();
        const char *out2 = NULL;
        size_t olen2 = 0;
        if (gw_guard_request(q2, engine(), ep, fmt, p, n, &rq, pl, &out2, &olen2, msg, sizeof msg) != ERR_OK)
            abort();
        same(q, q2, out, olen, out2, olen2);
        guard_req_free(q2);
    }
    pool_free(pl);
    guard_req_free(q);
}

static void stream_case(gw_endpoint ep, api_format fmt, const char *p, size_t n)
{
    guard_req *q = request();
    gw_guard_stream *s = gw_guard_stream_new(q, ep, fmt);
    buf out;
    buf_init(&out, 64u << 20);
    size_t at = 0;
    bool stop = false;
    while (at < n && !stop) {
        const char *end = memmem(p + at, n - at, "\n\n", 2);
        size_t len = end ? (size_t)(end - (p + at)) : n - at;
        sv ev = SV_NULL, data = sv_make(p + at, len);
        if (fmt == API_ANTHROPIC) {
            const char *nl = memchr(p + at, '\n', len);
            if (nl) {
                ev = sv_make(p + at, (size_t)(nl - (p + at)));
                data = sv_make(nl + 1, len - ev.len - 1);
            }
        }
        if (gw_guard_stream_event(s, ev, data, &out))
            stop = true;
        at += len + (end ? 2 : 0);
    }
    if (!stop)
        (void)gw_guard_stream_end(s, &out);
    buf_free(&out);
    gw_guard_stream_free(s);
    guard_req_free(q);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned sel = data[0];
    char *p = malloc(size);
    if (!p)
        return 0;
    memcpy(p, data + 1, size - 1);
    size_t n = size - 1;
    static const gw_endpoint eps[] = { EP_CHAT, EP_COMPLETIONS, EP_EMBEDDINGS, EP_MESSAGES };
    gw_endpoint ep = eps[(sel >> 2) & 3];
    api_format fmt = ep == EP_MESSAGES ? API_ANTHROPIC : API_OPENAI;
    switch (sel & 3) {
    case 0: body_case(false, ep, fmt, p, n); break;
    case 1: body_case(true, ep, fmt, p, n); break;
    default: stream_case(ep == EP_EMBEDDINGS ? EP_CHAT : ep, fmt, p, n); break;
    }
    free(p);
    return 0;
}
