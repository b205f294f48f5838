/*
 * evals.h - evaluation runs on the control plane, for the console and
 * scripts: the stored runs, one run with its results (failures first),
 * two runs compared result by result, and the leaderboard of a run with
 * several providers (docs/api.md, "Evaluations").
 *
 *   GET /api/v1/evals[?limit=N&q=TEXT]
 *   GET /api/v1/evals/{id}[?results=false&verdict=V&limit=N&offset=N]
 *   GET /api/v1/evals/compare?base=A&current=B[&tolerance=T&alpha=A
 *                             &change=C&limit=N&offset=N]
 *
 * Ids may be a unique prefix or "latest", as on the command line.
 */
#ifndef GENAIOPS_API_EVALS_H
#define GENAIOPS_API_EVALS_H

#include "eval/compare.h"
#include "eval/evstore.h"
#include "http/server.h"
#include "store/query.h"

#define API_EVALS_LIST_DEFAULT 50
#define API_EVALS_LIST_MAX 500
#define API_EVALS_RESULTS_DEFAULT 200
#define API_EVALS_RESULTS_MAX 1000
#define API_EVALS_ROWS_DEFAULT 1000
#define API_EVALS_ROWS_MAX 10000
#define API_EVALS_OFFSET_MAX 1000000000L
#define API_EVALS_ID_MAX 60

typedef enum api_evals_route {
    API_EVALS_LIST = 0,          /* GET /api/v1/evals */
    API_EVALS_RUN,               /* GET /api/v1/evals/{id} */
    API_EVALS_COMPARE,           /* GET /api/v1/evals/compare */
} api_evals_route;

/* A parsed query string; api_evals_query_parse fills the defaults. */
typedef struct api_evals_query {
    size_t limit, offset;
    bool results;                          /* run: list results (default true) */
    char verdict[8];                       /* run: "pass", "fail", "error" or "" */
    char q[EVSTORE_QUERY_MAX + 1];         /* list: text filter or "" */
    char base[API_EVALS_ID_MAX + 1];       /* compare: the run ids */
    char current[API_EVALS_ID_MAX + 1];
    double tolerance, alpha;               /* compare: as `eval compare` (0.05, 0.05) */
    ev_change change;                      /* compare: rows of this change (EV_CHANGE_ANY) */
} api_evals_query;

/* Parses the query string of a route ("limit=10&verdict=fail"):
 * percent- and '+'-decoding, each parameter at most once, only the
 * route's parameters, every value checked. ERR_INVAL with e filled (a 400
 * whose param names the parameter) when something is wrong. */
err_code api_evals_query_parse(api_evals_route route, sv query, api_evals_query *q, query_error *e);

/* True when s (len bytes) can be a run id: 1..API_EVALS_ID_MAX bytes of
 * letters, digits, '-', '_' and '.'. */
bool api_evals_id_valid(sv s);

/* The routes under /api/v1/evals (the caller has checked the admin key). */
void api_evals(http_req *r, const char *store_url);

#endif
