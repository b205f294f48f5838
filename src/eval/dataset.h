/*
 * dataset.h - stored datasets: named, immutable, numbered versions of test
 * cases (promptfoo's test objects: {description, vars, assert, ...}), kept
 * in the store beside the prompt registry and used by suites as
 * `tests: dataset://NAME` (latest) or `dataset://NAME:VERSION`.
 *
 * Pushing content equal to the latest version (same SHA-256 of the
 * canonical JSON of its rows) makes no new version, as prompts do. Each
 * test case is one row, so a version is read back (exported for a run) a
 * row at a time.
 *
 * Calls block on SQLite and report failures in a query_error (HTTP status,
 * code, message), as the registry does.
 */
#ifndef GENAIOPS_DATASET_H
#define GENAIOPS_DATASET_H

#include <jansson.h>
#include "core/common.h"
#include "core/err.h"
#include "store/query.h"

#define DATASET_MAX_ROWS 1000000

/* "NAME", "NAME:VERSION", "NAME@VERSION" or "NAME@latest" (version 0 =
 * latest). false with e (400 invalid_dataset_ref) on a bad one. */
bool dataset_ref_parse(const char *s, char *name, size_t cap, int *version, query_error *e);

/* Saves rows (a JSON array of test objects, borrowed) as the next version
 * of name, unless they equal the latest. *out: the version's JSON (see
 * dataset_get, without tests); *created says whether a version was made. */
err_code dataset_push(const char *url, const char *name, const json_t *rows, const char *message,
                      const char *author, const char *source, json_t **out, bool *created, query_error *e);

/* [{name, latest, versions, rows, updated_at}] by name. */
err_code dataset_list(const char *url, json_t **out, query_error *e);

/* One version: {name, version, rows, hash, message, author, source,
 * created_at, versions (all the numbers), tests: [the first max_tests rows]}.
 * 404 dataset_not_found / version_not_found. */
err_code dataset_get(const char *url, const char *ref, size_t max_tests, json_t **out, query_error *e);

/* Writes a version's rows as a JSON list to path (streamed, a row at a
 * time); *version gets the version exported. */
err_code dataset_export(const char *url, const char *ref, const char *path, int *version, query_error *e);

/* The suite loader's hook (suite.h ev_dataset_resolver) for the store set
 * by dataset_use_store(): exports the version into the cache directory
 * (content-addressed, reused) and returns the file's path (malloc). */
void dataset_use_store(const char *url);
char *dataset_resolve(const char *ref, char *msg, size_t cap);
/* The i-th version dataset_resolve handed out since dataset_use_store
 * ("NAME:VERSION"), or NULL past the end: what a run used. */
const char *dataset_resolved(size_t i);

#endif
