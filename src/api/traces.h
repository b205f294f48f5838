/*
 * traces.h - the REST API over the trace store: trace search and detail,
 * scores and score configs (docs/api.md, "Traces and scores").
 *
 * Routes (the gateway wires them, behind the admin-key check):
 *   GET  /api/v1/traces              api_traces_list   filters in the query string
 *   GET  /api/v1/traces/{id}         api_trace_get     id = the 32-hex trace id
 *   POST /api/v1/scores              api_scores_post   JSON body
 *   GET  /api/v1/score-configs       api_score_configs list
 *   POST /api/v1/score-configs       api_score_configs create (JSON body)
 *
 * Each handler checks what it can on the event loop (method, filters) and
 * runs the SQLite work on libuv's thread pool (uv_queue_work on the
 * request's worker loop), answering in the after-work callback. A client
 * that goes away meanwhile costs nothing more: the work finishes and the
 * request is abandoned. Errors use OpenAI's shape with param naming the
 * offending field. store_url is "sqlite://PATH" and must outlive the call
 * (the config's does); it is copied for the work.
 */
#ifndef GENAIOPS_API_TRACES_H
#define GENAIOPS_API_TRACES_H

#include "core/common.h"
#include "http/server.h"

void api_traces_list(http_req *r, const char *store_url);
void api_trace_get(http_req *r, const char *store_url, sv id);
void api_scores_post(http_req *r, const char *store_url);
void api_score_configs(http_req *r, const char *store_url);

#endif
