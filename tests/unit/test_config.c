/*
 * test_config.c - tests of the YAML config loader (src/core/config.c).
 *
 * Most cases are tables: a YAML snippet and either "loads" or the line, key
 * path and message fragment of the error (or warning) it must produce. Other
 * tests read back values of every type, ${VAR} expansion (setenv), the
 * embedded default, config_parse_listen, the golden files under
 * tests/data/config and the shipped examples/genaiops.yaml.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/config.h"
#include "core/log.h"
#include "test.h"

static const config_diag *find_diag(const config_diags *d, bool warning, const char *path, const char *frag)
{
    for (size_t i = 0; i < d->n; i++) {
        const config_diag *g = &d->items[i];
        if (g->warning == warning && (!path || strcmp(g->path, path) == 0) && (!frag || strstr(g->message, frag)))
            return g;
    }
    return NULL;
}

static size_t count_diags(const config_diags *d, bool warning)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += d->items[i].warning == warning;
    return n;
}

/* Loads a snippet; on an unexpected outcome the diagnostics are printed. */
static err_code load(const char *yaml, config **out, config_diags *d)
{
    return config_load_string("snippet", yaml, strlen(yaml), out, d);
}

typedef struct load_case {
    const char *yaml;
    int line;         /* expected line of the problem (0: not checked) */
    const char *path; /* its key path; NULL with msg NULL: must load cleanly */
    const char *msg;  /* fragment of its message */
} load_case;

static void run_cases(const load_case *cases, size_t n, bool warning)
{
    for (size_t i = 0; i < n; i++) {
        const load_case *t = &cases[i];
        config *c = NULL;
        config_diags d = { 0 };
        err_code e = load(t->yaml, &c, &d);
        bool good;
        if (!t->msg) {
            good = e == ERR_OK && c && count_diags(&d, false) == 0;
        } else if (warning) {
            const config_diag *g = find_diag(&d, true, t->path, t->msg);
            good = e == ERR_OK && c && g && (!t->line || g->line == t->line);
        } else {
            const config_diag *g = find_diag(&d, false, t->path, t->msg);
            good = e == ERR_CONFIG && !c && g && (!t->line || g->line == t->line);
        }
        if (!good) {
            test_fail(__FILE__, __LINE__, "case %zu (%s): rc %s, expected %s at line %d, path %s", i, t->yaml,
                      err_name(e), t->msg ? t->msg : "clean load", t->line, t->path ? t->path : "-");
            config_diags_print(&d, "snippet", stderr);
        }
        config_free(c);
        config_diags_free(&d);
    }
}

/* ---- snippets that must be refused: types and ranges ---- */

static const load_case type_errors[] = {
    { "server:\n  workers: lots\n", 2, "server.workers", "expected an integer between 0 and 256, got \"lots\"" },
    { "server:\n  workers: 257\n", 2, "server.workers", "between 0 and 256, got \"257\"" },
    { "server:\n  workers: -1\n", 2, "server.workers", "got \"-1\"" },
    { "server:\n  workers: 1.5\n", 2, "server.workers", "got \"1.5\"" },
    { "server:\n  workers: 99999999999999999999\n", 2, "server.workers", "expected an integer" },
    { "server:\n  workers: [1]\n", 2, "server.workers", "expected an integer between 0 and 256, got a list" },
    { "server:\n  workers: \"\"\n", 2, "server.workers", "got \"\"" },
    { "server:\n  max_headers: 0\n", 2, "server.max_headers", "between 1 and 1000" },
    { "server:\n  admin_key: [a, b]\n", 2, "server.admin_key", "expected a string, got a list" },
    { "server:\n  admin_key: {a: b}\n", 2, "server.admin_key", "expected a string, got a mapping" },
    { "server:\n  insecure: maybe\n", 2, "server.insecure", "expected true or false" },
    { "server:\n  insecure: 1\n", 2, "server.insecure", "got \"1\"" },
    { "server:\n  log_level: verbose\n", 2, "server.log_level", "expected one of debug, info, warn, error" },
    { "server:\n  log_format: xml\n", 2, "server.log_format", "one of text, json, got \"xml\"" },
    { "server:\n  header_timeout_ms: 5 s\n", 2, "server.header_timeout_ms", "expected a duration between 1ms and 1h" },
    { "server:\n  header_timeout_ms: 2h\n", 2, "server.header_timeout_ms", "got \"2h\"" },
    { "server:\n  header_timeout_ms: 0\n", 2, "server.header_timeout_ms", "got \"0\"" },
    { "server:\n  header_timeout_ms: 10d\n", 2, "server.header_timeout_ms", "got \"10d\"" },
    { "server:\n  header_timeout_ms: -5s\n", 2, "server.header_timeout_ms", "got \"-5s\"" },
    { "server:\n  header_timeout_ms: 1.5s\n", 2, "server.header_timeout_ms", "got \"1.5s\"" },
    { "server:\n  body_timeout_ms: 99999999999999999999h\n", 2, "server.body_timeout_ms", "expected a duration" },
    { "server:\n  max_body_bytes: 2GiB\n", 2, "server.max_body_bytes", "expected a size between 1KiB and 1GiB" },
    { "server:\n  max_body_bytes: 12XB\n", 2, "server.max_body_bytes", "got \"12XB\"" },
    { "server:\n  max_body_bytes: 100\n", 2, "server.max_body_bytes", "got \"100\"" },
    { "server:\n  max_stream_buffer: KiB\n", 2, "server.max_stream_buffer", "got \"KiB\"" },
    { "server:\n  max_header_bytes: 9223372036854775807GiB\n", 2, "server.max_header_bytes", "expected a size" },
    { "server:\n  retry: {max_retries: 11}\n", 2, "server.retry.max_retries", "between 0 and 10" },
    { "server:\n  retry: {base_ms: 9s, max_ms: 1s}\n", 2, "server.retry.base_ms", "must not be larger than max_ms" },
    { "server:\n  retry: 3\n", 2, "server.retry", "expected a mapping, got \"3\"" },
    { "server: 5\n", 1, "server", "expected a mapping, got \"5\"" },
    { "server: [a]\n", 1, "server", "expected a mapping, got a list" },
    { "providers: {name: x}\n", 1, "providers", "expected a list of mappings, got a mapping" },
    { "providers:\n  - 5\n", 2, "providers[0]", "expected a mapping, got \"5\"" },
    { "providers:\n  - { name: s, type: simulator, error_rate: 1.5 }\n", 2, "providers[0].error_rate",
      "expected a number between 0 and 1, got \"1.5\"" },
    { "providers:\n  - { name: s, type: simulator, error_rate: nan }\n", 2, "providers[0].error_rate", "got \"nan\"" },
    { "providers:\n  - { name: s, type: simulator, error_status: 399 }\n", 2, "providers[0].error_status",
      "between 400 and 599" },
    { "providers:\n  - { name: s, type: simulator, error_status: 600 }\n", 2, "providers[0].error_status",
      "got \"600\"" },
    { "providers:\n  - { name: s, type: simulator, mode: chaos }\n", 2, "providers[0].mode",
      "one of echo, lorem, canned" },
    { "providers:\n  - { name: s, type: simulator, canned: hello }\n", 2, "providers[0].canned",
      "expected a list of strings, got \"hello\"" },
    { "providers:\n  - { name: s, type: simulator, canned: [a, [b]] }\n", 2, "providers[0].canned[1]",
      "expected a string, got a list" },
    { "providers:\n  - { name: s, type: simulator, canned: [a, ~] }\n", 2, "providers[0].canned[1]",
      "got nothing" },
    { "providers:\n  - { name: s, type: simulator, canned: [a, \"\"] }\n", 2, "providers[0].canned[1]",
      "non-empty string" },
    { "providers:\n  - { name: s, type: simulator, max_tokens: 0 }\n", 2, "providers[0].max_tokens", "between 1" },
    { "providers:\n  - { name: s, type: simulator, latency_ms: 11m }\n", 2, "providers[0].latency_ms",
      "between 0ms and 10m" },
    { "providers:\n  - { name: o, type: openai, timeout_ms: 25h }\n", 2, "providers[0].timeout_ms", "and 24h" },
    { "providers:\n  - { name: o, type: openai, headers: [a] }\n", 2, "providers[0].headers",
      "expected a mapping of header names to values, got a list" },
    { "models:\n  - { name: m, provider: sim, fallbacks: sim/echo }\n", 2, "models[0].fallbacks",
      "expected a list of strings" },
    { "server:\n  admin_key: \"a\\0b\"\n", 2, "server.admin_key", "NUL byte" },
};

