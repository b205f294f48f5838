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

/* jscan_string, with the common case (no escape in it) as one copy. */
static bool get_string(jval v, char *dst, size_t cap, size_t *len)
{
    if (v.type == J_STRING && v.len >= 2 && v.len - 2 < cap && !memchr(v.p + 1, '\\', v.len - 2)) {
        *len = v.len - 2;
        memcpy(dst, v.p + 1, *len);
        dst[*len] = '\0';
        return true;
    }
    return jscan_string(v, dst, cap, len);
}

static void str_into(jval v, char *dst, size_t cap)
{
    size_t n;
    if (v.type == J_STRING && !get_string(v, dst, cap, &n))
        dst[0] = '\0'; /* too long to keep */
}

/* Appends a finish reason to the comma-separated list (cap bytes with its
 * NUL) unless it is already there. */
static void add_reason_to(char *list, size_t cap, jval v)
{
    char r[32];
    size_t n;
    if (v.type != J_STRING || !get_string(v, r, sizeof r, &n) || n == 0)
        return;
    size_t have = strlen(list);
    /* already there? (the list is short: a linear look is fine) */
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && memcmp(p, r, n) == 0)
            return;
        p = comma ? comma + 1 : p + len;
    }
    if (have + n + 2 > cap)
        return;
    if (have)
        list[have++] = ',';
    memcpy(list + have, r, n + 1);
}

static void add_reason(trace_rec *t, jval v) { add_reason_to(t->finish_reasons, sizeof t->finish_reasons, v); }

/* ---- OpenAI objects, in one pass ----------------------------------------
 *
 * The gateway forwards a response as it came and never parses it, so
 * validating the whole body and then walking to each field (the choices
 * array three times over) cost more than all the rest of a trace. Instead
 * jscan_walk goes through it once, entering what it needs and passing the
 * rest (the message content) 16 bytes at a time. What it passes is not
 * checked, but what it read is kept only when the walk got to the end of
 * the body: a cut-off or garbled body leaves the trace as it was, as a body
 * that failed validation did before. A repeated member counts as jansson
 * counts it: the last one. */

#define KEY_IS(key, lit) JSCAN_WALK_KEY_IS(w, key, lit)
#define WALK_PICK(w, lit) walk_pick((w), (lit), sizeof(lit) - 1)

/* The member name of the object at the cursor (the last if repeated);
 * any other value is passed over. */
static jval walk_pick(jscan_walk *w, const char *name, size_t n)
{
    jval key, got = { J_NONE, NULL, 0 };
    if (!jscan_walk_enter(w, '{'))
        return got;
    for (size_t m = 0; jscan_walk_member(w, m, &key); m++) {
        bool match = jscan_walk_key_is(w, key, name, n); /* before a nested key replaces it */
        jval v = jscan_walk_value(w);
        if (match)
            got = v;
    }
    return got;
}

/* The value at the cursor, kept as a text when it is a string. */
static void walk_text(jscan_walk *w, extract_texts *tx, bool args)
{
    jval v = jscan_walk_value(w);
    if (v.type != J_STRING || !w->ok)
        return;
    if (tx->n == EXTRACT_MAX_TEXTS) {
        tx->complete = false; /* more than fit: the caller walks the body itself */
        return;
    }
    tx->args[tx->n] = args;
    tx->v[tx->n++] = v;
}

/* A message's tool_calls at the cursor: each call's function.arguments. */
static void walk_calls(jscan_walk *w, extract_texts *tx)
{
    jval k, f;
    if (!jscan_walk_enter(w, '['))
        return;
    for (size_t i = 0; jscan_walk_element(w, i); i++) {
        if (!jscan_walk_enter(w, '{'))
            continue;
        for (size_t n = 0; jscan_walk_member(w, n, &k); n++) {
            if (!KEY_IS(k, "function")) {
                jscan_walk_value(w);
                continue;
            }
            if (!jscan_walk_enter(w, '{'))
                continue;
            for (size_t m = 0; jscan_walk_member(w, m, &f); m++) {
                if (KEY_IS(f, "arguments"))
                    walk_text(w, tx, true);
                else
                    jscan_walk_value(w);
            }
        }
    }
}

/* A choice's message at the cursor: content and tool_calls. */
static void walk_message(jscan_walk *w, extract_texts *tx)
{
    jval k;
    if (!jscan_walk_enter(w, '{'))
        return;
    for (size_t n = 0; jscan_walk_member(w, n, &k); n++) {
        if (KEY_IS(k, "content"))
            walk_text(w, tx, false);
        else if (KEY_IS(k, "tool_calls"))
            walk_calls(w, tx);
        else
            jscan_walk_value(w);
    }
}

/* The choices array at the cursor: each choice's finish_reason (the last
 * if a choice repeats it) added to list, and with tx its texts. */
