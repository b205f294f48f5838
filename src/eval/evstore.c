/*
 * evstore.c - evaluation runs in the store (see evstore.h).
 *
 * Each call opens the store through store_open (which migrates it to the
 * current schema) and keeps a plain SQLite connection on the same file; a
 * run in progress keeps its connection until evstore_finish. Results are
 * buffered as rendered JSON text and written EVSTORE_BATCH at a time in one
 * transaction.
 */
#include "eval/evstore.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "eval/stats.h"
#include "store/store.h"

#define EVSTORE_BATCH 500

struct evstore_run {
    sqlite3 *db;
    sqlite3_stmt *ins;
    char id[64];
    long long seq;
    long long records;
    long long counts[3];          /* pass, fail, error */
    json_t *pending;              /* records not yet written */
};

int64_t evstore_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

err_code evstore_db(const char *url, sqlite3 **out, char *msg, size_t cap)
{
    store *s = NULL;
    *out = NULL;
    if (store_open(url, &s, msg, cap) != ERR_OK)
        return ERR_STORE;
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(store_path(s), &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc != SQLITE_OK) {
        snprintf(msg, cap, "cannot open the store %s: %s", store_path(s), db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        store_close(s);
        return ERR_STORE;
    }
    store_close(s);
    sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
    sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    *out = db;
    return ERR_OK;
}

static err_code db_fail(sqlite3 *db, const char *what, char *msg, size_t cap)
{
    snprintf(msg, cap, "store error while %s: %s", what, sqlite3_errmsg(db));
    return ERR_STORE;
}

err_code evstore_begin(const char *url, const json_t *run, evstore_run **out, char *msg, size_t cap)
{
    *out = NULL;
    evstore_run *s = calloc(1, sizeof *s);
    if (!s || !(s->pending = json_array())) {
        free(s);
        snprintf(msg, cap, "out of memory");
        return ERR_NOMEM;
    }
    snprintf(s->id, sizeof s->id, "%s", json_string_value(json_object_get(run, "id")));
    err_code rc = evstore_db(url, &s->db, msg, cap);
    if (rc != ERR_OK)
        goto fail;
    char *meta = json_dumps(run, JSON_COMPACT);
    sqlite3_stmt *st = NULL;
    const json_t *desc = json_object_get(run, "description"), *suite = json_object_get(run, "suite");
    if (!meta ||
        sqlite3_prepare_v2(s->db,
                           "INSERT INTO eval_runs (id, created_ns, status, description, suite, meta) "
                           "VALUES (?, ?, 'running', ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        free(meta);
        rc = db_fail(s->db, "recording the run", msg, cap);
        goto fail;
    }
    sqlite3_bind_text(st, 1, s->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, evstore_wall_ns());
    sqlite3_bind_text(st, 3, json_string_value(desc), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, json_string_value(suite), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, meta, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    free(meta);
    if (step != SQLITE_DONE) {
        rc = db_fail(s->db, "recording the run", msg, cap);
        goto fail;
    }
    if (sqlite3_prepare_v2(s->db, "INSERT INTO eval_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &s->ins,
                           NULL) != SQLITE_OK) {
        rc = db_fail(s->db, "recording results", msg, cap);
        goto fail;
    }
    *out = s;
    return ERR_OK;
fail:
    evstore_abort(s);
    return rc;
}

static json_int_t int_of(const json_t *r, const char *k)
{
    return json_integer_value(json_object_get(r, k));
}

/* Writes the buffered records in one transaction. */
static err_code flush(evstore_run *s, char *msg, size_t cap)
{
    size_t n = json_array_size(s->pending);
    if (n == 0)
        return ERR_OK;
    if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s->db, "writing results", msg, cap);
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(s->pending, i);
        char *text = json_dumps(r, JSON_COMPACT);
        const json_t *score = json_object_get(r, "score");
        if (!text) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            snprintf(msg, cap, "out of memory");
            return ERR_NOMEM;
        }
        sqlite3_bind_text(s->ins, 1, s->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->ins, 2, ++s->seq);
        sqlite3_bind_int64(s->ins, 3, int_of(r, "test"));
        sqlite3_bind_int64(s->ins, 4, int_of(r, "repeat"));
        sqlite3_bind_int64(s->ins, 5, int_of(r, "prompt"));
        sqlite3_bind_int64(s->ins, 6, int_of(r, "provider"));
        sqlite3_bind_text(s->ins, 7, json_string_value(json_object_get(r, "verdict")), -1, SQLITE_STATIC);
        if (json_is_number(score))
            sqlite3_bind_double(s->ins, 8, json_number_value(score));
        else
            sqlite3_bind_null(s->ins, 8);
        sqlite3_bind_text(s->ins, 9, text, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s->ins);
        sqlite3_reset(s->ins);
        free(text);
        if (rc != SQLITE_DONE) {
            err_code e = db_fail(s->db, "writing results", msg, cap);
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return e;
        }
    }
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s->db, "writing results", msg, cap);
    json_array_clear(s->pending);
    return ERR_OK;
}

