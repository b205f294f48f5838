/*
 * test_api_stats.c - the statistics behind /api/v1/stats (store/stats.c):
 * the query-string parameters (defaults, relative and absolute times,
 * bucket sizes, the 1,000-bucket cap, every refusal naming its parameter),
 * the automatic bucket, the bucket layout, the percentile histogram against
 * exact nearest-rank percentiles, and both aggregations against a real
 * store (schema by store_open) filled with rows whose sums, buckets, groups
 * and guardrail spans are known here: zero-filled buckets, the partial
 * first bucket, "(none)" and "(other)" groups, spans in the store's compact
 * layout and in another one, a look-alike "kind" inside attributes, and
 * store errors (missing file, no tables).
 */
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "store/stats.h"
#include "store/store.h"
#include "test.h"

#define S 1000000000LL
#define NOW (1732181400LL * S) /* 2024-11-21T09:30:00Z */

static err_code parse(stats_params *p, stats_kind k, const char *q, query_error *e)
{
    memset(e, 0, sizeof *e);
    return stats_params_parse(p, k, sv_from(q), NOW, e);
}

/* ---- parameters ---- */

TEST(stats_params_defaults)
{
    stats_params p;
    query_error e;
    CHECK_INT(parse(&p, STATS_OVERVIEW, "", &e), ERR_OK);
    CHECK(p.to_ns == NOW);
    CHECK(p.from_ns == NOW - 86400 * S);
    CHECK(p.bucket_auto);
    CHECK(p.bucket_ns == 900 * S);          /* 24h -> 15m: 96 buckets */
    CHECK_INT(p.nbuckets, 96);              /* NOW is on a 15-minute boundary */
    CHECK(p.start_ns == p.from_ns);
    CHECK_INT(p.by, STATS_BY_NONE);
    CHECK_STR(p.model, "");
    /* empty values and empty pairs are the defaults too */
    CHECK_INT(parse(&p, STATS_OVERVIEW, "from=&to=&bucket=&by=&&model=", &e), ERR_OK);
    CHECK(p.from_ns == NOW - 86400 * S && p.bucket_ns == 900 * S);
}

TEST(stats_params_times)
{
    stats_params p;
    query_error e;
    CHECK_INT(parse(&p, STATS_OVERVIEW, "from=15m", &e), ERR_OK);
    CHECK(p.from_ns == NOW - 900 * S && p.to_ns == NOW);
    CHECK(p.bucket_ns == 60 * S);
    CHECK_INT(p.nbuckets, 15);
    CHECK_INT(parse(&p, STATS_OVERVIEW, "from=7d&to=now", &e), ERR_OK);
    CHECK(p.from_ns == NOW - 7 * 86400 * S);
    CHECK(p.bucket_ns == 21600 * S); /* 28 buckets of 6h, nearer 60 by ratio than 168 of 1h */
    CHECK_INT(parse(&p, STATS_OVERVIEW, "from=2h&to=1h", &e), ERR_OK);
    CHECK(p.from_ns == NOW - 7200 * S && p.to_ns == NOW - 3600 * S);
    CHECK_INT(parse(&p, STATS_OVERVIEW, "from=2024-11-21T08:00:00Z&to=2024-11-21T09:00:00%2B00:00", &e), ERR_OK);
    CHECK(p.from_ns == NOW - 5400 * S && p.to_ns == NOW - 1800 * S);
    CHECK_INT(parse(&p, STATS_OVERVIEW, "from=1732170600000&to=1732174200000", &e), ERR_OK);
    CHECK(p.from_ns == 1732170600LL * S && p.to_ns == 1732174200LL * S);
    CHECK_INT(parse(&p, STATS_GUARDRAILS, "from=2024-11-20", &e), ERR_OK);
    CHECK(p.from_ns == 1732060800LL * S);
}

TEST(stats_params_bucket)
{
    stats_params p;
    query_error e;
    CHECK_INT(parse(&p, STATS_OVERVIEW, "from=1h&bucket=5m", &e), ERR_OK);
    CHECK(!p.bucket_auto && p.bucket_ns == 300 * S);
    CHECK_INT(p.nbuckets, 12);
    CHECK_INT(parse(&p, STATS_OVERVIEW, "from=1h&bucket=auto", &e), ERR_OK);
    CHECK(p.bucket_ns == 60 * S);
    /* exactly 1,000 buckets pass, 1,001 do not */
    CHECK_INT(parse(&p, STATS_OVERVIEW, "from=1000s&bucket=1s", &e), ERR_OK);
    CHECK_INT(p.nbuckets, 1000);
    CHECK_INT(parse(&p, STATS_OVERVIEW, "from=1001s&bucket=1s", &e), ERR_INVAL);
    CHECK_STR(e.param, "bucket");
    CHECK(strstr(e.message, "1001 buckets") != NULL);
    CHECK_INT(parse(&p, STATS_GUARDRAILS, "from=30d&bucket=1m", &e), ERR_INVAL);
    CHECK_STR(e.param, "bucket");
}

