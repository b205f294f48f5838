/*
 * test_suite.c - promptfoo-format suites (eval/suite.h): loading prompts,
 * providers, defaultTest and the other keys; streaming tests from inline
 * lists, CSV (each __expected prefix, against a golden file), JSONL, JSON
 * and YAML files; promptfoo's cartesian expansion of list vars; file://
 * vars; anchors; the counts made at load; bad suites with the exact
 * message (file:line:col: path: what); CSV reading corners; a large suite
 * streamed in flat memory.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "eval/suite.h"
#include "test.h"

static void data_path(char *out, size_t cap, const char *rel)
{
    snprintf(out, cap, "%s/suite/%s", test_data_dir(), rel);
}

/* The formatted diag with the data folder stripped from the file name. */
static const char *rel_diag(const ev_diag *d, char *out, size_t cap)
{
    char full[2048];
    ev_diag_format(d, full, sizeof full);
    char prefix[1024];
    data_path(prefix, sizeof prefix, "");
    size_t n = strlen(prefix);
    snprintf(out, cap, "%s", strncmp(full, prefix, n) == 0 ? full + n : full);
    return out;
}

static ev_suite *load(const char *rel)
{
    char path[1024], m[1024];
    data_path(path, sizeof path, rel);
    ev_suite *s = NULL;
    ev_diag d;
    if (ev_suite_load(path, &s, &d) != ERR_OK) {
        test_fail(__FILE__, __LINE__, "%s: %s", rel, rel_diag(&d, m, sizeof m));
        return NULL;
    }
    return s;
}

static char *dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(10) | JSON_ENCODE_ANY);
}

/* All tests of s, one compact JSON line each (malloc'd), and their count. */
static char *all_tests(const ev_suite *s, size_t *n, char *err, size_t cap)
{
    ev_diag d;
    ev_tests *it = ev_tests_open(s, &d);
    *n = 0;
    err[0] = '\0';
    if (!it) {
        rel_diag(&d, err, cap);
        return NULL;
    }
    size_t len = 0;
    char *out = calloc(1, 1);
    json_t *t;
    int r;
    while (out && (r = ev_tests_next(it, &t, NULL, &d)) == 1) {
        char *j = dump(t);
        size_t jl = strlen(j);
        char *grown = realloc(out, len + jl + 2);
        if (grown) {
            out = grown;
            memcpy(out + len, j, jl);
            out[len + jl] = '\n';
            out[len + jl + 1] = '\0';
            len += jl + 1;
        }
        free(j);
        json_decref(t);
        (*n)++;
    }
    if (r < 0)
        rel_diag(&d, err, cap);
    ev_tests_close(it);
    return out;
}

TEST(suite_basic)
{
    ev_suite *s = load("basic.yaml");
    if (!s)
        return;
    CHECK_STR(s->description, "Translation checks");
    CHECK_INT(s->nprompts, 3);
    CHECK_STR(s->prompts[0].raw, "Translate to {{language}}: {{input}}");
    CHECK_STR(s->prompts[0].label, "Translate to {{language}}: {{input}}");
    CHECK(s->prompts[0].id == NULL && !s->prompts[0].chat && s->prompts[0].ref == NULL);
    /* a text file holds two prompts separated by --- */
    CHECK_STR(s->prompts[1].raw, "You are a translator.\nTranslate {{input}} to {{language}}.");
    CHECK_STR(s->prompts[1].id, "prompts/two.txt");
    CHECK_STR(s->prompts[1].label, "prompts/two.txt: You are a translator.\nTranslate {{input}} to {{language}}.");
    CHECK_STR(s->prompts[2].raw, "Translate, briefly: {{input}} -> {{language}}");
    CHECK_INT(s->nproviders, 2);
    CHECK_STR(s->providers[0].id, "openai:chat:gpt-4o-mini");
    CHECK(s->providers[0].label == NULL && s->providers[0].config == NULL);
    CHECK_STR(s->providers[1].id, "anthropic:messages:claude-3-5-haiku-latest");
    CHECK_STR(s->providers[1].label, "haiku");
    CHECK_INT(json_integer_value(json_object_get(s->providers[1].config, "max_tokens")), 200);
    CHECK_STR(json_string_value(json_object_get(json_object_get(s->default_test, "options"), "provider")),
              "openai:chat:gpt-4o");
    CHECK_INT(json_array_size(json_object_get(s->default_test, "assert")), 1);
    CHECK_INT(json_integer_value(json_object_get(s->options, "repeat")), 2);
    CHECK(json_real_value(json_object_get(json_object_get(s->genaiops, "gate"), "tolerance")) == 0.05);
    CHECK_STR(json_string_value(json_object_get(s->extra, "outputPath")), "out.json");
    CHECK(json_is_false(json_object_get(s->extra, "sharing")));
    CHECK(json_object_get(s->extra, "tests") == NULL && json_object_get(s->extra, "prompts") == NULL);
    /* 1 + 2x2 + 1: the lists of text expand, the list of numbers does not */
    CHECK_INT(s->ntests, 6);

    ev_diag d, w;
    ev_tests *it = ev_tests_open(s, &d);
    CHECK(it != NULL);
    static const char *const want[] = {
        "{\"assert\":[{\"type\":\"contains\",\"value\":\"Bonjour\"}],\"description\":\"French\","
        "\"vars\":{\"input\":\"Hello\",\"language\":\"French\",\"tone\":\"formal\"}}",
        "{\"assert\":[{\"type\":\"icontains\",\"value\":\"{{input}}\"}],\"vars\":{\"input\":\"Hi\",\"language\":"
        "\"German\",\"tone\":\"formal\"}}",
        "{\"assert\":[{\"type\":\"icontains\",\"value\":\"{{input}}\"}],\"vars\":{\"input\":\"Bye\",\"language\":"
        "\"German\",\"tone\":\"formal\"}}",
        "{\"assert\":[{\"type\":\"icontains\",\"value\":\"{{input}}\"}],\"vars\":{\"input\":\"Hi\",\"language\":"
        "\"Spanish\",\"tone\":\"formal\"}}",
        "{\"assert\":[{\"type\":\"icontains\",\"value\":\"{{input}}\"}],\"vars\":{\"input\":\"Bye\",\"language\":"
        "\"Spanish\",\"tone\":\"formal\"}}",
        "{\"threshold\":0.5,\"vars\":{\"input\":\"ciao\",\"language\":\"Italian\",\"tags\":[1,2],\"tone\":"
        "\"formal\"}}",
    };
    static const int lines[] = { 27, 34, 34, 34, 34, 40 };
    json_t *t = NULL;
    for (size_t i = 0; it && i < countof(want); i++) {
        if (ev_tests_next(it, &t, &w, &d) != 1) {
            test_fail(__FILE__, __LINE__, "test %zu missing", i);
            break;
        }
        char *j = dump(t);
        if (strcmp(j, want[i]) != 0)
            test_fail(__FILE__, __LINE__, "test %zu: %s\n      expected %s", i, j, want[i]);
        free(j);
        CHECK_INT(w.line, lines[i]);
        CHECK(strstr(w.file, "basic.yaml") != NULL);
        char p[32];
        snprintf(p, sizeof p, "tests[%d]", i == 0 ? 0 : i < 5 ? 1 : 2);
        CHECK_STR(w.path, p);
        int line = 0, col = 0;
        const json_t *a0 = json_array_get(json_object_get(t, "assert"), 0);
        if (i == 0)
            CHECK(ev_tests_pos(it, a0, &line, &col) && line == 32 && col == 9);
        if (i == 1)
            CHECK(ev_tests_pos(it, a0, &line, &col) && line == 38 && col == 9);
        CHECK(ev_tests_pos(it, t, &line, &col) && line == lines[i]);
        /* each test has its own vars: changing them does not show in the next */
        json_object_set_new(json_object_get(t, "vars"), "input", json_string("changed"));
        json_decref(t);
    }
    CHECK_INT(ev_tests_next(it, &t, &w, &d), 0);
    CHECK_INT(ev_tests_next(it, &t, &w, &d), 0);
    ev_tests_close(it);
    ev_suite_free(s);
}

