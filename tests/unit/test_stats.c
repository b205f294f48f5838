/*
 * test_stats.c - intervals, tests, pass@k and the run summary
 * (src/eval/stats.c).
 *
 * Wilson intervals are checked against Newcombe's (1998) published table;
 * McNemar and pass@k against values worked out by hand (shown in the
 * comments); the bootstrap for determinism and for coverage on simulated
 * data; the summary for its counts, its independence of the arrival order,
 * and its behaviour past the exact-value caps; ev_compare for flagging a
 * real drop and not flagging noise.
 */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "eval/stats.h"
#include "test.h"

#define CHECK_NEAR(a, b, eps)                                                                   \
    do {                                                                                        \
        double a_ = (a), b_ = (b);                                                              \
        if (!(fabs(a_ - b_) <= (eps)))                                                          \
            test_fail(__FILE__, __LINE__, "%s == %.10g, expected %.10g (+-%g)", #a, a_, b_,     \
                      (double)(eps));                                                           \
    } while (0)

TEST(stats_wilson_newcombe)
{
    /* Newcombe, "Two-sided confidence intervals for the single proportion:
     * comparison of seven methods", Stat Med 1998;17:857-872, Table II,
     * method 3 (score interval without continuity correction). */
    static const struct {
        size_t x, n;
        double lo, hi;
    } cases[] = {
        { 81, 263, 0.2553, 0.3662 },
        { 15, 148, 0.0624, 0.1605 },
        { 0, 20, 0.0, 0.1611 },
        { 1, 29, 0.0061, 0.1718 },
        { 29, 29, 0.8830, 1.0 },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        double lo, hi;
        ev_wilson(cases[i].x, cases[i].n, EV_Z95, &lo, &hi);
        CHECK_NEAR(lo, cases[i].lo, 0.00006);
        CHECK_NEAR(hi, cases[i].hi, 0.00006);
    }
    double lo, hi;
    ev_wilson(0, 0, EV_Z95, &lo, &hi);
    CHECK(lo == 0.0 && hi == 1.0);
    ev_wilson(0, 5, EV_Z95, &lo, &hi);
    CHECK(lo == 0.0);
    ev_wilson(5, 5, EV_Z95, &lo, &hi);
    CHECK(hi == 1.0);
    ev_wilson(9, 5, EV_Z95, &lo, &hi); /* pass > n is taken as n */
    CHECK(hi == 1.0 && lo > 0.5);
}

TEST(stats_norm_quantile)
{
    CHECK_NEAR(ev_norm_quantile(0.975), 1.959963984540054, 1e-9);
    CHECK_NEAR(ev_norm_quantile(0.5), 0.0, 1e-12);
    CHECK_NEAR(ev_norm_quantile(0.05), -1.6448536269514722, 1e-9);
    CHECK(isinf(ev_norm_quantile(1.0)));
    CHECK(isnan(ev_norm_quantile(-0.5)));
}

TEST(stats_quantile_type7)
{
    double a[] = { 4, 1, 3, 2 };
    CHECK_NEAR(ev_quantile(a, 4, 0.5), 2.5, 1e-12);
    CHECK(a[0] == 1 && a[3] == 4); /* sorted in place */
    double b[10];
    for (int i = 0; i < 10; i++)
        b[i] = 10 - i; /* 10..1 */
    CHECK_NEAR(ev_quantile(b, 10, 0.95), 9.55, 1e-12); /* 1 + 0.95 * 9 */
    CHECK_NEAR(ev_quantile(b, 10, 0.0), 1.0, 0);
    CHECK_NEAR(ev_quantile(b, 10, 1.0), 10.0, 0);
    CHECK_NEAR(ev_quantile(b, 10, 7.0), 10.0, 0); /* clamped */
    CHECK_NEAR(ev_quantile(b, 10, NAN), 1.0, 0);
    double c[] = { 42 };
    CHECK_NEAR(ev_quantile(c, 1, 0.3), 42.0, 0);
    CHECK(isnan(ev_quantile(c, 0, 0.5)));
    double d[] = { NAN, 3, 1 }; /* NaN sorts last */
    CHECK_NEAR(ev_quantile(d, 3, 0.0), 1.0, 0);
    CHECK_NEAR(ev_quantile(d, 3, 0.5), 3.0, 0);
}

