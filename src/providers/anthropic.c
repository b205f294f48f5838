/*
 * anthropic.c - OpenAI Chat Completions <-> Anthropic Messages translation.
 *
 * How it works: each direction is a walk over the input jansson tree that
 * builds a fresh output tree, checking every value's type before use (the
 * input is client- or upstream-controlled and may be anything). Requests are
 * validated as they are converted; the first thing that cannot be expressed
 * in the target format stops the walk with a 400 in the xlate_err. Responses
 * and errors never fail on odd input: missing or mistyped fields become
 * defaults. The stream translators are small state machines fed one upstream
 * SSE event at a time; they remember which content block is open and how
 * Anthropic block indexes and OpenAI tool_call indexes correspond, and write
 * client events with sse_write_event().
 *
 * The mapping tables, and the API reference pages they follow, are in
 * docs/internals/anthropic.md.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "http/sse.h"
#include "providers/anthropic.h"

#define TEXT_MAX ((size_t)256 << 20)  /* bound for joined text and data URLs */
#define DEFAULT_MAX_TOKENS 4096
#define STREAM_MAX_BLOCKS 128         /* tool calls per stream */
#define ERRMSG_MAX 1024               /* raw error bodies are cut to this */

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static bool fail(xlate_err *e, const char *param, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* Fills e (status 400) and returns false, so callers can `return fail(...)`. */
static bool fail(xlate_err *e, const char *param, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        e->status = 400;
        e->param = param;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
    }
    return false;
}

static const char *jstr(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The key is there and not null. */
static bool present(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return v && !json_is_null(v);
}

/* A token count: non-negative integer, anything else counts as 0. */
static long long jcount(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v))
        return 0;
    json_int_t x = json_integer_value(v);
    return x > 0 ? (long long)x : 0;
}

static long long sat_add(long long a, long long b)
{
    return a > LLONG_MAX - b ? LLONG_MAX : a + b;
}

static bool is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

/* Text blocks of either format are {"type":"text","text":"..."}. */
static json_t *text_block(const char *text)
{
    return json_pack("{s:s, s:s}", "type", "text", "text", text);
}

/* Appends the text of a content value to b: a string as is, an array of
 * {"type":"text"} parts joined by sep. Returns false (b unchanged past what
 * was appended) if content holds anything but text. */
static bool append_text_content(buf *b, json_t *content, const char *sep)
{
    if (json_is_string(content))
        return buf_append(b, json_string_value(content), json_string_length(content)) == ERR_OK;
    if (!json_is_array(content))
        return false;
    size_t i;
    json_t *part;
    bool first = true;
    json_array_foreach(content, i, part) {
        const char *type = jstr(part, "type");
        json_t *text = json_object_get(part, "text");
        if (!type || strcmp(type, "text") != 0 || !json_is_string(text))
            return false;
        if (!first && buf_append_str(b, sep))
            return false;
        if (buf_append(b, json_string_value(text), json_string_length(text)))
            return false;
        first = false;
    }
    return true;
}

/* Parses tool call arguments (a JSON string holding an object; blank = {}).
 * Returns a new object or NULL. An object given directly is copied. */
static json_t *parse_arguments(json_t *args)
{
    if (json_is_object(args))
        return json_deep_copy(args);
    if (!args || json_is_null(args))
        return json_object();
    if (!json_is_string(args))
        return NULL;
    const char *s = json_string_value(args);
    if (is_blank(s))
        return json_object();
    json_t *v = json_loadb(s, json_string_length(args), 0, NULL);
    if (!json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Serialises a tool input object back into an arguments string. */
static json_t *dump_arguments(json_t *input)
{
    if (!input || json_is_null(input))
        return json_string("{}");
    char *s = json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY);
    json_t *r = json_string(s ? s : "{}");
    free(s);
    return r;
}

/* ------------------------------------------------------------------ */
/* Stop reasons and usage                                              */
/* ------------------------------------------------------------------ */

/* Anthropic stop_reason -> OpenAI finish_reason. */
static const char *finish_from_stop(const char *stop)
{
    static const struct { const char *stop, *finish; } map[] = {
        { "end_turn", "stop" },
        { "stop_sequence", "stop" },
        { "pause_turn", "stop" },
        { "max_tokens", "length" },
        { "model_context_window_exceeded", "length" },
        { "tool_use", "tool_calls" },
        { "refusal", "content_filter" },
    };
    for (size_t i = 0; stop && i < countof(map); i++)
        if (strcmp(stop, map[i].stop) == 0)
            return map[i].finish;
    return "stop";
}

/* OpenAI finish_reason -> Anthropic stop_reason. */
static const char *stop_from_finish(const char *finish)
{
    static const struct { const char *finish, *stop; } map[] = {
        { "stop", "end_turn" },
        { "length", "max_tokens" },
        { "tool_calls", "tool_use" },
        { "function_call", "tool_use" },
        { "content_filter", "refusal" },
    };
    for (size_t i = 0; finish && i < countof(map); i++)
        if (strcmp(finish, map[i].finish) == 0)
            return map[i].stop;
    return "end_turn";
}

typedef struct usage {
    long long input, output, cache_read, cache_create;
} usage;

/* Reads Anthropic usage fields present in u (absent ones keep their value). */
static void usage_from_anthropic(usage *us, const json_t *u)
{
    if (!json_is_object(u))
        return;
    if (present(u, "input_tokens"))
        us->input = jcount(u, "input_tokens");
    if (present(u, "output_tokens"))
        us->output = jcount(u, "output_tokens");
    if (present(u, "cache_read_input_tokens"))
        us->cache_read = jcount(u, "cache_read_input_tokens");
    if (present(u, "cache_creation_input_tokens"))
        us->cache_create = jcount(u, "cache_creation_input_tokens");
}

/* Reads an OpenAI usage object: input excludes the cached part. */
static void usage_from_openai(usage *us, const json_t *u)
{
    if (!json_is_object(u))
        return;
    long long prompt = jcount(u, "prompt_tokens");
    long long cached = jcount(json_object_get(u, "prompt_tokens_details"), "cached_tokens");
    if (cached > prompt)
        cached = prompt;
    us->input = prompt - cached;
    us->cache_read = cached;
    us->cache_create = 0;
    us->output = jcount(u, "completion_tokens");
}

static long long usage_prompt(const usage *us)
{
    return sat_add(sat_add(us->input, us->cache_read), us->cache_create);
}

static json_t *usage_to_openai(const usage *us)
{
    long long prompt = usage_prompt(us);
    return json_pack("{s:I, s:I, s:I, s:{s:I}}",
                     "prompt_tokens", (json_int_t)prompt,
                     "completion_tokens", (json_int_t)us->output,
                     "total_tokens", (json_int_t)sat_add(prompt, us->output),
                     "prompt_tokens_details", "cached_tokens", (json_int_t)us->cache_read);
}

static json_t *usage_to_anthropic(const usage *us)
{
    return json_pack("{s:I, s:I, s:I, s:I}",
                     "input_tokens", (json_int_t)us->input,
                     "cache_creation_input_tokens", (json_int_t)us->cache_create,
                     "cache_read_input_tokens", (json_int_t)us->cache_read,
                     "output_tokens", (json_int_t)us->output);
}

/* ------------------------------------------------------------------ */
/* OpenAI request -> Anthropic request                                 */
/* ------------------------------------------------------------------ */

/* Adds block to the content of the last message if it has the same role,
 * else starts a new message; tool_result blocks go before any other block of
 * their user turn, as Anthropic requires. */
static void push_block(json_t *msgs, const char *role, json_t *block)
{
    size_t n = json_array_size(msgs);
    json_t *last = n ? json_array_get(msgs, n - 1) : NULL;
    json_t *content = NULL;
    if (last && strcmp(jstr(last, "role"), role) == 0) {
        content = json_object_get(last, "content");
    } else {
        content = json_array();
        json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", role, "content", content));
    }
    const char *type = jstr(block, "type");
    if (type && strcmp(type, "tool_result") == 0) {
        size_t at = 0;
        while (at < json_array_size(content)) {
            const char *t = jstr(json_array_get(content, at), "type");
            if (!t || strcmp(t, "tool_result") != 0)
                break;
            at++;
        }
        json_array_insert_new(content, at, block);
    } else {
        json_array_append_new(content, block);
    }
}

/* OpenAI image_url part -> Anthropic image block (base64 or url source). */
static json_t *image_block(json_t *part, size_t mi, xlate_err *e)
{
    json_t *iu = json_object_get(part, "image_url");
    const char *url = json_is_string(iu) ? json_string_value(iu) : jstr(iu, "url");
    if (!url) {
        fail(e, "messages", "messages[%zu]: image_url part without a url", mi);
        return NULL;
    }
    if (strncasecmp(url, "data:", 5) == 0) {
        /* data:<media type>[;param=value]*;base64,<data> */
        const char *meta = url + 5;
        const char *comma = strchr(meta, ',');
        const char *semi = comma ? memchr(meta, ';', (size_t)(comma - meta)) : NULL;
        if (!comma || !semi || semi == meta || comma - meta < 7 ||
            strncasecmp(comma - 7, ";base64", 7) != 0 || comma[1] == '\0') {
            fail(e, "messages", "messages[%zu]: image data URLs must be data:<type>;base64,<data>", mi);
            return NULL;
        }
        json_t *src = json_pack("{s:s, s:o, s:s}", "type", "base64",
                                "media_type", json_stringn(meta, (size_t)(semi - meta)),
                                "data", comma + 1);
        return json_pack("{s:s, s:o}", "type", "image", "source", src);
    }
    if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0)
        return json_pack("{s:s, s:{s:s, s:s}}", "type", "image", "source", "type", "url", "url", url);
    fail(e, "messages", "messages[%zu]: image url must be http(s) or a data URL", mi);
    return NULL;
}

