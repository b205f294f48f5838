/*
 * runner.h - `genaiops eval`: runs a promptfoo-format suite against its
 * providers on one libuv loop and reports.
 *
 * The runner streams the suite's tests (suite.h), renders each prompt with
 * each test's variables, calls every provider through the gateway's own
 * upstream client (libcurl multi driven by libuv; the simulator in-process),
 * checks the answers (assert.h, grader.h), and streams each finished record
 * to the summary (stats.h), the output files (report.h) and the store. At
 * most `concurrency` test calls are in flight; memory does not grow with the
 * number of tests. See docs/internals/eval.md.
 */
#ifndef GENAIOPS_EVAL_RUNNER_H
#define GENAIOPS_EVAL_RUNNER_H

#include <jansson.h>
#include "core/common.h"
#include "core/config.h"

/* Exit codes, as promptfoo's. */
enum { EV_EXIT_OK = 0, EV_EXIT_ERROR = 1, EV_EXIT_FAILED = 100 };

typedef struct ev_run_opts {
    const char *suite_path;
    const char *const *outputs;   /* -o paths (format from the extension) */
    size_t noutputs;
    int concurrency;              /* 0 = evaluateOptions.maxConcurrency, else 4 */
    int repeat;                   /* 0 = evaluateOptions.repeat, else 1 */
    bool no_cache;                /* bypass the response cache (repeats always do) */
    const char *cache_path;       /* NULL = $GENAIOPS_CACHE_DIR or ~/.cache/genaiops, file eval-cache.db */
    const char *store_url;        /* where prompt:// resolves and runs are stored; NULL = no store */
    bool no_store;                /* resolve prompt:// but do not store the run */
    const char *server;           /* base URL of a genaiops server for `genaiops:MODEL` providers */
    const config *cfg;            /* simulator options and pricing overrides; may be NULL */
    int progress;                 /* 1 = live bar (terminal), 0 = plain lines, -1 = quiet */
    size_t max_tests;             /* 0 = all; else only the first N tests */
    const char *description;      /* overrides the suite's */
    uint64_t seed;                /* statistics' bootstrap seed */
    bool table;                   /* print the summary table on stdout */
    bool json;                    /* print the summary as JSON on stdout instead */
    /* `genaiops avi`: run each case avi_runs times (0 = the suite's genaiops.avi.runs, else 5)
     * and measure the Agentic Variability Index (avi.h) instead of printing the table */
    bool avi;
    int avi_runs;
    double avi_target;            /* NAN = the suite's genaiops.avi.target (or none) */
    const char *avi_output;       /* the AVI report as JSON, or NULL */
} ev_run_opts;

/* Runs the suite. Returns EV_EXIT_OK when every test passed, EV_EXIT_FAILED
 * when some failed (with avi: when the index misses its target), EV_EXIT_ERROR on errors (a bad suite: the message with
 * file, line and key path goes to stderr; or records that errored). On
 * return *summary (may be NULL) holds the run's summary JSON (caller
 * decrefs) or NULL when the run could not start. */
int ev_run(const ev_run_opts *o, json_t **summary);

/* `genaiops dataset generate`: asks a model for n new test cases like the
 * seeds (test case development) and writes them, for review, as a JSON
 * list of tests to out. */
typedef struct ev_gen_opts {
    const char *seeds;            /* the seeds' path, for messages */
    const json_t *seed_tests;     /* the seed test cases (array of test objects) */
    const char *provider;         /* the generating model's provider id (as in a suite) */
    const char *server;           /* for genaiops:MODEL */
    int n;                        /* how many to ask for */
    const char *out;              /* where to write them */
    const char *instructions;     /* extra guidance for the model, or NULL */
} ev_gen_opts;

/* Returns 0 when the file was written, 1 on errors (printed). */
int ev_generate(const ev_gen_opts *g);

#endif
