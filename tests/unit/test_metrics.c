/* test_metrics.c - the metrics module: sums across worker shards, bucket
 * placement, label folding, escaping, the exact text of a small exposition
 * (golden file), promtool on the rendered text, registered gauges, the OTLP
 * JSON body, concurrent recording, and hostile label values. */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "core/buf.h"
#include "observe/metrics.h"
#include "test.h"

/* A finished chat request: 100 ms, 200, the given model and provider. */
static trace_rec *req(const char *model, const char *provider)
{
    trace_rec *t = trace_new(0);
    if (!t)
        return NULL;
    snprintf(t->operation, sizeof t->operation, "chat");
    snprintf(t->request_model, sizeof t->request_model, "%s", model);
    snprintf(t->provider, sizeof t->provider, "%s", provider);
    t->start_ns = 1000000000000ull;
    t->end_ns = t->start_ns + 100000000ull;
    t->status = 200;
    t->overhead_ns = 30000;
    return t;
}

static char *render(void)
{
    buf b;
    buf_init(&b, 16 << 20);
    err_code rc = metrics_render_prometheus(&b);
    CHECK_INT(rc, ERR_OK);
    if (!b.p)
        buf_append(&b, "", 0);
    return buf_steal(&b, NULL);
}

/* The value of the sample line that starts with `prefix` followed by a
 * space, or -1 when there is none. */
static double sample(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

static int count_lines_starting(const char *text, const char *prefix)
{
    int c = 0;
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, prefix, n) == 0)
            c++;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return c;
}

/* Runs `promtool check metrics` on text; 1 ok, 0 failed, -1 no promtool. */
static int promtool_check(const char *text, char *diag, size_t diag_cap)
{
    const char *tool = getenv("PROMTOOL");
    char cmd[1024];
    if (!tool || !*tool) {
        if (system("command -v promtool >/dev/null 2>&1") != 0)
            return -1;
        tool = "promtool";
    } else if (access(tool, X_OK) != 0) {
        return -1;
    }
    char in[] = "/tmp/test_metrics_XXXXXX";
    int fd = mkstemp(in);
    if (fd < 0)
        return 0;
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len;
    close(fd);
    snprintf(cmd, sizeof cmd, "'%s' check metrics < %s > %s.out 2>&1", tool, in, in);
    int rc = ok ? system(cmd) : -1;
    char out[64];
    snprintf(out, sizeof out, "%s.out", in);
    FILE *f = fopen(out, "r");
    diag[0] = '\0';
    if (f) {
        size_t r = fread(diag, 1, diag_cap - 1, f);
        diag[r] = '\0';
        fclose(f);
    }
    unlink(in);
    unlink(out);
    return rc == 0 && diag[0] == '\0' ? 1 : 0;
}

static void check_promtool(const char *text)
{
    char diag[2048];
    int r = promtool_check(text, diag, sizeof diag);
    if (r < 0) {
        static bool said;
        if (!said)
            fprintf(stderr, "test_metrics: promtool not found (set PROMTOOL or install Debian's prometheus); skipping promtool checks\n");
        said = true;
        return;
    }
    if (r != 1)
        test_fail(__FILE__, __LINE__, "promtool check metrics failed: %s", diag);
}

