/* fuzz_simulator.c - libFuzzer driver for sim_plan_make and tokens_split.
 * Byte 0 picks the endpoint and mode, byte 1 the options; the rest is the
 * request body. Every produced body must be valid JSON (or SSE of JSON). */
#include <jansson.h>
#include <stdlib.h>
#include "core/pool.h"
#include "providers/simulator.h"
#include "providers/tokens.h"

static void check_steps(const sim_plan *pl)
{
    for (size_t i = 0; i < pl->nsteps; i++) {
        const char *d = pl->steps[i].data;
        size_t n = pl->steps[i].len;
        if (pl->stream) {
            if (n < 8 || memcmp(d, "data: ", 6) != 0 || memcmp(d + n - 2, "\n\n", 2) != 0)
                abort();
            if (n == 14 && memcmp(d, "data: [DONE]\n\n", 14) == 0)
                continue;
            d += 6;
            n -= 8;
        }
        json_t *j = json_loadb(d, n, 0, NULL);
        if (!json_is_object(j))
            abort();
        json_decref(j);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static const char *canned[] = { "one", "two \xff" };
    sim_options o = { .default_mode = "echo", .max_tokens = (data[1] & 7) * 20, .error_status = 500,
                      .seed = data[1], .error_rate = (data[1] & 0x80) ? 0.5 : 0,
                      .canned = canned, .ncanned = 2 };
    sim_endpoint ep = (sim_endpoint)(data[0] & 3);
    const char *mode = sim_mode_name((data[0] >> 2) & 7);
    if ((data[0] >> 5) == 7)
        mode = NULL;
    json_t *req = json_loadb((const char *)data + 2, size - 2, 0, NULL);
    pool *p = pool_new(0);
    sim_plan pl;
    if (sim_plan_make(&o, ep, mode, req, data[1], p, &pl) == ERR_OK)
        check_steps(&pl);
    json_decref(req);
    pool_free(p);

    sv pieces[64];
    size_t n = tokens_split((const char *)data, size, pieces, 64);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (pieces[i].p != (const char *)data + at || pieces[i].len == 0)
            abort();
        at += pieces[i].len;
    }
    if (at != size)
        abort();
    if (tokens_estimate((const char *)data, size) < (long)n)
        abort();
    return 0;
}
