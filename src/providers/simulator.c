/*
 * simulator.c - builds simulator plans (see simulator.h).
 *
 * One call runs in stages, all working on a `ctx`:
 *   1. mode: an unknown mode gives a 404 plan; /v1/models needs no request;
 *   2. validation: the body is checked the way OpenAI checks it (required
 *      fields, types, ranges) and a problem becomes a 400 plan with an
 *      OpenAI-shaped error (message, type, param, code);
 *   3. failures: error-* modes, the per-request "fail" knob and the
 *      provider's error_rate give error plans;
 *   4. answers: one text per choice (echo / lorem / canned, or a tool call
 *      or a JSON document), cut by stop sequences and max_tokens, split
 *      into pieces with tokens_split();
 *   5. output: one JSON body, or one SSE event per piece with the delays of
 *      the timing knobs.
 * JSON objects are built with jansson (insertion order is kept, so output
 * is byte-for-byte stable) and dumped into the pool. Allocation failures
 * set ctx.oom; every helper tolerates NULL and short-circuits after it, so
 * the code reads straight and the caller still gets ERR_NOMEM.
 * Determinism: the only inputs are opts, the endpoint, the mode, the
 * request (hashed canonically, keys sorted, without the fields that only
 * change delivery: stream, stream_options, n, max_tokens, simulator) and
 * seq. Nothing reads the clock: "created" is SIM_EPOCH + seq.
 * Sampling: a request with an explicit "temperature" > 0 and no "seed"
 * (mode other than echo) samples like a model: a per-choice generator
 * seeded from the request hash, seq and the choice index decides, at each
 * decision point (the lorem text, the canned answer, the tool picked under
 * tool_choice "auto", each placeholder value of tool arguments and
 * json_schema answers), whether to deviate from the deterministic answer,
 * with probability min(1, temperature / 2). Without sampling no generator
 * exists and every answer is byte-for-byte what it was before sampling was
 * added; the answer content then depends on the request only.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/buf.h"
#include "providers/simulator.h"
#include "providers/tokens.h"

#define SIM_EPOCH 1735689600L       /* 2025-01-01T00:00:00Z */
#define SIM_OWNER "genaiops-simulator"
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(9))
#define HASH_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
#define SCHEMA_DEPTH 16             /* nesting followed when filling schemas */
#define SCHEMA_BUDGET 65536L        /* bytes of placeholder JSON at most */
#define MAX_TOOLS 128
#define MAX_STOP 4
#define MAX_PROMPT_TOKEN 1000000000L
#define EMBED_BODY_MAX (64u << 20)
#define DEFAULT_CANNED "This is a canned answer from the genaiops simulator."

/* ---- modes ---- */

enum { M_ECHO, M_LOREM, M_CANNED, M_E429, M_E500, M_E503, M_TIMEOUT, M_BROKEN, M__COUNT };

static const char *const mode_names[M__COUNT] = {
    "echo", "lorem", "canned", "error-429", "error-500", "error-503", "timeout", "broken-stream",
};

static int mode_find(const char *mode)
{
    if (!mode)
        return -1;
    for (int i = 0; i < M__COUNT; i++)
        if (strcmp(mode, mode_names[i]) == 0)
            return i;
    return -1;
}

bool sim_mode_valid(const char *mode)
{
    return mode_find(mode) >= 0;
}

const char *sim_mode_name(size_t i)
{
    return i < M__COUNT ? mode_names[i] : NULL;
}

/* ---- state of one call ---- */

typedef struct knobs {
    long latency_ms, ttft_ms, token_ms;
    long tokens;        /* lorem length */
    int fail;           /* HTTP status to fail with, 0 = none */
    long fail_after;    /* tokens streamed before failing, -1 = at once */
} knobs;

typedef struct choice {
    const char *text;   /* content, or the tool call's arguments */
    size_t len;
    sv *pieces;
    size_t npieces;
    const char *finish;
    const char *tool_name; /* non-NULL: the answer is a call of this function */
    char call_id[40];
} choice;

typedef struct prompt {
    const char *text;
    size_t len;
} prompt;

typedef struct ctx {
    const sim_options *opts;
    sim_endpoint ep;
    int mode;
    json_t *req;
    uint64_t seq;
    pool *p;
    sim_plan *out;
    size_t cap;             /* room in out->steps */
    bool oom, refused;
    const char *model;      /* echoed in responses */
    uint64_t hash;          /* canonical hash of the request */
    long created;
    char id[48];
    knobs k;
    /* parsed request */
    bool stream, include_usage;
    long n;
    long max_tokens;        /* 0 = none given */
    json_t *stop;           /* borrowed: string or array of strings */
    json_t *tool;           /* borrowed: the function object to call */
    json_t *auto_tools;     /* borrowed: the tools array when tool_choice is auto / absent */
    double temperature;     /* -1 when absent */
    bool has_seed;          /* the request has a "seed" */
    double deviate_p;       /* > 0: sampling is on (see the file header) */
    int format;             /* 0 text, 1 json_object, 2 json_schema */
    json_t *schema;         /* borrowed: json_schema.schema */
    long prompt_tokens;
    const char *user_text;  /* the last user message's text (echo) */
    size_t user_len;
    prompt *prompts;        /* completions */
    size_t nprompts;
    choice *ch;
    size_t nch;
} ctx;

/* ---- small helpers ---- */

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t rng_next(uint64_t *state)
{
    *state += 0x9E3779B97F4A7C15ull;
    return mix64(*state);
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *s = data;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001B3ull;
    }
    return h;
}

#define FNV_OFFSET 0xCBF29CE484222325ull

/* The generator of one sampled choice: each decision point asks deviate()
 * first and, when it says yes, draws its variant from the same state. */
typedef struct sampler {
    uint64_t state;
    double p;               /* probability to deviate at a decision point */
} sampler;

/* A uniform double in [0, 1). */
static double unit_draw(sampler *s)
{
    return (double)(rng_next(&s->state) >> 11) * 0x1p-53;
}

/* True when this decision point leaves the deterministic answer. NULL (no
 * sampling) never deviates and draws nothing. */
static bool deviate(sampler *s)
{
    return s && s->p > 0 && unit_draw(s) < s->p;
}

