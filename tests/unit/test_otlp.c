/*
 * test_otlp.c - the OTel attribute table (attrs.c) and the OTLP/HTTP
 * exporter (otlp.c): attribute names and types, the OTLP JSON encoding
 * against a golden file, and the exporter thread against a tiny HTTP
 * receiver running in a thread of this process.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include "observe/attrs.h"
#include "test.h"

/* A filled-in record: a chat request with one failed and one good attempt. */
static trace_rec *sample_trace(void)
{
    trace_rec *t = trace_new(0);
    for (int i = 0; i < 16; i++)
        t->trace_id[i] = (uint8_t)(0x10 + i);
    snprintf(t->request_id, sizeof t->request_id, "req-1");
    t->start_ns = 1700000000000000000ull;
    t->end_ns = 1700000000250000000ull;
    snprintf(t->operation, sizeof t->operation, "chat");
    snprintf(t->endpoint, sizeof t->endpoint, "/v1/chat/completions");
    snprintf(t->provider, sizeof t->provider, "openai");
    snprintf(t->provider_type, sizeof t->provider_type, "openai");
    snprintf(t->request_model, sizeof t->request_model, "gpt-4o");
    snprintf(t->response_model, sizeof t->response_model, "gpt-4o-2024-08-06");
    snprintf(t->response_id, sizeof t->response_id, "chatcmpl-1");
    snprintf(t->finish_reasons, sizeof t->finish_reasons, "stop, length");
    snprintf(t->deployment, sizeof t->deployment, "prod");
    snprintf(t->api_key, sizeof t->api_key, "team-a");
    t->status = 200;
    t->stream = true;
    t->has_temperature = true;
    t->temperature = 0.5;
    t->has_max_tokens = true;
    t->max_tokens = 100;
    t->input_tokens = 12;
    t->output_tokens = 34;
    t->cache_read_tokens = 4;
    t->cost_usd = 0.00125;
    t->cost_known = true;
    t->ttft_ns = 120000000;
    t->overhead_ns = 45000;
    t->attempts = 2;
    span_rec *root = trace_add_span(t, SPAN_REQUEST, t->start_ns);
    root->end_ns = t->end_ns;
    for (int i = 0; i < 8; i++)
        root->span_id[i] = (uint8_t)(0xa0 + i);
    span_rec *a = trace_add_span(t, SPAN_ATTEMPT, t->start_ns + 1000);
    for (int i = 0; i < 8; i++)
        a->span_id[i] = (uint8_t)(0xb0 + i);
    memcpy(a->parent_id, root->span_id, 8);
    a->end_ns = t->start_ns + 100000000;
    a->http_status = 503;
    snprintf(a->provider, sizeof a->provider, "openai");
    snprintf(a->model, sizeof a->model, "gpt-4o");
    snprintf(a->server_address, sizeof a->server_address, "api.openai.com");
    a->server_port = 443;
    snprintf(a->error_type, sizeof a->error_type, "503");
    span_rec *b = trace_add_span(t, SPAN_ATTEMPT, t->start_ns + 100001000);
    for (int i = 0; i < 8; i++)
        b->span_id[i] = (uint8_t)(0xc0 + i);
    memcpy(b->parent_id, root->span_id, 8);
    b->end_ns = t->end_ns - 1000;
    b->http_status = 200;
    snprintf(b->provider, sizeof b->provider, "openai");
    snprintf(b->model, sizeof b->model, "gpt-4o");
    snprintf(b->server_address, sizeof b->server_address, "api.openai.com");
    b->server_port = 443;
    return t;
}

