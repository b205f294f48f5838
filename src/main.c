/*
 * main.c - dispatch of `genaiops <command>`. Each command lives in
 * src/cli/<command>.c and parses its own options.
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "core/common.h"

static const cli_command commands[] = {
    { "serve", "run the gateway, the control plane and the probes", cli_serve },
    { "sim", "run the simulator alone as an OpenAI-compatible server", cli_sim },
    { "config", "check a configuration file (config check FILE)", cli_config },
    { "migrate", "apply the store's schema migrations (--dry-run to preview)", cli_migrate },
    { "traces", "search and follow the stored traces (traces list|show ID|tail)", cli_traces },
    { "prompt", "the prompt registry (prompt push|pull|list|show|diff|label|rollback|history|render|run)", cli_prompt },
    { "eval", "run an evaluation suite (promptfoo's format); eval list|show for stored runs", cli_eval },
    { "avi", "the Agentic Variability Index of a suite (avi -c FILE --runs K)", cli_avi },
    { "dataset", "stored test cases (dataset push|list|show|pull|generate)", cli_dataset },
    { "guard", "try a guardrail policy on a text, list the policies (guard test|list)", cli_guard },
    { "version", "print the version", cli_version },
};

int cli_version(int argc, char **argv)
{
    printf("genaiops %s\n", GENAIOPS_VERSION);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "genaiops %s - the GenAIOps platform: an OpenAI-compatible LLM gateway and more, in one binary\n\n"
            "usage: genaiops <command> [options]\n\ncommands:\n",
            GENAIOPS_VERSION);
    for (size_t i = 0; i < countof(commands); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`genaiops <command> --help` explains a command. Docs: docs/ (README.md to start).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        if (argc > 2) {
            for (size_t i = 0; i < countof(commands); i++)
                if (!strcmp(argv[2], commands[i].name)) {
                    char *sub[] = { argv[2], "--help", NULL };
                    return commands[i].run(2, sub);
                }
        }
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V"))
        return cli_version(argc - 1, argv + 1);
    for (size_t i = 0; i < countof(commands); i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "genaiops: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
