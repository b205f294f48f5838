/*
 * config_cmd.c - `genaiops config check FILE`: load a configuration the way
 * `serve` would and report every problem with its line and key path.
 */
#include <jansson.h>
#include <stdio.h>
#include "cli/cli.h"
#include "guard/guard.h"

static const char usage[] =
    "usage: genaiops config check [--json] FILE\n"
    "\n"
    "Loads FILE as `genaiops serve --config FILE` would (with ${ENV} expansion) and\n"
    "prints every error and warning as FILE:LINE:COL: error: key.path: message.\n"
    "Exits 0 when the file is valid (warnings allowed), 1 when it has errors.\n";

int cli_config(int argc, char **argv)
{
    if (argc < 2 || cli_flag(argv, 1, "-h") || cli_flag(argv, 1, "--help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "check") != 0) {
        fprintf(stderr, "genaiops config: unknown subcommand '%s'\n\n%s", argv[1], usage);
        return 2;
    }
    bool json = false;
    const char *path = NULL;
    for (int i = 2; i < argc; i++) {
        if (cli_flag(argv, i, "--json"))
            json = true;
        else if (cli_flag(argv, i, "-h") || cli_flag(argv, i, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "genaiops config check: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (!path)
            path = argv[i];
        else {
            fprintf(stderr, "genaiops config check: only one FILE, please\n");
            return 2;
        }
    }
    if (!path) {
        fputs(usage, stderr);
        return 2;
    }
    config *c = NULL;
    config_diags d = { 0 };
    err_code e = config_load_file(path, &c, &d);
    char gmsg[512] = "";
    if (e == ERR_OK) { /* policies compile as serve would compile them (regexes, lists) */
        guard_engine *ge = NULL;
        if (guard_engine_new(&c->guardrails, &ge, gmsg, sizeof gmsg) != ERR_OK)
            e = ERR_CONFIG;
        guard_engine_free(ge);
    }
    if (json) {
        json_t *items = json_array();
        for (size_t i = 0; i < d.n; i++)
            json_array_append_new(items, json_pack("{s:s, s:i, s:i, s:s, s:s}", "severity",
                                                   d.items[i].warning ? "warning" : "error", "line", d.items[i].line,
                                                   "column", d.items[i].column, "path",
                                                   d.items[i].path ? d.items[i].path : "", "message",
                                                   d.items[i].message ? d.items[i].message : ""));
        if (gmsg[0])
            json_array_append_new(items, json_pack("{s:s, s:i, s:i, s:s, s:s}", "severity", "error", "line", 0,
                                                   "column", 0, "path", "guardrails", "message", gmsg));
        json_t *o = json_pack("{s:s, s:b, s:o}", "file", path, "valid", e == ERR_OK, "diagnostics", items);
        if (c)
            json_object_set_new(o, "summary", json_pack("{s:I, s:I, s:I}", "providers", (json_int_t)c->nproviders,
                                                        "models", (json_int_t)c->nmodels, "deployments",
                                                        (json_int_t)c->ndeployments));
        json_dumpf(o, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(o);
    } else {
        config_diags_print(&d, path, stdout);
        if (gmsg[0])
            printf("%s: error: %s\n", path, gmsg);
        if (e == ERR_OK)
            printf("%s: ok (%zu providers, %zu models, %zu deployments)\n", path, c->nproviders, c->nmodels,
                   c->ndeployments);
        else
            printf("%s: invalid\n", path);
    }
    config_diags_free(&d);
    config_free(c);
    return e == ERR_OK ? 0 : 1;
}