TEST(config_type_errors) { run_cases(type_errors, countof(type_errors), false); }

/* ---- structure: YAML, unknown and duplicate keys ---- */

static const load_case structure_errors[] = {
    { "server:\n  listn: 1\n", 2, "server.listn", "unknown key 'listn'; did you mean 'listen'?" },
    { "server:\n  wrkers: 1\n", 2, "server.wrkers", "did you mean 'workers'?" },
    { "server:\n  completely_unknown: 1\n", 2, "server.completely_unknown", "unknown key 'completely_unknown'" },
    { "srever:\n  listen: :80\n", 1, "srever", "unknown section 'srever'; did you mean 'server'?" },
    { "provider:\n  - {name: a}\n", 1, "provider", "did you mean 'providers'?" },
    { "guardrail: {}\n", 1, "guardrail", "did you mean 'guardrails'?" },
    { "guardrails:\n  policies:\n    - { name: p, stage: input, detectors: [pii, injektion] }\n", 3,
      "guardrails.policies[0].detectors[1]", "unknown detector 'injektion' (did you mean 'injection'?)" },
    { "guardrails:\n  policies:\n    - { name: p, stage: input, detectors: [injection], action: redact }\n", 3,
      "guardrails.policies[0].action", "action redact cannot apply to detector 'injection'" },
    { "guardrails:\n  policies:\n    - { name: p, detectors: [pii] }\n", 3, "guardrails.policies[0]",
      "needs a stage" },
    { "guardrails:\n  policies:\n    - { name: p, stage: inptu, detectors: [pii] }\n", 3,
      "guardrails.policies[0].stage", "unknown stage 'inptu' (did you mean 'input'?)" },
    { "guardrails:\n  policies:\n    - { name: p, stage: input, detectors: [leakage] }\n", 3,
      "guardrails.policies[0].stage", "leakage and schema look at answers" },
    { "guardrails:\n  policies:\n    - { name: p, stage: output, detectors: [harm] }\n", 3,
      "guardrails.policies[0].harm", "detector harm needs" },
    { "guardrails:\n  policies:\n    - { name: p, stage: output, detectors: [harm], harm: { model: nope } }\n", 3,
      "guardrails.policies[0].harm.model", "unknown model 'nope'" },
    { "guardrails:\n  policies:\n    - { name: p, stage: input, detectors: [pii] }\n    - { name: p, stage: input, detectors: [pii] }\n",
      4, "guardrails.policies[1].name", "duplicate guardrail policy name 'p'" },
    { "nonsense: 1\n", 1, "nonsense", "unknown section 'nonsense'" },
    { "providers:\n  - { name: o, type: openai, bse_url: \"http://x\" }\n", 2, "providers[0].bse_url",
      "did you mean 'base_url'?" },
    { "server:\n  workers: 1\n  workers: 2\n", 3, "server.workers", "duplicate key 'workers' (first given at line 2)" },
    { "server: {}\nserver: {}\n", 2, "server", "duplicate key 'server'" },
    { "providers:\n  - { name: a, name: b, type: openai }\n", 2, "providers[0].name", "duplicate key 'name'" },
    { "server:\n  <<: {workers: 2}\n", 2, "server.<<", "merge keys" },
    { "server:\n  ? [a]\n  : 1\n", 2, "server", "expected a key name, got a list" },
    { "- a\n- b\n", 1, "", "expected a mapping of sections" },
    { "just text\n", 1, "", "expected a mapping of sections" },
    { "server:\n  listen: [\n", 3, "", "invalid YAML" },
    { "server:\n  listen: a\n workers: 2\n", 3, "", "invalid YAML" },
    { "server:\n\tlisten: a\n", 2, "", "invalid YAML" },
    { "server: {listen: \"\xff\"}\n", 1, "", "invalid YAML" },
    { "a: 'unterminated\n", 0, "", "invalid YAML" },
    { "server: {}\n---\nstore: {}\n", 2, "", "one YAML document" },
    { "server: *nope\n", 1, "", "alias '*nope' names no anchor" },
    { "a: &a [1, *a]\n", 1, "", "refers to a node that contains it" },
};

TEST(config_structure_errors) { run_cases(structure_errors, countof(structure_errors), false); }

/* ---- validation across keys and sections ---- */

