/*
 * test_grader.c - model-graded assertions and command evaluators
 * (src/eval/grader.c) and the text/vector helpers (src/eval/textsim.c).
 *
 * Every graded type is driven through its state machine with scripted
 * replies: good JSON, fenced JSON, garbage then a repaired reply, garbage
 * twice (an error), a transport error (an error, never a fail), and
 * embeddings given as small hand-made vectors. The scripts also check what
 * the grader asks for: the call kind, the provider, the JSON flag, and
 * that the prompt holds the answer, the value and the variables. Then
 * ev_command_check runs small `sh -c` commands: printf of JSON, a bare
 * number, exit 3, a sleep past a 200 ms timeout, stdin contents.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "eval/grader.h"
#include "eval/textsim.h"
#include "test.h"

/* ---- building assertions and outputs ------------------------------------------ */

typedef struct fixture {
    ev_assert a;
    ev_output o;
    json_t *vars;
} fixture;

/* value, config and vars are JSON texts (NULL for none). */
static void fx_init(fixture *f, const char *type, bool negate, const char *value, double threshold,
                    const char *config, const char *text, const char *prompt, const char *vars)
{
    memset(f, 0, sizeof *f);
    f->a.type = (char *)type;
    f->a.negate = negate;
    f->a.value = value ? json_loads(value, JSON_DECODE_ANY, NULL) : NULL;
    if (value && !f->a.value)
        test_fail(__FILE__, __LINE__, "bad value JSON %s", value);
    f->a.threshold = threshold;
    f->a.weight = 1;
    f->a.config = config ? json_loads(config, 0, NULL) : NULL;
    f->a.provider = "judge-model";
    f->vars = json_loads(vars ? vars : "{}", 0, NULL);
    f->o.text = text;
    f->o.len = strlen(text);
    f->o.prompt = prompt;
    f->o.vars = f->vars;
    f->o.latency_ms = NAN;
    f->o.cost_usd = NAN;
}

static void fx_free(fixture *f)
{
    json_decref(f->a.value);
    json_decref(f->a.config);
    json_decref(f->vars);
}

/* ---- scripted replies ------------------------------------------------------------ */

enum { S_CHAT, S_CHAT_FAIL, S_EMBED, S_EMBED_FAIL };

typedef struct step {
    int kind;
    const char *text;          /* CHAT: the reply; *_FAIL: the message */
    const double *vecs[8];     /* EMBED */
    size_t dim;
} step;

#define MAX_CALLS 16
static char *seen_msgs[MAX_CALLS];    /* each chat call's messages as JSON text */
static size_t seen_ntexts[MAX_CALLS]; /* each embed call's text count */
static char *seen_texts[MAX_CALLS][8];
static size_t ncalls;

static void seen_clear(void)
{
    for (size_t i = 0; i < MAX_CALLS; i++) {
        free(seen_msgs[i]);
        seen_msgs[i] = NULL;
        for (size_t k = 0; k < 8; k++) {
            free(seen_texts[i][k]);
            seen_texts[i][k] = NULL;
        }
        seen_ntexts[i] = 0;
    }
    ncalls = 0;
}

/* OpenAI's JSON mode wants the word JSON in the messages. */
static bool has_json_word(const json_t *messages)
{
    char *d = json_dumps(messages, 0);
    bool yes = d && strcasestr(d, "json");
    free(d);
    return yes;
}

/* Runs the check with the scripted replies; the result goes to *r. Every
 * scripted step must be asked for, in order, and no more. */
static void run(fixture *f, const step *steps, size_t nsteps, ev_result *r)
{
    ev_grader *g = NULL;
    ev_call call;
    seen_clear();
    memset(r, 0, sizeof *r);
    if (ev_grader_new(&f->a, &f->o, &g) != ERR_OK || !g) {
        test_fail(__FILE__, __LINE__, "ev_grader_new failed for %s", f->a.type);
        r->verdict = EV_ERROR;
        return;
    }
    while (ev_grader_next(g, &call, r)) {
        if (ncalls >= nsteps || ncalls >= MAX_CALLS) {
            test_fail(__FILE__, __LINE__, "%s asked for call %zu, only %zu scripted", f->a.type, ncalls + 1, nsteps);
            ev_grader_reply_chat(g, ERR_UPSTREAM, NULL, "script ended");
            continue;
        }
        const step *s = &steps[ncalls];
        if (call.provider != f->a.provider)
            test_fail(__FILE__, __LINE__, "call %zu: provider not passed through", ncalls + 1);
        if (call.kind == EV_CALL_CHAT) {
            if (!call.json_output && has_json_word(call.messages))
                test_fail(__FILE__, __LINE__, "call %zu: the messages ask for JSON, JSON mode is off", ncalls + 1);
            if (call.json_output && !has_json_word(call.messages))
                test_fail(__FILE__, __LINE__, "call %zu: JSON mode but no message says JSON", ncalls + 1);
            if (!json_is_array(call.messages))
                test_fail(__FILE__, __LINE__, "call %zu: messages not an array", ncalls + 1);
            seen_msgs[ncalls] = json_dumps(call.messages, JSON_COMPACT);
        } else {
            seen_ntexts[ncalls] = call.ntexts;
            for (size_t k = 0; k < call.ntexts && k < 8; k++)
                seen_texts[ncalls][k] = strdup(call.texts[k]);
        }
        bool want_chat = s->kind == S_CHAT || s->kind == S_CHAT_FAIL;
        if (want_chat != (call.kind == EV_CALL_CHAT))
            test_fail(__FILE__, __LINE__, "call %zu: %s asked for %s", ncalls + 1, f->a.type,
                      call.kind == EV_CALL_CHAT ? "chat" : "embeddings");
        /* asking again before replying gives the same call */
        ev_call again;
        ev_result unused = { 0 };
        if (!ev_grader_next(g, &again, &unused) || again.kind != call.kind || again.messages != call.messages)
            test_fail(__FILE__, __LINE__, "call %zu: next() twice changed the call", ncalls + 1);
        ncalls++;
        switch (s->kind) {
        case S_CHAT: ev_grader_reply_chat(g, ERR_OK, s->text, NULL); break;
        case S_CHAT_FAIL: ev_grader_reply_chat(g, ERR_UPSTREAM, NULL, s->text); break;
        case S_EMBED: ev_grader_reply_embed(g, ERR_OK, s->vecs, s->dim, NULL); break;
        case S_EMBED_FAIL: ev_grader_reply_embed(g, ERR_TIMEOUT, NULL, 0, s->text); break;
        }
    }
    if (ncalls != nsteps)
        test_fail(__FILE__, __LINE__, "%s made %zu calls, %zu scripted", f->a.type, ncalls, nsteps);
    if (isnan(r->score))
        test_fail(__FILE__, __LINE__, "%s: NaN score", f->a.type);
    /* a finished grader keeps answering with the same result */
    ev_result again = { 0 };
    if (ev_grader_next(g, &call, &again) || again.verdict != r->verdict || again.score != r->score)
        test_fail(__FILE__, __LINE__, "%s: second next() after the end differs", f->a.type);
    ev_result_clear(&again);
    ev_grader_free(g);
}

static bool has(const char *hay, const char *needle) { return hay && needle && strstr(hay, needle) != NULL; }

#define CHECK_NEAR(a, b) CHECK(fabs((a) - (b)) < 1e-9)
#define CHAT(t) { S_CHAT, (t), { 0 }, 0 }
#define CHAT_FAIL(t) { S_CHAT_FAIL, (t), { 0 }, 0 }

