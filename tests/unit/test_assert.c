/*
 * test_assert.c - the assertions (src/eval/assert.c, assert_text.c,
 * jschema.c).
 *
 * One table of (assertion, answer) -> (verdict, score, reason) cases with
 * every deterministic type, its not- form, thresholds, templated values
 * and weight 0; the golden cases in tests/data/assert/golden.jsonl (the
 * examples of promptfoo's documentation and their verdicts); provider
 * metadata (finish reason, latency, cost, tool calls); assert-sets and
 * ev_assert_combine; the parse errors, each with its message; the JSON
 * Schema subset on its own table; the text metrics and JS text primitives
 * directly (banded against exact levenshtein on random strings); and
 * several threads checking one parsed tree at once.
 */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "eval/assert.h"
#include "eval/assert_int.h"
#include "eval/jschema.h"
#include "test.h"

#define PATH "tests[3].assert[1]"

static json_t *test_vars(void)
{
    static json_t *v;
    if (!v)
        v = json_pack("{s:s, s:s, s:i, s:s, s:s, s:o}", "expected", "hello world", "word", "Paris", "n", 3, "list",
                      "cat, \"big, dog\"", "pattern", "^Par", "obj", json_pack("{s:i}", "a", 1));
    return v;
}

static ev_output answer(const char *text)
{
    return (ev_output){
        .text = text,
        .len = strlen(text),
        .vars = test_vars(),
        .latency_ms = NAN,
        .cost_usd = NAN,
    };
}

/* Parses a spec written as JSON text; NULL (and a failure) when it does not. */
static ev_assert *parse(const char *spec, int line)
{
    json_error_t je;
    json_t *j = json_loads(spec, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j) {
        test_fail(__FILE__, line, "spec does not parse: %s: %s", spec, je.text);
        return NULL;
    }
    ev_assert *a = NULL;
    char msg[512];
    err_code e = ev_assert_parse(j, PATH, &a, msg, sizeof msg);
    json_decref(j);
    if (e != ERR_OK)
        test_fail(__FILE__, line, "%s: %s", spec, msg);
    return a;
}

static const char *vname(ev_verdict v) { return v == EV_PASS ? "pass" : v == EV_FAIL ? "fail" : "error"; }

typedef struct vcase {
    const char *spec;
    const char *output;
    ev_verdict want;
    double score;        /* NAN: not checked */
    const char *reason;  /* a substring the reason must hold, or NULL */
    int line;
} vcase;

#define P EV_PASS
#define F EV_FAIL
#define E EV_ERROR
#define X NAN
#define C(spec, out, v, s, why) { spec, out, v, s, why, __LINE__ }

static void run_case(const vcase *c, const ev_output *o)
{
    ev_assert *a = parse(c->spec, c->line);
    if (!a)
        return;
    ev_result r;
    ev_assert_check(a, o, &r);
    if (r.verdict != c->want)
        test_fail(__FILE__, c->line, "%s on \"%s\": %s (%s), expected %s", c->spec, o->text, vname(r.verdict),
                  r.reason ? r.reason : "no reason", vname(c->want));
    if (!isnan(c->score) && fabs(r.score - c->score) > 1e-4)
        test_fail(__FILE__, c->line, "%s: score %.6f, expected %.6f", c->spec, r.score, c->score);
    if (isnan(r.score))
        test_fail(__FILE__, c->line, "%s: NaN score", c->spec);
    if (c->reason && (!r.reason || !strstr(r.reason, c->reason)))
        test_fail(__FILE__, c->line, "%s: reason \"%s\" lacks \"%s\"", c->spec, r.reason ? r.reason : "(null)",
                  c->reason);
    if (r.verdict == EV_PASS && r.reason && c->want == EV_PASS && !strstr(c->spec, "\"weight\""))
        test_fail(__FILE__, c->line, "%s: a pass has a reason (\"%s\")", c->spec, r.reason);
    ev_result_clear(&r);
    ev_assert_free(a);
}