TEST(stats_params_unaligned_from)
{
    stats_params p;
    query_error e;
    /* 09:29:30 to 09:30:00 in 1-minute buckets: one bucket, from 09:29:00 */
    CHECK_INT(parse(&p, STATS_OVERVIEW, "from=30s&bucket=1m", &e), ERR_OK);
    CHECK(p.from_ns == NOW - 30 * S);
    CHECK(p.start_ns == NOW - 60 * S);
    CHECK_INT(p.nbuckets, 1);
    /* 09:29:30 to 09:31:00: two */
    CHECK_INT(parse(&p, STATS_OVERVIEW, "from=30s&to=1732181460000&bucket=1m", &e), ERR_OK);
    CHECK_INT(p.nbuckets, 2);
}

TEST(stats_params_by_and_filters)
{
    stats_params p;
    query_error e;
    CHECK_INT(parse(&p, STATS_OVERVIEW, "by=model&model=gpt-4o&deployment=prod&provider=open%20ai", &e), ERR_OK);
    CHECK_INT(p.by, STATS_BY_MODEL);
    CHECK_STR(p.model, "gpt-4o");
    CHECK_STR(p.deployment, "prod");
    CHECK_STR(p.provider, "open ai");
    CHECK_INT(parse(&p, STATS_OVERVIEW, "by=deployment", &e), ERR_OK);
    CHECK_INT(p.by, STATS_BY_DEPLOYMENT);
    CHECK_INT(parse(&p, STATS_OVERVIEW, "by=provider", &e), ERR_OK);
    CHECK_INT(p.by, STATS_BY_PROVIDER);
    CHECK_INT(parse(&p, STATS_OVERVIEW, "by=none", &e), ERR_OK);
    CHECK_INT(p.by, STATS_BY_NONE);
    CHECK_INT(parse(&p, STATS_GUARDRAILS, "policy=pii-redact&detector=pii&stage=input&verdict=redact", &e), ERR_OK);
    CHECK_STR(p.policy, "pii-redact");
    CHECK_STR(p.detector, "pii");
    CHECK_STR(p.stage, "input");
    CHECK_STR(p.verdict, "redact");
}

static const struct bad_case {
    stats_kind kind;
    const char *query;
    const char *param;
} bad_cases[] = {
    { STATS_OVERVIEW, "from=yesterday", "from" },
    { STATS_OVERVIEW, "to=15x", "to" },
    { STATS_OVERVIEW, "from=0m", "from" },
    { STATS_OVERVIEW, "from=-5m", "from" },
    { STATS_OVERVIEW, "from=1h&to=2h", "from" },           /* from after to */
    { STATS_OVERVIEW, "from=now", "from" },                /* from == to */
    { STATS_OVERVIEW, "from=4000d", "from" },
    { STATS_OVERVIEW, "from=1970-01-01", "from" },         /* more than ten years */
    { STATS_OVERVIEW, "bucket=0s", "bucket" },
    { STATS_OVERVIEW, "bucket=500ms", "bucket" },
    { STATS_OVERVIEW, "bucket=1.5h", "bucket" },
    { STATS_OVERVIEW, "bucket=99999999999999d", "bucket" },
    { STATS_OVERVIEW, "by=key", "by" },
    { STATS_OVERVIEW, "by=MODEL", "by" },
    { STATS_OVERVIEW, "policy=x", "policy" },              /* a guardrail parameter */
    { STATS_OVERVIEW, "limit=5", "limit" },
    { STATS_OVERVIEW, "from=1h&from=2h", "from" },
    { STATS_OVERVIEW, "model=a&model=b", "model" },
    { STATS_OVERVIEW, "from=%zz", "from" },
    { STATS_OVERVIEW, "model=a%00b", "model" },
    { STATS_GUARDRAILS, "by=model", "by" },
    { STATS_GUARDRAILS, "stage=inputs", "stage" },
    { STATS_GUARDRAILS, "verdict=allow", "verdict" },
    { STATS_GUARDRAILS, "model=x", "model" },
};

TEST(stats_params_refusals_name_the_parameter)
{
    for (size_t i = 0; i < countof(bad_cases); i++) {
        stats_params p;
        query_error e;
        err_code r = parse(&p, bad_cases[i].kind, bad_cases[i].query, &e);
        if (r != ERR_INVAL || e.status != 400 || strcmp(e.param, bad_cases[i].param) != 0 || !e.message[0] ||
            strcmp(e.code, "invalid_parameter") != 0)
            test_fail(__FILE__, __LINE__, "'%s': r=%d status=%d param='%s' code='%s' message='%s'", bad_cases[i].query,
                      (int)r, e.status, e.param, e.code, e.message);
    }
}

