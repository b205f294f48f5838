/*
 * otlp.c - the OTLP/HTTP JSON exporter (see otlp.h).
 *
 * How it works: producers push trace_rec pointers into a ring of queue_size
 * slots under a mutex (a push is the whole critical section; a full ring
 * frees the record and counts a drop). The exporter thread waits on a
 * condition variable (CLOCK_MONOTONIC) until batch_size spans are queued,
 * interval_ms has passed, or stop is asked; it then takes whole traces off
 * the ring up to batch_size spans, encodes them (otlp_encode_traces: the
 * attributes come from the shared table in attrs.c, converted to OTLP
 * AnyValues), and POSTs the body with one reused libcurl easy handle.
 * Failures that can pass (connection errors, 429, 502, 503, 504) are retried
 * with doubling delays or the server's Retry-After; other statuses and the
 * last failed try drop the batch. Waits between tries wake up on stop, and
 * once stopping every wait and request is cut to the stop deadline
 * (timeout_ms after stop was called), so stop returns in bounded time.
 * Metrics, when asked for, are rendered by a callback and POSTed every
 * interval_ms (not at stop: what the callback reads may be gone by then).
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "core/log.h"
#include "http/upstream.h"
#include "observe/attrs.h"
#include "observe/otlp.h"

#define DEF_BATCH 512
#define DEF_INTERVAL_MS 2000
#define DEF_QUEUE 10000
#define DEF_TIMEOUT_MS 10000
#define DEF_BACKOFF_MS 250
#define DEF_TRIES 5
#define MAX_BACKOFF_MS 5000
#define MAX_RETRY_AFTER_MS 60000
#define MAX_BODY (64u << 20)     /* one request body; a batch that would pass it is dropped */
#define MAX_METRICS_BODY (8u << 20)
#define MAX_SPANS_PER_TRACE TRACE_MAX_SPANS

enum { KIND_INTERNAL = 1, KIND_SERVER = 2, KIND_CLIENT = 3 };
enum { STATUS_ERROR = 2 };

struct otlp_exporter {
    char *traces_url;
    char *metrics_url;
    char *version;
    struct curl_slist *headers;
    CURL *curl;
    long timeout_ms, interval_ms;
    size_t batch_size;
    bool metrics_on;
    otlp_metrics_render render;   /* guarded by mu */
    bool in_render;               /* the thread is inside render; guarded by mu */
    long backoff_ms;              /* guarded by mu */
    int max_tries;                /* guarded by mu */

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    trace_rec **q;                /* ring of qcap slots */
    size_t qcap, qhead, qlen, qspans;
    bool stopping;
    uint64_t deadline;            /* monotonic ns; valid when stopping */

    _Atomic uint64_t dropped, exported;
};

/* ---- time ---- */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct timespec to_timespec(uint64_t ns)
{
    return (struct timespec){ .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };
}

static uint64_t ms_ns(long ms) { return ms > 0 ? (uint64_t)ms * 1000000u : 0; }

/* ---- encoding ---- */

/* An OTLP AnyValue for a JSON value from the attribute table. */
static json_t *any_value(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_pack("{s:O}", "stringValue", v);
    case JSON_INTEGER: {
        char num[32];
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return json_pack("{s:s}", "intValue", num);
    }
    case JSON_REAL:
        return json_pack("{s:O}", "doubleValue", v);
    case JSON_TRUE:
    case JSON_FALSE:
        return json_pack("{s:b}", "boolValue", json_is_true(v));
    case JSON_ARRAY: {
        json_t *vals = json_array();
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            json_t *a = any_value(item);
            if (a)
                json_array_append_new(vals, a);
        }
        return json_pack("{s:{s:o}}", "arrayValue", "values", vals);
    }
    default:
        return NULL;
    }
}

static void add_kv(json_t *list, const char *key, json_t *value)
{
    if (value)
        json_array_append_new(list, json_pack("{s:s,s:o}", "key", key, "value", value));
}