err_code evstore_add(evstore_run *s, const json_t *record)
{
    const char *v = json_string_value(json_object_get(record, "verdict"));
    if (!v || json_array_append(s->pending, (json_t *)record) != 0)
        return ERR_INVAL;
    s->records++;
    s->counts[strcmp(v, "pass") == 0 ? 0 : strcmp(v, "fail") == 0 ? 1 : 2]++;
    char msg[256];
    return json_array_size(s->pending) >= EVSTORE_BATCH ? flush(s, msg, sizeof msg) : ERR_OK;
}

err_code evstore_finish(evstore_run *s, const json_t *summary, const char *status, char *msg, size_t cap)
{
    err_code rc = flush(s, msg, cap);
    char *sum = summary ? json_dumps(summary, JSON_COMPACT) : NULL;
    sqlite3_stmt *st = NULL;
    if (rc == ERR_OK) {
        if (sqlite3_prepare_v2(s->db,
                               "UPDATE eval_runs SET status = ?, summary = ?, records = ?, passed = ?, failed = ?, "
                               "errors = ? WHERE id = ?",
                               -1, &st, NULL) != SQLITE_OK)
            rc = db_fail(s->db, "finishing the run", msg, cap);
        else {
            sqlite3_bind_text(st, 1, status ? status : "done", -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, sum, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, s->records);
            for (int i = 0; i < 3; i++)
                sqlite3_bind_int64(st, 4 + i, s->counts[i]);
            sqlite3_bind_text(st, 7, s->id, -1, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE)
                rc = db_fail(s->db, "finishing the run", msg, cap);
        }
    }
    sqlite3_finalize(st);
    free(sum);
    evstore_abort(s);
    return rc;
}

void evstore_abort(evstore_run *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->ins);
    sqlite3_close(s->db);
    json_decref(s->pending);
    free(s);
}

bool evstore_cache_dir(const char *sub, char *out, size_t cap)
{
    const char *dir = getenv("GENAIOPS_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (dir && *dir)
        n = snprintf(out, cap, "%s%s%s", dir, sub ? "/" : "", sub ? sub : "");
    else if (xdg && *xdg)
        n = snprintf(out, cap, "%s/genaiops%s%s", xdg, sub ? "/" : "", sub ? sub : "");
    else if (home && *home)
        n = snprintf(out, cap, "%s/.cache/genaiops%s%s", home, sub ? "/" : "", sub ? sub : "");
    else
        return false;
    if (n < 0 || (size_t)n >= cap)
        return false;
    /* mkdir -p */
    for (char *p = out + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(out, 0700) != 0 && errno != EEXIST)
                return *p = '/', false;
            *p = '/';
        }
    return mkdir(out, 0700) == 0 || errno == EEXIST;
}

/* ---- reading ---- */


void evstore_iso_time(int64_t ns, char *out, size_t cap)
{
    time_t secs = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
}

static json_t *text_json(sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    return t ? json_loads(t, 0, NULL) : NULL;
}

/* The run row at st's current step as JSON (columns of RUN_COLS). */
#define RUN_COLS "id, created_ns, status, description, suite, records, passed, failed, errors, meta, summary"
static json_t *run_row(sqlite3_stmt *st, bool full)
{
    char when[40];
    evstore_iso_time(sqlite3_column_int64(st, 1), when, sizeof when);
    long long passed = sqlite3_column_int64(st, 6), failed = sqlite3_column_int64(st, 7),
              errors = sqlite3_column_int64(st, 8);
    long long judged = passed + failed + errors;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:I, s:I, s:I, s:I}", "id", sqlite3_column_text(st, 0),
                          "created_at", when, "status", sqlite3_column_text(st, 2), "description",
                          sqlite3_column_text(st, 3), "suite", sqlite3_column_text(st, 4), "records",
                          (json_int_t)sqlite3_column_int64(st, 5), "passed", (json_int_t)passed, "failed",
                          (json_int_t)failed, "errors", (json_int_t)errors);
    if (o) {
        json_object_set_new(o, "pass_rate", judged ? json_real((double)passed / (double)judged) : json_null());
        double lo, hi;
        ev_wilson((size_t)passed, (size_t)judged, EV_Z95, &lo, &hi);
        json_object_set_new(o, "interval", judged ? json_pack("[f, f]", lo, hi) : json_null());
    }
    if (o && !full && sqlite3_column_count(st) > 11) { /* the list's provider labels */
        json_t *labels = text_json(st, 11);
        json_object_set_new(o, "providers", json_is_array(labels) ? labels : json_array());
        if (!json_is_array(labels))
            json_decref(labels);
    }
    if (o && full) {
        json_t *meta = text_json(st, 9), *sum = text_json(st, 10);
        json_object_set_new(o, "meta", meta ? meta : json_null());
        json_object_set_new(o, "summary", sum ? sum : json_null());
    }
    return o;
}

