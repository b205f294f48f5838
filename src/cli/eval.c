/*
 * eval.c - `genaiops eval`: run a promptfoo-format suite (runner.h), list
 * and show the stored runs (evstore.h), and compare two of them
 * (compare.h, the same comparison the REST API answers with).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/cli.h"
#include "eval/compare.h"
#include "eval/evstore.h"
#include "eval/report.h"
#include "eval/runner.h"
#include "eval/stats.h"
#include <math.h>
#include "store/store.h"

static const char usage[] =
    "usage: genaiops eval -c SUITE [options]        run a suite (promptfoo's config format)\n"
    "       genaiops eval list [--limit N] [--json]  the stored runs, newest first\n"
    "       genaiops eval show RUN [--results] [--json]\n"
    "       genaiops eval compare BASE CURRENT [--gate] [--tolerance T] [--alpha A] [--json]\n"
    "\n"
    "Runs every test of SUITE (promptfooconfig.yaml, or any YAML/JSON file in its format)\n"
    "against each prompt x provider, checks the assertions, prints a summary table and\n"
    "stores the run. Exit status: 0 all passed, 100 some tests failed, 1 errors (a bad\n"
    "suite, or calls or checks that could not be made).\n"
    "\n"
    "options:\n"
    "  -c, --suite FILE       the suite (also --config-file); required\n"
    "  -o, --output FILE      write results; the extension picks the format: .json .jsonl\n"
    "                         .csv .xml (JUnit) .html .md (repeat -o for several)\n"
    "  -j, --max-concurrency N  calls in flight (default: evaluateOptions.maxConcurrency, else 4)\n"
    "  --repeat N             run each test N times (independent samples: no cache)\n"
    "  --no-cache             do not read or write the response cache\n"
    "  --filter-first-n N     only the first N tests\n"
    "  --description TEXT     name the run (default: the suite's description)\n"
    "  --no-progress-bar      plain progress lines even on a terminal\n"
    "  --no-table             no summary table\n"
    "  --json                 print the summary as JSON instead of the table\n"
    "  --seed N               seed of the bootstrap intervals (default 1)\n"
    "  --no-store             do not store the run\n"
    "  --baseline RUN         compare with a stored run (an id, a prefix, or latest: the newest\n"
    "                         finished run before this one): paired McNemar test of pass/fail and\n"
    "                         paired bootstrap of scores; the report names regressed tests\n"
    "  --gate                 with --baseline: exit 100 only on a drop larger than the tolerance\n"
    "                         AND statistically significant (else 0), 1 on errors\n"
    "  --tolerance T          drop in pass rate or mean score tolerated (default 0.05)\n"
    "  --alpha A              significance level (default 0.05)\n"
    "  --config FILE          genaiops config: its store keeps runs and prompt:// prompts\n"
    "                         (default ./genaiops.db)\n"
    "  --server URL           genaiops server for genaiops:MODEL providers (or $GENAIOPS_SERVER;\n"
    "                         default http://127.0.0.1:8080)\n"
    "\n"
    "Providers: openai:chat:MODEL (apiBaseUrl, apiKey or $OPENAI_API_KEY), anthropic:messages:MODEL,\n"
    "genaiops:MODEL (a model or deployment of a genaiops server), sim:MODE (the built-in simulator,\n"
    "for tests and demos: echo, lorem, ...), echo (answers with the prompt).\n"
    "Docs: docs/eval.md.\n";

static bool parse_num(const char *opt, const char *v, long lo, long hi, long *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi) {
        fprintf(stderr, "genaiops eval: %s must be a whole number from %ld to %ld, not '%s'\n", opt, lo, hi, v);
        return false;
    }
    *out = n;
    return true;
}

static const char *store_url_of(const char *config_path, config **cfg)
{
    *cfg = cli_load_config(config_path);
    if (!*cfg)
        return NULL;
    return (*cfg)->store_url ? (*cfg)->store_url : STORE_DEFAULT_URL;
}

static int print_json(json_t *j)
{
    char *t = json_dumps(j, JSON_INDENT(2));
    if (t)
        printf("%s\n", t);
    free(t);
    return t ? 0 : 1;
}

static int cmd_list(int argc, char **argv)
{
    const char *config_path = NULL, *v;
    long limit = 20;
    bool json = false;
    for (int i = 2; i < argc; i++) {
        if (cli_opt(argc, argv, &i, "--config", &config_path))
            continue;
        if (cli_opt(argc, argv, &i, "--limit", &v)) {
            if (!parse_num("--limit", v, 1, 1000, &limit))
                return 2;
        } else if (cli_flag(argv, i, "--json"))
            json = true;
        else {
            fprintf(stderr, "genaiops eval list: unknown argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    config *cfg;
    const char *url = store_url_of(config_path, &cfg);
    if (!url)
        return 1;
    json_t *arr = NULL;
    query_error e;
    int rc = 0;
    if (evstore_list(url, (size_t)limit, &arr, &e) != ERR_OK) {
        fprintf(stderr, "genaiops eval list: %s\n", e.message);
        rc = 1;
    } else if (json)
        rc = print_json(arr);
    else {
        printf("%-20s %-20s %-11s %7s %7s %7s %7s  %s\n", "RUN", "CREATED", "STATUS", "RESULTS", "PASSED", "FAILED",
               "ERRORS", "DESCRIPTION");
        size_t i;
        json_t *r;
        json_array_foreach(arr, i, r)
        {
            const char *d = json_string_value(json_object_get(r, "description"));
            printf("%-20s %-20s %-11s %7lld %7lld %7lld %7lld  %s\n", json_string_value(json_object_get(r, "id")),
                   json_string_value(json_object_get(r, "created_at")),
                   json_string_value(json_object_get(r, "status")),
                   (long long)json_integer_value(json_object_get(r, "records")),
                   (long long)json_integer_value(json_object_get(r, "passed")),
                   (long long)json_integer_value(json_object_get(r, "failed")),
                   (long long)json_integer_value(json_object_get(r, "errors")), d ? d : "");
        }
        if (json_array_size(arr) == 0)
            printf("(no runs yet: genaiops eval -c SUITE)\n");
    }
    json_decref(arr);
    config_free(cfg);
    return rc;
}

static int cmd_show(int argc, char **argv)
{
    const char *config_path = NULL, *id = NULL;
    bool json = false, results = false;
    for (int i = 2; i < argc; i++) {
        if (cli_opt(argc, argv, &i, "--config", &config_path))
            continue;
        if (cli_flag(argv, i, "--json"))
            json = true;
        else if (cli_flag(argv, i, "--results"))
            results = true;
        else if (argv[i][0] != '-' && !id)
            id = argv[i];
        else {
            fprintf(stderr, "genaiops eval show: unknown argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!id) {
        fprintf(stderr, "genaiops eval show: which run? (an id from `genaiops eval list`, or latest)\n");
        return 2;
    }
    config *cfg;
    const char *url = store_url_of(config_path, &cfg);
    if (!url)
        return 1;
    json_t *run = NULL;
    query_error e;
    int rc = 0;
    if (evstore_get(url, id, results, &run, &e) != ERR_OK) {
        fprintf(stderr, "genaiops eval show: %s\n", e.message);
        rc = 1;
    } else if (json)
        rc = print_json(run);
    else {
        json_t *meta = json_object_get(run, "meta");
        const char *d = json_string_value(json_object_get(run, "description"));
        printf("run %s  %s  %s\nsuite %s%s%s\n", json_string_value(json_object_get(run, "id")),
               json_string_value(json_object_get(run, "created_at")), json_string_value(json_object_get(run, "status")),
               json_string_value(json_object_get(run, "suite")), d ? "  " : "", d ? d : "");
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(meta, "prompts"), i, p)
        {
            const char *ref = json_string_value(json_object_get(p, "ref"));
            printf("prompt %zu: %s", i, json_string_value(json_object_get(p, "label")));
            if (ref)
                printf(" (prompt://%s, version %lld)", ref, (long long)json_integer_value(json_object_get(p, "version")));
            printf("\n");
        }
        json_array_foreach(json_object_get(meta, "providers"), i, p)
            printf("provider %zu: %s\n", i, json_string_value(json_object_get(p, "label")));
        json_array_foreach(json_object_get(meta, "datasets"), i, p)
            printf("dataset: %s\n", json_string_value(p));
        json_t *sum = json_object_get(run, "summary");
        if (json_is_object(sum)) {
            const char *const *none = NULL;
            ev_report_meta m = { json_string_value(json_object_get(run, "id")), d, NULL, NULL, none, 0, none, 0 };
            ev_report_table(stdout, sum, &m);
        }
        json_array_foreach(json_object_get(run, "results"), i, p)
        {
            const char *out = json_string_value(json_object_get(p, "output"));
            const char *err = json_string_value(json_object_get(p, "error"));
            printf("%-5s test %lld prompt %lld provider %lld  %.70s\n",
                   json_string_value(json_object_get(p, "verdict")),
                   (long long)json_integer_value(json_object_get(p, "test")),
                   (long long)json_integer_value(json_object_get(p, "prompt")),
                   (long long)json_integer_value(json_object_get(p, "provider")), err ? err : out ? out : "");
        }
    }
    json_decref(run);
    config_free(cfg);
    return rc;
}

/* Compares two stored runs result by result (ev_compare_runs, shared with
 * the REST API); prints the comparison (or its JSON) and sets *gate_failed.
 * Returns 0, or 1 on errors (printed). */