TEST(stats_params_long_and_odd_names)
{
    stats_params p;
    query_error e;
    char q[600];
    memset(q, 0, sizeof q);
    memcpy(q, "model=", 6);
    memset(q + 6, 'm', STATS_TEXT_MAX);
    CHECK_INT(parse(&p, STATS_OVERVIEW, q, &e), ERR_OK);
    CHECK_INT(strlen(p.model), STATS_TEXT_MAX);
    q[6 + STATS_TEXT_MAX] = 'm';
    CHECK_INT(parse(&p, STATS_OVERVIEW, q, &e), ERR_INVAL);
    CHECK_STR(e.param, "model");
    /* a name with bytes that cannot be shown is shown with '?' */
    CHECK_INT(parse(&p, STATS_OVERVIEW, "%01x=1", &e), ERR_INVAL);
    CHECK_STR(e.param, "?x");
    CHECK_INT(parse(&p, STATS_OVERVIEW, "%zz=1", &e), ERR_INVAL);
    CHECK_STR(e.param, "%zz");
    CHECK_INT(parse(&p, STATS_OVERVIEW, "=1&by", &e), ERR_OK); /* no name: skipped; "by" alone: default */
}

TEST(stats_durations)
{
    static const struct {
        const char *s;
        long long secs; /* -1 = refused */
    } cases[] = {
        { "1s", 1 }, { "90s", 90 }, { "15m", 900 }, { "24h", 86400 }, { "7d", 604800 }, { "2w", 1209600 },
        { "s", -1 }, { "0s", -1 }, { "1", -1 }, { "1y", -1 }, { "1 h", -1 }, { "-1h", -1 }, { "1H", -1 },
        { "3660d", 3660LL * 86400 }, { "3661d", -1 }, { "9999999999999s", -1 }, { "", -1 },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        int64_t ns = 0;
        bool ok = stats_parse_duration(sv_from(cases[i].s), &ns);
        if (ok != (cases[i].secs >= 0) || (ok && ns != cases[i].secs * S))
            test_fail(__FILE__, __LINE__, "'%s': ok=%d ns=%lld", cases[i].s, ok, (long long)ns);
    }
}

TEST(stats_auto_bucket_table)
{
    static const struct {
        long long span_s, bucket_s;
    } cases[] = {
        { 60, 60 },           { 900, 60 },           { 3600, 60 },         { 4 * 3600, 300 },
        { 6 * 3600, 300 },    { 12 * 3600, 900 },    { 86400, 900 },       { 3 * 86400, 3600 },
        { 7 * 86400, 21600 }, { 30 * 86400, 21600 }, { 90 * 86400, 86400 }, { 365 * 86400, 7 * 86400 },
        { 3650LL * 86400, 61 * 86400 },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        int64_t b = stats_auto_bucket(cases[i].span_s * S);
        if (b != cases[i].bucket_s * S)
            test_fail(__FILE__, __LINE__, "span %llds: bucket %llds, expected %llds", cases[i].span_s,
                      (long long)(b / S), cases[i].bucket_s);
        long long n = (cases[i].span_s * S + b - 1) / b;
        CHECK(n >= 1 && n <= 130);
    }
}

/* ---- the histogram ---- */

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double exact_rank(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_dbl);
    size_t r = (size_t)ceil(p * (double)n - 1e-9);
    return v[(r ? r : 1) - 1];
}

TEST(stats_hist_within_one_percent)
{
    stats_hist *h = malloc(sizeof *h);
    double *v = malloc(5000 * sizeof *v);
    stats_hist_init(h);
    uint64_t seed = 42;
    for (int round = 0; round < 4; round++) {
        size_t n = round == 0 ? 1 : round == 1 ? 7 : round == 2 ? 100 : 5000;
        stats_hist_reset(h);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            double u = (double)(seed >> 11) / 9007199254740992.0;
            v[i] = 0.05 * pow(10, 6 * u); /* 50 us to 50 s, log-uniform */
            stats_hist_add(h, v[i]);
        }
        CHECK(h->n == n);
        static const double ps[] = { 0.01, 0.5, 0.9, 0.95, 0.99, 1.0 };
        for (size_t k = 0; k < countof(ps); k++) {
            double got = 0, want = exact_rank(v, n, ps[k]);
            CHECK(stats_hist_quantile(h, ps[k], &got));
            if (fabs(got - want) > 0.01 * want)
                test_fail(__FILE__, __LINE__, "n=%zu p=%g: %g, exact %g", n, ps[k], got, want);
        }
    }
    free(v);
    free(h);
}