static const vcase verdicts[] = {
    /* equals: strings, numbers as JS spells them, JSON values, templates */
    C("{\"type\":\"equals\",\"value\":\"Hello\"}", "Hello", P, 1, NULL),
    C("{\"type\":\"equals\",\"value\":\"Hello\"}", "hello", F, 0, "Expected output \"hello\" to equal \"Hello\""),
    C("{\"type\":\"not-equals\",\"value\":\"Hello\"}", "hello", P, 1, NULL),
    C("{\"type\":\"not-equals\",\"value\":\"Hello\"}", "Hello", F, 0, "to not equal \"Hello\""),
    C("{\"type\":\"equals\",\"value\":42}", "42", P, 1, NULL),
    C("{\"type\":\"equals\",\"value\":0.1}", "0.1", P, 1, NULL),
    C("{\"type\":\"equals\",\"value\":1e21}", "1e+21", P, 1, NULL),
    C("{\"type\":\"equals\",\"value\":0.000001}", "0.000001", P, 1, NULL),
    C("{\"type\":\"equals\",\"value\":1.5e-7}", "1.5e-7", P, 1, NULL),
    C("{\"type\":\"equals\",\"value\":-123.25}", "-123.25", P, 1, NULL),
    C("{\"type\":\"equals\",\"value\":true}", "true", P, 1, NULL),
    C("{\"type\":\"equals\",\"value\":{\"a\":1,\"b\":[1,2]}}", "{\"b\": [1, 2.0], \"a\": 1}", P, 1, NULL),
    C("{\"type\":\"equals\",\"value\":{\"a\":1}}", "{\"a\": 1, \"b\": 2}", F, 0, "to equal {\"a\":1}"),
    C("{\"type\":\"equals\",\"value\":{\"a\":1}}", "not json", F, 0, NULL),
    C("{\"type\":\"not-equals\",\"value\":{\"a\":1}}", "not json", P, 1, NULL),
    C("{\"type\":\"equals\",\"value\":[1,\"x\"]}", "[1,\"x\"]", P, 1, NULL),
    C("{\"type\":\"equals\",\"value\":\"{{word}}\"}", "Paris", P, 1, NULL),
    C("{\"type\":\"equals\",\"value\":\"{{ word }}!\"}", "Paris!", P, 1, NULL),
    C("{\"type\":\"equals\",\"value\":\"x{{missing}}\"}", "x", P, 1, NULL),
    C("{\"type\":\"equals\",\"value\":\"{{obj}}\"}", "x", E, 0, "did not render"),

    /* contains, icontains (numbers, templates, non-ASCII case) */
    C("{\"type\":\"contains\",\"value\":\"world\"}", "hello world", P, 1, NULL),
    C("{\"type\":\"contains\",\"value\":\"world\"}", "hello", F, 0, "Expected output to contain \"world\""),
    C("{\"type\":\"not-contains\",\"value\":\"world\"}", "hello world", F, 0, "Expected output to not contain \"world\""),
    C("{\"type\":\"not-contains\",\"value\":\"world\"}", "hello", P, 1, NULL),
    C("{\"type\":\"contains\",\"value\":0}", "there are 0 left", P, 1, NULL),
    C("{\"type\":\"contains\",\"value\":\"World\"}", "hello world", F, 0, NULL),
    C("{\"type\":\"icontains\",\"value\":\"WORLD\"}", "Hello World", P, 1, NULL),
    C("{\"type\":\"icontains\",\"value\":\"\\u00c9T\\u00c9\"}", "un \xc3\xa9t\xc3\xa9 chaud", P, 1, NULL),
    C("{\"type\":\"icontains\",\"value\":\"\\u041f\\u0420\\u0418\"}", "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", P, 1,
      NULL),
    C("{\"type\":\"not-icontains\",\"value\":\"x\"}", "X", F, 0, "to not contain \"x\""),
    C("{\"type\":\"contains\",\"value\":\"{{word}}\"}", "I love Paris", P, 1, NULL),
    C("{\"type\":\"contains\",\"value\":\"{{nothing}}\"}", "abc", E, 0, "non-empty value"),
    C("{\"type\":\"contains\",\"value\":\"a\\u0000b\"}", "xa", F, 0, NULL),

    /* contains-any/all and the case-insensitive forms */
    C("{\"type\":\"contains-any\",\"value\":[\"cat\",\"dog\"]}", "a dog", P, 1, NULL),
    C("{\"type\":\"contains-any\",\"value\":\"cat, dog\"}", "a dog", P, 1, NULL),
    C("{\"type\":\"contains-any\",\"value\":[\"cat\",\"dog\"]}", "a bird", F, 0, "to contain one of \"cat, dog\""),
    C("{\"type\":\"contains-any\",\"value\":[]}", "a bird", F, 0, NULL),
    C("{\"type\":\"contains-any\",\"value\":[1,2]}", "x2", P, 1, NULL),
    C("{\"type\":\"contains-all\",\"value\":[\"a\",\"b\"]}", "ab", P, 1, NULL),
    C("{\"type\":\"contains-all\",\"value\":[\"a\",\"b\",\"c\"]}", "a", F, 0, "contain all of [a, b, c]. Missing: [b, c]"),
    C("{\"type\":\"contains-all\",\"value\":[]}", "x", P, 1, NULL),
    C("{\"type\":\"contains-all\",\"value\":\"\\\"1,000\\\", in stock\"}", "1,000 units in stock", P, 1, NULL),
    C("{\"type\":\"contains-all\",\"value\":\"\\\"1,000\\\", in stock\"}", "1000 in stock", F, 0, "Missing: [1,000]"),
    C("{\"type\":\"icontains-any\",\"value\":[\"CAT\"]}", "Cat", P, 1, NULL),
    C("{\"type\":\"icontains-all\",\"value\":[\"A\",\"B\"]}", "ab", P, 1, NULL),
    C("{\"type\":\"icontains-all\",\"value\":[\"A\",\"Z\"]}", "ab", F, 0, "Missing: [Z]"),
    C("{\"type\":\"not-contains-any\",\"value\":[\"x\",\"y\"]}", "abc", P, 1, NULL),
    C("{\"type\":\"not-contains-any\",\"value\":[\"x\",\"y\"]}", "axc", F, 0, "to not contain one of \"x, y\""),
    C("{\"type\":\"not-contains-all\",\"value\":[\"a\",\"b\"]}", "ab", F, 0, "to not contain all of"),
    C("{\"type\":\"not-contains-all\",\"value\":[\"a\",\"b\"]}", "a", P, 1, NULL),
    C("{\"type\":\"contains-any\",\"value\":\"{{list}}\"}", "a big, dog", P, 1, NULL),
    C("{\"type\":\"contains-any\",\"value\":\"{{list}}\"}", "a big dog", F, 0, "cat, big, dog"),
    C("{\"type\":\"contains-any\",\"value\":[\"{{word}}\",\"x\"]}", "Paris!", P, 1, NULL),

    /* starts-with */
    C("{\"type\":\"starts-with\",\"value\":\"Yes\"}", "Yes, sir", P, 1, NULL),
    C("{\"type\":\"starts-with\",\"value\":\"No\"}", "Yes, sir", F, 0, "Expected output to start with \"No\""),
    C("{\"type\":\"not-starts-with\",\"value\":\"No\"}", "Yes", P, 1, NULL),

    /* regex: JS semantics on PCRE2 */
    C("{\"type\":\"regex\",\"value\":\"\\\\d{4}\"}", "year 2024", P, 1, NULL),
    C("{\"type\":\"regex\",\"value\":\"\\\\d{4}\"}", "year", F, 0, "Expected output to match regex \"\\d{4}\""),
    C("{\"type\":\"not-regex\",\"value\":\"\\\\d{4}\"}", "year 2024", F, 0, "to not match regex"),
    C("{\"type\":\"regex\",\"value\":\"^a$\"}", "a\n", F, 0, NULL),
    C("{\"type\":\"regex\",\"value\":\"^\\\\u0041$\"}", "A", P, 1, NULL),
    C("{\"type\":\"regex\",\"value\":\"^.$\"}", "\xc3\xa9", P, 1, NULL),
    C("{\"type\":\"regex\",\"value\":\"b\"}", "a\xff" "b", P, 1, NULL),
    C("{\"type\":\"regex\",\"value\":\"{{pattern}}\"}", "Paris", P, 1, NULL),
    C("{\"type\":\"regex\",\"value\":\"{{word}}(\"}", "Paris", E, 0, "does not compile"),

    /* word-count */
    C("{\"type\":\"word-count\",\"value\":3}", "one two three", P, 1, NULL),
    C("{\"type\":\"word-count\",\"value\":3}", "one two", F, 0, "Word count 2 does not equal expected 3"),
    C("{\"type\":\"word-count\",\"value\":\"3\"}", "  lots \t of\xc2\xa0space ", P, 1, NULL),
    C("{\"type\":\"word-count\",\"value\":\"{{n}}\"}", "a b c", P, 1, NULL),
    C("{\"type\":\"word-count\",\"value\":{\"min\":2,\"max\":3}}", "a b", P, 1, NULL),
    C("{\"type\":\"word-count\",\"value\":{\"min\":2,\"max\":3}}", "a", F, 0, "Word count 1 is not between 2 and 3"),
    C("{\"type\":\"word-count\",\"value\":{\"min\":2}}", "a", F, 0, "Word count 1 is less than minimum 2"),
    C("{\"type\":\"word-count\",\"value\":{\"max\":1}}", "a b", F, 0, "Word count 2 is greater than maximum 1"),
    C("{\"type\":\"not-word-count\",\"value\":3}", "a b c", F, 0, "Expected word count to not equal 3, but got 3"),
    C("{\"type\":\"word-count\",\"value\":0}", " \n ", P, 1, NULL),

    /* is-json, contains-json, schemas */
    C("{\"type\":\"is-json\"}", "{\"a\": 1}", P, 1, NULL),
    C("{\"type\":\"is-json\"}", " 5 ", P, 1, NULL),
    C("{\"type\":\"is-json\"}", "{a: 1}", F, 0, "Expected output to be valid JSON"),
    C("{\"type\":\"not-is-json\"}", "{a: 1}", P, 1, NULL),
    C("{\"type\":\"not-is-json\"}", "[]", F, 0, "to not be valid JSON"),
    C("{\"type\":\"is-json\",\"value\":{\"type\":\"object\",\"required\":[\"latitude\"],\"properties\":{\"latitude\":"
      "{\"type\":\"number\",\"minimum\":-90,\"maximum\":90}}}}",
      "{\"latitude\": 100}", F, 0, "JSON does not conform to the provided schema. Errors: data/latitude must be <= 90"),
    C("{\"type\":\"is-json\",\"value\":{\"type\":\"object\",\"required\":[\"latitude\"]}}", "{}", F, 0,
      "data must have required property 'latitude'"),
    C("{\"type\":\"is-json\",\"value\":{\"type\":\"object\",\"required\":[\"latitude\"]}}", "{\"latitude\":1}", P, 1, NULL),
    C("{\"type\":\"not-is-json\",\"value\":{\"type\":\"object\"}}", "{}", F, 0, "conforms to the provided schema"),
    C("{\"type\":\"not-is-json\",\"value\":{\"type\":\"object\"}}", "[]", P, 1, NULL),
    C("{\"type\":\"not-is-json\",\"value\":{\"type\":\"object\"}}", "nope", P, 1, NULL),
    C("{\"type\":\"is-json\",\"value\":\"type: array\\nitems: {type: string}\"}", "[\"a\"]", P, 1, NULL),
    C("{\"type\":\"is-json\",\"value\":\"type: array\\nitems: {type: string}\"}", "[1]", F, 0, "data/0 must be string"),
    C("{\"type\":\"is-json\",\"value\":\"{\\\"type\\\":\\\"string\\\"}\"}", "\"x\"", P, 1, NULL),
    C("{\"type\":\"contains-json\"}", "Sure: {\"a\": 1} done", P, 1, NULL),
    C("{\"type\":\"contains-json\"}", "no json here", F, 0, "Expected output to contain valid JSON"),
    C("{\"type\":\"contains-json\"}", "[1, 2]", F, 0, NULL),
    C("{\"type\":\"contains-json\"}", "x {\"a\":\"}\"} y", P, 1, NULL),
    C("{\"type\":\"contains-json\"}", "{{{{ {\"ok\":true}", P, 1, NULL),
    C("{\"type\":\"contains-json\"}", "{bad} {also bad", F, 0, NULL),
    C("{\"type\":\"not-contains-json\"}", "{\"a\":1}", F, 0, NULL),
    C("{\"type\":\"contains-json\",\"value\":{\"required\":[\"b\"]}}", "{\"a\":1} and {\"b\":2}", P, 1, NULL),
    C("{\"type\":\"contains-json\",\"value\":{\"required\":[\"b\"]}}", "{\"a\":1}", F, 0,
      "Errors: data must have required property 'b'"),
    C("{\"type\":\"contains-json\",\"value\":{\"required\":[\"b\"]}}", "nothing", F, 0, "Expected output to contain valid JSON"),
    C("{\"type\":\"not-contains-json\",\"value\":{\"required\":[\"b\"]}}", "{\"a\":1}", P, 1, NULL),

    /* levenshtein (UTF-16 units, default threshold 5) */
    C("{\"type\":\"levenshtein\",\"value\":\"hello world\"}", "hello world!", P, 1, NULL),
    C("{\"type\":\"levenshtein\",\"value\":\"hello world\"}", "goodbye moon", F, 0, "is greater than threshold 5"),
    C("{\"type\":\"levenshtein\",\"value\":\"sitting\",\"threshold\":0}", "kitten", F, 0,
      "Levenshtein distance 3 is greater than threshold 0"),
    C("{\"type\":\"levenshtein\",\"value\":\"sitting\",\"threshold\":3}", "kitten", P, 1, NULL),
    C("{\"type\":\"not-levenshtein\",\"value\":\"sitting\",\"threshold\":3}", "kitten", F, 0, "within threshold 3"),
    C("{\"type\":\"levenshtein\",\"value\":\"caf\\u00e9\",\"threshold\":0}", "cafe", F, 0, "distance 1"),
    C("{\"type\":\"levenshtein\",\"value\":\"\\ud83d\\ude00\",\"threshold\":1}", "", F, 0, "distance 2"),
    C("{\"type\":\"levenshtein\",\"value\":\"\\ud83d\\ude00\",\"threshold\":2}", "", P, 1, NULL),
    C("{\"type\":\"levenshtein\",\"value\":\"{{expected}}\",\"threshold\":1}", "hello word", P, 1, NULL),

    /* rouge-n (js-rouge: distinct candidate unigrams over reference unigrams), rouge-l */
    C("{\"type\":\"rouge-n\",\"value\":\"the cat sat on the mat\"}", "the cat sat on the mat", P, 5.0 / 6, NULL),
    C("{\"type\":\"rouge-n\",\"value\":\"hello world\"}", "Hello World", P, 1, NULL),
    C("{\"type\":\"rouge-n\",\"value\":\"hello world\"}", "goodbye", F, 0, "ROUGE-N score 0.0000 is less than threshold 0.75"),
    C("{\"type\":\"not-rouge-n\",\"value\":\"hello world\"}", "goodbye", P, 1, NULL),
    C("{\"type\":\"not-rouge-n\",\"value\":\"hello world\"}", "hello world", F, 0, "greater than or equal to"),
    C("{\"type\":\"rouge-n\",\"value\":\"hello world\",\"threshold\":0.5}", "hello there", P, 0.5, NULL),
    C("{\"type\":\"rouge-n\",\"value\":\"hello world\"}", "", E, 0, "empty"),
    C("{\"type\":\"rouge-n\",\"value\":\"Don't stop.\"}", "do n't stop .", P, 1, NULL),
    C("{\"type\":\"rouge-n\",\"value\":\"the big cat\",\"n\":2}", "the big dog", F, 0.5, NULL),
    C("{\"type\":\"rouge-n\",\"value\":\"\\\"Hi,\\\" she said (twice).\"}", "\" hi , \" she said ( twice ) .", P, 1, NULL),
    C("{\"type\":\"rouge-l\",\"value\":\"the cat sat on the mat\"}", "the cat on the mat", P, 10.0 / 11, NULL),
    C("{\"type\":\"rouge-l\",\"value\":\"a b c d\"}", "d c b a", F, 0.25, "ROUGE-L score 0.2500"),

    /* bleu: promptfoo's BLEU-4 with 1e-7 smoothing */
    C("{\"type\":\"bleu\",\"value\":\"the cat sat on the mat\"}", "the cat sat on the mat", P, 1, NULL),
    C("{\"type\":\"bleu\",\"value\":\"hello world\"}", "hello world", P, 1, NULL),
    C("{\"type\":\"bleu\",\"value\":\"hello world\"}", "goodbye world", F, 0.000223607, "BLEU score 0.0002 is less than"),
    C("{\"type\":\"bleu\",\"value\":[\"x y z w v\",\"a b c d e\"]}", "A B C D E", P, 1, NULL),
    C("{\"type\":\"bleu\",\"value\":[\"  \"]}", "a b c d", F, 0, NULL),
    C("{\"type\":\"bleu\",\"value\":\"{{expected}} and more\",\"threshold\":0.1}", "hello world and more", P, 1, NULL),
    C("{\"type\":\"bleu\",\"value\":\"a b c d e f\",\"threshold\":0.1}", "a b c d", P, 0.606531, NULL),
    C("{\"type\":\"not-bleu\",\"value\":\"a b c d e\"}", "a b c d e", F, 0, NULL),

    /* token F1 (SQuAD normalisation) */
    C("{\"type\":\"token-f1\",\"value\":\"The Eiffel Tower\"}", "eiffel tower in paris", P, 2.0 / 3, NULL),
    C("{\"type\":\"token-f1\",\"value\":\"Paris\"}", "London", F, 0, "Token F1 score 0.0000"),
    C("{\"type\":\"token-f1\",\"value\":\"a the\"}", "an", P, 1, NULL),
    C("{\"type\":\"token-f1\",\"value\":\"it's Paris!\"}", "its paris", P, 1, NULL),

    /* weight 0: reported, never failing */
    C("{\"type\":\"contains\",\"value\":\"z\",\"weight\":0}", "abc", P, 0, NULL),
    C("{\"type\":\"regex\",\"value\":\"{{word}}(\",\"weight\":0}", "x", E, 0, NULL),

    /* model-graded types are not run here */
    C("{\"type\":\"llm-rubric\",\"value\":\"is polite\"}", "hi", E, 0, "model-graded"),
    C("{\"type\":\"command\",\"value\":\"true\"}", "hi", E, 0, "external command"),
    C("{\"type\":\"similar\",\"value\":\"hi\"}", "hi", E, 0, NULL),

    /* assert-set */
    C("{\"type\":\"assert-set\",\"threshold\":0.5,\"assert\":[{\"type\":\"contains\",\"value\":\"a\"},"
      "{\"type\":\"contains\",\"value\":\"z\"}]}", "abc", P, 0.5, NULL),
    C("{\"type\":\"assert-set\",\"assert\":[{\"type\":\"contains\",\"value\":\"a\"},"
      "{\"type\":\"contains\",\"value\":\"z\"}]}", "abc", F, 0.5, "Expected output to contain \"z\""),
    C("{\"type\":\"assert-set\",\"threshold\":0.7,\"assert\":[{\"type\":\"contains\",\"value\":\"a\",\"weight\":3},"
      "{\"type\":\"contains\",\"value\":\"z\"}]}", "abc", P, 0.75, NULL),
    C("{\"type\":\"assert-set\",\"threshold\":0.8,\"assert\":[{\"type\":\"contains\",\"value\":\"a\",\"weight\":3},"
      "{\"type\":\"contains\",\"value\":\"z\"}]}", "abc", F, 0.75, "Aggregate score 0.75 < 0.8 threshold"),
    C("{\"type\":\"assert-set\",\"assert\":[{\"type\":\"contains\",\"value\":\"a\"},"
      "{\"type\":\"llm-rubric\",\"value\":\"nice\"}]}", "abc", E, 0.5, "model-graded"),
    C("{\"type\":\"assert-set\",\"assert\":[{\"type\":\"not-contains\",\"value\":\"z\"},"
      "{\"type\":\"icontains-any\",\"value\":\"A, q\"}]}", "abc", P, 1, NULL),
};

