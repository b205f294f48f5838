/*
 * test_query.c - the trace queries and scores (store/query.c) against a real
 * SQLite store made by store_open (the real migrations). A generator fills
 * NTRACES rows with a pattern of models, providers, statuses, latencies,
 * costs and content; each filter case runs the query and compares with the
 * same predicate applied to the generator, in order. Also: time and cursor
 * parsing, pagination that stays stable while traces arrive, one trace with
 * spans written by the store's writer path, scores and score configs with
 * the bad inputs they must refuse.
 */
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "store/query.h"
#include "store/store.h"
#include "test.h"

#define NTRACES 90
#define BASE_NS 1732181400000000000LL /* 2024-11-21T09:30:00Z */

/* ---- a store to search ---- */

typedef struct gen_row {
    char id[33];
    char request_id[32];
    long long start_ns;
    const char *model, *provider, *deployment, *key;
    int status;
    double duration_ms;
    bool has_cost;
    double cost;
    const char *content;
} gen_row;

static void gen(int i, gen_row *g)
{
    snprintf(g->id, sizeof g->id, "%08x%024d", 0xabc00000u + (unsigned)i, i);
    snprintf(g->request_id, sizeof g->request_id, "req-%d", i);
    /* rows 20 and 21 share a start time: the trace id breaks the tie */
    g->start_ns = BASE_NS + (long long)(i == 21 ? 20 : i) * 1000000000LL;
    g->model = i % 3 == 0 ? "claude-sonnet" : "gpt-4o";
    g->provider = i % 2 ? "openai" : "anthropic";
    g->deployment = i % 4 == 0 ? "prod" : NULL;
    g->key = i % 6 == 0 ? "team-a" : "team-b";
    g->status = i % 7 == 0 ? 500 : i % 5 == 0 ? 429 : 200;
    g->duration_ms = i * 10.5;
    g->has_cost = i % 9 != 0;
    g->cost = i * 0.001;
    g->content = i % 10 == 3 ? "[{\"role\":\"user\",\"content\":\"Hello 50%_WORLD\"}]" : NULL;
}

static char test_url[512];
static char test_dir[256];

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        test_fail(__FILE__, __LINE__, "sql failed: %s: %s", sql, err ? err : "?");
    sqlite3_free(err);
}

/* A fresh store (schema by store_open) filled with the generator's rows. */
static const char *fill_store(void)
{
    static int seq;
    snprintf(test_dir, sizeof test_dir, "/tmp/genaiops-query-XXXXXX");
    if (!mkdtemp(test_dir))
        return NULL;
    snprintf(test_url, sizeof test_url, "sqlite://%s/q%d.db", test_dir, seq++);
    store *s = NULL;
    char msg[256];
    if (store_open(test_url, &s, msg, sizeof msg) != ERR_OK) {
        test_fail(__FILE__, __LINE__, "store_open: %s", msg);
        return NULL;
    }
    store_close(s);
    sqlite3 *db;
    sqlite3_open(test_url + 9, &db);
    exec_ok(db, "BEGIN");
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db,
                       "INSERT INTO traces (trace_id, request_id, start_ns, end_ns, duration_ms, operation, provider, "
                       "request_model, response_model, deployment, api_key, status, stream, cost_usd, input_messages, "
                       "input_tokens, output_tokens) VALUES (?1, ?2, ?3, ?4, ?5, 'chat', ?6, ?7, ?7, ?8, ?9, ?10, 0, ?11, ?12, 10, 20)",
                       -1, &st, NULL);
    for (int i = 0; i < NTRACES; i++) {
        gen_row g;
        gen(i, &g);
        sqlite3_bind_text(st, 1, g.id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, g.request_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, g.start_ns);
        sqlite3_bind_int64(st, 4, g.start_ns + (long long)(g.duration_ms * 1e6));
        sqlite3_bind_double(st, 5, g.duration_ms);
        sqlite3_bind_text(st, 6, g.provider, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, g.model, -1, SQLITE_STATIC);
        if (g.deployment)
            sqlite3_bind_text(st, 8, g.deployment, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 8);
        sqlite3_bind_text(st, 9, g.key, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 10, g.status);
        if (g.has_cost)
            sqlite3_bind_double(st, 11, g.cost);
        else
            sqlite3_bind_null(st, 11);
        if (g.content)
            sqlite3_bind_text(st, 12, g.content, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 12);
        if (sqlite3_step(st) != SQLITE_DONE)
            test_fail(__FILE__, __LINE__, "insert %d: %s", i, sqlite3_errmsg(db));
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    exec_ok(db, "COMMIT");
    sqlite3_close(db);
    return test_url;
}

static void drop_store(void)
{
    query_shutdown();
    char p[600];
    const char *sfx[] = { "", "-wal", "-shm" };
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "%s%s", test_url + 9, sfx[k]);
        unlink(p);
    }
    rmdir(test_dir);
}

