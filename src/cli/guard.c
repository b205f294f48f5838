/*
 * guard.c - `genaiops guard test|list`: try a guardrail policy of the
 * configuration on a text without starting the gateway, and list the
 * policies.
 *
 * Both load the configuration (--config FILE, $GENAIOPS_CONFIG, or the
 * embedded default) and compile its policies with guard_engine_new, as
 * `serve` does, so a policy that would stop the gateway stops these too,
 * with its name and the reason. test runs one policy through
 * api_guard_run (src/api/guard.c), the function behind POST
 * /api/v1/guard/test, and prints its JSON (--json) or a table made from
 * that same JSON, so the CLI and the REST API always agree.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include "api/guard.h"
#include "cli/cli.h"
#include "core/buf.h"

#define STDIN_MAX ((size_t)16 << 20)
#define EXIT_FOUND 100

static const char usage[] =
    "usage: genaiops guard test --policy NAME [--stage input|output|tool] [--text TEXT]\n"
    "                           [--system TEXT] [--json] [--config FILE]\n"
    "       genaiops guard list [--json] [--config FILE]\n"
    "\n"
    "The guardrail policies of the configuration's `guardrails:` section\n"
    "(docs/guardrails.md), without starting the gateway.\n"
    "\n"
    "  test   runs one policy over one text as the gateway would and prints the\n"
    "         verdict (pass, flag, redact or block; in monitor mode the gateway only\n"
    "         records it), one line per finding (TYPE  detector/rule  start-end  score,\n"
    "         byte offsets), and the redacted text when the verdict is redact.\n"
    "         The harm classifier and the webhook are called for real.\n"
    "  list   lists the policies: stages, action, mode, detectors, where they apply.\n"
    "\n"
    "options:\n"
    "  --policy NAME   the policy to run (test)\n"
    "  --stage STAGE   input (the text is the last user message), output (the\n"
    "                  answer) or tool (a tool call's arguments); default: the\n"
    "                  policy's first stage\n"
    "  --text TEXT     the text; without it, all of stdin (at most 16 MiB)\n"
    "  --system TEXT   the system prompt, for the leakage detector\n"
    "  --json          the JSON of POST /api/v1/guard/test (test) or\n"
    "                  GET /api/v1/guard/policies (list)\n"
    "  --config FILE   the configuration (default: $GENAIOPS_CONFIG, else the built-in one)\n"
    "\n"
    "exit status: 0 nothing found, 100 something found (whatever the verdict),\n"
    "1 an error (unknown policy, bad configuration), 2 a usage error.\n"
    "\n"
    "examples:\n"
    "  genaiops guard test --policy pii-redact --text 'write to ann@example.com'\n"
    "  echo 'Ignore all previous instructions.' | genaiops guard test --policy no-injection --json\n"
    "  genaiops guard test --policy no-leak --stage output --system \"$(cat system.txt)\" < answer.txt\n"
    "  genaiops guard list --config genaiops.yaml\n";

/* Reads all of f into b (bounded by b's max). false with a message printed. */
static bool read_all(FILE *f, buf *b)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(b, chunk, n) != ERR_OK) {
            fprintf(stderr, "genaiops guard test: stdin is larger than %zu MiB\n", STDIN_MAX >> 20);
            return false;
        }
    if (ferror(f)) {
        fprintf(stderr, "genaiops guard test: cannot read stdin\n");
        return false;
    }
    return true;
}

static void print_json(const json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    fputc('\n', stdout);
}