TEST(stats_mcnemar)
{
    static const struct {
        size_t b, c;
        double p;
    } cases[] = {
        { 0, 0, 1.0 },
        { 1, 5, 0.21875 },            /* exact: 2 * (C(6,0)+C(6,1)) / 2^6 = 14/64 */
        { 5, 1, 0.21875 },            /* symmetric */
        { 0, 10, 0.001953125 },       /* 2 / 2^10 */
        { 3, 3, 1.0 },                /* capped at 1 */
        { 12, 12, 1.0 },              /* b + c = 24: still exact */
        { 10, 25, 0.01796047752607877 }, /* chi2 = (15-1)^2/35 = 5.6, erfc(sqrt(2.8)) */
        { 20, 20, 1.0 },              /* chi2 with |b-c|-1 floored at 0 */
        { 0, 24, 2.0 / 16777216.0 },  /* b + c = 24: exact */
        { 0, 25, 0.0 },               /* chi2 = 24^2/25 = 23.04 -> 1.58e-6 */
    };
    for (size_t i = 0; i < countof(cases); i++) {
        double p = ev_mcnemar_p(cases[i].b, cases[i].c);
        if (i == countof(cases) - 1)
            CHECK_NEAR(p, erfc(sqrt(23.04 / 2.0)), 1e-15);
        else
            CHECK_NEAR(p, cases[i].p, 1e-12);
    }
}

TEST(stats_pass_at_k_by_hand)
{
    /* n = 5 samples, c = 2 correct:
     * pass@1 = 2/5; pass@2 = 1 - C(3,2)/C(5,2) = 1 - 3/10; pass@3 = 1 - C(3,3)/C(5,3) = 1 - 1/10;
     * pass@4: only 3 wrong, so any 4 include a correct one = 1. */
    CHECK_NEAR(ev_pass_at_k(5, 2, 1), 0.4, 1e-12);
    CHECK_NEAR(ev_pass_at_k(5, 2, 2), 0.7, 1e-12);
    CHECK_NEAR(ev_pass_at_k(5, 2, 3), 0.9, 1e-12);
    CHECK_NEAR(ev_pass_at_k(5, 2, 4), 1.0, 0);
    CHECK_NEAR(ev_pass_at_k(5, 0, 3), 0.0, 1e-15);
    CHECK_NEAR(ev_pass_at_k(5, 5, 5), 1.0, 0);
    CHECK_NEAR(ev_pass_at_k(5, 9, 2), 1.0, 0); /* c > n taken as n */
    /* pass^k, n = 5, c = 3: k=1 3/5; k=2 C(3,2)/C(5,2) = 3/10; k=3 1/10; k=4 0. */
    CHECK_NEAR(ev_pass_hat_k(5, 3, 1), 0.6, 1e-12);
    CHECK_NEAR(ev_pass_hat_k(5, 3, 2), 0.3, 1e-12);
    CHECK_NEAR(ev_pass_hat_k(5, 3, 3), 0.1, 1e-12);
    CHECK_NEAR(ev_pass_hat_k(5, 3, 4), 0.0, 0);
    CHECK_NEAR(ev_pass_hat_k(4, 4, 4), 1.0, 0);
    /* Larger n against the factorial form: n = 200, c = 17, k = 10. */
    double direct = 1.0;
    for (int i = 0; i < 10; i++)
        direct *= (double)(183 - i) / (double)(200 - i);
    CHECK_NEAR(ev_pass_at_k(200, 17, 10), 1.0 - direct, 1e-12);
    CHECK(isnan(ev_pass_at_k(0, 0, 1)));
    CHECK(isnan(ev_pass_at_k(3, 1, 0)));
    CHECK(isnan(ev_pass_at_k(3, 1, 4)));
    CHECK(isnan(ev_pass_hat_k(3, 1, 4)));
}

TEST(stats_bootstrap_deterministic)
{
    double x[50];
    for (int i = 0; i < 50; i++)
        x[i] = (i * 37 % 11) / 10.0;
    double m1, l1, h1, m2, l2, h2, m3, l3, h3;
    CHECK(ev_bootstrap_mean(x, 50, 2000, 7, 0.95, &m1, &l1, &h1));
    CHECK(ev_bootstrap_mean(x, 50, 2000, 7, 0.95, &m2, &l2, &h2));
    CHECK(m1 == m2 && l1 == l2 && h1 == h2);
    CHECK(ev_bootstrap_mean(x, 50, 2000, 8, 0.95, &m3, &l3, &h3));
    CHECK(m3 == m1 && (l3 != l1 || h3 != h1));
    CHECK(l1 < m1 && m1 < h1);
    double sum = 0;
    for (int i = 0; i < 50; i++)
        sum += x[i];
    CHECK_NEAR(m1, sum / 50, 1e-12);
    /* Refused: nothing to average, no resamples, a level out of (0,1). */
    double keep = 123;
    CHECK(!ev_bootstrap_mean(x, 0, 2000, 1, 0.95, &keep, &keep, &keep));
    CHECK(!ev_bootstrap_mean(x, 50, 0, 1, 0.95, &keep, &keep, &keep));
    CHECK(!ev_bootstrap_mean(x, 50, 100, 1, 1.0, &keep, &keep, &keep));
    CHECK(!ev_bootstrap_mean(x, 50, 100, 1, 0.0, &keep, &keep, &keep));
    CHECK(!ev_bootstrap_mean(x, 50, 2000000, 1, 0.9, &keep, &keep, &keep));
    CHECK(keep == 123);
    /* A constant sample has a zero-width interval. */
    double c[5] = { 0.5, 0.5, 0.5, 0.5, 0.5 };
    CHECK(ev_bootstrap_mean(c, 5, 500, 1, 0.95, &m1, &l1, &h1));
    CHECK(m1 == 0.5 && l1 == 0.5 && h1 == 0.5);
}