static void walk_choices(jscan_walk *w, char *list, size_t cap, extract_texts *tx)
{
    if (!jscan_walk_enter(w, '['))
        return;
    for (size_t i = 0; jscan_walk_element(w, i); i++) {
        if (!tx) {
            add_reason_to(list, cap, WALK_PICK(w, "finish_reason"));
            continue;
        }
        jval key, reason = { J_NONE, NULL, 0 };
        if (!jscan_walk_enter(w, '{'))
            continue;
        for (size_t m = 0; jscan_walk_member(w, m, &key); m++) {
            if (tx->completions && KEY_IS(key, "text")) {
                walk_text(w, tx, false);
            } else if (!tx->completions && KEY_IS(key, "message")) {
                walk_message(w, tx); /* anything but an object is passed */
            } else {
                bool match = KEY_IS(key, "finish_reason"); /* before a nested key replaces it */
                jval v = jscan_walk_value(w);
                if (match)
                    reason = v;
            }
        }
        add_reason_to(list, cap, reason);
    }
}

typedef struct usage_vals {
    jval prompt, completion, total, cached, reasoning;
} usage_vals;

/* OpenAI's usage object at the cursor. */
static void walk_usage(jscan_walk *w, usage_vals *u)
{
    jval key, none = { J_NONE, NULL, 0 };
    *u = (usage_vals){ none, none, none, none, none };
    if (!jscan_walk_enter(w, '{'))
        return;
    for (size_t m = 0; jscan_walk_member(w, m, &key); m++) {
        if (KEY_IS(key, "prompt_tokens_details")) {
            u->cached = WALK_PICK(w, "cached_tokens");
        } else if (KEY_IS(key, "completion_tokens_details")) {
            u->reasoning = WALK_PICK(w, "reasoning_tokens");
        } else {
            jval v = jscan_walk_value(w); /* a scalar or passed over: the key stays */
            if (KEY_IS(key, "prompt_tokens"))
                u->prompt = v;
            else if (KEY_IS(key, "completion_tokens"))
                u->completion = v;
            else if (KEY_IS(key, "total_tokens"))
                u->total = v;
        }
    }
}

static void openai_usage(trace_rec *t, const usage_vals *u)
{
    long long n;
    if (jscan_int(u->prompt, &n))
        t->input_tokens = n;
    if (jscan_int(u->completion, &n))
        t->output_tokens = n;
    else if (t->input_tokens >= 0 && jscan_int(u->total, &n) && t->output_tokens < 0)
        t->output_tokens = n - t->input_tokens >= 0 ? n - t->input_tokens : 0; /* embeddings: total = prompt */
    if (jscan_int(u->cached, &n))
        t->cache_read_tokens = n;
    if (jscan_int(u->reasoning, &n))
        t->reasoning_tokens = n;
}

/* A chat.completion, text_completion, embeddings list or stream chunk:
 * id, model, every choice's finish_reason, usage. first_only: keep an id
 * and model already set (stream chunks repeat them). */
static bool openai_object(trace_rec *t, const char *body, size_t len, bool first_only, extract_texts *tx)
{
    jscan_walk wk, *w = &wk;
    jval id = { J_NONE, NULL, 0 }, model = id, key;
    usage_vals usage;
    bool saw_usage = false, saw_choices = false;
    char reasons[sizeof t->finish_reasons];
    jscan_walk_init(w, body, len);
    if (!jscan_walk_enter(w, '{'))
        return false;
    for (size_t m = 0; jscan_walk_member(w, m, &key); m++) {
        if (KEY_IS(key, "choices")) {
            memcpy(reasons, t->finish_reasons, sizeof reasons); /* a later "choices" starts over */
            walk_choices(w, reasons, sizeof reasons, tx);
            saw_choices = true;
        } else if (KEY_IS(key, "usage")) {
            walk_usage(w, &usage);
            saw_usage = true;
        } else {
            jval v = jscan_walk_value(w);
            if (KEY_IS(key, "id"))
                id = v;
            else if (KEY_IS(key, "model"))
                model = v;
        }
    }
    if (!jscan_walk_done(w))
        return false; /* cut off or garbled: nothing from it */
    if (!first_only || !t->response_id[0])
        str_into(id, t->response_id, sizeof t->response_id);
    if (!first_only || !t->response_model[0])
        str_into(model, t->response_model, sizeof t->response_model);
    if (saw_choices)
        memcpy(t->finish_reasons, reasons, sizeof reasons);
    if (saw_usage)
        openai_usage(t, &usage);
    return true;
}

void extract_openai_response(trace_rec *t, const char *body, size_t len) { openai_object(t, body, len, false, NULL); }

void extract_openai_response_texts(trace_rec *t, const char *body, size_t len, extract_texts *tx)
{
    tx->n = 0;
    tx->complete = true; /* until a text does not fit */
    tx->complete = openai_object(t, body, len, false, tx) && tx->complete;
}

void extract_openai_chunk(trace_rec *t, const char *data, size_t len)
{
    if (len == 0 || data[0] != '{')
        return;
    openai_object(t, data, len, true, NULL);
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