static void *palloc(ctx *c, size_t n)
{
    if (c->oom)
        return NULL;
    void *m = pool_alloc(c->p, n);
    if (!m)
        c->oom = true;
    return m;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2;
        cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3;
        cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* A JSON string of s[0..n); bytes that are not valid UTF-8 become '?'
 * (strings from the request are valid already; mode names and configured
 * answers might not be). NULL only on out of memory. */
static json_t *jstr(ctx *c, const char *s, size_t n)
{
    if (c->oom)
        return NULL;
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char *copy = palloc(c, n + 1);
    if (!copy)
        return NULL;
    size_t i = 0;
    while (i < n) {
        size_t l = utf8_seq((const unsigned char *)s + i, n - i);
        if (l == 0) {
            copy[i++] = '?';
        } else {
            memcpy(copy + i, s + i, l);
            i += l;
        }
    }
    j = json_stringn(copy, n);
    if (!j)
        c->oom = true;
    return j;
}

static json_t *jcstr(ctx *c, const char *s)
{
    return jstr(c, s, strlen(s));
}

static void set(ctx *c, json_t *o, const char *key, json_t *v)
{
    if (json_object_set_new(o, key, v) != 0)
        c->oom = true;
}

static void push(ctx *c, json_t *a, json_t *v)
{
    if (json_array_append_new(a, v) != 0)
        c->oom = true;
}

static const char *type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* The member key of o, treating JSON null as absent. */
static json_t *get(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_null(v) ? NULL : v;
}

/* ---- plan steps ---- */

static void add_step(ctx *c, long delay, const char *data, size_t len)
{
    sim_plan *out = c->out;
    if (c->oom)
        return;
    if (out->nsteps == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        sim_step *s = palloc(c, cap * sizeof *s);
        if (!s)
            return;
        if (out->nsteps)
            memcpy(s, out->steps, out->nsteps * sizeof *s);
        out->steps = s;
        c->cap = cap;
    }
    out->steps[out->nsteps++] = (sim_step){ delay < 0 ? 0 : delay, data, len };
}

/* Dumps obj (consumed) as one step: the bare JSON, or an SSE event
 * "data: JSON\n\n" when sse. */
static void emit(ctx *c, long delay, json_t *obj, bool sse)
{
    if (!obj || c->oom) {
        if (!obj)
            c->oom = true;
        json_decref(obj);
        return;
    }
    size_t n = json_dumpb(obj, NULL, 0, DUMP_FLAGS);
    size_t pre = sse ? 6 : 0, post = sse ? 2 : 0;
    char *m = n ? palloc(c, pre + n + post + 1) : NULL;
    if (!n)
        c->oom = true;
    if (m) {
        memcpy(m, "data: ", pre);
        if (json_dumpb(obj, m + pre, n, DUMP_FLAGS) != n) {
            c->oom = true;
        } else {
            memcpy(m + pre + n, "\n\n", post);
            m[pre + n + post] = '\0';
            add_step(c, delay, m, pre + n + post);
        }
    }
    json_decref(obj);
}

static json_t *error_object(ctx *c, const char *type, const char *param, const char *code,
                            const char *msg)
{
    json_t *e = json_object();
    set(c, e, "message", jcstr(c, msg));
    set(c, e, "type", jcstr(c, type));
    set(c, e, "param", param ? jcstr(c, param) : json_null());
    set(c, e, "code", code ? jcstr(c, code) : json_null());
    json_t *body = json_object();
    set(c, body, "error", e);
    return body;
}

/* Replaces the plan with an error response: status, an OpenAI error body
 * sent after the latency, Retry-After for 429. */
static void plan_error(ctx *c, int status, const char *type, const char *param,
                       const char *code, const char *msg)
{
    sim_plan *out = c->out;
    out->status = status;
    out->stream = false;
    out->content_type = "application/json";
    out->retry_after_s = status == 429 ? 1 : 0;
    out->nsteps = 0;
    out->end = SIM_END_OK;
    out->prompt_tokens = out->completion_tokens = 0;
    emit(c, c->k.latency_ms, error_object(c, type, param, code, msg), false);
    c->refused = true;
}

/* A 400 (or other 4xx) refusal with a formatted message; always false so
 * validators can `return refuse(...)`. */
static bool refuse(ctx *c, int status, const char *param, const char *code, const char *fmt, ...)
    PRINTF_LIKE(5, 6);
static bool refuse(ctx *c, int status, const char *param, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg - 16, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : MIN((size_t)n, sizeof msg - 17);
    memcpy(msg + len, " (simulated)", sizeof " (simulated)");
    plan_error(c, status, "invalid_request_error", param, code, msg);
    return false;
}

static bool refuse_type(ctx *c, const char *param, const char *want, const json_t *got)
{
    return refuse(c, 400, param, "invalid_type",
                  "Invalid type for '%s': expected %s, but got %s instead.", param, want,
                  type_name(got));
}

static bool refuse_missing(ctx *c, const char *param)
{
    return refuse(c, 400, param, "missing_required_parameter",
                  "Missing required parameter: '%s'.", param);
}

/* The error a simulated failure with this status answers with. */
static void plan_failure(ctx *c, int status)
{
    char msg[160];
    const char *type = status >= 500 ? "server_error" : "invalid_request_error";
    const char *code = NULL;
    switch (status) {
    case 429:
        type = "requests";
        code = "rate_limit_exceeded";
        snprintf(msg, sizeof msg,
                 "Rate limit reached for requests (simulated). Please try again in 1s.");
        break;
    case 500:
        snprintf(msg, sizeof msg,
                 "The server had an error while processing your request (simulated).");
        break;
    case 503:
        snprintf(msg, sizeof msg,
                 "The server is overloaded or not ready yet (simulated).");
        break;
    case 401:
        code = "invalid_api_key";
        snprintf(msg, sizeof msg, "Incorrect API key provided (simulated).");
        break;
    default:
        snprintf(msg, sizeof msg, "Request failed with HTTP status %d (simulated).", status);
        break;
    }
    plan_error(c, status, type, NULL, code, msg);
}

/* ---- request validation ---- */

/* Reads an optional integer member into *v, in [lo, hi]. */
static bool opt_long(ctx *c, const json_t *o, const char *key, const char *param, long lo,
                     long hi, long *v, bool *present)
{
    json_t *j = get(o, key);
    if (present)
        *present = j != NULL;
    if (!j)
        return true;
    if (!json_is_integer(j))
        return refuse_type(c, param, "an integer", j);
    json_int_t x = json_integer_value(j);
    if (x < lo)
        return refuse(c, 400, param, "integer_below_min_value",
                      "Invalid '%s': integer below minimum value. Expected a value >= %ld, but got %"
                      JSON_INTEGER_FORMAT " instead.", param, lo, x);
    if (x > hi)
        return refuse(c, 400, param, "integer_above_max_value",
                      "Invalid '%s': integer above maximum value. Expected a value <= %ld, but got %"
                      JSON_INTEGER_FORMAT " instead.", param, hi, x);
    *v = (long)x;
    return true;
}

static bool opt_bool(ctx *c, const json_t *o, const char *key, const char *param, bool *v)
{
    json_t *j = get(o, key);
    if (!j)
        return true;
    if (!json_is_boolean(j))
        return refuse_type(c, param, "a boolean", j);
    *v = json_is_true(j);
    return true;
}

/* The optional "simulator" member: per-request knobs over opts. */
static bool parse_knobs(ctx *c)
{
    json_t *s = get(c->req, "simulator");
    if (!s)
        return true;
    if (!json_is_object(s))
        return refuse_type(c, "simulator", "an object", s);
    static const char *const keys[] = {
        "latency_ms", "ttft_ms", "token_ms", "tokens", "fail", "fail_after",
    };
    const char *key;
    json_t *v;
    json_object_foreach(s, key, v) {
        size_t i = 0;
        while (i < countof(keys) && strcmp(key, keys[i]) != 0)
            i++;
        if (i == countof(keys))
            return refuse(c, 400, "simulator", "unknown_parameter",
                          "Unrecognized simulator knob: '%.64s'. Known knobs: latency_ms, ttft_ms, "
                          "token_ms, tokens, fail, fail_after.", key);
    }
    long fail = 0;
    bool has_fail = false, has_after = false;
    if (!opt_long(c, s, "latency_ms", "simulator.latency_ms", 0, SIM_MAX_DELAY_MS, &c->k.latency_ms, NULL) ||
        !opt_long(c, s, "ttft_ms", "simulator.ttft_ms", 0, SIM_MAX_DELAY_MS, &c->k.ttft_ms, NULL) ||
        !opt_long(c, s, "token_ms", "simulator.token_ms", 0, SIM_MAX_DELAY_MS, &c->k.token_ms, NULL) ||
        !opt_long(c, s, "tokens", "simulator.tokens", 0, SIM_MAX_ANSWER_TOKENS, &c->k.tokens, NULL) ||
        !opt_long(c, s, "fail", "simulator.fail", 400, 599, &fail, &has_fail) ||
        !opt_long(c, s, "fail_after", "simulator.fail_after", 0, SIM_MAX_ANSWER_TOKENS,
                  &c->k.fail_after, &has_after))
        return false;
    if (has_fail)
        c->k.fail = (int)fail;
    else if (has_after)
        c->k.fail = 500;
    return true;
}

/* Sum of the token estimates of a message content (string or parts). */
static long content_tokens(const json_t *content)
{
    if (json_is_string(content))
        return tokens_estimate(json_string_value(content), json_string_length(content));
    long n = 0;
    size_t i;
    json_t *part;
    if (json_is_array(content))
        json_array_foreach(content, i, part) {
            json_t *t = json_object_get(part, "text");
            if (json_is_string(t))
                n += tokens_estimate(json_string_value(t), json_string_length(t));
            else
                n += 85; /* an image or other non-text part: a flat charge */
        }
    return n;
}

/* The text of a content: the string, or the text parts joined by "\n". */
static void content_text(ctx *c, const json_t *content, const char **text, size_t *len)
{
    *text = "";
    *len = 0;
    if (json_is_string(content)) {
        *text = json_string_value(content);
        *len = json_string_length(content);
        return;
    }
    if (!json_is_array(content))
        return;
    size_t total = 0, i, nparts = 0;
    json_t *part;
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");
        if (json_is_string(t)) {
            total += json_string_length(t) + (nparts ? 1 : 0);
            nparts++;
        }
    }
    char *m = palloc(c, total + 1);
    if (!m)
        return;
    size_t at = 0;
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");
        if (json_is_string(t)) {
            if (at)
                m[at++] = '\n';
            memcpy(m + at, json_string_value(t), json_string_length(t));
            at += json_string_length(t);
        }
    }
    m[at] = '\0';
    *text = m;
    *len = at;
}

static bool check_content(ctx *c, const json_t *content, size_t mi, bool required)
{
    char param[64];
    snprintf(param, sizeof param, "messages[%zu].content", mi);
    if (!content)
        return required ? refuse_missing(c, param) : true;
    if (json_is_string(content))
        return true;
    if (!json_is_array(content))
        return refuse_type(c, param, "a string or an array of content parts", content);
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        snprintf(param, sizeof param, "messages[%zu].content[%zu]", mi, i);
        if (!json_is_object(part))
            return refuse_type(c, param, "an object", part);
        json_t *type = json_object_get(part, "type");
        snprintf(param, sizeof param, "messages[%zu].content[%zu].type", mi, i);
        if (!type)
            return refuse_missing(c, param);
        if (!json_is_string(type))
            return refuse_type(c, param, "a string", type);
        if (strcmp(json_string_value(type), "text") == 0) {
            json_t *t = json_object_get(part, "text");
            snprintf(param, sizeof param, "messages[%zu].content[%zu].text", mi, i);
            if (!t)
                return refuse_missing(c, param);
            if (!json_is_string(t))
                return refuse_type(c, param, "a string", t);
        }
    }
    return true;
}

