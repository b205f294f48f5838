/*
 * stats.h - the statistics of an evaluation run: confidence intervals,
 * significance tests, pass@k, and the run summary that the runner feeds
 * with every finished record.
 *
 * The pure functions take arrays the caller owns and allocate at most a
 * scratch array of `iters` doubles. The accumulator (ev_stats) keeps a few
 * bytes per test and bounded buffers per metric and per column, so its
 * memory does not grow with the number of records past a fixed cap (see
 * docs/internals/eval-stats.md for the formulas and their sources).
 */
#ifndef GENAIOPS_EVAL_STATS_H
#define GENAIOPS_EVAL_STATS_H

#include <stdio.h>
#include "eval/eval.h"

/* The z of a two-sided 95% interval. */
#define EV_Z95 1.959963984540054
/* Bootstrap resamples used by ev_stats_summary() and ev_compare(). */
#define EV_BOOT_ITERS 2000

/* Wilson score interval for pass/n at confidence z (1.959964 for 95%).
 * n == 0 -> [0,1]; pass > n is taken as n. */
void ev_wilson(size_t pass, size_t n, double z, double *lo, double *hi);

/* Mean of x[0..n) and its percentile-bootstrap interval at `level`
 * (0.95 = 95%) from `iters` resamples drawn with a splitmix64 generator
 * seeded by `seed` (the same inputs give the same interval). x is not
 * modified. Returns false (outputs untouched) when n == 0, iters == 0 or
 * > 1e6, level is not in (0,1), or out of memory. */
bool ev_bootstrap_mean(const double *x, size_t n, size_t iters, uint64_t seed, double level,
                       double *mean, double *lo, double *hi);

/* McNemar's test on discordant pairs b (pass->fail) and c (fail->pass):
 * exact two-sided binomial p-value when b+c < 25, else chi-square with
 * continuity correction (1 degree of freedom). b+c == 0 -> 1. */
double ev_mcnemar_p(size_t b, size_t c);

/* Paired bootstrap of mean(cur - base) over n pairs: the observed mean
 * difference, its percentile interval at `level`, and a two-sided p-value
 * (twice the fraction of resampled means at or beyond 0 on the side
 * opposite to the observed difference, capped at 1; 1 when the difference
 * is 0). Same failure cases as ev_bootstrap_mean. */
bool ev_paired_bootstrap(const double *base, const double *cur, size_t n, size_t iters, uint64_t seed,
                         double level, double *diff, double *lo, double *hi, double *p);

/* Unbiased pass@k of n samples with c correct (Chen et al. 2021:
 * 1 - C(n-c,k)/C(n,k)) and pass^k (C(c,k)/C(n,k), Yao et al. 2024,
 * tau-bench). NAN when n == 0, k == 0 or k > n; c > n is taken as n. */
double ev_pass_at_k(size_t n, size_t c, size_t k);
double ev_pass_hat_k(size_t n, size_t c, size_t k);

/* Quantile q in [0,1] of x[0..n) by linear interpolation between order
 * statistics (Hyndman & Fan type 7, R's default). Sorts x in place
 * (NaNs last). NAN when n == 0; q is clamped to [0,1]. */
double ev_quantile(double *x, size_t n, double q);

/* Inverse of the standard normal CDF (the z with P(Z <= z) = p), p in (0,1). */
double ev_norm_quantile(double p);

/* ---- the run summary ---------------------------------------------------- */

typedef struct ev_assert_outcome {
    const char *type;   /* base type, without "not-" */
    bool negate;
    const char *metric; /* named metric or NULL */
    double weight;
    ev_result r;
} ev_assert_outcome;

typedef struct ev_record {            /* one test x prompt x provider x repeat; all borrowed */
    size_t test; int repeat; size_t prompt, provider;
    const char *description;          /* or NULL */
    const json_t *vars;               /* object (NULL is written as {}) */
    const char *prompt_text;          /* rendered prompt as sent */
    const char *output;               /* answer text, NULL when the call failed */
    const char *error;                /* provider/evaluation error message or NULL */
    ev_verdict verdict; double score;
    const ev_assert_outcome *asserts; size_t nasserts;
    double latency_ms, cost_usd;      /* NAN unknown */
    long tokens_in, tokens_out;       /* -1 unknown */
    bool cached;
} ev_record;

typedef struct ev_stats ev_stats;

/* A new accumulator. labels: the display names of the prompts and
 * providers (copied; NULL entries become "prompt N"/"provider N").
 * ntests and repeat size the per-test pass counters (a few bytes per test
 * x column; they grow if a record names a later test). Returns NULL on out
 * of memory or when nprompts or nproviders is 0. */
ev_stats *ev_stats_new(const char *const *prompt_labels, size_t nprompts, const char *const *provider_labels,
                       size_t nproviders, size_t ntests, int repeat);

/* Counts one finished record (nothing of r is kept). Records naming a
 * prompt or provider out of range are counted in the totals only. */
void ev_stats_add(ev_stats *s, const ev_record *r);

/* The summary as a new JSON object (caller owns it; NULL on out of memory):
 * {tests, records, passed, failed, errors, pass_rate:{value,lo,hi},
 *  score:{mean,lo,hi,n}, metrics:{name:{mean,lo,hi,n}},
 *  columns:[{prompt, provider, passed, failed, errors, pass_rate:{value,lo,hi},
 *            score:{mean,lo,hi}, cost:{total,mean}, latency_ms:{p50,p95,mean},
 *            tokens:{in,out}}],
 *  and with repeat > 1: repeat, pass_at_k:{k,mean,n,by_k}, pass_hat_k:{k,mean,n,by_k},
 *  tests_k:[{test,prompt,provider,n,c,pass_at_k,pass_hat_k}] (ntests <= 1000)}.
 * Unknown values are null. The same records in any order and the same seed
 * give the same summary. */
json_t *ev_stats_summary(const ev_stats *s, uint64_t seed);
void ev_stats_free(ev_stats *s);

/* ---- baseline comparison ------------------------------------------------ */

/* One paired result (same test/prompt/provider/repeat key). pass: 1/0, -1
 * when the record errored (the pair is then left out). */
typedef struct ev_pair { const char *key; int base_pass, cur_pass; double base_score, cur_score; } ev_pair;

/* Compares paired results. Returns a new object (caller owns it), NULL on
 * out of memory or when tolerance < 0 or alpha is not in (0,1):
 * {n, pass_rate:{base,cur,diff}, mcnemar:{b,c,p}, score:{diff,lo,hi,p},
 *  regressed:[keys that passed in base and fail now], regressed_count,
 *  improved:[...], improved_count (lists capped at EV_COMPARE_MAX_KEYS),
 *  significant: p < alpha on either test in the direction of a drop,
 *  drop: pass-rate drop > tolerance or score drop > tolerance,
 *  gate_failed: the same measure (pass rate or score) dropped by more than
 *  the tolerance and significantly}. The score test counts only from
 *  EV_COMPARE_MIN_PAIRS pairs with finite scores on. */
#define EV_COMPARE_MAX_KEYS 1000
#define EV_COMPARE_MIN_PAIRS 10
json_t *ev_compare(const ev_pair *p, size_t n, double tolerance, double alpha, uint64_t seed);

#endif
