/*
 * test_avi.c - the Agentic Variability Index: each component on cases
 * small enough to compute by hand, the index and its renormalisation, NAN
 * handling, hostile samples, the options, and the report (JSON, drivers
 * order, remedies, bounded memory over many cases).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "eval/avi.h"
#include "test.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)
#define CHECK_NEAR(a, b)                                                                     \
    do {                                                                                     \
        double a_ = (a), b_ = (b);                                                           \
        if (!NEAR(a_, b_))                                                                   \
            test_fail(__FILE__, __LINE__, "%s == %.12g, expected %.12g", #a, a_, b_);        \
    } while (0)

/* A sample that passed, answered text, and took ms and usd. */
static avi_sample run(ev_verdict v, const char *text, const json_t *calls, double ms, double usd)
{
    return (avi_sample){ .verdict = v, .output = text, .tool_calls = calls, .latency_ms = ms, .cost_usd = usd };
}

static json_t *calls_of(const char *json)
{
    json_error_t e;
    json_t *j = json_loads(json, 0, &e);
    if (!j)
        test_fail(__FILE__, __LINE__, "bad test JSON: %s", e.text);
    return j;
}

TEST(avi_identical_runs_are_zero)
{
    json_t *calls = calls_of("[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"lookup\","
                             "\"arguments\":\"{\\\"order\\\":\\\"A1\\\"}\"}}]");
    avi_sample s[4];
    for (int i = 0; i < 4; i++)
        s[i] = run(EV_PASS, "Your refund was approved.", calls, 120, 0.002);
    avi_case c;
    avi_measure(s, 4, NULL, NULL, &c);
    CHECK_NEAR(c.outcome, 0);
    CHECK_NEAR(c.dispersion, 0);
    CHECK_NEAR(c.trajectory, 0);
    CHECK(c.has_trajectory);
    CHECK_NEAR(c.latency, 0);
    CHECK_NEAR(c.cost, 0);
    CHECK_NEAR(c.index, 0);
    CHECK_INT(c.runs, 4);
    CHECK_INT(c.failures, 0);
    json_decref(calls);
}

TEST(avi_outcome_table)
{
    /* P pass, F fail, E verdict error, X the call failed */
    static const struct {
        const char *runs;
        double want;
        size_t failures;
    } cases[] = {
        { "PF", 1, 0 },            /* k=2: the one pair disagrees, the most it can */
        { "PPFF", 1, 0 },          /* an even split */
        { "PPPFFF", 1, 0 },
        { "PPPFF", 1, 0 },         /* as even as 5 runs can be: 6/10 pairs of at most 6/10 */
        { "PPPPF", 4.0 / 6.0 },    /* 4 of 10 pairs disagree, at most 6 of 10 */
        { "PPPF", 0.75 },          /* 3 of 6 pairs, at most 4 of 6 */
        { "PPPPPPPPPF", 9.0 / 25.0 }, /* 9 of 45, at most 25 of 45 */
        { "PPP", 0 },
        { "FFFF", 0 },
        { "EEE", 0 },              /* always an error is stable, too */
        { "PFE", 1 },              /* three outcomes: capped at 1 */
        { "PPFE", 1 },             /* 5 of 6 pairs, at most 4 of 6: capped */
        { "PPX", 1.0, 1 },         /* a failed call is an error outcome: 2 of 3 pairs, at most 2 of 3 */
        { "PPPX", 0.75, 1 },
        { "XEPP", 1, 1 },          /* X and E are the same outcome: an even split */
    };
    for (size_t i = 0; i < countof(cases); i++) {
        avi_sample s[16];
        size_t k = strlen(cases[i].runs);
        for (size_t j = 0; j < k; j++) {
            char ch = cases[i].runs[j];
            s[j] = run(ch == 'P' ? EV_PASS : ch == 'F' ? EV_FAIL : EV_ERROR, ch == 'X' ? "" : "same", NULL, NAN, NAN);
            s[j].failed = ch == 'X';
        }
        avi_case c;
        avi_measure(s, k, NULL, NULL, &c);
        if (!NEAR(c.outcome, cases[i].want))
            test_fail(__FILE__, __LINE__, "%s: outcome %.6f, expected %.6f", cases[i].runs, c.outcome,
                      cases[i].want);
        if (c.failures != cases[i].failures)
            test_fail(__FILE__, __LINE__, "%s: %zu failures", cases[i].runs, c.failures);
    }
}