err_code evstore_list(const char *url, size_t limit, json_t **out, query_error *e)
{
    return evstore_search(url, limit, NULL, out, e);
}

err_code evstore_search(const char *url, size_t limit, const char *q, json_t **out, query_error *e)
{
    sqlite3 *db = NULL;
    char msg[512];
    *out = NULL;
    if (evstore_db(url, &db, msg, sizeof msg) != ERR_OK)
        return query_fail(e, 503, NULL, "store_unavailable", "%s", msg);
    sqlite3_stmt *st = NULL;
    err_code rc = ERR_OK;
    json_t *arr = json_array();
    /* instr on lower() is a plain substring test: no LIKE wildcards to escape */
    if (!arr || sqlite3_prepare_v2(db,
                                   "SELECT " RUN_COLS ", (SELECT json_group_array(json_extract(value, '$.label'))"
                                   " FROM json_each(CASE WHEN json_valid(meta) THEN meta ELSE '{}' END, '$.providers'))"
                                   " FROM eval_runs WHERE ?2 IS NULL OR instr(lower(id), ?2) > 0"
                                   " OR instr(lower(ifnull(description, '')), ?2) > 0"
                                   " OR instr(lower(ifnull(suite, '')), ?2) > 0"
                                   " ORDER BY created_ns DESC LIMIT ?1",
                                   -1, &st, NULL) != SQLITE_OK) {
        rc = arr ? query_fail_db(e, db, "listing runs") : query_fail(e, 500, NULL, "out_of_memory", "out of memory");
        goto out;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(limit ? limit : 20));
    char low[EVSTORE_QUERY_MAX + 1];
    if (q && *q) {
        size_t n = 0;
        for (; q[n] && n < EVSTORE_QUERY_MAX; n++) /* ASCII only, as SQLite's lower() */
            low[n] = (char)(q[n] >= 'A' && q[n] <= 'Z' ? q[n] + 32 : q[n]);
        low[n] = '\0';
        sqlite3_bind_text(st, 2, low, -1, SQLITE_STATIC);
    }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = run_row(st, false);
        if (!row || json_array_append_new(arr, row) != 0) {
            rc = query_fail(e, 500, NULL, "out_of_memory", "out of memory");
            goto out;
        }
    }
    if (step != SQLITE_DONE)
        rc = query_fail_db(e, db, "listing runs");
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (rc == ERR_OK)
        *out = arr;
    else
        json_decref(arr);
    return rc;
}

/* Finds the run `id` (a full id, a unique prefix or "latest") on db:
 * *run is its full row (run_row with meta and summary). */
static err_code find_run(sqlite3 *db, const char *id, json_t **run, query_error *e)
{
    sqlite3_stmt *st = NULL;
    err_code rc = ERR_OK;
    *run = NULL;
    bool latest = strcmp(id, "latest") == 0;
    const char *sql = latest ? "SELECT " RUN_COLS " FROM eval_runs ORDER BY created_ns DESC LIMIT 1"
                             : "SELECT " RUN_COLS " FROM eval_runs WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = query_fail_db(e, db, "reading the run");
        goto out;
    }
    if (!latest)
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW && !(*run = run_row(st, true))) {
        rc = query_fail(e, 500, NULL, "out_of_memory", "out of memory");
        goto out;
    }
    if (step == SQLITE_ROW && !latest && sqlite3_step(st) == SQLITE_ROW) {
        rc = query_fail(e, 400, "id", "ambiguous_run_id", "run id '%s' matches several runs; give more of it", id);
        goto out;
    }
    if (!*run)
        rc = step == SQLITE_DONE ? query_fail(e, 404, "id", "run_not_found", "no evaluation run '%s'", id)
                                 : query_fail_db(e, db, "reading the run");
out:
    sqlite3_finalize(st);
    if (rc != ERR_OK) {
        json_decref(*run);
        *run = NULL;
    }
    return rc;
}