TEST(suite_prompts)
{
    ev_suite *s = load("prompts.yaml");
    if (!s)
        return;
    CHECK_INT(s->nprompts, 9);
    if (s->nprompts != 9) {
        ev_suite_free(s);
        return;
    }
    /* a .json file of messages is a chat prompt, its text as written */
    CHECK(s->prompts[0].chat);
    CHECK(strstr(s->prompts[0].raw, "\"You answer in {{language}}.\"") != NULL);
    CHECK_STR(s->prompts[0].id, "prompts/chat.json");
    /* a .yaml list of messages becomes compact JSON */
    CHECK(s->prompts[1].chat);
    CHECK_STR(s->prompts[1].raw, "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":"
                                 "\"{{question}}\"}]");
    /* Markdown: the whole file, labelled by its first 50 characters */
    CHECK(!s->prompts[2].chat && strncmp(s->prompts[2].raw, "# Support answer\n", 17) == 0);
    CHECK_STR(s->prompts[2].label, "prompts/long.md: # Support answer\n\nYou answer customer questions fo...");
    /* a label given to a file of two prompts labels each with its text */
    CHECK_STR(s->prompts[3].label, "translator: You are a translator.\nTranslate {{input}} to {{language}}.");
    CHECK_STR(s->prompts[4].raw, "Translate, briefly: {{input}} -> {{language}}");
    /* a registry reference: no text, the runner resolves it */
    CHECK(s->prompts[5].raw == NULL);
    CHECK_STR(s->prompts[5].ref, "support/answer@production");
    /* inline JSON messages and a YAML list of messages */
    CHECK(s->prompts[6].chat);
    CHECK(s->prompts[7].chat);
    CHECK_STR(s->prompts[7].raw, "[{\"role\":\"system\",\"content\":\"inline chat\"},{\"role\":\"user\",\"content\":"
                                 "\"{{q}}\"}]");
    CHECK_STR(s->prompts[8].raw, "Raw text {{q}}");
    CHECK_STR(s->prompts[8].label, "raw one");
    CHECK_INT(s->nproviders, 1);
    CHECK_STR(s->providers[0].id, "openai:chat:gpt-4o-mini");
    ev_suite_free(s);

    /* no prompts: promptfoo's pass-through {{prompt}}; no tests: one test */
    s = load("empty_tests.yaml");
    if (!s)
        return;
    CHECK_INT(s->ntests, 1);
    size_t n;
    char err[512];
    char *all = all_tests(s, &n, err, sizeof err);
    CHECK_STR(all, "{\"vars\":{\"prompt\":\"hello\"}}\n");
    free(all);
    ev_suite_free(s);
}

/* Each __expected prefix against the golden tests/data/suite/csv_*expected.jsonl. */
TEST(suite_csv_golden)
{
    static const char *const pairs[][2] = {
        { "csv_suite.yaml", "suite/csv_expected.jsonl" },
        { "csv_config_suite.yaml", "suite/csv_config_expected.jsonl" },
    };
    for (size_t i = 0; i < countof(pairs); i++) {
        ev_suite *s = load(pairs[i][0]);
        if (!s)
            continue;
        size_t n, glen;
        char err[512];
        char *got = all_tests(s, &n, err, sizeof err);
        char *want = test_read_data(pairs[i][1], &glen);
        CHECK_STR(err, "");
        if (got && want && strcmp(got, want) != 0)
            test_fail(__FILE__, __LINE__, "%s:\n%s\nexpected:\n%s", pairs[i][0], got, want);
        CHECK_INT(n, s->ntests);
        free(got);
        free(want);
        ev_suite_free(s);
    }
    /* positions of CSV tests: the row's line (a quoted cell may span lines) */
    ev_suite *s = load("csv_suite.yaml");
    if (!s)
        return;
    ev_diag d, w;
    ev_tests *it = ev_tests_open(s, &d);
    json_t *t;
    int lastline = 0;
    while (ev_tests_next(it, &t, &w, &d) == 1) {
        lastline = w.line;
        json_decref(t);
    }
    CHECK_INT(lastline, 16);
    CHECK_STR(w.path, "tests.csv row 14");
    ev_tests_close(it);
    ev_suite_free(s);
}

