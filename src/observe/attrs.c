/*
 * attrs.c - the table that maps trace_rec / span_rec fields to OpenTelemetry
 * attribute names and types (see attrs.h).
 *
 * Each row names an attribute, the kind of field it is read from, the
 * field's offset in the record and, for request parameters, the offset of
 * the has_* flag that says whether it is known. One loop walks a table and
 * adds the known values to a jansson object, so the store's JSON and the
 * OTLP encoder can never disagree on a name or a type.
 *
 * Names checked against the OpenTelemetry GenAI semantic conventions:
 * gen_ai.operation.name, gen_ai.provider.name, gen_ai.request.model,
 * gen_ai.request.{temperature,top_p,max_tokens,seed,frequency_penalty,
 * presence_penalty}, gen_ai.response.{model,id,finish_reasons},
 * gen_ai.usage.{input_tokens,output_tokens,cache_read.input_tokens,
 * cache_creation.input_tokens,reasoning.output_tokens},
 * gen_ai.response.time_to_first_chunk (seconds), error.type,
 * http.response.status_code, server.address, server.port.
 * gen_ai.request.stream is genaiops' own choice of name for the stream flag.
 */
#include <math.h>
#include <stdio.h>
#include <stddef.h>
#include "core/jscan.h"
#include "observe/attrs.h"

typedef enum field_kind {
    F_STR,        /* char array: omitted when empty */
    F_STR_LIST,   /* char array, comma-separated: an array of strings */
    F_LL_KNOWN,   /* long long: omitted when < 0 */
    F_LL_HAS,     /* long long: present when the bool at has_off is true */
    F_DBL_HAS,    /* double: present when the bool at has_off is true */
    F_INT_POS,    /* int: omitted when <= 0 */
    F_BOOL,       /* bool: always present */
    F_NS_SECONDS, /* uint64_t ns as a real number of seconds: omitted when 0 */
    F_NS_MICROS,  /* uint64_t ns as integer microseconds: omitted when 0 */
} field_kind;

typedef struct attr_row {
    const char *name;
    const char *key;  /* the name as a JSON member key: "\"name\":" (names need no escapes) */
    size_t keylen;
    field_kind kind;
    size_t off;      /* of the field */
    size_t size;     /* of the field (char arrays) */
    size_t has_off;  /* of the bool flag (F_*_HAS) */
} attr_row;

#define FIELD(type, f) offsetof(type, f), sizeof(((type *)0)->f)
#define NAME(name) name, "\"" name "\":", sizeof("\"" name "\":") - 1
#define TSTR(name, f)       { NAME(name), F_STR, FIELD(trace_rec, f), 0 }
#define TLIST(name, f)      { NAME(name), F_STR_LIST, FIELD(trace_rec, f), 0 }
#define TLL(name, f)        { NAME(name), F_LL_KNOWN, FIELD(trace_rec, f), 0 }
#define TLLHAS(name, f, h)  { NAME(name), F_LL_HAS, FIELD(trace_rec, f), offsetof(trace_rec, h) }
#define TDBLHAS(name, f, h) { NAME(name), F_DBL_HAS, FIELD(trace_rec, f), offsetof(trace_rec, h) }
#define TINT(name, f)       { NAME(name), F_INT_POS, FIELD(trace_rec, f), 0 }
#define TBOOL(name, f)      { NAME(name), F_BOOL, FIELD(trace_rec, f), 0 }
#define TSECS(name, f)      { NAME(name), F_NS_SECONDS, FIELD(trace_rec, f), 0 }
#define TMICROS(name, f)    { NAME(name), F_NS_MICROS, FIELD(trace_rec, f), 0 }
#define SSTR(name, f)       { NAME(name), F_STR, FIELD(span_rec, f), 0 }
#define SINT(name, f)       { NAME(name), F_INT_POS, FIELD(span_rec, f), 0 }