TEST(avi_lexical_distance_by_hand)
{
    static const struct {
        const char *a, *b;
        double want;
    } cases[] = {
        { "", "", 0 },
        { "", "words here", 1 },
        { "  ...  ", "", 0 },                  /* no words on either side */
        { "The cat", "the CAT!", 0 },          /* lowercased, punctuation is not a word */
        { "a b", "a c", 0.8 },                 /* {a,b,ab} vs {a,c,ac}: 1 shared of 5 */
        { "a b c", "c b a", 4.0 / 7.0 },       /* 3 words shared, no pair: 3 of 7 */
        { "a a a", "a", 0.5 },                 /* sets: {a, aa} vs {a} */
        { "x y", "z w", 1 },
        { "caf\xc3\xa9 ok", "CAF\xc3\xa9 ok", 0 }, /* non-ASCII bytes are word bytes */
    };
    for (size_t i = 0; i < countof(cases); i++) {
        double d = avi_lexical_distance(cases[i].a, strlen(cases[i].a), cases[i].b, strlen(cases[i].b));
        if (!NEAR(d, cases[i].want))
            test_fail(__FILE__, __LINE__, "'%s' vs '%s': %.6f, expected %.6f", cases[i].a, cases[i].b, d,
                      cases[i].want);
        double back = avi_lexical_distance(cases[i].b, strlen(cases[i].b), cases[i].a, strlen(cases[i].a));
        CHECK_NEAR(back, d);
    }
    CHECK_NEAR(avi_lexical_distance(NULL, 0, NULL, 0), 0);
}

TEST(avi_lexical_bounded_on_long_answers)
{
    /* Two long answers that only differ after AVI_MAX_WORDS words compare equal. */
    size_t n = (AVI_MAX_WORDS + 100) * 6;
    char *a = malloc(n + 1), *b = malloc(n + 1);
    size_t at = 0;
    for (size_t w = 0; at + 6 < n; w++)
        at += (size_t)snprintf(a + at, n - at, "w%04zu ", w % 9999);
    memcpy(b, a, at + 1);
    b[at - 2] = 'Z';
    CHECK_NEAR(avi_lexical_distance(a, at, b, at), 0);
    b[3] = 'Q';    /* the first word differs */
    CHECK(avi_lexical_distance(a, at, b, at) > 0);
    free(a);
    free(b);
}

TEST(avi_dispersion_lexical_and_matrix)
{
    avi_sample s[3] = { run(EV_PASS, "a b", NULL, NAN, NAN), run(EV_PASS, "a b", NULL, NAN, NAN),
                        run(EV_PASS, "a c", NULL, NAN, NAN) };
    avi_case c;
    avi_measure(s, 3, NULL, NULL, &c);
    CHECK_NEAR(c.dispersion, 1.6 / 3);   /* pairs 0, 0.8, 0.8 */
    CHECK(isnan(c.trajectory));
    CHECK(!c.has_trajectory);
    CHECK(isnan(c.latency));
    CHECK(isnan(c.cost));

    /* an embedding matrix replaces the lexical distance: (0.2 + 0.4 + 0.6) / 3 */
    double m[9] = { 0, 0.2, 0.4, 0.2, 0, 0.6, 0.4, 0.6, 0 };
    avi_measure(s, 3, m, NULL, &c);
    CHECK_NEAR(c.dispersion, 0.4);
    /* non-finite entries fall back to the mirror entry, then are skipped; out of range clamps */
    double m2[9] = { 0, NAN, 1.7, 0.2, 0, INFINITY, -3, NAN, 0 };
    avi_measure(s, 3, m2, NULL, &c);
    CHECK_NEAR(c.dispersion, (0.2 + 1) / 2);
    /* nothing finite: lexical */
    double m3[9] = { NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN };
    avi_measure(s, 3, m3, NULL, &c);
    CHECK_NEAR(c.dispersion, 1.6 / 3);
}

TEST(avi_failed_runs_leave_the_pairwise_components)
{
    json_t *calls = calls_of("[{\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]");
    avi_sample s[3] = { run(EV_PASS, "a b", calls, 100, NAN), run(EV_ERROR, "", NULL, 5000, NAN),
                        run(EV_PASS, "a b", calls, 100, NAN) };
    s[1].failed = true;
    avi_case c;
    avi_measure(s, 3, NULL, NULL, &c);
    CHECK_INT(c.failures, 1);
    CHECK_NEAR(c.outcome, 1);       /* pass, error, pass: 2 of 3 pairs, at most 2 of 3 */
    CHECK_NEAR(c.dispersion, 0);    /* the failed run's "" is not compared */
    CHECK_NEAR(c.trajectory, 0);
    CHECK_NEAR(c.latency, 0);       /* its 5000 ms neither */
    /* one run left: no pairs, so dispersion and trajectory do not apply */
    s[2].failed = true;
    avi_measure(s, 3, NULL, NULL, &c);
    CHECK(isnan(c.dispersion));
    CHECK(isnan(c.trajectory));
    CHECK(c.has_trajectory);
    CHECK(isnan(c.latency));
    json_decref(calls);
}