static bool parse_messages(ctx *c)
{
    static const char *const roles[] = { "system", "developer", "user", "assistant", "tool", "function" };
    json_t *msgs = json_object_get(c->req, "messages");
    if (!msgs)
        return refuse_missing(c, "messages");
    if (!json_is_array(msgs))
        return refuse_type(c, "messages", "an array of objects", msgs);
    if (json_array_size(msgs) == 0)
        return refuse(c, 400, "messages", "empty_array",
                      "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                      "but got an empty array instead.");
    const json_t *last_user = NULL;
    long tokens = 3; /* the reply's priming */
    size_t i;
    json_t *m;
    char param[64];
    json_array_foreach(msgs, i, m) {
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!json_is_object(m))
            return refuse_type(c, param, "an object", m);
        json_t *role = json_object_get(m, "role");
        snprintf(param, sizeof param, "messages[%zu].role", i);
        if (!role)
            return refuse_missing(c, param);
        if (!json_is_string(role))
            return refuse_type(c, param, "a string", role);
        const char *r = json_string_value(role);
        size_t ri = 0;
        while (ri < countof(roles) && strcmp(r, roles[ri]) != 0)
            ri++;
        if (ri == countof(roles))
            return refuse(c, 400, param, "invalid_value",
                          "Invalid value: '%.64s'. Supported values are: 'system', 'assistant', "
                          "'user', 'function', 'tool', and 'developer'.", r);
        bool required = ri != 3 && ri != 5; /* assistant and function may omit it */
        json_t *content = get(m, "content");
        if (!check_content(c, content, i, required))
            return false;
        json_t *name = get(m, "name");
        snprintf(param, sizeof param, "messages[%zu].name", i);
        if (name && !json_is_string(name))
            return refuse_type(c, param, "a string", name);
        if (ri == 4) {
            json_t *tcid = json_object_get(m, "tool_call_id");
            snprintf(param, sizeof param, "messages[%zu].tool_call_id", i);
            if (!tcid)
                return refuse_missing(c, param);
            if (!json_is_string(tcid))
                return refuse_type(c, param, "a string", tcid);
        }
        tokens += 3 + content_tokens(content);
        if (name)
            tokens += 1 + tokens_estimate(json_string_value(name), json_string_length(name));
        if (ri == 2)
            last_user = content;
    }
    content_text(c, last_user, &c->user_text, &c->user_len);
    c->prompt_tokens = tokens;
    return true;
}

/* Whole-word, case-insensitive search for "tool" in text. */
static bool mentions_tool(const char *s, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++) {
        if (strncasecmp(s + i, "tool", 4) != 0)
            continue;
        bool before = i == 0 || !(isalnum((unsigned char)s[i - 1]) || s[i - 1] == '_');
        bool after = i + 4 == n || !(isalnum((unsigned char)s[i + 4]) || s[i + 4] == '_');
        if (before && after)
            return true;
    }
    return false;
}

static bool parse_tools(ctx *c)
{
    json_t *tools = get(c->req, "tools");
    json_t *tc = get(c->req, "tool_choice");
    char param[64];
    if (tools) {
        if (!json_is_array(tools))
            return refuse_type(c, "tools", "an array", tools);
        if (json_array_size(tools) > MAX_TOOLS)
            return refuse(c, 400, "tools", "array_above_max_length",
                          "Invalid 'tools': array too long. Expected an array with maximum length "
                          "%d, but got an array with length %zu instead.", MAX_TOOLS,
                          json_array_size(tools));
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t) {
            snprintf(param, sizeof param, "tools[%zu]", i);
            if (!json_is_object(t))
                return refuse_type(c, param, "an object", t);
            json_t *type = json_object_get(t, "type");
            snprintf(param, sizeof param, "tools[%zu].type", i);
            if (!json_is_string(type) || strcmp(json_string_value(type), "function") != 0)
                return refuse(c, 400, param, "invalid_value",
                              "Invalid value for '%s': the simulator supports 'function' tools only.",
                              param);
            json_t *fn = json_object_get(t, "function");
            snprintf(param, sizeof param, "tools[%zu].function", i);
            if (!fn)
                return refuse_missing(c, param);
            if (!json_is_object(fn))
                return refuse_type(c, param, "an object", fn);
            json_t *name = json_object_get(fn, "name");
            snprintf(param, sizeof param, "tools[%zu].function.name", i);
            if (!name)
                return refuse_missing(c, param);
            if (!json_is_string(name) || json_string_length(name) == 0)
                return refuse(c, 400, param, "invalid_value",
                              "Invalid '%s': expected a non-empty string.", param);
            json_t *params = get(fn, "parameters");
            snprintf(param, sizeof param, "tools[%zu].function.parameters", i);
            if (params && !json_is_object(params))
                return refuse_type(c, param, "an object", params);
            json_t *desc = json_object_get(fn, "description");
            c->prompt_tokens += 8 + tokens_estimate(json_string_value(name), json_string_length(name));
            if (json_is_string(desc))
                c->prompt_tokens += tokens_estimate(json_string_value(desc), json_string_length(desc));
        }
        if (json_array_size(tools) == 0)
            tools = NULL;
    }
    if (tc && !tools)
        return refuse(c, 400, "tool_choice", "invalid_value",
                      "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
                      "are specified.");
    if (!tools)
        return true;
    json_t *first = json_object_get(json_array_get(tools, 0), "function");
    if (!tc) {
        if (mentions_tool(c->user_text, c->user_len)) {
            c->tool = first;
            c->auto_tools = tools;
        }
        return true;
    }
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (strcmp(s, "none") == 0)
            return true;
        if (strcmp(s, "required") == 0) {
            c->tool = first;
            return true;
        }
        if (strcmp(s, "auto") == 0) {
            if (mentions_tool(c->user_text, c->user_len)) {
                c->tool = first;
                c->auto_tools = tools;
            }
            return true;
        }
        return refuse(c, 400, "tool_choice", "invalid_value",
                      "Invalid value: '%.64s'. Supported values are: 'none', 'auto', and 'required'.", s);
    }
    if (!json_is_object(tc))
        return refuse_type(c, "tool_choice", "a string or an object", tc);
    json_t *type = json_object_get(tc, "type");
    json_t *fn = json_object_get(tc, "function");
    json_t *name = json_object_get(fn, "name");
    if (!json_is_string(type) || strcmp(json_string_value(type), "function") != 0 ||
        !json_is_string(name))
        return refuse(c, 400, "tool_choice", "invalid_value",
                      "Invalid value for 'tool_choice': expected {\"type\": \"function\", "
                      "\"function\": {\"name\": ...}}.");
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        json_t *f = json_object_get(t, "function");
        if (json_equal(json_object_get(f, "name"), name)) {
            c->tool = f;
            return true;
        }
    }
    return refuse(c, 400, "tool_choice", "invalid_value",
                  "Invalid value for 'tool_choice': function '%.64s' is not among the tools.",
                  json_string_value(name));
}

static bool parse_response_format(ctx *c)
{
    json_t *rf = get(c->req, "response_format");
    if (!rf)
        return true;
    if (!json_is_object(rf))
        return refuse_type(c, "response_format", "an object", rf);
    json_t *type = json_object_get(rf, "type");
    if (!type)
        return refuse_missing(c, "response_format.type");
    const char *t = json_is_string(type) ? json_string_value(type) : "";
    if (strcmp(t, "text") == 0)
        return true;
    if (strcmp(t, "json_object") == 0) {
        c->format = 1;
        return true;
    }
    if (strcmp(t, "json_schema") != 0)
        return refuse(c, 400, "response_format.type", "invalid_value",
                      "Invalid value for 'response_format.type'. Supported values are: 'text', "
                      "'json_object', and 'json_schema'.");
    json_t *js = json_object_get(rf, "json_schema");
    if (!js)
        return refuse_missing(c, "response_format.json_schema");
    if (!json_is_object(js))
        return refuse_type(c, "response_format.json_schema", "an object", js);
    json_t *name = json_object_get(js, "name");
    if (!name)
        return refuse_missing(c, "response_format.json_schema.name");
    if (!json_is_string(name))
        return refuse_type(c, "response_format.json_schema.name", "a string", name);
    json_t *schema = get(js, "schema");
    if (schema && !json_is_object(schema))
        return refuse_type(c, "response_format.json_schema.schema", "an object", schema);
    c->format = 2;
    c->schema = schema;
    return true;
}

/* temperature (a number from 0 to 2, as OpenAI checks it) and seed (an
 * integer): together they decide whether the answer is sampled. */
static bool parse_sampling(ctx *c)
{
    c->temperature = -1;
    json_t *t = get(c->req, "temperature");
    if (t) {
        if (!json_is_number(t))
            return refuse_type(c, "temperature", "a decimal", t);
        double v = json_number_value(t);
        if (!(v >= 0))
            return refuse(c, 400, "temperature", "decimal_below_min_value",
                          "Invalid 'temperature': decimal below minimum value. Expected a value >= 0, "
                          "but got %g instead.", v);
        if (v > 2)
            return refuse(c, 400, "temperature", "decimal_above_max_value",
                          "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, "
                          "but got %g instead.", v);
        c->temperature = v;
    }
    json_t *seed = get(c->req, "seed");
    if (seed && !json_is_integer(seed))
        return refuse_type(c, "seed", "an integer", seed);
    c->has_seed = seed != NULL;
    if (c->temperature > 0 && !c->has_seed && c->mode != M_ECHO)
        c->deviate_p = MIN(1.0, c->temperature / 2);
    return true;
}

/* stream, stream_options, n, max_tokens / max_completion_tokens, stop,
 * temperature, seed. */