TEST(stats_hist_edges)
{
    stats_hist *h = malloc(sizeof *h);
    double q;
    stats_hist_init(h);
    CHECK(!stats_hist_quantile(h, 0.5, &q));
    stats_hist_add(h, 123.456);
    CHECK(stats_hist_quantile(h, 0.5, &q) && q == 123.456); /* one value comes back exactly */
    CHECK(stats_hist_quantile(h, 0.95, &q) && q == 123.456);
    stats_hist_reset(h);
    CHECK(!stats_hist_quantile(h, 0.5, &q));
    for (int i = 0; i < 10; i++)
        stats_hist_add(h, 42.0);
    CHECK(stats_hist_quantile(h, 0.5, &q) && q == 42.0);
    stats_hist_reset(h);
    stats_hist_add(h, 0);
    stats_hist_add(h, 0);
    stats_hist_add(h, -1);
    stats_hist_add(h, 10);
    stats_hist_add(h, NAN); /* ignored */
    CHECK(h->n == 4);
    CHECK(stats_hist_quantile(h, 0.5, &q) && q == 0);
    CHECK(stats_hist_quantile(h, 0.75, &q) && q == 0);
    CHECK(stats_hist_quantile(h, 1.0, &q) && q == 10);
    CHECK(stats_hist_quantile(h, 0.0, &q) && q == 0); /* rank 1: values <= 0 count as 0 */
    stats_hist_reset(h);
    stats_hist_add(h, 1e-9);  /* below the first bin: within a microsecond */
    stats_hist_add(h, 1e12);  /* past the last: reported as the last bin */
    stats_hist_add(h, INFINITY); /* ignored, like NaN */
    CHECK(h->n == 2);
    CHECK(stats_hist_quantile(h, 0.3, &q) && q >= 1e-9 && q <= STATS_HIST_MIN);
    CHECK(stats_hist_quantile(h, 1.0, &q) && q >= STATS_HIST_MAX * 0.99 && q <= 1e12);
    CHECK(h->lo == 0 && h->hi == STATS_HIST_BINS - 1);
    free(h);
}

/* ---- the aggregations against a store ---- */

static char url[600], dir[256];

/* A mkdtemp template: prefix and six 'X'. */
static char *temp_template(char *buf, size_t cap, const char *prefix)
{
    size_t n = (size_t)snprintf(buf, cap, "%s", prefix);
    for (int i = 0; i < 6 && n + 1 < cap; i++)
        buf[n++] = 'X';
    buf[n < cap ? n : cap - 1] = '\0';
    return buf;
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        test_fail(__FILE__, __LINE__, "sql failed: %s", err ? err : "?");
    sqlite3_free(err);
}

/* 09:00 to 10:00 in 15-minute buckets; rows at known places. */
#define T0 (1732179600LL * S) /* 2024-11-21T09:00:00Z */

typedef struct row {
    int at_s;                 /* seconds after T0 */
    const char *model, *deployment, *provider;
    int status;
    double duration_ms, ttft_ms;   /* ttft < 0: none */
    int in, out;              /* < 0: unknown */
    double cost;              /* < 0: unknown */
    const char *spans;
} row;

#define COMPACT_GUARD(pol, det, stage, verdict, mode, findings)                                                   \
    "{\"span_id\":\"00000000000000b1\",\"parent_id\":\"00000000000000a1\",\"kind\":\"guardrail\",\"name\":\"g\","  \
    "\"start_ns\":1732179600123000000,\"end_ns\":1732179600124000000,\"attributes\":{"                           \
    "\"genaiops.guardrail.policy\":\"" pol "\",\"genaiops.guardrail.detector\":\"" det "\","                     \
    "\"genaiops.guardrail.stage\":\"" stage "\",\"genaiops.guardrail.verdict\":\"" verdict "\","                 \
    "\"genaiops.guardrail.mode\":\"" mode "\"" findings "}}"
#define ROOT_SPAN                                                                                                  \
    "{\"span_id\":\"00000000000000a1\",\"parent_id\":null,\"kind\":\"request\",\"name\":\"chat\",\"start_ns\":1,"  \
    "\"end_ns\":2,\"attributes\":{\"kind\":\"guardrail\",\"gen_ai.request.model\":\"m\"}}"

