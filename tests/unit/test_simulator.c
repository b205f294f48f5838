/*
 * test_simulator.c - the simulator's plans (providers/simulator.c) and the
 * token rule (providers/tokens.c).
 *
 * Every body a plan produces is parsed back with jansson and checked
 * against the shape of OpenAI's objects (chat.completion, its chunks,
 * text_completion, embeddings, models, errors). Golden files under
 * tests/data/simulator/ pin the exact bytes of a few plans; run with
 * SIM_UPDATE_GOLDEN=1 to rewrite them after a deliberate change.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include "core/pool.h"
#include "providers/simulator.h"
#include "providers/tokens.h"
#include "test.h"

/* ---- helpers ---- */

static const sim_options base_opts = {
    .default_mode = "echo", .max_tokens = 64, .error_status = 500, .seed = 42,
};

/* Makes a plan from a JSON text (NULL = no body); fails the test on
 * anything but ERR_OK. */
static sim_plan plan_of(pool *p, const sim_options *o, sim_endpoint ep, const char *mode,
                        const char *json, uint64_t seq)
{
    sim_plan plan;
    json_error_t je;
    json_t *req = json ? json_loads(json, 0, &je) : NULL;
    if (json && !req)
        test_fail(__FILE__, __LINE__, "bad test JSON: %s: %s", json, je.text);
    err_code e = sim_plan_make(o ? o : &base_opts, ep, mode, req, seq, p, &plan);
    if (e != ERR_OK)
        test_fail(__FILE__, __LINE__, "sim_plan_make: %s", err_name(e));
    json_decref(req);
    return plan;
}