TEST(avi_trajectory_by_hand)
{
    static const struct {
        const char *a, *b;
        double want;
    } cases[] = {
        { "[]", "[]", 0 },
        { "null", "[]", 0 },
        /* same name, other arguments: names 0, full 1 */
        { "[{\"function\":{\"name\":\"search\",\"arguments\":\"{\\\"q\\\":\\\"x\\\"}\"}}]",
          "[{\"function\":{\"name\":\"search\",\"arguments\":\"{\\\"q\\\":\\\"y\\\"}\"}}]", 0.5 },
        /* another tool */
        { "[{\"function\":{\"name\":\"search\",\"arguments\":\"{}\"}}]",
          "[{\"function\":{\"name\":\"refund\",\"arguments\":\"{}\"}}]", 1 },
        /* canonical arguments: key order and spacing do not matter, objects equal their text */
        { "[{\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1,\\\"b\\\":[2,{\\\"d\\\":1,\\\"c\\\":0}]}\"}}]",
          "[{\"function\":{\"name\":\"f\",\"arguments\":{\"b\":[2,{\"c\":0,\"d\":1}], \"a\":1}}}]", 0 },
        /* missing, null and "{}" arguments are the same */
        { "[{\"function\":{\"name\":\"f\"}}]", "[{\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]", 0 },
        { "[{\"function\":{\"name\":\"f\",\"arguments\":null}}]", "[{\"function\":{\"name\":\"f\"}}]", 0 },
        /* one extra call out of two: edit distance 1 over 2, names and full */
        { "[{\"function\":{\"name\":\"s\"}},{\"function\":{\"name\":\"r\"}}]", "[{\"function\":{\"name\":\"s\"}}]", 0.5 },
        /* swapped order: 2 substitutions of 2 */
        { "[{\"function\":{\"name\":\"s\"}},{\"function\":{\"name\":\"r\"}}]",
          "[{\"function\":{\"name\":\"r\"}},{\"function\":{\"name\":\"s\"}}]", 1 },
        /* calls against none */
        { "[{\"function\":{\"name\":\"s\"}}]", "[]", 1 },
        /* arguments that are not JSON compare as text */
        { "[{\"function\":{\"name\":\"f\",\"arguments\":\"{oops\"}}]",
          "[{\"function\":{\"name\":\"f\",\"arguments\":\"{oops\"}}]", 0 },
        { "[{\"function\":{\"name\":\"f\",\"arguments\":\"{oops\"}}]",
          "[{\"function\":{\"name\":\"f\",\"arguments\":\"{oops }\"}}]", 0.5 },
        /* Anthropic-like shape: name and input at the top */
        { "[{\"name\":\"f\",\"input\":{\"a\":1}}]", "[{\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]", 0 },
        /* hostile elements still compare */
        { "[1, \"x\", {\"function\":{\"name\":7}}]", "[1, \"x\", {\"function\":{\"name\":7}}]", 0 },
        { "{\"not\":\"an array\"}", "[]", 0 },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        json_error_t e;
        json_t *a = json_loads(cases[i].a, JSON_DECODE_ANY, &e), *b = json_loads(cases[i].b, JSON_DECODE_ANY, &e);
        double d = avi_trajectory_distance(a, b);
        if (!NEAR(d, cases[i].want))
            test_fail(__FILE__, __LINE__, "case %zu: %.6f, expected %.6f", i, d, cases[i].want);
        CHECK_NEAR(avi_trajectory_distance(b, a), d);
        json_decref(a);
        json_decref(b);
    }
}

TEST(avi_trajectory_component)
{
    json_t *x = calls_of("[{\"function\":{\"name\":\"search\",\"arguments\":\"{\\\"q\\\":\\\"x\\\"}\"}}]");
    json_t *y = calls_of("[{\"function\":{\"name\":\"search\",\"arguments\":\"{\\\"q\\\":\\\"y\\\"}\"}}]");
    json_t *r = calls_of("[{\"function\":{\"name\":\"refund\",\"arguments\":\"{\\\"id\\\":1}\"}}]");
    avi_sample s[3] = { run(EV_PASS, "", x, NAN, NAN), run(EV_PASS, "", y, NAN, NAN), run(EV_PASS, "", r, NAN, NAN) };
    avi_case c;
    avi_measure(s, 3, NULL, NULL, &c);
    CHECK(c.has_trajectory);
    CHECK_NEAR(c.trajectory, (0.5 + 1 + 1) / 3);
    /* a run without calls among runs with calls counts as a full difference */
    s[2].tool_calls = NULL;
    avi_measure(s, 3, NULL, NULL, &c);
    CHECK_NEAR(c.trajectory, (0.5 + 1 + 1) / 3);
    json_decref(x);
    json_decref(y);
    json_decref(r);
}