TEST(assert_verdicts)
{
    for (size_t i = 0; i < countof(verdicts); i++) {
        ev_output o = answer(verdicts[i].output);
        run_case(&verdicts[i], &o);
    }
}

/* ---- parse errors: each refused with its code and message ------------------------------ */

typedef struct pcase {
    const char *spec;
    err_code code;
    const char *msg; /* exact message */
} pcase;

static const pcase parse_errors[] = {
    { "[]", ERR_PARSE, PATH ": an assertion must be an object with a `type`" },
    { "{}", ERR_PARSE, PATH ": the assertion has no `type`" },
    { "{\"type\":5}", ERR_PARSE, PATH ": `type` must be a non-empty string" },
    { "{\"type\":\"\"}", ERR_PARSE, PATH ": `type` must be a non-empty string" },
    { "{\"type\":\"javascript\",\"value\":\"output.length > 1\"}", ERR_UNSUPPORTED,
      PATH ": assertion type 'javascript' is not implemented" },
    { "{\"type\":\"not-python\",\"value\":\"x\"}", ERR_UNSUPPORTED, PATH ": assertion type 'not-python' is not implemented" },
    { "{\"type\":\"webhook\"}", ERR_UNSUPPORTED, PATH ": assertion type 'webhook' is not implemented" },
    { "{\"type\":\"perplexity\"}", ERR_UNSUPPORTED, PATH ": assertion type 'perplexity' is not implemented" },
    { "{\"type\":\"promptfoo:redteam:harmful\"}", ERR_UNSUPPORTED,
      PATH ": assertion type 'promptfoo:redteam:harmful' is not implemented" },
    { "{\"type\":\"foo\"}", ERR_UNSUPPORTED, PATH ": unknown assertion type 'foo'" },
    { "{\"type\":\"not-\"}", ERR_UNSUPPORTED, PATH ": unknown assertion type 'not-'" },
    { "{\"type\":\"contains\",\"value\":\"x\",\"threshold\":\"high\"}", ERR_PARSE, PATH ": threshold must be a number" },
    { "{\"type\":\"contains\",\"value\":\"x\",\"weight\":-1}", ERR_PARSE, PATH ": weight must be a number >= 0" },
    { "{\"type\":\"contains\",\"value\":\"x\",\"weight\":\"2\"}", ERR_PARSE, PATH ": weight must be a number >= 0" },
    { "{\"type\":\"contains\",\"value\":\"x\",\"metric\":3}", ERR_PARSE, PATH ": metric must be a string" },
    { "{\"type\":\"contains\",\"value\":\"x\",\"provider\":3}", ERR_PARSE,
      PATH ": provider must be a provider id or an object with an `id`" },
    { "{\"type\":\"contains\",\"value\":\"x\",\"config\":[]}", ERR_PARSE, PATH ": config must be an object" },
    { "{\"type\":\"regex\",\"value\":\"(\"}", ERR_PARSE,
      PATH ": regex does not compile: missing closing parenthesis at offset 1" },
    { "{\"type\":\"regex\",\"value\":\"a{2,1}\"}", ERR_PARSE,
      PATH ": regex does not compile: numbers out of order in {} quantifier at offset 5" },
    { "{\"type\":\"regex\"}", ERR_PARSE, PATH ": regex needs a non-empty string value" },
    { "{\"type\":\"contains\"}", ERR_PARSE, PATH ": contains needs a non-empty string value" },
    { "{\"type\":\"contains\",\"value\":\"\"}", ERR_PARSE, PATH ": contains needs a non-empty string value" },
    { "{\"type\":\"contains\",\"value\":[\"a\"]}", ERR_PARSE, PATH ": contains needs a non-empty string value" },
    { "{\"type\":\"starts-with\",\"value\":5}", ERR_PARSE, PATH ": starts-with needs a non-empty string value" },
    { "{\"type\":\"equals\"}", ERR_PARSE, PATH ": equals needs a value" },
    { "{\"type\":\"equals\",\"value\":null}", ERR_PARSE, PATH ": equals needs a value" },
    { "{\"type\":\"contains-any\",\"value\":\"\\\"a, b\"}", ERR_PARSE,
      PATH ": contains-any: unterminated or misplaced quote in the value" },
    { "{\"type\":\"contains-all\",\"value\":\"\\\"a\\\" b\"}", ERR_PARSE,
      PATH ": contains-all: unterminated or misplaced quote in the value" },
    { "{\"type\":\"contains-any\",\"value\":[\"a\",{\"b\":1}]}", ERR_PARSE,
      PATH ": contains-any: entry 2 of the value is not a string or a number" },
    { "{\"type\":\"icontains-all\",\"value\":5}", ERR_PARSE,
      PATH ": icontains-all needs a list of strings or a comma-separated string" },
    { "{\"type\":\"contains-any\"}", ERR_PARSE, PATH ": contains-any needs a value (a list or a comma-separated string)" },
    { "{\"type\":\"word-count\",\"value\":{\"min\":5,\"max\":2}}", ERR_PARSE,
      PATH ": word-count: min (5) must not be more than max (2)" },
    { "{\"type\":\"word-count\",\"value\":{\"min\":\"5\"}}", ERR_PARSE,
      PATH ": word-count: the value object needs a numeric min and/or max" },
    { "{\"type\":\"word-count\",\"value\":{}}", ERR_PARSE, PATH ": word-count: the value object needs a numeric min and/or max" },
    { "{\"type\":\"word-count\",\"value\":\"abc\"}", ERR_PARSE, PATH ": word-count needs a number or {min, max}" },
    { "{\"type\":\"word-count\"}", ERR_PARSE, PATH ": word-count needs a value (a number or {min, max})" },
    { "{\"type\":\"is-json\",\"value\":{\"type\":\"object\",\"foo\":1}}", ERR_UNSUPPORTED,
      PATH ": is-json: unsupported JSON Schema keyword 'foo' at #" },
    { "{\"type\":\"contains-json\",\"value\":{\"properties\":{\"a\":{\"format\":\"credit-card\"}}}}", ERR_UNSUPPORTED,
      PATH ": contains-json: JSON Schema: format 'credit-card' at #/properties/a is not supported" },
    { "{\"type\":\"is-json\",\"value\":{\"type\":\"objekt\"}}", ERR_PARSE,
      PATH ": is-json: JSON Schema: 'type' at # must be a type name or a list of them" },
    { "{\"type\":\"is-json\",\"value\":{\"properties\":{\"a\":{\"pattern\":\"(\"}}}}", ERR_PARSE,
      PATH ": is-json: JSON Schema: pattern at #/properties/a does not compile: missing closing parenthesis at offset 1" },
    { "{\"type\":\"is-json\",\"value\":{\"$ref\":\"#/definitions/nope\"}}", ERR_PARSE,
      PATH ": is-json: JSON Schema: reference '#/definitions/nope' at # does not resolve" },
    { "{\"type\":\"is-json\",\"value\":{\"$ref\":\"http://x/s.json\"}}", ERR_UNSUPPORTED,
      PATH ": is-json: JSON Schema: only references inside the schema are supported ('http://x/s.json' at #)" },
    { "{\"type\":\"is-json\",\"value\":[1]}", ERR_PARSE, PATH ": is-json: the value must be a JSON Schema (an object)" },
    { "{\"type\":\"is-json\",\"value\":\"a: [\"}", ERR_PARSE, NULL },
    { "{\"type\":\"is-json\",\"value\":\"file://schema.json\"}", ERR_UNSUPPORTED,
      PATH ": is-json: file:// values are not supported; put the value inline" },
    { "{\"type\":\"equals\",\"value\":\"file://expected.txt\"}", ERR_UNSUPPORTED,
      PATH ": equals: file:// values are not supported; put the value inline" },
    { "{\"type\":\"contains\",\"value\":\"x\",\"transform\":\"output.trim()\"}", ERR_UNSUPPORTED,
      PATH ": `transform` (a JavaScript expression) is not implemented" },
    { "{\"type\":\"equals\",\"value\":\"x\",\"normalizeUnicode\":true}", ERR_UNSUPPORTED,
      PATH ": `normalizeUnicode` is not implemented" },
    { "{\"type\":\"latency\"}", ERR_PARSE,
      PATH ": latency needs a threshold (or a metric, to record the value without a limit)" },
    { "{\"type\":\"not-cost\",\"metric\":\"c\"}", ERR_PARSE, PATH ": not-cost needs a threshold" },
    { "{\"type\":\"not-assert-set\",\"assert\":[{\"type\":\"contains\",\"value\":\"a\"}]}", ERR_PARSE,
      PATH ": 'not-assert-set' is not a type (negate the assertions inside it)" },
    { "{\"type\":\"assert-set\"}", ERR_PARSE, PATH ": assert-set needs `assert`, a non-empty list of assertions" },
    { "{\"type\":\"assert-set\",\"assert\":[]}", ERR_PARSE, PATH ": assert-set needs `assert`, a non-empty list of assertions" },
    { "{\"type\":\"assert-set\",\"assert\":[{\"type\":\"assert-set\",\"assert\":[{\"type\":\"is-json\"}]}]}", ERR_PARSE,
      PATH ".assert[0]: an assert-set cannot contain another assert-set" },
    { "{\"type\":\"assert-set\",\"assert\":[{\"type\":\"is-json\"},{\"type\":\"zzz\"}]}", ERR_UNSUPPORTED,
      PATH ".assert[1]: unknown assertion type 'zzz'" },
    { "{\"type\":\"contains\",\"value\":\"a\",\"assert\":[]}", ERR_PARSE,
      PATH ": `assert` belongs to an assert-set, not to 'contains'" },
    { "{\"type\":\"levenshtein\",\"value\":5}", ERR_PARSE, PATH ": levenshtein needs a non-empty string value" },
    { "{\"type\":\"rouge-n\",\"value\":\"a\",\"n\":7}", ERR_PARSE, PATH ": rouge-n: n must be an integer from 1 to 4" },
    { "{\"type\":\"bleu\",\"value\":[\"a\",2]}", ERR_PARSE, PATH ": bleu: reference 2 is not a string" },
    { "{\"type\":\"bleu\",\"value\":[]}", ERR_PARSE, PATH ": bleu needs 1 to 64 reference strings" },
    { "{\"type\":\"bleu\",\"value\":{}}", ERR_PARSE, PATH ": bleu needs a string or a list of strings" },
    { "{\"type\":\"equals\",\"value\":\"{{#a}}x\"}", ERR_PARSE, NULL },
    { "{\"type\":\"contains\",\"value\":\"{% if x %}y{% endif %}\"}", ERR_UNSUPPORTED,
      PATH ": template tags ({% ... %}) are not supported in values" },
    { "{\"type\":\"is-valid-openai-tools-call\",\"tools\":[{\"type\":\"function\",\"function\":{\"description\":\"x\"}}]}",
      ERR_PARSE, PATH ": is-valid-openai-tools-call: tool 1 has no function name" },
    { "{\"type\":\"is-valid-openai-tools-call\",\"config\":{\"tools\":{}}}", ERR_PARSE,
      PATH ": is-valid-openai-tools-call: tools must be a list of {type: function, function: {name, parameters}}" },
};