/* The body of a non-streamed plan, parsed (caller decrefs). */
static json_t *body_of(const sim_plan *pl)
{
    if (pl->nsteps != 1 || pl->stream) {
        test_fail(__FILE__, __LINE__, "expected one JSON step, got %zu (stream %d)", pl->nsteps,
                  pl->stream);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(pl->steps[0].data, pl->steps[0].len, 0, &je);
    if (!j)
        test_fail(__FILE__, __LINE__, "body does not parse: %s: %.*s", je.text,
                  (int)pl->steps[0].len, pl->steps[0].data);
    return j;
}

/* One SSE event "data: JSON\n\n", parsed (NULL for [DONE] or bad framing). */
static json_t *event_of(const sim_step *s)
{
    if (s->len < 8 || memcmp(s->data, "data: ", 6) != 0 || memcmp(s->data + s->len - 2, "\n\n", 2) != 0) {
        test_fail(__FILE__, __LINE__, "bad SSE framing: %.*s", (int)s->len, s->data);
        return NULL;
    }
    if (s->len == 14 && memcmp(s->data, "data: [DONE]\n\n", 14) == 0)
        return NULL;
    json_error_t je;
    json_t *j = json_loadb(s->data + 6, s->len - 8, 0, &je);
    if (!j)
        test_fail(__FILE__, __LINE__, "event does not parse: %s", je.text);
    return j;
}

static bool is_done(const sim_step *s)
{
    return s->len == 14 && memcmp(s->data, "data: [DONE]\n\n", 14) == 0;
}

static const char *str_at(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool starts(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Checks an OpenAI usage object; returns completion_tokens. */
static long check_usage(const json_t *u, bool completion)
{
    CHECK(json_is_object(u));
    json_t *pt = json_object_get(u, "prompt_tokens");
    json_t *ct = json_object_get(u, "completion_tokens");
    json_t *tt = json_object_get(u, "total_tokens");
    CHECK(json_is_integer(pt) && json_is_integer(tt));
    long c = 0;
    if (completion) {
        CHECK(json_is_integer(ct));
        c = (long)json_integer_value(ct);
    } else {
        CHECK(ct == NULL);
    }
    CHECK_INT(json_integer_value(tt), json_integer_value(pt) + c);
    return c;
}

/* Checks a chat.completion body with n choices, returns it for more checks. */
static void check_chat(const json_t *o, size_t n)
{
    CHECK(starts(str_at(o, "id"), "chatcmpl-sim-"));
    CHECK_STR(str_at(o, "object"), "chat.completion");
    CHECK(json_is_integer(json_object_get(o, "created")));
    CHECK(json_is_string(json_object_get(o, "model")));
    CHECK_STR(str_at(o, "system_fingerprint"), "genaiops-simulator");
    json_t *choices = json_object_get(o, "choices");
    CHECK_INT(json_array_size(choices), n);
    size_t i;
    json_t *ch;
    json_array_foreach(choices, i, ch) {
        CHECK_INT(json_integer_value(json_object_get(ch, "index")), i);
        json_t *m = json_object_get(ch, "message");
        CHECK_STR(str_at(m, "role"), "assistant");
        json_t *content = json_object_get(m, "content");
        CHECK(json_is_string(content) || (json_is_null(content) && json_object_get(m, "tool_calls")));
        CHECK(json_is_null(json_object_get(m, "refusal")));
        CHECK(json_is_null(json_object_get(ch, "logprobs")));
        const char *fr = str_at(ch, "finish_reason");
        CHECK(fr && (!strcmp(fr, "stop") || !strcmp(fr, "length") || !strcmp(fr, "tool_calls")));
    }
    check_usage(json_object_get(o, "usage"), true);
}

/* Checks an OpenAI error body; returns the error object (borrowed). */
static json_t *check_error(const json_t *o)
{
    json_t *e = json_object_get(o, "error");
    CHECK(json_is_object(e));
    const char *msg = str_at(e, "message");
    CHECK(msg && strstr(msg, "(simulated)"));
    CHECK(json_is_string(json_object_get(e, "type")));
    CHECK(json_object_get(e, "param") != NULL);
    CHECK(json_object_get(e, "code") != NULL);
    return e;
}

/* Reassembled stream of a chat or completions plan. */
typedef struct stream_view {
    char content[4][8192];      /* per choice */
    size_t len[4];
    const char *finish[4];
    char finish_buf[4][16];
    size_t role_chunks, content_chunks, usage_chunks;
    long usage_completion;
    bool done;
    bool tool_head[4];
    char call_id[4][64], tool_name[4][64];
} stream_view;

static void view_stream(const sim_plan *pl, bool chat, stream_view *v)
{
    memset(v, 0, sizeof *v);
    CHECK(pl->stream);
    CHECK_STR(pl->content_type, "text/event-stream");
    const char *id = NULL;
    char idbuf[64] = "";
    for (size_t s = 0; s < pl->nsteps; s++) {
        if (is_done(&pl->steps[s])) {
            CHECK(s == pl->nsteps - 1);
            v->done = true;
            continue;
        }
        json_t *ev = event_of(&pl->steps[s]);
        if (!ev)
            continue;
        CHECK_STR(str_at(ev, "object"), chat ? "chat.completion.chunk" : "text_completion");
        CHECK_STR(str_at(ev, "system_fingerprint"), "genaiops-simulator");
        CHECK(json_is_integer(json_object_get(ev, "created")));
        if (!id) {
            snprintf(idbuf, sizeof idbuf, "%s", str_at(ev, "id") ? str_at(ev, "id") : "");
            id = idbuf;
            CHECK(starts(id, chat ? "chatcmpl-sim-" : "cmpl-sim-"));
        } else {
            CHECK_STR(str_at(ev, "id"), id); /* same id on every chunk */
        }
        json_t *choices = json_object_get(ev, "choices");
        CHECK(json_is_array(choices));
        json_t *usage = json_object_get(ev, "usage");
        if (json_array_size(choices) == 0) {
            v->usage_chunks++;
            v->usage_completion = check_usage(usage, true);
            json_decref(ev);
            continue;
        }
        CHECK_INT(json_array_size(choices), 1);
        json_t *ch = json_array_get(choices, 0);
        size_t i = (size_t)json_integer_value(json_object_get(ch, "index"));
        CHECK(i < 4);
        i &= 3;
        CHECK(json_is_null(json_object_get(ch, "logprobs")));
        json_t *fr = json_object_get(ch, "finish_reason");
        if (json_is_string(fr)) {
            snprintf(v->finish_buf[i], sizeof v->finish_buf[i], "%s", json_string_value(fr));
            v->finish[i] = v->finish_buf[i];
        } else {
            CHECK(json_is_null(fr));
        }
        const char *piece = NULL;
        if (chat) {
            json_t *d = json_object_get(ch, "delta");
            CHECK(json_is_object(d));
            if (json_object_get(d, "role")) {
                CHECK_STR(str_at(d, "role"), "assistant");
                v->role_chunks++;
                json_t *tc = json_array_get(json_object_get(d, "tool_calls"), 0);
                if (tc) {
                    v->tool_head[i] = true;
                    CHECK_INT(json_integer_value(json_object_get(tc, "index")), 0);
                    CHECK_STR(str_at(tc, "type"), "function");
                    snprintf(v->call_id[i], 64, "%s", str_at(tc, "id") ? str_at(tc, "id") : "");
                    json_t *fn = json_object_get(tc, "function");
                    snprintf(v->tool_name[i], 64, "%s", str_at(fn, "name") ? str_at(fn, "name") : "");
                    CHECK_STR(str_at(fn, "arguments"), "");
                    CHECK(json_is_null(json_object_get(d, "content")));
                } else {
                    CHECK_STR(str_at(d, "content"), "");
                }
            } else if (json_object_get(d, "tool_calls")) {
                json_t *tc = json_array_get(json_object_get(d, "tool_calls"), 0);
                CHECK_INT(json_integer_value(json_object_get(tc, "index")), 0);
                CHECK(json_object_get(tc, "id") == NULL);
                piece = str_at(json_object_get(tc, "function"), "arguments");
                CHECK(piece != NULL);
            } else if (json_object_get(d, "content")) {
                piece = str_at(d, "content");
                CHECK(piece != NULL);
            } else {
                CHECK(json_is_string(fr)); /* only the last chunk has an empty delta */
            }
        } else {
            piece = str_at(ch, "text");
            CHECK(piece != NULL);
            if (json_is_string(fr)) {
                CHECK_STR(piece, "");
                piece = NULL;
            }
        }
        if (piece) {
            size_t pl_ = strlen(piece);
            CHECK(pl_ > 0);
            if (v->len[i] + pl_ < sizeof v->content[i]) {
                memcpy(v->content[i] + v->len[i], piece, pl_);
                v->len[i] += pl_;
            }
            v->content_chunks++;
        }
        json_decref(ev);
    }
}

static char *concat_steps(const sim_plan *pl, size_t *len)
{
    size_t n = 0;
    for (size_t i = 0; i < pl->nsteps; i++)
        n += pl->steps[i].len;
    char *m = malloc(n + 1);
    size_t at = 0;
    for (size_t i = 0; i < pl->nsteps; i++) {
        memcpy(m + at, pl->steps[i].data, pl->steps[i].len);
        at += pl->steps[i].len;
    }
    m[at] = '\0';
    *len = at;
    return m;
}

static bool same_plan(const sim_plan *a, const sim_plan *b)
{
    if (a->status != b->status || a->nsteps != b->nsteps || a->end != b->end || a->stream != b->stream)
        return false;
    for (size_t i = 0; i < a->nsteps; i++)
        if (a->steps[i].len != b->steps[i].len || a->steps[i].delay_ms != b->steps[i].delay_ms ||
            memcmp(a->steps[i].data, b->steps[i].data, a->steps[i].len) != 0)
            return false;
    return true;
}

/* ---- tokens ---- */

TEST(tokens_split_table)
{
    static const struct {
        const char *text;
        const char *pieces; /* joined by '|' */
    } cases[] = {
        { "", "" },
        { "a", "a" },
        { "Hello", "Hel|lo" },
        { "Hello, world!", "Hel|lo|,| wor|ld|!" },
        { "simulator", "sim|ula|tor" },
        { "a  b", "a|  b" },
        { "            x", "        |    x" },
        { "trailing  ", "trai|ling|  " },
        { "\n\nHi", "\n\nHi" },
        { "h\xc3\xa9llo", "h\xc3\xa9|llo" },
        { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "\xe6\x97\xa5|\xe6\x9c\xac|\xe8\xaa\x9e" },
        { "x=1;", "x|=|1|;" },
        { "1234567890", "1234|567|890" },
        { "\x80\x80\x80\x80\x80\x80\x80\x80\x80", "\x80\x80\x80\x80\x80\x80|\x80\x80\x80" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        const char *t = cases[i].text;
        size_t len = strlen(t);
        sv out[32];
        size_t n = tokens_split(t, len, out, 32);
        char joined[256] = "";
        size_t at = 0;
        for (size_t k = 0; k < n; k++) {
            if (k)
                joined[at++] = '|';
            memcpy(joined + at, out[k].p, out[k].len);
            at += out[k].len;
        }
        joined[at] = '\0';
        if (strcmp(joined, cases[i].pieces) != 0)
            test_fail(__FILE__, __LINE__, "split(\"%s\") = \"%s\", expected \"%s\"", t, joined,
                      cases[i].pieces);
        CHECK_INT(tokens_estimate(t, len), n);
    }
    CHECK_INT(tokens_estimate(NULL, 0), 0);
}

TEST(tokens_split_max_and_prefix)
{
    const char *t = "one two three four";
    sv out[2];
    size_t n = tokens_split(t, strlen(t), out, 2);
    CHECK_INT(n, 2);
    CHECK_MEM(out[0].p, out[0].len, "one");
    CHECK_MEM(out[1].p, out[1].len, " two three four"); /* the rest */
    CHECK_INT(tokens_split(t, strlen(t), out, 0), 0);
    CHECK_INT(tokens_prefix_len(t, strlen(t), 2), 7);
    CHECK_INT(tokens_prefix_len(t, strlen(t), 0), 0);
    CHECK_INT(tokens_prefix_len(t, strlen(t), 100), strlen(t));
}

/* Random bytes (including invalid UTF-8 and long runs): the pieces never
 * are empty, always add up to the text, and match the estimate. */
TEST(tokens_random_bytes)
{
    static const char alphabet[] = "ab  \n\t.,\x80\xc3\xa9\xe6\xff" "0";
    uint64_t rng = 12345;
    char text[600];
    sv pieces[700];
    for (int round = 0; round < 300; round++) {
        size_t len = (size_t)(round * 2);
        for (size_t i = 0; i < len; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            text[i] = (round % 3 == 0) ? (char)(rng >> 56) : alphabet[(rng >> 33) % (sizeof alphabet - 1)];
        }
        size_t n = tokens_split(text, len, pieces, countof(pieces));
        CHECK_INT(tokens_estimate(text, len), n);
        size_t at = 0;
        for (size_t k = 0; k < n; k++) {
            CHECK(pieces[k].len > 0 && pieces[k].len <= 15);
            CHECK(pieces[k].p == text + at);
            at += pieces[k].len;
        }
        CHECK_INT(at, len);
    }
}

/* ---- modes ---- */

TEST(sim_mode_valid_table)
{
    static const struct { const char *mode; bool ok; } cases[] = {
        { "echo", true }, { "lorem", true }, { "canned", true }, { "error-429", true },
        { "error-500", true }, { "error-503", true }, { "timeout", true },
        { "broken-stream", true }, { "Echo", false }, { "", false }, { "error-404", false },
        { NULL, false },
    };
    for (size_t i = 0; i < countof(cases); i++)
        CHECK(sim_mode_valid(cases[i].mode) == cases[i].ok);
    size_t n = 0;
    while (sim_mode_name(n))
        CHECK(sim_mode_valid(sim_mode_name(n++)));
    CHECK_INT(n, 8);
}

TEST(sim_echo_last_user_message)
{
    pool *p = pool_new(0);
    sim_plan pl = plan_of(p, NULL, SIM_CHAT, "echo",
        "{\"model\":\"sim/echo\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":\"first\"},{\"role\":\"assistant\",\"content\":\"ok\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hello\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:x\"}},{\"type\":\"text\",\"text\":\"there\"}]}]}",
        1);
    CHECK_INT(pl.status, 200);
    CHECK_STR(pl.content_type, "application/json");
    CHECK_INT(pl.end, SIM_END_OK);
    json_t *o = body_of(&pl);
    check_chat(o, 1);
    CHECK_STR(str_at(o, "model"), "sim/echo");
    json_t *m = json_object_get(json_array_get(json_object_get(o, "choices"), 0), "message");
    CHECK_STR(str_at(m, "content"), "Hello\nthere");
    CHECK_STR(str_at(json_array_get(json_object_get(o, "choices"), 0), "finish_reason"), "stop");
    json_t *u = json_object_get(o, "usage");
    CHECK_INT(json_integer_value(json_object_get(u, "completion_tokens")), tokens_estimate("Hello\nthere", 11));
    CHECK_INT(pl.completion_tokens, tokens_estimate("Hello\nthere", 11));
    CHECK_INT(pl.prompt_tokens, json_integer_value(json_object_get(u, "prompt_tokens")));
    CHECK(pl.prompt_tokens > 10);
    json_decref(o);
    pool_free(p);
}

TEST(sim_default_mode_and_model_name)
{
    pool *p = pool_new(0);
    sim_options o = base_opts;
    o.default_mode = "canned";
    sim_plan pl = plan_of(p, &o, SIM_CHAT, NULL, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    json_t *b = body_of(&pl);
    CHECK_STR(str_at(b, "model"), "sim/canned"); /* no model in the request */
    CHECK_STR(str_at(json_object_get(json_array_get(json_object_get(b, "choices"), 0), "message"), "content"),
              "This is a canned answer from the genaiops simulator.");
    json_decref(b);
    /* NULL options: echo */
    pl = plan_of(p, NULL, SIM_CHAT, NULL, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    CHECK_INT(pl.status, 200);
    pool_free(p);
}

TEST(sim_lorem_length_and_tokens_knob)
{
    pool *p = pool_new(0);
    sim_options o = base_opts;
    o.max_tokens = 10;
    sim_plan pl = plan_of(p, &o, SIM_CHAT, "lorem", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    json_t *b = body_of(&pl);
    check_chat(b, 1);
    const char *c = str_at(json_object_get(json_array_get(json_object_get(b, "choices"), 0), "message"), "content");
    CHECK(starts(c, "Lorem ipsum"));
    CHECK_INT(tokens_estimate(c, strlen(c)), 10);
    CHECK_INT(pl.completion_tokens, 10);
    CHECK_STR(str_at(json_array_get(json_object_get(b, "choices"), 0), "finish_reason"), "stop");
    json_decref(b);
    pl = plan_of(p, &o, SIM_CHAT, "lorem",
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"simulator\":{\"tokens\":200}}", 0);
    CHECK_INT(pl.completion_tokens, 200);
    pl = plan_of(p, &o, SIM_CHAT, "lorem",
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"simulator\":{\"tokens\":0}}", 0);
    CHECK_INT(pl.completion_tokens, 0);
    b = body_of(&pl);
    CHECK_STR(str_at(json_object_get(json_array_get(json_object_get(b, "choices"), 0), "message"), "content"), "");
    json_decref(b);
    /* default length: opts->max_tokens unset -> 64 */
    o.max_tokens = 0;
    pl = plan_of(p, &o, SIM_CHAT, "lorem", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    CHECK_INT(pl.completion_tokens, 64);
    pool_free(p);
}

TEST(sim_canned_cycles_by_seq)
{
    pool *p = pool_new(0);
    static const char *answers[] = { "First answer.", "Second answer.", "Third." };
    sim_options o = base_opts;
    o.canned = answers;
    o.ncanned = 3;
    const char *req = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    for (uint64_t seq = 0; seq < 5; seq++) {
        sim_plan pl = plan_of(p, &o, SIM_CHAT, "canned", req, seq);
        json_t *b = body_of(&pl);
        CHECK_STR(str_at(json_object_get(json_array_get(json_object_get(b, "choices"), 0), "message"), "content"),
                  answers[seq % 3]);
        json_decref(b);
    }
    /* n = 2 continues the cycle for the second choice */
    sim_plan pl = plan_of(p, &o, SIM_CHAT, "canned",
                          "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}", 2);
    json_t *b = body_of(&pl);
    CHECK_STR(str_at(json_object_get(json_array_get(json_object_get(b, "choices"), 1), "message"), "content"),
              answers[0]);
    json_decref(b);
    pool_free(p);
}

TEST(sim_error_modes)
{
    static const struct {
        const char *mode;
        int status;
        const char *type, *code;
        long retry_after;
    } cases[] = {
        { "error-429", 429, "requests", "rate_limit_exceeded", 1 },
        { "error-500", 500, "server_error", NULL, 0 },
        { "error-503", 503, "server_error", NULL, 0 },
    };
    pool *p = pool_new(0);
    for (size_t i = 0; i < countof(cases); i++) {
        for (int ep = 0; ep < 3; ep++) {
            const char *req = ep == SIM_CHAT ? "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true}"
                              : ep == SIM_COMPLETIONS ? "{\"prompt\":\"x\"}" : "{\"input\":\"x\"}";
            sim_plan pl = plan_of(p, NULL, (sim_endpoint)ep, cases[i].mode, req, 0);
            CHECK_INT(pl.status, cases[i].status);
            CHECK(!pl.stream);
            CHECK_STR(pl.content_type, "application/json");
            CHECK_INT(pl.retry_after_s, cases[i].retry_after);
            CHECK_INT(pl.prompt_tokens, 0);
            json_t *b = body_of(&pl);
            json_t *e = check_error(b);
            CHECK_STR(str_at(e, "type"), cases[i].type);
            if (cases[i].code)
                CHECK_STR(str_at(e, "code"), cases[i].code);
            else
                CHECK(json_is_null(json_object_get(e, "code")));
            json_decref(b);
        }
    }
    pool_free(p);
}

TEST(sim_unknown_mode_404)
{
    pool *p = pool_new(0);
    sim_plan pl = plan_of(p, NULL, SIM_CHAT, "gpt-4o", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    CHECK_INT(pl.status, 404);
    json_t *b = body_of(&pl);
    json_t *e = check_error(b);
    CHECK_STR(str_at(e, "code"), "model_not_found");
    CHECK(strstr(str_at(e, "message"), "sim/gpt-4o") != NULL);
    for (size_t i = 0; sim_mode_name(i); i++) {
        char name[64];
        snprintf(name, sizeof name, "sim/%s", sim_mode_name(i));
        CHECK(strstr(str_at(e, "message"), name) != NULL);
    }
    json_decref(b);
    /* a hostile mode name (invalid UTF-8) still gives valid JSON */
    pl = plan_of(p, NULL, SIM_CHAT, "\xff\xfe\"\\bad", "{\"messages\":[]}", 0);
    CHECK_INT(pl.status, 404);
    b = body_of(&pl);
    check_error(b);
    json_decref(b);
    /* an unknown default mode too */
    sim_options o = base_opts;
    o.default_mode = "nope";
    pl = plan_of(p, &o, SIM_CHAT, NULL, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    CHECK_INT(pl.status, 404);
    pool_free(p);
}

TEST(sim_timeout_and_broken_stream)
{
    pool *p = pool_new(0);
    const char *req = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    sim_plan pl = plan_of(p, NULL, SIM_CHAT, "timeout", req, 0);
    CHECK_INT(pl.end, SIM_END_HANG);
    CHECK_INT(pl.nsteps, 0);
    pl = plan_of(p, NULL, SIM_EMBEDDINGS, "timeout", "{\"input\":\"x\"}", 0);
    CHECK_INT(pl.end, SIM_END_HANG);
    CHECK_INT(pl.nsteps, 0);
    pl = plan_of(p, NULL, SIM_CHAT, "broken-stream", req, 0);
    CHECK_INT(pl.end, SIM_END_BREAK);
    CHECK_INT(pl.nsteps, 0);
    pl = plan_of(p, NULL, SIM_CHAT, "broken-stream",
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true,\"simulator\":{\"tokens\":10}}", 0);
    CHECK_INT(pl.end, SIM_END_BREAK);
    stream_view v;
    view_stream(&pl, true, &v);
    CHECK_INT(v.role_chunks, 1);
    CHECK_INT(v.content_chunks, 5); /* half of 10 */
    CHECK(!v.done);
    CHECK(v.finish[0] == NULL);
    CHECK_INT(pl.completion_tokens, 5);
    pl = plan_of(p, NULL, SIM_COMPLETIONS, "broken-stream",
                 "{\"prompt\":\"x\",\"stream\":true,\"simulator\":{\"tokens\":7}}", 0);
    CHECK_INT(pl.end, SIM_END_BREAK);
    view_stream(&pl, false, &v);
    CHECK_INT(v.content_chunks, 3);
    pool_free(p);
}

/* ---- knobs ---- */

TEST(sim_knob_timing_non_stream)
{
    pool *p = pool_new(0);
    sim_options o = base_opts;
    o.latency_ms = 250;
    sim_plan pl = plan_of(p, &o, SIM_CHAT, "echo", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    CHECK_INT(pl.steps[0].delay_ms, 250);
    pl = plan_of(p, &o, SIM_CHAT, "echo",
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"simulator\":{\"latency_ms\":7}}", 0);
    CHECK_INT(pl.steps[0].delay_ms, 7);
    pl = plan_of(p, &o, SIM_CHAT, "error-500", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    CHECK_INT(pl.steps[0].delay_ms, 250); /* errors wait too */
    pl = plan_of(p, &o, SIM_EMBEDDINGS, "echo", "{\"input\":\"x\"}", 0);
    CHECK_INT(pl.steps[0].delay_ms, 250);
    pool_free(p);
}

TEST(sim_knob_timing_stream)
{
    pool *p = pool_new(0);
    sim_options o = base_opts;
    o.latency_ms = 100;
    o.ttft_ms = 1000; /* overridden below */
    sim_plan pl = plan_of(p, &o, SIM_CHAT, "echo",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"one two six\"}],\"stream\":true,"
        "\"simulator\":{\"ttft_ms\":50,\"token_ms\":20}}", 0);
    /* role (with the first token: latency + ttft), 3 tokens, finish, [DONE] */
    CHECK_INT(pl.nsteps, 6);
    long want[] = { 150, 0, 20, 20, 0, 0 };
    for (size_t i = 0; i < pl.nsteps && i < countof(want); i++)
        CHECK_INT(pl.steps[i].delay_ms, want[i]);
    /* completions: no role chunk, so latency + ttft before the first token */
    pl = plan_of(p, &o, SIM_COMPLETIONS, "echo",
                 "{\"prompt\":\"one two\",\"stream\":true,\"simulator\":{\"ttft_ms\":50,\"token_ms\":20}}", 0);
    CHECK_INT(pl.nsteps, 4);
    CHECK_INT(pl.steps[0].delay_ms, 150);
    CHECK_INT(pl.steps[1].delay_ms, 20);
    CHECK_INT(pl.steps[2].delay_ms, 0);
    pool_free(p);
}

TEST(sim_knob_fail)
{
    pool *p = pool_new(0);
    sim_plan pl = plan_of(p, NULL, SIM_CHAT, "echo",
                          "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"simulator\":{\"fail\":502}}", 0);
    CHECK_INT(pl.status, 502);
    json_t *b = body_of(&pl);
    CHECK_STR(str_at(check_error(b), "type"), "server_error");
    json_decref(b);
    pl = plan_of(p, NULL, SIM_CHAT, "echo",
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"simulator\":{\"fail\":429}}", 0);
    CHECK_INT(pl.status, 429);
    CHECK_INT(pl.retry_after_s, 1);
    /* streamed with fail_after: 200, N tokens, then an error event, no [DONE] */
    pl = plan_of(p, NULL, SIM_CHAT, "lorem",
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true,"
                 "\"simulator\":{\"fail\":503,\"fail_after\":3,\"tokens\":10}}", 0);
    CHECK_INT(pl.status, 200);
    CHECK_INT(pl.end, SIM_END_OK);
    CHECK_INT(pl.nsteps, 5); /* role + 3 + error */
    json_t *last = event_of(&pl.steps[pl.nsteps - 1]);
    check_error(last);
    json_decref(last);
    CHECK_INT(pl.completion_tokens, 3);
    /* fail_after alone fails with 500 */
    pl = plan_of(p, NULL, SIM_CHAT, "lorem",
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"simulator\":{\"fail_after\":3}}", 0);
    CHECK_INT(pl.status, 500);
    /* fail_after beyond the answer: every token, then the error */
    pl = plan_of(p, NULL, SIM_COMPLETIONS, "echo",
                 "{\"prompt\":\"a b\",\"stream\":true,\"simulator\":{\"fail\":500,\"fail_after\":100}}", 0);
    CHECK_INT(pl.nsteps, 3);
    last = event_of(&pl.steps[2]);
    check_error(last);
    json_decref(last);
    pool_free(p);
}

TEST(sim_error_rate_deterministic)
{
    pool *p = pool_new(0);
    sim_options o = base_opts;
    o.error_rate = 0.3;
    o.error_status = 503;
    const char *req = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    int failed = 0;
    int first[200];
    for (uint64_t seq = 0; seq < 200; seq++) {
        sim_plan pl = plan_of(p, &o, SIM_CHAT, "echo", req, seq);
        CHECK(pl.status == 200 || pl.status == 503);
        first[seq] = pl.status;
        failed += pl.status == 503;
    }
    CHECK(failed > 30 && failed < 90);
    for (uint64_t seq = 0; seq < 200; seq++) /* same seed and seq: same outcome */
        CHECK_INT(plan_of(p, &o, SIM_CHAT, "echo", req, seq).status, first[seq]);
    o.error_rate = 1.0;
    o.error_status = 0; /* unset: 500 */
    CHECK_INT(plan_of(p, &o, SIM_CHAT, "echo", req, 3).status, 500);
    o.error_rate = 0;
    CHECK_INT(plan_of(p, &o, SIM_CHAT, "echo", req, 3).status, 200);
    CHECK_INT(plan_of(p, &o, SIM_MODELS, NULL, NULL, 3).status, 200);
    pool_free(p);
}

/* ---- determinism ---- */

TEST(sim_deterministic_bytes)
{
    pool *p = pool_new(0);
    const char *reqs[] = {
        "{\"model\":\"sim/lorem\",\"messages\":[{\"role\":\"user\",\"content\":\"tell me\"}],\"n\":2}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"tell me\"}],\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
    };
    for (size_t i = 0; i < countof(reqs); i++) {
        sim_plan a = plan_of(p, NULL, SIM_CHAT, "lorem", reqs[i], 9);
        sim_plan b = plan_of(p, NULL, SIM_CHAT, "lorem", reqs[i], 9);
        CHECK(same_plan(&a, &b));
    }
    /* key order does not matter; delivery fields do not change the text */
    sim_plan a = plan_of(p, NULL, SIM_CHAT, "lorem",
                         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 1);
    sim_plan b = plan_of(p, NULL, SIM_CHAT, "lorem",
                         "{\"messages\":[{\"content\":\"hi\",\"role\":\"user\"}],\"model\":\"m\",\"max_tokens\":500}", 1);
    CHECK(same_plan(&a, &b));
    sim_plan s = plan_of(p, NULL, SIM_CHAT, "lorem",
                         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}", 1);
    stream_view v;
    view_stream(&s, true, &v);
    json_t *ja = body_of(&a);
    const char *text = str_at(json_object_get(json_array_get(json_object_get(ja, "choices"), 0), "message"), "content");
    CHECK(text && strlen(text) == v.len[0] && memcmp(text, v.content[0], v.len[0]) == 0);
    /* another seq: new id and created, same answer */
    sim_plan c = plan_of(p, NULL, SIM_CHAT, "lorem",
                         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 2);
    json_t *jc = body_of(&c);
    CHECK(strcmp(str_at(ja, "id"), str_at(jc, "id")) != 0);
    CHECK(json_integer_value(json_object_get(ja, "created")) != json_integer_value(json_object_get(jc, "created")));
    CHECK_STR(str_at(json_object_get(json_array_get(json_object_get(jc, "choices"), 0), "message"), "content"), text);
    /* other content or seed: another lorem */
    sim_plan d = plan_of(p, NULL, SIM_CHAT, "lorem",
                         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"ho\"}]}", 1);
    json_t *jd = body_of(&d);
    CHECK(strcmp(str_at(json_object_get(json_array_get(json_object_get(jd, "choices"), 0), "message"), "content"), text) != 0);
    sim_options o = base_opts;
    o.seed = 7;
    sim_plan e = plan_of(p, &o, SIM_CHAT, "lorem",
                         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 1);
    json_t *je = body_of(&e);
    CHECK(strcmp(str_at(json_object_get(json_array_get(json_object_get(je, "choices"), 0), "message"), "content"), text) != 0);
    json_decref(ja);
    json_decref(jc);
    json_decref(jd);
    json_decref(je);
    pool_free(p);
}

/* ---- n, max_tokens, stop, include_usage ---- */

TEST(sim_n_choices)
{
    pool *p = pool_new(0);
    sim_plan pl = plan_of(p, NULL, SIM_CHAT, "lorem",
                          "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":3,\"max_tokens\":12}", 0);
    json_t *b = body_of(&pl);
    check_chat(b, 3);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(b, "usage"), "completion_tokens")), 36);
    const char *c0 = str_at(json_object_get(json_array_get(json_object_get(b, "choices"), 0), "message"), "content");
    const char *c2 = str_at(json_object_get(json_array_get(json_object_get(b, "choices"), 2), "message"), "content");
    CHECK(c0 && c2 && strcmp(c0, c2) != 0); /* each choice its own lorem */
    /* streamed: the same texts, choice by choice */
    sim_plan s = plan_of(p, NULL, SIM_CHAT, "lorem",
                         "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":3,\"max_tokens\":12,\"stream\":true}", 0);
    stream_view v;
    view_stream(&s, true, &v);
    CHECK_INT(v.role_chunks, 3);
    CHECK(v.done);
    for (size_t i = 0; i < 3; i++) {
        const char *ci = str_at(json_object_get(json_array_get(json_object_get(b, "choices"), i), "message"), "content");
        CHECK(ci && strlen(ci) == v.len[i] && memcmp(ci, v.content[i], v.len[i]) == 0);
        CHECK_STR(v.finish[i], "length");
    }
    json_decref(b);
    pool_free(p);
}

TEST(sim_max_tokens_cut_gives_length)
{
    pool *p = pool_new(0);
    const char *long_msg = "{\"messages\":[{\"role\":\"user\",\"content\":\"alpha beta gamma delta epsilon\"}],";
    static const struct { const char *tail; const char *content, *finish; } cases[] = {
        { "\"max_tokens\":3}", "alpha beta", "length" },
        { "\"max_completion_tokens\":2,\"max_tokens\":50}", "alpha", "length" },
        { "\"max_tokens\":100}", "alpha beta gamma delta epsilon", "stop" },
        { "\"stop\":\" gamma\"}", "alpha beta", "stop" },
        { "\"stop\":[\"zzz\",\"delta\",\"beta\"]}", "alpha ", "stop" },
        { "\"stop\":[\"beta\"],\"max_tokens\":1}", "alp", "length" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        char req[256];
        snprintf(req, sizeof req, "%s%s", long_msg, cases[i].tail);
        sim_plan pl = plan_of(p, NULL, SIM_CHAT, "echo", req, 0);
        json_t *b = body_of(&pl);
        check_chat(b, 1);
        json_t *ch = json_array_get(json_object_get(b, "choices"), 0);
        CHECK_STR(str_at(json_object_get(ch, "message"), "content"), cases[i].content);
        CHECK_STR(str_at(ch, "finish_reason"), cases[i].finish);
        json_decref(b);
    }
    /* a huge echo is capped at SIM_MAX_ANSWER_TOKENS */
    size_t n = 200000;
    char *big = malloc(n + 100);
    int at = snprintf(big, 100, "{\"messages\":[{\"role\":\"user\",\"content\":\"");
    for (size_t i = 0; i < n; i++)
        big[at + i] = (i % 5 == 4) ? ' ' : 'w';
    memcpy(big + at + n, "\"}]}", 5);
    sim_plan pl = plan_of(p, NULL, SIM_CHAT, "echo", big, 0);
    CHECK_INT(pl.completion_tokens, SIM_MAX_ANSWER_TOKENS);
    json_t *b = body_of(&pl);
    CHECK_STR(str_at(json_array_get(json_object_get(b, "choices"), 0), "finish_reason"), "length");
    json_decref(b);
    free(big);
    /* many choices share SIM_MAX_TOTAL_TOKENS */
    pl = plan_of(p, NULL, SIM_CHAT, "lorem",
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":16,\"simulator\":{\"tokens\":4096}}", 0);
    CHECK_INT(pl.completion_tokens, SIM_MAX_TOTAL_TOKENS);
    b = body_of(&pl);
    check_chat(b, 16);
    CHECK_STR(str_at(json_array_get(json_object_get(b, "choices"), 15), "finish_reason"), "length");
    json_decref(b);
    pool_free(p);
}

TEST(sim_include_usage)
{
    pool *p = pool_new(0);
    sim_plan pl = plan_of(p, NULL, SIM_CHAT, "echo",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"a b c\"}],\"stream\":true,\"stream_options\":{\"include_usage\":true}}", 0);
    stream_view v;
    view_stream(&pl, true, &v);
    CHECK_INT(v.usage_chunks, 1);
    CHECK_INT(v.usage_completion, 3);
    CHECK(v.done);
    /* every other chunk carries "usage": null, and the usage chunk is last before [DONE] */
    for (size_t i = 0; i + 2 < pl.nsteps; i++) {
        json_t *ev = event_of(&pl.steps[i]);
        json_t *u = json_object_get(ev, "usage");
        CHECK(u && json_is_null(u));
        json_decref(ev);
    }
    json_t *ev = event_of(&pl.steps[pl.nsteps - 2]);
    CHECK_INT(json_array_size(json_object_get(ev, "choices")), 0);
    json_decref(ev);
    /* without include_usage: no usage key at all */
    pl = plan_of(p, NULL, SIM_CHAT, "echo", "{\"messages\":[{\"role\":\"user\",\"content\":\"a b c\"}],\"stream\":true}", 0);
    for (size_t i = 0; i + 1 < pl.nsteps; i++) {
        json_t *e2 = event_of(&pl.steps[i]);
        CHECK(json_object_get(e2, "usage") == NULL);
        json_decref(e2);
    }
    view_stream(&pl, true, &v);
    CHECK_INT(v.usage_chunks, 0);
    CHECK_MEM(v.content[0], v.len[0], "a b c");
    CHECK_STR(v.finish[0], "stop");
    pool_free(p);
}

/* ---- tools and response formats ---- */

static const char *weather_tools =
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"
    "\"days\":{\"type\":\"integer\",\"minimum\":2},\"unit\":{\"type\":\"string\",\"enum\":[\"c\",\"f\"]},"
    "\"exact\":{\"type\":[\"boolean\",\"null\"]},\"ratio\":{\"type\":\"number\"},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":1},"
    "\"where\":{\"$ref\":\"#/$defs/place\"},\"optional\":{\"type\":\"string\"}},"
    "\"required\":[\"city\",\"days\",\"unit\",\"exact\",\"ratio\",\"tags\",\"where\"],"
    "\"$defs\":{\"place\":{\"type\":\"object\",\"properties\":{\"lat\":{\"type\":\"number\"}},\"required\":[\"lat\"]}}}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"second\"}}]";

static void check_weather_args(const char *args)
{
    json_error_t je;
    json_t *a = json_loads(args ? args : "", 0, &je);
    CHECK(json_is_object(a));
    CHECK(json_is_string(json_object_get(a, "city")));
    CHECK_INT(json_integer_value(json_object_get(a, "days")), 2);
    CHECK_STR(str_at(a, "unit"), "c");
    CHECK(json_is_boolean(json_object_get(a, "exact")));
    CHECK(json_is_number(json_object_get(a, "ratio")));
    CHECK(json_array_size(json_object_get(a, "tags")) == 1 &&
          json_is_string(json_array_get(json_object_get(a, "tags"), 0)));
    CHECK(json_is_number(json_object_get(json_object_get(a, "where"), "lat")));
    CHECK(json_object_get(a, "optional") == NULL);
    json_decref(a);
}

TEST(sim_tool_call_non_stream)
{
    pool *p = pool_new(0);
    static const struct { const char *msg, *choice, *want; } cases[] = {
        { "hello", "\"required\"", "get_weather" },
        { "please use a Tool now", NULL, "get_weather" },
        { "please use a tool now", "\"auto\"", "get_weather" },
        { "toolbox talk", "\"auto\"", NULL },          /* not the word */
        { "hello", NULL, NULL },
        { "use the tool", "\"none\"", NULL },
        { "hello", "{\"type\":\"function\",\"function\":{\"name\":\"second\"}}", "second" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        char req[2048];
        snprintf(req, sizeof req, "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],%s%s%s}",
                 cases[i].msg, weather_tools, cases[i].choice ? ",\"tool_choice\":" : "",
                 cases[i].choice ? cases[i].choice : "");
        sim_plan pl = plan_of(p, NULL, SIM_CHAT, "echo", req, 0);
        CHECK_INT(pl.status, 200);
        json_t *b = body_of(&pl);
        check_chat(b, 1);
        json_t *ch = json_array_get(json_object_get(b, "choices"), 0);
        json_t *m = json_object_get(ch, "message");
        json_t *tc = json_array_get(json_object_get(m, "tool_calls"), 0);
        if (cases[i].want) {
            CHECK(json_is_null(json_object_get(m, "content")));
            CHECK_STR(str_at(ch, "finish_reason"), "tool_calls");
            CHECK(starts(str_at(tc, "id"), "call_sim_"));
            CHECK_STR(str_at(tc, "type"), "function");
            CHECK_STR(str_at(json_object_get(tc, "function"), "name"), cases[i].want);
            const char *args = str_at(json_object_get(tc, "function"), "arguments");
            if (strcmp(cases[i].want, "get_weather") == 0)
                check_weather_args(args);
            else
                CHECK_STR(args, "{}");
        } else {
            CHECK(tc == NULL);
            CHECK_STR(str_at(m, "content"), cases[i].msg);
        }
        json_decref(b);
    }
    pool_free(p);
}

TEST(sim_tool_call_stream)
{
    pool *p = pool_new(0);
    char req[2048];
    snprintf(req, sizeof req, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,\"tool_choice\":\"required\"}",
             weather_tools);
    sim_plan pl = plan_of(p, NULL, SIM_CHAT, "echo", req, 4);
    json_t *b = body_of(&pl);
    json_t *tc = json_array_get(json_object_get(json_object_get(json_array_get(json_object_get(b, "choices"), 0), "message"), "tool_calls"), 0);
    char stream_req[2100];
    snprintf(stream_req, sizeof stream_req, "%.*s,\"stream\":true}", (int)strlen(req) - 1, req);
    sim_plan s = plan_of(p, NULL, SIM_CHAT, "echo", stream_req, 4);
    stream_view v;
    view_stream(&s, true, &v);
    CHECK(v.tool_head[0]);
    CHECK_STR(v.call_id[0], str_at(tc, "id"));
    CHECK_STR(v.tool_name[0], "get_weather");
    v.content[0][v.len[0]] = '\0';
    CHECK_STR(v.content[0], str_at(json_object_get(tc, "function"), "arguments"));
    check_weather_args(v.content[0]);
    CHECK_STR(v.finish[0], "tool_calls");
    CHECK(v.done);
    CHECK(v.content_chunks > 5);
    json_decref(b);
    pool_free(p);
}

TEST(sim_response_format)
{
    pool *p = pool_new(0);
    sim_plan pl = plan_of(p, NULL, SIM_CHAT, "echo",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"say \\\"hi\\\"\"}],\"response_format\":{\"type\":\"json_object\"}}", 0);
    json_t *b = body_of(&pl);
    check_chat(b, 1);
    json_error_t je;
    json_t *c = json_loads(str_at(json_object_get(json_array_get(json_object_get(b, "choices"), 0), "message"), "content"), 0, &je);
    CHECK(json_is_object(c));
    CHECK_STR(str_at(c, "answer"), "say \"hi\"");
    json_decref(c);
    json_decref(b);
    pl = plan_of(p, NULL, SIM_CHAT, "lorem",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\","
        "\"json_schema\":{\"name\":\"person\",\"strict\":true,\"schema\":{\"type\":\"object\",\"properties\":{"
        "\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"},\"tall\":{\"type\":\"boolean\"},"
        "\"kids\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}},\"pet\":{\"anyOf\":[{\"type\":\"null\"},{\"type\":\"string\"}]},"
        "\"level\":{\"const\":\"max\"}},\"required\":[\"name\",\"age\",\"tall\",\"kids\",\"pet\",\"level\"]}}}}", 0);
    b = body_of(&pl);
    check_chat(b, 1);
    c = json_loads(str_at(json_object_get(json_array_get(json_object_get(b, "choices"), 0), "message"), "content"), 0, &je);
    CHECK(json_is_object(c));
    CHECK(json_is_string(json_object_get(c, "name")));
    CHECK(json_is_integer(json_object_get(c, "age")));
    CHECK(json_is_boolean(json_object_get(c, "tall")));
    CHECK(json_is_array(json_object_get(c, "kids")));
    CHECK(json_is_null(json_object_get(c, "pet")));
    CHECK_STR(str_at(c, "level"), "max");
    json_decref(c);
    json_decref(b);
    pool_free(p);
}

/* A hostile self-referencing schema with many required properties must
 * finish quickly with bounded, valid output. */
TEST(sim_schema_bomb_bounded)
{
    pool *p = pool_new(0);
    char req[4096];
    int at = snprintf(req, sizeof req,
                      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\","
                      "\"json_schema\":{\"name\":\"b\",\"schema\":{\"type\":\"object\",\"properties\":{");
    for (int i = 0; i < 40; i++)
        at += snprintf(req + at, sizeof req - (size_t)at, "%s\"p%d\":{\"$ref\":\"#\"}", i ? "," : "", i);
    at += snprintf(req + at, sizeof req - (size_t)at, "},\"required\":[");
    for (int i = 0; i < 40; i++)
        at += snprintf(req + at, sizeof req - (size_t)at, "%s\"p%d\"", i ? "," : "", i);
    snprintf(req + at, sizeof req - (size_t)at, "]}}}}");
    sim_plan pl = plan_of(p, NULL, SIM_CHAT, "echo", req, 0);
    CHECK_INT(pl.status, 200);
    json_t *b = body_of(&pl);
    check_chat(b, 1);
    CHECK(pl.steps[0].len < 200000);
    json_decref(b);
    pool_free(p);
}

/* ---- completions ---- */

TEST(sim_completions)
{
    pool *p = pool_new(0);
    sim_plan pl = plan_of(p, NULL, SIM_COMPLETIONS, "echo",
        "{\"model\":\"sim/echo\",\"prompt\":[\"Say this is a test\",[10,20,30]],\"n\":2}", 0);
    json_t *b = body_of(&pl);
    CHECK(starts(str_at(b, "id"), "cmpl-sim-"));
    CHECK_STR(str_at(b, "object"), "text_completion");
    CHECK(json_is_integer(json_object_get(b, "created")));
    CHECK_STR(str_at(b, "model"), "sim/echo");
    CHECK_STR(str_at(b, "system_fingerprint"), "genaiops-simulator");
    json_t *choices = json_object_get(b, "choices");
    CHECK_INT(json_array_size(choices), 4);
    static const char *texts[] = { "Say this is a test", "Say this is a test", "10 20 30", "10 20 30" };
    for (size_t i = 0; i < 4; i++) {
        json_t *ch = json_array_get(choices, i);
        CHECK_INT(json_integer_value(json_object_get(ch, "index")), i);
        CHECK_STR(str_at(ch, "text"), texts[i]);
        CHECK(json_is_null(json_object_get(ch, "logprobs")));
        CHECK_STR(str_at(ch, "finish_reason"), "stop");
    }
    check_usage(json_object_get(b, "usage"), true);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(b, "usage"), "prompt_tokens")),
              tokens_estimate("Say this is a test", 18) + 3);
    json_decref(b);
    /* default max_tokens is 16, as OpenAI's */
    pl = plan_of(p, NULL, SIM_COMPLETIONS, "lorem", "{\"prompt\":\"x\"}", 0);
    b = body_of(&pl);
    CHECK_STR(str_at(json_array_get(json_object_get(b, "choices"), 0), "finish_reason"), "length");
    CHECK_INT(pl.completion_tokens, 16);
    json_decref(b);
    /* streamed, with usage */
    pl = plan_of(p, NULL, SIM_COMPLETIONS, "echo",
                 "{\"prompt\":\"one two three\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}", 0);
    stream_view v;
    view_stream(&pl, false, &v);
    CHECK_MEM(v.content[0], v.len[0], "one two three");
    CHECK_STR(v.finish[0], "stop");
    CHECK_INT(v.usage_chunks, 1);
    CHECK_INT(v.usage_completion, tokens_estimate("one two three", 13));
    CHECK(v.done);
    pool_free(p);
}

/* ---- embeddings ---- */

static void vector_of(const json_t *item, float *out, size_t dims)
{
    json_t *e = json_object_get(item, "embedding");
    if (json_is_array(e)) {
        CHECK_INT(json_array_size(e), dims);
        for (size_t i = 0; i < dims; i++)
            out[i] = (float)json_number_value(json_array_get(e, i));
        return;
    }
    const char *s = json_string_value(e);
    CHECK(s != NULL);
    if (!s)
        return;
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char raw[4 * 4096];
    size_t n = 0, len = strlen(s);
    CHECK_INT(len, (dims * 4 + 2) / 3 * 4);
    for (size_t i = 0; i + 4 <= len; i += 4) {
        uint32_t x = 0;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            const char *at = strchr(tab, s[i + k]);
            if (s[i + k] == '=') {
                pad++;
                x <<= 6;
            } else {
                CHECK(at != NULL && s[i + k] != '\0');
                x = (x << 6) | (uint32_t)(at ? at - tab : 0);
            }
        }
        for (int k = 0; k < 3 - pad && n < sizeof raw; k++)
            raw[n++] = (unsigned char)(x >> (16 - 8 * k));
    }
    CHECK_INT(n, dims * 4);
    for (size_t i = 0; i < dims && i * 4 + 3 < n; i++) {
        uint32_t u = (uint32_t)raw[i * 4] | (uint32_t)raw[i * 4 + 1] << 8 | (uint32_t)raw[i * 4 + 2] << 16 |
                     (uint32_t)raw[i * 4 + 3] << 24;
        memcpy(&out[i], &u, 4);
    }
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

static void check_embeddings(const json_t *b, size_t n)
{
    CHECK_STR(str_at(b, "object"), "list");
    CHECK(json_is_string(json_object_get(b, "model")));
    CHECK_INT(json_array_size(json_object_get(b, "data")), n);
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(b, "data"), i, d) {
        CHECK_STR(str_at(d, "object"), "embedding");
        CHECK_INT(json_integer_value(json_object_get(d, "index")), i);
    }
    check_usage(json_object_get(b, "usage"), false);
}

TEST(sim_embeddings_float_and_base64)
{
    pool *p = pool_new(0);
    static float a[256], b64v[256], c[256], d[256], e[256];
    sim_plan pl = plan_of(p, NULL, SIM_EMBEDDINGS, "echo",
                          "{\"model\":\"sim/echo\",\"input\":[\"the cat sat on the mat\",\"The cat sat on a mat!\",\"quantum chromodynamics lecture\"]}", 0);
    json_t *b = body_of(&pl);
    check_embeddings(b, 3);
    CHECK(pl.prompt_tokens > 10);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(b, "usage"), "prompt_tokens")), pl.prompt_tokens);
    vector_of(json_array_get(json_object_get(b, "data"), 0), a, 256);
    vector_of(json_array_get(json_object_get(b, "data"), 1), c, 256);
    vector_of(json_array_get(json_object_get(b, "data"), 2), d, 256);
    CHECK(fabs(dot(a, a, 256) - 1.0) < 1e-5);
    CHECK(fabs(dot(c, c, 256) - 1.0) < 1e-5);
    CHECK(dot(a, c, 256) > dot(a, d, 256) + 0.3); /* shared words point the same way */
    json_decref(b);
    /* the same text alone, base64: the same vector bit for bit */
    pl = plan_of(p, NULL, SIM_EMBEDDINGS, "lorem",
                 "{\"input\":\"the cat sat on the mat\",\"encoding_format\":\"base64\"}", 5);
    b = body_of(&pl);
    check_embeddings(b, 1);
    vector_of(json_array_get(json_object_get(b, "data"), 0), b64v, 256);
    CHECK(memcmp(a, b64v, sizeof a) == 0);
    json_decref(b);
    /* dimensions, token-id input */
    pl = plan_of(p, NULL, SIM_EMBEDDINGS, "echo", "{\"input\":[[1,2,3],[4]],\"dimensions\":7}", 0);
    b = body_of(&pl);
    check_embeddings(b, 2);
    CHECK_INT(pl.prompt_tokens, 4);
    vector_of(json_array_get(json_object_get(b, "data"), 1), e, 7);
    CHECK(fabs(dot(e, e, 7) - 1.0) < 1e-5);
    json_decref(b);
    pl = plan_of(p, NULL, SIM_EMBEDDINGS, "echo", "{\"input\":[5,6],\"dimensions\":3,\"encoding_format\":\"base64\"}", 0);
    b = body_of(&pl);
    check_embeddings(b, 1);
    vector_of(json_array_get(json_object_get(b, "data"), 0), e, 3);
    CHECK(fabs(dot(e, e, 3) - 1.0) < 1e-5);
    json_decref(b);
    pool_free(p);
}

TEST(sim_embeddings_bad_requests)
{
    static const struct { const char *req, *param; } cases[] = {
        { "{}", "input" },
        { "{\"input\":\"\"}", "input" },
        { "{\"input\":[]}", "input" },
        { "{\"input\":42}", "input" },
        { "{\"input\":[\"a\",7]}", "input[1]" },
        { "{\"input\":[\"a\",\"\"]}", "input[1]" },
        { "{\"input\":[[1,2],[]]}", "input[1]" },
        { "{\"input\":[1,\"x\"]}", "input" },
        { "{\"input\":[-1]}", "input" },
        { "{\"input\":\"x\",\"dimensions\":0}", "dimensions" },
        { "{\"input\":\"x\",\"dimensions\":5000}", "dimensions" },
        { "{\"input\":\"x\",\"dimensions\":\"8\"}", "dimensions" },
        { "{\"input\":\"x\",\"encoding_format\":\"hex\"}", "encoding_format" },
        { "{\"input\":[\"a\",\"b\",\"c\"],\"dimensions\":4096,\"x\":0,\"simulator\":{}}", NULL },
    };
    pool *p = pool_new(0);
    for (size_t i = 0; i < countof(cases); i++) {
        sim_plan pl = plan_of(p, NULL, SIM_EMBEDDINGS, "echo", cases[i].req, 0);
        if (!cases[i].param) {
            CHECK_INT(pl.status, 200);
            continue;
        }
        if (pl.status != 400)
            test_fail(__FILE__, __LINE__, "case %zu: status %d", i, pl.status);
        json_t *b = body_of(&pl);
        CHECK_STR(str_at(check_error(b), "param"), cases[i].param);
        json_decref(b);
    }
    /* too many numbers in one request */
    char *big = malloc(20000);
    int at = snprintf(big, 100, "{\"dimensions\":4096,\"input\":[");
    for (int i = 0; i < 300; i++)
        at += snprintf(big + at, 20, "%s\"w%d\"", i ? "," : "", i);
    memcpy(big + at, "]}", 3);
    CHECK_INT(plan_of(p, NULL, SIM_EMBEDDINGS, "echo", big, 0).status, 400);
    free(big);
    pool_free(p);
}

/* ---- models ---- */

TEST(sim_models_list)
{
    pool *p = pool_new(0);
    sim_plan pl = plan_of(p, NULL, SIM_MODELS, "whatever", NULL, 0);
    CHECK_INT(pl.status, 200);
    json_t *b = body_of(&pl);
    CHECK_STR(str_at(b, "object"), "list");
    json_t *data = json_object_get(b, "data");
    CHECK_INT(json_array_size(data), 8);
    size_t i;
    json_t *m;
    json_array_foreach(data, i, m) {
        char want[64];
        snprintf(want, sizeof want, "sim/%s", sim_mode_name(i));
        CHECK_STR(str_at(m, "id"), want);
        CHECK_STR(str_at(m, "object"), "model");
        CHECK(json_is_integer(json_object_get(m, "created")));
        CHECK_STR(str_at(m, "owned_by"), "genaiops-simulator");
    }
    json_decref(b);
    pool_free(p);
}

/* ---- bad requests ---- */

TEST(sim_bad_chat_requests)
{
    static const struct { const char *req, *param, *code; } cases[] = {
        { "{}", "messages", "missing_required_parameter" },
        { "{\"messages\":\"hi\"}", "messages", "invalid_type" },
        { "{\"messages\":{}}", "messages", "invalid_type" },
        { "{\"messages\":[]}", "messages", "empty_array" },
        { "{\"messages\":[\"hi\"]}", "messages[0]", "invalid_type" },
        { "{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role", "missing_required_parameter" },
        { "{\"messages\":[{\"role\":7,\"content\":\"x\"}]}", "messages[0].role", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"bot\",\"content\":\"x\"}]}", "messages[1].role", "invalid_value" },
        { "{\"messages\":[{\"role\":\"user\"}]}", "messages[0].content", "missing_required_parameter" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":null}]}", "messages[0].content", "missing_required_parameter" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":[5]}]}", "messages[0].content[0]", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"x\"}]}]}", "messages[0].content[0].type", "missing_required_parameter" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}", "messages[0].content[0].text", "missing_required_parameter" },
        { "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "messages[0].tool_call_id", "missing_required_parameter" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"name\":1}]}", "messages[0].name", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":0}", "n", "integer_below_min_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":17}", "n", "integer_above_max_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":\"2\"}", "n", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":1.5}", "n", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}", "max_tokens", "integer_below_min_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":-3}", "max_completion_tokens", "integer_below_min_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":\"yes\"}", "stream", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream_options\":{\"include_usage\":true}}", "stream_options", "invalid_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true,\"stream_options\":{\"include_usage\":1}}", "stream_options.include_usage", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":5}", "stop", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop", "array_above_max_length" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"model\":5}", "model", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}", "temperature", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":-0.1}", "temperature", "decimal_below_min_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":2.5}", "temperature", "decimal_above_max_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"seed\":\"7\"}", "seed", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"seed\":1.5}", "seed", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":{}}", "tools", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"custom\"}]}", "tools[0].type", "invalid_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\"}]}", "tools[0].function", "missing_required_parameter" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"\"}}]}", "tools[0].function.name", "invalid_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":[]}}]}", "tools[0].function.parameters", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"auto\"}", "tool_choice", "invalid_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"sometimes\"}", "tool_choice", "invalid_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}}", "tool_choice", "invalid_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":\"json\"}", "response_format", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"xml\"}}", "response_format.type", "invalid_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{}}}", "response_format.json_schema.name", "missing_required_parameter" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"simulator\":5}", "simulator", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"simulator\":{\"latencyms\":5}}", "simulator", "unknown_parameter" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"simulator\":{\"latency_ms\":-1}}", "simulator.latency_ms", "integer_below_min_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"simulator\":{\"latency_ms\":600001}}", "simulator.latency_ms", "integer_above_max_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"simulator\":{\"token_ms\":\"5\"}}", "simulator.token_ms", "invalid_type" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"simulator\":{\"fail\":200}}", "simulator.fail", "integer_below_min_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"simulator\":{\"fail\":600}}", "simulator.fail", "integer_above_max_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"simulator\":{\"tokens\":100000}}", "simulator.tokens", "integer_above_max_value" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"simulator\":{\"fail_after\":-2}}", "simulator.fail_after", "integer_below_min_value" },
        { "[1,2]", NULL, NULL },
    };
    pool *p = pool_new(0);
    for (size_t i = 0; i < countof(cases); i++) {
        sim_plan pl = plan_of(p, NULL, SIM_CHAT, "echo", cases[i].req, 0);
        if (pl.status != 400) {
            test_fail(__FILE__, __LINE__, "case %zu (%s): status %d", i, cases[i].req, pl.status);
            continue;
        }
        CHECK_INT(pl.prompt_tokens, 0);
        json_t *b = body_of(&pl);
        json_t *e = check_error(b);
        CHECK_STR(str_at(e, "type"), "invalid_request_error");
        if (cases[i].param) {
            if (!str_at(e, "param") || strcmp(str_at(e, "param"), cases[i].param) != 0)
                test_fail(__FILE__, __LINE__, "case %zu: param %s, expected %s", i,
                          str_at(e, "param") ? str_at(e, "param") : "null", cases[i].param);
            CHECK_STR(str_at(e, "code"), cases[i].code);
        }
        json_decref(b);
    }
    /* no body at all */
    sim_plan pl = plan_of(p, NULL, SIM_CHAT, "echo", NULL, 0);
    CHECK_INT(pl.status, 400);
    /* error modes still answer 400 for a bad body (validation comes first) */
    CHECK_INT(plan_of(p, NULL, SIM_CHAT, "error-429", "{}", 0).status, 400);
    pool_free(p);
}