static const load_case validation_errors[] = {
    { "server:\n  listen: localhost\n", 2, "server.listen", "expected HOST:PORT, [IPV6]:PORT or :PORT" },
    { "server:\n  listen: \"host:0\"\n", 2, "server.listen", "got \"host:0\"" },
    { "server:\n  listen: \"host:70000\"\n", 2, "server.listen", "port between 1 and 65535" },
    { "server:\n  listen: \"::1:80\"\n", 2, "server.listen", "got \"::1:80\"" },
    { "store:\n  url: mysql://db\n", 2, "store.url", "expected sqlite://PATH or postgres://..., got \"mysql://db\"" },
    { "store:\n  url: sqlite://\n", 2, "store.url", "got \"sqlite://\"" },
    { "providers:\n  - { type: openai }\n", 2, "providers[0]", "missing required key 'name'" },
    { "providers:\n  - { name: o }\n", 2, "providers[0]", "missing required key 'type'" },
    { "providers:\n  - { name: \"\", type: openai }\n", 2, "providers[0].name", "must not be empty" },
    { "providers:\n  - { name: ~, type: openai }\n", 2, "providers[0].name", "a value is required" },
    { "providers:\n  - { name: a/b, type: openai }\n", 2, "providers[0].name",
      "letters, digits, '.', '_' or '-', got \"a/b\"" },
    { "providers:\n  - { name: o, type: opnai }\n", 2, "providers[0].type", "did you mean 'openai'?" },
    { "providers:\n  - { name: o, type: openai, base_url: \"ftp://x\" }\n", 2, "providers[0].base_url",
      "expected an http:// or https:// URL, got \"ftp://x\"" },
    { "providers:\n  - { name: o, type: openai, base_url: \"https://\" }\n", 2, "providers[0].base_url", "URL" },
    { "providers:\n  - { name: o, type: openai, base_url: \"http://a b\" }\n", 2, "providers[0].base_url", "URL" },
    { "providers:\n  - { name: az, type: azure }\n", 2, "providers[0]", "missing required key 'base_url'" },
    { "providers:\n  - { name: o, type: openai, mode: echo }\n", 2, "providers[0].mode",
      "'mode' only applies to providers of type simulator" },
    { "providers:\n  - { name: o, type: anthropic, canned: [a] }\n", 2, "providers[0].canned", "only applies" },
    { "providers:\n  - { name: s, type: simulator, mode: canned }\n", 2, "providers[0].mode",
      "needs a non-empty 'canned' list" },
    { "providers:\n  - { name: o, type: openai, headers: { \"bad name\": v } }\n", 2,
      "providers[0].headers.bad name", "invalid header name" },
    { "providers:\n  - { name: o, type: openai, headers: { X-A: \"a\\r\\nb\" } }\n", 2, "providers[0].headers.X-A",
      "must not contain CR, LF or NUL" },
    { "providers:\n  - { name: o, type: openai, headers: { X-A: 1, x-a: 2 } }\n", 2, "providers[0].headers.x-a",
      "duplicate header" },
    { "providers:\n  - { name: o, type: openai, headers: { X-A: ~ } }\n", 2, "providers[0].headers.X-A",
      "expected a header value" },
    { "providers:\n  - { name: o, type: openai }\n  - { name: o, type: anthropic }\n", 3, "providers[1].name",
      "duplicate provider name 'o' (first defined at line 2)" },
    { "models:\n  - { provider: sim }\n", 2, "models[0]", "missing required key 'name'" },
    { "models:\n  - { name: m }\n", 2, "models[0]", "missing required key 'provider'" },
    { "models:\n  - { name: \"a b\", provider: sim }\n", 2, "models[0].name", "without spaces" },
    { "models:\n  - { name: m, provider: nope }\n", 2, "models[0].provider", "unknown provider 'nope'" },
    { "models:\n  - { name: m, provider: smi }\n", 2, "models[0].provider", "did you mean 'sim'?" },
    { "providers:\n  - { name: o, type: openai }\nmodels:\n  - { name: m, provider: sim }\n", 4, "models[0].provider",
      "unknown provider 'sim'" },
    { "models:\n  - { name: m, provider: sim }\n  - { name: m, provider: sim }\n", 3, "models[1].name",
      "duplicate model name 'm' (first defined at line 2)" },
    { "models:\n  - { name: m, provider: sim, fallbacks: [m] }\n", 2, "models[0].fallbacks[0]",
      "cannot fall back to itself" },
    { "models:\n  - { name: m, provider: sim, fallbacks: [sim/echo, zzz] }\n", 2, "models[0].fallbacks[1]",
      "unknown model 'zzz'; expected a configured model or PROVIDER/MODEL" },
    { "models:\n  - { name: m, provider: sim, fallbacks: [nope/x] }\n", 2, "models[0].fallbacks[0]",
      "unknown provider 'nope' in 'nope/x'" },
    { "models:\n  - { name: m, provider: sim, fallbacks: [sim/] }\n", 2, "models[0].fallbacks[0]",
      "names no model after the provider" },
    { "models:\n  - { name: gpt, provider: sim }\n  - { name: m, provider: sim, fallbacks: [gtp] }\n", 3,
      "models[1].fallbacks[0]", "did you mean 'gpt'?" },
    { "deployments:\n  - { name: d }\n", 2, "deployments[0]", "missing required key 'model'" },
    { "deployments:\n  - { name: d, model: nope }\n", 2, "deployments[0].model", "unknown model 'nope'" },
    { "deployments:\n  - { name: d, model: x/y }\n", 2, "deployments[0].model", "unknown provider 'x'" },
    { "models:\n  - { name: m, provider: sim }\ndeployments:\n  - { name: m, model: sim/echo }\n", 4,
      "deployments[0].name", "already the name of a model" },
    { "deployments:\n  - { name: d, model: sim/echo }\n  - { name: d, model: sim/lorem }\n", 3,
      "deployments[1].name", "duplicate deployment name 'd'" },
};

TEST(config_validation_errors) { run_cases(validation_errors, countof(validation_errors), false); }

/* ---- warnings: the file still loads ---- */

static const load_case warnings[] = {
    { "redis: { url: \"redis://x\" }\n", 1, "redis", "section 'redis' is not supported by this version and is ignored" },
    { "limits: {}\n", 1, "limits", "section 'limits'" },
    { "store:\n  url: postgres://u@db/genaiops\n", 2, "store.url", "PostgreSQL stores are not supported" },
    { "providers:\n  - { name: s, type: simulator, base_url: \"http://x\" }\n", 2, "providers[0].base_url",
      "not used by providers of type simulator" },
};

TEST(config_warnings) { run_cases(warnings, countof(warnings), true); }

/* ---- snippets that load ---- */

static const load_case loads[] = {
    { "", 0, NULL, NULL },
    { "---\n", 0, NULL, NULL },
    { "~\n", 0, NULL, NULL },
    { "# only a comment\n", 0, NULL, NULL },
    { "server:\nstore:\nproviders:\nmodels:\ndeployments:\n", 0, NULL, NULL },
    { "server: { listen: \"[::1]:8080\" }\n", 0, NULL, NULL },
    { "server: { listen: \":9000\" }\n", 0, NULL, NULL },
    { "store: { url: \"sqlite://:memory:\" }\n", 0, NULL, NULL },
    { "x-anything: { whatever: [1, 2] }\n", 0, NULL, NULL },
    { "providers: []\nmodels:\n  - { name: m, provider: sim }\n", 0, NULL, NULL },
    { "models:\n  - { name: a, provider: sim, fallbacks: [b] }\n  - { name: b, provider: sim, fallbacks: [a] }\n", 0,
      NULL, NULL },
    { "models:\n  - { name: \"org/model\", provider: sim }\ndeployments:\n  - { name: d, model: org/model }\n", 0, NULL,
      NULL },
    { "providers:\n  - { name: s, type: simulator, mode: canned, canned: [hi] }\n", 0, NULL, NULL },
    { "server: { workers: !!str 4 }\n", 0, NULL, NULL },
};