/* ---- llm-rubric ------------------------------------------------------------------- */

typedef struct rubric_case {
    const char *name;
    bool negate;
    double threshold;
    const char *replies[2];  /* second used only after a repair */
    size_t ncalls;
    ev_verdict verdict;
    double score;
    const char *reason_has;
} rubric_case;

TEST(grader_llm_rubric_table)
{
    static const rubric_case cases[] = {
        { "good", false, NAN, { "{\"reason\":\"clear and concise\",\"pass\":true,\"score\":0.9}" }, 1, EV_PASS, 0.9,
          "clear and concise" },
        { "fenced", false, NAN, { "Here you go:\n```json\n{\"reason\":\"apologises\",\"pass\":false,\"score\":0.2}\n```\n" },
          1, EV_FAIL, 0.2, "apologises" },
        { "prose around", false, NAN, { "My verdict {as asked}: {\"pass\": true, \"score\": 1, \"reason\": \"ok\"} done" },
          1, EV_PASS, 1, "ok" },
        { "repaired", false, NAN, { "I think it passes.", "{\"reason\":\"fine\",\"pass\":true,\"score\":0.8}" }, 2,
          EV_PASS, 0.8, "fine" },
        { "garbage twice", false, NAN, { "I think it passes.", "Still not JSON" }, 2, EV_ERROR, 0,
          "judge reply not valid JSON: no JSON object in the reply" },
        { "score a string", false, NAN, { "{\"pass\":true,\"score\":\"0.9\"}", "{\"pass\":true,\"score\":\"high\"}" }, 2,
          EV_ERROR, 0, "key 'score' is not a number" },
        { "pass a string", false, NAN, { "{\"pass\":\"yes\",\"score\":1}", "{\"pass\":\"yes\",\"score\":1}" }, 2, EV_ERROR,
          0, "key 'pass' is not a boolean" },
        { "no keys", false, NAN, { "{\"reason\":\"x\"}", "{\"verdict\":true}" }, 2, EV_ERROR, 0,
          "missing keys 'pass' and 'score'" },
        { "duplicate keys", false, NAN, { "{\"pass\":true,\"pass\":false}", "{\"pass\":false,\"score\":0}" }, 2, EV_FAIL, 0,
          NULL },
        { "truncated", false, NAN, { "{\"pass\":true,\"score\":0.9", "{\"pass\":true}" }, 2, EV_PASS, 1, NULL },
        { "pass omitted is true", false, NAN, { "{\"score\":0.1,\"reason\":\"weak\"}" }, 1, EV_PASS, 0.1, "weak" },
        { "score clamped high", false, NAN, { "{\"pass\":true,\"score\":7}" }, 1, EV_PASS, 1, NULL },
        { "score clamped low", false, NAN, { "{\"pass\":false,\"score\":-3}" }, 1, EV_FAIL, 0, NULL },
        { "threshold not reached", false, 0.8, { "{\"pass\":true,\"score\":0.5,\"reason\":\"meh\"}" }, 1, EV_FAIL, 0.5,
          "Score 0.50 < threshold 0.8: meh" },
        { "threshold reached", false, 0.8, { "{\"pass\":true,\"score\":0.8}" }, 1, EV_PASS, 0.8, ">= threshold 0.8" },
        { "threshold but judge fails", false, 0.5, { "{\"pass\":false,\"score\":0.9}" }, 1, EV_FAIL, 0.9, NULL },
        { "negated pass", true, NAN, { "{\"pass\":true,\"score\":0.9}" }, 1, EV_FAIL, 0.1, NULL },
        { "negated fail", true, NAN, { "{\"pass\":false,\"score\":0.25}" }, 1, EV_PASS, 0.75, NULL },
        { "negated error stays error", true, NAN, { "nope", "nope" }, 2, EV_ERROR, 0, "judge reply not valid JSON" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        const rubric_case *c = &cases[i];
        fixture f;
        fx_init(&f, "llm-rubric", c->negate, "\"Is concise\"", c->threshold, NULL, "Paris.", "Capital of France?", NULL);
        step steps[2] = { CHAT(c->replies[0]), CHAT(c->replies[1]) };
        ev_result r;
        run(&f, steps, c->ncalls, &r);
        if (r.verdict != c->verdict || fabs(r.score - c->score) > 1e-9 || (c->reason_has && !has(r.reason, c->reason_has)))
            test_fail(__FILE__, __LINE__, "case '%s': verdict %d score %g reason '%s'", c->name, r.verdict, r.score,
                      r.reason ? r.reason : "(null)");
        ev_result_clear(&r);
        fx_free(&f);
    }
    seen_clear();
}

TEST(grader_llm_rubric_prompt_and_repair)
{
    fixture f;
    fx_init(&f, "llm-rubric", false, "\"Answers about {{city}}\"", NAN, NULL, "It is \"Paris\".", "Capital?",
            "{\"city\":\"Paris\"}");
    step steps[] = { CHAT("not json"), CHAT("{\"pass\":true,\"score\":1,\"reason\":\"r\"}") };
    ev_result r;
    run(&f, steps, 2, &r);
    CHECK_INT(r.verdict, EV_PASS);
    /* the first call: system + user with the answer and the rendered rubric */
    json_t *m = json_loads(seen_msgs[0], 0, NULL);
    CHECK(json_array_size(m) == 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(m, 0), "role")), "system");
    CHECK(has(json_string_value(json_object_get(json_array_get(m, 0), "content")), "JSON"));
    const char *user = json_string_value(json_object_get(json_array_get(m, 1), "content"));
    CHECK(has(user, "It is \"Paris\"."));
    CHECK(has(user, "Answers about Paris"));
    json_decref(m);
    /* the repair: the same two, the bad reply as the assistant, then the request */
    m = json_loads(seen_msgs[1], 0, NULL);
    CHECK(json_array_size(m) == 4);
    CHECK_STR(json_string_value(json_object_get(json_array_get(m, 2), "role")), "assistant");
    CHECK_STR(json_string_value(json_object_get(json_array_get(m, 2), "content")), "not json");
    CHECK(has(json_string_value(json_object_get(json_array_get(m, 3), "content")), "\"pass\": boolean"));
    json_decref(m);
    ev_result_clear(&r);
    fx_free(&f);
    seen_clear();
}

TEST(grader_llm_rubric_errors)
{
    /* transport error: an error with the message, no repair */
    fixture f;
    fx_init(&f, "llm-rubric", false, "\"x\"", NAN, NULL, "a", "p", NULL);
    step s1[] = { CHAT_FAIL("HTTP 500 from judge") };
    ev_result r;
    run(&f, s1, 1, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "judge call failed: HTTP 500 from judge"));
    CHECK(r.score == 0);
    ev_result_clear(&r);
    /* a transport error on the repair call is an error too */
    step s2[] = { CHAT("junk"), CHAT_FAIL("timeout") };
    run(&f, s2, 2, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "timeout"));
    ev_result_clear(&r);
    /* an empty reply is a parse failure */
    step s3[] = { CHAT(""), CHAT("") };
    run(&f, s3, 2, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "empty reply"));
    ev_result_clear(&r);
    fx_free(&f);

    /* no value: an error without any call */
    fx_init(&f, "llm-rubric", false, NULL, NAN, NULL, "a", "p", NULL);
    run(&f, NULL, 0, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "needs a value"));
    ev_result_clear(&r);
    fx_free(&f);

    /* not a graded type */
    ev_grader *g = (ev_grader *)1;
    fx_init(&f, "contains", false, "\"x\"", NAN, NULL, "a", "p", NULL);
    CHECK_INT(ev_grader_new(&f.a, &f.o, &g), ERR_INVAL);
    CHECK(g == NULL);
    CHECK(!ev_grader_handles("contains"));
    CHECK(ev_grader_handles("llm-rubric"));
    CHECK(ev_grader_handles("similar:euclidean"));
    CHECK(!ev_grader_handles(NULL));
    fx_free(&f);
    seen_clear();
}