/* A xorshift stream for simulated data, independent of the library's. */
static double sim_uniform(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (double)(*s >> 11) / 9007199254740992.0;
}

TEST(stats_bootstrap_coverage)
{
    /* 300 samples of 80 uniform(0,1) values: the 95% interval should hold
     * the true mean 0.5 in about 95% of them (binomial sd ~1.3%; the
     * percentile bootstrap runs a little narrow at this n). */
    uint64_t s = 0x1234567;
    int covered = 0, trials = 300;
    double x[80];
    for (int t = 0; t < trials; t++) {
        for (int i = 0; i < 80; i++)
            x[i] = sim_uniform(&s);
        double m, lo, hi;
        CHECK(ev_bootstrap_mean(x, 80, 1000, (uint64_t)t, 0.95, &m, &lo, &hi));
        covered += lo <= 0.5 && 0.5 <= hi;
    }
    CHECK(covered >= 270 && covered <= 296);
}

TEST(stats_paired_bootstrap)
{
    double base[100], cur[100];
    for (int i = 0; i < 100; i++) {
        base[i] = 0.8;
        cur[i] = i < 30 ? 0.5 : 0.8; /* mean drop 0.09 */
    }
    double d, lo, hi, p;
    CHECK(ev_paired_bootstrap(base, cur, 100, 2000, 3, 0.95, &d, &lo, &hi, &p));
    CHECK_NEAR(d, -0.09, 1e-12);
    CHECK(lo < d && d < hi && hi < 0);
    CHECK(p < 0.01);
    /* No difference at all. */
    CHECK(ev_paired_bootstrap(base, base, 100, 2000, 3, 0.95, &d, &lo, &hi, &p));
    CHECK(d == 0 && p == 1.0);
    /* Symmetric noise: not significant. */
    for (int i = 0; i < 100; i++)
        cur[i] = base[i] + (i % 2 ? 0.1 : -0.1) * ((i % 7) / 7.0);
    CHECK(ev_paired_bootstrap(base, cur, 100, 2000, 3, 0.95, &d, &lo, &hi, &p));
    CHECK(p > 0.2);
    CHECK(lo < 0 && hi > 0);
    CHECK(!ev_paired_bootstrap(base, cur, 0, 2000, 3, 0.95, &d, &lo, &hi, &p));
}

/* ---- compare ---------------------------------------------------------------- */

static bool jbool(const json_t *o, const char *k)
{
    return json_is_true(json_object_get(o, k));
}

static double jnum(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

TEST(stats_compare_real_drop)
{
    enum { N = 200 };
    ev_pair p[N];
    char keys[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "t%d", i);
        bool fails = i % 5 == 0; /* 40 regress */
        p[i] = (ev_pair){ keys[i], 1, fails ? 0 : 1, 1.0, fails ? 0.0 : 1.0 };
    }
    json_t *o = ev_compare(p, N, 0.05, 0.05, 1);
    CHECK(o != NULL);
    CHECK_INT(json_integer_value(json_object_get(o, "n")), N);
    CHECK_INT(jnum(o, "mcnemar", "b"), 40);
    CHECK_INT(jnum(o, "mcnemar", "c"), 0);
    CHECK(jnum(o, "mcnemar", "p") < 1e-6);
    CHECK_NEAR(jnum(o, "pass_rate", "diff"), -0.2, 1e-12);
    CHECK_NEAR(jnum(o, "score", "diff"), -0.2, 1e-12);
    CHECK(jbool(o, "significant") && jbool(o, "drop") && jbool(o, "gate_failed"));
    const json_t *reg = json_object_get(o, "regressed");
    CHECK_INT(json_array_size(reg), 40);
    CHECK_STR(json_string_value(json_array_get(reg, 1)), "t5");
    CHECK_INT(json_array_size(json_object_get(o, "improved")), 0);
    json_decref(o);

    /* The same drop with a tolerance above it: significant, not a gate. */
    o = ev_compare(p, N, 0.25, 0.05, 1);
    CHECK(jbool(o, "significant") && !jbool(o, "drop") && !jbool(o, "gate_failed"));
    json_decref(o);
}

