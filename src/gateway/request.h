/*
 * request.h - decoding and validating a client's JSON request body, and the
 * gateway's own error responses in OpenAI's (or Anthropic's) shape.
 */
#ifndef GENAIOPS_GATEWAY_REQUEST_H
#define GENAIOPS_GATEWAY_REQUEST_H

#include <jansson.h>
#include "core/jscan.h"
#include "core/pool.h"
#include "providers/provider.h"

typedef struct gw_error {
    int status;
    const char *type;      /* "invalid_request_error", ... */
    const char *code;      /* may be NULL */
    char param[64];        /* "" = null */
    char message[512];
} gw_error;

#define GW_MAX_MODEL_NAME 256
#define GW_MSGS 8 /* messages whose members the decoder records */

/* A chat message's role, content and tool_calls values as spans of the
 * body (J_NONE when absent). */
typedef struct gw_msg {
    jval role, content, tool_calls;
} gw_msg;

/* A decoded request: the client's bytes, validated, and the few fields the
 * gateway routes on. The jansson tree is built only when something needs it
 * (translation, the simulator): pass-through costs no tree at all. */
typedef struct gw_request {
    const char *body;      /* the client's bytes (borrowed; they outlive the request) */
    size_t len;
    json_t *root;          /* NULL until gw_request_tree(); owned: json_decref */
    char model[GW_MAX_MODEL_NAME]; /* "model", unescaped */
    const char *model_at;  /* the "model" value's span in body (with its quotes) */
    size_t model_len;
    bool stream;
    bool include_usage;    /* stream_options.include_usage */
    /* request parameters, for traces (has_* = the client sent it) */
    bool has_temperature, has_top_p, has_max_tokens, has_seed, has_frequency_penalty, has_presence_penalty;
    double temperature, top_p, frequency_penalty, presence_penalty;
    long long max_tokens, seed;
    const char *input_at;  /* the span of messages / prompt / input, for content capture */
    size_t input_len;
    /* chat: a prompt reference ("prompt": {"name", "label" | "version",
     * "variables"} or "name@label"); then model and messages may be absent */
    bool has_prompt;
    const char *prompt_at; /* the value's span in body */
    size_t prompt_len;
    /* chat in OpenAI's API: the messages' members, recorded while they are
     * checked, so that the guardrails' input scan need not walk them again;
     * nmsgs is -1 when they were not (more than GW_MSGS messages, a content
     * or tool_calls key given twice, another endpoint) */
    int nmsgs;
    gw_msg msgs[GW_MSGS];
} gw_request;

/* Validates body as one JSON document (RFC 8259, UTF-8, depth-bounded) and
 * checks the fields the gateway relies on for endpoint ep. On error returns
 * ERR_PARSE or ERR_INVAL with e filled (status 400, the position for bad
 * JSON, param naming the field). body must outlive out. */
err_code gw_decode_request(gw_endpoint ep, const char *body, size_t len, gw_request *out, gw_error *e);
/* The request as a jansson tree (built once, then cached in rq->root); NULL
 * only when out of memory. */
json_t *gw_request_tree(gw_request *rq);
/* The body with "model" replaced by model (spliced into the client's bytes,
 * everything else untouched), allocated from p. */
char *gw_request_with_model(const gw_request *rq, const char *model, pool *p, size_t *len);

void gw_error_set(gw_error *e, int status, const char *type, const char *code, const char *param,
                  const char *fmt, ...) PRINTF_LIKE(6, 7);
/* Serializes e as {"error":{"message","type","param","code"}} (API_OPENAI) or
 * {"type":"error","error":{"type","message"}} (API_ANTHROPIC), from p. */
char *gw_error_body(const gw_error *e, api_format fmt, pool *p, size_t *len);
/* The Anthropic error type for an HTTP status. */
const char *gw_anthropic_error_type(int status);

#endif