TEST(sim_bad_completions_requests)
{
    static const struct { const char *req, *param; } cases[] = {
        { "{}", "prompt" },
        { "{\"prompt\":5}", "prompt" },
        { "{\"prompt\":[]}", "prompt" },
        { "{\"prompt\":[\"a\",5]}", "prompt[1]" },
        { "{\"prompt\":[1,\"a\"]}", "prompt" },
        { "{\"prompt\":[[1],[]]}", "prompt[1]" },
        { "{\"prompt\":\"x\",\"n\":9,\"max_tokens\":5,\"stop\":null,\"x\":[\"a\",\"b\"]}", NULL },
        { "{\"prompt\":[\"a\",\"b\"],\"n\":9}", "prompt" },
        { "{\"prompt\":\"x\",\"max_tokens\":0}", "max_tokens" },
        { "{\"prompt\":\"x\",\"temperature\":3}", "temperature" },
        { "{\"prompt\":\"x\",\"seed\":true}", "seed" },
    };
    pool *p = pool_new(0);
    for (size_t i = 0; i < countof(cases); i++) {
        sim_plan pl = plan_of(p, NULL, SIM_COMPLETIONS, "echo", cases[i].req, 0);
        if (!cases[i].param) {
            CHECK_INT(pl.status, 200);
            continue;
        }
        if (pl.status != 400) {
            test_fail(__FILE__, __LINE__, "case %zu: status %d", i, pl.status);
            continue;
        }
        json_t *b = body_of(&pl);
        CHECK_STR(str_at(check_error(b), "param"), cases[i].param);
        json_decref(b);
    }
    pool_free(p);
}