/* ---- filters, by table ---- */

typedef bool (*pred_fn)(const gen_row *g);
static bool p_all(const gen_row *g) { return UNUSED(g), true; }
static bool p_model(const gen_row *g) { return !strcmp(g->model, "claude-sonnet"); }
static bool p_provider(const gen_row *g) { return !strcmp(g->provider, "openai"); }
static bool p_err(const gen_row *g) { return g->status >= 400; }
static bool p_ok(const gen_row *g) { return g->status < 400; }
static bool p_429(const gen_row *g) { return g->status == 429; }
static bool p_dep(const gen_row *g) { return g->deployment != NULL; }
static bool p_key(const gen_row *g) { return !strcmp(g->key, "team-a"); }
static bool p_lat(const gen_row *g) { return g->duration_ms >= 500; }
static bool p_cost(const gen_row *g) { return g->has_cost && g->cost >= 0.05; }
static bool p_from(const gen_row *g) { return g->start_ns >= BASE_NS + 30000000000LL; }
static bool p_range(const gen_row *g) { return g->start_ns >= BASE_NS + 10000000000LL && g->start_ns < BASE_NS + 20000000000LL; }
static bool p_q_req(const gen_row *g) { return strstr(g->request_id, "req-4") != NULL; }
static bool p_q_content(const gen_row *g) { return g->content != NULL; }
static bool p_none(const gen_row *g) { return UNUSED(g), false; }
static bool p_combo(const gen_row *g) { return p_err(g) && p_provider(g) && !strcmp(g->model, "gpt-4o"); }

static const struct filter_case {
    const char *query;
    pred_fn pred;
} filter_cases[] = {
    { "", p_all },
    { "model=claude-sonnet", p_model },
    { "provider=openai", p_provider },
    { "status=error", p_err },
    { "status=ok", p_ok },
    { "status=429", p_429 },
    { "deployment=prod", p_dep },
    { "key=team-a", p_key },
    { "min_latency_ms=500", p_lat },
    { "min_cost=0.05", p_cost },
    { "from=1732181430000", p_from },
    { "from=2024-11-21T09:30:10Z&to=2024-11-21T10:30:20%2B01:00", p_range },
    { "q=REQ-4", p_q_req },                 /* case-insensitive */
    { "q=hello+50%25_world", p_q_content }, /* % and _ are literal, not wildcards */
    { "q=50%25x", p_none },
    { "model=nope", p_none },
    { "status=error&provider=openai&model=gpt-4o", p_combo },
    { "model=&limit=", p_all },             /* empty values: filters left out */
};

/* The ids the query returns, all pages, joined by ','. */
static char *run_ids(const char *url, const char *query, int *npages)
{
    static char out[NTRACES * 34 + 1];
    out[0] = '\0';
    size_t o = 0;
    char cursor[128] = "";
    *npages = 0;
    for (;;) {
        query_filter f = { 0 };
        query_error e = { 0 };
        if (query_filter_parse(&f, sv_from(query), &e) != ERR_OK) {
            test_fail(__FILE__, __LINE__, "%s: %s", query, e.message);
            return out;
        }
        f.limit = f.limit ? f.limit : 500;
        if (cursor[0] && query_filter_set(&f, "cursor", sv_from(cursor), &e) != ERR_OK)
            test_fail(__FILE__, __LINE__, "cursor refused: %s", e.message);
        json_t *res = NULL;
        if (query_traces_list(url, &f, &res, &e) != ERR_OK) {
            test_fail(__FILE__, __LINE__, "%s: %s", query, e.message);
            return out;
        }
        (*npages)++;
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(res, "data"), i, t) {
            const char *id = json_string_value(json_object_get(t, "trace_id"));
            o += (size_t)snprintf(out + o, sizeof out - o, "%s%s", o ? "," : "", id ? id : "?");
        }
        json_t *next = json_object_get(res, "next_cursor");
        if (!json_is_string(next)) {
            CHECK(json_is_null(next));
            json_decref(res);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        json_decref(res);
        if (*npages > NTRACES + 1)
            break;
    }
    return out;
}

static char *expect_ids(pred_fn pred)
{
    static char out[NTRACES * 34 + 1];
    size_t o = 0;
    out[0] = '\0';
    /* newest first; 21 and 20 share start_ns, 21's id is greater */
    for (int i = NTRACES - 1; i >= 0; i--) {
        gen_row g;
        gen(i, &g);
        if (pred(&g))
            o += (size_t)snprintf(out + o, sizeof out - o, "%s%s", o ? "," : "", g.id);
    }
    return out;
}