TEST(otlp_attrs_root)
{
    trace_rec *t = sample_trace();
    json_t *o = json_object();
    trace_attrs_json(t, 0, o);
    static const struct { const char *key, *val; } strs[] = {
        { "gen_ai.operation.name", "chat" },
        { "gen_ai.provider.name", "openai" },
        { "gen_ai.request.model", "gpt-4o" },
        { "gen_ai.response.model", "gpt-4o-2024-08-06" },
        { "gen_ai.response.id", "chatcmpl-1" },
        { "genaiops.request_id", "req-1" },
        { "genaiops.deployment", "prod" },
        { "genaiops.key", "team-a" },
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        CHECK_STR(json_string_value(json_object_get(o, strs[i].key)), strs[i].val);
    static const struct { const char *key; long long val; } ints[] = {
        { "gen_ai.request.max_tokens", 100 },
        { "gen_ai.usage.input_tokens", 12 },
        { "gen_ai.usage.output_tokens", 34 },
        { "gen_ai.usage.cache_read.input_tokens", 4 },
        { "http.response.status_code", 200 },
        { "genaiops.overhead_us", 45 },
        { "genaiops.attempts", 2 },
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        json_t *v = json_object_get(o, ints[i].key);
        CHECK(json_is_integer(v));
        CHECK_INT(json_integer_value(v), ints[i].val);
    }
    json_t *temp = json_object_get(o, "gen_ai.request.temperature");
    CHECK(json_is_real(temp) && json_real_value(temp) == 0.5);
    json_t *ttft = json_object_get(o, "gen_ai.response.time_to_first_chunk");
    CHECK(json_is_real(ttft) && fabs(json_real_value(ttft) - 0.12) < 1e-9);
    json_t *cost = json_object_get(o, "genaiops.cost_usd");
    CHECK(json_is_real(cost) && json_real_value(cost) == 0.00125);
    CHECK(json_is_true(json_object_get(o, "gen_ai.request.stream")));
    json_t *fr = json_object_get(o, "gen_ai.response.finish_reasons");
    CHECK(json_is_array(fr) && json_array_size(fr) == 2);
    CHECK_STR(json_string_value(json_array_get(fr, 0)), "stop");
    CHECK_STR(json_string_value(json_array_get(fr, 1)), "length");
    /* unknown or unset: left out */
    static const char *absent[] = {
        "gen_ai.request.top_p", "gen_ai.request.seed", "gen_ai.request.frequency_penalty",
        "gen_ai.request.presence_penalty", "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.reasoning.output_tokens", "error.type", "gen_ai.prompt.name",
        "genaiops.prompt.version", "server.address",
    };
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        if (json_object_get(o, absent[i]))
            test_fail(__FILE__, __LINE__, "%s should be absent", absent[i]);
    json_decref(o);
    trace_free(t);
}

TEST(otlp_attrs_attempt)
{
    trace_rec *t = sample_trace();
    json_t *o = json_object();
    trace_attrs_json(t, 1, o);
    CHECK_INT(json_object_size(o), 6);
    CHECK_STR(json_string_value(json_object_get(o, "gen_ai.provider.name")), "openai");
    CHECK_STR(json_string_value(json_object_get(o, "gen_ai.request.model")), "gpt-4o");
    CHECK_STR(json_string_value(json_object_get(o, "server.address")), "api.openai.com");
    CHECK_INT(json_integer_value(json_object_get(o, "server.port")), 443);
    CHECK_INT(json_integer_value(json_object_get(o, "http.response.status_code")), 503);
    CHECK_STR(json_string_value(json_object_get(o, "error.type")), "503");
    json_object_clear(o);
    trace_attrs_json(t, 2, o);
    CHECK_INT(json_object_size(o), 5);
    CHECK(!json_object_get(o, "error.type"));
    /* out of range: nothing, no crash */
    json_object_clear(o);
    trace_attrs_json(t, 3, o);
    trace_attrs_json(t, -1, o);
    trace_attrs_json(t, 1000, o);
    CHECK_INT(json_object_size(o), 0);
    t->nspans = 9999; /* hostile count */
    trace_attrs_json(t, 500, o);
    CHECK_INT(json_object_size(o), 0);
    trace_attrs_json(NULL, 0, o);
    trace_attrs_json(t, 0, NULL);
    json_decref(o);
    trace_free(t);
}

TEST(otlp_attrs_empty_and_hostile)
{
    trace_rec *t = trace_new(0);
    json_t *o = json_object();
    trace_attrs_json(t, 0, o);
    /* a fresh record knows only the stream flag */
    CHECK_INT(json_object_size(o), 1);
    CHECK(json_is_false(json_object_get(o, "gen_ai.request.stream")));
    /* unterminated arrays, invalid UTF-8, odd lists */
    memset(t->request_model, 'm', sizeof t->request_model);
    memcpy(t->operation, "ch\xff\xfe", 4);
    snprintf(t->finish_reasons, sizeof t->finish_reasons, " ,,stop,, ");
    t->has_temperature = true;
    t->temperature = NAN;
    t->has_top_p = true;
    t->top_p = INFINITY;
    json_object_clear(o);
    trace_attrs_json(t, 0, o);
    CHECK_INT(strlen(json_string_value(json_object_get(o, "gen_ai.request.model"))), 128);
    CHECK_STR(json_string_value(json_object_get(o, "gen_ai.operation.name")), "ch??");
    json_t *fr = json_object_get(o, "gen_ai.response.finish_reasons");
    CHECK(json_array_size(fr) == 1);
    CHECK_STR(json_string_value(json_array_get(fr, 0)), "stop");
    CHECK(!json_object_get(o, "gen_ai.request.temperature"));
    CHECK(!json_object_get(o, "gen_ai.request.top_p"));
    char *s = json_dumps(o, 0);
    CHECK(s != NULL);
    free(s);
    json_decref(o);
    trace_free(t);
}

TEST(otlp_params_json)
{
    trace_rec *t = sample_trace();
    t->has_seed = true;
    t->seed = -7;
    t->has_presence_penalty = true;
    t->presence_penalty = -0.5;
    json_t *o = json_object();
    trace_params_json(t, o);
    char *s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    CHECK_STR(s, "{\"max_tokens\":100,\"presence_penalty\":-0.5,\"seed\":-7,\"temperature\":0.5}");
    free(s);
    json_decref(o);
    trace_free(t);
}

TEST(otlp_span_names)
{
    trace_rec *t = sample_trace();
    char name[64];
    trace_span_name(t, 0, name, sizeof name);
    CHECK_STR(name, "chat gpt-4o");
    trace_span_name(t, 1, name, sizeof name);
    CHECK_STR(name, "attempt openai");
    trace_span_name(t, 7, name, sizeof name);
    CHECK_STR(name, "");
    trace_span_name(t, 0, name, 5);
    CHECK_STR(name, "chat");
    t->request_model[0] = '\0';
    trace_span_name(t, 0, name, sizeof name);
    CHECK_STR(name, "chat");
    t->operation[0] = '\0';
    trace_span_name(t, 0, name, sizeof name);
    CHECK_STR(name, "request");
    trace_free(t);
}

/* ---- the OTLP JSON encoding ---- */

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "observe/otlp.h"

static bool is_hex(const char *s, size_t n)
{
    if (!s || strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return false;
    return true;
}

static bool is_digits(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* An AnyValue has exactly one of the value fields, of the right JSON type. */
static bool valid_any(json_t *v)
{
    if (!json_is_object(v) || json_object_size(v) != 1)
        return false;
    json_t *x;
    if ((x = json_object_get(v, "stringValue")))
        return json_is_string(x);
    if ((x = json_object_get(v, "intValue"))) {
        const char *s = json_string_value(x);
        return s && is_digits(s[0] == '-' ? s + 1 : s);
    }
    if ((x = json_object_get(v, "doubleValue")))
        return json_is_number(x);
    if ((x = json_object_get(v, "boolValue")))
        return json_is_boolean(x);
    if ((x = json_object_get(v, "arrayValue"))) {
        json_t *vals = json_object_get(x, "values");
        if (!json_is_array(vals))
            return false;
        size_t i;
        json_t *item;
        json_array_foreach(vals, i, item) if (!valid_any(item)) return false;
        return true;
    }
    return false;
}

/* Checks an ExportTraceServiceRequest against the OTLP JSON rules the
 * exporter promises; returns the number of spans, -1 when something is
 * wrong (with a test failure saying what). */
static int validate_traces(json_t *root)
{
#define BAD(...) do { test_fail(__FILE__, __LINE__, __VA_ARGS__); return -1; } while (0)
    json_t *rs = json_object_get(root, "resourceSpans");
    if (!json_is_array(rs) || json_array_size(rs) != 1)
        BAD("resourceSpans");
    json_t *r0 = json_array_get(rs, 0);
    json_t *rattrs = json_object_get(json_object_get(r0, "resource"), "attributes");
    if (!json_is_array(rattrs))
        BAD("resource.attributes");
    bool has_name = false;
    size_t i;
    json_t *kv;
    json_array_foreach(rattrs, i, kv) {
        if (!strcmp(json_string_value(json_object_get(kv, "key")), "service.name"))
            has_name = !strcmp(json_string_value(json_object_get(json_object_get(kv, "value"), "stringValue")), "genaiops");
    }
    if (!has_name)
        BAD("service.name");
    json_t *ss = json_object_get(r0, "scopeSpans");
    if (!json_is_array(ss) || json_array_size(ss) != 1)
        BAD("scopeSpans");
    json_t *s0 = json_array_get(ss, 0);
    if (strcmp(json_string_value(json_object_get(json_object_get(s0, "scope"), "name")) ?: "", "genaiops"))
        BAD("scope.name");
    json_t *spans = json_object_get(s0, "spans");
    if (!json_is_array(spans))
        BAD("spans");
    json_t *sp;
    json_array_foreach(spans, i, sp) {
        if (!is_hex(json_string_value(json_object_get(sp, "traceId")), 32))
            BAD("span %zu traceId", i);
        if (!is_hex(json_string_value(json_object_get(sp, "spanId")), 16))
            BAD("span %zu spanId", i);
        json_t *parent = json_object_get(sp, "parentSpanId");
        if (parent && !is_hex(json_string_value(parent), 16))
            BAD("span %zu parentSpanId", i);
        if (!json_is_string(json_object_get(sp, "name")))
            BAD("span %zu name", i);
        json_int_t kind = json_integer_value(json_object_get(sp, "kind"));
        if (kind < 1 || kind > 5)
            BAD("span %zu kind", i);
        const char *st = json_string_value(json_object_get(sp, "startTimeUnixNano"));
        const char *en = json_string_value(json_object_get(sp, "endTimeUnixNano"));
        if (!is_digits(st) || !is_digits(en) || strtoull(st, NULL, 10) > strtoull(en, NULL, 10))
            BAD("span %zu times", i);
        json_t *attrs = json_object_get(sp, "attributes");
        if (!json_is_array(attrs))
            BAD("span %zu attributes", i);
        size_t k;
        json_array_foreach(attrs, k, kv) {
            if (!json_is_string(json_object_get(kv, "key")) || !valid_any(json_object_get(kv, "value")))
                BAD("span %zu attribute %zu", i, k);
        }
        json_t *status = json_object_get(sp, "status");
        if (status && (json_integer_value(json_object_get(status, "code")) != 2 ||
                       !json_is_string(json_object_get(status, "message"))))
            BAD("span %zu status", i);
    }
    return (int)json_array_size(spans);
#undef BAD
}

/* The value of attribute key in a span's list, or NULL. */
static json_t *span_attr(json_t *span, const char *key)
{
    size_t i;
    json_t *kv;
    json_array_foreach(json_object_get(span, "attributes"), i, kv)
        if (!strcmp(json_string_value(json_object_get(kv, "key")), key))
            return json_object_get(kv, "value");
    return NULL;
}

static json_t *encode(trace_rec **recs, size_t n)
{
    buf b;
    buf_init(&b, 1 << 20);
    CHECK_INT(otlp_encode_traces(recs, n, "9.9.9", &b), ERR_OK);
    json_error_t jerr;
    json_t *j = json_loadb(b.p, b.len, 0, &jerr);
    CHECK(j != NULL);
    buf_free(&b);
    return j;
}

TEST(otlp_encode_golden)
{
    trace_rec *t = sample_trace();
    snprintf(t->error_type, sizeof t->error_type, "upstream_error");
    t->status = 502;
    t->input_messages = "[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"hi\"}]}]";
    json_t *got = encode(&t, 1);
    CHECK_INT(validate_traces(got), 3);
    char *gold = test_read_data("otlp/traces.json", NULL);
    json_error_t jerr;
    json_t *want = gold ? json_loads(gold, 0, &jerr) : NULL;
    CHECK(want != NULL);
    if (want && !json_equal(got, want)) {
        char *s = json_dumps(got, JSON_INDENT(2));
        test_fail(__FILE__, __LINE__, "encoding differs from tests/data/otlp/traces.json; got:\n%s", s);
        free(s);
    }
    json_decref(want);
    free(gold);
    json_decref(got);
    trace_free(t);
}

TEST(otlp_encode_shapes)
{
    trace_rec *t = sample_trace();
    json_t *j = encode(&t, 1);
    json_t *spans = json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(j,
        "resourceSpans"), 0), "scopeSpans"), 0), "spans");
    json_t *root = json_array_get(spans, 0), *a1 = json_array_get(spans, 1), *a2 = json_array_get(spans, 2);
    CHECK_STR(json_string_value(json_object_get(root, "traceId")), "101112131415161718191a1b1c1d1e1f");
    CHECK_STR(json_string_value(json_object_get(root, "spanId")), "a0a1a2a3a4a5a6a7");
    CHECK(json_object_get(root, "parentSpanId") == NULL);
    CHECK_INT(json_integer_value(json_object_get(root, "kind")), 2);
    CHECK_INT(json_integer_value(json_object_get(a1, "kind")), 3);
    CHECK_STR(json_string_value(json_object_get(a1, "parentSpanId")), "a0a1a2a3a4a5a6a7");
    CHECK_STR(json_string_value(json_object_get(root, "name")), "chat gpt-4o");
    CHECK_STR(json_string_value(json_object_get(a1, "name")), "attempt openai");
    CHECK_STR(json_string_value(json_object_get(root, "startTimeUnixNano")), "1700000000000000000");
    /* success: no status on the root or the good attempt; the 503 attempt is an error */
    CHECK(json_object_get(root, "status") == NULL);
    CHECK(json_object_get(a2, "status") == NULL);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(a1, "status"), "code")), 2);
    CHECK_STR(json_string_value(json_object_get(json_object_get(a1, "status"), "message")), "503");
    /* value shapes */
    CHECK_STR(json_string_value(json_object_get(span_attr(root, "gen_ai.usage.input_tokens"), "intValue")), "12");
    CHECK(json_is_real(json_object_get(span_attr(root, "gen_ai.request.temperature"), "doubleValue")));
    CHECK(json_is_true(json_object_get(span_attr(root, "gen_ai.request.stream"), "boolValue")));
    json_t *fr = json_object_get(json_object_get(span_attr(root, "gen_ai.response.finish_reasons"), "arrayValue"), "values");
    CHECK_INT(json_array_size(fr), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(fr, 0), "stringValue")), "stop");
    CHECK_STR(json_string_value(json_object_get(span_attr(a1, "server.port"), "intValue")), "443");
    json_decref(j);
    trace_free(t);
}