/* Configured strings that are not UTF-8 still give valid JSON. */
TEST(sim_invalid_utf8_canned)
{
    pool *p = pool_new(0);
    static const char *answers[] = { "bad \xff\xfe bytes \xc3" };
    sim_options o = base_opts;
    o.canned = answers;
    o.ncanned = 1;
    sim_plan pl = plan_of(p, &o, SIM_CHAT, "canned", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    json_t *b = body_of(&pl);
    CHECK_STR(str_at(json_object_get(json_array_get(json_object_get(b, "choices"), 0), "message"), "content"),
              "bad ?? bytes ?");
    json_decref(b);
    pl = plan_of(p, &o, SIM_CHAT, "canned", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true}", 0);
    stream_view v;
    view_stream(&pl, true, &v);
    CHECK(v.done);
    pool_free(p);
}

/* ---- out of memory ---- */

static long alloc_countdown;

static void *failing_malloc(size_t n)
{
    if (alloc_countdown > 0 && --alloc_countdown == 0)
        return NULL;
    return malloc(n);
}

/* Fails jansson's Nth allocation for every N until a plan succeeds: each
 * run returns ERR_NOMEM or ERR_OK, never crashes or leaks (under ASan). */
TEST(sim_jansson_oom)
{
    static const struct { sim_endpoint ep; const char *mode, *req; } cases[] = {
        { SIM_CHAT, "lorem", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2,\"stream\":true,"
                             "\"stream_options\":{\"include_usage\":true},\"simulator\":{\"tokens\":5}}" },
        { SIM_CHAT, "echo", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"required\","
                            "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":"
                            "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\",\"minItems\":2}},\"required\":[\"a\"]}}}]}" },
        { SIM_CHAT, "echo", "{\"messages\":[],\"x\":1}" },
        { SIM_COMPLETIONS, "echo", "{\"prompt\":[\"a b\",\"c\"]}" },
        { SIM_EMBEDDINGS, "echo", "{\"input\":[\"a b\",\"c\"],\"dimensions\":8}" },
        { SIM_MODELS, NULL, "{}" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        bool ok = false, saw_nomem = false;
        for (long n = 1; n < 5000 && !ok; n++) {
            json_t *req = json_loads(cases[i].req, 0, NULL);
            pool *p = pool_new(0);
            sim_plan pl;
            alloc_countdown = n;
            json_set_alloc_funcs(failing_malloc, free);
            err_code e = sim_plan_make(&base_opts, cases[i].ep, cases[i].mode, req, 1, p, &pl);
            json_set_alloc_funcs(malloc, free);
            alloc_countdown = 0;
            CHECK(e == ERR_OK || e == ERR_NOMEM);
            if (e == ERR_NOMEM) {
                CHECK(pl.nsteps == 0 && pl.steps == NULL);
                saw_nomem = true;
            }
            ok = e == ERR_OK;
            json_decref(req);
            pool_free(p);
        }
        CHECK(ok);
        CHECK(saw_nomem);
    }
}

/* ---- golden files ---- */

TEST(sim_golden_plans)
{
    static const struct { const char *file; sim_endpoint ep; const char *mode, *req; } cases[] = {
        { "simulator/chat_echo.out", SIM_CHAT, "echo",
          "{\"model\":\"sim/echo\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello, simulator!\"}]}" },
        { "simulator/chat_lorem_stream.out", SIM_CHAT, "lorem",
          "{\"model\":\"sim/lorem\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true,"
          "\"stream_options\":{\"include_usage\":true},\"max_tokens\":6}" },
        { "simulator/chat_tool_stream.out", SIM_CHAT, "echo",
          "{\"model\":\"sim/echo\",\"messages\":[{\"role\":\"user\",\"content\":\"use a tool\"}],\"stream\":true,"
          "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup\",\"parameters\":{\"type\":\"object\","
          "\"properties\":{\"q\":{\"type\":\"string\"}},\"required\":[\"q\"]}}}]}" },
        { "simulator/completion.out", SIM_COMPLETIONS, "lorem", "{\"model\":\"sim/lorem\",\"prompt\":\"Once\",\"max_tokens\":8}" },
        { "simulator/embedding.out", SIM_EMBEDDINGS, "echo", "{\"model\":\"sim/echo\",\"input\":\"hello\",\"dimensions\":4}" },
        { "simulator/error_400.out", SIM_CHAT, "echo", "{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}" },
    };
    pool *p = pool_new(0);
    for (size_t i = 0; i < countof(cases); i++) {
        sim_plan pl = plan_of(p, NULL, cases[i].ep, cases[i].mode, cases[i].req, 3);
        size_t len;
        char *got = concat_steps(&pl, &len);
        if (getenv("SIM_UPDATE_GOLDEN")) {
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", test_data_dir(), cases[i].file);
            FILE *f = fopen(path, "wb");
            if (f) {
                fwrite(got, 1, len, f);
                fclose(f);
            }
        } else {
            size_t wlen = 0;
            char *want = test_read_data(cases[i].file, &wlen);
            if (want && (wlen != len || memcmp(want, got, len) != 0))
                test_fail(__FILE__, __LINE__, "%s differs; got:\n%s", cases[i].file, got);
            free(want);
        }
        free(got);
    }
    pool_free(p);
}

/* ---- sampling: temperature > 0 without a seed ---- */

/* The first choice of a chat plan as one string: its content, or
 * "name args" for a tool call. Written into out (cap bytes). */
static void answer_of(pool *p, const sim_options *o, const char *mode, const char *req, uint64_t seq, char *out,
                      size_t cap)
{
    sim_plan pl = plan_of(p, o, SIM_CHAT, mode, req, seq);
    json_t *b = body_of(&pl);
    json_t *m = json_object_get(json_array_get(json_object_get(b, "choices"), 0), "message");
    json_t *fn = json_object_get(json_array_get(json_object_get(m, "tool_calls"), 0), "function");
    if (fn)
        snprintf(out, cap, "%s %s", str_at(fn, "name"), str_at(fn, "arguments"));
    else
        snprintf(out, cap, "%s", str_at(m, "content") ? str_at(m, "content") : "(null)");
    json_decref(b);
}

/* How many of seqs 0..n-1 answer something other than the most common
 * answer (the deterministic one), and how many distinct answers there are. */
static void count_variants(pool *p, const sim_options *o, const char *mode, const char *req, int n, int *deviating,
                           int *distinct)
{
    enum { CAP = 1200 };
    static char answers[200][CAP];
    if (n > 200)
        n = 200;
    for (int i = 0; i < n; i++)
        answer_of(p, o, mode, req, (uint64_t)i, answers[i], CAP);
    int best = 0, best_count = 0;
    *distinct = 0;
    for (int i = 0; i < n; i++) {
        int same = 0, first = 1;
        for (int j = 0; j < n; j++) {
            if (strcmp(answers[i], answers[j]) == 0) {
                same++;
                if (j < i)
                    first = 0;
            }
        }
        *distinct += first;
        if (same > best_count) {
            best_count = same;
            best = i;
        }
    }
    (void)best;
    *deviating = n - best_count;
}

#define LOREM_REQ(extra) "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me about refunds\"}]" extra "}"

TEST(sim_sampling_lorem_varies_with_temperature)
{
    pool *p = pool_new(0);
    int dev, distinct;
    count_variants(p, NULL, "lorem", LOREM_REQ(",\"temperature\":0.9"), 60, &dev, &distinct);
    /* p = 0.45 per answer: about 27 of 60 deviate, each with its own text */
    CHECK(dev >= 12 && dev <= 45);
    CHECK(distinct >= 10);
    /* a sampled answer keeps the length: exactly max_tokens tokens */
    for (uint64_t seq = 0; seq < 10; seq++) {
        sim_plan pl = plan_of(p, NULL, SIM_CHAT, "lorem", LOREM_REQ(",\"temperature\":0.9,\"max_tokens\":20"), seq);
        json_t *b = body_of(&pl);
        CHECK_INT(json_integer_value(json_object_get(json_object_get(b, "usage"), "completion_tokens")), 20);
        CHECK_STR(str_at(json_array_get(json_object_get(b, "choices"), 0), "finish_reason"), "length");
        json_decref(b);
    }
    /* more variation at a higher temperature */
    int low, high;
    count_variants(p, NULL, "lorem", LOREM_REQ(",\"temperature\":0.3"), 150, &low, &distinct);
    count_variants(p, NULL, "lorem", LOREM_REQ(",\"temperature\":1.6"), 150, &high, &distinct);
    CHECK(low > 0);
    CHECK(high > low + 30);
    /* temperature 2: every answer deviates from the deterministic one */
    char base[1200], got[1200];
    answer_of(p, NULL, "lorem", LOREM_REQ(",\"temperature\":2,\"seed\":1"), 0, base, sizeof base);
    count_variants(p, NULL, "lorem", LOREM_REQ(",\"temperature\":2"), 40, &dev, &distinct);
    CHECK(distinct >= 35);
    /* the same seq gives the same sampled answer, streamed or not */
    answer_of(p, NULL, "lorem", LOREM_REQ(",\"temperature\":1.2"), 17, base, sizeof base);
    answer_of(p, NULL, "lorem", LOREM_REQ(",\"temperature\":1.2"), 17, got, sizeof got);
    CHECK_STR(got, base);
    sim_plan s = plan_of(p, NULL, SIM_CHAT, "lorem", LOREM_REQ(",\"temperature\":1.2,\"stream\":true"), 17);
    stream_view v;
    view_stream(&s, true, &v);
    v.content[0][v.len[0]] = '\0';
    CHECK_STR(v.content[0], base);
    pool_free(p);
}

TEST(sim_sampling_off_is_deterministic)
{
    pool *p = pool_new(0);
    static const char *const reqs[] = {
        LOREM_REQ(""),                                   /* absent: OpenAI's default 1, but no sampling */
        LOREM_REQ(",\"temperature\":0"),
        LOREM_REQ(",\"temperature\":0.9,\"seed\":7"),    /* a seed fixes it */
        LOREM_REQ(",\"temperature\":2,\"seed\":7"),
        LOREM_REQ(",\"temperature\":null"),              /* null is absent */
    };
    for (size_t i = 0; i < countof(reqs); i++) {
        int dev, distinct;
        count_variants(p, NULL, "lorem", reqs[i], 30, &dev, &distinct);
        if (dev != 0 || distinct != 1)
            test_fail(__FILE__, __LINE__, "%s: %d deviating, %d distinct", reqs[i], dev, distinct);
    }
    /* the seed is part of the request: another seed, another (fixed) answer */
    char a[1200], b[1200];
    answer_of(p, NULL, "lorem", reqs[2], 0, a, sizeof a);
    answer_of(p, NULL, "lorem", LOREM_REQ(",\"temperature\":0.9,\"seed\":8"), 0, b, sizeof b);
    CHECK(strcmp(a, b) != 0);
    /* echo never varies */
    int dev, distinct;
    count_variants(p, NULL, "echo", LOREM_REQ(",\"temperature\":1.9"), 30, &dev, &distinct);
    CHECK_INT(dev, 0);
    answer_of(p, NULL, "echo", LOREM_REQ(",\"temperature\":1.9"), 5, a, sizeof a);
    CHECK_STR(a, "Tell me about refunds");
    pool_free(p);
}

TEST(sim_sampling_canned)
{
    pool *p = pool_new(0);
    static const char *answers[] = { "First answer.", "Second answer.", "Third." };
    sim_options o = base_opts;
    o.canned = answers;
    o.ncanned = 3;
    int off_cycle = 0;
    for (uint64_t seq = 0; seq < 60; seq++) {
        char got[200];
        answer_of(p, &o, "canned", LOREM_REQ(",\"temperature\":1"), seq, got, sizeof got);
        CHECK(strcmp(got, answers[0]) == 0 || strcmp(got, answers[1]) == 0 || strcmp(got, answers[2]) == 0);
        off_cycle += strcmp(got, answers[seq % 3]) != 0;
        answer_of(p, &o, "canned", LOREM_REQ(",\"temperature\":1,\"seed\":3"), seq, got, sizeof got);
        CHECK_STR(got, answers[seq % 3]);        /* a seed: the cycle as before */
    }
    CHECK(off_cycle >= 15 && off_cycle <= 45); /* p = 0.5 */
    pool_free(p);
}

static const char *support_tools =
    "\"tools\":["
    "{\"type\":\"function\",\"function\":{\"name\":\"lookup_order\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"order_id\":{\"type\":\"string\"},\"channel\":{\"type\":\"string\",\"enum\":[\"web\",\"app\",\"phone\"]},"
    "\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":5},\"score\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1},"
    "\"urgent\":{\"type\":\"boolean\"},\"fixed\":{\"const\":\"v1\"},"
    "\"notes\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":2}},"
    "\"required\":[\"order_id\",\"channel\",\"days\",\"score\",\"urgent\",\"fixed\",\"notes\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"refund\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"amount\":{\"type\":\"number\"}},\"required\":[\"amount\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"escalate\"}}]";

