/*
 * traces.c - REST handlers for traces, scores and score configs.
 *
 * A handler validates on the event loop what needs no store (the method,
 * the filters of a search), then packs a job - a copy of the store URL, of
 * the input (body or id) and the parsed filter - and queues it on the
 * worker loop's thread pool. The work function calls the query module
 * (store/query.c), which blocks on SQLite; the after-work callback, back on
 * the loop thread, turns the result into a JSON response or an OpenAI-shaped
 * error. If the client went away (r->aborted) the result is dropped and the
 * request abandoned; the work itself is never cut short, so no SQLite
 * statement is left half-run.
 */
#include <stdlib.h>
#include <uv.h>
#include "api/common.h"
#include "api/traces.h"
#include "store/query.h"


typedef enum job_kind { JOB_LIST, JOB_GET, JOB_SCORE, JOB_CONFIGS, JOB_CONFIG_CREATE } job_kind;

typedef struct api_job {
    uv_work_t work;
    http_req *r;
    job_kind kind;
    int ok_status;
    char *url;
    char *input;               /* body, or the trace id */
    size_t len;
    query_filter filter;
    json_t *out;
    query_error e;
    err_code rc;
} api_job;



static void send_simple_error(http_req *r, int status, const char *param, const char *code, const char *msg)
{
    query_error e = { .status = status };
    snprintf(e.type, sizeof e.type, "%s", status >= 500 ? "server_error" : "invalid_request_error");
    snprintf(e.param, sizeof e.param, "%s", param ? param : "");
    snprintf(e.code, sizeof e.code, "%s", code ? code : "");
    snprintf(e.message, sizeof e.message, "%s", msg);
    api_send_error(r, &e);
}

static void method_not_allowed(http_req *r, const char *allow)
{
    http_resp_header(r, "allow", allow);
    char msg[96];
    snprintf(msg, sizeof msg, "use %s on %.*s", allow, SV_FMT(r->path));
    send_simple_error(r, 405, NULL, "method_not_allowed", msg);
}

static bool is_get(const http_req *r) { return sv_eq_cstr(r->method, "GET") || sv_eq_cstr(r->method, "HEAD"); }

static void job_free(api_job *j)
{
    json_decref(j->out);
    free(j->url);
    free(j->input);
    free(j);
}

static void job_work(uv_work_t *w)
{
    api_job *j = w->data;
    switch (j->kind) {
    case JOB_LIST: j->rc = query_traces_list(j->url, &j->filter, &j->out, &j->e); break;
    case JOB_GET: j->rc = query_trace_get(j->url, sv_make(j->input, j->len), &j->out, &j->e); break;
    case JOB_SCORE: j->rc = query_score_add(j->url, j->input, j->len, &j->out, &j->e); break;
    case JOB_CONFIGS: j->rc = query_score_configs_list(j->url, &j->out, &j->e); break;
    case JOB_CONFIG_CREATE: j->rc = query_score_config_create(j->url, j->input, j->len, &j->out, &j->e); break;
    }
}

static void job_done(uv_work_t *w, int status)
{
    api_job *j = w->data;
    http_req *r = j->r;
    if (r->aborted)
        http_req_abandon(r);
    else if (status == UV_ECANCELED)
        send_simple_error(r, 503, NULL, "shutting_down", "the server is shutting down");
    else if (j->rc != ERR_OK)
        api_send_error(r, &j->e);
    else
        api_send_json(r, j->ok_status, j->out);
    job_free(j);
}

static void abort_noop(http_req *r) { UNUSED(r); }

/* Copies what the work needs and queues it; answers 500/503 itself when it
 * cannot. Takes ownership of j. */
static void job_start(http_req *r, api_job *j, const char *store_url, const char *input, size_t len)
{
    j->r = r;
    j->work.data = j;
    j->url = strdup(store_url ? store_url : "sqlite://./genaiops.db");
    j->len = len;
    j->input = malloc(len + 1);
    if (!j->url || !j->input) {
        job_free(j);
        send_simple_error(r, 500, NULL, NULL, "out of memory");
        return;
    }
    if (len)
        memcpy(j->input, input, len);
    j->input[len] = '\0';
    r->on_abort = abort_noop;
    int rc = uv_queue_work(http_worker_loop(r->worker), &j->work, job_work, job_done);
    if (rc != 0) {
        job_free(j);
        send_simple_error(r, 503, NULL, NULL, "cannot queue the store query");
    }
}

static api_job *job_new(http_req *r, job_kind kind, int ok_status)
{
    api_job *j = calloc(1, sizeof *j);
    if (!j) {
        send_simple_error(r, 500, NULL, NULL, "out of memory");
        return NULL;
    }
    j->kind = kind;
    j->ok_status = ok_status;
    return j;
}

void api_traces_list(http_req *r, const char *store_url)
{
    if (!is_get(r)) {
        method_not_allowed(r, "GET");
        return;
    }
    api_job *j = job_new(r, JOB_LIST, 200);
    if (!j)
        return;
    if (query_filter_parse(&j->filter, r->query, &j->e) != ERR_OK) {
        api_send_error(r, &j->e);
        job_free(j);
        return;
    }
    job_start(r, j, store_url, NULL, 0);
}

void api_trace_get(http_req *r, const char *store_url, sv id)
{
    if (!is_get(r)) {
        method_not_allowed(r, "GET");
        return;
    }
    api_job *j = job_new(r, JOB_GET, 200);
    if (j)
        job_start(r, j, store_url, id.p, MIN(id.len, 256));
}

void api_scores_post(http_req *r, const char *store_url)
{
    if (!sv_eq_cstr(r->method, "POST")) {
        method_not_allowed(r, "POST");
        return;
    }
    api_job *j = job_new(r, JOB_SCORE, 201);
    if (j)
        job_start(r, j, store_url, r->body, r->body_len);
}

void api_score_configs(http_req *r, const char *store_url)
{
    api_job *j;
    if (is_get(r)) {
        if ((j = job_new(r, JOB_CONFIGS, 200)))
            job_start(r, j, store_url, NULL, 0);
    } else if (sv_eq_cstr(r->method, "POST")) {
        if ((j = job_new(r, JOB_CONFIG_CREATE, 201)))
            job_start(r, j, store_url, r->body, r->body_len);
    } else
        method_not_allowed(r, "GET, POST");
}
