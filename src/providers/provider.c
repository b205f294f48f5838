/*
 * provider.c - URLs and auth headers per provider type.
 *
 *   openai     BASE/chat/completions, /completions, /embeddings;
 *              Authorization: Bearer KEY
 *   azure      BASE/openai/deployments/MODEL/chat/completions?api-version=V
 *              (and /completions, /embeddings); api-key: KEY
 *   anthropic  BASE/messages; x-api-key: KEY, anthropic-version: V
 */
#include <stdio.h>
#include "providers/provider.h"

api_format provider_wire(const cfg_provider *p)
{
    return p->type == PROVIDER_ANTHROPIC ? API_ANTHROPIC : API_OPENAI;
}

bool provider_endpoint(const cfg_provider *p, gw_endpoint ep, gw_endpoint *wire_ep)
{
    if (p->type == PROVIDER_ANTHROPIC) {
        if (ep == EP_CHAT || ep == EP_MESSAGES) {
            *wire_ep = EP_MESSAGES;
            return true;
        }
        return false;
    }
    *wire_ep = ep == EP_MESSAGES ? EP_CHAT : ep;
    return true;
}

static const char *path_of(gw_endpoint ep)
{
    switch (ep) {
    case EP_CHAT: return "chat/completions";
    case EP_COMPLETIONS: return "completions";
    case EP_EMBEDDINGS: return "embeddings";
    case EP_MESSAGES: return "messages";
    }
    return "chat/completions";
}

err_code provider_build_http(const cfg_provider *p, gw_endpoint wire_ep, const char *upstream_model,
                             bool stream, pool *pl, provider_http *out)
{
    if (p->type == PROVIDER_SIMULATOR)
        return ERR_UNSUPPORTED;
    const char **h = pool_alloc(pl, sizeof *h * (p->nheaders + 6));
    if (!h)
        return ERR_NOMEM;
    size_t n = 0;
    const char *url = NULL;
    h[n++] = "Content-Type: application/json";
    if (stream)
        h[n++] = "Accept: text/event-stream";
    switch (p->type) {
    case PROVIDER_OPENAI:
        url = pool_printf(pl, "%s/%s", p->base_url, path_of(wire_ep));
        if (p->api_key && *p->api_key)
            h[n++] = pool_printf(pl, "Authorization: Bearer %s", p->api_key);
        break;
    case PROVIDER_AZURE:
        url = pool_printf(pl, "%s/openai/deployments/%s/%s?api-version=%s", p->base_url, upstream_model,
                          path_of(wire_ep), p->api_version ? p->api_version : "2024-10-21");
        if (p->api_key && *p->api_key)
            h[n++] = pool_printf(pl, "api-key: %s", p->api_key);
        break;
    case PROVIDER_ANTHROPIC:
        if (wire_ep != EP_MESSAGES)
            return ERR_UNSUPPORTED;
        url = pool_printf(pl, "%s/messages", p->base_url);
        if (p->api_key && *p->api_key)
            h[n++] = pool_printf(pl, "x-api-key: %s", p->api_key);
        h[n++] = pool_printf(pl, "anthropic-version: %s", p->api_version ? p->api_version : "2023-06-01");
        break;
    case PROVIDER_SIMULATOR:
        return ERR_UNSUPPORTED;
    }
    for (size_t i = 0; i < p->nheaders; i++)
        h[n++] = pool_printf(pl, "%s: %s", p->headers[i].name, p->headers[i].value);
    h[n] = NULL;
    for (size_t i = 0; i < n; i++)
        if (!h[i])
            return ERR_NOMEM;
    if (!url)
        return ERR_NOMEM;
    out->url = url;
    out->headers = h;
    return ERR_OK;
}
