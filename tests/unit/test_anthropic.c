/*
 * test_anthropic.c - OpenAI <-> Anthropic translation.
 *
 * Golden files in tests/data/anthropic/: <case>.in.json -> <case>.out.json
 * for requests, responses and errors (compared with json_equal after
 * dropping the "created" timestamp), and recorded streams <case>.in.sse ->
 * <case>.out.sse compared event by event (event name, then data as JSON with
 * id/created removed). Tables cover what must be refused with a 400.
 */
#include <stdlib.h>
#include <time.h>
#include "http/sse.h"
#include "providers/anthropic.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------ */

static json_t *load_json(const char *rel)
{
    size_t len;
    char *text = test_read_data(rel, &len);
    if (!text)
        return NULL;
    json_error_t je;
    json_t *j = json_loadb(text, len, 0, &je);
    if (!j)
        test_fail(__FILE__, __LINE__, "%s:%d: %s", rel, je.line, je.text);
    free(text);
    return j;
}

static json_t *parse(const char *text)
{
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!j)
        test_fail(__FILE__, __LINE__, "bad test JSON: %s", text);
    return j;
}

/* Drops the fields that legitimately differ run to run. */
static void normalize(json_t *j)
{
    if (!json_is_object(j))
        return;
    json_object_del(j, "created");
    json_object_del(j, "id");
    json_t *m = json_object_get(j, "message");
    if (json_is_object(m))
        json_object_del(m, "id");
}

static bool same_json(const char *what, json_t *got, json_t *want)
{
    if (got && want && json_equal(got, want))
        return true;
    char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    char *w = want ? json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    test_fail(__FILE__, __LINE__, "%s:\n      got  %s\n      want %s", what, g ? g : "(null)", w ? w : "(null)");
    free(g);
    free(w);
    return false;
}

typedef enum kind { REQ_O2A, REQ_A2O, RESP_A2O, RESP_O2A, ERR_A2O, ERR_O2A } kind;

static void run_golden(kind k, const char *name)
{
    static const char *const prefix[] = { "req_o2a", "req_a2o", "resp_a2o", "resp_o2a", "err_a2o", "err_o2a" };
    char in_path[256], out_path[256];
    snprintf(in_path, sizeof in_path, "anthropic/%s_%s.in.json", prefix[k], name);
    snprintf(out_path, sizeof out_path, "anthropic/%s_%s.out.json", prefix[k], name);
    json_t *in = load_json(in_path), *want = load_json(out_path);
    if (!in || !want)
        goto out;
    xlate_err e = { 0 };
    json_t *got = NULL;
    switch (k) {
    case REQ_O2A: got = anthropic_from_chat_request(in, "claude-up", &e); break;
    case REQ_A2O: got = anthropic_to_chat_request(in, &e); break;
    case RESP_A2O: got = anthropic_to_chat_response(in, "client-model"); break;
    case RESP_O2A: got = anthropic_from_chat_response(in, "client-model"); break;
    case ERR_A2O:
    case ERR_O2A: {
        int status = (int)json_integer_value(json_object_get(in, "status"));
        json_t *body = json_object_get(in, "body");
        const char *b = json_string_value(body);
        size_t n = json_string_length(body);
        got = k == ERR_A2O ? anthropic_error_to_openai(status, b, n) : anthropic_error_from_openai(status, b, n);
        break;
    }
    }
    if (!got && (k == REQ_O2A || k == REQ_A2O))
        test_fail(__FILE__, __LINE__, "%s: refused: %s", in_path, e.message);
    if (k == RESP_A2O) {
        json_t *created = json_object_get(got, "created");
        CHECK(json_is_integer(created) && json_integer_value(created) >= (json_int_t)time(NULL) - 60);
    }
    /* ids are deterministic (passed through), only the timestamp varies */
    json_object_del(got, "created");
    json_object_del(want, "created");
    same_json(in_path, got, want);
    json_decref(got);
out:
    json_decref(in);
    json_decref(want);
}

/* ---- golden requests, responses, errors --------------------------------- */

TEST(anthropic_golden_requests)
{
    static const char *const o2a[] = { "system_multiturn", "tools", "images", "stop", "stop_list" };
    static const char *const a2o[] = { "system_multiturn", "tools", "images" };
    for (size_t i = 0; i < countof(o2a); i++)
        run_golden(REQ_O2A, o2a[i]);
    for (size_t i = 0; i < countof(a2o); i++)
        run_golden(REQ_A2O, a2o[i]);
}