/* User message content -> blocks pushed into msgs. */
static bool user_content(json_t *msgs, json_t *content, size_t mi, xlate_err *e)
{
    if (json_is_string(content)) {
        if (json_string_length(content))
            push_block(msgs, "user", text_block(json_string_value(content)));
        return true;
    }
    if (!json_is_array(content))
        return fail(e, "messages", "messages[%zu]: content must be a string or an array of parts", mi);
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        const char *type = jstr(part, "type");
        if (!type)
            return fail(e, "messages", "messages[%zu].content[%zu]: part without a type", mi, i);
        if (strcmp(type, "text") == 0) {
            const char *text = jstr(part, "text");
            if (!text)
                return fail(e, "messages", "messages[%zu].content[%zu]: text part without text", mi, i);
            if (*text)
                push_block(msgs, "user", text_block(text));
        } else if (strcmp(type, "image_url") == 0) {
            json_t *b = image_block(part, mi, e);
            if (!b)
                return false;
            push_block(msgs, "user", b);
        } else {
            return fail(e, "messages", "messages[%zu].content[%zu]: part type '%.40s' is not supported by this provider",
                        mi, i, type);
        }
    }
    return true;
}

/* Assistant message: text (and refusal) parts, then tool_calls as tool_use. */
static bool assistant_content(json_t *msgs, json_t *m, size_t mi, xlate_err *e)
{
    json_t *content = json_object_get(m, "content");
    if (json_is_string(content)) {
        if (json_string_length(content))
            push_block(msgs, "assistant", text_block(json_string_value(content)));
    } else if (json_is_array(content)) {
        size_t i;
        json_t *part;
        json_array_foreach(content, i, part) {
            const char *type = jstr(part, "type");
            const char *text = NULL;
            if (type && strcmp(type, "text") == 0)
                text = jstr(part, "text");
            else if (type && strcmp(type, "refusal") == 0)
                text = jstr(part, "refusal");
            if (!text)
                return fail(e, "messages", "messages[%zu].content[%zu]: assistant parts must be text or refusal", mi, i);
            if (*text)
                push_block(msgs, "assistant", text_block(text));
        }
    } else if (content && !json_is_null(content)) {
        return fail(e, "messages", "messages[%zu]: content must be a string, an array or null", mi);
    }
    json_t *calls = json_object_get(m, "tool_calls");
    if (!calls || json_is_null(calls))
        return true;
    if (!json_is_array(calls))
        return fail(e, "messages", "messages[%zu]: tool_calls must be an array", mi);
    size_t i;
    json_t *tc;
    json_array_foreach(calls, i, tc) {
        json_t *fn = json_object_get(tc, "function");
        const char *id = jstr(tc, "id"), *name = jstr(fn, "name");
        const char *type = jstr(tc, "type");
        if (type && strcmp(type, "function") != 0)
            return fail(e, "messages", "messages[%zu].tool_calls[%zu]: only function tool calls are supported", mi, i);
        if (!id || !name)
            return fail(e, "messages", "messages[%zu].tool_calls[%zu]: id and function.name are required", mi, i);
        json_t *input = parse_arguments(json_object_get(fn, "arguments"));
        if (!input)
            return fail(e, "messages", "messages[%zu].tool_calls[%zu]: function.arguments is not a JSON object", mi, i);
        push_block(msgs, "assistant", json_pack("{s:s, s:s, s:s, s:o}", "type", "tool_use",
                                                "id", id, "name", name, "input", input));
    }
    return true;
}

/* role "tool" -> a tool_result block in a user turn. */
static bool tool_message(json_t *msgs, json_t *m, size_t mi, xlate_err *e)
{
    const char *id = jstr(m, "tool_call_id");
    if (!id)
        return fail(e, "messages", "messages[%zu]: tool message without tool_call_id", mi);
    json_t *block = json_pack("{s:s, s:s}", "type", "tool_result", "tool_use_id", id);
    json_t *content = json_object_get(m, "content");
    if (json_is_string(content)) {
        if (json_string_length(content))
            json_object_set(block, "content", content);
    } else if (json_is_array(content)) {
        json_t *blocks = json_array();
        size_t i;
        json_t *part;
        json_array_foreach(content, i, part) {
            const char *text = jstr(part, "text");
            const char *type = jstr(part, "type");
            if (!type || strcmp(type, "text") != 0 || !text) {
                json_decref(blocks);
                json_decref(block);
                return fail(e, "messages", "messages[%zu]: tool message content must be text", mi);
            }
            if (*text)
                json_array_append_new(blocks, text_block(text));
        }
        json_object_set_new(block, "content", blocks);
    } else if (content && !json_is_null(content)) {
        json_decref(block);
        return fail(e, "messages", "messages[%zu]: tool message content must be text", mi);
    }
    push_block(msgs, "user", block);
    return true;
}

/* messages[] -> top-level system text and alternating user/assistant turns. */
static bool convert_chat_messages(json_t *out, json_t *messages, xlate_err *e)
{
    if (!json_is_array(messages) || json_array_size(messages) == 0)
        return fail(e, "messages", "messages must be a non-empty array");
    json_t *msgs = json_array();
    buf sys;
    buf_init(&sys, TEXT_MAX);
    bool ok = true;
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        const char *role = jstr(m, "role");
        if (!json_is_object(m) || !role) {
            ok = fail(e, "messages", "messages[%zu]: must be an object with a role", i);
        } else if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            size_t before = sys.len;
            if (sys.len && buf_append_str(&sys, "\n\n"))
                ok = fail(e, "messages", "system prompt too large");
            else if (!append_text_content(&sys, json_object_get(m, "content"), "\n"))
                ok = fail(e, "messages", "messages[%zu]: system content must be text", i);
            else if (sys.len == before + 2 && before)
                sys.len = before; /* an empty system message adds nothing */
        } else if (strcmp(role, "user") == 0) {
            ok = user_content(msgs, json_object_get(m, "content"), i, e);
        } else if (strcmp(role, "assistant") == 0) {
            ok = assistant_content(msgs, m, i, e);
        } else if (strcmp(role, "tool") == 0) {
            ok = tool_message(msgs, m, i, e);
        } else {
            ok = fail(e, "messages", "messages[%zu]: role '%.40s' is not supported by this provider", i, role);
        }
        if (!ok)
            break;
    }
    if (ok && json_array_size(msgs) == 0)
        ok = fail(e, "messages", "messages must contain at least one non-empty user or assistant message");
    if (ok) {
        if (sys.len)
            json_object_set_new(out, "system", json_stringn(sys.p, sys.len));
        json_object_set(out, "messages", msgs);
    }
    json_decref(msgs);
    buf_free(&sys);
    return ok;
}