TEST(stats_compare_noise_not_flagged)
{
    enum { N = 200 };
    ev_pair p[N];
    for (int i = 0; i < N; i++) {
        /* 6 flip to fail, 4 flip to pass, scores wobble symmetrically. */
        int bp = 1, cp = 1;
        if (i < 6)
            cp = 0;
        else if (i < 10)
            bp = 0;
        double w = (i % 2 ? 0.02 : -0.02);
        p[i] = (ev_pair){ "k", bp, cp, 0.7, 0.7 + w };
    }
    json_t *o = ev_compare(p, N, 0.005, 0.05, 9);
    CHECK(o != NULL);
    CHECK_INT(jnum(o, "mcnemar", "b"), 6);
    CHECK_INT(jnum(o, "mcnemar", "c"), 4);
    CHECK(jnum(o, "mcnemar", "p") > 0.5);
    CHECK(jbool(o, "drop"));          /* 1% < tolerance 0.5%... */
    CHECK(!jbool(o, "significant"));  /* ...but noise */
    CHECK(!jbool(o, "gate_failed"));
    json_decref(o);
}

TEST(stats_compare_edges)
{
    /* Errored records are left out; one pair never makes a score test. */
    ev_pair p[] = {
        { "a", 1, 0, 1.0, 0.0 },
        { "b", -1, 1, 1.0, 1.0 },
        { "c", 1, -1, 1.0, 1.0 },
    };
    json_t *o = ev_compare(p, 3, 0.01, 0.05, 1);
    CHECK_INT(json_integer_value(json_object_get(o, "n")), 1);
    CHECK_NEAR(jnum(o, "score", "p"), 0.0, 0); /* the bootstrap of one pair */
    CHECK(jbool(o, "drop"));
    CHECK(!jbool(o, "significant") && !jbool(o, "gate_failed"));
    json_decref(o);
    /* Nothing paired. */
    o = ev_compare(NULL, 0, 0.01, 0.05, 1);
    CHECK(o != NULL);
    CHECK_INT(json_integer_value(json_object_get(o, "n")), 0);
    CHECK(json_is_null(json_object_get(json_object_get(o, "score"), "diff")));
    CHECK(!jbool(o, "gate_failed"));
    json_decref(o);
    /* Bad arguments. */
    CHECK(ev_compare(p, 3, -0.1, 0.05, 1) == NULL);
    CHECK(ev_compare(p, 3, 0.1, 0.0, 1) == NULL);
    CHECK(ev_compare(p, 3, 0.1, 1.0, 1) == NULL);
    CHECK(ev_compare(p, 3, NAN, 0.05, 1) == NULL);
    CHECK(ev_compare(NULL, 3, 0.1, 0.05, 1) == NULL);
}

/* ---- the summary -------------------------------------------------------------- */

static ev_record rec(size_t test, int repeat, size_t prompt, size_t provider, ev_verdict v, double score)
{
    return (ev_record){ .test = test, .repeat = repeat, .prompt = prompt, .provider = provider, .verdict = v,
                        .score = score, .latency_ms = NAN, .cost_usd = NAN, .tokens_in = -1, .tokens_out = -1 };
}

