/*
 * fuzz_assert.c - libFuzzer driver for the assertions (src/eval/assert.c,
 * assert_text.c, jschema.c).
 *
 * The input's first line is a JSON assertion spec; the rest (copied to an
 * exact-size heap buffer, NUL-terminated, so ASan sees any read past it)
 * is the answer. The spec is parsed; a refusal must come with a message
 * that names the path. A parsed assertion is checked on the answer with a
 * fixed set of variables (for templated values), a finish reason, a
 * latency and a cost, and again with none of those; the tool calls come
 * from the answer when it is JSON. The driver aborts when a verdict is out
 * of range, a score is NaN or infinite (but for latency/cost recorded as a
 * raw metric), a fail or error has no reason, the same check twice gives
 * two verdicts, or combining the result with itself changes the verdict of
 * a pass or a fail.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "eval/assert.h"

static json_t *vars;

static void check(const ev_assert *a, const ev_output *o)
{
    ev_result r, r2, c;
    ev_assert_check(a, o, &r);
    if (r.verdict != EV_PASS && r.verdict != EV_FAIL && r.verdict != EV_ERROR)
        abort();
    if (isnan(r.score) || isinf(r.score))
        abort();
    if (r.verdict != EV_PASS && !r.reason)
        abort();
    ev_assert_check(a, o, &r2);
    if (r2.verdict != r.verdict || r2.score != r.score)
        abort();
    const ev_assert *as[2] = { a, a };
    ev_result rs[2] = { r, r2 };
    ev_assert_combine(as, rs, 2, NAN, &c);
    if (r.verdict != EV_ERROR && a->weight > 0 && c.verdict != r.verdict)
        abort();
    if (isnan(c.score))
        abort();
    ev_result_clear(&c);
    ev_result_clear(&r);
    ev_result_clear(&r2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!vars)
        vars = json_pack("{s:s, s:i, s:s, s:[s,s], s:{s:s}}", "word", "Paris", "n", 3, "expected", "hello world",
                         "list", "a", "b", "o", "k", "v");
    const uint8_t *nl = memchr(data, '\n', size);
    size_t speclen = nl ? (size_t)(nl - data) : size;
    size_t textlen = nl ? size - speclen - 1 : 0;
    json_error_t je;
    json_t *spec = json_loadb((const char *)data, speclen, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!spec)
        return 0;
    ev_assert *a = NULL;
    char msg[512];
    err_code e = ev_assert_parse(spec, "tests[0].assert[0]", &a, msg, sizeof msg);
    json_decref(spec);
    if (e != ERR_OK) {
        if (a || strncmp(msg, "tests[0].assert[0]", 18) != 0)
            abort();
        return 0;
    }
    char *text = malloc(textlen + 1);
    if (!text) {
        ev_assert_free(a);
        return 0;
    }
    memcpy(text, nl ? nl + 1 : (const uint8_t *)"", textlen);
    text[textlen] = '\0';
    json_t *calls = json_loadb(text, textlen, JSON_DECODE_ANY, &je);
    ev_output o = {
        .text = text,
        .len = textlen,
        .tool_calls = json_is_array(calls) ? calls : NULL,
        .finish_reason = "stop",
        .prompt = "prompt",
        .vars = vars,
        .latency_ms = 120,
        .cost_usd = 0.0004,
    };
    check(a, &o);
    json_t *empty = json_object();
    ev_output bare = { .text = text, .len = textlen, .vars = empty, .latency_ms = NAN, .cost_usd = NAN };
    check(a, &bare);
    json_decref(empty);
    json_decref(calls);
    free(text);
    ev_assert_free(a);
    return 0;
}