static bool parse_common(ctx *c, long default_max)
{
    json_t *model = get(c->req, "model");
    if (model && !json_is_string(model))
        return refuse_type(c, "model", "a string", model);
    if (!opt_bool(c, c->req, "stream", "stream", &c->stream))
        return false;
    json_t *so = get(c->req, "stream_options");
    if (so) {
        if (!c->stream)
            return refuse(c, 400, "stream_options", "invalid_value",
                          "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
        if (!json_is_object(so))
            return refuse_type(c, "stream_options", "an object", so);
        if (!opt_bool(c, so, "include_usage", "stream_options.include_usage", &c->include_usage))
            return false;
    }
    c->n = 1;
    if (!opt_long(c, c->req, "n", "n", 1, SIM_MAX_N, &c->n, NULL))
        return false;
    long mt = default_max, mct = 0;
    bool has_mct = false;
    if (!opt_long(c, c->req, "max_tokens", "max_tokens", 1, 1L << 30, &mt, NULL) ||
        (c->ep == SIM_CHAT && !opt_long(c, c->req, "max_completion_tokens",
                                        "max_completion_tokens", 1, 1L << 30, &mct, &has_mct)))
        return false;
    c->max_tokens = has_mct ? mct : mt;
    json_t *stop = get(c->req, "stop");
    if (stop) {
        if (json_is_array(stop)) {
            if (json_array_size(stop) > MAX_STOP)
                return refuse(c, 400, "stop", "array_above_max_length",
                              "Invalid 'stop': array too long. Expected an array with maximum "
                              "length %d, but got an array with length %zu instead.", MAX_STOP,
                              json_array_size(stop));
            size_t i;
            json_t *s;
            json_array_foreach(stop, i, s)
                if (!json_is_string(s))
                    return refuse_type(c, "stop", "a string or an array of strings", stop);
        } else if (!json_is_string(stop)) {
            return refuse_type(c, "stop", "a string or an array of strings", stop);
        }
        c->stop = stop;
    }
    return parse_sampling(c);
}

/* One prompt of a completions request: a string, or token ids rendered as
 * their numbers separated by spaces (what echo answers with). */
static bool token_prompt(ctx *c, const json_t *arr, const char *param, prompt *out, long *ntok)
{
    size_t n = json_array_size(arr), i;
    json_t *t;
    if (n == 0)
        return refuse(c, 400, param, "empty_array",
                      "Invalid '%s': empty array. Expected an array with minimum length 1, but "
                      "got an empty array instead.", param);
    char *m = palloc(c, n * 12 + 1);
    size_t at = 0;
    json_array_foreach(arr, i, t) {
        if (!json_is_integer(t) || json_integer_value(t) < 0 ||
            json_integer_value(t) > MAX_PROMPT_TOKEN)
            return refuse(c, 400, param, "invalid_value",
                          "Invalid '%s': expected token ids (integers from 0 to %ld).", param,
                          MAX_PROMPT_TOKEN);
        if (m)
            at += (size_t)snprintf(m + at, 13, "%s%" JSON_INTEGER_FORMAT, at ? " " : "",
                                   json_integer_value(t));
    }
    out->text = m ? m : "";
    out->len = m ? at : 0;
    *ntok += (long)n;
    return true;
}

static bool parse_prompts(ctx *c)
{
    json_t *pr = json_object_get(c->req, "prompt");
    if (!pr)
        return refuse_missing(c, "prompt");
    size_t n = 1;
    if (json_is_array(pr)) {
        n = json_array_size(pr);
        if (n == 0)
            return refuse(c, 400, "prompt", "empty_array",
                          "Invalid 'prompt': empty array. Expected an array with minimum length 1, "
                          "but got an empty array instead.");
        if (json_is_integer(json_array_get(pr, 0)))
            n = 1; /* one prompt given as token ids */
    } else if (!json_is_string(pr)) {
        return refuse_type(c, "prompt", "a string or an array", pr);
    }
    if (n > SIM_MAX_N || n * (size_t)c->n > SIM_MAX_N)
        return refuse(c, 400, "prompt", "invalid_value",
                      "Invalid 'prompt': the simulator answers at most %d choices (prompts x n), "
                      "got %zu prompts with n=%ld.", SIM_MAX_N, n, c->n);
    c->prompts = palloc(c, n * sizeof *c->prompts);
    if (!c->prompts)
        return true;
    c->nprompts = n;
    long tok = 0;
    if (json_is_string(pr)) {
        c->prompts[0] = (prompt){ json_string_value(pr), json_string_length(pr) };
        tok = tokens_estimate(c->prompts[0].text, c->prompts[0].len);
    } else if (json_is_integer(json_array_get(pr, 0))) {
        if (!token_prompt(c, pr, "prompt", &c->prompts[0], &tok))
            return false;
    } else {
        size_t i;
        json_t *e;
        char param[32];
        json_array_foreach(pr, i, e) {
            snprintf(param, sizeof param, "prompt[%zu]", i);
            if (json_is_string(e)) {
                c->prompts[i] = (prompt){ json_string_value(e), json_string_length(e) };
                tok += tokens_estimate(c->prompts[i].text, c->prompts[i].len);
            } else if (json_is_array(e)) {
                if (!token_prompt(c, e, param, &c->prompts[i], &tok))
                    return false;
            } else {
                return refuse_type(c, param, "a string or an array of token ids", e);
            }
        }
    }
    c->prompt_tokens = tok;
    return true;
}

/* ---- answers ---- */

static const char *const lorem_words[] = {
    "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do",
    "eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua", "enim",
    "ad", "minim", "veniam", "quis", "nostrud", "exercitation", "ullamco", "laboris", "nisi",
    "aliquip", "ex", "ea", "commodo", "consequat", "duis", "aute", "irure", "in",
    "reprehenderit", "voluptate", "velit", "esse", "cillum", "fugiat", "nulla", "pariatur",
    "excepteur", "sint", "occaecat", "cupidatat", "non", "proident", "sunt", "culpa", "qui",
    "officia", "deserunt", "mollit", "anim", "id", "est", "laborum",
};

/* Deterministic lorem ipsum of exactly ntok tokens (fewer only for 0),
 * sentences of 4 to 12 words, seeded by seed. A sampler (NULL = none) may
 * make it diverge: from a word picked at random on, the text continues
 * from another seed, as a sampled answer drifts from the likeliest one.
 * The divergence comes earlier at higher temperature. */
static void lorem(ctx *c, uint64_t seed, long ntok, sampler *smp, const char **text, size_t *len)
{
    *text = "";
    *len = 0;
    if (ntok <= 0)
        return;
    long diverge_at = -1;
    uint64_t alt_seed = 0;
    if (deviate(smp)) {
        long span = MAX(1L, (long)((1.0 - 0.9 * smp->p) * (double)ntok / 2));
        diverge_at = (long)(rng_next(&smp->state) % (uint64_t)span);
        alt_seed = rng_next(&smp->state);
    }
    size_t cap = (size_t)ntok * 16 + 32;
    char *m = palloc(c, cap);
    if (!m)
        return;
    uint64_t rng = diverge_at == 0 ? alt_seed : seed;
    size_t at = 0;
    long have = 0, word = 0, total = 0;
    long sentence_len = 4 + (long)(rng_next(&rng) % 9);
    while (have < ntok && at + 16 < cap) {
        if (total == diverge_at && total > 0)
            rng = alt_seed;
        const char *w;
        if (total < 2)
            w = total == 0 ? "lorem" : "ipsum";
        else
            w = lorem_words[rng_next(&rng) % countof(lorem_words)];
        total++;
        size_t start = at;
        if (at)
            m[at++] = ' ';
        size_t wl = strlen(w);
        memcpy(m + at, w, wl);
        if (word == 0)
            m[at] = (char)(m[at] - 'a' + 'A');
        at += wl;
        word++;
        if (word >= sentence_len) {
            m[at++] = '.';
            word = 0;
            sentence_len = 4 + (long)(rng_next(&rng) % 9);
        } else if (rng_next(&rng) % 8 == 0) {
            m[at++] = ',';
        }
        have += tokens_estimate(m + start, at - start);
    }
    m[at] = '\0';
    *text = m;
    *len = tokens_prefix_len(m, at, ntok);
}

typedef struct filler {
    const json_t *root;     /* the top-level schema, for local "$ref"s */
    long budget;            /* output bytes still allowed */
    sampler *smp;           /* NULL: the deterministic placeholders only */
} filler;

/* The range a sampled number is drawn from: [minimum, maximum] when both
 * are given; with only a minimum, up to 9 above it; without a minimum, 1 to
 * 10 (cut at the maximum), or the 9 below the maximum when it is under 10.
 * Bounds beyond +-1e15 are clipped. False when the range is empty. */
static bool sample_range(const json_t *min, const json_t *max, double *lo, double *hi)
{
    const double width = 9;
    bool has_min = json_is_number(min), has_max = json_is_number(max);
    double mx = json_number_value(max);
    if (has_min)
        *lo = json_number_value(min);
    else
        *lo = has_max && mx < 1 + width ? mx - width : 1;
    *hi = *lo + width;
    if (has_max && (has_min || mx < *hi))
        *hi = mx;
    *lo = MAX(*lo, -1e15);
    *hi = MIN(*hi, 1e15);
    return *lo <= *hi;
}

/* A sampled integer in the schema's range other than v0 when the range has
 * another value. */
static json_t *sample_integer(filler *f, const json_t *min, const json_t *max, json_int_t v0)
{
    double lo, hi;
    if (!sample_range(min, max, &lo, &hi) || ceil(lo) > floor(hi))
        return json_integer(v0);
    json_int_t a = (json_int_t)ceil(lo), b = (json_int_t)floor(hi);
    uint64_t n = (uint64_t)(b - a) + 1;
    json_int_t x = a + (json_int_t)(rng_next(&f->smp->state) % n);
    if (x == v0 && n > 1)
        x = a + (json_int_t)((uint64_t)(x - a + 1) % n);
    return json_integer(x);
}

/* A sampled number in the schema's range, with two decimals. */
static json_t *sample_number(filler *f, const json_t *min, const json_t *max, double v0)
{
    double lo, hi;
    if (!sample_range(min, max, &lo, &hi))
        return json_real(v0);
    double x = round((lo + unit_draw(f->smp) * (hi - lo)) * 100) / 100;
    return json_real(x < lo ? lo : x > hi ? hi : x);
}

/* A copy of a scalar const/enum value, or NULL when v is not a scalar. */
static json_t *scalar_copy(filler *f, const json_t *v)
{
    if (json_is_object(v) || json_is_array(v) || !v)
        return NULL;
    f->budget -= 8 + (long)(json_is_string(v) ? json_string_length(v) : 0);
    return json_copy((json_t *)v);
}

/* Follows a local "$ref" ("#", "#/$defs/NAME", "#/definitions/NAME"). */
static const json_t *resolve_ref(const filler *f, const char *r)
{
    if (strcmp(r, "#") == 0)
        return f->root;
    if (strncmp(r, "#/$defs/", 8) == 0)
        return json_object_get(json_object_get(f->root, "$defs"), r + 8);
    if (strncmp(r, "#/definitions/", 14) == 0)
        return json_object_get(json_object_get(f->root, "definitions"), r + 14);
    return NULL;
}

/* The type a schema asks for: "type" (the first non-null one of a list),
 * else guessed from its keywords; "string" when nothing says. */
static const char *schema_type(const json_t *schema)
{
    const char *type = NULL;
    json_t *t = json_object_get(schema, "type");
    if (json_is_string(t))
        return json_string_value(t);
    size_t i;
    json_t *e;
    json_array_foreach(t, i, e)
        if (json_is_string(e) && (!type || strcmp(type, "null") == 0))
            type = json_string_value(e);
    if (type)
        return type;
    if (json_object_get(schema, "properties"))
        return "object";
    if (json_object_get(schema, "items"))
        return "array";
    return "string";
}

/* A placeholder value of the type a JSON schema asks for: const or the
 * first enum value, else "sim", 1 (or the minimum), 1.5, true, null, an
 * array of minItems (at most 8) items, an object with the required
 * properties. Depth and output size are bounded, so a hostile recursive
 * schema ends in "sim" leaves. NULL only on out of memory. */
static json_t *fill_schema(filler *f, const json_t *schema, int depth)
{
    f->budget -= 8;
    if (depth > SCHEMA_DEPTH || f->budget <= 0 || !json_is_object(schema))
        return json_string("sim");
    json_t *v = scalar_copy(f, json_object_get(schema, "const"));
    if (v)
        return v;
    json_t *en = json_object_get(schema, "enum");
    size_t nen = json_array_size(en);
    if (nen > 1 && deviate(f->smp)) /* another value of the enum */
        v = scalar_copy(f, json_array_get(en, 1 + (size_t)(rng_next(&f->smp->state) % (nen - 1))));
    if (!v)
        v = scalar_copy(f, json_array_get(en, 0));
    if (v)
        return v;
    json_t *ref = json_object_get(schema, "$ref");
    if (json_is_string(ref))
        return fill_schema(f, resolve_ref(f, json_string_value(ref)), depth + 1);
    if (!json_object_get(schema, "type")) {
        static const char *const alts[] = { "anyOf", "oneOf", "allOf" };
        for (size_t i = 0; i < countof(alts); i++) {
            json_t *a = json_object_get(schema, alts[i]);
            if (json_array_size(a) > 0)
                return fill_schema(f, json_array_get(a, 0), depth + 1);
        }
    }
    const char *type = schema_type(schema);
    json_t *min = json_object_get(schema, "minimum");
    json_t *max = json_object_get(schema, "maximum");
    if (strcmp(type, "integer") == 0) {
        json_t *bound = json_is_number(min) ? min : json_is_number(max) && json_number_value(max) < 1 ? max : NULL;
        json_int_t v0 = 1;
        if (json_is_integer(bound))
            v0 = json_integer_value(bound);
        else if (bound && fabs(json_real_value(bound)) < 1e15)
            v0 = (json_int_t)(bound == min ? ceil(json_real_value(bound)) : floor(json_real_value(bound)));
        return deviate(f->smp) ? sample_integer(f, min, max, v0) : json_integer(v0);
    }
    if (strcmp(type, "number") == 0) {
        double v0 = 1.5;
        if (json_is_number(min))
            v0 = json_number_value(min);
        else if (json_is_number(max) && json_number_value(max) < 1.5)
            v0 = json_number_value(max);
        return deviate(f->smp) ? sample_number(f, min, max, v0) : json_real(v0);
    }
    if (strcmp(type, "boolean") == 0)
        return json_boolean(!deviate(f->smp));
    if (strcmp(type, "null") == 0)
        return json_null();
    if (strcmp(type, "array") == 0) {
        json_t *a = json_array();
        json_t *mi = json_object_get(schema, "minItems");
        json_t *ma = json_object_get(schema, "maxItems");
        json_int_t count = json_is_integer(mi) ? json_integer_value(mi) : 0;
        if ((!json_is_integer(ma) || json_integer_value(ma) > count) && count < 8 && deviate(f->smp))
            count++; /* one item more than the minimum */
        for (json_int_t i = 0; a && i < count && i < 8 && f->budget > 0; i++) {
            if (json_array_append_new(a, fill_schema(f, json_object_get(schema, "items"),
                                                     depth + 1)) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    if (strcmp(type, "object") == 0) {
        json_t *o = json_object();
        json_t *props = json_object_get(schema, "properties");
        json_t *req = json_object_get(schema, "required");
        size_t i;
        json_t *name;
        json_array_foreach(req, i, name) {
            if (!o || f->budget <= 0)
                break;
            if (!json_is_string(name))
                continue;
            const char *key = json_string_value(name);
            size_t klen = json_string_length(name);
            f->budget -= (long)klen;
            if (json_object_setn_new(o, key, klen,
                                     fill_schema(f, json_object_getn(props, key, klen),
                                                 depth + 1)) != 0) {
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    if (deviate(f->smp)) /* another word */
        return json_string(lorem_words[rng_next(&f->smp->state) % countof(lorem_words)]);
    return json_string("sim");
}

/* fill_schema from the top of schema (NULL: an empty object); smp NULL =
 * no sampling. */
static json_t *fill_document(const json_t *schema, sampler *smp)
{
    filler f = { schema, SCHEMA_BUDGET, smp };
    return schema ? fill_schema(&f, schema, 0) : json_object();
}

/* Dumps a JSON value (consumed) into the pool. */
static void dump_to_pool(ctx *c, json_t *v, const char **text, size_t *len)
{
    *text = "";
    *len = 0;
    if (!v) {
        c->oom = true;
        return;
    }
    size_t n = json_dumpb(v, NULL, 0, DUMP_FLAGS | JSON_ENCODE_ANY);
    char *m = n ? palloc(c, n + 1) : NULL;
    if (!n)
        c->oom = true;
    if (m && json_dumpb(v, m, n, DUMP_FLAGS | JSON_ENCODE_ANY) == n) {
        m[n] = '\0';
        *text = m;
        *len = n;
    } else {
        c->oom = true;
    }
    json_decref(v);
}

/* Cuts text at the first occurrence of any stop sequence. */
static size_t cut_at_stop(const json_t *stop, const char *text, size_t len)
{
    const json_t *one[1] = { stop };
    size_t n = json_is_array(stop) ? json_array_size(stop) : (stop ? 1 : 0);
    size_t best = len;
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_is_array(stop) ? json_array_get(stop, i) : one[0];
        size_t sl = json_string_length(s);
        if (sl == 0 || sl > len)
            continue;
        const char *hit = memmem(text, len, json_string_value(s), sl);
        if (hit && (size_t)(hit - text) < best)
            best = (size_t)(hit - text);
    }
    return best;
}

/* Fills in choice k: its text, finish reason and pieces. */
static void make_choice(ctx *c, size_t k, choice *ch)
{
    const sim_options *o = c->opts;
    const char *text = "";
    size_t len = 0;
    uint64_t seed = mix64(c->hash ^ mix64(o->seed) ^ (0x51ED27ull * (k + 1)));
    sampler sampled = { mix64(seed ^ mix64(c->seq ^ 0x5A3D1E7ull)), c->deviate_p };
    sampler *smp = c->deviate_p > 0 ? &sampled : NULL;
    long lorem_len = c->k.tokens >= 0 ? c->k.tokens : o->max_tokens > 0 ? o->max_tokens : 64;
    if (lorem_len > SIM_MAX_ANSWER_TOKENS)
        lorem_len = SIM_MAX_ANSWER_TOKENS;
    switch (c->mode) {
    case M_ECHO:
        if (c->ep == SIM_COMPLETIONS) {
            text = c->prompts[k / (size_t)c->n].text;
            len = c->prompts[k / (size_t)c->n].len;
        } else {
            text = c->user_text;
            len = c->user_len;
        }
        break;
    case M_CANNED:
        if (o->ncanned > 0 && o->canned) {
            size_t at = (size_t)((c->seq + k) % o->ncanned);
            if (o->ncanned > 1 && deviate(smp)) /* another of the answers */
                at = (at + 1 + (size_t)(rng_next(&smp->state) % (o->ncanned - 1))) % o->ncanned;
            text = o->canned[at];
            text = text ? text : "";
        } else {
            text = DEFAULT_CANNED;
        }
        len = strlen(text);
        break;
    default: /* lorem, broken-stream */
        lorem(c, seed, lorem_len, smp, &text, &len);
        break;
    }
    ch->finish = "stop";
    json_t *tool = c->tool;
    size_t ntools = json_array_size(c->auto_tools);
    if (tool && ntools > 1 && deviate(smp)) /* tool_choice auto: another of the tools */
        tool = json_object_get(json_array_get(c->auto_tools, 1 + (size_t)(rng_next(&smp->state) % (ntools - 1))),
                               "function");
    if (tool) {
        json_t *name = json_object_get(tool, "name");
        json_t *params = json_object_get(tool, "parameters");
        ch->tool_name = json_string_value(name);
        ch->finish = "tool_calls";
        snprintf(ch->call_id, sizeof ch->call_id, "call_sim_%016" PRIx64, mix64(seed ^ c->seq));
        dump_to_pool(c, fill_document(json_is_object(params) ? params : NULL, smp), &text, &len);
    } else if (c->format == 1) {
        json_t *obj = json_object();
        set(c, obj, "answer", jstr(c, text, len));
        dump_to_pool(c, obj, &text, &len);
    } else if (c->format == 2) {
        dump_to_pool(c, fill_document(c->schema, smp), &text, &len);
    } else if (c->stop) {
        len = cut_at_stop(c->stop, text, len);
    }
    long limit = MIN(SIM_MAX_ANSWER_TOKENS, SIM_MAX_TOTAL_TOKENS / (long)c->nch);
    if (c->max_tokens > 0 && c->max_tokens < limit)
        limit = c->max_tokens;
    long ntok = tokens_estimate(text, len);
    if (ntok > limit) {
        len = tokens_prefix_len(text, len, limit);
        ntok = limit;
        ch->finish = "length";
    }
    ch->text = text;
    ch->len = len;
    ch->pieces = ntok ? palloc(c, (size_t)ntok * sizeof(sv)) : NULL;
    ch->npieces = ch->pieces ? tokens_split(text, len, ch->pieces, (size_t)ntok) : 0;
}

/* ---- chat and completions output ---- */

static json_t *usage_object(ctx *c, long completion, bool details)
{
    json_t *u = json_object();
    set(c, u, "prompt_tokens", json_integer(c->prompt_tokens));
    set(c, u, "completion_tokens", json_integer(completion));
    set(c, u, "total_tokens", json_integer(c->prompt_tokens + completion));
    if (details) {
        json_t *pd = json_object();
        set(c, pd, "cached_tokens", json_integer(0));
        set(c, pd, "audio_tokens", json_integer(0));
        set(c, u, "prompt_tokens_details", pd);
        json_t *cd = json_object();
        set(c, cd, "reasoning_tokens", json_integer(0));
        set(c, cd, "audio_tokens", json_integer(0));
        set(c, cd, "accepted_prediction_tokens", json_integer(0));
        set(c, cd, "rejected_prediction_tokens", json_integer(0));
        set(c, u, "completion_tokens_details", cd);
    }
    return u;
}

/* The envelope shared by every chat or completions object. */
static json_t *envelope(ctx *c, const char *object, json_t *choices)
{
    json_t *o = json_object();
    set(c, o, "id", jcstr(c, c->id));
    set(c, o, "object", jcstr(c, object));
    set(c, o, "created", json_integer(c->created));
    set(c, o, "model", jcstr(c, c->model));
    if (c->ep == SIM_CHAT)
        set(c, o, "service_tier", jcstr(c, "default"));
    set(c, o, "system_fingerprint", jcstr(c, SIM_FINGERPRINT));
    set(c, o, "choices", choices);
    return o;
}

static json_t *tool_call(ctx *c, const choice *ch, bool stream_head, const char *args, size_t alen)
{
    json_t *tc = json_object();
    if (stream_head)
        set(c, tc, "index", json_integer(0));
    set(c, tc, "id", jcstr(c, ch->call_id));
    set(c, tc, "type", jcstr(c, "function"));
    json_t *fn = json_object();
    set(c, fn, "name", jcstr(c, ch->tool_name));
    set(c, fn, "arguments", jstr(c, args, alen));
    set(c, tc, "function", fn);
    json_t *a = json_array();
    push(c, a, tc);
    return a;
}

static void plan_body(ctx *c)
{
    json_t *choices = json_array();
    long completion = 0;
    for (size_t k = 0; k < c->nch; k++) {
        const choice *ch = &c->ch[k];
        completion += (long)ch->npieces;
        json_t *jc = json_object();
        if (c->ep == SIM_CHAT) {
            set(c, jc, "index", json_integer((json_int_t)k));
            json_t *msg = json_object();
            set(c, msg, "role", jcstr(c, "assistant"));
            if (ch->tool_name) {
                set(c, msg, "content", json_null());
                set(c, msg, "tool_calls", tool_call(c, ch, false, ch->text, ch->len));
            } else {
                set(c, msg, "content", jstr(c, ch->text, ch->len));
            }
            set(c, msg, "refusal", json_null());
            set(c, msg, "annotations", json_array());
            set(c, jc, "message", msg);
            set(c, jc, "logprobs", json_null());
            set(c, jc, "finish_reason", jcstr(c, ch->finish));
        } else {
            set(c, jc, "text", jstr(c, ch->text, ch->len));
            set(c, jc, "index", json_integer((json_int_t)k));
            set(c, jc, "logprobs", json_null());
            set(c, jc, "finish_reason", jcstr(c, ch->finish));
        }
        push(c, choices, jc);
    }
    json_t *o = envelope(c, c->ep == SIM_CHAT ? "chat.completion" : "text_completion", choices);
    set(c, o, "usage", usage_object(c, completion, c->ep == SIM_CHAT));
    c->out->completion_tokens = completion;
    emit(c, c->k.latency_ms, o, false);
}

/* One streamed chunk for choice k: chat delta, or completions text. */
static json_t *chunk(ctx *c, size_t k, json_t *delta, const char *text, size_t len,
                     const char *finish)
{
    json_t *jc = json_object();
    if (c->ep == SIM_CHAT) {
        set(c, jc, "index", json_integer((json_int_t)k));
        set(c, jc, "delta", delta);
    } else {
        json_decref(delta);
        set(c, jc, "text", jstr(c, text, len));
        set(c, jc, "index", json_integer((json_int_t)k));
    }
    set(c, jc, "logprobs", json_null());
    set(c, jc, "finish_reason", finish ? jcstr(c, finish) : json_null());
    json_t *choices = json_array();
    push(c, choices, jc);
    json_t *o = envelope(c, c->ep == SIM_CHAT ? "chat.completion.chunk" : "text_completion", choices);
    if (c->include_usage)
        set(c, o, "usage", json_null());
    return o;
}

static json_t *content_delta(ctx *c, const choice *ch, sv piece)
{
    json_t *d = json_object();
    if (c->ep != SIM_CHAT)
        return d;
    if (ch->tool_name) {
        json_t *tc = json_object();
        set(c, tc, "index", json_integer(0));
        json_t *fn = json_object();
        set(c, fn, "arguments", jstr(c, piece.p, piece.len));
        set(c, tc, "function", fn);
        json_t *a = json_array();
        push(c, a, tc);
        set(c, d, "tool_calls", a);
    } else {
        set(c, d, "content", jstr(c, piece.p, piece.len));
    }
    return d;
}

/* The SSE event of a failure in the middle of a stream. */
static void emit_stream_error(ctx *c, long delay)
{
    char msg[128];
    snprintf(msg, sizeof msg, "The stream failed with HTTP status %d after %ld tokens (simulated).",
             c->k.fail, c->k.fail_after);
    emit(c, delay, error_object(c, c->k.fail >= 500 ? "server_error" : "invalid_request_error",
                                NULL, NULL, msg), true);
}

static void plan_stream(ctx *c)
{
    sim_plan *out = c->out;
    out->stream = true;
    out->content_type = "text/event-stream";
    /* providers send the role chunk when the first token is ready, so it
     * waits for ttft too: the gateway's time to first chunk then measures it */
    long wait = c->k.latency_ms + c->k.ttft_ms;
    if (c->ep == SIM_CHAT) {
        for (size_t k = 0; k < c->nch; k++) {
            const choice *ch = &c->ch[k];
            json_t *d = json_object();
            set(c, d, "role", jcstr(c, "assistant"));
            if (ch->tool_name) {
                set(c, d, "content", json_null());
                set(c, d, "tool_calls", tool_call(c, ch, true, "", 0));
            } else {
                set(c, d, "content", jcstr(c, ""));
            }
            set(c, d, "refusal", json_null());
            emit(c, wait, chunk(c, k, d, NULL, 0, NULL), true);
            wait = 0;
        }
    }
    size_t maxp = 0;
    for (size_t k = 0; k < c->nch; k++)
        maxp = MAX(maxp, c->ch[k].npieces);
    size_t stop_at = c->mode == M_BROKEN ? maxp / 2 : maxp;
    long fail_at = c->k.fail ? c->k.fail_after : -1;
    long sent = 0;
    bool any = false;
    for (size_t t = 0; t <= maxp && !c->oom; t++) {
        if (c->mode == M_BROKEN && t == stop_at) {
            out->end = SIM_END_BREAK;
            out->completion_tokens = sent;
            return;
        }
        if (fail_at >= 0 && (t == (size_t)fail_at || t == maxp)) {
            emit_stream_error(c, wait);
            out->completion_tokens = sent;
            return;
        }
        if (t == maxp)
            break;
        for (size_t k = 0; k < c->nch; k++) {
            const choice *ch = &c->ch[k];
            if (t >= ch->npieces)
                continue;
            sv piece = ch->pieces[t];
            emit(c, wait, chunk(c, k, content_delta(c, ch, piece), piece.p, piece.len, NULL), true);
            wait = 0;
            sent++;
            any = true;
        }
        wait = c->k.token_ms;
    }
    if (any)
        wait = 0;
    for (size_t k = 0; k < c->nch; k++) {
        emit(c, wait, chunk(c, k, json_object(), "", 0, c->ch[k].finish), true);
        wait = 0;
    }
    if (c->include_usage) {
        json_t *o = envelope(c, c->ep == SIM_CHAT ? "chat.completion.chunk" : "text_completion",
                             json_array());
        set(c, o, "usage", usage_object(c, sent, c->ep == SIM_CHAT));
        emit(c, 0, o, true);
    }
    static const char done[] = "data: [DONE]\n\n";
    add_step(c, 0, done, sizeof done - 1);
    out->completion_tokens = sent;
}

/* ---- embeddings ---- */

typedef struct embed_input {
    const char *text;       /* a string input, or NULL */
    size_t len;
    const json_t *ids;      /* a token-id input */
} embed_input;

/* Adds one word's feature: 4 hashed dimensions, each +1 or -1. */
static void embed_word(double *v, size_t dims, uint64_t h)
{
    for (int i = 0; i < 4; i++) {
        uint64_t r = mix64(h + (uint64_t)i * 0x9E3779B97F4A7C15ull);
        v[r % dims] += (r >> 63) ? 1.0 : -1.0;
    }
}

/* The vector of one input: a small dense part from the hash of the whole
 * input plus hashed bag-of-words features (so inputs sharing words point
 * the same way), normalised to length 1 and rounded to float32. */
static void embed(const embed_input *in, float *out, double *v, size_t dims)
{
    uint64_t whole = FNV_OFFSET;
    for (size_t d = 0; d < dims; d++)
        v[d] = 0;
    if (in->text) {
        whole = fnv1a(whole, in->text, in->len);
        size_t i = 0;
        while (i < in->len) {
            while (i < in->len && !(isalnum((unsigned char)in->text[i]) ||
                                    (unsigned char)in->text[i] >= 0x80))
                i++;
            uint64_t h = FNV_OFFSET;
            size_t start = i;
            while (i < in->len && (isalnum((unsigned char)in->text[i]) ||
                                   (unsigned char)in->text[i] >= 0x80)) {
                unsigned char ch = (unsigned char)tolower((unsigned char)in->text[i]);
                h = fnv1a(h, &ch, 1);
                i++;
            }
            if (i > start)
                embed_word(v, dims, h);
        }
    } else {
        size_t i;
        json_t *t;
        json_array_foreach(in->ids, i, t) {
            json_int_t x = json_integer_value(t);
            uint64_t h = fnv1a(FNV_OFFSET ^ 0x7F, &x, sizeof x);
            whole = fnv1a(whole, &x, sizeof x);
            embed_word(v, dims, h);
        }
    }
    uint64_t rng = mix64(whole);
    for (size_t d = 0; d < dims; d++)
        v[d] += 0.25 * ((double)(rng_next(&rng) >> 11) * 0x1p-53 * 2.0 - 1.0);
    double norm = 0;
    for (size_t d = 0; d < dims; d++)
        norm += v[d] * v[d];
    norm = sqrt(norm);
    for (size_t d = 0; d < dims; d++)
        out[d] = norm > 0 ? (float)(v[d] / norm) : (d == 0 ? 1.0f : 0.0f);
}

static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t x = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[x >> 18];
        out[o++] = tab[(x >> 12) & 63];
        out[o++] = tab[(x >> 6) & 63];
        out[o++] = tab[x & 63];
    }
    if (i < n) {
        uint32_t x = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = tab[x >> 18];
        out[o++] = tab[(x >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(x >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
}

static bool parse_embed_inputs(ctx *c, embed_input **ins, size_t *nin)
{
    json_t *input = json_object_get(c->req, "input");
    if (!input)
        return refuse_missing(c, "input");
    size_t n = 1;
    bool ids = false;
    if (json_is_string(input)) {
        if (json_string_length(input) == 0)
            return refuse(c, 400, "input", "invalid_value",
                          "Invalid 'input': expected a non-empty string.");
    } else if (json_is_array(input)) {
        n = json_array_size(input);
        if (n == 0)
            return refuse(c, 400, "input", "empty_array",
                          "Invalid 'input': empty array. Expected an array with minimum length 1, "
                          "but got an empty array instead.");
        ids = json_is_integer(json_array_get(input, 0));
        if (ids)
            n = 1;
        else if (n > SIM_MAX_INPUTS)
            return refuse(c, 400, "input", "array_above_max_length",
                          "Invalid 'input': array too long. Expected an array with maximum length "
                          "%d, but got an array with length %zu instead.", SIM_MAX_INPUTS, n);
    } else {
        return refuse_type(c, "input", "a string or an array", input);
    }
    embed_input *in = palloc(c, n * sizeof *in);
    if (!in)
        return true;
    char param[32];
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_is_string(input) || ids ? input : json_array_get(input, i);
        snprintf(param, sizeof param, json_is_string(input) || ids ? "input" : "input[%zu]", i);
        in[i] = (embed_input){ NULL, 0, NULL };
        if (json_is_string(e)) {
            if (json_string_length(e) == 0)
                return refuse(c, 400, param, "invalid_value",
                              "Invalid '%s': expected a non-empty string.", param);
            in[i].text = json_string_value(e);
            in[i].len = json_string_length(e);
            c->prompt_tokens += tokens_estimate(in[i].text, in[i].len);
            continue;
        }
        if (!json_is_array(e) || json_array_size(e) == 0)
            return refuse(c, 400, param, "invalid_value",
                          "Invalid '%s': expected a non-empty string or array of token ids.", param);
        size_t j;
        json_t *t;
        json_array_foreach(e, j, t)
            if (!json_is_integer(t) || json_integer_value(t) < 0 ||
                json_integer_value(t) > MAX_PROMPT_TOKEN)
                return refuse(c, 400, param, "invalid_value",
                              "Invalid '%s': expected token ids (integers from 0 to %ld).", param,
                              MAX_PROMPT_TOKEN);
        in[i].ids = e;
        c->prompt_tokens += (long)json_array_size(e);
    }
    *ins = in;
    *nin = n;
    return true;
}

static void buf_check(ctx *c, err_code e)
{
    if (e != ERR_OK)
        c->oom = true;
}

static void plan_embeddings(ctx *c)
{
    embed_input *ins = NULL;
    size_t nin = 0;
    long dims = SIM_DEFAULT_DIMENSIONS;
    if (!parse_embed_inputs(c, &ins, &nin) ||
        !opt_long(c, c->req, "dimensions", "dimensions", 1, SIM_MAX_DIMENSIONS, &dims, NULL))
        return;
    json_t *ef = get(c->req, "encoding_format");
    bool b64 = false;
    if (ef) {
        const char *s = json_is_string(ef) ? json_string_value(ef) : "";
        if (strcmp(s, "base64") == 0)
            b64 = true;
        else if (strcmp(s, "float") != 0)
            return (void)refuse(c, 400, "encoding_format", "invalid_value",
                                "Invalid value for 'encoding_format'. Supported values are: "
                                "'float' and 'base64'.");
    }
    if ((long)nin * dims > SIM_MAX_FLOATS) {
        refuse(c, 400, "input", "invalid_value",
               "The simulator returns at most %ld numbers per request (inputs x dimensions), "
               "got %zu x %ld.", SIM_MAX_FLOATS, nin, dims);
        return;
    }
    if (c->oom || !ins)
        return;
    if (c->mode == M_TIMEOUT) {
        c->out->end = SIM_END_HANG;
        return;
    }
    if (c->mode == M_BROKEN) {
        c->out->end = SIM_END_BREAK;
        return;
    }
    float *vec = malloc((size_t)dims * sizeof *vec);
    double *work = malloc((size_t)dims * sizeof *work);
    char *b64buf = malloc(((size_t)dims * 4 + 2) / 3 * 4 + 1);
    unsigned char *raw = malloc((size_t)dims * 4);
    const char *model = NULL;
    size_t model_len = 0;
    dump_to_pool(c, jcstr(c, c->model), &model, &model_len);
    buf b;
    buf_init(&b, EMBED_BODY_MAX);
    if (!vec || !work || !b64buf || !raw || c->oom) {
        c->oom = true;
        goto out;
    }
    buf_check(c, buf_append_str(&b, "{\"object\":\"list\",\"data\":["));
    for (size_t i = 0; i < nin && !c->oom; i++) {
        embed(&ins[i], vec, work, (size_t)dims);
        buf_check(c, buf_printf(&b, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":",
                                i ? "," : "", i));
        if (b64) {
            for (long d = 0; d < dims; d++) {
                uint32_t u;
                memcpy(&u, &vec[d], 4);
                for (int byte = 0; byte < 4; byte++)
                    raw[d * 4 + byte] = (unsigned char)(u >> (8 * byte));
            }
            base64(raw, (size_t)dims * 4, b64buf);
            buf_check(c, buf_printf(&b, "\"%s\"}", b64buf));
        } else {
            buf_check(c, buf_append_str(&b, "["));
            for (long d = 0; d < dims; d++)
                buf_check(c, buf_printf(&b, "%s%.9g", d ? "," : "", (double)vec[d]));
            buf_check(c, buf_append_str(&b, "]}"));
        }
    }
    buf_check(c, buf_printf(&b, "],\"model\":%s,\"usage\":{\"prompt_tokens\":%ld,"
                            "\"total_tokens\":%ld}}", model, c->prompt_tokens, c->prompt_tokens));
    if (!c->oom) {
        size_t len = 0;
        char *body = buf_steal(&b, &len);
        if (!body || pool_cleanup_add(c->p, free, body) != 0) {
            free(body);
            c->oom = true;
        } else {
            add_step(c, c->k.latency_ms, body, len);
        }
    }
out:
    buf_free(&b);
    free(vec);
    free(work);
    free(b64buf);
    free(raw);
}

/* ---- models ---- */

static void plan_models(ctx *c)
{
    json_t *data = json_array();
    for (int i = 0; i < M__COUNT; i++) {
        char id[40];
        snprintf(id, sizeof id, "sim/%s", mode_names[i]);
        json_t *m = json_object();
        set(c, m, "id", jcstr(c, id));
        set(c, m, "object", jcstr(c, "model"));
        set(c, m, "created", json_integer(SIM_EPOCH));
        set(c, m, "owned_by", jcstr(c, SIM_OWNER));
        push(c, data, m);
    }
    json_t *o = json_object();
    set(c, o, "object", jcstr(c, "list"));
    set(c, o, "data", data);
    emit(c, 0, o, false);
}

/* ---- the entry point ---- */

static int hash_sink(const char *bytes, size_t n, void *data)
{
    uint64_t *h = data;
    *h = fnv1a(*h, bytes, n);
    return 0;
}

static uint64_t request_hash(ctx *c)
{
    static const char *const skip[] = {
        "stream", "stream_options", "n", "max_tokens", "max_completion_tokens", "simulator",
    };
    json_t *copy = json_copy(c->req);
    if (!copy) {
        c->oom = true;
        return 0;
    }
    for (size_t i = 0; i < countof(skip); i++)
        json_object_del(copy, skip[i]);
    uint64_t h = FNV_OFFSET;
    if (json_dump_callback(copy, hash_sink, &h, HASH_FLAGS) != 0)
        c->oom = true;
    json_decref(copy);
    h = fnv1a(h, &c->ep, sizeof c->ep);
    return mix64(h);
}

static const sim_options default_options = {
    .default_mode = "echo", .max_tokens = 64, .error_status = 500,
};

err_code sim_plan_make(const sim_options *opts, sim_endpoint ep, const char *mode,
                       json_t *req, uint64_t seq, pool *p, sim_plan *out)
{
    ctx c = { 0 };
    memset(out, 0, sizeof *out);
    c.opts = opts ? opts : &default_options;
    c.ep = ep;
    c.req = req;
    c.seq = seq;
    c.p = p;
    c.out = out;
    c.k = (knobs){ MAX(c.opts->latency_ms, 0), MAX(c.opts->ttft_ms, 0), MAX(c.opts->token_ms, 0),
                   -1, 0, -1 };
    c.k.latency_ms = MIN(c.k.latency_ms, SIM_MAX_DELAY_MS);
    c.k.ttft_ms = MIN(c.k.ttft_ms, SIM_MAX_DELAY_MS);
    c.k.token_ms = MIN(c.k.token_ms, SIM_MAX_DELAY_MS);
    out->status = 200;
    out->content_type = "application/json";
    out->end = SIM_END_OK;

    if (ep == SIM_MODELS) {
        plan_models(&c);
        goto done;
    }
    if (!mode)
        mode = c.opts->default_mode ? c.opts->default_mode : "echo";
    c.mode = mode_find(mode);
    if (c.mode < 0) {
        char msg[400];
        snprintf(msg, sizeof msg,
                 "The model `sim/%.64s` does not exist (simulated). Known simulator models: "
                 "sim/echo, sim/lorem, sim/canned, sim/error-429, sim/error-500, sim/error-503, "
                 "sim/timeout, sim/broken-stream.", mode);
        plan_error(&c, 404, "invalid_request_error", NULL, "model_not_found", msg);
        goto done;
    }
    json_t *model = json_object_get(req, "model");
    c.model = json_is_string(model) && json_string_length(model) > 0
                  ? json_string_value(model)
                  : pool_printf(p, "sim/%s", mode_names[c.mode]);
    if (!c.model) {
        c.oom = true;
        goto done;
    }
    if (!json_is_object(req)) {
        refuse(&c, 400, NULL, NULL, "We could not parse the JSON body of your request: expected "
               "a JSON object.");
        goto done;
    }
    if (!parse_knobs(&c))
        goto done;
    if (ep == SIM_CHAT) {
        if (!parse_messages(&c) || !parse_common(&c, 0) || !parse_tools(&c) ||
            !parse_response_format(&c))
            goto done;
    } else if (ep == SIM_COMPLETIONS) {
        if (!parse_common(&c, 16) || !parse_prompts(&c))
            goto done;
    } else if (ep != SIM_EMBEDDINGS) {
        refuse(&c, 404, NULL, NULL, "Unknown simulator endpoint.");
        goto done;
    }
    if (c.oom)
        goto done;
    c.hash = request_hash(&c);
    c.created = SIM_EPOCH + (long)(seq % 1000000000u);
    snprintf(c.id, sizeof c.id, "%s%016" PRIx64, ep == SIM_CHAT ? "chatcmpl-sim-" : "cmpl-sim-",
             mix64(c.hash ^ mix64(seq) ^ c.opts->seed));

    /* failures decided before anything is sent */
    double u = (double)(mix64(mix64((uint64_t)c.opts->seed) ^ seq) >> 11) * 0x1p-53;
    int rate_status = c.opts->error_status >= 400 && c.opts->error_status <= 599
                          ? c.opts->error_status : 500;
    if (c.mode == M_E429 || c.mode == M_E500 || c.mode == M_E503) {
        plan_failure(&c, c.mode == M_E429 ? 429 : c.mode == M_E500 ? 500 : 503);
        goto done;
    }
    if (c.k.fail && (c.k.fail_after < 0 || !c.stream || ep == SIM_EMBEDDINGS)) {
        plan_failure(&c, c.k.fail);
        goto done;
    }
    if (c.opts->error_rate > 0 && u < c.opts->error_rate) {
        plan_failure(&c, rate_status);
        goto done;
    }
    if (ep == SIM_EMBEDDINGS) {
        plan_embeddings(&c);
        goto done;
    }
    out->prompt_tokens = c.prompt_tokens;
    if (c.mode == M_TIMEOUT) {
        out->end = SIM_END_HANG;
        goto done;
    }
    if (c.mode == M_BROKEN && !c.stream) {
        out->end = SIM_END_BREAK;
        goto done;
    }
    c.nch = ep == SIM_CHAT ? (size_t)c.n : c.nprompts * (size_t)c.n;
    c.ch = palloc(&c, c.nch * sizeof *c.ch);
    for (size_t k = 0; c.ch && k < c.nch && !c.oom; k++) {
        memset(&c.ch[k], 0, sizeof c.ch[k]);
        make_choice(&c, k, &c.ch[k]);
    }
    if (c.oom)
        goto done;
    if (c.stream)
        plan_stream(&c);
    else
        plan_body(&c);
done:
    if (c.oom) {
        memset(out, 0, sizeof *out);
        return ERR_NOMEM;
    }
    if (c.refused || out->status != 200)
        out->prompt_tokens = out->completion_tokens = 0;
    else if (ep == SIM_EMBEDDINGS)
        out->prompt_tokens = c.prompt_tokens;
    return ERR_OK;
}