TEST(config_loads) { run_cases(loads, countof(loads), false); }

/* ---- values of every type ---- */

TEST(config_values_server)
{
    const char *yaml = "server:\n"
                       "  listen: \"0.0.0.0:9090\"\n"
                       "  workers: 4\n"
                       "  admin_key: secret\n"
                       "  insecure: yes\n"
                       "  max_header_bytes: 32KiB\n"
                       "  max_headers: 100\n"
                       "  max_body_bytes: 64KB\n"
                       "  max_connections: 500\n"
                       "  header_timeout_ms: 5s\n"
                       "  body_timeout_ms: 250ms\n"
                       "  idle_timeout_ms: 2m\n"
                       "  shutdown_timeout_ms: 0\n"
                       "  max_stream_buffer: 2MiB\n"
                       "  log_level: DEBUG\n"
                       "  log_format: json\n"
                       "  retry: { max_retries: 0, base_ms: 1s, max_ms: 10m }\n"
                       "store:\n  url: sqlite:///var/lib/genaiops.db\n";
    config *c = NULL;
    config_diags d = { 0 };
    CHECK_INT(load(yaml, &c, &d), ERR_OK);
    CHECK_INT(d.n, 0);
    if (c) {
        CHECK_STR(c->server.listen, "0.0.0.0:9090");
        CHECK_INT(c->server.workers, 4);
        CHECK_STR(c->server.admin_key, "secret");
        CHECK(c->server.insecure);
        CHECK_INT(c->server.max_header_bytes, 32768);
        CHECK_INT(c->server.max_headers, 100);
        CHECK_INT(c->server.max_body_bytes, 64000);
        CHECK_INT(c->server.max_connections, 500);
        CHECK_INT(c->server.header_timeout_ms, 5000);
        CHECK_INT(c->server.body_timeout_ms, 250);
        CHECK_INT(c->server.idle_timeout_ms, 120000);
        CHECK_INT(c->server.shutdown_timeout_ms, 0);
        CHECK_INT(c->server.max_stream_buffer, 2 << 20);
        CHECK_STR(c->log.level, "debug");
        CHECK_STR(c->log.format, "json");
        CHECK_INT(c->retry.max_retries, 0);
        CHECK_INT(c->retry.base_ms, 1000);
        CHECK_INT(c->retry.max_ms, 600000);
        CHECK_STR(c->store_url, "sqlite:///var/lib/genaiops.db");
        CHECK_STR(c->path, "snippet");
    }
    config_free(c);
    config_diags_free(&d);
}

/* One key, one spelling, one expected number. */
typedef struct num_case {
    const char *yaml;
    long long want;
    int field; /* 0 workers, 1 max_body_bytes, 2 idle_timeout_ms, 3 insecure */
} num_case;

TEST(config_values_units)
{
    static const num_case cases[] = {
        { "server: { max_body_bytes: 1024 }", 1024, 1 },
        { "server: { max_body_bytes: 1KiB }", 1024, 1 },
        { "server: { max_body_bytes: 8MiB }", 8 << 20, 1 },
        { "server: { max_body_bytes: 1GiB }", 1 << 30, 1 },
        { "server: { max_body_bytes: 64KB }", 64000, 1 },
        { "server: { max_body_bytes: 2MB }", 2000000, 1 },
        { "server: { max_body_bytes: 1GB }", 1000000000, 1 },
        { "server: { max_body_bytes: 4096B }", 4096, 1 },
        { "server: { max_body_bytes: 16kib }", 16384, 1 },
        { "server: { idle_timeout_ms: 1500 }", 1500, 2 },
        { "server: { idle_timeout_ms: 250ms }", 250, 2 },
        { "server: { idle_timeout_ms: 5s }", 5000, 2 },
        { "server: { idle_timeout_ms: 2m }", 120000, 2 },
        { "server: { idle_timeout_ms: 1h }", 3600000, 2 },
        { "server: { workers: \"7\" }", 7, 0 },
        { "server: { workers: +3 }", 3, 0 },
        { "server: { insecure: true }", 1, 3 },
        { "server: { insecure: on }", 1, 3 },
        { "server: { insecure: YES }", 1, 3 },
        { "server: { insecure: no }", 0, 3 },
        { "server: { insecure: off }", 0, 3 },
        { "server: { insecure: False }", 0, 3 },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        config *c = NULL;
        config_diags d = { 0 };
        err_code e = load(cases[i].yaml, &c, &d);
        long long got = -1;
        if (c) {
            switch (cases[i].field) {
            case 0: got = c->server.workers; break;
            case 1: got = (long long)c->server.max_body_bytes; break;
            case 2: got = c->server.idle_timeout_ms; break;
            default: got = c->server.insecure; break;
            }
        }
        if (e != ERR_OK || got != cases[i].want) {
            test_fail(__FILE__, __LINE__, "%s: rc %s, got %lld, expected %lld", cases[i].yaml, err_name(e), got,
                      cases[i].want);
            config_diags_print(&d, "snippet", stderr);
        }
        config_free(c);
        config_diags_free(&d);
    }
}

