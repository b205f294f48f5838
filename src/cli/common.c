/* common.c - option parsing and config loading shared by the commands. */
#include <stdio.h>
#include <stdlib.h>
#include "cli/cli.h"

bool cli_flag(char **argv, int i, const char *name) { return strcmp(argv[i], name) == 0; }

bool cli_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return false;
    if (a[n] == '=') {
        *value = a + n + 1;
        return true;
    }
    if (a[n] != '\0')
        return false;
    if (*i + 1 >= argc) {
        fprintf(stderr, "genaiops: option %s needs a value\n", name);
        exit(2);
    }
    *value = argv[++*i];
    return true;
}

config *cli_load_config(const char *path)
{
    if (!path || !*path)
        path = getenv("GENAIOPS_CONFIG");
    if (!path || !*path)
        return config_default();
    config *c = NULL;
    config_diags d = { 0 };
    err_code e = config_load_file(path, &c, &d);
    config_diags_print(&d, path, stderr);
    config_diags_free(&d);
    if (e != ERR_OK) {
        fprintf(stderr, "genaiops: the configuration in %s has errors (see above); nothing was started\n", path);
        return NULL;
    }
    return c;
}

bool cli_parse_listen(const char *what, const char *listen, char *host, size_t hostcap, int *port)
{
    if (config_parse_listen(listen, host, hostcap, port) != ERR_OK) {
        fprintf(stderr, "genaiops: %s '%s' is not HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)\n", what, listen);
        return false;
    }
    if (!*host)
        snprintf(host, hostcap, "0.0.0.0");
    return true;
}

bool cli_is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 || strcmp(host, "localhost") == 0;
}