TEST(stats_summary_counts)
{
    const char *prompts[] = { "p1", "p2" };
    const char *providers[] = { "gpt" };
    ev_stats *s = ev_stats_new(prompts, 2, providers, 1, 3, 1);
    CHECK(s != NULL);
    ev_assert_outcome oa[] = {
        { "contains", false, NULL, 1, { EV_PASS, 1.0, NULL } },
        { "contains", true, "tone", 1, { EV_FAIL, 0.0, NULL } },
        { "llm-rubric", false, NULL, 1, { EV_ERROR, 0.0, NULL } }, /* errors are left out */
        { "levenshtein", false, "levenshtein", 1, { EV_PASS, 0.5, NULL } }, /* counted once */
    };
    for (size_t t = 0; t < 3; t++) {
        ev_record r = rec(t, 0, 0, 0, t == 2 ? EV_FAIL : EV_PASS, t == 2 ? 0.5 : 1.0);
        r.asserts = oa;
        r.nasserts = countof(oa);
        r.latency_ms = 100.0 * (double)(t + 1);
        r.cost_usd = 0.001;
        r.tokens_in = 10;
        r.tokens_out = 5;
        ev_stats_add(s, &r);
        ev_record r2 = rec(t, 0, 1, 0, t == 0 ? EV_ERROR : EV_PASS, 1.0);
        ev_stats_add(s, &r2);
    }
    ev_record stray = rec(1, 0, 7, 0, EV_PASS, 1.0); /* prompt out of range: totals only */
    ev_stats_add(s, &stray);
    json_t *o = ev_stats_summary(s, 42);
    CHECK(o != NULL);
    CHECK_INT(json_integer_value(json_object_get(o, "tests")), 3);
    CHECK_INT(json_integer_value(json_object_get(o, "records")), 7);
    CHECK_INT(json_integer_value(json_object_get(o, "passed")), 5);
    CHECK_INT(json_integer_value(json_object_get(o, "failed")), 1);
    CHECK_INT(json_integer_value(json_object_get(o, "errors")), 1);
    CHECK_NEAR(jnum(o, "pass_rate", "value"), 5.0 / 7.0, 1e-12);
    double lo, hi;
    ev_wilson(5, 7, EV_Z95, &lo, &hi);
    CHECK_NEAR(jnum(o, "pass_rate", "lo"), lo, 1e-12);
    CHECK_NEAR(jnum(o, "pass_rate", "hi"), hi, 1e-12);
    const json_t *ms = json_object_get(o, "metrics");
    CHECK_INT(json_object_size(ms), 4); /* contains, not-contains, tone, levenshtein */
    CHECK_NEAR(jnum(ms, "contains", "mean"), 1.0, 0);
    CHECK_NEAR(jnum(ms, "not-contains", "mean"), 0.0, 0);
    CHECK_NEAR(jnum(ms, "tone", "mean"), 0.0, 0);
    CHECK_INT(jnum(ms, "levenshtein", "n"), 3);
    CHECK(json_object_get(ms, "llm-rubric") == NULL);
    const json_t *cols = json_object_get(o, "columns");
    CHECK_INT(json_array_size(cols), 2);
    const json_t *c0 = json_array_get(cols, 0), *c1 = json_array_get(cols, 1);
    CHECK_STR(json_string_value(json_object_get(c0, "prompt")), "p1");
    CHECK_STR(json_string_value(json_object_get(c1, "prompt")), "p2");
    CHECK_STR(json_string_value(json_object_get(c0, "provider")), "gpt");
    CHECK_INT(jnum(c0, "passed", NULL), 2);
    CHECK_INT(jnum(c0, "failed", NULL), 1);
    CHECK_INT(jnum(c1, "errors", NULL), 1);
    CHECK_NEAR(jnum(c0, "latency_ms", "p50"), 200.0, 1e-9);
    CHECK_NEAR(jnum(c0, "latency_ms", "p95"), 290.0, 1e-9); /* 200 + 0.9 * 100 */
    CHECK_NEAR(jnum(c0, "latency_ms", "mean"), 200.0, 1e-9);
    CHECK_NEAR(jnum(c0, "cost", "total"), 0.003, 1e-15);
    CHECK_NEAR(jnum(c0, "cost", "mean"), 0.001, 1e-15);
    CHECK_INT(jnum(c0, "tokens", "in"), 30);
    CHECK_INT(jnum(c0, "tokens", "out"), 15);
    CHECK(json_is_null(json_object_get(json_object_get(c1, "latency_ms"), "p50")));
    CHECK(json_is_null(json_object_get(json_object_get(c1, "cost"), "total")));
    CHECK(json_is_null(json_object_get(json_object_get(c1, "tokens"), "in")));
    CHECK_NEAR(jnum(c0, "score", "mean"), 2.5 / 3.0, 1e-12);
    CHECK(json_object_get(o, "pass_at_k") == NULL); /* repeat 1 */
    json_decref(o);
    ev_stats_free(s);
}