TEST(grader_llm_rubric_custom_prompt)
{
    ev_result r;
    fixture f;
    /* a plain text template: one user message */
    fx_init(&f, "llm-rubric", false, "\"be brief\"", NAN,
            "{\"rubricPrompt\":\"Grade {{ output }} by {{rubric}} for {{name}}. Answer in JSON.\"}", "Hi", "p",
            "{\"name\":\"Ann\"}");
    step ok[] = { CHAT("{\"pass\":true,\"score\":1}") };
    run(&f, ok, 1, &r);
    CHECK_INT(r.verdict, EV_PASS);
    CHECK_STR(seen_msgs[0], "[{\"role\":\"user\",\"content\":\"Grade Hi by be brief for Ann. Answer in JSON.\"}]");
    ev_result_clear(&r);
    fx_free(&f);

    /* chat messages as JSON text (promptfoo's usual form), contents rendered one by one */
    fx_init(&f, "llm-rubric", false, "\"be brief\"", NAN,
            "{\"rubricPrompt\":\"[{\\\"role\\\":\\\"system\\\",\\\"content\\\":\\\"Judge. JSON only.\\\"},"
            "{\\\"role\\\":\\\"user\\\",\\\"content\\\":\\\"Output: {{output}}\\\\nRubric: {{rubric}}\\\"}]\"}",
            "say \"hi\"", "p", NULL);
    run(&f, ok, 1, &r);
    CHECK_INT(r.verdict, EV_PASS);
    CHECK_STR(seen_msgs[0], "[{\"role\":\"system\",\"content\":\"Judge. JSON only.\"},"
                            "{\"role\":\"user\",\"content\":\"Output: say \\\"hi\\\"\\nRubric: be brief\"}]");
    ev_result_clear(&r);
    fx_free(&f);

    /* as a JSON list in the config, under options (promptfoo's spelling) */
    fx_init(&f, "llm-rubric", false, "\"r\"", NAN,
            "{\"options\":{\"rubricPrompt\":[{\"role\":\"user\",\"content\":\"{{output}}/{{rubric}}\"}]}}", "o", "p", NULL);
    run(&f, ok, 1, &r);
    CHECK_STR(seen_msgs[0], "[{\"role\":\"user\",\"content\":\"o/r\"}]");
    ev_result_clear(&r);
    /* ...no message says JSON, so no JSON mode (OpenAI would refuse it); the repair asks for JSON */
    ev_grader *g;
    ev_call call;
    CHECK_INT(ev_grader_new(&f.a, &f.o, &g), ERR_OK);
    CHECK(ev_grader_next(g, &call, &r) && !call.json_output);
    ev_grader_reply_chat(g, ERR_OK, "looks good", NULL);
    CHECK(ev_grader_next(g, &call, &r) && call.json_output);
    ev_grader_free(g);
    fx_free(&f);

    /* a missing variable is an error naming it, before any call */
    fx_init(&f, "llm-rubric", false, "\"r\"", NAN, "{\"rubricPrompt\":\"{{output}} {{missing_var}}\"}", "o", "p", NULL);
    run(&f, NULL, 0, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "missing_var"));
    ev_result_clear(&r);
    fx_free(&f);

    /* malformed messages and types */
    static const char *const bad[] = {
        "{\"rubricPrompt\":[{\"role\":\"user\"}]}",
        "{\"rubricPrompt\":[]}",
        "{\"rubricPrompt\":42}",
        "{\"rubricPrompt\":\"{{#open}}\"}",
    };
    for (size_t i = 0; i < countof(bad); i++) {
        fx_init(&f, "llm-rubric", false, "\"r\"", NAN, bad[i], "o", "p", NULL);
        run(&f, NULL, 0, &r);
        if (r.verdict != EV_ERROR || !has(r.reason, "rubricPrompt"))
            test_fail(__FILE__, __LINE__, "bad rubricPrompt %s: %d %s", bad[i], r.verdict, r.reason ? r.reason : "");
        ev_result_clear(&r);
        fx_free(&f);
    }
    seen_clear();
}

/* ---- factuality and closedqa ------------------------------------------------------- */

TEST(grader_factuality_table)
{
    static const struct {
        const char *config, *reply;
        ev_verdict verdict;
        double score;
    } cases[] = {
        { NULL, "{\"category\":\"A\",\"reason\":\"subset\"}", EV_PASS, 1 },
        { NULL, "{\"category\":\"B\",\"reason\":\"superset\"}", EV_PASS, 1 },
        { NULL, "{\"category\":\"C\",\"reason\":\"same\"}", EV_PASS, 1 },
        { NULL, "{\"category\":\"D\",\"reason\":\"contradicts\"}", EV_FAIL, 0 },
        { NULL, "{\"category\":\"E\",\"reason\":\"minor\"}", EV_PASS, 1 },
        { NULL, "{\"category\":\" c \"}", EV_PASS, 1 },
        { "{\"factuality\":{\"subset\":0,\"superset\":0.6}}", "{\"category\":\"A\"}", EV_FAIL, 0 },
        { "{\"factuality\":{\"subset\":0,\"superset\":0.6}}", "{\"category\":\"B\"}", EV_PASS, 0.6 },
        { "{\"options\":{\"factuality\":{\"disagree\":0.5}}}", "{\"category\":\"D\"}", EV_PASS, 0.5 },
        { "{\"factuality\":{\"differButFactual\":0}}", "{\"category\":\"E\"}", EV_FAIL, 0 },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        fixture f;
        fx_init(&f, "factuality", false, "\"Sacramento is the capital of California\"", NAN, cases[i].config,
                "The capital is Sacramento.", "What is the capital of California?", NULL);
        step s[] = { CHAT(cases[i].reply) };
        ev_result r;
        run(&f, s, 1, &r);
        if (r.verdict != cases[i].verdict || fabs(r.score - cases[i].score) > 1e-9)
            test_fail(__FILE__, __LINE__, "factuality case %zu: %d %g %s", i, r.verdict, r.score, r.reason);
        CHECK(has(r.reason, "Category "));
        if (i == 0) {
            CHECK(has(seen_msgs[0], "Sacramento is the capital of California"));
            CHECK(has(seen_msgs[0], "What is the capital of California?"));
            CHECK(has(seen_msgs[0], "The capital is Sacramento."));
        }
        ev_result_clear(&r);
        fx_free(&f);
    }
    /* a category outside A-E twice: error; bad config: error without a call */
    fixture f;
    ev_result r;
    fx_init(&f, "factuality", false, "\"x\"", NAN, NULL, "y", "q", NULL);
    step s[] = { CHAT("{\"category\":\"F\"}"), CHAT("{\"category\":\"AB\"}") };
    run(&f, s, 2, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "is not one of A, B, C, D, E"));
    ev_result_clear(&r);
    fx_free(&f);
    fx_init(&f, "factuality", false, "\"x\"", NAN, "{\"factuality\":{\"subset\":2}}", "y", "q", NULL);
    run(&f, NULL, 0, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "config.factuality.subset"));
    ev_result_clear(&r);
    fx_free(&f);
    /* not-factuality on a disagreement passes */
    fx_init(&f, "factuality", true, "\"x\"", NAN, NULL, "y", "q", NULL);
    step d[] = { CHAT("{\"category\":\"D\"}") };
    run(&f, d, 1, &r);
    CHECK_INT(r.verdict, EV_PASS);
    CHECK_NEAR(r.score, 1);
    ev_result_clear(&r);
    fx_free(&f);
    seen_clear();
}