static int compare_runs(const char *url, const char *base, const char *cur, const char *skip, double tol,
                        double alpha, bool json, uint64_t seed, bool *gate_failed, json_t **out)
{
    query_error e;
    json_t *cmp = NULL;
    *gate_failed = false;
    if (ev_compare_runs(url, base, cur, skip, tol, alpha, seed, NULL, &cmp, &e) != ERR_OK) {
        fprintf(stderr, "genaiops eval: comparing runs: %s\n", e.message);
        return 1;
    }
    const char *ida = json_string_value(json_object_get(cmp, "baseline"));
    const char *idb = json_string_value(json_object_get(cmp, "current"));
    *gate_failed = json_is_true(json_object_get(cmp, "gate_failed"));
    if (out) { /* the caller prints it (with the run's summary) */
        *out = cmp;
        return 0;
    }
    if (json)
        print_json(cmp);
    else {
        const json_t *pr = json_object_get(cmp, "pass_rate"), *mc = json_object_get(cmp, "mcnemar"),
                     *sc = json_object_get(cmp, "score");
        printf("\nbaseline %s vs current %s: %lld paired results\n", ida, idb,
               (long long)json_integer_value(json_object_get(cmp, "n")));
        printf("  pass rate   %.3f -> %.3f  (%+.3f)   McNemar: %lld pass->fail, %lld fail->pass, p = %.4g\n",
               json_number_value(json_object_get(pr, "base")), json_number_value(json_object_get(pr, "cur")),
               json_number_value(json_object_get(pr, "diff")), (long long)json_integer_value(json_object_get(mc, "b")),
               (long long)json_integer_value(json_object_get(mc, "c")), json_number_value(json_object_get(mc, "p")));
        if (json_is_number(json_object_get(sc, "diff")))
            printf("  mean score  %+.3f  95%% CI [%+.3f, %+.3f]   paired bootstrap p = %.4g\n",
                   json_number_value(json_object_get(sc, "diff")), json_number_value(json_object_get(sc, "lo")),
                   json_number_value(json_object_get(sc, "hi")), json_number_value(json_object_get(sc, "p")));
        size_t k;
        json_t *key;
        const json_t *reg = json_object_get(cmp, "regressed");
        long long nreg = (long long)json_integer_value(json_object_get(cmp, "regressed_count"));
        if (nreg > 0) {
            printf("  regressed (passed before, fail now): %lld\n", nreg);
            json_array_foreach(reg, k, key)
            {
                if (k == 20) {
                    printf("    ... and %lld more\n", nreg - 20);
                    break;
                }
                printf("    %s\n", json_string_value(key));
            }
        }
        long long nimp = (long long)json_integer_value(json_object_get(cmp, "improved_count"));
        if (nimp > 0)
            printf("  improved (failed before, pass now): %lld\n", nimp);
        bool sig = json_is_true(json_object_get(cmp, "significant")), drop = json_is_true(json_object_get(cmp, "drop"));
        printf("  gate: %s (drop larger than %.3f: %s; significant at %.3g: %s)\n",
               *gate_failed ? "FAILED" : "passed", tol, drop ? "yes" : "no", alpha, sig ? "yes" : "no");
    }
    json_decref(cmp);
    return 0;
}