TEST(assert_parse_errors)
{
    for (size_t i = 0; i < countof(parse_errors); i++) {
        const pcase *c = &parse_errors[i];
        json_error_t je;
        json_t *j = json_loads(c->spec, JSON_DECODE_ANY, &je);
        CHECK(j != NULL);
        ev_assert *a = (ev_assert *)1;
        char msg[512] = "x";
        err_code e = ev_assert_parse(j, PATH, &a, msg, sizeof msg);
        if (e != c->code)
            test_fail(__FILE__, __LINE__, "%s: %s (%s), expected %s", c->spec, err_name(e), msg, err_name(c->code));
        CHECK(a == NULL);
        if (c->msg)
            CHECK_STR(msg, c->msg);
        else if (strncmp(msg, PATH ": ", strlen(PATH) + 2) != 0)
            test_fail(__FILE__, __LINE__, "%s: message \"%s\" does not name the path", c->spec, msg);
        json_decref(j);
    }
    /* a tiny message buffer is truncated, never overrun */
    json_t *j = json_pack("{s:s}", "type", "nope");
    ev_assert *a;
    char small[8];
    CHECK_INT(ev_assert_parse(j, PATH, &a, small, sizeof small), ERR_UNSUPPORTED);
    CHECK_STR(small, "tests[3");
    CHECK_INT(ev_assert_parse(j, PATH, &a, NULL, 0), ERR_UNSUPPORTED);
    json_decref(j);
}

/* ---- what parsing keeps ---------------------------------------------------------------- */

TEST(assert_parse_fields)
{
    ev_assert *a = parse("{\"type\":\"not-llm-rubric\",\"value\":\"is kind\",\"threshold\":0.8,\"weight\":2,"
                         "\"metric\":\"tone\",\"provider\":{\"id\":\"openai:gpt-4o\",\"config\":{\"temperature\":0}},"
                         "\"rubricPrompt\":\"grade: {{output}}\",\"config\":{\"x\":1,\"rubricPrompt\":\"ignored\"}}",
                         __LINE__);
    CHECK(a != NULL);
    if (!a)
        return;
    CHECK_STR(a->type, "llm-rubric");
    CHECK(a->negate);
    CHECK_STR(json_string_value(a->value), "is kind");
    CHECK(fabs(a->threshold - 0.8) < 1e-12);
    CHECK(a->weight == 2);
    CHECK_STR(a->metric, "tone");
    CHECK_STR(a->provider, "openai:gpt-4o");
    CHECK_STR(a->path, PATH);
    CHECK_STR(json_string_value(json_object_get(a->config, "rubricPrompt")), "grade: {{output}}");
    CHECK_INT(json_integer_value(json_object_get(a->config, "x")), 1);
    CHECK(json_is_object(json_object_get(a->config, "provider")));
    CHECK(ev_assert_is_graded(a));
    ev_assert_free(a);

    a = parse("{\"type\":\"contains\",\"value\":\"x\",\"threshold\":null,\"weight\":null}", __LINE__);
    CHECK(a && isnan(a->threshold) && a->weight == 1 && !a->negate && !a->config && !a->metric);
    CHECK(a && !ev_assert_is_graded(a));
    ev_assert_free(a);

    a = parse("{\"type\":\"assert-set\",\"threshold\":0.5,\"metric\":\"m\",\"assert\":[{\"type\":\"contains\",\"value\":\"a\"},"
              "{\"type\":\"not-factuality\",\"value\":\"b\",\"weight\":0}]}",
              __LINE__);
    CHECK(a != NULL);
    if (a) {
        CHECK_INT(a->nchildren, 2);
        CHECK_STR(a->children[0].type, "contains");
        CHECK_STR(a->children[0].path, PATH ".assert[0]");
        CHECK_STR(a->children[1].type, "factuality");
        CHECK(a->children[1].negate && a->children[1].weight == 0);
        CHECK(ev_assert_is_graded(a));
        CHECK(!ev_assert_is_graded(&a->children[0]));
        CHECK(ev_assert_is_graded(&a->children[1]));
        /* a child runs on its own too (the runner expands sets with graded children) */
        ev_output o = answer("abc");
        ev_result r;
        ev_assert_check(&a->children[0], &o, &r);
        CHECK_INT(r.verdict, EV_PASS);
        ev_result_clear(&r);
    }
    ev_assert_free(a);
    ev_assert_free(NULL);

    /* every graded type is graded, every other implemented type is not */
    const char *const *types = ev_assert_types();
    size_t n = 0;
    for (; types[n]; n++) {
        if (n)
            CHECK(strcmp(types[n - 1], types[n]) < 0);
    }
    CHECK(n > 30);
    static const char *const graded[] = { "similar", "llm-rubric", "g-eval", "factuality", "model-graded-closedqa",
                                          "answer-relevance", "context-faithfulness", "context-recall",
                                          "context-relevance", "command", "similar:cosine" };
    for (size_t i = 0; i < countof(graded); i++) {
        json_t *j = json_pack("{s:s, s:s}", "type", graded[i], "value", "v");
        ev_assert *g = NULL;
        char msg[256];
        CHECK_INT(ev_assert_parse(j, PATH, &g, msg, sizeof msg), ERR_OK);
        CHECK(g && ev_assert_is_graded(g));
        ev_assert_free(g);
        json_decref(j);
    }
}

/* ---- provider metadata: finish reason, latency, cost, tool calls ------------------------- */