TEST(metrics_sums_requests_across_worker_shards)
{
    CHECK_INT(metrics_init(4), ERR_OK);
    int workers[] = { 0, 1, 2, 3, 3, -1, 99 }; /* -1 and 99 go to the shared shard */
    for (size_t i = 0; i < countof(workers); i++) {
        trace_rec *t = req("gpt-4o", "openai");
        t->input_tokens = 10;
        t->output_tokens = 5;
        metrics_observe(workers[i], t);
        trace_free(t);
    }
    metrics_inflight(0, 1);
    metrics_inflight(1, 1);
    metrics_inflight(2, 1);
    metrics_inflight(1, -1);
    metrics_inflight(-5, 1);
    char *s = render();
    CHECK(sample(s, "genaiops_requests_total{model=\"gpt-4o\",provider=\"openai\",status=\"200\"}") == 7);
    CHECK(sample(s, "gen_ai_client_token_usage_count{gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\","
                    "gen_ai_request_model=\"gpt-4o\",gen_ai_token_type=\"input\"}") == 7);
    CHECK(sample(s, "gen_ai_client_token_usage_sum{gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\","
                    "gen_ai_request_model=\"gpt-4o\",gen_ai_token_type=\"output\"}") == 35);
    CHECK(sample(s, "gen_ai_client_operation_duration_seconds_sum{gen_ai_operation_name=\"chat\","
                    "gen_ai_provider_name=\"openai\",gen_ai_request_model=\"gpt-4o\"}") == 0.7);
    CHECK(sample(s, "genaiops_overhead_seconds_count") == 7);
    CHECK(sample(s, "genaiops_inflight_requests") == 3);
    /* no stream, no ttft: the family is announced but has no samples */
    CHECK(strstr(s, "# TYPE gen_ai_client_operation_time_to_first_chunk_seconds histogram\n") != NULL);
    CHECK_INT(count_lines_starting(s, "gen_ai_client_operation_time_to_first_chunk_seconds"), 0);
    check_promtool(s);
    free(s);
    metrics_shutdown();
}

