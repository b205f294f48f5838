/* test_extract.c - usage and response fields from OpenAI and Anthropic
 * bodies and streams, as the public API references show them. */
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