TEST(assert_metadata)
{
    ev_output o = answer("hi");
    o.finish_reason = "STOP";
    const vcase fr[] = {
        C("{\"type\":\"finish-reason\",\"value\":\"stop\"}", "", P, 1, NULL),
        C("{\"type\":\"finish-reason\",\"value\":\"length\"}", "", F, 0, "Expected finish reason \"length\" but got \"STOP\""),
        C("{\"type\":\"not-finish-reason\",\"value\":\"length\"}", "", P, 1, NULL),
        C("{\"type\":\"finish-reason\",\"value\":\"{{word}}\"}", "", F, 0, NULL),
    };
    for (size_t i = 0; i < countof(fr); i++)
        run_case(&fr[i], &o);
    o.finish_reason = NULL;
    const vcase nofr[] = {
        C("{\"type\":\"finish-reason\",\"value\":\"stop\"}", "", F, 0, "Provider did not supply stop/finish reason"),
        C("{\"type\":\"not-finish-reason\",\"value\":\"stop\"}", "", F, 0, "Provider did not supply"),
    };
    for (size_t i = 0; i < countof(nofr); i++)
        run_case(&nofr[i], &o);

    const vcase unknown[] = {
        C("{\"type\":\"latency\",\"threshold\":100}", "", E, 0, "latency unknown (cached answer)"),
        C("{\"type\":\"cost\",\"threshold\":0.01}", "", E, 0, "cost unknown"),
    };
    for (size_t i = 0; i < countof(unknown); i++)
        run_case(&unknown[i], &o);
    o.latency_ms = 250;
    o.cost_usd = 0.002;
    const vcase known[] = {
        C("{\"type\":\"latency\",\"threshold\":300}", "", P, 1, NULL),
        C("{\"type\":\"latency\",\"threshold\":250}", "", P, 1, NULL),
        C("{\"type\":\"latency\",\"threshold\":200}", "", F, 0, "Latency 250ms is greater than threshold 200ms"),
        C("{\"type\":\"not-latency\",\"threshold\":300}", "", F, 0, "Latency 250ms is less than or equal to threshold 300ms"),
        C("{\"type\":\"not-latency\",\"threshold\":200}", "", P, 1, NULL),
        C("{\"type\":\"latency\",\"metric\":\"ms\",\"weight\":0}", "", P, 250, NULL),
        C("{\"type\":\"cost\",\"threshold\":0.001}", "", F, 0, "Cost 0.002 is greater than threshold 0.001"),
        C("{\"type\":\"cost\",\"threshold\":0.01}", "", P, 1, NULL),
        C("{\"type\":\"cost\",\"metric\":\"usd\",\"weight\":0}", "", P, 0.002, NULL),
    };
    for (size_t i = 0; i < countof(known); i++)
        run_case(&known[i], &o);
    o.cost_usd = -1;
    const vcase negcost = C("{\"type\":\"cost\",\"threshold\":0.01}", "", E, 0, "cost unknown");
    run_case(&negcost, &o);
}

