/*
 * test_api_evals.c - the Evaluations API's query strings (table-driven:
 * each case is a route, a query and the param a refusal must name, or ""
 * when it must be accepted), run ids, and the shared comparison
 * (ev_compare_runs) on two runs written into a scratch store with
 * evstore_begin/add/finish: the pairing, the listing order of the rows,
 * their pages and filter, the unpaired counts and the errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "api/evals.h"
#include "eval/compare.h"
#include "eval/evstore.h"
#include "test.h"

static const struct {
    api_evals_route route;
    const char *query;
    const char *param; /* "" = accepted */
} cases[] = {
    { API_EVALS_LIST, "", "" },
    { API_EVALS_LIST, "limit=500", "" },
    { API_EVALS_LIST, "limit=1&q=ci+gate", "" },
    { API_EVALS_LIST, "&&limit=3&", "" },
    { API_EVALS_LIST, "limit=0", "limit" },
    { API_EVALS_LIST, "limit=501", "limit" },
    { API_EVALS_LIST, "limit=+5", "limit" },
    { API_EVALS_LIST, "limit=5x", "limit" },
    { API_EVALS_LIST, "limit=", "limit" },
    { API_EVALS_LIST, "limit", "limit" },
    { API_EVALS_LIST, "limit=99999999999999999999", "limit" },
    { API_EVALS_LIST, "limit=2&limit=2", "limit" },
    { API_EVALS_LIST, "offset=1", "offset" },
    { API_EVALS_LIST, "verdict=fail", "verdict" },
    { API_EVALS_LIST, "q=%zz", "q" },
    { API_EVALS_LIST, "q=a%00b", "q" },
    { API_EVALS_LIST, "%zz=1", "%zz" },
    { API_EVALS_LIST, "=1", "" }, /* an empty name: refused, naming nothing */
    { API_EVALS_RUN, "results=false", "" },
    { API_EVALS_RUN, "results=1&verdict=error&limit=1000&offset=1000000000", "" },
    { API_EVALS_RUN, "results=yes", "results" },
    { API_EVALS_RUN, "verdict=FAIL", "verdict" },
    { API_EVALS_RUN, "limit=1001", "limit" },
    { API_EVALS_RUN, "offset=1000000001", "offset" },
    { API_EVALS_RUN, "offset=-1", "offset" },
    { API_EVALS_RUN, "base=a", "base" },
    { API_EVALS_COMPARE, "base=a&current=b", "" },
    { API_EVALS_COMPARE, "base=latest&current=ev-1&tolerance=0&alpha=0.5&change=regressed&limit=10000", "" },
    { API_EVALS_COMPARE, "base=a&current=b&tolerance=1e-2&alpha=1e-9", "" },
    { API_EVALS_COMPARE, "current=b", "base" },
    { API_EVALS_COMPARE, "base=a", "current" },
    { API_EVALS_COMPARE, "base=a+b&current=b", "base" },
    { API_EVALS_COMPARE, "base=a&current=b/c", "current" },
    { API_EVALS_COMPARE, "base=a&current=b&tolerance=1.5", "tolerance" },
    { API_EVALS_COMPARE, "base=a&current=b&tolerance=nan", "tolerance" },
    { API_EVALS_COMPARE, "base=a&current=b&tolerance=inf", "tolerance" },
    { API_EVALS_COMPARE, "base=a&current=b&tolerance=0x1", "tolerance" },
    { API_EVALS_COMPARE, "base=a&current=b&alpha=0", "alpha" },
    { API_EVALS_COMPARE, "base=a&current=b&alpha=0.6", "alpha" },
    { API_EVALS_COMPARE, "base=a&current=b&change=worse", "change" },
    { API_EVALS_COMPARE, "base=a&current=b&limit=10001", "limit" },
    { API_EVALS_COMPARE, "base=a&current=b&q=x", "q" },
};

TEST(api_evals_query_table)
{
    for (size_t i = 0; i < countof(cases); i++) {
        api_evals_query q;
        query_error e = { 0 };
        err_code rc = api_evals_query_parse(cases[i].route, sv_from(cases[i].query), &q, &e);
        bool want_ok = cases[i].param[0] == '\0' && strcmp(cases[i].query, "=1") != 0;
        if (want_ok != (rc == ERR_OK))
            test_fail(__FILE__, __LINE__, "case %zu '%s': rc %d (%s)", i, cases[i].query, rc, e.message);
        if (rc != ERR_OK) {
            CHECK_INT(e.status, 400);
            CHECK(e.message[0] != '\0');
            if (strcmp(e.param, cases[i].param) != 0)
                test_fail(__FILE__, __LINE__, "case %zu '%s': param '%s', expected '%s'", i, cases[i].query, e.param,
                          cases[i].param);
        }
    }
}

