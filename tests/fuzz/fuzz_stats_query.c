/*
 * fuzz_stats_query.c - libFuzzer driver for the parsers of the statistics
 * module (store/stats.c): the query strings of /api/v1/stats/overview and
 * /api/v1/stats/guardrails, durations, and the spans text the guardrail view
 * reads (stored as one trace's spans in a scratch store with the real
 * schema, made once, then aggregated).
 *
 * The first byte picks the target ('O' overview query, 'G' guardrails
 * query, 'D' duration, 'S' spans text; anything else: the three parsers),
 * the rest (after one separator byte) is the input; for the query strings
 * the second byte also varies "now". Checks beyond "no crash, no leak":
 * every refusal is a 400 naming a parameter, with a message; an accepted
 * query has a range from 1970 on, from < to, a bucket of at least 1 s, at
 * most 1,000 buckets that cover the range from a bucket boundary, and
 * NUL-terminated filters within their size; an accepted duration is
 * positive and within ten years; the guardrail view of any spans text
 * answers (or fails with a status and a message), its counts add up, and
 * its answer serializes.
 */
#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "store/stats.h"
#include "store/store.h"

#define NOW (1732181400LL * 1000000000LL)

static void check_params(const stats_params *p, err_code r, const query_error *e)
{
    if (r != ERR_OK) {
        if (e->status != 400 || !e->message[0] || !e->param[0])
            abort();
        return;
    }
    if (p->from_ns < 0 || p->from_ns >= p->to_ns || p->to_ns - p->from_ns > STATS_RANGE_MAX_NS)
        abort();
    if (p->bucket_ns < STATS_BUCKET_MIN_NS || p->nbuckets < 1 || p->nbuckets > STATS_MAX_BUCKETS)
        abort();
    if (p->start_ns > p->from_ns || p->start_ns % p->bucket_ns != 0 || p->from_ns - p->start_ns >= p->bucket_ns)
        abort();
    if (p->start_ns + (int64_t)p->nbuckets * p->bucket_ns < p->to_ns)
        abort();
    if (strnlen(p->model, sizeof p->model) == sizeof p->model || strnlen(p->policy, sizeof p->policy) == sizeof p->policy ||
        strnlen(p->stage, sizeof p->stage) == sizeof p->stage || strnlen(p->verdict, sizeof p->verdict) == sizeof p->verdict)
        abort();
    if ((unsigned)p->by > STATS_BY_PROVIDER)
        abort();
}

static void fuzz_query(stats_kind kind, uint8_t seed, const char *s, size_t n)
{
    stats_params p;
    query_error e = { 0 };
    int64_t now = NOW + (int64_t)seed * 7919LL * 1000000LL;
    err_code r = stats_params_parse(&p, kind, sv_make(s, n), now, &e);
    check_params(&p, r, &e);
    json_t *j = query_error_json(&e);
    json_decref(j);
}

static void fuzz_duration(const char *s, size_t n)
{
    int64_t ns;
    if (stats_parse_duration(sv_make(s, n), &ns) && (ns <= 0 || ns > STATS_RANGE_MAX_NS))
        abort();
    int64_t b = stats_auto_bucket((int64_t)MIN(n, 100000) * 1000000000LL * 3600);
    if (b < STATS_BUCKET_MIN_NS)
        abort();
}

static char url[256];
static sqlite3 *db;
static sqlite3_stmt *ins;

static void init_store(void)
{
    if (url[0])
        return;
    snprintf(url, sizeof url, "sqlite:///tmp/genaiops-fuzz-stats-%d.db", (int)getpid());
    unlink(url + 9);
    store *s = NULL;
    char msg[256];
    if (store_open(url, &s, msg, sizeof msg) != ERR_OK)
        abort();
    store_close(s);
    if (sqlite3_open(url + 9, &db) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO traces (trace_id, start_ns, end_ns, duration_ms, status, stream, spans) VALUES "
                           "('0123456789abcdef0123456789abcdef', ?1, ?1, 1, 200, 0, ?2)",
                           -1, &ins, NULL) != SQLITE_OK)
        abort();
}

static void fuzz_spans(const char *s, size_t n)
{
    init_store();
    if (sqlite3_exec(db, "DELETE FROM traces", NULL, NULL, NULL) != SQLITE_OK)
        abort();
    sqlite3_bind_int64(ins, 1, NOW - 1000000000LL);
    sqlite3_bind_text(ins, 2, s, (int)n, SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE)
        abort();
    sqlite3_reset(ins);
    stats_params p;
    query_error e = { 0 };
    if (stats_params_parse(&p, STATS_GUARDRAILS, SV("from=1h&bucket=15m"), NOW, &e) != ERR_OK)
        abort();
    json_t *out = NULL;
    err_code r = stats_guardrails(url, &p, &out, &e);
    if (r != ERR_OK) {
        if (e.status < 400 || !e.message[0] || out)
            abort();
        return;
    }
    json_t *t = json_object_get(out, "totals"), *series = json_object_get(out, "series");
    long long checks = json_integer_value(json_object_get(t, "checks")), sum = 0;
    for (size_t i = 0; i < json_array_size(series); i++)
        sum += json_integer_value(json_object_get(json_array_get(series, i), "checks"));
    if (sum != checks || json_array_size(series) != (size_t)p.nbuckets ||
        json_array_size(json_object_get(out, "traces")) > STATS_LATEST)
        abort();
    char *text = json_dumps(out, JSON_COMPACT);
    if (!text)
        abort();
    free(text);
    json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *p = (const char *)data + 2;
    size_t n = size - 2;
    switch (data[0]) {
    case 'O': fuzz_query(STATS_OVERVIEW, data[1], p, n); break;
    case 'G': fuzz_query(STATS_GUARDRAILS, data[1], p, n); break;
    case 'D': fuzz_duration(p, n); break;
    case 'S': fuzz_spans(p, n); break;
    default:
        fuzz_query(STATS_OVERVIEW, data[1], p, n);
        fuzz_query(STATS_GUARDRAILS, data[1], p, n);
        fuzz_duration(p, n);
        break;
    }
    return 0;
}