TEST(grader_closedqa)
{
    static const struct {
        const char *r1, *r2;
        size_t n;
        ev_verdict verdict;
    } cases[] = {
        { "{\"reason\":\"meets it\",\"verdict\":\"Y\"}", NULL, 1, EV_PASS },
        { "```json\n{\"reason\":\"no\",\"verdict\":\"N\"}\n```", NULL, 1, EV_FAIL },
        { "{\"verdict\":\"y\"}", NULL, 1, EV_PASS },
        { "{\"verdict\":\"maybe\"}", "{\"verdict\":\"N\"}", 2, EV_FAIL },
        { "{\"verdict\":true}", "{\"answer\":\"Y\"}", 2, EV_ERROR },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        fixture f;
        fx_init(&f, "model-graded-closedqa", false, "\"Is not apologetic\"", NAN, NULL, "Sorry!", "Say hi", NULL);
        step s[] = { CHAT(cases[i].r1), CHAT(cases[i].r2) };
        ev_result r;
        run(&f, s, cases[i].n, &r);
        if (r.verdict != cases[i].verdict)
            test_fail(__FILE__, __LINE__, "closedqa case %zu: %d %s", i, r.verdict, r.reason);
        if (r.verdict != EV_ERROR)
            CHECK(r.score == (r.verdict == EV_PASS ? 1 : 0));
        if (i == 0)
            CHECK(has(seen_msgs[0], "Is not apologetic") && has(seen_msgs[0], "Sorry!") && has(seen_msgs[0], "Say hi"));
        ev_result_clear(&r);
        fx_free(&f);
    }
    seen_clear();
}

/* ---- g-eval -------------------------------------------------------------------------- */

TEST(grader_g_eval)
{
    static const char steps_ok[] = "{\"steps\":[\"Read the reply\",\"Check the tone\"]}";
    fixture f;
    ev_result r;

    /* one criterion, default threshold 0.7: 8/10 passes */
    fx_init(&f, "g-eval", false, "\"Professional tone\"", NAN, NULL, "Dear sir", "Write a letter", NULL);
    step s1[] = { CHAT(steps_ok), CHAT("{\"score\":8,\"reason\":\"formal\"}") };
    run(&f, s1, 2, &r);
    CHECK_INT(r.verdict, EV_PASS);
    CHECK_NEAR(r.score, 0.8);
    CHECK(has(r.reason, "formal"));
    CHECK(has(seen_msgs[0], "Professional tone"));
    CHECK(has(seen_msgs[1], "- Read the reply\\n- Check the tone"));
    CHECK(has(seen_msgs[1], "Dear sir") && has(seen_msgs[1], "Write a letter"));
    ev_result_clear(&r);
    /* 6/10 fails; 7/10 is exactly the threshold and passes */
    step s2[] = { CHAT(steps_ok), CHAT("{\"score\":6,\"reason\":\"casual\"}") };
    run(&f, s2, 2, &r);
    CHECK_INT(r.verdict, EV_FAIL);
    CHECK_NEAR(r.score, 0.6);
    ev_result_clear(&r);
    step s3[] = { CHAT(steps_ok), CHAT("{\"score\":7}") };
    run(&f, s3, 2, &r);
    CHECK_INT(r.verdict, EV_PASS);
    ev_result_clear(&r);
    /* a score above 10 is clamped; a word is a parse failure, repaired */
    step s4[] = { CHAT(steps_ok), CHAT("{\"score\":\"eight\"}"), CHAT("{\"score\":12}") };
    run(&f, s4, 3, &r);
    CHECK_INT(r.verdict, EV_PASS);
    CHECK_NEAR(r.score, 1);
    ev_result_clear(&r);
    /* no steps, twice: error */
    step s5[] = { CHAT("{\"steps\":[]}"), CHAT("{\"steps\":\"read it\"}") };
    run(&f, s5, 2, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "'steps'"));
    ev_result_clear(&r);
    fx_free(&f);

    /* a list of criteria: each graded on its own, scores averaged; threshold set */
    fx_init(&f, "g-eval", false, "[\"Tone\",\"Accuracy\"]", 0.8, NULL, "x", "p", NULL);
    step s6[] = { CHAT(steps_ok), CHAT("{\"score\":10,\"reason\":\"a\"}"), CHAT(steps_ok),
                  CHAT("{\"score\":5,\"reason\":\"b\"}") };
    run(&f, s6, 4, &r);
    CHECK_INT(r.verdict, EV_FAIL);
    CHECK_NEAR(r.score, 0.75);
    CHECK(has(seen_msgs[0], "Tone") && has(seen_msgs[2], "Accuracy"));
    CHECK(has(r.reason, "[1] 1.00: a; [2] 0.50: b"));
    ev_result_clear(&r);
    fx_free(&f);

    /* bad values */
    static const char *const bad[] = { "[]", "[\"a\", 3]", "42" };
    for (size_t i = 0; i < countof(bad); i++) {
        fx_init(&f, "g-eval", false, bad[i], NAN, NULL, "x", "p", NULL);
        run(&f, NULL, 0, &r);
        CHECK_INT(r.verdict, EV_ERROR);
        ev_result_clear(&r);
        fx_free(&f);
    }
    seen_clear();
}

/* ---- similar ---------------------------------------------------------------------------- */

static const double V_X[] = { 1, 0, 0 }, V_X2[] = { 2, 0, 0 }, V_Y[] = { 0, 1, 0 }, V_XY[] = { 1, 1, 0 },
                    V_ZERO[] = { 0, 0, 0 }, V_NX[] = { -1, 0, 0 };