TEST(api_evals_query_values)
{
    api_evals_query q;
    query_error e = { 0 };
    CHECK_INT(api_evals_query_parse(API_EVALS_LIST, SV(""), &q, &e), ERR_OK);
    CHECK_INT(q.limit, API_EVALS_LIST_DEFAULT);
    CHECK_INT(api_evals_query_parse(API_EVALS_RUN, SV(""), &q, &e), ERR_OK);
    CHECK_INT(q.limit, API_EVALS_RESULTS_DEFAULT);
    CHECK(q.results);
    CHECK_STR(q.verdict, "");
    CHECK_INT(api_evals_query_parse(API_EVALS_RUN, SV("results=0&verdict=fail&limit=7&offset=14"), &q, &e), ERR_OK);
    CHECK(!q.results);
    CHECK_STR(q.verdict, "fail");
    CHECK_INT(q.limit, 7);
    CHECK_INT(q.offset, 14);
    CHECK_INT(api_evals_query_parse(API_EVALS_LIST, SV("q=Acme%20support+gate"), &q, &e), ERR_OK);
    CHECK_STR(q.q, "Acme support gate");
    CHECK_INT(api_evals_query_parse(API_EVALS_COMPARE, SV("base=ev-1&current=latest"), &q, &e), ERR_OK);
    CHECK_STR(q.base, "ev-1");
    CHECK_STR(q.current, "latest");
    CHECK(q.tolerance == 0.05 && q.alpha == 0.05);
    CHECK_INT(q.change, EV_CHANGE_ANY);
    CHECK_INT(q.limit, API_EVALS_ROWS_DEFAULT);
    CHECK_INT(api_evals_query_parse(API_EVALS_COMPARE, SV("base=a&current=b&tolerance=0.2&alpha=0.01&change=fixed"),
                                    &q, &e),
              ERR_OK);
    CHECK(q.tolerance == 0.2 && q.alpha == 0.01);
    CHECK_INT(q.change, EV_CHANGE_FIXED);
    /* a text filter at its limit passes, one byte more does not */
    char big[EVSTORE_QUERY_MAX + 8];
    memcpy(big, "q=", 2);
    memset(big + 2, 'x', EVSTORE_QUERY_MAX);
    CHECK_INT(api_evals_query_parse(API_EVALS_LIST, sv_make(big, EVSTORE_QUERY_MAX + 2), &q, &e), ERR_OK);
    big[EVSTORE_QUERY_MAX + 2] = 'x';
    CHECK_INT(api_evals_query_parse(API_EVALS_LIST, sv_make(big, EVSTORE_QUERY_MAX + 3), &q, &e), ERR_INVAL);
    CHECK_STR(e.param, "q");
}

TEST(api_evals_ids)
{
    CHECK(api_evals_id_valid(SV("ev-20261121-46cee965")));
    CHECK(api_evals_id_valid(SV("latest")));
    CHECK(api_evals_id_valid(SV("a.b_c")));
    CHECK(!api_evals_id_valid(SV("")));
    CHECK(!api_evals_id_valid(SV("a b")));
    CHECK(!api_evals_id_valid(SV("a/b")));
    CHECK(!api_evals_id_valid(SV("a%41")));
    char longid[API_EVALS_ID_MAX + 2];
    memset(longid, 'a', sizeof longid);
    CHECK(api_evals_id_valid(sv_make(longid, API_EVALS_ID_MAX)));
    CHECK(!api_evals_id_valid(sv_make(longid, API_EVALS_ID_MAX + 1)));
}

TEST(api_evals_change_names)
{
    ev_change c;
    CHECK(ev_change_parse("regressed", &c) && c == EV_CHANGE_REGRESSED);
    CHECK(ev_change_parse("fixed", &c) && c == EV_CHANGE_FIXED);
    CHECK(ev_change_parse("same", &c) && c == EV_CHANGE_SAME);
    CHECK(ev_change_parse("any", &c) && c == EV_CHANGE_ANY);
    CHECK(ev_change_parse("", &c) && c == EV_CHANGE_ANY);
    CHECK(!ev_change_parse("Regressed", &c));
    CHECK(ev_change_name(EV_CHANGE_ANY) == NULL);
    CHECK_STR(ev_change_name(EV_CHANGE_SAME), "same");
}

/* ---- the comparison on a scratch store ---- */