TEST(sim_sampling_tool_choice_and_arguments)
{
    pool *p = pool_new(0);
    char req[2048], got[1200];
    int seen_tool[3] = { 0, 0, 0 }, seen_channel[3] = { 0, 0, 0 }, seen_days[6] = { 0 }, seen_urgent[2] = { 0, 0 };
    int seen_notes[3] = { 0, 0, 0 }, seen_id_other = 0;
    snprintf(req, sizeof req, "{\"messages\":[{\"role\":\"user\",\"content\":\"use a tool\"}],%s,"
             "\"tool_choice\":\"auto\",\"temperature\":1.2}", support_tools);
    for (uint64_t seq = 0; seq < 120; seq++) {
        answer_of(p, NULL, "lorem", req, seq, got, sizeof got);
        static const char *const names[3] = { "lookup_order ", "refund ", "escalate " };
        int t = -1;
        for (int i = 0; i < 3; i++)
            if (strncmp(got, names[i], strlen(names[i])) == 0)
                t = i;
        CHECK(t >= 0);
        if (t < 0)
            continue;
        seen_tool[t]++;
        if (t != 0)
            continue;
        json_t *a = json_loads(got + strlen(names[0]), 0, NULL);
        CHECK(json_is_object(a));
        const char *ch = str_at(a, "channel");
        for (int i = 0; i < 3; i++)
            if (ch && strcmp(ch, (const char *[]){ "web", "app", "phone" }[i]) == 0)
                seen_channel[i]++;
        json_int_t d = json_integer_value(json_object_get(a, "days"));
        CHECK(json_is_integer(json_object_get(a, "days")) && d >= 1 && d <= 5);
        if (d >= 1 && d <= 5)
            seen_days[d]++;
        double sc = json_number_value(json_object_get(a, "score"));
        CHECK(json_is_number(json_object_get(a, "score")) && sc >= 0 && sc <= 1);
        CHECK(json_is_boolean(json_object_get(a, "urgent")));
        seen_urgent[json_is_true(json_object_get(a, "urgent"))]++;
        CHECK_STR(str_at(a, "fixed"), "v1");                  /* const never varies */
        size_t nn = json_array_size(json_object_get(a, "notes"));
        CHECK(nn <= 2);
        if (nn <= 2)
            seen_notes[nn]++;
        CHECK(json_is_string(json_object_get(a, "order_id")));
        seen_id_other += strcmp(str_at(a, "order_id") ? str_at(a, "order_id") : "", "sim") != 0;
        json_decref(a);
    }
    /* p = 0.6: the first tool about 40% of the time, the others share the rest */
    CHECK(seen_tool[0] >= 25 && seen_tool[1] >= 15 && seen_tool[2] >= 15);
    CHECK(seen_channel[0] > 0 && seen_channel[1] > 0 && seen_channel[2] > 0);
    int day_values = 0;
    for (int i = 1; i <= 5; i++)
        day_values += seen_days[i] > 0;
    CHECK(day_values >= 3);
    CHECK(seen_urgent[0] > 0 && seen_urgent[1] > 0);
    CHECK(seen_notes[0] > 0 && seen_notes[1] > 0);
    CHECK(seen_id_other > 0);

    /* temperature 0, a seed, or tool_choice "required" / named: always the same call */
    static const char *const fixed[] = {
        ",\"tool_choice\":\"auto\",\"temperature\":0",
        ",\"tool_choice\":\"auto\",\"temperature\":1.2,\"seed\":5",
        ",\"temperature\":1.2,\"seed\":5",
        ",\"tool_choice\":\"required\",\"temperature\":0,\"n\":1",
    };
    for (size_t i = 0; i < countof(fixed); i++) {
        snprintf(req, sizeof req, "{\"messages\":[{\"role\":\"user\",\"content\":\"use a tool\"}],%s%s}", support_tools,
                 fixed[i]);
        int dev, distinct;
        count_variants(p, NULL, "lorem", req, 30, &dev, &distinct);
        if (dev != 0)
            test_fail(__FILE__, __LINE__, "%s: %d deviating", fixed[i], dev);
        answer_of(p, NULL, "lorem", req, 0, got, sizeof got);
        CHECK(strncmp(got, "lookup_order {", 14) == 0);
    }
    /* the deterministic arguments are the documented placeholders */
    CHECK(strstr(got, "\"channel\":\"web\"") && strstr(got, "\"days\":1") && strstr(got, "\"urgent\":true") &&
          strstr(got, "\"notes\":[]") && strstr(got, "\"order_id\":\"sim\""));
    /* "required" with sampling picks the first tool, only its arguments vary */
    snprintf(req, sizeof req, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,\"tool_choice\":\"required\","
             "\"temperature\":1.5}", support_tools);
    int dev, distinct;
    count_variants(p, NULL, "lorem", req, 30, &dev, &distinct);
    CHECK(dev > 0);
    for (uint64_t seq = 0; seq < 30; seq++) {
        answer_of(p, NULL, "lorem", req, seq, got, sizeof got);
        CHECK(strncmp(got, "lookup_order {", 14) == 0);
    }
    pool_free(p);
}