static const row rows[] = {
    /* bucket 0 (09:00-09:15) */
    { 10, "gpt-4o", "prod", "openai", 200, 100, -1, 10, 20, 0.001,
      "[" ROOT_SPAN "," COMPACT_GUARD("pii-redact", "pii", "input", "redact", "enforce",
                                      ",\"genaiops.guardrail.findings\":[\"EMAIL messages[0] 3-20\",\"PHONE messages[0] 30-40\"]") "]" },
    { 20, "gpt-4o", NULL, "openai", 200, 200, 50, 30, 40, 0.002,
      "[" ROOT_SPAN "," COMPACT_GUARD("pii-redact", "pii", "input", "pass", "enforce", "") "]" },
    { 30, "claude", "", "anthropic", 500, 300, -1, -1, -1, -1, "[" ROOT_SPAN "]" },
    /* bucket 1 is empty; bucket 2 (09:30-09:45) */
    { 1800, "gpt-4o", "prod", "openai", 429, 50, -1, 5, -1, -1,
      /* another layout: whitespace between the spans, so the whole array is walked */
      "[ " ROOT_SPAN " , {\"kind\": \"guardrail\", \"start_ns\": 1732181400500000000, \"attributes\": "
      "{\"genaiops.guardrail.policy\": \"inj\", \"genaiops.guardrail.detector\": \"injection\", "
      "\"genaiops.guardrail.stage\": \"input\", \"genaiops.guardrail.verdict\": \"block\", "
      "\"genaiops.guardrail.mode\": \"monitor\", \"genaiops.guardrail.findings\": [\"PROMPT_INJECTION messages[0] 0-20\"]}} ]" },
    { 1900, "llama", "batch", "local", 200, 1000, 400, 100, 200, 0.5,
      "[" ROOT_SPAN "," COMPACT_GUARD("pii-redact", "pii", "output", "flag", "monitor",
                                      ",\"genaiops.guardrail.findings\":[\"EMAIL answer 0-10\"]") ","
      COMPACT_GUARD("inj", "injection", "input", "pass", "enforce", ",\"genaiops.guardrail.findings\":[]") "]" },
    /* bucket 3 (09:45-10:00): "x.kind" is no span kind (the array is walked, nothing counted) */
    { 3599, "mistral", NULL, "local", 200, 10, 5, 1, 2, 0.0,
      "[{\"span_id\":\"00000000000000a1\",\"kind\":\"request\",\"attributes\":{\"x.kind\":\"guardrail\"}}]" },
    /* outside the range */
    { -1, "gpt-4o", NULL, "openai", 500, 9999, -1, 1000, 1000, 9.0,
      "[" COMPACT_GUARD("pii-redact", "pii", "input", "block", "enforce", ",\"genaiops.guardrail.findings\":[\"X a 1-2\"]") "]" },
    { 3600, "gpt-4o", NULL, "openai", 500, 9999, -1, 1000, 1000, 9.0, NULL },
};

static void bind_opt_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static const char *make_store(void)
{
    if (!mkdtemp(temp_template(dir, sizeof dir, "/tmp/genaiops-stats-")))
        return NULL;
    snprintf(url, sizeof url, "sqlite://%s/s.db", dir);
    store *s = NULL;
    char msg[256];
    if (store_open(url, &s, msg, sizeof msg) != ERR_OK) {
        test_fail(__FILE__, __LINE__, "store_open: %s", msg);
        return NULL;
    }
    store_close(s);
    sqlite3 *db;
    sqlite3_open(url + 9, &db);
    exec_ok(db, "BEGIN");
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db,
                       "INSERT INTO traces (trace_id, start_ns, end_ns, duration_ms, request_model, deployment, provider, "
                       "status, stream, ttft_ms, input_tokens, output_tokens, cost_usd, spans) "
                       "VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9, ?10, ?11, ?12)",
                       -1, &st, NULL);
    for (size_t i = 0; i < countof(rows); i++) {
        const row *r = &rows[i];
        char id[40];
        snprintf(id, sizeof id, "%032zx", i + 1);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, T0 + (long long)r->at_s * S);
        sqlite3_bind_double(st, 3, r->duration_ms);
        bind_opt_text(st, 4, r->model);
        bind_opt_text(st, 5, r->deployment);
        bind_opt_text(st, 6, r->provider);
        sqlite3_bind_int(st, 7, r->status);
        if (r->ttft_ms >= 0)
            sqlite3_bind_double(st, 8, r->ttft_ms);
        else
            sqlite3_bind_null(st, 8);
        if (r->in >= 0)
            sqlite3_bind_int(st, 9, r->in);
        else
            sqlite3_bind_null(st, 9);
        if (r->out >= 0)
            sqlite3_bind_int(st, 10, r->out);
        else
            sqlite3_bind_null(st, 10);
        if (r->cost >= 0)
            sqlite3_bind_double(st, 11, r->cost);
        else
            sqlite3_bind_null(st, 11);
        bind_opt_text(st, 12, r->spans);
        if (sqlite3_step(st) != SQLITE_DONE)
            test_fail(__FILE__, __LINE__, "insert %zu: %s", i, sqlite3_errmsg(db));
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    exec_ok(db, "COMMIT");
    sqlite3_close(db);
    return url;
}

static void drop_store(void)
{
    char p[700];
    const char *sfx[] = { "", "-wal", "-shm" };
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "%s%s", url + 9, sfx[k]);
        unlink(p);
    }
    rmdir(dir);
}