TEST(query_filters_table)
{
    const char *url = fill_store();
    if (!url)
        return;
    for (size_t k = 0; k < countof(filter_cases); k++) {
        int pages;
        char *got = strdup(run_ids(url, filter_cases[k].query, &pages));
        const char *want = expect_ids(filter_cases[k].pred);
        if (strcmp(got, want) != 0)
            test_fail(__FILE__, __LINE__, "filter '%s':\n got  %s\n want %s", filter_cases[k].query, got, want);
        free(got);
    }
    drop_store();
}

TEST(query_pagination_cursor)
{
    const char *url = fill_store();
    if (!url)
        return;
    /* pages of 7 and of 1 give exactly the whole list, in order */
    const char *limits[] = { "limit=7", "limit=1&status=error", "limit=20&provider=openai" };
    pred_fn preds[] = { p_all, p_err, p_provider };
    for (size_t k = 0; k < countof(limits); k++) {
        int pages;
        char *got = strdup(run_ids(url, limits[k], &pages));
        const char *want = expect_ids(preds[k]);
        CHECK_STR(got, want);
        free(got);
        CHECK(pages > 1);
    }
    /* the default limit is 50, with a cursor to go on */
    query_filter f = { 0 };
    query_error e = { 0 };
    json_t *res = NULL;
    CHECK_INT(query_traces_list(url, &f, &res, &e), ERR_OK);
    CHECK_INT(json_array_size(json_object_get(res, "data")), 50);
    const char *cur = json_string_value(json_object_get(res, "next_cursor"));
    CHECK(cur != NULL);
    char cursor[128];
    snprintf(cursor, sizeof cursor, "%s", cur ? cur : "");
    json_t *first = json_array_get(json_object_get(res, "data"), 0);
    gen_row g;
    gen(NTRACES - 1, &g);
    CHECK_STR(json_string_value(json_object_get(first, "trace_id")), g.id);
    CHECK_STR(json_string_value(json_object_get(first, "request_id")), g.request_id);
    CHECK_INT(json_integer_value(json_object_get(first, "start_ns")), g.start_ns);
    CHECK_STR(json_string_value(json_object_get(first, "start_time")), "2024-11-21T09:31:29.000Z");
    CHECK(json_is_false(json_object_get(first, "stream")));
    CHECK_INT(json_integer_value(json_object_get(first, "input_tokens")), 10);
    json_decref(res);
    /* a newer trace arriving between pages does not shift the next page */
    sqlite3 *db;
    sqlite3_open(url + 9, &db);
    exec_ok(db, "INSERT INTO traces (trace_id, start_ns, end_ns, duration_ms, status, stream) VALUES "
                "('ffffffffffffffffffffffffffffffff', 1832181400000000000, 1832181400000000001, 0, 200, 0)");
    sqlite3_close(db);
    f = (query_filter){ 0 };
    CHECK_INT(query_filter_set(&f, "cursor", sv_from(cursor), &e), ERR_OK);
    CHECK_INT(query_traces_list(url, &f, &res, &e), ERR_OK);
    CHECK_INT(json_array_size(json_object_get(res, "data")), NTRACES - 50);
    gen(NTRACES - 51, &g);
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(res, "data"), 0), "trace_id")), g.id);
    CHECK(json_is_null(json_object_get(res, "next_cursor")));
    json_decref(res);
    drop_store();
}

/* ---- parsing ---- */

TEST(query_parse_time_table)
{
    static const struct {
        const char *in;
        bool ok;
        long long ns;
    } cases[] = {
        { "0", true, 0 },
        { "1732181400000", true, 1732181400000000000LL },
        { "2024-11-21T09:30:00Z", true, 1732181400000000000LL },
        { "2024-11-21t09:30:00z", true, 1732181400000000000LL },
        { "2024-11-21 09:30:00Z", true, 1732181400000000000LL },
        { "2024-11-21T09:30:00.5Z", true, 1732181400500000000LL },
        { "2024-11-21T09:30:00.123456789Z", true, 1732181400123456789LL },
        { "2024-11-21T10:30:00+01:00", true, 1732181400000000000LL },
        { "2024-11-21T04:00:00-05:30", true, 1732181400000000000LL },
        { "2024-11-21", true, 1732147200000000000LL },
        { "2024-02-29T00:00:00Z", true, 1709164800000000000LL },
        { "1970-01-01T00:00:00Z", true, 0 },
        { "2000-03-01T00:00:00Z", true, 951868800000000000LL },
        { "", false, 0 },
        { "-5", false, 0 },
        { "12a", false, 0 },
        { "99999999999999", false, 0 },         /* past 2262 */
        { "2023-02-29T00:00:00Z", false, 0 },   /* not a leap year */
        { "2024-13-01T00:00:00Z", false, 0 },
        { "2024-11-31T00:00:00Z", false, 0 },
        { "2024-11-21T24:00:00Z", false, 0 },
        { "2024-11-21T09:30:00", false, 0 },    /* no zone */
        { "2024-11-21T09:30Z", false, 0 },
        { "2024-11-21T09:30:00.Z", false, 0 },
        { "2024-11-21T09:30:00.1234567891Z", false, 0 },
        { "2024-11-21T09:30:00+0100", false, 0 },
        { "2024-11-21T09:30:00Zjunk", false, 0 },
        { "1969-12-31T23:59:59Z", false, 0 },
        { "1970-01-01T00:30:00+01:00", false, 0 }, /* before the epoch */
        { "yesterday", false, 0 },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        int64_t ns = -1;
        bool ok = query_parse_time(sv_from(cases[i].in), &ns);
        if (ok != cases[i].ok)
            test_fail(__FILE__, __LINE__, "'%s': ok=%d, expected %d", cases[i].in, ok, cases[i].ok);
        else if (ok && ns != cases[i].ns)
            test_fail(__FILE__, __LINE__, "'%s': %lld, expected %lld", cases[i].in, (long long)ns, cases[i].ns);
    }
}

