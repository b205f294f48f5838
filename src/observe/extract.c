/*
 * extract.c - usage and response fields for traces, read with jscan.
 */
#include <stdio.h>
#include "core/jscan.h"
#include "observe/extract.h"

static bool get_int(jval obj, const char *key, long long *out)
{
    jval v;
    return jscan_get(obj, key, &v, NULL) && jscan_int(v, out);
}

static void copy_str(jval obj, const char *key, char *dst, size_t cap)
{
    jval v;
    size_t n;
    if (jscan_get(obj, key, &v, NULL) && v.type == J_STRING && !jscan_string(v, dst, cap, &n))
        dst[0] = '\0'; /* too long to keep */
}

/* Appends a finish reason unless it is already listed. */
static void add_reason(trace_rec *t, jval v)
{
    char r[32];
    size_t n;
    if (v.type != J_STRING || !jscan_string(v, r, sizeof r, &n) || n == 0)
        return;
    size_t have = strlen(t->finish_reasons);
    /* already there? (the list is short: a linear look is fine) */
    const char *p = t->finish_reasons;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && memcmp(p, r, n) == 0)
            return;
        p = comma ? comma + 1 : p + len;
    }
    if (have + n + 2 > sizeof t->finish_reasons)
        return;
    if (have)
        t->finish_reasons[have++] = ',';
    memcpy(t->finish_reasons + have, r, n + 1);
}

static void openai_usage(trace_rec *t, jval u)
{
    long long v;
    if (u.type != J_OBJECT)
        return;
    if (get_int(u, "prompt_tokens", &v))
        t->input_tokens = v;
    if (get_int(u, "completion_tokens", &v))
        t->output_tokens = v;
    else if (t->input_tokens >= 0 && get_int(u, "total_tokens", &v) && t->output_tokens < 0)
        t->output_tokens = v - t->input_tokens >= 0 ? v - t->input_tokens : 0; /* embeddings: total = prompt */
    jval d;
    if (jscan_get(u, "prompt_tokens_details", &d, NULL) && get_int(d, "cached_tokens", &v))
        t->cache_read_tokens = v;
    if (jscan_get(u, "completion_tokens_details", &d, NULL) && get_int(d, "reasoning_tokens", &v))
        t->reasoning_tokens = v;
}

static void openai_common(trace_rec *t, jval root)
{
    copy_str(root, "id", t->response_id, sizeof t->response_id);
    copy_str(root, "model", t->response_model, sizeof t->response_model);
    jval choices, u;
    if (jscan_get(root, "choices", &choices, NULL) && choices.type == J_ARRAY) {
        jscan_iter it;
        jscan_iter_init(&it, choices);
        jval k, c, fr;
        while (jscan_next(&it, &k, &c))
            if (c.type == J_OBJECT && jscan_get(c, "finish_reason", &fr, NULL))
                add_reason(t, fr);
    }
    if (jscan_get(root, "usage", &u, NULL))
        openai_usage(t, u);
}

void extract_openai_response(trace_rec *t, const char *body, size_t len)
{
    jval root;
    if (!jscan_parse(body, len, 64, &root, NULL, 0, NULL, NULL) || root.type != J_OBJECT)
        return;
    openai_common(t, root);
}

void extract_openai_chunk(trace_rec *t, const char *data, size_t len)
{
    if (len == 0 || data[0] != '{')
        return;
    jval root;
    if (!jscan_parse(data, len, 64, &root, NULL, 0, NULL, NULL) || root.type != J_OBJECT)
        return;
    if (!t->response_id[0])
        copy_str(root, "id", t->response_id, sizeof t->response_id);
    if (!t->response_model[0])
        copy_str(root, "model", t->response_model, sizeof t->response_model);
    jval choices, u;
    if (jscan_get(root, "choices", &choices, NULL) && choices.type == J_ARRAY) {
        jscan_iter it;
        jscan_iter_init(&it, choices);
        jval k, c, fr;
        while (jscan_next(&it, &k, &c))
            if (c.type == J_OBJECT && jscan_get(c, "finish_reason", &fr, NULL))
                add_reason(t, fr);
    }
    if (jscan_get(root, "usage", &u, NULL))
        openai_usage(t, u);
}

static void anthropic_usage(trace_rec *t, jval u, bool delta)
{
    long long in = -1, cr = -1, cc = -1, out;
    if (u.type != J_OBJECT)
        return;
    get_int(u, "cache_read_input_tokens", &cr);
    get_int(u, "cache_creation_input_tokens", &cc);
    if (get_int(u, "input_tokens", &in) && (!delta || in > 0))
        t->input_tokens = in + (cr > 0 ? cr : 0) + (cc > 0 ? cc : 0);
    if (cr >= 0 && (!delta || cr > 0))
        t->cache_read_tokens = cr;
    if (cc >= 0 && (!delta || cc > 0))
        t->cache_creation_tokens = cc;
    if (get_int(u, "output_tokens", &out))
        t->output_tokens = out;
}

void extract_anthropic_response(trace_rec *t, const char *body, size_t len)
{
    jval root, u, sr;
    if (!jscan_parse(body, len, 64, &root, NULL, 0, NULL, NULL) || root.type != J_OBJECT)
        return;
    copy_str(root, "id", t->response_id, sizeof t->response_id);
    copy_str(root, "model", t->response_model, sizeof t->response_model);
    if (jscan_get(root, "stop_reason", &sr, NULL))
        add_reason(t, sr);
    if (jscan_get(root, "usage", &u, NULL))
        anthropic_usage(t, u, false);
}

void extract_anthropic_event(trace_rec *t, sv event, const char *data, size_t len)
{
    jval root, v, u;
    bool start = sv_eq_cstr(event, "message_start"), delta = sv_eq_cstr(event, "message_delta");
    if (!start && !delta)
        return;
    if (!jscan_parse(data, len, 64, &root, NULL, 0, NULL, NULL) || root.type != J_OBJECT)
        return;
    if (start && jscan_get(root, "message", &v, NULL) && v.type == J_OBJECT) {
        copy_str(v, "id", t->response_id, sizeof t->response_id);
        copy_str(v, "model", t->response_model, sizeof t->response_model);
        if (jscan_get(v, "usage", &u, NULL))
            anthropic_usage(t, u, false);
    }
    if (delta) {
        jval d, sr;
        if (jscan_get(root, "delta", &d, NULL) && d.type == J_OBJECT && jscan_get(d, "stop_reason", &sr, NULL))
            add_reason(t, sr);
        if (jscan_get(root, "usage", &u, NULL))
            anthropic_usage(t, u, true);
    }
}
