/*
 * traces.c - REST handlers for traces, scores and score configs.
 *
 * A handler validates on the event loop what needs no store (the method,
 * the filters of a search), then packs a job - a copy of the store URL, of
 * the input (body or id) and the parsed filter - and queues it on the
 * worker loop's thread pool (api_job, api/common.c). The work function calls the query module
 * (store/query.c), which blocks on SQLite; the after-work callback, back on
 * the loop thread, turns the result into a JSON response or an OpenAI-shaped
 * error. If the client went away (r->aborted) the result is dropped and the
 * request abandoned; the work itself is never cut short, so no SQLite
 * statement is left half-run.
 */
#include <stdio.h>
#include <string.h>
#include "api/common.h"
#include "api/traces.h"
#include "store/query.h"


typedef enum job_kind { JOB_LIST, JOB_GET, JOB_SCORE, JOB_CONFIGS, JOB_CONFIG_CREATE } job_kind;

/* What a job needs beyond api_job: the route, the parsed filter, and a
 * copy of the input (the body, or the trace id). */
typedef struct trace_args {
    job_kind kind;
    query_filter filter;
    size_t len;
    char input[];
} trace_args;

static void method_not_allowed(http_req *r, const char *allow)
{
    http_resp_header(r, "allow", allow);
    char msg[96];
    snprintf(msg, sizeof msg, "use %s on %.*s", allow, SV_FMT(r->path));
    api_send_fail(r, 405, NULL, "method_not_allowed", msg);
}

static bool is_get(const http_req *r) { return sv_eq_cstr(r->method, "GET") || sv_eq_cstr(r->method, "HEAD"); }

/* On a pool thread: the query module's call for the route. */
static err_code run(api_job *j)
{
    const trace_args *a = j->data;
    switch (a->kind) {
    case JOB_LIST: return query_traces_list(j->url, &a->filter, &j->out, &j->e);
    case JOB_GET: return query_trace_get(j->url, sv_make(a->input, a->len), &j->out, &j->e);
    case JOB_SCORE: return query_score_add(j->url, a->input, a->len, &j->out, &j->e);
    case JOB_CONFIGS: return query_score_configs_list(j->url, &j->out, &j->e);
    case JOB_CONFIG_CREATE: return query_score_config_create(j->url, a->input, a->len, &j->out, &j->e);
    }
    return query_fail(&j->e, 500, NULL, NULL, "unknown route");
}

/* A job for kind with a copy of input[0..len); NULL after answering 500. */
static api_job *job_new(http_req *r, job_kind kind, int ok_status, const char *input, size_t len)
{
    api_job *j = api_job_new(r, sizeof(trace_args) + len + 1);
    if (!j)
        return NULL;
    trace_args *a = j->data;
    a->kind = kind;
    a->len = len;
    if (len)
        memcpy(a->input, input, len);
    a->input[len] = '\0';
    j->ok_status = ok_status;
    j->run = run;
    return j;
}

void api_traces_list(http_req *r, const char *store_url)
{
    if (!is_get(r)) {
        method_not_allowed(r, "GET");
        return;
    }
    api_job *j = job_new(r, JOB_LIST, 200, NULL, 0);
    if (!j)
        return;
    if (query_filter_parse(&((trace_args *)j->data)->filter, r->query, &j->e) != ERR_OK) {
        api_send_error(r, &j->e);
        api_job_free(j);
        return;
    }
    api_job_start(j, store_url);
}

void api_trace_get(http_req *r, const char *store_url, sv id)
{
    if (!is_get(r)) {
        method_not_allowed(r, "GET");
        return;
    }
    api_job *j = job_new(r, JOB_GET, 200, id.p, MIN(id.len, 256));
    if (j)
        api_job_start(j, store_url);
}

void api_scores_post(http_req *r, const char *store_url)
{
    if (!sv_eq_cstr(r->method, "POST")) {
        method_not_allowed(r, "POST");
        return;
    }
    api_job *j = job_new(r, JOB_SCORE, 201, r->body, r->body_len);
    if (j)
        api_job_start(j, store_url);
}

void api_score_configs(http_req *r, const char *store_url)
{
    api_job *j;
    if (is_get(r)) {
        if ((j = job_new(r, JOB_CONFIGS, 200, NULL, 0)))
            api_job_start(j, store_url);
    } else if (sv_eq_cstr(r->method, "POST")) {
        if ((j = job_new(r, JOB_CONFIG_CREATE, 201, r->body, r->body_len)))
            api_job_start(j, store_url);
    } else
        method_not_allowed(r, "GET, POST");
}