TEST(metrics_bucket_placement_is_le)
{
    static const struct {
        int fam; /* 0 tokens, 1 duration (ns), 2 overhead (ns) */
        long long v;
        const char *le; /* the first bucket that counts it */
        const char *below; /* the bucket just before (must not count it), or NULL */
    } cases[] = {
        { 0, 0, "1", NULL },
        { 0, 1, "1", NULL },
        { 0, 2, "4", "1" },
        { 0, 4, "4", "1" },
        { 0, 5, "16", "4" },
        { 0, 67108864, "67108864", "16777216" },
        { 0, 67108865, "+Inf", "67108864" },
        { 1, 10000000, "0.01", NULL },
        { 1, 10000001, "0.02", "0.01" },
        { 1, 81920000000, "81.92", "40.96" },
        { 1, 81920000001, "+Inf", "81.92" },
        { 2, 0, "1e-05", NULL },
        { 2, 10000, "1e-05", NULL },
        { 2, 10001, "2.5e-05", "1e-05" },
        { 2, 999999999, "1", "0.25" },
        { 2, 1000000001, "+Inf", "1" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        metrics_init(1);
        trace_rec *t = req("m", "p");
        t->overhead_ns = 1;
        if (cases[i].fam == 0)
            t->input_tokens = cases[i].v;
        else if (cases[i].fam == 1)
            t->end_ns = t->start_ns + (uint64_t)cases[i].v;
        else
            t->overhead_ns = (uint64_t)cases[i].v;
        metrics_observe(0, t);
        trace_free(t);
        char *s = render();
        const char *name = cases[i].fam == 0 ? "gen_ai_client_token_usage_bucket{gen_ai_operation_name=\"chat\","
                                               "gen_ai_provider_name=\"p\",gen_ai_request_model=\"m\",gen_ai_token_type=\"input\","
                         : cases[i].fam == 1 ? "gen_ai_client_operation_duration_seconds_bucket{gen_ai_operation_name=\"chat\","
                                               "gen_ai_provider_name=\"p\",gen_ai_request_model=\"m\","
                                             : "genaiops_overhead_seconds_bucket{";
        char key[512];
        snprintf(key, sizeof key, "%sle=\"%s\"}", name, cases[i].le);
        if (sample(s, key) != 1)
            test_fail(__FILE__, __LINE__, "case %zu: %s is %g, expected 1", i, key, sample(s, key));
        if (cases[i].below) {
            snprintf(key, sizeof key, "%sle=\"%s\"}", name, cases[i].below);
            if (sample(s, key) != 0)
                test_fail(__FILE__, __LINE__, "case %zu: %s is %g, expected 0", i, key, sample(s, key));
        }
        free(s);
    }
    metrics_shutdown();
}

TEST(metrics_small_exposition_matches_golden)
{
    CHECK_INT(metrics_init(2), ERR_OK);
    trace_rec *t = req("gpt-4o", "openai");
    t->input_tokens = 12;
    t->output_tokens = 300;
    t->stream = true;
    t->ttft_ns = 250000000;
    t->cost_known = true;
    t->cost_usd = 0.00125;
    t->overhead_ns = 42000;
    span_rec *a = trace_add_span(t, SPAN_REQUEST, t->start_ns);
    a = trace_add_span(t, SPAN_ATTEMPT, t->start_ns);
    snprintf(a->provider, sizeof a->provider, "azure");
    snprintf(a->error_type, sizeof a->error_type, "429");
    a = trace_add_span(t, SPAN_ATTEMPT, t->start_ns);
    snprintf(a->provider, sizeof a->provider, "openai");
    a = trace_add_span(t, SPAN_GUARDRAIL, t->start_ns);
    snprintf(a->guard_policy, sizeof a->guard_policy, "pii-redact");
    snprintf(a->guard_detector, sizeof a->guard_detector, "pii");
    snprintf(a->guard_stage, sizeof a->guard_stage, "input");
    snprintf(a->guard_verdict, sizeof a->guard_verdict, "redact");
    snprintf(a->guard_mode, sizeof a->guard_mode, "enforce");
    a->guard_types[0] = 1 + 0; /* EMAIL */
    a->guard_counts[0] = 2;
    metrics_observe(1, t);
    trace_free(t);

    t = req("gpt-4o", "openai");
    t->end_ns = t->start_ns + 3000000000ull;
    t->status = 504;
    snprintf(t->error_type, sizeof t->error_type, "timeout");
    t->overhead_ns = 8000;
    metrics_observe(0, t);
    trace_free(t);
    metrics_inflight(0, 1);

    char *s = render();
    char *want = test_read_data("metrics/small.prom", NULL);
    if (want && strcmp(s, want) != 0) {
        test_fail(__FILE__, __LINE__, "exposition differs from tests/data/metrics/small.prom; got:\n%s", s);
    }
    check_promtool(s);
    free(want);
    free(s);
    metrics_shutdown();
}

TEST(metrics_fold_unknown_models_into_other)
{
    CHECK_INT(metrics_init(2), ERR_OK);
    int total = 0;
    /* 450 models: the first METRICS_FOLD_AT keep their name, the rest fold */
    for (int i = 0; i < 450; i++) {
        char model[64];
        snprintf(model, sizeof model, "client/invented-%d", i);
        trace_rec *t = req(model, "openai");
        metrics_observe(i % 2, t);
        trace_free(t);
        total++;
    }
    char *s = render();
    CHECK(sample(s, "genaiops_requests_total{model=\"client/invented-0\",provider=\"openai\",status=\"200\"}") == 1);
    CHECK(sample(s, "genaiops_requests_total{model=\"client/invented-399\",provider=\"openai\",status=\"200\"}") == 1);
    CHECK(sample(s, "genaiops_requests_total{model=\"client/invented-400\",provider=\"openai\",status=\"200\"}") == -1);
    CHECK(sample(s, "genaiops_requests_total{model=\"other\",provider=\"openai\",status=\"200\"}") == 50);
    CHECK_INT(count_lines_starting(s, "genaiops_requests_total{"), METRICS_FOLD_AT + 1);
    free(s);

    /* then distinct providers too: folded label sets fill the table to its
     * last slot, which is the all-"other" one; nothing is lost */
    for (int i = 0; i < 300; i++) {
        char model[64], prov[32];
        snprintf(model, sizeof model, "x-%d", i);
        snprintf(prov, sizeof prov, "prov-%d", i);
        trace_rec *t = req(model, prov);
        metrics_observe(0, t);
        trace_free(t);
        total++;
    }
    s = render();
    CHECK_INT(count_lines_starting(s, "genaiops_requests_total{"), METRICS_MAX_SERIES);
    CHECK(sample(s, "genaiops_requests_total{model=\"other\",provider=\"other\",status=\"other\"}") > 0);
    double sum = 0;
    for (const char *p = s; (p = strstr(p, "\ngenaiops_requests_total{")) != NULL; p++)
        sum += strtod(strchr(p, '}') + 2, NULL);
    CHECK(sum == total);
    CHECK(sample(s, "genaiops_overhead_seconds_count") == total);
    check_promtool(s);
    free(s);
    metrics_shutdown();
}

TEST(metrics_escapes_label_values_and_replaces_bad_utf8)
{
    static const struct {
        const char *model;
        const char *rendered;
    } cases[] = {
        { "a\"b", "a\\\"b" },
        { "back\\slash", "back\\\\slash" },
        { "line\nbreak", "line\\nbreak" },
        { "\\\"\n", "\\\\\\\"\\n" },
        { "caf\xc3\xa9", "caf\xc3\xa9" },                 /* valid UTF-8 kept */
        { "bad\xff", "bad\xef\xbf\xbd" },                 /* invalid byte */
        { "cut\xe2\x82", "cut\xef\xbf\xbd\xef\xbf\xbd" }, /* truncated sequence */
        { "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },       /* overlong */
        { "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* surrogate */
        { "", "" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        metrics_init(1);
        trace_rec *t = req(cases[i].model, "p");
        metrics_observe(0, t);
        trace_free(t);
        char *s = render();
        char want[256];
        snprintf(want, sizeof want, "genaiops_requests_total{model=\"%s\",provider=\"p\",status=\"200\"} 1\n",
                 cases[i].rendered);
        if (!strstr(s, want))
            test_fail(__FILE__, __LINE__, "case %zu: no line %s", i, want);
        check_promtool(s);
        free(s);
    }
    metrics_shutdown();
}

TEST(metrics_upstream_errors_and_retries_from_attempt_spans)
{
    CHECK_INT(metrics_init(1), ERR_OK);
    trace_rec *t = req("m", "b");
    trace_add_span(t, SPAN_REQUEST, t->start_ns);
    const char *provs[] = { "a", "a", "b" };
    const char *errs[] = { "timeout", "429", "" };
    for (int i = 0; i < 3; i++) {
        span_rec *sp = trace_add_span(t, SPAN_ATTEMPT, t->start_ns);
        snprintf(sp->provider, sizeof sp->provider, "%s", provs[i]);
        snprintf(sp->error_type, sizeof sp->error_type, "%s", errs[i]);
    }
    t->attempts = 3;
    metrics_observe(0, t);
    trace_free(t);
    /* no spans: the attempts field counts */
    t = req("m", "c");
    t->attempts = 4;
    metrics_observe(0, t);
    trace_free(t);
    char *s = render();
    CHECK(sample(s, "genaiops_upstream_errors_total{provider=\"a\",error_type=\"timeout\"}") == 1);
    CHECK(sample(s, "genaiops_upstream_errors_total{provider=\"a\",error_type=\"429\"}") == 1);
    CHECK(sample(s, "genaiops_upstream_errors_total{provider=\"b\",error_type=\"\"}") == -1);
    CHECK(sample(s, "genaiops_upstream_retries_total{provider=\"a\"}") == 1); /* the first attempt is no retry */
    CHECK(sample(s, "genaiops_upstream_retries_total{provider=\"b\"}") == 1);
    CHECK(sample(s, "genaiops_upstream_retries_total{provider=\"c\"}") == 3);
    free(s);
    metrics_shutdown();
}

/* Guardrail checks are counted by their labels through a small cache keyed
 * by span_rec.guard_key: 40 label sets (more than the cache holds, so
 * slots are shared and taken over) observed in a shuffled order each count
 * exactly; a span without a key counts by its labels too. */
TEST(metrics_guardrail_checks_by_key)
{
    CHECK_INT(metrics_init(1), ERR_OK);
    enum { NSETS = 40, ROUNDS = 5 };
    for (int r = 0; r < ROUNDS; r++) {
        trace_rec *t = req("m", "p");
        trace_add_span(t, SPAN_REQUEST, t->start_ns);
        for (int k = 0; k < NSETS; k++) {
            int i = (k * 7 + r * 3) % NSETS; /* every set once per round, in another order */
            span_rec *sp = trace_add_span(t, SPAN_GUARDRAIL, t->start_ns);
            if (!sp) { /* a full trace: observe it and start another */
                metrics_observe(0, t);
                trace_free(t);
                t = req("m", "p");
                trace_add_span(t, SPAN_REQUEST, t->start_ns);
                sp = trace_add_span(t, SPAN_GUARDRAIL, t->start_ns);
            }
            snprintf(sp->guard_policy, sizeof sp->guard_policy, "policy-%d", i);
            snprintf(sp->guard_detector, sizeof sp->guard_detector, "pii");
            snprintf(sp->guard_stage, sizeof sp->guard_stage, "input");
            snprintf(sp->guard_verdict, sizeof sp->guard_verdict, i % 2 ? "pass" : "redact");
            snprintf(sp->guard_mode, sizeof sp->guard_mode, "enforce");
            sp->guard_key = i == 0 ? 0 : ((uint64_t)9 << 32) | (uint64_t)i << 16;
        }
        metrics_observe(0, t);
        trace_free(t);
    }
    char *s = render();
    for (int i = 0; i < NSETS; i++) {
        char name[200];
        snprintf(name, sizeof name,
                 "genaiops_guardrail_checks_total{policy=\"policy-%d\",detector=\"pii\",stage=\"input\",verdict=\"%s\","
                 "mode=\"enforce\"}",
                 i, i % 2 ? "pass" : "redact");
        if (sample(s, name) != ROUNDS)
            test_fail(__FILE__, __LINE__, "%s: %g, expected %d", name, sample(s, name), ROUNDS);
    }
    CHECK_INT(count_lines_starting(s, "genaiops_guardrail_checks_total{"), NSETS);
    free(s);
    metrics_shutdown();
}

TEST(metrics_failed_request_duration_has_error_type)
{
    CHECK_INT(metrics_init(1), ERR_OK);
    trace_rec *t = req("m", "p");
    t->status = 502; /* no error_type: the status stands in */
    metrics_observe(0, t);
    trace_free(t);
    t = req("m", "p");
    t->status = 200;
    metrics_observe(0, t);
    trace_free(t);
    char *s = render();
    CHECK(sample(s, "gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name=\"chat\","
                    "gen_ai_provider_name=\"p\",gen_ai_request_model=\"m\",error_type=\"502\"}") == 1);
    CHECK(sample(s, "gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name=\"chat\","
                    "gen_ai_provider_name=\"p\",gen_ai_request_model=\"m\"}") == 1);
    CHECK(sample(s, "genaiops_requests_total{model=\"m\",provider=\"p\",status=\"502\"}") == 1);
    /* unknown usage (-1) records no token usage; negative/NaN cost is ignored */
    CHECK_INT(count_lines_starting(s, "gen_ai_client_token_usage"), 0);
    free(s);
    metrics_shutdown();
}

static double read_val(void *ud) { return *(double *)ud; }

TEST(metrics_registered_gauges_are_read_at_scrape)
{
    CHECK_INT(metrics_init(1), ERR_OK);
    double depth = 3, drops = 7;
    metrics_register_gauge("genaiops_trace_queue_depth", "Traces waiting for the writer.", read_val, &depth, false);
    metrics_register_gauge("genaiops_traces_dropped_total", "Traces dropped.\nFull queue \\ store down.", read_val, &drops, true);
    metrics_register_gauge("bad name", "x", read_val, &depth, false);          /* refused */
    metrics_register_gauge("9starts_with_digit", "x", read_val, &depth, false); /* refused */
    metrics_register_gauge("genaiops_trace_queue_depth", "dup", read_val, &depth, false); /* refused */
    metrics_register_gauge("genaiops_requests_total", "clash", read_val, &depth, true);  /* refused */
    metrics_register_gauge("no_reader", "x", NULL, NULL, false);                   /* refused */
    depth = 5;
    char *s = render();
    CHECK(strstr(s, "# HELP genaiops_trace_queue_depth Traces waiting for the writer.\n"
                    "# TYPE genaiops_trace_queue_depth gauge\ngenaiops_trace_queue_depth 5\n") != NULL);
    CHECK(strstr(s, "# HELP genaiops_traces_dropped_total Traces dropped.\\nFull queue \\\\ store down.\n"
                    "# TYPE genaiops_traces_dropped_total counter\ngenaiops_traces_dropped_total 7\n") != NULL);
    CHECK_INT(count_lines_starting(s, "# TYPE genaiops_trace_queue_depth"), 1);
    CHECK_INT(count_lines_starting(s, "# TYPE genaiops_requests_total"), 1);
    CHECK(strstr(s, "bad name") == NULL && strstr(s, "starts_with_digit") == NULL && strstr(s, "no_reader") == NULL);
    check_promtool(s);
    free(s);
    metrics_shutdown();
}

TEST(metrics_render_refuses_past_buffer_max)
{
    CHECK_INT(metrics_init(1), ERR_OK);
    trace_rec *t = req("m", "p");
    metrics_observe(0, t);
    trace_free(t);
    buf b;
    buf_init(&b, 200);
    CHECK_INT(metrics_render_prometheus(&b), ERR_TOOBIG);
    CHECK(b.len <= 200);
    buf_free(&b);
    buf_init(&b, 200);
    CHECK_INT(metrics_render_otlp_json(&b, "1.2.3"), ERR_TOOBIG);
    buf_free(&b);
    metrics_shutdown();
}

TEST(metrics_calls_without_init_do_nothing)
{
    metrics_shutdown();
    trace_rec *t = req("m", "p");
    metrics_observe(0, t);
    metrics_inflight(0, 1);
    metrics_register_gauge("x", "y", read_val, NULL, false);
    trace_free(t);
    buf b;
    buf_init(&b, 1 << 20);
    CHECK_INT(metrics_render_prometheus(&b), ERR_OK);
    CHECK_INT(b.len, 0);
    buf_free(&b);
    CHECK_INT(metrics_init(1), ERR_OK);
    metrics_observe(0, NULL);
    metrics_shutdown();
}

static json_t *find_metric(json_t *metrics, const char *name)
{
    size_t i;
    json_t *m;
    json_array_foreach(metrics, i, m)
        if (strcmp(json_string_value(json_object_get(m, "name")) ?: "", name) == 0)
            return m;
    return NULL;
}

TEST(metrics_otlp_json_body)
{
    CHECK_INT(metrics_init(2), ERR_OK);
    double depth = 2;
    metrics_register_gauge("genaiops_trace_queue_depth", "Traces waiting.", read_val, &depth, false);
    trace_rec *t = req("gpt-4o", "openai");
    t->input_tokens = 3;
    t->output_tokens = 20;
    t->cost_known = true;
    t->cost_usd = 0.5;
    metrics_observe(1, t);
    metrics_observe(0, t);
    trace_free(t);
    metrics_inflight(1, 1);
    buf b;
    buf_init(&b, 1 << 20);
    CHECK_INT(metrics_render_otlp_json(&b, "9.9.9"), ERR_OK);
    json_error_t jerr;
    json_t *root = json_loadb(b.p, b.len, 0, &jerr);
    CHECK(root != NULL);
    json_t *rm = json_array_get(json_object_get(root, "resourceMetrics"), 0);
    json_t *attrs = json_object_get(json_object_get(rm, "resource"), "attributes");
    CHECK_STR(json_string_value(json_object_get(json_array_get(attrs, 0), "key")), "service.name");
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_array_get(attrs, 1), "value"), "stringValue")), "9.9.9");
    json_t *sm = json_array_get(json_object_get(rm, "scopeMetrics"), 0);
    CHECK_STR(json_string_value(json_object_get(json_object_get(sm, "scope"), "name")), "genaiops");
    json_t *metrics = json_object_get(sm, "metrics");

    json_t *tok = find_metric(metrics, "gen_ai.client.token.usage");
    CHECK(tok != NULL);
    CHECK_STR(json_string_value(json_object_get(tok, "unit")), "{token}");
    json_t *h = json_object_get(tok, "histogram");
    CHECK_INT(json_integer_value(json_object_get(h, "aggregationTemporality")), 2);
    json_t *dps = json_object_get(h, "dataPoints");
    CHECK_INT(json_array_size(dps), 2);
    json_t *dp = json_array_get(dps, 0);
    CHECK_STR(json_string_value(json_object_get(dp, "count")), "2");
    CHECK(json_real_value(json_object_get(dp, "sum")) == 6);
    CHECK_INT(json_array_size(json_object_get(dp, "bucketCounts")), json_array_size(json_object_get(dp, "explicitBounds")) + 1);
    CHECK_STR(json_string_value(json_array_get(json_object_get(dp, "bucketCounts"), 1)), "2"); /* 3 tokens: le 4 */
    json_t *a0 = json_array_get(json_object_get(dp, "attributes"), 0);
    CHECK_STR(json_string_value(json_object_get(a0, "key")), "gen_ai.operation.name");
    CHECK_STR(json_string_value(json_object_get(json_object_get(a0, "value"), "stringValue")), "chat");
    CHECK(json_is_string(json_object_get(dp, "startTimeUnixNano")) && json_is_string(json_object_get(dp, "timeUnixNano")));

    json_t *dur = find_metric(metrics, "gen_ai.client.operation.duration");
    CHECK_STR(json_string_value(json_object_get(dur, "unit")), "s");
    dp = json_array_get(json_object_get(json_object_get(dur, "histogram"), "dataPoints"), 0);
    CHECK(json_real_value(json_array_get(json_object_get(dp, "explicitBounds"), 0)) == 0.01);
    CHECK(json_real_value(json_object_get(dp, "sum")) == 0.2);

    json_t *reqs = find_metric(metrics, "genaiops.requests");
    json_t *sum = json_object_get(reqs, "sum");
    CHECK(json_is_true(json_object_get(sum, "isMonotonic")));
    dp = json_array_get(json_object_get(sum, "dataPoints"), 0);
    CHECK_STR(json_string_value(json_object_get(dp, "asInt")), "2");
    json_t *st = json_array_get(json_object_get(dp, "attributes"), 2);
    CHECK_STR(json_string_value(json_object_get(st, "key")), "http.response.status_code");
    CHECK_INT(json_integer_value(json_object_get(json_object_get(st, "value"), "intValue")), 200);

    json_t *cost = find_metric(metrics, "genaiops.cost");
    dp = json_array_get(json_object_get(json_object_get(cost, "sum"), "dataPoints"), 0);
    CHECK(json_real_value(json_object_get(dp, "asDouble")) == 1.0);

    json_t *inflight = find_metric(metrics, "genaiops.inflight_requests");
    sum = json_object_get(inflight, "sum");
    CHECK(json_is_false(json_object_get(sum, "isMonotonic")));
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(sum, "dataPoints"), 0), "asInt")), "1");

    json_t *g = find_metric(metrics, "genaiops_trace_queue_depth");
    dp = json_array_get(json_object_get(json_object_get(g, "gauge"), "dataPoints"), 0);
    CHECK(json_real_value(json_object_get(dp, "asDouble")) == 2);
    json_decref(root);
    buf_free(&b);
    metrics_shutdown();
}

