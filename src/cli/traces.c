/*
 * traces.c - `genaiops traces list|show ID|tail`: search, inspect and follow
 * the stored traces.
 *
 * Two sources give the same JSON: the local store named by the config
 * (--config FILE, or $GENAIOPS_CONFIG, or the default ./genaiops.db), read
 * through store/query.c; or a running gateway's REST API (--server URL or
 * $GENAIOPS_SERVER, with --admin-key / $GENAIOPS_ADMIN_KEY as a bearer
 * token) through libcurl's easy interface. The filter flags are collected
 * as (name, value) pairs with the REST API's names, so both sources check
 * them the same way (query_filter_set locally, the server remotely).
 *
 * tail prints the latest N traces, then polls every 500 ms. Traces are
 * stored when they finish, so a long request can appear after newer ones:
 * each poll looks back TAIL_LOOKBACK_S before the newest start seen and
 * skips the ids it has printed (a bounded set, oldest forgotten first).
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "cli/cli.h"
#include "core/buf.h"
#include "store/query.h"

#define MAX_PAIRS 16
#define RESPONSE_MAX (64u << 20)
#define TAIL_LOOKBACK_S 120
#define TAIL_SEEN_MAX 20000
#define TAIL_POLL_MS 500
#define BAR_WIDTH 32

static const char usage[] =
    "usage: genaiops traces list [FILTERS] [--json] [SOURCE]\n"
    "       genaiops traces show TRACE_ID [--json] [SOURCE]\n"
    "       genaiops traces tail [FILTERS] [-n N] [--json] [SOURCE]\n"
    "\n"
    "list prints the newest traces that match (a table, or the API's JSON with --json);\n"
    "show prints one trace with its spans as a waterfall, its scores and content;\n"
    "tail prints the latest N (default 10) and then each new trace as it is stored,\n"
    "until Ctrl-C (--json: one JSON object a line).\n"
    "\n"
    "FILTERS:\n"
    "  --model NAME          request model          --provider NAME\n"
    "  --status CODE|ok|error                       --deployment NAME\n"
    "  --key NAME            API key name           -q, --query TEXT  text search\n"
    "  --from TIME --to TIME unix ms or RFC 3339 (2024-11-21T09:30:00Z)\n"
    "  --min-latency-ms N    --min-cost USD         --limit N (1-500, default 50)\n"
    "  --cursor C            the next page (list prints the cursor to use)\n"
    "SOURCE (default: the local store of the config):\n"
    "  --config FILE         read the store named by FILE's store.url\n"
    "  --server URL          ask a running gateway (or $GENAIOPS_SERVER)\n"
    "  --admin-key KEY       its server.admin_key (or $GENAIOPS_ADMIN_KEY)\n";

typedef struct pair {
    const char *name;
    const char *value;
} pair;

typedef struct source {
    const char *server;
    const char *admin_key;
    config *cfg;
    const char *store_url;
} source;

static volatile sig_atomic_t stop_flag;
static void on_sigint(int sig) { UNUSED(sig), stop_flag = 1; }

/* ---- fetching ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    return buf_append(ud, p, size * n) == ERR_OK ? size * n : 0;
}

/* GET or POST to the server; *out is the parsed JSON answer (NULL + message on
 * a transport error). Returns the HTTP status (0 on a transport error). */
static long http_call(const source *s, const char *path, json_t **out, char *err, size_t errcap)
{
    *out = NULL;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errcap, "cannot start libcurl");
        return 0;
    }
    buf url, body;
    buf_init(&url, 16384);
    buf_init(&body, RESPONSE_MAX);
    size_t n = strlen(s->server);
    while (n && s->server[n - 1] == '/')
        n--;
    buf_append(&url, s->server, n);
    buf_append_str(&url, path);
    struct curl_slist *hdrs = NULL;
    char auth[512];
    if (s->admin_key && *s->admin_key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->admin_key);
        hdrs = curl_slist_append(hdrs, auth);
    }
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url.p);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "genaiops/" GENAIOPS_VERSION);
    long status = 0;
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        snprintf(err, errcap, "cannot reach %s: %s", url.p, curl_easy_strerror(rc));
    else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        json_error_t je;
        *out = json_loadb(body.p ? body.p : "", body.len, 0, &je);
        if (!*out) {
            snprintf(err, errcap, "%s answered %ld with something that is not JSON (%s)", url.p, status, je.text);
            status = 0;
        } else if (status != 200) {
            const char *m = json_string_value(json_object_get(json_object_get(*out, "error"), "message"));
            snprintf(err, errcap, "%s (HTTP %ld)", m ? m : "error", status);
        }
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    buf_free(&url);
    buf_free(&body);
    return status;
}