/* The attribute table's object as an OTLP KeyValue list (in table order). */
static json_t *kv_list(json_t *obj)
{
    json_t *list = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
        add_kv(list, key, any_value(v));
    return list;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void u64_str(uint64_t v, char out[24]) { snprintf(out, 24, "%" PRIu64, v); }

/* A string attribute from a NUL-terminated text that may not be UTF-8. */
static json_t *text_value(const char *s)
{
    json_t *str = json_string(s);
    if (!str)
        return NULL;
    json_t *v = any_value(str);
    json_decref(str);
    return v;
}

/* One OTLP span for span i of t (i == -1: a root made up for a record
 * without spans). */
static json_t *encode_span(const trace_rec *t, int i, const char *trace_hex)
{
    char span_hex[17], parent_hex[17], name[200], start[24], end[24];
    const span_rec *s = i >= 0 ? &t->spans[i] : NULL;
    bool root = i <= 0 || s->kind == SPAN_REQUEST;
    uint64_t st, en;
    if (s) {
        span_id_hex(s->span_id, span_hex);
        st = s->start_ns;
        en = s->end_ns;
    } else {
        uint8_t id[8];
        memcpy(id, t->trace_id + 8, sizeof id);
        if (all_zero(id, sizeof id))
            id[7] = 1;
        span_id_hex(id, span_hex);
        st = en = 0;
    }
    if (root && !st)
        st = t->start_ns;
    if (root && !en)
        en = t->end_ns;
    if (en < st)
        en = st;
    u64_str(st, start);
    u64_str(en, end);
    trace_span_name(t, i < 0 ? 0 : i, name, sizeof name);

    int kind = root ? KIND_SERVER : (s->kind == SPAN_ATTEMPT ? KIND_CLIENT : KIND_INTERNAL);
    json_t *attrs = json_object();
    trace_attrs_json(t, i < 0 ? 0 : i, attrs);
    json_t *kvs = kv_list(attrs);
    json_decref(attrs);
    if (root) {
        if (t->input_messages)
            add_kv(kvs, "gen_ai.input.messages", text_value(t->input_messages));
        if (t->output_messages)
            add_kv(kvs, "gen_ai.output.messages", text_value(t->output_messages));
    }
    json_t *span = json_pack("{s:s,s:s}", "traceId", trace_hex, "spanId", span_hex);
    if (s && !root && !all_zero(s->parent_id, sizeof s->parent_id)) {
        span_id_hex(s->parent_id, parent_hex);
        json_object_set_new(span, "parentSpanId", json_string(parent_hex));
    }
    json_t *jname = json_string(name);
    if (!jname)
        jname = json_string(root ? "request" : "span");
    json_object_set_new(span, "name", jname);
    json_object_set_new(span, "kind", json_integer(kind));
    json_object_set_new(span, "startTimeUnixNano", json_string(start));
    json_object_set_new(span, "endTimeUnixNano", json_string(end));
    json_object_set_new(span, "attributes", kvs);

    /* status: ERROR with error.type as the message, or a 5xx at the root */
    const char *et = root ? t->error_type : s->error_type;
    size_t etn = strnlen(et, root ? sizeof t->error_type : sizeof s->error_type);
    char msg[64] = "";
    if (etn)
        snprintf(msg, sizeof msg, "%.*s", (int)etn, et);
    else if (root && t->status >= 500)
        snprintf(msg, sizeof msg, "HTTP %d", t->status);
    if (msg[0]) {
        json_t *m = json_string(msg);
        if (!m)
            m = json_string("error");
        json_object_set_new(span, "status", json_pack("{s:i,s:o}", "code", STATUS_ERROR, "message", m));
    }
    return span;
}

typedef struct dump_ctx {
    buf *out;
    err_code rc;
} dump_ctx;

static int dump_to_buf(const char *p, size_t n, void *ud)
{
    dump_ctx *d = ud;
    d->rc = buf_append(d->out, p, n);
    return d->rc == ERR_OK ? 0 : -1;
}

err_code otlp_encode_traces(trace_rec *const *recs, size_t n, const char *service_version, buf *out)
{
    if (!out || (n && !recs))
        return ERR_INVAL;
    const char *ver = service_version ? service_version : GENAIOPS_VERSION;
    json_t *spans = json_array();
    if (!spans)
        return ERR_NOMEM;
    for (size_t r = 0; r < n; r++) {
        const trace_rec *t = recs[r];
        if (!t)
            continue;
        char trace_hex[33];
        trace_id_hex(t->trace_id, trace_hex);
        int ns = t->nspans;
        if (ns > MAX_SPANS_PER_TRACE)
            ns = MAX_SPANS_PER_TRACE;
        if (ns <= 0)
            json_array_append_new(spans, encode_span(t, -1, trace_hex));
        for (int i = 0; i < ns; i++)
            json_array_append_new(spans, encode_span(t, i, trace_hex));
    }
    json_t *resource = json_pack("{s:[{s:s,s:{s:s}},{s:s,s:{s:s}}]}", "attributes",
                                 "key", "service.name", "value", "stringValue", "genaiops",
                                 "key", "service.version", "value", "stringValue", ver);
    json_t *scope = json_pack("{s:s,s:s}", "name", "genaiops", "version", ver);
    json_t *root = NULL;
    if (resource && scope)
        root = json_pack("{s:[{s:o,s:[{s:o,s:o}]}]}", "resourceSpans", "resource", resource,
                         "scopeSpans", "scope", scope, "spans", spans);
    else {
        json_decref(resource);
        json_decref(scope);
        json_decref(spans);
    }
    if (!root)
        return ERR_NOMEM;
    size_t before = out->len;
    dump_ctx d = { out, ERR_OK };
    err_code rc = ERR_OK;
    if (json_dump_callback(root, dump_to_buf, &d, JSON_COMPACT) != 0) {
        rc = d.rc != ERR_OK ? d.rc : ERR_NOMEM;
        out->len = before;
        if (out->p)
            out->p[before] = '\0';
    }
    json_decref(root);
    return rc;
}

/* ---- HTTP ---- */

typedef struct http_result {
    long status;            /* 0 when no response */
    long retry_after_ms;    /* -1 when none */
    CURLcode curl_rc;
    char errbuf[CURL_ERROR_SIZE];
} http_result;

static size_t discard_body(char *p, size_t size, size_t n, void *ud)
{
    return size * n;
}

/* Picks Retry-After (delta seconds or an HTTP date) out of a header line. */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    http_result *res = ud;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
        char val[64];
        size_t i = sizeof name - 1;
        while (i < len && (p[i] == ' ' || p[i] == '\t'))
            i++;
        size_t j = len;
        while (j > i && (p[j - 1] == '\r' || p[j - 1] == '\n' || p[j - 1] == ' ' || p[j - 1] == '\t'))
            j--;
        if (j > i && j - i < sizeof val) {
            memcpy(val, p + i, j - i);
            val[j - i] = '\0';
            char *endp;
            errno = 0;
            long secs = strtol(val, &endp, 10);
            if (endp != val && *endp == '\0' && errno == 0 && secs >= 0) {
                res->retry_after_ms = secs > MAX_RETRY_AFTER_MS / 1000 ? MAX_RETRY_AFTER_MS : secs * 1000;
            } else {
                time_t when = curl_getdate(val, NULL);
                if (when != (time_t)-1) {
                    time_t now = time(NULL);
                    long d = when > now ? (long)(when - now) : 0;
                    res->retry_after_ms = d > MAX_RETRY_AFTER_MS / 1000 ? MAX_RETRY_AFTER_MS : d * 1000;
                }
            }
        }
    }
    return len;
}