static const char weather_tools[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"city\":{\"type\":\"string\"},\"unit\":{\"enum\":[\"c\",\"f\"]}},\"required\":[\"city\"],"
    "\"additionalProperties\":false}}},{\"type\":\"function\",\"function\":{\"name\":\"noop\"}}]";

static json_t *calls(const char *name, const char *args)
{
    return json_pack("[{s:s, s:s, s:{s:s, s:s}}]", "id", "call_1", "type", "function", "function", "name", name,
                     "arguments", args);
}

TEST(assert_tools_call)
{
    char spec[1024];
    snprintf(spec, sizeof spec, "{\"type\":\"is-valid-openai-tools-call\",\"config\":{\"tools\":%s}}", weather_tools);
    char nspec[1024];
    snprintf(nspec, sizeof nspec, "{\"type\":\"not-is-valid-openai-tools-call\",\"tools\":%s}", weather_tools);
    static const struct {
        const char *name, *args;
        ev_verdict want;
        const char *reason;
    } cases[] = {
        { "get_weather", "{\"city\":\"Paris\",\"unit\":\"c\"}", EV_PASS, NULL },
        { "noop", "{\"anything\":[1]}", EV_PASS, NULL },
        { "get_weather", "{\"unit\":\"c\"}", EV_FAIL,
          "Call to \"get_weather\" does not match the function's schema: data must have required property 'city'" },
        { "get_weather", "{\"city\":\"Paris\",\"unit\":\"k\"}", EV_FAIL, "data/unit must be equal to one of the allowed values" },
        { "get_weather", "{\"city\":\"Paris\",\"x\":1}", EV_FAIL, "must NOT have additional properties ('x')" },
        { "get_weather", "{city: Paris}", EV_FAIL, "arguments that are not valid JSON" },
        { "book_flight", "{}", EV_FAIL, "Called \"book_flight\", but there is no function with that name" },
    };
    ev_assert *a = parse(spec, __LINE__), *na = parse(nspec, __LINE__);
    CHECK(a && na);
    if (!a || !na)
        return;
    for (size_t i = 0; i < countof(cases); i++) {
        json_t *tc = calls(cases[i].name, cases[i].args);
        ev_output o = answer("");
        o.tool_calls = tc;
        ev_result r;
        ev_assert_check(a, &o, &r);
        if (r.verdict != cases[i].want)
            test_fail(__FILE__, __LINE__, "case %zu: %s (%s)", i, vname(r.verdict), r.reason ? r.reason : "");
        if (cases[i].reason && (!r.reason || !strstr(r.reason, cases[i].reason)))
            test_fail(__FILE__, __LINE__, "case %zu: reason %s", i, r.reason ? r.reason : "(null)");
        ev_result_clear(&r);
        ev_assert_check(na, &o, &r);
        CHECK_INT(r.verdict, cases[i].want == EV_PASS ? EV_FAIL : EV_PASS);
        ev_result_clear(&r);
        json_decref(tc);
    }
    /* no tool calls at all, or calls only in the response body or the text */
    ev_output o = answer("I think it is sunny.");
    ev_result r;
    ev_assert_check(a, &o, &r);
    CHECK_INT(r.verdict, EV_FAIL);
    CHECK(r.reason && strstr(r.reason, "OpenAI did not return a valid-looking tools response"));
    ev_result_clear(&r);
    json_t *resp = json_pack("{s:[{s:{s:o}}]}", "choices", "message", "tool_calls", calls("get_weather", "{\"city\":\"Oslo\"}"));
    o.response = resp;
    ev_assert_check(a, &o, &r);
    CHECK_INT(r.verdict, EV_PASS);
    ev_result_clear(&r);
    json_decref(resp);
    ev_output t = answer("[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"x\\\"}\"}}]");
    ev_assert_check(a, &t, &r);
    CHECK_INT(r.verdict, EV_PASS);
    ev_result_clear(&r);
    ev_assert_free(a);
    ev_assert_free(na);

    /* tools from the test's vars (a list, or JSON text), or none: a shape check */
    a = parse("{\"type\":\"is-valid-openai-tools-call\"}", __LINE__);
    json_t *vars = json_pack("{s:s}", "tools", weather_tools);
    json_t *bad = calls("get_weather", "{}"), *odd = calls("whatever", "{\"a\":1}");
    o = answer("");
    o.tool_calls = bad;
    o.vars = vars;
    ev_assert_check(a, &o, &r);
    CHECK_INT(r.verdict, EV_FAIL);
    ev_result_clear(&r);
    o.vars = test_vars();
    ev_assert_check(a, &o, &r);
    CHECK_INT(r.verdict, EV_PASS); /* no tools known: only the shape */
    ev_result_clear(&r);
    o.tool_calls = odd;
    ev_assert_check(a, &o, &r);
    CHECK_INT(r.verdict, EV_PASS);
    ev_result_clear(&r);
    json_object_set_new(vars, "tools", json_string("[oops"));
    o.vars = vars;
    ev_assert_check(a, &o, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(r.reason && strstr(r.reason, "vars.tools"));
    ev_result_clear(&r);
    json_decref(bad);
    json_decref(odd);
    json_decref(vars);
    ev_assert_free(a);
}

/* ---- combining ---------------------------------------------------------------------------- */

TEST(assert_combine)
{
    static const struct {
        double w[4];
        ev_verdict v[4];
        double s[4];
        size_t n;
        double threshold;
        ev_verdict want;
        double score;
        const char *reason;
    } cases[] = {
        { { 1, 1 }, { P, P }, { 1, 1 }, 2, NAN, P, 1, NULL },
        { { 1, 1 }, { P, F }, { 1, 0 }, 2, NAN, F, 0.5, "second" },
        { { 1, 1 }, { P, F }, { 1, 0 }, 2, 0.5, P, 0.5, NULL },
        { { 1, 1 }, { P, F }, { 1, 0 }, 2, 0.6, F, 0.5, "Aggregate score 0.50 < 0.6 threshold" },
        { { 3, 1 }, { P, F }, { 1, 0 }, 2, 0.75, P, 0.75, NULL },
        { { 1, 0 }, { P, F }, { 1, 0 }, 2, NAN, P, 1, NULL },            /* weight 0 counts for nothing */
        { { 0, 0 }, { P, P }, { 1, 1 }, 2, NAN, P, 0, NULL },            /* total weight 0: score 0 */
        { { 1, 1 }, { P, E }, { 1, 0 }, 2, 0, E, 0.5, "second" },     /* an error wins even over a threshold */
        { { 1, 1, 1 }, { F, F, P }, { 0, 0.5, 1 }, 3, NAN, F, 0.5, "first" },
        { { 0 }, { P }, { 0 }, 0, NAN, P, 1, NULL },                     /* nothing to combine */
        { { 1, 1 }, { P, P }, { NAN, 1 }, 2, NAN, P, 0.5, NULL },        /* a NaN score counts as 0 */
    };
    static const char *const names[] = { "first", "second", "third", "fourth" };
    for (size_t i = 0; i < countof(cases); i++) {
        ev_assert as[4];
        const ev_assert *ap[4];
        ev_result rs[4];
        for (size_t k = 0; k < cases[i].n; k++) {
            memset(&as[k], 0, sizeof as[k]);
            as[k].weight = cases[i].w[k];
            ap[k] = &as[k];
            rs[k] = (ev_result){ cases[i].v[k], cases[i].s[k], (char *)names[k] };
        }
        ev_result out;
        ev_assert_combine(ap, rs, cases[i].n, cases[i].threshold, &out);
        if (out.verdict != cases[i].want || fabs(out.score - cases[i].score) > 1e-9)
            test_fail(__FILE__, __LINE__, "case %zu: %s %.4f, expected %s %.4f", i, vname(out.verdict), out.score,
                      vname(cases[i].want), cases[i].score);
        if (cases[i].reason && (!out.reason || !strstr(out.reason, cases[i].reason)))
            test_fail(__FILE__, __LINE__, "case %zu: reason %s", i, out.reason ? out.reason : "(null)");
        if (!cases[i].reason)
            CHECK(out.reason == NULL);
        ev_result_clear(&out);
    }
}

/* ---- the JSON Schema subset ----------------------------------------------------------------- */

typedef struct scase {
    const char *schema, *inst;
    bool valid;
    const char *msg; /* exact first error, or NULL */
} scase;

static const scase schemas[] = {
    { "true", "[1]", true, NULL },
    { "false", "1", false, "data boolean schema is false" },
    { "{\"type\":\"integer\"}", "3", true, NULL },
    { "{\"type\":\"integer\"}", "3.0", true, NULL },
    { "{\"type\":\"integer\"}", "3.5", false, "data must be integer" },
    { "{\"type\":[\"string\",\"null\"]}", "null", true, NULL },
    { "{\"type\":[\"string\",\"null\"]}", "1", false, "data must be null,string" },
    { "{\"enum\":[1,\"a\",{\"x\":[1]}]}", "{\"x\":[1.0]}", true, NULL },
    { "{\"enum\":[1,\"a\"]}", "\"b\"", false, "data must be equal to one of the allowed values" },
    { "{\"const\":{\"a\":null}}", "{\"a\":null}", true, NULL },
    { "{\"const\":2}", "3", false, "data must be equal to constant" },
    { "{\"minimum\":1,\"exclusiveMaximum\":3}", "3", false, "data must be < 3" },
    { "{\"exclusiveMinimum\":1}", "1", false, "data must be > 1" },
    { "{\"minimum\":1,\"exclusiveMinimum\":true}", "1", false, "data must be > 1" },
    { "{\"multipleOf\":0.5}", "2.5", true, NULL },
    { "{\"multipleOf\":3}", "7", false, "data must be multiple of 3" },
    { "{\"minLength\":2,\"maxLength\":3}", "\"\\u00e9\\u00e9\"", true, NULL },
    { "{\"maxLength\":1}", "\"\\ud83d\\ude00\"", true, NULL },
    { "{\"maxLength\":2}", "\"abc\"", false, "data must NOT have more than 2 characters" },
    { "{\"minLength\":2}", "\"a\"", false, "data must NOT have fewer than 2 characters" },
    { "{\"pattern\":\"^[a-z]+$\"}", "\"abc\"", true, NULL },
    { "{\"pattern\":\"^[a-z]+$\"}", "\"ab1\"", false, "data must match pattern \"^[a-z]+$\"" },
    { "{\"pattern\":\"^a\"}", "5", true, NULL },
    { "{\"format\":\"date\"}", "\"2024-02-29\"", true, NULL },
    { "{\"format\":\"date\"}", "\"2023-02-29\"", false, "data must match format \"date\"" },
    { "{\"format\":\"date-time\"}", "\"2024-05-01T10:20:30.5+02:00\"", true, NULL },
    { "{\"format\":\"date-time\"}", "\"2024-05-01T10:20:30\"", false, "data must match format \"date-time\"" },
    { "{\"format\":\"time\"}", "\"23:59:60Z\"", true, NULL },
    { "{\"format\":\"email\"}", "\"ada.lovelace@example.org\"", true, NULL },
    { "{\"format\":\"email\"}", "\"ada@localhost\"", false, "data must match format \"email\"" },
    { "{\"format\":\"uri\"}", "\"https://example.org/a?b=c\"", true, NULL },
    { "{\"format\":\"uri\"}", "\"not a uri\"", false, "data must match format \"uri\"" },
    { "{\"format\":\"uuid\"}", "\"123e4567-e89b-12d3-a456-426614174000\"", true, NULL },
    { "{\"format\":\"ipv4\"}", "\"192.168.0.255\"", true, NULL },
    { "{\"format\":\"ipv4\"}", "\"192.168.0.256\"", false, "data must match format \"ipv4\"" },
    { "{\"format\":\"ipv4\"}", "\"01.2.3.4\"", false, "data must match format \"ipv4\"" },
    { "{\"format\":\"ipv6\"}", "\"::1\"", true, NULL },
    { "{\"format\":\"hostname\"}", "\"a-b.example\"", true, NULL },
    { "{\"format\":\"hostname\"}", "\"-a.example\"", false, "data must match format \"hostname\"" },
    { "{\"required\":[\"a\"],\"properties\":{\"a\":{\"type\":\"object\",\"properties\":{\"b~/c\":{\"type\":\"string\"}}}}}",
      "{\"a\":{\"b~/c\":1}}", false, "data/a/b~0~1c must be string" },
    { "{\"additionalProperties\":false,\"properties\":{\"a\":true},\"patternProperties\":{\"^x-\":{\"type\":\"integer\"}}}",
      "{\"a\":1,\"x-y\":2}", true, NULL },
    { "{\"additionalProperties\":false,\"properties\":{\"a\":true},\"patternProperties\":{\"^x-\":{\"type\":\"integer\"}}}",
      "{\"a\":1,\"x-y\":\"s\"}", false, "data/x-y must be integer" },
    { "{\"additionalProperties\":false,\"properties\":{\"a\":true}}", "{\"a\":1,\"b\":2}", false,
      "data must NOT have additional properties ('b')" },
    { "{\"additionalProperties\":{\"type\":\"number\"}}", "{\"a\":1,\"b\":\"2\"}", false, "data/b must be number" },
    { "{\"propertyNames\":{\"maxLength\":2}}", "{\"abc\":1}", false, "data property name 'abc' is invalid" },
    { "{\"minProperties\":2}", "{\"a\":1}", false, "data must NOT have fewer than 2 properties" },
    { "{\"maxProperties\":0}", "{\"a\":1}", false, "data must NOT have more than 0 properties" },
    { "{\"dependentRequired\":{\"card\":[\"cvv\"]}}", "{\"card\":1}", false,
      "data must have property 'cvv' when property 'card' is present" },
    { "{\"dependencies\":{\"card\":[\"cvv\"]}}", "{\"x\":1}", true, NULL },
    { "{\"items\":{\"type\":\"string\"},\"minItems\":1,\"maxItems\":2}", "[\"a\",\"b\"]", true, NULL },
    { "{\"items\":{\"type\":\"string\"}}", "[\"a\",2]", false, "data/1 must be string" },
    { "{\"minItems\":1}", "[]", false, "data must NOT have fewer than 1 items" },
    { "{\"maxItems\":1}", "[1,2]", false, "data must NOT have more than 1 items" },
    { "{\"items\":[{\"type\":\"integer\"},{\"type\":\"string\"}],\"additionalItems\":false}", "[1,\"a\"]", true, NULL },
    { "{\"items\":[{\"type\":\"integer\"},{\"type\":\"string\"}],\"additionalItems\":false}", "[1,\"a\",3]", false,
      "data must NOT have more than 2 items" },
    { "{\"prefixItems\":[{\"type\":\"integer\"}],\"items\":{\"type\":\"string\"}}", "[1,\"a\",\"b\"]", true, NULL },
    { "{\"prefixItems\":[{\"type\":\"integer\"}],\"items\":{\"type\":\"string\"}}", "[1,\"a\",2]", false, "data/2 must be string" },
    { "{\"uniqueItems\":true}", "[1,\"1\",[1],{\"a\":1}]", true, NULL },
    { "{\"uniqueItems\":true}", "[1,2,1.0]", false, "data must NOT have duplicate items (items ## 0 and 2 are identical)" },
    { "{\"contains\":{\"const\":3}}", "[1,2,3]", true, NULL },
    { "{\"contains\":{\"const\":3}}", "[1,2]", false, "data must contain at least 1 valid item(s)" },
    { "{\"allOf\":[{\"type\":\"number\"},{\"minimum\":2}]}", "1", false, "data must be >= 2" },
    { "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"number\"}]}", "1", true, NULL },
    { "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"number\"}]}", "null", false, "data must match a schema in anyOf" },
    { "{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}", "1.5", true, NULL },
    { "{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}", "1", false,
      "data must match exactly one schema in oneOf (matched more than one)" },
    { "{\"not\":{\"type\":\"string\"}}", "\"a\"", false, "data must NOT be valid" },
    { "{\"if\":{\"properties\":{\"kind\":{\"const\":\"a\"}}},\"then\":{\"required\":[\"x\"]},\"else\":{\"required\":[\"y\"]}}",
      "{\"kind\":\"a\",\"x\":1}", true, NULL },
    { "{\"if\":{\"properties\":{\"kind\":{\"const\":\"a\"}}},\"then\":{\"required\":[\"x\"]},\"else\":{\"required\":[\"y\"]}}",
      "{\"kind\":\"b\",\"x\":1}", false, "data must have required property 'y'" },
    { "{\"$defs\":{\"pos\":{\"type\":\"integer\",\"minimum\":1}},\"properties\":{\"n\":{\"$ref\":\"#/$defs/pos\"}}}",
      "{\"n\":0}", false, "data/n must be >= 1" },
    { "{\"definitions\":{\"node\":{\"type\":\"object\",\"properties\":{\"next\":{\"$ref\":\"#/definitions/node\"},"
      "\"v\":{\"type\":\"integer\"}}}},\"$ref\":\"#/definitions/node\"}",
      "{\"v\":1,\"next\":{\"v\":2,\"next\":{\"v\":\"x\"}}}", false, "data/next/next/v must be integer" },
    { "{\"type\":\"object\",\"properties\":{\"child\":{\"$ref\":\"#\"}}}", "{\"child\":{\"child\":{}}}", true, NULL },
    { "{\"title\":\"t\",\"description\":\"d\",\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"default\":1,"
      "\"examples\":[1],\"$comment\":\"c\",\"$id\":\"x\",\"readOnly\":true}", "1", true, NULL },
    { "{\"$ref\":\"#\"}", "1", false, "data could not be validated: schema nesting deeper than 256" },
};

TEST(assert_jschema)
{
    for (size_t i = 0; i < countof(schemas); i++) {
        const scase *c = &schemas[i];
        json_error_t je;
        json_t *s = json_loads(c->schema, JSON_DECODE_ANY, &je), *x = json_loads(c->inst, JSON_DECODE_ANY, &je);
        CHECK(s && x);
        jschema *js = NULL;
        char msg[300];
        err_code e = jschema_compile(s, &js, msg, sizeof msg);
        if (e != ERR_OK) {
            test_fail(__FILE__, __LINE__, "schema %zu: %s", i, msg);
        } else {
            bool ok = jschema_validate(js, x, msg, sizeof msg);
            if (ok != c->valid)
                test_fail(__FILE__, __LINE__, "schema %zu %s on %s: %s (%s)", i, c->schema, c->inst,
                          ok ? "valid" : "invalid", msg);
            if (!ok && c->msg)
                CHECK_STR(msg, c->msg);
            if (ok)
                CHECK_STR(msg, "");
        }
        jschema_free(js);
        json_decref(s);
        json_decref(x);
    }
    /* long arrays go through the hashed uniqueItems path */
    json_t *s = json_pack("{s:b}", "uniqueItems", 1), *arr = json_array();
    for (int i = 0; i < 500; i++)
        json_array_append_new(arr, json_pack("{s:i, s:[i]}", "k", i, "l", i % 7));
    jschema *js;
    char msg[300];
    CHECK_INT(jschema_compile(s, &js, msg, sizeof msg), ERR_OK);
    CHECK(jschema_validate(js, arr, msg, sizeof msg));
    json_array_append_new(arr, json_pack("{s:[f], s:f}", "l", 3.0, "k", 10.0));
    CHECK(!jschema_validate(js, arr, msg, sizeof msg));
    CHECK_STR(msg, "data must NOT have duplicate items (items ## 10 and 500 are identical)");
    CHECK(!jschema_validate(js, arr, NULL, 0));
    jschema_free(js);
    json_decref(s);
    json_decref(arr);

    /* schemas nested too deep are refused when compiled */
    json_t *deep = json_true();
    for (int i = 0; i < 70; i++)
        deep = json_pack("{s:o}", "not", deep);
    CHECK_INT(jschema_compile(deep, &js, msg, sizeof msg), ERR_PARSE);
    CHECK(strstr(msg, "nested deeper than 64 levels") != NULL);
    json_decref(deep);

    /* equality */
    json_t *a = json_loads("{\"a\":[1,2.0,{\"b\":null}],\"c\":\"x\"}", 0, NULL);
    json_t *b = json_loads("{\"c\":\"x\",\"a\":[1.0,2,{\"b\":null}]}", 0, NULL);
    json_t *d = json_loads("{\"c\":\"x\",\"a\":[1.0,2,{\"b\":false}]}", 0, NULL);
    CHECK(jschema_equal(a, b));
    CHECK(!jschema_equal(a, d));
    CHECK(!jschema_equal(a, NULL));
    json_decref(a);
    json_decref(b);
    json_decref(d);
}

/* ---- text primitives and metrics directly --------------------------------------------------- */

TEST(assert_text_primitives)
{
    CHECK_INT(at_word_count(SV("  one\ttwo\nthree  ")), 3);
    CHECK_INT(at_word_count(SV("a\xc2\xa0" "b\xe3\x80\x80" "c\xe2\x80\xa8" "d")), 4); /* NBSP, U+3000, U+2028 */
    CHECK_INT(at_word_count(SV("a\xe2\x80\x8b" "b")), 1);                            /* U+200B is not \s */
    CHECK_INT(at_word_count(SV("")), 0);
    sv t = at_trim(SV("\xef\xbb\xbf x y \xc2\xa0"));
    CHECK_MEM(t.p, t.len, "x y");
    CHECK_INT(at_codepoints(SV("a\xc3\xa9\xf0\x9f\x98\x80\xff")), 4);
    buf b;
    buf_init(&b, 1024);
    CHECK_INT(at_lower(SV("ABC \xc3\x89T\xc3\x89 \xd0\x9f\xce\xa3 \xc4\xb0 \xff"), &b), ERR_OK);
    CHECK_MEM(b.p, b.len, "abc \xc3\xa9t\xc3\xa9 \xd0\xbf\xcf\x83 i\xcc\x87 \xff");
    buf_free(&b);

    char m[200];
    pcre2_code *re = at_regex_compile("colou?r", 7, m, sizeof m);
    CHECK(re != NULL);
    CHECK_INT(at_regex_search(re, "the color", 9, m, sizeof m), 1);
    CHECK_INT(at_regex_search(re, "the colr", 8, m, sizeof m), 0);
    pcre2_code_free(re);
    /* catastrophic backtracking ends in an error or an answer, not a hang */
    re = at_regex_compile("^(a|aa)+$", 9, m, sizeof m);
    char s[64];
    memset(s, 'a', 40);
    s[40] = 'b';
    int rc = at_regex_search(re, s, 41, m, sizeof m);
    CHECK(rc == 0 || rc == -1);
    pcre2_code_free(re);
}

static size_t lev_exact(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b), row[64];
    for (size_t j = 0; j <= m; j++)
        row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j], v = MIN(row[j] + 1, row[j - 1] + 1);
            v = MIN(v, diag + (a[i - 1] != b[j - 1]));
            diag = up;
            row[j] = v;
        }
    }
    return row[m];
}