TEST(otlp_encode_edge_cases)
{
    /* no spans: one made-up root from the trace; a 5xx without error.type is an error */
    trace_rec *t = trace_new(0);
    t->start_ns = 2000;
    t->end_ns = 1000; /* end before start is clamped */
    t->status = 500;
    trace_rec *u = sample_trace();
    u->nspans = 1000; /* hostile count: capped at TRACE_MAX_SPANS */
    trace_rec *recs[] = { t, NULL, u };
    json_t *j = encode(recs, 3);
    CHECK_INT(validate_traces(j), 1 + TRACE_MAX_SPANS);
    json_t *spans = json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(j,
        "resourceSpans"), 0), "scopeSpans"), 0), "spans");
    json_t *s0 = json_array_get(spans, 0);
    CHECK_STR(json_string_value(json_object_get(s0, "name")), "request");
    CHECK_STR(json_string_value(json_object_get(s0, "endTimeUnixNano")), "2000");
    CHECK_STR(json_string_value(json_object_get(json_object_get(s0, "status"), "message")), "HTTP 500");
    json_decref(j);
    /* empty batch is still a valid request */
    j = encode(NULL, 0);
    CHECK_INT(validate_traces(j), 0);
    json_decref(j);
    /* a body over the buffer's maximum is refused and leaves the buffer alone */
    buf b;
    buf_init(&b, 100);
    buf_append_str(&b, "keep");
    CHECK_INT(otlp_encode_traces(&u, 1, NULL, &b), ERR_TOOBIG);
    CHECK_MEM(b.p, b.len, "keep");
    buf_free(&b);
    CHECK_INT(otlp_encode_traces(NULL, 2, NULL, NULL), ERR_INVAL);
    trace_free(t);
    trace_free(u);
}

