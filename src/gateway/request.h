/*
 * request.h - decoding and validating a client's JSON request body, and the
 * gateway's own error responses in OpenAI's (or Anthropic's) shape.
 */
#ifndef GENAIOPS_GATEWAY_REQUEST_H
#define GENAIOPS_GATEWAY_REQUEST_H

#include <jansson.h>
#include "core/pool.h"
#include "providers/provider.h"

typedef struct gw_error {
    int status;
    const char *type;      /* "invalid_request_error", ... */
    const char *code;      /* may be NULL */
    char param[64];        /* "" = null */
    char message[512];
} gw_error;

typedef struct gw_request {
    json_t *root;          /* owned: json_decref when done */
    const char *model;     /* borrowed from root */
    bool stream;
    bool include_usage;    /* stream_options.include_usage */
} gw_request;

/* Parses body as the JSON of endpoint ep and checks the fields the gateway
 * relies on. On error returns ERR_PARSE or ERR_INVAL with e filled (status
 * 400, the position for bad JSON, param naming the field) and out->root NULL. */
err_code gw_decode_request(gw_endpoint ep, const char *body, size_t len, gw_request *out, gw_error *e);

void gw_error_set(gw_error *e, int status, const char *type, const char *code, const char *param,
                  const char *fmt, ...) PRINTF_LIKE(6, 7);
/* Serializes e as {"error":{"message","type","param","code"}} (API_OPENAI) or
 * {"type":"error","error":{"type","message"}} (API_ANTHROPIC), from p. */
char *gw_error_body(const gw_error *e, api_format fmt, pool *p, size_t *len);
/* The Anthropic error type for an HTTP status. */
const char *gw_anthropic_error_type(int status);

#endif