static void url_escape(buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("-._~", ch))
            buf_append(b, s, 1);
        else
            buf_printf(b, "%%%02X", ch);
    }
}

/* The trace list for pairs; prints the error and returns false on failure. */
static bool fetch_list(const source *s, const pair *pairs, size_t n, json_t **out)
{
    *out = NULL;
    if (s->server) {
        buf path;
        buf_init(&path, 16384);
        buf_append_str(&path, "/api/v1/traces");
        for (size_t i = 0; i < n; i++) {
            buf_append_str(&path, i ? "&" : "?");
            url_escape(&path, pairs[i].name);
            buf_append_str(&path, "=");
            url_escape(&path, pairs[i].value);
        }
        char err[512] = "out of memory";
        long st = path.p ? http_call(s, path.p, out, err, sizeof err) : 0;
        buf_free(&path);
        if (st != 200) {
            fprintf(stderr, "genaiops traces: %s\n", err);
            json_decref(*out);
            *out = NULL;
            return false;
        }
        return true;
    }
    query_filter f = { 0 };
    query_error e = { 0 };
    for (size_t i = 0; i < n; i++)
        if (query_filter_set(&f, pairs[i].name, sv_from(pairs[i].value), &e) != ERR_OK) {
            fprintf(stderr, "genaiops traces: %s\n", e.message);
            return false;
        }
    if (query_traces_list(s->store_url, &f, out, &e) != ERR_OK) {
        fprintf(stderr, "genaiops traces: %s\n", e.message);
        return false;
    }
    return true;
}

static bool fetch_trace(const source *s, const char *id, json_t **out)
{
    *out = NULL;
    if (s->server) {
        buf path;
        buf_init(&path, 1024);
        buf_append_str(&path, "/api/v1/traces/");
        url_escape(&path, id);
        char err[512] = "out of memory";
        long st = path.p ? http_call(s, path.p, out, err, sizeof err) : 0;
        buf_free(&path);
        if (st != 200) {
            fprintf(stderr, "genaiops traces: %s\n", err);
            json_decref(*out);
            *out = NULL;
            return false;
        }
        return true;
    }
    query_error e = { 0 };
    if (query_trace_get(s->store_url, sv_from(id), out, &e) != ERR_OK) {
        fprintf(stderr, "genaiops traces: %s\n", e.message);
        return false;
    }
    return true;
}

/* ---- formatting ---- */

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static bool jnum(json_t *o, const char *k, double *v)
{
    json_t *x = json_object_get(o, k);
    if (!json_is_number(x))
        return false;
    *v = json_number_value(x);
    return true;
}