typedef struct hammer_arg {
    int worker;
    int n;
} hammer_arg;

static void *hammer(void *p)
{
    hammer_arg *a = p;
    trace_rec *t = req("m", "p");
    for (int i = 0; i < a->n; i++) {
        snprintf(t->request_model, sizeof t->request_model, "m%d", i % 7);
        t->input_tokens = i % 100;
        metrics_inflight(a->worker, 1);
        metrics_observe(a->worker, t);
        metrics_inflight(a->worker, -1);
    }
    trace_free(t);
    return NULL;
}

TEST(metrics_concurrent_workers_and_scrapes)
{
    enum { NW = 4, N = 20000 };
    CHECK_INT(metrics_init(NW), ERR_OK);
    pthread_t th[NW + 1];
    hammer_arg args[NW + 1];
    for (int i = 0; i <= NW; i++) { /* the last one shares the mutexed shard */
        args[i] = (hammer_arg){ i < NW ? i : -1, N };
        pthread_create(&th[i], NULL, hammer, &args[i]);
    }
    for (int k = 0; k < 20; k++) { /* scrape while they record */
        char *s = render();
        free(s);
    }
    for (int i = 0; i <= NW; i++)
        pthread_join(th[i], NULL);
    char *s = render();
    CHECK(sample(s, "genaiops_overhead_seconds_count") == (NW + 1) * N);
    CHECK(sample(s, "genaiops_inflight_requests") == 0);
    double sum = 0;
    for (const char *p = s; (p = strstr(p, "\ngenaiops_requests_total{")) != NULL; p++)
        sum += strtod(strchr(p, '}') + 2, NULL);
    CHECK(sum == (NW + 1) * N);
    free(s);
    metrics_shutdown();
}