TEST(config_values_providers)
{
    const char *yaml = "server: { retry: { max_retries: 4 } }\n"
                       "providers:\n"
                       "  - name: oa\n"
                       "    type: openai\n"
                       "  - { name: an, type: anthropic, max_retries: 1 }\n"
                       "  - { name: az, type: azure, base_url: \"https://r.openai.azure.com//\" }\n"
                       "  - name: local\n"
                       "    type: OpenAI\n"
                       "    base_url: http://127.0.0.1:11434/v1/\n"
                       "    api_key: k\n"
                       "    api_version: v9\n"
                       "    connect_timeout_ms: 2s\n"
                       "    timeout_ms: 1m\n"
                       "    headers: { X-One: \"1\", X-Two: two }\n"
                       "  - name: s\n"
                       "    type: simulator\n"
                       "    mode: canned\n"
                       "    latency_ms: 10ms\n"
                       "    ttft_ms: 20\n"
                       "    token_ms: 3\n"
                       "    max_tokens: 12\n"
                       "    error_rate: 0.25\n"
                       "    error_status: 429\n"
                       "    seed: 123456789012\n"
                       "    canned: [first, \"second one\"]\n";
    config *c = NULL;
    config_diags d = { 0 };
    CHECK_INT(load(yaml, &c, &d), ERR_OK);
    CHECK_INT(d.n, 0);
    if (!c || c->nproviders != 5) {
        test_fail(__FILE__, __LINE__, "expected 5 providers");
        config_diags_print(&d, "snippet", stderr);
        config_free(c);
        config_diags_free(&d);
        return;
    }
    const cfg_provider *p = c->providers;
    CHECK_STR(p[0].name, "oa");
    CHECK_INT(p[0].type, PROVIDER_OPENAI);
    CHECK_STR(p[0].base_url, "https://api.openai.com/v1");
    CHECK(p[0].api_key == NULL);
    CHECK(p[0].api_version == NULL);
    CHECK_INT(p[0].connect_timeout_ms, 5000);
    CHECK_INT(p[0].timeout_ms, 600000);
    CHECK_INT(p[0].max_retries, 4); /* from server.retry */
    CHECK_INT(p[0].line, 3);
    CHECK_INT(p[0].nheaders, 0);
    CHECK_STR(p[1].base_url, "https://api.anthropic.com/v1");
    CHECK_STR(p[1].api_version, "2023-06-01");
    CHECK_INT(p[1].max_retries, 1);
    CHECK_INT(p[2].type, PROVIDER_AZURE);
    CHECK_STR(p[2].base_url, "https://r.openai.azure.com");
    CHECK_STR(p[2].api_version, "2024-10-21");
    CHECK_STR(p[3].base_url, "http://127.0.0.1:11434/v1");
    CHECK_STR(p[3].api_key, "k");
    CHECK_STR(p[3].api_version, "v9");
    CHECK_INT(p[3].connect_timeout_ms, 2000);
    CHECK_INT(p[3].timeout_ms, 60000);
    CHECK_INT(p[3].nheaders, 2);
    if (p[3].nheaders == 2) {
        CHECK_STR(p[3].headers[0].name, "X-One");
        CHECK_STR(p[3].headers[0].value, "1");
        CHECK_STR(p[3].headers[1].name, "X-Two");
        CHECK_STR(p[3].headers[1].value, "two");
    }
    CHECK_INT(p[4].type, PROVIDER_SIMULATOR);
    CHECK(p[4].base_url == NULL);
    CHECK_STR(p[4].sim.default_mode, "canned");
    CHECK_INT(p[4].sim.latency_ms, 10);
    CHECK_INT(p[4].sim.ttft_ms, 20);
    CHECK_INT(p[4].sim.token_ms, 3);
    CHECK_INT(p[4].sim.max_tokens, 12);
    CHECK(p[4].sim.error_rate == 0.25);
    CHECK_INT(p[4].sim.error_status, 429);
    CHECK(p[4].sim.seed == 123456789012UL);
    CHECK_INT(p[4].sim.ncanned, 2);
    if (p[4].sim.ncanned == 2) {
        CHECK_STR(p[4].sim.canned[0], "first");
        CHECK_STR(p[4].sim.canned[1], "second one");
    }
    CHECK_STR(provider_type_name(p[4].type), "simulator");
    CHECK_STR(provider_type_name(PROVIDER_AZURE), "azure");
    CHECK_STR(provider_type_name((provider_type)42), "unknown");
    config_free(c);
    config_diags_free(&d);
}

TEST(config_values_models_and_lookups)
{
    const char *yaml = "models:\n"
                       "  - { name: fast, provider: sim, upstream_model: lorem }\n"
                       "  - name: main\n"
                       "    provider: sim\n"
                       "    fallbacks: [fast, sim/echo]\n"
                       "deployments:\n"
                       "  - { name: prod, model: main }\n"
                       "  - { name: dev, model: sim/lorem }\n";
    config *c = NULL;
    config_diags d = { 0 };
    CHECK_INT(load(yaml, &c, &d), ERR_OK);
    if (!c) {
        config_diags_print(&d, "snippet", stderr);
        config_diags_free(&d);
        return;
    }
    /* no providers in the file: the default simulator */
    CHECK_INT(c->nproviders, 1);
    CHECK_STR(c->providers[0].name, "sim");
    CHECK_INT(c->providers[0].line, 0);
    CHECK_INT(c->nmodels, 2);
    CHECK_STR(c->models[0].upstream_model, "lorem");
    CHECK(c->models[1].upstream_model == NULL);
    CHECK_INT(c->models[1].nfallbacks, 2);
    CHECK_STR(c->models[1].fallbacks[1], "sim/echo");
    CHECK_INT(c->models[1].line, 3);
    CHECK_INT(c->ndeployments, 2);
    CHECK_INT(c->deployments[1].line, 8);
    const cfg_model *m = config_find_model(c, SV("main"));
    CHECK(m && strcmp(m->provider, "sim") == 0);
    CHECK(config_find_model(c, SV("mai")) == NULL);
    const cfg_deployment *dep = config_find_deployment(c, SV("dev"));
    CHECK(dep && strcmp(dep->model, "sim/lorem") == 0);
    CHECK(config_find_deployment(c, SV("main")) == NULL);
    const cfg_provider *p = config_find_provider(c, SV("sim"));
    CHECK(p && p->type == PROVIDER_SIMULATOR);
    CHECK(config_find_provider(c, sv_make("sim/echo", 8)) == NULL);
    CHECK(config_find_provider(NULL, SV("sim")) == NULL);
    config_free(c);
    config_diags_free(&d);
}

/* ---- the embedded default ---- */

TEST(config_default_values)
{
    config *c = config_default();
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK(c->path == NULL);
    CHECK_STR(c->server.listen, "127.0.0.1:8080");
    CHECK_INT(c->server.workers, 0);
    CHECK(c->server.admin_key == NULL);
    CHECK(!c->server.insecure);
    CHECK_INT(c->server.max_header_bytes, 16 * 1024);
    CHECK_INT(c->server.max_headers, 64);
    CHECK_INT(c->server.max_body_bytes, 8 << 20);
    CHECK_INT(c->server.max_connections, 10000);
    CHECK_INT(c->server.header_timeout_ms, 10000);
    CHECK_INT(c->server.body_timeout_ms, 30000);
    CHECK_INT(c->server.idle_timeout_ms, 60000);
    CHECK_INT(c->server.shutdown_timeout_ms, 30000);
    CHECK_INT(c->server.max_stream_buffer, 1 << 20);
    CHECK_STR(c->log.level, "info");
    CHECK_STR(c->log.format, "text");
    CHECK_INT(c->retry.max_retries, 2);
    CHECK_INT(c->retry.base_ms, 200);
    CHECK_INT(c->retry.max_ms, 8000);
    CHECK_STR(c->store_url, "sqlite://./genaiops.db");
    CHECK_INT(c->nproviders, 1);
    const cfg_provider *p = &c->providers[0];
    CHECK_STR(p->name, "sim");
    CHECK_INT(p->type, PROVIDER_SIMULATOR);
    CHECK_STR(p->sim.default_mode, "echo");
    CHECK_INT(p->sim.max_tokens, 64);
    CHECK_INT(p->sim.error_status, 500);
    CHECK(p->sim.error_rate == 0);
    CHECK_INT(p->sim.ncanned, 0);
    CHECK_INT(p->max_retries, 2);
    CHECK_INT(p->connect_timeout_ms, 5000);
    CHECK_INT(p->timeout_ms, 600000);
    CHECK(p->base_url == NULL);
    CHECK_INT(c->nmodels, 0);
    CHECK_INT(c->ndeployments, 0);
    config_free(c);
    config_free(NULL);
}