static json_t *run(stats_kind k, const char *q)
{
    stats_params p;
    query_error e = { 0 };
    if (stats_params_parse(&p, k, sv_from(q), T0 + 3600 * S, &e) != ERR_OK) {
        test_fail(__FILE__, __LINE__, "parse '%s': %s", q, e.message);
        return NULL;
    }
    json_t *out = NULL;
    err_code r = k == STATS_OVERVIEW ? stats_overview(url, &p, &out, &e) : stats_guardrails(url, &p, &out, &e);
    if (r != ERR_OK)
        test_fail(__FILE__, __LINE__, "'%s': %s", q, e.message);
    return out;
}

/* The value at a dotted path ("totals.latency_ms.p50") through objects. */
static json_t *at(json_t *o, const char *path)
{
    json_t *cur = o;
    while (cur && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        char key[64];
        if (n >= sizeof key)
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        cur = json_object_get(cur, key);
        path += n + (dot ? 1 : 0);
    }
    return cur;
}

static long long jint(json_t *o, const char *path)
{
    json_t *v = at(o, path);
    return v && json_is_integer(v) ? (long long)json_integer_value(v) : -999;
}

static double jreal(json_t *o, const char *path)
{
    json_t *v = at(o, path);
    return v && json_is_number(v) ? json_number_value(v) : NAN;
}

static bool jnull(json_t *o, const char *path)
{
    json_t *v = at(o, path);
    return v && json_is_null(v);
}

static bool near(double a, double b) { return fabs(a - b) <= 0.01 * fabs(b) + 1e-12; }

TEST(stats_overview_against_a_store)
{
    if (!make_store())
        return;
    json_t *o = run(STATS_OVERVIEW, "from=1h&bucket=15m");
    if (!o)
        goto out;
    CHECK_STR(json_string_value(json_object_get(o, "from")), "2024-11-21T09:00:00.000Z");
    CHECK_STR(json_string_value(json_object_get(o, "to")), "2024-11-21T10:00:00.000Z");
    CHECK_INT(jint(o, "bucket_s"), 900);
    CHECK_STR(json_string_value(json_object_get(o, "by")), "none");
    CHECK_INT(jint(o, "totals.requests"), 6);
    CHECK_INT(jint(o, "totals.errors"), 2);
    CHECK(near(jreal(o, "totals.error_rate"), 2.0 / 6));
    CHECK_INT(jint(o, "totals.input_tokens"), 10 + 30 + 5 + 100 + 1);
    CHECK_INT(jint(o, "totals.output_tokens"), 20 + 40 + 200 + 2);
    CHECK(near(jreal(o, "totals.cost_usd"), 0.503));
    /* durations 10 50 100 200 300 1000: p50 = rank 3 = 100, p95 = rank 6 = 1000 */
    CHECK(near(jreal(o, "totals.latency_ms.p50"), 100));
    CHECK(near(jreal(o, "totals.latency_ms.p95"), 1000));
    /* ttft 5 50 400 */
    CHECK(near(jreal(o, "totals.ttft_ms.p50"), 50));
    CHECK(near(jreal(o, "totals.ttft_ms.p95"), 400));
    json_t *series = json_object_get(o, "series");
    CHECK_INT(json_array_size(series), 4);
    json_t *b0 = json_array_get(series, 0), *b1 = json_array_get(series, 1), *b2 = json_array_get(series, 2),
           *b3 = json_array_get(series, 3);
    CHECK_INT(jint(b0, "t"), 1732179600000LL);
    CHECK_INT(jint(b3, "t"), 1732179600000LL + 3 * 900000);
    CHECK_INT(jint(b0, "requests"), 3);
    CHECK_INT(jint(b0, "errors"), 1);
    CHECK(near(jreal(b0, "latency_p50"), 200));
    CHECK(near(jreal(b0, "latency_p95"), 300));
    CHECK(near(jreal(b0, "ttft_p50"), 50));
    CHECK(near(jreal(b0, "cost_usd"), 0.003));
    CHECK_INT(jint(b1, "requests"), 0); /* zero-filled, percentiles null */
    CHECK(jnull(b1, "latency_p50") && jnull(b1, "latency_p95") && jnull(b1, "ttft_p50") && jnull(b1, "ttft_p95"));
    CHECK_INT(jint(b2, "requests"), 2);
    CHECK_INT(jint(b2, "errors"), 1);
    CHECK(near(jreal(b2, "latency_p50"), 50));
    CHECK(near(jreal(b2, "latency_p95"), 1000));
    CHECK_INT(jint(b2, "input_tokens"), 105);
    CHECK_INT(jint(b3, "requests"), 1);
    CHECK(jnull(b2, "ttft_p50") == false);
    CHECK_INT(json_array_size(json_object_get(o, "groups")), 0);
    json_decref(o);

    /* by model: gpt-4o 3, then claude, llama, mistral by name */
    o = run(STATS_OVERVIEW, "from=1h&bucket=15m&by=model");
    json_t *g = json_object_get(o, "groups");
    CHECK_INT(json_array_size(g), 4);
    CHECK_STR(json_string_value(json_object_get(json_array_get(g, 0), "key")), "gpt-4o");
    CHECK_STR(json_string_value(json_object_get(json_array_get(g, 1), "key")), "claude");
    CHECK_INT(jint(json_array_get(g, 0), "totals.requests"), 3);
    CHECK_INT(jint(json_array_get(g, 0), "totals.errors"), 1);
    CHECK(near(jreal(json_array_get(g, 0), "totals.latency_ms.p50"), 100));
    CHECK_INT(json_array_size(json_object_get(json_array_get(g, 0), "series")), 4);
    CHECK_INT(jint(json_array_get(json_object_get(json_array_get(g, 0), "series"), 2), "requests"), 1);
    CHECK(jnull(json_array_get(g, 1), "totals.ttft_ms.p50"));
    json_decref(o);

    /* by deployment: NULL and "" are one "(none)" group */
    o = run(STATS_OVERVIEW, "from=1h&by=deployment");
    g = json_object_get(o, "groups");
    CHECK_INT(json_array_size(g), 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(g, 0), "key")), "(none)");
    CHECK_INT(jint(json_array_get(g, 0), "totals.requests"), 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(g, 1), "key")), "prod");
    json_decref(o);

    /* filters */
    o = run(STATS_OVERVIEW, "from=1h&provider=local&by=provider");
    CHECK_INT(jint(o, "totals.requests"), 2);
    CHECK_INT(json_array_size(json_object_get(o, "groups")), 1);
    json_decref(o);
    o = run(STATS_OVERVIEW, "from=1h&model=gpt-4o&deployment=prod");
    CHECK_INT(jint(o, "totals.requests"), 2);
    json_decref(o);
    o = run(STATS_OVERVIEW, "from=1h&model=nothing");
    CHECK_INT(jint(o, "totals.requests"), 0);
    CHECK(jnull(o, "totals.error_rate") && jnull(o, "totals.latency_ms.p50"));
    json_decref(o);