TEST(stats_summary_empty_and_bad)
{
    CHECK(ev_stats_new(NULL, 0, NULL, 1, 10, 1) == NULL);
    CHECK(ev_stats_new(NULL, 1, NULL, 0, 10, 1) == NULL);
    ev_stats *s = ev_stats_new(NULL, 1, NULL, 1, 0, 1);
    json_t *o = ev_stats_summary(s, 1);
    CHECK_INT(json_integer_value(json_object_get(o, "records")), 0);
    CHECK(json_is_null(json_object_get(json_object_get(o, "pass_rate"), "value")));
    CHECK_NEAR(jnum(o, "pass_rate", "lo"), 0.0, 0);
    CHECK_NEAR(jnum(o, "pass_rate", "hi"), 1.0, 0);
    CHECK(json_is_null(json_object_get(json_object_get(o, "score"), "mean")));
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(o, "columns"), 0), "prompt")),
              "prompt 1");
    json_decref(o);
    /* Hostile values do not poison the sums: NaN/inf scores, negative latency. */
    ev_record r = rec(5000000000ULL, 0, 0, 0, EV_PASS, NAN);
    r.latency_ms = -3;
    r.cost_usd = INFINITY;
    r.tokens_in = LONG_MAX; /* twice: the sum saturates instead of overflowing */
    ev_stats_add(s, &r);
    ev_stats_add(s, &r);
    ev_stats_add(s, NULL);
    o = ev_stats_summary(s, 1);
    CHECK_INT(json_integer_value(json_object_get(o, "records")), 2);
    CHECK(json_integer_value(json_object_get(
              json_object_get(json_array_get(json_object_get(o, "columns"), 0), "tokens"), "in")) == LLONG_MAX);
    CHECK_INT(json_integer_value(json_object_get(o, "tests")), 0); /* past the per-test cap */
    CHECK(json_is_null(json_object_get(json_object_get(o, "score"), "mean")));
    json_decref(o);
    ev_stats_free(s);
    ev_stats_free(NULL);
}

/* Adds the same 60 records in two orders: the summaries must be equal. */
TEST(stats_summary_order_independent)
{
    const char *prov[] = { "a", "b" };
    ev_stats *s1 = ev_stats_new(NULL, 1, prov, 2, 30, 1), *s2 = ev_stats_new(NULL, 1, prov, 2, 30, 1);
    ev_assert_outcome o[1] = { { "rouge-n", false, NULL, 1, { EV_PASS, 0, NULL } } };
    ev_record rs[60];
    for (size_t i = 0; i < 60; i++) {
        rs[i] = rec(i / 2, 0, 0, i % 2, (i % 7) ? EV_PASS : EV_FAIL, (double)(i % 10) / 10.0);
        rs[i].latency_ms = (double)((i * 31) % 97);
        rs[i].asserts = o;
        rs[i].nasserts = 1;
    }
    for (size_t i = 0; i < 60; i++) {
        o[0].r.score = rs[i].score;
        ev_stats_add(s1, &rs[i]);
    }
    for (size_t i = 60; i-- > 0;) {
        o[0].r.score = rs[i].score;
        ev_stats_add(s2, &rs[i]);
    }
    json_t *j1 = ev_stats_summary(s1, 5), *j2 = ev_stats_summary(s2, 5), *j3 = ev_stats_summary(s1, 6);
    CHECK(json_equal(j1, j2));
    CHECK(!json_equal(j1, j3)); /* the seed does move the bootstrap */
    json_decref(j1);
    json_decref(j2);
    json_decref(j3);
    ev_stats_free(s1);
    ev_stats_free(s2);
}

