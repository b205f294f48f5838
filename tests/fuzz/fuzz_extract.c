/*
 * fuzz_extract.c - libFuzzer driver for what a trace reads out of a
 * provider's response (src/observe/extract.c) and the walk it uses over
 * text nobody validated (jscan_walk in src/core/jscan.c).
 *
 * The input, copied to an exact-size heap buffer so ASan sees any read past
 * its end, is given to every extractor as a body, a stream chunk and an
 * Anthropic event. Beyond "no crash, no leak" the driver aborts when:
 *  - on a document jansson accepts (without NUL bytes: see below), the OpenAI extractor disagrees with a
 *    reference computed from jansson's tree: the id and model (kept whole
 *    or not at all), every choice's finish_reason (the last one when a
 *    choice repeats it; each once, in order, while they fit), and the
 *    usage counts (integers only; total - prompt for embeddings);
 *  - the same document pretty-printed, or with every non-ASCII character
 *    escaped (keys included), reads differently;
 *  - a prefix of such a document that ends before its closing brace (a
 *    body cut off in transit) yields anything at all.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "observe/extract.h"

typedef struct seen {
    char id[96], model[128], reasons[64];
    long long in, out, cached, reasoning;
} seen;

static void run_openai(const char *p, size_t n, seen *s)
{
    trace_rec *t = trace_new(0);
    if (!t)
        abort();
    extract_openai_response(t, p, n);
    memcpy(s->id, t->response_id, sizeof s->id);
    memcpy(s->model, t->response_model, sizeof s->model);
    memcpy(s->reasons, t->finish_reasons, sizeof s->reasons);
    s->in = t->input_tokens, s->out = t->output_tokens;
    s->cached = t->cache_read_tokens, s->reasoning = t->reasoning_tokens;
    trace_free(t);
}

static bool same(const seen *a, const seen *b)
{
    return strcmp(a->id, b->id) == 0 && strcmp(a->model, b->model) == 0 && strcmp(a->reasons, b->reasons) == 0 &&
           a->in == b->in && a->out == b->out && a->cached == b->cached && a->reasoning == b->reasoning;
}

/* A string member kept whole when it fits in cap with its NUL, else "". */
static void ref_string(json_t *o, const char *key, char *dst, size_t cap)
{
    json_t *v = json_object_get(o, key);
    dst[0] = '\0';
    if (json_is_string(v) && json_string_length(v) < cap)
        memcpy(dst, json_string_value(v), json_string_length(v) + 1);
}

/* The reference's finish reasons: a list of distinct strings, joined with
 * commas at the end; one that would not fit the trace's field is left out. */
typedef struct reasons {
    const char *r[64];
    size_t n, joined; /* joined: bytes with commas, no NUL */
} reasons;

static void ref_reason(reasons *rs, size_t cap, json_t *v)
{
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= 32)
        return;
    for (size_t i = 0; i < rs->n; i++)
        if (strcmp(rs->r[i], json_string_value(v)) == 0)
            return;
    size_t need = rs->joined + (rs->n ? 1 : 0) + json_string_length(v);
    if (need + 1 > cap || rs->n == 64)
        return;
    rs->r[rs->n++] = json_string_value(v);
    rs->joined = need;
}

static bool ref_int(json_t *o, const char *key, long long *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return false;
    *out = (long long)json_integer_value(v);
    return true;
}

static void reference(json_t *root, seen *s)
{
    memset(s, 0, sizeof *s);
    s->in = s->out = s->cached = s->reasoning = -1;
    ref_string(root, "id", s->id, sizeof s->id);
    ref_string(root, "model", s->model, sizeof s->model);
    json_t *choices = json_object_get(root, "choices"), *c;
    size_t i;
    reasons rs = { .n = 0 };
    if (json_is_array(choices))
        json_array_foreach(choices, i, c)
            if (json_is_object(c))
                ref_reason(&rs, sizeof s->reasons, json_object_get(c, "finish_reason"));
    for (i = 0; i < rs.n; i++)
        snprintf(s->reasons + strlen(s->reasons), sizeof s->reasons - strlen(s->reasons), "%s%s", i ? "," : "", rs.r[i]);
    json_t *u = json_object_get(root, "usage"), *d;
    long long n;
    if (!json_is_object(u))
        return;
    if (ref_int(u, "prompt_tokens", &n))
        s->in = n;
    if (ref_int(u, "completion_tokens", &n))
        s->out = n;
    else if (s->in >= 0 && ref_int(u, "total_tokens", &n))
        s->out = n - s->in >= 0 ? n - s->in : 0;
    if (json_is_object(d = json_object_get(u, "prompt_tokens_details")) && ref_int(d, "cached_tokens", &n))
        s->cached = n;
    if (json_is_object(d = json_object_get(u, "completion_tokens_details")) && ref_int(d, "reasoning_tokens", &n))
        s->reasoning = n;
}

static void check_dump(json_t *root, size_t flags, const seen *want)
{
    char *text = json_dumps(root, flags | JSON_ENCODE_ANY);
    if (!text)
        return; /* out of memory */
    seen got;
    run_openai(text, strlen(text), &got);
    free(text);
    if (!same(&got, want))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    memcpy(p, data, size);
    seen got;
    run_openai(p, size, &got);

    trace_rec *t = trace_new(0);
    extract_openai_chunk(t, p, size);
    extract_anthropic_response(t, p, size);
    extract_anthropic_event(t, SV("message_start"), p, size);
    extract_anthropic_event(t, SV("message_delta"), p, size);
    trace_free(t);

    /* RFC 8259 text holds no NUL byte; jansson 2.14 drops one after a number
     * or literal (see fuzz_jscan.c), where the walk stops, as jscan does */
    json_error_t je;
    json_t *root = memchr(p, 0, size) ? NULL : json_loadb(p, size, 0, &je);
    if (json_is_object(root)) {
        seen want;
        reference(root, &want);
        if (!same(&got, &want))
            abort();
        check_dump(root, JSON_INDENT(2), &want);
        check_dump(root, JSON_ENSURE_ASCII | JSON_COMPACT, &want);
        /* cut somewhere before the root's closing brace */
        size_t close = size;
        while (close > 0 && p[close - 1] != '}')
            close--;
        if (close > 0) {
            uint32_t h = 2166136261u;
            for (size_t i = 0; i < size; i++)
                h = (h ^ data[i]) * 16777619u;
            size_t cut_at = h % close;
            char *q = malloc(cut_at ? cut_at : 1); /* exact size again */
            if (q) {
                memcpy(q, p, cut_at);
                seen cut;
                run_openai(q, cut_at, &cut);
                free(q);
                if (cut.id[0] || cut.model[0] || cut.reasons[0] || cut.in >= 0 || cut.out >= 0 || cut.cached >= 0 ||
                    cut.reasoning >= 0)
                    abort();
            }
        }
    }
    json_decref(root);
    free(p);
    return 0;
}