/* ---- ${VAR} expansion ---- */

TEST(config_env_expansion)
{
    setenv("GX_KEY", "sk-123", 1);
    setenv("GX_EMPTY", "", 1);
    setenv("GX_PORT", "9191", 1);
    unsetenv("GX_UNSET");
    const char *yaml = "server:\n"
                       "  listen: \"${GX_HOST:-127.0.0.1}:${GX_PORT}\"\n"
                       "  admin_key: ${GX_UNSET}\n"
                       "  workers: ${GX_UNSET}\n"
                       "providers:\n"
                       "  - name: o\n"
                       "    type: openai\n"
                       "    api_key: ${GX_KEY}\n"
                       "    api_version: ${GX_EMPTY:-v1}\n"
                       "    headers:\n"
                       "      Authorization: \"Bearer ${GX_KEY}\"\n"
                       "      X-Price: \"$$5 and $HOME and a$\"\n"
                       "      X-Gone: \"${GX_UNSET}\"\n"
                       "      X-Optional: \"${GX_UNSET:-}\"\n"
                       "  - name: s\n"
                       "    type: simulator\n"
                       "    canned: [\"${GX_UNSET}\", \"hi ${GX_KEY}\", \"${GX_UNSET:-fallback}\"]\n"
                       "models:\n"
                       "  - { name: m, provider: o, fallbacks: [\"${GX_UNSET}\", s/echo] }\n";
    config *c = NULL;
    config_diags d = { 0 };
    CHECK_INT(load(yaml, &c, &d), ERR_OK);
    CHECK_INT(count_diags(&d, false), 0);
    if (!c) {
        config_diags_print(&d, "snippet", stderr);
        config_diags_free(&d);
        return;
    }
    CHECK_STR(c->server.listen, "127.0.0.1:9191");
    CHECK(c->server.admin_key == NULL);
    CHECK_INT(c->server.workers, 0);
    const config_diag *w = find_diag(&d, true, "server.admin_key", "GX_UNSET");
    CHECK(w != NULL);
    CHECK(w && strstr(w->message, "admin_key") != NULL);
    CHECK(w && w->line == 3);
    CHECK(find_diag(&d, true, "server.workers", "'GX_UNSET' is not set") != NULL);
    const cfg_provider *p = &c->providers[0];
    CHECK_STR(p->api_key, "sk-123");
    CHECK_STR(p->api_version, "v1");
    CHECK_INT(p->nheaders, 2);
    if (p->nheaders == 2) {
        CHECK_STR(p->headers[0].value, "Bearer sk-123");
        CHECK_STR(p->headers[1].value, "$5 and $HOME and a$");
    }
    CHECK(find_diag(&d, true, "providers[0].headers.X-Gone", "GX_UNSET") != NULL);
    CHECK(find_diag(&d, true, "providers[0].headers.X-Optional", NULL) == NULL);
    const cfg_provider *s = &c->providers[1];
    CHECK_INT(s->sim.ncanned, 2);
    if (s->sim.ncanned == 2) {
        CHECK_STR(s->sim.canned[0], "hi sk-123");
        CHECK_STR(s->sim.canned[1], "fallback");
    }
    CHECK(find_diag(&d, true, "providers[1].canned[0]", "GX_UNSET") != NULL);
    CHECK_INT(c->models[0].nfallbacks, 1);
    CHECK_STR(c->models[0].fallbacks[0], "s/echo");
    config_free(c);
    config_diags_free(&d);
}

static const load_case env_errors[] = {
    { "server:\n  admin_key: ${GX_UNSET:?export GX_UNSET first}\n", 2, "server.admin_key",
      "environment variable 'GX_UNSET' is required: export GX_UNSET first" },
    { "server:\n  admin_key: ${GX_EMPTY:?}\n", 2, "server.admin_key", "'GX_EMPTY' is required but not set" },
    { "server:\n  admin_key: \"${GX_KEY\"\n", 2, "server.admin_key", "unterminated '${'" },
    { "server:\n  admin_key: \"${1ABC}\"\n", 2, "server.admin_key", "invalid variable reference '${1ABC}'" },
    { "server:\n  admin_key: \"${}\"\n", 2, "server.admin_key", "invalid variable reference" },
    { "server:\n  admin_key: \"${GX_KEY:x}\"\n", 2, "server.admin_key", "expected ${NAME}, ${NAME:-default}" },
    { "server:\n  admin_key: \"${GX-KEY}\"\n", 2, "server.admin_key", "invalid variable reference" },
    { "server:\n  workers: ${GX_KEY}\n", 2, "server.workers", "got \"sk-123\"" },
    { "server:\n  ${GX_KEY}: 1\n", 2, "server.${GX_KEY}", "unknown key '${GX_KEY}'" },
    { "providers:\n  - { name: \"${GX_UNSET}\", type: openai }\n", 2, "providers[0].name", "a value is required" },
    { "providers:\n  - { name: \"${GX_EMPTY}\", type: openai }\n", 2, "providers[0].name", "must not be empty" },
};

TEST(config_env_errors)
{
    setenv("GX_KEY", "sk-123", 1);
    setenv("GX_EMPTY", "", 1);
    unsetenv("GX_UNSET");
    run_cases(env_errors, countof(env_errors), false);
}

/* ---- several problems at once, positions, limits ---- */