/* ---- the exporter against a receiver in a thread ---- */

#define RX_MAX 64

typedef struct rx_req {
    char path[64];
    char *body;          /* NUL-terminated */
    size_t len;
    char *head;          /* request line and headers */
} rx_req;

/* A tiny HTTP/1.1 server: one request per connection, answered with the
 * next status from `statuses` (200 once they run out; 503s carry
 * "Retry-After: 0"). */
typedef struct receiver {
    int fd, port;
    pthread_t th;
    atomic_bool stop;
    pthread_mutex_t mu;
    int statuses[8];
    int nstatuses;
    rx_req reqs[RX_MAX];
    int nreqs;
} receiver;

static bool read_request(int c, rx_req *r)
{
    size_t cap = 1 << 20, len = 0;
    char *p = malloc(cap + 1);
    char *hend = NULL;
    size_t need = 0;
    for (;;) {
        if (len == cap)
            break;
        ssize_t n = read(c, p + len, cap - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        p[len] = '\0';
        if (!hend && (hend = strstr(p, "\r\n\r\n"))) {
            const char *cl = strcasestr(p, "\r\ncontent-length:");
            need = (size_t)(hend - p) + 4 + (cl ? strtoul(cl + 17, NULL, 10) : 0);
        }
        if (hend && len >= need)
            break;
    }
    if (!hend || len < need) {
        free(p);
        return false;
    }
    size_t hlen = (size_t)(hend - p);
    r->head = strndup(p, hlen);
    r->len = need - hlen - 4;
    r->body = strndup(hend + 4, r->len);
    const char *sp = strchr(p, ' ');
    const char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
    if (sp && sp2 && (size_t)(sp2 - sp - 1) < sizeof r->path)
        snprintf(r->path, sizeof r->path, "%.*s", (int)(sp2 - sp - 1), sp + 1);
    free(p);
    return true;
}

static void *rx_main(void *arg)
{
    receiver *rx = arg;
    while (!atomic_load(&rx->stop)) {
        struct pollfd pfd = { rx->fd, POLLIN, 0 };
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        int c = accept(rx->fd, NULL, NULL);
        if (c < 0)
            continue;
        rx_req r = { 0 };
        if (read_request(c, &r)) {
            pthread_mutex_lock(&rx->mu);
            int idx = rx->nreqs;
            int status = idx < rx->nstatuses ? rx->statuses[idx] : 200;
            if (rx->nreqs < RX_MAX)
                rx->reqs[rx->nreqs++] = r;
            else {
                free(r.body);
                free(r.head);
            }
            pthread_mutex_unlock(&rx->mu);
            char resp[256];
            int n = snprintf(resp, sizeof resp,
                             "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                             "Connection: close\r\n%s\r\n{}",
                             status, status == 503 ? "Retry-After: 0\r\n" : "");
            if (write(c, resp, (size_t)n) < 0) {
                /* the test will notice the missing export */
            }
        }
        close(c);
    }
    return NULL;
}

static receiver *rx_start(const int *statuses, int n)
{
    receiver *rx = calloc(1, sizeof *rx);
    pthread_mutex_init(&rx->mu, NULL);
    for (int i = 0; i < n && i < 8; i++)
        rx->statuses[rx->nstatuses++] = statuses[i];
    rx->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    CHECK(bind(rx->fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(rx->fd, 16) == 0);
    getsockname(rx->fd, (struct sockaddr *)&a, &al);
    rx->port = ntohs(a.sin_port);
    pthread_create(&rx->th, NULL, rx_main, rx);
    return rx;
}

static void rx_stop(receiver *rx)
{
    atomic_store(&rx->stop, true);
    pthread_join(rx->th, NULL);
    close(rx->fd);
    for (int i = 0; i < rx->nreqs; i++) {
        free(rx->reqs[i].body);
        free(rx->reqs[i].head);
    }
    pthread_mutex_destroy(&rx->mu);
    free(rx);
}

static int rx_count(receiver *rx)
{
    pthread_mutex_lock(&rx->mu);
    int n = rx->nreqs;
    pthread_mutex_unlock(&rx->mu);
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Waits up to ms for the receiver to have n requests. */
static bool rx_wait(receiver *rx, int n, long ms)
{
    for (long t = 0; t < ms; t += 10) {
        if (rx_count(rx) >= n)
            return true;
        sleep_ms(10);
    }
    return rx_count(rx) >= n;
}

static int spans_in(const rx_req *r)
{
    json_error_t jerr;
    json_t *j = json_loadb(r->body, r->len, 0, &jerr);
    int n = j ? validate_traces(j) : -1;
    json_decref(j);
    return n;
}

static cfg_otlp test_cfg(char *url, size_t cap, int port)
{
    snprintf(url, cap, "http://127.0.0.1:%d/", port);
    return (cfg_otlp){ .endpoint = url, .timeout_ms = 2000, .batch_size = 6,
                       .interval_ms = 60000, .queue_size = 100 };
}

/* A record with a root and two attempts (3 spans). */
static trace_rec *three_spans(void)
{
    trace_rec *t = sample_trace();
    return t;
}

TEST(otlp_exporter_batches)
{
    receiver *rx = rx_start(NULL, 0);
    char url[64], err[128];
    cfg_header hdr = { "authorization", "Bearer s3cret" };
    cfg_otlp o = test_cfg(url, sizeof url, rx->port);
    o.headers = &hdr;
    o.nheaders = 1;
    otlp_exporter *e = otlp_exporter_start(&o, "1.2.3", err, sizeof err);
    CHECK(e != NULL);
    /* 4 traces of 3 spans with batch_size 6: two full batches, long before the interval */
    for (int i = 0; i < 4; i++)
        CHECK(otlp_exporter_submit(e, three_spans()));
    CHECK(rx_wait(rx, 2, 3000));
    for (int i = 0; i < 50 && otlp_exporter_exported(e) < 4; i++)
        sleep_ms(10);
    CHECK_INT(otlp_exporter_exported(e), 4);
    CHECK_INT(otlp_exporter_dropped(e), 0);
    otlp_exporter_stop(e);
    CHECK_INT(rx_count(rx), 2);
    for (int i = 0; i < rx_count(rx); i++) {
        CHECK_STR(rx->reqs[i].path, "/v1/traces");
        CHECK_INT(spans_in(&rx->reqs[i]), 6);
        CHECK(strcasestr(rx->reqs[i].head, "\r\ncontent-type: application/json") != NULL);
        CHECK(strcasestr(rx->reqs[i].head, "\r\nauthorization: Bearer s3cret") != NULL);
        CHECK(strstr(rx->reqs[i].body, "\"1.2.3\"") != NULL);
    }
    rx_stop(rx);
}

TEST(otlp_exporter_interval)
{
    receiver *rx = rx_start(NULL, 0);
    char url[64], err[128];
    cfg_otlp o = test_cfg(url, sizeof url, rx->port);
    o.batch_size = 512;
    o.interval_ms = 100;
    otlp_exporter *e = otlp_exporter_start(&o, NULL, err, sizeof err);
    CHECK(otlp_exporter_submit(e, three_spans()));
    CHECK(rx_wait(rx, 1, 2000));
    otlp_exporter_stop(e);
    CHECK_INT(rx_count(rx), 1);
    CHECK_INT(spans_in(&rx->reqs[0]), 3);
    rx_stop(rx);
}

TEST(otlp_exporter_retries_503)
{
    static const int st[] = { 503, 503 };
    receiver *rx = rx_start(st, 2);
    char url[64], err[128];
    cfg_otlp o = test_cfg(url, sizeof url, rx->port);
    o.batch_size = 3;
    otlp_exporter *e = otlp_exporter_start(&o, NULL, err, sizeof err);
    otlp_exporter_set_retry(e, 10, 5);
    CHECK(otlp_exporter_submit(e, three_spans()));
    CHECK(rx_wait(rx, 3, 3000));
    for (int i = 0; i < 100 && otlp_exporter_exported(e) < 1; i++)
        sleep_ms(10);
    CHECK_INT(otlp_exporter_exported(e), 1);
    CHECK_INT(otlp_exporter_dropped(e), 0);
    otlp_exporter_stop(e);
    CHECK_INT(rx_count(rx), 3);
    CHECK_STR(rx->reqs[0].body, rx->reqs[2].body); /* the same batch, resent */
    rx_stop(rx);
}

TEST(otlp_exporter_gives_up_and_refuses)
{
    /* a 400 is not retried: the batch is dropped at once */
    static const int st[] = { 400 };
    receiver *rx = rx_start(st, 1);
    char url[64], err[128];
    cfg_otlp o = test_cfg(url, sizeof url, rx->port);
    o.batch_size = 3;
    otlp_exporter *e = otlp_exporter_start(&o, NULL, err, sizeof err);
    otlp_exporter_set_retry(e, 10, 5);
    CHECK(otlp_exporter_submit(e, three_spans()));
    for (int i = 0; i < 200 && otlp_exporter_dropped(e) < 1; i++)
        sleep_ms(10);
    CHECK_INT(otlp_exporter_dropped(e), 1);
    CHECK_INT(rx_count(rx), 1);
    otlp_exporter_stop(e);
    rx_stop(rx);
}

TEST(otlp_exporter_receiver_down)
{
    /* a port nobody listens on: 5 connection failures, then a counted drop */
    receiver *rx = rx_start(NULL, 0);
    int port = rx->port;
    rx_stop(rx);
    char url[64], err[128];
    cfg_otlp o = test_cfg(url, sizeof url, port);
    o.batch_size = 3;
    otlp_exporter *e = otlp_exporter_start(&o, NULL, err, sizeof err);
    otlp_exporter_set_retry(e, 5, 5);
    CHECK(otlp_exporter_submit(e, three_spans()));
    for (int i = 0; i < 300 && otlp_exporter_dropped(e) < 1; i++)
        sleep_ms(10);
    CHECK_INT(otlp_exporter_dropped(e), 1);
    CHECK_INT(otlp_exporter_exported(e), 0);
    otlp_exporter_stop(e);
}

TEST(otlp_exporter_queue_full)
{
    /* receiver down and long backoff: the thread holds at most one batch,
     * the queue 2 traces; everything beyond is refused and counted */
    receiver *rx = rx_start(NULL, 0);
    int port = rx->port;
    rx_stop(rx);
    char url[64], err[128];
    cfg_otlp o = test_cfg(url, sizeof url, port);
    o.queue_size = 2;
    o.batch_size = 3;
    o.timeout_ms = 200;
    otlp_exporter *e = otlp_exporter_start(&o, NULL, err, sizeof err);
    otlp_exporter_set_retry(e, 5000, 5);
    int refused = 0;
    for (int i = 0; i < 10; i++)
        refused += !otlp_exporter_submit(e, three_spans());
    CHECK(refused >= 7);
    CHECK(otlp_exporter_dropped(e) >= 7);
    /* stop is bounded by timeout_ms even mid-backoff; all 10 end up dropped */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    otlp_exporter_stop(e);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    CHECK(ms < 1500);
}

TEST(otlp_exporter_flush_on_stop)
{
    receiver *rx = rx_start(NULL, 0);
    char url[64], err[128];
    cfg_otlp o = test_cfg(url, sizeof url, rx->port);
    o.batch_size = 512; /* nothing would go before the 60 s interval */
    otlp_exporter *e = otlp_exporter_start(&o, NULL, err, sizeof err);
    for (int i = 0; i < 3; i++)
        CHECK(otlp_exporter_submit(e, three_spans()));
    sleep_ms(50);
    CHECK_INT(rx_count(rx), 0);
    otlp_exporter_stop(e);
    CHECK_INT(rx_count(rx), 1);
    CHECK_INT(spans_in(&rx->reqs[0]), 9);
    rx_stop(rx);
}

static err_code fake_metrics(buf *out, const char *ver)
{
    return buf_printf(out, "{\"resourceMetrics\":[],\"v\":\"%s\"}", ver);
}

TEST(otlp_exporter_metrics)
{
    receiver *rx = rx_start(NULL, 0);
    char url[64], err[128];
    cfg_otlp o = test_cfg(url, sizeof url, rx->port);
    o.interval_ms = 50;
    o.metrics = true;
    otlp_exporter *e = otlp_exporter_start(&o, "7.7", err, sizeof err);
    otlp_exporter_set_metrics(e, fake_metrics);
    CHECK(rx_wait(rx, 2, 3000));
    otlp_exporter_stop(e);
    CHECK(rx_count(rx) >= 2);
    for (int i = 0; i < rx_count(rx); i++) {
        CHECK_STR(rx->reqs[i].path, "/v1/metrics");
        CHECK_STR(rx->reqs[i].body, "{\"resourceMetrics\":[],\"v\":\"7.7\"}");
    }
    rx_stop(rx);
}

TEST(otlp_exporter_bad_config)
{
    char err[128];
    static const char *bad[] = { NULL, "", "ftp://x", "localhost:4318", "http://a b", "http://x\r\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg_otlp o = { .endpoint = bad[i] };
        err[0] = '\0';
        CHECK(otlp_exporter_start(&o, NULL, err, sizeof err) == NULL);
        CHECK(strstr(err, "otlp:") == err);
    }
    cfg_header h = { "bad\r\nname", "v" };
    cfg_otlp o = { .endpoint = "http://127.0.0.1:1", .headers = &h, .nheaders = 1 };
    CHECK(otlp_exporter_start(&o, NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "invalid header") != NULL);
    CHECK(otlp_exporter_start(NULL, NULL, NULL, 0) == NULL);
    /* NULL exporter: submit frees and refuses, the rest are no-ops */
    CHECK(!otlp_exporter_submit(NULL, trace_new(0)));
    CHECK(!otlp_exporter_submit(NULL, NULL));
    otlp_exporter_stop(NULL);
    CHECK_INT(otlp_exporter_dropped(NULL), 0);
}

TEST(otlp_exporter_url_forms)
{
    /* ".../v1/traces" given as the endpoint is not doubled */
    receiver *rx = rx_start(NULL, 0);
    char url[64], err[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", rx->port);
    cfg_otlp o = { .endpoint = url, .batch_size = 3, .interval_ms = 60000 };
    otlp_exporter *e = otlp_exporter_start(&o, NULL, err, sizeof err);
    CHECK(otlp_exporter_submit(e, three_spans()));
    CHECK(rx_wait(rx, 1, 2000));
    otlp_exporter_stop(e);
    CHECK_STR(rx->reqs[0].path, "/v1/traces");
    rx_stop(rx);
}

static atomic_int slow_inside, slow_calls;

static err_code slow_metrics(buf *out, const char *ver)
{
    atomic_store(&slow_inside, 1);
    atomic_fetch_add(&slow_calls, 1);
    sleep_ms(150);
    atomic_store(&slow_inside, 0);
    return buf_append_str(out, "{\"resourceMetrics\":[]}");
}

TEST(otlp_exporter_metrics_off_waits_for_render)
{
    /* turning metrics off while a render runs waits for it, and no render follows */
    receiver *rx = rx_start(NULL, 0);
    char url[64], err[128];
    cfg_otlp o = test_cfg(url, sizeof url, rx->port);
    o.interval_ms = 20;
    o.metrics = true;
    otlp_exporter *e = otlp_exporter_start(&o, NULL, err, sizeof err);
    otlp_exporter_set_metrics(e, slow_metrics);
    for (int i = 0; i < 200 && !atomic_load(&slow_inside); i++)
        sleep_ms(5);
    CHECK(atomic_load(&slow_inside) == 1);
    otlp_exporter_set_metrics(e, NULL);
    CHECK(atomic_load(&slow_inside) == 0);
    int calls = atomic_load(&slow_calls);
    sleep_ms(100);
    CHECK_INT(atomic_load(&slow_calls), calls);
    otlp_exporter_stop(e);
    rx_stop(rx);
}