/* tools[] (function tools) -> Anthropic tools[]. */
static bool convert_chat_tools(json_t *out, json_t *tools, xlate_err *e)
{
    if (!tools || json_is_null(tools))
        return true;
    if (!json_is_array(tools))
        return fail(e, "tools", "tools must be an array");
    if (json_array_size(tools) == 0)
        return true;
    json_t *arr = json_array();
    json_object_set_new(out, "tools", arr);
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        json_t *fn = json_object_get(t, "function");
        const char *type = jstr(t, "type"), *name = jstr(fn, "name");
        if (!type || strcmp(type, "function") != 0)
            return fail(e, "tools", "tools[%zu]: only function tools are supported by this provider", i);
        if (!name)
            return fail(e, "tools", "tools[%zu]: function.name is required", i);
        json_t *params = json_object_get(fn, "parameters");
        if (params && !json_is_null(params) && !json_is_object(params))
            return fail(e, "tools", "tools[%zu]: function.parameters must be an object", i);
        json_t *tool = json_pack("{s:s}", "name", name);
        if (jstr(fn, "description"))
            json_object_set(tool, "description", json_object_get(fn, "description"));
        json_object_set_new(tool, "input_schema", json_is_object(params) ? json_deep_copy(params)
                                                  : json_pack("{s:s, s:{}}", "type", "object", "properties"));
        json_array_append_new(arr, tool);
    }
    return true;
}

/* tool_choice and parallel_tool_calls -> Anthropic tool_choice. Dropped when
 * there are no tools (Anthropic refuses a tool_choice without tools). */
static bool convert_chat_tool_choice(json_t *out, json_t *chat, xlate_err *e)
{
    json_t *tc = json_object_get(chat, "tool_choice");
    json_t *ptc = json_object_get(chat, "parallel_tool_calls");
    json_t *choice = NULL;
    if (ptc && !json_is_null(ptc) && !json_is_boolean(ptc))
        return fail(e, "parallel_tool_calls", "parallel_tool_calls must be a boolean");
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        const char *type = strcmp(s, "auto") == 0 ? "auto"
                         : strcmp(s, "required") == 0 ? "any"
                         : strcmp(s, "none") == 0 ? "none" : NULL;
        if (!type)
            return fail(e, "tool_choice", "tool_choice '%.40s' is not supported", s);
        choice = json_pack("{s:s}", "type", type);
    } else if (json_is_object(tc)) {
        const char *type = jstr(tc, "type");
        const char *name = jstr(json_object_get(tc, "function"), "name");
        if (!type || strcmp(type, "function") != 0 || !name)
            return fail(e, "tool_choice", "tool_choice must name a function");
        choice = json_pack("{s:s, s:s}", "type", "tool", "name", name);
    } else if (tc && !json_is_null(tc)) {
        return fail(e, "tool_choice", "tool_choice must be a string or an object");
    }
    if (json_is_false(ptc)) {
        if (!choice)
            choice = json_pack("{s:s}", "type", "auto");
        const char *type = jstr(choice, "type");
        if (type && strcmp(type, "none") != 0)
            json_object_set_new(choice, "disable_parallel_tool_use", json_true());
    }
    if (choice && json_object_get(out, "tools"))
        json_object_set(out, "tool_choice", choice);
    json_decref(choice);
    return true;
}

/* Scalar parameters: max tokens, sampling, stop, stream, user/metadata and
 * the Anthropic-only pass-throughs. */
static bool convert_chat_params(json_t *out, json_t *chat, xlate_err *e)
{
    json_t *mt = json_object_get(chat, "max_completion_tokens");
    const char *mt_name = "max_completion_tokens";
    if (!mt || json_is_null(mt)) {
        mt = json_object_get(chat, "max_tokens");
        mt_name = "max_tokens";
    }
    if (mt && !json_is_null(mt)) {
        if (!json_is_integer(mt) || json_integer_value(mt) <= 0)
            return fail(e, mt_name, "%s must be a positive integer", mt_name);
        json_object_set(out, "max_tokens", mt);
    } else {
        json_object_set_new(out, "max_tokens", json_integer(DEFAULT_MAX_TOKENS));
    }
    static const char *const numbers[] = { "temperature", "top_p" };
    for (size_t i = 0; i < countof(numbers); i++) {
        json_t *v = json_object_get(chat, numbers[i]);
        if (!v || json_is_null(v))
            continue;
        if (!json_is_number(v))
            return fail(e, numbers[i], "%s must be a number", numbers[i]);
        json_object_set(out, numbers[i], v);
    }
    json_t *stop = json_object_get(chat, "stop");
    if (json_is_string(stop)) {
        json_object_set_new(out, "stop_sequences", json_pack("[O]", stop));
    } else if (json_is_array(stop)) {
        size_t i;
        json_t *s;
        json_array_foreach(stop, i, s)
            if (!json_is_string(s))
                return fail(e, "stop", "stop must be a string or an array of strings");
        if (json_array_size(stop))
            json_object_set_new(out, "stop_sequences", json_deep_copy(stop));
    } else if (stop && !json_is_null(stop)) {
        return fail(e, "stop", "stop must be a string or an array of strings");
    }
    json_t *stream = json_object_get(chat, "stream");
    if (json_is_boolean(stream))
        json_object_set(out, "stream", stream);
    else if (stream && !json_is_null(stream))
        return fail(e, "stream", "stream must be a boolean");

    /* metadata: only user_id is forwarded (OpenAI's own metadata is a free
     * map that Anthropic would refuse); "user" fills it when absent. */
    const char *uid = jstr(json_object_get(chat, "metadata"), "user_id");
    if (!uid)
        uid = jstr(chat, "user");
    if (uid)
        json_object_set_new(out, "metadata", json_pack("{s:s}", "user_id", uid));
    static const char *const passthrough[] = { "top_k", "thinking" };
    for (size_t i = 0; i < countof(passthrough); i++)
        if (present(chat, passthrough[i]))
            json_object_set_new(out, passthrough[i], json_deep_copy(json_object_get(chat, passthrough[i])));
    return true;
}