/* Stores a run `id` whose test i has verdicts[i] ('p', 'f', 'e'). */
static void store_run(const char *url, const char *id, const char *verdicts)
{
    char msg[256];
    json_t *meta = json_pack("{s:s, s:s, s:s, s:[], s:[], s:i, s:i}", "id", id, "suite", "t.yaml", "started_at",
                             "2026-01-01T00:00:00Z", "prompts", "providers", "repeat", 1, "tests",
                             (int)strlen(verdicts));
    evstore_run *s = NULL;
    if (evstore_begin(url, meta, &s, msg, sizeof msg) != ERR_OK) {
        test_fail(__FILE__, __LINE__, "evstore_begin: %s", msg);
        json_decref(meta);
        return;
    }
    for (size_t i = 0; verdicts[i]; i++) {
        const char *v = verdicts[i] == 'p' ? "pass" : verdicts[i] == 'f' ? "fail" : "error";
        char d[32];
        snprintf(d, sizeof d, "case %zu", i);
        json_t *r = json_pack("{s:i, s:i, s:i, s:i, s:s, s:s, s:f}", "test", (int)i, "repeat", 0, "prompt", 0,
                              "provider", 0, "description", d, "verdict", v, "score", verdicts[i] == 'p' ? 1.0 : 0.0);
        CHECK_INT(evstore_add(s, r), ERR_OK);
        json_decref(r);
    }
    CHECK_INT(evstore_finish(s, NULL, "done", msg, sizeof msg), ERR_OK);
    json_decref(meta);
}

static const char *row_str(const json_t *row, const char *k)
{
    return json_string_value(json_object_get(row, k));
}