TEST(avi_trajectory_many_calls_bounded)
{
    json_t *a = json_array(), *b = json_array();
    for (int i = 0; i < AVI_MAX_CALLS + 50; i++) {
        json_t *call = json_pack("{s:{s:s,s:s}}", "function", "name", "f", "arguments", "{}");
        json_array_append(a, call);
        if (i < AVI_MAX_CALLS)
            json_array_append(b, call);
        json_decref(call);
    }
    /* only the first AVI_MAX_CALLS calls count: equal */
    CHECK_NEAR(avi_trajectory_distance(a, b), 0);
    json_decref(a);
    json_decref(b);
}

TEST(avi_spread_table)
{
    static const struct {
        double v[4];
        size_t n;
        double want; /* NAN: not applicable */
    } cases[] = {
        { { 100, 200 }, 2, 0.47140452079103168 },        /* std 70.71 (n-1) over 150 */
        { { 100, 100, 400 }, 3, 0.8660254037844386 },    /* std 173.2 over 200 */
        { { 1, 1000 }, 2, 1 },                           /* capped */
        { { 250, 250, 250 }, 3, 0 },
        { { 0, 0 }, 2, 0 },                              /* all zero: no spread */
        { { 100, NAN }, 2, NAN },                        /* one known value */
        { { NAN, NAN, NAN }, 3, NAN },
        { { -5, 100, 200 }, 3, 0.47140452079103168 },    /* negative: ignored */
        { { INFINITY, 100, 200 }, 3, 0.47140452079103168 },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        avi_sample s[4];
        for (size_t j = 0; j < cases[i].n; j++)
            s[j] = run(EV_PASS, "x", NULL, cases[i].v[j], cases[i].v[j]);
        avi_case c;
        avi_measure(s, cases[i].n, NULL, NULL, &c);
        bool ok = isnan(cases[i].want) ? isnan(c.latency) && isnan(c.cost)
                                       : NEAR(c.latency, cases[i].want) && NEAR(c.cost, cases[i].want);
        if (!ok)
            test_fail(__FILE__, __LINE__, "case %zu: latency %.9f cost %.9f, expected %.9f", i, c.latency, c.cost,
                      cases[i].want);
    }
}

TEST(avi_index_and_renormalisation)
{
    avi_sample s[2] = { run(EV_PASS, "x", NULL, NAN, NAN), run(EV_FAIL, "x", NULL, NAN, NAN) };
    avi_case c;
    /* outcome 1 and dispersion 0 apply; trajectory, latency and cost do not */
    avi_measure(s, 2, NULL, NULL, &c);
    CHECK_NEAR(c.outcome, 1);
    CHECK_NEAR(c.dispersion, 0);
    CHECK_NEAR(c.index, 100 * 0.35 / (0.35 + 0.25));
    avi_weights eq = { 1, 1, 1, 1, 1 };
    avi_measure(s, 2, NULL, &eq, &c);
    CHECK_NEAR(c.index, 50);
    /* with latency known the denominator grows: 0.35 / 0.675 */
    s[0].latency_ms = s[1].latency_ms = 80;
    avi_measure(s, 2, NULL, NULL, &c);
    CHECK_NEAR(c.index, 100 * 0.35 / (0.35 + 0.25 + 0.075));
    /* bad weights count as 0; no weight at all gives 0, never NaN */
    avi_weights bad = { -1, NAN, INFINITY, 0, 0 };
    avi_measure(s, 2, NULL, &bad, &c);
    CHECK_NEAR(c.index, 0);
    avi_weights only_outcome = { 2, 0, 0, 0, 0 };
    avi_measure(s, 2, NULL, &only_outcome, &c);
    CHECK_NEAR(c.index, 100);
    /* all five apply, default weights (they sum to 1) */
    json_t *t1 = calls_of("[{\"function\":{\"name\":\"a\"}}]"), *t2 = calls_of("[{\"function\":{\"name\":\"b\"}}]");
    avi_sample f[2] = { run(EV_PASS, "a b", t1, 100, 1), run(EV_PASS, "a c", t2, 200, 1) };
    avi_measure(f, 2, NULL, NULL, &c);
    /* outcome 0, dispersion 0.8, trajectory 1, latency 0.4714, cost 0 */
    CHECK_NEAR(c.index, 100 * (0.25 * 0.8 + 0.25 * 1 + 0.075 * 0.47140452079103168));
    json_decref(t1);
    json_decref(t2);
}

