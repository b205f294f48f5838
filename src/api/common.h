/*
 * common.h - what the REST handlers share: sending a jansson tree as the
 * JSON answer (compact, reals to 15 significant digits), with a fixed
 * out-of-memory answer when it cannot be serialized, and a store or query
 * error in OpenAI's shape.
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

#endif