TEST(query_cursor_roundtrip)
{
    const char *id = "0123456789abcdef0123456789abcdef";
    long long starts[] = { 0, 1, 1732181400123456789LL, INT64_MAX };
    for (size_t i = 0; i < countof(starts); i++) {
        char cur[96], back[33];
        int64_t ns = -1;
        query_cursor_encode(starts[i], id, cur, sizeof cur);
        CHECK(strspn(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(cur));
        CHECK(query_cursor_decode(sv_from(cur), &ns, back));
        CHECK_INT(ns, starts[i]);
        CHECK_STR(back, id);
    }
    static const char *bad[] = {
        "", "x", "!!!!", "MTIz",                   /* "123": no id */
        "MTIzLmFiYw",                              /* "123.abc" */
        "LjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVm", /* ".0123...": no time */
        "MTIzLjAxMjM0NTY3ODlBQkNERUYwMTIzNDU2Nzg5YWJjZGVm", /* upper-case hex */
        "OTk5OTk5OTk5OTk5OTk5OTk5OTkuMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY", /* overflow */
    };
    for (size_t i = 0; i < countof(bad); i++) {
        int64_t ns;
        char back[33];
        if (query_cursor_decode(sv_from(bad[i]), &ns, back))
            test_fail(__FILE__, __LINE__, "cursor '%s' accepted", bad[i]);
    }
}

TEST(query_filter_errors_name_the_field)
{
    static const struct {
        const char *query, *param;
    } cases[] = {
        { "limit=0", "limit" },
        { "limit=501", "limit" },
        { "limit=ten", "limit" },
        { "limit=-1", "limit" },
        { "status=bad", "status" },
        { "status=99", "status" },
        { "status=600", "status" },
        { "from=yesterday", "from" },
        { "to=2024-13-01T00:00:00Z", "to" },
        { "min_latency_ms=-1", "min_latency_ms" },
        { "min_latency_ms=abc", "min_latency_ms" },
        { "min_latency_ms=inf", "min_latency_ms" },
        { "min_latency_ms=nan", "min_latency_ms" },
        { "min_cost=1e999", "min_cost" },
        { "cursor=garbage", "cursor" },
        { "modle=gpt-4o", "modle" },
        { "model=a&model=b", "model" },
        { "model=%zz", "model" },
        { "model=%4", "model" },
        { "q=%00x", "q" },
        { "model=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
          "model" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        query_filter f = { 0 };
        query_error e = { 0 };
        err_code r = query_filter_parse(&f, sv_from(cases[i].query), &e);
        if (r != ERR_INVAL || e.status != 400 || strcmp(e.param, cases[i].param) != 0 || !strstr(e.message, cases[i].param))
            test_fail(__FILE__, __LINE__, "'%.40s': r=%d status=%d param='%s' message='%s'", cases[i].query, r,
                      e.status, e.param, e.message);
    }
    /* and the good ones land in the struct */
    query_filter f = { 0 };
    query_error e = { 0 };
    CHECK_INT(query_filter_parse(&f, SV("status=503&min_cost=0.25&limit=500&q=a+b%26c&&x"), &e), ERR_INVAL);
    f = (query_filter){ 0 };
    CHECK_INT(query_filter_parse(&f, SV("status=503&min_cost=0.25&limit=500&q=a+b%26c&&"), &e), ERR_OK);
    CHECK_INT(f.status_mode, QSTATUS_EXACT);
    CHECK_INT(f.status, 503);
    CHECK(f.has_min_cost && f.min_cost == 0.25);
    CHECK_INT(f.limit, 500);
    CHECK_STR(f.q, "a b&c");
    /* fuzz crasher: a pair with an empty name is skipped, not an error without a param */
    f = (query_filter){ 0 };
    CHECK_INT(query_filter_parse(&f, SV("=erro\0=error&limit=50"), &e), ERR_OK);
    CHECK_INT(f.limit, 50);
    CHECK_INT(query_filter_parse(&f, SV("%00=x"), &e), ERR_INVAL);
    CHECK(e.param[0] != '\0');
    /* errors come out in OpenAI's shape */
    query_filter_parse(&f, SV("limit=0"), &e);
    json_t *j = query_error_json(&e);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "error"), "param")), "limit");
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "error"), "type")), "invalid_request_error");
    CHECK(json_string_value(json_object_get(json_object_get(j, "error"), "message")) != NULL);
    json_decref(j);
}

