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
 * OpenAI-shaped error. A client that went away meanwhile gets nothing: the
 * request is abandoned when the work ends (the work is never cut short).
 */
#include <stdlib.h>
#include <uv.h>
#include "api/common.h"
#include "api/stats.h"
#include "observe/trace.h"
#include "store/stats.h"

typedef struct stats_job {
    uv_work_t work;
    http_req *r;
    char *url;
    stats_params params;
    json_t *out;
    query_error e;
    err_code rc;
} stats_job;


static void send_simple(http_req *r, int status, const char *code, const char *msg)
{
    query_error e;
    query_fail(&e, status, NULL, code, "%s", msg);
    api_send_error(r, &e);
}

static void job_free(stats_job *j)
{
    json_decref(j->out);
    free(j->url);
    free(j);
}

static void job_work(uv_work_t *w)
{
    stats_job *j = w->data;
    if (j->params.kind == STATS_OVERVIEW)
        j->rc = stats_overview(j->url, &j->params, &j->out, &j->e);
    else
        j->rc = stats_guardrails(j->url, &j->params, &j->out, &j->e);
}

static void job_done(uv_work_t *w, int status)
{
    stats_job *j = w->data;
    http_req *r = j->r;
    if (r->aborted)
        http_req_abandon(r);
    else if (status == UV_ECANCELED)
        send_simple(r, 503, "shutting_down", "the server is shutting down");
    else if (j->rc != ERR_OK)
        api_send_error(r, &j->e);
    else
        api_send_json(r, 200, j->out);
    job_free(j);
}

static void abort_noop(http_req *r) { UNUSED(r); }

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
        send_simple(r, 404, "unknown_url", msg);
        return;
    }
    if (!sv_eq_cstr(r->method, "GET") && !sv_eq_cstr(r->method, "HEAD")) {
        http_resp_header(r, "allow", "GET, HEAD");
        send_simple(r, 405, "method_not_allowed", "use GET on the statistics endpoints");
        return;
    }
    stats_job *j = calloc(1, sizeof *j);
    if (!j) {
        send_simple(r, 500, "out_of_memory", "out of memory");
        return;
    }
    if (stats_params_parse(&j->params, kind, r->query, (int64_t)trace_now_ns(), &j->e) != ERR_OK) {
        api_send_error(r, &j->e);
        job_free(j);
        return;
    }
    j->r = r;
    j->work.data = j;
    j->url = strdup(store_url ? store_url : "sqlite://./genaiops.db");
    if (!j->url) {
        job_free(j);
        send_simple(r, 500, "out_of_memory", "out of memory");
        return;
    }
    r->on_abort = abort_noop;
    if (uv_queue_work(http_worker_loop(r->worker), &j->work, job_work, job_done) != 0) {
        job_free(j);
        send_simple(r, 503, "queue_full", "cannot queue the statistics query");
    }
}
