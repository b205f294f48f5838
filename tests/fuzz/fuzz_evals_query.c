/*
 * fuzz_evals_query.c - libFuzzer driver for the Evaluations API's query
 * strings (api_evals_query_parse), its run-id check, and the list's text
 * filter against a scratch store (evstore_search: the filter reaches SQL
 * as a bound parameter; a store with one run, made once).
 *
 * The first byte picks the target ('L' list, 'R' run, 'C' compare query,
 * 'S' search text; anything else: the three query routes and the id
 * check), the rest after one separator byte is the input. Checks beyond
 * "no crash, no leak": a refusal is a 400 with a message and, when the
 * name could be read, a param; an accepted query has its limit and offset
 * in range, NUL-terminated strings, ids that pass the id check, a verdict
 * and a change that are known names, tolerance and alpha in range, and
 * for compare both ids set.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "api/evals.h"
#include "eval/evstore.h"

static char url[256];

static void init_store(void)
{
    if (url[0])
        return;
    snprintf(url, sizeof url, "sqlite:///tmp/genaiops-fuzz-evals-%d.db", (int)getpid());
    unlink(url + 9);
    char msg[256];
    json_t *meta = json_pack("{s:s, s:s, s:s, s:s, s:[{s:s}], s:[{s:s, s:s}], s:i, s:i}", "id", "ev-fuzz-1",
                             "description", "Acme support", "suite", "fuzz.yaml", "started_at", "2026-01-01T00:00:00Z",
                             "prompts", "label", "p", "providers", "id", "sim:echo", "label", "sim:echo", "repeat", 1,
                             "tests", 1);
    evstore_run *s = NULL;
    if (!meta || evstore_begin(url, meta, &s, msg, sizeof msg) != ERR_OK)
        abort();
    json_t *r = json_pack("{s:i, s:i, s:i, s:i, s:s, s:f}", "test", 0, "repeat", 0, "prompt", 0, "provider", 0,
                          "verdict", "pass", "score", 1.0);
    if (!r || evstore_add(s, r) != ERR_OK || evstore_finish(s, NULL, "done", msg, sizeof msg) != ERR_OK)
        abort();
    json_decref(r);
    json_decref(meta);
}

static void fuzz_query(api_evals_route route, const char *p, size_t n)
{
    api_evals_query q;
    query_error e = { 0 };
    err_code rc = api_evals_query_parse(route, sv_make(p, n), &q, &e);
    if (rc != ERR_OK) {
        if (e.status != 400 || !e.message[0] || !memchr(e.message, '\0', sizeof e.message))
            abort();
        json_decref(query_error_json(&e));
        return;
    }
    size_t max = route == API_EVALS_LIST ? API_EVALS_LIST_MAX : route == API_EVALS_RUN ? API_EVALS_RESULTS_MAX
                                                                                        : API_EVALS_ROWS_MAX;
    if (q.limit < 1 || q.limit > max || q.offset > (size_t)API_EVALS_OFFSET_MAX)
        abort();
    if (!memchr(q.q, '\0', sizeof q.q) || !memchr(q.base, '\0', sizeof q.base) ||
        !memchr(q.current, '\0', sizeof q.current) || !memchr(q.verdict, '\0', sizeof q.verdict))
        abort();
    if (q.verdict[0] && strcmp(q.verdict, "pass") && strcmp(q.verdict, "fail") && strcmp(q.verdict, "error"))
        abort();
    if (q.change != EV_CHANGE_ANY && !ev_change_name(q.change))
        abort();
    if (!(q.tolerance >= 0.0 && q.tolerance <= 1.0) || !(q.alpha > 0.0 && q.alpha <= 0.5))
        abort();
    if (route == API_EVALS_COMPARE &&
        (!api_evals_id_valid(sv_from(q.base)) || !api_evals_id_valid(sv_from(q.current))))
        abort();
    if (route != API_EVALS_COMPARE && (q.base[0] || q.current[0]))
        abort();
}

static void fuzz_search(const char *p, size_t n)
{
    init_store();
    char text[EVSTORE_QUERY_MAX + 1];
    size_t k = MIN(n, EVSTORE_QUERY_MAX);
    memcpy(text, p, k);
    text[k] = '\0';
    json_t *out = NULL;
    query_error e = { 0 };
    if (evstore_search(url, 5, text, &out, &e) != ERR_OK || !json_is_array(out) || json_array_size(out) > 1)
        abort();
    json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *p = (const char *)data + 2;
    size_t n = size - 2;
    switch (data[0]) {
    case 'L': fuzz_query(API_EVALS_LIST, p, n); break;
    case 'R': fuzz_query(API_EVALS_RUN, p, n); break;
    case 'C': fuzz_query(API_EVALS_COMPARE, p, n); break;
    case 'S': fuzz_search(p, n); break;
    default:
        fuzz_query(API_EVALS_LIST, p, n);
        fuzz_query(API_EVALS_RUN, p, n);
        fuzz_query(API_EVALS_COMPARE, p, n);
        (void)api_evals_id_valid(sv_make(p, n));
        break;
    }
    return 0;
}