TEST(grader_similar)
{
    fixture f;
    ev_result r;
    fx_init(&f, "similar", false, "\"The expected output\"", NAN, NULL, "An output", "p", NULL);
    /* parallel: 1.0 passes the default 0.75 */
    step s1[] = { { S_EMBED, NULL, { V_X, V_X2 }, 3 } };
    run(&f, s1, 1, &r);
    CHECK_INT(r.verdict, EV_PASS);
    CHECK_NEAR(r.score, 1);
    CHECK_INT(seen_ntexts[0], 2);
    CHECK_STR(seen_texts[0][0], "An output");
    CHECK_STR(seen_texts[0][1], "The expected output");
    ev_result_clear(&r);
    /* 45 degrees: 0.7071 < 0.75 fails */
    step s2[] = { { S_EMBED, NULL, { V_X, V_XY }, 3 } };
    run(&f, s2, 1, &r);
    CHECK_INT(r.verdict, EV_FAIL);
    CHECK_NEAR(r.score, sqrt(0.5));
    CHECK(has(r.reason, "< threshold 0.75"));
    ev_result_clear(&r);
    /* zero vector: error, not NaN */
    step s3[] = { { S_EMBED, NULL, { V_X, V_ZERO }, 3 } };
    run(&f, s3, 1, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    ev_result_clear(&r);
    /* embeddings call failed: error with the message */
    step s4[] = { { S_EMBED_FAIL, "embeddings endpoint down", { 0 }, 0 } };
    run(&f, s4, 1, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "embeddings endpoint down"));
    ev_result_clear(&r);
    /* a missing vector: error */
    step s5[] = { { S_EMBED, NULL, { V_X, NULL }, 3 } };
    run(&f, s5, 1, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    ev_result_clear(&r);
    fx_free(&f);

    /* threshold 0.7 lets 45 degrees pass; not-similar then fails with 1 - score */
    fx_init(&f, "similar", true, "\"e\"", 0.7, NULL, "o", "p", NULL);
    run(&f, s2, 1, &r);
    CHECK_INT(r.verdict, EV_FAIL);
    CHECK_NEAR(r.score, 1 - sqrt(0.5));
    ev_result_clear(&r);
    fx_free(&f);

    /* a list: passes when similar to any one value (its score), else fails with the best */
    fx_init(&f, "similar", false, "[\"far\",\"near\",\"opposite\"]", NAN, NULL, "o", "p", NULL);
    step s6[] = { { S_EMBED, NULL, { V_X, V_Y, V_X2, V_NX }, 3 } };
    run(&f, s6, 1, &r);
    CHECK_INT(r.verdict, EV_PASS);
    CHECK_NEAR(r.score, 1);
    CHECK_INT(seen_ntexts[0], 4);
    ev_result_clear(&r);
    step s7[] = { { S_EMBED, NULL, { V_X, V_Y, V_XY, V_NX }, 3 } };
    run(&f, s7, 1, &r);
    CHECK_INT(r.verdict, EV_FAIL);
    CHECK_NEAR(r.score, sqrt(0.5));
    ev_result_clear(&r);
    fx_free(&f);
    /* not-similar over a list passes only when dissimilar to every value */
    fx_init(&f, "similar", true, "[\"far\",\"near\",\"opposite\"]", NAN, NULL, "o", "p", NULL);
    run(&f, s6, 1, &r);
    CHECK_INT(r.verdict, EV_FAIL);
    ev_result_clear(&r);
    run(&f, s7, 1, &r);
    CHECK_INT(r.verdict, EV_PASS);
    ev_result_clear(&r);
    fx_free(&f);

    /* euclidean: the threshold is a maximum distance; score 1 / (1 + d) */
    fx_init(&f, "similar:euclidean", false, "\"e\"", 1.5, NULL, "o", "p", NULL);
    run(&f, s2, 1, &r); /* distance 1 */
    CHECK_INT(r.verdict, EV_PASS);
    CHECK_NEAR(r.score, 0.5);
    ev_result_clear(&r);
    step s8[] = { { S_EMBED, NULL, { V_X, V_NX }, 3 } }; /* distance 2 */
    run(&f, s8, 1, &r);
    CHECK_INT(r.verdict, EV_FAIL);
    CHECK_NEAR(r.score, 1.0 / 3);
    ev_result_clear(&r);
    fx_free(&f);
    /* dot product */
    fx_init(&f, "similar:dot", false, "\"e\"", 1.5, NULL, "o", "p", NULL);
    step s9[] = { { S_EMBED, NULL, { V_X2, V_XY }, 3 } }; /* 2 */
    run(&f, s9, 1, &r);
    CHECK_INT(r.verdict, EV_PASS);
    CHECK_NEAR(r.score, 2);
    ev_result_clear(&r);
    fx_free(&f);

    /* values are rendered with the vars; bad values are errors */
    fx_init(&f, "similar", false, "\"About {{topic}}\"", NAN, NULL, "o", "p", "{\"topic\":\"cats\"}");
    run(&f, s1, 1, &r);
    CHECK_STR(seen_texts[0][1], "About cats");
    ev_result_clear(&r);
    fx_free(&f);
    static const char *const bad[] = { "[]", "{\"a\":1}", "[\"x\",null]" };
    for (size_t i = 0; i < countof(bad); i++) {
        fx_init(&f, "similar", false, bad[i], NAN, NULL, "o", "p", NULL);
        run(&f, NULL, 0, &r);
        CHECK_INT(r.verdict, EV_ERROR);
        ev_result_clear(&r);
        fx_free(&f);
    }
    fx_init(&f, "similar", false, NULL, NAN, NULL, "o", "p", NULL);
    run(&f, NULL, 0, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    ev_result_clear(&r);
    fx_free(&f);
    seen_clear();
}

/* ---- answer-relevance ------------------------------------------------------------------ */

TEST(grader_answer_relevance)
{
    static const char qs[] = "{\"questions\":[\"What is the capital of France?\",\"Which city is France's capital?\","
                             "\"Where is the French government?\"]}";
    fixture f;
    ev_result r;
    fx_init(&f, "answer-relevance", false, NULL, NAN, NULL, "Paris is the capital.", "Tell me about France",
            "{\"query\":\"What is the capital of France?\"}");
    /* cosines 1, 1, 0: mean 0.667 < default 0.7 */
    step s1[] = { CHAT(qs), { S_EMBED, NULL, { V_X, V_X, V_X2, V_Y }, 3 } };
    run(&f, s1, 2, &r);
    CHECK_INT(r.verdict, EV_FAIL);
    CHECK_NEAR(r.score, 2.0 / 3);
    CHECK(has(seen_msgs[0], "Paris is the capital."));
    CHECK_INT(seen_ntexts[1], 4);
    CHECK_STR(seen_texts[1][0], "What is the capital of France?");
    CHECK_STR(seen_texts[1][3], "Where is the French government?");
    ev_result_clear(&r);
    /* all parallel: passes */
    step s2[] = { CHAT(qs), { S_EMBED, NULL, { V_X, V_X, V_X2, V_X } , 3 } };
    run(&f, s2, 2, &r);
    CHECK_INT(r.verdict, EV_PASS);
    CHECK_NEAR(r.score, 1);
    ev_result_clear(&r);
    /* too few questions, repaired with more than three (the first three used) */
    step s3[] = { CHAT("{\"questions\":[\"a?\",\"  \"]}"),
                  CHAT("{\"questions\":[\"a?\",\"b?\",\"c?\",\"d?\"]}"),
                  { S_EMBED, NULL, { V_X, V_X, V_X, V_X }, 3 } };
    run(&f, s3, 3, &r);
    CHECK_INT(r.verdict, EV_PASS);
    CHECK_INT(seen_ntexts[2], 4);
    CHECK_STR(seen_texts[2][3], "c?");
    ev_result_clear(&r);
    /* embeddings failure: error */
    step s4[] = { CHAT(qs), { S_EMBED_FAIL, "no embedding model", { 0 }, 0 } };
    run(&f, s4, 2, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "no embedding model"));
    ev_result_clear(&r);
    fx_free(&f);

    /* no vars.query: the prompt is the query */
    fx_init(&f, "answer-relevance", false, NULL, NAN, NULL, "a", "the prompt text", NULL);
    run(&f, s2, 2, &r);
    CHECK_STR(seen_texts[1][0], "the prompt text");
    ev_result_clear(&r);
    fx_free(&f);
    /* neither: an error naming the variable */
    fx_init(&f, "answer-relevance", false, NULL, NAN, NULL, "a", NULL, NULL);
    run(&f, NULL, 0, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "query"));
    ev_result_clear(&r);
    fx_free(&f);
    seen_clear();
}

/* ---- RAG metrics ------------------------------------------------------------------------ */