json_t *anthropic_from_chat_request(json_t *chat, const char *upstream_model, xlate_err *e)
{
    if (!json_is_object(chat)) {
        fail(e, NULL, "request body must be a JSON object");
        return NULL;
    }
    const char *model = upstream_model ? upstream_model : jstr(chat, "model");
    if (!model) {
        fail(e, "model", "model is required");
        return NULL;
    }
    json_t *n = json_object_get(chat, "n");
    if (n && !json_is_null(n) && (!json_is_integer(n) || json_integer_value(n) != 1)) {
        fail(e, "n", "n other than 1 is not supported by this provider");
        return NULL;
    }
    json_t *rf = json_object_get(chat, "response_format");
    if (rf && !json_is_null(rf)) {
        const char *t = jstr(rf, "type");
        if (!t || strcmp(t, "text") != 0) {
            fail(e, "response_format", "response_format '%.40s' is not supported by this provider",
                 t ? t : "?");
            return NULL;
        }
    }
    json_t *out = json_pack("{s:s}", "model", model);
    if (!out) {
        fail(e, NULL, "out of memory");
        return NULL;
    }
    if (!convert_chat_messages(out, json_object_get(chat, "messages"), e) ||
        !convert_chat_params(out, chat, e) ||
        !convert_chat_tools(out, json_object_get(chat, "tools"), e) ||
        !convert_chat_tool_choice(out, chat, e)) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ------------------------------------------------------------------ */
/* Anthropic request -> OpenAI request                                 */
/* ------------------------------------------------------------------ */

/* Anthropic image block -> OpenAI image_url part. */
static json_t *image_part(json_t *block, size_t mi, xlate_err *e)
{
    json_t *src = json_object_get(block, "source");
    const char *type = jstr(src, "type");
    if (type && strcmp(type, "url") == 0 && jstr(src, "url"))
        return json_pack("{s:s, s:{s:s}}", "type", "image_url", "image_url", "url", jstr(src, "url"));
    const char *mt = jstr(src, "media_type"), *data = jstr(src, "data");
    if (!type || strcmp(type, "base64") != 0 || !mt || !data) {
        fail(e, "messages", "messages[%zu]: image source must be base64 or url", mi);
        return NULL;
    }
    buf url;
    buf_init(&url, TEXT_MAX);
    json_t *r = NULL;
    if (buf_printf(&url, "data:%s;base64,", mt) == ERR_OK && buf_append_str(&url, data) == ERR_OK)
        r = json_pack("{s:s, s:{s:s%}}", "type", "image_url", "image_url", "url", url.p, url.len);
    else
        fail(e, "messages", "messages[%zu]: image too large", mi);
    buf_free(&url);
    return r;
}

/* tool_result block -> {"role":"tool"} message. */
static json_t *tool_result_message(json_t *block, size_t mi, xlate_err *e)
{
    const char *id = jstr(block, "tool_use_id");
    if (!id) {
        fail(e, "messages", "messages[%zu]: tool_result without tool_use_id", mi);
        return NULL;
    }
    json_t *content = json_object_get(block, "content");
    json_t *c = NULL;
    if (json_is_string(content)) {
        c = json_incref(content);
    } else if (!content || json_is_null(content)) {
        c = json_string("");
    } else if (json_is_array(content)) {
        c = json_array();
        size_t i;
        json_t *b;
        json_array_foreach(content, i, b) {
            const char *type = jstr(b, "type"), *text = jstr(b, "text");
            if (!type || strcmp(type, "text") != 0 || !text) {
                json_decref(c);
                fail(e, "messages", "messages[%zu]: tool_result content other than text is not supported", mi);
                return NULL;
            }
            json_array_append_new(c, text_block(text));
        }
        if (json_array_size(c) == 1) { /* one text part reads better as a string */
            json_t *s = json_incref(json_object_get(json_array_get(c, 0), "text"));
            json_decref(c);
            c = s;
        }
    } else {
        fail(e, "messages", "messages[%zu]: tool_result content must be a string or an array", mi);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:o}", "role", "tool", "tool_call_id", id, "content", c);
}

/* Anthropic user turn -> tool messages (first) and one user message. */
static bool user_turn(json_t *out, json_t *content, size_t mi, xlate_err *e)
{
    if (json_is_string(content)) {
        json_array_append_new(out, json_pack("{s:s, s:O}", "role", "user", "content", content));
        return true;
    }
    if (!json_is_array(content))
        return fail(e, "messages", "messages[%zu]: content must be a string or an array of blocks", mi);
    json_t *parts = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        const char *type = jstr(b, "type");
        json_t *x = NULL;
        if (type && strcmp(type, "text") == 0 && jstr(b, "text")) {
            json_array_append_new(parts, text_block(jstr(b, "text")));
            continue;
        }
        if (type && strcmp(type, "image") == 0)
            x = image_part(b, mi, e);
        else if (type && strcmp(type, "tool_result") == 0)
            x = tool_result_message(b, mi, e);
        else
            fail(e, "messages", "messages[%zu].content[%zu]: block type '%.40s' is not supported by this provider",
                 mi, i, type ? type : "?");
        if (!x) {
            json_decref(parts);
            return false;
        }
        if (strcmp(type, "image") == 0)
            json_array_append_new(parts, x);
        else
            json_array_append_new(out, x);
    }
    if (json_array_size(parts) == 1 && strcmp(jstr(json_array_get(parts, 0), "type"), "text") == 0)
        json_array_append_new(out, json_pack("{s:s, s:O}", "role", "user", "content",
                                             json_object_get(json_array_get(parts, 0), "text")));
    else if (json_array_size(parts))
        json_array_append_new(out, json_pack("{s:s, s:O}", "role", "user", "content", parts));
    json_decref(parts);
    return true;
}

/* Anthropic assistant turn -> assistant message with content/tool_calls. */
static bool assistant_turn(json_t *out, json_t *content, size_t mi, xlate_err *e)
{
    if (json_is_string(content)) {
        json_array_append_new(out, json_pack("{s:s, s:O}", "role", "assistant", "content", content));
        return true;
    }
    if (!json_is_array(content))
        return fail(e, "messages", "messages[%zu]: content must be a string or an array of blocks", mi);
    buf text;
    buf_init(&text, TEXT_MAX);
    json_t *calls = json_array();
    bool ok = true, any_text = false;
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        const char *type = jstr(b, "type");
        if (type && strcmp(type, "text") == 0 && jstr(b, "text")) {
            any_text = true;
            if (buf_append_str(&text, jstr(b, "text")))
                ok = fail(e, "messages", "messages[%zu]: text too large", mi);
        } else if (type && strcmp(type, "tool_use") == 0 && jstr(b, "id") && jstr(b, "name")) {
            json_t *input = json_object_get(b, "input");
            if (input && !json_is_object(input)) {
                ok = fail(e, "messages", "messages[%zu].content[%zu]: tool_use input must be an object", mi, i);
            } else {
                json_array_append_new(calls, json_pack("{s:s, s:s, s:{s:s, s:o}}", "id", jstr(b, "id"),
                                                       "type", "function", "function", "name", jstr(b, "name"),
                                                       "arguments", dump_arguments(input)));
            }
        } else if (type && (strcmp(type, "thinking") == 0 || strcmp(type, "redacted_thinking") == 0)) {
            /* reasoning of earlier turns has no Chat Completions form */
        } else {
            ok = fail(e, "messages", "messages[%zu].content[%zu]: block type '%.40s' is not supported by this provider",
                      mi, i, type ? type : "?");
        }
        if (!ok)
            break;
    }
    if (ok) {
        json_t *m = json_pack("{s:s}", "role", "assistant");
        if (any_text || json_array_size(calls) == 0)
            json_object_set_new(m, "content", json_stringn(text.p ? text.p : "", text.len));
        else
            json_object_set_new(m, "content", json_null());
        if (json_array_size(calls))
            json_object_set(m, "tool_calls", calls);
        json_array_append_new(out, m);
    }
    json_decref(calls);
    buf_free(&text);
    return ok;
}

static bool convert_anthropic_tools(json_t *out, json_t *req, xlate_err *e)
{
    json_t *tools = json_object_get(req, "tools");
    if (tools && !json_is_null(tools)) {
        if (!json_is_array(tools))
            return fail(e, "tools", "tools must be an array");
        json_t *arr = json_array();
        json_object_set_new(out, "tools", arr);
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t) {
            const char *type = jstr(t, "type"), *name = jstr(t, "name");
            if (type && strcmp(type, "custom") != 0)
                return fail(e, "tools", "tools[%zu]: server tool '%.40s' is not supported by this provider", i, type);
            if (!name)
                return fail(e, "tools", "tools[%zu]: name is required", i);
            json_t *schema = json_object_get(t, "input_schema");
            json_t *fn = json_pack("{s:s}", "name", name);
            if (jstr(t, "description"))
                json_object_set(fn, "description", json_object_get(t, "description"));
            json_object_set_new(fn, "parameters", json_is_object(schema) ? json_deep_copy(schema)
                                                  : json_pack("{s:s, s:{}}", "type", "object", "properties"));
            json_array_append_new(arr, json_pack("{s:s, s:o}", "type", "function", "function", fn));
        }
        if (json_array_size(arr) == 0)
            json_object_del(out, "tools");
    }
    json_t *tc = json_object_get(req, "tool_choice");
    if (!tc || json_is_null(tc))
        return true;
    const char *type = jstr(tc, "type");
    json_t *choice = NULL;
    if (type && strcmp(type, "auto") == 0)
        choice = json_string("auto");
    else if (type && strcmp(type, "any") == 0)
        choice = json_string("required");
    else if (type && strcmp(type, "none") == 0)
        choice = json_string("none");
    else if (type && strcmp(type, "tool") == 0 && jstr(tc, "name"))
        choice = json_pack("{s:s, s:{s:s}}", "type", "function", "function", "name", jstr(tc, "name"));
    else
        return fail(e, "tool_choice", "tool_choice must be auto, any, none or tool with a name");
    if (json_object_get(out, "tools"))
        json_object_set(out, "tool_choice", choice);
    json_decref(choice);
    if (json_is_true(json_object_get(tc, "disable_parallel_tool_use")) && json_object_get(out, "tools"))
        json_object_set_new(out, "parallel_tool_calls", json_false());
    return true;
}

