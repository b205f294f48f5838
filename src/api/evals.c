/*
 * evals.c - REST handlers for evaluation runs (see evals.h and docs/api.md,
 * "Evaluations").
 *
 * As in api/traces.c, a request is checked on the event loop first: the
 * path picks the route (the list, "compare", or a run id), the method must
 * be GET or HEAD, and the query string is parsed against the route's table
 * of parameters (api_evals_query_parse, which the fuzz target drives). The
 * store work - evstore_search, evstore_run_page or ev_compare_runs, which
 * block on SQLite and, for a comparison, run a bootstrap - goes to the
 * worker loop's thread pool in a job that owns copies of everything it
 * reads. The after-work callback answers with the JSON or the OpenAI-shaped
 * error, or drops the result when the client went away.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>
#include "api/common.h"
#include "api/evals.h"
#include "http/parser.h"

#define QUERY_VALUE_MAX (EVSTORE_QUERY_MAX * 3) /* before decoding: %XX per byte */

/* ---- the query string ---- */

typedef enum param_kind { P_LIMIT, P_OFFSET, P_TEXT, P_BOOL, P_VERDICT, P_ID, P_REAL, P_CHANGE } param_kind;

#define R_LIST (1u << API_EVALS_LIST)
#define R_RUN (1u << API_EVALS_RUN)
#define R_COMPARE (1u << API_EVALS_COMPARE)

/* Every parameter, the routes that take it and how its value is read. */
static const struct param_def {
    const char *name;
    unsigned routes;
    param_kind kind;
} params[] = {
    { "limit", R_LIST | R_RUN | R_COMPARE, P_LIMIT },
    { "offset", R_RUN | R_COMPARE, P_OFFSET },
    { "q", R_LIST, P_TEXT },
    { "results", R_RUN, P_BOOL },
    { "verdict", R_RUN, P_VERDICT },
    { "base", R_COMPARE, P_ID },
    { "current", R_COMPARE, P_ID },
    { "tolerance", R_COMPARE, P_REAL },
    { "alpha", R_COMPARE, P_REAL },
    { "change", R_COMPARE, P_CHANGE },
};

static const char *const route_params[] = {
    [API_EVALS_LIST] = "limit, q",
    [API_EVALS_RUN] = "results, verdict, limit, offset",
    [API_EVALS_COMPARE] = "base, current, tolerance, alpha, change, limit, offset",
};

bool api_evals_id_valid(sv s)
{
    if (s.len == 0 || s.len > API_EVALS_ID_MAX)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.'))
            return false;
    }
    return true;
}

/* A whole number from lo to hi written in decimal digits only. */
static bool whole(const char *v, long lo, long hi, long *out)
{
    size_t n = strlen(v);
    if (n == 0 || n > 10 || strspn(v, "0123456789") != n)
        return false;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < lo || x > hi)
        return false;
    *out = x;
    return true;
}

/* A plain decimal number ("0.05", "1e-3"): no "nan", "inf", hex or spaces. */
static bool real(const char *v, double *out)
{
    size_t n = strlen(v);
    if (n == 0 || n > 32 || strspn(v, "0123456789.eE+-") != n)
        return false;
    char *end;
    double x = strtod(v, &end);
    if (*end || !isfinite(x))
        return false;
    *out = x;
    return true;
}

static err_code bad(query_error *e, const char *name, const char *fmt, const char *v)
{
    return query_fail(e, 400, name, "invalid_query", fmt, name, v);
}