TEST(grader_context_faithfulness)
{
    static const char vars[] = "{\"query\":\"What is the capital of France?\","
                               "\"context\":\"Paris is the capital of France.\"}";
    fixture f;
    ev_result r;
    fx_init(&f, "context-faithfulness", false, NULL, 0.9, NULL, "Paris, with 2.2 million residents, is the capital.",
            "p", vars);
    step s1[] = { CHAT("{\"statements\":[\"Paris is the capital of France.\",\"Paris has 2.2 million residents.\"]}"),
                  CHAT("{\"verdicts\":[{\"id\":2,\"supported\":false,\"reason\":\"not stated\"},"
                       "{\"id\":1,\"supported\":true,\"reason\":\"stated\"}]}") };
    run(&f, s1, 2, &r);
    CHECK_INT(r.verdict, EV_FAIL);
    CHECK_NEAR(r.score, 0.5);
    CHECK(has(r.reason, "1 of 2 statements"));
    CHECK(has(seen_msgs[0], "What is the capital of France?") && has(seen_msgs[0], "2.2 million residents"));
    CHECK(has(seen_msgs[1], "1. Paris is the capital of France.\\n2. Paris has 2.2 million residents."));
    CHECK(has(seen_msgs[1], "Paris is the capital of France."));
    ev_result_clear(&r);
    /* wrong verdict count, then a duplicate id, then error */
    step s2[] = { CHAT("{\"statements\":[\"a\",\"b\"]}"), CHAT("{\"verdicts\":[{\"id\":1,\"supported\":true}]}"),
                  CHAT("{\"verdicts\":[{\"id\":1,\"supported\":true},{\"id\":1,\"supported\":true}]}") };
    run(&f, s2, 3, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "judged twice"));
    ev_result_clear(&r);
    /* no statements: an error, not a score */
    step s3[] = { CHAT("{\"statements\":[]}") };
    run(&f, s3, 1, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "no factual statements"));
    ev_result_clear(&r);
    fx_free(&f);
    /* default threshold 0: any supported fraction passes */
    fx_init(&f, "context-faithfulness", false, NULL, NAN, NULL, "x", "p", vars);
    step s4[] = { CHAT("{\"statements\":[\"a\"]}"), CHAT("{\"verdicts\":[{\"id\":1,\"supported\":false}]}") };
    run(&f, s4, 2, &r);
    CHECK_INT(r.verdict, EV_PASS);
    CHECK_NEAR(r.score, 0);
    ev_result_clear(&r);
    fx_free(&f);

    /* missing or bad variables: errors naming them, without calls */
    static const struct {
        const char *vars, *needle;
    } bad[] = {
        { "{\"context\":\"c\"}", "'query'" },
        { "{\"query\":\"q\"}", "'context'" },
        { "{\"query\":\"q\",\"context\":\"   \"}", "vars.context is empty" },
        { "{\"query\":\"q\",\"context\":[\"a\",1]}", "entry 2 is not a string" },
        { "{\"query\":\"q\",\"context\":{}}", "string or a list of strings" },
        { "{\"query\":7,\"context\":\"c\"}", "'query'" },
    };
    for (size_t i = 0; i < countof(bad); i++) {
        fx_init(&f, "context-faithfulness", false, NULL, NAN, NULL, "x", "p", bad[i].vars);
        run(&f, NULL, 0, &r);
        if (r.verdict != EV_ERROR || !has(r.reason, bad[i].needle))
            test_fail(__FILE__, __LINE__, "vars %s: %d %s", bad[i].vars, r.verdict, r.reason ? r.reason : "");
        ev_result_clear(&r);
        fx_free(&f);
    }
    seen_clear();
}

TEST(grader_context_recall)
{
    fixture f;
    ev_result r;
    fx_init(&f, "context-recall", false, "\"Python was created by Guido van Rossum in 1991\"", 1.0, NULL, "x", "p",
            "{\"context\":[\"Python was released in 1991.\",\"\",\"It is popular.\"]}");
    step s1[] = { CHAT("{\"statements\":[{\"statement\":\"Python was released in 1991\",\"attributed\":true,\"reason\":\"r\"},"
                       "{\"statement\":\"Guido van Rossum created Python\",\"attributed\":false,\"reason\":\"r\"}]}") };
    run(&f, s1, 1, &r);
    CHECK_INT(r.verdict, EV_FAIL);
    CHECK_NEAR(r.score, 0.5);
    /* list context joined with blank lines, empty entries dropped */
    CHECK(has(seen_msgs[0], "Python was released in 1991.\\n\\nIt is popular."));
    CHECK(has(seen_msgs[0], "Guido van Rossum in 1991"));
    ev_result_clear(&r);
    step s2[] = { CHAT("{\"statements\":[]}"), CHAT("{\"statements\":[{\"statement\":\"s\",\"attributed\":\"yes\"}]}") };
    run(&f, s2, 2, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "boolean 'attributed'"));
    ev_result_clear(&r);
    fx_free(&f);
    fx_init(&f, "context-recall", false, NULL, NAN, NULL, "x", "p", "{\"context\":\"c\"}");
    run(&f, NULL, 0, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "needs a value"));
    ev_result_clear(&r);
    fx_free(&f);
    seen_clear();
}

TEST(grader_context_relevance)
{
    fixture f;
    ev_result r;
    /* a single prose block is split into sentences */
    fx_init(&f, "context-relevance", false, NULL, 0.3, NULL, "x", "p",
            "{\"query\":\"What is the capital of France?\","
            "\"context\":\"Paris is the capital. France has great wine. The Eiffel Tower is in Paris.\"}");
    step s1[] = { CHAT("{\"verdicts\":[{\"id\":1,\"relevant\":true},{\"id\":2,\"relevant\":false},"
                       "{\"id\":3,\"relevant\":false}]}") };
    run(&f, s1, 1, &r);
    CHECK_INT(r.verdict, EV_PASS);
    CHECK_NEAR(r.score, 1.0 / 3);
    CHECK(has(seen_msgs[0], "1. Paris is the capital.\\n2. France has great wine.\\n3. The Eiffel Tower is in Paris."));
    ev_result_clear(&r);
    step s2[] = { CHAT("{\"verdicts\":[{\"id\":1,\"relevant\":true},{\"id\":4,\"relevant\":false},"
                       "{\"id\":3,\"relevant\":false}]}"),
                  CHAT("{\"verdicts\":[{\"id\":1.5,\"relevant\":true},{\"id\":2,\"relevant\":false},"
                       "{\"id\":3,\"relevant\":false}]}") };
    run(&f, s2, 2, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "'id' between 1 and 3"));
    ev_result_clear(&r);
    fx_free(&f);
    /* a multi-line string is split by lines; a list by entries */
    static const char *const ctxs[] = { "\"RAG improves accuracy. It cites sources.\\nIt reduces hallucination.\\n\\nRain this weekend.\"",
                                        "[\"RAG improves accuracy. It cites sources.\",\"It reduces hallucination.\",\" \","
                                        "\"Rain this weekend.\"]" };
    for (size_t i = 0; i < countof(ctxs); i++) {
        char vars[512];
        snprintf(vars, sizeof vars, "{\"query\":\"Why RAG?\",\"context\":%s}", ctxs[i]);
        fx_init(&f, "context-relevance", false, NULL, NAN, NULL, "x", "p", vars);
        step s3[] = { CHAT("{\"verdicts\":[{\"id\":1,\"relevant\":true},{\"id\":2,\"relevant\":true},"
                           "{\"id\":3,\"relevant\":false}]}") };
        run(&f, s3, 1, &r);
        CHECK_INT(r.verdict, EV_PASS);
        CHECK_NEAR(r.score, 2.0 / 3);
        CHECK(has(seen_msgs[0], "1. RAG improves accuracy. It cites sources.\\n2. It reduces"));
        ev_result_clear(&r);
        fx_free(&f);
    }
    /* not-context-relevance flips it */
    fx_init(&f, "context-relevance", true, NULL, 0.5, NULL, "x", "p", "{\"query\":\"q\",\"context\":\"a. b.\"}");
    step s4[] = { CHAT("{\"verdicts\":[{\"id\":1,\"relevant\":false},{\"id\":2,\"relevant\":false}]}") };
    run(&f, s4, 1, &r);
    CHECK_INT(r.verdict, EV_PASS);
    CHECK_NEAR(r.score, 1);
    ev_result_clear(&r);
    fx_free(&f);
    seen_clear();
}