TEST(assert_levenshtein_banded)
{
    unsigned seed = 12345;
    char a[40], b[40], m[200];
    for (int iter = 0; iter < 3000; iter++) {
        size_t na = (seed = seed * 1103515245 + 12345) >> 16 & 31, nb = (seed = seed * 1103515245 + 12345) >> 16 & 31;
        for (size_t i = 0; i < na; i++)
            a[i] = (char)('a' + ((seed = seed * 1103515245 + 12345) >> 16) % 3);
        for (size_t i = 0; i < nb; i++)
            b[i] = (char)('a' + ((seed = seed * 1103515245 + 12345) >> 16) % 3);
        a[na] = b[nb] = '\0';
        size_t want = lev_exact(a, b), got = 0, limit = ((seed = seed * 1103515245 + 12345) >> 16) % 12;
        CHECK_INT(at_levenshtein(sv_from(a), sv_from(b), 64, SIZE_MAX, &got, m, sizeof m), 0);
        if (got != want)
            test_fail(__FILE__, __LINE__, "lev(%s, %s) = %zu, expected %zu", a, b, got, want);
        CHECK_INT(at_levenshtein(sv_from(a), sv_from(b), 64, limit, &got, m, sizeof m), 0);
        if (want <= limit ? got != want : got <= limit)
            test_fail(__FILE__, __LINE__, "banded lev(%s, %s, %zu) = %zu, exact %zu", a, b, limit, got, want);
    }
    size_t d;
    CHECK_INT(at_levenshtein(SV("kitten"), SV("sitting"), 64, SIZE_MAX, &d, m, sizeof m), 0);
    CHECK_INT(d, 3);
    CHECK_INT(at_levenshtein(SV("\xf0\x9f\x98\x80" "a"), SV("a"), 64, SIZE_MAX, &d, m, sizeof m), 0);
    CHECK_INT(d, 2);
    CHECK_INT(at_levenshtein(SV("abcdef"), SV("x"), 4, SIZE_MAX, &d, m, sizeof m), -1);
    CHECK(strstr(m, "longer than 4") != NULL);
    /* the long-text bound of the assertion itself */
    char *big = malloc(EV_ASSERT_MAX_TEXT + 2);
    memset(big, 'x', EV_ASSERT_MAX_TEXT + 1);
    big[EV_ASSERT_MAX_TEXT + 1] = '\0';
    ev_assert *a2 = parse("{\"type\":\"levenshtein\",\"value\":\"xx\"}", __LINE__);
    ev_output o = answer(big);
    ev_result r;
    ev_assert_check(a2, &o, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(r.reason && strstr(r.reason, "longer than 65536 bytes"));
    ev_result_clear(&r);
    /* just under the bound: a short value still gets the exact distance */
    big[EV_ASSERT_MAX_TEXT] = '\0';
    o = answer(big);
    ev_assert_check(a2, &o, &r);
    CHECK_INT(r.verdict, EV_FAIL);
    CHECK(r.reason && strstr(r.reason, "Levenshtein distance 65534 is greater than threshold 5"));
    ev_result_clear(&r);
    ev_assert_free(a2);
    /* two long texts: the band around the diagonal decides */
    big[5000] = '\0';
    json_t *spec = json_pack("{s:s, s:s#}", "type", "levenshtein", "value", big, (size_t)5000);
    char msg[256];
    CHECK_INT(ev_assert_parse(spec, PATH, &a2, msg, sizeof msg), ERR_OK);
    big[10] = big[2000] = big[4999] = 'y';
    o = answer(big);
    ev_assert_check(a2, &o, &r);
    CHECK_INT(r.verdict, EV_PASS);
    ev_result_clear(&r);
    big[3000] = big[3001] = big[3002] = 'y';
    ev_assert_check(a2, &o, &r);
    CHECK_INT(r.verdict, EV_FAIL);
    CHECK(r.reason && strstr(r.reason, "Levenshtein distance is more than threshold 5"));
    ev_result_clear(&r);
    big[4000] = '\0'; /* 1000 shorter: over the threshold at once */
    o = answer(big);
    ev_assert_check(a2, &o, &r);
    CHECK_INT(r.verdict, EV_FAIL);
    ev_result_clear(&r);
    json_decref(spec);
    ev_assert_free(a2);
    free(big);
}

TEST(assert_metrics)
{
    double s;
    char m[200];
    CHECK_INT(at_rouge_n(SV("the cat sat"), SV("the cat sat on the mat"), 1, &s, m, sizeof m), 0);
    CHECK(fabs(s - 3.0 / 6) < 1e-12);
    CHECK_INT(at_rouge_n(SV("It's a dog's life."), SV("it 's a dog 's life ."), 1, &s, m, sizeof m), 0);
    CHECK(fabs(s - 6.0 / 7) < 1e-12); /* 's is one distinct unigram twice in the reference */
    CHECK_INT(at_rouge_n(SV("I cannot go, gonna stay"), SV("i can not go , gon na stay"), 1, &s, m, sizeof m), 0);
    CHECK(fabs(s - 1) < 1e-12);
    CHECK_INT(at_rouge_n(SV("See the U.S."), SV("see the u.s."), 1, &s, m, sizeof m), 0);
    CHECK(fabs(s - 1) < 1e-12);
    CHECK_INT(at_rouge_n(SV("a"), SV("a b"), 2, &s, m, sizeof m), -1);
    CHECK_INT(at_rouge_n(SV("   "), SV("a"), 1, &s, m, sizeof m), -1);
    CHECK_INT(at_rouge_l(SV("a b c"), SV("a c"), &s, m, sizeof m), 0);
    CHECK(fabs(s - 0.8) < 1e-12);
    const sv refs[] = { SV("the cat is on the mat"), SV("there is a cat on the mat") };
    CHECK_INT(at_bleu(SV("the the the the the the the"), refs, 2, &s, m, sizeof m), 0);
    CHECK(s < 0.01);
    CHECK_INT(at_bleu(SV("the cat is on the mat"), refs, 2, &s, m, sizeof m), 0);
    CHECK(fabs(s - 1) < 1e-12);
    CHECK_INT(at_bleu(SV(""), refs, 2, &s, m, sizeof m), -1);
    CHECK_INT(at_token_f1(SV("The quick, brown fox!"), SV("quick brown fox jumps"), &s, m, sizeof m), 0);
    CHECK(fabs(s - 6.0 / 7) < 1e-12);
    CHECK_INT(at_token_f1(SV("a"), SV("b c"), &s, m, sizeof m), 0);
    CHECK(s == 0);
}

/* ---- golden cases ------------------------------------------------------------------------------ */

TEST(assert_golden)
{
    size_t len;
    char *text = test_read_data("assert/golden.jsonl", &len);
    if (!text)
        return;
    int lineno = 0, cases = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        if (!*line)
            continue;
        json_error_t je;
        json_t *g = json_loads(line, 0, &je);
        if (!g) {
            test_fail(__FILE__, __LINE__, "golden line %d: %s", lineno, je.text);
            continue;
        }
        const char *name = json_string_value(json_object_get(g, "name"));
        char path[64], msg[512];
        snprintf(path, sizeof path, "golden[%d]", lineno);
        ev_assert *a = NULL;
        if (ev_assert_parse(json_object_get(g, "assert"), path, &a, msg, sizeof msg) != ERR_OK) {
            test_fail(__FILE__, __LINE__, "%s: %s", name, msg);
            json_decref(g);
            continue;
        }
        json_t *vars = json_object_get(g, "vars");
        json_t *empty = json_object();
        const json_t *lat = json_object_get(g, "latency_ms"), *cost = json_object_get(g, "cost_usd");
        ev_output o = answer(json_string_value(json_object_get(g, "output")));
        o.vars = vars ? vars : empty;
        o.finish_reason = json_string_value(json_object_get(g, "finish_reason"));
        o.latency_ms = lat ? json_number_value(lat) : NAN;
        o.cost_usd = cost ? json_number_value(cost) : NAN;
        ev_result r;
        ev_assert_check(a, &o, &r);
        const char *want = json_string_value(json_object_get(g, "verdict"));
        if (!want || strcmp(vname(r.verdict), want) != 0)
            test_fail(__FILE__, __LINE__, "%s: %s (%s), expected %s", name, vname(r.verdict), r.reason ? r.reason : "",
                      want ? want : "?");
        const json_t *score = json_object_get(g, "score");
        if (score && fabs(json_number_value(score) - r.score) > 1e-6)
            test_fail(__FILE__, __LINE__, "%s: score %.6f, expected %.6f", name, r.score, json_number_value(score));
        ev_result_clear(&r);
        ev_assert_free(a);
        json_decref(empty);
        json_decref(g);
        cases++;
    }
    CHECK(cases >= 30);
    free(text);
}