TEST(anthropic_golden_responses)
{
    static const char *const a2o[] = { "text", "tools", "tools_only" };
    static const char *const o2a[] = { "text", "tools", "length" };
    for (size_t i = 0; i < countof(a2o); i++)
        run_golden(RESP_A2O, a2o[i]);
    for (size_t i = 0; i < countof(o2a); i++)
        run_golden(RESP_O2A, o2a[i]);
}

TEST(anthropic_golden_errors)
{
    static const char *const a2o[] = { "overloaded", "invalid", "html", "ratelimit_notype" };
    static const char *const o2a[] = { "ratelimit", "auth", "empty", "server" };
    for (size_t i = 0; i < countof(a2o); i++)
        run_golden(ERR_A2O, a2o[i]);
    for (size_t i = 0; i < countof(o2a); i++)
        run_golden(ERR_O2A, o2a[i]);
}

TEST(anthropic_response_ids_pass_through)
{
    json_t *in = load_json("anthropic/resp_a2o_text.in.json");
    json_t *out = anthropic_to_chat_response(in, NULL);
    CHECK_STR(json_string_value(json_object_get(out, "id")), "msg_01ABC");
    CHECK_STR(json_string_value(json_object_get(out, "model")), "claude-sonnet-4-5"); /* NULL model = its own */
    json_decref(out);
    json_decref(in);
    in = load_json("anthropic/resp_o2a_text.in.json");
    out = anthropic_from_chat_response(in, NULL);
    CHECK_STR(json_string_value(json_object_get(out, "id")), "chatcmpl-123");
    CHECK_STR(json_string_value(json_object_get(out, "model")), "gpt-4o-2024-08-06");
    json_decref(out);
    json_decref(in);
}

/* ---- refused requests ---------------------------------------------------- */

