/*
 * evstore.h - evaluation runs in the store (schema version 5): a run's row
 * with what it used (prompt versions, providers, suite) and its summary,
 * and one row per result with the record's JSON (report.h's shape).
 *
 * A run is written as it goes: evstore_begin inserts the run as
 * "running", evstore_add buffers results and writes them in batched
 * transactions, evstore_finish writes the rest and the summary. A run that
 * is interrupted keeps what was written, with status "interrupted"; one
 * whose process died stays "running". Calls block on SQLite; the runner
 * makes them from its loop between network events (a batch of 500 results
 * is a few milliseconds).
 */
#ifndef GENAIOPS_EVSTORE_H
#define GENAIOPS_EVSTORE_H

#include <jansson.h>
#include "core/common.h"
#include "core/err.h"
#include "store/query.h"

typedef struct evstore_run evstore_run;
typedef struct sqlite3 sqlite3;

/* Opens url's SQLite file read-write after store_open has brought it to the
 * current schema (the caller closes it with sqlite3_close). ERR_STORE with
 * msg when it cannot. Shared with dataset.c. */
err_code evstore_db(const char *url, sqlite3 **out, char *msg, size_t cap);

/* run: {id, description?, suite, started_at, prompts, providers, repeat,
 * tests} (kept as the run's meta). ERR_OK and *out, or an error with msg. */
err_code evstore_begin(const char *url, const json_t *run, evstore_run **out, char *msg, size_t cap);
/* Adds one record (report.h's ev_record_json shape; borrowed). */
err_code evstore_add(evstore_run *s, const json_t *record);
/* Writes what is buffered and the summary, sets the status ("done",
 * "interrupted", "error"), frees s in every case. */
err_code evstore_finish(evstore_run *s, const json_t *summary, const char *status, char *msg, size_t cap);
/* Frees s without writing more (the run stays as it was). NULL ok. */
void evstore_abort(evstore_run *s);

/* CLOCK_REALTIME in ns, and a time as "2026-11-21T10:00:00Z" (UTC). */
int64_t evstore_wall_ns(void);
void evstore_iso_time(int64_t ns, char *out, size_t cap);

/* The cache directory ($GENAIOPS_CACHE_DIR, else $XDG_CACHE_HOME/genaiops,
 * else ~/.cache/genaiops), with sub (may be NULL) below it, created as
 * needed (mode 0700). false when there is none or it cannot be made. */
bool evstore_cache_dir(const char *sub, char *out, size_t cap);

/* The latest runs, newest first: [{id, created_at, status, description,
 * suite, records, passed, failed, errors, pass_rate, interval: [lo, hi]
 * (Wilson 95%; null with no results), providers: [labels]}]. */
err_code evstore_list(const char *url, size_t limit, json_t **out, query_error *e);
/* The same, only runs whose id, description or suite holds q (a
 * case-insensitive substring of at most EVSTORE_QUERY_MAX bytes; NULL or
 * "" = every run). *out is a new array the caller owns. */
#define EVSTORE_QUERY_MAX 256
err_code evstore_search(const char *url, size_t limit, const char *q, json_t **out, query_error *e);
/* One run: {id, ..., meta, summary} and, with results, "results": [record
 * ...] in the order they finished. An id prefix is enough when unique;
 * "latest" is the newest run. 404 run_not_found. */
err_code evstore_get(const char *url, const char *id, bool results, json_t **out, query_error *e);

/* Which results evstore_run_page lists. */
typedef struct evstore_page {
    bool results;                 /* false: the run and its counts only */
    const char *verdict;          /* "pass", "fail", "error"; NULL or "" = all */
    size_t limit, offset;
} evstore_page;

/* One run as evstore_get gives it, plus "counts": {pass, fail, error}
 * (from the stored results) and, with pg->results, one page of "results":
 * errors first, then failures, then passes, each in the order they
 * finished; "total" (results of that verdict), "offset", "limit" and
 * "next_offset" (null on the last page). *out is new (the caller owns
 * it); pg and its verdict are borrowed. Same errors as evstore_get. */
err_code evstore_run_page(const char *url, const char *id, const evstore_page *pg, json_t **out, query_error *e);

/* One result's outcome, for comparisons: its key and its verdict. */
typedef struct evstore_outcome {
    uint32_t test, repeat;
    uint16_t prompt, provider;
    int8_t pass;                  /* 1 pass, 0 fail, -1 error */
    double score;                 /* NAN when not recorded */
    char description[64];         /* the test's description (cut), "" when none */
} evstore_outcome;

/* A run's outcomes sorted by (test, prompt, provider, repeat) into *out
 * (malloc, caller frees); *id gets the run's full id (id may be a prefix or
 * "latest"; skip_id: with "latest", the newest run other than this one). */
err_code evstore_outcomes(const char *url, const char *id, const char *skip_id, evstore_outcome **out, size_t *n,
                          char full_id[64], query_error *e);

#endif