TEST(avi_too_few_runs_and_hostile_samples)
{
    avi_case c;
    avi_measure(NULL, 3, NULL, NULL, &c);
    CHECK_NEAR(c.index, 0);
    avi_sample one = run(EV_PASS, "x", NULL, 1, 1);
    one.failed = true;
    avi_measure(&one, 1, NULL, NULL, &c);
    CHECK_NEAR(c.index, 0);
    CHECK_INT(c.runs, 1);
    CHECK_INT(c.failures, 1);
    CHECK(isnan(c.dispersion));
    /* NULL outputs, out-of-range verdicts, odd tool_calls */
    json_t *odd = calls_of("[null, [], {\"function\": 3}, {\"function\": {\"name\": \"\", \"arguments\": 5}}]");
    avi_sample s[3] = { run((ev_verdict)7, NULL, odd, -1, NAN), run(EV_PASS, NULL, NULL, NAN, -2),
                        run(EV_FAIL, "x", odd, 1e308, 1e308) };
    avi_measure(s, 3, NULL, NULL, &c);
    CHECK(c.index >= 0 && c.index <= 100);
    CHECK(!isnan(c.index));
    CHECK(c.has_trajectory);
    json_decref(odd);
}

TEST(avi_options)
{
    avi_options o;
    char msg[200];
    CHECK_INT(avi_options_parse(NULL, &o, msg, sizeof msg), ERR_OK);
    CHECK(isnan(o.target));
    CHECK_INT(o.runs, 0);
    CHECK_NEAR(o.weights.outcome, 0.35);
    json_t *j = calls_of("{\"target\": 20, \"runs\": 5, \"weights\": {\"trajectory\": 0.5, \"cost\": 0},"
                         " \"embedding\": \"openai:embedding:text-embedding-3-small\"}");
    CHECK_INT(avi_options_parse(j, &o, msg, sizeof msg), ERR_OK);
    CHECK_NEAR(o.target, 20);
    CHECK_INT(o.runs, 5);
    CHECK_NEAR(o.weights.trajectory, 0.5);
    CHECK_NEAR(o.weights.cost, 0);
    CHECK_NEAR(o.weights.dispersion, 0.25);
    CHECK(json_is_string(o.embedding));
    json_decref(j);
    static const struct {
        const char *json, *msg;
    } bad[] = {
        { "[]", "avi: expected an object" },
        { "{\"target\": 101}", "avi.target: expected a number from 0 to 100" },
        { "{\"target\": \"20\"}", "avi.target: expected a number from 0 to 100" },
        { "{\"runs\": 1}", "avi.runs: expected an integer from 2 to 100" },
        { "{\"runs\": 2.5}", "avi.runs: expected an integer from 2 to 100" },
        { "{\"runs\": 101}", "avi.runs: expected an integer from 2 to 100" },
        { "{\"weights\": {\"outcom\": 1}}", "avi.weights.outcom: unknown component" },
        { "{\"weights\": {\"outcome\": -1}}", "avi.weights.outcome: expected a number from 0 to 1000" },
        { "{\"weights\": {\"outcome\": 0, \"dispersion\": 0, \"trajectory\": 0, \"latency\": 0, \"cost\": 0}}",
          "avi.weights: at least one weight must be above 0" },
        { "{\"weights\": 3}", "avi.weights: expected an object" },
        { "{\"embedding\": 3}", "avi.embedding: expected a provider id or {id, config}" },
        { "{\"taget\": 20}", "avi.taget: unknown key" },
    };
    for (size_t i = 0; i < countof(bad); i++) {
        json_t *b = json_loads(bad[i].json, 0, NULL);
        CHECK(b != NULL);
        CHECK_INT(avi_options_parse(b, &o, msg, sizeof msg), ERR_CONFIG);
        if (strncmp(msg, bad[i].msg, strlen(bad[i].msg)) != 0)
            test_fail(__FILE__, __LINE__, "%s: message '%s', expected '%s...'", bad[i].json, msg, bad[i].msg);
        json_decref(b);
    }
}

