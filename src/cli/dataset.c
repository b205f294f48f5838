/*
 * dataset.c - `genaiops dataset`: push, list, show and pull stored
 * datasets (eval/dataset.h), and generate new test cases from seed
 * examples with a model (eval/runner.h ev_generate) for review.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/cli.h"
#include "eval/dataset.h"
#include "eval/runner.h"
#include "eval/suite.h"
#include "store/store.h"

static const char usage[] =
    "usage: genaiops dataset push NAME FILE [-m MESSAGE] [--author NAME]\n"
    "       genaiops dataset list [--json]\n"
    "       genaiops dataset show NAME[:VERSION] [-n ROWS] [--json]\n"
    "       genaiops dataset pull NAME[:VERSION] -o FILE\n"
    "       genaiops dataset generate --seeds FILE --provider ID [-n N] [-o FILE] [--instructions TEXT]\n"
    "\n"
    "Datasets are test cases kept in the store as immutable numbered versions. push reads\n"
    "FILE (a promptfoo tests file: .csv with __expected columns, .jsonl, .json or .yaml list)\n"
    "and saves it as the next version of NAME, unless it equals the latest. A suite uses one\n"
    "with `tests: dataset://NAME` (the latest) or `dataset://NAME:VERSION`.\n"
    "generate asks a model for N (default 10) new test cases like the seeds (a tests file)\n"
    "and writes them to FILE (default generated-tests.json) for review before you push them.\n"
    "\n"
    "options:\n"
    "  --config FILE   genaiops config whose store keeps the datasets (default ./genaiops.db)\n";

static const char *url_of(const char *config_path, config **cfg)
{
    *cfg = cli_load_config(config_path);
    if (!*cfg)
        return NULL;
    return (*cfg)->store_url ? (*cfg)->store_url : STORE_DEFAULT_URL;
}

/* Reads a tests file into a JSON array (bad rows are errors with their position). */
static json_t *read_tests(const char *path)
{
    ev_diag d;
    memset(&d, 0, sizeof d);
    ev_tests *it = ev_tests_open_file(path, &d);
    char m[900];
    if (!it) {
        fprintf(stderr, "genaiops dataset: %s\n", ev_diag_format(&d, m, sizeof m));
        return NULL;
    }
    json_t *arr = json_array();
    for (;;) {
        json_t *t = NULL;
        ev_diag where;
        int rc = ev_tests_next(it, &t, &where, &d);
        if (rc == 0)
            break;
        if (rc < 0 || json_array_size(arr) >= DATASET_MAX_ROWS) {
            if (rc < 0)
                fprintf(stderr, "genaiops dataset: %s\n", ev_diag_format(&d, m, sizeof m));
            else
                fprintf(stderr, "genaiops dataset: %s has more than %d test cases\n", path, DATASET_MAX_ROWS);
            json_decref(t);
            json_decref(arr);
            arr = NULL;
            break;
        }
        json_array_append_new(arr, t);
    }
    ev_tests_close(it);
    return arr;
}

static int print_json(const json_t *j)
{
    char *t = json_dumps(j, JSON_INDENT(2));
    if (t)
        printf("%s\n", t);
    free(t);
    return t ? 0 : 1;
}