TEST(stats_summary_repeats)
{
    /* 3 tests x repeat 4: passes 4/4, 2/4, 0/4. */
    ev_stats *s = ev_stats_new(NULL, 1, NULL, 1, 3, 4);
    const int passes[3] = { 4, 2, 0 };
    for (size_t t = 0; t < 3; t++)
        for (int k = 0; k < 4; k++) {
            ev_record r = rec(t, k, 0, 0, k < passes[t] ? EV_PASS : EV_FAIL, k < passes[t] ? 1 : 0);
            ev_stats_add(s, &r);
        }
    json_t *o = ev_stats_summary(s, 1);
    CHECK_INT(json_integer_value(json_object_get(o, "repeat")), 4);
    const json_t *pa = json_object_get(o, "pass_at_k"), *ph = json_object_get(o, "pass_hat_k");
    CHECK_INT(jnum(pa, "k", NULL), 4);
    CHECK_NEAR(jnum(pa, "mean", NULL), 2.0 / 3.0, 1e-12); /* pass@4: 1, 1, 0 */
    CHECK_NEAR(jnum(ph, "mean", NULL), 1.0 / 3.0, 1e-12); /* pass^4: 1, 0, 0 */
    /* The curve: pass@1 = mean c/n = (1 + .5 + 0)/3; pass@2 for c=2,n=4 = 1 - C(2,2)/C(4,2) = 5/6. */
    const json_t *bk = json_object_get(pa, "by_k");
    CHECK_INT(json_array_size(bk), 4);
    CHECK_NEAR(json_number_value(json_array_get(bk, 0)), 0.5, 1e-12);
    CHECK_NEAR(json_number_value(json_array_get(bk, 1)), (1 + 5.0 / 6.0) / 3.0, 1e-12);
    /* pass^2 for c=2,n=4 = C(2,2)/C(4,2) = 1/6. */
    CHECK_NEAR(json_number_value(json_array_get(json_object_get(ph, "by_k"), 1)), (1 + 1.0 / 6.0) / 3.0, 1e-12);
    const json_t *tk = json_object_get(o, "tests_k");
    CHECK_INT(json_array_size(tk), 3);
    CHECK_INT(jnum(json_array_get(tk, 1), "c", NULL), 2);
    CHECK_NEAR(jnum(json_array_get(tk, 1), "pass_at_k", NULL), 1.0, 0);
    CHECK_NEAR(jnum(json_array_get(tk, 1), "pass_hat_k", NULL), 0.0, 0);
    json_decref(o);
    ev_stats_free(s);

    /* A partial run: a test with fewer samples than k is left out of pass@k. */
    s = ev_stats_new(NULL, 1, NULL, 1, 0, 3);
    ev_record r = rec(0, 0, 0, 0, EV_PASS, 1);
    ev_stats_add(s, &r);
    for (int k = 0; k < 3; k++) {
        r = rec(1, k, 0, 0, k ? EV_PASS : EV_FAIL, 1);
        ev_stats_add(s, &r);
    }
    o = ev_stats_summary(s, 1);
    CHECK_INT(jnum(o, "pass_at_k", "n"), 1);
    CHECK_NEAR(jnum(o, "pass_at_k", "mean"), 1.0, 0);
    CHECK_NEAR(jnum(o, "pass_hat_k", "mean"), 0.0, 0);
    CHECK_NEAR(json_number_value(json_array_get(json_object_get(json_object_get(o, "pass_at_k"), "by_k"), 0)),
               (1.0 + 2.0 / 3.0) / 2.0, 1e-12);
    json_decref(o);
    ev_stats_free(s);
}

TEST(stats_summary_past_caps)
{
    /* 20,000 records: past the exact caps for scores and latencies. The
     * latencies are 1..20000 ms, so p50 = 10000.5 and p95 = 19000.05 exactly;
     * the histogram must land within 1%. Scores alternate 0/1. */
    ev_stats *s = ev_stats_new(NULL, 1, NULL, 1, 20000, 1);
    ev_assert_outcome o[1] = { { "equals", false, NULL, 1, { EV_PASS, 0, NULL } } };
    for (size_t i = 0; i < 20000; i++) {
        ev_record r = rec(i, 0, 0, 0, i % 2 ? EV_PASS : EV_FAIL, (double)(i % 2));
        r.latency_ms = (double)(i + 1);
        o[0].r.score = (double)(i % 2);
        r.asserts = o;
        r.nasserts = 1;
        ev_stats_add(s, &r);
    }
    json_t *j = ev_stats_summary(s, 1);
    const json_t *c = json_array_get(json_object_get(j, "columns"), 0);
    CHECK_NEAR(jnum(c, "latency_ms", "p50"), 10000.5, 100.0);
    CHECK_NEAR(jnum(c, "latency_ms", "p95"), 19000.05, 190.0);
    CHECK_NEAR(jnum(c, "latency_ms", "mean"), 10000.5, 1e-6);
    const json_t *m = json_object_get(json_object_get(j, "metrics"), "equals");
    CHECK_NEAR(jnum(m, "mean", NULL), 0.5, 1e-12);
    /* Normal interval: 0.5 +- 1.96 * 0.5 / sqrt(20000). */
    CHECK_NEAR(jnum(m, "lo", NULL), 0.5 - EV_Z95 * 0.5 / sqrt(20000.0), 1e-9);
    CHECK_NEAR(jnum(m, "hi", NULL), 0.5 + EV_Z95 * 0.5 / sqrt(20000.0), 1e-9);
    CHECK_INT(jnum(m, "n", NULL), 20000);
    CHECK_INT(json_integer_value(json_object_get(j, "tests")), 20000);
    json_decref(j);
    ev_stats_free(s);
}

