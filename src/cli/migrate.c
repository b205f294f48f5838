/*
 * migrate.c - `genaiops migrate`: bring the store named by the config's
 * store.url to the schema version this binary knows, and say what changed.
 *
 * It opens the store without migrating (so a newer, locked or corrupt store
 * is reported before anything is written), lists the pending steps, and
 * unless --dry-run applies them, one transaction each. `serve` applies the
 * same steps at start; this command lets an operator do it ahead of a
 * deploy and see the versions. --dry-run never creates or writes the file.
 */
#include <jansson.h>
#include <stdio.h>
#include "cli/cli.h"
#include "store/store.h"

static const char usage[] =
    "usage: genaiops migrate [--config FILE] [--json] [--dry-run]\n"
    "\n"
    "Applies the pending schema migrations to the store named by store.url in the\n"
    "configuration (default sqlite://./genaiops.db), one transaction per step, and\n"
    "prints the schema version before and after.\n"
    "\n"
    "  --config FILE  the configuration (default: $GENAIOPS_CONFIG or the built-in one)\n"
    "  --json         print the result as one JSON object\n"
    "  --dry-run      only show the pending steps; do not create or change the store\n"
    "\n"
    "Exits 0 when the store is at the latest version (or, with --dry-run, could be\n"
    "brought there), 1 on an error (unwritable, locked, corrupt or newer store).\n";

static void print_result(bool json, const char *url, const char *path, int from, int to, bool dry_run,
                         bool exists)
{
    size_t n;
    const store_migration *m = store_migrations(&n);
    int target = dry_run ? store_latest_version() : to;
    if (json) {
        json_t *steps = json_array();
        for (size_t i = 0; i < n; i++)
            if (m[i].version > from && m[i].version <= target)
                json_array_append_new(steps, json_pack("{s:i, s:s}", "version", m[i].version, "name", m[i].name));
        json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:i, s:b, s:b, s:o}", "store", url, "path", path, "from", from,
                              "to", dry_run ? target : to, "latest", store_latest_version(), "dry_run", dry_run, "exists", exists,
                              dry_run ? "pending" : "applied", steps);
        json_dumpf(o, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(o);
        return;
    }
    if (from == target) {
        printf("store %s: schema version %d, up to date\n", path, from);
        return;
    }
    if (dry_run)
        printf("store %s: schema version %d%s, would migrate to %d:\n", path, from, exists ? "" : " (no file yet)",
               target);
    else
        printf("store %s: schema version %d -> %d\n", path, from, to);
    for (size_t i = 0; i < n; i++)
        if (m[i].version > from && m[i].version <= target)
            printf("  %s %d  %s\n", dry_run ? "pending" : "applied", m[i].version, m[i].name);
}

int cli_migrate(int argc, char **argv)
{
    const char *cfg_path = NULL;
    bool json = false, dry_run = false;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv, i, "-h") || cli_flag(argv, i, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--config", &cfg_path))
            continue;
        if (cli_flag(argv, i, "--json"))
            json = true;
        else if (cli_flag(argv, i, "--dry-run"))
            dry_run = true;
        else {
            fprintf(stderr, "genaiops migrate: unknown argument '%s'\n\n%s", argv[i], usage);
            return 2;
        }
    }
    config *cfg = cli_load_config(cfg_path);
    if (!cfg)
        return 1;
    const char *url = cfg->store_url ? cfg->store_url : STORE_DEFAULT_URL;
    int rc = 1;
    store *s = NULL;
    char msg[512];
    store_opts o = { .no_migrate = true, .read_only = dry_run };
    err_code e = store_open_opts(url, &o, &s, msg, sizeof msg);
    if (e == ERR_NOTFOUND && dry_run) {
        /* No file yet: serve or migrate would create it at version 0. */
        const char *sep = strstr(url, "://");
        print_result(json, url, sep ? sep + 3 : url, 0, 0, true, false);
        rc = 0;
        goto out;
    }
    if (e != ERR_OK) {
        fprintf(stderr, "genaiops migrate: %s\n", msg);
        goto out;
    }
    int from = store_version(s), to = from;
    if (!dry_run && store_migrate(s, &from, &to, msg, sizeof msg) != ERR_OK) {
        fprintf(stderr, "genaiops migrate: %s (the store stays at version %d)\n", msg, to);
        goto out;
    }
    print_result(json, url, store_path(s), from, to, dry_run, true);
    rc = 0;
out:
    store_close(s);
    config_free(cfg);
    return rc;
}