/* The root span: the whole request. */
static const attr_row root_rows[] = {
    TSTR("gen_ai.operation.name", operation),
    TSTR("gen_ai.provider.name", provider),
    TSTR("gen_ai.request.model", request_model),
    TDBLHAS("gen_ai.request.temperature", temperature, has_temperature),
    TDBLHAS("gen_ai.request.top_p", top_p, has_top_p),
    TLLHAS("gen_ai.request.max_tokens", max_tokens, has_max_tokens),
    TLLHAS("gen_ai.request.seed", seed, has_seed),
    TDBLHAS("gen_ai.request.frequency_penalty", frequency_penalty, has_frequency_penalty),
    TDBLHAS("gen_ai.request.presence_penalty", presence_penalty, has_presence_penalty),
    TBOOL("gen_ai.request.stream", stream),
    TSTR("gen_ai.response.model", response_model),
    TSTR("gen_ai.response.id", response_id),
    TLIST("gen_ai.response.finish_reasons", finish_reasons),
    TLL("gen_ai.usage.input_tokens", input_tokens),
    TLL("gen_ai.usage.output_tokens", output_tokens),
    TLL("gen_ai.usage.cache_read.input_tokens", cache_read_tokens),
    TLL("gen_ai.usage.cache_creation.input_tokens", cache_creation_tokens),
    TLL("gen_ai.usage.reasoning.output_tokens", reasoning_tokens),
    TSECS("gen_ai.response.time_to_first_chunk", ttft_ns),
    TSTR("error.type", error_type),
    TINT("http.response.status_code", status),
    TDBLHAS("genaiops.cost_usd", cost_usd, cost_known),
    TSTR("genaiops.request_id", request_id),
    TSTR("genaiops.deployment", deployment),
    TSTR("genaiops.key", api_key),
    TSTR("gen_ai.prompt.name", prompt_name),
    TINT("genaiops.prompt.version", prompt_version),
    TMICROS("genaiops.overhead_us", overhead_ns),
    TINT("genaiops.attempts", attempts),
};

/* An upstream attempt (and, for now, any other child span). */
static const attr_row attempt_rows[] = {
    SSTR("gen_ai.provider.name", provider),
    SSTR("gen_ai.request.model", model),
    SSTR("server.address", server_address),
    SINT("server.port", server_port),
    SINT("http.response.status_code", http_status),
    SSTR("error.type", error_type),
};

#define SLIST(name, f)      { NAME(name), F_STR_LIST, FIELD(span_rec, f), 0 }
static const attr_row guard_rows[] = {
    SSTR("genaiops.guardrail.policy", guard_policy),
    SSTR("genaiops.guardrail.detector", guard_detector),
    SSTR("genaiops.guardrail.stage", guard_stage),
    SSTR("genaiops.guardrail.verdict", guard_verdict),
    SSTR("genaiops.guardrail.mode", guard_mode),
    SLIST("genaiops.guardrail.findings", guard_findings),
    SSTR("error.type", error_type),
};

/* The request parameters for the store's params column. */
static const attr_row param_rows[] = {
    TDBLHAS("temperature", temperature, has_temperature),
    TDBLHAS("top_p", top_p, has_top_p),
    TLLHAS("max_tokens", max_tokens, has_max_tokens),
    TLLHAS("seed", seed, has_seed),
    TDBLHAS("frequency_penalty", frequency_penalty, has_frequency_penalty),
    TDBLHAS("presence_penalty", presence_penalty, has_presence_penalty),
};

/* A JSON string from n bytes; bytes that do not make valid UTF-8 become '?'
 * (jansson refuses invalid UTF-8). NULL only on out of memory. */
static json_t *str_value(const char *s, size_t n)
{
    json_t *v = json_stringn(s, n);
    if (v)
        return v;
    char tmp[256];
    if (n > sizeof tmp)
        n = sizeof tmp;
    for (size_t i = 0; i < n; i++)
        tmp[i] = ((unsigned char)s[i] < 0x80 && s[i] != '\0') ? s[i] : '?';
    return json_stringn(tmp, n);
}