TEST(suite_files_of_tests)
{
    ev_suite *s = load("jsonl_suite.yaml");
    if (s) {
        size_t n;
        char err[512];
        char *all = all_tests(s, &n, err, sizeof err);
        /* a single .jsonl tests file: "Row #N" descriptions; blank lines skipped; list vars expand */
        CHECK_STR(all, "{\"assert\":[{\"type\":\"equals\",\"value\":\"8\"}],\"description\":\"Row #1\",\"vars\":{\"x\":5,"
                       "\"y\":3}}\n"
                       "{\"assert\":[{\"type\":\"equals\",\"value\":\"17\"}],\"description\":\"second\",\"vars\":{\"x\":10,"
                       "\"y\":[7,8]}}\n"
                       "{\"description\":\"Row #3\",\"vars\":{\"x\":\"a\"}}\n"
                       "{\"description\":\"Row #3\",\"vars\":{\"x\":\"b\"}}\n");
        CHECK_INT(s->ntests, 4);
        free(all);
        /* positions in a JSONL file are the file's lines */
        ev_diag d, w;
        ev_tests *it = ev_tests_open(s, &d);
        json_t *t;
        CHECK_INT(ev_tests_next(it, &t, &w, &d), 1);
        json_decref(t);
        CHECK_INT(ev_tests_next(it, &t, &w, &d), 1);
        int line = 0, col = 0;
        CHECK(ev_tests_pos(it, json_array_get(json_object_get(t, "assert"), 0), &line, &col));
        CHECK_INT(line, 3);
        CHECK_INT(col, 70);
        CHECK_STR(w.path, "tests.jsonl line 3");
        json_decref(t);
        ev_tests_close(it);
        ev_suite_free(s);
    }
    /* a list mixing files and inline tests, in order */
    s = load("mixed.yaml");
    if (s) {
        CHECK_INT(s->ntests, 23);
        ev_diag d, w;
        ev_tests *it = ev_tests_open(s, &d);
        json_t *t;
        size_t n = 0;
        const char *paths[23];
        char seen[23][160];
        while (n < 23 && ev_tests_next(it, &t, &w, &d) == 1) {
            snprintf(seen[n], sizeof seen[n], "%s", w.path);
            paths[n] = seen[n];
            if (n == 4)
                CHECK_STR(json_string_value(json_object_get(json_object_get(t, "vars"), "topic")), "inline");
            if (n == 0) /* from a list, JSONL tests keep their own descriptions */
                CHECK(json_object_get(t, "description") == NULL);
            json_decref(t);
            n++;
        }
        CHECK_INT(n, 23);
        if (n == 23) {
            CHECK_STR(paths[0], "tests.jsonl line 1");
            CHECK_STR(paths[4], "tests[1]");
            CHECK_STR(paths[5], "tests_list.json[0]");
            CHECK_STR(paths[8], "tests_more.yaml[1]");
            CHECK_STR(paths[22], "tests.csv row 14");
        }
        ev_tests_close(it);
        ev_suite_free(s);
    }
    /* a JSON suite (read by the JSON tokenizer) */
    s = load("json_suite.json");
    if (s) {
        CHECK_STR(s->description, "JSON suite");
        CHECK_INT(s->ntests, 3);
        CHECK_STR(s->providers[0].id, "sim/echo");
        ev_suite_free(s);
    }
}

TEST(suite_cartesian_and_files)
{
    ev_suite *s = load("cartesian.yaml");
    if (s) {
        size_t n;
        char err[512];
        char *all = all_tests(s, &n, err, sizeof err);
        /* defaultTest's list expands too; its keys come first; the first key turns slowest */
        CHECK_STR(all, "{\"vars\":{\"a\":[1,2],\"b\":\"p\",\"c\":\"x\",\"d\":\"fixed\"}}\n"
                       "{\"vars\":{\"a\":[1,2],\"b\":\"q\",\"c\":\"x\",\"d\":\"fixed\"}}\n"
                       "{\"vars\":{\"a\":[1,2],\"b\":\"r\",\"c\":\"x\",\"d\":\"fixed\"}}\n"
                       "{\"vars\":{\"a\":[1,2],\"b\":\"p\",\"c\":\"y\",\"d\":\"fixed\"}}\n"
                       "{\"vars\":{\"a\":[1,2],\"b\":\"q\",\"c\":\"y\",\"d\":\"fixed\"}}\n"
                       "{\"vars\":{\"a\":[1,2],\"b\":\"r\",\"c\":\"y\",\"d\":\"fixed\"}}\n"
                       "{\"vars\":{\"a\":\"only\",\"c\":\"z\",\"d\":\"fixed\"}}\n"
                       "{\"vars\":{\"a\":[],\"b\":[[\"nested\",\"list\"]],\"c\":\"x\",\"d\":\"fixed\"}}\n"
                       "{\"vars\":{\"a\":[],\"b\":[[\"nested\",\"list\"]],\"c\":\"y\",\"d\":\"fixed\"}}\n");
        CHECK_INT(s->ntests, 9);
        CHECK_INT(n, 9);
        free(all);
        ev_suite_free(s);
    }
    s = load("files_vars.yaml");
    if (s) {
        size_t n;
        char err[512];
        char *all = all_tests(s, &n, err, sizeof err);
        CHECK_STR(all, "{\"vars\":{\"data\":\"{\\\"name\\\":\\\"Ada\\\",\\\"langs\\\":[\\\"C\\\",\\\"Lisp\\\"]}\","
                       "\"doc\":\"The quick brown fox.\\n\"}}\n"
                       "{\"vars\":{\"doc\":\"The quick brown fox.\\n\"}}\n"
                       "{\"vars\":{\"doc\":\"Another document.\\n\"}}\n"
                       "{\"vars\":{\"doc\":\"from a vars file\",\"extra\":1}}\n");
        CHECK_INT(s->ntests, 4);
        CHECK(json_real_value(json_object_get(s->default_test, "threshold")) == 0.75);
        free(all);
        ev_suite_free(s);
    }
    s = load("anchors.yaml");
    if (s) {
        size_t n;
        char err[512];
        char *all = all_tests(s, &n, err, sizeof err);
        CHECK_STR(all, "{\"assert\":[{\"type\":\"not-contains\",\"value\":\"sorry\"}],\"vars\":{\"lang\":\"en\"}}\n"
                       "{\"vars\":{\"lang\":\"fr\",\"q\":\"bonjour\"}}\n"
                       "{\"assert\":[{\"type\":\"not-contains\",\"value\":\"sorry\"}],\"vars\":{\"lang\":\"de\","
                       "\"q\":\"bonjour\"}}\n");
        CHECK_INT(s->ntests, 3);
        /* top-level keys of its own are kept for the runner */
        CHECK(json_object_get(s->extra, "common") != NULL);
        free(all);
        ev_suite_free(s);
    }
}