static int cmd_generate(int argc, char **argv, const char *config_path)
{
    ev_gen_opts g = { .n = 10, .out = "generated-tests.json" };
    const char *v;
    for (int i = 2; i < argc; i++) {
        if (cli_opt(argc, argv, &i, "--seeds", &g.seeds) || cli_opt(argc, argv, &i, "--provider", &g.provider) ||
            cli_opt(argc, argv, &i, "-o", &g.out) || cli_opt(argc, argv, &i, "--instructions", &g.instructions) ||
            cli_opt(argc, argv, &i, "--config", &v))
            continue;
        if (cli_opt(argc, argv, &i, "-n", &v)) {
            char *end;
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < 1 || n > 200) {
                fprintf(stderr, "genaiops dataset generate: -n must be 1 to 200, not '%s'\n", v);
                return 2;
            }
            g.n = (int)n;
        } else {
            fprintf(stderr, "genaiops dataset generate: unknown argument '%s'\n\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!g.seeds || !g.provider) {
        fprintf(stderr, "genaiops dataset generate: --seeds FILE and --provider ID are required\n\n%s", usage);
        return 2;
    }
    json_t *seeds = read_tests(g.seeds);
    if (!seeds)
        return 1;
    config *cfg = cli_load_config(config_path);
    if (!cfg) {
        json_decref(seeds);
        return 1;
    }
    g.seed_tests = seeds;
    g.server = getenv("GENAIOPS_SERVER");
    int rc = ev_generate(&g);
    json_decref(seeds);
    config_free(cfg);
    return rc;
}

int cli_dataset(int argc, char **argv)
{
    if (argc < 2 || cli_flag(argv, 1, "--help") || cli_flag(argv, 1, "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1], *config_path = NULL, *message = NULL, *author = getenv("USER"), *out = NULL, *v;
    const char *pos[2] = { NULL, NULL };
    size_t npos = 0, rows = 10;
    bool json = false;
    if (strcmp(sub, "generate") == 0) {
        for (int i = 2; i < argc; i++)
            if (cli_opt(argc, argv, &i, "--config", &config_path))
                break;
        return cmd_generate(argc, argv, config_path);
    }
    for (int i = 2; i < argc; i++) {
        if (cli_opt(argc, argv, &i, "--config", &config_path) || cli_opt(argc, argv, &i, "-m", &message) ||
            cli_opt(argc, argv, &i, "--message", &message) || cli_opt(argc, argv, &i, "--author", &author) ||
            cli_opt(argc, argv, &i, "-o", &out))
            continue;
        if (cli_opt(argc, argv, &i, "-n", &v)) {
            char *end;
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < 0 || n > 100000) {
                fprintf(stderr, "genaiops dataset: -n must be 0 to 100000, not '%s'\n", v);
                return 2;
            }
            rows = (size_t)n;
        } else if (cli_flag(argv, i, "--json"))
            json = true;
        else if (argv[i][0] != '-' && npos < 2)
            pos[npos++] = argv[i];
        else {
            fprintf(stderr, "genaiops dataset: unknown argument '%s'\n\n%s", argv[i], usage);
            return 2;
        }
    }
    config *cfg;
    const char *url = url_of(config_path, &cfg);
    if (!url)
        return 1;
    query_error e;
    json_t *res = NULL;
    int rc = 0;
    if (strcmp(sub, "push") == 0) {
        if (npos != 2) {
            fprintf(stderr, "genaiops dataset push: NAME and FILE are required\n");
            rc = 2;
            goto out;
        }
        json_t *tests = read_tests(pos[1]);
        bool created = false;
        if (!tests)
            rc = 1;
        else if (dataset_push(url, pos[0], tests, message, author, pos[1], &res, &created, &e) != ERR_OK) {
            fprintf(stderr, "genaiops dataset push: %s\n", e.message);
            rc = 1;
        } else if (json)
            print_json(res);
        else
            printf("%s %s:%lld (%lld test cases)\n", created ? "pushed" : "unchanged", pos[0],
                   (long long)json_integer_value(json_object_get(res, "version")),
                   (long long)json_integer_value(json_object_get(res, "rows")));
        json_decref(tests);
    } else if (strcmp(sub, "list") == 0) {
        if (dataset_list(url, &res, &e) != ERR_OK) {
            fprintf(stderr, "genaiops dataset list: %s\n", e.message);
            rc = 1;
        } else if (json)
            print_json(res);
        else {
            printf("%-40s %7s %9s %8s  %s\n", "NAME", "LATEST", "VERSIONS", "ROWS", "UPDATED");
            size_t i;
            json_t *d;
            json_array_foreach(res, i, d)
                printf("%-40s %7lld %9lld %8lld  %s\n", json_string_value(json_object_get(d, "name")),
                       (long long)json_integer_value(json_object_get(d, "latest")),
                       (long long)json_integer_value(json_object_get(d, "versions")),
                       (long long)json_integer_value(json_object_get(d, "rows")),
                       json_string_value(json_object_get(d, "updated_at")));
            if (json_array_size(res) == 0)
                printf("(no datasets yet: genaiops dataset push NAME FILE)\n");
        }
    } else if (strcmp(sub, "show") == 0) {
        if (npos != 1) {
            fprintf(stderr, "genaiops dataset show: which dataset? (NAME or NAME:VERSION)\n");
            rc = 2;
        } else if (dataset_get(url, pos[0], rows, &res, &e) != ERR_OK) {
            fprintf(stderr, "genaiops dataset show: %s\n", e.message);
            rc = 1;
        } else if (json)
            print_json(res);
        else {
            const char *msg = json_string_value(json_object_get(res, "message"));
            printf("%s:%lld  %lld test cases  %s  by %s  from %s\n%s%s",
                   json_string_value(json_object_get(res, "name")),
                   (long long)json_integer_value(json_object_get(res, "version")),
                   (long long)json_integer_value(json_object_get(res, "rows")),
                   json_string_value(json_object_get(res, "created_at")),
                   json_string_value(json_object_get(res, "author")),
                   json_string_value(json_object_get(res, "source")) ? json_string_value(json_object_get(res, "source"))
                                                                      : "-",
                   msg ? msg : "", msg ? "\n" : "");
            size_t i;
            json_t *t;
            json_array_foreach(json_object_get(res, "tests"), i, t)
            {
                char *s = json_dumps(t, JSON_COMPACT);
                printf("%4zu  %.150s%s\n", i + 1, s ? s : "", s && strlen(s) > 150 ? "..." : "");
                free(s);
            }
        }
    } else if (strcmp(sub, "pull") == 0) {
        int version = 0;
        if (npos != 1 || !out) {
            fprintf(stderr, "genaiops dataset pull: NAME[:VERSION] and -o FILE are required\n");
            rc = 2;
        } else if (dataset_export(url, pos[0], out, &version, &e) != ERR_OK) {
            fprintf(stderr, "genaiops dataset pull: %s\n", e.message);
            rc = 1;
        } else
            printf("wrote version %d to %s\n", version, out);
    } else {
        fprintf(stderr, "genaiops dataset: unknown subcommand '%s'\n\n%s", sub, usage);
        rc = 2;
    }
out:
    json_decref(res);
    config_free(cfg);
    return rc;
}