static err_code open_for_read(const char *url, const char *id, sqlite3 **db, query_error *e)
{
    char msg[512];
    *db = NULL;
    if (!id || !*id || strlen(id) > 60)
        return query_fail(e, 400, "id", "invalid_run_id", "a run id is required (see `genaiops eval list`)");
    if (evstore_db(url, db, msg, sizeof msg) != ERR_OK)
        return query_fail(e, 503, NULL, "store_unavailable", "%s", msg);
    return ERR_OK;
}

err_code evstore_get(const char *url, const char *id, bool results, json_t **out, query_error *e)
{
    sqlite3 *db = NULL;
    *out = NULL;
    err_code rc = open_for_read(url, id, &db, e);
    if (rc != ERR_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    json_t *run = NULL;
    if ((rc = find_run(db, id, &run, e)) != ERR_OK)
        goto out;
    if (results) {
        json_t *arr = json_array();
        json_object_set_new(run, "results", arr);
        if (sqlite3_prepare_v2(db, "SELECT record FROM eval_results WHERE run_id = ? ORDER BY seq", -1, &st,
                               NULL) != SQLITE_OK) {
            rc = query_fail_db(e, db, "reading results");
            goto out;
        }
        sqlite3_bind_text(st, 1, json_string_value(json_object_get(run, "id")), -1, SQLITE_TRANSIENT);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            json_t *r = text_json(st, 0);
            if (r)
                json_array_append_new(arr, r);
        }
        if (step != SQLITE_DONE)
            rc = query_fail_db(e, db, "reading results");
    }
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (rc == ERR_OK)
        *out = run;
    else
        json_decref(run);
    return rc;
}

/* Sets "counts": {pass, fail, error} on run from its stored results (right
 * for runs still running or cut short too, whose row has no totals yet). */
static err_code add_counts(sqlite3 *db, json_t *run, const char *run_id, long long counts[3], query_error *e)
{
    sqlite3_stmt *st = NULL;
    counts[0] = counts[1] = counts[2] = 0;
    if (sqlite3_prepare_v2(db, "SELECT verdict, count(*) FROM eval_results WHERE run_id = ? GROUP BY verdict", -1,
                           &st, NULL) != SQLITE_OK)
        return query_fail_db(e, db, "counting results");
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        int k = v && strcmp(v, "pass") == 0 ? 0 : v && strcmp(v, "fail") == 0 ? 1 : 2;
        counts[k] += sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return query_fail_db(e, db, "counting results");
    json_object_set_new(run, "counts", json_pack("{s:I, s:I, s:I}", "pass", (json_int_t)counts[0], "fail",
                                                 (json_int_t)counts[1], "error", (json_int_t)counts[2]));
    return ERR_OK;
}

err_code evstore_run_page(const char *url, const char *id, const evstore_page *pg, json_t **out, query_error *e)
{
    sqlite3 *db = NULL;
    *out = NULL;
    err_code rc = open_for_read(url, id, &db, e);
    if (rc != ERR_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    json_t *run = NULL;
    long long counts[3];
    char run_id[64];
    if ((rc = find_run(db, id, &run, e)) != ERR_OK)
        goto out;
    snprintf(run_id, sizeof run_id, "%s", json_string_value(json_object_get(run, "id")));
    if ((rc = add_counts(db, run, run_id, counts, e)) != ERR_OK || !pg->results)
        goto out;
    const char *v = pg->verdict && *pg->verdict ? pg->verdict : NULL;
    long long total = !v                       ? counts[0] + counts[1] + counts[2]
                      : strcmp(v, "pass") == 0 ? counts[0]
                      : strcmp(v, "fail") == 0 ? counts[1]
                                               : counts[2];
    json_t *arr = json_array();
    if (!arr || json_object_set_new(run, "results", arr) != 0) {
        rc = query_fail(e, 500, NULL, "out_of_memory", "out of memory");
        goto out;
    }
    /* the page's seqs in listing order (errors, failures, passes; by seq
     * within each), then their records: the sort never carries the
     * records themselves */
    if (sqlite3_prepare_v2(db,
                           "WITH page(k, seq) AS (SELECT CASE verdict WHEN 'error' THEN 0 WHEN 'fail' THEN 1"
                           " ELSE 2 END, seq FROM eval_results WHERE run_id = ?1 AND (?2 IS NULL OR verdict = ?2)"
                           " ORDER BY 1, 2 LIMIT ?3 OFFSET ?4)"
                           " SELECT r.record FROM page JOIN eval_results r ON r.run_id = ?1 AND r.seq = page.seq"
                           " ORDER BY page.k, page.seq",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = query_fail_db(e, db, "reading results");
        goto out;
    }
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
    if (v)
        sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)pg->limit);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)pg->offset);
    int step;
    size_t got = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *r = text_json(st, 0);
        if (!r)
            r = json_pack("{s:s}", "error", "this stored result is not readable JSON");
        if (!r || json_array_append_new(arr, r) != 0) {
            rc = query_fail(e, 500, NULL, "out_of_memory", "out of memory");
            goto out;
        }
        got++;
    }
    if (step != SQLITE_DONE) {
        rc = query_fail_db(e, db, "reading results");
        goto out;
    }
    size_t next = pg->offset + got;
    json_object_set_new(run, "total", json_integer((json_int_t)total));
    json_object_set_new(run, "offset", json_integer((json_int_t)pg->offset));
    json_object_set_new(run, "limit", json_integer((json_int_t)pg->limit));
    json_object_set_new(run, "next_offset", got && (long long)next < total ? json_integer((json_int_t)next)
                                                                         : json_null());
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (rc == ERR_OK)
        *out = run;
    else
        json_decref(run);
    return rc;
}

