/*
 * fuzz_otlp.c - libFuzzer driver for the attribute table and the OTLP
 * encoder: the input's bytes become a trace record as-is (unterminated
 * strings, invalid UTF-8, any span count, NaNs, odd flags), the content
 * pointers point at the tail of the input, and every span's attributes,
 * the params and the OTLP body must come out as valid JSON without a crash.
 */
#include <jansson.h>
#include <stdlib.h>
#include "observe/attrs.h"
#include "observe/otlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    trace_rec *t = trace_new(size + 1);
    if (!t)
        return 0;
    size_t n = size < sizeof *t ? size : sizeof *t;
    bool no_extra = t->no_extra; /* trace_new's own, not part of a record's content */
    memcpy(t, data, n);
    t->no_extra = no_extra;
    char *tail = (char *)(t + 1);
    memcpy(tail, data, size);
    tail[size] = '\0';
    t->input_messages = size & 1 ? tail : NULL;
    t->output_messages = size & 2 ? tail + size / 2 : NULL;
    /* bool fields must hold 0 or 1 to be valid C */
    bool *flags[] = { &t->stream, &t->has_temperature, &t->has_top_p, &t->has_max_tokens, &t->has_seed,
                      &t->has_frequency_penalty, &t->has_presence_penalty, &t->cost_known,
                      &t->content_redacted, &t->content_truncated };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        uint8_t b;
        memcpy(&b, flags[i], 1);
        b &= 1;
        memcpy(flags[i], &b, 1);
    }
    for (int i = 0; i < TRACE_MAX_SPANS; i++)
        t->spans[i].kind = (span_kind)((unsigned)t->spans[i].kind % 4);
    for (int i = -1; i <= TRACE_MAX_SPANS; i++) {
        json_t *o = json_object();
        trace_attrs_json(t, i, o);
        char *s = json_dumps(o, JSON_COMPACT);
        if (!s)
            abort();
        free(s);
        json_decref(o);
        char name[64];
        trace_span_name(t, i, name, sizeof name);
    }
    json_t *p = json_object();
    trace_params_json(t, p);
    json_decref(p);
    buf b;
    buf_init(&b, 1 << 22);
    if (otlp_encode_traces(&t, 1, "fuzz", &b) == ERR_OK) {
        json_error_t err;
        json_t *j = json_loadb(b.p, b.len, 0, &err);
        if (!j)
            abort();
        json_decref(j);
    }
    buf_free(&b);
    trace_free(t);
    return 0;
}