out:
    drop_store();
}

TEST(stats_overview_other_group)
{
    if (!make_store())
        return;
    sqlite3 *db;
    sqlite3_open(url + 9, &db);
    /* 12 more models with one request each at 09:50: 16 keys, 10 shown */
    for (int i = 0; i < 12; i++) {
        char sql[300];
        snprintf(sql, sizeof sql,
                 "INSERT INTO traces (trace_id, start_ns, end_ns, duration_ms, request_model, status, stream) VALUES "
                 "('%032x', %lld, %lld, 1, 'z-model-%02d', 200, 0)",
                 0x100 + i, (long long)(T0 + 3000 * S), (long long)(T0 + 3000 * S), i);
        exec_ok(db, sql);
    }
    sqlite3_close(db);
    json_t *o = run(STATS_OVERVIEW, "from=1h&by=model");
    json_t *g = json_object_get(o, "groups");
    CHECK_INT(json_array_size(g), 11);
    json_t *last = json_array_get(g, 10);
    CHECK_STR(json_string_value(json_object_get(last, "key")), "(other)");
    long long sum = 0;
    for (size_t i = 0; i < json_array_size(g); i++)
        sum += jint(json_array_get(g, i), "totals.requests");
    CHECK_INT(sum, jint(o, "totals.requests"));
    CHECK_INT(jint(o, "totals.requests"), 18);
    json_decref(o);
    drop_store();
}