/* One POST; blocking, on the exporter thread only. */
static void http_post(otlp_exporter *e, const char *url, const buf *body, long timeout_ms, http_result *res)
{
    CURL *c = e->curl;
    res->status = 0;
    res->retry_after_ms = -1;
    res->errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->p ? body->p : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, e->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, res);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, res->errbuf);
    res->curl_rc = curl_easy_perform(c);
    if (res->curl_rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
}

static bool retryable(const http_result *r)
{
    if (r->curl_rc != CURLE_OK)
        return r->curl_rc != CURLE_URL_MALFORMAT && r->curl_rc != CURLE_UNSUPPORTED_PROTOCOL &&
               r->curl_rc != CURLE_OUT_OF_MEMORY;
    return r->status == 429 || r->status == 502 || r->status == 503 || r->status == 504;
}

/* Sleeps up to ms on the condition variable; returns false when the stop
 * deadline has passed (the caller gives up). Wakes early on stop. */
static bool backoff_wait(otlp_exporter *e, long ms)
{
    uint64_t wake = mono_ns() + ms_ns(ms);
    bool ok = true;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        uint64_t now = mono_ns();
        if (e->stopping && wake > e->deadline) {
            ok = false; /* the wait would end after the deadline: no time for another try */
            break;
        }
        if (now >= wake)
            break;
        struct timespec ts = to_timespec(wake);
        pthread_cond_timedwait(&e->cv, &e->mu, &ts);
    }
    pthread_mutex_unlock(&e->mu);
    return ok;
}

