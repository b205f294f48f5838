/* test_extract.c - usage and response fields from OpenAI and Anthropic
 * bodies and streams, as the public API references show them. */
#include <stdlib.h>
#include "observe/extract.h"
#include "test.h"

TEST(extract_openai_chat_with_cache_and_reasoning)
{
    trace_rec *t = trace_new(0);
    const char *b = "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"o3-mini-2025-01-31\","
                    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"x\"},\"finish_reason\":\"stop\"},"
                    "{\"index\":1,\"message\":{\"role\":\"assistant\",\"content\":\"y\"},\"finish_reason\":\"length\"}],"
                    "\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":300,\"total_tokens\":1500,"
                    "\"prompt_tokens_details\":{\"cached_tokens\":1024},\"completion_tokens_details\":{\"reasoning_tokens\":256}}}";
    extract_openai_response(t, b, strlen(b));
    CHECK_STR(t->response_id, "chatcmpl-1");
    CHECK_STR(t->response_model, "o3-mini-2025-01-31");
    CHECK_STR(t->finish_reasons, "stop,length");
    CHECK_INT(t->input_tokens, 1200);
    CHECK_INT(t->output_tokens, 300);
    CHECK_INT(t->cache_read_tokens, 1024);
    CHECK_INT(t->reasoning_tokens, 256);
    CHECK_INT(t->cache_creation_tokens, -1);
    trace_free(t);
}

TEST(extract_openai_embeddings_and_garbage)
{
    trace_rec *t = trace_new(0);
    const char *b = "{\"object\":\"list\",\"data\":[],\"model\":\"text-embedding-3-small\",\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}";
    extract_openai_response(t, b, strlen(b));
    CHECK_INT(t->input_tokens, 8);
    CHECK_INT(t->output_tokens, 0);
    CHECK_STR(t->response_model, "text-embedding-3-small");
    trace_rec *g = trace_new(0);
    extract_openai_response(g, "{\"usage\":", 9);
    extract_openai_response(g, "not json", 8);
    extract_openai_chunk(g, "[DONE]", 6);
    CHECK_INT(g->input_tokens, -1);
    CHECK_STR(g->response_id, "");
    trace_free(t);
    trace_free(g);
}

TEST(extract_openai_stream_chunks)
{
    trace_rec *t = trace_new(0);
    const char *chunks[] = {
        "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}",
        "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}",
        "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}",
        "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":9,\"total_tokens\":21}}",
        "[DONE]",
    };
    for (size_t i = 0; i < countof(chunks); i++)
        extract_openai_chunk(t, chunks[i], strlen(chunks[i]));
    CHECK_STR(t->response_id, "c1");
    CHECK_STR(t->finish_reasons, "stop");
    CHECK_INT(t->input_tokens, 12);
    CHECK_INT(t->output_tokens, 9);
    trace_free(t);
}

TEST(extract_anthropic_message_and_stream)
{
    trace_rec *t = trace_new(0);
    const char *b = "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\","
                    "\"content\":[{\"type\":\"text\",\"text\":\"x\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
                    "\"usage\":{\"input_tokens\":100,\"cache_creation_input_tokens\":2000,\"cache_read_input_tokens\":500,\"output_tokens\":40}}";
    extract_anthropic_response(t, b, strlen(b));
    CHECK_STR(t->response_id, "msg_1");
    CHECK_STR(t->finish_reasons, "end_turn");
    CHECK_INT(t->input_tokens, 2600); /* all input: uncached + written + read */
    CHECK_INT(t->cache_creation_tokens, 2000);
    CHECK_INT(t->cache_read_tokens, 500);
    CHECK_INT(t->output_tokens, 40);
    trace_free(t);

    t = trace_new(0);
    const char *start = "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"type\":\"message\",\"role\":\"assistant\","
                        "\"model\":\"claude-haiku-4-5\",\"content\":[],\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":10,\"output_tokens\":1}}}";
    const char *delta = "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}";
    extract_anthropic_event(t, SV("message_start"), start, strlen(start));
    extract_anthropic_event(t, SV("content_block_delta"), "{}", 2);
    extract_anthropic_event(t, SV("message_delta"), delta, strlen(delta));
    CHECK_STR(t->response_id, "msg_2");
    CHECK_STR(t->response_model, "claude-haiku-4-5");
    CHECK_INT(t->input_tokens, 35);
    CHECK_INT(t->cache_read_tokens, 10);
    CHECK_INT(t->output_tokens, 15);
    CHECK_STR(t->finish_reasons, "tool_use");
    trace_free(t);
}

