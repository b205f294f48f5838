/*
 * avi.c - `genaiops avi`: the Agentic Variability Index of a suite (runs
 * each case K times through runner.h and measures with eval/avi.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/cli.h"
#include "eval/runner.h"
#include "store/store.h"

static const char usage[] =
    "usage: genaiops avi -c SUITE [--runs K] [--target N] [-o REPORT.json] [options]\n"
    "\n"
    "Runs every case of SUITE (promptfoo's format) K times at the provider's own settings and\n"
    "measures how much the application varies: outcome variability (pass/fail flips), output\n"
    "dispersion, tool-call trajectory variability, latency and cost spread, combined into the\n"
    "Agentic Variability Index from 0 (always the same) to 100. Prints the index against the\n"
    "target, the cases and components that drive it, and remedies. docs/avi.md has the formula.\n"
    "Exit status: 0 the index meets the target (or none is set), 100 it does not, 1 errors.\n"
    "\n"
    "options:\n"
    "  -c, --suite FILE     the suite; genaiops.avi in it may set runs, target, weights, embedding\n"
    "  --runs K             runs per case (default genaiops.avi.runs, else 5; 2 to 100)\n"
    "  --target N           the index to stay at or under (default genaiops.avi.target)\n"
    "  -o FILE              write the AVI report as JSON\n"
    "  --results FILE       also write every run's record (.json .jsonl .csv .xml .html .md)\n"
    "  -j N                 calls in flight (default evaluateOptions.maxConcurrency, else 4)\n"
    "  --filter-first-n N   only the first N cases\n"
    "  --json               print the summary (with the report under \"avi\") as JSON\n"
    "  --no-store           do not store the runs\n"
    "  --config FILE        genaiops config (store for prompt:// and runs)\n"
    "  --server URL         genaiops server for genaiops:MODEL providers\n";

static bool num(const char *opt, const char *v, double lo, double hi, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (!*v || *end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "genaiops avi: %s must be a number from %g to %g, not '%s'\n", opt, lo, hi, v);
        return false;
    }
    *out = d;
    return true;
}

int cli_avi(int argc, char **argv)
{
    ev_run_opts o = { .progress = isatty(STDERR_FILENO) ? 1 : 0, .avi = true, .avi_target = NAN, .seed = 1 };
    const char *config_path = NULL, *v, *results = NULL;
    bool no_store = false;
    double d;
    o.server = getenv("GENAIOPS_SERVER");
    for (int i = 1; i < argc; i++) {
        if (cli_opt(argc, argv, &i, "-c", &o.suite_path) || cli_opt(argc, argv, &i, "--suite", &o.suite_path) ||
            cli_opt(argc, argv, &i, "--config", &config_path) || cli_opt(argc, argv, &i, "--server", &o.server) ||
            cli_opt(argc, argv, &i, "-o", &o.avi_output) || cli_opt(argc, argv, &i, "--results", &results))
            continue;
        if (cli_opt(argc, argv, &i, "--runs", &v)) {
            if (!num("--runs", v, 2, 100, &d))
                return 2;
            o.avi_runs = (int)d;
        } else if (cli_opt(argc, argv, &i, "--target", &v)) {
            if (!num("--target", v, 0, 100, &o.avi_target))
                return 2;
        } else if (cli_opt(argc, argv, &i, "-j", &v)) {
            if (!num("-j", v, 1, 512, &d))
                return 2;
            o.concurrency = (int)d;
        } else if (cli_opt(argc, argv, &i, "--filter-first-n", &v)) {
            if (!num("--filter-first-n", v, 1, 1e9, &d))
                return 2;
            o.max_tests = (size_t)d;
        } else if (cli_flag(argv, i, "--json"))
            o.json = true;
        else if (cli_flag(argv, i, "--no-store"))
            no_store = true;
        else if (cli_flag(argv, i, "--no-progress-bar"))
            o.progress = 0;
        else if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            fputs(usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "genaiops avi: unknown argument '%s'\n\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!o.suite_path) {
        fprintf(stderr, "genaiops avi: which suite? (-c FILE)\n\n%s", usage);
        return 2;
    }
    if (results) {
        o.outputs = &results;
        o.noutputs = 1;
    }
    config *cfg = cli_load_config(config_path);
    if (!cfg)
        return 1;
    o.cfg = cfg;
    o.store_url = cfg->store_url ? cfg->store_url : STORE_DEFAULT_URL;
    o.no_store = no_store;
    int rc = ev_run(&o, NULL);
    config_free(cfg);
    return rc;
}
