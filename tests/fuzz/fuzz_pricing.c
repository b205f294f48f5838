/*
 * fuzz_pricing.c - libFuzzer driver for the pricing table loader and the
 * cost arithmetic (src/observe/cost.c).
 *
 * The input is loaded with pricing_load_buf from an exact-size heap copy
 * (so ASan sees a read past its end). Besides "no crash, no leak" the
 * driver checks the contract and aborts when it is broken:
 *  - ERR_OK gives a table, ERR_PARSE none and a non-empty message; nothing
 *    else is returned;
 *  - a loaded table agrees with jansson: every model key of the same JSON
 *    is found under its exact name and 1 input + 1 output token cost
 *    exactly its input plus output price (when it has both);
 *  - every cost is finite and >= 0, for model names and token counts taken
 *    from the input, with and without an override.
 */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "observe/cost.h"

static void check_cost(const pricing *p, const cfg_pricing *o, const char *ptype,
                       const char *model, const cost_usage *u)
{
    double usd = -1;
    if (pricing_cost(p, o, ptype, model, u, &usd) && (!isfinite(usd) || usd < 0))
        abort();
}

/* Every model of root must be in p with the same prices. */
static void agree_with_jansson(const pricing *p, const uint8_t *data, size_t size)
{
    json_t *root = json_loadb((const char *)data, size, 0, NULL);
    if (!json_is_object(root))
        abort(); /* pricing_load_buf accepted what jansson refuses */
    size_t models = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (key[0] == '_' || strcmp(key, "sample_spec") == 0)
            continue;
        models++;
        json_t *in = json_object_get(val, "input_cost_per_token");
        json_t *out = json_object_get(val, "output_cost_per_token");
        if (!json_is_number(in) || !json_is_number(out))
            continue;
        /* the exact key wins over every fallback */
        cost_usage u = { 1, 1, 0, 0, 0 };
        double usd = -1;
        if (!pricing_cost(p, NULL, "azure", key, &u, &usd))
            abort();
        if (usd != json_number_value(in) + json_number_value(out))
            abort();
    }
    if (models != pricing_count(p))
        abort();
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    pricing *p = NULL;
    char err[256] = "";
    err_code e = pricing_load_buf("fuzz", copy, size, &p, err, sizeof err);
    if (e == ERR_OK) {
        if (!p)
            abort();
        agree_with_jansson(p, data, size);
    } else if (e == ERR_PARSE) {
        if (p || err[0] == '\0')
            abort();
    } else if (e != ERR_NOMEM) {
        abort();
    }

    /* Names and counts from the input: a prefix of it as a model name
     * (dates and slashes included when the fuzzer finds them). */
    char model[64];
    size_t n = MIN(size, sizeof model - 1);
    memcpy(model, data, n);
    model[n] = '\0';
    long long v[5] = { 0 };
    for (size_t i = 0; i < 5 && (i + 1) * 8 <= size; i++)
        memcpy(&v[i], data + size - (i + 1) * 8, 8);
    cost_usage u = { v[0], v[1], v[2], v[3], v[4] };
    cost_usage big = { LLONG_MAX, LLONG_MAX, LLONG_MAX, 0, LLONG_MAX };
    cfg_pricing o = { 1, -1, 1e-9, -1, 1 };
    static const char *const ptypes[] = { NULL, "", "openai", "azure", "anthropic" };
    for (size_t i = 0; i < countof(ptypes); i++) {
        check_cost(p, NULL, ptypes[i], model, &u);
        check_cost(p, &o, ptypes[i], model, &u);
        check_cost(p, &o, ptypes[i], model, &big);
    }
    pricing_free(p);
    free(copy);
    return 0;
}