/* Bad suites: the error code and the exact message. at_load: the error is
 * found by ev_suite_load (else by ev_tests_next). */
TEST(suite_bad)
{
    static const struct {
        const char *file;
        err_code code;
        bool at_load;
        const char *msg;
    } cases[] = {
        { "bad/prompts_type.yaml", ERR_PARSE, true,
          "bad/prompts_type.yaml:1:10: prompts: must be text, a list of prompts or a mapping, not a number" },
        { "bad/prompts_empty.yaml", ERR_PARSE, true,
          "bad/prompts_empty.yaml:1:10: prompts: there are no prompts: give at least one (or leave `prompts` out to use "
          "each test's `prompt` variable)" },
        { "bad/provider_config.yaml", ERR_PARSE, true,
          "bad/provider_config.yaml:4:13: providers[0].config: must be a mapping, not a list" },
        { "bad/provider_noid.yaml", ERR_PARSE, true, "bad/provider_noid.yaml:2:13: providers[0]: a provider needs an id" },
        { "bad/assert_not_list.yaml", ERR_PARSE, false,
          "bad/assert_not_list.yaml:5:7: tests[0].assert: must be a list, not a mapping" },
        { "bad/assert_item.yaml", ERR_PARSE, false,
          "bad/assert_item.yaml:8:9: tests[1].assert[1]: an assertion is a mapping with a type, not text" },
        { "bad/test_empty.yaml", ERR_PARSE, false,
          "bad/test_empty.yaml:3:5: tests[0]: a test needs one of assert, vars, options, metadata, provider, "
          "providerOutput, threshold" },
        { "bad/yaml_syntax.yaml", ERR_PARSE, true,
          "bad/yaml_syntax.yaml:4:1: bad YAML: did not find expected ',' or '}' while parsing a flow mapping" },
        { "bad/dup_key.yaml", ERR_PARSE, true, "bad/dup_key.yaml:3:1: the key 'prompts' appears twice" },
        { "bad/csv_columns.yaml", ERR_PARSE, true,
          "bad/columns.csv:3: columns.csv row 2: the row has 3 columns, the header 2" },
        { "bad/csv_in_list.yaml", ERR_PARSE, true,
          "bad/columns.csv:3: columns.csv row 2: the row has 3 columns, the header 2" },
        { "bad/csv_quote.yaml", ERR_PARSE, true,
          "bad/quote.csv:2: quote.csv row 1: a quoted field that starts on line 2 is not closed" },
        { "bad/jsonl_bad.yaml", ERR_PARSE, true,
          "bad/bad.jsonl:2:19: bad.jsonl line 2: bad JSON: expected a key in double quotes" },
        { "bad/scenarios.yaml", ERR_UNSUPPORTED, true, "bad/scenarios.yaml:3:3: scenarios: scenarios are not "
                                                        "supported yet" },
        { "bad/generator.yaml", ERR_UNSUPPORTED, true,
          "bad/generator.yaml:2:8: tests: generate_tests.py: test generators (JavaScript, Python) are not supported" },
        { "bad/generator_object.yaml", ERR_UNSUPPORTED, true,
          "bad/generator_object.yaml:2:8: tests: test generators ({path, config}) are not supported: list the "
          "tests, or give a file:// path of a CSV, JSONL, JSON or YAML file" },
        { "bad/excel.yaml", ERR_UNSUPPORTED, true,
          "bad/excel.yaml:2:8: tests: tests.xlsx: Excel files are not supported (save the sheet as CSV)" },
        { "bad/missing_tests.yaml", ERR_IO, true, NULL },
        { "bad/missing_prompt.yaml", ERR_IO, true, NULL },
        { "bad/root_list.yaml", ERR_PARSE, true,
          "bad/root_list.yaml:1:1: a suite is a mapping of keys (prompts, providers, tests...), not a list" },
        { "bad/empty.yaml", ERR_PARSE, true, "bad/empty.yaml: the suite is empty" },
        { "bad/vars_type.yaml", ERR_PARSE, false,
          "bad/vars_type.yaml:3:11: tests[0].vars: must be a mapping (or file:// paths of vars files), not a number" },
        { "bad/default_type.yaml", ERR_PARSE, true,
          "bad/default_type.yaml:2:14: defaultTest: must be a mapping or a file:// path, not a number" },
        { "bad/description_type.yaml", ERR_PARSE, true,
          "bad/description_type.yaml:1:14: description: must be text, not a list" },
        { "bad/options_type.yaml", ERR_PARSE, true,
          "bad/options_type.yaml:2:18: evaluateOptions: must be a mapping, not a list" },
        { "bad/test_scalar.yaml", ERR_PARSE, true,
          "bad/test_scalar.yaml:3:5: tests[0]: a test is a mapping (vars, assert...) or a file:// path, not a number" },
        { "bad/vars_glob.yaml", ERR_NOTFOUND, true,
          "bad/vars_glob.yaml:3:5: tests[0].vars.doc: no files found for variable doc at path none/*.txt" },
        { "bad/number_range.yaml", ERR_PARSE, false,
          "bad/number_range.yaml:3:16: tests[0]: the number 99999999999999999999 is out of range (quote it to keep "
          "it as text)" },
        { "bad/threshold_type.yaml", ERR_PARSE, false,
          "bad/threshold_type.yaml:4:16: tests[0].threshold: must be a number, not text" },
        { "bad/alias_unknown.yaml", ERR_PARSE, true,
          "bad/alias_unknown.yaml:4:13: tests[0]: the alias *nowhere has no anchor before it" },
        { "bad/prompt_object.yaml", ERR_PARSE, true, "bad/prompt_object.yaml:1:11: prompts[0]: a prompt object needs "
                                                      "raw or id" },
        { "dataset.yaml", ERR_UNSUPPORTED, true,
          "dataset.yaml:2:8: tests: dataset://support-faq@3: stored datasets are not available yet" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        char path[1024], m[2048];
        data_path(path, sizeof path, cases[i].file);
        ev_suite *s = NULL;
        ev_diag d;
        memset(&d, 0, sizeof d);
        err_code r = ev_suite_load(path, &s, &d);
        if (cases[i].at_load) {
            if (r != cases[i].code || s)
                test_fail(__FILE__, __LINE__, "%s: loaded with %d (%s), expected %d", cases[i].file, r,
                          rel_diag(&d, m, sizeof m), cases[i].code);
        } else {
            if (r != ERR_OK) {
                test_fail(__FILE__, __LINE__, "%s: %s", cases[i].file, rel_diag(&d, m, sizeof m));
                continue;
            }
            size_t n;
            char *all = all_tests(s, &n, m, sizeof m);
            free(all);
            ev_suite_free(s);
            if (!m[0]) {
                test_fail(__FILE__, __LINE__, "%s: streamed without an error", cases[i].file);
                continue;
            }
            if (cases[i].msg && strcmp(m, cases[i].msg) != 0)
                test_fail(__FILE__, __LINE__, "%s:\n      got      %s\n      expected %s", cases[i].file, m,
                          cases[i].msg);
            continue;
        }
        rel_diag(&d, m, sizeof m);
        if (cases[i].msg && strcmp(m, cases[i].msg) != 0)
            test_fail(__FILE__, __LINE__, "%s:\n      got      %s\n      expected %s", cases[i].file, m,
                      cases[i].msg);
        if (!cases[i].msg && (!strstr(m, "No such file") || !strstr(m, "nope")))
            test_fail(__FILE__, __LINE__, "%s: %s", cases[i].file, m);
    }
    ev_suite *s = NULL;
    ev_diag d;
    CHECK_INT(ev_suite_load("/nonexistent/suite.yaml", &s, &d), ERR_IO);
    CHECK(strstr(d.msg, "cannot read the suite") != NULL);
    CHECK_INT(ev_suite_load("", &s, &d), ERR_INVAL);
}

static char *resolve_dataset(const char *ref, char *msg, size_t cap)
{
    if (strcmp(ref, "support-faq@3") != 0) {
        snprintf(msg, cap, "no dataset %s", ref);
        return NULL;
    }
    char path[1024];
    data_path(path, sizeof path, "tests_list.json");
    return strdup(path);
}

TEST(suite_dataset_hook)
{
    ev_suite_set_dataset_resolver(resolve_dataset);
    ev_suite *s = load("dataset.yaml");
    if (s) {
        CHECK_INT(s->ntests, 2);
        size_t n;
        char err[512];
        char *all = all_tests(s, &n, err, sizeof err);
        CHECK_STR(all, "{\"assert\":[{\"type\":\"contains\",\"value\":\"AI\"}],\"description\":\"Row #1\",\"vars\":{"
                       "\"topic\":\"AI\"}}\n"
                       "{\"description\":\"climate\",\"vars\":{\"topic\":\"climate\"}}\n");
        free(all);
        ev_suite_free(s);
    }
    ev_suite_set_dataset_resolver(NULL);
}

TEST(suite_diag_format)
{
    static const struct {
        ev_diag d;
        const char *want;
    } cases[] = {
        { { "a.yaml", 3, 7, "tests[2].vars", "must be a mapping" }, "a.yaml:3:7: tests[2].vars: must be a mapping" },
        { { "a.csv", 4, 0, "a.csv row 3", "bad" }, "a.csv:4: a.csv row 3: bad" },
        { { "a.yaml", 0, 0, "", "the suite is empty" }, "a.yaml: the suite is empty" },
        { { "", 0, 0, "prompts", "what" }, "prompts: what" },
        { { "", 0, 0, "", "" }, "error" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        char out[512];
        CHECK_STR(ev_diag_format(&cases[i].d, out, sizeof out), cases[i].want);
    }
    char small[8];
    CHECK_STR(ev_diag_format(&cases[0].d, small, sizeof small), "a.yaml:");
    CHECK_STR(ev_diag_format(NULL, small, sizeof small), "");
}

/* A scratch folder for suites written by the tests. */
static bool scratch(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/genaiops-suite-XXXXXX");
    return mkdtemp(dir) != NULL;
}

static void put(const char *dir, const char *name, const char *text)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void rmtree(const char *dir)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        test_fail(__FILE__, __LINE__, "could not remove %s", dir);
}

/* Loads dir/suite.yaml and streams it: the tests as lines, or the error. */
static char *run_dir(const char *dir, size_t *n, char *err, size_t cap)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/suite.yaml", dir);
    ev_suite *s = NULL;
    ev_diag d;
    *n = 0;
    if (ev_suite_load(path, &s, &d) != ERR_OK) {
        ev_diag_format(&d, err, cap);
        char *slash = strstr(err, "suite-");
        if (slash && strchr(slash, '/'))
            memmove(err, strchr(slash, '/') + 1, strlen(strchr(slash, '/') + 1) + 1);
        return NULL;
    }
    char *all = all_tests(s, n, err, cap);
    if (*n != s->ntests && !err[0])
        snprintf(err, cap, "counted %zu at load, streamed %zu", s->ntests, *n);
    ev_suite_free(s);
    return all;
}

