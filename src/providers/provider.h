/*
 * provider.h - what differs between provider types on the wire: the URL of
 * each endpoint, the authentication headers, and whether the provider
 * speaks OpenAI's or Anthropic's API. Translation between the two lives in
 * anthropic.h; the simulator has no wire at all (simulator.h, simplay.h).
 */
#ifndef GENAIOPS_PROVIDER_H
#define GENAIOPS_PROVIDER_H

#include "core/config.h"

typedef enum api_format { API_OPENAI, API_ANTHROPIC } api_format;

typedef enum gw_endpoint {
    EP_CHAT,         /* POST /v1/chat/completions */
    EP_COMPLETIONS,  /* POST /v1/completions */
    EP_EMBEDDINGS,   /* POST /v1/embeddings */
    EP_MESSAGES,     /* POST /v1/messages (Anthropic) */
} gw_endpoint;

/* One upstream HTTP request's address and headers, allocated from a pool. */
typedef struct provider_http {
    const char *url;
    const char **headers;   /* NULL-terminated "Name: value" */
} provider_http;

/* The API the provider speaks: anthropic -> API_ANTHROPIC, else API_OPENAI. */
api_format provider_wire(const cfg_provider *p);

/* The endpoint a request for ep becomes on this provider: an OpenAI-speaking
 * provider serves /v1/messages as chat, Anthropic serves chat as messages.
 * Returns false when the provider cannot serve ep at all (e.g. embeddings on
 * Anthropic). */
bool provider_endpoint(const cfg_provider *p, gw_endpoint ep, gw_endpoint *wire_ep);

/* Fills out for a call to wire_ep with the given upstream model. Everything
 * is allocated from pl. Returns ERR_UNSUPPORTED for a simulator provider
 * (it has no URL) or an endpoint it cannot serve, ERR_NOMEM. */
err_code provider_build_http(const cfg_provider *p, gw_endpoint wire_ep, const char *upstream_model,
                             bool stream, pool *pl, provider_http *out);

#endif