TEST(stats_guardrails_against_a_store)
{
    if (!make_store())
        return;
    json_t *o = run(STATS_GUARDRAILS, "from=1h&bucket=15m");
    if (!o)
        goto out;
    /* in range: redact(2 findings), pass, block(1, other layout), flag(1), pass(0) */
    CHECK_INT(jint(o, "totals.checks"), 5);
    CHECK_INT(jint(o, "totals.findings"), 4);
    CHECK_INT(jint(o, "totals.verdicts.pass"), 2);
    CHECK_INT(jint(o, "totals.verdicts.redact"), 1);
    CHECK_INT(jint(o, "totals.verdicts.block"), 1);
    CHECK_INT(jint(o, "totals.verdicts.flag"), 1);
    CHECK_INT(jint(o, "totals.verdicts.error"), 0);
    json_t *series = json_object_get(o, "series");
    CHECK_INT(json_array_size(series), 4);
    CHECK_INT(jint(json_array_get(series, 0), "checks"), 2);
    CHECK_INT(jint(json_array_get(series, 0), "findings"), 2);
    CHECK_INT(jint(json_array_get(series, 0), "redact"), 1);
    CHECK_INT(jint(json_array_get(series, 1), "checks"), 0);
    CHECK_INT(jint(json_array_get(series, 2), "checks"), 3);
    CHECK_INT(jint(json_array_get(series, 2), "block"), 1);
    CHECK_INT(jint(json_array_get(series, 2), "flag"), 1);
    json_t *pol = json_object_get(o, "policies");
    CHECK_INT(json_array_size(pol), 2);
    json_t *p0 = json_array_get(pol, 0), *p1 = json_array_get(pol, 1);
    CHECK_STR(json_string_value(json_object_get(p0, "policy")), "pii-redact");
    CHECK_STR(json_string_value(json_object_get(p0, "detector")), "pii");
    CHECK_INT(jint(p0, "checks"), 3);
    CHECK_INT(jint(p0, "findings"), 3);
    CHECK_INT(jint(p0, "verdicts.flag"), 1);
    CHECK_INT(jint(json_array_get(json_object_get(p0, "series"), 0), "findings"), 2);
    CHECK_INT(jint(json_array_get(json_object_get(p0, "series"), 2), "findings"), 1);
    CHECK_STR(json_string_value(json_object_get(p1, "policy")), "inj");
    CHECK_INT(jint(p1, "checks"), 2);
    CHECK_INT(jint(p1, "verdicts.block"), 1);
    /* the checks with findings, newest trace first */
    json_t *tr = json_object_get(o, "traces");
    CHECK_INT(json_array_size(tr), 3);
    json_t *t0 = json_array_get(tr, 0);
    CHECK_STR(json_string_value(json_object_get(t0, "trace_id")), "00000000000000000000000000000005");
    CHECK_STR(json_string_value(json_object_get(t0, "stage")), "output");
    CHECK_STR(json_string_value(json_object_get(t0, "verdict")), "flag");
    CHECK_STR(json_string_value(json_object_get(t0, "mode")), "monitor");
    CHECK_STR(json_string_value(json_array_get(json_object_get(t0, "findings"), 0)), "EMAIL answer 0-10");
    CHECK_INT(jint(t0, "t"), 1732179600123LL);
    json_t *t1 = json_array_get(tr, 1);
    CHECK_STR(json_string_value(json_object_get(t1, "policy")), "inj");
    CHECK_INT(jint(t1, "t"), 1732181400500LL);
    json_t *t2 = json_array_get(tr, 2);
    CHECK_INT(json_array_size(json_object_get(t2, "findings")), 2);
    json_decref(o);

    o = run(STATS_GUARDRAILS, "from=1h&policy=inj");
    CHECK_INT(jint(o, "totals.checks"), 2);
    CHECK_INT(json_array_size(json_object_get(o, "policies")), 1);
    json_decref(o);
    o = run(STATS_GUARDRAILS, "from=1h&stage=output");
    CHECK_INT(jint(o, "totals.checks"), 1);
    json_decref(o);
    o = run(STATS_GUARDRAILS, "from=1h&verdict=pass&detector=pii");
    CHECK_INT(jint(o, "totals.checks"), 1);
    CHECK_INT(json_array_size(json_object_get(o, "traces")), 0);
    json_decref(o);
out:
    drop_store();
}

TEST(stats_store_missing_or_unmigrated)
{
    stats_params p;
    query_error e = { 0 };
    json_t *out = NULL;
    CHECK_INT(stats_params_parse(&p, STATS_OVERVIEW, SV_NULL, NOW, &e), ERR_OK);
    CHECK(stats_overview("sqlite:///nonexistent/dir/x.db", &p, &out, &e) != ERR_OK);
    CHECK_INT(e.status, 503);
    CHECK_STR(e.code, "store_unavailable");
    CHECK(out == NULL);
    CHECK(stats_guardrails("postgres://x", &p, &out, &e) != ERR_OK);
    CHECK_INT(e.status, 500);
    char d[64];
    if (!mkdtemp(temp_template(d, sizeof d, "/tmp/genaiops-stats-empty-")))
        return;
    char f[128], u[160];
    snprintf(f, sizeof f, "%s/e.db", d);
    snprintf(u, sizeof u, "sqlite://%s", f);
    sqlite3 *db;
    sqlite3_open(f, &db);
    exec_ok(db, "CREATE TABLE other (x)");
    sqlite3_close(db);
    CHECK(stats_overview(u, &p, &out, &e) != ERR_OK);
    CHECK_INT(e.status, 503);
    CHECK_STR(e.code, "store_not_migrated");
    CHECK(stats_guardrails(u, &p, &out, &e) != ERR_OK);
    CHECK_STR(e.code, "store_not_migrated");
    unlink(f);
    rmdir(d);
}