TEST(api_evals_compare_rows)
{
    char path[128], url[160];
    snprintf(path, sizeof path, "/tmp/genaiops-unit-evals-%d.db", (int)getpid());
    snprintf(url, sizeof url, "sqlite://%s", path);
    unlink(path);
    /* test:      0123456 (base has 6 tests, current 7) */
    store_run(url, "ev-base", "ppfpep");
    store_run(url, "ev-cur", "pfpeffp");
    json_t *c = NULL;
    query_error e = { 0 };
    ev_compare_rows all = { 100, 0, EV_CHANGE_ANY };
    CHECK_INT(ev_compare_runs(url, "ev-base", "ev-c", NULL, 0.05, 0.05, 1, &all, &c, &e), ERR_OK);
    if (c) {
        CHECK_STR(json_string_value(json_object_get(c, "baseline")), "ev-base");
        CHECK_STR(json_string_value(json_object_get(c, "current")), "ev-cur");
        /* pairs 0..5; changes: 0 same, 1 regressed, 2 fixed, 3 regressed (to error), 4 same (error->fail),
         * 5 regressed; test 6 is unpaired */
        const json_t *rows = json_object_get(c, "rows");
        CHECK_INT(json_array_size(rows), 6);
        static const int order[] = { 1, 3, 5, 2, 0, 4 };
        static const char *const changes[] = { "regressed", "regressed", "regressed", "fixed", "same", "same" };
        for (size_t i = 0; i < 6 && i < json_array_size(rows); i++) {
            const json_t *r = json_array_get(rows, i);
            CHECK_INT(json_integer_value(json_object_get(r, "test")), order[i]);
            CHECK_STR(row_str(r, "change"), changes[i]);
        }
        const json_t *r3 = json_array_get(rows, 1);
        CHECK_STR(row_str(json_object_get(r3, "current"), "verdict"), "error");
        CHECK_STR(row_str(r3, "key"), "tests[3] prompt 0 provider 0 (case 3)");
        CHECK_STR(row_str(r3, "description"), "case 3");
        CHECK_INT(json_integer_value(json_object_get(json_object_get(c, "unpaired"), "base")), 0);
        CHECK_INT(json_integer_value(json_object_get(json_object_get(c, "unpaired"), "current")), 1);
        const json_t *ch = json_object_get(c, "changes");
        CHECK_INT(json_integer_value(json_object_get(ch, "regressed")), 3);
        CHECK_INT(json_integer_value(json_object_get(ch, "fixed")), 1);
        CHECK_INT(json_integer_value(json_object_get(ch, "same")), 2);
        /* the statistics leave errored pairs out: 4 pairs, 2 regressed, 1 improved */
        CHECK_INT(json_integer_value(json_object_get(c, "n")), 4);
        CHECK_INT(json_integer_value(json_object_get(c, "regressed_count")), 2);
        CHECK_INT(json_integer_value(json_object_get(c, "improved_count")), 1);
        CHECK(json_is_null(json_object_get(c, "next_offset")));
        json_decref(c);
    }
    /* one page in the middle, and a filter */
    ev_compare_rows page = { 2, 2, EV_CHANGE_ANY };
    CHECK_INT(ev_compare_runs(url, "ev-base", "ev-cur", NULL, 0.05, 0.05, 1, &page, &c, &e), ERR_OK);
    if (c) {
        const json_t *rows = json_object_get(c, "rows");
        CHECK_INT(json_array_size(rows), 2);
        CHECK_INT(json_integer_value(json_object_get(json_array_get(rows, 0), "test")), 5);
        CHECK_INT(json_integer_value(json_object_get(json_array_get(rows, 1), "test")), 2);
        CHECK_INT(json_integer_value(json_object_get(c, "next_offset")), 4);
        CHECK_INT(json_integer_value(json_object_get(c, "rows_total")), 6);
        json_decref(c);
    }
    ev_compare_rows same = { 1, 1, EV_CHANGE_SAME };
    CHECK_INT(ev_compare_runs(url, "ev-base", "ev-cur", NULL, 0.05, 0.05, 1, &same, &c, &e), ERR_OK);
    if (c) {
        const json_t *rows = json_object_get(c, "rows");
        CHECK_INT(json_array_size(rows), 1);
        CHECK_INT(json_integer_value(json_object_get(json_array_get(rows, 0), "test")), 4);
        CHECK_INT(json_integer_value(json_object_get(c, "rows_total")), 2);
        CHECK(json_is_null(json_object_get(c, "next_offset")));
        json_decref(c);
    }
    /* without rows: no row keys at all (the CLI's shape) */
    CHECK_INT(ev_compare_runs(url, "latest", "ev-cur", NULL, 0.05, 0.05, 1, NULL, &c, &e), ERR_OK);
    if (c) {
        CHECK_STR(json_string_value(json_object_get(c, "baseline")), "ev-base");
        CHECK(json_object_get(c, "rows") == NULL && json_object_get(c, "unpaired") == NULL);
        json_decref(c);
    }
    /* errors name the parameter */
    CHECK_INT(ev_compare_runs(url, "ev-nope", "ev-cur", NULL, 0.05, 0.05, 1, &all, &c, &e), ERR_NOTFOUND);
    CHECK_STR(e.param, "base");
    CHECK_INT(e.status, 404);
    CHECK_INT(ev_compare_runs(url, "ev-base", "ev-nope", NULL, 0.05, 0.05, 1, &all, &c, &e), ERR_NOTFOUND);
    CHECK_STR(e.param, "current");
    CHECK_INT(ev_compare_runs(url, "ev-", "ev-cur", NULL, 0.05, 0.05, 1, &all, &c, &e), ERR_INVAL);
    CHECK_STR(e.code, "ambiguous_run_id");
    CHECK_INT(ev_compare_runs(url, "ev-base", "ev-cur", NULL, -1, 0.05, 1, &all, &c, &e), ERR_INVAL);
    CHECK_STR(e.param, "tolerance");
    CHECK_INT(ev_compare_runs(url, "ev-base", "ev-cur", NULL, 0.05, 1.0, 1, &all, &c, &e), ERR_INVAL);
    CHECK_STR(e.param, "alpha");
    CHECK(c == NULL);

    /* a page of results, failures first */
    json_t *run = NULL;
    evstore_page pg = { true, NULL, 3, 0 };
    CHECK_INT(evstore_run_page(url, "ev-cur", &pg, &run, &e), ERR_OK);
    if (run) {
        const json_t *res = json_object_get(run, "results");
        static const int want[] = { 3, 1, 4 };
        CHECK_INT(json_array_size(res), 3);
        for (size_t i = 0; i < 3 && i < json_array_size(res); i++)
            CHECK_INT(json_integer_value(json_object_get(json_array_get(res, i), "test")), want[i]);
        CHECK_INT(json_integer_value(json_object_get(run, "total")), 7);
        CHECK_INT(json_integer_value(json_object_get(run, "next_offset")), 3);
        CHECK_INT(json_integer_value(json_object_get(json_object_get(run, "counts"), "fail")), 3);
        json_decref(run);
    }
    pg = (evstore_page){ true, "pass", 10, 0 };
    CHECK_INT(evstore_run_page(url, "ev-cur", &pg, &run, &e), ERR_OK);
    if (run) {
        CHECK_INT(json_array_size(json_object_get(run, "results")), 3);
        CHECK_INT(json_integer_value(json_object_get(run, "total")), 3);
        CHECK(json_is_null(json_object_get(run, "next_offset")));
        json_decref(run);
    }
    /* the list's text filter */
    json_t *list = NULL;
    CHECK_INT(evstore_search(url, 10, "EV-B", &list, &e), ERR_OK);
    CHECK_INT(json_array_size(list), 1);
    json_decref(list);
    CHECK_INT(evstore_search(url, 10, "100%", &list, &e), ERR_OK);
    CHECK_INT(json_array_size(list), 0);
    json_decref(list);
    unlink(path);
    char side[160];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}