TEST(config_reports_every_problem_in_order)
{
    const char *yaml = "providers:\n"
                       "  - { name: o, type: openai, base_url: nope }\n"
                       "server:\n"
                       "  workers: lots\n"
                       "  bogus: 1\n";
    config *c = (config *)1;
    config_diags d = { 0 };
    CHECK_INT(load(yaml, &c, &d), ERR_CONFIG);
    CHECK(c == NULL);
    CHECK_INT(d.n, 3);
    if (d.n == 3) {
        CHECK_STR(d.items[0].path, "providers[0].base_url");
        CHECK_INT(d.items[0].line, 2);
        CHECK_INT(d.items[0].column, 40);
        CHECK_STR(d.items[1].path, "server.workers");
        CHECK_INT(d.items[1].line, 4);
        CHECK_INT(d.items[1].column, 12);
        CHECK_STR(d.items[2].path, "server.bogus");
        CHECK_INT(d.items[2].line, 5);
        CHECK_INT(d.items[2].column, 3);
    }
    config_diags_free(&d);
    CHECK(d.items == NULL && d.n == 0);
}

TEST(config_limits)
{
    /* nesting */
    char deep[512];
    size_t o = 0;
    o += (size_t)snprintf(deep, sizeof deep, "a: ");
    for (int i = 0; i < 100; i++)
        deep[o++] = '[';
    for (int i = 0; i < 100; i++)
        deep[o++] = ']';
    deep[o] = '\0';
    config *c = NULL;
    config_diags d = { 0 };
    CHECK_INT(load(deep, &c, &d), ERR_CONFIG);
    CHECK(find_diag(&d, false, "", "nested deeper than 64 levels") != NULL);
    config_diags_free(&d);

    /* billion laughs */
    size_t len = 0;
    char *laughs = test_read_data("config/laughs.yaml", &len);
    if (laughs) {
        CHECK_INT(config_load_string("laughs.yaml", laughs, len, &c, &d), ERR_CONFIG);
        CHECK(find_diag(&d, false, "", "expands to more than 100000 nodes") != NULL);
        config_diags_free(&d);
        free(laughs);
    }

    /* too many problems: stored up to a cap, the rest counted */
    char *many = malloc(64 * 300 + 16);
    o = (size_t)snprintf(many, 16, "server:\n");
    for (int i = 0; i < 300; i++)
        o += (size_t)snprintf(many + o, 64, "  unknown_%d: 1\n", i);
    CHECK_INT(config_load_string("many", many, o, &c, &d), ERR_CONFIG);
    CHECK_INT(d.n, 101);
    CHECK(find_diag(&d, false, "", "200 more problems not shown") != NULL);
    config_diags_free(&d);
    free(many);

    /* too many headers */
    char hdrs[4096];
    o = (size_t)snprintf(hdrs, sizeof hdrs, "providers:\n  - name: o\n    type: openai\n    headers:\n");
    for (int i = 0; i < 65; i++)
        o += (size_t)snprintf(hdrs + o, sizeof hdrs - o, "      X-H%d: v\n", i);
    CHECK_INT(config_load_string("hdrs", hdrs, o, &c, &d), ERR_CONFIG);
    CHECK(find_diag(&d, false, "providers[0].headers", "at most 64 headers, got 65") != NULL);
    config_diags_free(&d);
}

/* Loading with diags == NULL still refuses bad files (problems are logged). */
TEST(config_without_diags)
{
    log_level saved = log_threshold;
    log_set_level(L_OFF);
    config *c = NULL;
    CHECK_INT(load("server: { workers: lots }\n", &c, NULL), ERR_CONFIG);
    CHECK(c == NULL);
    CHECK_INT(load("server: { workers: 3 }\n", &c, NULL), ERR_OK);
    CHECK(c && c->server.workers == 3);
    config_free(c);
    /* validation only */
    CHECK_INT(config_load_string("x", "server: {}", 10, NULL, NULL), ERR_OK);
    CHECK_INT(config_load_string(NULL, NULL, 0, &c, NULL), ERR_OK);
    CHECK(c && c->nproviders == 1);
    config_free(c);
    log_set_level(saved);
}

/* ---- files ---- */

TEST(config_file_errors)
{
    config *c = NULL;
    config_diags d = { 0 };
    CHECK_INT(config_load_file("/nonexistent/genaiops.yaml", &c, &d), ERR_IO);
    CHECK(c == NULL);
    CHECK_INT(d.n, 1);
    if (d.n == 1) {
        CHECK(strstr(d.items[0].message, "/nonexistent/genaiops.yaml") != NULL);
        CHECK(strstr(d.items[0].message, "No such file or directory") != NULL);
        CHECK(!d.items[0].warning);
    }
    config_diags_free(&d);
    CHECK_INT(config_load_file(test_data_dir(), &c, &d), ERR_IO);
    CHECK(d.n == 1 && strstr(d.items[0].message, "Is a directory") != NULL);
    config_diags_free(&d);
    CHECK_INT(config_load_file(NULL, &c, &d), ERR_INVAL);
}

static char *read_path(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *p = malloc(1 << 20);
    *len = fread(p, 1, (1 << 20) - 1, f);
    p[*len] = '\0';
    fclose(f);
    return p;
}

/* errors.yaml holds many problems; their printed form is errors.txt. */
TEST(config_golden_errors)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/config/errors.yaml", test_data_dir());
    config *c = NULL;
    config_diags d = { 0 };
    CHECK_INT(config_load_file(path, &c, &d), ERR_CONFIG);
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    config_diags_print(&d, "errors.yaml", f);
    fclose(f);
    char *want = test_read_data("config/errors.txt", NULL);
    if (want && strcmp(out, want) != 0) {
        test_fail(__FILE__, __LINE__, "errors.yaml diagnostics differ from errors.txt; got:\n%s", out);
    }
    free(want);
    free(out);
    config_diags_free(&d);
}

TEST(config_golden_files_load)
{
    static const char *const files[] = { "config/minimal.yaml", "config/anchors.yaml" };
    for (size_t i = 0; i < countof(files); i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", test_data_dir(), files[i]);
        config *c = NULL;
        config_diags d = { 0 };
        if (config_load_file(path, &c, &d) != ERR_OK || d.n != 0) {
            test_fail(__FILE__, __LINE__, "%s does not load cleanly", files[i]);
            config_diags_print(&d, files[i], stderr);
        }
        if (c && i == 0) {
            CHECK_STR(c->path, path);
            CHECK_INT(c->nproviders, 1);
            CHECK_STR(c->providers[0].base_url, "http://127.0.0.1:11434/v1");
            CHECK_STR(c->models[0].upstream_model, "llama3.1:8b");
        }
        if (c && i == 1) {
            CHECK_INT(c->nproviders, 2);
            CHECK_INT(c->providers[1].nheaders, 2);
            CHECK_STR(c->providers[1].headers[1].value, "test");
        }
        config_free(c);
        config_diags_free(&d);
    }
}

/* The shipped example loads without errors (warnings only for API keys that
 * are not exported). */