/* ---- hostile replies and inputs ------------------------------------------------------------ */

TEST(grader_hostile_replies)
{
    fixture f;
    ev_result r;
    fx_init(&f, "llm-rubric", false, "\"x\"", NAN, NULL, "a", "p", NULL);
    /* a huge reply is refused without parsing */
    size_t n = (1u << 20) + 10;
    char *big = malloc(n + 1);
    memset(big, '{', n);
    big[n] = '\0';
    step s1[] = { CHAT(big), CHAT(big) };
    run(&f, s1, 2, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "longer than"));
    /* the repair call echoes at most a bounded prefix */
    CHECK(seen_msgs[1] && strlen(seen_msgs[1]) < 20000);
    ev_result_clear(&r);
    /* many braces before the object: the candidate budget runs out (an error, quickly) */
    memset(big, ' ', 4000);
    for (size_t i = 0; i < 100; i++)
        big[i * 3] = '{';
    static const char obj[] = "{\"pass\":true,\"score\":1}";
    memcpy(big + 4000, obj, sizeof obj);
    step s2[] = { CHAT(big), CHAT("{\"pass\":true,\"score\":1}") };
    run(&f, s2, 2, &r);
    CHECK_INT(r.verdict, EV_PASS);
    ev_result_clear(&r);
    free(big);
    /* invalid UTF-8 in the answer and the reply: the prompts stay valid JSON strings */
    fx_free(&f);
    fx_init(&f, "llm-rubric", false, "\"x\"", NAN, NULL, "bad \xff\xfe bytes", "p\xc3", NULL);
    step s3[] = { CHAT("\xff not json \xc3"), CHAT("{\"pass\":true,\"score\":1}") };
    run(&f, s3, 2, &r);
    CHECK_INT(r.verdict, EV_PASS);
    CHECK(has(seen_msgs[0], "bad \xEF\xBF\xBD\xEF\xBF\xBD bytes"));
    CHECK(has(seen_msgs[1], "\xEF\xBF\xBD not json"));
    ev_result_clear(&r);
    fx_free(&f);
    seen_clear();
}

TEST(grader_reply_mismatch)
{
    fixture f;
    ev_grader *g;
    ev_call call;
    ev_result r = { 0 };
    fx_init(&f, "similar", false, "\"x\"", NAN, NULL, "a", "p", NULL);
    CHECK_INT(ev_grader_new(&f.a, &f.o, &g), ERR_OK);
    CHECK(ev_grader_next(g, &call, &r));
    CHECK_INT(call.kind, EV_CALL_EMBED);
    ev_grader_reply_chat(g, ERR_OK, "{}", NULL); /* wrong kind */
    CHECK(!ev_grader_next(g, &call, &r));
    CHECK_INT(r.verdict, EV_ERROR);
    ev_result_clear(&r);
    ev_grader_reply_embed(g, ERR_OK, NULL, 0, NULL); /* after the end: ignored */
    CHECK(!ev_grader_next(g, &call, &r));
    CHECK_INT(r.verdict, EV_ERROR);
    ev_result_clear(&r);
    ev_grader_free(g);
    ev_grader_free(NULL);
    fx_free(&f);
}

/* ---- command ------------------------------------------------------------------------------- */

static double elapsed_ms(struct timespec t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0.tv_sec) * 1000 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

