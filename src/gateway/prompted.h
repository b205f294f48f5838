/*
 * prompted.h - rendering a prompt reference into a chat request's body
 * (see prompted.c).
 */
#ifndef GENAIOPS_PROMPTED_H
#define GENAIOPS_PROMPTED_H

#include "core/pool.h"
#include "gateway/request.h"
#include "prompt/served.h"

typedef struct gw_prompted {
    char *body;                   /* the new request body (from the pool) */
    size_t len;
    const char *name;             /* the prompt served (valid until the callback returns) */
    int version;
    gw_request rq;                /* the request as the decoder would read the new body */
} gw_prompted;

/* Renders rq's prompt reference - or, when rq names none, bound (a
 * deployment's "name", "name@label" or "name:version"; NULL for none) -
 * into a new body, and out->rq describes it (the client's fields, with the
 * model, messages span and the config's parameters; no second decode is
 * needed: the client's members were validated, the rendered messages are
 * built here). ERR_OK with out filled; otherwise e is an OpenAI error:
 * 400 for a bad reference, missing variables (all listed) or a template
 * error (line and column), 404 naming an unknown prompt, label or version,
 * 503 when ps is NULL. */
/* scratch: two buffers the caller keeps from request to request (a
 * worker's; zeroed before the first call, buf_free'd at the end), so the
 * body is built without a malloc per request; the result is copied into p. */
err_code gw_prompt_apply(prompt_server *ps, const gw_request *rq, const char *bound, pool *p, buf scratch[2],
                         gw_prompted *out, gw_error *e);

#endif