TEST(trace_ids_and_spans)
{
    trace_rec *t = trace_new(0);
    char a[33], b[33];
    trace_id_hex(t->trace_id, a);
    CHECK_INT(strlen(a), 32);
    trace_rec *u = trace_new(0);
    trace_id_hex(u->trace_id, b);
    CHECK(strcmp(a, b) != 0);
    span_rec *root = trace_add_span(t, SPAN_REQUEST, 1);
    span_rec *at = trace_add_span(t, SPAN_ATTEMPT, 2);
    CHECK(memcmp(at->parent_id, root->span_id, 8) == 0);
    static const uint8_t zero[8];
    CHECK(memcmp(root->parent_id, zero, 8) == 0);
    for (int i = 2; i < TRACE_MAX_SPANS; i++)
        CHECK(trace_add_span(t, SPAN_ATTEMPT, 3) != NULL);
    CHECK(trace_add_span(t, SPAN_ATTEMPT, 4) == NULL);
    trace_free(t);
    trace_free(u);
}

#include "observe/attrs.h"

/* The store writes span attributes as text (trace_attrs_write); OTLP builds
 * them with jansson (trace_attrs_json). Both must say the same thing. */
TEST(attrs_text_matches_jansson)
{
    trace_rec *t = trace_new(0);
    snprintf(t->operation, sizeof t->operation, "chat");
    snprintf(t->provider, sizeof t->provider, "prov \"q\" \\ \n");
    snprintf(t->request_model, sizeof t->request_model, "m\xff\xfe-bad-utf8");
    snprintf(t->finish_reasons, sizeof t->finish_reasons, "stop, length");
    t->has_temperature = true, t->temperature = 0.3;
    t->has_top_p = true, t->top_p = 1.0;
    t->has_max_tokens = true, t->max_tokens = 128;
    t->has_seed = true, t->seed = -7;
    t->stream = true;
    t->input_tokens = 12, t->output_tokens = 0, t->cache_read_tokens = 4;
    t->ttft_ns = 1234567;
    t->overhead_ns = 45000;
    t->status = 200;
    t->cost_known = true, t->cost_usd = 0.00001335;
    t->attempts = 2;
    trace_add_span(t, SPAN_REQUEST, 1);
    span_rec *a = trace_add_span(t, SPAN_ATTEMPT, 2);
    snprintf(a->provider, sizeof a->provider, "up");
    snprintf(a->server_address, sizeof a->server_address, "127.0.0.1");
    a->server_port = 8080;
    a->http_status = 429;
    snprintf(a->error_type, sizeof a->error_type, "429");
    for (int i = 0; i < 3; i++) { /* root, attempt, and an index past the end */
        json_t *want = json_object();
        trace_attrs_json(t, i, want);
        buf b;
        buf_init(&b, 1 << 20);
        trace_attrs_write(t, i, &b);
        json_error_t je;
        json_t *got = json_loadb(b.p, b.len, 0, &je);
        CHECK(got != NULL);
        /* invalid UTF-8 is repaired differently ('?' vs U+FFFD): compare
         * everything but that field */
        json_object_del(want, "gen_ai.request.model");
        if (got)
            json_object_del(got, "gen_ai.request.model");
        if (!json_equal(want, got)) {
            char *w = json_dumps(want, JSON_SORT_KEYS), *g = got ? json_dumps(got, JSON_SORT_KEYS) : NULL;
            test_fail(__FILE__, __LINE__, "span %d: text %s != jansson %s", i, g ? g : b.p, w);
            free(w);
            free(g);
        }
        json_decref(want);
        json_decref(got);
        buf_free(&b);
    }
    buf b;
    buf_init(&b, 1 << 20);
    CHECK(trace_params_write(t, &b));
    json_t *p = json_loadb(b.p, b.len, 0, NULL);
    CHECK(p && json_real_value(json_object_get(p, "temperature")) == 0.3);
    CHECK(p && json_integer_value(json_object_get(p, "seed")) == -7);
    json_decref(p);
    buf_free(&b);
    trace_rec *empty = trace_new(0);
    buf_init(&b, 1 << 20);
    CHECK(!trace_params_write(empty, &b));
    CHECK_INT(b.len, 0);
    buf_free(&b);
    trace_free(empty);
    trace_free(t);
}