static void fmt_local_time(long long ns, char *out, size_t cap)
{
    time_t secs = (time_t)(ns / 1000000000);
    struct tm tm;
    localtime_r(&secs, &tm);
    char t[32];
    strftime(t, sizeof t, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03lld", t, ns / 1000000 % 1000);
}

static void fmt_ms(double ms, char *out, size_t cap)
{
    if (ms < 10)
        snprintf(out, cap, "%.2f ms", ms);
    else if (ms < 1000)
        snprintf(out, cap, "%.0f ms", ms);
    else
        snprintf(out, cap, "%.2f s", ms / 1000);
}

static void fmt_tokens(json_t *t, char *out, size_t cap)
{
    double in, o;
    bool hi = jnum(t, "input_tokens", &in), ho = jnum(t, "output_tokens", &o);
    char a[24] = "-", b[24] = "-";
    if (hi)
        snprintf(a, sizeof a, "%.0f", in);
    if (ho)
        snprintf(b, sizeof b, "%.0f", o);
    snprintf(out, cap, "%s/%s", a, b);
}

static void fmt_cost(json_t *t, char *out, size_t cap)
{
    double c;
    if (jnum(t, "cost_usd", &c))
        snprintf(out, cap, "$%.6f", c);
    else
        snprintf(out, cap, "-");
}

/* One line: time, status, model, provider, tokens, cost, latency, id, and
 * the prompt version that served it (name:version, "-" for none). */
static void print_line(json_t *t)
{
    char when[40], tok[48], cost[32], lat[32];
    double v;
    fmt_local_time(json_integer_value(json_object_get(t, "start_ns")), when, sizeof when);
    fmt_tokens(t, tok, sizeof tok);
    fmt_cost(t, cost, sizeof cost);
    fmt_ms(jnum(t, "duration_ms", &v) ? v : 0, lat, sizeof lat);
    char prompt[160] = "-";
    const char *pn = json_string_value(json_object_get(t, "prompt_name"));
    if (pn && *pn)
        snprintf(prompt, sizeof prompt, "%s:%lld", pn, (long long)json_integer_value(json_object_get(t, "prompt_version")));
    printf("%-23s  %3lld  %-24.24s  %-12.12s  %13s  %10s  %9s  %-32s  %s\n", when,
           (long long)json_integer_value(json_object_get(t, "status")), jstr(t, "request_model"), jstr(t, "provider"),
           tok, cost, lat, jstr(t, "trace_id"), prompt);
}

static void print_header(void)
{
    printf("%-23s  %3s  %-24s  %-12s  %13s  %10s  %9s  %-32s  %s\n", "TIME", "ST", "MODEL", "PROVIDER",
           "TOKENS IN/OUT", "COST", "LATENCY", "TRACE ID", "PROMPT");
}

static void print_json_line(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (s)
        puts(s);
    free(s);
}

static void print_json_pretty(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    if (s)
        puts(s);
    free(s);
}

/* The depth of span i (0 for the root) by following parent ids. */
static int span_depth(json_t *spans, size_t i)
{
    int depth = 0;
    json_t *s = json_array_get(spans, i);
    while (depth < 16) {
        const char *parent = json_string_value(json_object_get(s, "parent_id"));
        if (!parent || !*parent)
            break;
        json_t *found = NULL, *x;
        size_t k;
        json_array_foreach(spans, k, x) if (!strcmp(jstr(x, "span_id"), parent)) found = x;
        if (!found)
            break;
        depth++;
        s = found;
    }
    return depth;
}

static void print_waterfall(json_t *spans, long long t0, long long t1)
{
    double total = t1 > t0 ? (double)(t1 - t0) : 1;
    size_t i;
    json_t *s;
    json_array_foreach(spans, i, s) {
        long long a = json_integer_value(json_object_get(s, "start_ns"));
        long long b = json_integer_value(json_object_get(s, "end_ns"));
        int depth = span_depth(spans, i);
        char label[160], extra[96] = "", off[32], dur[32];
        json_t *attrs = json_object_get(s, "attributes");
        json_t *code = json_object_get(attrs, "http.response.status_code");
        const char *et = jstr(attrs, "error.type");
        if (strcmp(jstr(s, "kind"), "request") != 0 && json_is_integer(code))
            snprintf(extra, sizeof extra, " [%lld%s%s]", (long long)json_integer_value(code), *et ? " " : "", et);
        else if (*et)
            snprintf(extra, sizeof extra, " [%s]", et);
        snprintf(label, sizeof label, "%*s%s%s", depth * 2, "", jstr(s, "name"), extra);
        fmt_ms((double)(a - t0) / 1e6, off, sizeof off);
        fmt_ms((double)(b - a) / 1e6, dur, sizeof dur);
        int from = (int)((double)(a - t0) / total * BAR_WIDTH), to = (int)ceil((double)(b - t0) / total * BAR_WIDTH);
        from = from < 0 ? 0 : from > BAR_WIDTH - 1 ? BAR_WIDTH - 1 : from;
        to = to <= from ? from + 1 : to > BAR_WIDTH ? BAR_WIDTH : to;
        char bar[BAR_WIDTH + 1];
        for (int k = 0; k < BAR_WIDTH; k++)
            bar[k] = k >= from && k < to ? '=' : ' ';
        bar[BAR_WIDTH] = '\0';
        printf("  %-44.44s +%-9s %9s  |%s|\n", label, off, dur, bar);
    }
}

static void print_field(const char *name, const char *value)
{
    if (value && *value)
        printf("%-12s %s\n", name, value);
}

static void print_trace(json_t *t)
{
    char line[512], a[64], b[64];
    double v;
    long long start = json_integer_value(json_object_get(t, "start_ns"));
    long long end = json_integer_value(json_object_get(t, "end_ns"));
    print_field("trace", jstr(t, "trace_id"));
    print_field("request", jstr(t, "request_id"));
    fmt_local_time(start, a, sizeof a);
    fmt_ms(jnum(t, "duration_ms", &v) ? v : 0, b, sizeof b);
    snprintf(line, sizeof line, "%s (%s UTC), took %s", a, jstr(t, "start_time"), b);
    print_field("time", line);
    snprintf(line, sizeof line, "%s %s%s", jstr(t, "operation"), jstr(t, "endpoint"),
             json_is_true(json_object_get(t, "stream")) ? " (stream)" : "");
    print_field("operation", line);
    snprintf(line, sizeof line, "%s%s%s", jstr(t, "request_model"), *jstr(t, "response_model") ? " -> " : "",
             jstr(t, "response_model"));
    print_field("model", line);
    snprintf(line, sizeof line, "%s%s%s%s", jstr(t, "provider"), *jstr(t, "provider_type") ? " (" : "",
             jstr(t, "provider_type"), *jstr(t, "provider_type") ? ")" : "");
    if (jnum(t, "attempts", &v))
        snprintf(line + strlen(line), sizeof line - strlen(line), ", %.0f attempt%s", v, v == 1 ? "" : "s");
    print_field("provider", line);
    snprintf(line, sizeof line, "%lld%s%s", (long long)json_integer_value(json_object_get(t, "status")),
             *jstr(t, "error_type") ? " error: " : "", jstr(t, "error_type"));
    print_field("status", line);
    print_field("deployment", jstr(t, "deployment"));
    print_field("key", jstr(t, "api_key"));
    if (*jstr(t, "prompt_name")) {
        snprintf(line, sizeof line, "%s v%lld", jstr(t, "prompt_name"),
                 (long long)json_integer_value(json_object_get(t, "prompt_version")));
        print_field("prompt", line);
    }
    print_field("response", jstr(t, "response_id"));
    json_t *fr = json_object_get(t, "finish_reasons");
    if (json_array_size(fr)) {
        size_t i, o = 0;
        json_t *x;
        line[0] = '\0';
        json_array_foreach(fr, i, x) {
            if (o >= sizeof line)
                break;
            o += (size_t)snprintf(line + o, sizeof line - o, "%s%s", i ? ", " : "",
                                  json_string_value(x) ? json_string_value(x) : "?");
        }
        print_field("finish", line);
    }
    static const struct {
        const char *col, *label;
    } usage_cols[] = { { "input_tokens", "input" },           { "cache_read_tokens", "cache read" },
                       { "cache_creation_tokens", "cache write" }, { "output_tokens", "output" },
                       { "reasoning_tokens", "reasoning" } };
    size_t o = 0;
    line[0] = '\0';
    for (size_t i = 0; i < countof(usage_cols); i++)
        if (jnum(t, usage_cols[i].col, &v) && o < sizeof line)
            o += (size_t)snprintf(line + o, sizeof line - o, "%s%s %.0f", o ? ", " : "", usage_cols[i].label, v);
    print_field("tokens", line);
    fmt_cost(t, line, sizeof line);
    print_field("cost", line);
    if (jnum(t, "ttft_ms", &v)) {
        fmt_ms(v, line, sizeof line);
        print_field("first chunk", line);
    }
    if (jnum(t, "overhead_us", &v)) {
        snprintf(line, sizeof line, "%.0f us", v);
        print_field("overhead", line);
    }
    json_t *params = json_object_get(t, "params");
    if (json_object_size(params)) {
        char *p = json_dumps(params, JSON_COMPACT | JSON_REAL_PRECISION(15));
        print_field("params", p);
        free(p);
    }
    json_t *spans = json_object_get(t, "spans");
    if (json_array_size(spans)) {
        printf("\nspans\n");
        print_waterfall(spans, start, end);
    }
    json_t *scores = json_object_get(t, "scores");
    if (json_array_size(scores)) {
        printf("\nscores\n");
        size_t i;
        json_t *s;
        json_array_foreach(scores, i, s) {
            json_t *val = json_object_get(s, "value");
            char vs[128];
            if (json_is_string(val))
                snprintf(vs, sizeof vs, "%s", json_string_value(val));
            else if (json_is_boolean(val))
                snprintf(vs, sizeof vs, "%s", json_is_true(val) ? "true" : "false");
            else
                snprintf(vs, sizeof vs, "%g", json_number_value(val));
            printf("  %s = %s (%s, %s)%s%s%s\n", jstr(s, "name"), vs, jstr(s, "data_type"), jstr(s, "source"),
                   *jstr(s, "comment") ? " \"" : "", jstr(s, "comment"), *jstr(s, "comment") ? "\"" : "");
        }
    }
    static const char *content[] = { "input_messages", "output_messages" };
    for (size_t i = 0; i < countof(content); i++) {
        json_t *c = json_object_get(t, content[i]);
        if (!c || json_is_null(c))
            continue;
        printf("\n%s%s\n", i ? "output" : "input",
               json_is_true(json_object_get(t, "content_redacted"))    ? " (redacted)"
               : json_is_true(json_object_get(t, "content_truncated")) ? " (truncated)"
                                                                        : "");
        if (json_is_string(c))
            printf("  %s\n", json_string_value(c));
        else
            print_json_pretty(c);
    }
}

/* ---- commands ---- */

static int cmd_list(const source *s, const pair *pairs, size_t n, bool json)
{
    json_t *res;
    if (!fetch_list(s, pairs, n, &res))
        return 1;
    json_t *data = json_object_get(res, "data");
    if (json)
        print_json_pretty(res);
    else {
        print_header();
        size_t i;
        json_t *t;
        json_array_foreach(data, i, t) print_line(t);
        if (json_array_size(data) == 0)
            printf("(no traces match)\n");
        const char *next = json_string_value(json_object_get(res, "next_cursor"));
        if (next)
            printf("more: --cursor %s\n", next);
    }
    json_decref(res);
    return 0;
}

static int cmd_show(const source *s, const char *id, bool json)
{
    json_t *t;
    if (!fetch_trace(s, id, &t))
        return 1;
    if (json)
        print_json_pretty(t);
    else
        print_trace(t);
    json_decref(t);
    return 0;
}

typedef struct seen_id {
    long long start_ns;
    char id[33];
} seen_id;

typedef struct seen_set {
    seen_id *v;
    size_t n;
} seen_set;

static bool seen_has(const seen_set *s, const char *id)
{
    for (size_t i = s->n; i-- > 0;)
        if (!strcmp(s->v[i].id, id))
            return true;
    return false;
}

/* Remembers id; forgets ids that started before horizon, and the oldest
 * when full. */
static void seen_add(seen_set *s, const char *id, long long start_ns, long long horizon)
{
    size_t o = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].start_ns >= horizon)
            s->v[o++] = s->v[i];
    s->n = o;
    if (s->n == TAIL_SEEN_MAX) {
        memmove(s->v, s->v + 1, (s->n - 1) * sizeof *s->v);
        s->n--;
    }
    s->v[s->n].start_ns = start_ns;
    snprintf(s->v[s->n].id, sizeof s->v[s->n].id, "%s", id);
    s->n++;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    while (!stop_flag && nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* What a tail keeps between polls. */
typedef struct tail_state {
    const source *src;
    pair *pairs;                /* the user's filters, room for 3 more after them */
    size_t base;
    long long user_from;        /* ns, 0 = none */
    long long newest;           /* start_ns of the newest trace seen */
    seen_set seen;
    bool json;
    int failures;
} tail_state;

/* Lists the traces from the lookback horizon on, newest first page by page,
 * and prints (when print) those not seen yet, oldest first. False after too
 * many failures in a row. */
static bool tail_sweep(tail_state *ts, bool print)
{
    char limit[16], from[32], cursor[128] = "";
    long long horizon = ts->newest - TAIL_LOOKBACK_S * 1000000000LL;
    if (horizon < ts->user_from)
        horizon = ts->user_from;
    snprintf(limit, sizeof limit, "%d", QUERY_LIMIT_MAX);
    snprintf(from, sizeof from, "%lld", horizon > 0 ? horizon / 1000000 : 0);
    json_t *fresh = json_array(), *res;
    for (int page = 0; page < 20 && !stop_flag; page++) {
        size_t np = ts->base;
        ts->pairs[np++] = (pair){ "limit", limit };
        ts->pairs[np++] = (pair){ "from", from };
        if (cursor[0])
            ts->pairs[np++] = (pair){ "cursor", cursor };
        if (!fetch_list(ts->src, ts->pairs, np, &res)) {
            json_decref(fresh);
            return ++ts->failures < 10;
        }
        ts->failures = 0;
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(res, "data"), i, t) if (!seen_has(&ts->seen, jstr(t, "trace_id")))
            json_array_append(fresh, t);
        const char *next = json_string_value(json_object_get(res, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(res);
        if (!next)
            break;
    }
    for (size_t i = json_array_size(fresh); i-- > 0;) {
        json_t *t = json_array_get(fresh, i);
        long long st = json_integer_value(json_object_get(t, "start_ns"));
        if (print && ts->json)
            print_json_line(t);
        else if (print)
            print_line(t);
        ts->newest = MAX(ts->newest, st);
        seen_add(&ts->seen, jstr(t, "trace_id"), st, ts->newest - 2 * TAIL_LOOKBACK_S * 1000000000LL);
    }
    json_decref(fresh);
    fflush(stdout);
    return true;
}

static int cmd_tail(const source *s, pair *pairs, size_t n, int first, bool json)
{
    struct sigaction sa = { 0 };
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    tail_state ts = { .src = s, .pairs = pairs, .json = json, .newest = -1 };
    /* the user's filters stay; limit, from and cursor are the tail's */
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(pairs[i].name, "from")) {
            int64_t ns;
            if (!query_parse_time(sv_from(pairs[i].value), &ns)) {
                fprintf(stderr, "genaiops traces: 'from' must be unix milliseconds or an RFC 3339 time\n");
                return 2;
            }
            ts.user_from = ns;
        } else if (strcmp(pairs[i].name, "limit") && strcmp(pairs[i].name, "cursor"))
            pairs[ts.base++] = pairs[i];
    }
    ts.seen.v = calloc(TAIL_SEEN_MAX, sizeof(seen_id));
    if (!ts.seen.v)
        return 1;
    if (!json)
        print_header();
    /* the latest `first`, printed oldest first */
    char limit[16], from[32];
    snprintf(limit, sizeof limit, "%d", first > 0 ? first : 1);
    size_t np = ts.base;
    pairs[np++] = (pair){ "limit", limit };
    if (ts.user_from) {
        snprintf(from, sizeof from, "%lld", ts.user_from / 1000000);
        pairs[np++] = (pair){ "from", from };
    }
    json_t *res;
    if (!fetch_list(s, pairs, np, &res)) {
        free(ts.seen.v);
        return 1;
    }
    json_t *data = json_object_get(res, "data");
    for (size_t i = json_array_size(data); i-- > 0;) {
        json_t *t = json_array_get(data, i);
        long long st = json_integer_value(json_object_get(t, "start_ns"));
        if (first > 0 && json)
            print_json_line(t);
        else if (first > 0)
            print_line(t);
        ts.newest = MAX(ts.newest, st);
        seen_add(&ts.seen, jstr(t, "trace_id"), st, st - 2 * TAIL_LOOKBACK_S * 1000000000LL);
    }
    json_decref(res);
    fflush(stdout);
    int rc = 0;
    if (ts.newest < 0) { /* nothing yet: follow from now */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        ts.newest = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
    } else if (!tail_sweep(&ts, false)) /* older ones in the lookback window are not new */
        rc = 1;
    while (!stop_flag && rc == 0) {
        sleep_ms(TAIL_POLL_MS);
        if (!stop_flag && !tail_sweep(&ts, true))
            rc = 1;
    }
    free(ts.seen.v);
    return rc;
}

