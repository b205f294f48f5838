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

/* The members of obj named in keys, in one walk (jscan_get walks the whole
 * object per call): vals[i] gets keys[i]'s value, J_NONE when absent. */
static void pick(jval obj, const char *const *keys, size_t n, jval *vals)
{
    for (size_t i = 0; i < n; i++)
        vals[i] = (jval){ J_NONE, NULL, 0 };
    if (obj.type != J_OBJECT)
        return;
    jscan_iter it;
    jscan_iter_init(&it, obj);
    jval k, v;
    while (jscan_next(&it, &k, &v)) {
        int i = jscan_match(k, keys, n);
        if (i >= 0)
            vals[i] = v;
    }
}

static void openai_usage(trace_rec *t, jval u)
{
    static const char *const keys[] = { "prompt_tokens", "completion_tokens", "total_tokens",
                                        "prompt_tokens_details", "completion_tokens_details" };
    jval v[5], d;
    long long n;
    if (u.type != J_OBJECT)
        return;
    pick(u, keys, countof(keys), v);
    if (jscan_int(v[0], &n))
        t->input_tokens = n;
    if (jscan_int(v[1], &n))
        t->output_tokens = n;
    else if (t->input_tokens >= 0 && jscan_int(v[2], &n) && t->output_tokens < 0)
        t->output_tokens = n - t->input_tokens >= 0 ? n - t->input_tokens : 0; /* embeddings: total = prompt */
    if (v[3].type == J_OBJECT && jscan_get(v[3], "cached_tokens", &d, NULL) && jscan_int(d, &n))
        t->cache_read_tokens = n;
    if (v[4].type == J_OBJECT && jscan_get(v[4], "reasoning_tokens", &d, NULL) && jscan_int(d, &n))
        t->reasoning_tokens = n;
}

static void str_into(jval v, char *dst, size_t cap)
{
    size_t n;
    if (v.type == J_STRING && !jscan_string(v, dst, cap, &n))
        dst[0] = '\0'; /* too long to keep */
}

/* A chat.completion, text_completion, embeddings list or stream chunk:
 * id, model, every choice's finish_reason, usage. first_only: keep an id
 * and model already set (stream chunks repeat them). */
static void openai_object(trace_rec *t, const char *body, size_t len, bool first_only)
{
    static const char *const keys[] = { "id", "model", "choices", "usage" };
    jscan_member top[24];
    size_t count = 0;
    jval root, v[4];
    if (!jscan_parse(body, len, 64, &root, top, countof(top), &count, NULL) || root.type != J_OBJECT)
        return;
    if (count <= countof(top)) {
        for (size_t i = 0; i < countof(keys); i++)
            v[i] = (jval){ J_NONE, NULL, 0 };
        for (size_t i = 0; i < count; i++) {
            int k = jscan_match(top[i].key, keys, countof(keys));
            if (k >= 0)
                v[k] = top[i].val;
        }
    } else {
        pick(root, keys, countof(keys), v);
    }
    if (!first_only || !t->response_id[0])
        str_into(v[0], t->response_id, sizeof t->response_id);
    if (!first_only || !t->response_model[0])
        str_into(v[1], t->response_model, sizeof t->response_model);
    if (v[2].type == J_ARRAY) {
        jscan_iter it;
        jscan_iter_init(&it, v[2]);
        jval k, c, fr;
        while (jscan_next(&it, &k, &c))
            if (c.type == J_OBJECT && jscan_get(c, "finish_reason", &fr, NULL))
                add_reason(t, fr);
    }
    if (v[3].type == J_OBJECT)
        openai_usage(t, v[3]);
}

void extract_openai_response(trace_rec *t, const char *body, size_t len) { openai_object(t, body, len, false); }

void extract_openai_chunk(trace_rec *t, const char *data, size_t len)
{
    if (len == 0 || data[0] != '{')
        return;
    openai_object(t, data, len, true);
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