/* Sets one parameter of q from its decoded value. */
static err_code set_param(api_evals_route route, const struct param_def *d, const char *v, api_evals_query *q,
                          query_error *e)
{
    long n;
    double x;
    switch (d->kind) {
    case P_LIMIT: {
        long max = route == API_EVALS_LIST  ? API_EVALS_LIST_MAX
                   : route == API_EVALS_RUN ? API_EVALS_RESULTS_MAX
                                            : API_EVALS_ROWS_MAX;
        if (!whole(v, 1, max, &n))
            return query_fail(e, 400, "limit", "invalid_query", "limit must be a whole number from 1 to %ld, not '%.40s'",
                              max, v);
        q->limit = (size_t)n;
        return ERR_OK;
    }
    case P_OFFSET:
        if (!whole(v, 0, API_EVALS_OFFSET_MAX, &n))
            return query_fail(e, 400, "offset", "invalid_query",
                              "offset must be a whole number from 0 to %ld, not '%.40s'", API_EVALS_OFFSET_MAX, v);
        q->offset = (size_t)n;
        return ERR_OK;
    case P_TEXT:
        if (strlen(v) > EVSTORE_QUERY_MAX)
            return query_fail(e, 400, d->name, "invalid_query", "%s is longer than %d bytes", d->name,
                              EVSTORE_QUERY_MAX);
        snprintf(q->q, sizeof q->q, "%s", v);
        return ERR_OK;
    case P_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
            q->results = true;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            q->results = false;
        else
            return bad(e, d->name, "%s must be true or false, not '%.40s'", v);
        return ERR_OK;
    case P_VERDICT:
        if (strcmp(v, "pass") != 0 && strcmp(v, "fail") != 0 && strcmp(v, "error") != 0)
            return bad(e, d->name, "%s must be pass, fail or error, not '%.40s'", v);
        snprintf(q->verdict, sizeof q->verdict, "%s", v);
        return ERR_OK;
    case P_ID: {
        char *dst = strcmp(d->name, "base") == 0 ? q->base : q->current;
        if (!api_evals_id_valid(sv_from(v)))
            return bad(e, d->name,
                       "%s must be a run id (letters, digits, '-', '_', '.'; a unique prefix or latest), not '%.40s'",
                       v);
        size_t idlen = strlen(v); /* at most API_EVALS_ID_MAX: checked above */
        memcpy(dst, v, idlen);
        dst[idlen] = '\0';
        return ERR_OK;
    }
    case P_REAL:
        if (strcmp(d->name, "tolerance") == 0) {
            if (!real(v, &x) || x < 0.0 || x > 1.0)
                return bad(e, d->name, "%s must be a number from 0 to 1, not '%.40s'", v);
            q->tolerance = x;
        } else {
            if (!real(v, &x) || x < 1e-9 || x > 0.5)
                return bad(e, d->name, "%s must be a number from 1e-9 to 0.5, not '%.40s'", v);
            q->alpha = x;
        }
        return ERR_OK;
    case P_CHANGE:
        if (!ev_change_parse(v, &q->change))
            return bad(e, d->name, "%s must be regressed, fixed, same or any, not '%.40s'", v);
        return ERR_OK;
    }
    return query_fail(e, 500, NULL, NULL, "unknown parameter kind");
}

err_code api_evals_query_parse(api_evals_route route, sv query, api_evals_query *q, query_error *e)
{
    *q = (api_evals_query){
        .limit = route == API_EVALS_LIST  ? API_EVALS_LIST_DEFAULT
                 : route == API_EVALS_RUN ? API_EVALS_RESULTS_DEFAULT
                                          : API_EVALS_ROWS_DEFAULT,
        .results = true,
        .tolerance = 0.05,
        .alpha = 0.05,
        .change = EV_CHANGE_ANY,
    };
    if ((unsigned)route > API_EVALS_COMPARE)
        return query_fail(e, 500, NULL, NULL, "unknown route");
    uint32_t seen = 0;
    size_t pos = 0;
    sv rawname, rawval;
    while (http_query_next(query, &pos, &rawname, &rawval)) {
        if (!rawval.p)
            rawval = SV(""); /* "a" is "a=" */
        char name[33], val[QUERY_VALUE_MAX + 1];
        size_t nlen = http_url_decode(name, sizeof name, rawname);
        if (nlen == (size_t)-1 || nlen == 0 || memchr(name, '\0', nlen)) {
            char shown[33];
            size_t k = MIN(rawname.len, sizeof shown - 1);
            for (size_t m = 0; m < k; m++)
                shown[m] = rawname.p[m] >= 0x20 && rawname.p[m] < 0x7f ? rawname.p[m] : '?';
            shown[k] = '\0';
            return query_fail(e, 400, shown, "invalid_query", "malformed query parameter name '%s'", shown);
        }
        size_t k = 0;
        while (k < countof(params) && !(strcmp(params[k].name, name) == 0 && (params[k].routes & (1u << route))))
            k++;
        if (k == countof(params))
            return query_fail(e, 400, name, "invalid_query", "unknown query parameter '%s' (this route takes %s)",
                              name, route_params[route]);
        if (seen & (1u << k))
            return query_fail(e, 400, name, "invalid_query", "'%s' is given more than once", name);
        seen |= 1u << k;
        size_t vlen = http_url_decode(val, sizeof val, rawval);
        if (vlen == (size_t)-1 || memchr(val, '\0', vlen))
            return query_fail(e, 400, name, "invalid_query", "the value of '%s' is malformed or too long", name);
        err_code rc = set_param(route, &params[k], val, q, e);
        if (rc != ERR_OK)
            return rc;
    }
    if (route == API_EVALS_COMPARE && !q->base[0])
        return query_fail(e, 400, "base", "invalid_query", "base is required: the run to compare against");
    if (route == API_EVALS_COMPARE && !q->current[0])
        return query_fail(e, 400, "current", "invalid_query", "current is required: the run to compare");
    return ERR_OK;
}