/* A case with the given components (NAN = not applicable), index by the defaults. */
static avi_case mk(double outcome, double dispersion, double trajectory, double latency, double cost)
{
    avi_case c = { outcome, dispersion, trajectory, latency, cost, !isnan(trajectory), 0, 5, 0 };
    double w[5] = { 0.35, 0.25, 0.25, 0.075, 0.075 }, x[5] = { outcome, dispersion, trajectory, latency, cost };
    double num = 0, den = 0;
    for (int i = 0; i < 5; i++)
        if (!isnan(x[i])) {
            num += w[i] * x[i];
            den += w[i];
        }
    c.index = 100 * num / den;
    return c;
}

static double jget(const json_t *o, const char *path)
{
    /* "a.b.c" through objects */
    char key[64];
    const json_t *v = o;
    while (*path) {
        size_t n = strcspn(path, ".");
        memcpy(key, path, n);
        key[n] = '\0';
        v = json_object_get(v, key);
        path += n + (path[n] == '.');
    }
    return json_is_number(v) ? json_number_value(v) : NAN;
}

TEST(avi_report_json)
{
    avi_report *r = avi_report_new(NULL, 20, 5);
    avi_case a = mk(1, 0, NAN, NAN, NAN);        /* index 58.33 */
    avi_case b = mk(0, 0.4, 1, 0.2, 0);          /* index 0.1 + 0.25 + 0.015 = 36.5 */
    avi_case c = mk(0, 0, 0, 0, 0);              /* index 0 */
    b.failures = 2;
    avi_report_add(r, 0, "refund request", "p1", "sim:lorem t=0.9", &a);
    avi_report_add(r, 1, "tests[1]", "p1", "sim:lorem t=0.9", &b);
    avi_report_add(r, 1, "tests[1]", "p1", "sim:lorem t=0", &c);
    json_t *j = avi_report_json(r);
    CHECK(j != NULL);
    double idx = (100 * 0.35 / 0.6 + 36.5 + 0) / 3;
    CHECK_NEAR(jget(j, "index"), round(idx * 100) / 100);
    CHECK_NEAR(jget(j, "target"), 20);
    CHECK(json_is_false(json_object_get(j, "met")));
    CHECK_INT(jget(j, "runs"), 5);
    CHECK_INT(jget(j, "cases"), 3);
    CHECK_INT(jget(j, "failures"), 2);
    CHECK_NEAR(jget(j, "weights.outcome"), 0.35);
    CHECK_NEAR(jget(j, "components.outcome.mean"), round(1.0 / 3 * 1e4) / 1e4);
    CHECK_INT(jget(j, "components.outcome.cases"), 3);
    CHECK_NEAR(jget(j, "components.dispersion.mean"), round(0.4 / 3 * 1e4) / 1e4);
    CHECK_NEAR(jget(j, "components.trajectory.mean"), 0.5);
    CHECK_INT(jget(j, "components.trajectory.cases"), 2);
    CHECK_INT(jget(j, "components.latency.cases"), 2);
    CHECK_NEAR(jget(j, "components.latency.mean"), 0.1);
    /* shares: outcome 58.33, dispersion 10, trajectory 25, latency 1.5 of 94.83 */
    double total = 100 * 0.35 / 0.6 + 36.5;
    CHECK_NEAR(jget(j, "components.outcome.share"), round(100 * 0.35 / 0.6 / total * 1e4) / 1e4);
    CHECK_NEAR(jget(j, "components.trajectory.share"), round(25 / total * 1e4) / 1e4);
    CHECK_NEAR(jget(j, "components.cost.share"), 0);
    /* drivers, worst first, with their main component */
    json_t *d = json_object_get(j, "drivers");
    CHECK_INT(json_array_size(d), 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(d, 0), "label")), "refund request");
    CHECK_STR(json_string_value(json_object_get(json_array_get(d, 0), "top_component")), "outcome");
    CHECK_STR(json_string_value(json_object_get(json_array_get(d, 1), "top_component")), "trajectory");
    CHECK_STR(json_string_value(json_object_get(json_array_get(d, 1), "provider")), "sim:lorem t=0.9");
    CHECK_INT(jget(json_array_get(d, 1), "failures"), 2);
    CHECK_NEAR(jget(json_array_get(d, 1), "index"), 36.5);
    CHECK_NEAR(jget(json_array_get(d, 1), "components.latency"), 0.2);
    CHECK(json_is_null(json_object_get(json_object_get(json_array_get(d, 0), "components"), "trajectory")));
    CHECK(json_is_null(json_object_get(json_array_get(d, 2), "top_component")));
    /* remedies for the components with >= 10% share, biggest first: outcome 61.5%, trajectory 26.4%, dispersion 10.5% */
    json_t *rm = json_object_get(j, "remedies");
    CHECK_INT(json_array_size(rm), 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(rm, 0), "component")), "outcome");
    CHECK_STR(json_string_value(json_object_get(json_array_get(rm, 1), "component")), "trajectory");
    CHECK_STR(json_string_value(json_object_get(json_array_get(rm, 2), "component")), "dispersion");
    CHECK(json_array_size(json_object_get(json_array_get(rm, 0), "advice")) >= 3);
    /* one row per prompt x provider */
    json_t *pp = json_object_get(j, "per_provider");
    CHECK_INT(json_array_size(pp), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(pp, 0), "provider")), "sim:lorem t=0.9");
    CHECK_NEAR(jget(json_array_get(pp, 0), "index"), round((100 * 0.35 / 0.6 + 36.5) / 2 * 100) / 100);
    CHECK_INT(jget(json_array_get(pp, 0), "cases"), 2);
    CHECK_NEAR(jget(json_array_get(pp, 1), "index"), 0);
    /* dumps (no NaN anywhere) */
    char *text = json_dumps(j, JSON_COMPACT);
    CHECK(text != NULL);
    free(text);
    json_decref(j);
    avi_report_free(r);
}