static const struct refuse_case {
    const char *json;
    const char *param; /* NULL: expect a NULL param */
} refuse_o2a[] = {
    { "[]", NULL },
    { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model" }, /* no model, no upstream model */
    { "{\"model\":\"m\",\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "n" },
    { "{\"model\":\"m\",\"n\":\"1\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "n" },
    { "{\"model\":\"m\",\"response_format\":{\"type\":\"json_object\"},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "response_format" },
    { "{\"model\":\"m\",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{}},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "response_format" },
    { "{\"model\":\"m\"}", "messages" },
    { "{\"model\":\"m\",\"messages\":[]}", "messages" },
    { "{\"model\":\"m\",\"messages\":{}}", "messages" },
    { "{\"model\":\"m\",\"messages\":[\"hi\"]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"function\",\"name\":\"f\",\"content\":\"x\"}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":42}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"no type\"}]}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\",\"input_audio\":{}}]}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"ftp://x/y.png\"}}]}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png,abc\"}}]}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:;base64,abc\"}}]}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,\"}}]}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{bad\"}}]}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"[1,2]\"}}]}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":7}}]}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":{}}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"image_url\"}]}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"r\"}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":[{\"type\":\"image_url\"}]}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"only system\"}]}", "messages" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"image_url\"}]},{\"role\":\"user\",\"content\":\"x\"}]}", "messages" },
    { "{\"model\":\"m\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "max_tokens" },
    { "{\"model\":\"m\",\"max_completion_tokens\":\"10\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "max_completion_tokens" },
    { "{\"model\":\"m\",\"temperature\":\"hot\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "temperature" },
    { "{\"model\":\"m\",\"top_p\":[],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "top_p" },
    { "{\"model\":\"m\",\"stop\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "stop" },
    { "{\"model\":\"m\",\"stop\":[1],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "stop" },
    { "{\"model\":\"m\",\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "stream" },
    { "{\"model\":\"m\",\"tools\":{},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "tools" },
    { "{\"model\":\"m\",\"tools\":[{\"type\":\"custom\",\"custom\":{\"name\":\"c\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "tools" },
    { "{\"model\":\"m\",\"tools\":[{\"type\":\"function\",\"function\":{}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "tools" },
    { "{\"model\":\"m\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":[]}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "tools" },
    { "{\"model\":\"m\",\"tool_choice\":\"sometimes\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "tool_choice" },
    { "{\"model\":\"m\",\"tool_choice\":{\"type\":\"function\"},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "tool_choice" },
    { "{\"model\":\"m\",\"tool_choice\":3,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "tool_choice" },
    { "{\"model\":\"m\",\"parallel_tool_calls\":\"no\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "parallel_tool_calls" },
};

static const struct refuse_case refuse_a2o[] = {
    { "\"text\"", NULL },
    { "{\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model" },
    { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "max_tokens" },
    { "{\"model\":\"m\",\"max_tokens\":-1,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "max_tokens" },
    { "{\"model\":\"m\",\"max_tokens\":1.5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "max_tokens" },
    { "{\"model\":\"m\",\"max_tokens\":10}", "messages" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[]}", "messages" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}", "messages" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[7]}", "messages" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":7}]}", "messages" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"assistant\",\"content\":{}}]}", "messages" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"document\",\"source\":{}}]}]}", "messages" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":[{\"no\":\"type\"}]}]}", "messages" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"file\",\"file_id\":\"f\"}}]}]}", "messages" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"data\":\"x\"}}]}]}", "messages" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"content\":\"x\"}]}]}", "messages" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"content\":[{\"type\":\"image\",\"source\":{}}]}]}]}", "messages" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"content\":5}]}]}", "messages" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"n\",\"input\":[1]}]}]}", "messages" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"server_tool_use\",\"id\":\"t\",\"name\":\"web_search\"}]}]}", "messages" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"system\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "system" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"system\":[{\"type\":\"image\"}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "system" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"temperature\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "temperature" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"stop_sequences\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "stop_sequences" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"stop_sequences\":[null],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "stop_sequences" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "tools" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"tools\":[{\"description\":\"no name\"}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "tools" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"tools\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "tools" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"tool_choice\":{\"type\":\"maybe\"},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "tool_choice" },
    { "{\"model\":\"m\",\"max_tokens\":10,\"tool_choice\":{\"type\":\"tool\"},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "tool_choice" },
};

static void check_refused(const struct refuse_case *c, size_t n, bool o2a)
{
    for (size_t i = 0; i < n; i++) {
        json_t *in = parse(c[i].json);
        xlate_err e = { 0 };
        json_t *out = o2a ? anthropic_from_chat_request(in, NULL, &e) : anthropic_to_chat_request(in, &e);
        if (out) {
            char *s = json_dumps(out, JSON_COMPACT);
            test_fail(__FILE__, __LINE__, "accepted %s -> %s", c[i].json, s ? s : "?");
            free(s);
            json_decref(out);
        } else {
            if (e.status != 400 || !e.message[0])
                test_fail(__FILE__, __LINE__, "%s: status %d message '%s'", c[i].json, e.status, e.message);
            bool param_ok = c[i].param ? (e.param && strcmp(e.param, c[i].param) == 0) : e.param == NULL;
            if (!param_ok)
                test_fail(__FILE__, __LINE__, "%s: param %s, expected %s (%s)", c[i].json,
                          e.param ? e.param : "NULL", c[i].param ? c[i].param : "NULL", e.message);
        }
        json_decref(in);
    }
}

TEST(anthropic_refuses_bad_chat_requests)
{
    check_refused(refuse_o2a, countof(refuse_o2a), true);
    /* and the messages say where */
    json_t *in = parse("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
                       "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\","
                       "\"function\":{\"name\":\"f\",\"arguments\":\"{bad\"}}]}]}");
    xlate_err e = { 0 };
    CHECK(anthropic_from_chat_request(in, "up", &e) == NULL);
    CHECK(strstr(e.message, "messages[1].tool_calls[0]") != NULL);
    json_decref(in);
}

TEST(anthropic_refuses_bad_messages_requests)
{
    check_refused(refuse_a2o, countof(refuse_a2o), false);
}

TEST(anthropic_request_small_cases)
{
    /* upstream model NULL keeps the request's; n:1 and null fields are fine;
     * a tool_choice without tools is dropped */
    json_t *in = parse("{\"model\":\"own\",\"n\":1,\"stop\":null,\"temperature\":null,\"tool_choice\":\"none\","
                       "\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"\"}]}");
    xlate_err e = { 0 };
    json_t *out = anthropic_from_chat_request(in, NULL, &e);
    json_t *want = parse("{\"model\":\"own\",\"max_tokens\":4096,"
                         "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}]}");
    same_json("small o2a", out, want);
    json_decref(out);
    json_decref(want);
    json_decref(in);

    /* tool_choice none with parallel_tool_calls false keeps none */
    in = parse("{\"model\":\"m\",\"tool_choice\":\"none\",\"parallel_tool_calls\":false,"
               "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
               "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    out = anthropic_from_chat_request(in, "up", &e);
    want = parse("{\"type\":\"none\"}");
    same_json("tool_choice none", json_object_get(out, "tool_choice"), want);
    json_decref(out);
    json_decref(want);
    json_decref(in);

    /* parallel_tool_calls false alone gives auto + disable */
    in = parse("{\"model\":\"m\",\"parallel_tool_calls\":false,"
               "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
               "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    out = anthropic_from_chat_request(in, "up", &e);
    want = parse("{\"type\":\"auto\",\"disable_parallel_tool_use\":true}");
    same_json("parallel false", json_object_get(out, "tool_choice"), want);
    json_decref(out);
    json_decref(want);
    json_decref(in);

    /* Anthropic request, not streamed: no stream fields; string system */
    in = parse("{\"model\":\"m\",\"max_tokens\":5,\"system\":\"be nice\",\"stream\":false,"
               "\"tool_choice\":{\"type\":\"tool\",\"name\":\"f\"},\"tools\":[{\"name\":\"f\",\"input_schema\":{}}],"
               "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    out = anthropic_to_chat_request(in, &e);
    want = parse("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"system\",\"content\":\"be nice\"},"
                 "{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":"
                 "{\"name\":\"f\",\"parameters\":{}}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}}");
    same_json("small a2o", out, want);
    json_decref(out);
    json_decref(want);
    json_decref(in);
}

TEST(anthropic_request_round_trip_keeps_conversation)
{
    /* OpenAI -> Anthropic -> OpenAI keeps roles, tool calls and results */
    json_t *in = load_json("anthropic/req_o2a_tools.in.json");
    xlate_err e = { 0 };
    json_t *anth = anthropic_from_chat_request(in, "up", &e);
    json_object_set_new(anth, "max_tokens", json_integer(10));
    json_t *back = anthropic_to_chat_request(anth, &e);
    CHECK(back != NULL);
    json_t *msgs = json_object_get(back, "messages");
    CHECK_INT(json_array_size(msgs), 7);
    static const char *const roles[] = { "user", "assistant", "tool", "tool", "user", "assistant", "tool" };
    for (size_t i = 0; i < 7 && i < json_array_size(msgs); i++)
        CHECK_STR(json_string_value(json_object_get(json_array_get(msgs, i), "role")), roles[i]);
    json_t *call = json_array_get(json_object_get(json_array_get(msgs, 1), "tool_calls"), 1);
    CHECK_STR(json_string_value(json_object_get(json_object_get(call, "function"), "arguments")), "{\"city\":\"Rome\"}");
    CHECK_STR(json_string_value(json_object_get(json_array_get(msgs, 3), "content")), "25C, sunny");
    json_decref(back);
    json_decref(anth);
    json_decref(in);
}

/* ---- responses ------------------------------------------------------------ */

TEST(anthropic_stop_reason_mapping)
{
    static const struct { const char *stop, *finish; } a2o[] = {
        { "end_turn", "stop" }, { "stop_sequence", "stop" }, { "max_tokens", "length" },
        { "tool_use", "tool_calls" }, { "refusal", "content_filter" }, { "pause_turn", "stop" },
        { "something_new", "stop" }, { NULL, "stop" },
    };
    for (size_t i = 0; i < countof(a2o); i++) {
        json_t *m = json_pack("{s:s, s:[], s:s?}", "id", "msg", "content", "stop_reason", a2o[i].stop);
        json_t *c = anthropic_to_chat_response(m, "x");
        json_t *choice = json_array_get(json_object_get(c, "choices"), 0);
        CHECK_STR(json_string_value(json_object_get(choice, "finish_reason")), a2o[i].finish);
        CHECK_STR(json_string_value(json_object_get(json_object_get(choice, "message"), "content")), "");
        json_decref(c);
        json_decref(m);
    }
    static const struct { const char *finish, *stop; } o2a[] = {
        { "stop", "end_turn" }, { "length", "max_tokens" }, { "tool_calls", "tool_use" },
        { "function_call", "tool_use" }, { "content_filter", "refusal" }, { NULL, "end_turn" }, { "odd", "end_turn" },
    };
    for (size_t i = 0; i < countof(o2a); i++) {
        json_t *c = json_pack("{s:[{s:{s:s}, s:s?}]}", "choices", "message", "content", "x", "finish_reason", o2a[i].finish);
        json_t *m = anthropic_from_chat_response(c, "x");
        CHECK_STR(json_string_value(json_object_get(m, "stop_reason")), o2a[i].stop);
        json_decref(c);
        json_decref(m);
    }
}

TEST(anthropic_responses_refuse_non_messages)
{
    static const char *const bad[] = { "[]", "1", "{}", "{\"content\":\"x\"}", "{\"type\":\"error\",\"error\":{}}" };
    for (size_t i = 0; i < countof(bad); i++) {
        json_t *j = parse(bad[i]);
        CHECK(anthropic_to_chat_response(j, "m") == NULL);
        json_decref(j);
    }
    static const char *const bad2[] = { "[]", "{}", "{\"choices\":[]}", "{\"choices\":[1]}", "{\"choices\":{}}" };
    for (size_t i = 0; i < countof(bad2); i++) {
        json_t *j = parse(bad2[i]);
        CHECK(anthropic_from_chat_response(j, "m") == NULL);
        json_decref(j);
    }
    CHECK(anthropic_to_chat_response(NULL, "m") == NULL);
    CHECK(anthropic_from_chat_response(NULL, "m") == NULL);
    /* odd usage values do not overflow or go negative */
    json_t *m = parse("{\"content\":[],\"usage\":{\"input_tokens\":9223372036854775807,"
                      "\"cache_read_input_tokens\":9223372036854775807,\"output_tokens\":-5}}");
    json_t *c = anthropic_to_chat_response(m, "x");
    json_t *u = json_object_get(c, "usage");
    CHECK(json_integer_value(json_object_get(u, "prompt_tokens")) == 9223372036854775807LL);
    CHECK_INT(json_integer_value(json_object_get(u, "completion_tokens")), 0);
    json_decref(c);
    json_decref(m);
    /* refusal text becomes content when there is none */
    json_t *r = parse("{\"choices\":[{\"message\":{\"content\":null,\"refusal\":\"I can't\"},\"finish_reason\":\"content_filter\"}]}");
    json_t *a = anthropic_from_chat_response(r, "m");
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(a, "content"), 0), "text")), "I can't");
    json_decref(a);
    json_decref(r);
}

/* ---- errors --------------------------------------------------------------- */

static json_t *err_field(json_t *j, const char *k)
{
    return json_object_get(json_object_get(j, "error"), k);
}

TEST(anthropic_error_status_table)
{
    static const struct { int status; const char *openai, *anthropic; } rows[] = {
        { 400, "invalid_request_error", "invalid_request_error" },
        { 401, "authentication_error", "authentication_error" },
        { 403, "permission_error", "permission_error" },
        { 404, "not_found_error", "not_found_error" },
        { 413, "invalid_request_error", "request_too_large" },
        { 422, "invalid_request_error", "invalid_request_error" },
        { 429, "rate_limit_error", "rate_limit_error" },
        { 500, "server_error", "api_error" },
        { 502, "server_error", "api_error" },
        { 503, "server_error", "overloaded_error" },
        { 504, "timeout_error", "timeout_error" },
        { 529, "server_error", "overloaded_error" },
        { 0, "server_error", "api_error" },
    };
    for (size_t i = 0; i < countof(rows); i++) {
        json_t *o = anthropic_error_to_openai(rows[i].status, NULL, 0);
        json_t *a = anthropic_error_from_openai(rows[i].status, "", 0);
        CHECK_STR(json_string_value(err_field(o, "type")), rows[i].openai);
        CHECK_STR(json_string_value(err_field(a, "type")), rows[i].anthropic);
        CHECK_STR(json_string_value(json_object_get(a, "type")), "error");
        CHECK(json_is_null(err_field(o, "param")));
        CHECK(strstr(json_string_value(err_field(o, "message")), "HTTP status") != NULL);
        json_decref(o);
        json_decref(a);
    }
}

TEST(anthropic_error_bodies)
{
    /* {"error":"text"} and {"message":...} shapes */
    json_t *o = anthropic_error_to_openai(400, "{\"error\":\"plain\"}", 17);
    CHECK_STR(json_string_value(err_field(o, "message")), "plain");
    json_decref(o);
    /* an OpenAI body given to the Anthropic->OpenAI direction keeps param and code */
    const char *ob = "{\"error\":{\"message\":\"m\",\"type\":\"invalid_request_error\",\"param\":\"messages\",\"code\":\"bad\"}}";
    o = anthropic_error_to_openai(400, ob, strlen(ob));
    CHECK_STR(json_string_value(err_field(o, "param")), "messages");
    CHECK_STR(json_string_value(err_field(o, "code")), "bad");
    json_decref(o);
    /* an Anthropic type is kept by from_openai even under another status */
    const char *ab = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}";
    json_t *a = anthropic_error_from_openai(500, ab, strlen(ab));
    CHECK_STR(json_string_value(err_field(a, "type")), "overloaded_error");
    CHECK_STR(json_string_value(err_field(a, "message")), "busy");
    json_decref(a);
    /* an unknown type falls back to the status */
    const char *ub = "{\"error\":{\"message\":\"m\",\"type\":\"weird\"}}";
    a = anthropic_error_from_openai(404, ub, strlen(ub));
    CHECK_STR(json_string_value(err_field(a, "type")), "not_found_error");
    json_decref(a);
    /* invalid UTF-8 and NUL in a raw body are replaced, not refused */
    const char raw[] = "bad \xff\xfe bytes \xc3\x28 and \0 nul \xe2\x82\xac";
    o = anthropic_error_to_openai(502, raw, sizeof raw - 1);
    CHECK_STR(json_string_value(err_field(o, "message")), "bad ?? bytes ?( and ? nul \xe2\x82\xac");
    json_decref(o);
    /* a truncated multi-byte sequence at the end */
    o = anthropic_error_to_openai(502, "ab\xe2\x82", 4);
    CHECK_STR(json_string_value(err_field(o, "message")), "ab??");
    json_decref(o);
    /* long raw bodies are cut */
    char *big = malloc(100000);
    memset(big, 'x', 100000);
    o = anthropic_error_to_openai(500, big, 100000);
    CHECK(json_string_length(err_field(o, "message")) <= 1024);
    CHECK(json_string_length(err_field(o, "message")) >= 1000);
    json_decref(o);
    free(big);
    /* a JSON body without any message uses the raw text */
    o = anthropic_error_to_openai(500, "{\"x\":1}", 7);
    CHECK_STR(json_string_value(err_field(o, "message")), "{\"x\":1}");
    json_decref(o);
}

/* ---- streams --------------------------------------------------------------- */

typedef struct ev_list {
    char *event[64];
    char *data[64];
    size_t n;
    bool overflow;
} ev_list;

static int collect_ev(void *ud, const sse_event *ev)
{
    ev_list *l = ud;
    if (l->n == countof(l->event)) {
        l->overflow = true;
        return 1;
    }
    l->event[l->n] = strndup(ev->event.p ? ev->event.p : "", ev->event.len);
    l->data[l->n] = strndup(ev->data.p ? ev->data.p : "", ev->data.len);
    l->n++;
    return 0;
}

static void ev_list_free(ev_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->event[i]);
        free(l->data[i]);
    }
    l->n = 0;
}

/* Splits SSE bytes into events, feeding `step` bytes at a time (0 = all). */
static void parse_sse(const char *p, size_t n, size_t step, ev_list *l)
{
    sse_parser sp;
    sse_parser_init(&sp, 0);
    for (size_t at = 0; at < n;) {
        size_t k = step ? MIN(step, n - at) : n - at;
        CHECK_INT(sse_parser_feed(&sp, p + at, k, collect_ev, l), ERR_OK);
        at += k;
    }
    sse_parser_free(&sp);
}

static void compare_events(const char *name, const ev_list *got, const ev_list *want)
{
    if (got->n != want->n)
        test_fail(__FILE__, __LINE__, "%s: %zu events, expected %zu", name, got->n, want->n);
    for (size_t i = 0; i < got->n && i < want->n; i++) {
        if (strcmp(got->event[i], want->event[i]) != 0)
            test_fail(__FILE__, __LINE__, "%s[%zu]: event '%s', expected '%s'", name, i, got->event[i], want->event[i]);
        json_t *g = json_loads(got->data[i], 0, NULL), *w = json_loads(want->data[i], 0, NULL);
        if (g && w) {
            normalize(g);
            normalize(w);
            char what[128];
            snprintf(what, sizeof what, "%s[%zu]", name, i);
            same_json(what, g, w);
        } else if (strcmp(got->data[i], want->data[i]) != 0) {
            test_fail(__FILE__, __LINE__, "%s[%zu]: data '%s', expected '%s'", name, i, got->data[i], want->data[i]);
        }
        json_decref(g);
        json_decref(w);
    }
}

static const struct stream_case {
    const char *name;
    xlate_dir dir;
    bool include_usage;
    err_code finish;
    long in_tokens, out_tokens;
} stream_cases[] = {
    { "stream_a2o_text", XLATE_ANTHROPIC_TO_OPENAI, true, ERR_OK, 30, 15 },
    { "stream_a2o_tools", XLATE_ANTHROPIC_TO_OPENAI, false, ERR_OK, 100, 40 },
    { "stream_a2o_cut", XLATE_ANTHROPIC_TO_OPENAI, true, ERR_UPSTREAM, 9, 1 },
    { "stream_a2o_error", XLATE_ANTHROPIC_TO_OPENAI, false, ERR_UPSTREAM, 9, 1 },
    { "stream_o2a_text", XLATE_OPENAI_TO_ANTHROPIC, false, ERR_OK, 30, 15 },
    { "stream_o2a_tools", XLATE_OPENAI_TO_ANTHROPIC, false, ERR_OK, 0, 0 },
    { "stream_o2a_cut", XLATE_OPENAI_TO_ANTHROPIC, false, ERR_UPSTREAM, 0, 0 },
    { "stream_o2a_error", XLATE_OPENAI_TO_ANTHROPIC, true, ERR_UPSTREAM, 0, 0 },
};

TEST(anthropic_golden_streams)
{
    static const size_t steps[] = { 0, 1, 7 };
    for (size_t i = 0; i < countof(stream_cases); i++) {
        const struct stream_case *c = &stream_cases[i];
        char path[256];
        size_t in_len, want_len;
        snprintf(path, sizeof path, "anthropic/%s.in.sse", c->name);
        char *in = test_read_data(path, &in_len);
        snprintf(path, sizeof path, "anthropic/%s.out.sse", c->name);
        char *want_text = test_read_data(path, &want_len);
        if (!in || !want_text) {
            free(in);
            free(want_text);
            continue;
        }
        ev_list want = { 0 };
        parse_sse(want_text, want_len, 0, &want);
        for (size_t s = 0; s < countof(steps); s++) {
            ev_list up = { 0 };
            parse_sse(in, in_len, steps[s], &up);
            xlate_stream *xs = xlate_stream_new(c->dir, "client-model", c->include_usage);
            buf out;
            buf_init(&out, 1 << 20);
            for (size_t k = 0; k < up.n; k++)
                xlate_stream_event(xs, sv_from(up.event[k]), sv_from(up.data[k]), &out);
            CHECK(xlate_stream_done(xs) == (c->finish == ERR_OK || strstr(c->name, "error") != NULL));
            err_code fe = xlate_stream_finish(xs, &out);
            if (fe != c->finish)
                test_fail(__FILE__, __LINE__, "%s: finish %s", c->name, err_name(fe));
            CHECK(xlate_stream_done(xs));
            /* finishing again adds nothing */
            size_t len = out.len;
            xlate_stream_finish(xs, &out);
            CHECK_INT(out.len, len);
            long in_tok = -1, out_tok = -1;
            xlate_stream_usage(xs, &in_tok, &out_tok);
            CHECK_INT(in_tok, c->in_tokens);
            CHECK_INT(out_tok, c->out_tokens);
            ev_list got = { 0 };
            parse_sse(out.p ? out.p : "", out.len, 0, &got);
            compare_events(c->name, &got, &want);
            ev_list_free(&got);
            ev_list_free(&up);
            buf_free(&out);
            xlate_stream_free(xs);
        }
        ev_list_free(&want);
        free(in);
        free(want_text);
    }
}

/* Feeds (event, data) pairs, returning the last result and the output. */
static err_code feed(xlate_stream *xs, buf *out, const char *const *pairs, size_t n)
{
    err_code e = ERR_OK;
    for (size_t i = 0; i + 1 < n; i += 2)
        e = xlate_stream_event(xs, sv_from(pairs[i]), sv_from(pairs[i + 1]), out);
    return e;
}

TEST(anthropic_stream_ids_and_names)
{
    /* A->O: the chunk id is the message id; an event without a name is
     * recognised by its data type; message_stop without message_delta
     * still ends the choice */
    xlate_stream *xs = xlate_stream_new(XLATE_ANTHROPIC_TO_OPENAI, "cm", false);
    buf out;
    buf_init(&out, 1 << 16);
    static const char *const a[] = {
        "", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_X\",\"usage\":{\"input_tokens\":3}}}",
        "", "{\"type\":\"message_stop\"}",
    };
    CHECK_INT(feed(xs, &out, a, countof(a)), ERR_OK);
    CHECK(xlate_stream_done(xs));
    CHECK(strstr(out.p, "\"id\":\"msg_X\"") != NULL);
    CHECK(strstr(out.p, "\"finish_reason\":\"stop\"") != NULL);
    CHECK(strstr(out.p, "data: [DONE]\n\n") != NULL);
    /* events after the end are ignored */
    size_t len = out.len;
    CHECK_INT(feed(xs, &out, a, 2), ERR_OK);
    CHECK_INT(out.len, len);
    CHECK_INT(xlate_stream_finish(xs, &out), ERR_OK);
    xlate_stream_free(xs);
    buf_free(&out);

    /* O->A: [DONE] straight away still gives a well-formed empty message */
    xs = xlate_stream_new(XLATE_OPENAI_TO_ANTHROPIC, "cm", false);
    buf_init(&out, 1 << 16);
    CHECK_INT(xlate_stream_event(xs, SV_NULL, SV("[DONE]"), &out), ERR_OK);
    CHECK(strstr(out.p, "event: message_start\n") == out.p);
    CHECK(strstr(out.p, "\"id\":\"msg_gateway\"") != NULL);
    CHECK(strstr(out.p, "event: message_delta\n") != NULL);
    CHECK(strstr(out.p, "event: message_stop\n") != NULL);
    CHECK(strstr(out.p, "content_block") == NULL);
    CHECK_INT(xlate_stream_finish(xs, &out), ERR_OK);
    xlate_stream_free(xs);
    buf_free(&out);
    xlate_stream_free(NULL);
}

TEST(anthropic_stream_refuses_garbage)
{
    static const struct { xlate_dir dir; const char *event, *data; } bad[] = {
        { XLATE_ANTHROPIC_TO_OPENAI, "content_block_delta", "not json" },
        { XLATE_ANTHROPIC_TO_OPENAI, "", "[1,2]" },
        { XLATE_ANTHROPIC_TO_OPENAI, "", "{\"no\":\"type\"}" },
        { XLATE_ANTHROPIC_TO_OPENAI, "", "[DONE]" },
        { XLATE_ANTHROPIC_TO_OPENAI, "content_block_delta",
          "{\"index\":5,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}" },
        { XLATE_ANTHROPIC_TO_OPENAI, "content_block_start",
          "{\"index\":\"x\",\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"n\"}}" },
        { XLATE_OPENAI_TO_ANTHROPIC, "", "{\"choices\":" },
        { XLATE_OPENAI_TO_ANTHROPIC, "", "\"str\"" },
        { XLATE_OPENAI_TO_ANTHROPIC, "", "" },
    };
    for (size_t i = 0; i < countof(bad); i++) {
        xlate_stream *xs = xlate_stream_new(bad[i].dir, "m", true);
        buf out;
        buf_init(&out, 1 << 16);
        err_code e = xlate_stream_event(xs, sv_from(bad[i].event), sv_from(bad[i].data), &out);
        if (e != ERR_UPSTREAM)
            test_fail(__FILE__, __LINE__, "case %zu: %s", i, err_name(e));
        CHECK(xlate_stream_done(xs));
        CHECK(out.len > 0 && strstr(out.p, "error") != NULL);
        CHECK(strstr(out.p, "[DONE]") == NULL);
        CHECK_INT(xlate_stream_finish(xs, &out), ERR_UPSTREAM);
        xlate_stream_free(xs);
        buf_free(&out);
    }
    /* a duplicate tool block index is refused too */
    xlate_stream *xs = xlate_stream_new(XLATE_ANTHROPIC_TO_OPENAI, "m", false);
    buf out;
    buf_init(&out, 1 << 16);
    const char *start = "{\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"n\"}}";
    CHECK_INT(xlate_stream_event(xs, SV("content_block_start"), sv_from(start), &out), ERR_OK);
    CHECK_INT(xlate_stream_event(xs, SV("content_block_start"), sv_from(start), &out), ERR_UPSTREAM);
    xlate_stream_free(xs);
    buf_free(&out);
}

TEST(anthropic_stream_tool_call_limit)
{
    xlate_stream *xs = xlate_stream_new(XLATE_OPENAI_TO_ANTHROPIC, "m", false);
    buf out;
    buf_init(&out, 1 << 22);
    err_code e = ERR_OK;
    int i;
    for (i = 0; i < 1000 && e == ERR_OK; i++) {
        char chunk[256];
        snprintf(chunk, sizeof chunk,
                 "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":%d,\"id\":\"c%d\",\"function\":"
                 "{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}", i, i);
        e = xlate_stream_event(xs, SV_NULL, sv_from(chunk), &out);
    }
    CHECK_INT(e, ERR_UPSTREAM);
    CHECK(i > 100 && i < 1000);
    CHECK(strstr(out.p, "too many tool calls") != NULL);
    xlate_stream_free(xs);
    buf_free(&out);
}

TEST(anthropic_stream_output_bound)
{
    /* out too small for the event: error back, out untouched */
    xlate_stream *xs = xlate_stream_new(XLATE_OPENAI_TO_ANTHROPIC, "m", false);
    buf out;
    buf_init(&out, 64);
    buf_append_str(&out, "prefix");
    err_code e = xlate_stream_event(xs, SV_NULL, SV("{\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}"), &out);
    CHECK_INT(e, ERR_TOOBIG);
    CHECK_STR(out.p, "prefix");
    CHECK(xlate_stream_done(xs));
    xlate_stream_free(xs);
    buf_free(&out);
}