json_t *anthropic_to_chat_request(json_t *req, xlate_err *e)
{
    if (!json_is_object(req)) {
        fail(e, NULL, "request body must be a JSON object");
        return NULL;
    }
    const char *model = jstr(req, "model");
    json_t *mt = json_object_get(req, "max_tokens");
    json_t *messages = json_object_get(req, "messages");
    if (!model) {
        fail(e, "model", "model: field required");
        return NULL;
    }
    if (!json_is_integer(mt) || json_integer_value(mt) <= 0) {
        fail(e, "max_tokens", "max_tokens: a positive integer is required");
        return NULL;
    }
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        fail(e, "messages", "messages: a non-empty array is required");
        return NULL;
    }
    json_t *out = json_pack("{s:s, s:O}", "model", model, "max_tokens", mt);
    json_t *msgs = json_array();
    if (!out || !msgs) {
        json_decref(out);
        json_decref(msgs);
        fail(e, NULL, "out of memory");
        return NULL;
    }
    json_object_set_new(out, "messages", msgs);

    json_t *system = json_object_get(req, "system");
    if (system && !json_is_null(system)) {
        buf sys;
        buf_init(&sys, TEXT_MAX);
        bool ok = append_text_content(&sys, system, "\n\n");
        if (ok && sys.len)
            json_array_append_new(msgs, json_pack("{s:s, s:s%}", "role", "system", "content", sys.p, sys.len));
        buf_free(&sys);
        if (!ok) {
            fail(e, "system", "system must be a string or an array of text blocks");
            goto err;
        }
    }
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        const char *role = jstr(m, "role");
        json_t *content = json_object_get(m, "content");
        bool ok;
        if (role && strcmp(role, "user") == 0)
            ok = user_turn(msgs, content, i, e);
        else if (role && strcmp(role, "assistant") == 0)
            ok = assistant_turn(msgs, content, i, e);
        else
            ok = fail(e, "messages", "messages[%zu]: role must be user or assistant", i);
        if (!ok)
            goto err;
    }

    static const char *const numbers[] = { "temperature", "top_p" };
    for (size_t k = 0; k < countof(numbers); k++) {
        json_t *v = json_object_get(req, numbers[k]);
        if (json_is_number(v))
            json_object_set(out, numbers[k], v);
        else if (v && !json_is_null(v)) {
            fail(e, numbers[k], "%s must be a number", numbers[k]);
            goto err;
        }
    }
    json_t *stop = json_object_get(req, "stop_sequences");
    if (json_is_array(stop)) {
        json_t *s;
        json_array_foreach(stop, i, s)
            if (!json_is_string(s)) {
                fail(e, "stop_sequences", "stop_sequences must be an array of strings");
                goto err;
            }
        if (json_array_size(stop))
            json_object_set_new(out, "stop", json_deep_copy(stop));
    } else if (stop && !json_is_null(stop)) {
        fail(e, "stop_sequences", "stop_sequences must be an array of strings");
        goto err;
    }
    if (json_is_true(json_object_get(req, "stream"))) {
        json_object_set_new(out, "stream", json_true());
        json_object_set_new(out, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    const char *uid = jstr(json_object_get(req, "metadata"), "user_id");
    if (uid)
        json_object_set_new(out, "user", json_string(uid));
    if (!convert_anthropic_tools(out, req, e))
        goto err;
    return out;
err:
    json_decref(out);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Responses                                                           */
/* ------------------------------------------------------------------ */

json_t *anthropic_to_chat_response(json_t *message, const char *model)
{
    json_t *content = json_object_get(message, "content");
    if (!json_is_object(message) || !json_is_array(content))
        return NULL;
    buf text;
    buf_init(&text, TEXT_MAX);
    json_t *calls = json_array();
    bool any_text = false;
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        const char *type = jstr(b, "type");
        if (!type)
            continue;
        if (strcmp(type, "text") == 0 && jstr(b, "text")) {
            any_text = true;
            buf_append_str(&text, jstr(b, "text")); /* bounded; a cut answer beats none */
        } else if (strcmp(type, "tool_use") == 0 && jstr(b, "id") && jstr(b, "name")) {
            json_array_append_new(calls, json_pack("{s:s, s:s, s:{s:s, s:o}}", "id", jstr(b, "id"),
                                                   "type", "function", "function", "name", jstr(b, "name"),
                                                   "arguments", dump_arguments(json_object_get(b, "input"))));
        }
    }
    json_t *msg = json_pack("{s:s, s:n}", "role", "assistant", "refusal");
    if (any_text || json_array_size(calls) == 0)
        json_object_set_new(msg, "content", json_stringn(text.p ? text.p : "", text.len));
    else
        json_object_set_new(msg, "content", json_null());
    if (json_array_size(calls))
        json_object_set(msg, "tool_calls", calls);
    json_decref(calls);
    buf_free(&text);

    usage us = { 0 };
    usage_from_anthropic(&us, json_object_get(message, "usage"));
    const char *id = jstr(message, "id");
    const char *m = model ? model : jstr(message, "model");
    return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:s}], s:o}",
                     "id", id ? id : "chatcmpl-gateway",
                     "object", "chat.completion",
                     "created", (json_int_t)time(NULL),
                     "model", m ? m : "",
                     "choices", "index", 0, "message", msg, "logprobs",
                     "finish_reason", finish_from_stop(jstr(message, "stop_reason")),
                     "usage", usage_to_openai(&us));
}

json_t *anthropic_from_chat_response(json_t *completion, const char *model)
{
    json_t *choice = json_array_get(json_object_get(completion, "choices"), 0);
    if (!json_is_object(completion) || !json_is_object(choice))
        return NULL;
    json_t *msg = json_object_get(choice, "message");
    json_t *blocks = json_array();
    json_t *content = json_object_get(msg, "content");
    buf text;
    buf_init(&text, TEXT_MAX);
    if (json_is_string(content)) {
        buf_append(&text, json_string_value(content), json_string_length(content));
    } else if (json_is_array(content)) {
        size_t i;
        json_t *part;
        json_array_foreach(content, i, part)
            if (jstr(part, "text"))
                buf_append_str(&text, jstr(part, "text"));
    }
    if (text.len == 0 && jstr(msg, "refusal"))
        buf_append_str(&text, jstr(msg, "refusal"));
    if (text.len)
        json_array_append_new(blocks, json_pack("{s:s, s:s%}", "type", "text", "text", text.p, text.len));
    buf_free(&text);

    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(msg, "tool_calls"), i, tc) {
        json_t *fn = json_object_get(tc, "function");
        const char *id = jstr(tc, "id"), *name = jstr(fn, "name");
        if (!id || !name)
            continue;
        /* a model that produced invalid JSON arguments still made the call:
         * Anthropic needs an object, so it gets an empty one */
        json_t *input = parse_arguments(json_object_get(fn, "arguments"));
        json_array_append_new(blocks, json_pack("{s:s, s:s, s:s, s:o}", "type", "tool_use", "id", id,
                                                "name", name, "input", input ? input : json_object()));
    }
    usage us = { 0 };
    usage_from_openai(&us, json_object_get(completion, "usage"));
    const char *id = jstr(completion, "id");
    const char *m = model ? model : jstr(completion, "model");
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:n, s:o}",
                     "id", id ? id : "msg_gateway",
                     "type", "message",
                     "role", "assistant",
                     "model", m ? m : "",
                     "content", blocks,
                     "stop_reason", stop_from_finish(jstr(choice, "finish_reason")),
                     "stop_sequence",
                     "usage", usage_to_anthropic(&us));
}

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

/* One row per Anthropic error type: its HTTP status and the OpenAI type and
 * code used for it. Reading the table the other way maps OpenAI types. */