TEST(avi_report_target_and_empty)
{
    avi_report *r = avi_report_new(NULL, NAN, 3);
    json_t *j = avi_report_json(r);
    CHECK_NEAR(jget(j, "index"), 0);
    CHECK(json_is_null(json_object_get(j, "target")));
    CHECK(json_is_null(json_object_get(j, "met")));
    CHECK(json_is_null(json_object_get(json_object_get(json_object_get(j, "components"), "outcome"), "mean")));
    CHECK_INT(json_array_size(json_object_get(j, "drivers")), 0);
    CHECK_INT(json_array_size(json_object_get(j, "remedies")), 0);
    json_decref(j);
    avi_report_free(r);
    /* met when index <= target (as rounded for the report) */
    r = avi_report_new(NULL, 25, 3);
    avi_case c = mk(0, 1, NAN, NAN, NAN);     /* 0.25 / 0.6 = 41.67 */
    avi_case z = mk(0, 0, NAN, NAN, NAN);
    avi_report_add(r, 0, "a", NULL, NULL, &c);
    avi_report_add(r, 1, "b", NULL, NULL, &z);    /* mean 20.83 */
    j = avi_report_json(r);
    CHECK(json_is_true(json_object_get(j, "met")));
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(j, "drivers"), 0), "prompt")), "");
    json_decref(j);
    avi_report_free(r);
    avi_report_free(NULL);
    CHECK(avi_report_json(NULL) == NULL);
}

TEST(avi_report_drivers_order)
{
    avi_report *r = avi_report_new(NULL, NAN, 2);
    /* 40 cases; indices repeat so ties are broken by test order */
    for (size_t t = 0; t < 40; t++) {
        avi_case c = mk((double)((t * 7) % 10) / 10, NAN, NAN, NAN, NAN);
        char label[32];
        snprintf(label, sizeof label, "tests[%zu]", t);
        avi_report_add(r, t, label, "p", "prov", &c);
    }
    json_t *j = avi_report_json(r);
    json_t *d = json_object_get(j, "drivers");
    CHECK_INT(json_array_size(d), AVI_MAX_DRIVERS);
    /* outcome 0.9 at t = 7, 17, 27, 37 and 0.8 at t = 4, 14, 24, 34, then 0.7 at t = 1, 11 */
    static const size_t want[AVI_MAX_DRIVERS] = { 7, 17, 27, 37, 4, 14, 24, 34, 1, 11 };
    for (size_t i = 0; i < AVI_MAX_DRIVERS; i++) {
        json_t *e = json_array_get(d, i);
        if ((size_t)jget(e, "test") != want[i])
            test_fail(__FILE__, __LINE__, "driver %zu is test %.0f, expected %zu", i, jget(e, "test"), want[i]);
        char label[32];
        snprintf(label, sizeof label, "tests[%zu]", want[i]);
        CHECK_STR(json_string_value(json_object_get(e, "label")), label);
    }
    json_decref(j);
    avi_report_free(r);
}