TEST(grader_command)
{
    static const struct {
        const char *cmd;
        bool negate;
        double threshold;
        const char *config;
        ev_verdict verdict;
        double score;
        const char *reason_has;
    } cases[] = {
        { "printf '{\"pass\": true, \"score\": 0.9, \"reason\": \"looks right\"}'", false, NAN, NULL, EV_PASS, 0.9,
          "looks right" },
        { "printf '{\"score\": 0.4}'", false, NAN, NULL, EV_FAIL, 0.4, "< threshold 0.5" },
        { "printf '{\"score\": 0.4}'", false, 0.3, NULL, EV_PASS, 0.4, NULL },
        { "printf '{\"pass\": false, \"score\": 1}'", false, NAN, NULL, EV_FAIL, 1, NULL },
        { "printf '{\"pass\": true}'", false, NAN, NULL, EV_PASS, 1, NULL },
        { "printf '0.7\\n'", false, NAN, NULL, EV_PASS, 0.7, NULL },
        { "printf 0.3", false, NAN, NULL, EV_FAIL, 0.3, NULL },
        { "printf 0.3", true, NAN, NULL, EV_PASS, 0.7, NULL },
        { "printf true", false, NAN, NULL, EV_PASS, 1, NULL },
        { "echo 'working...'; echo '{\"score\": 1}'", false, NAN, NULL, EV_PASS, 1, NULL },
        { "echo oops >&2; exit 3", false, NAN, NULL, EV_ERROR, 0, "exited with status 3: oops" },
        { "printf '{\"score\": 1}'; echo 'first' >&2; echo 'last line' >&2; exit 1", false, NAN, NULL, EV_ERROR, 0,
          "status 1: last line" },
        { "printf 'not json'", false, NAN, NULL, EV_ERROR, 0, "stdout is not JSON: not json" },
        { "printf '{\"score\": \"high\"}'", false, NAN, NULL, EV_ERROR, 0, "'score' is not a number" },
        { "printf '{\"reason\": \"x\"}'", false, NAN, NULL, EV_ERROR, 0, "neither 'score' nor 'pass'" },
        { "printf '[1]'", false, NAN, NULL, EV_ERROR, 0, "neither a number nor an object" },
        { "true", false, NAN, NULL, EV_ERROR, 0, "no output on stdout" },
        { "kill -9 $$", false, NAN, NULL, EV_ERROR, 0, "signal 9" },
        /* stdin: the JSON object, on one line */
        { "read -r line; case \"$line\" in *'\"output\":\"hello\"'*'\"city\":\"Paris\"'*'\"threshold\":null'*) printf 1;; "
          "*) printf 0;; esac",
          false, NAN, NULL, EV_PASS, 1, NULL },
        /* a child that never reads stdin does not hang us or raise SIGPIPE */
        { "exec 0<&-; printf 1", false, NAN, NULL, EV_PASS, 1, NULL },
        { "printf 1", false, NAN, "{\"timeout_ms\": -1}", EV_ERROR, 0, "timeout_ms" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        char value[1024];
        json_t *v = json_string(cases[i].cmd);
        char *dumped = json_dumps(v, JSON_ENCODE_ANY);
        snprintf(value, sizeof value, "%s", dumped);
        free(dumped);
        json_decref(v);
        fixture f;
        fx_init(&f, "command", cases[i].negate, value, cases[i].threshold, cases[i].config, "hello", "say hello",
                "{\"city\":\"Paris\"}");
        ev_result r;
        ev_command_check(&f.a, &f.o, &r);
        if (r.verdict != cases[i].verdict || fabs(r.score - cases[i].score) > 1e-9 ||
            (cases[i].reason_has && !has(r.reason, cases[i].reason_has)))
            test_fail(__FILE__, __LINE__, "command %zu (%s): verdict %d score %g reason '%s'", i, cases[i].cmd, r.verdict,
                      r.score, r.reason ? r.reason : "(null)");
        ev_result_clear(&r);
        fx_free(&f);
    }
}

TEST(grader_command_timeout_and_big_io)
{
    fixture f;
    ev_result r;
    struct timespec t0;
    /* sleep past a 200 ms timeout: an error soon after 200 ms, the sleep killed */
    fx_init(&f, "command", false, "\"echo started >&2; sleep 5; printf 1\"", NAN, "{\"timeout_ms\": 200}", "a", "p", NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ev_command_check(&f.a, &f.o, &r);
    double ms = elapsed_ms(t0);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "timed out after 200 ms: started"));
    CHECK(ms >= 190 && ms < 2000);
    ev_result_clear(&r);
    fx_free(&f);
    /* a background child holding stdout open is killed with the group */
    fx_init(&f, "command", false, "\"(sleep 5 &) ; printf 1\"", NAN, "{\"timeout_ms\": 300}", "a", "p", NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ev_command_check(&f.a, &f.o, &r);
    CHECK(elapsed_ms(t0) < 2000);
    ev_result_clear(&r);
    fx_free(&f);
    /* a large answer on stdin is read back whole (wc -c counts its JSON) */
    size_t n = 300000;
    char *text = malloc(n + 1);
    memset(text, 'x', n);
    text[n] = '\0';
    fx_init(&f, "command", false, "\"n=$(wc -c); [ \\\"$n\\\" -gt 300000 ] && printf 1 || printf 0\"", NAN, NULL, text,
            "p", NULL);
    ev_command_check(&f.a, &f.o, &r);
    CHECK_INT(r.verdict, EV_PASS);
    ev_result_clear(&r);
    fx_free(&f);
    free(text);
    /* lots of stderr: only the tail kept, the last line reported */
    fx_init(&f, "command", false, "\"i=0; while [ $i -lt 3000 ]; do echo noise-line-$i >&2; i=$((i+1)); done; exit 2\"", NAN,
            NULL, "a", "p", NULL);
    ev_command_check(&f.a, &f.o, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "status 2: noise-line-2999"));
    ev_result_clear(&r);
    fx_free(&f);
    /* too much stdout */
    fx_init(&f, "command", false, "\"head -c 2000000 /dev/zero | tr '\\\\0' 1\"", NAN, NULL, "a", "p", NULL);
    ev_command_check(&f.a, &f.o, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(has(r.reason, "more than"));
    ev_result_clear(&r);
    fx_free(&f);
    /* a value that is not a command */
    static const char *const bad[] = { "42", "\"\"", "[\"ls\"]", NULL };
    for (size_t i = 0; i < countof(bad); i++) {
        fx_init(&f, "command", false, bad[i], NAN, NULL, "a", "p", NULL);
        ev_command_check(&f.a, &f.o, &r);
        CHECK_INT(r.verdict, EV_ERROR);
        CHECK(has(r.reason, "shell command"));
        ev_result_clear(&r);
        fx_free(&f);
    }
}

/* ---- textsim ---------------------------------------------------------------------------------- */

typedef struct pieces {
    char out[512];
    size_t stop_after;
    size_t seen;
} pieces;

static bool collect(void *ud, sv s)
{
    pieces *p = ud;
    size_t l = strlen(p->out);
    snprintf(p->out + l, sizeof p->out - l, "[%.*s]", SV_FMT(s));
    return ++p->seen != p->stop_after;
}

TEST(textsim_split)
{
    static const struct {
        const char *text, *sentences, *lines;
        size_t ns, nl;
    } cases[] = {
        { "Paris is the capital. France has wine. The Eiffel Tower is in Paris.",
          "[Paris is the capital.][France has wine.][The Eiffel Tower is in Paris.]",
          "[Paris is the capital. France has wine. The Eiffel Tower is in Paris.]", 3, 1 },
        { "Pi is 3.14 exactly?! Yes... \"Really.\" (Sure.) End", "[Pi is 3.14 exactly?!][Yes...][\"Really.\"][(Sure.)][End]",
          "[Pi is 3.14 exactly?! Yes... \"Really.\" (Sure.) End]", 5, 1 },
        { "line one\r\nline two\n\n  \nline three. more", "[line one][line two][line three.][more]",
          "[line one][line two][line three. more]", 4, 3 },
        { "", "", "", 0, 0 },
        { "   \n\t ", "", "", 0, 0 },
        { "no end", "[no end]", "[no end]", 1, 1 },
        { "caf\xc3\xa9. na\xc3\xafve!", "[caf\xc3\xa9.][na\xc3\xafve!]", "[caf\xc3\xa9. na\xc3\xafve!]", 2, 1 },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        pieces p = { "", 0, 0 };
        size_t n = ts_sentences(sv_from(cases[i].text), collect, &p);
        if (n != cases[i].ns || strcmp(p.out, cases[i].sentences) != 0)
            test_fail(__FILE__, __LINE__, "sentences %zu: %zu %s", i, n, p.out);
        CHECK_INT(ts_sentences(sv_from(cases[i].text), NULL, NULL), cases[i].ns);
        pieces q = { "", 0, 0 };
        n = ts_lines(sv_from(cases[i].text), collect, &q);
        if (n != cases[i].nl || strcmp(q.out, cases[i].lines) != 0)
            test_fail(__FILE__, __LINE__, "lines %zu: %zu %s", i, n, q.out);
    }
    /* stopping early */
    pieces p = { "", 2, 0 };
    CHECK_INT(ts_sentences(SV("a. b. c. d."), collect, &p), 2);
    CHECK_STR(p.out, "[a.][b.]");
    CHECK_INT(ts_sentences(SV_NULL, NULL, NULL), 0);
    sv t = ts_trim(SV("  x y \n"));
    CHECK_MEM(t.p, t.len, "x y");
}

TEST(textsim_vectors)
{
    double out = -5;
    const double a[] = { 1, 2, 3 }, b[] = { 2, 4, 6 }, c[] = { -1, -2, -3 }, z[] = { 0, 0, 0 },
                 h[] = { 1e200, 1e200, 1e200 }, inf[] = { INFINITY, 0, 0 }, nan_[] = { NAN, 0, 0 };
    CHECK(ts_cosine(a, b, 3, &out));
    CHECK_NEAR(out, 1);
    CHECK(ts_cosine(a, c, 3, &out));
    CHECK_NEAR(out, -1);
    CHECK(ts_cosine(V_X, V_Y, 3, &out));
    CHECK_NEAR(out, 0);
    CHECK(!ts_cosine(a, z, 3, &out));
    CHECK(!ts_cosine(a, b, 0, &out));
    CHECK(!ts_cosine(a, h, 3, &out)); /* overflows to infinity */
    CHECK(!ts_cosine(a, inf, 3, &out));
    CHECK(!ts_cosine(a, nan_, 3, &out));
    CHECK(ts_dot(a, b, 3, &out));
    CHECK_NEAR(out, 28);
    CHECK(!ts_dot(a, inf, 3, &out));
    CHECK(ts_euclidean(a, b, 3, &out));
    CHECK_NEAR(out, sqrt(14));
    CHECK(!ts_euclidean(a, nan_, 3, &out));
    CHECK(!ts_euclidean(NULL, b, 3, &out));
}
