/*
 * gateway.h - the data plane: the OpenAI-compatible (and Anthropic
 * Messages) endpoints, model resolution, the upstream pipeline with
 * retries and fallbacks, and the probes.
 *
 * One gateway per process holds the read-only configuration; each server
 * worker gets a gw_worker (its upstream client and counters) through the
 * http_server_opts worker hooks.
 */
#ifndef GENAIOPS_GATEWAY_H
#define GENAIOPS_GATEWAY_H

#include <time.h>
#include "core/config.h"
#include "http/server.h"
#include "providers/provider.h"

typedef struct gateway gateway;

/* A model reference resolved to where it goes. */
typedef struct gw_target {
    const cfg_provider *prov;
    const char *upstream_model;  /* what the provider is asked for (sim: the mode) */
    const char *name;            /* the reference as configured */
} gw_target;

#define GW_MAX_TARGETS 8

/* What the gateway reports to, set by serve (all optional). submit takes
 * ownership of the record (it frees it when it drops it); price fills *usd
 * and returns whether a price was known (model may be NULL: no overrides);
 * observe and inflight feed the metrics. worker is the server worker's index. */
struct trace_rec;
typedef struct gw_observe {
    void *ud;
    bool (*submit)(void *ud, int worker, struct trace_rec *t);
    bool (*price)(void *ud, const cfg_model *model, const char *provider_type, const char *model_name,
                  const struct trace_rec *t, double *usd);
    void (*observe)(void *ud, int worker, const struct trace_rec *t);
    void (*inflight)(void *ud, int worker, int delta);
} gw_observe;

/* The gateway does not own cfg; cfg must outlive it. */
gateway *gateway_new(const config *cfg);
void gateway_free(gateway *g);
void gateway_set_observe(gateway *g, const gw_observe *o);
/* The served-prompts snapshot for chat requests that name a prompt (NULL:
 * such requests get 503). Set before traffic starts; not owned. */
struct prompt_server;
void gateway_set_prompts(gateway *g, struct prompt_server *ps);

/* The guardrail policies requests are checked against (NULL: none). Set
 * before traffic starts; not owned. */
struct guard_engine;
void gateway_set_guard(gateway *g, const struct guard_engine *e);
const struct guard_engine *gateway_guard(const gateway *g);

/* Resolves a model name as clients send it: a deployment, a configured
 * model (with its fallbacks), or PROVIDER/MODEL. Returns the number of
 * targets (primary first), 0 when the name is unknown. */
int gateway_resolve(const gateway *g, sv model, gw_target *out, int max);

/* Milliseconds a Retry-After (or retry-after-ms) value asks for: delta
 * seconds (fractions allowed) or an HTTP date relative to now; 0 for
 * anything else. */
long gateway_retry_after_ms(sv value, time_t now);
/* The wait before retry number tries+1: base_ms doubled per try, capped at
 * max_ms, with equal jitter ([d/2, d], rnd picks), and at least the
 * upstream's Retry-After. */
long gateway_backoff_ms(const cfg_retry *rc, int tries, long retry_after_ms, uint32_t rnd);

/* http_server_opts hooks; app must be the gateway. */
void gateway_handle(http_req *r);
int gateway_worker_start(http_worker *w);
void gateway_worker_stop(http_worker *w);

#endif
