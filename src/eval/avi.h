/*
 * avi.h - the Agentic Variability Index: how much an application or agent
 * varies across repeated runs of the same case, measured per case from K
 * samples and summed up over a suite into a report against a target.
 *
 * A case (one test x prompt x provider) is run K times; avi_measure() turns
 * its K samples into five components in [0,1] (outcome variability, output
 * dispersion, trajectory variability, latency spread, cost spread) and an
 * index 0..100 (100 x the weighted mean of the applicable components). An
 * avi_report accumulates cases in a few numbers each (running sums, a
 * bounded heap of the worst cases, one row per prompt x provider) and
 * renders the suite's report as JSON and as text. The exact definitions
 * are in docs/avi.md; the comments below are the short form.
 *
 * Ownership: samples are borrowed for the duration of avi_measure; the
 * report copies every string it is given; avi_report_json returns a new
 * reference the caller decrefs.
 */
#ifndef GENAIOPS_EVAL_AVI_H
#define GENAIOPS_EVAL_AVI_H

#include <stdio.h>
#include "eval/eval.h"

/* K, the runs per case a suite may ask for (avi_options_parse). */
#define AVI_MAX_RUNS 100
/* Pairwise components (dispersion, trajectory) use at most this many runs
 * of a case (the first ones that did not fail); counts and spreads use all. */
#define AVI_MAX_PAIR_RUNS 100
/* Answers are compared on their first this many words. */
#define AVI_MAX_WORDS 4096
/* Tool calls of one run compared, at most. */
#define AVI_MAX_CALLS 256
/* Worst cases kept for the report. */
#define AVI_MAX_DRIVERS 10
/* prompt x provider rows kept; cases of further pairs count in the totals only. */
#define AVI_MAX_GROUPS 256

typedef struct avi_sample {          /* one run of a case; all borrowed */
    ev_verdict verdict;              /* the case's verdict in that run (its assertions) */
    const char *output;              /* the assistant's content ("" when the call failed, and for an
                                      * answer that is only tool calls: pass the calls in tool_calls,
                                      * not as JSON text, whose call ids differ in every run); NULL = "" */
    const json_t *tool_calls;        /* OpenAI message.tool_calls array of that run, or NULL */
    double latency_ms, cost_usd;     /* NAN unknown */
    bool failed;                     /* the call itself failed (error) */
} avi_sample;

typedef struct avi_weights { double outcome, dispersion, trajectory, latency, cost; } avi_weights;

/* 0.35 outcome, 0.25 dispersion, 0.25 trajectory, 0.075 latency, 0.075 cost. */
extern const avi_weights AVI_DEFAULT_WEIGHTS;

typedef struct avi_case {            /* per case, each component in [0,1], NAN = not applicable */
    double outcome, dispersion, trajectory, latency, cost;
    bool has_trajectory;             /* some run that did not fail made tool calls */
    double index;                    /* 0..100, never NAN */
    size_t runs, failures;
} avi_case;

/* Component names in report order: "outcome", "dispersion", "trajectory",
 * "latency", "cost" (i = 0..4), NULL past the end. */
const char *avi_component_name(size_t i);

/* Measures one case from its k samples (k >= 2; fewer give an all-zero
 * case with index 0). Lexical dispersion unless dist is given: a k x k
 * row-major matrix of precomputed answer distances in [0,1] (1 - cosine of
 * embeddings); entries outside [0,1] are clamped, non-finite ones skipped
 * (none finite: lexical). w NULL = the defaults; negative or non-finite
 * weights count as 0. Components that do not apply are NAN and the weights
 * of the others are renormalised. Never crashes on hostile samples;
 * allocates scratch memory that it frees before returning (on out of
 * memory the affected component is NAN). */
void avi_measure(const avi_sample *s, size_t k, const double *dist, const avi_weights *w, avi_case *out);

/* The lexical distance of two answers in [0,1]: 1 - Jaccard similarity of
 * their shingle sets (each lowercased word and each pair of adjacent words,
 * first AVI_MAX_WORDS words). Two empty answers are at 0. NAN only on out
 * of memory. */
double avi_lexical_distance(const char *a, size_t alen, const char *b, size_t blen);

/* The trajectory distance of two tool-call arrays (OpenAI tool_calls; NULL
 * or not an array = no calls) in [0,1]: the mean of the names-only and the
 * full-call normalised edit distances (docs/avi.md). NAN on out of memory. */
double avi_trajectory_distance(const json_t *a, const json_t *b);

/* The suite's AVI options, from `genaiops: { avi: {...} }`. */
typedef struct avi_options {
    double target;                   /* NAN = none */
    int runs;                        /* 0 = not set */
    avi_weights weights;             /* the defaults unless set */
    const json_t *embedding;         /* borrowed from obj: a provider id (string) or
                                      * {id, config} for embedding dispersion; NULL = lexical */
} avi_options;

/* Reads {target: 0..100, runs: 2..AVI_MAX_RUNS, weights: {outcome: w, ...},
 * embedding: PROVIDER} (obj NULL or absent keys: defaults; an unknown key is
 * an error, so typos do not pass). Returns ERR_OK, or ERR_CONFIG with a
 * message naming the key ("avi.target: expected a number from 0 to 100"). */
err_code avi_options_parse(const json_t *obj, avi_options *out, char *msg, size_t msgcap);

typedef struct avi_report avi_report;

/* A new, empty report: w NULL = defaults (copied; pass the weights the
 * cases were measured with: they split each case's index into the
 * components' shares); target NAN = none; runs is K as asked for
 * (reported). NULL on out of memory. */
avi_report *avi_report_new(const avi_weights *w, double target /* NAN = none */, int runs);

/* Adds one measured case. test: its index in the suite; label (e.g. the
 * test's description or "tests[3]"), prompt and provider labels (NULL =
 * "") are copied (truncated to 256 bytes) when the case is kept. Memory
 * stays bounded whatever the number of cases. */
void avi_report_add(avi_report *r, size_t test, const char *label, const char *prompt, const char *provider,
                    const avi_case *c);

/* The report as a new JSON object:
 * {index, target, met, runs, cases, failures, weights{...},
 *  components:{outcome:{mean, cases, share}, ...},
 *  drivers:[{test, label, prompt, provider, index, top_component, runs, failures,
 *            components{...}}]  (the worst cases, at most AVI_MAX_DRIVERS, worst first),
 *  remedies:[{component, share, advice:[...]}]  (components that drive the index),
 *  per_provider:[{provider, prompt, index, cases}]}
 * index is the unweighted mean of the cases' indices (0 without cases);
 * target and met are null without a target; a component mean is null when
 * it applied to no case. NULL on out of memory. */
json_t *avi_report_json(const avi_report *r);

/* Prints a report made by avi_report_json readably (no colours). */
void avi_report_print(FILE *f, const json_t *report);

void avi_report_free(avi_report *r);    /* NULL ok */

/* Bytes the report holds on the heap (for tests of its bounds). */
size_t avi_report_footprint(const avi_report *r);

#endif