/* The next item of a comma-separated list s[0..n) from *i on, trimmed of
 * spaces: [*a, *b). Empty items are skipped. false at the end. */
static bool next_item(const char *s, size_t n, size_t *i, size_t *a, size_t *b)
{
    while (*i < n) {
        size_t j = *i;
        while (j < n && s[j] != ',')
            j++;
        *a = *i;
        *b = j;
        *i = j + 1;
        while (*a < *b && (s[*a] == ' ' || s[*a] == '\t'))
            (*a)++;
        while (*b > *a && (s[*b - 1] == ' ' || s[*b - 1] == '\t'))
            (*b)--;
        if (*b > *a)
            return true;
    }
    return false;
}

/* "stop, length" -> ["stop", "length"]. */
static json_t *list_value(const char *s, size_t n)
{
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    size_t i = 0, a, b;
    while (next_item(s, n, &i, &a, &b))
        json_array_append_new(arr, str_value(s + a, b - a));
    return arr;
}

static json_t *real_value(double d) { return isfinite(d) ? json_real(d) : NULL; }

/* The value of one row read from rec, or NULL when it is not known. */
static json_t *row_value(const attr_row *r, const void *rec)
{
    const char *base = (const char *)rec;
    const void *f = base + r->off;
    bool has = true;
    if (r->kind == F_LL_HAS || r->kind == F_DBL_HAS)
        memcpy(&has, base + r->has_off, sizeof has);
    switch (r->kind) {
    case F_STR: {
        size_t n = strnlen(f, r->size);
        return n ? str_value(f, n) : NULL;
    }
    case F_STR_LIST: {
        size_t n = strnlen(f, r->size);
        return n ? list_value(f, n) : NULL;
    }
    case F_LL_KNOWN: {
        long long v;
        memcpy(&v, f, sizeof v);
        return v >= 0 ? json_integer(v) : NULL;
    }
    case F_LL_HAS: {
        long long v;
        memcpy(&v, f, sizeof v);
        return has ? json_integer(v) : NULL;
    }
    case F_DBL_HAS: {
        double v;
        memcpy(&v, f, sizeof v);
        return has ? real_value(v) : NULL;
    }
    case F_INT_POS: {
        int v;
        memcpy(&v, f, sizeof v);
        return v > 0 ? json_integer(v) : NULL;
    }
    case F_BOOL: {
        bool v;
        memcpy(&v, f, sizeof v);
        return json_boolean(v);
    }
    case F_NS_SECONDS: {
        uint64_t v;
        memcpy(&v, f, sizeof v);
        return v ? json_real((double)v / 1e9) : NULL;
    }
    case F_NS_MICROS: {
        uint64_t v;
        memcpy(&v, f, sizeof v);
        return v ? json_integer((json_int_t)(v / 1000)) : NULL;
    }
    }
    return NULL;
}

static void fill(const attr_row *rows, size_t n, const void *rec, json_t *obj)
{
    for (size_t i = 0; i < n; i++) {
        json_t *v = row_value(&rows[i], rec);
        if (v)
            json_object_set_new(obj, rows[i].name, v);
    }
}

/* Whether span_index names a recorded span (nspans is trusted no further
 * than the array it counts). */
static bool valid_span(const trace_rec *t, int span_index)
{
    return span_index >= 0 && span_index < t->nspans && span_index < TRACE_MAX_SPANS;
}

static bool is_root(const trace_rec *t, int span_index)
{
    return span_index == 0 || (valid_span(t, span_index) && t->spans[span_index].kind == SPAN_REQUEST);
}