/* ---- one trace ---- */

static trace_rec *sample_trace(void)
{
    trace_rec *t = trace_new(0);
    snprintf(t->request_id, sizeof t->request_id, "req-detail");
    t->start_ns = (uint64_t)BASE_NS + 5000000000ULL;
    t->end_ns = t->start_ns + 250000000ULL;
    snprintf(t->operation, sizeof t->operation, "chat");
    snprintf(t->endpoint, sizeof t->endpoint, "/v1/chat/completions");
    snprintf(t->provider, sizeof t->provider, "sim");
    snprintf(t->provider_type, sizeof t->provider_type, "simulator");
    snprintf(t->request_model, sizeof t->request_model, "gpt-4o");
    snprintf(t->response_model, sizeof t->response_model, "gpt-4o-2024");
    snprintf(t->response_id, sizeof t->response_id, "chatcmpl-1");
    snprintf(t->finish_reasons, sizeof t->finish_reasons, "stop");
    t->status = 200;
    t->has_temperature = true;
    t->temperature = 0.5;
    t->input_tokens = 12;
    t->output_tokens = 7;
    t->cost_usd = 0.000123;
    t->cost_known = true;
    t->attempts = 2;
    t->input_messages = "[{\"role\":\"user\",\"content\":\"hi\"}]";
    span_rec *root = trace_add_span(t, SPAN_REQUEST, t->start_ns);
    root->end_ns = t->end_ns;
    span_rec *a1 = trace_add_span(t, SPAN_ATTEMPT, t->start_ns + 1000000);
    a1->end_ns = a1->start_ns + 50000000;
    a1->http_status = 429;
    snprintf(a1->provider, sizeof a1->provider, "sim");
    snprintf(a1->error_type, sizeof a1->error_type, "429");
    span_rec *a2 = trace_add_span(t, SPAN_ATTEMPT, t->start_ns + 100000000);
    a2->end_ns = t->end_ns - 1000000;
    a2->http_status = 200;
    snprintf(a2->provider, sizeof a2->provider, "sim");
    return t;
}

TEST(query_trace_get_with_spans)
{
    const char *url = fill_store();
    if (!url)
        return;
    store *s = NULL;
    char msg[256];
    CHECK_INT(store_open(url, &s, msg, sizeof msg), ERR_OK);
    trace_rec *t = sample_trace();
    char tid[33];
    trace_id_hex(t->trace_id, tid);
    CHECK_INT(store_put_traces(s, &t, 1, msg, sizeof msg), ERR_OK);
    store_close(s);
    trace_free(t);

    /* upper-case ids are the same trace */
    char upper[33];
    for (int i = 0; i < 33; i++)
        upper[i] = (char)(tid[i] >= 'a' && tid[i] <= 'f' ? tid[i] - 32 : tid[i]);
    json_t *j = NULL;
    query_error e = { 0 };
    CHECK_INT(query_trace_get(url, sv_from(upper), &j, &e), ERR_OK);
    CHECK_STR(json_string_value(json_object_get(j, "trace_id")), tid);
    CHECK_STR(json_string_value(json_object_get(j, "request_model")), "gpt-4o");
    CHECK_INT(json_integer_value(json_object_get(j, "status")), 200);
    CHECK_INT(json_integer_value(json_object_get(j, "input_tokens")), 12);
    CHECK(json_is_null(json_object_get(j, "cache_read_tokens")));
    CHECK(json_real_value(json_object_get(j, "cost_usd")) == 0.000123);
    CHECK(json_real_value(json_object_get(j, "duration_ms")) == 250.0);
    CHECK(json_is_array(json_object_get(j, "finish_reasons")));
    CHECK_STR(json_string_value(json_array_get(json_object_get(j, "finish_reasons"), 0)), "stop");
    CHECK(json_real_value(json_object_get(json_object_get(j, "params"), "temperature")) == 0.5);
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(j, "input_messages"), 0), "content")), "hi");
    json_t *spans = json_object_get(j, "spans");
    CHECK_INT(json_array_size(spans), 3);
    json_t *root = json_array_get(spans, 0), *att = json_array_get(spans, 1);
    CHECK_STR(json_string_value(json_object_get(root, "kind")), "request");
    CHECK_STR(json_string_value(json_object_get(root, "name")), "chat gpt-4o");
    CHECK(json_is_null(json_object_get(root, "parent_id")));
    CHECK(json_real_value(json_object_get(root, "duration_ms")) == 250.0);
    CHECK_STR(json_string_value(json_object_get(json_object_get(root, "attributes"), "gen_ai.request.model")), "gpt-4o");
    CHECK_STR(json_string_value(json_object_get(att, "kind")), "attempt");
    CHECK_STR(json_string_value(json_object_get(att, "parent_id")), json_string_value(json_object_get(root, "span_id")));
    CHECK_INT(json_integer_value(json_object_get(json_object_get(att, "attributes"), "http.response.status_code")), 429);
    CHECK_INT(json_array_size(json_object_get(j, "scores")), 0);
    json_decref(j);

    static const char *unknown[] = { "ffffffffffffffffffffffffffffffff", "nothex", "", "0123456789abcdef0123456789abcdeg",
                                     "0123456789abcdef0123456789abcdef0" };
    for (size_t i = 0; i < countof(unknown); i++) {
        j = NULL;
        CHECK_INT(query_trace_get(url, sv_from(unknown[i]), &j, &e), ERR_NOTFOUND);
        CHECK_INT(e.status, 404);
        CHECK_STR(e.code, "trace_not_found");
        CHECK(j == NULL);
    }
    drop_store();
}