/* The time a request may take now: timeout_ms, cut to the stop deadline.
 * 0 means none left. */
static long request_budget(otlp_exporter *e)
{
    long ms = e->timeout_ms;
    pthread_mutex_lock(&e->mu);
    if (e->stopping) {
        uint64_t now = mono_ns();
        uint64_t left = e->deadline > now ? (e->deadline - now) / 1000000u : 0;
        if ((uint64_t)ms > left)
            ms = (long)left;
    }
    pthread_mutex_unlock(&e->mu);
    return ms;
}

/* POSTs body to url with retries; true on a 2xx. */
static bool post_with_retry(otlp_exporter *e, const char *url, const buf *body, const char *what)
{
    pthread_mutex_lock(&e->mu);
    long base = e->backoff_ms;
    int tries = e->max_tries;
    pthread_mutex_unlock(&e->mu);
    http_result res;
    for (int attempt = 1;; attempt++) {
        long budget = request_budget(e);
        if (budget <= 0) {
            log_warn("otlp: %s: no time left before the stop deadline", what);
            return false;
        }
        http_post(e, url, body, budget, &res);
        if (res.curl_rc == CURLE_OK && res.status >= 200 && res.status < 300)
            return true;
        if (!retryable(&res)) {
            log_warn("otlp: %s to %s refused: HTTP %ld", what, url, res.status);
            return false;
        }
        if (attempt >= tries) {
            if (res.curl_rc != CURLE_OK)
                log_warn("otlp: %s to %s failed after %d tries: %s", what, url, attempt,
                         res.errbuf[0] ? res.errbuf : curl_easy_strerror(res.curl_rc));
            else
                log_warn("otlp: %s to %s failed after %d tries: HTTP %ld", what, url, attempt, res.status);
            return false;
        }
        long delay = base;
        for (int k = 1; k < attempt && delay < MAX_BACKOFF_MS; k++)
            delay *= 2;
        if (delay > MAX_BACKOFF_MS)
            delay = MAX_BACKOFF_MS;
        if (res.retry_after_ms >= 0)
            delay = res.retry_after_ms;
        if (!backoff_wait(e, delay))
            return false;
    }
}

/* ---- the thread ---- */

static size_t span_count(const trace_rec *t)
{
    return t->nspans <= 0 ? 1 : (size_t)MIN(t->nspans, MAX_SPANS_PER_TRACE);
}

/* Moves whole traces off the ring into batch, up to batch_size spans (at
 * least one trace). Called with mu held. */
static size_t take_batch(otlp_exporter *e, trace_rec **batch, size_t cap)
{
    size_t n = 0, spans = 0;
    while (e->qlen > 0 && n < cap) {
        trace_rec *t = e->q[e->qhead];
        size_t sc = span_count(t);
        if (n > 0 && spans + sc > e->batch_size)
            break;
        batch[n++] = t;
        spans += sc;
        e->qhead = (e->qhead + 1) % e->qcap;
        e->qlen--;
        e->qspans -= sc;
    }
    return n;
}