/* ---- one parsed tree, several threads --------------------------------------------------------- */

static const char *const mt_specs[] = {
    "{\"type\":\"icontains-any\",\"value\":[\"PARIS\",\"{{word}}\"]}",
    "{\"type\":\"regex\",\"value\":\"^[A-Z][a-z]+ \\\\d+$\"}",
    "{\"type\":\"levenshtein\",\"value\":\"{{expected}}\",\"threshold\":3}",
    "{\"type\":\"rouge-n\",\"value\":\"the quick brown fox\"}",
    "{\"type\":\"bleu\",\"value\":[\"a quick brown fox\",\"the fast fox\"]}",
    "{\"type\":\"is-json\",\"value\":{\"type\":\"object\",\"properties\":{\"n\":{\"pattern\":\"^[0-9]+$\"}}}}",
    "{\"type\":\"assert-set\",\"threshold\":0.5,\"assert\":[{\"type\":\"contains\",\"value\":\"o\"},{\"type\":\"word-count\",\"value\":{\"max\":3}}]}",
};
static const char *const mt_outputs[] = { "Paris 12", "hello world", "the quick brown fox", "{\"n\":\"42\"}", "x" };

typedef struct mt_job {
    ev_assert **as;
    ev_verdict want[countof(mt_specs)][countof(mt_outputs)];
    int bad;
} mt_job;

static void *mt_run(void *arg)
{
    mt_job *j = arg;
    for (int rep = 0; rep < 300; rep++)
        for (size_t i = 0; i < countof(mt_specs); i++)
            for (size_t k = 0; k < countof(mt_outputs); k++) {
                ev_output o = answer(mt_outputs[k]);
                ev_result r;
                ev_assert_check(j->as[i], &o, &r);
                if (r.verdict != j->want[i][k])
                    __atomic_add_fetch(&j->bad, 1, __ATOMIC_RELAXED);
                ev_result_clear(&r);
            }
    at_scratch_trim(true);
    return NULL;
}

TEST(assert_threads)
{
    ev_assert *as[countof(mt_specs)];
    static mt_job j;
    j.as = as;
    for (size_t i = 0; i < countof(mt_specs); i++) {
        as[i] = parse(mt_specs[i], __LINE__);
        if (!as[i])
            return;
        for (size_t k = 0; k < countof(mt_outputs); k++) {
            ev_output o = answer(mt_outputs[k]);
            ev_result r;
            ev_assert_check(as[i], &o, &r);
            j.want[i][k] = r.verdict;
            ev_result_clear(&r);
        }
    }
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK_INT(pthread_create(&t[i], NULL, mt_run, &j), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK_INT(j.bad, 0);
    for (size_t i = 0; i < countof(mt_specs); i++)
        ev_assert_free(as[i]);
}

/* ---- hostile answers: bounded time, no crash ------------------------------------------------- */

static ev_verdict verdict_of(const char *spec, const char *text)
{
    ev_assert *a = parse(spec, __LINE__);
    if (!a)
        return EV_ERROR;
    ev_output o = answer(text);
    ev_result r;
    ev_assert_check(a, &o, &r);
    ev_verdict v = r.verdict;
    ev_result_clear(&r);
    ev_assert_free(a);
    return v;
}

TEST(assert_hostile)
{
    size_t n = 60000;
    char *t = malloc(n * 6 + 16);
    /* nested candidate objects that never parse */
    size_t k = 0;
    for (size_t i = 0; i < 10000; i++)
        memcpy(t + k, "{\"a\":", 5), k += 5;
    t[k++] = 'x';
    for (size_t i = 0; i < 10000; i++)
        t[k++] = '}';
    t[k] = '\0';
    CHECK_INT(verdict_of("{\"type\":\"contains-json\"}", t), EV_FAIL);
    CHECK_INT(verdict_of("{\"type\":\"contains-json\",\"value\":{\"type\":\"object\"}}", t), EV_FAIL);
    /* deep nesting */
    memset(t, '[', n);
    t[n] = '\0';
    CHECK_INT(verdict_of("{\"type\":\"is-json\"}", t), EV_FAIL);
    CHECK_INT(verdict_of("{\"type\":\"is-json\",\"value\":{\"type\":\"array\"}}", t), EV_FAIL);
    CHECK_INT(verdict_of("{\"type\":\"contains-json\"}", t), EV_FAIL);
    /* thousands of one-letter words: ROUGE-L refuses the size, the others cope */
    for (size_t i = 0; i < n; i += 2)
        t[i] = 'a', t[i + 1] = ' ';
    t[n] = '\0';
    char spec[200];
    CHECK_INT(verdict_of("{\"type\":\"word-count\",\"value\":30000}", t), EV_PASS);
    snprintf(spec, sizeof spec, "{\"type\":\"rouge-l\",\"value\":\"{{long}}\"}");
    json_t *vars = json_pack("{s:s}", "long", t);
    ev_assert *a = parse(spec, __LINE__);
    ev_output o = answer(t);
    o.vars = vars;
    ev_result r;
    ev_assert_check(a, &o, &r);
    CHECK_INT(r.verdict, EV_ERROR);
    CHECK(r.reason && strstr(r.reason, "too long"));
    ev_result_clear(&r);
    ev_assert_free(a);
    static const char *const big_specs[] = {
        "{\"type\":\"rouge-n\",\"value\":\"{{long}}\"}",       "{\"type\":\"bleu\",\"value\":\"{{long}}\"}",
        "{\"type\":\"token-f1\",\"value\":\"{{long}}\"}",     "{\"type\":\"levenshtein\",\"value\":\"{{long}}x\"}",
        "{\"type\":\"icontains\",\"value\":\"{{long}}\"}", "{\"type\":\"regex\",\"value\":\"^(a |a  )+$\"}",
    };
    for (size_t i = 0; i < countof(big_specs); i++) {
        a = parse(big_specs[i], __LINE__);
        if (!a)
            continue;
        ev_assert_check(a, &o, &r);
        /* rouge-n: one distinct unigram over 30000 reference unigrams */
        ev_verdict want = i == 0 ? EV_FAIL : EV_PASS;
        if (r.verdict != want && !(i == 5 && r.verdict == EV_ERROR))
            test_fail(__FILE__, __LINE__, "%s: %s", big_specs[i], r.reason ? r.reason : "");
        if (i == 0)
            CHECK(fabs(r.score - 1.0 / 30000) < 1e-9);
        CHECK(!isnan(r.score));
        ev_result_clear(&r);
        ev_assert_free(a);
    }
    json_decref(vars);
    free(t);
}