/* The one-pass walk (extract.c): what a body that nobody validated gives. */
TEST(extract_openai_walk_edges)
{
    const char *pretty = "{\n  \"id\": \"chatcmpl-9\",\n  \"object\": \"chat.completion\",\n  \"model\": \"gpt-4o\",\n"
                         "  \"choices\": [\n    {\n      \"index\": 0,\n      \"message\": { \"role\": \"assistant\", "
                         "\"content\": \"a \\\"quoted\\\" } ] { [ answer\" },\n      \"finish_reason\": \"stop\"\n    }\n  ],\n"
                         "  \"usage\": { \"prompt_tokens\": 7, \"completion_tokens\": 2, \"total_tokens\": 9 }\n}\n";
    trace_rec *t = trace_new(0);
    extract_openai_response(t, pretty, strlen(pretty));
    CHECK_STR(t->response_id, "chatcmpl-9");
    CHECK_STR(t->finish_reasons, "stop");
    CHECK_INT(t->input_tokens, 7);
    CHECK_INT(t->output_tokens, 2);
    /* every cut before the closing brace leaves the trace as it was */
    const char *close = strrchr(pretty, '}');
    for (size_t cut = 0; cut < (size_t)(close - pretty); cut++) {
        trace_rec *c = trace_new(0);
        extract_openai_response(c, pretty, cut);
        if (c->response_id[0] || c->finish_reasons[0] || c->input_tokens != -1 || c->output_tokens != -1)
            test_fail(__FILE__, __LINE__, "a body cut at %zu gave fields", cut);
        trace_free(c);
    }
    trace_free(t);

    /* escaped keys count as their text; a repeated member, the last one */
    const char *odd = "{\"\\u0069d\":\"one\",\"id\":\"two\",\"choices\":[{\"finish_reason\":\"stop\"}],"
                      "\"choices\":[{\"finish_reason\":\"length\",\"finish_reason\":\"tool_calls\"},{\"finish_reason\":7}],"
                      "\"usage\":{\"prompt_tokens\":1.5,\"completion_tokens\":3},\"usage\":{\"prompt_tokens\":4}}";
    t = trace_new(0);
    extract_openai_response(t, odd, strlen(odd));
    CHECK_STR(t->response_id, "two");
    CHECK_STR(t->finish_reasons, "tool_calls");
    CHECK_INT(t->input_tokens, 4);
    CHECK_INT(t->output_tokens, -1);
    trace_free(t);

    /* garbage inside a value the walk passes is not its business, but a
     * broken structure where it steps is */
    t = trace_new(0);
    const char *broken = "{\"id\":\"x\",\"usage\":{\"prompt_tokens\":3} \"model\":\"m\"}";
    extract_openai_response(t, broken, strlen(broken));
    CHECK_STR(t->response_id, "");
    CHECK_INT(t->input_tokens, -1);
    trace_free(t);
}