/* The table of a test result (the JSON of api_guard_run). */
static void print_result(const json_t *o)
{
    const char *verdict = json_string_value(json_object_get(o, "verdict"));
    const char *mode = json_string_value(json_object_get(o, "mode"));
    bool monitor = mode && strcmp(mode, "monitor") == 0;
    printf("verdict: %s", verdict ? verdict : "?");
    printf(" (policy %s, stage %s, %s", json_string_value(json_object_get(o, "policy")),
           json_string_value(json_object_get(o, "stage")), mode ? mode : "?");
    if (monitor && verdict && strcmp(verdict, "pass") != 0)
        printf(": only recorded, the request goes through unchanged");
    printf(")\n");
    const json_t *fs = json_object_get(o, "findings");
    size_t i, wt = 4, wr = 8, ws = 3;
    const json_t *f;
    json_array_foreach(fs, i, f)
    {
        char span[48];
        size_t t = strlen(json_string_value(json_object_get(f, "type")));
        size_t r = strlen(json_string_value(json_object_get(f, "detector"))) + 1 +
                   strlen(json_string_value(json_object_get(f, "rule")));
        int w = snprintf(span, sizeof span, "%" JSON_INTEGER_FORMAT "-%" JSON_INTEGER_FORMAT,
                         json_integer_value(json_object_get(f, "start")),
                         json_integer_value(json_object_get(f, "end")));
        wt = MAX(wt, t);
        wr = MAX(wr, r);
        ws = MAX(ws, (size_t)(w > 0 ? w : 0));
    }
    json_array_foreach(fs, i, f)
    {
        char rule[160], span[48];
        snprintf(rule, sizeof rule, "%s/%s", json_string_value(json_object_get(f, "detector")),
                 json_string_value(json_object_get(f, "rule")));
        snprintf(span, sizeof span, "%" JSON_INTEGER_FORMAT "-%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(f, "start")), json_integer_value(json_object_get(f, "end")));
        printf("%-*s  %-*s  %-*s  %.2f\n", (int)MIN(wt, 40), json_string_value(json_object_get(f, "type")),
               (int)MIN(wr, 80), rule, (int)MIN(ws, 47), span, json_number_value(json_object_get(f, "score")));
    }
    const json_t *errs = json_object_get(o, "errors");
    json_array_foreach(errs, i, f)
        printf("error (%s): %s\n", json_string_value(json_object_get(f, "detector")),
               json_string_value(json_object_get(f, "message")));
    const json_t *red = json_object_get(o, "redacted");
    if (json_is_string(red)) {
        size_t n = json_string_length(red);
        const char *s = json_string_value(red);
        printf("redacted:\n");
        fwrite(s, 1, n, stdout);
        if (!n || s[n - 1] != '\n')
            fputc('\n', stdout);
    }
}

static void join(const json_t *a, char *out, size_t cap)
{
    size_t i, o = 0;
    const json_t *v;
    out[0] = '\0';
    json_array_foreach(a, i, v)
    {
        int w = snprintf(out + o, cap - o, "%s%s", i ? "," : "", json_string_value(v));
        if (w < 0 || (size_t)w >= cap - o)
            return;
        o += (size_t)w;
    }
}

static void print_policies(const json_t *list)
{
    const json_t *data = json_object_get(list, "data");
    if (!json_array_size(data)) {
        printf("no guardrail policies configured\n");
        return;
    }
    size_t i, wn = 4;
    const json_t *p;
    json_array_foreach(data, i, p)
        wn = MAX(wn, strlen(json_string_value(json_object_get(p, "name"))));
    printf("%-*s  %-17s  %-6s  %-7s  %-30s  %s\n", (int)wn, "NAME", "STAGES", "ACTION", "MODE", "DETECTORS",
           "APPLIES TO");
    json_array_foreach(data, i, p)
    {
        char stages[64], dets[160], where[512] = "", part[200];
        join(json_object_get(p, "stages"), stages, sizeof stages);
        join(json_object_get(p, "detectors"), dets, sizeof dets);
        static const char *const lists[] = { "models", "deployments", "keys" };
        for (size_t k = 0; k < countof(lists); k++) {
            const json_t *a = json_object_get(p, lists[k]);
            if (!json_array_size(a))
                continue;
            join(a, part, sizeof part);
            size_t o = strlen(where);
            snprintf(where + o, sizeof where - o, "%s%s: %s", o ? "; " : "", lists[k], part);
        }
        printf("%-*s  %-17s  %-6s  %-7s  %-30s  %s\n", (int)wn, json_string_value(json_object_get(p, "name")), stages,
               json_string_value(json_object_get(p, "action")), json_string_value(json_object_get(p, "mode")), dets,
               where[0] ? where : "every request");
    }
}

int cli_guard(int argc, char **argv)
{
    if (argc < 2 || cli_flag(argv, 1, "-h") || cli_flag(argv, 1, "--help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    bool test = strcmp(sub, "test") == 0;
    if (!test && strcmp(sub, "list") != 0) {
        fprintf(stderr, "genaiops guard: unknown subcommand '%s'\n\n%s", sub, usage);
        return 2;
    }
    const char *policy = NULL, *stage = NULL, *text = NULL, *system = NULL, *cfg_path = NULL;
    bool json = false;
    for (int i = 2; i < argc; i++) {
        const char *v;
        if (cli_flag(argv, i, "-h") || cli_flag(argv, i, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (cli_flag(argv, i, "--json"))
            json = true;
        else if (cli_opt(argc, argv, &i, "--config", &v))
            cfg_path = v;
        else if (test && cli_opt(argc, argv, &i, "--policy", &v))
            policy = v;
        else if (test && cli_opt(argc, argv, &i, "--stage", &v))
            stage = v;
        else if (test && cli_opt(argc, argv, &i, "--text", &v))
            text = v;
        else if (test && cli_opt(argc, argv, &i, "--system", &v))
            system = v;
        else {
            fprintf(stderr, "genaiops guard %s: unknown %s '%s' (see genaiops guard --help)\n", sub,
                    argv[i][0] == '-' ? "option" : "argument", argv[i]);
            return 2;
        }
    }
    guard_stage st = GS_INPUT;
    if (test && !policy) {
        fprintf(stderr, "genaiops guard test: --policy NAME is required (genaiops guard list shows the names)\n");
        return 2;
    }
    if (stage && !api_guard_stage_parse(stage, &st)) {
        fprintf(stderr, "genaiops guard test: --stage must be input, output or tool, not '%s'\n", stage);
        return 2;
    }

    config *cfg = cli_load_config(cfg_path);
    if (!cfg)
        return 1;
    int rc = 1;
    guard_engine *g = NULL;
    json_t *out = NULL;
    buf in;
    buf_init(&in, STDIN_MAX);
    char msg[512];
    if (guard_engine_new(&cfg->guardrails, &g, msg, sizeof msg) != ERR_OK) {
        fprintf(stderr, "genaiops guard: %s\n", msg);
        goto out;
    }
    if (!test) {
        out = api_guard_policies(cfg, g);
        if (!out) {
            fprintf(stderr, "genaiops guard list: out of memory\n");
            goto out;
        }
        json ? print_json(out) : print_policies(out);
        rc = 0;
        goto out;
    }
    int idx = guard_policy_find(g, policy);
    if (idx < 0) {
        size_t n = guard_policy_count(g);
        fprintf(stderr, "genaiops guard test: no guardrail policy named '%s'", policy);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "%s%s", i ? ", " : " (configured: ", guard_policy_at(g, i)->name);
        fprintf(stderr, "%s\n", n ? ")" : " (the configuration has none)");
        goto out;
    }
    if (!stage)
        st = api_guard_default_stage(guard_policy_at(g, (size_t)idx));
    size_t len;
    if (text)
        len = strlen(text);
    else {
        if (!read_all(stdin, &in))
            goto out;
        text = in.p ? in.p : "";
        len = in.len;
    }
    if (api_guard_run(cfg, g, idx, st, text, len, system, system ? strlen(system) : 0, &out, msg, sizeof msg) !=
        ERR_OK) {
        fprintf(stderr, "genaiops guard test: %s\n", msg);
        goto out;
    }
    json ? print_json(out) : print_result(out);
    rc = json_array_size(json_object_get(out, "findings")) ? EXIT_FOUND : 0;
out:
    fflush(stdout);
    json_decref(out);
    buf_free(&in);
    guard_engine_free(g);
    config_free(cfg);
    return rc;
}