/* ---- the jobs ---- */

/* What a job needs beyond api_job: the route, the run id, the query. */
typedef struct evals_args {
    api_evals_route route;
    char id[API_EVALS_ID_MAX + 1];
    api_evals_query q;
} evals_args;

/* On a pool thread: the route's store work. */
static err_code run(api_job *j)
{
    const evals_args *a = j->data;
    switch (a->route) {
    case API_EVALS_LIST: {
        json_t *arr = NULL;
        err_code rc = evstore_search(j->url, a->q.limit, a->q.q, &arr, &j->e);
        if (rc == ERR_OK && !(j->out = json_pack("{s:o}", "data", arr)))
            rc = query_fail(&j->e, 500, NULL, "out_of_memory", "out of memory");
        return rc;
    }
    case API_EVALS_RUN: {
        evstore_page pg = { a->q.results, a->q.verdict, a->q.limit, a->q.offset };
        return evstore_run_page(j->url, a->id, &pg, &j->out, &j->e);
    }
    case API_EVALS_COMPARE: {
        ev_compare_rows rows = { a->q.limit, a->q.offset, a->q.change };
        /* seed 1, as `genaiops eval compare`: the same runs give the same answer */
        return ev_compare_runs(j->url, a->q.base, a->q.current, NULL, a->q.tolerance, a->q.alpha, 1, &rows, &j->out,
                               &j->e);
    }
    }
    return query_fail(&j->e, 500, NULL, NULL, "unknown route");
}

void api_evals(http_req *r, const char *store_url)
{
    static const char prefix[] = "/api/v1/evals";
    sv rest = sv_make(r->path.p + (sizeof prefix - 1), r->path.len - (sizeof prefix - 1));
    api_evals_route route = API_EVALS_LIST;
    sv id = SV_NULL;
    if (rest.len > 1) { /* "/api/v1/evals/..." ("/api/v1/evals/" is the list) */
        id = sv_make(rest.p + 1, rest.len - 1);
        route = sv_eq_cstr(id, "compare") ? API_EVALS_COMPARE : API_EVALS_RUN;
        if (route == API_EVALS_RUN && memchr(id.p, '/', id.len)) {
            api_send_fail(r, 404, NULL, "not_found", "no such route under /api/v1/evals");
            return;
        }
        if (route == API_EVALS_RUN && !api_evals_id_valid(id)) {
            api_send_fail(r, 400, "id", "invalid_run_id",
                          "a run id is letters, digits, '-', '_' and '.' (at most 60): a full id, a unique prefix or latest");
            return;
        }
    }
    if (!sv_eq_cstr(r->method, "GET") && !sv_eq_cstr(r->method, "HEAD")) {
        http_resp_header(r, "allow", "GET, HEAD");
        api_send_fail(r, 405, NULL, "method_not_allowed", "use GET on /api/v1/evals");
        return;
    }
    api_job *j = api_job_new(r, sizeof(evals_args));
    if (!j)
        return;
    evals_args *a = j->data;
    a->route = route;
    if (route == API_EVALS_RUN)
        memcpy(a->id, id.p, id.len); /* checked: at most API_EVALS_ID_MAX bytes */
    if (api_evals_query_parse(route, r->query, &a->q, &j->e) != ERR_OK) {
        api_send_error(r, &j->e);
        api_job_free(j);
        return;
    }
    j->run = run;
    api_job_start(j, store_url);
}
