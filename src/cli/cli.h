/*
 * cli.h - the commands of `genaiops`, one file each, and the option parsing
 * they share. Every command returns its process exit status.
 */
#ifndef GENAIOPS_CLI_H
#define GENAIOPS_CLI_H

#include "core/config.h"

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);   /* argv[0] is the command name */
} cli_command;

int cli_serve(int argc, char **argv);
int cli_sim(int argc, char **argv);
int cli_config(int argc, char **argv);
int cli_migrate(int argc, char **argv);
int cli_traces(int argc, char **argv);
int cli_prompt(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_dataset(int argc, char **argv);
int cli_avi(int argc, char **argv);
int cli_guard(int argc, char **argv);
int cli_version(int argc, char **argv);

/* Loads --config FILE (or $GENAIOPS_CONFIG, or the embedded default),
 * printing diagnostics to stderr. NULL on error. */
config *cli_load_config(const char *path);
/* Parses "HOST:PORT" into host and port, printing an error naming what. */
bool cli_parse_listen(const char *what, const char *listen, char *host, size_t hostcap, int *port);
bool cli_is_loopback(const char *host);
/* Option value helpers: "--name=value" or "--name value"; advance *i. */
bool cli_opt(int argc, char **argv, int *i, const char *name, const char **value);
bool cli_flag(char **argv, int i, const char *name);

#endif