TEST(sim_sampling_json_schema_and_n)
{
    pool *p = pool_new(0);
    const char *req = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":1,"
                      "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"r\",\"schema\":"
                      "{\"type\":\"object\",\"properties\":{\"grade\":{\"enum\":[\"A\",\"B\",\"C\"]}},"
                      "\"required\":[\"grade\"]}}}}";
    int dev, distinct;
    count_variants(p, NULL, "lorem", req, 40, &dev, &distinct);
    CHECK(dev > 5);
    CHECK(distinct == 3);
    /* n choices sample independently */
    sim_plan pl = plan_of(p, NULL, SIM_CHAT, "lorem", LOREM_REQ(",\"temperature\":2,\"n\":4"), 9);
    json_t *b = body_of(&pl);
    json_t *chs = json_object_get(b, "choices");
    const char *c0 = str_at(json_object_get(json_array_get(chs, 0), "message"), "content");
    int differ = 0;
    for (size_t i = 1; i < 4; i++)
        differ += strcmp(c0, str_at(json_object_get(json_array_get(chs, i), "message"), "content")) != 0;
    CHECK_INT(differ, 3);
    json_decref(b);
    pool_free(p);
}

TEST(sim_sampling_number_ranges)
{
    pool *p = pool_new(0);
    static const struct {
        const char *schema;
        double lo, hi;
        int min_distinct;
    } cases[] = {
        { "{\"type\":\"integer\",\"maximum\":-3}", -12, -3, 3 },
        { "{\"type\":\"integer\",\"minimum\":100}", 100, 109, 3 },
        { "{\"type\":\"integer\"}", 1, 10, 3 },
        { "{\"type\":\"integer\",\"maximum\":50}", 1, 10, 3 },
        { "{\"type\":\"integer\",\"minimum\":7,\"maximum\":8}", 7, 8, 1 },  /* always the other one: 8 */
        { "{\"type\":\"number\",\"maximum\":0.5}", -8.5, 0.5, 3 },
        { "{\"type\":\"number\",\"minimum\":-1,\"maximum\":1}", -1, 1, 3 },
        { "{\"type\":\"integer\",\"minimum\":5,\"maximum\":2}", 5, 5, 1 },  /* empty range: the fixed value */
        { "{\"type\":\"integer\",\"minimum\":1e300}", 1, 1, 1 },            /* out of reach: the fixed value */
        { "{\"type\":\"number\",\"minimum\":-1e300,\"maximum\":-1e299}", -1e300, -1e299, 1 },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        char req[1024];
        snprintf(req, sizeof req, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":2,"
                 "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\","
                 "\"properties\":{\"v\":%s},\"required\":[\"v\"]}}}],\"tool_choice\":\"required\"}", cases[i].schema);
        double seen[40];
        int distinct = 0;
        for (uint64_t seq = 0; seq < 40; seq++) {
            char got[400];
            answer_of(p, NULL, "lorem", req, seq, got, sizeof got);
            json_t *a = json_loads(got + 2, 0, NULL);  /* after "f " */
            json_t *v = json_object_get(a, "v");
            double x = json_number_value(v);
            if (!json_is_number(v) || x < cases[i].lo || x > cases[i].hi)
                test_fail(__FILE__, __LINE__, "%s: %s out of [%g, %g]", cases[i].schema, got, cases[i].lo, cases[i].hi);
            int k = 0;
            while (k < distinct && seen[k] != x)
                k++;
            if (k == distinct)
                seen[distinct++] = x;
            json_decref(a);
        }
        if (distinct < cases[i].min_distinct)
            test_fail(__FILE__, __LINE__, "%s: only %d distinct values", cases[i].schema, distinct);
    }
    pool_free(p);
}
