/*
 * common.h - what the REST handlers share: sending a jansson tree as the
 * JSON answer (compact, reals to 15 significant digits), with a fixed
 * out-of-memory answer when it cannot be serialized, a store or query
 * error in OpenAI's shape, and a store query run on the worker loop's
 * thread pool (api_job) so the event loop never waits on SQLite.
 */
#ifndef GENAIOPS_API_COMMON_H
#define GENAIOPS_API_COMMON_H

#include <jansson.h>
#include "http/server.h"
#include "store/query.h"

#define API_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* Sends j (not consumed; NULL counts as out of memory) with status. */
void api_send_json(http_req *r, int status, const json_t *j);

/* Sends e in OpenAI's error shape with its status (500 when it has none). */
void api_send_error(http_req *r, const query_error *e);

/* The same for a fixed message (param and code may be NULL). */
void api_send_fail(http_req *r, int status, const char *param, const char *code, const char *msg);

/* A store query on the thread pool. The handler gets one from api_job_new
 * (extra bytes of its own at j->data, zeroed), fills in run and data, and
 * hands it to api_job_start. run is called on a pool thread and sets
 * j->out (answered with ok_status) or j->e (answered as the error) and
 * returns the err_code. A client that went away meanwhile is abandoned; a
 * server shutting down answers 503. */
typedef struct api_job api_job;
struct api_job {
    uv_work_t work;
    http_req *r;
    char *url;                       /* the store URL (a copy) */
    int ok_status;                   /* 200 by default */
    err_code (*run)(api_job *j);
    json_t *out;
    query_error e;
    err_code rc;
    void *data;                      /* the handler's extra bytes */
};

/* A zeroed job with extra bytes at j->data, or NULL after answering 500. */
api_job *api_job_new(http_req *r, size_t extra);
/* Queues j (its ownership passes) for store_url (NULL: the default store);
 * answers 500 or 503 itself when it cannot. */
void api_job_start(api_job *j, const char *store_url);
/* Frees a job that was not started. NULL ok. */
void api_job_free(api_job *j);

#endif