TEST(avi_report_bounded_memory)
{
    avi_report *r = avi_report_new(NULL, 10, 5);
    char label[300], prov[32];
    memset(label, 'x', sizeof label - 1);
    label[sizeof label - 1] = '\0';
    size_t after_10k = 0;
    for (size_t t = 0; t < 100000; t++) {
        avi_case c = mk((double)(t % 1000) / 1000, (double)(t % 7) / 7, NAN, 0.1, NAN);
        snprintf(prov, sizeof prov, "provider-%zu", t % 1000);  /* more pairs than AVI_MAX_GROUPS */
        label[t % 200] = (char)('a' + t % 26);
        avi_report_add(r, t, label, "p", prov, &c);
        if (t == 9999)
            after_10k = avi_report_footprint(r);
    }
    size_t end = avi_report_footprint(r);
    CHECK(after_10k > 0);
    CHECK(end <= after_10k + AVI_MAX_DRIVERS * 3 * 300);  /* only kept labels can change size */
    CHECK(end < 256 * 1024);
    json_t *j = avi_report_json(r);
    CHECK_INT(jget(j, "cases"), 100000);
    CHECK_INT(json_array_size(json_object_get(j, "per_provider")), AVI_MAX_GROUPS);
    CHECK_INT(json_array_size(json_object_get(j, "drivers")), AVI_MAX_DRIVERS);
    /* labels are cut at 256 bytes */
    CHECK_INT(strlen(json_string_value(json_object_get(json_array_get(json_object_get(j, "drivers"), 0), "label"))),
              256);
    /* the worst ones are outcome 0.999 */
    CHECK_NEAR(jget(json_array_get(json_object_get(j, "drivers"), 0), "components.outcome"), 0.999);
    json_decref(j);
    avi_report_free(r);
}

TEST(avi_report_print_and_hostile_labels)
{
    avi_report *r = avi_report_new(NULL, 10, 4);
    avi_case a = mk(1, 0.5, 0.5, 0.1, 0.1);
    avi_report_add(r, 0, "bad \xff\xfe utf8 \x1b[31m escape", "p\xc3", "sim:lorem", &a);
    avi_case b = mk(0, 0, 0, 0, 0);
    avi_report_add(r, 1, "calm", "p", "sim:lorem t=0", &b);
    json_t *j = avi_report_json(r);
    CHECK(j != NULL);
    json_t *d0 = json_array_get(json_object_get(j, "drivers"), 0);
    CHECK_STR(json_string_value(json_object_get(d0, "label")), "bad ?? utf8 \x1b[31m escape");
    CHECK_STR(json_string_value(json_object_get(d0, "prompt")), "p?");
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    avi_report_print(f, j);
    fclose(f);
    CHECK(strstr(out, "Agentic Variability Index: ") != NULL);
    CHECK(strstr(out, "NOT MET") != NULL);
    CHECK(strstr(out, "outcome") != NULL);
    CHECK(strstr(out, "What drives it") != NULL);
    CHECK(strstr(out, "temperature") != NULL);
    CHECK(strstr(out, "By prompt / provider") != NULL);
    CHECK(strchr(out, '\x1b') == NULL);   /* no terminal escapes get through */
    free(out);
    /* printing something that is not a report does nothing and does not crash */
    f = open_memstream(&out, &len);
    avi_report_print(f, NULL);
    json_t *junk = json_pack("{s:s,s:[i],s:{s:i}}", "index", "x", "drivers", 3, "components", "outcome", 1);
    avi_report_print(f, junk);
    fclose(f);
    free(out);
    json_decref(junk);
    json_decref(j);
    avi_report_free(r);
}

TEST(avi_component_names)
{
    CHECK_STR(avi_component_name(0), "outcome");
    CHECK_STR(avi_component_name(4), "cost");
    CHECK(avi_component_name(5) == NULL);
}

/* Found by fuzzing: with every component at 1, a fused multiply-add in the
 * weighted mean put the index a hair above 100. It is clamped to [0, 100]. */
TEST(avi_index_never_past_100)
{
    json_t *a = calls_of("[{\"function\":{\"name\":\"a\"}}]"), *b = calls_of("[{\"function\":{\"name\":\"b\"}}]");
    avi_sample s[2] = { run(EV_PASS, "x y", a, 1, 1), run(EV_FAIL, "z w", b, 1000, 1000) };
    static const avi_weights odd[] = {
        { 0.35, 0.25, 0.25, 0.075, 0.075 }, { 0.1, 0.2, 0.3, 0.7, 0.11 }, { 1e-300, 3, 1e300, 0.3, 0.7 },
    };
    for (size_t i = 0; i < countof(odd); i++) {
        avi_case c;
        avi_measure(s, 2, NULL, &odd[i], &c);
        CHECK(c.index <= 100 && c.index >= 99.999999);
        CHECK_NEAR(c.outcome + c.dispersion + c.trajectory + c.latency + c.cost, 5);
    }
    json_decref(a);
    json_decref(b);
}