static const struct {
    const char *flag, *name;
} filter_flags[] = {
    { "--model", "model" },
    { "--provider", "provider" },
    { "--status", "status" },
    { "--deployment", "deployment" },
    { "--key", "key" },
    { "--from", "from" },
    { "--to", "to" },
    { "--min-latency-ms", "min_latency_ms" },
    { "--min-cost", "min_cost" },
    { "-q", "q" },
    { "--query", "q" },
    { "--limit", "limit" },
    { "--cursor", "cursor" },
};

int cli_traces(int argc, char **argv)
{
    if (argc < 2 || cli_flag(argv, 1, "-h") || cli_flag(argv, 1, "--help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "list") && strcmp(sub, "show") && strcmp(sub, "tail")) {
        fprintf(stderr, "genaiops traces: unknown subcommand '%s'\n\n%s", sub, usage);
        return 2;
    }
    pair pairs[MAX_PAIRS + 4];
    size_t n = 0;
    bool json = false;
    const char *config_path = NULL, *server = NULL, *admin_key = NULL, *id = NULL, *v;
    long first = 10;
    for (int i = 2; i < argc; i++) {
        bool matched = false;
        for (size_t k = 0; k < countof(filter_flags) && !matched; k++)
            if (cli_opt(argc, argv, &i, filter_flags[k].flag, &v)) {
                matched = true;
                if (!strcmp(sub, "show")) {
                    fprintf(stderr, "genaiops traces show: %s is a filter of list and tail\n", filter_flags[k].flag);
                    return 2;
                }
                for (size_t m = 0; m < n; m++)
                    if (!strcmp(pairs[m].name, filter_flags[k].name)) {
                        fprintf(stderr, "genaiops traces: %s is given more than once\n", filter_flags[k].flag);
                        return 2;
                    }
                if (n >= MAX_PAIRS)
                    return 2;
                pairs[n++] = (pair){ filter_flags[k].name, v };
            }
        if (matched)
            continue;
        if (cli_flag(argv, i, "--json"))
            json = true;
        else if (cli_flag(argv, i, "-h") || cli_flag(argv, i, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (cli_opt(argc, argv, &i, "--config", &config_path) || cli_opt(argc, argv, &i, "--server", &server) ||
                   cli_opt(argc, argv, &i, "--admin-key", &admin_key))
            ;
        else if (cli_opt(argc, argv, &i, "-n", &v)) {
            char *end;
            errno = 0;
            first = strtol(v, &end, 10);
            if (*end || errno || first < 0 || first > QUERY_LIMIT_MAX || strcmp(sub, "tail") != 0) {
                fprintf(stderr, "genaiops traces: -n is tail's, a count from 0 to %d\n", QUERY_LIMIT_MAX);
                return 2;
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "genaiops traces %s: unknown option '%s'\n", sub, argv[i]);
            return 2;
        } else if (!strcmp(sub, "show") && !id)
            id = argv[i];
        else {
            fprintf(stderr, "genaiops traces %s: unexpected argument '%s'\n", sub, argv[i]);
            return 2;
        }
    }
    if (!strcmp(sub, "show") && !id) {
        fprintf(stderr, "genaiops traces show: which trace? (genaiops traces show TRACE_ID)\n");
        return 2;
    }
    source src = { 0 };
    if (!server && !config_path) {
        const char *env = getenv("GENAIOPS_SERVER");
        server = env && *env ? env : NULL;
    }
    if (server) {
        src.server = server;
        src.admin_key = admin_key ? admin_key : getenv("GENAIOPS_ADMIN_KEY");
        curl_global_init(CURL_GLOBAL_DEFAULT);
    } else {
        src.cfg = cli_load_config(config_path);
        if (!src.cfg)
            return 1;
        src.store_url = src.cfg->store_url ? src.cfg->store_url : "sqlite://./genaiops.db";
    }
    int rc;
    if (!strcmp(sub, "list"))
        rc = cmd_list(&src, pairs, n, json);
    else if (!strcmp(sub, "show"))
        rc = cmd_show(&src, id, json);
    else
        rc = cmd_tail(&src, pairs, n, (int)first, json);
    if (src.cfg)
        config_free(src.cfg);
    if (server)
        curl_global_cleanup();
    query_shutdown();
    return rc;
}