static const struct err_row {
    const char *anthropic;
    int status;
    const char *openai;
    const char *code; /* OpenAI "code", NULL = null */
} err_rows[] = {
    { "invalid_request_error", 400, "invalid_request_error", NULL },
    { "authentication_error", 401, "authentication_error", "invalid_api_key" },
    { "billing_error", 402, "insufficient_quota", "insufficient_quota" },
    { "permission_error", 403, "permission_error", NULL },
    { "not_found_error", 404, "not_found_error", NULL },
    { "request_too_large", 413, "invalid_request_error", "request_too_large" },
    { "rate_limit_error", 429, "rate_limit_error", "rate_limit_exceeded" },
    { "api_error", 500, "server_error", NULL },
    { "timeout_error", 504, "timeout_error", NULL },
    { "overloaded_error", 529, "server_error", "overloaded" },
};

static const struct err_row *row_named(const char *anthropic)
{
    for (size_t i = 0; i < countof(err_rows); i++)
        if (strcmp(err_rows[i].anthropic, anthropic) == 0)
            return &err_rows[i];
    return &err_rows[0];
}

/* The row for an HTTP status (unknown 4xx = invalid request, others = api). */
static const struct err_row *row_for_status(int status)
{
    for (size_t i = 0; i < countof(err_rows); i++)
        if (err_rows[i].status == status)
            return &err_rows[i];
    if (status == 503)
        return row_named("overloaded_error");
    if (status == 408)
        return row_named("timeout_error");
    return row_named(status >= 400 && status < 500 ? "invalid_request_error" : "api_error");
}

/* The row for an error type of either format, or NULL if unknown: an
 * Anthropic name, else an OpenAI name (the first row using it), else
 * OpenAI's rate limit types "requests"/"tokens". */
static const struct err_row *row_for_type(const char *type)
{
    if (!type)
        return NULL;
    for (size_t i = 0; i < countof(err_rows); i++)
        if (strcmp(type, err_rows[i].anthropic) == 0)
            return &err_rows[i];
    for (size_t i = 0; i < countof(err_rows); i++)
        if (strcmp(type, err_rows[i].openai) == 0)
            return &err_rows[i];
    if (strcmp(type, "requests") == 0 || strcmp(type, "tokens") == 0)
        return row_named("rate_limit_error");
    return NULL;
}

typedef struct err_info {
    char *message; /* malloc'd, valid UTF-8 */
    const char *type;
    json_t *param, *code; /* borrowed from the parsed body, may be NULL */
    json_t *body;
} err_info;

/* Copies raw bytes as valid UTF-8 (bad sequences become '?'), at most
 * ERRMSG_MAX bytes, cut on a character boundary. */
static char *sanitize_text(const char *p, size_t len)
{
    buf b;
    buf_init(&b, ERRMSG_MAX + 8);
    size_t i = 0;
    while (i < len && b.len < ERRMSG_MAX) {
        unsigned char c = (unsigned char)p[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        bool ok = n > 0 && i + n <= len && c != 0;
        for (size_t k = 1; ok && k < n; k++)
            ok = ((unsigned char)p[i + k] & 0xC0) == 0x80;
        if (ok && n > 1) { /* no overlongs, surrogates or > U+10FFFF */
            unsigned char d = (unsigned char)p[i + 1];
            ok = !(c == 0xC0 || c == 0xC1 || (c == 0xE0 && d < 0xA0) || (c == 0xED && d >= 0xA0) ||
                   (c == 0xF0 && d < 0x90) || (c == 0xF4 && d >= 0x90) || c > 0xF4);
        }
        if (!ok) {
            buf_append(&b, "?", 1);
            i++;
        } else {
            buf_append(&b, p + i, n);
            i += n;
        }
    }
    /* trim the surrounding whitespace of raw bodies */
    size_t s = 0;
    while (s < b.len && (b.p[s] == ' ' || b.p[s] == '\n' || b.p[s] == '\r' || b.p[s] == '\t'))
        s++;
    while (b.len > s && (b.p[b.len - 1] == ' ' || b.p[b.len - 1] == '\n' || b.p[b.len - 1] == '\r' ||
                         b.p[b.len - 1] == '\t'))
        b.len--;
    char *r = malloc(b.len - s + 1);
    if (r) {
        if (b.len > s)
            memcpy(r, b.p + s, b.len - s);
        r[b.len - s] = '\0';
    }
    buf_free(&b);
    return r;
}

/* Pulls message and type out of an error body of either shape. */
static void parse_error_body(err_info *ei, int status, const char *body, size_t len)
{
    memset(ei, 0, sizeof *ei);
    json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    const char *msg = NULL;
    if (json_is_object(j)) {
        json_t *err = json_object_get(j, "error");
        if (json_is_object(err)) {
            msg = jstr(err, "message");
            ei->type = jstr(err, "type");
            ei->param = json_object_get(err, "param");
            ei->code = json_object_get(err, "code");
        } else if (json_is_string(err)) {
            msg = json_string_value(err);
        }
        if (!msg)
            msg = jstr(j, "message");
        if (!ei->type && jstr(j, "type") && strcmp(jstr(j, "type"), "error") != 0)
            ei->type = jstr(j, "type");
    }
    ei->body = j;
    if (msg) {
        ei->message = strdup(msg);
    } else if (body && len) {
        ei->message = sanitize_text(body, len);
    }
    if (ei->message && !*ei->message) {
        free(ei->message);
        ei->message = NULL;
    }
    if (!ei->message) {
        char tmp[64];
        snprintf(tmp, sizeof tmp, "upstream returned HTTP status %d", status);
        ei->message = strdup(tmp);
    }
}

json_t *anthropic_error_to_openai(int status, const char *body, size_t len)
{
    err_info ei;
    parse_error_body(&ei, status, body, len);
    const struct err_row *row = row_for_type(ei.type);
    if (!row)
        row = row_for_status(status);
    json_t *code = json_is_string(ei.code) || json_is_integer(ei.code) ? json_incref(ei.code)
                 : row->code ? json_string(row->code) : json_null();
    json_t *param = json_is_string(ei.param) ? json_incref(ei.param) : json_null();
    json_t *r = json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", ei.message ? ei.message : "error",
                          "type", row->openai, "param", param, "code", code);
    free(ei.message);
    json_decref(ei.body);
    return r;
}

json_t *anthropic_error_from_openai(int status, const char *body, size_t len)
{
    err_info ei;
    parse_error_body(&ei, status, body, len);
    /* OpenAI uses invalid_request_error and server_error as catch-alls (a
     * bad key is a 401 invalid_request_error), so for those the status,
     * when it is an error status, says more */
    const struct err_row *row = row_for_type(ei.type);
    bool generic = row && (strcmp(row->anthropic, "invalid_request_error") == 0 ||
                           strcmp(row->anthropic, "api_error") == 0);
    if (!row || (generic && status >= 400))
        row = row_for_status(status);
    json_t *r = json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", row->anthropic,
                          "message", ei.message ? ei.message : "error");
    free(ei.message);
    json_decref(ei.body);
    return r;
}

/* ------------------------------------------------------------------ */
/* Streams                                                             */
/* ------------------------------------------------------------------ */

typedef enum st_state { ST_RUNNING, ST_DONE, ST_FAILED } st_state;
typedef enum blk_kind { BLK_NONE, BLK_TEXT, BLK_TOOL } blk_kind;

struct xlate_stream {
    xlate_dir dir;
    char *model;
    char *id;
    bool include_usage;
    st_state state;
    bool started;          /* first client event written */
    json_int_t created;
    usage us;
    bool have_usage;
    const char *reason;    /* finish_reason (A->O) / stop_reason (O->A) once known */
    /* tool calls: A->O maps Anthropic block index (key) -> OpenAI tool_calls
     * index (val); O->A maps OpenAI tool_calls index -> Anthropic block */
    struct { json_int_t key; int val; } map[STREAM_MAX_BLOCKS];
    size_t nmap;
    blk_kind open;         /* O->A: kind of the open Anthropic block */
    int open_index;
    int next_block;
};

