/*
 * eval.h - the types every part of the evaluation runner shares: one
 * assertion as a suite states it, one model answer as the assertions see it,
 * and the verdicts and scores they give back.
 *
 * The parts (see docs/internals/eval.md):
 *   suite.h   reads a promptfoo-format suite (YAML/JSON) and streams its tests
 *   assert.h  parses assertions and runs the deterministic ones
 *   grader.h  model-graded assertions and external commands, as a small state
 *             machine that asks the runner for model calls
 *   stats.h   intervals, tests and the run summary
 *   report.h  the output files (json, jsonl, csv, xml, html, md)
 *   runner.c  drives it all on one libuv loop over the upstream client
 */
#ifndef GENAIOPS_EVAL_H
#define GENAIOPS_EVAL_H

#include <stdlib.h>
#include <jansson.h>
#include "core/common.h"
#include "core/err.h"

/* An assertion's (or a test's) outcome. An error is never a fail: it means
 * the check itself could not be made (judge unreachable, bad regex...). */
typedef enum ev_verdict { EV_PASS = 0, EV_FAIL = 1, EV_ERROR = 2 } ev_verdict;

typedef struct ev_result {
    ev_verdict verdict;
    double score;       /* 0..1 for most types (the raw metric for a few, see docs/eval.md); never NaN */
    char *reason;       /* malloc'd human-readable reason, may be NULL; owner frees */
} ev_result;

/* One assertion of a test, as parsed from the suite by ev_assert_parse()
 * (assert.h). `type` is the base type without its "not-" prefix. */
typedef struct ev_assert ev_assert;
struct ev_assert {
    char *type;           /* "contains", "llm-rubric", "assert-set", ... */
    bool negate;          /* the suite said "not-<type>" */
    json_t *value;        /* the value as written (string, number, list, object) or NULL; owned */
    double threshold;     /* NAN when not set (each type has its default) */
    double weight;        /* 1 unless set; 0 = reported but not counted */
    char *metric;         /* named metric or NULL */
    char *provider;       /* grader provider override (model-graded) or NULL */
    json_t *config;       /* extra keys of the type (e.g. rubricPrompt, n for rouge-n) or NULL; owned */
    ev_assert *children;  /* assert-set: its assertions */
    size_t nchildren;
    char *path;           /* key path in the suite, e.g. "tests[3].assert[1]" (for messages) */
};

/* One answer of the model under test, as the assertions see it. All
 * pointers are borrowed and live for the duration of the check. */
typedef struct ev_output {
    const char *text;           /* the answer text (assistant content), NUL-terminated, never NULL */
    size_t len;
    const json_t *response;     /* the provider's parsed response body (OpenAI chat shape) or NULL */
    const json_t *tool_calls;   /* message.tool_calls (array) or NULL */
    const char *finish_reason;  /* or NULL */
    const char *prompt;         /* the rendered prompt as sent (text, or chat messages as JSON text) */
    const json_t *vars;         /* the test's variables (object), never NULL */
    const json_t *tools;        /* the tools the provider was given (its config.tools) or NULL */
    double latency_ms;          /* NAN when unknown (e.g. a cached answer) */
    double cost_usd;            /* NAN when unknown */
} ev_output;

/* Frees what an ev_result owns (its reason) and zeroes it. */
static inline void ev_result_clear(ev_result *r)
{
    free(r->reason);
    r->reason = NULL;
}

#endif