void trace_attrs_json(const trace_rec *t, int span_index, json_t *obj)
{
    if (!t || !obj || !json_is_object(obj))
        return;
    if (is_root(t, span_index))
        fill(root_rows, countof(root_rows), t, obj);
    else if (valid_span(t, span_index))
        fill(t->spans[span_index].kind == SPAN_GUARDRAIL ? guard_rows : attempt_rows,
             t->spans[span_index].kind == SPAN_GUARDRAIL ? countof(guard_rows) : countof(attempt_rows),
             &t->spans[span_index], obj);
}

/* ---- the same tables written straight to JSON text (the store's writer
 * renders every span of every trace; building jansson objects to dump them
 * cost it about 100,000 instructions a trace) ---- */

/* v in decimal, without printf (the writer renders every span's numbers). */
static void put_ll(buf *out, long long v)
{
    char t[24];
    size_t n = sizeof t;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do
        t[--n] = (char)('0' + u % 10);
    while ((u /= 10) > 0);
    if (v < 0)
        t[--n] = '-';
    buf_append(out, t + n, sizeof t - n);
}

/* s as a JSON string, escaped straight into out: one pass when the room
 * for the plain case is there (reserved first), a second when escapes made
 * it longer. */
static void put_str(buf *out, const char *s, size_t n)
{
    if (buf_reserve(out, n + 2) != ERR_OK)
        return;
    size_t room = out->cap - out->len - 1; /* buf keeps a byte for its NUL */
    size_t need = jscan_escape(out->p + out->len, room, s, n);
    if (need > room) {
        if (buf_reserve(out, need) != ERR_OK)
            return;
        jscan_escape(out->p + out->len, need, s, n);
    }
    out->len += need;
    out->p[out->len] = '\0';
}

static void put_real(buf *out, double d)
{
    char tmp[40];
    int n = snprintf(tmp, sizeof tmp, "%.15g", d);
    if (n <= 0 || (size_t)n >= sizeof tmp)
        return;
    buf_append(out, tmp, (size_t)n);
    if (!strpbrk(tmp, ".eE"))
        buf_append(out, ".0", 2); /* stays a real, as jansson writes it */
}

/* Appends ,"name":value (or "name":value first) when the row is known;
 * returns whether it wrote. */
static bool row_write(const attr_row *r, const void *rec, bool first, buf *out)
{
    const char *base = (const char *)rec;
    const void *f = base + r->off;
    bool has = true;
    if (r->kind == F_LL_HAS || r->kind == F_DBL_HAS)
        memcpy(&has, base + r->has_off, sizeof has);
    long long ll = 0;
    int iv = 0;
    uint64_t u = 0;
    double d;
    size_t n = 0;
    switch (r->kind) {
    case F_STR:
    case F_STR_LIST:
        n = strnlen(f, r->size);
        if (!n)
            return false;
        break;
    case F_LL_KNOWN:
    case F_LL_HAS:
        memcpy(&ll, f, sizeof ll);
        if ((r->kind == F_LL_KNOWN && ll < 0) || !has)
            return false;
        break;
    case F_DBL_HAS:
        memcpy(&d, f, sizeof d);
        if (!has || !isfinite(d))
            return false;
        break;
    case F_INT_POS:
        memcpy(&iv, f, sizeof iv);
        if (iv <= 0)
            return false;
        break;
    case F_NS_SECONDS:
    case F_NS_MICROS:
        memcpy(&u, f, sizeof u);
        if (!u)
            return false;
        break;
    case F_BOOL:
        break;
    }
    if (!first)
        buf_append(out, ",", 1);
    buf_append(out, r->key, r->keylen);
    switch (r->kind) {
    case F_STR:
        put_str(out, f, n);
        break;
    case F_STR_LIST: {
        const char *s = f;
        size_t i = 0, a, b;
        buf_append(out, "[", 1);
        for (bool any = false; next_item(s, n, &i, &a, &b); any = true) {
            if (any)
                buf_append(out, ",", 1);
            put_str(out, s + a, b - a);
        }
        buf_append(out, "]", 1);
        break;
    }
    case F_LL_KNOWN:
    case F_LL_HAS:
        put_ll(out, ll);
        break;
    case F_DBL_HAS:
        put_real(out, d);
        break;
    case F_INT_POS:
        put_ll(out, iv);
        break;
    case F_BOOL: {
        bool v;
        memcpy(&v, f, sizeof v);
        buf_append_str(out, v ? "true" : "false");
        break;
    }
    case F_NS_SECONDS:
        put_real(out, (double)u / 1e9);
        break;
    case F_NS_MICROS:
        put_ll(out, (long long)(u / 1000));
        break;
    }
    return true;
}

