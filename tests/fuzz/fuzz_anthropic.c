/*
 * fuzz_anthropic.c - libFuzzer driver for the OpenAI <-> Anthropic
 * translators.
 *
 * The input is parsed as JSON and given to all four request/response
 * translators, and as raw bytes to both error translators; it is also read
 * as an SSE stream whose events go through both stream translators. Checks
 * beyond "does not crash or leak": a request the OpenAI->Anthropic direction
 * accepted is accepted back by Anthropic->OpenAI; a refusal always carries a
 * 400 and a message; error translators never return NULL; the client stream
 * a translator writes is well-formed SSE whose every data is JSON or [DONE],
 * and after finish() it has ended.
 */
#include <stdint.h>
#include <stdlib.h>
#include "http/sse.h"
#include "providers/anthropic.h"

static void check_refusal(json_t *r, const xlate_err *e)
{
    if (!r && (e->status != 400 || !e->message[0]))
        abort();
}

static void requests(json_t *j)
{
    xlate_err e = { 0 };
    json_t *a = anthropic_from_chat_request(j, "fuzz-model", &e);
    check_refusal(a, &e);
    if (a) {
        if (!json_is_array(json_object_get(a, "messages")) || !json_is_integer(json_object_get(a, "max_tokens")))
            abort();
        xlate_err e2 = { 0 };
        json_t *back = anthropic_to_chat_request(a, &e2);
        if (!back)
            abort(); /* what we produce for Anthropic we must read back */
        json_decref(back);
        json_decref(a);
    }
    memset(&e, 0, sizeof e);
    json_t *o = anthropic_to_chat_request(j, &e);
    check_refusal(o, &e);
    json_decref(o);
    json_decref(anthropic_to_chat_response(j, "m"));
    json_decref(anthropic_from_chat_response(j, NULL));
}

static int check_out_event(void *ud, const sse_event *ev)
{
    (void)ud;
    if (sv_eq_cstr(ev->data, "[DONE]"))
        return 0;
    json_t *j = json_loadb(ev->data.p, ev->data.len, 0, NULL);
    if (!json_is_object(j))
        abort();
    json_decref(j);
    return 0;
}

typedef struct streams {
    xlate_stream *xs[2];
    buf out[2];
} streams;

static int on_up_event(void *ud, const sse_event *ev)
{
    streams *s = ud;
    for (int i = 0; i < 2; i++) {
        err_code e = xlate_stream_event(s->xs[i], ev->event, ev->data, &s->out[i]);
        if (e != ERR_OK && e != ERR_UPSTREAM && e != ERR_TOOBIG)
            abort();
    }
    return 0;
}

static void stream(const uint8_t *data, size_t size)
{
    streams s;
    s.xs[0] = xlate_stream_new(XLATE_ANTHROPIC_TO_OPENAI, "m", size & 1);
    s.xs[1] = xlate_stream_new(XLATE_OPENAI_TO_ANTHROPIC, "m", false);
    buf_init(&s.out[0], 1 << 20);
    buf_init(&s.out[1], 1 << 20);
    sse_parser p;
    sse_parser_init(&p, 1 << 16);
    sse_parser_feed(&p, (const char *)data, size, on_up_event, &s);
    sse_parser_free(&p);
    for (int i = 0; i < 2; i++) {
        xlate_stream_finish(s.xs[i], &s.out[i]);
        if (!xlate_stream_done(s.xs[i]))
            abort();
        long in, out;
        xlate_stream_usage(s.xs[i], &in, &out);
        if (in < 0 || out < 0)
            abort();
        sse_parser q;
        sse_parser_init(&q, 1 << 21);
        if (sse_parser_feed(&q, s.out[i].p ? s.out[i].p : "", s.out[i].len, check_out_event, NULL) != ERR_OK ||
            sse_parser_pending(&q))
            abort();
        sse_parser_free(&q);
        buf_free(&s.out[i]);
        xlate_stream_free(s.xs[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (j) {
        requests(j);
        json_decref(j);
    }
    json_t *e1 = anthropic_error_to_openai(size % 600, (const char *)data, size);
    json_t *e2 = anthropic_error_from_openai(size % 600, (const char *)data, size);
    if (!e1 || !e2)
        abort();
    json_decref(e1);
    json_decref(e2);
    stream(data, size);
    return 0;
}