/* Every line is a comment or `name{...} value` / `name value`. */
static bool well_formed(const char *s)
{
    for (const char *p = s; *p;) {
        const char *e = strchr(p, '\n');
        if (!e)
            return false;
        if (*p != '#') {
            const char *sp = e;
            while (sp > p && sp[-1] != ' ')
                sp--;
            if (sp == p || strtod(sp, NULL) < 0)
                return false;
            for (const char *q = p; q < sp - 1; q++)
                if (*q == '\n')
                    return false;
        }
        p = e + 1;
    }
    return true;
}

TEST(metrics_hostile_label_values)
{
    CHECK_INT(metrics_init(1), ERR_OK);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    trace_rec *t = trace_new(0);
    for (int round = 0; round < 300; round++) {
        /* random bytes, and fields filled to the end with no NUL */
        char *fields[] = { t->request_model, t->provider, t->operation, t->error_type };
        size_t caps[] = { sizeof t->request_model, sizeof t->provider, sizeof t->operation, sizeof t->error_type };
        for (int f = 0; f < 4; f++)
            for (size_t i = 0; i < caps[f]; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                fields[f][i] = (char)(round % 3 == 0 ? (x & 1 ? '"' : '\\') : (x >> 11));
            }
        t->status = (int)(x % 2000) - 500;
        t->input_tokens = (long long)(x >> 3) - (long long)(x >> 2);
        t->cost_known = true;
        t->cost_usd = round % 5 == 0 ? NAN : -1.0;
        t->nspans = (int)(x % 40) - 10; /* out of range either way */
        t->stream = true;
        t->ttft_ns = x;
        t->end_ns = x;
        metrics_observe(round % 2, t);
    }
    trace_free(t);
    char *s = render();
    CHECK(well_formed(s));
    check_promtool(s);
    free(s);
    buf b;
    buf_init(&b, 64 << 20);
    CHECK_INT(metrics_render_otlp_json(&b, "v"), ERR_OK);
    json_t *root = json_loadb(b.p, b.len, 0, NULL);
    CHECK(root != NULL);
    json_decref(root);
    buf_free(&b);
    metrics_shutdown();
}