static bool parse_real(const char *opt, const char *v, double lo, double hi, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (!*v || *end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "genaiops eval: %s must be a number from %g to %g, not '%s'\n", opt, lo, hi, v);
        return false;
    }
    *out = d;
    return true;
}

static int cmd_compare(int argc, char **argv)
{
    const char *config_path = NULL, *ids[2] = { NULL, NULL }, *v;
    double tol = 0.05, alpha = 0.05;
    bool json = false, gate = false;
    size_t nid = 0;
    for (int i = 2; i < argc; i++) {
        if (cli_opt(argc, argv, &i, "--config", &config_path))
            continue;
        if (cli_opt(argc, argv, &i, "--tolerance", &v)) {
            if (!parse_real("--tolerance", v, 0, 1, &tol))
                return 2;
        } else if (cli_opt(argc, argv, &i, "--alpha", &v)) {
            if (!parse_real("--alpha", v, 1e-9, 0.5, &alpha))
                return 2;
        } else if (cli_flag(argv, i, "--json"))
            json = true;
        else if (cli_flag(argv, i, "--gate"))
            gate = true;
        else if (argv[i][0] != '-' && nid < 2)
            ids[nid++] = argv[i];
        else {
            fprintf(stderr, "genaiops eval compare: unknown argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    if (nid != 2) {
        fprintf(stderr, "genaiops eval compare: give the baseline run and the current run\n");
        return 2;
    }
    config *cfg;
    const char *url = store_url_of(config_path, &cfg);
    if (!url)
        return 1;
    bool failed = false;
    int rc = compare_runs(url, ids[0], ids[1], NULL, tol, alpha, json, 1, &failed, NULL);
    config_free(cfg);
    return rc ? rc : gate && failed ? EV_EXIT_FAILED : 0;
}

int cli_eval(int argc, char **argv)
{
    if (argc >= 2 && (cli_flag(argv, 1, "--help") || cli_flag(argv, 1, "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "list") == 0)
        return cmd_list(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "show") == 0)
        return cmd_show(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "compare") == 0)
        return cmd_compare(argc, argv);
    ev_run_opts o = { .progress = isatty(STDERR_FILENO) ? 1 : 0, .table = true, .seed = 1 };
    const char *config_path = NULL, *v, *baseline = NULL;
    const char *outputs[16];
    bool no_store = false, gate = false, tol_set = false, alpha_set = false;
    double tol = 0.05, alpha = 0.05;
    long n;
    o.server = getenv("GENAIOPS_SERVER");
    for (int i = 1; i < argc; i++) {
        if (cli_opt(argc, argv, &i, "-c", &o.suite_path) || cli_opt(argc, argv, &i, "--suite", &o.suite_path) ||
            cli_opt(argc, argv, &i, "--config-file", &o.suite_path) ||
            cli_opt(argc, argv, &i, "--config", &config_path) || cli_opt(argc, argv, &i, "--server", &o.server) ||
            cli_opt(argc, argv, &i, "--description", &o.description) ||
            cli_opt(argc, argv, &i, "--baseline", &baseline))
            continue;
        if (cli_opt(argc, argv, &i, "--tolerance", &v)) {
            if (!parse_real("--tolerance", v, 0, 1, &tol))
                return 2;
            tol_set = true;
            continue;
        }
        if (cli_opt(argc, argv, &i, "--alpha", &v)) {
            if (!parse_real("--alpha", v, 1e-9, 0.5, &alpha))
                return 2;
            alpha_set = true;
            continue;
        }
        if (cli_flag(argv, i, "--gate")) {
            gate = true;
            continue;
        }
        if (cli_opt(argc, argv, &i, "-o", &v) || cli_opt(argc, argv, &i, "--output", &v)) {
            if (o.noutputs == countof(outputs)) {
                fprintf(stderr, "genaiops eval: at most %zu outputs\n", countof(outputs));
                return 2;
            }
            const char *dot = strrchr(v, '.');
            static const char *const exts[] = { ".json", ".jsonl", ".csv", ".xml", ".html", ".htm", ".md" };
            size_t k = 0;
            while (dot && k < countof(exts) && strcasecmp(dot, exts[k]) != 0)
                k++;
            if (!dot || k == countof(exts)) {
                fprintf(stderr, "genaiops eval: -o %s: the extension picks the format: .json .jsonl .csv .xml .html "
                                ".md\n", v);
                return 2;
            }
            outputs[o.noutputs++] = v;
        } else if (cli_opt(argc, argv, &i, "-j", &v) || cli_opt(argc, argv, &i, "--max-concurrency", &v)) {
            if (!parse_num("-j", v, 1, 512, &n))
                return 2;
            o.concurrency = (int)n;
        } else if (cli_opt(argc, argv, &i, "--repeat", &v)) {
            if (!parse_num("--repeat", v, 1, 1000, &n))
                return 2;
            o.repeat = (int)n;
        } else if (cli_opt(argc, argv, &i, "--filter-first-n", &v)) {
            if (!parse_num("--filter-first-n", v, 1, 1000000000, &n))
                return 2;
            o.max_tests = (size_t)n;
        } else if (cli_opt(argc, argv, &i, "--seed", &v)) {
            if (!parse_num("--seed", v, 1, 2147483647, &n))
                return 2;
            o.seed = (uint64_t)n;
        } else if (cli_flag(argv, i, "--no-cache"))
            o.no_cache = true;
        else if (cli_flag(argv, i, "--no-progress-bar"))
            o.progress = 0;
        else if (cli_flag(argv, i, "--no-table"))
            o.table = false;
        else if (cli_flag(argv, i, "--json"))
            o.json = true;
        else if (cli_flag(argv, i, "--no-store"))
            no_store = true;
        else if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            fputs(usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "genaiops eval: unknown argument '%s'\n\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!o.suite_path) {
        fprintf(stderr, "genaiops eval: which suite? (-c FILE)\n\n%s", usage);
        return 2;
    }
    o.outputs = outputs;
    config *cfg = NULL;
    const char *url = store_url_of(config_path, &cfg);
    if (!cfg)
        return 1;
    o.cfg = cfg;
    o.store_url = url;
    o.no_store = no_store;
    if (gate && !baseline) {
        fprintf(stderr, "genaiops eval: --gate needs --baseline RUN\n");
        config_free(cfg);
        return 2;
    }
    if (baseline && no_store) {
        fprintf(stderr, "genaiops eval: --baseline compares stored runs; drop --no-store\n");
        config_free(cfg);
        return 2;
    }
    json_t *summary = NULL;
    bool json = o.json;
    if (json) { /* printed below, with the comparison if there is one */
        o.json = false;
        o.table = false;
    }
    int rc = ev_run(&o, &summary);
    const char *run_id = json_string_value(json_object_get(summary, "run_id"));
    /* the suite's own gate settings (genaiops: {gate: {baseline, tolerance, alpha}}) when the
     * command line gives none */
    const json_t *gc = json_object_get(summary, "gate_config");
    if (!baseline && json_is_object(gc) && json_is_string(json_object_get(gc, "baseline")) && !no_store) {
        baseline = json_string_value(json_object_get(gc, "baseline"));
        gate = !json_is_false(json_object_get(gc, "enabled"));
        if (!tol_set && json_is_number(json_object_get(gc, "tolerance")))
            tol = json_number_value(json_object_get(gc, "tolerance"));
        if (!alpha_set && json_is_number(json_object_get(gc, "alpha")))
            alpha = json_number_value(json_object_get(gc, "alpha"));
    }
    json_t *cmp = NULL;
    if (baseline && run_id && rc != EV_EXIT_ERROR) {
        bool failed = false;
        if (compare_runs(url, baseline, run_id, run_id, tol, alpha, json, o.seed, &failed, json ? &cmp : NULL) != 0)
            rc = EV_EXIT_ERROR;
        else if (gate) /* the gate decides: only a significant drop beyond the tolerance fails */
            rc = failed ? EV_EXIT_FAILED : EV_EXIT_OK;
    }
    if (json && summary) {
        if (cmp)
            json_object_set(summary, "comparison", cmp);
        print_json(summary);
    }
    json_decref(cmp);
    json_decref(summary);
    config_free(cfg);
    return rc;
}