/* CSV reading corners: quotes, CRLF, BOM, empty lines, the delimiter. */
TEST(suite_csv_reading)
{
    static const struct {
        const char *csv;
        const char *want;   /* the tests' vars and assertions, or the error */
    } cases[] = {
        { "a,b\n1,2\n", "{\"a\":\"1\",\"b\":\"2\"}" },
        { "a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\r\n", "{\"a\":\"x, y\",\"b\":\"say \\\"hi\\\"\"}" },
        { "\xef\xbb\xbf" "a\n\n1\n\n2", "{\"a\":\"1\"}{\"a\":\"2\"}" },
        { "a,b\n\"multi\nline\",2\n", "{\"a\":\"multi\\nline\",\"b\":\"2\"}" },
        { "a\nsay \"hi\" there\n", "{\"a\":\"say \\\"hi\\\" there\"}" }, /* a quote inside an unquoted field */
        { " a , b \n1,2\n", "{\"a\":\"1\",\"b\":\"2\"}" },                 /* column names are trimmed */
        { "a,b\n,\n", "{\"a\":\"\",\"b\":\"\"}" },
        { "a\n", "" },                                                     /* a header only: no tests */
        { "", "" },                                                        /* nothing at all */
        { "a,b\n\"x\"y,2\n", "ERR a quoted field is followed by 'y'" },
        { "a,a\n1,2\n", "ERR the column 'a' appears twice in the header" },
        { "a,b\n1\n", "ERR the row has 1 columns, the header 2" },
        { "a\n\xff\n", "ERR column 1 is not valid UTF-8" },
        { "q,__config:__expected:shoe\nx,1\n", "ERR only threshold can be set through __config" },
        { "q,__config:__wrong:threshold\nx,1\n", "ERR write __config:__expected:threshold" },
        { "q,__expected,__config:__expected:threshold\nx,similar: hi,abc\n", "ERR is 'abc', not a number" },
    };
    char dir[64];
    if (!scratch(dir, sizeof dir))
        return;
    put(dir, "suite.yaml", "prompts: ['{{a}}']\ntests: file://t.csv\n");
    for (size_t i = 0; i < countof(cases); i++) {
        put(dir, "t.csv", cases[i].csv);
        size_t n;
        char err[1024];
        char *all = run_dir(dir, &n, err, sizeof err);
        char got[2048] = "";
        if (err[0]) {
            snprintf(got, sizeof got, "ERR %s", err);
        } else if (all) {
            /* keep vars only */
            size_t o = 0;
            for (char *line = all; *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                    *nl = '\0';
                json_t *t = json_loads(line, 0, NULL);
                char *v = dump(json_object_get(t, "vars"));
                o += (size_t)snprintf(got + o, sizeof got - o, "%s", v ? v : "");
                free(v);
                json_decref(t);
                if (!nl)
                    break;
                line = nl + 1;
            }
        }
        free(all);
        bool ok = strncmp(cases[i].want, "ERR ", 4) == 0 ? strstr(got, cases[i].want + 4) != NULL
                                                          : strcmp(got, cases[i].want) == 0;
        if (!ok)
            test_fail(__FILE__, __LINE__, "case %zu: %s\n      expected %s", i, got, cases[i].want);
    }
    /* PROMPTFOO_CSV_DELIMITER picks another separator */
    setenv("PROMPTFOO_CSV_DELIMITER", ";", 1);
    put(dir, "t.csv", "a;b\n1,5;2\n");
    size_t n;
    char err[1024];
    char *all = run_dir(dir, &n, err, sizeof err);
    CHECK(all && strstr(all, "\"a\":\"1,5\""));
    free(all);
    unsetenv("PROMPTFOO_CSV_DELIMITER");
    rmtree(dir);
}

