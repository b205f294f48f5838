/*
 * common.c - the REST handlers' shared answers (see common.h).
 */
#include <stdlib.h>
#include <string.h>
#include "api/common.h"
#include "core/common.h"

void api_send_json(http_req *r, int status, const json_t *j)
{
    char *s = j ? json_dumps(j, API_JSON_FLAGS) : NULL;
    if (!s) {
        static const char oom[] =
            "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}";
        http_resp_send(r, 500, "application/json", oom, sizeof oom - 1);
        return;
    }
    http_resp_send(r, status, "application/json", s, strlen(s));
    free(s);
}

void api_send_error(http_req *r, const query_error *e)
{
    json_t *j = query_error_json(e);
    api_send_json(r, e->status ? e->status : 500, j);
    json_decref(j);
}

void api_send_fail(http_req *r, int status, const char *param, const char *code, const char *msg)
{
    query_error e;
    query_fail(&e, status, param, code, "%s", msg);
    api_send_error(r, &e);
}

api_job *api_job_new(http_req *r, size_t extra)
{
    api_job *j = calloc(1, sizeof *j + extra);
    if (!j) {
        api_send_fail(r, 500, NULL, "out_of_memory", "out of memory");
        return NULL;
    }
    j->r = r;
    j->ok_status = 200;
    j->data = extra ? (void *)(j + 1) : NULL;
    return j;
}

void api_job_free(api_job *j)
{
    if (!j)
        return;
    json_decref(j->out);
    free(j->url);
    free(j);
}

static void job_work(uv_work_t *w)
{
    api_job *j = w->data;
    j->rc = j->run(j);
}

static void job_done(uv_work_t *w, int status)
{
    api_job *j = w->data;
    http_req *r = j->r;
    if (r->aborted)
        http_req_abandon(r);
    else if (status == UV_ECANCELED)
        api_send_fail(r, 503, NULL, "shutting_down", "the server is shutting down");
    else if (j->rc != ERR_OK)
        api_send_error(r, &j->e);
    else
        api_send_json(r, j->ok_status, j->out);
    api_job_free(j);
}

/* The work finishes whatever the client does; job_done abandons it then. */
static void abort_noop(http_req *r) { UNUSED(r); }

void api_job_start(api_job *j, const char *store_url)
{
    http_req *r = j->r;
    j->work.data = j;
    j->url = strdup(store_url ? store_url : "sqlite://./genaiops.db");
    if (!j->url) {
        api_job_free(j);
        api_send_fail(r, 500, NULL, "out_of_memory", "out of memory");
        return;
    }
    r->on_abort = abort_noop;
    if (uv_queue_work(http_worker_loop(r->worker), &j->work, job_work, job_done) != 0) {
        api_job_free(j);
        api_send_fail(r, 503, NULL, "store_unavailable", "cannot queue the store query");
    }
}