TEST(query_search_timeout)
{
    const char *url = fill_store();
    if (!url)
        return;
    query_filter f = { 0 };
    query_error e = { 0 };
    json_t *j = NULL;
    CHECK_INT(query_filter_set(&f, "q", SV("matches-nothing"), &e), ERR_OK);
    f.timeout_ms = 1;
    usleep(2000); /* nothing: the deadline is taken when the search starts */
    sqlite3 *db;
    sqlite3_open(url + 9, &db);
    /* enough rows that the scan outlasts a millisecond */
    exec_ok(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
                "INSERT INTO traces (trace_id, start_ns, end_ns, duration_ms, status, stream, input_messages) "
                "SELECT printf('%032x', i), i, i, 0, 200, 0, hex(randomblob(200)) FROM n");
    sqlite3_close(db);
    CHECK_INT(query_traces_list(url, &f, &j, &e), ERR_STORE);
    CHECK_INT(e.status, 503);
    CHECK_STR(e.code, "search_timeout");
    CHECK(j == NULL);
    f.timeout_ms = 0; /* the default lets it finish */
    CHECK_INT(query_traces_list(url, &f, &j, &e), ERR_OK);
    CHECK_INT(json_array_size(json_object_get(j, "data")), 0);
    json_decref(j);
    drop_store();
}

TEST(query_bad_utf8_is_repaired)
{
    const char *url = fill_store();
    if (!url)
        return;
    sqlite3 *db;
    sqlite3_open(url + 9, &db);
    exec_ok(db, "INSERT INTO traces (trace_id, request_id, start_ns, end_ns, duration_ms, status, stream, params) VALUES "
                "('eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee', CAST(X'61FF62C3' AS TEXT), 1932181400000000000, 1932181400000000001, 0, 200, 0, '{not json')");
    sqlite3_close(db);
    json_t *j = NULL;
    query_error e = { 0 };
    CHECK_INT(query_trace_get(url, SV("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"), &j, &e), ERR_OK);
    CHECK_STR(json_string_value(json_object_get(j, "request_id")), "a\xef\xbf\xbd" "b\xef\xbf\xbd");
    CHECK_STR(json_string_value(json_object_get(j, "params")), "{not json"); /* kept as text */
    char *s = json_dumps(j, 0);
    CHECK(s != NULL);
    free(s);
    json_decref(j);
    drop_store();
}

TEST(query_store_missing_or_unmigrated)
{
    query_filter f = { 0 };
    query_error e = { 0 };
    json_t *j = NULL;
    CHECK_INT(query_traces_list("sqlite:///nonexistent-dir/x.db", &f, &j, &e), ERR_STORE);
    CHECK_INT(e.status, 503);
    CHECK(j == NULL);
    CHECK_INT(query_traces_list("postgres://x", &f, &j, &e), ERR_STORE);
    CHECK_INT(e.status, 500);
    char path[] = "/tmp/genaiops-query-empty-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    sqlite3 *db;
    sqlite3_open(path, &db);
    exec_ok(db, "CREATE TABLE x(y)");
    sqlite3_close(db);
    char url[128];
    snprintf(url, sizeof url, "sqlite://%s", path);
    CHECK_INT(query_traces_list(url, &f, &j, &e), ERR_STORE);
    CHECK_INT(e.status, 503);
    CHECK_STR(e.code, "store_not_migrated");
    query_shutdown();
    unlink(path);
}

/* ---- scores ---- */

static err_code post(err_code (*fn)(const char *, const char *, size_t, json_t **, query_error *), const char *url,
                     const char *body, json_t **out, query_error *e)
{
    *e = (query_error){ 0 };
    return fn(url, body, strlen(body), out, e);
}