/* promptfoo's one-line assertions, each prefix (through a CSV). */
TEST(suite_expected_syntax)
{
    static const struct {
        const char *cell, *want;
    } cases[] = {
        { "Paris", "{\"type\":\"equals\",\"value\":\"Paris\"}" },
        { "equals: 4", "{\"type\":\"equals\",\"value\":\"4\"}" },
        { "contains:Paris", "{\"type\":\"contains\",\"value\":\"Paris\"}" },
        { "not-contains: x", "{\"type\":\"not-contains\",\"value\":\"x\"}" },
        { "icontains: X", "{\"type\":\"icontains\",\"value\":\"X\"}" },
        { "not-icontains: X", "{\"type\":\"not-icontains\",\"value\":\"X\"}" },
        { "regex: ^a.*b$", "{\"type\":\"regex\",\"value\":\"^a.*b$\"}" },
        { "not-regex: \\d", "{\"type\":\"not-regex\",\"value\":\"\\\\d\"}" },
        { "starts-with: Hi", "{\"threshold\":0.75,\"type\":\"starts-with\",\"value\":\"Hi\"}" },
        { "is-json", "{\"type\":\"is-json\"}" },
        { "is-json: {\"type\":\"object\"}", "{\"type\":\"is-json\",\"value\":\" {\\\"type\\\":\\\"object\\\"}\"}" },
        { "not-is-json", "{\"type\":\"not-is-json\"}" },
        { "contains-json", "{\"type\":\"contains-json\"}" },
        { "contains-any: a,b", "{\"type\":\"contains-any\",\"value\":[\"a\",\"b\"]}" },
        { "contains-all: a , b", "{\"type\":\"contains-all\",\"value\":[\"a\",\"b\"]}" },
        { "icontains-any: A", "{\"type\":\"icontains-any\",\"value\":[\"A\"]}" },
        { "icontains-all:a,,b", "{\"type\":\"icontains-all\",\"value\":[\"a\",\"\",\"b\"]}" },
        { "contains-any", "{\"type\":\"contains-any\"}" },
        { "llm-rubric: polite", "{\"type\":\"llm-rubric\",\"value\":\" polite\"}" },
        { "grade:polite", "{\"type\":\"llm-rubric\",\"value\":\"polite\"}" },
        { "similar: hi", "{\"threshold\":0.8,\"type\":\"similar\",\"value\":\"hi\"}" },
        { "similar(0.65): hi", "{\"threshold\":0.65,\"type\":\"similar\",\"value\":\"hi\"}" },
        { "not-similar(1):x", "{\"threshold\":1.0,\"type\":\"not-similar\",\"value\":\"x\"}" },
        { "similar(.5):x", "{\"type\":\"equals\",\"value\":\"similar(.5):x\"}" }, /* not promptfoo's syntax */
        { "levenshtein(3):abc", "{\"threshold\":3.0,\"type\":\"levenshtein\",\"value\":\"abc\"}" },
        { "rouge-n: the cat", "{\"threshold\":0.75,\"type\":\"rouge-n\",\"value\":\"the cat\"}" },
        { "bleu: the cat", "{\"type\":\"bleu\",\"value\":\"the cat\"}" },
        { "factuality: Paris is the capital", "{\"type\":\"factuality\",\"value\":\"Paris is the capital\"}" },
        { "model-graded-closedqa: yes", "{\"type\":\"model-graded-closedqa\",\"value\":\"yes\"}" },
        { "answer-relevance", "{\"threshold\":0.75,\"type\":\"answer-relevance\"}" },
        { "context-faithfulness(0.9)", "{\"threshold\":0.9,\"type\":\"context-faithfulness\"}" },
        { "g-eval: coherent", "{\"type\":\"g-eval\",\"value\":\"coherent\"}" },
        { "latency(500)", "{\"threshold\":500.0,\"type\":\"latency\"}" },
        { "cost(0.002)", "{\"threshold\":0.002,\"type\":\"cost\"}" },
        { "finish-reason: stop", "{\"type\":\"finish-reason\",\"value\":\"stop\"}" },
        { "is-valid-openai-tools-call", "{\"type\":\"is-valid-openai-tools-call\"}" },
        { "word-count: 10", "{\"type\":\"word-count\",\"value\":\"10\"}" },
        { "javascript: output === 'x'", "{\"type\":\"javascript\",\"value\":\"output === 'x'\"}" },
        { "fn: true", "{\"type\":\"javascript\",\"value\":\"true\"}" },
        { "eval: 1", "{\"type\":\"javascript\",\"value\":\"1\"}" },
        { "file://grade.ts", "{\"type\":\"javascript\",\"value\":\"grade.ts\"}" },
        { "python: len(output) > 2", "{\"type\":\"python\",\"value\":\"len(output) > 2\"}" },
        { "file://grade.py", "{\"type\":\"python\",\"value\":\"grade.py\"}" },
        { "similar:cosine:hi", "{\"threshold\":0.8,\"type\":\"similar\",\"value\":\"cosine:hi\"}" },
        { "contains-typo: x", "{\"type\":\"equals\",\"value\":\"contains-typo: x\"}" },
        { "CONTAINS: x", "{\"type\":\"equals\",\"value\":\"CONTAINS: x\"}" },
    };
    char dir[64];
    if (!scratch(dir, sizeof dir))
        return;
    put(dir, "suite.yaml", "prompts: ['{{q}}']\ntests: file://t.csv\n");
    for (size_t i = 0; i < countof(cases); i++) {
        char csv[512], qcell[300];
        /* quote the cell, doubling its quotes */
        size_t o = 0;
        qcell[o++] = '"';
        for (const char *p = cases[i].cell; *p && o < sizeof qcell - 3; p++) {
            if (*p == '"')
                qcell[o++] = '"';
            qcell[o++] = *p;
        }
        qcell[o++] = '"';
        qcell[o] = '\0';
        snprintf(csv, sizeof csv, "q,__expected\nx,%s\n", qcell);
        put(dir, "t.csv", csv);
        size_t n;
        char err[512];
        char *all = run_dir(dir, &n, err, sizeof err);
        json_t *t = all ? json_loads(all, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
        char *a = dump(json_array_get(json_object_get(t, "assert"), 0));
        if (!a || strcmp(a, cases[i].want) != 0)
            test_fail(__FILE__, __LINE__, "%s: %s, expected %s (%s)", cases[i].cell, a ? a : "(none)", cases[i].want,
                      err);
        free(a);
        json_decref(t);
        free(all);
    }
    rmtree(dir);
}

/* The count made at load equals what is streamed, on every path that
 * counts (light count of inline tests, counting by reading). */
TEST(suite_counts_match)
{
    static const char *const files[] = { "basic.yaml",  "prompts.yaml", "csv_suite.yaml", "csv_config_suite.yaml",
                                         "jsonl_suite.yaml", "mixed.yaml", "json_suite.json", "cartesian.yaml",
                                         "files_vars.yaml", "anchors.yaml", "empty_tests.yaml" };
    for (size_t i = 0; i < countof(files); i++) {
        ev_suite *s = load(files[i]);
        if (!s)
            continue;
        size_t n;
        char err[512];
        char *all = all_tests(s, &n, err, sizeof err);
        if (n != s->ntests || err[0])
            test_fail(__FILE__, __LINE__, "%s: %zu at load, %zu streamed (%s)", files[i], s->ntests, n, err);
        free(all);
        ev_suite_free(s);
    }
    static const struct {
        const char *yaml;
        size_t n;
    } cases[] = {
        { "tests:\n  - vars: {a: [x, y], b: [1, 2]}\n", 2 },      /* a list of numbers is one value */
        { "tests:\n  - vars: {a: [x, y], b: ['1', '2']}\n", 4 },
        { "tests:\n  - vars: {a: [[x], y]}\n", 1 },               /* first item not text: one value */
        { "tests:\n  - vars: {a: [x, [y]]}\n", 2 },               /* first item text: expanded */
        { "tests:\n  - vars: {a: []}\n", 1 },
        { "tests:\n  - vars: {a: [x, y]}\n    assert: [{type: contains, value: [p, q]}]\n", 2 },
        { "tests: []\n", 1 },
        { "tests:\n", 1 },
        { "tests:\n  - vars: {a: [x, y]}\n  - vars: {a: [x, y, z]}\n", 5 },
        { "d: &d [x, y, z]\ntests:\n  - vars: {a: *d}\n", 3 },
        { "tests:\n  - vars:\n      <<: {a: [x, y]}\n", 2 },
        { "tests:\n  - {vars: {a: [\"x\", \"y\"]}, \"assert\": []}\n", 2 },
        { "tests:\n  - vars: {a: [x, y]}\ndefaultTest: {vars: {b: [p, q]}}\n", 4 },
        { "tests:\n  - vars: {a: [x, y], b: z}\ndefaultTest: {vars: {b: [p, q]}}\n", 2 },
        { "tests:\n  - vars: {a: [!!int '1', x]}\n", 1 },    /* a tag decides the first item's type */
        { "tests:\n  - vars: {a: [!!str 1, x]}\n", 2 },
        { "t: &t [{vars: {a: 1}}, {vars: {a: [x, y]}}]\ntests: *t\n", 3 }, /* an aliased list of tests */
        { "tests: &t\n  - vars: {a: [x, y, z]}\n", 3 },
    };
    char dir[64];
    if (!scratch(dir, sizeof dir))
        return;
    for (size_t i = 0; i < countof(cases); i++) {
        put(dir, "suite.yaml", cases[i].yaml);
        size_t n;
        char err[512];
        char *all = run_dir(dir, &n, err, sizeof err);
        if (n != cases[i].n || err[0])
            test_fail(__FILE__, __LINE__, "case %zu: %zu tests, expected %zu (%s)", i, n, cases[i].n, err);
        free(all);
    }
    rmtree(dir);
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* 30,000 inline tests (JSON and block YAML): counted without being kept,
 * streamed in flat memory. */
TEST(suite_large_streamed)
{
    char dir[64];
    if (!scratch(dir, sizeof dir))
        return;
    for (int json = 0; json < 2; json++) {
        char path[1100];
        snprintf(path, sizeof path, "%s/suite.yaml", dir);
        FILE *f = fopen(path, "wb");
        if (!f)
            break;
        const int N = 30000;
        if (json) {
            fputs("{\"prompts\": [\"Answer: {{q}}\"],\n \"tests\": [\n", f);
            for (int i = 0; i < N; i++)
                fprintf(f, "  %s{\"vars\": {\"q\": \"question %d\"}, \"assert\": [{\"type\": \"contains\", \"value\": "
                           "\"Hello\"}, {\"type\": \"levenshtein\", \"value\": \"Hello!\", \"threshold\": 5}]}\n",
                        i ? "," : "", i);
            fputs(" ]}\n", f);
        } else {
            fputs("prompts: ['Answer: {{q}}']\ntests:\n", f);
            for (int i = 0; i < N; i++)
                fprintf(f, "  - vars:\n      q: question %d\n    assert:\n      - type: contains\n        value: Hello\n",
                        i);
        }
        fclose(f);
        ev_suite *s = NULL;
        ev_diag d;
        char m[512];
        if (ev_suite_load(path, &s, &d) != ERR_OK) {
            test_fail(__FILE__, __LINE__, "%s", ev_diag_format(&d, m, sizeof m));
            break;
        }
        CHECK_INT(s->ntests, N);
        ev_tests *it = ev_tests_open(s, &d);
        json_t *t;
        ev_diag w;
        size_t n = 0, at1k = 0, atN = 0;
        while (ev_tests_next(it, &t, &w, &d) == 1) {
            if (n == (size_t)N - 1)
                CHECK_STR(json_string_value(json_object_get(json_object_get(t, "vars"), "q")), "question 29999");
            json_decref(t);
            n++;
            if (n == 1000 || n == (size_t)N) {
                struct mallinfo2 mi = mallinfo2();
                if (n == 1000)
                    at1k = mi.uordblks;
                else
                    atN = mi.uordblks;
            }
        }
        CHECK_INT(n, N);
        CHECK_STR(w.path, "tests[29999]");
#ifndef UNDER_ASAN
        if (atN > at1k + 64 * 1024)
            test_fail(__FILE__, __LINE__, "memory grew from %zu to %zu bytes", at1k, atN);
#else
        UNUSED(at1k);
        UNUSED(atN);
#endif
        ev_tests_close(it);
        ev_suite_free(s);
    }
    rmtree(dir);
}

/* A tests file on its own (for datasets): the same tests a suite sees. */
TEST(suite_tests_file)
{
    char path[1024], m[1024];
    data_path(path, sizeof path, "tests.jsonl");
    ev_diag d, w;
    ev_tests *it = ev_tests_open_file(path, &d);
    CHECK(it != NULL);
    if (!it)
        return;
    json_t *t;
    size_t n = 0;
    while (ev_tests_next(it, &t, &w, &d) == 1) {
        if (n == 0) {
            char *j = dump(t);
            /* no "Row #N" description is made up for a file read on its own */
            CHECK_STR(j, "{\"assert\":[{\"type\":\"equals\",\"value\":\"8\"}],\"vars\":{\"x\":5,\"y\":3}}");
            free(j);
            CHECK_STR(w.path, "tests.jsonl line 1");
        }
        json_decref(t);
        n++;
    }
    CHECK_INT(n, 4);
    ev_tests_close(it);
    data_path(path, sizeof path, "bad/columns.csv");
    it = ev_tests_open_file(path, &d);
    CHECK(it != NULL);
    CHECK_INT(ev_tests_next(it, &t, &w, &d), 1);
    json_decref(t);
    CHECK_INT(ev_tests_next(it, &t, &w, &d), -1);
    CHECK_INT(ev_tests_err(it), ERR_PARSE);
    CHECK_STR(rel_diag(&d, m, sizeof m), "bad/columns.csv:3: columns.csv row 2: the row has 3 columns, the header 2");
    ev_tests_close(it);
    it = ev_tests_open_file("/nonexistent/t.csv", &d);
    CHECK(it != NULL);
    CHECK_INT(ev_tests_next(it, &t, &w, &d), -1);
    CHECK_INT(ev_tests_err(it), ERR_IO);
    ev_tests_close(it);
    CHECK(ev_tests_open_file("", &d) == NULL);
}