xlate_stream *xlate_stream_new(xlate_dir dir, const char *model, bool include_usage)
{
    xlate_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->dir = dir;
    s->model = strdup(model ? model : "");
    if (!s->model) {
        free(s);
        return NULL;
    }
    s->include_usage = include_usage;
    s->created = (json_int_t)time(NULL);
    return s;
}

void xlate_stream_free(xlate_stream *s)
{
    if (!s)
        return;
    free(s->model);
    free(s->id);
    free(s);
}

bool xlate_stream_done(const xlate_stream *s)
{
    return s->state != ST_RUNNING;
}

void xlate_stream_usage(const xlate_stream *s, long *input_tokens, long *output_tokens)
{
    long long in = usage_prompt(&s->us), out = s->us.output;
    if (input_tokens)
        *input_tokens = in > LONG_MAX ? LONG_MAX : (long)in;
    if (output_tokens)
        *output_tokens = out > LONG_MAX ? LONG_MAX : (long)out;
}

static void set_id(xlate_stream *s, const char *id)
{
    if (!id || s->id)
        return;
    s->id = strdup(id);
}

/* Writes j (consumed) as one SSE event. A NULL j means out of memory. */
static err_code emit(buf *out, const char *event, json_t *j)
{
    if (!j)
        return ERR_NOMEM;
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s)
        return ERR_NOMEM;
    err_code e = sse_write_event(out, sv_from(event), sv_from(s));
    free(s);
    return e;
}

/* --- Anthropic upstream, OpenAI client --- */

/* A chat.completion.chunk with one choice carrying delta (consumed). */
static json_t *chunk(xlate_stream *s, json_t *delta, const char *finish)
{
    json_t *c = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:s?}]}",
                          "id", s->id ? s->id : "chatcmpl-gateway",
                          "object", "chat.completion.chunk",
                          "created", s->created,
                          "model", s->model,
                          "choices", "index", 0, "delta", delta, "logprobs", "finish_reason", finish);
    if (c && s->include_usage)
        json_object_set_new(c, "usage", json_null());
    return c;
}

/* The first chunk announces the assistant role. */
static err_code a2o_start(xlate_stream *s, buf *out)
{
    if (s->started)
        return ERR_OK;
    s->started = true;
    return emit(out, NULL, chunk(s, json_pack("{s:s, s:s}", "role", "assistant", "content", ""), NULL));
}

/* Ends the OpenAI stream with an error object; no [DONE] follows. */
static err_code a2o_fail(xlate_stream *s, buf *out, json_t *err)
{
    s->state = ST_FAILED;
    return emit(out, NULL, err);
}

/* The value mapped to key, or -1. */
static int map_get(const xlate_stream *s, json_int_t key)
{
    for (size_t i = 0; i < s->nmap; i++)
        if (s->map[i].key == key)
            return s->map[i].val;
    return -1;
}

static void map_put(xlate_stream *s, json_int_t key, int val)
{
    s->map[s->nmap].key = key;
    s->map[s->nmap++].val = val;
}

/* An OpenAI error object carrying msg, typed by status. */
static json_t *oai_err(int status, const char *msg)
{
    return anthropic_error_to_openai(status, msg, strlen(msg));
}

/* An Anthropic error object carrying msg, typed by status. */
static json_t *anth_err(int status, const char *msg)
{
    return anthropic_error_from_openai(status, msg, strlen(msg));
}

static err_code a2o_event(xlate_stream *s, const char *type, json_t *d, buf *out)
{
    err_code e = ERR_OK;
    if (strcmp(type, "message_start") == 0) {
        json_t *msg = json_object_get(d, "message");
        set_id(s, jstr(msg, "id"));
        usage_from_anthropic(&s->us, json_object_get(msg, "usage"));
        return a2o_start(s, out);
    }
    if (strcmp(type, "content_block_start") == 0) {
        json_t *cb = json_object_get(d, "content_block");
        json_t *idx = json_object_get(d, "index");
        const char *bt = jstr(cb, "type");
        if ((e = a2o_start(s, out)))
            return e;
        if (bt && strcmp(bt, "text") == 0 && jstr(cb, "text") && *jstr(cb, "text"))
            return emit(out, NULL, chunk(s, json_pack("{s:s}", "content", jstr(cb, "text")), NULL));
        if (!bt || strcmp(bt, "tool_use") != 0)
            return ERR_OK;
        if (!json_is_integer(idx) || map_get(s, json_integer_value(idx)) >= 0 || s->nmap == STREAM_MAX_BLOCKS)
            return a2o_fail(s, out, oai_err(502, "upstream sent an invalid or duplicate tool_use block"));
        int tool = (int)s->nmap;
        map_put(s, json_integer_value(idx), tool);
        json_t *call = json_pack("{s:i, s:s, s:s, s:{s:s, s:s}}", "index", tool,
                                 "id", jstr(cb, "id") ? jstr(cb, "id") : "",
                                 "type", "function", "function",
                                 "name", jstr(cb, "name") ? jstr(cb, "name") : "", "arguments", "");
        return emit(out, NULL, chunk(s, json_pack("{s:[o]}", "tool_calls", call), NULL));
    }
    if (strcmp(type, "content_block_delta") == 0) {
        json_t *delta = json_object_get(d, "delta");
        const char *dt = jstr(delta, "type");
        if ((e = a2o_start(s, out)))
            return e;
        if (dt && strcmp(dt, "text_delta") == 0 && jstr(delta, "text")) {
            if (!*jstr(delta, "text"))
                return ERR_OK;
            return emit(out, NULL, chunk(s, json_pack("{s:s}", "content", jstr(delta, "text")), NULL));
        }
        if (dt && strcmp(dt, "input_json_delta") == 0) {
            json_t *idx = json_object_get(d, "index");
            int tool = json_is_integer(idx) ? map_get(s, json_integer_value(idx)) : -1;
            const char *pj = jstr(delta, "partial_json");
            if (tool < 0)
                return a2o_fail(s, out, oai_err(502, "upstream sent input_json_delta for an unknown block"));
            if (!pj || !*pj)
                return ERR_OK;
            json_t *call = json_pack("{s:i, s:{s:s}}", "index", tool, "function", "arguments", pj);
            return emit(out, NULL, chunk(s, json_pack("{s:[o]}", "tool_calls", call), NULL));
        }
        return ERR_OK; /* thinking, signature, citations: no Chat Completions form */
    }
    if (strcmp(type, "message_delta") == 0) {
        json_t *delta = json_object_get(d, "delta");
        usage_from_anthropic(&s->us, json_object_get(d, "usage"));
        if ((e = a2o_start(s, out)))
            return e;
        if (!present(delta, "stop_reason"))
            return ERR_OK;
        s->reason = finish_from_stop(jstr(delta, "stop_reason"));
        return emit(out, NULL, chunk(s, json_object(), s->reason));
    }
    if (strcmp(type, "message_stop") == 0) {
        if ((e = a2o_start(s, out)))
            return e;
        if (!s->reason) { /* no message_delta: still close the choice */
            s->reason = "stop";
            if ((e = emit(out, NULL, chunk(s, json_object(), s->reason))))
                return e;
        }
        if (s->include_usage) {
            json_t *c = json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}",
                                  "id", s->id ? s->id : "chatcmpl-gateway",
                                  "object", "chat.completion.chunk", "created", s->created,
                                  "model", s->model, "choices", "usage", usage_to_openai(&s->us));
            if ((e = emit(out, NULL, c)))
                return e;
        }
        s->state = ST_DONE;
        return sse_write_event(out, SV_NULL, SV("[DONE]"));
    }
    if (strcmp(type, "error") == 0) {
        char *raw = json_dumps(d, JSON_COMPACT);
        json_t *err = anthropic_error_to_openai(500, raw, raw ? strlen(raw) : 0);
        free(raw);
        return a2o_fail(s, out, err);
    }
    return ERR_OK; /* ping, content_block_stop, and event types added later */
}

/* --- OpenAI upstream, Anthropic client --- */