TEST(query_scores_and_configs)
{
    const char *url = fill_store();
    if (!url)
        return;
    gen_row g;
    gen(5, &g);
    char body[1024];
    json_t *j = NULL;
    query_error e;

    static const char *configs[] = {
        "{\"name\":\"quality\",\"data_type\":\"numeric\",\"min_value\":0,\"max_value\":1,\"description\":\"0..1\"}",
        "{\"name\":\"verdict\",\"data_type\":\"categorical\",\"categories\":[\"good\",\"bad\"]}",
        "{\"name\":\"helpful\",\"data_type\":\"boolean\"}",
        "{\"name\":\"free\",\"data_type\":\"numeric\"}",
    };
    for (size_t i = 0; i < countof(configs); i++) {
        CHECK_INT(post(query_score_config_create, url, configs[i], &j, &e), ERR_OK);
        json_decref(j);
    }
    CHECK_INT(post(query_score_config_create, url, configs[0], &j, &e), ERR_EXISTS);
    CHECK_INT(e.status, 409);
    CHECK_STR(e.param, "name");

    static const struct {
        const char *body, *param;
        int status;
    } bad_configs[] = {
        { "{\"name\":\"x\"}", "data_type", 400 },
        { "{\"data_type\":\"numeric\"}", "name", 400 },
        { "{\"name\":\"x\",\"data_type\":\"float\"}", "data_type", 400 },
        { "{\"name\":\"x\",\"data_type\":\"numeric\",\"min_value\":2,\"max_value\":1}", "min_value", 400 },
        { "{\"name\":\"x\",\"data_type\":\"numeric\",\"min_value\":\"0\"}", "min_value", 400 },
        { "{\"name\":\"x\",\"data_type\":\"boolean\",\"max_value\":1}", "max_value", 400 },
        { "{\"name\":\"x\",\"data_type\":\"categorical\"}", "categories", 400 },
        { "{\"name\":\"x\",\"data_type\":\"categorical\",\"categories\":[]}", "categories", 400 },
        { "{\"name\":\"x\",\"data_type\":\"categorical\",\"categories\":[\"a\",\"a\"]}", "categories", 400 },
        { "{\"name\":\"x\",\"data_type\":\"categorical\",\"categories\":[\"a\",1]}", "categories", 400 },
        { "{\"name\":\"x\",\"data_type\":\"numeric\",\"categories\":[\"a\"]}", "categories", 400 },
        { "{\"name\":\"x\",\"data_type\":\"numeric\",\"extra\":1}", "extra", 400 },
        { "{\"name\":\"\",\"data_type\":\"numeric\"}", "name", 400 },
        { "{\"name\":\"a\\nb\",\"data_type\":\"numeric\"}", "name", 400 },
        { "[1]", "", 400 },
        { "{", "", 400 },
        { "", "", 400 },
        { "{\"name\":\"x\",\"name\":\"y\",\"data_type\":\"numeric\"}", "", 400 },
    };
    for (size_t i = 0; i < countof(bad_configs); i++) {
        j = NULL;
        post(query_score_config_create, url, bad_configs[i].body, &j, &e);
        if (e.status != bad_configs[i].status || strcmp(e.param, bad_configs[i].param) != 0 || j)
            test_fail(__FILE__, __LINE__, "config %s: status %d param '%s' (%s)", bad_configs[i].body, e.status, e.param,
                      e.message);
    }
    CHECK_INT(query_score_configs_list(url, &j, &e), ERR_OK);
    json_t *data = json_object_get(j, "data");
    CHECK_INT(json_array_size(data), 4);
    CHECK_STR(json_string_value(json_object_get(json_array_get(data, 0), "name")), "free");
    json_t *verdict = json_array_get(data, 3);
    CHECK_STR(json_string_value(json_object_get(verdict, "name")), "verdict");
    CHECK_STR(json_string_value(json_array_get(json_object_get(verdict, "categories"), 1)), "bad");
    CHECK(json_real_value(json_object_get(json_array_get(data, 2), "max_value")) == 1.0);
    json_decref(j);

    /* good scores */
    static const char *good[] = {
        "{\"trace_id\":\"%s\",\"name\":\"quality\",\"value\":0.75,\"comment\":\"fine\",\"source\":\"human\"}",
        "{\"trace_id\":\"%s\",\"name\":\"verdict\",\"value\":\"good\",\"source\":\"model\"}",
        "{\"trace_id\":\"%s\",\"name\":\"helpful\",\"value\":true,\"source\":\"code\"}",
        "{\"trace_id\":\"%s\",\"name\":\"helpful\",\"value\":0}", /* 0/1 for a boolean config */
        "{\"trace_id\":\"%s\",\"name\":\"unconfigured\",\"value\":\"anything\"}",
        "{\"trace_id\":\"%s\",\"name\":\"free\",\"value\":-1e6,\"data_type\":\"numeric\"}",
    };
    for (size_t i = 0; i < countof(good); i++) {
        snprintf(body, sizeof body, good[i], g.id);
        j = NULL;
        if (post(query_score_add, url, body, &j, &e) != ERR_OK)
            test_fail(__FILE__, __LINE__, "score %s refused: %s", body, e.message);
        CHECK_INT(json_string_length(json_object_get(j, "id")), 32);
        json_decref(j);
    }

    static const struct {
        const char *body, *param;
        int status;
    } bad[] = {
        { "{\"trace_id\":\"%s\",\"name\":\"quality\",\"value\":1.5}", "value", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"quality\",\"value\":-0.1}", "value", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"quality\",\"value\":\"high\"}", "value", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"verdict\",\"value\":\"meh\"}", "value", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"verdict\",\"value\":1}", "value", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"helpful\",\"value\":\"yes\"}", "value", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"helpful\",\"value\":2}", "value", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"x\",\"value\":2,\"data_type\":\"boolean\"}", "value", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"x\",\"value\":true,\"data_type\":\"numeric\"}", "value", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"x\",\"value\":1,\"data_type\":\"categorical\"}", "value", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"x\",\"value\":1,\"data_type\":\"stars\"}", "data_type", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"x\",\"value\":[1]}", "value", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"x\",\"value\":{}}", "value", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"x\"}", "value", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"x\",\"value\":null}", "value", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"x\",\"value\":\"\"}", "value", 400 },
        { "{\"trace_id\":\"%s\",\"value\":1}", "name", 400 },
        { "{\"trace_id\":\"%s\",\"name\":7,\"value\":1}", "name", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"x\",\"value\":1,\"source\":\"user\"}", "source", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"x\",\"value\":1,\"comment\":5}", "comment", 400 },
        { "{\"trace_id\":\"%s\",\"name\":\"x\",\"value\":1,\"traceid\":1}", "traceid", 400 },
        { "{\"name\":\"x\",\"value\":1%s}", "trace_id", 400 },
        { "{\"trace_id\":\"xyz%s\",\"name\":\"x\",\"value\":1}", "trace_id", 400 },
        { "{\"trace_id\":\"ffffffffffffffffffffffffffffffff\",\"name\":\"x\",\"value\":1%s}", "trace_id", 404 },
        { "not json%s", "", 400 },
    };
    for (size_t i = 0; i < countof(bad); i++) {
        snprintf(body, sizeof body, bad[i].body, strstr(bad[i].body, "%s\"") ? g.id : "");
        j = NULL;
        post(query_score_add, url, body, &j, &e);
        if (e.status != bad[i].status || strcmp(e.param, bad[i].param) != 0 || j)
            test_fail(__FILE__, __LINE__, "score %s: status %d param '%s' (%s)", body, e.status, e.param, e.message);
    }

    /* the good ones show on the trace, in order, with their types */
    CHECK_INT(query_trace_get(url, sv_from(g.id), &j, &e), ERR_OK);
    json_t *scores = json_object_get(j, "scores");
    CHECK_INT(json_array_size(scores), countof(good));
    json_t *s0 = json_array_get(scores, 0);
    CHECK_STR(json_string_value(json_object_get(s0, "name")), "quality");
    CHECK(json_real_value(json_object_get(s0, "value")) == 0.75);
    CHECK_STR(json_string_value(json_object_get(s0, "comment")), "fine");
    CHECK_STR(json_string_value(json_object_get(s0, "data_type")), "numeric");
    CHECK_STR(json_string_value(json_object_get(json_array_get(scores, 1), "value")), "good");
    CHECK(json_is_true(json_object_get(json_array_get(scores, 2), "value")));
    CHECK(json_is_false(json_object_get(json_array_get(scores, 3), "value")));
    CHECK_STR(json_string_value(json_object_get(json_array_get(scores, 3), "data_type")), "boolean");
    CHECK_STR(json_string_value(json_object_get(json_array_get(scores, 3), "source")), "human"); /* default */
    CHECK_STR(json_string_value(json_object_get(json_array_get(scores, 4), "data_type")), "categorical");
    json_decref(j);
    drop_store();
}

/* A fuzz crasher: raw NUL bytes in a filter name (not %00) must be refused
 * with the field named, like any malformed name. */
TEST(query_filter_raw_nul_in_name)
{
    static const char q[] = "Q\0\0\0\0\0\0\0\1&status=ep=-3o&status=error&lim\027it=00";
    query_filter f = { 0 };
    query_error e = { 0 };
    err_code r = query_filter_parse(&f, sv_make(q, sizeof q - 1), &e);
    CHECK(r != ERR_OK);
    CHECK_INT(e.status, 400);
    CHECK(e.param[0] != '\0');
    CHECK(strstr(e.message, "malformed filter name") != NULL);
}
