/*
 * suite.h - promptfoo-format evaluation suites: the suite file read once
 * (everything but its tests), then the tests streamed one at a time.
 *
 * ev_suite_load() reads the suite's YAML or JSON (prompts, providers,
 * defaultTest, evaluateOptions, genaiops, other keys) and counts its tests
 * without keeping them; ev_tests_open()/ev_tests_next() then read the
 * tests again, one test object at a time, from the suite file (inline
 * tests) or from the files it names (CSV, JSONL, JSON, YAML), with list
 * valued vars expanded into their cartesian product as promptfoo does.
 * Memory does not grow with the number of tests. docs/internals/suite.md
 * lists what is supported and how the two passes work.
 *
 * Ownership: an ev_suite owns everything it points to (ev_suite_free). A
 * test from ev_tests_next is the caller's (json_decref); its `assert` list
 * may be shared with the other tests expanded from the same entry, so
 * treat assert and metadata as read-only (vars is always the test's own).
 */
#ifndef GENAIOPS_SUITE_H
#define GENAIOPS_SUITE_H

#include <jansson.h>
#include "core/common.h"
#include "core/err.h"

/* Where a problem is and what it is: "file:line:col: path: msg". */
typedef struct ev_diag {
    char file[256];
    int line, col;          /* 1-based; 0 when unknown */
    char path[160];         /* key path: "tests[12].assert[0]", "tests.csv row 13" */
    char msg[320];
} ev_diag;

/* "file:line:col: path: msg" with the parts that are unknown left out;
 * returns out (always NUL-terminated when cap > 0). */
const char *ev_diag_format(const ev_diag *d, char *out, size_t cap);

typedef struct ev_prompt {
    char *id;               /* as written (the file:// path of a file prompt) or NULL */
    char *label;            /* promptfoo's label: given, or derived from the text/file */
    char *raw;              /* the template text; NULL for a registry reference */
    bool chat;              /* raw is a JSON array of chat messages */
    char *ref;              /* prompt://NAME@LABEL or NAME:VERSION -> "NAME@LABEL"; else NULL */
} ev_prompt;

typedef struct ev_provider {
    char *id;               /* as written: "openai:chat:gpt-4o-mini", "sim:echo", a gateway model... */
    char *label;            /* or NULL */
    json_t *config;         /* the provider's `config` object or NULL */
} ev_provider;

typedef struct ev_suite {
    char *path, *dir, *description;
    ev_prompt *prompts;
    size_t nprompts;
    ev_provider *providers;
    size_t nproviders;
    json_t *default_test;   /* defaultTest object or NULL (its assert/vars/options/threshold) */
    json_t *options;        /* evaluateOptions object or NULL (maxConcurrency, repeat, delay...) */
    json_t *genaiops;       /* the suite's own top-level `genaiops:` object (gate, baseline, avi) or NULL */
    json_t *extra;          /* other top-level keys kept for the runner (sharing, outputPath, env, ...) */
    size_t ntests;          /* tests after expansion, counted at load */
} ev_suite;

/* Loads the suite at path. ERR_OK with *out (free with ev_suite_free);
 * otherwise an error code (ERR_IO: unreadable file, ERR_PARSE: bad YAML or
 * a wrong value, ERR_UNSUPPORTED: a feature not implemented) with d saying
 * where and what, and *out NULL. Every test is read once here to count
 * (and check) them, without being kept. */
err_code ev_suite_load(const char *path, ev_suite **out, ev_diag *d);
void ev_suite_free(ev_suite *s);

typedef struct ev_tests ev_tests;

/* Starts streaming the tests of s (which must outlive the iterator). NULL
 * with d set on error. */
ev_tests *ev_tests_open(const ev_suite *s, ev_diag *d);
/* 1 and a new test object in *test (the caller's): {description?, vars,
 * assert, options?, threshold?, metadata?, ...other keys of the test} with
 * where (may be NULL) set to its file, line and path ("tests[12]" or
 * "tests.csv row 13"); 0 at the end; -1 on error (d set; the iterator is
 * then done). vars has defaultTest's vars under the test's own (promptfoo
 * expands list values across both); the rest of defaultTest is the
 * runner's to merge. */
int ev_tests_next(ev_tests *it, json_t **test, ev_diag *where, ev_diag *d);
/* Position of a node of the test last returned (e.g. one of its assert
 * objects), for messages. False when unknown (e.g. CSV tests: use where). */
bool ev_tests_pos(const ev_tests *it, const json_t *node, int *line, int *col);
/* After ev_tests_next returned -1: what kind of failure (ERR_PARSE for a
 * bad test or file, ERR_IO, ERR_NOTFOUND, ERR_UNSUPPORTED...). */
err_code ev_tests_err(const ev_tests *it);
void ev_tests_close(ev_tests *it);

/* Streams the tests of one tests file (.csv, .jsonl, .json, .yaml/.yml;
 * path as given, file:// vars relative to the current folder) the way a
 * suite with `tests: file://PATH` would: CSV rows as tests, list vars
 * expanded. For reading a dataset without a suite. NULL with d on error;
 * ev_tests_close frees everything. */
ev_tests *ev_tests_open_file(const char *path, ev_diag *d);

/* The hook for stored datasets (`tests: dataset://NAME@VERSION`): when set
 * (by whoever links the dataset store), it is called with the reference
 * and must return a JSON file path of the dataset's tests (a list) that the
 * suite then streams (caller frees the string), or NULL with msg set.
 * Unset, such suites fail with "stored datasets are not available yet". */
typedef char *(*ev_dataset_resolver)(const char *ref, char *msg, size_t cap);
void ev_suite_set_dataset_resolver(ev_dataset_resolver fn);

#endif