static void send_batch(otlp_exporter *e, trace_rec **batch, size_t n)
{
    buf body;
    buf_init(&body, MAX_BODY);
    err_code rc = otlp_encode_traces(batch, n, e->version, &body);
    bool ok = false;
    if (rc != ERR_OK)
        log_warn("otlp: could not encode %zu traces: %s", n, err_message(rc));
    else
        ok = post_with_retry(e, e->traces_url, &body, "trace export");
    buf_free(&body);
    if (ok)
        atomic_fetch_add(&e->exported, n);
    else
        atomic_fetch_add(&e->dropped, n);
    for (size_t i = 0; i < n; i++)
        trace_free(batch[i]);
}

static void push_metrics(otlp_exporter *e)
{
    pthread_mutex_lock(&e->mu);
    otlp_metrics_render render = e->metrics_on ? e->render : NULL;
    e->in_render = render != NULL;
    pthread_mutex_unlock(&e->mu);
    if (!render)
        return;
    buf body;
    buf_init(&body, MAX_METRICS_BODY);
    err_code rc = render(&body, e->version);
    pthread_mutex_lock(&e->mu);
    e->in_render = false;
    pthread_cond_broadcast(&e->cv); /* otlp_exporter_set_metrics may be waiting */
    pthread_mutex_unlock(&e->mu);
    if (rc != ERR_OK)
        log_warn("otlp: rendering metrics failed: %s", err_message(rc));
    else if (body.len > 0)
        post_with_retry(e, e->metrics_url, &body, "metrics export");
    buf_free(&body);
}

