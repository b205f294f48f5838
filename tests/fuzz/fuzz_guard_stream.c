/*
 * fuzz_guard_stream.c - libFuzzer driver for the guardrail streams
 * (src/guard/guard_stream.c): the input's text is fed in chunks of sizes
 * drawn from the input's first bytes through a stream at the output stage
 * with a pii + secrets redact policy (restore on, so the output can be
 * mapped back), and the driver aborts when:
 *  - a call fails, or the stream blocks (nothing here blocks);
 *  - the output does not turn back into the input exactly when every
 *    placeholder is restored (so nothing was lost, duplicated or reordered);
 *  - a finding of the whole text scanned at once (guard_scan_part on a
 *    separate request) is not entirely covered by placeholders in the
 *    output: a match split across chunks must never leak.
 * '<' in the text becomes '{' so that every '<' of the output starts a
 * placeholder of ours. The hold-back is 64 (the default) or 256.
 */
#include <stdlib.h>
#include <string.h>
#include "guard/guard.h"

#define MAX_TEXT 8192

static guard_engine *eng[2];

static void setup(void)
{
    static const char *dets[] = { "pii", "secrets" };
    static cfg_guard_policy p[2];
    static cfg_guardrails cfg[2];
    for (int i = 0; i < 2; i++) {
        memset(&p[i], 0, sizeof p[i]);
        p[i].name = "mask";
        p[i].stages = 1u << GS_OUTPUT;
        p[i].detectors = dets;
        p[i].ndetectors = 2;
        p[i].action = "redact";
        p[i].restore = true;
        p[i].stream_holdback = i ? 256 : 64;
        cfg[i].policies = &p[i];
        cfg[i].npolicies = 1;
        char msg[256];
        if (guard_engine_new(&cfg[i], &eng[i], msg, sizeof msg) != ERR_OK)
            abort();
    }
}

static guard_req *req(const guard_engine *g)
{
    guard_set set[GS__COUNT] = { 0, 1, 0 };
    guard_req *q = guard_req_new(g, set);
    if (!q)
        abort();
    return q;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!eng[0])
        setup();
    if (size < 3)
        return 0;
    uint32_t seed = (uint32_t)data[0] | (uint32_t)data[1] << 8;
    const guard_engine *g = eng[data[2] & 1];
    unsigned maxchunk = 1u + (data[2] >> 1); /* 1..128 */
    size_t len = size - 3 > MAX_TEXT ? MAX_TEXT : size - 3;
    char *text = malloc(len ? len : 1);
    if (!text)
        return 0;
    for (size_t i = 0; i < len; i++)
        text[i] = data[3 + i] == '<' ? '{' : (char)data[3 + i];

    /* the stream */
    guard_req *q = req(g);
    guard_stream *s = guard_stream_new(q, GS_OUTPUT, 0);
    buf out;
    buf_init(&out, 1 << 20);
    for (size_t i = 0; i < len;) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 16) % maxchunk;
        if (n > len - i)
            n = len - i;
        char *chunk = malloc(n); /* exact size: ASan sees reads past it */
        if (!chunk)
            abort();
        memcpy(chunk, text + i, n);
        if (guard_stream_feed(s, chunk, n, &out) != ERR_OK)
            abort();
        free(chunk);
        i += n;
    }
    if (guard_stream_finish(s, &out) != ERR_OK || guard_stream_blocked(s))
        abort();

    /* back to the text, marking what was replaced */
    unsigned char *covered = calloc(len ? len : 1, 1);
    buf one;
    buf_init(&one, 1 << 20);
    size_t i = 0;
    for (size_t j = 0; j < out.len;) {
        if (out.p[j] != '<') {
            if (i >= len || out.p[j] != text[i])
                abort();
            i++, j++;
            continue;
        }
        const char *gt = memchr(out.p + j, '>', out.len - j);
        if (!gt)
            abort();
        size_t tl = (size_t)(gt - (out.p + j)) + 1, nr = 0;
        buf_reset(&one);
        if (guard_restore(q, out.p + j, tl, &one, &nr) != ERR_OK || nr != 1)
            abort();
        if (one.len > len - i || memcmp(one.p, text + i, one.len) != 0)
            abort();
        memset(covered + i, 1, one.len);
        i += one.len;
        j += tl;
    }
    if (i != len)
        abort();

    /* the whole text at once: every finding must be covered */
    guard_req *w = req(g);
    if (guard_scan_part(w, GS_OUTPUT, GR_ASSISTANT, 0, 0, -1, text, len) != ERR_OK)
        abort();
    const guard_hit *h;
    size_t nh = guard_req_hits(w, &h);
    for (size_t k = 0; k < nh; k++)
        for (size_t b = h[k].f.start; b < (size_t)h[k].f.start + h[k].f.len; b++)
            if (!covered[b])
                abort();

    buf_free(&one);
    free(covered);
    guard_req_free(w);
    buf_free(&out);
    guard_stream_free(s);
    guard_req_free(q);
    free(text);
    return 0;
}