static void write_rows(const attr_row *rows, size_t n, const void *rec, buf *out)
{
    bool first = true;
    buf_append(out, "{", 1);
    for (size_t i = 0; i < n; i++)
        if (row_write(&rows[i], rec, first, out))
            first = false;
    buf_append(out, "}", 1);
}

void trace_attrs_write(const trace_rec *t, int span_index, buf *out)
{
    if (is_root(t, span_index))
        write_rows(root_rows, countof(root_rows), t, out);
    else if (valid_span(t, span_index))
        write_rows(t->spans[span_index].kind == SPAN_GUARDRAIL ? guard_rows : attempt_rows,
                   t->spans[span_index].kind == SPAN_GUARDRAIL ? countof(guard_rows) : countof(attempt_rows),
                   &t->spans[span_index], out);
    else
        buf_append(out, "{}", 2);
}

bool trace_params_write(const trace_rec *t, buf *out)
{
    size_t before = out->len;
    write_rows(param_rows, countof(param_rows), t, out);
    if (out->len - before == 2) { /* {} */
        out->len = before;
        if (out->p)
            out->p[before] = '\0';
        return false;
    }
    return true;
}

void trace_params_json(const trace_rec *t, json_t *obj)
{
    if (!t || !obj || !json_is_object(obj))
        return;
    fill(param_rows, countof(param_rows), t, obj);
}

void trace_span_name(const trace_rec *t, int span_index, char *out, size_t cap)
{
    if (!out || cap == 0)
        return;
    out[0] = '\0';
    if (!t)
        return;
    if (is_root(t, span_index)) {
        int on = (int)strnlen(t->operation, sizeof t->operation);
        int mn = (int)strnlen(t->request_model, sizeof t->request_model);
        if (on && mn)
            snprintf(out, cap, "%.*s %.*s", on, t->operation, mn, t->request_model);
        else if (on || mn)
            snprintf(out, cap, "%.*s", on ? on : mn, on ? t->operation : t->request_model);
        else
            snprintf(out, cap, "request");
        return;
    }
    if (!valid_span(t, span_index))
        return;
    const span_rec *s = &t->spans[span_index];
    switch (s->kind) {
    case SPAN_ATTEMPT: {
        int pn = (int)strnlen(s->provider, sizeof s->provider);
        if (pn)
            snprintf(out, cap, "attempt %.*s", pn, s->provider);
        else
            snprintf(out, cap, "attempt");
        break;
    }
    case SPAN_GUARDRAIL: { /* "guardrail POLICY/DETECTOR", without printf (one per check, every request) */
        size_t pn = strnlen(s->guard_policy, sizeof s->guard_policy);
        size_t dn = strnlen(s->guard_detector, sizeof s->guard_detector);
        if (cap < 10 + pn + 1 + dn + 1) {
            snprintf(out, cap, "guardrail %.*s/%.*s", (int)pn, s->guard_policy, (int)dn, s->guard_detector);
            break;
        }
        memcpy(out, "guardrail ", 10);
        memcpy(out + 10, s->guard_policy, pn);
        out[10 + pn] = '/';
        memcpy(out + 11 + pn, s->guard_detector, dn);
        out[11 + pn + dn] = '\0';
        break;
    }
    case SPAN_PROMPT: snprintf(out, cap, "prompt"); break;
    case SPAN_REQUEST: snprintf(out, cap, "request"); break;
    }
}