TEST(stats_summary_many_metrics)
{
    /* More metric names than the table holds: the rest are counted as dropped. */
    ev_stats *s = ev_stats_new(NULL, 1, NULL, 1, 1, 1);
    char names[300][16];
    ev_assert_outcome o[300];
    for (int i = 0; i < 300; i++) {
        snprintf(names[i], sizeof names[i], "m%03d", i);
        o[i] = (ev_assert_outcome){ names[i], false, NULL, 1, { EV_PASS, 1, NULL } };
    }
    ev_record r = rec(0, 0, 0, 0, EV_PASS, 1);
    r.asserts = o;
    r.nasserts = 300;
    ev_stats_add(s, &r);
    json_t *j = ev_stats_summary(s, 1);
    CHECK_INT(json_object_size(json_object_get(j, "metrics")), 256);
    CHECK_INT(json_integer_value(json_object_get(j, "metrics_dropped")), 44);
    json_decref(j);
    ev_stats_free(s);
}

TEST(stats_summary_two_valued_ideal_bootstrap)
{
    /* 0/1 scores take the exact (ideal) bootstrap; it must agree with a
     * long Monte Carlo bootstrap of the same values. */
    enum { N = 200 };
    ev_stats *s = ev_stats_new(NULL, 1, NULL, 1, N, 1);
    double x[N];
    for (size_t i = 0; i < N; i++) {
        x[i] = i % 4 ? 1.0 : 0.0;
        ev_record r = rec(i, 0, 0, 0, EV_PASS, x[i]);
        ev_stats_add(s, &r);
    }
    json_t *j = ev_stats_summary(s, 3);
    double m, lo, hi;
    CHECK(ev_bootstrap_mean(x, N, 100000, 11, 0.95, &m, &lo, &hi));
    CHECK_NEAR(jnum(j, "score", "mean"), 0.75, 1e-15);
    CHECK_NEAR(jnum(j, "score", "lo"), lo, 0.006);
    CHECK_NEAR(jnum(j, "score", "hi"), hi, 0.006);
    /* On the 1/N grid, and the same for every seed. */
    double l1 = jnum(j, "score", "lo");
    CHECK_NEAR(l1 * N, round(l1 * N), 1e-9);
    json_t *j2 = ev_stats_summary(s, 4);
    CHECK(jnum(j2, "score", "lo") == l1);
    json_decref(j);
    json_decref(j2);
    ev_stats_free(s);

    /* A constant sample: a zero-width interval. */
    s = ev_stats_new(NULL, 1, NULL, 1, 10, 1);
    for (size_t i = 0; i < 10; i++) {
        ev_record r = rec(i, 0, 0, 0, EV_PASS, 0.7);
        ev_stats_add(s, &r);
    }
    j = ev_stats_summary(s, 3);
    CHECK(jnum(j, "score", "lo") == 0.7 && jnum(j, "score", "hi") == 0.7 && jnum(j, "score", "mean") == 0.7);
    json_decref(j);
    ev_stats_free(s);
}

/* The leaderboard's intervals: latency quantiles by order statistics
 * (ranks n*q -/+ 1.96*sqrt(n*q*(1-q))), the mean cost by bootstrap. */
TEST(stats_latency_quantile_and_cost_intervals)
{
    const char *prompts[] = { "p" }, *providers[] = { "m" };
    ev_stats *s = ev_stats_new(prompts, 1, providers, 1, 100, 1);
    CHECK(s != NULL);
    for (size_t i = 0; i < 100; i++) {
        ev_record r = rec(i, 0, 0, 0, EV_PASS, 1);
        r.latency_ms = (double)(100 - i); /* 1..100 ms, in reverse */
        r.cost_usd = i % 2 ? 0.002 : 0.001;
        ev_stats_add(s, &r);
    }
    json_t *sum = ev_stats_summary(s, 7);
    const json_t *col = json_array_get(json_object_get(sum, "columns"), 0);
    const json_t *lat = json_object_get(col, "latency_ms"), *cost = json_object_get(col, "cost");
    /* p50: ranks floor(50 - 9.8) = 40 and ceil(59.8) = 60 (0-based) -> 41 and 61 ms */
    CHECK(json_number_value(json_object_get(lat, "p50_lo")) == 41);
    CHECK(json_number_value(json_object_get(lat, "p50_hi")) == 61);
    /* p95: 95 -/+ 4.27 -> ranks 90 and 100 (clamped to 99) -> 91 and 100 ms */
    CHECK(json_number_value(json_object_get(lat, "p95_lo")) == 91);
    CHECK(json_number_value(json_object_get(lat, "p95_hi")) == 100);
    double m = json_number_value(json_object_get(cost, "mean")), lo = json_number_value(json_object_get(cost, "lo")),
           hi = json_number_value(json_object_get(cost, "hi"));
    CHECK(fabs(m - 0.0015) < 1e-12);
    CHECK(lo < m && m < hi && lo >= 0.001 && hi <= 0.002);
    json_decref(sum);
    ev_stats_free(s);
}
