/*
 * cost.h - what a model call cost in USD: a pricing table in LiteLLM's
 * model_prices_and_context_window.json format (built in, or a file named by
 * telemetry.pricing_file), per-model overrides from config, and the
 * arithmetic that prices cached and reasoning tokens exactly once.
 *
 * The table is loaded once at start-up into a read-only hash table, so
 * pricing_cost() may be called from any number of threads at once without
 * locks and without allocating (it runs per request on the data plane).
 *
 * Ownership: pricing_load* give the caller a table it frees with
 * pricing_free; nothing returned by the other functions needs freeing and
 * it lives as long as the table.
 */
#ifndef GENAIOPS_COST_H
#define GENAIOPS_COST_H

#include "core/common.h"
#include "core/config.h"
#include "core/err.h"

/* The largest pricing file pricing_load reads (LiteLLM's full table is a
 * few MiB). */
#define PRICING_MAX_FILE (64u << 20)
/* A price per token above this is refused as a unit mistake. */
#define PRICING_MAX_PRICE 1000.0

typedef struct pricing pricing;

/* Token counts of one call; -1 = unknown. input counts every prompt token
 * (cache reads and cache writes included), output every completion token
 * (reasoning included), as in trace_rec. */
typedef struct cost_usage {
    long long input, output, cache_read, cache_creation, reasoning;
} cost_usage;

/* Loads the table from the JSON file at path, or the built-in table when
 * path is NULL. On error returns ERR_IO (unreadable), ERR_TOOBIG (over
 * PRICING_MAX_FILE), ERR_PARSE (bad JSON: the message is
 * "PATH:LINE:COLUMN: what" from jansson; or a bad entry: "PATH: \"MODEL\":
 * what") or ERR_NOMEM, writes the message to err (errcap bytes, may be 0)
 * and sets *out to NULL. */
err_code pricing_load(const char *path, pricing **out, char *err, size_t errcap);

/* As pricing_load, from len bytes at data (need not be NUL-terminated);
 * name is what messages and pricing_source() call it. */
err_code pricing_load_buf(const char *name, const char *data, size_t len, pricing **out,
                          char *err, size_t errcap);

void pricing_free(pricing *p);

/* "built-in (2026-11-21)" for the built-in table (its "_date"), else the
 * path or name it was loaded from. */
const char *pricing_source(const pricing *p);

/* Number of models in the table (metadata keys and "sample_spec" are not
 * models). */
size_t pricing_count(const pricing *p);

/* Prices one call and stores the USD amount in *usd. Lookup: the table's
 * entry for the exact model, else "<ptype>/<model>" (LiteLLM's
 * prefixed keys, "azure/gpt-4o"), else the same two with a trailing
 * -YYYY-MM-DD or -YYYYMMDD removed; then every field of override (may be
 * NULL; fields < 0 are unset) that is set replaces the table's. p may be
 * NULL (overrides only); ptype (the provider type name,
 * "openai", "azure", "anthropic") may be NULL or "".
 *
 * Cost = uncached input (input - cache_read - cache_creation, never < 0)
 * at the input price + cache reads at the cache-read price + cache writes
 * at the cache-creation price + (output - reasoning, never < 0) at the
 * output price + reasoning at the reasoning price; a missing cache price
 * is the input price, a missing reasoning price the output price.
 *
 * Returns false, leaving *usd alone, when no price is known for the model,
 * when input usage is unknown (< 0), or when tokens are used whose price is
 * unknown. Unknown output, cache and reasoning counts count as 0. */
bool pricing_cost(const pricing *p, const cfg_pricing *override, const char *ptype,
                  const char *model, const cost_usage *u, double *usd);

#endif