err_code evstore_outcomes(const char *url, const char *id, const char *skip_id, evstore_outcome **out, size_t *n,
                          char full_id[64], query_error *e)
{
    *out = NULL;
    *n = 0;
    full_id[0] = 0;
    sqlite3 *db = NULL;
    char msg[512];
    if (!id || !*id || strlen(id) > 60)
        return query_fail(e, 400, "id", "invalid_run_id", "a run id is required (see `genaiops eval list`)");
    if (evstore_db(url, &db, msg, sizeof msg) != ERR_OK)
        return query_fail(e, 503, NULL, "store_unavailable", "%s", msg);
    sqlite3_stmt *st = NULL;
    err_code rc = ERR_OK;
    bool latest = strcmp(id, "latest") == 0;
    const char *sql = latest ? "SELECT id FROM eval_runs WHERE id <> ifnull(?1, '') AND status = 'done'"
                               " ORDER BY created_ns DESC LIMIT 1"
                             : "SELECT id FROM eval_runs WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = query_fail_db(e, db, "reading the run");
        goto out;
    }
    sqlite3_bind_text(st, 1, latest ? skip_id : id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        snprintf(full_id, 64, "%s", (const char *)sqlite3_column_text(st, 0));
    if (step == SQLITE_ROW && !latest && sqlite3_step(st) == SQLITE_ROW) {
        rc = query_fail(e, 400, "id", "ambiguous_run_id", "run id '%s' matches several runs; give more of it", id);
        goto out;
    }
    if (!full_id[0]) {
        rc = step == SQLITE_ROW || step == SQLITE_DONE
                 ? query_fail(e, 404, "id", "run_not_found", latest ? "no earlier finished run to compare with"
                                                                    : "no evaluation run '%s'", id)
                 : query_fail_db(e, db, "reading the run");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT test, prompt, provider, repeat, verdict, score,"
                           " substr(ifnull(json_extract(record, '$.description'), ''), 1, 60)"
                           " FROM eval_results WHERE run_id = ?"
                           " ORDER BY test, prompt, provider, repeat",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = query_fail_db(e, db, "reading results");
        goto out;
    }
    sqlite3_bind_text(st, 1, full_id, -1, SQLITE_STATIC);
    size_t cap = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            evstore_outcome *grown = realloc(*out, nc * sizeof **out);
            if (!grown) {
                rc = query_fail(e, 500, NULL, "out_of_memory", "out of memory");
                goto out;
            }
            *out = grown;
            cap = nc;
        }
        const char *v = (const char *)sqlite3_column_text(st, 4);
        (*out)[(*n)++] = (evstore_outcome){
            .test = (uint32_t)sqlite3_column_int64(st, 0),
            .prompt = (uint16_t)sqlite3_column_int(st, 1),
            .provider = (uint16_t)sqlite3_column_int(st, 2),
            .repeat = (uint32_t)sqlite3_column_int64(st, 3),
            .pass = (int8_t)(v && strcmp(v, "pass") == 0 ? 1 : v && strcmp(v, "fail") == 0 ? 0 : -1),
            .score = sqlite3_column_type(st, 5) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 5),
        };
        const char *d = (const char *)sqlite3_column_text(st, 6);
        snprintf((*out)[*n - 1].description, sizeof (*out)[*n - 1].description, "%s", d ? d : "");
    }
    if (step != SQLITE_DONE)
        rc = query_fail_db(e, db, "reading results");
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (rc != ERR_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}