/* The per-shard memo of the last request's series: alternating label sets
 * on one worker, with and without tokens and cost, count exactly where the
 * uncached path would, and a series appears only once it counted. */
TEST(metrics_memo_follows_changing_labels)
{
    CHECK_INT(metrics_init(1), ERR_OK);
    const char *models[] = { "a", "b", "a", "a", "b", "c", "a" };
    for (size_t i = 0; i < countof(models); i++) {
        trace_rec *t = req(models[i], "p");
        if (models[i][0] != 'c') { /* c: no usage, no cost */
            t->input_tokens = (long long)(i + 1);
            t->output_tokens = 1;
            t->cost_known = true;
            t->cost_usd = 0.5;
        }
        if (i == 3)
            t->status = 500; /* another status: its own requests series */
        metrics_observe(0, t);
        trace_free(t);
    }
    char *s = render();
    CHECK(sample(s, "genaiops_requests_total{model=\"a\",provider=\"p\",status=\"200\"}") == 3);
    CHECK(sample(s, "genaiops_requests_total{model=\"a\",provider=\"p\",status=\"500\"}") == 1);
    CHECK(sample(s, "genaiops_requests_total{model=\"b\",provider=\"p\",status=\"200\"}") == 2);
    CHECK(sample(s, "genaiops_requests_total{model=\"c\",provider=\"p\",status=\"200\"}") == 1);
    /* input tokens of a: 1 + 3 + 4 + 7 */
    CHECK(sample(s, "gen_ai_client_token_usage_sum{gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"p\","
                    "gen_ai_request_model=\"a\",gen_ai_token_type=\"input\"}") == 15);
    CHECK(sample(s, "genaiops_cost_usd_total{model=\"b\",provider=\"p\"}") == 1.0);
    CHECK(strstr(s, "gen_ai_request_model=\"c\",gen_ai_token_type") == NULL);
    CHECK(strstr(s, "genaiops_cost_usd_total{model=\"c\"") == NULL);
    CHECK(sample(s, "genaiops_overhead_seconds_count") == 7);
    check_promtool(s);
    free(s);
    metrics_shutdown();
}