static void *exporter_main(void *arg)
{
    otlp_exporter *e = arg;
    size_t bcap = e->batch_size;
    trace_rec **batch = malloc(bcap * sizeof *batch);
    uint64_t interval = ms_ns(e->interval_ms);
    uint64_t next_flush = mono_ns() + interval, next_metrics = next_flush;
    uint64_t last_drops = 0, last_drop_log = 0;

    pthread_mutex_lock(&e->mu);
    while (!e->stopping) {
        uint64_t now = mono_ns();
        bool due_flush = now >= next_flush, due_metrics = e->metrics_on && now >= next_metrics;
        if (!due_flush && !due_metrics && e->qspans < e->batch_size) {
            uint64_t until = next_flush;
            if (e->metrics_on && next_metrics < until)
                until = next_metrics;
            struct timespec ts = to_timespec(until);
            pthread_cond_timedwait(&e->cv, &e->mu, &ts);
            continue;
        }
        if (e->qlen > 0 && (due_flush || e->qspans >= e->batch_size)) {
            size_t n = batch ? take_batch(e, batch, bcap) : 0;
            pthread_mutex_unlock(&e->mu);
            send_batch(e, batch, n);
            pthread_mutex_lock(&e->mu);
        }
        now = mono_ns();
        if (now >= next_flush)
            next_flush = now + interval;
        if (due_metrics) {
            pthread_mutex_unlock(&e->mu);
            push_metrics(e);
            pthread_mutex_lock(&e->mu);
            next_metrics = mono_ns() + interval;
        }
        uint64_t d = atomic_load(&e->dropped);
        if (d != last_drops && now - last_drop_log >= 10 * 1000000000ull) {
            pthread_mutex_unlock(&e->mu);
            log_warn("otlp: %" PRIu64 " traces dropped so far", d);
            pthread_mutex_lock(&e->mu);
            last_drops = d;
            last_drop_log = now;
        }
        if (!batch && e->qlen > 0) {
            /* no memory for a batch array: drop rather than spin */
            trace_rec *t = e->q[e->qhead];
            e->qhead = (e->qhead + 1) % e->qcap;
            e->qlen--;
            e->qspans -= span_count(t);
            trace_free(t);
            atomic_fetch_add(&e->dropped, 1);
        }
    }
    /* stopping: send what is queued until the deadline, drop the rest */
    while (e->qlen > 0) {
        if (mono_ns() >= e->deadline || !batch) {
            while (e->qlen > 0) {
                trace_free(e->q[e->qhead]);
                e->qhead = (e->qhead + 1) % e->qcap;
                e->qlen--;
                atomic_fetch_add(&e->dropped, 1);
            }
            e->qspans = 0;
            break;
        }
        size_t n = take_batch(e, batch, bcap);
        pthread_mutex_unlock(&e->mu);
        send_batch(e, batch, n);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    free(batch);
    return NULL;
}

/* ---- setup ---- */

static void set_err(char *err, size_t errcap, const char *msg, const char *arg)
{
    if (err && errcap)
        snprintf(err, errcap, "%s%s%s", msg, arg ? ": " : "", arg ? arg : "");
}

static char *join_url(const char *base, size_t n, const char *path)
{
    size_t len = n + strlen(path) + 1;
    char *s = malloc(len);
    if (s)
        snprintf(s, len, "%.*s%s", (int)n, base, path);
    return s;
}

static bool clean_token(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n' || *s == '\0')
            return false;
    return true;
}

static void destroy(otlp_exporter *e)
{
    if (!e)
        return;
    if (e->curl)
        curl_easy_cleanup(e->curl);
    curl_slist_free_all(e->headers);
    free(e->traces_url);
    free(e->metrics_url);
    free(e->version);
    free(e->q);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

otlp_exporter *otlp_exporter_start(const cfg_otlp *o, const char *service_version, char *err, size_t errcap)
{
    if (!o || !o->endpoint || !o->endpoint[0]) {
        set_err(err, errcap, "otlp: no endpoint configured", NULL);
        return NULL;
    }
    const char *ep = o->endpoint;
    if (strncasecmp(ep, "http://", 7) != 0 && strncasecmp(ep, "https://", 8) != 0) {
        set_err(err, errcap, "otlp: endpoint must be an http:// or https:// URL", ep);
        return NULL;
    }
    if (!clean_token(ep) || strchr(ep, ' ')) {
        set_err(err, errcap, "otlp: endpoint contains spaces or line breaks", NULL);
        return NULL;
    }
    for (size_t i = 0; i < o->nheaders; i++) {
        const cfg_header *h = &o->headers[i];
        if (!h->name || !h->name[0] || !h->value || !clean_token(h->name) || !clean_token(h->value) ||
            strchr(h->name, ':') || strchr(h->name, ' ')) {
            set_err(err, errcap, "otlp: invalid header", h->name ? h->name : "(null)");
            return NULL;
        }
    }
    upstream_global_init();

    otlp_exporter *e = calloc(1, sizeof *e);
    if (!e) {
        set_err(err, errcap, "otlp: out of memory", NULL);
        return NULL;
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->cv, &ca);
    pthread_condattr_destroy(&ca);

    e->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEF_TIMEOUT_MS;
    e->interval_ms = o->interval_ms > 0 ? o->interval_ms : DEF_INTERVAL_MS;
    e->batch_size = o->batch_size > 0 ? o->batch_size : DEF_BATCH;
    e->qcap = o->queue_size > 0 ? o->queue_size : DEF_QUEUE;
    e->metrics_on = o->metrics;
    e->backoff_ms = DEF_BACKOFF_MS;
    e->max_tries = DEF_TRIES;

    /* ENDPOINT/v1/traces; an endpoint that already names /v1/traces is a base too */
    size_t n = strlen(ep);
    while (n > 0 && ep[n - 1] == '/')
        n--;
    static const char tsuffix[] = "/v1/traces";
    if (n >= sizeof tsuffix - 1 && strncmp(ep + n - (sizeof tsuffix - 1), tsuffix, sizeof tsuffix - 1) == 0)
        n -= sizeof tsuffix - 1;
    e->traces_url = join_url(ep, n, "/v1/traces");
    e->metrics_url = join_url(ep, n, "/v1/metrics");
    e->version = strdup(service_version ? service_version : GENAIOPS_VERSION);
    e->q = calloc(e->qcap, sizeof *e->q);
    e->curl = curl_easy_init();
    bool ok = e->traces_url && e->metrics_url && e->version && e->q && e->curl;

    struct curl_slist *hl = NULL;
    static const char *fixed[] = { "Content-Type: application/json", "Expect:" };
    for (size_t i = 0; ok && i < countof(fixed); i++) {
        struct curl_slist *nl = curl_slist_append(hl, fixed[i]);
        if (!nl)
            ok = false;
        else
            hl = nl;
    }
    for (size_t i = 0; ok && i < o->nheaders; i++) {
        const cfg_header *h = &o->headers[i];
        size_t len = strlen(h->name) + strlen(h->value) + 3;
        char *line = malloc(len);
        if (!line) {
            ok = false;
            break;
        }
        /* "Name;" is how libcurl sends a header with an empty value */
        if (h->value[0])
            snprintf(line, len, "%s: %s", h->name, h->value);
        else
            snprintf(line, len, "%s;", h->name);
        struct curl_slist *nl = curl_slist_append(hl, line);
        free(line);
        if (!nl)
            ok = false;
        else
            hl = nl;
    }
    e->headers = hl;
    if (!ok) {
        set_err(err, errcap, "otlp: out of memory", NULL);
        destroy(e);
        return NULL;
    }
    char ua[64];
    snprintf(ua, sizeof ua, "genaiops/%s", e->version);
    curl_easy_setopt(e->curl, CURLOPT_USERAGENT, ua); /* libcurl copies strings */
    curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, MIN(e->timeout_ms, 10000L));

    int prc = pthread_create(&e->thread, NULL, exporter_main, e);
    if (prc != 0) {
        set_err(err, errcap, "otlp: cannot start the exporter thread", strerror(prc));
        destroy(e);
        return NULL;
    }
    log_info("otlp: exporting traces to %s%s", e->traces_url, e->metrics_on ? " (and metrics)" : "");
    return e;
}

bool otlp_exporter_submit(otlp_exporter *e, trace_rec *rec)
{
    if (!rec)
        return false;
    if (!e) {
        trace_free(rec);
        return false;
    }
    size_t sc = span_count(rec);
    bool ok = false, wake = false;
    pthread_mutex_lock(&e->mu);
    if (!e->stopping && e->qlen < e->qcap) {
        e->q[(e->qhead + e->qlen) % e->qcap] = rec;
        e->qlen++;
        e->qspans += sc;
        ok = true;
        wake = e->qspans >= e->batch_size;
    }
    pthread_mutex_unlock(&e->mu);
    if (wake)
        pthread_cond_signal(&e->cv);
    if (!ok) {
        trace_free(rec);
        atomic_fetch_add(&e->dropped, 1);
    }
    return ok;
}

void otlp_exporter_set_metrics(otlp_exporter *e, otlp_metrics_render render)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->render = render;
    while (e->in_render)
        pthread_cond_wait(&e->cv, &e->mu);
    pthread_mutex_unlock(&e->mu);
}

void otlp_exporter_set_retry(otlp_exporter *e, long base_ms, int max_tries)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->backoff_ms = base_ms > 0 ? base_ms : DEF_BACKOFF_MS;
    e->max_tries = max_tries > 0 ? max_tries : DEF_TRIES;
    pthread_mutex_unlock(&e->mu);
}

void otlp_exporter_stop(otlp_exporter *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    e->deadline = mono_ns() + ms_ns(e->timeout_ms);
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    uint64_t d = atomic_load(&e->dropped), x = atomic_load(&e->exported);
    log_info("otlp: stopped; %" PRIu64 " traces exported, %" PRIu64 " dropped", x, d);
    destroy(e);
}

uint64_t otlp_exporter_dropped(const otlp_exporter *e)
{
    return e ? atomic_load(&((otlp_exporter *)e)->dropped) : 0;
}

uint64_t otlp_exporter_exported(const otlp_exporter *e)
{
    return e ? atomic_load(&((otlp_exporter *)e)->exported) : 0;
}