TEST(config_example_loads)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/../../examples/genaiops.yaml", test_data_dir());
    unsetenv("AZURE_OPENAI_RESOURCE");
    config *c = NULL;
    config_diags d = { 0 };
    err_code e = config_load_file(path, &c, &d);
    CHECK_INT(e, ERR_OK);
    CHECK_INT(count_diags(&d, false), 0);
    for (size_t i = 0; i < d.n; i++)
        CHECK(strstr(d.items[i].message, "_API_KEY' is not set") != NULL);
    if (c) {
        CHECK(c->nproviders >= 5);
        CHECK(config_find_provider(c, SV("sim")) != NULL);
        const cfg_provider *az = config_find_provider(c, SV("azure"));
        CHECK(az && strcmp(az->base_url, "https://my-resource.openai.azure.com") == 0);
        CHECK(config_find_model(c, SV("gpt-4o-mini")) != NULL);
        CHECK(config_find_deployment(c, SV("chat-prod")) != NULL);
        CHECK_INT(c->server.header_timeout_ms, 10000);
    }
    config_free(c);
    config_diags_free(&d);
    size_t len = 0;
    char *text = read_path(path, &len);
    CHECK(text != NULL);
    free(text);
}

/* ---- diagnostics output ---- */

TEST(config_diags_print_format)
{
    config_diags d = { 0 };
    config *c = NULL;
    CHECK_INT(load("server:\n  workers: lots\nredis: {}\n", &c, &d), ERR_CONFIG);
    config_diags_free(&d);
    CHECK_INT(config_load_file("/nonexistent.yaml", &c, &d), ERR_IO);
    CHECK_INT(load("server:\n  workers: lots\nredis: {}\n", &c, &d), ERR_CONFIG);
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    config_diags_print(&d, "app.yaml", f);
    config_diags_print(NULL, "app.yaml", f);
    fclose(f);
    CHECK_STR(out, "app.yaml: error: cannot read '/nonexistent.yaml': No such file or directory\n"
                   "app.yaml:2:12: error: server.workers: expected an integer between 0 and 256, got \"lots\"\n"
                   "app.yaml:3:8: warning: redis: section 'redis' is not supported by this version and is ignored\n");
    free(out);
    config_diags_free(&d);
}

/* ---- config_parse_listen ---- */

typedef struct listen_case {
    const char *in;
    err_code rc;
    const char *host;
    int port;
} listen_case;

TEST(config_parse_listen_table)
{
    static const listen_case cases[] = {
        { "127.0.0.1:8080", ERR_OK, "127.0.0.1", 8080 },
        { "0.0.0.0:1", ERR_OK, "0.0.0.0", 1 },
        { "localhost:65535", ERR_OK, "localhost", 65535 },
        { "gateway.internal:443", ERR_OK, "gateway.internal", 443 },
        { "[::1]:9000", ERR_OK, "::1", 9000 },
        { "[::]:80", ERR_OK, "::", 80 },
        { "[fe80::1%eth0]:80", ERR_OK, "fe80::1%eth0", 80 },
        { ":8080", ERR_OK, "", 8080 },
        { "8080", ERR_INVAL, NULL, 0 },
        { "host:0", ERR_INVAL, NULL, 0 },
        { "host:65536", ERR_INVAL, NULL, 0 },
        { "host:123456", ERR_INVAL, NULL, 0 },
        { "host:", ERR_INVAL, NULL, 0 },
        { "host:80x", ERR_INVAL, NULL, 0 },
        { "host:-1", ERR_INVAL, NULL, 0 },
        { "::1:80", ERR_INVAL, NULL, 0 },
        { "[::1]80", ERR_INVAL, NULL, 0 },
        { "[::1]:", ERR_INVAL, NULL, 0 },
        { "[]:80", ERR_INVAL, NULL, 0 },
        { "[abc]:80", ERR_INVAL, NULL, 0 },
        { "[::1:80", ERR_INVAL, NULL, 0 },
        { "ho st:80", ERR_INVAL, NULL, 0 },
        { "host/x:80", ERR_INVAL, NULL, 0 },
        { "", ERR_INVAL, NULL, 0 },
        { ":", ERR_INVAL, NULL, 0 },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        char host[64] = "unchanged";
        int port = -1;
        err_code e = config_parse_listen(cases[i].in, host, sizeof host, &port);
        if (e != cases[i].rc)
            test_fail(__FILE__, __LINE__, "'%s': %s, expected %s", cases[i].in, err_name(e), err_name(cases[i].rc));
        if (e == ERR_OK && (strcmp(host, cases[i].host) != 0 || port != cases[i].port))
            test_fail(__FILE__, __LINE__, "'%s': host '%s' port %d", cases[i].in, host, port);
    }
    char tiny[4];
    CHECK_INT(config_parse_listen("localhost:80", tiny, sizeof tiny, NULL), ERR_TOOBIG);
    CHECK_INT(config_parse_listen("abc:80", tiny, sizeof tiny, NULL), ERR_OK);
    CHECK_STR(tiny, "abc");
    CHECK_INT(config_parse_listen(NULL, NULL, 0, NULL), ERR_INVAL);
    CHECK_INT(config_parse_listen("1.2.3.4:5", NULL, 0, NULL), ERR_OK);
}

/* prompts: protected_labels defaults to [production], [] protects none;
 * a deployment may bind a prompt reference. */
TEST(config_prompts_section)
{
    config *c = NULL;
    config_diags d = { 0 };
    CHECK_INT(load("deployments: [{ name: support, model: sim/echo, prompt: \"support/answer@production\" }]\n", &c, &d),
              ERR_OK);
    if (c) {
        CHECK_INT((int)c->prompts.nprotected, 1);
        CHECK_STR(c->prompts.protected_labels[0], "production");
        CHECK_INT((int)c->prompts.poll_ms, 250);
        CHECK_STR(c->deployments[0].prompt, "support/answer@production");
    }
    config_free(c);
    config_diags_free(&d);
    c = NULL;
    memset(&d, 0, sizeof d);
    CHECK_INT(load("prompts: { protected_labels: [], poll_ms: 1s }\n", &c, &d), ERR_OK);
    if (c) {
        CHECK_INT((int)c->prompts.nprotected, 0);
        CHECK_INT((int)c->prompts.poll_ms, 1000);
    }
    config_free(c);
    config_diags_free(&d);
    c = NULL;
    memset(&d, 0, sizeof d);
    CHECK_INT(load("prompts: { protected_labels: [production, stable] }\n", &c, &d), ERR_OK);
    if (c) {
        CHECK_INT((int)c->prompts.nprotected, 2);
        CHECK_STR(c->prompts.protected_labels[1], "stable");
    }
    config_free(c);
    config_diags_free(&d);
    c = NULL;
    memset(&d, 0, sizeof d);
    CHECK(load("prompts: { poll_ms: 1ms }\n", &c, &d) != ERR_OK);
    config_free(c);
    config_diags_free(&d);
}
