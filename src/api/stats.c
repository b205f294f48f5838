/*
 * stats.c - REST handlers for the statistics endpoints (see stats.h):
 * GET /api/v1/stats/overview and GET /api/v1/stats/guardrails.
 *
 * As in api/traces.c: on the event loop the handler checks the path and the
 * method and parses the query string (store/stats.c: a bad parameter is
 * answered at once with 400 naming it), with "now" read once here so
 * relative ranges are fixed before the job waits in the queue. It then
 * queues a job (a copy of the store URL and the parsed parameters) on the
 * worker loop's thread pool, where the aggregation blocks on SQLite; the
 * after-work callback, back on the loop thread, sends the JSON or the
 * OpenAI-shaped error (api_job, api/common.c). A client that went away
 * meanwhile gets nothing: the request is abandoned when the work ends (the
 * work is never cut short).
 */
#include <stdio.h>
#include "api/common.h"
#include "api/stats.h"
#include "observe/trace.h"
#include "store/stats.h"

/* On a pool thread: the aggregation the parameters ask for. */
static err_code run(api_job *j)
{
    const stats_params *p = j->data;
    return p->kind == STATS_OVERVIEW ? stats_overview(j->url, p, &j->out, &j->e)
                                     : stats_guardrails(j->url, p, &j->out, &j->e);
}

void api_stats(http_req *r, const char *store_url)
{
    stats_kind kind;
    if (sv_eq_cstr(r->path, "/api/v1/stats/overview"))
        kind = STATS_OVERVIEW;
    else if (sv_eq_cstr(r->path, "/api/v1/stats/guardrails"))
        kind = STATS_GUARDRAILS;
    else {
        char msg[160];
        snprintf(msg, sizeof msg, "no statistics at %.*s (there are /api/v1/stats/overview and /api/v1/stats/guardrails)",
                 (int)MIN(r->path.len, 80), r->path.p);
        api_send_fail(r, 404, NULL, "unknown_url", msg);
        return;
    }
    if (!sv_eq_cstr(r->method, "GET") && !sv_eq_cstr(r->method, "HEAD")) {
        http_resp_header(r, "allow", "GET, HEAD");
        api_send_fail(r, 405, NULL, "method_not_allowed", "use GET on the statistics endpoints");
        return;
    }
    api_job *j = api_job_new(r, sizeof(stats_params));
    if (!j)
        return;
    if (stats_params_parse(j->data, kind, r->query, (int64_t)trace_now_ns(), &j->e) != ERR_OK) {
        api_send_error(r, &j->e);
        api_job_free(j);
        return;
    }
    j->run = run;
    api_job_start(j, store_url);
}