static err_code o2a_start(xlate_stream *s, buf *out)
{
    if (s->started)
        return ERR_OK;
    s->started = true;
    json_t *j = json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:[], s:n, s:n, s:{s:I, s:I}}}",
                          "type", "message_start", "message",
                          "id", s->id ? s->id : "msg_gateway", "type", "message", "role", "assistant",
                          "model", s->model, "content", "stop_reason", "stop_sequence",
                          "usage", "input_tokens", (json_int_t)s->us.input,
                          "output_tokens", (json_int_t)0);
    return emit(out, "message_start", j);
}

static err_code o2a_close(xlate_stream *s, buf *out)
{
    if (s->open == BLK_NONE)
        return ERR_OK;
    s->open = BLK_NONE;
    return emit(out, "content_block_stop", json_pack("{s:s, s:i}", "type", "content_block_stop",
                                                     "index", s->open_index));
}

/* Opens a new block of the given kind (closing the open one) described by
 * content_block (consumed). */
static err_code o2a_open(xlate_stream *s, buf *out, blk_kind kind, json_t *content_block)
{
    err_code e = o2a_close(s, out);
    if (e) {
        json_decref(content_block);
        return e;
    }
    s->open = kind;
    s->open_index = s->next_block++;
    return emit(out, "content_block_start", json_pack("{s:s, s:i, s:o}", "type", "content_block_start",
                                                      "index", s->open_index, "content_block", content_block));
}

static err_code o2a_fail(xlate_stream *s, buf *out, json_t *err)
{
    s->state = ST_FAILED;
    return emit(out, "error", err);
}

static err_code o2a_text(xlate_stream *s, buf *out, const char *text)
{
    err_code e;
    if (s->open != BLK_TEXT && (e = o2a_open(s, out, BLK_TEXT, json_pack("{s:s, s:s}", "type", "text", "text", ""))))
        return e;
    return emit(out, "content_block_delta", json_pack("{s:s, s:i, s:{s:s, s:s}}", "type", "content_block_delta",
                                                      "index", s->open_index, "delta",
                                                      "type", "text_delta", "text", text));
}

static err_code o2a_tool_calls(xlate_stream *s, buf *out, json_t *calls)
{
    size_t i;
    json_t *tc;
    json_array_foreach(calls, i, tc) {
        json_t *fn = json_object_get(tc, "function");
        json_t *idx = json_object_get(tc, "index");
        json_int_t call = json_is_integer(idx) ? json_integer_value(idx) : (json_int_t)i;
        int block = map_get(s, call);
        err_code e;
        if (block < 0) {
            if (s->nmap == STREAM_MAX_BLOCKS)
                return o2a_fail(s, out, anth_err(502, "upstream sent too many tool calls"));
            char gen[48];
            snprintf(gen, sizeof gen, "toolu_gateway_%zu", s->nmap);
            const char *id = jstr(tc, "id") ? jstr(tc, "id") : gen;
            const char *name = jstr(fn, "name") ? jstr(fn, "name") : "";
            if ((e = o2a_open(s, out, BLK_TOOL, json_pack("{s:s, s:s, s:s, s:{}}", "type", "tool_use",
                                                          "id", id, "name", name, "input"))))
                return e;
            block = s->open_index;
            map_put(s, call, block);
        }
        const char *args = jstr(fn, "arguments");
        if (args && *args &&
            (e = emit(out, "content_block_delta",
                      json_pack("{s:s, s:i, s:{s:s, s:s}}", "type", "content_block_delta", "index", block,
                                "delta", "type", "input_json_delta", "partial_json", args))))
            return e;
    }
    return ERR_OK;
}

static err_code o2a_done(xlate_stream *s, buf *out)
{
    err_code e;
    if ((e = o2a_start(s, out)) || (e = o2a_close(s, out)))
        return e;
    json_t *u = json_pack("{s:I}", "output_tokens", (json_int_t)s->us.output);
    if (u && s->have_usage) {
        json_object_set_new(u, "input_tokens", json_integer(s->us.input));
        json_object_set_new(u, "cache_read_input_tokens", json_integer(s->us.cache_read));
    }
    json_t *md = json_pack("{s:s, s:{s:s, s:n}, s:o}", "type", "message_delta", "delta",
                           "stop_reason", s->reason ? s->reason : "end_turn", "stop_sequence", "usage", u);
    if ((e = emit(out, "message_delta", md)))
        return e;
    s->state = ST_DONE;
    return emit(out, "message_stop", json_pack("{s:s}", "type", "message_stop"));
}

static err_code o2a_chunk(xlate_stream *s, json_t *c, buf *out)
{
    err_code e;
    if (present(c, "error")) {
        char *raw = json_dumps(c, JSON_COMPACT);
        json_t *err = anthropic_error_from_openai(500, raw, raw ? strlen(raw) : 0);
        free(raw);
        return o2a_fail(s, out, err);
    }
    set_id(s, jstr(c, "id"));
    if (json_is_object(json_object_get(c, "usage"))) {
        usage_from_openai(&s->us, json_object_get(c, "usage"));
        s->have_usage = true;
    }
    if ((e = o2a_start(s, out)))
        return e;
    json_t *choices = json_object_get(c, "choices");
    size_t i;
    json_t *ch;
    json_array_foreach(choices, i, ch) {
        json_t *idx = json_object_get(ch, "index");
        if (json_is_integer(idx) && json_integer_value(idx) != 0)
            continue; /* only the first choice has an Anthropic form */
        json_t *delta = json_object_get(ch, "delta");
        const char *text = jstr(delta, "content");
        if (!text || !*text)
            text = jstr(delta, "refusal");
        if (text && *text && (e = o2a_text(s, out, text)))
            return e;
        json_t *calls = json_object_get(delta, "tool_calls");
        if (json_is_array(calls) && (e = o2a_tool_calls(s, out, calls)))
            return e;
        if (s->state != ST_RUNNING)
            return ERR_OK;
        const char *finish = jstr(ch, "finish_reason");
        if (finish) {
            s->reason = stop_from_finish(finish);
            if ((e = o2a_close(s, out)))
                return e;
        }
    }
    return ERR_OK;
}

err_code xlate_stream_event(xlate_stream *s, sv event, sv data, buf *out)
{
    if (s->state != ST_RUNNING)
        return ERR_OK;
    size_t start = out->len;
    err_code e;
    if (s->dir == XLATE_OPENAI_TO_ANTHROPIC && sv_eq_cstr(data, "[DONE]")) {
        e = o2a_done(s, out);
    } else {
        json_t *d = json_loadb(data.p ? data.p : "", data.len, 0, NULL);
        if (s->dir == XLATE_ANTHROPIC_TO_OPENAI) {
            char name[64];
            const char *type = jstr(d, "type");
            if (event.len && event.len < sizeof name) {
                memcpy(name, event.p, event.len);
                name[event.len] = '\0';
                type = name;
            }
            if (!json_is_object(d) || !type)
                e = a2o_fail(s, out, oai_err(502, "upstream sent a malformed stream event"));
            else
                e = a2o_event(s, type, d, out);
        } else {
            if (!json_is_object(d))
                e = o2a_fail(s, out, anth_err(502, "upstream sent a malformed stream event"));
            else
                e = o2a_chunk(s, d, out);
        }
        json_decref(d);
    }
    if (e) { /* out of room or memory: leave out as it was, stop the stream */
        out->len = start;
        if (out->p)
            out->p[start] = '\0';
        s->state = ST_FAILED;
        return e;
    }
    return s->state == ST_FAILED ? ERR_UPSTREAM : ERR_OK;
}

err_code xlate_stream_finish(xlate_stream *s, buf *out)
{
    if (s->state == ST_DONE)
        return ERR_OK;
    if (s->state == ST_FAILED)
        return ERR_UPSTREAM;
    static const char cut[] = "upstream stream ended before completion";
    size_t start = out->len;
    err_code e = s->dir == XLATE_ANTHROPIC_TO_OPENAI ? a2o_fail(s, out, oai_err(502, cut))
                                                     : o2a_fail(s, out, anth_err(502, cut));
    if (e) {
        out->len = start;
        if (out->p)
            out->p[start] = '\0';
        return e;
    }
    return ERR_UPSTREAM;
}
